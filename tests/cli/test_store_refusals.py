"""What the SQLite store refuses, said by ``check`` as ``run`` then meets it, and said without
leaving anything behind: the lock file beside the database, a path leading into a missing folder,
a folder no file can be made in, a ``copy --to`` target that is no database; and a ``-wal`` file
removed under a running ``run``, which stops it before a crash could lose its writes. The real
``newswatch`` entry point, in subprocesses, on real files."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

from tests.cli.test_cli import EXE, nw
from tests.conftest import ends
from watchers.store import SqliteStore

CONFIG = '[storage]\npath = "{path}"\n[[rules]]\nname = "gov"\nquery = "government"\n'


def _config(tmp_path: Path, path: str) -> None:
    (tmp_path / "config.toml").write_text(CONFIG.format(path=path))


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def immutable() -> Iterator[Callable[[Path], None]]:
    """Mark a file or folder immutable (``chattr +i``: not even root may change it), undone
    after the test; skips where the file system or the user cannot."""
    marked: list[Path] = []

    def mark(path: Path) -> None:
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot make a file immutable here: {done.stderr.strip()}")
        marked.append(path)

    yield mark
    for path in marked:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)


def _lock_folder(lock: Path, mark: Callable[[Path], None]) -> None:
    lock.mkdir()


def _lock_fifo(lock: Path, mark: Callable[[Path], None]) -> None:
    os.mkfifo(lock)


def _lock_immutable(lock: Path, mark: Callable[[Path], None]) -> None:
    lock.write_text("")
    mark(lock)


def _lock_read_only(lock: Path, mark: Callable[[Path], None]) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes a file whatever its permissions")
    lock.write_text("")
    lock.chmod(0o444)


@pytest.mark.parametrize("existing", [False, True], ids=["new store", "existing store"])
@pytest.mark.parametrize(("make", "says"), [
    (_lock_folder, "cannot create the lock file {lock}: Is a directory"),
    (_lock_fifo, "the lock file {lock} is not a regular file"),
    (_lock_immutable, "cannot create the lock file {lock}: Operation not permitted"),
    (_lock_read_only, "cannot create the lock file {lock}: Permission denied"),
], ids=["folder", "fifo", "immutable", "read-only"])
def test_check_refuses_the_lock_file_run_refuses(
        tmp_path: Path, immutable: Callable[[Path], None], existing: bool,
        make: Callable[[Path, Callable[[Path], None]], None], says: str) -> None:
    """check said ok for a <db>.lock that was a folder, a pipe or not writable; run then
    refused to start. check names it now, and neither takes nor makes anything."""
    if existing:
        asyncio.run(_made(tmp_path / "store.db"))
        (tmp_path / "store.db.lock").unlink()
    _config(tmp_path, "store.db")
    lock = tmp_path / "store.db.lock"
    make(lock, immutable)
    before = _listing(tmp_path)
    checked = nw("check", "-c", "config.toml", cwd=tmp_path)
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert f"run refuses to start: [storage] path: {says.format(lock=lock)}" in checked.stderr, (
        checked.stderr)
    assert _listing(tmp_path) == before
    ran = nw("run", "--once", "-c", "config.toml", cwd=tmp_path)
    assert ran.returncode != 0 and says.format(lock=lock) in ran.stderr, ran.stderr


async def _made(path: Path) -> None:
    await (await SqliteStore.open(path)).aclose()


def test_check_refuses_a_store_path_leading_into_a_missing_folder(tmp_path: Path) -> None:
    """A symlink to a file in a folder that does not exist: run makes the link's folder, not
    its target's, and could not make the lock file; check said ok."""
    (tmp_path / "dangling.db").symlink_to(tmp_path / "gone" / "dir" / "x.db")
    _config(tmp_path, "dangling.db")
    before = _listing(tmp_path)
    checked = nw("check", "-c", "config.toml", cwd=tmp_path)
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert (f"cannot create the lock file {tmp_path}/gone/dir/x.db.lock: its folder "
            f"{tmp_path}/gone/dir does not exist") in checked.stderr, checked.stderr
    assert _listing(tmp_path) == before
    ran = nw("run", "--once", "-c", "config.toml", cwd=tmp_path)
    assert ran.returncode != 0 and f"{tmp_path}/gone/dir/x.db.lock" in ran.stderr, ran.stderr
    # a new store in a folder run makes is not refused
    _config(tmp_path, "new/folder/store.db")
    fine = nw("check", "-c", "config.toml", cwd=tmp_path)
    assert fine.returncode == 0, fine.stderr
    assert not (tmp_path / "new").exists()


def test_a_store_path_climbing_out_of_a_link_is_checked_where_run_makes_it(
        tmp_path: Path) -> None:
    """``lnk/../x/store.db`` with ``lnk`` a link into ``real/sub``: the system climbs from the
    link's target, so run makes ``real/x``; check read ``..`` by the letters (``x`` beside
    the link), saw another folder and refused what run then did."""
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "lnk").symlink_to(tmp_path / "real" / "sub")
    _config(tmp_path, "lnk/../x/store.db")
    checked = nw("check", "-c", "config.toml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "run creates it" in checked.stdout
    assert not (tmp_path / "real" / "x").exists() and not (tmp_path / "x").exists()
    ran = nw("run", "--once", "-c", "config.toml", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "real" / "x" / "store.db").is_file()
    assert not (tmp_path / "x").exists()
    # the link's own folder gone: both name the link
    (tmp_path / "lnk").unlink()
    (tmp_path / "lnk").symlink_to(tmp_path / "unmounted")
    checked = nw("check", "-c", "config.toml", cwd=tmp_path)
    assert checked.returncode == 2, checked.stdout
    assert f"{tmp_path}/lnk is a symbolic link to {tmp_path}/unmounted" in checked.stderr, (
        checked.stderr)


def test_a_store_folder_that_is_a_link_leading_nowhere_is_named_as_such(tmp_path: Path) -> None:
    """The store's folder a symbolic link to a disk not mounted: check said "ok (new: run
    creates it and the folder …)" and run said it could not create the folder: "File
    exists". Both name the link and where it leads."""
    (tmp_path / "dl").symlink_to(tmp_path / "unmounted" / "disk")
    _config(tmp_path, "dl/store.db")
    before = _listing(tmp_path)
    says = (f"cannot create the folder {tmp_path}/dl for the database {tmp_path}/dl/store.db: "
            f"{tmp_path}/dl is a symbolic link to {tmp_path}/unmounted/disk, which does not "
            "exist")
    checked = nw("check", "-c", "config.toml", cwd=tmp_path)
    assert checked.returncode == 2 and says in checked.stderr, checked.stdout + checked.stderr
    assert "run creates it" not in checked.stdout
    ran = nw("run", "--once", "-c", "config.toml", cwd=tmp_path)
    assert ran.returncode != 0 and says in ran.stderr, ran.stderr
    assert "File exists" not in ran.stderr
    assert _listing(tmp_path) == before
    # a link that loops is no link to nothing: the system's reason is given
    (tmp_path / "loop").symlink_to("loop")
    _config(tmp_path, "loop/store.db")
    ran = nw("run", "--once", "-c", "config.toml", cwd=tmp_path)
    assert ran.returncode != 0 and "Too many levels of symbolic links" in ran.stderr, ran.stderr
    assert "which does not exist" not in ran.stderr


def test_check_refuses_a_store_whose_lock_file_cannot_be_made_in_its_folder(
        tmp_path: Path, immutable: Callable[[Path], None]) -> None:
    """An existing store without its lock file, in a folder no file can be made in (immutable:
    root too is refused): check said ok, run could not make the lock file."""
    (tmp_path / "frozen").mkdir()
    asyncio.run(_made(tmp_path / "frozen" / "store.db"))
    (tmp_path / "frozen" / "store.db.lock").unlink()
    immutable(tmp_path / "frozen")
    _config(tmp_path, "frozen/store.db")
    checked = nw("check", "-c", "config.toml", cwd=tmp_path)
    assert checked.returncode == 2, checked.stdout + checked.stderr
    says = f"cannot create the lock file {tmp_path}/frozen/store.db.lock: Operation not permitted"
    assert says in checked.stderr, checked.stderr
    assert os.listdir(tmp_path / "frozen") == ["store.db"]
    ran = nw("run", "--once", "-c", "config.toml", cwd=tmp_path)
    assert ran.returncode != 0 and says in ran.stderr, ran.stderr


def _folder(target: Path, source: Path) -> None:
    target.mkdir()


def _text(target: Path, source: Path) -> None:
    target.write_text("not a database\n")


def _foreign(target: Path, source: Path) -> None:
    with closing(sqlite3.connect(target)) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
        conn.execute("PRAGMA user_version = 5")
        conn.commit()


def _source_lock(target: Path, source: Path) -> None:
    # Empty, as a refused writer leaves it: it passed for a new database.
    (source.parent / f"{source.name}.lock").write_text("")


@pytest.mark.parametrize(("name", "make", "says"), [
    ("adir", _folder, "adir is a directory, not a newswatch database"),
    ("text.db", _text, "text.db is not a newswatch database (not an SQLite file)"),
    ("other.db", _foreign, "other.db is not a newswatch database (it holds other tables: users)"),
    ("src.db.lock", _source_lock, "--to src.db.lock is the lock file newswatch keeps beside"),
], ids=["folder", "text", "foreign", "source lock file"])
def test_copy_to_a_refused_target_leaves_no_lock_file(
        tmp_path: Path, name: str, make: Callable[[Path, Path], None], says: str) -> None:
    """Each was refused with a new `<target>.lock` left beside it (the lock was taken before
    the target was read)."""
    source = tmp_path / "src.db"
    asyncio.run(_made(source))
    make(tmp_path / name, source)
    before = _listing(tmp_path)
    done = nw("copy", "--from", "src.db", "--to", name, cwd=tmp_path)
    assert done.returncode != 0 and says in done.stderr, done.stderr
    assert not (tmp_path / f"{name}.lock").exists()
    # (reading the source leaves its -wal and -shm files, as any reader does)
    assert [p for p in _listing(tmp_path) if p not in ("src.db-wal", "src.db-shm")] == before


def _titles(db: Path) -> set[str]:
    """The stored titles (none while the database is not made yet)."""
    if not db.exists():
        return set()
    with closing(sqlite3.connect(db)) as conn:
        try:
            return {str(r[0]) for r in conn.execute("SELECT title FROM articles")}
        except sqlite3.OperationalError:  # made, but its tables not yet
            return set()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("removed", [("-wal",), ("-wal", "-shm")], ids=["wal", "wal and shm"])
def test_a_wal_file_removed_under_run_stops_it_and_loses_nothing_committed(
        tmp_path: Path, removed: tuple[str, ...]) -> None:
    """Writes went on into the unlinked -wal file; a kill -9 then lost everything since the
    last checkpoint, and the next start sent those alerts again."""
    feed = tmp_path / "feed"
    feed.mkdir()
    (tmp_path / "config.toml").write_text(
        CONFIG.format(path="store.db")
        + f'[[sources]]\nname = "folder"\ntype = "folder"\npath = "{feed}"\nevery = "1s"\n'
          'settle = "0s"\n')
    with ends(subprocess.Popen([*EXE, "run", "-c", "config.toml"], cwd=tmp_path, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)) as proc:
        for i in range(3):
            (feed / f"a{i}.txt").write_text(f"Government story A{i}\n\nthe government said {i}")
        db = tmp_path / "store.db"
        before = {f"Government story A{i}" for i in range(3)}
        deadline = time.monotonic() + 30
        # Read beside the writer, as search does: a reader's close leaves the -wal file be.
        while time.monotonic() < deadline and not _titles(db) >= before:
            time.sleep(0.2)
        assert _titles(db) == before
        for suffix in removed:
            (tmp_path / f"store.db{suffix}").unlink()
        (feed / "b.txt").write_text("Government story B\n\nthe government said more")
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert (f"the database's -wal file {tmp_path}/store.db-wal was removed or replaced while "
            "newswatch was running") in err
    # Closed, not killed: what the unlinked -wal file held was copied into the database.
    assert _titles(db) == before
