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
from watchers.store.sqlite import SqliteStore

__all__ = [
    "AlertState",
    "ArticleRecord",
    "ArticleStore",
    "OutboxEntry",
    "OutboxKind",
    "OutboxRow",
    "OutboxStore",
    "SourceState",
    "SqliteStore",
    "StateStore",
    "Store",
]
