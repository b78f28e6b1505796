"""Wrong-way input at the per-server entry points (what a hostile or careless server admin can
send through /sources add, /rules add channel:, /channels set): each is refused with a clear
error naming what was wrong, nothing is stored, and the running sources and routes stay as
they were."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from watchers.config import parse_config
from watchers.engine import Engine, open_engine
from watchers.errors import ConfigError, NewswatchError

A = 111


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    (tmp_path / "seeds").mkdir()
    cfg = parse_config({
        "storage": {"path": "nw.db"},
        "sources": [{"name": "local", "type": "folder", "path": "seeds", "settle": 0}],
        "rules": [{"name": "x", "query": "troops"}],
    }, base_dir=tmp_path)
    async with open_engine(cfg, start=False) as e:
        yield e


async def test_a_servers_source_cannot_take_the_shared_feed_prefix_or_a_huge_url(
        engine: Engine) -> None:
    running = sorted(engine.watch.source_names())
    with pytest.raises(NewswatchError, match="a source name is 1–64 letters"):
        await engine.add_source({"name": "@0123456789ab", "url": "https://example.org/f"},
                                guild=A)
    with pytest.raises((NewswatchError, ConfigError)) as err:
        await engine.add_source({"name": "big", "url": "https://example.org/" + "a" * 100_000},
                                guild=A)
    assert len(str(err.value)) < 1000  # the refusal names the problem, not the input
    assert sorted(engine.watch.source_names()) == running
    assert await engine.store.list_sources() == []


async def test_a_huge_channel_name_and_template_are_cut_or_refused(engine: Engine) -> None:
    key = await engine.add_server_route(A, 42, "n" * 10_000)
    assert len(key) < 120 and engine.route_label(key) == "#" + "n" * 90
    with pytest.raises(ConfigError) as err:
        await engine.configure_server_route(A, key, {"template": "{title}" * 10_000})
    assert "template" in str(err.value) and len(str(err.value)) < 1000
    with pytest.raises(ConfigError, match="max_per_hour"):
        await engine.configure_server_route(A, key, {"max_per_hour": -5})
    route = engine.route(key)
    assert route is not None and route.template is None and route.max_per_hour is None
    assert [r.settings for r in await engine.store.list_server_routes()] == [None]


def test_a_config_files_feed_url_has_the_same_cap() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"sources": [{"name": "big", "type": "feed",
                                   "url": "https://example.org/" + "a" * 5000}],
                      "rules": [{"name": "x", "query": "y"}]})
    assert [i.path for i in err.value.issues] == ["sources[0].url"]
    assert "at most 2000 characters" in str(err.value) and len(str(err.value)) < 500
