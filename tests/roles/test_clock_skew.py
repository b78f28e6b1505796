"""Processes sharing a PostgreSQL store whose clocks disagree with the database server's: a
poll worker writes its leases by its own clock, so one whose clock is off polls sources twice
(or holds them too long after a crash); each role process that polls or delivers compares its
clock with the database's at start and while it runs, and warns once, clearly.

A machine whose clock is off is an engine given a clock moved from this machine's
(``open_engine(clock=…)``, the clock its leases and schedules are written by); the database is
a throwaway cluster from tests/pg.py."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.roles._support import OffsetClock, TimedFeedServer, config, eventually, feed_route
from watchers.config import Config, parse_config
from watchers.engine import Engine, open_engine
from watchers.skew import REPEAT_AFTER, Reading, SkewLog
from watchers.store import PostgresStore

TIMES = re.compile(r"here (\S+ \S+) UTC, on the database (\S+ \S+) UTC")


def cfg_for(tmp_path: Path, url: str) -> Config:
    # A folder source never polled here matters not: only the clocks are looked at.
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    return config(tmp_path, url, rules=[{"name": "all", "query": "story"}],
                  sources=[{"name": "in", "type": "folder", "path": str(folder),
                            "every": 3600}])


def skew_records(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING
                 ) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "watchers.skew" and r.levelno == level]


def told_apart(message: str) -> float:
    """Seconds between the two times a warning names (this machine's minus the database's)."""
    found = TIMES.search(message)
    assert found is not None, message
    here, there = (datetime.fromisoformat(t).replace(tzinfo=UTC) for t in found.groups())
    return (here - there).total_seconds()


def clock_check(engine: Engine) -> int:
    check = engine.clock_check
    assert check is not None
    return check.checks


async def test_a_poll_worker_whose_clock_is_behind_the_databases_warns_at_start(
        tmp_path: Path, pg_database: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="watchers.skew")
    async with open_engine(cfg_for(tmp_path, pg_database), role="poll",
                           clock=OffsetClock(timedelta(seconds=-95)),
                           lease=timedelta(seconds=60)):
        (warning,) = skew_records(caplog)
    assert "this machine's clock is 95 s behind the database server's" in warning
    assert abs(told_apart(warning) + 95) < 3  # both times, as each clock read them
    # (more than the lease: over as soon as taken)
    assert "the 60 s leases this poll worker takes are over for the other workers as soon as " \
        "taken" in warning
    assert "polled twice" in warning and "NTP" in warning


async def test_a_poll_worker_ahead_of_the_database_warns_that_it_takes_held_sources(
        tmp_path: Path, pg_database: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="watchers.skew")
    async with open_engine(cfg_for(tmp_path, pg_database), role="poll",
                           clock=OffsetClock(timedelta(seconds=95)),
                           lease=timedelta(seconds=60)):
        (warning,) = skew_records(caplog)
    assert "this machine's clock is 95 s ahead of the database server's" in warning
    assert abs(told_apart(warning) - 95) < 3
    assert "takes sources 95 s before the 60 s leases other workers hold" in warning
    assert "after a crash they wait 95 s past their lease" in warning


async def test_a_deliver_process_whose_clock_is_off_warns_too(
        tmp_path: Path, pg_database: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="watchers.skew")
    async with open_engine(cfg_for(tmp_path, pg_database), role="deliver",
                           clock=OffsetClock(timedelta(seconds=30))):
        (warning,) = skew_records(caplog)
    assert "this machine's clock is 30 s ahead of the database server's" in warning
    assert "retry, digest and quiet-hour times this process keeps are 30 s off" in warning


async def test_a_bot_process_whose_clock_is_off_warns_that_its_mutes_end_off(
        tmp_path: Path, pg_database: str, caplog: pytest.LogCaptureFixture) -> None:
    """A bot process writes when each /mute ends by its clock, which the pollers and
    deliverers read by theirs: one 30 s behind ends every mute 30 s early for them."""
    caplog.set_level(logging.INFO, logger="watchers.skew")
    async with open_engine(cfg_for(tmp_path, pg_database), role="bot",
                           clock=OffsetClock(timedelta(seconds=-30))):
        (warning,) = skew_records(caplog)
    assert "this machine's clock is 30 s behind the database server's" in warning
    assert "the mutes set here (/mute) end 30 s early" in warning


async def test_a_worker_whose_clock_agrees_with_the_databases_says_nothing(
        tmp_path: Path, pg_database: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="watchers.skew")
    async with open_engine(cfg_for(tmp_path, pg_database), role="poll") as engine:
        assert clock_check(engine) == 1  # compared at start
    assert skew_records(caplog) == [] and skew_records(caplog, logging.INFO) == []


async def test_a_short_lease_is_warned_of_a_smaller_difference(
        tmp_path: Path, pg_database: str, caplog: pytest.LogCaptureFixture) -> None:
    """A poll worker is warned past a quarter of its lease (here 1 s of 4 s), a deliver
    process past 5 s: two seconds off warns the one, not the other."""
    caplog.set_level(logging.INFO, logger="watchers.skew")
    behind = OffsetClock(timedelta(seconds=-2))
    cfg = cfg_for(tmp_path, pg_database)
    async with open_engine(cfg, role="deliver", clock=behind) as engine:
        assert clock_check(engine) == 1
    assert skew_records(caplog) == []
    async with open_engine(cfg, role="poll", clock=behind, lease=timedelta(seconds=4)):
        (warning,) = skew_records(caplog)
    assert "2.0 s behind" in warning
    assert "the 4.0 s leases this poll worker takes end 2.0 s early" in warning


async def test_a_difference_that_appears_while_running_is_told_once_until_it_changes(
        tmp_path: Path, pg_database: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="watchers.skew")
    clock = OffsetClock()
    async with open_engine(cfg_for(tmp_path, pg_database), role="poll", clock=clock,
                           start=False) as engine:
        assert engine.clock_check is not None
        engine.clock_check.every = 0.02
        await engine.start()

        async def checked(times: int) -> None:
            start = clock_check(engine)

            async def done() -> bool:
                return clock_check(engine) >= start + times

            await eventually(done, what=f"{times} more clock checks")

        await checked(3)
        assert skew_records(caplog) == []
        clock.offset = timedelta(seconds=-95)  # (the machine's clock stepped back)
        await checked(10)
        (first,) = skew_records(caplog)  # told once, not at every check
        assert "95 s behind" in first
        clock.offset = timedelta(seconds=-300)  # worse: told again
        await checked(10)
        assert len(skew_records(caplog)) == 2
        assert "300 s behind" in skew_records(caplog)[1]
        clock.offset = timedelta(0)  # set right
        await checked(3)
        (agrees,) = skew_records(caplog, logging.INFO)
        assert "agrees with the database server's again" in agrees
        assert len(skew_records(caplog)) == 2


class FaultyClock(OffsetClock):
    """This machine's clock, which a test can break: ``fault`` is raised when it is read, or
    with ``naive`` it gives its time without a zone, which no aware time can be compared
    with. ``reads`` counts the times it was read (each check reads it)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.fault: Exception | None = None
        self.naive = False

    def now(self) -> datetime:
        self.reads += 1
        if self.fault is not None:
            raise self.fault
        now = super().now()
        return now.replace(tzinfo=None) if self.naive else now


async def test_a_clock_check_that_fails_unexpectedly_is_told_once_and_goes_on(
        tmp_path: Path, pg_database: str, caplog: pytest.LogCaptureFixture) -> None:
    """Only the store's own errors were caught: any other (a driver's error the store did
    not translate, a TypeError from a clock value) ended the periodic check in silence, and
    the clocks were never compared again. It is warned of once, with its type and message
    (no password of a URL it quotes), again when it changes, and the checks go on. (A bot
    process: its clock is read by the check alone.)"""
    caplog.set_level(logging.DEBUG, logger="watchers.skew")
    clock = FaultyClock()
    async with open_engine(cfg_for(tmp_path, pg_database), role="bot", clock=clock,
                           start=False) as engine:
        check = engine.clock_check
        assert check is not None
        check.every = 0.02
        await engine.start()

        async def read(times: int) -> None:
            start = clock.reads

            async def done() -> bool:
                return clock.reads >= start + times

            await eventually(done, within=10, what=f"{times} more readings of the clock")

        await read(6)
        assert check.checks >= 2 and skew_records(caplog) == []
        clock.naive = True  # a time without its zone
        await read(30)  # ten checks
        (first,) = skew_records(caplog)
        assert "cannot compare this machine's clock with the database server's (TypeError: " \
            "can't subtract offset-naive and offset-aware datetimes)" in first
        clock.naive, clock.fault = False, OSError(
            "clock read failed for postgresql://nw:hunter2-secret@db.example/news")
        await read(10)
        assert len(skew_records(caplog)) == 2  # another failure: told once more
        second = skew_records(caplog)[1]
        assert "(OSError: clock read failed for postgresql://nw:[redacted]@db.example/news)" \
            in second
        clock.fault = None
        checks = check.checks
        await read(6)
        assert check.checks > checks  # the check still runs
        assert "the clock check works again" in skew_records(caplog, logging.INFO)
        assert len(skew_records(caplog)) == 2
    assert not any("hunter2" in r.getMessage() for r in caplog.records)


async def test_a_poll_workers_leases_are_written_by_its_clock(
        tmp_path: Path, pg_database: str) -> None:
    """The lease the check speaks of is the one the worker writes: by the engine's clock, so a
    worker an hour ahead holds its source until an hour past the real lease."""
    async with TimedFeedServer() as server:
        server.set("/slow", feed_route(("g", "story slow"), delay=3.0))
        cfg = config(tmp_path, pg_database, rules=[{"name": "all", "query": "story"}],
                     sources=[{"name": "slow", "type": "feed", "url": server.url("/slow"),
                               "every": 3600}])
        async with open_engine(cfg, role="poll", clock=OffsetClock(timedelta(hours=1)),
                               lease=timedelta(seconds=60)):
            async def asked() -> bool:
                return bool(server.times.get("/slow"))

            await eventually(asked, what="the worker's request")
            async with await PostgresStore.open(pg_database, readonly=True) as store:
                (until,) = await store._db.fetch(
                    "SELECT lease_until FROM source_state WHERE name = 'slow'")
    ahead = until[0] - datetime.now(UTC)
    assert timedelta(minutes=59) < ahead <= timedelta(hours=1, seconds=60), ahead


async def test_one_process_on_sqlite_compares_no_clocks(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="watchers.skew")
    folder = tmp_path / "in"
    folder.mkdir()
    cfg = parse_config({"storage": {"path": "nw.db"}, "rules": [{"name": "all", "query": "x"}],
                        "sources": [{"name": "in", "type": "folder", "path": str(folder),
                                     "every": 3600}]}, base_dir=tmp_path)
    async with open_engine(cfg, clock=OffsetClock(timedelta(hours=1))) as engine:
        assert engine.clock_check is None
    assert skew_records(caplog) == []


def reading(skew: float) -> Reading:
    there = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    return Reading(here=there + timedelta(seconds=skew), database=there,
                   round_trip=timedelta(milliseconds=2))


def test_a_warning_still_true_is_said_again_after_an_hour_and_not_before() -> None:
    said = SkewLog("poll", timedelta(seconds=60))
    first = said.judge(reading(-95), at=0.0)
    assert first is not None and first[0] == logging.WARNING
    hour = REPEAT_AFTER.total_seconds()
    assert said.judge(reading(-97), at=60.0) is None  # about the same: said already
    assert said.judge(reading(-95), at=hour - 1) is None
    again = said.judge(reading(-95), at=hour + 1)
    assert again is not None and "95 s behind" in again[1]


def test_a_difference_within_the_measurements_uncertainty_is_not_warned_of() -> None:
    """Half the round trip may be the network's: 6 s apart measured over a 4 s round trip
    may be 4 s, within a deliver process's 5 s."""
    said = SkewLog("deliver", timedelta(seconds=60))
    there = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    slow = Reading(here=there + timedelta(seconds=6), database=there,
                   round_trip=timedelta(seconds=4))
    assert said.judge(slow, at=0.0) is None
    assert said.judge(reading(6), at=1.0) is not None
