"""Bulk loading of history: JSON Lines into the store, matched but never alerted.

One JSON object per line: ``title`` (required, a non-empty string), ``text``, ``url``, ``id``,
``source`` (strings), ``date`` (ISO 8601; a date without a time is midnight UTC, a time without
an offset is UTC; one past either end of the calendar once in UTC is bad: see
:func:`line_date`). Blank lines are skipped. A line that is not such an object is *bad*: it
is reported with its line number and left out, and the import goes on.

Invariants:

- Nothing imported reaches the outbox: articles are stored with their lookup terms and the
  matches of the current rules (so /recent, /search and rule counts see them), with no alert.
- Dedupe is the store's own (:meth:`watchers.store.ArticleStore.record_many`): importing a file
  twice, or a line that repeats a stored story, counts a duplicate and stores nothing.
- The file's ``id`` is kept as the article's id (and guid), so links to it keep working; an id
  another article already holds (with other content and another link) is replaced as the
  store replaces any clashing id, and the line is reported (``on_renamed``) with the new id.
  Its story is the one its content joins or starts, never the clashing article's: a story is
  named after its founder's id and content (see :func:`join_story`).
- Given a story index, each imported article joins (or starts) its story as a polled one does,
  so /story and lookups group history too; nothing alerts either way. A line that another
  outlet's stored article already holds word for word stores nothing, but its outlet joins
  that article's story (as a polled copy's does: it is one more outlet reporting it). The
  lines are then taken
  in date order (a first pass reads their dates and places; ties and lines without a readable
  date keep the file's order, undated ones come last), since an index groups within a window
  behind the newest article it has seen.
- Work is done in batches of ``BATCH`` lines, or fewer that hold ``BATCH_BYTES`` (8 MiB) at
  most (one line at least): parsing and matching in ``executor`` (off the
  event loop), up to ``AHEAD`` batches ahead of the writes, each batch written in one
  transaction; a crash loses at most the batch being written, and importing the file again
  completes it (what was stored counts as duplicates). An error or a cancellation ends the
  import once the batch being parsed is done, so nothing reads the file or the stories after
  it returned.
- The interpreter's switch interval is ``SWITCH_INTERVAL`` (0.5 ms) while the import runs, in
  the whole process, and back to what it was when the last import running ends: the writing
  thread gets the interpreter lock back soon after each statement SQLite runs.
- The cyclic garbage collector is held off for the import (:func:`watchers.collector.paused`,
  in every thread of the process): its records are freed by reference counting as they are
  written, and the collections between batches only walked them.
- A store with a ``bulk_load`` context (SQLite: a larger page cache, and its write-ahead log
  checkpointed less often) is inside it for the import; no store relaxes its journal or sync
  settings for it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import threading
from array import array
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor
from contextlib import AbstractAsyncContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from watchers import collector
from watchers.errors import NewswatchError
from watchers.models import (
    Article,
    Decision,
    believed,
    checked_article,
    history_time,
    impossible_offset,
    json_int,
    json_kind,
    loads_json,
    matchable,
    parse_iso,
    shows_nothing,
    unmarked,
    unstorable_id,
)
from watchers.rules import RuleSet
from watchers.rules.lookup import (
    analysed_index,
    places_of,
    terms_text,
    url_terms,
)
from watchers.rules.matcher import Analysis
from watchers.rules.text import FieldText, add_terms, untrack
from watchers.store.base import (
    SERVER_FEED_PREFIX,
    ArticleRecord,
    ArticleStore,
    StoryLink,
    sort_time,
)
from watchers.stories import Signature, StoryIndex, signature
from watchers.stories.features import signature_of

__all__ = [
    "BATCH",
    "BATCH_BYTES",
    "FIELDS",
    "BadLine",
    "ImportProgress",
    "ImportSummary",
    "import_file",
    "join_story",
    "json_lines",
    "line_date",
    "not_json_lines",
    "parse_line",
    "story_key",
]

# Batches parsed ahead of the one being written.
AHEAD = 2
# Lines per batch (and transaction): the lookup index writes a segment per transaction, and
# fewer, larger segments cost less to write and to merge.
BATCH = 2000
# The most bytes of lines in a batch (a longer line is a batch of its own): a batch is held,
# with its articles' analyses (up to 20 times their text), from its parsing to its write,
# AHEAD + 1 at a time. 2,000 lines of 1 MB made one batch, and 300 of them took 4.7 GB (60
# took 1.25 GB, and 600 MB in batches of 8 MiB); lines of up to 4 KB, as most articles are,
# still make batches of BATCH lines.
BATCH_BYTES = 8 * 2**20
# The longest line read, as the longest file `newswatch match` reads (an article's text is
# matched on its first 1,000,000 characters): a longer one is a bad line, skipped without
# being held whole (a 200 MB line took 2 GB, and a 1 GB line of zeros 3 GB to be refused).
MAX_LINE_BYTES = 32 * 2**20
# Bad lines an import's summary keeps (each is given to on_bad_line, and all are counted): two
# million lines of "{}" (6 MB) kept 300 MB of reasons.
MAX_BAD_KEPT = 10_000
_STRINGS = ("id", "text", "url", "source")


class BadLine(ValueError):
    """A line that is not an importable article; ``str()`` says why."""


@dataclass(frozen=True)
class ImportProgress:
    """How far an import has got: lines and bytes read, and what became of them."""

    lines: int
    bytes_read: int
    total_bytes: int
    imported: int
    duplicates: int
    bad: int


@dataclass(frozen=True)
class ImportSummary:
    """What an import did; ``bad_lines`` holds (line number, reason) of the first
    :data:`MAX_BAD_KEPT` bad lines (every one is given to ``on_bad_line`` as it is read, and
    :attr:`bad` counts them all), ``renamed`` (line number, the file's id, the stored id) of
    every article imported under another id than the file's, which another stored article
    held."""

    lines: int
    imported: int
    duplicates: int
    bad_lines: tuple[tuple[int, str], ...]
    renamed: tuple[tuple[int, str, str], ...] = ()
    # The file changed while it was read (written to, cut short or replaced): lines may be
    # missing that the same import again would find.
    changed: bool = False
    # Every bad line, where more were read than bad_lines keeps (None: as many as it holds).
    bad_count: int | None = None

    @property
    def bad(self) -> int:
        return len(self.bad_lines) if self.bad_count is None else self.bad_count


def line_date(value: Any) -> datetime | None:
    """A line's ``date`` in UTC (``newswatch import`` and ``newswatch stories`` read it this
    one way); None for no date (absent, null or ""). BadLine says why it is none: not an ISO
    8601 string, one whose UTC offset no zone has (``+15:00``), or one whose time in UTC is
    past either end of the calendar
    (``0001-01-01T00:00:00+14:00``, ``9999-12-31T23:59:59-14:00``). Such a date was taken as
    no date (the import's) or as the time the file was read (the stories'), and the line was
    never named, where every other date that cannot be one is."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadLine(f"'date' must be an ISO 8601 string, not {json_kind(value)}")
    try:
        parsed = parse_iso(value.strip())
    except ValueError as exc:
        if str(exc).startswith("date out of range"):
            # A leap second on the calendar's last day (9999-12-31T23:59:60Z): a date, past
            # its end, named as such (it was "not an ISO 8601 date").
            raise BadLine(f"'date' {value[:60]!r} is out of range") from None
        if (zone := impossible_offset(value)) is not None:
            raise BadLine(f"'date' has UTC offset {zone}, which no time zone has: "
                          f"{value[:60]!r}") from None
        raise BadLine(f"'date' is not an ISO 8601 date: {value[:60]!r}") from None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        # Named as parsed: the file's own spelling may part date and time with any character.
        raise BadLine(f"'date' {parsed.isoformat()} is out of range once made UTC") from None


def parse_line(raw: bytes | str, *, default_source: str = "import",
               fetched_at: datetime | None = None) -> Article | None:
    """The article on one line, None for a blank line; BadLine says what is wrong."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadLine(f"not UTF-8 (byte {exc.start + 1})") from None
    if not raw.strip():
        return None
    try:
        doc = loads_json(raw, LINE_OBJECTS)
    except json.JSONDecodeError as exc:
        raise BadLine(json_problem(exc)) from None
    except RecursionError:
        raise BadLine("invalid JSON: nested too deeply") from None
    if not isinstance(doc, dict):
        raise BadLine(f"expected a JSON object, got {json_kind(doc)}")
    if (twice := repeated_field(doc)) is not None:
        raise BadLine(f"'{twice}' appears twice in the object")
    title = doc.get("title")
    if not isinstance(title, str) or not title.strip():
        raise BadLine("missing 'title'" if title is None else "'title' is empty"
                      if title == "" else "'title' must be a non-empty string")
    if shows_nothing(title):
        # A zero-width space, a soft hyphen or a NUL alone was stored as an empty title, and
        # a right-to-left override alone turned the text shown after it around.
        raise BadLine("'title' holds only invisible characters")
    for key in _STRINGS:
        if doc.get(key) is not None and not isinstance(doc[key], str):
            raise BadLine(f"'{key}' must be a string, not {json_kind(doc[key])}")
    if isinstance(doc.get("source"), str) and doc["source"].strip().startswith(
            SERVER_FEED_PREFIX):
        # As in the config file: the prefix marks the feeds servers follow, and articles of
        # such a source were shown to no server.
        raise BadLine(f"'source' may not start with {SERVER_FEED_PREFIX!r} (it marks the feeds "
                      "servers follow)")
    ident = doc.get("id")
    if isinstance(ident, str) and (why := unstorable_id(ident)) is not None:
        # "a\ud800" and "a\udc00" were stored as one id: the second line renamed as a clash.
        raise BadLine(f"{why}, which no stored id may")
    for key, most in (("id", MAX_ID_BYTES), ("source", MAX_SOURCE_BYTES)):
        # Indexed whole: PostgreSQL refuses an index row of more than 2,704 bytes, and a
        # 3,000-character id stopped the import there at every run.
        if isinstance(value := doc.get(key), str) and len(value.strip().encode()) > most:
            raise BadLine(f"'{key}' is {len(value.strip().encode()):,} bytes long; at most "
                          f"{most:,}")
    published = line_date(doc.get("date"))
    # Every value's type is checked above: the model's own validation would only repeat it.
    return checked_article(
        source=(doc.get("source") or "").strip() or default_source,
        guid=(doc.get("id") or "").strip() or None,
        url=(doc.get("url") or "").strip() or None,
        title=title.strip(),
        text=doc.get("text") or "",
        published=published,
        fetched_at=fetched_at or datetime.now(UTC),
        id=(doc.get("id") or "").strip(),
    )


# The longest id and source a line may give, in UTF-8 bytes (each is indexed whole).
MAX_ID_BYTES = 1_000
MAX_SOURCE_BYTES = 200

# The fields a line gives (each at most once; other keys are passed over).
FIELDS = frozenset(("id", "title", "text", "url", "date", "source"))


class JsonObject(dict[str, Any]):
    """A JSON object of a line; ``repeated``: a field the import reads (:data:`FIELDS`) that it
    gave twice, or None. JSON keeps the last, and a repeated "id" lost the first without a
    word: a line whose own object repeats one is bad (:func:`repeated_field`); an object
    inside it may repeat any key (it was refused for its "id" given twice)."""

    __slots__ = ("repeated",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.repeated: str | None = None
        if len(self) != len(pairs):
            seen: set[str] = set()
            for name, _ in pairs:
                if name in seen and name in FIELDS:
                    self.repeated = name
                    break
                seen.add(name)


def repeated_field(doc: object) -> str | None:
    """The field a line's object (decoded with :data:`LINE_OBJECTS`) gives twice, or None."""
    return doc.repeated if isinstance(doc, JsonObject) else None


# The lines' decoder: loads_json's, objects made as JsonObject (about 1 µs a line).
LINE_OBJECTS = json.JSONDecoder(parse_int=json_int, object_pairs_hook=JsonObject)


def json_lines(fh: BinaryIO) -> Iterator[tuple[int, int, bytes | int]]:
    """(line number, bytes read so far, line) for each line of the file; for a line longer
    than :data:`MAX_LINE_BYTES`, its length instead, read past without being kept."""
    read = 0
    number = 0
    while True:
        line = fh.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        read += len(line)
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            length = len(line)
            while (rest := fh.readline(2**20)) and not rest.endswith(b"\n"):
                length += len(rest)
            length += len(rest)
            read += length - len(line)
            yield number, read, length
            continue
        yield number, read, unmarked(line)


def _date_order(fh: BinaryIO, blank: list[int] | None = None
                ) -> Iterator[tuple[int, int, int]]:
    """(line number, offset, length) of every line of the file, in the order of their dates
    (ties, and lines of no date that can be read, in the file's order; a line that cannot be
    read at all keeps its place after the line before it; undated lines last, as they count at
    the import's time). A negative length: a line over :data:`MAX_LINE_BYTES`, not to be read.
    Blank lines (nothing but whitespace) are not given: ``blank``, when given, gains their
    count and their bytes (two items), once the file is read.

    Stories are grouped as articles come, within a window behind the newest: a file out of
    date order left nearly every article a story of its own. The places are kept in arrays
    (8 bytes a number) and sorted by numpy where it is installed (a Python sort of a million
    lines made a million objects: 5 MB of empty lines took 680 MB): about 40 MB a million
    lines while they are sorted."""
    now = datetime.now(UTC)
    keys, numbers, offsets, lengths = (array("q") for _ in range(4))
    offset = 0
    last = -(2**62)
    skipped = skipped_bytes = 0
    for number, read, raw in json_lines(fh):
        if not isinstance(raw, int) and not raw.strip():
            skipped += 1
            skipped_bytes += read - offset
            offset = read
            continue
        numbers.append(number)
        offsets.append(offset)
        key = last
        if isinstance(raw, int):
            lengths.append(-(read - offset))
        else:
            lengths.append(read - offset)
            try:
                doc = loads_json(raw)
                when = line_date(doc.get("date")) if isinstance(doc, dict) else None
                # As the article will be: undated, or dated too far ahead to be believed.
                when = believed(when, now)
                key = 2**62 if when is None else _micros(when)
                last = key if when is not None else last
            except (ValueError, RecursionError, OverflowError):
                pass  # a bad line or date: named when it is read again, in its place
        keys.append(key)
        offset = read
    if blank is not None:
        blank += [skipped, skipped_bytes]
    for i in _stable_order(keys):  # ties in file order
        yield numbers[i], offsets[i], lengths[i]


def _stable_order(keys: array[int]) -> Iterable[int]:
    """The positions of ``keys`` in the order of their values, ties in place."""
    try:
        import numpy
    except ImportError:  # (numpy comes with matplotlib; a Python sort otherwise)
        return sorted(range(len(keys)), key=keys.__getitem__)
    order = numpy.frombuffer(keys, dtype=numpy.int64).argsort(kind="stable")
    return map(int, order)


def _pread(fd: int, length: int, offset: int) -> bytes:
    """The ``length`` bytes at ``offset`` of the file (fewer at its end, as ``read``)."""
    data = os.pread(fd, length, offset)
    while len(data) < length:  # a read may return less than asked (a signal, a pipe)
        more = os.pread(fd, length - len(data), offset + len(data))
        if not more:
            break
        data += more
    return data


def _micros(when: datetime) -> int:
    """A date as microseconds since the epoch (the sort key of :func:`_date_order`)."""
    return (when - _EPOCH) // _ONE_US


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def _open(path: Path) -> tuple[BinaryIO, int]:
    try:
        fh = path.open("rb")
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(16)
        fh.seek(0)
    except OSError as exc:
        raise NewswatchError(f"cannot read {path}: {exc.strerror or exc}") from None
    if (why := not_json_lines(head)) is not None:
        fh.close()
        raise NewswatchError(f"{path} {why}")
    return fh, size


def not_json_lines(head: bytes) -> str | None:
    """Why a file beginning with ``head`` (its first 16 bytes or more) cannot be JSON Lines as
    the import reads them (UTF-8 text), said after its name; None when it may be. Each line of
    such a file was reported in turn as not UTF-8 or not JSON, and none imported."""
    if head.startswith(b"SQLite format 3\x00"):
        return "is an SQLite database (a newswatch store?), not a JSON Lines file"
    packed = next((kind for magic, kind in _PACKED if head.startswith(magic)), None)
    if packed is not None:
        return f"is {packed}-compressed: decompress it first (JSON Lines are read as they are)"
    wide = next((kind for magic, kind, codec in _WIDE if head.startswith(magic)
                 and _ascii_first(head[len(magic):], codec)), None)
    if wide is None and len(head) >= 4:
        # No byte order mark: JSON text begins with an ASCII character, which UTF-16 and
        # UTF-32 spell with zero bytes beside it.
        zeros = [b == 0 for b in head[:4]]
        if zeros in ([False, True, True, True], [True, True, True, False]):
            wide = "UTF-32"
        elif zeros[0] != zeros[1]:
            wide = "UTF-16"
    if wide is not None:
        return (f"is {wide} text, not UTF-8: convert it first (e.g. iconv -f {wide} -t UTF-8 "
                "FILE > NEW)")
    spread = _SPREAD.match(head)
    if spread is not None:
        # A line holding only the bracket is no line of JSON Lines: the file is one document
        # (an export's array, or `jq` without -c), each of whose lines was named in turn as
        # invalid JSON, and none imported.
        if spread.group(1) == b"[":
            return ("is a JSON array spread over lines, not JSON Lines (one object a line): "
                    "convert it first (e.g. jq -c '.[]' FILE > NEW)")
        return ("is JSON objects spread over lines, not JSON Lines (one object a line): "
                "convert it first (e.g. jq -c . FILE > NEW)")
    return None


# A first line (past a byte order mark) that holds nothing but "[" or "{".
_SPREAD = re.compile(rb"(?:\xef\xbb\xbf)?[ \t]*([\[{])[ \t]*\r?\n")


# The byte order marks of the wide encodings (UTF-32's first: UTF-16 LE's is its prefix).
_WIDE = ((b"\xff\xfe\x00\x00", "UTF-32", "utf-32-le"),
         (b"\x00\x00\xfe\xff", "UTF-32", "utf-32-be"),
         (b"\xff\xfe", "UTF-16", "utf-16-le"), (b"\xfe\xff", "UTF-16", "utf-16-be"))


def _ascii_first(data: bytes, codec: str) -> bool:
    """Whether ``data`` read as ``codec`` begins (past any white space) with a printable ASCII
    character, as JSON text does: bytes that only start like a byte order mark (binary, or
    text in another encoding) are not called UTF-16 on that alone."""
    text = data.decode(codec, "ignore").lstrip()
    return not text or (text[0].isascii() and text[0].isprintable())


# The first bytes of compressed files (a history export is often gzipped).
_PACKED = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"),
           (b"\x28\xb5\x2f\xfd", "zstd"), (b"PK\x03\x04", "zip"))


_new_link = tuple.__new__


def story_key(article: Article) -> str:
    """What names the story ``article`` starts (see :func:`join_story`): its id and its content
    hash. No stored id holds a NUL (see :func:`watchers.models.unstorable_id`), so no other
    pair spells the same key."""
    return f"{article.id}\x00{article.content_hash}"


def join_story(stories: StoryIndex, article: Article, sig: Signature) -> StoryLink:
    """Put ``article`` (of signature ``sig``) in its story — joined or started — and return
    what the store records of it: the story's grown signature, the outlet and when. Polled and
    imported articles join stories this one way. An undated article is placed at the time it
    was read, and a story it starts is named without that time (an import run again after a
    stop read it at another time, named its story anew, and its copies joined that one rather
    than the story it was stored in).

    A story is named after its founding article's id *and content* (:func:`story_key`): an id
    alone may be another article's (a file's "1" in two imports, or twice in one file; a feed
    that reuses one guid), which the store then stores under a new id. Named by the id alone,
    such an article's story was the other article's: placed in it by name rather than by its
    content, and written onto that article's stored story (unrelated articles made one story,
    and an earlier import's story changed). The same article read again (a rerun, a poll
    again after a crash) names its story as it did."""
    published = article.published
    when = published or article.fetched_at  # sort_time(article), inline
    # An article dated after it was read (a feed's wrong time zone, within the day believed)
    # is placed when it was read: its date moved the live stories' horizon ahead, and stories
    # still inside their window ended early (their next report started a story, and alerted).
    # A story it starts is named without a time, as an undated one's (read again, it is
    # read at another time).
    ahead = published is not None and published > article.fetched_at
    if ahead:
        when = article.fetched_at
    story_id, _, grown = stories.place(story_key(article), sig, when, article.source,
                                       dated=published is not None and not ahead)
    # StoryLink(...) without the named tuple's __new__, a Python call of its own (which
    # builds the same tuple this way).
    link: StoryLink = _new_link(StoryLink, (story_id, grown.dump(), article.source, when))
    untrack(link)  # strs and a datetime, kept until the article is written (see text.untrack)
    return link


@dataclass
class _Batch:
    records: list[ArticleRecord]
    bad: list[tuple[int, str]]
    last_line: int
    bytes_read: int
    numbers: list[int] = field(default_factory=list)  # each record's line
    size: int = 0  # lines in the batch


def _prepare(chunk: Sequence[tuple[int, int, bytes | int]], ruleset: RuleSet,
             terms_of: Callable[[str, str], str] | None, regex_budget: float,
             stories: StoryIndex | None = None) -> _Batch:
    """Parse, match, index and group one batch of lines (in the executor)."""
    bad: list[tuple[int, str]] = []
    numbers: list[int] = []
    # Each line's record but its story: (article, matches, terms, words, url terms, when).
    parts: list[tuple[Article, list[Decision], str, set[str] | None, str, datetime | None,
                      tuple[str, str, str, str] | None]] = []
    sigs: list[Signature] = []
    fetched = datetime.now(UTC)
    for number, _, raw in chunk:
        if isinstance(raw, int):
            bad.append((number, f"longer than {MAX_LINE_BYTES // 2**20} MiB ({raw:,} bytes)"))
            continue
        try:
            article = parse_line(raw, fetched_at=fetched)
        except BadLine as exc:
            bad.append((number, str(exc)))
            continue
        except ValueError as exc:  # the model refused a value (e.g. a date out of range)
            bad.append((number, f"not an article: {str(exc).splitlines()[0]}"))
            continue
        if article is None:
            continue
        seen = matchable(article)
        words: set[str] | None = None
        title: FieldText | None = None  # the title's tokens, when made: the signature's too
        if len(ruleset):  # the matcher's tokens also give the index terms
            analysis = Analysis(seen)
            # No evidence: an import alerts nobody, and /article builds it when shown.
            matches = ruleset.decide(seen, regex_budget=regex_budget,
                                     analysis=analysis).decisions
            words, places = analysed_index(analysis)
            terms = terms_text(words)
            title = analysis.field("title")
        elif terms_of is None:  # no rules: the words alone, not the matcher's tokens
            # The title's tokens are made once, for its words here and the signature below;
            # the text's words are only scanned.
            title = FieldText.of(seen.title)
            words = set()
            title.add_terms(words)
            add_terms(seen.text, words)
            words.discard("")
            untrack(words)
            matches = []
            terms = terms_text(words)
            places = places_of(seen.title, seen.text)
        else:
            matches, terms = [], terms_of(seen.title, seen.text)
            places = None  # the store's own places_of, if it was given one
        if stories is not None:
            # A signature reads the title (every imported article has one) and is the same
            # from these tokens as from the title's own (see stories.signature_from).
            sigs.append(signature(article.title, article.text) if title is None
                        else signature_of(title, article.text))
        # History: its matches count at its own date (not as a burst now; see ArticleRecord).
        parts.append((article, matches, terms, words, url_terms(article.url),
                      history_time(article, at=None), places))
        numbers.append(number)
    if stories is None:
        records = [ArticleRecord(article, matches, (), terms, None, words, link, matched_at=at,
                                 places=places)
                   for article, matches, terms, words, link, at, places in parts]
    else:
        # Once the batch is matched, in the same order (see WatchService._analyse): the live
        # index walked article after article, not between two articles' matching. Each record
        # is made once, with its story (a copy of one made without cost about 4 µs a line).
        records = [ArticleRecord(article, matches, (), terms, join_story(stories, article, sig),
                                 words, link, matched_at=at, places=places)
                   for (article, matches, terms, words, link, at, places), sig
                   in zip(parts, sigs, strict=True)]
    return _Batch(records, bad, chunk[-1][0], chunk[-1][1], numbers, len(chunk))


def json_problem(exc: json.JSONDecodeError) -> str:
    """A JSON error as one sentence: "invalid JSON at column 5: Expecting value", and for the
    messages that end by pointing ("Unterminated string starting at"), at the column (they
    read "… starting at" and stopped)."""
    msg = exc.msg
    if msg.endswith(" at"):
        return f"invalid JSON: {msg} column {exc.colno}"
    return f"invalid JSON at column {exc.colno}: {msg}"


async def _clashes(store: ArticleStore, batch: _Batch, stored: Sequence[Article | None],
                   *, outlets: bool = False) -> list[tuple[int, str]]:
    """The batch's lines the store took for duplicates that are not: their id (or link) is a
    stored article's, whose content differs. They were counted as duplicates and lost
    without a word; they are bad lines now, named by number. With ``outlets`` (stories are
    grouped), a line another source's stored article holds word for word adds its outlet to
    that article's story."""
    dups = [(n, rec.article) for n, rec, s in zip(batch.numbers, batch.records, stored,
                                                   strict=True) if s is None]
    if dups:
        # The same article again (an import run twice) has its content stored: a duplicate
        # indeed, found in one read per batch rather than looked at one by one.
        sources = await store.hash_sources([a.content_hash for _, a in dups])
        if outlets:
            await _add_outlets(store, [a for _, a in dups
                                       if sources.get(a.content_hash, {a.source}) - {a.source}])
        dups = [(n, a) for n, a in dups if a.content_hash not in sources]
    if not dups:
        return []
    versions = await store.known_versions([a for _, a in dups])
    out = []
    for (number, article), (other, _) in zip(dups, versions, strict=True):
        if other is not None:
            why = "id" if other.guid is not None and other.guid == article.guid else "link"
            out.append((number, f"its {why} is another stored article's ("
                                f"{other.title[:60]!r}), with other content: "
                                "not imported"))
    return out


async def _add_outlets(store: ArticleStore, copies: Sequence[Article]) -> None:
    """Each of ``copies`` (lines whose content another source stored) as one more outlet of the
    story of the stored article it copies, when that story does not count it yet (no route:
    an import alerts nobody). A re-import of a file has no such line, and pays one read per
    batch for finding that out (in :func:`_clashes`)."""
    add_outlet: Callable[..., Awaitable[int]] | None = getattr(store, "add_outlet", None)
    if not copies or add_outlet is None:  # (a store without stories: nothing to add to)
        return
    for article, (_, original) in zip(copies, await store.known_versions(copies), strict=True):
        if original is not None:
            await add_outlet(original.id, article.source, sort_time(article), ())


async def import_file(
    store: ArticleStore,
    path: str | Path,
    *,
    ruleset: RuleSet,
    terms_of: Callable[[str, str], str] | None = None,
    executor: Executor | None = None,
    regex_budget: float = 0.1,
    on_progress: Callable[[ImportProgress], None] | None = None,
    on_bad_line: Callable[[int, str], None] | None = None,
    on_renamed: Callable[[int, str, str], None] | None = None,
    batch: int = BATCH,
    stories: StoryIndex | None = None,
) -> ImportSummary:
    """Load a JSON Lines file into ``store`` (see the module docstring); ``on_progress`` is
    called after each batch is written, ``on_bad_line`` for each bad line as it is found,
    ``on_renamed`` (line number, the file's id, the stored one) for each article stored under
    another id than the file's.
    ``terms_of(title, text)`` gives the index terms when there are no rules (default: the rule
    engine's own words, as the matcher's tokens give them when there are)."""
    loop = asyncio.get_running_loop()
    fh, total = await loop.run_in_executor(executor, _open, Path(path))
    read_from = _version(os.fstat(fh.fileno()))
    imported = duplicates = lines = 0
    bad: list[tuple[int, str]] = []
    bad_count = 0  # every bad line (bad keeps the first MAX_BAD_KEPT)
    renamed: list[tuple[int, str, str]] = []

    blank: list[int] = []  # the blank lines date order passed over: count, bytes

    def in_date_order() -> Iterator[tuple[int, int, bytes | int]]:
        done = 0
        fd = fh.fileno()
        for number, offset, length in _date_order(fh, blank):
            if blank and blank[1]:  # read past (once the file was read): counted as done
                done += blank[1]
                blank[1] = 0
            done += abs(length)
            if length < 0:
                yield number, done, -length
                continue
            # One read at the line's place (a seek and a read of the buffered file cost two
            # calls into the system a line, and a copy through its buffer).
            yield number, done, unmarked(_pread(fd, length, offset))

    def chunks() -> Iterator[list[tuple[int, int, bytes | int]]]:
        buf: list[tuple[int, int, bytes | int]] = []
        held = 0  # bytes of the lines in buf (an overlong line is not held: none)
        most = BATCH_BYTES
        for item in (in_date_order() if stories is not None else json_lines(fh)):
            size = 0 if isinstance(item[2], int) else len(item[2])
            if buf and held + size > most:
                yield buf
                buf, held = [], 0
            buf.append(item)
            held += size
            if len(buf) >= batch:
                yield buf
                buf, held = [], 0
        if buf:
            yield buf

    source = chunks()

    def next_batch() -> _Batch | None:
        # Reading the file, parsing and matching all happen here, in the executor, with the
        # cyclic collector held off (see watchers.collector).
        with collector.paused():
            chunk = next(source, None)
            return None if chunk is None else _prepare(chunk, ruleset, terms_of, regex_budget,
                                                       stories)

    async def prepare() -> _Batch | None:
        return await loop.run_in_executor(executor, next_batch)

    # A store that can make room for a bulk load (SQLite's page cache) does so for this one.
    bulk: Callable[[], AbstractAsyncContextManager[None]] | None = getattr(
        store, "bulk_load", None)
    # The collector is held off for the whole import, not only while a batch is prepared:
    # re-enabled between batches, it examined each batch's records (kept until written) and
    # moved them on to the older generations, whose collections walked them again with the
    # whole heap. An import makes almost no cyclic garbage (reference counting frees its
    # records once written); what it makes is collected by the first collection after it.
    # Batches are parsed and matched ahead of the writes, up to AHEAD of them, so parsing runs
    # on while a batch commits (SQLite's commit and its multi-row inserts run without the
    # interpreter lock): parsing the next batch only while one was written left the commit
    # and the rest of each write to run alone, as both wait for the lock most of the time.
    ready: asyncio.Queue[_Batch | BaseException | None] = asyncio.Queue()
    room = asyncio.Semaphore(AHEAD)  # batches parsed and not yet taken by the writer
    stop = False

    async def produce() -> None:
        try:
            while True:
                await room.acquire()
                if stop:
                    return
                got = await prepare()
                ready.put_nowait(got)
                if got is None:
                    return
        except BaseException as exc:
            # Handed to the writer, which raises it: a cancellation of this task from outside
            # too, which left the writer waiting for a batch for ever.
            ready.put_nowait(exc)
            if not isinstance(exc, Exception):
                raise

    with fh, collector.paused(), _switching(SWITCH_INTERVAL):
        async with bulk() if bulk is not None else nullcontext():
            producer = asyncio.create_task(produce())
            try:
                while (current := await ready.get()) is not None:
                    if isinstance(current, BaseException):
                        raise current
                    room.release()
                    stored = await store.record_many(current.records)
                    kept = sum(1 for s in stored if s is not None)
                    imported += kept
                    for number, rec, s in zip(current.numbers, current.records, stored,
                                              strict=True):
                        if s is not None and s.id != rec.article.id:
                            renamed.append((number, rec.article.id, s.id))
                            if on_renamed is not None:
                                on_renamed(number, rec.article.id, s.id)
                    clashes = await _clashes(store, current, stored, outlets=stories is not None)
                    duplicates += len(stored) - kept - len(clashes)
                    lines += current.size
                    for number, reason in sorted(current.bad + clashes):
                        bad_count += 1
                        if len(bad) < MAX_BAD_KEPT:
                            bad.append((number, reason))
                        if on_bad_line is not None:
                            on_bad_line(number, reason)
                    if on_progress is not None:
                        on_progress(ImportProgress(lines, current.bytes_read, total, imported,
                                                   duplicates, bad_count))
                lines += blank[0] if blank else 0  # (lines, as the file's order counts)
            finally:
                # Stopped early (an error, a cancellation): the batch being parsed is let
                # finish, so that nothing reads the file or the stories after this returns.
                stop = True
                room.release()  # a producer waiting for room goes on, and sees the stop
                await asyncio.wait([producer])
        changed = _version(os.fstat(fh.fileno())) != read_from or _changed(Path(path), read_from)
    return ImportSummary(lines, imported, duplicates, tuple(bad), tuple(renamed), changed,
                         bad_count)


# The interpreter's switch interval while an import runs (Python's default is 5 ms). Parsing
# (one thread) and writing (the database's) each hold the interpreter lock in turn; the writer
# lets it go for every statement SQLite runs, and waited up to the whole interval to get it
# back while parsing held it: a batch's dozen statements cost it up to 60 ms of waiting, and
# writes fell behind. Measured (100,000 lines, 2 cores): 4,793 articles/s at 5 ms, 5,090 at 1
# ms, 5,745 at 0.5 ms, 5,621 at 0.2 ms (more switches cost more CPU time below that).
SWITCH_INTERVAL = 0.0005
_switch_lock = threading.Lock()
_switch_depth = 0
_switch_before = 0.0


@contextmanager
def _switching(interval: float) -> Iterator[None]:
    """``sys.setswitchinterval(interval)`` inside the block (when shorter than the one set),
    the one before restored when the last of the blocks running at once ends (unless someone
    else changed it meanwhile)."""
    global _switch_depth, _switch_before
    with _switch_lock:
        if _switch_depth == 0:
            _switch_before = sys.getswitchinterval()
            if interval < _switch_before:
                sys.setswitchinterval(interval)
        _switch_depth += 1
    try:
        yield
    finally:
        with _switch_lock:
            _switch_depth -= 1
            if _switch_depth == 0 and abs(sys.getswitchinterval()
                                          - min(interval, _switch_before)) < 1e-7:
                sys.setswitchinterval(_switch_before)


def _version(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _changed(path: Path, read_from: tuple[int, int, int, int]) -> bool:
    """Whether ``path`` now names another file, or the same one changed, than the one read."""
    try:
        return _version(os.stat(path)) != read_from
    except OSError:  # removed (or renamed away) while it was read: what was read is whole
        return False
