"""What both stores build the same way on their own primitives.

- :class:`RuntimeModels`: the rules, sources and server routes added at run time, stored as JSON
  of their validated config models keyed by their key (``RuleConfig.key``, ``SourceConfig.key``,
  ``ServerRoute.key``), on a backend's ``_models`` / ``_put`` / ``_delete``.
- :class:`CandidateList`: :meth:`candidates` as successive :meth:`candidate_page` calls.
- :class:`StoryBatch`: a write batch's story rows, decided in memory and written once each.
- :class:`OutletCount`: a story's outlets as each route's readers count them (min_sources),
  by the outlets its sources reported as (stored with the story), else the sources' outlets
  (:class:`OutletNames`).
- :class:`ListedWords`: the words a store has committed to the lookup index's word list.
- :func:`article_identity`: what an article is deduplicated by (its link key and content hash).
- :class:`LinkRows` and :func:`same_link_sql`: the link's rule of dedupe (:func:`same_link`)
  answered at once over a link's rows, in memory and in SQL.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from functools import lru_cache
from json.encoder import encode_basestring
from types import MappingProxyType
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from watchers.config import RuleConfig, ServerRoute, SourceConfig
from watchers.errors import StoreError
from watchers.models import Article, storable
from watchers.outlets import outlet_of
from watchers.store.base import (
    SERVER_FEED_PREFIX,
    URLS_INCOMPLETE,
    ArticleRecord,
    CandidatePage,
    CandidateScreen,
    CapSummary,
    feed_key,
)
from watchers.store.sqlite._db import dump_model
from watchers.urls import normalise_link

__all__ = [
    "CANDIDATE_PAGE_MAX",
    "SOURCE_MODEL",
    "URLS_INCOMPLETE",
    "CandidateList",
    "LinkRows",
    "ListedWords",
    "M",
    "OutletCount",
    "OutletNames",
    "RuntimeModels",
    "StoryBatch",
    "follow_outlets",
    "guid_links_agree",
    "link_terms",
    "one_version_each",
    "route_feeds",
    "server_route",
    "source_outlets_json",
    "sources_of",
    "summaries_stored",
    "unbatched_listed",
]

log = logging.getLogger(__name__)

M = TypeVar("M", RuleConfig, SourceConfig, ServerRoute)

SOURCE_MODEL: TypeAdapter[SourceConfig] = TypeAdapter(SourceConfig)

# The most candidates one page reads.
CANDIDATE_PAGE_MAX = 2000


def _one_line(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'model'}: {e['msg']}"
                     for e in exc.errors())


def server_route(data: dict[str, Any]) -> ServerRoute:
    data.pop("origin", None)  # a route has no origin: only servers make them
    try:
        return ServerRoute.model_validate(data)
    except ValidationError as exc:
        settings = data.get("settings")
        if not (isinstance(settings, dict) and "timezone" in settings and all(
                tuple(e["loc"][:2]) == ("settings", "timezone") for e in exc.errors())):
            raise
    # A time zone stored before it was refused ("localtime", "Factory"): the channel keeps
    # every other setting, in UTC, rather than being skipped whole (its digests and quiet
    # hours lost, its rules' alerts sent as they came).
    log.warning("stored channel %s: time zone %r is no longer taken; its times are in UTC "
                "(/channels set timezone: to choose one)", data.get("name"),
                str(settings["timezone"])[:80])
    return ServerRoute.model_validate(
        {**data, "settings": {k: v for k, v in settings.items() if k != "timezone"}})


class RuntimeModels:
    """Run-time rules, sources and server routes over a backend's table primitives."""

    async def _rows(self, table: str) -> list[tuple[str, str]]:
        """(key, model JSON) of every row of ``table``, in code-point order of the key."""
        raise NotImplementedError

    async def _models(self, table: str, what: str, validate: Callable[[dict[str, Any]], M]
                      ) -> list[M]:
        """The valid models stored in ``table``, by key, with ``origin="store"``. A row that no
        longer validates (the model changed under it) is logged and skipped, never fatal: one
        bad row must not stop a start."""
        out: list[M] = []
        for key, model in await self._rows(table):
            try:
                out.append(validate({**json.loads(model), "origin": "store"}))
            except ValidationError as exc:
                log.warning("stored %s %r is not valid and was skipped: %s", what, str(key),
                            _one_line(exc))
        return out

    async def _put(self, table: str, key: str, guild_id: int | None, model: str) -> None:
        raise NotImplementedError

    async def _delete(self, table: str, key: str) -> bool:
        raise NotImplementedError

    async def list_rules(self) -> list[RuleConfig]:
        """Rules added at run time, by key, as validated models with ``origin="store"``."""
        return await self._models("rules", "rule", RuleConfig.model_validate)

    async def put_rule(self, rule: RuleConfig) -> None:
        """Add or replace a run-time rule (keyed by ``rule.key``). Replacing one (a stored rule
        of that key) keeps its matches, mute and last surge: it is the same rule, changed. A
        new one starts with none, as :meth:`delete_rule` leaves them: what is still kept under
        its key was another rule's (a config file's rule taken out of the file, or written
        after a removal by a poll that still ran the removed rule)."""
        await self._put("rules", rule.key, rule.guild_id, dump_model(rule, exclude={"origin"}))

    async def delete_rule(self, key: str) -> bool:
        """Remove the run-time rule of this key (``RuleConfig.key``) and, in the same
        transaction, its mute and last surge, and retire its matches; False if there is no such
        rule. Kept by the key, they outlived their rule and were the next rule's given the
        same name: a mute silenced it with no word of it, and the old rule's matches showed as
        its own in /recent, /trend, /rules list and its preview, and set its first match and
        surge cooldown. A retired match is kept for its article (``matches_for`` gives it:
        /article shows it by rule and score) and counts for no rule: every read of a rule's
        matches (``recent(rule=…)``, ``rule_match_counts``, ``match_times``,
        ``first_match``, ``top_stories``, ``rule_times``) and its alerts' feedback
        (``rule_feedback``) leave it out. (A rule of the config file keeps them: one taken out
        of the file and put back is the same rule.)"""
        return await self._delete("rules", key)

    async def list_sources(self) -> list[SourceConfig]:
        """Sources added at run time, by key, as validated models with ``origin="store"``."""
        return await self._models("sources", "source", SOURCE_MODEL.validate_python)

    async def put_source(self, source: SourceConfig) -> None:
        """Add or replace a run-time source (keyed by ``source.key``)."""
        await self._put("sources", source.key, source.guild_id,
                        dump_model(source, exclude={"origin"}))

    async def delete_source(self, key: str) -> bool:
        """Remove the run-time source of this key (``SourceConfig.key``); False if none."""
        return await self._delete("sources", key)

    async def list_server_routes(self) -> list[ServerRoute]:
        """The routes servers picked in Discord, as validated models."""
        return await self._models("routes", "route", server_route)

    async def put_server_route(self, route: ServerRoute) -> None:
        """Add or replace a server's route (keyed by ``route.key``)."""
        await self._put("routes", route.key, route.guild_id, dump_model(route))

    async def delete_server_route(self, key: str) -> bool:
        return await self._delete("routes", key)


class CandidateList:
    """:meth:`candidates` on a backend's :meth:`candidate_page`."""

    async def candidate_page(self, *, fts: str | None, since: datetime | None = None,
                             source: str | None = None, after: str | None = None,
                             limit: int = 200, follows: Collection[str] | None = None,
                             sources: Collection[str] | None = None,
                             urls: str | None = None,
                             places: str | None = None,
                             marked: str | None = None,
                             screen: CandidateScreen | None = None) -> CandidatePage:
        raise NotImplementedError

    async def candidates(self, *, fts: str | None, since: datetime | None = None,
                         source: str | None = None, limit: int = 2000,
                         follows: Collection[str] | None = None,
                         urls: str | None = None) -> list[Article]:
        """Articles that may match, newest first: those the index query ``fts`` finds (see
        :func:`watchers.rules.lookup.index_query`), or all when it is None, and the URL index
        query ``urls`` finds too when given (:func:`watchers.rules.lookup.url_query`); at most
        ``limit``."""
        out: list[Article] = []
        after: str | None = None
        while len(out) < limit:
            page = await self.candidate_page(fts=fts, since=since, source=source, after=after,
                                             limit=min(limit - len(out), CANDIDATE_PAGE_MAX),
                                             follows=follows, urls=urls)
            out += page.articles
            if page.next is None:
                break
            after = page.next
        return out[:limit]


def outlets_json(outlets: Iterable[str]) -> str:
    """A story's outlets as the stores keep them: what ``json.dumps(outlets,
    ensure_ascii=False, separators=(",", ":"))`` writes for a list of strs, each spelt by the
    json module's own string encoder, without the encoder object a dumps call makes (1.9 µs
    a story, where this takes 0.4)."""
    return "[" + ",".join(map(encode_basestring, outlets)) + "]"


def cursor_json(cursor: Mapping[str, str]) -> str:
    """A source's cursor as the stores keep it, each key and value storable (a lone surrogate
    as U+FFFD, no NUL): PostgreSQL's jsonb refuses a lone surrogate's escape, and one
    source's cursor holding one failed the save of every source's state. Sources keep what
    they can send back (a validator the fetcher could not send is dropped, see
    ``watchers.sources.feed``); this is the stores' own guard."""
    return json.dumps({storable(k): storable(v) for k, v in cursor.items()})


def source_outlets_json(sources: Mapping[str, str]) -> str:
    """A story's sources' outlets (source key → outlet) as the stores keep them: compact JSON,
    spelt as :func:`outlets_json` spells the outlets."""
    enc = encode_basestring
    return "{" + ",".join(f"{enc(k)}:{enc(v)}" for k, v in sources.items()) + "}"


def sources_of(text: str | None) -> dict[str, str]:
    """A story's stored ``source_outlets`` (source key → the outlet it reported as), as
    :func:`source_outlets_json` wrote it."""
    found = json.loads(text) if text else None
    return found if isinstance(found, dict) else {}


class StoryBatch:
    """The story rows of one :meth:`record_many` batch, decided in memory and written once.

    Each stored article of a story used to upsert the story row and ask the outbox which of
    the story's alerts its outlets release. Here the batch reads the rows of its stories and
    which of them have alerts waiting for corroboration once, before the first article; each
    article then joins its story in memory (:meth:`join`: the story's distinct outlets, this
    article's included — what the upsert returned), and :meth:`rows` gives one row per story
    for the end of the batch. Invariants, so the stored result is the one the per-article
    upserts gave. The outbox stays the authority on what a story has: ``waiting`` (the stories
    that may hold alerts waiting for corroboration) and ``routed`` (the (story, route) pairs
    that may hold alerts) only let a writer skip a query that could find nothing — each is the
    set read before the batch plus what the batch wrote since, never less. The story rows:
    ``headline`` is the story's stored one or its first article's title;
    ``first`` / ``last`` widen over the batch's dates (the writers widen them again against the
    stored row, under the same lock); ``signature`` is the last stored article's; ``articles``
    counts the batch's articles (added to the stored count); ``outlets`` is the stored list
    followed by the batch's new outlets in reporting order; ``source_outlets`` is the stored
    map (source key → the outlet it reported as) with the outlet ``names`` gives each source
    of the batch that it does not hold yet (see :class:`OutletCount`).
    """

    def __init__(self, outlets: dict[str, list[str]], waiting: Collection[str] = (),
                 routed: Collection[tuple[str, str]] = (),
                 sources: dict[str, dict[str, str]] | None = None,
                 names: Mapping[str, str] | None = None) -> None:
        self._outlets = outlets  # story id → its stored outlets, in reporting order
        self._known = {sid: set(names) for sid, names in outlets.items()}
        self._sources = sources if sources is not None else {}  # story id → source → outlet
        self._names = names or {}
        self.waiting = set(waiting)
        self.routed = set(routed)
        self._rows: dict[str, list[Any]] = {}

    def wrote(self, story: str, route: str, state: str) -> None:
        """Note an outbox row the batch wrote for a story on a route."""
        self.routed.add((story, route))
        if state == "waiting":
            self.waiting.add(story)

    def join(self, title: str, link: Any) -> tuple[str, ...]:
        """Add a stored article (its ``title``, its :class:`~watchers.store.base.StoryLink`)
        to its story; the story's distinct outlets after it, in reporting order."""
        row = self._rows.get(link.id)
        if row is None:
            outlets = self._outlets.setdefault(link.id, [])
            known = self._known.setdefault(link.id, set())
            sources = self._sources.setdefault(link.id, {})
            row = self._rows[link.id] = [title, link.when, link.when, link.signature, 0, outlets,
                                         sources]
        else:
            outlets, known, sources = row[5], self._known[link.id], row[6]
            row[1], row[2] = min(row[1], link.when), max(row[2], link.when)
            row[3] = link.signature
        row[4] += 1
        source = link.outlet
        if source not in known:
            known.add(source)
            outlets.append(source)
        if source not in sources:
            # The outlet the source reports as now: kept with the story, so that a source
            # renamed or removed later still counts as the outlet it was.
            outlet = self._names.get(source)
            if outlet is not None:
                sources[source] = outlet
        return tuple(outlets)

    def stored(self, story: str) -> Mapping[str, str]:
        """The outlets the story's sources reported as (source key → outlet), the batch's
        included."""
        return self._sources.get(story, {})

    def rows(self, stamps: Mapping[Any, Any] | None = None,
             spell: Callable[[datetime], Any] | None = None) -> list[tuple[Any, ...]]:
        """(id, headline, first, last, signature, articles, outlets as JSON, source outlets as
        JSON) per story, in the order the batch first reached them. With ``spell``, first and
        last as it spells them (a backend's stored form), looked up in ``stamps`` first (the
        times the batch has spelt already: its articles' dates are their stories' first and
        last seen)."""
        dump, dump_sources = outlets_json, source_outlets_json
        known = stamps or {}
        out = []
        for sid, (title, first, last, sig, n, outlets, sources) in self._rows.items():
            if spell is not None:
                same = last == first
                first = known.get(first) or spell(first)
                last = first if same else (known.get(last) or spell(last))
            out.append((sid, title, first, last, sig, n, dump(outlets), dump_sources(sources)))
        return out


class OutletNames:
    """The outlet of each source of the config file and of those added without a server
    (source key → outlet, see :mod:`watchers.outlets`), as the engine tells the store
    (:meth:`name_outlets`). A story keeps the outlet each of its sources reported as, from
    these when it reports (:class:`StoryBatch`); :class:`OutletCount` counts a source by that,
    and by these only where the story holds none for it (stored before outlets were kept, or
    reported while the store had not been told). A feed servers follow needs no entry: its
    outlet is read with the follows that decide who sees it (:func:`route_feeds`). A source
    named nowhere counts as an outlet of its own."""

    _outlet_names: Mapping[str, str] = MappingProxyType({})

    def name_outlets(self, names: Mapping[str, str]) -> None:
        """Learn (or change) the outlets of these sources; the others are kept, as stories
        still name sources that stopped running. Replaced, never changed in place: a write on
        the store's thread may be counting with the mapping it was handed."""
        self._outlet_names = MappingProxyType({**self._outlet_names, **names})


class OutletCount:
    """A story's distinct outlets as each route's readers count them: what an alert's
    ``min_sources`` waits for. The story's ``outlets`` are the keys of the sources that
    reported it; two of one outlet (two feeds of one site, or sources whose config says one
    ``outlet``) count once — one publisher's two feeds do not corroborate each other.
    Every source of the config file counts on every route; a feed servers follow (a
    :data:`SERVER_FEED_PREFIX` key) counts only on the routes of the servers that follow it —
    never on the config file's routes — as :meth:`watchers.tenancy.Tenancy.label` shows them.
    Another server's feed reporting a story released an alert that waited for more outlets,
    which then named fewer than it waited for.

    ``stored``: the outlet each source reported as, kept with the story (see
    :class:`StoryBatch`): a source renamed or removed from the config since counts as that
    outlet still (looked up by its name alone, after a restart it was an outlet of its own,
    and released alerts one outlet's two feeds had not corroborated). ``names``: the sources'
    outlets now (see :class:`OutletNames`), for a source the story holds none for; a source
    in neither is an outlet of its own. ``feeds``: route → the feeds its server follows (key
    → outlet), read by the store (see :func:`route_feeds`) only when a server's feed is
    among the outlets: whom a followed feed's articles reach is its follows' to say, and so
    is its outlet (its key is its URL's, which no rename changes)."""

    __slots__ = ("_shared", "feeds", "names", "outlets", "stored")

    def __init__(self, outlets: Sequence[str],
                 feeds: Mapping[str, Mapping[str, str]] | None = None,
                 names: Mapping[str, str] | None = None,
                 stored: Mapping[str, str] | None = None) -> None:
        self.outlets = outlets
        self.feeds = feeds or {}
        self.names = names or {}
        self.stored = stored or {}
        self._shared: frozenset[str] | None = None  # the config file's sources' outlets

    @staticmethod
    def private(outlets: Iterable[str]) -> bool:
        """Whether a server's feed is among ``outlets`` (so the count depends on the route)."""
        return any(o.startswith(SERVER_FEED_PREFIX) for o in outlets)

    def on(self, route: str) -> int:
        """How many distinct outlets ``route``'s readers see among the story's sources."""
        return self.seen(self.feeds.get(route))

    def seen(self, followed: Mapping[str, str] | None, *, every: bool = False) -> int:
        """How many distinct outlets readers see among the story's sources who see the config
        file's sources and the followed feeds of ``followed`` (key → outlet: a server's
        follows). ``every``: they see every followed feed too (the operator), one that
        ``followed`` does not name as an outlet of its own."""
        if self._shared is None:
            names, stored = self.names, self.stored
            self._shared = frozenset(stored.get(o) or names.get(o, o) for o in self.outlets
                                     if not o.startswith(SERVER_FEED_PREFIX))
        if not followed and not every:
            return len(self._shared)
        followed = followed or {}
        seen = set(self._shared)
        for o in self.outlets:
            if o in followed:
                seen.add(followed[o])
            elif every and o.startswith(SERVER_FEED_PREFIX):
                seen.add(o)
        return len(seen)

    def releases(self, waiting: Iterable[tuple[int, str, int]]) -> list[tuple[int, str]]:
        """(id, route) of the ``waiting`` alerts, (id, route, min_sources) each, that have the
        outlets they wait for on their route."""
        return [(i, route) for i, route, need in waiting if need <= self.on(route)]


def _follow_outlet(model: str) -> tuple[str, str] | None:
    """(feed key, outlet) of a follow's stored source model: the follow's ``outlet``, else the
    site of its URL; None for a source without a URL."""
    data = json.loads(model)
    url = data.get("url")
    if not isinstance(url, str) or not url.strip():
        return None
    return feed_key(url), outlet_of(str(data.get("name", "")), outlet=data.get("outlet"),
                                    url=url)


def route_feeds(rows: Iterable[tuple[str, str]]) -> dict[str, dict[str, str]]:
    """route → the feeds its server follows (key → outlet: the follow's ``outlet``, else the
    site of its URL), from (route, stored source model) rows: each server route joined with
    its server's follows (see :class:`OutletCount`)."""
    feeds: dict[str, dict[str, str]] = {}
    for route, model in rows:
        found = _follow_outlet(model)
        if found is not None:
            feeds.setdefault(str(route), {})[found[0]] = found[1]
    return feeds


def follow_outlets(models: Iterable[str]) -> dict[str, str]:
    """The followed feeds (key → outlet) of these stored follow models, in their order: a feed
    several follows name is the first one's."""
    feeds: dict[str, str] = {}
    for model in models:
        found = _follow_outlet(model)
        if found is not None:
            feeds.setdefault(*found)
    return feeds


class ListedWords:
    """The words a store committed to the index's word list, so that a write batch offers it
    only the others. Words are listed for good, so a remembered word needs no listing again;
    :meth:`remember` is called only once the batch has committed (a failed or cancelled batch
    leaves its words unremembered). Bounded: past ``limit`` words the memory starts afresh,
    which only costs the next batches time."""

    def __init__(self, limit: int = 300_000) -> None:
        self.limit = limit
        self._words: set[str] = set()

    @staticmethod
    def of(records: Iterable[ArticleRecord]) -> set[str]:
        """The index words of ``records``: their word sets, else their terms split."""
        words: set[str] = set()
        for rec in records:
            words.update(rec.words if rec.words is not None else rec.terms.split())
        return words

    def unlisted(self, words: set[str]) -> set[str]:
        return words - self._words

    def remember(self, words: set[str]) -> None:
        if len(self._words) + len(words) > self.limit:
            self._words.clear()
        self._words |= words


def link_terms(rec: ArticleRecord, terms_of: Callable[[str, str], str] | None) -> str | None:
    """The words ``rec``'s link is indexed under for ``url:`` lookups: the record's own
    ``url_terms`` when the writer gave them, else ``terms_of(link, "")`` with the engine's
    words function the store was opened with; "" without a link. None when neither is there:
    the store then marks its URL index incomplete (:data:`URLS_INCOMPLETE`), so that no
    ``url:`` lookup misses the article."""
    if rec.url_terms is not None:
        return rec.url_terms
    url = rec.article.url
    if not url:
        return ""
    if terms_of is None:
        return None
    return terms_of(url, "")


# A stored link key longer than this (in UTF-8 bytes) is kept as a hash of itself: PostgreSQL's
# b-tree refuses an entry over about 2.7 KB, which made a feed item with a runaway tracking link
# fail its whole batch. Two such links still differ exactly when their hashes do.
MAX_LINK_KEY = 1000


def _bounded_link_key(url: str) -> str:
    key = normalise_link(url)
    encoded = key.encode("utf-8", "surrogatepass")
    if len(encoded) <= MAX_LINK_KEY:
        return key
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


# A poll's links are normalised for the dedupe read before matching and again in the batch that
# records them; the function is pure and costs more than a lookup.
_link_key = lru_cache(maxsize=20_000)(_bounded_link_key)


def _id_candidates(content: str) -> Iterator[str]:
    yield from (content[:n] for n in (16, 24, 32, 48))
    yield content
    yield from (f"{content[:16]}-{k}" for k in range(2, 1000))


async def free_id(content: str, taken: AbstractSet[str],
                  stored: Callable[[str], Awaitable[object]]) -> str:
    """An id for an article whose own id another article holds: its content hash's first 16
    characters, or more of them, or those with a number, the first that neither ``taken`` (this
    batch's) nor the store (``stored(id)`` answers None for a free one) holds. The first 16
    alone could be another article's id, and the whole batch then failed every time."""
    for candidate in _id_candidates(content):
        if candidate not in taken and await stored(candidate) is None:
            return candidate
    raise ValueError(f"no free id for the article of content {content[:16]}")


def free_id_now(content: str, taken: AbstractSet[str], stored: Callable[[str], object]) -> str:
    """:func:`free_id` with a ``stored`` that answers at once (a writer on the database's own
    thread)."""
    for candidate in _id_candidates(content):
        if candidate not in taken and stored(candidate) is None:
            return candidate
    raise ValueError(f"no free id for the article of content {content[:16]}")


def article_identity(article: Article) -> tuple[str | None, str]:
    """What both stores deduplicate ``article`` by: its link key (its normalised link, or a
    hash of one too long to index; None without a link) and its content hash as stored
    (:func:`stored_hash`)."""
    link = _link_key(article.url) if article.url else None
    return link, stored_hash(article.source, article.content_hash)


# Dedupe across audiences. An article of a feed servers follow (its source is the feed's key,
# SERVER_FEED_PREFIX and a hash) reaches only its followers' rules; one of the config file's
# sources reaches every rule. So an article is new to the rules of every audience that has not
# seen it: the operator's copy of an article a server's feed stored first is stored and matched
# (for the operator's rules and every other server's), and so is a server's feed's copy of what
# *another* followed feed stored first (for the servers that do not follow that feed; see
# WatchService._told_already); a copy of anything a config file's source stored, or of the
# feed's own, is new to no one. The articles table's content hashes are unique: a followed
# feed's articles are stored under their hash marked with the feed's key (stored_hash).
# Articles stored by earlier versions keep the rule they were stored under: those marked with
# the prefix alone (any later followed feed's copy of one is a duplicate) and those holding the
# plain hash (any later copy is).


def other_keys(name: str, state: tuple[int, int | None], wanted: int | None
               ) -> StoreError | None:
    """The refusal of a reader opening a store whose lookup indexes hold word keys of version
    ``state[0]`` (and are being rebuilt for ``state[1]``, if not None) when the engine's are
    ``wanted`` (None: the opener did not say); none when they agree, or when they hold 0
    (written by openers that did not say: nothing to hold against)."""
    held, building = state
    if wanted is None or held in (0, wanted):
        return None
    if building == wanted:
        # A writer is at it (run, as it starts), or was stopped part-way and the next goes on:
        # "open it with a command that writes" read as if nothing had been started.
        return StoreError(f"{name}: its lookup indexes are being rebuilt for this newswatch's "
                          f"word keys (version {wanted}) by a command that writes it (run, "
                          "import or migrate), or one stopped part-way that the next goes on "
                          "with; look up once that has finished")
    return StoreError(f"{name} holds lookup indexes of word keys version {held}; open it once "
                      f"with a command that writes (e.g. run) to rebuild them for version "
                      f"{wanted}")


def private_source(source: str) -> bool:
    """Whether ``source`` is a feed servers follow (its articles reach only their rules)."""
    return source.startswith(SERVER_FEED_PREFIX)


def stored_hash(source: str, content_hash: str) -> str:
    """The articles table's content hash of an article of ``source``: a followed feed's
    marked with the feed's key."""
    return f"{source}:{content_hash}" if private_source(source) else content_hash


def article_hash(source: str, stored: str) -> str:
    """An article's content hash from the table's (:func:`stored_hash` undone, and the prefix
    alone that earlier versions marked a followed feed's with)."""
    if private_source(source):
        if stored.startswith(source + ":"):
            return stored[len(source) + 1:]
        if stored.startswith(SERVER_FEED_PREFIX):
            return stored[len(SERVER_FEED_PREFIX):]
    return stored


def dedupe_hashes(article: Article) -> tuple[str, ...]:
    """The stored content hashes that make ``article`` a duplicate: a followed feed's article
    is one of its own feed's copy, of a config file's source's, and of a copy marked the way
    earlier versions marked any followed feed's; the config file's sources' only of theirs
    (and of a followed feed's stored before hashes were marked)."""
    if not private_source(article.source):
        return (article.content_hash,)
    return (stored_hash(article.source, article.content_hash),
            SERVER_FEED_PREFIX + article.content_hash, article.content_hash)


# The plain content hash of a followed feed's stored article, in SQL (both backends): what
# stored_hash marked (the feed's key and a colon, or the prefix alone before), taken off. The
# stores index it over the followed feeds' rows (FEED_COPY_WHERE), for followed_copies.
FEED_COPY_HASH = (
    "(CASE WHEN substr(content_hash, 1, length(source) + 1) = source || ':' "
    "THEN substr(content_hash, length(source) + 2) "
    f"WHEN substr(content_hash, 1, {len(SERVER_FEED_PREFIX)}) = '{SERVER_FEED_PREFIX}' "
    f"THEN substr(content_hash, {len(SERVER_FEED_PREFIX) + 1}) ELSE content_hash END)"
)
FEED_COPY_WHERE = f"substr(source, 1, {len(SERVER_FEED_PREFIX)}) = '{SERVER_FEED_PREFIX}'"


def link_dedupes(article: Article, other_source: str) -> bool:
    """Whether a stored article of ``other_source`` with ``article``'s link may make it a
    duplicate: a followed feed's row only for an article of that same feed."""
    return not private_source(other_source) or other_source == article.source


def guid_links_agree(link: str | None, other_link: str | None) -> bool:
    """Whether an article and a stored one of the same source and guid, of these link keys,
    are one article: a guid alone is trusted only when the links do not contradict it (some
    feeds reuse one guid for every item, and those items are distinct)."""
    return not link or not other_link or other_link == link


def same_link(article: Article, rows: Sequence[tuple[str, str | None, str]]) -> int | None:
    """Which of the stored articles under ``article``'s link, as (source, guid, title), it
    duplicates (the index of the first), or None. One link is one article unless the items
    say otherwise: some outlets give every item of a live page or a section front the same
    link, each with its own guid and title. A followed feed that has items of its own under
    the link is judged by those alone: the operator's copy of one of them (stored beside it,
    see stored_hash) is not every later item of the page. Another followed feed's rows never
    make an article a duplicate: that feed's followers saw it, this one's may not have.

    The rule as written: the stores answer it through :class:`LinkRows` (a batch) and
    :func:`same_link_sql` (one article), which the tests compare with it."""
    mine = private_source(article.source) and any(r[0] == article.source for r in rows)
    for i, (other_source, other_guid, other_title) in enumerate(rows):
        if mine and other_source != article.source:
            continue
        distinct = (article.guid and other_guid and other_source == article.source
                    and other_guid != article.guid and other_title != article.title)
        if not distinct and link_dedupes(article, other_source):
            return i
    return None


class LinkRows:
    """The stored articles under one link, indexed so that :meth:`first` answers
    :func:`same_link` over them (the rows :meth:`add`-ed, in order) at once, however many there
    are: a live page's link holds thousands of items, and judging each new item against every
    one of them made storing a page's items cost the square of their number. For each rule of
    ``same_link``, the position of the first row it may pick: a source's first row, its first
    row without a guid, with a guid, with a title; and the first rows of the first two sources
    that are not followed feeds (for "the first row of another such source")."""

    __slots__ = ("_by_guid", "_by_title", "_count", "_first", "_public", "_unguided")

    def __init__(self) -> None:
        self._count = 0
        self._first: dict[str, int] = {}  # source → its first row
        self._unguided: dict[str, int] = {}  # source → its first row without a guid
        self._by_guid: dict[tuple[str, str], int] = {}  # (source, guid) → first row
        self._by_title: dict[tuple[str, str], int] = {}  # (source, title) → first row
        self._public: list[tuple[int, str]] = []  # (first row, source): two public sources'

    def add(self, source: str, guid: str | None, title: str) -> None:
        """One more row (the next position), as ``same_link`` reads one: (source, guid, title)."""
        at = self._count
        self._count += 1
        if source not in self._first:
            self._first[source] = at
            if not private_source(source) and len(self._public) < 2:
                self._public.append((at, source))
        if guid:
            self._by_guid.setdefault((source, guid), at)
        else:
            self._unguided.setdefault(source, at)
        self._by_title.setdefault((source, title), at)

    def _own(self, article: Article) -> int | None:
        """The first row of ``article``'s own source that is not distinct from it (distinct:
        both have guids, and the guids and the titles differ)."""
        src = article.source
        if not article.guid:
            return self._first.get(src)
        found = [i for i in (self._unguided.get(src), self._by_guid.get((src, article.guid)),
                             self._by_title.get((src, article.title))) if i is not None]
        return min(found) if found else None

    def first(self, article: Article) -> int | None:
        """``same_link(article, rows)``: the position of the first row ``article`` duplicates,
        or None."""
        if private_source(article.source):
            if article.source in self._first:  # its own rows alone decide ("mine")
                return self._own(article)
            # No row is distinct from it, but only the config file's sources' rows count.
            return self._public[0][0] if self._public else None
        # Rows of followed feeds never make it a duplicate; another source's always do.
        found = [i for i, src in self._public if src != article.source][:1]
        if article.source in self._first:
            own = self._own(article)
            if own is not None:
                found.append(own)
        return min(found) if found else None


def same_link_sql(article: Article, mark: Callable[[int], str]) -> tuple[str, list[Any]]:
    """:func:`same_link` as SQL: a condition on the ``articles`` rows of ``article``'s link
    (the caller's ``link_key =`` parameter 1) that holds for exactly the rows same_link may
    pick, so that the first of them by rowid is the one it picks; and the parameters from 2 on
    (``mark(n)``: the backend's n-th placeholder). Each row is tested on its own (and, for a
    followed feed's article, against whether the link has rows of that feed), never against
    the others: the link's rows are read until the first that holds, not all of them into
    Python to be compared one by one."""
    link, src, guid, title, unguided = (mark(n) for n in range(1, 6))
    params: list[Any] = [article.source, article.guid, article.title, not article.guid]
    # Not distinct from the article, for a row of its source: distinct is both guids set, and
    # the guids and the titles differ.
    same = f"({unguided} OR guid IS NULL OR guid = '' OR guid = {guid} OR title = {title})"
    prefix = SERVER_FEED_PREFIX
    public = f"substr(source, 1, {len(prefix)}) <> '{prefix}'"
    if private_source(article.source):
        # Its own rows decide when it has any ("mine"); else any row of the config file's
        # sources is its duplicate (another followed feed's is not: link_dedupes).
        return (f"((source = {src} AND {same}) OR ({public} AND NOT EXISTS (SELECT 1 FROM "
                f"articles WHERE link_key = {link} AND source = {src})))"), params
    # A followed feed's row never makes it a duplicate (link_dedupes); another source's does.
    return f"{public} AND (source <> {src} OR {same})", params


# The twins one poll names one by one (the rest are counted in one note).
TWIN_NOTES = 20


def one_version_each(articles: Sequence[Article]) -> tuple[list[Article], list[str]]:
    """A poll's articles with each stored identity once: an item that the store would take for
    another version of an earlier item of the same poll (by its link, or by its guid, as
    ``_duplicate_of`` judges them) with other content is left out, and named in the second list
    (log-safe). A feed listing two items under one guid and link had the store keep the first,
    then replace it by the second at the next poll and back again at the one after: an
    unchanged feed "updated" its story on every poll, and one of the two was always missing.
    The first is kept, as the first poll kept it. Items of the same content are left to the
    store (a plain duplicate)."""
    kept: list[Article] = []
    twins: list[str] = []
    left_out = 0
    # Of one source only: another source's item under the same link is a copy, which the
    # store drops as such (and never takes for a new version). The earlier items are indexed
    # so that the first one an item matches is found at once, by the rules ``same_link`` and
    # ``guid_links_agree`` apply (the tests compare the two): a live page listing thousands of
    # items under one link made each item compare with every earlier one (8,000: 13 s on the
    # event loop). Each dict holds the position in ``kept`` of the first such item.
    link_first: dict[tuple[str, str], int] = {}  # any item under the link
    link_unguided: dict[tuple[str, str], int] = {}  # one without a guid
    link_guid: dict[tuple[str, str, str], int] = {}  # one with this guid
    link_title: dict[tuple[str, str, str], int] = {}  # one with this title
    guid_first: dict[tuple[str, str], int] = {}  # any item under the guid
    guid_unlinked: dict[tuple[str, str], int] = {}  # one without a link
    guid_link: dict[tuple[str, str, str], int] = {}  # one with this link
    for article in articles:
        src, guid, link = article.source, article.guid, (
            _link_key(article.url) if article.url else None)
        at: int | None = None
        shared = "link"
        if link is not None and (src, link) in link_first:
            # same_link among one source's items: the same article unless both have guids,
            # and the guids and the titles differ.
            if not guid:
                at = link_first[src, link]
            else:
                found = [i for i in (link_unguided.get((src, link)),
                                     link_guid.get((src, link, guid)),
                                     link_title.get((src, link, article.title)))
                         if i is not None]
                at = min(found) if found else None
        if at is None and guid and (src, guid) in guid_first:
            shared = "guid"
            if link is None:
                at = guid_first[src, guid]
            else:  # guid_links_agree: either has no link, or the links are one
                found = [i for i in (guid_unlinked.get((src, guid)),
                                     guid_link.get((src, guid, link))) if i is not None]
                at = min(found) if found else None
        if at is not None and kept[at].content_hash != article.content_hash:
            left_out += 1
            if len(twins) < TWIN_NOTES:
                ident = guid or article.url or article.title
                twins.append(f"item {ident[:80]!r}: the same {shared} as an earlier item of "
                             "this poll, with other content (the first is kept)")
            continue
        here = len(kept)
        kept.append(article)
        if link is not None:
            link_first.setdefault((src, link), here)
            if not guid:
                link_unguided.setdefault((src, link), here)
            else:
                link_guid.setdefault((src, link, guid), here)
            link_title.setdefault((src, link, article.title), here)
        if guid:
            guid_first.setdefault((src, guid), here)
            if link is None:
                guid_unlinked.setdefault((src, guid), here)
            else:
                guid_link.setdefault((src, guid, link), here)
    if left_out > len(twins):
        # Named up to a bound, as a feed's unreadable items are: a feed of 40,000 items under
        # one link logged 40,000 lines.
        twins.append(f"{left_out - len(twins):,} more items under an earlier item's identity")
    return kept, twins


def unbatched_listed(summaries: Sequence[CapSummary],
                     records: Sequence[ArticleRecord]) -> list[Article]:
    """The articles the summaries list that are not among ``records``: a poll's later batches
    (a summary goes in its first transaction), which the store looks up to tell whether
    another poll stored them meanwhile."""
    batch = {id(r.article) for r in records} | {r.article.id for r in records}
    out: dict[int, Article] = {}
    for summary in summaries:
        for article, _ in summary.listed:
            if id(article) not in batch and article.id not in batch:
                out.setdefault(id(article), article)
    return list(out.values())


def summaries_stored(summaries: Sequence[CapSummary], records: Sequence[ArticleRecord],
                     stored: Sequence[Article | None],
                     duplicate: Callable[[Article], bool]) -> list[CapSummary]:
    """The summaries as one write of ``records`` (``stored``: what it stored of each) may
    write them: each naming only the articles this poll stores, and none that names none.
    An article of the batch is the poll's if the batch stored it; one of a later batch unless
    it ``duplicate``s what is stored now (another poll's, written while this one read the
    feed): it is then named by the poll that stored it, in an alert or in its summary."""
    if not summaries:
        return []
    mine: dict[int, tuple[Article, bool]] = {}
    by_id: dict[str, bool] = {}
    for rec, kept in zip(records, stored, strict=True):
        mine[id(rec.article)] = (rec.article, kept is not None)
        by_id[rec.article.id] = by_id.get(rec.article.id, False) or kept is not None

    def ours(article: Article) -> bool:
        got = mine.get(id(article))
        if got is not None and got[0] is article:
            return got[1]
        if article.id in by_id:
            return by_id[article.id]
        return not duplicate(article)

    return [s for s in (summary.only(ours) for summary in summaries) if s is not None]
