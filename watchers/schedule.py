"""When a route speaks: digest times, quiet hours and the hourly cap, as pure functions of a
route's settings and an instant, plus the one clock every schedule reads.

Times of day are wall-clock times in the route's IANA time zone, so "08:00" stays 08:00 local
across a daylight-saving change (the UTC instant moves by an hour). A wall-clock time that does
not exist on a day (skipped by a spring-forward) is taken at the same offset as just before the
gap, i.e. shifted forward by the gap; one that exists twice (autumn) is taken the first time.

Every function takes and returns timezone-aware datetimes; results are in UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from watchers.config import RouteConfig

__all__ = [
    "Clock",
    "ManualClock",
    "SystemClock",
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


def next_digest(route: RouteConfig, after: datetime) -> datetime | None:
    """The first digest time of the route strictly after ``after`` (None if it has none):
    the next ``digest_at`` time of day, or the next multiple of ``digest_every`` counted from
    midnight UTC, whichever comes first."""
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
        step = route.digest_every.total_seconds()
        epoch = datetime(2000, 1, 1, tzinfo=UTC)
        n = int((after - epoch).total_seconds() // step) + 1
        candidates.append(epoch + timedelta(seconds=n * step))
    return min(candidates) if candidates else None


def _quiet_span(route: RouteConfig, at: datetime) -> tuple[datetime, datetime] | None:
    """The quiet period that contains ``at``, as (start, end) instants, or None."""
    if not route.quiet_hours:
        return None
    zone = ZoneInfo(route.timezone)
    start_hm, end_hm = (_hm(x) for x in route.quiet_hours.split("-"))
    day = at.astimezone(zone).date()
    for start_day in (day - timedelta(days=1), day):
        start = _local(start_day, start_hm, zone)
        end_day = start_day if end_hm > start_hm else start_day + timedelta(days=1)
        end = _local(end_day, end_hm, zone)
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
