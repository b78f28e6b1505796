"""What the scripts that count instructions under callgrind share: running one of their own
child processes under it and reading the instructions it collected."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys


def instructions(script: str, child: str, *options: str) -> int:
    """The instructions callgrind collects running ``script --child CHILD`` (``options`` go to
    valgrind: a ``--toggle-collect``, say). `PYTHONHASHSEED=0` and one OpenBLAS thread (its
    idle threads otherwise add a random 20,000-90,000 instructions an article) keep the runs
    alike."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}
    cmd = ["valgrind", "--tool=callgrind", *options, "--callgrind-out-file=/dev/null",
           sys.executable, script, "--child", child]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    got = re.search(r"Collected : ([\d,]+)", done.stderr)
    if done.returncode != 0 or got is None:
        raise SystemExit(f"callgrind run failed ({' '.join(cmd)}):\n{done.stderr[-2000:]}")
    return int(got.group(1).replace(",", ""))


def valgrind_missing(script: str) -> bool:
    """Whether valgrind is missing, said on stderr in ``script``'s name if so."""
    if shutil.which("valgrind") is not None:
        return False
    print(f"{script}: valgrind is not installed (apt install valgrind)", file=sys.stderr)
    return True
