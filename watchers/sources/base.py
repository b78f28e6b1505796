"""The Source protocol: what the WatchService needs from anything it polls.

Also what every source type shares: the config fields common to all (``SourceConfigBase``), the
context a factory builds a source from (``SourceContext``), ``printable``, which keeps text
from a feed or a file name from forging log lines, and :data:`LEGACY_BYTES`, the codec error
handler that reads text meant as UTF-8 with a few bytes of a legacy encoding in it.

Invariant: a poll fails as a whole only when the source itself cannot be read (no folder, HTTP
error, not a feed). One item that cannot be turned into an Article is left out of
``Poll.articles`` and described in ``Poll.skipped``; the service logs it with the source's name.

This module must not import ``watchers.config`` at module level: the config imports the source
config models, which import this module.
"""

from __future__ import annotations

import codecs
import contextvars
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from watchers.models import Article

if TYPE_CHECKING:
    from watchers.sources._http import Fetcher

__all__ = [
    "ANSWERING",
    "LEGACY_BYTES",
    "Poll",
    "Source",
    "SourceConfigBase",
    "SourceContext",
    "printable",
]

# Whether the source being polled in this task answered its last poll (set by the service):
# its fetches are handed a host's free connection before those of sources that did not (on
# the lean client; aiohttp's connector keeps one queue), so a host's feeds that hang do not
# keep its healthy ones waiting. Outside a poll every fetch counts as answering. Here, not in
# the fetcher's module, so that the service sets it without loading the HTTP clients.
ANSWERING: contextvars.ContextVar[bool] = contextvars.ContextVar("ANSWERING", default=True)


@dataclass(frozen=True)
class Poll:
    """What one poll of a source returned.

    ``articles`` are the items seen this time (new or not: the store decides). ``not_modified`` is
    true when the source said nothing changed (HTTP 304). ``cursor`` is opaque state the service
    persists and hands back on the next poll (ETag, Last-Modified, file mtimes …). ``skipped``
    has one short, log-safe description per item this poll left out because it could not be read
    (``"item 3 (guid 'x'): ValueError: …"``, ``"file 'a.txt': binary"``). ``more`` is true
    when the source has more items ready than this poll read (a folder's files past a poll's
    byte budget): the service polls it again at once rather than at its interval (up to
    ``watchers.service.ONCE_POLLS`` polls in a row, then at its interval).
    """

    articles: list[Article]
    not_modified: bool = False
    cursor: Mapping[str, str] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()
    more: bool = False


@runtime_checkable
class Source(Protocol):
    """Anything that can be polled for articles. Implementations raise SourceError on failure."""

    name: str

    async def poll(self, cursor: Mapping[str, str]) -> Poll:
        """Fetch the current items. ``cursor`` is what the previous Poll returned (or empty)."""
        ...

    async def aclose(self) -> None:
        """Release connections and files."""
        ...


def _as_path(path: str) -> Path:
    return Path(path)


@dataclass(frozen=True)
class SourceContext:
    """What a source factory may need beyond its config.

    ``fetcher`` is the engine's shared HTTP fetcher (None where only folders are built: a feed
    source then creates and owns its own); ``resolve`` turns a path from the config into a real
    path (relative to the config file's folder).
    """

    fetcher: Fetcher | None = None
    resolve: Callable[[str], Path] = _as_path


def _duration(value: Any) -> Any:
    # Imported here: watchers.config imports the source config models, hence this module.
    from watchers.config import parse_duration

    return parse_duration(value)


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class SourceConfigBase(BaseModel):
    """The keys every ``[[sources]]`` entry has; each source type adds its own and a ``type``."""

    # strict, as every config model (see watchers.config._Strict): "no" is not read as false
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str = Field(min_length=1, max_length=64)
    every: Duration = Field(default=timedelta(minutes=5), strict=False)

    @field_validator("name")
    @classmethod
    def _shown_as_written(cls, value: str) -> str:
        # A name is in every log line and listing about its source: a line break forged a
        # line, a direction override reordered what follows it.
        if not value.strip():
            raise ValueError("a source name may not be blank")
        if not value.isprintable():
            raise ValueError("a source name may not hold control, line-break or direction "
                             "characters")
        return value
    # The outlet (publisher) the source's articles come from, as corroboration (a rule's
    # min_sources) counts outlets; None: the site of its URL, or a folder's name (see
    # watchers.outlets). Two feeds of one outlet do not corroborate each other.
    outlet: str | None = Field(default=None, max_length=64)

    @field_validator("outlet")
    @classmethod
    def _outlet_named(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.strip():
            raise ValueError("an outlet may not be blank (leave the key out for the site of "
                             "the source's URL)")
        if not value.isprintable():
            raise ValueError("an outlet may not hold control, line-break or direction "
                             "characters")
        return value
    enabled: bool = True
    route: str | None = None  # where this source's notices go; defaults to [discord].notices
    # At most this many alert messages per route from one poll; the rest are recorded (in
    # /recent, /search) and listed in one summary message, never dropped.
    max_alerts_per_poll: int = Field(default=25, ge=1)
    # Set by the engine, never by a file: "store" for sources added at run time (Discord).
    origin: Literal["config", "store"] = "config"
    created_by: str | None = None
    # Set by the engine: the server (Discord guild) that follows this source; None: every
    # server sees it (the config file's, or added from the command line).
    guild_id: int | None = Field(default=None, gt=0)

    @property
    def key(self) -> str:
        """The stored identity: the name, or ``"<guild id>:<name>"`` for a server's source, so
        two servers can each name a source alike."""
        return self.name if self.guild_id is None else f"{self.guild_id}:{self.name}"


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def declares_body(headers: Iterable[tuple[str, str]]) -> bool:
    """Whether an answer's ``headers`` declare a body (a Content-Length other than 0, or a
    Transfer-Encoding). A 204 or 304 never carries one, but may declare it (a 304 may state the
    length of the feed it stands for); a server that sends the body all the same is told from
    one that does not only by bytes that may come late, so neither's connection is reused."""
    for name, value in headers:
        lowered = name.lower()
        if lowered == "transfer-encoding" or (
            lowered == "content-length" and value.strip() not in ("", "0")
        ):
            return True
    return False


def _legacy_bytes(exc: UnicodeError) -> tuple[str, int]:
    """A codec error handler: the bytes that are not UTF-8 read as Windows-1252 reads them (as
    Latin-1 where it defines none), decoding on from after them — in one pass, however many
    there are."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start:exc.end]
    return "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in bad), exc.end


# ``data.decode("utf-8", errors=LEGACY_BYTES)``: UTF-8, the few bytes that are not UTF-8 read
# as Windows-1252 reads them (in a feed, a page, a folder's file). Read whole as Windows-1252
# for one such byte, every other non-ASCII letter of the text was mojibake.
LEGACY_BYTES = "newswatch-cp1252"
codecs.register_error(LEGACY_BYTES, _legacy_bytes)


def printable(text: str, limit: int = 200) -> str:
    """``text`` safe for one log line: control, format and separator characters (newlines, bidi
    overrides, lone surrogates) are shown as escapes, and it is cut to ``limit`` characters."""
    if len(text) > limit:
        text = text[:limit] + "…"
    if text.isprintable():
        return text
    out = []
    for c in text:
        if c.isprintable():
            out.append(c)
        else:
            out.append(_ESCAPES.get(c) or c.encode("unicode_escape", "backslashreplace").decode())
    return "".join(out)
