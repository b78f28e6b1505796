"""The Store protocols and the records they return.

The store is the one place state lives. Its protocol is split by domain so each service names
what it uses and a second implementation (PostgreSQL) can be written one domain at a time:

- :class:`ArticleStore`: articles (deduplicated), the matches that fired, lookup candidates.
- :class:`OutboxStore`: the outbox — alerts and notices per route, in the order they were
  written, with their delivery state; destinations paused across restarts.
- :class:`StateStore`: per-source state, and the rules, sources and mutes added at run time.
- :class:`StoryStore`: stories (the same event from several outlets), their messages per route.
- :class:`LeaseStore`: what several processes sharing one database need (PostgreSQL): source
  leases for poll workers, requeueing the claims of a process that is gone, and change
  notifications. The SQLite store is one process's by design: it refuses leases, has no
  other process's claims to requeue and never notifies (see its ``state`` module).
- :class:`AckStore`: who acknowledged an alert (once, the first click wins) or found it not
  relevant (once per person), the one escalation of an unacknowledged alert, feedback per rule.

:class:`Store` is all of them plus ``aclose``. An alert's outbox row is written in the same
transaction as its article and carries the rules as they were when the article matched, so
delivery never asks the watch side what a rule looks like now.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal, NamedTuple, Protocol, Self, TypeVar

from watchers.config import RuleConfig, ServerRoute, SourceConfig
from watchers.models import Article, Fired, Match

__all__ = [
    "CONFIG_CHANNEL",
    "LIVE_ALERT_STATES",
    "MIN_PREFIX",
    "OUTBOX_CHANNEL",
    "PAGE_MAX_SECOND",
    "SERVER_FEED_PREFIX",
    "SEVERITIES",
    "AckRecord",
    "AckStore",
    "AlertState",
    "ArticleRecord",
    "ArticleStore",
    "CandidatePage",
    "CapSummary",
    "LeaseStore",
    "OutboxEntry",
    "OutboxKind",
    "OutboxRow",
    "OutboxStore",
    "Registration",
    "RuleFeedback",
    "ScheduleStore",
    "SourceState",
    "StateStore",
    "Store",
    "StoryLink",
    "StoryRecord",
    "StoryStore",
    "highest_severity",
    "overflow_text",
    "page_second",
    "severity_rank",
    "sort_time",
    "story_outcome",
    "waiting_changes",
]

# A feed servers follow from Discord is polled once, under a key of this prefix and a hash of
# its URL, whichever servers follow it; its articles carry that key as their source. No other
# source's name may start with it (the config refuses one), so a store can tell which
# articles only their followers see.
SERVER_FEED_PREFIX = "@"


def feed_key(url: str) -> str:
    """The name a followed feed is polled and stored under: the same for every server (see
    :mod:`watchers.tenancy`)."""
    return SERVER_FEED_PREFIX + hashlib.sha256(url.strip().encode()).hexdigest()[:12]

# The states of an alert not sent yet and not settled: what a server that stops following a
# feed no longer gets of it (see OutboxStore.reject_alerts_of).
UNSENT_ALERT_STATES: tuple[str, ...] = ("pending", "retry", "held", "waiting", "scheduled")
UNSENT_ALERT_SQL = ", ".join(f"'{s}'" for s in UNSENT_ALERT_STATES)

AlertState = Literal["pending", "sending", "delivered", "retry", "rejected", "held", "suppressed",
                     "waiting", "uncorroborated", "scheduled", "digested"]
# "summary": the per-poll cap's summary of the alerts it left out, a notice that a route's quiet
# hours keep (see DeliveryService._keep_summary).
OutboxKind = Literal["alert", "notice", "update", "digest", "surge", "summary"]
SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")  # mildest first
# An alert of a story on a route that still speaks for it: a later article updates it (or
# escalates past it) instead of posting anew — also when it waits for, or went out in, a digest
# (the update then joins the digest, see DeliveryService._keep_update).
LIVE_ALERT_STATES = ("pending", "sending", "retry", "delivered", "held", "scheduled", "digested")


@dataclass(frozen=True)
class OutboxEntry:
    """An alert to write with its article: which route, the rules that fired (as they were when
    they matched), muted or not; and how the route treats stories: ``stories`` is the route's
    mode ("edit" | "thread" follow the story, "off" alerts per article), ``severity`` the
    highest of the rules, ``min_sources`` the fewest outlets the alert waits for (the smallest
    of the rules' ``min_sources``: any rule that is satisfied lets it post; of a story's
    article, the store writes only the rules that post with it, see :func:`corroborated`)."""

    route: str
    rules: tuple[RuleConfig, ...]
    suppressed: bool = False
    stories: str = "off"
    severity: str = "medium"
    min_sources: int = 1


def overflow_text(source: str, titles: Sequence[str]) -> str:
    """The summary of alerts past a poll's cap: how many, and the first titles."""
    lines = [f"Source {source!r} brought {len(titles)} more matching article(s) in one poll "
             f"than are posted one by one; they are stored (see /recent and /search):"]
    size = len(lines[0])
    for title in titles:
        line = f"• {title[:150]}"
        if size + len(line) > 1700:
            lines.append(f"… and {len(titles) - len(lines) + 1} more")
            break
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines)


@dataclass(frozen=True)
class CapSummary:
    """The summary, on one route, of the alerts a poll brought past its source's
    ``max_alerts_per_poll`` (``text``), with the rules that fired on them: its severity is
    theirs, so quiet hours keep it unless one of them reaches the route's ``break_through``.

    Made by :meth:`of`, it also keeps the articles it lists (``listed``, each with its rules
    on the route) and the source as the route names it: the store then writes it naming only
    the articles this poll stores (:meth:`only`). Two polls of one source at once (a lease
    that lapsed, a poll run beside the scheduled one) both found the same articles new; the
    one whose write finds them stored already alerted nobody of them, and its summary, written
    all the same, posted the same list twice."""

    route: str
    text: str
    rules: tuple[RuleConfig, ...] = ()
    listed: tuple[tuple[Article, tuple[RuleConfig, ...]], ...] = ()
    source: str = ""

    @classmethod
    def of(cls, route: str, source: str,
           listed: Sequence[tuple[Article, tuple[RuleConfig, ...]]]) -> CapSummary:
        """The summary listing these articles (oldest first) by their titles."""
        return cls(route, overflow_text(source, [a.title for a, _ in listed]),
                   tuple({r.key: r for _, rules in listed for r in rules}.values()),
                   tuple(listed), source)

    def only(self, stored: Callable[[Article], bool]) -> CapSummary | None:
        """This summary naming only the listed articles ``stored`` says this poll stores;
        None when it stores none of them (another poll did, and said so). A summary made
        without its articles is written as it is."""
        if not self.listed:
            return self
        mine = [(a, rules) for a, rules in self.listed if stored(a)]
        if len(mine) == len(self.listed):
            return self
        return CapSummary.of(self.route, self.source, mine) if mine else None


class StoryLink(NamedTuple):
    """The story a new article joins (or starts): its id, the story's signature including this
    article (persisted so the live index can be rebuilt), the article's outlet and time.
    Immutable; a named tuple rather than a frozen dataclass, which costs three times as much
    to make (one per grouped article)."""

    id: str
    signature: str
    outlet: str
    when: datetime


@dataclass(frozen=True)
class StoryRecord:
    """A stored story: its first article's title, when it was first and last reported, how many
    articles and which outlets (in the order they reported)."""

    id: str
    headline: str
    first_seen: datetime
    last_seen: datetime
    articles: int
    outlets: tuple[str, ...]
    signature: str = ""
    updated_at: datetime | None = None
    # The distinct outlets among ``outlets`` as its reader counts them (two feeds of one site
    # are one: see OutletCount), as lookups give it; None: not counted (as the store reads it).
    counted: int | None = None


def severity_rank(severity: str | None) -> int:
    """A severity's place in :data:`SEVERITIES` (mildest 0); an unknown one ranks as
    "medium", the default a rule has."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else 2


def highest_severity(severities: Iterable[str]) -> str:
    """The most severe of ``severities`` that is known, "medium" when none is."""
    known = [s for s in severities if s in SEVERITIES]
    return max(known, key=SEVERITIES.index) if known else "medium"


def corroborated(entry: OutboxEntry, outlets: int) -> OutboxEntry:
    """The part of ``entry``, an alert of a story's article, that posts with ``outlets``
    reporting the story (pure; shared by every store): the rules whose ``min_sources`` that
    many outlets meet, or, when none is met, those that need the fewest (the alert waits for
    them). A rule that needs more is left out of this article's alert: carried by a milder
    rule that needs one outlet, a rule waiting for two went out on one outlet's word, with its
    severity and its role's ping. A later article of the story that fires it once its outlets
    have reported posts it (an escalation where it is more severe)."""
    if entry.suppressed or len({r.min_sources for r in entry.rules}) <= 1:
        return entry
    met = tuple(r for r in entry.rules if r.min_sources <= outlets)
    if not met:
        least = min(r.min_sources for r in entry.rules)
        met = tuple(r for r in entry.rules if r.min_sources == least)
    if len(met) == len(entry.rules):
        return entry
    return replace(entry, rules=met, severity=highest_severity(r.severity for r in met),
                   min_sources=min(r.min_sources for r in met))


def story_outcome(entry: OutboxEntry, outlets: int,
                  existing: Sequence[tuple[str, str | None] | tuple[str, str | None, int]]
                  ) -> tuple[OutboxKind | None, AlertState, str | None]:
    """What a route gets for a story's new article (pure; shared by every store).

    ``existing``: the (state, severity[, min_sources]) of the story's alerts already on this
    route, other than suppressed, rejected and uncorroborated ones (min_sources 1 when not
    given); ``outlets``: the story's distinct outlets including this article, after the alerts
    they release were released. Returns (kind, state, escalated_from); kind None means no row
    (the article only corroborates an alert that still waits).

    - no live alert: an alert, ``waiting`` until ``min_sources`` outlets have reported — none
      when an alert at least as severe already waits for no more outlets;
    - a live alert: an ``update`` of its message, unless a rule of higher severity fired, which
      posts a new alert that says what it escalated from.

    An alert that waits says it escalates from the most severe alert that posts before it:
    the live one, or one that waits for fewer outlets (and so is released first). With
    :func:`waiting_changes`, a route's waiting alerts of a story stay a chain — the more
    outlets one waits for, the more severe it is — so each release posts one message, and
    every message after the story's first says what it escalated from.
    """
    ready: AlertState = "pending" if outlets >= entry.min_sources else "waiting"
    rank = severity_rank(entry.severity)
    live = [row[1] for row in existing if row[0] in LIVE_ALERT_STATES]
    top = max(live, key=severity_rank) if live else None
    if live and rank <= severity_rank(top):
        return "update", "pending", None
    waiting = [(row[1], row[2] if len(row) > 2 else 1) for row in existing
               if row[0] == "waiting"]
    if ready == "waiting" and any(severity_rank(sev) >= rank and need <= entry.min_sources
                                  for sev, need in waiting):
        return None, "waiting", None  # corroborates an alert that waits
    before = [*([top] if live else []),
              *(sev for sev, need in waiting if ready == "waiting" and need < entry.min_sources)]
    return "alert", ready, max(before, key=severity_rank) if before else None


def waiting_changes(entry: OutboxEntry, ready: bool,
                    waiting: Sequence[tuple[int, str | None, int, str | None]]
                    ) -> tuple[list[int], dict[int, str]]:
    """What a new alert of ``entry`` on a route (posting now when ``ready``, else waiting)
    changes in the story's alerts that wait on that route, ``waiting``: (id, severity,
    min_sources, escalated_from) each (pure; shared by every store). Returns the ids that will
    not post (the new alert posts no later and is at least as severe: it would be a second
    message saying less) and, for those that will post after it and are more severe, what
    they now escalate from (see :func:`story_outcome`)."""
    rank = severity_rank(entry.severity)
    superseded: list[int] = []
    escalates: dict[int, str] = {}
    for wid, sev, need, since in waiting:
        later = ready or need > entry.min_sources
        if severity_rank(sev) <= rank and (ready or need >= entry.min_sources):
            superseded.append(wid)
        elif later and severity_rank(sev) > rank and (
                since is None or severity_rank(since) < rank):
            escalates[wid] = entry.severity
    return superseded, escalates


# A table whose presence says the URL index misses some stored article's link: a writer stored
# one without its words (see link_terms), or an upgrade had no words function. Lookups then do
# not narrow by it (they read as before the URL index: slower, never wrong).
URLS_INCOMPLETE = "article_urls_incomplete"


@dataclass(frozen=True)
class ArticleRecord:
    """One new article to store with everything written beside it: its matches, its outbox
    entries, its lookup terms and the story it joins (see :meth:`ArticleStore.record`).

    ``words``, when the caller has them, are the terms' words as a set (``set(terms.split())``,
    exactly): the store lists them in the index's word list without splitting the terms again.
    ``url_terms`` are the words the article's link is found under by ``url:`` terms (the caller
    computes them, as it does ``terms``: see :func:`watchers.rules.lookup.url_terms`); None:
    the store computes them with the ``terms_of`` it was opened with, and refuses the record
    if it has none and the article has a link. ``matched_at``: when its matches count as made
    (surges, trends, /rules list); None: when the batch is recorded. History (a source's first
    poll, an import) is counted at the article's own date, so that it is not taken for a burst.
    ``places``: its words where they stand (:func:`watchers.rules.lookup.places_of`), for a
    store that keeps them (SQLite's places index); None: the store computes them with the
    ``places_of`` it was opened with, or without one places the article by its words alone
    (found by every query of its words, less narrowly).
    """

    article: Article
    matches: Sequence[Fired]
    alerts: Sequence[OutboxEntry]
    terms: str
    story: StoryLink | None = None
    words: AbstractSet[str] | None = None
    url_terms: str | None = None
    matched_at: datetime | None = None
    places: tuple[str, str, str, str] | None = None


@dataclass(frozen=True)
class OutboxRow:
    """One outbox row for one route, with its delivery state: an alert (an article and the rules
    that matched it), an update of a story's message (a later article of the story), or a
    notice (``text``, no article)."""

    id: int
    kind: OutboxKind
    article_id: str | None  # None for notices
    route: str
    rules: tuple[RuleConfig, ...]  # empty for notices
    text: str | None  # the notice's text; None for alerts
    state: AlertState
    attempts: int
    nonce: str
    next_attempt_at: datetime | None
    remote_id: str | None
    reason: str | None
    created_at: datetime
    story_id: str | None = None
    escalated_from: str | None = None  # an alert that posts anew past a milder one
    changed: bool = False  # an update about an article whose content changed in place
    min_sources: int = 1
    digest_id: int | None = None  # the digest that carried it
    scheduled_for: datetime | None = None  # when the digest that will carry it is due


@dataclass(frozen=True)
class SourceState:
    """What the service remembers of a source between polls and restarts."""

    name: str
    cursor: Mapping[str, str] = field(default_factory=dict)
    polls: int = 0
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    failures: int = 0
    next_poll: datetime | None = None
    paused: bool = False
    skipped: int = 0  # items the source could not read, in all


@dataclass(frozen=True)
class Registration:
    """A source a poll worker registers (:meth:`LeaseStore.register_sources`), with what its
    settings allow as they are now. A source with no state yet is first due at ``first``
    (None: at once). A stored next poll later than its state allows is brought forward to
    ``latest`` while the source answers (now + its interval: one shortened since waited out the
    old one), ``latest_failing`` while it fails (its longest backoff or a publisher's longest
    Retry-After, which are kept up to that) and ``latest_paused`` while it is paused (its
    probe); None: no bound. ``polled``: what it polls (the cursor's ``/polled``, see
    :data:`watchers.service.POLLED`); a stored state that polled something else (its URL or
    path changed) is due at ``first``, its old address's wait not kept; None: not compared."""

    first: datetime | None = None
    latest: datetime | None = None
    latest_failing: datetime | None = None
    latest_paused: datetime | None = None
    polled: str | None = None


@dataclass(frozen=True)
class CandidatePage:
    """One page of lookup candidates, newest first (``sort_at`` descending; among equal
    ``sort_at``, the later stored first), and the cursor of the next page (None: no more).

    Pages may be uneven, even empty with a cursor, when filters drop rows; every article is
    on exactly one page, and the order holds across pages to the second: an article on a later
    page has a ``sort_at`` no later than the whole second of any on an earlier page.

    ``read_to``: the whole second (:func:`page_second`) of the last candidate the page read,
    when a screen may have left candidates out (so a lookup that has its matches knows the
    rest are older without reading on); None otherwise."""

    articles: list[Article]
    next: str | None
    read_to: int | None = None


class CandidateScreen(Protocol):
    """A test of a candidate's stored title and text that every article a lookup's query
    matches passes (:class:`watchers.rules.lookup.RowScreen`): a store may run it where it
    reads candidates and leave out those that fail."""

    def start(self) -> None:
        """A statement that screens rows begins (its time is counted afresh)."""
        ...

    def passes(self, title: str | None, text: str | None) -> bool: ...


# The whole seconds pages are ordered by are clamped to 1970..2106 (the lookup index's key range).
PAGE_MAX_SECOND = (1 << 32) - 1
# Shortest id prefix that get_article resolves (what /article accepts), in every backend.
MIN_PREFIX = 6
# The articles read for an id prefix when only some of them count (a server's): enough that two
# of its own among them are seen as two.
PREFIX_CANDIDATES = 64


def only_one(found: Sequence[Article], visible: Callable[[Article], bool] | None
             ) -> Article | None:
    """The one article of ``found`` (those whose id starts with a prefix) that ``visible``
    accepts (any, without it), or None when none or several are."""
    kept = found if visible is None else [a for a in found if visible(a)]
    return kept[0] if len(kept) == 1 else None


def sort_time(article: Article) -> datetime:
    """The time an article is ordered by (``sort_at``): when published, else when fetched."""
    return article.published or article.fetched_at


class _StoryLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def headline(self) -> str: ...
    @property
    def first_seen(self) -> datetime: ...
    @property
    def last_seen(self) -> datetime: ...
    @property
    def articles(self) -> int: ...
    @property
    def outlets(self) -> tuple[str, ...]: ...


_S = TypeVar("_S", bound=_StoryLike)


def story_as_seen(story: _S, seen: Sequence[Article], outlets: tuple[str, ...]) -> _S:
    """``story`` (a :class:`StoryRecord` or a delivery's story view) as readers who see only
    ``seen`` of its articles (oldest first, at least one) know it: the outlets they see, and
    its headline, first and last seen and count from those articles alone, so that another
    server's feed shows in none of them."""
    times = [sort_time(a) for a in seen]
    return dataclasses.replace(  # type: ignore[type-var]
        story, headline=seen[0].title, first_seen=min(times), last_seen=max(times),
        articles=len(seen), outlets=outlets)


async def story_seen(store: StoryStore, story: _S, label: Callable[[str], str | None]
                     ) -> _S | None:
    """``story`` as readers know it who see an outlet or an article's source by the name
    ``label`` gives it (None: one they do not see, another server's feed): the outlets by
    their names; where one is hidden, its headline, times and count from the articles they
    see (read from ``store``). None when they see none of its articles."""
    names = [label(o) for o in story.outlets]
    seen = tuple(x for x in names if x is not None)
    if len(seen) == len(names):
        return story if seen == story.outlets else dataclasses.replace(  # type: ignore[type-var]
            story, outlets=seen)
    stored = await store.story_articles(story.id, limit=max(story.articles, 1))
    visible = [a for a in stored if label(a.source) is not None]
    return story_as_seen(story, visible, seen) if visible else None


def page_second(when: datetime) -> int:
    """The whole second that orders ``when`` across candidate pages (see :class:`CandidatePage`)."""
    return max(0, min(PAGE_MAX_SECOND, math.floor(when.timestamp())))


class ArticleStore(Protocol):
    """Articles, their matches, and the candidates a lookup reads."""

    async def is_known(self, article: Article) -> bool: ...
    async def known(self, articles: Sequence[Article]) -> list[bool]: ...
    async def stored_hashes(self, hashes: Collection[str]) -> set[str]: ...
    async def followed_copies(self, hashes: Collection[str]) -> dict[str, set[str]]: ...
    async def record(
        self,
        article: Article,
        matches: Sequence[Fired],
        alerts: Sequence[OutboxEntry],
        *,
        terms: str,
        url_terms: str | None = None,
    ) -> Article | None: ...
    async def record_many(self, records: Sequence[ArticleRecord], *,
                          at: datetime | None = None,
                          notices: Sequence[tuple[str, str]] = (),
                          summaries: Sequence[CapSummary] = ()) -> list[Article | None]: ...
    async def known_versions(self, articles: Sequence[Article]
                             ) -> list[tuple[Article | None, Article | None]]: ...
    async def hash_sources(self, hashes: Collection[str]) -> dict[str, set[str]]: ...
    async def get_article(self, article_id: str, *,
                          visible: Callable[[Article], bool] | None = None
                          ) -> Article | None: ...
    async def matches_for(self, article_id: str, *, retired: bool = True) -> list[Match]:
        """The matches stored for an article, by rule; with ``retired=False``, not those
        retired with their rule (see ``delete_rule``: kept for the article, no rule's)."""
        ...

    async def count_articles(self, *, follows: Collection[str] | None = None) -> int: ...
    async def count_by_source(self, *, follows: Collection[str] | None = None
                              ) -> dict[str, int]: ...
    async def recent(
        self, *, rule: str | None = None, limit: int = 10, rules: Collection[str] | None = None,
        follows: Collection[str] | None = None,
    ) -> list[tuple[Article, list[Match]]]: ...
    async def candidates(
        self,
        *,
        fts: str | None,
        since: datetime | None = None,
        source: str | None = None,
        limit: int = 2000,
        follows: Collection[str] | None = None,
        urls: str | None = None,
    ) -> list[Article]: ...
    async def candidate_page(
        self,
        *,
        fts: str | None,
        since: datetime | None = None,
        source: str | None = None,
        after: str | None = None,
        limit: int = 200,
        follows: Collection[str] | None = None,
        sources: Collection[str] | None = None,
        urls: str | None = None,
        places: str | None = None,
        marked: str | None = None,
        screen: CandidateScreen | None = None,
    ) -> CandidatePage:
        """Candidates newest first after the cursor ``after``: articles the index query
        ``fts`` finds among their title and text words (all when None) and, with ``urls``,
        that the URL index query ``urls`` finds among their URL words too (see
        :func:`watchers.rules.lookup.url_query`). ``places``: the same lookup's query of the
        places index (:func:`watchers.rules.lookup.places_query`), which a store that keeps one
        whole reads instead of ``fts`` (a narrower superset); others ignore it. ``marked``: that
        query with number marks (``places_query(..., marks=True)``, narrower still), which such
        a store reads instead where every row holds its article's marks. ``screen``: a
        test every match passes, which a store may run on the rows it reads and leave out
        those that fail (a page may then be short, even empty, with a cursor); others ignore
        it."""
        ...
    async def stored_sources(self, *, limit: int | None = None) -> list[str]:
        """The distinct source names of the stored articles, in order; at most ``limit``."""
        ...
    async def rule_match_counts(self, *, since: datetime | None = None) -> dict[str, int]: ...
    async def index_words(self, *, after: int = 0) -> tuple[list[str], int] | None:
        """The words the lookup index holds listed after the cursor ``after`` (0: all), with
        the cursor to read on from; None when the store keeps no word list (a fuzzy lookup
        then reads every article)."""
        ...


class OutboxStore(Protocol):
    """The outbox: what delivery claims, in order, per route, and the state of each row."""

    async def add_notice(self, route: str, text: str) -> int: ...
    async def claim_route(self, route: str, *, now: datetime, limit: int = 20
                          ) -> list[OutboxRow]: ...
    async def due_routes(self) -> dict[str, datetime | None]: ...
    async def mark_delivered(self, alert_id: int, remote_id: str | None, *,
                             at: datetime | None = None,
                             clear_maybe_sent: bool = False) -> None: ...
    async def mark_retry(self, alert_id: int, *, at: datetime, reason: str) -> None: ...
    async def clamp_retries(self, latest: datetime, now: datetime) -> int:
        """Make the rows waiting for a retry later than ``latest`` due at ``now``; how many."""
        ...
    async def mark_rejected(self, alert_id: int, reason: str) -> None: ...
    async def reject_alerts_of(self, source: str, routes: Collection[str], reason: str
                               ) -> int: ...
    async def mark_maybe_sent(self, alert_id: int, maybe: bool = True) -> None: ...
    async def maybe_sent(self, alert_id: int) -> bool: ...
    async def count_maybe_sent(self) -> int: ...
    async def pause_route(self, route: str, reason: str) -> int: ...
    async def resume_route(self, route: str) -> int: ...
    async def paused_routes(self) -> dict[str, str]: ...
    async def held_counts(self) -> dict[str, int]: ...
    async def alert_counts(self, *, routes: Collection[str] | None = None
                           ) -> dict[str, int]: ...
    async def notice_counts(self) -> dict[str, int]: ...
    async def alerts(self, *, state: AlertState | None = None, kind: OutboxKind | None = None,
                     limit: int = 1000, routes: Collection[str] | None = None,
                     newest: bool = False, after: int = 0) -> list[OutboxRow]: ...
    async def requeue_interrupted(self, route: str | None = None) -> int: ...


class StateStore(Protocol):
    """Per-source state, and the rules, sources and mutes users add at run time."""

    async def source_state(self, name: str) -> SourceState | None: ...
    async def save_source_state(self, state: SourceState) -> None: ...
    async def save_source_states(self, states: Sequence[SourceState]) -> None: ...
    async def all_source_states(self) -> list[SourceState]: ...
    async def list_rules(self) -> list[RuleConfig]: ...
    async def put_rule(self, rule: RuleConfig) -> None: ...
    async def delete_rule(self, key: str) -> bool: ...  # RuleConfig.key
    async def list_sources(self) -> list[SourceConfig]: ...
    async def put_source(self, source: SourceConfig) -> None: ...
    async def delete_source(self, key: str) -> bool: ...  # SourceConfig.key
    async def list_server_routes(self) -> list[ServerRoute]: ...
    async def put_server_route(self, route: ServerRoute) -> None: ...
    async def delete_server_route(self, key: str) -> bool: ...  # ServerRoute.key
    # Mutes are by rule key (RuleConfig.key).
    async def mute(self, rule: str, until: datetime) -> None: ...
    # unmute: whether the rule was muted at ``now`` (a mute that had ended was not).
    async def unmute(self, rule: str, *, now: datetime) -> bool: ...
    async def mutes(self, *, now: datetime) -> Mapping[str, datetime]: ...
    # Servers the bot was removed from (guild id → since when): their rules, feeds and
    # channels are kept but not run until the bot is back (see watchers.engine.Engine.left).
    async def departed_servers(self) -> Mapping[int, datetime]: ...
    async def set_departed(self, guild_id: int, since: datetime | None) -> bool: ...


# Change notifications (LeaseStore.listen): OUTBOX_CHANNEL when outbox rows become pending
# (payload empty); CONFIG_CHANNEL when rules, sources, routes, mutes or route pauses change
# (payload: the table — "rules", "sources", "routes", "mutes", "route_pauses",
# "departed_servers"). A listener
# may also be called with an empty payload after a lost connection: look at everything.
OUTBOX_CHANNEL = "newswatch_outbox"
CONFIG_CHANNEL = "newswatch_config"


class LeaseStore(Protocol):
    """Several processes on one database: poll workers lease due sources (each polled by one
    worker at a time; a lease that expires frees the source for another), delivering
    processes requeue only claims whose process is gone, and every process hears changes."""

    async def register_sources(self, sources: Mapping[str, Registration]) -> None: ...
    async def retire_source(self, name: str) -> None: ...
    async def resume_shared(self, name: str) -> bool: ...
    async def claim_sources(self, *, owner: str, until: datetime, now: datetime, limit: int
                            ) -> list[SourceState]: ...
    async def release_source(self, state: SourceState, *, owner: str) -> bool: ...
    async def renew_leases(self, names: Sequence[str], *, owner: str, until: datetime
                           ) -> int: ...
    async def release_leases(self, owner: str) -> int: ...
    async def requeue_orphaned(self) -> int: ...
    async def listen(self, channel: str, listener: Callable[[str, str], None]) -> None: ...
    async def stories_touched(self, after: datetime | None
                              ) -> tuple[list[StoryRecord], datetime]: ...
    async def database_clock(self) -> datetime | None:
        """The database server's clock now, which every process sharing it is compared with
        (see :mod:`watchers.skew`); None where the store is this process's own (SQLite)."""


class StoryStore(Protocol):
    """Stories: written with their articles (see :class:`ArticleRecord`), read for lookups, the
    live index at start-up, and the story's message per route for updates."""

    async def live_stories(self, since: datetime | timedelta, *,
                           until: datetime | None = None) -> list[StoryRecord]: ...
    async def get_story(self, story_id: str) -> StoryRecord | None: ...
    async def stories_of(self, article_ids: Sequence[str]) -> dict[str, StoryRecord]: ...
    async def story_articles(self, story_id: str, *, limit: int = 100) -> list[Article]: ...
    async def story_alert(self, story_id: str, route: str) -> OutboxRow | None: ...
    async def story_message(self, story_id: str, route: str
                            ) -> tuple[str | None, str | None] | None: ...
    async def set_story_message(self, story_id: str, route: str, message_id: str | None,
                                thread_id: str | None, *, posted_by: int | None = None
                                ) -> None: ...
    async def expire_waiting(self, before: datetime) -> int: ...
    async def lower_wait(self, row_id: int, min_sources: int) -> bool: ...
    async def record_change(self, stored_id: str, article: Article, routes: Sequence[str],
                            *, matches: Sequence[Fired] = (),
                            alerts: Sequence[OutboxEntry] = (),
                            rematched: bool = False) -> int: ...
    async def add_outlet(self, article_id: str, outlet: str, when: datetime,
                         routes: Sequence[str]) -> int: ...
    async def count_stories(self) -> int: ...
    async def counted_outlets(self, story_id: str, routes: Sequence[str]) -> dict[str, int]:
        """How many distinct outlets each route's readers count among the story's sources
        (what ``min_sources`` waits for); {} for a story not stored."""
    async def outlets_seen(self, story_ids: Sequence[str], *, guild: int | None = None
                           ) -> dict[str, int]:
        """How many distinct outlets each stored story of these has as a server's readers
        count them (``guild``), or the operator (None), as :meth:`counted_outlets` counts
        them; by story id."""
    def name_outlets(self, names: Mapping[str, str]) -> None:
        """The outlet of each of these sources (source key → outlet, see
        :mod:`watchers.outlets`): what ``min_sources`` counts a story's sources by."""


class ScheduleStore(Protocol):
    """Alerts kept for digests (quiet hours, caps, digest routes) and surges."""

    async def schedule(self, row_id: int, until: datetime, reason: str) -> None: ...
    async def sent_since(self, route: str, since: datetime,
                         until: datetime | None = None) -> int: ...
    async def make_digests(self, now: datetime) -> list[int]: ...
    async def reschedule(self, route: str, reason: str, until: datetime) -> int: ...
    async def digest_members(self, digest_id: int) -> list[OutboxRow]: ...
    async def digest_now(self, route: str, now: datetime, *, pending: bool = False) -> int: ...
    async def scheduled_routes(self) -> dict[str, tuple[int, datetime | None]]: ...
    async def kept_summaries(self) -> dict[str, int]: ...
    async def scheduled_story_row(self, story_id: str, route: str) -> OutboxRow | None: ...
    async def last_surge(self, rule: str) -> datetime | None: ...
    async def add_surge(self, rule: str, route: str, text: str, at: datetime,
                        not_since: datetime | None = None, *,
                        model: RuleConfig | None = None) -> int: ...
    async def match_times(self, rules: Sequence[str], since: datetime
                          ) -> dict[str, list[datetime]]: ...
    async def first_match(self, rule: str) -> datetime | None: ...
    async def rule_times(self, rule: str, since: datetime) -> list[datetime]: ...
    async def top_stories(self, rule: str, since: datetime, limit: int = 3
                          ) -> list[tuple[str, int]]: ...


@dataclass(frozen=True)
class AckRecord:
    """The acknowledgement of an alert: who (a front end's user id) and when. ``first`` is false
    when the alert had already been acknowledged (by ``user_id``, at ``at``) before this click."""

    alert_id: int
    user_id: int
    at: datetime
    first: bool = True


@dataclass(frozen=True)
class RuleFeedback:
    """A rule's alerts that were posted in a window, how many of them were acknowledged, and how
    many someone marked "not relevant" (an alert counts once however many people did)."""

    alerts: int = 0
    acks: int = 0
    not_relevant: int = 0


class AckStore(Protocol):
    """Acknowledgements, "not relevant" marks and escalations of posted alerts (outbox rows of
    kind ``alert``). Each write is one transaction and idempotent: a second acknowledgement
    returns the first, a second mark by the same person is not counted, and an alert is
    escalated at most once (the escalation's notice is written in the same transaction)."""

    async def alert_row(self, alert_id: int) -> OutboxRow | None: ...
    async def acknowledge(self, alert_id: int, user_id: int, at: datetime) -> AckRecord: ...
    async def get_ack(self, alert_id: int) -> AckRecord | None: ...
    async def mark_not_relevant(self, alert_id: int, user_id: int, at: datetime) -> bool: ...
    async def escalation_due(self, *, delivered_before: datetime, delivered_after: datetime,
                             severities: Sequence[str], limit: int = 100) -> list[OutboxRow]: ...
    async def escalate(self, alert_id: int, route: str, text: str, at: datetime) -> int | None: ...
    async def rule_feedback(self, *, since: datetime) -> dict[str, RuleFeedback]: ...


class Store(ArticleStore, OutboxStore, StateStore, StoryStore, ScheduleStore, AckStore,
            LeaseStore, Protocol):
    """Persistence for the engine. Every write is one short transaction."""

    @property
    def path(self) -> str:  # where the data is, for messages (never credentials)
        ...

    async def aclose(self) -> None: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None: ...
