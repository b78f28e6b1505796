"""Changes of the running rules, sources and routes made at the same time (two admins, a
gateway event during a command, another process's change noticed meanwhile) each take
effect: what runs is what is stored, whatever the interleaving. Real parts: a SQLite file, a
local feed server, the engine's own services."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.feed_server import FeedServer, Route, rss
from watchers.config import Config, parse_config
from watchers.engine import Engine, open_engine
from watchers.errors import StoreError


def config(tmp_path: Path) -> Config:
    (tmp_path / "seeds").mkdir(exist_ok=True)
    return parse_config({
        "storage": {"path": "nw.db"},
        "fetch": {"allow_private": ["127.0.0.1/32"]},
        "sources": [{"name": "seeds", "type": "folder", "path": "seeds", "settle": 0}],
        "rules": [{"name": "any", "query": "troops"}],
    }, base_dir=tmp_path)


async def later(steps: int, call: Callable[[], Awaitable[Any]]) -> Any:
    for _ in range(steps):
        await asyncio.sleep(0)
    return await call()


async def agree(engine: Engine) -> None:
    """What runs is what the config and the store hold."""
    stored_rules = {r.key for r in await engine.store.list_rules()}
    assert set(engine.rule_names()) == {"any"} | stored_rules
    stored_sources = {s.name for s in await engine.store.list_sources()}
    assert set(engine.source_names()) == {"seeds"} | stored_sources


@pytest.mark.parametrize("other", ["reload_rules", "remove_rule", "reload", "left"])
async def test_a_rule_added_while_another_change_runs_is_running_and_stored(
        tmp_path: Path, other: str) -> None:
    """Each change read the stored rules, waited, then replaced the running ones: a rule added
    meanwhile was stored (and reported added) but never ran until a restart."""
    async with open_engine(config(tmp_path), start=False) as engine:
        changes: dict[str, Callable[[int], Awaitable[Any]]] = {
            "reload_rules": lambda _: engine.reload_rules(),
            "remove_rule": lambda steps: engine.remove_rule(f"old{steps}"),
            "reload": lambda _: engine.reload(),
            "left": lambda steps: engine.left(424242 + steps)}  # a server removed the bot
        for steps in range(0, 60, 2):
            name = f"grain{steps}"
            await engine.add_rule({"name": f"old{steps}", "query": "tanks"})
            await asyncio.wait_for(asyncio.gather(
                changes[other](steps),
                later(steps, functools.partial(engine.add_rule,
                                               {"name": name, "query": "grain"}))), 30)
            assert name in engine.rule_names(), f"{other}, {steps} steps"
            await agree(engine)


async def test_a_source_added_while_the_sources_are_reloaded_is_polled(tmp_path: Path) -> None:
    async with FeedServer() as feeds, open_engine(config(tmp_path), start=False) as engine:
        feeds.set("/wire", Route(body=rss(("g1", "Troops gather near Kharkiv"))))
        for steps in range(6):
            name = f"wire{steps}"
            await asyncio.wait_for(asyncio.gather(
                engine.reload(("sources",)),
                later(steps, functools.partial(engine.add_source,
                                               {"name": name, "url": feeds.url(f"/wire?{name}")}))),
                30)
            assert name in engine.source_names(), f"{steps} steps"
            await agree(engine)


async def test_a_source_removed_while_it_is_added_stays_removed(tmp_path: Path) -> None:
    """On a started engine the add waits for its first poll plan before storing: the removal
    deleted a row not yet written, and the add then wrote it, so a restart revived it."""
    async with FeedServer() as feeds:
        feeds.set("/wire", Route(body=rss(("g1", "Troops gather near Kharkiv"))))
        async with open_engine(config(tmp_path)) as engine:
            added = asyncio.ensure_future(engine.add_source({"name": "wire",
                                                             "url": feeds.url("/wire")}))
            for _ in range(10_000):  # until the feed runs, not yet stored
                if "wire" in engine.source_names() or added.done():
                    break
                await asyncio.sleep(0)
            removed = await asyncio.wait_for(engine.remove_source("wire"), 30)
            await asyncio.wait_for(added, 30)
            assert removed
            await agree(engine)
            assert "wire" not in engine.source_names()
        async with open_engine(config(tmp_path), start=False) as engine:
            assert engine.source_names() == ["seeds"]


async def test_a_rule_the_store_refuses_takes_back_only_itself(tmp_path: Path) -> None:
    """The refused rule's roll-back restored the rules as they were before it, dropping a rule
    added meanwhile (stored, reported added, not running)."""
    async with open_engine(config(tmp_path), start=False) as engine:
        with sqlite3.connect(tmp_path / "nw.db") as con:
            con.execute("CREATE TRIGGER refuse BEFORE INSERT ON rules WHEN NEW.name = 'bad' "
                        "BEGIN SELECT RAISE(ABORT, 'the disk says no'); END")
        bad, good = await asyncio.gather(
            engine.add_rule({"name": "bad", "query": "tanks"}),
            engine.add_rule({"name": "good", "query": "grain"}), return_exceptions=True)
        assert isinstance(bad, StoreError)
        assert not isinstance(good, BaseException)
        assert sorted(engine.rule_names()) == ["any", "good"]
        await agree(engine)


async def test_a_source_added_again_after_its_removal_starts_with_a_baseline(
        tmp_path: Path) -> None:
    """Its state stayed under its name: added again, it was no new source (no baseline), and
    what the feed published while it was removed alerted at once; a pause came back too."""
    from tests.fakes.sinks import RecordingSink

    sink = RecordingSink()
    async with FeedServer() as feeds, open_engine(config(tmp_path), start=False,
                                                  default_sink=sink) as engine:
        feeds.set("/wire", Route(body=rss(("g1", "Troops gather near Kharkiv"))))
        await engine.add_source({"name": "wire", "url": feeds.url("/wire")})
        await engine.run_once()  # the first poll: a baseline
        assert await engine.remove_source("wire")
        feeds.set("/wire", Route(body=rss(("g1", "Troops gather near Kharkiv"),
                                          *((f"n{i}", f"Troops move {i}") for i in range(4)))))
        view = await engine.add_source({"name": "wire", "url": feeds.url("/wire")})
        assert (view.state.polls, view.state.last_success, view.state.paused) == (0, None, False)
        (report,) = [r for r in await engine.run_once() if r.source == "wire"]
        assert report.baseline
        await engine.delivery.drain()
        assert [a.article.title for a in sink.alerts] == []
        # and afterwards it alerts what is new, as any source does
        feeds.set("/wire", Route(body=rss(("n9", "Troops cross the river"))))
        await engine.run_once()
        await engine.delivery.drain()
        assert [a.article.title for a in sink.alerts] == ["Troops cross the river"]
