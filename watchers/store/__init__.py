"""Storage behind the :class:`Store` protocols; :class:`SqliteStore` is the default,
:class:`PostgresStore` (imported on first use: its driver is not needed for SQLite) the
scale-out one."""

from typing import TYPE_CHECKING

from watchers.store.base import (
    AlertState,
    ArticleRecord,
    ArticleStore,
    OutboxEntry,
    OutboxKind,
    OutboxRow,
    OutboxStore,
    SourceState,
    StateStore,
    Store,
)
from watchers.store.open import is_postgres_url, open_store, store_exists
from watchers.store.sqlite import SqliteStore
from watchers.store.sqlite._db import check_store_file

if TYPE_CHECKING:
    from watchers.store.postgres import PostgresStore

# After the SQLite store: _shared reads its helpers, and they read _shared.
from watchers.store._shared import one_version_each

__all__ = [
    "AlertState",
    "ArticleRecord",
    "ArticleStore",
    "OutboxEntry",
    "OutboxKind",
    "OutboxRow",
    "OutboxStore",
    "PostgresStore",
    "SourceState",
    "SqliteStore",
    "StateStore",
    "Store",
    "check_store_file",
    "is_postgres_url",
    "one_version_each",
    "open_store",
    "store_exists",
]


def __getattr__(name: str) -> object:
    if name == "PostgresStore":
        from watchers.store.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
