"""The store contract on both backends, for what the shared ``store`` fixture cannot express:
a store reopened at the same place, two stores side by side, rows written behind the store's
back, and lookups (the index path and a full scan agree; pages hold every candidate once).

``backend`` (parametrised "sqlite" | "postgres" by tests/store/conftest.py) opens stores by a
short name: the same name is the same database (an SQLite file, or a PostgreSQL database of the
session's throwaway server), a new name a new, empty one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SEEDS
from tests.pg import admin, database_url
from tests.store._support import alert, art, match, rule
from watchers.config import FeedSourceConfig, FolderSourceConfig, RuleConfig, ServerRoute
from watchers.errors import StoreError
from watchers.models import UNTIMED, Article, Match
from watchers.rules import match_query
from watchers.rules.lookup import index_terms
from watchers.search import search
from watchers.sources.folder import read_article_file
from watchers.store import SourceState, SqliteStore, Store
from watchers.store._shared import article_identity, guid_links_agree, same_link, stored_hash
from watchers.store.base import ArticleRecord, OutboxEntry, StoryLink
from watchers.store.open import open_store
from watchers.store.postgres import PostgresStore
from watchers.store.sqlite import schema as lite_schema
from watchers.store.sqlite._db import iso

# An SQLite store as versions before 17 left it: no places index, the view's trigger as it was.
_VIEW, _TRIGGER = lite_schema.ARTICLE_TERMS.split("\nCREATE TRIGGER")
_BEFORE_17 = ("DROP TABLE article_places", "DROP TABLE article_places_incomplete",
              "DROP TABLE article_places_inexact",
              "DROP TRIGGER article_terms_insert", "DROP VIEW article_terms", _VIEW,
              "CREATE TRIGGER" + _TRIGGER)
# A store as versions before SQLite's 18 (PostgreSQL's 20) left it: no retired matches.
_BEFORE_RETIRED = "ALTER TABLE matches DROP COLUMN retired"


async def put(store: Store, a: Article, matches: list[Match] | None = None,
              alerts: list[OutboxEntry] | None = None) -> Article | None:
    """Record an article with its index terms, as the watch service does."""
    return await store.record(a, matches or [], alerts or [], terms=index_terms(a.title, a.text))


class Backend:
    """Stores of one backend, by name (see the module docstring)."""

    def __init__(self, kind: str, tmp_path: Path, server: str | None) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.server = server
        self.databases: dict[str, str] = {}

    def target(self, name: str = "main") -> str:
        if self.kind == "sqlite":
            return str(self.tmp_path / f"{name}.db")
        assert self.server is not None
        if name not in self.databases:
            db = f"nw_test_{uuid.uuid4().hex[:16]}"
            admin(self.server, f'CREATE DATABASE "{db}"')
            self.databases[name] = db
        return database_url(self.server, self.databases[name])

    async def open(self, name: str = "main", **kw: Any) -> SqliteStore | PostgresStore:
        if self.kind == "sqlite":
            return await SqliteStore.open(self.target(name), **kw)
        return await PostgresStore.open(self.target(name), **kw)

    async def raw(self, name: str, sqlite_sql: str, pg_sql: str) -> None:
        """A statement run behind the store's back (a row an older or newer version wrote)."""
        await self._behind(name, lambda con: con.execute(sqlite_sql),
                           lambda conn: conn.execute(pg_sql))

    async def insert(self, name: str, rows: list[Article]) -> None:
        """Articles written straight into the table, in order (rowids ascending), with no index
        terms, matches or dedupe: any set of rows an older version, or another writer's
        history, may have left, whatever the store would make of them today."""
        values = [(a.id, a.source, a.guid, a.url, article_identity(a)[0], a.title, a.text,
                   a.fetched_at, a.fetched_at, stored_hash(a.source, a.content_hash))
                  for a in rows]
        cols = "id, source, guid, url, link_key, title, text, fetched_at, sort_at, content_hash"
        await self._behind(
            name,
            lambda con: con.executemany(
                f"INSERT INTO articles ({cols}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(*v[:7], iso(v[7]), iso(v[8]), v[9]) for v in values]),
            lambda conn: conn.executemany(
                f"INSERT INTO articles ({cols}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
                values))

    async def _behind(self, name: str, on_sqlite: Callable[[sqlite3.Connection], object],
                      on_pg: Callable[[Any], Awaitable[object]]) -> None:
        """``on_sqlite(connection)`` (then committed) or ``await on_pg(connection)`` on a
        connection of its own, behind the store's back."""
        if self.kind == "sqlite":
            con = sqlite3.connect(self.target(name))
            try:
                on_sqlite(con)
                con.commit()
            finally:
                con.close()
        else:
            import asyncpg  # type: ignore[import-untyped]

            conn = await asyncpg.connect(self.target(name))
            try:
                await on_pg(conn)
            finally:
                await conn.close()

    def drop(self) -> None:
        for db in self.databases.values():
            assert self.server is not None
            admin(self.server, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@pytest.fixture
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    kind = getattr(request, "param", "sqlite")
    server = request.getfixturevalue("pg_url") if kind == "postgres" else None
    b = Backend(kind, tmp_path, server)
    try:
        yield b
    finally:
        b.drop()


@pytest.fixture
async def one(backend: Backend) -> AsyncIterator[Store]:
    s = await backend.open()
    try:
        yield s
    finally:
        await s.aclose()


# ------------------------------------------------------------------ state, reopened


async def test_calls_under_way_when_the_store_closes_are_told_it_is_closed(
        backend: Backend) -> None:
    """A command handler running as the program shuts down: SQLite's calls waiting for the
    connection ran on the closed one (aiosqlite's "no active connection", or a lookup's "search
    index rejected the query", blaming the query); PostgreSQL's said "pool is closing", or
    that the server could not be reached."""
    store = await backend.open()
    await store.save_source_states([SourceState("s", polls=1)])
    calls = []
    for i in range(10):
        calls += [asyncio.ensure_future(store.save_source_states([SourceState(f"w{i}")])),
                  asyncio.ensure_future(store.all_source_states()),
                  asyncio.ensure_future(store.recent(limit=5))]
    await asyncio.sleep(0)  # they have started and wait for the connection
    await store.aclose()
    outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 30)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert errors  # most of them were still waiting
    assert all(type(e) is StoreError and "is closed" in str(e) for e in errors), errors


async def test_a_state_holding_bytes_that_are_not_utf8_saves_and_the_others_with_it(
        backend: Backend) -> None:
    """A cursor or error quoting a byte a source sent that is not UTF-8 (a surrogate, as the
    HTTP clients decode one: an ETag "caf\\xe9", a redirect's Location): PostgreSQL's jsonb
    refused the cursor and SQLite the error, and the batch failed with every other source's
    state in it (the process stopped). Each saves, the byte as U+FFFD."""
    async with await backend.open() as s:
        await s.save_source_states([
            SourceState("good", polls=1, cursor={"etag": '"v1"'}),
            SourceState("odd", polls=1, cursor={"etag": '"caf\udce9"', "k\udcff": "v"},
                        last_error="redirect to http://x/caf\udce9 refused", failures=1),
        ])
    async with await backend.open() as s:
        states = {x.name: x for x in await s.all_source_states()}
        assert states["good"].cursor == {"etag": '"v1"'}
        assert states["odd"].cursor == {"etag": '"caf\ufffd"', "k\ufffd": "v"}
        assert states["odd"].last_error == "redirect to http://x/caf\ufffd refused"


def _wal_size(database: str) -> int:
    return os.path.getsize(database + "-wal")


async def test_an_unchanged_cursor_is_not_written_again_at_every_poll(
        backend: Backend) -> None:
    """A folder of 100,000 files keeps a cursor of megabytes, the same at most polls; each
    poll's state (its counters, its next poll) replaced the row, and the whole cursor was
    written again: 15 MB a poll, 42 GB a day for a folder where nothing changed. What is
    written per save now is about the counters' page (SQLite: the write-ahead log; PostgreSQL:
    the table with its TOAST), far less than the cursor."""
    cursor = {f"sub/file-{i:06d}.txt": f"{i} 1700000000.{i:06d} {i * 7}" for i in range(20000)}
    size = len(json.dumps(cursor))  # about a megabyte

    async def written() -> int:
        if backend.kind == "sqlite":
            return _wal_size(backend.target())
        import asyncpg

        conn = await asyncpg.connect(backend.target())
        try:
            return int(await conn.fetchval("SELECT pg_total_relation_size('source_state')"))
        finally:
            await conn.close()

    async with await backend.open() as s:
        await s.save_source_states([SourceState("desk", polls=10, cursor=cursor)])
        before = await written()
        for polls in range(11, 16):
            await s.save_source_states([SourceState("desk", polls=polls, cursor=dict(cursor))])
        grown = await written() - before
        assert (await s.source_state("desk")).cursor == cursor  # type: ignore[union-attr]
        # a changed cursor is written, as before
        await s.save_source_states([SourceState("desk", polls=16, cursor={"sub/new": "1"})])
        assert (await s.source_state("desk")).cursor == {"sub/new": "1"}  # type: ignore[union-attr]
    # (PostgreSQL compresses what it keeps out of line: a tenth of the text, about)
    assert grown < size / 20, (grown, size)


async def test_source_state_and_mutes_persist(backend: Backend) -> None:
    now = datetime.now(UTC)
    async with await backend.open() as s:
        await s.save_source_state(SourceState("bbc", cursor={"etag": "x"}, polls=3, failures=1,
                                              last_error="timeout", last_error_at=now,
                                              skipped=2, next_poll=now, paused=True))
        await s.save_source_states([SourceState("dw", polls=1), SourceState("dw", polls=2)])
        await s.mute("kyiv", now + timedelta(hours=1))
    async with await backend.open() as s:
        st_ = await s.source_state("bbc")
        assert st_ is not None and st_.cursor == {"etag": "x"} and st_.failures == 1
        assert st_.skipped == 2 and st_.last_error_at == now and st_.paused
        assert st_.next_poll == now and st_.last_success is None
        assert [(x.name, x.polls) for x in await s.all_source_states()] == [("bbc", 3),
                                                                            ("dw", 2)]
        assert await s.source_state("npr") is None
        assert dict(await s.mutes(now=now)) == {"kyiv": now + timedelta(hours=1)}
        assert set(await s.mutes(now=now + timedelta(hours=2))) == set()
        assert await s.unmute("kyiv", now=now) and not await s.unmute("kyiv", now=now)


async def test_departed_servers_persist_and_a_second_departure_keeps_the_first_time(
        backend: Backend) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    async with await backend.open() as s:
        assert dict(await s.departed_servers()) == {}
        assert await s.set_departed(7, now)
        assert not await s.set_departed(7, now + timedelta(hours=1))  # already away: kept
        assert await s.set_departed(2**62, now)  # a Discord snowflake fits
    async with await backend.open() as s:
        assert dict(await s.departed_servers()) == {7: now, 2**62: now}
        assert await s.set_departed(7, None) and not await s.set_departed(7, None)
        assert dict(await s.departed_servers()) == {2**62: now}


async def test_run_time_rules_and_sources_are_config_models(backend: Backend) -> None:
    kyiv = RuleConfig(name="kyiv", query="kyiv~", channel="ops", severity="high",
                      mention_role=5, threshold=80, created_by="alice")
    feed = FeedSourceConfig(type="feed", name="dw", url="https://rss.dw.com/x", every="10m",
                            backfill=3, created_by="bob")
    folder = FolderSourceConfig(type="folder", name="drop", path="inbox", every=45.5)
    async with await backend.open() as s:
        await s.put_rule(kyiv)
        await s.put_source(feed)
        await s.put_source(folder)
    async with await backend.open() as s:
        (got,) = await s.list_rules()
        assert got == kyiv.model_copy(update={"origin": "store"})
        assert await s.list_sources() == [folder.model_copy(update={"origin": "store"}),
                                          feed.model_copy(update={"origin": "store"})]
        await s.put_rule(kyiv.model_copy(update={"query": "kiev"}))
        assert [r.query for r in await s.list_rules()] == ["kiev"]
        assert await s.delete_rule("kyiv") and not await s.delete_rule("kyiv")
        assert await s.delete_source("dw") and not await s.delete_source("dw")
        assert [x.name for x in await s.list_sources()] == ["drop"]


async def _delivered(s: Store, a: Article, watch: RuleConfig) -> None:
    """``a`` stored with its match of ``watch`` and an alert of it, posted."""
    await put(s, a, [match(a, watch.key)], [alert("ops", watch)])
    (row,) = await s.claim_route("ops", now=datetime.now(UTC))
    await s.mark_delivered(row.id, f"msg-{row.id}", at=datetime.now(UTC))


async def test_a_rule_added_again_after_its_removal_has_none_of_the_old_ones_matches(
        backend: Backend) -> None:
    # Kept by the rule's key, the old rule's matches, last surge and alerts were the next
    # rule's given the same name: /recent, /trend and /rules list showed them as its own, and
    # its first match and surge cooldown were the old rule's.
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    watch = RuleConfig(name="watch", query="grizzly", guild_id=7, channel="ops")
    old = art("A grizzly near Lviv")
    async with await backend.open() as s:
        await s.put_rule(watch)
        await _delivered(s, old, watch)
        await s.add_surge(watch.key, "surges", "surge", datetime.now(UTC))
        assert (await s.rule_match_counts()).get(watch.key) == 1
        assert await s.delete_rule(watch.key)
        await s.put_rule(watch.model_copy(update={"query": "zebra"}))
        assert watch.key not in await s.rule_match_counts()
        assert watch.key not in await s.rule_match_counts(since=hour_ago)
        assert await s.first_match(watch.key) is None
        assert await s.match_times([watch.key], hour_ago) == {watch.key: []}
        assert await s.top_stories(watch.key, hour_ago) == []
        assert await s.rule_times(watch.key, hour_ago) == []
        assert await s.recent(rule=watch.key) == []
        assert await s.recent(rules=[watch.key]) == []
        assert await s.last_surge(watch.key) is None
        assert watch.key not in await s.rule_feedback(since=hour_ago)
        # The old rule's match is kept for its article (/article shows it by rule and score).
        assert [(m.rule, m.score) for m in await s.matches_for(old.id)] == [(watch.key, 1.0)]
        assert await s.matches_for(old.id, retired=False) == []
        assert [a.id for a, _ in await s.recent()] == [old.id]
        # The new rule's own matches count, alone.
        new = art("A zebra near Lviv")
        await _delivered(s, new, watch)
        assert await s.rule_match_counts() == {watch.key: 1}
        assert [a.id for a, _ in await s.recent(rule=watch.key)] == [new.id]
        assert [a.id for a, _ in await s.recent(rules=[watch.key])] == [new.id]
        assert (await s.rule_feedback(since=hour_ago))[watch.key].alerts == 1
        assert await s.first_match(watch.key) is not None
    async with await backend.open() as s:  # as stored
        assert await s.rule_match_counts() == {watch.key: 1}


async def test_a_rule_replaced_keeps_its_matches_and_a_new_one_takes_none_left_by_its_name(
        backend: Backend) -> None:
    watch = rule("watch", "grizzly")
    a, b = art("A grizzly near Lviv"), art("Grizzly sighted")
    async with await backend.open() as s:
        await s.put_rule(watch)
        await put(s, a, [match(a, "watch")])
        await s.put_rule(watch.model_copy(update={"query": "grizzly OR bear"}))  # changed
        assert await s.rule_match_counts() == {"watch": 1}
        # A rule the store does not hold (a config file's, taken out of the file) leaves its
        # matches and mute under its name: a run-time rule then added under it is new.
        await put(s, b, [match(b, "gone"), match(b, "watch")])
        await s.mute("gone", datetime.now(UTC) + timedelta(hours=1))
        await s.put_rule(rule("gone", "bears"))
        assert await s.rule_match_counts() == {"watch": 2}
        assert "gone" not in await s.mutes(now=datetime.now(UTC))
        assert [m.rule for m in await s.matches_for(b.id)] == ["gone", "watch"]


async def test_a_store_from_before_retired_matches_keeps_its_matches_and_retires_them_after(
        backend: Backend) -> None:
    watch = rule("watch", "grizzly")
    a = art("A grizzly near Lviv")
    async with await backend.open("before") as s:
        await s.put_rule(watch)
        await put(s, a, [match(a, "watch")])
    await backend.raw("before", _BEFORE_RETIRED, _BEFORE_RETIRED)
    await backend.raw("before", "PRAGMA user_version = 17",
                      "UPDATE schema_version SET version = 19")
    async with await backend.open("before") as s:
        assert await s.rule_match_counts() == {"watch": 1}  # stored ones stay current
        assert await s.delete_rule("watch")
        assert await s.rule_match_counts() == {}
        assert [m.rule for m in await s.matches_for(a.id)] == ["watch"]


async def test_a_stored_rule_that_no_longer_validates_is_skipped_with_a_warning(
        backend: Backend, caplog: pytest.LogCaptureFixture) -> None:
    async with await backend.open() as s:
        await s.put_rule(rule("good", "troops"))
    bad = '{"name": "bad", "query": "x", "severity": "apocalyptic"}'
    await backend.raw("main",
                      f"INSERT INTO rules (name, model, created_at) VALUES ('bad', '{bad}', 'x')",
                      f"INSERT INTO rules (name, model, created_at) VALUES ('bad', '{bad}', now())")
    async with await backend.open() as s:
        assert [r.name for r in await s.list_rules()] == ["good"]
    assert "stored rule 'bad' is not valid" in caplog.text and "severity" in caplog.text


async def test_rule_snapshots_keep_what_matched(backend: Backend) -> None:
    snap = rule("kyiv", "kyiv~ OR kiev", channel="ops", severity="critical", mention_role=7,
                threshold=90, origin="store", created_by="alice")
    async with await backend.open() as s:
        a = art("Kyiv talks")
        await put(s, a, [match(a, "kyiv")], [alert("ops", snap, rule("other", "talks"))])
    async with await backend.open() as s:
        (row,) = await s.alerts()
        assert row.rules == (snap, rule("other", "talks"))


# ------------------------------------------------------------------ batches


def record_of(a: Article, route: str | None = "alerts") -> ArticleRecord:
    return ArticleRecord(a, [match(a)], [alert(route)] if route else [],
                         index_terms(a.title, a.text))


def tangled(rng: random.Random, n: int) -> list[Article]:
    out = []
    for _ in range(n):
        out.append(Article(
            # "@f…": feeds servers follow, whose copies dedupe by their own rule.
            source=rng.choice(["a", "b", "@f1", "@f2"]), guid=rng.choice([None, "g1", "g2", "g3"]),
            url=rng.choice([None, "https://ex.org/1", "https://EX.org/1/?utm_source=x",
                            "https://ex.org/2", "https://ex.org/live"]),
            title=rng.choice(["Troops move", "Troops move!", "Talks resume", "Live: border"]),
            text=rng.choice(["one", "two", "three", "four five"])))
    return out


async def snapshot(store: Store) -> list[object]:
    arts = await store.candidates(fts=None, limit=10_000)
    outbox = [(r.article_id, r.route, r.state) for r in await store.alerts(limit=10_000)]
    found = {w: sorted(a.id for a in await store.candidates(fts=f'"{w}"'))
             for w in ("troops", "talks", "live", "border", "four")}
    return [sorted(a.id for a in arts), outbox, found]


@pytest.mark.parametrize("seed", range(3))
async def test_record_many_equals_record_one_by_one(backend: Backend, seed: int) -> None:
    rng = random.Random(seed)
    earlier, batch = tangled(rng, 6), tangled(rng, 30)

    async def singly(store: Store, a: Article) -> Article | None:
        if await store.is_known(a):
            return None
        return await store.record(a, [match(a)], [alert()], terms=index_terms(a.title, a.text))

    async with await backend.open("one") as store:
        for a in earlier:
            await singly(store, a)
        expected = [await singly(store, a) for a in batch]
        one = await snapshot(store)
    async with await backend.open("many") as store:
        await store.record_many([record_of(a) for a in earlier])
        together = await store.record_many([record_of(a) for a in batch])
        many = await snapshot(store)
    assert together == expected
    assert any(s is None for s in together) and any(s is not None for s in together)
    assert one == many


async def test_known_equals_is_known_article_by_article(backend: Backend) -> None:
    rng = random.Random(101)
    stored, asked = tangled(rng, 8), tangled(rng, 40)
    async with await backend.open("batch") as store:
        await store.record_many([record_of(a) for a in stored])
        answer = await store.known(asked)
        assert await store.known([]) == []
    expected = []
    async with await backend.open("one") as store:
        await store.record_many([record_of(a) for a in stored])
        for a in asked:
            expected.append(await store.is_known(a))
            if not expected[-1]:
                await store.record(a, [], [], terms=index_terms(a.title, a.text))
    assert answer == expected
    assert True in expected and False in expected


async def test_the_operators_copy_of_a_server_feeds_article_is_stored_and_not_the_reverse(
        backend: Backend) -> None:
    """An article a feed servers follow stored first (source "@…": only its followers' rules
    saw it) was a duplicate when a config file's source brought it, so the operator's rules,
    and every other server's, never saw it. Now that copy is new (by content and by link);
    a followed feed's copy of what a config file's source stored, and the operator's second
    copy, are not."""
    body = "Russian troops massed near the border overnight, officials said."
    first = Article(source="@f1", guid="p1", url="https://ex.org/a", title="Troops mass",
                    text=body)
    operators = Article(source="reuters", guid="r1", url="https://EX.org/a/?utm_source=x",
                        title="Troops mass", text=body)
    no_link = Article(source="ap", title="Troops mass", text=body)
    another_server = Article(source="@f2", guid="q1", url="https://ex.org/b",
                             title="Troops mass", text=body)
    async with await backend.open("audiences") as store:
        (p,) = await store.record_many([record_of(first)])
        assert p is not None
        assert await store.known([operators, another_server, first]) == [False, True, True]
        assert await store.is_known(operators) is False
        (s, again, copy) = await store.record_many(
            [record_of(operators), record_of(no_link), record_of(another_server)])
        assert s is not None and s.id != p.id and s.source == "reuters"
        assert again is None and copy is None
        assert await store.known([operators, no_link, another_server, first]) == [True] * 4
        # Both read back with the article's own content hash.
        for a in (p, s):
            stored = await store.get_article(a.id)
            assert stored is not None and stored.content_hash == first.content_hash
        # A new version of the server's copy is still found as one (and a copy of none).
        changed = Article(source="@f1", guid="p1", url="https://ex.org/a", title="Troops mass",
                          text=body + " Talks were called off.")
        assert await store.known([changed]) == [True]
        ((old, original),) = await store.known_versions([changed])
        assert old is not None and old.id == p.id and original is None
        assert await store.record_change(p.id, changed, []) == 0
        got = await store.get_article(p.id)
        assert got is not None and got.content_hash == changed.content_hash
        assert await store.count_articles() == 2


async def test_a_followed_feeds_copy_of_another_followed_feeds_article_is_stored(
        backend: Backend) -> None:
    """Two servers follow two feeds that carry one article (one outlet's two section feeds,
    or a wire story word for word). The second feed's copy was a duplicate of the first's, so
    the servers that follow only the second never saw it. It is stored now, by content and by
    link, and each feed's copies are found by their plain hash (followed_copies); a copy of
    either feed's own, or of the operator's, is still a duplicate."""
    body = "Russian troops massed near the border overnight, officials said."
    first = Article(source="@f1", guid="p1", url="https://ex.org/a", title="Troops mass",
                    text=body)
    same_link = Article(source="@f2", guid="q1", url="https://EX.org/a/?utm_source=x",
                        title="Troops mass", text=body)
    same_text = Article(source="@f3", guid="r1", url="https://other.org/b",
                        title="Troops mass", text=body)
    other_text = Article(source="@f4", guid="s1", url="https://ex.org/a",
                         title="Troops mass", text=body + " More soon.")
    async with await backend.open("feeds") as store:
        assert (await store.record_many([record_of(first)]))[0] is not None
        assert await store.known([same_link, same_text, other_text]) == [False] * 3
        stored = await store.record_many(
            [record_of(same_link), record_of(same_text), record_of(other_text)])
        assert None not in stored
        assert {s.source for s in stored if s is not None} == {"@f2", "@f3", "@f4"}
        for s in stored:
            assert s is not None
            got = await store.get_article(s.id)
            assert got is not None and got.content_hash in (first.content_hash,
                                                            other_text.content_hash)
        # Each feed's own copy again, and a later feed's copy of any of them, is known.
        again = [Article(source=a.source, guid=a.guid, url=a.url, title=a.title, text=a.text)
                 for a in (first, same_link, same_text)]
        assert await store.known(again) == [True, True, True]
        assert await store.record_many([record_of(a) for a in again]) == [None] * 3
        assert await store.followed_copies([first.content_hash, other_text.content_hash,
                                            "nothing"]) == {
            first.content_hash: {"@f1", "@f2", "@f3"}, other_text.content_hash: {"@f4"}}
        # The operator's copy is new to the operator's rules; a followed feed's copy of that
        # one is a duplicate, as ever.
        operators = Article(source="reuters", guid="w1", url="https://wire.org/1",
                            title="Troops mass", text=body)
        assert (await store.record_many([record_of(operators)]))[0] is not None
        late = Article(source="@f5", guid="t1", url="https://wire.org/1", title="Troops mass",
                       text=body)
        assert await store.known([late]) == [True]
        assert await store.count_articles() == 5


async def test_a_store_from_before_the_feed_copies_index_gains_it_when_opened(
        backend: Backend, caplog: pytest.LogCaptureFixture) -> None:
    """A store of the version before (no index of the followed feeds' plain hashes) is
    upgraded when opened: the index is built over the stored rows, said in the log, and a
    second feed's copy of a stored followed feed's article is then found by it."""
    body = "Grain ships left Odesa under a new corridor deal, the ministry said."
    first = Article(source="@f1", guid="p1", url="https://ex.org/a", title="Ships leave",
                    text=body)
    async with await backend.open("before") as store:
        assert (await store.record_many([record_of(first)]))[0] is not None
    await backend.raw("before", "DROP INDEX articles_feed_copies",
                      "DROP INDEX articles_feed_copies")
    await backend.raw("before", "DROP TABLE index_keys", "DROP TABLE index_keys")  # the next
    await backend.raw("before", "ALTER TABLE stories DROP COLUMN source_outlets",
                      "ALTER TABLE stories DROP COLUMN source_outlets")  # and the next
    for sql in _BEFORE_17:  # and the one after
        await backend.raw("before", sql, "SELECT 1")
    await backend.raw("before", _BEFORE_RETIRED, _BEFORE_RETIRED)
    await backend.raw("before", "PRAGMA user_version = 13",
                      "UPDATE schema_version SET version = 16")
    with caplog.at_level(logging.INFO, logger="watchers.store"):
        store = await backend.open("before")
    assert any("indexed the content of 1 followed feeds' articles" in r.getMessage()
               for r in caplog.records)
    async with store:
        assert await store.followed_copies([first.content_hash]) == {
            first.content_hash: {"@f1"}}
        copy = Article(source="@f2", guid="q1", url="https://ex.org/a", title="Ships leave",
                       text=body)
        assert await store.known([copy]) == [False]


async def test_a_followed_feeds_article_marked_as_before_keeps_the_rule_it_had(
        backend: Backend) -> None:
    """A followed feed's article stored when every followed feed's hash was marked alike (the
    prefix alone) keeps its rule: another followed feed's copy of it is a duplicate. It reads
    back with its own hash, and followed_copies finds it."""
    body = "Talks in Geneva ended without agreement, both delegations said."
    old = Article(source="@f1", guid="p1", url="https://ex.org/a", title="Talks end", text=body)
    async with await backend.open("marked") as store:
        assert (await store.record_many([record_of(old)]))[0] is not None
    remark = "UPDATE articles SET content_hash = '@' || substr(content_hash, length(source) + 2)"
    await backend.raw("marked", remark, remark)
    copy = Article(source="@f2", guid="q1", url="https://other.org/b", title="Talks end",
                   text=body)
    async with await backend.open("marked") as store:
        stored = await store.get_article(old.id)
        assert stored is not None and stored.content_hash == old.content_hash
        assert await store.known([copy, old]) == [True, True]
        assert await store.record_many([record_of(copy)]) == [None]
        assert await store.followed_copies([old.content_hash]) == {old.content_hash: {"@f1"}}
        assert await store.count_articles() == 1


async def test_a_server_feeds_live_page_items_stay_new_beside_the_operators_copy_of_one(
        backend: Backend) -> None:
    """A live page gives every item one link, each with its own guid and title. Once the
    operator's feed stored its copy of the first item (same link), every later item of the
    server's feed was taken for a duplicate of that copy: not stored, never alerted."""
    live = "https://ex.org/live/ukraine"

    def item(source: str, guid: str, title: str) -> Article:
        return Article(source=source, guid=guid, url=live, title=title, text=f"{title}: more")

    async with await backend.open("live") as store:
        first = item("@f1", "l1", "Shelling reported overnight")
        copy = item("desk", "desk-live-1", "Shelling reported overnight")
        assert None not in await store.record_many([record_of(first), record_of(copy)])
        later = [item("@f1", "l2", "Talks to resume on Monday"),
                 item("@f1", "l3", "Grain ships leave Odesa")]
        assert await store.known(later) == [False, False]
        assert None not in await store.record_many([record_of(a) for a in later])
        # The feed's own items still decide: the same item again is a duplicate.
        assert await store.known([item("@f1", "l2", "Talks to resume on Monday")]) == [True]
        assert await store.count_articles() == 4


async def test_a_server_feeds_article_given_a_free_id_gets_a_plain_one(backend: Backend
                                                                       ) -> None:
    """The replacement id of a followed feed's article whose id another holds was made from
    the marked hash: "@" and 15 hex digits, where ids are 16."""
    async with await backend.open("freeid") as store:
        a = Article(id="taken", source="@f1", guid="g1", title="Troops mass", text="one")
        b = Article(id="taken", source="@f1", guid="g2", url="https://ex.org/b",
                    title="Talks end", text="two")
        stored = await store.record_many([record_of(a), record_of(b)])
        assert stored[0] is not None and stored[0].id == "taken"
        assert stored[1] is not None and stored[1].id == b.content_hash[:16]


async def test_a_server_feeds_article_stored_before_its_hash_was_marked_keeps_the_old_rule(
        backend: Backend) -> None:
    """Articles of followed feeds stored by an earlier version hold the plain content hash:
    the operator's copy of one is still a duplicate (no second row, no unique-key error)."""
    body = "Talks in Geneva ended without agreement, both delegations said."
    old = Article(source="@f1", guid="p1", url="https://ex.org/a", title="Talks end", text=body)
    operators = Article(source="reuters", url="https://ex.org/x", title="Talks end", text=body)
    async with await backend.open("legacy") as store:
        assert (await store.record_many([record_of(old)]))[0] is not None
    unmark = "UPDATE articles SET content_hash = substr(content_hash, length(source) + 2)"
    await backend.raw("legacy", unmark, unmark)
    async with await backend.open("legacy") as store:
        assert await store.known([operators]) == [True]
        assert await store.record_many([record_of(operators)]) == [None]
        stored = await store.get_article(old.id)
        assert stored is not None and stored.content_hash == old.content_hash
        assert await store.count_articles() == 1


# One link's rows and one guid's, as the stores judge an article against them: the rules written
# out (same_link, guid_links_agree) and what the stores answer from indexes must agree.

# (source, guid, link, title): "@f…" are feeds servers follow, whose articles dedupe by their
# own rule (see same_link); "" and None are both no guid; " " is a link of no key ("").
Identity = tuple[str, str | None, str | None, str]
IDENTITIES = st.tuples(st.sampled_from(["a", "b", "@f1", "@f2"]),
                       st.sampled_from([None, "", "g1", "g2"]),
                       st.sampled_from([None, "1", "2", " "]),
                       st.sampled_from(["Troops move", "Talks resume"]))


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "@f1", "@f2"]),
                          st.sampled_from([None, "", "g1", "g2"]),
                          st.sampled_from(["Troops move", "Talks resume"])), max_size=10),
       st.tuples(st.sampled_from(["a", "b", "@f1", "@f2"]), st.sampled_from([None, "", "g1", "g3"]),
                 st.sampled_from(["Troops move", "Talks resume", "Port shut"])))
def test_link_rows_pick_the_row_same_link_picks(rows: list[tuple[str, str | None, str]],
                                                asked: tuple[str, str | None, str]) -> None:
    """LinkRows answers from dicts what same_link finds by comparing the article with every
    row of the link: the same row (its position), or none."""
    from watchers.store._shared import LinkRows

    index = LinkRows()
    for row in rows:
        index.add(*row)
    source, guid, title = asked
    article = Article(source=source, guid=guid, url="https://ex.org/live", title=title, text="x")
    assert index.first(article) == same_link(article, rows)


def _stored_duplicate(article: Article, rows: list[Article]) -> Article | None:
    """The stored article (of ``rows``, in rowid order, none of ``article``'s content) that the
    stores' dedupe names for ``article``, by the rules written out: the first of its link's rows
    that same_link picks, else the first of its (source, guid)'s rows whose link agrees."""
    link = article_identity(article)[0]
    if link:
        under = [r for r in rows if article_identity(r)[0] == link]
        at = same_link(article, [(r.source, r.guid, r.title) for r in under])
        if at is not None:
            return under[at]
    if article.guid:
        return next((r for r in rows if r.source == article.source and r.guid == article.guid
                     and guid_links_agree(link, article_identity(r)[0])), None)
    return None


def _example(n: int, kind: str, items: list[Identity]) -> list[Article]:
    """Example ``n``'s articles, of its own sources, guids and links (so that examples stored
    side by side never meet), each of its own content."""
    return [Article(id=f"{kind}{n}-{i}", source=f"{src}-{n}", guid=guid and f"{guid}-{n}",
                    url=link if not link or link == " " else (
                        f"https://EX.org/{n}/{link}" + "/?utm_source=x" * (i % 2)),
                    title=title, text=f"{kind} {n}-{i}")
            for i, (src, guid, link, title) in enumerate(items)]


# The rules' corners, besides the examples drawn at random.
_CORNERS: list[tuple[list[Identity], list[Identity]]] = [
    # A followed feed's own rows under the link decide, not the operator's copy beside them.
    ([("@f1", "g1", "1", "Troops move"), ("a", "g2", "1", "Troops move")],
     [("@f1", "g2", "1", "Talks resume")]),
    # Without rows of its own under the link, the link's first row of a config file's source
    # is it; another followed feed's row is not (its followers saw it, this one's may not).
    ([("@f2", "g1", "1", "Troops move"), ("a", "g2", "1", "Talks resume")],
     [("@f1", "g1", "1", "Troops move")]),
    ([("@f2", "g1", "1", "Troops move")], [("@f1", "g1", "1", "Troops move")]),
    # A source's own distinct item, and a followed feed's row, leave an item new...
    ([("a", "g1", "1", "Troops move"), ("@f1", None, "1", "Talks resume")],
     [("a", "g2", "1", "Talks resume")]),
    # ... another source's row does not, though its own came first.
    ([("a", "g1", "1", "Troops move"), ("b", "g1", "1", "Troops move")],
     [("a", "g2", "1", "Talks resume")]),
    # A guid's row without a link agrees with any link; one under another link does not.
    ([("a", "g1", " ", "Troops move"), ("b", "g1", "1", "Troops move")],
     [("a", "g1", "2", "Talks resume"), ("b", "g1", "2", "Talks resume")]),
]


async def test_dedupe_by_link_and_guid_is_what_the_rules_say(backend: Backend) -> None:
    """For random rows under a few links and guids (a live page's items, followed feeds' copies,
    items without guids, a guid reused under other links), the stored article each store names
    (known_versions), is_known, known and record_many answer what same_link and
    guid_links_agree say, article by article, an article of the list judged after the earlier
    ones of the list that were new."""
    examples: list[tuple[list[Article], list[Article]]] = []

    def add(rows: list[Identity], asked: list[Identity]) -> None:
        n = len(examples)
        examples.append((_example(n, "row", rows), _example(n, "asked", asked)))

    @settings(max_examples=150, deadline=None, database=None)
    @given(st.lists(IDENTITIES, max_size=10), st.lists(IDENTITIES, min_size=1, max_size=5))
    def draw(rows: list[Identity], asked: list[Identity]) -> None:
        add(rows, asked)

    for corner in _CORNERS:
        add(*corner)
    draw()
    await (await backend.open("rules")).aclose()  # the schema, for the rows below
    await backend.insert("rules", [r for rows, _ in examples for r in rows])
    async with await backend.open("rules") as store:
        for rows, asked in examples:
            named = [_stored_duplicate(a, rows) for a in asked]
            versions = await store.known_versions(asked)
            assert [(old and old.id, copy) for old, copy in versions] == [
                (r and r.id, None) for r in named], (rows, asked)
            assert [await store.is_known(a) for a in asked] == [r is not None for r in named]
            expected, before = [], list(rows)
            for a in asked:
                expected.append(_stored_duplicate(a, before) is not None)
                if not expected[-1]:
                    before.append(a)
            assert await store.known(asked) == expected, (rows, asked)
            stored = await store.record_many([record_of(a, None) for a in asked])
            assert [s is None for s in stored] == expected


@pytest.mark.timeout(60)
async def test_a_live_pages_link_holding_a_hundred_thousand_items_takes_thousands_more(
        backend: Backend) -> None:
    """Some outlets give every item of a live page one link, each with its own guid and title.
    Each new item was compared with every stored item of the link (storing 2,000 items of one
    link took 0.45 s, the next 4,000 3.1 s). Here the link holds 100,000, and 2,000 new items
    are asked about and stored in batches (a generous timeout catches the quadratic form: 15 s
    for each 500 items)."""
    live = "https://ex.org/live/ukraine"
    key = article_identity(Article(url=live, title="", text=""))[0]
    stamp = datetime(2025, 6, 1, 12, tzinfo=UTC)
    cols = "id, source, guid, url, link_key, title, text, fetched_at, sort_at, content_hash"
    row = (f"'live-' || i, 'desk', 'live-' || i, '{live}', '{key}', 'Update ' || i, "
           "'Item ' || i, {at}, {at}, 'h' || i")
    pg_at = f"'{stamp.isoformat()}'::timestamptz"
    await (await backend.open("live")).aclose()  # the schema, for the rows below
    await backend.raw(
        "live",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) "
        f"INSERT INTO articles ({cols}) SELECT {row.format(at=repr(iso(stamp)))} FROM n",
        f"INSERT INTO articles ({cols}) SELECT {row.format(at=pg_at)} "
        "FROM generate_series(1, 100000) AS i")

    def item(i: int, text: str = "") -> Article:
        return Article(source="desk", guid=f"live-{i}", url=live, title=f"Update {i}",
                       text=text or f"Item {i}")

    fresh = [item(i) for i in range(100_001, 102_001)]
    async with await backend.open("live") as store:
        assert await store.known(fresh) == [False] * len(fresh)
        for i in range(0, len(fresh), 500):
            stored = await store.record_many([record_of(a, None) for a in fresh[i:i + 500]])
            assert None not in stored
        assert await store.count_articles() == 102_000
        # The page's items are still judged one by one: a changed item is named as the stored
        # one it changes, an item of a stored item's title as that one, and a new item is new.
        again = [item(7, "Item 7, updated"),
                 Article(source="desk", guid="live-x", url=live, title="Update 101500",
                         text="Item 101500, told again"),
                 item(102_001)]
        assert await store.known(again) == [True, True, False]
        changed = await store.known_versions(again)
        assert [(old and old.id, copy) for old, copy in changed] == [
            ("live-7", None), (fresh[1499].id, None), (None, None)]


async def test_a_failing_batch_stores_nothing(one: Store) -> None:
    good = [art(f"Story {i}") for i in range(5)]
    broken = ArticleRecord(art("Broken"), [], [alert("alerts"), alert("alerts")], "broken")
    with pytest.raises(StoreError):
        await one.record_many([*(record_of(a) for a in good), broken])
    assert await one.count_articles() == 0
    assert await one.alerts() == []
    assert None not in await one.record_many([record_of(a) for a in good])
    assert await one.count_articles() == 5


async def test_a_batchs_notices_are_written_with_it_or_not_at_all(one: Store) -> None:
    good = [ArticleRecord(a, [match(a)], [alert("alerts")], "story") for a in
            (art(f"Story {i}") for i in range(3))]
    broken = ArticleRecord(art("Broken"), [], [alert("alerts"), alert("alerts")], "broken")
    with pytest.raises(StoreError):
        await one.record_many([*good, broken], notices=[("alerts", "9 more")])
    assert await one.alerts() == []
    await one.record_many(good, notices=[("alerts", "9 more"), ("other", "2 more")])
    rows = await one.alerts()
    # after the batch's alerts, in the order given
    assert [(r.kind, r.route, r.text) for r in rows][-2:] == [
        ("notice", "alerts", "9 more"), ("notice", "other", "2 more")]
    assert [r.kind for r in rows] == ["alert"] * 3 + ["notice"] * 2


# ------------------------------------------------------------------ stories


T0 = datetime(2022, 1, 20, 9, 0, tzinfo=UTC)


def entry(route: str = "alerts", *, severity: str = "medium", min_sources: int = 1,
          stories: str = "edit", suppressed: bool = False) -> OutboxEntry:
    return OutboxEntry(route, (rule(severity=severity, min_sources=min_sources),),
                       suppressed=suppressed, stories=stories, severity=severity,
                       min_sources=min_sources)


def srec(a: Article, story: str, outlet: str, *entries: OutboxEntry, minutes: int = 0,
         at: datetime | None = None) -> ArticleRecord:
    return ArticleRecord(a, [match(a)], list(entries), index_terms(a.title, a.text),
                         StoryLink(story, f"sig of {story}", outlet,
                                   at or T0 + timedelta(minutes=minutes)))


async def outbox(store: Store) -> list[tuple[str, str | None, str, str | None, str | None]]:
    return [(r.kind, r.article_id, r.state, r.story_id, r.escalated_from)
            for r in await store.alerts(limit=10_000)]


async def test_a_story_is_written_with_its_articles_and_outlets(one: Store) -> None:
    a, b, c = (art("Troops mass at border", published=T0),
               art("Border sees troops mass", published=T0 + timedelta(minutes=30)),
               art("Troops!", published=T0 + timedelta(minutes=10)))
    await one.record_many([srec(a, "s1", "dw", entry()),
                           srec(b, "s1", "npr", entry(), minutes=30)])
    await one.record_many([srec(c, "s1", "dw", entry(), minutes=10)])
    story = await one.get_story("s1")
    assert story is not None and story.headline == "Troops mass at border"
    assert story.outlets == ("dw", "npr") and story.articles == 3
    assert (story.first_seen, story.last_seen) == (T0, T0 + timedelta(minutes=30))
    assert [x.id for x in await one.story_articles("s1")] == [a.id, c.id, b.id]
    assert set(await one.stories_of([a.id, b.id, c.id])) == {a.id, b.id, c.id}
    assert [s.id for s in await one.live_stories(timedelta(minutes=10))] == ["s1"]
    assert await one.live_stories(T0 + timedelta(minutes=31)) == []
    # counted back from the newest story not after ``until``; none before it: none at all
    assert [s.id for s in await one.live_stories(
        timedelta(minutes=10), until=T0 + timedelta(minutes=30))] == ["s1"]
    assert await one.live_stories(timedelta(minutes=10), until=T0 - timedelta(days=1)) == []
    assert await one.count_stories() == 1
    assert [(k, s) for k, _, s, _, _ in await outbox(one)] == [
        ("alert", "pending"), ("update", "pending"), ("update", "pending")]


async def test_a_higher_severity_posts_anew_and_says_what_it_escalated_from(one: Store) -> None:
    await one.record_many([
        srec(art("One"), "s", "dw", entry(severity="medium")),
        srec(art("Two"), "s", "npr", entry(severity="low")),
        srec(art("Three"), "s", "bbc", entry(severity="critical")),
        srec(art("Four"), "s", "ap", entry(severity="high")),
    ])
    assert [(k, e) for k, _, _, _, e in await outbox(one)] == [
        ("alert", None), ("update", None), ("alert", "medium"), ("update", None)]


async def test_an_alert_waits_for_enough_outlets_then_posts_once(one: Store) -> None:
    await one.record_many([srec(art("One"), "s", "dw", entry(min_sources=3))])
    await one.record_many([srec(art("Two"), "s", "dw", entry(min_sources=3))])
    assert [r[2] for r in await outbox(one)] == ["waiting"]
    await one.record_many([srec(art("Three"), "s", "npr", entry(min_sources=3))])
    assert [r[2] for r in await outbox(one)] == ["waiting"]
    await one.record_many([srec(art("Four"), "s", "bbc", entry(min_sources=3))])
    assert [(r[0], r[2]) for r in await outbox(one)] == [("alert", "pending")]
    await one.record_many([srec(art("Five"), "s", "ap", entry(min_sources=3))])
    assert [(r[0], r[2]) for r in await outbox(one)] == [
        ("alert", "pending"), ("update", "pending")]


async def test_a_wait_that_outlives_the_window_ends_uncorroborated(one: Store) -> None:
    now = datetime.now(UTC)
    await one.record_many([srec(art("One"), "s", "dw", entry(min_sources=2), at=now)])
    await one.pause_route("alerts", "down")
    assert await one.held_counts() == {}
    await one.resume_route("alerts")
    assert await one.expire_waiting(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert await one.expire_waiting(datetime.now(UTC) + timedelta(seconds=1)) == 1
    await one.record_many([srec(art("Two"), "s", "npr", entry(min_sources=2), at=now)])
    assert [(r[0], r[2]) for r in await outbox(one)] == [
        ("alert", "uncorroborated"), ("alert", "pending")]


async def test_a_wait_ends_with_its_storys_window_not_its_rows_age(one: Store) -> None:
    """The wait ran for a window after the alert was written, where the story could be
    joined only for a window after its last article's date: an article dated 47 hours ago
    left an alert waiting two days for outlets that could no longer join its story."""
    now = datetime.now(UTC)
    window = timedelta(hours=48)
    await one.record_many([
        srec(art("Old"), "old", "dw", entry(min_sources=2), at=now - timedelta(hours=47)),
        srec(art("New"), "new", "dw", entry(min_sources=2), at=now - timedelta(hours=1))])
    assert await one.expire_waiting(now - window) == 0
    # two hours on, the old story's window is over; the new one's is not
    assert await one.expire_waiting(now + timedelta(hours=2) - window) == 1
    assert [(r[0], r[2], r[3]) for r in await outbox(one)] == [
        ("alert", "uncorroborated", "old"), ("alert", "waiting", "new")]


async def test_changes_and_wire_copies_update_the_story_message(one: Store) -> None:
    a = art("Troops mass at border")
    (stored,) = await one.record_many([srec(a, "s", "dw", entry(min_sources=2))])
    assert stored is not None
    # a wire copy from a second outlet releases the waiting alert; the same outlet again is
    # nothing new
    assert await one.add_outlet(stored.id, "npr", T0 + timedelta(minutes=5), ["alerts"]) == 0
    assert await one.add_outlet(stored.id, "npr", T0 + timedelta(minutes=6), ["alerts"]) == 0
    assert [(r[0], r[2]) for r in await outbox(one)] == [("alert", "pending")]
    story = await one.get_story("s")
    assert story is not None and story.outlets == ("dw", "npr")
    assert story.last_seen == T0 + timedelta(minutes=5)
    (row,) = await one.claim_route("alerts", now=datetime.now(UTC))
    await one.mark_delivered(row.id, "m1")
    assert (await one.story_alert("s", "alerts")).id == row.id  # type: ignore[union-attr]
    assert await one.add_outlet(stored.id, "ap", T0, ["alerts"]) == 1
    changed = art("Troops mass at border", "new text")
    assert await one.record_change(stored.id, changed, ["alerts", "alerts", "ops"]) == 1
    assert (await one.get_article(stored.id)).text == "new text"  # type: ignore[union-attr]
    updates = await one.alerts(kind="update")
    assert [(u.changed, u.rules) for u in updates] == [(False, row.rules), (True, row.rules)]
    assert (await one.get_story("s")).updated_at is not None  # type: ignore[union-attr]


async def test_a_change_that_fires_a_new_rule_alerts_where_the_story_has_no_alert(
        one: Store) -> None:
    """A placeholder item ("Breaking: details to follow") matched nothing; rewritten into news
    it fires a rule: that route gets an alert, decided as for a new article of the story, and
    the match is kept. A route the story already alerted gets the update, not a second
    alert."""
    a = art("Breaking news", "Details to follow.")
    (stored,) = await one.record_many([ArticleRecord(
        a, [], [entry("ops")], index_terms(a.title, a.text),
        StoryLink("s", "sig of s", "dw", T0))])
    assert stored is not None
    (ops,) = await one.claim_route("ops", now=datetime.now(UTC))
    await one.mark_delivered(ops.id, "m-ops")
    changed = art("Troops cross the border", "Columns of troops crossed at dawn.")
    fired = match(changed)
    n = await one.record_change(stored.id, changed, ["alerts", "ops"], matches=[fired],
                                alerts=[entry("alerts"), entry("ops")])
    assert n == 2  # the update on ops, the alert on alerts
    rows = [(r.kind, r.route, r.article_id, r.state) for r in await one.alerts()]
    assert ("alert", "alerts", stored.id, "pending") in rows
    assert ("update", "ops", stored.id, "pending") in rows
    assert not any(k == "alert" and route == "ops" and state == "pending"
                   for k, route, _, state in rows)
    assert [m.rule for m in await one.matches_for(stored.id)] == ["troops"]
    # the same change again alerts nobody twice
    await one.record_change(stored.id, art("Troops cross the border", "Columns crossed."),
                            ["alerts", "ops"], matches=[fired],
                            alerts=[entry("alerts"), entry("ops")])
    assert sum(1 for r in await one.alerts(kind="alert") if r.route == "alerts") == 1


async def test_a_story_kept_for_a_digest_is_not_once_an_escalation_posted(one: Store) -> None:
    """Updates join the digest of a story whose alert waits for one; once an escalation was
    posted on its own (it broke through quiet hours), they update that message instead."""
    (first,) = await one.record_many([srec(art("Troops mass"), "s", "ap", entry())])
    assert first is not None
    (kept,) = await one.alerts(kind="alert")
    await one.schedule(kept.id, T0 + timedelta(hours=8), "quiet hours")
    assert (await one.scheduled_story_row("s", "alerts")).id == kept.id  # type: ignore[union-attr]
    await one.record_many([srec(art("Troops invade"), "s", "bbc", entry(severity="critical"),
                                minutes=10)])
    escalation = [r for r in await one.alerts(kind="alert") if r.id != kept.id]
    assert [r.escalated_from for r in escalation] == ["medium"]
    assert await one.scheduled_story_row("s", "alerts") is None


async def test_an_id_held_by_another_article_gives_way_to_a_free_one(one: Store) -> None:
    """A second source's article under an id the first one holds takes its content hash's
    first 16 characters; when another article holds those too, more of them. The batch failed
    on the unique id, every time it was tried."""
    from watchers.models import content_fingerprint

    holder = Article(id=content_fingerprint("Second title", "")[:16], source="s0",
                     title="Holder of the hash id")
    first = Article(id="X", source="s1", guid="X", title="First title")
    second = Article(id="X", source="s2", guid="X", title="Second title")
    stored = await one.record_many([ArticleRecord(a, [], [], index_terms(a.title, a.text))
                                    for a in (holder, first, second)])
    ids = [a.id if a is not None else None for a in stored]
    assert ids[:2] == [holder.id, "X"]
    assert ids[2] is not None and ids[2] not in (holder.id, "X")
    assert ids[2].startswith(holder.id) and len(ids[2]) > 16
    assert (await one.get_article(ids[2])).title == "Second title"  # type: ignore[union-attr]


async def test_a_rule_needing_fewer_outlets_posts_the_story_in_place_of_the_waiting_alert(
        one: Store) -> None:
    """The second article's rule is satisfied: its own alert posts the story on the route, and
    the alert that waits for three outlets is not posted (it was released with two, under the
    rules and severity of the rule that waited, and the second article's alert was lost)."""
    await one.record_many([srec(art("One"), "s", "dw", entry(min_sources=3))])
    await one.record_many([srec(art("Two"), "s", "npr",
                                entry(min_sources=1, severity="critical"))])
    rows = await one.alerts(limit=10)
    assert [(r.kind, r.state) for r in rows] == [("alert", "uncorroborated"),
                                                 ("alert", "pending")]
    assert rows[1].rules[0].severity == "critical" and rows[0].reason


async def test_a_wait_lowered_is_released_once_the_story_has_the_outlets(one: Store) -> None:
    await one.record_many([srec(art("One"), "s", "dw", entry(min_sources=3))])
    await one.record_many([srec(art("Other"), "t", "dw", entry(min_sources=3))])
    await one.record_many([srec(art("Two"), "s", "npr", entry(min_sources=3))])
    first, other = await one.alerts(state="waiting", limit=10)
    assert await one.lower_wait(first.id, 2)  # story s has two outlets: it posts
    assert not await one.lower_wait(other.id, 2)  # story t has one: it waits for two now
    rows = {r.id: r for r in await one.alerts(limit=10)}
    assert (rows[first.id].state, rows[other.id].state) == ("pending", "waiting")
    assert rows[other.id].min_sources == 2
    assert not await one.lower_wait(other.id, 5)  # never raised


async def test_an_article_that_releases_a_waiting_alert_still_escalates(one: Store) -> None:
    await one.record_many([srec(art("One"), "s", "dw", entry(min_sources=2))])
    await one.record_many([srec(art("Two"), "s", "npr",
                                entry(min_sources=1, severity="critical"))])
    assert [(k, s, e) for k, _, s, _, e in await outbox(one)] == [
        ("alert", "pending", None), ("alert", "pending", "medium")]
    # a third article of no higher severity: the released alert names its outlet; no update
    await one.record_many([srec(art("Three"), "s", "bbc", entry(min_sources=2))])
    assert [k for k, *_ in await outbox(one)] == ["alert", "alert", "update"]


async def test_stories_off_alert_per_article_and_muted_rules_stay_suppressed(one: Store) -> None:
    await one.record_many([
        srec(art("One"), "s", "dw", entry(stories="off"), entry("ops", suppressed=True)),
        srec(art("Two"), "s", "npr", entry(stories="off"), entry("ops")),
    ])
    assert [(k, s) for k, _, s, _, _ in await outbox(one)] == [
        ("alert", "pending"), ("alert", "suppressed"), ("alert", "pending"), ("alert", "pending")]


async def test_the_story_message_per_route_is_kept(one: Store) -> None:
    assert await one.story_message("s", "alerts") is None
    await one.set_story_message("s", "alerts", "100", None)
    await one.set_story_message("s", "alerts", "100", "100")
    await one.set_story_message("s", "ops", "7", None)
    assert await one.story_message("s", "alerts") == ("100", "100")
    assert await one.story_message("s", "ops") == ("7", None)


# The BBC's world and Europe feeds (one outlet) and DW, as the engine names their outlets.
BBC_FEEDS = {"bbc-world": "bbci.co.uk", "bbc-europe": "bbci.co.uk", "dw": "dw.com"}


def of(title: str, source: str) -> Article:
    return art(title).model_copy(update={"source": source})


async def alert_states(store: Store) -> list[str]:
    return [r.state for r in await store.alerts(kind="alert", limit=10)]


@pytest.mark.parametrize("now", [{"bbc-eu": "bbci.co.uk"}, {}], ids=["renamed", "removed"])
async def test_a_source_renamed_or_removed_still_counts_as_the_outlet_it_reported_as(
        backend: Backend, now: dict[str, str]) -> None:
    """The BBC's two feeds reported a story whose alert waits for two outlets; bbc-europe is
    then renamed bbc-eu (or removed) and newswatch restarted, telling the store the outlets of
    the sources it runs now. Looked up by its name alone, bbc-europe was an outlet of its own
    after the restart: the BBC's next article released the alert, corroborated by the BBC
    alone. The story keeps the outlet each source reported as."""
    async with await backend.open() as store:
        store.name_outlets(BBC_FEEDS)
        await store.record_many([srec(of("One", "bbc-world"), "s", "bbc-world",
                                      entry(min_sources=2))])
        await store.record_many([srec(of("Two", "bbc-europe"), "s", "bbc-europe")])
        assert await alert_states(store) == ["waiting"]
    async with await backend.open() as store:  # restarted with the new config
        store.name_outlets({"bbc-world": "bbci.co.uk", "dw": "dw.com", **now})
        assert await store.counted_outlets("s", ["alerts"]) == {"alerts": 1}
        assert await store.outlets_seen(["s"]) == {"s": 1}
        (row,) = await store.alerts(kind="alert")
        assert not await store.lower_wait(row.id, 2)
        await store.record_many([srec(of("Three", "bbc-world"), "s", "bbc-world",
                                      entry(min_sources=2))])
        assert await alert_states(store) == ["waiting"]
        if now:  # the renamed feed reports again, as the BBC still
            await store.record_many([srec(of("Four", "bbc-eu"), "s", "bbc-eu")])
            assert await alert_states(store) == ["waiting"]
        await store.record_many([srec(of("Five", "dw"), "s", "dw")])
        assert await alert_states(store) == ["pending"]
        story = await store.get_story("s")
        assert story is not None and story.outlets[:2] == ("bbc-world", "bbc-europe")


async def test_a_wire_copy_keeps_its_sources_outlet_with_the_story(backend: Backend) -> None:
    async with await backend.open() as store:
        store.name_outlets(BBC_FEEDS)
        one = of("One", "bbc-world")
        await store.record_many([srec(one, "s", "bbc-world", entry(min_sources=2))])
        await store.add_outlet(one.id, "bbc-europe", T0, ["alerts"])  # a copy: the BBC still
    async with await backend.open() as store:
        store.name_outlets({"bbc-world": "bbci.co.uk"})  # bbc-europe is gone
        assert await store.counted_outlets("s", ["alerts"]) == {"alerts": 1}
        await store.add_outlet(one.id, "bbc-world-2", T0, ["alerts"])  # not named: its own
        assert await alert_states(store) == ["pending"]


async def test_stories_of_schema_15_keep_their_counts_once_upgraded(backend: Backend) -> None:
    """A store of the version before (SQLite 15, PostgreSQL 18: no outlet kept with a story's
    sources) is upgraded when opened; its stories' sources are counted as before, by the
    outlets the running config gives them, and the sources that report from then on are
    kept with theirs."""
    async with await backend.open("before") as store:
        store.name_outlets(BBC_FEEDS)
        await store.record_many([srec(of("One", "bbc-world"), "s", "bbc-world",
                                      entry(min_sources=3))])
        await store.record_many([srec(of("Two", "bbc-europe"), "s", "bbc-europe")])
        await store.record_many([srec(of("Three", "dw"), "s", "dw")])
        before = await store.counted_outlets("s", ["alerts"])
    assert before == {"alerts": 2}
    await backend.raw("before", "ALTER TABLE stories DROP COLUMN source_outlets",
                      "ALTER TABLE stories DROP COLUMN source_outlets")
    for sql in _BEFORE_17:  # and the one after
        await backend.raw("before", sql, "SELECT 1")
    await backend.raw("before", _BEFORE_RETIRED, _BEFORE_RETIRED)
    await backend.raw("before", "PRAGMA user_version = 15",
                      "UPDATE schema_version SET version = 18")
    async with await backend.open("before") as store:
        store.name_outlets({**BBC_FEEDS, "npr": "npr.org"})
        assert await store.counted_outlets("s", ["alerts"]) == before
        assert await store.outlets_seen(["s"]) == {"s": 2}
        story = await store.get_story("s")
        assert story is not None and story.outlets == ("bbc-world", "bbc-europe", "dw")
        assert await alert_states(store) == ["waiting"]
        await store.record_many([srec(of("Four", "npr"), "s", "npr")])
        assert await alert_states(store) == ["pending"]
    async with await backend.open("before") as store:
        # Every source now said to be one outlet: the stories' sources kept none and are
        # counted so, but npr reported as npr.org, and counts as that.
        store.name_outlets(dict.fromkeys(["bbc-world", "bbc-europe", "dw", "npr"], "one"))
        assert await store.counted_outlets("s", ["alerts"]) == {"alerts": 2}
        assert await store.outlets_seen(["s"]) == {"s": 2}


plans = st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["dw", "npr", "bbc"]),
                           st.integers(1, 3), st.sampled_from(["low", "medium", "critical"])),
                 min_size=1, max_size=12)


async def test_every_article_belongs_to_one_story_and_each_route_posts_a_story_once(
        one: Store) -> None:
    """The property of test_stories.py, on one database: each example has stories and
    articles of its own."""
    examples: list[tuple[list[tuple[int, str, int, str]], int]] = []

    @settings(max_examples=15, deadline=None, database=None)
    @given(plans, st.integers(1, 4))
    def draw(plan: list[tuple[int, str, int, str]], batch: int) -> None:
        examples.append((plan, batch))

    draw()
    for n, (plan, batch) in enumerate(examples):
        records = [srec(art(f"Event {i} of story {s} in example {n}"), f"x{n}s{s}", outlet,
                        entry(severity=sev, min_sources=need), minutes=i)
                   for i, (s, outlet, need, sev) in enumerate(plan)]
        for i in range(0, len(records), batch):
            await one.record_many(records[i : i + batch])
        stories = await one.stories_of([r.article.id for r in records])
        assert {a: s.id for a, s in stories.items()} == {
            r.article.id: r.story.id for r in records if r.story}
        assert sum(s.articles for s in {s.id: s for s in stories.values()}.values()) == len(
            records)
        rows = await outbox(one)
        for sid in {f"x{n}s{s}" for s, *_ in plan}:
            mine = [r for r in rows if r[3] == sid]
            plain = [r for r in mine if r[0] == "alert" and r[4] is None
                     and r[2] != "uncorroborated"]
            assert len(plain) <= 1
            if any(r[0] == "update" for r in mine):
                assert plain and plain[0][2] == "pending"


# ------------------------------------------------------------------ schedule and surges


async def test_digest_now_takes_a_routes_pending_alerts_when_asked(one: Store) -> None:
    now = datetime.now(UTC)
    for i, route in enumerate(["alerts", "alerts", "alerts", "ops"]):
        x = art(f"Story {i}")
        await put(one, x, [match(x)], [alert(route)])
    kept, maybe, *_ = await one.claim_route("alerts", now=now, limit=2)
    await one.schedule(kept.id, now + timedelta(hours=1), "digest")
    await one.mark_maybe_sent(maybe.id)  # claimed, sent or not: never folded into a digest
    await one.requeue_interrupted()
    assert await one.digest_now("alerts", now) == 1  # the scheduled row alone
    assert await one.digest_now("alerts", now, pending=True) == 2  # and the pending one
    (digest,) = await one.make_digests(now)
    members = await one.digest_members(digest)
    assert maybe.id not in {m.id for m in members} and len(members) == 2
    assert (await one.alert_counts(routes=["ops"])) == {"pending": 1}


async def test_scheduled_rows_become_one_digest_per_route(one: Store) -> None:
    now = datetime.now(UTC)
    for i, route in enumerate(["alerts", "alerts", "ops"]):
        x = art(f"Story {i}")
        await put(one, x, [match(x)], [alert(route)])
    rows = await one.claim_route("alerts", now=now) + await one.claim_route("ops", now=now)
    for r in rows:
        await one.schedule(r.id, now + timedelta(hours=1), "quiet hours")
    assert await one.scheduled_routes() == {"alerts": (2, now + timedelta(hours=1)),
                                            "ops": (1, now + timedelta(hours=1))}
    assert await one.make_digests(now) == []
    assert await one.digest_now("ops", now) == 1
    (digest,) = await one.make_digests(now)
    assert [m.id for m in await one.digest_members(digest)] == [rows[2].id]
    made = await one.make_digests(now + timedelta(hours=2))
    assert len(made) == 1 and [m.id for m in await one.digest_members(made[0])] == [
        rows[0].id, rows[1].id]
    assert await one.scheduled_routes() == {}
    assert {r.kind for r in await one.alerts(kind="digest")} == {"digest"}
    (d,) = await one.claim_route("ops", now=now)
    await one.mark_delivered(d.id, "m9", at=now)
    assert await one.sent_since("ops", now - timedelta(minutes=1)) == 0  # digests do not count


async def test_a_held_digest_counts_the_alerts_it_carries(one: Store) -> None:
    """A route that paused part-way through a digest said "0 held" (in /alerts status, the
    pause notice and /alerts resume): only held alert rows were counted."""
    now = datetime.now(UTC)
    for i in range(3):
        x = art(f"Carried {i}")
        await put(one, x, [match(x)], [alert("alerts")])
    x = art("Held alone")
    for r in await one.claim_route("alerts", now=now):
        await one.schedule(r.id, now - timedelta(minutes=1), "digest")
    assert len(await one.make_digests(now)) == 1
    await put(one, x, [match(x)], [alert("alerts")])
    assert await one.pause_route("alerts", "403 Missing Permissions") == 4
    assert await one.held_counts() == {"alerts": 4}
    assert await one.resume_route("alerts") == 4
    assert await one.held_counts() == {}


async def test_rows_kept_for_different_reasons_make_a_digest_each(one: Store) -> None:
    now = datetime.now(UTC)
    for i in range(5):
        x = art(f"Kept {i}")
        await put(one, x, [match(x)], [alert("alerts")])
    rows = await one.claim_route("alerts", now=now)
    for r, why in zip(rows, ["cap", "cap", "quiet hours", "quiet hours", "quiet hours"],
                      strict=True):
        await one.schedule(r.id, now - timedelta(minutes=1), why)
    made = await one.make_digests(now)
    assert len(made) == 2
    digests = {d.id: d for d in await one.alerts(kind="digest")}
    by_reason = {digests[d].text: [m.id for m in await one.digest_members(d)] for d in made}
    assert by_reason == {"cap": [rows[0].id, rows[1].id],
                         "quiet hours": [r.id for r in rows[2:]]}
    assert await one.make_digests(now) == []


async def test_reschedule_brings_a_reasons_rows_earlier_only(one: Store) -> None:
    now = datetime.now(UTC)
    for i in range(3):
        x = art(f"Later {i}")
        await put(one, x, [match(x)], [alert("alerts")])
    rows = await one.claim_route("alerts", now=now)
    await one.schedule(rows[0].id, now + timedelta(days=30), "digest")
    await one.schedule(rows[1].id, now + timedelta(minutes=5), "digest")
    await one.schedule(rows[2].id, now + timedelta(days=30), "quiet hours")
    assert await one.reschedule("alerts", "digest", now + timedelta(hours=1)) == 1
    assert await one.scheduled_routes() == {"alerts": (3, now + timedelta(minutes=5))}
    assert await one.make_digests(now + timedelta(hours=1)) != []
    assert await one.scheduled_routes() == {"alerts": (1, now + timedelta(days=30))}


async def test_sent_since_counts_alerts_sent_within_the_bounds(one: Store) -> None:
    now = datetime.now(UTC)
    for i in range(3):
        x = art(f"Sent {i}")
        await put(one, x, [match(x)], [alert("ops")])
    rows = await one.claim_route("ops", now=now)
    for i, r in enumerate(rows):  # sent now, in an hour, in a day (a clock running ahead)
        await one.mark_delivered(r.id, f"m{i}", at=now + timedelta(hours=(0, 1, 24)[i]))
    assert await one.sent_since("ops", now - timedelta(minutes=1)) == 3
    assert await one.sent_since("ops", now - timedelta(minutes=1), now + timedelta(hours=1)) == 1
    assert await one.sent_since("ops", now, now + timedelta(hours=2)) == 2


async def test_surges_and_match_times(one: Store) -> None:
    assert await one.last_surge("troops") is None
    assert await one.first_match("troops") is None
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(3):
        x = art(f"Troops {i}", published=at + timedelta(hours=i))
        await one.record_many([ArticleRecord(x, [match(x)], [], "troops")],
                              at=at + timedelta(minutes=i))
    # An undated article of history matches at no time: before any period, and no first match.
    x = art("Troops undated")
    await one.record_many([ArticleRecord(x, [match(x)], [], "troops", matched_at=UNTIMED)],
                          at=at + timedelta(minutes=9))
    assert await one.match_times(["troops"], datetime(1970, 1, 1, tzinfo=UTC)) == {
        "troops": [at, at + timedelta(minutes=1), at + timedelta(minutes=2)]}
    surge = await one.add_surge("troops", "ops", "troops surging", at,
                                not_since=at - timedelta(hours=2))
    assert await one.last_surge("troops") == at
    assert [(r.id, r.kind, r.text) for r in await one.alerts(kind="surge")] == [
        (surge, "surge", "troops surging")]
    # Within the cooldown (two polls found the same surge at once): nothing is written.
    later = at + timedelta(minutes=5)
    assert await one.add_surge("troops", "ops", "again", later,
                               not_since=later - timedelta(hours=2)) == 0
    assert await one.last_surge("troops") == at
    assert [r.text for r in await one.alerts(kind="surge")] == ["troops surging"]
    times = await one.match_times(["troops", "other"], at + timedelta(minutes=1))
    assert times == {"troops": [at + timedelta(minutes=1), at + timedelta(minutes=2)],
                     "other": []}
    assert await one.first_match("troops") == at
    # (a trend counts the articles by their dates: an undated one when it was read)
    assert await one.rule_times("troops", at + timedelta(hours=1)) == [
        at + timedelta(hours=1), at + timedelta(hours=2), x.fetched_at]
    top = await one.top_stories("troops", at)
    assert len(top) == 3 and all(n == 1 for _, n in top)
    assert await one.rule_match_counts(since=at + timedelta(minutes=2)) == {"troops": 1}
    assert await one.rule_match_counts() == {"troops": 4}


async def test_a_surge_stamped_by_a_clock_that_ran_ahead_holds_no_later_surge(one: Store
                                                                              ) -> None:
    """A clock a day fast stamped the rule's last surge, then was set back: the rule stayed
    "cooling down" until the fast time plus the cooldown. A stamp ahead by less than the
    cooldown (two machines' clocks apart by seconds) still holds."""
    cooldown = timedelta(hours=6)
    real = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    fast = real + timedelta(days=1)
    assert await one.add_surge("troops", "ops", "first", fast, not_since=fast - cooldown)
    skewed = fast - timedelta(seconds=30)
    assert await one.add_surge("troops", "ops", "twice", skewed,
                               not_since=skewed - cooldown) == 0
    now = real + timedelta(hours=12)
    assert await one.add_surge("troops", "ops", "second", now, not_since=now - cooldown)
    assert await one.last_surge("troops") == now
    assert [r.text for r in await one.alerts(kind="surge")] == ["first", "second"]


# ------------------------------------------------------------------ lookups


def lookup_articles() -> list[Article]:
    arts = [read_article_file(p, source="seeds") for p in sorted(SEEDS.glob("*.txt"))]
    arts.append(Article(source="x", title="Cyber attack on ministries", text="Russia’s troops."))
    arts.append(Article(source="x", title="Kiev talks", text="Київ said the cyber-attack ended."))
    arts.append(Article(source="x", title="Mobilisation", text="1,000 troops; O'Brien's view."))
    return arts


WORDS = ["troops", "troop", "kyiv", "kiev", "russia", "nato", "sanctions", "talks", "donbas",
         "cyberattack", "attack", "minister", "government", "election", "football", "oil",
         "moscow", "ukraine", "border", "mobili*", "gov*", '"prime minister"', "kyiv~",
         "/\\d{4}/", "title:troops", "text:kyiv", "o'brien"]
queries = st.recursive(
    st.sampled_from(WORDS),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda t: f"({t[0]} AND {t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]} OR {t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]} NOT {t[1]})"),
    ),
    max_leaves=4,
)


async def test_the_index_path_finds_exactly_what_a_full_scan_finds(backend: Backend) -> None:
    arts = lookup_articles()
    async with await backend.open() as store:
        for a in arts:
            await store.record(a, [], [], terms=index_terms(a.title, a.text))

        @settings(max_examples=40, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(query=queries)
        def check(query: str) -> None:
            expected = {a.title for a in arts if match_query(query, a) is not None}
            results.append((query, expected))

        results: list[tuple[str, set[str]]] = []
        check()
        for query, expected in results:
            hits = await search(store, query, limit=10_000)
            assert {h.article.title for h in hits} == expected, query


def crowded() -> list[Article]:
    """Articles crowded into a few seconds (sub-second differences and exact ties)."""
    rng = random.Random(7)
    base = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
    words = ["troops", "border", "talks", "oil", "prices"]
    out = []
    for i in range(60):
        pair = " ".join(rng.sample(words, 2))
        published = None
        if i % 9:
            published = base + timedelta(seconds=rng.randrange(4),
                                         microseconds=rng.choice([0, 250_000, 999_999]))
        out.append(Article(title=f"Story {i} {pair}", text=f"Body {i} about {pair}.",
                           source=f"s{i % 3}", guid=f"g{i}", published=published,
                           fetched_at=base + timedelta(seconds=rng.randrange(-2, 6))))
    rng.shuffle(out)
    return out


@pytest.mark.parametrize("fts", ['"troops"', '("oil" OR "talks")', None])
async def test_pages_hold_every_candidate_once_newest_first(one: Store, fts: str | None) -> None:
    kept = [a for a in [await one.record(a, [], [], terms=index_terms(a.title, a.text))
                        for a in crowded()] if a is not None]
    word = {'"troops"': ["troops"], '("oil" OR "talks")': ["oil", "talks"], None: [""]}[fts]
    expected = [a for a in kept if any(w in a.title for w in word)]
    full = [x.id for x in await one.candidates(fts=fts, limit=10_000)]
    for size in (1, 7):
        seen: list[Article] = []
        after = None
        for _ in range(200):
            page = await one.candidate_page(fts=fts, after=after, limit=size)
            assert len(page.articles) <= size
            seen += page.articles
            if page.next is None:
                break
            after = page.next
        assert sorted(a.id for a in seen) == sorted(a.id for a in expected)
        assert [a.id for a in seen] == full
        secs = [int((a.published or a.fetched_at).timestamp()) for a in seen]
        assert secs == sorted(secs, reverse=True)


async def test_a_server_sees_only_the_feeds_it_follows(one: Store) -> None:
    for source in ("bbc", "@feed1", "@feed2"):
        await one.record(Article(source=source, title=f"Troops {source}", text="x"), [], [],
                         terms="troops")
    assert await one.count_articles() == 3
    assert await one.count_articles(follows=[]) == 1
    assert await one.count_by_source(follows=["@feed2"]) == {"bbc": 1, "@feed2": 1}
    found = await one.candidates(fts='"troops"', follows=["@feed1"])
    assert sorted(a.source for a in found) == ["@feed1", "bbc"]


async def test_a_query_the_index_cannot_read_is_one_clear_error(one: Store) -> None:
    for bad in ('"unbalanced', "(troops", "troops)", "AND", "a OR", "ti:tle"):
        with pytest.raises(StoreError, match="search index rejected the query"):
            await one.candidates(fts=bad)


# ------------------------------------------------------------------ server routes


async def test_server_routes_are_kept_by_key(one: Store) -> None:
    b = ServerRoute(guild_id=42, name="b-desk", channel_id=9, created_by="ann")
    a = ServerRoute(guild_id=42, name="alerts", channel_id=123456789012345678)
    await one.put_server_route(b)
    await one.put_server_route(a)
    await one.put_server_route(a.model_copy(update={"channel_id": 7}))
    assert await one.list_server_routes() == [a.model_copy(update={"channel_id": 7}), b]
    assert await one.delete_server_route(a.key) and not await one.delete_server_route(a.key)
    assert await one.list_server_routes() == [b]


async def test_a_channel_stored_with_a_time_zone_no_longer_taken_keeps_its_other_settings(
        one: Store, caplog: pytest.LogCaptureFixture) -> None:
    """/channels set took any zone file ("localtime", "posix/Europe/Berlin"); the names are
    refused or read as their place now, and the channel stored with one was skipped whole at
    the next start: its digest and quiet hours gone, its rules' alerts sent as they came."""
    for name, zone in (("desk", "localtime"), ("news", "posix/Europe/Berlin")):
        stored = {"guild_id": 42, "name": name, "channel_id": 9, "settings": {
            "target": 9, "mode": "digest", "digest_every": 86400.0, "timezone": zone}}
        # written as the code before wrote it, by the store's own primitive
        await cast(Any, one)._put("routes", f"42:{name}", 42, json.dumps(stored))
    caplog.set_level(logging.WARNING)
    routes = {r.name: r.settings for r in await one.list_server_routes()}
    assert routes.keys() == {"desk", "news"}
    desk, news = routes["desk"], routes["news"]
    assert desk is not None and (desk.mode, desk.timezone) == ("digest", "UTC")
    assert news is not None and (news.mode, news.timezone) == ("digest", "Europe/Berlin")
    assert any("time zone 'localtime' is no longer taken" in r.getMessage()
               for r in caplog.records)


# ------------------------------------------------------------------ opening


async def test_open_store_picks_the_backend_from_the_target(backend: Backend) -> None:
    store = await open_store(backend.target())
    try:
        assert isinstance(store, PostgresStore if backend.kind == "postgres" else SqliteStore)
    finally:
        await store.aclose()


def story_plan(rng: random.Random, n: int) -> list[ArticleRecord]:
    """Articles of a few stories from a few outlets, on two routes (one following stories, one
    not), with rules that need 1 to 3 outlets and mixed severities: every kind of outbox row a
    story gets (alert, update, escalation, waiting, released) in one plan."""
    t0 = datetime(2022, 1, 20, 9, 0, tzinfo=UTC)
    out = []
    for i in range(n):
        a = Article(title=f"Event {i} {rng.random()}", text="troops body", source="feed",
                    published=t0 + timedelta(minutes=rng.randrange(600)))
        story = f"s{rng.randrange(10)}"
        entries = []
        for route, mode in (("alerts", "edit"), ("ops", "off")):
            if rng.random() < 0.7:
                severity = rng.choice(["low", "medium", "critical"])
                need = rng.choice([1, 1, 2, 3])
                entries.append(OutboxEntry(
                    route, (rule(severity=severity, min_sources=need),), stories=mode,
                    severity=severity, min_sources=need, suppressed=rng.random() < 0.1))
        out.append(ArticleRecord(
            a, [match(a)], entries, index_terms(a.title, a.text),
            StoryLink(story, f"sig {i}", rng.choice(["dw", "npr", "bbc", "ap", "dw"]),
                      a.published or t0)))
    return out


async def stories_snapshot(store: Store, records: list[ArticleRecord]) -> list[object]:
    stories = [await store.get_story(sid) for sid in sorted({r.story.id for r in records
                                                            if r.story})]
    rows = [(r.kind, r.article_id, r.route, r.state, r.story_id, r.escalated_from, r.min_sources)
            for r in await store.alerts(limit=10_000)]
    return [[(s.headline, s.first_seen, s.last_seen, s.articles, s.outlets, s.signature)
             if s else None for s in stories], rows]


@pytest.mark.parametrize("seed", range(3))
async def test_a_batch_writes_its_stories_as_one_article_per_batch_does(backend: Backend,
                                                                         seed: int) -> None:
    # A write batch decides its stories' rows in memory and writes each story once: the
    # stories, and every outbox decision (updates, escalations, waits and their release),
    # must be what one transaction per article gives, whatever the batch boundaries.
    records = story_plan(random.Random(seed), 40)
    got = []
    for name, size in (("one", 1), ("some", 7), ("all", len(records))):
        async with await backend.open(name) as store:
            for i in range(0, len(records), size):
                await store.record_many(records[i : i + size])
            got.append(await stories_snapshot(store, records))
    assert got[0] == got[1] == got[2]
    rows: list[tuple[Any, ...]] = got[0][1]  # type: ignore[assignment]
    # The plan exercises waits, waits released by later outlets, updates and escalations.
    assert any(r[3] == "waiting" for r in rows)
    assert any(r[0] == "alert" and r[3] == "pending" and r[6] > 1 for r in rows)
    assert any(r[0] == "update" for r in rows) and any(r[5] is not None for r in rows)
    # What a batch's reads rely on: an outbox row of a story exists only beside its story row
    # (the SQLite store asks the outbox about stored stories only).
    async with await backend.open("all") as store:
        for sid in {r[4] for r in rows if r[4] is not None}:
            assert await store.get_story(sid) is not None


async def test_resuming_a_route_makes_its_retries_due_now(one: Store) -> None:
    a = art("Troops mass")
    await one.record_many([ArticleRecord(a, [match(a)], [alert("alerts")], "troops")])
    (row,) = await one.alerts()
    later = datetime.now(UTC) + timedelta(hours=1)
    await one.mark_retry(row.id, at=later, reason="429")
    assert await one.resume_route("alerts") == 0  # nothing was held
    (row,) = await one.alerts()
    assert row.state == "retry" and row.next_attempt_at is not None
    assert row.next_attempt_at <= datetime.now(UTC)


async def test_an_article_with_a_word_longer_than_the_index_takes_is_stored_and_found(
        one: Store) -> None:
    """PostgreSQL refuses an index row of more than 2,704 bytes: listing a 3,000-letter word
    in the lookup's word list failed the write, so one such article stopped `run` at every
    start. It is stored, found by its other words, and beside it others are stored too."""
    # (random letters: PostgreSQL compresses a repetitive one under the limit)
    long_word = "".join(random.Random(3).choices("abcdefghijklmnopqrstuvwxyz", k=3000))
    odd = art("Troops and a very long word", text=f"troops {long_word} border")
    plain = art("Troops at the border", text="troops border")
    terms = [index_terms(a.title, a.text) for a in (odd, plain)]
    # with its words, as the service gives them (the matcher's)
    await one.record_many([ArticleRecord(a, [match(a)], [], t, words=set(t.split()))
                           for a, t in zip((odd, plain), terms, strict=True)])
    assert await one.get_article(odd.id) is not None
    found = {h.article.id for h in (await search(one, "troops", limit=10)).hits}
    assert found == {odd.id, plain.id}
    listed = await one.index_words()
    assert listed is not None and "troop" in " ".join(listed[0])


async def test_retries_due_later_than_any_wait_are_made_due(backend: Backend) -> None:
    """clamp_retries: rows waiting for a retry past ``latest`` (a clock that ran ahead timed
    them) are due at ``now``; those within it keep their time. Both stores alike."""
    now = datetime.now(UTC).replace(microsecond=0)
    async with await backend.open() as s:
        ids = []
        for i in range(3):
            await s.record(art(f"Troops {i}", guid=f"r{i}"), [], [alert("alerts")], terms="")
        for row, at in zip(await s.alerts(), (now + timedelta(days=1), now + timedelta(
                minutes=30), now + timedelta(days=400)), strict=True):
            await s.mark_retry(row.id, at=at, reason="503")
            ids.append(row.id)
        assert await s.clamp_retries(now + timedelta(hours=1), now) == 2
        due = {r.id: r.next_attempt_at for r in await s.alerts(state="retry")}
        assert due == {ids[0]: now, ids[1]: now + timedelta(minutes=30), ids[2]: now}
