"""Feeds of one host share its connections (4 at once): a fetch waiting for one of them has its
whole deadline once it has one, and a wait too long is said as such and is not the feed's
failure. A real local server whose slow paths hold the host's connections, on both clients."""

from __future__ import annotations

import asyncio
import contextvars
from datetime import timedelta
from pathlib import Path

import pytest

from tests.fakes.feed_server import FeedServer, Route, rss
from tests.service._harness import feed, watch
from tests.sources._support import LOOPBACK
from watchers.config import parse_config
from watchers.engine import make_fetcher
from watchers.errors import FetchBlockedError, FetchQueuedError
from watchers.sources._http import Fetcher, FetchResult, Timeouts
from watchers.sources.base import ANSWERING
from watchers.store.sqlite import SqliteStore

pytestmark = pytest.mark.timeout(60)


async def hold_the_host(server: FeedServer, fetcher: Fetcher, n: int, delay: float
                        ) -> list[asyncio.Task[FetchResult]]:
    """``n`` fetches of paths that answer after ``delay`` seconds, started (and queued)."""
    tasks = []
    for i in range(n):
        server.set(f"/slow/{i}", Route(body=rss(), delay=delay))
        tasks.append(asyncio.create_task(fetcher.get(server.url(f"/slow/{i}"))))
    await asyncio.sleep(0.2)
    return tasks


@pytest.mark.parametrize("path", ["/ok", "/loop"])
async def test_a_fetch_queued_behind_slow_feeds_of_its_host_has_its_whole_deadline(
        server: FeedServer, client_path: str, path: str) -> None:
    """Queued behind 16 slow fetches (four rounds of 1 s on the host's 4 connections), a fetch
    whose whole deadline is 2 s was failed as "timed out" before it was sent: the deadline
    ran while it waited. A redirect loop queued alike said "timed out", not what it is."""
    server.set("/ok", Route(body=rss(("g1", "Troops move"))))
    server.set("/loop", Route(status=302, location="/loop"))
    timeouts = Timeouts(total=2.0, connect=1.0, read=5.0)
    async with Fetcher(timeouts=timeouts, allow_private=LOOPBACK) as fetcher:
        assert fetcher.client == client_path
        slow = await hold_the_host(server, fetcher, 16, 1.0)
        if path == "/ok":
            result = await fetcher.get(server.url(path))
            assert result.status == 200 and b"Troops move" in result.body
        else:
            with pytest.raises(FetchBlockedError, match="more than 5 redirects"):
                await fetcher.get(server.url(path))
        assert all(r.status == 200 for r in await asyncio.gather(*slow))


async def test_a_fetch_that_waits_too_long_for_a_connection_says_so(
        server: FeedServer, client_path: str) -> None:
    server.set("/ok", Route(body=rss()))
    timeouts = Timeouts(total=5.0, connect=1.0, read=5.0, queue=0.5)
    async with Fetcher(timeouts=timeouts, allow_private=LOOPBACK) as fetcher:
        slow = await hold_the_host(server, fetcher, 4, 3.0)
        with pytest.raises(FetchQueuedError) as caught:
            await fetcher.get(server.url("/ok"))
        assert str(caught.value).startswith(server.url("/ok"))
        assert " waited " in str(caught.value)
        assert "for a connection to 127.0.0.1: its other feeds hold all 4" in str(caught.value)
        assert server.hits("/ok") == []
        # the slow fetches it waited for are not concerned, and the host serves it after
        assert all(r.status == 200 for r in await asyncio.gather(*slow))
        assert (await fetcher.get(server.url("/ok"))).status == 200


async def test_the_wait_for_a_connection_is_the_configs_fetch_queue_wait(
        server: FeedServer, client_path: str) -> None:
    server.set("/ok", Route(body=rss()))
    cfg = parse_config({"fetch": {"queue_wait": "1s", "allow_private": ["127.0.0.1/32"]},
                        "rules": [{"name": "all", "query": "troops"}]})
    async with make_fetcher(cfg) as fetcher:
        slow = await hold_the_host(server, fetcher, 4, 4.0)
        with pytest.raises(FetchQueuedError, match=r" waited 1s for a connection"):
            await fetcher.get(server.url("/ok"))
        # stopped by the config's wait, before the slow fetches freed a connection: none has
        # ended yet (the server's 4 s and the 1 s wait run on one loop, whatever its load)
        assert not any(task.done() for task in slow)
        slow_results = await asyncio.gather(*slow)
        assert all(r.status == 200 for r in slow_results)


async def test_a_feed_that_found_no_connection_free_is_not_failed_or_paused(
        server: FeedServer, client_path: str, tmp_path: Path) -> None:
    """With pause_after = 1, one wait too long for a connection (the host's other feeds held
    them all) paused a feed that answered its last poll and told the team it was failing."""
    server.set("/ok", Route(body=rss(("g1", "Troops move"))))
    timeouts = Timeouts(total=5.0, connect=1.0, read=5.0, queue=0.5)
    async with (Fetcher(timeouts=timeouts, allow_private=LOOPBACK) as fetcher,
                await SqliteStore.open(tmp_path / "nw.db") as store):
        service = watch(store, fetcher=fetcher, pause_after=1,
                        sources=[feed("healthy", server.url("/ok"),
                                      every=timedelta(seconds=60))])
        (report,) = await service.run_once()
        assert report.error is None
        slow = await hold_the_host(server, fetcher, 4, 3.0)
        await service.resume_source("healthy")  # polls it now
        (report,) = await service.run_once()
        assert report.error is not None and "its other feeds hold all 4" in report.error
        state = await store.source_state("healthy")
        assert state is not None and state.failures == 0 and not state.paused
        await asyncio.gather(*slow)
        server.set("/ok", Route(body=rss(("g1", "Troops move"), ("g2", "Troops stay"))))
        await service.resume_source("healthy")
        (report,) = await service.run_once()
        assert report.error is None and report.new == 1


async def test_a_feed_that_answered_its_last_poll_gets_the_hosts_connection_first(
        server: FeedServer, client_path: str) -> None:
    """Fetches of feeds that did not answer their last poll wait behind those of feeds that
    did (the lean client's queue; aiohttp's connector keeps its own, in order)."""
    if client_path != "lean":
        pytest.skip("aiohttp's connector hands out connections in the order asked")
    server.set("/ok", Route(body=rss()))
    timeouts = Timeouts(total=5.0, connect=1.0, read=5.0)
    async with Fetcher(timeouts=timeouts, allow_private=LOOPBACK) as fetcher:
        slow = await hold_the_host(server, fetcher, 4, 1.0)
        failing = contextvars.copy_context()
        failing.run(ANSWERING.set, False)
        late = []
        for i in range(4):
            server.set(f"/late/{i}", Route(body=rss(), delay=1.0))
            late.append(asyncio.create_task(fetcher.get(server.url(f"/late/{i}")),
                                            context=failing))
        await asyncio.sleep(0.1)
        assert (await fetcher.get(server.url("/ok"))).status == 200
        order = [r.path for r in server.requests if not r.path.startswith("/slow/")]
        assert order[0] == "/ok", order
        await asyncio.gather(*slow, *late)
