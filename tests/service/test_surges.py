"""Surges: the statistic on synthetic series (a burst surges, a flat or routinely busy series
does not, a short history falls back to a rolling baseline), and the service posting one surge
alert with its top stories on a real store, then cooling down."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.fakes.sinks import RecordingSink
from tests.service._harness import deliver, folder, rule, watch
from watchers.config import SurgeConfig
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
