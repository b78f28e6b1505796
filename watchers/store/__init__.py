"""Storage behind the :class:`Store` protocol; :class:`SqliteStore` is the default."""

from watchers.store.base import (
    AlertState,
    OutboxEntry,
    OutboxRow,
    OutboxStore,
    SourceState,
    Store,
    StoredRule,
    StoredSource,
)
from watchers.store.sqlite import SqliteStore

__all__ = [
    "AlertState",
    "OutboxEntry",
    "OutboxRow",
    "OutboxStore",
    "SourceState",
    "SqliteStore",
    "Store",
    "StoredRule",
    "StoredSource",
]
