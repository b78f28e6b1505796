"""Discord edges, against the emulator with the real discord.py client: servers not in
``guild_ids`` are refused, the admin role by name, private error references, option helpers."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from bot.interactions import NOT_ENABLED, NewswatchTree
from tests.bot.conftest import TOKEN, Running, bot_config, running_on_seeds
from tests.fakes.discord_emulator import (
    DiscordEmulator,
    MemberSpec,
    UserSpec,
    default_guild,
    run_client,
)
from watchers.errors import NewswatchError

OTHER_GUILD = 1100000000000000777
CAROL = 1200000000000000009  # a member of the first guild with no role at all


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    """Two servers share the bot; newswatch is configured for the first only."""
    home = default_guild()
    home.members.append(MemberSpec(UserSpec(CAROL, "carol", "Carol"), []))
    async with DiscordEmulator(token=TOKEN, guilds=[home, default_guild(OTHER_GUILD, "Other")]
                               ) as e, e.patch_discord():
        yield e


async def register_globally(emu: DiscordEmulator) -> None:
    """What an earlier deployment without guild_ids leaves behind: the same commands, global,
    so members of any server the bot is in can send them."""
    keep = ("name", "description", "options", "type", "default_member_permissions", "nsfw",
            "contexts", "integration_types")
    body = [{k: c[k] for k in keep if c.get(k) is not None} for c in emu.commands(emu.guild.id)]
    async with aiohttp.ClientSession() as http:
        url = f"{emu.api_base}/applications/{emu.application_id}/commands"
        async with http.put(url, json=body, headers={"Authorization": f"Bot {TOKEN}"}) as resp:
            assert resp.status == 200, await resp.text()


async def test_other_servers_are_refused_privately(running: Running) -> None:
    emu = running.emu
    await register_globally(emu)
    for name, options in [("search", {"query": "troops"}), ("stats", {}),
                          ("rules add", {"name": "x", "query": "troops"}),
                          ("mute", {"rule": "troops", "duration": "1h"})]:
        msg = await (await emu.send_interaction(name, options, guild_id=OTHER_GUILD)
                     ).final_message()
        assert msg.ephemeral and msg.content == NOT_ENABLED, name
    assert running.engine.rule_names() == ["kyiv", "troops"]
    assert (await running.engine.rules())[0].muted_until is None
    elsewhere = await emu.send_autocomplete("recent", {"rule": "ky"}, focused="rule",
                                            guild_id=OTHER_GUILD)
    assert elsewhere == []
    at_home = await emu.send_autocomplete("recent", {"rule": "ky"}, focused="rule")
    assert [c["value"] for c in at_home] == ["kyiv"]
    ok = await (await emu.send_interaction("stats")).final_message()
    assert not ok.ephemeral and ok.embeds


@pytest.fixture
async def named_admin_role(emu: DiscordEmulator, tmp_path: Path) -> AsyncIterator[Running]:
    """newswatch with ``admin_role = "Readers"`` (a role name; bob holds it, carol does not)."""
    data = bot_config(emu, tmp_path)
    data["discord"]["admin_role"] = "Readers"
    async with running_on_seeds(emu, tmp_path, data) as run:
        yield run


async def test_admin_role_by_name_is_a_role_of_this_server(named_admin_role: Running) -> None:
    emu = named_admin_role.emu
    refused = await (await emu.send_interaction(
        "mute", {"rule": "troops", "duration": "1h"}, user=CAROL)).final_message()
    assert refused.ephemeral and "Manage Server" in refused.content
    allowed = await (await emu.send_interaction(
        "mute", {"rule": "troops", "duration": "1h"}, user="member")).final_message()
    assert "muted until" in allowed.content
    await register_globally(emu)
    # bob holds a role named "Readers" in the other server too, and is still refused there
    other = await (await emu.send_interaction(
        "unmute", {"rule": "troops"}, user="member", guild_id=OTHER_GUILD)).final_message()
    assert other.ephemeral and other.content == NOT_ENABLED
    assert (await named_admin_role.engine.rules())[1].muted_until is not None


async def test_duration_options_suggest_and_explain(running: Running) -> None:
    emu = running.emu
    typed = await emu.send_autocomplete("mute", {"rule": "troops", "duration": "90m"},
                                        focused="duration")
    assert [c["value"] for c in typed][:1] == ["90m"]
    started = await emu.send_autocomplete("mute", {"rule": "troops", "duration": "1"},
                                          focused="duration")
    assert {c["value"] for c in started} == {"10m", "1h", "12h", "1d"}
    bad = await (await emu.send_interaction(
        "sources add", {"name": "x", "url": "https://example.org/feed", "every": "often"})
    ).final_message()
    assert bad.ephemeral and bad.content.startswith("every")
    synced = {c["name"]: c for c in emu.commands(emu.guild.id)}
    (add,) = [o for o in synced["rules"]["options"] if o["name"] == "add"]
    (severity,) = [o for o in add["options"] if o["name"] == "severity"]
    assert [c["value"] for c in severity["choices"]] == ["info", "low", "medium", "high",
                                                         "critical"]


async def test_an_option_of_the_wrong_kind_is_refused_privately_by_name(
        running: Running) -> None:
    """A hand-made interaction with 2.5 or "abc" for /search's whole-number limit passed the
    options' check, the command deferred in public and the engine's TypeError showed as a
    public "Something went wrong". Refused privately, naming the option."""
    emu = running.emu
    cmd, _ = emu._find_command("search", emu.guild.id)
    for value in (2.5, "abc"):
        # as a hand-made request sends it: the emulator's own helper makes the value a number
        data = {"id": cmd["id"], "name": "search", "type": 1, "guild_id": str(emu.guild.id),
                "options": [{"type": 3, "name": "query", "value": "troops"},
                            {"type": 4, "name": "limit", "value": value}]}
        payload, _, _ = emu._interaction_base(2, data, user="admin", guild_id=None,
                                              channel_id=None, locale="en-US")
        said = await (await emu._send(payload)).final_message()
        assert said.ephemeral and said.content.startswith("limit\\: a whole number"), said.content
    # "3M" (months, which the parser refuses) was offered as "3m", minutes
    offered = await emu.send_autocomplete("mute", {"rule": "troops", "duration": "3M"},
                                          focused="duration")
    assert "3m" not in [c["value"] for c in offered]
    assert emu.validate_all() == []


class Broken(commands.Cog):
    """Commands that fail: one on purpose (the user's mistake), one by surprise (a bug)."""

    @app_commands.command(name="mistake")
    async def mistake(self, interaction: discord.Interaction[Any]) -> None:
        """Fails with an error the user can act on."""
        raise NewswatchError("no rule named 'x'")

    @app_commands.command(name="bug")
    async def bug(self, interaction: discord.Interaction[Any]) -> None:
        """Fails with an error nobody expected."""
        raise RuntimeError("internal detail: /srv/newswatch/secret-path")


async def test_an_unexpected_error_answers_privately_with_a_logged_reference(
        emu: DiscordEmulator, caplog: pytest.LogCaptureFixture) -> None:
    b = commands.Bot(command_prefix="!", intents=discord.Intents.none(),
                     tree_cls=NewswatchTree, guild_ready_timeout=0.05)
    await b.add_cog(Broken())
    async with run_client(b, emu, token=TOKEN):
        guild = discord.Object(id=emu.guild.id)
        b.tree.copy_global_to(guild=guild)
        await b.tree.sync(guild=guild)
        with caplog.at_level(logging.DEBUG, logger="newswatch"):
            expected = await (await emu.send_interaction("mistake")).final_message()
            surprise = await (await emu.send_interaction("bug")).final_message()
    assert expected.ephemeral and "no rule named" in expected.content
    assert "ref" not in expected.content
    assert surprise.ephemeral and "secret-path" not in surprise.content
    m = re.fullmatch(r"Something went wrong \(ref ([0-9a-f]{6})\); it has been logged\.",
                     surprise.content)
    assert m, surprise.content
    (record,) = [r for r in caplog.records if m.group(1) in r.getMessage()]
    assert record.levelno == logging.ERROR and "/bug" in record.getMessage()
    trace = record.exc_text or logging.Formatter().formatException(record.exc_info)  # type: ignore[arg-type]
    assert "RuntimeError" in trace and "secret-path" in trace


async def test_a_reply_echoing_a_query_pings_nobody(running: Running) -> None:
    """A backtick in a query ends the reply's code span; the mentions after it must stay text.
    An admin without Mention Everyone could otherwise ping the whole server through /rules."""
    emu = running.emu
    role = emu.guild.role("Readers").id
    query = f"/x`<@&{role}> @everyone <@1200000000000000002>`/"
    msg = await (await emu.send_interaction("rules add", {"name": "inj", "query": query})
                 ).final_message()
    assert "saved" in msg.content
    assert not msg.pings_everyone()
    assert msg.pinged_role_ids() == set() and msg.pinged_user_ids() == set()
    assert "`" not in msg.content.split("saved: ", 1)[1].strip("`")  # one code span, unbroken


async def test_adding_a_rule_under_a_name_in_use_says_what_it_replaced(running: Running) -> None:
    emu = running.emu
    first = await (await emu.send_interaction(
        "rules add", {"name": "dup", "query": "troops", "severity": "critical"})).final_message()
    assert "replaced" not in first.content
    again = await (await emu.send_interaction("rules add", {"name": "dup", "query": "grizzly"})
                   ).final_message()
    assert "saved" in again.content
    assert "(replaced `troops`" in again.content and "critical" in again.content


async def test_look_alike_names_and_addresses_are_refused(running: Running) -> None:
    """A zero-width joiner made a second 'kyiv' rule look like the first in every list and
    autocomplete; a right-to-left override made a feed's address read as another one."""
    emu = running.emu
    for name in ("troops\u200d", "troops\u200c", "tro\u200bops"):
        msg = await (await emu.send_interaction("rules add", {"name": name, "query": "grizzly"})
                     ).final_message()
        assert msg.ephemeral and msg.content.startswith("name"), msg.content
        assert "saved" not in msg.content
    names = [c["value"] for c in await emu.send_autocomplete(
        "mute", {"rule": "tro", "duration": "1h"}, focused="rule")]
    assert names == ["troops"]
    msg = await (await emu.send_interaction(
        "sources add", {"name": "spoof", "url": "https://ex\u202eample.org/feed"})
    ).final_message()
    assert msg.ephemeral and "direction\\-changing" in msg.content  # markdown-escaped
    assert "spoof" not in running.engine.source_names(None)


async def test_a_config_channel_the_bot_cannot_see_is_named_at_connect(
        emu: DiscordEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A mistyped channel id (or a channel deleted) was found only when its route's first alert
    paused it, "404 Unknown Channel"; the channels the bot sees are not named."""
    caplog.set_level(logging.WARNING, logger="newswatch")
    data = bot_config(emu, tmp_path)
    data["channels"] = {"alerts": emu.channel("alerts").id, "gone": 1100000000000009999}
    data["rules"][1]["channel"] = "gone"
    async with running_on_seeds(emu, tmp_path, data) as run:
        await run.wait_for(lambda: "cannot see channel" in caplog.text)
    said = [r.getMessage() for r in caplog.records if r.name == "newswatch"
            and r.getMessage().startswith("route ")]
    assert said == ["route gone: the bot cannot see channel 1100000000000009999 (not found: a "
                    "mistyped id, a channel deleted, or one in a server the bot is not in); its "
                    "alerts will be held when they are sent (see /alerts status)"], said
    assert emu.validate_all() == []


@pytest.mark.parametrize(("command", "options", "shown"), [
    ("search", {"query": "a\x00b\x07c\x1b[31md\x7f AND ("}, "a␀b␇c␛[31md␡ AND ("),
    ("article", {"id": "\x00\x00\x00\x00"}, "␀␀␀␀"),
])
async def test_control_characters_in_an_answer_are_shown_as_their_pictures(
        running: Running, command: str, options: dict[str, Any], shown: str) -> None:
    msg = await (await running.emu.send_interaction(command, options)).final_message()
    assert msg.ephemeral and shown in msg.content
    assert not any((ord(c) < 32 and c != "\n") or c == "\x7f" for c in msg.content)


async def test_a_feed_added_in_discord_takes_an_outlet_and_a_blank_one_is_refused(
        running: Running) -> None:
    """A team following a publisher's feeds through one bridge says which outlet each is, as
    the config file's ``outlet`` does, so that min_sources counts them right."""
    emu = running.emu
    guild = emu.guild.id
    added = await (await emu.send_interaction("sources add", {
        "name": "apworld", "url": "https://example.org/ap/world", "outlet": "AP"})
    ).final_message()
    assert not added.ephemeral and added.content.startswith("Watching **apworld**"), \
        added.content
    assert running.engine.tenancy.follows_of(guild)["apworld"].outlet == "AP"
    listed = await (await emu.send_interaction("sources list", {})).final_message()
    (line,) = [ln for ln in listed.embeds[0]["description"].split("\n") if "apworld" in ln]
    assert "outlet AP" in line, line
    synced = {c["name"]: c for c in emu.commands(guild)}
    (add,) = [o for o in synced["sources"]["options"] if o["name"] == "add"]
    assert "outlet" in [o["name"] for o in add["options"]]
    blank = await (await emu.send_interaction("sources add", {
        "name": "apus", "url": "https://example.org/ap/us", "outlet": "   "})
    ).final_message()
    assert blank.ephemeral and blank.content.startswith("outlet"), blank.content
    assert "apus" not in running.engine.tenancy.follows_of(guild)
