"""A batch's lookup-index rows go straight into the FTS5 table (the places index), keyed as the
view keys them.

``record_many`` writes the index rows itself, sorted by key, instead of through the
``article_terms`` view (whose trigger made FTS5 write every row out on its own). Both must give
every article the same key (publication second x 2^31 + rowid, :data:`INDEX_KEY_SQL`), so that
lookups read newest first and stop early exactly as before.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from watchers.errors import StoreError
from watchers.models import Article
from watchers.rules.lookup import index_terms
from watchers.store import SqliteStore
from watchers.store.base import ArticleRecord
from watchers.store.sqlite.schema import INDEX_KEY_SQL


def _articles(n: int) -> list[Article]:
    rng = random.Random(8)
    start = datetime(2022, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        # Dates out of order, some missing (the fetch time keys those), some in one second.
        published = None if i % 7 == 0 else start + timedelta(seconds=rng.choice(
            [rng.randrange(0, 30_000_000), 5_000]))
        out.append(Article(title=f"Story marker{i}", text=f"body {i} of the batch",
                           source="feed", published=published, url=f"https://ex.org/{i}"))
    return out


async def test_a_batch_indexes_every_article_under_the_views_key(tmp_path: Path) -> None:
    arts = _articles(60)
    store = await SqliteStore.open(tmp_path / "nw.db", terms_of=index_terms)
    try:
        stored = await store.record_many(
            [ArticleRecord(a, [], [], index_terms(a.title, a.text)) for a in arts])
    finally:
        await store.aclose()
    assert all(s is not None for s in stored)
    with sqlite3.connect(tmp_path / "nw.db") as conn:
        for i, a in enumerate(arts):
            (expected,) = conn.execute(
                f"SELECT {INDEX_KEY_SQL} FROM articles a WHERE a.id = ?", (a.id,)).fetchone()
            found = [r for (r,) in conn.execute(
                "SELECT rowid FROM article_places WHERE article_places MATCH ?", (f"marker{i}",))]
            assert found == [expected], a.title
        # Every article indexed once, none twice; the word index is left empty (lookups read
        # the places index).
        (rows,) = conn.execute("SELECT count(*) FROM article_places WHERE article_places "
                               "MATCH 'story'").fetchone()
        assert rows == len(arts)
        (words,) = conn.execute("SELECT count(*) FROM article_index_docsize").fetchone()
        assert words == 0


async def test_the_batch_and_the_view_write_the_same_index(tmp_path: Path) -> None:
    arts = _articles(25)
    store = await SqliteStore.open(tmp_path / "batch.db", terms_of=index_terms)
    try:
        await store.record_many(
            [ArticleRecord(a, [], [], index_terms(a.title, a.text)) for a in arts])
    finally:
        await store.aclose()
    # The same articles one at a time through the view, as `newswatch copy` writes them.
    store = await SqliteStore.open(tmp_path / "view.db", terms_of=index_terms)
    await store.aclose()
    with sqlite3.connect(tmp_path / "batch.db") as src, \
            sqlite3.connect(tmp_path / "view.db") as dst:
        cols = "rowid, id, source, guid, url, link_key, title, text, published, fetched_at, " \
               "sort_at, content_hash"
        dst.executemany(f"INSERT INTO articles ({cols}) VALUES ({','.join('?' * 12)})",
                        src.execute(f"SELECT {cols} FROM articles"))
        for rowid, title, text in list(dst.execute("SELECT rowid, title, text FROM articles")):
            dst.execute("INSERT INTO article_terms (rowid, terms) VALUES (?, ?)",
                        (rowid, index_terms(title, text)))
        for i in range(len(arts)):
            q = "SELECT rowid FROM article_places WHERE article_places MATCH ?"
            assert (src.execute(q, (f"marker{i}",)).fetchall()
                    == dst.execute(q, (f"marker{i}",)).fetchall())


async def test_an_article_past_the_index_key_range_is_refused_and_the_batch_kept_out(
        tmp_path: Path) -> None:
    """A file whose rowids reached 2**31 (edited by hand, or a very old store): the batch that
    would index past the key range fails by name and stores nothing; the store goes on."""
    path = tmp_path / "nw.db"
    store = await SqliteStore.open(path, terms_of=index_terms)
    first = _articles(1)[0]
    await store.record_many([ArticleRecord(first, [], [], index_terms(first.title, first.text))])
    await store.aclose()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE articles SET rowid = 2147483647")  # the next one is out of range
    store = await SqliteStore.open(path, terms_of=index_terms)
    try:
        late = _articles(3)[1:]
        with pytest.raises(StoreError, match="index key range"):
            await store.record_many(
                [ArticleRecord(a, [], [], index_terms(a.title, a.text)) for a in late])
        assert await store.count_articles() == 1
        assert await store.get_article(first.id) is not None
    finally:
        await store.aclose()
