"""PostgreSQL candidate pages: whichever way a page reads the matches (walking the date index,
then the GIN index below the walk, see ``PostgresStore.candidate_page``), the pages hold
exactly the matching articles, newest first, each once. The choice is forced both ways (and
left to the costs) on a real database; the expected pages are computed here from the words
each article was given."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg  # type: ignore[import-untyped]
import pytest

from watchers.models import Article
from watchers.store.postgres import PostgresStore
from watchers.store.postgres import articles as pg_articles
from watchers.store.postgres.articles import walk_or_index

START = datetime(2025, 3, 1, tzinfo=UTC)
N = 240


def words_of(i: int) -> list[str]:
    words = ["every"]
    if i % 2 == 0:
        words.append("half")
    if i % 9 == 0:
        words.append("nine")
    if i % 37 == 5:
        words.append("few")
    return words


@pytest.fixture
async def pg_store(pg_database: str) -> AsyncIterator[PostgresStore]:
    store = await PostgresStore.open(pg_database)
    try:
        # Inserted out of date order, so the rowid order is not the date order.
        order = sorted(range(N), key=lambda i: (i * 7919) % N)
        for i in order:
            words = words_of(i)
            await store.record(
                Article(source=f"s{i % 2 + i % 3}", guid=f"g{i}", title=f"Story {i}",
                        text=" ".join(words), url=f"https://example.org/{i}",
                        published=START + timedelta(minutes=i), fetched_at=START),
                [], [], terms=" ".join(words))
        conn = await asyncpg.connect(pg_database)
        try:
            await conn.execute("ANALYZE articles")  # the page reads the row estimate
        finally:
            await conn.close()
        yield store
    finally:
        await store.aclose()


QUERIES: dict[str, Callable[[list[str]], bool]] = {
    '"every"': lambda w: True,
    '"half"': lambda w: "half" in w,
    '"few"': lambda w: "few" in w,
    '("few" OR "nine")': lambda w: "few" in w or "nine" in w,
    '("half" AND "nine")': lambda w: "half" in w and "nine" in w,
    '("half" NOT "nine")': lambda w: "half" in w and "nine" not in w,
    '"absent"': lambda w: False,
}


def expected(fts: str, *, source: str | None = None, since: datetime | None = None
             ) -> list[str]:
    keep = [i for i in range(N) if QUERIES[fts](words_of(i))
            and (source is None or f"s{i % 2 + i % 3}" == source)
            and (since is None or START + timedelta(minutes=i) >= since)]
    return [f"Story {i}" for i in sorted(keep, reverse=True)]


def shrink(monkeypatch: pytest.MonkeyPatch, **caps: int) -> None:
    """Candidate pages' caps and first walks made tiny for the test (``PAGE_CAP=2``, …), so
    that a small store takes many pages."""
    for name, value in caps.items():
        monkeypatch.setattr(pg_articles, name, value)


def force(monkeypatch: pytest.MonkeyPatch, choice: str) -> None:
    """Make candidate pages read the matches one way: ``walk`` the date index on, read the
    GIN ``index`` below the walk unbounded, or within a date ``window`` (``short window``: one
    that holds too few, so the read goes on below it); ``costs``: as the costs say."""
    if choice == "costs":
        return
    # 0: walking on always looks cheaper; huge: the GIN index always does.
    monkeypatch.setattr(pg_articles, "WALK_COST", 0.0 if choice == "walk" else 1e12)
    # 0: a window always looks cheaper than the unbounded read; huge: never.
    monkeypatch.setattr(pg_articles, "WINDOW_COST", 0.0 if "window" in choice else 1e12)
    if choice == "short window":
        monkeypatch.setattr(pg_articles, "WINDOW_MARGIN", 0.05)


CHOICES = ["walk", "index", "window", "short window", "costs"]


@pytest.mark.parametrize("choice", CHOICES)
async def test_pages_hold_every_match_once_newest_first_whichever_index_reads_them(
        pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch, choice: str) -> None:
    # Short first walks, so that one page takes several walks or turns to the GIN index.
    shrink(monkeypatch, WALK_FIRST_MIN=3, WALK_FIRST_PER_ROW=1)
    force(monkeypatch, choice)
    since = START + timedelta(minutes=100)
    for fts in QUERIES:
        for source, after_time in ((None, None), ("s1", None), (None, since)):
            want = expected(fts, source=source, since=after_time)
            for size in (3, 50, 400):
                seen: list[str] = []
                cursor = None
                for _ in range(N + 1):
                    page = await pg_store.candidate_page(fts=fts, after=cursor, limit=size,
                                                         source=source, since=after_time)
                    assert len(page.articles) <= size
                    seen += [a.title for a in page.articles]
                    if page.next is None:
                        break
                    cursor = page.next
                assert seen == want, (fts, source, after_time, size)


async def test_a_quoted_term_with_quotes_and_backslashes_is_read_as_written(
        pg_database: str) -> None:
    async with await PostgresStore.open(pg_database) as store:
        await store.record(Article(source="s", guid="1", title="O'Brien", text="x"), [], [],
                           terms="o'brien")
        await store.record(Article(source="s", guid="2", title="Other", text="x"), [], [],
                           terms="other")
        found = await store.candidates(fts='"o\'brien"')
        assert [a.title for a in found] == ["O'Brien"]
        assert await store.candidates(fts='"back\\slash\'"') == []


def test_dense_matches_walk_on_and_sparse_ones_turn_to_the_index() -> None:
    # 40 of 400 walked rows matched: 10% of a million rows; 100 more are 1,000 rows away.
    assert walk_or_index(100, 400, 40, 1_000_000) >= 1000
    # 1 of 400 walked rows: walking on for 100 more would read ~20,000 rows; the index reads
    # ~5,000 matches.
    assert walk_or_index(100, 400, 1, 1_000_000) == 0
    # Nothing found in a small table: reading its few matches beats walking.
    assert walk_or_index(10, 400, 0, 1000) == 0


def read_all(pages: list[list[str]]) -> list[str]:
    return [t for page in pages for t in page]


async def page_through(store: PostgresStore, fts: str, size: int,
                       between: Callable[[int], Awaitable[None]] | None = None
                       ) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    for i in range(N + 1):
        page = await store.candidate_page(fts=fts, after=cursor, limit=size)
        assert len(page.articles) <= size
        pages.append([a.title for a in page.articles])
        if page.next is None:
            return pages
        cursor = page.next
        if between is not None:
            await between(i)
    pytest.fail("the pages never ended")


@pytest.mark.parametrize("choice", CHOICES[:4])
async def test_capped_pages_that_grow_and_continue_a_gin_read_hold_every_match_once(
        pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch, choice: str) -> None:
    # Tiny caps and GIN reads, so pages are cut short, grow, continue a GIN read's positions
    # and run past them into a fresh read.
    shrink(monkeypatch, PAGE_CAP=2, PAGE_CAP_MAX=8, GIN_IDS=5,
           WALK_FIRST_MIN=3, WALK_FIRST_PER_ROW=1)
    force(monkeypatch, choice)
    for fts in QUERIES:
        pages = await page_through(pg_store, fts, 100)
        assert read_all(pages) == expected(fts), fts
        if len(expected(fts)) > 20:
            sizes = [len(p) for p in pages]
            assert sizes[0] == 2 and max(sizes) <= 8, (fts, sizes)
            if choice == "walk":
                assert sizes[:5] == [2, 2, 4, 8, 8], (fts, sizes)
            # (a page continuing a GIN read may hold only what is left of its positions)


async def test_a_page_continuing_a_gin_read_skips_an_article_deleted_since(
        pg_store: PostgresStore, pg_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    shrink(monkeypatch, WALK_FIRST_MIN=3, WALK_FIRST_PER_ROW=1, PAGE_CAP=3)
    monkeypatch.setattr(pg_articles, "WALK_COST", 1e12)  # the GIN index reads the matches
    want = expected('"half"')
    gone = want[7]  # on a page the first GIN read's positions serve

    async def delete(i: int) -> None:
        if i == 0:
            conn = await asyncpg.connect(pg_database)
            try:
                await conn.execute("DELETE FROM articles WHERE title = $1", gone)
            finally:
                await conn.close()

    pages = await page_through(pg_store, '"half"', 50, delete)
    assert read_all(pages) == [t for t in want if t != gone]


async def test_two_lookups_paging_on_from_the_same_cursor_both_read_every_match(
        pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # What a page leaves for the next is taken once: the second reader of a cursor reads
    # afresh from it and must find the same.
    shrink(monkeypatch, WALK_FIRST_MIN=3, WALK_FIRST_PER_ROW=1, PAGE_CAP=4)
    monkeypatch.setattr(pg_articles, "WALK_COST", 1e12)
    first = await pg_store.candidate_page(fts='"half"', limit=50)
    assert first.next is not None
    rests: list[list[str]] = []
    for _ in range(2):
        titles: list[str] = []
        cursor: str | None = first.next
        while cursor is not None:
            page = await pg_store.candidate_page(fts='"half"', after=cursor, limit=50)
            titles += [a.title for a in page.articles]
            cursor = page.next
        rests.append(titles)
    assert [a.title for a in first.articles] + rests[0] == expected('"half"')
    assert rests[1] == rests[0]


async def test_a_page_of_no_articles_is_refused_by_name(pg_store: PostgresStore) -> None:
    with pytest.raises(ValueError, match="at least one article, not 0"):
        await pg_store.candidate_page(fts='"half"', limit=0)


@pytest.mark.parametrize("choice", CHOICES[:4])
async def test_pages_of_a_few_sources_hold_their_matches_only(
        pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch, choice: str) -> None:
    shrink(monkeypatch, PAGE_CAP=3, WALK_FIRST_MIN=3, WALK_FIRST_PER_ROW=1)
    force(monkeypatch, choice)
    assert await pg_store.stored_sources() == ["s0", "s1", "s2", "s3"]
    assert len(await pg_store.stored_sources(limit=3)) == 3
    for fts in ('"half"', '("few" OR "nine")', None):
        for names in (["s1", "s3"], ["s2"], []):
            seen: list[str] = []
            cursor = None
            for _ in range(N + 1):
                page = await pg_store.candidate_page(fts=fts, after=cursor, limit=50,
                                                     sources=names)
                seen += [a.title for a in page.articles]
                if page.next is None:
                    break
                cursor = page.next
            keep = [i for i in range(N) if f"s{i % 2 + i % 3}" in names
                    and (fts is None or QUERIES[fts](words_of(i)))]
            assert seen == [f"Story {i}" for i in sorted(keep, reverse=True)], (fts, names)
