"""WatchService: polls every source on its own schedule, matches new articles, records alerts.

Each source runs in its own task. A failing source is logged, backs off exponentially (with
jitter) and after ``pause_after`` consecutive failures is paused: a notice goes to its route, it is
probed once every ``probe_every``, and a successful probe (or a resume) brings it back. It never
stops the others. The first poll of a feed records a baseline without alerting (``backfill``
newest items do alert); a folder alerts on what it finds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from watchers.delivery import RuleInfo
from watchers.errors import NewswatchError, SourceError
from watchers.models import Article, Match
from watchers.rules import Rule, RuleSet
from watchers.sources.base import Source
from watchers.store.base import OutboxEntry, SourceState, Store

__all__ = ["PollReport", "RuleSpec", "SourceSpec", "WatchService"]

log = logging.getLogger(__name__)

_EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RuleSpec:
    """A rule as the service runs it: the query plus where and how its alerts go."""

    name: str
    query: str
    channel: str = "alerts"
    severity: str = "medium"
    mention_role: int | None = None
    threshold: int | None = None
    origin: str = "config"  # "config" or "store" (added at run time)

    def info(self) -> RuleInfo:
        return RuleInfo(self.name, self.query, self.severity, self.mention_role)


@dataclass
class SourceSpec:
    """A source and how to run it."""

    source: Source
    every: timedelta
    baseline: bool = False  # first poll records without alerting (feeds)
    backfill: int = 0  # …except this many newest items
    route: str | None = None  # where notices about this source go
    origin: str = "config"

    @property
    def name(self) -> str:
        return self.source.name


@dataclass(frozen=True)
class PollReport:
    """What one poll of one source did."""

    source: str
    seen: int = 0
    new: int = 0
    alerts: int = 0
    not_modified: bool = False
    baseline: bool = False
    error: str | None = None


@dataclass
class WatchService:
    """The engine's scheduler. Build it, ``await start()``, and ``await aclose()`` when done."""

    store: Store
    sources: list[SourceSpec]
    rules: Sequence[RuleSpec] = ()
    threshold: int = 85
    aliases: Mapping[str, Sequence[str]] = field(default_factory=dict)
    pause_after: int = 10
    max_backoff: timedelta = timedelta(hours=1)
    probe_every: timedelta = timedelta(hours=1)  # how often a paused source is tried again
    on_alerts: Callable[[], None] | None = None  # woken after alerts are written
    on_notice: Callable[[str | None, str], None] | None = None  # (route, message)
    on_report: Callable[[PollReport], None] | None = None
    _ruleset: RuleSet = field(init=False)
    _specs: dict[str, RuleSpec] = field(init=False)
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict, init=False)
    _wake: dict[str, asyncio.Event] = field(default_factory=dict, init=False)
    _closed: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.set_rules(self.rules)

    # ------------------------------------------------------------------ rules

    def set_rules(self, rules: Iterable[RuleSpec]) -> None:
        """Replace the running rules; the next article is matched against the new set."""
        specs = {r.name: r for r in rules}
        self._ruleset = RuleSet(
            [Rule(name=r.name, query=r.query, threshold=r.threshold or self.threshold)
             for r in specs.values()],
            aliases={k: list(v) for k, v in self.aliases.items()},
        )
        self._specs = specs
        self.rules = tuple(specs.values())

    @property
    def ruleset(self) -> RuleSet:
        return self._ruleset

    def rule_info(self, name: str) -> RuleInfo:
        spec = self._specs.get(name)
        return spec.info() if spec else RuleInfo(name, "")

    def routes(self) -> set[str]:
        return {r.channel for r in self.rules}

    # ------------------------------------------------------------------ sources

    def source_names(self) -> list[str]:
        return [s.name for s in self.sources]

    async def add_source(self, spec: SourceSpec) -> None:
        if spec.name in self.source_names():
            raise NewswatchError(f"a source named {spec.name!r} already exists")
        self.sources.append(spec)
        if self._tasks:
            self._spawn(spec)

    async def remove_source(self, name: str) -> bool:
        spec = next((s for s in self.sources if s.name == name), None)
        if spec is None:
            return False
        self.sources.remove(spec)
        task = self._tasks.pop(name, None)
        if task:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await spec.source.aclose()
        return True

    async def resume_source(self, name: str) -> bool:
        state = await self.store.source_state(name)
        if state is None or name not in self.source_names():
            return False
        await self.store.save_source_state(replace(state, paused=False, failures=0,
                                                   next_poll=None))
        self.poke(name)
        return True

    def poke(self, name: str | None = None) -> None:
        """Poll a source (or all) now instead of at its next scheduled time."""
        for key, event in self._wake.items():
            if name is None or key == name:
                event.set()

    # ------------------------------------------------------------------ running

    async def run_once(self) -> list[PollReport]:
        """Poll every enabled source once, concurrently; return what each poll did."""
        return list(await asyncio.gather(*(self.poll_source(s) for s in self.sources)))

    async def start(self) -> None:
        for spec in self.sources:
            self._spawn(spec)

    def _spawn(self, spec: SourceSpec) -> None:
        self._wake[spec.name] = asyncio.Event()
        self._tasks[spec.name] = asyncio.create_task(
            self._loop(spec), name=f"newswatch-source-{spec.name}"
        )

    async def _loop(self, spec: SourceSpec) -> None:
        wake = self._wake[spec.name]
        while True:
            state = await self.store.source_state(spec.name)
            now = datetime.now(UTC)
            if state and state.next_poll and state.next_poll > now:
                wake.clear()
                # A poke (resume, poll now) cuts the wait short.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(),
                                           timeout=(state.next_poll - now).total_seconds())
            try:
                # A paused source is still probed, at its backoff ceiling: a success resumes it.
                await self.poll_source(spec)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in one source must not end its loop for good
                log.exception("source %s: unexpected failure", spec.name)
                await asyncio.sleep(spec.every.total_seconds())

    async def aclose(self) -> None:
        """Stop every source task and close the sources. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        for spec in self.sources:
            try:
                await spec.source.aclose()
            except Exception:
                log.exception("closing source %s", spec.name)

    async def poll_source(self, spec: SourceSpec) -> PollReport:
        """Poll one source once: store what is new, match it, write alerts; record health."""
        state = await self.store.source_state(spec.name) or SourceState(name=spec.name)
        now = datetime.now(UTC)
        try:
            poll = await spec.source.poll(state.cursor)
        except SourceError as exc:
            report = await self._failed(spec, state, str(exc), getattr(exc, "retry_after", None))
        else:
            first = state.polls == 0 and state.last_success is None
            baseline = first and spec.baseline
            report = await self._ingest(spec, poll.articles, baseline=baseline)
            report = replace(report, not_modified=poll.not_modified)
            await self.store.save_source_state(
                replace(state, cursor=dict(poll.cursor) or state.cursor, polls=state.polls + 1,
                        last_success=now, failures=0, paused=False,
                        next_poll=now + spec.every)
            )
        if self.on_report:
            self.on_report(report)
        return report

    async def _failed(self, spec: SourceSpec, state: SourceState, error: str,
                      retry_after: float | None) -> PollReport:
        failures = state.failures + 1
        backoff = min(spec.every.total_seconds() * 2 ** (failures - 1),
                      self.max_backoff.total_seconds())
        backoff *= 0.8 + 0.4 * random.random()
        if retry_after is not None:
            backoff = max(backoff, retry_after)
        paused = failures >= self.pause_after
        if paused:
            backoff = max(backoff, self.probe_every.total_seconds())
        now = datetime.now(UTC)
        await self.store.save_source_state(
            replace(state, polls=state.polls + 1, last_error=error, last_error_at=now,
                    failures=failures, next_poll=now + timedelta(seconds=backoff), paused=paused)
        )
        log.warning("source %s failed (%d in a row): %s", spec.name, failures, error)
        if paused and not state.paused and self.on_notice:
            self.on_notice(spec.route, f"Source {spec.name!r} paused after {failures} failures "
                                       f"in a row. Last error: {error}")
        return PollReport(source=spec.name, error=error)

    async def _ingest(self, spec: SourceSpec, articles: Sequence[Article], *, baseline: bool
                      ) -> PollReport:
        ruleset, specs = self._ruleset, self._specs
        mutes = await self.store.mutes(now=datetime.now(UTC))
        newest_first = sorted(
            articles, key=lambda a: a.published or a.fetched_at or _EPOCH, reverse=True
        )
        alert_ok = {a.id for a in newest_first[: spec.backfill]} if baseline else None
        new = alerts = 0
        # Oldest first, so alerts go out in the order the stories appeared.
        for article in reversed(newest_first):
            if await self.store.is_known(article):
                continue
            matches = ruleset.match(article)
            entries: list[OutboxEntry] = []
            if alert_ok is None or article.id in alert_ok:
                entries = self._route(matches, specs, mutes)
            stored = await self.store.record(article, matches, entries)
            if stored is None:
                continue
            new += 1
            alerts += sum(1 for e in entries if not e.suppressed)
        if alerts and self.on_alerts:
            self.on_alerts()
        return PollReport(source=spec.name, seen=len(articles), new=new, alerts=alerts,
                          baseline=baseline)

    @staticmethod
    def _route(matches: Sequence[Match], specs: Mapping[str, RuleSpec],
               mutes: Mapping[str, datetime]) -> list[OutboxEntry]:
        by_route: dict[str, list[str]] = defaultdict(list)
        for m in matches:
            spec = specs.get(m.rule)
            if spec is not None:
                by_route[spec.channel].append(m.rule)
        entries = []
        for route, names in by_route.items():
            live = tuple(n for n in names if n not in mutes)
            # A muted rule's match is kept (suppressed) only when no live rule carries the alert.
            entries.append(OutboxEntry(route=route, rules=live or tuple(names),
                                       suppressed=not live))
        return entries

    async def health(self) -> list[SourceState]:
        states = {s.name: s for s in await self.store.all_source_states()}
        return [states.get(spec.name) or SourceState(name=spec.name) for spec in self.sources]
