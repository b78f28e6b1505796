"""One SQLite connection, its transactions, the process lock, and error translation.

Invariants every domain module relies on:

- One aiosqlite connection per store; an asyncio lock makes each transaction (and each read)
  whole, and every write runs as ``BEGIN IMMEDIATE`` so a second connection waits (up to 30 s,
  in the event loop, where a cancellation ends the wait) instead of failing half-way.
- Every ``sqlite3`` error leaves here as one :class:`StoreError` line naming the file; a
  malformed file is reported as corrupted, with what to do.
- A writing store holds an exclusive ``flock`` on ``<db>.lock`` (holding the pid) for its
  lifetime, so a second process that polls or delivers refuses to start instead of requeueing
  the first one's in-flight alerts. Readers take no lock (WAL lets them read beside a writer).
- Before each write transaction the path is checked to still name the file that was opened
  (device and inode): a database removed or replaced while running stops the writes with a
  clear error rather than writing on into an unlinked file. So is its ``-wal`` file: SQLite
  keeps it (checkpoints only empty or truncate it) while a connection is open in WAL mode, and
  one removed by hand left every commit in an unlinked file that a crash then lost.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import logging
import os
import re
import sqlite3
import stat
import struct
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiosqlite
from pydantic import BaseModel

from watchers._finish import finish
from watchers.errors import StoreCorruptError, StoreError, StoreGoneError

if TYPE_CHECKING:
    from watchers.store.base import OutboxEntry

__all__ = ["Db", "Tx", "all_rows", "batch_chunk", "dt", "dump_model", "insert_many", "iso", "now",
           "run_on"]

T = TypeVar("T")

BUSY_TIMEOUT_S = 30
# A write that has waited this long for another process's lock says so: the busy timeout's
# wait was half a minute of silence, then the error.
SAY_WAITING_AFTER_S = 2.0

log = logging.getLogger("watchers.store")
SQLITE_HEADER = b"SQLite format 3\x00"


# How times are stored: UTC, to the microsecond, so that text order is time order.
_STORED = "%Y-%m-%dT%H:%M:%S.%fZ"
_SHORT_YEAR = re.compile(r"(\d{1,3})(-\d\d-\d\dT.*)")


def iso(value: datetime | None) -> str | None:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC: the stored form, which sorts as time does."""
    if value is None:
        return None
    # isoformat pads the year to four digits, which strftime("%Y") does not on every platform
    # (glibc writes "999"): an unpadded year sorts after "2026" and SQLite's date functions
    # read it as NULL.
    if value.tzinfo is UTC:  # most times (a fifth less work: no conversion, no copy)
        return value.isoformat(timespec="microseconds")[:-6] + "Z"
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def dt(value: str | None) -> datetime | None:
    if not value:
        return None
    if len(value) == 27 and value[10] == "T" and value[19] == "." and value[-1] == "Z":
        # The stored form (see iso); fromisoformat reads it several times faster.
        with suppress(ValueError):
            return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)
    try:
        return datetime.strptime(value, _STORED).replace(tzinfo=UTC)
    except ValueError:
        # A year of fewer than four digits, as versions before 2026-12 stored years before 1000.
        short = _SHORT_YEAR.match(value)
        if short is None:
            raise
        return dt(f"{short[1].zfill(4)}{short[2]}")


def now() -> datetime:
    return datetime.now(UTC)


def _json_default(value: object) -> object:
    # Durations as seconds: the config's duration parser reads numbers, not ISO 8601.
    if isinstance(value, timedelta):
        return value.total_seconds()
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def rules_json(entries: Iterable[OutboxEntry]) -> list[str]:
    """Each outbox entry's rules as the outbox stores them: a JSON array of the rule models."""
    return ["[" + ", ".join(dump_model(r) for r in e.rules) + "]" for e in entries]


def surge_rules(model: BaseModel | None) -> str:
    """A surge row's rules as the outbox stores them: its rule's model, when given."""
    return "[]" if model is None else "[" + dump_model(model) + "]"


def dump_model(model: BaseModel, *, exclude: set[str] | None = None) -> str:
    """A config model as JSON that validates back into the same model."""
    return json.dumps(model.model_dump(mode="python", exclude=exclude), default=_json_default,
                      sort_keys=True)


# An INSERT whose values are one row of plain "?" placeholders, and what follows them (an
# upsert's ON CONFLICT clause, say, with no placeholder of its own: bound once per statement,
# it would not be bound per row).
_ONE_ROW = re.compile(r"(?is)(\s*INSERT\b.*?\bVALUES\s*)\((\s*\?\s*(?:,\s*\?\s*)*)\)([^?]*)")
# The most rows one statement inserts (a write batch's, mostly: a poll's or an import's).
ROWS_MAX = 4096
_MANY: dict[tuple[str, int], str | None] = {}


def _rows_sql(sql: str, rows: int) -> str | None:
    """``sql`` (a one-row INSERT of plain placeholders) made to insert ``rows`` rows, else
    None for a statement of another shape."""
    key = (sql, rows)
    got = _MANY.get(key, "")
    if got == "":
        m = _ONE_ROW.fullmatch(sql)
        row = "(" + ",".join("?" * m.group(2).count("?")) + ")" if m is not None else ""
        got = m.group(1) + ",".join([row] * rows) + m.group(3) if m is not None else None
        if len(_MANY) >= 256:
            _MANY.clear()
        _MANY[key] = got
    return got


def insert_many(conn: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """``conn.executemany(sql, rows)`` for an INSERT of one row of ``?`` placeholders, with
    the rows bound into one statement (of up to :data:`ROWS_MAX` rows and as many values as
    SQLite allows): SQLite inserts them in order, one after the other, as executemany does (a
    conflict clause or a trigger sees the rows before it). A statement of another shape runs
    as executemany.
    Each statement's step releases the interpreter lock once, where executemany released it
    for every row; and a thread that needs it back waits up to the switch interval (5 ms)
    while another thread runs Python, so a batch written beside a parsing thread (an import,
    a poll) took a row per 5 ms."""
    if len(rows) < 2:
        conn.executemany(sql, rows)
        return
    width = max(1, len(rows[0]))
    most = max(1, min(ROWS_MAX, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
    done = 0
    while done < len(rows):
        size = min(most, len(rows) - done)
        many = _rows_sql(sql, size) if size > 1 else None
        if many is None:
            conn.executemany(sql, rows[done:])
            return
        conn.execute(many, list(chain.from_iterable(rows[done:done + size])))
        done += size


def all_rows(conn: sqlite3.Connection, sql: str, params: Sequence[Any], columns: int
             ) -> list[Sequence[Any]]:
    """The rows of a read of ``columns`` columns of short text, integers and NULLs, read as
    one JSON array: a cursor's every row is a step of its own that releases the interpreter
    lock, and a thread that needs it back waits up to the switch interval while another
    thread runs Python. In no particular order. A value JSON cannot hold (a blob an outside
    tool stored) or rows too long for one value are read row by row instead; reals would come
    back to 15 digits, so no read of one comes here."""
    names = ",".join(f"c{i}" for i in range(columns))
    try:
        (got,) = conn.execute(
            f"WITH q({names}) AS ({sql}) SELECT json_group_array(json_array({names})) FROM q",
            params).fetchone()
    except (sqlite3.OperationalError, sqlite3.DataError):
        return conn.execute(sql, params).fetchall()
    rows: list[Sequence[Any]] = json.loads(got)
    return rows


def batch_chunk(conn: sqlite3.Connection, per_row: int = 1, most: int = 4000) -> int:
    """How many rows of ``per_row`` bound values one IN (...) list of a write batch's reads
    takes: ``most``, or fewer where SQLite was built (or set) to bind fewer values."""
    return max(1, min(most, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // per_row))


def _is_corruption(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    # A full-text index whose own tables are damaged fails to open as a table: "vtable
    # constructor failed" (it read as the search index rejecting the query).
    return "malformed" in text or "not a database" in text or "vtable constructor failed" in text


class Db:
    """The connection of one store, with its lock, transactions and error translation."""

    def __init__(self, conn: aiosqlite.Connection, path: str, lock_fd: int | None, *,
                 readonly: bool = False) -> None:
        self.conn = conn
        self.path = path
        self.readonly = readonly
        self._lock = asyncio.Lock()
        self._lock_fd = lock_fd
        self._identity: tuple[int, int] | None = None
        self.made_lock = False  # this process made the lock file (see refused)
        # The -wal file beside the real file (a writer's), and its identity once it exists.
        self._wal: str | None = None
        self._wal_identity: tuple[int, int] | None = None
        self._file: tuple[int, int] | None = None  # counted open on it (see _close_file)
        self._closed = False
        self._functions: set[str] = set()  # SQL functions made on the connection

    # ------------------------------------------------------------- opening and closing

    @classmethod
    async def connect(cls, path: str, *, lock: bool, readonly: bool) -> Db:
        memory = path == ":memory:"
        if path[:5].lower() == "file:":
            # SQLite reads such a name as a URI and opened the file it names, while the lock,
            # the folder and the header check took it as written (./file:/…): a second writer
            # got past the one-writer lock. The config refuses it as a URL; so does this.
            raise StoreError(f"{path!r} is an SQLite URI; give the database file's path "
                             "(e.g. \"newswatch.db\")")
        if not memory:
            if not readonly:
                _make_parent(path)
            _check_header(path, readonly=readonly)
        made_lock = False
        if lock and not readonly and not memory:
            lock_fd, made_lock = take_process_lock_made(path)
        else:
            lock_fd = None
        if readonly and not memory:
            connecting = aiosqlite.connect(_readonly_uri(path), uri=True, isolation_level=None,
                                           timeout=BUSY_TIMEOUT_S)
        else:
            connecting = aiosqlite.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        # The connection's own thread connects; shielded, a cancellation (Ctrl-C, a timeout)
        # lets it finish and close here. Cancelled mid-way, the thread went on and handed its
        # result to the event loop after the loop had closed: a traceback on the way out, or,
        # where SIGPIPE is not ignored, the process killed by it before it could say a word.
        task = asyncio.ensure_future(_connected(connecting))
        try:
            conn = await asyncio.shield(task)
        except asyncio.CancelledError:
            # However many cancellations arrive, the lock is released once the thread is done.
            with suppress(BaseException):
                await finish(_close_when_connected(task))
            release_process_lock(lock_fd)
            raise
        except sqlite3.Error as exc:
            release_process_lock(lock_fd)
            raise StoreError(f"cannot open the database {path}: {exc}") from exc
        except BaseException:
            release_process_lock(lock_fd)
            raise
        db = cls(conn, path, lock_fd, readonly=readonly)
        db.made_lock = made_lock
        if not memory:
            db._file = _connection_opened(path)
        return db

    def remember_identity(self) -> None:
        """Note which file the path names now; writes check that it still does."""
        if self.path != ":memory:":
            st = os.stat(self.path)
            self._identity = (st.st_dev, st.st_ino)
            if not self.readonly:
                # Beside the real file, where SQLite keeps it (through a symlink too).
                self._wal = os.path.realpath(self.path) + "-wal"
                self._wal_identity = _identity_of(self._wal)

    @property
    def closed(self) -> bool:
        return self._closed

    async def refused(self) -> None:
        """Close a database this process will not use after all (another program's file, a
        newer schema): the lock file goes too if this process made it, so a refusal leaves
        nothing beside the file (a stray ``<db>.lock`` was left beside another program's)."""
        if self.made_lock and self._lock_fd is not None:
            remove_lock_file(lock_path(self.path), self._lock_fd)
        await self.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            # To its end: the lock is not released while the thread still closes.
            await finish(self._close_connection())
        except sqlite3.Error as exc:
            raise self.error(exc) from exc
        finally:
            _connection_closed(self._file)
            self._file = None
            release_process_lock(self._lock_fd)
            self._lock_fd = None

    async def _close_connection(self) -> None:
        # Once the statement running now has finished: those waiting for the connection then
        # find the store closed (they were handed a connection closed under them, and failed
        # with aiosqlite's "no active connection" or a query "rejected").
        async with self._lock:
            await self.conn.close()

    # ------------------------------------------------------------- errors

    def error(self, exc: sqlite3.Error, what: str | None = None) -> StoreError:
        """The one-line StoreError for an sqlite3 error on this database."""
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if _is_corruption(exc):
            return StoreCorruptError(f"the database {self.path} is corrupted ({detail}); "
                                     "restore a backup or move it aside")
        # Beside the file itself: through a symlink, the link's folder said nothing of it.
        shm = f"{os.path.realpath(self.path)}-shm"
        if (self.readonly and "readonly database" in detail
                and not os.path.exists(shm)):
            # Reading a database in WAL mode takes its shared-memory file, which SQLite makes
            # beside it when no running newswatch has: the user asked only to read.
            return StoreError(
                f"cannot read the database {self.path} as this user: SQLite must create {shm} "
                "beside it to read it, and this user may not write in that folder; run as the "
                "database's owner, or while newswatch runs (it keeps that file)")
        if (self.readonly and "unable to open database file" in detail
                and not os.path.exists(shm) and _read_only_folder(shm)):
            # The same need, where no user can meet it: "unable to open database file" named
            # nothing a user could act on.
            return StoreError(
                f"cannot read the database {self.path}: it lies on a read-only file system, "
                f"and SQLite must create {shm} beside it to read it; copy the database (with "
                "its -wal file, if any) to a writable place and read it there")
        if (self.readonly and "unable to open database file" in detail
                and not os.path.exists(shm) and os.access(os.path.realpath(self.path), os.R_OK)):
            # The file can be read, but its -shm file could not be made beside it: a folder
            # made immutable (chattr +i, which binds root too), or one an access control list
            # or a security module keeps closed. SQLite's words named nothing to act on.
            return StoreError(
                f"cannot read the database {self.path}: SQLite must create {shm} beside it to "
                "read it, and it could not be created there (the folder is read-only to this "
                "process); run while newswatch runs (it keeps that file), or copy the database "
                "(with its -wal file, if any) to a writable place and read it there")
        if "disk I/O error" in detail and _disk_full(shm):
            # SQLite could not grow a side file: its "disk I/O error" named no cause.
            detail += " (the file system holding it is full)"
        if isinstance(exc, sqlite3.OperationalError) and "locked" in detail:
            return StoreError(f"the database {self.path} stayed locked by another process for "
                              f"{BUSY_TIMEOUT_S} s ({detail})")
        if what:
            return StoreError(f"{what}: {detail}")
        return StoreError(f"the database {self.path}: {detail}")

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the store {self.path} is closed (used after its engine or store "
                             "was closed)")

    def _check_identity(self) -> None:
        if self._identity is None:
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            # Its folder replaced by a file, the path now a symlink loop: gone all the same (an
            # OSError here was taken for each source's failure, with a traceback a second).
            raise StoreGoneError(f"the database file {self.path} was removed or replaced "
                                 f"while newswatch was running ({exc.strerror or exc})") from None
        if st is None or (st.st_dev, st.st_ino) != self._identity:
            raise StoreGoneError(f"the database file {self.path} was removed or replaced "
                                 "while newswatch was running")
        if self._lock_fd is not None:
            # The lock is on the lock file's inode: one removed (a "stale lock" cleaned up by
            # hand) lets a second writer lock a new file beside ours and double the alerts.
            held = os.fstat(self._lock_fd)
            try:
                now = os.stat(lock_path(self.path))
            except OSError:  # gone, or its folder replaced
                now = None
            if now is None or (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
                raise StoreError(f"the lock file {lock_path(self.path)} was removed or "
                                 "replaced while newswatch was running; stopping, so that no "
                                 "second process writes beside this one")
        if self._wal is not None:
            self._check_wal(self._wal)

    def _check_wal(self, wal: str) -> None:
        """Stop before writing into a -wal file that is no longer at its path: every commit
        went into the unlinked file, which only this connection's close copies into the
        database (a crash lost them all, and the next start sent their alerts again)."""
        now = _identity_of(wal)
        if self._wal_identity is None:
            # Not made yet when the store was opened (SQLite makes it at the connection's first
            # use in WAL mode): the file it makes now is the one to keep.
            self._wal_identity = now
            return
        if now != self._wal_identity:
            raise StoreError(f"the database's -wal file {wal} was removed or replaced while "
                             "newswatch was running; stopping, so that nothing more is "
                             "written where a crash would lose it")

    # ------------------------------------------------------------- statements

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[Tx]:
        """One write transaction (``BEGIN IMMEDIATE``): committed whole or rolled back."""
        self._check_open()
        async with self._lock:
            self._check_open()
            self._check_identity()
            waiting = _Waiting(self.path)
            try:
                await self._begin()
            except sqlite3.Error as exc:
                raise self.error(exc) from exc
            except BaseException:
                # Cancelled while the connection's thread ran BEGIN: it may have begun, and a
                # connection left inside a transaction refuses every later one.
                waiting.cancelled()
                with suppress(sqlite3.Error):
                    await self.conn.execute("ROLLBACK")
                raise
            finally:
                waiting.done()
            try:
                yield Tx(self.conn)
            except BaseException as exc:
                with suppress(sqlite3.Error):
                    await self.conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self.error(exc) from exc
                raise
            try:
                await self.conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with suppress(sqlite3.Error):
                    await self.conn.execute("ROLLBACK")
                raise self.error(exc) from exc

    async def _begin(self) -> None:
        """``BEGIN IMMEDIATE``, waiting up to ``BUSY_TIMEOUT_S`` for another process's write
        lock in the event loop: SQLite's own busy wait, in the connection's thread, could not
        be cut short (``sqlite3_interrupt`` does not end it), so a Ctrl-C or a timeout during
        it waited out the rest of the half minute. Each try waits ``_BEGIN_TRY_MS`` at most in
        SQLite; between tries the wait is a sleep a cancellation ends at once. Raises the last
        try's "database is locked" once the time is up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BUSY_TIMEOUT_S
        pause = 0.005
        while True:
            busy = await run_on(self.conn, _try_begin)
            if busy is None:
                return
            left = deadline - loop.time()
            if left <= 0:
                raise busy
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.1)

    async def fetchall(self, sql: str, params: Sequence[Any] = (), *, what: str | None = None
                       ) -> list[Any]:
        """Rows of one read. ``what`` names the operation in the error for a rejected query."""
        self._check_open()
        async with self._lock:
            self._check_open()
            try:
                cur = await self.conn.execute(sql, params)
                rows = list(await cur.fetchall())
                if len(rows) >= RELEASE_ROWS:
                    await _release(self.conn)
                return rows
            except sqlite3.Error as exc:
                raise self.error(exc, what) from exc

    async def function(self, name: str, nargs: int, fn: Callable[..., Any]) -> None:
        """Make ``fn`` the SQL function ``name`` of ``nargs`` arguments on this connection
        (once: later calls with the same name do nothing)."""
        if name in self._functions:
            return
        self._check_open()
        async with self._lock:
            self._check_open()
            await self.conn.create_function(name, nargs, fn)
        self._functions.add(name)

    async def read(self, fn: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run ``await fn(conn)`` under the lock, outside a transaction (several reads)."""
        self._check_open()
        async with self._lock:
            self._check_open()
            try:
                return await fn(self.conn)
            except sqlite3.Error as exc:
                raise self.error(exc) from exc


class _Waiting:
    """Says so when a write waits long for another process's lock."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.said = False
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            SAY_WAITING_AFTER_S, self._say)

    def _say(self) -> None:
        self.said = True
        log.warning("the database %s is locked by another process: waiting up to %g s for it",
                    self.path, BUSY_TIMEOUT_S)

    def cancelled(self) -> None:
        if self.said:
            log.warning("stopped waiting for the database %s", self.path)
        self.done()

    def done(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Tx:
    """The connection inside a transaction: writes go only through here."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Cursor:
        return await self.conn.execute(sql, params)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """:func:`insert_many` (executemany, in statements of many rows for an INSERT)."""
        if len(rows) < 2:
            await self.conn.executemany(sql, rows)
        else:
            await self.run(partial(insert_many, sql=sql, rows=rows))

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        cur = await self.conn.execute(sql, params)
        return list(await cur.fetchall())

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cur = await self.conn.execute(sql, params)
        return await cur.fetchone()

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """:func:`run_on` this transaction's connection."""
        return await run_on(self.conn, fn)

    async def script(self, script: str) -> None:
        # executescript() would COMMIT first; run statement by statement instead.
        for stmt in split_sql(script):
            await self.conn.execute(stmt)


# A read of this many rows or more is let go by the connection's thread at once (see _release).
RELEASE_ROWS = 10_000


async def _release(conn: aiosqlite.Connection) -> None:
    """Have the connection's thread let go of its last result. aiosqlite's thread keeps the
    last call's result, and the future that carried it, until its next call: the 100,000 rows
    of the live stories read at start-up stayed in memory until the first poll's first
    statement, which then freed them on its way (about 17,000 instructions an article of a
    3,000-article poll). An empty call frees them now."""
    await run_on(conn, _nothing)


def _nothing(conn: sqlite3.Connection) -> None:
    return None


async def run_on(conn: aiosqlite.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fn`` with the plain sqlite3 connection on the connection's own thread: many
    small statements that depend on each other's results (a story's rows) cost one hop
    between threads instead of one per statement."""
    # aiosqlite runs every call on its one thread through _execute; this hands it ours.
    result: T = await conn._execute(fn, conn._conn)  # type: ignore[no-untyped-call]
    return result


# How long one try of BEGIN IMMEDIATE waits in SQLite for another process's lock (see
# Db._begin): what a cancellation may still have to wait for.
_BEGIN_TRY_MS = 50


def _try_begin(conn: sqlite3.Connection) -> sqlite3.OperationalError | None:
    """One try of ``BEGIN IMMEDIATE`` on the connection's thread: None once begun, or the
    "database is locked" error when another process held the write lock for ``_BEGIN_TRY_MS``.
    The connection's own busy timeout (for the statements inside a transaction, and reads) is
    put back either way."""
    conn.execute(f"PRAGMA busy_timeout={_BEGIN_TRY_MS}")
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY:
            return exc
        raise
    finally:
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    return None


async def _connected(connecting: aiosqlite.Connection) -> aiosqlite.Connection:
    return await connecting


async def _close_when_connected(task: asyncio.Future[aiosqlite.Connection]) -> None:
    with suppress(Exception):
        await (await task).close()


def _make_parent(path: str) -> None:
    parent = Path(path).parent
    if (dangling := _dangling_link(str(parent))) is not None:
        # (mkdir said "File exists" of the link, and check had said the folder would be made)
        raise StoreError(f"cannot create the folder {parent} for the database {path}: "
                         f"{dangling}")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the folder {parent} for the database {path}: "
                         f"{exc.strerror or exc}") from None


def _readonly_uri(path: str) -> str:
    return Path(path).absolute().as_uri() + "?mode=ro"


def split_sql(script: str) -> list[str]:
    """The statements of a script (a trigger body's semicolons stay inside its statement)."""
    out, buf = [], ""
    for piece in script.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \t\r\n;"):
                out.append(buf.strip())
            buf = ""
    if buf.strip(" \t\r\n;"):
        out.append(buf.strip())
    return out


def check_store_file(path: str) -> None:
    """StoreError naming why a writer could not open ``path`` as its database (not SQLite, not
    writable, a side file that is no file, a lock file it could not take, a folder it could not
    create a file in); what ``newswatch check`` asks before ``run`` would refuse. A missing
    file passes (it is created). Takes no lock and creates nothing."""
    _check_header(path, readonly=False)
    _check_lock_file(path)


def _check_lock_file(path: str) -> None:
    """What :func:`take_process_lock` (and the folder it makes first) would refuse about
    ``<db>.lock``, found without locking or creating it: a folder, pipe or device there, one
    that may not be written (permissions, an immutable file), or no folder it could be made in.
    """
    target = lock_path(path)
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        _check_can_create(path, target)
        return
    except OSError as exc:
        raise StoreError(f"cannot create the lock file {target}: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise StoreError(f"cannot create the lock file {target}: "
                         f"{os.strerror(errno.EISDIR)}")
    if not stat.S_ISREG(mode):
        raise StoreError(f"the lock file {target} is not a regular file (a pipe, socket or "
                         "device); move it aside")
    try:
        # Opening another descriptor of it drops no flock a running writer holds on it.
        os.close(os.open(target, os.O_RDWR | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0)))
    except OSError as exc:
        raise StoreError(f"cannot create the lock file {target}: {exc.strerror}") from None


def _check_can_create(path: str, target: str) -> None:
    """Whether the lock file ``target`` of the database ``path`` could be made: in its folder,
    or, where that is the folder a writer makes first (see :func:`_make_parent`), in the
    nearest folder above it that exists."""
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        if (dangling := _dangling_link(os.path.dirname(path))) is not None:
            raise StoreError(f"cannot create the folder {Path(path).parent} for the database "
                             f"{path}: {dangling}")
        # Joined, not abspath's lexical ``..``: the kernel makes ``lnk/../x`` beside the
        # link's target, as the writer's mkdir does.
        made = os.path.realpath(os.path.dirname(os.path.join(os.getcwd(), path)))
        if os.path.lexists(path) or made != folder:
            # A symlink to a file in a folder that does not exist: the writer makes the
            # link's folder, not its target's.
            raise StoreError(f"cannot create the lock file {target}: its folder {folder} does "
                             f"not exist ({path} leads to {os.path.realpath(path)})")
        above = folder
        while not os.path.isdir(above) and os.path.dirname(above) != above:
            above = os.path.dirname(above)
        if (refused := _cannot_create_in(above)) is not None:
            raise StoreError(f"cannot create the folder {Path(path).parent} for the database "
                             f"{path}: {refused}")
        return
    if (refused := _cannot_create_in(folder)) is not None:
        raise StoreError(f"cannot create the lock file {target}: {refused}")


def _dangling_link(folder: str) -> str | None:
    """Why ``folder`` cannot be made where a folder on its way is a symbolic link that leads
    nowhere (to a disk not mounted, say) or cannot be followed (a loop), or None."""
    at = os.path.join(os.getcwd(), folder)  # not normalised: `lnk/..` is the link's parent
    while True:
        if os.path.islink(at):
            try:
                os.stat(at)
            except FileNotFoundError:
                return f"{at} is a symbolic link to {os.readlink(at)}, which does not exist"
            except OSError as exc:  # a loop, or a link into a folder it may not enter
                return f"{at} is a symbolic link that cannot be followed: {exc.strerror}"
        up = os.path.dirname(at)
        if up == at:
            return None
        at = up


def _cannot_create_in(folder: str) -> str | None:
    """Why no new file can be made in ``folder`` (the system's reason), or None. An unnamed
    file (``O_TMPFILE``) is made and closed, which leaves nothing behind and no name anyone
    could see: ``os.access`` answers from permissions (for root, yes to every folder but an
    immutable one or one on a read-only mount), not whether the file system would make the file
    (no inode left, a file system that refuses). Where the file system makes no unnamed files
    (/proc among them), ``os.access`` and the mount's read-only flag answer instead: a named file
    made and removed would be seen by whatever watches the folder (a folder source, say)."""
    tmpfile = getattr(os, "O_TMPFILE", None)
    if tmpfile is not None:
        try:
            os.close(os.open(folder, tmpfile | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.EISDIR):
                return exc.strerror or str(exc)
        else:
            return None
    if _read_only_folder(os.path.join(folder, "x")):
        return os.strerror(errno.EROFS)
    if not os.access(folder, os.W_OK | os.X_OK):
        return os.strerror(errno.EACCES)
    return None


def _check_header(path: str, *, readonly: bool) -> None:
    """Refuse a file that is not SQLite before SQLite touches it (it would only fail later)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = None  # missing (created below) or unreadable (said below)
    if mode is not None and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        # /dev/null read as an empty database: its lock and journal were made beside it in
        # /dev; a FIFO would have been waited on for ever.
        raise StoreError(f"{path} is not a regular file (a device, pipe or socket), not a "
                         "newswatch database")
    try:
        fd = _open_file(path, os.O_RDONLY)
    except FileNotFoundError:
        if readonly:
            raise StoreError(f"there is no newswatch database at {path}") from None
        # A new database: SQLite would make it, then fail on a side file that is no file
        # ("disk I/O error"), leaving an empty database behind.
        _check_side_files(path)
        return
    except IsADirectoryError:
        raise StoreError(f"{path} is a directory, not a newswatch database") from None
    except OSError as exc:
        raise StoreError(f"cannot read the database {path}: {exc.strerror}") from None
    try:
        head = os.pread(fd, len(SQLITE_HEADER), 0)  # a kept descriptor may have read before
    except IsADirectoryError:
        raise StoreError(f"{path} is a directory, not a newswatch database") from None
    except OSError as exc:
        raise StoreError(f"cannot read the database {path}: {exc.strerror}") from None
    finally:
        _close_file(fd)  # not while another store of this process reads the file
    if head and head != SQLITE_HEADER:
        raise StoreError(f"{path} is not a newswatch database (not an SQLite file)")
    _check_side_files(path)
    if not readonly:
        # SQLite opens a file it may not write read-only without a word: the program said it
        # was watching, then stopped at its first write.
        try:
            _close_file(_open_file(path, os.O_RDWR))
        except OSError as exc:
            raise StoreError(f"cannot write the database {path}: {exc.strerror} (newswatch "
                             "writes to it; check its owner and permissions)") from None


def _check_side_files(path: str) -> None:
    """Refuse SQLite's own files beside the database (``-wal``, ``-shm``, ``-journal``) when
    one is a folder, pipe, socket or device: they failed as "unable to open database file",
    "disk I/O error" or "readonly database", naming none of them."""
    for suffix in ("-wal", "-shm", "-journal"):
        try:
            side = os.stat(path + suffix).st_mode
        except OSError:
            continue
        if not stat.S_ISREG(side):
            raise StoreError(f"{path}{suffix}, the database's {suffix[1:]} file, is not a "
                             "regular file (a folder, pipe, socket or device); move it aside")


# Closing any descriptor of a file drops every POSIX lock the process holds on it, SQLite's
# among them: a reader and a writer of one database in one process, and the writer's close (or
# a third store's header check) took the reader's lock away, so another process could
# checkpoint and remove the WAL under it. The descriptors this module opens on a database file
# are therefore kept open while a connection of this process is open on the same file (counted
# by device and inode), and closed with the file's last connection.
_FILES = threading.Lock()
_OPEN_ON: dict[tuple[int, int], int] = {}
_KEPT: dict[tuple[int, int], list[int]] = {}


def _open_file(path: str, flags: int, mode: int = 0o644) -> int:
    """A descriptor of the database file at ``path`` (``os.open``'s errors): one kept by
    :func:`_close_file` with the same access when there is one, so that stores opened and
    closed beside an open one do not pile up descriptors, else a new one."""
    with suppress(OSError):
        st = os.stat(path)
        access = flags & os.O_ACCMODE
        with _FILES:
            kept = _KEPT.get((st.st_dev, st.st_ino), [])
            for i, fd in enumerate(kept):
                if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == access:
                    return kept.pop(i)
    return os.open(path, flags | os.O_CLOEXEC, mode)


def _close_file(fd: int) -> None:
    """Close ``fd``, a descriptor of a database file, once no connection of this process is
    open on that file (at once when none is)."""
    try:
        st = os.fstat(fd)
    except OSError:
        with suppress(OSError):
            os.close(fd)
        return
    ident = (st.st_dev, st.st_ino)
    with _FILES:
        if _OPEN_ON.get(ident):
            _KEPT.setdefault(ident, []).append(fd)
            return
    with suppress(OSError):
        os.close(fd)


def _connection_opened(path: str) -> tuple[int, int] | None:
    """Count a connection now open on the database file at ``path``; its file's identity."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    ident = (st.st_dev, st.st_ino)
    with _FILES:
        _OPEN_ON[ident] = _OPEN_ON.get(ident, 0) + 1
    return ident


def _connection_closed(ident: tuple[int, int] | None) -> None:
    """The connection counted by :func:`_connection_opened` is closed: with the file's last,
    the descriptors kept for it are closed too."""
    if ident is None:
        return
    with _FILES:
        left = _OPEN_ON.get(ident, 0) - 1
        if left > 0:
            _OPEN_ON[ident] = left
            return
        _OPEN_ON.pop(ident, None)
        kept = _KEPT.pop(ident, [])
    for fd in kept:
        with suppress(OSError):
            os.close(fd)


def _disk_full(path: str) -> bool:
    """Whether the file system holding ``path``'s folder has no block left for this user."""
    try:
        return os.statvfs(os.path.dirname(os.path.abspath(path)) or ".").f_bavail == 0
    except OSError:
        return False


def _read_only_folder(path: str) -> bool:
    """Whether the file system holding ``path``'s folder is mounted read-only."""
    try:
        return bool(os.statvfs(os.path.dirname(os.path.abspath(path)) or ".").f_flag
                    & os.ST_RDONLY)
    except OSError:
        return False


def lock_path(path: str) -> str:
    """The lock file beside the database's real file: every path to one database (a symlink,
    a relative path, ``..``) locks the same file, or two writers would each hold their own."""
    return os.path.realpath(path) + ".lock"


def take_process_lock_made(path: str) -> tuple[int, bool]:
    """:func:`take_process_lock`, and whether it made the lock file."""
    made = not os.path.lexists(lock_path(path))
    return take_process_lock(path), made


def remove_lock_file(lock: str, fd: int) -> None:
    """Remove the lock file ``lock`` (held through ``fd``) if its path still names it. Held, so
    no other process has taken it meanwhile; one that opens it next makes a new one."""
    with suppress(OSError):
        held, now = os.fstat(fd), os.stat(lock)
        if (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino):
            os.unlink(lock)


def take_process_lock(path: str) -> int:
    """Hold ``<db>.lock`` exclusively (with our pid in it) or say who holds it."""
    target = lock_path(path)
    try:
        fd = os.open(target, os.O_RDWR | os.O_CREAT | getattr(os, "O_NONBLOCK", 0), 0o644)
    except OSError as exc:
        raise StoreError(f"cannot create the lock file {target}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        # A pipe there failed with a bare "Invalid argument", naming nothing.
        raise StoreError(f"the lock file {target} is not a regular file (a pipe, socket or "
                         "device); move it aside")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            os.close(fd)
            raise StoreError(f"cannot lock {target}: {exc.strerror}") from None
        holder = _read_pid(fd)
        os.close(fd)
        if holder == os.getpid():
            raise StoreError(f"{path} is already open for writing in this process "
                             f"(pid {holder}); close that store first") from None
        raise StoreError(
            f"another newswatch process (pid {holder if holder else 'unknown'}) is using "
            f"{path}; stop it first (read-only commands such as search and check do not need to)"
        ) from None
    try:
        held = _lock_inode(path)
    except StoreError:
        # Refused before writing the pid: a lock file made anew (the holder's removed by
        # hand) kept the pid of the process it refused, which the next refusal named.
        release_process_lock(fd)
        raise
    if held is not None:
        _INODE_LOCKS[fd] = held
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError as exc:
        # A full disk said "No space left on device", naming no file (and kept the lock).
        release_process_lock(fd)
        raise StoreError(f"cannot write the lock file {target}: {exc.strerror}") from None
    return fd


# The database file's own lock (see _lock_inode), by the lock file's descriptor that owns it:
# its descriptor and the file's device and inode.
_INODE_LOCKS: dict[int, tuple[int, tuple[int, int]]] = {}
# The byte locked: far past any byte SQLite locks (its lock bytes sit at 1 GiB), so the lock
# never meets SQLite's own.
_INODE_LOCK_AT = 0x7FFF_FFFF_0000_0000
_F_OFD_SETLK: int | None = getattr(fcntl, "F_OFD_SETLK", None)


def _inode_lock_request(kind: int) -> bytes:
    """The ``struct flock`` taking (``F_WRLCK``) or releasing (``F_UNLCK``) the database file's
    own lock: l_type, l_whence, l_start, l_len, l_pid (0 for these locks), padded."""
    return struct.pack("@hhqqi", kind, os.SEEK_SET, _INODE_LOCK_AT, 1, 0) + bytes(32)


def _lock_inode(path: str) -> tuple[int, tuple[int, int]] | None:
    """Hold an exclusive lock on the database file itself, whatever name it is reached by: the
    lock file is found by the path, and a hard link is another path to the same file (two
    writers on two names of one database each held their own lock file, and both delivered).

    An open file description lock (Linux): unlike a process's POSIX locks, it is not dropped
    when the process closes another descriptor of the file, which SQLite does. This descriptor
    in turn must not be closed while SQLite holds its own locks (closing any descriptor of a file
    drops the process's POSIX locks on it): it is closed after the connection. None where such
    locks do not exist or the file cannot be opened (SQLite then says why)."""
    if _F_OFD_SETLK is None:
        return None
    with suppress(OSError):
        st = os.stat(path)
        if any(ident == (st.st_dev, st.st_ino) for _, ident in _INODE_LOCKS.values()):
            # Found without opening the file: opening and closing a descriptor of it here would
            # drop the open store's SQLite locks.
            raise StoreError(f"{path} is already open for writing in this process through "
                             "another name for the same file (a hard link); close that store "
                             "first")
    try:
        fd = _open_file(path, os.O_RDWR | os.O_CREAT)
    except OSError:
        return None
    try:
        fcntl.fcntl(fd, _F_OFD_SETLK, _inode_lock_request(fcntl.F_WRLCK))
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            links = os.fstat(fd).st_nlink
            _close_file(fd)
            raise _held_elsewhere(path, links) from None
        _close_file(fd)
        return None  # a file system without these locks: the lock file alone, as before
    st = os.fstat(fd)
    return fd, (st.st_dev, st.st_ino)


def _held_elsewhere(path: str, links: int) -> StoreError:
    """Why the database file's own lock is held by another process while its lock file was
    free: the lock file the holder locked was removed or replaced (by hand, as a "stale lock"),
    or the holder reached the file by another name (a hard link), whose lock file is another.
    """
    target = lock_path(path)
    holder = _holder_of_removed(target)
    if holder is None and links > 1:
        return StoreError(
            f"another newswatch process is using {path} through another name for the same "
            "file (a hard link); stop it first (read-only commands such as search and check "
            "do not need to)")
    who = f"another newswatch process (pid {holder})" if holder else "another newswatch process"
    return StoreError(
        f"{who} holds the database {path}; its lock file {target} "
        f"{'was' if holder else 'may have been'} removed or replaced while it ran: stop it "
        "first (read-only commands such as search and check do not need to)")


def _holder_of_removed(target: str) -> int | None:
    """The pid of another process that holds the lock file ``target`` open after it was
    removed or replaced (Linux names such a descriptor "<path> (deleted)"); None where none is
    found (another user's processes cannot be read)."""
    gone = f"{target} (deleted)"
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        if pid == os.getpid():
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            with suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == gone:
                    return pid
    return None


def _identity_of(path: str) -> tuple[int, int] | None:
    """The device and inode of the file at ``path``; None where there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _read_pid(fd: int) -> int | None:
    try:
        raw = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(raw) if raw.isdigit() else None
    except OSError:
        return None


def release_process_lock(fd: int | None) -> None:
    """Release what :func:`take_process_lock` took; only once the database's connection is
    closed (see :func:`_lock_inode`)."""
    if fd is None:
        return
    inode = _INODE_LOCKS.pop(fd, None)
    if inode is not None:
        # Unlocked now; the descriptor itself may have to wait for this process's other
        # connections to the file (see _close_file).
        if _F_OFD_SETLK is not None:
            with suppress(OSError):
                fcntl.fcntl(inode[0], _F_OFD_SETLK, _inode_lock_request(fcntl.F_UNLCK))
        _close_file(inode[0])
    # The file stays: removing it would let a third process lock a new inode while a second
    # still waits on the old one.
    with suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    with suppress(OSError):
        os.close(fd)
