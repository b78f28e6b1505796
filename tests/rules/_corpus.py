"""Reading the sample seeds and the shared corpora (outside the repo, at ../shared/corpora)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchers.models import Article

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "seeds"
CORPORA = REPO.parent / "shared" / "corpora" / "articles"
EVAL = REPO / "tests" / "data" / "eval"

_DATE = re.compile(r"\s*date \d{4}-\d{2}-\d{2}\s*")


def seed_articles() -> list[Article]:
    """The seeds as articles: a leading ``date YYYY-MM-DD`` is metadata; the first line, title."""
    out = []
    for path in sorted(SEEDS.glob("*.txt")):
        raw = path.read_text("utf-8")
        m = _DATE.match(raw)
        body = raw[m.end() :] if m else raw
        title, _, text = body.strip().partition("\n")
        out.append(Article(id=path.stem, title=title.strip(), text=text.strip()))
    return out


def corpus_articles(limit_per_file: int | None = None) -> Iterator[Article]:
    """Articles from ../shared/corpora/articles/*.jsonl; skips the test if they are absent."""
    files = sorted(CORPORA.glob("*.jsonl")) if CORPORA.is_dir() else []
    if not files:
        pytest.skip(f"shared corpora not found at {CORPORA}; these tests need ../shared/corpora")
    for path in files:
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh):
                if limit_per_file is not None and n >= limit_per_file:
                    break
                rec = json.loads(line)
                title, text = rec.get("title") or "", rec.get("text") or ""
                yield Article(id=rec["id"], title=title, text=text)
