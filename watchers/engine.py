"""Engine: the library's front door. ``open_engine`` builds and owns everything a running
newswatch needs — the store, the shared fetcher, two small CPU pools (one for ingest, one for
lookups), the watch and delivery services — and every operation a front end offers is one Engine
method.

    async with open_engine(config, sinks={"alerts": my_sink}) as engine:
        await engine.run_once()                  # or: wait while the services run
        hits = await engine.search("troops NEAR/5 border")

Lifetimes: entering opens the store (a refused start — unusable database, bad source — closes
whatever was opened and raises; nothing is left running), builds the services and, unless
``start=False``, starts them. Leaving (normally, on error or on cancel) stops the watch service,
lets delivery finish the sends in flight, then closes the fetcher, the pools and the store, in
that order. ``stop()`` does the first two steps early, for a front end whose sinks must still work
while delivery finishes (Discord closes after it).

The watch and delivery services never call each other: the watch side writes articles, matches
and outbox rows (alerts and notices) to the store and sets one shared event; delivery waits on it
and reads the store. Front ends (the CLI, the Discord cogs) never reach past these methods.

Tenancy: a rule belongs to a server (``RuleConfig.guild_id``) or, coming from the config file
(or added without a server), to every server. Inside the engine a rule is its key
(``RuleConfig.key``: the name, or ``"<guild id>:<name>"``): the rule set, matches, mutes and the
stored rules are by key, so two servers can each have a rule of the same name. Every rule method
takes ``guild``: with one, the caller sees and names the rules as that server does — the global
rules and its own, by name — and another server's rule is unknown exactly as a rule that does
not exist is (existence does not leak); without one (the CLI, the library) it sees every rule,
by key, as before. A server's rule may not take a global rule's name.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import logging
import os
import re
import threading
import unicodedata
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Container,
    Iterable,
    Mapping,
    Sequence,
)
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from pydantic import ValidationError

from watchers._finish import finish
from watchers.config import (
    INTERNAL_KEYS,
    MAX_DURATION,
    Config,
    FeedSourceConfig,
    RouteConfig,
    RuleConfig,
    ServerRoute,
    SourceConfig,
    pydantic_issues,
    route_settings,
)
from watchers.delivery import (
    REMOVED_WHILE_WAITING,
    UNFOLLOWED_REASON,
    DeliveryService,
    DeliveryStatus,
    Sink,
    UpdateSink,
    check_sinks,
    digest_sink_issues,
    kept_for_later,
    refuse_inside_sink,
)
from watchers.errors import (
    ConfigError,
    ConfigIssue,
    NewswatchError,
    SourceError,
    StoreError,
)
from watchers.importer import ImportProgress, ImportSummary, import_file
from watchers.models import Article, Match
from watchers.outlets import source_outlet
from watchers.roles import Role, check_role
from watchers.rules.lookup import index_terms, places_of
from watchers.rules.text import KEYS_VERSION
from watchers.schedule import Clock, SystemClock
from watchers.search import DEFAULT_WAIT, Lookup, SearchHit, search
from watchers.service import PollReport, WatchService
from watchers.skew import ClockCheck
from watchers.sources import SourceContext, build_source, describe_source
from watchers.sources._guard import IPNetwork, check_url, parse_networks
from watchers.sources.base import Source
from watchers.store import SourceState, Store, open_store
from watchers.store.base import (
    CONFIG_CHANNEL,
    OUTBOX_CHANNEL,
    SERVER_FEED_PREFIX,
    OutboxRow,
    StoryRecord,
    story_as_seen,
    story_seen,
)
from watchers.stories import StoryIndex
from watchers.surge import Trend
from watchers.tenancy import Tenancy, feed_key, url_of
from watchers.trends import default_bucket, trend_of
from watchers.urls import feed_url_key

if TYPE_CHECKING:
    from watchers.sources._http import Fetcher

__all__ = [
    "AckResult",
    "Engine",
    "ImportProgress",
    "ImportSummary",
    "Lookup",
    "Probe",
    "RuleTest",
    "RuleView",
    "SourceView",
    "Stats",
    "StoryDetail",
    "make_fetcher",
    "open_engine",
    "probe_sources",
]

log = logging.getLogger(__name__)
_V = TypeVar("_V")
# Buckets a trend may have (a day each over 27 years, an hour each over a year): each is
# counted on the event loop.
TREND_MAX_BUCKETS = 10_000
# Alerts waiting for corroboration read at once when their rules' needs are checked again
# (Engine.refresh_waiting reads them all, page by page).
WAITING_PAGE = 2_000



@dataclass(frozen=True)
class RuleView:
    """A running rule as lookups show it: the rule, its mute, its recent activity."""

    rule: RuleConfig
    muted_until: datetime | None
    matches_7d: int
    over_budget: int = 0  # articles on which its regexes ran out of time, since start
    alerts_7d: int = 0  # its alerts posted in the last 7 days
    acks_7d: int = 0  # … of which someone acknowledged
    not_relevant_7d: int = 0  # … of which someone found not relevant

    @property
    def is_global(self) -> bool:
        """The rule belongs to every server (the config file's, or added without a server)."""
        return self.rule.guild_id is None

    @property
    def not_relevant_share(self) -> float | None:
        """The share of its recent alerts someone found not relevant (None: no alerts)."""
        return self.not_relevant_7d / self.alerts_7d if self.alerts_7d else None


@dataclass(frozen=True)
class AckResult:
    """An acknowledgement as it stands after a click: who acknowledged the alert and when
    (``first``: this click did; otherwise someone had before), the alert's route, rules and
    the message it was posted as (``message_id``, None if it never was)."""

    alert_id: int
    user_id: int
    at: datetime
    first: bool
    route: str
    rules: tuple[str, ...]
    message_id: str | None


@dataclass(frozen=True)
class SourceView:
    """A source and its health, as /sources and /stats show it."""

    name: str
    kind: str
    where: str
    every: timedelta
    origin: str
    state: SourceState
    # Every server sees it (the config file's, or added without a server); False: a feed the
    # asking server follows, under the name it gave it.
    shared: bool = True
    # What a server's follow of the same name read before it was added again (where, every):
    # adding a name the server uses replaces that feed.
    replaced: tuple[str, timedelta] | None = None
    # The outlet its ``outlet`` setting names (what min_sources counts it as); None: the site
    # of its URL, or a folder's name (see watchers.outlets).
    outlet: str | None = None


@dataclass(frozen=True)
class StoryDetail:
    """A story as /story shows it: the stored record and its articles, oldest first."""

    record: StoryRecord
    articles: list[Article]


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
    truncated: bool = False


def make_fetcher(cfg: Config) -> Fetcher:
    """The one fetcher every feed shares, with the config's limits and allowlist."""
    from watchers.sources._http import Fetcher, Timeouts

    return Fetcher(
        allow_private=cfg.fetch.allow_private,
        timeouts=Timeouts(total=cfg.fetch.timeout.total_seconds(),
                          connect=cfg.fetch.connect_timeout.total_seconds(),
                          queue=cfg.fetch.queue_wait.total_seconds()),
        max_bytes=cfg.fetch.max_bytes,
    )


class _FetcherOnFirstUse:
    """The engine's shared fetcher, made when a source first fetches: the HTTP clients
    (aiohttp, about 0.15 s to load) stay unloaded in a process that fetches nothing (an
    import, a folder's poll, a store command). Closed before any use, it refuses every later
    one as a closed fetcher's fetches are refused, rather than make a fetcher nobody closes."""

    def __init__(self, cfg: Config) -> None:
        self._cfg = cfg
        self._made: Fetcher | None = None
        self._closed = False

    def _fetcher(self) -> Fetcher:
        if self._made is None:
            if self._closed:
                raise SourceError("fetcher is closed")
            self._made = make_fetcher(self._cfg)
        return self._made

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fetcher(), name)

    @property
    def allow_private(self) -> tuple[IPNetwork, ...]:
        """The config's allowlist, as the fetcher holds it: a feed source checks its URL
        against it when it is built, before anything is fetched."""
        if self._made is not None:
            return self._made.allow_private
        return parse_networks(self._cfg.fetch.allow_private)

    async def aclose(self) -> None:
        self._closed = True
        if self._made is not None:
            await self._made.aclose()


def merged_rules(cfg: Config, stored: list[RuleConfig],
                 departed: AbstractSet[int] = frozenset()) -> list[RuleConfig]:
    """Rules from the config file, then those added at run time (a stored rule of the same key
    replaces the file's: it is the newer decision); a server's only while it is served."""
    rules = {r.key: r for r in cfg.rules}
    for r in stored:
        if served(cfg, r.guild_id, departed):
            rules[r.key] = r
    return list(rules.values())


_Split = tuple[dict[str, ServerRoute], dict[str, ServerRoute], dict[str, SourceConfig]]


def _served_split(cfg: Config, routes: Iterable[ServerRoute], sources: Iterable[SourceConfig],
                  departed: AbstractSet[int]) -> _Split:
    """The stored server routes of served servers, those of servers not served now (see
    :attr:`Tenancy.away_routes`), and the served servers' follows, each by key."""
    served_routes: dict[str, ServerRoute] = {}
    away: dict[str, ServerRoute] = {}
    for r in routes:
        (served_routes if served(cfg, r.guild_id, departed) else away)[r.key] = r
    follows = {s.key: s for s in sources
               if s.guild_id is not None and served(cfg, s.guild_id, departed)}
    return served_routes, away, follows


class _Absent:
    """The rule keys not in ``known`` (what :meth:`Engine.refresh_waiting` reads as removed)."""

    def __init__(self, known: AbstractSet[str]) -> None:
        self._known = known

    def __contains__(self, key: object) -> bool:
        return key not in self._known


def _kept(cfg: Config, stored: list[RuleConfig], departed: AbstractSet[int]) -> frozenset[str]:
    """The keys of the stored rules of servers not served now (see :func:`served`)."""
    return frozenset(r.key for r in stored if not served(cfg, r.guild_id, departed))


def served(cfg: Config, guild: int | None, departed: AbstractSet[int] = frozenset()) -> bool:
    """Whether newswatch serves what ``guild`` added (None: the config file's): every server
    when ``[discord] guild_ids`` is empty, else those it names, and of those none the bot was
    removed from (``departed``). A server taken out of the list, or that removed the bot,
    keeps its rules, feeds and channels stored, but none runs (its commands are refused or
    cannot be given, so its alerts would come with no way to stop them, and its feeds would be
    fetched for nobody) until it is listed again or invites the bot back."""
    return guild is None or ((not cfg.discord.guild_ids or guild in cfg.discord.guild_ids)
                             and guild not in departed)


def _unserved_note(cfg: Config, rules: list[RuleConfig], sources: list[SourceConfig],
                   routes: list[ServerRoute], departed: Mapping[int, datetime]) -> None:
    counts: dict[int, list[int]] = {}
    owners: tuple[list[int | None], ...] = ([r.guild_id for r in rules],
                                            [s.guild_id for s in sources],
                                            [r.guild_id for r in routes])
    for i, guilds in enumerate(owners):
        for guild in guilds:
            if guild is not None and not served(cfg, guild, departed.keys()):
                counts.setdefault(guild, [0, 0, 0])[i] += 1
    for guild, (r, f, c) in sorted(counts.items()):
        why = (f"removed the bot on {departed[guild]:%Y-%m-%d %H:%M} UTC" if guild in departed
               else "is not in [discord] guild_ids")
        log.warning("server %s %s: its %d rule(s), %d feed(s) and %d channel(s) are kept but "
                    "not run", guild, why, r, f, c)


def _sees(guild: int | None, rule: RuleConfig) -> bool:
    """Whether a caller in ``guild`` (None: the CLI, the library) sees ``rule``."""
    return guild is None or rule.guild_id is None or rule.guild_id == guild


def merged_sources(cfg: Config, stored: list[SourceConfig]) -> list[SourceConfig]:
    sources = {s.name: s for s in cfg.sources if s.enabled}
    for s in stored:
        sources.setdefault(s.name, s)  # the file's source wins a name clash: it was there first
    return list(sources.values())


_F = TypeVar("_F", bound=Callable[..., Awaitable[Any]])


def _one_change(method: _F) -> _F:
    """Run ``method`` as one change of the running rules, sources and routes, one at a time:
    each reads the store, then replaces what runs, and two at once lost one of them (a rule
    added while another was removed was stored but never ran). A change that makes another
    (removing a rule reloads the rules) calls that one's unlocked body (``_reload_rules``)."""
    @functools.wraps(method)
    async def changing(self: Engine, *args: Any, **kwargs: Any) -> Any:
        async with self._changing:
            return await method(self, *args, **kwargs)
    return changing  # type: ignore[return-value]



def _in_its_loop(method: _F) -> _F:
    """Run ``method`` only in the event loop the engine was opened in, else NewswatchError
    saying where to call it. From another thread's loop, ``stop`` failed halfway ("attached
    to a different loop") and left the engine's exit failing too; the engine's locks belong
    to its loop, so a change or a lookup there worked or failed by chance, and a waiter woken
    from another thread could wait for ever."""
    name = method.__name__

    @functools.wraps(method)
    async def checked(self: Engine, *args: Any, **kwargs: Any) -> Any:
        if asyncio.get_running_loop() is not self._loop:
            raise NewswatchError(
                f"Engine.{name} was called from another event loop than the engine's (call "
                f"it in that loop: from another thread, with "
                f"asyncio.run_coroutine_threadsafe(engine.{name}(…), loop))")
        return await method(self, *args, **kwargs)
    return checked  # type: ignore[return-value]


class Engine:
    """A running engine. Build it with :func:`open_engine`; every method is one user action."""

    def __init__(self, config: Config, store: Store, fetcher: Fetcher,
                 executor: ThreadPoolExecutor, watch: WatchService,
                 delivery: DeliveryService, tenancy: Tenancy | None = None, *,
                 role: Role = "all", lookup_executor: ThreadPoolExecutor | None = None
                 ) -> None:
        self.config = config
        self.role: Role = role
        self._changes: set[str] = set()
        self._reloader: asyncio.Task[None] | None = None
        self.tenancy = tenancy or Tenancy(config)
        # Servers the bot was removed from, and since when (see left() and returned()); the
        # gateway's events and the check at connect take turns.
        self.departed: dict[int, datetime] = {}
        # The stored rules of servers not served now (removed the bot, or not in guild_ids):
        # not run, but not removed either, so their alerts waiting for corroboration stay.
        self.kept_rules: frozenset[str] = frozenset()
        self._presence = asyncio.Lock()
        self._changing = asyncio.Lock()  # see _one_change
        self._route_listeners: list[Callable[[str, RouteConfig], None]] = []
        self.store = store
        self.fetcher = fetcher
        self.executor = executor  # ingest: parsing, matching and indexing what is polled
        # Lookups (search, trend, rules test): threads of their own, see open_engine.
        self.lookup_executor = lookup_executor or executor
        self.watch = watch
        self.delivery = delivery
        self._stopping: asyncio.Future[None] | None = None
        self._closed = False  # its open_engine block has ended
        self._loop = asyncio.get_running_loop()  # see _in_its_loop
        self._fatal: asyncio.Future[None] = self._loop.create_future()
        self._awaited = False  # whether someone awaits failed() (and says its error)
        # A role process that polls or delivers on a shared store: its clock compared with
        # the database's while it runs (see watchers.skew); None otherwise.
        self.clock_check: ClockCheck | None = None

    def fail(self, error: BaseException) -> None:
        """Record an error that ends the engine (the store is gone or corrupted); logged unless
        someone awaits :meth:`failed` (they say it: the CLI said it twice, once logged and once
        as its last line)."""
        if not self._fatal.done():
            self._fatal.set_exception(error)
            if not self._awaited:
                log.error("%s", error)
                # Said: not asyncio's "Future exception was never retrieved" again at exit
                # (an await of failed() later still raises it).
                self._fatal.exception()

    async def failed(self) -> None:
        """Wait until the engine fails, then raise why; front ends wait on it beside their own
        stop signal. Never returns normally; on an engine already closed, raises
        NewswatchError at once (it would never fail, nor return)."""
        if self._closed:
            raise NewswatchError("this engine is closed (its open_engine block has ended)")
        self._awaited = True
        await asyncio.shield(self._fatal)

    # ------------------------------------------------------------------ lifetime

    async def start(self) -> None:
        """Start polling and delivering (``open_engine`` does this unless ``start=False``) —
        what the engine's role does of it: ``poll`` only polls, ``deliver`` only delivers,
        ``bot`` neither (see :mod:`watchers.roles`)."""
        if self._closed:
            raise NewswatchError("this engine is closed (its open_engine block has ended); "
                                 "open another with open_engine")
        if self._stopping is not None:
            # Its services are closed: delivery alone came back, and polling never did.
            raise NewswatchError("this engine was stopped; open another with open_engine")
        if self.clock_check is not None:
            await self.clock_check.start()  # told before the first lease is taken
        if self.role in ("all", "deliver"):
            self.delivery.start()
        if self.role in ("all", "poll"):
            await self.watch.start()

    async def stop(self) -> None:
        """Stop polling, then let delivery finish the sends in flight. Idempotent; call it while
        the sinks still work."""
        refuse_inside_sink("stop")
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        # Every caller returns once stopped (a second one returned at once, while the sends
        # in flight went on and its caller closed their sinks), cancelled or not.
        await finish(self._stopping)

    async def _stop(self) -> None:
        if self._reloader is not None:
            self._reloader.cancel()
            await asyncio.gather(self._reloader, return_exceptions=True)
        if self.clock_check is not None:
            await self.clock_check.stop()
        failed = self._fatal.done()
        if failed:
            self._fatal.exception()  # retrieved: a failure that nobody awaited is not an error
        await self.watch.aclose(store_failed=failed)
        await self.delivery.stop()

    async def run_once(self, *, retry_within: float = 0.0,
                       skip_waiting: bool = False) -> list[PollReport]:
        """Poll every source once and deliver everything that is due (``run --once``). With
        ``retry_within`` (seconds), alerts whose retry is due that soon (a send that failed in
        this round, or in a run just before) are waited for and tried once more. With
        ``skip_waiting``, as ``run --once`` has it, a failing source whose backoff or
        publisher's Retry-After has not run out is not polled; its report's ``waiting`` says
        when it is next due (see :meth:`WatchService.run_once`)."""
        refuse_inside_sink("run_once")
        if self._closed:
            raise NewswatchError("this engine is closed (its open_engine block has ended); "
                                 "open another with open_engine")
        if self._stopping is not None:
            # Its delivery is stopped: what it found would wait in the outbox, reported as
            # alerts, until another engine opened the store.
            raise NewswatchError("this engine was stopped; open another with open_engine")
        if not self.delivery.running:
            # Rows left 'sending' by a process that died; on a started engine they are the
            # sends in flight, which would come back marked "maybe sent".
            await self.store.requeue_interrupted()
        reports = await self.watch.run_once(skip_waiting=skip_waiting)
        await self.delivery.drain()
        if retry_within > 0:
            await self.delivery.retry_soon(retry_within)
        return reports

    # ------------------------------------------------------------------ lookups

    async def search(self, query: str, *, since: timedelta | None = None,
                     source: str | None = None, limit: int = 10,
                     order: Literal["newest", "best"] = "newest",
                     budget: float = 5.0, guild: int | None = None,
                     wait: float = DEFAULT_WAIT) -> Lookup:
        """Stored articles matching ``query``, newest (or best) first, within a time budget
        of its own work (with ``guild``: among those that server sees, ``source`` named as it
        names it). Raises QuerySyntaxError for a bad query, NewswatchError for an unknown
        source, and LookupBusyError when other lookups kept it waiting for the lookup threads
        longer than ``wait`` seconds in all (see :mod:`watchers.search`)."""
        _text("query", query)
        if source is not None:
            _text("source", source)
        since = None if since is None else _span("since", since)
        limit = _count("limit", limit)
        if order not in ("newest", "best"):
            raise ValueError(f"order: 'newest' or 'best', not {order!r}")
        for name, seconds in (("budget", budget), ("wait", wait)):
            if not isinstance(seconds, int | float) or not seconds > 0:
                raise ValueError(f"{name}: a positive number of seconds, not {seconds!r}")
        stored = None if source is None else await self.source_key(source, guild=guild)
        found = await search(
            self.store, query, since=datetime.now(UTC) - since if since is not None else None,
            source=stored, limit=limit, order=order, threshold=self.config.threshold,
            aliases=self.config.aliases, budget=budget, executor=self.lookup_executor,
            follows=self._follows(guild), labels=self._labels(guild), wait=wait,
        )
        if guild is None:
            return found
        return dataclasses.replace(found, hits=[
            dataclasses.replace(h, article=self._relabel(h.article, guild)) for h in found.hits])

    def _follows(self, guild: int | None) -> tuple[str, ...] | None:
        """What store lookups take to show only what ``guild`` sees (None: everything)."""
        return None if guild is None else self.tenancy.feed_keys(guild)

    def _labels(self, guild: int | None) -> Mapping[str, str] | None:
        """The names ``guild`` gave the feeds it follows, by stored key (None: as stored)."""
        return None if guild is None else self.tenancy.labels(guild)

    def _visible(self, article: Article, guild: int | None) -> bool:
        return (guild is None or not article.source.startswith(SERVER_FEED_PREFIX)
                or article.source in self.tenancy.labels(guild))

    def _relabel(self, article: Article, guild: int | None) -> Article:
        """The article as ``guild`` knows it: a feed it follows under the name it gave it."""
        if guild is None:
            return article
        label = self.tenancy.labels(guild).get(article.source)
        return article if label is None else article.model_copy(update={"source": label})

    async def source_key(self, name: str, *, guild: int | None = None) -> str:
        """The stored source name of the source ``name`` (as ``guild`` names it, with one), or
        NewswatchError naming the known ones: a running source, or one whose articles are
        stored (a removed source's, an import's) and, with ``guild``, that server sees."""
        _text("source", name)
        if guild is None:
            if name in self.watch.source_names():
                return name
        else:
            own = self.tenancy.follows_of(guild)
            if name in own:
                return feed_key(url_of(own[name]))
            if name in self._shared_sources():
                return name
        if not (guild is not None and name.startswith(SERVER_FEED_PREFIX)):
            # A removed source's articles stay searchable (an import's too); one indexed read
            # tells.
            page = await self.store.candidate_page(fts=None, source=name, limit=1)
            if page.articles:
                return name
        raise _no_source(name, set(await self.lookup_source_names(guild)))

    async def lookup_source_names(self, guild: int | None = None) -> list[str]:
        """The sources a lookup may name (see :meth:`source_key`), sorted: the running ones
        (as ``guild`` names them, with one) and those whose articles are stored (a removed
        source's, an import's; never another server's feed)."""
        # (the stored names by the index, a step each: counting every source's articles read
        # the whole table; another server's feeds are not even named)
        stored = await self.store.stored_sources(limit=KNOWN_SOURCES_READ)
        return sorted({*self.source_names(guild), *(
            n for n in stored if guild is None or not n.startswith(SERVER_FEED_PREFIX))})

    def _shared_sources(self) -> list[str]:
        return [n for n in self.watch.source_names() if not n.startswith(SERVER_FEED_PREFIX)]

    @property
    def database(self) -> str:
        """Where the store keeps its data (a file path)."""
        return str(self.store.path)

    async def count_articles(self) -> int:
        """How many articles the store holds."""
        return await self.store.count_articles()

    async def recent(self, *, rule: str | None = None, limit: int = 10,
                     guild: int | None = None) -> list[tuple[Article, list[Match]]]:
        """The newest stored articles (that matched ``rule``, if given) with their matches.
        With ``guild``, ``rule`` is a name as that server knows it (an unknown one raises
        NewswatchError) and the matches are those of the rules it sees, by name."""
        limit = _count("limit", limit)
        if rule is not None:
            rule = _text("rule", rule)  # (5 was taken, and found nothing)
        if guild is None:
            return [(art, await self._shown(art, matches))
                    for art, matches in await self.store.recent(rule=rule, limit=limit)]
        key = None if rule is None else self.rule_of(rule, guild).key
        found = await self.store.recent(rule=key, limit=limit,
                                        rules=[r.key for r in self._rules_seen(guild)],
                                        follows=self._follows(guild))
        out = []
        for art, matches in found:
            art = self._relabel(art, guild)
            out.append((art, self._matches_seen(await self._shown(art, matches, relabel=False),
                                                guild)))
        return out

    async def _shown(self, article: Article, matches: list[Match], *, relabel: bool = True
                     ) -> list[Match]:
        """``matches`` with their evidence, which ingest does not store: found again by the
        running rules (a match of a rule no longer running shows its rule and score). With
        ``relabel``, a server's rules see the article under that server's name for its feed,
        as they matched it (the article as stored otherwise: a caller that named a server has
        relabelled it already)."""
        rules = self.watch.rules
        if not relabel or all(m.hits for m in matches):
            return await self.delivery.with_evidence(article, matches, rules)
        servers = {r.key: r.guild_id for r in rules}
        shown = list(matches)
        for guild in {servers.get(m.rule) for m in matches if not m.hits}:
            mine = [i for i, m in enumerate(matches) if servers.get(m.rule) == guild]
            found = await self.delivery.with_evidence(
                self._relabel(article, guild), [matches[i] for i in mine], rules)
            for i, m in zip(mine, found, strict=True):
                shown[i] = m
        return shown

    async def article(self, article_id: str, *, guild: int | None = None,
                      evidence: bool = True) -> tuple[Article, list[Match]] | None:
        """One stored article (by id or a unique id prefix) and the rules that matched it
        (with ``guild``: only an article that server sees, and the matches of the rules it
        sees, by name). Each match's evidence is found again by its rule; without
        ``evidence``, the matches as stored (rule and score, no hits), which is quick."""
        if not isinstance(article_id, str):
            raise TypeError(f"article_id: a str, not {type(article_id).__name__}")
        wanted = article_id.strip()
        if not wanted or not wanted.isprintable():  # ids are printable; this one is no id
            return None
        # A prefix is unique among the articles the server sees: another server's article
        # starting the same way made it find nothing (and told of that article).
        art = await self.store.get_article(
            wanted, visible=None if guild is None else lambda a: self._visible(a, guild))
        if art is None or not self._visible(art, guild):
            return None
        # A server sees no removed rule's match: not one retired with its rule either, which
        # a new rule of the same name would show as its own.
        matches = await self.store.matches_for(art.id, retired=guild is None)
        if guild is None:
            return art, await self._shown(art, matches) if evidence else matches
        art = self._relabel(art, guild)
        if evidence:
            matches = await self._shown(art, matches, relabel=False)
        return art, self._matches_seen(matches, guild)

    def _matches_seen(self, matches: Iterable[Match], guild: int) -> list[Match]:
        """The matches of the rules ``guild`` sees, named as it knows them: another server's
        rules are not shown, not even by name."""
        names = {r.key: r.name for r in self._rules_seen(guild)}
        return [m.model_copy(update={"rule": names[m.rule]}) for m in matches
                if m.rule in names]

    async def story(self, story_id: str, *, limit: int = 50, guild: int | None = None
                    ) -> StoryDetail | None:
        """One story (by id): its outlets, first and last report, and its articles oldest
        first (at most ``limit``; ``record.articles`` says how many there are). With
        ``guild``: only the articles and outlets that server sees (None when it sees none).
        ``record.counted``: its distinct outlets as its reader counts them (see
        :meth:`stories_of`)."""
        if not isinstance(story_id, str):
            raise TypeError(f"story_id: a str, not {type(story_id).__name__}")
        limit = _count("limit", limit)
        wanted = story_id.strip()
        if not wanted or not wanted.isprintable():
            return None
        record = await self.store.get_story(wanted)
        if record is None:
            return None
        record = (await self._counted([record], guild)).get(record.id, record)
        if guild is None:
            return StoryDetail(record, await self.store.story_articles(record.id, limit=limit))
        # Every article of it, as delivery's count reads them (store.story_seen): the first
        # 1,000 alone counted a story of 1,100 as 1,000 here and 1,100 in /search, and a
        # server whose articles all came after them was told the story did not exist.
        everything = await self.store.story_articles(record.id,
                                                     limit=max(limit, record.articles, 1))
        seen = [self._relabel(a, guild) for a in everything if self._visible(a, guild)]
        if not seen:
            return None
        labels = self.tenancy.labels(guild)
        outlets = tuple(labels.get(o, o) for o in record.outlets
                        if not o.startswith(SERVER_FEED_PREFIX) or o in labels)
        if len(seen) < len(everything):
            # another server's feed reported in it: its headline and times are not shown
            record = story_as_seen(record, seen, outlets)
        else:
            record = dataclasses.replace(record, outlets=outlets, articles=len(seen))
        return StoryDetail(record, seen[:limit])

    async def stories_of(self, article_ids: Sequence[str], *, guild: int | None = None
                         ) -> dict[str, StoryRecord]:
        """The story of each of these articles that has one, by article id (articles stored
        before stories existed, or imported, have none and stand alone). With ``guild``: as
        that server sees it — the outlets it sees, by its names, and its articles counted —
        and none for an article it does not see. Each record's ``counted`` is its distinct
        outlets as the reader counts them, as its alert's wait does: two feeds of one outlet
        are one (with ``guild``: the config file's sources and that server's feeds; without:
        every source)."""
        if isinstance(article_ids, str):
            # One id alone was read as ids of one letter each, and had no story.
            raise TypeError(f"article_ids: a sequence of article ids, not a str "
                            f"(write [{article_ids!r}])")
        if not isinstance(article_ids, Iterable):
            raise TypeError(f"article_ids: a sequence of article ids, not "
                            f"{type(article_ids).__name__}")
        ids = list(article_ids)
        for item in ids:
            if not isinstance(item, str):
                raise TypeError(f"article_ids: each a str, not {type(item).__name__}")
        found = await self.store.stories_of(ids)
        counted = await self._counted(found.values(), guild)
        found = {a: counted.get(r.id, r) for a, r in found.items()}
        if guild is None:
            return found
        labels = self.tenancy.labels(guild)
        scoped: dict[str, StoryRecord | None] = {}
        out: dict[str, StoryRecord] = {}
        for article_id, record in found.items():
            if record.id not in scoped:
                scoped[record.id] = await self._story_seen(record, guild, labels)
            if (seen := scoped[record.id]) is not None:
                out[article_id] = seen
        return out

    async def _counted(self, records: Iterable[StoryRecord], guild: int | None
                       ) -> dict[str, StoryRecord]:
        """These stories with ``counted`` set (by id): their distinct outlets as ``guild``'s
        readers (None: the operator) count them; none for a store that does not count them
        (a library's own, which lookups then show by their sources)."""
        count = getattr(self.store, "outlets_seen", None)
        wanted = {r.id: r for r in records}
        if count is None or not wanted:
            return {}
        have = await count(list(wanted), guild=guild)
        return {sid: dataclasses.replace(r, counted=have[sid])
                for sid, r in wanted.items() if sid in have}

    async def _story_seen(self, record: StoryRecord, guild: int, labels: Mapping[str, str]
                          ) -> StoryRecord | None:
        if not any(o.startswith(SERVER_FEED_PREFIX) for o in record.outlets):
            return record  # every server sees all of it, by the same names

        def label(source: str) -> str | None:
            if source.startswith(SERVER_FEED_PREFIX):
                return labels.get(source)
            return source

        return await story_seen(self.store, record, label)

    def _routes_of(self, guild: int) -> set[str]:
        """The routes server ``guild`` sees: the config file's, declared for every server, and
        its own. (/alerts status reads and shows these, as /stats counts them.)"""
        declared = {*self.config.channels, *(r.channel for r in self.watch.rules
                                             if r.guild_id is None)}
        return declared | set(self.tenancy.server_routes(guild))

    async def stats(self, guild: int | None = None) -> Stats:
        """Counts of articles and alerts, source health and paused destinations (with
        ``guild``: the articles that server sees, the alerts and destinations of its routes and
        of the config file's)."""
        if guild is None:
            return Stats(
                articles=await self.store.count_articles(),
                alerts=await self.store.alert_counts(),
                sources=await self.sources(),
                paused_routes=dict(self.delivery.paused_routes()),
            )
        routes = self._routes_of(guild)
        return Stats(
            articles=await self.store.count_articles(follows=self._follows(guild)),
            alerts=await self.store.alert_counts(routes=list(routes)),
            sources=await self.sources(guild),
            paused_routes={self.route_label(k): why
                           for k, why in self.delivery.paused_routes().items() if k in routes},
        )

    async def import_articles(
        self,
        path: str | Path,
        *,
        on_progress: Callable[[ImportProgress], None] | None = None,
        on_bad_line: Callable[[int, str], None] | None = None,
        on_renamed: Callable[[int, str, str], None] | None = None,
    ) -> ImportSummary:
        """Load history from a JSON Lines file (see :mod:`watchers.importer`): each article is
        stored with the matches of the running rules, in its story, and no alert. Bad lines
        are reported to ``on_bad_line`` (line number, reason) and skipped; an article stored
        under another id than the file's (another article held it) to ``on_renamed``.

        The file's articles are grouped in a story index of their own, in date order: the
        live one drops every story older than its newest article's window, so history
        imported into a store in use, or out of order, was nearly all stories of one."""
        if self._closed:
            raise NewswatchError("this engine is closed (its open_engine block has ended)")
        return await import_file(
            self.store, path, ruleset=self.watch.ruleset,
            executor=self.executor, regex_budget=self.watch.regex_budget,
            on_progress=on_progress, on_bad_line=on_bad_line, on_renamed=on_renamed,
            stories=(StoryIndex(self.config.stories.window)
                     if self.watch.stories_mode is not None else None),
        )

    # ------------------------------------------------------------------ rules

    def _rules_seen(self, guild: int | None) -> list[RuleConfig]:
        return [r for r in self.watch.rules if _sees(guild, r)]

    def _shared(self, name: str) -> str | None:
        """The name of the running rule every server sees that is called ``name``, in any
        case (None: there is none)."""
        folded = name.casefold()
        return next((r.name for r in self.watch.rules
                     if r.guild_id is None and r.name.casefold() == folded), None)

    def rule_of(self, name: str, guild: int | None = None) -> RuleConfig:
        """The running rule ``name`` names for a caller in ``guild`` (None: a key), in any case
        when one rule it sees has that name, or NewswatchError — the same for another
        server's rule as for no rule at all. What ``/mute``, ``/recent`` and ``/trend`` act
        on; a front end checking a rule before acting on it asks here."""
        running = {r.key: r for r in self.watch.rules}
        if guild is None:
            found = running.get(name)
        else:
            found = running.get(f"{guild}:{name}")
            if found is None and (shared := running.get(name)) is not None \
                    and shared.guild_id is None:
                found = shared
        if found is None:
            # Names are told apart without case, as the config and /rules add tell them:
            # "/mute Troops" said there was no rule named 'Troops' beside the rule troops.
            folded = name.casefold()
            same = [r for r in self.watch.rules if _sees(guild, r)
                    and (r.key if guild is None else r.name).casefold() == folded]
            if len(same) == 1:
                found = same[0]
        if found is None:
            raise NewswatchError(f"no rule named {name!r}")
        return found

    def rule_names(self, guild: int | None = None) -> list[str]:
        """The names of the running rules, sorted (with ``guild``: those that server sees, by
        name; without: every rule, by key)."""
        if guild is None:
            return sorted(r.key for r in self.watch.rules)
        return sorted({r.name for r in self._rules_seen(guild)})

    async def rules(self, guild: int | None = None) -> list[RuleView]:
        """Every running rule (with ``guild``: the global ones and that server's) with its mute,
        its matches in the last 7 days, and its alerts of the last 7 days with how many were
        acknowledged or found not relevant."""
        now = self.delivery.clock.now()
        mutes = await self.store.mutes(now=now)
        counts = await self.store.rule_match_counts(since=now - timedelta(days=7))
        feedback = await self.store.rule_feedback(
            since=self.delivery.clock.now() - timedelta(days=7))
        views = []
        for r in sorted(self._rules_seen(guild), key=lambda r: (r.name, r.key)):
            fb = feedback.get(r.key)
            views.append(RuleView(r, mutes.get(r.key), counts.get(r.key, 0),
                                  self.watch.over_budget.get(r.key, 0),
                                  alerts_7d=fb.alerts if fb else 0,
                                  acks_7d=fb.acks if fb else 0,
                                  not_relevant_7d=fb.not_relevant if fb else 0))
        return views

    # ------------------------------------------------------------------ acknowledgement

    async def _posted_alert(self, alert_id: int, message_id: int | None = None,
                            guild: int | None = None) -> OutboxRow:
        # (an id past what the database counts failed with the driver's OverflowError)
        row = (None if isinstance(alert_id, int) and not -MOST_ROWS <= alert_id <= MOST_ROWS
               else await self.store.alert_row(alert_id))
        if row is None:
            raise NewswatchError(f"no alert #{alert_id}")
        # A button's id is whatever the clicking client sends: a crafted one must not act on
        # an alert of another server, nor on one the clicked message does not show.
        server = self.tenancy.routes.get(row.route) or self.tenancy.away_routes.get(row.route)
        if guild is not None and server is not None and server.guild_id != guild:
            raise NewswatchError(f"Alert #{alert_id} is not this server's.")
        if message_id is not None:
            shown = {row.remote_id}
            if row.story_id is not None:
                # reposted by its story after a moderator deleted it: the story's message
                where = await self.store.story_message(row.story_id, row.route)
                shown.add(where[0] if where is not None else None)
            if str(message_id) not in shown:
                raise NewswatchError(f"This message is not alert #{alert_id}'s: its buttons "
                                     "act only on the alert they were posted with.")
        return row

    async def acknowledge(self, alert_id: int, user_id: int, *, message_id: int | None = None,
                          guild: int | None = None) -> AckResult:
        """Record that ``user_id`` acknowledged an alert (an outbox id), now by the delivery
        clock; a later click returns the first acknowledgement (``first=False``). An
        acknowledged alert is never escalated. Raises NewswatchError for an unknown alert, and
        (when given) for a ``message_id`` that is not the alert's message or a ``guild`` whose
        routes do not include the alert's."""
        row = await self._posted_alert(alert_id, message_id, guild)
        ack = await self.store.acknowledge(alert_id, user_id, self.delivery.clock.now())
        return AckResult(alert_id, ack.user_id, ack.at, ack.first, row.route,
                         tuple(r.name for r in row.rules), row.remote_id)

    async def not_relevant(self, alert_id: int, user_id: int, *, message_id: int | None = None,
                           guild: int | None = None) -> bool:
        """Record that ``user_id`` finds an alert not relevant (counted per rule in
        :meth:`rules`); False when they said so before. Raises NewswatchError as
        :meth:`acknowledge` does."""
        await self._posted_alert(alert_id, message_id, guild)
        return await self.store.mark_not_relevant(alert_id, user_id, self.delivery.clock.now())

    async def test_rule(self, query: str, *, window: timedelta = timedelta(days=7),
                        samples: int = 3, guild: int | None = None) -> RuleTest:
        """How many stored articles of the last ``window`` a query matches, with samples (with
        ``guild``: of the articles that server sees)."""
        samples = _count("samples", samples, least=0)
        found = await self.search(query, since=_span("window", window), limit=100_000,
                                  guild=guild)
        return RuleTest(query, window, len(found.hits), found.hits[:samples], found.truncated)

    @_one_change
    async def add_rule(self, fields: Mapping[str, Any], *, created_by: str | None = None,
                       guild: int | None = None,
                       picked: tuple[int, str] | None = None) -> RuleConfig:
        """Add or replace a run-time rule (see :meth:`replace_rule`); the rule as added."""
        rule, _ = await self._add_rule(fields, created_by=created_by, guild=guild, picked=picked)
        return rule

    @_one_change
    async def replace_rule(self, fields: Mapping[str, Any], *, created_by: str | None = None,
                           guild: int | None = None, picked: tuple[int, str] | None = None
                           ) -> tuple[RuleConfig, RuleConfig | None]:
        """:meth:`add_rule`, and the rule of the same name it replaced (None: a new name), as
        one change: read before it, the replaced rule of one of two calls at once was the
        other's."""
        return await self._add_rule(fields, created_by=created_by, guild=guild, picked=picked)

    async def _add_rule(self, fields: Mapping[str, Any], *, created_by: str | None,
                        guild: int | None, picked: tuple[int, str] | None
                        ) -> tuple[RuleConfig, RuleConfig | None]:
        """Add or replace a run-time rule (with ``guild``: that server's); it applies to the
        next article matched.

        The fields are validated by the same model as the config file's ``[[rules]]`` (errors
        name the key), and the rule must compile before anything is stored. A server's rule
        may not take the name of a rule every server sees, and a server has at most
        ``[discord] max_rules_per_server`` rules.

        ``picked`` (a server's channel id and name, with ``guild``) sets the rule's channel to
        that channel's route, which is made and stored only if the rule is taken: a refused
        rule leaves no route behind."""
        _refuse_internal(fields, "rule")
        self._refuse_unserved(guild)
        route: ServerRoute | None = None
        if picked is not None and guild is not None:
            route = self._server_route(guild, picked[0], picked[1], created_by=created_by)
            fields = {**fields, "channel": route.key}
        try:
            rule = RuleConfig.model_validate(
                {**fields, "origin": "store", "created_by": created_by, "guild_id": guild})
        except ValidationError as err:
            raise ConfigError(pydantic_issues(err, RuleConfig), file="rule") from None
        issues = []
        if guild is not None:
            # A server's alerts only ever land in its own channels.
            routes = self.tenancy.server_routes(guild)
            if rule.channel not in routes and (route is None or rule.channel != route.key):
                have = ", ".join(self.route_label(k) for k in routes) or "none yet"
                issues.append(ConfigIssue("channel", "a server's rule posts to one of its own "
                                          f"channels; pick one (this server has {have})"))
        elif self.config.channels and rule.channel not in self.config.channels:
            issues.append(ConfigIssue("channel", f"unknown channel {rule.channel!r}; known: "
                                      f"{', '.join(sorted(self.config.channels))}"))
        if (problem := _look_alike(rule.name)) is not None:
            issues.append(ConfigIssue("name", problem))
        folded = rule.name.casefold()
        if clash := next((r.name for r in self.config.rules if r.name.casefold() == folded),
                         None):
            issues.append(ConfigIssue("name", f"rule {clash!r} is defined in the config "
                                      f"file{_spelt(clash, rule.name)}; choose another name"))
        elif guild is not None and (clash := self._shared(rule.name)):
            issues.append(ConfigIssue("name", f"rule {clash!r} is shared by every server"
                                      f"{_spelt(clash, rule.name)}; choose another name"))
        elif clash := next((r.name for r in self.watch.rules if r.guild_id == guild
                            and r.name.casefold() == folded and r.name != rule.name), None):
            # "Kyiv" beside "kyiv": two rules a forum's tags and a team's eyes take for one.
            issues.append(ConfigIssue("name", f"a rule {clash!r} exists{_spelt(clash, rule.name)}"
                                      f"; to replace it, use its name as it is spelt"))
        if guild is not None:
            own = {r.key for r in self.watch.rules if r.guild_id == guild}
            limit = self.config.discord.max_rules_per_server
            if rule.key not in own and len(own) >= limit:
                issues.append(ConfigIssue("name", f"this server has {len(own)} rules, the most "
                                          f"it may have (max_rules_per_server = {limit}); "
                                          "remove one first"))
        if issues:
            raise ConfigError(issues, file="rule")
        new_route = route if route is not None and route.key not in self.tenancy.routes else None
        if new_route is not None:
            # Known before the rule runs, so its first alert has a destination; stored only
            # once the rule is taken.
            self._serve_route(new_route)
        running = list(self.watch.rules)
        bad = self.watch.set_rules([*running, rule], adding=rule)  # bad ones left out
        for r, exc in bad:
            if r is rule:
                # Back to the rules as they were: the refused rule may have displaced a running
                # rule of the same name.
                self.watch.set_rules(running)
                if new_route is not None:
                    del self.tenancy.routes[new_route.key]
                raise ConfigError([ConfigIssue("query", str(exc))], file="rule")
        # Stored to its end (a cancelled command), and taken back if it cannot be: a rule that
        # runs is a rule that is stored.
        await finish(self._store_rule(rule, new_route, running))
        # A replaced rule that needs fewer outlets lets what it waits for post now.
        await self.refresh_waiting()
        return rule, next((r for r in running if r.key == rule.key), None)

    async def _store_rule(self, rule: RuleConfig, new_route: ServerRoute | None,
                          running: list[RuleConfig]) -> None:
        try:
            if new_route is not None:
                await self.store.put_server_route(new_route)
            await self.store.put_rule(rule)
        except BaseException:
            self.watch.set_rules(running)
            if new_route is not None:
                self.tenancy.routes.pop(new_route.key, None)
            raise

    @_one_change
    async def remove_rule(self, name: str, *, guild: int | None = None) -> bool:
        """Remove a rule added at run time (with ``guild``: one of that server's, by name;
        without: any, by key); False when there is none."""
        _text("name", name)
        folded = name.casefold()
        stored = {r.key: r for r in await self.store.list_rules()}
        key = name if guild is None else f"{guild}:{name}"
        if key not in stored:
            # Names are told apart without case, as /rules add and /mute tell them.
            same = [k for k, r in stored.items() if (guild is None or r.guild_id == guild)
                    and (k if guild is None else r.name).casefold() == folded]
            if len(same) == 1:
                key = same[0]
                name = stored[key].name if guild is not None else key
        # A stored rule first: one added before the file named another rule so (in another
        # case) runs beside it, and must still be removable.
        if key not in stored and any(r.name.casefold() == folded for r in self.config.rules):
            raise NewswatchError(f"rule {name!r} is defined in the config file; "
                                 "remove it there")
        # Deleted and no longer run as one step, to its end (cut short between the two by a
        # timeout, the rule was gone from the store and still ran and alerted).
        removed = await finish(self._delete_rule(key))
        if not removed and guild is not None and self._shared(name):
            raise NewswatchError(f"rule {name!r} is shared by every server; it can only be "
                                 "removed where it was added")
        return removed

    async def _delete_rule(self, key: str) -> bool:
        removed = await self.store.delete_rule(key)
        await self._reload_rules()
        return removed

    @_one_change
    async def reload_rules(self) -> None:
        """Rebuild the running rules from the config and the store."""
        await self._reload_rules()

    async def _reload_rules(self) -> None:
        stored = await self.store.list_rules()
        before = {r.key for r in self.watch.rules}
        self.watch.set_rules(merged_rules(self.config, stored, self.departed.keys()))
        self.kept_rules = _kept(self.config, stored, self.departed.keys())
        # Removed while this engine runs (not at its start: a command opening the store with
        # a config of its own, or none, has not removed the rules it does not name).
        await self.refresh_waiting(
            removed=before - {r.key for r in self.watch.rules} - self.kept_rules)

    async def end_waits_of_removed_rules(self) -> None:
        """Reject the alerts waiting for corroboration whose rules are all gone: named by
        neither this config file (enabled or not) nor the store. Rules taken out of the file
        between two runs are removed as much as those removed while one runs (see
        :meth:`refresh_waiting`), but only the run that delivers may say so: ``newswatch run``
        calls this at its start; a command opening the store with a config of its own (an
        import naming no rule) has removed nothing."""
        known = {r.key for r in self.config.rules} | {
            r.key for r in await self.store.list_rules()}
        await self.refresh_waiting(removed=_Absent(known))

    async def refresh_waiting(self, recount: Collection[str] = (),
                              removed: Container[str] = ()) -> int:
        """Alerts waiting for corroboration wait for what their rules need now: a rule whose
        ``min_sources`` was lowered (in the file, or by replacing the rule) lets its waiting
        alerts post once their story has that many outlets — at once if it has them already;
        one raised has them wait for more. What waited past the story window is recorded
        uncorroborated first, never released.
        The alerts waiting on ``recount`` (routes of a server that now follows another feed,
        which may have reported their story already) are counted again as well; those whose
        rules are all in ``removed`` (removed just now) will never post, and are rejected.
        Returns how many were released."""
        # What waited past the story window is uncorroborated first, never released.
        await self.delivery.expire_waiting()
        running = {r.key: r for r in self.watch.rules}
        again = set(recount)
        released = rejected = 0
        after = 0
        while True:
            # Page by page: a busy deployment may have more waiting than one read should hold.
            page = await self.store.alerts(state="waiting", kind="alert", limit=WAITING_PAGE,
                                           after=after)
            for row in page:
                needs = [running[r.key].min_sources for r in row.rules if r.key in running]
                if not needs and row.rules and all(r.key in removed for r in row.rules):
                    # Its rules were all removed (``removed``: just now, by this engine): it
                    # will never post. Said now, not when an article of another outlet
                    # released it (then refused at delivery), which took that article's own
                    # alert with it (the released one was to name its outlet).
                    await self.store.mark_rejected(row.id, REMOVED_WHILE_WAITING)
                    rejected += 1
                if not needs:
                    continue
                need = min(needs)
                # Lowered, it may post now; raised, it waits for more (it posted with the
                # count its rule needed when it was written).
                if (need != row.min_sources or row.route in again) and (
                        await self.store.lower_wait(row.id, need)):
                    released += 1
            if len(page) < WAITING_PAGE:
                break
            after = page[-1].id
        if rejected:
            log.info("%d alert(s) waiting for corroboration will not post: their rules were "
                     "removed", rejected)
        if released:
            log.info("%d alert(s) waiting for corroboration released: their rules need fewer "
                     "outlets now, or their server sees more of their story's", released)
            self.delivery.wake()
        return released

    # ------------------------------------------------------------------ other processes

    @_one_change
    async def reload(self, tables: Iterable[str] = ("",)) -> None:
        """Take what another process changed from the store: ``tables`` as the store's
        change notifications name them ("rules", "sources", "routes", "mutes",
        "route_pauses", "departed_servers"; "" for everything). Mutes need nothing: each poll
        reads them."""
        what = set(tables)
        everything = "" in what
        if everything or "departed_servers" in what:
            departed = dict(await self.store.departed_servers())
            if departed != self.departed:
                self.departed = departed
                what |= {"rules", "sources"}
        if everything or "rules" in what:
            await self._reload_rules()
        if everything or what & {"sources", "routes"}:
            await self._reload_sources()
        if everything or "route_pauses" in what:
            await self.delivery.reload_pauses()

    async def _reload_sources(self) -> None:
        """The server routes, the follows and the running sources as stored now."""
        stored = await self.store.list_sources()
        routes, self.tenancy.away_routes, follows = _served_split(
            self.config, await self.store.list_server_routes(), stored, self.departed.keys())
        # new routes, and routes whose settings changed (/channels set in another process)
        new_routes = [r for k, r in routes.items() if self.tenancy.routes.get(k) != r]
        self.tenancy.routes.clear()
        self.tenancy.routes.update(routes)
        for route in new_routes:
            for listener in self._route_listeners:
                listener(route.key, route.route)
        self.tenancy.follows.clear()
        self.tenancy.follows.update(follows)
        wanted = {c.name: c for c in [
            *merged_sources(self.config, [s for s in stored if s.guild_id is None]),
            *self.tenancy.feeds()]}
        own = self.watch.own_sources()
        running = {c.name: c for c in self.watch.source_configs()}
        for name, cfg in running.items():
            # A source an embedder runs with its own poller (engine.watch.add_source(config,
            # source)) is neither the config file's nor the store's: removed here, and
            # retired on a shared store, at any reload (another process's /sources add, a
            # session back after an outage), it stopped without a word.
            if wanted.get(name) != cfg and name not in own:
                await self.watch.remove_source(name)
        for name, cfg in wanted.items():
            if running.get(name) != cfg and name not in own:
                try:
                    await self.watch.add_source(cfg)
                except NewswatchError as exc:  # e.g. refused by this machine's allowlist
                    log.error("source %s not started here: %s", name, exc)
        self.watch.audiences.clear()
        self.watch.audiences.update(self.tenancy.audiences())

    def _changed(self, channel: str, payload: str) -> None:
        """A store change notification (see :data:`watchers.store.base.CONFIG_CHANNEL`):
        reload in the background, a burst of them at once."""
        self._changes.add(payload)
        if self._reloader is None or self._reloader.done():
            self._reloader = asyncio.get_running_loop().create_task(
                self._reload_changes(), name="newswatch-reload")

    async def _reload_changes(self) -> None:
        while self._changes:
            what, self._changes = self._changes, set()
            try:
                # Taken again once the store is back (a notification that came as the server
                # went away); before, the engine stopped with the driver's error.
                if await self.watch.outage.retried(
                        functools.partial(self.reload, what), self.fail) is None:
                    return
            except StoreError as exc:
                self.fail(exc)
                return
            except Exception:
                log.exception("reloading %s from the store failed", ", ".join(sorted(what)))

    @_one_change
    async def mute(self, rule: str, duration: timedelta, *, guild: int | None = None
                   ) -> datetime:
        """Silence a rule (as ``guild`` names it) until now + ``duration``; its matches are
        still recorded. A global rule muted from a server is muted for every server (the
        front end lets only the server it posts in do so)."""
        _text("rule", rule)
        duration = _span("duration", duration)
        key = self.rule_of(rule, guild).key
        # By the clock delivery and polls read mutes with (not the machine's, when a clock is
        # given): a mute for an hour ends an hour later by that clock.
        until = self.delivery.clock.now() + duration
        await self.store.mute(key, until)
        return until

    @_one_change
    async def unmute(self, rule: str, *, guild: int | None = None) -> bool:
        """Let a muted rule alert again; False when it was not muted."""
        _text("rule", rule)
        return await self.store.unmute(self.rule_of(rule, guild).key,
                                       now=self.delivery.clock.now())

    # ------------------------------------------------------------------ sources

    def source_names(self, guild: int | None = None) -> list[str]:
        """The names of the running sources, sorted (with ``guild``: the shared ones and the
        feeds that server follows, by the names it gave them)."""
        if guild is None:
            return sorted(self.watch.source_names())
        return sorted({*self._shared_sources(), *self.tenancy.follows_of(guild)})

    async def sources(self, guild: int | None = None) -> list[SourceView]:
        """Every source with its stored health (with ``guild``: the shared ones, then the
        feeds that server follows, by its names)."""
        health = {s.name: s for s in await self.watch.health()}
        views = [SourceView(c.name, c.type, describe_source(c), c.every, c.origin,
                            health.get(c.name) or SourceState(c.name), outlet=c.outlet)
                 for c in self.watch.source_configs()
                 if guild is None or not c.name.startswith(SERVER_FEED_PREFIX)]
        if guild is not None:
            for name, f in sorted(self.tenancy.follows_of(guild).items()):
                key = feed_key(url_of(f))
                state = health.get(key) or SourceState(key)
                views.append(SourceView(name, f.type, describe_source(f), f.every, f.origin,
                                        dataclasses.replace(state, name=name), shared=False,
                                        outlet=f.outlet))
        return views

    @_one_change
    async def add_source(self, fields: Mapping[str, Any], *, created_by: str | None = None,
                         guild: int | None = None) -> SourceView:
        """Add a feed at run time, validated like the config file's ``[[sources]]``; the URL is
        checked (scheme, address ranges) before anything is fetched or stored. With
        ``guild``, the server follows the feed under that name: fetched once however many
        servers follow it, its articles seen only by them (see :mod:`watchers.tenancy`)."""
        _refuse_internal(fields, "source")
        if fields.get("type", "feed") != "feed":
            raise ConfigError([ConfigIssue("type", f"{fields['type']!r}: only feeds are added "
                                           "at run time; a folder or a web page belongs in the "
                                           "config file")],
                              file="source")
        if isinstance(fields.get("url"), str):
            check_url(fields["url"], self.config.fetch.allow_private)  # before anything else
        data = {"type": "feed", **fields, "origin": "store", "created_by": created_by,
                "guild_id": guild}
        try:
            source = FeedSourceConfig.model_validate(data)
        except ValidationError as err:
            raise ConfigError(pydantic_issues(err, FeedSourceConfig), file="source") from None
        if not re.fullmatch(r"[\w.-]{1,64}", source.name):
            raise NewswatchError("a source name is 1–64 letters, digits, '.', '_' or '-'")
        if source.every < timedelta(minutes=1):
            raise NewswatchError("a feed is polled at most once a minute")
        if guild is not None:
            return await self._follow(source, guild)
        if source.name in self.watch.source_names():
            raise NewswatchError(f"a source named {source.name!r} already exists")
        # Building the FeedSource checks the validated URL against the same allowlist, before
        # anything is stored. Started and stored as one step: cut short between the two (a
        # cancelled command), the feed ran unstored, and adding it again was refused.
        await finish(self._start_and_store(source))
        # A new source has no health yet: one view, not every source's (imports add hundreds).
        state = await self.store.source_state(source.name) or SourceState(source.name)
        return SourceView(source.name, source.type, describe_source(source), source.every,
                          source.origin, state)

    async def _start_and_store(self, source: FeedSourceConfig) -> None:
        await self.watch.add_source(source, fresh=True)  # (one removed before starts afresh)
        try:
            await self.store.put_source(source)
        except BaseException:
            await self.watch.remove_source(source.name)
            raise

    async def _follow(self, source: FeedSourceConfig, guild: int) -> SourceView:
        self._refuse_unserved(guild)
        own = self.tenancy.follows_of(guild)
        url = source.url.strip()
        # Names compared as `source:` compares them (case and width aside): "OPERATOR" beside
        # the shared "operator" made the server's rule `source:OPERATOR` fire on the shared
        # feed's articles, and /search list both.
        folded = _name_fold(source.name)
        if clash := next((n for n in self._shared_sources() if _name_fold(n) == folded), None):
            raise NewswatchError(f"a source named {clash!r} is shared by every server"
                                 f"{_spelt(clash, source.name)}; choose another name")
        if clash := next((n for n in own if n != source.name and _name_fold(n) == folded),
                         None):
            raise NewswatchError(f"this server has a source {clash!r}"
                                 f"{_spelt(clash, source.name)}; to replace it, use its name as "
                                 "it is spelt")
        shared = next((c.name for c in self.watch.source_configs()
                       if not c.name.startswith(SERVER_FEED_PREFIX)
                       and _same_feed(url_of(c), url)), None)
        if shared is not None:
            raise NewswatchError(f"this feed is already watched for every server as "
                                 f"{shared!r}; its articles are in your lookups already")
        same = next((n for n, f in own.items()
                     if n != source.name and _same_feed(url_of(f), url)), None)
        if same is not None:
            raise NewswatchError(f"this server already follows that feed as {same!r}")
        limit = self.config.discord.max_sources_per_server
        if source.name not in own and len(own) >= limit:
            raise NewswatchError(f"this server has {len(own)} sources, the most it may have "
                                 f"(max_sources_per_server = {limit}); remove one first")
        previous = own.get(source.name)
        await finish(self._start_following(source, url))
        # The feed may have reported a story this server's alerts wait on.
        await self.refresh_waiting(self.tenancy.server_routes(guild))
        key = feed_key(url)
        state = await self.store.source_state(key) or SourceState(key)
        return SourceView(source.name, source.type, describe_source(source), source.every,
                          source.origin, dataclasses.replace(state, name=source.name),
                          shared=False,
                          replaced=None if previous is None else (describe_source(previous),
                                                                  previous.every))

    async def _start_following(self, source: FeedSourceConfig, url: str) -> None:
        """Follow, run and store as one step (see :meth:`_start_and_store`)."""
        before = self.tenancy.follows.get(source.key)
        self.tenancy.follows[source.key] = source
        try:
            await self._sync_feed(url)
            if before is not None and url_of(before) != url:
                await self._sync_feed(url_of(before))
            await self.store.put_source(source)
        except BaseException:
            # Refused (the fetch allowlist), or not stored: back to the follows as they were.
            if before is None:
                del self.tenancy.follows[source.key]
            else:
                self.tenancy.follows[source.key] = before
            await self._sync_feed(url)
            if before is not None and url_of(before) != url:
                await self._sync_feed(url_of(before))
            raise

    async def _sync_feed(self, url: str) -> None:
        """Make the running feed of ``url`` what its followers ask for: started for a first
        follower, polled as often as the most eager one, stopped when the last one leaves."""
        key = feed_key(url)
        wanted = self.tenancy.feed(url)
        running = next((c for c in self.watch.source_configs() if c.name == key), None)
        if wanted is None:
            self.watch.audiences.pop(key, None)
            if running is not None:
                await self.watch.remove_source(key)
            return
        # A feed nobody followed until now starts afresh (see WatchService.add_source); one
        # restarted at another interval keeps its state.
        fresh = running is None
        if running is not None and running.every != wanted.every:
            await self.watch.remove_source(key)
            running = None
        if running is None:
            await self.watch.add_source(wanted, fresh=fresh)
        self.watch.audiences[key] = self.tenancy.audience(url)

    @_one_change
    async def remove_source(self, name: str, *, guild: int | None = None) -> bool:
        """Remove a source added at run time; False when there is none of that name (with
        ``guild``: stop that server following one of its feeds)."""
        if guild is not None:
            follow = self.tenancy.follows_of(guild).get(name)
            if follow is None:
                if name in self._shared_sources():
                    raise NewswatchError(f"source {name!r} is shared by every server; only "
                                         "the operator can remove it")
                return False
            await finish(self._unfollow(follow))
            return True
        if name not in self.watch.source_names() or name.startswith(SERVER_FEED_PREFIX):
            return False
        if any(s.name == name for s in self.config.sources):
            raise NewswatchError(f"source {name!r} is defined in the config file; "
                                 "remove it there")
        # Deleted and stopped as one step, like adding.
        return await finish(self._delete_and_stop(name))

    async def _delete_and_stop(self, name: str) -> bool:
        await self.store.delete_source(name)
        return await self.watch.remove_source(name)

    async def _unfollow(self, follow: SourceConfig) -> None:
        await self.store.delete_source(follow.key)
        del self.tenancy.follows[follow.key]
        await self._sync_feed(url_of(follow))
        # What the server was to be told of the feed and has not been is not sent: an alert
        # waiting for corroboration would otherwise stand for the story on its route, and the
        # reports of outlets it still sees released it only to be refused at delivery (they
        # alerted nobody). Delivery refuses any that another process queues meanwhile.
        if follow.guild_id is not None:
            rejected = await self.store.reject_alerts_of(
                feed_key(url_of(follow)), self.tenancy.server_routes(follow.guild_id),
                UNFOLLOWED_REASON)
            if rejected:
                log.info("server %s stopped following %r: %d alert(s) of it not sent",
                         follow.guild_id, follow.name, rejected)

    async def resume_source(self, name: str, *, guild: int | None = None) -> bool:
        """Resume a paused source and poll it now; False when it is unknown or was never
        polled (with ``guild``: one of the feeds that server follows). One that is not paused
        raises NewswatchError saying when it is polled next: "resume" fetched it at once
        every time it was asked, ahead of a publisher's Retry-After and of the once-a-minute
        floor of feeds added at run time."""
        key = name
        if guild is not None:
            follow = self.tenancy.follows_of(guild).get(name)
            if follow is None:
                if name in self._shared_sources():
                    raise NewswatchError(f"source {name!r} is shared by every server; only "
                                         "the operator can resume it")
                return False
            key = feed_key(url_of(follow))
        state = await self.watch.state_of(key)
        if state is None:
            return False
        if not state.paused:
            failing = ("; it is polled" if not state.failures else
                       "; its last poll failed and it is tried again" if state.failures == 1
                       else f"; its last {state.failures} polls failed and it is tried again")
            when = ("" if state.next_poll is None else
                    f" at {state.next_poll.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC")
            raise NewswatchError(f"source {name!r} is not paused{failing}{when or ' soon'}")
        return await self.watch.resume_source(key)

    # ------------------------------------------------------------------ routes

    def server_routes(self, guild: int | None = None) -> dict[str, ServerRoute]:
        """The routes servers picked in Discord (with ``guild``: that server's), by key."""
        return self.tenancy.server_routes(guild)

    def route(self, key: str) -> RouteConfig | None:
        """A route's settings, the config file's or a server's (None: no such route)."""
        return self.tenancy.route(key)

    def route_label(self, key: str) -> str:
        """A route as people read it: ``#name`` for a server's, the name otherwise."""
        server = self.tenancy.routes.get(key)
        return key if server is None else f"#{server.name}"

    def add_route_listener(self, listener: Callable[[str, RouteConfig], None]) -> None:
        """Call ``listener(key, route)`` for every server route now, and for each new one (a
        front end gives each a destination; see :meth:`attach_sink`)."""
        self._route_listeners.append(listener)
        for key, server in self.tenancy.routes.items():
            listener(key, server.route)

    def attach_sink(self, key: str, sink: Sink) -> None:
        """Deliver route ``key``'s alerts to ``sink``."""
        self.delivery.sinks = {**self.delivery.sinks, key: sink}

    @_one_change
    async def configure_server_route(self, guild: int, key: str, changes: Mapping[str, Any]
                                     ) -> ServerRoute:
        """Change the settings of one of ``guild``'s routes (stories, digest schedule, quiet
        hours, cap, template: the keys of a ``[channels.NAME]`` table, validated by the same
        model, errors naming the key); a None value puts that key back to its default. They
        apply to the next alert, as a config route's do. Another server's route is unknown."""
        server = self.tenancy.server_routes(guild).get(key)
        if server is None:
            raise NewswatchError(f"no channel of this server named {key[:100]!r} takes alerts")
        current = server.route.model_dump(exclude_unset=True, exclude={"target"})
        settings = route_settings(current, changes, server.channel_id)
        updated = server.model_copy(update={"settings": settings})
        sink = self.delivery.sink_for(key) if self.role in ("all", "deliver") else None
        if (sink is not None and not callable(getattr(sink, "digest", None))
                and (keeps := kept_for_later(updated.route))):
            # What it kept would be marked delivered and never shown (open_engine refuses a
            # config route so; one changed at run time was taken).
            raise ConfigError([ConfigIssue(keeps[0], "this destination cannot post digests, "
                                           "so it cannot keep alerts for later")],
                              file="channel settings")
        # Stored and applied as one step, to its end (cut short between the two, the new
        # settings were stored and not applied until the next start).
        await finish(self._keep_server_route(updated))
        return updated

    @_one_change
    async def add_server_route(self, guild: int, channel_id: int, name: str, *,
                               created_by: str | None = None) -> str:
        """The route of server ``guild`` posting to its channel ``channel_id`` (named after
        the channel): made and stored the first time, the same key after. Returns the key a
        rule's ``channel`` takes."""
        route = self._server_route(guild, channel_id, name, created_by=created_by)
        if route.key not in self.tenancy.routes:
            await finish(self._keep_server_route(route))
        return route.key

    def _server_route(self, guild: int, channel_id: int, name: str, *,
                      created_by: str | None = None) -> ServerRoute:
        """The route of server ``guild``'s channel: the one it has, or a new one, not stored."""
        self._refuse_unserved(guild)
        found = self.tenancy.route_for_channel(guild, channel_id)
        if found is not None:
            return found
        try:
            return ServerRoute(guild_id=guild, channel_id=channel_id,
                               name=self.tenancy.free_route_name(guild, name),
                               created_by=created_by)
        except ValidationError as err:
            raise ConfigError(pydantic_issues(err, ServerRoute), file="route") from None

    async def _keep_server_route(self, route: ServerRoute) -> None:
        await self.store.put_server_route(route)
        self._serve_route(route)

    def _serve_route(self, route: ServerRoute) -> None:
        self.tenancy.routes[route.key] = route
        for listener in self._route_listeners:
            listener(route.key, route.route)

    # ------------------------------------------------------------------ delivery

    async def trend(self, what: str, *, since: timedelta = timedelta(days=7),
                    bucket: timedelta | None = None, guild: int | None = None) -> Trend:
        """Matches per hour (``since`` up to 3 days) or per day of a rule (by name, as
        ``guild`` knows it) or of a query, with each bucket's baseline band and surges (see
        :mod:`watchers.surge` and :func:`watchers.trends.trend_of`). Raises QuerySyntaxError
        for a bad query; ValueError for a ``bucket`` of nothing or below, or a ``since``
        that holds more than :data:`TREND_MAX_BUCKETS` of its buckets (the given or the
        default)."""
        _text("what", what)
        since = _span("since", since)
        if bucket is not None:
            bucket = _span("bucket", bucket)
        # Counted on the event loop, a bucket at a time: one of nothing or less counted for
        # ever, and one of a microsecond as good as that; a century of days by default drew
        # 36,501 bars in half a minute and half a gigabyte.
        each = bucket if bucket is not None else default_bucket(since)
        if (buckets := since // each + 1) > TREND_MAX_BUCKETS:
            raise ValueError(f"{'bucket' if bucket is not None else 'since'}: {buckets:,} "
                             f"buckets of {each} in {since}; at most {TREND_MAX_BUCKETS:,} "
                             "(a longer bucket or a shorter since)")
        seen = {r.key if guild is None else r.name: r.key for r in self._rules_seen(guild)}
        # A rule's name (in any case, as /mute and /recent take it: "/trend alpha" charted
        # the word alpha beside the rule Alpha), else a query.
        try:
            rule = self.rule_of(what, guild)
        except NewswatchError:
            key = None
        else:
            key = rule.key
            what = rule.key if guild is None else rule.name
        found = await trend_of(
            self.store, what if key is None else key, rules=set(seen.values()), since=since,
            until=self.delivery.clock.now(), surge=self.config.surge,
            threshold=self.config.threshold, aliases=self.config.aliases, bucket=bucket,
            executor=self.lookup_executor, follows=self._follows(guild),
            labels=self._labels(guild))
        if key is not None and key != what:
            found = dataclasses.replace(found, label=f"rule {what}")
        return found

    def only_known_routes_to_default_sink(self) -> None:
        """The default sink takes the routes this engine knows (see :meth:`route_names`)
        without a sink of their own, and no other: alerts kept for a route since taken out
        of the config wait, as with no sink, until it is back (printed to a terminal, they
        were marked delivered and never reached their destination)."""
        self.delivery.default_routes = self.route_names  # as they are at each send

    def route_names(self) -> list[str]:
        """Every route newswatch knows, sorted: those in [channels], those rules name, those
        notices go to ([discord] notices, a source's route), and the channels servers picked
        (a channel set up for a digest keeps its route after its last rule is removed, and
        what it kept still goes out). A notice route no rule named was not among them: with
        no [channels] entry its notices ("source paused") were never printed."""
        notices = {self.config.discord.notices, *(s.route for s in self.config.sources)}
        return sorted({r.channel for r in self.watch.rules} | set(self.config.channels)
                      | {n for n in notices if n is not None} | set(self.tenancy.routes))

    async def digest_now(self, route: str) -> int:
        """Send what ``route`` keeps for a digest now (``/digest now``); returns how many alerts
        it carries. Raises NewswatchError for a route newswatch does not know."""
        _text("route", route)
        known = set(self.route_names())
        if route not in known:
            shown = route if len(route) <= 100 else route[:99] + "…"
            raise NewswatchError(f"no route named {shown!r}; known: "
                                 f"{', '.join(sorted(known)) or 'none'}")
        return await self.delivery.digest_now(route)

    async def delivery_status(self, guild: int | None = None) -> DeliveryStatus:
        """The outbox by state, paused destinations, backoffs and recent rejections. With
        ``guild``: only the routes that server sees (the config file's and its own), by label,
        and the alert counts of those routes."""
        if guild is None:
            return await self.delivery.status()
        routes = self._routes_of(guild)
        seen = routes.__contains__
        st = await self.delivery.status(routes)

        label = self.route_label

        def keep(d: Mapping[str, _V]) -> dict[str, _V]:
            return {label(k): v for k, v in d.items() if seen(k)}

        waiting = [dataclasses.replace(r, route=label(r.route)) for r in st.waiting
                   if seen(r.route)]
        return dataclasses.replace(
            st, counts=await self.store.alert_counts(routes=list(routes)),
            paused=keep(st.paused),
            held=keep(st.held), backing_off=keep(st.backing_off),
            rejected=[dataclasses.replace(r, route=label(r.route)) for r in st.rejected
                      if seen(r.route)],
            waiting=waiting,
            stories={(label(route), sid): v for (route, sid), v in st.stories.items()
                     if seen(route)},
            scheduled=keep(st.scheduled), summaries=keep(st.summaries),
            next_digest=keep(st.next_digest),
            backing_off_why=keep(st.backing_off_why))

    # ------------------------------------------------------------------ servers

    async def left(self, guild: int) -> bool:
        """The bot was removed from ``guild`` (kicked, or the server deleted): its rules, feeds
        and channels are kept but not run — its feeds no longer fetched, its rules no longer
        matched — until it is back (:meth:`returned`). Stored, so a restart and the other
        processes keep to it. Whether this is news."""
        _server("guild", guild)
        async with self._presence:
            return await self._left(guild)

    async def returned(self, guild: int, routes: Iterable[str] = ()) -> bool:
        """The bot is in ``guild`` again: its rules, feeds and channels run again, and its
        channels paused while the bot was away are resumed (their held alerts are sent), with
        ``routes`` (the config file's channels in that server, which the front end knows).
        Whether this is news."""
        _server("guild", guild)
        async with self._presence:
            return await self._returned(guild, routes)

    async def present_in(self, guilds: Callable[[], Iterable[int]],
                         routes_in: Callable[[int], Iterable[str]] = lambda _guild: ()
                         ) -> tuple[list[int], list[int]]:
        """Reconcile with the servers the bot is in (at connect: it may have been removed or
        invited back while it was down): every server with stored rules, feeds or channels
        not among ``guilds()`` has left, every departed one among them has returned. ``guilds``
        is asked after the store is read, so a join or removal meanwhile is not undone by an
        old answer (the three calls take turns). ``routes_in(guild)``: the config file's
        channels in a server, resumed with its own when it has returned. Returns (left,
        returned)."""
        async with self._presence:
            owners = {r.guild_id for r in await self.store.list_rules()}
            owners |= {s.guild_id for s in await self.store.list_sources()}
            owners |= {r.guild_id for r in await self.store.list_server_routes()}
            inside = set(guilds())
            gone = sorted(g for g in owners if g is not None and g not in inside
                          and g not in self.departed)
            back = sorted(g for g in self.departed if g in inside)
            # Rules and sources are taken again once for all of them (a bot removed from a
            # thousand servers while it was down: a thousand reloads of every stored rule).
            for g in gone:
                await self._left(g, apply=False)
            for g in back:
                await self._returned(g, routes_in(g), apply=False)
            if gone or back:
                await self._apply_departures()
                for g in back:
                    await self._resume_paused(g, routes_in(g))
            return gone, back

    async def _left(self, guild: int, *, apply: bool = True) -> bool:
        now = datetime.now(UTC)
        new = await self.store.set_departed(guild, now)
        if guild not in self.departed:
            self.departed[guild] = now
            if apply:
                await self._apply_departures()
        if new:
            log.info("server %s removed the bot: its rules, feeds and channels are kept but not "
                     "run until it is invited back", guild)
        return new

    async def _returned(self, guild: int, routes: Iterable[str] = (), *, apply: bool = True
                        ) -> bool:
        back = await self.store.set_departed(guild, None)
        if (self.departed.pop(guild, None) is not None or back) and apply:
            await self._apply_departures()
            await self._resume_paused(guild, routes)
        if back:
            log.info("server %s invited the bot back: its rules, feeds and channels run again",
                     guild)
        return back

    async def _resume_paused(self, guild: int, routes: Iterable[str]) -> None:
        """Resume the server's channels, and ``routes``, paused while it was away."""
        # As stored: a process that has not started delivering (run --once, the bot role) has
        # not read them, and the departure just cleared is not noticed again.
        await self.delivery.reload_pauses()
        for route in sorted({*self.tenancy.server_routes(guild), *routes}):
            if route in self.delivery.paused_routes():
                try:
                    await self.delivery.resume_route(route)
                except NewswatchError as exc:  # no destination here now: stays paused
                    log.warning("route %s not resumed: %s", route, exc)

    def _refuse_unserved(self, guild: int | None) -> None:
        """Refuse what a server newswatch does not serve now would add (see :func:`served`):
        a command under way when the bot was removed, or a long import, went on adding rules,
        channels and feeds that ran, and were fetched, for a server that had left."""
        if guild is not None and not served(self.config, guild, self.departed.keys()):
            raise NewswatchError("this server is not served now (the bot was removed from it, "
                                 "or it is not among [discord] guild_ids); nothing was added")

    @_one_change
    async def _apply_departures(self) -> None:
        await self._reload_rules()
        await self._reload_sources()

    def paused_routes(self) -> dict[str, str]:
        """Paused destinations and why."""
        return dict(self.delivery.paused_routes())

    def resumable_routes(self) -> dict[str, str]:
        """The routes ``resume_route`` takes, and why each waits: the paused ones and those
        backing off (a destination's retry_after, failures in a row)."""
        return {**self.delivery.backing_off_routes(), **self.delivery.paused_routes()}

    async def resume_route(self, route: str) -> int:
        """Resume a paused destination, or end a route's backoff; returns how many held alerts
        are now sent."""
        if route not in self.resumable_routes():
            raise NewswatchError(f"route {route!r} is neither paused nor backing off")
        return await self.delivery.resume_route(route)


# Every public coroutine method (each a user action, or its front end's) checks its loop.
for _name, _method in list(vars(Engine).items()):
    if not _name.startswith("_") and inspect.iscoroutinefunction(_method):
        setattr(Engine, _name, _in_its_loop(_method))
del _name, _method


@dataclass(frozen=True)
class Probe:
    """One source polled once by :func:`probe_sources`: what it returned, or why it failed."""

    name: str
    items: int = 0
    skipped: int = 0
    error: str | None = None


async def probe_sources(config: Config) -> list[Probe]:
    """Poll every enabled source of ``config`` once, side by side, storing nothing (``check
    --live``). A failing source — even one with a bug — is reported, never raised."""
    async with make_fetcher(config) as fetcher:
        ctx = SourceContext(fetcher=fetcher, resolve=config.resolve)
        configs = [c for c in config.sources if c.enabled]
        sources = [build_source(c, ctx) for c in configs]

        async def probe(name: str, source: Source) -> Probe:
            try:
                poll = await source.poll({})
            except NewswatchError as exc:
                return Probe(name, error=str(exc))
            except Exception as exc:  # a bug in a source is shown, not a traceback
                return Probe(name, error=f"unexpected {type(exc).__name__}: {exc}")
            return Probe(name, len(poll.articles), len(poll.skipped))

        try:
            return list(await asyncio.gather(
                *(probe(c.name, s) for c, s in zip(configs, sources, strict=True))))
        finally:
            for source in sources:
                await source.aclose()


def _span(name: str, value: object) -> timedelta:
    """``value``, a window or a duration: TypeError unless a timedelta, ValueError unless more
    than nothing and at most a hundred years (0 meant "no limit" to search; a negative mute
    muted nothing; a huge one overflowed the date)."""
    if not isinstance(value, timedelta):
        raise TypeError(f"{name}: a datetime.timedelta, not {type(value).__name__}")
    if not timedelta(0) < value <= MAX_DURATION:  # as parse_duration (/search, /mute)
        raise ValueError(f"{name}: more than 0 and at most 100 years, not {value}")
    return value


# The most rows a database counts (SQLite's and PostgreSQL's largest integer).
MOST_ROWS = 2**63 - 1


def _text(name: str, value: object) -> str:
    """``value``, a name or a query: TypeError unless a str (None reached ``.casefold()`` or
    ``len()`` and said so in Python's words, naming nothing)."""
    if not isinstance(value, str):
        raise TypeError(f"{name}: a str, not {type(value).__name__}")
    return value


def _server(name: str, value: object) -> int:
    """``value``, a server (Discord guild) id: TypeError unless a whole number (None was
    stored as server 1, "5" as 5)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name}: a server id (an int), not {type(value).__name__}")
    return value


def _count(name: str, value: object, *, least: int = 1) -> int:
    """``value``, a count: TypeError unless a whole number, ValueError below ``least``. One
    past what a database counts is every row (as a limit, it failed with the driver's
    OverflowError)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name}: a whole number, not {type(value).__name__}")
    if value < least:
        raise ValueError(f"{name}: at least {least}, not {value}")
    return min(value, MOST_ROWS)


def _spelt(existing: str, asked: str) -> str:
    """" (names are compared without case)" when ``asked`` is ``existing`` in another case."""
    return "" if existing == asked else " (names are compared without case)"


def _look_alike(name: str) -> str | None:
    """Why a new rule's name would pass for another in every list and autocomplete, or None:
    written in compatibility characters ("ｔｒｏｏｐｓ", full-width), or Latin, Cyrillic and
    Greek letters mixed in one word ("trооps", its o's Cyrillic) beside "troops". (Rules
    stored before this was asked keep their names.)"""
    if (plain := unicodedata.normalize("NFKC", name)) != name:
        return (f"{name!r} is written in compatibility characters (full-width or styled "
                f"letters): write it {plain!r}")
    for word in re.split(r"[._-]", name):
        scripts = {unicodedata.name(c, "").split(" ", 1)[0] for c in word if c.isalpha()}
        mixed = sorted(scripts & {"LATIN", "CYRILLIC", "GREEK"})
        if len(mixed) > 1:
            return (f"{name!r} mixes {' and '.join(m.title() for m in mixed)} letters in one "
                    "word, as a look-alike of another name does")
    return None


def _name_fold(name: str) -> str:
    """A source's name as `source:` compares it: case and width (full-width letters) aside."""
    return unicodedata.normalize("NFKC", name).casefold()


def _refuse_internal(fields: Mapping[str, Any], what: str) -> None:
    """ConfigError naming the keys of ``fields`` that newswatch sets itself (a rule's server,
    where it came from, who added it): given, they were silently replaced."""
    if not isinstance(fields, Mapping):
        # ("argument of type 'NoneType' is not iterable", "'str' object has no attribute
        # 'get'", naming nothing the caller wrote)
        raise TypeError(f"the {what}'s fields: a mapping (a dict, as a config file's "
                        f"[[{what}s]] table), not {type(fields).__name__}")
    given = [k for k in INTERNAL_KEYS if k in fields]
    if given:
        raise ConfigError([ConfigIssue(k, "set by newswatch itself (a server's rule or source "
                                       "is added with guild=)") for k in given], file=what)


@asynccontextmanager
async def open_engine(
    config: Config,
    *,
    sinks: Mapping[str, Sink] | None = None,
    default_sink: Sink | None = None,
    start: bool = True,
    store_path: str | os.PathLike[str] | None = None,
    on_report: Callable[[PollReport], None] | None = None,
    clock: Clock | None = None,
    role: Role = "all",
    lease: timedelta = timedelta(seconds=60),
    safety_poll: float = 30.0,
    max_polls: int = 64,
) -> AsyncIterator[Engine]:
    """Open the store, build the services and (unless ``start=False``) start them; on exit stop
    and close everything in order. See the module docstring. ``clock`` is what every schedule
    (digests, quiet hours, caps, surges) reads, and a poll worker's leases and next polls;
    a poll, deliver or bot process compares it with the database server's (:mod:`watchers.skew`).
    Tests pass a :class:`ManualClock`.
    ``store_path`` (a path, or a PostgreSQL URL) replaces the config's store; a relative path
    is relative to the current directory, not to the config file's.

    ``role`` (see :mod:`watchers.roles`): ``"all"`` is one process with the one-writer lock;
    the others share a PostgreSQL store with other processes (refused on SQLite, with
    ConfigError naming ``[storage] url``), open it without the lock, follow other processes'
    changes, and start only their part. ``lease``: how long a poll worker's claim on a source
    lasts unless renewed (a killed worker's sources wait that long). ``safety_poll``: seconds
    between a deliver process's looks at the outbox when no notification woke it.
    ``max_polls``: polls a shared poll worker runs at once; it claims no more due sources than
    that, so the others take the rest (a worker with room for every due source takes them
    all: work goes to whoever is free)."""
    # Arguments of the wrong kind named (they failed later with "'<' not supported between
    # 'int' and 'datetime.timedelta'", or a FileNotFoundError of '').
    if not isinstance(max_polls, int) or isinstance(max_polls, bool):
        raise TypeError(f"max_polls: a whole number, not {type(max_polls).__name__}")
    if max_polls < 1:
        raise ValueError(f"max_polls must be at least 1, not {max_polls}")
    if not isinstance(lease, timedelta):
        raise TypeError(f"lease: a timedelta, not {type(lease).__name__}")
    if not isinstance(safety_poll, int | float) or isinstance(safety_poll, bool):
        raise TypeError(f"safety_poll: seconds as a number, not {type(safety_poll).__name__}")
    if isinstance(store_path, str | os.PathLike) and not os.fspath(store_path):
        raise ValueError("store_path is empty: give a file's path or a PostgreSQL URL")
    check_sinks(sinks, default_sink)  # before anything is opened
    if not isinstance(config, Config):
        raise TypeError(f"config: a Config (from load_config or parse_config), not "
                        f"{type(config).__name__}")
    if issues := digest_sink_issues(config, sinks, default_sink):
        raise ConfigError(issues)
    for note in config.ignored_settings():
        log.warning("%s", note)
    if store_path is not None and not isinstance(store_path, str | os.PathLike):
        raise TypeError(f"store_path: a path (str or Path), not {type(store_path).__name__}")
    if clock is not None:
        # A clock giving naive times was taken, and every poll then failed comparing them
        # with the store's (aware) ones.
        told = clock.now() if callable(getattr(clock, "now", None)) else None
        if not isinstance(told, datetime) or told.utcoffset() is None:
            raise TypeError(f"clock: an object whose now() gives a timezone-aware datetime "
                            f"(as ManualClock does), not one giving {told!r}")
    async with AsyncExitStack() as stack:
        target = (os.fspath(store_path) if store_path is not None
                  else config.storage.target(config.resolve))
        check_role(role, target, lease)
        shared = role != "all"
        store = await open_store(target, terms_of=index_terms, lock=not shared, shared=shared,
                                 keys_version=KEYS_VERSION, places_of=places_of)
        stack.push_async_callback(store.aclose)
        # Ingest and lookups each have threads of their own. On one shared pool, a member's
        # burst of expensive lookups (a regex over 90 days, a query of 26 prefixes) held both
        # threads: a poll's matching queued behind them and a new article alerted 10 s late.
        # Two threads each: the work holds the GIL, so more would add contention on a 2-core
        # machine, not speed; a lookup gives its thread up every few hundredths of a second
        # (watchers.search), so lookups running at once take turns on these two.
        executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="newswatch-cpu")
        stack.push_async_callback(_shut_down, executor)
        lookups = ThreadPoolExecutor(max_workers=2, thread_name_prefix="newswatch-lookup")
        stack.push_async_callback(_shut_down, lookups)
        lazy = _FetcherOnFirstUse(config)
        stack.push_async_callback(lazy.aclose)
        fetcher = cast("Fetcher", lazy)
        stored_rules = await store.list_rules()
        stored_sources = await store.list_sources()
        stored_routes = await store.list_server_routes()
        departed = dict(await store.departed_servers())
        _unserved_note(config, stored_rules, stored_sources, stored_routes, departed)
        routes, away, follows = _served_split(config, stored_routes, stored_sources,
                                              departed.keys())
        tenancy = Tenancy(config, routes.values(), follows.values())
        tenancy.away_routes = away
        # The outlets of the config file's sources, the disabled ones' too: stories still
        # name them (the running ones' are told by the WatchService, with the stored ones').
        store.name_outlets({s.name: source_outlet(s) for s in config.sources})
        wake = asyncio.Event()
        watch = WatchService(
            store=store,
            context=SourceContext(fetcher=fetcher, resolve=config.resolve),
            sources=[*merged_sources(config, [s for s in stored_sources if s.guild_id is None]),
                     *tenancy.feeds()],
            audiences=tenancy.audiences(),
            source_label=tenancy.label,
            server_notices=tenancy.notice_route,
            rules=merged_rules(config, stored_rules, departed.keys()),
            threshold=config.threshold,
            aliases=config.aliases,
            pause_after=config.fetch.pause_after,
            probe_every=config.fetch.probe_every,
            notices_route=config.discord.notices,
            wake=wake,
            executor=executor,
            on_report=on_report,
            stories_mode=tenancy.stories_mode,
            digest_route=tenancy.digest_route,
            story_window=config.stories.window,
            surge=config.surge,
            clock=clock or SystemClock(),
            shared=shared,
            lease=lease,
            max_polls=max_polls,
        )
        stack.push_async_callback(watch.aclose)
        delivery = DeliveryService(store=store, sinks=dict(sinks or {}),
                                   default_sink=default_sink,
                                   notices_route=config.discord.notices, wake_event=wake,
                                   stories_mode=tenancy.stories_mode,
                                   story_window=config.stories.window,
                                   routes=tenancy.route, source_label=tenancy.label,
                                   server_route=tenancy.server_route, away=tenancy.away,
                                   known_routes=sorted({r.channel for r in config.rules}
                                                       | set(config.channels)),
                                   clock=clock or SystemClock(),
                                   ack_from=config.discord.ack_from,
                                   threshold=config.threshold, aliases=config.aliases,
                                   executor=lookups,
                                   escalate_after=config.discord.escalate_after,
                                   escalation_role=config.discord.escalation_role,
                                   shared=shared)
        if shared:
            delivery.poll_interval = safety_poll
        stack.push_async_callback(delivery.aclose)
        engine = Engine(config, store, fetcher, executor, watch, delivery, tenancy, role=role,
                        lookup_executor=lookups)
        engine.departed = departed
        if role in ("poll", "deliver", "bot"):
            # They write leases, next polls, retries, digest times and mutes' ends by their own
            # clocks, which the other processes read by theirs.
            engine.clock_check = ClockCheck(
                store, watch.clock if role == "poll" else delivery.clock, role, lease)
        engine.kept_rules = _kept(config, stored_rules, departed.keys())
        # A waiting alert is given up when its rules were removed, not when they are kept
        # but not run (their server removed the bot): it is sent, and held, until it is back.
        delivery.rules_now = lambda: [*(r.key for r in watch.rules), *engine.kept_rules]
        watch.on_fatal = delivery.on_fatal = engine.fail
        if (writer_lost := getattr(store, "on_writer_lost", None)) is not None:
            writer_lost(engine.fail)  # (PostgreSQL: its writer lock, lost for good)
        delivery.outage = watch.outage  # one outage, waited for and logged once
        # (no sink here, a process of the poll role: the deliver process's edits, as Discord's)
        watch.edits = lambda route: (sink := delivery.sink_for(route)) is None or isinstance(
            sink, UpdateSink)
        stack.push_async_callback(engine.stop)
        stack.callback(setattr, engine, "_closed", True)  # the first thing leaving does
        if shared:
            # Outbox rows written by any process wake delivery at once; changes made by any
            # process reach this one's rules, sources, routes and pauses.
            if role == "deliver":
                await store.listen(OUTBOX_CHANNEL, lambda _channel, _payload: wake.set())
            await store.listen(CONFIG_CHANNEL, engine._changed)
            await delivery.reload_pauses()  # what /alerts status and resume see, before any
        if role in ("all", "deliver"):
            await engine.refresh_waiting()
        if start:
            await engine.start()
        yield engine


# Source names an unknown one is compared with, at most (a store holds a few hundred).
KNOWN_SOURCES_READ = 5000
# Up to this many known names are listed whole; past it, the closest few.
KNOWN_SOURCES_LISTED = 12


def _no_source(name: str, known: Iterable[str]) -> NewswatchError:
    """"No source named …", with the known names when they are few, else their count and the
    closest (every one of 250 names on one line hid the answer)."""
    import difflib

    names = sorted(set(known))
    asked = repr(name[:64])
    if len(names) <= KNOWN_SOURCES_LISTED:
        return NewswatchError(f"no source named {asked}; known: {', '.join(names) or 'none'}")
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return NewswatchError(f"no source named {asked}{hint} ({len(names):,} known)")


async def _shut_down(executor: ThreadPoolExecutor) -> None:
    # From a thread of its own (not the loop's pool, which would outlive the engine): a job
    # still running (a long match) held the event loop for its whole length.
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def ended() -> None:
        if not done.done():
            done.set_result(None)

    def shut() -> None:
        try:
            executor.shutdown(wait=True, cancel_futures=True)
        finally:
            loop.call_soon_threadsafe(ended)

    thread = threading.Thread(target=shut, name="newswatch-shutdown")
    thread.start()
    await finish(done)
    thread.join()


def _same_feed(a: str, b: str) -> bool:
    """Whether two feed URLs name one feed: as links compare (host case, default port,
    tracking parameters, a trailing slash), over http or https alike. A server's copy of the
    operator's feed under a variant of its URL was a feed of its own, whose articles then
    counted as the operator's duplicates (see docs/discord.md, "Servers")."""
    return feed_url_key(a) == feed_url_key(b)

