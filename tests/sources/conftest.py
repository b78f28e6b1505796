"""Fixtures for the feed side: seeds, a local feed server, canary and tarpit listeners, and a
fetcher with test-sized timeouts.

``client_path`` runs a test once on each HTTP client the fetcher can use (the lean httptools
client and aiohttp); the ``fetcher`` fixture takes it, so every test on that fixture runs on both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.feed_server import Canary, FeedServer, Tarpit
from tests.sources._support import FAST, Seed, load_seeds
from watchers.sources._http import Fetcher


@pytest.fixture(scope="session")
def seeds() -> list[Seed]:
    found = load_seeds()
    assert found, "no seeds found"
    return found


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as s:
        yield s


@pytest.fixture
async def canary() -> AsyncIterator[Canary]:
    async with Canary() as c:
        yield c


@pytest.fixture
async def tarpit() -> AsyncIterator[Tarpit]:
    async with Tarpit() as t:
        yield t


@pytest.fixture(params=["lean", "aiohttp"])
def client_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which client fetchers built during the test use (chosen when a Fetcher is built)."""
    path = str(request.param)
    if path == "lean":
        pytest.importorskip("httptools", reason="the lean client needs httptools")
        monkeypatch.delenv("NEWSWATCH_PURE", raising=False)
    else:
        monkeypatch.setenv("NEWSWATCH_PURE", "1")
    return path


@pytest.fixture
async def fetcher(client_path: str) -> AsyncIterator[Fetcher]:
    """A fetcher with small timeouts and no allowlist: each test passes the one it needs."""
    async with Fetcher(timeouts=FAST) as f:
        assert f.client == client_path
        yield f
