"""Building the two services the way open_engine does, for tests that drive them directly."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from watchers.config import FeedSourceConfig, FolderSourceConfig, RuleConfig
from watchers.delivery import DeliveryService, Sink
from watchers.models import Article
from watchers.service import WatchService
from watchers.sources import SourceContext
from watchers.sources._http import Fetcher
from watchers.sources.base import Poll
from watchers.store import SqliteStore
from watchers.store.base import Store


def rule(name: str, query: str, **kw: Any) -> RuleConfig:
    return RuleConfig(name=name, query=query, **kw)


RULES = [
    rule("troops", "troops OR soldiers"),
    rule("kyiv", "kyiv~", channel="ops"),
    rule("football", "football"),
]


def folder(name: str, path: Path, every: timedelta = timedelta(milliseconds=100)
           ) -> FolderSourceConfig:
    # settle = 0: the tests write whole files before polling
    return FolderSourceConfig(name=name, type="folder", path=str(path), every=every,
                              settle=timedelta(0))


def feed(name: str, url: str = "https://example.org/feed.xml",
         every: timedelta = timedelta(minutes=5), **kw: Any) -> FeedSourceConfig:
    return FeedSourceConfig(name=name, type="feed", url=url, every=every, **kw)


def watch(store: SqliteStore, *, sources: list[Any] = (), rules: list[RuleConfig] = RULES,  # type: ignore[assignment]
          fetcher: Fetcher | None = None, wake: asyncio.Event | None = None,
          **kw: Any) -> WatchService:
    return WatchService(store=store, context=SourceContext(fetcher=fetcher, resolve=Path),
                        sources=sources, rules=rules, wake=wake or asyncio.Event(), **kw)


def deliver(store: Store, sink: Sink | dict[str, Sink], *, wake: asyncio.Event | None = None,
            **kw: Any) -> DeliveryService:
    sinks = sink if isinstance(sink, dict) else {}
    default = None if isinstance(sink, dict) else sink
    kw.setdefault("base_backoff", 0.01)
    return DeliveryService(store=store, sinks=sinks, default_sink=default,
                           wake_event=wake or asyncio.Event(), **kw)


class Fixed:
    """A source that returns the same items on every poll."""

    def __init__(self, name: str, items: list[Article]) -> None:
        self.name = name
        self.items = items

    async def poll(self, cursor: Mapping[str, str]) -> Poll:
        return Poll(self.items)

    async def aclose(self) -> None:
        pass
