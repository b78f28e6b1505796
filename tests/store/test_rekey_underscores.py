"""A store indexed when underscores at a word's edges were part of it (word keys version 2:
``_Russian`` was one word) is re-keyed when a writer opens it, so a lookup then finds the plain
word, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from watchers.errors import StoreError
from watchers.models import Article
from watchers.rules.lookup import index_terms, url_terms
from watchers.rules.text import KEYS_VERSION
from watchers.search import search
from watchers.store import SqliteStore, Store
from watchers.store.base import ArticleRecord
from watchers.store.postgres import PostgresStore

TEXTS = ["_Russian Offensive Campaign_ update", "__NATO__ summit", "the snake_case name"]


def _v2_terms(title: str, text: str) -> str:
    """Index words as keys of version 2 had them for these texts: underscores kept."""
    return " ".join(sorted({w.lower() for w in re.findall(r"\w+", f"{title} {text}")}))


def _articles() -> list[Article]:
    return [Article(source="s", title=f"brief {i}", text=TEXTS[i % len(TEXTS)],
                    url=f"https://ex.org/_{i}_") for i in range(9)]


async def _fill(store: Store, arts: list[Article]) -> None:
    await store.record_many([ArticleRecord(a, [], [], _v2_terms(a.title, a.text),
                                           url_terms=url_terms(a.url)) for a in arts])


async def _finds(store: Store, query: str) -> set[str]:
    return {h.article.title for h in await search(store, query, limit=100)}


EXPECTED = {
    "russian": {"brief 0", "brief 3", "brief 6"},
    "russia*": {"brief 0", "brief 3", "brief 6"},
    "nato": {"brief 1", "brief 4", "brief 7"},
    "natoo~": {"brief 1", "brief 4", "brief 7"},
    '"offensive campaign"': {"brief 0", "brief 3", "brief 6"},
    "snake_case": {"brief 2", "brief 5", "brief 8"},
}


async def test_an_sqlite_store_of_older_keys_finds_words_in_underscores_once_rekeyed(
        tmp_path: Path) -> None:
    path = tmp_path / "nw.db"
    arts = _articles()
    async with await SqliteStore.open(path, terms_of=_v2_terms, keys_version=2) as store:
        await _fill(store, arts)
        # The old word list holds "_russian" and "__nato__": a prefix or a fuzzy term, which
        # the lookup expands through it, finds no candidate.
        assert await _finds(store, "russia*") == await _finds(store, "natoo~") == set()
    with pytest.raises(StoreError, match="word keys version 2"):
        async with await SqliteStore.open(path, readonly=True, keys_version=KEYS_VERSION):
            pass
    async with await SqliteStore.open(path, terms_of=index_terms, keys_version=KEYS_VERSION):
        pass
    async with await SqliteStore.open(path, readonly=True, keys_version=KEYS_VERSION) as store:
        for query, titles in EXPECTED.items():
            assert await _finds(store, query) == titles, query


async def test_a_postgresql_store_of_older_keys_finds_words_in_underscores_once_rekeyed(
        pg_database: str) -> None:
    arts = _articles()
    async with await PostgresStore.open(pg_database, terms_of=_v2_terms,
                                        keys_version=2) as store:
        await _fill(store, arts)
        assert await _finds(store, "russia*") == await _finds(store, "natoo~") == set()
    with pytest.raises(StoreError, match="word keys version 2"):
        async with await PostgresStore.open(pg_database, readonly=True,
                                            keys_version=KEYS_VERSION):
            pass
    async with await PostgresStore.open(pg_database, terms_of=index_terms,
                                        keys_version=KEYS_VERSION):
        pass
    async with await PostgresStore.open(pg_database, readonly=True,
                                        keys_version=KEYS_VERSION) as store:
        for query, titles in EXPECTED.items():
            assert await _finds(store, query) == titles, query
