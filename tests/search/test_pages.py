"""Lookup pages: every candidate once, newest first to the second, across any page size; and a
limited lookup returns exactly the newest matches of a full scan, ties included."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from watchers.models import Article
from watchers.rules import match_query
from watchers.rules.lookup import index_terms
from watchers.search import search
from watchers.store import SqliteStore

BASE = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
WORDS = ["troops", "border", "talks", "oil", "prices"]


def stories() -> list[Article]:
    """Articles crowded into a few seconds (sub-second differences and exact ties), some
    undated (sorted by when they were fetched), in a shuffled order of storing."""
    rng = random.Random(7)
    out = []
    for i in range(140):
        words = " ".join(rng.sample(WORDS, 2))
        published = None
        if i % 9:
            published = BASE + timedelta(seconds=rng.randrange(4),
                                         microseconds=rng.choice([0, 0, 250_000, 999_999]))
        out.append(Article(title=f"Story {i} {words}", text=f"Body {i} about {words}.",
                           source=f"s{i % 3}", guid=f"g{i}", published=published,
                           fetched_at=BASE + timedelta(seconds=rng.randrange(-2, 6))))
    rng.shuffle(out)
    return out


@pytest.fixture
async def stored(tmp_path: Path) -> tuple[Path, list[Article]]:
    path = tmp_path / "nw.db"
    kept = []
    async with await SqliteStore.open(path) as store:
        for a in stories():
            got = await store.record(a, [], [], terms=index_terms(a.title, a.text))
            assert got is not None
            kept.append(got)
    return path, kept


def newest_first(arts: list[Article]) -> list[Article]:
    """Full-scan order: by stored time, the later stored first among equal times."""
    order = list(enumerate(arts))
    order.sort(key=lambda p: (p[1].published or p[1].fetched_at, p[0]), reverse=True)
    return [a for _, a in order]


@pytest.mark.parametrize("fts", ['"troops"', '("oil" OR "talks")', None])
@pytest.mark.parametrize("filters", [{}, {"source": "s1"}, {"since": BASE + timedelta(seconds=2)}])
@pytest.mark.parametrize("size", [1, 3, 50])
async def test_pages_hold_every_candidate_once_newest_first(
        stored: tuple[Path, list[Article]], fts: str | None, filters: dict[str, object],
        size: int) -> None:
    path, arts = stored
    word = {'"troops"': ["troops"], '("oil" OR "talks")': ["oil", "talks"], None: WORDS}[fts]
    since = filters.get("since")
    expected = {a.id for a in arts
                if any(w in a.title for w in word)
                and filters.get("source", a.source) == a.source
                and (not isinstance(since, datetime) or (a.published or a.fetched_at) >= since)}
    seen: list[Article] = []
    async with await SqliteStore.open(path, readonly=True) as store:
        after = None
        for _ in range(1000):
            page = await store.candidate_page(fts=fts, after=after, limit=size,
                                              **filters)  # type: ignore[arg-type]
            assert len(page.articles) <= size
            seen += page.articles
            if page.next is None:
                break
            after = page.next
        else:
            pytest.fail("the pages never ended")
    assert sorted(a.id for a in seen) == sorted(expected)
    seconds = [int((a.published or a.fetched_at).timestamp()) for a in seen]
    assert seconds == sorted(seconds, reverse=True)


@pytest.mark.parametrize("query", ["troops", "oil OR talks", "/b.rder/", "title:prices~"])
@pytest.mark.parametrize("limit", [1, 4, 17, 60])
async def test_a_limited_lookup_is_the_newest_of_a_full_scan(
        stored: tuple[Path, list[Article]], query: str, limit: int) -> None:
    path, arts = stored
    expected = [a.id for a in newest_first(arts) if match_query(query, a) is not None][:limit]
    async with await SqliteStore.open(path, readonly=True) as store:
        found = await search(store, query, limit=limit)
    assert [h.article.id for h in found] == expected
    assert not found.truncated


async def test_best_order_ranks_every_match_when_few(
        stored: tuple[Path, list[Article]]) -> None:
    path, arts = stored
    matching = [a for a in newest_first(arts) if match_query("troops OR border", a) is not None]
    async with await SqliteStore.open(path, readonly=True) as store:
        found = await search(store, "troops OR border", limit=len(arts), order="best")
    assert sorted(h.article.id for h in found) == sorted(a.id for a in matching)
    scores = [h.match.score for h in found]
    assert scores == sorted(scores, reverse=True)


async def test_every_lookup_statement_uses_an_index(
        stored: tuple[Path, list[Article]]) -> None:
    path, _ = stored
    statements: list[str] = []
    async with await SqliteStore.open(path) as store:
        await store._db.conn.set_trace_callback(statements.append)
        for fts in ('"troops"', None):
            for filters in ({}, {"source": "s1"}, {"since": BASE}):
                page = await store.candidate_page(fts=fts, limit=2,
                                                  **filters)
                await store.candidate_page(fts=fts, after=page.next, limit=2,
                                           **filters)
        await store._db.conn.set_trace_callback(None)  # type: ignore[arg-type]
    con = sqlite3.connect(path)
    try:
        reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        scans = {sql: plan for sql in reads
                 if (plan := [r[3] for r in con.execute("EXPLAIN QUERY PLAN " + sql)
                              if r[3].startswith("SCAN articles")
                              and "USING INDEX" not in r[3]])}
    finally:
        con.close()
    assert len(reads) >= 12
    assert scans == {}


async def test_terms_are_refused_for_an_article_not_stored(tmp_path: Path) -> None:
    path = tmp_path / "nw.db"
    await (await SqliteStore.open(path)).aclose()
    con = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="no stored article has this rowid"):
            con.execute("INSERT INTO article_terms (rowid, terms) VALUES (7, 'troop')")
    finally:
        con.close()
