"""Driving ``newswatch run`` as a real process around a digest send: a store whose alerts on a
digest route fell due while newswatch was stopped, the config that makes the route a digest
route on the Discord API emulator, and starting, killing and stopping the process.

Every wait here is bounded; a process started through :class:`Newswatch` is killed when the
block exits, whatever happened inside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.bot.conftest import TOKEN
from tests.fakes.discord_emulator import DiscordEmulator
from watchers.config import RuleConfig
from watchers.models import Article, Hit, Match
from watchers.rules.lookup import index_terms
from watchers.store import SqliteStore
from watchers.store.base import ArticleRecord, OutboxEntry

__all__ = ["ROUTE", "Newswatch", "ScheduledAlert", "integrity", "newswatch", "outbox_states",
           "schedule_due_alerts", "until", "write_config"]

ROUTE = "alerts"
RULE = RuleConfig(name="troops", query="troops")


@dataclass(frozen=True)
class ScheduledAlert:
    row_id: int
    title: str
    url: str


async def schedule_due_alerts(db: Path, n: int, *, overdue: timedelta = timedelta(hours=2)
                              ) -> list[ScheduledAlert]:
    """Store ``n`` matched articles whose alerts on the digest route are ``scheduled`` for a
    digest that fell due ``overdue`` ago, as if it came while newswatch was stopped.

    Titles are long and distinct (each its own digest line, no stories), so a few dozen of them
    need more than one digest message."""
    written = datetime.now(UTC) - overdue - timedelta(hours=1)
    records = []
    for i in range(n):
        # no markdown characters: the digest shows the title as written
        title = (f"Troops report {i:03d} says a convoy was seen moving along the river road "
                 f"before dawn, officials say, while residents of district {i} describe the night")
        article = Article(title=title, text=f"{title}. Details follow in the body.",
                          source="wire", url=f"https://news.example/digest/{i:03d}",
                          published=written)
        hit = Hit(term="troops", field="title", start=0, end=6, text=title[:6])
        records.append(ArticleRecord(
            article, [Match(rule=RULE.name, article_id=article.id, score=1.0, hits=(hit,))],
            [OutboxEntry(ROUTE, (RULE,))], index_terms(article.title, article.text)))
    store = await SqliteStore.open(db)
    try:
        stored = await store.record_many(records, at=written)
        if any(a is None for a in stored):
            raise AssertionError("an article of the prepared digest was taken for a duplicate")
        rows = await store.alerts(kind="alert")
        if len(rows) != n:
            raise AssertionError(f"expected {n} alert rows, the store wrote {len(rows)}")
        by_article = {a.id: a for a in stored if a is not None}
        out = []
        for row in rows:
            await store.schedule(row.id, datetime.now(UTC) - overdue, "digest")
            article = by_article[row.article_id or ""]
            out.append(ScheduledAlert(row.id, article.title, article.url or ""))
        return out
    finally:
        await store.aclose()


def write_config(workdir: Path, emu: DiscordEmulator) -> Path:
    """``config.toml`` for ``newswatch run``: the alerts route is an hourly digest route on the
    emulator's #alerts; an empty folder source keeps the watch side idle."""
    (workdir / "seeds").mkdir(exist_ok=True)
    q = json.dumps  # a TOML basic string or array is a JSON one for these values
    text = "\n".join([
        "[storage]",
        'path = "nw.db"',
        "[discord]",
        'token_env = "NEWSWATCH_TEST_TOKEN"',
        f"guild_ids = [{emu.guild.id}]",
        f"api_base = {q(emu.api_base)}",
        f"gateway_url = {q(emu.gateway_url)}",
        f"[channels.{ROUTE}]",
        f"target = {emu.channel(ROUTE).id}",
        'mode = "digest"',
        'digest_every = "1h"',
        "[[sources]]",
        'name = "seeds"',
        'type = "folder"',
        'path = "seeds"',
        'every = "1h"',
        "[[rules]]",
        f"name = {q(RULE.name)}",
        f"query = {q(RULE.query)}",
        f"channel = {q(ROUTE)}",
    ]) + "\n"
    path = workdir / "config.toml"
    path.write_text(text)
    return path


async def until(predicate: Callable[[], bool], within: float) -> bool:
    """Poll ``predicate`` until it holds or ``within`` seconds pass; returns its last value."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


def integrity(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def outbox_states(db: Path) -> dict[tuple[str, str], int]:
    """(kind, state) -> rows, read beside a running process (WAL lets a reader in)."""
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        rows = conn.execute("SELECT kind, state, count(*) FROM outbox GROUP BY kind, state")
        return {(str(k), str(s)): int(n) for k, s, n in rows.fetchall()}


class Newswatch:
    """``newswatch run -c config.toml`` in ``workdir``, its stderr appended to ``stderr.log``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.log = workdir / "stderr.log"
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self) -> asyncio.subprocess.Process:
        env = {**os.environ, "NEWSWATCH_TEST_TOKEN": TOKEN}
        with self.log.open("ab") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", "-c", "config.toml", cwd=self.workdir,
                env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=err)
        self.procs.append(proc)
        return proc

    async def kill(self, proc: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
        await proc.wait()

    async def stop(self, proc: asyncio.subprocess.Process, within: float = 20.0) -> int | None:
        """SIGINT, as a user stops it; the exit status, or None when it had to be killed."""
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        try:
            return await asyncio.wait_for(proc.wait(), within)
        except TimeoutError:
            await self.kill(proc)
            return None

    def stderr(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextlib.asynccontextmanager
async def newswatch(workdir: Path) -> AsyncIterator[Newswatch]:
    """A :class:`Newswatch` whose processes are all killed on exit (a failing test leaves none
    running)."""
    nw = Newswatch(workdir)
    try:
        yield nw
    finally:
        for proc in nw.procs:
            if proc.returncode is None:
                await nw.kill(proc)
