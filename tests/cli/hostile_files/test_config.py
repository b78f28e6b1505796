"""Config files given with -c that are not config files: nested too deep for the TOML reader,
or endless (/dev/zero): one line naming the problem, exit 2, no traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cli.hostile_files._run import no_traceback, nw

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("command", [["check", "--live"], ["trend", "troops"], ["migrate"]])
def test_deeply_nested_toml_is_a_config_error_not_a_recursion_error(tmp_path: Path,
                                                                    command: list[str]) -> None:
    """600 nested arrays in the config: tomllib recurses past Python's limit and the
    command dies with `RecursionError: maximum recursion depth exceeded` and a traceback."""
    cfg = tmp_path / "deep.toml"
    cfg.write_text("a = " + "[" * 600 + "]" * 600 + "\n")
    r = nw([*command, "-c", str(cfg)], cwd=tmp_path)
    no_traceback(r)
    assert r.rc == 2, r.text


def test_config_that_never_ends_is_refused_not_read_forever(tmp_path: Path) -> None:
    """`-c /dev/zero` (a device, or any endless/huge file): the loader reads it whole. Unbounded
    it grew to 24 GB and was OOM-killed after 43 s; under a 2 GB address-space limit it dies
    with MemoryError and a traceback."""
    r = nw(["check", "-c", "/dev/zero"], cwd=tmp_path, timeout=40, mem_limit=2 * 1024**3)
    assert r.rc is not None, "still reading /dev/zero after 40 s"
    no_traceback(r)
    assert r.rc == 2, r.text


def test_config_that_is_a_named_pipe_is_refused_without_waiting(tmp_path: Path) -> None:
    """`-c` naming a FIFO blocked in open() until something wrote to it; `search` read it
    inside its event loop and ignored Ctrl-C."""
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    for command in (["check"], ["search", "troops"], ["run", "--once"]):
        r = nw([*command, "-c", str(fifo)], cwd=tmp_path, timeout=40)
        assert r.rc is not None, f"{command[0]} still waiting on the pipe after 40 s"
        no_traceback(r)
        assert r.rc == 2 and "a named pipe or socket, not a config file" in r.text, r.text
