"""The schema: a new database is created whole and marked as newswatch's; an older one is
migrated keeping its data and ends exactly like a new one; anything else is refused."""

from __future__ import annotations

import os
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.store._support import art, legacy_v1, legacy_v3, put
from watchers.config import FeedSourceConfig, RuleConfig
from watchers.errors import StoreError
from watchers.rules.lookup import index_terms
from watchers.store import SqliteStore
from watchers.store.sqlite._db import Db
from watchers.store.sqlite.probe import open_refusal
from watchers.store.sqlite.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION


def schema_of(path: Path) -> dict[str, str]:
    """Every table, index, trigger and view, by name, as comparable SQL."""
    con = sqlite3.connect(path)
    try:
        rows = con.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
    finally:
        con.close()
    out = {}
    for kind, name, sql in rows:
        text = " ".join((sql or "").replace('"', "").split())
        text = re.sub(r"\s*([(),])\s*", r"\1", text)
        out[f"{kind} {name}"] = text
    return out


def foreign_db(path: Path, *statements: str) -> Path:
    """An SQLite file another program wrote: ``statements`` run, committed and closed."""
    con = sqlite3.connect(path)
    for sql in statements:
        con.execute(sql)
    con.commit()
    con.close()
    return path


def header(path: Path) -> tuple[int, int, str]:
    con = sqlite3.connect(path)
    try:
        return (con.execute("PRAGMA application_id").fetchone()[0],
                con.execute("PRAGMA user_version").fetchone()[0],
                con.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        con.close()


async def test_a_new_database_is_marked_versioned_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    await (await SqliteStore.open(path)).aclose()
    assert header(path) == (APPLICATION_ID, SCHEMA_VERSION, "wal")


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    await (await SqliteStore.open(path)).aclose()
    foreign_db(path, "PRAGMA user_version=999")
    with pytest.raises(StoreError, match="newer than this newswatch"):
        await SqliteStore.open(path)


async def test_another_programs_database_of_a_high_version_is_not_taken_for_a_newer_one(
        tmp_path: Path) -> None:
    """It was told to 'upgrade newswatch'; newswatch stamps its application id on every
    schema it writes."""
    path = foreign_db(tmp_path / "other.db", "CREATE TABLE notes (body TEXT)",
                      "PRAGMA user_version=999")
    with pytest.raises(StoreError, match=r"is not a newswatch database \(user version 999"):
        await SqliteStore.open(path)


async def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"bad\.db is not a newswatch database"):
        await SqliteStore.open(bad)
    assert bad.read_bytes() == b"this is not sqlite" * 100


async def test_another_applications_database_is_refused_untouched(tmp_path: Path) -> None:
    other = foreign_db(tmp_path / "other.db", "PRAGMA application_id=1234",
                       "CREATE TABLE t (x)")
    # no application id, but tables that are not ours
    plain = foreign_db(tmp_path / "plain.db", "CREATE TABLE notes (x)")
    for path in (other, plain):
        before = path.read_bytes()
        with pytest.raises(StoreError, match="is not a newswatch database"):
            await SqliteStore.open(path)
        assert path.read_bytes() == before


async def test_a_version_1_database_migrates_to_exactly_the_new_schema(tmp_path: Path) -> None:
    old = legacy_v1(tmp_path / "old.db")
    async with await SqliteStore.open(old, terms_of=index_terms) as store:
        assert [a.id for a in await store.candidates(fts='"troop"')] == ["a1"]  # backfilled
        (row,) = await store.alerts()
        assert row.kind == "alert" and [r.name for r in row.rules] == ["troops"]
        assert row.rules[0].query == ""  # a legacy row names its rules only
        assert [(r.name, r.query, r.origin) for r in await store.list_rules()] == [
            ("troops", "troops", "store")]
        assert await store.integrity_check() == "ok"
    fresh = tmp_path / "fresh.db"
    await (await SqliteStore.open(fresh)).aclose()
    assert schema_of(old) == schema_of(fresh)
    assert header(old) == header(fresh)


async def test_the_index_backfill_needs_the_terms_function(tmp_path: Path) -> None:
    old = legacy_v1(tmp_path / "old.db")
    with pytest.raises(StoreError, match="lookup index must be rebuilt"):
        await SqliteStore.open(old)
    # nothing half-done: a later open with the function completes the upgrade
    async with await SqliteStore.open(old, terms_of=index_terms) as store:
        assert [a.id for a in await store.candidates(fts='"soldier"')] == ["a1"]


async def test_a_database_written_by_schema_3_keeps_all_its_data(tmp_path: Path) -> None:
    path = legacy_v3(tmp_path)
    t0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    async with await SqliteStore.open(path) as store:
        assert await store.count_articles() == 3
        assert await store.count_by_source() == {"bbc": 2, "dw": 1}
        (troops,) = await store.candidates(fts='"soldier"')
        assert troops.title == "Troops mass at the border" and troops.published == t0
        assert await store.get_article(troops.id[:8]) == troops
        assert [m.rule for m in await store.matches_for(troops.id)] == ["troops"]
        rows = await store.alerts()
        assert [(r.route, r.state, tuple(x.name for x in r.rules)) for r in rows] == [
            ("alerts", "delivered", ("troops",)),
            ("alerts", "retry", ("floods",)),
            ("ops", "held", ("floods",)),
            ("desk", "suppressed", ("sanctions",)),
        ]
        assert rows[0].remote_id == "remote-1" and rows[0].attempts == 1
        assert rows[1].next_attempt_at == t0 + timedelta(minutes=5) and rows[1].reason == "503"
        assert all(len(r.nonce) == 24 and r.kind == "alert" for r in rows)
        assert await store.paused_routes() == {"ops": "403 Missing Access"}
        state = await store.source_state("bbc")
        assert state is not None and state.cursor == {"etag": "W/1"} and state.polls == 7
        assert state.failures == 2 and state.next_poll == t0 + timedelta(minutes=5)
        assert await store.list_rules() == [
            RuleConfig(name="kyiv", query="kyiv~ OR kiev", channel="ops", severity="high",
                       mention_role=1234, threshold=90, created_by="alice#1", origin="store"),
            RuleConfig(name="plain", query="earthquake", origin="store"),
        ]
        assert await store.list_sources() == [
            FeedSourceConfig(type="feed", name="dw", url="https://rss.dw.com/xml/rss-en-all",
                             every=timedelta(minutes=10), created_by="bob", origin="store"),
        ]
        assert set(await store.mutes(now=t0)) == {"floods"}
        # the state machine carries on where the old version left it
        assert await store.resume_route("ops") == 1
        (claimed,) = await store.claim_route("ops", now=datetime.now(UTC))
        assert claimed.nonce == rows[2].nonce and claimed.attempts == 1
        # and new rows are written in the new form beside the old ones
        await put(store, art("Fresh story"))
        assert await store.integrity_check() == "ok"
    fresh = tmp_path / "fresh.db"
    await (await SqliteStore.open(fresh)).aclose()
    assert schema_of(path) == schema_of(fresh)


@pytest.mark.parametrize("version", [1, 3, 4, 5, SCHEMA_VERSION])
async def test_another_programs_database_with_a_newswatch_version_is_refused_untouched(
        tmp_path: Path, version: int) -> None:
    """Unmarked, of a version newswatch had: check said ok, run failed on "no such table:
    articles" after switching the file to WAL, search told the user to upgrade it."""
    path = foreign_db(tmp_path / "other.db", "CREATE TABLE users (id INTEGER, name TEXT)",
                      "INSERT INTO users VALUES (1, 'bob')", f"PRAGMA user_version={version}")
    before = path.read_bytes()
    says = f"{path} is not a newswatch database (it holds other tables: users)"
    for how in ({}, {"readonly": True}, {"lock": False}):
        with pytest.raises(StoreError) as caught:
            await SqliteStore.open(path, terms_of=index_terms, **how)  # type: ignore[arg-type]
        assert str(caught.value) == says
    assert await open_refusal(str(path)) == says  # what `newswatch check` asks
    assert path.read_bytes() == before
    assert header(path) == (0, version, "delete")
    # nothing left beside it: a writer's refusal left the lock file it had made
    assert sorted(os.listdir(tmp_path)) == ["other.db"]
    (tmp_path / "other.db.lock").write_text("")  # one there before is not the refusal's to take
    with pytest.raises(StoreError):
        await SqliteStore.open(path, terms_of=index_terms)
    assert sorted(os.listdir(tmp_path)) == ["other.db", "other.db.lock"]


async def test_an_unmarked_file_without_its_versions_tables_is_refused(tmp_path: Path) -> None:
    path = foreign_db(tmp_path / "bare.db", "PRAGMA user_version=2")
    with pytest.raises(StoreError, match=r"bare\.db is not a newswatch database \(user version "
                                         r"2, without newswatch's tables of that version: "
                                         r"articles, matches, mutes, outbox, route_pauses, "
                                         r"source_state, user_rules, user_sources\)"):
        await SqliteStore.open(path)
    assert header(path) == (0, 2, "delete")


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION + 1))
async def test_an_unmarked_newswatch_database_of_every_version_still_upgrades(
        tmp_path: Path, version: int) -> None:
    """Versions before 4 stamped no application id: each version's own tables are what tells
    such a file from another program's."""
    path = legacy_v1(tmp_path / "old.db")
    db = await Db.connect(str(path), lock=False, readonly=False)
    try:
        for step in range(2, version + 1):
            async with db.tx() as tx:
                await MIGRATIONS[step](tx, index_terms, str(path))
                await tx.execute(f"PRAGMA user_version={step}")
    finally:
        await db.close()
    assert header(path)[:2] == (0, version)
    assert await open_refusal(str(path)) is None
    async with await SqliteStore.open(path, terms_of=index_terms) as store:
        assert store.found_version == version
        assert [a.id for a in await store.candidates(fts='"troop"')] == ["a1"]
        assert await store.integrity_check() == "ok"
    # marked by the first migration it took (one already current is left as it was)
    assert header(path) == (0 if version == SCHEMA_VERSION else APPLICATION_ID, SCHEMA_VERSION,
                            "wal")
