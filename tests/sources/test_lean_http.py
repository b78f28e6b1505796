"""The fetcher's lean HTTP client (httptools on asyncio protocols) against real local servers.

Raw asyncio servers script the answers no well-behaved server gives (malformed, cut short,
delimited by close, silent, closing a kept-alive connection, writing bytes nobody asked for);
the guarantees that both client paths share are also run on the aiohttp path, with the same
expected messages where both word a fault alike (a response that cannot be parsed is named by
the lean client, by its parser's reason on aiohttp's path).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import ipaddress
import re
import select
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest

from tests.fakes.feed_server import FeedServer, Route
from tests.sources._support import FAST, LOOPBACK, FakeResolver
from watchers.errors import FetchBlockedError, SourceError
from watchers.sources._http import Fetcher, FetchResult, FetchTimeoutError, Timeouts

httptools = pytest.importorskip("httptools", reason="the lean client needs httptools")
from watchers.sources._lean import LeanClient  # noqa: E402 - after the skip

LOOPBACK_NETS = (ipaddress.ip_network("127.0.0.1/32"),)

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


class RawServer:
    """A TCP server on 127.0.0.1 whose every connection runs ``script(reader, writer, n)``
    (``n`` counts connections from 0); it records requests and how many connections were open
    at once."""

    def __init__(self, script: Script, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.ssl_context = ssl_context
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.closed_by_peer = 0
        self.requests: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", 0, ssl=self.ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for writer in self._writers:
            writer.close()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def url(self, path: str = "/feed", host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        n = self.connections
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        self._writers.append(writer)
        try:
            await self.script(reader, writer, n)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self.open -= 1
            writer.close()

    async def request(self, reader: asyncio.StreamReader) -> bytes | None:
        """The next request head, or None when the client closed the connection."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            self.closed_by_peer += 1
            return None
        self.requests.append(head)
        return head


def answer(body: bytes = b"<rss/>", *, extra: str = "", status: str = "200 OK") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/rss+xml\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def keep_alive(server_ref: list[RawServer], body: bytes = b"<rss/>") -> Script:
    """Answer every request on the connection with ``body``, keeping the connection open."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while await server_ref[0].request(reader) is not None:
            writer.write(answer(body, extra=f"X-Conn: {n}\r\n"))
            await writer.drain()

    return script


def drip_feed(server_ref: list[RawServer], pause: float) -> Script:
    """Promise 100,000 bytes and send one every ``pause`` seconds (within a read timeout longer
    than it, for ever): only the whole fetch's deadline stops it."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server_ref[0].request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(100000):
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(pause)

    return script


@pytest.fixture(autouse=True)
def _lean_wanted(monkeypatch: pytest.MonkeyPatch) -> None:
    """This module is about the lean client: NEWSWATCH_PURE (set to test the pure paths) would
    give its fetchers aiohttp. Tests of the choice set it themselves."""
    monkeypatch.delenv("NEWSWATCH_PURE", raising=False)


@pytest.fixture
async def lean() -> AsyncIterator[Fetcher]:
    async with Fetcher(timeouts=FAST, allow_private=LOOPBACK) as f:
        assert f.client == "lean"
        yield f


def test_the_client_path_is_chosen_per_fetcher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSWATCH_PURE", raising=False)
    assert Fetcher().client == "lean"
    monkeypatch.setenv("NEWSWATCH_PURE", "1")
    assert Fetcher().client == "aiohttp"
    monkeypatch.setenv("NEWSWATCH_PURE", "0")
    assert Fetcher().client == "lean"


async def test_a_given_session_keeps_the_aiohttp_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import aiohttp

    monkeypatch.delenv("NEWSWATCH_PURE", raising=False)
    async with aiohttp.ClientSession() as session:
        assert Fetcher(session).client == "aiohttp"


# ---------------------------------------------------------------- keep-alive and the pool


async def test_a_kept_alive_connection_carries_the_next_requests(lean: Fetcher) -> None:
    ref: list[RawServer] = []
    async with RawServer(keep_alive(ref, b"<rss>one</rss>")) as server:
        ref.append(server)
        results = [await lean.get(server.url(f"/f{i}?q=1#frag")) for i in range(3)]
    assert server.connections == 1
    assert [r.body for r in results] == [b"<rss>one</rss>"] * 3
    first = results[0]
    assert first.status == 200 and not first.not_modified
    assert first.url == server.url("/f0?q=1")  # no fragment, as aiohttp reports it
    assert first.headers["content-type"] == first.content_type == "application/rss+xml"
    head = server.requests[0].decode()
    assert head.startswith("GET /f0?q=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n" in head
    assert "Accept-Encoding: gzip, deflate\r\n" in head


@pytest.mark.parametrize(
    "head",
    [
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 6\r\n\r\n",
        "HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\n",
    ],
    ids=["connection-close", "http-1.0"],
)
async def test_a_connection_the_server_will_close_is_never_reused(
    lean: Fetcher, head: str
) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.request(reader)
        writer.write(head.encode() + b"<rss/>")
        await writer.drain()
        await asyncio.sleep(0.5)  # the server is slow to close; the client must not wait

    async with RawServer(script) as server:
        for _ in range(2):
            assert (await lean.get(server.url())).body == b"<rss/>"
    assert server.connections == 2


async def test_a_body_delimited_by_close_is_read_whole(
    client_path: str,
) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n<rss>")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"the rest</rss>")
        await writer.drain()
        writer.close()

    async with RawServer(script) as server, Fetcher(timeouts=FAST, allow_private=LOOPBACK) as f:
        for _ in range(2):
            assert (await f.get(server.url())).body == b"<rss>the rest</rss>"
    assert server.connections == 2


async def test_an_idle_connection_the_server_closed_is_not_used(lean: Fetcher) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.request(reader)
        writer.write(answer(extra=f"X-Conn: {n}\r\n"))
        await writer.drain()
        writer.close()  # said keep-alive, then closed it while idle

    async with RawServer(script) as server:
        assert (await lean.get(server.url())).headers["X-Conn"] == "0"
        await asyncio.sleep(0.1)  # the close reaches the client
        assert (await lean.get(server.url())).headers["X-Conn"] == "1"
    assert len(server.requests) == 2


async def test_a_stale_connection_is_retried_once_on_a_fresh_one(lean: Fetcher) -> None:
    # The second request lands on a connection the server drops without a byte of answer
    # (it closed at that very moment): sent again on a new connection, it succeeds.
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.request(reader)
        writer.write(answer(extra=f"X-Conn: {n}\r\n"))
        await writer.drain()
        if n == 0:
            await server.request(reader)
            return  # closes without answering
        while await server.request(reader) is not None:
            writer.write(answer(extra=f"X-Conn: {n}\r\n"))
            await writer.drain()

    async with RawServer(script) as server:
        assert (await lean.get(server.url())).headers["X-Conn"] == "0"
        assert (await lean.get(server.url())).headers["X-Conn"] == "1"
    assert server.connections == 2
    assert len(server.requests) == 3


async def test_a_fresh_connection_closed_before_any_answer_fails_at_once(
    client_path: str,
) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.request(reader)

    async with RawServer(script) as server, Fetcher(timeouts=FAST, allow_private=LOOPBACK) as f:
        with pytest.raises(SourceError, match=re.escape(f"{server.url()}: server closed the "
                                                        "connection")):
            await f.get(server.url())
    if client_path == "lean":  # (aiohttp tries a second connection, where nothing was stale)
        assert server.connections == 1


async def test_connections_per_host_are_bounded(lean: Fetcher) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while await server.request(reader) is not None:
            await asyncio.sleep(0.05)
            writer.write(answer())
            await writer.drain()

    async with RawServer(script) as server:
        results = await asyncio.gather(*(lean.get(server.url(f"/{i}")) for i in range(12)))
    assert all(r.status == 200 for r in results)
    assert server.most_open == 4
    assert len(server.requests) == 12


async def test_idle_connections_are_bounded_in_all_and_closed_by_aclose() -> None:
    refs: list[list[RawServer]] = [[], [], []]
    servers = [RawServer(keep_alive(ref)) for ref in refs]
    for ref, server in zip(refs, servers, strict=True):
        ref.append(await server.__aenter__())
    try:
        client = LeanClient(FakeResolver({}), max_idle=2)
        for server in servers:
            response = await client.get(
                server.url(), {}, allowed=LOOPBACK_NETS, connect_timeout=1, read_timeout=1
            )
            assert await response.chunks() == [b"<rss/>"]
            assert await response.chunks() == []
            response.release()
        assert client.idle_connections == 2
        await asyncio.sleep(0.1)
        assert [s.closed_by_peer for s in servers] == [1, 0, 0]  # the oldest went first
        await client.aclose()
        await asyncio.sleep(0.1)
        assert [s.closed_by_peer for s in servers] == [1, 1, 1]
    finally:
        for server in servers:
            await server.__aexit__(None, None, None)


# ---------------------------------------------------------------- bytes nobody asked for

FEED_A = b"<rss>feed A</rss>"
FEED_B = b"<rss>feed B</rss>"


def two_feeds(server_ref: list[RawServer], stray: bytes,
              before_stray: Callable[[], Awaitable[None]],
              closed: asyncio.Queue[int] | None = None) -> Script:
    """Feeds /a and /b on one host, kept alive: /a answers 304 (declaring no body: one that
    declares A's length, as RFC 9110 allows, ends the connection's use at once), then writes
    ``stray`` once ``before_stray`` returns; /b answers with B. A connection's number goes to
    ``closed`` when the client has closed it."""
    not_modified = b'HTTP/1.1 304 Not Modified\r\nETag: "a"\r\n\r\n'

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while (head := await server_ref[0].request(reader)) is not None:
            if head.startswith(b"GET /a "):
                writer.write(not_modified)
                await writer.drain()
                await before_stray()
                writer.write(stray)
            else:
                writer.write(answer(FEED_B))
            await writer.drain()
        if closed is not None:
            closed.put_nowait(n)

    return script


def wait_until_pending(fetcher: Fetcher) -> None:
    """Block, the event loop too, until bytes wait in the socket of the fetcher's one idle
    connection: the loop has not read them when the next request takes the connection."""
    (conn,) = fetcher._lean_client()._idle
    assert conn.transport is not None
    readable, _, _ = select.select([conn.transport.get_extra_info("socket")], [], [], 5)
    assert readable


@pytest.mark.parametrize("stray", [answer(FEED_A), FEED_A], ids=["a-whole-answer", "a-body"])
@pytest.mark.parametrize("when", ["with-the-304", "before-the-next-request"])
async def test_bytes_after_a_not_modified_answer_never_answer_the_next_request(
    lean: Fetcher, stray: bytes, when: str
) -> None:
    """A server that follows a 304 with a body, or with a whole answer, has put bytes on the
    connection that answer nothing. Come with the 304, they closed it; come a moment later,
    still unread in the socket when the connection was handed to the next request, they were
    read as that request's answer: feed A's body stored as feed B's."""
    go = asyncio.Event()

    async def before_stray() -> None:
        if when == "before-the-next-request":
            await go.wait()

    ref: list[RawServer] = []
    async with RawServer(two_feeds(ref, stray, before_stray)) as server:
        ref.append(server)
        first = await lean.get(server.url("/a"), etag='"a"')
        assert first.not_modified and first.body == b""
        if when == "before-the-next-request":
            go.set()
            await asyncio.sleep(0)  # the server writes them, in the loop's turn that goes on:
            wait_until_pending(lean)  # ... with the request for B
        second = await lean.get(server.url("/b"))
        assert (second.status, second.body) == (200, FEED_B)
    assert server.connections == 2


async def test_a_host_that_sent_stray_bytes_gets_a_connection_per_request(lean: Fetcher) -> None:
    """Bytes a server writes 0.3 s after a 304, once the next request (feed B's) has gone out
    on the connection, cannot be told from that request's answer: they were read as feed B's
    (feed A's body under feed B). Caught once, here as they come while the connection idles,
    they make the host's connections carry one request each: they never land on another
    request again. (A host that does it for the first time after the next request was written
    gets through that once: nothing on the wire tells those bytes from the answer.)"""
    async def before_stray() -> None:
        await asyncio.sleep(0.3)

    ref: list[RawServer] = []
    closed: asyncio.Queue[int] = asyncio.Queue()
    async with RawServer(two_feeds(ref, answer(FEED_A), before_stray, closed)) as server:
        ref.append(server)
        assert (await lean.get(server.url("/a"), etag='"a"')).not_modified
        async with asyncio.timeout(5):  # the stray answer comes while the connection idles,
            assert await closed.get() == 0  # ... and the client closes it
        for _ in range(2):
            assert (await lean.get(server.url("/a"), etag='"a"')).not_modified
            assert (await lean.get(server.url("/b"))).body == FEED_B  # at once, as feeds do
        async with asyncio.timeout(5):  # each closed after its one request
            assert sorted([await closed.get() for _ in range(4)]) == [1, 2, 3, 4]


async def test_a_close_found_waiting_at_hand_out_costs_the_host_no_keep_alive(
        lean: Fetcher) -> None:
    """The server's close of an idle connection, still unread as the connection is handed out,
    is no stray byte: a fresh connection is opened, and kept alive as before."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while await server.request(reader) is not None:
            writer.write(answer(extra=f"X-Conn: {n}\r\n"))
            await writer.drain()
            if n == 0:
                return  # closed while idle

    async with RawServer(script) as server:
        assert (await lean.get(server.url())).headers["X-Conn"] == "0"
        wait_until_pending(lean)
        assert [(await lean.get(server.url())).headers["X-Conn"] for _ in range(2)] == ["1", "1"]
    assert len(server.requests) == 3


@pytest.mark.parametrize("when", ["while-idle", "before-the-next-request"])
async def test_a_line_end_after_an_answer_costs_the_host_no_keep_alive(
        lean: Fetcher, when: str) -> None:
    """Some servers end a body with a line end they did not count (httptools passes over it
    before the next answer): the host is not taken for one that writes stray answers, and its
    connections are still kept alive."""
    go = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while await server.request(reader) is not None:
            writer.write(answer(extra=f"X-Conn: {n}\r\n"))
            await writer.drain()
            if n == 0:
                await go.wait()
                writer.write(b"\r\n")

    async with RawServer(script) as server:
        assert (await lean.get(server.url())).headers["X-Conn"] == "0"
        go.set()
        await asyncio.sleep(0)
        if when == "while-idle":
            await asyncio.sleep(0.1)  # the loop reads it
        else:
            wait_until_pending(lean)
        conns = [(await lean.get(server.url())).headers["X-Conn"] for _ in range(3)]
    assert len(set(conns)) == 1


@pytest.mark.parametrize(("length", "connections"), [(b"", 1), (b"Content-Length: 0\r\n", 1),
                                                    (b"Content-Length: 6\r\n", 4)])
async def test_not_modified_answers_keep_the_connection_alive_unless_they_declare_a_body(
    lean: Fetcher, length: bytes, connections: int
) -> None:
    """(the look into the socket as a connection is handed out finds nothing to refuse); a 304
    that declares a body's length, as RFC 9110 allows, ends the connection's use: a server that
    sends that body after all may send it after the next request is written."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while (head := await server.request(reader)) is not None:
            writer.write(b'HTTP/1.1 304 Not Modified\r\nETag: "a"\r\n' + length + b"\r\n"
                         if head.startswith(b"GET /a ") else answer(FEED_B))
            await writer.drain()

    async with RawServer(script) as server:
        for _ in range(3):
            assert (await lean.get(server.url("/a"), etag='"a"')).not_modified
            await asyncio.sleep(0.05)
            assert (await lean.get(server.url("/b"))).body == FEED_B
    assert server.connections == connections


# ---------------------------------------------------------------- the SSRF guard


async def test_a_pooled_connection_is_checked_against_the_next_calls_allowlist() -> None:
    ref: list[RawServer] = []
    resolver = FakeResolver({"feeds.example": ["127.0.0.1"]})
    async with RawServer(keep_alive(ref)) as server, Fetcher(
        resolver=resolver, timeouts=FAST
    ) as fetcher:
        ref.append(server)
        url = server.url(host="feeds.example")
        assert (await fetcher.get(url, allow_private=LOOPBACK)).status == 200
        # The next call allows no private address: the pooled connection to 127.0.0.1 is
        # refused by the peer check itself (the resolver is not asked again).
        with pytest.raises(
            FetchBlockedError, match=re.escape("refused connection: 127.0.0.1 is a loopback")
        ):
            await fetcher.get(url)
        assert resolver.asked == ["feeds.example"]
        assert (await fetcher.get(url, allow_private=LOOPBACK)).status == 200
    assert len(server.requests) == 2
    assert server.connections == 2  # the refused connection was closed, not pooled


async def test_an_address_literal_is_checked_before_dialling(lean: Fetcher) -> None:
    ref: list[RawServer] = []
    async with RawServer(keep_alive(ref)) as server:
        ref.append(server)
        client = lean._lean_client()
        blocked = re.escape("refused connection: 127.0.0.1 is a loopback")
        with pytest.raises(FetchBlockedError, match=blocked):
            await client.get(server.url(), {}, allowed=(), connect_timeout=1, read_timeout=1)
        with pytest.raises(FetchBlockedError, match="not a canonical IPv4 address"):
            await client.get(
                server.url(host="2130706433"), {}, allowed=LOOPBACK_NETS,
                connect_timeout=1, read_timeout=1,
            )
    assert server.connections == 0


async def test_a_redirect_is_followed_hop_by_hop(lean: Fetcher) -> None:
    async with FeedServer() as server:
        server.set("/a", Route(status=301, location="/b"))
        server.set("/b", Route(status=302, location=server.url("/c")))
        server.set("/c", Route(body=b"<rss/>", etag='"e1"'))
        result = await lean.get(server.url("/a"))
        assert (result.status, result.url, result.body) == (200, server.url("/c"), b"<rss/>")
        again = await lean.get(server.url("/c"), etag='"e1"')
        assert again.not_modified and again.status == 304 and again.body == b""
        assert server.hits("/c")[-1].headers["If-None-Match"] == '"e1"'
        server.set("/loop", Route(status=307, location="/loop"))
        with pytest.raises(FetchBlockedError, match="more than 5 redirects"):
            await lean.get(server.url("/loop"))


async def test_a_redirect_to_an_overlong_or_malformed_url_is_refused_by_name(
        client_path: str) -> None:
    """Before, a Location of any length was followed, each hop's URL kept in the URL checks'
    caches (60 KB Locations grew the process by a megabyte a poll); a malformed one (an
    unclosed IPv6 bracket) escaped as a bare ValueError, an "unexpected failure" with a
    traceback that did not name the URL."""
    async with FeedServer() as server, Fetcher(timeouts=FAST, allow_private=LOOPBACK) as f:
        # (longer than 8 KB, aiohttp's header line limit refuses it first)
        server.set("/long", Route(status=302, location="/x?" + "a" * 6_000))
        with pytest.raises(SourceError, match=r"/long: HTTP 302 redirect to a URL of "
                                              r"6,003 characters \(limit 4,000\)"):
            await f.get(server.url("/long"))
        server.set("/bracket", Route(status=302, location="http://[::1/good"))
        with pytest.raises(SourceError, match=r"/bracket: HTTP 302 redirect to an invalid URL"):
            await f.get(server.url("/bracket"))


async def test_a_protocol_switch_is_an_unexpected_status_not_a_hang(client_path: str) -> None:
    """A 101 Switching Protocols with an Upgrade header: the lean client's parser stops there
    with an exception the client did not catch, and the fetch hung to its total deadline (then
    "timed out"). It is now the answer it is, whose status the feed source refuses."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(30)

    slow = Timeouts(connect=5, read=20, total=20)
    async with RawServer(script) as server, Fetcher(timeouts=slow, allow_private=LOOPBACK) as f:
        async with asyncio.timeout(5):
            result = await f.get(server.url())
    assert result.status == 101  # the feed source refuses it as an unexpected status


async def answered_with(payload: bytes, *, etag: str | None = None) -> FetchResult:
    """What the fetcher makes of one request answered with ``payload`` as it is."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.request(reader)
        writer.write(payload)
        await writer.drain()

    async with RawServer(script) as server, Fetcher(timeouts=FAST, allow_private=LOOPBACK) as f:
        return await f.get(server.url(), etag=etag)


async def test_lines_ended_by_a_bare_lf_are_read_on_both_paths(client_path: str) -> None:
    """Some servers end header lines with LF alone: aiohttp read them and the lean client
    refused them as "bad HTTP response (400)", so such a feed failed with the default install
    and worked without it."""
    result = await answered_with(b"HTTP/1.1 200 OK\nContent-Type: application/rss+xml\n"
                                 b"Content-Length: 6\n\n<rss/>")
    assert result.status == 200 and result.body == b"<rss/>"


# ---------------------------------------------------------------- malformed and cut short

# aiohttp's path gives its parser's reason, one line, cut and escaped (the lean client's
# messages are its own, and the test does not pin aiohttp's wording).
AIOHTTP_REFUSAL = r"bad HTTP response \(400: [^\n]+\)$"


@pytest.mark.parametrize(
    ("payload", "message", "aiohttp_message"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", "malformed status line 'NOT HTTP AT ALL'", None),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "malformed status line 'HTTP/1.1 2000 OK'", None),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nBad Header\r\n\r\nhello",
         "malformed header (Invalid header token)", None),
        # (no reason phrase: httptools reports no status line, which was well formed)
        (b"HTTP/1.1 200\r\nBad Header\r\n\r\n", "malformed header (Invalid header token)",
         None),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
         "malformed chunked body (Invalid character in chunk size)", None),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
         "response body was cut off or malformed", "response body was cut off or malformed"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
         "response body was cut off or malformed", "response body was cut off or malformed"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "server closed the connection",
         "server closed the connection"),
        # a body longer than its Content-Length: the lean client kept the first part, silently
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello, and the rest of it",
         "body longer than its Content-Length of 5 bytes", None),
        # headers without end: refused before they fill memory
        (b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 200_000 + b"\r\n\r\n",
         "response head longer than 64 KiB", None),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Pad: aaaaaaaaaaaaaaaaaaaa\r\n" * 4000 + b"\r\n",
         "response head longer than 64 KiB", None),
    ],
    ids=["garbage", "bad-status", "bad-header", "bad-header-after-bare-status", "bad-chunk",
         "short-length", "short-chunked", "half-head", "long-body", "long-header",
         "many-headers"],
)
async def test_broken_responses_are_refused_by_name_on_both_paths(
    client_path: str, payload: bytes, message: str, aiohttp_message: str | None
) -> None:
    """Every refusal of the lean client read "bad HTTP response (400)", as aiohttp's path words
    a parse error: a feed's failure did not say what was wrong with the answer. Both paths
    refuse the same answers; where a body was cut short, with the same words."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.request(reader)
        writer.write(payload)
        await writer.drain()

    async with RawServer(script) as server, Fetcher(timeouts=FAST, allow_private=LOOPBACK) as f:
        with pytest.raises(SourceError) as caught:
            await f.get(server.url())
    said = str(caught.value)
    assert said.startswith(f"{server.url()}: ")
    said = said.removeprefix(f"{server.url()}: ")
    if client_path == "lean":
        assert said == message
    elif aiohttp_message is not None:
        assert said == aiohttp_message
    else:
        assert re.match(AIOHTTP_REFUSAL, said), said


async def test_a_quoted_status_line_is_cut_and_escaped() -> None:
    """The status line is quoted in the error, which goes to the log, ``check`` and a paused
    source's notice: the server's bytes are cut to a few characters and shown as escapes."""
    monster = b"\x16\x03\x01\x00\xa5\x1b[2J\xe2\x80\xae" + b"A" * 100_000 + b"\r\n\r\n"
    with pytest.raises(SourceError) as caught:
        await answered_with(monster)
    said = str(caught.value).split(": ", 1)[1]
    assert re.fullmatch(r"malformed status line '\\x16\\x03\\x01\\x00\\xa5\\x1b\[2J"
                        r"\\xe2\\x80\\xaeA+…'", said), said
    assert len(said) < 100 and said.isprintable()


@pytest.mark.parametrize("start", [b"HTTP/1.1 200 OK\r\nX-Big: ", b"HTTP/1.1 200 OK", b""],
                         ids=["header", "reason-phrase", "interim-answers"])
async def test_a_head_that_never_ends_is_refused_at_once(client_path: str, start: bytes) -> None:
    """A header (or status line) that never ends, or 100 Continue after 100 Continue: the cap
    counted finished headers only, so the lean client read on until the fetch's deadline,
    holding hundreds of MB and a core for each such source (and aiohttp read interim answers
    until the deadline)."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.request(reader)
        writer.write(start)
        with contextlib.suppress(ConnectionError):
            for _ in range(10_000):  # 640 MB at most, cut short by the refusal
                writer.write(b"a" * 65536 if start else b"HTTP/1.1 100 Continue\r\n\r\n" * 2000)
                await writer.drain()

    patient = Timeouts(connect=5, read=60, total=60)
    async with RawServer(script) as server, Fetcher(timeouts=patient,
                                                    allow_private=LOOPBACK) as f:
        async with asyncio.timeout(15):  # not the deadline: refused on the way
            with pytest.raises(SourceError) as caught:
                await f.get(server.url())
    said = str(caught.value).removeprefix(f"{server.url()}: ")
    if client_path == "aiohttp" and start:
        assert re.match(AIOHTTP_REFUSAL, said), said
    elif start:
        assert said == "response head longer than 64 KiB"
    else:
        assert said == "the server sent more than 10 interim (1xx) responses"


async def test_a_few_interim_answers_are_read_past(client_path: str) -> None:
    early = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    result = await answered_with(early * 10 + answer())
    assert (result.status, result.body) == (200, b"<rss/>")


async def test_content_encoding_on_two_lines_is_one_list(client_path: str) -> None:
    """A header sent on two lines is one list (RFC 9110, 5.3): only the first line was read,
    so identity + gzip left the body packed ("not a feed") and gzip + gzip was not named."""
    packed = gzip.compress(b"<rss/>")
    codings = [[b"identity", b"gzip"], [b"gzip", b"gzip"]]

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.request(reader)
        lines = b"".join(b"Content-Encoding: %s\r\n" % c for c in codings[n % 2])
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n" + lines
                     + b"Content-Length: %d\r\n\r\n" % len(packed) + packed)
        await writer.drain()

    async with RawServer(script) as server, Fetcher(timeouts=FAST, allow_private=LOOPBACK) as f:
        assert (await f.get(server.url())).body == b"<rss/>"
        with pytest.raises(SourceError, match=re.escape(
                "unsupported Content-Encoding 'gzip, gzip' (stacked codings)")):
            await f.get(server.url())


async def test_a_not_modified_answer_with_a_stray_body_is_still_not_modified(
        client_path: str) -> None:
    """A 304 carries no body; a server that sends one anyway is not refused for it (polls get
    many 304s), unlike a 200 whose body runs past its length. (aiohttp alone refused it: its
    protocol drops the bytes after a bodyless answer's head now.)"""
    result = await answered_with(b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n"
                                 b"Content-Length: 6\r\nConnection: close\r\n\r\n<rss/>",
                                 etag='"x"')
    assert result.status == 304


async def test_chunked_and_gzipped_bodies_are_decoded(client_path: str) -> None:
    doc = b"<rss>" + b"story " * 5000 + b"</rss>"
    packed = gzip.compress(doc)

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Encoding: gzip\r\n\r\n")
        for i in range(0, len(packed), 1000):
            piece = packed[i : i + 1000]
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async with RawServer(script) as server, Fetcher(timeouts=FAST, allow_private=LOOPBACK) as f:
        assert (await f.get(server.url())).body == doc


# ---------------------------------------------------------------- timeouts


async def test_silence_after_the_headers_is_a_read_timeout_and_the_connection_is_dropped(
    client_path: str,
) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while await server.request(reader) is not None:
            if n == 0:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
                await writer.drain()
                continue  # then silence
            writer.write(answer())
            await writer.drain()

    timeouts = Timeouts(total=5.0, connect=1.0, read=0.3)
    async with RawServer(script) as server, Fetcher(timeouts=timeouts,
                                                    allow_private=LOOPBACK) as f:
        with pytest.raises(FetchTimeoutError, match=re.escape("read 0.3s")):
            await f.get(server.url())
        assert (await f.get(server.url())).body == b"<rss/>"
    assert server.connections == 2  # the timed-out connection was never reused


async def test_a_drip_feeding_server_is_stopped_by_the_total_deadline(client_path: str) -> None:
    ref: list[RawServer] = []
    timeouts = Timeouts(total=1.0, connect=1.0, read=0.5)
    async with RawServer(drip_feed(ref, 0.1)) as server, Fetcher(timeouts=timeouts,
                                                                allow_private=LOOPBACK) as f:
        ref.append(server)
        with pytest.raises(FetchTimeoutError, match="limit 1s for the whole fetch"):
            await f.get(server.url())


async def test_a_total_timeout_leaves_the_task_usable_and_an_outer_cancel_stays_one(
    client_path: str,
) -> None:
    ref: list[RawServer] = []
    timeouts = Timeouts(total=0.4, connect=1.0, read=0.5)
    async with RawServer(drip_feed(ref, 0.05)) as server, Fetcher(timeouts=timeouts,
                                                                 allow_private=LOOPBACK) as f:
        ref.append(server)
        # The deadline cancels the fetch's task; the timeout reported, the task is not left
        # cancelling: the next await in it runs, and so does the next fetch's deadline.
        for _ in range(2):
            with pytest.raises(FetchTimeoutError, match=r"limit 0\.4s for the whole fetch"):
                await f.get(server.url())
            task = asyncio.current_task()
            assert task is not None and task.cancelling() == 0
            await asyncio.sleep(0.01)
        # Cancelled from outside before its deadline: a cancellation, not a timeout.
        fetch = asyncio.create_task(f.get(server.url()))
        await asyncio.sleep(0.1)
        fetch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await fetch


async def test_a_cancelled_fetch_leaves_no_connection_in_the_pool(lean: Fetcher) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while await server.request(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.write(b"-whole")
            await writer.drain()

    async with RawServer(script) as server:
        task = asyncio.create_task(lean.get(server.url()))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert lean._lean_client().idle_connections == 0
        assert (await lean.get(server.url())).body == b"half-whole"
    assert server.connections == 2


# ---------------------------------------------------------------- TLS


def _self_signed(tmp: Path, name: str) -> tuple[Path, Path]:
    """A certificate for ``name`` signed by itself: with ``cryptography`` if installed, else
    the openssl command; skips when neither is there."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    try:
        from cryptography import x509  # type: ignore[import-not-found, unused-ignore]
        from cryptography.hazmat.primitives import hashes, serialization  # type: ignore[import-not-found, unused-ignore]
        from cryptography.hazmat.primitives.asymmetric import ec  # type: ignore[import-not-found, unused-ignore]
        from cryptography.x509.oid import NameOID  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        openssl = shutil.which("openssl")
        if openssl is None:
            pytest.skip("neither the cryptography package nor openssl is installed: "
                        "no certificate to test TLS with")
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", "2", "-subj", f"/CN={name}", "-addext",
             f"subjectAltName=DNS:{name}", "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=30,
        )
        return cert, key
    import datetime as dt

    private = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(private.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert, key


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[RawServer, Path]]:
    cert, key = _self_signed(tmp_path, "feeds.example")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    ref: list[RawServer] = []
    async with RawServer(keep_alive(ref, b"<rss>secret</rss>"), ssl_context=context) as server:
        ref.append(server)
        yield server, cert


async def test_a_self_signed_certificate_is_refused(
    client_path: str, tls_server: tuple[RawServer, Path]
) -> None:
    server, _ = tls_server
    resolver = FakeResolver({"feeds.example": ["127.0.0.1"]})
    url = server.url(host="feeds.example", scheme="https")
    async with Fetcher(resolver=resolver, timeouts=FAST, allow_private=LOOPBACK) as fetcher:
        with pytest.raises(
            SourceError, match=re.escape(f"{url}: TLS certificate could not be verified")
        ):
            await fetcher.get(url)
    assert not server.requests


async def test_a_trusted_certificate_is_verified_against_the_host_name(
    tls_server: tuple[RawServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default verified context reads SSL_CERT_FILE when built: trust only our certificate.
    server, cert = tls_server
    monkeypatch.delenv("NEWSWATCH_PURE", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    resolver = FakeResolver({"feeds.example": ["127.0.0.1"], "other.example": ["127.0.0.1"]})
    async with Fetcher(resolver=resolver, timeouts=FAST, allow_private=LOOPBACK) as fetcher:
        ok = await fetcher.get(server.url(host="feeds.example", scheme="https"))
        assert ok.body == b"<rss>secret</rss>"
        assert b"Host: feeds.example:" in server.requests[0]
        # The same certificate for another name (SNI and the check use the URL's host).
        with pytest.raises(SourceError, match="TLS certificate could not be verified"):
            await fetcher.get(server.url(host="other.example", scheme="https"))
    assert len(server.requests) == 1


async def test_a_request_cancelled_as_it_is_handed_a_connection_gives_its_turn_back() -> None:
    ref: list[RawServer] = []
    async with RawServer(keep_alive(ref)) as server:
        ref.append(server)
        client = LeanClient(FakeResolver({}), per_host=1)

        async def get() -> bytes:
            response = await client.get(
                server.url(), {}, allowed=LOOPBACK_NETS, connect_timeout=1, read_timeout=1
            )
            try:
                return b"".join(await response.chunks())
            finally:
                response.release()

        first = await client.get(
            server.url(), {}, allowed=LOOPBACK_NETS, connect_timeout=1, read_timeout=1
        )
        waiting = asyncio.create_task(get())
        await asyncio.sleep(0.05)  # queued behind the first request (one connection per host)
        assert not waiting.done()
        assert await first.chunks() == [b"<rss/>"]
        assert await first.chunks() == []
        first.release()  # hands the turn to the waiting request ...
        waiting.cancel()  # ... which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await waiting
        async with asyncio.timeout(5):  # the turn came back: no wait forever
            assert await get() == b"<rss/>"
        await client.aclose()


@pytest.mark.parametrize("limit", ["per host", "in all"])
async def test_a_request_cancelled_while_it_waits_for_a_connection_just_leaves(limit: str
                                                                             ) -> None:
    ref: list[RawServer] = []
    async with RawServer(keep_alive(ref)) as server:
        ref.append(server)
        resolver = FakeResolver({"a.example": ["127.0.0.1"], "b.example": ["127.0.0.1"]})
        client = (LeanClient(resolver, per_host=1) if limit == "per host"
                  else LeanClient(resolver, limit=1))

        async def get(host: str) -> bytes:
            response = await client.get(
                server.url(host=host), {}, allowed=LOOPBACK_NETS, connect_timeout=1,
                read_timeout=1,
            )
            try:
                return b"".join(await response.chunks())
            finally:
                response.release()

        first = await client.get(
            server.url(host="a.example"), {}, allowed=LOOPBACK_NETS, connect_timeout=1,
            read_timeout=1,
        )
        # Per host: a second request to the same host; in all: one to another host.
        waiting = asyncio.create_task(get("a.example" if limit == "per host" else "b.example"))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        waiting.cancel()  # cancelled while it waits ...
        assert b"".join(await first.chunks()) == b"<rss/>"
        first.release()  # ... and passed over by the release before it runs
        with pytest.raises(asyncio.CancelledError):
            await waiting
        async with asyncio.timeout(5):  # the freed connection serves the next request
            assert await get("b.example") == b"<rss/>"
        await client.aclose()


async def test_connections_in_all_are_bounded() -> None:
    busy = [0, 0]  # requests being answered now, most at once

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while await servers[0].request(reader) is not None:
            busy[0] += 1
            busy[1] = max(busy)
            await asyncio.sleep(0.05)
            busy[0] -= 1
            writer.write(answer())
            await writer.drain()

    servers: list[RawServer] = []
    async with RawServer(script) as server:
        servers.append(server)
        client = LeanClient(
            FakeResolver({f"h{i}.example": ["127.0.0.1"] for i in range(6)}), limit=3
        )

        async def get(i: int) -> int:
            response = await client.get(
                server.url(host=f"h{i}.example"), {}, allowed=LOOPBACK_NETS,
                connect_timeout=1, read_timeout=1,
            )
            response.release()
            return response.status

        assert await asyncio.gather(*(get(i) for i in range(6))) == [200] * 6
        await client.aclose()
    assert busy[1] == 3  # six hosts, three connections in use at a time
    assert server.connections == 6
