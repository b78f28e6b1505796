"""Fixtures for the Discord side: the emulator, and newswatch running against it for real."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.client import run_discord
from tests.conftest import SEEDS
from tests.fakes.discord_emulator import DiscordEmulator
from watchers.config import parse_config
from watchers.engine import Engine, build_engine

TOKEN = "emulated.sentinel-token.NEWSWATCH-SECRET-1234567890"


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator(token=TOKEN) as e, e.patch_discord():
        yield e


@dataclass
class Running:
    engine: Engine
    emu: DiscordEmulator
    stop: asyncio.Event
    task: asyncio.Task[int]
    seeds: Path

    @property
    def alerts_channel(self) -> int:
        return self.emu.channel("alerts").id

    async def wait_for(self, predicate: Callable[[], bool], seconds: float = 10.0) -> None:
        for _ in range(int(seconds / 0.05)):
            if predicate():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("condition not met in time")


def bot_config(emu: DiscordEmulator, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "storage": {"path": "nw.db"},
        "discord": {"token_env": "NEWSWATCH_TEST_TOKEN", "guild_ids": [emu.guild.id],
                    "api_base": emu.api_base, "gateway_url": emu.gateway_url},
        "channels": {"alerts": emu.channel("alerts").id},
        "sources": [{"name": "seeds", "type": "folder", "path": "seeds", "every": "1s"}],
        "rules": [
            {"name": "troops", "query": "troops OR soldiers", "severity": "high"},
            {"name": "kyiv", "query": "kyiv~"},
        ],
    }
    for key, value in extra.items():
        data[key] = value
    return data


@pytest.fixture
async def running(emu: DiscordEmulator, tmp_path: Path, request: pytest.FixtureRequest
                  ) -> AsyncIterator[Running]:
    """newswatch connected to the emulator, watching a copy of the seeds."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    overrides = getattr(request, "param", {}) or {}
    data = bot_config(emu, tmp_path, **overrides)
    cfg = parse_config(data, base_dir=tmp_path)
    engine = await build_engine(cfg)
    stop = asyncio.Event()
    task = asyncio.create_task(run_discord(engine, TOKEN, stop=stop, guild_ready_timeout=0.05))
    run = Running(engine, emu, stop, task, tmp_path / "seeds")
    try:
        await run.wait_for(lambda: bool(emu.commands(emu.guild.id)) or task.done())
        if task.done():
            task.result()
        await emu.wait_until_identified(timeout=10)
        yield run
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 15) == 0
        await engine.aclose()
