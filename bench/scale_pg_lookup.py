"""Lookups over 1,000,000 articles on PostgreSQL beside SQLite (``make scale``): figures are
printed, never asserted.

The same articles on both backends: the cached SQLite store of :mod:`scale_store`, copied once
into a PostgreSQL database with :func:`watchers.store.copy.copy_store` (the terms recomputed by
the engine's own ``lookup_terms``), then ``VACUUM ANALYZE``. For every query kind of
:data:`scale_lookup.QUERIES` it times :func:`watchers.search.search` (limit 20) newest first and
in best order on both stores in the same run, alternating store by store per query so that any
drift of the machine hits both alike, and prints p50 and p95 per kind side by side (a
process's first fuzzy lookup, which reads the index's word list, is timed and printed on its
own before them, as :mod:`scale_lookup` does); then each
store's size on disk (SQLite: the file and its WAL; PostgreSQL: ``pg_database_size``, the
tsvector GIN index and the URL index).

The PostgreSQL cluster is started by this script (tests/pg.py's :func:`local_cluster`: a unix
socket only, as the ``postgres`` user when run as root) with its data directory cached under
``/tmp/newswatch-bench/pg-<n>`` and kept between runs, so the copy is done once; it is stopped
at the end. ``--url`` names an existing server instead (a database is created on it).

Results are saved by label (``--label before``/``after``) under ``/tmp/newswatch-bench`` and
every saved label is printed, so a run on the old code and one on the new show a change; the
PG/SQLite column (both measured in the same run) is the one to compare across runs on a shared
machine, whose load moves both stores' times alike.

Run from the repo root: ``python bench/scale_pg_lookup.py [--articles N] [--label L]
[--url postgresql://…]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # type: ignore[import-untyped]
import scale_store
from scale_lookup import LIMIT, QUERIES, pct

from tests.pg import ClusterError, database_url, local_cluster
from watchers.rules.lookup import lookup_terms
from watchers.search import search
from watchers.store import SqliteStore, Store
from watchers.store.copy import CopyProgress, copy_store
from watchers.store.postgres import PostgresStore

# A server sized for a database of a few GB on this machine, rather than the stock 128 MB of
# shared buffers; durability settings do not touch lookups, which only read.
SETTINGS = ("-c shared_buffers=1GB -c effective_cache_size=8GB -c work_mem=64MB "
            "-c maintenance_work_mem=1GB -c max_wal_size=8GB -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off")


@contextmanager
def server(n: int, url: str | None) -> Iterator[str]:
    """The URL of the server's maintenance database: ``url`` as given, or the cached local
    cluster, started for the run and stopped (cleanly, so the next start needs no recovery)."""
    if url:
        yield url
        return
    base = scale_store.CACHE / f"pg-{n}"
    timings: dict[str, float] = {}
    try:
        with local_cluster(base, settings=SETTINGS, keep=True, stop_mode="fast",
                           timings=timings) as found:
            print(f"PostgreSQL cluster in {base} started in {timings['start']:.1f} s")
            yield found
    except ClusterError as exc:
        sys.exit(f"cannot start PostgreSQL: {exc}")
    print(f"PostgreSQL cluster stopped in {timings.get('stop', 0):.1f} s")


async def _admin(url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(url, timeout=30)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def fill(server_url: str, sqlite: Path, n: int) -> str:
    """The URL of a database holding the SQLite store's articles, copying them first unless a
    whole copy is already there (an interrupted one is dropped and done again)."""
    name = f"newswatch_scale_{n}"
    url = database_url(server_url, name)
    exists = await _admin(server_url, "SELECT 1 FROM pg_database WHERE datname = $1", name)
    if exists:
        try:
            whole = await _admin(
                url, "SELECT application = 'newswatch' AND (SELECT count(*) FROM articles) = $1 "
                "FROM schema_version", n)
        except asyncpg.PostgresError:
            whole = False
        if whole:
            # Once for writing: a newer schema's migrations run (the lookups open it read-only).
            await (await PostgresStore.open(url, lock=False)).aclose()
            return url
        print(f"database {name} holds an incomplete copy: dropping it")
        await _admin(server_url, f'DROP DATABASE "{name}" WITH (FORCE)')
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    print(f"copying {sqlite.name} into {name} (once; the cluster keeps it)")
    started = time.perf_counter()

    def progress(p: CopyProgress) -> None:
        rate = p.rows / max(time.perf_counter() - started, 1e-9)
        print(f"\r  {p.table:<14} {p.table_rows:>9,}/{p.table_total:<9,} all {p.rows:>9,}/"
              f"{p.total:,}  {rate:6.0f} rows/s", end="", flush=True)

    summary = await copy_store(str(sqlite), url, terms_of=lookup_terms, on_progress=progress)
    print(f"\n  copied {summary.rows:,} rows in {summary.seconds:.0f} s"
          + (f"; MISMATCHED: {summary.mismatched}" if summary.mismatched else ""))
    if summary.mismatched:
        sys.exit("the copy is not whole; see above")
    started = time.perf_counter()
    conn = await asyncpg.connect(url, timeout=30)
    try:
        # VACUUM sets the visibility map (index-only scans) as autovacuum would in time.
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    print(f"  VACUUM ANALYZE in {time.perf_counter() - started:.0f} s")
    return url


async def _one(store: Store, q: str, order: str) -> tuple[float, bool]:
    t = time.perf_counter()
    found = await search(store, q, limit=LIMIT, order="best" if order == "best" else "newest")
    return time.perf_counter() - t, found.truncated


async def measure(sqlite: Path, pg: str, repeat: int) -> dict[str, dict[str, dict[str, float]]]:
    """Per query kind, per store: p50/p95 newest first, p95 in best order, truncated count."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    async with await SqliteStore.open(sqlite, lock=False, readonly=True) as lite, \
            await PostgresStore.open(pg, lock=False, readonly=True) as post:
        stores: dict[str, Store] = {"sqlite": lite, "postgres": post}
        first: dict[str, float] = {}
        for name, store in stores.items():
            await search(store, "warmup", limit=LIMIT)
            # A process's first fuzzy, prefix or regex lookup reads the index's word list (and
            # a fuzzy one the word-frequency data): once per process, printed on its own rather
            # than counted in the first query kind that needs it.
            first[name], _ = await _one(store, "ukraine~", "newest")
        print(f"  first fuzzy lookup of the process (reads the word list): SQLite "
              f"{ms(first['sqlite'])}, PostgreSQL {ms(first['postgres'])}", flush=True)
        out["first fuzzy"] = {name: {"first": t} for name, t in first.items()}
        for kind, queries in QUERIES.items():
            times: dict[str, dict[str, list[float]]] = {
                s: {"newest": [], "best": []} for s in stores}
            truncated = dict.fromkeys(stores, 0)
            for q in queries:
                for _ in range(repeat):
                    for name, store in stores.items():
                        took, cut = await _one(store, q, "newest")
                        times[name]["newest"].append(took)
                        truncated[name] += cut
                for name, store in stores.items():
                    took, cut = await _one(store, q, "best")
                    times[name]["best"].append(took)
                    truncated[name] += cut
            out[kind] = {
                name: {"p50": pct(t["newest"], 0.5), "p95": pct(t["newest"], 0.95),
                       "best95": pct(t["best"], 0.95), "truncated": truncated[name]}
                for name, t in times.items()}
            row = out[kind]
            print(f"  {kind:<15} SQLite p50 {ms(row['sqlite']['p50'])} p95 "
                  f"{ms(row['sqlite']['p95'])} | PostgreSQL p50 {ms(row['postgres']['p50'])} "
                  f"p95 {ms(row['postgres']['p95'])}", flush=True)
    return out


def sqlite_size(path: Path) -> int:
    """The store's file and its write-ahead log, in bytes."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


async def pg_sizes(pg: str) -> dict[str, int]:
    out: dict[str, int] = {}
    conn = await asyncpg.connect(pg, timeout=30)
    try:
        out["postgres"] = int(await conn.fetchval(
            "SELECT pg_database_size(current_database())"))
        out["postgres_gin"] = int(await conn.fetchval(
            "SELECT pg_relation_size('articles_terms')"))
        out["postgres_articles"] = int(await conn.fetchval(
            "SELECT pg_total_relation_size('articles')"))
        # The URL index (schema 14): its table with its GIN index.
        out["postgres_urls"] = int(await conn.fetchval(
            "SELECT coalesce(pg_total_relation_size(to_regclass('article_urls')), 0)"))
    finally:
        await conn.close()
    return out


def ms(value: float | None) -> str:
    if value is None:
        return "      —"
    return f"{value * 1000:7.1f}" if value < 10 else f"{value:6.1f}s"


def show(results: dict[str, dict[str, Any]]) -> None:
    for label, res in results.items():
        print(f"\n== {label}: {res['articles']:,} articles, limit {LIMIT}, times in ms "
              f"(newest first unless 'best')")
        print(f"{'query kind':<15} | {'SQLite p50':>10} | {'p95':>7} | {'best p95':>8} || "
              f"{'PG p50':>7} | {'p95':>7} | {'best p95':>8} || {'PG/SQLite p50':>13} | "
              "truncated (lite/pg)")
        first = res["lookups"].get("first fuzzy")
        if first is not None:
            print(f"{'first fuzzy':<15} | {ms(first['sqlite']['first']):>10} | (once per "
                  f"process, not in the rows below) || {ms(first['postgres']['first'])}")
        for kind in QUERIES:
            row = res["lookups"].get(kind)
            if row is None:
                continue
            lite, post = row["sqlite"], row["postgres"]
            print(f"{kind:<15} | {ms(lite['p50']):>10} | {ms(lite['p95'])} | "
                  f"{ms(lite['best95']):>8} || {ms(post['p50'])} | {ms(post['p95'])} | "
                  f"{ms(post['best95']):>8} || {post['p50'] / lite['p50']:>12.2f}x | "
                  f"{int(lite['truncated'])}/{int(post['truncated'])}")
        size = res["sizes"]
        print(f"store size on disk: SQLite {size['sqlite'] / 1e9:.2f} GB (file + WAL); "
              f"PostgreSQL {size['postgres'] / 1e9:.2f} GB (pg_database_size), of which the "
              f"articles table with its indexes {size['postgres_articles'] / 1e9:.2f} GB and "
              f"the tsvector GIN index {size['postgres_gin'] / 1e9:.2f} GB; the URL index "
              f"{size.get('postgres_urls', 0) / 1e9:.2f} GB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--label", default="after")
    ap.add_argument("--url", help="an existing PostgreSQL server (postgresql://…) to use "
                    "instead of the cached local cluster; a database is created on it")
    args = ap.parse_args()
    sqlite = scale_store.build(args.articles)
    print(f"SQLite store {sqlite} ({sqlite.stat().st_size / 1e9:.2f} GB)")
    with server(args.articles, args.url) as url:
        pg = asyncio.run(fill(url, sqlite, args.articles))
        print("lookups (each query alternately on both stores):")
        lookups = asyncio.run(measure(sqlite, pg, args.repeat))
        size = {"sqlite": sqlite_size(sqlite), **asyncio.run(pg_sizes(pg))}
    saved = scale_store.CACHE / f"pg-results-{args.articles}.json"
    results: dict[str, dict[str, Any]] = (
        json.loads(saved.read_text()) if saved.exists() else {})
    results[args.label] = {"articles": args.articles, "lookups": lookups, "sizes": size}
    saved.write_text(json.dumps(results, indent=1))
    show(results)


if __name__ == "__main__":
    main()
