"""The one HTTP fetcher every network source uses.

It owns the rules that keep a hostile or broken server from hurting us: addresses are checked
before and after connecting (see ``_guard``), redirects are followed by hand so that every hop is
checked, the whole fetch has a deadline, and the body is decompressed here, chunk by chunk, so the
size cap counts the bytes we would actually hold (a gzip bomb stops at the cap, whatever
Content-Length said).

Two clients carry the hops, with the same checks, results and error messages (but for a response
that cannot be parsed: the lean client names what is wrong with it, aiohttp's path gives its
parser's reason): a fetcher that owns its connections uses the lean httptools client of ``_lean``
(far cheaper per request than aiohttp, and polling thousands of feeds a minute is mostly
requests); a fetcher given a session, an install without httptools, or ``NEWSWATCH_PURE=1`` uses
aiohttp. Either way names resolve through :class:`GuardedResolver` (with the caller's resolver
inside it, if one was given).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import ipaddress
import math
import os
import re
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_proto import ResponseHandler
from aiohttp.resolver import ThreadedResolver
from multidict import CIMultiDict, CIMultiDictProxy

from watchers.errors import FetchBlockedError, FetchQueuedError, SourceError
from watchers.sources._guard import (
    IPNetwork,
    allowing,
    blocked_reason,
    check_host,
    check_peer,
    check_url,
    current_allowlist,
    parse_networks,
)
from watchers.sources.base import ANSWERING, declares_body, printable

try:
    from watchers.sources import _lean
except ImportError:  # httptools is missing: every fetch takes the aiohttp path
    _lean = None  # type: ignore[assignment]
# A body that failed to decode, or (the lean client) was cut short or malformed: reported alike.
_BODY_ERRORS: tuple[type[Exception], ...] = (
    (SourceError, _lean.ResponseCutError) if _lean is not None else (SourceError,))

if TYPE_CHECKING:
    from aiohttp.client_reqrep import ClientRequest
    from aiohttp.connector import Connection
    from aiohttp.tracing import Trace

__all__ = [
    "DEFAULT_MAX_BYTES",
    "USER_AGENT",
    "FetchResult",
    "FetchTimeoutError",
    "Fetcher",
    "GuardedConnector",
    "GuardedResolver",
    "Timeouts",
]

USER_AGENT = "newswatch/0.1 (+https://github.com/newswatch)"
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
_PASSED_MAX = 65536  # URLs remembered as checked, per fetcher
_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


class FetchTimeoutError(SourceError):
    """A fetch ran out of time (connecting, waiting for bytes, or in total)."""

    kind = "timeout"


@dataclass(frozen=True)
class Timeouts:
    """Seconds. ``read`` is the longest silence between bytes; ``total`` bounds a whole fetch,
    redirects included, so a server that drips one byte at a time cannot hold us (it is
    checked every eighth of it, so a fetch stops between one and one and an eighth ``total``
    after it began). The waits for a free connection (a host's feeds share
    ``per_host`` of them) do not count in ``total``: those of one fetch are bounded by
    ``queue`` together, and running out of it is :class:`FetchQueuedError`, not a timeout."""

    total: float = 30.0
    connect: float = 10.0
    read: float = 15.0
    queue: float = 30.0


@dataclass(frozen=True)
class FetchResult:
    """One HTTP response, after redirects. ``body`` is decompressed and empty unless 2xx."""

    status: int
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    not_modified: bool = False

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")


RESERVED_TLDS = frozenset({"example", "invalid", "test", "localhost"})


class GuardedResolver(AbstractResolver):
    """A resolver that drops blocked addresses and refuses a name that leads only to them.

    Dropping (rather than failing on any blocked answer) keeps dual-stack names working; a name
    whose every answer is blocked raises FetchBlockedError, which aiohttp lets through unchanged.
    """

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner
        self._custom = inner is not None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        allowed = current_allowlist()
        check_host(host, allowed)
        tld = host.rstrip(".").lower().rsplit(".", 1)[-1]
        if not self._custom and tld in RESERVED_TLDS:
            if tld == "localhost":
                # RFC 6761: the loopback, answered here (check_host let it through: the
                # loopback is allowed), and only the addresses allowed of it.
                loops = [a for a in ("127.0.0.1", "::1")
                         if blocked_reason(ipaddress.ip_address(a), allowed) is None]
                return [ResolveResult(hostname=host, host=a, port=port,
                                      family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                                      proto=0, flags=socket.AI_NUMERICHOST) for a in loops]
            # RFC 2606/6761 names never resolve publicly: no query leaves the machine for them
            # (an injected resolver, e.g. a test's, still answers for them).
            raise OSError(f"{host} is a reserved name that never resolves")
        if self._inner is None:
            # Created lazily: ThreadedResolver wants a running loop.
            self._inner = ThreadedResolver()
        results = await self._inner.resolve(host, port, family)
        kept: list[ResolveResult] = []
        reasons: list[str] = []
        for result in results:
            try:
                ip = ipaddress.ip_address(result["host"].split("%", 1)[0])
            except ValueError:
                reasons.append(f"{result['host']!r} is not an address")
                continue
            reason = blocked_reason(ip, allowed)
            if reason is None:
                kept.append(result)
            else:
                reasons.append(f"{ip} is {reason}")
        if not kept:
            detail = "; ".join(dict.fromkeys(reasons)) or "no addresses"
            raise FetchBlockedError(f"refused connection: {host} resolves only to {detail}")
        return kept

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


# The start of an answer that never carries a body (RFC 9112 section 6.3), of an interim one
# (1xx, which the answer follows), and what may still become either: a read may end anywhere.
_BODYLESS_STATUS = re.compile(rb"HTTP/1\.[01] (?:204|304)(?:[ \r\n]|$)")
_INTERIM_STATUS = re.compile(rb"HTTP/1\.[01] 1[0-9][0-9](?:[ \r\n]|$)")
# The end of a head, however its lines end (llhttp takes a bare LF too).
_HEAD_END = re.compile(rb"\r?\n\r?\n")
# The longest head kept while waiting for the end of a bodyless answer's head (aiohttp's own
# limits: 8,190 bytes a line, 128 headers).
_HEAD_LIMIT = 128 * 8192
# Interim (1xx) answers read before a request's answer, as the lean client counts them.
_MAX_INTERIM = 10


class _InterimFlood(Exception):
    """More interim answers than :data:`_MAX_INTERIM` for one request."""


class _BodylessAnswers(ResponseHandler):
    """aiohttp's response protocol, but bytes that follow the head of a 204 or 304 answer are
    dropped rather than parsed: some servers send a body after a 304 anyway, and aiohttp read it
    as the next answer's status line, failing the 304 itself ("Bad status line"). A connection
    that carried such bytes, or such an answer declaring a body (see ``declares_body``: the
    body may come later, as the next request's answer), is not reused. Only bytes that begin an
    answer are looked at (interim 1xx answers before it passed over), never a body's. (A
    session the caller gives the fetcher keeps its own connector and protocol.)"""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self._bodyless_head: bytes | None = None  # a bodyless answer's head, while incomplete
        self._status_start = b""  # a read that ended inside the status line, kept to look at
        self.on_stray: Callable[[], None] | None = None  # told of bytes nobody asked for
        self._answered = False  # the request in hand has had its (final) answer
        self._interim = 0  # interim answers to the request in hand

    def set_response_params(self, *args: Any, **kwargs: Any) -> None:
        self._answered = False  # a request is sent: one answer is expected
        self._interim = 0
        super().set_response_params(*args, **kwargs)

    def feed_data(self, data: Any, size: int = 0) -> None:
        # Each answer parsed, interim ones (1xx) passed over as ClientResponse does. A second
        # one for one request was sent unasked: it was taken for that request's answer (a
        # feed's body filed under another's), or will be for the next request's.
        code = getattr(data[0], "code", 0) if isinstance(data, tuple) and data else 0
        if 100 <= code < 200 and code != 101 and not self._answered:
            # 100 Continue after 100 Continue held the fetch to its deadline (aiohttp reads
            # them without end); refused after as many as the lean client takes.
            self._interim += 1
            if self._interim > _MAX_INTERIM:
                if self._interim == _MAX_INTERIM + 1:
                    self.set_exception(_InterimFlood(
                        f"the server sent more than {_MAX_INTERIM} interim (1xx) responses"))
                    if self.transport is not None:
                        self.transport.close()
                return
        if not 100 <= code < 200:
            if self._answered:
                self._should_close = True
                if self.on_stray is not None:
                    self.on_stray()
            self._answered = True
        super().feed_data(data, size)

    def data_received(self, data: bytes) -> None:
        if data and (self._bodyless_head is not None or self._status_start
                     or self._payload is None or self._payload.is_eof()):
            data = self._cut(data)
        super().data_received(data)

    def _cut(self, data: bytes) -> bytes:
        """``data`` without what follows a bodyless answer's head in it (nothing else cut)."""
        head = self._bodyless_head
        if head is None:
            # Where this answer's head may start: after the interim answers whole in this read.
            earlier = self._status_start
            self._status_start = b""
            seen = earlier + data
            pos = 0
            while not _BODYLESS_STATUS.match(seen, pos):
                if _inside_status_line(seen[pos:]):  # the read ended inside the status line
                    self._status_start = seen[pos:]
                    return data
                if not _INTERIM_STATUS.match(seen, pos):
                    return data
                end = _HEAD_END.search(seen, pos)
                if end is None:  # an interim answer cut off: not looked at further
                    return data
                pos = end.end()
            start = pos - len(earlier)  # where the bodyless head starts in ``data``
            if start < 0:  # in the bytes kept from the read before
                head, part = earlier[pos:], data
            else:
                head, part = b"", data[start:]
        else:
            start, part = 0, data
        seen = head + part
        end = _HEAD_END.search(seen)
        if end is None:
            self._bodyless_head = seen if len(seen) < _HEAD_LIMIT else None
            return data
        self._bodyless_head = None
        cut = max(start, 0) + end.end() - len(head)
        if cut < len(data) and data[cut:].strip(b"\r\n"):
            self._should_close = True
            if self.on_stray is not None:
                self.on_stray()
        elif _head_declares_body(seen[:end.end()]):
            self._should_close = True
        return data[:cut]


def _inside_status_line(rest: bytes) -> bool:
    """Whether ``rest`` may be the start of a status line that a read cut before its code."""
    template = b"HTTP/1.0 000"
    if not rest or len(rest) >= len(template):
        return False
    for got, want in zip(rest, template, strict=False):
        if want == ord("0"):
            if not 48 <= got <= 57:
                return False
        elif got != want:
            return False
    return True


def _head_declares_body(head: bytes) -> bool:
    fields = []
    for line in head.split(b"\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon:
            fields.append((name.decode("latin-1").strip(), value.decode("latin-1")))
    return declares_body(fields)


class GuardedConnector(aiohttp.TCPConnector):
    """A TCP connector that resolves through :class:`GuardedResolver` and checks the peer.

    The peer check runs on every connection handed out, pooled ones included, before any request
    byte is written; the DNS cache is off so each request's allowlist sees a fresh answer. Its
    connections drop the bytes a server sends after a 204 or 304 (see
    :class:`_BodylessAnswers`). A host that once sent bytes nobody asked for (after a 204 or
    304, or on an idle connection) gets a connection per request from then on, as the lean
    client does: such bytes may also come after the next request is written, where nothing
    tells them from its answer, and one feed's body would be read as another's.
    """

    def __init__(self, *, resolver: AbstractResolver | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("limit_per_host", 4)
        super().__init__(resolver=GuardedResolver(resolver), use_dns_cache=False, **kwargs)
        self._factory = functools.partial(_BodylessAnswers, loop=self._loop)  # type: ignore[assignment]
        self._stray_hosts: set[tuple[str, int | None, bool]] = set()

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 - aiohttp's own signature
    ) -> Connection:
        # aiohttp skips the resolver for address literals, so check those before dialling.
        check_host(req.url.raw_host or "", current_allowlist())
        host = (req.url.raw_host or "", req.url.port, req.is_ssl())
        conn = await super().connect(req, traces, timeout)
        for _ in range(8):
            protocol = conn.protocol
            if protocol is None or not protocol.should_close:
                break
            # A pooled connection the server sent bytes on while it was idle: read as the next
            # answer, they shifted every later answer on it by one (one feed's items filed
            # under another's). Dropped for a fresh one, as the lean client drops it.
            self._stray_hosts.add(host)
            conn.close()
            conn = await super().connect(req, traces, timeout)
        protocol = conn.protocol
        if isinstance(protocol, _BodylessAnswers):
            protocol.on_stray = functools.partial(self._stray_hosts.add, host)
            if host in self._stray_hosts:
                protocol.force_close()  # one request, then closed
        transport = conn.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        if not peer:
            conn.close()
            raise FetchBlockedError("refused connection: the peer address is unknown")
        try:
            check_peer(str(peer[0]), current_allowlist())
        except FetchBlockedError:
            conn.close()
            raise
        return conn


class _Decoder:
    """Decompresses a Content-Encoding stream without ever producing more than ``limit`` bytes."""

    def __init__(self, encoding: str, limit: int) -> None:
        self._limit = limit
        self.size = 0
        self._raw = False
        self._z: Any = None
        codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        if len(codings) > 1:
            raise SourceError(f"unsupported Content-Encoding {encoding!r} (stacked codings)")
        self._coding = codings[0] if codings else ""
        if self._coding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self._coding == "deflate":
            self._z = None  # zlib or raw deflate: decided on the first bytes
        elif self._coding:
            raise SourceError(f"unsupported Content-Encoding {encoding!r}")

    def _take(self, data: bytes) -> bytes:
        self.size += len(data)
        if self.size > self._limit:
            raise FetchBlockedError(f"response body exceeds {self._limit} bytes")
        return data

    def feed(self, data: bytes) -> bytes:
        if not self._coding:
            return self._take(data)
        if self._z is None:
            # "deflate" is meant to be zlib-wrapped, but many servers send raw deflate.
            raw = bool(data) and (data[0] & 0x0F) != 8
            self._z = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
        out: list[bytes] = []
        try:
            while data:
                room = self._limit - self.size + 1
                piece = self._z.decompress(data, room)
                out.append(self._take(piece))
                data = self._z.unconsumed_tail
                if self._z.eof and self._coding != "deflate":
                    # gzip allows several members one after another (what `cat a.gz b.gz`
                    # makes); bytes after the last that start no member are ignored, as gzip
                    # does with trailing padding.
                    rest = self._z.unused_data
                    if rest.startswith(b"\x1f\x8b"):
                        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
                        data = rest
                        continue
                if not piece and not data:
                    break
        except zlib.error:
            raise SourceError(f"corrupt {self._coding} response body") from None
        return b"".join(out)

    def flush(self) -> bytes:
        if self._z is None:
            return b""
        try:
            tail = self._take(self._z.flush(self._limit - self.size + 1))
        except zlib.error:
            raise SourceError(f"corrupt {self._coding} response body") from None
        if not self._z.eof:
            # The stream stopped before its end: a body cut short (with a Content-Length that
            # matched what was sent) would otherwise pass as a feed missing its last items.
            raise SourceError(f"truncated {self._coding} response body")
        return tail


class Fetcher:
    """Fetches URLs with conditional GET, hop-by-hop checked redirects, deadlines and a size cap.

    Use ``async with Fetcher() as fetcher`` (or call :meth:`aclose`). Without a ``session`` the
    fetcher builds and owns one on a :class:`GuardedConnector`. A given session is used as is and
    not closed; give it a :class:`GuardedConnector` too, or addresses are checked only before
    connecting (URL literals) — names would be dialled before being refused.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        allow_private: Iterable[str | IPNetwork] = (),
        timeouts: Timeouts | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_redirects: int = 5,
        user_agent: str = USER_AGENT,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self._session = session
        self._owns_session = session is None
        self._allowed = parse_networks(allow_private)
        self.timeouts = timeouts or Timeouts()
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.user_agent = user_agent
        self._resolver = resolver
        self._closed = False
        # The lean client serves only a fetcher that owns its connections; a caller's session
        # keeps its own connector (and its own policy) for every hop.
        pure = os.environ.get("NEWSWATCH_PURE", "") not in ("", "0")
        self._lean_wanted = session is None and _lean is not None and not pure
        self._lean: _lean.LeanClient | None = None
        self._deadlines = _Deadlines()
        # URLs already found fetchable under the fetcher's own allowlist: a feed's URL is
        # checked on every poll, and the verdict depends only on the two.
        self._passed: set[str] = set()

    @property
    def client(self) -> str:
        """Which HTTP client makes this fetcher's requests: ``"lean"`` or ``"aiohttp"``."""
        return "lean" if self._lean_wanted else "aiohttp"

    @property
    def allow_private(self) -> tuple[IPNetwork, ...]:
        """The networks this fetcher lets through for every request."""
        return self._allowed

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session if this fetcher created it, and every pooled connection."""
        self._closed = True
        if self._lean is not None:
            lean, self._lean = self._lean, None
            await lean.aclose()
        if self._owns_session and self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise SourceError("fetcher is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=GuardedConnector(resolver=self._resolver),
                auto_decompress=False,
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                trace_configs=[_queue_trace()],
            )
        return self._session

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        allow_private: Iterable[str | IPNetwork] = (),
    ) -> FetchResult:
        """GET ``url``. Any status is returned (body only for 2xx); failures raise SourceError.

        ``allow_private`` adds networks to the fetcher's own allowlist for this call only.
        """
        if allow_private:
            allowed = self._allowed + parse_networks(allow_private)
            check_url(url, allowed)
        else:
            allowed = self._allowed
            if url not in self._passed:
                check_url(url, allowed)
                if len(self._passed) >= _PASSED_MAX:
                    self._passed.clear()
                self._passed.add(url)
        if self._closed:
            raise SourceError("fetcher is closed")
        headers = {
            "User-Agent": self.user_agent,
            "Accept": _ACCEPT,
            "Accept-Encoding": "gzip, deflate",
        }
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        deadline = self._deadlines.enter(self.timeouts.total, self.timeouts.queue)
        fetch = _FETCH.set((self._deadlines, deadline))
        try:
            return await self._follow(url, headers, allowed)
        except asyncio.CancelledError:
            if self._deadlines.leave(deadline):
                if deadline.queued is not None:
                    raise FetchQueuedError(
                        f"{deadline.hop or url}: waited {deadline.waited:.0f}s for "
                        f"{deadline.queued}"
                    ) from None
                raise FetchTimeoutError(
                    f"{url}: timed out (limit {self.timeouts.total:g}s for the whole fetch)"
                ) from None
            raise
        finally:
            _FETCH.reset(fetch)
            self._deadlines.leave(deadline)

    async def _follow(
        self, url: str, headers: dict[str, str], allowed: tuple[IPNetwork, ...]
    ) -> FetchResult:
        """Follow redirects by hand, checking every hop's URL, on whichever client this fetcher
        uses; a hop answers with the result or the URL it redirects to."""
        hop = self._lean_hop if self._lean_wanted else self._aiohttp_hop
        current = url
        status = 0  # of the redirect that led to ``current``
        for n in range(self.max_redirects + 1):
            fetch = _FETCH.get()
            if fetch is not None:
                fetch[1].hop = current
            try:
                if n:  # get() checked the first URL, against the same allowlist
                    check_url(current, allowed)
                found = await hop(current, headers, allowed)
            except FetchBlockedError as exc:
                if not n or not str(exc).startswith(_REFUSALS):
                    raise
                # It said only "refused URL: 169.254.169.254 is a cloud metadata address":
                # not which feed, nor that a redirect led there.
                reason = str(exc).removeprefix(_REFUSALS[0]).removeprefix(_REFUSALS[1])
                raise FetchBlockedError(f"{url}: redirect ({status}) to "
                                        f"{_clipped(current)} refused: {reason}") from None
            if isinstance(found, FetchResult):
                return found
            status, current = found
        raise FetchBlockedError(f"{url}: more than {self.max_redirects} redirects")

    def _timed_out(self, url: str) -> FetchTimeoutError:
        return FetchTimeoutError(
            f"{url}: timed out (connect {self.timeouts.connect:g}s, read {self.timeouts.read:g}s)"
        )

    async def _aiohttp_hop(
        self, current: str, headers: dict[str, str], allowed: tuple[IPNetwork, ...]
    ) -> FetchResult | tuple[int, str]:
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=self.timeouts.connect,
            sock_read=self.timeouts.read,
        )
        try:
            # The connector and its resolver read the allowlist from the context.
            with allowing(allowed):
                return await self._aiohttp_exchange(current, headers, timeout)
        except SourceError:
            raise
        except _InterimFlood as exc:
            raise SourceError(f"{current}: {exc}") from None
        except TimeoutError:
            raise self._timed_out(current) from None
        except aiohttp.InvalidURL as exc:
            raise FetchBlockedError(f"refused URL: {exc}") from None
        except aiohttp.ClientError as exc:
            raise SourceError(f"{current}: {_describe(exc)}") from None

    async def _aiohttp_exchange(
        self, current: str, headers: dict[str, str], limits: aiohttp.ClientTimeout
    ) -> FetchResult | tuple[int, str]:
        async with self._get_session().get(
            current,
            headers=headers,
            allow_redirects=False,
            auto_decompress=False,
            timeout=limits,
        ) as resp:
            if resp.status in _REDIRECTS:
                return _redirect(resp.status, str(resp.url), resp.headers, current)
            result_headers = _plain_headers(resp.headers)
            if resp.status == 304:
                return FetchResult(304, str(resp.url), result_headers, b"", not_modified=True)
            body = b""
            if 200 <= resp.status < 300:
                body = await self._read_body(resp, current)
            return FetchResult(resp.status, str(resp.url), result_headers, body)

    def _lean_client(self) -> _lean.LeanClient:
        if self._lean is None:
            self._lean = _lean.LeanClient(GuardedResolver(self._resolver))
        return self._lean

    async def _lean_hop(
        self, current: str, headers: dict[str, str], allowed: tuple[IPNetwork, ...]
    ) -> FetchResult | tuple[int, str]:
        """:meth:`_aiohttp_hop` on the lean client: the same results and messages (a response
        that cannot be parsed is named more closely)."""
        try:
            resp = await self._lean_client().get(
                current,
                headers,
                allowed=allowed,
                connect_timeout=self.timeouts.connect,
                read_timeout=self.timeouts.read,
                queued=_queued,
                later=not ANSWERING.get(),
            )
            try:
                status = resp.status
                if status in _REDIRECTS:
                    return _redirect(status, resp.url, resp.headers, current)
                if status == 304:
                    return FetchResult(304, resp.url, resp.headers, b"", not_modified=True)
                body = b""
                if 200 <= status < 300:
                    body = await self._read_lean_body(resp, current)
                return FetchResult(status, resp.url, resp.headers, body)
            finally:
                resp.release()
        except _lean.ResponseCutError as exc:
            raise SourceError(f"{current}: {exc}") from None
        except SourceError:
            raise
        except TimeoutError:
            raise self._timed_out(current) from None
        except ssl.SSLCertVerificationError:
            raise SourceError(f"{current}: TLS certificate could not be verified") from None
        except _lean.ConnectFailedError as exc:
            raise SourceError(f"{current}: {_could_not_connect(exc.os_error)}") from None
        except _lean.DisconnectedError:
            raise SourceError(f"{current}: server closed the connection") from None
        except OSError as exc:  # the connection broke while the body was being read
            raise SourceError(f"{current}: {_could_not_connect(exc)}") from None

    async def _read_lean_body(self, resp: _lean.LeanResponse, url: str) -> bytes:
        async def pieces() -> AsyncIterator[bytes]:
            while chunks := await resp.chunks():
                for chunk in chunks:
                    yield chunk

        return await self._decoded(pieces(), _content_length(resp.headers.get("Content-Length")),
                                   _codings(resp.headers), url)

    async def _read_body(self, resp: aiohttp.ClientResponse, url: str) -> bytes:
        return await self._decoded(resp.content.iter_chunked(_CHUNK), resp.content_length,
                                   _codings(resp.headers), url)

    async def _decoded(self, chunks: AsyncIterator[bytes], declared: int | None, encoding: str,
                       url: str) -> bytes:
        """A response body read chunk by chunk (either client's), decompressed under the cap."""
        if declared is not None and declared > self.max_bytes and not encoding:
            raise FetchBlockedError(
                f"{url}: response body exceeds {self.max_bytes} bytes (Content-Length {declared})"
            )
        try:
            decoder = _Decoder(encoding, self.max_bytes)
        except SourceError as exc:  # a coding it does not take: named with the URL
            raise SourceError(f"{url}: {exc}") from None
        parts: list[bytes] = []
        try:
            async for chunk in chunks:
                parts.append(decoder.feed(chunk))
            parts.append(decoder.flush())
        except FetchBlockedError as exc:
            raise FetchBlockedError(f"{url}: {exc}") from None
        except _BODY_ERRORS as exc:
            raise SourceError(f"{url}: {exc}") from None
        return b"".join(parts)


class _Deadline:
    """One fetch's deadline. While the fetch waits for a connection (``queued`` names what
    holds them) its total deadline stands still and ``queue_left`` bounds the waits instead."""

    __slots__ = ("cancelling", "expired", "hop", "left", "queue_left", "queued", "queued_at",
                 "step", "task", "waited", "when")

    def __init__(self, task: asyncio.Task[Any], when: float, step: float,
                 queue: float) -> None:
        self.task = task
        self.when = when
        self.step = step
        self.cancelling = task.cancelling()
        self.expired = False
        self.left = False
        self.hop: str | None = None
        self.queue_left = queue
        self.queued: str | None = None
        self.queued_at = 0.0
        self.waited = 0.0


class _Deadlines:
    """The total deadlines of the fetches in flight, looked at by one timer every eighth of the
    shortest of them, or of a shorter bound on their waits for a connection (a timer per fetch
    cost every poll a push onto the loop's timer heap and a cancellation). An expired fetch's
    task is cancelled, and the caller turns that cancellation into a timeout, as
    ``asyncio.timeout`` does (a cancellation from elsewhere stays one)."""

    def __init__(self) -> None:
        self._live: set[_Deadline] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._period = math.inf
        self._loop: asyncio.AbstractEventLoop | None = None

    def enter(self, seconds: float, queue: float = math.inf) -> _Deadline:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a fetch runs in a task")
        loop = task.get_loop()
        if loop is not self._loop:  # a new event loop: the old one's timer never fires
            self._live.clear()
            self._timer = None
            self._period = math.inf
            self._loop = loop
        # Looked at every eighth of the shorter bound: a wait for a connection bounded to 1 s
        # under a 20 s total was stopped after 2.5 s.
        deadline = _Deadline(task, loop.time() + seconds, min(seconds, queue) / 8, queue)
        self._live.add(deadline)
        if deadline.step < self._period:
            if self._timer is not None:
                self._timer.cancel()
            self._period = deadline.step
            self._timer = loop.call_later(deadline.step, self._sweep)
        return deadline

    @contextlib.contextmanager
    def queued(self, deadline: _Deadline, why: str) -> Iterator[None]:
        """A wait for a connection, kept out of ``deadline``'s total: the total is moved on
        by the wait, and the sweep holds the wait to what is left of the queue bound."""
        loop = deadline.task.get_loop()
        if deadline.queued is not None or deadline.left:
            yield
            return
        deadline.queued, deadline.queued_at = why, loop.time()
        try:
            yield
        finally:
            if not deadline.expired:
                spent = loop.time() - deadline.queued_at
                deadline.when += spent
                deadline.waited += spent
                deadline.queue_left -= spent
                deadline.queued = None

    def leave(self, deadline: _Deadline) -> bool:
        """Done with ``deadline`` (again: nothing). True, the first time only, when it expired
        and no one else cancelled the fetch: the caller reports a timeout."""
        if deadline.left:
            return False
        deadline.left = True
        self._live.discard(deadline)
        return deadline.expired and deadline.task.uncancel() <= deadline.cancelling

    def _sweep(self) -> None:
        self._timer = None
        self._period = math.inf
        loop = self._loop
        assert loop is not None
        now = loop.time()
        for deadline in list(self._live):
            if deadline.queued is not None:
                if now - deadline.queued_at < deadline.queue_left:
                    self._period = min(self._period, deadline.step)
                    continue
                deadline.waited += now - deadline.queued_at
                self._live.discard(deadline)
                deadline.expired = True
                deadline.task.cancel()
            elif deadline.when <= now:
                self._live.discard(deadline)
                deadline.expired = True
                deadline.task.cancel()
            else:
                self._period = min(self._period, deadline.step)
        if self._live:
            self._timer = loop.call_later(self._period, self._sweep)


# The fetch in flight in this task (its deadlines and deadline), for the waits for a
# connection in either client to stand its total deadline still.
_FETCH: contextvars.ContextVar[tuple[_Deadlines, _Deadline] | None] = contextvars.ContextVar(
    "_FETCH", default=None)


def _queued(why: str) -> contextlib.AbstractContextManager[None]:
    """A wait for a connection slot in this task's fetch (see :meth:`_Deadlines.queued`)."""
    fetch = _FETCH.get()
    if fetch is None:
        return contextlib.nullcontext()
    return fetch[0].queued(fetch[1], why)


def _queue_trace() -> aiohttp.TraceConfig:
    """aiohttp's connector queues a request when the host's (or all) connections are taken:
    that wait is kept out of the fetch's total as on the lean client."""
    trace = aiohttp.TraceConfig()

    async def start(session: aiohttp.ClientSession, ctx: Any, params: Any) -> None:
        fetch = _FETCH.get()
        if fetch is None:
            return
        connector = session.connector
        per_host = getattr(connector, "limit_per_host", 0)
        host = urlsplit(fetch[1].hop or "").hostname or "the host"
        why = (f"a connection to {host}: its other feeds hold all {per_host}" if per_host
               else "a connection: all are in use")
        ctx.wait = fetch[0].queued(fetch[1], why)
        ctx.wait.__enter__()

    async def end(session: aiohttp.ClientSession, ctx: Any, params: Any) -> None:
        wait = getattr(ctx, "wait", None)
        if wait is not None:
            ctx.wait = None
            wait.__exit__(None, None, None)

    trace.on_connection_queued_start.append(start)
    trace.on_connection_queued_end.append(end)
    return trace


# The longest redirect Location followed: the limit on a configured feed URL
# (watchers.sources.feed.MAX_URL) with room for a tracking query string.
MAX_REDIRECT_URL = 4000


# How the address checks begin what they refuse (a URL; a connection, for where a name led).
_REFUSALS = ("refused URL: ", "refused connection: ")


def _clipped(url: str, limit: int = 200) -> str:
    return url if len(url) <= limit else url[:limit] + "…"


# A header's bytes that are not UTF-8, as both clients decode them (surrogateescape).
_RAW_BYTES = re.compile("[\udc80-\udcff]+")


def _escaped_bytes(location: str) -> str:
    """``location`` with the bytes that are not UTF-8 percent-encoded, as browsers send them
    ("/caf\\xe9" → "/caf%E9"): kept as they came, the URL could not be followed, nor named in
    an error that could be stored (every source's state failed to save)."""
    if location.isascii():
        return location
    return _RAW_BYTES.sub(
        lambda m: "".join(f"%{ord(c) - 0xDC00:02X}" for c in m.group()), location)


def _redirect(status: int, url: str, headers: Mapping[str, str],
              current: str) -> tuple[int, str]:
    """A redirect answer's status and the URL it points to, resolved against the answer's own
    URL."""
    location = headers.get("Location")
    if not location:
        raise SourceError(f"{current}: HTTP {status} redirect without Location")
    location = _escaped_bytes(location.strip())
    if len(location) > MAX_REDIRECT_URL:
        # (each hop is remembered by the URL checks' caches: unbounded Locations would grow
        # them by megabytes a poll)
        raise SourceError(f"{current}: HTTP {status} redirect to a URL of {len(location):,} "
                          f"characters (limit {MAX_REDIRECT_URL:,})")
    try:
        return status, urljoin(url, location)
    except ValueError as exc:  # a malformed host, such as an unclosed IPv6 bracket
        raise SourceError(f"{current}: HTTP {status} redirect to an invalid URL "
                          f"{location[:200]!r} ({exc})") from None


def _plain_headers(headers: CIMultiDictProxy[str]) -> CIMultiDictProxy[str]:
    # A case-insensitive copy that outlives the response.
    return CIMultiDictProxy(CIMultiDict(headers))


def _codings(headers: CIMultiDictProxy[str]) -> str:
    """The response's Content-Encoding as one list: a header sent on two lines is one list of
    codings (RFC 9110, 5.3), and the first line alone left a gzip body undecoded, which then
    read as "not a feed"."""
    return ", ".join(headers.getall("Content-Encoding", []))


def _content_length(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _could_not_connect(os_error: OSError) -> str:
    why = os_error.strerror or (str(os_error) if os_error.args else "")
    return f"could not connect ({why or type(os_error).__name__})"


def _describe(exc: aiohttp.ClientError) -> str:
    """A one-line reason that names the failure, never the response body."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "TLS certificate could not be verified"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _could_not_connect(exc.os_error)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server closed the connection"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "response body was cut off or malformed"
    if isinstance(exc, aiohttp.ClientResponseError):
        # The parser's reason is its message's first line (the rest repeats the server's
        # bytes), cut and escaped: it may quote them too.
        reason = exc.message.split("\n", 1)[0].strip().rstrip(":") if exc.message else ""
        return f"bad HTTP response ({exc.status}{': ' + printable(reason, 80) if reason else ''})"
    return f"HTTP client error ({type(exc).__name__})"
