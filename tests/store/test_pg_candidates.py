"""PostgreSQL candidate pages: whichever way a page reads the matches (walking the date index,
then the GIN index below the walk, see ``PostgresStore.candidate_page``), the pages hold
exactly the matching articles, newest first, each once. The choice is forced both ways (and
left to the costs) on a real database; the expected pages are computed here from the words
each article was given."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
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


@pytest.mark.parametrize("choice", ["walk", "index", "costs"])
async def test_pages_hold_every_match_once_newest_first_whichever_index_reads_them(
        pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch, choice: str) -> None:
    # Short first walks, so that one page takes several walks or turns to the GIN index.
    monkeypatch.setattr(pg_articles, "WALK_FIRST_MIN", 3)
    monkeypatch.setattr(pg_articles, "WALK_FIRST_PER_ROW", 1)
    if choice != "costs":
        # 0: walking on always looks cheaper; huge: the GIN index always does.
        monkeypatch.setattr(pg_articles, "WALK_COST", 0.0 if choice == "walk" else 1e12)
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
