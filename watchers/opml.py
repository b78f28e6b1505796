"""OPML import and export of feed sources.

:func:`parse_opml` reads OPML 1.0/2.0 (as feed readers and MonitoRSS export it) into a flat list
of feeds; :func:`write_opml` / :func:`export_opml` write OPML 2.0; :func:`import_opml` adds a
parsed file's feeds to a running engine through :meth:`Engine.add_source`, the very path
``/sources add`` takes, so every URL meets the same guard (scheme, address ranges) and the same
validation.

Invariants:
- Parsing never expands an entity and never reads a DTD: a document with a ``<!DOCTYPE`` or any
  entity declaration is refused whole (OPML needs neither; refusing them is what defeats
  "billion laughs" and external-entity reads). Input over :data:`MAX_BYTES` is refused before it
  is parsed, and a file with more than :data:`MAX_ENTRIES` feeds is refused whole.
- Parsing is streaming and iterative (expat callbacks, no recursion), so deep folder nesting
  costs no stack; folders are flattened, each ``outline`` with an ``xmlUrl`` is one feed.
- A whole-file problem raises :class:`OpmlError`; a problem with one feed (bad or refused URL,
  duplicate) is reported for that entry in :class:`OpmlReport` and the others still go in.
- Import never replaces or renames an existing source: a feed whose URL is already watched (or
  repeats an earlier entry of the same file) is skipped, naming which; a derived name that is
  taken gets a numeric suffix.
- A feed's outlet (the config's ``outlet`` key: who publishes it, which a rule's
  ``min_sources`` counts) travels as an ``outlet`` attribute of its ``<outline>`` (OPML 2.0
  allows attributes of one's own): export writes it for a source that sets one, import sets it
  on the source, validated as the config key is (a bad one refuses the entry, saying why).
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit
from xml.parsers import expat

from watchers.errors import ConfigError, NewswatchError

# As /sources add allows; longer URLs would also make every report line that quotes one huge.
from watchers.sources.feed import MAX_URL
from watchers.urls import feed_url_key

if TYPE_CHECKING:
    from watchers.engine import Engine

__all__ = [
    "MAX_BYTES",
    "MAX_ENTRIES",
    "MAX_FOLDERS",
    "MAX_URL",
    "OpmlDocument",
    "OpmlEntry",
    "OpmlError",
    "OpmlOutcome",
    "OpmlReport",
    "export_opml",
    "import_opml",
    "parse_opml",
    "source_name",
    "write_opml",
]

#: Larger than any real subscription list (a 1,000-feed OPML is ~200 KB); bigger input is refused
#: before parsing.
MAX_BYTES = 5 * 1024 * 1024
#: Feeds one file may add; each becomes a polled source, so a huge list is a mistake or an attack.
MAX_ENTRIES = 1000
_NAME_MAX = 64
_TEXT_MAX = 200  # longest title kept from a file (names are cut to 64 anyway)
# The innermost folders kept for a feed: each feed held the titles of every folder around it,
# and 1,000 feeds inside 100,000 nested folders (2.9 MB of OPML) took 1.9 GB.
MAX_FOLDERS = 16


class OpmlError(NewswatchError):
    """The input as a whole is not a usable OPML file (not XML, a DTD, too big, no feeds)."""


@dataclass(frozen=True)
class OpmlEntry:
    """One feed of a file: where it was (``line``), its ``title`` (``title``, else ``text``; may
    be empty), its ``url`` (``xmlUrl``, stripped), the titles of the folders it sat in,
    outermost first (the innermost :data:`MAX_FOLDERS` of them), and its ``outlet`` attribute
    as written (None without one; import validates it as the config key)."""

    line: int
    title: str
    url: str
    folders: tuple[str, ...] = ()
    outlet: str | None = None

    @property
    def label(self) -> str:
        """How a report names the entry: its title, else its URL, with its line."""
        return f"{self.title or self.url} (line {self.line})"


@dataclass(frozen=True)
class OpmlDocument:
    title: str
    entries: list[OpmlEntry]


Status = Literal["added", "skipped", "refused"]


@dataclass(frozen=True)
class OpmlOutcome:
    """What import did with one entry. ``name``: the source added, or for a skip the source
    (or earlier entry) it duplicates. ``reason``: why skipped or refused; for an added entry a
    note such as a renamed clash, else empty."""

    entry: OpmlEntry
    status: Status
    name: str | None = None
    reason: str = ""


@dataclass
class OpmlReport:
    """Every entry of an imported file, in file order, with what was done to it."""

    outcomes: list[OpmlOutcome] = field(default_factory=list)

    def of(self, status: Status) -> list[OpmlOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def added(self) -> list[OpmlOutcome]:
        return self.of("added")

    @property
    def skipped(self) -> list[OpmlOutcome]:
        return self.of("skipped")

    @property
    def refused(self) -> list[OpmlOutcome]:
        return self.of("refused")

    def summary(self) -> str:
        return (f"{len(self.outcomes)} feed(s): {len(self.added)} added, "
                f"{len(self.skipped)} skipped, {len(self.refused)} refused")


# ----------------------------------------------------------------------------- parse


def _clean(text: str | None, limit: int = _TEXT_MAX) -> str:
    """Collapse whitespace and drop control/format characters (bidi overrides, NULs) from a
    title, which ends up in Discord messages and terminal lines."""
    if not text:
        return ""
    kept = "".join(c if unicodedata.category(c)[0] != "C" else " " for c in text)
    return " ".join(kept.split())[:limit]


def _local(tag: str) -> str:
    """An element name without its prefix: OPML has no namespace of its own, but some writers
    put one on anyway."""
    return tag.rsplit(":", 1)[-1]


class _Refused(Exception):
    pass


_UTF32 = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
          (b"<\x00\x00\x00", "utf-32-le"), (b"\x00\x00\x00<", "utf-32-be"))
_DECLARED = re.compile(r"""^(\s*<\?xml\b[^>]*?)\s+encoding\s*=\s*(["'])[^"']*\2""")
# The characters an XML declaration (and the space before it) is looked for in.
_DECLARATION_SPAN = 1_000


def _from_utf32(data: bytes) -> bytes:
    """A UTF-32 document as UTF-8 (its declaration's encoding dropped): the XML parser reads
    no UTF-32, and such a file was "not XML" without a word of why."""
    codec = next((c for bom, c in _UTF32 if data.startswith(bom)), None)
    if codec is None:
        return data
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        raise OpmlError(f"not XML: the file starts as UTF-32 but byte {exc.start} is not "
                        "UTF-32") from None
    text = text.lstrip("\ufeff")
    # The declaration, read up to its end: over the whole text the pattern backtracked over a
    # run of spaces from each of its positions (a megabyte of them after "<?xml", a while).
    end = text.find(">", 0, _DECLARATION_SPAN) + 1
    return (_DECLARED.sub(r"\1", text[:end], count=1) + text[end:]).encode("utf-8")


def parse_opml(data: bytes) -> OpmlDocument:
    """The feeds of an OPML document, folders flattened, in document order.

    Raises :class:`OpmlError` naming what is wrong when the input is too big, not XML, has a
    DTD or entity declaration, is not ``<opml>``, or lists no feed (or too many).
    """
    if len(data) > MAX_BYTES:
        raise OpmlError(f"the file is over {MAX_BYTES // (1024 * 1024)} MiB; an OPML import "
                        f"takes at most {MAX_BYTES // (1024 * 1024)} MiB")
    if not data.strip():
        raise OpmlError("the file is empty")
    data = _from_utf32(data)
    parser = expat.ParserCreate()
    entries: list[OpmlEntry] = []
    stack: list[str] = []  # element names, root first
    folders: list[tuple[int, str]] = []  # (depth, title) of open outlines without xmlUrl
    head_title: list[str] = []
    in_title = [False]

    def refuse_dtd(*_: Any) -> None:
        raise _Refused("it declares a DTD (<!DOCTYPE>); OPML needs none, and DTDs can expand "
                       "entities without bound, so the file is refused")

    def refuse_entity(*_: Any) -> None:
        raise _Refused("it declares an entity; entity declarations are refused")

    def refuse_external(*_: Any) -> int:
        raise _Refused("it refers to an external entity; external entities are refused")

    def start(name: str, attrs: dict[str, str]) -> None:
        local = _local(name)
        if not stack and local != "opml":
            raise _Refused(f"the root element is <{name[:40]}>, not <opml>")
        stack.append(local)
        if local == "title" and stack[-2:-1] == ["head"]:
            in_title[0] = True
        if local != "outline":
            return
        url = attrs.get("xmlUrl", attrs.get("xmlurl"))
        title = _clean(attrs.get("title") or attrs.get("text"))
        if url is None:
            folders.append((len(stack), title))
            return
        if len(entries) >= MAX_ENTRIES:
            raise _Refused(f"it lists more than {MAX_ENTRIES:,} feeds; import at most "
                           f"{MAX_ENTRIES:,} at once")
        outlet = attrs.get("outlet")
        entries.append(OpmlEntry(line=parser.CurrentLineNumber, title=title, url=url.strip(),
                                 folders=tuple(t for _, t in folders[-MAX_FOLDERS:]),
                                 # kept as written, for import to judge (a longer one than
                                 # an outlet may be is refused all the same)
                                 outlet=None if outlet is None else outlet[:_TEXT_MAX]))

    def end(name: str) -> None:
        if folders and folders[-1][0] == len(stack):
            folders.pop()
        if _local(name) == "title":
            in_title[0] = False
        stack.pop()

    def text(chunk: str) -> None:
        if in_title[0] and sum(map(len, head_title)) < _TEXT_MAX:
            head_title.append(chunk)

    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_entity
    parser.UnparsedEntityDeclHandler = refuse_entity
    parser.ExternalEntityRefHandler = refuse_external
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(data, True)
    except _Refused as exc:
        raise OpmlError(f"not a usable OPML file: {exc}") from None
    except expat.ExpatError as exc:
        raise OpmlError(f"not XML: {expat.ErrorString(exc.code)} at line {exc.lineno}, "
                        f"column {exc.offset + 1}") from None
    except LookupError as exc:  # <?xml encoding="bogus-9"?>: the codec is looked up
        raise OpmlError(f"not a usable OPML file: {exc}") from None
    except ValueError as exc:  # <?xml encoding="EUC-KR"?>: expat reads no multi-byte codec
        raise OpmlError(f"not a usable OPML file: {exc} (save it as UTF-8)") from None
    if not entries:
        raise OpmlError("no feeds: the file has no <outline> with an xmlUrl attribute")
    return OpmlDocument(title=_clean("".join(head_title)), entries=entries)


# ----------------------------------------------------------------------------- write


class _FeedLike(Protocol):
    """What export needs of a source (an :class:`~watchers.engine.SourceView` has it, and its
    ``outlet``, which export writes when there is one)."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def where(self) -> str: ...


def write_opml(feeds: Iterable[tuple[str, str] | tuple[str, str, str | None]], *,
               title: str = "newswatch sources") -> bytes:
    """An OPML 2.0 document listing ``(name, url)`` or ``(name, url, outlet)`` tuples as
    ``type="rss"`` outlines, UTF-8; an outlet (when not None) as the outline's ``outlet``
    attribute."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    body = ET.SubElement(root, "body")
    for feed in feeds:
        name, url = feed[0], feed[1]
        outline = ET.SubElement(body, "outline", type="rss", text=name, title=name, xmlUrl=url)
        outlet = feed[2] if len(feed) > 2 else None
        if outlet is not None:
            outline.set("outlet", outlet)
    ET.indent(root)
    out: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return out + b"\n"


def export_opml(views: Sequence[_FeedLike], *, title: str = "newswatch sources") -> bytes:
    """The feeds among ``views`` (``await engine.sources()``) as OPML 2.0, sorted by name,
    each with the outlet it sets (if any). Folder sources have no URL a feed reader could
    follow, so they are left out."""
    # (A caller's own views without an outlet export as before.)
    feeds = sorted(((v.name, v.where, getattr(v, "outlet", None)) for v in views
                    if v.kind == "feed"), key=lambda f: (f[0], f[1]))
    return write_opml(feeds, title=title)


# ----------------------------------------------------------------------------- import


def source_name(title: str, url: str = "") -> str:
    """A source name (1–64 of letters, digits, '.', '_', '-', as ``/sources add`` demands) for a
    feed: its title lowercased with every other run of characters made one '-', else the URL's
    host, else ``feed``."""
    for candidate in (title, _host(url)):
        slug = re.sub(r"[^\w.]+", "-", unicodedata.normalize("NFKC", candidate).lower())
        slug = re.sub(r"-{2,}", "-", slug).strip("-._")[:_NAME_MAX].rstrip("-._")
        if slug:
            return slug
    return "feed"


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def _unique(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    n = 2
    while True:
        suffix = f"-{n}"
        name = base[:_NAME_MAX - len(suffix)] + suffix
        if name not in taken:
            return name
        n += 1


def _url_key(url: str) -> str:
    """How two URLs are compared for duplicates: as the engine compares a server's feed with
    the operator's (:func:`~watchers.urls.feed_url_key`: host case, default port, tracking
    parameters, a trailing slash, http or https)."""
    return feed_url_key(url)



async def import_opml(engine: Engine, data: bytes | OpmlDocument, *,
                      created_by: str | None = None, every: timedelta = timedelta(minutes=10),
                      guild: int | None = None) -> OpmlReport:
    """Add every feed of the OPML ``data`` (or of the document already parsed from it) to
    ``engine`` as ``/sources add`` would (polled ``every``; with ``guild``, followed by that
    server), and say per entry what happened. Raises :class:`OpmlError` (nothing added) when
    the file as a whole is unusable."""
    # A 5 MiB file takes about a second to parse: off the event loop, which also serves Discord.
    document = (data if isinstance(data, OpmlDocument)
                else await asyncio.to_thread(parse_opml, data))
    views = await engine.sources(guild)
    taken = {v.name for v in views} | set(engine.source_names(guild))
    by_url: dict[str, str] = {_url_key(v.where): v.name for v in views if v.kind == "feed"}
    in_file: dict[str, OpmlEntry] = {}
    report = OpmlReport()
    for entry in document.entries:
        report.outcomes.append(await _import_one(engine, entry, taken, by_url, in_file,
                                                 created_by=created_by, every=every,
                                                 guild=guild))
    return report


async def _import_one(engine: Engine, entry: OpmlEntry, taken: set[str],
                      by_url: Mapping[str, str], in_file: dict[str, OpmlEntry], *,
                      created_by: str | None, every: timedelta,
                      guild: int | None = None) -> OpmlOutcome:
    if not entry.url:
        return OpmlOutcome(entry, "refused", reason="the xmlUrl is empty")
    if len(entry.url) > MAX_URL:
        return OpmlOutcome(entry, "refused", reason=f"the xmlUrl is {len(entry.url):,} "
                           f"characters; at most {MAX_URL:,}")
    key = _url_key(entry.url)
    if key in by_url:
        return OpmlOutcome(entry, "skipped", name=by_url[key],
                           reason=f"already watched as source '{by_url[key]}'")
    if key in in_file:
        first = in_file[key]
        return OpmlOutcome(entry, "skipped", reason=f"same URL as line {first.line} of this file")
    base = source_name(entry.title, entry.url)
    name = _unique(base, taken)
    model: dict[str, Any] = {"name": name, "type": "feed", "url": entry.url, "every": every}
    if entry.outlet is not None:
        model["outlet"] = entry.outlet  # validated with the rest, as the config key is
    try:
        view = await engine.add_source(model, created_by=created_by, guild=guild)
    except ConfigError as exc:
        # A bad outlet is named as the file's attribute (the URL's problems say what they are).
        return OpmlOutcome(entry, "refused", reason="; ".join(
            f"the outlet attribute: {i.message}" if i.path.rsplit(".", 1)[-1] == "outlet"
            else i.message for i in exc.issues) or str(exc))
    except NewswatchError as exc:
        return OpmlOutcome(entry, "refused", reason=str(exc))
    # Only an added feed stands for its URL: a line refused before it (its URL with a password,
    # say, under the same key) left a good line of the same feed skipped.
    in_file[key] = entry
    taken.add(view.name)
    note = f"name '{base}' was taken" if name != base else ""
    return OpmlOutcome(entry, "added", name=view.name, reason=note)
