"""Every document of ../shared/corpora/feeds parses to sane entries or a clear SourceError.

Per file, ``tests/data/corpus_summary.json`` keeps the item count and first title (or the error
kind), so a change in what we read from real feeds shows up as a failing test. To regenerate,
run ``NEWSWATCH_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/sources/test_corpus.py`` and
review the diff.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.sources._support import CORPORA, DATA, corpora_or_skip
from watchers.errors import SourceError
from watchers.sources._feedparse import FeedFormatError, parse_feed

SUMMARY = DATA / "corpus_summary.json"
REGENERATE = os.environ.get("NEWSWATCH_REGEN_GOLDEN") == "1"
BASE = "https://corpus.example/{file}"


def _index() -> list[dict[str, Any]]:
    path = CORPORA / "feeds" / "index.json"
    if not path.is_file():
        return []
    entries: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return entries


INDEX = _index()


@pytest.fixture(scope="module")
def summary() -> Iterator[dict[str, Any]]:
    """The golden summary; in regenerate mode, filled by the tests and written at the end."""
    if REGENERATE:
        fresh: dict[str, Any] = {}
        yield fresh
        if fresh:
            ordered = dict(sorted(fresh.items()))
            text = json.dumps(ordered, indent=1, ensure_ascii=False) + "\n"
            SUMMARY.write_text(text, encoding="utf-8")
        return
    if not SUMMARY.is_file():
        pytest.fail(f"{SUMMARY} missing; run with NEWSWATCH_REGEN_GOLDEN=1 to create it")
    golden: dict[str, Any] = json.loads(SUMMARY.read_text(encoding="utf-8"))
    yield golden


def test_the_corpus_is_there() -> None:
    corpora_or_skip()
    assert len(INDEX) == 268, "the corpus changed size; regenerate the summary and review it"


def _check_sane(file: str, feed_entries: list[Any]) -> None:
    for i, entry in enumerate(feed_entries):
        where = f"{file} entry {i}"
        assert isinstance(entry.title, str) and "\n" not in entry.title, where
        assert len(entry.title) <= 1001, where
        assert not any(ord(c) < 0x20 for c in entry.title), where
        assert "<p>" not in entry.title and "<br" not in entry.title.lower(), where
        if entry.url is not None:
            parts = urlsplit(entry.url)
            assert parts.scheme in ("http", "https") and parts.netloc, f"{where}: {entry.url!r}"
        if entry.published is not None:
            assert entry.published.utcoffset() == timedelta(0), where
        assert entry.guid is None or entry.guid.strip(), where
        assert entry.title or entry.text or entry.url or entry.guid, where


@pytest.mark.parametrize("meta", INDEX, ids=[m["file"].removeprefix("feeds/") for m in INDEX])
def test_corpus_file(meta: dict[str, Any], summary: dict[str, Any]) -> None:
    root = corpora_or_skip()
    file = meta["file"]
    body = (root / file).read_bytes()
    started = time.monotonic()
    try:
        feed = parse_feed(body, url=BASE.format(file=file), content_type=None)
    except FeedFormatError as exc:
        got: dict[str, Any] = {"error": exc.kind}
    except SourceError as exc:  # pragma: no cover - every format error has a kind today
        got = {"error": type(exc).__name__}
    else:
        _check_sane(file, feed.entries)
        got = {
            "items": len(feed.entries),
            "first_title": feed.entries[0].title[:80] if feed.entries else None,
        }
    # A hang's catch, not a speed test (bench/feed_parsers.py times the parse): 5 s was
    # passed by the largest real feed (730 items) on a loaded two-core machine.
    assert time.monotonic() - started < 60, f"{file} took too long to parse"
    if REGENERATE:
        summary[file] = got
        return
    assert file in summary, f"{file} not in {SUMMARY.name}; regenerate it"
    assert got == summary[file]


def _expected_items(meta: dict[str, Any]) -> int | None:
    counts = [int(f.split("=", 1)[1]) for f in meta["flags"] if f.startswith("items=")]
    if counts:
        return counts[0]
    return 1 if meta["format"].startswith("jsonfeed") else None  # JSON Feeds carry no count


def test_every_real_feed_with_items_yields_items(summary: dict[str, Any]) -> None:
    corpora_or_skip()
    if REGENERATE:
        pytest.skip("regenerating")
    real = [m for m in INDEX if m["kind"] == "real"]
    expected = [m for m in real if (_expected_items(m) or 0) > 0]
    missing = [m["file"] for m in expected if not summary.get(m["file"], {}).get("items")]
    assert missing == []
    assert len(expected) >= 180



CUT_FILES = [m["file"] for m in INDEX if m["kind"] == "real"
             and m["format"].startswith(("rss", "atom"))][::6]


@pytest.mark.parametrize("file", CUT_FILES, ids=[f.removeprefix("feeds/") for f in CUT_FILES])
def test_a_real_feed_cut_short_gives_only_whole_items(file: str) -> None:
    """Cut inside an item (a response cut off in transit), a feed gave what the cut left of
    it (a title, no guid, link or text) as an item: it matched nothing stored and alerted as
    new, one seen long ago or a fragment of one the next whole poll gave again. Every item
    read must be the whole one."""
    root = corpora_or_skip()
    body = (root / file).read_bytes()
    url = BASE.format(file=file)
    try:
        whole = parse_feed(body, url=url, content_type=None)
    except FeedFormatError:
        pytest.skip("not a feed whole either")

    def seen(e: Any) -> tuple[Any, ...]:
        # (Read by the loose parser, a text may break its lines elsewhere: the same words.)
        return (e.guid, e.url, e.title, e.text.split(), e.published)

    for keep in (0.35, 0.6, 0.85):
        try:
            cut = parse_feed(body[: int(len(body) * keep)], url=url, content_type=None)
        except FeedFormatError as exc:
            assert exc.kind == "ill-formed"  # cut before its first whole item: a failed poll
            continue
        assert [seen(e) for e in cut.entries] == [
            seen(e) for e in whole.entries[: len(cut.entries)]], keep
