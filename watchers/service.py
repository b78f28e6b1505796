"""WatchService: polls every source on its own schedule, matches new articles, records alerts.

One timetable (:class:`watchers.schedule.Timetable`) holds when each source is due and starts
each due poll as a task of its own, so a slow or hanging source delays nobody; a poll starts
at most ``tick`` seconds (and at most a twentieth of its source's interval) after it is due.
A failing source — a SourceError, or any unexpected exception
while polling or storing — is logged, backs off exponentially (with jitter) and after
``pause_after`` consecutive failures is paused: a notice is written to the outbox for its route,
it is probed once every ``probe_every``, and a successful probe (or a resume) brings it back. It
never stops the others. The first poll of a feed records a baseline without alerting
(``backfill`` newest items do alert); a folder alerts on what it finds.

The service talks to delivery only through the store: it writes articles, matches and outbox
rows (alerts, notices) — each article whole with its matches and alerts, a few hundred articles
per transaction — and then sets ``wake``. Each outbox row carries the rules that fired *as they
were when they matched*, so a rule edited later does not change how an earlier alert looks.

Matching, tokenising for the lookup index and anything else CPU-bound runs in ``executor``
(a small thread pool), never on the event loop, so a poll of a large feed cannot stall Discord.

Shared (``shared=True``: several processes on one PostgreSQL store, see :mod:`watchers.roles`):
instead of a task per source, one loop claims due sources through store leases
(:class:`watchers.store.LeaseStore`), at most ``max_polls`` at a time, polls each from the
state the claim read, saves its new state at once and releases it; a lease is renewed while
its poll runs and freed when the service stops, and a killed worker's leases expire after
``lease``. Source states are then never cached: health and resume read the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import os
import random
import secrets
import socket
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Final

from rapidfuzz import fuzz

from watchers import collector
from watchers.config import RuleConfig, SourceConfig, SurgeConfig, format_duration
from watchers.errors import (
    FetchQueuedError,
    NewswatchError,
    SourceError,
    StoreError,
    StoreUnavailableError,
)
from watchers.importer import join_story
from watchers.models import (
    MAX_AHEAD,
    Article,
    Decision,
    Fired,
    Match,
    history_time,
    json_kind,
    matchable,
)
from watchers.outage import StoreOutage
from watchers.outlets import source_outlet
from watchers.rules import Rule, RuleSet
from watchers.rules.lookup import analysed_index, terms_text, url_terms
from watchers.rules.matcher import Analysis
from watchers.rules.text import untrack
from watchers.schedule import Clock, SystemClock, Timetable
from watchers.sources import SOURCE_TYPES, SourceContext, build_source
from watchers.sources.base import ANSWERING, Source, printable
from watchers.sources.feed import MAX_RETRY_AFTER
from watchers.store import one_version_each
from watchers.store.base import (
    SERVER_FEED_PREFIX,
    ArticleRecord,
    CapSummary,
    OutboxEntry,
    Registration,
    SourceState,
    Store,
    StoryLink,
    StoryRecord,
    highest_severity,
    sort_time,
)
from watchers.stories import DEFAULT_WINDOW, Signature, StoryIndex, signature_from
from watchers.surge import Baseline, is_surge
from watchers.urls import feed_url_key, normalise_link, without_credentials

__all__ = ["PollReport", "WatchService"]


def _polled(config: SourceConfig, *, as_written: bool = False) -> str:
    """What a source polls, as its stored cursor keeps it: its type and URL (compared as links
    are, http and https alike: a URL mended to its https form is the same feed, whose new
    items a baseline would have swallowed) or path; ``as_written``: the URL as the config
    writes it, for the log."""
    url = getattr(config, "url", None)
    if url:
        return f"{config.type} {url if as_written else feed_url_key(url)}"
    return f"{config.type} {getattr(config, 'path', None) or ''}"

log = logging.getLogger(__name__)

_EPOCH = datetime.min.replace(tzinfo=UTC)
# In a source's stored cursor: what it polled (its type and URL or path). A source whose URL,
# path or type changed under its name polls something new, and takes a baseline as a new one
# does: pointed at another feed, its whole backlog alerted. (No source's own key starts with
# "/": a folder's are relative paths, and its marks of files left out "/unlisted:…".)
POLLED: Final = "/polled"
# Articles per write transaction: a poll of thousands is written in a few short transactions
# rather than one per article, and none holds the write lock for long.
INGEST_BATCH = 500
# Shared workers read the stories others wrote since their last look (by the database's clock
# of the writes), this much earlier: a write whose transaction was still committing then.
STORY_SYNC_SLACK = timedelta(seconds=5)
# ... and look at most this often (every poll with new articles would ask otherwise).
STORY_SYNC_EVERY = 1.0
# How often a shared worker registers its sources again (see WatchService._claim_loop).
REREGISTER = timedelta(minutes=5)
# How long a source claimed by a worker that does not run it waits for the others.
HAND_BACK = timedelta(seconds=5)
# The most polls ``run_once`` gives a source that keeps having more ready (a folder's drop of
# 1 GiB at 16 MiB a poll): a folder written faster than it is read must not keep it going.
ONCE_POLLS = 64
# Live stories restored at start above which their objects are frozen out of the collector.
FREEZE_STORIES = 10_000


def _matched_at(article: Article, now: datetime, since: datetime | None) -> datetime | None:
    """When a match on ``article`` of a live poll counts: its publication (else fetch) within
    [``since``, ``now``]; None (now) without ``since`` (see WatchService._ingest)."""
    when = article.published or article.fetched_at  # (a live item is read when it came)
    if since is None or when is None:
        return None
    return min(now, max(when, since))


@dataclass(frozen=True)
class PollReport:
    """What one poll of one source did."""

    source: str
    seen: int = 0
    new: int = 0
    alerts: int = 0
    skipped: int = 0  # items the source could not read (named in the log)
    not_modified: bool = False
    baseline: bool = False
    error: str | None = None
    updated: int = 0  # stored articles whose content changed in place
    more: bool = False  # the source had more ready than the poll read: polled again at once
    # Not polled (``run_once``): failing, it waits until then, as its backoff after failures
    # or its publisher's Retry-After (a 429 or 503) asked.
    waiting: datetime | None = None


def _summed(first: PollReport, then: PollReport) -> PollReport:
    """One report for two polls of a source in a round (``run_once``'s polls of a source that
    had more): counts added, the later poll's error, 304 and ``more``."""
    return replace(then, seen=first.seen + then.seen, new=first.new + then.new,
                   alerts=first.alerts + then.alerts, skipped=first.skipped + then.skipped,
                   updated=first.updated + then.updated,
                   baseline=first.baseline or then.baseline)


def _moved(running: _Running, state: SourceState) -> bool:
    """Whether what a source polls changed since its state's last poll (a URL mended)."""
    return state.cursor.get(POLLED, _polled(running.config)) != _polled(running.config)


async def _done(report: PollReport) -> PollReport:
    """A report of a poll that is not made, among those that are awaited."""
    return report


def _reached_store(report: PollReport) -> bool:
    """Whether a poll that raised nothing read the store: one whose source gave items (each is
    looked up there). A 304, a failed fetch or an empty folder reach only the source (their
    state is written behind), and taking them for the store's answer logged "the store is
    reachable again" while its server was still down, and set the outage's clock back."""
    return report.error is None and report.seen > 0


@dataclass
class _Running:
    """A source as the service runs it: its validated config and the live poller."""

    config: SourceConfig
    source: Source
    # An embedder's own poller (given to add_source): the engine's reloads of the configured
    # and stored sources leave it running.
    own: bool = False

    @property
    def name(self) -> str:
        return self.config.name


@dataclass(frozen=True)
class _Analysis:
    matches: list[Decision]
    terms: str
    over_budget: tuple[str, ...]
    story: StoryLink | None = None
    words: set[str] | None = None  # the terms' words, for the index's word list
    url_terms: str = ""  # the link's words, for the URL index
    sig: Signature | None = None  # its story signature, while its story is still to be joined
    places: tuple[str, str, str, str] | None = None  # its words where they stand (places index)


@dataclass
class WatchService:
    """The engine's scheduler. Build it, ``await start()``, and ``await aclose()`` when done."""

    store: Store
    context: SourceContext
    sources: Sequence[SourceConfig] = ()
    rules: Sequence[RuleConfig] = ()
    threshold: int = 85
    aliases: Mapping[str, Sequence[str]] = field(default_factory=dict)
    pause_after: int = 10
    max_backoff: timedelta = timedelta(hours=1)
    probe_every: timedelta = timedelta(hours=1)  # how often a paused source is tried again
    notices_route: str | None = None  # where notices go for sources that name no route
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # set after outbox rows are written
    executor: Executor | None = None  # None: asyncio's default thread pool
    regex_budget: float = 0.1  # seconds of regex time per article, across all rules and fields
    on_report: Callable[[PollReport], None] | None = None
    on_fatal: Callable[[BaseException], None] | None = None  # the store failed: stop everything
    # An unreachable store (a server restarting) is waited for, up to the outage's limit.
    outage: StoreOutage = field(default_factory=StoreOutage)
    # Stories: each new article joins (or starts) a story within ``story_window``; a route's
    # mode ("edit" | "thread" | "off", see RouteConfig) decides whether a later article of a
    # story alerts anew. None: no grouping (every article alerts on its own).
    stories_mode: Callable[[str], str] | None = None
    # Whether a route's destination edits a story's message (None: every one does). A sink that
    # cannot gets each article of a story as an alert of its own, each counted by the cap.
    edits: Callable[[str], bool] | None = None
    # Whether a route is a digest route (None: none is). Its alerts are one digest message, so
    # a poll's cap, a guard against a flood of messages, leaves them whole.
    digest_route: Callable[[str], bool] | None = None
    story_window: timedelta = DEFAULT_WINDOW
    surge: SurgeConfig = field(default_factory=SurgeConfig)
    # When matches are recorded; surges; shared, leases and the polls' times too (see _now).
    clock: Clock = field(default_factory=SystemClock)
    over_budget: Counter[str] = field(default_factory=Counter)  # rule → articles cut short
    # When each source last answered, by this service's clock (see _ingest's ``since``).
    _answered: dict[str, datetime] = field(default_factory=dict, init=False, repr=False)
    # What each source's last poll left out, as logged: an item a feed keeps listing is named
    # when it first is left out, not at every poll (a folder names each file's version once).
    _skips_told: dict[str, frozenset[str]] = field(default_factory=dict, init=False, repr=False)
    # Per source, its polls in a row that were due again at once because it had more ready.
    _at_once: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    # Held from judging which servers a poll's copies told already to its last write (see
    # _ingest), while any source has an audience.
    _copies_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    # Who sees a source's articles, by running name: ((server, the name it gave the source),
    # …) for a feed servers follow — only their rules match it, each seeing the source under
    # its own name. A source not listed is seen by every rule (the config file's).
    audiences: dict[str, tuple[tuple[int, str], ...]] = field(default_factory=dict)
    # A source as a route's readers know it (see DeliveryService.source_label); None: as is.
    source_label: Callable[[str, str], str | None] | None = None
    # Where a server is told that a feed it follows paused (one of its own routes; None: it
    # has none). Such a feed's notices never go to ``notices_route``, the operator's.
    server_notices: Callable[[int], str | None] | None = None
    # Several processes share the store (see the module docstring): poll through leases.
    shared: bool = False
    lease: timedelta = timedelta(seconds=60)  # how long a killed worker keeps its sources
    claim_every: float = 1.0  # seconds between looks for due sources (a poke looks at once)
    max_polls: int = 64  # polls at once in a shared worker
    # Seconds: due polls start together on this grid (one wake-up for many polls), so each
    # starts at most this late (or a twentieth of its source's interval, if that is shorter).
    tick: float = 0.1
    owner: str = field(default_factory=lambda: (
        f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"))
    _inflight: dict[str, asyncio.Task[None]] = field(default_factory=dict, init=False)
    # One poll of a source at a time here (see poll_source), by source name.
    _polling: dict[str, asyncio.Lock] = field(default_factory=dict, init=False)
    _unreleased: dict[str, SourceState] = field(default_factory=dict, init=False)
    # Sources claimed here that this worker does not run: when first handed back, and their
    # poll count then (see _claim_loop).
    _handed: dict[str, tuple[datetime, int]] = field(default_factory=dict, init=False)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _server_sets: dict[int, RuleSet] = field(default_factory=dict, init=False)
    _ruleset: RuleSet = field(init=False)
    _rules: dict[str, RuleConfig] = field(init=False)
    _running: dict[str, _Running] = field(default_factory=dict, init=False)
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict, init=False)  # polls
    _background: list[asyncio.Task[None]] = field(default_factory=list, init=False)  # leases
    _timetable: Timetable | None = field(default=None, init=False)
    _started: bool = field(default=False, init=False)
    _closed: bool = field(default=False, init=False)
    _book: _StateBook = field(init=False)
    _stories: StoryIndex | None = field(default=None, init=False)
    _stories_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    # Shared: one poll of this process at a time waits for or holds the store's story grouping
    # lock (see _ingest), so waiting polls do not each hold a connection of the pool.
    _grouping_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    _stories_synced: datetime | None = field(default=None, init=False)  # database's clock
    _stories_looked: float = field(default=0.0, init=False)  # monotonic, this process's

    def __post_init__(self) -> None:
        self._book = _StateBook(self.store, self._fatal, self.outage)
        self.set_rules(self.rules)
        for cfg in self.sources:
            self._running[cfg.name] = _Running(cfg, build_source(cfg, self.context))
        self._name_outlets(self.sources)
        self.sources = ()  # the running set is the truth from here on

    async def story_index(self) -> StoryIndex | None:
        """The live story index, rebuilt from the store on first use (stories reported within
        the window before the newest one), so a story spans restarts."""
        if self.stories_mode is None:
            return None
        async with self._stories_lock:
            if self._stories is None:
                if self.shared:  # later writes by other workers are read from here on
                    _, clock = await self.store.stories_touched(None)
                    self._stories_synced = clock - STORY_SYNC_SLACK
                live = await self.store.live_stories(
                    self.story_window, until=self.clock.now() + MAX_AHEAD)

                index = StoryIndex(self.story_window)
                loop = asyncio.get_running_loop()
                # CPU-bound for many stories: off the event loop
                await loop.run_in_executor(self.executor, _restore, index, live)
                self._stories = index
                if len(self._stories) > FREEZE_STORIES:
                    # Many long-lived story objects: keep the cyclic collector from walking
                    # them on every full collection (it would cost each poll a pause).
                    gc.collect()
                    gc.freeze()
            return self._stories

    async def _sync_stories(self, stories: StoryIndex, *, now: bool = False) -> None:
        """Shared: take the stories other workers started or grew since the last look (by when
        they were written, on the database's clock), so an article polled here joins a story
        another worker's article began. At most one look a second, shared by the polls
        meanwhile; each reads only what was written since the one before (and the slack), so
        its cost follows the rate of writes, not the number of live stories. ``now``: look
        whenever the last look was (a poll holding the store's story grouping lock)."""
        async with self._stories_lock:
            if not now and time.monotonic() - self._stories_looked < STORY_SYNC_EVERY:
                return
            found, clock = await self.store.stories_touched(self._stories_synced)
            self._stories_synced = clock - STORY_SYNC_SLACK
            self._stories_looked = time.monotonic()
        if found:
            await asyncio.get_running_loop().run_in_executor(
                self.executor, _restore, stories, found)

    # ------------------------------------------------------------------ rules

    def set_rules(self, rules: Iterable[RuleConfig], *, adding: RuleConfig | None = None
                  ) -> list[tuple[RuleConfig, NewswatchError]]:
        """Replace the running rules; the next article is matched against the new set.

        A rule that does not compile is left out and returned with its error (a stored rule
        written by an older version must never stop the engine from starting), and logged as
        skipped — except ``adding``, a rule being added, whose caller refuses it instead."""
        aliases = {k: list(v) for k, v in self.aliases.items()}
        wanted: dict[str, RuleConfig] = {}
        for r in rules:
            if r.enabled:
                wanted.pop(r.key, None)
                wanted[r.key] = r  # a later rule of the same key replaces an earlier one
        bad: list[tuple[RuleConfig, NewswatchError]] = []

        def compiled(r: RuleConfig) -> Rule:
            # Matched under its key: two servers' rules of the same name stay apart.
            return Rule(name=r.key, query=r.query, threshold=r.threshold or self.threshold)

        try:
            ruleset = RuleSet([compiled(r) for r in wanted.values()], aliases=aliases)
        except (NewswatchError, RecursionError, ValueError):
            # Find the culprits one by one; the rest still run.
            for r in list(wanted.values()):
                try:
                    RuleSet([compiled(r)], aliases=aliases)
                except NewswatchError as exc:
                    bad.append((r, exc))
                    del wanted[r.key]
                except (RecursionError, ValueError) as exc:
                    bad.append((r, NewswatchError(f"{type(exc).__name__}: {exc}")))
                    del wanted[r.key]
            ruleset = RuleSet([compiled(r) for r in wanted.values()], aliases=aliases)
        self._ruleset = ruleset
        self._server_sets = {}
        self._rules = wanted
        self.rules = tuple(wanted.values())
        for r, error in bad:
            if r is not adding:
                log.error("rule %s skipped: %s", r.key, error)
        return bad

    @property
    def ruleset(self) -> RuleSet:
        return self._ruleset

    def server_ruleset(self, guild: int) -> RuleSet:
        """The running rules of one server (what matches the feeds it follows); built on first
        use after each change of rules."""
        found = self._server_sets.get(guild)
        if found is None:
            aliases = {k: list(v) for k, v in self.aliases.items()}
            found = self._server_sets[guild] = RuleSet(
                [Rule(name=r.key, query=r.query, threshold=r.threshold or self.threshold)
                 for r in self._rules.values() if r.guild_id == guild], aliases=aliases)
        return found

    # ------------------------------------------------------------------ sources

    def source_names(self) -> list[str]:
        return list(self._running)

    def source_configs(self) -> list[SourceConfig]:
        return [r.config for r in self._running.values()]

    def own_sources(self) -> set[str]:
        """The names of the sources run with an embedder's own poller (see add_source)."""
        return {name for name, r in self._running.items() if r.own}

    async def add_source(self, config: SourceConfig, source: Source | None = None, *,
                         fresh: bool = False) -> None:
        """Run another source: built from ``config``, or ``source`` itself when given (an
        embedder's own Source implementation, scheduled by ``config``). ``fresh``: a source
        nobody polled until now (one added again after its removal, a feed a server follows
        after the last follower left) starts with no state: its first poll is a baseline and
        an earlier pause is gone (the state left under its name made what the feed published
        meanwhile alert, and a dead URL's pause come back)."""
        if config.name in self._running:
            raise NewswatchError(f"a source named {config.name!r} already exists")
        running = _Running(config, source or build_source(config, self.context),
                           own=source is not None)
        if fresh and not self.shared:
            self._book.save(SourceState(name=config.name))
            await self._book.flush()
            self._answered.pop(config.name, None)
            self._skips_told.pop(config.name, None)
        self._running[config.name] = running
        self._name_outlets([config])
        if self._started and self.shared:
            await self._register([running])
            self._wakeup.set()
        elif self._started:
            await self._plan_first([running], spread=False)

    def _name_outlets(self, configs: Iterable[SourceConfig]) -> None:
        """Tell the store the outlets of these sources, which corroboration counts (a feed
        servers follow is counted by the outlet the store reads with its follows)."""
        names = {c.name: source_outlet(c) for c in configs
                 if not c.name.startswith(SERVER_FEED_PREFIX)}
        if names:
            self.store.name_outlets(names)

    async def remove_source(self, name: str) -> bool:
        running = self._running.pop(name, None)
        if running is None:
            return False
        self._at_once.pop(name, None)
        lock = self._polling.get(name)
        if lock is not None and not lock.locked():
            del self._polling[name]  # (one a poll holds goes with it)
        if self._timetable is not None:
            self._timetable.discard(name)
        task = self._tasks.pop(name, None) or self._inflight.get(name)
        if task:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self.shared and self._started:
            # No worker claims it any more (one that still runs it registers it again); a
            # poll cut short here frees its lease now, not after the expiry.
            await self.store.retire_source(name)
        await running.source.aclose()
        return True

    async def resume_source(self, name: str) -> bool:
        if self.shared:
            # Another process polls it: due now, changed in place (its lease, cursor and poll
            # count are the poller's, left alone, even by a poll finishing at this moment).
            if name not in self._running or not await self.store.resume_shared(name):
                return False
            self.poke(name)
            return True
        state = (await self._book.all()).get(name)
        if state is None or name not in self._running:
            return False
        self._book.save(replace(state, paused=False, failures=0, next_poll=None))
        await self._book.flush()
        self.poke(name)
        return True

    def poke(self, name: str | None = None) -> None:
        """Poll a source (or all) now instead of at its next scheduled time."""
        self._wakeup.set()
        # A source polling right now is not polled again after it (that poll is the "now").
        if self._timetable is not None:
            for key in self._timetable.keys() if name is None else [name]:
                self._timetable.hurry(key)

    # ------------------------------------------------------------------ running

    async def run_once(self, *, skip_waiting: bool = False) -> list[PollReport]:
        """Poll every enabled source once, concurrently; return what each poll did. A source
        whose poll left more ready (a folder's files past a poll's bytes) is polled again, up
        to :data:`ONCE_POLLS` times in all, and its report sums those polls: ``run --once``
        read 16 MiB of a drop a run, and a cron job took a day for what one run can read.

        ``skip_waiting`` (``run --once``): a failing source whose wait has not run out (its
        backoff after failures, a publisher's Retry-After, a pause's probe; as a start judges
        it, see :meth:`_plan_first`) is not polled, and its report says until when it waits
        (``waiting``): a cron job running ``run --once`` every few minutes asked a
        rate-limiting publisher at every run. A source that is only not due by its ``every`` is
        polled either way: that is what a round is for."""
        running = list(self._running.values())
        waits: dict[str, datetime | None] = dict.fromkeys(self._running)
        if skip_waiting:
            states = await self._book.all()
            now = self._now()
            for r in running:
                state = states.get(r.name)
                waits[r.name] = until = self._waiting(r, state, now)
                if (until is not None and state is not None and state.next_poll is not None
                        and state.next_poll > until):
                    # Later than its settings now allow: the bounded time is kept, so that
                    # the next round finds it passed (bounded afresh in each round, it moved
                    # on with the clock and the source was never polled).
                    self._book.save(replace(state, next_poll=until))
        reports = list(await asyncio.gather(*(
            self._poll_guarded(r) if waits[r.name] is None else
            _done(PollReport(source=r.name, waiting=waits[r.name])) for r in running)))
        for _ in range(ONCE_POLLS - 1):
            again = [i for i, report in enumerate(reports)
                     if report.more and self._running.get(running[i].name) is running[i]]
            if not again:
                break
            for i, report in zip(again, await asyncio.gather(
                    *(self._poll_guarded(running[i]) for i in again)), strict=True):
                reports[i] = _summed(reports[i], report)
        for report in reports:
            if report.more:
                log.info("source %s: more is waiting after %d polls of this round; read at "
                         "the next", printable(report.source), ONCE_POLLS)
        await self._book.flush()
        return reports

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.shared:
            await self._register(list(self._running.values()))
            for loop, name in ((self._claim_loop, "newswatch-source-leases"),
                               (self._renew_loop, "newswatch-lease-renewal")):
                task = asyncio.create_task(loop(), name=name)
                task.add_done_callback(self._task_done)
                self._background.append(task)
            return
        self._book.write_behind = True
        self._timetable = Timetable(self._start_poll, self.tick)
        # Many sources never polled before would all poll in the same second, and then again
        # every interval: spread their first polls over the interval (at most a minute).
        task = asyncio.create_task(
            self._plan_first(list(self._running.values()), spread=len(self._running) > 100),
            name="newswatch-sources")
        task.add_done_callback(self._task_done)
        self._background.append(task)

    # ------------------------------------------------------------------ shared: leases

    async def _register(self, running: Sequence[_Running], *, again: bool = False) -> None:
        """Make these sources claimable; first polls spread as in :meth:`start`, and no stored
        next poll later than their settings now allow, as :meth:`_plan_first` has it (a worker
        started with an interval shortened from a day to minutes waited out the day). ``again``:
        the periodic registration, whose sources this worker registered before with the same
        settings: neither what each polls nor its next poll is judged again (its settings have
        not changed since; bounded every few minutes, a paused source's 24-hour Retry-After was
        cut to the probe's hour again and again, and the publisher asked twenty times a day)."""
        spread = len(running) > 100
        now = self.clock.now()

        def registration(r: _Running) -> Registration:
            first = now + timedelta(seconds=random.uniform(
                0, min(r.config.every.total_seconds(), 60))) if spread else None
            if again:
                return Registration(first=first)
            answering, failing, paused = self._longest_waits(r)
            return Registration(
                first=first,
                latest=now + timedelta(seconds=answering),
                latest_failing=now + timedelta(seconds=failing),
                latest_paused=now + timedelta(seconds=paused),
                polled=_polled(r.config))

        await self.store.register_sources({r.name: registration(r) for r in running})

    async def _claim_loop(self) -> None:
        # Leases are taken by the engine's clock, the one compared with the database's
        # (watchers.skew): a worker whose clock is off is told, not left to poll twice.
        registered = self.clock.now()
        while True:
            self._wakeup.clear()
            now = self.clock.now()
            free = self.max_polls - len(self._inflight)
            try:
                if now - registered > REREGISTER:
                    # Sources another worker retired that this one runs (workers started from
                    # different configs) become claimable again.
                    await self._register(list(self._running.values()), again=True)
                    registered = now
                claimed = await self.store.claim_sources(owner=self.owner,
                                                         until=now + self.lease, now=now,
                                                         limit=free)
                for state in [s for s in claimed if s.name not in self._running]:
                    await self._not_run_here(state, now)
            except StoreUnavailableError as exc:
                # (each of these calls: the worker stopped at once where it said it would
                # wait for the store)
                retry = self.outage.wait_or_stop(exc, self._fatal)
                if retry is None:
                    return
                await asyncio.sleep(retry)
                continue
            for state in claimed:
                if state.name not in self._running:
                    continue
                self._handed.pop(state.name, None)
                task = asyncio.create_task(self._poll_leased(state),
                                           name=f"newswatch-source-{state.name}")
                self._inflight[state.name] = task
                task.add_done_callback(self._leased_done)
            if claimed and len(claimed) == free:
                continue  # more may be due; a finished poll frees a slot (and wakes us)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self.claim_every)

    async def _not_run_here(self, state: SourceState, now: datetime) -> None:
        """A claimed source this worker does not run: handed back for the workers that do (a
        worker started from another config file, one that adds a source, retired it for all:
        it went unpolled and its articles were lost); retired once no worker has polled it for
        :data:`REREGISTER` (removed from every config)."""
        first = self._handed.get(state.name)
        if first is None or first[1] != state.polls:
            self._handed[state.name] = (now, state.polls)  # (polled meanwhile: run elsewhere)
        elif now - first[0] > REREGISTER:
            del self._handed[state.name]
            log.info("source %s is run by no worker (not polled for %s); retired", state.name,
                     format_duration(REREGISTER))
            await self.store.retire_source(state.name)
            return
        if first is None:
            log.info("source %s is not run by this worker; handed back to those that run it",
                     state.name)
        await self.store.release_source(replace(state, next_poll=now + HAND_BACK),
                                        owner=self.owner)

    async def _renew_loop(self) -> None:
        """Extend the leases of the polls running here, three times a lease: a task of its own,
        so a claim waiting for the database (or a long batch of claims) never lets a running
        poll's lease lapse and its source be polled twice."""
        every = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            if self._inflight:
                try:
                    await self.store.renew_leases(list(self._inflight), owner=self.owner,
                                                  until=self.clock.now() + self.lease)
                except StoreUnavailableError as exc:
                    # Tried again at the next renewal; a lease that lapses meanwhile only
                    # lets another worker poll the source again, which dedupe keeps quiet.
                    if self.outage.wait_or_stop(exc, self._fatal) is None:
                        return

    def _leased_done(self, task: asyncio.Task[None]) -> None:
        for name, t in list(self._inflight.items()):
            if t is task:
                del self._inflight[name]
        if len(self._inflight) == self.max_polls - 1:
            self._wakeup.set()  # the loop was full and waits for a free slot
        self._task_done(task)

    async def _poll_leased(self, state: SourceState) -> None:
        """Poll a claimed source from its claimed state; save the outcome and release it.

        A source this worker is still polling (its lease lapsed meanwhile, and this worker's
        own claims took it again) is not polled a second time: the poll under way releases it
        with its outcome and next time, which this claim waits for. Polled once the first had
        taken its state back, the second started from none: a first poll, whose new items
        were stored without alerts, and it ran with no lease."""
        lock = self._poll_lock(state.name)
        if lock.locked():
            async with lock:
                return
        async with lock:
            await self._poll_claimed(state)

    async def _poll_claimed(self, state: SourceState) -> None:
        running = self._running.get(state.name)
        if running is None:  # removed meanwhile: hand it back as it was
            with contextlib.suppress(StoreUnavailableError):  # else its lease lapses
                await self.store.release_source(state, owner=self.owner)
            return
        self._book.put(state)
        try:
            await self._poll_guarded(running, locked=True)
        except StoreUnavailableError as exc:
            # Nothing of the poll was kept: the lease lapses and the source is claimed and
            # polled again (here or by another worker) once the store is back.
            self.outage.wait_or_stop(exc, self._fatal)
            return
        finally:
            done = self._book.take(state.name) or state
        try:
            released = await self.store.release_source(done, owner=self.owner)
        except asyncio.CancelledError:
            # Stopped while saving a finished poll: the stop saves it (still leased here).
            self._unreleased[state.name] = done
            raise
        except StoreUnavailableError as exc:
            # The store went away after the poll's articles were written: the lease lapses
            # and the source is polled again from its stored state (what this poll stored is
            # known then, and alerts nothing twice). It stopped the worker at once, where it
            # had said it would wait for the store.
            self.outage.wait_or_stop(exc, self._fatal)
            return
        self.outage.over()  # the release was written: the store answers
        if not released:
            log.warning("source %s: lease lost while polling (another worker took it over); "
                        "its newer state kept", state.name)

    async def _plan_first(self, running: Sequence[_Running], *, spread: bool) -> None:
        """Put sources on the timetable: due when their stored state says (now if never
        polled; with ``spread``, somewhere within their interval, at most a minute)."""
        # Waited for as a poll waits: before, this task ended and the engine stopped with the
        # driver's error.
        read = await self.outage.retried(self._book.all, self._fatal)
        if read is None:
            return
        (states,) = read
        timetable = self._timetable
        if timetable is None or self._closed:
            return
        shortest = min((r.config.every.total_seconds() for r in running), default=self.tick * 20)
        timetable.tick = max(min(timetable.tick, shortest / 20), 1e-4)
        now = datetime.now(UTC)
        for r in running:
            if self._running.get(r.name) is not r or r.name in self._tasks:
                continue  # removed (or already polling) meanwhile
            state = states.get(r.name)
            if state is None or (state.next_poll is None and state.polls == 0):
                delay = random.uniform(0, min(r.config.every.total_seconds(), 60)) if spread else 0
            else:
                delay = self._bounded_wait(r, state, now)
                if state.paused and not _moved(r, state):
                    log.warning("source %s is paused after %d failures in a row (last: %s); "
                                "it is tried again every %s", printable(r.name), state.failures,
                                printable(state.last_error or "unknown"),
                                format_duration(self.probe_every))
            timetable.set(r.name, delay)

    def _waiting(self, running: _Running, state: SourceState | None, now: datetime
                 ) -> datetime | None:
        """Until when a failing source waits (its backoff, a publisher's Retry-After, a
        pause's probe), no later than its settings now allow and not at all when what it polls
        changed, as :meth:`_plan_first` has it; None when it is due, or answering."""
        if state is None or not (state.failures or state.paused) or state.next_poll is None:
            return None
        wait = self._bounded_wait(running, state, now)
        return now + timedelta(seconds=wait) if wait > 0 else None

    def _bounded_wait(self, running: _Running, state: SourceState, now: datetime) -> float:
        """Seconds until a source is due: when its state says, but never later than its
        settings now allow (an interval shortened since, whose old day it waited out, or a
        time stamped by a clock that ran ahead), and at once when what it polls changed since
        (a URL mended, another folder: not when the old address's backoff or pause said)."""
        if _moved(running, state):
            return 0.0
        return min(_seconds_until(state.next_poll, now), self._longest_wait(running, state))

    def _longest_wait(self, running: _Running, state: SourceState) -> float:
        """The longest a source may wait for its next poll under its settings as they are
        now (see :meth:`_longest_waits`), in the state it is in."""
        answering, failing, paused = self._longest_waits(running)
        return paused if state.paused else failing if state.failures else answering

    def _longest_waits(self, running: _Running) -> tuple[float, float, float]:
        """The longest a source may wait for its next poll under its settings as they are
        now, in seconds: answering, its interval; failing, the longest backoff (or a server's
        longest Retry-After); paused, the probe interval."""
        return (running.config.every.total_seconds(),
                max(self.max_backoff.total_seconds() * 1.2, MAX_RETRY_AFTER),
                self.probe_every.total_seconds())

    def _start_poll(self, name: str) -> None:
        """The timetable's call: poll a due source in a task of its own."""
        running = self._running.get(name)
        if running is not None and not self._closed:
            self._tasks[name] = asyncio.create_task(self._poll_due(running),
                                                    name=f"newswatch-source-{name}")

    async def _poll_due(self, running: _Running) -> None:
        """One scheduled poll; then back on the timetable, due when its new state says."""
        name = running.name
        retry: float | None = None
        try:
            # A paused source is still probed, at its backoff ceiling: a success resumes it.
            report = await self._poll_guarded(running)
        except StoreUnavailableError as exc:
            # Nothing of the poll was kept (its cursor neither): polled again when the store
            # is back, as if for the first time since.
            retry = self.outage.wait_or_stop(exc, self._fatal)
            if retry is None:
                return
        except Exception as exc:  # a store failure concerns every source: stop
            self._fatal(exc)
            return
        else:
            if _reached_store(report):
                self.outage.over()
        finally:
            if self._tasks.get(name) is asyncio.current_task():
                del self._tasks[name]
        timetable = self._timetable
        if timetable is not None and self._running.get(name) is running:  # still run here
            if retry is not None:
                timetable.set(name, retry)
                return
            state = self._book.peek(name)
            timetable.set(name, _seconds_until(state.next_poll if state is not None else None,
                                               datetime.now(UTC)))

    def _now(self) -> datetime:
        """When a poll happens, as its state records it. Shared: by the engine's clock, which
        leases are claimed by, so a source's next poll and the claims that find it due agree;
        alone: by the machine's, which the timetable sleeps by."""
        return self.clock.now() if self.shared else datetime.now(UTC)

    def _fatal(self, exc: BaseException) -> None:
        if self.on_fatal is not None:
            self.on_fatal(exc)
        else:
            log.error("%s", exc, exc_info=exc)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._fatal(task.exception())  # type: ignore[arg-type]

    async def _poll_guarded(self, running: _Running, *, locked: bool = False) -> PollReport:
        """One poll; any unexpected exception counts as a failure of this source (state saved,
        backoff, pause and notice) — except a store failure, which concerns every source.
        ``locked``: the caller holds the source's poll lock (see :meth:`_poll_lock`)."""
        try:
            if locked:
                return await self._poll_source(running.name)
            return await self.poll_source(running.name)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is None or task.cancelling() > 0:
                raise  # a stop of this poll
            # The source's own (a future its HTTP client awaited was cancelled): passed on as
            # a stop, it ended run_once's round for every source, and a started engine never
            # polled the source again. A failure of this source, as any other.
            state = await self._book.get(running.name)
            return await self._failed(running, state,
                                      "unexpected error: CancelledError of its own (not a "
                                      "stop)", None)
        except StoreError:
            raise
        except Exception as exc:
            log.exception("source %s: unexpected failure", running.name)
            state = await self._book.get(running.name)
            return await self._failed(running, state,
                                      f"unexpected error: {type(exc).__name__}: {exc}", None)
        except BaseException as exc:
            # An embedder's source ending the process from inside its poll (SystemExit,
            # KeyboardInterrupt, a framework's own BaseException) went through the event loop
            # with the engine open, naming no source, or ended its task unseen: the source
            # was never polled again. It fails the engine instead (``run_once`` raises it),
            # which closes in order.
            detail = f": {exc}" if str(exc) else ""
            raise NewswatchError(f"source {running.name} raised {type(exc).__name__}{detail} "
                                 "while polling") from None

    async def aclose(self, *, store_failed: bool = False) -> None:
        """Stop every source task and close the sources. Safe to call twice. ``store_failed``:
        the store's failure was already reported (it stopped the engine), so the states it
        could not save are told without naming it again."""
        if self._closed:
            return
        self._closed = True
        if self._timetable is not None:
            self._timetable.close()
        tasks = [*self._tasks.values(), *self._background, *self._inflight.values()]
        self._book.closing = True
        if self._book.flusher is not None:
            tasks.append(self._book.flusher)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._background.clear()
        try:
            if self.shared and self._started:
                for state in self._unreleased.values():  # finished polls the stop cut short
                    await self.store.release_source(state, owner=self.owner)
                # Polls cut short hand their sources straight back to the other workers.
                await self.store.release_leases(self.owner)
            await self._book.flush()
        except StoreError as exc:
            if store_failed:
                # The same failure, told where the engine stops: once is enough (a consequence,
                # not news: a lost cursor is one full fetch, a lost health count one poll's).
                log.debug("source states not saved: the store failed")
            else:
                log.error("source states not saved: %s", exc)
        for running in self._running.values():
            try:
                await running.source.aclose()
            except Exception:
                log.exception("closing source %s", running.name)

    async def poll_source(self, name: str) -> PollReport:
        """Poll one source once: store what is new, match it, write alerts; record health.

        A poll of a source that is polling already (``run_once`` beside the running
        service's poll) waits for that poll to end, then asks with the cursor it left: two at
        once both took the same items for new, fetched them twice, and each saved the
        source's state over the other's. (A shared worker's claim of a source it still polls
        is not polled at all: see :meth:`_poll_leased`.)"""
        async with self._poll_lock(name):
            return await self._poll_source(name)

    def _poll_lock(self, name: str) -> asyncio.Lock:
        """The lock a poll of source ``name`` holds here (a shared worker's for the whole
        claim: its state put, the poll, the release)."""
        lock = self._polling.get(name)
        if lock is None:
            lock = self._polling[name] = asyncio.Lock()
        return lock

    async def _poll_source(self, name: str) -> PollReport:
        running = self._running.get(name)
        if running is None:  # removed while this poll waited for another: nothing to poll
            return PollReport(source=name)
        state = await self._book.get(name)
        now = self._now()
        polled = _polled(running.config)
        was = state.cursor.get(POLLED)
        moved = was is not None and was != polled
        cursor = {} if moved else {k: v for k, v in state.cursor.items() if k != POLLED}
        try:
            answering = ANSWERING.set(state.failures == 0)
            try:
                poll = await running.source.poll(cursor)
            finally:
                ANSWERING.reset(answering)
            if (bad := _cursor_problem(getattr(poll, "cursor", None))) is not None:
                # Kept, it failed the save of every source's state (a library's source that
                # wrote {"last_id": 7}): this source's failure, named, and nothing else's.
                raise SourceError(f"its poll returned a cursor {bad}")
            if len(poll.articles) > 1:
                # Two items of one poll under one identity: the first is kept (see
                # one_version_each), else they replaced each other at every poll.
                kept, twins = one_version_each(poll.articles)
                if twins:
                    poll = replace(poll, articles=kept, skipped=(*poll.skipped, *twins))
        except FetchQueuedError as exc:
            if state.failures == 0 and state.last_success is not None:
                report = self._not_reached(running, state, str(exc))
            else:  # (see _not_reached)
                report = await self._failed(running, state, str(exc), None)
        except SourceError as exc:
            report = await self._failed(running, state, str(exc),
                                        getattr(exc, "retry_after", None))
        else:
            # The first poll that succeeds, whether or not earlier ones failed: a new feed
            # down at its first poll would otherwise post its whole backlog once it answers.
            first = state.last_success is None or moved
            baseline = first and SOURCE_TYPES[running.config.type].baseline
            if moved:
                log.info("source %s now polls %s (it polled %s): its first poll there %s",
                         printable(name), printable(without_credentials(
                             _polled(running.config, as_written=True))),
                         printable(without_credentials(str(was))),
                         "is a baseline" if baseline else "alerts what it finds")
            # A source with more ready than one poll reads (a folder's drop past a poll's
            # bytes) is due again at once: its files waited a whole interval per 16 MiB (2,000
            # files of a megabyte, an hour at 30 s).
            more = getattr(poll, "more", False) is True
            at_once = self._again_at_once(running) if more else self._read_through(running)
            since = self._answered.get(running.name, state.last_success)
            self._answered[running.name] = self.clock.now()
            if poll.articles:
                report = await self._ingest(running, poll.articles, baseline=baseline,
                                            since=since)
                report = replace(report, not_modified=poll.not_modified,
                                 skipped=len(poll.skipped), more=more)
            else:  # most polls (304): nothing to ingest
                report = PollReport(source=running.name, baseline=baseline,
                                    not_modified=poll.not_modified, skipped=len(poll.skipped),
                                    more=more)
            told = self._skips_told.pop(running.name, frozenset())
            for item in poll.skipped:
                if item not in told:
                    log.warning("source %s: skipped %s", printable(name), item)
            if poll.skipped:
                self._skips_told[running.name] = frozenset(poll.skipped)
            if state.failures:
                # Each failure was logged; without this the log's last word on a source that
                # came back after days was that it was failing.
                log.info("source %s answers again after %d failures in a row%s", running.name,
                         state.failures, " (resumed: it was paused)" if state.paused else "")
            self._book.save(
                replace(state, cursor={**(dict(poll.cursor) or cursor), POLLED: polled},
                        polls=state.polls + 1,
                        last_success=now, failures=0, paused=False,
                        skipped=state.skipped + len(poll.skipped),
                        next_poll=now if at_once else now + running.config.every)
            )
        if self.on_report:
            try:
                self.on_report(report)
            except Exception:
                # The callback's own error: logged as such, not counted against the source (ten
                # in a row paused a healthy feed and told the team it was failing).
                log.exception("source %s: the on_report callback failed (the poll itself "
                              "succeeded)", printable(running.name))
        return report

    def _again_at_once(self, running: _Running) -> bool:
        """Whether a source whose poll had more ready is due again at once: up to
        :data:`ONCE_POLLS` polls in a row, then at its interval (and again at once after it).
        A source that always says it has more (a library source's bug, a folder written faster
        than it is read) was polled again at once for ever."""
        name = running.name
        polls = self._at_once.get(name, 0) + 1
        if polls < ONCE_POLLS:
            self._at_once[name] = polls
            return True
        self._at_once.pop(name, None)
        log.info("source %s: more was ready after %d polls in a row; the rest waits for its "
                 "next poll (every %s)", printable(name), ONCE_POLLS,
                 format_duration(running.config.every))
        return False

    def _read_through(self, running: _Running) -> bool:
        """A poll that left nothing ready: the next that does starts a new row (False)."""
        self._at_once.pop(running.name, None)
        return False

    def _not_reached(self, running: _Running, state: SourceState, error: str) -> PollReport:
        """The fetch of a source that answered its last poll never reached it (no connection
        to its host came free in time): tried again at its next turn, and not counted among
        its failures, which paused healthy feeds that shared a host with a few hanging ones.
        A source that has not answered since it last failed (or ever) has it counted: the
        hanging feeds that hold the host's connections must back off and pause, or they
        would queue again every interval and keep the host's connections taken for good."""
        now = self._now()
        wait = self.probe_every if state.paused else running.config.every
        self._book.save(replace(state, polls=state.polls + 1, last_error=error,
                                last_error_at=now, next_poll=now + wait))
        log.warning("source %s not polled (not counted as its failure): %s", running.name,
                    error)
        return PollReport(source=running.name, error=error)

    async def _failed(self, running: _Running, state: SourceState, error: str,
                      retry_after: float | None) -> PollReport:
        every = running.config.every
        failures = state.failures + 1
        backoff = min(every.total_seconds() * 2 ** (failures - 1),
                      self.max_backoff.total_seconds())
        backoff *= 0.8 + 0.4 * random.random()
        if retry_after is not None and math.isfinite(retry_after):
            backoff = max(backoff, min(retry_after, MAX_RETRY_AFTER))
        paused = failures >= self.pause_after
        if paused:
            backoff = max(backoff, self.probe_every.total_seconds())
        now = self._now()
        # What it polled, when nothing is recorded yet (it never answered): one whose URL is
        # then mended is polled at once (it waited out the old address's backoff). A source
        # that answered elsewhere keeps that address until this one answers: its first answer
        # here is a baseline.
        cursor = {POLLED: _polled(running.config), **state.cursor}
        self._book.save(
            replace(state, cursor=cursor, polls=state.polls + 1,
                    last_error=error, last_error_at=now, failures=failures,
                    next_poll=now + timedelta(seconds=backoff), paused=paused)
        )
        log.warning("source %s failed (%d in a row): %s", running.name, failures, error)
        if paused and not state.paused:
            followers = self.followers(running.name)
            if followers is None:
                told = [(running.config.route or self.notices_route, running.name)]
            else:  # a feed servers follow: each is told in a channel of its own, by its name
                told = [(self.server_notices(guild) if self.server_notices else None, label)
                        for guild, label in followers]
            for route, name in told:
                if route:
                    await self.store.add_notice(
                        route, f"Source {name!r} paused after {failures} failures in a row. "
                               f"Last error: {error}")
                    self.wake.set()
        return PollReport(source=running.name, error=error)

    def _analyse(self, ruleset: RuleSet, articles: Sequence[Article],
                 stories: StoryIndex | None = None,
                 audience: Sequence[tuple[str, RuleSet]] | None = None,
                 join: bool = True) -> list[_Analysis]:
        """Match, index and group a batch, oldest first (runs in the executor, off the event
        loop). ``audience``: for a feed servers follow, each follower's name for it and rule
        set, matched in its turn against the article under that name (``ruleset`` is then
        not used). ``join`` False: each analysis keeps its story signature for :meth:`_join`
        instead of joining its story."""
        # The collector is held off meanwhile: the batch's objects are freed by reference
        # counting, and collections would walk them again and again (see watchers.collector).
        with collector.paused():
            return self._analysed(ruleset, articles, stories, audience, join)

    def _join(self, stories: StoryIndex, articles: Sequence[Article],
              analyses: Sequence[_Analysis]) -> list[_Analysis]:
        """The analyses made with ``join`` False, each with its story joined, in order (in the
        executor)."""
        with collector.paused():
            out = [replace(a, story=join_story(stories, article, a.sig), sig=None)
                   if a.sig is not None else a
                   for article, a in zip(articles, analyses, strict=True)]
            untrack(*out)
            return out

    def _analysed(self, ruleset: RuleSet, articles: Sequence[Article],
                  stories: StoryIndex | None,
                  audience: Sequence[tuple[str, RuleSet]] | None,
                  join: bool = True) -> list[_Analysis]:
        found: list[tuple[list[Decision], str, tuple[str, ...], set[str], str,
                          tuple[str, str, str, str]]] = []
        sigs: list[Signature | None] = []
        for article in articles:
            seen = matchable(article)
            analysis = Analysis(seen)
            over: tuple[str, ...] = ()
            if audience is None:
                # Which rules match and how well, no evidence: it is built when an alert or
                # /article shows it (most matches of a large poll are never shown).
                matches, over = ruleset.decide(seen, regex_budget=self.regex_budget,
                                               analysis=analysis)
            else:
                matches = []
                shared = analysis  # each follower reuses the title and text tokenised before
                for label, rules in audience:
                    named = seen.model_copy(update={"source": label})
                    shared = shared.relabelled(named)
                    decided = rules.decide(named, regex_budget=self.regex_budget,
                                           analysis=shared)
                    matches += decided.decisions
                    over += decided.over_budget
                analysis = shared.relabelled(seen)
            # The matcher's own title tokens give the signature.
            sigs.append(signature_from(analysis) if stories is not None else None)
            # Kept until the batch is written, and no part of a cycle (untracked matches):
            # left out of the collector, as are the words, the signature, the story link and
            # the analysis, a poll of thousands of articles sets off fewer full collections,
            # and each walks less (see text.untrack).
            untrack(matches)
            words, places = analysed_index(analysis)
            found.append((matches, terms_text(words), over, words, url_terms(article.url),
                          places))
        links: list[StoryLink | None] = [None] * len(found)
        if not join:
            out = [_Analysis(matches, terms, over, None, words, urls, sig, places)
                   for (matches, terms, over, words, urls, places), sig
                   in zip(found, sigs, strict=True)]
            untrack(*out)
            return out
        if stories is not None:
            # The batch joins its stories once it is matched, in the same order: the live index
            # is then walked article after article rather than between two articles' matching,
            # which each time leaves little of the other in the processor's caches.
            links = [join_story(stories, article, sig) if sig is not None else None
                     for article, sig in zip(articles, sigs, strict=True)]
        out = [_Analysis(matches, terms, over, link, words, urls, places=places)
               for (matches, terms, over, words, urls, places), link
               in zip(found, links, strict=True)]
        untrack(*out)
        return out

    async def _ingest(self, running: _Running, articles: Sequence[Article], *, baseline: bool,
                      since: datetime | None = None) -> PollReport:
        """Store a poll's articles with their matches, alerts and stories. ``since``: when the
        source last answered before this poll. A match counts (for surges and trends) when its
        article was published, but no earlier than that: what a feed published while
        newswatch or the feed was down is spread over that time, not piled on this poll, and a
        feed's old or late-listed item counts as new only since the last look."""
        if not articles:  # most polls: 304 or nothing new; no store round trip at all
            return PollReport(source=running.name, baseline=baseline)
        ruleset, rules = self._ruleset, self._rules
        mutes = await self.store.mutes(now=self.clock.now())
        newest_first = sorted(
            articles, key=lambda a: a.published or a.fetched_at or _EPOCH, reverse=True
        )
        backfill = getattr(running.config, "backfill", 0)
        alert_ok = {a.id for a in newest_first[:backfill]} if baseline else None
        # Oldest first, so alerts go out in the order the stories appeared.
        oldest_first = newest_first[::-1]
        known = await self.store.known(oldest_first)
        fresh = [a for a, k in zip(oldest_first, known, strict=True) if not k]
        updated = 0
        if not baseline:
            updated = await self._changes(
                [a for a, k in zip(oldest_first, known, strict=True) if k])
        if not fresh:
            return PollReport(source=running.name, seen=len(articles), baseline=baseline,
                              updated=updated)
        loop = asyncio.get_running_loop()
        stories = await self.story_index()
        # Shared: polls of several workers group their articles one at a time, under the
        # store's story grouping lock, each after reading what the others wrote (see below).
        # Not a first poll's backlog that may not alert (no backfill): it is history, and
        # thousands of feeds' first polls at start-up, taken one at a time, took twice as long
        # as without the lock (2,000 feeds, three workers: 15.7 s, 33.7 s with it).
        may_alert = not baseline or bool(alert_ok)
        grouping: Callable[[], contextlib.AbstractAsyncContextManager[bool]] | None = (
            getattr(self.store, "story_grouping", None)
            if stories is not None and self.shared and may_alert else None)
        if stories is not None and self.shared and grouping is None:
            await self._sync_stories(stories)
        # Read now, after the fetch: a server that stopped following the feed meanwhile gets
        # nothing of it, and once none follows it no rule matches it (see followers).
        followers = self.followers(running.name)
        audience = None if followers is None else [
            (label, self.server_ruleset(guild)) for guild, label in followers]
        # A large poll (a folder of history dropped at once, a first poll's backlog) is
        # analysed and written with the cyclic collector held off throughout, not only while it
        # is analysed: collections set off between the two walked its analyses again and again
        # (see watchers.collector). Not every poll: polls overlap, and the collector must get
        # its turns between them.
        # Servers told already (see _told_already) are judged and the poll written under one
        # lock: two feeds bringing one article at once each found no copy of the other's, and a
        # server following both was told twice.
        async with contextlib.AsyncExitStack() as held:
            with collector.paused() if len(fresh) >= INGEST_BATCH else contextlib.nullcontext():
                # A few hundred articles at a time: a stop (or a cancelled poll) waits for the
                # chunk at hand, not for a whole folder of history (18 s for 30,000 files).
                # Matching each chunk and then joining its stories, in order, joins the same
                # stories as the whole poll at once.
                analyses = []
                for start in range(0, len(fresh), INGEST_BATCH):
                    analyses += await loop.run_in_executor(
                        self.executor, self._analyse, ruleset, fresh[start : start + INGEST_BATCH],
                        stories, audience, grouping is None)
                if grouping is not None and stories is not None:
                    # Matched without the lock; grouped and written with it. Another worker's
                    # poll of the same event, written while this one waited, is read first, so
                    # this poll's articles join its story rather than start one of their own.
                    await held.enter_async_context(self._grouping_lock)
                    await held.enter_async_context(grouping())
                    await self._sync_stories(stories, now=True)
                    analyses = await loop.run_in_executor(self.executor, self._join, stories,
                                                          fresh, analyses)
                if self.audiences:
                    await held.enter_async_context(self._copies_lock)
                    await self._told_already(fresh, analyses,
                                             None if followers is None else running.name)
                routed = []
                for article, analysis in zip(fresh, analyses, strict=True):
                    for rule in analysis.over_budget:
                        self.over_budget[rule] += 1
                        log.warning("rule %s: regex time budget exceeded on article %s (%s); "
                                    "counted as not matching", rule, article.id,
                                    printable(article.title, 80))
                    entries: list[OutboxEntry] = []
                    if alert_ok is None or article.id in alert_ok:
                        entries = _route(analysis.matches, rules, mutes, self.stories_mode)
                    routed.append((article, analysis, entries))
                routed, overflow = _cap(routed, running.config.max_alerts_per_poll,
                                        self.edits, self.digest_route)
                # The summary of the alerts the cap left out goes in the first transaction: those
                # are the oldest articles, the first written, and once a batch of them is committed
                # they are known, so a poll cut short after it (a stop, a crash, a full disk) and
                # polled again never names them. After a crash some may be named twice; none is
                # left unnamed.
                # Each summary carries the rules of the alerts it lists: quiet hours keep it
                # for their digest unless one of those would have broken through them.
                # The store names in it only the articles this poll stores: another poll of the
                # source at once (see CapSummary) stored and named the others.
                summaries = [CapSummary.of(route, (
                    self.source_label(route, running.name) if self.source_label else None)
                    or running.name, left) for route, left in overflow.items()]
                mine: set[str] = set()  # the ids of the articles this poll stored
                new = alerts = 0
                # Whole articles per transaction, a bounded number per transaction: a crash loses at
                # most the batch being written, and the source's cursor (saved after this returns)
                # brings it back on the next poll; the batches already committed are then known.
                for start in range(0, len(routed), INGEST_BATCH):
                    batch = routed[start : start + INGEST_BATCH]
                    now = self.clock.now()
                    stored = await self.store.record_many(
                        [ArticleRecord(article, analysis.matches, entries, analysis.terms,
                                       analysis.story, analysis.words, analysis.url_terms,
                                       # a first poll's backlog is history: counted at its own dates
                                       matched_at=history_time(article, at=now) if baseline
                                       else _matched_at(article, now, since),
                                       places=analysis.places)
                         for article, analysis, entries in batch], at=now,
                        summaries=summaries if start == 0 else ())
                    for (article, _, entries), kept in zip(batch, stored, strict=True):
                        if kept is not None:
                            new += 1
                            alerts += sum(1 for e in entries if not e.suppressed)
                            mine.add(article.id)
                alerts += sum(1 for s in summaries if any(a.id in mine for a, _ in s.listed))
                if not baseline:  # a backlog is no surge (nor is a muted rule's)
                    fired = {m.rule for _, analysis, _ in routed for m in analysis.matches}
                    alerts += await self._surges(
                        name for name in fired
                        if (cfg := self._rules.get(name)) is not None and cfg.key not in mutes)
                if alerts:
                    self.wake.set()
                return PollReport(source=running.name, seen=len(articles), new=new, alerts=alerts,
                                  baseline=baseline, updated=updated)

    async def _surges(self, fired: Iterable[str]) -> int:
        """Post one surge alert for each rule that just matched far more than usual (see
        :mod:`watchers.surge`), unless it is cooling down from its last one. Returns how many."""
        now = self.clock.now()
        posted = 0
        for name in sorted(fired):
            rule = self._rules.get(name)
            if rule is None or not (rule.surge if rule.surge is not None
                                    else self.surge.enabled):
                continue
            last = await self.store.last_surge(name)
            # (A last surge stamped by a clock that ran ahead by more than the cooldown, and was
            # set back since, does not hold the rule's surges until the clock catches up.)
            if last is not None and abs(now - last) < self.surge.cooldown:
                continue
            recent = await self.store.match_times([name], now - timedelta(hours=1))
            if len(recent[name]) < self.surge.min_count:  # most polls stop at this count
                continue
            since = now - timedelta(days=self.surge.days) - timedelta(hours=1)
            times = (await self.store.match_times([name], since))[name]
            surging, count, base = is_surge(
                times, now + timedelta(microseconds=1), sigma=self.surge.sigma,
                min_count=self.surge.min_count, days=self.surge.days,
                first=await self.store.first_match(name))
            if not surging:
                continue
            top = await self.store.top_stories(name, now - timedelta(hours=1))
            # The cooldown is checked again where the surge is written: another source's poll
            # (polls run at once) may have found the same surge meanwhile.
            if not await self.store.add_surge(name, rule.channel,
                                              surge_text(rule.name, count, base, top), now,
                                              not_since=now - self.surge.cooldown, model=rule):
                continue
            log.info("rule %s surges: %d matches in the last hour (usual %.1f)", name, count,
                     base.mean)
            posted += 1
        return posted

    async def _told_already(self, fresh: Sequence[Article], analyses: Sequence[_Analysis],
                            feed: str | None = None) -> None:
        """The servers whose followed feeds brought these articles first matched them then:
        their rules' matches of these copies are dropped (the operator's copy is stored for the
        operator's rules and every other server's; ``feed``'s, a followed feed's, for its
        followers that follow none of the feeds that brought it). Kept, they alerted those
        servers again, or edited their story, and counted twice in their trends and surges."""
        copies = await self.store.followed_copies([a.content_hash for a in fresh])
        if not copies:
            return
        for article, analysis in zip(fresh, analyses, strict=True):
            told = {guild for source in copies.get(article.content_hash, ())
                    if source != feed for guild, _ in self.audiences.get(source, ())}
            if told:
                analysis.matches[:] = [
                    m for m in analysis.matches
                    if (rule := self._rules.get(m.rule)) is None or rule.guild_id not in told]

    async def _changes(self, known: Sequence[Article]) -> int:
        """Items the store already holds under the same guid or link whose content changed
        materially: the stored article takes the new content and its story's message is
        updated ("updated: …") on the routes that follow stories; returns how many. Items
        another outlet already published word for word add that outlet to the story."""
        if self.stories_mode is None or not known:
            return 0
        routes = [route for route in dict.fromkeys(r.channel for r in self._rules.values())
                  if self.stories_mode(route) != "off"]
        versions = list(zip(known, await self.store.known_versions(known), strict=True))
        updated = 0
        for new, (old, _) in versions:
            # Another source's version of the same link (two section feeds of one outlet, with
            # their own summaries) is no news: taken for one, the stored text flipped at every
            # poll of either feed, and each flip posted an "updated" line.
            if old is None or old.source != new.source or not materially_changed(old, new):
                continue
            updated += 1
            matches, entries = await self._newly_fired(old, new)
            if await self.store.record_change(old.id, new, self._seen_on(routes, new.source),
                                              matches=matches,
                                              alerts=entries,
                                              rematched=self.followers(new.source) is None):
                self.wake.set()
        # A word-for-word copy from another outlet stores nothing new, but it is one more
        # outlet reporting the story (what min_sources counts) — unless it is the very article,
        # at the same link (one site's two section feeds corroborated each other) or, read by
        # a folder, under the same guid (a folder source renamed read its files again, each
        # then a copy of itself from "another outlet": one file released a wait for two).
        for new, (_, original) in versions:
            if original is None or _same_link(new, original) or (
                    self._is_folder(new.source) and _same_guid(new, original)):
                continue
            if await self.store.add_outlet(original.id, new.source, sort_time(new),
                                           self._seen_on(routes, new.source)):
                self.wake.set()
        return updated

    def _is_folder(self, source: str) -> bool:
        running = self._running.get(source)
        return running is not None and running.config.type == "folder"

    def followers(self, source: str) -> tuple[tuple[int, str], ...] | None:
        """(server, its name for the feed) of each server following ``source``; None for a
        source of the config file (every server sees it, and the config file's rules match
        it). A feed servers follow that none follows any more (the last one stopped while a
        poll of it was under way) has none: its articles are matched by no rule — they were
        matched by every server's and the operator's, as a config file's source is."""
        followers = self.audiences.get(source)
        if followers is None and source.startswith(SERVER_FEED_PREFIX):
            return ()
        return followers

    def _seen_on(self, routes: Sequence[str], source: str) -> list[str]:
        """Those of ``routes`` whose readers see ``source``: every route for the config file's
        sources, and for a feed servers follow only its followers' (an update of a story's
        message elsewhere showed nothing new there, and cost the destination a request)."""
        followers = self.followers(source)
        if followers is None:
            return list(routes)
        guilds = {guild for guild, _ in followers}
        theirs = {r.channel for r in self._rules.values() if r.guild_id in guilds}
        return [route for route in routes if route in theirs]

    async def _newly_fired(self, old: Article, new: Article
                           ) -> tuple[list[Match], list[OutboxEntry]]:
        """Every match of the new version of a stored article (its evidence is in the new
        text), and the routes' entries of the rules it fires that the stored one did not: a
        placeholder item rewritten into news ("Breaking: details to follow") alerts as a new
        article would, and a rule of higher severity escalates. A source servers follow is
        matched by their own rule sets at ingest; its changed items are not matched again."""
        if self.followers(new.source) is not None:
            return [], []
        ruleset, rules = self._ruleset, self._rules
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(self.executor, ruleset.match, matchable(new))
        if not found:
            return [], []
        # (a retired match is an earlier rule's: one added since under its name is new to it)
        before = {m.rule for m in await self.store.matches_for(old.id, retired=False)}
        fresh = [m for m in found if m.rule not in before]
        if not fresh:
            return found, []
        mutes = await self.store.mutes(now=self.clock.now())
        return found, _route(fresh, rules, mutes, self.stories_mode)

    async def state_of(self, name: str) -> SourceState | None:
        """The stored health of the running source ``name`` (None: unknown or never polled)."""
        if name not in self._running:
            return None
        if self.shared:
            return await self.store.source_state(name)
        return (await self._book.all()).get(name)

    async def health(self) -> list[SourceState]:
        if self.shared:  # other processes poll: what the store says now
            states = {s.name: s for s in await self.store.all_source_states()}
            return [states.get(name) or SourceState(name=name) for name in self._running]
        states = await self._book.all()
        return [states.get(name) or SourceState(name=name) for name in self._running]


def _restore(index: StoryIndex, stories: Iterable[StoryRecord]) -> None:
    """Put stored stories into the live index. A story whose stored signature does not read
    (written by hand, or damaged) is left out with a warning: its articles stay stored and
    findable, later ones start a new story, and no poll fails for it."""
    for st in stories:
        try:
            sig = Signature.load(st.signature)
        except ValueError as exc:
            log.warning("story %s left out of the live index: %s", st.id, exc)
            continue
        index.restore(st.id, sig, st.first_seen, st.last_seen, st.outlets)


def _cap(routed: list[tuple[Article, _Analysis, list[OutboxEntry]]], cap: int,
         edits: Callable[[str], bool] | None = None,
         digest_route: Callable[[str], bool] | None = None
         ) -> tuple[list[tuple[Article, _Analysis, list[OutboxEntry]]],
                    dict[str, list[tuple[Article, tuple[RuleConfig, ...]]]]]:
    """Keep at most ``cap`` alert messages per route from one poll — the newest, since the
    list runs oldest first. The others lose their outbox entry (article and matches are
    still recorded) and are listed in one summary per route (each article with the rules
    that fired on it there). A story's articles on a route
    that tells stories are one message (the others edit it, or are lines in its thread, and
    ping nobody): counted each, 25 reports of a known story took the cap, and a new story's
    critical alert was listed as not posted. (Not where the destination cannot edit, per
    ``edits``: there each article of a story is an alert.) A digest route (per
    ``digest_route``) is not capped: its alerts wait for one digest, and capped, all but
    ``cap`` of them were left out of it and listed at once in a message of their own."""
    seen: dict[str, int] = defaultdict(int)
    told: set[tuple[str, str]] = set()  # (route, story) counted already
    overflow: dict[str, list[tuple[Article, tuple[RuleConfig, ...]]]] = defaultdict(list)
    kept: list[tuple[Article, _Analysis, list[OutboxEntry]]] = []
    for article, analysis, entries in reversed(routed):
        keep = []
        story = analysis.story.id if analysis.story is not None else None
        for entry in entries:
            one = ((entry.route, story) if story is not None and entry.stories != "off"
                   and (edits is None or edits(entry.route)) else None)
            if entry.suppressed or (one is not None and one in told) or (
                    digest_route is not None and digest_route(entry.route)):
                keep.append(entry)
            elif seen[entry.route] < cap:
                seen[entry.route] += 1
                if one is not None:
                    told.add(one)
                keep.append(entry)
            else:
                overflow[entry.route].append((article, entry.rules))
        kept.append((article, analysis, keep))
    kept.reverse()
    return kept, {route: left[::-1] for route, left in overflow.items()}

def _same_link(a: Article, b: Article) -> bool:
    """Whether two articles are at one address (as links compare: tracking parameters aside)."""
    return bool(a.url and b.url and normalise_link(a.url) == normalise_link(b.url))


def _cursor_problem(cursor: object) -> str | None:
    """What is wrong with a poll's cursor (a mapping of strings to strings), or None."""
    if not isinstance(cursor, Mapping):
        return f"that is {json_kind(cursor)}, not a mapping of strings"
    for key, value in cursor.items():
        if not isinstance(key, str):
            return f"with a key that is {json_kind(key)}, not a string"
        if not isinstance(value, str):
            return f"whose {printable(key)[:60]!r} is {json_kind(value)}, not a string"
    return None


def _same_guid(a: Article, b: Article) -> bool:
    """Whether two articles carry one guid. Read only of a folder's, which names the file's
    path in the folder and its content: two outlets' feeds share a syndicated item's guid (a
    wire story's, "urn:publicid:ap.org:…") and are two outlets reporting it."""
    return bool(a.guid and a.guid == b.guid)


def _seconds_until(when: datetime | None, now: datetime) -> float:
    """Seconds from ``now`` until a source's next poll is due (0: due now, never polled)."""
    return 0.0 if when is None else (when - now).total_seconds()


def _route(matches: Sequence[Fired], rules: Mapping[str, RuleConfig],
           mutes: Mapping[str, datetime], stories_mode: Callable[[str], str] | None = None
           ) -> list[OutboxEntry]:
    by_route: dict[str, list[RuleConfig]] = defaultdict(list)
    for m in matches:
        rule = rules.get(m.rule)
        if rule is not None:
            by_route[rule.channel].append(rule)
    entries = []
    for route, fired in by_route.items():
        live = tuple(r for r in fired if r.key not in mutes)
        # A muted rule's match is kept (suppressed) only when no live rule carries the alert.
        carried = live or tuple(fired)
        entries.append(OutboxEntry(
            route=route, rules=carried, suppressed=not live,
            stories=stories_mode(route) if stories_mode is not None else "off",
            severity=highest_severity(r.severity for r in carried),
            # Any rule that is satisfied lets the alert post.
            min_sources=min(r.min_sources for r in carried),
        ))
    return entries


def surge_text(rule: str, count: int, base: Baseline, top: Sequence[tuple[str, int]]) -> str:
    """The surge alert: how many, how unusual, against what, and the top stories."""
    usual = (f"usual {base.mean:.1f} ± {base.std:.1f} per hour, the same hour over the last "
             f"{base.samples} days" if base.kind == "same hour" else
             f"usual {base.mean:.1f} ± {base.std:.1f} per hour over the last {base.samples} hours")
    lines = [f"📈 Surge — {rule}: {count} matches in the last hour, "
             f"{base.factor(count):.0f}× usual ({usual})."]
    lines += [f"• {printable(headline, 150)}" + (f" ({n} articles)" if n > 1 else "")
              for headline, n in top]
    return "\n".join(lines)


def _gist(text: str) -> str:
    return " ".join(text.casefold().split())


def materially_changed(old: Article, new: Article) -> bool:
    """Whether a new version of an article says something else: another title, or a text
    that differs by more than small edits (a typo, a tracking suffix, reflowed lines).

    A version that has lost its title or its text (a feed's glitch: the same item served
    empty) is not one: it would replace what was stored, and what lookups find, with nothing.
    """
    if (old.title.strip() and not new.title.strip()) or (old.text.strip()
                                                         and not new.text.strip()):
        return False
    if _gist(old.title) != _gist(new.title):
        return True
    before, after = _gist(old.text)[:4000], _gist(new.text)[:4000]
    return before != after and fuzz.ratio(before, after) < 90


class _StateBook:
    """Source states while the service runs: read once, kept in memory (this process is their
    only writer — the store's process lock), and written behind, every change of the last
    ``every`` seconds in one transaction. A crash loses at most those seconds of health; a lost
    cursor only means one full fetch, and the store's dedupe keeps it from alerting twice."""

    def __init__(self, store: Store, fatal: Callable[[BaseException], None],
                 outage: StoreOutage, every: float = 0.5) -> None:
        self.store = store
        self.fatal = fatal
        self.outage = outage
        self.every = every
        self.write_behind = False  # until the service starts, every change is flushed by hand
        self.closing = False
        self.flusher: asyncio.Task[None] | None = None
        self._states: dict[str, SourceState] | None = None
        self._dirty: dict[str, SourceState] = {}

    async def all(self) -> dict[str, SourceState]:
        if self._states is None:
            loaded = {s.name: s for s in await self.store.all_source_states()}
            if self._states is None:  # else another caller's load came first, maybe changed since
                self._states = loaded
        return self._states

    async def get(self, name: str) -> SourceState:
        states = self._states
        if states is None:
            states = await self.all()
        return states.get(name) or SourceState(name=name)

    def peek(self, name: str) -> SourceState | None:
        """The source's state if it is held here (no store read)."""
        return None if self._states is None else self._states.get(name)

    def put(self, state: SourceState) -> None:
        """Take ``state`` as the source's current state (claimed from the store) unsaved."""
        if self._states is None:
            self._states = {}
        self._states[state.name] = state

    def take(self, name: str) -> SourceState | None:
        """The source's state, no longer held here nor waiting to be written (its caller
        saves it)."""
        self._dirty.pop(name, None)
        return None if self._states is None else self._states.pop(name, None)

    def save(self, state: SourceState) -> None:
        if self._states is not None:
            self._states[state.name] = state
        self._dirty[state.name] = state
        if self.flusher is None and self.write_behind and not self.closing:
            self.flusher = asyncio.create_task(self._flush_soon(), name="newswatch-source-states")

    async def _flush_soon(self, delay: float | None = None) -> None:
        try:
            await asyncio.sleep(self.every if delay is None else delay)
        finally:
            self.flusher = None
        try:
            wrote = bool(self._dirty)
            await self.flush()
            if wrote:
                self.outage.over()  # written: the store answers (a poll may not have asked it)
        except StoreUnavailableError as exc:  # kept, and written when the store is back
            retry = self.outage.wait_or_stop(exc, self.fatal)
            if retry is None:
                return
            if self.flusher is None and not self.closing:
                self.flusher = asyncio.create_task(self._flush_soon(retry),
                                                   name="newswatch-source-states")
        except StoreError as exc:  # the store is gone: the engine stops, with one line
            self.fatal(exc)

    async def flush(self) -> None:
        """Write the states changed since the last flush, in one transaction."""
        if not self._dirty:
            return
        batch, self._dirty = list(self._dirty.values()), {}
        try:
            await self.store.save_source_states(batch)
        except BaseException:
            for state in batch:  # not lost: written with the next flush
                self._dirty.setdefault(state.name, state)
            raise
