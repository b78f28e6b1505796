"""Fixtures for the feed side: seeds, a local feed server, canary and tarpit listeners, and a
fetcher with test-sized timeouts."""

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


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    """A fetcher with small timeouts and no allowlist: each test passes the one it needs."""
    async with Fetcher(timeouts=FAST) as f:
        yield f
