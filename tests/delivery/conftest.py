"""Fixtures for delivery under faults: newswatch running in-process against the emulator with a
world of four destinations, quick backoff, and every captured log line checked for secrets."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import bot.client
import bot.sinks
from bot.logs import install_redaction
from bot.sinks import DiscordSink
from tests.bot.conftest import TOKEN, Running, start_running
from tests.delivery.backends import BACKENDS, Backend, backend_for
from tests.fakes.discord_emulator import ChannelSpec, DiscordEmulator, WebhookSpec, default_guild
from tests.fakes.discord_ratelimit import RateLimitedEmulator
from watchers.config import parse_config
from watchers.engine import Engine

# long enough to be a realistic token, and found by grep wherever it leaks
HOOK_TOKEN = "SENTINEL-webhook-token-" + "x" * 40
HOOK_ID = 1400000000000000777
SEND_TIMEOUT = 0.75  # per attempt: a slow Discord turns into our retry quickly

TOPICS = {"troops": "alerts", "sanctions": "desk", "floods": "hook"}


def world(**kwargs: Any) -> dict[str, Any]:
    """Emulator arguments: the default guild plus #hooks, which has a webhook."""
    guild = default_guild()
    hooks = ChannelSpec(guild.id + 13, "hooks", position=3, topic="Webhook alerts")
    hooks.guild_id = guild.id
    guild.channels.append(hooks)
    hook = WebhookSpec(HOOK_ID, HOOK_TOKEN, hooks.id, "Alerts Hook", guild_id=guild.id)
    return {"token": TOKEN, "guilds": [guild], "webhooks": [hook], **kwargs}


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator(**world()) as e, e.patch_discord():
        yield e


@pytest.fixture
async def limited_emu() -> AsyncIterator[RateLimitedEmulator]:
    """Discord's 5-per-window bucket on message creation, with a short window."""
    e = RateLimitedEmulator(limit=5, per=0.05, **world())
    async with e, e.patch_discord():
        yield e


def config(emu: DiscordEmulator, **extra: Any) -> dict[str, Any]:
    return {
        "storage": {"path": "nw.db"},
        "discord": {"token_env": "NEWSWATCH_TEST_TOKEN", "guild_ids": [emu.guild.id],
                    "api_base": emu.api_base, "gateway_url": emu.gateway_url,
                    "notices": "ops"},
        "channels": {"alerts": emu.channel("alerts").id, "desk": emu.channel("general").id,
                     "ops": emu.channel("ops").id,
                     "hook": f"https://discord.com/api/webhooks/{HOOK_ID}/{HOOK_TOKEN}"},
        # bursts here test delivery itself, so the per-poll message cap is set out of the way;
        # drop_articles moves whole files in, so they are read at once (no settle)
        "sources": [{"name": "wire", "type": "folder", "path": "wire", "every": "1s",
                     "settle": "0s", "max_alerts_per_poll": 1000}],
        "rules": [{"name": t, "query": t, "channel": route} for t, route in TOPICS.items()],
        **extra,
    }


Start = Callable[..., Awaitable[Running]]


@pytest.fixture
async def newswatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                    ) -> AsyncIterator[Start]:
    """``await newswatch(emu)`` starts newswatch on the articles already in ``tmp_path/wire``."""
    monkeypatch.setattr(bot.sinks, "DiscordSink",
                        functools.partial(DiscordSink, timeout=SEND_TIMEOUT))
    runs: list[Running] = []

    async def start(emu: DiscordEmulator, **extra: Any) -> Running:
        (tmp_path / "wire").mkdir(exist_ok=True)
        cfg = parse_config(config(emu, **extra), base_dir=tmp_path)

        def tune(engine: Engine) -> None:
            engine.delivery.base_backoff = 0.05
            engine.delivery.max_backoff = 0.4
            engine.delivery.poll_interval = 0.1

        run = await start_running(cfg, emu, tmp_path / "wire", tune)
        runs.append(run)
        return run

    try:
        yield start
    finally:
        for run in runs:
            run.stop.set()
            assert await asyncio.wait_for(run.task, 15) == 0


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every log line of every test here, debug included, is searched for the secrets."""
    install_redaction()
    for name in ("discord", "newswatch", "watchers", "bot"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield
    lines = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    leaks = [line for line in lines if TOKEN in line or HOOK_TOKEN in line]
    assert not leaks, leaks[:3]


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """The store a crash test's subprocesses write (SQLite here; PostgreSQL under
    ``make crash-pg``), its connection closed after the test."""
    async with backend_for(request, tmp_path) as b:
        yield b
