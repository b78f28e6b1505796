"""A source whose URL, path or type changes under its name polls something new: its first poll
there is a baseline, as a new source's is. Only the validators were said to be reset on a URL
change, so a source pointed at another feed posted that feed's whole backlog. Through the real
engine and a real SQLite file, feeds served over HTTP on 127.0.0.1, restarted between configs
as a user editing the file would."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SEEDS
from tests.fakes.feed_server import FeedServer, Route
from tests.fakes.sinks import RecordingSink
from tests.service.test_identity import rss
from watchers.config import Config, parse_config
from watchers.engine import open_engine

NOW = datetime.now(UTC).replace(microsecond=0)


def items(prefix: str, n: int) -> list[tuple[str, str, str, str, datetime]]:
    return [(f"{prefix}-{i}", f"https://{prefix}.example/{i}", f"Troops {prefix} {i}",
             f"troops story {prefix} {i}", NOW - timedelta(hours=n - i)) for i in range(n)]


def config(tmp_path: Path, source: dict[str, Any]) -> Config:
    return parse_config({
        "storage": {"path": "nw.db"}, "channels": {"alerts": 1},
        "fetch": {"allow_private": ["127.0.0.1/32"]},
        "sources": [{"name": "world", "every": "1h", **source}],
        "rules": [{"name": "troops", "query": "troops"}],
    }, base_dir=tmp_path)


async def run_with(tmp_path: Path, source: dict[str, Any], *, fails: bool = False
                   ) -> list[str]:
    """One poll of ``source`` (called "world") by an engine on the same store; the titles it
    alerted."""
    sink = RecordingSink()
    async with open_engine(config(tmp_path, source), start=False, default_sink=sink) as engine:
        (report,) = await engine.run_once()
        assert (report.error is not None) == fails, report.error
        await engine.delivery.drain()
    return [a.article.title for a in sink.alerts]


async def test_a_feed_pointed_at_another_feed_takes_a_baseline_there(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="watchers")
    async with FeedServer() as server:
        server.set("/a", Route(body=rss(items("a", 3))))
        server.set("/b", Route(body=rss(items("b", 20))))
        first = {"type": "feed", "url": server.url("/a")}
        assert await run_with(tmp_path, first) == []  # its baseline
        assert await run_with(tmp_path, first) == []  # nothing new
        moved = {"type": "feed", "url": server.url("/b") + "?token=s3cret"}
        server.set("/b", Route(body=rss(items("b", 20))))
        assert await run_with(tmp_path, moved) == []  # was: the 20 items of /b
        assert "source world now polls feed http" in caplog.text
        assert "is a baseline" in caplog.text and "s3cret" not in caplog.text
        # what /b publishes next alerts as news
        server.set("/b", Route(body=rss([*items("b", 20), *items("new", 1)])))
        assert await run_with(tmp_path, moved) == ["Troops new 0"]
        # and back to /a: a baseline again, though /a was polled before
        server.set("/a", Route(body=rss(items("a", 5))))
        assert await run_with(tmp_path, first) == []
        # the same URL written otherwise (a trailing slash) is no move: what it publishes
        # next alerts (a baseline would have swallowed it)
        server.set("/a/", Route(body=rss([*items("a", 5), *items("later", 1)])))
        same = {"type": "feed", "url": server.url("/a/")}
        assert await run_with(tmp_path, same) == ["Troops later 0"]


async def test_a_folder_made_a_feed_under_its_name_takes_a_baseline(tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    folder = {"type": "folder", "path": "seeds"}
    alerted = await run_with(tmp_path, folder)  # a folder alerts what it finds
    assert alerted
    assert await run_with(tmp_path, folder) == []
    async with FeedServer() as server:
        server.set("/b", Route(body=rss(items("b", 10))))
        assert await run_with(tmp_path, {"type": "feed", "url": server.url("/b")}) == []


async def test_a_source_that_did_not_move_is_not_taken_again(tmp_path: Path) -> None:
    """The mark is kept with the source's cursor from its first poll on, across restarts
    and failed polls; a feed that keeps its URL alerts what it publishes next."""
    async with FeedServer() as server:
        route = server.set("/a", Route(body=rss(items("a", 3))))
        same = {"type": "feed", "url": server.url("/a")}
        assert await run_with(tmp_path, same) == []
        route.body, route.status = b"down", 503
        assert await run_with(tmp_path, same, fails=True) == []
        route.body, route.status = rss([*items("a", 3), *items("next", 1)]), 200
        assert await run_with(tmp_path, same) == ["Troops next 0"]



async def test_a_feed_moved_whose_first_poll_there_fails_still_takes_a_baseline(
        tmp_path: Path) -> None:
    # A failed poll records what it polled (a source that never answered, its URL mended, is
    # due at once): it must not make a move that has not answered yet look done, or the new
    # feed's first answer posts its whole backlog.
    async with FeedServer() as server:
        server.set("/a", Route(body=rss(items("a", 3))))
        first = {"type": "feed", "url": server.url("/a")}
        assert await run_with(tmp_path, first) == []  # its baseline
        moved = {"type": "feed", "url": server.url("/b")}
        server.set("/b", Route(status=503, body=b"down"))
        assert await run_with(tmp_path, moved, fails=True) == []
        server.set("/b", Route(body=rss(items("b", 20))))
        assert await run_with(tmp_path, moved) == []  # a baseline, not the 20 items
