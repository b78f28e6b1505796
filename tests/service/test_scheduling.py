"""When sources poll: the timetable on its own, and the WatchService polling real sources on it
with a real SQLite file (due order, a hanging source, sources added and removed while running,
backoff, pokes, shutdown)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.service._harness import feed, watch
from watchers.errors import SourceError
from watchers.schedule import Timetable
from watchers.service import WatchService
from watchers.sources.base import Poll
from watchers.sources.feed import FeedHTTPError
from watchers.store import SqliteStore
from watchers.store.base import SourceState


async def until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait for ``check()`` to hold (fails the test after about ``seconds``)."""
    for _ in range(int(seconds / 0.005)):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"still not true after {seconds:g}s")


class Started:
    """The timetable's ``start``: records each key with the loop time it started at."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.at: dict[str, float] = {}

    def __call__(self, key: str) -> None:
        self.keys.append(key)
        self.at[key] = asyncio.get_running_loop().time()


# ---------------------------------------------------------------- the timetable


async def test_keys_start_in_due_order_and_never_before_they_are_due() -> None:
    started = Started()
    table = Timetable(started, tick=0.02)
    loop = asyncio.get_running_loop()
    due = {}
    for key, delay in (("c", 0.09), ("a", 0.01), ("d", 0.0), ("b", 0.05)):
        table.set(key, delay)
        due[key] = loop.time() + delay
    assert len(table) == 4 and "a" in table
    await until(lambda: len(started.keys) == 4)
    assert started.keys == ["d", "a", "b", "c"]
    assert all(started.at[k] >= due[k] - 1e-6 for k in due)  # late by a tick at most, not early
    assert len(table) == 0 and table.due_in("a") is None  # started: handed over


async def test_a_key_set_again_takes_its_new_time_and_a_discarded_key_never_starts() -> None:
    started = Started()
    table = Timetable(started, tick=0.01)
    table.set("a", 0.02)
    table.set("b", 0.04)
    table.set("gone", 0.0)
    table.set("a", 0.06)  # later than b now
    table.discard("gone")
    await until(lambda: len(started.keys) == 2)
    await asyncio.sleep(0.05)
    assert started.keys == ["b", "a"]


async def test_hurry_makes_a_waiting_key_due_now_and_leaves_others_alone() -> None:
    started = Started()
    table = Timetable(started, tick=0.01)
    table.set("slow", 3600)
    table.set("other", 3600)
    assert table.hurry("slow")
    assert not table.hurry("unknown")  # not waiting: nothing to hurry
    await until(lambda: started.keys == ["slow"])
    due = table.due_in("other")
    assert due is not None and due > 3000
    assert not table.hurry("slow")  # started, no longer waiting
    table.close()


async def test_a_key_set_again_from_start_starts_in_a_later_call_not_in_the_same() -> None:
    table: Timetable
    runs: list[float] = []

    def again(key: str) -> None:
        runs.append(asyncio.get_running_loop().time())
        if len(runs) < 3:
            table.set(key, 0)  # due now: started by the next callback, not recursively here

    table = Timetable(again, tick=0.01)
    table.set("k", 0)
    await until(lambda: len(runs) == 3)
    assert runs[1] > runs[0] and runs[2] > runs[1]


async def test_a_closed_timetable_starts_nothing() -> None:
    started = Started()
    table = Timetable(started, tick=0.01)
    table.set("a", 0.02)
    table.close()
    table.set("b", 0)
    await asyncio.sleep(0.06)
    assert started.keys == [] and len(table) == 0


def test_the_tick_must_be_positive() -> None:
    with pytest.raises(ValueError, match="tick must be positive"):
        Timetable(lambda key: None, tick=0)


# ---------------------------------------------------------------- the service's polling


class Counting:
    """A source that answers "not modified" and records when each poll began; ``gate`` (when
    set) holds every poll until it is set, ``fail`` makes polls raise it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.times: list[float] = []
        self.running = 0
        self.most_running = 0
        self.cancelled = 0
        self.gate: asyncio.Event | None = None
        self.fail: SourceError | None = None

    async def poll(self, cursor: Mapping[str, str]) -> Poll:
        self.times.append(asyncio.get_running_loop().time())
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.fail is not None:
                raise self.fail
            return Poll([], not_modified=True, cursor={"etag": '"1"'})
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1

    async def aclose(self) -> None:
        pass


async def service_with(store: SqliteStore, *sources: tuple[Counting, timedelta],
                       **kw: object) -> WatchService:
    service = watch(store, **kw)  # type: ignore[arg-type]
    for source, every in sources:
        await service.add_source(feed(source.name, every=every), source)
    return service


async def test_sources_poll_in_the_order_their_stored_states_make_them_due(tmp_path: Path
                                                                          ) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        now = datetime.now(UTC)
        order: list[str] = []
        sources = [Counting(n) for n in ("a", "b", "c")]
        for source, delay in zip(sources, (0.2, 0.3, 0.1), strict=True):
            await store.save_source_state(SourceState(
                name=source.name, polls=1, last_success=now,
                next_poll=now + timedelta(seconds=delay)))
        service = await service_with(store, *((s, timedelta(hours=1)) for s in sources),
                                     on_report=lambda r: order.append(r.source))
        await service.start()
        try:
            await until(lambda: len(order) == 3)
        finally:
            await service.aclose()
        assert order == ["c", "a", "b"]
        state = await store.source_state("c")
        assert state is not None and state.polls == 2 and state.next_poll is not None
        assert state.next_poll - datetime.now(UTC) > timedelta(minutes=59)  # every hour


async def test_a_hanging_source_delays_no_other_and_is_never_polled_twice_at_once(
    tmp_path: Path,
) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        hanging, quick = Counting("hanging"), Counting("quick")
        hanging.gate = asyncio.Event()  # never set: its poll waits forever
        service = await service_with(store, (hanging, timedelta(milliseconds=20)),
                                     (quick, timedelta(milliseconds=20)))
        await service.start()
        try:
            await until(lambda: len(quick.times) >= 10)
            assert len(hanging.times) == 1 and hanging.running == 1
        finally:
            await service.aclose()
        assert hanging.cancelled == 1 and hanging.running == 0  # the stop cut its poll short
        assert quick.most_running == 1 and hanging.most_running == 1


async def test_sources_added_and_removed_while_running(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        first = Counting("first")
        service = await service_with(store, (first, timedelta(milliseconds=20)))
        await service.start()
        try:
            await until(lambda: len(first.times) >= 2)
            late = Counting("late")
            await service.add_source(feed("late", every=timedelta(milliseconds=20)), late)
            await until(lambda: len(late.times) >= 3)
            # Removed while a poll of it is under way: that poll is cancelled, no other comes.
            first.gate = asyncio.Event()
            await until(lambda: first.running == 1)
            assert await service.remove_source("first")
            assert first.cancelled == 1
            polls = len(first.times)
            seen = len(late.times)
            await until(lambda: len(late.times) >= seen + 3)
            assert len(first.times) == polls
            assert "first" not in service.source_names()
            assert not await service.remove_source("first")
        finally:
            await service.aclose()


async def test_a_failing_source_waits_out_its_backoff_and_the_servers_retry_after(
    tmp_path: Path,
) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        limited, ok = Counting("limited"), Counting("ok")
        # A second's wait (idle time) against polls every 10 ms: the others' pace is many
        # times the limited one's even on a machine busy enough to slow each poll tenfold.
        limited.fail = FeedHTTPError("HTTP 429", status=429, kind="rate-limited",
                                     retry_after=1.0)
        service = await service_with(store, (limited, timedelta(milliseconds=10)),
                                     (ok, timedelta(milliseconds=10)),
                                     max_backoff=timedelta(milliseconds=10))
        await service.start()
        try:
            await until(lambda: len(limited.times) >= 3, 20)
        finally:
            await service.aclose()
        gaps = [b - a for a, b in zip(limited.times, limited.times[1:], strict=False)]
        assert all(gap >= 1.0 - 1e-3 for gap in gaps)  # never sooner than the server asked
        assert len(ok.times) > 3 * len(limited.times)  # the others kept their pace
        state = await store.source_state("limited")
        assert state is not None and state.failures >= 3 and state.last_error == "HTTP 429"


@pytest.mark.parametrize("retry_after", [1e12, float("inf"), float("nan")])
async def test_a_retry_after_of_decades_waits_a_day_and_keeps_the_error(
        tmp_path: Path, retry_after: float) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        down = Counting("down")
        down.fail = FeedHTTPError("HTTP 503", status=503, kind="unavailable",
                                  retry_after=retry_after)
        service = await service_with(store, (down, timedelta(minutes=10)))
        (report,) = await service.run_once()
        assert report.error == "HTTP 503"
        state = await store.source_state("down")
        assert state is not None and state.next_poll is not None
        assert state.last_error == "HTTP 503" and state.failures == 1
        assert state.next_poll - datetime.now(UTC) <= timedelta(days=1)


async def test_a_poke_polls_a_waiting_source_now_but_not_one_polling_already(tmp_path: Path
                                                                           ) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        idle, busy = Counting("idle"), Counting("busy")
        service = await service_with(store, (idle, timedelta(hours=1)),
                                     (busy, timedelta(hours=1)))
        await service.start()
        try:
            await until(lambda: len(idle.times) == 1 and len(busy.times) == 1)  # the first polls
            busy.gate = asyncio.Event()
            service.poke("busy")
            await until(lambda: busy.running == 1)
            service.poke()  # all: idle polls again; busy is polling right now
            await until(lambda: len(idle.times) == 2)
            busy.gate.set()
            await until(lambda: busy.running == 0)
            await asyncio.sleep(0.05)
            assert len(busy.times) == 2 and len(idle.times) == 2
        finally:
            await service.aclose()


async def test_resuming_a_paused_source_polls_it_at_once(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        broken = Counting("broken")
        broken.fail = SourceError("connection refused")
        service = await service_with(store, (broken, timedelta(milliseconds=10)),
                                     pause_after=2, max_backoff=timedelta(milliseconds=10),
                                     probe_every=timedelta(hours=1))
        await service.start()
        try:
            await until(lambda: len(broken.times) == 2)
            [health] = await service.health()
            assert health.paused and health.failures == 2
            await asyncio.sleep(0.05)
            assert len(broken.times) == 2  # paused: next probe in an hour
            broken.fail = None
            assert await service.resume_source("broken")
            await until(lambda: len(broken.times) == 3)
        finally:
            await service.aclose()
        state = await store.source_state("broken")
        assert state is not None and not state.paused and state.failures == 0


@pytest.mark.parametrize("case", ["a day away", "url mended"])
async def test_a_start_polls_a_source_no_later_than_its_settings_now_allow(
        tmp_path: Path, case: str) -> None:
    """The stored next poll was kept whatever the settings said now: a folder's `every`
    shortened from a day to seconds waited out the old day; a time stamped by a clock that
    ran ahead waited for that clock; a paused feed whose URL was mended waited out its hour
    of pause at the old address. Each is polled by what its settings allow from now."""
    from watchers.service import POLLED, _polled

    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        now = datetime.now(UTC)
        source = Counting("s")
        every = timedelta(milliseconds=200)
        config = feed("s", every=every)
        state = SourceState(name="s", polls=3, last_success=now,
                            cursor={POLLED: _polled(config)},
                            next_poll=now + timedelta(days=1))
        if case == "url mended":
            state = SourceState(name="s", polls=3, failures=5, paused=True,
                                last_error="404 Not Found", last_error_at=now,
                                cursor={POLLED: _polled(feed("s", url="https://example.org/old"))},
                                next_poll=now + timedelta(hours=1))
        await store.save_source_state(state)
        service = watch(store, probe_every=timedelta(hours=1))
        await service.add_source(config, source)
        await service.start()
        try:
            await until(lambda: len(source.times) >= 1)
        finally:
            await service.aclose()


async def test_a_paused_source_at_a_start_waits_its_probe_and_says_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A source paused when newswatch stopped stays paused (its probe an hour on), and the
    start says so: nothing said it, and the team waited for alerts from it."""
    import logging

    from watchers.service import POLLED, _polled

    caplog.set_level(logging.WARNING, logger="watchers")
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        now = datetime.now(UTC)
        source = Counting("s")
        config = feed("s", every=timedelta(milliseconds=50))
        await store.save_source_state(SourceState(
            name="s", polls=3, failures=5, paused=True, last_error="404 Not Found",
            last_error_at=now, cursor={POLLED: _polled(config)},
            next_poll=now + timedelta(minutes=30)))
        service = watch(store, probe_every=timedelta(hours=1))
        await service.add_source(config, source)
        await service.start()
        try:
            await asyncio.sleep(0.3)
        finally:
            await service.aclose()
        assert source.times == []
        assert "source s is paused after 5 failures in a row (last: 404 Not Found)" in (
            caplog.text)


async def test_the_stop_cancels_every_poll_and_nothing_polls_after_it(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        sources = [Counting(f"s{i}") for i in range(5)]
        for source in sources[:3]:
            source.gate = asyncio.Event()  # these three are mid-poll at the stop
        service = await service_with(store, *((s, timedelta(milliseconds=10)) for s in sources))
        await service.start()
        await until(lambda: all(s.times for s in sources) and sum(s.running for s in sources) == 3)
        await service.aclose()
        assert [s.cancelled for s in sources] == [1, 1, 1, 0, 0]
        assert sum(s.running for s in sources) == 0
        counts = [len(s.times) for s in sources]
        await asyncio.sleep(0.1)
        assert [len(s.times) for s in sources] == counts
        left = [t for t in asyncio.all_tasks() if t.get_name().startswith("newswatch-")]
        assert left == []
        await service.aclose()  # twice: nothing more
