"""Lookups and ingest apart: however many expensive lookups run, a newly polled article is
matched and alerted at its usual pace, and a cheap lookup issued among them answers in full
(its budget counts its own work, not its wait behind theirs). Real SQLite files, the real
engine; no timing is asserted beyond generous timeouts that starvation overruns."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.sinks import RecordingSink
from watchers.config import parse_config
from watchers.engine import Engine, open_engine
from watchers.errors import LookupBusyError

# Backtracks on a long run of "a" and never matches: each stored article below costs a lookup
# its whole per-article regex budget, so one lookup over them is seconds of work.
SLOW = "/(a|aa)+(b|bb)+$/"
HISTORY = 2000
# Far more than either test needs on the new code; the old code held the shared threads until
# the slow lookups' budgets ran out (SLOW_BUDGET seconds).
SLOW_BUDGET = 30.0
PATIENCE = 15.0


@dataclass
class Busy:
    engine: Engine
    sink: RecordingSink
    folder: Path


@pytest.fixture
async def busy(tmp_path: Path) -> AsyncIterator[Busy]:
    """A started engine over a store holding HISTORY articles the SLOW query reads slowly, and
    a folder polled every second."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    history = tmp_path / "history.jsonl"
    with history.open("w", encoding="utf-8") as fh:
        for i in range(HISTORY):
            fh.write(json.dumps({"id": f"h{i}", "title": f"Dispatch {i}",
                                 "text": f"Report {i}: " + "a" * 3000 + "!", "url": f"https://example.org/{i}",
                                 "date": f"2026-01-{1 + i // 1440:02d}T{i // 60 % 24:02d}:"
                                         f"{i % 60:02d}:00Z", "source": "wire"}) + "\n")
    cfg = parse_config({
        "storage": {"path": "nw.db"},
        "channels": {"alerts": 1},
        "sources": [{"name": "inbox", "type": "folder", "path": "inbox", "every": "1s",
                     "settle": 0}],
        "rules": [{"name": "troops", "query": "troops OR soldiers"}],
    }, base_dir=tmp_path)
    sink = RecordingSink()
    async with open_engine(cfg, sinks={"alerts": sink}, start=False) as engine:
        summary = await engine.import_articles(history)
        assert summary.imported == HISTORY
        await engine.start()
        yield Busy(engine, sink, folder)


async def until(predicate: Callable[[], bool], seconds: float) -> bool:
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


def slow_lookups(engine: Engine, n: int) -> list[asyncio.Future[object]]:
    # A large limit reads large pages (as /rules test and /trend do): on the old code each
    # page was one job that held its thread until the lookup's budget ran out.
    return [asyncio.ensure_future(engine.search(SLOW, budget=SLOW_BUDGET, limit=1000))
            for _ in range(n)]


async def ended(lookups: list[asyncio.Future[object]]) -> None:
    for lookup in lookups:
        lookup.cancel()
    await asyncio.gather(*lookups, return_exceptions=True)


async def test_a_new_article_alerts_while_lookups_fill_their_threads(busy: Busy) -> None:
    """Eight slow lookups at once held the one pool ingest shared with them: the poll's
    matching queued behind their pages until their budgets ran out."""
    lookups = slow_lookups(busy.engine, 8)
    try:
        await asyncio.sleep(0.5)  # they are reading and matching
        assert not any(lookup.done() for lookup in lookups)
        (busy.folder / "new.txt").write_text(
            "Troops cross the border\nHundreds of troops crossed the border at dawn.\n",
            encoding="utf-8")
        alerted = await until(lambda: any(a.article.title == "Troops cross the border"
                                          for a in busy.sink.alerts), PATIENCE)
        assert alerted, "the new article was not alerted while lookups ran"
        assert not all(lookup.done() for lookup in lookups)  # they ran the whole time
    finally:
        await ended(lookups)


async def test_a_cheap_lookup_among_slow_ones_answers_in_full(busy: Busy) -> None:
    """A one-word lookup issued while slow ones ran waited behind their pages, its budget ran
    out in the queue, and it answered "no results, cut short" though it needs a moment."""
    (busy.folder / "a.txt").write_text("Troops at the border\nTroops gathered.\n",
                                       encoding="utf-8")
    assert await until(lambda: len(busy.sink.alerts) == 1, PATIENCE)
    lookups = slow_lookups(busy.engine, 8)
    try:
        await asyncio.sleep(0.5)
        assert not any(lookup.done() for lookup in lookups)
        found = await asyncio.wait_for(busy.engine.search("troops"), PATIENCE)
        assert not found.truncated
        assert [h.article.title for h in found.hits] == ["Troops at the border"]
        # and the history is found as whole as ever, a page at a time
        dispatch = await asyncio.wait_for(busy.engine.search("dispatch", limit=50), PATIENCE)
        assert not dispatch.truncated and len(dispatch.hits) == 50
    finally:
        await ended(lookups)


async def test_a_lookup_that_waits_too_long_for_a_turn_is_told_busy(busy: Busy) -> None:
    """The wait for a thread is bounded: past it the lookup says it was busy (try again), not
    that the query should be narrowed."""
    (busy.folder / "a.txt").write_text("Troops at the border\nTroops gathered.\n",
                                       encoding="utf-8")
    assert await until(lambda: len(busy.sink.alerts) == 1, PATIENCE)
    started = threading.Barrier(3)
    release = threading.Event()
    loop = asyncio.get_running_loop()

    def hold() -> None:  # both lookup threads taken by something that does not give them up
        started.wait(PATIENCE)
        release.wait(PATIENCE)

    pool = busy.engine.lookup_executor
    jobs = [loop.run_in_executor(pool, hold) for _ in range(2)]
    try:
        await asyncio.to_thread(started.wait, PATIENCE)
        with pytest.raises(LookupBusyError, match=r"busy with other lookups.*try again"):
            await asyncio.wait_for(busy.engine.search("troops", wait=0.5), PATIENCE)
    finally:
        release.set()
        await asyncio.gather(*jobs)
    # once the threads are free, the same lookup answers
    assert not (await busy.engine.search("troops")).truncated
