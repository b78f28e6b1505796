"""Surges: the statistic on synthetic series (a burst surges, a flat or routinely busy series
does not, a short history falls back to a rolling baseline), and the service posting one surge
alert with its top stories on a real store, then cooling down."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fakes.sinks import RecordingSink
from tests.service._harness import Fixed, deliver, feed, folder, rule, watch
from watchers.config import SurgeConfig
from watchers.models import Article
from watchers.schedule import ManualClock
from watchers.store import SqliteStore
from watchers.surge import baseline, is_surge, trend

NOW = datetime(2022, 2, 24, 12, 0, tzinfo=UTC)


def series(per_hour: list[int], end: datetime = NOW) -> list[datetime]:
    """Match times: ``per_hour[i]`` matches spread over the i-th hour before ``end``."""
    out = []
    for i, n in enumerate(per_hour):
        start = end - timedelta(hours=i + 1)
        out += [start + timedelta(seconds=3600 * (k + 0.5) / n) for k in range(n)]
    return sorted(out)


def test_a_burst_surges_and_a_flat_series_does_not() -> None:
    rng = random.Random(3)
    flat = [rng.randint(2, 5) for _ in range(24 * 14)]
    surging, count, base = is_surge(series([40, *flat[1:]]), NOW)
    assert surging and count == 40 and base.kind == "same hour"
    assert base.factor(count) > 6
    assert not is_surge(series(flat), NOW)[0]
    assert not is_surge(series([9] + [0] * 300), NOW, min_count=10)[0]  # below the minimum


def test_a_rule_busy_at_the_same_hour_every_day_does_not_surge_then() -> None:
    # 30 matches at this hour every day, 1 at the others: 30 now is usual
    daily = [30 if h % 24 == 0 else 1 for h in range(24 * 14 + 1)]
    assert not is_surge(series(daily), NOW)[0]
    assert is_surge(series([30] + [1] * (24 * 14)), NOW)[0]  # 30 at a quiet hour is a surge


def test_a_short_history_uses_a_rolling_baseline() -> None:
    times = series([25] + [2] * 30)
    base = baseline(times, NOW)
    assert base.kind == "rolling" and base.samples == 24 and base.mean == 2
    assert is_surge(times, NOW)[0]


def test_the_trend_counts_every_match_once_and_marks_the_burst() -> None:
    times = series([40] + [3] * 71)
    t = trend("troops", times, NOW - timedelta(hours=72), NOW)
    assert t.total == len(times) and len(t.points) == 72
    assert [p.surge for p in t.points].count(True) == 1 and t.points[-1].surge


async def test_the_service_posts_one_surge_with_top_stories_then_cools_down(tmp_path: Path
                                                                           ) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    clock = ManualClock(datetime.now(UTC))
    sink = RecordingSink()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, sources=[folder("inbox", inbox).model_copy(
                            update={"settle": timedelta(0)})],
                        rules=[rule("troops", "troops", surge=True)], clock=clock,
                        surge=SurgeConfig(min_count=5, cooldown=timedelta(hours=2)))
        for i in range(3):  # a quiet start: three matches
            (inbox / f"q{i}.txt").write_text(f"Quiet item {i}\nTroops drill, routine {i}.")
        await service.run_once()
        assert await store.alerts(kind="surge") == []
        for i in range(8):  # then a burst in the same hour
            (inbox / f"b{i}.txt").write_text(f"Column {i} crosses border\nTroops cross the "
                                             f"border at point {i}.")
        await service.run_once()
        (surge,) = await store.alerts(kind="surge")
        assert surge.route == "alerts" and surge.text is not None
        assert "troops: 11 matches in the last hour" in surge.text and "usual" in surge.text
        assert surge.text.count("• ") == 3  # the top stories
        for i in range(8):  # more of the burst: cooling down, nothing new
            (inbox / f"c{i}.txt").write_text(f"Later {i}\nTroops everywhere {i}.")
        await service.run_once()
        assert len(await store.alerts(kind="surge")) == 1
        await deliver(store, sink).drain()
        assert [r for r, _ in sink.notices] == ["alerts"]
        await service.aclose()


async def test_a_last_surge_stamped_by_a_clock_that_ran_ahead_holds_no_surge(tmp_path: Path
                                                                             ) -> None:
    """The clock was a day fast when the rule last surged, and was set back: the service took
    the rule for cooling down (a negative time since its last surge) for a day."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    clock = ManualClock(datetime.now(UTC))
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        fast = clock.now() + timedelta(days=1)
        await store.add_surge("troops", "alerts", "a day ahead", fast)
        service = watch(store, sources=[folder("inbox", inbox).model_copy(
                            update={"settle": timedelta(0)})],
                        rules=[rule("troops", "troops", surge=True)], clock=clock,
                        surge=SurgeConfig(min_count=5, cooldown=timedelta(hours=2)))
        for i in range(3):
            (inbox / f"q{i}.txt").write_text(f"Quiet item {i}\nTroops drill, routine {i}.")
        await service.run_once()
        for i in range(8):
            (inbox / f"b{i}.txt").write_text(f"Column {i} crosses border\nTroops cross the "
                                             f"border at point {i}.")
        await service.run_once()
        assert [r.text is not None and r.text.startswith("📈")
                for r in await store.alerts(kind="surge")] == [False, True]
        await service.aclose()


async def test_a_first_polls_backlog_and_a_muted_rule_post_no_surge(tmp_path: Path) -> None:
    """A new feed's first poll brought forty month-old items: recorded as matched now, they
    made a surge ("960× usual") then and a live item's poll surged again. Now a backlog counts
    at its own dates. A muted rule, whose alerts are suppressed, posted its surge all the
    same."""
    now = datetime.now(UTC)
    old = [Article(source="wire", guid=f"g{i}", url=f"https://wire.example/{i}",
                   title=f"Troops item {i} about region {i * 7}", text=f"Troops in {i}.",
                   published=now - timedelta(days=30, hours=i)) for i in range(40)]
    fresh = [Article(source="wire", guid=f"n{i}", url=f"https://wire.example/n{i}",
                     title=f"Troops today {i} at crossing {i * 3}", text=f"Troops {i}.",
                     published=now) for i in range(2)]
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, rules=[rule("troops", "troops", surge=True)],
                        surge=SurgeConfig(min_count=10))
        source = Fixed("wire", old)
        await service.add_source(feed("wire"), source)
        (first,) = await service.run_once()
        assert first.baseline and first.new == 40
        source.items = old + fresh
        (second,) = await service.run_once()
        assert not second.baseline and second.new == 2
        assert await store.alerts(kind="surge") == []
        times = (await store.match_times(["troops"], now - timedelta(days=60)))["troops"]
        assert sum(t < now - timedelta(days=29) for t in times) == 40  # at their own dates
        await service.aclose()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    async with await SqliteStore.open(tmp_path / "muted.db") as store:
        await store.mute("troops", now + timedelta(hours=8))
        service = watch(store, sources=[folder("inbox", inbox)],
                        rules=[rule("troops", "troops", surge=True)],
                        surge=SurgeConfig(min_count=5))
        await service.run_once()  # the folder's first poll: nothing yet
        for i in range(12):
            (inbox / f"b{i}.txt").write_text(f"Column {i} crosses\nTroops cross at {i}.")
        await service.run_once()
        assert {a.state for a in await store.alerts(kind="alert")} == {"suppressed"}
        assert await store.alerts(kind="surge") == []
        await service.aclose()


async def test_undated_history_counts_at_no_time_and_makes_no_surge(tmp_path: Path) -> None:
    """An undated backlog (a feed without dates) or import counted at the time it was read:
    neither posted a surge, but the next live match found all of it in "the last hour" and
    surged ("31 matches in the last hour, 744× usual"), and trends showed the history as a
    spike of that hour. Its matches now count at no time: in no trend, surge or first match,
    while the articles and their matches are stored as before."""
    import json

    from watchers.importer import import_file
    from watchers.rules import Rule, RuleSet

    now = datetime.now(UTC)
    backlog = [Article(source="wire", guid=f"g{i}", url=f"https://wire.example/{i}",
                       title=f"Troops item {i} about region {i * 7}", text=f"Troops in {i}.")
               for i in range(30)]
    live = [Article(source="wire", guid=f"n{i}", url=f"https://wire.example/n{i}",
                    title=f"Troops today {i} at crossing {i * 3}", text=f"Troops {i}.")
            for i in range(2)]
    lines = tmp_path / "undated.jsonl"
    lines.write_text("".join(json.dumps({"id": f"u{i}", "title": f"Troops report {i} of {i*5}",
                                         "text": f"Troops near {i}.", "source": "archive"}) + "\n"
                             for i in range(30)))
    for how in ("backlog", "import"):
        async with await SqliteStore.open(tmp_path / f"{how}.db") as store:
            service = watch(store, rules=[rule("troops", "troops", surge=True)],
                            surge=SurgeConfig(min_count=10))
            source = Fixed("wire", [] if how == "import" else backlog)
            await service.add_source(feed("wire"), source)
            (first,) = await service.run_once()
            assert first.baseline and first.new == (0 if how == "import" else 30)
            if how == "import":
                summary = await import_file(store, lines,
                                            ruleset=RuleSet([Rule("troops", "troops")]))
                assert summary.imported == 30
            assert len(await store.recent(rule="troops", limit=100)) == 30, how  # (/recent)
            source.items = [*source.items, *live]
            (second,) = await service.run_once()
            assert not second.baseline and second.new == 2
            assert await store.alerts(kind="surge") == [], how
            times = (await store.match_times(["troops"], now - timedelta(days=3650)))["troops"]
            assert len(times) == 2, how  # the live matches alone have a time
            first_match = await store.first_match("troops")
            assert first_match is not None and first_match >= now - timedelta(minutes=5), how
            await service.aclose()


def _bulletin(i: int, at: datetime) -> Article:
    return Article(source="wire", guid=f"g{i}", url=f"https://wire.example/{i}",
                   title=f"Troops bulletin number {i} region {i * 7}", text=f"Troops {i}.",
                   published=at)


@pytest.mark.parametrize("catch_up", [True, False], ids=["after downtime", "a real burst"])
async def test_what_a_feed_published_while_down_is_no_surge(tmp_path: Path,
                                                            catch_up: bool) -> None:
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    clock = ManualClock(t0)
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        svc = watch(store, rules=[rule("troops", "troops", surge=True)], clock=clock,
                    surge=SurgeConfig(min_count=10))
        src = Fixed("wire", [])
        await svc.add_source(feed("wire"), src)
        await svc.run_once()  # the baseline (nothing)
        n = 0
        for _ in range(8 * 24):  # eight days of one bulletin an hour, polled as they come
            clock.advance(timedelta(hours=1))
            src.items = [_bulletin(n, clock.now())]
            n += 1
            await svc.run_once()
        assert await store.alerts(kind="surge") == []
        if catch_up:  # down twelve hours, the usual one an hour published meanwhile
            src.items = [_bulletin(n + k, clock.now() + timedelta(hours=k + 1))
                         for k in range(12)]
            clock.advance(timedelta(hours=12, minutes=5))
        else:  # twelve in the last hour: a surge
            clock.advance(timedelta(hours=1))
            src.items = [_bulletin(n + k, clock.now() - timedelta(minutes=50 - 4 * k))
                         for k in range(12)]
        await svc.run_once()
        surges = await store.alerts(kind="surge")
        await svc.aclose()
        assert (surges == []) is catch_up


async def test_two_sources_polled_at_once_post_one_surge_for_one_rule(tmp_path: Path) -> None:
    """Both sources' polls (run at once) find the rule surging; the cooldown is taken where
    the surge is written, so the second poll posts nothing (it posted one each before)."""
    inboxes = [tmp_path / "a", tmp_path / "b"]
    for d in inboxes:
        d.mkdir()
    clock = ManualClock(datetime.now(UTC))
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, sources=[folder(d.name, d) for d in inboxes],
                        rules=[rule("troops", "troops", surge=True)], clock=clock,
                        surge=SurgeConfig(min_count=5, cooldown=timedelta(hours=2)))
        for d in inboxes:
            for i in range(2):
                (d / f"q{i}.txt").write_text(f"Quiet {d.name} {i}\nTroops drill, {d.name} {i}.")
        await service.run_once()
        for d in inboxes:
            for i in range(8):
                (d / f"b{i}.txt").write_text(f"Column {d.name}-{i} crosses the border\n"
                                             f"Troops cross at point {d.name}-{i}.")
        reports = await service.run_once()
        assert sorted(r.new for r in reports) == [8, 8]
        assert len(await store.alerts(kind="surge")) == 1
        await service.aclose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_surge_of_a_rule_muted_while_it_waited_is_not_posted(
        tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    """A surge written while its route's sends failed, its rule muted before they came back:
    the rule's alerts were refused ("its rule was muted before it was sent") and its surge
    posted all the same (a surge row held no rule to check). It is refused as they are; a
    surge of a rule still running goes out."""
    from tests.service._harness import deliver as delivery_of
    from watchers.errors import TransientDeliveryError
    from watchers.store import PostgresStore

    class Down(RecordingSink):
        down = True

        async def notice(self, route: str, text: str, *, nonce: str | None = None,
                         maybe_sent: bool = False) -> str | None:
            if self.down:
                raise TransientDeliveryError("503 from Discord")
            return await super().notice(route, text, nonce=nonce, maybe_sent=maybe_sent)

    now = datetime.now(UTC)
    sink = Down()
    store: SqliteStore | PostgresStore
    if backend == "sqlite":
        store = await SqliteStore.open(tmp_path / "nw.db")
    else:
        store = await PostgresStore.open(request.getfixturevalue("pg_database"))
    async with store:
        troops, floods = rule("troops", "troops", surge=True), rule("floods", "floods")
        delivery = delivery_of(store, sink)
        for r in (troops, floods):
            assert await store.add_surge(r.key, "alerts", f"Surge — {r.name}: 42 matches", now,
                                         not_since=now - timedelta(hours=2), model=r)
        await delivery.drain()  # Discord down: both wait for their retry
        assert sink.notices == []
        await store.mute("troops", now + timedelta(hours=1))
        sink.down = False
        await asyncio.sleep(0.2)  # the route's backoff (the harness's is a few ms)
        await delivery.drain()
        assert [text for _, text in sink.notices] == ["Surge — floods: 42 matches"]
        states = {row.text: (row.state, row.reason)
                  for row in await store.alerts(kind="surge")}
        assert states["Surge — troops: 42 matches"] == (
            "rejected", "its rule was muted before it was sent")


def test_a_history_too_short_for_one_same_hour_day_falls_back_to_the_rolling_baseline() -> None:
    """With ``[surge] days = 2`` a rule first matched 24.5 hours ago has a long history (a
    day, half of two) and no same hour a whole day back: the baseline had no sample, and
    the surge said "the same hour over the last 0 days"."""
    times = sorted([NOW - timedelta(hours=24, minutes=30), *series([12])])
    base = baseline(times, NOW, days=2)
    assert base.kind == "rolling" and base.samples == 24
    surging, count, _ = is_surge(times, NOW, days=2, min_count=10)
    assert surging and count == 12
