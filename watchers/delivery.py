"""Delivery: the Sink protocol, the Alert a sink receives, and the DeliveryService that drains
the outbox.

The service claims due alerts from the store, hands each to the sink of its route, and records
the outcome. Routes are independent: one slow or failing destination never holds up another, and
within a route alerts go out in the order they were written.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from watchers.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from watchers.models import Article, Match
from watchers.store.base import OutboxRow, Store

__all__ = ["Alert", "DeliveryService", "RuleInfo", "Sink"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuleInfo:
    """What a sink needs to know about a rule to present its alert."""

    name: str
    query: str
    severity: str = "medium"
    mention_role: int | None = None


@dataclass(frozen=True)
class Alert:
    """One alert to deliver: an article, the rules that fired for this route, and their evidence."""

    id: int
    route: str
    nonce: str
    attempt: int
    article: Article
    matches: tuple[Match, ...]
    rules: tuple[RuleInfo, ...]

    @property
    def severity(self) -> str:
        order = ["info", "low", "medium", "high", "critical"]
        sev = [r.severity for r in self.rules if r.severity in order]
        return max(sev, key=order.index) if sev else "medium"


class Sink(Protocol):
    """Something that shows alerts to people. Returns the remote id of what it posted, if any.

    Raise TransientDeliveryError to try again later, PermanentDeliveryError when the same alert
    will never go through (``pause_destination=True`` when the destination itself is unusable).
    """

    async def deliver(self, alert: Alert) -> str | None: ...


@dataclass
class _RouteState:
    paused_reason: str | None = None
    failures: int = 0
    not_before: datetime | None = None


@dataclass
class DeliveryService:
    """Drains the outbox into sinks. ``sink_for(route)`` returns a sink, or None to leave the
    route's alerts pending (e.g. a route with no configured destination yet)."""

    store: Store
    sink_for: Callable[[str], Sink | None]
    rule_info: Callable[[str], RuleInfo]
    notify: Callable[[str, str], None] | None = None  # (route, message) for operational notices
    batch: int = 50
    base_backoff: float = 1.0
    max_backoff: float = 300.0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _routes: dict[str, _RouteState] = field(default_factory=lambda: defaultdict(_RouteState))
    _task: asyncio.Task[None] | None = None
    delivered: int = 0

    def wake(self) -> None:
        """New alerts were written: look at the outbox now rather than at the next tick."""
        self._wake.set()

    def paused_routes(self) -> Mapping[str, str]:
        return {r: s.paused_reason for r, s in self._routes.items() if s.paused_reason}

    async def resume_route(self, route: str) -> int:
        """Resume a paused destination; its held alerts are sent again. Returns how many."""
        self._routes[route].paused_reason = None
        self._routes[route].failures = 0
        n = await self.store.release_route(route)
        self.wake()
        return n

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="newswatch-delivery")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        await self.store.requeue_interrupted()
        while True:
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery loop failed; retrying")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)
            except TimeoutError:
                pass

    async def drain(self) -> int:
        """Deliver everything due now; return how many alerts were delivered."""
        total = 0
        while True:
            now = datetime.now(UTC)
            waiting = {r for r, s in self._routes.items() if s.not_before and s.not_before > now}
            rows = await self.store.claim(now=now, limit=self.batch)
            if not rows:
                return total
            by_route: dict[str, list[OutboxRow]] = defaultdict(list)
            for row in rows:
                by_route[row.route].append(row)
            results = await asyncio.gather(
                *(self._deliver_route(route, batch, blocked=route in waiting)
                  for route, batch in by_route.items())
            )
            done = sum(results)
            total += done
            if done == 0:
                return total

    async def _deliver_route(self, route: str, rows: Sequence[OutboxRow], *, blocked: bool
                             ) -> int:
        state = self._routes[route]
        sink = None if blocked else self.sink_for(route)
        delivered = 0
        if state.paused_reason:
            await self.store.hold_route(route, state.paused_reason)
            return 0
        for i, row in enumerate(rows):
            if sink is None:
                await self._defer(rows[i:], state)
                return delivered
            try:
                alert = await self._alert(row)
                if alert is None:
                    await self.store.mark_rejected(row.id, "article no longer stored")
                    continue
                remote_id = await sink.deliver(alert)
            except TransientDeliveryError as exc:
                state.failures += 1
                delay = exc.retry_after if exc.retry_after is not None else self._backoff(state)
                state.not_before = datetime.now(UTC) + timedelta(seconds=delay)
                log.warning("route %s: %s; retrying in %.1fs", route, exc, delay)
                await self._defer(rows[i:], state)
                return delivered
            except PermanentDeliveryError as exc:
                if exc.pause_destination:
                    state.paused_reason = str(exc)
                    held = await self.store.hold_route(route, str(exc))
                    log.error("route %s paused: %s (%d alerts held)", route, exc, held)
                    if self.notify:
                        self.notify(route, f"Destination {route!r} paused: {exc}. "
                                           f"{held} alert(s) held until it is resumed.")
                    return delivered
                log.error("alert %d to %s rejected: %s", row.id, route, exc)
                await self.store.mark_rejected(row.id, str(exc))
                continue
            except DeliveryError as exc:
                await self.store.mark_rejected(row.id, str(exc))
                continue
            await self.store.mark_delivered(row.id, remote_id)
            state.failures = 0
            state.not_before = None
            delivered += 1
            self.delivered += 1
        return delivered

    def _backoff(self, state: _RouteState) -> float:
        delay = min(self.max_backoff, self.base_backoff * 2 ** (state.failures - 1))
        return float(delay * (0.8 + 0.4 * random.random()))

    async def _defer(self, rows: Sequence[OutboxRow], state: _RouteState) -> None:
        at = state.not_before or datetime.now(UTC) + timedelta(seconds=1)
        for row in rows:
            await self.store.mark_retry(row.id, at=at, reason=state.paused_reason or "deferred")

    async def _alert(self, row: OutboxRow) -> Alert | None:
        article = await self.store.get_article(row.article_id)
        if article is None:
            return None
        matches = tuple(m for m in await self.store.matches_for(article.id) if m.rule in row.rules)
        return Alert(
            id=row.id,
            route=row.route,
            nonce=row.nonce,
            attempt=row.attempts,
            article=article,
            matches=matches,
            rules=tuple(self.rule_info(r) for r in row.rules),
        )
