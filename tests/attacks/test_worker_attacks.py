"""Poll workers handled the wrong way: a lease too short to hold a source (from the command line
and from the library), a worker registering a thousand times more sources than a test would,
again and again, as it does every few minutes, and a stored story damaged by hand."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from bot.cli import main
from tests.roles._support import config
from watchers.config import parse_config
from watchers.engine import open_engine
from watchers.errors import ConfigError
from watchers.store import PostgresStore
from watchers.store.base import Registration


def test_a_lease_under_a_second_is_refused_on_the_command_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "newswatch.toml").write_text(
        '[storage]\nurl = "postgresql://nobody@127.0.0.1:9/none"\n'
        '[[rules]]\nname = "troops"\nquery = "troops"\n')
    for lease in ("0.5s", "999ms", "1ms"):
        with pytest.raises(SystemExit) as stopped:  # the usage error of argparse
            main(["run", "--role", "poll", "--lease", lease,
                  "-c", str(tmp_path / "newswatch.toml")])
        err = capsys.readouterr().err
        assert stopped.value.code == 2, err
        assert "--lease" in err and "at least 1s" in err and repr(lease) in err


async def test_a_lease_under_a_second_is_refused_by_the_library_before_the_store_opens(
        tmp_path: Path) -> None:
    cfg = config(tmp_path, "postgresql://nobody@127.0.0.1:9/none",
                 rules=[{"name": "t", "query": "t"}], sources=[])
    with pytest.raises(ConfigError, match=r"lease: .*at least 1s, not 0\.1s"):
        # nothing listens on port 9: had the store been opened first, this would be a
        # connection error instead
        async with open_engine(cfg, role="poll", lease=timedelta(milliseconds=100)):
            pass


async def test_registering_twenty_thousand_sources_again_writes_none_and_wakes_the_retired(
        pg_database: str) -> None:
    names = [f"feed-{i}" for i in range(20_000)]
    async with await PostgresStore.open(pg_database, lock=False) as store:
        await store.register_sources(dict.fromkeys(names, Registration()))
        await store.retire_source("feed-7")
        conn = await asyncpg.connect(pg_database)
        try:
            async def versions() -> dict[str, str]:
                rows = await conn.fetch("SELECT name, xmin::text FROM source_state")
                return {str(r[0]): str(r[1]) for r in rows}

            before = await versions()
            # any order; with a worker's bounds, which none of them is past
            now = datetime.now(UTC)
            bounds = Registration(latest=now + timedelta(minutes=5), polled="feed x",
                                  latest_failing=now + timedelta(days=1),
                                  latest_paused=now + timedelta(hours=1))
            await store.register_sources(dict.fromkeys(reversed(names), bounds))
            after = await versions()
        finally:
            await conn.close()
        # only the retired row was written again; the other 19,999 were read, not rewritten
        assert len(after) == 20_000
        assert {n for n in names if after[n] != before[n]} == {"feed-7"}
        now = datetime.now(UTC)
        claimed = await store.claim_sources(owner="w", until=now + timedelta(minutes=1),
                                            now=now, limit=20_000)
        assert len(claimed) == 20_000  # feed-7 is claimable again


async def test_a_damaged_stored_story_is_left_out_and_polls_go_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "in").mkdir()
    cfg = parse_config({
        "storage": {"path": "nw.db"},
        "sources": [{"name": "desk", "type": "folder", "path": "in", "settle": "0s"}],
        "rules": [{"name": "troops", "query": "troops"}],
    }, base_dir=tmp_path)
    (tmp_path / "in" / "a.txt").write_text("Troops mass at the border\n\nTroops moved.\n")
    async with open_engine(cfg, start=False) as engine:
        assert (await engine.watch.poll_source("desk")).new == 1
    with sqlite3.connect(tmp_path / "nw.db") as db:  # someone edits the database by hand
        assert db.execute("UPDATE stories SET signature = 'not json'").rowcount == 1
    (tmp_path / "in" / "b.txt").write_text("Grain ships leave Odesa\n\nTroops watch.\n")
    async with open_engine(cfg, start=False) as engine:
        report = await engine.watch.poll_source("desk")
        assert report.error is None and report.new == 1
        assert await engine.count_articles() == 2  # the damaged story's article is kept
    assert "left out of the live index" in caplog.text and "not a story signature" in caplog.text
