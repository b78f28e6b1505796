"""The Source protocol: what the WatchService needs from anything it polls."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from watchers.models import Article

__all__ = ["Poll", "Source"]


@dataclass(frozen=True)
class Poll:
    """What one poll of a source returned.

    ``articles`` are the items seen this time (new or not: the store decides). ``not_modified`` is
    true when the source said nothing changed (HTTP 304). ``cursor`` is opaque state the service
    persists and hands back on the next poll (ETag, Last-Modified, file mtimes …).
    """

    articles: list[Article]
    not_modified: bool = False
    cursor: Mapping[str, str] = field(default_factory=dict)


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
