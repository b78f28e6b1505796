"""The benchmark store (``bench/scale_store.py``, built once for ``make scale``) at a small size:
it builds, opens as a store of the current schema, and its URL index and lookup index find what
a full scan of its links and titles finds (a change to what its writers take broke the build
once, unnoticed until the million-article benchmark was run)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.bench._bench import bench_module
from tests.conftest import corpora_or_skip
from watchers.rules.lookup import url_terms
from watchers.rules.text import KEYS_VERSION
from watchers.search import search
from watchers.store import SqliteStore

N = 1_500


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpora = corpora_or_skip()
    scale_store = bench_module("scale_store")
    # Its corpora and cache folders are module constants: these replace them for this build.
    setattr(scale_store, "CORPORA", corpora / "articles")  # noqa: B010
    setattr(scale_store, "CACHE", tmp_path_factory.mktemp("scale"))  # noqa: B010
    path: Path = scale_store.build(N)
    return path


def test_the_benchmark_store_builds_and_opens(built: Path) -> None:
    with closing(sqlite3.connect(built)) as conn:
        assert conn.execute("SELECT count(*) FROM articles").fetchone()[0] == N
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # its indexes are marked as of the engine's word keys: an engine opening it does not
        # rebuild them first (it did, for a million articles, in memory.py's measurement)
        assert conn.execute("SELECT version FROM index_keys").fetchone()[0] == KEYS_VERSION


async def test_its_url_index_finds_what_a_scan_of_the_links_finds(built: Path) -> None:
    with closing(sqlite3.connect(built)) as conn:
        links = conn.execute("SELECT id, url FROM articles").fetchall()
    expected = {i for i, url in links if "bbc" in url_terms(url).split()}
    assert expected  # source 0 is the BBC: some of its articles are in any sample this size
    store = await SqliteStore.open(built)
    try:
        found = await search(store, "url:bbc", limit=N)
        assert {h.article.id for h in found} == expected
        assert not found.truncated
        words = await search(store, "government", limit=5)
        assert len(words) == 5
    finally:
        await store.aclose()
