"""Every extension under bot/exts loads into one bot, NewsBot loads them all, and no two slash
commands share a name; every command's description is its one-line docstring."""

from __future__ import annotations

import pkgutil
from collections import Counter
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

import bot.exts
from bot.client import EXTENSIONS
from bot.interactions import NewswatchTree


def discovered() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(bot.exts.__path__, "bot.exts.")
                  if m.ispkg)


async def all_loaded() -> commands.Bot:
    b = commands.Bot(command_prefix="!", intents=discord.Intents.none(),
                     tree_cls=NewswatchTree)
    for ext in discovered():
        await b.load_extension(ext)
    return b


def walk(b: commands.Bot) -> list[app_commands.Command[Any, ..., Any]]:
    return [c for c in b.tree.walk_commands() if isinstance(c, app_commands.Command)]


async def test_newsbot_loads_every_extension_package() -> None:
    assert discovered() == sorted(EXTENSIONS)


async def test_no_two_commands_share_a_name() -> None:
    # each extension on its own, then all together: a clash shows up either as discord.py's
    # refusal to add the second one, or as a repeated qualified name here
    names: list[str] = []
    for ext in discovered():
        b = commands.Bot(command_prefix="!", intents=discord.Intents.none(),
                         tree_cls=NewswatchTree)
        await b.load_extension(ext)
        names += [c.qualified_name for c in walk(b)]
        top = [c.name for c in b.tree.get_commands()]
        assert len(top) == len(set(top)), ext
    repeated = [n for n, k in Counter(names).items() if k > 1]
    assert repeated == []
    together = await all_loaded()
    assert sorted(c.qualified_name for c in walk(together)) == sorted(names)
    assert {"search", "recent", "article", "stats", "rules add", "mute", "sources remove",
            "alerts resume"} <= set(names)


async def test_every_command_is_described_by_its_one_line_docstring() -> None:
    for command in walk(await all_loaded()):
        doc = (command.callback.__doc__ or "").strip()
        assert doc and "\n" not in doc, command.qualified_name
        assert command.description == doc, command.qualified_name
        assert len(doc) <= 100, command.qualified_name  # Discord's limit for a description
