"""The command line used the wrong way: an import killed half-way and run again, a line a
thousand times longer than an article, a query a thousand times longer than a rule, limits out of
range. Each ends with a clear message, loses nothing and stops nothing else."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

from tests.cli.test_cli import EXE, nw

CONFIG = """
[storage]
path = "nw.db"
[[rules]]
name = "troops"
query = "troops"
"""


def article(i: int, text: str = "") -> str:
    return json.dumps({"id": f"a{i}", "title": f"Dispatch {i}",
                       "text": text or f"Troops and talks, dispatch number {i}.",
                       "url": f"https://ex.org/{i}", "date": "2022-01-05T10:00:00Z",
                       "source": "archive"})


def count(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT count(*) FROM articles").fetchone()[0])


def count_so_far(db: Path) -> int:
    """Articles in a store another process may still be creating (file there, tables not yet)."""
    try:
        return count(db) if db.exists() else 0
    except sqlite3.OperationalError:
        return 0


def test_an_import_killed_half_way_and_run_again_loses_nothing(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(CONFIG)
    n = 30_000
    (tmp_path / "history.jsonl").write_text("\n".join(article(i) for i in range(n)) + "\n")
    proc = subprocess.Popen([*EXE, "import", "history.jsonl"], cwd=tmp_path, text=True,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    db = tmp_path / "nw.db"
    try:
        for _ in range(600):  # until some batches are in, then kill -9 in the middle
            if count_so_far(db) >= 1000:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()
    first = count(db)
    assert 0 < first < n, first
    again = nw("import", "history.jsonl", cwd=tmp_path, timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"imported {n - first:,}" in again.stderr
    assert f"duplicates {first:,}" in again.stderr
    assert count(db) == n
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0  # never alerts


def test_a_line_a_thousand_times_an_article_is_imported_and_found(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(CONFIG)
    huge = "Troops near the border. " * 400_000  # ~10 MB in one line
    (tmp_path / "big.jsonl").write_text(article(1, huge) + "\n" + article(2) + "\n")
    res = nw("import", "big.jsonl", cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "imported 2" in res.stderr
    found = nw("search", "troops", "--json", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert {json.loads(line)["id"] for line in found.stdout.splitlines()} == {"a1", "a2"}


def test_a_query_a_thousand_times_a_rule_is_refused_in_one_short_message(tmp_path: Path
                                                                        ) -> None:
    (tmp_path / "config.toml").write_text(CONFIG)
    (tmp_path / "empty.jsonl").write_text("")
    assert nw("import", "empty.jsonl", cwd=tmp_path).returncode == 0
    query = "troops OR " * 2500 + "x"
    res = nw("search", query, cwd=tmp_path)
    assert res.returncode == 2
    assert "query longer than 20000 characters" in res.stderr
    assert len(res.stderr) < 1000  # the query is shown around the problem, not whole


def test_limits_out_of_range_are_refused(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(CONFIG)
    for bad in ("-5", "0", "1000000", "ten"):
        res = nw("search", "troops", "--limit", bad, cwd=tmp_path)
        assert res.returncode == 2, (bad, res.stderr)
        assert "--limit" in res.stderr and "1 to 1000" in res.stderr, res.stderr


def test_a_since_of_millions_of_days_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(CONFIG)
    (tmp_path / "empty.jsonl").write_text("")
    assert nw("import", "empty.jsonl", cwd=tmp_path).returncode == 0
    res = nw("search", "troops", "--since", "99999999d", cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr  # a bad option
    assert "--since: '99999999d' is longer than 100 years" in res.stderr


def test_a_number_too_long_for_python_stops_no_command(tmp_path: Path) -> None:
    """A JSON number of 5,000 digits (an id, say) is a ValueError, not a JSONDecodeError:
    `match` and `stories` stopped with a traceback, the files and lines after it never read;
    `import` skipped the line telling the operator to call sys.set_int_max_str_digits()."""
    big = "9" * 5000
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "a.json").write_text(
        f'{{"title": "Big number troops", "text": "troops", "n": {big}}}')
    (folder / "b.txt").write_text("Fine troops\nTroops near the border.")
    lines = tmp_path / "in.jsonl"
    lines.write_text(
        article(1)[:-1] + f', "n": {big}}}\n' + article(2) + "\n", encoding="utf-8")
    (tmp_path / "config.toml").write_text(CONFIG)
    matched = nw("match", "troops", str(folder), cwd=tmp_path)
    assert matched.returncode == 0, matched.stderr
    assert "a.json" in matched.stdout and "b.txt" in matched.stdout
    stories = nw("stories", str(lines), "--json", cwd=tmp_path)
    assert stories.returncode == 0, stories.stderr
    assert sorted(i for s in map(json.loads, stories.stdout.splitlines()) for i in s["ids"]) == [
        "a1", "a2"]
    imported = nw("import", str(lines), "-c", "config.toml", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert count(tmp_path / "nw.db") == 2
    for res in (matched, stories, imported):
        assert "Traceback" not in res.stderr and "set_int_max_str_digits" not in res.stderr
