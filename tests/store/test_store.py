"""SqliteStore against a real SQLite file: dedupe, outbox life, lookup index, state, and the
run-time rules and sources kept as config models."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.store._support import alert, art, match, put, rule
from watchers.config import FeedSourceConfig, FolderSourceConfig, RuleConfig
from watchers.errors import StoreError
from watchers.store import SourceState, SqliteStore
from watchers.store.base import OutboxRow


async def test_record_writes_article_matches_and_outbox_together(store: SqliteStore) -> None:
    a = art("Troops mass at border", guid="g1", url="https://ex.org/a?utm_source=x")
    snapshot = rule(severity="high", mention_role=42)
    stored = await put(store, a, [match(a)], [alert("alerts", snapshot)])
    assert stored is not None
    assert await store.count_articles() == 1
    assert [m.rule for m in await store.matches_for(stored.id)] == ["troops"]
    assert (await store.matches_for(stored.id))[0].hits[0].text == "Troops"
    rows = await store.alerts()
    assert [(r.kind, r.route, r.rules, r.state) for r in rows] == [
        ("alert", "alerts", (snapshot,), "pending")]
    assert rows[0].article_id == stored.id and rows[0].text is None
    assert len(rows[0].nonce) == 24


async def test_duplicates_by_guid_link_and_content(store: SqliteStore) -> None:
    a = art("One", guid="g1", url="https://ex.org/one")
    assert await put(store, a) is not None
    # same guid, same link, edited text: an update, not a new story
    edited = art("One", "edited", guid="g1", url="https://ex.org/one")
    assert await put(store, edited) is None
    # new guid, same title, link differs only by tracking parameters and fragment: a re-post
    dup_link = art("One", "other", guid="g2", url="https://EX.org/one?utm_medium=rss#top")
    assert await put(store, dup_link) is None
    # new guid and link, same words (different markup and case)
    assert await put(store, art("ONE", "One  body text", guid="g3")) is None
    # a feed that reuses one guid for distinct items: each is kept
    b = art("Two", guid="g1", url="https://ex.org/two")
    stored_b = await put(store, b)
    assert stored_b is not None and stored_b.id != a.id
    assert await store.count_articles() == 2
    assert await store.is_known(b)


async def test_items_sharing_one_link_with_their_own_guids_and_titles_are_distinct(
        store: SqliteStore) -> None:
    """A live page gives every update the page's link; each has its own guid and title."""
    live = "https://ex.org/live/ukraine-latest"
    titles = ["Troops cross the border", "Talks resume in Geneva", "Sanctions announced"]
    for i, title in enumerate(titles):
        assert await put(store, art(title, f"update {i}", guid=f"live-{i}", url=live)) is not None
    assert await store.count_articles() == 3
    # the same item again, or a copy under a new guid with the same title, is not new
    assert await put(store, art(titles[0], "update 0", guid="live-0", url=live)) is None
    assert await put(store, art(titles[1], "update 1 again", guid="live-x", url=live)) is None
    assert await store.count_articles() == 3


async def test_an_id_already_taken_gets_the_content_hash(store: SqliteStore) -> None:
    first = art("First story", id="fixed-id")
    second = art("Second story", id="fixed-id")
    assert (await put(store, first)).id == "fixed-id"  # type: ignore[union-attr]
    stored = await put(store, second)
    assert stored is not None and stored.id == second.content_hash[:16]
    assert (await store.get_article(stored.id)) == stored


async def test_get_article_by_id_or_unique_prefix(store: SqliteStore) -> None:
    a = art("Alpha", id="abcdef0123")
    b = art("Beta", id="abcdef9999")
    c = art("Gamma", id="fedcba0000")
    for x in (a, b, c):
        await put(store, x)
    assert (await store.get_article("abcdef0123")) == a
    assert (await store.get_article("fedcba")) == c
    assert (await store.get_article("FEDCBA")) == c  # ids are lowercase; a paste may not be
    assert await store.get_article("abcdef") is None  # ambiguous
    assert (await store.get_article("abcdef9")) == b
    assert await store.get_article("fedcb") is None  # too short to be a prefix
    assert await store.get_article("abcdef%") is None  # no pattern language
    assert await store.get_article("zzzzzzzz") is None


async def test_a_prefix_is_unique_among_the_articles_a_caller_sees(store: SqliteStore) -> None:
    """/article in a server: another server's article whose id began the same way made a
    prefix of the server's own article find nothing (and told it such an article exists)."""
    mine = art("Mine", id="abcdef0123")
    theirs = art("Theirs", id="abcdef9999")
    for x in (mine, theirs):
        await put(store, x)
    own = lambda a: a.title == "Mine"  # noqa: E731
    assert await store.get_article("abcdef") is None  # two, to a caller that sees both
    assert (await store.get_article("abcdef", visible=own)) == mine
    assert (await store.get_article("ABCDEF", visible=own)) == mine
    assert await store.get_article("abcdef9", visible=own) is None
    assert await store.get_article("abcdef9999", visible=own) is None  # whole id, not seen
    assert (await store.get_article("abcdef0123", visible=own)) == mine


async def test_outbox_claim_deliver_retry_and_restart(store: SqliteStore) -> None:
    now = datetime.now(UTC)
    ids = []
    for i in range(3):
        a = art(f"Story {i}")
        await put(store, a, [match(a)], [alert()])
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
    # the delivery marks a row maybe sent before it calls the sink: the first is being sent
    await store.mark_maybe_sent(later[0].id)
    # a crash now leaves them 'sending'; start-up puts them back, the one whose sink was called
    # marked maybe sent, the other as it was (claimed, never sent)
    assert await store.requeue_interrupted() == 2
    assert await store.alert_counts() == {"delivered": 1, "pending": 2}
    assert await store.maybe_sent(later[0].id) and not await store.maybe_sent(later[1].id)


async def test_stored_hashes_names_the_content_already_stored(store: SqliteStore) -> None:
    a, b = art("Stored story"), art("Never stored")
    await put(store, a, [match(a)], [])
    assert await store.stored_hashes([a.content_hash, b.content_hash, a.content_hash]) == {
        a.content_hash}
    assert await store.stored_hashes([]) == set()


async def test_hash_sources_names_the_sources_that_stored_each_content(store: SqliteStore
                                                                        ) -> None:
    a, b = art("Stored story"), art("Never stored")
    other = a.model_copy(update={"source": "wire", "guid": "w1"})
    await put(store, a, [match(a)], [])
    assert await put(store, other) is None  # word for word: stored once, under "feed"
    assert await store.hash_sources([a.content_hash, b.content_hash, a.content_hash]) == {
        a.content_hash: {"feed"}}
    assert await store.hash_sources([]) == {}


async def test_deleting_a_rule_deletes_its_mute_and_no_other(store: SqliteStore) -> None:
    now = datetime.now(UTC)
    await store.put_rule(rule("watch"))
    await store.mute("watch", now + timedelta(days=30))
    await store.mute("from-file", now + timedelta(days=30))  # a config file's rule: no row
    assert not await store.delete_rule("from-file")
    assert set(await store.mutes(now=now)) == {"watch", "from-file"}
    assert await store.delete_rule("watch")
    assert set(await store.mutes(now=now)) == {"from-file"}


async def test_a_routes_interrupted_claims_are_requeued_alone(store: SqliteStore) -> None:
    """A delivery cut short by the store going away (PostgreSQL restarting) left its route's
    claimed rows "sending": they go back (maybe sent if their sink was called), and another
    route's claims stay."""
    now = datetime.now(UTC)
    for i, route in enumerate(("alerts", "alerts", "ops")):
        a = art(f"Interrupted {i}")
        await put(store, a, [match(a)], [alert(route)])
    mine = await store.claim_route("alerts", now=now)
    other = await store.claim_route("ops", now=now)
    assert len(mine) == 2 and len(other) == 1
    await store.mark_maybe_sent(mine[0].id)  # being sent when the store went away
    assert await store.requeue_interrupted("alerts") == 2
    assert await store.alert_counts() == {"pending": 2, "sending": 1}
    assert [await store.maybe_sent(r.id) for r in mine] == [True, False]
    assert not await store.maybe_sent(other[0].id)
    again = await store.claim_route("alerts", now=now)
    assert [r.id for r in again] == [r.id for r in mine]


async def test_suppressed_and_held_alerts_are_not_claimed(store: SqliteStore) -> None:
    a, b = art("Muted story"), art("Held story")
    await put(store, a, [match(a)], [alert("alerts", suppressed=True)])
    await put(store, b, [match(b)], [alert("ops")])
    assert await store.pause_route("ops", "403 missing access") == 1
    assert await store.paused_routes() == {"ops": "403 missing access"}
    assert await store.held_counts() == {"ops": 1}
    now = datetime.now(UTC)
    assert await store.claim_route("alerts", now=now) == []
    assert await store.claim_route("ops", now=now) == []
    assert await store.resume_route("ops") == 1
    assert [r.article_id for r in await store.claim_route("ops", now=now)] == [b.id]


async def test_notices_are_outbox_rows_in_order_with_alerts(store: SqliteStore) -> None:
    a, b = art("First alert"), art("Second alert")
    await put(store, a, [match(a)], [alert("ops")])
    notice_id = await store.add_notice("ops", "source bbc paused after 10 failures")
    await put(store, b, [match(b)], [alert("ops")])
    now = datetime.now(UTC)
    rows = await store.claim_route("ops", now=now, limit=10)
    assert [(r.kind, r.article_id, r.text) for r in rows] == [
        ("alert", a.id, None),
        ("notice", None, "source bbc paused after 10 failures"),
        ("alert", b.id, None),
    ]
    assert rows[1].id == notice_id and rows[1].rules == () and len(rows[1].nonce) == 24
    # the same state machine: a retry of the notice holds back the alert behind it
    await store.mark_delivered(rows[0].id, "m1")
    await store.mark_retry(notice_id, at=now + timedelta(minutes=1), reason="503")
    await store.mark_retry(rows[2].id, at=now, reason="waiting behind an earlier alert")
    assert await store.claim_route("ops", now=now) == []
    assert (await store.due_routes())["ops"] == now + timedelta(minutes=1)
    # counts keep alerts and notices apart; a pause holds both but counts alerts
    assert await store.alert_counts() == {"delivered": 1, "retry": 1}
    assert await store.notice_counts() == {"retry": 1}
    assert await store.pause_route("ops", "403") == 1
    assert {r.kind for r in await store.alerts(state="held")} == {"alert", "notice"}
    assert [r.id for r in await store.alerts(kind="notice")] == [notice_id]
    assert await store.resume_route("ops") == 1
    assert await store.notice_counts() == {"pending": 1}


async def test_outbox_rows_of_some_routes_first_or_newest(store: SqliteStore) -> None:
    """``alerts`` reads the rows of the routes asked for in the store (a server's /alerts
    status), the first ``limit`` or with ``newest`` the last, in the order written, and those
    written after a row (the engine reads all waiting alerts so, page by page)."""
    written = []
    for i, route in enumerate(["a", "b", "a", "c", "a", "b", "a"]):
        a = art(f"Report {i}")
        await put(store, a, [match(a)], [alert(route)])
        written.append((route, a.id))

    def ids(rows: list[OutboxRow]) -> list[str | None]:
        return [r.article_id for r in rows]

    of_a = [i for r, i in written if r == "a"]
    assert ids(await store.alerts(routes=["a"])) == of_a
    assert ids(await store.alerts(routes=["a", "c"], limit=3)) == [written[i][1] for i in (0, 2, 3)]
    assert ids(await store.alerts(routes=["a"], limit=3, newest=True)) == of_a[-3:]
    assert ids(await store.alerts(limit=2, newest=True)) == [i for _, i in written][-2:]
    assert await store.alerts(routes=[]) == []
    assert ids(await store.alerts(state="pending", kind="alert", routes={"b"}, newest=True,
                                  limit=1)) == [written[5][1]]
    # Page by page: the rows written after the last one read.
    pages, after = [], 0
    while page := await store.alerts(routes=["a", "b"], limit=2, after=after):
        pages.append(ids(page))
        after = page[-1].id
    assert pages == [[written[i][1] for i in p] for p in ((0, 1), (2, 4), (5, 6))]


async def test_rule_snapshots_keep_what_matched(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    snap = rule("kyiv", "kyiv~ OR kiev", channel="ops", severity="critical", mention_role=7,
                threshold=90, origin="store", created_by="alice")
    async with await SqliteStore.open(path) as store:
        a = art("Kyiv talks")
        await put(store, a, [match(a, "kyiv")], [alert("ops", snap, rule("other", "talks"))])
    async with await SqliteStore.open(path) as store:
        (row,) = await store.alerts()
        assert row.rules == (snap, rule("other", "talks"))


async def test_lookup_candidates_and_filters(store: SqliteStore) -> None:
    old = art("Kyiv talks", "Diplomats met in Kyiv", published=datetime(2022, 1, 1, tzinfo=UTC))
    new = art("Troops", "Soldiers in Donbás", published=datetime(2022, 1, 20, tzinfo=UTC))
    for a in (old, new):
        await put(store, a)
    assert [a.title for a in await store.candidates(fts="donbas")] == ["Troops"]
    assert [a.title for a in await store.candidates(fts=None)] == ["Troops", "Kyiv talks"]
    since = datetime(2022, 1, 10, tzinfo=UTC)
    assert [a.title for a in await store.candidates(fts=None, since=since)] == ["Troops"]
    assert [a.title for a in await store.candidates(fts=None, source="other")] == []
    with pytest.raises(StoreError, match="search index rejected"):
        await store.candidates(fts='"unbalanced')


async def test_record_indexes_the_terms_it_is_given(store: SqliteStore) -> None:
    a = art("Plain title", "plain text")
    await store.record(a, [], [], terms="zebra")
    assert [x.id for x in await store.candidates(fts="zebra")] == [a.id]
    assert await store.candidates(fts="plain") == []


async def test_source_state_and_mutes_persist(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s = await SqliteStore.open(path)
    now = datetime.now(UTC)
    await s.save_source_state(SourceState("bbc", cursor={"etag": "x"}, polls=3, failures=1,
                                          last_error="timeout", last_error_at=now, skipped=2))
    await s.mute("kyiv", now + timedelta(hours=1))
    await s.aclose()
    s = await SqliteStore.open(path)
    try:
        st = await s.source_state("bbc")
        assert st is not None and st.cursor == {"etag": "x"} and st.failures == 1
        assert st.skipped == 2 and st.last_error_at == now
        assert [x.name for x in await s.all_source_states()] == ["bbc"]
        assert await s.source_state("dw") is None
        assert set(await s.mutes(now=now)) == {"kyiv"}
        assert set(await s.mutes(now=now + timedelta(hours=2))) == set()
        assert await s.unmute("kyiv", now=now) and not await s.unmute("kyiv", now=now)
        assert await s.integrity_check() == "ok"
    finally:
        await s.aclose()


async def test_run_time_rules_and_sources_are_config_models(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    kyiv = RuleConfig(name="kyiv", query="kyiv~", channel="ops", severity="high",
                      mention_role=5, threshold=80, created_by="alice")
    feed = FeedSourceConfig(type="feed", name="dw", url="https://rss.dw.com/x", every="10m",
                            backfill=3, created_by="bob")
    folder = FolderSourceConfig(type="folder", name="drop", path="inbox", every=45.5)
    async with await SqliteStore.open(path) as s:
        await s.put_rule(kyiv)
        await s.put_source(feed)
        await s.put_source(folder)
    async with await SqliteStore.open(path) as s:
        (got,) = await s.list_rules()
        assert got == kyiv.model_copy(update={"origin": "store"})
        assert await s.list_sources() == [  # by name
            folder.model_copy(update={"origin": "store"}),
            feed.model_copy(update={"origin": "store"}),
        ]
        # a replacement keeps one row per name
        await s.put_rule(kyiv.model_copy(update={"query": "kiev"}))
        assert [r.query for r in await s.list_rules()] == ["kiev"]
        assert await s.delete_rule("kyiv") and not await s.delete_rule("kyiv")
        assert await s.delete_source("dw") and not await s.delete_source("dw")
        assert [x.name for x in await s.list_sources()] == ["drop"]
    # durations are kept as seconds, which the config's duration parser reads
    con = sqlite3.connect(path)
    try:
        (model,) = con.execute("SELECT model FROM sources WHERE name = 'drop'").fetchone()
    finally:
        con.close()
    assert json.loads(model)["every"] == 45.5


async def test_a_stored_rule_that_no_longer_validates_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.db"
    async with await SqliteStore.open(path) as s:
        await s.put_rule(rule("good", "troops"))
    con = sqlite3.connect(path)
    con.execute("INSERT INTO rules (name, model, created_at) VALUES ('bad', "
                "'{\"name\": \"bad\", \"query\": \"x\", \"severity\": \"apocalyptic\"}', 'now')")
    con.commit()
    con.close()
    async with await SqliteStore.open(path) as s:
        assert [r.name for r in await s.list_rules()] == ["good"]
    assert "stored rule 'bad' is not valid" in caplog.text and "severity" in caplog.text


async def test_due_routes_names_each_route_with_its_first_waiting_row(
    store: SqliteStore,
) -> None:
    now = datetime.now(UTC)
    for i, route in enumerate(["desk", "alerts", "ops", "alerts", "desk"]):
        a = art(f"Story {i}")
        await put(store, a, [match(a)], [alert(route)])
    assert await store.due_routes() == {"alerts": None, "desk": None, "ops": None}
    (first_desk,) = await store.claim_route("desk", now=now, limit=1)
    await store.mark_retry(first_desk.id, at=now + timedelta(minutes=3), reason="429")
    (ops,) = await store.claim_route("ops", now=now)
    await store.mark_delivered(ops.id, None)
    # desk waits for its first row's retry even though its second is pending; ops is done
    assert await store.due_routes() == {"alerts": None, "desk": now + timedelta(minutes=3)}
    await store.pause_route("alerts", "403")
    assert await store.due_routes() == {"desk": now + timedelta(minutes=3)}
