"""``newswatch trend``: a table per bucket, or the chart as a PNG, read-only on the store.

The history is imported as a user would (``newswatch import``): one match an hour for three
days and a burst in one hour, at fixed dates in January 2022, so ``--until`` places the period.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.cli.test_cli import nw

Image = pytest.importorskip("PIL.Image")

END = datetime(2022, 1, 4, tzinfo=UTC)
BURST_HOUR = datetime(2022, 1, 3, 7, tzinfo=UTC)
BURST = 15


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("trend")
    lines = [{"id": f"bg{h}", "title": f"Zanzibar soldiers drill number {h}",
              "date": (END - timedelta(hours=h, minutes=-20)).isoformat(), "source": "wire"}
             for h in range(1, 73)]
    lines += [{"id": f"burst{i}", "title": f"Troops move on bridge {i} in sector {i * 7}",
               "date": (BURST_HOUR + timedelta(minutes=2 * i + 1)).isoformat(),
               "source": f"o{i}"} for i in range(BURST)]
    (root / "history.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    (root / "config.toml").write_text(
        '[storage]\npath = "nw.db"\n'
        '[[rules]]\nname = "troops"\nquery = "troops OR soldiers"\n')
    res = nw("import", "history.jsonl", cwd=root)
    assert res.returncode == 0, res.stderr
    return root


def _digest(root: Path) -> str:
    # the database file itself; a WAL reader may create the (empty) -wal and -shm files
    return hashlib.sha256((root / "nw.db").read_bytes()).hexdigest()


def test_table_marks_the_surge_hour(store: Path) -> None:
    before = _digest(store)
    res = nw("trend", "troops", "--since", "3d", "--until", "2022-01-04", cwd=store)
    assert res.returncode == 0, res.stderr
    rows = res.stdout.splitlines()[2:]
    assert len(rows) == 72  # one per hour
    surges = [r for r in rows if r.endswith("SURGE")]
    assert len(surges) == 1 and surges[0].startswith("2022-01-03 07:00")
    assert int(surges[0].split()[2]) == BURST + 1  # the burst and that hour's drill
    assert sum(int(r.split()[2]) for r in rows) == 72 + BURST
    assert "1 surge (peak 16 at 2022-01-03 07:00 UTC)" in res.stderr
    assert _digest(store) == before  # read-only


def test_query_per_day_and_png(store: Path) -> None:
    res = nw("trend", "zanzibar", "--since", "10d", "--until", "2022-01-04", cwd=store)
    assert res.returncode == 0, res.stderr
    rows = res.stdout.splitlines()[2:]
    assert len(rows) == 10 and "per day" in res.stdout
    assert [int(r.split()[1]) for r in rows][-3:] == [24, 24, 24]
    assert "72 matches" in res.stderr

    out = store / "chart.png"
    res = nw("trend", "troops", "--since", "3d", "--until", "2022-01-04", "--png", str(out),
             cwd=store)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "" and "wrote" in res.stderr
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (1100, 620)
        assert len(im.convert("RGB").getcolors(maxcolors=1 << 20)) > 20  # not blank
    with Image.open(io.BytesIO(out.read_bytes())) as again:
        again.verify()


@pytest.mark.parametrize(("args", "expected"), [
    (["troops AND (border"], "column"),
    (["troops", "--since", "100d"], "--since: 100d is out of range"),
    (["troops", "--since", "soon"], "--since:"),
    (["troops", "--until", "yesterday"], "--until: 'yesterday' is not an ISO 8601 date"),
    (["troops", "--until", "2022-01-04T10:00+15:00"],
     "--until: '2022-01-04T10:00+15:00' has UTC offset +15:00, which no time zone has"),
    # the chart reaches a period before and a bucket after: an OverflowError near the ends
    (["troops", "--until", "0001-01-05"], "--until: '0001-01-05' is out of range"),
    (["troops", "--until", "9999-12-31T23:59:59", "--since", "90d"], "is out of range"),
])
def test_bad_input_is_exit_2_and_named(store: Path, args: list[str], expected: str) -> None:
    res = nw("trend", *args, "--png", str(store / "bad.png"), cwd=store)
    assert res.returncode == 2 and expected in res.stderr, res.stderr
    assert not (store / "bad.png").exists()


@pytest.mark.parametrize("name", ["nw.db", "nw.db-wal", "config.toml", "history.jsonl"])
def test_png_never_overwrites_the_store_the_config_or_another_kind_of_file(
        store: Path, name: str) -> None:
    """One slip of tab completion (``--png nw.db``) replaced the database with a chart."""
    target = store / name
    existed = target.exists()
    before = target.read_bytes() if existed else None
    res = nw("trend", "troops", "--since", "3d", "--until", "2022-01-04", "--png", name,
             cwd=store)
    assert res.returncode == 2, res.stderr
    assert f"--png: {name} " in res.stderr and "not overwritten" in res.stderr
    assert (target.read_bytes() if existed else None) == before
    assert nw("search", "troops", "--limit", "1", cwd=store).returncode == 0


def test_a_png_the_system_cannot_write_is_exit_1_not_a_usage_error(store: Path) -> None:
    """A folder that does not exist ended with exit 2, which the docs keep for a bad config or
    query; "cannot write" is an error of the run (exit 1), as for every other command."""
    res = nw("trend", "troops", "--since", "3d", "--until", "2022-01-04", "--png",
             str(store / "no" / "such.png"), cwd=store)
    assert res.returncode == 1, res.stderr
    assert res.stderr.strip().endswith(
        f"--png: cannot write {store / 'no' / 'such.png'}: No such file or directory")
    assert not (store / "no").exists()


def test_an_empty_png_name_is_named_not_taken_for_no_png(store: Path) -> None:
    """``--png ""`` (an unset shell variable) printed the table as if --png were not given."""
    res = nw("trend", "troops", "--since", "3d", "--until", "2022-01-04", "--png", "",
             cwd=store)
    # Refused as every empty argument is (the trend command's own check said "expected a
    # file name": the command line's check comes first now).
    assert res.returncode == 2
    assert "--png: an empty value; give one, or leave the option out" in res.stderr
    assert res.stdout == ""


def test_png_replaces_an_earlier_chart_whole(store: Path) -> None:
    out = store / "again.png"
    for _ in range(2):
        res = nw("trend", "troops", "--since", "3d", "--until", "2022-01-04", "--png",
                 str(out), cwd=store)
        assert res.returncode == 0, res.stderr
    with Image.open(out) as im:
        assert im.format == "PNG"
    assert [p.name for p in store.iterdir() if p.name.startswith(".again")] == []


def test_png_into_a_pipe_or_device_writes_into_it_and_leaves_it_one(store: Path) -> None:
    """`--png /dev/null` (or /dev/stdout) renamed a temporary file over the device: run as
    root, /dev/null became a plain file for the whole machine. A FIFO stands in for the device
    here: the chart is written into it, and it is still a FIFO."""
    import os
    import stat
    import threading

    fifo = store / "pipe.png"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    res = nw("trend", "troops", "--since", "3d", "--until", "2022-01-04", "--png", str(fifo),
             cwd=store)
    reader.join(timeout=30)
    assert res.returncode == 0, res.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert got and got[0].startswith(b"\x89PNG")
    fifo.unlink()


def test_png_to_dev_stdout_on_a_pipe_is_written_into_the_pipe(store: Path) -> None:
    """`trend --png /dev/stdout | …`: /dev/stdout resolves to "/proc/<pid>/fd/pipe:[…]", a
    name that does not exist, so the chart went to a temporary file beside it and failed
    ("cannot write /dev/stdout: No such file or directory", nothing written)."""
    import subprocess

    from tests.cli.test_cli import EXE

    res = subprocess.run([*EXE, "trend", "troops", "--since", "3d", "--until", "2022-01-04",
                          "--png", "/dev/stdout"], cwd=store, capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(b"\x89PNG")


def test_a_query_trend_refuses_lookup_indexes_of_other_word_keys(
        store: Path, tmp_path: Path) -> None:
    """After an upgrade changed the word keys, a query's trend read the old lookup indexes and
    counted too few matches, with exit 0 (search refused the same store). It refuses them as
    search does; a rule's trend, from the stored match times, still reads it."""
    import shutil
    import sqlite3
    from contextlib import closing

    from watchers.rules.text import KEYS_VERSION

    for name in ("nw.db", "config.toml"):
        shutil.copy(store / name, tmp_path / name)
    with closing(sqlite3.connect(tmp_path / "nw.db")) as db, db:
        db.execute("UPDATE index_keys SET version = ?", (KEYS_VERSION - 1,))
    query = nw("trend", "zanzibar", "--since", "10d", "--until", "2022-01-04", cwd=tmp_path)
    assert query.returncode == 1, query.stdout + query.stderr
    assert f"word keys version {KEYS_VERSION - 1}" in query.stderr and not query.stdout
    rule = nw("trend", "TROOPS", "--since", "3d", "--until", "2022-01-04", cwd=tmp_path)
    assert rule.returncode == 0, rule.stderr
    assert f"{72 + BURST} matches" in rule.stderr
