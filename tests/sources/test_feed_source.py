"""FeedSource against a real local HTTP server: formats, conditional GET, statuses, timeouts."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import pytest

from tests.fakes.feed_server import FeedServer, Route
from tests.sources._support import FAST, LOOPBACK, Seed, atom_doc, json_doc, rss_doc
from watchers.errors import FetchBlockedError, SourceError
from watchers.sources._http import Fetcher
from watchers.sources.base import Source
from watchers.sources.feed import (
    MAX_RETRY_AFTER,
    FeedFormatError,
    FeedHTTPError,
    FeedSource,
    FetchTimeoutError,
    parse_retry_after,
)

LAST_MODIFIED = "Mon, 24 Jan 2022 12:00:00 GMT"


def source(server: FeedServer, fetcher: Fetcher, path: str = "/feed") -> FeedSource:
    return FeedSource("test", server.url(path), fetcher=fetcher, allow_private=LOOPBACK)


@pytest.mark.parametrize(
    ("build", "content_type", "link_prefix"),
    [
        (rss_doc, "application/rss+xml", "/articles/"),
        (atom_doc, "application/atom+xml", "/atom/articles/"),
        (json_doc, "application/feed+json", "/json/"),
    ],
    ids=["rss", "atom", "jsonfeed"],
)
async def test_each_format_yields_the_seed_articles(
    server: FeedServer,
    fetcher: Fetcher,
    seeds: list[Seed],
    build: object,
    content_type: str,
    link_prefix: str,
) -> None:
    assert callable(build)
    server.set("/feed", Route(body=build(seeds), content_type=content_type))
    feed = source(server, fetcher)
    assert isinstance(feed, Source)
    poll = await feed.poll({})
    assert not poll.not_modified
    assert len(poll.articles) == len(seeds)
    for article, seed in zip(poll.articles, seeds, strict=True):
        assert article.source == "test"
        assert article.title == seed.title
        # The text survives markup and escaping word for word.
        assert article.text.split() == seed.text.split()
        assert article.url == server.url(link_prefix + seed.slug)
        assert article.guid is not None and seed.slug in article.guid
        assert article.published == seed.published
        assert article.published is None or article.published.tzinfo is not None
    assert server.hits("/feed")[0].headers["User-Agent"].startswith("newswatch/0.1")


async def test_etag_gives_304_and_a_changed_etag_gives_new_items(
    server: FeedServer, fetcher: Fetcher, seeds: list[Seed]
) -> None:
    route = server.set("/feed", Route(body=rss_doc(seeds[:2]), etag='"v1"'))
    feed = source(server, fetcher)
    first = await feed.poll({})
    url = server.url("/feed")
    assert len(first.articles) == 2 and first.cursor == {"etag": '"v1"', "url": url}

    second = await feed.poll(first.cursor)
    assert second.not_modified and second.articles == []
    assert second.cursor == {"etag": '"v1"', "url": url}
    assert server.hits("/feed")[-1].headers["If-None-Match"] == '"v1"'

    route.body, route.etag = rss_doc(seeds), '"v2"'
    third = await feed.poll(second.cursor)
    assert not third.not_modified
    assert len(third.articles) == len(seeds)
    assert third.cursor == {"etag": '"v2"', "url": url}


@pytest.mark.parametrize("keep", [0.4, 0.7, 0.95])
async def test_a_feed_cut_short_keeps_no_validators_and_is_read_whole_next_time(
    server: FeedServer, fetcher: Fetcher, seeds: list[Seed], keep: float
) -> None:
    """A response cut off mid-document (its server sent what it had, with a length to match)
    was read as far as it went, and its ETag kept: the next poll was told "not modified", and
    the items after the cut were never read until the feed changed again."""
    whole = rss_doc(seeds)
    route = server.set("/feed", Route(body=whole[: int(len(whole) * keep)], etag='"v1"',
                                      last_modified=LAST_MODIFIED))
    feed = source(server, fetcher)
    first = await feed.poll({})
    # (Cut in its closing tags, the last one holds every item: read again all the same.)
    if keep < 0.9:
        assert len(first.articles) < len(seeds)
    assert first.cursor == {}
    assert any("document ends early" in s and "reads the feed whole" in s
               for s in first.skipped), first.skipped

    route.body = whole
    second = await feed.poll(first.cursor)
    hit = server.hits("/feed")[-1].headers
    assert "If-None-Match" not in hit and "If-Modified-Since" not in hit
    assert not second.not_modified and len(second.articles) == len(seeds)
    assert second.skipped == ()
    assert second.cursor == {"etag": '"v1"', "last_modified": LAST_MODIFIED,
                             "url": server.url("/feed")}


@pytest.mark.parametrize("doc", [rss_doc, atom_doc])
async def test_a_feed_cut_inside_an_item_gives_the_items_before_it_and_not_its_title(
    server: FeedServer, fetcher: Fetcher, seeds: list[Seed], doc: Any
) -> None:
    """Cut just after an item's title, the feed gave the title alone as an item (no guid,
    link, date or text): it matched nothing stored, so an item seen long ago alerted again,
    and a new one alerted twice (its fragment, then the whole at the next poll)."""
    whole = doc(seeds)
    route = server.set("/feed", Route(body=whole))
    feed = source(server, fetcher)
    everything = [(a.guid, a.url, a.title, a.text) for a in (await feed.poll({})).articles]
    assert len(everything) == len(seeds) >= 3
    starts = [i for i in range(len(whole)) if whole.startswith((b"<item>", b"<entry>"), i)]
    for k, start in enumerate(starts):
        route.body = whole[: whole.index(b"</title>", start) + len(b"</title>")]
        if k == 0:
            with pytest.raises(SourceError, match="no item could be read"):
                await feed.poll({})
            continue
        cut = await feed.poll({})
        assert [(a.guid, a.url, a.title, a.text) for a in cut.articles] == everything[:k]
        assert any("document ends early" in s for s in cut.skipped)


def test_a_feed_cut_after_its_last_item_beside_an_empty_one_keeps_every_whole_item() -> None:
    """An empty <item/> (or <entry/>) has no end tag: counted as an item left open, the last
    whole item of a feed cut in its closing tags was dropped at every poll."""
    from watchers.sources._feedparse import parse_feed

    items = b"".join(b'<item><guid isPermaLink="false">g%d</guid><title>t%d</title></item>'
                     % (i, i) for i in range(3))
    for empty in (b"<item/>", b"<item />", b'<item about="x"/>'):
        doc = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>' + empty
               + items + b"</channel></rss>")
        cut = doc[: doc.index(b"</channel>") + 4]
        got = parse_feed(cut, url="https://ex.org/feed", content_type=None)
        assert got.cut_short is not None
        assert [e.guid for e in got.entries] == ["g0", "g1", "g2"], empty


async def test_an_ill_formed_feed_that_is_whole_keeps_its_validators(
    server: FeedServer, fetcher: Fetcher, seeds: list[Seed]
) -> None:
    """Feeds ill-formed in the middle (an undefined entity) are common and whole: they keep
    conditional GET."""
    body = rss_doc(seeds).replace(b"<title>", b"<title>&nbsp;", 1)
    server.set("/feed", Route(body=body, etag='"v1"'))
    first = await source(server, fetcher).poll({})
    assert len(first.articles) == len(seeds)
    assert first.cursor == {"etag": '"v1"', "url": server.url("/feed")}
    assert first.skipped == ()


async def test_last_modified_gives_304(
    server: FeedServer, fetcher: Fetcher, seeds: list[Seed]
) -> None:
    server.set("/feed", Route(body=rss_doc(seeds), last_modified=LAST_MODIFIED))
    feed = source(server, fetcher)
    first = await feed.poll({})
    assert first.cursor == {"last_modified": LAST_MODIFIED, "url": server.url("/feed")}
    second = await feed.poll(first.cursor)
    assert second.not_modified
    assert server.hits("/feed")[-1].headers["If-Modified-Since"] == LAST_MODIFIED
    # a cursor kept from before the URL was stored with it still counts as this URL's
    third = await feed.poll({"last_modified": LAST_MODIFIED})
    assert third.not_modified


async def test_validators_of_the_old_url_are_not_sent_to_a_new_one(
    server: FeedServer, fetcher: Fetcher, seeds: list[Seed]
) -> None:
    """A source whose URL was changed sent the old feed's Last-Modified to the new one, which
    answered 304: its current items were never fetched."""
    server.set("/old", Route(body=rss_doc(seeds[:1]), last_modified=LAST_MODIFIED, etag='"o"'))
    server.set("/new", Route(body=rss_doc(seeds), last_modified=LAST_MODIFIED, etag='"o"'))
    old = FeedSource("myfeed", server.url("/old"), fetcher=fetcher, allow_private=LOOPBACK)
    first = await old.poll({})
    new = FeedSource("myfeed", server.url("/new"), fetcher=fetcher, allow_private=LOOPBACK)
    fresh = await new.poll(first.cursor)
    assert not fresh.not_modified and len(fresh.articles) == len(seeds)
    hit = server.hits("/new")[-1].headers
    assert "If-Modified-Since" not in hit and "If-None-Match" not in hit
    assert fresh.cursor["url"] == server.url("/new")


async def test_gzip_and_deflate_bodies_are_decoded(
    server: FeedServer, fetcher: Fetcher, seeds: list[Seed]
) -> None:
    server.set("/gz", Route(body=rss_doc(seeds), encoding="gzip", chunked=True))
    server.set("/df", Route(body=atom_doc(seeds), encoding="deflate"))
    for path in ("/gz", "/df"):
        poll = await source(server, fetcher, path).poll({})
        assert len(poll.articles) == len(seeds)
    assert "gzip" in server.hits("/gz")[0].headers["Accept-Encoding"]


async def test_redirects_are_followed_and_links_resolve_against_the_final_url(
    server: FeedServer, fetcher: Fetcher, seeds: list[Seed]
) -> None:
    server.set("/old", Route(status=301, location="/moved/feed"))
    server.set("/moved/feed", Route(body=rss_doc(seeds[:1])))
    poll = await source(server, fetcher, "/old").poll({})
    assert poll.articles[0].url == server.url(f"/articles/{seeds[0].slug}")


async def test_a_redirect_loop_stops(server: FeedServer, fetcher: Fetcher) -> None:
    server.set("/loop", Route(status=302, location="/loop"))
    with pytest.raises(FetchBlockedError, match="more than 5 redirects"):
        await source(server, fetcher, "/loop").poll({})
    assert len(server.hits("/loop")) == 6


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (404, "not-found"),
        (410, "gone"),
        (403, "client-error"),
        (500, "server-error"),
        (502, "server-error"),
        (503, "server-error"),
    ],
)
async def test_error_statuses_raise_with_a_kind(
    server: FeedServer, fetcher: Fetcher, status: int, kind: str
) -> None:
    server.set("/feed", Route(status=status, body=b"<html>secret internals</html>"))
    with pytest.raises(FeedHTTPError) as info:
        await source(server, fetcher).poll({})
    assert info.value.status == status and info.value.kind == kind
    assert info.value.retry_after is None
    assert str(status) in str(info.value)
    assert "secret" not in str(info.value)  # the body is never echoed


async def test_429_exposes_retry_after_seconds(server: FeedServer, fetcher: Fetcher) -> None:
    server.set("/feed", Route(status=429, headers={"Retry-After": "120"}))
    with pytest.raises(FeedHTTPError) as info:
        await source(server, fetcher).poll({})
    assert info.value.kind == "rate-limited"
    assert info.value.retry_after == 120.0
    assert "retry after 120s" in str(info.value)


async def test_503_with_an_http_date_retry_after(server: FeedServer, fetcher: Fetcher) -> None:
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    server.set("/feed", Route(status=503, headers={"Retry-After": when}))
    with pytest.raises(FeedHTTPError) as info:
        await source(server, fetcher).poll({})
    assert info.value.retry_after is not None and 50 <= info.value.retry_after <= 61


def test_parse_retry_after_edge_cases() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after(" 30 ") == 30.0
    assert parse_retry_after("Mon, 24 Jan 2022 12:00:00 GMT") == 0.0  # in the past


@pytest.mark.parametrize("value", ["Fri, 31 Dec 2100 23:59:59 GMT", "2000000000", "999999999999",
                                   "9" * 5000, "86401"])
def test_a_retry_after_past_a_day_waits_a_day(value: str) -> None:
    """A server asking for decades (or for a number too large to convert) got it: the source
    was silently never polled again, or the poll failed on an overflow instead of its 503."""
    assert parse_retry_after(value) == MAX_RETRY_AFTER == 86400.0


@pytest.mark.parametrize("value", ["\u00b2", "1\u00b2", "-5", "1.5e9", "Fri, 31 Dec 99999 GMT"])
def test_an_unreadable_retry_after_is_ignored(value: str) -> None:
    assert parse_retry_after(value) is None


async def test_html_200_is_not_a_feed(server: FeedServer, fetcher: Fetcher) -> None:
    page = b"<!DOCTYPE html><html><head><title>Blog</title></head><body><p>hi</p></body></html>"
    server.set("/feed", Route(body=page, content_type="text/html"))
    with pytest.raises(FeedFormatError, match="not a feed: looks like HTML") as info:
        await source(server, fetcher).poll({})
    assert info.value.kind == "html"


@pytest.mark.parametrize("body", [b"", b"  \n "], ids=["empty", "whitespace"])
async def test_empty_200_is_an_error(server: FeedServer, fetcher: Fetcher, body: bytes) -> None:
    server.set("/feed", Route(body=body))
    with pytest.raises(FeedFormatError, match="empty") as info:
        await source(server, fetcher).poll({})
    assert info.value.kind == "empty"


async def test_a_broken_feed_still_yields_what_it_can(
    server: FeedServer, fetcher: Fetcher, seeds: list[Seed]
) -> None:
    # Cut off mid-document: the loose parser keeps the complete items.
    whole = rss_doc(seeds)
    server.set("/feed", Route(body=whole[: len(whole) * 2 // 3]))
    poll = await source(server, fetcher).poll({})
    assert 1 <= len(poll.articles) < len(seeds)
    assert poll.articles[0].title == seeds[0].title


async def test_garbage_is_not_a_feed(server: FeedServer, fetcher: Fetcher) -> None:
    server.set("/feed", Route(body=b"\x00\x01binary\xff\xfe junk", content_type=None))
    with pytest.raises(FeedFormatError) as info:
        await source(server, fetcher).poll({})
    assert info.value.kind == "not-a-feed"


async def test_a_slow_server_times_out(server: FeedServer, fetcher: Fetcher) -> None:
    # The server would answer after a minute (idle, not busy); the fetcher's timeouts are 2 s
    # at most.
    server.set("/feed", Route(body=b"<rss/>", delay=60))
    started = time.monotonic()
    with pytest.raises(FetchTimeoutError, match="timed out"):
        await source(server, fetcher).poll({})
    assert time.monotonic() - started < 20  # given up long before the server's 60 s


async def test_connection_refused_is_a_source_error(fetcher: Fetcher) -> None:
    # Port 9 (discard) on loopback: nothing listens there in the test environment.
    feed = FeedSource("x", "http://127.0.0.1:9/feed", fetcher=fetcher, allow_private=LOOPBACK)
    with pytest.raises(SourceError, match="could not connect"):
        await feed.poll({})


async def test_a_source_without_a_fetcher_owns_and_closes_one(
    server: FeedServer, seeds: list[Seed]
) -> None:
    server.set("/feed", Route(body=json_doc(seeds)))
    feed = FeedSource("own", server.url("/feed"), allow_private=LOOPBACK)
    try:
        assert len((await feed.poll({})).articles) == len(seeds)
    finally:
        await feed.aclose()
    with pytest.raises(SourceError, match="closed"):
        await feed.poll({})


def test_a_refused_url_fails_on_construction() -> None:
    with pytest.raises(FetchBlockedError):
        FeedSource("x", "file:///etc/passwd")
    with pytest.raises(FetchBlockedError):
        FeedSource("x", "http://127.0.0.1/feed")


async def test_parsing_runs_off_the_event_loop(
    server: FeedServer, fetcher: Fetcher, seeds: list[Seed]
) -> None:
    big = (seeds * 100)[:500]
    server.set("/big", Route(body=rss_doc(big)))
    feed = source(server, fetcher, "/big")
    done = asyncio.Event()
    gaps: list[float] = []  # between the loop's ticks

    async def ticker() -> None:
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    started = time.monotonic()
    # CPU time of the whole process, and of the event loop's thread alone: what a busy
    # machine does not inflate as it does the wall clock.
    process_cpu, loop_cpu = time.process_time(), time.thread_time()
    poll = await feed.poll({})
    loop_cpu = time.thread_time() - loop_cpu
    process_cpu = time.process_time() - process_cpu
    elapsed = time.monotonic() - started
    done.set()
    await task
    assert len(poll.articles) == 500
    # The (CPU-bound) parse ran in a worker thread: most of the poll's CPU time was spent
    # outside the loop's thread (a parse on the loop spends nearly all of it there) ...
    assert loop_cpu < process_cpu / 2, (loop_cpu, process_cpu)
    # ... and the loop kept turning meanwhile: no pause between its ticks came near the
    # length of the poll, as the parse's would.
    assert gaps and max(gaps) < elapsed / 2, (max(gaps), elapsed)


async def test_parsing_can_run_in_a_process_pool(
    server: FeedServer, fetcher: Fetcher, seeds: list[Seed]
) -> None:
    server.set("/feed", Route(body=atom_doc(seeds)))
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        feed = FeedSource(
            "p", server.url("/feed"), fetcher=fetcher, allow_private=LOOPBACK, executor=pool
        )
        poll = await feed.poll({})
    assert [a.title for a in poll.articles] == [s.title for s in seeds]


async def test_the_fetchers_allowlist_counts_for_the_source(
    server: FeedServer, seeds: list[Seed]
) -> None:
    server.set("/feed", Route(body=rss_doc(seeds[:1])))
    async with Fetcher(timeouts=FAST, allow_private=LOOPBACK) as intranet:
        feed = FeedSource("intranet", server.url("/feed"), fetcher=intranet)
        assert len((await feed.poll({})).articles) == 1


async def test_a_304_to_an_unconditional_request_is_an_error(
    server: FeedServer, fetcher: Fetcher
) -> None:
    """A server answering 304 to a first poll (no ETag or date sent) was a silent success: the
    feed was never read and looked healthy."""
    server.set("/feed", Route(status=304))
    with pytest.raises(SourceError, match="304 Not Modified to a request that was not"):
        await source(server, fetcher).poll({})


def test_a_cut_feed_a_thousand_times_larger_is_read_in_linear_time() -> None:
    """Telling whether the cut fell inside an item counts the items' end tags: a megabyte of
    an item's attributes that never close is counted at once (a hang's catch, not a speed
    test), and the item cut open is not given; 300,000 item starts are refused by name."""
    import time

    from watchers.sources._feedparse import FeedFormatError, parse_feed

    head = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
            b'<item><guid isPermaLink="false">g0</guid><title>t0</title></item>')
    started = time.monotonic()
    got = parse_feed(head + b"<item " + b"a" * 1_000_000, url="https://ex.org/feed",
                     content_type=None)
    assert time.monotonic() - started < 60
    assert [e.guid for e in got.entries] == ["g0"]
    with pytest.raises(FeedFormatError, match="holds more markup than a feed is parsed with"):
        parse_feed(head + b"<item x" * 300_000, url="https://ex.org/feed", content_type=None)
