"""Lookups at once, per member and per server (the real discord.py against the emulator, a real
SQLite store): past a cap the member is told privately, at once, while the lookups that hold
the places still run; another server's lookups, and everyone's other commands, answer as ever;
a place is given back however its lookup ends."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bot.conftest import TOKEN, Running, bot_config, start_running
from tests.conftest import SEEDS
from tests.fakes.discord_emulator import DiscordEmulator, InteractionHandle, default_guild
from watchers.config import parse_config

A, B = 1100000000000000001, 1100000000000000501
BOB, OLIVIA = 1200000000000000002, 1200000000000000003  # plain members of both servers
# Backtracks on a long run of "a" and never matches: each article below costs a lookup its
# whole per-article regex budget, so one /search over them runs for seconds.
SLOW = {"query": "/(a|aa)+(b|bb)+$/", "limit": 50}
SLOW_ARTICLES = 200
PATIENCE = 60.0


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    guilds = [default_guild(A, "Newsroom"), default_guild(B, "Other desk")]
    async with DiscordEmulator(token=TOKEN, guilds=guilds) as emu, emu.patch_discord():
        data = bot_config(emu, tmp_path)
        data["discord"]["guild_ids"] = [A, B]
        shutil.copytree(SEEDS, tmp_path / "seeds")
        for i in range(SLOW_ARTICLES):
            (tmp_path / "seeds" / f"slow{i:03d}.txt").write_text(
                f"Dispatch {i}\n" + "a" * 3000 + "!\n", encoding="utf-8")
        run = await start_running(parse_config(data, base_dir=tmp_path), emu, tmp_path / "seeds")
        try:
            await emu.wait_until_identified(timeout=10)
            await run.wait_for(lambda: bool(emu.commands(B)))
            for _ in range(400):
                if await run.engine.count_articles() > SLOW_ARTICLES:
                    break
                await asyncio.sleep(0.05)
            yield run
        finally:
            run.stop.set()
            assert await asyncio.wait_for(run.task, 30) == 0


async def slow(emu: DiscordEmulator, user: int, guild: int = A) -> InteractionHandle:
    """A slow /search by ``user``, once the bot has taken it (deferred: it is running)."""
    handle = await emu.send_interaction("search", SLOW, guild_id=guild, user=user)
    assert (await handle.callback(10))["type"] == 5
    return handle


def running_still(handles: list[InteractionHandle]) -> bool:
    return all(h.original is not None and h.original.loading for h in handles)


async def test_past_the_caps_a_lookup_is_refused_privately_at_once(running: Running) -> None:
    emu = running.emu
    bobs = [await slow(emu, BOB), await slow(emu, BOB)]
    # a third lookup of bob's, whichever command: refused while his two still run
    for name, options in (("search", {"query": "troops"}), ("trend", {"query_or_rule": "kyiv"}),
                          ("rules test", {"query": "troops"}), ("recent", None)):
        refused = await (await emu.send_interaction(name, options, guild_id=A, user=BOB)
                         ).final_message(10)
        assert refused.ephemeral, name
        assert refused.content == "You have 2 lookups running; wait for one to finish.", name
    assert running_still(bobs)
    # others' commands still work: olivia's lookups, and a command that is no lookup
    olivias = [await slow(emu, OLIVIA), await slow(emu, OLIVIA)]
    listed = await (await emu.send_interaction("rules list", guild_id=A, user=BOB)
                    ).final_message(10)
    assert not listed.ephemeral and "troops" in listed.embeds[0]["description"]
    # four lookups run in server A: its admin is refused too; server B is not
    refused = await (await emu.send_interaction("search", {"query": "troops"}, guild_id=A)
                     ).final_message(10)
    assert refused.ephemeral
    assert refused.content == "This server has 4 lookups running; wait for one to finish."
    assert running_still(bobs + olivias)
    other = await (await emu.send_interaction("search", {"query": "troops"}, guild_id=B,
                                              user=BOB)).final_message(PATIENCE)
    assert not other.ephemeral
    footer = other.embeds[0]["footer"]["text"]
    assert "cut short" not in footer and "0 result" not in footer, footer
    # the slow ones answer (cut short, or busy), and then bob may look things up again
    for handle in bobs + olivias:
        await handle.final_message(PATIENCE)
    again = await (await emu.send_interaction("search", {"query": "troops"}, guild_id=A,
                                              user=BOB)).final_message(PATIENCE)
    assert not again.ephemeral and "cut short" not in again.embeds[0]["footer"]["text"]


async def test_a_lookup_that_fails_gives_its_place_back(running: Running) -> None:
    emu = running.emu
    for _ in range(3):  # refused by the command itself, each time: no place is kept
        refused = await (await emu.send_interaction(
            "search", {"query": "troops", "source": "nowhere"}, guild_id=A, user=BOB)
        ).final_message(10)
        assert refused.ephemeral and "no source named 'nowhere'" in refused.content
    for _ in range(3):
        missing = await (await emu.send_interaction("article", {"id": "zzzzzzzz"}, guild_id=A,
                                                    user=BOB)).final_message(10)
        assert missing.ephemeral and missing.content.startswith("No article with id")
    found = await (await emu.send_interaction("search", {"query": "troops"}, guild_id=A,
                                              user=BOB)).final_message(PATIENCE)
    assert not found.ephemeral
