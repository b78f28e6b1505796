"""Architecture: the dependency contracts (in pyproject's [tool.importlinter], checked here and
nowhere else), the front ends' use of the engine facade, the public API, and the slash commands
(unique, described)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import REPO


def test_front_ends_use_the_engine_facade_only() -> None:
    """bot/ makes one Engine call per user action; it never reaches into the engine's parts."""
    inner = {"watch", "service", "delivery", "store", "fetcher", "executor"}
    found = []
    for path in (REPO / "bot").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr in inner
                    and isinstance(node.value, ast.Attribute | ast.Name)
                    and getattr(node.value, "attr", getattr(node.value, "id", "")) in
                    {"engine", "newswatch"}):
                found.append(f"{path.relative_to(REPO)}:{node.lineno} .{node.attr}")
    assert found == []


def test_the_public_api_is_complete() -> None:
    """Every public name the package offers is in __all__, and every name there exists (the
    names load lazily, so ask for each)."""
    import types

    import watchers

    for name in watchers.__all__:
        assert getattr(watchers, name) is not None, name
    public = {n for n, v in vars(watchers).items()
              if not n.startswith("_") and not isinstance(v, types.ModuleType)
              and n not in {"TYPE_CHECKING", "Any"}}
    assert public == set(watchers.__all__)
    assert set(dir(watchers)) == set(watchers.__all__)
    assert {"Engine", "open_engine", "Article", "RuleSet", "Match", "Highlight"} <= public
    # and a name that is not there says so
    try:
        watchers.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("unknown names must raise AttributeError")


def test_a_search_starts_without_the_network_stack() -> None:
    """`newswatch search` on SQLite loads no aiohttp, feedparser, discord or asyncpg, nor the
    story clustering (start-up time)."""
    code = ("import sys, bot.cli\n"
            "from watchers.search import search\nfrom watchers.store import SqliteStore\n"
            "print(','.join(m for m in ('aiohttp', 'feedparser', 'discord', 'asyncpg', "
            "'watchers.stories') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_import_linter_contracts_hold() -> None:
    exe = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(exe)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


async def test_every_command_is_unique_and_has_a_description() -> None:
    import discord
    from discord.ext import commands

    from bot.client import EXTENSIONS

    bot = commands.Bot(command_prefix="!", intents=discord.Intents.none())
    for ext in EXTENSIONS:
        await bot.load_extension(ext)
    seen: set[str] = set()

    def walk(cmds: list[discord.app_commands.Command[Any, ..., Any] | discord.app_commands.Group],
             prefix: str) -> None:
        for c in cmds:
            name = f"{prefix}{c.name}"
            assert name not in seen, f"duplicate command {name}"
            seen.add(name)
            assert c.description and c.description != "…", f"{name} has no description"
            if isinstance(c, discord.app_commands.Group):
                walk(list(c.commands), name + " ")

    # slash commands only: context menus have no description (the bot defines none)
    walk(bot.tree.get_commands(type=discord.AppCommandType.chat_input), "/")
    assert {"/search", "/recent", "/article", "/stats", "/rules list", "/rules test",
            "/rules add", "/rules remove", "/sources list", "/sources add", "/sources remove",
            "/mute", "/unmute"} <= seen
    await bot.close()
