"""A server's rule removed and added again under the same name starts with no matches of its
own: /rules list, /recent, /rules preview and /trend do not show the old rule's as the new
one's (they did: a rule's matches are kept by its name). On SQLite and PostgreSQL, the real
discord.py against the emulator, every request checked against the spec."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.bot.conftest import Running, bot_config, running_on_seeds
from tests.fakes.discord_emulator import DiscordEmulator


async def say(run: Running, command: str, options: dict[str, object]) -> str:
    """The answer's text with its embeds'."""
    answer = await (await run.emu.send_interaction(command, options)).final_message(timeout=10)
    return str(answer.content) + "".join(json.dumps(e, ensure_ascii=False) for e in answer.embeds)


async def desk(run: Running) -> tuple[int, int]:
    """The rule desk's matches and posted alerts of the last 7 days."""
    views = await run.engine.rules(guild=run.emu.guild.id)
    (view,) = [v for v in views if v.rule.name == "desk"]
    return view.matches_7d, view.alerts_7d


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_rule_added_again_shows_none_of_the_removed_ones_matches(
        emu: DiscordEmulator, tmp_path: Path, backend: str,
        request: pytest.FixtureRequest) -> None:
    data = bot_config(emu, tmp_path)
    if backend == "postgres":
        data["storage"] = {"url": request.getfixturevalue("pg_database")}
    async with running_on_seeds(emu, tmp_path, data) as run:
        added = await say(run, "rules add", {"name": "desk", "query": "grizzly"})
        assert "saved" in added, added
        (run.seeds / "bear.txt").write_text("Bear news\nA grizzly was seen near Lviv.")
        for _ in range(200):  # matched, and its alert posted
            if await desk(run) == (1, 1):
                break
            await asyncio.sleep(0.05)
        assert await desk(run) == (1, 1)
        assert "**desk**" in (listed := await say(run, "rules list", {})), listed
        assert "· 1 in 7d" in listed.split("**desk**")[1].split("\\n")[0], listed
        assert "Bear news" in await say(run, "recent", {"rule": "desk"})
        ((bear, _),) = await run.engine.recent(rule="desk", guild=run.emu.guild.id)
        assert "desk" in await say(run, "article", {"id": bear.id})

        removed = await say(run, "rules remove", {"name": "desk"})
        assert "removed" in removed.lower(), removed
        assert "saved" in await say(run, "rules add", {"name": "desk", "query": "zebra"})
        listed = await say(run, "rules list", {})
        line = listed.split("**desk**")[1].split("\\n")[0]
        assert "· 0 in 7d" in line and "alert(s)" not in line, listed
        assert "Bear news" not in await say(run, "recent", {"rule": "desk"})
        preview = await say(run, "rules preview", {"name": "desk"})
        assert "has matched no stored article yet" in preview, preview
        shown = await say(run, "article", {"id": bear.id})
        assert "Bear news" in shown and "desk" not in shown, shown
        trend = await say(run, "trend", {"query_or_rule": "desk"})
        assert trend.startswith("**rule desk**") and "0 matches" in trend, trend
        assert run.emu.validate_all() == []
