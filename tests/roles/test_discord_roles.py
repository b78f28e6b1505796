"""The roles with a Discord token, against the emulator (tests/fakes): a ``deliver`` process
logs in to post alerts that a ``poll`` process wrote and registers no slash commands; a ``bot``
process answers them and posts nothing. Engines of their own, one PostgreSQL database."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from bot.client import run_discord
from tests.bot.conftest import TOKEN, bot_config
from tests.conftest import SEEDS
from tests.fakes.discord_emulator import DiscordEmulator
from tests.roles._support import eventually
from watchers.config import parse_config
from watchers.engine import open_engine


async def test_deliver_posts_without_commands_and_bot_answers_without_posting(
        emu: DiscordEmulator, tmp_path: Path, pg_database: str) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    cfg = parse_config(bot_config(emu, tmp_path, storage={"url": pg_database}),
                       base_dir=tmp_path)
    channel = emu.channel("alerts").id
    stop = asyncio.Event()
    deliver = asyncio.create_task(run_discord(cfg, TOKEN, role="deliver", stop=stop,
                                              guild_ready_timeout=0.05, safety_poll=3600))
    try:
        async with open_engine(cfg, role="poll"):

            async def posted() -> bool:
                assert not deliver.done(), deliver.result()
                return len(emu.messages(channel)) == 5  # the seeds' five alerts

            await eventually(posted, within=30, what="the deliver process posting the alerts")
        assert emu.commands(emu.guild.id) == []  # a deliver process registers no commands
    finally:
        stop.set()
        assert await asyncio.wait_for(deliver, 30) == 0
    stop = asyncio.Event()
    bot = asyncio.create_task(run_discord(cfg, TOKEN, role="bot", stop=stop,
                                          guild_ready_timeout=0.05))
    try:
        async def synced() -> bool:
            assert not bot.done(), bot.result()
            return bool(emu.commands(emu.guild.id))

        await eventually(synced, within=30, what="the bot's commands")
        resp = await emu.send_interaction("search", {"query": "troops"})
        msg = await resp.final_message(timeout=10)
        assert "result(s)" in msg.embeds[0]["footer"]["text"]
    finally:
        stop.set()
        assert await asyncio.wait_for(bot, 30) == 0
    assert len(emu.messages(channel)) == 5  # the bot posted no alert of its own
    assert emu.validate_all() == []


async def test_a_deliver_process_beside_the_bot_leaves_every_command_to_it(
        emu: DiscordEmulator, tmp_path: Path, pg_database: str) -> None:
    """Discord sends each interaction to every session of the bot's token. A deliver process
    running beside the bot answered commands it does not have ("Something went wrong":
    CommandNotFound) before the bot could, and the bot's own answer was refused ("already
    acknowledged") while its change was stored: the member was told it failed."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    cfg = parse_config(bot_config(emu, tmp_path, storage={"url": pg_database}),
                       base_dir=tmp_path)
    stop = asyncio.Event()
    deliver = asyncio.create_task(run_discord(cfg, TOKEN, role="deliver", stop=stop,
                                              guild_ready_timeout=0.05, safety_poll=3600))
    bot = asyncio.create_task(run_discord(cfg, TOKEN, role="bot", stop=stop,
                                          guild_ready_timeout=0.05))
    try:
        async def both_up() -> bool:
            for task in (deliver, bot):
                assert not task.done(), task.result()
            return bool(emu.commands(emu.guild.id)) and emu.live_sessions() == 2

        await eventually(both_up, within=30, what="the deliver and bot processes connected")
        for name, options in (("rules list", {}), ("search", {"query": "troops"}),
                              ("rules add", {"name": "lima", "query": "lima"})):
            msg = await (await emu.send_interaction(name, options)).final_message(timeout=10)
            text = msg.content + " ".join(str(e) for e in msg.embeds)
            assert "Something went wrong" not in text, (name, text)
        choices = await emu.send_autocomplete("recent", {"rule": "li"}, focused="rule")
        assert "lima" in [c["name"] for c in choices]
    finally:
        stop.set()
        assert await asyncio.wait_for(deliver, 30) == 0
        assert await asyncio.wait_for(bot, 30) == 0
    assert emu.validate_all() == []
