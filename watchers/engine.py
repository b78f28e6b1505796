"""Engine: the store, fetcher, WatchService and DeliveryService built from a Config, and the
operations front ends offer (lookups, run-time rules and sources, mutes, health).

Front ends (the CLI, the Discord cogs) make one call here per user action and render the result;
they never fetch, parse or match themselves. Nothing is built at import time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from watchers.config import Config, FeedSourceConfig, FolderSourceConfig
from watchers.delivery import DeliveryService, Sink
from watchers.errors import NewswatchError
from watchers.models import Article, Match
from watchers.rules import parse
from watchers.search import SearchHit, search
from watchers.service import PollReport, RuleSpec, SourceSpec, WatchService
from watchers.sources._guard import check_url
from watchers.sources._http import Fetcher, Timeouts
from watchers.sources.feed import FeedSource
from watchers.sources.folder import FolderSource
from watchers.store import SourceState, SqliteStore, StoredRule, StoredSource

__all__ = [
    "Engine",
    "RuleTest",
    "RuleView",
    "SourceView",
    "Stats",
    "build_engine",
    "make_fetcher",
    "rule_specs",
    "source_specs",
]

log = logging.getLogger(__name__)


def rule_specs(cfg: Config, stored: list[StoredRule]) -> list[RuleSpec]:
    """Rules from the config file, then those added at run time (a stored rule of the same name
    replaces the file's: it is the newer decision)."""
    specs = {
        r.name: RuleSpec(r.name, r.query, r.channel, r.severity, r.mention_role, r.threshold)
        for r in cfg.rules
        if r.enabled
    }
    for s in stored:
        specs[s.name] = RuleSpec(s.name, s.query, s.channel, s.severity, s.mention_role,
                                 s.threshold, origin="store")
    return list(specs.values())


def feed_spec(name: str, url: str, every: timedelta, fetcher: Fetcher, *, backfill: int = 0,
              route: str | None = None, origin: str = "config") -> SourceSpec:
    return SourceSpec(FeedSource(name, url, fetcher=fetcher), every=every, baseline=True,
                      backfill=backfill, route=route, origin=origin)


def source_specs(cfg: Config, fetcher: Fetcher, stored: list[StoredSource]) -> list[SourceSpec]:
    specs: list[SourceSpec] = []
    for s in cfg.sources:
        if not s.enabled:
            continue
        route = s.route or cfg.discord.notices
        if isinstance(s, FolderSourceConfig):
            specs.append(SourceSpec(FolderSource(s.name, cfg.resolve(s.path)), every=s.every,
                                    route=route))
        elif isinstance(s, FeedSourceConfig):
            specs.append(feed_spec(s.name, s.url, s.every, fetcher, backfill=s.backfill,
                                   route=route))
    names = {s.name for s in specs}
    for st in stored:
        if st.name not in names:
            specs.append(feed_spec(st.name, st.url, timedelta(seconds=st.every_seconds), fetcher,
                                   route=cfg.discord.notices, origin="store"))
    return specs


@dataclass(frozen=True)
class RuleView:
    """A running rule as lookups show it."""

    spec: RuleSpec
    muted_until: datetime | None
    matches_7d: int


@dataclass(frozen=True)
class SourceView:
    """A source and its health, as /sources and /stats show it."""

    name: str
    kind: str
    where: str
    every: timedelta
    origin: str
    state: SourceState


@dataclass(frozen=True)
class Stats:
    articles: int
    alerts: dict[str, int]
    sources: list[SourceView]
    paused_routes: dict[str, str]


@dataclass(frozen=True)
class RuleTest:
    """What a query would have matched among stored articles in a window."""

    query: str
    window: timedelta
    count: int
    samples: list[SearchHit]


@dataclass
class Engine:
    """The running engine: one store, one fetcher, the watch and delivery services."""

    config: Config
    store: SqliteStore
    fetcher: Fetcher
    service: WatchService
    delivery: DeliveryService
    sinks: dict[str, Sink] = field(default_factory=dict)
    default_sink: Sink | None = None

    def sink_for(self, route: str) -> Sink | None:
        return self.sinks.get(route, self.default_sink)

    async def start(self) -> None:
        self.delivery.start()
        await self.service.start()

    async def aclose(self) -> None:
        await self.service.aclose()
        await self.delivery.aclose()
        await self.fetcher.aclose()
        await self.store.aclose()

    # ------------------------------------------------------------------ lookups

    async def search(self, query: str, *, since: timedelta | None = None,
                     source: str | None = None, limit: int = 10,
                     order: Literal["newest", "best"] = "newest") -> list[SearchHit]:
        """Stored articles matching ``query`` (raises QuerySyntaxError for a bad query)."""
        return await search(
            self.store, query, since=datetime.now(UTC) - since if since else None,
            source=source, limit=limit, order=order, threshold=self.config.threshold,
            aliases=self.config.aliases,
        )

    async def recent(self, *, rule: str | None = None, limit: int = 10
                     ) -> list[tuple[Article, list[Match]]]:
        return await self.store.recent(rule=rule, limit=limit)

    async def article(self, article_id: str) -> tuple[Article, list[Match]] | None:
        art = await self.store.get_article(article_id.strip())
        if art is None:
            return None
        return art, await self.store.matches_for(art.id)

    async def stats(self) -> Stats:
        return Stats(
            articles=await self.store.count_articles(),
            alerts=await self.store.alert_counts(),
            sources=await self.sources(),
            paused_routes=dict(self.delivery.paused_routes()),
        )

    # ------------------------------------------------------------------ rules

    async def rules(self) -> list[RuleView]:
        now = datetime.now(UTC)
        mutes = await self.store.mutes(now=now)
        counts = await self.store.rule_match_counts(since=now - timedelta(days=7))
        return [RuleView(r, mutes.get(r.name), counts.get(r.name, 0))
                for r in sorted(self.service.rules, key=lambda r: r.name)]

    async def test_rule(self, query: str, *, window: timedelta = timedelta(days=7),
                        samples: int = 3) -> RuleTest:
        hits = await self.search(query, since=window, limit=100_000)
        return RuleTest(query, window, len(hits), hits[:samples])

    async def add_rule(self, rule: StoredRule) -> RuleSpec:
        """Add or replace a run-time rule; it applies to the next article matched."""
        parse(rule.query)
        if self.config.channels and rule.channel not in self.config.channels:
            raise NewswatchError(f"unknown channel {rule.channel!r}; known: "
                                 f"{', '.join(sorted(self.config.channels))}")
        if any(r.name == rule.name and r.origin == "config" for r in self.service.rules):
            raise NewswatchError(f"rule {rule.name!r} is defined in the config file; "
                                 "choose another name")
        await self.store.put_rule(rule)
        await self.reload_rules()
        return next(r for r in self.service.rules if r.name == rule.name)

    async def remove_rule(self, name: str) -> bool:
        if any(r.name == name and r.origin == "config" for r in self.service.rules):
            raise NewswatchError(f"rule {name!r} is defined in the config file; "
                                 "remove it there")
        removed = await self.store.delete_rule(name)
        await self.reload_rules()
        return removed

    async def reload_rules(self) -> None:
        """Rebuild the running rules from the config and the store."""
        self.service.set_rules(rule_specs(self.config, await self.store.list_rules()))

    def _known_rule(self, name: str) -> None:
        if name not in {r.name for r in self.service.rules}:
            raise NewswatchError(f"no rule named {name!r}")

    async def mute(self, rule: str, duration: timedelta) -> datetime:
        self._known_rule(rule)
        until = datetime.now(UTC) + duration
        await self.store.mute(rule, until)
        return until

    async def unmute(self, rule: str) -> bool:
        self._known_rule(rule)
        return await self.store.unmute(rule)

    # ------------------------------------------------------------------ sources

    async def sources(self) -> list[SourceView]:
        health = {s.name: s for s in await self.service.health()}
        out = []
        for spec in self.service.sources:
            src = spec.source
            kind = "feed" if isinstance(src, FeedSource) else "folder"
            where = getattr(src, "url", None) or str(getattr(src, "path", ""))
            out.append(SourceView(spec.name, kind, where, spec.every, spec.origin,
                                  health.get(spec.name) or SourceState(spec.name)))
        return out

    async def add_source(self, name: str, url: str, every: timedelta,
                         created_by: str | None = None) -> SourceView:
        """Add a feed at run time; the URL is checked (scheme, address ranges) first."""
        if not re.fullmatch(r"[\w.-]{1,64}", name):
            raise NewswatchError("a source name is 1–64 letters, digits, '.', '_' or '-'")
        if name in self.service.source_names():
            raise NewswatchError(f"a source named {name!r} already exists")
        if every < timedelta(minutes=1):
            raise NewswatchError("a feed is polled at most once a minute")
        check_url(url, self.config.fetch.allow_private)
        await self.store.put_source(StoredSource(name, url, every.total_seconds(), created_by))
        await self.service.add_source(feed_spec(name, url, every, self.fetcher,
                                                route=self.config.discord.notices,
                                                origin="store"))
        return next(v for v in await self.sources() if v.name == name)

    async def remove_source(self, name: str) -> bool:
        spec = next((s for s in self.service.sources if s.name == name), None)
        if spec is None:
            return False
        if spec.origin == "config":
            raise NewswatchError(f"source {name!r} is defined in the config file; "
                                 "remove it there")
        await self.store.delete_source(name)
        return await self.service.remove_source(name)

    async def resume_source(self, name: str) -> bool:
        return await self.service.resume_source(name)


def make_fetcher(cfg: Config) -> Fetcher:
    """The one fetcher every feed shares, with the config's limits and allowlist."""
    return Fetcher(
        allow_private=cfg.fetch.allow_private,
        timeouts=Timeouts(total=cfg.fetch.timeout.total_seconds(),
                          connect=cfg.fetch.connect_timeout.total_seconds()),
        max_bytes=cfg.fetch.max_bytes,
    )


async def build_engine(
    cfg: Config,
    *,
    notify: Callable[[str | None, str], None] | None = None,
    on_report: Callable[[PollReport], None] | None = None,
    store_path: str | None = None,
) -> Engine:
    """Open the store and wire the services; sinks are attached by the front end."""
    store = await SqliteStore.open(store_path or str(cfg.resolve(cfg.storage.path)))
    try:
        fetcher = make_fetcher(cfg)
        stored_rules = await store.list_rules()
        stored_sources = await store.list_sources()
    except BaseException:
        await store.aclose()
        raise
    engine_ref: list[Engine] = []

    def wake() -> None:
        engine_ref[0].delivery.wake()

    service = WatchService(
        store=store,
        sources=source_specs(cfg, fetcher, stored_sources),
        rules=rule_specs(cfg, stored_rules),
        threshold=cfg.threshold,
        aliases=cfg.aliases,
        pause_after=cfg.fetch.pause_after,
        probe_every=cfg.fetch.probe_every,
        on_alerts=wake,
        # A paused source is announced on its route (or the notices route) like any notice.
        on_notice=lambda route, msg: engine_ref[0].delivery.announce(msg, route=route),
        on_report=on_report,
    )
    delivery = DeliveryService(
        store=store,
        sink_for=lambda route: engine_ref[0].sink_for(route),
        rule_info=service.rule_info,
        notify=(lambda route, msg: notify(cfg.discord.notices, msg)) if notify else None,
        notices_route=cfg.discord.notices,
    )
    engine = Engine(cfg, store, fetcher, service, delivery)
    engine_ref.append(engine)
    return engine
