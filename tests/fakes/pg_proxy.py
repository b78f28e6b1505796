"""A network between a client and a PostgreSQL server that can fail on cue: a TCP listener on
127.0.0.1 forwarding each connection to the server's unix socket, which can be told to cut the
next new connections at their first statement — after the connection opened, before its first
answer — as a server restarting at that moment, or a network reset, would.

It reads just enough of the protocol to know where a statement starts: the untyped messages
before the start-up message (SSL or GSS requests, forwarded as they are) and the start-up
message itself, then typed messages (one type byte, a four-byte length).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from urllib.parse import parse_qsl, urlsplit

__all__ = ["PgProxy"]

_STARTUP = 196608  # protocol 3.0


class PgProxy:
    """``async with PgProxy(server_url) as proxy``: ``proxy.url(database)`` goes through it."""

    def __init__(self, server_url: str) -> None:
        query = dict(parse_qsl(urlsplit(server_url).query))
        self._socket = f"{query['host']}/.s.PGSQL.{query['port']}"
        self._server: asyncio.Server | None = None
        self._to_cut = 0
        self.cut = 0  # connections cut so far
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._pairs: dict[asyncio.StreamWriter, asyncio.StreamWriter] = {}  # client: server
        self._kept: list[asyncio.StreamWriter] = []  # server sides left open by part()

    async def __aenter__(self) -> PgProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in [*self._writers, *self._kept]:
            writer.transport.abort()  # each connection's task then ends by itself
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10)
        await self._server.wait_closed()

    def url(self, database: str) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        # sslmode=disable: the server's socket side speaks no SSL anyway
        return f"postgresql://postgres@127.0.0.1:{port}/{database}?sslmode=disable"

    def part(self) -> None:
        """Cut every open connection on the client's side only, as a network partition does
        where no FIN reaches the server: its sessions live on (holding their locks) until
        this proxy closes."""
        for client_w, server_w in list(self._pairs.items()):
            self._kept.append(server_w)
            client_w.transport.abort()

    def cut_next(self, count: int = 1) -> None:
        """Cut each of the next ``count`` connections opened at its first statement."""
        self._to_cut = count

    async def _serve(self, client_r: asyncio.StreamReader,
                     client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        doomed = self._to_cut > 0
        if doomed:
            self._to_cut -= 1
        try:
            server_r, server_w = await asyncio.open_unix_connection(self._socket)
        except OSError:
            client_w.close()
            self._tasks.discard(task)
            return
        self._writers |= {client_w, server_w}
        self._pairs[client_w] = server_w
        back = asyncio.ensure_future(self._pipe(server_r, client_w))
        try:
            await self._forward(client_r, server_w, doomed)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._pairs.pop(client_w, None)
            for w in (client_w, server_w):
                self._writers.discard(w)
                if w not in self._kept:
                    w.close()
            back.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await back
            self._tasks.discard(task)

    async def _forward(self, r: asyncio.StreamReader, w: asyncio.StreamWriter,
                       doomed: bool) -> None:
        while True:  # untyped messages: requests, then the start-up message
            head = await r.readexactly(8)
            length, code = struct.unpack("!II", head)
            w.write(head + await r.readexactly(length - 8))
            await w.drain()
            if code == _STARTUP:
                break
        while True:
            kind = await r.readexactly(1)
            if doomed and kind in (b"Q", b"P"):
                self.cut += 1
                transport = w.transport
                transport.abort()
                return
            size = await r.readexactly(4)
            (length,) = struct.unpack("!I", size)
            w.write(kind + size + await r.readexactly(length - 4))
            await w.drain()

    @staticmethod
    async def _pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        w.close()  # the server ended the session: so does the client's connection
