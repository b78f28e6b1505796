"""Storage behind the :class:`Store` protocols; :class:`SqliteStore` is the default."""

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
from watchers.store.postgres import PostgresStore
from watchers.store.sqlite import SqliteStore

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
    "is_postgres_url",
    "open_store",
    "store_exists",
]
