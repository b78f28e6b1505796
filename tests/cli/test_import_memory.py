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


@pytest.mark.parametrize("grouped", [False, True], ids=["file order", "date order"])
async def test_blank_lines_are_counted_as_lines_and_hold_nothing(
        tmp_path: Path, grouped: bool) -> None:
    """Date order kept every line's place and sorted them with a Python object each: a file of
    5 MB of empty lines took 680 MB. Blank lines are now passed over while the dates are read,
    and still counted among the file's lines, as in file order."""
    body = [line(i, 200) for i in range(3)]
    text = "\n\n" + body[2] + "\n" + "  \n\t\r\n" * 1000 + body[0] + "\n\n" + body[1] + "\n"
    history = tmp_path / "h.jsonl"
    history.write_text(text, encoding="utf-8")
    seen: list[ImportProgress] = []
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        summary = await import_file(store, history, ruleset=RuleSet([]),
                                    stories=StoryIndex() if grouped else None,
                                    on_progress=seen.append)
        assert await store.count_articles() == 3
    assert (summary.lines, summary.imported, summary.bad) == (text.count("\n"), 3, 0)
    assert seen[-1].bytes_read <= history.stat().st_size
    if grouped:
        blank: list[int] = []
        with history.open("rb") as fh:
            placed = [n for n, _, _ in importer._date_order(fh, blank)]
        assert placed == [2004, 2006, 3]  # by date; the blank lines passed over
        assert blank[0] == text.count("\n") - 3


def test_the_date_order_is_a_stable_sort_with_numpy_and_without(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins
    from array import array

    rng = random.Random(3)
    keys = array("q", (rng.choice([5, -3, 2**62, 7, 7, 0]) for _ in range(500)))
    expected = sorted(range(len(keys)), key=keys.__getitem__)
    assert list(importer._stable_order(keys)) == expected
    real_import = builtins.__import__

    def no_numpy(name: str, *args: object, **kwargs: object) -> object:
        if name == "numpy":
            raise ImportError("no numpy here")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_numpy)
    assert list(importer._stable_order(keys)) == expected


async def test_an_import_keeps_the_first_bad_lines_and_counts_them_all(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two million lines of ``{}`` (6 MB) kept a reason each in the summary: 300 MB. The
    summary keeps the first MAX_BAD_KEPT, and every one is named to on_bad_line as it comes
    and counted."""
    monkeypatch.setattr(importer, "MAX_BAD_KEPT", 5)
    history = tmp_path / "h.jsonl"
    history.write_text("{}\n" * 40 + line(1, 100) + "\n", encoding="utf-8")
    named: list[int] = []
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        summary = await import_file(store, history, ruleset=RuleSet([]),
                                    on_bad_line=lambda n, _: named.append(n))
    assert (summary.lines, summary.imported, summary.bad) == (41, 1, 40)
    assert [n for n, _ in summary.bad_lines] == [1, 2, 3, 4, 5]
    assert named == list(range(1, 41))
