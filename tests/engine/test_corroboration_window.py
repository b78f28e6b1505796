"""Alerts waiting for corroboration (``min_sources``) against the story window, through the
real engine and SQLite file: a wait that outlived the window is recorded uncorroborated before
anything may release it — ``run --once``, a restart after days down, a rule's ``min_sources``
lowered meanwhile (each posted alerts days older than the window) — and a rule whose
``min_sources`` was raised has its waiting alerts wait for the new count."""

from __future__ import annotations

import asyncio
import json
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.fakes.sinks import RecordingSink
from watchers.config import Config, parse_config
from watchers.engine import Engine, open_engine
from watchers.schedule import ManualClock

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
OUTLETS = ("ap", "bbc", "dw")
TITLE = "Russian troops cross the border near Kharkiv"


def config(tmp_path: Path, need: int) -> Config:
    for d in OUTLETS:
        (tmp_path / d).mkdir(exist_ok=True)
    return parse_config({
        "storage": {"path": "nw.db"},
        "channels": {"alerts": 1},
        "stories": {"window": "48h"},
        "sources": [{"name": d, "type": "folder", "path": d, "settle": 0} for d in OUTLETS],
        "rules": [{"name": "troops", "query": "troops", "min_sources": need}],
    }, base_dir=tmp_path)


def report(tmp_path: Path, outlet: str, when: datetime, more: str = "") -> None:
    (tmp_path / outlet / "a.json").write_text(json.dumps({
        "title": TITLE + more, "text": f"{TITLE}. Officials confirmed it{more}.",
        "date": when.isoformat()}))


def engine_with(tmp_path: Path, need: int, clock: ManualClock, sink: RecordingSink, *,
                start: bool = False) -> AbstractAsyncContextManager[Engine]:
    """The engine of :func:`config` with ``min_sources = need``, on ``clock`` into ``sink``."""
    return open_engine(config(tmp_path, need), start=start, default_sink=sink, clock=clock)


async def one_waiting(tmp_path: Path) -> tuple[ManualClock, RecordingSink]:
    """An engine's run that leaves one alert waiting for a second outlet (at T0)."""
    clock = ManualClock(T0)
    sink = RecordingSink()
    async with engine_with(tmp_path, 2, clock, sink) as engine:
        report(tmp_path, "ap", T0)
        await engine.run_once()
        assert await engine.store.alert_counts() == {"waiting": 1}
    return clock, sink


async def test_run_once_ends_a_wait_the_window_outlived(tmp_path: Path) -> None:
    clock, sink = await one_waiting(tmp_path)
    clock.set(T0 + timedelta(hours=72))
    async with engine_with(tmp_path, 2, clock, sink) as engine:
        await engine.run_once()
        assert await engine.store.alert_counts() == {"uncorroborated": 1}
    # lowered a few days later: nothing of it posts
    async with engine_with(tmp_path, 1, clock, sink) as engine:
        await engine.run_once()
        assert await engine.store.alert_counts() == {"uncorroborated": 1}
    assert sink.alerts == []


async def test_a_restart_after_days_down_with_min_sources_lowered_posts_nothing_stale(
        tmp_path: Path) -> None:
    clock, sink = await one_waiting(tmp_path)
    clock.set(T0 + timedelta(hours=72))
    async with engine_with(tmp_path, 1, clock, sink, start=True) as engine:
        for _ in range(100):
            counts = await engine.store.alert_counts()
            if "waiting" not in counts and "pending" not in counts:
                break
            await asyncio.sleep(0.05)
    assert counts == {"uncorroborated": 1} and sink.alerts == []


async def test_min_sources_raised_while_an_alert_waits_has_it_wait_for_more(
        tmp_path: Path) -> None:
    clock, sink = await one_waiting(tmp_path)
    clock.set(T0 + timedelta(hours=1))
    async with engine_with(tmp_path, 3, clock, sink) as engine:
        report(tmp_path, "bbc", T0 + timedelta(minutes=50), " on Monday")
        await engine.run_once()
        assert sink.alerts == [], "posted with 2 outlets although its rule needs 3 now"
        assert await engine.store.alert_counts() == {"waiting": 1}
        report(tmp_path, "dw", T0 + timedelta(minutes=55), ", the ministry said")
        await engine.run_once()
    (posted,) = sink.alerts
    assert posted.story is not None and sorted(posted.story.outlets) == list(OUTLETS)
