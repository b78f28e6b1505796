"""``newswatch run --once`` leaves a failing source alone while its wait runs (a publisher's
Retry-After, the backoff after failures) and says so, naming it and when it is next due; a
source that is only not yet due by its ``every`` is polled at every run. A subprocess, a real
SQLite file, feeds from a local server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.cli.test_cli import EXE
from tests.fakes.feed_server import FeedServer, Route, rss


async def _once(tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    proc = await asyncio.create_subprocess_exec(
        *EXE, "run", "--once", "-c", "nw.toml", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return err.decode()


def _due(err: str, name: str) -> datetime:
    found = re.search(rf"{name} \(next due at (\S+ \S+) UTC\)", err)
    assert found, err
    return datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


@pytest.mark.parametrize("answer", [
    Route(status=429, headers={"Retry-After": "7200"}),  # rate-limited: two hours
    Route(status=503, body=b"down"),  # backoff after one failure: about its hour's every
], ids=["429 Retry-After", "503 backoff"])
async def test_a_second_run_once_inside_the_wait_does_not_ask_the_publisher(
        tmp_path: Path, answer: Route) -> None:
    async with FeedServer() as server:
        server.set("/limited", answer)
        server.set("/ok", Route(body=rss(("g1", "Troops move"))))
        (tmp_path / "nw.toml").write_text(f"""
[storage]
path = "nw.db"
[fetch]
allow_private = ["127.0.0.1/32"]
[[sources]]
name = "limited"
type = "feed"
url = "{server.url('/limited')}"
every = "1h"
[[sources]]
name = "ok"
type = "feed"
url = "{server.url('/ok')}"
every = "1h"
[[rules]]
name = "troops"
query = "troops"
""")
        first = await _once(tmp_path)
        assert "1 source(s) failed: limited" in first
        assert "not polled" not in first
        assert len(server.hits("/limited")) == 1
        second = await _once(tmp_path)
        # not asked again, and the run says so and until when …
        assert len(server.hits("/limited")) == 1
        assert "1 source(s) not polled, waiting as their publisher asked (Retry-After), " \
               "backing off after failures or paused after many: limited (next due at " in second
        due = _due(second, "limited") - datetime.now(UTC)
        if answer.status == 429:
            assert timedelta(hours=1, minutes=58) < due <= timedelta(hours=2)
        else:
            assert timedelta(minutes=45) < due <= timedelta(hours=1, minutes=13)
        assert "failed" not in second
        # … while the source that is only not due by its `every` is polled at every run
        assert len(server.hits("/ok")) == 2
        # once its wait has run out, it is asked again
        with sqlite3.connect(tmp_path / "nw.db") as db:
            db.execute("UPDATE source_state SET next_poll = '2000-01-01T00:00:00.000000Z' "
                       "WHERE name = 'limited'")
        db.close()
        server.set("/limited", Route(body=rss(("g2", "Troops return"))))
        third = await _once(tmp_path)
        assert len(server.hits("/limited")) == 2
        assert "not polled" not in third and "failed" not in third


def _config(tmp_path: Path, url: str, extra: str = "") -> None:
    (tmp_path / "nw.toml").write_text(f"""
[storage]
path = "nw.db"
[fetch]
allow_private = ["127.0.0.1/32"]
{extra}
[[sources]]
name = "wire"
type = "feed"
url = "{url}"
every = "1h"
""")


async def test_a_mended_url_of_a_source_that_never_answered_is_polled_at_once(
        tmp_path: Path) -> None:
    # What a source polls was recorded by an answer only: one that never answered looked
    # unmoved when its URL was mended, and waited out the old address's backoff.
    async with FeedServer() as server:
        server.set("/typo", Route(status=503, body=b"down"))
        server.set("/ok", Route(body=rss(("g1", "Troops move"))))
        _config(tmp_path, server.url("/typo"))
        assert "1 source(s) failed: wire" in await _once(tmp_path)
        _config(tmp_path, server.url("/ok"))
        mended = await _once(tmp_path)
        assert "not polled" not in mended and "failed" not in mended
        assert len(server.hits("/ok")) == 1 and len(server.hits("/typo")) == 1


async def test_a_wait_longer_than_the_settings_allow_ends_when_they_say(tmp_path: Path) -> None:
    # A source paused with a day's probe, the probe then shortened to a minute: --once
    # bounded the wait afresh in each round (now + a minute), so it was never polled.
    async with FeedServer() as server:
        server.set("/down", Route(status=503, body=b"down"))
        settings = "pause_after = 1\nprobe_every = \"{}\""
        _config(tmp_path, server.url("/down"), settings.format("1d"))
        assert "1 source(s) failed: wire" in await _once(tmp_path)
        _config(tmp_path, server.url("/down"), settings.format("1m"))
        waiting = await _once(tmp_path)
        due = _due(waiting, "wire")
        assert due - datetime.now(UTC) <= timedelta(minutes=1)
        assert len(server.hits("/down")) == 1
        # the bounded time is kept: once it has passed, the source is asked
        with sqlite3.connect(tmp_path / "nw.db") as db:
            (stored,) = db.execute(
                "SELECT next_poll FROM source_state WHERE name = 'wire'").fetchone()
        db.close()
        assert abs(datetime.fromisoformat(stored.replace("Z", "+00:00")) - due) < \
            timedelta(seconds=2)
        with sqlite3.connect(tmp_path / "nw.db") as db:
            db.execute("UPDATE source_state SET next_poll = '2000-01-01T00:00:00.000000Z'")
        db.close()
        await _once(tmp_path)
        assert len(server.hits("/down")) == 2
