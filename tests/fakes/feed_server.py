"""An in-process feed server on 127.0.0.1, plus raw TCP listeners for the hostile cases.

``FeedServer`` serves whatever each path is set to (``Route``): a body with validators (ETag,
Last-Modified → 304), a status with headers, a delay, a byte-at-a-time drip, a gzip or deflate
body (optionally hiding its length behind chunked encoding), or redirects. Every request is
recorded, so tests can assert what the client sent.

``Canary`` counts connections and must usually see none; ``Tarpit`` accepts and never answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import zlib
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from aiohttp import web

__all__ = ["Canary", "FeedServer", "GatedFeedServer", "Recorded", "Route", "Tarpit", "rss"]


def rss(*items: tuple[str, str]) -> bytes:
    """An RSS document of (guid, title) items, each with a description and a date."""
    body = "".join(
        f"<item><title>{t}</title><link>http://example.org/{g}</link><guid>{g}</guid>"
        f"<description>{t}: the story in full.</description>"
        "<pubDate>Mon, 24 Jan 2022 10:00:00 GMT</pubDate></item>" for g, t in items)
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>{body}'
            "</channel></rss>").encode()


@dataclass
class Route:
    """How one path answers. ``body`` is sent as is unless ``encoding`` compresses it first."""

    body: bytes = b""
    status: int = 200
    content_type: str | None = "application/rss+xml; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0  # before the status line
    drip: float | None = None  # seconds between single bytes of the body
    encoding: str | None = None  # "gzip" or "deflate": compress ``body`` and say so
    chunked: bool = False  # send without Content-Length
    location: str | None = None  # for redirects


@dataclass(frozen=True)
class Recorded:
    path: str
    headers: dict[str, str]


class FeedServer:
    """``async with FeedServer() as server: server.set("/feed", Route(body=...))``."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Recorded] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def set(self, path: str, route: Route) -> Route:
        self.routes[path] = route
        return route

    def hits(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(Recorded(request.path, dict(request.headers)))
        route = self.routes.get(request.path)
        if route is None:
            return web.Response(status=404, text="no such route")
        if route.delay:
            await asyncio.sleep(route.delay)
        headers = dict(route.headers)
        if route.etag:
            headers["ETag"] = route.etag
        if route.last_modified:
            headers["Last-Modified"] = route.last_modified
        if route.location:
            headers["Location"] = route.location
        if route.status == 200 and self._not_modified(request, route):
            return web.Response(status=304, headers=headers)
        body = route.body
        if route.encoding == "gzip":
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        elif route.encoding == "deflate":
            body = zlib.compress(body)
            headers["Content-Encoding"] = "deflate"
        elif route.encoding:
            headers["Content-Encoding"] = route.encoding
        if route.content_type:
            headers["Content-Type"] = route.content_type
        response = web.StreamResponse(status=route.status, headers=headers)
        if route.chunked:
            response.enable_chunked_encoding()
        else:
            response.content_length = len(body)
        await response.prepare(request)
        if route.drip is not None:
            for i in range(len(body)):
                await response.write(body[i : i + 1])
                await asyncio.sleep(route.drip)
        else:
            step = 64 * 1024
            for i in range(0, len(body), step):
                await response.write(body[i : i + step])
        await response.write_eof()
        return response

    @staticmethod
    def _not_modified(request: web.Request, route: Route) -> bool:
        inm = request.headers.get("If-None-Match")
        if inm is not None and route.etag is not None:
            return inm == route.etag
        ims = request.headers.get("If-Modified-Since")
        return ims is not None and route.last_modified is not None and ims == route.last_modified



class GatedFeedServer(FeedServer):
    """A FeedServer that holds the requests of ``gated`` paths until ``together`` of them
    wait, then answers them all at once: two clients polling one feed get their answers at
    the same moment (so their polls overlap), whichever asked first. ``released`` is how many
    were waiting when the gate opened (fewer only when ``within`` seconds passed first),
    ``waiting`` how many wait now."""

    def __init__(self, gated: str, together: int = 2, within: float = 20.0) -> None:
        super().__init__()
        self.gated, self.together, self.within = gated, together, within
        self.released = self.waiting = 0
        self._open = asyncio.Event()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == self.gated and not self._open.is_set():
            self.waiting += 1
            if self.waiting >= self.together:
                self.released = self.waiting
                self._open.set()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._open.wait(), self.within)
                self.released = max(self.released, self.waiting)
            self.waiting -= 1
        return await super()._handle(request)

class _Listener:
    """A bare TCP listener on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self) -> None:
        self.connections = 0
        self.received = b""
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            server, self._server = self._server, None
            server.close()
            await server.wait_closed()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        with contextlib.suppress(ConnectionError):
            self.received += await reader.read(4096)


class Canary(_Listener):
    """A listener that nothing should ever reach; ``connections`` must stay 0."""


class Tarpit(_Listener):
    """Accepts connections, reads the request and never answers."""
