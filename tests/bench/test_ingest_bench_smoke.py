"""bench/ingest.py at a small size. Before, its source kept the folder's default cap of 25
alerts a poll, and each run is one poll of every article: 25 outbox rows were written where
hundreds of articles matched, so the figure left most of ingest's alert writing out. Now every
alert is written, and the outbox rows are as many as the articles that match (one route)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from tests.bench._bench import bench_module
from tests.conftest import corpora_or_skip
from watchers.service import WatchService


async def test_every_alert_of_the_measured_articles_is_written(tmp_path: Path) -> None:
    corpora_or_skip()
    ingest = bench_module("ingest")
    got = await ingest.measure_ingest(WatchService, True, 100, 400, 100, tmp_path)
    assert got["stored"] == 400
    with closing(sqlite3.connect(tmp_path / "nw.db")) as conn:
        # The measured articles are the last 400 stored (the 100 warm-up ones went first).
        matched = conn.execute(
            "SELECT count(DISTINCT m.article_id) FROM matches m JOIN articles a "
            "ON a.id = m.article_id WHERE a.rowid > 100").fetchone()[0]
    assert matched > 25  # more than the folder's default cap, or the test shows nothing
    assert got["outbox"] == matched
