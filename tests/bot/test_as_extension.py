"""The feature set as extensions in someone else's discord.py bot."""

from __future__ import annotations

import shutil
from pathlib import Path

import discord
from discord.ext import commands

from bot.interactions import NewswatchTree
from tests.bot.conftest import TOKEN, bot_config
from tests.conftest import SEEDS
from tests.fakes.discord_emulator import DiscordEmulator, run_client
from watchers.config import parse_config
from watchers.engine import open_engine


async def test_extensions_load_into_a_plain_bot_and_answer(emu: DiscordEmulator,
                                                           tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    cfg = parse_config(bot_config(emu, tmp_path), base_dir=tmp_path)
    async with open_engine(cfg, start=False) as engine:
        await engine.run_once()  # their bot, our engine: fill the store first
        bot = commands.Bot(command_prefix="!", intents=discord.Intents.none(),
                           guild_ready_timeout=0.05, tree_cls=NewswatchTree)
        bot.newswatch = engine  # type: ignore[attr-defined]
        for ext in ("bot.exts.lookup", "bot.exts.rules", "bot.exts.sources"):
            await bot.load_extension(ext)
        async with run_client(bot, emu, token=TOKEN):
            guild = discord.Object(id=emu.guild.id)
            bot.tree.copy_global_to(guild=guild)
            await bot.tree.sync(guild=guild)
            msg = await (await emu.send_interaction("search", {"query": "kyiv~"})
                         ).final_message(timeout=10)
            assert "3 result(s)" in msg.embeds[0]["footer"]["text"]
            refused = await (await emu.send_interaction(
                "rules add", {"name": "x", "query": "y"}, user="member")).final_message()
            assert refused.ephemeral and "Manage Server" in refused.content
    assert emu.validate_all() == []
