"""Turn the bytes of an RSS, Atom or JSON Feed document into plain-text entries.

XML goes through feedparser, because real feeds are often not well-formed and its loose parser
still reads them (see ``bench/feed_parsers.py``). Before feedparser sees a document, every DOCTYPE
in its prolog is removed, internal subset and all: without entity declarations, expat has nothing
to expand (billion laughs, quadratic blowup) and nothing external to fetch (XXE, remote DTDs);
named HTML entities still work because feedparser's loose parser knows them. Numeric character
references to code points no text can hold (NUL, surrogates, past U+10FFFF) become U+FFFD first:
feedparser raises on them, which would lose the whole document for one character.

JSON Feed is read here. Its ``title`` and ``content_text`` are plain text by the spec, so tags in
them are kept as written ("Why <title> tags matter"). Titles still have their semicolon-terminated
character references decoded: producers often escape them as if they were HTML
(``Sanctions &amp; markets``), and ``&notice`` without a semicolon stays as written.

One entry that cannot be reduced to a RawEntry is left out and described in
``ParsedFeed.skipped``; the rest of the document is returned. This module is synchronous and
CPU-bound: callers run it off the event loop.
"""

from __future__ import annotations

import calendar
import codecs
import functools
import html
import io
import re
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit
from xml.parsers.expat.errors import (
    XML_ERROR_NO_ELEMENTS,
    XML_ERROR_PARTIAL_CHAR,
    XML_ERROR_UNBOUND_PREFIX,
    XML_ERROR_UNCLOSED_CDATA_SECTION,
    XML_ERROR_UNCLOSED_TOKEN,
)
from xml.sax import SAXParseException

import feedparser  # type: ignore[import-untyped]
from feedparser.datetimes import _parse_date  # type: ignore[import-untyped]
from feedparser.encodings import (  # type: ignore[import-untyped]
    RE_XML_PI_ENCODING,
    convert_to_utf8,
    parse_content_type,
)

from watchers.errors import SourceError
from watchers.models import LongInt, impossible_offset, json_kind, loads_json, parse_iso
from watchers.sources.base import LEGACY_BYTES

# feedparser asks xml.sax for libxml2's SAX driver before expat, on every document. Where that
# driver is missing (as here) each parse tried to import it again: a search of the import path
# under the import lock, 80 µs a document and more when several threads parse at once, a third
# of the time a small feed's parse took. Where it is installed (Debian's python3-libxml2),
# malformed feeds would be read by another parser than the one the corpus tests measure. So
# feedparser's own list of preferred drivers is emptied: expat, always.
feedparser.api.PREFERRED_XML_PARSERS[:] = []


# feedparser's element handlers take the elements around them for granted: a stray "</width>"
# pops a width no "<width>" pushed and calls int(None); "<gml:pos>" outside "<georss:where>"
# looks up a 'where' that is not there; "</media:player>", "</creativeCommons:license>" and
# "</category>" alike. The exception left feedparser.parse() and the whole feed was lost, every
# poll, for one stray tag. So every start and end handler of both parsers is wrapped, once, here:
# a handler that fails on what it was given has its element ignored, and the item around it and
# every other item are read as before. (Wrapping the handlers rather than cleaning the document
# and parsing it again keeps every item, also of the tags no one has found yet, for one extra
# call per element.) AttributeError is left alone: feedparser's dispatch catches it itself and
# reads the element as one it has no handler for.
_HANDLER_FAULTS = (LookupError, TypeError, ValueError)


def _tolerant(handler: Any) -> Any:
    @functools.wraps(handler)
    def call(self: Any, *args: Any) -> Any:
        try:
            return handler(self, *args)
        except _HANDLER_FAULTS:
            return None

    call.__newswatch_tolerant__ = True  # type: ignore[attr-defined]
    return call


# feedparser resolves an item's id (an RSS guid, an Atom id) against the document's base, as
# if it were a link: "<guid>67890</guid>" became "http://host/feed/67890", on the feed's own
# host, then the item's link too, and the guid changed with the URL the feed was fetched from.
# An id that is not an absolute URI is kept as written; an absolute one is resolved as before,
# so the guids of the feeds that use URLs (nearly all) do not change.
_SCHEME = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.\-]*:")
_HTTP_SCHEME = re.compile(r"^\s*https?:", re.IGNORECASE)


def _id_as_written(handler: Any) -> Any:
    @functools.wraps(handler)
    def call(self: Any, *args: Any) -> Any:
        self.newswatch_in_id = True
        try:
            return handler(self, *args)
        finally:
            self.newswatch_in_id = False

    return call


def _resolving(resolve: Any) -> Any:
    @functools.wraps(resolve)
    def call(self: Any, uri: Any) -> Any:
        if getattr(self, "newswatch_in_id", False) and not _SCHEME.match(str(uri)):
            return uri
        return resolve(self, uri)

    return call


def _patch_handlers() -> None:
    mixin = feedparser.mixin._FeedParserMixin
    if getattr(mixin.resolve_uri, "__newswatch_tolerant__", False):
        return  # patched already (a reload)
    for parser in (feedparser.api.StrictFeedParser, feedparser.api.LooseFeedParser):
        for cls in parser.__mro__:
            for name, handler in list(vars(cls).items()):
                if (name.startswith(("_start_", "_end_")) and callable(handler)
                        and not getattr(handler, "__newswatch_tolerant__", False)):
                    if name in ("_end_guid", "_end_id"):
                        handler = _id_as_written(handler)
                    setattr(cls, name, _tolerant(handler))
    mixin.resolve_uri = _resolving(mixin.resolve_uri)
    mixin.resolve_uri.__newswatch_tolerant__ = True


_patch_handlers()

__all__ = [
    "MAX_ENTRIES",
    "MAX_MARKUP_TOKENS",
    "FeedFormatError",
    "ParsedFeed",
    "RawEntry",
    "html_to_text",
    "neutralise_charrefs",
    "parse_feed",
    "strip_doctype",
    "usable_charset",
]

# feedparser spends 20-40 microseconds per tag or entity reference, so 5 MiB of nothing else
# would tie up a worker for minutes. The densest real feed in our corpus has about 80,000 per MB
# (typical: 15,000-30,000), so this passes real feeds of 3 MB and more, and bounds a hostile one
# to roughly 10 s of CPU.
MAX_MARKUP_TOKENS = 250_000
# Items read of one document, in its order (newest first, as feeds list them): the largest
# real feed in our corpus lists 730. A JSON Feed of 140,000 items fitted in 5 MiB, and each
# poll of it took a gigabyte and held every other source for half a minute.
MAX_ENTRIES = 5_000
_MAX_TITLE = 1_000
_MAX_TEXT = 100_000
_MAX_GUID = 2_000
_MAX_GUID_BYTES = 2_400  # and a source name of 64 characters fit PostgreSQL's index row
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
# Blank lines, once every line is stripped (no other space is then beside a newline): one. It
# was "\s*\n\s*(?:\n\s*)+", which gives the same text and backtracked over every run of
# spaces _SPACES leaves (em spaces, U+3000) from each of its positions: 80,000 em spaces in one
# description (389 bytes gzipped) held the event loop for 18 s.
_NEWLINES = re.compile(r"\n{2,}")
_JSON_FEED_VERSION = re.compile(r"^https?://jsonfeed\.org/version/", re.IGNORECASE)
_HTML_START = re.compile(
    rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S
)
_XML_DECL_AFTER_SPACE = re.compile(rb"^\s+(?=<\?xml\b)")
_BYTES_CHARREF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")
_TEXT_CHARREF = re.compile(r"&(?:#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,8}|[A-Za-z][A-Za-z0-9]{1,31});")
_MAX_SKIP_NOTES = 20


class FeedFormatError(SourceError):
    """A response is not a feed we can read; ``kind`` says what it looked like.

    Kinds: ``empty``, ``html``, ``json`` (JSON but not a JSON Feed), ``invalid-json``,
    ``not-a-feed`` (XML or text we do not recognise), ``too-complex`` (more markup than we will
    spend CPU on; see ``MAX_MARKUP_TOKENS``), ``ill-formed`` (a feed's root, but XML so broken
    that no item could be read, or a JSON Feed whose ``items`` is no list).
    """

    def __init__(self, message: str, kind: str) -> None:
        self.kind = kind
        super().__init__(message)


@dataclass(frozen=True)
class RawEntry:
    """One item as the feed gave it, reduced to plain text and an absolute http(s) link."""

    guid: str | None
    url: str | None
    title: str
    text: str
    published: datetime | None


@dataclass(frozen=True)
class ParsedFeed:
    """A parsed document. ``format`` is feedparser's version name (``rss20``, ``atom10`` …) or
    ``json1`` / ``json11``; ``bozo`` says the XML was ill-formed and read by the loose parser;
    ``cut_short``, why the XML ended before its document did (a response cut off: the items
    after the cut are missing), or None."""

    title: str
    entries: list[RawEntry] = field(default_factory=list)
    format: str = ""
    bozo: bool = False
    skipped: tuple[str, ...] = ()
    cut_short: str | None = None


# An item's or entry's end tag (RSS, RDF, Atom; any namespace prefix), or an empty one that
# ends where it starts (<item/>).
_ITEM_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?(?:item|entry)\s*>"
                       rb"|<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)(?:\s[^<>]*)?/>")

# The parser's errors that only the end of the input can cause: the document stopped inside
# an element, a tag, a CDATA section or a character.
_ENDED_EARLY = frozenset({XML_ERROR_NO_ELEMENTS, XML_ERROR_UNCLOSED_TOKEN,
                          XML_ERROR_UNCLOSED_CDATA_SECTION, XML_ERROR_PARTIAL_CHAR})


class _TextExtractor(HTMLParser):
    """HTML to text: drops tags, decodes entities, keeps block boundaries as line breaks."""

    _SKIP = frozenset({"script", "style", "template", "noscript", "head", "title"})
    _BLOCK = frozenset(
        {
            "p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header",
            "footer", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "dd", "dt",
            "figure", "figcaption",
        }
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _tidy(text: str) -> str:
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _NEWLINES.sub("\n\n", "\n".join(lines)).strip()


_UNCLOSED = re.compile(r"<(?=[^<>]*<)")
_MANY_TAGS = 1000
# html.parser's time on a "<" that opens no tag grows with the text after it: tags times
# characters past this reads them as text first, however few the tags (999 "<a " each with
# 5,000 letters after it, 5 MB, took 27 s of CPU; 200 of them 1 s).
_MANY_TAG_CHARACTERS = 50_000_000


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment: tags removed, entities decoded, whitespace tidied."""
    if "<" not in html and "&" not in html:
        return _tidy(html)
    tags = html.count("<")
    if tags > _MANY_TAGS or tags * len(html) > _MANY_TAG_CHARACTERS:
        # A "<" that another "<" follows before any ">" opens no tag that could end: it is
        # text. Left to html.parser, each one rescans everything after it (240,000 "<a" in
        # one description took 200 s). A few in a short text, as in everyday broken markup,
        # are left to it.
        html = _UNCLOSED.sub("&lt;", html)
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return _tidy("".join(parser.parts))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _plain(text: str) -> str:
    """Plain text as a JSON Feed gives it: tags kept, ``&amp;``-style references decoded."""
    if "&" in text:
        text = _TEXT_CHARREF.sub(lambda m: html.unescape(m.group(0)), text)
    return _tidy(text)


def _show(value: Any, limit: int = 80) -> str:
    """A value quoted for a skip note: one line, control characters escaped, clipped."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    return repr(text)


class _Refused(ValueError):
    """An item left out for what it holds (the message says what, in words of its own)."""


class _Skipped:
    """Notes on entries left out; the count is kept in full, the notes up to a bound."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.count = 0

    def add(self, position: int, ident: Any, exc: BaseException) -> None:
        self.count += 1
        if len(self.notes) < _MAX_SKIP_NOTES:
            who = f" (id {_show(ident)})" if ident else ""
            # A refusal of ours says what was wrong in words; anything else names its type.
            why = str(exc) if isinstance(exc, _Refused) else \
                f"{type(exc).__name__}: {_show(str(exc), 160)}"
            self.notes.append(f"item {position}{who}: {why}")

    def result(self) -> tuple[str, ...]:
        extra = self.count - len(self.notes)
        return (*self.notes, f"{extra} more items") if extra > 0 else tuple(self.notes)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


def _clip_guid(guid: str) -> str:
    """A guid of at most :data:`_MAX_GUID` characters and :data:`_MAX_GUID_BYTES` bytes: it is
    indexed whole with its source, and PostgreSQL refuses an index row of more than 2,704 bytes
    (2,000 characters of Cyrillic are 4,000). One of ASCII is clipped as it always was."""
    clipped = _clip(guid, _MAX_GUID)
    if len(clipped) * 4 <= _MAX_GUID_BYTES or len(clipped.encode()) <= _MAX_GUID_BYTES:
        return clipped
    cut = clipped.encode()[:_MAX_GUID_BYTES - 3].decode("utf-8", errors="ignore")
    return cut.rstrip() + "…"


def _http_url(base: str, link: Any) -> str | None:
    """An absolute http(s) URL for ``link`` resolved against ``base``, or None."""
    if not isinstance(link, str):
        return None
    link = str(link).strip()
    if not link:
        return None
    try:
        absolute = urljoin(base, link) if base else link
        parts = urlsplit(absolute)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return str(absolute)


# ---------------------------------------------------------------------------------------------
# XML prolog


def _skip_quoted_or_comment(data: bytes, i: int) -> int:
    """If data[i] opens a quoted string or comment, return the index after it, else -1."""
    c = data[i : i + 1]
    if c in (b'"', b"'"):
        end = data.find(c, i + 1)
        return len(data) if end < 0 else end + 1
    if data.startswith(b"<!--", i):
        end = data.find(b"-->", i + 4)
        return len(data) if end < 0 else end + 3
    return -1


def _doctype_end(data: bytes, start: int) -> int:
    """Index just past the DOCTYPE that starts at ``start`` (internal subset included)."""
    i = start + len(b"<!DOCTYPE")
    depth = 0
    while i < len(data):
        after = _skip_quoted_or_comment(data, i)
        if after >= 0:
            i = after
            continue
        c = data[i]
        if c == 0x5B:  # [
            depth += 1
        elif c == 0x5D:  # ]
            depth = max(0, depth - 1)
        elif c == 0x3E and depth == 0:  # >
            return i + 1
        i += 1
    return len(data)


_BLANKS = re.compile(rb"[ \t\n\r\x0b\x0c]+")


def strip_doctype(data: bytes) -> bytes:
    """Remove every DOCTYPE from the prolog of an XML document (bytes in an ASCII-compatible
    encoding). Comments and processing instructions are skipped as units, so a ``<tag`` inside a
    comment cannot end the prolog early and hide a DOCTYPE behind it."""
    out: list[bytes] = []
    i = 0
    n = len(data)
    while i < n:
        c = data[i : i + 1]
        if c.isspace():
            # A run of blank space is kept as one line break (none at the very start, where the
            # XML declaration belongs): feedparser searches the prolog with patterns that take
            # time quadratic in its blank lines, holding the interpreter (a 300-byte gzip of
            # 80,000 newlines stopped every source for 47 s).
            blanks = _BLANKS.match(data, i)
            i = blanks.end() if blanks is not None else i + 1
            if out:
                out.append(b"\n")
        elif data.startswith(b"<?", i):
            end = data.find(b"?>", i + 2)
            end = n if end < 0 else end + 2
            out.append(_BLANKS.sub(b" ", data[i:end]))  # blank lines inside it stall alike
            i = end
        elif data.startswith(b"<!--", i):
            end = data.find(b"-->", i + 4)
            end = n if end < 0 else end + 3
            out.append(_BLANKS.sub(b" ", data[i:end]))
            i = end
        elif data[i : i + 9].upper() == b"<!DOCTYPE":
            i = _doctype_end(data, i)
        else:
            break
    return b"".join(out) + data[i:]


# ---------------------------------------------------------------------------------------------
# XML feeds via feedparser


def _struct_to_datetime(value: Any) -> datetime | None:
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, OSError):
        return None


# A date written as a Unix time, in seconds (9 or 10 digits: 1973 to 2286) or milliseconds.
_EPOCH = re.compile(r"\s*(\d{9,10}(?:\.\d+)?|\d{13}|\d{16})\s*")


def _epoch_time(text: str) -> datetime | None:
    """The time a date written as a Unix time means: seconds (9 or 10 digits, a fraction
    allowed), milliseconds (13) or microseconds (16); None for anything else."""
    found = _EPOCH.fullmatch(text)
    if found is None:
        return None
    digits = found[1]
    scale = {13: 1e3, 16: 1e6}.get(len(digits), 1)
    try:
        return datetime.fromtimestamp(float(digits) / scale, UTC)
    except (OverflowError, ValueError, OSError):
        return None

# A four-digit year as a date writes it (not an offset's digits, as in "+1400").
_YEAR_IN_DATE = re.compile(r"(?<![+\-\d])(\d{4})(?!\d)")


def _year_written(parsed: datetime, raw: Any) -> bool:
    """Whether the year of ``parsed`` (UTC) is, within one (time zones), a year the date as
    written holds, when it holds any: feedparser read "Mon, 01 Jan 0001 00:00:00 +1400" as
    the year 1400, and the article was stored as 600 years old."""
    years = [int(y) for y in _YEAR_IN_DATE.findall(raw)] if isinstance(raw, str) else []
    return not years or any(abs(parsed.year - y) <= 1 for y in years)


# An ISO 8601 (W3C) date as written, to its seconds: its sign, year, month, day and time.
_ISO_FIELDS = re.compile(
    r"^\s*(-?)(\d{4})-?(\d\d)-?(\d\d)(?:[Tt ]?(\d\d):?(\d\d)(?::?(\d\d))?)?(?!\d)")


def _impossible(raw: Any) -> bool:
    """Whether an ISO-style date as written names no day or time there is: feedparser rolls
    it over into a real one ("2024-02-30T25:61:00Z" became 2024-03-02 02:01, "2024-13-45"
    2025-01-01, "-0001-01-01" 2000-01-01), and the article was dated wrong instead of
    undated. (Its RFC 822 reader already gives nothing for "30 Feb".) A date of any style
    whose UTC offset no zone has is none either: feedparser shifted "+9999" by four days."""
    if impossible_offset(raw) is not None:
        return True
    found = _ISO_FIELDS.match(raw) if isinstance(raw, str) else None
    if found is None:
        return False
    sign, year, month, day, hour, minute, second = found.groups()
    if sign:
        return True
    try:
        datetime(int(year), int(month), int(day))
    except ValueError:
        return True
    h, m, sec = int(hour or 0), int(minute or 0), int(second or 0)
    # 24:00 ends a day and 23:59:60 is a leap second: both are times there are
    return m > 59 or sec > 60 or h > 24 or (h == 24 and (m > 0 or sec > 0))


def _raw(mapping: Any, key: str, default: Any = None) -> Any:
    """``mapping[key]`` without FeedParserDict's aliases, which warn (``updated`` falling back
    to ``published``) and so break under warnings-as-errors."""
    return dict.get(mapping, key, default) if isinstance(mapping, dict) else default


# A tag as HTML writes one: "<b>", "</b>", "<script>", "<img src=x onerror=…>" (not "<3" or
# "a < b").
_TAG = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?|/[a-zA-Z][a-zA-Z0-9]*\s*)/?>")


def _detail_text(detail: Any, value: Any, *, rss: bool = False) -> str:
    """Plain text of a feedparser value, honouring the type its ``*_detail`` declares.

    The plain value wins over ``detail["value"]``: feedparser can let a later namespaced element
    (an empty ``media:title``) overwrite the detail while the value stays right. ``rss``: the
    value is an RSS element's, whose text is HTML where it holds a tag. feedparser calls such
    text HTML only when every tag is one it allows and one is closed, so an escaped
    ``<script>`` or ``<iframe>`` in a title was kept as text, tags and all (a rule "script"
    fired on it, and ``title:"bold troops"`` missed "<b>Bold</b> troops"); an Atom text
    construct says what it is.
    """
    if not isinstance(value, str):
        value = _raw(detail, "value") if isinstance(detail, dict) else None
    if not isinstance(value, str):
        value = ""
    kind = _raw(detail, "type", "") if isinstance(detail, dict) else ""
    if kind in ("text/plain", "text") and not (rss and _TAG.search(value)):
        # feedparser already decoded it, and retypes RSS text that looks like HTML as text/html.
        return _tidy(value)
    return html_to_text(value)


def _entry_text(entry: Any, *, rss: bool = False) -> str:
    """The fullest body the entry carries: its longest content, else its summary."""
    candidates: list[tuple[Any, Any]] = []
    for content in _raw(entry, "content") or []:
        if isinstance(content, dict):
            candidates.append((content, _raw(content, "value")))
    if _raw(entry, "summary") is not None:
        candidates.append((_raw(entry, "summary_detail"), _raw(entry, "summary")))
    best = ""
    for detail, fallback in candidates:
        text = _detail_text(detail, fallback, rss=rss)
        if len(text) > len(best):
            best = text
    return best


def _entry_link(entry: Any, base: str) -> str | None:
    link = _raw(entry, "link")
    if (_raw(entry, "guidislink") and link == _raw(entry, "id") and isinstance(link, str)
            and not _HTTP_SCHEME.match(link)):
        link = None  # a guid is a link only as an absolute http(s) URL, never resolved
    link = _http_url(base, link)
    if link:
        return link
    for candidate in _raw(entry, "links") or []:
        if isinstance(candidate, dict) and _raw(candidate, "rel", "alternate") == "alternate":
            link = _http_url(base, _raw(candidate, "href"))
            if link:
                return link
    guid = _raw(entry, "id")
    if isinstance(guid, str) and guid.startswith(("http://", "https://")):
        return _http_url(base, guid)
    return None


def _charref(m: re.Match[bytes]) -> bytes:
    hex_digits, digits = m.group(1), m.group(2)
    number = hex_digits or digits
    if len(number.lstrip(b"0")) > 8:
        return b"&#xFFFD;"
    code = int(hex_digits, 16) if hex_digits else int(digits)
    if code == 0 or 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
        return b"&#xFFFD;"
    return m.group(0)


def neutralise_charrefs(data: bytes) -> bytes:
    """Replace numeric character references that name no storable character (NUL, a surrogate,
    past U+10FFFF or absurdly long) with ``&#xFFFD;``."""
    if b"&#" not in data:
        return data
    return _BYTES_CHARREF.sub(_charref, data)


_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
         (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
# The encoding named in an XML declaration, to be replaced once the text is UTF-8.
_DECLARED = re.compile(r"""(\A\s*<\?xml[^>]*?\bencoding\s*=\s*)(["'])[^"']*\2""")


# ASCII as markup writes it: an encoding that does not read it as itself (idna, UTF-7, EBCDIC)
# is no encoding of an XML or HTML document that could be read this far (backslash is left out:
# the escape codecs warn on it, and they are refused by name).
_ASCII_PROBE = b"<?xml version='1.0'?><a b=\"c\">Az09 &#38; :;/_.,!=%@[]{}|~`^$()*-</a>\t\r\n"
_WIDE_MARKS = (b"\xff\xfe", b"\xfe\xff")


def _wide(body: bytes) -> bool:
    """Whether ``body`` may be UTF-16 or UTF-32: a byte order mark or a NUL in its first 512."""
    return body.startswith(_WIDE_MARKS) or b"\x00" in body[:512]


# Labels browsers read otherwise than Python's codecs (the WHATWG Encoding Standard): a label
# for a character set another one extends names the larger one, whose characters documents so
# labelled use ("iso-8859-1" pages with curly quotes are Windows-1252; "shift_jis" news writes
# ①, which only Windows-31J has; "gb2312" writes 镕, GBK's). Names Python does not know map
# to its codec; UTF-7, which browsers never read (its "+" sequences mangle "C++"), is no label.
_WHATWG_CODECS = {
    "latin-1": "cp1252", "iso8859-1": "cp1252", "ascii": "cp1252", "iso8859-9": "cp1254",
    "gb2312": "gb18030", "gbk": "gb18030", "euc_kr": "cp949", "shift_jis": "cp932",
    "tis-620": "cp874", "iso8859-11": "cp874", "utf-7": "",
}
_WHATWG_LABELS = {
    "x-sjis": "cp932", "windows-31j": "cp932", "ms_kanji": "cp932", "csshiftjis": "cp932",
    "x-gbk": "gb18030", "x-euc-jp": "euc_jp", "x-mac-cyrillic": "mac_cyrillic",
    "x-mac-ukrainian": "mac_cyrillic", "x-mac-roman": "mac_roman", "windows-874": "cp874",
    "dos-874": "cp874", "x-x-big5": "big5hkscs", "big5": "big5hkscs",
}


def usable_charset(label: str | bytes | None, body: bytes) -> str | None:
    """The codec a charset label names, or None when the label is no use for ``body``: no
    encoding Python knows ("utf\\0-8"), or one that cannot read a document (``undefined``
    fails on every byte, ``idna`` on any but strict error handling, escape and binary codecs),
    or UTF-16/32 on bytes with neither a byte order mark nor a NUL in their first 512 — plainly
    8-bit, and the label ignored, as browsers ignore it. An unusable label is ignored, not
    obeyed: with every such name a whole feed or page was lost to a UnicodeError."""
    if isinstance(label, bytes):
        label = label.decode("latin-1")
    if not label or not label.strip():
        return None
    label = label.strip()
    try:
        info = codecs.lookup(_WHATWG_LABELS.get(label.lower(), label))
    except (LookupError, ValueError):
        return None
    name = _WHATWG_CODECS.get(info.name, info.name)
    if not name:
        return None
    if name != info.name:
        info = codecs.lookup(name)
    if name.startswith(("utf-16", "utf-32")):
        return name if _wide(body) else None
    if "escape" in name or not getattr(info, "_is_text_encoding", True):
        return None
    try:
        same = _ASCII_PROBE.decode(name, errors="replace") == _ASCII_PROBE.decode("ascii")
    except (UnicodeError, LookupError, ValueError):
        return None
    return name if same else None


def _legacy_text(body: bytes, codec: str) -> str | None:
    """``body``, labelled with the legacy ``codec``, as text to hand feedparser in UTF-8, or
    None to leave it to feedparser's own reading. Bytes that are UTF-8 (and not ASCII alone)
    are UTF-8 whatever the label, as a JSON Feed's are: a server's or a tool's default label
    ("us-ascii", "shift_jis") on a UTF-8 feed made every title mojibake. Bytes the label's
    codec reads, read as browsers read the label (see usable_charset): feedparser takes the
    label as Python names it, and at the first byte that codec could not read (a "①" of
    Windows-31J in a "shift_jis" feed) read the whole document as Windows-1252. Bytes neither
    reads are left to feedparser, which tries the declaration and UTF-8 next."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return None if body.isascii() else text
    try:
        return body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _declared_span(body: bytes) -> tuple[int, int] | None:
    """Where the encoding named in ``body``'s XML declaration is, found with feedparser's own
    pattern (so what is judged here is what feedparser reads), or None."""
    start = len(codecs.BOM_UTF8) if body.startswith(codecs.BOM_UTF8) else 0
    if not body.startswith(b"<?", start):
        return None
    found = RE_XML_PI_ENCODING.match(body[start:] if start else body)
    return None if found is None else (start + found.start(1), start + found.end(1))


_UTF8 = ("utf-8", "utf-8-sig")


def _mostly_utf8(body: bytes) -> bool:
    """Whether ``body``, which is not UTF-8, has no more bytes that are not UTF-8 than
    characters beyond ASCII that are: a UTF-8 feed with a few legacy bytes pasted in, not a
    legacy encoding's, whose bytes make UTF-8 only now and then, by chance."""
    text = body.decode("utf-8", errors="ignore")
    stray = len(body) - len(text.encode("utf-8"))
    return len(text) - len(text.encode("ascii", errors="ignore")) >= stray


def _prepare_xml(body: bytes, content_type: str | None) -> bytes:
    """Decode to UTF-8 (feedparser's own rules: BOM, HTTP charset, XML declaration), strip the
    DOCTYPE and neutralise impossible character references, so what feedparser parses next is
    known-safe UTF-8.

    A charset (HTTP or declared) that names no usable encoding is ignored (see
    :func:`usable_charset`). A document meant as UTF-8 (so labelled, or not labelled) that is
    mostly UTF-8 has its stray bytes read as Windows-1252 reads them, as a JSON Feed's are:
    feedparser fell back to Windows-1252 for the whole document, and one legacy byte turned
    every Cyrillic title to mojibake that no rule matched."""
    body = _XML_DECL_AFTER_SPACE.sub(b"", body, count=1)
    for bom, codec in _BOMS:
        # A byte order mark says how the bytes are encoded whatever the declaration or the
        # HTTP charset claim (RFC 7303); feedparser believed a declared "utf-8" over it.
        if body.startswith(bom):
            try:
                text = body[len(bom):].decode(codec)
            except UnicodeDecodeError:
                break
            body = _DECLARED.sub(r"\1\2utf-8\2", text, count=1).encode("utf-8")
            content_type = None
            break
    mime, label = parse_content_type(content_type or "")
    charset = usable_charset(label, body)
    if label and not charset:
        content_type = mime
    declared = None
    span = _declared_span(body)
    if span is not None:
        declared = usable_charset(body[span[0]:span[1]], body)
        if declared is None:
            body = body[:span[0]] + b"utf-8" + body[span[1]:]
    meant = charset or declared
    if meant is not None and meant not in _UTF8 and not meant.startswith(("utf-16", "utf-32")):
        legacy = _legacy_text(body, meant)
        if legacy is not None:
            body = _DECLARED.sub(r"\1\2utf-8\2", legacy, count=1).encode("utf-8")
            content_type, meant = mime, "utf-8"
    if (meant is None or meant in _UTF8) and not _wide(body):
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            if _mostly_utf8(body):
                body = body.decode("utf-8", errors=LEGACY_BYTES).encode("utf-8")
    headers = {"content-type": content_type} if content_type else {}
    info: dict[str, Any] = {}
    try:
        data: bytes = convert_to_utf8(headers, body, info)
    except (UnicodeError, LookupError, ValueError):
        # A name feedparser could not use after all: UTF-8, stray bytes as above.
        text = body.decode("utf-8", errors=LEGACY_BYTES)
        data = _DECLARED.sub(r"\1\2utf-8\2", text, count=1).encode("utf-8")
    return neutralise_charrefs(strip_doctype(data))


def _parse_xml(body: bytes, url: str, content_type: str | None) -> ParsedFeed:
    data = _prepare_xml(body, content_type)
    try:
        # A stream, never bytes or str: feedparser treats a string as a URL or a file name to
        # open.
        parsed = feedparser.parse(
            io.BytesIO(data),
            response_headers={
                "content-type": "application/xml; charset=utf-8",
                "content-location": url,
            },
            # Both passes re-parse every HTML field with a pure-Python SGML parser, the slowest
            # part of feedparser; we reduce HTML to plain text anyway, which drops scripts and
            # links.
            resolve_relative_uris=False,
            sanitize_html=False,
        )
    except RecursionError:
        raise
    except Exception as exc:
        # Its handlers are made tolerant above; should feedparser still fail on a document,
        # the source's error says on what, not a bare traceback.
        raise FeedFormatError(
            f"{url} is XML feedparser could not read: {type(exc).__name__}: "
            f"{_show(str(exc), 160)}", "ill-formed") from None
    version = str(_raw(parsed, "version") or "")
    raw_entries = _raw(parsed, "entries") or []
    if not version and not raw_entries:
        if _HTML_START.match(body[:4096].lstrip(b"\xef\xbb\xbf")):
            raise FeedFormatError(f"{url} is not a feed: looks like HTML", "html")
        reason = _raw(parsed, "bozo_exception")
        detail = f" ({_one_line(str(reason))[:200]})" if reason else ""
        raise FeedFormatError(
            f"{url} is not a feed: no RSS, Atom or RDF root{detail}", "not-a-feed"
        )
    feed = _raw(parsed, "feed") or {}
    rss = version.startswith("rss")
    title = _one_line(_detail_text(_raw(feed, "title_detail"), _raw(feed, "title"), rss=rss))
    bozo = bool(_raw(parsed, "bozo"))
    reason = _raw(parsed, "bozo_exception")
    cut = (reason.getMessage() if bozo and isinstance(reason, SAXParseException)
           and reason.getMessage() in _ENDED_EARLY else None)
    if cut is not None and len(_ITEM_END.findall(data)) < len(raw_entries):
        # The document ended inside its last item: what the cut left of it (a title, no
        # guid, link or text) matched nothing stored and alerted as new, an item already
        # seen or a fragment of one the next whole poll gives again. Read next time.
        raw_entries = raw_entries[:-1]
    entries: list[RawEntry] = []
    skipped = _Skipped()
    for position, entry in enumerate(raw_entries, 1):
        try:
            raw = _xml_entry(entry, url, rss=rss)
        except Exception as exc:  # one bad entry never loses the others
            skipped.add(position, _raw(entry, "id") or _raw(entry, "title"), exc)
            continue
        if raw.guid or raw.url or raw.title or raw.text:
            entries.append(raw)
    if bozo and not entries and isinstance(reason, SAXParseException) and (
            reason.getMessage() != XML_ERROR_UNBOUND_PREFIX):
        # Cut short (or broken) before its first item: a poll of nothing that counted as a
        # success, so a feed broken for good never failed. Ill-formed XML with items is read
        # as the loose parser gives it, as before; an empty feed feedparser only warns about
        # (a charset declared one way and read another) is empty, and so is one whose only
        # fault is a namespace prefix it never declared (itunes:, as feeds often forget).
        detail = f": {_one_line(str(reason))[:200]}"
        raise FeedFormatError(f"{url} is ill-formed XML in which no item could be read"
                              f"{detail}", "ill-formed")
    return ParsedFeed(title=title, entries=entries, format=version, bozo=bozo,
                      skipped=skipped.result(), cut_short=cut)


def _xml_entry(entry: Any, url: str, *, rss: bool = False) -> RawEntry:
    base = _base_of(entry, url)
    guid = _raw(entry, "id")
    guid = _clip_guid(guid.strip()) if isinstance(guid, str) and guid.strip() else None
    published = None
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        written = _raw(entry, key[:-7])
        if isinstance(written, str) and (epoch := _epoch_time(written)) is not None:
            # A Unix time ("1714557600", in milliseconds with 13 digits): feedparser read it
            # as a year and a day of it (YYDDD), and 2024-05-01 was dated 2017-05-25.
            published = epoch
            break
        published = _struct_to_datetime(_raw(entry, key))
        if (published is not None and _year_written(published, written)
                and not _impossible(written)):
            break
        published = None
    return RawEntry(
        guid=guid,
        url=_entry_link(entry, base),
        title=_clip(
            _one_line(_detail_text(_raw(entry, "title_detail"), _raw(entry, "title"),
                                   rss=rss)),
            _MAX_TITLE,
        ),
        text=_clip(_entry_text(entry, rss=rss), _MAX_TEXT),
        published=published,
    )


def _base_of(entry: Any, url: str) -> str:
    """The base for an entry's relative links: its xml:base (itself relative to the feed URL)."""
    detail = _raw(entry, "title_detail") or _raw(entry, "summary_detail")
    base = _raw(detail, "base") if isinstance(detail, dict) else None
    if isinstance(base, str) and base:
        try:
            return urljoin(url, base)
        except ValueError:
            return url
    return url


# ---------------------------------------------------------------------------------------------
# JSON Feed


def _json_date(value: Any) -> datetime | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # A number is a Unix time or no date: read as text, feedparser took 4,000 nines for
        # 9999-12-01 and "20240501" for a date.
        return _epoch_time(repr(value))
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if (epoch := _epoch_time(text)) is not None:  # a Unix time, as an RSS date's
        return epoch
    try:
        parsed = parse_iso(text)
    except ValueError:
        if _impossible(text):  # "2024-13-45": not rolled over into 2025
            return None
        # RFC 822 and friends, which some producers emit despite the spec.
        return _struct_to_datetime(_parse_date(text))
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return None  # 0001-01-01T00:00:00+01:00 has no UTC time: a date we do not know


def _json_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


# The byte order marks of UTF-32 and UTF-16, longest first, with their codecs (RFC 8259 asks
# for UTF-8, but a feed in UTF-16 with its mark is read as its RSS twin is).
_JSON_MARKS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
               (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def _json_text(body: bytes, content_type: str | None = None) -> str:
    """A JSON Feed's text: UTF-8 (a mark of UTF-8, UTF-16 or UTF-32 read as it says), each byte
    that is not UTF-8 read as Windows-1252 — a "Café" written by a legacy tool in a feed
    labelled UTF-8 cost the whole feed ("invalid JSON"), where the same byte in RSS costs
    nothing. Bytes that are not UTF-8 under another usable charset of the HTTP header
    (``windows-1251``, UTF-16 without a mark) are read in it, as an RSS feed's are: read as
    Windows-1252, a Cyrillic feed came out as "Êè¿â". (Valid UTF-8 stays UTF-8, whatever
    the label: JSON is UTF-8, and a label is more often wrong than such bytes.)"""
    for mark, codec in _JSON_MARKS:
        if body.startswith(mark):
            return body.decode(codec, errors="replace").removeprefix("\ufeff")
    label = parse_content_type(content_type or "")[1] if content_type else ""
    charset = usable_charset(label, body) if label else None
    if charset is not None and charset.startswith(("utf-16", "utf-32")):
        return body.decode(charset, errors="replace")  # (its NULs read as UTF-8 too)
    if charset is not None and charset not in ("utf-8", "ascii"):
        try:
            return body.decode("utf-8-sig")
        except UnicodeDecodeError:
            # A UTF-8 feed with a few stray bytes keeps its UTF-8 whatever the label (a
            # server's default "iso-8859-1" made every Cyrillic title mojibake), as an XML
            # feed's does; Latin-1 is read as Windows-1252, as browsers read that label.
            if _mostly_utf8(body):
                return body.decode("utf-8-sig", errors=LEGACY_BYTES)
            if charset == "iso8859-1":
                return body.decode("cp1252", errors=LEGACY_BYTES)
            return body.decode(charset, errors="replace")
    return body.decode("utf-8-sig", errors=LEGACY_BYTES)


def _parse_json(body: bytes, url: str, content_type: str | None = None) -> ParsedFeed:
    try:
        # A number too long for int() (over 4,300 digits: an item's id, say) stays text, so
        # one such value does not make the whole feed invalid JSON.
        doc = loads_json(_json_text(body, content_type))
    except (ValueError, RecursionError):
        raise FeedFormatError(f"{url} is not a feed: invalid JSON", "invalid-json") from None
    if not isinstance(doc, dict) or not (
        _JSON_FEED_VERSION.match(_json_str(doc.get("version")))
        or isinstance(doc.get("items"), list)
    ):
        raise FeedFormatError(f"{url} is not a feed: JSON, but not a JSON Feed", "json")
    version = _json_str(doc.get("version"))
    fmt = "json11" if version.rstrip("/").endswith("1.1") else "json1"
    items = doc.get("items")
    if not isinstance(items, list):
        # A JSON Feed must have its items in a list: as null or an object, none was read and
        # the poll counted as a success, so a feed broken for good never failed.
        what = "no 'items'" if "items" not in doc else (
            f"'items' that is {json_kind(items)}, not a list")
        raise FeedFormatError(f"{url} is a JSON Feed with {what}", "ill-formed")
    entries: list[RawEntry] = []
    skipped = _Skipped()
    for position, item in enumerate(items[:MAX_ENTRIES], 1):
        if not isinstance(item, dict):
            # It read "TypeError: 'an item is an object, not str'".
            skipped.add(position, None, _Refused(f"is {json_kind(item)}, not an object"))
            continue
        try:
            raw = _json_entry(item, url)
        except Exception as exc:  # one bad item never loses the others
            skipped.add(position, item.get("id") or item.get("title"), exc)
            continue
        if raw.guid or raw.url or raw.title or raw.text:
            entries.append(raw)
    title = _one_line(_plain(_json_str(doc.get("title"))))
    return _capped(ParsedFeed(title=title, entries=entries, format=fmt,
                              skipped=skipped.result()), len(items))


def _capped(parsed: ParsedFeed, listed: int) -> ParsedFeed:
    """``parsed`` with its first :data:`MAX_ENTRIES` entries, saying so when it listed more
    (``listed`` items)."""
    if listed <= MAX_ENTRIES:
        return parsed
    note = (f"items {MAX_ENTRIES + 1:,} to {listed:,}: a feed is read to its first "
            f"{MAX_ENTRIES:,} items")
    return replace(parsed, entries=parsed.entries[:MAX_ENTRIES],
                   skipped=(*parsed.skipped, note))


def _json_entry(item: dict[str, Any], url: str) -> RawEntry:
    for key in _JSON_TEXTS:
        value = item.get(key)
        if value is not None and not isinstance(value, str):
            # A list for a title, an object for a text: the item was stored as "(untitled)"
            # with no text, and nothing said so (a folder's JSON file is refused alike).
            raise _Refused(f"'{key}' is {json_kind(value)}, not a string")
    raw_id = item.get("id")
    guid = str(raw_id).strip() if isinstance(raw_id, str | int | float | LongInt) else ""
    # content_html is HTML, content_text is plain text (JSON Feed 1.1). The summary is plain by
    # the spec too, but producers fill it with HTML far more often than with literal tags.
    body = _json_str(item.get("content_html"))
    text = html_to_text(body) if body else ""
    if not text:
        text = _tidy(_json_str(item.get("content_text")))
    if not text:
        text = html_to_text(_json_str(item.get("summary")))
    return RawEntry(
        guid=_clip_guid(guid) or None,
        url=_http_url(url, item.get("url")) or _http_url(url, item.get("external_url")),
        title=_clip(_one_line(_plain(_json_str(item.get("title")))), _MAX_TITLE),
        text=_clip(text, _MAX_TEXT),
        published=_json_date(item.get("date_published")) or _json_date(item.get("date_modified")),
    )


# The item's fields that are text by the JSON Feed spec.
_JSON_TEXTS = ("title", "content_html", "content_text", "summary")


# ---------------------------------------------------------------------------------------------


def _looks_like_json(head: bytes, content_type: str | None) -> bool:
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime in ("application/feed+json", "application/json") or mime.endswith("+json"):
        return True
    # (a byte order mark of UTF-16 or UTF-32 before the "{": such a feed served as text/plain
    # was "no RSS, Atom or RDF root")
    return head.startswith((b"{", b"[")) or any(
        head.startswith(mark) and head[len(mark):].lstrip(b"\x00 \t\r\n")[:1] in (b"{", b"[")
        for mark, _ in _JSON_MARKS)


def parse_feed(body: bytes, *, url: str, content_type: str | None) -> ParsedFeed:
    """Parse a feed document of any supported format; raise FeedFormatError for non-feeds.

    RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 (ill-formed XML included, via the loose parser) and JSON
    Feed 1/1.1. Links come back absolute (resolved against xml:base and ``url``), text is plain,
    dates are aware UTC or None.
    """
    # (blank space before the document, however long, is not the document's start)
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1024]
    if not head:
        raise FeedFormatError(f"{url} is not a feed: the response is empty", "empty")
    if _looks_like_json(head, content_type) and not head.startswith(b"<"):
        return _parse_json(body, url, content_type)
    tokens = body.count(b"<") + body.count(b"&")
    if tokens > MAX_MARKUP_TOKENS:
        raise FeedFormatError(
            f"{url} holds more markup than a feed is parsed with: {tokens} tags and entity "
            f"references, the limit being {MAX_MARKUP_TOKENS:,} (about 3 MB of a typical "
            "feed; a larger max_bytes does not raise it)",
            "too-complex",
        )
    try:
        parsed = _parse_xml(body, url, content_type)
        return _capped(parsed, len(parsed.entries))
    except RecursionError:
        raise FeedFormatError(f"{url} is not a feed: nested too deeply", "not-a-feed") from None
