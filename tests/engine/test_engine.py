"""The Engine facade: one call per user action, every bad input refused with the key it names,
and lookups that answer within their time budget."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import SEEDS
from watchers.config import parse_config
from watchers.engine import Engine, open_engine
from watchers.errors import ConfigError, FetchBlockedError, NewswatchError, StoreError
from watchers.models import Article
from watchers.rules.lookup import index_terms
from watchers.store.base import ArticleRecord


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    cfg = parse_config({
        "storage": {"path": "nw.db"},
        "channels": {"alerts": 1, "desk": 2},
        "sources": [{"name": "seeds", "type": "folder", "path": "seeds", "settle": 0}],
        "rules": [{"name": "troops", "query": "troops OR soldiers"}],
    }, base_dir=tmp_path)
    async with open_engine(cfg, start=False) as e:
        await e.run_once()
        yield e


@pytest.mark.parametrize("fields, key", [
    ({"name": "deep", "query": "(" * 200 + "troops" + ")" * 200}, "query"),
    ({"name": "near", "query": "troops NEAR/² border"}, "query"),
    ({"name": "big", "query": "troops NEAR/" + "9" * 5000 + " border"}, "query"),
    ({"name": "bang", "query": "!troops"}, "query"),
    ({"name": "bad name!", "query": "troops"}, "name"),
    ({"name": "x", "query": "troops", "severity": "loud"}, "severity"),
    ({"name": "x", "query": "troops", "channel": "nowhere"}, "channel"),
    ({"name": "troops", "query": "tanks"}, "name"),
])
async def test_a_bad_rule_is_refused_with_its_key_and_never_stored(
        engine: Engine, fields: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        await engine.add_rule(fields, created_by="1")
    assert err.value.issues[0].path == key
    assert await engine.store.list_rules() == []
    assert engine.rule_names() == ["troops"]
    # and the next good rule still goes in
    added = await engine.add_rule({"name": "tanks", "query": "tanks", "channel": "desk"})
    assert added.origin == "store" and "tanks" in engine.rule_names()
    assert [r.name for r in await engine.store.list_rules()] == ["tanks"]


async def test_a_refused_replacement_leaves_the_running_rule_as_it_was(engine: Engine) -> None:
    await engine.add_rule({"name": "mine", "query": "tanks"})
    with pytest.raises(ConfigError) as err:
        await engine.add_rule({"name": "mine", "query": "(" * 200 + "tanks" + ")" * 200})
    assert err.value.issues[0].path == "query"
    assert engine.rule_names() == ["mine", "troops"]
    assert {r.name: r.query for r in engine.watch.rules}["mine"] == "tanks"

@pytest.mark.parametrize(("url", "refused"), [
    ("http://127.0.0.1/feed", "refused URL"),
    # not a string: refused as such (the config is strict), before any URL check
    (b"http://10.0.0.1/feed", "url: expected a string"),
])
async def test_a_feed_at_a_private_address_is_refused_and_never_stored(
        engine: Engine, url: str | bytes, refused: str) -> None:
    with pytest.raises((FetchBlockedError, ConfigError), match=refused):
        await engine.add_source({"name": "inside", "url": url})
    assert engine.source_names() == ["seeds"]
    assert await engine.store.list_sources() == []

async def test_an_added_source_cancelled_part_way_is_either_running_and_stored_or_neither(
        engine: Engine) -> None:
    """A command cancelled between starting a feed and storing it left the feed running but
    unstored: adding it again was refused as existing, and a restart dropped it."""
    feed = {"name": "wire", "url": "http://93.184.216.34/feed.xml", "every": "1h"}
    for steps in range(1, 12):
        for call in (lambda: engine.add_source(dict(feed)),
                     lambda: engine.remove_source("wire")):
            task = asyncio.ensure_future(call())
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            stored = [s.name for s in await engine.store.list_sources()]
            assert ("wire" in engine.source_names()) == ("wire" in stored), f"{steps} steps"
        await engine.remove_source("wire")
    view = await engine.add_source(dict(feed))
    assert view.name == "wire" and [s.name for s in await engine.store.list_sources()] == ["wire"]


async def test_a_rule_added_and_cancelled_part_way_runs_only_if_it_is_stored(
        engine: Engine) -> None:
    """Cancelled between taking the rule and storing it, the rule fired until the next
    restart, which dropped it without a word."""
    for steps in range(1, 10):
        task = asyncio.ensure_future(engine.add_rule({"name": f"r{steps}", "query": "tanks"}))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        stored = {r.name for r in await engine.store.list_rules()}
        assert (f"r{steps}" in engine.rule_names()) == (f"r{steps}" in stored), f"{steps} steps"


async def test_a_rule_or_source_the_store_refuses_does_not_run(
        engine: Engine, tmp_path: Path) -> None:
    """A write the database refused left the rule firing (and the feed polled) though the
    user was told it failed; the next restart dropped it."""
    with sqlite3.connect(tmp_path / "nw.db") as con:
        for table in ("rules", "sources"):
            con.execute(f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
                        "BEGIN SELECT RAISE(ABORT, 'the disk says no'); END")
    with pytest.raises(StoreError, match="the disk says no"):
        await engine.add_rule({"name": "tanks", "query": "tanks"})
    assert engine.rule_names() == ["troops"]
    with pytest.raises(StoreError, match="the disk says no"):
        await engine.add_source({"name": "wire", "url": "http://93.184.216.34/feed.xml"})
    assert engine.source_names() == ["seeds"]


async def test_a_lookup_answers_within_its_budget_and_says_it_was_cut_short(
        engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "seeds"
    for i in range(200):
        (folder / f"a{i:03d}.txt").write_text(f"Dispatch {i}\n" + "a" * 3000 + "!\n")
    await engine.run_once()
    found = await engine.search("/(a|aa)+(b|bb)+$/", budget=0.5, limit=20)
    assert found.truncated and found.hits == []
    assert 0 < found.scanned < 205
    # an ordinary lookup is not cut short
    troops = await engine.search("troops")
    assert not troops.truncated and len(troops.hits) == 3


async def test_an_unknown_source_is_named(engine: Engine) -> None:
    with pytest.raises(NewswatchError, match="no source named 'bbc'; known: seeds"):
        await engine.search("troops", source="bbc")


async def test_an_unknown_source_among_many_gets_the_closest_not_every_name(
        engine: Engine) -> None:
    """Every known name was listed on one line (250 of them in a store that had followed many
    feeds), and the names were read by counting every source's articles."""
    await engine.store.record_many([ArticleRecord(
        Article(title=f"Wire story {i}", text="troops", source=f"wire-{i:02d}"), [], [],
        index_terms(f"Wire story {i}", "troops")) for i in range(30)])
    with pytest.raises(NewswatchError) as caught:
        await engine.search("troops", source="wire-7")
    assert str(caught.value) == ("no source named 'wire-7'; did you mean wire-27 or wire-17 "
                                 "or wire-07? (31 known)")
    with pytest.raises(NewswatchError, match=r"^no source named 'zzz' \(31 known\)$"):
        await engine.search("troops", source="zzz")
    assert (await engine.search("troops", source="wire-07")).hits


async def test_a_regex_rule_over_budget_is_counted_and_shown(engine: Engine,
                                                            tmp_path: Path) -> None:
    await engine.add_rule({"name": "slow", "query": "/(a|aa)+(b|bb)+$/"})
    (tmp_path / "seeds" / "aaa.txt").write_text("Aaa\n" + "a" * 5000 + "!\n")
    await engine.run_once()
    views = {v.rule.name: v for v in await engine.rules()}
    assert views["slow"].over_budget == 1 and views["troops"].over_budget == 0
    assert await engine.count_articles() == 6  # the article itself was stored
