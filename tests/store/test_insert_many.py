"""A write batch's statements: many rows in one INSERT (``insert_many``) and a read's rows as
one JSON array (``all_rows``) give what executemany and a cursor give, row for row."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from watchers.store.sqlite._db import all_rows, insert_many

TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)  # NUL included
VALUES = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), TEXT, st.binary(max_size=6),
                   st.floats(allow_nan=False))
ROWS = st.lists(st.tuples(st.integers(0, 30), VALUES, VALUES), max_size=120)

STATEMENTS = (
    # conflicts within the batch: the later row sees the earlier one, as executemany's did
    "INSERT INTO t (k, a, b) VALUES (?, ?, ?) ON CONFLICT (k) DO UPDATE SET "
    "a = excluded.a, b = coalesce(t.b, excluded.b), n = t.n + 1",
    "INSERT OR IGNORE INTO t (k, a, b) VALUES (?,?,?)",
    "INSERT OR REPLACE INTO t (k, a, b) VALUES (?,?,?)",
    # not one row of plain placeholders: executemany as before
    "INSERT OR IGNORE INTO t (k, a, b) VALUES (?, ?, coalesce(?, 'none'))",
    "INSERT OR IGNORE INTO t (k, a, b) SELECT ?, ?, ?",
    # a placeholder after the row's: bound per row by executemany, so executemany it stays
    "INSERT INTO t (k, a, b) VALUES (?, ?, ?) ON CONFLICT (k) DO UPDATE SET n = t.n + ?",
)


def _db(limit: int | None = None) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, a, b, n INTEGER DEFAULT 0)")
    # A trigger sees the rows in order: the log's order is the insert order.
    conn.execute("CREATE TABLE log (seq INTEGER PRIMARY KEY, k, a)")
    conn.execute("CREATE TRIGGER t_log AFTER INSERT ON t BEGIN "
                 "INSERT INTO log (k, a) VALUES (new.k, new.a); END")
    if limit is not None:
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
    return conn


def _contents(conn: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
    return (conn.execute("SELECT * FROM t ORDER BY k").fetchall(),
            conn.execute("SELECT * FROM log ORDER BY seq").fetchall())


@settings(max_examples=80, deadline=None)
@given(rows=ROWS, sql=st.sampled_from(STATEMENTS), limit=st.sampled_from([None, 7, 30, 4]))
def test_many_rows_in_one_statement_store_what_executemany_stores(
        rows: list[tuple[Any, ...]], sql: str, limit: int | None) -> None:
    # A limit of 4 values allows one row a statement; 7 and 30 split a batch into several.
    rows = [(*r, 5) for r in rows] if sql.count("?") == 4 else rows
    with closing(_db()) as plain, closing(_db(limit)) as many:
        plain.executemany(sql, rows)
        insert_many(many, sql, rows)
        assert _contents(many) == _contents(plain)


def test_a_failing_row_fails_the_batch_with_the_same_error() -> None:
    rows = [(1, "a", "b"), (2, "c", "d"), (1, "again", "e")]
    with closing(_db()) as conn:
        try:
            insert_many(conn, "INSERT INTO t (k, a, b) VALUES (?,?,?)", rows)
        except sqlite3.IntegrityError as exc:
            assert "UNIQUE constraint failed: t.k" in str(exc)
        else:
            raise AssertionError("a repeated key was inserted")


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(-(2**63), 2**63 - 1), st.one_of(st.none(), TEXT)),
                     max_size=60))
def test_a_reads_rows_as_one_array_are_the_cursors_rows(rows: list[tuple[Any, Any]]) -> None:
    with closing(sqlite3.connect(":memory:")) as conn:
        conn.execute("CREATE TABLE r (x, y)")
        conn.executemany("INSERT INTO r VALUES (?, ?)", rows)
        sql = "SELECT x, y FROM r WHERE x >= ?"
        want = sorted(conn.execute(sql, (-(2**62),)).fetchall(), key=repr)
        got = sorted((tuple(r) for r in all_rows(conn, sql, (-(2**62),), 2)), key=repr)
        assert got == want


def test_a_read_whose_rows_json_cannot_hold_is_read_row_by_row() -> None:
    """A blob (stored by an outside tool) or rows longer together than SQLite's longest value
    failed the whole read, and every write batch that made it."""
    with closing(sqlite3.connect(":memory:")) as conn:
        conn.execute("CREATE TABLE r (x, y)")
        conn.executemany("INSERT INTO r VALUES (?, ?)", [(1, b"\x00\xff"), (2, "z" * 5000)])
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 20_000)
        assert sorted(map(tuple, all_rows(conn, "SELECT x, y FROM r", (), 2))) == [
            (1, b"\x00\xff"), (2, "z" * 5000)]
        conn.execute("DELETE FROM r WHERE x = 1")
        conn.executemany("INSERT INTO r VALUES (?, ?)", [(i, '"' * 4000) for i in range(3, 6)])
        got = all_rows(conn, "SELECT x, y FROM r", (), 2)  # 24,000 characters as JSON
        assert sorted(map(tuple, got)) == [(2, "z" * 5000), *((i, '"' * 4000) for i in (3, 4, 5))]
