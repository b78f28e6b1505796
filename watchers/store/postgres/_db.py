"""One asyncpg pool per store, its transactions, the writer lock, and error translation.

Invariants every domain module relies on:

- Every statement runs on a connection of the store's pool; a write runs inside
  :meth:`Pg.tx` (one transaction, committed whole or rolled back). Reads outside a transaction
  see committed data only.
- Writes that decide from what they read (dedupe before insert, a story's outcome, a route's
  claim, an escalation) take a transaction-scoped advisory lock on what they decide about, so
  two writers — in this process or another — never decide from the same stale read. The locks
  are named in :data:`LOCKS`.
- Every asyncpg / connection error leaves here as one :class:`StoreError` line naming the
  database (host and database name; never the password).
- A writing store (``lock=True``) holds a session advisory lock on one dedicated connection
  for its lifetime, so a second process that would poll or deliver refuses to start instead of
  requeueing the first one's in-flight alerts, as with SQLite. The holder is found through its
  ``application_name``, which carries the client's pid.
- Several processes (see :mod:`watchers.roles`): a store also keeps, once asked for it, one
  dedicated *session* connection for its lifetime. Its identity (backend pid @ start time,
  unique on the server while it lives) marks the outbox rows this process claims, so another
  process can tell an interrupted claim (its session is gone: SIGKILL, crash, lost network)
  from one in flight; and it LISTENs for the NOTIFYs the schema's triggers send. When it drops
  it is reopened (a new identity: this process's claims then count as interrupted, which only
  costs a "maybe sent" check) and every listener is called once, since a notification may
  have been missed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import asyncpg  # type: ignore[import-untyped]  # no stubs (asyncpg-stubs is not a dependency)

from watchers._finish import finish
from watchers.errors import STORE_OUTAGE_LIMIT, StoreError, StoreUnavailableError
from watchers.urls import url_parts_problem

__all__ = ["LOCKS", "Listener", "Pg", "describe", "now"]

log = logging.getLogger(__name__)

# What a NOTIFY is handed to: (channel, payload); called on the event loop, must not block.
Listener = Callable[[str, str], None]
# The identity of a live session: SELECT it beside pg_stat_activity to tell whether it lives.
SESSION_ID = "format('%s@%s', a.pid, extract(epoch from a.backend_start))"

# Advisory lock keys (pg_advisory_*lock(int, int)): the first number is newswatch's, the second
# what is locked. Route claims lock (ROUTE_SPACE, hashtext(route)).
NEWSWATCH = int.from_bytes(b"nwsw", "big")  # fits a signed int4
LOCKS = {"writer": 1, "articles": 2, "schema": 3, "stories": 4}
ROUTE_SPACE = NEWSWATCH ^ 0x7F


def now() -> datetime:
    return datetime.now(UTC)


def describe(url: str) -> str:
    """The database a URL names, for messages: ``postgresql://host/db`` without credentials."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    host = parts.hostname or query.get("host") or "localhost"
    port = parts.port or query.get("port")
    db = parts.path.lstrip("/") or query.get("dbname") or "(default database)"
    return f"postgresql://{host}{f':{port}' if port else ''}/{db}"


def rowcount(status: str) -> int:
    """The row count of a command status such as ``UPDATE 3`` or ``INSERT 0 1``."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


async def _init(conn: asyncpg.Connection) -> None:
    # The binary codec reads times as aware UTC datetimes anyway; this keeps any text
    # rendering of them (errors, ad-hoc SQL in a session) in UTC too, whatever the server's zone.
    await conn.execute("SET TIME ZONE 'UTC'")


async def _released(conn: asyncpg.Connection) -> None:
    """What a connection goes through on its way back to the pool, beyond asyncpg's own
    rollback of a transaction left open: nothing. asyncpg's default reset (``RESET ALL``,
    ``UNLISTEN *``, ``pg_advisory_unlock_all()`` …) is a round trip on every release, a quarter
    of a poll worker's store time, and undoes nothing here: a pool connection never holds
    session state (locks are transaction-scoped, LISTEN and the writer lock have connections
    of their own), and the time zone ``_init`` sets is meant to last."""


class Pg:
    """The pool of one store, with its transactions, writer lock and error translation."""

    def __init__(self, pool: asyncpg.Pool, name: str, lock_conn: asyncpg.Connection | None,
                 *, readonly: bool) -> None:
        self.pool = pool
        self.name = name
        self.readonly = readonly
        self._lock_conn = lock_conn
        self._closed = False
        self._url = ""
        self._settings: dict[str, str] = {}
        self._session: asyncpg.Connection | None = None
        self._session_id: str | None = None
        self._session_lock = asyncio.Lock()
        self._listeners: list[tuple[str, Listener]] = []
        self._reconnect: asyncio.Task[None] | None = None
        self._lock_shared = False
        self._retaking: asyncio.Task[None] | None = None
        # Why this process may no longer write (its writer lock went to another process).
        self._writer_lost: str | None = None
        # Told once the writer lock is lost for good (see PostgresStore.on_writer_lost): a
        # process that never writes (the bot role) was not stopped by its next write.
        self.on_lost: Callable[[BaseException], None] | None = None
        self._retake_error: StoreError | None = None  # the last failed try to take it back
        self._locked = False  # holds a writer lock (exclusive or shared), or is taking it back
        # The server's pid of the session that took the writer lock: after a network cut the
        # server may keep that session (and the lock) alive for hours, and it is ours to end.
        self._lock_backend: int | None = None

    # ------------------------------------------------------------- opening and closing

    @classmethod
    async def connect(cls, url: str, *, lock: bool, readonly: bool,
                      min_size: int = 1, max_size: int = 10, shared: bool = False) -> Pg:
        problem = url_parts_problem(url)
        if problem is not None:
            # Read before anything else: urllib's ValueError (a library caller's, whose URL no
            # config check read) quoted a password holding '/' as the port.
            raise StoreError(f"cannot open the database: not a valid PostgreSQL URL ({problem})")
        name = describe(url)
        settings = {"application_name": f"newswatch pid {os.getpid()}"}
        if readonly:
            settings["default_transaction_read_only"] = "on"
        try:
            pool = await asyncpg.create_pool(
                url, min_size=min_size, max_size=max_size, init=_init, reset=_released,
                server_settings=settings, command_timeout=COMMAND_TIMEOUT,
                timeout=CONNECT_TIMEOUT, connection_class=_Connection)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError,
                ValueError) as exc:
            raise StoreError(f"cannot open the database {name}: {_detail(exc)}") from None
        db = cls(pool, name, None, readonly=readonly)
        db._url, db._settings = url, settings
        if (lock or shared) and not readonly:
            try:
                await db._take_writer_lock(url, settings, shared=not lock)
            except BaseException:
                await pool.close()
                raise
        return db

    async def _take_writer_lock(self, url: str, settings: dict[str, str], *,
                                shared: bool = False) -> None:
        """The writer lock: alone (``--role all``, imports, copies) or shared (role processes,
        any number together). Either refuses while the other kind is held, so a process that
        takes the store as its own never runs beside workers that share it."""
        try:
            conn = await asyncpg.connect(url, server_settings=settings, timeout=CONNECT_TIMEOUT)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise _not_opened(self.name, exc) from None
        try:
            how = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
            got = await conn.fetchval(f"SELECT {how}($1, $2)", NEWSWATCH, LOCKS["writer"])
            if not got:
                holders = await conn.fetch(
                    "SELECT a.application_name, l.mode, l.pid FROM pg_locks l "
                    "JOIN pg_stat_activity a "
                    "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.classid::int8 = $1 "
                    "AND l.objid::int8 = $2 AND l.objsubid = 2 AND l.granted "
                    # advisory locks are the cluster's: only this database's holders count
                    "AND l.database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database())",
                    NEWSWATCH, LOCKS["writer"])
                own = self._lock_backend
                if own is None or not any(h[2] == own for h in holders) or not (
                        await self._end_own_session(conn, how, own)):
                    raise self._held_by(holders, shared)
        except _DRIVER_ERRORS as exc:
            # The session was cut between connecting and asking (the server restarting):
            # the same try may succeed in a moment.
            _discard(conn)
            raise self.error(exc) from None
        except BaseException:
            await _close(conn)
            raise
        self._lock_conn, self._lock_shared = conn, shared
        self._locked = True
        self._lock_backend = conn.get_server_pid()
        conn.add_termination_listener(self._lock_lost)

    def _held_by(self, holders: Sequence[asyncpg.Record], shared: bool) -> StoreError:
        """Why the writer lock cannot be had, from its holders (application name, mode)."""
        pids = sorted({str(h[0]).rsplit(" ", 1)[-1] for h in holders if h[0]})
        pid = pids[0] if pids else "unknown"
        if not shared and any(h[1] == "ShareLock" for h in holders):
            return StoreError(
                f"newswatch role processes (pid {', '.join(pids)}) share {self.name}; "
                "stop them first (newswatch run can join them with --role; import, copy and "
                "migrate cannot)")
        if shared:
            return StoreError(
                f"a newswatch process (pid {pid}) runs {self.name} alone (--role all, "
                "or an import or copy); role processes cannot share the database with "
                "it: stop it first")
        if pid == str(os.getpid()):
            return StoreError(f"{self.name} is already open for writing in this process "
                              f"(pid {pid}); close that store first")
        return StoreError(
            f"another newswatch process (pid {pid}) is using {self.name}; stop it first "
            "(read-only commands such as search and check do not need to)")

    async def _end_own_session(self, conn: asyncpg.Connection, how: str, backend: int) -> bool:
        """Taking the writer lock back, found held by the session this store took it with
        (cut off from this process by the network, its server side alive: no FIN reached the
        server, which may keep it for hours): end that session and take the lock. Before,
        the process named itself as the holder ("already open for writing in this process"),
        stopped, and every restart was refused until the server noticed."""
        log.warning("the writer lock on %s is still held by this process's earlier session "
                    "(server pid %s), cut off from it; ending that session", self.name, backend)
        await conn.fetchval("SELECT pg_terminate_backend($1)", backend)
        for _ in range(50):  # the session ends (and lets go of the lock) in a moment
            if await conn.fetchval(f"SELECT {how}($1, $2)", NEWSWATCH, LOCKS["writer"]):
                return True
            await asyncio.sleep(0.1)
        return False

    def _lock_lost(self, conn: object) -> None:
        """The writer lock's session ended (a DBA's pg_terminate_backend, an idle timeout, a
        network reset): its advisory lock went with it, and a second writer could start beside
        this one. Take it back at once; if another process has it, stop writing."""
        if self._closed or conn is not self._lock_conn:
            return
        self._lock_conn = None
        log.warning("the session holding the writer lock on %s was lost; taking it again",
                    self.name)
        self._retaking = asyncio.get_running_loop().create_task(
            self._retake_lock(), name="newswatch-pg-writer-lock")

    async def _retake_lock(self) -> None:
        delay, started = 0.5, time.monotonic()
        while True:
            try:
                await self._take_writer_lock(self._url, self._settings,
                                             shared=self._lock_shared)
            except StoreError as exc:
                # The server restarting: try again for as long as the engine waits for the
                # store (the time each try's connect took counted too: sleeps alone stopped
                # every process after about 65 s of a 120 s limit). Another process holding
                # it: stop now.
                waited = time.monotonic() - started
                if isinstance(exc, StoreUnavailableError) and waited < STORE_OUTAGE_LIMIT:
                    self._retake_error = exc
                    await asyncio.sleep(min(delay, max(0.0, STORE_OUTAGE_LIMIT - waited)))
                    delay = min(delay * 2, 10)
                    continue
                if isinstance(exc, StoreUnavailableError):
                    self._writer_lost = (f"{self.name} could not be reached for {waited:.0f} s "
                                         f"to take the writer lock again ({exc}); stopping")
                else:
                    self._writer_lost = (f"the writer lock on {self.name} was lost and could "
                                         f"not be taken again ({exc}); stopping, so that no "
                                         "two processes write and send at once")
                if self.on_lost is not None:
                    self.on_lost(StoreError(self._writer_lost))  # the engine says it, once
                else:
                    log.error("%s", self._writer_lost)
            else:
                log.info("the writer lock on %s is held again", self.name)
            self._retake_error = None
            return

    def _check_writer(self) -> None:
        if self._closed:
            raise StoreError(f"the store {self.name} is closed (used after its engine or "
                             "store was closed)")
        if self._writer_lost is not None:
            raise StoreError(self._writer_lost)
        if self._locked and self._lock_conn is None:
            # Its session ended and the lock is being taken back: until then another process
            # could hold it, and nothing may be written.
            # Why it is not back yet, when a try failed (the server down: "cannot be reached").
            why = f": {self._retake_error}" if self._retake_error is not None else ""
            raise StoreUnavailableError(f"the writer lock on {self.name} is being taken again "
                                        f"after its session ended{why}")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # To its end: cut short by a cancellation (a timeout around the store's block, Ctrl-C),
        # the pool and the lock session stayed open, and closing again did nothing.
        await finish(self._close())

    async def _close(self) -> None:
        for task in (self._reconnect, self._retaking):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                except Exception:
                    # A reconnection that failed has been logged by its task; closing goes on.
                    log.exception("reconnecting to %s failed", self.name)
        # Every connection is closed, whatever happens to the others: a connection left open
        # would hold a server slot (and the lock session its lock) until collected.
        failed: BaseException | None = None
        for conn in (self._session, self._lock_conn):
            if conn is not None:
                try:
                    # Closing the lock session releases its advisory lock.
                    await conn.close(timeout=10)
                except _DRIVER_ERRORS as exc:
                    _discard(conn)
                    failed = failed or exc
        self._session = self._lock_conn = None
        try:
            await asyncio.wait_for(self.pool.close(), 30)
        except _DRIVER_ERRORS as exc:
            self.pool.terminate()
            failed = failed or exc
        if failed is not None and not unreachable(failed):
            raise self.error(failed) from None

    # ------------------------------------------------------------- the session

    async def session_id(self) -> str:
        """This store's session identity (opening the session on first use)."""
        async with self._session_lock:
            if self._session is None:
                await self._open_session()
            assert self._session_id is not None
            return self._session_id

    async def listen(self, channel: str, listener: Listener) -> None:
        """Call ``listener(channel, payload)`` for every NOTIFY on ``channel`` from now on."""
        async with self._session_lock:
            if self._session is None:
                await self._open_session()
            assert self._session is not None
            self._listeners.append((channel, listener))
            try:
                await self._session.add_listener(channel, self._dispatch)
            except _DRIVER_ERRORS as exc:
                raise self.error(exc) from None

    async def _open_session(self) -> None:
        if self._closed:
            raise StoreError(f"the store {self.name} is closed (used after its engine or "
                             "store was closed)")
        try:
            conn = await asyncpg.connect(self._url, server_settings=self._settings,
                                         timeout=CONNECT_TIMEOUT)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise _not_opened(self.name, exc) from None
        try:
            await _init(conn)
            ident = await conn.fetchval(
                f"SELECT {SESSION_ID} FROM pg_stat_activity a WHERE a.pid = pg_backend_pid()")
            for channel in dict.fromkeys(c for c, _ in self._listeners):
                await conn.add_listener(channel, self._dispatch)
        except _DRIVER_ERRORS as exc:
            _discard(conn)
            raise self.error(exc) from None
        except BaseException:
            await _close(conn)
            raise
        conn.add_termination_listener(self._lost)
        self._session, self._session_id = conn, str(ident)

    def _dispatch(self, conn: object, pid: int, channel: str, payload: str) -> None:
        for wanted, listener in list(self._listeners):
            if wanted == channel:
                try:
                    listener(channel, payload)
                except Exception:
                    log.exception("listener of %s failed", channel)

    def _lost(self, conn: object) -> None:
        if self._closed or conn is not self._session:
            return
        self._session = None
        log.warning("the session with %s was lost; reconnecting", self.name)
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = asyncio.get_running_loop().create_task(
                self._reopen(), name="newswatch-pg-session")

    async def _reopen(self) -> None:
        delay = 0.5
        while not self._closed:
            try:
                async with self._session_lock:
                    if self._session is None:
                        await self._open_session()
            except StoreError as exc:
                log.warning("%s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
                continue
            # Whatever was announced while the session was down is looked at now.
            for channel in dict.fromkeys(c for c, _ in self._listeners):
                self._dispatch(None, 0, channel, "")
            return

    # ------------------------------------------------------------- errors

    def error(self, exc: BaseException, what: str | None = None) -> StoreError:
        """The one-line StoreError for a driver error on this database: a
        :class:`StoreUnavailableError` when the server cannot be reached for now."""
        detail = _detail(exc)
        if self._closed:
            # A call still under way as the store closed: its pool or connection went from
            # under it (not the server out of reach, nor the call's own fault).
            return StoreError(f"the store {self.name} is closed (used after its engine or "
                              "store was closed)")
        if isinstance(exc, asyncpg.ReadOnlySQLTransactionError):
            return StoreError(f"the database {self.name} is open readonly; it cannot be "
                              f"written ({detail})")
        if isinstance(exc, TimeoutError):
            # The driver's limit on one statement (or on a pooled connection's reconnect):
            # "cannot be reached: TimeoutError" named nothing, and the server often was there,
            # a statement waiting on a lock (a long upgrade by another process, say).
            return StoreUnavailableError(
                f"the database {self.name} did not answer within {COMMAND_TIMEOUT} s (a "
                "statement waiting on a lock another session holds, such as another process's "
                "schema upgrade, or the server overloaded or out of reach)")
        if unreachable(exc):
            return StoreUnavailableError(f"the database {self.name} cannot be reached: {detail}")
        if isinstance(exc, _CANCELLED):
            # A statement_timeout or lock_timeout set on the server or its role ended a
            # statement: the same work may pass once the lock is gone. Stopping `run` at the
            # first one lost nothing but stopped delivery for good.
            return StoreUnavailableError(
                f"the database {self.name} cancelled a statement ({detail}): a timeout set on "
                "the server or its role")
        if what:
            return StoreError(f"{what}: {detail}")
        return StoreError(f"the database {self.name}: {detail}")

    # ------------------------------------------------------------- statements

    @asynccontextmanager
    async def tx(self, *locks: int) -> AsyncIterator[asyncpg.Connection]:
        """One write transaction, committed whole or rolled back; ``locks`` are keys of
        :data:`LOCKS` held until it ends."""
        self._check_writer()
        stopped: BaseException | None = None
        try:
            async with self.pool.acquire() as conn:
                try:
                    async with conn.transaction():
                        try:
                            for key in locks:
                                await conn.execute("SELECT pg_advisory_xact_lock($1, $2)",
                                                   NEWSWATCH, key)
                            yield conn
                        except _STOPS as exc:
                            # Cancelled (a stop, Ctrl-C), perhaps while a statement's rows were
                            # being sent: a rollback then waited for the rest of a statement
                            # the server was still reading, up to the driver's timeout twice,
                            # and ended in "did not answer". The connection is given up
                            # instead; the server rolls the transaction back as it goes.
                            stopped = exc
                            conn.terminate()
                            raise
                except _DRIVER_ERRORS as exc:
                    if stopped is None:
                        _drop_if_broken(conn, exc)
                    raise
        except _DRIVER_ERRORS as exc:
            if stopped is not None:
                raise stopped from None  # the rollback on the connection given up failed
            raise self.error(exc) from None

    async def lock_route(self, conn: asyncpg.Connection, route: str) -> None:
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", ROUTE_SPACE, route)

    @asynccontextmanager
    async def statement(self, what: str | None = None) -> AsyncIterator[asyncpg.Connection]:
        """A pool connection for one statement, which PostgreSQL runs as its own transaction
        (no BEGIN and COMMIT round trips); driver errors become StoreError."""
        if self._closed:
            raise StoreError(f"the store {self.name} is closed (used after its engine or "
                             "store was closed)")
        try:
            async with self.pool.acquire() as conn:
                try:
                    yield conn
                except _DRIVER_ERRORS as exc:
                    _drop_if_broken(conn, exc)
                    raise
        except _DRIVER_ERRORS as exc:
            raise self.error(exc, what) from None

    async def fetch(self, sql: str, *args: Any, what: str | None = None) -> list[asyncpg.Record]:
        async with self.statement(what) as conn:
            return list(await conn.fetch(sql, *args))

    async def fetchval(self, sql: str, *args: Any) -> Any:
        rows = await self.fetch(sql, *args)
        return rows[0][0] if rows else None

    async def execute(self, sql: str, *args: Any) -> int:
        """One statement, atomic on its own; returns the rows it changed."""
        self._check_writer()
        async with self.statement() as conn:
            return rowcount(await conn.execute(sql, *args))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self.tx() as conn:
            await conn.executemany(sql, rows)


# asyncpg.InternalClientError: a pooled connection the server ended mid-operation can be left
# in a state asyncpg refuses to use ("cannot switch to state 12; another operation is in
# progress"); it is dropped (see _drop_if_broken) and the operation counts as unreachable.
# Seconds one statement may take (asyncpg's command_timeout) before it counts as no answer.
COMMAND_TIMEOUT = 60
# Seconds to open a connection (the TCP connection, TLS and the server's greeting).
CONNECT_TIMEOUT = 30.0

class _Connection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg has no stubs
    """asyncpg's connection, whose ``executemany`` ends at once when cancelled.

    asyncpg sends an executemany's rows as they fit in the socket's buffer and, cancelled
    in the middle, asks the server to cancel the statement and waits for its answer; but the
    server is still reading the statement's rows, runs nothing to cancel, and never answers:
    a Ctrl-C during an import's batch then waited the driver's timeout (60 s), twice with the
    rollback. The connection is given up instead (the server rolls its transaction back as
    it goes), and the cancellation goes on."""

    async def executemany(self, command: str, args: Any, *,
                          timeout: float | None = None) -> None:  # noqa: ASYNC109  # asyncpg's
        sending = asyncio.ensure_future(super().executemany(command, args, timeout=timeout))
        # Its outcome is taken whatever becomes of this call: a second cancellation while it
        # ends left "Task exception was never retrieved" behind.
        sending.add_done_callback(_taken)
        try:
            await asyncio.shield(sending)
        except asyncio.CancelledError:
            self.terminate()
            # Its wait for room in the socket's buffer ends with the cancel, its connection
            # gone. What it raises is of no interest.
            sending.cancel()
            await asyncio.wait([sending])
            raise


def _taken(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


# What stops a transaction from outside: not an error of its own.
_STOPS = (asyncio.CancelledError, KeyboardInterrupt, SystemExit)
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError,
                  OSError, TimeoutError)

# The server is restarting, shutting down or gone, or the connection to it was lost: the same
# work may succeed once it is back (class 08 and the operator-intervention codes).
_UNREACHABLE = (asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
                asyncpg.AdminShutdownError, asyncpg.CrashShutdownError,
                asyncpg.InternalClientError, OSError, TimeoutError)


# A statement ended by the server's statement_timeout or lock_timeout (or an operator's
# pg_cancel_backend): the server is there, the same statement may pass later.
_CANCELLED = (asyncpg.QueryCanceledError, asyncpg.LockNotAvailableError)


def unreachable(exc: BaseException) -> bool:
    """Whether a driver error means the server cannot be reached for now (rather than a
    statement it refused)."""
    if isinstance(exc, _UNREACHABLE):
        return True
    # asyncpg's own word for an operation on a connection that has been closed under it
    return isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc)


class _OneLine(logging.Filter):
    """asyncpg's pool logs a server it cannot reach (while restoring its connections after a
    restart) with a traceback; this log says it in one line, as it says every store error."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and unreachable(exc):
            record.msg, record.args = f"{record.getMessage()}: {_detail(exc)}", ()
            record.exc_info = record.exc_text = None
        return True


logging.getLogger("asyncpg.pool").addFilter(_OneLine())


def _not_opened(name: str, exc: BaseException) -> StoreError:
    """The error for a connection that could not be opened: unavailable when the server cannot
    be reached for now (restarting, refusing connections), plain otherwise (a wrong password)."""
    cls = StoreUnavailableError if unreachable(exc) else StoreError
    return cls(f"cannot open the database {name}: {_detail(exc)}")


async def _close(conn: asyncpg.Connection) -> None:
    """Close a connection politely, or at once if it cannot be (it is broken)."""
    try:
        await conn.close(timeout=10)
    except _DRIVER_ERRORS:
        _discard(conn)


def _discard(conn: asyncpg.Connection) -> None:
    """Close a connection without a round trip (it may be broken): nothing is left open."""
    if not conn.is_closed():
        conn.terminate()


def _drop_if_broken(conn: asyncpg.Connection, exc: BaseException) -> None:
    """A connection that failed because the server went away is closed at once rather than
    handed back to the pool for the next caller to trip over."""
    if unreachable(exc):
        # asyncpg.InterfaceError: the pool took it back already (it saw the server go)
        with contextlib.suppress(asyncpg.InterfaceError):
            if not conn.is_closed():
                conn.terminate()


def _detail(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        # A server that takes the connection and never answers read "TimeoutError" alone.
        return f"no answer from the server within {CONNECT_TIMEOUT:g} s"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text

