"""Headers a real server may send that a strict parser refuses, on both client paths: a
validator (ETag, Last-Modified) holding a control character, and a header folded onto a second
line (obs-fold). The lean client refused every such response ("malformed header"); the aiohttp
one stored the validator and failed every later poll with a traceback ("Forbidden control
character") until the feed paused. Each is read now; a validator that cannot be sent back is
not kept, so the next poll fetches the feed whole."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.sources._support import LOOPBACK
from watchers.errors import SourceError
from watchers.sources._http import Fetcher
from watchers.sources.feed import FeedSource, _sendable

RSS = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item>'
       b"<title>Troops mass near the border</title><link>http://example.org/1</link>"
       b"<guid>g1</guid></item></channel></rss>")
HEADS = {
    "control": b'ETag: "a\x01b"\r\nLast-Modified: Mon\x7f, 24 Jan 2022 12:00:00 GMT\r\n',
    "folded": b'ETag: "v1"\r\nX-Note: one\r\n two\r\n',
    # a byte that is not UTF-8: no client sent it back as it came, and PostgreSQL could not
    # save the cursor holding it (every source's state was lost, and the process stopped)
    "raw": b'ETag: "caf\xe9"\r\nLast-Modified: Mon, 24 Jan 2022 12:00:00 GMT\xff\r\n',
}


def _scripted(answer: Callable[[bytes], Sequence[bytes | float]],
              connections: list[list[bytes]]) -> Callable[..., Awaitable[None]]:
    """A server answering each request by writing ``answer(head)``'s pieces in turn (a float: a
    pause of that many seconds); each connection's request heads go to ``connections``."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mine: list[bytes] = []
        connections.append(mine)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                mine.append(head)
                for piece in answer(head):
                    if isinstance(piece, float):
                        await writer.drain()
                        await asyncio.sleep(piece)
                    else:
                        writer.write(piece)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return serve


def _by_path(answers: dict[bytes, list[bytes | float]]) -> Callable[[bytes], list[bytes | float]]:
    """The answer of the first key of ``answers`` that the request's head starts with."""
    return lambda head: next(p for start, p in answers.items() if head.startswith(start))


def _ok(body: bytes, extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n" + extra +
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


@pytest.fixture
async def served(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, list[list[bytes]]]]:
    connections: list[list[bytes]] = []
    extra = HEADS[str(request.param)]
    answer = [b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
              b"Content-Length: %d\r\n" % len(RSS) + extra + b"\r\n" + RSS]
    server = await asyncio.start_server(_scripted(lambda head: answer, connections),
                                        "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/feed", connections
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("served", ["control", "folded", "raw"], indirect=True)
async def test_odd_headers_are_read_and_unsendable_validators_not_kept(
        served: tuple[str, list[list[bytes]]], fetcher: Fetcher, request: pytest.FixtureRequest
) -> None:
    url, connections = served
    feed = FeedSource("odd", url, fetcher=fetcher, allow_private=LOOPBACK)
    cursor: dict[str, str] = {}
    for _ in range(3):
        poll = await feed.poll(cursor)
        assert [a.title for a in poll.articles] == ["Troops mass near the border"]
        cursor = dict(poll.cursor)
    heads = [h for c in connections for h in c]
    if "control" in request.node.callspec.id or "raw" in request.node.callspec.id:
        assert cursor.keys() <= {"url"}
        assert not any(b"If-None-Match" in h or b"If-Modified-Since" in h for h in heads)
    else:
        assert cursor["etag"] == '"v1"'
        assert b'If-None-Match: "v1"' in heads[-1]


@settings(max_examples=500, deadline=None)
@given(st.text() | st.sampled_from(["\t", "\x00", "\x08", "\n", "\x1f", " ", "\x7f", "\x80",
                                    'W/"v1\x7f"', '"v1"\r\nX: y', "Tue, 15 Nov 1994 08:12:31 GMT",
                                    '"caf\udce9"', '"caf\u00e9"', "\udc80", "\udcff", "\udc7f"]))
def test_a_validator_is_sendable_exactly_when_it_holds_no_control_character(value: str) -> None:
    """What may go back in If-None-Match / If-Modified-Since: anything but a control character
    (a tab aside), as the request line's rules have it, or a byte that was not UTF-8 (as the
    clients decode one: a surrogate U+DC80-U+DCFF)."""
    expected = all(c == "\t" or (ord(c) >= 0x20 and ord(c) != 0x7F
                                  and not 0xDC80 <= ord(c) <= 0xDCFF) for c in value)
    assert _sendable(value) is expected


def test_a_validator_a_million_characters_long_is_judged_whole() -> None:
    """A hostile server's ETag far past any real one: the control character at its very end
    still keeps it from going back, and the check reads it once (no per-character Python)."""
    assert _sendable('"' + "v" * 1_000_000 + '"')
    assert not _sendable('"' + "v" * 1_000_000 + '\x7f"')
    assert not _sendable("\r\n" + "v" * 1_000_000)


async def test_bytes_sent_on_an_idle_connection_shift_no_later_answer(fetcher: Fetcher) -> None:
    """A server that sends an answer nobody asked for on a kept-alive connection (late, after
    the one asked for): on the aiohttp path it was read as the next request's answer, and
    every later answer on that connection was the one before it — one feed's items filed under
    another's. Each answer is its own request's now, on both paths."""
    def doc(title: str) -> bytes:
        return (b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item>'
                b"<title>" + title.encode() + b"</title><guid>" + title.encode() +
                b"</guid></item></channel></rss>")

    def answer(body: bytes) -> bytes:
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body) + body)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                writer.write(answer(doc(f"asked {path}")))
                await writer.drain()
                if path == "/late":
                    await asyncio.sleep(0.2)
                    writer.write(answer(doc("never asked for")))
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        titles = []
        for path in ("/late", "/a", "/b", "/c"):
            feed = FeedSource("s", f"http://127.0.0.1:{port}{path}", fetcher=fetcher,
                              allow_private=LOOPBACK)
            titles.append([a.title for a in (await feed.poll({})).articles])
            await asyncio.sleep(0.4)
    finally:
        server.close()
        await server.wait_closed()
    assert titles == [["asked /late"], ["asked /a"], ["asked /b"], ["asked /c"]]


@pytest.mark.parametrize("split", [False, True], ids=["one-write", "head-then-body"])
async def test_a_not_modified_answer_with_a_body_is_read_and_leaves_no_bytes_behind(
        fetcher: Fetcher, split: bool) -> None:
    """Some servers (PHP's habit) send a 304 with the feed's body after it. On the aiohttp path
    those bytes were parsed as the next answer's status line: every conditional poll of such a
    feed failed ("Bad status line"). The 304 is read as not modified now, on both paths, and
    the bytes after it answer no other request: the connection carrying them is not reused."""
    connections: list[list[bytes]] = []  # each connection's requests

    def answer(head: bytes) -> list[bytes | float]:
        if b"If-None-Match" not in head:
            return [_ok(RSS, b'ETag: "v1"\r\n')]
        not_modified = b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: %d\r\n\r\n'
        return [not_modified % len(RSS), *([0.05] if split else []), RSS]

    server = await asyncio.start_server(_scripted(answer, connections), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    feed = FeedSource("php", f"http://127.0.0.1:{port}/feed", fetcher=fetcher,
                      allow_private=LOOPBACK)
    other = FeedSource("other", f"http://127.0.0.1:{port}/other", fetcher=fetcher,
                       allow_private=LOOPBACK)
    try:
        first = await feed.poll({})
        assert [a.title for a in first.articles] == ["Troops mass near the border"]
        cursor = dict(first.cursor)
        for _ in range(3):
            again = await feed.poll(cursor)
            assert again.not_modified and not again.articles
            cursor = dict(again.cursor)
            # The next request on the host gets its own answer, not the bytes after the 304.
            fresh = await other.poll({})
            assert [a.title for a in fresh.articles] == ["Troops mass near the border"]
    finally:
        server.close()
        await server.wait_closed()
    assert sum(b"If-None-Match" in h for c in connections for h in c) == 3
    # A 304 declaring a body ends its connection's use (the body may come late), the others
    # are kept alive.
    assert all(b"If-None-Match" not in h for c in connections for h in c[:-1])
    assert any(len(c) > 1 for c in connections)


NOT_MODIFIED = b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n'


@pytest.mark.parametrize("pieces", [
    # interim answers before the 304, in the same write
    [b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" + NOT_MODIFIED +
     b"Content-Length: %d\r\n\r\n" % len(RSS) + RSS],
    # the head's lines end in LF, its end in CRLF
    [b'HTTP/1.1 304 Not Modified\nETag: "v1"\n\r\n' + RSS],
    # the status line split by the network, mid-code
    [b"HTTP/1.1 30", 0.05, b'4 Not Modified\r\nETag: "v1"\r\nContent-Length: %d\r\n\r\n'
     % len(RSS) + RSS],
    # the head's end split
    [NOT_MODIFIED + b"Content-Length: %d\r\n\r" % len(RSS), 0.05, b"\n" + RSS],
], ids=["interim-first", "lf-then-crlf", "status-line-split", "head-end-split"])
async def test_a_not_modified_answer_however_the_bytes_come_is_not_modified(
        fetcher: Fetcher, pieces: list[bytes | float]) -> None:
    connections: list[list[bytes]] = []
    server = await asyncio.start_server(
        _scripted(_by_path({b"GET /feed": pieces, b"GET /other": [_ok(RSS)]}), connections),
        "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for _ in range(2):
            got = await fetcher.get(f"http://127.0.0.1:{port}/feed", etag='"v1"',
                                    allow_private=LOOPBACK)
            assert got.not_modified
            other = await fetcher.get(f"http://127.0.0.1:{port}/other", allow_private=LOOPBACK)
            assert other.body == RSS
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("late", [
    b"HTTP/1.1 304 Not Modified\r\n\r\nthe rest of a text that quotes an answer",
    b"HTTP/1.1 204 No Content\n\nthe rest",
], ids=["304", "204-lf"])
async def test_a_body_that_reads_like_a_bodyless_answer_is_read_whole(
        fetcher: Fetcher, late: bytes) -> None:
    """Bytes that begin a read in the middle of a body are the body's, whatever they look
    like: a 200 whose later part began "HTTP/1.1 304 ..." was cut there (aiohttp path)."""
    body = b"First part. " + late
    connections: list[list[bytes]] = []
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            b"Content-Length: %d\r\n\r\nFirst part. " % len(body))
    chunked = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
               b"Transfer-Encoding: chunked\r\n\r\nc\r\nFirst part. \r\n")
    server = await asyncio.start_server(_scripted(_by_path({
        b"GET /length": [head, 0.05, late],
        b"GET /chunked": [chunked, 0.05, b"%x\r\n" % len(late) + late + b"\r\n0\r\n\r\n"],
    }), connections), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for path in ("/length", "/chunked"):
            got = await fetcher.get(f"http://127.0.0.1:{port}{path}", allow_private=LOOPBACK)
            assert got.body == body, path
    finally:
        server.close()
        await server.wait_closed()


async def test_a_host_that_answers_twice_gets_a_connection_per_request(
        fetcher: Fetcher) -> None:
    """A server that follows a 304 with a whole answer nobody asked for, a moment later: it
    lands on the next request's connection. On the lean client it was always caught at once;
    on the aiohttp path it was read as the next feed's answer every time. Now on both, once
    caught, that host's requests each get a connection of their own and no answer of another
    request is ever read again."""
    stray = _ok(b"<rss>EVIL</rss>")
    connections: list[list[bytes]] = []
    server = await asyncio.start_server(_scripted(_by_path({
        b"GET /a": [NOT_MODIFIED + b"\r\n", 0.05, stray],
        b"GET /b": [_ok(RSS)],
    }), connections), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    bodies: list[bytes | str] = []
    try:
        for _ in range(4):
            assert (await fetcher.get(f"http://127.0.0.1:{port}/a", etag='"v1"',
                                      allow_private=LOOPBACK)).not_modified
            try:
                bodies.append((await fetcher.get(f"http://127.0.0.1:{port}/b",
                                                 allow_private=LOOPBACK)).body)
            except SourceError as exc:
                bodies.append(str(exc))
            await asyncio.sleep(0.1)
    finally:
        server.close()
        await server.wait_closed()
    # At most the first next request was answered by the stray (nothing tells it from the
    # answer if it comes after the request is written); every later one by its own.
    assert bodies[1:] == [RSS] * 3
    assert all(len(c) == 1 for c in connections[-4:])


async def test_a_not_modified_head_that_never_ends_is_refused_and_the_host_still_answers(
        fetcher: Fetcher) -> None:
    """A 304 whose head runs on (400 KB of one header, no end): the poll fails at once naming
    the head's size, nothing waits for the rest, and the host's next request is answered."""
    endless: list[bytes | float] = [NOT_MODIFIED + b"X-Pad: ", *[b"a" * 10_000] * 40]
    connections: list[list[bytes]] = []
    server = await asyncio.start_server(_scripted(_by_path({
        b"GET /a": endless, b"GET /b": [_ok(RSS)]}), connections), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with asyncio.timeout(10):
            with pytest.raises(SourceError, match=r"64 KiB|more than 8190 bytes"):
                await fetcher.get(f"http://127.0.0.1:{port}/a", etag='"v1"',
                                  allow_private=LOOPBACK)
            got = await fetcher.get(f"http://127.0.0.1:{port}/b", allow_private=LOOPBACK)
        assert got.body == RSS
    finally:
        server.close()
        await server.wait_closed()


async def test_a_redirect_to_bytes_that_are_not_utf8_is_followed_percent_encoded(
        fetcher: Fetcher) -> None:
    """A Location holding a byte that is not UTF-8 ("/caf\\xe9", Latin-1) is followed as
    browsers follow it, the byte percent-encoded; refused, it is named so, and the reason can
    be stored: the unencodable URL in it failed the save of every source's state."""
    connections: list[list[bytes]] = []
    server = await asyncio.start_server(_scripted(_by_path({
        b"GET /moved ": [b"HTTP/1.1 302 Found\r\nLocation: /caf\xe9\r\nContent-Length: 0\r\n\r\n"],
        b"GET /away ": [b"HTTP/1.1 302 Found\r\nLocation: http://10.0.0.1/caf\xe9\r\n"
                        b"Content-Length: 0\r\n\r\n"],
        b"GET /caf%E9 ": [_ok(RSS)],
    }), connections), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        got = await fetcher.get(f"http://127.0.0.1:{port}/moved", allow_private=LOOPBACK)
        assert got.body == RSS
        assert got.url == f"http://127.0.0.1:{port}/caf%E9"
        with pytest.raises(SourceError) as refused:
            await fetcher.get(f"http://127.0.0.1:{port}/away", allow_private=LOOPBACK)
        said = str(refused.value)
        assert "redirect (302) to http://10.0.0.1/caf%E9 refused" in said, said
        said.encode("utf-8")  # storable as it is
    finally:
        server.close()
        await server.wait_closed()
