"""Run the real `newswatch` command in a subprocess, bounded in time and memory, on a real
SQLite store made with `newswatch import`."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

NEWSWATCH = [sys.executable, "-m", "bot"]
REPO = Path(__file__).resolve().parents[3]


@dataclass
class Result:
    rc: int | None
    out: str
    err: str
    seconds: float

    @property
    def text(self) -> str:
        return self.out + self.err


def nw(args: Sequence[str], *, cwd: Path, timeout: float = 60, env: dict[str, str] | None = None,
       mem_limit: int | None = None, stdin: int | None = subprocess.DEVNULL) -> Result:
    """Run `newswatch ARGS` in ``cwd``; rc None when it had to be killed after ``timeout``."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    full_env.pop("DISCORD_TOKEN", None)

    def limit() -> None:
        if mem_limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (mem_limit, mem_limit))

    started = time.monotonic()
    p = subprocess.Popen([*NEWSWATCH, *args], cwd=cwd, env=full_env, stdin=stdin,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         errors="replace", preexec_fn=limit)
    try:
        out, err = p.communicate(timeout=timeout)
        rc: int | None = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        rc = None
    return Result(rc, out, err, time.monotonic() - started)


def write_articles(path: Path, n: int = 30) -> Path:
    lines = []
    for i in range(n):
        lines.append(json.dumps({
            "id": f"a{i}", "title": f"Troops gather near border number {i}",
            "text": f"Soldiers and troops were seen near the border, report {i} said. "
                    f"Sanctions on Russia discussed in Kyiv talks {i}.",
            "url": f"https://news.example/{i}", "date": f"2022-01-{1 + i % 28:02d}T10:00:00Z",
            "source": "wire"}))
    path.write_text("\n".join(lines) + "\n")
    return path


def make_store(tmp: Path, name: str = "nw.db", n: int = 30) -> Path:
    """A real SQLite store holding ``n`` imported articles, and its config file."""
    cfg = tmp / f"{name}.toml"
    cfg.write_text(f'[storage]\npath = "{name}"\n')
    r = nw(["import", str(write_articles(tmp / f"{name}.jsonl", n)), "-c", str(cfg)], cwd=tmp)
    assert r.rc == 0, r.text
    return cfg


def no_traceback(r: Result) -> None:
    assert "Traceback" not in r.err, f"traceback on stderr:\n{r.err[-2500:]}"
