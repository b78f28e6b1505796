"""bench/_callgrind.py's window: only the work inside a child's window is counted, and a child
that ends outside it is named, not waited for; the benches' bad sizes and rounds are named."""

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
spin(1_000_000)  # before the window: not counted
with window():
    spin(inside)
spin(1_000_000)  # after it: not counted
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
    # The loops outside the window (20 times the one inside it) and the start-up are not
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


@pytest.mark.timeout(120)
def test_a_child_killed_before_it_reads_its_word_is_named_not_waited_for(tmp_path: Path) -> None:
    window_instructions = _window_instructions()
    script = tmp_path / "child.py"
    # Says it is ready, as window() does, then never opens its end of the pipe: a kill there.
    script.write_text(
        "import os, pathlib, time\n"
        "flag = pathlib.Path(os.environ['NEWSWATCH_CALLGRIND_WINDOW'])\n"
        "flag.with_suffix('.ready').touch()\n"
        "time.sleep(3)\n"
    )
    with pytest.raises(SystemExit, match="ended outside its window"):
        window_instructions(str(script), "x")


def test_bad_sizes_and_rounds_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    stories = bench_module("stories_callgrind")
    for live in ("1000,x", "-5", ""):
        assert stories.main(["--live", live]) == 2
        assert f"--live takes numbers of live stories, 0 or more, separated by commas " \
               f"(0,1000,100000), not {live!r}" in capsys.readouterr().err
    bench = bench_module("match_bench")
    for rounds in ("-1", "many"):
        with pytest.raises(SystemExit) as ended:
            bench.main(["--rounds", rounds])
        assert ended.value.code == 2
        assert f"argument --rounds: a number of rounds, 0 or more, not {rounds!r}" in \
            capsys.readouterr().err
