"""Who an alert pings when its rules name many roles and users: every configured user, and
roles up to the room the message's content has for them; what several rules pool past that
room is logged, and a single rule whose own mentions could never fit is refused by the config.
newswatch runs in-process (the real discord.py) against the emulator, and every request is
checked against Discord's OpenAPI spec."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.embeds import LIMITS, ack_line, alert_message, with_ack_line
from tests.bot.conftest import bot_config, running_with
from tests.fakes.discord_emulator import DiscordEmulator
from watchers.config import RuleConfig, parse_config
from watchers.delivery import Alert
from watchers.errors import ConfigError
from watchers.models import Article
from watchers.rules import match_query
from watchers.templates import MENTION_ROOM, mentions_length

# Snowflakes of today's length (19 digits): "<@&…>" takes 23 characters, "<@…>" 22.
ONCALL_ROLES = [1100000000000001000 + i for i in range(40)]
DESK_ROLES = [1100000000000002000 + i for i in range(40)]
BOB, CAROL = 1200000000000000002, 1200000000000000003
RULES: list[dict[str, Any]] = [
    {"name": "oncall", "query": "troops", "severity": "critical",
     "mention_roles": ONCALL_ROLES, "mention_users": [BOB]},
    {"name": "desk", "query": "troops", "severity": "high",
     "mention_roles": DESK_ROLES, "mention_users": [CAROL]},
]


def _config(tmp_path: Path, emu: DiscordEmulator | None, rules: list[dict[str, Any]]
            ) -> dict[str, Any]:
    (tmp_path / "news").mkdir(exist_ok=True)
    sources = [{"name": "news", "type": "folder", "path": "news", "every": "1h", "settle": "0s"}]
    if emu is None:
        return {"storage": {"path": "nw.db"}, "sources": sources, "rules": rules}
    return bot_config(emu, tmp_path, sources=sources, rules=rules)


async def test_every_user_is_pinged_and_roles_up_to_the_room(
        emu: DiscordEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Two rules of 40 roles and one on-call user each fire on one article. Before, the
    mentions were held to 1,000 characters with the roles (sorted by id) first: the alert
    pinged 41 roles, neither user, and nothing said so. Now an embed alert's content gives its
    mentions all its room (but the acknowledgement line's), users first: both users and all
    but a few roles are pinged, those left out are logged once naming the rule that lost
    them, and the alert posts."""
    caplog.set_level(logging.WARNING, logger="newswatch")
    pooled = mentions_length([*ONCALL_ROLES, *DESK_ROLES], [BOB, CAROL])
    assert pooled > LIMITS["content"] - 100  # the two rules' mentions cannot all fit
    async with running_with(emu, tmp_path, _config(tmp_path, emu, RULES),
                            tmp_path / "news") as run:
        doc = {"title": "Troops gather near the border", "text": "Troops gather. More below.",
               "url": "https://news.example/troops", "published": datetime.now(UTC).isoformat()}
        (tmp_path / "news" / "a.json").write_text(json.dumps(doc))
        await run.engine.run_once()
        await run.wait_for(lambda: len(emu.messages(run.alerts_channel)) == 1)
        await run.engine.delivery.drain()
        (msg,) = emu.messages(run.alerts_channel)

        assert msg.pinged_user_ids() == {BOB, CAROL}
        roles = msg.pinged_role_ids()
        # the roles in the rules' order, as many as fit: oncall's all, desk's first ones
        assert sorted(roles) == [*ONCALL_ROLES, *DESK_ROLES][:len(roles)]
        assert len(roles) >= 75
        assert len(msg.content) <= LIMITS["content"]
        # everything mentioned is allowed to ping, and nothing else is
        assert {int(x) for x in re.findall(r"<@&(\d+)>", msg.content)} == roles
        assert emu.validate_all() == []

        # the acknowledgement line is put below the mentions without cutting one
        line = ack_line(2**64 - 1, datetime(9999, 12, 31, tzinfo=UTC))
        assert with_ack_line(msg.content, line) == f"{msg.content}\n{line}"

        # a rule added at run time (the library's add_rule; no Discord command sets
        # mentions) meets the config's check
        with pytest.raises(ConfigError, match=r"'late'.*at most 41"):
            await run.engine.add_rule({"name": "late", "query": "troops",
                                       "mention_roles": ONCALL_ROLES + DESK_ROLES[:5],
                                       "mention_users": [BOB]})

    left = 80 - len(roles)
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING and "left out" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert f"{left} mention(s) of rule(s) desk left out" in warnings[0]


def test_a_text_alert_pings_its_users_before_its_roles() -> None:
    """A text alert keeps half of its content for its text: the pooled mentions of two rules
    fit only in part. Roles sorted by id took it all and no user was pinged; now the users
    come first and every one is pinged, the roles fill what is left."""
    art = Article(title="Troops", text="troops", source="wire", url="https://ok.example/a")
    m = match_query("troops", art)
    assert m is not None
    rules = tuple(RuleConfig.model_validate({**r, "template": "{title} · {link}",
                                             "template_style": "text"}) for r in RULES)
    kwargs = alert_message(Alert(id=1, route="alerts", nonce="n", attempt=1, article=art,
                                 matches=(m,), rules=rules))
    content = kwargs["content"]
    assert len(content) <= LIMITS["content"] and "Troops" in content
    users = [int(x) for x in re.findall(r"<@(\d+)>", content)]
    roles = [int(x) for x in re.findall(r"<@&(\d+)>", content)]
    assert users == [BOB, CAROL]
    assert roles == [*ONCALL_ROLES, *DESK_ROLES][:len(roles)] and len(roles) >= 38
    assert mentions_length(roles, users) <= MENTION_ROOM
    allowed = kwargs["allowed_mentions"]
    assert [o.id for o in allowed.users] == users and [o.id for o in allowed.roles] == roles


def test_an_old_outbox_rule_of_a_hundred_roles_and_users_still_posts() -> None:
    """An alert waiting in the outbox keeps the rule as it was when it matched (read back
    without validation when the model refuses it now): 100 roles and 100 users, about 4,700
    characters. It still posts within Discord's 2,000, every user it can hold pinged before
    any role, and only those mentioned may ping."""
    art = Article(title="Troops", text="troops", source="wire", url="https://ok.example/a")
    roles = list(range(1_000_000_000_000_000_001, 1_000_000_000_000_000_101))
    users = list(range(2_000_000_000_000_000_001, 2_000_000_000_000_000_101))
    rule = RuleConfig.model_construct(name="old", query="troops", mention_role=None,
                                      mention_roles=roles, mention_users=users)
    kwargs = alert_message(Alert(id=1, route="alerts", nonce="n", attempt=1, article=art,
                                 matches=(), rules=(rule,)))
    content = kwargs["content"]
    assert len(content) <= LIMITS["content"]
    mentioned = [int(x) for x in re.findall(r"<@(\d+)>", content)]
    assert mentioned == users[:len(mentioned)] and len(mentioned) >= 80
    assert [o.id for o in kwargs["allowed_mentions"].users] == mentioned
    assert "<@&" not in content and kwargs["allowed_mentions"].roles is False


def test_a_rule_whose_mentions_can_never_fit_is_refused(tmp_path: Path) -> None:
    """45 roles and the on-call user (1,102 characters spelt out) passed `newswatch check`,
    and its alerts silently left 4 roles and the user out. The config now refuses such a rule,
    naming it and the most of its mentions that fit; a rule at the limit is taken."""
    roles = [1100000000000001000 + i for i in range(45)]
    rule = {"name": "oncall", "query": "troops", "severity": "critical",
            "mention_roles": roles, "mention_users": [BOB]}
    with pytest.raises(ConfigError) as err:
        parse_config(_config(tmp_path, None, [rule]), base_dir=tmp_path)
    text = str(err.value)
    assert "rules[0]" in text and "'oncall'" in text
    assert "at most 41" in text and f"{MENTION_ROOM} characters" in text
    # mention_role counts with them
    with pytest.raises(ConfigError, match="at most 41"):
        parse_config(_config(tmp_path, None, [{**rule, "mention_roles": roles[:44],
                                               "mention_role": roles[44]}]), base_dir=tmp_path)
    fits = {**rule, "mention_roles": roles[:40]}
    assert mentions_length(roles[:40], [BOB]) <= MENTION_ROOM
    taken = parse_config(_config(tmp_path, None, [fits]), base_dir=tmp_path)
    assert taken.rules[0].name == "oncall"
