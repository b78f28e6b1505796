"""What story grouping adds to ingest, through the real service and store (printed, never
asserted).

The same corpus articles are ingested by ``WatchService`` into a fresh SQLite store with 100
realistic rules (words of the corpus that fire), from a source that already holds them (so the
figure is ingest alone): once without stories, then with stories on a store that already holds
0, 1,000 and 100,000 live stories (built from recombined corpus headlines, all within the
window, restored into the live index before the clock starts; the restore time is printed on its
own). Each figure is the best of ``--repeat`` runs; the overhead is relative to ingest without
stories, in wall time and in CPU time (the process's, all threads: the executor that matches
and groups, the event loop, the database thread), which a busy shared machine disturbs less.
The configurations take turns, round after round. Each run is a fresh process that first
ingests ``--warm`` *other* corpus articles the same way (into a store of its own), as a running
service has met other news before, and is then timed on articles it has never seen, which is
what ingest always meets: the matcher's and the stories' per-word caches hold the words of
news in general, not those of the articles measured (which would halve matching and grouping).

    .venv/bin/python bench/stories_ingest.py [--articles 3000] [--warm 1000]
                                             [--live 0,1000,100000] [--rules 100] [--repeat 2]
                                             [--profile 0,100000]

``--profile LIVE,...`` measures nothing: it ingests once without stories and once with stories
on each of those numbers of live stories under cProfile (every thread: the event loop, the
executor that matches and groups, the database's), each in a fresh process warmed the same way
on other articles, and prints where the time went, by function and in totals per area
(clustering, the store's story writes, the corroboration query, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import json
import pstats
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import ALL_ALERTS, Once, folder_config, load_records, pick  # noqa: E402
from realistic_rules import corpus_vocabulary, realistic_rules  # noqa: E402

from watchers.config import RuleConfig  # noqa: E402
from watchers.models import Article  # noqa: E402
from watchers.rules.lookup import index_terms  # noqa: E402
from watchers.service import WatchService  # noqa: E402
from watchers.sources import SourceContext  # noqa: E402
from watchers.store import SqliteStore  # noqa: E402
from watchers.stories import signature, story_id_for  # noqa: E402

OUTLETS = [f"outlet-{i}" for i in range(20)]


async def fill_stories(db: Path, titles: list[str], n: int) -> None:
    """``n`` live stories (reported in the last 40 hours), each from a recombined headline."""
    if not n:
        return
    rng = random.Random(11)
    now = datetime.now(UTC)
    rows = []
    for i in range(n):
        a, b = rng.choice(titles).split(), rng.choice(titles).split()
        headline = " ".join(a[: len(a) // 2] + b[len(b) // 2 :]) + f" {i}"
        stamp = now - timedelta(minutes=rng.randrange(40 * 60))
        when = stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        rows.append((story_id_for(f"live-{i}", stamp), headline, when, when,
                     signature(headline, "").dump(), json.dumps([rng.choice(OUTLETS)])))
    store = await SqliteStore.open(db, terms_of=index_terms)
    try:
        async with store._db.tx() as tx:
            await tx.executemany(
                "INSERT INTO stories (id, headline, first_seen, last_seen, signature, articles, "
                "outlets) VALUES (?,?,?,?,?,1,?)", rows)
    finally:
        await store.aclose()


class ThreadProfiles:
    """cProfile in every thread started while it is on (the executor's and the database's)
    as well as the calling one. cProfile hooks one thread; ``threading.setprofile`` gives each
    new thread a first call that swaps in a profiler of its own."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self.on = False

    def _start_here(self, *_: object) -> None:
        sys.setprofile(None)
        if self.on:
            # CPU time of the thread: a thread waiting for work costs nothing.
            prof = cProfile.Profile(time.thread_time)
            self.profiles.append(prof)
            prof.enable()

    def start(self) -> None:
        self.on = True
        threading.setprofile(self._start_here)
        self._start_here()

    def reset(self) -> None:
        """Forget what was profiled so far (the other threads are idle, waiting for work)."""
        for prof in self.profiles:
            prof.clear()

    def stop(self) -> tuple[pstats.Stats, int]:
        """Stop, once the threads started meanwhile have ended (their hooks go with them);
        what was profiled, and in how many threads."""
        self.on = False
        threading.setprofile(None)
        self.profiles[0].disable()
        stats = pstats.Stats(self.profiles[0], stream=io.StringIO())
        for prof in self.profiles[1:]:
            stats.add(prof)
        return stats, len(self.profiles)


@contextlib.asynccontextmanager
async def serving(db: Path, rules: list[RuleConfig], articles: list[Article], *, stories: bool
                  ) -> AsyncIterator[tuple[WatchService, SqliteStore]]:
    """The service over the store at ``db`` with ``rules`` and one folder source that yields
    ``articles`` once, grouping stories or not; closed after."""
    store = await SqliteStore.open(db, terms_of=index_terms)
    executor = ThreadPoolExecutor(max_workers=1)
    service = WatchService(store=store, context=SourceContext(fetcher=None, resolve=Path),
                           rules=rules, executor=executor,
                           stories_mode=(lambda route: "edit") if stories else None)
    # Every alert is written: the folder's default cap (25 a poll) would leave most of the
    # outbox and story rows of a 3,000-article poll unwritten.
    await service.add_source(folder_config(db.parent / "inbox", ALL_ALERTS), Once(articles))
    try:
        yield service, store
    finally:
        await service.aclose()
        await store.aclose()
        executor.shutdown()


async def ingest(db: Path, rules: list[RuleConfig], articles: list[Article], *, stories: bool
                 , profiles: ThreadProfiles | None = None) -> tuple[float, float, float, int]:
    """Articles/s through the service into the store; CPU µs per article; the seconds the live
    index took to restore (before the clock starts); the stories stored. With ``profiles``,
    the service's ingest runs under them (the restore does not)."""
    if profiles is not None:  # before the database's thread starts
        profiles.start()
    async with serving(db, rules, articles, stories=stories) as (service, store):
        t0 = time.perf_counter()
        await service.story_index()
        restored = time.perf_counter() - t0
        if profiles is not None:
            profiles.reset()
        # The runs share one process: the last run's garbage (its service, store and live
        # index, some in reference cycles) is collected now, and the collector's counts start
        # afresh, so no run pays for another's.
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        (report,) = await service.run_once()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        if report.error:
            raise SystemExit(f"ingest failed: {report.error}")
        made = await store.count_stories()
    return report.new / elapsed, cpu / max(1, report.new) * 1e6, restored, made


# Where story grouping's time goes: each area is the functions whose (file, name) match, timed
# inclusively (cumulative). The areas nest in the ingest path, not in each other.
AREAS: dict[str, tuple[tuple[str, str], ...]] = {
    "matching (RuleSet.match_report)": (("watchers/rules/", "match_report"),),
    "story signature (signature_from)": (("watchers/stories/features.py", "signature_from"),),
    "clustering (StoryIndex.place)": (("watchers/stories/index.py", "place"),),
    "signature dumps (Signature.dump)": (("watchers/stories/features.py", "dump"),),
    "store: record_many (whole)": (("watchers/store/sqlite/articles.py", "record_many"),),
    "store: outbox + story writes (DB thread)": (
        ("watchers/store/sqlite/articles.py", "_write_outbox"),),
    "store: story reads + upserts": (("watchers/store/sqlite/stories.py", "story_batch"),
                                     ("watchers/store/sqlite/stories.py", "write_stories")),
    "store: story outbox rows (story_rows)": (("watchers/store/sqlite/stories.py", "story_rows"),),
    "store: route lookups (_outcome)": (("watchers/store/sqlite/stories.py", "_outcome"),),
    "store: dedupe reads (known)": (("watchers/store/sqlite/articles.py", "known"),),
}


def report(stats: pstats.Stats, threads: int, articles: int, label: str) -> None:
    """The areas' inclusive time per article, and the functions with the most own time."""
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = (
        stats.stats)  # type: ignore[attr-defined]
    total = sum(tt for _, _, tt, _, _ in raw.values())
    print(f"== profile, {label} ({threads} threads): {articles} articles, "
          f"{total / articles * 1e6:.0f} µs/article profiled (CPU of all threads; profiling "
          "inflates Python calls)")
    for area, keys in AREAS.items():
        cum = sum(ct for (file, _, name), (_, _, _, ct, _) in raw.items()
                  if any(file.endswith(f) or f in file for f, n in keys if n == name))
        print(f"   {area:<44} {cum / articles * 1e6:>7.0f} µs/article")
    # The SQLite calls the DB thread makes on behalf of the store (C functions of sqlite3).
    sql = sum(tt for (file, _, name), (_, _, tt, _, _) in raw.items()
              if file == "~" and "sqlite3" in name)
    print(f"   {'sqlite3 C calls (own time)':<44} {sql / articles * 1e6:>7.0f} µs/article")
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(25)
    print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))
    print(flush=True)


def material(n: int, warm: int, n_rules: int, now: datetime
             ) -> tuple[list[Article], list[Article], list[RuleConfig], list[str]]:
    """The ``n`` articles measured, ``warm`` other articles taken in before them, the realistic
    rules (words of the measured articles that fire) and the headlines the live stories are
    made of (others again: some about the same events, most not, as in life)."""
    records = load_records()
    random.Random(5).shuffle(records)
    if len(records) < n + warm:
        raise SystemExit(f"the corpus holds {len(records)} articles: --articles {n} and "
                         f"--warm {warm} need that many distinct ones")
    chosen = pick(records[:n], n)
    articles = [Article(source=OUTLETS[i % len(OUTLETS)], guid=f"a{i}", title=r["title"],
                        text=r["text"], url=r["url"] or None,
                        published=now - timedelta(seconds=n - i))
                for i, r in enumerate(chosen)]
    others = [Article(source=OUTLETS[i % len(OUTLETS)], guid=f"w{i}", title=r["title"],
                      text=r["text"], url=r["url"] or None,
                      published=now - timedelta(seconds=n + warm - i))
              for i, r in enumerate(records[n:n + warm])]
    words, phrases = corpus_vocabulary(articles)
    rules = [RuleConfig(name=r.name, query=r.query)
             for r in realistic_rules(n_rules, words, phrases)]
    return articles, others, rules, [r["title"] for r in records[n + warm:]]


def warm_up(rules: list[RuleConfig], others: list[Article], *, stories: bool) -> None:
    """Ingest ``others`` as the measured articles will be, into a store of their own: the
    process's caches then hold what a running service's hold, none of the measured words
    but by chance."""
    if not others:
        return
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "inbox").mkdir()
        asyncio.run(ingest(Path(tmp) / "nw.db", rules, others, stories=stories))


def measure(live: int | None, n: int, warm: int, n_rules: int, profile: bool) -> None:
    """One run, in this (fresh) process: warm on other articles, then ingest the measured
    ones on a store holding ``live`` live stories (None: without stories), timed (its figures
    printed as JSON) or profiled (its report printed)."""
    articles, others, rules, titles = material(n, warm, n_rules, datetime.now(UTC))
    warm_up(rules, others, stories=live is not None)
    profiles = ThreadProfiles() if profile else None
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "nw.db"
        (Path(tmp) / "inbox").mkdir()
        asyncio.run(fill_stories(db, titles, live or 0))
        got = asyncio.run(ingest(db, rules, articles, stories=live is not None,
                                 profiles=profiles))
    if profiles is not None:
        report(*profiles.stop(), len(articles),
               "without stories" if live is None else f"{live:,} live stories")
    else:
        print(json.dumps(got))


def in_child(live: int | None, args: argparse.Namespace, profile: bool = False
             ) -> tuple[float, float, float, int]:
    """:func:`measure` in a fresh process, so that every run starts from the same caches."""
    cmd = [sys.executable, __file__, "--measure", "none" if live is None else str(live),
           "--articles", str(args.articles), "--warm", str(args.warm),
           "--rules", str(args.rules)]
    out = subprocess.run(cmd + (["--profile-this"] if profile else []), capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"the run with {live} live stories failed:\n{out.stderr}")
    if profile:
        print(out.stdout, end="", flush=True)
        return 0.0, 0.0, 0.0, 0
    rate, cpu, restored, made = json.loads(out.stdout.strip().splitlines()[-1])
    return float(rate), float(cpu), float(restored), int(made)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--articles", type=int, default=3000)
    p.add_argument("--warm", type=int, default=1000,
                   help="other articles each run takes in before it is timed")
    p.add_argument("--live", default="0,1000,100000")
    p.add_argument("--rules", type=int, default=100)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--profile", metavar="LIVE,...",
                   help="profile one ingest per number of live stories instead of timing")
    p.add_argument("--measure", help=argparse.SUPPRESS)  # one run, in a child process
    p.add_argument("--profile-this", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.measure is not None:
        live = None if args.measure == "none" else int(args.measure)
        measure(live, args.articles, args.warm, args.rules, args.profile_this)
        return 0

    if args.profile is not None:
        for live in [None, *(int(x) for x in args.profile.split(","))]:
            in_child(live, args, profile=True)
        return 0

    # Each round runs every configuration once, the one without stories first: on a shared
    # machine a slow spell then hits all of them, not only the configurations measured in it.
    # Every run is a process of its own, warmed on other articles than those it is timed on.
    configs: list[int | None] = [None, *(int(x) for x in args.live.split(","))]
    rate = dict.fromkeys(configs, 0.0)
    cpu = dict.fromkeys(configs, float("inf"))
    restored = dict.fromkeys(configs, 0.0)
    made = dict.fromkeys(configs, 0)
    for _ in range(args.repeat):
        for live in configs:
            got = in_child(live, args)
            if got[0] > rate[live]:
                rate[live], _, restored[live], made[live] = got
            cpu[live] = min(cpu[live], got[1])  # the least CPU on its own: the least disturbed

    print(f"== story grouping in ingest: {args.articles} corpus articles, {args.rules} rules, "
          f"best of {args.repeat} rounds, each run a fresh process timed on articles it has "
          f"never seen, after {args.warm} others")
    base, base_cpu = rate[None], cpu[None]
    print(f"   without stories        {base:>7.0f} articles/s  {base_cpu:>6.0f} µs CPU/article",
          flush=True)
    for live in configs[1:]:
        assert live is not None
        print(f"   with {live:>7,} live stories {rate[live]:>7.0f} articles/s  "
              f"{cpu[live]:>6.0f} µs CPU/article  +{base / rate[live] - 1:>4.0%} time, "
              f"+{cpu[live] / base_cpu - 1:>4.0%} CPU per article  (index restored in "
              f"{restored[live]:.2f} s; {made[live] - live} new stories)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
