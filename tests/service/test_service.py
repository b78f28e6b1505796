"""WatchService + DeliveryService with real sources, a real SQLite file and the console sink."""

from __future__ import annotations

import asyncio
import io
import shutil
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from bot.console import ConsoleSink
from tests.conftest import SEEDS
from tests.fakes.sinks import RecordingSink
from tests.service._harness import deliver, feed, folder, rule, watch
from watchers.delivery import DeliveryService
from watchers.errors import PermanentDeliveryError, SourceError, TransientDeliveryError
from watchers.service import WatchService
from watchers.sources.base import Poll
from watchers.store import SqliteStore

P = ParamSpec("P")
R = TypeVar("R")


def make(store: SqliteStore, path: Path, sink: RecordingSink, **kw: Any
         ) -> tuple[WatchService, DeliveryService]:
    wake = asyncio.Event()
    service = watch(store, sources=[folder("seeds", path)], wake=wake, **kw)
    return service, deliver(store, sink, wake=wake)


async def test_seeds_alert_once_and_a_second_run_alerts_nothing(tmp_path: Path) -> None:
    path = tmp_path / "seeds"
    shutil.copytree(SEEDS, path)
    db = tmp_path / "nw.db"
    sink = RecordingSink()
    async with await SqliteStore.open(db) as store:
        service, delivery = make(store, path, sink)
        reports = await service.run_once()
        assert reports[0].new == 5 and reports[0].error is None
        assert await delivery.drain() == len(sink.alerts) > 0
        troops = {a.article.title for a in sink.alerts if a.route == "alerts"}
        kyiv = [a for a in sink.alerts if a.route == "ops"]
        # 000, 002 and 003 mention troops; 004 mentions soldiers only
        assert len(troops) == 4
        assert {a.article.id for a in kyiv} and all(a.rules[0].name == "kyiv" for a in kyiv)
        assert all(m.hits for a in sink.alerts for m in a.matches)
        first = len(sink.alerts)
    # a new process on the same database: nothing new, nothing re-sent
    sink2 = RecordingSink()
    async with await SqliteStore.open(db) as store:
        service, delivery = make(store, path, sink2)
        await service.run_once()
        await store.requeue_interrupted()
        assert await delivery.drain() == 0
        assert sink2.alerts == [] and first > 0
        assert (await store.alert_counts()) == {"delivered": first}


async def test_a_file_dropped_in_while_running_alerts(tmp_path: Path) -> None:
    path = tmp_path / "seeds"
    path.mkdir()
    sink = RecordingSink()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service, delivery = make(store, path, sink)
        delivery.start()
        await service.start()
        try:
            await asyncio.sleep(0.2)
            assert sink.alerts == []
            (path / "new.txt").write_text("Troops spotted\nThousands of troops near Kharkiv.")
            for _ in range(100):
                if sink.alerts:
                    break
                await asyncio.sleep(0.05)
            assert [a.article.title for a in sink.alerts] == ["Troops spotted"]
        finally:
            await service.aclose()
            await delivery.aclose()


class FlakySource:
    """A source that fails a set number of times, then returns one article."""

    def __init__(self, name: str, fails: int) -> None:
        self.name = name
        self.fails = fails
        self.calls = 0
        self.times: list[float] = []

    async def poll(self, cursor: Mapping[str, str]) -> Poll:
        self.calls += 1
        self.times.append(time.monotonic())
        if self.calls <= self.fails:
            raise SourceError("connection refused")
        from watchers.models import Article
        return Poll([Article(source=self.name, guid="1", title="Troops move", text="troops")])

    async def aclose(self) -> None:
        pass


async def test_failing_source_backs_off_pauses_and_never_stops_the_others(tmp_path: Path) -> None:
    path = tmp_path / "seeds"
    shutil.copytree(SEEDS, path)
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        bad = FlakySource("bad", fails=100)
        service = watch(store, pause_after=3, notices_route="ops",
                        sources=[folder("seeds", path, every=timedelta(seconds=60))])
        await service.add_source(feed("bad", every=timedelta(seconds=60)), bad)
        for _ in range(3):
            reports = {r.source: r for r in await service.run_once()}
        assert reports["bad"].error == "connection refused" and reports["seeds"].error is None
        state = await store.source_state("bad")
        assert state is not None and state.failures == 3 and state.paused
        assert state.next_poll is not None and state.last_error == "connection refused"
        # the notice is an outbox row on the notices route, delivered like an alert
        sink = RecordingSink()
        await deliver(store, sink).drain()
        notices = [text for route, text in sink.notices if route == "ops"]
        assert len(notices) == 1 and "paused after 3 failures" in notices[0]
        assert await store.count_articles() == 5
        bad.fails = 0
        assert await service.resume_source("bad")
        report = {r.source: r for r in await service.run_once()}["bad"]
        assert report.error is None and report.new == 1
        state = await store.source_state("bad")
        assert state is not None and not state.paused and state.failures == 0


class Backlog:
    """A feed of ``count`` dated items on troops (``Troops 0`` first); its polls fail with HTTP
    503 while ``down``."""

    name = "feed"

    def __init__(self, count: int, *, down: bool = False) -> None:
        from datetime import UTC, datetime

        from watchers.models import Article

        self.down = down
        self.items = [Article(source="feed", guid=str(i), title=f"Troops {i}", text="troops",
                              published=datetime(2022, 1, i + 1, tzinfo=UTC))
                      for i in range(count)]

    async def poll(self, cursor: Mapping[str, str]) -> Poll:
        from watchers.errors import SourceError

        if self.down:
            raise SourceError("HTTP 503")
        return Poll(list(self.items))

    async def aclose(self) -> None:
        pass


async def test_feed_baseline_and_backfill(tmp_path: Path) -> None:
    from watchers.models import Article

    source = Backlog(5)
    sink = RecordingSink()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store)
        await service.add_source(feed("feed", backfill=2), source)
        delivery = deliver(store, sink)
        report = (await service.run_once())[0]
        assert report.baseline and report.new == 5 and report.alerts == 2
        await delivery.drain()
        assert [a.article.title for a in sink.alerts] == ["Troops 3", "Troops 4"]
        source.items.append(Article(source="feed", guid="9", title="Troops 9", text="troops"))
        await service.run_once()
        await delivery.drain()
        assert [a.article.title for a in sink.alerts][-1] == "Troops 9"
        assert len(sink.alerts) == 3


async def test_a_feed_down_at_its_first_poll_still_takes_a_baseline(tmp_path: Path) -> None:
    """A new feed whose first poll failed (a 503, a timeout) counted as polled, so its first
    answer was taken for news: its whole backlog posted."""
    source = Backlog(20, down=True)
    sink = RecordingSink()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store)
        await service.add_source(feed("feed", backfill=2), source)
        assert (await service.run_once())[0].error == "HTTP 503"
        source.down = False
        await service.resume_source("feed")
        report = (await service.run_once())[0]
        assert report.error is None and report.baseline
        assert report.new == 20 and report.alerts == 2  # the backfill, not the backlog
        await deliver(store, sink).drain()
        assert [a.article.title for a in sink.alerts] == ["Troops 18", "Troops 19"]


async def test_muted_rule_records_but_does_not_post(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    path = tmp_path / "seeds"
    shutil.copytree(SEEDS, path)
    sink = RecordingSink()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await store.mute("kyiv", datetime.now(UTC) + timedelta(hours=1))
        service, delivery = make(store, path, sink)
        await service.run_once()
        await delivery.drain()
        assert sink.alerts and all(a.route != "ops" for a in sink.alerts)
        counts = await store.alert_counts()
        assert counts.get("suppressed", 0) >= 1
        assert await store.rule_match_counts() == {"kyiv": counts["suppressed"],
                                                   "troops": counts["delivered"]}


async def test_delivery_retries_transient_rejects_invalid_and_holds_paused(tmp_path: Path) -> None:
    path = tmp_path / "seeds"
    shutil.copytree(SEEDS, path)
    notices_sink = RecordingSink()
    alerts_sink = RecordingSink([TransientDeliveryError("429", retry_after=0.01),
                                 PermanentDeliveryError("400 invalid body")])
    ops_sink = RecordingSink([PermanentDeliveryError("403 missing access",
                                                     pause_destination=True)])
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, sources=[folder("seeds", path, every=timedelta(seconds=60))])
        delivery = deliver(store, {"ops": ops_sink, "alerts": alerts_sink,
                                   "notices": notices_sink}, notices_route="notices")
        await service.run_once()
        total = sum((await store.alert_counts()).values())
        for _ in range(20):
            await delivery.drain()
            await asyncio.sleep(0.02)
        counts = await store.alert_counts()
        notices = [text for _, text in notices_sink.notices]
        assert counts["rejected"] == 1
        assert counts["held"] == len([a for a in await store.alerts() if a.route == "ops"])
        assert counts["delivered"] == total - 1 - counts["held"] == len(alerts_sink.alerts)
        assert "ops" in delivery.paused_routes()
        assert len(notices) == 1 and "Destination 'ops' paused" in notices[0]
        # resuming sends what was held
        assert await delivery.resume_route("ops") == counts["held"]
        await delivery.drain()
        assert len(ops_sink.alerts) == counts["held"]


async def test_console_card_shows_rule_title_source_date_snippet_and_link(tmp_path: Path) -> None:
    path = tmp_path / "seeds"
    shutil.copytree(SEEDS, path)
    out = io.StringIO()
    sink = ConsoleSink(out, ansi=False)
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, rules=[rule("donbas", "donbas~")],
                        sources=[folder("seeds", path, every=timedelta(seconds=60))])
        delivery = deliver(store, sink)
        await service.run_once()
        await delivery.drain()
    text = out.getvalue()
    assert text.count("▶ donbas") == 3  # 000 and 002 say Donbass, 003 says Donbas
    assert "[Donbass]" in text and "[Donbas]" in text
    assert "seeds · 2022-01-" in text


async def test_a_paused_source_is_probed_and_a_success_resumes_it(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        flaky = FlakySource("flaky", fails=2)
        service = watch(store, pause_after=2, probe_every=timedelta(milliseconds=200),
                        max_backoff=timedelta(milliseconds=50), notices_route="ops")
        await service.add_source(feed("flaky", every=timedelta(milliseconds=10)), flaky)
        await service.start()
        try:
            for _ in range(200):
                state = await store.source_state("flaky")
                if state is not None and state.last_success is not None:
                    break
                await asyncio.sleep(0.02)
        finally:
            await service.aclose()
        assert state is not None and state.last_success is not None
        assert not state.paused and state.failures == 0
        # two failures (paused after the second), then the probe, which worked
        assert flaky.calls >= 3 and len(flaky.times) == flaky.calls
        assert flaky.times[2] - flaky.times[1] >= 0.15  # the probe waited for probe_every
        sink = RecordingSink()
        await deliver(store, sink).drain()
        assert len(sink.notices) == 1


class BuggySource:
    """A source with a bug: it raises something that is not a SourceError."""

    name = "buggy"

    def __init__(self) -> None:
        self.calls = 0

    async def poll(self, cursor: Mapping[str, str]) -> Poll:
        self.calls += 1
        raise KeyError("guid")

    async def aclose(self) -> None:
        pass


async def test_an_unexpected_exception_counts_as_a_source_failure(tmp_path: Path) -> None:
    path = tmp_path / "seeds"
    shutil.copytree(SEEDS, path)
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, pause_after=2, notices_route="ops",
                        sources=[folder("seeds", path, every=timedelta(seconds=60))])
        buggy = BuggySource()
        await service.add_source(feed("buggy"), buggy)
        for _ in range(2):
            reports = {r.source: r for r in await service.run_once()}
        assert reports["buggy"].error is not None and "KeyError" in reports["buggy"].error
        assert reports["seeds"].error is None  # the others go on
        state = await store.source_state("buggy")
        assert state is not None and state.failures == 2 and state.paused
        assert state.next_poll is not None  # backed off, not retried in a tight loop
        sink = RecordingSink()
        await deliver(store, sink).drain()
        assert [route for route, _ in sink.notices] == ["ops"]


async def test_unreadable_items_are_counted_in_the_source_health(tmp_path: Path) -> None:
    from watchers.models import Article

    class Partial:
        name = "partial"

        async def poll(self, cursor: Mapping[str, str]) -> Poll:
            return Poll([Article(source="partial", guid="1", title="Troops", text="troops")],
                        skipped=("item 2 (guid 'x'): date out of range",))

        async def aclose(self) -> None:
            pass

    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store)
        await service.add_source(feed("partial"), Partial())
        report = (await service.run_once())[0]
        assert report.error is None and report.new == 1 and report.skipped == 1
        await service.run_once()
        state = await store.source_state("partial")
        assert state is not None and state.skipped == 2 and state.failures == 0


async def test_matching_runs_off_the_event_loop(tmp_path: Path) -> None:
    """A poll of many long articles keeps the loop ticking (matching is in the executor)."""
    from concurrent.futures import ThreadPoolExecutor

    from watchers.models import Article

    text = ("Troops and soldiers gathered near the border while talks went on. " * 4000)
    arts = [Article(source="big", guid=str(i), title=f"Long {i}", text=text + str(i))
            for i in range(6)]

    class Big:
        name = "big"

        async def poll(self, cursor: Mapping[str, str]) -> Poll:
            return Poll(arts)

        async def aclose(self) -> None:
            pass

    import threading

    loop_threads: set[str] = set()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cpu") as pool:
        async with await SqliteStore.open(tmp_path / "nw.db") as store:
            service = watch(store, executor=pool)
            await service.add_source(folder("big", tmp_path), Big())

            def recording_thread(fn: Callable[P, R]) -> Callable[P, R]:
                def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                    loop_threads.add(threading.current_thread().name)
                    return fn(*args, **kwargs)
                return wrapper

            # wrapping one instance's bound method is the point of the test
            service._analyse = recording_thread(service._analyse)  # type: ignore[method-assign]
            report = (await service.run_once())[0]
    assert report.new == 6 and report.alerts == 6
    assert loop_threads and all(n.startswith("cpu") for n in loop_threads)


async def test_a_flood_of_items_posts_at_most_the_cap_and_one_summary(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from watchers.models import Article

    items = [Article(source="flood", guid=str(i), title=f"Troops report {i}", text="troops",
                     published=datetime(2022, 1, 1, i // 60, i % 60, tzinfo=UTC))
             for i in range(300)]

    class Flood:
        name = "flood"

        async def poll(self, cursor: Mapping[str, str]) -> Poll:
            return Poll(items)

        async def aclose(self) -> None:
            pass

    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store)
        await service.add_source(folder("flood", tmp_path).model_copy(
            update={"max_alerts_per_poll": 5}), Flood())
        report = (await service.run_once())[0]
        assert report.new == 300
        sink = RecordingSink()
        await deliver(store, sink).drain()
        # the newest five, oldest first, then one summary naming the rest
        assert [a.article.title for a in sink.alerts] == [
            f"Troops report {i}" for i in range(295, 300)]
        (route, summary), = sink.notices
        assert route == "alerts" and "295 more matching article(s)" in summary
        assert "Troops report 0" in summary and "… and" in summary
        assert len(summary) < 2000
        # nothing is lost: every article and match is stored and found
        assert await store.count_articles() == 300
        assert (await store.rule_match_counts())["troops"] == 300
