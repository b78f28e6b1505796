"""Web pages: ``[[sources]] type = "page"`` watches a site's front or section page that has no
feed, and takes each headline link on it for an article.

A page is fetched as a feed is (the one fetcher: address checks, size and time caps, conditional
requests, backoff), and its first poll is a baseline, as a feed's: the links already there are
old news (``backfill`` lets the top few alert). A page with no headline link at all (a shell
its scripts fill in, a consent wall) is a failed poll (FeedFormatError ``no-links``), never a
first look. An article is a link whose text reads as a headline, on the page's own site:

- ``<a href>`` with an http(s) link on the page's host (``www.`` aside, subdomains of it too,
  an internationalised name in either spelling): a news page links its stories on its own site;
  other hosts are ads, partners and social media.
- Its text, tags taken out and entities read, is at least :data:`MIN_WORDS` words and
  :data:`MIN_CHARS` characters (:data:`MIN_CHARS_UNSPACED` in scripts written without spaces):
  menus, "More", dates and bylines are shorter.
- Links inside ``<nav>``, ``<aside>``, the site's ``<header>`` and ``<footer>`` (an article's
  own are read), scripts and styles are not stories.
- One article per link as links compare (tracking parameters out; the longest text of its
  anchors is its title), at most :data:`MAX_LINKS` a page, dated when found, the first link of
  the page latest (so the top of the page is the newest).
- A link's blocks and line breaks part its words. A link that holds a heading (a card:
  headline, summary, time) is titled with the heading, when that reads as a headline; the text
  of a ``<time>`` is no part of a title. A card's "5
  minutes ago" or "12 comments" made its title change at every poll, and the article was taken
  for a changed one each time (its story's message edited, "updated: …", every poll).

The page is read in one pass from tag to tag, each found where the last one ended (linear in
its size: a tag, quote, comment or CDATA section that never ends ends the page, and a script's
content is passed over to its end tag), off the event loop, under the feed parser's tag cap.
"""

from __future__ import annotations

import contextlib
import html
import html.entities
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal
from urllib.parse import urljoin, urlsplit, urlunsplit

from watchers.models import shows_nothing, visible
from watchers.sources.base import LEGACY_BYTES, Source, SourceContext
from watchers.sources.feed import FeedSource, FeedSourceConfig

if TYPE_CHECKING:  # the feed parser's module loads feedparser: only when a page is read
    from watchers.sources._feedparse import ParsedFeed

__all__ = ["MAX_LINKS", "MIN_CHARS", "MIN_WORDS", "PageSource", "PageSourceConfig",
           "build", "describe", "parse_page"]

MIN_WORDS = 3
MIN_CHARS = 15
# A headline in a script written without spaces between words (Chinese, Japanese, Thai): its
# characters are counted instead of its words.
MIN_CHARS_UNSPACED = 8
MAX_LINKS = 500
MAX_TITLE = 300
# Where a page's links are not stories. A <header> or <footer> inside an <article> is the
# article's own (its headline, its byline) and is read.
_SKIPPED = frozenset({"nav", "aside", "script", "style", "template", "noscript", "svg",
                      "select", "button"})
_SITE_PARTS = frozenset({"header", "footer"})
# Tags that part the words on either side of them, as a browser shows them: a line break and
# the blocks a card's link holds (its headline, summary and byline); inline tags (<b>, <span>)
# sit inside words and part nothing.
_BREAKS = frozenset({"br", "p", "div", "li", "section", "figure", "figcaption", "blockquote",
                     "h1", "h2", "h3", "h4", "h5", "h6", "header", "footer", "td", "th"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
# Raw text elements: what is inside is text up to the element's end tag, not markup.
_RAW = frozenset({"script", "style", "template", "noscript", "textarea", "title", "xmp"})
_RAW_END = {name: re.compile(f"</{name}[\\s>/]", re.IGNORECASE) for name in _RAW}
_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*")
# A tag from the end of its name to its ">", as the HTML tokenizer reads it (WHATWG HTML
# 13.2.5): a quote opens a value only right after "=" (spaces between allowed); anywhere else
# it is part of a name or of an unquoted value, so an ad's alt="Samsung 27" monitor" or a
# doubled class="promo"" does not run on to the next quote of the page and hide its links.
# Each part is taken whole (possessive) and no two can start alike, so a match or a failure
# (a tag or quoted value the page never ends) reads each character once.
_TAG_END = re.compile(r"""
    [^\t\n\f\r\x20/>]*+                      # the rest of the name (<a"b> is one name)
    (?:
        [\t\n\f\r\x20/]++                    # between attributes, a "/" not before ">"
      | [^\t\n\f\r\x20/>][^\t\n\f\r\x20/>=]*+  # a name: a first "=" or a quote is in it
        (?:                                # its value, once "=" follows: the value must
            [\t\n\f\r\x20]*+=[\t\n\f\r\x20]*+    # be there, or the tag never ends
            (?: "[^"]*+" | '[^']*+' | [^\t\n\f\r\x20>"'][^\t\n\f\r\x20>]*+ | (?=>) )
          | (?![\t\n\f\r\x20]*+=)
        )
    )*+
    >""", re.VERBOSE)
# An attribute as a browser reads it: a quote opens a value only right after "=", and is
# otherwise part of a name or of an unquoted value ("href=/story/don't-miss" was "/story/don").
_ATTR = re.compile(r"""([^\s=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")
_SPACE = re.compile(r"\s+")
# What is passed over unread, from its opening to its end: a comment ends at "-->" or "--!>",
# or at once as "<!-->" and "<!--->" (empty comments, ended abruptly), as a browser ends it.
_SECTIONS = ((re.compile(r"<!--(?:->|>)?"), re.compile(r"--!?>")),
             (re.compile(re.escape("<![CDATA[")), re.compile(re.escape("]]>"))))
_UNSPACED = re.compile("[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")


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
    """A link's host as compared for "the page's own site": lower case, ``www.`` aside, and an
    internationalised name in its ASCII (punycode) form, as the fetched URL gives it."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if not host.isascii():
        with contextlib.suppress(UnicodeError):  # not a name IDNA takes: compared as it is
            host = host.encode("idna").decode("ascii")
    return host[4:] if host.startswith("www.") else host


def _on_site(link: str, site: str) -> bool:
    host = _host(link)
    return bool(site) and (host == site or host.endswith("." + site))


def _headline(title: str) -> bool:
    # Counted as shown: a link of zero-width spaces ("\u200b" * 5, three times) was a
    # headline of three words, and an article with an invisible title.
    words = [w for w in visible(title).split() if not shows_nothing(w)]
    shown = " ".join(words)
    if _UNSPACED.search(shown):
        return len(shown) >= MIN_CHARS_UNSPACED
    return len(shown) >= MIN_CHARS and len(words) >= MIN_WORDS


def _attrs(text: str) -> dict[str, str]:
    """A start tag's attributes (``text``: what follows its name), names in lower case; the
    first of a name wins, as in HTML."""
    out: dict[str, str] = {}
    for m in _ATTR.finditer(text):
        name = m.group(1).lower()
        if name not in out:
            value = next((g for g in m.groups()[1:] if g is not None), "")
            out[name] = _unescape_attribute(value)
    return out


# A character reference, as html.unescape finds one.
_REFERENCE = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")


def _unescape_attribute(value: str) -> str:
    """An attribute's value with its character references decoded as a browser decodes them in
    an attribute: a named one without its semicolon is left as written when a letter, a digit
    or "=" follows its name. html.unescape reads text's rules, and a link's raw "&" made
    "?id=7&section=world&region=eu" "?id=7§ion=world®ion=eu", a link the site never had."""
    if "&" not in value:
        return value

    def one(m: re.Match[str]) -> str:
        ref = m.group(1)
        if ref.startswith("#"):
            return html.unescape(m.group(0))
        for end in range(len(ref), 1, -1):  # the longest known name ("amp;", or "sect")
            decoded = html.entities.html5.get(ref[:end])
            if decoded is not None:
                rest = ref[end:]
                if rest[:1].isalnum() or rest[:1] == "=":
                    return m.group(0)
                return decoded + rest
        return m.group(0)

    return _REFERENCE.sub(one, value)


def parse_page(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """The headline links of a web page as items (see the module docstring); FeedFormatError
    for what is no page (empty, a feed's XML or JSON, too many tags) and for a page without a
    headline link (a script's shell or a consent wall: not taken for the page's baseline).

    One pass: each tag is found from where the last one ended, its end by the next ``>``
    outside a quoted value (a quote opens one only right after ``=``; a tag, quoted value,
    comment or CDATA section that never ends ends the page), and the
    content of a script or style is passed over to its end tag, so no part of the page is read
    twice whatever it holds."""
    from datetime import UTC, datetime, timedelta

    from watchers.sources._feedparse import (
        MAX_MARKUP_TOKENS,
        FeedFormatError,
        ParsedFeed,
        RawEntry,
    )
    from watchers.urls import normalise_link

    text = _decode(body, content_type)
    head = text.lstrip()[:1024].lower()
    if not head:
        raise FeedFormatError(f"{url} is not a page: the response is empty", "empty")
    if head.startswith(("{", "[")) or (
            head.startswith(("<?xml", "<rss", "<feed", "<rdf")) and "<html" not in head):
        raise FeedFormatError(f"{url} is a feed, not a web page: watch it as type = \"feed\"",
                              "not-a-page")
    tokens = text.count("<")
    if tokens > MAX_MARKUP_TOKENS:
        raise FeedFormatError(f"{url} is not a page we will read: {tokens} tags (limit "
                              f"{MAX_MARKUP_TOKENS})", "too-complex")
    base = url
    site = _host(url)
    itself = _link(url, "")
    # its own address as links compare, "www." aside (as the site is)
    own = normalise_link(itself).replace("://www.", "://", 1) if itself is not None else None
    titles: dict[str, tuple[str, str]] = {}  # the link's key: (its link, its title)
    skipping: list[str] = []  # the open elements whose content is not stories
    articles = 0  # open <article> elements: their header and footer are read
    href: str | None = None  # the link of the open <a>, as written, if any
    parts: list[str] = []
    heading: list[str] = []  # the text of the open <a>'s headings
    in_heading = in_time = 0  # open <h1>…<h6> and <time> elements in the open <a>
    n = len(text)
    pos = 0

    def close_anchor() -> bool:
        """The open anchor taken as an article if it reads as a headline; False once the
        page has given MAX_LINKS."""
        title = _SPACE.sub(" ", html.unescape("".join(parts))).strip()
        head = _SPACE.sub(" ", html.unescape("".join(heading))).strip()
        if _headline(head):
            title = head
        if href is None or not _headline(title):
            return True
        link = _link(base, href.strip())
        if link is None or not _on_site(link, site):
            return True
        key = normalise_link(link)
        if key.replace("://www.", "://", 1) == own:
            return True  # the page itself ("#comments", "?ref=nav"-less "Top stories")
        title = title if len(title) <= MAX_TITLE else title[:MAX_TITLE - 1] + "…"
        if len(title) > len(titles.get(key, ("", ""))[1]):
            if key not in titles and len(titles) >= MAX_LINKS:
                return False
            titles[key] = (link, title)
        return True

    while pos < n:
        lt = text.find("<", pos)
        if lt < 0:
            lt = n
        if href is not None and not in_time:
            parts.append(text[pos:lt])
            if in_heading:
                heading.append(text[pos:lt])
        if lt >= n:
            break
        section = next(((opened, ending) for start, ending in _SECTIONS
                        if (opened := start.match(text, lt))), None)
        if section is not None:  # a comment or CDATA: passed over (unended, it ends the page)
            opened, ending = section
            if opened.group().endswith(">"):  # "<!-->", "<!--->": empty, ended already
                pos = opened.end()
                continue
            ended = ending.search(text, opened.end())
            pos = n if ended is None else ended.end()
            continue
        closing = text.startswith("</", lt)
        name_at = lt + (2 if closing else 1)
        m = _NAME.match(text, name_at)
        if m is None:
            # "<" not starting a tag ("a < b", "<!DOCTYPE", "<?xml"): a declaration is passed
            # over to its ">", a lone "<" is text.
            if text.startswith(("<!", "<?"), lt):
                end = text.find(">", lt)
                if end < 0:
                    break
                pos = end + 1
            else:
                if href is not None:
                    parts.append("<")
                pos = lt + 1
            continue
        name = m.group().lower()
        # The tag's end: the next ">" outside a quoted value.
        tag_end = _TAG_END.match(text, m.end())
        if tag_end is None:
            break  # the page ends inside a tag
        i = tag_end.end() - 1
        inside = text[m.end():i]
        pos = i + 1
        if href is not None:
            if name in _BREAKS:
                parts.append(" ")
                if in_heading:
                    heading.append(" ")
            if name in _HEADINGS:
                in_heading = max(0, in_heading + (-1 if closing else 1))
            elif name == "time" and not inside.rstrip().endswith("/"):
                in_time = max(0, in_time + (-1 if closing else 1))
        if closing:
            if name in _SKIPPED or (name in _SITE_PARTS and not articles):
                if name in skipping:
                    while skipping and skipping.pop() != name:
                        pass
            elif name == "article":
                articles = max(0, articles - 1)
            elif name in ("main", "body"):
                articles = 0  # an <article> left open ends with them
            elif name == "a" and href is not None:
                if not close_anchor():
                    break
                href = None
            continue
        self_closing = inside.rstrip().endswith("/")
        if name in _RAW and not self_closing:
            # passed over to its end tag, unread
            end_tag = _RAW_END[name].search(text, pos)
            pos = n if end_tag is None else end_tag.start()
            continue
        if name == "base" and base == url:
            found = _attrs(inside).get("href")
            if found and _link(url, found.strip()) is not None:  # not javascript: or data:
                base = urljoin(url, found.strip())
        elif name == "article":
            articles += 1
        elif name in _SKIPPED or (name in _SITE_PARTS and not articles):
            if not self_closing:
                skipping.append(name)
        elif name == "a" and not skipping:
            if href is not None and not close_anchor():  # an <a> left open: it ends here
                break
            href = _attrs(inside).get("href")
            parts, heading = [], []
            in_heading = in_time = 0
    if not titles:
        raise FeedFormatError(
            f"{url} has no headline links: a page its scripts fill in, a consent or sign-in "
            "page, or no links to its own site (not taken for its first look)", "no-links")
    # Newest first as the page lists them: the first link is dated when found, each next one a
    # microsecond earlier, so the page's order is kept wherever articles are sorted by date.
    found_at = datetime.now(UTC)
    entries = [RawEntry(guid=key, url=link, title=title, text="",
                        published=found_at - timedelta(microseconds=i))
               for i, (key, (link, title)) in enumerate(titles.items())]
    return ParsedFeed(title=site, entries=entries, format="html")


def _link(base: str, href: str) -> str | None:
    """``href`` as an absolute http(s) link without its fragment, or None; read as a browser
    reads it: tabs and line breaks dropped, and a backslash before the query a slash
    ("https:\\evil.example\\w" is https://evil.example/w, not a path on the page's own
    site)."""
    href = _URL_WHITESPACE.sub("", href)
    cut = _QUERY_START.search(href)
    end = cut.start() if cut else len(href)
    if "\\" in href[:end]:
        href = href[:end].replace("\\", "/") + href[end:]
    try:
        absolute = urljoin(base, href)
        parts = urlsplit(absolute)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path or "/", parts.query, ""))


_URL_WHITESPACE = re.compile("[\t\n\r]")
_QUERY_START = re.compile("[?#]")
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w-]+)""", re.IGNORECASE)


def _decode(body: bytes, content_type: str | None) -> str:
    """The page's text: a byte order mark's encoding, else the first usable charset of its
    header's and a ``<meta>``'s, else UTF-8 with the bytes that are not UTF-8 read as
    Windows-1252 reads them (as a feed's are). A label that names no usable encoding
    (``undefined``, ``idna``, UTF-16 on bytes plainly 8-bit) is ignored, as browsers ignore it:
    it cost the whole page a UnicodeError."""
    from watchers.sources._feedparse import usable_charset

    for mark, marked in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"),
                         (b"\xfe\xff", "utf-16")):
        if body.startswith(mark):
            return body.decode(marked, errors="replace")
    labels: list[str | bytes] = []
    if content_type:
        found = re.search(r"charset\s*=\s*[\"']?([\w-]+)", content_type, re.IGNORECASE)
        if found:
            labels.append(found.group(1))
    found_meta = _CHARSET.search(body[:4096])
    if found_meta:
        labels.append(found_meta.group(1))
    for label in labels:
        name = usable_charset(label, body)
        if name and name != "utf-8":
            return body.decode(name, errors="replace")
        if name:
            break
    return body.decode("utf-8", errors=LEGACY_BYTES)
