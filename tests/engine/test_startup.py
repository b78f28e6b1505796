"""Start-up and shutdown as a user meets them: every failure exits non-zero with one clear line,
the store closed and nothing left running (the process ends by itself, well inside the timeout).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from tests.conftest import SEEDS
from watchers.config import RuleConfig, parse_config
from watchers.engine import open_engine
from watchers.store import SqliteStore

EXE = [sys.executable, "-m", "bot"]


def nw(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    return subprocess.run([*EXE, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def config(tmp_path: Path, *, storage: str = "nw.db", extra: str = "") -> Path:
    if not (tmp_path / "seeds").exists():
        shutil.copytree(SEEDS, tmp_path / "seeds")
    path = tmp_path / "config.toml"
    path.write_text(textwrap.dedent(f"""
        [storage]
        path = "{storage}"
        [[sources]]
        name = "seeds"
        type = "folder"
        path = "seeds"
        [[rules]]
        name = "troops"
        query = "troops OR soldiers"
        """) + textwrap.dedent(extra))
    return path


def error_lines(stderr: str) -> list[str]:
    """What the run said besides announcing where alerts go."""
    return [line for line in stderr.splitlines()
            if line.strip() and "alerts go to this terminal" not in line]


@pytest.mark.parametrize("storage, expected", [
    ("/proc/newswatch-nope/nw.db", "cannot create the folder /proc/newswatch-nope"),
    ("folder-db", "is a directory, not a newswatch database"),
    ("text.db", "is not a newswatch database"),
])
def test_an_unusable_database_exits_with_one_line(tmp_path: Path, storage: str,
                                                  expected: str) -> None:
    (tmp_path / "folder-db").mkdir()
    (tmp_path / "text.db").write_text("these are my notes, not a database\n" * 200)
    cfg = config(tmp_path, storage=storage)
    res = nw("run", "--once", "-c", str(cfg), cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    lines = error_lines(res.stderr)
    assert len(lines) == 1, lines
    assert expected in lines[0]
    assert "Traceback" not in res.stderr
    assert (tmp_path / "text.db").read_text().startswith("these are my notes")  # untouched


def test_a_refused_feed_url_in_the_config_is_a_config_error(tmp_path: Path) -> None:
    cfg = config(tmp_path, extra="""
        [[sources]]
        name = "inside"
        type = "feed"
        url = "http://127.0.0.1:9/feed.xml"
        """)
    res = nw("run", "--once", "-c", str(cfg), cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert "sources[1].url: refused URL" in res.stderr
    assert "loopback" in res.stderr
    assert not (tmp_path / "nw.db").exists()  # refused before anything was opened


def test_a_stored_rule_that_no_longer_compiles_is_reported_and_skipped(tmp_path: Path) -> None:
    cfg = config(tmp_path)

    async def plant() -> None:
        async with await SqliteStore.open(tmp_path / "nw.db") as store:
            # written by an older version whose parser accepted it
            await store.put_rule(RuleConfig.model_construct(
                name="legacy", query="(((troops", channel="alerts", severity="medium",
                mention_role=None, threshold=None, enabled=True, origin="store",
                created_by=None))

    asyncio.run(plant())
    res = nw("run", "--once", "-c", str(cfg), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "rule legacy skipped" in res.stderr
    assert res.stdout.count("▶ ") == 4  # the other rules still ran


def test_a_second_process_on_the_same_database_refuses(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    holder = subprocess.Popen([*EXE, "run", "-c", str(cfg)], cwd=tmp_path,
                              stderr=subprocess.PIPE, text=True,
                              env={k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"})
    try:
        assert holder.stderr is not None
        for line in holder.stderr:  # wait until it runs
            if "watching" in line:
                break
        res = nw("run", "--once", "-c", str(cfg), cwd=tmp_path)
        assert res.returncode == 1, res.stderr
        lines = error_lines(res.stderr)
        assert len(lines) == 1, lines
        assert f"pid {holder.pid}" in lines[0] and "another newswatch process" in lines[0]
        # a read-only command works beside it
        found = nw("search", "troops", "-c", str(cfg), cwd=tmp_path)
        assert found.returncode == 0, found.stderr
    finally:
        holder.terminate()
        holder.wait(timeout=30)
        if holder.stderr is not None:
            holder.stderr.close()
    assert holder.returncode == 0


async def test_open_engine_closes_everything_when_the_start_fails(tmp_path: Path) -> None:
    (tmp_path / "seeds").mkdir()
    cfg = parse_config({"storage": {"path": "nw.db"},
                        "sources": [{"name": "s", "type": "folder", "path": "seeds"}]},
                       base_dir=tmp_path)
    before = {t.name for t in threading.enumerate()}
    with pytest.raises(RuntimeError, match="boom"):
        async with open_engine(cfg) as engine:
            assert engine.source_names() == ["s"]
            raise RuntimeError("boom")
    for _ in range(100):  # a closed connection's worker thread ends right after the close
        after = {t.name for t in threading.enumerate()}
        if after <= before:
            break
        await asyncio.sleep(0.02)
    assert after <= before  # no store worker or pool thread left behind
    # and the lock was released: the database opens again at once
    async with open_engine(cfg, start=False) as engine:
        assert await engine.count_articles() == 0
