"""NewsBot: the discord.py front end. ``run_discord`` builds the session, the bot and the engine
(as in discord.py's advanced_startup example) and owns their lifetimes; setup_hook loads the
extensions, starts the engine and syncs slash commands: to each server of ``[discord]
guild_ids``, or globally when that list is empty.

One DiscordSink serves every route: the config file's and the ones servers pick with
``/rules add channel:`` (added as the engine reports them, before it starts)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Callable
from datetime import timedelta

import aiohttp
import discord
import yarl
from discord.ext import commands

from bot.interactions import NewswatchTree
from bot.logs import add_secret, quiet_discord_reconnects, say
from bot.runner import StopSignals, once_unless_stopped, report_poll, until_stopped
from bot.sinks import ChannelTarget, DiscordSink, discord_sink
from watchers.config import Config, RouteConfig, routes_sent_to
from watchers.delivery import Sink
from watchers.engine import Engine, open_engine
from watchers.errors import ConfigError, ConfigIssue
from watchers.roles import Role
from watchers.sources.base import printable

__all__ = ["EXTENSIONS", "GLOBAL", "NewsBot", "point_at", "run_discord", "serve_server_routes"]

log = logging.getLogger("newswatch")

#: The key of :attr:`NewsBot.synced` for a global sync (no guild has id 0).
GLOBAL = 0

EXTENSIONS = ("bot.exts.acks", "bot.exts.admin", "bot.exts.lookup", "bot.exts.rules",
              "bot.exts.sources", "bot.exts.trend")


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

    def __init__(self, *, guild_ids: list[int], admin_role: int | str | None = None,
                 start_engine: bool = True, slash_commands: bool = True,
                 **options: object) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        # No reply pings anyone unless it says so: an alert names the roles and users its rules
        # ping, and nothing else the bot sends (a command's answer echoing a query, a name)
        # may turn text into a ping.
        options.setdefault("allowed_mentions", discord.AllowedMentions.none())
        # A 429 asking for more than this (discord.py's least) is raised with its retry_after,
        # which delivery honours for that route, instead of slept through: the sink's timeout
        # would cut the sleep short and the route would retry on its own shorter backoff.
        options.setdefault("max_ratelimit_timeout", 30.0)
        super().__init__(command_prefix=commands.when_mentioned, intents=intents,
                         help_command=None, tree_cls=NewswatchTree,
                         **options)  # type: ignore[arg-type]
        self.newswatch: Engine | None = None
        self.guild_ids = guild_ids
        self.admin_role = admin_role
        quiet_discord_reconnects()  # however the bot is run (the CLI, a host's own logging)
        self._start_engine = start_engine
        # False: a deliver process only posts; the bot process answers the commands.
        self._slash_commands = slash_commands
        # commands synced, by guild id (GLOBAL: synced globally)
        self.synced: dict[int, int] = {}
        self.ready_event = asyncio.Event()
        # command syncs Discord failed for now, tried again in the background
        self._sync_again: asyncio.Task[None] | None = None
        self._sync_wait: float | None = None  # seconds a rate limit asked for
        self._channels_checked = False  # the config file's channels, looked for once

    @property
    def answers_commands(self) -> bool:
        """Whether this process answers slash commands (a deliver process leaves them to the
        bot process: each interaction reaches every session of the token)."""
        return self._slash_commands

    async def setup_hook(self) -> None:
        if self.newswatch is None:
            raise RuntimeError("set bot.newswatch to an engine before starting the bot")
        if self._start_engine:
            await self.newswatch.start()
        if not self._slash_commands:
            return
        for ext in EXTENSIONS:
            await self.load_extension(ext)
        # Alerts do not wait for the commands: a sync Discord refuses for now (its command
        # endpoints are tightly rate-limited, and a supervisor restarting the bot syncs at each
        # start) is tried again in the background; the commands synced before still answer.
        later = [gid for gid in (self.guild_ids or [GLOBAL]) if await self._sync(gid) is None]
        if later:
            self._sync_again = asyncio.create_task(self._sync_later(later),
                                                   name="newswatch-command-sync")

    async def _sync_guild(self, gid: int) -> bool:
        """Sync the slash commands to one server of ``guild_ids`` (see :meth:`_sync`); whether
        they were synced."""
        return bool(await self._sync(gid))

    async def _sync(self, gid: int) -> bool | None:
        """Sync the slash commands to one server of ``guild_ids``, or globally (``GLOBAL``:
        they reach every server the bot is invited to; Discord may take a while to show them,
        and each server sees only its own rules and sources). True when synced; False when it
        never will be as things are: a server the bot is not in (removed, or never invited:
        the others are served, and it gets them when it invites the bot, on_guild_join), or
        commands Discord refuses as written; None when Discord failed for now (a rate limit,
        a 5xx, the network): :meth:`_sync_later` tries again."""
        guild = None if gid == GLOBAL else discord.Object(id=gid)
        where = "globally (every server; guild_ids is empty)" if guild is None else (
            f"to guild {gid}")
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        try:
            synced = await self.tree.sync(guild=guild)
        except discord.Forbidden as exc:
            if guild is None:
                log.error("Discord refused the slash commands %s: %s", where, _refusal(exc))
                return False
            log.warning("cannot sync slash commands to guild %s: the bot is not in it (invite "
                        "it there, or take the server out of [discord] guild_ids)", gid)
            return False
        except discord.RateLimited as exc:
            self._sync_wait = exc.retry_after
            log.warning("cannot sync slash commands %s yet: Discord rate-limits it for %.0f s; "
                        "alerts are delivered meanwhile, and the commands synced before answer",
                        where, exc.retry_after)
            return None
        except discord.HTTPException as exc:
            if 400 <= exc.status < 500 and exc.status != 429:
                log.error("Discord refused the slash commands %s: %s", where, _refusal(exc))
                return False
            log.warning("cannot sync slash commands %s yet: %s; alerts are delivered meanwhile, "
                        "and it is tried again", where, _refusal(exc))
            return None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("cannot sync slash commands %s yet: %s; tried again later", where,
                        str(exc) or type(exc).__name__)
            return None
        self.synced[gid] = len(synced)
        log.info("synced %d slash commands %s", len(synced), where)
        return True

    async def _sync_later(self, gids: list[int]) -> None:
        """Sync again what Discord failed for now, after its rate limit or a backoff (a minute,
        doubling to half an hour), until each is synced or never will be."""
        delay = COMMAND_SYNC_RETRY_S
        while gids:
            await asyncio.sleep(max(delay, self._sync_wait or 0.0))
            self._sync_wait = None
            gids = [gid for gid in gids if await self._sync(gid) is None]
            delay = min(delay * 2, COMMAND_SYNC_RETRY_MAX_S)

    async def close(self) -> None:
        # discord.py does not cancel its ready-delay task on close; left alone it dispatches
        # on_ready into a closed client.
        ready_task = getattr(self._connection, "_ready_task", None)
        if ready_task is not None:
            ready_task.cancel()
        if self._sync_again is not None:
            self._sync_again.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_again
        await super().close()

    async def on_ready(self) -> None:
        log.info("connected to Discord as %s", self.user)
        if self.newswatch is not None:
            # Removed from a server, or invited back, while newswatch was not connected.
            await self.newswatch.present_in(lambda: [g.id for g in self.guilds],
                                            self._config_routes_in)
            if not self._channels_checked:
                self._channels_checked = True
                await self._check_config_channels()
        self.ready_event.set()

    async def _check_config_channels(self) -> None:
        """Say at connect which of the config file's channels the bot cannot see (a mistyped
        id, a channel deleted, one in a server it is not in): each was found only when its
        first alert paused the route ("404 Unknown Channel")."""
        assert self.newswatch is not None
        for route, target in self.newswatch.config.targets.items():
            if not isinstance(target, int) or self.get_channel(target) is not None or any(
                    g.get_thread(target) is not None for g in self.guilds):
                continue
            try:
                await self.fetch_channel(target)  # a thread not in the cache, say
            except (discord.NotFound, discord.Forbidden) as exc:
                log.warning("route %s: the bot cannot see channel %s (%s: a mistyped id, a "
                            "channel deleted, or one in a server the bot is not in); its alerts "
                            "will be held when they are sent (see /alerts status)", route,
                            target, "not found" if isinstance(exc, discord.NotFound)
                            else "no access")
            except discord.HTTPException:
                continue  # Discord not answering now: the first alert will say

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """Removed from a server (kicked, or the server deleted; an outage is not this): its
        rules, feeds and channels are kept but not run until the bot is invited back."""
        if self.newswatch is not None:
            await self.newswatch.left(guild.id)

    def _config_routes_in(self, guild_id: int) -> list[str]:
        """The config file's routes whose channel is in the server (a webhook's channel is not
        known; a webhook keeps working when the bot is removed)."""
        guild = self.get_guild(guild_id)
        if self.newswatch is None or guild is None:
            return []
        return [name for name, target in self.newswatch.config.targets.items()
                if isinstance(target, int) and guild.get_channel_or_thread(target) is not None]

    async def on_guild_join(self, guild: discord.Guild) -> None:
        """Invited to a server (again): what it set up runs again (and the config file's
        channels there paused meanwhile are resumed), and a server of ``guild_ids`` whose
        commands could not be synced at start gets them now."""
        if self.newswatch is not None:
            await self.newswatch.returned(guild.id, self._config_routes_in(guild.id))
        if self._slash_commands and guild.id in self.guild_ids and guild.id not in self.synced:
            await self._sync_guild(guild.id)

    async def on_guild_available(self, guild: discord.Guild) -> None:
        """A server back after an outage: if newswatch took it for one that removed the bot
        (it was missing at connect), it is served again."""
        if self.newswatch is not None and guild.id in self.newswatch.departed:
            await self.newswatch.returned(guild.id, self._config_routes_in(guild.id))


def _unrouted(cfg: Config, routes: set[str]) -> list[ConfigIssue]:
    """With a bot token every route sent to needs a destination: a rule's, or the notices',
    whose route has no [channels] entry would wait forever (a paused source's notice was
    queued for such a route and never posted), so it is an error, not a silent print to the
    terminal."""
    return [ConfigIssue(where, f"route {route!r} has no [channels] entry; add "
                               f"`{route} = <channel id or webhook>` under [channels]")
            for where, route in routes_sent_to(cfg) if route not in routes]


def serve_server_routes(engine: Engine, sink: DiscordSink) -> None:
    """Deliver every route a server picked (stored ones now, new ones as they are made) through
    ``sink``, to that route's channel. Called before the engine starts, so no alert of such a
    route is claimed before it has a destination."""
    def serve(key: str, route: RouteConfig) -> None:
        if not isinstance(route.target, int):  # a picked channel is always a channel id
            log.error("route %s: target is not a channel id; its alerts are held", key)
            return
        sink.add_route(key, ChannelTarget(route.target), route)
        engine.attach_sink(key, sink)

    engine.add_route_listener(serve)


async def run_discord(cfg: Config, token: str, *, once: bool = False,
                      stop: asyncio.Event | None = None, guild_ready_timeout: float = 2.0,
                      on_engine: Callable[[Engine], None] | None = None, role: Role = "all",
                      lease: timedelta = timedelta(seconds=60), safety_poll: float = 30.0
                      ) -> int:
    """Connect, deliver alerts to Discord and answer slash commands until ``stop`` (or a signal).

    ``on_engine`` sees the engine once it is open and before it starts (tests tune it there).
    ``role`` (see :mod:`watchers.roles`): ``deliver`` logs in only to post (no slash
    commands), ``bot`` only answers commands; ``lease`` and ``safety_poll`` go to the engine."""
    add_secret(token)
    point_at(cfg.discord.api_base, cfg.discord.gateway_url)
    async with aiohttp.ClientSession() as session:
        bot = NewsBot(guild_ids=cfg.discord.guild_ids, admin_role=cfg.discord.admin_role,
                      start_engine=not once, guild_ready_timeout=guild_ready_timeout,
                      slash_commands=role != "deliver")
        # one sink even without config routes: the routes servers pick are added to it
        sink = discord_sink(cfg.targets, client=bot, session=session, routes=cfg.routes,
                            settings=cfg.discord)
        sinks: dict[str, Sink] = dict.fromkeys(sink.targets, sink)
        issues = _unrouted(cfg, set(sinks)) if role in ("all", "deliver") else []
        if issues:
            raise ConfigError(issues)
        async with open_engine(cfg, sinks=sinks, start=False, on_report=report_poll, role=role,
                               lease=lease, safety_poll=safety_poll) as engine:
            serve_server_routes(engine, sink)
            bot.newswatch = engine
            if role in ("all", "deliver"):
                await engine.end_waits_of_removed_rules()
            if on_engine is not None:
                on_engine(engine)
            stop = stop or asyncio.Event()
            # The signals' handlers stay until the engine has stopped and the bot closed.
            async with bot:
                with StopSignals(stop) as signals:
                    runner = asyncio.create_task(bot.start(token), name="newswatch-discord")
                    try:
                        if once:
                            if await once_unless_stopped(engine, stop, signals,
                                                         first=_until_ready(bot, runner)):
                                return 130
                        else:
                            signals.arm()
                            if await until_stopped(engine, stop, runner):
                                say("stopping")
                            if runner.done():
                                runner.result()  # surface a login failure
                    except discord.LoginFailure:
                        log.error("Discord refused the token in $%s", cfg.discord.token_env)
                        return 1
                    except discord.RateLimited as exc:
                        # Logging in (or asking for the gateway) refused for longer than the
                        # client waits: one line, not a traceback.
                        log.error("Discord rate-limits this bot for %.0f s (too many starts or "
                                  "requests with its token); start it again after that",
                                  exc.retry_after)
                        return 1
                    except (discord.ConnectionClosed, discord.PrivilegedIntentsRequired) as exc:
                        # A close code discord.py does not reconnect after (a token revoked while
                        # running, sharding, intents): one line; undelivered alerts stay in the
                        # outbox for the next start.
                        log.error("%s", _gateway_refusal(exc, cfg.discord.token_env))
                        return 1
                    except (aiohttp.ClientError, OSError, discord.GatewayNotFound,
                            discord.DiscordServerError) as exc:
                        # A network outage, DNS or a firewall: one line, not a traceback.
                        log.error("cannot reach Discord: %s", str(exc) or type(exc).__name__)
                        return 1
                    except discord.HTTPException as exc:
                        # Refused with another status than a bad token's 401: a firewall's or
                        # Cloudflare's page ("Access denied", a ban for too many requests) in
                        # front of Discord. One line, not a traceback ending in the whole page.
                        log.error("Discord refused the connection: %s", _refusal(exc))
                        return 1
                    except AttributeError as exc:
                        # discord.py reads its gateway connection's sequence after a first
                        # connection to the gateway failed, when it has none (a firewall that
                        # lets the REST API through): the failure is what it was handling.
                        cause = exc.__context__
                        if not isinstance(cause, _UNREACHABLE):
                            raise
                        log.error("cannot reach Discord's gateway: %s",
                                  str(cause) or type(cause).__name__)
                        return 1
                    finally:
                        await engine.stop()  # sends in flight finish while Discord is reachable
                        # and lookups under way answer, while they may
                        if isinstance(bot.tree, NewswatchTree):
                            await bot.tree.finish_commands(COMMANDS_GRACE_S)
                        await bot.close()
                        runner.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await runner
                        await _settle_event_tasks()
    return 0


#: A slash-command sync Discord failed for now is tried again after this many seconds,
#: doubling up to the second figure (or after the rate limit Discord named, if longer).
COMMAND_SYNC_RETRY_S = 60.0
COMMAND_SYNC_RETRY_MAX_S = 1800.0

#: How long a stop waits for the commands under way to answer (a lookup's budget is 5 s).
COMMANDS_GRACE_S = 6.0

#: A connection that could not be made or answered (what "cannot reach Discord" names).
_UNREACHABLE = (aiohttp.ClientError, OSError, TimeoutError, discord.GatewayNotFound,
                discord.DiscordServerError)


def _refusal(exc: discord.HTTPException) -> str:
    """An HTTP error answer in one line: its status and reason, and Discord's message (with its
    error code) or, for an HTML page, its title."""
    text = exc.text.strip()
    if text.startswith("<"):
        title = re.search(r"(?is)<title[^>]*>(.*?)</title>", text)
        text = title.group(1) if title else ""
    said = printable(" ".join(text.split()), 200)
    reason = getattr(exc.response, "reason", None) or ""
    code = f" (error code {exc.code})" if exc.code else ""
    return f"HTTP {exc.status} {reason}".rstrip() + code + (f": {said}" if said else "")


#: What each gateway close code discord.py gives up on means, and what to do about it.
_FATAL_CLOSES = {
    4010: "Discord closed the gateway: invalid shard (close code 4010)",
    4011: "Discord closed the gateway: sharding required, the bot is in too many servers for "
          "one connection (close code 4011)",
    4012: "Discord closed the gateway: invalid API version (close code 4012); check [discord] "
          "gateway_url",
    4013: "Discord closed the gateway: invalid intents (close code 4013)",
    4014: "Discord closed the gateway: disallowed intents (close code 4014); enable them for "
          "the bot in the developer portal",
}


def _gateway_refusal(exc: discord.ConnectionClosed | discord.PrivilegedIntentsRequired,
                     token_env: str) -> str:
    """The one line for a gateway connection Discord ended for good."""
    code = 4014 if isinstance(exc, discord.PrivilegedIntentsRequired) else exc.code
    if code == 4004:
        return (f"Discord refused the token in ${token_env} (authentication failed, close "
                "code 4004: was it reset or revoked?); undelivered alerts are kept for the "
                "next start")
    return _FATAL_CLOSES.get(code, f"Discord closed the gateway with close code {code}") + \
        "; undelivered alerts are kept for the next start"


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
