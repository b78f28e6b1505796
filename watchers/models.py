"""The values that flow through the engine: articles in, matches and alerts out.

All models are frozen pydantic models with ``extra="forbid"``: a misspelt field is an error, and a
value handed to a sink cannot change under it.

An Article's text is always storable as UTF-8: whatever a source hands in, lone surrogates become
U+FFFD and NUL characters are removed before ids and hashes derive from it, and a publication date
that cannot be expressed in UTC (year 1 with a positive offset) counts as missing.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "BIDI_REORDERING",
    "MAX_AHEAD",
    "MAX_MATCH_CHARS",
    "MAX_MATCH_TITLE_CHARS",
    "UNTIMED",
    "Article",
    "Decision",
    "Fired",
    "Highlight",
    "Hit",
    "Match",
    "believed",
    "checked_article",
    "content_fingerprint",
    "day_text",
    "derive_id",
    "history_time",
    "hits_json",
    "impossible_offset",
    "json_kind",
    "matchable",
    "minute_text",
    "parse_iso",
    "readable",
    "storable",
    "unstorable_id",
]

# Rules and the lookup index read at most this much of an article's text. News articles are far
# shorter; a multi-megabyte "article" (a dump, a log) would otherwise hold the interpreter for
# seconds inside single C calls, where no other thread — the event loop — can run.
MAX_MATCH_CHARS = 1_000_000
# And at most this much of its title. A feed's title is cut at 1,000 characters and a page's at
# 300; an imported one is stored as the file gives it, and a 13.5 MB "title" was matched,
# indexed and tokenised for its story whole: 30 s and 1.1 GB, where the same words as its text
# took a second.
MAX_MATCH_TITLE_CHARS = 10_000

#: The direction controls that reorder a whole run of text (embeddings, overrides, isolates):
#: what text shown to users must never carry raw. The marks (U+200E, U+200F, U+061C) only set
#: the direction of the neutral characters beside them, and Hebrew and Arabic news carries them
#: in its titles and text, where an escape would show as noise.
BIDI_REORDERING = re.compile("[\u202a-\u202e\u2066-\u2069]")


def reordering_shown(text: str) -> str:
    """``text`` with each direction control of :data:`BIDI_REORDERING` shown as its escape,
    ``\\u202e``: shown rather than dropped, since a right-to-left override makes what follows
    it read reversed, and a name holding one would look like another name, or like nothing
    odd."""
    if text.isascii():
        return text
    return BIDI_REORDERING.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# C0 controls and DEL → the Control Pictures block (U+2400–U+2421): one column each.
_CONTROL_PICTURES: dict[int, int] = {**{c: 0x2400 + c for c in range(32)}, 0x7F: 0x2421}
_LAYOUT_KEPT = {c: p for c, p in _CONTROL_PICTURES.items() if c not in (9, 10)}


def control_pictures(text: str, *, keep_layout: bool = False) -> str:
    """``text`` with its control characters (NUL, BEL, ESC, DEL ...) shown as their pictures,
    ␀ ␇ ␛ ␡, one column each; with ``keep_layout`` line breaks and tabs stay as they are."""
    if text.isprintable():
        return text
    return text.translate(_LAYOUT_KEPT if keep_layout else _CONTROL_PICTURES)

_SPACE = re.compile(r"\s+")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def content_fingerprint(title: str, text: str) -> str:
    """A hash of an article's words that ignores case, accents, punctuation and spacing.

    Two copies of one story that differ only in markup, whitespace or tracking links get the same
    fingerprint, which is what dedupe needs. The words are those of ``\\w+`` in the text
    decomposed (NFKD), case-folded and stripped of its combining marks, joined by one space.
    ASCII text (most of it) needs no decomposition and no accent stripping; other text is
    decomposed and its marks dropped in one translate. A text with no word at all (emoji,
    punctuation) is known by its characters (NFC), its runs of spaces made one.
    """
    joined = f"{title}\n{text}"
    digest = _word_fingerprint(joined)
    if digest is not None:
        return digest
    # No word at all (emoji, punctuation): its characters, spaces made one, tell two such posts
    # apart (every one of them had the fingerprint of no words, and the second of two posts
    # with other ids and links was taken for a copy of the first).
    return hashlib.sha256(
        ("\x00" + " ".join(unicodedata.normalize("NFC", joined).split())).encode(
            "utf-8", "surrogatepass")).hexdigest()


def _word_fingerprint(joined: str) -> str | None:
    """The fingerprint of ``joined``'s words (see :func:`content_fingerprint`); None when it
    has none."""
    # News in English is ASCII but for its curly quotes, dashes and pound signs: when every
    # other character folds to punctuation, it parts words as a space would, and so do the
    # bytes of its UTF-8, which the table blanks like every byte past ASCII.
    if len(joined) <= _CHUNK and (joined.isascii() or all(map(
            _parts_words, set(_NON_ASCII.findall(joined))))):
        # One C pass lowercases and blanks every non-word byte; the runs of blanks are then
        # made one (a regex in C: splitting into words and joining them again cost twice as
        # much), and the ends dropped.
        blanked = _BLANKS.sub(b" ", joined.encode().translate(_ASCII_FOLD)).strip(b" ")
        return hashlib.sha256(blanked).hexdigest() if blanked else None
    if joined.isascii():
        folded = joined.lower()  # casefold() of ASCII is lower()
    else:
        folded = _drop_marks(unicodedata.normalize("NFKD", joined).casefold())
    digest = hashlib.sha256()
    first = True
    for words in _word_chunks(folded):
        if words:
            digest.update(((" " if not first else "") + " ".join(words)).encode())
            first = False
    return None if first else digest.hexdigest()


# Byte ``b`` of ASCII text maps to itself lowercased if it is a word character (``\w`` on
# ASCII: letters, digits, underscore), else to a space.
_ASCII_FOLD = bytes(
    ord(chr(b).lower()) if chr(b).isalnum() or chr(b) == "_" else 0x20 for b in range(128)
) + b" " * 128
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_BLANKS = re.compile(b"  +")


@lru_cache(maxsize=4096)
def _parts_words(char: str) -> bool:
    """Whether ``char`` anywhere in a text parts the words around it exactly as a space would:
    it is no combining mark (NFKD's reordering moves only those), and decomposed, case-folded
    and stripped of marks it leaves at least one character and no word character."""
    if unicodedata.combining(char):
        return False
    folded = _drop_marks(unicodedata.normalize("NFKD", char).casefold())
    return bool(folded) and _WORDS.search(folded) is None


_WORDS = re.compile(r"\w+")
_CHUNK = 1 << 18


def _word_chunks(text: str) -> Iterator[list[str]]:
    """The words of ``text``, a slice of about 256 KB at a time, cut at a space: one C call
    over a multi-megabyte text would hold the interpreter (and the event loop) for a second."""
    start = 0
    while start < len(text):
        end = start + _CHUNK
        if end < len(text):
            cut = text.find(" ", end)
            end = len(text) if cut < 0 else cut
        yield _WORDS.findall(text, start, end)
        start = end


def _drop_marks(text: str) -> str:
    """``text`` without its combining marks (canonical combining class above 0).

    Only the distinct characters of the text are looked up, and the few marks found deleted by
    one character class in C; a ``str.translate`` table costs a dictionary lookup per character,
    and a class of all 900 marks is slower still."""
    marks = [c for c in set(text) if not c.isascii() and unicodedata.combining(c)]
    if not marks:
        return text
    # re caches the compiled class: texts mostly carry the same few marks.
    return re.sub(f"[{''.join(sorted(marks))}]", "", text)


_TEXT_FIELDS = ("id", "source", "guid", "url", "title", "text", "content_hash")


def storable(text: str) -> str:
    """``text`` that encodes as UTF-8 and has no NUL: a surrogate pair left as two code points is
    joined, a lone surrogate becomes U+FFFD, NUL is removed."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if text.isascii():
        return text  # no surrogate (a flag of the str, read without encoding it)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


# Characters that show nothing and that a word may hold: the soft hyphen (HTML's &shy;, common in
# German text), the zero-width space, the word joiner and a stray byte order mark. Kept, each
# split its word: "Pu\u00adtin" matched neither putin nor putin~. (The zero-width joiner and
# non-joiner are kept: they shape emoji and Persian words.)
_INVISIBLE = re.compile("[\u00ad\u200b\u2060\ufeff]")


def readable(text: str) -> str:
    """A title or text as rules and readers see it: NUL (a word break here; elsewhere it is
    removed, see :func:`storable`) is a space, and the invisible characters a word may hold
    are removed."""
    if "\x00" in text:
        text = text.replace("\x00", " ")
    return visible(text)


def visible(text: str) -> str:
    """``text`` without the invisible characters a word may hold (see :func:`readable`): a
    query's words are read as an article's are."""
    # (four substring tests are each a fast scan of the text; the character class was 40
    # times slower, 8 µs for a 2.5 KB text, paid by every article read or stored)
    if not text.isascii() and ("\u00ad" in text or "\u200b" in text or "\u2060" in text
                               or "\ufeff" in text):
        text = _INVISIBLE.sub("", text)
    return text


# Letters and symbols that are drawn as nothing: the Hangul fillers, the braille blank.
_BLANK_SIGNS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Categories of characters that show nothing alone: controls, formats (direction marks, joiners,
# tags), separators, and marks with no letter to sit on (a variation selector, the combining
# grapheme joiner).
_BLANK_CATEGORIES = frozenset(("Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me"))


def shows_nothing(text: str) -> bool:
    """Whether ``text`` (a title) would show as nothing: empty, or spaces, controls, direction
    marks, joiners, marks with nothing to sit on and blank signs alone."""
    return all(c in _BLANK_SIGNS or unicodedata.category(c) in _BLANK_CATEGORIES
               for c in text)


class LongInt:
    """A JSON integer too long for ``int()`` (over 4,000 digits), kept as its digits and still a
    number: as a plain string it passed for one where a field must be a string (a title of
    4,001 digits was stored)."""

    __slots__ = ("digits",)

    def __init__(self, digits: str) -> None:
        self.digits = digits

    def __str__(self) -> str:
        return self.digits

    def __repr__(self) -> str:
        return f"LongInt({self.digits[:20]}…, {len(self.digits)} digits)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LongInt) and other.digits == self.digits

    def __hash__(self) -> int:
        return hash(self.digits)


def json_int(digits: str) -> int | LongInt:
    """A JSON integer as an int, or a :class:`LongInt` when too long for ``int()`` (over 4,300
    digits): for ``json.loads(..., parse_int=json_int)`` on what others wrote, where one such
    number (an id, say) stopped the whole file with a ValueError."""
    return int(digits) if len(digits) <= 4000 else LongInt(digits)


# One decoder for every document others wrote: json.loads given parse_int makes a new decoder
# (and its scanner) for each call, which was 40% of the time of a typical import line.
_DECODER = json.JSONDecoder(parse_int=json_int)


def loads_json(doc: str | bytes | bytearray, decoder: json.JSONDecoder = _DECODER) -> Any:
    """``json.loads(doc, parse_int=json_int)``: the same values and the same errors (bytes
    read in the encoding JSON's rules detect; a str opening with a byte order mark refused),
    from one decoder made once (``decoder``: another such, e.g. with an object hook)."""
    if isinstance(doc, bytes | bytearray):
        doc = doc.decode(json.detect_encoding(doc), "surrogatepass")
    elif not isinstance(doc, str):
        raise TypeError(f"the JSON object must be str, bytes or bytearray, not "
                        f"{doc.__class__.__name__}")
    elif doc.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", doc, 0)
    return decoder.decode(doc)


def json_kind(value: Any) -> str:
    """A JSON value's kind in JSON's words ("null", "an object", "a list", "a number" ...), for
    messages that say what a field held instead of the string it should have been."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {dict: "an object", list: "a list", str: "a string", int: "a number",
            float: "a number", LongInt: "a number"}.get(type(value), type(value).__name__)


def unstorable_id(ident: str) -> str | None:
    """Why ``ident`` cannot be an article's id as given, or None: a NUL or a lone surrogate,
    which :func:`storable` drops or makes U+FFFD, so that two ids differing only there were one.
    Named with escapes: "'id' holds a NUL or a lone surrogate ('a\\ud800')"."""
    if storable(ident) == ident:
        return None
    shown = ident.encode("unicode_escape", "backslashreplace").decode("ascii")
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"'id' holds a NUL or a lone surrogate ('{shown}')"


def unmarked(line: bytes) -> bytes:
    """``line`` without a UTF-8 byte order mark at its start (Windows tools write one at the
    start of a file; two such files joined have one at the start of a line)."""
    return line[3:] if line.startswith(b"\xef\xbb\xbf") else line


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# A published date later than this after the article was fetched is not believed: a feed's
# placeholder (9999-12-31) or a wrong year would otherwise sort first in every lookup for ever
# and hold a story window open.
MAX_AHEAD = timedelta(days=1)


def believed(published: datetime | None, fetched_at: datetime | None) -> datetime | None:
    """``published``, or None when it is more than :data:`MAX_AHEAD` after ``fetched_at``, or
    in the calendar's first year: the "no date" of .NET (``DateTime.MinValue``, written
    "Mon, 01 Jan 0001 00:00:00 GMT") and Go (its zero time), shown as "0001-01-01" in alerts
    and lookups, as the placeholder 9999-12-31 is not."""
    if published is not None and published.year <= 1:
        return None
    if published is None or fetched_at is None:
        return published
    try:
        ahead = published - fetched_at
    except TypeError:  # naive against aware: the validators make both aware first
        return published
    return None if ahead > MAX_AHEAD else published


_LEAP_SECOND = re.compile(r"(\d\d:\d\d):60(?![\d])")

# A numeric UTC offset as a date writes it after its time: "10:00:00 +0200", "10:00-05:00",
# "10:00:00 GMT+0545", "10:00+14", and in ISO 8601's basic format or with hours alone after
# the date's "T" ("20220201T100000+0200", "2022-02-01T10+02:00").
_WRITTEN_OFFSET = re.compile(
    r"(?:\d:\d\d(?::\d\d)?|\dT\d\d(?:\d\d){0,2})(?:[.,]\d+)?\s*(?:GMT|UTC)?([+-])(\d\d)"
    r"(?::?(\d\d))?(?!\d)", re.I)
# The zones of the world run from -12:00 to +14:00.
_MOST_OFFSET = timedelta(hours=14)


def impossible_offset(text: Any) -> str | None:
    """The UTC offset a date as written gives its time, when no zone has it (past ±14:00, or
    of 60 minutes or more); None otherwise. Such an offset is a typo or a placeholder, not a
    zone: "+9999" was read as 99 hours and 99 minutes and dated an article four days early."""
    found = _WRITTEN_OFFSET.search(text) if isinstance(text, str) else None
    if found is None:
        return None
    sign, hours, minutes = found.groups()
    if int(minutes or 0) < 60 and timedelta(hours=int(hours), minutes=int(minutes or 0)) <= (
            _MOST_OFFSET):
        return None
    return f"{sign}{hours}{':' + minutes if minutes else ''}"


def parse_iso(text: str) -> datetime:
    """An ISO 8601 date or date and time (what :meth:`datetime.fromisoformat` reads), made
    aware: one without a zone is UTC. A leap second (``23:59:60``, which RFC 3339 allows) is
    the second after ``23:59:59``, as the feed parser reads it in feeds. An offset no zone has
    (see :func:`impossible_offset`) is no date. ValueError names what could not be read."""
    if (zone := impossible_offset(text)) is not None:
        # fromisoformat takes any offset under a day and "+14:60" as +15:00
        raise ValueError(f"UTC offset {zone} is no time zone's: {text[:60]!r}")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        leap = _LEAP_SECOND.search(text)
        if leap is None:
            raise
        try:
            parsed = datetime.fromisoformat(
                f"{text[:leap.start()]}{leap.group(1)}:59{text[leap.end():]}"
            ) + timedelta(seconds=1)
        except OverflowError:  # the second after 9999-12-31T23:59:59
            raise ValueError(f"date out of range: {text[:60]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def day_text(when: datetime) -> str:
    """``2024-03-01``: the date with its year in four digits, as ``strftime("%Y")`` does not
    spell years before 1000 (``1-01-01``)."""
    return f"{when.year:04d}-{when.month:02d}-{when.day:02d}"


def minute_text(when: datetime) -> str:
    """``2024-03-01 18:45``, the year in four digits (see :func:`day_text`)."""
    return f"{day_text(when)} {when.hour:02d}:{when.minute:02d}"


# When the matches of an undated article of history count: at no time. Stored as the match's
# time (a column that is never empty), it is before every period a trend, a surge or a count of
# recent matches reads, and the first match of a rule passes over it.
UNTIMED = datetime(1, 1, 1, tzinfo=UTC)


def history_time(article: Article, *, at: datetime | None) -> datetime:
    """When an article of history (a source's backlog, an import) counts as matched: its
    publication, never after ``at`` (when given); :data:`UNTIMED` without one. Counted at its
    fetch, an undated backlog or import was a burst of the hour it was read: the next live
    match surged ("31 matches in the last hour, 744× usual") and trends showed a spike."""
    when = article.published
    if when is None:
        return UNTIMED
    if at is not None and when > at:
        return at
    return when


def derive_id(source: str, key: str) -> str:
    """An article's id from its source and its identity (guid, else link, else content hash)."""
    return hashlib.sha256(f"{source}\x00{key}".encode()).hexdigest()[:16]


class Article(_Frozen):
    """One news item, normalised from whatever the source returned.

    Only ``title`` and ``text`` are required, so the library can match ad-hoc text. ``id`` is
    stable: it derives from the source and the item's guid, else its link, else its content.
    Times are kept in UTC (a naive one is taken as UTC); a ``published`` more than a day after
    ``fetched_at`` is not believed and becomes None (a feed's placeholder date, a wrong year),
    as does one before the earliest time there is in UTC.
    """

    id: str = ""
    source: str = ""
    guid: str | None = None
    url: str | None = None
    title: str
    text: str = ""
    published: datetime | None = None
    fetched_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    content_hash: str = ""

    @field_validator("published", mode="after")
    @classmethod
    def _published_utc(cls, value: datetime | None) -> datetime | None:
        try:
            return _utc(value)
        except OverflowError:
            return None  # 0001-01-01T00:00:00+01:00 is before datetime.min in UTC

    @field_validator("fetched_at", mode="after")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime | None:
        try:
            return _utc(value)
        except OverflowError:
            # A validation error naming the field, not an OverflowError from inside.
            raise ValueError(f"{value.isoformat()} is before the earliest time there is in "
                             "UTC") from None

    @model_validator(mode="after")
    def _believable(self) -> Article:
        published = believed(self.published, self.fetched_at)
        if published is not self.published:
            object.__setattr__(self, "published", published)
        return self

    @model_validator(mode="before")
    @classmethod
    def _derive_ids(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key in ("id", "title", "text", "guid", "url", "source", "content_hash"):
            if isinstance(data.get(key), (bytes, bytearray)):
                # Taken by pydantic as text, without this model's clean-up (a NUL and a soft
                # hyphen kept), and hashed as its repr ("b'...'"): another id for the same text.
                raise ValueError(f"{key}: text (str), not bytes: decode it first")
        for key in ("title", "text"):
            if isinstance(data.get(key), str):
                data[key] = readable(data[key])
        for key in _TEXT_FIELDS:
            if isinstance(data.get(key), str):
                data[key] = storable(data[key])
        title = str(data.get("title") or "")
        text = str(data.get("text") or "")
        if not data.get("content_hash"):
            data["content_hash"] = content_fingerprint(title, text)
        if not data.get("id"):
            key = data.get("guid") or data.get("url") or data["content_hash"]
            data["id"] = derive_id(data.get("source") or "", key)
        return data

    def field(self, name: str) -> str:
        """The text of a matchable field (``title``, ``text``, ``source``, ``url``)."""
        if name == "title":
            return self.title
        if name == "text":
            return self.text
        if name == "source":
            return self.source
        if name == "url":
            return self.url or ""
        raise KeyError(name)

    def snippet(self, limit: int = 280) -> str:
        """The start of the text on one line, cut at a word boundary."""
        flat = _SPACE.sub(" ", self.text).strip()
        if len(flat) <= limit:
            return flat
        cut = flat.rfind(" ", 0, limit)
        return flat[: cut if cut > limit // 2 else limit].rstrip(" ,;:") + "…"


_ARTICLE_FIELDS = frozenset(Article.model_fields)
_set_attr = object.__setattr__


def checked_article(*, source: str, guid: str | None, url: str | None, title: str, text: str,
                    published: datetime | None, fetched_at: datetime, content_hash: str = "",
                    id: str = "") -> Article:
    """``Article(...)`` of values whose types the caller has checked (strings, aware or naive
    datetimes), without pydantic's validation: the same normalising (storable strings, UTC
    dates, the derived hash and id) gives an article equal to the validated one, field for
    field, for a fraction of the cost. Bulk loading builds one per line; tests compare the two.
    """
    data: Article = object.__new__(Article)
    title, text = storable(readable(title)), storable(readable(text))
    content_hash = storable(content_hash) or content_fingerprint(title, text)
    source = storable(source)
    guid = storable(guid) if guid is not None else None
    url = storable(url) if url is not None else None
    id = storable(id) or derive_id(source, guid or url or content_hash)
    try:
        published = _utc(published)
    except OverflowError:
        published = None  # as Article._published_utc
    fetched = _utc(fetched_at)
    published = believed(published, fetched)
    _set_attr(data, "__dict__", {
        "id": id, "source": source, "guid": guid, "url": url, "title": title, "text": text,
        "published": published, "fetched_at": fetched, "content_hash": content_hash,
    })
    _set_attr(data, "__pydantic_fields_set__", set(_ARTICLE_FIELDS))
    _set_attr(data, "__pydantic_extra__", None)
    _set_attr(data, "__pydantic_private__", None)
    return data


class Highlight(_Frozen):
    """A span of an article field that a rule matched.

    ``text == article.field(field)[start:end]``.
    """

    field: str
    start: int
    end: int
    text: str


HitKind = Literal["exact", "prefix", "fuzzy", "alias", "regex"]


class Hit(_Frozen):
    """Evidence for one query term: where it matched, how, and how well (0–100)."""

    term: str
    field: str
    start: int
    end: int
    text: str
    kind: HitKind = "exact"
    score: float = 100.0
    variant: str | None = None


_ascii = json.encoder.encode_basestring_ascii
# The JSON of the few strings every hit repeats (its field and kind), spelt once.
_SPELT: dict[str, str] = {}


def _spelt(value: str) -> str:
    text = _SPELT.get(value)
    if text is None:
        text = _ascii(value)
        if len(_SPELT) < 64:
            _SPELT[value] = text
    return text


def _hit_json(hit: Hit) -> str:
    """``json.dumps(hit.model_dump())``, spelt out from the hit's values (see :func:`hits_json`)."""
    v = hit.__dict__
    start, end, score, variant = v["start"], v["end"], v["score"], v["variant"]
    if type(start) is not int or type(end) is not int or type(score) is not float:
        return json.dumps(hit.model_dump())  # not what a matcher builds: the general way
    spelt = float.__repr__(score)
    if spelt[-1] > "9":  # nan, inf, -inf: JSON spells them its own way
        spelt = json.dumps(score)
    return (f'{{"term": {_ascii(v["term"])}, "field": {_spelt(v["field"])}, '
            f'"start": {int.__repr__(start)}, "end": {int.__repr__(end)}, '
            f'"text": {_ascii(v["text"])}, "kind": {_spelt(v["kind"])}, "score": {spelt}, '
            f'"variant": {"null" if variant is None else _ascii(variant)}}}')


def hits_json(hits: Iterable[Hit]) -> str:
    """A match's evidence as the stores keep it: the very text of
    ``json.dumps([h.model_dump() for h in hits])``, spelt out from each hit's values without
    building a dict per hit and encoding it (which cost more than finding the evidence: a
    rule-heavy article stores dozens of hits per match). A Hit's ``__dict__`` holds its field
    values (pydantic keeps private and extra attributes apart)."""
    return "[" + ", ".join([_hit_json(h) if type(h) is Hit else json.dumps(h.model_dump())
                            for h in hits]) + "]"


class Match(_Frozen):
    """A rule that fired on an article, with the evidence that shows why."""

    rule: str
    article_id: str
    score: float
    hits: tuple[Hit, ...] = ()

    @property
    def highlights(self) -> list[Highlight]:
        """The matched spans, ordered by field and position, overlapping spans merged."""
        spans = sorted({(h.field, h.start, h.end, h.text) for h in self.hits})
        out: list[Highlight] = []
        for field, start, end, text in spans:
            if out and out[-1].field == field and start <= out[-1].end:
                last = out[-1]
                if end > last.end:
                    merged = last.text + text[last.end - start :]
                    out[-1] = Highlight(field=field, start=last.start, end=end, text=merged)
                continue
            out.append(Highlight(field=field, start=start, end=end, text=text))
        return out

    @property
    def terms(self) -> list[str]:
        """The distinct query terms that hit, in first-seen order."""
        return list(dict.fromkeys(h.term for h in self.hits))


class Decision:
    """A rule that fired on an article, decided without evidence: the rule and its score, as
    ingest stores them (:meth:`~watchers.rules.RuleSet.decide`). Where evidence is shown a
    :class:`Match` is made (:meth:`as_match`, or the rule set's ``evidence``).

    Not a model: a large rule set decides hundreds of rules an article, and a model with its
    dict cost more to make and free than deciding them (see docs/matching-quality.md). Its
    ``hits`` are none, as a Match's without evidence.
    """

    __slots__ = ("article_id", "rule", "score")

    hits: ClassVar[tuple[Hit, ...]] = ()

    rule: str
    article_id: str
    score: float

    def __init__(self, rule: str, article_id: str, score: float) -> None:
        self.rule = rule
        self.article_id = article_id
        self.score = score

    def as_match(self) -> Match:
        """The same as a Match without evidence."""
        return Match(rule=self.rule, article_id=self.article_id, score=self.score)

    def __eq__(self, other: object) -> bool:
        if type(other) is not Decision:
            return NotImplemented
        return (self.rule, self.article_id, self.score) == (
            other.rule, other.article_id, other.score)

    def __hash__(self) -> int:
        return hash((self.rule, self.article_id, self.score))

    def __repr__(self) -> str:
        return f"Decision(rule={self.rule!r}, article_id={self.article_id!r}, score={self.score!r})"


# A rule that fired on an article, as ingest keeps it until stored: decided (most) or, where
# the evidence was built anyway (a changed article matched again), a Match. Stores read its
# rule, score and hits (none for a Decision).
Fired = Match | Decision


def matchable(article: Article) -> Article:
    """The article as rules see it: its title cut to :data:`MAX_MATCH_TITLE_CHARS` and its text
    to :data:`MAX_MATCH_CHARS` (prefixes, so every span found in them is a span of the stored
    title and text too)."""
    title, text = article.title, article.text
    if len(title) <= MAX_MATCH_TITLE_CHARS and len(text) <= MAX_MATCH_CHARS:
        return article
    return article.model_copy(update={"title": title[:MAX_MATCH_TITLE_CHARS],
                                      "text": text[:MAX_MATCH_CHARS]})
