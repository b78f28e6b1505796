"""Whether this process's clock agrees with the database server's, for the processes that
share a PostgreSQL store (see :mod:`watchers.roles`).

Those processes write times by their own clocks that the others read by theirs: a poll worker's
lease on a source (``lease_until``) and when the source is due next, a delivering process's
retry and digest times. Two machines whose clocks disagree by more than a lease's margin
poll sources twice (a worker behind writes leases that look expired to the others at once; one
ahead takes sources whose leases the others still hold, and after a crash its own sources wait
that much past their lease), and nothing in the rows says so. The processes cannot see each
other, but all of them see the database, so each compares its clock with the server's: at
start and every :data:`CHECK_EVERY` seconds, one ``SELECT clock_timestamp()`` (the best of
:data:`SAMPLES`, half its round trip allowed for), and a clear warning when they differ by more
than :func:`allowed`, said again only when the difference changes materially or after
:data:`REPEAT_AFTER`.

A process is never refused for it: when the database server's clock is the wrong one, every
process reports the same difference while their leases (which compare their clocks with each
other's) work, and refusing would stop them all; a worker polling some sources twice loses
nothing (dedupe keeps each alert single).

The clock compared is the engine's own (``open_engine(clock=…)``), the one leases and
schedules are written by, so a test can run a worker whose clock is off by passing a clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from watchers.errors import StoreError
from watchers.roles import Role
from watchers.schedule import Clock
from watchers.urls import without_credentials

__all__ = [
    "CHECK_EVERY", "MAX_SKEW", "REPEAT_AFTER", "ClockCheck", "Reading", "SkewLog", "allowed",
    "describe",
]

log = logging.getLogger(__name__)

# Seconds between checks: three tiny statements, cheap next to a worker's claims.
CHECK_EVERY = 300.0
# A warning still true is said again after this long (a log read later still shows it).
REPEAT_AFTER = timedelta(hours=1)
# Machines kept by NTP agree within milliseconds: a few seconds apart means their time is
# not kept, and retries, digests and next polls written by one are read off by the others.
MAX_SKEW = timedelta(seconds=5)
# Readings per check; the one of the shortest round trip is kept (the least uncertain).
SAMPLES = 3


class ServerClock(Protocol):
    async def database_clock(self) -> datetime | None: ...


def allowed(role: Role, lease: timedelta) -> timedelta:
    """The difference from the database's clock past which ``role`` is warned: for a poll
    worker a quarter of its lease, at most :data:`MAX_SKEW`. A lease is renewed every third of
    it, so another worker sees it lapse once the clocks are about two thirds of a lease apart;
    a quarter leaves room for a renewal the database is slow to take."""
    return min(lease / 4, MAX_SKEW) if role == "poll" else MAX_SKEW


@dataclass(frozen=True)
class Reading:
    """One comparison: this process's clock halfway through the round trip, the database's."""

    here: datetime
    database: datetime
    round_trip: timedelta

    @property
    def skew(self) -> timedelta:
        """How far this clock is ahead of the database's (negative: behind)."""
        return self.here - self.database

    @property
    def least(self) -> timedelta:
        """The least the clocks may differ by: the statement ran somewhere in the round trip,
        so half of it may be the network's rather than the clocks'."""
        return max(abs(self.skew) - self.round_trip / 2, timedelta(0))


def _span(value: timedelta) -> str:
    s = abs(value.total_seconds())
    if s < 10:
        return f"{s:.1f} s"
    if s < 600:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _at(when: datetime) -> str:
    return f"{when.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def describe(reading: Reading, role: Role, lease: timedelta) -> str:
    """The warning: both times, the difference, what it causes for this role, and the cure."""
    apart = _span(reading.skew)
    ahead = reading.skew > timedelta(0)
    head = (f"this machine's clock is {apart} {'ahead of' if ahead else 'behind'} the database "
            f"server's (here {_at(reading.here)}, on the database {_at(reading.database)})")
    if role == "poll":
        held = _span(lease)
        if ahead:
            what = (f"this poll worker takes sources {apart} before the {held} leases other "
                    "workers hold on them end, so sources may be polled twice; the sources "
                    f"it polls come due {apart} late, and after a crash they wait {apart} past "
                    "their lease")
        else:
            end = ("are over for the other workers as soon as taken" if -reading.skew >= lease
                   else f"end {apart} early for the other workers")
            what = (f"the {held} leases this poll worker takes {end}, which may take its "
                    "sources while it polls them, so sources may be polled twice, and the "
                    f"sources it polls come due {apart} early")
    elif role == "bot":
        what = (f"the mutes set here (/mute) end {apart} {'late' if ahead else 'early'} for "
                "the processes that poll and deliver")
    else:
        what = (f"the retry, digest and quiet-hour times this process keeps are {apart} off "
                "the other processes'")
    return (f"{head}: {what}. Set this machine's clock right (run NTP, e.g. chrony or "
            "systemd-timesyncd); if every newswatch process reports the same difference, the "
            "database server's clock is the one that is off")


@dataclass
class SkewLog:
    """What to say about successive readings: a warning when the clocks first differ by more
    than :func:`allowed`, again only when the difference changes by more than that or after
    :data:`REPEAT_AFTER`, and a note when they agree again."""

    role: Role
    lease: timedelta
    _told: Reading | None = field(default=None, init=False)  # the skew last warned about
    _told_at: float = field(default=0.0, init=False)  # when (monotonic seconds)

    def judge(self, reading: Reading, at: float) -> tuple[int, str] | None:
        """A level and a message for this reading, taken at ``at`` (monotonic seconds), or
        None when there is nothing new to say."""
        limit = allowed(self.role, self.lease)
        told = self._told
        if reading.least <= limit:
            if told is None:
                return None
            self._told = None
            return logging.INFO, (f"this machine's clock agrees with the database server's "
                                  f"again ({_span(reading.skew)} apart)")
        if (told is not None and abs(reading.skew - told.skew) <= limit
                and at - self._told_at < REPEAT_AFTER.total_seconds()):
            return None  # said already, and still about true
        self._told, self._told_at = reading, at
        return logging.WARNING, describe(reading, self.role, self.lease)


@dataclass
class ClockCheck:
    """Compares ``clock`` with the database's at :meth:`start` and every ``every`` seconds
    until :meth:`stop`, and logs what :class:`SkewLog` says of it."""

    store: ServerClock
    clock: Clock
    role: Role
    lease: timedelta
    every: float = CHECK_EVERY
    last: Reading | None = field(default=None, init=False)  # the latest reading
    checks: int = field(default=0, init=False)  # how many checks have read both clocks
    _said: SkewLog = field(init=False)
    # The failure last warned of, and when (monotonic seconds); None while checks succeed.
    _failure: tuple[str, float] | None = field(default=None, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._said = SkewLog(self.role, self.lease)

    async def read(self) -> Reading | None:
        """The clocks compared now (None: the database's clock is this machine's own)."""
        best: Reading | None = None
        for _ in range(SAMPLES):
            started = time.monotonic()
            here = self.clock.now()
            there = await self.store.database_clock()
            took = timedelta(seconds=time.monotonic() - started)
            if there is None:
                return None
            reading = Reading(here=here + took / 2, database=there, round_trip=took)
            if best is None or reading.round_trip < best.round_trip:
                best = reading
        return best

    async def check(self) -> Reading | None:
        """Compare the clocks once and log what is new. A store that does not answer now is
        the outage's to report: this check is skipped. Any other failure (a driver's error
        the store did not translate, a clock giving a time the database's cannot be compared
        with) is warned of once, and again only when it changes or has failed for
        :data:`REPEAT_AFTER`: the check runs on, as the process does."""
        try:
            reading = await self.read()
            if reading is None:
                return None
            said = self._said.judge(reading, time.monotonic())
        except StoreError as exc:
            log.debug("clock check skipped: %s", exc)
            return None
        except Exception as exc:  # told, and the check goes on
            self._failed(exc)
            return None
        if self._failure is not None:
            self._failure = None
            log.info("the clock check works again")
        self.last = reading
        self.checks += 1
        if said is not None:
            log.log(*said)
        return reading

    def _failed(self, exc: Exception) -> None:
        # The type and the first line of the message, with any URL's credentials taken out
        # (a driver's error may quote the database URL it was given).
        detail = str(exc).splitlines()[0] if str(exc) else ""
        what = without_credentials(f"{type(exc).__name__}{': ' if detail else ''}{detail}")
        now = time.monotonic()
        told = self._failure
        if told is not None and told[0] == what and now - told[1] < REPEAT_AFTER.total_seconds():
            log.debug("clock check failed again: %s", what)
            return
        self._failure = (what, now)
        log.warning("cannot compare this machine's clock with the database server's (%s); "
                    "tried again in %s", what, _span(timedelta(seconds=self.every)))

    async def start(self) -> None:
        """Check now, then every ``every`` seconds in a task of its own."""
        if self._task is not None:
            return
        await self.check()
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="newswatch-clock-check")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            await self.check()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
