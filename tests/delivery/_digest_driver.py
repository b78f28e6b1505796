"""Driving ``newswatch run`` as a real process around a digest send: a store whose alerts on a
digest route fell due while newswatch was stopped, the config that makes the route a digest
route on the Discord API emulator, and starting, killing and stopping the process. The store is
an SQLite file or a PostgreSQL database (:mod:`tests.delivery.backends` says which, and reads
it).

Every wait here is bounded; a process started through :class:`Newswatch` is killed when the
block exits, whatever happened inside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.bot.conftest import TOKEN
from tests.delivery.articles import MESSAGES
from tests.fakes.discord_emulator import DiscordEmulator, Fault, RecordedRequest
from watchers.config import RuleConfig
from watchers.models import Article, Hit, Match
from watchers.rules.lookup import index_terms
from watchers.store.base import ArticleRecord, OutboxEntry
from watchers.store.open import open_store

__all__ = ["ROUTE", "Newswatch", "ScheduledAlert", "newswatch", "schedule_due_alerts", "until",
           "write_config"]

ROUTE = "alerts"
RULE = RuleConfig(name="troops", query="troops")


@dataclass(frozen=True)
class ScheduledAlert:
    row_id: int
    title: str
    url: str


async def schedule_due_alerts(db: str | Path, n: int, *,
                              overdue: timedelta = timedelta(hours=2)) -> list[ScheduledAlert]:
    """Store ``n`` matched articles whose alerts on the digest route are ``scheduled`` for a
    digest that fell due ``overdue`` ago, as if it came while newswatch was stopped.

    Titles are long and distinct (each its own digest line, no stories), so a few dozen of them
    need more than one digest message. ``db``: an SQLite file or a PostgreSQL URL."""
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
    store = await open_store(db)
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


def write_config(workdir: Path, emu: DiscordEmulator,
                 storage: Mapping[str, str] | None = None) -> Path:
    """``config.toml`` for ``newswatch run``: the alerts route is an hourly digest route on the
    emulator's #alerts; an empty folder source keeps the watch side idle. ``storage``: the
    ``[storage]`` table (default: ``nw.db`` in ``workdir``)."""
    (workdir / "seeds").mkdir(exist_ok=True)
    q = json.dumps  # a TOML basic string or array is a JSON one for these values
    text = "\n".join([
        "[storage]",
        *(f"{key} = {q(value)}" for key, value in (storage or {"path": "nw.db"}).items()),
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


async def _holds(predicate: Callable[[], bool | Awaitable[bool]]) -> bool:
    value = predicate()
    return bool(await value) if inspect.isawaitable(value) else bool(value)


async def until(predicate: Callable[[], bool | Awaitable[bool]], within: float) -> bool:
    """Poll ``predicate`` (plain or async) until it holds or ``within`` seconds pass; returns
    its last value."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await _holds(predicate):
            return True
        await asyncio.sleep(0.02)
    return await _holds(predicate)


class Newswatch:
    """``newswatch run -c config.toml`` in ``workdir``, its stderr appended to ``stderr.log``;
    ``env``: variables added to its environment (the store's URL)."""

    def __init__(self, workdir: Path, env: Mapping[str, str] | None = None) -> None:
        self.workdir = workdir
        self.env = dict(env or {})
        self.log = workdir / "stderr.log"
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self) -> asyncio.subprocess.Process:
        env = {**os.environ, "NEWSWATCH_TEST_TOKEN": TOKEN, **self.env}
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
async def newswatch(workdir: Path, env: Mapping[str, str] | None = None
                    ) -> AsyncIterator[Newswatch]:
    """A :class:`Newswatch` whose processes are all killed on exit (a failing test leaves none
    running)."""
    nw = Newswatch(workdir, env)
    try:
        yield nw
    finally:
        for proc in nw.procs:
            if proc.returncode is None:
                await nw.kill(proc)


HOLD = 3.0  # seconds the emulator holds the chosen POST: the window a kill lands in


def channel_posts(emu: DiscordEmulator, channel: int) -> list[RecordedRequest]:
    """Every message POST to ``channel`` so far, in order."""
    return [r for r in emu.requests_for(MESSAGES) if r.params.get("channel_id") == str(channel)]


async def kill_while_held(emu: DiscordEmulator, nw: Newswatch, channel: int, index: int,
                          after_processing: bool) -> RecordedRequest:
    """Start ``nw`` with the POSTs to ``channel`` before the ``index``-th let through and that
    one held by Discord for :data:`HOLD` seconds (its message created already when
    ``after_processing``, else not yet), kill -9 it while the POST is held, and check that
    premise: the POST held, the messages before it (and it, if created) in the channel.
    Returns the held request (processed later, when it was not yet)."""
    for _ in range(index):  # earlier posts go through as usual (faults apply in order)
        emu.inject(MESSAGES, Fault.slow(0.0))
    emu.inject(MESSAGES, Fault.slow(HOLD, after_processing=after_processing))
    first = await nw.start()
    reached = await until(lambda: len(channel_posts(emu, channel)) > index, 20)
    assert reached, f"no POST reached Discord\n{nw.stderr()[-3000:]}"
    held = channel_posts(emu, channel)[index]
    in_window = held.status is None  # Discord still holds it: no answer went back
    await nw.kill(first)
    emu.clear_faults()
    assert in_window and held.fault == f"slow:{HOLD}", held
    assert len(emu.messages(channel)) == index + (1 if after_processing else 0)
    return held


async def restart_until(nw: Newswatch, outbox: Callable[[], Awaitable[Mapping[Any, int]]],
                        want: Mapping[Any, int], held: RecordedRequest,
                        after_processing: bool) -> int | None:
    """After :func:`kill_while_held`: start ``nw`` again, wait (20 s at most) until
    ``outbox()`` (rows by kind and state) reads ``want``, stop it and return its exit status.
    A POST held before Discord processed it is processed :data:`HOLD` seconds after it
    arrived (its handler outlives the killed client): a message it made then would be a
    duplicate that shows only now, so that is waited for too."""
    second = await nw.start()

    async def wanted() -> bool:
        return await outbox() == want

    settled = await until(wanted, 20)
    assert settled, f"{await outbox()}\n{nw.stderr()[-3000:]}"
    status = await nw.stop(second, within=10)
    if not after_processing:
        await until(lambda: held.status is not None, HOLD + 5)
    return status
