"""A regex that needs a number before a word (``/\\d+ killed/``) reads only the articles whose
places hold that word's number mark, where every row of the places index holds its article's
marks; elsewhere (a row placed by its words, an index built before marks) it reads as before.
Either way the answer is the full scan's."""

from __future__ import annotations

import sqlite3
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import bbc_records
from watchers.models import Article
from watchers.rules import match_query, parse, shipped_aliases
from watchers.rules.lookup import index_terms, places_of, places_query, url_terms
from watchers.rules.text import KEYS_VERSION
from watchers.search import search
from watchers.store import SqliteStore
from watchers.store.base import ArticleRecord
from watchers.store.sqlite import schema

BASE = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
QUERY = r"/\d+ pause/"


def pauses(n: int) -> list[Article]:
    """``n`` articles about a pause, one second apart, every fifth with a number before it."""
    return [Article(title=f"Story {i}", guid=f"g{i}", source="s",
                    text=f"Talks {'after a ' if i % 5 else f'after {i} '}pause in May.",
                    published=BASE + timedelta(seconds=i)) for i in range(n)]


def _record(a: Article, *, places: bool = True) -> ArticleRecord:
    return ArticleRecord(a, [], [], index_terms(a.title, a.text), url_terms=url_terms(a.url),
                         places=places_of(a.title, a.text) if places else None)


def _open(path: Path) -> Coroutine[Any, Any, SqliteStore]:
    """The store as the engine opens it: with its word keys and places."""
    return SqliteStore.open(path, terms_of=index_terms, keys_version=KEYS_VERSION,
                            places_of=places_of)


async def _page_ids(store: SqliteStore, query: str) -> list[str]:
    """The ids one page of candidates holds for ``query`` (its words are "pause")."""
    node = parse(query)
    table = shipped_aliases({})
    places = places_query(node, table)
    marked = places_query(node, table, marks=True)
    assert marked != places
    page = await store.candidate_page(fts='"pause"', places='"pause"', marked=marked,
                                      limit=1000)
    return [a.id for a in page.articles]


async def _same_as_full_scan(store: SqliteStore, arts: list[Article], query: str) -> None:
    expected = [a.id for a in sorted(arts, key=lambda a: a.published or BASE, reverse=True)
                if match_query(query, a) is not None]
    found = await search(store, query, limit=1000)
    assert [h.article.id for h in found] == expected, query
    assert not found.truncated


async def test_a_number_regex_reads_only_the_articles_holding_its_mark(tmp_path: Path) -> None:
    arts = pauses(60)
    async with await _open(tmp_path / "nw.db") as store:
        await store.record_many([_record(a) for a in arts])
        ids = await _page_ids(store, QUERY)
        assert ids == [a.id for a in reversed(arts) if a.text.startswith("Talks after ") and
                       any(c.isdigit() for c in a.text)]
        assert len(ids) == 12
        for query in (QUERY, r"/(\d+) pause/ AND talks", r"text:/\d+\s+PAUSE/", r"/\d+ pau/"):
            await _same_as_full_scan(store, arts, query)


async def test_a_row_placed_by_its_words_is_still_found(tmp_path: Path) -> None:
    # A tool that gives an article's words without its places: its row holds no marks, so
    # the store reads the query without them (every row with the word) while such a row is.
    arts = pauses(20)
    extra = Article(title="Late", guid="late", source="s", text="After 9 pause, more.",
                    published=BASE + timedelta(days=1))
    path = tmp_path / "nw.db"
    async with await _open(path) as store:
        await store.record_many([_record(a) for a in arts])
    async with await SqliteStore.open(path) as store:  # a tool's: no places of its own
        await store.record_many([_record(extra, places=False)])
    async with await SqliteStore.open(path, readonly=True) as store:
        assert len(await _page_ids(store, QUERY)) == 21
        await _same_as_full_scan(store, [*arts, extra], QUERY)


@pytest.mark.parametrize("state", [
    "UPDATE index_keys SET version = 5",  # built with the keys before marks
    f"INSERT INTO {schema.PLACES_INCOMPLETE} (gap, since) VALUES (2, 'x')",  # placed by words
])
async def test_an_index_that_may_lack_marks_is_read_without_them(
        tmp_path: Path, state: str) -> None:
    arts = pauses(20)
    path = tmp_path / "nw.db"
    async with await _open(path) as store:
        await store.record_many([_record(a) for a in arts])
    with sqlite3.connect(path) as conn:
        conn.execute(state)
    async with await SqliteStore.open(path, readonly=True) as store:
        assert len(await _page_ids(store, QUERY)) == 20
        await _same_as_full_scan(store, arts, QUERY)


async def test_the_engine_rebuilds_an_index_without_marks_and_reads_them(
        tmp_path: Path) -> None:
    arts = pauses(20)
    path = tmp_path / "nw.db"
    async with await _open(path) as store:
        await store.record_many([_record(a) for a in arts])
    with sqlite3.connect(path) as conn:
        # the rows of an index built with the keys of version 5: no marks
        for key, title, text in conn.execute(
                f"SELECT {schema.INDEX_KEY_SQL}, title, text FROM articles a").fetchall():
            row = places_of(title, text)
            conn.execute(schema.FORGET_PLACES, (key, *row))
            bare = [" ".join(w for w in col.split() if not w.startswith("\u2116"))
                    for col in row]
            conn.execute(schema.INSERT_PLACES, (key, *bare))
        conn.execute("UPDATE index_keys SET version = 5")
    async with await SqliteStore.open(path, readonly=True) as store:
        assert len(await _page_ids(store, QUERY)) == 20
        await _same_as_full_scan(store, arts, QUERY)
    async with await _open(path) as store:
        assert len(await _page_ids(store, QUERY)) == 4
        await _same_as_full_scan(store, arts, QUERY)


NUMBER_QUERIES = [r"/\d+ (people|troops)/", r"/\d+ per cent/", r"/(\d+) years?/",
                  r"/\d+\s+million/ AND title:/\d+ \w+/", r"title:/\d+ [a-z]+s\b/",
                  r"/\d+(?:,\d{3})* (jobs|homes)/", r"/\d+ (mil|bil)/ OR /£\d+ m/",
                  r"/\d+ killed/ NOT /\d+ hurt/", r"/\d{4} (season|election)/"]


async def test_number_regexes_find_what_a_full_scan_finds(tmp_path: Path) -> None:
    arts = [Article(source="bbc", title=d["title"], text=d["text"], guid=d["id"],
                    published=BASE + timedelta(minutes=i)) for i, d in enumerate(bbc_records(150))]
    arts += [Article(source="x", guid=f"x{i}", title=title, text=text,
                     published=BASE - timedelta(days=1, minutes=i))
             for i, (title, text) in enumerate([
                 ("12 Killed", "At least 7\u00a0KILLED and 3\thurt."),
                 ("Late", "ten killed; 4 \u212aILLED in the north"),
                 ("Soft", "It cost 5 mil\u00adlion pounds."),
                 ("Tabs", "Some 40\n\n people left, 1,000 jobs and 2 homes"),
             ])]
    async with await _open(tmp_path / "nw.db") as store:
        await store.record_many([_record(a) for a in arts])
        table = shipped_aliases({})
        marked = [q for q in NUMBER_QUERIES if places_query(parse(q), table, marks=True)
                  != places_query(parse(q), table)]
        # all but title:/\d+ [a-z]+s\b/ (no word) and the OR with /£\d+ m/ (nor there)
        assert len(marked) == len(NUMBER_QUERIES) - 2
        for query in NUMBER_QUERIES:
            await _same_as_full_scan(store, arts, query)
            for limit in (1, 5):
                found = await search(store, query, limit=limit)
                full = await search(store, query, limit=1000)
                assert [h.article.id for h in found] == [h.article.id for h in full][:limit]


RAW = [("a1", "Floods", "At least 14\u00ad killed in the floods."),
       ("a2", "Storm", "Officials say 7 \u00adkilled overnight."),
       ("a3", "Wind", "Some 3 killed as storm hits."),
       ("a4", "Envoys", "Pu\u00adtin met en\u200bvoys; 5\x00killed.")]


def _raw_rows(path: Path, version: int = 5) -> None:
    """Articles as a writer before articles were made readable stored them: a soft hyphen, a
    zero-width space and a NUL kept in the text (read back, they are gone or a space)."""
    with sqlite3.connect(path) as conn:
        for i, (guid, title, text) in enumerate(RAW):
            a = Article(source="old", guid=guid, title=title, text=text)
            at = f"2025-06-0{i + 1}T00:00:00.000000Z"
            conn.execute("INSERT INTO articles (id, source, guid, title, text, fetched_at, "
                         "sort_at, content_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (a.id, a.source, guid, title, text, at, at, a.content_hash))
        conn.execute("UPDATE index_keys SET version = ?", (version,))


@pytest.mark.parametrize("version", [5, 6])  # 6: a writer that built from the raw columns
@pytest.mark.parametrize("query", [r"/\d+ killed/", "putin", "envoys", "killed", r"/\d+ \w+/"])
async def test_a_rebuild_and_a_copy_index_raw_stored_text_as_it_is_read(
        tmp_path: Path, query: str, version: int) -> None:
    # The rebuild (and a copy) placed the raw column values, where the matcher reads the
    # text without its invisible characters: "14\u00ad killed" had no mark, "Pu\u00adtin"
    # was the words "pu" and "tin", and lookups missed what a full scan finds.
    from watchers.store.copy import copy_store

    path = tmp_path / "nw.db"
    async with await _open(path):
        pass
    _raw_rows(path, version)
    async with await _open(path) as store:  # the engine's open rebuilds for its keys
        arts = [a async for a in _all(store)]
        assert any("\u00ad" in t for _, _, t in RAW) and not any("\u00ad" in a.text for a in arts)
        await _same_as_full_scan(store, arts, query)
    await copy_store(str(path), str(tmp_path / "copy.db"), terms_of=index_terms,
                     keys_version=KEYS_VERSION, places_of=places_of)
    async with await SqliteStore.open(tmp_path / "copy.db", readonly=True) as store:
        await _same_as_full_scan(store, arts, query)


async def _all(store: SqliteStore) -> Any:
    page = await store.candidate_page(fts=None, limit=1000)
    for a in page.articles:
        yield a


async def test_a_long_chain_of_optional_digits_is_answered(tmp_path: Path) -> None:
    # A thousand optional items read one by one: a recursion per item overflowed the stack
    # ("/1(1?)x1000 killed/", a query the parser takes, crashed every lookup of it).
    arts = [Article(source="s", guid="g", title="Floods", text="At least 11 killed.")]
    async with await _open(tmp_path / "nw.db") as store:
        await store.record_many([_record(a) for a in arts])
        query = "/1" + "1?" * 1000 + " killed/"
        await _same_as_full_scan(store, arts, query)
