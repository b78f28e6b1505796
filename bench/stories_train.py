"""Learn the story pair scorer on the even half of the labelled set and the fresh days of
``stories_eval.FRESH_LEARNT`` (numpy here only).

The training set: the even half of ``reddit_labelled.jsonl`` (labels whose SHA-1 is even) and
the fresh set's days of ``stories_eval.FRESH_LEARNT`` (``reddit_fresh.jsonl``: every headline
of those days, labelled): 6-7 December 2021 and 1-5 February 2022. Never read here: the odd
half, the fresh days held out (16-20 January, 3-8 June 2022) and the later ones.

Pairs: every two articles of the training set within 48 hours of each other that share a term the
index looks up (the pairs the live index could ever compare), labelled same story or not.
Features: :func:`watchers.stories.index.features` on their signatures. Model: L2-regularised
logistic regression fitted by Newton's method. Then the two decision bars (against a story's
founder, against its closest exemplar) are chosen by clustering the training set through
:func:`watchers.stories.cluster` for each pair of bars on a grid, keeping the best pairwise
F0.4 (precision first: a wrong merge silences an alert).

``--folds K`` first estimates the whole procedure (fit, then bars) by K-fold cross-validation
inside the training set, folds by a hash of the label; that estimate, not the training set's own
figure, is what a feature or decision change is judged by. Small folds hold fewer look-alike
stories than a half, so their precision reads high.

Prints the constants to paste into ``watchers/stories/index.py``.

    .venv/bin/python bench/stories_train.py [--l2 1.0] [--folds 2]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from stories_eval import FRESH, FRESH_LEARNT, LABELLED, is_even, load, within  # noqa: E402

import watchers.stories.index as ix  # noqa: E402
from watchers.stories import StoryInput, cluster, signature  # noqa: E402
from watchers.stories.metrics import pairwise  # noqa: E402

WINDOW = timedelta(hours=48)
# Precision first: F-beta with beta < 1 when choosing the bars.
BETA = 0.4


def pairs(items: Sequence[StoryInput], gold: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    exs = []
    for it in sorted(items, key=lambda it: it.date):
        sig = signature(it.title, it.text)
        if sig.exemplars:
            exs.append((it, ix._Ex(sig.exemplars[0])))
    xs, ys = [], []
    for i, (a, ea) in enumerate(exs):
        look = {t for t, w in ea.weights.items() if w >= ix._INDEX_MIN}
        for b, eb in exs[i + 1:]:
            if b.date - a.date > WINDOW:
                break
            if not look & eb.weights.keys() or len(ea.title & eb.title) < ix._MIN_TITLE:
                continue  # never a candidate, or never the same story
            gap = (b.date - a.date).total_seconds() / 3600.0
            f = ix.features(ea, eb, gap)
            if ix._VETO and (f[ix._EVENT_CONFLICT] or f[ix._ACTOR_CONFLICT]):
                continue  # decided by the veto, not by the model
            xs.append(f)
            ys.append(1.0 if gold[a.id] == gold[b.id] else 0.0)
    return np.array(xs), np.array(ys)


def fit(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[float, np.ndarray]:
    xb = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(xb.shape[1])
    reg = np.full(xb.shape[1], l2)
    reg[0] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-xb @ w))
        grad = xb.T @ (p - y) + reg * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(reg)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return float(w[0]), w[1:]


def scores(items: Sequence[StoryInput], gold: dict[str, str]) -> tuple[float, float]:
    pred = {i: s.id for s in cluster(items) for i in s.ids}
    s = pairwise(pred, {it.id: gold[it.id] for it in items})
    return s.precision, s.recall


def fbeta(p: float, r: float, beta: float = BETA) -> float:
    return (1 + beta**2) * p * r / (beta**2 * p + r) if p + r else 0.0


def install(bias: float, coef: np.ndarray, founder: float, join: float) -> None:
    ix._BIAS = bias
    ix._COEF = tuple(float(c) for c in coef)
    ix._FOUNDER = founder
    ix._JOIN = join


GRID = [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
FOUNDER_GRID = GRID


def choose(items: Sequence[StoryInput], gold: dict[str, str], bias: float, coef: np.ndarray,
           verbose: bool) -> tuple[float, float]:
    best = (-1.0, 0.0, 0.0)
    for founder in FOUNDER_GRID:
        for join in [j for j in GRID if j >= founder]:
            install(bias, coef, founder, join)
            p, r = scores(items, gold)
            if verbose:
                print(f"  founder {founder:5.1f} join {join:5.1f}: P {p:.3f} R {r:.3f}")
            if fbeta(p, r) > best[0]:
                best = (fbeta(p, r), founder, join)
    return best[1], best[2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--folds", type=int, default=0, metavar="K",
                    help="also cross-validate within the training set (K folds by label hash)")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--no-veto", action="store_true")
    ap.add_argument("--min-founder", type=float, default=GRID[0],
                    help="lowest bar against the founder to try")
    ap.add_argument("--exemplars", type=int, default=ix._EXEMPLARS)
    args = ap.parse_args()
    items, gold = load(LABELLED)
    fresh, fresh_gold = load(FRESH)
    # A few fresh lines are in the labelled set too (labelled there within a wider window).
    trained = [it for it in fresh
               if within(it, FRESH_LEARNT) and it.id not in gold]
    gold = {**gold, **{it.id: fresh_gold[it.id] for it in trained}}
    ix._EXEMPLARS = args.exemplars
    ix._VETO = not args.no_veto
    global FOUNDER_GRID
    FOUNDER_GRID = [g for g in GRID if g >= args.min_founder]
    train_set = [it for it in items if is_even(gold[it.id])] + trained
    if args.folds:
        import hashlib

        k_folds: int = args.folds
        if k_folds < 2:
            raise SystemExit("--folds needs at least 2 folds")

        def fold(it: StoryInput) -> int:
            return int(hashlib.md5(gold[it.id].encode()).hexdigest(), 16) % k_folds

        res: list[tuple[float, float]] = []
        for k in range(k_folds):
            train = [it for it in train_set if fold(it) != k]
            test = [it for it in train_set if fold(it) == k]
            x, y = pairs(train, gold)
            bias, coef = fit(x, y, args.l2)
            founder, join = choose(train, gold, bias, coef, False)
            install(bias, coef, founder, join)
            p, r = scores(train, gold)
            tp, tr = scores(test, gold)
            res.append((tp, tr))
            print(f"fold {k}: bars {founder}/{join}; train P {p:.3f} R {r:.3f}; "
                  f"test P {tp:.3f} R {tr:.3f}")
        print(f"folds' test mean: P {sum(p for p, _ in res) / k_folds:.3f} "
              f"R {sum(r for _, r in res) / k_folds:.3f}")
    x, y = pairs(train_set, gold)
    print(f"{len(y)} pairs, {int(y.sum())} same story")
    bias, coef = fit(x, y, args.l2)
    for name, c in zip(ix.FEATURES, coef, strict=True):
        print(f"  {name:15} {c:+.3f}")
    founder, join = choose(train_set, gold, bias, coef, args.verbose)
    install(bias, coef, founder, join)
    p, r = scores(train_set, gold)
    print(f"training set: P {p:.3f} R {r:.3f}\n")
    print(f"_BIAS = {bias:.3f}")
    print("_COEF: tuple[float, ...] = (" + ", ".join(f"{c:.3f}" for c in coef[:7]) + ",")
    print("         " + ", ".join(f"{c:.3f}" for c in coef[7:]) + ")")
    print(f"_FOUNDER = {founder}")
    print(f"_JOIN = {join}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
