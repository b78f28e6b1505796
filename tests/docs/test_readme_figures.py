"""The README's matching quality figures are what `make eval` (bench/match_eval.py) prints now:
each row of its table, and the spellings the other unseen sets take. A change to the matcher
that moves one moves the README with it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.docs.test_links import REPO
from tests.rules.test_eval import _eval_module

README = REPO / "README.md"

# A row of the README's table by its first words: the eval's counts it shows.
ROWS: dict[str, tuple[str, str | None]] = {  # first words: (file, split or None for all)
    "labelled word pairs, all": ("pairs.tsv", None),
    "held out while writing the rules": ("pairs.tsv", "holdout"),
    "added after the rules were fixed": ("pairs.tsv", "holdout2"),
    "declined names, written with the rule": ("pairs.tsv", "holdout3"),
    "declined names in a dozen languages": ("probe6.tsv", None),
    "fifth unseen set": ("probe5.tsv", None),
}


def table() -> dict[str, tuple[str, str]]:
    """The README's matching quality rows: first cell → (precision, recall) as written."""
    found = {}
    for line in README.read_text(encoding="utf-8").split("\n"):
        m = re.fullmatch(r"\| (.+?) \| (\d\.\d{3}) \| (\d\.\d{3}) \|", line)
        if m:
            found[m.group(1)] = (m.group(2), m.group(3))
    return found


def scored(counts: list[Any]) -> tuple[str, str]:
    tp, fp, fn = (sum(getattr(c, f) for c in counts) for f in ("tp", "fp", "fn"))
    return f"{tp / (tp + fp):.3f}", f"{tp / (tp + fn):.3f}"


@pytest.mark.parametrize("first", sorted(ROWS))
def test_a_matching_quality_row_is_what_the_eval_prints(first: str) -> None:
    rows = [written for cell, written in table().items() if cell.startswith(first)]
    assert len(rows) == 1, f"no single README row starting {first!r}"
    name, split = ROWS[first]
    by = _eval_module().eval_pairs(name=name, by="split" if split else "kind")
    counts = [by[split]] if split else list(by.values())
    assert rows[0] == scored(counts)


def test_the_sentences_row_is_what_the_eval_prints() -> None:
    rows = [written for cell, written in table().items() if cell.startswith("sentences")]
    assert rows == [scored(list(_eval_module().eval_sentences().values()))]


def test_the_other_unseen_sets_figures_are_what_the_eval_prints() -> None:
    text = " ".join(README.read_text(encoding="utf-8").split())
    m = re.search(r"\(`probe2\.tsv` to `probe4\.tsv`\): precision ([\d.]+), ([\d.]+) and "
                  r"([\d.]+), with (\d+) of (\d+), (\d+) of (\d+) and (\d+) of (\d+) spellings "
                  r"taken", text)
    assert m, "the README's sentence on probe2.tsv to probe4.tsv was not found"
    written = [(m.group(1 + i), int(m.group(4 + 2 * i)), int(m.group(5 + 2 * i)))
               for i in range(3)]
    printed = []
    for name in ("probe2.tsv", "probe3.tsv", "probe4.tsv"):
        counts = list(_eval_module().eval_pairs(name=name).values())
        tp, fn = sum(c.tp for c in counts), sum(c.fn for c in counts)
        printed.append((scored(counts)[0], tp, tp + fn))
    assert written == printed
