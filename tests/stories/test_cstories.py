"""The C twin of the signature's token loop, an exemplar's JSON and the index's exemplar walk
(watchers/stories/_cstories.c) gives exactly what the Python code gives."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchers.stories import Signature, signature
from watchers.stories import features as ft
from watchers.stories import index as ix

if ft._CSTORIES is None:
    pytest.skip(
        "watchers.stories._cstories is not built (no C compiler at install; build it with "
        "`pip install -e .`) or NEWSWATCH_PURE is set",
        allow_module_level=True,
    )

LABELLED = Path(__file__).resolve().parents[1] / "data" / "stories" / "reddit_labelled.jsonl"
ODD_TITLES = [
    "AP News: Howard Hesseman, star of 'WKRP in Cincinnati,' dies at 81",
    "COVID-19: F-35 crash kills eight-year-old on Jan. 6 in Kyiv, Ukraine says",
    "Kyiv Independent: Russia says U.S. evacuates embassy; 3,000 flee ²³ 2022",
    "Élection présidentielle: Macron réélu — 58,5 %",
    "", "   ", "a-b-c-1-2", "Zelenskyy Zelensky Zelenskiy 1 0 one twenty",
]


@contextmanager
def _pure() -> Iterator[None]:
    saved = ft._cterms, ft._cexemplar_text, ix._cprepare
    ft._cterms = ft._cexemplar_text = ix._cprepare = None
    try:
        yield
    finally:
        ft._cterms, ft._cexemplar_text, ix._cprepare = saved


def _titles() -> list[str]:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    return [r["title"] for r in rows] + ODD_TITLES


def _ex(e: ix._Ex) -> tuple[object, ...]:
    return (list(e.weights.items()), e.order, e.subject, e.events, e.actors, e.countries,
            e.numbers, e.total, e.size)


def test_signatures_texts_and_exemplars_match_the_python_code() -> None:
    for title in _titles():
        for text in ("", "A lead: Kyiv says 12 killed."):
            made = signature(title, text)
            dumped = Signature(made.exemplars).dump()
            ready = [_ex(ix._Ex(e)) for e in made.exemplars]
            with _pure():
                assert signature(title, text) == made, title
                assert Signature(made.exemplars).dump() == dumped, title
                assert [_ex(ix._Ex(e)) for e in made.exemplars] == ready, title


_terms = st.text(min_size=1, max_size=8)
_weights = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                     st.sampled_from([0.0, -0.0, 1.0, 3.5, 6.0, 1e-300, 1e300]), st.integers())
_exemplars = st.lists(st.tuples(_terms, _weights), max_size=40).map(tuple)


@settings(max_examples=200, deadline=None)
@given(_exemplars)
def test_any_exemplar_spells_and_walks_as_in_python(ex: tuple[tuple[str, float], ...]) -> None:
    text = ft._exemplar_text(ex)
    assert text == json.dumps([list(p) for p in ex], separators=(",", ":"), ensure_ascii=False)
    if any(isinstance(w, float) and math.isnan(w) for _, w in ex):
        return  # NaN is never a weight of a signature, and never equal to itself
    e = _ex(ix._Ex(ex))
    with _pure():
        assert ft._exemplar_text(ex) == text
        assert _ex(ix._Ex(ex)) == e


def test_the_weight_text_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ft, "_REPRS_MAX", 20)
    for i in range(100):
        ex = (("t", 1.0 + i / 1000), ("z", 0.0))
        assert ft._exemplar_text(ex) == json.dumps([list(p) for p in ex], separators=(",", ":"))
    assert len(ft._REPRS) <= 20
