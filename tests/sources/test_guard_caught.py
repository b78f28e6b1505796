"""The fetcher's last layer against SSRF: a pooled connection is checked again before it carries
a request of another allowlist. A name the resolver let through for a source allowed to reach
127.0.0.1 leaves a connection to 127.0.0.1 in the pool; a source without that allowance must
not be handed it (the resolver is not asked again for a pooled connection)."""

from __future__ import annotations

import re

import pytest

from tests.fakes.feed_server import FeedServer, Route
from tests.sources._support import FAST, LOOPBACK, FakeResolver, Seed, rss_doc
from watchers.errors import FetchBlockedError
from watchers.sources._http import Fetcher


@pytest.mark.usefixtures("client_path")
async def test_a_pooled_connection_is_refused_to_a_fetch_not_allowed_its_address(
        server: FeedServer, seeds: list[Seed]) -> None:
    server.set("/feed", Route(body=rss_doc(seeds[:1])))
    resolver = FakeResolver({"intranet.example": ["127.0.0.1"]})
    url = f"http://intranet.example:{server.port}/feed"
    async with Fetcher(resolver=resolver, timeouts=FAST) as fetcher:
        allowed = await fetcher.get(url, allow_private=LOOPBACK)
        assert allowed.status == 200
        with pytest.raises(FetchBlockedError,
                           match=re.escape("refused connection: 127.0.0.1 is a loopback")):
            await fetcher.get(url)
    assert len(server.hits("/feed")) == 1
