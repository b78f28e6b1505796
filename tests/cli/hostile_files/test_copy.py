"""`newswatch copy` and `migrate` with hostile targets: the source's own -wal or -journal file
as the destination, a password holding '/' (never printed, not even a piece), a store whose
schema version is negative."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli.hostile_files._run import NEWSWATCH, REPO, make_store, no_traceback, nw

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("suffix", ["-wal", "-journal"])
def test_copy_into_the_sources_own_sidecar_file_is_refused(tmp_path: Path, suffix: str) -> None:
    """`copy --from SRC --to SRC-wal` (or SRC-journal) is accepted and reported as a whole
    copy (exit 0, "every table's count agrees"), but the file is where SQLite keeps SRC's
    write-ahead log / rollback journal: the next write to SRC deletes the copy, and with
    -journal every read-only command on SRC fails meanwhile ("attempt to write a readonly
    database", a hot journal). `trend --png` and `sources export -o` refuse these very names."""
    cfg = make_store(tmp_path, "src.db")
    src = tmp_path / "src.db"
    dst = Path(f"{src}{suffix}")
    r = nw(["copy", "--from", str(src), "--to", str(dst)], cwd=tmp_path)
    no_traceback(r)
    # What happens to the source and the "copy" when it is accepted:
    after = nw(["search", "troops", "-c", str(cfg)], cwd=tmp_path)
    nw(["import", str(tmp_path / "src.db.jsonl"), "-c", str(cfg)], cwd=tmp_path)  # a write
    assert r.rc != 0, (
        f"copy into {dst.name} accepted (rc {r.rc}): {r.err.strip().splitlines()[-1]!r}; "
        f"search on the source afterwards: rc {after.rc} {after.err.strip()[-160:]!r}; "
        f"after one write to the source the copy exists: {dst.exists()}")


def test_copy_leaves_no_password_in_an_error_about_the_url(tmp_path: Path) -> None:
    """A PostgreSQL password holding '/' (an unencoded generated password) makes the URL
    unparsable, and the error prints the whole URL, password included; even through env:VAR,
    which exists to keep the password out of sight."""
    make_store(tmp_path, "src.db")
    secret = "Zk9/q+Wx7secret"
    url = f"postgresql://bob:{secret}@db.example:5432/nw"
    for spec, env in ((url, {}), ("env:PROBE_DB_URL", {"PROBE_DB_URL": url})):
        r = nw(["copy", "--from", "src.db", "--to", spec], cwd=tmp_path, env=env)
        no_traceback(r)
        assert r.rc == 1, r.text
        assert "q+Wx7secret" not in r.text and "Zk9" not in r.text, r.err


def test_config_error_about_a_storage_url_names_no_part_of_the_password(tmp_path: Path) -> None:
    """Same URL in [storage] url = "env:VAR": the config error quotes urllib's message
    "Port could not be cast to integer value as 'Zk9'", the password's first part."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('[storage]\nurl = "env:PROBE_DB_URL"\n')
    env = {"PROBE_DB_URL": "postgresql://bob:Zk9/q+Wx7secret@db.example:5432/nw"}
    for args in (["trend", "x"], ["migrate"], ["sources", "export"]):
        r = nw([*args, "-c", str(cfg)], cwd=tmp_path, env=env)
        no_traceback(r)
        assert r.rc == 2, r.text
        assert "Zk9" not in r.text and "Wx7secret" not in r.text, f"{args}: {r.err}"


def test_migrate_of_a_store_with_a_negative_schema_version_fails_cleanly(tmp_path: Path) -> None:
    """A damaged/foreign file whose user_version is negative: other commands say "open it
    once with a command that writes" / "run `newswatch migrate`", and migrate then dies with
    `KeyError: -4` (schema.upgrade indexes MIGRATIONS) and a traceback."""
    cfg = make_store(tmp_path, "m.db", n=3)
    with sqlite3.connect(tmp_path / "m.db") as c:
        c.execute("PRAGMA user_version=-5")
    r = nw(["migrate", "-c", str(cfg)], cwd=tmp_path)
    no_traceback(r)
    assert r.rc == 1, r.text
    assert len(r.err.strip().splitlines()) == 1, r.err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_a_copy_stopped_from_outside_says_what_was_left(tmp_path: Path, sig: int) -> None:
    """Ctrl-C said the copy did not finish and how to start over; a kill or a closed terminal
    ended it without a word (the destination was marked incomplete all the same)."""
    make_store(tmp_path, "big.db", n=8_000)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.Popen([*NEWSWATCH, "copy", "--from", "big.db", "--to", "dst.db"],
                         cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    deadline = time.monotonic() + 30
    while not (tmp_path / "dst.db").exists() and time.monotonic() < deadline:
        time.sleep(0.01)  # the copy has begun writing
    # At once: the whole copy takes about 0.3 s, and a signal after it ended the program as
    # any kill does (-15), which waiting 0.3 s more here met now and then.
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    assert "interrupted: the copy did not finish" in err, (p.returncode, out, err)
    assert "To start over, delete" in err and "Traceback" not in err
    assert p.returncode == 130
