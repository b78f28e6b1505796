"""A poll worker polls a source no later than its settings allow when it starts, as the single
process does (tests/service/test_scheduling.py): a stored next poll from an interval since
shortened, or from the address a source polled before, is brought forward; a Retry-After or
backoff the publisher asked for is kept. Real poll workers (engines of ``role="poll"``) on a
throwaway PostgreSQL cluster (tests/pg.py), feeds from a local server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fakes.feed_server import Route
from tests.roles._support import TimedFeedServer, config, eventually, feed_route
from watchers.config import Config, parse_config
from watchers.engine import open_engine
from watchers.roles import Role
from watchers.service import PollReport
from watchers.store import PostgresStore, SqliteStore
from watchers.store.base import SourceState

DAY = 24 * 3600


async def _state(url: str, name: str) -> SourceState:
    opened = (await PostgresStore.open(url, readonly=True) if url.startswith("postgresql:")
              else await SqliteStore.open(url, readonly=True))
    async with opened as store:
        state = await store.source_state(name)
    assert state is not None
    return state


def _config(tmp_path: Path, url: str, source: dict[str, object]) -> Config:
    rules = [{"name": "all", "query": "story"}]
    if url.startswith("postgresql:"):
        return config(tmp_path, url, rules=rules, sources=[source])
    return parse_config({"storage": {"path": url}, "fetch": {"allow_private": ["127.0.0.1/32"]},
                         "sources": [source], "rules": rules}, base_dir=tmp_path)


async def _first_worker(tmp_path: Path, url: str, source: dict[str, object], *,
                        role: Role = "poll") -> SourceState:
    """Run newswatch with ``source`` until it has polled it once; its state as saved."""
    reports: list[PollReport] = []
    async with open_engine(_config(tmp_path, url, source), role=role, start=False,
                           on_report=reports.append) as worker:
        await worker.start()
        await eventually(lambda: asyncio.sleep(0, bool(reports)),
                         what="the first worker's poll")
        await worker.stop()
    return await _state(url, str(source["name"]))


@pytest.mark.parametrize("run", ["poll workers", "one process", "one process on sqlite"])
async def test_a_start_with_a_shorter_interval_polls_at_it_not_after_the_old_day(
        tmp_path: Path, pg_database: str, run: str) -> None:
    """The single process always did; a poll worker kept the stored day."""
    role: Role = "poll" if run == "poll workers" else "all"
    url = str(tmp_path / "nw.db") if run.endswith("sqlite") else pg_database
    async with TimedFeedServer() as server:
        server.set("/f", feed_route(("g", "story")))
        source = {"name": "wire", "type": "feed", "url": server.url("/f"), "every": DAY}
        state = await _first_worker(tmp_path, url, source, role=role)
        assert state.next_poll is not None
        assert state.next_poll - datetime.now(UTC) > timedelta(hours=23)  # the old day
        asked = len(server.times["/f"])
        async with open_engine(_config(tmp_path, url, {**source, "every": 1}), role=role,
                               start=False) as worker:
            await worker.start()
            await eventually(lambda: _asked(server, "/f", asked + 2), within=20,
                             what="two polls a second apart")
            await worker.stop()
        state = await _state(url, "wire")
        assert state.next_poll is not None
        assert state.next_poll - datetime.now(UTC) < timedelta(seconds=2)


async def test_a_worker_polls_a_moved_source_at_once_not_when_its_old_address_said(
        tmp_path: Path, pg_database: str) -> None:
    async with TimedFeedServer() as server:
        server.set("/old", feed_route(("g", "story")))
        server.set("/new", feed_route(("h", "story new")))
        source = {"name": "wire", "type": "feed", "url": server.url("/old"), "every": DAY}
        await _first_worker(tmp_path, pg_database, source)
        cfg = _config(tmp_path, pg_database, {**source, "url": server.url("/new")})
        reports: list[PollReport] = []
        async with open_engine(cfg, role="poll", start=False,
                               on_report=reports.append) as worker:
            await worker.start()
            await eventually(lambda: asyncio.sleep(0, bool(reports)), within=20,
                             what="the poll of the new address")
            await worker.stop()
        assert len(server.times["/new"]) == 1
        state = await _state(pg_database, "wire")
        assert state.next_poll is not None  # polled there, and then a day on
        assert state.next_poll - datetime.now(UTC) > timedelta(hours=23)


async def test_a_worker_keeps_the_retry_after_a_publisher_asked_for_with_a_shorter_interval(
        tmp_path: Path, pg_database: str) -> None:
    async with TimedFeedServer() as server:
        server.set("/f", Route(status=429, headers={"Retry-After": "3600"}))
        source = {"name": "wire", "type": "feed", "url": server.url("/f"), "every": 60}
        state = await _first_worker(tmp_path, pg_database, source)
        assert state.failures == 1 and state.next_poll is not None
        cfg = _config(tmp_path, pg_database, {**source, "every": 1})
        async with open_engine(cfg, role="poll", start=False) as worker:
            await worker.start()
            await worker.stop()
        # registered (the start's registration is awaited) and left as the publisher asked
        assert await _state(pg_database, "wire") == state
        assert len(server.times["/f"]) == 1


async def _asked(server: TimedFeedServer, path: str, times: int) -> bool:
    return len(server.times.get(path, [])) >= times


async def test_the_periodic_registration_keeps_a_paused_sources_retry_after(
        tmp_path: Path, pg_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The registration every few minutes judged the next poll again, by a paused source's
    # bound (its probe, an hour): a 24-hour Retry-After was cut to an hour at each one, and the
    # publisher asked twenty times a day. Only a worker's start (new settings) bounds it.
    import watchers.service as service_module
    from tests.roles._support import settings

    monkeypatch.setattr(service_module, "REREGISTER", timedelta(seconds=0.2))
    async with TimedFeedServer() as server:
        server.set("/f", Route(status=429, headers={"Retry-After": str(DAY)}))
        source = {"name": "wire", "type": "feed", "url": server.url("/f"), "every": 60}
        data = settings(pg_database, sources=[source], rules=[{"name": "all", "query": "x"}])
        data["fetch"]["pause_after"] = 1
        cfg = parse_config(data, base_dir=tmp_path)
        reports: list[PollReport] = []
        async with open_engine(cfg, role="poll", start=False,
                               on_report=reports.append) as worker:
            await worker.start()
            await eventually(lambda: asyncio.sleep(0, bool(reports)), what="the first poll")
            await asyncio.sleep(1.5)  # several registrations
            await worker.stop()
        state = await _state(pg_database, "wire")
        assert state.paused and state.next_poll is not None
        assert state.next_poll - datetime.now(UTC) > timedelta(hours=23)
        assert len(server.times["/f"]) == 1
