"""A poll worker killed with SIGKILL in the middle of polls: after its leases expire the other
worker polls its sources, and no article is lost or alerted twice. Real ``newswatch run
--role poll`` subprocesses on a throwaway PostgreSQL cluster (tests/pg.py), feeds from a local
server in the test process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]

from tests.conftest import REPO
from tests.roles._support import TimedFeedServer, eventually, feed_route, toml
from watchers.store import PostgresStore

FEEDS = 6
SLOW = {3, 4, 5}  # these answer after a delay, so a worker is killed holding their leases


async def _start(cfg: Path, log: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--role", "poll", "--lease", "2s", "-c",
            str(cfg), cwd=REPO, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=out)


async def test_a_killed_workers_sources_are_taken_over_with_nothing_lost_or_doubled(
        tmp_path: Path, pg_database: str) -> None:
    async with TimedFeedServer() as server:
        paths = [f"/f{i}" for i in range(FEEDS)]
        for i, path in enumerate(paths):
            server.set(path, feed_route((f"{i}-0", f"story {i} first"),
                                        delay=1.5 if i in SLOW else 0))
        cfg = toml(tmp_path / "newswatch.toml", pg_database,
                   rules=[{"name": "all", "query": "story"}],
                   sources=[{"name": f"f{i}", "type": "feed", "url": server.url(p), "every": 1}
                            for i, p in enumerate(paths)])
        await (await PostgresStore.open(pg_database)).aclose()  # the schema, for our queries
        workers = [await _start(cfg, tmp_path / f"worker{n}.log") for n in range(2)]
        conn = await asyncpg.connect(pg_database)
        try:
            async def rows(sql: str) -> list[asyncpg.Record]:
                return list(await conn.fetch(sql))

            async def baseline() -> bool:
                if any(w.returncode is not None for w in workers):
                    logs = [(tmp_path / f"worker{n}.log").read_text()[-1500:] for n in (0, 1)]
                    raise AssertionError(f"a worker exited: {logs}")
                return len(await rows("SELECT name FROM source_state WHERE polls > 0")) == FEEDS

            await eventually(baseline, within=30, what="the first poll of every feed")
            # the victim: whichever worker is caught holding a slow feed's lease (which one
            # claims a feed first is up to the scheduler)
            pids = {w.pid: w for w in workers}
            caught: list[int] = []

            async def one_holds_slow() -> bool:
                for r in await rows("SELECT name, lease_owner FROM source_state "
                                    "WHERE lease_owner IS NOT NULL"):
                    pid = next((p for p in pids if f":{p}:" in r["lease_owner"]), None)
                    if pid is not None and int(r["name"][1:]) in SLOW:
                        caught.append(pid)
                        return True
                return False

            await eventually(one_holds_slow, within=30,
                             what="a worker holding a slow feed's lease")
            victim = pids[caught[0]]
            survivor = next(w for w in workers if w is not victim)
            tag = f":{victim.pid}:"
            held = {r["name"] for r in await rows(
                f"SELECT name FROM source_state WHERE lease_owner LIKE '%{tag}%'")}
            before = {r["name"]: r["polls"] for r in await rows(
                "SELECT name, polls FROM source_state")}
            victim.send_signal(signal.SIGKILL)
            await asyncio.wait_for(victim.wait(), 30)
            # one new article on every feed after the kill
            for i, path in enumerate(paths):
                server.set(path, feed_route((f"{i}-0", f"story {i} first"),
                                            (f"{i}-1", f"story {i} second"),
                                            delay=1.5 if i in SLOW else 0))

            async def all_stored() -> bool:
                assert survivor.returncode is None, "the survivor exited"
                found = await rows("SELECT guid FROM articles WHERE guid LIKE '%-1'")
                # A poll's articles are committed before its source's state is saved (and its
                # lease released): wait for both, so the state read below is the poll's.
                polled = {r["name"] for r in await rows("SELECT name, polls FROM source_state")
                          if r["polls"] > before.get(r["name"], 0)}
                return len(found) == FEEDS and held <= polled

            await eventually(all_stored, within=30,
                             what="every new article stored and the victim's feeds polled again")
            after = {r["name"]: (r["polls"], r["lease_owner"]) for r in await rows(
                "SELECT name, polls, lease_owner FROM source_state")}
            alerts = await rows("SELECT a.guid, count(*) AS n FROM outbox o JOIN articles a "
                                "ON a.id = o.article_id WHERE o.kind = 'alert' GROUP BY a.guid")
        finally:
            await conn.close()
            for w in workers:
                if w.returncode is None:
                    w.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(w.wait(), 30)
                    except TimeoutError:
                        w.kill()
                        await w.wait()
    assert held, "the victim held no lease when killed"
    for name in held:  # polled again (by the survivor: the victim is dead) and released
        polls, owner = after[name]
        assert polls > before[name], name
        assert owner is None or tag not in owner, name
    # each new article alerted exactly once; the baseline articles not at all
    # (a guid is kept as the feed's URL resolves it)
    assert sorted((r["guid"].rsplit("/", 1)[-1], r["n"]) for r in alerts) == [
        (f"{i}-1", 1) for i in range(FEEDS)]
    assert survivor.returncode == 0
