"""Helpers for the role tests: a feed server that timestamps requests, RSS bodies, configs
for several processes on one PostgreSQL database, and waiting for a condition."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes.feed_server import FeedServer, Route, rss
from watchers.config import Config, parse_config

__all__ = ["OffsetClock", "TimedFeedServer", "config", "eventually", "feed_route", "rss", "toml"]


class TimedFeedServer(FeedServer):
    """A FeedServer that also keeps when (monotonic seconds) each path was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.times: dict[str, list[float]] = {}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.times.setdefault(request.path, []).append(time.monotonic())
        return await super()._handle(request)


class OffsetClock:
    """This machine's clock moved by ``offset`` (which a test may change while it runs): a
    process on a machine whose clock is off, passed to ``open_engine(clock=…)``."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


def feed_route(*items: tuple[str, str], delay: float = 0.0) -> Route:
    """A feed answering 304 to a client that has its current version."""
    body = rss(*items)
    return Route(body=body, etag=f'"{abs(hash(body))}"', delay=delay)


def settings(url: str, *, sources: list[dict[str, Any]], rules: list[dict[str, Any]]
             ) -> dict[str, Any]:
    return {
        "storage": {"url": url},
        "fetch": {"allow_private": ["127.0.0.1/32"]},
        "sources": sources,
        "rules": rules,
    }


def config(tmp_path: Path, url: str, *, sources: list[dict[str, Any]],
           rules: list[dict[str, Any]]) -> Config:
    return parse_config(settings(url, sources=sources, rules=rules), base_dir=tmp_path)


def toml(path: Path, url: str, *, sources: list[dict[str, Any]],
         rules: list[dict[str, Any]]) -> Path:
    """The same config as a TOML file, for a subprocess (values are plain strings and lists,
    written as JSON, which TOML reads the same)."""
    data = settings(url, sources=sources, rules=rules)
    lines: list[str] = []
    for table in ("storage", "fetch"):
        lines.append(f"[{table}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in data[table].items()]
    for kind in ("sources", "rules"):
        for entry in data[kind]:
            lines.append(f"[[{kind}]]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in entry.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 30.0,
                     what: str = "the condition") -> None:
    """Wait until ``check()`` is true; fail naming ``what`` after ``within`` seconds (a bound
    against hangs, never a measure)."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {within:.0f}s")
        await asyncio.sleep(0.05)
