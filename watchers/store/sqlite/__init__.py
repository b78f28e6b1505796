"""SqliteStore: the default store, one SQLite file in WAL mode through aiosqlite.

The store is split by domain — :mod:`.articles`, :mod:`.outbox`, :mod:`.state` — over one
connection and transaction helper (:mod:`._db`), with the schema and its migrations in
:mod:`.schema`. :class:`SqliteStore` composes the domains as mixins: each mixin holds only the
methods of its domain and reaches the database only through ``self._db``, so the flat method
names callers use stay on one object without a layer of forwarding methods, and a domain can be
read (or reimplemented for another database) on its own.

Opening for writing (the default) takes the process lock described in :mod:`._db`; readers
(``lock=False`` or ``readonly=True``) do not, and read beside a running writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from watchers._finish import finish
from watchers.errors import StoreError
from watchers.store._shared import ListedWords, other_keys
from watchers.store.sqlite import _db
from watchers.store.sqlite._db import Db
from watchers.store.sqlite.acks import AcksMixin
from watchers.store.sqlite.articles import ArticlesMixin
from watchers.store.sqlite.outbox import OutboxMixin
from watchers.store.sqlite.schedule import ScheduleMixin
from watchers.store.sqlite.schema import (
    SCHEMA_VERSION,
    PlacesOf,
    TermsOf,
    check,
    rekey,
    upgrade,
)
from watchers.store.sqlite.schema import keys_version as held_keys
from watchers.store.sqlite.state import StateMixin
from watchers.store.sqlite.stories import StoriesMixin

__all__ = [
    "BULK_CACHE_KIB",
    "BULK_CHECKPOINT_PAGES",
    "SCHEMA_VERSION",
    "SIDECARS",
    "PlacesOf",
    "SqliteStore",
    "TermsOf",
]

# The files SQLite keeps beside a database file (its write-ahead log, shared memory, rollback
# journal), by the suffix added to the file's name: never a place to write anything else.
SIDECARS = ("-wal", "-shm", "-journal")

# The page cache of a bulk load (KiB): a year of history's index pages for one batch's inserts.
BULK_CACHE_KIB = 64 * 1024
# The write-ahead log's pages before SQLite copies it into the database (its checkpoint) in a
# bulk load, instead of the default 1,000 (4 MiB): a batch of an import fills more than that,
# so every commit checkpointed, copying again the index pages each batch rewrites (the
# lookup index's, the random-keyed ids' and hashes') and syncing the file. About a tenth of
# the database thread's time at 1,000; at this size one commit in several checkpoints.
BULK_CHECKPOINT_PAGES = 10_000


class SqliteStore(ArticlesMixin, OutboxMixin, StateMixin, StoriesMixin, ScheduleMixin,
                  AcksMixin):
    """The SQLite implementation of :class:`watchers.store.Store`.

    Use ``store = await SqliteStore.open(path)`` and ``await store.aclose()``, or
    ``async with await SqliteStore.open(path) as store``.
    """

    def __init__(self, db: Db) -> None:
        self._db = db
        # Words this store committed to the index's word list (see ArticlesMixin.record_many).
        self._listed_words = ListedWords()
        # The engine's index words of a text, when the opener gave them (see link_terms).
        self._terms_of: TermsOf | None = None
        # The engine's places of an article (see ArticleRecord.places), when the opener gave them.
        self._places_of: PlacesOf | None = None
        # The engine's word keys version, when the opener gave it (see stories._index_change).
        self._keys_version: int | None = None
        # The schema version the database had when opened, read under the lock that upgrades
        # it (0: this open created it); what `newswatch migrate` reports.
        self.found_version = 0

    @property
    def path(self) -> str:
        return self._db.path

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        terms_of: TermsOf | None = None,
        lock: bool = True,
        readonly: bool = False,
        keys_version: int | None = None,
        places_of: PlacesOf | None = None,
    ) -> SqliteStore:
        """Open (creating or upgrading) the database at ``path``.

        ``lock``: hold the process lock, refusing to open while another process holds it (for
        anything that polls, delivers or imports). ``readonly``: open read-only, take no lock and
        change nothing (the schema must be current). ``terms_of(title, text)``: the index terms
        of an article, needed only to upgrade a database older than the lookup index.
        ``keys_version``: the engine's word keys version (``watchers.rules.text.KEYS_VERSION``):
        a writer given it with ``terms_of`` rebuilds lookup indexes that hold another version's
        keys (see :func:`.schema.rekey`); a reader given it refuses them, as it refuses an old
        schema. ``places_of(title, text)``: an article's places (see
        :func:`watchers.rules.lookup.places_of`), for the records that do not give theirs
        and for a rebuild of the lookup indexes (with ``terms_of`` and ``keys_version``, a
        writer rebuilds them when the places index misses some article).
        """
        target = str(path)
        db = await Db.connect(target, lock=lock, readonly=readonly)
        try:
            await _pragmas(db, f"PRAGMA busy_timeout={int(_db.BUSY_TIMEOUT_S * 1000)}",
                           "PRAGMA foreign_keys=ON")
            version = await check(db, readonly=readonly)
            if not readonly:
                # Only once the file is known to be ours (WAL mode rewrites its header).
                await _pragmas(db, "PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")
                version = await upgrade(db, version, terms_of=terms_of)
                if keys_version is not None and terms_of is not None:
                    await rekey(db, keys_version, terms_of, places_of)
            elif keys_version is not None and (
                    refused := other_keys(str(target), await held_keys(db), keys_version)):
                raise refused
            db.remember_identity()
        except StoreError:
            await db.refused()  # not a file it may use: its lock file goes too, if made here
            raise
        except BaseException:
            await db.close()
            raise
        store = cls(db)
        store._terms_of = terms_of
        store._places_of = places_of
        store._keys_version = keys_version
        store.found_version = version
        return store

    async def __aenter__(self) -> SqliteStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._db.close()

    @asynccontextmanager
    async def bulk_load(self) -> AsyncIterator[None]:
        """Room for a bulk load (``newswatch import``): while inside, the connection caches up
        to ``BULK_CACHE_KIB`` of pages instead of SQLite's default 2 MiB, so the random-keyed
        indexes (ids, content hashes) a batch inserts into stay in memory instead of being read
        back page by page; and the write-ahead log is checkpointed once it holds
        ``BULK_CHECKPOINT_PAGES`` pages rather than 1,000. Durability is unchanged: every batch
        is still its own transaction, with the store's journal and synchronous settings (a
        checkpoint only copies committed pages from the log into the database)."""
        (before,) = (await self._db.fetchall("PRAGMA cache_size"))[0]
        (pages,) = (await self._db.fetchall("PRAGMA wal_autocheckpoint"))[0]
        try:
            # Inside: a cancellation while they are set (its thread sets them all the same)
            # restores.
            await _pragmas(self._db, f"PRAGMA cache_size=-{BULK_CACHE_KIB}",
                           f"PRAGMA wal_autocheckpoint={BULK_CHECKPOINT_PAGES}")
            yield
        finally:
            if not self._db.closed:
                await finish(_pragmas(self._db, f"PRAGMA cache_size={int(before)}",
                                      f"PRAGMA wal_autocheckpoint={int(pages)}"))

    async def integrity_check(self) -> str:
        rows = await self._db.fetchall("PRAGMA integrity_check")
        return str(rows[0][0])


async def _pragmas(db: Db, *pragmas: str) -> None:
    for pragma in pragmas:
        try:
            await db.conn.execute(pragma)
        except sqlite3.Error as exc:
            # The header was SQLite's (checked before connecting): a failure here is damage.
            raise db.error(exc) from exc
