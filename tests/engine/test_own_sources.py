"""A source an embedder runs with a poller of its own (``engine.watch.add_source(config,
source)``, as docs/library.md shows) stays running when the engine reads its sources again
(``reload``: another process's change, a session back after an outage). It is neither the
config file's nor the store's, and a reload removed it (on a shared store, retired it) without
a word. Through the real engine and SQLite file."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from tests.fakes.sinks import RecordingSink
from watchers.config import FolderSourceConfig, parse_config
from watchers.engine import open_engine
from watchers.models import Article
from watchers.sources.base import Poll


class Mine:
    """An embedder's own source."""

    name = "mine"

    def __init__(self) -> None:
        self.polls = 0

    async def poll(self, cursor: Mapping[str, str]) -> Poll:
        self.polls += 1
        return Poll([Article(source="mine", guid=f"g{self.polls}", title="Troops move",
                             text="Troops move north.")])

    async def aclose(self) -> None:
        pass


async def test_an_embedders_own_source_outlives_a_reload_of_the_sources(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    cfg = parse_config({"storage": {"path": "nw.db"},
                        "sources": [{"name": "inbox", "type": "folder", "path": "inbox"}],
                        "rules": [{"name": "troops", "query": "troops"}]}, base_dir=tmp_path)
    mine = Mine()
    async with open_engine(cfg, start=False, default_sink=RecordingSink()) as engine:
        await engine.watch.add_source(FolderSourceConfig(
            name="mine", type="folder", path=str(tmp_path), every=timedelta(minutes=1)), mine)
        await engine.reload(["sources"])
        assert set(engine.watch.source_names()) == {"inbox", "mine"}
        await engine.reload()
        assert set(engine.watch.source_names()) == {"inbox", "mine"}
        reports = {r.source: r for r in await engine.run_once()}
        assert reports["mine"].new == 1 and mine.polls == 1
