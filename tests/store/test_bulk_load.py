"""SQLite's bulk-load room (``SqliteStore.bulk_load``, what ``newswatch import`` runs inside): a
larger page cache and a longer write-ahead log between checkpoints while inside, the store's own
settings back after — also when the load fails —
and the journal and sync settings never touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchers.store import SqliteStore
from watchers.store.sqlite import BULK_CACHE_KIB, BULK_CHECKPOINT_PAGES


async def _pragma(store: SqliteStore, name: str) -> object:
    return (await store._db.fetchall(f"PRAGMA {name}"))[0][0]


async def test_bulk_load_enlarges_the_page_cache_and_restores_it(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        before = {n: await _pragma(store, n) for n in ("cache_size", "journal_mode",
                                                       "synchronous", "wal_autocheckpoint")}
        assert before["wal_autocheckpoint"] != BULK_CHECKPOINT_PAGES
        async with store.bulk_load():
            assert await _pragma(store, "cache_size") == -BULK_CACHE_KIB
            assert await _pragma(store, "wal_autocheckpoint") == BULK_CHECKPOINT_PAGES
            assert await _pragma(store, "journal_mode") == before["journal_mode"]
            assert await _pragma(store, "synchronous") == before["synchronous"]
        assert await _pragma(store, "cache_size") == before["cache_size"]
        assert await _pragma(store, "wal_autocheckpoint") == before["wal_autocheckpoint"]
        with pytest.raises(RuntimeError, match="load failed"):
            async with store.bulk_load():
                raise RuntimeError("load failed")
        assert await _pragma(store, "cache_size") == before["cache_size"]
        assert await _pragma(store, "wal_autocheckpoint") == before["wal_autocheckpoint"]
