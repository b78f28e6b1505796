"""Web pages: ``[[sources]] type = "page"`` watches a site's front or section page that has no
feed, and takes each headline link on it for an article.

A page is fetched as a feed is (the one fetcher: address checks, size and time caps, conditional
requests, backoff), and its first poll is a baseline, as a feed's: the links already there are
old news (``backfill`` lets its newest few alert). An article is a link whose text reads as a
headline, on the page's own site:

- ``<a href>`` with an http(s) link on the page's host (``www.`` aside, subdomains of it too):
  a news page links its stories on its own site; other hosts are ads, partners and social media.
- Its text, tags taken out and entities read, is at least :data:`MIN_WORDS` words and
  :data:`MIN_CHARS` characters: menus, "More", dates and bylines are shorter.
- Links inside ``<nav>``, ``<header>``, ``<footer>``, ``<aside>``, ``<script>``, ``<style>``,
  ``<template>`` and ``<noscript>`` are not stories.
- One article per link (the fragment dropped; the longest text of the link's anchors is its
  title), at most :data:`MAX_LINKS` a page, in page order; its guid is the link.

The title is all a page gives (no summary, no date): rules match it, and the article is dated
when it was found. The page is read with one pass of a regular expression over its tags (linear
in its size: a page of unclosed tags cannot hold the parser, as html.parser would be held), off
the event loop, under the feed parser's cap on tags.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal
from urllib.parse import urljoin, urlsplit, urlunsplit

from watchers.sources.base import Source, SourceContext
from watchers.sources.feed import FeedSource, FeedSourceConfig

if TYPE_CHECKING:  # the feed parser's module loads feedparser: only when a page is read
    from watchers.sources._feedparse import ParsedFeed

__all__ = ["MAX_LINKS", "MIN_CHARS", "MIN_WORDS", "PageSource", "PageSourceConfig",
           "build", "describe", "parse_page"]

MIN_WORDS = 3
MIN_CHARS = 15
MAX_LINKS = 500
MAX_TITLE = 300
_SKIPPED = frozenset({"nav", "header", "footer", "aside", "script", "style", "template",
                      "noscript", "svg", "select", "button"})
# Raw text elements: what is inside is text to the end tag, not markup.
_RAW = frozenset({"script", "style", "template", "noscript"})
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>|<!--.*?-->",
                  re.DOTALL)
_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE)
_BASE = re.compile(r"""<base\b[^>]*\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""",
                   re.IGNORECASE)
_SPACE = re.compile(r"\s+")


class PageSourceConfig(FeedSourceConfig):
    """``[[sources]] type = "page"``: ``url`` of a web page (http or https) whose headline links
    are its articles; ``every`` and ``backfill`` as for a feed."""

    type: Literal["page"]  # type: ignore[assignment]


def build(config: PageSourceConfig, ctx: SourceContext) -> Source:
    """The source a page entry describes, on the shared fetcher when there is one."""
    return PageSource(config.name, config.url, fetcher=ctx.fetcher)


def describe(config: PageSourceConfig) -> str:
    """Where the source reads: its URL."""
    return config.url


class PageSource(FeedSource):
    """A :class:`~watchers.sources.feed.FeedSource` whose document is a web page: its headline
    links are its items (see the module docstring)."""

    def _parser(self) -> Callable[..., ParsedFeed]:
        return parse_page


def _host(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


def _on_site(link: str, site: str) -> bool:
    host = _host(link)
    return bool(site) and (host == site or host.endswith("." + site))


def parse_page(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """The headline links of a web page as items (see the module docstring); FeedFormatError
    for what is no page (empty, a feed's XML or JSON, too many tags)."""
    from watchers.sources._feedparse import (
        MAX_MARKUP_TOKENS,
        FeedFormatError,
        ParsedFeed,
        RawEntry,
    )

    text = _decode(body, content_type)
    head = text.lstrip()[:200].lower()
    if not head:
        raise FeedFormatError(f"{url} is not a page: the response is empty", "empty")
    if head.startswith(("<?xml", "<rss", "<feed", "{", "[")):
        raise FeedFormatError(f"{url} is a feed, not a web page: watch it as type = \"feed\"",
                              "not-a-page")
    tokens = text.count("<")
    if tokens > MAX_MARKUP_TOKENS:
        raise FeedFormatError(f"{url} is not a page we will read: {tokens} tags (limit "
                              f"{MAX_MARKUP_TOKENS})", "too-complex")
    base = url
    found = _BASE.search(text)
    if found:
        base = urljoin(url, html.unescape(next(g for g in found.groups() if g is not None)))
    site = _host(url)
    titles: dict[str, str] = {}
    skipping: list[str] = []  # the open elements whose content is not stories
    anchor: str | None = None  # the href of the open <a>, as written, if any
    parts: list[str] = []
    raw_until: str | None = None
    pos = 0
    for m in _TAG.finditer(text):
        if raw_until is not None:
            if m.group(1) and m.group(2).lower() == raw_until:
                raw_until = None
                if skipping and skipping[-1] == m.group(2).lower():
                    skipping.pop()
            pos = m.end()
            continue
        if anchor is not None:
            parts.append(text[pos:m.start()])
        pos = m.end()
        name = (m.group(2) or "").lower()
        if not name:  # a comment
            continue
        if not m.group(1):  # a start tag
            if name in _RAW:
                raw_until = name
            if name in _SKIPPED and not m.group(3).rstrip().endswith("/"):
                skipping.append(name)
            elif name == "a" and not skipping:
                href = _HREF.search(m.group(3))
                anchor = None
                parts = []
                if href:  # made a link once its text reads as a headline (see below)
                    anchor = next(g for g in href.groups() if g is not None)
        elif name in _SKIPPED:
            if name in skipping:
                while skipping and skipping.pop() != name:
                    pass
        elif name == "a" and anchor is not None:
            title = _SPACE.sub(" ", html.unescape("".join(parts))).strip()
            link = (_link(base, html.unescape(anchor).strip())
                    if len(title) >= MIN_CHARS and len(title.split()) >= MIN_WORDS else None)
            if link is not None and _on_site(link, site):
                title = title if len(title) <= MAX_TITLE else title[:MAX_TITLE - 1] + "…"
                if len(title) > len(titles.get(link, "")):
                    if link not in titles and len(titles) >= MAX_LINKS:
                        break
                    titles[link] = title
            anchor = None
    entries = [RawEntry(guid=link, url=link, title=title, text="", published=None)
               for link, title in titles.items()]
    return ParsedFeed(title=site, entries=entries, format="html")


def _link(base: str, href: str) -> str | None:
    """``href`` as an absolute http(s) link without its fragment, or None."""
    try:
        absolute = urljoin(base, href)
        parts = urlsplit(absolute)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path or "/", parts.query, ""))


_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w-]+)""", re.IGNORECASE)


def _decode(body: bytes, content_type: str | None) -> str:
    """The page's text: the charset its header or a ``<meta>`` names, else UTF-8 (bad bytes
    replaced)."""
    charset = None
    if content_type:
        found = re.search(r"charset\s*=\s*[\"']?([\w-]+)", content_type, re.IGNORECASE)
        charset = found.group(1) if found else None
    if charset is None:
        found_meta = _CHARSET.search(body[:4096])
        charset = found_meta.group(1).decode("ascii") if found_meta else None
    for name in (charset, "utf-8"):
        if not name:
            continue
        try:
            return body.decode(name, errors="replace")
        except LookupError:
            continue
    return body.decode("utf-8", errors="replace")
