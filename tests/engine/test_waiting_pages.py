"""Every alert waiting for corroboration is looked at again when its rule's ``min_sources`` is
lowered, however many wait: the engine reads them page by page (here pages of two), through the
real engine and SQLite file."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import watchers.engine as engine_module
from tests.fakes.sinks import RecordingSink
from watchers.config import Config, parse_config
from watchers.engine import open_engine
from watchers.schedule import ManualClock

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
# Five unrelated events, each one story, each reported by one outlet so far.
TITLES = (
    "Troops mass near Kharkiv as talks stall",
    "Flood waters reach Venice museum vaults",
    "Central bank raises rates to curb inflation troops",
    "Wildfire forces evacuation of Canadian mining town",
    "Chess champion resigns title after cheating row",
)


def config(tmp_path: Path, need: int) -> Config:
    (tmp_path / "ap").mkdir(exist_ok=True)
    return parse_config({
        "storage": {"path": "nw.db"},
        "channels": {"alerts": 1},
        "stories": {"window": "48h"},
        "sources": [{"name": "ap", "type": "folder", "path": "ap", "settle": 0}],
        "rules": [{"name": "any", "query": " OR ".join(
            ["kharkiv", "venice", "inflation", "wildfire", "chess"]), "min_sources": need}],
    }, base_dir=tmp_path)


async def test_lowering_min_sources_releases_every_waiting_alert_past_one_page(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "WAITING_PAGE", 2)
    clock = ManualClock(T0)
    sink = RecordingSink()
    async with open_engine(config(tmp_path, 2), default_sink=sink, clock=clock) as engine:
        for i, title in enumerate(TITLES):
            (tmp_path / "ap" / f"{i}.json").write_text(json.dumps({
                "title": title, "text": f"{title}. More to follow.",
                "date": (T0 + timedelta(minutes=i)).isoformat()}))
        await engine.run_once()
        assert await engine.store.alert_counts() == {"waiting": 5}
        assert await engine.store.count_stories() == 5
    clock.set(T0 + timedelta(hours=1))
    async with open_engine(config(tmp_path, 1), default_sink=sink, clock=clock) as engine:
        await engine.run_once()
        assert await engine.store.alert_counts() == {"delivered": 5}
    assert sorted(a.article.title for a in sink.alerts) == sorted(TITLES)
