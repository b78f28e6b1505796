"""Delivery: the Sink protocol, the Alert a sink receives, and the DeliveryService that drains
the outbox.

The service hands each alert to the sink of its route and records the outcome in the store, one
small transaction per step, so a crash anywhere leaves every alert either delivered or waiting.

- Routes are independent: each has its own worker, so one slow, rate-limited or failing
  destination never holds up another.
- Within a route alerts go out strictly in the order they were written: a route's next alert is
  claimed only when the one before it is settled (delivered, rejected or held), and a retry
  waits in place rather than being overtaken.
- Transient errors back off per route (the destination's ``retry_after`` when it gave one).
  An error that may hide a successful send is recorded on the alert ("maybe sent") before the
  retry, so a sink that cannot deduplicate by itself can look first.
- An invalid body rejects that alert with the reason and the route goes on; an unusable
  destination pauses the route (persisted), holds its alerts, and tells the team on the notices
  route; resuming sends what was held, in order.
- Notices (a source or destination paused) are outbox rows like alerts: the same order,
  retries and durability. A sink that cannot post notices has them logged instead.
- An unacknowledged critical alert (when alerts carry acknowledgement buttons and an
  escalation role is set) re-pings that role once, ``escalate_after`` its delivery, by a
  notice on its route that links to it; the store writes the notice and remembers the
  escalation in one transaction, so never twice.
- The service knows the watch side only through the store: it waits on ``wake`` (set by whoever
  wrote outbox rows) or its poll interval, then reads what is due.
- Shared (``shared=True``: several processes deliver from one PostgreSQL store, see
  :mod:`watchers.roles`): ``wake`` is set by the store's outbox notification and
  ``poll_interval`` is only a slow safety net. The store gives a route to one process at a time
  (a route with rows another live process claimed yields nothing; such a route is looked at
  again after ``elsewhere_wait``), so order and exactly-once hold across processes. Only the
  claims of processes that are gone are requeued (at start and every ``orphans_every``), never
  a live one's; pauses are re-read when any process pauses or resumes a route.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import logging
import math
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, Protocol, TypeVar, runtime_checkable

from watchers._finish import finish
from watchers.config import Config, RouteConfig, RuleConfig, format_duration
from watchers.errors import (
    ConfigIssue,
    DeliveryError,
    NewswatchError,
    PermanentDeliveryError,
    StoreError,
    StoreUnavailableError,
    TransientDeliveryError,
    UncertainDeliveryError,
)
from watchers.models import Article, Match, matchable
from watchers.outage import StoreOutage
from watchers.rules import REGEX_BUDGET, Rule, RuleSet
from watchers.schedule import Clock, SystemClock, cap_window_end, next_digest, quiet_end
from watchers.store.base import (
    SERVER_FEED_PREFIX,
    SEVERITIES,
    OutboxRow,
    OutboxStore,
    Store,
    StoryRecord,
    highest_severity,
    severity_rank,
    story_seen,
)

__all__ = [
    "WEBHOOK_PAUSE_MARK",
    "AckSink",
    "Alert",
    "DeliveryService",
    "DeliveryStatus",
    "Digest",
    "DigestItem",
    "DigestSink",
    "NoticeSink",
    "OutboxStore",
    "PauseSink",
    "Sink",
    "StoryUpdate",
    "StoryView",
    "UpdateResult",
    "UpdateSink",
]

log = logging.getLogger(__name__)

# How a sink ends the reason of a webhook's pause (" [webhook <mark>]"): such a pause is lifted
# by a start with the route's URL corrected (PauseSink.stale_pause), and says so.
WEBHOOK_PAUSE_MARK = "[webhook "

# The rule sets kept for rebuilding alerts' evidence (one per distinct set of an alert's rules).
_EVIDENCE_SETS: Final = 256
# How an article of a feed the route's server no longer follows names its source, and why an
# alert of one is not sent.
UNFOLLOWED: Final = "unfollowed feed"
UNFOLLOWED_REASON: Final = "its server no longer follows the feed it came from"
# Why an alert of a rule muted since it matched is not sent.
MUTED_REASON: Final = "its rule was muted before it was sent"

# The route whose sink is being called now, in the task that calls it (and the tasks it
# starts): a sink that calls back into what waits for its own send is refused, not left to
# wait for itself until the send timeout.
_SENDING: contextvars.ContextVar[str | None] = contextvars.ContextVar("_SENDING", default=None)


def refuse_inside_sink(what: str, route: str | None = None) -> None:
    """Raise NewswatchError when called from a sink's send (of ``route``, if given): ``what``
    waits for that send to end."""
    sending = _SENDING.get()
    if sending is not None and (route is None or route == sending):
        raise NewswatchError(f"{what} cannot be called from inside a sink's send (route "
                             f"{sending!r}): it waits for that send to end; call it from "
                             "another task")
T = TypeVar("T")

# The longest wait a destination's retry_after is taken for (an hour; longer is taken as an
# hour, and said); one that is not a number makes the route back off as for any other error.
# A day let one bogus 429 (a proxy's, an edge server's) park a route for 24 hours, across
# restarts (the wait is stored), with nothing to free it; asked again after an hour, a
# destination that does want longer says so again.
MAX_RETRY_AFTER = 3_600.0

@dataclass(frozen=True)
class StoryView:
    """A story as a sink shows it, read when the row is delivered (so a late send names every
    outlet known by then)."""

    id: str
    headline: str  # the title of its first article
    first_seen: datetime
    last_seen: datetime
    outlets: tuple[str, ...]  # distinct outlets (source or domain), in the order they reported
    articles: int
    updated_at: datetime | None = None  # when a member's content last changed in place
    # The distinct outlets among ``outlets`` as the route's readers count them (two feeds of
    # one site are one): what an alert waiting for min_sources has, and what a story's message
    # counts. None: as many as ``outlets`` (or a store that does not count them).
    counted: int | None = None


@dataclass(frozen=True)
class Alert:
    """One alert to deliver: an article, the rules that fired for this route (as they were when
    they matched), and their evidence.

    ``nonce`` is fixed when the alert is written, before its first try, and is the same on every
    retry. ``maybe_sent`` is true when an earlier attempt may have reached the destination.
    ``story`` is the article's story on a route that follows stories (None otherwise);
    ``escalated_from`` is the severity of the story's earlier alert on this route when this one
    posts anew because a rule of higher severity fired.
    """

    id: int
    route: str
    nonce: str
    attempt: int
    article: Article
    matches: tuple[Match, ...]
    rules: tuple[RuleConfig, ...]
    maybe_sent: bool = False
    story: StoryView | None = None
    escalated_from: str | None = None

    @property
    def severity(self) -> str:
        return _severity(self.rules)


@dataclass(frozen=True)
class StoryUpdate:
    """A later article of a story whose alert was already posted on this route: shown by editing
    that message (``mode="edit"``) or as a line in a thread started on it (``"thread"``), never
    as a new message that pings.

    ``alert`` is the story's alert on this route as it was posted (its article, rules and
    evidence), so an edit re-renders it with the story's line and a repost after a deletion
    looks the same. ``article`` is the article this update is about: a new report
    (``changed=False``) or an earlier member whose content changed in place (``changed=True``).
    ``message_id`` is the story's message on the route, ``thread_id`` its thread if one was
    started. ``nonce`` and ``maybe_sent`` mean what they mean on an :class:`Alert`.
    """

    id: int
    route: str
    nonce: str
    attempt: int
    mode: Literal["edit", "thread"]
    story: StoryView
    alert: Alert
    article: Article
    message_id: str
    thread_id: str | None = None
    changed: bool = False
    maybe_sent: bool = False
    # who acknowledged the story's alert and when (a front end's user id), if someone did:
    # a message re-rendered whole (a text-style alert, a repost) shows it again
    acknowledged: tuple[int, datetime] | None = None
    # A later update of the story on this route is sent right after this one (the same burst
    # of reports): an update that replaces what the message shows (an edit) may be skipped,
    # since the later one shows the story as it is then; a line of its own (a thread's, a
    # forum post's reply) may not. Ten outlets in one poll made ten edits of one message,
    # each behind Discord's rate limit, and the route's next alerts waited behind them.
    superseded: bool = False


@dataclass(frozen=True)
class UpdateResult:
    """Where the story lives on the route after an update: the same message, or a new one
    (``reposted``) when the original was deleted; and the thread, once one was started."""

    message_id: str
    thread_id: str | None = None
    reposted: bool = False


@runtime_checkable
class UpdateSink(Protocol):
    """A sink that can update a story's message (edit it, or post in its thread). Errors as for
    :class:`Sink`. A message that no longer exists is not an error: post the story afresh and
    return the new message's id with ``reposted=True``."""

    async def update(self, update: StoryUpdate) -> UpdateResult: ...


@dataclass(frozen=True)
class DigestItem:
    """One line of a digest: a story (or an article on its own), the rules that fired on this
    route, and how many of the story's articles the digest carries."""

    article: Article  # the first of the story's articles in this digest: its headline and link
    rules: tuple[RuleConfig, ...]
    story: StoryView | None
    articles: int = 1
    severity: str = "medium"
    newest: datetime | None = None  # when its newest article in the digest was published


@dataclass(frozen=True)
class Digest:
    """What a route kept for later, in one message (or as few as the destination's limits
    need): ``reason`` is why it waited — "digest" (a digest route), "quiet hours" or "cap"
    (past ``max_per_hour``). Items are grouped by rule, newest first; ``nonce`` and
    ``maybe_sent`` mean what they mean on an :class:`Alert`."""

    id: int
    route: str
    nonce: str
    attempt: int
    reason: str
    items: tuple[DigestItem, ...]
    since: datetime  # when the oldest item was written
    maybe_sent: bool = False
    timezone: str = "UTC"  # the route's, for showing times of day

    @property
    def stories(self) -> int:
        return len(self.items)

    @property
    def articles(self) -> int:
        return sum(i.articles for i in self.items)


@runtime_checkable
class DigestSink(Protocol):
    """A sink that can post a digest; returns the remote id of its (first) message."""

    async def digest(self, digest: Digest) -> str | None: ...


class Sink(Protocol):
    """Something that shows alerts to people. Returns the remote id of what it posted, if any.

    Raise TransientDeliveryError to try again later (UncertainDeliveryError when the send may
    have gone through), PermanentDeliveryError when the same alert will never go through
    (``pause_destination=True`` when the destination itself is unusable).
    """

    async def deliver(self, alert: Alert) -> str | None: ...


@runtime_checkable
class NoticeSink(Protocol):
    """A sink that can also post a plain operational notice (a destination paused …).
    ``nonce`` and ``maybe_sent`` mean what they mean on an :class:`Alert`."""

    async def notice(self, route: str, text: str, *, nonce: str | None = None,
                     maybe_sent: bool = False) -> str | None: ...


@runtime_checkable
class PauseSink(Protocol):
    """A sink that can tell a stored pause it would no longer make: the reason it gave was
    not the destination's fault (a Discord sink once paused every channel when the bot's own
    token was refused). Such a pause is lifted at start and its held alerts sent."""

    def stale_pause(self, route: str, reason: str) -> bool: ...


@runtime_checkable
class AckSink(Protocol):
    """A sink whose alerts can carry acknowledgement buttons. ``alert_link`` is a link to a
    posted alert (``message_id``: what ``deliver`` returned), or None when the route's alerts
    carry no buttons (then nobody could acknowledge them, and they are never escalated)."""

    def alert_link(self, route: str, message_id: str) -> str | None: ...


@dataclass(frozen=True)
class DeliveryStatus:
    """The outbox as /alerts status shows it."""

    counts: dict[str, int]
    paused: dict[str, str]  # route → reason
    held: dict[str, int]  # route → alerts held
    backing_off: dict[str, datetime]  # route → next attempt
    maybe_sent: int
    rejected: list[OutboxRow]  # the most recent, newest last
    waiting: list[OutboxRow] = field(default_factory=list)  # alerts waiting for more outlets
    # (route, story id) → the waiting alerts' stories, as each route's readers see them (the
    # outlets they see; a headline from another server's feed is not theirs to see)
    stories: dict[tuple[str, str], StoryView] = field(default_factory=dict)
    # route → (alerts kept for a digest, when the next digest that carries them is due)
    scheduled: dict[str, tuple[int, datetime | None]] = field(default_factory=dict)
    # route → cap summaries kept for the end of its quiet hours (no alerts: counted apart)
    summaries: dict[str, int] = field(default_factory=dict)
    next_digest: dict[str, datetime] = field(default_factory=dict)  # digest routes' next time
    # route → (why its last send failed, failures in a row, alerts waiting to be sent there),
    # for the routes backing off
    backing_off_why: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    # when the first alert waiting for a retry (a send that failed, in this process or one
    # before) is due, if that is still to come
    next_retry: datetime | None = None


def _severity(rules: Sequence[RuleConfig]) -> str:
    return highest_severity(r.severity for r in rules)


def _later_updates(rows: Sequence[OutboxRow]) -> dict[int, OutboxRow]:
    """For each update among ``rows`` (one route's, in order), the next update of the same
    story after it, where there is one and no alert of the story comes between them (an
    escalation posts a message of its own, which the later update then edits)."""
    later: dict[int, OutboxRow] = {}
    nxt: dict[str, OutboxRow] = {}
    for row in reversed(rows):
        if row.story_id is None:
            continue
        if row.kind != "update":
            nxt.pop(row.story_id, None)
            continue
        if row.story_id in nxt:
            later[row.id] = nxt[row.story_id]
        nxt[row.story_id] = row
    return later


def _view(record: StoryRecord) -> StoryView:
    return StoryView(id=record.id, headline=record.headline, first_seen=record.first_seen,
                     last_seen=record.last_seen, outlets=record.outlets,
                     articles=record.articles, updated_at=record.updated_at)


@dataclass
class _RouteState:
    paused_reason: str | None = None
    failures: int = 0
    not_before: datetime | None = None
    last_error: str | None = None  # why the last send failed (cleared by a success)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    elsewhere_until: datetime | None = None  # another process delivers it (shared)
    # A pass stopped by an unreachable store may have left rows claimed ("sending"), one of
    # them maybe sent: the next pass puts them back as maybe sent first.
    reclaim: bool = False
    told_at: float | None = None  # when a failure was last logged as a warning (monotonic)


# A route failing again and again: each of its first failures in a row is a warning, then one
# an hour; the others are debug lines. A destination answering 5xx for days wrote a warning at
# every retry, about 300 a day a route, where a failing source writes 24.
TOLD_FAILURES: Final = 5
TELL_EVERY: Final = 3600.0

class DeliveryHalted(NewswatchError):
    """A sink ended delivery from inside a send (it raised SystemExit or KeyboardInterrupt):
    the engine fails with this error, and nothing more is sent until it is opened again."""


# Why a waiting alert whose rules were all removed is not posted.
REMOVED_WHILE_WAITING: Final = "its rule was removed while it waited for corroboration"

# Seconds aclose waits for cancelled delivery tasks to end.
CLOSE_WAIT: Final = 10.0


def _left_task_done(task: asyncio.Task[Any]) -> None:
    """How a delivery task left running at close ended, said in one line: its failure (the
    store it wrote to is closed by then) was otherwise asyncio's "exception was never
    retrieved" with a traceback."""
    if task.cancelled():
        return
    if (exc := task.exception()) is not None:
        log.warning("delivery task %s, left running at close, ended with %s: %s",
                    task.get_name(), type(exc).__name__, exc)


def check_sink(sink: object, what: str) -> None:
    """TypeError naming ``what`` unless ``sink`` has an ``async def deliver``, and its
    ``update`` and ``digest``, if it has them, are ``async def`` too (a plain ``def deliver``
    ran, then failed at every retry, posting again each time; so did a plain ``update``,
    posting in a story's thread at every retry)."""
    deliver = getattr(sink, "deliver", None)
    if not callable(deliver):
        raise TypeError(f"{what}: {type(sink).__name__} has no deliver method "
                        "(a sink needs 'async def deliver(self, alert)')")
    for name, arg in (("deliver", "alert"), ("update", "update"), ("digest", "digest")):
        method = getattr(sink, name, None)
        if (inspect.isfunction(method) or inspect.ismethod(method)) and not (
                inspect.iscoroutinefunction(method)):
            raise TypeError(f"{what}: {type(sink).__name__}.{name} is not a coroutine "
                            f"function (write 'async def {name}(self, {arg})')")


def check_sinks(sinks: object, default_sink: object) -> None:
    """:func:`check_sink` of each, and TypeError unless ``sinks`` is a mapping."""
    if sinks is not None and not isinstance(sinks, Mapping):
        raise TypeError(f"sinks: a mapping of route name to sink, not {type(sinks).__name__}")
    for route, sink in (sinks or {}).items():
        check_sink(sink, f"the sink of route {route!r}")
    if default_sink is not None:
        check_sink(default_sink, "default_sink")


def kept_for_later(route: RouteConfig) -> list[str]:
    """The settings of ``route`` that keep alerts for a digest (``mode``, ``quiet_hours``,
    ``max_per_hour``), by key: a route with any needs a sink that can post a digest."""
    return [key for key, on in (("mode", route.mode == "digest"),
                                ("quiet_hours", bool(route.quiet_hours)),
                                ("max_per_hour", bool(route.max_per_hour))) if on]


_KEEPS_SAID = {"mode": 'mode = "digest"'}


def digest_sink_issues(config: Config, sinks: Mapping[str, object] | None,
                       default_sink: object) -> list[ConfigIssue]:
    """The routes whose settings keep alerts for a digest (``mode = "digest"``, quiet hours,
    ``max_per_hour``) while the sink that serves them cannot post one (no ``digest``, see
    :class:`DigestSink`): what they kept was marked delivered and never shown."""
    issues: list[ConfigIssue] = []
    for name in sorted(config.channels):
        route = config.route(name)
        sink = (sinks or {}).get(name, default_sink)
        if route is None or sink is None or callable(getattr(sink, "digest", None)):
            continue
        keeps = [_KEEPS_SAID.get(key, key) for key in kept_for_later(route)]
        if keeps:
            issues.append(ConfigIssue(
                f"channels.{name}",
                f"{' and '.join(keeps)} keep alerts for a digest, but this route's sink "
                f"({type(sink).__name__}) cannot post one: give it `async def digest(digest)` "
                "(watchers.delivery.DigestSink), or drop the setting"))
    return issues


def sent_id(value: object, sink: object, method: str) -> str | None:
    """What a sink's ``method`` returned, as the stored remote id: a str, or None. An int (a
    message id, as some clients give it) is kept as its digits; anything else was sent but
    names nothing we can keep, and is logged (storing it stopped every delivery)."""
    if value is None or isinstance(value, str):
        return None if value is None else str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    log.error("%s.%s returned %s, not a message id (str) or None: sent, but kept without an "
              "id", type(sink).__name__, method, type(value).__name__)
    return None


def update_result(value: object, sink: object, where: tuple[str | None, str | None]
                  ) -> tuple[str | None, str | None]:
    """Where the story lives after a sink's ``update`` returned ``value``, given where it
    lived before (message id, thread id): an UpdateResult's; a message id (as ``deliver``
    returns it, see :func:`sent_id`) in the same thread; else as before, logged. The update
    was made either way: failing it here retried it for ever, posting in the thread at
    every retry."""
    if isinstance(value, UpdateResult):
        return value.message_id, value.thread_id
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return str(value), where[1]
    log.error("%s.update returned %s, not an UpdateResult: sent, and the story's message kept "
              "as it was", type(sink).__name__, type(value).__name__)
    return where


@dataclass
class DeliveryService:
    """Drains the outbox into sinks: ``sinks[route]``, else ``default_sink``; a route with
    neither keeps its alerts pending (e.g. a route with no configured destination yet).

    ``notices_route`` is where notices about a paused destination are written (never the route
    in trouble); they are logged either way.
    """

    store: Store
    sinks: Mapping[str, Sink] = field(default_factory=dict)
    default_sink: Sink | None = None
    # The routes the default sink takes, asked at each send (None: every route without a sink
    # of its own); see Engine.only_known_routes_to_default_sink.
    default_routes: Callable[[], Collection[str]] | None = None
    notices_route: str | None = None
    wake_event: asyncio.Event = field(default_factory=asyncio.Event)
    batch: int = 50
    base_backoff: float = 1.0
    max_backoff: float = 300.0
    poll_interval: float = 1.0
    # How long one call of a sink may take before it counts as lost (see _within).
    send_timeout: float = 300.0
    on_fatal: Callable[[BaseException], None] | None = None  # the store failed: stop everything
    # An unreachable store (a server restarting) is waited for, up to the outage's limit.
    outage: StoreOutage = field(default_factory=StoreOutage)
    # How each route shows a story's later articles ("edit" | "thread"); None: edit.
    stories_mode: Callable[[str], str] | None = None
    story_window: timedelta = timedelta(hours=48)  # a wait for corroboration ends after this
    # Each route's schedule (digest, quiet hours, cap); None or a None answer: immediate.
    routes: Callable[[str], RouteConfig | None] | None = None
    known_routes: Sequence[str] = ()  # routes to report on (besides those with a sink)
    # A source as a route's readers know it: ``source_label(route, source)`` is the name the
    # route's server gave a feed it follows, or None for a feed that server does not follow
    # (left out of a story's outlets). None: every source as stored.
    source_label: Callable[[str, str], str | None] | None = None
    # For a route a server picked: (where that server's notices go, the route's label there);
    # None for the config file's routes, whose notices go to ``notices_route``. A server's
    # route is told about in its own channels, and an escalation there mentions no role (the
    # operator's escalation_role is a role of the operator's server).
    server_route: Callable[[str], tuple[str | None, str] | None] | None = None
    # Whether a route is a channel of a server not served now (it removed the bot): no
    # escalation is written for it meanwhile (None: none is).
    away: Callable[[str], bool] | None = None
    # The keys of the rules running now: an alert that waited for corroboration posts only if
    # one of its rules still runs, unmuted (None: not checked).
    rules_now: Callable[[], Collection[str]] | None = None
    clock: Clock = field(default_factory=SystemClock)
    # Each route's settings when its kept alerts were last brought in line with them.
    _schedules_seen: dict[str, RouteConfig | None] = field(default_factory=dict, init=False,
                                                           repr=False)
    # The routes that keep alerts, as the last look at the store found them (None: not yet).
    _kept_routes: list[str] | None = field(default=None, init=False, repr=False)
    # Set when a sink quit inside a send (see DeliveryHalted): nothing more is sent.
    _halted: DeliveryHalted | None = field(default=None, init=False, repr=False)
    # /digest now, one at a time: two at once each counted the rows the first had made due
    # and not yet made a digest, and both said they were sending them.
    _digest_now_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False,
                                           repr=False)
    # The latest time the clock read at a look at the kept alerts (see _make_digests).
    _latest_look: datetime | None = field(default=None, init=False, repr=False)
    # Rows this attempt marked maybe sent before calling their sink (see _within): the mark
    # is the attempt's own, and its answer takes it back.
    _marked: set[int] = field(default_factory=set, init=False, repr=False)
    # Acknowledgement: alerts at or above ack_from carry buttons ("none": none do); with an
    # escalation_role, a critical one nobody acknowledged re-pings that role once,
    # escalate_after its delivery (without one, nothing is escalated).
    ack_from: str = "none"
    # What an alert's evidence is rebuilt with (the service's): ingest stores which rules
    # matched and their scores; the spans shown as "why" are found again when the alert is
    # made, by the rules as the alert's row keeps them (see with_evidence).
    threshold: int = 85
    aliases: Mapping[str, Sequence[str]] = field(default_factory=dict)
    executor: Executor | None = None  # where evidence is found (None: asyncio's default)
    # The regexes' time for one alert's evidence (seconds, wall clock): ten times ingest's
    # budget, since the rule is known to match and the lookup threads may be busy (a regex
    # that fit ingest's 0.1 s ran out of it on loaded threads and the alert showed no "why").
    evidence_regex_budget: float = 10 * REGEX_BUDGET
    _evidence_sets: dict[tuple[tuple[str, str, int], ...], RuleSet | None] = field(
        default_factory=dict, init=False, repr=False)
    escalate_after: timedelta = timedelta(minutes=15)
    escalation_role: int | None = None
    shared: bool = False  # several processes deliver from this store (see the docstring)
    elsewhere_wait: float = 2.0
    orphans_every: timedelta = timedelta(seconds=10)
    delivered: int = 0
    _expired_at: datetime | None = None
    _escalated_at: datetime | None = None
    _orphans_at: datetime | None = None
    _routes: dict[str, _RouteState] = field(default_factory=lambda: defaultdict(_RouteState))
    _workers: dict[str, asyncio.Task[int]] = field(default_factory=dict)
    _unserved: set[str] = field(default_factory=set)  # routes due here with no sink, said
    _task: asyncio.Task[None] | None = None
    _loaded: bool = False
    _closing: bool = False

    def __post_init__(self) -> None:
        check_sinks(self.sinks, self.default_sink)

    def sink_for(self, route: str) -> Sink | None:
        sink = self.sinks.get(route)
        if sink is not None or self.default_sink is None:
            return sink
        if self.default_routes is not None and route not in self.default_routes():
            return None  # a route the config no longer names: it waits (see default_routes)
        return self.default_sink

    async def _within(self, call: Awaitable[T], sink: object, row: OutboxRow) -> T:
        """A sink's answer within :attr:`send_timeout` seconds, else UncertainDeliveryError
        (the send may have gone through: the next attempt is marked maybe sent, for the sink
        to look before it posts again). A sink that never answered held its route, and every
        alert behind it, for ever.

        Before the sink is called, ``row`` is marked maybe sent (unless it is already), so a
        crash from here on leaves it so; a row claimed and never handed to its sink comes
        back as it was (a digest route still keeps it, where every row of a claim cut short
        by a crash used to come back maybe sent, and was posted at once with its pings). The
        attempt's answer takes the mark back (see :meth:`_deliver_row`)."""
        try:
            if row.id not in self._marked and not (
                    row.attempts > 1 and await self.store.maybe_sent(row.id)):
                await self.store.mark_maybe_sent(row.id)
                self._marked.add(row.id)
        except BaseException:
            # Not sent (the store went away, a cancel): the sink's call is dropped unstarted.
            if isinstance(call, Coroutine):
                call.close()
            raise
        name = type(sink).__name__
        limit = asyncio.timeout(self.send_timeout)
        try:
            async with limit:
                return await call
        except TimeoutError as exc:
            if limit.expired():
                raise UncertainDeliveryError(
                    f"{name} did not answer in {self.send_timeout:g} s") from None
            # The sink's own (its HTTP client's, say): not a send that never answered.
            raise UncertainDeliveryError(
                f"{name} raised {type(exc).__name__}" + (f": {exc}" if str(exc) else "")
            ) from None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling() == 0:
                # The sink's own (a future it awaited was cancelled), not a stop of delivery:
                # passed on as one, the alert was left "sending" and the route's later alerts
                # went out before it.
                raise UncertainDeliveryError(
                    f"{name} raised CancelledError of its own") from None
            raise
        except BaseException as exc:
            if isinstance(exc, Exception):
                raise  # a failure of the send's own, told by _deliver_row
            # A sink that ends the process from inside delivery ended the event loop with the
            # engine open: its store's thread then kept the process alive for good. The engine
            # fails instead (its front end stops as for any fatal error, closing in order) and
            # this route waits for that; the alert stays in the outbox, maybe sent. So for any
            # other BaseException (a framework's own): it left the alert "sending" for the
            # life of the process, the route's later alerts going out before it.
            detail = f": {exc}" if str(exc) else ""
            halted = DeliveryHalted(
                f"{name} raised {type(exc).__name__}{detail} while sending alert {row.id}; "
                "delivery stopped")
            self._halted = halted
            self._fatal(halted)
            # Raised on, not waited out: run_once's drain waited for ever on the route.
            raise halted from None

    def _route_config(self, route: str) -> RouteConfig | None:
        return self.routes(route) if self.routes is not None else None

    async def _story(self, story_id: str | None) -> StoryView | None:
        """The story as a sink shows it now; None without a story or when it is gone."""
        if story_id is None:
            return None
        record = await self.store.get_story(story_id)
        return _view(record) if record is not None else None

    # ------------------------------------------------------------------ control

    def _fatal(self, exc: BaseException) -> None:
        if self.on_fatal is not None:
            self.on_fatal(exc)
        else:
            log.error("delivery stopped: %s", exc)

    def wake(self) -> None:
        """New alerts were written: look at the outbox now rather than at the next tick."""
        self.wake_event.set()

    def paused_routes(self) -> Mapping[str, str]:
        return {r: s.paused_reason for r, s in self._routes.items() if s.paused_reason}

    def backing_off_routes(self) -> Mapping[str, str]:
        """The routes waiting out a backoff (or a destination's retry_after) and why."""
        now = datetime.now(UTC)
        return {r: s.last_error or "backing off" for r, s in self._routes.items()
                if not s.paused_reason and s.not_before is not None and s.not_before > now}

    async def resume_route(self, route: str) -> int:
        """Resume a paused destination; its held alerts are sent again, in order. Returns how
        many alerts were held. A route backing off is tried again now (a destination's
        retry_after of an hour, a proxy's bogus one, had nothing to end it). A route with no
        destination now (taken out of the config since it paused) stays paused: its alerts
        would otherwise wait unsent, unseen."""
        refuse_inside_sink("resume_route", route)
        if self.sink_for(route) is None:
            raise NewswatchError(f"route {route!r} has no destination now (it is not in "
                                 "[channels]); its alerts stay held until it has one")
        await self._load()
        state = self._routes[route]
        async with state.lock:
            n = await self.store.resume_route(route)
            state.paused_reason = None
            state.failures = 0
            state.told_at = None
            state.not_before = None
        log.info("route %s resumed; %d held alert(s) queued", route, n)
        self.wake()
        return n

    async def reload_pauses(self) -> None:
        """Take the paused destinations as stored now (another process paused or resumed
        one), and look at the outbox again."""
        stored = await self.store.paused_routes()
        for route, state in self._routes.items():
            if route not in stored:
                state.paused_reason = None
        for route, reason in stored.items():
            self._routes[route].paused_reason = reason
        self._loaded = True
        self.wake()

    async def status(self, routes: Collection[str] | None = None) -> DeliveryStatus:
        """What :class:`DeliveryStatus` holds; ``routes``: the routes whose alerts waiting (the
        first 100) and last rejected (5) it lists (a server's), or every route's."""
        await self._load()
        now = datetime.now(UTC)
        # Read for these routes in the store: the first 100 of everyone's, filtered after, hid
        # a server's behind other servers'.
        rejected = await self.store.alerts(state="rejected", limit=5, newest=True, routes=routes)
        waiting = await self.store.alerts(state="waiting", kind="alert", limit=100, routes=routes)
        stories: dict[tuple[str, str], StoryView] = {}
        found: dict[str, StoryView | None] = {}
        counted: dict[str, Mapping[str, int]] = {}
        # A store without the count (a library's own) shows the sources, as before outlets.
        count = getattr(self.store, "counted_outlets", None)
        for row in waiting:
            if not row.story_id or (row.route, row.story_id) in stories:
                continue
            if row.story_id not in found:
                found[row.story_id] = await self._story(row.story_id)
                if count is not None:
                    # "2/2 outlets" of an alert still waiting: the story's two sources were
                    # one outlet's two feeds, which count once.
                    counted[row.story_id] = await count(
                        row.story_id, [r.route for r in waiting if r.story_id == row.story_id])
            view = await self._story_seen(row.route, found[row.story_id])
            if view is not None:
                have = counted.get(row.story_id, {}).get(row.route)
                stories[(row.route, row.story_id)] = (
                    view if have is None else replace(view, counted=have))
        why: dict[str, tuple[str, int, int]] = {}
        for r, state in self._routes.items():
            if state.not_before and state.not_before > now and state.last_error:
                counts = await self.store.alert_counts(routes=[r])
                why[r] = (state.last_error, state.failures,
                          counts.get("pending", 0) + counts.get("retry", 0))
        return DeliveryStatus(
            counts=await self.store.alert_counts(),
            paused=dict(self.paused_routes()),
            held=await self.store.held_counts(),
            backing_off={r: s.not_before for r, s in self._routes.items()
                         if s.not_before and s.not_before > now},
            # /alerts status said only "backing off": a 503 storm of hours looked like a
            # moment's retry.
            backing_off_why=why,
            maybe_sent=await self.store.count_maybe_sent(),
            rejected=rejected,
            waiting=waiting,
            stories=stories,
            scheduled=await self.store.scheduled_routes(),
            summaries=await self.store.kept_summaries(),
            next_digest=self._next_digests(),
            next_retry=min(await self._retries_after(now, routes), default=None),
        )

    async def _retries_after(self, now: datetime, routes: Collection[str] | None = None
                             ) -> list[datetime]:
        """When each route's first alert waiting for a retry is due, where that is after
        ``now`` (of ``routes``, or every route)."""
        return [when for route, when in (await self.store.due_routes()).items()
                if when is not None and when > now and (routes is None or route in routes)]

    async def retry_soon(self, within: float) -> int:
        """Wait for the alerts whose retry is due within ``within`` seconds (a send that failed
        a moment ago, in this process or one before) and try them: once, however that goes.
        Returns how many were delivered."""
        now = datetime.now(UTC)
        soon = [when for when in await self._retries_after(now)
                if when <= now + timedelta(seconds=within)]
        if not soon:
            return 0
        await asyncio.sleep((max(soon) - now).total_seconds())
        return await self.drain()

    def _next_digests(self) -> dict[str, datetime]:
        out: dict[str, datetime] = {}
        if self.routes is None:
            return out
        now = self.clock.now()
        for route in dict.fromkeys([*self.sinks, *self.known_routes]):
            cfg = self.routes(route)
            if cfg is not None and cfg.mode == "digest" and (at := next_digest(cfg, now)):
                out[route] = at
        return out

    async def digest_now(self, route: str) -> int:
        """Send what the route keeps for a digest now (``/digest now``); returns how many
        alerts the digest carries (0: nothing was waiting)."""
        cfg = self._route_config(route)
        async with self._digest_now_lock:
            n = await self.store.digest_now(route, self.clock.now(),
                                            pending=cfg is not None and cfg.mode == "digest")
            if n:
                await self._make_digests()
        if n:
            self.wake()
        return n

    @property
    def running(self) -> bool:
        """Whether the service delivers on its own (started and not stopped)."""
        return self._task is not None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="newswatch-delivery")
            self._task.add_done_callback(self._loop_done)

    def _loop_done(self, task: asyncio.Task[None]) -> None:
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            self._fatal(exc)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop taking alerts and let the sends in flight finish (for up to ``grace`` seconds),
        so a clean stop leaves nothing half-sent; call it while the sinks still work."""
        refuse_inside_sink("stop")
        self._closing = True
        if self._task is not None:
            self.wake_event.set()
            self._task.cancel()
            # Its own failure, if it failed, went to the engine (see _loop_done), which said
            # it in one line: not raised again here, nor logged with a traceback by aclose.
            await asyncio.wait([self._task])
            self._task = None
        pending = list(self._workers.values())
        if pending:
            await asyncio.wait(pending, timeout=grace)
        await self.aclose()

    async def aclose(self) -> None:
        tasks = [t for t in (self._task, *self._workers.values()) if t]
        for t in tasks:
            t.cancel()
        if tasks:
            # A sink that ignores the cancellation (catches CancelledError and goes on) is
            # left behind after a while rather than holding the engine's exit for ever.
            _, stuck = await asyncio.wait(tasks, timeout=CLOSE_WAIT)
            for t in stuck:
                log.error("delivery task %s did not stop when cancelled (its sink ignores "
                          "cancellation); left running", t.get_name())
                t.add_done_callback(_left_task_done)
        for t in tasks:
            if t is self._task:
                continue  # the loop: its failure was reported (see _loop_done)
            if t.done() and not t.cancelled() and (exc := t.exception()) is not None:
                log.error("delivery task failed while closing", exc_info=exc)
        self._task = None
        self._workers.clear()

    # ------------------------------------------------------------------ loops

    async def _load(self) -> None:
        """Restore paused destinations from the store (once): a pause outlives a restart."""
        if self._loaded:
            return
        self._loaded = True
        try:
            paused = await self.store.paused_routes()
            held = await self.store.held_counts() if paused else {}
        except BaseException:
            self._loaded = False  # read again at the next call
            raise
        for route, reason in paused.items():
            sink = self.sink_for(route)
            if isinstance(sink, PauseSink) and sink.stale_pause(route, reason):
                n = await self.store.resume_route(route)
                why = ("its webhook's URL has changed since it was paused"
                       if WEBHOOK_PAUSE_MARK in reason else
                       "it was paused for a reason that no longer pauses this destination "
                       "(another destination's, or the bot token's)")
                log.warning("route %s resumed at start: %s (%s); %d held alert(s) queued",
                            route, why, reason, n)
                continue
            self._routes[route].paused_reason = reason
            label = route
            if self.server_route is not None and (server := self.server_route(route)):
                label = server[1]
            # A pause outlives a restart without a word, and a route held for good looked
            # like a quiet one: each is named at start with what it holds and the way out.
            log.warning("route %s is paused (%s): %d alert(s) held, sent when it is resumed "
                        "(/alerts resume %s%s)", route, reason, held.get(route, 0), label,
                        "; a webhook's, also by a start with its URL corrected"
                        if WEBHOOK_PAUSE_MARK in reason else "")

    async def _start_up(self) -> None:
        if not self.shared:
            await self.store.requeue_interrupted()
        # No retry waits longer than the longest backoff or Retry-After: one due later was
        # timed by a clock that ran ahead (set back since), and held its route, every row
        # after it included, until that clock's time came.
        now = datetime.now(UTC)
        latest = now + timedelta(seconds=max(MAX_RETRY_AFTER, self.max_backoff) * 1.1)
        if clamped := await self.store.clamp_retries(latest, now):
            log.warning("%d row(s) waiting for a retry later than any wait allows (timed by a "
                        "clock that ran ahead): due now", clamped)
        await self._load()

    async def _run(self) -> None:
        # The store away as delivery starts is waited for as in the loop below: before, the
        # engine stopped at once with the driver's "cannot be reached".
        if await self.outage.retried(self._start_up, self._fatal) is None:
            return
        # Python 3.11's wait_for can swallow a cancellation that arrives as the event it waits
        # for is set (a wake-up as the engine stops): the loop then ends on _closing, which
        # stop() sets first, instead of waiting for the next wake-up for ever.
        while not self._closing:
            timeout = self.poll_interval
            self.wake_event.clear()  # before looking, so a wake-up during the look is not lost
            try:
                await self._requeue_orphans()
                await self._expire_waiting()
                await self._escalate_unacknowledged()
                timeout = min(timeout, await self._make_digests())
                timeout = min(timeout, await self._spawn_due())
            except asyncio.CancelledError:
                raise
            except StoreUnavailableError as exc:
                wait = self.outage.wait_or_stop(exc, self._fatal)
                if wait is None:
                    return
                timeout = wait
            except StoreError as exc:
                self._fatal(exc)
                return
            except Exception:
                log.exception("delivery loop failed; retrying")
            else:
                self.outage.over()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake_event.wait(), timeout=max(timeout, 0.01))

    async def _requeue_orphans(self) -> None:
        """Shared: put back what a process that is gone left half-sent (at start, then every
        ``orphans_every``)."""
        if not self.shared:
            return
        now = datetime.now(UTC)
        if self._orphans_at is not None and now - self._orphans_at < self.orphans_every:
            return
        self._orphans_at = now
        n = await self.store.requeue_orphaned()
        if n:
            log.warning("%d alert(s) left sending by a stopped process queued again (those "
                        "it had begun to send are looked for before they are sent again)", n)

    async def expire_waiting(self) -> None:
        """Alerts that waited for corroboration longer than the story window become
        ``uncorroborated``, now: before anything may release them (a restart after days
        down, ``run --once``, a rule's ``min_sources`` lowered), which posted alerts days older
        than the window."""
        await self._expire_waiting(force=True)

    async def _expire_waiting(self, *, force: bool = False) -> None:
        """Alerts that waited for corroboration longer than the story window become
        ``uncorroborated`` (looked at once a minute, unless ``force``)."""
        now = self.clock.now()
        if (not force and self._expired_at is not None
                and abs(now - self._expired_at) < timedelta(minutes=1)):
            return
        self._expired_at = now
        n = await self.store.expire_waiting(now - self.story_window)
        if n:
            log.info("%d alert(s) never corroborated within %s; recorded, not sent", n,
                     self.story_window)

    async def _escalate_unacknowledged(self) -> None:
        """Queue the re-ping of ``escalation_role`` for every critical alert nobody
        acknowledged ``escalate_after`` its delivery (looked at every 30 seconds of the clock).
        Alerts delivered more than a day before they became due stay quiet: they predate
        acknowledgement or a long outage."""
        if self.escalation_role is None or self.ack_from not in SEVERITIES:
            return
        now = self.clock.now()
        if self._escalated_at is not None and abs(now - self._escalated_at) < timedelta(
                seconds=30):
            return
        self._escalated_at = now
        due_before = now - self.escalate_after
        rows = await self.store.escalation_due(
            delivered_before=due_before, delivered_after=due_before - timedelta(days=1),
            severities=("critical",), limit=500)
        queued = 0
        for row in rows:
            if self.away is not None and self.away(row.route):
                continue  # nobody there can see it or acknowledge it now
            sink = self.sink_for(row.route)
            remote = row.remote_id
            if row.story_id is not None:
                # A story's alert a moderator deleted was posted afresh at the story's next
                # update: the story's message on the route is the live one.
                where = await self.store.story_message(row.story_id, row.route)
                if where is not None and where[0] is not None:
                    remote = where[0]
            if not isinstance(sink, AckSink) or remote is None:
                continue
            link = sink.alert_link(row.route, remote)
            if link is None:
                continue
            theirs = self.server_route is not None and self.server_route(row.route) is not None
            text = (("" if theirs else f"<@&{self.escalation_role}> ") + "⏰ Not acknowledged "
                    f"after {format_duration(self.escalate_after)}: {link}")
            if await self.store.escalate(row.id, row.route, text, now) is not None:
                queued += 1
        if queued:
            log.info("%d critical alert(s) not acknowledged in time; escalated", queued)
            self.wake_event.set()

    async def _make_digests(self) -> float:
        """Turn what is due of each route's scheduled alerts into digest rows; return the
        seconds until the next scheduled alert is due (at most ``poll_interval``)."""
        now = self.clock.now()
        first = self._kept_routes is None
        if self._kept_routes is None:  # the first look: what this process has not seen yet
            self._kept_routes = list(await self.store.scheduled_routes())
        await self._follow_schedules(now, self._kept_routes)
        # Rows due later than the settings allow come only from a clock that ran ahead: looked
        # for at the first look (kept by an earlier process) and when the clock has stepped
        # back since the last, not with three writes at every look.
        if first or (self._latest_look is not None and now < self._latest_look):
            await self._bound_schedules(now, self._kept_routes)
        self._latest_look = max(now, self._latest_look or now)
        if await self.store.make_digests(now):
            self.wake_event.set()
        wait = self.poll_interval
        kept = await self.store.scheduled_routes()
        self._kept_routes = list(kept)
        for _, due in kept.values():
            if due is not None:
                wait = min(wait, max((due - now).total_seconds(), 0.0))
        return wait

    async def _follow_schedules(self, now: datetime, kept: Sequence[str]) -> None:
        """What a route keeps follows its settings as they are now: when they changed since the
        alerts were kept (a digest route made immediate, quiet hours taken off or shortened,
        an earlier digest time, a cap lifted) — also across a restart — they are due when the
        new settings say, never later than they were. ``kept``: the routes that keep alerts,
        as the last look at the store found them (alerts kept since then were kept under the
        settings as they are)."""
        if self.routes is None:
            return
        for route in kept:
            cfg = self.routes(route)
            if route in self._schedules_seen and self._schedules_seen[route] == cfg:
                continue
            self._schedules_seen[route] = cfg
            if cfg is None:
                continue  # no settings (a route taken out): kept as they were
            # Made immediate, a digest route's kept alerts still keep its quiet hours: they
            # were posted in the middle of the night.
            quiet = (quiet_end(cfg, now) or now) if cfg.quiet_hours else now
            due: dict[str, datetime | None] = {
                "digest": next_digest(cfg, now) if cfg.mode == "digest" else quiet,
                "quiet hours": quiet,
                "cap": cap_window_end(now) if cfg.max_per_hour else now,
            }
            for reason, until in due.items():
                if until is not None and await self.store.reschedule(route, reason, until):
                    log.info("route %s: alerts kept for %s now due %s (its settings changed)",
                             route, reason, until.isoformat(timespec="minutes"))

    async def _bound_schedules(self, now: datetime, kept: Sequence[str]) -> None:
        """What a route keeps is due no later than its settings allow from ``now``: its next
        digest, the end of the quiet hours under way (else of the next ones, within a day),
        the end of the clock hour for the cap. Only a clock that ran ahead and was set back
        (kept alerts and surges were stamped by it) leaves rows due later: they were held
        until the clock caught up, a day or a year."""
        if self.routes is None:
            return
        for route in kept:
            cfg = self.routes(route)
            if cfg is None:
                continue
            bounds: dict[str, datetime | None] = {
                "digest": next_digest(cfg, now) if cfg.mode == "digest" else None,
                "quiet hours": (quiet_end(cfg, now) or now + timedelta(days=1))
                if cfg.quiet_hours else None,
                "cap": cap_window_end(now) if cfg.max_per_hour else None,
            }
            for reason, bound in bounds.items():
                if bound is not None and await self.store.reschedule(route, reason, bound):
                    log.warning("route %s: alerts kept for %s were due after %s, later than its "
                                "settings allow (a clock that ran ahead?); due then now",
                                route, reason, bound.isoformat(timespec="minutes"))

    async def _spawn_due(self) -> float:
        """Start a worker for every route with something due; return seconds until the next
        route becomes due (at most ``poll_interval``)."""
        if self._halted is not None:
            return self.poll_interval
        now = datetime.now(UTC)
        wait = self.poll_interval
        for route, due_at in (await self.store.due_routes()).items():
            state = self._routes[route]
            when = max(due_at or now, state.not_before or now, state.elsewhere_until or now)
            if when > now:
                wait = min(wait, (when - now).total_seconds())
                continue
            if route in self._workers:
                continue
            if self.sink_for(route) is None:
                if route not in self._unserved:
                    # Rows of a route this process cannot send waited without a word (a
                    # worker whose config lacks the route, or a route taken out).
                    self._unserved.add(route)
                    log.warning("route %s has alerts due and no destination in this process; "
                                "they wait for one that has it (a deliver process whose config "
                                "names it, or the route put back)", route)
                continue
            if state.paused_reason:
                await self._hold_new(route, state.paused_reason)
                continue
            task = asyncio.create_task(self._route_pass(route), name=f"newswatch-route-{route}")
            self._workers[route] = task
            task.add_done_callback(functools.partial(self._worker_done, route))
        return wait

    async def _hold_new(self, route: str, reason: str) -> None:
        # alerts written while the route is paused wait with the ones already held
        await self.store.pause_route(route, reason)

    def _worker_done(self, route: str, task: asyncio.Task[int]) -> None:
        if self._workers.get(route) is task:
            del self._workers[route]
        exc = None if task.cancelled() else task.exception()
        if isinstance(exc, StoreUnavailableError):
            # Its claimed rows are put back at the route's next pass, once the store is back.
            delay = self.outage.wait_or_stop(exc, self._fatal)
            if delay is None:
                return
            state = self._routes[route]
            state.not_before = datetime.now(UTC) + timedelta(seconds=delay)
            self.wake_event.set()
            return
        if isinstance(exc, StoreError):
            self._fatal(exc)
            return
        if isinstance(exc, DeliveryHalted):
            return  # the engine fails with it (said once, by the engine)
        if exc is not None:
            log.error("route %s: delivery worker failed", route, exc_info=exc)
        # the route may have more due (or new alerts arrived meanwhile): look again now
        self.wake_event.set()

    async def drain(self) -> int:
        """Deliver everything due now, routes side by side (and wait for what the running
        service is sending); return how many this call delivered."""
        refuse_inside_sink("drain (run_once)")
        if self._halted is not None:
            raise self._halted
        await self._load()
        total = 0
        while True:
            # The running service's own passes finish first: what they claimed is not due to
            # this one, which returned while they were still sending it.
            if busy := [t for t in self._workers.values() if not t.done()]:
                await asyncio.wait(busy)
            if self._halted is not None:
                # A sink halted delivery in the running service's own pass meanwhile: this
                # call sent the rest (the halted alert then went out after them at the next
                # start) and returned as if all was well.
                raise self._halted
            await self._expire_waiting(force=True)
            await self._escalate_unacknowledged()
            await self._make_digests()
            now = datetime.now(UTC)
            waiting = await self.store.due_routes()
            for r, reason in self.paused_routes().items():
                if r in waiting:
                    await self._hold_new(r, reason)
            due = [r for r, when in waiting.items()
                   if (when is None or when <= now) and not self._waiting(r, now)
                   and self.sink_for(r) is not None]
            if not due:
                if any(not t.done() for t in self._workers.values()):
                    continue  # one started meanwhile and claimed what was due
                break
            before = self.delivered
            # Every route's pass is waited for, however one ends: a pass that raised (a sink
            # halting delivery) left the others sending unattended, and a send that finished
            # after the engine closed was not recorded and went out again at the next start.
            results = await asyncio.gather(*(self._route_pass(r) for r in due),
                                           return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                raise next((f for f in failures if isinstance(f, DeliveryHalted)), failures[0])
            settled = sum(r for r in results if isinstance(r, int))
            total += self.delivered - before
            if settled == 0:
                break
        return total

    def _waiting(self, route: str, now: datetime) -> bool:
        state = self._routes[route]
        return bool(state.paused_reason) or (state.not_before is not None
                                             and state.not_before > now)

    async def _route_pass(self, route: str) -> int:
        """Send the route's due alerts in order until none is due or the route must wait.
        Returns how many alerts were settled (delivered, rejected or held)."""
        state = self._routes[route]
        async with state.lock:  # one pass per route at a time: order within a route is kept
            try:
                if state.reclaim:
                    n = await self.store.requeue_interrupted(route)
                    state.reclaim = False
                    if n:
                        log.warning("route %s: %d alert(s) left sending while the store was "
                                    "away queued again (each looked for before it is sent "
                                    "again)", route, n)
                return await self._pass(route, state)
            except StoreUnavailableError:
                state.reclaim = True
                raise

    async def _pass(self, route: str, state: _RouteState) -> int:
        settled = 0
        while True:
            now = datetime.now(UTC)
            if self._waiting(route, now) or self._halted is not None:
                return settled
            sink = self.sink_for(route)
            if sink is None:
                return settled
            rows = await self.store.claim_route(route, now=now, limit=self.batch)
            if not rows:
                if self.shared and not settled:
                    # Due but nothing claimed: another process is delivering this route.
                    state.elsewhere_until = now + timedelta(seconds=self.elsewhere_wait)
                return settled
            state.elsewhere_until = None
            later = _later_updates(rows)
            for i, row in enumerate(rows):
                if self._closing or self._halted is not None:
                    # not tried yet: back in the queue as they were, for the next start (a
                    # halt on another route stops this one too: nothing more is sent)
                    await self._release(rows[i:])
                    return settled
                task = asyncio.current_task()
                asked = task.cancelling() if task is not None else 0
                try:
                    outcome = await self._deliver_one(sink, row, state, later.get(row.id))
                    if task is not None and task.cancelling() > asked:
                        # Python 3.11's wait_for hands back a sink's answer that came with a
                        # cancellation and drops the cancellation: acted on here, once the
                        # answer is recorded (the rest of the batch was sent before).
                        raise asyncio.CancelledError
                except (asyncio.CancelledError, DeliveryHalted):
                    # A stop, a timeout or Ctrl-C that could not wait for this send (or a sink
                    # that quit in it): the rows after it were never tried and go back as they
                    # were. Left "sending", the next start would take each for "maybe sent" (a
                    # webhook may then show it twice); only this one is uncertain.
                    with contextlib.suppress(Exception):
                        await finish(self._release(rows[i + 1:]))
                    raise
                if outcome == "wait":
                    await self._defer(rows[i + 1:], state)
                    return settled
                settled += 1
                if outcome == "paused":
                    return settled

    # ------------------------------------------------------------------ one alert

    async def _deliver_one(self, sink: Sink, row: OutboxRow, state: _RouteState,
                           later: OutboxRow | None = None) -> str:
        sending = _SENDING.set(row.route)
        try:
            return await self._deliver_row(sink, row, state, later)
        finally:
            _SENDING.reset(sending)

    async def _deliver_row(self, sink: Sink, row: OutboxRow, state: _RouteState,
                           later: OutboxRow | None = None) -> str:
        """Deliver one claimed row; ``later``: for an update, the next update of its story
        among the rows claimed with it (see :attr:`StoryUpdate.superseded`)."""
        route = row.route
        story: str | None = None
        try:
            if row.kind in ("summary", "notice", "surge") and await self._muted_notice(row):
                return "settled"
            if row.kind == "summary" and await self._keep_summary(row):
                return "settled"
            if row.kind in ("notice", "surge", "summary"):
                remote_id = await self._notice(sink, row)
            elif row.kind == "digest":
                remote_id = await self._digest(sink, row)
            elif row.kind == "update":
                # Read once, as an alert's: whether the route's readers see it, and what the
                # update shows.
                article = (await self.store.get_article(row.article_id)
                           if row.article_id is not None else None)
                if self._unseen_update(row, article):
                    await self.store.mark_delivered(row.id, None, at=self.clock.now())
                    return "settled"
                if await self._keep_update(row):
                    return "settled"
                remote_id = await self._update(sink, row, article, later)
            else:
                # An alert an earlier attempt may have posted is sent now, not kept for a
                # digest: the sink finds the message it made (by nonce, or by looking), where
                # keeping it would show it twice.
                sent = row.attempts > 1 and await self.store.maybe_sent(row.id)
                # Read once: whether its server still sees it, and what the alert shows.
                article = (await self.store.get_article(row.article_id)
                           if row.article_id is not None else None)
                if not sent and (why := await self._stale_wait(row, article)) is not None:
                    log.info("alert %d to %s not sent: %s", row.id, route, why)
                    await self.store.mark_rejected(row.id, why)
                    return "settled"
                if not sent and await self._keep_alert(row):
                    return "settled"
                alert = await self._alert(row, article) if article is not None else None
                if alert is None:
                    await self.store.mark_rejected(row.id, "article no longer stored")
                    return "settled"
                remote_id = sent_id(await self._within(sink.deliver(alert), sink, row), sink,
                                    "deliver")
                if alert.story is not None and remote_id is not None:
                    story = alert.story.id
        except TransientDeliveryError as exc:
            if isinstance(exc, UncertainDeliveryError):
                await self._doubt(row, True)
            else:
                await self._doubt(row, False)
            await self._back_off(row, state, str(exc), exc.retry_after)
            return "wait"
        except PermanentDeliveryError as exc:
            await self._doubt(row, exc.maybe_sent)
            if exc.pause_destination:
                await self._pause(route, str(exc), state)
                return "paused"
            log.error("alert %d to %s rejected: %s", row.id, route, exc)
            await self.store.mark_rejected(row.id, str(exc))
            return "settled"
        except DeliveryError as exc:
            await self._doubt(row, False)
            await self.store.mark_rejected(row.id, str(exc))
            return "settled"
        except (asyncio.CancelledError, StoreError, DeliveryHalted):
            self._marked.discard(row.id)  # the mark stays: the send may have gone through
            raise
        except Exception as exc:
            # A bug in a sink must not lose the alert: keep it and try again later (marked
            # maybe sent if its sink was called: it may have posted before it failed).
            self._marked.discard(row.id)
            log.exception("route %s: unexpected error delivering alert %d", route, row.id)
            await self._back_off(row, state, f"unexpected error: {type(exc).__name__}", None)
            return "wait"
        # Recorded to its end once sent: cut short, the next start took the sent alert for
        # "maybe sent" and the sink had to look for it.
        await finish(self._sent(row, remote_id, story, own_mark=row.id in self._marked))
        self._marked.discard(row.id)
        if state.failures:
            log.info("route %s delivers again after %d failures in a row", route,
                     state.failures)
        state.failures = 0
        state.told_at = None
        state.not_before = None
        state.last_error = None
        self.delivered += 1
        return "settled"

    async def _sent(self, row: OutboxRow, remote_id: str | None, story: str | None, *,
                    own_mark: bool = False) -> None:
        if story is not None and remote_id is not None:
            # Later articles of the story update this message (the newest alert's, after an
            # escalation).
            await self.store.set_story_message(story, row.route, remote_id, None)
        await self.store.mark_delivered(row.id, remote_id, at=self.clock.now(),
                                        clear_maybe_sent=own_mark)
        log.debug("%s %d delivered to %s%s", row.kind, row.id, row.route,
                  f" (message {remote_id})" if remote_id else "")

    async def _doubt(self, row: OutboxRow, maybe: bool) -> None:
        """What an attempt's failure says of the row's maybe-sent mark: ``maybe`` (the send may
        have gone through) keeps or sets it; otherwise the mark this attempt set before calling
        the sink is taken back (nothing was posted), and an earlier attempt's stays."""
        own = row.id in self._marked
        self._marked.discard(row.id)
        if maybe and not own:
            await self.store.mark_maybe_sent(row.id)
        elif not maybe and own:
            await self.store.mark_maybe_sent(row.id, False)

    async def _back_off(self, row: OutboxRow, state: _RouteState, reason: str,
                        retry_after: float | None) -> None:
        state.failures += 1
        delay = self._backoff(state)
        if retry_after is not None and math.isfinite(retry_after):
            # what the destination asked for, within reason: a proxy's "inf" or 1e15 seconds
            # overflowed the retry's time and stopped delivery altogether
            delay = min(max(0.0, retry_after), MAX_RETRY_AFTER)
            if retry_after > MAX_RETRY_AFTER:
                reason = f"{reason} (asked to wait {retry_after:,.0f}s; asking again sooner)"
        state.not_before = datetime.now(UTC) + timedelta(seconds=delay)
        state.last_error = reason[:500]
        clock = time.monotonic()
        tell = (state.failures <= TOLD_FAILURES or state.told_at is None
                or clock - state.told_at >= TELL_EVERY)
        if tell:
            state.told_at = clock
        quiet = ("" if state.failures < TOLD_FAILURES else
                 " (further failures in a row are logged once an hour)"
                 if state.failures == TOLD_FAILURES else
                 f" ({state.failures} failures in a row)")
        log.log(logging.WARNING if tell else logging.DEBUG, "route %s: %s; retrying in %.1fs%s",
                row.route, reason, delay, quiet)
        await self.store.mark_retry(row.id, at=state.not_before, reason=reason[:500])

    async def _pause(self, route: str, reason: str, state: _RouteState) -> None:
        state.paused_reason = reason
        held = await self.store.pause_route(route, reason)
        log.error("route %s paused: %s (%d alerts held)", route, reason, held)
        where, label = self.notices_route, route
        server = self.server_route(route) if self.server_route is not None else None
        if server is not None:  # a server's channel: that server is told, in another of its own
            where, label = server
        if where and where != route:
            # A webhook's pause (its URL refused) is lifted by a start with the URL corrected,
            # the one way a set-up of webhooks alone has (/alerts resume needs the bot).
            how = (f"its URL is corrected and newswatch started again, or it is resumed "
                   f"(/alerts resume {label})" if WEBHOOK_PAUSE_MARK in reason else
                   f"it is resumed (/alerts resume {label})")
            await self.store.add_notice(
                where,
                f"Destination {label!r} paused: {reason}. {held} alert(s) held; "
                f"they are sent when {how}.")
            self.wake_event.set()

    def _backoff(self, state: _RouteState) -> float:
        delay = min(self.max_backoff, self.base_backoff * 2 ** (state.failures - 1))
        return float(delay * (0.8 + 0.4 * random.random()))

    async def _defer(self, rows: Sequence[OutboxRow], state: _RouteState) -> None:
        """Claimed alerts behind one that must wait go back to wait with it (same time, so the
        order holds)."""
        at = state.not_before or datetime.now(UTC) + timedelta(seconds=1)
        for row in rows:
            await self.store.mark_retry(row.id, at=at, reason="waiting behind an earlier alert")

    async def _release(self, rows: Sequence[OutboxRow]) -> None:
        now = datetime.now(UTC)
        for row in rows:
            await self.store.mark_retry(row.id, at=now, reason="stopped before sending")

    async def _notice(self, sink: Sink, row: OutboxRow) -> str | None:
        text = row.text or ""
        if isinstance(sink, NoticeSink):
            maybe_sent = row.attempts > 1 and await self.store.maybe_sent(row.id)
            return sent_id(await self._within(sink.notice(row.route, text, nonce=row.nonce,
                                                          maybe_sent=maybe_sent), sink, row),
                           sink, "notice")
        log.warning("notice for %s: %s", row.route, text)
        return None

    async def with_evidence(self, article: Article, matches: Sequence[Match],
                            rules: Sequence[RuleConfig]) -> list[Match]:
        """``matches`` with the evidence the store does not keep, found again on ``article``
        by ``rules`` (an alert's: as its row keeps them, so a rule changed since still shows
        why the article matched it then), in ``executor``'s threads: a long article is not
        read on the event loop. A match its rule no longer finds, or whose rule does not
        compile, stays as stored: its rule and score, no spans."""
        if all(m.hits for m in matches):
            return list(matches)
        ruleset = self._evidence_set({m.rule for m in matches if not m.hits}, rules)
        if ruleset is None:
            return list(matches)
        found = {m.rule: m for m in await asyncio.get_running_loop().run_in_executor(
            self.executor, ruleset.match, matchable(article))}
        return [found.get(m.rule, m) if not m.hits else m for m in matches]

    def _evidence_set(self, wanted: Collection[str], rules: Sequence[RuleConfig]
                      ) -> RuleSet | None:
        """The rules of ``rules`` named in ``wanted`` as one rule set, kept for the next alert
        of the same rules (None: none of them, or they do not compile)."""
        spec = tuple(sorted((r.key, r.query, r.threshold or self.threshold)
                            for r in rules if r.key in wanted))
        if not spec:
            return None
        if spec in self._evidence_sets:
            return self._evidence_sets[spec]
        ruleset: RuleSet | None
        try:
            ruleset = RuleSet([Rule(name=key, query=query, threshold=threshold)
                               for key, query, threshold in spec],
                              aliases={k: list(v) for k, v in self.aliases.items()},
                              regex_budget=self.evidence_regex_budget)
        except (NewswatchError, RecursionError, ValueError) as exc:
            log.debug("evidence for %s not rebuilt: %s", [k for k, _, _ in spec], exc)
            ruleset = None
        if len(self._evidence_sets) >= _EVIDENCE_SETS:
            self._evidence_sets.clear()
        self._evidence_sets[spec] = ruleset
        return ruleset

    async def _alert(self, row: OutboxRow, stored: Article | None = None) -> Alert | None:
        """The alert of an outbox row; ``stored``: its article, read already (else it is read
        here). None when the article is no longer stored."""
        if row.article_id is None:
            return None
        article = stored or await self.store.get_article(row.article_id)
        if article is None:
            return None
        article = self._relabel(row.route, article)
        names = {r.key for r in row.rules}  # matches are stored under the rule key
        matches = tuple(m for m in await self.store.matches_for(article.id) if m.rule in names)
        matches = tuple(await self.with_evidence(article, matches, row.rules))
        return Alert(
            id=row.id,
            route=row.route,
            nonce=row.nonce,
            attempt=row.attempts,
            article=article,
            matches=matches,
            rules=row.rules,
            maybe_sent=row.attempts > 1 and await self.store.maybe_sent(row.id),
            story=await self._story_on(row.route, row.story_id),
            escalated_from=row.escalated_from,
        )

    def _relabel(self, route: str, article: Article) -> Article:
        """``article`` under the name the route's readers know its source by. A feed their
        server no longer follows (the story's message on the route shows an article of it,
        which an update renders again) is named :data:`UNFOLLOWED`, never by its key."""
        label = None if self.source_label is None else self.source_label(route, article.source)
        if label is None and article.source.startswith(SERVER_FEED_PREFIX):
            label = UNFOLLOWED
        if label is None or label == article.source:
            return article
        return article.model_copy(update={"source": label})

    def _sees(self, route: str, article: Article) -> bool:
        """Whether the route's readers see ``article`` (another server's feed they do not)."""
        return self.source_label is None or self.source_label(route, article.source) is not None

    async def _story_on(self, route: str, story_id: str | None) -> StoryView | None:
        """The story as a message on ``route`` shows it (:meth:`_story_seen`), its outlets
        counted as the route's readers count them: "Also reported by bbc-europe, DW · 3
        outlets" counted the BBC's two feeds twice."""
        story = await self._story_seen(route, await self._story(story_id))
        count = getattr(self.store, "counted_outlets", None)
        if story is None or story_id is None or len(story.outlets) < 2 or count is None:
            return story
        have = (await count(story_id, [route])).get(route)
        return story if have is None else replace(story, counted=have)

    async def _story_seen(self, route: str, story: StoryView | None) -> StoryView | None:
        """The story as the route's readers know it: the outlets they see, by their names;
        where another server's feed reported in it too, its headline, times and count from
        the articles they see alone."""
        if story is None or self.source_label is None:
            return story
        label = self.source_label
        # None when they see none of its articles (their server unfollowed the feed that
        # brought them): its headline and times are then another server's feed's.
        return await story_seen(self.store, story, lambda o: label(route, o))

    # ------------------------------------------------------------------ schedules

    async def _keep_alert(self, row: OutboxRow) -> bool:
        """Keep an alert for a digest when its route says so (see the route settings): a digest
        route keeps everything for its next digest; quiet hours keep what is below
        ``break_through`` until they end; past ``max_per_hour`` an alert waits for the hour's
        roll-over. An alert at or above ``break_through`` is never kept by quiet hours or the
        cap. Returns whether it was kept (``scheduled``)."""
        cfg = self._route_config(row.route)
        if cfg is None:
            return False
        now = self.clock.now()
        until: datetime | None = None
        why = ""
        urgent = severity_rank(_severity(row.rules)) >= severity_rank(cfg.break_through)
        if cfg.mode == "digest":
            until, why = next_digest(cfg, now), "digest"
        elif cfg.quiet_hours and not urgent and (end := quiet_end(cfg, now)) is not None:
            until, why = end, "quiet hours"
        elif cfg.max_per_hour and not urgent:
            end = cap_window_end(now)
            if await self.store.sent_since(row.route, end - timedelta(hours=1),
                                           end) >= cfg.max_per_hour:
                until, why = end, "cap"
                if cfg.quiet_hours and (later := quiet_end(cfg, end)) is not None:
                    # The hour rolls over inside quiet hours: kept until they end (its cap
                    # digest went out at 22:00 of quiet hours beginning then).
                    until, why = later, "quiet hours"
        if until is None:
            return False
        await self.store.schedule(row.id, until, why)
        return True

    async def _keep_summary(self, row: OutboxRow) -> bool:
        """Keep a poll's cap summary (a ``summary`` row) until its route's quiet hours end,
        unless one of the alerts it lists is at or above ``break_through`` (its rules are
        theirs). The digest of those quiet hours is then followed by it (see the stores'
        ``make_digests``): posted at once, it spoke at 23:00 for alerts kept until 07:00.
        One that an earlier attempt may have posted is sent now, as an alert is. Returns
        whether it was kept."""
        cfg = self._route_config(row.route)
        if cfg is None or not cfg.quiet_hours:
            return False
        if severity_rank(_severity(row.rules)) >= severity_rank(cfg.break_through):
            return False
        end = quiet_end(cfg, self.clock.now())
        if end is None or (row.attempts > 1 and await self.store.maybe_sent(row.id)):
            return False
        await self.store.schedule(row.id, end, "quiet hours")
        return True

    async def _muted_notice(self, row: OutboxRow) -> bool:
        """Refuse a notice-like row whose rules are all muted now. A cap summary, kept by quiet
        hours or released after their digest (a notice with the summary's rules; other
        notices have none): a muted rule posts nothing, and the digest before it had dropped
        the very alerts the summary went on to list at 07:00. A surge whose rule was muted
        since (it waited behind a failing channel). One an earlier attempt may have posted is
        sent now, as an alert is. Returns whether it was refused."""
        if not row.rules or (row.attempts > 1 and await self.store.maybe_sent(row.id)):
            return False
        if not {r.key for r in row.rules} <= set(await self.store.mutes(now=self.clock.now())):
            return False
        log.info("%s %d to %s not sent: %s", "surge" if row.kind == "surge" else "summary",
                 row.id, row.route, MUTED_REASON)
        await self.store.mark_rejected(row.id, MUTED_REASON)
        return True

    async def _keep_update(self, row: OutboxRow) -> bool:
        """A story update whose alert waits for a digest joins it (the digest shows the story
        with every outlet); after its alert went out in a digest, a digest route shows the
        story again in its next digest, and a quiet-hours or cap digest keeps it quiet."""
        if row.story_id is None:
            return False
        kept = await self.store.scheduled_story_row(row.story_id, row.route)
        if kept is None:
            return False
        if kept.state == "scheduled" and kept.scheduled_for is not None:
            await self.store.schedule(row.id, kept.scheduled_for, kept.reason or "digest")
            return True
        cfg = self._route_config(row.route)
        if cfg is not None and cfg.mode == "digest":
            # The story went out in an earlier digest: the next one shows it again, with the
            # outlets it has gained.
            until = next_digest(cfg, self.clock.now())
            if until is not None:
                await self.store.schedule(row.id, until, "digest")
                return True
        where = await self.store.story_message(row.story_id, row.route)
        if where is not None and where[0] is not None:
            # The story has a message of its own here (its first alert was posted; what a
            # digest showed since was an escalation): that message is edited as ever. Marked
            # delivered unsent, every later outlet was dropped without a trace.
            return False
        # Shown in a digest already (quiet hours, cap), which is no message to edit: the story
        # stays quiet rather than pinging again.
        await self.store.mark_delivered(row.id, None, at=self.clock.now())
        return True

    async def _digest(self, sink: Sink, row: OutboxRow) -> str | None:
        """Deliver a digest row: its members grouped by story (a story's articles are one
        line), each with the rules that fired and the story as it is now."""
        groups: dict[str, list[OutboxRow]] = {}
        mutes = set(await self.store.mutes(now=self.clock.now()))
        for member in await self.store.digest_members(row.id):
            if member.state == "rejected":
                continue
            if member.rules and {r.key for r in member.rules} <= mutes:
                # A muted rule posts nothing, not even in a digest of what it matched before
                # (as an alert of it waiting to be sent is refused).
                await self.store.mark_rejected(member.id, MUTED_REASON)
                continue
            key = member.story_id or member.article_id or str(member.id)
            groups.setdefault(key, []).append(member)
        items: list[DigestItem] = []
        since = row.created_at
        for members in groups.values():
            articles = [a for m in members if m.article_id
                        and (a := await self.store.get_article(m.article_id)) is not None
                        and self._sees(row.route, a)]
            if not articles:
                continue
            articles = [self._relabel(row.route, a) for a in articles]
            rules = tuple({r.key: r for m in members for r in m.rules}.values())
            story = await self._story_on(row.route, members[0].story_id)
            times = [a.published or a.fetched_at for a in articles]
            items.append(DigestItem(
                article=articles[0], rules=rules, story=story, articles=len(articles),
                severity=_severity(rules), newest=max((t for t in times if t), default=None)))
            since = min(since, members[0].created_at)
        if not items:
            return None
        cfg = self._route_config(row.route)
        digest = Digest(id=row.id, route=row.route, nonce=row.nonce, attempt=row.attempts,
                        reason=row.text or "digest", items=tuple(items), since=since,
                        maybe_sent=row.attempts > 1 and await self.store.maybe_sent(row.id),
                        timezone=cfg.timezone if cfg is not None else "UTC")
        if isinstance(sink, DigestSink):
            return sent_id(await self._within(sink.digest(digest), sink, row), sink, "digest")
        log.warning("route %s: its sink cannot post digests; %d stories kept for it were not "
                    "shown", row.route, len(items))
        return None

    async def _stale_wait(self, row: OutboxRow, article: Article | None) -> str | None:
        """Why an alert must not post now that it may: each of its rules is muted now, or, for
        one that waited for corroboration, was removed while it waited, or its server no
        longer follows the feed its article (``article``, as stored) came from (None: it
        posts)."""
        if article is not None and not self._sees(row.route, article):
            return UNFOLLOWED_REASON
        if not row.rules:
            return None
        keys = {r.key for r in row.rules}
        waited = False
        if row.min_sources > 1 and self.rules_now is not None:
            waited = True
            keys &= set(self.rules_now())
            if not keys:
                return REMOVED_WHILE_WAITING
        # Muted after it matched (a poll under way as /mute answered, a backlog behind a paused
        # channel, a long wait for corroboration): a muted rule posts nothing.
        if keys <= set(await self.store.mutes(now=self.clock.now())):
            return ("its rule was muted while it waited for corroboration" if waited
                    else MUTED_REASON)
        return None

    async def _shows_later(self, later: OutboxRow | None) -> bool:
        """Whether ``later``, an update claimed behind another of its story, will show the
        story on its route: its article is stored and seen by the route's readers (an update
        they do not see updates nothing, and the one before it must then)."""
        if later is None or later.article_id is None:
            return False
        article = await self.store.get_article(later.article_id)
        return article is not None and self._sees(later.route, article)

    def _unseen_update(self, row: OutboxRow, article: Article | None) -> bool:
        """Whether an update is about an article (``article``, as stored) the route's readers
        do not see: another server's feed that changed in place, or reported a copy, in a
        story they follow. It updates nothing there (not the message, not a digest)."""
        if self.source_label is None:
            return False
        if article is None or self._sees(row.route, article):
            return False
        log.info("route %s: story %s not updated for an article its readers do not see",
                 row.route, row.story_id)
        return True

    async def _update(self, sink: Sink, row: OutboxRow, stored: Article | None = None,
                      later: OutboxRow | None = None) -> str | None:
        """Deliver a later article of a story: an edit of (or a thread post under) the story's
        message on this route. Without a delivered alert to update (it was rejected, or the
        sink keeps no ids), or to a sink that cannot update one, the article posts as an alert
        of its own. An article the route's
        readers do not see never comes here (see :meth:`_unseen_update`). ``stored``: its
        article, read already; ``later``: the story's next update among the rows claimed
        with this one, if any."""
        update_alert = await self._alert(row, stored)
        if update_alert is None or update_alert.story is None or row.story_id is None:
            raise PermanentDeliveryError("article or story no longer stored")
        first = await self.store.story_alert(row.story_id, row.route)
        first_alert = await self._alert(first) if first is not None else None
        where = await self.store.story_message(row.story_id, row.route)
        if first_alert is None or where is None or where[0] is None:
            # No message of the story to update (its alert was refused): this article posts
            # it, and later updates edit this message rather than each posting one.
            posted = sent_id(await self._within(sink.deliver(update_alert), sink, row), sink,
                             "deliver")
            if posted is not None:
                await self.store.set_story_message(row.story_id, row.route, posted, None,
                                                   posted_by=row.id)
            return posted
        if not isinstance(sink, UpdateSink):
            if row.changed:
                # An article alerted already, reworded in place: no news to a sink that shows
                # alerts alone.
                log.info("route %s: its sink cannot update messages; the change of an "
                         "article of story %s is not sent", row.route, row.story_id)
                return None
            # A later article of the story is handed over as an alert of its own (its
            # ``story`` says which story, and how many outlets), as when there is no message
            # to update: a sink that kept ids had every later article of a story dropped with
            # a line in the log.
            return sent_id(await self._within(sink.deliver(update_alert), sink, row), sink,
                           "deliver")
        mode = self.stories_mode(row.route) if self.stories_mode is not None else "edit"
        assert first is not None
        ack = await self.store.get_ack(first.id)
        result = await self._within(sink.update(StoryUpdate(
            id=row.id, route=row.route, nonce=row.nonce, attempt=row.attempts,
            mode="thread" if mode == "thread" else "edit",
            story=update_alert.story,
            alert=replace(first_alert, story=update_alert.story),
            article=update_alert.article, message_id=where[0], thread_id=where[1],
            changed=row.changed, maybe_sent=update_alert.maybe_sent,
            acknowledged=None if ack is None else (ack.user_id, ack.at),
            superseded=await self._shows_later(later),
        )), sink, row)
        message_id, thread_id = update_result(result, sink, where)
        await self.store.set_story_message(row.story_id, row.route, message_id, thread_id)
        return message_id
