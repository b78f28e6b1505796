"""What a new user meets: every mistake reported at once with its key, no traceback, and a
database that disappears or breaks while running named in one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.cli.test_cli import EXE, nw
from tests.conftest import SEEDS, ends

# The seeds folder watched by one rule, on a database in the test's folder.
WATCH_SEEDS = """
[storage]
path = "nw.db"
[[sources]]
name = "seeds"
type = "folder"
path = "seeds"
settle = 0
[[rules]]
name = "troops"
query = "troops"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_check_reports_every_error_at_once(tmp_path: Path) -> None:
    cfg = write(tmp_path, """
[storage]
colour = "blue"
[[sources]]
name = "seeds"
type = "folder"
path = "not-here"
[[rules]]
name = "troops"
query = "sanctions AND"
[[rules]]
name = "deep"
query = "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((x))))"
""")
    res = nw("check", "-c", str(cfg), cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert "storage.colour: unknown key" in res.stderr  # the unknown key …
    assert "rules[0].query: expected a term after AND" in res.stderr  # … hides nothing
    assert "rules[1].query: nesting deeper than 64 levels" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_missing_folder_stops_watching_but_not_the_commands_on_the_store(
        tmp_path: Path) -> None:
    """A watched folder not there (a share mounted late) stopped search, import, trend and
    the sources' export too, which read and fill the store alone; a file where the folder
    should be was called missing."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    cfg = write(tmp_path, WATCH_SEEDS)
    assert nw("run", "--once", "-c", str(cfg), cwd=tmp_path).returncode == 0
    shutil.rmtree(tmp_path / "seeds")
    (tmp_path / "seeds").write_text("not a folder")
    found = nw("search", "troops", "-c", str(cfg), cwd=tmp_path)
    assert found.returncode == 0 and found.stdout.strip(), found.stderr
    lines = tmp_path / "in.jsonl"
    lines.write_text(json.dumps({"id": "x1", "title": "Archived troops", "text": "Troops.",
                                 "date": "2022-01-01T00:00:00Z"}) + "\n")
    assert nw("import", str(lines), "-c", str(cfg), cwd=tmp_path).returncode == 0
    watch = nw("run", "--once", "-c", str(cfg), cwd=tmp_path)
    assert watch.returncode == 2, watch.stderr
    assert f"sources[0].path: not a folder: {tmp_path / 'seeds'}" in watch.stderr


def test_a_missing_folder_and_an_empty_config_are_reported(tmp_path: Path) -> None:
    cfg = write(tmp_path, """
[[sources]]
name = "seeds"
type = "folder"
path = "not-here"
""")
    res = nw("check", "-c", str(cfg), cwd=tmp_path)
    assert res.returncode == 2 and "sources[0].path: no such folder" in res.stderr
    empty = write(tmp_path, "")
    res = nw("check", "-c", str(empty), cwd=tmp_path)
    assert res.returncode == 2 and "nothing to watch" in res.stderr


def test_a_store_only_config_serves_the_store_commands_but_not_run(tmp_path: Path) -> None:
    """A config with only [storage] names nothing to watch: ``run`` and ``check`` refuse it,
    while the commands that read or fill the store (import, search, trend, migrate, the
    sources' OPML export) take it."""
    cfg = write(tmp_path, '[storage]\npath = "nw.db"\n')
    history = tmp_path / "history.jsonl"
    history.write_text("".join(json.dumps({
        "id": f"h{i}", "title": f"Troops gather near the border, report {i}",
        "text": "Troops and tanks were seen.", "url": f"https://ex.org/{i}",
        "date": f"2022-01-{10 + i}T08:00:00Z", "source": "wire"}) + "\n" for i in range(3)))
    res = nw("import", str(history), "-c", str(cfg), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "imported 3" in res.stderr
    res = nw("search", "troops", "-c", str(cfg), "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert sorted(json.loads(line)["id"] for line in res.stdout.splitlines()) == ["h0", "h1", "h2"]
    for command in (("trend", "troops", "--since", "90d"), ("migrate",), ("sources", "export")):
        res = nw(*command, "-c", str(cfg), cwd=tmp_path)
        assert res.returncode == 0, (command, res.stderr)
        assert "nothing to watch" not in res.stderr
    for watching in ("check", "run"):
        res = nw(watching, "-c", str(cfg), cwd=tmp_path)
        assert res.returncode == 2 and "nothing to watch" in res.stderr, (watching, res.stderr)


def test_a_rule_without_a_destination_is_an_error_when_a_token_is_set(tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    cfg = write(tmp_path, """
[[sources]]
name = "seeds"
type = "folder"
path = "seeds"
[[rules]]
name = "troops"
query = "troops"
channel = "desk"
""")
    res = nw("run", "--once", "-c", str(cfg), cwd=tmp_path, env={"DISCORD_TOKEN": "x.y.z"})
    assert res.returncode == 2, res.stderr
    assert "rules[0].channel: route 'desk' has no [channels] entry" in res.stderr
    # without a token the same config prints to the terminal, as the README says
    assert nw("run", "--once", "-c", str(cfg), cwd=tmp_path).returncode == 0



def test_search_names_an_unknown_source(tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    cfg = write(tmp_path, WATCH_SEEDS)
    assert nw("run", "--once", "-c", str(cfg), cwd=tmp_path).returncode == 0
    res = nw("search", "troops", "--source", "bbc", "-c", str(cfg), cwd=tmp_path)
    assert res.returncode == 1
    assert "--source: no articles from a source named 'bbc'; known: seeds" in res.stderr
    # a stored source name's control characters are not sent to the terminal
    (tmp_path / "evil.jsonl").write_text(json.dumps(
        {"id": "e1", "title": "Troops", "source": "evil\x1b[2J\x1b[31m"}) + "\n")
    assert nw("import", "evil.jsonl", "-c", str(cfg), cwd=tmp_path).returncode == 0
    res = nw("search", "troops", "--source", "bbc", "-c", str(cfg), cwd=tmp_path)
    assert res.returncode == 1 and "\x1b" not in res.stderr and "evil" in res.stderr


def test_unreadable_items_never_stop_run_or_check_live(tmp_path: Path) -> None:
    folder = tmp_path / "seeds"
    folder.mkdir()
    (folder / "good.txt").write_text("Troops move\nTroops moved toward the border.")
    # a lone surrogate, escaped in JSON, and a NUL: valid JSON, unstorable text
    (folder / "bad.json").write_text(json.dumps({"title": "Troops \ud800 here",
                                                 "text": "troops\u0000 everywhere"}))
    (folder / "bin.txt").write_bytes(b"\x00\x01\x02troops" * 100)
    cfg = write(tmp_path, WATCH_SEEDS)
    res = nw("run", "--once", "-c", str(cfg), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert res.stdout.count("▶ ") == 2  # good.txt and the repaired JSON file
    assert "bin.txt" in res.stderr  # the skipped file is named
    live = nw("check", "--live", "-c", str(cfg), cwd=tmp_path)
    assert live.returncode == 0 and "1 unreadable item(s) skipped" in live.stdout


@pytest.mark.parametrize("how", ["removed", "folder became a file"])
def test_a_database_removed_while_running_stops_with_one_line(tmp_path: Path, how: str) -> None:
    """Its folder replaced by a file: an OSError each second, taken for every source's
    failure (with a traceback), and the program never stopped."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    cfg = write(tmp_path, WATCH_SEEDS.replace('settle = 0', 'settle = 0\nevery = "1s"')
                .replace('path = "nw.db"', 'path = "db/nw.db"'))
    with ends(subprocess.Popen([*EXE, "run", "-c", str(cfg)], cwd=tmp_path, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)) as proc:
        for _ in range(200):
            if (tmp_path / "db" / "nw.db").exists():
                break
            time.sleep(0.05)
        time.sleep(1.5)
        if how == "removed":
            for suffix in ("", "-wal", "-shm"):
                (tmp_path / "db" / f"nw.db{suffix}").unlink(missing_ok=True)
        else:
            shutil.rmtree(tmp_path / "db")
            (tmp_path / "db").write_text("not a folder")
        (tmp_path / "seeds" / "late.txt").write_text("Late\nMore troops.")
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert "was removed or replaced while newswatch was running" in err
    # Told as the engine stopped, and as the command's last line; the source states it could
    # not save said it a third time in full.
    assert err.count("was removed or replaced while newswatch was running") <= 2, err
    assert "Traceback" not in err
    assert sys.executable  # the process ended by itself


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_alerts_that_cannot_be_written_out_are_kept_and_said_in_one_line(tmp_path: Path) -> None:
    """`run > log` on a full disk: a traceback at every attempt, from the console's print."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    cfg = write(tmp_path, WATCH_SEEDS)
    with open("/dev/full", "w") as full:
        res = subprocess.run([*EXE, "run", "--once", "-c", str(cfg)], cwd=tmp_path, text=True,
                             stdout=full, stderr=subprocess.PIPE, timeout=60)
    assert "Traceback" not in res.stderr, res.stderr
    assert "cannot write alerts to <stdout>: No space left on device" in res.stderr
    # kept for the next runs, which can write them once their retry is due (a second or so)
    cards = 0
    for _ in range(10):
        again = nw("run", "--once", "-c", str(cfg), cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        cards += again.stdout.count("▶ ")
        if cards >= 3:
            break
        time.sleep(0.5)
    assert cards == 3


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run as a user who may not write the file")
def test_a_database_the_user_may_not_write_is_refused_at_start() -> None:
    """SQLite opened it read-only without a word: `run` said it was watching, then stopped at
    its first write with a traceback from the delivery loop."""
    with tempfile.TemporaryDirectory(prefix="newswatch-ro-") as base:
        folder = Path(base)
        folder.chmod(0o777)
        shutil.copytree(SEEDS, folder / "seeds")
        cfg = write(folder, WATCH_SEEDS)
        assert nw("run", "--once", "-c", str(cfg), cwd=folder).returncode == 0
        for path in folder.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        (folder / "nw.db.lock").chmod(0o666)  # the database alone may not be written
        as_nobody = ["setpriv", "--reuid=54321", "--regid=54321", "--clear-groups"]
        reach = subprocess.run([*as_nobody, *EXE, "--help"], capture_output=True, timeout=60)
        if reach.returncode != 0:
            pytest.skip("the project's folder or interpreter is not readable by other users")
        res = subprocess.run([*as_nobody, *EXE, "run", "--once", "-c", str(cfg)], cwd=folder,
                             capture_output=True, text=True, timeout=60)
    assert res.returncode == 1, res.stderr
    assert f"cannot write the database {folder / 'nw.db'}: Permission denied" in res.stderr
    assert "watching" not in res.stderr and "Traceback" not in res.stderr


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run as a user who may only read")
def test_a_user_who_may_only_read_is_told_why_a_lookup_cannot_read() -> None:
    """After a clean stop (no -wal or -shm beside the database), a lookup as a user who may
    read the file but not write in its folder said "attempt to write a readonly database"
    though it asked only to read."""
    with tempfile.TemporaryDirectory(prefix="newswatch-reader-") as base:
        folder = Path(base)
        shutil.copytree(SEEDS, folder / "seeds")
        cfg = write(folder, WATCH_SEEDS)
        assert nw("run", "--once", "-c", str(cfg), cwd=folder).returncode == 0
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        as_nobody = ["setpriv", "--reuid=54321", "--regid=54321", "--clear-groups"]
        reach = subprocess.run([*as_nobody, *EXE, "--help"], capture_output=True, timeout=60)
        if reach.returncode != 0:
            pytest.skip("the project's folder or interpreter is not readable by other users")
        res = subprocess.run([*as_nobody, *EXE, "search", "troops", "-c", str(cfg)],
                             cwd=folder, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1, res.stderr
    assert (f"cannot read the database {folder / 'nw.db'} as this user: SQLite must create "
            f"{folder / 'nw.db'}-shm beside it") in res.stderr
    assert "Traceback" not in res.stderr


def test_a_lookup_on_a_database_path_that_cannot_be_followed_says_why(tmp_path: Path) -> None:
    """A loop of links where the database should be was called "no database yet: run
    `newswatch run` first"."""
    (tmp_path / "nw.db").symlink_to("other.db")
    (tmp_path / "other.db").symlink_to("nw.db")
    cfg = write(tmp_path, '[storage]\npath = "nw.db"\n')
    res = nw("search", "troops", "-c", str(cfg), cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    assert (f"cannot read the database {tmp_path / 'nw.db'}: Too many levels of symbolic links"
            in res.stderr)


def test_a_terminal_that_is_not_utf8_gets_escapes_not_tracebacks(tmp_path: Path) -> None:
    """Under a Latin-1 locale (PYTHONIOENCODING stands for one here) `check` ended in a
    UnicodeEncodeError at its first arrow, and `run --once` printed nothing: the console's
    delivery failed on each card and held every alert back, with exit 0."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    cfg = write(tmp_path, WATCH_SEEDS)
    env = {**os.environ, "PYTHONIOENCODING": "latin-1"}

    def latin(*args: str) -> tuple[int, str, str]:
        res = subprocess.run([*EXE, *args, "-c", str(cfg)], cwd=tmp_path, env=env,
                             capture_output=True, timeout=60)
        return res.returncode, res.stdout.decode("latin-1"), res.stderr.decode("latin-1")

    code, out, err = latin("check")
    assert code == 0 and "Traceback" not in err, err
    assert "\\u2192" in out  # the arrow, escaped
    code, out, err = latin("run", "--once")
    assert code == 0 and "Traceback" not in err, err
    assert out.count("\\u25b6 ") == 3  # every card, its ▶ escaped
    code, out, err = latin("search", "troops", "--json")
    assert code == 0, err
    titles = [json.loads(line)["title"] for line in out.splitlines()]
    assert any(not t.isascii() for t in titles)  # the escapes are JSON's: read back whole


@pytest.mark.parametrize("command", [["search", "troops"], ["check"], ["run", "--once"]])
def test_a_closed_standard_output_is_said_not_written_to(tmp_path: Path,
                                                          command: list[str]) -> None:
    """With stdout closed (`>&-`), search printed "3 result(s)" and exited 0 having written
    none, and `run --once` ended in a traceback."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    cfg = write(tmp_path, WATCH_SEEDS)
    res = subprocess.run(["sh", "-c", 'exec "$0" "$@" >&-', *EXE, *command, "-c", str(cfg)],
                         cwd=tmp_path, capture_output=False, stderr=subprocess.PIPE, text=True,
                         timeout=60)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == ("newswatch: standard output is closed: the results could be "
                                  "written nowhere")


@pytest.mark.parametrize("token", ["first-half\nsecond-half", "abc\tdef", "abc\x07def"])
def test_a_token_with_a_line_break_inside_is_refused_by_name(tmp_path: Path, token: str) -> None:
    """Two lines pasted into $DISCORD_TOKEN ended in aiohttp's "Forbidden control character
    detected in headers", a traceback."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    cfg = write(tmp_path, WATCH_SEEDS)
    res = nw("run", "--once", "-c", str(cfg), cwd=tmp_path, env={"DISCORD_TOKEN": token})
    # a refusal to start, as check's (exit 2) and an unset webhook variable's
    assert res.returncode == 2, res.stderr
    assert "[discord] token_env: $DISCORD_TOKEN holds" in res.stderr, res.stderr
    checked = nw("check", "-c", str(cfg), cwd=tmp_path, env={"DISCORD_TOKEN": token})
    assert checked.returncode == 2, checked.stderr
    assert "Traceback" not in res.stderr
    assert "$DISCORD_TOKEN holds a space, line break or control character" in res.stderr
    assert "half" not in res.stderr and "abc" not in res.stderr  # no part of the token shown


def _mounted_read_only(source: Path, target: Path) -> bool:
    """Bind ``source`` read-only at ``target`` (root, and a system that lets us mount)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    target.mkdir()
    if subprocess.run(["mount", "--bind", str(source), str(target)],
                      capture_output=True).returncode != 0:
        return False
    if subprocess.run(["mount", "-o", "remount,bind,ro", str(target)],
                      capture_output=True).returncode != 0:
        subprocess.run(["umount", str(target)], capture_output=True)
        return False
    return True


def test_a_lookup_on_a_read_only_file_system_says_why_it_cannot_read(tmp_path: Path) -> None:
    """After a clean stop, a lookup (search, trend, sources export) on a database whose file
    system is mounted read-only said only "unable to open database file"."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    cfg = write(tmp_path, WATCH_SEEDS)
    assert nw("run", "--once", "-c", str(cfg), cwd=tmp_path).returncode == 0
    assert not (tmp_path / "nw.db-shm").exists()  # a clean stop leaves none
    ro = tmp_path / "ro"
    if not _mounted_read_only(tmp_path, ro):
        pytest.skip("needs root and a read-only bind mount")
    try:
        for command in (["search", "troops"], ["sources", "export"]):
            res = nw(*command, "-c", str(ro / "config.toml"), cwd=ro)
            assert res.returncode == 1, res.stderr
            assert res.stderr.strip() == (
                f"newswatch: cannot read the database {ro / 'nw.db'}: it lies on a read-only "
                f"file system, and SQLite must create {ro / 'nw.db'}-shm beside it to read it; "
                "copy the database (with its -wal file, if any) to a writable place and read "
                "it there"), res.stderr
    finally:
        subprocess.run(["umount", str(ro)], capture_output=True)
