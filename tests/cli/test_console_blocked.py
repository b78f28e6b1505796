"""`newswatch run --console` whose reader stopped reading (a paused pager, Ctrl-S on a
terminal), stopped from outside: a subprocess whose standard output is a small pipe the test
does not read until the process has ended, a real database, a folder of matching files."""

from __future__ import annotations

import array
import asyncio
import fcntl
import os
import random
import re
import signal
import sqlite3
import string
import subprocess
import sys
import termios
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.console import ConsoleSink
from tests.conftest import REPO
from watchers.config import parse_config
from watchers.engine import open_engine

EXE = [sys.executable, "-m", "bot"]

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not hasattr(fcntl, "F_SETPIPE_SZ"), reason="needs Linux's pipe sizes"),
]

# Many more cards than the pipe holds (about eight of them in its 4 KiB).
FILES = 60
# Seconds the process may take to stop: the stop waits up to 5 s for a send in flight.
STOP_WITHIN = 20.0


@pytest.fixture
def desk(tmp_path: Path) -> Path:
    (tmp_path / "config.toml").write_text("""
[storage]
path = "nw.db"
[channels]
alerts = 111111111111111111
[[sources]]
name = "desk"
type = "folder"
path = "desk"
every = "1s"
max_alerts_per_poll = 1000
[[rules]]
name = "troops"
query = "troops"
""")
    (tmp_path / "desk").mkdir()
    rnd = random.Random(5)

    def words(n: int) -> str:  # distinct articles, not one story told many times
        return " ".join("".join(rnd.choice(string.ascii_lowercase) for _ in range(7))
                        for _ in range(n))

    for i in range(FILES):
        (tmp_path / "desk" / f"f{i:03d}.txt").write_text(
            f"Troops report {i:05d} {words(3)}\n{words(40)} troops.\n")
    return tmp_path


def start(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``run --console`` writing into a pipe of 4 KiB; the pipe's reading end."""
    read, write = os.pipe()
    fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 4096)
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    env["PYTHONPATH"] = str(REPO)
    with open(workdir / "run.err", "wb") as err:
        proc = subprocess.Popen([*EXE, "run", "--console"], cwd=workdir, stdout=write,
                                stderr=err, env=env)
    os.close(write)
    return proc, read


def waiting(in_pipe: int) -> int:
    buf = array.array("i", [0])
    fcntl.ioctl(in_pipe, termios.FIONREAD, buf)
    return buf[0]


def wait_for(done: Callable[[], bool], what: str, proc: subprocess.Popen[bytes],
             workdir: Path, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not done():
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            err = (workdir / "run.err").read_text()
            raise AssertionError(f"{what}: not within {within:g} s; stderr:\n{err}")
        time.sleep(0.05)


def until_the_pipe_is_full(proc: subprocess.Popen[bytes], read: int, workdir: Path) -> None:
    """Wait until cards are written and the pipe takes no more: what is in it stays as it is
    (the process is stuck writing the next card, which does not fit)."""
    wait_for(lambda: waiting(read) > 0, "no card written", proc, workdir)
    seen = [waiting(read), time.monotonic()]

    def settled() -> bool:
        now = waiting(read)
        if now != seen[0]:
            seen[:] = [now, time.monotonic()]
        return time.monotonic() - seen[1] > 1.0

    wait_for(settled, "the pipe never filled", proc, workdir)
    assert proc.poll() is None, (workdir / "run.err").read_text()


def ended(proc: subprocess.Popen[bytes], workdir: Path, why: str) -> int:
    try:
        return proc.wait(timeout=STOP_WITHIN)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        err = (workdir / "run.err").read_text()
        raise AssertionError(f"{why}: still running {STOP_WITHIN:g} s later, its output "
                             f"not read; stderr:\n{err}") from None


def drained(read: int) -> str:
    """What the process wrote and nobody read, once it has ended."""
    out = b""
    with os.fdopen(read, "rb") as pipe:
        while chunk := pipe.read(65536):
            out += chunk
    return out.decode(errors="replace")


def reports(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"report (\d{5})", text)}


def states(workdir: Path) -> dict[int, str]:
    """Each article's alert's state in the outbox, by its report number."""
    with sqlite3.connect(workdir / "nw.db") as conn:
        rows = conn.execute("SELECT a.title, o.state FROM outbox o "
                            "JOIN articles a ON a.id = o.article_id").fetchall()
    by_number: dict[int, str] = {}
    for title, state in rows:
        (number,) = reports(title)
        by_number[number] = state
    return by_number


def nothing_lost(workdir: Path, shown: str) -> None:
    """Every alert marked delivered was written in full, and what was not is printed by the
    next start."""
    left = states(workdir)
    assert set(left) == set(range(FILES)), sorted(left)
    delivered = {n for n, state in left.items() if state == "delivered"}
    assert delivered <= reports(shown), (
        f"marked delivered but never written: {sorted(delivered - reports(shown))}")
    assert len(delivered) < FILES, "every card fitted in the pipe: nothing was stuck"
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    again = subprocess.run([*EXE, "run", "--once", "--console"], cwd=workdir,
                           capture_output=True, text=True, timeout=60,
                           env={**env, "PYTHONPATH": str(REPO)})
    assert again.returncode == 0, again.stderr
    missing = set(range(FILES)) - delivered - reports(again.stdout)
    assert not missing, f"not delivered by the first run nor printed by the next: {missing}"
    assert set(states(workdir).values()) == {"delivered"}, again.stderr


def test_a_stop_while_the_reader_has_stopped_reading_ends_it(desk: Path) -> None:
    """A card's write into a full pipe blocked the event loop itself: SIGTERM's handler never
    ran, nothing was said, and the process went on (polls, webhooks and all stuck) until the
    reader read again. Now the write waits on a thread of its own: the stop goes on, says
    "stopping" and ends with 0; the card it could not write is not taken as delivered, and
    the next start prints it and the rest."""
    proc, read = start(desk)
    until_the_pipe_is_full(proc, read, desk)
    proc.send_signal(signal.SIGTERM)
    status = ended(proc, desk, "one SIGTERM")
    err = (desk / "run.err").read_text()
    assert status == 0, err
    assert "newswatch: stopping\n" in err and "Traceback" not in err, err
    nothing_lost(desk, drained(read))


def test_a_second_signal_ends_it_at_once_while_a_write_is_stuck(desk: Path) -> None:
    """The second signal, meant to end the process at once, did nothing either while a card's
    write was stuck. Now it ends it with 130 and its line, the stuck write notwithstanding;
    what was not written waits in the outbox for the next start."""
    proc, read = start(desk)
    until_the_pipe_is_full(proc, read, desk)
    proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "newswatch: stopping\n" in (desk / "run.err").read_text(),
             "SIGTERM's \"stopping\"", proc, desk, within=STOP_WITHIN)
    proc.send_signal(signal.SIGTERM)
    status = ended(proc, desk, "a second SIGTERM")
    err = (desk / "run.err").read_text()
    assert status == 130, err
    assert "newswatch: stopping now (second signal)\n" in err and "Traceback" not in err, err
    nothing_lost(desk, drained(read))


@pytest.mark.timeout(120)
async def test_a_card_whose_write_outlasted_the_send_timeout_is_printed_once(
        desk: Path) -> None:
    """A card's write that outlasts the send timeout (a pager paused for minutes) is still
    under way when its alert is tried again. The new try waits for that write, or takes it
    as done once it ended, instead of writing the card a second time when the reader reads
    again. (Before, the write blocked the event loop itself: no timeout, nothing else ran.)"""
    read, write = os.pipe()
    fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 4096)
    shown: list[str] = []
    reader = threading.Thread(target=lambda: shown.append(drained(read)), daemon=True)
    reading = threading.Lock()

    def read_again() -> None:
        with reading:
            if reader.ident is None:  # not started yet
                reader.start()

    # Should the write hold the event loop (and this test's waiting with it), the reader
    # reads again after a while all the same, so that the test ends and says so.
    watchdog = threading.Timer(STOP_WITHIN, read_again)
    watchdog.daemon = True
    with (desk / "config.toml").open("rb") as f:
        cfg = parse_config(tomllib.load(f), base_dir=desk)
    with os.fdopen(write, "w", encoding="utf-8") as out:
        async with open_engine(cfg, start=False,
                               default_sink=ConsoleSink(out, ansi=False)) as engine:
            engine.only_known_routes_to_default_sink()
            engine.delivery.send_timeout = 0.5
            engine.delivery.base_backoff = 0.05
            engine.delivery.max_backoff = 0.2
            engine.delivery.poll_interval = 0.1
            watchdog.start()
            await engine.start()
            for _ in range(1200):
                rows = await engine.store.alerts()
                timed_out = any("did not answer" in (r.reason or "") for r in rows)
                if timed_out or reader.ident is not None:
                    break
                await asyncio.sleep(0.05)
            watchdog.cancel()
            assert reader.ident is None, ("the card's write into the full pipe held the event "
                                          "loop: the reader had to read again to end it")
            assert timed_out, f"no send timed out: {[(r.state, r.reason) for r in rows]}"
            read_again()  # the reader reads again
            for _ in range(1200):
                rows = await engine.store.alerts()
                if len(rows) == FILES and all(r.state == "delivered" for r in rows):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"not all delivered: {Counter(r.state for r in rows)}")
            await engine.stop()
    reader.join(timeout=60)
    counts = Counter(int(n) for n in re.findall(r"report (\d{5})", "".join(shown)))
    assert set(counts) == set(range(FILES)), sorted(counts)
    twice = {n: c for n, c in counts.items() if c > 1}
    assert not twice, f"cards printed more than once (report: times): {twice}"
