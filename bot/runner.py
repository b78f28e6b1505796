"""``newswatch run``: the engine with the console or Discord front end, until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

import aiohttp

from bot.console import ConsoleSink
from bot.logs import add_secret, say
from watchers.config import Config
from watchers.engine import Engine, build_engine
from watchers.service import PollReport

__all__ = ["run"]

log = logging.getLogger("newswatch")


def token_from_env(cfg: Config) -> str | None:
    """The bot token from the variable the config names (never from the file)."""
    value = os.environ.get(cfg.discord.token_env, "").strip()
    return value or None


def _report(report: PollReport) -> None:
    if report.error:
        return  # the service logs failures itself
    if report.baseline and report.new:
        log.info("source %s: first poll, %d items recorded as a baseline (no alerts)",
                 report.source, report.new)
    elif report.new:
        log.info("source %s: %d new article(s), %d alert(s)", report.source, report.new,
                 report.alerts)


async def _intro(engine: Engine, where: str) -> None:
    held = await engine.store.count_articles()
    n_src, n_rules = len(engine.service.sources), len(engine.service.rules)
    if held:
        say(f"the database {engine.store.path} already holds {held} article(s); "
             f"watching {n_src} source(s) with {n_rules} rule(s) for new ones → {where}")
    else:
        say(f"watching {n_src} source(s) with {n_rules} rule(s) → {where}")


async def run(cfg: Config, *, once: bool = False, console: bool = False) -> int:
    token = None if console else token_from_env(cfg)
    add_secret(token)
    if token is None and not console:
        say(f"no Discord token in ${cfg.discord.token_env}: alerts go to this terminal"
             + (" (and to webhooks)" if _has_webhooks(cfg) else ""))
    engine = await build_engine(cfg, on_report=_report,
                                notify=lambda route, msg: log.warning("%s", msg))
    try:
        if token is not None:
            from bot.client import run_discord

            return await run_discord(engine, token, once=once)
        async with aiohttp.ClientSession() as session:
            _attach_webhooks(engine, session)
            engine.default_sink = ConsoleSink()
            await _intro(engine, "console" if not engine.sinks else "webhooks and console")
            if once:
                await engine.store.requeue_interrupted()
                await engine.service.run_once()
                await engine.delivery.drain()
                return 0
            await engine.start()
            await _wait_for_stop()
            say("stopping")
            await engine.delivery.stop()  # webhook sends in flight finish before the session closes
            return 0
    finally:
        await engine.aclose()


def _has_webhooks(cfg: Config) -> bool:
    return any(isinstance(v, str) for v in cfg.channels.values())


def _attach_webhooks(engine: Engine, session: aiohttp.ClientSession) -> None:
    """Webhook routes need no gateway: deliver them even without a bot token."""
    from bot.client import point_at
    from bot.delivery import discord_sinks

    point_at(engine.config.discord.api_base, None)
    engine.sinks = discord_sinks(engine.config.channels, session=session)


async def _wait_for_stop() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
