"""Moving a store to another database (``newswatch copy``), and applying pending schema
migrations as an explicit step (``newswatch migrate``).

A copy goes from an SQLite file or a PostgreSQL database to another (empty) one of either kind.
Invariants:

- The source is only read, in one snapshot (a single read transaction), while its writer lock is
  held (SQLite: the process lock; PostgreSQL: the writer advisory lock, and no other newswatch
  session may be connected, since the several-process roles write without that lock), so no
  newswatch writes it during the copy and a running writer makes the copy refuse to start.
  Its schema must be the current one (``migrate`` it first).
- The destination must hold no row in any table. It gets the current schema through its store's
  own ``open``, and is then marked as an incomplete copy (SQLite: ``PRAGMA application_id`` is
  :data:`COPYING_SQLITE_ID`; PostgreSQL: ``schema_version.application`` is
  :data:`COPYING_PG_MARK`) until every row is in and the counts agree. Neither store opens a
  database so marked, and a copy into it is refused with how to start over: an interrupted or
  failed copy is never mistaken for a whole one.
- Rows keep their keys: article rowids and outbox ids (so nonces, Discord message ids, acks and
  digests stay valid); PostgreSQL's identity sequences are moved past the largest copied id.
- An article's lookup terms are not read from the source's index (an FTS5 index keeps no
  per-article text); they are computed again with ``terms_of`` from its title and text — the
  same function the engine gives ``record`` — and written the way each store writes them
  (SQLite: into the ``article_terms`` view; PostgreSQL: ``to_tsvector('simple', terms)``, cut
  to what one tsvector holds, see :func:`.postgres.schema.fitting_terms`), so both backends
  index the rule engine's own word keys. The URL index is written the same way,
  from each article's link, in the transaction that writes the article.
- Columns that only running processes use (:data:`RUNTIME_COLUMNS`: PostgreSQL's leases and
  claims) are not copied; any other column that one side lacks makes the copy refuse.
- Rows move in batches of ``batch`` rows, one destination transaction each; values are converted
  by the PostgreSQL column type (times: ISO text ↔ ``timestamptz``; flags: 0/1 ↔ ``boolean``;
  JSON text ↔ ``jsonb``), and the two schemas must have the same columns. Into PostgreSQL,
  which refuses NUL in text, errors' and notices' text (:data:`_ERROR_TEXTS`) loses its NUL
  as the PostgreSQL store's own writes do.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal, Protocol

import asyncpg  # type: ignore[import-untyped]  # no stubs (asyncpg-stubs is not a dependency)

from watchers.errors import StoreError
from watchers.models import storable
from watchers.store.postgres import PostgresStore, describe, is_postgres_url
from watchers.store.postgres import articles as pg_articles
from watchers.store.postgres import schema as pg_schema
from watchers.store.postgres._db import Pg
from watchers.store.sqlite import SIDECARS, PlacesOf, SqliteStore
from watchers.store.sqlite import schema as lite_schema
from watchers.store.sqlite._db import (
    Db,
    check_store_file,
    iso,
    lock_path,
    release_process_lock,
    remove_lock_file,
    take_process_lock,
    take_process_lock_made,
)
from watchers.store.sqlite.probe import TABLES, Probe, file_size, incomplete_error, open_refusal
from watchers.store.sqlite.probe import probe as probe_sqlite
from watchers.store.sqlite.probe import start_over as start_over_sqlite
from watchers.store.sqlite.schema import TermsOf
from watchers.urls import url_parts_problem

__all__ = [
    "BATCH",
    "COPYING_PG_MARK",
    "COPYING_SQLITE_ID",
    "RUNTIME_COLUMNS",
    "TABLES",
    "CopyProgress",
    "CopySummary",
    "Migrated",
    "TableCount",
    "copy_store",
    "describe_target",
    "migrate",
    "open_refusal",
    "resolve_target",
    "start_over",
]

BATCH = 5000
# The columns a copy reads in order, so that rows arrive in key order (cheap appends).
_ORDER = {"articles": "rowid", "outbox": "id"}
# Only PostgreSQL keeps the terms as a column; SQLite's are in the FTS5 index.
_TERMS = "terms"
_ID_SEQUENCES = (("articles", "rowid"), ("outbox", "id"))
# What running processes hold on PostgreSQL (a poll worker's source lease, the session sending
# an outbox row, when a story was last written for the workers' story sync): meaningless in
# another database, so never copied; the destination's defaults (no lease, no claimer, written
# by the copy) stand.
RUNTIME_COLUMNS = frozenset({("source_state", "lease_owner"), ("source_state", "lease_until"),
                             ("source_state", "active"), ("outbox", "claimed_by"),
                             ("stories", "touched_at")})

COPYING_SQLITE_ID = lite_schema.COPYING_APPLICATION_ID
COPYING_PG_MARK = pg_schema.COPYING_MARK

Kind = Literal["sqlite", "postgres"]


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CopyProgress:
    """How far a copy has got: the table being copied and the rows copied so far."""

    table: str
    table_rows: int
    table_total: int
    rows: int
    total: int


@dataclass(frozen=True)
class TableCount:
    table: str
    source: int
    destination: int


@dataclass(frozen=True)
class CopySummary:
    """What a copy did: every table's row count on both sides (after the copy), in copy order.
    ``mismatched`` names the tables whose counts differ; the copy is whole only without any."""

    counts: tuple[TableCount, ...]
    seconds: float

    @property
    def rows(self) -> int:
        return sum(c.source for c in self.counts)

    @property
    def mismatched(self) -> list[str]:
        return [c.table for c in self.counts if c.source != c.destination]


@dataclass(frozen=True)
class Migrated:
    """What ``migrate`` did: the schema version before (0: no database yet) and after."""

    target: str
    before: int
    after: int


# --------------------------------------------------------------------------- targets


def resolve_target(spec: str, *, what: str, env: dict[str, str] | None = None) -> str:
    """The database ``spec`` names: an SQLite path, a ``postgresql://`` URL, or ``env:VAR``
    holding either. ``what`` names the option in errors (e.g. ``--from``)."""
    spec = spec.strip()
    if not spec:
        raise StoreError(f"{what}: expected an SQLite file or a postgresql:// URL, got nothing")
    if spec.startswith("env:"):
        var = spec.removeprefix("env:")
        value = (os.environ if env is None else env).get(var, "").strip()
        if not value:
            raise StoreError(f"{what}: ${var} is not set")
        spec = value
    if is_postgres_url(spec):
        # a non-numeric port is refused here rather than deep in the driver
        problem = url_parts_problem(spec)
        if problem is not None:
            raise StoreError(f"{what}: {describe_target(spec)} is not a valid PostgreSQL URL "
                             f"({problem})")
        return spec
    if "://" in spec:
        scheme = spec.split("://", 1)[0]
        raise StoreError(f"{what}: {scheme}:// is not a database newswatch can use; expected an "
                         "SQLite file or a postgresql:// URL")
    return spec


def describe_target(target: str) -> str:
    """A database for messages: the file, or the PostgreSQL database without credentials."""
    if not is_postgres_url(target):
        return target
    try:
        return describe(target)
    except ValueError:
        # A malformed URL (e.g. its port): name it as written, still without credentials,
        # which end at the last '@' (an unencoded password may hold '/' or '?').
        rest = target.split("://", 1)[1]
        netloc, _, path = rest.rsplit("@", 1)[-1].partition("/")
        return f"postgresql://{netloc}/{path.split('?', 1)[0]}"


def _kind(target: str) -> Kind:
    return "postgres" if is_postgres_url(target) else "sqlite"


def start_over(target: str) -> str:
    """How to start over after an incomplete copy into ``target``."""
    if _kind(target) == "sqlite":
        return start_over_sqlite(target)
    return (f"drop the database {describe_target(target)} and create it again (DROP DATABASE … "
            "WITH (FORCE); CREATE DATABASE …), then run the copy again")


# --------------------------------------------------------------------------- probing



async def _probe(target: str) -> Probe:
    """What is at ``target`` now, read without writing (and without any lock)."""
    if _kind(target) == "sqlite":
        return await probe_sqlite(target)
    return await _probe_pg(target)


async def _probe_to_write(target: str) -> Probe:
    """:func:`_probe`, for a command about to write ``target``: an SQLite file another process
    writes is refused as that process's (its writer lock held while the file is read). A copy
    under way into it was taken for one that failed, and the user told to delete the file."""
    if _kind(target) != "sqlite" or not file_size(target):
        return await _probe(target)
    # Before the lock, whose file it makes: a folder, a file that is not SQLite or one beside
    # an unusable lock file was refused with a new `<target>.lock` left beside it.
    check_store_file(target)
    fd, made = take_process_lock_made(target)
    try:
        return await probe_sqlite(target)
    except BaseException:
        if made:
            # Refused (another program's file, say): the lock file this made goes too. Still
            # held, so no other process has taken it meanwhile.
            remove_lock_file(lock_path(target), fd)
        raise
    finally:
        release_process_lock(fd)  # the store's own open takes it again


async def _probe_pg(url: str) -> Probe:
    db = await Pg.connect(url, lock=False, readonly=True, min_size=1, max_size=1)
    try:
        if await db.fetchval("SELECT to_regclass('schema_version')") is not None:
            mark = await db.fetchval("SELECT application FROM schema_version")
            if mark == COPYING_PG_MARK:
                return Probe(pg_schema.SCHEMA_VERSION, True, {})
        version = await pg_schema.check(db, readonly=False)
        held = {}
        for table in TABLES:
            if (await db.fetchval("SELECT to_regclass($1)", table) is not None
                    and await db.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{table}")')):
                held[table] = 1
        return Probe(version, False, held)
    finally:
        await db.close()


def _incomplete_error(target: str) -> StoreError:
    if _kind(target) == "sqlite":
        return incomplete_error(target)
    return StoreError(f"{describe_target(target)} holds an incomplete copy (an interrupted or "
                      f"failed `newswatch copy`); to start over, {start_over(target)}")


# --------------------------------------------------------------------------- migrate


async def migrate(target: str, *, terms_of: TermsOf | None = None,
                  keys_version: int | None = None,
                  places_of: PlacesOf | None = None) -> Migrated:
    """Apply the pending schema migrations of the store at ``target`` (creating it when there
    is none), holding its writer lock. ``terms_of`` rebuilds the lookup index of an SQLite file
    older than it, and with ``keys_version`` (the engine's) rebuilds lookup indexes built with
    other word keys, or (with ``places_of``) an SQLite places index that misses articles. A
    database newer than this newswatch, or not newswatch's, is refused with
    the store's error and left untouched."""
    before = await _probe_to_write(target)
    if before.incomplete:
        raise _incomplete_error(target)
    if _kind(target) == "sqlite":
        store: SqliteStore | PostgresStore = await SqliteStore.open(
            target, terms_of=terms_of, keys_version=keys_version, places_of=places_of)
    else:
        store = await PostgresStore.open(target, terms_of=terms_of, keys_version=keys_version)
    # The version the upgrade found under its lock, not the probe's, read without one: two
    # migrations at once both probed a new database, and both said they created it.
    found = store.found_version
    await store.aclose()
    after = await _probe(target)
    return Migrated(describe_target(target), found, after.version)


# --------------------------------------------------------------------------- values


def _to_time(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise StoreError(f"{where}: {value!r} is not a time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# Columns holding the text of errors (which may quote what a destination or a source sent) and
# notices: SQLite keeps a NUL there, PostgreSQL refuses it, and the PostgreSQL store writes them
# without it (see watchers.models.storable). Other text never holds one (an article's is made
# storable as it is read), and a NUL there fails the copy.
_ERROR_TEXTS = frozenset({"outbox.reason", "outbox.text", "route_pauses.reason",
                          "source_state.last_error"})


def _converter(pg_type: str, to: Kind, where: str) -> Callable[[Any], Any] | None:
    """How a value of a column of PostgreSQL type ``pg_type`` becomes one for a ``to`` store
    (None: as it is)."""
    if to == "postgres":
        if pg_type == "timestamptz":
            return lambda v: _to_time(v, where)
        if pg_type == "bool":
            return lambda v: None if v is None else bool(v)
        if pg_type == "float8":
            return lambda v: None if v is None else float(v)
        if pg_type == "text" and where in _ERROR_TEXTS:
            return lambda v: None if v is None else storable(str(v))
        if pg_type == "text":
            return lambda v: v if v is None or isinstance(v, str) else str(v)
        return None
    if pg_type == "timestamptz":
        # PostgreSQL keeps the calendar's ends (0001-01-01, a zero time a feed or an import
        # gave) as -infinity and infinity, which the driver reads back without a zone: taken
        # as local time, the copy failed with a traceback ("year 0 is out of range").
        return lambda v: iso(_to_time(v, where))
    if pg_type == "bool":
        return lambda v: None if v is None else int(v)
    return None


# --------------------------------------------------------------------------- the two sides


class _Source(Protocol):
    async def columns(self, table: str) -> dict[str, str]: ...
    async def count(self, table: str) -> int: ...
    def rows(self, table: str, cols: Sequence[str], batch: int
             ) -> AsyncIterator[list[tuple[Any, ...]]]: ...


class _Dest(Protocol):
    async def columns(self, table: str) -> dict[str, str]: ...
    async def count(self, table: str) -> int: ...
    async def write(self, table: str, cols: Sequence[str], rows: Sequence[Sequence[Any]],
                    terms: Sequence[str] | None,
                    links: Sequence[str] | None = None,
                    places: Sequence[tuple[str, str, str, str]] | None = None) -> None: ...
    async def mark(self, *, complete: bool) -> None: ...
    async def keys(self, version: int) -> None: ...
    async def finish(self) -> None: ...


# The copy's lookup indexes hold the words of the terms function it was given: marked with its
# keys version, so that the first writer to open the copy does not rebuild them.
_KEYS = "UPDATE index_keys SET version = {}, building = NULL, after = 0"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _SqliteSource:
    def __init__(self, db: Db) -> None:
        self.db = db

    async def columns(self, table: str) -> dict[str, str]:
        rows = await self._fetch(f"PRAGMA table_info({_q(table)})")
        return {str(r[1]): str(r[2]).lower() for r in rows}

    async def count(self, table: str) -> int:
        return int((await self._fetch(f"SELECT count(*) FROM {_q(table)}"))[0][0])

    async def _fetch(self, sql: str) -> list[Any]:
        try:
            cur = await self.db.conn.execute(sql)
            return list(await cur.fetchall())
        except sqlite3.Error as exc:
            raise self.db.error(exc) from None

    async def rows(self, table: str, cols: Sequence[str], batch: int
                   ) -> AsyncIterator[list[tuple[Any, ...]]]:
        order = f" ORDER BY {_ORDER[table]}" if table in _ORDER else ""
        try:
            cur = await self.db.conn.execute(
                f"SELECT {', '.join(map(_q, cols))} FROM {_q(table)}{order}")
            while chunk := await cur.fetchmany(batch):
                yield [tuple(r) for r in chunk]
            await cur.close()
        except sqlite3.Error as exc:
            raise self.db.error(exc) from None


class _PgSource:
    def __init__(self, db: Pg, conn: asyncpg.Connection) -> None:
        self.db = db
        self.conn = conn

    async def columns(self, table: str) -> dict[str, str]:
        return await _pg_columns(self.db, self.conn, table)

    async def count(self, table: str) -> int:
        try:
            return int(await self.conn.fetchval(f"SELECT count(*) FROM {_q(table)}"))
        except _PG_ERRORS as exc:
            raise self.db.error(exc) from None

    async def rows(self, table: str, cols: Sequence[str], batch: int
                   ) -> AsyncIterator[list[tuple[Any, ...]]]:
        order = f" ORDER BY {_ORDER[table]}" if table in _ORDER else ""
        try:
            cur = await self.conn.cursor(
                f"SELECT {', '.join(map(_q, cols))} FROM {_q(table)}{order}")
            while chunk := await cur.fetch(batch):
                yield [tuple(r) for r in chunk]
        except _PG_ERRORS as exc:
            raise self.db.error(exc) from None


_PG_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


async def _pg_columns(db: Pg, conn: asyncpg.Connection | None, table: str) -> dict[str, str]:
    sql = ("SELECT column_name, udt_name FROM information_schema.columns "
           "WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position")
    try:
        rows = await (conn.fetch(sql, table) if conn is not None else db.fetch(sql, table))
    except _PG_ERRORS as exc:
        raise db.error(exc) from None
    return {str(r[0]): str(r[1]) for r in rows}


class _SqliteDest:
    def __init__(self, store: SqliteStore) -> None:
        self.db: Db = store._db

    async def columns(self, table: str) -> dict[str, str]:
        rows = await self.db.fetchall(f"PRAGMA table_info({_q(table)})")
        return {str(r[1]): str(r[2]).lower() for r in rows}

    async def count(self, table: str) -> int:
        return int((await self.db.fetchall(f"SELECT count(*) FROM {_q(table)}"))[0][0])

    async def write(self, table: str, cols: Sequence[str], rows: Sequence[Sequence[Any]],
                    terms: Sequence[str] | None,
                    links: Sequence[str] | None = None,
                    places: Sequence[tuple[str, str, str, str]] | None = None) -> None:
        sql = (f"INSERT INTO {_q(table)} ({', '.join(map(_q, cols))}) "
               f"VALUES ({', '.join('?' * len(cols))})")
        async with self.db.tx() as tx:
            await tx.executemany(sql, rows)
            if terms is not None:
                # Keyed by the article's date and rowid, as the store's own writes are.
                rowid = list(cols).index("rowid")
                # Without places (a caller without the engine's), each article is placed by
                # its words, and the first writer with them rebuilds.
                if places is None:
                    await tx.execute(lite_schema.MARK_WORDS_ONLY)
                await tx.run(partial(lite_schema.index_articles, rows=[
                    (r[rowid], t, link, p) for r, t, link, p
                    in zip(rows, terms, links or [""] * len(rows),
                           places or itertools.repeat(None, len(rows)), strict=True)]))

    async def mark(self, *, complete: bool) -> None:
        app = lite_schema.APPLICATION_ID if complete else COPYING_SQLITE_ID
        async with self.db.tx() as tx:
            await tx.execute(f"PRAGMA application_id={int(app)}")

    async def keys(self, version: int) -> None:
        async with self.db.tx() as tx:
            await tx.execute(_KEYS.format("?"), (version,))

    async def finish(self) -> None:
        # SQLite assigns the next rowid past the largest one; nothing to move.
        return None


class _PgDest:
    def __init__(self, store: PostgresStore) -> None:
        self.db: Pg = store._db
        self._types: dict[str, dict[str, str]] = {}

    async def columns(self, table: str) -> dict[str, str]:
        if table not in self._types:
            self._types[table] = await _pg_columns(self.db, None, table)
        return self._types[table]

    async def count(self, table: str) -> int:
        return int(await self.db.fetchval(f"SELECT count(*) FROM {_q(table)}"))

    async def write(self, table: str, cols: Sequence[str], rows: Sequence[Sequence[Any]],
                    terms: Sequence[str] | None,
                    links: Sequence[str] | None = None,
                    places: Sequence[tuple[str, str, str, str]] | None = None) -> None:
        # (PostgreSQL keeps no places index: ``places`` is not written)
        types = await self.columns(table)
        # One statement per batch: column arrays unnested server-side (far fewer round trips
        # than a row per statement), terms made a tsvector as the store's own insert does.
        names = [_q(c) for c in cols]
        arrays = [f"${i}::{types[c]}[]" for i, c in enumerate(cols, 1)]
        values = [f"u.{n}" for n in names]
        aliases = list(names)
        if terms is not None:
            arrays.append(f"${len(cols) + 1}::text[]")
            aliases.append(_q(_TERMS))
            names.append(_q(_TERMS))
            values.append(f"to_tsvector('simple', u.{_q(_TERMS)})")
        sql = (f"INSERT INTO {_q(table)} ({', '.join(names)}) SELECT {', '.join(values)} "
               f"FROM unnest({', '.join(arrays)}) AS u({', '.join(aliases)})")
        args: list[list[Any]] = [list(col) for col in zip(*rows, strict=True)]
        if terms is not None:
            rowid = list(cols).index("rowid")
            terms = [pg_schema.fitting_terms(t, f"the article of rowid {r[rowid]}")
                     for r, t in zip(rows, terms, strict=True)]
            args.append(terms)
        async with self.db.tx() as conn:
            await conn.execute(sql, *args)
            if terms is not None:
                await pg_articles.add_index_words(conn, terms)
                # The URL index, from the words of the links.
                keyed = [(r[rowid], pg_schema.fitting_terms(t, f"the link of rowid {r[rowid]}"))
                         for r, t in zip(rows, links or (), strict=False) if t]
                await conn.execute(pg_schema.INSERT_URLS, [r for r, _ in keyed],
                                   [t for _, t in keyed])

    async def mark(self, *, complete: bool) -> None:
        async with self.db.tx() as conn:
            await conn.execute("UPDATE schema_version SET application = $1",
                               "newswatch" if complete else COPYING_PG_MARK)

    async def keys(self, version: int) -> None:
        await self.db.execute(_KEYS.format("$1"), version)

    async def finish(self) -> None:
        async with self.db.tx() as conn:
            for table, col in _ID_SEQUENCES:
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{col}'), "
                    f"coalesce((SELECT max({_q(col)}) FROM {_q(table)}), 0) + 1, false)")


# --------------------------------------------------------------------------- opening


@asynccontextmanager
async def _source(target: str) -> AsyncIterator[_Source]:
    """The source, locked against writers, read in one snapshot."""
    name = describe_target(target)
    if _kind(target) == "sqlite" and file_size(target) is None:
        raise StoreError(f"--from: there is no database at {target}")
    if (await _probe(target)).incomplete:
        raise StoreError(f"--from: {name} holds an incomplete copy (an interrupted or failed "
                         "`newswatch copy`); copy from the original database instead")
    if _kind(target) == "sqlite":
        db = await Db.connect(target, lock=False, readonly=True)
        lock_fd: int | None = None
        try:
            version = await lite_schema.check(db, readonly=False)
            _check_version(target, version, lite_schema.SCHEMA_VERSION)
            try:
                lock_fd = take_process_lock(target)
            except StoreError as exc:
                raise StoreError(f"cannot copy from {target} while another process holds "
                                 f"it (writing it, or copying from it): {exc}") from None
            try:
                await db.conn.execute("BEGIN")  # one snapshot for every table
            except sqlite3.Error as exc:
                raise db.error(exc) from None
            yield _SqliteSource(db)
        finally:
            try:
                await db.close()
            finally:
                # After the connection: the lock's hold on the file must outlast SQLite's.
                release_process_lock(lock_fd)
        return
    pg = await Pg.connect(target, lock=False, readonly=True, min_size=1, max_size=2)
    try:
        probe_version = await pg_schema.check(pg, readonly=False)
        _check_version(target, probe_version, pg_schema.SCHEMA_VERSION)
        try:
            # Only to hold the writer lock; this connection writes nothing.
            locker = await Pg.connect(target, lock=True, readonly=False, min_size=1,
                                      max_size=1)
        except StoreError as exc:
            raise StoreError(f"cannot copy from {name} while another process holds it "
                             f"(writing it, or copying from it): {exc}") from None
        try:
            await _no_other_sessions(pg, name)
            async with pg.pool.acquire() as conn, conn.transaction(
                    isolation="repeatable_read", readonly=True):
                yield _PgSource(pg, conn)
        except _PG_ERRORS as exc:
            raise pg.error(exc) from None
        finally:
            await locker.close()
    finally:
        await pg.close()


async def _no_other_sessions(pg: Pg, name: str) -> None:
    """Refuse while another newswatch process is connected: workers of the several-process
    roles write without the writer lock (leases and claims instead)."""
    others = await pg.fetch(
        "SELECT DISTINCT application_name FROM pg_stat_activity WHERE datname = "
        "current_database() AND application_name LIKE 'newswatch pid %' "
        "AND application_name <> $1", f"newswatch pid {os.getpid()}")
    if others:
        pids = ", ".join(sorted(str(r[0]).rsplit(" ", 1)[-1] for r in others))
        raise StoreError(f"cannot copy from {name} while it is being written: other newswatch "
                         f"processes are connected to it (pid {pids}); stop them first")


def _check_version(target: str, version: int, current: int) -> None:
    if version == 0:
        raise StoreError(f"--from: {describe_target(target)} is an empty database: there is "
                         "nothing to copy")
    if version < current:
        raise StoreError(f"--from: {describe_target(target)} has schema version {version}; "
                         f"run `newswatch migrate` on it first (copies are made at version "
                         f"{current})")


async def _destination(target: str, stack: AsyncExitStack) -> _Dest:
    """The destination, opened for writing (schema created) once it is known to be empty."""
    probe = await _probe_to_write(target)
    if probe.incomplete:
        raise _incomplete_error(target)
    if probe.rows:
        raise StoreError(
            f"--to: {describe_target(target)} already holds data (in "
            f"{', '.join(probe.rows)}); a copy goes only into a new, empty database (nothing "
            "was written)")
    if _kind(target) == "sqlite":
        lite = await SqliteStore.open(target)
        stack.push_async_callback(lite.aclose)
        return _SqliteDest(lite)
    pg = await PostgresStore.open(target)
    stack.push_async_callback(pg.aclose)
    return _PgDest(pg)


# --------------------------------------------------------------------------- copy


async def copy_store(
    source: str,
    destination: str,
    *,
    terms_of: TermsOf,
    keys_version: int | None = None,
    batch: int = BATCH,
    places_of: PlacesOf | None = None,
    on_progress: Callable[[CopyProgress], None] | None = None,
) -> CopySummary:
    """Copy every table of the store at ``source`` into the empty store at ``destination``
    (each an SQLite path or a ``postgresql://`` URL), then count both sides.

    ``terms_of(title, text)`` gives an article's lookup terms (the engine's own function), of
    the word keys ``keys_version`` (:data:`watchers.rules.text.KEYS_VERSION`): the copy's
    lookup indexes are marked with it (None: left unmarked, which has the first writer to open
    the copy rebuild them). ``places_of(title, text)``: an article's places (the engine's
    :func:`watchers.rules.lookup.places_of`), for an SQLite copy's places index (without it
    each article is placed by its words alone, and the copy's first writer with them rebuilds).
    ``on_progress`` is called as each table starts and after each batch. Raises StoreError
    before writing anything for a source being written, an old or foreign source, or a
    destination that holds data; after that, a failure (or cancellation) leaves the destination
    marked incomplete and the error says how to start over. The summary's ``mismatched`` is
    empty only when the copy is whole (else the destination stays marked incomplete)."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    if _same(source, destination):
        raise StoreError(f"--from and --to name the same database ({describe_target(source)})")
    if (side := _sidecar_of(source, destination)) is not None:
        raise StoreError(f"--to {destination} is the {side} file SQLite keeps beside "
                         f"{describe_target(source)}: the source's next write would delete the "
                         "copy; choose another file")
    if _lock_file_of(source, destination):
        # Empty (as a refused writer leaves it), it passed for a new database: the copy was
        # written into the source's lock file.
        raise StoreError(f"--to {destination} is the lock file newswatch keeps beside "
                         f"{describe_target(source)}; choose another file")
    started = time.monotonic()
    async with AsyncExitStack() as stack, _source(source) as src:
        totals = {t: await src.count(t) for t in TABLES}
        dst = await _destination(destination, stack)
        plan = await _plan(src, dst, source, destination)
        await dst.mark(complete=False)
        try:
            await _copy_rows(src, dst, plan, totals, terms_of=terms_of, places_of=places_of,
                             batch=batch,
                             on_progress=on_progress)
            if keys_version is not None:
                await dst.keys(keys_version)
            await dst.finish()
            counts = tuple([TableCount(t, totals[t], await dst.count(t)) for t in TABLES])
        except StoreError as exc:
            raise StoreError(f"{exc}; {describe_target(destination)} is left as an "
                             f"incomplete copy: to start over, {start_over(destination)}"
                             ) from None
        summary = CopySummary(counts, time.monotonic() - started)
        if not summary.mismatched:
            await dst.mark(complete=True)
        return summary


def _sidecar_of(source: str, destination: str) -> str | None:
    """Which of the files SQLite keeps beside the ``source`` file ``destination`` is
    (``-wal``, ``-shm``, ``-journal``), if any."""
    if _kind(source) != "sqlite" or _kind(destination) != "sqlite":
        return None
    src = os.path.realpath(source)
    dst = os.path.realpath(destination)
    return next((end for end in SIDECARS if dst == src + end), None)


def _lock_file_of(source: str, destination: str) -> bool:
    """Whether ``destination`` is the lock file newswatch keeps beside the ``source`` file."""
    return (_kind(source) == "sqlite" and _kind(destination) == "sqlite"
            and os.path.realpath(destination) == lock_path(source))


def _same(a: str, b: str) -> bool:
    if _kind(a) != _kind(b):
        return False
    if _kind(a) == "postgres":
        return a == b
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:  # two names of one file (a hard link)
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


@dataclass(frozen=True)
class _Table:
    name: str
    cols: tuple[str, ...]
    convert: tuple[Callable[[Any], Any] | None, ...]
    terms: tuple[int, int] | None  # positions of title and text when terms are written


async def _plan(src: _Source, dst: _Dest, source: str, destination: str) -> list[_Table]:
    """Each table's columns and conversions; StoreError if the two schemas differ."""
    to = _kind(destination)
    cross = _kind(source) != to
    plan = []
    for table in TABLES:
        have, want = await src.columns(table), await dst.columns(table)
        skip = {_TERMS} | {c for t, c in RUNTIME_COLUMNS if t == table}
        cols = tuple(c for c in have if c not in skip)
        differ = (set(have) ^ set(want)) - skip
        if differ:
            raise StoreError(
                f"the schemas of {describe_target(source)} and {describe_target(destination)} "
                f"differ in table {table} (columns {', '.join(sorted(differ))})")
        pg_types = want if to == "postgres" else have
        convert = tuple(_converter(pg_types[c], to, f"{table}.{c}") if cross else None
                        for c in cols)
        terms = (cols.index("title"), cols.index("text")) if table == "articles" else None
        plan.append(_Table(table, cols, convert, terms))
    return plan


async def _copy_rows(src: _Source, dst: _Dest, plan: Sequence[_Table], totals: dict[str, int],
                     *, terms_of: TermsOf, batch: int, places_of: PlacesOf | None = None,
                     on_progress: Callable[[CopyProgress], None] | None) -> None:
    """Each table's rows in batches. A batch is written while the next one is read and
    prepared (the terms are CPU work here, the write is the destination's): one write at a
    time, in order, so the destination sees the same transactions as a plain loop would.
    Progress counts rows once their batch is committed."""
    total = sum(totals.values())
    done = copied = 0
    writing: asyncio.Task[None] | None = None
    in_flight = 0

    async def settle(table: str) -> None:
        nonlocal writing, in_flight, done, copied
        if writing is None:
            return
        try:
            await writing
        except StoreError as exc:
            raise StoreError(f"copying {table} (rows {copied + 1:,} to {copied + in_flight:,}): "
                             f"{exc}") from None
        writing = None
        done += in_flight
        copied += in_flight
        in_flight = 0
        if on_progress is not None:
            on_progress(CopyProgress(table, copied, totals[table], done, total))

    try:
        for t in plan:
            copied = 0
            if on_progress is not None:
                on_progress(CopyProgress(t.name, 0, totals[t.name], done, total))
            async for rows in src.rows(t.name, t.cols, batch):
                values, terms, links, places = _prepare(t, rows, terms_of, places_of)
                await settle(t.name)
                writing = asyncio.create_task(dst.write(t.name, t.cols, values, terms, links,
                                                         places))
                in_flight = len(values)
                await asyncio.sleep(0)  # let it send before the next batch is prepared
            await settle(t.name)  # a table's last batch is in before the next table's first
    finally:
        if writing is not None and not writing.done():
            writing.cancel()
            with suppress(asyncio.CancelledError, StoreError):
                await writing


def _prepare(t: _Table, rows: list[tuple[Any, ...]], terms_of: TermsOf,
             places_of: PlacesOf | None = None
             ) -> tuple[list[tuple[Any, ...]], list[str] | None, list[str] | None,
                        list[tuple[str, str, str, str]] | None]:
    """A batch's values for the destination, and its articles' lookup terms, their links'
    (``terms_of(link, "")``: the engine's words of a text, as the URL index holds them) and
    their places (with ``places_of``)."""
    if any(f is not None for f in t.convert):
        rows = [tuple(v if f is None else f(v) for f, v in zip(t.convert, r, strict=True))
                for r in rows]
    if t.terms is None:
        return rows, None, None, None
    title, text = t.terms
    url = t.cols.index("url") if "url" in t.cols else None
    return (rows, [terms_of(r[title], r[text]) for r in rows],
            [terms_of(r[url], "") if url is not None and r[url] else "" for r in rows],
            None if places_of is None else [places_of(r[title], r[text]) for r in rows])
