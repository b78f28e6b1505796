"""What only the PostgreSQL store has: its schema marker and version, the one-writer lock taken
through the server, read-only sessions, one-line errors for a server that is not there, the
translation of index queries, and writers in several pools (as in several processes) that
never store an article twice or claim a row twice."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from tests.conftest import REPO
from tests.pg import admin, database_url
from tests.store._support import alert, art, match
from watchers.errors import StoreError, StoreUnavailableError
from watchers.models import Article
from watchers.rules.lookup import index_terms
from watchers.store._shared import article_identity
from watchers.store.base import ArticleRecord, Registration, SourceState, StoryLink
from watchers.store.postgres import PostgresStore, describe, fts_to_tsquery
from watchers.store.postgres.schema import SCHEMA_VERSION


async def sql(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def test_index_queries_become_tsqueries_word_for_word() -> None:
    assert fts_to_tsquery('"troops"') == "'troops'"
    assert fts_to_tsquery("donbas") == "'donbas'"
    assert fts_to_tsquery('"mobili"*') == "'mobili':*"
    assert fts_to_tsquery('("kyiv" OR "kiev") AND "talks"') == "(('kyiv' | 'kiev') & 'talks')"
    # FTS5 precedence: NOT over AND (also implicit) over OR
    assert fts_to_tsquery('a b OR c NOT d') == "(('a' & 'b') | ('c' & !'d'))"
    assert fts_to_tsquery('"o\'brien" "say ""hi"""') == "('o''brien' & 'say \"hi\"')"
    assert fts_to_tsquery('"back\\slash"') == "'back\\\\slash'"
    for bad in ('"open', "(a", "a)", "OR", "a AND", "col:a", "a + b", "*"):
        with pytest.raises(StoreError, match="search index rejected the query"):
            fts_to_tsquery(bad)


def test_messages_name_the_database_but_never_the_password() -> None:
    assert describe("postgresql://u:secret@db.example:5433/news") == (
        "postgresql://db.example:5433/news")
    assert describe("postgresql:///news?host=/run/pg&port=5444") == (
        "postgresql:///run/pg:5444/news")


async def test_a_new_database_gets_the_current_schema_once(pg_database: str) -> None:
    async with await PostgresStore.open(pg_database):
        pass
    async with await PostgresStore.open(pg_database, readonly=True) as reader:
        assert await reader.count_articles() == 0
    conn = await asyncpg.connect(pg_database)
    try:
        assert await conn.fetchval("SELECT version FROM schema_version") == SCHEMA_VERSION
        assert await conn.fetchval("SELECT count(*) FROM schema_version") == 1
    finally:
        await conn.close()


async def test_a_database_that_is_not_newswatch_s_is_refused(pg_database: str) -> None:
    await sql(pg_database, "CREATE TABLE invoices (id int)")
    with pytest.raises(StoreError, match=r"is not a newswatch database \(it holds other tables\)"):
        await PostgresStore.open(pg_database)
    conn = await asyncpg.connect(pg_database)
    try:  # nothing was written into it
        assert await conn.fetchval("SELECT to_regclass('articles')") is None
    finally:
        await conn.close()


async def test_another_applications_schema_version_table_is_refused_by_name(
        pg_database: str) -> None:
    """A table of that name without newswatch's columns: the missing column was the error."""
    await sql(pg_database, "CREATE TABLE schema_version (version int)")
    await sql(pg_database, "INSERT INTO schema_version VALUES (3)")
    with pytest.raises(StoreError, match=r"is not a newswatch database \(its schema_version "
                                         r"table is not newswatch's\)"):
        await PostgresStore.open(pg_database)


async def test_a_newer_schema_or_an_empty_database_for_reading_is_refused(
        pg_database: str) -> None:
    with pytest.raises(StoreError, match="is an empty database, not a newswatch one yet"):
        await PostgresStore.open(pg_database, readonly=True)
    await (await PostgresStore.open(pg_database)).aclose()
    await sql(pg_database, f"UPDATE schema_version SET version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match=f"has schema version {SCHEMA_VERSION + 1}, newer than"):
        await PostgresStore.open(pg_database)


async def test_one_writer_at_a_time_and_readers_beside_it(pg_database: str) -> None:
    async with await PostgresStore.open(pg_database) as writer:
        await writer.add_notice("ops", "hello")
        with pytest.raises(StoreError, match="already open for writing in this process"):
            await PostgresStore.open(pg_database)
        async with await PostgresStore.open(pg_database, lock=False) as reader:
            assert await reader.notice_counts() == {"pending": 1}
        async with await PostgresStore.open(pg_database, readonly=True) as reader:
            with pytest.raises(StoreError, match="readonly"):
                await reader.add_notice("ops", "not written")
    # the lock went with the writer's session
    await (await PostgresStore.open(pg_database)).aclose()


async def test_a_writer_in_another_process_is_named(pg_database: str, pg_url: str) -> None:
    holder = await asyncpg.connect(pg_database,
                                   server_settings={"application_name": "newswatch pid 4242"})
    # a newswatch on another database of the same server holds the same advisory lock there:
    # not named (the message named every database's holders, so the wrong one was stopped)
    other_db = f"nw_other_{os.getpid()}"
    admin(pg_url, f'CREATE DATABASE "{other_db}"')
    elsewhere = await asyncpg.connect(database_url(pg_url, other_db),
                                      server_settings={"application_name": "newswatch pid 1111"})
    try:
        await elsewhere.execute("SELECT pg_advisory_lock($1, 1)", int.from_bytes(b"nwsw", "big"))
        await holder.execute("SELECT pg_advisory_lock($1, 1)", int.from_bytes(b"nwsw", "big"))
        with pytest.raises(StoreError) as caught:
            await PostgresStore.open(pg_database)
        assert str(caught.value) == (
            f"another newswatch process (pid 4242) is using {describe(pg_database)}; stop it "
            "first (read-only commands such as search and check do not need to)")
    finally:
        await holder.close()
        await elsewhere.close()
        admin(pg_url, f'DROP DATABASE IF EXISTS "{other_db}" WITH (FORCE)')


async def test_a_server_that_is_not_there_is_one_clear_line() -> None:
    url = "postgresql://nobody@/nw?host=/nonexistent-socket-dir&port=1"
    with pytest.raises(StoreError) as caught:
        await PostgresStore.open(url)
    message = str(caught.value)
    assert message.startswith("cannot open the database postgresql:///nonexistent-socket-dir:1/nw")
    assert "\n" not in message


async def test_a_server_that_never_answers_is_named_as_such(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that takes the connection and says nothing: "cannot open the database …:
    TimeoutError" after 30 s, naming no cause. The password stays out of it."""
    import watchers.store.postgres._db as pg_db

    held: list[asyncio.StreamWriter] = []
    done: list[asyncio.Event] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        ended = asyncio.Event()
        done.append(ended)
        try:
            await reader.read()  # until the client gives up
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            ended.set()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setattr(pg_db, "CONNECT_TIMEOUT", 0.5)
    try:
        with pytest.raises(StoreError) as caught:
            await PostgresStore.open(f"postgresql://u:Secret@127.0.0.1:{port}/db?sslmode=disable")
    finally:
        server.close()
        for writer in held:  # each connection the server took, closed before the loop ends
            writer.close()
        async with asyncio.timeout(10):
            for ended in done:
                await ended.wait()
        await server.wait_closed()
    assert str(caught.value) == (f"cannot open the database postgresql://127.0.0.1:{port}/db: "
                                 "no answer from the server within 0.5 s")


async def test_writers_in_two_pools_store_each_article_once(pg_database: str) -> None:
    await (await PostgresStore.open(pg_database)).aclose()
    batch = [art(f"Story {i}", guid=f"g{i}") for i in range(40)]
    records = [ArticleRecord(a, [match(a)], [alert()], index_terms(a.title, a.text))
               for a in batch]
    first = await PostgresStore.open(pg_database, lock=False)
    second = await PostgresStore.open(pg_database, lock=False)
    try:
        one, two = await asyncio.gather(first.record_many(records),
                                        second.record_many(list(reversed(records))))
        stored = [a for a in [*one, *two] if a is not None]
        assert sorted(a.id for a in stored) == sorted(a.id for a in batch)
        assert await first.count_articles() == 40
        assert len(await first.alerts(limit=1000)) == 40
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_changed_items_stored_version_is_found_through_the_link_and_guid_indexes(
        pg_database: str) -> None:
    """The stored article a changed item changes is the first by rowid of its link's (or its
    guid's) rows that qualify. With a live page's link holding much of the table, ordered by
    the primary key and limited to one row, the planner walked the whole table down that key
    from the oldest article looking for the first that qualified."""
    from watchers.store.postgres.articles import _duplicate_of

    await (await PostgresStore.open(pg_database)).aclose()
    cols = "id, source, guid, url, link_key, title, text, fetched_at, sort_at, content_hash"
    live = "https://ex.org/live"
    key = article_identity(Article(url=live, title="", text=""))[0]
    await sql(pg_database,
              f"INSERT INTO articles ({cols}) SELECT 'o' || i, 'wire', 'o' || i, 'u', "
              "'https://ex.org/' || i, 'Other ' || i, 'x', now(), now(), 'oh' || i "
              "FROM generate_series(1, 30000) AS i")
    await sql(pg_database,
              f"INSERT INTO articles ({cols}) SELECT 'l' || i, 'desk', 'l' || i, '{live}', "
              f"'{key}', 'Update ' || i, 'x', now(), now(), 'lh' || i "
              "FROM generate_series(1, 20000) AS i")
    conn = await asyncpg.connect(pg_database)
    try:
        await conn.execute("VACUUM ANALYZE articles")
        asked: list[tuple[str, tuple[object, ...]]] = []

        class Traced:
            async def fetchval(self, statement: str, *args: object) -> object:
                asked.append((statement, args))
                return await conn.fetchval(statement, *args)

        for article, found in [
                (Article(source="desk", guid="l7", url=live, title="Update 7", text="new"), "l7"),
                (Article(source="desk", guid="new", url=live, title="Fresh", text="y"), None),
                (Article(source="@f1", guid="p", url=live, title="Fresh", text="y"), "l1"),
                (Article(source="wire", guid="o9", title="Other 9", text="changed"), "o9")]:
            assert await _duplicate_of(Traced(), article) == found
        plans = {statement: "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + statement,
                                                                       *args))
                 for statement, args in asked if "ORDER BY" in statement}
        assert len(plans) == 3, asked  # the link's rows, a followed feed's, the guid's
        for statement, plan in plans.items():
            assert "articles_pkey" not in plan and "Seq Scan" not in plan, (statement, plan)
    finally:
        await conn.close()


async def test_claimers_in_two_pools_never_claim_a_row_twice(pg_database: str) -> None:
    async with await PostgresStore.open(pg_database) as store:
        await store.record_many([
            ArticleRecord(a, [match(a)], [alert()], index_terms(a.title, a.text))
            for a in (art(f"Story {i}") for i in range(30))])
    stores = [await PostgresStore.open(pg_database, lock=False) for _ in range(3)]
    try:
        claimed: list[int] = []
        now = datetime.now(UTC)

        async def drain(s: PostgresStore) -> None:
            while rows := await s.claim_route("alerts", now=now, limit=4):
                claimed.extend(r.id for r in rows)
                for r in rows:
                    await s.mark_delivered(r.id, f"m{r.id}")

        await asyncio.wait_for(asyncio.gather(*(drain(s) for s in stores)), 60)
        assert len(claimed) == 30 and len(set(claimed)) == 30
        assert await stores[0].alert_counts() == {"delivered": 30}
    finally:
        for s in stores:
            await s.aclose()


HOLDER = """
import asyncio, sys
from datetime import UTC, datetime
from watchers.store.postgres import PostgresStore

async def main() -> None:
    store = await PostgresStore.open(sys.argv[1])
    rows = await store.claim_route("alerts", now=datetime.now(UTC), limit=3)
    print("claimed", len(rows), flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


async def test_a_killed_writer_leaves_no_lock_and_its_claims_come_back(pg_database: str) -> None:
    async with await PostgresStore.open(pg_database) as store:
        await store.record_many([
            ArticleRecord(a, [match(a)], [alert()], index_terms(a.title, a.text))
            for a in (art(f"Story {i}") for i in range(5))])
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, pg_database, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if line.strip() != b"claimed 3":
            err = await proc.stderr.read() if proc.stderr else b""
            pytest.fail(f"holder did not start: {line!r} {err.decode()[-500:]}")
        with pytest.raises(StoreError, match=f"another newswatch process .pid {proc.pid}."):
            await PostgresStore.open(pg_database)
        os.kill(proc.pid, signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    # the server ends a dead client's session, and its advisory lock with it
    for _ in range(100):
        try:
            store = await PostgresStore.open(pg_database)
            break
        except StoreError:
            await asyncio.sleep(0.1)
    else:
        pytest.fail("the killed writer's lock was never released")
    try:
        assert await store.alert_counts() == {"sending": 3, "pending": 2}
        assert await store.requeue_interrupted() == 3
        # claimed, never handed to a sink (the delivery marks a row before it calls one)
        assert await store.count_maybe_sent() == 0
        rows = await store.claim_route("alerts", now=datetime.now(UTC), limit=10)
        assert [r.attempts for r in rows] == [2, 2, 2, 1, 1]
    finally:
        await store.aclose()


def test_a_missing_postgresql_skips_with_how_to_enable_it_but_fails_under_ci(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tests import pg

    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="NEWSWATCH_TEST_PG_URL"):
        pg._missing("initdb and pg_ctl are not on PATH")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="under CI the PostgreSQL tests must run"):
        pg._missing("initdb and pg_ctl are not on PATH")


async def test_a_worker_reads_only_the_stories_written_since_its_last_look(
        pg_database: str) -> None:
    def rec(a: Article, story: str, outlet: str) -> ArticleRecord:
        return ArticleRecord(a, [match(a)], [alert()], index_terms(a.title, a.text),
                             StoryLink(story, f"sig of {story}", outlet, datetime.now(UTC)))

    async with await PostgresStore.open(pg_database) as store:
        none, clock = await store.stories_touched(None)
        assert none == []  # None: only the clock
        troops = art("Troops mass at the border")
        await store.record_many([rec(troops, "s1", "dw")])
        found, after_first = await store.stories_touched(clock)
        assert [s.id for s in found] == ["s1"]
        await store.record_many([rec(art("Talks in Geneva end"), "s2", "npr")])
        found, after_second = await store.stories_touched(after_first)
        assert [s.id for s in found] == ["s2"]  # s1 was not written again
        assert after_second > after_first
        # a story grown by another outlet is written again (the trigger, whoever writes)
        await store.add_outlet(troops.id, "bbc", datetime.now(UTC) + timedelta(seconds=1),
                               [])
        found, _ = await store.stories_touched(after_second)
        assert [(s.id, s.outlets) for s in found] == [("s1", ("dw", "bbc"))]
        # nothing written since: nothing read
        _, now = await store.stories_touched(None)
        assert (await store.stories_touched(now))[0] == []


async def test_resuming_a_leased_source_leaves_the_pollers_cursor_and_lease_alone(
        pg_database: str) -> None:
    async with await PostgresStore.open(pg_database, lock=False) as store:
        await store.register_sources({"wire": Registration()})
        now = datetime.now(UTC)
        (claimed,) = await store.claim_sources(owner="w1", until=now + timedelta(minutes=1),
                                               now=now, limit=1)
        # the bot resumes it while the worker polls …
        assert await store.resume_shared("wire")
        assert not await store.resume_shared("nobody")
        # … and the worker's poll then saves what it found: its lease was kept, so it may
        polled = SourceState(name="wire", cursor={"etag": '"v2"'}, polls=claimed.polls + 1,
                             failures=3, paused=True,
                             next_poll=now + timedelta(hours=1))
        assert await store.release_source(polled, owner="w1")
        assert await store.resume_shared("wire")  # a paused source, resumed in place
        (state,) = await store.all_source_states()
        assert (state.cursor, state.polls) == ({"etag": '"v2"'}, polled.polls)
        assert (state.paused, state.failures, state.next_poll) == (False, 0, None)


async def test_registering_brings_a_next_poll_forward_to_what_the_settings_allow_now(
        pg_database: str) -> None:
    now = datetime.now(UTC)
    hour, day = timedelta(hours=1), timedelta(days=1)
    stored = {
        "late": SourceState(name="late", polls=1, next_poll=now + day),
        "due": SourceState(name="due", polls=1, next_poll=now + timedelta(minutes=1)),
        "asked": SourceState(name="asked", polls=1, failures=1, next_poll=now + 2 * hour),
        "backoff": SourceState(name="backoff", polls=9, failures=9, next_poll=now + 9 * day),
        "paused": SourceState(name="paused", polls=9, failures=9, paused=True,
                              next_poll=now + day),
        "moved": SourceState(name="moved", polls=1, cursor={"/polled": "feed old"},
                             failures=2, next_poll=now + hour),
        "same": SourceState(name="same", polls=1, cursor={"/polled": "feed same"},
                            next_poll=now + timedelta(minutes=1)),
    }
    bounds = Registration(first=now, latest=now + timedelta(minutes=5),
                          latest_failing=now + 3 * hour, latest_paused=now + hour)
    async with await PostgresStore.open(pg_database, lock=False) as store:
        await store.save_source_states(list(stored.values()))
        registered = {name: replace(bounds, polled="feed new" if name == "moved" else
                                    "feed same" if name == "same" else None)
                      for name in [*stored, "new"]}
        await store.register_sources(registered)
        states = {s.name: s for s in await store.all_source_states()}
        assert {n: s.next_poll for n, s in states.items()} == {
            "late": bounds.latest,  # an interval shortened since: not the old day
            "due": stored["due"].next_poll,
            "asked": stored["asked"].next_poll,  # a publisher's Retry-After, within bounds
            "backoff": bounds.latest_failing,
            "paused": bounds.latest_paused,
            "moved": now,  # its old address's backoff is not the new one's
            "same": stored["same"].next_poll,
            "new": now,
        }
        # the rest of each state is the poller's, as it was
        assert states["moved"].cursor == {"/polled": "feed old"}
        assert (states["paused"].paused, states["paused"].failures) == (True, 9)
        versions = await store._db.fetch("SELECT name, xmin::text FROM source_state")
        await store.register_sources(registered)  # again: nothing to write
        assert await store._db.fetch("SELECT name, xmin::text FROM source_state") == versions


async def test_workers_registering_claiming_and_renewing_at_once_never_deadlock(
        pg_database: str) -> None:
    names = [f"f{i}" for i in range(300)]
    stores = [await PostgresStore.open(pg_database, lock=False) for _ in range(3)]

    async def worker(store: PostgresStore, owner: str, seed: int) -> None:
        rnd = random.Random(seed)
        for _ in range(12):
            # every statement that locks many rows is handed them in its own random order
            # (with next polls later than the settings allow: rows to bring forward)
            now = datetime.now(UTC)
            await store.register_sources(dict.fromkeys(
                rnd.sample(names, len(names)), Registration(latest=now + timedelta(
                    seconds=rnd.random()))))
            # leases that have already run out: the other workers claim the same sources
            held = await store.claim_sources(owner=owner, until=now, now=now + timedelta(
                seconds=1), limit=120)
            mine = rnd.sample([s.name for s in held], len(held))
            await asyncio.gather(
                store.renew_leases(mine, owner=owner, until=now),
                store.save_source_states([replace(s, next_poll=now + timedelta(hours=1))
                                          for s in rnd.sample(held, len(held))]),
                *(store.release_source(s, owner=owner) for s in held[:20]))
            await store.release_leases(owner)

    try:
        await asyncio.wait_for(asyncio.gather(
            *(worker(s, f"w{i}", i) for i, s in enumerate(stores))), timeout=50)
        assert len(await stores[0].all_source_states()) == len(names)
    finally:
        for s in stores:
            await s.aclose()


async def _lock_backends(conn: asyncpg.Connection) -> list[int]:
    return [r[0] for r in await conn.fetch(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid::int8 = $1 "
        "AND objid::int8 = 1 AND granted AND database = (SELECT oid FROM pg_database "
        "WHERE datname = current_database())", int.from_bytes(b"nwsw", "big"))]


async def _take_the_lock(conn: asyncpg.Connection) -> None:
    """End the store's lock sessions until ``conn`` holds the writer lock itself, exclusively
    (the store, retaking at once, sometimes wins: its new session is ended again; a blocking
    pg_advisory_lock here waited for ever when the store won)."""
    key = int.from_bytes(b"nwsw", "big")
    for _ in range(100):
        for pid in await _lock_backends(conn):
            await conn.execute("SELECT pg_terminate_backend($1)", pid)
        if await conn.fetchval("SELECT pg_try_advisory_lock($1, 1)", key):
            return
        await asyncio.sleep(0.02)
    pytest.fail("the test's session never got the lock")


async def test_a_lost_writer_lock_is_taken_again_or_writing_stops(pg_database: str) -> None:
    """The session holding the writer lock ended (a DBA's pg_terminate_backend, an idle
    timeout): the process did not notice, a second writer started beside it, and alerts went
    out twice. It now takes the lock back, or, when another process got it first, stops."""
    admin = await asyncpg.connect(pg_database)
    told: list[BaseException] = []
    try:
        async with await PostgresStore.open(pg_database) as store:
            store.on_writer_lost(told.append)
            (first,) = await _lock_backends(admin)
            await admin.execute("SELECT pg_terminate_backend($1)", first)
            for _ in range(200):  # taken again on a new session
                held = await _lock_backends(admin)
                if held and held != [first]:
                    break
                await asyncio.sleep(0.05)
            assert len(held) == 1 and held != [first]
            await store.add_notice("ops", "still the writer")
            with pytest.raises(StoreError, match="already open for writing in this process"):
                await PostgresStore.open(pg_database)  # held again, by this process
            # lost again, and this time another session takes it first
            await _take_the_lock(admin)
            for _ in range(200):
                try:
                    await store.add_notice("ops", "written while the lock is away?")
                except StoreUnavailableError as exc:
                    # while the lock is being taken back, nothing is written either
                    assert "being taken again" in str(exc)
                except StoreError as exc:
                    assert "writer lock" in str(exc) and "stopping" in str(exc)
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the store kept writing without its writer lock")
            # and told, once, whether or not anything writes (a bot-role process never did,
            # and was never stopped)
            assert len(told) == 1 and "could not be taken again" in str(told[0]), told
    finally:
        await admin.close()


async def test_a_bot_process_whose_writer_lock_is_taken_stops(pg_database: str,
                                                                tmp_path: Path) -> None:
    """A --role bot process writes nothing by itself: its lock lost to another process, it
    said "stopping" and ran on, answering every change with the error, for good, while a
    process that runs alone could start beside it. Its engine now fails, as the others'."""
    from watchers.config import parse_config
    from watchers.engine import open_engine

    cfg = parse_config({"storage": {"url": pg_database},
                        "rules": [{"name": "troops", "query": "troops"}]}, base_dir=tmp_path)
    admin_conn = await asyncpg.connect(pg_database)
    try:
        async with open_engine(cfg, role="bot") as engine:
            failed = asyncio.ensure_future(engine.failed())
            await _take_the_lock(admin_conn)  # as a process running alone holds it
            with pytest.raises(StoreError, match="could not be taken again"):
                await asyncio.wait_for(failed, 30)
    finally:
        await admin_conn.close()


async def test_a_close_cancelled_part_way_still_closes_every_connection(
        pg_database: str) -> None:
    """Closing cut short (a timeout around the store's block, Ctrl-C) left the pool and the
    writer lock's session open, and closing again did nothing: a server connection each."""
    name = pg_database.rsplit("/", 1)[1].split("?")[0]
    for steps in range(5):
        store = await PostgresStore.open(pg_database)
        await store.integrity_check()  # the pool has a connection
        task = asyncio.ensure_future(store.aclose())
        for _ in range(1 + steps):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.aclose()
    conn = await asyncpg.connect(database_url(pg_database, "postgres"))
    try:
        # A server process ends a moment after its client said goodbye (it was listed once in
        # a loaded full run): looked at until it has, for 5 s at most.
        for _ in range(100):
            left = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name)
            if left == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    assert left == 0



async def _blocked_by_a_lock(url: str, store: PostgresStore) -> BaseException:
    """What counting the articles raises while another session holds the articles table."""
    other = await asyncpg.connect(url)
    try:
        tx = other.transaction()
        await tx.start()
        await other.execute("LOCK TABLE articles IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(StoreError) as info:
            await store.count_articles()
        await tx.rollback()
    finally:
        await other.close()
    return info.value


async def test_a_statement_the_servers_timeout_cancels_is_worth_retrying(
        pg_database: str, pg_url: str) -> None:
    """A lock_timeout (or statement_timeout) set on the server ended a statement: it was a
    plain store error, and `run` stopped at the first one for good, though the same work
    passes once the lock is gone."""
    name = pg_database.rsplit("/", 1)[1].split("?")[0]
    admin(pg_url, f'ALTER DATABASE "{name}" SET lock_timeout = \'300ms\'')
    async with await PostgresStore.open(pg_database) as store:
        exc = await _blocked_by_a_lock(pg_database, store)
        assert isinstance(exc, StoreUnavailableError), exc
        assert "cancelled a statement (canceling statement due to lock timeout): a timeout " \
               "set on the server or its role" in str(exc)
        assert await store.count_articles() == 0  # the lock gone, the same work passes


async def test_a_statement_past_the_drivers_limit_says_what_may_hold_it(
        pg_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """It said "cannot be reached: TimeoutError" of a server that was there, a statement
    waiting on a lock (another process's long schema upgrade, say)."""
    from watchers.store.postgres import _db

    monkeypatch.setattr(_db, "COMMAND_TIMEOUT", 1)
    async with await PostgresStore.open(pg_database) as store:
        exc = await _blocked_by_a_lock(pg_database, store)
        assert isinstance(exc, StoreUnavailableError), exc
        assert str(exc).endswith(
            "did not answer within 1 s (a statement waiting on a lock another session holds, "
            "such as another process's schema upgrade, or the server overloaded or out of "
            "reach)"), exc
