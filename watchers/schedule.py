"""When a route speaks: digest times, quiet hours and the hourly cap, as pure functions of a
route's settings and an instant, plus the one clock every schedule reads; and when a source
polls next (:class:`Timetable`, one timer for every source).

Times of day are wall-clock times in the route's IANA time zone, so "08:00" stays 08:00 local
across a daylight-saving change (the UTC instant moves by an hour). A wall-clock time that does
not exist on a day (skipped by a spring-forward) is taken at the same offset as just before the
gap, i.e. shifted forward by the gap; one that exists twice (autumn) is taken the first time.
Quiet hours are the exception: a start or end in a gap is taken where the gap ends (the first
instant at that wall-clock time or after), so that "00:30-01:30" is quiet from 01:00 on the
night the clocks skip from 00:00 to 01:00 (shifted by the gap, its start fell on its end).

Every function takes and returns timezone-aware datetimes; results are in UTC.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from watchers.config import RouteConfig

__all__ = [
    "Clock",
    "ManualClock",
    "SystemClock",
    "Timetable",
    "cap_window_end",
    "in_quiet_hours",
    "next_digest",
    "quiet_end",
]


class Clock(Protocol):
    """The time, for everything that schedules: tests travel in time instead of sleeping."""

    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told (tests)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the clock's start must be timezone-aware")
        self._now = start.astimezone(UTC)
        self.listeners: list[Callable[[], None]] = []

    def now(self) -> datetime:
        return self._now

    def advance(self, by: timedelta) -> datetime:
        return self.set(self._now + by)

    def set(self, when: datetime) -> datetime:
        self._now = when.astimezone(UTC)
        for listener in self.listeners:
            listener()
        return self._now


def _hm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The instant of wall-clock ``at`` on ``day`` in ``zone``. With ``fold=0`` (PEP 495) a
    skipped time takes the offset from before the gap and a repeated time its first occurrence,
    as the module docstring promises."""
    return datetime.combine(day, at, tzinfo=zone).replace(fold=0).astimezone(UTC)


def _first_at(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The first instant whose wall-clock time on ``day`` in ``zone`` is ``at`` or later: the
    instant itself (its first occurrence, when repeated), or the end of the gap that skipped
    it."""
    naive = datetime.combine(day, at)
    before = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)  # the offset before a gap
    after = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)  # the offset after it
    if before <= after:
        return before  # an ordinary time, or a repeated one: its first occurrence
    # Skipped: the gap ends between the two readings; halve to the second.
    low, high = after, before
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0) if high.microsecond else high


def _next_every(step: timedelta, after: datetime, zone: ZoneInfo) -> datetime:
    """The first time of a ``digest_every`` schedule strictly after ``after``, in the route's
    time zone: a step of a day or less counts from each local midnight (``6h``: 00:00,
    06:00, 12:00, 18:00; ``7m``: 00:00, 00:07, … 23:55, then 00:00 again); a whole number of
    days, from local midnight every so many days since 1 January 2000 (``7d``: a midnight
    each week); any other step, from midnight UTC on 1 January 2000. Times of day are wall
    clock times: across a daylight-saving change ``6h`` still gives 06:00, 12:00 and 18:00."""
    seconds = step.total_seconds()
    local = after.astimezone(zone)
    day = local.date()
    if seconds <= 86_400:
        # wall-clock times, so that a daylight-saving change keeps 06:00 at 06:00
        into = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        n = int(into // seconds) + 1
        while True:
            if n * seconds >= 86_400:
                return _first_at(day + timedelta(days=1), time(0, 0), zone)
            wall = datetime.combine(day, time(0, 0)) + timedelta(seconds=n * seconds)
            at = _first_at(day, wall.time(), zone)
            if at > after:  # (a repeated hour read twice, or a skipped one: the next)
                return at
            n += 1
    if seconds % 86_400 == 0:
        days = int(seconds // 86_400)
        since = (day - date(2000, 1, 1)).days
        ahead = days - since % days
        return _first_at(day + timedelta(days=ahead), time(0, 0), zone)
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    n = int((after - epoch).total_seconds() // seconds) + 1
    return epoch + timedelta(seconds=n * seconds)


def next_digest(route: RouteConfig, after: datetime) -> datetime | None:
    """The first digest time of the route strictly after ``after`` (None if it has none):
    the next ``digest_at`` time of day, or the next time of ``digest_every`` (counted from
    local midnight, see :func:`_next_every`), whichever comes first; one that falls in the
    route's quiet hours is when they end."""
    candidates: list[datetime] = []
    if route.digest_at:
        zone = ZoneInfo(route.timezone)
        today = after.astimezone(zone).date()
        for offset in range(0, 3):
            for hm in route.digest_at:
                at = _local(today + timedelta(days=offset), _hm(hm), zone)
                if at > after:
                    candidates.append(at)
            if candidates:
                break
    if route.digest_every:
        candidates.append(_next_every(route.digest_every, after, ZoneInfo(route.timezone)))
    if not candidates:
        return None
    due = min(candidates)
    return quiet_end(route, due) or due


def _quiet_span(route: RouteConfig, at: datetime) -> tuple[datetime, datetime] | None:
    """The quiet period that contains ``at``, as (start, end) instants, or None."""
    if not route.quiet_hours:
        return None
    zone = ZoneInfo(route.timezone)
    start_hm, end_hm = (_hm(x) for x in route.quiet_hours.split("-"))
    day = at.astimezone(zone).date()
    for start_day in (day - timedelta(days=1), day):
        start = _first_at(start_day, start_hm, zone)
        end_day = start_day if end_hm > start_hm else start_day + timedelta(days=1)
        end = _first_at(end_day, end_hm, zone)
        if start <= at < end:
            return start, end
    return None


def in_quiet_hours(route: RouteConfig, at: datetime) -> bool:
    return _quiet_span(route, at) is not None


def quiet_end(route: RouteConfig, at: datetime) -> datetime | None:
    """When the quiet hours containing ``at`` end (None: ``at`` is not in quiet hours)."""
    span = _quiet_span(route, at)
    return span[1] if span else None


def cap_window_end(at: datetime) -> datetime:
    """The end of the clock hour (UTC) containing ``at``: where an hourly cap rolls over."""
    at = at.astimezone(UTC)
    return at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


class Timetable:
    """When each of many keys (sources) is due next, and one timer that starts the due ones.

    A timer and a waiting task per source cost every poll a wake-up of its own: 20,000 feeds
    polled every minute are 333 wake-ups a second, each dearer than the poll's own work. Here
    future due times are rounded up to a grid of ``tick`` seconds and one timer (on the running
    loop's monotonic clock) fires at the next grid point that has something due, calling
    ``start(key)`` for every key due by then, in due order. A key thus starts between its due
    time and one tick after it, never early (a backoff or a server's Retry-After is honoured to
    the second); a key set due now (or in the past) starts at once.

    A key is either waiting here or not (started and not yet set again, or never set):
    ``start`` hands it over, and its owner sets it again when it wants it to come back.
    ``start`` must not raise.
    """

    def __init__(self, start: Callable[[str], object], tick: float = 0.1) -> None:
        if not tick > 0:
            raise ValueError(f"the timetable's tick must be positive, not {tick!r}")
        self._start = start
        self.tick = tick
        self._due: dict[str, float] = {}  # key -> when due (loop time); the truth
        self._heap: list[tuple[float, str]] = []  # (when, key); entries not in _due are stale
        self._timer: asyncio.TimerHandle | None = None
        self._wake_at = math.inf
        self._closed = False

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, key: object) -> bool:
        return key in self._due

    def keys(self) -> list[str]:
        """The keys waiting, in no particular order."""
        return list(self._due)

    def due_in(self, key: str) -> float | None:
        """Seconds until ``key`` is due (negative: overdue), or None when it is not waiting."""
        when = self._due.get(key)
        return None if when is None else when - asyncio.get_running_loop().time()

    def set(self, key: str, delay: float) -> None:
        """Make ``key`` due ``delay`` seconds from now (0 or less: now, so it starts once the
        running callback returns), replacing any time it had."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + max(delay, 0.0)
        self._due[key] = when
        heap = self._heap
        heapq.heappush(heap, (when, key))
        if len(heap) > 2 * len(self._due) + 1024:  # many replaced times: drop the stale ones
            self._heap = heap = sorted((w, k) for k, w in self._due.items())
        self._arm(loop, when)

    def hurry(self, key: str) -> bool:
        """Make a waiting ``key`` due now; False (and nothing done) when it is not waiting."""
        if key not in self._due:
            return False
        self.set(key, 0.0)
        return True

    def discard(self, key: str) -> None:
        """Forget ``key`` (it will not start)."""
        self._due.pop(key, None)

    def close(self) -> None:
        """Stop the timer and forget every key; nothing starts from here on."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._due.clear()
        self._heap.clear()

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        # Due already (a poke, a first poll, a poll that outlasted its interval): at once;
        # else at the next grid point, with whatever else is due by then.
        at = when if when <= loop.time() else math.ceil(when / self.tick) * self.tick
        if at < self._wake_at:
            if self._timer is not None:
                self._timer.cancel()
            self._wake_at = at
            self._timer = loop.call_at(at, self._fire)

    def _fire(self) -> None:
        loop = asyncio.get_running_loop()
        # Everything due by the grid point the timer was set for starts now (the loop may fire
        # a timer a hair before its time, and rounding may put a due time a hair after it).
        limit = max(loop.time(), self._wake_at)
        self._timer = None
        self._wake_at = math.inf
        heap, due = self._heap, self._due
        ready = []
        while heap and heap[0][0] <= limit:
            when, key = heapq.heappop(heap)
            if due.get(key) == when:  # else stale: replaced or discarded
                del due[key]
                ready.append(key)
        while heap and due.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        if heap:
            self._arm(loop, heap[0][0])
        for key in ready:  # after the pops: a key set again from start() waits its turn
            if self._closed:
                return
            self._start(key)
