"""Would another pair score decide "same story" better than the clusterer's words? Measured on
the labelled Reddit sets, pair by pair, before clustering.

The clusterer decides on words (rare terms, names, numbers, event and actor marks; see
``watchers/stories/index.py``). Two other kinds of score were asked about:

- rapidfuzz's title scorers (``fuzz.token_set_ratio``, ``fuzz.token_sort_ratio``,
  ``fuzz.ratio``), what a batch scorer over the live headlines (``process.cdist``) would
  decide on; always measured (rapidfuzz is a core dependency);
- a sentence embedding, for headlines that tell one event in other words. No model can be
  downloaded here (tests and CI reach only the package registries); WordLlama
  (``pip install wordllama``, MIT) is the one embedding found whose weights come inside its
  wheel: a 256-dimension static token embedding distilled from an LLM's, averaged over the
  tokens (16 MB, about 20 µs a headline). Measured when it is installed.

For every pair of articles within 48 hours of each other, on each part (the labelled set's even
half, which the word scorer was learnt on; its odd half and the fresh set's held-out days, which
it was not; see ``stories_eval.py``), it prints the precision at fixed recall of each score
alone and of a logistic regression over the words and the other scores (with the words' veto as
a feature), fitted on the even half.

    .venv/bin/python bench/stories_embedding.py [--no-embedding]

Measured (rapidfuzz 3.14.6), precision at recall 0.70 / 0.85:

| score | even (learnt on) | odd (held out) | fresh days held out |
|---|---|---|---|
| words (the clusterer's) | 0.925 / 0.842 | 0.744 / 0.592 | 0.295 / 0.003 |
| token_set_ratio | 0.815 / 0.659 | 0.746 / 0.504 | 0.222 / 0.104 |
| words + the three rapidfuzz scores | 0.925 / 0.842 | 0.755 / 0.590 | 0.305 / 0.085 |

(The fresh days hold 81,617 pairs within 48 hours and 140 of them are of one story, so every
score's precision is lower there. At recall 0.85 the words' figure is that of pairs they veto:
26 of those 140 share fewer than two title words or name another kind of event or another
acting country, as do 31 of the odd half's 361.)

WordLlama 0.4.0, measured earlier on the labelled halves at recall 0.85: cosine 0.755 / 0.495,
words and cosine 0.900 / 0.592. Held out, no other score adds more than a point to the words'
precision at recall 0.6 to 0.8, and token_set_ratio alone is level with them on the odd half up
to recall 0.7: the rapidfuzz scores see the words' own evidence (the words two titles share),
and the embedding averages it; what the words miss (another event told with the same names;
one event told in other words) neither tells apart either. Only past the words' vetoes
(recall 0.85) does a rapidfuzz score rank what is left better than nothing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from rapidfuzz import fuzz, utils  # noqa: E402
from stories_eval import FRESH, FRESH_HELD_OUT, LABELLED, is_even, load, within  # noqa: E402

from watchers.stories import StoryInput  # noqa: E402
from watchers.stories.features import signature  # noqa: E402
from watchers.stories.index import same_story_score  # noqa: E402

RECALLS = (0.6, 0.7, 0.8, 0.85)
WINDOW = timedelta(hours=48)
FUZZ: tuple[tuple[str, Callable[..., float]], ...] = (
    ("token_set", fuzz.token_set_ratio), ("token_sort", fuzz.token_sort_ratio),
    ("ratio", fuzz.ratio))


def embedder() -> Any | None:
    """WordLlama's model from its wheel, or None when it is not installed."""
    try:
        import wordllama  # type: ignore[import-not-found]
        from wordllama import WordLlama
    except ImportError:
        return None
    # Its loader looks for the wheel's tokenizer under tokenizer/ (the wheel has tokenizers/),
    # then in its cache, then downloads it: given a cache that holds it, it looks no further.
    cache = Path(tempfile.mkdtemp())
    shutil.copytree(Path(wordllama.__file__).parent / "tokenizers", cache / "tokenizers")
    return WordLlama.load(cache_dir=cache, disable_download=True)


def precision_at(score: np.ndarray, gold: np.ndarray) -> str:
    order = np.argsort(-score, kind="stable")
    tp = np.cumsum(gold[order])
    out = []
    for r in RECALLS:
        k = int(np.searchsorted(tp, r * gold.sum()))
        out.append(f"R {r:.2f}: P {tp[k] / (k + 1):.3f}")
    return "   ".join(out)


def fit(x: np.ndarray, y: np.ndarray, steps: int = 20000, rate: float = 1.0) -> np.ndarray:
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-x @ w))
        w -= rate * (x.T @ (p - y) / len(y) + 1e-3 * w)
    return w


def pair_scores(part: Sequence[StoryInput], gold: dict[str, str], model: Any | None
                ) -> dict[str, np.ndarray]:
    """Every pair of ``part`` within the window: its scores by name, and ``same`` (gold)."""
    sigs = {it.id: signature(it.title, it.text).exemplars for it in part}
    titles = {it.id: utils.default_process(it.title) for it in part}
    vectors = (dict(zip([it.id for it in part],
                        model.embed([it.title for it in part], norm=True), strict=True))
               if model is not None else {})
    cols: dict[str, list[float]] = {"words": [], "same": [], "cosine": []}
    cols.update({name: [] for name, _ in FUZZ})
    ordered = sorted(part, key=lambda it: it.date)
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:]:
            gap = b.date - a.date
            if gap > WINDOW:
                break
            sa, sb = sigs[a.id], sigs[b.id]
            cols["words"].append(same_story_score(sa[0], sb[0], gap) if sa and sb else -100.0)
            for name, scorer in FUZZ:
                cols[name].append(scorer(titles[a.id], titles[b.id]) / 100.0)
            if vectors:
                cols["cosine"].append(float(vectors[a.id] @ vectors[b.id]))
            cols["same"].append(float(gold[a.id] == gold[b.id]))
    return {k: np.array(v) for k, v in cols.items() if v or k != "cosine"}


def design(s: dict[str, np.ndarray], extra: Sequence[str]) -> np.ndarray:
    """The words' score (0 where vetoed), the veto, the ``extra`` scores and a bias."""
    never = s["words"] < -50  # the words' veto (another event, another actor, too little shared)
    cols = [np.where(never, 0.0, s["words"]), never.astype(float), *(s[e] for e in extra)]
    return np.stack([*cols, np.ones_like(s["words"])], 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-embedding", action="store_true",
                    help="leave WordLlama out even where it is installed")
    args = ap.parse_args()
    items, gold = load(LABELLED)
    fresh, fresh_gold = load(FRESH)
    model = None if args.no_embedding else embedder()
    parts = {
        "labelled even (learnt on)": ([it for it in items if is_even(gold[it.id])], gold),
        "labelled odd (held out)": ([it for it in items if not is_even(gold[it.id])], gold),
        "fresh days held out": ([it for it in fresh if within(it, FRESH_HELD_OUT)], fresh_gold),
    }
    scores = {name: pair_scores(part, g, model) for name, (part, g) in parts.items()}
    fuzz_names = [name for name, _ in FUZZ]
    combos = [("words + rapidfuzz", fuzz_names)]
    if model is not None:
        combos.append(("words + cosine", ["cosine"]))
    learnt = scores["labelled even (learnt on)"]
    fitted = [(label, extra, fit(design(learnt, extra), learnt["same"]))
              for label, extra in combos]
    print("pairs within 48h; precision at fixed recall, before clustering")
    if model is None:
        print("(WordLlama not installed or left out: no embedding; pip install wordllama)")
    for name, s in scores.items():
        y = s["same"]
        print(f"\n{name}: {len(y):,} pairs, {int(y.sum())} of one story")
        for col in ["words", *fuzz_names, *(["cosine"] if "cosine" in s else [])]:
            print(f"  {col:18s} {precision_at(s[col], y)}")
        for label, extra, w in fitted:
            print(f"  {label:18s} {precision_at(design(s, extra) @ w, y)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
