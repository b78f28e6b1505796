"""Hostile servers and documents: decompression bombs, drip-feeding, silent servers, XML entity
attacks and external entities. Each must fail fast, in bounded memory, and reach nothing."""

from __future__ import annotations

import asyncio
import gzip
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.feed_server import Canary, FeedServer, Route, Tarpit
from tests.sources._support import FAST, LOOPBACK, Seed, rss_doc
from watchers.errors import FetchBlockedError, SourceError
from watchers.sources._feedparse import MAX_MARKUP_TOKENS, FeedFormatError, ParsedFeed, parse_feed
from watchers.sources._http import Fetcher, FetchTimeoutError, Timeouts
from watchers.sources.feed import FeedSource

CAP = 1024 * 1024  # a smaller cap than production keeps these tests quick
BOMB_SIZE = 64 * CAP


def _compressed_zeros(size: int, wbits: int) -> bytes:
    """``size`` zero bytes compressed without ever holding them: about 1/1000 of the size."""
    z = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = bytes(CAP)
    out = [z.compress(block) for _ in range(size // CAP)]
    out.append(z.flush())
    return b"".join(out)


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    return _compressed_zeros(BOMB_SIZE, 16 + zlib.MAX_WBITS)


@pytest.fixture(scope="module")
def deflate_bomb() -> bytes:
    return _compressed_zeros(BOMB_SIZE, zlib.MAX_WBITS)


@pytest.fixture
async def small_fetcher(client_path: str) -> AsyncIterator[Fetcher]:
    async with Fetcher(timeouts=FAST, max_bytes=CAP, allow_private=LOOPBACK) as f:
        yield f


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_decompression_bombs_stop_at_the_cap(
    server: FeedServer,
    small_fetcher: Fetcher,
    gzip_bomb: bytes,
    deflate_bomb: bytes,
    coding: str,
    chunked: bool,
) -> None:
    body = gzip_bomb if coding == "gzip" else deflate_bomb
    assert len(body) < CAP  # the wire size alone would pass the cap
    server.set("/bomb", Route(body=body, headers={"Content-Encoding": coding}, chunked=chunked))
    tracemalloc.start()
    try:
        started = time.monotonic()
        with pytest.raises(FetchBlockedError, match=f"exceeds {CAP} bytes"):
            await small_fetcher.get(server.url("/bomb"))
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The peak proves the bomb was not inflated; the time bound is a hang guard only
    # (tracemalloc slows the fetch several times over, and more on a busy machine).
    assert elapsed < 30
    assert peak < 8 * CAP, f"peak {peak} bytes while refusing a {BOMB_SIZE}-byte bomb"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_plain_oversized_bodies_are_refused(
    server: FeedServer, small_fetcher: Fetcher, chunked: bool
) -> None:
    server.set("/big", Route(body=b"<rss>" + b"x" * (2 * CAP), chunked=chunked))
    with pytest.raises(FetchBlockedError, match=f"exceeds {CAP} bytes"):
        await small_fetcher.get(server.url("/big"))


async def test_a_body_at_the_cap_is_accepted(server: FeedServer, small_fetcher: Fetcher) -> None:
    server.set("/full", Route(body=b"a" * CAP, encoding="gzip", chunked=True))
    result = await small_fetcher.get(server.url("/full"))
    assert result.body == b"a" * CAP


async def test_corrupt_gzip_is_a_source_error(server: FeedServer, small_fetcher: Fetcher) -> None:
    server.set("/bad", Route(body=b"\x1f\x8bnot gzip at all", headers={"Content-Encoding": "gzip"}))
    with pytest.raises(SourceError, match="corrupt gzip"):
        await small_fetcher.get(server.url("/bad"))


async def test_unknown_content_encoding_is_refused(
    server: FeedServer, small_fetcher: Fetcher
) -> None:
    server.set("/br", Route(body=b"???", headers={"Content-Encoding": "br"}))
    with pytest.raises(SourceError, match="unsupported Content-Encoding") as info:
        await small_fetcher.get(server.url("/br"))
    assert server.url("/br") in str(info.value)  # the feed is named, as for other body errors
    server.set("/two", Route(body=b"???", headers={"Content-Encoding": "gzip, gzip"}))
    with pytest.raises(SourceError, match="stacked codings") as info:
        await small_fetcher.get(server.url("/two"))
    assert server.url("/two") in str(info.value)


async def test_a_drip_feeding_server_hits_the_total_deadline(
    server: FeedServer, small_fetcher: Fetcher, seeds: list[Seed]
) -> None:
    # One byte every 0.05 s never trips the 0.5 s read timeout (a tenth of it: nor do a busy
    # machine's pauses); the 2 s total deadline must.
    body = rss_doc(seeds)
    dripping = len(body) * 0.05  # the server's time to send it all: twenty minutes
    assert dripping > 600
    server.set("/drip", Route(body=body, drip=0.05))
    started = time.monotonic()
    with pytest.raises(FetchTimeoutError, match="whole fetch"):
        await small_fetcher.get(server.url("/drip"))
    # cut off long before the server was done, however busy the machine
    assert time.monotonic() - started < 20


@pytest.mark.usefixtures("client_path")
async def test_a_server_that_never_answers_times_out(tarpit: Tarpit) -> None:
    # The read timeout (0.5 s) ends it, not the whole fetch's deadline, set far off here.
    timeouts = Timeouts(total=60.0, connect=FAST.connect, read=FAST.read)
    async with Fetcher(timeouts=timeouts, allow_private=LOOPBACK) as fetcher:
        started = time.monotonic()
        with pytest.raises(FetchTimeoutError, match=r"timed out \(connect 1s, read 0\.5s\)"):
            await fetcher.get(f"http://{tarpit.address}/feed")
        assert time.monotonic() - started < 20  # well before the 60 s deadline
    assert tarpit.connections == 1
    assert tarpit.received.startswith(b"GET /feed HTTP/1.1")


# ---------------------------------------------------------------------------------------------
# XML entity attacks. Parsing runs in a thread, as FeedSource runs it, so listeners stay live.

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY lol "lol">\n'
    + b"".join(
        b'<!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b']>\n<rss version="2.0"><channel><title>&lol9;</title>'
    b"<item><title>laugh &lol9;</title><description>&lol9;</description></item></channel></rss>"
)


def _quadratic(entity_size: int, refs: int) -> bytes:
    return (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "'
        + b"A" * entity_size
        + b'">]><rss version="2.0"><channel><item><title>quadratic</title><description>'
        + b"&a;" * refs
        + b"</description></item></channel></rss>"
    )


async def _parse_bounded(body: bytes) -> tuple[ParsedFeed, float, int]:
    tracemalloc.start()
    try:
        started = time.monotonic()
        feed = await asyncio.to_thread(
            parse_feed, body, url="https://feeds.example/rss", content_type="application/rss+xml"
        )
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return feed, elapsed, peak


async def test_billion_laughs_is_not_expanded() -> None:
    feed, elapsed, peak = await _parse_bounded(BILLION_LAUGHS)
    # The peak proves the entities were not expanded (3 GB if they were); the time bound is a
    # hang guard only (tracemalloc slows the parse several times over).
    assert elapsed < 30 and peak < 20 * 1024 * 1024
    assert len(feed.entries) == 1
    assert "lollol" not in feed.entries[0].title + feed.entries[0].text + feed.title


async def test_quadratic_blowup_is_not_expanded() -> None:
    feed, elapsed, peak = await _parse_bounded(_quadratic(50_000, 20_000))  # 1 GB if expanded
    # The peak proves the entity was not expanded; the time bound is a hang guard only
    # (tracemalloc slows the parse several times over, and more on a busy machine).
    assert elapsed < 30 and peak < 50 * 1024 * 1024
    assert "AAAA" not in feed.entries[0].text


async def test_external_entities_are_never_resolved(tmp_path: Path, canary: Canary) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CANARY")
    url = f"http://{canary.address}"
    documents = [
        # General external entity to a file and to a listener.
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<rss version="2.0"><channel><item><title>a &x;</title></item></channel></rss>',
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "{url}/entity">]>'
        '<rss version="2.0"><channel><item><title>b &x;</title></item></channel></rss>',
        # Parameter entity and an external DTD subset.
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY % p SYSTEM "{url}/p.dtd"> %p;]>'
        '<rss version="2.0"><channel><item><title>c</title></item></channel></rss>',
        f'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "{url}/rss.dtd">'
        '<rss version="2.0"><channel><item><title>d</title></item></channel></rss>',
        # A DOCTYPE hidden behind a comment that contains a tag, and one on the declaration's line.
        f'<?xml version="1.0"?><!-- <a> --><!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<rss version="2.0"><channel><item><title>e &x;</title></item></channel></rss>',
        # Ill-formed on purpose, so the loose parser runs too.
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<rss version="2.0"><channel><item><title>f &x;</title><b></item></channel></rss>',
    ]
    for doc in documents:
        feed, elapsed, _ = await _parse_bounded(doc.encode())
        assert elapsed < 30  # a hang guard: the canary and the text prove nothing was fetched
        seen = feed.title + "".join(e.title + e.text for e in feed.entries)
        assert "TOP-SECRET" not in seen
        assert feed.entries, doc
    await asyncio.sleep(0.1)  # give any stray connection time to land
    assert canary.connections == 0


async def test_a_body_that_names_a_file_is_not_opened(tmp_path: Path) -> None:
    # feedparser.parse() treats str/bytes as a URL or a path; parse_feed must never do that.
    secret = tmp_path / "feed.xml"
    secret.write_bytes(rss_doc([Seed("s", "Secret title", "text", None)]))
    with pytest.raises(SourceError, match="not a feed"):
        await asyncio.to_thread(
            parse_feed, str(secret).encode(), url="https://x/", content_type=None
        )


async def test_hostile_feed_through_the_whole_source(
    server: FeedServer, fetcher: Fetcher, canary: Canary
) -> None:
    doc = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "http://{canary.address}/">'
        f'<!ENTITY % p SYSTEM "http://{canary.address}/p"> %p;]>'
    ).encode() + BILLION_LAUGHS.split(b"]>", 1)[1]
    server.set("/feed", Route(body=doc))
    feed = FeedSource("hostile", server.url("/feed"), fetcher=fetcher, allow_private=LOOPBACK)
    poll = await feed.poll({})
    assert len(poll.articles) == 1
    await asyncio.sleep(0.1)
    assert canary.connections == 0


async def test_a_json_feed_of_many_bytes_that_are_not_utf8_is_read_in_one_pass() -> None:
    """Each byte that is not UTF-8 (a Windows-1252 é) was read by decoding the rest of the
    feed again from it: 400,000 of them in a 2 MB feed took minutes; one pass now."""
    title = "Caf\u00e9 " * 400_000
    body = ('{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1", '
            f'"url": "https://x.example/1", "title": "{title}"}}]}}').encode("cp1252")
    feed = await asyncio.wait_for(asyncio.to_thread(
        parse_feed, body, url="https://x/", content_type="application/feed+json"), 30)
    (entry,) = feed.entries
    assert entry.title.startswith("Caf\u00e9 Caf\u00e9")


async def test_a_document_of_nothing_but_markup_is_refused_before_parsing() -> None:
    body = b'<rss version="2.0"><channel><item><title>t</title><description>'
    body += b"<b>" * (MAX_MARKUP_TOKENS + 1)

    def refused() -> tuple[BaseException | None, float]:
        # CPU time of this thread alone, which a busy machine does not inflate as it does
        # the wall clock
        began = time.thread_time()
        try:
            parse_feed(body, url="https://x/", content_type=None)
        except FeedFormatError as exc:
            return exc, time.thread_time() - began
        return None, time.thread_time() - began

    error, cpu = await asyncio.to_thread(refused)
    assert isinstance(error, FeedFormatError), error
    assert error.kind == "too-complex"
    # it said "is not a feed", and nothing of the limit's being fixed
    assert "holds more markup than a feed is parsed with" in str(error)
    assert "tags and entity references" in str(error)
    assert "the limit being 250,000" in str(error) and "max_bytes" in str(error)
    # Refused before parsing: parsing its 250,001 tags takes seconds of CPU, counting them
    # a few milliseconds.
    assert cpu < 1, f"{cpu:.2f} s of CPU"


@pytest.mark.usefixtures("client_path")
async def test_the_default_cap_is_5_mib(server: FeedServer, gzip_bomb: bytes) -> None:
    server.set("/bomb", Route(body=gzip_bomb, headers={"Content-Encoding": "gzip"}, chunked=True))
    async with Fetcher(timeouts=FAST, allow_private=LOOPBACK) as fetcher:
        assert fetcher.max_bytes == 5 * 1024 * 1024
        with pytest.raises(FetchBlockedError, match="exceeds 5242880 bytes"):
            await fetcher.get(server.url("/bomb"))


async def test_a_gzip_body_cut_short_is_an_error_not_a_shorter_feed(
        server: FeedServer, small_fetcher: Fetcher) -> None:
    """Half a gzip stream with a Content-Length that matches it decompressed to the first
    items of the feed, with no error: the rest were silently missing."""
    whole = gzip.compress(b"<rss>" + b"<item>x</item>" * 500 + b"</rss>")
    server.set("/cut", Route(body=whole[: len(whole) // 2], headers={"Content-Encoding": "gzip"}))
    with pytest.raises(SourceError, match="truncated gzip"):
        await small_fetcher.get(server.url("/cut"))


async def test_gzip_members_one_after_another_are_all_read(
        server: FeedServer, small_fetcher: Fetcher) -> None:
    first, second = b"<rss><item>one</item>", b"<item>two</item></rss>"
    server.set("/multi", Route(body=gzip.compress(first) + gzip.compress(second),
                               headers={"Content-Encoding": "gzip"}))
    assert (await small_fetcher.get(server.url("/multi"))).body == first + second
    # padding after the last member is ignored, as gzip ignores it
    server.set("/pad", Route(body=gzip.compress(first) + b"\x00" * 16,
                             headers={"Content-Encoding": "gzip"}))
    assert (await small_fetcher.get(server.url("/pad"))).body == first


_ONE_ITEM = (b'<rss version="2.0"><channel><title>T</title><item><title>One</title>'
             b"<link>http://a.example/1</link></item></channel></rss>")


@pytest.mark.parametrize("prolog", [
    "b'<?xml version=\"1.0\" encoding=\"utf-8\"?>' + b'\\n' * 200_000",
    "b'<?xml version=\"1.0\"?><!--' + b'\\n' * 200_000 + b'-->'",
    "b'<?xml version=\"1.0\"?><?pi ' + b'\\n' * 200_000 + b'?>'",
    "b'<?xml version=\"1.0\"' + b'\\n' * 200_000 + b'?>'"],
    ids=["between", "in-a-comment", "in-a-processing-instruction", "in-the-declaration"])
def test_blank_lines_in_the_prolog_do_not_stall_the_process(prolog: str) -> None:
    """Blank lines between the XML declaration and the root (80,000 of them gzip to 300
    bytes) held the interpreter in feedparser's prolog patterns, quadratic in them: 47 s for
    80,000, during which no other source was polled and a stop waited; inside a comment or a
    processing instruction of the prolog alike. Parsed in a process of its own, so that a
    stall ends at the timeout instead of holding this one."""
    code = (
        "from watchers.sources._feedparse import parse_feed\n"
        f"body = {prolog} + "
        f"{_ONE_ITEM!r}\n"
        "feed = parse_feed(body, url='http://a.example/feed', content_type='application/rss+xml')\n"
        "print([e.title for e in feed.entries])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['One']"


@pytest.mark.parametrize("body", [
    b" " * 2_000 + _ONE_ITEM,
    b"\n" * 2_000 + b'{"version": "https://jsonfeed.org/version/1.1", "title": "T", "items": '
                    b'[{"id": "1", "title": "One", "url": "http://a.example/1"}]}'],
    ids=["rss", "json"])
def test_blank_space_before_a_document_is_not_an_empty_response(body: bytes) -> None:
    """More than 1 KB of blank space before the document read as "the response is empty"."""
    feed = parse_feed(body, url="http://a.example/feed", content_type=None)
    assert [e.title for e in feed.entries] == ["One"]


def test_a_description_of_unclosed_tags_does_not_stall_its_poll() -> None:
    """240,000 "<a" in one description (inside the markup cap, 635 bytes gzipped): html.parser
    rescans everything after each one, 200 s for the poll, and a stop waited for it. Parsed in
    a process of its own, so that a stall ends at the timeout."""
    code = (
        "from watchers.sources._feedparse import parse_feed\n"
        "body = (b'<rss version=\"2.0\"><channel><title>t</title><item><title>troops</title>'\n"
        "        b'<guid>x</guid><description><![CDATA[' + b'<a' * 240_000 +\n"
        "        b']]></description></item></channel></rss>')\n"
        "feed = parse_feed(body, url='http://a.example/feed', content_type='application/rss+xml')\n"
        "(entry,) = feed.entries\n"
        "rest = entry.text.rstrip('…').replace('<a', '')\n"
        "print(entry.title, entry.text.count('<a') > 1000, rest)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    # the text as written (as much of it as an article keeps, then "…"), nothing else
    assert done.stdout.split() == ["troops", "True"]
