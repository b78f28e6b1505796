"""A PostgreSQL server that goes away for a moment — restarted by its operator, or every session
ended by one — no longer stops the engine: polls and deliveries wait for it and go on, nothing is
lost and nothing is sent twice. An outage longer than the limit still stops the engine, with one
line. A cluster of the test's own (it is restarted and stopped); the real engine, folder source
and store; the sink is a fake of Discord that, like the Discord sink, looks for an alert that
may have been sent before sending it again."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import random
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]
import pytest

from tests.fakes.pg_proxy import PgProxy
from tests.fakes.sinks import RecordingSink
from tests.pg import ENV_URL, ClusterError, admin, database_url, local_cluster
from watchers.config import parse_config
from watchers.delivery import Alert
from watchers.engine import open_engine
from watchers.errors import StoreError, StoreUnavailableError
from watchers.outage import StoreOutage
from watchers.store.postgres._db import Pg


class LookingSink(RecordingSink):
    """Records alerts; one that may have been sent is looked for by its nonce first (Discord's
    sink looks for the message), so a resend after a lost answer shows once."""

    def __init__(self) -> None:
        super().__init__()
        self.looked = 0

    async def deliver(self, alert: Alert) -> str | None:
        if alert.maybe_sent:
            self.looked += 1
            for i, sent in enumerate(self.alerts):
                if sent.nonce == alert.nonce:
                    return f"m{i + 1}"
        return await super().deliver(alert)


@dataclass
class OwnCluster:
    url: str
    base: Path

    def pg_ctl(self, *args: str) -> None:
        cmd = [str(shutil.which("pg_ctl")), "-D", str(self.base / "data"), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        # -l: the server's output goes to a file (a pipe would be held open by it). A start
        # right after a stop on a loaded machine has failed now and then (rc 1, its words
        # thrown away): it is tried again, and what pg_ctl and the server said is kept for
        # the error.
        for attempt in range(3):
            done = subprocess.run([*cmd, "-l", str(self.base / "log")], timeout=60,
                                  capture_output=True, text=True, stdin=subprocess.DEVNULL)
            if done.returncode == 0:
                return
            if "start" not in args or attempt == 2:
                log = self.base / "log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise AssertionError(f"pg_ctl {' '.join(args)}: rc {done.returncode}\n"
                                     f"{done.stdout}{done.stderr}\nserver log:\n{tail}")
            time.sleep(2)


@pytest.fixture(scope="module")
def cluster() -> Iterator[OwnCluster]:
    """A cluster this module may restart and stop, with PostgreSQL's safe settings (a crash
    loses no committed transaction, unlike the test session's throwaway cluster)."""
    if os.environ.get(ENV_URL):
        pytest.skip(f"{ENV_URL} names a server these tests may not restart")
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("initdb and pg_ctl are not on PATH; under CI the PostgreSQL tests must "
                        "run", pytrace=False)
        pytest.skip("initdb and pg_ctl are not on PATH")
    base = Path(tempfile.mkdtemp(prefix="newswatch-outage-"))
    try:
        with local_cluster(base, settings="-c max_connections=100") as url:
            yield OwnCluster(url, base)
    except ClusterError as exc:
        pytest.fail(str(exc), pytrace=False)


def article_text(i: int) -> str:
    """A title line and a text about Ukraine, of made-up words unlike every other one's (so
    that no two are one story)."""
    r = random.Random(i)

    def words(k: int) -> str:
        return " ".join("".join(r.choice("bcdfghklmnprstvz") + r.choice("aeiou")
                                for _ in range(3)) for _ in range(k))

    return f"{words(6)} {i}\n\nUkraine {words(40)} {i}"


async def feed_through(url: str, tmp_path: Path, n: int,
                       disrupt: Callable[[int, str], Awaitable[None]],
                       outage: StoreOutage | None = None
                       ) -> tuple[LookingSink, BaseException | None, str]:
    """Run the engine on a new database of ``url`` while ``n`` articles arrive in a folder,
    calling ``disrupt(i, database_url)`` after each; wait until every one is alerted or the
    engine fails."""
    name = f"outage_{random.randrange(10**9)}"
    admin(url, f'CREATE DATABASE "{name}"')
    db = database_url(url, name)
    inbox = tmp_path / "in"
    inbox.mkdir(exist_ok=True)
    cfg = parse_config({
        "storage": {"url": db},
        "sources": [{"name": "drop", "type": "folder", "path": str(inbox), "settle": 0,
                     "every": "0.2s", "max_alerts_per_poll": 1000}],
        "rules": [{"name": "ukraine", "query": "ukraine"}],
    }, base_dir=tmp_path)
    sink = LookingSink()
    async with open_engine(cfg, default_sink=sink) as engine:
        if outage is not None:
            engine.watch.outage = engine.delivery.outage = outage
        failed = asyncio.ensure_future(engine.failed())
        for i in range(n):
            (inbox / f"a{i:03d}.txt").write_text(article_text(i))
            await asyncio.sleep(0.05)
            await disrupt(i, db)
        for _ in range(250):
            if failed.done() or len({a.article.id for a in sink.alerts}) >= n:
                break
            await asyncio.sleep(0.1)
        error = failed.exception() if failed.done() else None
        if not failed.done():
            failed.cancel()
    return sink, error, db


async def assert_all_alerted_once(db: str, sink: LookingSink, n: int) -> None:
    conn = await asyncpg.connect(db)
    try:
        stored = await conn.fetchval("SELECT count(*) FROM articles")
        states = dict(await conn.fetch("SELECT state, count(*) FROM outbox GROUP BY state"))
    finally:
        await conn.close()
    ids = [a.article.id for a in sink.alerts]
    assert len(set(ids)) == n, (f"{n - len(set(ids))} of {n} articles never alerted "
                                f"({stored} stored; outbox {states})")
    assert len(ids) == n, f"{len(ids) - n} alerts sent twice"
    assert stored == n and states == {"delivered": n}


async def end_every_session(url: str, db: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()", urlsplit(db).path.lstrip("/")))
    finally:
        await conn.close()


async def test_every_session_ended_by_an_operator_is_ridden_out(
        cluster: OwnCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Before, the first statement on a lost connection stopped the whole engine (or, worse,
    asyncpg's "another operation is in progress" failed the source as a broken feed)."""
    ended: list[int] = []

    async def disrupt(i: int, db: str) -> None:
        if i % 6 == 3:
            ended.append(await end_every_session(cluster.url, db))

    caplog.set_level(logging.WARNING)
    sink, error, db = await feed_through(cluster.url, tmp_path, 36, disrupt)
    assert error is None, f"the engine stopped: {error}"
    assert len(ended) == 6 and all(ended)  # the lock's, the pool's and the session's
    await assert_all_alerted_once(db, sink, 36)
    assert not any(r.exc_info or r.exc_text for r in caplog.records
                   if r.name.startswith("asyncpg"))
    assert not [r for r in caplog.records if r.name == "watchers.service"
                and "failed" in r.getMessage()], "a source was failed for the store's outage"


async def test_a_server_restart_is_ridden_out(
        cluster: OwnCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def disrupt(i: int, db: str) -> None:
        if i in (8, 20):
            await asyncio.to_thread(cluster.pg_ctl, "-m", "fast", "-w", "restart")
        elif i == 30:
            await asyncio.to_thread(cluster.pg_ctl, "-m", "immediate", "-w", "restart")

    caplog.set_level(logging.WARNING)
    sink, error, db = await feed_through(cluster.url, tmp_path, 40, disrupt)
    assert error is None, f"the engine stopped: {error}"
    await assert_all_alerted_once(db, sink, 40)
    said = [r.getMessage() for r in caplog.records]
    assert any("waiting for the store to come back" in m for m in said)
    assert any("the store is reachable again" in m for m in said)
    assert not any(r.exc_info or r.exc_text for r in caplog.records
                   if r.name.startswith("asyncpg"))


async def test_polls_that_reach_no_store_do_not_say_it_is_back(
        cluster: OwnCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An empty folder's poll (as a 304's) reaches only the source: taken for the store's
    answer, it logged "the store is reachable again" every few tenths of a second while the
    server was down, each time setting the outage's clock back (so its limit never came)."""
    name = f"outage_{random.randrange(10**9)}"
    admin(cluster.url, f'CREATE DATABASE "{name}"')
    inbox = tmp_path / "in"
    inbox.mkdir()
    cfg = parse_config({
        "storage": {"url": database_url(cluster.url, name)},
        "sources": [{"name": "drop", "type": "folder", "path": str(inbox), "settle": 0,
                     "every": "0.2s"}],
        "rules": [{"name": "ukraine", "query": "ukraine"}],
    }, base_dir=tmp_path)
    caplog.set_level(logging.WARNING)
    async with open_engine(cfg, default_sink=LookingSink()) as engine:
        failed = asyncio.ensure_future(engine.failed())
        await asyncio.sleep(0.5)
        opts = pg_opts(cluster)
        await asyncio.to_thread(cluster.pg_ctl, "-m", "fast", "-w", "stop")
        try:
            for _ in range(100):  # the outage is noticed (a state written behind, delivery)
                if "waiting for the store to come back" in caplog.text:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(3)  # about fifteen polls of the empty folder
            down = [r.getMessage() for r in caplog.records]
        finally:
            await asyncio.to_thread(cluster.pg_ctl, "-w", "start", "-o", opts)
        assert any("waiting for the store to come back" in m for m in down), down
        assert not any("reachable again" in m for m in down), down
        for _ in range(400):  # back: said once something reaches it
            if "reachable again" in caplog.text:
                break
            await asyncio.sleep(0.05)
        assert "reachable again" in caplog.text
        assert not failed.done()
        failed.cancel()


def pg_opts(cluster: OwnCluster) -> str:
    """The options the cluster was started with (its socket and port are options, not
    settings), to start it again as it was."""
    opts = shlex.split((cluster.base / "data" / "postmaster.opts").read_text())[1:]
    at = opts.index("-D")
    return shlex.join(opts[:at] + opts[at + 2:])


async def test_a_store_away_as_the_engine_starts_is_waited_for(
        cluster: OwnCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The server going away between opening the store and starting: delivery's first look
    (alerts left sending, paused destinations) and the first plan of the polls met it outside
    the outage's wait, and the engine stopped at once with the driver's "cannot be reached"
    instead of riding it out."""
    name = f"outage_{random.randrange(10**9)}"
    admin(cluster.url, f'CREATE DATABASE "{name}"')
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "a000.txt").write_text(article_text(0))
    cfg = parse_config({
        "storage": {"url": database_url(cluster.url, name)},
        "sources": [{"name": "drop", "type": "folder", "path": str(inbox), "settle": 0,
                     "every": "0.2s"}],
        "rules": [{"name": "ukraine", "query": "ukraine"}],
    }, base_dir=tmp_path)
    caplog.set_level(logging.WARNING)
    sink = LookingSink()
    opts = pg_opts(cluster)
    async with open_engine(cfg, default_sink=sink, start=False) as engine:
        failed = asyncio.ensure_future(engine.failed())
        await asyncio.to_thread(cluster.pg_ctl, "-m", "fast", "-w", "stop")
        try:
            await engine.start()
            for _ in range(100):
                if failed.done() or "waiting for the store to come back" in caplog.text:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            assert not failed.done(), f"the engine stopped: {failed.exception()}"
        finally:
            await asyncio.to_thread(cluster.pg_ctl, "-w", "start", "-o", opts)
        (inbox / "a001.txt").write_text(article_text(1))
        for _ in range(300):
            if failed.done() or len({a.article.id for a in sink.alerts}) >= 2:
                break
            await asyncio.sleep(0.1)
        assert not failed.done(), f"the engine stopped: {failed.exception()}"
        failed.cancel()
    assert len(sink.alerts) == 2, [a.article.id for a in sink.alerts]
    assert "reachable again" in caplog.text


async def backends(url: str, database: str) -> list[tuple[int, str]]:
    """(pid, application_name) of this process's sessions on ``database``."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT pid, application_name FROM pg_stat_activity WHERE datname = $1 "
            "AND application_name = $2", database, f"newswatch pid {os.getpid()}")
        return [(r[0], r[1]) for r in rows]
    finally:
        await conn.close()


async def terminate(url: str, pid: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


async def test_a_session_cut_again_while_reopening_is_reopened(cluster: OwnCluster) -> None:
    """The server going away again between reconnecting and the first statement (as when it
    restarts twice in a row) stopped the reconnection for good before: no NOTIFY was heard
    again, and closing the store raised the driver's error and left connections open."""
    name = f"cut_{random.randrange(10**9)}"
    admin(cluster.url, f'CREATE DATABASE "{name}"')
    async with PgProxy(cluster.url) as proxy:
        db = await Pg.connect(proxy.url(name), lock=False, readonly=False)
        heard: list[str] = []
        await db.listen("news", lambda _channel, payload: heard.append(payload))
        session = int((await db.session_id()).split("@")[0])
        proxy.cut_next(2)  # the reconnection and its first retry
        await terminate(cluster.url, session)
        for _ in range(150):
            if proxy.cut == 2 and "hello" in heard:
                break
            conn = await asyncpg.connect(database_url(cluster.url, name))
            await conn.execute("NOTIFY news, 'hello'")
            await conn.close()
            await asyncio.sleep(0.1)
        assert proxy.cut == 2, f"{proxy.cut} of 2 reconnections cut"
        assert "hello" in heard, "the session was never reopened"
        assert int((await db.session_id()).split("@")[0]) != session
        await db.close()
        assert await backends(cluster.url, name) == []


async def test_a_writer_lock_cut_again_while_retaken_is_retaken(cluster: OwnCluster) -> None:
    """The lock's session cut, and the new one cut before it could ask for the lock: before,
    the retake stopped for good and every write was refused as "being taken again" until the
    outage limit stopped the engine."""
    name = f"cut_{random.randrange(10**9)}"
    admin(cluster.url, f'CREATE DATABASE "{name}"')
    async with PgProxy(cluster.url) as proxy:
        db = await Pg.connect(proxy.url(name), lock=True, readonly=False)
        try:
            async with db.tx() as conn:
                await conn.execute("CREATE TABLE t (x int)")
            pool_pids = {r["pid"] for r in await db.fetch("SELECT pg_backend_pid() AS pid")}
            lock_pid = next(pid for pid, _ in await backends(cluster.url, name)
                            if pid not in pool_pids)
            proxy.cut_next(1)
            await terminate(cluster.url, lock_pid)
            holders: list[tuple[int, str]] = []
            for _ in range(150):
                await asyncio.sleep(0.1)
                with contextlib.suppress(StoreUnavailableError):  # while it is retaken
                    async with db.tx() as conn:
                        await conn.execute("INSERT INTO t VALUES (1)")
                    holders = await backends(cluster.url, name)
                    # the pool's connection and the lock's again
                    if proxy.cut == 1 and len(holders) == 2:
                        break
            assert proxy.cut == 1
            assert len(holders) == 2, f"the writer lock was not taken again: {holders}"
            with pytest.raises(StoreError, match="already open for writing in this process"):
                await Pg.connect(database_url(cluster.url, name), lock=True, readonly=False)
        finally:
            await db.close()
        assert await backends(cluster.url, name) == []


async def test_a_writer_lock_left_on_a_session_the_network_cut_off_is_taken_back(
        cluster: OwnCluster) -> None:
    """A cut no FIN crossed (a partition, a NAT dropping the flow): the server kept the lock's
    session, and the lock with it, for hours. The process took its own old session for another
    holder ("already open for writing in this process"), stopped, and every restart was
    refused until the server noticed. That session is this store's to end: it is ended, and
    the lock taken back."""
    name = f"part_{random.randrange(10**9)}"
    admin(cluster.url, f'CREATE DATABASE "{name}"')

    async def lock_holders() -> set[int]:
        conn = await asyncpg.connect(database_url(cluster.url, name))
        try:
            return {r[0] for r in await conn.fetch(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid::int8 = 1 "
                "AND objsubid = 2 AND granted AND database = (SELECT oid FROM pg_database "
                "WHERE datname = current_database())")}
        finally:
            await conn.close()

    async with PgProxy(cluster.url) as proxy:
        db = await Pg.connect(proxy.url(name), lock=True, readonly=False)
        try:
            async with db.tx() as conn:
                await conn.execute("CREATE TABLE t (x int)")
            (old,) = await lock_holders()
            proxy.part()
            written = False
            for _ in range(150):
                await asyncio.sleep(0.1)
                with contextlib.suppress(StoreUnavailableError):  # while it is retaken
                    async with db.tx() as conn:
                        await conn.execute("INSERT INTO t VALUES (1)")
                    written = True
                    break
            assert written, "the store never wrote again"
            holders = await lock_holders()
            assert len(holders) == 1 and old not in holders
            assert old not in {pid for pid, _ in await backends(cluster.url, name)}
        finally:
            await db.close()


def _task_stacks() -> str:
    """Where each task of the running loop waits (for a failure's message: the poll worker's
    test fails now and then, its third poll not coming, and the log alone does not say why)."""
    out = io.StringIO()
    for task in asyncio.all_tasks():
        task.print_stack(limit=6, file=out)
    return out.getvalue()


@pytest.mark.timeout(150)  # a server stopped and started, then a minute for the third poll
async def test_a_poll_worker_whose_store_goes_away_as_it_saves_a_poll_waits_for_it(
        cluster: OwnCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A poll worker (the several-process role) said "waiting for the store to come back (up
    to 120 s)" and stopped within a second: saving a finished poll's state (the release of
    its lease) met the outage outside the guard every other store call has. It waits now,
    and polls again once the server is back."""
    from watchers.sources.base import Poll

    name = f"outage_{random.randrange(10**9)}"
    admin(cluster.url, f'CREATE DATABASE "{name}"')
    opts = pg_opts(cluster)
    polls: list[int] = []

    class StopsTheServer:
        """A source whose second poll stops the database server as it ends."""

        name = "drop"

        async def poll(self, cursor: object) -> Poll:
            polls.append(1)
            if len(polls) == 2:
                await asyncio.to_thread(cluster.pg_ctl, "-m", "fast", "-w", "stop")
            return Poll([])

        async def aclose(self) -> None:
            pass

    (tmp_path / "empty").mkdir()
    # The source is the config file's, polled by the test's own poller: one the engine did not
    # know was removed (and retired) when it read the sources again as its session came back,
    # and the third poll never came (a race the test lost now and then).
    cfg = parse_config({"storage": {"url": database_url(cluster.url, name)},
                        "sources": [{"name": "drop", "type": "folder", "path": "empty",
                                     "every": "0.5s", "settle": "0s"}],
                        "rules": [{"name": "ukraine", "query": "ukraine"}]}, base_dir=tmp_path)
    caplog.set_level(logging.WARNING)
    restarted = False
    try:
        async with open_engine(cfg, role="poll", lease=timedelta(seconds=3),
                               default_sink=LookingSink()) as engine:
            failed = asyncio.ensure_future(engine.failed())
            (drop,) = [c for c in engine.watch.source_configs() if c.name == "drop"]
            await engine.watch.remove_source("drop")
            await engine.watch.add_source(drop, StopsTheServer())
            for _ in range(200):  # the second poll stops the server
                if len(polls) >= 2 and "waiting for the store" in caplog.text:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.5)
            assert not failed.done(), failed.exception()
            await asyncio.to_thread(cluster.pg_ctl, "-w", "start", "-o", opts)
            restarted = True
            loop = asyncio.get_running_loop()
            restarted_at = loop.time()
            # Polled again once the store answers: the lease lapses, the claim loop's retry
            # (up to 5 s apart) reconnects; a minute catches a hang, where 20 s was once too
            # short on a loaded machine.
            for _ in range(1200):
                if len(polls) >= 3:
                    break
                await asyncio.sleep(0.05)
            if len(polls) < 3:
                conn = await asyncpg.connect(database_url(cluster.url, name))
                try:
                    row = dict(await conn.fetchrow(
                        "SELECT active, next_poll, lease_owner, lease_until, polls, "
                        "clock_timestamp() AS db_now FROM source_state WHERE name = 'drop'") or {})
                finally:
                    await conn.close()
                raise AssertionError(
                    f"{len(polls)} polls {loop.time() - restarted_at:.0f} s after the restart; "
                    f"its state {row}, the engine's clock {engine.watch.clock.now()}; where its "
                    f"tasks wait:\n{_task_stacks()}")
            assert not failed.done()
            failed.cancel()
    finally:
        if not restarted:
            await asyncio.to_thread(cluster.pg_ctl, "-w", "start", "-o", opts)


async def test_an_outage_past_the_limit_stops_the_engine_with_one_line(
        cluster: OwnCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Run last in this module: the server stays down. The line is the failure's, said by
    whoever awaits it: the engine logged it too, and the services added "source states not
    saved: the store failed (above)" — three lines where one was promised."""
    async def disrupt(i: int, db: str) -> None:
        if i == 2:
            await asyncio.to_thread(cluster.pg_ctl, "-m", "fast", "-w", "stop")

    caplog.set_level(logging.INFO)
    _, error, _ = await feed_through(cluster.url, tmp_path, 4, disrupt,
                                     outage=StoreOutage(limit=1.5))
    assert isinstance(error, StoreError) and not isinstance(error, StoreUnavailableError)
    message = str(error)
    assert "cannot be reached" in message or "cannot open the database" in message
    assert "unreachable for" in message and "\n" not in message
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR
                or "not saved" in r.getMessage()]


def test_the_outage_backs_off_and_gives_up_after_its_limit(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    outage = StoreOutage(limit=10, most=2, clock=lambda: now[0])
    down = StoreUnavailableError("the database db cannot be reached: gone")
    caplog.set_level(logging.WARNING)
    delays = []
    for _ in range(6):
        delays.append(outage.wait(down))
        now[0] += 1
    assert delays == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    outage.over()  # back: a later outage starts its own count
    now[0] += 100
    assert outage.wait(down) == 0.25
    now[0] += 10
    with pytest.raises(StoreError, match=r"gone \(the store was unreachable for 10 s\)"):
        outage.wait(down)
    said = [r.getMessage() for r in caplog.records]
    assert sum("waiting for the store to come back" in m for m in said) == 2  # once each
    assert sum("reachable again after 6.0 s" in m for m in said) == 1

