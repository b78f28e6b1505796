"""A rule's name in another case names the rule in every command, as /mute, /unmute and
/recent already took it (names are told apart without case: /rules add refuses 'Troops'
beside 'troops'); and /channels set clears its time zone with 'off' as it clears its other
settings. The real discord.py against the emulator, every request checked against the spec."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.bot.conftest import Running
from watchers.config import RouteConfig

RULES = {"rules": [{"name": "troops", "query": "troops OR soldiers", "severity": "high"},
                   {"name": "kyiv", "query": "kyiv~"},
                   {"name": "Alpha", "query": "troops"}]}


async def say(run: Running, command: str, options: dict[str, object]) -> str:
    """The answer's text with its embeds' (a preview is an embed)."""
    answer = await (await run.emu.send_interaction(command, options)).final_message(timeout=10)
    return str(answer.content) + "".join(json.dumps(e) for e in answer.embeds)


async def all_stored(run: Running) -> None:
    for _ in range(200):
        if await run.engine.count_articles() >= 5:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the seeds were not all stored in time")


@pytest.mark.parametrize("running", [RULES], indirect=True)
async def test_trend_of_a_rules_name_in_another_case_charts_the_rule(running: Running) -> None:
    await all_stored(running)
    exact = await say(running, "trend", {"query_or_rule": "Alpha"})
    assert exact.startswith("**rule Alpha**") and "2 matches" in exact, exact
    for typed in ("alpha", "ALPHA"):
        # it charted the word 'alpha' (no match) beside the rule Alpha
        other = await say(running, "trend", {"query_or_rule": typed})
        assert other.startswith("**rule Alpha**") and "2 matches" in other, other
    assert running.emu.validate_all() == []


@pytest.mark.parametrize("running", [RULES], indirect=True)
async def test_preview_and_remove_take_a_rules_name_in_another_case(running: Running) -> None:
    await all_stored(running)
    preview = await say(running, "rules preview", {"name": "alpha"})
    assert "No rule named" not in preview and "Alpha" in preview, preview
    added = await say(running, "rules add", {"name": "desk", "query": "kyiv"})
    assert "desk" in added
    removed = await say(running, "rules remove", {"name": "DESK"})
    assert "No rule named" not in removed and "removed" in removed.lower(), removed
    assert "desk" not in running.engine.rule_names(running.emu.guild.id)
    # a config rule in another case is the config's, not "shared by every server"
    config = await say(running, "rules remove", {"name": "TROOPS"})
    assert "defined in the config file" in config, config
    assert "troops" in running.engine.rule_names(running.emu.guild.id)
    assert running.emu.validate_all() == []


async def test_channels_set_clears_the_time_zone_with_off(running: Running) -> None:
    guild = running.emu.guild.id
    chosen = await say(running, "channels set", {"timezone": "Europe/Kyiv"})
    assert "timezone Europe/Kyiv" in chosen, chosen
    (route,) = running.engine.server_routes(guild).values()
    assert route.route.timezone == "Europe/Kyiv"
    cleared = await say(running, "channels set", {"timezone": "off"})
    assert "unknown time zone" not in cleared and "timezone" not in cleared, cleared
    (route,) = running.engine.server_routes(guild).values()
    assert route.route.timezone == RouteConfig(target=route.route.target).timezone
    assert running.emu.validate_all() == []
