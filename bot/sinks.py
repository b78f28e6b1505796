"""DiscordSink: alerts to Discord channels (through the bot) or webhooks (no gateway needed).

Maps Discord's answers onto the engine's delivery errors: 429/5xx/timeouts/dropped connections
are transient; an invalid body (400) rejects that alert; missing access or an unknown
channel/webhook (403/404, a webhook's 401) pauses the destination so its alerts are held, not
lost; a 401 to the bot says its token was refused, not the channel, and is retried.

Duplicates: a bot message carries the alert's nonce with ``enforce_nonce``, so Discord answers a
retry with the message it already created. Webhooks take no nonce: when a webhook send may have
gone through (the connection dropped or timed out after sending, or a crash interrupted it) the
alert is marked "maybe sent", and before sending it again the sink looks for it in the channel
when the bot can read it; without a bot the retry may show a duplicate (see docs/delivery.md,
"The webhook window"). A bot's retry looks too, once Discord may have forgotten the nonce. A
message found by such a look is taken only when it can be the alert's own earlier attempt (see
:meth:`DiscordSink._may_be_own`): a text-style message is found by its content, which two
alerts can share.

Stories (:meth:`DiscordSink.update`): a later article of a story edits the story's message or
posts one line in a thread started on it; neither pings anyone. An edit is idempotent by
nature; a thread line carries the update's nonce like an alert. A message (or thread) a
moderator deleted is not an error: the story is posted afresh, without pings, and its new id
returned. Webhook targets cannot start threads, so thread mode edits there instead.

Digests (:meth:`DiscordSink.digest`): what a route kept (a digest route, quiet hours, past the
hourly cap) as one message, or as few as Discord's limits need, split between stories; none
pings anyone. Part ``i`` carries a nonce derived from the digest's and ``i``, the same on every
retry, so a retry after a lost answer returns the parts already posted; a webhook looks for
them by their footer (which names the digest and the part).

Forum channels: on a route whose channel is a forum (a ``discord.ForumChannel`` in the bot's
cache, or fetched once when Discord says the channel takes no messages), every alert is a new
post named after the article's headline, carrying the forum's tags named like a fired rule
(case-insensitively, at most 5); its id (the post's, which its starter message shares) is the
alert's message id. A story's later articles are replies in the post, whatever the route's
mode; a deleted post makes the story post afresh. A digest is one post, its later parts replies
in it; a notice is a post of its own. Creating a post takes no nonce, so a post whose answer was
lost is "maybe sent", and the retry first looks among the forum's active posts by the bot for
one whose starter message carries the alert's marker (the footer, as for webhooks). A thread
channel as a target is posted to like a text channel. A webhook in a forum names each post
(``thread_name``, learnt from Discord's refusal of a send without one) but cannot tag it (it
cannot read the forum's tags), and a story's updates edit the post's message (through the
post's thread), as webhooks do elsewhere: a webhook send carries no nonce, so a reply could
double where an edit cannot.

Server routes: a channel a server picked for its rules (``/rules add channel:``) is added at
run time with :meth:`DiscordSink.add_route` and is then served exactly like a config route of
the same channel: a text, announcement or thread channel gets messages, a forum posts. The
front end checked the bot may post there when it was picked; if that changes later, Discord's
refusal pauses the route like any other.

Acknowledgement: an alert at or above ``ack_from`` posted by the bot carries "Acknowledge" and
"Not relevant" buttons (custom ids with the alert's outbox id, answered by the acks extension).
Webhook targets get no buttons: Discord only lets a webhook owned by an application carry
interactive components, and a webhook from a channel's settings is not; their alerts are
therefore never acknowledged nor escalated. The escalation of an unacknowledged critical alert
is a notice (see :meth:`DiscordSink.notice`) that may mention ``escalation_role`` and nothing
else.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import html
import importlib
import json
import logging
import math
import re
import secrets
from collections import OrderedDict
from collections.abc import (
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import aiohttp
import discord

from bot.destinations import (
    ChannelTarget,
    Target,
    WebhookTarget,
    parse_webhook_url,
    resolve_targets,
)
from bot.embeds import (
    ack_buttons,
    alert_message,
    digest_messages,
    digest_title,
    story_message,
    thread_line,
    thread_name,
    truncate,
)
from bot.logs import redact
from watchers.config import DiscordConfig, RouteConfig
from watchers.delivery import (
    WEBHOOK_PAUSE_MARK,
    Alert,
    Digest,
    Sink,
    StoryUpdate,
    UpdateResult,
)
from watchers.errors import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UncertainDeliveryError,
)
from watchers.store.base import SEVERITIES

__all__ = [
    "ChannelTarget",
    "DiscordSink",
    "Target",
    "WebhookTarget",
    "discord_sink",
    "discord_sinks",
    "parse_webhook_url",
    "resolve_targets",
]

log = logging.getLogger("newswatch")


def _mendable(module: str, name: str, needs: tuple[str, ...]) -> Any:
    """discord.py's class ``name`` of ``module`` when it has the shape a mending here expects
    (``needs``) and is not mended yet; None otherwise (another version of discord.py: left
    as it is)."""
    try:
        found = getattr(importlib.import_module(module), name, None)
    except ImportError:  # pragma: no cover - a discord.py without it
        return None
    if found is None or getattr(found, "_newswatch_background", False):
        return None
    return found if all(hasattr(found, a) for a in needs) else None


# The longest wait an emptied webhook bucket's answer is obeyed for, in seconds (the bot
# client's max_ratelimit_timeout, bot/client.py).
WEBHOOK_BUCKET_WAIT_MAX = 30.0


def _release_webhook_locks_in_the_background() -> None:
    """discord.py's webhook client holds a webhook's lock while it sleeps out an emptied
    rate-limit bucket, in the ``async with`` block's exit (``AsyncDeferredLock.__aexit__``:
    sleep, then release). A send's timeout that cancelled that sleep left the lock taken for
    good: every later send to the webhook waited behind it until its own timeout, for the
    life of the process (a slow answer plus Discord's usual reset of about 2 s was enough).
    And the answer, already read, was lost: the message was made, and sent again. Here the
    exit hands the release to the event loop for after the wait and returns at once, as the
    bot client's buckets now do too (:func:`_reset_rate_limit_buckets_in_the_background`):
    the send returns its message, and the next send to the webhook still waits out the bucket
    behind the lock."""
    deferred = _mendable("discord.webhook.async_", "AsyncDeferredLock",
                         ("__aenter__", "__aexit__", "delay_by"))
    if deferred is None:
        return

    async def __aexit__(self: Any, *exc: object) -> None:
        lock, delta = self.lock, self.delta
        if delta and not delta <= WEBHOOK_BUCKET_WAIT_MAX:  # nan too
            # An answer asking for a wait of hours (a proxy's or a broken header's) held the
            # lock for that long: every later send to the webhook timed out behind it. The
            # bot client's buckets give up such a wait past 30 s (max_ratelimit_timeout);
            # here the wait is cut to that, and the next send's own 429, if any, is obeyed.
            log.warning("a webhook's answer asked to wait %s s before its next send; "
                        "waiting %.0f s", f"{delta:.0f}", WEBHOOK_BUCKET_WAIT_MAX)
            delta = WEBHOOK_BUCKET_WAIT_MAX
        if delta:
            # A task, not a timer: an event loop ending before the wait is over cancels it,
            # and the lock is released all the same (a timer left on a closed loop kept the
            # lock, process-wide, from the next loop's first send to that webhook).
            _in_background(_release_after(lock, delta))
        else:
            lock.release()

    deferred.__aexit__ = __aexit__
    deferred._newswatch_background = True


# The webhook locks' releases and the buckets' ways out under way (kept from collection).
_RELEASING: set[asyncio.Future[None]] = set()


async def _release_after(lock: asyncio.Lock, delta: float) -> None:
    try:
        await asyncio.sleep(delta)
    finally:
        lock.release()


_release_webhook_locks_in_the_background()


def _reset_rate_limit_buckets_in_the_background() -> None:
    """discord.py's bot client paces each route with a bucket (``discord.http.Ratelimit``). A
    request leaving a bucket it emptied sleeps out the bucket's reset on the way out, after
    its answer is read (``__aexit__`` → ``_refresh``: sleep, reset, wake the next request).
    A send's timeout that cancelled that sleep lost the answer (the message was made; the
    alert was taken as sent in doubt and the channel read back to find it) and skipped the
    reset: the bucket stayed empty, and where no reset time was known (answers without
    rate-limit headers) every later request waited 30 s for it, longer than a send's own
    timeout, so the route never sent again.

    Here the way out hands its work to a task of its own and returns at once: the send
    returns its message, the reset runs to its end, and the next request still waits for it
    in the bucket. (The way out's bookkeeping runs one turn of the event loop later than it
    did; the bucket's counts come out the same.)"""
    bucket = _mendable("discord.http", "Ratelimit", ("__aenter__", "__aexit__", "_refresh"))
    if bucket is None:
        return
    leave = bucket.__aexit__

    async def __aexit__(self: Any, *exc: Any) -> None:
        _in_background(leave(self, *exc))

    bucket.__aexit__ = __aexit__
    bucket._newswatch_background = True


def _in_background(work: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
    """``work`` as a task that nothing cancels but the end of its event loop, kept from
    collection until it is done, its failure (if any) logged."""
    task = asyncio.ensure_future(work)
    _RELEASING.add(task)
    task.add_done_callback(_done_in_background)
    return task


def _done_in_background(task: asyncio.Future[None]) -> None:
    _RELEASING.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("discord.py's rate-limit bookkeeping failed: %s",
                    redact(repr(task.exception()))[:200])


_reset_rate_limit_buckets_in_the_background()

def _marked(exc: PermanentDeliveryError, target: WebhookTarget) -> PermanentDeliveryError:
    """A webhook's failure that pauses its route, naming the webhook (see
    WebhookTarget.mark); any other as it was."""
    if not exc.pause_destination:
        return exc
    return PermanentDeliveryError(f"{exc} {WEBHOOK_PAUSE_MARK}{target.mark}]",
                                  pause_destination=True, maybe_sent=exc.maybe_sent)


# In a notice, the characters that could make a masked link, a mention, formatting or a quote
# out of an article's title; our own punctuation ( ) : - . stays as written.
_NOTICE_MARKUP = re.compile(r"([\\*_~|`>\[\]<@#])")

# Discord's JSON error codes the story updates act on.
_UNKNOWN_CHANNEL = 10003
_UNKNOWN_MESSAGE = 10008
_THREAD_EXISTS = 160004  # "A thread has already been created for this message"
# "Cannot edit a message authored by another user" (403): the story's message is a webhook's,
# posted before its route was the bot's channel; the story is posted afresh, as for a deleted
# one (it paused the route, and every resume paused it again).
_NOT_AUTHOR = 50005
# The bot may not start threads here (permission), the channel has none (its type) or has as
# many active threads as Discord allows (160006): the update edits the message instead of
# pausing the whole route, or being refused.
_NO_THREADS_HERE = {50013, 50024, 160006}


_NON_TEXT_CHANNEL = 50008  # a message sent to a forum itself
_ARCHIVED_THREAD = 50083  # "Operation cannot be performed on an archived thread"
_INVALID_WEBHOOK_TOKEN = 50027
# The reason a bot channel was paused with when the bot's token was refused ("destination
# unusable: 401 401: Unauthorized"): a 401 that carries no error code.
_TOKEN_PAUSE = re.compile(r"destination unusable: 401 (?!\(code )")
# How a webhook's pause names the webhook it was of (see WebhookTarget.mark).
# (Anywhere in the reason: a digest's wraps it, "digest part 2/4 not sent (… [webhook 1a2b3c]);
# the parts before it were", and anchored at the end it was not found.)
_WEBHOOK_MARK = re.compile(re.escape(WEBHOOK_PAUSE_MARK) + r"([0-9a-f]{6})\]")
_FORUM_WEBHOOK = 220001  # "Webhooks posted to forum channels must have a thread_name or thread_id"
_MAX_APPLIED_TAGS = 5  # Discord's limit per post


class _Gone(Exception):
    """The story's message (or its thread) no longer exists."""


class _NotText(Exception):
    """Discord says the channel takes no messages (a forum, when the cache did not know)."""


# What a request's error handling passes on as it is: this module's own outcomes.
_DeliveryErrors = (DeliveryError, _Gone, _NotText)


@dataclass(frozen=True)
class _Post:
    """What a message becomes in a forum: a post with this name, tagged after these rules."""

    name: str
    rules: tuple[str, ...] = ()
    # A post of no rule (a notice): in a forum that requires a tag, the first tag the bot
    # may apply (it was refused, and an operator's notice never shown).
    any_tag: bool = False


def _post_of(alert: Alert) -> _Post:
    return _Post(thread_name(alert.article.title or alert.article.url or "Alert"),
                 tuple(r.name for r in alert.rules))


def _digest_rules(digest: Digest) -> tuple[str, ...]:
    """The rules of a digest's items, each once, in the digest's order: its post's tags (a
    forum that requires a tag refused every digest, and the alerts it carried were lost)."""
    return tuple(dict.fromkeys(r.name for item in digest.items for r in item.rules))


def pick_tags(tags: Sequence[discord.ForumTag], rules: Sequence[str], *,
              moderated: bool = False) -> list[discord.ForumTag]:
    """The forum's tags named like one of ``rules`` (case-insensitively), in the rules' order,
    at most Discord's 5; moderated tags only when the bot may apply them (``moderated``)."""
    by_name: dict[str, discord.ForumTag] = {}
    for tag in tags:
        if moderated or not tag.moderated:
            by_name.setdefault(tag.name.casefold(), tag)
    picked: list[discord.ForumTag] = []
    for rule in rules:
        hit = by_name.get(rule.casefold())
        if hit is not None and hit not in picked:
            picked.append(hit)
    return picked[:_MAX_APPLIED_TAGS]


# How many of a channel's newest messages a retry looks through for an earlier attempt's (one
# request: Discord's most); a digest's MAX_DIGEST_PARTS parts fit with room for others.
LOOK_BACK = 100

# How far this machine's clock may be ahead of Discord's before a message made by an earlier
# attempt could look older than the article it shows (see DiscordSink._may_be_own). A clock
# further ahead than this makes a lost answer's message post again: shown twice, never lost.
CLOCK_SKEW = timedelta(minutes=10)

# How many of the messages it posted (or found again) a sink remembers, with the nonce each was
# for: a few pages of LOOK_BACK in each of many channels.
REMEMBERED = 10_000


def _marker(kwargs: Mapping[str, Any]) -> str | None:
    """What a message we posted looks like, to find it again: its embed's footer (it names the
    article or the digest part) with its "Rule" field (the rules that fired on its route), or
    for a text-style message its content. A text-style message's content names no alert (a
    template such as "{severity}: {title}" renders alike for two articles of one title), so a
    message carrying the marker is taken only when it can be this one's own earlier attempt
    (see DiscordSink._may_be_own)."""
    embed = kwargs.get("embed")
    if isinstance(embed, discord.Embed):
        rule = next((f.value for f in embed.fields if f.name == "Rule"), None)
        return _embed_marker(embed.footer.text, rule)
    content = kwargs.get("content")
    return content if isinstance(content, str) and content else None


def _embed_marker(footer: str | None, rule: str | None) -> str | None:
    # The footer alone named the article and severity: two routes sharing a channel each
    # took the other's message for their own earlier attempt (one alert marked delivered,
    # never posted). Their rules tell them apart.
    if not footer:
        return None
    return footer if rule is None else f"{footer}\n{rule}"


def _carries(embeds: Sequence[Mapping[str, Any]], content: str | None, marker: str) -> bool:
    if content == marker:
        return True
    for e in embeds:
        rule = next((f.get("value") for f in e.get("fields") or [] if f.get("name") == "Rule"),
                    None)
        if _embed_marker((e.get("footer") or {}).get("text"), rule) == marker:
            return True
    return False


def _earlier(recent: Iterable[Mapping[str, Any]], marker: str,
             sender: Callable[[Mapping[str, Any]], bool]) -> str | None:
    """The id of the newest of ``recent`` messages (newest first, as Discord lists them) that
    ``sender`` posted and that carries ``marker``, or None."""
    for m in recent:
        if sender(m) and _carries(m.get("embeds") or [], m.get("content"), marker):
            return str(m["id"])
    return None


def _made_at(message_id: str) -> datetime | None:
    """When Discord made the message (or post) of this id: its snowflake's time."""
    try:
        return discord.utils.snowflake_time(int(message_id))
    except (ValueError, OverflowError):
        return None


def _derived_nonce(nonce: str, purpose: str) -> str:
    # Fixed by the row's nonce and what the message is for, so every retry shares it and no
    # two messages of one row share one. 24 hex digits: inside Discord's 25 characters. The
    # inputs must not change between versions: a retry after an upgrade has to match.
    return hashlib.sha256(f"{nonce}:{purpose}".encode()).hexdigest()[:24]


def _part_nonce(nonce: str, part: int) -> str:
    return _derived_nonce(nonce, f"digest-part:{part}")


def _repost_nonce(nonce: str) -> str:
    # The repost must not reuse the update's own nonce: in thread mode that nonce may already
    # name a line posted in the thread.
    return _derived_nonce(nonce, "repost")


class DiscordSink:
    """Delivers alerts, digests and operational notices to the Discord targets of their routes.

    ``client`` is needed for channel targets (a logged-in bot); webhook targets need only the
    aiohttp ``session``. ``timeout`` bounds one attempt, discord.py's own retries included.
    """

    def __init__(self, targets: Mapping[str, Target], *, client: discord.Client | None = None,
                 session: aiohttp.ClientSession | None = None, timeout: float = 30.0,
                 routes: Mapping[str, RouteConfig] | None = None, ack_from: str = "none",
                 escalation_role: int | None = None) -> None:
        self.targets = dict(targets)
        # alerts at or above this severity carry acknowledgement buttons ("none": none do)
        self.ack_from = ack_from
        # the one role an escalation notice may ping
        self.escalation_role = escalation_role
        # each route's settings (its message template); a route without an entry has defaults
        self.routes = dict(routes or {})
        self.client = client
        self.session = session
        self.timeout = timeout
        self._hook_channels: dict[int, int] = {}
        # forums learnt by fetching (not in the cache when first posted to), by channel id
        self._fetched_forums: dict[int, discord.ForumChannel] = {}
        # webhooks Discord told us post into a forum (they need thread_name)
        self._forum_hooks: set[int] = set()
        # The messages (and forum posts) this sink posted or found again, by id, with the
        # nonce of what each was for, newest last: one is never another's earlier attempt.
        self._posted: OrderedDict[str, str] = OrderedDict()

    def _remember(self, message_id: str, nonce: str) -> str:
        """Note that ``message_id`` is the message sent with ``nonce``; returns the id."""
        self._posted[message_id] = nonce
        self._posted.move_to_end(message_id)
        while len(self._posted) > REMEMBERED:
            self._posted.popitem(last=False)
        return message_id

    def _may_be_own(self, message_id: str, nonce: str, since: datetime | None) -> bool:
        """Whether a message found carrying a message's marker can be that message's own
        earlier attempt (sent with ``nonce``, about an article first seen at ``since``). A
        text-style message's marker is its content, which two alerts may share (one headline
        reported twice, a recurring live-blog title): the second alert's retry after a 5xx took
        the first one's message for its own and was never posted. So a message this sink
        posted for another nonce is not this one's, nor is one Discord made before the
        article was seen (its snowflake's time; CLOCK_SKEW allows for this machine's clock
        running ahead), which holds across restarts."""
        taken = self._posted.get(message_id)
        if taken is not None and taken != nonce:
            return False
        if since is None:
            return True
        made = _made_at(message_id)
        return made is None or made >= since - CLOCK_SKEW

    def add_route(self, key: str, target: Target, route: RouteConfig) -> None:
        """Serve one more route: a server's picked channel (see
        :meth:`watchers.engine.Engine.add_route_listener`). Its alerts, stories, digests and
        notices go to ``target`` with ``route``'s settings, exactly as a config route's do; a
        forum channel's id makes forum posts. Adding a key again replaces its target."""
        self.targets[key] = target
        self.routes[key] = route

    async def deliver(self, alert: Alert) -> str | None:
        kwargs = alert_message(alert, route=self._route(alert.route))
        self._add_buttons(kwargs, alert)
        return await self._send(alert.route, kwargs, nonce=alert.nonce,
                                maybe_sent=alert.maybe_sent, retry=alert.attempt > 1,
                                post=_post_of(alert), since=alert.article.fetched_at)

    def _buttons(self, route: str) -> bool:
        """Whether the route's alerts can carry acknowledgement buttons at all."""
        return self.ack_from in SEVERITIES and isinstance(self.targets.get(route), ChannelTarget)

    def _add_buttons(self, kwargs: dict[str, Any], alert: Alert, *,
                     acknowledged: bool = False) -> None:
        """The acknowledgement buttons on an alert's message, if its route and severity take
        them (they name the alert's outbox row)."""
        if self._buttons(alert.route) and _rank(alert.severity) >= _rank(self.ack_from):
            kwargs["view"] = ack_buttons(alert.id, acknowledged=acknowledged)

    def alert_link(self, route: str, message_id: str) -> str | None:
        """A link to an alert posted on ``route`` (see :class:`watchers.delivery.AckSink`);
        None when the route's alerts carry no buttons (a webhook, or acknowledgement off)."""
        target = self.targets.get(route)
        if not self._buttons(route) or not isinstance(target, ChannelTarget):
            return None
        channel = self.client.get_channel(target.channel_id) if self.client else None
        guild = getattr(channel, "guild", None)
        if guild is None:  # not cached (yet): still say where to look
            return f"message {int(message_id)} in channel {target.channel_id}"
        if isinstance(channel, discord.ForumChannel):  # the alert is a post: link the post
            return f"https://discord.com/channels/{guild.id}/{int(message_id)}"
        return f"https://discord.com/channels/{guild.id}/{target.channel_id}/{int(message_id)}"

    async def digest(self, digest: Digest) -> str | None:
        """Post a digest (see the module docstring); returns the id of its first message.

        A part that fails after an earlier one went out makes the whole digest "maybe sent"
        (UncertainDeliveryError): the retry then finds the posted parts (by nonce in a bot
        channel, by footer through a webhook) instead of posting them again.
        """
        messages = digest_messages(digest)
        first: str | None = None
        forum = self._forum_of(digest.route) is not None
        for i, kwargs in enumerate(messages):
            try:
                sent: str | None
                if forum and first is not None:  # the digest's post holds its later parts
                    # A retry looks in the post first, as for a channel's parts below.
                    sent = None
                    nonce = _part_nonce(digest.nonce, i)
                    if digest.maybe_sent or digest.attempt > 1:
                        sent = await self._find_in_channel(int(first), kwargs, nonce=nonce)
                    if sent is None:
                        sent = await self._send_channel(ChannelTarget(int(first)), kwargs,
                                                        nonce)
                else:
                    # A retry looks for each part first, as an alert's does: the nonce
                    # alone let a part post twice after a lost answer and a long outage.
                    sent = await self._send(digest.route, kwargs,
                                            nonce=_part_nonce(digest.nonce, i),
                                            maybe_sent=digest.maybe_sent,
                                            retry=digest.attempt > 1,
                                            post=_Post(thread_name(digest_title(digest)),
                                                       _digest_rules(digest)))
            except TransientDeliveryError as exc:
                if i:
                    # Maybe sent whatever this part's failure (the parts before it were), and
                    # which part it was said.
                    raise UncertainDeliveryError(
                        f"digest part {i + 1}/{len(messages)} not sent ({exc}); the parts "
                        "before it were", retry_after=exc.retry_after) from None
                raise
            except PermanentDeliveryError as exc:
                if i:
                    # The destination went away (paused) after the first parts: when it is
                    # resumed, those parts are looked for, not posted again.
                    raise PermanentDeliveryError(
                        f"digest part {i + 1}/{len(messages)} not sent ({exc}); the parts "
                        "before it were", pause_destination=exc.pause_destination,
                        maybe_sent=True) from None
                raise
            first = first or sent
        return first

    async def update(self, update: StoryUpdate) -> UpdateResult:
        """Show a later article of a story already posted on this route, pinging nobody.

        ``mode="edit"``: the story's message is edited (the embed re-rendered with the story's
        line and newest article; its content and role mentions stay as they were). A bot
        channel edits with PATCH /channels/{c}/messages/{m}, a webhook through its own
        message-edit endpoint (only messages that webhook posted).

        ``mode="thread"``: the first update starts a thread on the message, named after the
        headline; each update is one line in it (the nonce makes a retry return the line
        already posted; a thread whose creation answer was lost is found again, since a
        thread started from a message takes that message's id). Webhook targets cannot start a
        thread from a message, and a channel where the bot may not (missing permission, a
        channel type without threads) leaves the bot nothing else to do: both edit instead,
        and the result carries no thread.

        A deleted message, or a deleted thread, makes the story post afresh as an alert without
        pings; the result names the new message with ``reposted=True``. So does a message the
        bot may not edit (a webhook's, posted before the route was the bot's channel).

        A forum route (the story is a post): each update is a reply in the post, in either mode
        (carrying its nonce); the result names the post as the story's thread too.

        An edit of an update ``superseded`` by the next one (a burst of reports) is not made:
        the next edit shows the whole story, and each edit waits on Discord's rate limit.
        """
        target = self.targets.get(update.route)
        if target is None:
            raise PermanentDeliveryError(f"route {update.route!r} has no Discord destination",
                                         pause_destination=True)
        try:
            if self._forum_of(update.route) is not None:
                await self._reply_in_post(update)
                return UpdateResult(update.message_id, update.message_id)
            if isinstance(target, WebhookTarget):
                if not update.superseded:
                    await self._edit_webhook(target, update)
                return UpdateResult(update.message_id)
            if update.mode == "thread":
                thread = await self._thread_post(target, update)
                if thread is not None:
                    return UpdateResult(update.message_id, thread)
            if not update.superseded:
                await self._edit_channel(target, update)
            return UpdateResult(update.message_id, update.thread_id)
        except _Gone:
            log.info("route %s: the story's message %s is gone (or not the bot's to edit); "
                     "posting the story afresh", update.route, update.message_id)
        kwargs = story_message(update, repost=True, route=self._route(update.route))
        # the story's alert still asks to be acknowledged
        self._add_buttons(kwargs, update.alert, acknowledged=update.acknowledged is not None)
        # A retry looks for an earlier attempt's repost, which carries the same marker as
        # the story's message: that message, still there when only its thread was deleted,
        # is not the repost (taken for it, the update was shown nowhere).
        new_id = await self._send(update.route, kwargs,
                                  nonce=_repost_nonce(update.nonce),
                                  maybe_sent=update.maybe_sent, retry=update.attempt > 1,
                                  post=_post_of(update.alert), besides=update.message_id,
                                  since=update.article.fetched_at)
        if new_id is None:  # _send always names what it posted; guard the contract
            raise TransientDeliveryError("Discord did not name the reposted story's message")
        return UpdateResult(new_id, None, reposted=True)

    def _route(self, route: str) -> RouteConfig | None:
        return self.routes.get(route)

    def stale_pause(self, route: str, reason: str) -> bool:
        """Whether ``route``'s stored pause came from the bot's token being refused (a bot
        channel's 401 with no error code), which paused every channel before such a 401 was
        retried instead: the channel was never at fault; or, for a webhook route, from another
        destination than its webhook now (another URL, or a bot channel). A webhook's 401
        (Invalid Webhook Token) is its own and stays paused while its URL stays."""
        target = self.targets.get(route)
        if isinstance(target, WebhookTarget):
            # Paused by another URL than the route's now (the operator corrected its token,
            # in the file or the variable): that URL's refusal says nothing of this one. In a
            # set-up of webhooks alone nothing else could resume it (/alerts resume needs the
            # bot), and every alert of the route was held for good.
            # A pause that names no webhook was not a webhook's: the route was a bot channel
            # when it paused (403 Missing Permissions) and is a webhook now, which only a bot
            # could resume; it is tried, and pauses again, naming itself, if it fails too.
            marks = _WEBHOOK_MARK.findall(reason)
            return not marks or marks[-1] != target.mark
        return (isinstance(target, ChannelTarget)
                and _TOKEN_PAUSE.match(reason) is not None)

    def _need_client(self) -> discord.Client:
        if self.client is None:
            raise PermanentDeliveryError("channel targets need the bot connected",
                                         pause_destination=True)
        return self.client

    def _forum_of(self, route: str) -> discord.ForumChannel | None:
        """The route's channel when it is a forum the bot knows of (cached or fetched)."""
        target = self.targets.get(route)
        if not isinstance(target, ChannelTarget) or self.client is None:
            return None
        channel = (self.client.get_channel(target.channel_id)
                   or self._fetched_forums.get(target.channel_id))
        return channel if isinstance(channel, discord.ForumChannel) else None

    async def _reply_in_post(self, update: StoryUpdate) -> None:
        post = self._need_client().get_partial_messageable(int(update.message_id))
        line = thread_line(update)
        # A retry looks in the post first, as a story thread's line does: the nonce alone let
        # the reply post twice after a lost answer and a long outage.
        if (update.attempt > 1 or update.maybe_sent) and await self._find_in_channel(
                int(update.message_id), line, nonce=update.nonce,
                since=update.article.fetched_at) is not None:
            return
        try:
            async with self._request_errors(gone={_UNKNOWN_CHANNEL, _UNKNOWN_MESSAGE}):
                sent = await post.send(nonce=update.nonce, **line)
                self._remember(str(sent.id), update.nonce)
        except PermanentDeliveryError as exc:
            if not exc.pause_destination:
                raise
            # One post locked or archived by a moderator refuses its replies; the forum's
            # other posts and new alerts are not concerned (a forum the bot may no longer
            # post in pauses at its next alert).
            raise PermanentDeliveryError(
                f"the story's post {update.message_id} refuses replies (locked or archived, "
                f"or no permission to reply there): {exc}") from None

    async def _edit_channel(self, target: ChannelTarget, update: StoryUpdate) -> None:
        message = self._need_client().get_partial_messageable(target.channel_id
                                                              ).get_partial_message(
            int(update.message_id))
        kwargs = story_message(update, route=self._route(update.route))
        async with self._request_errors(gone={_UNKNOWN_MESSAGE, _NOT_AUTHOR}):
            await message.edit(**_edit_kwargs(kwargs))

    async def _thread_post(self, target: ChannelTarget, update: StoryUpdate) -> str | None:
        """Post the update's line in the story's thread (started first if need be); returns
        the thread's id, or None when no thread can be started here (then edit instead)."""
        client = self._need_client()
        thread_id = update.thread_id
        if thread_id is None:
            thread_id = await self._start_thread(client, target, update)
            if thread_id is None:
                return None
        else:
            await self._starter_kept(client, target, update)
        channel = client.get_partial_messageable(int(thread_id))
        line = thread_line(update)
        # A retry looks in the thread first, as an alert's does in its channel: the nonce
        # alone let the line post twice after a lost answer and a long outage.
        if (update.attempt > 1 or update.maybe_sent) and await self._find_in_channel(
                int(thread_id), line, nonce=update.nonce,
                since=update.article.fetched_at) is not None:
            return thread_id
        try:
            async with self._request_errors(gone={_UNKNOWN_CHANNEL}):
                sent = await channel.send(nonce=update.nonce, **line)
                self._remember(str(sent.id), update.nonce)
        except PermanentDeliveryError as exc:
            if not exc.pause_destination:
                raise
            # The story's thread refuses lines (a moderator locked or archived it, or Send
            # Messages in Threads was taken away): the channel itself may be fine, and the
            # story's message is edited instead. Were the channel unusable too, the edit
            # pauses the route.
            log.warning("route %s: the story's thread %s refuses new lines (%s); editing the "
                        "story's message instead", update.route, thread_id, exc)
            return None
        return thread_id

    async def _starter_kept(self, client: discord.Client, target: ChannelTarget,
                            update: StoryUpdate) -> None:
        """Raise :class:`_Gone` when the story's message, the thread's starter, was deleted:
        the thread outlives it, and lines posted there alone left the story unseen in the
        channel for good. Where the bot may not read the channel's messages it cannot look,
        and the line posts as before."""
        try:
            async with self._request_errors(gone={_UNKNOWN_MESSAGE}, reading=True):
                await client.http.get_message(target.channel_id, int(update.message_id))
        except PermanentDeliveryError:
            return

    async def _start_thread(self, client: discord.Client, target: ChannelTarget,
                            update: StoryUpdate) -> str | None:
        async with self._request_errors(gone={_UNKNOWN_MESSAGE}):
            try:
                data = await client.http.start_thread_with_message(
                    target.channel_id, int(update.message_id),
                    name=thread_name(update.story.headline), auto_archive_duration=1440)
                return str(data["id"])
            except discord.HTTPException as exc:
                if exc.code == _THREAD_EXISTS:
                    return update.message_id  # an earlier attempt started it; same id
                if exc.code not in _NO_THREADS_HERE:
                    raise
                log.warning("route %s: cannot start a thread in channel %s (%s); editing the "
                            "story's message instead", update.route, target.channel_id,
                            redact(f"{exc.status} {exc.text}"))
                return None

    async def _edit_webhook(self, target: WebhookTarget, update: StoryUpdate) -> None:
        if self.session is None:
            raise PermanentDeliveryError("webhook targets need an HTTP session",
                                         pause_destination=True)
        hook = discord.Webhook.partial(target.webhook_id, target.token,
                                       session=cast(aiohttp.ClientSession, _Watched(self.session)))
        kwargs = _edit_kwargs(story_message(update, route=self._route(update.route)))
        try:
            await self._edit_in_webhook(hook, update, kwargs)
        except PermanentDeliveryError as exc:
            raise _marked(exc, target) from None

    async def _edit_in_webhook(self, hook: discord.Webhook, update: StoryUpdate,
                               kwargs: dict[str, Any]) -> None:
        mid = int(update.message_id)
        # Unknown Channel: the post (thread) the message lived in is gone too
        async with self._request_errors(gone={_UNKNOWN_MESSAGE, _UNKNOWN_CHANNEL},
                                        webhook=True):
            if hook.id in self._forum_hooks:  # a post's message lives in its thread (same id)
                await hook.edit_message(mid, thread=discord.Object(mid), **kwargs)
                return
            try:
                await hook.edit_message(mid, **kwargs)
            except discord.NotFound as exc:
                # Unknown here may mean a forum post we have not learnt of since a restart:
                # look in the thread of that id before calling the message gone.
                if exc.code != _UNKNOWN_MESSAGE:
                    raise
                await hook.edit_message(mid, thread=discord.Object(mid), **kwargs)
                self._forum_hooks.add(hook.id)

    @contextlib.asynccontextmanager
    async def _request_errors(self, *, gone: set[int], webhook: bool = False,
                              reading: bool = False) -> AsyncIterator[None]:
        """One request of the bot (a send with a nonce, or a story update's; a webhook's edit
        with ``webhook``), bounded by ``timeout``, its failures mapped as for alerts. An error
        whose code is in ``gone`` raises :class:`_Gone`. A failure after the request may have
        been carried out (no answer in time, a 5xx, a connection dropped after connecting, an
        answer that does not read) is "maybe sent" (UncertainDeliveryError): the retry is safe
        (a send or thread line carries its nonce and is looked for, an edit repeats harmlessly,
        a thread is found again by the message's id), and the delivery must know it may have
        posted: taken for a plain failure, an alert whose answer was lost just before quiet
        hours was kept for their digest, and shown twice. A read (``reading``: a lookup) that
        fails so says nothing of what was posted: a plain failure, to be tried again."""
        try:
            async with asyncio.timeout(self.timeout):
                yield
        except TimeoutError:
            self._release_global_wait()
            raise (TransientDeliveryError if reading else UncertainDeliveryError)(
                f"no answer from Discord in {self.timeout:g}s") from None
        except discord.RateLimited as exc:
            raise TransientDeliveryError("rate limited", retry_after=exc.retry_after) from None
        except discord.HTTPException as exc:
            if exc.code in gone:
                raise _Gone from None
            error = _classify(exc, webhook=webhook)
            if exc.status >= 500 and not reading:
                # Discord may have carried it out before failing to answer.
                raise UncertainDeliveryError(str(error)) from None
            raise error from None
        except aiohttp.ClientConnectorError as exc:
            # never connected: nothing was sent
            raise TransientDeliveryError(redact(f"network error: {exc!r}")) from None
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise (TransientDeliveryError if reading else UncertainDeliveryError)(
                redact(f"network error after sending: {exc!r}")) from None
        except _DeliveryErrors:
            raise
        except Exception as exc:  # an answer discord.py could not read
            if (rate_limit := _unread_limit(exc, "Discord")) is not None:
                raise rate_limit from None  # a 429: nothing was made
            # Any other (a malformed rate-limit header, a body that is not JSON): the request
            # may have been carried out; its nonce, or the lookup, keeps the retry from
            # doubling it.
            raise (TransientDeliveryError if reading else UncertainDeliveryError)(
                redact(f"unreadable answer from Discord: {type(exc).__name__}: {exc}")[:300]
            ) from None

    async def notice(self, route: str, text: str, *, nonce: str | None = None,
                     maybe_sent: bool = False) -> str | None:
        """Post a plain operational notice (markup shown as written) to the route's
        destination. ``nonce`` is the outbox row's, so a retry is not posted twice; with
        ``maybe_sent`` (an earlier attempt may have gone through) an earlier attempt's message
        is looked for first, as for alerts: a webhook's send carries no nonce. It pings
        nobody, except that a notice that opens with a mention of ``escalation_role`` (an
        escalation) pings that role."""
        role = self.escalation_role
        lead = f"<@&{role}> " if role else None
        ping = lead is not None and text.startswith(lead)
        body = text[len(lead):] if lead is not None and ping else text
        content = _NOTICE_MARKUP.sub(r"\\\1", redact(body))
        kwargs: dict[str, Any] = {
            "content": truncate(f"{lead}{content}" if ping else content, 2000),
            "allowed_mentions": (discord.AllowedMentions(
                everyone=False, users=False, replied_user=False,
                roles=[discord.Object(id=role)]) if ping and role else
                discord.AllowedMentions.none()),
        }
        return await self._send(route, kwargs, nonce=nonce or secrets.token_hex(12),
                                maybe_sent=maybe_sent,
                                post=_Post(thread_name(redact(body)), any_tag=True))

    async def _send(self, route: str, kwargs: dict[str, Any], *, nonce: str, maybe_sent: bool,
                    post: _Post, retry: bool = False, besides: str | None = None,
                    since: datetime | None = None) -> str | None:
        """Post one message to the route's destination; ``post`` names it (and picks its tags)
        where the destination is a forum. In a bot channel a ``retry`` (or a send that may have
        gone through) looks for an earlier attempt's message first: Discord keeps a nonce for a
        few minutes only, and a lost answer followed by a longer outage (or backoff) would
        otherwise post it twice. ``besides``: a message that is never the earlier attempt's;
        ``since``: when the article it shows was first seen (no attempt came before)."""
        target = self.targets.get(route)
        if target is None:
            raise PermanentDeliveryError(f"route {route!r} has no Discord destination",
                                         pause_destination=True)
        if isinstance(target, WebhookTarget):
            return await self._send_webhook(target, kwargs, maybe_sent, post, nonce, since)
        forum = self._forum_of(route)
        if forum is None:
            try:
                if maybe_sent or retry:
                    found = await self._find_in_channel(target.channel_id, kwargs, nonce=nonce,
                                                        since=since, besides=besides)
                    if found is not None:
                        return found
                return await self._send_channel(target, kwargs, nonce)
            except _NotText:
                forum = await self._fetch_forum(target)
        return await self._post_in_forum(forum, kwargs, post, maybe_sent, nonce, since)

    async def _find_in_channel(self, channel_id: int, kwargs: dict[str, Any], *, nonce: str,
                               since: datetime | None = None,
                               besides: str | None = None) -> str | None:
        """The id of this message (sent with ``nonce``) if an earlier attempt posted it in the
        channel: one of the bot's last :data:`LOOK_BACK` messages there carrying its marker (an
        alert's names its severity and article) that can be its own (see :meth:`_may_be_own`;
        ``since``: when its article was first seen), other than ``besides``. None when it is
        not there or the bot cannot look (no Read Message History): the send's nonce is then
        all that keeps it from showing twice."""
        client = self.client
        marker = _marker(kwargs)
        if client is None or client.user is None or not marker:
            return None
        try:
            async with self._request_errors(gone=set(), reading=True):
                recent = await client.http.logs_from(channel_id, LOOK_BACK)
        except PermanentDeliveryError as exc:
            log.info("channel %s: cannot look for an earlier attempt's message (%s); sending "
                     "with its nonce", channel_id, exc)
            return None
        me = str(client.user.id)
        found = _earlier(recent, marker, lambda m: str((m.get("author") or {}).get("id")) == me
                         and str(m.get("id")) != besides
                         and self._may_be_own(str(m.get("id")), nonce, since))
        if found is not None:
            log.info("channel %s: an earlier attempt did post this (message %s)", channel_id,
                     found)
            self._remember(found, nonce)
        return found

    async def _fetch_forum(self, target: ChannelTarget) -> discord.ForumChannel:
        """The channel Discord said takes no messages, when it is a forum the cache did not
        know yet (the bot posted before seeing it); otherwise the route is unusable."""
        client = self._need_client()
        try:
            async with asyncio.timeout(self.timeout):
                channel = await client.fetch_channel(target.channel_id)
        except TimeoutError:
            self._release_global_wait()
            raise TransientDeliveryError(f"no answer from Discord in {self.timeout:g}s") from None
        except discord.HTTPException as exc:
            raise _classify(exc) from None
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise TransientDeliveryError(redact(f"network error: {exc!r}")) from None
        if not isinstance(channel, discord.ForumChannel):
            raise PermanentDeliveryError(
                f"channel {target.channel_id} takes no messages "
                f"({getattr(channel, 'type', 'unknown')} channel); "
                "pick a text, announcement, forum or thread channel", pause_destination=True)
        self._fetched_forums[target.channel_id] = channel
        return channel

    async def _post_in_forum(self, forum: discord.ForumChannel, kwargs: dict[str, Any],
                             post: _Post, maybe_sent: bool, nonce: str,
                             since: datetime | None = None) -> str:
        """A new post in ``forum`` (see the module docstring); returns the post's id. A post
        takes no nonce: a failure after sending is "maybe sent", and the retry looks for the
        post before posting again."""
        me = forum.guild.me
        moderated = me is not None and forum.permissions_for(me).manage_threads
        tags = pick_tags(forum.available_tags, post.rules, moderated=moderated)
        if forum.flags.require_tag and not tags and post.any_tag:
            tags = [t for t in forum.available_tags if moderated or not t.moderated][:1]
        if forum.flags.require_tag and not tags:
            raise PermanentDeliveryError(
                f"forum {forum.id} requires a tag and has none named like "
                f"{', '.join(post.rules) or 'this message'}; add one (rule name) to the forum")
        async with self._unsure_errors(who="Discord", made="the post may have been made",
                                       bot=True):
            if maybe_sent:
                found = await self._find_post(forum, kwargs, post, nonce, since)
                if found is not None:
                    return found
            made = await forum.create_thread(
                name=post.name, applied_tags=tags,
                **{k: v for k, v in kwargs.items() if v is not None})
            return self._remember(str(made.thread.id), nonce)

    async def _find_post(self, forum: discord.ForumChannel, kwargs: dict[str, Any],
                         post: _Post, nonce: str, since: datetime | None) -> str | None:
        """The id of the bot's active post in ``forum`` named ``post.name`` whose starter
        message carries this message's marker and that can be this message's own (see
        :meth:`_may_be_own`: a post named after a headline, its text that of a text-style
        template, is another alert's when their headlines are alike), or None. Only the
        newest few are read: the retry comes minutes after the lost answer, not days."""
        marker = _marker(kwargs)
        me = forum.guild.me
        if marker is None or me is None:
            log.warning("forum %s: an earlier post may have gone through and cannot be told "
                        "apart; posting again (it may show twice)", forum.id)
            return None
        # As for a channel (see _find_in_channel): what the bot may not read (no Read Message
        # History on the forum) leaves the post to be made again; what fails for now (a 5xx,
        # no answer) is tried again later, never taken for "not there".
        try:
            async with self._request_errors(gone=set(), reading=True):
                threads = await forum.guild.active_threads()
        except PermanentDeliveryError as exc:
            log.warning("forum %s: cannot look for an earlier post (%s); posting again",
                        forum.id, exc)
            return None
        mine = sorted((t for t in threads if t.parent_id == forum.id and t.owner_id == me.id
                       and t.name == post.name
                       and self._may_be_own(str(t.id), nonce, since)),
                      key=lambda t: t.id, reverse=True)
        for thread in mine[:10]:
            try:  # a post's starter message has the post's id
                async with self._request_errors(gone={_UNKNOWN_CHANNEL, _UNKNOWN_MESSAGE},
                                                reading=True):
                    starter = await self._need_client().http.get_message(thread.id, thread.id)
            except _Gone:  # the post or its starter message deleted
                continue
            except PermanentDeliveryError as exc:
                log.warning("forum %s: cannot read the earlier posts (%s); posting again",
                            forum.id, exc)
                return None
            embeds = [dict(e) for e in starter.get("embeds", [])]
            if _carries(embeds, starter.get("content"), marker):
                log.info("forum %s: the earlier post did go through (%s)", forum.id, thread.id)
                return self._remember(str(thread.id), nonce)
        return None

    async def _send_channel(self, target: ChannelTarget, kwargs: dict[str, Any], nonce: str
                            ) -> str:
        if self.client is None:
            raise PermanentDeliveryError("channel targets need the bot connected",
                                         pause_destination=True)
        channel = self.client.get_partial_messageable(target.channel_id)
        async with self._request_errors(gone=set()):
            try:
                # The nonce is fixed per alert before its first try and discord.py sends it with
                # enforce_nonce, so a retry after a lost response returns the message already
                # created instead of posting a second one.
                msg = await channel.send(nonce=nonce, **kwargs)
            except discord.HTTPException as exc:
                if exc.status == 400 and exc.code == _NON_TEXT_CHANNEL:
                    raise _NotText from None
                raise
            return self._remember(str(msg.id), nonce)

    async def _send_webhook(self, target: WebhookTarget, kwargs: dict[str, Any],
                            maybe_sent: bool, post: _Post, nonce: str,
                            since: datetime | None = None) -> str | None:
        if self.session is None:
            raise PermanentDeliveryError("webhook targets need an HTTP session",
                                         pause_destination=True)
        hook = discord.Webhook.partial(target.webhook_id, target.token,
                                       session=cast(aiohttp.ClientSession, _Watched(self.session)))
        send = {k: v for k, v in kwargs.items() if v}
        try:
            return await self._webhook_send(hook, send, kwargs, maybe_sent, post, nonce, since)
        except _MadeUnread:
            return None
        except PermanentDeliveryError as exc:
            raise _marked(exc, target) from None

    async def _webhook_send(self, hook: discord.Webhook, send: dict[str, Any],
                            kwargs: dict[str, Any], maybe_sent: bool, post: _Post, nonce: str,
                            since: datetime | None) -> str:
        # ``nonce``: the row's, never sent (a webhook takes none) but what the messages this
        # sink posted are remembered by (see _may_be_own).
        if maybe_sent:
            # (outside the send's bounds: a lookup that timed out was said to be a wait in the
            # webhook's bucket)
            found = await self._find_sent(hook, kwargs, nonce, since)
            if found is not None:
                return found
        # the webhook's requests do not go through the bot's rate limiter: nothing to release
        async with self._unsure_errors(who="the webhook", made="it may have gone through",
                                       bot=False):
            if hook.id in self._forum_hooks:
                send["thread_name"] = post.name
            try:
                sent = await hook.send(wait=True, **send)
            except discord.HTTPException as exc:
                # Discord refuses a forum webhook's send without a post name, and creates
                # nothing: the same send as a new post is safe.
                if exc.code != _FORUM_WEBHOOK or "thread_name" in send:
                    raise
                self._forum_hooks.add(hook.id)
                sent = await hook.send(wait=True, thread_name=post.name, **send)
            return self._remember(str(sent.id), nonce)

    @contextlib.asynccontextmanager
    async def _unsure_errors(self, *, who: str, made: str, bot: bool) -> AsyncIterator[None]:
        """One send that carries no nonce (a webhook's, a forum post's), bounded by
        ``timeout``, its failures mapped as for alerts, except that one after the request may
        have reached Discord (no answer in time, a 5xx, a connection dropped after connecting)
        is "maybe sent" (UncertainDeliveryError, saying ``made``), so the retry looks first.
        ``who`` names what did not answer; ``bot``: the request went through the bot's HTTP
        client, whose global rate-limit wait a timeout may have cut short."""
        limited = _LIMITED.set(None)
        sent = _SENT.set(False)
        answered = _ANSWERED.set(None)
        try:
            async with asyncio.timeout(self.timeout):
                yield
        except TimeoutError:
            if bot:
                self._release_global_wait()
            if not bot and not _SENT.get():
                # Still waiting behind the webhook's lock for its emptied bucket (an earlier
                # send's answer said so): nothing of this one was sent.
                raise TransientDeliveryError(
                    f"{who} is rate limited: no room in its bucket within {self.timeout:g}s"
                ) from None
            retry_after = _LIMITED.get()
            if retry_after is not None:
                # The last answer was a 429 and discord.py's webhook client was sleeping it
                # out (it has no cap on that sleep): nothing was created, and the route waits
                # out the limit rather than coming back into it on its own backoff.
                raise TransientDeliveryError(f"rate limited by {who} for {retry_after:g}s",
                                             retry_after=retry_after) from None
            raise UncertainDeliveryError(
                f"no answer from {who} in {self.timeout:g}s; {made}") from None
        except discord.RateLimited as exc:
            raise TransientDeliveryError("rate limited", retry_after=exc.retry_after) from None
        except discord.HTTPException as exc:
            error = _classify(exc, webhook=not bot)
            if exc.status >= 500:
                # Discord may have created the message before failing to answer.
                raise UncertainDeliveryError(str(error)) from None
            raise error from None
        except aiohttp.ClientConnectorError as exc:
            # never connected: nothing was sent
            raise TransientDeliveryError(redact(f"network error: {exc!r}")) from None
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise UncertainDeliveryError(
                redact(f"network error after sending: {exc!r}; {made}")) from None
        except _DeliveryErrors:
            raise
        except Exception as exc:  # an answer discord.py could not read
            status = _ANSWERED.get()
            if (not bot and status is not None and 200 <= status < 300
                    and (self.client is None or self.client.user is None)):
                # The webhook said it made the message, in a body that does not read (a proxy
                # rewriting it, an API change): made, its id unknown. Taken for "maybe sent"
                # where no bot can look, it was posted again at every retry (52 copies in
                # 15 s with short backoffs). (A bot looks, and finds the message's id.)
                log.warning("%s answered %d to a send in a body that could not be read (%s): "
                            "taken as posted, its message id unknown", who, status,
                            redact(f"{type(exc).__name__}: {exc}")[:200])
                raise _MadeUnread from None
            if status == 429:
                # A 429 in a body discord.py could not read (a proxy's HTML page): nothing was
                # made, and its Retry-After is honoured. It was taken for "maybe sent", said as
                # an unreadable answer, and retried a second later.
                retry = _LIMITED.get()
                raise TransientDeliveryError(
                    f"rate limited by {who} (429 in a body that could not be read)",
                    retry_after=retry) from None
            if bot and (rate_limit := _unread_limit(exc, who)) is not None:
                raise rate_limit from None  # (a forum post's 429, as for a webhook's above)
            # A malformed rate-limit header or a body that is not JSON comes after the request
            # was carried out: "maybe sent", so the retry looks before it posts again.
            # (the secrets taken out before the text is cut: a token cut in two was no longer
            # known for one, and its first part reached the log and /alerts status)
            raise UncertainDeliveryError(redact(
                f"unreadable answer from {who}: {type(exc).__name__}: {exc}")[:240]
                + f"; {made}") from None
        finally:
            _LIMITED.reset(limited)
            _SENT.reset(sent)
            _ANSWERED.reset(answered)

    async def _find_sent(self, hook: discord.Webhook, kwargs: dict[str, Any], nonce: str,
                         since: datetime | None) -> str | None:
        """The id of this alert's message if an earlier attempt did post it (one the webhook
        posted carrying its marker that can be its own: see :meth:`_may_be_own`), or None
        (also when there is no way to look: then the alert is sent again and may show twice).
        A look that
        fails for now (a 5xx, a rate limit, no answer) raises TransientDeliveryError: the bot
        can read the channel, so the send waits until it has looked (it was sent again)."""
        client = self.client
        marker = _marker(kwargs)  # the embed's footer, or a text-style message's content
        if client is None or client.user is None or not marker:
            log.warning("webhook %s: an earlier send may have gone through and the bot cannot "
                        "look; sending again (it may show twice)", hook.id)
            return None
        try:
            channel_id = self._hook_channels.get(hook.id)
            if channel_id is None:
                async with self._request_errors(gone=set(), webhook=True, reading=True):
                    with _refused_look():
                        channel_id = (await hook.fetch(prefer_auth=False)).channel_id
                if channel_id is None:
                    return None
                self._hook_channels[hook.id] = channel_id
            async with self._request_errors(gone=set(), reading=True):
                with _refused_look():
                    recent = await client.http.logs_from(channel_id, LOOK_BACK)
        except PermanentDeliveryError as exc:
            log.warning("webhook %s: cannot look for an earlier send (%s); sending again",
                        hook.id, exc)
            return None
        except TransientDeliveryError as exc:
            raise TransientDeliveryError(
                f"could not look for an earlier send of the webhook's: {exc}",
                retry_after=exc.retry_after) from None
        found = _earlier(recent, marker, lambda m: str(m.get("webhook_id")) == str(hook.id)
                         and self._may_be_own(str(m.get("id")), nonce, since))
        if found is not None:
            log.info("webhook %s: the earlier send did go through (message %s)", hook.id, found)
            self._remember(found, nonce)
        return found

    def _release_global_wait(self) -> None:
        # discord.py clears its global rate-limit flag, sleeps retry_after, then sets it again; a
        # timeout that cancels that sleep would leave every later request waiting forever.
        http = getattr(self.client, "http", None)
        flag = getattr(http, "_global_over", None)
        if isinstance(flag, asyncio.Event) and not flag.is_set():
            flag.set()


class _MadeUnread(Exception):
    """A webhook's 2xx answer to a send that discord.py could not read: the message was made
    (see :meth:`DiscordSink._unsure_errors`)."""


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def _edit_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """What an edit sends: the embed (the content, with its mentions, stays as posted), or for
    a text-style message, its content."""
    if kwargs.get("embed") is None:
        return {"content": kwargs["content"], "allowed_mentions": kwargs["allowed_mentions"]}
    return {"embed": kwargs["embed"], "allowed_mentions": kwargs["allowed_mentions"]}


# The Retry-After of the last answer of a webhook request in this task, if it was a 429 (set
# by _Watched, read by _unsure_errors when its timeout cuts discord.py's sleep short).
_LIMITED: contextvars.ContextVar[float | None] = contextvars.ContextVar("newswatch_limited",
                                                                        default=None)


# Whether a webhook request that may change something (not a GET) has begun in this task's
# send (set by _Watched, read by _unsure_errors when its timeout ends the send).
_SENT: contextvars.ContextVar[bool] = contextvars.ContextVar("newswatch_sent", default=False)
# The status of the last answer to such a request (set by _Watched, read by _unsure_errors
# when discord.py could not read the answer's body).
_ANSWERED: contextvars.ContextVar[int | None] = contextvars.ContextVar("newswatch_answered",
                                                                       default=None)


class _Watched:
    """The HTTP session as a webhook sees it: every answer's status is noted for this task,
    so a 429 that discord.py's webhook client sleeps out (uncapped) is known for what it is
    when the send's timeout ends the sleep."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def request(self, *args: Any, **kwargs: Any) -> _WatchedRequest:
        method = str(args[0] if args else kwargs.get("method", "")).upper()
        if method != "GET":
            _SENT.set(True)
        return _WatchedRequest(self._session.request(*args, **kwargs), method != "GET")


class _WatchedRequest:
    def __init__(self, request: Any, sends: bool = False) -> None:
        self._request = request
        self._sends = sends

    async def __aenter__(self) -> aiohttp.ClientResponse:
        response: aiohttp.ClientResponse = await self._request.__aenter__()
        if self._sends:
            _ANSWERED.set(response.status)
        retry: float | None = None
        if response.status == 429:
            # (seconds or an HTTP date, as a proxy may write it; a second when none reads)
            retry = _retry_after(response.headers) or 1.0
        _LIMITED.set(retry)
        return response

    async def __aexit__(self, *exc: object) -> Any:
        return await self._request.__aexit__(*exc)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is no JSON number")


def _strict_json(text: str | bytes) -> Any:
    """JSON as the standard says, as discord.py's answers are read: Python's reader takes
    ``NaN`` and ``Infinity``, and a 429 saying ``"retry_after": NaN`` had discord.py sleep "nan
    seconds", a timer that broke the event loop's own (no timeout fired again: the route's
    alert stayed "sending" for good). Refused, it is an answer that does not read: a 429 whose
    Retry-After is waited out (see :func:`_unread_limit`)."""
    return json.loads(text, parse_constant=_no_constant)


# Every answer discord.py reads (the REST API's, the webhooks', the gateway's) goes through
# discord.utils._from_json, looked up at each call.
discord.utils._from_json = _strict_json


@contextlib.contextmanager
def _refused_look() -> Iterator[None]:
    """A webhook's lookup Discord refuses (401: the bot's token reset; 403, 404: no access to
    the channel, or a proxy's refusal without a code) is no look: the send goes again (it may
    show twice, as a webhook's may). Taken for the bot's own failure, it held the webhook's
    route, which needs no bot token, for as long as the token was refused."""
    try:
        yield
    except discord.HTTPException as exc:
        if 400 <= exc.status < 500 and exc.status != 429:
            raise PermanentDeliveryError(
                redact(f"the bot's read was refused: {exc.status} {_said(exc.text or '')}")[:300]
            ) from None
        raise


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """The wait a 429's ``Retry-After`` asks for, in seconds (at least one), written as seconds
    or as an HTTP date (as a proxy may write it); None when there is none that reads, and the
    route backs off as for any other failure. (Delivery takes it for an hour at most.)"""
    raw = (headers or {}).get("Retry-After")
    if not raw:
        return None
    try:
        seconds: float | None = float(raw)
    except ValueError:
        from watchers.sources.feed import parse_retry_after

        seconds = parse_retry_after(raw)
    if seconds is None or not math.isfinite(seconds):
        return None
    return max(1.0, seconds)


def _said(text: str) -> str:
    """What an answer's body says, in one line: an HTML page (a proxy's, Cloudflare's) by its
    title, or its text without markup, as bot/client.py's ``_refusal`` names one. The reason
    was the page's first 300 characters of markup, in the log and in /alerts status."""
    text = text.strip()
    if text.startswith("<"):
        title = re.search(r"(?is)<title[^>]*>(.*?)</title>", text)
        text = title.group(1) if title else re.sub(
            r"(?is)<(script|style)\b.*?</\1\s*>|<!--.*?-->|<[^>]*>", " ", text)
        text = html.unescape(text)
    return " ".join(text.split())


def _answer_of(exc: BaseException) -> aiohttp.ClientResponse | None:
    """The answer discord.py was reading when it raised ``exc`` (the ``response`` of its
    request's loop, the innermost), or None. discord.py keeps no other trace of it: a 429
    whose JSON has no number for ``retry_after`` ends in a KeyError or a TypeError there."""
    answer = None
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if str(frame.f_globals.get("__name__", "")).startswith("discord."):
            found = frame.f_locals.get("response")
            if isinstance(found, aiohttp.ClientResponse):
                answer = found
        tb = tb.tb_next
    return answer


def _unread_limit(exc: BaseException, who: str) -> TransientDeliveryError | None:
    """For an answer discord.py could not read: the rate limit it was, when it was a 429
    (nothing was made, and its Retry-After is honoured), or None. On the bot's path it was
    taken for "maybe sent", as an unreadable answer, and retried at once into the limit."""
    answer = _answer_of(exc)
    if answer is None or answer.status != 429:
        return None
    return TransientDeliveryError(f"rate limited by {who} (429 in a body that could not be "
                                  "read)", retry_after=_retry_after(answer.headers))


def _classify(exc: discord.HTTPException, *, webhook: bool = False) -> DeliveryError:
    """The delivery error for Discord's answer to a request of the bot (or, ``webhook``, of
    a webhook, which carries its own token in its URL)."""
    code = f" (code {exc.code})" if exc.code else ""
    text = redact(f"{exc.status}{code} {_said(exc.text or '')}".strip())[:300]
    if exc.status == 429:
        # discord.py waits out (or raises as RateLimited) only Discord's own JSON 429; this is
        # one it could not (a proxy's or Cloudflare's page, an answer without ``Via``). Its
        # Retry-After went unread, and the route came back into the limit on its own backoff
        # (13 tries in 4 s against a wait of two minutes).
        return TransientDeliveryError(f"rate limited: {text}", retry_after=_retry_after(
            getattr(getattr(exc, "response", None), "headers", None)))
    if exc.status >= 500:
        return TransientDeliveryError(f"Discord error {text}")
    if exc.status == 401 and not webhook and exc.code != _INVALID_WEBHOOK_TOKEN:
        # The bot's own token was refused: every channel would answer the same, and none of
        # them is at fault. Pausing them held every route until someone resumed each one by
        # hand, long after a token reset was over; the alert is retried with backoff instead.
        return TransientDeliveryError(
            f"Discord refused the bot's token ({text}): reset or replaced in the developer "
            "portal? Alerts wait and are retried until it is accepted")
    if exc.status in (401, 403, 404) and not exc.code:
        # Not Discord's own answer (which names its reason by a code: 10003 Unknown Channel,
        # 50013 Missing Permissions, ...), but a proxy's or a firewall's in front of it (an
        # HTML "Forbidden"): that paused every route it touched, each to be resumed by hand;
        # it is retried with backoff instead, as a 5xx is.
        return TransientDeliveryError(f"refused before Discord (no Discord error code): {text}")
    if exc.status in (401, 403, 404) or exc.code == _ARCHIVED_THREAD:
        # An archived or locked thread refuses every message until someone reopens it: the
        # destination is paused and its alerts held, not each alert refused.
        return PermanentDeliveryError(f"destination unusable: {text}", pause_destination=True)
    return PermanentDeliveryError(f"Discord refused the alert: {text}")


def discord_sink(channels: Mapping[str, int | str], *, session: aiohttp.ClientSession,
                 client: discord.Client | None = None,
                 routes: Mapping[str, RouteConfig] | None = None,
                 settings: DiscordConfig | None = None) -> DiscordSink:
    """One sink serving every route of ``[channels]`` this front end can: all of them with a
    bot client, only the webhooks without one (unusable entries are logged, not fatal). It
    exists even when it serves none, so routes servers pick later can be added to it
    (:meth:`DiscordSink.add_route`). ``routes``: each route's settings (``Config.route(name)``),
    for its message template; ``settings``: the [discord] table (acknowledgement buttons, the
    escalation role; defaults when None)."""
    settings = settings or DiscordConfig()
    targets, problems = resolve_targets(channels)
    for p in problems:
        log.error("%s", p)
    if client is None:
        targets = {r: t for r, t in targets.items() if isinstance(t, WebhookTarget)}
    return DiscordSink(targets, client=client, session=session, routes=routes,
                       ack_from=settings.ack_from, escalation_role=settings.escalation_role)


def discord_sinks(channels: Mapping[str, int | str], *, session: aiohttp.ClientSession,
                  client: discord.Client | None = None,
                  routes: Mapping[str, RouteConfig] | None = None,
                  settings: DiscordConfig | None = None) -> dict[str, Sink]:
    """The routes of :func:`discord_sink`'s sink, each mapped to it (empty when it serves
    none)."""
    sink = discord_sink(channels, session=session, client=client, routes=routes,
                        settings=settings)
    return dict.fromkeys(sink.targets, sink)
