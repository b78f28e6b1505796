"""Feeds: poll one RSS, Atom or JSON Feed URL with conditional GET.

A poll fails as a whole only for the document (HTTP status, not a feed, timeout, refused
address). An entry that cannot become an Article is left out and described in ``Poll.skipped``
(which the service logs and counts); the other entries are returned.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import partial
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from watchers.errors import SourceError
from watchers.models import Article
from watchers.sources._guard import IPNetwork, check_url, parse_networks
from watchers.sources.base import Poll, Source, SourceConfigBase, SourceContext
from watchers.urls import without_credentials

if TYPE_CHECKING:
    from watchers.sources._feedparse import FeedFormatError, ParsedFeed, RawEntry
    from watchers.sources._http import Fetcher, FetchResult, FetchTimeoutError

# aiohttp and feedparser load when a feed is first built or polled, not when a config that
# names feeds is read: `newswatch search` and `check` start without them.
_LAZY = {
    "FeedFormatError": "watchers.sources._feedparse",
    "FetchTimeoutError": "watchers.sources._http",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "FeedFormatError",
    "FeedHTTPError",
    "FeedSource",
    "FeedSourceConfig",
    "FetchTimeoutError",
    "build",
    "describe",
    "parse_retry_after",
]

# The longest feed URL taken (browsers and servers stop near 2,000 characters; a longer one is
# a mistake or an attack, refused before anything is fetched or stored).
MAX_URL = 2000


class FeedSourceConfig(SourceConfigBase):
    """``[[sources]] type = "feed"``: ``url`` (http or https), ``every`` (default 5m) and
    ``backfill`` (how many of the first poll's newest items may alert; default 0)."""

    type: Literal["feed"]
    url: str = Field(max_length=MAX_URL)
    backfill: int = Field(default=0, ge=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"(?i)^https?://[^/\s]+", value):
            # Shown without a user and password (ftp://bob:secret@host) or a ?token=, and cut.
            shown = re.sub(r"^([^:/?#\s]*:)?//[^/?#@\s]*@", r"\1//…@",
                           without_credentials(value.strip()))
            shown = shown if len(shown) <= 80 else shown[:79] + "…"
            raise ValueError(f"{shown!r} is not an http(s) URL")
        return value


#: The shortest interval a config file may give a feed or page ("5ms", a slip for "5m",
#: asked the publisher 150 times a second). Sources added in Discord or imported are polled
#: once a minute at most; a file may go down to this for a feed of its own (a local server).
MIN_EVERY = timedelta(seconds=0.5)


def build(config: FeedSourceConfig, ctx: SourceContext) -> Source:
    """The source a feed entry describes, on the shared fetcher when there is one."""
    return FeedSource(config.name, config.url, fetcher=ctx.fetcher)


def describe(config: FeedSourceConfig) -> str:
    """Where the source reads: its URL."""
    return config.url

_UNTITLED_LIMIT = 120


class FeedHTTPError(SourceError):
    """The feed URL answered with an HTTP status that carries no feed.

    ``kind`` is one of ``not-found`` (404), ``gone`` (410: the feed was removed on purpose),
    ``rate-limited`` (429), ``server-error`` (5xx), ``client-error`` (other 4xx) or
    ``unexpected-status``. ``retry_after`` is the server's requested wait in seconds, if it sent a
    Retry-After header (429 and 503 usually do); the service should not poll sooner.
    """

    def __init__(
        self, message: str, *, status: int, kind: str, retry_after: float | None = None
    ) -> None:
        self.status = status
        self.kind = kind
        self.retry_after = retry_after
        super().__init__(message)


# The longest wait a Retry-After header is taken at: a server asking for more (a date in 2100,
# ten digits of seconds) would otherwise stop the source being polled without anyone noticing.
MAX_RETRY_AFTER = 24 * 3600.0


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), at most
    :data:`MAX_RETRY_AFTER`; None when absent or unreadable (the source's own backoff holds)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²" is a digit to str.isdigit, not to float
        return MAX_RETRY_AFTER if len(value) > 9 else min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return min(MAX_RETRY_AFTER, max(0.0, float(math.ceil(delta))))


def _status_error(url: str, result: FetchResult) -> FeedHTTPError:
    status = result.status
    retry_after = parse_retry_after(result.headers.get("Retry-After"))
    if status == 404:
        kind, what = "not-found", "not found"
    elif status == 410:
        kind, what = "gone", "gone (removed by its publisher)"
    elif status == 429:
        kind, what = "rate-limited", "rate limited"
    elif 500 <= status < 600:
        kind, what = "server-error", "server error"
    elif 400 <= status < 500:
        kind, what = "client-error", "request refused"
    else:
        kind, what = "unexpected-status", "unexpected status"
    wait = f"; retry after {retry_after:g}s" if retry_after is not None else ""
    return FeedHTTPError(
        f"{url}: HTTP {status} {what}{wait}", status=status, kind=kind, retry_after=retry_after
    )


def _article(source: str, entry: RawEntry) -> Article:
    title = entry.title
    if not title:
        # Some feeds (microblogs) have no titles; an alert still needs a headline.
        first = entry.text.split("\n", 1)[0].strip()
        if len(first) > _UNTITLED_LIMIT:
            cut = first.rfind(" ", 0, _UNTITLED_LIMIT)
            first = first[: cut if cut > _UNTITLED_LIMIT // 2 else _UNTITLED_LIMIT] + "…"
        title = first or entry.url or "(untitled)"
    return Article(
        source=source,
        guid=entry.guid,
        url=entry.url,
        title=title,
        text=entry.text,
        published=entry.published,
    )


class FeedSource:
    """A Source for one feed URL.

    ``poll(cursor)`` sends the ETag / Last-Modified from ``cursor`` and returns
    ``Poll(not_modified=True)`` on 304. Failures raise SourceError subclasses with a ``kind``:
    :class:`FeedHTTPError` (status, ``retry_after``), :class:`FeedFormatError` (``html``, ``empty``,
    ``not-a-feed`` …), :class:`FetchTimeoutError`, and FetchBlockedError for refused addresses
    or oversized bodies. The URL is checked on construction (against the fetcher's allowlist plus
    ``allow_private``), so a bad URL fails early.

    Parsing runs in ``executor`` (default: asyncio's thread pool) to keep the event loop free; a
    ProcessPoolExecutor works too. Without a ``fetcher`` the source creates and owns one.
    """

    def __init__(
        self,
        name: str,
        url: str,
        *,
        fetcher: Fetcher | None = None,
        allow_private: Iterable[str | IPNetwork] = (),
        executor: Executor | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.allow_private = parse_networks(allow_private)
        self._owns_fetcher = fetcher is None
        if fetcher is None:
            from watchers.sources._http import Fetcher

            fetcher = Fetcher()
        self._fetcher = fetcher
        # The fetcher's own allowlist applies to every request it makes, so it counts here too.
        check_url(url, self._fetcher.allow_private + self.allow_private)
        self._executor = executor

    def __repr__(self) -> str:
        return f"FeedSource(name={self.name!r}, url={self.url!r})"

    async def poll(self, cursor: Mapping[str, str]) -> Poll:
        """Fetch and parse the feed; every entry comes back as an Article (the store dedupes)."""
        # Validators belong to the URL that sent them: after the source's URL changed, the old
        # feed's Last-Modified would have the new one answer 304 while it holds newer items.
        # (A cursor stored before the URL was kept with it counts as this URL's.)
        if cursor.get("url", self.url) != self.url:
            cursor = {}
        result = await self._fetcher.get(
            self.url,
            etag=cursor.get("etag") or None,
            last_modified=cursor.get("last_modified") or None,
            allow_private=self.allow_private,
        )
        if result.not_modified:
            if not (cursor.get("etag") or cursor.get("last_modified")):
                # Nothing was asked conditionally: "not modified" since when? Counted as a
                # success, a feed that always answers so would never be read, and look healthy.
                raise SourceError(f"{self.url}: HTTP 304 Not Modified to a request that was "
                                  "not conditional")
            return Poll(articles=[], not_modified=True,
                        cursor=_next_cursor(cursor, result, self.url))
        if not 200 <= result.status < 300:
            raise _status_error(self.url, result)
        if result.status == 204 or not result.body.strip():
            from watchers.sources._feedparse import FeedFormatError

            raise FeedFormatError(f"{self.url} is not a feed: the response is empty", "empty")
        parsed = await self._parse(result)
        articles: list[Article] = []
        skipped = list(parsed.skipped)
        for entry in parsed.entries:
            try:
                articles.append(_article(self.name, entry))
            except Exception as exc:  # one bad entry never stops the feed
                ident = entry.guid or entry.url or entry.title
                skipped.append(f"item {ident[:80]!r}: {type(exc).__name__}: {str(exc)[:160]!r}")
        validators = _next_cursor({}, result, self.url)
        if parsed.cut_short is not None:
            # Its validators are not kept: the next poll would be told "not modified" and the
            # items after the cut never read (until the feed changed again).
            validators = {}
            skipped.append(f"the items after the point where the document ends early "
                           f"({parsed.cut_short}: cut short in transit?); the next poll reads "
                           "the feed whole")
        return Poll(articles=articles, not_modified=False, cursor=validators,
                    skipped=tuple(skipped))

    def _parser(self) -> Callable[..., ParsedFeed]:
        """What reads the fetched document (off the event loop): a feed's parser."""
        from watchers.sources._feedparse import parse_feed

        return parse_feed

    async def _parse(self, result: FetchResult) -> ParsedFeed:
        job = partial(self._parser(), result.body, url=result.url,
                      content_type=result.content_type)
        if self._executor is None:
            return await asyncio.to_thread(job)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, job)

    async def aclose(self) -> None:
        """Close the fetcher if this source created it."""
        if self._owns_fetcher:
            await self._fetcher.aclose()


def _next_cursor(previous: Mapping[str, str], result: FetchResult, url: str
                 ) -> dict[str, str]:
    """The validators to send next time: the response's own, else (on 304) the ones we sent;
    with the URL they came from, when there are any."""
    cursor = {k: v for k, v in previous.items()
              if k in ("etag", "last_modified") and _sendable(v)}
    for header, key in (("ETag", "etag"), ("Last-Modified", "last_modified")):
        value = result.headers.get(header)
        if value and _sendable(value):
            cursor[key] = value
        elif value:
            # Sent back, a control character in it failed every later poll ("Forbidden
            # control character" from one client, a malformed request to the server): the
            # feed is fetched in full instead.
            cursor.pop(key, None)
    if cursor:
        cursor["url"] = url
    return cursor


# A control character (tab aside): what a request header may not hold; or a byte that is not
# UTF-8, as the clients decode one (surrogateescape): neither client sends it back as it came
# (one dropped it), and no PostgreSQL store could save it (every source's state was lost).
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f\udc80-\udcff]")


def _sendable(value: str) -> bool:
    """Whether a validator can go back in a request header: no control character and no byte
    that is not UTF-8 (one regex search in C: this runs for every poll, twice on a 304)."""
    return _CONTROL.search(value) is None
