"""Source types: each is one module exporting its config model, ``build`` and ``describe``.

``SOURCE_TYPES`` maps the ``type`` key of a ``[[sources]]`` entry to its module's parts, so
adding a source type is one module and one line here. This package never imports
``watchers.config`` (the config imports the models from here).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from watchers.sources import feed, folder, page
from watchers.sources.base import Poll, Source, SourceConfigBase, SourceContext
from watchers.sources.feed import FeedSourceConfig
from watchers.sources.folder import FolderSourceConfig
from watchers.sources.page import PageSourceConfig

__all__ = [
    "SOURCE_TYPES",
    "FeedSourceConfig",
    "FolderSourceConfig",
    "PageSourceConfig",
    "Poll",
    "Source",
    "SourceConfig",
    "SourceConfigBase",
    "SourceContext",
    "SourceType",
    "build_source",
    "describe_source",
]

SourceConfig = Annotated[FolderSourceConfig | FeedSourceConfig | PageSourceConfig,
                         Field(discriminator="type")]


@dataclass(frozen=True)
class SourceType:
    """One kind of source. ``baseline``: its first poll records what is there without alerting
    (a feed's existing items are old news; a file dropped in a folder is news)."""

    config_model: type[SourceConfigBase]
    build: Callable[[Any, SourceContext], Source]
    describe: Callable[[Any], str]
    baseline: bool


SOURCE_TYPES: dict[str, SourceType] = {
    "folder": SourceType(FolderSourceConfig, folder.build, folder.describe, baseline=False),
    "feed": SourceType(FeedSourceConfig, feed.build, feed.describe, baseline=True),
    "page": SourceType(PageSourceConfig, page.build, page.describe, baseline=True),
}


def _kind(config: SourceConfigBase) -> SourceType:
    kind = getattr(config, "type", None)
    try:
        return SOURCE_TYPES[str(kind)]
    except KeyError:
        known = ", ".join(sorted(SOURCE_TYPES))
        raise ValueError(f"unknown source type {kind!r}; expected one of {known}") from None


def build_source(config: SourceConfigBase, ctx: SourceContext) -> Source:
    """The running source for one validated ``[[sources]]`` entry."""
    return _kind(config).build(config, ctx)


def describe_source(config: SourceConfigBase) -> str:
    """Where a source reads (its URL or folder), as ``/sources list`` shows it."""
    return _kind(config).describe(config)
