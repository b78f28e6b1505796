"""What story grouping adds to ingest, in instructions (callgrind), which a busy machine does
not move: the figure the clock bench (`bench/stories_ingest.py`) cannot give reliably here.

For each number of live stories and each mode (without and with stories), one process runs
under callgrind. It first ingests 1,000 *other* corpus articles (into a copy of a store
holding the live stories), as a running service has met other news before, then opens a fresh
copy of that store, restores the live stories into the live index and ingests 3,000 corpus
articles it has never seen, through the service, with 100 realistic rules (the same ones would
find the per-word caches holding all their words, and cost about half). Only that last ingest
is counted (callgrind's instrumentation is switched on for it alone, see
`_callgrind.window`), divided by the articles. `PYTHONHASHSEED=0` and one OpenBLAS thread (its
idle threads otherwise add a random 20,000-90,000 instructions an article).

    .venv/bin/python bench/stories_callgrind.py [--live 0,1000,100000] [--jobs 2]

Needs valgrind. About three minutes a number of live stories: the set-up runs uninstrumented.
(The count was the difference of two processes, one of which ingested, each instrumented
throughout: an hour for 100,000 live stories.)
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _callgrind import valgrind_missing, window, window_instructions  # noqa: E402

ARTICLES = 3000
WARM = 1000  # the other articles taken in first
# The articles' time, and the live stories' (fill_stories reads the clock): fixed, so that
# every process does the same work.
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def child(live: int, stories: bool) -> None:
    import stories_ingest as si

    from watchers.models import Article

    articles, others, rules, titles = si.material(ARTICLES, WARM, 100, NOW)

    class Fixed(datetime):
        @classmethod
        def now(cls, tz: object = None) -> Fixed:
            return NOW  # type: ignore[return-value]

    vars(si)["datetime"] = Fixed  # fill_stories dates its stories by the clock

    async def one(db: Path, counted: bool, batch: list[Article]) -> None:
        async with si.serving(db, rules, batch, stories=stories) as (service, _):
            await service.story_index()
            with window() if counted else nullcontext():
                (report,) = await service.run_once()
            if report.error:
                raise SystemExit(f"ingest failed: {report.error}")

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        base.mkdir()
        asyncio.run(si.fill_stories(base / "nw.db", titles, live))
        # The other articles first, uncounted; then the measured ones, unseen.
        for k, (counted, batch) in enumerate(((False, others), (True, articles))):
            run = Path(tmp) / f"run{k}"
            (run / "inbox").mkdir(parents=True)
            for f in base.iterdir():
                shutil.copy(f, run / f.name)
            asyncio.run(one(run / "nw.db", counted, batch))


def count(live: int, stories: bool) -> int:
    return window_instructions(__file__, f"{live},{int(stories)}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--live", default="0,1000,100000")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        live, stories = (int(x) for x in args.child.split(","))
        child(live, bool(stories))
        return 0
    try:
        lives = [int(x) for x in args.live.split(",")]
    except ValueError:
        lives = []
    if not lives or min(lives) < 0:
        print(f"stories_callgrind: --live takes numbers of live stories, 0 or more, separated "
              f"by commas (0,1000,100000), not {args.live!r}", file=sys.stderr)
        return 2
    if valgrind_missing("stories_callgrind"):
        return 2
    runs = [(live, stories) for live in lives for stories in (False, True)]
    print(f"== story grouping in ingest, callgrind: {ARTICLES} corpus articles never seen "
          f"before (after {WARM} others), 100 rules, {len(runs)} processes", flush=True)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        counts = dict(zip(runs, pool.map(lambda r: count(*r), runs), strict=True))
    for live in lives:
        per = {stories: counts[live, stories] / ARTICLES for stories in (False, True)}
        print(f"   {live:>7,} live stories: without {per[False]:>10,.0f}  with "
              f"{per[True]:>10,.0f} instructions/article  +{per[True] / per[False] - 1:.1%}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
