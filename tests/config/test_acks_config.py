"""Acknowledgement settings: [discord] ack_from / escalate_after / escalation_role and a rule's
mention_roles / mention_users, with errors that name the key."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from watchers.config import parse_config
from watchers.errors import ConfigError

RULE = {"name": "troops", "query": "troops"}


def config(discord: dict[str, Any] | None = None, **rule: Any) -> dict[str, Any]:
    return {"discord": discord or {}, "rules": [{**RULE, **rule}]}


def issues(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    return {i.path: i.message for i in err.value.issues}


def test_defaults() -> None:
    cfg = parse_config(config())
    assert cfg.discord.ack_from == "high"
    assert cfg.discord.escalate_after == timedelta(minutes=15)
    assert cfg.discord.escalation_role is None
    assert cfg.rules[0].mention_roles == [] and cfg.rules[0].mention_users == []


def test_settings_are_read() -> None:
    cfg = parse_config(config({"ack_from": "none", "escalate_after": "1h30m",
                               "escalation_role": 42},
                              mention_roles=[7, 8, 7], mention_users=[9]))
    assert cfg.discord.ack_from == "none"
    assert cfg.discord.escalate_after == timedelta(minutes=90)
    assert cfg.discord.escalation_role == 42
    assert cfg.rules[0].mention_roles == [7, 8]  # a repeated id mentions once
    assert cfg.rules[0].mention_users == [9]


def test_bad_values_name_their_key() -> None:
    found = issues(config({"ack_from": "loud", "escalate_after": "30s",
                           "escalation_role": 0},
                          mention_roles=[5, -1], mention_users=["everyone"]))
    assert set(found) == {"discord.ack_from", "discord.escalate_after",
                          "discord.escalation_role", "rules[0].mention_roles",
                          "rules[0].mention_users[0]"}
    assert "at least 1m" in found["discord.escalate_after"]
    assert "-1 is not a Discord id" in found["rules[0].mention_roles"]
    assert "'none'" in found["discord.ack_from"]


def test_too_many_mentions_are_refused() -> None:
    found = issues(config(mention_users=list(range(1, 102))))
    assert list(found) == ["rules[0].mention_users"]


def test_true_is_not_an_id() -> None:
    """true would pass as the id 1 (a bool is an int to Python)."""
    found = issues(config(mention_roles=[True]))
    assert found == {"rules[0].mention_roles[0]": "expected a whole number, got true"}
