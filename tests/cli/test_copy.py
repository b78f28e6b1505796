"""``newswatch copy`` and ``newswatch migrate``: a store run by the engine moves from SQLite to
PostgreSQL and back with every row, keeps answering lookups the same way and delivers a held
alert once with its nonce; refusals name what was wrong and write nothing. Real SQLite files and
a throwaway PostgreSQL (tests/pg.py); the real ``newswatch`` entry point, in process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from bot import cli, store_cli
from tests.conftest import SEEDS
from tests.fakes.sinks import RecordingSink
from tests.store._support import legacy_v3
from watchers.config import Config, parse_config
from watchers.engine import open_engine
from watchers.errors import PermanentDeliveryError, StoreError
from watchers.rules.lookup import lookup_terms
from watchers.rules.text import KEYS_VERSION
from watchers.store import PostgresStore, SqliteStore
from watchers.store import copy as store_copy
from watchers.store.copy import TABLES, CopyProgress, copy_store
from watchers.store.postgres.schema import SCHEMA_VERSION as PG_VERSION
from watchers.store.sqlite.schema import SCHEMA_VERSION as LITE_VERSION

QUERIES = ("troops", "soldier*", "kyiv~", "russia AND NOT football", '"united nations"')
# Tables the seeds run below must fill, so that their copy is really exercised.
FILLED = {"articles", "matches", "outbox", "stories", "story_routes", "route_pauses",
          "source_state", "rules", "routes", "mutes"}


def config(base: Path, storage: dict[str, Any]) -> Config:
    return parse_config({
        "storage": storage,
        "sources": [{"name": "seeds", "type": "folder", "path": "seeds", "settle": 0}],
        "rules": [{"name": "troops", "query": "troops OR soldiers", "channel": "alerts"},
                  {"name": "kyiv", "query": "kyiv~ OR russia", "channel": "ops"}],
    }, base_dir=base)


async def answers(cfg: Config) -> dict[str, list[str]]:
    async with open_engine(cfg, start=False, default_sink=RecordingSink()) as engine:
        return {q: [h.article.id for h in (await engine.search(q, limit=50)).hits]
                for q in QUERIES}


async def run_seeds(cfg: Config) -> list[tuple[int, str]]:
    """The seeds through the engine: alerts delivered on one route and held on another (its
    destination refused access), a mute, a stored rule and a server's route. Returns the held
    alerts' (id, nonce)."""
    ops = RecordingSink([PermanentDeliveryError("403 Missing Access", pause_destination=True)])
    async with open_engine(cfg, start=False, sinks={"alerts": RecordingSink(), "ops": ops}
                           ) as engine:
        await engine.run_once()
        assert engine.paused_routes().keys() == {"ops"}
        await engine.mute("troops", timedelta(hours=6))
        await engine.add_rule({"name": "floods", "query": "flood*", "channel": "alerts"})
        await engine.add_server_route(7, 4242, "desk")
        rows = await engine.store.alerts()
    held = [(r.id, r.nonce) for r in rows if r.route == "ops" and r.state == "held"]
    assert held and any(r.state == "delivered" for r in rows)
    return held


def counts_printed(out: str) -> dict[str, tuple[int, int]]:
    found = {}
    for line in out.splitlines():
        m = re.fullmatch(r"(\w+)\s+([\d,]+)\s+([\d,]+)(\s+MISMATCH)?", line)
        if m:
            found[m[1]] = (int(m[2].replace(",", "")), int(m[3].replace(",", "")))
    return found


def table_counts(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(path)) as con:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def test_a_store_moves_to_postgresql_and_back_and_works_the_same(
        tmp_path: Path, pg_database: str, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    lite = config(tmp_path, {"path": "nw.db"})
    held = asyncio.run(run_seeds(lite))
    before = asyncio.run(answers(lite))
    assert before["troops"] and before["kyiv~"]
    counts = table_counts(tmp_path / "nw.db")
    assert {t for t, n in counts.items() if n} >= FILLED

    assert cli.main(["copy", "--from", str(tmp_path / "nw.db"), "--to", pg_database]) == 0
    out, err = capsys.readouterr()
    assert counts_printed(out) == {t: (n, n) for t, n in counts.items()}
    assert "every table's count agrees" in err and "postgres@" not in err  # no credentials

    # the copy's lookup indexes hold the engine's words, and say so: its first writer does
    # not rebuild them (it did, about six minutes a million articles, after every copy)
    async def pg_keys() -> tuple[int, int | None]:
        conn = await asyncpg.connect(pg_database)
        try:
            row = await conn.fetchrow("SELECT version, building FROM index_keys")
            return int(row[0]), row[1]
        finally:
            await conn.close()

    assert asyncio.run(pg_keys()) == (KEYS_VERSION, None)
    pg = config(tmp_path, {"url": pg_database})
    assert asyncio.run(answers(pg)) == before

    async def deliver_held() -> None:
        alerts, ops = RecordingSink(), RecordingSink()
        async with open_engine(pg, start=False, sinks={"alerts": alerts, "ops": ops}
                               ) as engine:
            assert (await engine.delivery_status()).paused.keys() == {"ops"}  # loads pauses
            # the stored rule and the mute came along
            assert {v.rule.name: v.muted_until is not None for v in await engine.rules()} == {
                "troops": True, "kyiv": False, "floods": False}
            assert [r.channel_id for r in engine.server_routes(7).values()] == [4242]
            assert await engine.resume_route("ops") == len(held)
            await engine.run_once()  # nothing new, nothing twice
            assert sorted((a.id, a.nonce) for a in ops.alerts) == sorted(held)
            assert alerts.alerts == []
            # a new article and alert take keys past the copied ones (identities moved on)
            (tmp_path / "seeds" / "new.txt").write_text(
                "Russia recalls its envoy\n\nRussia recalled its envoy on Monday.")
            await engine.run_once()
            assert len(ops.alerts) == len(held) + 1
            assert ops.alerts[-1].id > max(i for i, _ in held)

    asyncio.run(deliver_held())
    after = asyncio.run(answers(pg))
    assert len(after["russia AND NOT football"]) == len(before["russia AND NOT football"]) + 1

    # a destination that already holds data is refused, and nothing is written into it
    assert cli.main(["copy", "--from", str(tmp_path / "nw.db"), "--to", pg_database]) == 1
    err = capsys.readouterr().err
    assert "already holds data (in articles" in err and "nothing was written" in err

    # back to SQLite: the same counts (the new rows included) and the same answers
    back = tmp_path / "back.db"
    assert cli.main(["copy", "--from", pg_database, "--to", str(back)]) == 0
    printed = counts_printed(capsys.readouterr().out)
    assert all(src == dst for src, dst in printed.values()) and printed.keys() == set(TABLES)
    assert table_counts(back) == {t: n for t, (n, _) in printed.items()}
    assert printed["articles"][0] == counts["articles"] + 1
    with closing(sqlite3.connect(back)) as conn:
        assert conn.execute("SELECT version, building FROM index_keys").fetchone() == (
            KEYS_VERSION, None)
        # and its places index holds every article: lookups read it, and nothing rebuilds
        assert conn.execute("SELECT count(*) FROM article_places_incomplete").fetchone() == (0,)
        (placed,) = conn.execute("SELECT count(*) FROM article_places WHERE article_places "
                                 "MATCH '{title text} : \"troop\"'").fetchone()
        assert placed == len(after["troops"])
    assert asyncio.run(answers(config(tmp_path, {"path": "back.db"}))) == after


async def test_an_interrupted_copy_is_marked_incomplete_and_refused(tmp_path: Path) -> None:
    src, dst = tmp_path / "a.db", tmp_path / "b.db"
    shutil.copytree(SEEDS, tmp_path / "seeds")
    await run_seeds(config(tmp_path, {"path": "a.db"}))

    def fail(p: CopyProgress) -> None:
        if p.rows >= 3:
            raise RuntimeError("the disk is full")

    with pytest.raises(RuntimeError, match="the disk is full"):
        await copy_store(str(src), str(dst), terms_of=lookup_terms, batch=1, on_progress=fail)
    with closing(sqlite3.connect(dst)) as con:
        assert con.execute("SELECT count(*) FROM articles").fetchone()[0] == 3
    with pytest.raises(StoreError, match=re.escape(
            "holds an incomplete copy (`newswatch copy` did not finish, or is still under way): "
            "once no copy runs, delete it and copy again")):
        await SqliteStore.open(dst)
    with pytest.raises(StoreError, match=rf"{re.escape(str(dst))} holds an incomplete copy.*"
                                         rf"to start over, delete {re.escape(str(dst))}"):
        await copy_store(str(src), str(dst), terms_of=lookup_terms)
    with pytest.raises(StoreError, match="holds an incomplete copy"):
        await copy_store(str(dst), str(tmp_path / "c.db"), terms_of=lookup_terms)
    os.remove(dst)
    summary = await copy_store(str(src), str(dst), terms_of=lookup_terms, batch=2)
    assert summary.mismatched == [] and summary.rows == sum(table_counts(src).values())
    async with await SqliteStore.open(dst) as copied:  # whole now: it opens
        assert await copied.count_articles() == len(list(SEEDS.iterdir()))


async def test_a_copy_under_way_is_not_taken_for_a_failed_one(tmp_path: Path) -> None:
    """A second copy into the file, or a migrate of it, while a copy was writing it read its
    "incomplete" mark without the writer lock and said to delete it — the file another process
    was writing. The writer is named instead."""
    from concurrent.futures import ThreadPoolExecutor

    src, dst = tmp_path / "a.db", tmp_path / "b.db"
    shutil.copytree(SEEDS, tmp_path / "seeds")
    await run_seeds(config(tmp_path, {"path": "a.db"}))
    other_src = tmp_path / "a2.db"
    shutil.copy(src, other_src)  # (the copy under way holds its own source too)
    said: list[str] = []

    def meanwhile(p: CopyProgress) -> None:
        if p.rows < 3 or said:
            return
        for attempt in (store_copy.migrate,
                        partial(copy_store, str(other_src), terms_of=lookup_terms)):
            with ThreadPoolExecutor(1) as other:  # its own event loop, as another process has
                try:
                    other.submit(asyncio.run, attempt(str(dst))).result()
                except StoreError as exc:
                    said.append(str(exc))

    await copy_store(str(src), str(dst), terms_of=lookup_terms, batch=1, on_progress=meanwhile)
    assert said == [f"{dst} is already open for writing in this process (pid {os.getpid()}); "
                    "close that store first"] * 2
    async with await SqliteStore.open(dst) as copied:  # the copy finished whole
        assert await copied.count_articles() == len(list(SEEDS.iterdir()))


def test_a_failed_copy_into_postgresql_is_marked_and_says_how_to_start_over(
        tmp_path: Path, pg_database: str, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    asyncio.run(run_seeds(config(tmp_path, {"path": "a.db"})))
    with closing(sqlite3.connect(tmp_path / "a.db")) as con, con:
        # SQLite keeps a NUL character in text; PostgreSQL refuses it
        con.execute("UPDATE articles SET text = text || char(0) WHERE rowid = 3")
    assert cli.main(["copy", "--from", str(tmp_path / "a.db"), "--to", pg_database]) == 1
    err = capsys.readouterr().err
    assert "copying articles (rows 1 to 5): " in err and "0x00" in err
    assert re.search(r"is left as an incomplete copy: to start over, drop the database "
                     r"postgresql://\S+ and create it again", err)

    async def refused() -> None:
        with pytest.raises(StoreError, match=re.escape(
                "holds an incomplete copy (`newswatch copy` did not finish, or is still under "
                "way): once no copy runs, drop the database, create it again and copy again")):
            await PostgresStore.open(pg_database)

    asyncio.run(refused())
    assert cli.main(["copy", "--from", str(tmp_path / "a.db"), "--to", pg_database]) == 1
    assert "holds an incomplete copy (an interrupted or failed `newswatch copy`); to start " \
           "over, drop the database" in capsys.readouterr().err


def test_a_count_mismatch_fails_and_leaves_the_copy_marked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    asyncio.run(run_seeds(config(tmp_path, {"path": "a.db"})))
    dst = tmp_path / "b.db"

    async def lossy_destination() -> None:
        # an empty newswatch database whose mutes vanish as they are written
        async with await SqliteStore.open(dst) as store:
            await store._db.conn.execute(
                "CREATE TRIGGER lose AFTER INSERT ON mutes BEGIN "
                "DELETE FROM mutes WHERE rule = NEW.rule; END")

    asyncio.run(lossy_destination())
    monkeypatch.setattr(store_cli, "PROGRESS_EVERY_S", 0.0)  # a line after every batch
    assert cli.main(["copy", "--from", str(tmp_path / "a.db"), "--to", str(dst)]) == 1
    out, err = capsys.readouterr()
    assert re.search(r"^mutes\s+1\s+0  MISMATCH$", out, re.MULTILINE)
    assert re.search(r"^articles\s+5\s+5$", out, re.MULTILINE)
    assert f"the row counts differ in mutes: {dst} is left marked as an incomplete copy" in err
    progress = [line for line in err.splitlines() if line.startswith("newswatch: copy ")]
    assert progress[-1].startswith("newswatch: copy 100%: departed_servers 0/0 · all ")
    assert "\r" not in err  # no bar drawn into a file
    with pytest.raises(StoreError, match="holds an incomplete copy"):
        asyncio.run(SqliteStore.open(dst))


def test_bad_sources_and_destinations_are_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "nw.db"

    async def make() -> None:
        await (await SqliteStore.open(src)).aclose()

    asyncio.run(make())
    missing = tmp_path / "missing.db"
    monkeypatch.delenv("NW_NOT_SET", raising=False)
    cases = [
        (["--from", str(missing), "--to", str(tmp_path / "x.db")],
         f"--from: there is no database at {missing}"),
        (["--from", str(src), "--to", "mysql://db.example/nw"],
         "--to: mysql:// is not a database newswatch can use"),
        (["--from", str(src), "--to", "postgresql://u:secret@localhost:port/nw"],
         "--to: postgresql://localhost:port/nw is not a valid PostgreSQL URL"),
        (["--from", "env:NW_NOT_SET", "--to", str(tmp_path / "x.db")],
         "--from: $NW_NOT_SET is not set"),
        (["--from", str(src), "--to", f"postgresql://u:secret@/nw?host={tmp_path}/no-such-dir"],
         f"cannot open the database postgresql://{tmp_path}/no-such-dir/nw"),
        (["--from", str(src), "--to", str(src)], "--from and --to name the same database"),
        # a hard link: another name for the same file (it read "already holds data")
        (["--from", str(src), "--to", str(tmp_path / "link.db")],
         "--from and --to name the same database"),
    ]
    os.link(src, tmp_path / "link.db")
    for args, expected in cases:
        assert cli.main(["copy", *args]) == 1, args
        err = capsys.readouterr().err
        assert expected in err, (args, err)
        assert "secret" not in err
    assert not (tmp_path / "x.db").exists()

    async def while_written() -> None:
        async with await SqliteStore.open(src):
            with pytest.raises(StoreError, match=f"cannot copy from {re.escape(str(src))} "
                                                 r"while another process holds it \(writing "
                                                 r"it, or copying from it\)"):
                await copy_store(str(src), str(tmp_path / "x.db"), terms_of=lookup_terms)

    asyncio.run(while_written())
    assert not (tmp_path / "x.db").exists()


def test_a_source_being_written_on_postgresql_is_refused(pg_database: str) -> None:
    async def go() -> None:
        async with await PostgresStore.open(pg_database):
            with pytest.raises(StoreError, match=r"while another process holds it \(writing "
                                                 r"it, or copying from it\): .*already open "
                                                 r"for writing in this process"):
                await copy_store(pg_database, "/nonexistent/x.db", terms_of=lookup_terms)

    async def worker() -> None:
        # a session as a poll or deliver worker holds one: no writer lock, its pid in its name
        conn = await asyncpg.connect(pg_database,
                                     server_settings={"application_name": "newswatch pid 4242"})
        try:
            with pytest.raises(StoreError, match=r"while it is being written: other newswatch "
                                                 r"processes are connected to it \(pid 4242\)"):
                await copy_store(pg_database, "/nonexistent/x.db", terms_of=lookup_terms)
        finally:
            await conn.close()

    asyncio.run(go())
    asyncio.run(worker())


RULE = '[[rules]]\nname = "troops"\nquery = "troops"\n'


def test_migrate_says_how_far_a_rebuild_of_the_lookup_indexes_got(tmp_path: Path) -> None:
    """A store whose lookup indexes hold older word keys is rebuilt by migrate (minutes for a
    million articles): it said nothing until the end, its progress was logged where no one
    saw it."""
    from tests.store.test_rekey import _old_store

    asyncio.run(_old_store(tmp_path / "old.db", n=30))
    (tmp_path / "c.toml").write_text(f'[storage]\npath = "old.db"\n{RULE}')
    done = subprocess.run([sys.executable, "-m", "bot", "migrate", "-c", "c.toml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "rebuilding the lookup indexes of 30 stored articles" in done.stderr, done.stderr
    assert "rebuilt the lookup indexes of 30 articles" in done.stderr, done.stderr
    assert "already at schema version" in done.stdout


@pytest.mark.timeout(180)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_migrate_stopped_during_a_rebuild_says_so_and_goes_on_after(tmp_path: Path,
                                                                    sig: int) -> None:
    """Ctrl-C or a kill during a rebuild of the lookup indexes ended migrate with exit 130 and
    not a word; the next migrate finishes what was left."""
    from tests.store.test_rekey import _old_store

    asyncio.run(_old_store(tmp_path / "old.db", n=20_000))
    (tmp_path / "c.toml").write_text(f'[storage]\npath = "old.db"\n{RULE}')
    p = subprocess.Popen([sys.executable, "-m", "bot", "migrate", "-c", "c.toml"],
                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stderr is not None
    said = []
    for line in p.stderr:
        said.append(line)
        if "rebuilding the lookup indexes" in line:
            p.send_signal(sig)
            break
    _, err = p.communicate(timeout=120)
    err = "".join(said) + err
    assert p.returncode == 130, (p.returncode, err)
    assert "Traceback" not in err
    assert (f"newswatch: interrupted: {tmp_path / 'old.db'} is left as far as it got; "
            "newswatch migrate (or the next command that writes to it) goes on from there"
            ) in err, err
    again = subprocess.run([sys.executable, "-m", "bot", "migrate", "-c", "c.toml"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    with closing(sqlite3.connect(tmp_path / "old.db")) as conn:
        assert conn.execute("SELECT version, building FROM index_keys").fetchone() == (
            KEYS_VERSION, None)


def test_migrate_reports_versions_on_both_backends(
        tmp_path: Path, pg_database: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    old = legacy_v3(tmp_path)
    cfg = tmp_path / "old.toml"
    cfg.write_text(f'[storage]\npath = "{old.name}"\n{RULE}')
    assert cli.main(["migrate", "-c", str(cfg)]) == 0
    assert capsys.readouterr().out == f"{old}: migrated from schema version 3 to {LITE_VERSION}\n"
    assert cli.main(["migrate", "-c", str(cfg)]) == 0
    assert capsys.readouterr().out == f"{old}: already at schema version {LITE_VERSION}\n"

    new = tmp_path / "new.toml"
    new.write_text(f'[storage]\npath = "fresh.db"\n{RULE}')
    assert cli.main(["migrate", "-c", str(new)]) == 0
    assert capsys.readouterr().out == (
        f"{tmp_path / 'fresh.db'}: created at schema version {LITE_VERSION}\n")

    with closing(sqlite3.connect(tmp_path / "fresh.db")) as con:
        con.execute("PRAGMA user_version=999")
    assert cli.main(["migrate", "-c", str(new)]) == 1
    assert (f"has schema version 999, newer than this newswatch ({LITE_VERSION})"
            in capsys.readouterr().err)

    monkeypatch.setenv("NW_COPY_TEST_DB", pg_database)
    pgc = tmp_path / "pg.toml"
    pgc.write_text(f'[storage]\nurl = "env:NW_COPY_TEST_DB"\n{RULE}')
    assert cli.main(["migrate", "-c", str(pgc)]) == 0
    first = capsys.readouterr().out
    assert re.fullmatch(rf"postgresql://\S+: created at schema version {PG_VERSION}\n", first)
    assert cli.main(["migrate", "-c", str(pgc)]) == 0
    assert capsys.readouterr().out.endswith(f": already at schema version {PG_VERSION}\n")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_store_another_migration_created_meanwhile_is_not_reported_created_twice(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Two `newswatch migrate` at once on a new store: both looked before either created it,
    # and both said "created". The second opens it once the first is done and finds it made.
    target = (str(tmp_path / "new.db") if backend == "sqlite"
              else request.getfixturevalue("pg_database"))
    opener = SqliteStore if backend == "sqlite" else PostgresStore
    real_probe = store_copy._probe
    probes = 0

    async def probe_then_another_creates_it(where: str) -> Any:
        nonlocal probes
        found = await real_probe(where)
        probes += 1
        if probes == 1:  # the other migration, between this one's look and its open
            await (await opener.open(where, terms_of=lookup_terms)).aclose()
        return found

    monkeypatch.setattr(store_copy, "_probe", probe_then_another_creates_it)
    done = asyncio.run(store_copy.migrate(target, terms_of=lookup_terms))
    version = LITE_VERSION if backend == "sqlite" else PG_VERSION
    assert (done.before, done.after) == (version, version)


def test_times_at_the_calendars_ends_go_to_postgresql_and_back_exactly(
        tmp_path: Path, pg_database: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A time at the calendar's ends (a mute until the last microsecond of 9999, as the
    library takes one; a first match at 0001-01-01): PostgreSQL keeps them as infinity and
    -infinity, which its driver reads back without a zone, and the copy back to SQLite took
    them for local time and stopped with a traceback (in a zone east of UTC: "year 10000
    is out of range")."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        line = {"id": "now", "title": "Troops at an ordinary time",
                "date": "2022-01-24T12:00:00Z"}
        (tmp_path / "in.jsonl").write_text(json.dumps(line) + "\n")
        (tmp_path / "config.toml").write_text(
            '[storage]\npath = "nw.db"\n[[rules]]\nname = "troops"\nquery = "troops"\n')
        assert cli.main(["import", str(tmp_path / "in.jsonl"),
                         "-c", str(tmp_path / "config.toml")]) == 0
        last = datetime.max.replace(tzinfo=UTC)
        with closing(sqlite3.connect(tmp_path / "nw.db")) as con:
            con.execute("UPDATE matches SET matched_at = '0001-01-01T00:00:00.000000Z'")
            con.commit()

        async def mute() -> None:
            async with await SqliteStore.open(tmp_path / "nw.db") as store:
                await store.mute("troops", last)

        asyncio.run(mute())

        def times(path: Path) -> list[tuple[str, ...]]:
            with closing(sqlite3.connect(path)) as con:
                return (con.execute("SELECT rule, until FROM mutes").fetchall()
                        + con.execute("SELECT rule, matched_at FROM matches").fetchall())

        before = times(tmp_path / "nw.db")
        assert before == [("troops", "9999-12-31T23:59:59.999999Z"),
                          ("troops", "0001-01-01T00:00:00.000000Z")]
        assert cli.main(["copy", "--from", str(tmp_path / "nw.db"), "--to", pg_database]) == 0
        back = tmp_path / "back.db"
        assert cli.main(["copy", "--from", pg_database, "--to", str(back)]) == 0, \
            capsys.readouterr().err
        assert times(back) == before
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
