"""One writer per database, readers beside it, and one clear line when the file goes away or
goes bad (issue 10 §4): a second process that would poll or deliver refuses to start."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.store._support import art, put
from watchers.errors import StoreError
from watchers.store import SqliteStore
from watchers.store.sqlite._db import RELEASE_ROWS

HOLDER = """
import asyncio, sys
from watchers.store import SqliteStore
from watchers.store.sqlite._db import RELEASE_ROWS

async def main() -> None:
    store = await SqliteStore.open(sys.argv[1])
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await store.aclose()

asyncio.run(main())
"""


@asynccontextmanager
async def other_process(path: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """A second newswatch process holding the store open for writing until told to stop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, str(path), cwd=REPO,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if line.strip() != b"ready":
            err = await proc.stderr.read() if proc.stderr else b""
            pytest.fail(f"holder did not start: {line!r} {err.decode()[-500:]}")
        yield proc
    finally:
        if proc.returncode is None:
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def test_a_second_writing_process_is_refused_and_readers_are_not(tmp_path: Path) -> None:
    path = tmp_path / "nw.db"
    async with await SqliteStore.open(path) as store:
        await put(store, art("Written before the other process started"))
    async with other_process(path) as proc:
        with pytest.raises(StoreError) as caught:
            await SqliteStore.open(path)
        assert str(caught.value) == (
            f"another newswatch process (pid {proc.pid}) is using {path}; stop it first "
            "(read-only commands such as search and check do not need to)"
        )
        # readers take no lock and read beside the writer
        async with await SqliteStore.open(path, readonly=True) as reader:
            assert await reader.count_articles() == 1
        async with await SqliteStore.open(path, lock=False) as reader:
            assert await reader.count_articles() == 1
    # once it has stopped, a writer may open
    async with await SqliteStore.open(path) as store:
        assert await store.count_articles() == 1


async def test_another_path_to_the_same_database_is_refused_too(tmp_path: Path) -> None:
    """A symlink (or ../ in a path) to the database locked a lock file of its own: two
    writers ran on one database and doubled alerts."""
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "nw.db"
    async with await SqliteStore.open(path) as store:
        await put(store, art("Written before the other process started"))
    (tmp_path / "link.db").symlink_to(path)
    async with other_process(path) as proc:
        for other in (tmp_path / "link.db", tmp_path / "data" / ".." / "data" / "nw.db"):
            with pytest.raises(StoreError, match=f"another newswatch process .pid {proc.pid}."):
                await SqliteStore.open(other)


@pytest.mark.skipif(not hasattr(__import__("fcntl"), "F_OFD_SETLK"),
                    reason="open file description locks are Linux's")
async def test_a_hard_link_to_the_database_is_refused_too(tmp_path: Path) -> None:
    """A hard link is another path to the same file, whose real path has a lock file of its
    own: two writers ran on one database through its two names and both delivered."""
    path = tmp_path / "nw.db"
    async with await SqliteStore.open(path) as store:
        await put(store, art("Written before the other process started"))
    (tmp_path / "other").mkdir()
    link = tmp_path / "other" / "same.db"
    os.link(path, link)
    async with other_process(path):
        with pytest.raises(StoreError) as caught:
            await SqliteStore.open(link)
        assert str(caught.value) == (
            f"another newswatch process is using {link} through another name for the same "
            "file (a hard link); stop it first (read-only commands such as search and check "
            "do not need to)")
        async with await SqliteStore.open(link, readonly=True) as reader:
            assert await reader.count_articles() == 1
        # the refusal released the lock file it had taken: the holder's own path is still
        # refused by it, with its pid
        with pytest.raises(StoreError, match=r"another newswatch process \(pid \d+\)"):
            await SqliteStore.open(path)
    # once the holder has stopped, either name may write, one at a time, and SQLite's own
    # locks held while a second descriptor of the file comes and goes keep it whole
    async with await SqliteStore.open(link) as store:
        await put(store, art("Written through the link"))
        with pytest.raises(StoreError, match="already open for writing in this process "
                                             "through another name for the same file"):
            await SqliteStore.open(path)
        await put(store, art("Written after a refused open"))
        assert await store.integrity_check() == "ok"
    async with await SqliteStore.open(path) as store:
        assert await store.count_articles() == 3


def _own_locks(path: Path) -> list[str]:
    """The POSIX and OFD locks this process holds on ``path``'s file (from /proc/locks)."""
    ino = os.stat(path).st_ino
    return sorted(f"{f[1]} {f[3]} {f[6]}" for f in (line.split() for line in
                                                    Path("/proc/locks").read_text().splitlines())
                  if f[1] != "->" and f[4] == str(os.getpid()) and f[5].endswith(f":{ino}"))


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="reads Linux's /proc/locks")
async def test_a_reader_keeps_its_lock_when_another_store_of_the_process_closes(
        tmp_path: Path) -> None:
    """Closing any descriptor of a file drops every POSIX lock the process holds on it: a
    writer's close (its lock on the file), or a third store's header check, took away the lock
    of a reader of the same database in the same process, and another process could then
    checkpoint and remove the WAL under it."""
    path = tmp_path / "nw.db"
    async with await SqliteStore.open(path) as store:
        await put(store, art("Written first"))
    writer = await SqliteStore.open(path)
    reader = await SqliteStore.open(path, readonly=True)
    assert await reader.count_articles() == 1
    held = [lock for lock in _own_locks(path) if lock.startswith("POSIX")]
    assert held, _own_locks(path)  # SQLite's shared lock, taken by the reader
    await writer.aclose()
    assert [lock for lock in _own_locks(path) if lock.startswith("POSIX")] == held
    for _ in range(3):  # other stores opened and closed beside it, readers and a writer
        await (await SqliteStore.open(path, readonly=True)).aclose()
        await (await SqliteStore.open(path)).aclose()
        assert [lock for lock in _own_locks(path) if lock.startswith("POSIX")] == held
    # the file's own lock went with the writer: another process may write now
    async with other_process(path):
        assert await reader.count_articles() == 1
    await reader.aclose()
    assert _own_locks(path) == []
    from watchers.store.sqlite import _db
    assert not _db._KEPT and not _db._OPEN_ON  # every kept descriptor closed with the last


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts Linux's /proc/self/fd")
async def test_stores_opened_and_closed_beside_an_open_one_keep_few_descriptors(
        tmp_path: Path) -> None:
    """The descriptors kept for an open connection's sake are reused: a long-lived store with
    readers opened and closed beside it (a lookup per request) kept two more for each."""
    path = tmp_path / "nw.db"
    async with await SqliteStore.open(path) as writer:
        await put(writer, art("Kept open"))
        before = _open_descriptors()
        for _ in range(60):
            async with await SqliteStore.open(path, readonly=True) as reader:
                assert await reader.count_articles() == 1
            with pytest.raises(StoreError, match="already open for writing"):
                await SqliteStore.open(path)
        assert _open_descriptors() <= before + 3
    from watchers.store.sqlite import _db
    assert not _db._KEPT and not _db._OPEN_ON


async def test_a_killed_process_leaves_no_lock_behind(tmp_path: Path) -> None:
    path = tmp_path / "nw.db"
    async with other_process(path) as proc:
        os.kill(proc.pid, signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 30)
    async with await SqliteStore.open(path) as store:
        assert await store.integrity_check() == "ok"


async def test_one_process_cannot_open_the_same_database_twice_for_writing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "nw.db"
    async with await SqliteStore.open(path):
        with pytest.raises(StoreError, match="already open for writing in this process"):
            await SqliteStore.open(path)
    # the failed open released nothing it did not own; closing released the lock
    await (await SqliteStore.open(path)).aclose()


async def test_a_read_only_store_changes_nothing(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="there is no newswatch database at"):
        await SqliteStore.open(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()
    path = tmp_path / "nw.db"
    await (await SqliteStore.open(path)).aclose()
    async with await SqliteStore.open(path, readonly=True) as reader:
        with pytest.raises(StoreError, match="readonly"):
            await put(reader, art("Not written"))
        assert await reader.count_articles() == 0


async def test_a_removed_database_stops_writes_with_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "nw.db"
    async with await SqliteStore.open(path) as store:
        await put(store, art("Before"))
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{path}{suffix}"):  # noqa: ASYNC240 - the test's own setup
                os.remove(f"{path}{suffix}")
        with pytest.raises(StoreError) as caught:
            await put(store, art("After"))
    assert str(caught.value) == (
        f"the database file {path} was removed or replaced while newswatch was running")


async def test_a_removed_lock_file_stops_writes_before_a_second_writer_can_double_them(
        tmp_path: Path) -> None:
    """Removing the lock file by hand (a 'stale lock') let a second `run` start beside the
    first; both wrote and sent."""
    path = tmp_path / "nw.db"
    async with await SqliteStore.open(path) as store:
        await put(store, art("Before"))
        os.remove(f"{path}.lock")
        with pytest.raises(StoreError, match=r"the lock file .* was removed or replaced"):
            await put(store, art("After"))
        assert await store.count_articles() == 1


async def test_a_replaced_database_stops_writes(tmp_path: Path) -> None:
    path = tmp_path / "nw.db"
    other = tmp_path / "other.db"
    await (await SqliteStore.open(other, lock=False)).aclose()
    async with await SqliteStore.open(path) as store:
        os.replace(other, path)
        with pytest.raises(StoreError, match="was removed or replaced"):
            await store.add_notice("ops", "hello")


async def test_a_corrupted_database_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "nw.db"
    async with await SqliteStore.open(path) as store:
        for i in range(50):
            await put(store, art(f"Story number {i}", "words " * 200))
    con = sqlite3.connect(path)
    page = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    data = bytearray(path.read_bytes())
    assert len(data) > 4 * page
    data[page:] = b"\xa5" * (len(data) - page)  # every page but the header's
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError) as caught:
        async with await SqliteStore.open(path) as store:
            await store.count_articles()
            await store.get_article("x" * 16)
    message = str(caught.value)
    assert message.startswith(f"the database {path} is corrupted (")
    assert message.endswith("); restore a backup or move it aside")
    assert "\n" not in message


async def test_an_unusable_path_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match=r"cannot create the folder .*file/sub"):
        await SqliteStore.open(blocker / "sub" / "nw.db")
    with pytest.raises(StoreError, match="is a directory, not a newswatch database"):
        await SqliteStore.open(tmp_path)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("beside", "kind", "message"), [
    (".lock", "pipe", r"the lock file .*nw\.db\.lock is not a regular file"),
    ("-wal", "folder", r"nw\.db-wal, the database's wal file, is not a regular file"),
    ("-shm", "folder", r"nw\.db-shm, the database's shm file, is not a regular file"),
    ("-wal", "pipe", r"nw\.db-wal, the database's wal file, is not a regular file"),
])
async def test_a_file_beside_the_database_that_is_not_a_file_is_named(
        tmp_path: Path, beside: str, kind: str, message: str) -> None:
    """A pipe for the lock file failed with a bare "Invalid argument"; a folder or a pipe for
    SQLite's own files with "unable to open database file", "disk I/O error" or "readonly
    database", none naming the file."""
    path = tmp_path / "nw.db"
    async with await SqliteStore.open(path) as store:
        await put(store, art("Kept"))
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"nw.db{suffix}").unlink(missing_ok=True)
    odd = tmp_path / f"nw.db{beside}"
    odd.unlink(missing_ok=True)
    if kind == "pipe":
        os.mkfifo(odd)
    else:
        odd.mkdir()
    with pytest.raises(StoreError, match=message):
        await SqliteStore.open(path)
    if kind == "pipe":
        odd.unlink()
    else:
        odd.rmdir()
    async with await SqliteStore.open(path) as store:  # nothing was lost
        assert await store.count_articles() == 1


@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
async def test_a_new_database_beside_a_side_file_that_is_a_folder_is_named_and_not_made(
        tmp_path: Path, suffix: str) -> None:
    """A brand-new database whose ``-wal`` name was a folder failed as "disk I/O error" and
    left an empty database file (the side files were checked only when it existed)."""
    path = tmp_path / "nw.db"
    (tmp_path / f"nw.db{suffix}").mkdir()
    with pytest.raises(StoreError, match=rf"nw\.db{suffix}, the database's {suffix[1:]} "
                                         "file, is not a regular file"):
        await SqliteStore.open(path)
    assert not path.exists()
    (tmp_path / f"nw.db{suffix}").rmdir()
    async with await SqliteStore.open(path) as store:
        await put(store, art("Kept"))
        assert await store.count_articles() == 1


@pytest.mark.timeout(60)
async def test_a_device_or_a_pipe_is_refused_before_anything_is_made_beside_it(
        tmp_path: Path) -> None:
    """``[storage] path = "/dev/null"`` read as an empty database: newswatch made
    /dev/null.lock and /dev/null-journal in /dev, then failed with "disk I/O error". A FIFO
    (here, beside a link to /dev/null) is refused alike, without waiting on it."""
    fifo = tmp_path / "pipe.db"
    os.mkfifo(fifo)
    null = tmp_path / "null.db"
    null.symlink_to("/dev/null")
    in_dev = {p for p in os.listdir("/dev") if p.startswith("null")}
    for path in (fifo, null):
        with pytest.raises(StoreError, match=r"is not a regular file .*not a newswatch database"):
            await SqliteStore.open(path)
    assert sorted(os.listdir(tmp_path)) == ["null.db", "pipe.db"]
    assert {p for p in os.listdir("/dev") if p.startswith("null")} == in_dev


def test_a_lock_file_that_cannot_be_written_is_named_and_let_go(tmp_path: Path) -> None:
    """A full disk (here: a file size limit of 0, which fails every write as a full disk
    does) ended every writer with "No space left on device", naming no file, and kept the
    lock. A process of its own: the limit would bind the test run."""
    script = f"""
import asyncio, fcntl, os, resource, signal
from watchers.errors import StoreError
from watchers.store import SqliteStore
from watchers.store.sqlite._db import RELEASE_ROWS
path = {str(tmp_path / "nw.db")!r}
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
try:
    asyncio.run(SqliteStore.open(path))
except StoreError as exc:
    print(exc)
fd = os.open(path + ".lock", os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # let go: it can be taken
print("free")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.stdout.splitlines() == [
        f"cannot write the lock file {tmp_path / 'nw.db.lock'}: File too large", "free"], (
        done.stdout + done.stderr)


@pytest.mark.parametrize("through", ["the file", "a symlink"])
async def test_a_store_on_a_read_only_file_system_says_so_when_read(tmp_path: Path,
                                                                    through: str) -> None:
    """Reading a WAL database needs its -shm file beside it, which a read-only mount cannot
    take: the reason is named — also through a symlink from a writable folder, which said
    only "unable to open database file"."""
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only file system needs root")
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "nw.db"
    async with await SqliteStore.open(path) as store:
        await put(store, art("Written before the file system was made read-only"))
    link = tmp_path / "link.db"
    link.symlink_to(path)
    mounted = await asyncio.to_thread(subprocess.run, ["mount", "--bind", str(folder),
                                                       str(folder)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot bind-mount here: {mounted.stderr.decode().strip()}")
    try:
        await asyncio.to_thread(subprocess.run, ["mount", "-o", "remount,ro,bind",
                                                 str(folder)], check=True)
        asked = path if through == "the file" else link
        with pytest.raises(StoreError) as caught:
            await SqliteStore.open(asked, readonly=True)
        assert str(caught.value) == (
            f"cannot read the database {asked}: it lies on a read-only file system, and SQLite "
            f"must create {path}-shm beside it to read it; copy the database (with its -wal "
            "file, if any) to a writable place and read it there")
    finally:
        await asyncio.to_thread(subprocess.run, ["umount", str(folder)], check=True)


async def test_a_store_in_an_immutable_folder_says_why_it_cannot_be_read(
        tmp_path: Path) -> None:
    """A folder made immutable (``chattr +i``, which binds root too) cannot take the -shm file
    a WAL database is read with: SQLite's "unable to open database file" was all it said."""
    folder = tmp_path / "frozen"
    folder.mkdir()
    path = folder / "nw.db"
    async with await SqliteStore.open(path) as store:
        await put(store, art("Written before the folder was made immutable"))
    made = await asyncio.to_thread(subprocess.run, ["chattr", "+i", str(folder)],
                                   capture_output=True)
    if made.returncode:
        pytest.skip(f"cannot make a folder immutable here: {made.stderr.decode().strip()}")
    try:
        with pytest.raises(StoreError) as caught:
            await SqliteStore.open(path, readonly=True)
    finally:
        await asyncio.to_thread(subprocess.run, ["chattr", "-i", str(folder)], check=True)
    assert str(caught.value) == (
        f"cannot read the database {path}: SQLite must create {path}-shm beside it to read "
        "it, and it could not be created there (the folder is read-only to this process); "
        "run while newswatch runs (it keeps that file), or copy the database (with its -wal "
        "file, if any) to a writable place and read it there")
    async with await SqliteStore.open(path, readonly=True) as store:  # and once it is not
        assert await store.count_articles() == 1


async def test_a_full_disk_is_named_when_the_store_is_read(tmp_path: Path) -> None:
    """Reading needs the -shm file, which a full file system cannot take: SQLite's "disk I/O
    error" named no cause."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = await asyncio.to_thread(subprocess.run, ["mount", "-t", "tmpfs", "-o", "size=1m",
                                                       "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        path = folder / "nw.db"
        async with await SqliteStore.open(path) as store:
            await put(store, art("Written before the disk filled up"))
        fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * 4096)
        finally:
            os.close(fd)
        with pytest.raises(StoreError, match=r"disk I/O error \(the file system holding it is "
                                             r"full\)"):
            await SqliteStore.open(path, readonly=True)
    finally:
        await asyncio.to_thread(subprocess.run, ["umount", str(folder)], check=True)


@pytest.fixture
def short_busy_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    from watchers.store.sqlite import _db

    monkeypatch.setattr(_db, "BUSY_TIMEOUT_S", 1)
    monkeypatch.setattr(_db, "SAY_WAITING_AFTER_S", 0.2)


async def test_a_write_that_waits_for_another_process_says_so_and_loses_nothing(
        tmp_path: Path, short_busy_wait: None, caplog: pytest.LogCaptureFixture) -> None:
    """Another program holding the database's write lock (an sqlite3 shell, a backup) made a
    write wait the whole busy timeout in silence, then fail. It says that it waits, and for
    how long; the error names the lock; the write goes through once the lock is let go."""
    path = tmp_path / "nw.db"
    async with await SqliteStore.open(path) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with caplog.at_level("WARNING", logger="watchers.store"), pytest.raises(
                    StoreError, match=r"stayed locked by another process for 1 s"):
                await put(store, art("Troops mass near the border"))
            assert "is locked by another process: waiting up to 1 s for it" in caplog.text
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert await put(store, art("Troops mass near the border")) is not None
        assert await store.count_articles() == 1


async def test_a_stop_while_waiting_for_another_process_ends_the_wait_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Ctrl-C while a write waited for another process's lock: "stopping", then the rest of
    SQLite's half-minute busy wait, which the connection's thread could not cut short. The
    wait is now the event loop's, between short tries: the stop ends it, says so, and the
    store works on once the lock is let go."""
    from watchers.store.sqlite import _db

    assert _db.BUSY_TIMEOUT_S >= 30  # the real wait, which the timeout below must not allow
    monkeypatch.setattr(_db, "SAY_WAITING_AFTER_S", 0.2)
    path = tmp_path / "nw.db"
    async with await SqliteStore.open(path) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with caplog.at_level("WARNING", logger="watchers.store"):
                task = asyncio.create_task(put(store, art("Troops mass near the border")))
                await asyncio.sleep(0.5)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    async with asyncio.timeout(10):  # it waited out the 30 s
                        await task
            assert "is locked by another process: waiting up to 30 s for it" in caplog.text
            assert "stopped waiting for the database" in caplog.text
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert await put(store, art("Troops mass near the border")) is not None


async def test_a_large_read_is_not_kept_alive_by_the_connections_thread(tmp_path: Path) -> None:
    # The connection's thread (aiosqlite's) kept its last result until its next call: the
    # live stories read at start-up stayed in memory, and were freed in the first poll.
    store = await SqliteStore.open(tmp_path / "nw.db")
    try:
        series = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
                  "SELECT x, 'row ' || x FROM c")
        rows = await store._db.fetchall(series, (RELEASE_ROWS,))
        assert len(rows) == RELEASE_ROWS and rows[-1] == (RELEASE_ROWS, f"row {RELEASE_ROWS}")
        # Held by the list and the call's argument alone: no other list holds the rows.
        held = sys.getrefcount(rows[0])
        assert held == 2
        few = await store._db.fetchall(series, (3,))
        assert few == [(1, "row 1"), (2, "row 2"), (3, "row 3")]
    finally:
        await store.aclose()


@pytest.mark.parametrize("how", ["removed", "removed with -shm", "replaced"])
async def test_a_removed_wal_file_stops_writes_and_the_close_keeps_what_was_committed(
        tmp_path: Path, how: str) -> None:
    """Commits went on into the unlinked -wal file, which a crash then lost whole (the next
    start alerted again); stopped at the next write, the close copies it into the database."""
    path = tmp_path / "nw.db"
    wal = Path(f"{path}-wal")
    async with await SqliteStore.open(path) as store:
        for i in range(3):
            await put(store, art(f"Before {i}"))
        if how == "replaced":
            os.replace(wal, tmp_path / "aside")
            os.close(os.open(wal, os.O_CREAT | os.O_WRONLY))
        else:
            os.remove(wal)
            if how == "removed with -shm":
                os.remove(f"{path}-shm")
        with pytest.raises(StoreError) as caught:
            await put(store, art("After"))
        assert str(caught.value) == (
            f"the database's -wal file {wal} was removed or replaced while newswatch was "
            "running; stopping, so that nothing more is written where a crash would lose it")
        with pytest.raises(StoreError, match="-wal file"):  # every later write too
            await store.add_notice("ops", "hello")
    con = sqlite3.connect(path)
    try:
        titles = sorted(r[0] for r in con.execute("SELECT title FROM articles"))
    finally:
        con.close()
    assert titles == ["Before 0", "Before 1", "Before 2"]


WAL_TOUCHER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
conn.execute("SELECT count(*) FROM articles").fetchone()
conn.close()
conn = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
conn.execute("SELECT count(*) FROM articles").fetchone()
conn.close()
"""


async def test_the_wal_file_stays_through_checkpoints_and_readers(tmp_path: Path) -> None:
    """What the -wal check relies on: while the store is open SQLite keeps its -wal file (a
    checkpoint, even TRUNCATE, empties it; a reader's close does not remove it), so no write
    is stopped for them."""
    path = tmp_path / "nw.db"
    async with await SqliteStore.open(path) as store:
        await put(store, art("First"))
        before = os.stat(f"{path}-wal").st_ino
        for _ in range(2):
            toucher = await asyncio.create_subprocess_exec(sys.executable, "-c", WAL_TOUCHER,
                                                           str(path))
            assert await asyncio.wait_for(toucher.wait(), 60) == 0
        assert os.stat(f"{path}-wal").st_ino == before
        async with await SqliteStore.open(path, lock=False) as other:
            assert await other.count_articles() == 1
        await put(store, art("Second"))
        assert await store.count_articles() == 2


async def test_a_second_writer_beside_one_whose_lock_file_was_removed_names_it_and_its_pid(
        tmp_path: Path) -> None:
    """It blamed a hard link there was none of, gave no pid, and left its own pid in the lock
    file it made: the next refusal named it as the holder."""
    path = tmp_path / "nw.db"
    async with other_process(path) as proc:
        os.remove(f"{path}.lock")
        with pytest.raises(StoreError) as caught:
            await SqliteStore.open(path)
        assert str(caught.value) == (
            f"another newswatch process (pid {proc.pid}) holds the database {path}; its lock "
            f"file {path}.lock was removed or replaced while it ran: stop it first (read-only "
            "commands such as search and check do not need to)")
        assert Path(f"{path}.lock").read_text() == ""  # noqa: ASYNC240
