"""`newswatch run --console > log` on a disk that fills up and frees again: a subprocess whose
standard output is a file it may not write past a size (RLIMIT_FSIZE, set on the running
process from here; Python ignores SIGXFSZ, so a write past the limit fails with EFBIG as a
full disk fails with ENOSPC, and the first write that crosses it writes up to it and no
further), a real database, a folder of matching files. The limit is lifted from here as a
disk is freed. The log starts just short of the limit (the file is sparse up to there), so
that the first card is cut part way."""

from __future__ import annotations

import os
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO

EXE = [sys.executable, "-m", "bot"]

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="needs Linux's prlimit"),
]

FILES = 5
LIMIT = 64 * 2**20  # far past what the database grows to: only the log reaches it
ROOM = 300  # bytes the log takes before it is full: part of the first card
BAR = "─" * 78
WHAT = ["Troops", "Tanks"]  # with two routes, the tanks' go to the second
TITLE = r"^  \[(?:Troops|Tanks)\] report (\d{5})$"


@pytest.fixture(params=["one route", "two routes"])
def desk(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A folder's articles on one route, or on two, each route tried again on its own: the
    other route's card may come first once there is room, before the rest of the card cut
    short."""
    (tmp_path / "config.toml").write_text("""
[storage]
path = "nw.db"
[[sources]]
name = "desk"
type = "folder"
path = "desk"
every = "0.2s"
settle = "0s"
[[rules]]
name = "troops"
""" + ('query = "troops OR tanks"\n' if request.param == "one route" else """query = "troops"
channel = "alerts"
[[rules]]
name = "tanks"
query = "tanks"
channel = "wires"
"""))
    (tmp_path / "desk").mkdir()
    return tmp_path


class Run:
    """`run --console` writing to ``log`` from just short of LIMIT, which it may not pass."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
        env["PYTHONPATH"] = str(REPO)
        with open(workdir / "log", "wb") as log, open(workdir / "run.err", "wb") as err:
            log.seek(LIMIT - ROOM)  # the child shares the offset: it writes from there
            self.proc = subprocess.Popen([*EXE, "run", "--console"], cwd=workdir, stdout=log,
                                         stderr=err, env=env)
        self.hard = resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE)[1]
        # Before any card: the articles are written below, after the limit is set.
        resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE, (LIMIT, self.hard))
        for i in range(FILES):
            (workdir / "desk" / f"f{i}.txt").write_text(
                f"{WHAT[i % 2]} report {i:05d}\n"
                f"{WHAT[i % 2]} of report {i} crossed the river at dawn.\n")

    def err(self) -> str:
        return (self.workdir / "run.err").read_text()

    def wait_for(self, done: Callable[[], bool], what: str, within: float = 90.0) -> None:
        deadline = time.monotonic() + within
        while not done():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"{what}: not within {within:g} s; stderr:\n{self.err()}")
            time.sleep(0.1)

    def states(self) -> list[tuple[str, int, str | None]]:
        try:
            with sqlite3.connect(f"file:{self.workdir / 'nw.db'}?mode=ro", uri=True) as conn:
                return conn.execute("SELECT state, attempts, reason FROM outbox "
                                    "WHERE kind = 'alert'").fetchall()
        except sqlite3.OperationalError:  # not made yet, or busy a moment
            return []

    def refused(self) -> bool:
        """A card was refused, and refused again when tried again (a route's alerts wait
        behind the first that failed)."""
        return any(state != "delivered" and tries >= 2 and "File too large" in (why or "")
                   for state, tries, why in self.states())

    def all_delivered(self) -> bool:
        rows = self.states()
        return len(rows) == FILES and all(state == "delivered" for state, _, _ in rows)

    def free(self) -> None:
        """The disk has room again."""
        resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE, (self.hard, self.hard))

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"still running 30 s after SIGTERM:\n{self.err()}") from None

    def log(self) -> str:
        with open(self.workdir / "log", "rb") as log:
            log.seek(LIMIT - ROOM)
            return log.read().decode()


def refused_then_freed(workdir: Path) -> Run:
    run = Run(workdir)
    run.wait_for(run.refused, "a card refused twice by the full disk")
    run.free()
    run.wait_for(run.all_delivered, "every card delivered once the disk had room")
    return run


def test_a_card_cut_short_by_a_full_disk_is_finished_not_printed_again(desk: Path) -> None:
    """The first card's write filled the disk part way; the rest failed, and the retry wrote
    the whole card again once there was room: the log held the card cut short (its last line
    running into the next card's rule) and then the card whole. Now the retry writes only
    what was not written, before anything else: each card is in the log once, whole."""
    run = refused_then_freed(desk)
    run.stop()
    text = run.log()
    titles = Counter(re.findall(TITLE, text, flags=re.M))
    assert titles == Counter({f"{i:05d}": 1 for i in range(FILES)}), text
    cards = text.split(BAR + "\n")
    assert cards[0] == "" and len(cards) == FILES + 1, text
    for card in cards[1:]:
        lines = card.splitlines()
        assert lines[0] in ("▶ troops  [medium]", "▶ tanks  [medium]"), card
        assert "─" not in card, card
        assert len(re.findall(TITLE, card, flags=re.M)) == 1, card
        assert card.endswith("\n") and "\n\n" not in card, card


def test_run_whose_output_failed_and_recovered_ends_with_0(desk: Path) -> None:
    """`run` ended with 1 and "could not write the output to standard output: File too
    large" although the disk had room again and every card refused was written after all.
    Now a failed write that a later write of the same card made good is not a failure of
    the command: it stops with 0 and says nothing of its output."""
    run = refused_then_freed(desk)
    status = run.stop()
    err = run.err()
    assert status == 0, err
    assert "standard output" not in err and "Traceback" not in err, err


def test_run_whose_output_never_recovered_still_ends_with_1(desk: Path) -> None:
    """A disk that stayed full to the end: the cards never arrived, and `run` still ends
    with 1 and says so."""
    run = Run(desk)
    run.wait_for(run.refused, "a card refused twice by the full disk")
    status = run.stop()
    err = run.err()
    assert status == 1, err
    said = [line for line in err.splitlines() if "standard output" in line]
    assert said == ["newswatch: could not write the output to standard output: "
                    "File too large"], err
    assert "Traceback" not in err, err
