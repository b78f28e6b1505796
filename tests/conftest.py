"""Shared fixtures: paths to the repo, the seeds and the shared corpora; the store, on SQLite or
PostgreSQL (tests/pg.py starts the server)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.pg import pg_database, pg_url  # noqa: F401  (fixtures)
from watchers.store import SqliteStore, Store
from watchers.store.postgres import PostgresStore

REPO = Path(__file__).resolve().parents[1]
# The suite's own copy of the sample articles: a user's file dropped into seeds/ must not change
# what the tests see (test_seed_copy checks the copy against ../shared/seeds).
SEEDS = REPO / "tests" / "data" / "seeds"
CORPORA = REPO.parent / "shared" / "corpora"


def corpora_or_skip() -> Path:
    if not CORPORA.is_dir():
        pytest.skip(f"shared corpora not found at {CORPORA}; these tests need ../shared/corpora")
    return CORPORA


def bbc_records(n: int) -> list[dict[str, Any]]:
    """The first ``n`` records (``id``, ``title``, ``text``) of the corpora's BBC articles;
    skips the test without the corpora."""
    out: list[dict[str, Any]] = []
    with (corpora_or_skip() / "articles" / "bbc_news_2004_2005.jsonl").open(
            encoding="utf-8") as f:
        for line in f:
            if len(out) >= n:
                break
            out.append(json.loads(line))
    return out


@pytest.fixture
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A new, empty store: SQLite unless a test module asks for both backends (indirect
    parameter "sqlite" | "postgres", see tests/store/conftest.py)."""
    backend = getattr(request, "param", "sqlite")
    s: Store
    if backend == "postgres":
        s = await PostgresStore.open(request.getfixturevalue("pg_database"))
    else:
        s = await SqliteStore.open(tmp_path / "test.db")
    try:
        yield s
    finally:
        await s.aclose()


@contextmanager
def ends(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """``proc`` for the block; killed (and reaped) if it is still running after it, so a test
    that fails midway leaves no process behind."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
