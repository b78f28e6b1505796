"""Cost of story clustering per article, against the ingest it adds to (printed, never asserted).

For 0, 1,000, 10,000 and 100,000 live stories in the window, the cost per article of
``signature_from()`` (after the matcher tokenised the article), of ``StoryIndex.assign()`` and
of the dump of the story's grown signature the store writes with the article
(``story_signature(id).dump()``, as ``watchers.importer.join_story`` does) for real corpus
articles (the same mix of the three corpora ``bench/ingest.py`` uses: Reddit
headlines, BBC and scraped articles with text).
The live stories are synthetic but realistic: headlines recombined from the corpora (the first
part of one real headline, the rest of another), dated within the window, so their words and
rare names are distributed as news is. A flat column as the stories grow is the point: lookup
reads bounded posting lists, never the set of stories.

Against: ``RuleSet.match`` per article with 100 and 1,000 realistic rules (``realistic_rules.py``),
and, unless ``--no-ingest``, the whole ingest path (``WatchService`` from memory into SQLite,
``bench/ingest.py``'s measure) with 100 rules. The rapidfuzz alternative, a batch scorer over
every live headline (``process.extractOne`` with ``fuzz.token_set_ratio``), is timed too: its
cost grows with the stories.

    .venv/bin/python bench/stories_bench.py [--articles 3000] [--sizes 0,1000,10000,100000]
                                            [--repeat 3] [--no-ingest]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from ingest import Once, folder_config, ingest_rate, load_records, pick  # noqa: E402, F401
from rapidfuzz import fuzz, process, utils  # noqa: E402
from realistic_rules import corpus_vocabulary, realistic_rules  # noqa: E402

from watchers.config import RuleConfig  # noqa: E402
from watchers.models import Article  # noqa: E402
from watchers.rules import RuleSet  # noqa: E402
from watchers.rules.matcher import Analysis  # noqa: E402
from watchers.service import WatchService  # noqa: E402
from watchers.stories import StoryIndex, signature, signature_from  # noqa: E402

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def synthetic_headlines(titles: list[str], n: int, seed: int = 11) -> list[str]:
    """``n`` distinct headlines, each the start of one real headline and the end of another."""
    rng = random.Random(seed)
    split = [t.split() for t in titles if len(t.split()) >= 4]
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        a, b = rng.choice(split), rng.choice(split)
        i, j = rng.randrange(2, len(a) - 1), rng.randrange(1, len(b) - 1)
        h = " ".join(a[:i] + b[j:])
        if h not in seen:
            seen.add(h)
            out.append(h)
    return out


def live_index(headlines: list[str]) -> StoryIndex:
    """One live story per headline, as a restart restores them (so none merge), spread over
    the 40 hours before NOW, the most recent last."""
    index = StoryIndex()
    span = timedelta(hours=40).total_seconds()
    for k, h in enumerate(headlines):
        when = NOW - timedelta(hours=44) + timedelta(seconds=span * k / max(1, len(headlines)))
        index.restore(f"live{k}", signature(h, ""), when, when, [f"outlet{k % 50}"])
    return index


def per_article(records: list[dict[str, str]], headlines: list[str], repeat: int
                ) -> tuple[float, float, float, int, int]:
    """Best µs per article for signature_from(), for assign() and for the grown signature's
    dump, the live stories, the joins."""
    sigs = [signature(r["title"], r["text"]) for r in records]  # warm the word caches
    articles = [Article(source="bench", title=r["title"], text=r["text"], url=r["url"] or None,
                        guid=str(i)) for i, r in enumerate(records)]
    best_sig = best_assign = best_dump = float("inf")
    joined = 0
    live = 0
    for _ in range(repeat):
        # As the engine calls it: after the matcher has tokenised the article's fields.
        analyses = [Analysis(a) for a in articles]
        for an in analyses:
            an.field("title")
            an.field("text")
        t0 = time.perf_counter()
        sigs = [signature_from(an) for an in analyses]
        best_sig = min(best_sig, (time.perf_counter() - t0) / len(records) * 1e6)
        index = live_index(headlines)
        live = len(index)
        # The restored stories are long-lived: frozen, the collector stops re-scanning them
        # (what the engine should do after restoring; without it the cost grows with them).
        gc.collect()
        gc.freeze()
        t0 = time.perf_counter()
        new = 0
        dump = 0.0
        for k, s in enumerate(sigs):
            sid, started = index.assign(f"a{k}", s, NOW, "bench")
            new += started
            # The store writes the story's grown signature with each article.
            t1 = time.perf_counter()
            grown = index.story_signature(sid)
            assert grown is not None
            grown.dump()
            dump += time.perf_counter() - t1
        elapsed = time.perf_counter() - t0 - dump
        best_assign = min(best_assign, elapsed / len(records) * 1e6)
        best_dump = min(best_dump, dump / len(records) * 1e6)
        gc.unfreeze()
        del index
        joined = len(records) - new
    return best_sig, best_assign, best_dump, live, joined


def batch_scorer(records: list[dict[str, str]], headlines: list[str]) -> float:
    """µs per article for one extractOne over every live headline (no index)."""
    sample = records[:200]
    choices = [utils.default_process(h) for h in headlines]
    t0 = time.perf_counter()
    for r in sample:
        process.extractOne(utils.default_process(r["title"]), choices,
                           scorer=fuzz.token_set_ratio, score_cutoff=60, processor=None)
    return (time.perf_counter() - t0) / len(sample) * 1e6


def matcher_us(rs: RuleSet, articles: list[Article], repeat: int) -> float:
    for a in articles[:500]:
        rs.match(a)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for a in articles:
            rs.match(a)
        best = min(best, (time.perf_counter() - t0) / len(articles) * 1e6)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=3000)
    ap.add_argument("--sizes", default="0,1000,10000,100000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-ingest", action="store_true")
    args = ap.parse_args()
    records = load_records()
    chosen = pick(records, args.articles)
    sizes = [int(x) for x in args.sizes.split(",")]
    # Live stories from the other headlines, so a measured article does not meet its own halves.
    measured = {r["title"] for r in chosen}
    pool = synthetic_headlines([r["title"] for r in records if r["title"] not in measured],
                               max(sizes) if sizes else 0)
    print(f"== story clustering: {len(chosen)} corpus articles (titles and text), "
          f"best of {args.repeat}")
    print(f"{'live stories':>12} | {'signature µs':>12} {'assign µs':>10} {'dump µs':>8} "
          f"{'total µs':>9} | {'joined':>6} | {'extractOne µs':>13}")
    totals = {}
    for n in sizes:
        sig_us, assign_us, dump_us, live, joined = per_article(chosen, pool[:n], args.repeat)
        totals[n] = total = sig_us + assign_us + dump_us
        scan = batch_scorer(chosen, pool[:n]) if n else 0.0
        print(f"{live:>12,} | {sig_us:>12.1f} {assign_us:>10.1f} {dump_us:>8.1f} {total:>9.1f} | "
              f"{joined:>6} | {scan:>13.0f}")

    articles = [Article(source="bench", title=r["title"], text=r["text"], url=r["url"] or None,
                        guid=str(i)) for i, r in enumerate(chosen)]
    words, phrases = corpus_vocabulary(articles)
    print("\n== against the matcher (RuleSet.match per article, realistic rules)")
    rules100: list[RuleConfig] = []
    for n in (100, 1000):
        rules = realistic_rules(n, words, phrases)
        if n == 100:
            rules100 = [RuleConfig(name=r.name, query=r.query) for r in rules]
        m = matcher_us(RuleSet(rules), articles, args.repeat)
        line = ", ".join(f"{totals[k] / m:.0%} at {k:,} stories" for k in sizes)
        print(f"  {n:>5} rules: matcher {m:7.1f} µs/article; clustering adds {line}")
    if not args.no_ingest:
        best_rate = 0.0
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                folder_articles = [Article(source="inbox", guid=f"a{i:06d}.json",
                                           title=a.title, text=a.text, url=a.url)
                                   for i, a in enumerate(articles)]
                rate, _, _ = asyncio.run(ingest_rate(WatchService, rules100, Path(tmp) / "inbox",
                                                     Path(tmp) / "nw.db", folder_articles))
                best_rate = max(best_rate, rate)
        ingest = 1e6 / best_rate
        line = ", ".join(f"{totals[k] / ingest:.0%} at {k:,} stories" for k in sizes)
        print(f"\n== against ingest (WatchService from memory into SQLite, 100 rules): "
              f"{ingest:.0f} µs/article; clustering adds {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
