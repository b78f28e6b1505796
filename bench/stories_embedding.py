"""Would a sentence embedding decide "same story" better? Measured on the labelled Reddit set.

The clusterer decides on words (rare terms, names, numbers, event and actor marks; see
``watchers/stories/index.py``). A team asked whether a sentence embedding would do better on
headlines that tell one event in other words. No model can be downloaded here (tests and CI
reach only the package registries); WordLlama (``pip install wordllama``, MIT) is the one
embedding found whose weights come inside its wheel: a 256-dimension static token embedding
distilled from an LLM's, averaged over the tokens (16 MB, about 20 µs a headline).

For every pair of labelled articles within 48 hours, on each half of the set (the even half
is what the word scorer was learnt on, the odd half is held out; see ``stories_eval.py``), it
prints the precision at fixed recall (pairwise, before clustering) of

- words: the clusterer's own pair score (``same_story_score``);
- cosine: the cosine of the two titles' embeddings;
- both: a logistic regression over the two (and the words' veto), fitted on the even half.

    pip install wordllama && .venv/bin/python bench/stories_embedding.py

Measured (wordllama 0.4.0): held out, at recall 0.85, words P 0.584, cosine 0.495, both 0.592
(0.855 / 0.755 / 0.900 on the half the words were learnt on). The cosine separates pairs well
overall (most pairs are of unrelated topics) and badly among same-topic headlines of different
events, where the word scorer's vetoes work; it adds too little to pay for a dependency.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from stories_eval import LABELLED, is_even, load  # noqa: E402

from watchers.stories.features import signature  # noqa: E402
from watchers.stories.index import same_story_score  # noqa: E402

RECALLS = (0.6, 0.7, 0.8, 0.85)


def embedder() -> Any:
    try:
        import wordllama  # type: ignore[import-not-found]
        from wordllama import WordLlama
    except ImportError:
        raise SystemExit(
            "needs wordllama: pip install wordllama (its weights are in the wheel)") from None
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


def main() -> int:
    items, gold = load(LABELLED)
    model = embedder()
    vectors = model.embed([it.title for it in items], norm=True)
    at = {it.id: i for i, it in enumerate(items)}
    sigs = {it.id: signature(it.title, it.text).exemplars[0] for it in items}
    halves = {}
    for name, even in (("even (learnt on)", True), ("odd (held out)", False)):
        part = [it for it in items if is_even(gold[it.id]) == even]
        words, cosine, same = [], [], []
        for i, a in enumerate(part):
            for b in part[i + 1:]:
                gap = abs((a.date - b.date).total_seconds())
                if gap > 48 * 3600:
                    continue
                words.append(same_story_score(sigs[a.id], sigs[b.id], timedelta(seconds=gap)))
                cosine.append(float(vectors[at[a.id]] @ vectors[at[b.id]]))
                same.append(gold[a.id] == gold[b.id])
        s, c, y = np.array(words), np.array(cosine), np.array(same, dtype=float)
        never = s < -50  # the words' veto (another event, another actor, too little shared)
        x = np.stack([np.where(never, 0.0, s), never.astype(float), c, np.ones_like(c)], 1)
        halves[name] = (s, c, x, y)
    w = fit(*halves["even (learnt on)"][2:])
    print("pairs within 48h; precision at fixed recall, before clustering\n")
    for name, (s, c, x, y) in halves.items():
        print(f"{name}: {len(y):,} pairs, {int(y.sum())} of one story")
        print(f"  words   {precision_at(s, y)}")
        print(f"  cosine  {precision_at(c, y)}")
        print(f"  both    {precision_at(x @ w, y)}")
    return 0


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    raise SystemExit(main())
