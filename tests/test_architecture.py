"""Dependency direction: the engine never imports the front end or discord.py; rules do no I/O;
extensions stay thin and independent; every slash command is unique and described."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def imports_of(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (REPO / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
                names.add(node.module)
        found[str(path.relative_to(REPO))] = names
    return found


def test_watchers_never_imports_bot_or_discord() -> None:
    front = {"bot", "discord"}
    bad = {f: n & front for f, n in imports_of("watchers").items() if n & front}
    assert bad == {}


def test_rules_do_no_io() -> None:
    forbidden = {"aiohttp", "aiosqlite", "sqlite3", "socket", "watchers.sources",
                 "watchers.service", "watchers.store", "watchers.engine"}
    bad = {f: n & forbidden for f, n in imports_of("watchers/rules").items() if n & forbidden}
    assert bad == {}


def test_extensions_are_thin_and_independent() -> None:
    for f, names in imports_of("bot/exts").items():
        assert not names & {"aiohttp", "feedparser", "rapidfuzz", "aiosqlite"}, f
        own = f.split("/")[2] if f.count("/") >= 3 else None
        others = {n for n in names if n.startswith("bot.exts.") and n.split(".")[2] != own}
        assert not others, f"{f} imports another extension: {others}"


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

    def walk(cmds: list[discord.app_commands.Command | discord.app_commands.Group], prefix: str
             ) -> None:  # type: ignore[type-arg]
        for c in cmds:
            name = f"{prefix}{c.name}"
            assert name not in seen, f"duplicate command {name}"
            seen.add(name)
            assert c.description and c.description != "…", f"{name} has no description"
            if isinstance(c, discord.app_commands.Group):
                walk(list(c.commands), name + " ")

    walk(bot.tree.get_commands(), "/")
    assert {"/search", "/recent", "/article", "/stats", "/rules list", "/rules test",
            "/rules add", "/rules remove", "/sources list", "/sources add", "/sources remove",
            "/mute", "/unmute"} <= seen
    await bot.close()
