"""Lookups over a 1,000,000-article store (``make scale``): figures are printed, never asserted.

For each query kind of the language (limit 20) it prints newswatch's p50 and p95 newest first,
its p95 in best order, raw SQLite FTS5 on the same file (the index query alone, newest first,
no confirmation: a floor, not an equivalent) and tantivy over the same articles when the
``tantivy`` package is installed (its index is built once under ``/tmp/newswatch-bench``). Then
the wall time of ``newswatch search`` as a subprocess (p50 of 5) on the same store.

Results are saved by label (``--label before``/``after``) under ``/tmp/newswatch-bench``, and
every saved label is printed side by side, so one run on the old code and one on the new show
the change. The store is built once (:mod:`scale_store`) and cached.

Run from the repo root: ``python bench/scale_lookup.py [--articles N] [--label L]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import scale_store

from watchers.rules import parse, shipped_aliases
from watchers.rules.lookup import index_query
from watchers.search import search
from watchers.store import SqliteStore

LIMIT = 20
QUERIES: dict[str, list[str]] = {
    "word (common)": ["government", "police", "minister"],
    "word (rare)": ["tsunami", "ofcom", "zelensky"],
    "phrase": ['"prime minister"', '"interest rates"', '"climate change"'],
    "AND": ["government AND police", "oil AND prices", "election AND labour"],
    "OR": ["government OR election", "police OR court", "bank OR economy"],
    "NOT": ["government NOT election", "police NOT court", "film NOT music"],
    "prefix": ["gov*", "elect*", "minist*"],
    "fuzzy": ["goverment~", "sanctoins~", "kyiv~"],
    "field": ["title:putin", "title:covid", "title:election"],
    "NEAR": ["government NEAR/5 plans", "police NEAR/10 arrested", "oil NEAR/3 prices"],
    "regex": ["/covid-?19/", "/gold(en)? medal/", r"/\d{4} election/"],
    # The outlet's word in the link (one source of about 300), and with a title/text word.
    "url:": ["url:bbc", "url:reuters", 'url:"aljazeera com"'],
    "url: AND word": ["ukraine AND url:reuters", "government AND url:bbc",
                      "police AND url:theguardian"],
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def time_newswatch(path: Path, repeat: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    async with await SqliteStore.open(path, lock=False, readonly=True) as store:
        await search(store, "warmup", limit=LIMIT)
        # A process's first fuzzy, prefix or regex lookup reads the index's word list (and a
        # fuzzy one the word-frequency data): once per process, printed on its own.
        t = time.perf_counter()
        await search(store, "ukraine~", limit=LIMIT)
        first = time.perf_counter() - t
        print(f"  first fuzzy lookup of the process (reads the word list): {ms(first)}",
              flush=True)
        for kind, queries in QUERIES.items():
            newest: list[float] = []
            best: list[float] = []
            truncated = 0
            for q in queries:
                for _ in range(repeat):
                    t = time.perf_counter()
                    found = await search(store, q, limit=LIMIT)
                    newest.append(time.perf_counter() - t)
                    truncated += found.truncated
                t = time.perf_counter()
                found = await search(store, q, limit=LIMIT, order="best")
                best.append(time.perf_counter() - t)
                truncated += found.truncated
            out[kind] = {"p50": pct(newest, 0.5), "p95": pct(newest, 0.95),
                         "best95": pct(best, 0.95), "truncated": truncated}
            print(f"  {kind:<15} p50 {ms(out[kind]['p50'])}  p95 {ms(out[kind]['p95'])}  "
                  f"best p95 {ms(out[kind]['best95'])}  truncated {truncated}", flush=True)
    return out


def time_raw_fts(path: Path, repeat: int) -> dict[str, float | None]:
    import sqlite3

    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    # The lookup index: keyed by date order from schema 5 on, by insertion order before.
    table = "article_index" if "article_index" in names else "article_terms"
    out: dict[str, float | None] = {}
    for kind, queries in QUERIES.items():
        times: list[float] = []
        for q in queries:
            fts = index_query(parse(q), shipped_aliases({}))
            if fts is None:
                continue
            for _ in range(repeat):
                t = time.perf_counter()
                con.execute(f"SELECT rowid FROM {table} WHERE {table} MATCH ? "
                            "ORDER BY rowid DESC LIMIT ?", (fts, LIMIT)).fetchall()
                times.append(time.perf_counter() - t)
        out[kind] = pct(times, 0.95) if times else None
    con.close()
    return out


def tantivy_query(q: str) -> str | None:
    """The same query in tantivy's syntax, where it has one."""
    if q.startswith("/") or q.endswith("~"):
        return None
    return q.replace("NEAR/5", "AND").replace("NEAR/10", "AND").replace("NEAR/3", "AND")


def time_tantivy(path: Path, n: int, repeat: int) -> dict[str, float | None] | str:
    try:
        import tantivy  # type: ignore[import-not-found]
    except ImportError:
        return "tantivy is not installed (pip install tantivy): column left out"
    import sqlite3

    where = scale_store.CACHE / f"tantivy-{n}"
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("title", stored=False)
    builder.add_text_field("text", stored=False)
    builder.add_date_field("date", fast=True, indexed=True)
    builder.add_integer_field("row", stored=True, fast=True)
    schema = builder.build()
    if not (where / "done").exists():
        started = time.perf_counter()
        where.mkdir(parents=True, exist_ok=True)
        index = tantivy.Index(schema, path=str(where))
        writer = index.writer(heap_size=500_000_000, num_threads=1)
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        for rowid, title, text, sort_at in con.execute(
                "SELECT rowid, title, text, sort_at FROM articles"):
            from datetime import datetime
            when = datetime.strptime(sort_at, "%Y-%m-%dT%H:%M:%S.%fZ")
            writer.add_document(tantivy.Document(title=title, text=text, date=when, row=rowid))
        writer.commit()
        writer.wait_merging_threads()
        con.close()
        (where / "done").write_text("ok")
        print(f"  tantivy index built in {time.perf_counter() - started:.0f} s")
    index = tantivy.Index(schema, path=str(where))
    index.reload()
    searcher = index.searcher()
    out: dict[str, float | None] = {}
    for kind, queries in QUERIES.items():
        times: list[float] = []
        for q in queries:
            tq = tantivy_query(q)
            if tq is None:
                continue
            parsed = index.parse_query(tq, ["title", "text"])
            for _ in range(repeat):
                t = time.perf_counter()
                searcher.search(parsed, LIMIT, order_by_field="date")
                times.append(time.perf_counter() - t)
        out[kind] = pct(times, 0.95) if times else None
    return out


def time_cli(path: Path, code: Path = scale_store.ROOT) -> dict[str, float]:
    config = scale_store.CACHE / "scale.toml"
    config.write_text(f'[storage]\npath = "{path}"\n\n[[rules]]\nname = "any"\n'
                      'query = "government"\n', encoding="utf-8")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    out: dict[str, float] = {}
    for label, argv in (("--help", ["--help"]),
                        ("search government", ["search", "government", "-c", str(config),
                                               "--limit", "20"])):
        times = []
        for _ in range(5):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "bot", *argv], check=True, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           cwd=code)
            times.append(time.perf_counter() - t)
        out[label] = statistics.median(times)
    bare = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - t)
    out["python -c pass"] = statistics.median(bare)
    return out


def ms(value: float | None) -> str:
    if value is None:
        return "      —"
    return f"{value * 1000:7.1f}" if value < 10 else f"{value:6.1f}s"


def show(results: dict[str, dict[str, object]]) -> None:
    for label, res in results.items():
        nw = res["newswatch"]
        raw = res["raw"]
        tan = res["tantivy"]
        assert isinstance(nw, dict) and isinstance(raw, dict)
        print(f"\n== {label}: {res['articles']:,} articles, limit {LIMIT}, times in ms")
        print(f"{'query kind':<15} | {'nw p50':>7} | {'nw p95':>7} | {'best p95':>8} | "
              f"{'raw FTS5':>8} | {'tantivy':>7} | truncated")
        for kind in QUERIES:
            row = nw.get(kind)
            if row is None:
                continue
            t = tan.get(kind) if isinstance(tan, dict) else None
            print(f"{kind:<15} | {ms(row['p50'])} | {ms(row['p95'])} | {ms(row['best95'])}  | "
                  f"{ms(raw.get(kind))}  | {ms(t)} | {int(row['truncated'])}")
        if isinstance(tan, str):
            print(f"({tan})")
        cli = res.get("cli")
        if isinstance(cli, dict):
            print("CLI wall time, p50 of 5: " + ", ".join(
                f"{k} {v * 1000:.0f} ms" for k, v in cli.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--label", default="after")
    ap.add_argument("--no-tantivy", action="store_true")
    args = ap.parse_args()
    path = scale_store.build(args.articles)
    print(f"store {path} ({path.stat().st_size / 1e9:.2f} GB)")
    print("newswatch lookups:")
    nw = asyncio.run(time_newswatch(path, args.repeat))
    raw = time_raw_fts(path, args.repeat)
    tan: dict[str, float | None] | str = "not run (--no-tantivy)"
    if not args.no_tantivy:
        tan = time_tantivy(path, args.articles, args.repeat)
    cli = time_cli(path)
    saved = scale_store.CACHE / f"results-{args.articles}.json"
    results: dict[str, dict[str, object]] = (
        json.loads(saved.read_text()) if saved.exists() else {})
    results[args.label] = {"articles": args.articles, "newswatch": nw, "raw": raw,
                           "tantivy": tan, "cli": cli}
    saved.write_text(json.dumps(results, indent=1))
    show(results)


if __name__ == "__main__":
    main()
