"""The cyclic collector held off while a batch is analysed (watchers.collector): off inside
every block, back on after the last one in any thread, never turned on when the application
had it off; a poll analyses its articles with it off and leaves it on, even when the analysis
fails."""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import watchers.service as service_module
from tests.service._harness import Fixed, folder, watch
from tests.service.test_ingest import items
from watchers import collector
from watchers.importer import import_file
from watchers.rules import Rule, RuleSet
from watchers.store import SqliteStore
from watchers.stories import StoryIndex


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    """Each test starts with the collector on and leaves it as it found it."""
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_off_inside_on_after_and_after_an_error() -> None:
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector.paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_nested_blocks_turn_it_on_once_the_outermost_ends() -> None:
    with collector.paused():
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_application_that_turned_it_off_keeps_it_off() -> None:
    gc.disable()
    with collector.paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_overlapping_blocks_in_two_threads() -> None:
    """A enters, B enters, A leaves (still off: B is inside), B leaves (on)."""
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def first() -> None:
        with collector.paused():
            a_in.set()
            b_in.wait(10)
        a_out.set()

    def second() -> None:
        a_in.wait(10)
        with collector.paused():
            b_in.set()
            a_out.wait(10)
            seen["after A left"] = gc.isenabled()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == {"after A left": False}
    assert gc.isenabled()


async def test_a_poll_is_analysed_with_no_collection_and_leaves_the_collector_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """1,500 articles with stories: each keeps its matches, words, signature and story link
    until the poll is written (dozens of objects), which set off young collections every few
    dozen articles. None starts while the batch is analysed."""
    analysing = threading.Event()
    during: list[int] = []
    analysed = service_module.WatchService._analysed

    def spy(self: Any, *args: Any) -> Any:
        analysing.set()
        try:
            return analysed(self, *args)
        finally:
            analysing.clear()

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and analysing.is_set():
            during.append(info["generation"])

    monkeypatch.setattr(service_module.WatchService, "_analysed", spy)
    gc.callbacks.append(seen)
    try:
        async with await SqliteStore.open(tmp_path / "nw.db") as store:
            service = watch(store, stories_mode=lambda route: "edit")
            await service.add_source(folder("flood", tmp_path), Fixed("flood", items(1500)))
            (report,) = await service.run_once()
            assert report.new == 1500 and report.alerts > 0
            assert await store.count_articles() == 1500
    finally:
        gc.callbacks.remove(seen)
    assert during == []
    assert gc.isenabled()


async def test_a_large_poll_runs_no_collection_until_it_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Held off only while the poll was analysed, the collector ran between its analysis and
    its writes (about a ninth of a 3,000-article poll's ingest at 100 rules): none runs from
    the analysis to the last batch written, in any thread."""
    busy = threading.Event()
    during: list[tuple[int, str]] = []
    analysed = service_module.WatchService._analysed

    def spy(self: Any, *args: Any) -> Any:
        busy.set()
        return analysed(self, *args)

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and busy.is_set():
            during.append((info["generation"], threading.current_thread().name))

    monkeypatch.setattr(service_module.WatchService, "_analysed", spy)
    gc.callbacks.append(seen)
    try:
        async with await SqliteStore.open(tmp_path / "nw.db") as store:
            writes = 0
            record_many = store.record_many

            async def written(*args: Any, **kwargs: Any) -> Any:
                nonlocal writes
                out = await record_many(*args, **kwargs)
                writes += 1
                if writes == 3:  # 1,500 articles, 500 a transaction
                    busy.clear()
                return out

            monkeypatch.setattr(store, "record_many", written)
            service = watch(store, stories_mode=lambda route: "edit")
            await service.add_source(folder("flood", tmp_path), Fixed("flood", items(1500)))
            (report,) = await service.run_once()
            assert report.new == 1500 and writes == 3
    finally:
        gc.callbacks.remove(seen)
    assert during == []
    assert gc.isenabled()


async def test_a_failed_analysis_leaves_the_collector_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("the story index broke")

    monkeypatch.setattr(service_module, "join_story", broken)
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, stories_mode=lambda route: "edit")
        await service.add_source(folder("flood", tmp_path), Fixed("flood", items(20)))
        (report,) = await service.run_once()
        assert report.error and "the story index broke" in report.error
        assert await store.count_articles() == 0
    assert gc.isenabled()


async def test_an_import_runs_no_collection_between_its_batches_and_leaves_it_on(
        tmp_path: Path) -> None:
    """The collector was held off only while a batch was prepared: turned on between two, it
    examined the batch's records (kept until written) at once, and the main and database
    threads' collections walked them again with the growing story index. None starts in any
    thread from the import's first batch to its last."""
    history = tmp_path / "h.jsonl"
    history.write_text("".join(
        json.dumps({"id": f"h{i}", "title": f"Troops seen near Kharkiv, report {i}",
                    "text": "Shelling was reported overnight. " * 20,
                    "date": f"2022-02-{1 + i % 20:02d}T{i % 24:02d}:00:00+00:00"}) + "\n"
        for i in range(3000)), encoding="utf-8")
    during: list[tuple[int, str]] = []
    importing = threading.Event()

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and importing.is_set():
            during.append((info["generation"], threading.current_thread().name))

    def progress(done: Any) -> None:
        if done.lines < 3000:  # from the first batch written to the last
            importing.set()
        else:
            importing.clear()

    ruleset = RuleSet([Rule(name="troops", query="troops AND kharkiv~")])
    gc.callbacks.append(seen)
    try:
        async with await SqliteStore.open(tmp_path / "nw.db") as store:
            summary = await import_file(store, history, ruleset=ruleset, batch=100,
                                        on_progress=progress,
                                        stories=StoryIndex(timedelta(hours=48)))
            assert summary.imported == 3000
            assert (await store.rule_match_counts())["troops"] == 3000
    finally:
        gc.callbacks.remove(seen)
    assert during == []
    assert gc.isenabled()
