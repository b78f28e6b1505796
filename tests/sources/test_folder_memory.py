"""A folder source's poll reads a bounded number of bytes: a folder of many large files is
read over several polls, each file once, rather than held whole by one poll."""

from __future__ import annotations

import logging
import os
import random
from collections import Counter
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import pytest

from watchers.sources import folder as folder_module
from watchers.sources.base import Poll
from watchers.sources.folder import FolderSource

BUDGET = 10_000  # bytes a poll reads, in these tests (POLL_BYTES, made small)
OLD_NS = 1_600_000_000 * 10**9  # long settled: no second look


def write_files(folder: Path, sizes: list[int], *, tag: str = "") -> dict[str, str]:
    """Files ``f00.txt`` … of about these sizes, each of words of its own, dated oldest
    first in the order of their names, one second apart; their names and titles."""
    titles = {}
    for i, size in enumerate(sizes):
        rng = random.Random(f"{tag}{i}")
        title = f"Story {tag}{i}"
        body = " ".join(f"w{rng.randrange(10**6)}" for _ in range(size // 8))
        path = folder / f"f{i:02d}.txt"
        path.write_text(f"{title}\n{body}"[:size])
        os.utime(path, ns=(OLD_NS + i * 10**9, OLD_NS + i * 10**9))
        titles[path.name] = title
    return titles


async def polls_until_quiet(src: FolderSource, cursor: Mapping[str, str]
                            ) -> tuple[list[Poll], Mapping[str, str]]:
    """Poll as the service does (each poll handed the cursor of the one before) until a poll
    finds nothing new; the polls that found something, and the last cursor."""
    polls: list[Poll] = []
    for _ in range(100):
        poll = await src.poll(cursor)
        cursor = dict(poll.cursor) or cursor  # as the service keeps it
        if not poll.articles and not poll.skipped:
            return polls, cursor
        polls.append(poll)
    raise AssertionError("the folder was still giving articles after 100 polls")


async def test_a_folder_larger_than_a_poll_reads_is_read_over_several_polls_each_file_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Every new file of a poll was read at once: 300 files of 1 MB held 4.3 GB until the
    poll was written, and 2,000 would have taken 28 GB. Now a poll reads POLL_BYTES of files
    at most (here 10 KB of 30 KB), the oldest first, and leaves the others out of its cursor:
    the next polls read them, each file exactly once, none named as skipped, and the cursor
    at the end is the one a single poll of the whole folder gives."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    titles = write_files(folder, [2_500] * 12)
    whole = await FolderSource("drop", folder, settle=timedelta(0)).poll({})
    assert sorted(a.title for a in whole.articles) == sorted(titles.values())

    monkeypatch.setattr(folder_module, "POLL_BYTES", BUDGET)
    src = FolderSource("drop", folder, settle=timedelta(0))
    with caplog.at_level(logging.INFO, logger="watchers.sources.folder"):
        polls, cursor = await polls_until_quiet(src, {})
    assert len(polls) >= 3
    # what a poll leaves is said (run --once and check --live read fewer than there are)
    assert "source drop: 8 new file(s) of 0.0 MB left for its next poll" in caplog.text
    assert all(not p.skipped for p in polls)
    # each poll that left files says so (the service polls again at once); the last does not
    assert [p.more for p in polls] == [True] * (len(polls) - 1) + [False]
    read = [a.guid.split("#")[0] for p in polls for a in p.articles if a.guid]
    assert Counter(read) == Counter(list(titles))  # every file, once
    assert read == sorted(read)  # the oldest first
    done: set[str] = set()
    for p in polls:
        names = {a.guid.split("#")[0] for a in p.articles if a.guid}
        assert sum((folder / name).stat().st_size for name in names) <= BUDGET
        done |= names
        assert set(p.cursor) == done  # what a poll left for later is not in its cursor
    assert cursor == dict(whole.cursor)
    assert sorted(a.id for p in polls for a in p.articles) == sorted(a.id for a in
                                                                      whole.articles)


async def test_many_tiny_files_are_read_a_few_thousand_a_poll(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each article costs kilobytes to hold whatever its file's size: 150,000 files of 22
    bytes (3.3 MB, under a poll's 16 MiB) were one poll of 1.1 GB. A file counts at least
    MIN_FILE_CHARGE against the poll's bytes (here 10 KB of 1 KB: ten files a poll)."""
    monkeypatch.setattr(folder_module, "POLL_BYTES", BUDGET)
    monkeypatch.setattr(folder_module, "MIN_FILE_CHARGE", 1_000)
    folder = tmp_path / "inbox"
    folder.mkdir()
    titles = write_files(folder, [30] * 25)
    src = FolderSource("drop", folder, settle=timedelta(0))
    polls, _ = await polls_until_quiet(src, {})
    assert [len(p.articles) for p in polls if p.articles] == [10, 10, 5]
    assert sorted(a.title for p in polls for a in p.articles) == sorted(titles.values())


async def test_files_changed_after_they_were_read_are_read_again_once_over_several_polls(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file the cursor knows, changed and left for a later poll, keeps its earlier entry
    there until it is read: each new version is read once, and the files that did not change
    are not read again."""
    monkeypatch.setattr(folder_module, "POLL_BYTES", BUDGET)
    folder = tmp_path / "inbox"
    folder.mkdir()
    write_files(folder, [2_000] * 8)
    src = FolderSource("drop", folder, settle=timedelta(0))
    _, cursor = await polls_until_quiet(src, {})
    (folder / "keep.txt").write_text("Unchanged\nThis one stays as it is.")
    os.utime(folder / "keep.txt", ns=(OLD_NS, OLD_NS))
    _, cursor = await polls_until_quiet(src, cursor)
    changed = write_files(folder, [3_000] * 8, tag="v2-")
    polls, after = await polls_until_quiet(src, cursor)
    assert len(polls) >= 2
    assert Counter(a.title for p in polls for a in p.articles) == Counter(changed.values())
    assert after["keep.txt"] == cursor["keep.txt"]
    first = polls[0]
    read = {a.guid.split("#")[0] for a in first.articles if a.guid}
    assert read and all(first.cursor[name] == cursor[name] for name in cursor if name not in read)
    monkeypatch.setattr(folder_module, "POLL_BYTES", 10**9)  # the whole folder in one poll
    assert after == dict((await FolderSource("drop", folder, settle=timedelta(0)).poll({})
                          ).cursor)


async def test_a_file_larger_than_a_poll_reads_is_still_read_whole_in_a_poll_of_its_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The budget never keeps a file out: one larger than it (under max_file_size) is read,
    whole, alone in its poll, and the files after it in the polls that follow."""
    monkeypatch.setattr(folder_module, "POLL_BYTES", BUDGET)
    folder = tmp_path / "inbox"
    folder.mkdir()
    titles = write_files(folder, [3_000, 25_000, 3_000])
    src = FolderSource("drop", folder, settle=timedelta(0))
    polls, _ = await polls_until_quiet(src, {})
    assert [[a.title for a in p.articles] for p in polls] == [
        [titles["f00.txt"]], [titles["f01.txt"]], [titles["f02.txt"]]]
    big = polls[1].articles[0]
    assert len(big.text) > 20_000 and not polls[1].skipped
