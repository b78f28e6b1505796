"""Scores of a clustering against gold labels: pairwise and B-cubed precision, recall and F1.

Pure functions over two mappings ``item -> cluster label``; both must hold the same items.
Pairwise counts unordered pairs put together; B-cubed averages, per item, the share of its
predicted cluster that is truly with it (precision) and of its true cluster that was found with
it (recall), so large clusters do not dominate as they do pairwise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

__all__ = ["Scores", "bcubed", "pairwise"]


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _check(pred: Mapping[str, Hashable], gold: Mapping[str, Hashable]) -> None:
    if pred.keys() != gold.keys():
        missing = len(gold.keys() - pred.keys())
        extra = len(pred.keys() - gold.keys())
        raise ValueError(f"items differ: {missing} unclustered, {extra} unlabelled")


def pairwise(pred: Mapping[str, Hashable], gold: Mapping[str, Hashable]) -> Scores:
    """Precision/recall over unordered item pairs; 1.0 when there are no pairs to get wrong."""
    _check(pred, gold)
    both = Counter((pred[i], gold[i]) for i in gold)
    p_sizes = Counter(pred.values())
    g_sizes = Counter(gold.values())

    def pairs(counts: Counter[object]) -> int:
        return sum(n * (n - 1) // 2 for n in counts.values())

    tp, pp, gp = pairs(both), pairs(p_sizes), pairs(g_sizes)  # type: ignore[arg-type]
    return Scores(tp / pp if pp else 1.0, tp / gp if gp else 1.0)


def bcubed(pred: Mapping[str, Hashable], gold: Mapping[str, Hashable]) -> Scores:
    _check(pred, gold)
    if not gold:
        return Scores(1.0, 1.0)
    both = Counter((pred[i], gold[i]) for i in gold)
    p_sizes = Counter(pred.values())
    g_sizes = Counter(gold.values())
    p = sum(both[(pred[i], gold[i])] / p_sizes[pred[i]] for i in gold) / len(gold)
    r = sum(both[(pred[i], gold[i])] / g_sizes[gold[i]] for i in gold) / len(gold)
    return Scores(p, r)
