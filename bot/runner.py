"""``newswatch run``: the engine with the console or Discord front end, until Ctrl-C.

``--role`` (see :mod:`watchers.roles`) runs one share of the work beside other processes on a
PostgreSQL store: ``poll`` never talks to Discord; ``deliver`` logs in (with a token) only to
post, without slash commands, and otherwise delivers to webhooks and the console as ``all``
does; ``bot`` answers slash commands and needs a token."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bot.console import ConsoleSink
from bot.destinations import token_from_env
from bot.logs import add_secret, end_now, say, second_signal
from watchers.config import Config
from watchers.delivery import Sink
from watchers.engine import Engine, open_engine
from watchers.errors import ConfigError, ConfigIssue, NewswatchError
from watchers.roles import Role, check_role
from watchers.service import PollReport
from watchers.sources.base import printable

__all__ = ["STOP_SIGNALS", "StopSignals", "once_unless_stopped", "report_poll", "run",
           "token_from_env", "until_stopped"]

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger("newswatch")


def report_poll(report: PollReport) -> None:
    """One log line per poll that found something (failures are logged by the service)."""
    if report.error:
        return
    if report.baseline and report.new:
        # backfill lets the newest few of a first poll alert; the rest are the baseline
        alerted = f", {report.alerts} alert(s) from backfill" if report.alerts else " (no alerts)"
        log.info("source %s: first poll, %d items recorded as a baseline%s",
                 report.source, report.new, alerted)
    elif report.new:
        log.info("source %s: %d new article(s), %d alert(s)", report.source, report.new,
                 report.alerts)
    else:  # (--verbose) every poll, also those that found nothing new
        found = ("not modified" if report.not_modified
                 else f"{report.seen} item(s), none new" if report.seen else "nothing new")
        updated = f", {report.updated} updated in place" if report.updated else ""
        log.debug("source %s: polled, %s%s", report.source, found, updated)


async def _intro(engine: Engine, where: str) -> None:
    held = await engine.count_articles()
    n_src, n_rules = len(engine.source_names()), len(engine.rule_names())
    if held:
        say(f"the database {engine.database} already holds {held} article(s); "
            f"watching {n_src} source(s) with {n_rules} rule(s) for new ones → {where}")
    else:
        say(f"watching {n_src} source(s) with {n_rules} rule(s) → {where}")


async def run(cfg: Config, *, once: bool = False, console: bool = False, role: Role = "all",
              lease: float = 60.0, safety_poll: float = 30.0) -> int:
    if role != "all":
        # before anything else: [storage] url, and the lease
        check_role(role, cfg.storage.target(cfg.resolve), timedelta(seconds=lease))
        if once:
            raise NewswatchError(f"--once polls and delivers in this one process; it does not "
                                 f"go with --role {role}")
        if console and role == "bot":
            # (it said the token was missing when it was set)
            raise NewswatchError("--console prints alerts, which --role bot does not deliver "
                                 "(it answers slash commands); it goes with --role deliver "
                                 "or no --role")
    if role in ("all", "deliver"):
        _check_webhooks(cfg)
    try:
        token = None if console or role == "poll" else token_from_env(cfg)
    except NewswatchError as exc:
        # A refusal to start, as check says it (exit 2), as an unset webhook variable's is.
        raise ConfigError([ConfigIssue("[discord] token_env", str(exc))]) from None
    if role == "bot" and token is None:
        raise NewswatchError(f"--role bot answers slash commands: it needs a Discord token in "
                             f"${cfg.discord.token_env}")
    add_secret(token)
    if token is not None:
        from bot.client import run_discord

        return await run_discord(cfg, token, once=once, role=role,
                                 lease=timedelta(seconds=lease), safety_poll=safety_poll)
    webhooks = _has_webhooks(cfg)
    if role == "poll":
        say("poll worker: the sources are shared with every other poll worker of this "
            "database; alerts are delivered by the deliver processes")
    else:
        why = ("--console" if console else f"no Discord token in ${cfg.discord.token_env}")
        say(f"{why}: alerts go to this terminal" + (" (and to webhooks)" if webhooks else ""))
    # Leaving open_engine stops delivery (webhook sends in flight finish) before the session
    # closes; the signals' handlers stay until then.
    stop = asyncio.Event()
    with StopSignals(stop) as signals:
        async with contextlib.AsyncExitStack() as stack:
            sinks: dict[str, Sink] = {}
            if webhooks:
                # Only webhooks need an HTTP session here (and aiohttp and discord.py loaded,
                # about 0.2 s of a process that prints its alerts).
                import aiohttp

                session = await stack.enter_async_context(aiohttp.ClientSession())
                sinks = _webhook_sinks(cfg, session)
            terminal = ConsoleSink()
            engine = await stack.enter_async_context(open_engine(
                cfg, sinks=sinks, start=False, default_sink=terminal,
                on_report=report_poll, role=role, lease=timedelta(seconds=lease),
                safety_poll=safety_poll))
            # The terminal takes the routes this config and its rules name, not every route:
            # alerts kept for a webhook route since taken out of the file were printed here and
            # marked delivered. Those wait, as a Discord run leaves them, until it is back.
            engine.only_known_routes_to_default_sink()
            if role in ("all", "deliver"):
                await engine.end_waits_of_removed_rules()
            await _intro(engine, "the deliver processes" if role == "poll"
                         else "webhooks and console" if webhooks else "console")
            if once:
                return 130 if await once_unless_stopped(engine, stop, signals) else 0
            await engine.start()
            signals.arm()
            if await until_stopped(engine, stop):
                say("stopping")
    return 0


def _has_webhooks(cfg: Config) -> bool:
    return any(isinstance(v, str) for v in cfg.targets.values())


def _check_webhooks(cfg: Config) -> None:
    """Refuse a webhook route whose URL is unusable (its variable unset, or not a webhook): its
    alerts would otherwise be printed to the console and taken as delivered, and never posted
    once the variable is fixed; with a token, the rules were refused as having no route."""
    from bot.destinations import webhook_problem

    issues: list[ConfigIssue] = []
    for route, ref in cfg.targets.items():
        if isinstance(ref, int):
            continue
        var = ref[4:] if ref.startswith("env:") else None
        problem = webhook_problem(os.environ.get(var, "") if var is not None else ref)
        if problem is None:
            continue
        where = f"[channels] {route}" + (f" = env:{var}" if var is not None else "")
        if problem == "is not set":
            said = "the variable is not set" if var is not None else "the webhook URL is empty"
        else:
            said = (f"{'the variable' if var is not None else 'it'} {problem} "
                    "(https://…/api/webhooks/ID/TOKEN)")
        issues.append(ConfigIssue(where, said))
    if issues:
        raise ConfigError(issues)


def _webhook_sinks(cfg: Config, session: aiohttp.ClientSession) -> dict[str, Sink]:
    """Webhook routes need no gateway: deliver them even without a bot token."""
    from bot.client import point_at
    from bot.sinks import discord_sinks

    point_at(cfg.discord.api_base, None)
    return dict(discord_sinks(cfg.targets, session=session, routes=cfg.routes))


#: The signals that stop ``run``: Ctrl-C, ``kill`` and a closed terminal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """Once armed (:meth:`arm`), each of :data:`STOP_SIGNALS` sets ``stop``; one more after that
    (the engine is stopping: sends in flight finishing, the connection closing) ends the process
    at once with a line, as a second Ctrl-C is meant to. The handlers stay until the block is
    left, after the shutdown: removed as soon as the waiting ended, a second signal meant
    the system's default (gone without a word) and SIGHUP never had a handler."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self._installed: list[signal.Signals] = []
        self._previous: dict[signal.Signals, Any] = {}

    def __enter__(self) -> StopSignals:
        return self

    def arm(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                previous = signal.getsignal(sig)
                loop.add_signal_handler(sig, self._signalled)
                self._installed.append(sig)
                self._previous[sig] = previous

    def _signalled(self) -> None:
        global _stop_requested
        if not self.stop.is_set():
            self.stop.set()
            _stop_requested = True
            return
        second_signal()

    def __exit__(self, *exc: object) -> None:
        # The loop's handlers go, and the loop left SIGTERM and SIGHUP to the system's default:
        # a second signal in the last moments of stopping (the loop's tasks and threads ending,
        # the interpreter exiting) killed the process without a word (exit 143). Once stopping,
        # a signal is the second one whenever it comes; otherwise the handler before arm() is
        # back. The command restores its handlers when it returns (bot.logs.stopped_like_ctrl_c).
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
            late = self._late if self.stop.is_set() else self._previous.get(sig)
            if late is not None:
                with contextlib.suppress(ValueError, TypeError):  # not the main thread
                    signal.signal(sig, late)
        self._installed.clear()
        self._previous.clear()

    def _late(self, signum: int, frame: object) -> None:
        self._signalled()


# Whether a signal asked ``run`` to stop (see after_run).
_stop_requested = False


def after_run(status: int) -> None:
    """The process's last moments, once the command has returned: after a signal asked
    ``run`` to stop, it ends at once with ``status`` (see :func:`bot.logs.end_now`). Called by
    the program's entry point only, never by a command run inside another program."""
    if _stop_requested:
        end_now(status)


async def once_unless_stopped(engine: Engine, stop: asyncio.Event, signals: StopSignals, *,
                              first: Awaitable[Any] | None = None) -> bool:
    """``run --once``'s work (``first``, then one round of polls and deliveries) with the stop
    signals armed, as ``run`` has them: a stop says "stopping" at once and cancels the round
    (what a poll had written stays, the rest comes at the next poll), and one more signal ends
    the process. Returns True when stopped so. Unarmed, Ctrl-C was taken silently, a second
    one did nothing, and the process ended only once the poll's analysis was done."""
    signals.arm()

    async def work() -> list[PollReport]:
        if first is not None:
            await first
        return await engine.run_once(retry_within=RETRY_SOON, skip_waiting=True)

    job = asyncio.ensure_future(work())
    try:
        await until_stopped(engine, stop, job)
    finally:
        if not job.done():
            job.cancel()
            if stop.is_set():
                say("stopping")
            await asyncio.gather(job, return_exceptions=True)
    if job.cancelled():
        return True
    await _round_left(engine, job.result())  # (its failure, raised)
    return False


#: Seconds ``run --once`` waits for alerts whose retry is due that soon: a send that failed in
#: a run just before (a full disk, a destination away for a moment) waits for the retry time
#: the store holds, and a run started right after found none due, sent nothing and said "see
#: above", above which nothing was.
RETRY_SOON = 5.0


async def _round_left(engine: Engine, reports: Sequence[PollReport]) -> None:
    """What ``run --once``'s round left undone, in one closing line (nothing when all went):
    the sources that failed, those not polled because they wait (a backoff after failures, a
    publisher's Retry-After), each with when it is next due, and the alerts not delivered (a
    destination down or refusing, paused), which go at the next run. The exit status stays 0
    (a feed down is not newswatch's failure); the line is on stderr, which cron mails."""
    failed = [r.source for r in reports if r.error is not None]
    waiting = [r for r in reports if r.waiting is not None]
    status = await engine.delivery_status()
    counts = status.counts
    left = sum(counts.get(state, 0) for state in ("pending", "retry", "sending"))
    held = counts.get("held", 0)
    parts = []
    if left:
        # A retry time still to come: a send failed, in this run (said above) or one before
        # (said then), and the alert waits for it, a destination's Retry-After included.
        retry = status.next_retry
        why = ("see above" if retry is None else
               f"a send failed; the next try is due at {retry:%H:%M:%S} UTC")
        parts.append(f"{left} alert(s) not delivered yet ({why}); they go at the next run")
    if held:
        # Not "at the next run": a paused destination holds them until it is resumed (a
        # webhook's with its URL corrected, at the next start).
        parts.append(f"{held} alert(s) held by a paused destination (see above); they go "
                     "once it is resumed (/alerts resume, or a webhook route's URL corrected)")
    if failed:
        shown = ", ".join(printable(name, 60) for name in failed[:10])
        more = f" and {len(failed) - 10} more" if len(failed) > 10 else ""
        parts.append(f"{len(failed)} source(s) failed: {shown}{more} (see above)")
    if waiting:
        shown = ", ".join(f"{printable(r.source, 60)} (next due at {r.waiting:%Y-%m-%d %H:%M:%S} "
                          "UTC)" for r in waiting[:10])
        more = f" and {len(waiting) - 10} more" if len(waiting) > 10 else ""
        parts.append(f"{len(waiting)} source(s) not polled, waiting as their publisher asked "
                     f"(Retry-After), backing off after failures or paused after many: "
                     f"{shown}{more}")
    if parts:
        say("round done; " + "; ".join(parts))


async def until_stopped(engine: Engine, stop: asyncio.Event,
                        *others: asyncio.Future[Any]) -> bool:
    """Wait for ``stop`` (set by a :class:`StopSignals`: Ctrl-C, SIGTERM, SIGHUP), a fatal
    engine error (raised) or one of ``others`` ending. Returns True when stopped by ``stop``."""
    waiter: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    failed: asyncio.Future[Any] = asyncio.ensure_future(engine.failed())
    try:
        await asyncio.wait({waiter, failed, *others}, return_when=asyncio.FIRST_COMPLETED)
        if failed.done():
            failed.result()  # raises the engine's fatal error
        return waiter.done()
    finally:
        waiter.cancel()
        failed.cancel()
