"""Where ingest's CPU time goes, per article, without a profiler (printed, never asserted).

The same ingest as ``stories_ingest.py`` (corpus articles handed to the real ``WatchService``
and a SQLite file, realistic rules), with and without story grouping, at 100 and 1,000 rules.
Instead of cProfile, which inflates Python calls several times over and so misstates the split
between Python and SQLite's C, the thread CPU time spent inside a few functions is added up:

- executor (the thread that matches and groups): ``RuleSet.decide``, the story signature
  (``signature_from``), joining or starting a story (``join_story``: the live index's decision
  and the story's signature as stored), the lookup index's words (``analysed_words``) and the
  link's (``url_terms``);
- event loop: routing matches to outbox entries (``_route``), the matches' evidence as JSON
  (``hits_json``);
- the database's thread: every call it runs, by statement (the article rows, the matches, the
  lookup index rows and word list, the outbox and story rows, the commit, the dedupe reads).

"other" is the process's CPU time (all threads) that no area holds: the event loop's own work,
the service's and the store's Python around the statements, the source. The timing wrappers
add about a microsecond a call. The figure to read is each area's share: the goal of issue 12
is ingest at 80% of the matcher's own rate, so everything but matching must fit in a quarter of
the matcher's time.

Each run is a fresh process that first ingests ``--warm`` *other* corpus articles the same way
(as a running service has met other news before: the matcher's and the stories' per-word caches
hold news in general) and is then measured on articles it has never seen, as ingest always is;
articles the process had already ingested would halve matching and grouping.

    .venv/bin/python bench/ingest_split.py [--articles 3000] [--warm 1000] [--rules 100,1000]
                                           [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import stories_ingest as si

import watchers.rules.ruleset as ruleset_module
import watchers.service as service_module
import watchers.store.sqlite.articles as articles_module

SPENT: dict[str, float] = defaultdict(float)
# Per thread, the areas it is inside, each with the time of the areas inside it: an area's
# own time leaves those out (a write batch is one call on the database's thread, and its
# statements are areas of their own inside it).
_INSIDE = threading.local()


def timed(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        stack: list[list[Any]] | None = getattr(_INSIDE, "stack", None)
        if stack is None:
            stack = _INSIDE.stack = []
        stack.append([label, 0.0])
        start = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent = time.thread_time() - start
            _, inner = stack.pop()
            SPENT[label] += spent - inner
            if stack:
                stack[-1][1] += spent
    return run


def _sql_timed(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn(conn, sql, ...)`` (a statement run inside a write batch) timed under its area."""
    def run(conn: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
        return timed(_sql_area(fn, (sql,)), fn)(conn, sql, *args, **kwargs)
    return run


# What the database thread runs, by the statement's first words or the function's name.
_SQL_AREAS = (
    ("INSERT INTO articles", "db: article rows"),
    ("INSERT OR REPLACE INTO matches", "db: match rows (evidence)"),
    ("_index_terms", "db: lookup index rows + word list"),
    ("_write_outbox", "db: outbox + story rows"),
    ("COMMIT", "db: commit"),
    ("SELECT", "db: dedupe and id reads"),
)


def _sql_area(fn: Callable[..., Any], args: tuple[Any, ...]) -> str:
    name = str(getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None), "__name__", ""))
    text = " ".join(args[0].split()[:6]) if args and isinstance(args[0], str) else name
    for prefix, label in _SQL_AREAS:
        if text.startswith(prefix):
            return label
    return "db: other calls"


# Cyclic garbage collections, in whichever thread set them off: their time is also inside the
# area that thread was in, so it is printed apart and left out of the sums.
GC_LABEL = "gc: collections (inside the areas)"
_gc_started: dict[int, float] = {}


def _gc_timer(phase: str, info: dict[str, int]) -> None:
    me = threading.get_ident()
    if phase == "start":
        _gc_started[me] = time.thread_time()
    elif me in _gc_started:
        SPENT[GC_LABEL] += time.thread_time() - _gc_started.pop(me)


class _BenchCollector:
    """``gc`` for stories_ingest, whose run collects the last run's garbage before its clock
    starts: that collection is the bench's, not ingest's, and is not counted (it was most of
    the collections' row, 17-21 µs an article at 100 rules, where ingest's own are 2-4)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(gc, name)

    def collect(self, *args: Any) -> int:
        gc.callbacks.remove(_gc_timer)
        try:
            return gc.collect(*args)
        finally:
            gc.callbacks.append(_gc_timer)


def instrument() -> None:
    gc.callbacks.append(_gc_timer)
    si.gc = _BenchCollector()  # type: ignore[attr-defined,assignment]
    for module, name, label in (
            (service_module, "signature_from", "ex: story signature"),
            (service_module, "join_story", "ex: story decision + signature text"),
            (service_module, "analysed_words", "ex: lookup index words"),
            (service_module, "url_terms", "ex: link words (URL index)"),
            (service_module, "_route", "loop: routing"),
            (articles_module, "hits_json", "loop: evidence JSON"),
            # Inside a write batch (one call on the database's thread: its other work is
            # "db: other calls").
            (articles_module, "_index_terms", "db: lookup index rows + word list"),
            (articles_module, "_write_outbox", "db: outbox + story rows")):
        if hasattr(module, name):
            setattr(module, name, timed(label, getattr(module, name)))
    articles_module._Identities.load = timed(  # type: ignore[method-assign]
        "db: dedupe and id reads", articles_module._Identities.load)
    for name in ("insert_many", "all_rows"):  # the article and match rows, the id reads
        if hasattr(articles_module, name):
            setattr(articles_module, name, _sql_timed(getattr(articles_module, name)))
    rs = ruleset_module.RuleSet
    rs.decide = timed("ex: matching", rs.decide)  # type: ignore[method-assign]
    original: Callable[..., Any] = aiosqlite.Connection._execute

    async def execute(self: aiosqlite.Connection, fn: Callable[..., Any], *args: Any,
                      **kwargs: Any) -> Any:
        return await original(self, timed(_sql_area(fn, args), fn), *args, **kwargs)

    aiosqlite.Connection._execute = execute  # type: ignore[method-assign]


def measure(count: int, stories: bool, n: int, warm: int) -> dict[str, object]:
    """One run in this (fresh) process: ``warm`` other articles ingested the same way first
    (uncounted), then the ``n`` measured ones; the process's CPU µs per article and each
    area's."""
    instrument()
    articles, others, rules, _ = si.material(n, warm, count, datetime.now(UTC))
    si.warm_up(rules, others, stories=stories)
    SPENT.clear()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "nw.db"
        (Path(tmp) / "inbox").mkdir()
        _, cpu, _, _ = asyncio.run(si.ingest(db, rules, articles, stories=stories))
    return {"cpu": cpu, "areas": {k: v / n * 1e6 for k, v in SPENT.items()}}


def in_child(count: int, stories: bool, n: int, warm: int) -> tuple[float, dict[str, float]]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", f"{count},{int(stories)}",
         "--articles", str(n), "--warm", str(warm)],
        capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"measuring {count} rules (stories {stories}) failed:\n{out.stderr}")
    got = json.loads(out.stdout.strip().splitlines()[-1])
    return float(got["cpu"]), {k: float(v) for k, v in got["areas"].items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=3000)
    ap.add_argument("--warm", type=int, default=1000,
                    help="other articles each run takes in before it is measured")
    ap.add_argument("--rules", default="100,1000")
    ap.add_argument("--rounds", type=int, default=2, help="the lowest of this many runs")
    ap.add_argument("--measure", help=argparse.SUPPRESS)  # one run, in a child process
    args = ap.parse_args(argv)
    n = args.articles
    if args.measure:
        count, stories = (int(x) for x in args.measure.split(","))
        print(json.dumps(measure(count, bool(stories), n, args.warm)))
        return 0

    print(f"== where ingest's CPU goes: {n} corpus articles through WatchService into SQLite, "
          f"µs per article (the lowest of {args.rounds} runs per area), each run a fresh "
          f"process measured on articles it has never seen, after {args.warm} others")
    for count in (int(x) for x in args.rules.split(",")):
        best: dict[bool, tuple[float, dict[str, float]]] = {}
        for _ in range(args.rounds):
            for stories in (False, True):  # alternating, so a slow spell hits both
                cpu, areas = in_child(count, stories, n, args.warm)
                if stories not in best:
                    best[stories] = (cpu, areas)
                else:
                    low_cpu, low = best[stories]
                    best[stories] = (min(low_cpu, cpu),
                                     {k: min(v, low.get(k, v)) for k, v in areas.items()})
        labels = sorted({k for _, a in best.values() for k in a},
                        key=lambda k: -max(a.get(k, 0.0) for _, a in best.values()))
        print(f"\n{count} rules               without stories   with stories")
        for label in labels:
            cells = [best[s][1].get(label, 0.0) for s in (False, True)]
            if max(cells) >= 0.5:
                print(f"  {label:36} {cells[0]:9.1f} {cells[1]:14.1f}")
        others = [best[s][0] - sum(v for k, v in best[s][1].items() if k != GC_LABEL)
                  for s in (False, True)]
        print(f"  {'other (event loop, Python around)':36} {others[0]:9.1f} {others[1]:14.1f}")
        totals = [best[s][0] for s in (False, True)]
        print(f"  {'total CPU per article':36} {totals[0]:9.1f} {totals[1]:14.1f}")
        match = best[False][1].get("ex: matching", 0.0)
        if match:
            print(f"  matching is {match / totals[0]:.0%} of ingest without stories: ingest at "
                  f"{match / totals[0]:.0%} of the matcher's rate as measured inside ingest")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
