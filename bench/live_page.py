"""Storing a live page: thousands of items under one link, each with its own guid and title.

Some outlets give every item of a live page the same link. The store's dedupe judges a new item
against what is stored under its link; this prints how long ``record_many`` takes for a first
run of items under one link and then for more under the same link, in batches as a poll or an
import writes them, so that a cost growing with the link's stored items shows as the second
figure per item growing past the first. Figures are printed, never asserted.

PostgreSQL (``--pg``) runs on a throwaway cluster (tests/pg.py's :func:`local_cluster`: PostgreSQL's
initdb and pg_ctl on PATH), or on ``--pg-url``'s server, where a database is created and dropped.

Run: .venv/bin/python bench/live_page.py [--first 2000] [--then 4000] [--batch 500] [--pg]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.pg import admin, database_url, local_cluster
from watchers.models import Article
from watchers.rules.lookup import index_terms, places_of, url_terms
from watchers.store import ArticleRecord, SqliteStore, Store
from watchers.store.postgres import PostgresStore

LINK = "https://news.example/live/ukraine"


def records(start: int, count: int) -> list[ArticleRecord]:
    out = []
    for i in range(start, start + count):
        a = Article(source="desk", guid=f"live-{i}", url=LINK, title=f"Update {i}: talks go on",
                    text=f"Item {i} of the live page.")
        out.append(ArticleRecord(a, (), (), index_terms(a.title, a.text),
                                 url_terms=url_terms(LINK), places=places_of(a.title, a.text)))
    return out


async def run(store: Store, first: int, then: int, batch: int) -> list[tuple[int, float]]:
    """(items, seconds) of each phase: the first items stored, the next ones, and a poll that
    finds every item unchanged (``known`` of them all, as the service asks before storing)."""
    out = []
    at = 0
    for count in (first, then):
        todo = records(at, count)
        started = time.perf_counter()
        for i in range(0, count, batch):
            stored = await store.record_many(todo[i:i + batch])
            assert None not in stored  # each item is new: its own guid and title
        out.append((count, time.perf_counter() - started))
        at += count
    again = [r.article for r in records(0, at)]
    started = time.perf_counter()
    assert all(await store.known(again))
    out.append((at, time.perf_counter() - started))
    return out


def show(name: str, phases: list[tuple[int, float]], first: int) -> None:
    (n1, s1), (n2, s2), (n3, s3) = phases
    print(f"{name}: first {n1:,} items {s1:.2f} s ({s1 / n1 * 1e6:.0f} µs/item); "
          f"{n2:,} more under the same link (from {first:,} stored) {s2:.2f} s "
          f"({s2 / n2 * 1e6:.0f} µs/item); a poll of all {n3:,} unchanged {s3:.2f} s")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--first", type=int, default=2000)
    ap.add_argument("--then", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--pg", action="store_true", help="PostgreSQL too, on a throwaway cluster")
    ap.add_argument("--pg-url", help="a PostgreSQL server (postgresql://…) to use instead")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="newswatch-live-") as tmp:
        async with await SqliteStore.open(Path(tmp) / "live.db") as sqlite:
            show("SQLite", await run(sqlite, args.first, args.then, args.batch), args.first)
    if not (args.pg or args.pg_url):
        return
    if args.pg_url:
        await on_pg(args.pg_url, args)
        return
    # A directory of its own, which local_cluster hands to the server's user and removes.
    with local_cluster(Path(tempfile.mkdtemp(prefix="newswatch-pg-"))) as server:
        await on_pg(server, args)


async def on_pg(server: str, args: argparse.Namespace) -> None:
    name = f"nw_bench_{uuid.uuid4().hex[:12]}"
    await asyncio.to_thread(admin, server, f'CREATE DATABASE "{name}"')
    try:
        async with await PostgresStore.open(database_url(server, name)) as pg:
            show("PostgreSQL", await run(pg, args.first, args.then, args.batch), args.first)
    finally:
        await asyncio.to_thread(admin, server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
