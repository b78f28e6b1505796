"""Batched writes and dedupe reads (issue 12): ``record_many`` and ``known`` give exactly what
``record`` and ``is_known`` give one article at a time, including between articles of one
batch, and a batch is written whole or not at all."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from tests.store._support import alert, art, match, rule
from watchers.errors import StoreError
from watchers.models import Article
from watchers.rules.lookup import index_terms
from watchers.store import SqliteStore, Store
from watchers.store.base import ArticleRecord, CapSummary


def record_of(a: Article, route: str | None = "alerts") -> ArticleRecord:
    return ArticleRecord(a, [match(a)], [alert(route)] if route else [],
                         index_terms(a.title, a.text))


def tangled(rng: random.Random, n: int) -> list[Article]:
    """Articles drawn from small pools of sources, guids, links, titles and texts, so every
    dedupe rule (content, link, live-page link, guid with and without links) comes up."""
    out = []
    for _ in range(n):
        source = rng.choice(["a", "b"])
        guid = rng.choice([None, "g1", "g2", "g3"])
        url = rng.choice([None, "https://ex.org/1", "https://EX.org/1/?utm_source=x",
                          "https://ex.org/2", "https://ex.org/live"])
        title = rng.choice(["Troops move", "Troops move!", "Talks resume", "Live: border"])
        text = rng.choice(["one", "two", "three", "four five"])
        out.append(Article(source=source, guid=guid, url=url, title=title, text=text))
    return out


def rows(path: Path) -> list[tuple[object, ...]]:
    con = sqlite3.connect(path)
    try:
        arts = con.execute("SELECT id, source, guid, url, link_key, title, text, content_hash "
                           "FROM articles ORDER BY rowid").fetchall()
        matches = con.execute("SELECT article_id, rule FROM matches ORDER BY 1, 2").fetchall()
        outbox = con.execute("SELECT article_id, route, state FROM outbox ORDER BY id").fetchall()
    finally:
        con.close()
    return [*arts, ("matches", *matches), ("outbox", *outbox)]


async def indexed(store: SqliteStore) -> dict[str, list[str]]:
    """Which articles the lookup index finds under each word."""
    return {w: sorted(a.id for a in await store.candidates(fts=f'"{w}"'))
            for w in ("troops", "talks", "live", "border", "four")}


@pytest.mark.parametrize("seed", range(8))
async def test_record_many_equals_record_one_by_one(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    earlier, batch = tangled(rng, 6), tangled(rng, 30)
    one, many = tmp_path / "one.db", tmp_path / "many.db"

    async def singly(store: SqliteStore, a: Article) -> Article | None:
        # The reference: the one-article dedupe query, then a write of its own.
        if await store.is_known(a):
            return None
        return await store.record(a, [match(a)], [alert()], terms=index_terms(a.title, a.text))

    async with await SqliteStore.open(one) as store:
        for a in earlier:
            await singly(store, a)
        expected = [await singly(store, a) for a in batch]
        index_one = await indexed(store)
    async with await SqliteStore.open(many) as store:
        await store.record_many([record_of(a) for a in earlier])
        together = await store.record_many([record_of(a) for a in batch])
        index_many = await indexed(store)
    assert together == expected
    assert index_one == index_many and index_many["troops"]
    assert any(s is None for s in together) and any(s is not None for s in together)
    assert rows(one) == rows(many)


@pytest.mark.parametrize("seed", range(4))
async def test_known_equals_is_known_article_by_article(tmp_path: Path, seed: int) -> None:
    """``known`` answers for the whole list what ``is_known`` answers when each article that
    is not known is recorded before the next is asked about."""
    rng = random.Random(100 + seed)
    stored, asked = tangled(rng, 8), tangled(rng, 40)
    async with await SqliteStore.open(tmp_path / "batch.db") as store:
        await store.record_many([record_of(a) for a in stored])
        answer = await store.known(asked)
        assert await store.known([]) == []
    expected = []
    async with await SqliteStore.open(tmp_path / "one.db") as store:
        await store.record_many([record_of(a) for a in stored])
        for a in asked:
            expected.append(await store.is_known(a))
            if not expected[-1]:
                await store.record(a, [], [], terms=index_terms(a.title, a.text))
    assert answer == expected
    assert True in expected and False in expected


async def test_an_id_already_taken_in_store_or_batch_is_replaced(tmp_path: Path) -> None:
    first = art("First story", id="same")
    second = art("Second story", id="same")
    third = art("Third story", id="same")
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await store.record_many([record_of(first)])
        out = await store.record_many([record_of(second), record_of(third)])
        assert [a.id if a else None for a in out] == [second.content_hash[:16],
                                                       third.content_hash[:16]]
        for a in out:
            assert a is not None and await store.get_article(a.id) == a
            assert [m.article_id for m in await store.matches_for(a.id)] == [a.id]


async def test_a_failing_batch_stores_nothing(tmp_path: Path) -> None:
    good = [art(f"Story {i}") for i in range(5)]
    bad = art("Broken")
    # Two alerts for one article on one route break the outbox's uniqueness mid-batch.
    broken = ArticleRecord(bad, [], [alert("alerts"), alert("alerts")], "broken")
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        with pytest.raises(StoreError):
            await store.record_many([*(record_of(a) for a in good), broken])
        assert await store.count_articles() == 0
        assert await store.alerts() == []
        # the store is usable afterwards, and the same articles go in
        assert None not in await store.record_many([record_of(a) for a in good])
        assert await store.count_articles() == 5


async def test_outbox_rows_follow_the_batch_order(tmp_path: Path) -> None:
    batch = [art(f"Story {i}") for i in range(12)]
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await store.record_many([record_of(a, route="ops" if i % 3 else "alerts")
                                 for i, a in enumerate(batch)])
        rows = await store.alerts(kind="alert")
    assert [r.article_id for r in sorted(rows, key=lambda r: r.id)] == [a.id for a in batch]


async def _limit(store: SqliteStore, which: int, value: int) -> None:
    """Lower one of SQLite's limits on the store's connection (as another build of SQLite, or
    a value near it, meets them)."""
    conn = store._db.conn
    await conn._execute(conn._conn.setlimit, which, value)  # type: ignore[no-untyped-call]


def _live(i: int, title_chars: int = 0) -> Article:
    return Article(source="live", guid=f"g{i}", url="https://ex.org/live",
                   title=f"Live {i} " + '"' * title_chars, text=f"update {i}")


async def test_long_titles_under_one_link_do_not_stop_its_next_items(tmp_path: Path) -> None:
    """A batch read the rows of its links as one JSON value: a live page whose items' titles
    together passed SQLite's longest value (1e9 bytes; here lowered to 2 MB) failed every
    later batch holding the link, and ``known`` with it, for good."""
    async with await SqliteStore.open(tmp_path / "nw.db", terms_of=index_terms) as store:
        await _limit(store, sqlite3.SQLITE_LIMIT_LENGTH, 2_000_000)
        for start in range(0, 30, 10):
            await store.record_many([record_of(_live(i, 40_000), None)
                                     for i in range(start, start + 10)])
        assert await store.known([_live(1, 40_000), _live(30)]) == [True, False]
        (stored,) = await store.record_many([record_of(_live(30), None)])
        assert stored is not None and await store.count_articles() == 31


async def test_a_batch_binds_no_more_values_than_sqlite_allows(tmp_path: Path) -> None:
    """A batch's reads bound 4,000 ids (8,000 values for guids) whatever the limit: where
    SQLite allows fewer (2,500 here), a batch of 2,000 articles failed."""
    batch = [Article(source="feed", guid=f"g{i}", url=f"https://ex.org/{i}", title=f"T {i}",
                     text="x") for i in range(2000)]
    async with await SqliteStore.open(tmp_path / "nw.db", terms_of=index_terms) as store:
        await _limit(store, sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 2500)
        stored = await store.record_many([record_of(a, None) for a in batch])
        assert all(s is not None for s in stored)
        assert await store.known(batch[:3]) == [True, True, True]
        assert await store.record_many([record_of(a, None) for a in batch]) == [None] * 2000


async def test_a_cap_summary_names_only_the_articles_its_own_poll_stores(store: Store) -> None:
    """Two polls of one source at once both take the same items for new. The second one's
    write finds some stored by the first, which alerted or named them: its summary names
    the others only — those its own batch stores, and those of its later batches (written
    after the summary) that no poll has stored yet — and is not written when none is left."""
    troops = rule()
    items = [art(f"Troops report {i}", guid=f"g{i}") for i in range(6)]
    # the other poll, a moment earlier: items 0, 1 and 4
    await store.record_many([record_of(items[i], None) for i in (0, 1, 4)])
    listed = [(items[i], (troops,)) for i in (0, 1, 2, 4, 5)]
    stored = await store.record_many([record_of(a, None) for a in items[:3]],
                                     summaries=[CapSummary.of("alerts", "wire", listed)])
    assert [a is not None for a in stored] == [False, False, True]
    (summary,) = await store.alerts(kind="summary")
    assert summary.text is not None and summary.text.splitlines() == [
        "Source 'wire' brought 2 more matching article(s) in one poll than are posted one by "
        "one; they are stored (see /recent and /search):",
        "• Troops report 2", "• Troops report 5"]
    assert [r.name for r in summary.rules] == ["troops"]
    # a third poll of the stored items stores none of them: no summary
    again = [(items[i], (troops,)) for i in (0, 1, 2, 4)]
    assert await store.record_many([record_of(a, None) for a in items[:3]],
                                   summaries=[CapSummary.of("alerts", "wire", again)]) == [
        None, None, None]
    assert len(await store.alerts(kind="summary")) == 1
    # (a summary made without its articles, as a library may write one, is written as it is)
    await store.record_many([], summaries=[CapSummary("alerts", "as given")])
    assert [r.text for r in await store.alerts(kind="summary")][1:] == ["as given"]
