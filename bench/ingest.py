"""Ingest and import throughput, side by side with the matcher alone (printed, never asserted).

For 100 and 1,000 realistic rules (``realistic_rules.py``: words of the corpus that fire), over
10,000 corpus articles, each figure the best of ``--repeat`` runs (the machine may be shared).
Each run is a fresh process that first takes in 1,000 *other* corpus articles (``--warm``) the
same way, as a running service has met other news before, then is timed on the 10,000 it has
never seen, which is what ingest always meets:

- matcher/s: the articles matched as ingest matches them, ``RuleSet.decide`` (which rules
  match and their scores; an alert's evidence is built when it is shown), one thread;
  ``seen`` is the same rule set matching them a second time, when every cache already holds
  their words (what this column used to show: it flatters the matcher, whose caches ingest
  never has warm for new articles);
- folder: the articles written as files into a watched folder, ``run_once`` until every one is
  stored (articles, matches, lookup terms, outbox rows: every alert, the cap of alerts a poll
  raised past any run's, as a poll of 10,000 articles would otherwise write 25); the folder
  source's own reading and parsing is printed on its own, as it bounds this column;
- memory: the same, from a source that hands over articles it already holds (ingest alone);
- before: the code before batching, kept here as ``PerArticleWatchService`` (one ``is_known``
  read and one ``record`` transaction per article, lookup terms tokenised by ``index_terms``);
  after: ``WatchService`` as it is. Percentages are of the matcher's rate on unseen articles.
  Under each row, the outbox rows each run wrote and how many articles match a rule.

Then the import over 100,000 JSONL lines recombined from the corpus, with no rules and with
100: articles/s by the clock, and per second of the process's CPU time (all threads), the
figure for one core; first the library's ``watchers.importer.import_file`` into the store (no
story grouping), then the ``newswatch import`` command itself in a child process, as a user
runs it (stories grouped in date order, start-up included). ``--import-only`` skips the
ingest table. The corpus is ``../shared/corpora/articles/*.jsonl``.

    .venv/bin/python bench/ingest.py [--articles N] [--warm N] [--rules 100,1000]
                                     [--import-lines N] [--repeat 2] [--no-before]
                                     [--import-only]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from realistic_rules import corpus_vocabulary, realistic_rules  # noqa: E402

from watchers.config import FolderSourceConfig, RuleConfig  # noqa: E402
from watchers.importer import import_file  # noqa: E402
from watchers.models import Article  # noqa: E402
from watchers.rules import Rule, RuleSet  # noqa: E402
from watchers.rules.lookup import index_terms  # noqa: E402
from watchers.rules.variants import is_common_word  # noqa: E402
from watchers.service import PollReport, WatchService, _Analysis, _cap, _route, _Running  # noqa: E402
from watchers.sources import SourceContext, build_source  # noqa: E402
from watchers.sources.base import Poll  # noqa: E402
from watchers.store import SqliteStore  # noqa: E402

CORPORA = REPO.parent / "shared" / "corpora" / "articles"
_EPOCH = datetime.min.replace(tzinfo=UTC)


def load_records() -> list[dict[str, str]]:
    files = sorted(CORPORA.glob("*.jsonl")) if CORPORA.is_dir() else []
    if not files:
        raise SystemExit(f"no corpora at {CORPORA}: the benchmark reads ../shared/corpora")
    out = []
    for path in files:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                if (rec.get("title") or "").strip():
                    out.append({"title": rec["title"], "text": rec.get("text") or "",
                                "url": rec.get("url") or "", "date": rec.get("date") or ""})
    return out


def pick(records: list[dict[str, str]], n: int, seed: int = 7) -> list[dict[str, str]]:
    """``n`` records, repeated with a serial number in the title when the corpus is short, so
    every one is a distinct article."""
    rng = random.Random(seed)
    pool = records[:]
    rng.shuffle(pool)
    out = []
    for i in range(n):
        rec = dict(pool[i % len(pool)])
        if i >= len(pool):
            rec["title"] = f"{rec['title']} ({i // len(pool)})"
            rec["url"] = f"{rec['url']}#{i}" if rec["url"] else ""
        out.append(rec)
    return out


def as_article(rec: dict[str, str], i: int) -> Article:
    return Article(source="bench", title=rec["title"], text=rec["text"],
                   url=rec["url"] or None, guid=str(i))


# --------------------------------------------------------------------------- the code before


class PerArticleWatchService(WatchService):
    """The ingest path before batching: a dedupe read and a transaction per article, and the
    lookup terms tokenised a second time."""

    def _analyse_each(self, ruleset: RuleSet, articles: Sequence[Article]) -> list[_Analysis]:
        out = []
        for article in articles:
            report = ruleset.match_report(article, regex_budget=self.regex_budget)
            # The code before matched with evidence (Match, a Decision and its hits): the
            # store takes either.
            out.append(_Analysis(report.matches,  # type: ignore[arg-type]
                                 index_terms(article.title, article.text), report.over_budget))
        return out

    async def _ingest(self, running: _Running, articles: Sequence[Article], *, baseline: bool,
                      since: datetime | None = None) -> PollReport:
        ruleset, rules = self._ruleset, self._rules
        mutes = await self.store.mutes(now=datetime.now(UTC))
        newest_first = sorted(
            articles, key=lambda a: a.published or a.fetched_at or _EPOCH, reverse=True)
        fresh = [a for a in reversed(newest_first) if not await self.store.is_known(a)]
        if not fresh:
            return PollReport(source=running.name, seen=len(articles))
        loop = asyncio.get_running_loop()
        analyses = await loop.run_in_executor(self.executor, self._analyse_each, ruleset, fresh)
        routed = [(a, an, _route(an.matches, rules, mutes))
                  for a, an in zip(fresh, analyses, strict=True)]
        routed, overflow = _cap(routed, running.config.max_alerts_per_poll)
        new = 0
        for article, an, entries in routed:
            if await self.store.record(article, an.matches, entries, terms=an.terms) is not None:
                new += 1
        for route, titles in overflow.items():
            await self.store.add_notice(route, f"{len(titles)} more from {running.name}")
        return PollReport(source=running.name, seen=len(articles), new=new)


# --------------------------------------------------------------------------- measurements


def write_folder(folder: Path, records: list[dict[str, str]], start: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, rec in enumerate(records):
        (folder / f"a{start + i:06d}.json").write_text(json.dumps(rec), encoding="utf-8")


class Feeder:
    """A source that hands over whatever it was last given, once: ingest measured without any
    source's own reading and parsing."""

    name = "inbox"

    def __init__(self) -> None:
        self.articles: list[Article] = []

    async def poll(self, cursor: Mapping[str, str]) -> Poll:
        articles, self.articles = self.articles, []
        return Poll(articles, cursor={"polled": "yes"})

    async def aclose(self) -> None:
        return None


class Once(Feeder):
    """A source already holding its articles: one poll brings them all, the next nothing."""

    def __init__(self, articles: list[Article]) -> None:
        super().__init__()
        self.articles = articles


# A cap of alerts per poll no run reaches: the folder's default (25 a route) would write 25
# outbox rows for the 1,700 (100 rules) or 6,600 (1,000 rules) of 10,000 articles that match,
# in one poll, and the figure would leave out most of ingest's alert writing.
ALL_ALERTS = 1_000_000_000


def folder_config(folder: Path, max_alerts_per_poll: int = 25) -> FolderSourceConfig:
    return FolderSourceConfig(name="inbox", type="folder", path=str(folder),
                              every=timedelta(seconds=1), settle=timedelta(0),
                              max_alerts_per_poll=max_alerts_per_poll)


async def folder_read_rate(folder: Path) -> float:
    """Articles/s of the folder source's poll alone (listing, reading, parsing the files)."""
    source = build_source(folder_config(folder), SourceContext(fetcher=None, resolve=Path))
    t0 = time.perf_counter()
    poll = await source.poll({})
    return len(poll.articles) / (time.perf_counter() - t0)


def folder_article(rec: dict[str, str], i: int) -> Article:
    return Article(source="inbox", guid=f"a{i:06d}.json", title=rec["title"], text=rec["text"],
                   url=rec["url"] or None)


def split(n: int, warm: int) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The warm-up records and the ``n`` measured ones: distinct corpus articles."""
    chosen = pick(load_records(), warm + n)
    return chosen[:warm], chosen[warm:]


def bench_rules(n_rules: int, n: int, warm: int) -> list[Rule]:
    """The realistic rules, from the vocabulary of every article of the run (a plain regex
    count: no cache of the rule engine is touched)."""
    warm_recs, recs = split(n, warm)
    articles = [folder_article(r, i) for i, r in enumerate(warm_recs + recs)]
    words, phrases = corpus_vocabulary(articles)
    return realistic_rules(n_rules, words, phrases)


def measure_matcher(n_rules: int, n: int, warm: int) -> dict[str, float]:
    warm_recs, recs = split(n, warm)
    rules = bench_rules(n_rules, n, warm)
    warm_articles = [folder_article(r, i) for i, r in enumerate(warm_recs)]
    articles = [folder_article(r, warm + i) for i, r in enumerate(recs)]
    rs = RuleSet(rules)
    # What ingest runs: which rules match and their scores, no evidence (built when shown).
    for a in warm_articles:
        rs.decide(a)
    matched = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for a in articles:
        matched += bool(rs.decide(a).decisions)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    for a in articles:
        rs.decide(a)
    seen = time.perf_counter() - t0
    return {"rate": n / elapsed, "cpu_rate": n / cpu, "seen": n / seen, "matched": matched}


async def drain(service: WatchService) -> None:
    while True:
        (report,) = await service.run_once()
        if report.error:
            raise SystemExit(f"ingest failed: {report.error}")
        if not report.new:
            return


async def measure_ingest(service_cls: type[WatchService], memory: bool, n_rules: int, n: int,
                         warm: int, tmp: Path) -> dict[str, float]:
    """Articles/s from the folder (or memory) to the store, after the warm-up articles went the
    same way; and how many of the measured articles and outbox rows were stored."""
    warm_recs, recs = split(n, warm)
    rules = [RuleConfig(name=r.name, query=r.query) for r in bench_rules(n_rules, n, warm)]
    folder = tmp / "inbox"
    folder.mkdir()
    store = await SqliteStore.open(tmp / "nw.db", terms_of=index_terms)
    executor = ThreadPoolExecutor(max_workers=1)
    feeder = Feeder()
    # Every alert is written (see ALL_ALERTS), as ingest writes them when polls are small.
    config = folder_config(folder, ALL_ALERTS)
    service = service_cls(store=store, context=SourceContext(fetcher=None, resolve=Path),
                          sources=[] if memory else [config], rules=rules,
                          executor=executor)
    if memory:
        await service.add_source(config, feeder)
    try:
        if memory:
            feeder.articles = [folder_article(r, i) for i, r in enumerate(warm_recs)]
        else:
            write_folder(folder, warm_recs, 0)
        await drain(service)
        before = await store.count_articles()
        alerts_before = sum((await store.alert_counts()).values())
        if memory:
            feeder.articles = [folder_article(r, warm + i) for i, r in enumerate(recs)]
        else:
            write_folder(folder, recs, warm)
        t0, c0 = time.perf_counter(), time.process_time()
        await drain(service)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        stored = await store.count_articles() - before
        alerts = sum((await store.alert_counts()).values()) - alerts_before
    finally:
        await service.aclose()
        await store.aclose()
        executor.shutdown()
    return {"rate": stored / elapsed, "cpu_rate": stored / cpu, "stored": stored,
            "outbox": alerts}


async def ingest_rate(service_cls: type[WatchService], rules: list[RuleConfig],
                      folder: Path, db: Path, articles: list[Article] | None = None
                      ) -> tuple[float, int, int]:
    """Articles/s from the folder (or, given ``articles``, from memory) to the store in a
    fresh service, no warm-up (stories_bench.py's figure); and how many articles and outbox
    rows were stored."""
    store = await SqliteStore.open(db, terms_of=index_terms)
    executor = ThreadPoolExecutor(max_workers=1)
    service = service_cls(store=store, context=SourceContext(fetcher=None, resolve=Path),
                          sources=[] if articles else [folder_config(folder)], rules=rules,
                          executor=executor)
    if articles:
        await service.add_source(folder_config(folder), Once(articles))
    try:
        t0 = time.perf_counter()
        await drain(service)
        elapsed = time.perf_counter() - t0
        stored = await store.count_articles()
        alerts = sum((await store.alert_counts()).values())
    finally:
        await service.aclose()
        await store.aclose()
        executor.shutdown()
    return stored / elapsed, stored, alerts


def in_child(kind: str, n_rules: int, n: int, warm: int) -> dict[str, float]:
    """One measurement in a fresh process, so every run starts from the same cold caches."""
    out = subprocess.run(
        [sys.executable, __file__, "--measure", kind, "--rules", str(n_rules),
         "--articles", str(n), "--warm", str(warm)],
        capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"measuring {kind} at {n_rules} rules failed:\n{out.stderr}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_measure(kind: str, n_rules: int, n: int, warm: int) -> dict[str, float]:
    # The first fuzzy candidate holding a digit imports wordfreq (about 0.8 s), once per
    # process: a running service did that long ago, so it is done before any clock starts
    # rather than inside whichever run meets such a word first.
    is_common_word("g7")
    if kind == "matcher":
        return measure_matcher(n_rules, n, warm)
    cls = PerArticleWatchService if kind.endswith("-before") else WatchService
    memory = kind.startswith("memory")
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(measure_ingest(cls, memory, n_rules, n, warm, Path(tmp)))


def best_of(repeat: int, kind: str, n_rules: int, n: int, warm: int) -> dict[str, float]:
    """The run with the best rate of ``repeat``: the machine is shared, and the best run is
    the one least disturbed."""
    runs = [in_child(kind, n_rules, n, warm) for _ in range(repeat)]
    return max(runs, key=lambda r: r["rate"])


def write_history(records: list[dict[str, str]], lines: int, path: Path) -> None:
    rng = random.Random(11)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(lines):
            # Recombined: a title and a text from different stories, a varied date and source.
            a, b = rng.choice(records), rng.choice(records)
            when = start + timedelta(minutes=rng.randrange(0, 525_600))
            fh.write(json.dumps({
                "id": f"h{i}", "title": f"{a['title']} {i}", "text": b["text"],
                "url": f"https://example.org/{i}", "date": when.isoformat(),
                "source": f"src{i % 40}",
            }) + "\n")


async def import_rate(path: Path, rules: list[Rule], db: Path) -> tuple[float, float, int]:
    """Articles/s of the import by the clock and per second of CPU (every thread of the
    process: parsing in the executor overlaps writing in the database's thread, so the clock
    rate may exceed what one core does); and how many were imported."""
    store = await SqliteStore.open(db, terms_of=index_terms)
    executor = ThreadPoolExecutor(max_workers=1)
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        summary = await import_file(store, path, ruleset=RuleSet(rules),
                                    executor=executor)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        await store.aclose()
        executor.shutdown()
    return summary.imported / elapsed, summary.imported / cpu, summary.imported


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--articles", type=int, default=10_000)
    p.add_argument("--warm", type=int, default=1_000,
                   help="other articles each run takes in before it is timed")
    p.add_argument("--rules", default="100,1000")
    p.add_argument("--import-lines", type=int, default=100_000)
    p.add_argument("--no-before", action="store_true", help="skip the per-article baseline")
    p.add_argument("--repeat", type=int, default=2, help="runs per figure; the best is shown")
    p.add_argument("--import-only", action="store_true", help="only the import figures")
    p.add_argument("--measure", help=argparse.SUPPRESS)  # one run, in a child process
    args = p.parse_args(argv)
    if args.measure:
        print(json.dumps(run_measure(args.measure, int(args.rules), args.articles, args.warm)))
        return 0
    records = load_records()
    if not args.import_only:
        warm_recs, chosen = split(args.articles, args.warm)
        with tempfile.TemporaryDirectory() as tmp:
            write_folder(Path(tmp) / "inbox", chosen, 0)
            reading = max(asyncio.run(folder_read_rate(Path(tmp) / "inbox"))
                          for _ in range(args.repeat))
        print(f"== ingest: {len(chosen)} corpus articles from {CORPORA}, best of {args.repeat} "
              f"runs, each a fresh process that first took in {len(warm_recs)} other articles")
        print(f"   the folder source alone reads and parses {reading:.0f} articles/s")
        print("   folder: files dropped into a watched folder, run_once until all are stored")
        print("   memory: the same articles handed over by a source that has them in memory")
        print("   matcher: the same articles matched as ingest matches them (which rules match and "
              "their scores,\n   no evidence: RuleSet.decide), unseen; "
              "seen: matched again")
        print(f"{'rules':>6} {'matcher/s':>10} {'seen':>7} | {'folder before':>14} "
              f"{'folder after':>13} | {'memory before':>14} {'memory after':>13} | "
              f"{'stored':>7} {'outbox':>7}")

        def cell(rate: float, match: float) -> str:
            return f"{rate:>7.0f} ({rate / match:>4.0%})" if rate else f"{'-':>14}"

        for n in (int(x) for x in args.rules.split(",")):
            matcher = best_of(args.repeat, "matcher", n, args.articles, args.warm)
            match = matcher["rate"]
            rates = []
            found: dict[str, dict[str, float]] = {}
            for kind in ("folder-before", "folder", "memory-before", "memory"):
                if args.no_before and kind.endswith("-before"):
                    rates.append(0.0)
                    continue
                found[kind] = best_of(args.repeat, kind, n, args.articles, args.warm)
                rates.append(found[kind]["rate"])
            fb, fa, mb, ma = rates
            last = found["memory"]
            print(f"{n:>6} {match:>10.0f} {matcher['seen']:>7.0f} | {cell(fb, match)} "
                  f"{cell(fa, match):>13} | {cell(mb, match)} {cell(ma, match):>13} | "
                  f"{last['stored']:>7.0f} {last['outbox']:>7.0f}", flush=True)
            # The work each run did: every matching article's alerts are written (ALL_ALERTS).
            print(f"{'':>6} outbox rows written per run: " + ", ".join(
                f"{kind} {found[kind]['outbox']:.0f}" for kind in found)
                + f" ({matcher['matched']:.0f} of {args.articles} articles match a rule)",
                flush=True)
            # Ingest runs matching and writing in different threads; per second of the
            # process's CPU time is the figure for one core.
            cpu = matcher["cpu_rate"]
            print(f"{'':>6} by CPU time (one core): matcher {cpu:.0f}/s, folder after "
                  f"{found['folder']['cpu_rate']:.0f}/s "
                  f"({found['folder']['cpu_rate'] / cpu:.0%}), memory after "
                  f"{last['cpu_rate']:.0f}/s ({last['cpu_rate'] / cpu:.0%})", flush=True)
    if args.import_lines:
        articles = [folder_article(r, i) for i, r in enumerate(pick(records, args.articles))]
        words, phrases = corpus_vocabulary(articles)
        hundred = realistic_rules(100, words, phrases)
        print(f"== import: {args.import_lines} JSONL lines recombined from the corpus "
              "(title and text of different stories, varied dates and sources)")
        with tempfile.TemporaryDirectory() as tmp:
            history = Path(tmp) / "history.jsonl"
            write_history(records, args.import_lines, history)
            print("  the library's import_file (no story grouping, terms from index_terms):")
            for label, rules in (("no rules", []), (f"{len(hundred)} rules", hundred)):
                rate, cpu_rate, imported = asyncio.run(
                    import_rate(history, rules, Path(tmp) / f"import{len(rules)}.db"))
                print(f"  {label:>10}: {imported} imported, {rate:.0f} articles/s "
                      f"({cpu_rate:.0f} per CPU second)", flush=True)
            print("  `newswatch import FILE -c CONFIG` as a user runs it (stories grouped, in "
                  "date order; start-up included):")
            for label, rules in (("no rules", []), (f"{len(hundred)} rules", hundred)):
                rate, cpu_rate, imported = cli_import_rate(history, rules, Path(tmp))
                print(f"  {label:>10}: {imported} imported, {rate:.0f} articles/s "
                      f"({cpu_rate:.0f} per CPU second)", flush=True)
    return 0


def cli_import_rate(path: Path, rules: list[Rule], tmp: Path) -> tuple[float, float, int]:
    """Articles/s of ``newswatch import`` in a child process, by the clock and per second of
    the child's CPU; and how many it imported (read back from the store)."""
    import resource
    import sqlite3

    db = tmp / f"cli{len(rules)}.db"
    config = tmp / f"cli{len(rules)}.toml"
    config.write_text(f"[storage]\npath = {json.dumps(str(db))}\n" + "".join(
        f"\n[[rules]]\nname = {json.dumps(r.name)}\nquery = {json.dumps(r.query)}\n"
        for r in rules), encoding="utf-8")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bot", "import", str(path), "-c", str(config)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   cwd=REPO)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with sqlite3.connect(db) as conn:
        (imported,) = conn.execute("SELECT count(*) FROM articles").fetchone()
    return imported / elapsed, imported / cpu, imported


if __name__ == "__main__":
    sys.exit(main())
