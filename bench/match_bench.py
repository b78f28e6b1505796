"""Matching speed on real news as the number of rules grows (``make bench``).

Two rule sets, each at 10, 100, 1,000 and 10,000 rules of mixed kinds (about 60% keywords and
phrases, 25% boolean, 10% fuzzy, 5% regex):

- *generated*: words of the corpus that are rare in English, so rules seldom fire; over a mixed
  sample (BBC full texts, Reddit headlines, scraped pages);
- *realistic* (:mod:`realistic_rules`): words ranked 200-6,000 in the corpus and phrases that
  occur in it, so about 3% of rules fire per article (33 of 1,000), as a team's rules do; over
  full-text news articles of about 5 KB (BBC and scraped pages of 3,000 characters or more, cut
  at 8,000).

For each it prints articles per second for

  (a) the naive loop: every rule parsed-once but tried in turn with no index (``match_naive``),
  (b) the compiled RuleSet (``match``), each match with its evidence (spans, highlights),
  (d) the compiled RuleSet deciding only (``RuleSet.decide``): which rules
      match and their scores, what ingest runs (an alert's evidence is built when it is shown),
  (c) tokenising alone (what any matcher must spend to read the article),
  (u) (d) on articles it has never met: a fresh process that first decides
      every other corpus article (about 11,000, as a running newswatch has met the news before
      these), then the sample once. This is what ingest meets: an article's new words are
      folded and judged against the fuzzy terms the first time they are seen, which (b), the
      best of repeated passes over the same articles, never counts;

with the ratios b/a and d/c, and the time to compile the rule set. The articles are
``../shared/corpora/articles/*.jsonl`` (BBC full texts, Reddit headlines, scraped pages), a
fixed sample of them, the same for every row. The compiled results are checked against the
naive loop on the sample as it runs. One core: the process runs single-threaded.

``--pure`` hides the optional speed-ups (``numpy``, ``hyperscan``, and the C word scan
``watchers.rules._ctext`` through ``NEWSWATCH_PURE=1``) so the figures are those of an install
with none of them; results are identical either way. ``--cpu`` measures rates by the
process's CPU time instead of wall time, which other load on a shared machine moves less.
After each table, (d) is timed again with the sizes taking turns for ``--rounds`` rounds (12 by
default), which gives the growth per tenfold rules without the drift of a shared machine's
speed between one size's row and the next.

Run from the repo root: ``python bench/match_bench.py [--pure] [--set realistic] [--rules ...]``.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
if "--pure" in sys.argv:
    # Before anything imports them: an import of a None entry raises ImportError, which is how
    # the rule engine finds an optional package missing; the tokeniser reads its switch once,
    # at import.
    for _name in ("numpy", "hyperscan"):
        sys.modules[_name] = None  # type: ignore[assignment]
    os.environ["NEWSWATCH_PURE"] = "1"

from watchers.models import Article  # noqa: E402
from watchers.rules import Rule, RuleSet  # noqa: E402
from watchers.rules import text as text_module  # noqa: E402
from watchers.rules.matcher import Analysis  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from realistic_rules import corpus_vocabulary, realistic_rules  # noqa: E402

CORPORA = REPO.parent / "shared" / "corpora" / "articles"
NEWS_WORDS = [
    "russia",
    "ukraine",
    "kyiv",
    "kiev",
    "putin",
    "zelensky",
    "nato",
    "sanctions",
    "troops",
    "border",
    "talks",
    "ceasefire",
    "missile",
    "drone",
    "kharkiv",
    "odesa",
    "donbas",
    "luhansk",
    "crimea",
    "moscow",
    "kremlin",
    "europe",
    "election",
    "market",
    "bank",
    "inflation",
    "oil",
    "gas",
    "energy",
    "shares",
    "profit",
    "court",
    "police",
    "minister",
    "government",
    "parliament",
]


def load_all() -> list[Article]:
    files = sorted(CORPORA.glob("*.jsonl")) if CORPORA.is_dir() else []
    if not files:
        raise SystemExit(f"no corpora at {CORPORA}: the benchmark reads ../shared/corpora")
    everything: list[Article] = []
    for path in files:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                everything.append(
                    Article(id=rec["id"], title=rec.get("title") or "", text=rec.get("text") or "")
                )
    return everything


def load_articles(limit: int, seed: int = 7) -> list[Article]:
    everything = load_all()
    rng = random.Random(seed)
    rng.shuffle(everything)
    return everything[:limit]


def news_articles(everything: list[Article], limit: int, seed: int = 7) -> list[Article]:
    """Full-text articles of 3,000 characters or more, cut at a space before 8,000 (~5 KB)."""
    out = []
    for a in everything:
        if source_of(a) == "reddit headlines" or len(a.title) + len(a.text) < 3000:
            continue
        text = a.text if len(a.text) <= 8000 else a.text[: a.text.rfind(" ", 0, 8000)]
        out.append(a.model_copy(update={"text": text}))
    rng = random.Random(seed)
    rng.shuffle(out)
    return out[:limit]


def vocabulary(articles: list[Article], size: int = 20000, max_zipf: float = 4.0) -> list[str]:
    """Corpus words for rules: the ``size`` most frequent that are not common English.

    Alert rules name specific things (places, people, products, events), so words more common
    than ``max_zipf`` in English (about one in 10,000 words: "said", "courts", "demand") are
    left out; with them, every rule would match a large share of all articles.
    """
    from watchers.rules.variants import _zipf

    counts: Counter[str] = Counter()
    for a in articles:
        counts.update(w.lower() for w in re.findall(r"[A-Za-z]{4,}", f"{a.title} {a.text}"))
    ranked = [w for w, _ in counts.most_common() if _zipf(w) < max_zipf]
    return ranked[:size]


def generate_rules(n: int, words: list[str], seed: int = 1) -> list[Rule]:
    """``n`` distinct rules: ~60% keywords/phrases, 25% boolean, 10% fuzzy, 5% regex.

    Words come from the corpus vocabulary; the common news words (Russia, sanctions ...) appear
    only beside another word, as a qualifier, the way alert rules use them.
    """
    rng = random.Random(seed)

    def w() -> str:
        return rng.choice(words)

    def news() -> str:
        return rng.choice(NEWS_WORDS)

    seen: set[str] = set()
    rules: list[Rule] = []
    while len(rules) < n:
        r = rng.random()
        if r < 0.35:
            q = w()
        elif r < 0.45:
            q = f"{w()} OR {w()} OR {w()}"
        elif r < 0.60:
            q = f'"{w()} {w()}"' if rng.random() < 0.7 else f'"{news()} {w()}"~3'
        elif r < 0.70:
            q = f"{w()} AND ({news()} OR {w()})"
        elif r < 0.78:
            q = f"{w()} {news()} -{w()}"
        elif r < 0.85:
            q = f"{w()} NEAR/5 {news()}"
        elif r < 0.95:
            q = f"{w()}~" if rng.random() < 0.7 else f"{w()}~ AND {news()}"
        else:
            a, b = w(), w()
            q = rng.choice(
                [f"/{a}s? (and|or) {b}/", f"/\\b{a}\\w*/", f"/{a} [0-9]+/", f"/{b}\\W+{a}/"]
            )
        if q not in seen:
            seen.add(q)
            rules.append(Rule(name=f"r{len(rules):05d}", query=q))
    return rules


# The clock rates are measured by: wall time, or (--cpu) this process's CPU time, which moves
# less when other processes share the machine.
CLOCK: Callable[[], float] = time.perf_counter


def per_second(fn: Callable[[Article], object], articles: list[Article], repeat: int = 1) -> float:
    """Articles per second, the best of ``repeat`` runs (the machine may be shared)."""
    best = float("inf")
    for _ in range(repeat):
        start = CLOCK()
        for a in articles:
            fn(a)
        best = min(best, CLOCK() - start)
    return len(articles) / best if best else float("inf")


def naive_sample(rs: RuleSet, articles: list[Article], budget_s: float) -> list[Article]:
    """As many articles as the naive loop gets through in ``budget_s`` (at least three)."""
    out = []
    start = time.perf_counter()
    for a in articles:
        out.append(a)
        rs.match_naive(a)
        if len(out) >= 3 and time.perf_counter() - start > budget_s:
            break
    return out


def tokenise_only(article: Article) -> None:
    analysis = Analysis(article)
    analysis.field("title")
    analysis.field("text")


_BARE_WORD = re.compile(r"\w+")


def bare_regex(article: Article) -> None:
    """A bare ``re.findall`` word pass over the article: the machine's speed, for context."""
    _BARE_WORD.findall(article.title)
    _BARE_WORD.findall(article.text)


def source_of(article: Article) -> str:
    return {"fwd": "reddit headlines", "bbc": "bbc full text", "kj": "scraped pages"}.get(
        article.id.split("-")[0], "other"
    )


def unseen_rate(rs: RuleSet, articles: list[Article], everything: list[Article]) -> float:
    """Articles per second over ``articles`` met for the first time, once ``rs`` has matched
    every other article of ``everything`` (run in a fresh process: the caches are global)."""
    ids = {a.id for a in articles}
    for a in everything:
        if a.id not in ids:
            decide(rs, a)
    return per_second(functools.partial(decide, rs), articles)


def decide(rs: RuleSet, article: Article) -> object:
    """(d): which rules match ``article`` and their scores, no evidence (what ingest runs)."""
    return rs.decide(article)


def unseen_in_child(label: str, n: int, count: int, pure: bool) -> float:
    """:func:`unseen_rate` for ``n`` rules of set ``label``, in a child process."""
    cmd = [sys.executable, __file__, "--unseen-worker", "--set", label, "--rules", str(n),
           "--articles", str(count)]
    if pure:
        cmd.append("--pure")
    if CLOCK is time.process_time:
        cmd.append("--cpu")
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"the unseen-articles run failed ({n} rules):\n{out.stderr}")
    return float(out.stdout.split()[-1])


def table(
    label: str,
    articles: list[Article],
    make_rules: Callable[[int], list[Rule]],
    sizes: list[int],
    naive_seconds: float,
    by_source: bool,
    unseen: Callable[[int], float] | None = None,
    rounds: int = 0,
) -> None:
    chars = sum(len(a.title) + len(a.text) for a in articles) / len(articles)
    kinds = Counter(source_of(a) for a in articles)
    print(
        f"== {label} rules: {len(articles)} articles, mean {chars:.0f} characters "
        f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))})\n"
    )
    # Warm the shared caches (word folding, frequencies) so the first row is not penalised.
    for a in articles:
        tokenise_only(a)
    bare = per_second(bare_regex, articles, repeat=3)
    print(
        f"a bare re.findall word pass: {bare:,.0f} articles/s on this machine now "
        "(rates below scale with it)\n"
    )

    header = (
        f"{'rules':>6} {'compile s':>9} {'(a) naive/s':>12} {'(b) compiled/s':>15} "
        f"{'(d) decide/s':>13} {'(c) tokenise/s':>15} {'b/a':>7} {'d/c':>6} {'cand.':>7} "
        f"{'matches':>8} {'naive':>6}{'(u) unseen/s':>13}"
    )
    print(header)
    print("-" * len(header))
    previous: tuple[int, float, float, float] | None = None
    growth = []
    last: RuleSet | None = None
    kept: dict[int, RuleSet] = {}
    for n in sizes:
        rules = make_rules(n)
        t0 = time.perf_counter()
        rs = RuleSet(rules)
        compile_s = time.perf_counter() - t0
        sample = naive_sample(rs, articles, naive_seconds)
        naive_rate = per_second(rs.match_naive, sample)
        # The compiled path is warmed over the articles once (its token cache is part of its
        # design) and checked against the naive loop on the naive sample.
        roomy: RuleSet | None = None
        for a in sample:
            if rs.match(a) != rs.match_naive(a):
                # Regexes share a wall-clock budget per article, which a loaded machine can
                # exhaust in one run and not the other; only a difference that remains with a
                # budget no article reaches is a wrong result.
                roomy = roomy or RuleSet(rules, regex_budget=3600.0)
                if roomy.match(a) != roomy.match_naive(a):
                    raise SystemExit(f"compiled and naive results differ on {a.id} at {n} rules")
                print(f"  ({a.id}: a regex ran out of its time budget in one run; equal without)")
        for a in articles:
            full, decided = rs.match(a), rs.decide(a).decisions
            if [(m.rule, m.score) for m in full] != [(d.rule, d.score) for d in decided]:
                raise SystemExit(f"deciding and matching differ on {a.id} at {n} rules")
        matches = sum(len(rs.match(a)) for a in articles) / len(articles)
        candidates = sum(len(rs.candidates(a)) for a in articles) / len(articles)
        compiled_rate = per_second(rs.match, articles, repeat=2)
        decide_rate = per_second(functools.partial(decide, rs), articles, repeat=2)
        tok_rate = per_second(tokenise_only, articles, repeat=3)
        unseen_r = unseen(n) if unseen is not None else float("nan")
        print(
            f"{n:>6} {compile_s:>9.3f} {naive_rate:>12,.1f} {compiled_rate:>15,.0f} "
            f"{decide_rate:>13,.0f} {tok_rate:>15,.0f} {compiled_rate / naive_rate:>7.0f} "
            f"{decide_rate / tok_rate:>6.2f} {candidates:>7.1f} {matches:>8.2f} "
            f"{'=' + str(len(sample)):>6}{unseen_r:>13,.0f}"
        )
        if previous is not None:
            growth.append((previous[0], n, previous[1] / compiled_rate,
                           previous[2] / decide_rate, previous[3] / unseen_r))
        previous = (n, compiled_rate, decide_rate, unseen_r)
        last = rs
        if rounds:
            kept[n] = rs
    print("\ntime per article as the rules grow (target: 10x rules costs at most 3x time)")
    for small, big, g, g_decide, g_unseen in growth:
        also = f", unseen articles x{g_unseen:.2f}" if unseen is not None else ""
        print(f"  {small:>6} -> {big:<6} with evidence x{g:.2f}, deciding x{g_decide:.2f}{also}")
    if len(kept) > 1:
        interleaved(articles, kept, rounds)
    if last is not None and by_source:
        print(f"\nby source at {len(last)} rules (compiled vs tokenising alone)")
        for kind in sorted(kinds):
            group = [a for a in articles if source_of(a) == kind]
            b = per_second(last.match, group, repeat=2)
            c = per_second(tokenise_only, group, repeat=3)
            m = sum(len(last.match(a)) for a in group) / len(group)
            print(f"  {kind:<17} {b:>9,.0f}/s {c:>9,.0f}/s  b/c {b / c:.2f}  matches {m:.2f}")
    print()


def interleaved(articles: list[Article], sets: dict[int, RuleSet], rounds: int) -> None:
    """(d) at every size again, the sizes taking turns in each of ``rounds`` rounds (in reverse
    order every other round): a shared machine's speed drifts over seconds, and the sizes
    measured one after the other, as the table does, meet different machines. Prints each
    size's best round and the growth per tenfold rules, as the ratio of the best rounds and as
    the median of the rounds' own ratios."""
    rates: dict[int, list[float]] = {n: [] for n in sets}
    order = list(sets.items())
    for r in range(rounds):
        for n, rs in order if r % 2 == 0 else reversed(order):
            rates[n].append(per_second(functools.partial(decide, rs), articles))
    print(f"\n(d) decide again, the sizes taking turns over {rounds} rounds "
          f"(best round; growth as the ratio of best rounds, and the median of each round's):")
    sizes = sorted(sets)
    for n in sizes:
        print(f"  {n:>6} rules: {max(rates[n]):>9,.0f} articles/s")
    for small, big in itertools.pairwise(sizes):
        per_round = sorted(a / b for a, b in zip(rates[small], rates[big], strict=True))
        print(f"  {small:>6} -> {big:<6} x{max(rates[small]) / max(rates[big]):.2f} (best rounds), "
              f"x{per_round[len(per_round) // 2]:.2f} (median round)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=2000, help="articles for (b) and (c)")
    ap.add_argument("--naive-seconds", type=float, default=3.0, help="time budget for (a)")
    ap.add_argument("--rules", default="10,100,1000,10000")
    ap.add_argument("--set", default="realistic,generated", help="rule sets to run")
    ap.add_argument("--pure", action="store_true", help="hide numpy, hyperscan and the C word scan")
    ap.add_argument("--cpu", action="store_true", help="rates by CPU time, not wall time")
    ap.add_argument("--rounds", type=_rounds, default=12,
                    help="rounds of (d) with the sizes taking turns, after the table (0: none)")
    ap.add_argument("--no-unseen", action="store_true",
                    help="skip (u), the runs on articles never met (a process per row)")
    ap.add_argument("--unseen-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    global CLOCK
    if args.cpu:
        CLOCK = time.process_time

    sizes = [int(x) for x in args.rules.split(",")]
    extras = [m for m in ("numpy", "hyperscan") if _importable(m)]
    if text_module._scan is not None:
        extras.append("C word scan")
    print(
        f"optional speed-ups in use: {', '.join(extras) or 'none (plain install)'}; one core; "
        f"rates are the best of repeated runs, by {'CPU' if args.cpu else 'wall'} time\n"
    )
    everything = load_all()
    for name in args.set.split(","):
        if name == "realistic":
            articles = news_articles(everything, args.articles)
            words, phrases = corpus_vocabulary(articles)

            def make(n: int, w: list[str] = words, p: list[tuple[str, str]] = phrases
                     ) -> list[Rule]:
                return realistic_rules(n, w, p)
        elif name == "generated":
            articles = load_articles(args.articles)
            vocab = vocabulary(articles)

            def make(n: int, v: list[str] = vocab) -> list[Rule]:
                return generate_rules(n, v)
        else:
            raise SystemExit(f"unknown rule set {name!r}: realistic or generated")
        if args.unseen_worker:
            print(unseen_rate(RuleSet(make(sizes[0])), articles, everything))
            return 0

        def unseen(n: int, label: str = name, count: int = args.articles) -> float:
            return unseen_in_child(label, n, count, args.pure)

        table(name, articles, make, sizes, args.naive_seconds, by_source=name == "generated",
              unseen=None if args.no_unseen else unseen, rounds=args.rounds)
    print(
        "(a) runs on as many articles as fit in --naive-seconds; naive = how many of them were "
        "checked\nto return exactly what (b) did; cand. = rules evaluated per article after the "
        "index;\nmatches = mean rules matched per article; (d) decide = which rules match and "
        "their scores,\nno evidence (what ingest runs; every article's (d) is checked against "
        "(b)); (u) unseen = (d) on the\narticles met for the first time, after every other "
        "corpus article (a fresh process)"
    )
    return 0


def _rounds(text: str) -> int:
    """``--rounds``: a whole number, 0 or more."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"a number of rounds, 0 or more, not {text!r}")
    return n


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
