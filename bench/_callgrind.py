"""What the scripts that count instructions under callgrind share: running one of their own
child processes under it and reading the instructions it collected."""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# The environment variable that names a windowed child's flag files (see window).
_WINDOW = "NEWSWATCH_CALLGRIND_WINDOW"


def _env() -> dict[str, str]:
    """`PYTHONHASHSEED=0` and one OpenBLAS thread (its idle threads otherwise add a random
    20,000-90,000 instructions an article) keep the runs alike."""
    return {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}


def _collected(cmd: list[str], returncode: int, stderr: str) -> int:
    got = re.search(r"Collected : ([\d,]+)", stderr)
    if returncode != 0 or got is None:
        raise SystemExit(f"callgrind run failed ({' '.join(cmd)}):\n{stderr[-2000:]}")
    return int(got.group(1).replace(",", ""))


def instructions(script: str, child: str, *options: str) -> int:
    """The instructions callgrind collects running ``script --child CHILD`` (``options`` go to
    valgrind: a ``--toggle-collect``, say)."""
    cmd = ["valgrind", "--tool=callgrind", *options, "--callgrind-out-file=/dev/null",
           sys.executable, script, "--child", child]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, check=False)
    return _collected(cmd, done.returncode, done.stderr)


def window_instructions(script: str, child: str) -> int:
    """The instructions of ``script --child CHILD`` inside its :func:`window` alone. The child
    runs under callgrind without instrumentation (several times faster than with it) until it
    opens the window; instrumentation is switched on (``callgrind_control -i on``) for the
    window and off after it. While it is switched, the child waits in a read of a named pipe,
    which runs no instruction of its own."""
    with tempfile.TemporaryDirectory() as tmp:
        flag = Path(tmp) / "window"
        for switch in ("on", "off"):
            os.mkfifo(flag.with_suffix(f".{switch}"))
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
               "--callgrind-out-file=/dev/null", sys.executable, script, "--child", child]
        with (Path(tmp) / "stderr").open("w+") as err:
            proc = subprocess.Popen(cmd, env={**_env(), _WINDOW: str(flag)},
                                    stdout=subprocess.DEVNULL, stderr=err, text=True)
            switched = []
            try:
                for step, switch in (("ready", "on"), ("done", "off")):
                    while not flag.with_suffix(f".{step}").exists() and proc.poll() is None:
                        time.sleep(0.1)
                    if proc.poll() is not None:
                        break
                    told = subprocess.run(["callgrind_control", "-i", switch, str(proc.pid)],
                                          capture_output=True, text=True, check=False)
                    if told.returncode != 0:
                        raise SystemExit(f"callgrind_control -i {switch} failed: "
                                         f"{(told.stderr or told.stdout).strip()[-500:]}")
                    if not _tell(flag.with_suffix(f".{switch}"), proc):
                        break
                    switched.append(switch)
                proc.wait()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            err.seek(0)
            stderr = err.read()
            if switched != ["on", "off"]:
                raise SystemExit(f"callgrind run ended outside its window ({' '.join(cmd)}):\n"
                                 f"{stderr[-2000:]}")
            return _collected(cmd, proc.returncode, stderr)


def _tell(pipe: Path, proc: subprocess.Popen[str]) -> bool:
    """Give the child its word in the named pipe ``pipe``, where it waits (it said so first);
    False if it ended instead. Opened without blocking: a child killed before it opened its
    end would otherwise leave this waiting for ever."""
    while True:
        try:
            fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            if proc.poll() is not None:
                return False
            time.sleep(0.01)
            continue
        try:
            os.write(fd, b"1")
        finally:
            os.close(fd)
        return True


@contextmanager
def window() -> Iterator[None]:
    """In a child run by :func:`window_instructions`, what is counted; elsewhere nothing."""
    flag = os.environ.get(_WINDOW)
    if not flag:
        yield
        return
    path = Path(flag)
    on, off = str(path.with_suffix(".on")), str(path.with_suffix(".off"))
    path.with_suffix(".ready").touch()
    _wait(on)
    try:
        yield
    finally:
        path.with_suffix(".done").touch()
        _wait(off)


def _wait(pipe: str) -> None:
    """Wait for the parent's word in the named pipe ``pipe``: in the system calls alone."""
    fd = os.open(pipe, os.O_RDONLY)
    try:
        os.read(fd, 1)
    finally:
        os.close(fd)


def valgrind_missing(script: str) -> bool:
    """Whether valgrind is missing, said on stderr in ``script``'s name if so."""
    if shutil.which("valgrind") is not None:
        return False
    print(f"{script}: valgrind is not installed (apt install valgrind)", file=sys.stderr)
    return True
