"""A small HTTP/1.1 GET client on asyncio protocols and ``httptools``, for the fetcher's hops.

Polling thousands of feeds a minute is mostly tiny 304 answers, where a general client's
per-request machinery costs more than the exchange itself. This client does one thing: send a
GET on a kept-alive connection and parse the answer as it arrives. ``_http.Fetcher`` keeps every
rule (redirect loop, deadlines, size cap, decoding); this module keeps the ones that live on the
connection:

* a host name is resolved through the fetcher's ``GuardedResolver`` (the allowlist of the call in
  force), an address literal is checked with ``check_host`` before dialling, and the address a
  connection reached is checked with ``check_peer`` against the current call's allowlist every
  time the connection is handed out, pooled ones included, before a request byte is written;
* connecting is bounded by the connect timeout (per address tried), every wait for bytes by the
  read timeout (the longest silence, checked every quarter of it by one timer for all
  connections); the fetch as a whole by the fetcher's total;
* a connection goes back to the pool only after a complete response that allows keep-alive, and
  nothing else is pending on it; any failure, timeout or cancellation closes it;
* a 204 or 304 answer that declares a body (a Content-Length, as a 304 may) ends its
  connection's use: a server that sends that body anyway may send it after the next request;
* bytes nobody asked for (a body after a 304, a second answer after the first, anything while
  idle) close the connection, whether the loop has read them or they still wait in its socket
  when it is handed out again (looked at before a request byte is written); and the host that
  sent them gets a connection per request from then on: such bytes may also come after the next
  request is written, where nothing tells them from its answer, and one feed's body would be
  read as another's;
* a request sent on a pooled connection that fails before any response byte (the server closed
  it while idle) is sent once more on a fresh connection (GET is idempotent);
* at most ``per_host`` connections per (scheme, host, port) and ``limit`` in all at once (more
  requests wait) and at most ``max_idle`` idle connections in all (the oldest is closed
  first); idle connections older than ``keepalive`` seconds are not reused.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import ipaddress
import re
import select
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httptools
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from watchers.errors import FetchBlockedError, SourceError
from watchers.sources._guard import IPNetwork, allowing, check_host, check_peer
from watchers.sources.base import declares_body, printable

if TYPE_CHECKING:
    from aiohttp.abc import AbstractResolver

__all__ = ["ConnectFailedError", "DisconnectedError", "LeanClient", "LeanResponse",
           "ResponseCutError"]

_HIGH_WATER = 256 * 1024  # buffered body bytes before the socket stops being read
# The response head at most (status line and headers, interim answers included): a server that
# never ends its headers would otherwise fill memory until the fetch's deadline (aiohttp refuses
# a header line over 8,190 bytes). Counted twice, each count at most the head's true size: the
# finished headers (name, value, ": " and line end), and every received chunk that did not end
# the head (httptools holds an unfinished line until it ends: one that never did grew for the
# fetch's whole deadline, hundreds of MB and a core for each such source).
_MAX_HEAD_BYTES = 64 * 1024
_HEAD_TOO_LONG = f"response head longer than {_MAX_HEAD_BYTES // 1024} KiB"
# Interim (1xx) answers before the real one: 100 Continue and 103 Early Hints come once or a
# few times; a server that sends them without end is refused, not read until the deadline.
_MAX_INTERIM = 10
# A status line as RFC 9112 writes it, line end included: a parse error before any header, after
# such a line, is in the first header line (httptools reports no status without a reason phrase).
_STATUS_LINE = re.compile(rb"HTTP/\d\.\d \d{3}(?: [^\r\n]*)?\r?\n")
_QUOTED = 40  # characters of server text quoted in an error, at most


class ResponseCutError(Exception):
    """The body ended before its declared end, or the response could not be parsed; the
    message names the fault (quoting at most a few escaped characters of the server's)."""


class ConnectFailedError(Exception):
    """No connection could be made; ``os_error`` is the last attempt's reason."""

    def __init__(self, os_error: OSError) -> None:
        super().__init__(str(os_error))
        self.os_error = os_error


class DisconnectedError(Exception):
    """The server closed the connection before the response headers were complete."""


class _Target:
    """What a URL means on the wire; parsed once per distinct URL (feeds repeat every poll)."""

    __slots__ = ("address", "final", "host", "host_header", "key", "path", "port", "tls")

    def __init__(self, url: str) -> None:
        parsed = URL(url).with_fragment(None)
        host = parsed.raw_host
        port = parsed.port
        if not host or port is None:
            raise SourceError(f"{url}: no host to connect to")
        self.final = str(parsed)  # what aiohttp reports as the response URL
        self.tls = parsed.scheme == "https"
        self.host = host
        self.port = port
        self.key = (parsed.scheme, host, port)
        try:
            self.address: str | None = str(ipaddress.ip_address(host))
        except ValueError:
            if ":" not in host and host.replace(".", "").isdigit():
                # Legacy numeric forms (2130706433, 127.1, 010.0.0.1) are refused outright, as
                # aiohttp does: the resolver would map them onto an address the allowlist
                # never named.
                raise FetchBlockedError(
                    f"refused URL: {host} - is not a canonical IPv4 address") from None
            self.address = None  # a name (or 0x7f.1 and such): the resolver decides
        shown = f"[{host}]" if ":" in host else host
        self.host_header = shown if parsed.is_default_port() else f"{shown}:{port}"
        self.path = parsed.raw_path_qs or "/"


# Large enough for every feed of a big install: a cache smaller than the set of URLs polled in
# turn would miss on every poll.
@functools.lru_cache(maxsize=65536)
def _target(url: str) -> _Target:
    return _Target(url)


class _Conn(asyncio.Protocol):
    """One connection and the response being read on it (one at a time)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, key: tuple[str, str, int],
                 host: _Host) -> None:
        self.loop = loop
        self.key = key
        self.host = host
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.closed = False
        self.idle_since = 0.0
        self.reused = False
        # The allowlist the peer was last found allowed by (kept, so identity is meaningful).
        self.passed: tuple[IPNetwork, ...] | None = None
        self._reset()

    def _reset(self) -> None:
        self.parser: Any = None
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.header_bytes = 0
        self.head_bytes = 0
        self.head_start = b""  # the answer's first bytes, to quote a malformed status line
        self.interim = 0
        self.status_read = False  # of the message being parsed (see _STATUS_LINE)
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.got_bytes = False
        self.body: list[bytes] = []
        self.buffered = 0
        self.paused = False
        self.error: BaseException | None = None
        self.eof = False
        self.extra = False
        self._waiter: asyncio.Future[None] | None = None
        self.last = 0.0  # when a byte last came (or the request went)
        self.read_timeout = 0.0

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        self.last = self.loop.time()
        if self.parser is None or self.complete:
            self._stray(data)  # while idle, or after the whole response: not reusable
            self._overran()
            self.close()
            return
        if len(self.head_start) <= _QUOTED and not self.headers_done:
            self.head_start += data[:_QUOTED + 1]  # (one more: a longer line is shown cut)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # A protocol switch (101, or any answer with Upgrade): httptools stops there. What
            # was parsed is the answer, whose status the caller refuses as for any other.
            if not self.complete:
                self._fail(ResponseCutError("bad HTTP response (a protocol upgrade)"))
            self.extra = True
            self.close()
        except httptools.HttpParserError as exc:
            if self.complete:
                self._stray()  # trailing bytes after a whole response
                self._overran()
            else:
                self._fail(ResponseCutError(self._malformed(exc)))
            self.close()
        else:
            if self.extra and self.complete:
                self._overran()
            if not self.headers_done and not self.complete:
                # Counted once the chunk is read: one that ends the headers may carry body.
                self.head_bytes += len(data)
                if self.head_bytes > _MAX_HEAD_BYTES:
                    self._fail(ResponseCutError(_HEAD_TOO_LONG))
                    self.close()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._finish_at_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.eof = True
        self._finish_at_eof(exc)

    # -- httptools callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            self._stray()  # a second response nobody asked for

    def on_status(self, reason: bytes) -> None:
        self.status_read = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.complete:
            return
        self.status_read = True
        self.header_bytes += len(name) + len(value) + 4
        if self.header_bytes > _MAX_HEAD_BYTES:
            # Raised inside the parser's callback: feed_data stops and raises, and
            # data_received closes the connection (the failure named here stays the one told).
            self._fail(ResponseCutError(_HEAD_TOO_LONG))
            raise ResponseCutError(_HEAD_TOO_LONG)
        self.headers.append(
            (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
        )

    def on_headers_complete(self) -> None:
        if self.complete:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # An interim answer (100 Continue, 103 Early Hints): the real one follows.
            self.interim += 1
            if self.interim > _MAX_INTERIM:
                message = f"the server sent more than {_MAX_INTERIM} interim (1xx) responses"
                self._fail(ResponseCutError(message))
                raise ResponseCutError(message)
            self.headers = []
            self.status_read = False
            return
        self.status = status
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if self.headers_done and not self.complete:
            self.complete = True
            # Asked here: llhttp answers for the message in hand only inside its callbacks.
            # A 204 or 304 that declares a body: see declares_body.
            self.keep_alive = self.parser.should_keep_alive() and not (
                self.status in (204, 304) and declares_body(self.headers)
            )

    # -- used by the client ----------------------------------------------------------------

    def admit(self, allowed: tuple[IPNetwork, ...]) -> None:
        """Check the peer against ``allowed`` before a request byte is written; a refused
        connection is closed."""
        try:
            check_peer(self.peer, allowed)
        except BaseException:
            self.close()
            raise
        self.passed = allowed

    def usable(self) -> bool:
        return not (self.closed or self.eof or self.extra) and not (
            self.transport is None or self.transport.is_closing()
        )

    def quiet(self) -> bool:
        """Nothing waits in the socket of this idle connection (bytes the loop has not read
        yet, or the server's close): looked at as it is handed out, because its next bytes
        will be read as the answer to the request written next."""
        assert self.transport is not None
        raw = self.transport.get_extra_info("socket")
        if raw is None:
            return True
        fd = raw.fileno()
        poller = select.poll()  # (a poll, not a peek: a fifth of the time, and no exception)
        poller.register(fd, select.POLLIN)
        if not poller.poll(0):
            return True
        if self.transport.get_extra_info("sslcontext") is None:
            # Bytes, or only the server's close? (Over TLS they may be the protocol's own
            # records: the connection is closed all the same, the host not marked.)
            peek = socket.socket(raw.family, raw.type, raw.proto, fd)
            try:
                peek.setblocking(False)  # (it is; a default timeout would make recv wait)
                if waiting := peek.recv(64, socket.MSG_PEEK):
                    self._stray(waiting)
            except OSError:
                pass  # a reset, say: not usable either
            finally:
                peek.detach()  # the descriptor stays the transport's
        return False

    def start(self, request: bytes, read_timeout: float) -> None:
        """Send a request; the answer is then awaited with :meth:`wait`."""
        self._reset()
        self.parser = httptools.HttpResponseParser(self)
        # Lines ended by a bare LF, as some servers send them, a header folded onto a second
        # line (obs-fold, which a client takes as a space) and a control character in a
        # header's value: aiohttp reads them all, and a feed must not work on one client path
        # and fail on the other.
        lenient = getattr(self.parser, "set_dangerous_leniencies", None)  # httptools >= 0.6.2
        if lenient is not None:
            lenient(lenient_optional_cr_before_lf=True, lenient_headers=True)
        self.read_timeout = read_timeout
        self.last = self.loop.time()
        assert self.transport is not None
        self.transport.write(request)

    def waiting(self) -> bool:
        """A response is expected and not finished."""
        return not (self.complete or self.closed or self.error is not None or self.parser is None)

    def time_out(self) -> None:
        self._fail(TimeoutError())
        self.close()

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _finish_at_eof(self, exc: Exception | None = None) -> None:
        if self.parser is None or self.complete or self.error is not None:
            return
        if self.headers_done and not self._length_known():
            self.complete = True  # a body delimited by the connection's close
        elif self.headers_done:
            self.error = ResponseCutError("response body was cut off or malformed")
        elif isinstance(exc, ssl.SSLError):
            self.error = exc
        else:
            self.error = DisconnectedError("server closed the connection")
        self._wake()

    def _stray(self, data: bytes | None = None) -> None:
        """Bytes nobody asked for came: the connection is not reused; nor, unless they were
        only line ends (some servers add one after a body, and httptools passes over them
        between answers), is any other to the same host (see the module docstring)."""
        self.extra = True
        if data is None or data.strip(b"\r\n"):
            self.host.strays = True

    def _overran(self) -> None:
        """Bytes came after a body of declared length: the length was a lie, and the body read
        is only the first part of what was sent (aiohttp refuses it so too). A 204 or 304
        with a stray body is left be: such answers carry none, and polls get many 304s (the
        connection is closed all the same)."""
        if self.error is None and self.parser is not None and self.status not in (204, 304):
            for name, value in self.headers:
                if name.lower() == "content-length":
                    declared = value.strip()
                    length = f" of {int(declared):,} bytes" if declared.isdigit() else ""
                    self.error = ResponseCutError(f"body longer than its Content-Length{length}")
                    self._wake()
                    return

    def _malformed(self, exc: httptools.HttpParserError) -> str:
        """What a parse error says: where it is (status line, a header, the chunked framing)
        and httptools' reason, or the status line itself (quoted, cut and escaped)."""
        reason = printable(str(exc), _QUOTED * 2)
        if self.headers_done:
            chunked = any(name.lower() == "transfer-encoding" and "chunked" in value.lower()
                          for name, value in self.headers)
            return f"malformed {'chunked ' if chunked else ''}body ({reason})"
        if not self.status_read and not (self.interim == 0
                                         and _STATUS_LINE.match(self.head_start)):
            if self.interim:  # where the real answer began is not known
                return f"malformed status line ({reason})"
            line = self.head_start.split(b"\n", 1)[0].rstrip(b"\r")
            return f"malformed status line {_quoted(line)}"
        return f"malformed header ({reason})"

    def _length_known(self) -> bool:
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == "content-length":
                return True
            if lowered == "transfer-encoding" and "chunked" in value.lower():
                return True
        # Statuses that never carry a body end at the headers; llhttp completes those itself.
        return False

    async def wait(self, until_headers: bool) -> None:
        """Wait for the headers (or, after them, more body or its end), a failure or silence."""
        while True:
            if self.error is not None:
                raise self.error
            if self.headers_done if until_headers else (self.complete or self.body):
                return
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def take_body(self) -> list[bytes]:
        chunks, self.body, self.buffered = self.body, [], 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return chunks

    def finished_cleanly(self) -> bool:
        """The response ended and the connection may carry another one."""
        return (
            self.complete
            and self.error is None
            and not self.extra
            and self.keep_alive
            and self.usable()
        )

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.closed = True


@dataclass
class LeanResponse:
    """A response whose headers have arrived; read the body with :meth:`chunks`, then
    :meth:`release` (always, also on failure: it pools or closes the connection)."""

    status: int
    url: str
    headers: CIMultiDictProxy[str]
    _conn: _Conn
    _client: LeanClient

    async def chunks(self) -> list[bytes]:
        """The next body pieces as they arrive; an empty list at the end of the body."""
        conn = self._conn
        while True:
            if conn.body:
                return conn.take_body()
            if conn.complete:
                return []
            await conn.wait(until_headers=False)

    def release(self) -> None:
        self._client._release(self._conn)


class _Host:
    """Connections to one (scheme, host, port): the idle ones, how many are in use and the
    requests waiting for one (also, without idle ones, the client's limit on all hosts);
    ``strays``: the host once sent bytes nobody asked for, and its connections carry one
    request each. ``later`` waits behind ``waiters``: the requests of sources that did not
    answer their last poll, so that a host's hanging feeds do not keep its healthy ones
    waiting for the connections they hold."""

    __slots__ = ("active", "idle", "later", "strays", "waiters")

    def __init__(self) -> None:
        self.idle: list[_Conn] = []
        self.active = 0
        self.strays = False
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.later: collections.deque[asyncio.Future[None]] = collections.deque()


def _not_timed(why: str) -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext()


class LeanClient:
    """A keep-alive pool of HTTP/1.1 connections for plain GETs (see the module docstring)."""

    def __init__(
        self,
        resolver: AbstractResolver,
        *,
        per_host: int = 4,
        limit: int = 100,
        max_idle: int = 100,
        keepalive: float = 15.0,
    ) -> None:
        self._resolver = resolver
        self.per_host = per_host
        # Connections in use at once, all hosts together (aiohttp's default too): thousands of
        # slow feeds polled together must not run out of file descriptors.
        self.limit = limit
        self._all = _Host()
        self.max_idle = max_idle
        self.keepalive = keepalive
        self._hosts: dict[tuple[str, str, int], _Host] = {}
        self._idle: collections.OrderedDict[_Conn, None] = collections.OrderedDict()
        self._ssl: ssl.SSLContext | None = None
        self._closed = False
        # Connections waiting for bytes, looked at by one timer every quarter of the read
        # timeout (a timer per request would cost every poll a timer of its own).
        self._reading: set[_Conn] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    @property
    def idle_connections(self) -> int:
        return len(self._idle)

    async def get(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        allowed: tuple[IPNetwork, ...],
        connect_timeout: float,
        read_timeout: float,
        queued: Callable[[str], contextlib.AbstractContextManager[None]] | None = None,
        later: bool = False,
    ) -> LeanResponse:
        """Send a GET for ``url`` and return once the response headers have arrived.

        A wait for a free connection slot runs inside ``queued(why)`` (``why`` names what
        holds the slots), for the caller to keep it apart from the request's own time. A
        request ``later`` is handed a slot after those waiting that are not.

        Raises FetchBlockedError (refused address), TimeoutError (connect or read),
        ssl.SSLCertVerificationError, ConnectFailedError, DisconnectedError (closed before
        answering) and ResponseCutError (malformed response); what the resolver raises passes
        through.
        """
        if self._closed:
            raise SourceError("fetcher is closed")
        target = _target(url)
        request = _request(target, headers)
        host = self._hosts.get(target.key)
        if host is None:
            host = self._hosts[target.key] = _Host()
        # Free slots are taken here, without a coroutine each: the common case by far.
        everyone = self._all
        if everyone.active < self.limit and not everyone.waiters and not everyone.later:
            everyone.active += 1
        else:
            with (queued or _not_timed)(f"a connection: all {self.limit} are in use"):
                await self._acquire(everyone, self.limit, later)
        try:
            if host.active < self.per_host and not host.waiters and not host.later:
                host.active += 1
            else:
                with (queued or _not_timed)(f"a connection to {target.host}: its other feeds "
                                            f"hold all {self.per_host}"):
                    await self._acquire(host, self.per_host, later)
        except BaseException:
            self._leave_host(everyone, self.limit)
            raise
        try:
            conn = self._pooled(host, allowed)
            for attempt in (0, 1):
                if conn is None:
                    conn = await self._connect(target, host, allowed, connect_timeout)
                reused = conn.reused
                try:
                    conn.start(request, read_timeout)
                    self._watch(conn)
                    await conn.wait(until_headers=True)
                except DisconnectedError:
                    conn.close()
                    if reused and attempt == 0 and not conn.got_bytes:
                        conn = None  # the server dropped it while idle: once more, fresh
                        continue
                    raise
                except BaseException:
                    conn.close()
                    raise
                break
        except BaseException:
            self._leave(host)
            raise
        assert conn is not None
        return LeanResponse(
            conn.status,
            target.final,
            CIMultiDictProxy(CIMultiDict(conn.headers)),
            conn,
            self,
        )

    def _watch(self, conn: _Conn) -> None:
        self._reading.add(conn)
        if self._sweeper is None:
            self._sweeper = conn.loop.call_later(conn.read_timeout / 4, self._sweep)

    def _sweep(self) -> None:
        """Time out every connection silent for its read timeout: a timeout fires between one
        and one and a quarter read timeouts after the last byte."""
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        shortest = None
        for conn in list(self._reading):
            if not conn.waiting():
                self._reading.discard(conn)
            elif now - conn.last >= conn.read_timeout:
                self._reading.discard(conn)
                conn.time_out()
            elif shortest is None or conn.read_timeout < shortest:
                shortest = conn.read_timeout
        if shortest is not None:
            self._sweeper = asyncio.get_running_loop().call_later(shortest / 4, self._sweep)

    async def _acquire(self, host: _Host, limit: int, later: bool = False) -> None:
        """Wait for one of ``host``'s ``limit`` slots (``later``: behind the others)."""
        if host.active < limit and not host.waiters and not host.later:
            host.active += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        queue = host.later if later else host.waiters
        queue.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._leave_host(host, limit)  # handed a slot, then cancelled: pass it on
            elif waiter in queue:  # a release may have passed over it already
                queue.remove(waiter)
            raise

    def _leave(self, host: _Host) -> None:
        self._leave_host(host, self.per_host)
        self._leave_host(self._all, self.limit)

    def _leave_host(self, host: _Host, limit: int) -> None:
        host.active -= 1
        self._handoff(host, limit)

    def _handoff(self, host: _Host, limit: int) -> None:
        while (host.waiters or host.later) and host.active < limit:
            waiter = (host.waiters or host.later).popleft()
            if not waiter.done():
                host.active += 1
                waiter.set_result(None)

    def _pooled(self, host: _Host, allowed: tuple[IPNetwork, ...]) -> _Conn | None:
        now = asyncio.get_running_loop().time()
        while host.idle:
            conn = host.idle.pop()
            self._idle.pop(conn, None)
            if (not conn.usable() or now - conn.idle_since > self.keepalive or host.strays
                    or not conn.quiet()):
                conn.close()
                continue
            if conn.passed is not allowed:
                # The allowlist is this call's: a connection opened for another call is checked
                # again before it carries this one (the same allowlist object, the fetcher's
                # own, needs no second look at the same peer).
                conn.admit(allowed)
            conn.reused = True
            return conn
        return None

    async def _connect(
        self, target: _Target, host: _Host, allowed: tuple[IPNetwork, ...], limit: float
    ) -> _Conn:
        check_host(target.host, allowed)
        if target.address is not None:
            family = socket.AF_INET6 if ":" in target.address else socket.AF_INET
            addresses = [(target.address, target.port, int(family))]
        else:
            try:
                with allowing(allowed):  # the resolver reads the call's allowlist from here
                    found = await self._resolver.resolve(target.host, target.port,
                                                         socket.AF_UNSPEC)
            except OSError as exc:
                raise ConnectFailedError(exc) from None
            addresses = [(r["host"], r["port"], int(r["family"])) for r in found]
        loop = asyncio.get_running_loop()
        context = self._context() if target.tls else None
        last: OSError | None = None
        for address, port, fam in addresses:
            try:
                async with asyncio.timeout(limit):
                    _, conn = await loop.create_connection(
                        functools.partial(_Conn, loop, target.key, host),
                        address,
                        port,
                        family=fam,
                        ssl=context,
                        server_hostname=target.host if context is not None else None,
                    )
            except ssl.SSLCertVerificationError:
                raise
            except OSError as exc:
                last = exc
                continue
            transport = conn.transport
            peer = transport.get_extra_info("peername") if transport is not None else None
            if not peer:
                conn.close()
                raise FetchBlockedError("refused connection: the peer address is unknown")
            conn.peer = str(peer[0])
            conn.admit(allowed)
            return conn
        if isinstance(last, TimeoutError):
            raise last
        raise ConnectFailedError(last or OSError("no addresses to connect to"))

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    def _release(self, conn: _Conn) -> None:
        host = self._hosts.get(conn.key)
        if conn.finished_cleanly() and not self._closed and not conn.host.strays:
            conn.parser = None
            conn.idle_since = asyncio.get_running_loop().time()
            if host is not None:
                host.idle.append(conn)
                self._idle[conn] = None
                while len(self._idle) > self.max_idle:
                    oldest, _ = self._idle.popitem(last=False)
                    owner = self._hosts.get(oldest.key)
                    if owner is not None and oldest in owner.idle:
                        owner.idle.remove(oldest)
                    oldest.close()
            else:
                conn.close()
        else:
            conn.close()
        if host is not None:
            self._leave(host)

    async def aclose(self) -> None:
        """Close every idle connection; connections in use close when released."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self._idle):
            conn.close()
        self._idle.clear()
        for host in self._hosts.values():
            host.idle.clear()
        await asyncio.sleep(0)  # let the transports run their close callbacks


def _quoted(raw: bytes) -> str:
    """Server bytes for an error message: quoted, cut to a few characters, anything not
    printable ASCII escaped (such messages go to logs, ``check`` and Discord notices)."""
    return f"'{printable(raw[:_QUOTED + 1].decode('ascii', 'backslashreplace'), _QUOTED)}'"


def _request(target: _Target, headers: Mapping[str, str]) -> bytes:
    lines = [f"GET {target.path} HTTP/1.1\r\nHost: {target.host_header}\r\n"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\x00" in value:
            raise SourceError(f"refused request: header {name} contains a line break")
        lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("utf-8", "surrogateescape")
