"""Shared fixtures: paths to the repo, the seeds and the shared corpora."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from watchers.store import SqliteStore

REPO = Path(__file__).resolve().parents[1]
# The suite's own copy of the sample articles: a user's file dropped into seeds/ must not change
# what the tests see (test_seed_copy checks the copy against ../shared/seeds).
SEEDS = REPO / "tests" / "data" / "seeds"
CORPORA = REPO.parent / "shared" / "corpora"


def corpora_or_skip() -> Path:
    if not CORPORA.is_dir():
        pytest.skip(f"shared corpora not found at {CORPORA}; these tests need ../shared/corpora")
    return CORPORA


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = await SqliteStore.open(tmp_path / "test.db")
    try:
        yield s
    finally:
        await s.aclose()
