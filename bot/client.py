"""NewsBot: the discord.py front end. The engine is built outside and injected; setup_hook loads
the extensions, starts the engine and syncs slash commands."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

import aiohttp
import discord
import yarl
from discord.ext import commands

from bot.delivery import discord_sinks
from bot.logs import add_secret
from watchers.engine import Engine

__all__ = ["EXTENSIONS", "NewsBot", "point_at", "run_discord"]

log = logging.getLogger("newswatch")

EXTENSIONS = ("bot.exts.admin", "bot.exts.lookup", "bot.exts.rules", "bot.exts.sources")


def point_at(api_base: str | None, gateway_url: str | None) -> None:
    """Aim discord.py at a Discord-compatible server (or the test emulator).

    discord.py keeps these as class attributes, so this is process-wide by nature.
    """
    if api_base:
        discord.http.Route.BASE = api_base.rstrip("/")
    if gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


class NewsBot(commands.Bot):
    """A commands.Bot that carries the engine (``bot.newswatch``) and starts it in setup_hook."""

    def __init__(self, engine: Engine, *, guild_ids: list[int], admin_role: int | str | None = None,
                 start_engine: bool = True, **options: object) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(command_prefix=commands.when_mentioned, intents=intents,
                         help_command=None, **options)  # type: ignore[arg-type]
        self.newswatch = engine
        self.guild_ids = guild_ids
        self.admin_role = admin_role
        self._start_engine = start_engine
        self.synced: dict[int, int] = {}
        self.ready_event = asyncio.Event()

    async def setup_hook(self) -> None:
        for ext in EXTENSIONS:
            await self.load_extension(ext)
        if self._start_engine:
            await self.newswatch.start()
        for gid in self.guild_ids:
            guild = discord.Object(id=gid)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            self.synced[gid] = len(synced)
            log.info("synced %d slash commands to guild %s", len(synced), gid)

    async def close(self) -> None:
        # discord.py does not cancel its ready-delay task on close; left alone it dispatches
        # on_ready into a closed client.
        ready_task = getattr(self._connection, "_ready_task", None)
        if ready_task is not None:
            ready_task.cancel()
        await super().close()

    async def on_ready(self) -> None:
        log.info("connected to Discord as %s", self.user)
        self.ready_event.set()


async def run_discord(engine: Engine, token: str, *, once: bool = False,
                      stop: asyncio.Event | None = None, guild_ready_timeout: float = 2.0) -> int:
    """Connect, deliver alerts to Discord and answer slash commands until ``stop`` (or a signal)."""
    cfg = engine.config
    add_secret(token)
    point_at(cfg.discord.api_base, cfg.discord.gateway_url)
    async with aiohttp.ClientSession() as session:
        bot = NewsBot(engine, guild_ids=cfg.discord.guild_ids, admin_role=cfg.discord.admin_role,
                      start_engine=not once, guild_ready_timeout=guild_ready_timeout)
        engine.sinks = discord_sinks(cfg.channels, client=bot, session=session)
        unrouted = sorted({r.channel for r in engine.service.rules} - set(engine.sinks))
        if unrouted:
            log.warning("no [channels] entry for route(s) %s: their alerts stay pending",
                        ", ".join(unrouted))
        stop = stop or asyncio.Event()
        async with bot:
            runner = asyncio.create_task(bot.start(token), name="newswatch-discord")
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
            try:
                if once:
                    await _until_ready(bot, runner)
                    await engine.store.requeue_interrupted()
                    await engine.service.run_once()
                    await engine.delivery.drain()
                else:
                    waiter = asyncio.create_task(stop.wait())
                    await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    if runner.done():
                        runner.result()  # surface a login failure
            except discord.LoginFailure:
                log.error("Discord refused the token in $%s", cfg.discord.token_env)
                return 1
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(NotImplementedError, RuntimeError):
                        loop.remove_signal_handler(sig)
                await engine.delivery.stop()  # sends in flight finish while Discord is reachable
                await bot.close()
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await runner
                await _settle_event_tasks()
    return 0


async def _settle_event_tasks() -> None:
    """Let tasks discord.py started before the close (event handlers, the ready delay, view
    timeouts) finish or cancel them, so none is destroyed pending when the loop ends."""
    package = os.path.dirname(discord.__file__)

    def from_discord(task: asyncio.Task[object]) -> bool:
        code = getattr(task.get_coro(), "cr_code", None)
        return bool(code and code.co_filename.startswith(package))

    current = asyncio.current_task()
    for _ in range(5):  # a finishing handler may schedule another event; settle those too
        await asyncio.sleep(0)
        pending = [t for t in asyncio.all_tasks() if t is not current and not t.done()
                   and (t.get_name().startswith("discord.py: ") or from_discord(t))]
        if not pending:
            return
        _, still = await asyncio.wait(pending, timeout=1)
        for t in still:
            t.cancel()
        await asyncio.gather(*still, return_exceptions=True)


async def _until_ready(bot: NewsBot, runner: asyncio.Task[None]) -> None:
    ready = asyncio.create_task(bot.ready_event.wait())
    done, _ = await asyncio.wait({ready, runner}, return_when=asyncio.FIRST_COMPLETED)
    if runner in done:
        ready.cancel()
        runner.result()
        raise RuntimeError("the Discord connection ended before it was ready")
