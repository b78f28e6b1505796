"""Golden files: ``tests/data/feeds/<name>.<ext>`` parses to ``<name>.expected.json``.

To regenerate after a deliberate change, run
``NEWSWATCH_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/sources/test_golden.py``
and review the diff of the ``.expected.json`` files before committing them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.sources._support import DATA
from watchers.sources._feedparse import ParsedFeed, parse_feed

FEEDS = DATA / "feeds"
REGENERATE = os.environ.get("NEWSWATCH_REGEN_GOLDEN") == "1"
CONTENT_TYPES = {".json": "application/feed+json", ".rdf": "application/rdf+xml"}
BASE = "https://golden.example/feeds/{name}"

DOCUMENTS = sorted(p for p in FEEDS.iterdir() if not p.name.endswith(".expected.json"))


def as_json(feed: ParsedFeed) -> dict[str, Any]:
    return {
        "title": feed.title,
        "format": feed.format,
        "bozo": feed.bozo,
        "entries": [
            {
                "guid": e.guid,
                "url": e.url,
                "title": e.title,
                "text": e.text,
                "published": e.published.isoformat() if e.published else None,
            }
            for e in feed.entries
        ],
    }


def test_there_is_a_golden_file_per_format() -> None:
    assert {p.suffix for p in DOCUMENTS} >= {".xml", ".rdf", ".json"}
    assert len(DOCUMENTS) >= 4


@pytest.mark.parametrize("path", DOCUMENTS, ids=[p.name for p in DOCUMENTS])
def test_parse_matches_golden(path: Path) -> None:
    feed = parse_feed(
        path.read_bytes(),
        url=BASE.format(name=path.name),
        content_type=CONTENT_TYPES.get(path.suffix),
    )
    got = as_json(feed)
    expected_path = path.with_name(path.stem + ".expected.json")
    if REGENERATE:
        text = json.dumps(got, indent=2, ensure_ascii=False) + "\n"
        expected_path.write_text(text, encoding="utf-8")
    assert expected_path.is_file(), f"{expected_path.name} missing; set NEWSWATCH_REGEN_GOLDEN=1"
    assert got == json.loads(expected_path.read_text(encoding="utf-8"))
