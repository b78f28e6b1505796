"""``url:`` lookups on PostgreSQL: whichever way a page reads them (the URL index's rows with
their times, newest first, then each candidate's title and text; or, when the URL index holds
too many matches, a walk of the date index and the planner's join of the two indexes), the
pages and lookups hold exactly what a full scan finds, newest first, each once. The choice is
forced every way on a real database. Also: the URL index's reads use indexes only, and the
upgrade to schema 15 (each URL index row carries its article's time) keeps every row."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.search.test_search import articles, queries
from tests.store._support import assert_newest_of_all
from tests.store.test_pg_candidates import CHOICES, force, shrink
from watchers.errors import StoreError
from watchers.models import Article
from watchers.rules import match_query
from watchers.rules.lookup import index_terms, url_terms
from watchers.search import search
from watchers.store.base import URLS_INCOMPLETE, ArticleRecord, sort_time
from watchers.store.postgres import PostgresStore
from watchers.store.postgres import articles as pg_articles
from watchers.store.postgres import schema as pg_schema

START = datetime(2025, 3, 1, tzinfo=UTC)
N = 240


def url_words_of(i: int) -> list[str]:
    """The link words of article ``i``: an outlet (one of five), a section (one of three)."""
    return [f"site{i % 5}", f"sec{i % 3}"]


def words_of(i: int) -> list[str]:
    words = ["every"]
    if i % 2 == 0:
        words.append("half")
    if i % 9 == 0:
        words.append("nine")
    return words


@pytest.fixture
async def pg_store(pg_database: str) -> AsyncIterator[PostgresStore]:
    store = await PostgresStore.open(pg_database)
    try:
        # Inserted out of date order, so the rowid order is not the date order; every seventh
        # article has no link (no URL index row).
        order = sorted(range(N), key=lambda i: (i * 7919) % N)
        for i in order:
            await store.record(
                Article(source=f"s{i % 2 + i % 3}", guid=f"g{i}", title=f"Story {i}",
                        text=" ".join(words_of(i)),
                        url=None if i % 7 == 3 else f"https://example.org/{i}",
                        published=START + timedelta(minutes=i), fetched_at=START),
                [], [], terms=" ".join(words_of(i)),
                url_terms=None if i % 7 == 3 else " ".join(url_words_of(i)))
        conn = await asyncpg.connect(pg_database)
        try:
            await conn.execute("ANALYZE")  # the pages read the row estimate
        finally:
            await conn.close()
        yield store
    finally:
        await store.aclose()


# (fts, urls) -> which article numbers match.
URL_QUERIES: dict[tuple[str | None, str], Callable[[int], bool]] = {
    (None, '"site1"'): lambda i: i % 5 == 1,
    ('"half"', '"site1"'): lambda i: i % 5 == 1 and i % 2 == 0,
    ('"nine"', '"sec0"'): lambda i: i % 3 == 0 and i % 9 == 0,
    ('("half" NOT "nine")', '("site2" OR "site3")'): lambda i: i % 5 in (2, 3) and i % 2 == 0
    and i % 9 != 0,
    ('"every"', '("site4" AND "sec2")'): lambda i: i % 5 == 4 and i % 3 == 2,
    ('"absent"', '"site1"'): lambda i: False,
    ('"half"', '"absent"'): lambda i: False,
}

# How many URL index matches a page reads whole with their times (else: walk and the planner):
# always, never (-1: not even none), or only where few are left below the page's start (a
# lookup's later pages).
URL_READS = {"url index": 10_000, "planner": -1, "url index later": 12}


def expected(fts: str | None, urls: str, *, source: str | None = None,
             since: datetime | None = None) -> list[str]:
    keep = [i for i in range(N) if URL_QUERIES[(fts, urls)](i) and i % 7 != 3
            and (source is None or f"s{i % 2 + i % 3}" == source)
            and (since is None or START + timedelta(minutes=i) >= since)]
    return [f"Story {i}" for i in sorted(keep, reverse=True)]


def spy_url_reads(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each read of the URL index answered (True) or found too many matches (False)."""
    answered: list[bool] = []
    read = pg_articles.ArticlesMixin._url_matches

    async def counted(self: Any, *args: Any) -> Any:
        out = await read(self, *args)
        answered.append(out is not None)
        return out

    monkeypatch.setattr(pg_articles.ArticlesMixin, "_url_matches", counted)
    return answered


@pytest.mark.parametrize("reads", list(URL_READS))
@pytest.mark.parametrize("choice", CHOICES[:4])
async def test_url_pages_hold_every_match_once_newest_first_whichever_way_they_read(
        pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch, reads: str,
        choice: str) -> None:
    shrink(monkeypatch, PAGE_CAP=3, PAGE_CAP_MAX=8, GIN_IDS=5, WALK_FIRST_MIN=3,
           WALK_FIRST_PER_ROW=1, URL_IDS=URL_READS[reads])
    force(monkeypatch, choice)
    answered = spy_url_reads(monkeypatch)
    since = START + timedelta(minutes=100)
    for fts, urls in URL_QUERIES:
        for source, after_time in ((None, None), ("s1", None), (None, since)):
            want = expected(fts, urls, source=source, since=after_time)
            for size in (2, 50):
                seen: list[str] = []
                cursor = None
                for _ in range(N + 1):
                    page = await pg_store.candidate_page(fts=fts, urls=urls, after=cursor,
                                                         limit=size, source=source,
                                                         since=after_time)
                    assert len(page.articles) <= size
                    seen += [a.title for a in page.articles]
                    if page.next is None:
                        break
                    cursor = page.next
                assert seen == want, (fts, urls, source, after_time, size)
    # The forced way was the way taken.
    if reads == "url index":
        assert answered and all(answered)
    elif reads == "planner":
        assert answered and not any(answered)
    else:
        assert True in answered and False in answered


@pytest.mark.parametrize("reads", list(URL_READS))
async def test_url_pages_with_since_at_the_ends_of_time_answer_like_a_scan(
        pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch, reads: str) -> None:
    # The URL index's read writes its time bounds into the statement: the earliest and latest
    # times a datetime holds, and one in another offset, must read as the same instants.
    shrink(monkeypatch, URL_IDS=URL_READS[reads])
    other_offset = (START + timedelta(minutes=100)).astimezone(timezone(timedelta(hours=-9,
                                                                               minutes=-30)))
    for since, keep in ((datetime.min.replace(tzinfo=UTC), None),
                        (datetime.max.replace(tzinfo=UTC), START + timedelta(days=10**6)),
                        (other_offset, other_offset)):
        for fts, urls in (('"half"', '"site1"'), (None, '"site1"'), ('"nine"', '"sec0"')):
            page = await pg_store.candidate_page(fts=fts, urls=urls, since=since, limit=500)
            assert [a.title for a in page.articles] == expected(fts, urls, since=keep), since
            assert page.next is None


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(url=st.sampled_from(["url:bbc", "url:reuters", 'url:"bbc co uk"', "url:world",
                            "url:news*", "url:kyiv", "url:2005", "url:absent"]),
       rest=st.none() | queries, reads=st.sampled_from(list(URL_READS)),
       choice=st.sampled_from(CHOICES), limit=st.sampled_from([1, 3, 8]),
       where=st.sampled_from(["all", "source", "since"]))
async def test_url_lookups_on_postgresql_find_exactly_what_a_full_scan_finds(
        pg_database: str, monkeypatch: pytest.MonkeyPatch, url: str, rest: str | None,
        reads: str, choice: str, limit: int, where: str) -> None:
    shrink(monkeypatch, PAGE_CAP=2, PAGE_CAP_MAX=4, GIN_IDS=3,
           WALK_FIRST_MIN=2, WALK_FIRST_PER_ROW=1, URL_IDS=URL_READS[reads])
    force(monkeypatch, choice)
    query = url if rest is None else f"{url} AND {rest}"
    async with await PostgresStore.open(pg_database) as store:
        arts = articles()
        if await store.count_articles() == 0:
            await store.record_many([ArticleRecord(a, [], [], index_terms(a.title, a.text),
                                                   url_terms=url_terms(a.url)) for a in arts])
        stored = {a.title: a for a in await store.candidates(fts=None, limit=10_000)}
        since = sorted(sort_time(a) for a in stored.values())[len(stored) // 2]
        kw: dict[str, Any] = {"source": "bbc"} if where == "source" else (
            {"since": since} if where == "since" else {})
        expected = {a.title for a in stored.values() if match_query(query, a) is not None
                    and (where != "source" or a.source == "bbc")
                    and (where != "since" or sort_time(a) >= since)}
        # Tiny pages make many round trips: a budget no loaded machine runs out of.
        every = await search(store, query, limit=10_000, budget=50, **kw)
        newest = await search(store, query, limit=limit, budget=50, **kw)
    assert_newest_of_all(every, newest, expected, limit)


# --------------------------------------------------------------------------- query plans

OUTLETS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
           "juliett", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
           "sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu"]


async def test_a_url_lookup_reads_the_url_index_and_probes_articles_by_key(
        pg_database: str) -> None:
    """``url:`` AND a word, and ``url:`` alone, on 3,000 articles: the first page is one read
    of the URL index (its GIN index, then each candidate's article by primary key, newest
    first), with no walk of the date index, no read of the title and text index and no scan
    of the articles table."""
    recs = []
    for i in range(3000):
        a = Article(source=f"s{i % 26}", guid=f"g{i}",
                    title=f"{'Government' if i % 5 == 0 else 'Council'} report {i}",
                    text="A statement followed.", fetched_at=START + timedelta(days=3),
                    published=START + timedelta(minutes=(i * 7919) % 3000),
                    url=f"https://www.{OUTLETS[i % 26]}.example/news/report-{i}")
        recs.append(ArticleRecord(a, [], [], index_terms(a.title, a.text),
                                  url_terms=url_terms(a.url)))
    statements: list[tuple[str, tuple[Any, ...]]] = []
    async with await PostgresStore.open(pg_database) as store:
        await store.record_many(recs)
        fetch = store._db.fetch

        async def traced(sql: str, *args: Any, what: str | None = None) -> Any:
            statements.append((sql, args))
            return await fetch(sql, *args, what=what)

        conn = await asyncpg.connect(pg_database)
        try:
            await conn.execute("VACUUM ANALYZE")
            for query in ("government AND url:golf", "url:golf"):
                statements.clear()
                store._db.fetch = traced  # type: ignore[method-assign]
                try:
                    found = await search(store, query, limit=20)
                finally:
                    store._db.fetch = fetch  # type: ignore[method-assign]
                assert sum(1 for r in recs if match_query(query, r.article)) > 20, query
                assert len(found) == 20 and found.scanned == 20, query
                plans = {sql: "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql, *args))
                         for sql, args in statements}
                url_reads = [p for sql, p in plans.items() if "FROM article_urls WHERE" in sql]
                assert len(url_reads) == 1, (query, list(plans))
                assert "article_urls_words" in url_reads[0], url_reads[0]
                if "AND" in query:
                    assert "Index Scan using articles_pkey" in url_reads[0], url_reads[0]
                for sql, plan in plans.items():
                    assert "Seq Scan on articles" not in plan, (sql, plan)
                    assert "articles_sort" not in plan, (sql, plan)  # no walk, no window
                    assert "articles_terms" not in plan, (sql, plan)
        finally:
            await conn.close()


# --------------------------------------------------------------------------- schema 15


async def _as_version_14(pg_database: str) -> None:
    """The PostgreSQL store as schema 14 left it: URL index rows without their times."""
    conn = await asyncpg.connect(pg_database)
    try:
        async with conn.transaction():
            await conn.execute("CREATE TEMP TABLE kept AS SELECT article, words FROM article_urls")
            await conn.execute("DROP TABLE article_urls")
            await conn.execute(pg_schema._V14_TABLE)
            await conn.execute("INSERT INTO article_urls (article, words) "
                               "SELECT article, words FROM kept")
            await conn.execute(pg_schema._V14_INDEX)
            await conn.execute("DROP TABLE departed_servers")  # schema 16
            await conn.execute("DROP TABLE index_keys")  # schema 18
            await conn.execute("ALTER TABLE stories DROP COLUMN source_outlets")  # schema 19
            await conn.execute("ALTER TABLE matches DROP COLUMN retired")  # schema 20
            await conn.execute("UPDATE schema_version SET version = 14")
    finally:
        await conn.close()


async def _url_rows(pg_database: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(pg_database)
    try:
        return [tuple(r) for r in await conn.fetch(
            "SELECT u.article, u.words::text, a.sort_at FROM article_urls u "
            "JOIN articles a ON a.rowid = u.article ORDER BY 1")]
    finally:
        await conn.close()


async def _shape(url: str) -> list[Any]:
    """The URL index table's columns, constraints and indexes."""
    conn = await asyncpg.connect(url)
    try:
        return [
            [tuple(r) for r in await conn.fetch(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_name = 'article_urls' ORDER BY ordinal_position")],
            sorted(tuple(r) for r in await conn.fetch(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'article_urls'::regclass")),
            sorted(tuple(r) for r in await conn.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'article_urls'")),
        ]
    finally:
        await conn.close()


async def _filled(pg_database: str) -> list[Article]:
    arts = articles()
    async with await PostgresStore.open(pg_database) as store:
        await store.record_many([ArticleRecord(a, [], [], index_terms(a.title, a.text),
                                               url_terms=url_terms(a.url)) for a in arts])
    return arts


async def test_a_schema_14_store_keeps_every_url_index_row_when_upgraded(
        pg_database: str, caplog: pytest.LogCaptureFixture) -> None:
    arts = await _filled(pg_database)
    rows = await _url_rows(pg_database)
    assert len(rows) == sum(1 for a in arts if a.url)
    fresh = await _shape(pg_database)
    await _as_version_14(pg_database)
    with caplog.at_level(logging.INFO, logger="watchers.store"):
        store = await PostgresStore.open(pg_database)
    said = [r.getMessage() for r in caplog.records]
    assert any(f"adding their articles' times to the {len(rows)} rows of the URL index" in m
               for m in said), said
    async with store:
        assert (await store._db.fetchval("SELECT version FROM schema_version")
                == pg_schema.SCHEMA_VERSION)
        # every row kept, each with its article's time
        assert await _url_rows(pg_database) == rows
        assert await store._db.fetchval(
            "SELECT count(*) FROM article_urls u JOIN articles a ON a.rowid = u.article "
            "WHERE u.sort_at = a.sort_at") == len(rows)
        for query in ("url:bbc", "url:kyiv AND talks", "url:world AND (government OR minister)",
                      "url:news*"):
            found = await search(store, query, limit=10_000)
            assert {h.article.title for h in found} == {
                a.title for a in arts if match_query(query, a) is not None}, query
        # the same table as a new database's: columns, keys (a deleted article takes its
        # row with it) and the GIN index
        assert await _shape(pg_database) == fresh
        await store._db.execute("DELETE FROM articles WHERE url IS NOT NULL AND rowid = "
                                "(SELECT min(article) FROM article_urls)")
        assert await store._db.fetchval("SELECT count(*) FROM article_urls") == len(rows) - 1


async def test_an_upgrade_to_15_that_fails_half_way_changes_nothing_and_completes_later(
        pg_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    await _filled(pg_database)
    rows = await _url_rows(pg_database)
    await _as_version_14(pg_database)
    # The new table is filled and swapped in; its GIN index then fails.
    monkeypatch.setattr(pg_schema, "_V14_INDEX", "SELECT 1 / 0")
    with pytest.raises(StoreError, match="division by zero"):
        await PostgresStore.open(pg_database)
    conn = await asyncpg.connect(pg_database)
    try:
        assert await conn.fetchval("SELECT version FROM schema_version") == 14
        assert [r[0] for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'article_urls' ORDER BY ordinal_position")] == ["article", "words"]
        assert await conn.fetchval("SELECT to_regclass('article_urls_v15')") is None
    finally:
        await conn.close()
    monkeypatch.undo()
    async with await PostgresStore.open(pg_database) as store:
        assert (await store._db.fetchval("SELECT version FROM schema_version")
                == pg_schema.SCHEMA_VERSION)
    assert await _url_rows(pg_database) == rows


async def test_an_incomplete_url_index_stays_marked_through_the_upgrade(
        pg_database: str) -> None:
    """A schema-14 store whose URL index misses a link keeps the mark: url: lookups still
    read unnarrowed, finding the link the index misses."""
    arts = await _filled(pg_database)
    late = Article(source="x", title="Late wire", text="Ports shut.",
                   url="https://latewire.example/ports")
    async with await PostgresStore.open(pg_database) as store:
        # stored without its link's words, by a store that has no words function
        await store.record(late, [], [], terms=index_terms(late.title, late.text))
    await _as_version_14(pg_database)
    async with await PostgresStore.open(pg_database) as store:
        assert (await store._db.fetchval("SELECT version FROM schema_version")
                == pg_schema.SCHEMA_VERSION)
        assert await store._db.fetchval(
            f"SELECT count(*) FROM {URLS_INCOMPLETE}") == 1
        for query in ("url:latewire", "url:bbc AND talks"):
            found = await search(store, query, limit=10_000)
            assert {h.article.title for h in found} == {
                a.title for a in [*arts, late] if match_query(query, a) is not None}, query
