"""``newswatch import`` ends a batch at a number of bytes as well as of lines, so that a file
of large lines is not held, analysed, a few thousand lines at a time."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.cli.test_import import write_jsonl
from watchers import importer
from watchers.importer import ImportProgress, import_file
from watchers.rules import Rule, RuleSet
from watchers.store import SqliteStore
from watchers.stories import StoryIndex

BUDGET = 2_000  # bytes of lines in a batch, in these tests (BATCH_BYTES, made small)


def line(i: int, size: int) -> str:
    """A dated line of about ``size`` bytes, of words of its own."""
    rng = random.Random(i)
    text = " ".join(f"w{rng.randrange(10**6)}" for _ in range(size // 8))
    return json.dumps({"id": f"a{i}", "title": f"Troops {i}", "text": text,
                       "date": f"2024-01-{1 + i:02d}T12:00:00Z"})


@pytest.mark.parametrize("grouped", [False, True], ids=["file order", "date order"])
async def test_lines_over_the_byte_budget_are_written_in_several_batches_each_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, grouped: bool) -> None:
    """A batch was BATCH (2,000) lines whatever their size: 300 lines of 1 MB were one batch,
    which took 4.7 GB, and 2,000 would have taken about 28 GB. A batch now also ends before
    its lines pass BATCH_BYTES (one line at least, however long): ten lines of about 700
    bytes are written two at a time, one of 5 KB alone, each line imported once."""
    monkeypatch.setattr(importer, "BATCH_BYTES", BUDGET)
    lines = [line(i, 5_000 if i == 5 else 700) for i in range(11)]  # dated in file order
    history = write_jsonl(tmp_path / "h.jsonl", lines)
    seen: list[ImportProgress] = []
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        summary = await import_file(store, history,
                                    ruleset=RuleSet([Rule(name="troops", query="troops")]),
                                    on_progress=seen.append,
                                    stories=StoryIndex() if grouped else None)
        assert await store.count_articles() == 11
        assert (await store.rule_match_counts())["troops"] == 11
    assert [p.lines for p in seen] == [2, 4, 5, 6, 8, 10, 11]
    assert [p.imported for p in seen] == [2, 4, 5, 6, 8, 10, 11]
    assert (summary.lines, summary.imported, summary.duplicates, summary.bad) == (11, 11, 0, 0)
    assert seen[-1].bytes_read == history.stat().st_size


async def test_short_lines_still_make_batches_of_as_many_lines_as_asked(tmp_path: Path) -> None:
    """The byte budget leaves batches of ordinary lines as they were: BATCH lines (here 4)."""
    history = write_jsonl(tmp_path / "h.jsonl", [line(i, 700) for i in range(10)])
    seen: list[ImportProgress] = []
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await import_file(store, history, ruleset=RuleSet([]), on_progress=seen.append,
                          batch=4)
    assert [p.lines for p in seen] == [4, 8, 10]
