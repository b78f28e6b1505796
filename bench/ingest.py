"""Ingest and import throughput, side by side with the matcher alone (printed, never asserted).

For 100 and 1,000 realistic rules (``realistic_rules.py``: words of the corpus that fire):

- matcher alone: ``RuleSet.match`` over the articles, one thread, warm word cache;
- ingest, per article (the code before batching, kept here as ``PerArticleWatchService``): one
  ``is_known`` and one ``record`` transaction per article;
- ingest, batched (``WatchService`` as shipped): the same articles dropped into a watched folder,
  ``run_once`` until every one is stored, outbox rows included.

Then ``newswatch import``'s path (``watchers.importer`` into the store) over 100,000 JSONL lines
recombined from the corpus. The corpus is ``../shared/corpora/articles/*.jsonl``.

    .venv/bin/python bench/ingest.py [--articles 10000] [--rules 100,1000] [--import-lines 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from realistic_rules import corpus_vocabulary, realistic_rules  # noqa: E402

from watchers.config import FolderSourceConfig, RuleConfig  # noqa: E402
from watchers.models import Article  # noqa: E402
from watchers.rules import RuleSet  # noqa: E402
from watchers.rules.lookup import index_terms  # noqa: E402
from watchers.service import PollReport, WatchService, _Running  # noqa: E402
from watchers.sources import SourceContext  # noqa: E402
from watchers.store import OutboxEntry, SqliteStore  # noqa: E402

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

    def _analyse_each(self, ruleset: RuleSet, articles: Sequence[Article]) -> list[tuple]:
        out = []
        for article in articles:
            report = ruleset.match_report(article, regex_budget=self.regex_budget)
            out.append((report.matches, index_terms(article.title, article.text)))
        return out

    async def _ingest(self, running: _Running, articles: Sequence[Article], *, baseline: bool
                      ) -> PollReport:
        ruleset, rules = self._ruleset, self._rules
        mutes = await self.store.mutes(now=datetime.now(UTC))
        newest_first = sorted(
            articles, key=lambda a: a.published or a.fetched_at or _EPOCH, reverse=True)
        fresh = [a for a in reversed(newest_first) if not await self.store.is_known(a)]
        if not fresh:
            return PollReport(source=running.name, seen=len(articles))
        loop = asyncio.get_running_loop()
        analyses = await loop.run_in_executor(self.executor, self._analyse_each, ruleset, fresh)
        routed = [(a, an, self._route(an[0], rules, mutes))
                  for a, an in zip(fresh, analyses, strict=True)]
        routed, overflow = self._cap(routed, running.config.max_alerts_per_poll)  # type: ignore[arg-type]
        new = 0
        for article, (matches, terms), entries in routed:
            if await self.store.record(article, matches, entries, terms=terms) is not None:
                new += 1
        for route, titles in overflow.items():
            await self.store.add_notice(route, f"{len(titles)} more from {running.name}")
        return PollReport(source=running.name, seen=len(articles), new=new)


# --------------------------------------------------------------------------- measurements


def matcher_rate(rs: RuleSet, articles: list[Article]) -> float:
    for a in articles[:500]:
        rs.match(a)  # warm the word cache, as a running service has it
    t0 = time.perf_counter()
    for a in articles:
        rs.match(a)
    return len(articles) / (time.perf_counter() - t0)


def write_folder(folder: Path, records: list[dict[str, str]], start: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, rec in enumerate(records):
        (folder / f"a{start + i:06d}.json").write_text(json.dumps(rec), encoding="utf-8")


async def ingest_rate(service_cls: type[WatchService], rules: list[RuleConfig],
                      records: list[dict[str, str]], workdir: Path) -> tuple[float, int, int]:
    """Articles/s from the folder to the store (outbox rows written), and the counts."""
    folder = workdir / "inbox"
    write_folder(folder, records, 0)
    store = await SqliteStore.open(workdir / "bench.db", terms_of=index_terms)
    executor = ThreadPoolExecutor(max_workers=1)
    src = FolderSourceConfig(name="inbox", type="folder", path=str(folder),
                             every=timedelta(seconds=1), settle=timedelta(0))
    service = service_cls(store=store, context=SourceContext(fetcher=None, resolve=Path),
                          sources=[src], rules=rules, executor=executor)
    try:
        t0 = time.perf_counter()
        while True:
            (report,) = await service.run_once()
            if report.error:
                raise SystemExit(f"ingest failed: {report.error}")
            if not report.new:
                break
        elapsed = time.perf_counter() - t0
        stored = await store.count_articles()
        alerts = sum((await store.alert_counts()).values())
    finally:
        await service.aclose()
        await store.aclose()
        executor.shutdown()
    return stored / elapsed, stored, alerts


async def import_rate(records: list[dict[str, str]], rules: list[RuleConfig], lines: int,
                      workdir: Path) -> tuple[float, int]:
    from watchers.importer import import_file

    rng = random.Random(11)
    path = workdir / "history.jsonl"
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
    store = await SqliteStore.open(workdir / "import.db", terms_of=index_terms)
    executor = ThreadPoolExecutor(max_workers=1)
    try:
        t0 = time.perf_counter()
        summary = await import_file(store, path, rules=rules, executor=executor)
        elapsed = time.perf_counter() - t0
    finally:
        await store.aclose()
        executor.shutdown()
    return summary.imported / elapsed, summary.imported


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--articles", type=int, default=10_000)
    p.add_argument("--rules", default="100,1000")
    p.add_argument("--import-lines", type=int, default=100_000)
    p.add_argument("--no-before", action="store_true", help="skip the per-article baseline")
    args = p.parse_args(argv)
    records = load_records()
    chosen = pick(records, args.articles)
    articles = [as_article(r, i) for i, r in enumerate(chosen)]
    words, phrases = corpus_vocabulary(articles)
    print(f"== ingest: {len(articles)} articles from {CORPORA} into a watched folder")
    print(f"{'rules':>6} {'matcher/s':>10} {'before/s':>9} {'ratio':>6} {'after/s':>9} "
          f"{'ratio':>6} {'stored':>7} {'alerts':>7}")
    biggest: list[RuleConfig] = []
    for n in (int(x) for x in args.rules.split(",")):
        rules = realistic_rules(n, words, phrases)
        configs = [RuleConfig(name=r.name, query=r.query) for r in rules]
        biggest = configs
        match = matcher_rate(RuleSet(rules), articles)
        before = 0.0
        if not args.no_before:
            with tempfile.TemporaryDirectory() as tmp:
                before, _, _ = asyncio.run(
                    ingest_rate(PerArticleWatchService, configs, chosen, Path(tmp)))
        with tempfile.TemporaryDirectory() as tmp:
            after, stored, alerts = asyncio.run(
                ingest_rate(WatchService, configs, chosen, Path(tmp)))
        print(f"{n:>6} {match:>10.0f} {before:>9.0f} {before / match:>6.0%} {after:>9.0f} "
              f"{after / match:>6.0%} {stored:>7} {alerts:>7}", flush=True)
    if args.import_lines:
        with tempfile.TemporaryDirectory() as tmp:
            rate, imported = asyncio.run(
                import_rate(records, biggest[:100], args.import_lines, Path(tmp)))
        print(f"== import: {imported} of {args.import_lines} recombined lines, 100 rules: "
              f"{rate:.0f} articles/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
