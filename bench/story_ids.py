"""What the form of story ids costs a store's writes (printed, never asserted).

A store keeps story ids in several indexes: the stories table's key, the articles of a story
(``articles_story``: every stored article of a story) and the outbox rows of a story. A write
batch of new articles adds one entry to each per article. With ids that are random (a hash of
the founding article's id, as story ids were), each entry lands anywhere in the index, so a
batch dirties about a page per entry and the commit writes them all; with ids that begin with
the founding second (``watchers.stories.story_id_for`` given a time, as the index now makes
them), new entries land at the end and a batch dirties a few pages.

This builds the ``articles_story`` index as the SQLite schema declares it, holding ``--rows``
entries (a year of history), in a real SQLite file in WAL mode with the store's sync setting,
then times 20 batches of 500 new articles' entries (insert, then commit) for each id form.

    .venv/bin/python bench/story_ids.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from watchers.stories import story_id_for

START = datetime(2025, 1, 1, tzinfo=UTC)


def story_id(n: int, ordered: bool) -> str:
    # One story per article: the worst case for the index, and the common one (most
    # articles start a story of their own).
    when = START + timedelta(seconds=30 * n)
    return story_id_for(f"article-{n}", when if ordered else None)


def run(path: Path, rows: int, ordered: bool) -> tuple[float, float]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE articles (rowid INTEGER PRIMARY KEY, story_id TEXT, "
                     "sort_at TEXT NOT NULL, title TEXT NOT NULL)")
        conn.execute("CREATE INDEX articles_story ON articles(story_id, sort_at) "
                     "WHERE story_id IS NOT NULL")
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO articles (story_id, sort_at, title) VALUES (?,?,?)",
                         ((story_id(i, ordered), f"{i:012d}", "a headline of some length")
                          for i in range(rows)))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        insert = commit = 0.0
        batches, size = 20, 500
        for b in range(batches):
            first = rows + b * size
            batch = [(story_id(first + i, ordered), f"{first + i:012d}", "a new headline")
                     for i in range(size)]
            t0 = time.thread_time()
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO articles (story_id, sort_at, title) VALUES (?,?,?)",
                             batch)
            t1 = time.thread_time()
            conn.execute("COMMIT")
            t2 = time.thread_time()
            insert += t1 - t0
            commit += t2 - t1
        n = batches * size
        return insert / n * 1e6, commit / n * 1e6
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    print(f"== story ids in the articles_story index: {args.rows:,} entries, then 20 batches of "
          "500 new articles (µs per article, thread CPU time)")
    with tempfile.TemporaryDirectory() as tmp:
        for ordered in (False, True):
            path = Path(tmp) / f"ids-{ordered}.db"
            insert, commit = run(path, args.rows, ordered)
            form = "time first (now)" if ordered else "random (before)"
            print(f"   {form:18} insert {insert:5.1f}   commit {commit:5.1f}   "
                  f"total {insert + commit:5.1f}")
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(f"{path}{suffix}"):
                    os.remove(f"{path}{suffix}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
