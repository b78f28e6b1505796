"""Deciding's cost as the rules grow, in instructions (callgrind), which a busy machine does not
move: the figure `bench/match_bench.py`'s clock varies by a fifth from run to run here.

For each number of realistic rules one process runs under callgrind. It decides the bench's
300 corpus articles twice (``RuleSet.decide``, what ingest runs) so that
every cache is warm, as in the bench's column (d), then decides the first ``--articles`` of
them again with collection switched on for that pass alone (callgrind's
``--toggle-collect`` on the ``functools.reduce`` that calls it).

    .venv/bin/python bench/match_callgrind.py [--rules 1000,10000] [--articles 100] [--jobs 2]
        [--set realistic|generated]

``--set generated``: the bench's generated rules (``match_bench.generate_rules``: rarer words,
sloppy phrases, which the Python evaluator decides) on the same articles.

Needs valgrind; 10,000 rules take about three minutes. Instructions are not time: at 10,000
rules the rule tables no longer fit the processor's caches, and the clock's ratio is higher.
"""

from __future__ import annotations

import argparse
import functools
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _callgrind import instructions, valgrind_missing  # noqa: E402


def child(rules: int, articles: int, kind: str) -> None:
    import match_bench as mb
    from realistic_rules import corpus_vocabulary, realistic_rules

    from watchers.rules import RuleSet

    everything = mb.load_all()
    chosen = mb.news_articles(everything, 300)
    if kind == "generated":
        rs = RuleSet(mb.generate_rules(rules, mb.vocabulary(everything)))
    else:
        words, phrases = corpus_vocabulary(chosen)
        rs = RuleSet(realistic_rules(rules, words, phrases))
    for _ in range(2):
        for a in chosen:
            rs.decide(a)
    measured = chosen[:articles]

    def decide() -> None:
        for a in measured:
            rs.decide(a)

    # The toggle: collection runs while this reduce (and so decide) runs, and only then.
    functools.reduce(lambda _, f: f(), [decide], None)


def count(rules: int, articles: int, kind: str) -> int:
    return instructions(__file__, f"{rules},{articles},{kind}",
                        "--toggle-collect=functools_reduce")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rules", default="1000,10000")
    p.add_argument("--articles", type=int, default=100)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--set", default="realistic", choices=("realistic", "generated"),
                   help="the rule set (default: realistic)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        rules, articles, kind = args.child.split(",")
        child(int(rules), int(articles), kind)
        return 0
    if not 1 <= args.articles <= 300:
        print(f"match_callgrind: --articles must be from 1 to 300, not {args.articles}",
              file=sys.stderr)
        return 2
    if valgrind_missing("match_callgrind"):
        return 2
    sizes = [int(x) for x in args.rules.split(",")]
    print(f"== deciding, callgrind: {args.articles} corpus articles met before, {args.set} rules",
          flush=True)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        counts = list(pool.map(lambda n: count(n, args.articles, args.set), sizes))
    per = [c / args.articles for c in counts]
    for n, x in zip(sizes, per, strict=True):
        print(f"   {n:>6,} rules: {x:>10,.0f} instructions/article  x{x / per[0]:.2f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
