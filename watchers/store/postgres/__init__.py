"""PostgresStore: the store for several processes and machines, on PostgreSQL through asyncpg.

Same :class:`watchers.store.Store` protocol and behaviour as :class:`SqliteStore`, split the
same way: domain mixins (:mod:`.articles`, :mod:`.outbox`, :mod:`.state`, :mod:`.stories`,
:mod:`.schedule`, :mod:`.acks`) over one pool and transaction helper (:mod:`._db`), with the
schema and its migrations in :mod:`.schema`, applied when a writer opens the store. Every
failure is a :class:`watchers.errors.StoreError` of one line, as with SQLite, so callers cannot
tell the backends apart.

Driver: asyncpg. It speaks PostgreSQL's native protocol with binary codecs (timestamps, arrays
and integers cross without text parsing), prepares and caches statements itself, and pipelines
``executemany``; it is the fastest async driver for Python and brings its own pool. psycopg 3
(async, with psycopg_pool) is the alternative, better where its sync/async symmetry or
server-side COPY helpers matter; nothing here needs either.

Opening for writing (the default) takes the writer lock described in :mod:`._db`, like the
SQLite store's process lock; readers (``lock=False`` or ``readonly=True``) do not.
"""

from __future__ import annotations

from collections.abc import Callable

from watchers.store._shared import ListedWords, other_keys
from watchers.store.postgres._db import Listener, Pg, describe
from watchers.store.postgres.acks import AcksMixin
from watchers.store.postgres.articles import ArticlesMixin, Continuations, fts_to_tsquery
from watchers.store.postgres.outbox import OutboxMixin
from watchers.store.postgres.schedule import ScheduleMixin
from watchers.store.postgres.schema import SCHEMA_VERSION, TermsOf, check, rekey, upgrade
from watchers.store.postgres.schema import keys_version as held_keys
from watchers.store.postgres.state import StateMixin
from watchers.store.postgres.stories import StoriesMixin

__all__ = ["SCHEMA_VERSION", "PostgresStore", "describe", "fts_to_tsquery", "is_postgres_url"]


def is_postgres_url(target: str) -> bool:
    """Whether ``target`` names a PostgreSQL database rather than an SQLite file."""
    return target.startswith(("postgresql://", "postgres://"))


class PostgresStore(ArticlesMixin, OutboxMixin, StateMixin, StoriesMixin, ScheduleMixin,
                    AcksMixin):
    """The PostgreSQL implementation of :class:`watchers.store.Store`.

    ``store = await PostgresStore.open(url)`` and ``await store.aclose()``, or
    ``async with await PostgresStore.open(url) as store``.
    """

    def __init__(self, db: Pg) -> None:
        self._db = db
        # Words this store committed to the index's word list (see ArticlesMixin.record_many).
        self._listed_words = ListedWords()
        # The engine's index words of a text, when the opener gave them (see link_terms).
        self._terms_of: TermsOf | None = None
        # The schema version the database had when opened, read under the lock that upgrades
        # it (0: this open created it); what `newswatch migrate` reports.
        self.found_version = 0
        # What candidate pages leave for the pages that continue them (see Continuations).
        self._pages = Continuations()

    @property
    def path(self) -> str:
        """The database, for messages (host and name; never credentials)."""
        return self._db.name

    def on_writer_lost(self, callback: Callable[[BaseException], None]) -> None:
        """Have ``callback`` told (instead of the log) when the writer lock is lost for good:
        another process took it, or the server stayed out of reach for as long as the engine
        waits for a store. Writing stops then; a process that writes nothing (the bot role)
        must be stopped by it, or it answered every change with the error, for good, and let
        a process that runs alone start beside it."""
        self._db.on_lost = callback

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        lock: bool = True,
        readonly: bool = False,
        min_size: int = 1,
        max_size: int = 10,
        shared: bool = False,
        terms_of: TermsOf | None = None,
        keys_version: int | None = None,
    ) -> PostgresStore:
        """Open the database at ``url`` (``postgresql://…``), creating or upgrading its schema.

        ``lock``: hold the writer lock, refusing to open while another process holds it.
        ``shared`` (with ``lock=False``): hold it shared, as role processes do — any number of
        them together, but never beside a process that holds it alone (``--role all``).
        ``readonly``: every transaction is read-only, no lock is taken and nothing changes (the
        schema must be current). ``min_size`` / ``max_size``: the connection pool's bounds.
        ``terms_of(title, text)``: the engine's index words of a text (see
        :func:`watchers.rules.lookup.index_terms`), which an upgrade that indexes stored text
        needs (the URL index of a database holding links). ``keys_version``: the engine's word
        keys version: a writer given it with ``terms_of`` rebuilds lookup indexes built with
        another (:func:`.schema.rekey`); a reader given it refuses them.
        """
        db = await Pg.connect(url, lock=lock, readonly=readonly, min_size=min_size,
                              max_size=max_size, shared=shared)
        try:
            version = await check(db, readonly=readonly)
            if not readonly:
                version = await upgrade(db, version, terms_of=terms_of)
                if keys_version is not None and terms_of is not None:
                    await rekey(db, keys_version, terms_of)
            elif keys_version is not None and (
                    refused := other_keys(str(db.name), await held_keys(db), keys_version)):
                raise refused
        except BaseException:
            await db.close()
            raise
        store = cls(db)
        store._terms_of = terms_of
        store.found_version = version
        return store

    async def __aenter__(self) -> PostgresStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._db.close()

    async def listen(self, channel: str, listener: Listener) -> None:
        """Call ``listener(channel, payload)`` on every NOTIFY of ``channel`` (see
        :data:`watchers.store.base.CHANNELS`) until the store closes."""
        await self._db.listen(channel, listener)

    async def integrity_check(self) -> str:
        """Always "ok" once the server answers: PostgreSQL checks its own pages (checksums,
        amcheck); the method exists so callers of either store can ask."""
        await self._db.fetchval("SELECT 1")
        return "ok"
