"""The URL index: every write path indexes an article's link words in the transaction that
stores it, the migration fills it for articles stored before it existed (and an interrupted fill
changes nothing), and ``url:`` lookups through it find exactly what a full scan finds."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from tests.search.test_search import articles
from tests.store._support import breaks_after, words_indexed_as_before_17
from watchers.errors import QuerySyntaxError
from watchers.importer import import_file
from watchers.models import Article
from watchers.rules import RuleSet, match_query, shipped_aliases
from watchers.rules.lookup import index_terms, lookup_terms, url_query, url_terms
from watchers.rules.syntax import parse
from watchers.search import search
from watchers.store import SqliteStore
from watchers.store.base import ArticleRecord, Store
from watchers.store.copy import copy_store
from watchers.store.postgres import PostgresStore
from watchers.store.postgres import schema as pg_schema
from watchers.store.sqlite import articles as lite_articles
from watchers.store.sqlite import schema as lite_schema

QUERIES = ["url:bbc", "url:reuters", 'url:"bbc co uk"', "url:kyiv AND talks", "url:київ",
           "url:cyberattack", "url:attack", "url:news*", "url:bbc OR url:kyiv", "url:world",
           "url:troop", "url:2005", "url:kyiv~", "url:/europe/", "ukraine NOT url:bbc"]


def _expected(arts: list[Article], query: str) -> set[str]:
    return {a.title for a in arts if match_query(query, a) is not None}


async def _fill(store: Store, arts: list[Article]) -> None:
    await store.record_many([ArticleRecord(a, [], [], index_terms(a.title, a.text),
                                           url_terms=url_terms(a.url)) for a in arts])


def test_a_url_query_narrows_through_terms_every_match_needs() -> None:
    table = shipped_aliases({})
    assert url_query(parse("url:bbc"), table) == '"bbc"'
    assert url_query(parse("ukraine AND url:bbc"), table) == '"bbc"'
    assert url_query(parse('url:"bbc co uk"'), table) == '("bbc" AND "co" AND "uk")'
    assert url_query(parse("url:bbc OR url:dw"), table) == '("bbc" OR "dw")'
    assert url_query(parse("url:news*"), table) == '"news"*'
    # an OR with another field, a negation, a fuzzy term or a regex narrows nothing
    for query in ("url:bbc OR ukraine", "ukraine NOT url:bbc", "url:kyiv~", "url:/bbc/",
                  "title:bbc", "ukraine"):
        assert url_query(parse(query), table) is None, query


def test_a_links_words_are_the_matchers_tokens_of_the_url_field() -> None:
    url = "https://www.bbc.co.uk/news/Cyber-Attacks/Russia's-troops?id=7"
    assert url_terms(url) == lookup_terms(url)
    assert {"bbc", "cyberattack", "russia", "troop"} <= set(url_terms(url).split())
    assert url_terms(None) == url_terms("") == ""


async def test_url_lookups_find_exactly_what_a_full_scan_finds(store: Store) -> None:
    arts = articles()
    await _fill(store, arts)
    for query in QUERIES:
        found = await search(store, query, limit=10_000)
        assert {h.article.title for h in found} == _expected(arts, query), query
        assert not found.truncated
    # a url: word narrows: only the articles whose link holds it are read
    found = await search(store, "url:reuters", limit=10_000)
    assert 0 < found.scanned == len(_expected(arts, "url:reuters"))


@pytest.mark.parametrize("limit", [1, 3, 10_000])
async def test_lookups_needing_both_indexes_page_through_small_windows_exactly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    # Windows of two URL keys and chunks of three lookup keys: many of each per page.
    monkeypatch.setattr(lite_articles, "URL_WINDOW", 2)
    monkeypatch.setattr(lite_articles, "JOIN_CHUNK", 3)
    arts = articles()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await _fill(store, arts)
        for query in ("url:bbc AND the", "url:world AND (government OR minister)",
                      'url:"bbc co uk" AND NOT football', "url:kyiv AND talks", "url:news* AND a"):
            every = _expected(arts, query)
            found = await search(store, query, limit=limit)
            titles = [h.article.title for h in found]
            assert set(titles) <= every and len(titles) == min(limit, len(every)), query
            if limit >= len(every):
                assert set(titles) == every


async def test_each_write_path_indexes_the_link_with_the_article(
        store: Store, tmp_path: Path) -> None:
    one = Article(source="a", title="Flood warning", text="Rivers rose.",
                  url="https://www.onewire.example/floods/warning")
    await store.record(one, [], [], terms=index_terms(one.title, one.text),
                       url_terms=url_terms(one.url))
    many = [Article(source="b", title=f"Market report {i}", text="Shares fell.",
                    url=f"https://manywire.example/markets/{i}") for i in range(3)]
    await _fill(store, many)
    lines = tmp_path / "history.jsonl"
    lines.write_text(json.dumps({"id": "imp-1", "title": "Harbour closed", "text": "Storms.",
                                 "url": "https://importwire.example/harbour",
                                 "date": "2025-02-01T10:00:00Z", "source": "c"}) + "\n",
                     encoding="utf-8")
    await import_file(store, lines, ruleset=RuleSet.from_queries({}))
    titles = {q: {h.article.title for h in await search(store, q, limit=100)}
              for q in ("url:onewire", "url:manywire", "url:importwire", "url:harbour",
                        "url:markets AND report")}
    assert titles == {"url:onewire": {"Flood warning"},
                      "url:manywire": {f"Market report {i}" for i in range(3)},
                      "url:importwire": {"Harbour closed"}, "url:harbour": {"Harbour closed"},
                      "url:markets AND report": {f"Market report {i}" for i in range(3)}}


async def test_a_copy_indexes_the_links_on_either_backend(
        tmp_path: Path, pg_database: str) -> None:
    arts = articles()
    async with await SqliteStore.open(tmp_path / "a.db") as lite:
        await _fill(lite, arts)
    await copy_store(str(tmp_path / "a.db"), pg_database, terms_of=lookup_terms)
    await copy_store(pg_database, str(tmp_path / "b.db"), terms_of=lookup_terms)
    async with await PostgresStore.open(pg_database) as pg, \
            await SqliteStore.open(tmp_path / "b.db") as back:
        for store in (pg, back):
            for query in ("url:bbc", "url:kyiv AND talks", "url:cyberattack"):
                found = await search(store, query, limit=10_000)
                assert {h.article.title for h in found} == _expected(arts, query), query


# --------------------------------------------------------------------------- the migration


def _as_version_11(db: Path) -> None:
    """The SQLite store as schema 11 left it: no URL index."""
    con = sqlite3.connect(db)
    with con:
        con.execute("DROP TABLE article_urls")
        con.execute("DROP TABLE article_urls_incomplete")
        con.execute("DROP TABLE departed_servers")  # schema 13
        con.execute("DROP TABLE index_keys")  # schema 14
        con.execute("ALTER TABLE stories DROP COLUMN source_outlets")  # schema 16
        con.execute("ALTER TABLE matches DROP COLUMN retired")  # schema 18
        # schema 17: the places index, and the view's trigger as it was before
        con.executescript("DROP TABLE article_places; DROP TABLE article_places_incomplete; "
                          "DROP TABLE article_places_inexact; "
                          "DROP TRIGGER article_terms_insert; DROP VIEW article_terms; "
                          + lite_schema.ARTICLE_TERMS)
        words_indexed_as_before_17(con)
        con.execute("PRAGMA user_version=11")
    con.close()


async def _schema_11_store(tmp_path: Path) -> tuple[Path, list[Article]]:
    """An SQLite store of the test articles as schema 11 left it."""
    db = tmp_path / "nw.db"
    arts = articles()
    async with await SqliteStore.open(db) as store:
        await _fill(store, arts)
    _as_version_11(db)
    return db, arts


async def test_a_schema_11_store_indexes_its_links_when_upgraded(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db, arts = await _schema_11_store(tmp_path)
    with caplog.at_level(logging.INFO, logger="watchers.store"):
        store = await SqliteStore.open(db, terms_of=lookup_terms)
    said = [r.getMessage() for r in caplog.records]
    assert f"{db}: indexing the links of {len(arts)} stored articles" in said[0]
    # (and then schema 17 says its places index waits for a rebuild)
    assert said[-2] == f"{db}: indexed the links of {sum(1 for a in arts if a.url)} articles"
    assert "the places index (schema 17) is filled by the next rebuild" in said[-1]
    async with store:
        for query in QUERIES:
            found = await search(store, query, limit=10_000)
            assert {h.article.title for h in found} == _expected(arts, query), query
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == lite_schema.SCHEMA_VERSION
    con.close()


async def test_an_sqlite_upgrade_that_fails_half_way_changes_nothing_and_completes_later(
        tmp_path: Path) -> None:
    db, arts = await _schema_11_store(tmp_path)
    with pytest.raises(ValueError, match="tokeniser broke"):
        await SqliteStore.open(db, terms_of=breaks_after(20, lookup_terms))
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 11
    assert con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'article_urls'"
                       ).fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM articles").fetchone()[0] == len(arts)
    con.close()
    async with await SqliteStore.open(db, terms_of=lookup_terms) as store:
        found = await search(store, "url:bbc", limit=10_000)
    assert {h.article.title for h in found} == _expected(arts, "url:bbc")


async def _as_version_13(pg_database: str) -> None:
    """The PostgreSQL store as schema 13 left it: no URL index."""
    async with await PostgresStore.open(pg_database) as store, store._db.tx() as conn:
        await conn.execute("DROP TABLE article_urls")
        await conn.execute("DROP TABLE article_urls_incomplete")
        await conn.execute("DROP TABLE departed_servers")  # schema 16
        await conn.execute("DROP TABLE index_keys")  # schema 17
        await conn.execute("ALTER TABLE stories DROP COLUMN source_outlets")  # schema 19
        await conn.execute("ALTER TABLE matches DROP COLUMN retired")  # schema 20
        await conn.execute("UPDATE schema_version SET version = 13")


async def test_a_schema_13_postgresql_store_indexes_its_links_when_upgraded(
        pg_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    arts = articles()
    async with await PostgresStore.open(pg_database) as store:
        await _fill(store, arts)
    await _as_version_13(pg_database)
    # Chunks of a few links, so the fill takes many.
    monkeypatch.setattr(pg_schema, "URL_CHUNK", 7)
    with pytest.raises(ValueError, match="tokeniser broke"):
        await PostgresStore.open(pg_database, terms_of=breaks_after(20, lookup_terms))
    conn = await asyncpg.connect(pg_database)
    try:
        assert await conn.fetchval("SELECT version FROM schema_version") == 13
        assert await conn.fetchval("SELECT to_regclass('article_urls')") is None
        assert await conn.fetchval("SELECT count(*) FROM articles") == len(arts)
    finally:
        await conn.close()
    async with await PostgresStore.open(pg_database, lock=False, readonly=False,
                                        terms_of=lookup_terms) as store:
        assert await store._db.fetchval("SELECT version FROM schema_version") == \
            pg_schema.SCHEMA_VERSION
        for query in QUERIES:
            found = await search(store, query, limit=10_000)
            assert {h.article.title for h in found} == _expected(arts, query), query


async def test_links_without_their_words_leave_url_lookups_whole_not_narrowed(
        tmp_path: Path, pg_database: str) -> None:
    """The URL index holds the engine's words of each link, which the store does not know: an
    upgrade without the engine's words function, or an article stored without its link's words
    by a store opened without one, marks the index incomplete, and url: lookups then read as
    they did before it (every match found, none narrowed away)."""
    db, arts = await _schema_11_store(tmp_path)
    async with await SqliteStore.open(db) as store:  # no terms_of: the links stay unindexed
        for query in ("url:bbc", "url:kyiv AND talks"):
            found = await search(store, query, limit=10_000)
            assert {h.article.title for h in found} == _expected(arts, query), query
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == lite_schema.SCHEMA_VERSION
    assert con.execute("SELECT count(*) FROM article_urls_incomplete").fetchone()[0] == 1
    con.close()

    late = Article(source="x", title="Late wire", text="Ports shut.",
                   url="https://latewire.example/ports")
    stores: list[SqliteStore | PostgresStore] = [await SqliteStore.open(tmp_path / "other.db"),
                                                 await PostgresStore.open(pg_database)]
    for other in stores:
        async with other as store:
            await _fill(store, arts)
            assert {h.article.title for h in await search(store, "url:bbc", limit=10_000)
                    } == _expected(arts, "url:bbc")
            # stored without its link's words, by a store that has no words function
            await store.record(late, [], [], terms=index_terms(late.title, late.text))
            for query in ("url:latewire", "url:bbc"):
                found = await search(store, query, limit=10_000)
                assert {h.article.title for h in found} == _expected([*arts, late], query), query


async def test_hostile_url_terms_answer_like_a_full_scan(store: Store) -> None:
    """url: terms written to break the URL index's query (its quotes, operators, a prefix of
    nothing, a word a thousand times longer than any) answer what a full scan answers, or a
    clear syntax error, and the store keeps answering."""
    arts = articles()
    await _fill(store, arts)
    hostile = ['url:"bbc""co"', 'url:"AND"', "url:NEAR", 'url:"bbc OR reuters"',
               "url:" + "x" * 5000, 'url:"' + "bbc " * 500 + '"', "url:co*",
               'url:"*"', "url:'bbc'", "url:b-b-c", "url:%22bbc%22", "url:bbc\u0000x"]
    for query in hostile:
        try:
            expected = _expected(arts, query)
        except QuerySyntaxError:
            with pytest.raises(QuerySyntaxError):
                await search(store, query, limit=10_000)
            continue
        found = await search(store, query, limit=10_000)
        assert not found.truncated, query
        assert {h.article.title for h in found} == expected, query
    assert {h.article.title for h in await search(store, "url:bbc", limit=10_000)
            } == _expected(arts, "url:bbc")


async def test_a_link_a_thousand_times_longer_is_indexed_and_found(store: Store) -> None:
    """A feed item whose link is 200 KB (a tracking URL gone wrong) is stored whole, its words
    indexed with it, and found by a word at its far end."""
    tail = "-".join(f"w{i}" for i in range(40_000))
    huge = Article(source="x", title="Huge link", text="Ports shut.",
                   url=f"https://hugewire.example/{tail}-farend")
    assert len(huge.url or "") > 200_000
    await _fill(store, [huge, *articles()[:5]])
    for query in ("url:farend", "url:hugewire AND ports", "url:w39999"):
        found = await search(store, query, limit=10)
        assert [h.article.title for h in found] == ["Huge link"], query


async def test_a_runaway_link_or_guid_neither_fails_its_batch_nor_escapes_dedupe(
        store: Store) -> None:
    """A link of 200 KB is kept as a hash of itself in the dedupe key (PostgreSQL's b-tree
    refuses entries over about 2.7 KB, which failed the whole batch), so the batch is stored,
    and the same link again is a duplicate while another long link is not."""
    tail = "-".join(f"w{i}" for i in range(40_000))
    first = Article(source="x", title="One", text="a", url=f"https://runaway.example/{tail}")
    again = Article(source="x", title="One, again", text="b", url=f"https://runaway.example/{tail}")
    other = Article(source="x", title="Other", text="c", url=f"https://runaway.example/{tail}-2")
    wide = Article(source="y", title="Wide guid", text="d", guid="新" * 2000)
    stored = await store.record_many([ArticleRecord(a, [], [], index_terms(a.title, a.text),
                                                    url_terms=url_terms(a.url))
                                      for a in (first, other, wide)])
    assert [a.title if a else None for a in stored] == ["One", "Other", "Wide guid"]
    assert await store.known([again, wide]) == [True, True]
    assert await store.record(again, [], [], terms=index_terms(again.title, again.text),
                              url_terms=url_terms(again.url)) is None
