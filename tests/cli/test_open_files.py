"""`newswatch run` under a low soft limit of open files (a `ulimit -n 64` shell): every feed
failed with "Too many open files", counted as the feed's own failure (toward its pause), and a
module imported as it went failed with a traceback naming its file. It raises the soft limit
as far as the hard one allows. The real entry point in a subprocess, against 80 feed servers on
127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sqlite3
import sys
from contextlib import AsyncExitStack, closing
from datetime import UTC, datetime
from pathlib import Path

from tests.fakes.feed_server import FeedServer, Route
from tests.service.test_identity import rss

FEEDS = 80
NOW = datetime.now(UTC)


def _low_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))


async def test_run_under_a_low_open_files_limit_polls_every_feed(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        servers = [await stack.enter_async_context(FeedServer()) for _ in range(FEEDS)]
        for i, server in enumerate(servers):
            server.set("/feed", Route(body=rss([(
                f"g{i}", f"https://news{i}.example/a", f"Troops move in sector {i}",
                f"Troops moved in sector {i} today.", NOW)])))
        lines = ['[storage]\npath = "nw.db"\n[fetch]\nallow_private = ["127.0.0.0/8"]\n'
                 '[[rules]]\nname = "troops"\nquery = "troops"\n']
        lines += [f'[[sources]]\nname = "f{i}"\ntype = "feed"\nurl = {json.dumps(s.url("/feed"))}\n'
                  for i, s in enumerate(servers)]
        (tmp_path / "config.toml").write_text("".join(lines))
        env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--once", "--console", "-c", "config.toml",
            cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, preexec_fn=_low_limit)
        try:
            _, err = await asyncio.wait_for(proc.communicate(), 120)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        said = err.decode()
        assert proc.returncode == 0, said[-2000:]
        assert "Too many open files" not in said and "Traceback" not in said, said[-2000:]
        assert all(server.hits("/feed") for server in servers)
        with closing(sqlite3.connect(tmp_path / "nw.db")) as db:  # each feed's first poll
            assert db.execute("SELECT count(*) FROM articles").fetchone() == (FEEDS,)
