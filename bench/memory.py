"""Resident memory of a running newswatch: 10,000 realistic rules over the 1,000,000-article
benchmark store (built once by `make scale`, under /tmp/newswatch-bench), after start-up, after
a poll and after a few lookups (the last ones read the index's word list).

Run: .venv/bin/python bench/memory.py [--rules 10000] [--articles 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from match_bench import load_all, news_articles  # noqa: E402
from realistic_rules import corpus_vocabulary, realistic_rules  # noqa: E402
from scale_store import build, store_path  # noqa: E402

from watchers.config import parse_config  # noqa: E402
from watchers.engine import open_engine  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class NullSink:
    async def deliver(self, alert: object) -> str | None:
        return None


def prepare(n_articles: int) -> None:
    """The cached store, built first if missing; then the measurement runs in a process of its
    own (the build's memory stayed with the process that built it: 613 MB before start)."""
    if not store_path(n_articles).exists():
        print(f"building the {n_articles:,}-article store first (once) …", flush=True)
        build(n_articles)
        os.execv(sys.executable, [sys.executable, *sys.argv])


async def main(n_rules: int, n_articles: int) -> None:
    db = store_path(n_articles)
    print(f"baseline interpreter: {rss_mb():.0f} MB")
    articles = news_articles(load_all(), 2000)
    words, phrases = corpus_vocabulary(articles)
    rules = [{"name": f"r{i}", "query": r.query}
             for i, r in enumerate(realistic_rules(n_rules, words, phrases))]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        for i, a in enumerate(articles[:50]):
            (folder / f"{i}.txt").write_text(f"{a.title}\n{a.text}\n", encoding="utf-8")
        work = Path(tmp) / "nw.db"
        print(f"copying the store ({db.stat().st_size / 1e9:.1f} GB) …", flush=True)
        shutil.copyfile(db, work)
        cfg = parse_config({"storage": {"path": str(work)},
                            "sources": [{"name": "in", "type": "folder", "path": str(folder),
                                         "settle": 0}],
                            "rules": rules})
        async with open_engine(cfg, default_sink=NullSink(), start=False) as engine:
            print(f"{n_rules:,} rules, {await engine.count_articles():,} articles: "
                  f"after start {rss_mb():.0f} MB")
            await engine.run_once()
            print(f"  after a poll of 50 articles: {rss_mb():.0f} MB")
            for q in ("government", "troops OR soldiers", '"prime minister"', "title:putin"):
                await engine.search(q, limit=20)
            print(f"  after four lookups: {rss_mb():.0f} MB")
            for q in ("kyiv~", "/covid-?19/", "mobili*"):
                await engine.search(q, limit=20)
            print(f"  after a fuzzy, a regex and a prefix lookup (the index's word list read): "
                  f"{rss_mb():.0f} MB")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rules", type=int, default=10000)
    p.add_argument("--articles", type=int, default=1000000)
    a = p.parse_args()
    prepare(a.articles)
    asyncio.run(main(a.rules, a.articles))
