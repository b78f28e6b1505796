"""PostgreSQL: a store whose lookup indexes hold another version of the word keys rebuilds them
when a writer opens it with the engine's words, chunk by chunk and resumably; a reader refuses
it until then (the SQLite side: test_rekey)."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
import pytest

from tests.store.test_rekey import TEXTS, WORDS, _old_terms
from watchers.errors import StoreError
from watchers.models import Article
from watchers.rules.lookup import index_terms, url_terms
from watchers.rules.text import KEYS_VERSION
from watchers.store.base import ArticleRecord
from watchers.store.postgres import PostgresStore
from watchers.store.postgres import schema as pg_schema


async def _old_store(url: str, n: int) -> None:
    arts = [Article(source="s", title=f"{TEXTS[i % len(TEXTS)]} {i}", text=f"body {i}",
                    url=f"https://ex.org/{i}") for i in range(n)]
    async with await PostgresStore.open(url, terms_of=_old_terms, keys_version=1) as store:
        await store.record_many([ArticleRecord(a, [], [], _old_terms(a.title, a.text),
                                               url_terms=url_terms(a.url)) for a in arts])


async def _count(url: str, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def _found(url: str, word: str) -> object:
    return await _count(url, "SELECT count(*) FROM articles WHERE terms @@ "
                             "to_tsquery('simple', $1)", word)


async def test_a_writer_rebuilds_indexes_of_older_keys_and_goes_on_after_an_interruption(
        pg_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    await _old_store(pg_database, 50)
    assert [await _found(pg_database, w) for w in WORDS] == [0] * len(WORDS)
    with pytest.raises(StoreError, match="word keys version 1"):
        await PostgresStore.open(pg_database, readonly=True, keys_version=KEYS_VERSION)
    monkeypatch.setattr(pg_schema, "REKEY_CHUNK", 10)
    calls = 0

    def failing(title: str, text: str) -> str:
        nonlocal calls
        calls += 1
        if calls > 25:
            raise RuntimeError("killed")
        return index_terms(title, text)

    with pytest.raises(RuntimeError):
        await PostgresStore.open(pg_database, terms_of=failing, keys_version=KEYS_VERSION)
    after = await _count(pg_database, "SELECT after FROM index_keys")
    assert isinstance(after, int) and after > 0
    with pytest.raises(StoreError, match="are being rebuilt for this newswatch's word keys"):
        await PostgresStore.open(pg_database, readonly=True, keys_version=KEYS_VERSION)
    async with await PostgresStore.open(pg_database, terms_of=index_terms,
                                        keys_version=KEYS_VERSION):
        pass
    assert await _count(pg_database, "SELECT version FROM index_keys") == KEYS_VERSION
    assert await _count(pg_database, "SELECT building FROM index_keys") is None
    for w in WORDS:
        assert await _found(pg_database, w) == 10, w
        assert await _count(pg_database, "SELECT count(*) FROM index_words WHERE word = $1",
                            w) == 1
    assert await _count(pg_database, "SELECT count(*) FROM article_urls") == 50
    assert await _count(pg_database, "SELECT count(*) FROM articles") == 50
    async with await PostgresStore.open(pg_database, readonly=True, keys_version=KEYS_VERSION):
        pass
