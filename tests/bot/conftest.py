"""Fixtures for the Discord side: the emulator, and newswatch running against it for real."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.client import run_discord
from tests.conftest import SEEDS
from tests.fakes.discord_emulator import DiscordEmulator
from watchers.config import Config, parse_config
from watchers.engine import Engine
from watchers.schedule import ManualClock

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
    overrides = getattr(request, "param", {}) or {}
    async with running_on_seeds(emu, tmp_path, bot_config(emu, tmp_path, **overrides)) as run:
        yield run


@asynccontextmanager
async def running_on_seeds(emu: DiscordEmulator, tmp_path: Path, data: dict[str, Any]
                           ) -> AsyncIterator[Running]:
    """newswatch with config ``data`` watching a copy of the seeds, connected to the emulator;
    on exit it must stop cleanly (exit status 0)."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    async with running_with(emu, tmp_path, data, tmp_path / "seeds") as run:
        yield run


@asynccontextmanager
async def running_with(emu: DiscordEmulator, tmp_path: Path, data: dict[str, Any], folder: Path,
                       tune: Callable[[Engine], None] | None = None) -> AsyncIterator[Running]:
    """newswatch with config ``data`` (relative paths under ``tmp_path``) connected to the
    emulator, ``folder`` being the one its tests write articles into; on exit it must stop
    cleanly (exit status 0)."""
    run = await start_running(parse_config(data, base_dir=tmp_path), emu, folder, tune)
    try:
        await emu.wait_until_identified(timeout=10)
        yield run
    finally:
        run.stop.set()
        assert await asyncio.wait_for(run.task, 15) == 0


def on_clock(clock: ManualClock) -> Callable[[Engine], None]:
    """A ``tune`` for :func:`running_with` that puts polling and delivery on ``clock``."""
    def tune(engine: Engine) -> None:
        engine.delivery.clock = clock
        engine.watch.clock = clock
    return tune


async def start_running(cfg: Config, emu: DiscordEmulator, folder: Path,
                        tune: Callable[[Engine], None] | None = None) -> Running:
    """Start ``newswatch run`` in-process against the emulator; returns once commands synced
    (to the first guild, or globally when the config lists no guild)."""
    engines: list[Engine] = []

    def on_engine(engine: Engine) -> None:
        if tune is not None:
            tune(engine)
        engines.append(engine)

    stop = asyncio.Event()
    task = asyncio.create_task(run_discord(cfg, TOKEN, stop=stop, guild_ready_timeout=0.05,
                                           on_engine=on_engine))
    for _ in range(400):
        if (engines and (emu.commands(emu.guild.id) or emu.commands())) or task.done():
            break
        await asyncio.sleep(0.05)
    if task.done():
        task.result()
    assert engines, "newswatch did not start"
    return Running(engines[0], emu, stop, task, folder)
