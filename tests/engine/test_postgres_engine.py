"""The whole engine on PostgreSQL: ``[storage] url`` (or ``env:VAR``) selects it, the seeds are
watched, matched, delivered and looked up exactly as on SQLite, and everything is there after a
restart. The URL is checked when the config is read; an ``env:`` variable that is unset names
itself. A throwaway cluster from tests/pg.py; no mocks."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SEEDS
from tests.fakes.sinks import RecordingSink
from watchers.config import Config, StorageConfig, parse_config
from watchers.engine import open_engine
from watchers.errors import ConfigError
from watchers.store import PostgresStore, SqliteStore


def config(tmp_path: Path, storage: dict[str, Any]) -> Config:
    return parse_config({
        "storage": storage,
        "sources": [{"name": "seeds", "type": "folder", "path": "seeds", "settle": 0}],
        "rules": [{"name": "troops", "query": "troops OR soldiers"},
                  {"name": "kyiv", "query": "kyiv~"}],
    }, base_dir=tmp_path)


async def run_seeds(cfg: Config) -> tuple[list[tuple[str, str]], list[str], str]:
    sink = RecordingSink()
    async with open_engine(cfg, start=False, default_sink=sink) as engine:
        await engine.run_once()
        found = await engine.search("troops")
        return (sorted((a.route, a.article.id) for a in sink.alerts),
                sorted(h.article.id for h in found.hits), type(engine.store).__name__)


async def test_the_engine_on_postgresql_does_what_it_does_on_sqlite(
        tmp_path: Path, pg_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    alerts_lite, found_lite, kind = await run_seeds(config(tmp_path, {"path": "nw.db"}))
    assert kind == SqliteStore.__name__ and alerts_lite and found_lite
    monkeypatch.setenv("NEWSWATCH_TEST_DB", pg_database)
    pg = config(tmp_path, {"url": "env:NEWSWATCH_TEST_DB"})
    alerts_pg, found_pg, kind = await run_seeds(pg)
    assert kind == PostgresStore.__name__
    assert (alerts_pg, found_pg) == (alerts_lite, found_lite)
    # a restart finds everything stored: nothing new, nothing alerted twice
    sink = RecordingSink()
    async with open_engine(pg, start=False, default_sink=sink) as engine:
        await engine.run_once()
        assert sink.alerts == []
        assert await engine.count_articles() == len(list((tmp_path / "seeds").iterdir()))
        assert "postgresql://" in engine.database and "@" not in engine.database


def test_the_storage_url_is_checked_when_the_config_is_read(tmp_path: Path) -> None:
    (tmp_path / "seeds").mkdir()  # the config's only problem is its URL
    for bad, why in (("mysql://x/y", "expected a 'postgresql://…' URL or 'env:VAR'"),
                     ("env:1BAD", "'env:1BAD' is not 'env:VAR' with a variable name")):
        with pytest.raises(ConfigError) as err:
            config(tmp_path, {"url": bad})
        assert [(i.path, i.message) for i in err.value.issues] == [("storage.url", why)]
    cfg = StorageConfig(url="env:NW_DB")
    with pytest.raises(ConfigError, match=r"\$NW_DB is not set"):
        cfg.target(Path, env={})
    with pytest.raises(ConfigError, match="does not hold a 'postgresql://…' URL"):
        cfg.target(Path, env={"NW_DB": "newswatch.db"})
    assert cfg.target(Path, env={"NW_DB": "postgresql://h/db"}) == "postgresql://h/db"
    assert StorageConfig(path="a.db").target(lambda p: tmp_path / p) == str(tmp_path / "a.db")
