"""A folder drop larger than one poll reads is read through at once, not one poll per interval:
the files past a poll's bytes waited for the folder's next poll at its ``every`` (2,000 files of
a megabyte took an hour at 30 s, and ``run --once`` read 16 MiB a run). Through the real engine,
folder and SQLite file; the poll's byte budget is made small."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.sinks import RecordingSink
from watchers import service as service_module
from watchers.config import parse_config
from watchers.engine import open_engine
from watchers.sources import folder as folder_module

BUDGET = 4_000  # bytes a poll reads here (POLL_BYTES, made small)
FILES = 12
OLD_NS = 1_600_000_000 * 10**9  # long settled: no second look


def _drop(folder: Path) -> set[str]:
    """FILES files of about 1.5 KB, each about grain, oldest first by name; their titles."""
    folder.mkdir()
    titles = set()
    for i in range(FILES):
        title = f"Grain shipment {i} leaves port"
        path = folder / f"f{i:02d}.txt"
        path.write_text(f"{title}\n" + f"grain cargo number {i} " * 60)
        os.utime(path, ns=(OLD_NS + i * 10**9, OLD_NS + i * 10**9))
        titles.add(title)
    return titles


def _config(tmp_path: Path, every: str) -> Any:
    return parse_config({
        "storage": {"path": "nw.db"},
        "channels": {"alerts": {"target": 1, "stories": "off"}},
        "sources": [{"name": "drop", "type": "folder", "path": "inbox", "every": every,
                     "settle": "0s"}],
        "rules": [{"name": "grain", "query": "grain"}],
    }, base_dir=tmp_path)


async def test_a_running_engine_reads_a_drop_past_a_polls_bytes_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With an hour between polls, the files the first poll left are read by polls that
    follow at once: every file alerts within seconds, each once."""
    monkeypatch.setattr(folder_module, "POLL_BYTES", BUDGET)
    titles = _drop(tmp_path / "inbox")
    sink = RecordingSink()
    async with open_engine(_config(tmp_path, "1h"), default_sink=sink):
        for _ in range(600):  # (a generous 30 s that catches a hang)
            if len(sink.alerts) >= FILES:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # nothing more comes
    async with open_engine(_config(tmp_path, "1h"), start=False,
                           default_sink=RecordingSink()) as engine:  # the state written at stop
        state = await engine.store.source_state("drop")
    assert sorted(a.article.title for a in sink.alerts) == sorted(titles)
    assert state is not None and state.polls >= 3  # (the drop took several polls)
    assert state.next_poll is not None and state.last_success is not None
    # once read through, the folder is due at its interval again
    assert (state.next_poll - state.last_success).total_seconds() == pytest.approx(3600)


async def test_run_once_reads_the_whole_drop_and_reports_it_as_one_poll(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(folder_module, "POLL_BYTES", BUDGET)
    titles = _drop(tmp_path / "inbox")
    sink = RecordingSink()
    async with open_engine(_config(tmp_path, "30s"), start=False,
                           default_sink=sink) as engine:
        (report,) = await engine.run_once()
        state = await engine.store.source_state("drop")
    assert (report.seen, report.new, report.alerts, report.more) == (FILES, FILES, FILES, False)
    assert sorted(a.article.title for a in sink.alerts) == sorted(titles)
    assert state is not None and state.polls >= 3


async def test_run_once_stops_after_its_polls_and_says_more_is_waiting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A folder written faster than it is read must not keep ``run --once`` going: it polls
    a source ONCE_POLLS times at most, says so, and the next run reads on."""
    monkeypatch.setattr(folder_module, "POLL_BYTES", BUDGET)
    monkeypatch.setattr(service_module, "ONCE_POLLS", 2)
    _drop(tmp_path / "inbox")
    sink = RecordingSink()
    async with open_engine(_config(tmp_path, "30s"), start=False,
                           default_sink=sink) as engine:
        with caplog.at_level(logging.INFO, logger="watchers.service"):
            (first,) = await engine.run_once()
        assert first.more and 0 < first.new < FILES
        assert "source drop: more is waiting after 2 polls of this round" in caplog.text
        for _ in range(FILES):
            (report,) = await engine.run_once()
            if not report.more:
                break
    assert len(sink.alerts) == FILES
    assert len({a.article.id for a in sink.alerts}) == FILES


async def test_a_running_engine_polls_a_source_at_once_so_many_times_in_a_row_then_waits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A source that always has more ready (a folder written faster than it is read, a library
    source that always says so) was polled again at once for ever: after ONCE_POLLS polls in a
    row it waits for its interval, and the log says why."""
    monkeypatch.setattr(folder_module, "POLL_BYTES", BUDGET)
    monkeypatch.setattr(service_module, "ONCE_POLLS", 2)
    _drop(tmp_path / "inbox")
    sink = RecordingSink()
    with caplog.at_level(logging.INFO, logger="watchers.service"):
        async with open_engine(_config(tmp_path, "1h"), default_sink=sink):
            for _ in range(600):  # (a generous 30 s that catches a hang)
                if "more was ready after 2 polls in a row" in caplog.text:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # no third poll comes
    async with open_engine(_config(tmp_path, "1h"), start=False,
                           default_sink=RecordingSink()) as engine:
        state = await engine.store.source_state("drop")
    assert ("source drop: more was ready after 2 polls in a row; the rest waits for its next "
            "poll (every 1h)") in caplog.text
    assert state is not None and state.polls == 2
    assert 0 < len(sink.alerts) < FILES
    assert state.next_poll is not None and state.last_success is not None
    assert (state.next_poll - state.last_success).total_seconds() == pytest.approx(3600)


async def test_polls_in_a_row_are_counted_afresh_once_a_source_is_read_through(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A drop read through ends a row: the next drop gets its ONCE_POLLS polls at once
    again. The count went on from the last drop's, and a later drop waited for the interval
    (an hour here) with files left."""
    monkeypatch.setattr(folder_module, "POLL_BYTES", BUDGET)
    monkeypatch.setattr(service_module, "ONCE_POLLS", 2)
    monkeypatch.setattr(folder_module, "MIN_FILE_CHARGE", 0)  # by their bytes alone
    inbox = tmp_path / "inbox"
    inbox.mkdir()

    def drop(n: int) -> None:
        for i in range(5):  # two polls' worth (a poll reads three of these files)
            path = inbox / f"d{n}-{i}.txt"
            path.write_text(f"Grain shipment {n}-{i} leaves port\n"
                            + f"grain cargo number {i} " * 60)
            os.utime(path, ns=(OLD_NS + (n * 10 + i) * 10**9,) * 2)

    sink = RecordingSink()
    async with open_engine(_config(tmp_path, "1h"), default_sink=sink) as engine:
        for n in range(3):
            drop(n)
            engine.watch.poke("drop")
            for _ in range(600):  # (a generous 30 s that catches a hang)
                if len(sink.alerts) >= 5 * (n + 1):
                    break
                await asyncio.sleep(0.05)
            assert len(sink.alerts) == 5 * (n + 1), f"drop {n} not read through"
