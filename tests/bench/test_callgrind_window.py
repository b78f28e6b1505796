"""bench/_callgrind.py's window: only the work inside a child's window is counted."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.bench._bench import bench_module
from tests.conftest import REPO

CHILD = """
import sys
sys.path.insert(0, {bench!r})
from _callgrind import window

def spin(n):
    total = 0
    for i in range(n):
        total += i
    return total

inside = int(sys.argv[2])
spin(3_000_000)  # before the window: not counted
with window():
    spin(inside)
spin(3_000_000)  # after it: not counted
"""


def _window_instructions() -> Callable[[str, str], int]:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        pytest.skip("valgrind is not installed (apt install valgrind)")
    count: Callable[[str, str], int] = bench_module("_callgrind").window_instructions
    return count


def test_only_the_window_is_counted(tmp_path: Path) -> None:
    window_instructions = _window_instructions()
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(bench=str(REPO / "bench")))
    empty = window_instructions(str(script), "0")
    full = window_instructions(str(script), "100000")
    # The loops outside the window (60 times the one inside it) and the start-up are not
    # counted: an empty window costs next to nothing, and each turn of the loop inside a few
    # hundred instructions.
    assert empty < 1_000_000
    assert 20 < (full - empty) / 100_000 < 2_000


def test_a_child_that_ends_before_its_window_is_named(tmp_path: Path) -> None:
    window_instructions = _window_instructions()
    script = tmp_path / "child.py"
    script.write_text("import sys\nsys.exit('no window here')\n")
    with pytest.raises(SystemExit, match="ended outside its window"):
        window_instructions(str(script), "x")
