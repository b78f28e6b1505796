"""The SQLite places index: filled with every article the engine stores, read by lookups only
while it holds them all; a store from before it (or an article a tool wrote without its places)
is looked up through the word index until a writer with the engine's places rebuilds."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from watchers.models import Article
from watchers.rules import match_query
from watchers.rules.lookup import index_terms, places_of, url_terms
from watchers.rules.text import KEYS_VERSION
from watchers.search import search
from watchers.store import SqliteStore
from watchers.store.base import ArticleRecord
from watchers.store.sqlite import schema

# Three in four hold both words of the phrase apart; one in four holds the phrase.
TITLES = ["Prime minister resigns", "Minister visits the prime site", "Rates: prime and minister",
          "The prime rate and the minister"]
QUERIES = ['"prime minister"', "title:resigns", "minister NEAR/1 prime", '"the minister"',
           "prime"]


def _articles(n: int = 40) -> list[Article]:
    return [Article(source="s", title=f"{TITLES[i % 4]} {i}", text=f"Report number {i}.",
                    url=f"https://ex.org/{i}") for i in range(n)]


def _record(a: Article, *, places: bool) -> ArticleRecord:
    return ArticleRecord(a, [], [], index_terms(a.title, a.text), url_terms=url_terms(a.url),
                         places=places_of(a.title, a.text) if places else None)


def _gaps(path: Path) -> set[int]:
    with sqlite3.connect(path) as conn:
        return {g for (g,) in conn.execute(f"SELECT gap FROM {schema.PLACES_INCOMPLETE}")}


async def _answers(store: SqliteStore, arts: list[Article]) -> dict[str, int]:
    """Each query's articles read (the answers checked against a full scan)."""
    scanned = {}
    for query in QUERIES:
        found = await search(store, query, limit=1000)
        expected = {a.title for a in arts if match_query(query, a) is not None}
        assert {h.article.title for h in found} == expected, query
        scanned[query] = found.scanned
    return scanned


async def test_lookups_read_the_places_index_only_while_it_holds_every_article(
        tmp_path: Path) -> None:
    arts = _articles()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await store.record_many([_record(a, places=True) for a in arts])
        assert _gaps(tmp_path / "nw.db") == set()
        placed = await _answers(store, arts)
        # A phrase reads the ten articles that hold it, not the forty with both words.
        assert placed['"prime minister"'] == 10
        assert placed["title:resigns"] == 10
        # One article written without its places (a tool that gives words alone): lookups go
        # back to the word index, and still find exactly what a full scan finds.
        extra = Article(source="s", title="Prime minister returns", text="Late news.")
        await store.record_many([_record(extra, places=False)])
        assert _gaps(tmp_path / "nw.db") == {1}
        unplaced = await _answers(store, [*arts, extra])
        assert unplaced['"prime minister"'] == 41
    # A writer with the engine's places rebuilds the indexes, and the places index is read
    # again.
    async with await SqliteStore.open(tmp_path / "nw.db", terms_of=index_terms,
                                      keys_version=KEYS_VERSION, places_of=places_of) as store:
        assert _gaps(tmp_path / "nw.db") == set()
        again = await _answers(store, [*arts, extra])
        assert again['"prime minister"'] == 11


async def test_a_store_opened_with_places_of_fills_the_records_without_them(
        tmp_path: Path) -> None:
    arts = _articles(8)
    async with await SqliteStore.open(tmp_path / "nw.db", places_of=places_of) as store:
        await store.record_many([_record(a, places=False) for a in arts])
        assert _gaps(tmp_path / "nw.db") == set()
        assert (await _answers(store, arts))['"prime minister"'] == 2


async def test_the_view_marks_the_places_index_incomplete(tmp_path: Path) -> None:
    # A tool that indexes through the article_terms view gives words, not places.
    path = tmp_path / "nw.db"
    arts = _articles(4)
    async with await SqliteStore.open(path) as store:
        await store.record_many([_record(a, places=True) for a in arts[:3]])
    with sqlite3.connect(path) as conn:
        a = arts[3]
        conn.execute("INSERT INTO articles (id, source, title, text, fetched_at, sort_at, "
                     "content_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (a.id, a.source, a.title, a.text, "2026-01-01T00:00:00.000000Z",
                      "2026-01-01T00:00:00.000000Z", a.content_hash))
        (rowid,) = conn.execute("SELECT rowid FROM articles WHERE id = ?", (a.id,)).fetchone()
        conn.execute("INSERT INTO article_terms (rowid, terms) VALUES (?, ?)",
                     (rowid, index_terms(a.title, a.text)))
    assert _gaps(path) == {1}
    async with await SqliteStore.open(path) as store:
        await _answers(store, arts)


async def test_a_store_from_before_the_places_index_is_rebuilt_by_the_engine(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "nw.db"
    arts = _articles()
    async with await SqliteStore.open(path, terms_of=index_terms,
                                      keys_version=KEYS_VERSION) as store:
        await store.record_many([_record(a, places=True) for a in arts])
    view, trigger = schema.ARTICLE_TERMS.split("\nCREATE TRIGGER")
    with sqlite3.connect(path) as conn:  # as schema 16 left it
        conn.executescript("DROP TABLE article_places; DROP TABLE article_places_incomplete; "
                           "DROP TRIGGER article_terms_insert; DROP VIEW article_terms; "
                           + view + "CREATE TRIGGER" + trigger + "PRAGMA user_version=16;")
    with caplog.at_level(logging.INFO, logger="watchers.store"):
        # Upgraded by a writer without the engine's places: marked, and read through the
        # word index.
        async with await SqliteStore.open(path) as store:
            assert _gaps(path) == {1}
            assert (await _answers(store, arts))['"prime minister"'] == 40
        async with await SqliteStore.open(path, terms_of=index_terms, keys_version=KEYS_VERSION,
                                          places_of=places_of) as store:
            assert _gaps(path) == set()
            assert (await _answers(store, arts))['"prime minister"'] == 10
    said = [r.getMessage() for r in caplog.records]
    assert any("the places index (schema 17) is filled by the next rebuild" in m for m in said)
    assert any("rebuilding the lookup indexes of 40 stored articles to fill the places index"
               in m for m in said)


async def test_a_rebuild_partly_without_places_leaves_the_index_marked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A rebuild that indexed some chunk without the engine's places (an older writer, or one
    # without them, went on with it) cannot vouch for the places index it swaps in.
    path = tmp_path / "nw.db"
    arts = _articles(12)
    async with await SqliteStore.open(path, terms_of=index_terms, keys_version=1) as store:
        await store.record_many([_record(a, places=True) for a in arts])
    monkeypatch.setattr(schema, "REKEY_CHUNK", 5)
    calls = 0
    chunk = schema._rekey_chunk

    def stop_after_one(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise KeyboardInterrupt
        return chunk(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(schema, "_rekey_chunk", stop_after_one)
    with pytest.raises(KeyboardInterrupt):
        await SqliteStore.open(path, terms_of=index_terms, keys_version=KEYS_VERSION)
    monkeypatch.setattr(schema, "_rekey_chunk", chunk)
    assert _gaps(path) == {2}  # the rebuild under way misses places; lookups read the old
    async with await SqliteStore.open(path, terms_of=index_terms, keys_version=KEYS_VERSION,
                                      places_of=places_of) as store:
        assert _gaps(path) == {1}
        assert (await _answers(store, arts))['"prime minister"'] == 12
    # The next open with the places rebuilds once more, whole.
    async with await SqliteStore.open(path, terms_of=index_terms, keys_version=KEYS_VERSION,
                                      places_of=places_of) as store:
        assert _gaps(path) == set()
        assert (await _answers(store, arts))['"prime minister"'] == 3
