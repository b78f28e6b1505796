"""Every query the hot paths issue uses an index (issue 12): the statements are captured as the
store runs them and each one's plan is read back — no full scan of articles or outbox."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.store._support import alert, art, match, put
from watchers.models import Article
from watchers.rules.lookup import index_terms
from watchers.store import ArticleRecord, SourceState, SqliteStore

# A scan of these is a cost that grows with the store; temporary b-trees for ORDER BY over an
# index search, the lookup index (a virtual table) and one-row-per-route subqueries are not.
BIG_TABLES = ("articles", "outbox", "matches", "a", "o", "m")


def plan(con: sqlite3.Connection, sql: str) -> list[str]:
    return [row[3] for row in con.execute("EXPLAIN QUERY PLAN " + sql)]


async def test_hot_path_queries_use_an_index(tmp_path: Path) -> None:
    path = tmp_path / "nw.db"
    statements: list[str] = []
    async with await SqliteStore.open(path) as store:
        for i in range(30):
            a = art(f"Story {i}", guid=f"g{i}", url=f"https://ex.org/{i}")
            await put(store, a, [match(a)], [alert("alerts")])
        await store.save_source_state(SourceState("bbc"))
        await store._db.conn.set_trace_callback(statements.append)
        # the watch side
        known = art("Story 3", guid="g3", url="https://ex.org/3")
        assert await store.is_known(known)
        # A changed item (its link's first row that is not distinct from it), a followed feed's
        # item under a stored link, and an item known by its guid alone.
        assert await store.is_known(art("Story 3", "changed", guid="g3", url="https://ex.org/3"))
        assert await store.is_known(Article(source="@f1", guid="p1", url="https://ex.org/4",
                                            title="Story 4", text="its own text"))
        assert await store.is_known(art("Story 5", "changed", guid="g5"))
        # The followed feeds that stored a copy of a poll's articles (see _told_already).
        assert await store.followed_copies([known.content_hash, "none"]) == {}
        fresh = art("Brand new", guid="new", url="https://ex.org/new")
        stored = await put(store, fresh, [match(fresh)], [alert("alerts")])
        assert stored is not None
        await store.source_state("bbc")
        await store.save_source_state(SourceState("bbc", polls=1))
        # delivery
        now = datetime.now(UTC)
        await store.due_routes()
        rows = await store.claim_route("alerts", now=now, limit=2)
        assert await store.get_article(rows[0].article_id or "") is not None
        assert await store.get_article((rows[0].article_id or "")[:7]) is not None
        await store.matches_for(rows[0].article_id or "")
        await store.maybe_sent(rows[0].id)
        await store.mark_delivered(rows[0].id, "m1")
        await store.mark_retry(rows[1].id, at=now + timedelta(seconds=5), reason="503")
        await store.mark_maybe_sent(rows[1].id)
        await store.add_notice("alerts", "a notice")
        await store.mark_rejected(rows[1].id, "400")
        await store._db.conn.set_trace_callback(None)  # type: ignore[arg-type]
    checked = [s for s in statements
               if s.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT", "WITH"))]
    assert len(checked) >= 20, statements
    con = sqlite3.connect(path)
    try:
        scans = {}
        firsts = [s for s in checked if "FROM articles" in s and s.endswith("LIMIT 1")
                  and "ORDER BY" in s]
        assert len(firsts) >= 3, statements  # the link's and the guid's first rows
        for sql in checked:
            bad = [d for d in plan(con, sql)
                   if (d.startswith("SCAN ") and d.split()[1] in BIG_TABLES)
                   # the first row read in index order, not every row of the link sorted
                   or (sql in firsts and "TEMP B-TREE" in d)]
            if bad:
                scans[sql] = bad
    finally:
        con.close()
    assert scans == {}


async def test_batch_dedupe_and_writes_use_an_index(tmp_path: Path) -> None:
    """A poll's or an import's batch: ``known`` and ``record_many`` of several articles read
    each identity (hash, link, source and guid) through an index, however many there are."""
    path = tmp_path / "nw.db"
    statements: list[str] = []
    async with await SqliteStore.open(path) as store:
        stored = [art(f"Story {i}", guid=f"g{i}", url=f"https://ex.org/{i}") for i in range(30)]
        await store.record_many([ArticleRecord(a, [match(a)], (), index_terms(a.title, a.text))
                                 for a in stored])
        await store._db.conn.set_trace_callback(statements.append)
        batch = [*stored[:5],
                 *(art(f"New {i}", guid=f"n{i}", url=f"https://ex.org/n{i}") for i in range(5))]
        assert await store.known(batch) == [True] * 5 + [False] * 5
        out = await store.record_many([ArticleRecord(a, [], (), index_terms(a.title, a.text))
                                       for a in batch])
        assert [a is not None for a in out] == [False] * 5 + [True] * 5
        await store._db.conn.set_trace_callback(None)  # type: ignore[arg-type]
    checked = [s for s in statements
               if s.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT", "WITH"))]
    assert any("guid" in s for s in checked), statements  # the (source, guid) read ran
    con = sqlite3.connect(path)
    try:
        scans = {sql: bad for sql in checked
                 if (bad := [d for d in plan(con, sql)
                             if d.startswith("SCAN ") and d.split()[1] in BIG_TABLES])}
    finally:
        con.close()
    assert scans == {}
