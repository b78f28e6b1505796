"""SqliteStore against a real SQLite file: dedupe, outbox life, FTS, migrations, state."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from watchers.errors import StoreError
from watchers.models import Article, Hit, Match
from watchers.store import OutboxEntry, SourceState, SqliteStore, StoredRule, StoredSource


def art(title: str, text: str = "", **kw: object) -> Article:
    return Article(title=title, text=text or f"{title} body text", source="feed", **kw)  # type: ignore[arg-type]


def match(a: Article, rule: str = "troops") -> Match:
    return Match(rule=rule, article_id=a.id, score=1.0,
                 hits=(Hit(term="troops", field="title", start=0, end=6, text=a.title[:6]),))


async def test_record_writes_article_matches_and_outbox_together(store: SqliteStore) -> None:
    a = art("Troops mass at border", guid="g1", url="https://ex.org/a?utm_source=x")
    stored = await store.record(a, [match(a)], [OutboxEntry("alerts", ("troops",))])
    assert stored is not None
    assert await store.count_articles() == 1
    assert [m.rule for m in await store.matches_for(stored.id)] == ["troops"]
    assert (await store.matches_for(stored.id))[0].hits[0].text == "Troops"
    rows = await store.alerts()
    assert [(r.route, r.rules, r.state) for r in rows] == [("alerts", ("troops",), "pending")]
    assert len(rows[0].nonce) == 24


async def test_duplicates_by_guid_link_and_content(store: SqliteStore) -> None:
    a = art("One", guid="g1", url="https://ex.org/one")
    assert await store.record(a, [], []) is not None
    # same guid, same link, edited text: an update, not a new story
    edited = art("One", "edited", guid="g1", url="https://ex.org/one")
    assert await store.record(edited, [], []) is None
    # new guid, link differs only by tracking parameters and fragment
    dup_link = art("One again", "other", guid="g2", url="https://EX.org/one?utm_medium=rss#top")
    assert await store.record(dup_link, [], []) is None
    # new guid and link, same words (different markup and case)
    assert await store.record(art("ONE", "One  body text", guid="g3"), [], []) is None
    # a feed that reuses one guid for distinct items: each is kept
    b = art("Two", guid="g1", url="https://ex.org/two")
    stored_b = await store.record(b, [], [])
    assert stored_b is not None and stored_b.id != a.id
    assert await store.count_articles() == 2
    assert await store.is_known(b)


async def test_outbox_claim_deliver_retry_and_restart(store: SqliteStore) -> None:
    now = datetime.now(UTC)
    ids = []
    for i in range(3):
        a = art(f"Story {i}")
        await store.record(a, [match(a)], [OutboxEntry("alerts", ("troops",))])
        ids.append(a.id)
    claimed = await store.claim_route("alerts", now=now, limit=2)
    assert [r.article_id for r in claimed] == ids[:2]
    assert all(r.state == "sending" and r.attempts == 1 for r in claimed)
    await store.mark_delivered(claimed[0].id, "m1")
    await store.mark_retry(claimed[1].id, at=now + timedelta(minutes=1), reason="429")
    # order is kept: the third waits behind the second's retry
    assert await store.claim_route("alerts", now=now, limit=5) == []
    later = await store.claim_route("alerts", now=now + timedelta(minutes=2), limit=5)
    assert [r.article_id for r in later] == [ids[1], ids[2]]
    assert later[0].attempts == 2 and later[0].nonce == claimed[1].nonce
    # a crash now leaves them 'sending'; start-up puts them back, marked as maybe sent
    assert await store.requeue_interrupted() == 2
    assert await store.alert_counts() == {"delivered": 1, "pending": 2}
    assert await store.maybe_sent(later[0].id)


async def test_suppressed_and_held_alerts_are_not_claimed(store: SqliteStore) -> None:
    a, b = art("Muted story"), art("Held story")
    await store.record(a, [match(a)], [OutboxEntry("alerts", ("troops",), suppressed=True)])
    await store.record(b, [match(b)], [OutboxEntry("ops", ("troops",))])
    assert await store.pause_route("ops", "403 missing access") == 1
    assert await store.paused_routes() == {"ops": "403 missing access"}
    now = datetime.now(UTC)
    assert await store.claim_route("alerts", now=now) == []
    assert await store.claim_route("ops", now=now) == []
    assert await store.resume_route("ops") == 1
    assert [r.article_id for r in await store.claim_route("ops", now=now)] == [b.id]


async def test_fts_candidates_and_filters(store: SqliteStore) -> None:
    old = art("Kyiv talks", "Diplomats met in Kyiv", published=datetime(2022, 1, 1, tzinfo=UTC))
    new = art("Troops", "Soldiers in Donbás", published=datetime(2022, 1, 20, tzinfo=UTC))
    for a in (old, new):
        await store.record(a, [], [])
    assert [a.title for a in await store.candidates(fts="donbas")] == ["Troops"]
    assert [a.title for a in await store.candidates(fts=None)] == ["Troops", "Kyiv talks"]
    since = datetime(2022, 1, 10, tzinfo=UTC)
    assert [a.title for a in await store.candidates(fts=None, since=since)] == ["Troops"]
    with pytest.raises(StoreError, match="search index rejected"):
        await store.candidates(fts='"unbalanced')


async def test_source_state_rules_sources_and_mutes_persist(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s = await SqliteStore.open(path)
    now = datetime.now(UTC)
    await s.save_source_state(SourceState("bbc", cursor={"etag": "x"}, polls=3, failures=1,
                                          last_error="timeout", last_error_at=now))
    await s.put_rule(StoredRule("kyiv", "kyiv~", channel="alerts", severity="high"))
    await s.put_source(StoredSource("dw", "https://rss.dw.com/x", 600))
    await s.mute("kyiv", now + timedelta(hours=1))
    await s.aclose()
    s = await SqliteStore.open(path)
    try:
        st = await s.source_state("bbc")
        assert st is not None and st.cursor == {"etag": "x"} and st.failures == 1
        assert [r.query for r in await s.list_rules()] == ["kyiv~"]
        assert [x.url for x in await s.list_sources()] == ["https://rss.dw.com/x"]
        assert set(await s.mutes(now=now)) == {"kyiv"}
        assert set(await s.mutes(now=now + timedelta(hours=2))) == set()
        assert await s.delete_rule("kyiv") and not await s.delete_rule("kyiv")
        assert await s.integrity_check() == "ok"
    finally:
        await s.aclose()


async def test_schema_is_versioned_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    await (await SqliteStore.open(path)).aclose()
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA user_version").fetchone()[0] >= 1
        con.execute("PRAGMA user_version=999")
        con.commit()
    finally:
        con.close()
    with pytest.raises(StoreError, match="newer than this newswatch"):
        await SqliteStore.open(path)


async def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a newswatch database"):
        await SqliteStore.open(bad)


async def test_upgrade_indexes_articles_stored_before_the_lookup_index(tmp_path: Path) -> None:
    from watchers.store.sqlite import MIGRATIONS, TERMS_MIGRATION

    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    for script in MIGRATIONS[:TERMS_MIGRATION]:
        con.executescript(script)
    con.execute(
        "INSERT INTO articles (id, source, title, text, fetched_at, sort_at, content_hash) "
        "VALUES ('a1', 's', 'Troops move', 'Soldiers near Kharkiv', "
        "'2022-01-01T00:00:00.000000Z', '2022-01-01T00:00:00.000000Z', 'h1')")
    con.execute(f"PRAGMA user_version={TERMS_MIGRATION}")
    con.commit()
    con.close()
    async with await SqliteStore.open(path) as store:
        assert [a.id for a in await store.candidates(fts='"troop"')] == ["a1"]
        assert await store.integrity_check() == "ok"
