"""Store tests run against both backends where the PostgreSQL store implements their domain.

``PORTED`` names the modules whose tests that take the ``store`` fixture run twice, on SQLite
and on PostgreSQL. The others stay SQLite-only because they test SQLite itself:
test_query_plans (EXPLAIN QUERY PLAN), test_lifecycle (the file lock, a removed, replaced or
damaged file, read-only files), test_schema (PRAGMA headers and the SQLite migration history).
Tests in the ported modules that open an SQLite file by path (to reopen it, or read it with
sqlite3) have backend-neutral twins in test_backends.py.
"""

from __future__ import annotations

import pytest

PORTED = frozenset({"test_store", "test_acks", "test_stories", "test_batch", "test_backends",
                    "test_index_words", "test_url_index",
                    "test_cancel", "test_top_stories"})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if module not in PORTED:
        return
    for name in ("store", "backend"):
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, ["sqlite", "postgres"], indirect=True)
