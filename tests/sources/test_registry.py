"""The source-type registry: each type's module gives its config model, factory and description,
and the config offers the same models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import watchers.config
from tests.fakes.feed_server import FeedServer, Route
from tests.sources._support import LOOPBACK, Seed, rss_doc
from watchers.config import parse_config
from watchers.sources import (
    SOURCE_TYPES,
    SourceContext,
    build_source,
    describe_source,
    feed,
    folder,
    page,
)
from watchers.sources._http import Fetcher
from watchers.sources.feed import FeedSource
from watchers.sources.folder import FolderSource


def test_every_type_is_one_module_and_the_config_offers_its_model() -> None:
    assert set(SOURCE_TYPES) == {"folder", "feed", "page"}
    for name, module in (("folder", folder), ("feed", feed), ("page", page)):
        kind = SOURCE_TYPES[name]
        assert kind.build is module.build and kind.describe is module.describe
        assert kind.config_model.__module__ == module.__name__
        assert kind.config_model.model_fields["type"].annotation is not None
    assert watchers.config.FolderSourceConfig is folder.FolderSourceConfig
    assert watchers.config.FeedSourceConfig is feed.FeedSourceConfig
    assert watchers.config.PageSourceConfig is page.PageSourceConfig
    assert SOURCE_TYPES["feed"].baseline and not SOURCE_TYPES["folder"].baseline
    assert SOURCE_TYPES["page"].baseline


async def test_build_and_describe_from_the_config(
    tmp_path: Path, server: FeedServer, seeds: list[Seed]
) -> None:
    (tmp_path / "drop").mkdir()
    (tmp_path / "drop" / "a.txt").write_text("Troops move\nNorth.")
    server.set("/feed", Route(body=rss_doc(seeds[:2])))
    cfg = parse_config({
        "fetch": {"allow_private": LOOPBACK},
        "sources": [
            {"type": "folder", "name": "d", "path": "drop", "settle": "10ms",
             "max_file_size": "2KB"},
            {"type": "feed", "name": "f", "url": server.url("/feed")},
        ],
    }, base_dir=tmp_path)
    async with Fetcher(allow_private=LOOPBACK) as fetcher:
        ctx = SourceContext(fetcher=fetcher, resolve=cfg.resolve)
        folder_cfg, feed_cfg = cfg.sources
        assert describe_source(folder_cfg) == "drop"
        assert describe_source(feed_cfg) == server.url("/feed")
        built_folder = build_source(folder_cfg, ctx)
        assert isinstance(built_folder, FolderSource)
        assert built_folder.path == tmp_path / "drop" and built_folder.max_file_size == 2000
        assert [a.title for a in (await built_folder.poll({})).articles] == ["Troops move"]
        built_feed = build_source(feed_cfg, ctx)
        assert isinstance(built_feed, FeedSource)
        assert len((await built_feed.poll({})).articles) == 2
        await built_feed.aclose()
        # The shared fetcher belongs to the caller: closing the source leaves it usable.
        assert len((await build_source(feed_cfg, ctx).poll({})).articles) == 2


def test_an_unknown_type_is_a_clear_error() -> None:
    fields: dict[str, Any] = {"type": "gopher", "name": "g", "url": "gopher://x"}
    odd = feed.FeedSourceConfig.model_construct(**fields)
    with pytest.raises(ValueError, match="unknown source type 'gopher'; expected one of feed"):
        build_source(odd, SourceContext())
