"""A source failing for days, through a real HTTP server, the real FeedSource and a real SQLite
store: how often it is polled, what the log says and what the team is told. A simulated week
is walked poll by poll: each poll's next one is taken from the state it saved, so the days pass
without waiting them out."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fakes.feed_server import FeedServer, Route, rss
from tests.fakes.sinks import RecordingSink
from tests.service._harness import deliver, feed, watch
from watchers.service import WatchService
from watchers.sources._http import Fetcher
from watchers.store import SqliteStore

WEEK = timedelta(days=7)


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as s:
        yield s


async def _poll_for(service: WatchService, name: str, span: timedelta) -> int:
    """Polls ``name`` as its timetable would over ``span``: each poll at the time its previous
    one saved as its next. The number of polls."""
    polls, elapsed = 0, timedelta(0)
    while elapsed < span:
        await service.poll_source(name)
        polls += 1
        (state,) = [s for s in await service.health() if s.name == name]
        assert state.next_poll is not None
        elapsed += state.next_poll - datetime.now(UTC)
    return polls


def _said(caplog: pytest.LogCaptureFixture, *words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.INFO and all(w in r.getMessage() for w in words)]


async def test_a_feed_down_for_a_week_is_probed_hourly_and_told_once_and_its_return_is_logged(
        server: FeedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="watchers")
    server.set("/feed", Route(body=rss(("1", "Troops cross the river"))))
    sink = RecordingSink()
    async with await SqliteStore.open(tmp_path / "nw.db") as store, \
            Fetcher(allow_private=["127.0.0.1/32"]) as fetcher:
        service = watch(store, fetcher=fetcher, notices_route="ops",
                        sources=[feed("wire", server.url("/feed"), every=timedelta(minutes=5))])
        assert (await service.run_once())[0].error is None  # the baseline

        server.set("/feed", Route(body=b"<h1>Internal Server Error</h1>", status=500,
                                  content_type="text/html"))
        polls = await _poll_for(service, "wire", WEEK)
        failed = _said(caplog, "source wire failed")
        # 10 failures back off to the pause, then one probe an hour (with its jitter)
        assert polls <= 10 + 7 * 24 * 1.25, polls
        assert len(failed) == polls  # one line a poll, so about 24 a day once paused
        await deliver(store, sink).drain()
        assert len([t for r, t in sink.notices if r == "ops" and "paused" in t]) == 1

        server.set("/feed", Route(body=rss(("1", "Troops cross the river"))))
        assert (await service.run_once())[0].error is None
        (state,) = await service.health()
        assert not state.paused and state.failures == 0
        # The log's last word on the source was its failure: its return is said, once.
        back = _said(caplog, "source wire", "answers again")
        assert len(back) == 1 and f"{polls} failures" in back[0], back
        assert (await service.run_once())[0].error is None
        assert len(_said(caplog, "source wire", "answers again")) == 1
        await deliver(store, sink).drain()
        assert len([t for r, t in sink.notices if r == "ops"]) == 1
        print(f"\na week down: {polls} polls, {len(failed)} log lines, 1 notice")
