"""The C twin of the signature's token loop, an exemplar's JSON and the index's exemplar walk
(watchers/stories/_cstories.c) gives exactly what the Python code gives."""

from __future__ import annotations

import gc
import json
import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
    saved = ft._cterms, ft._cexemplar_text, ft._cexemplar, ix._cprepare
    ft._cterms = ft._cexemplar_text = ft._cexemplar = ix._cprepare = None
    try:
        yield
    finally:
        ft._cterms, ft._cexemplar_text, ft._cexemplar, ix._cprepare = saved


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


def test_every_word_read_in_context_gives_what_the_python_loop_gives() -> None:
    # The C loop reads a headline holding none of ft._CONTEXT_KEYS, each word alone: every
    # word of a kind read in context, between every word the rules read around it, must come
    # out as the Python loop reads it ("named in indictment", "passé 5" did not).
    kinds = set(ft._IN_CONTEXT)
    words = sorted(w for w, kind in ft._EVENTS.items() if kind in kinds)
    befores = ["in", "this", "last", "next", "Senate"]
    afters = sorted(ft._WEAPONS | ft._AIMED | ft._DISMISSED | ft._NOT_DEATHS
                    | ft._KILLED_PLANS | {"away", "of", "for", "to", "down", "aside", "5",
                                          "$5", "2024", "Kyiv"})
    wrong = []
    for word in words:
        for before in befores:
            for after in afters:
                for title, text in ((f"Kyiv {before} {word} {after} Odesa", ""),
                                    ("", f"{before} {word} {after}")):
                    made = signature(title, text)
                    with _pure():
                        if signature(title, text) != made:
                            wrong.append(title or text)
    assert not wrong, wrong[:10]


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


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_terms, _weights, max_size=40))
def test_an_exemplar_is_made_of_its_weights_as_in_python(weights: dict[str, float]) -> None:
    """The C exemplar: the same pairs in the same order as the Python code, and left out of the
    cyclic collector (pairs and tuple) where they hold strs and numbers only."""
    c = ft._CSTORIES
    assert c is not None and ft._cexemplar is not None
    made = c.exemplar(weights)
    assert made == ft._exemplar(weights)
    assert [type(w) for _, w in made] == [type(weights[t]) for t, _ in made]
    assert not gc.is_tracked(made)
    assert not any(gc.is_tracked(p) for p in made)


def test_an_exemplar_a_thousand_times_larger_is_made_and_spelt_as_in_python() -> None:
    """A headline of 20,000 distinct words (a feed's title field holding a whole page): the
    C exemplar and its JSON are the Python code's, weights sharing the spelling table's slots
    many times over."""
    rng = random.Random(11)
    weights = {f"w{i:05d}{rng.choice('abcxyzé')}": rng.choice([0.0, round(rng.uniform(0, 9), 3)])
               for i in range(20_000)}
    made = ft._CSTORIES.exemplar(weights)  # type: ignore[union-attr]
    assert made == ft._exemplar(weights) and len(made) == 20_000
    text = ft._exemplar_text(made)
    assert text == json.dumps([list(p) for p in made], separators=(",", ":"),
                              ensure_ascii=False)
    with _pure():
        assert ft._exemplar_text(made) == text


def test_an_exemplar_holding_a_tracked_object_stays_tracked() -> None:
    """A pair holding something the collector tracks (never in a signature) is left tracked,
    and so is the tuple holding it: leaving them out could leak a cycle through them."""
    c = ft._CSTORIES
    assert c is not None
    held: list[object] = []
    made = c.exemplar({"b": 1.0, "a": held})
    assert made == (("a", held), ("b", 1.0))
    assert gc.is_tracked(made) and gc.is_tracked(made[0]) and not gc.is_tracked(made[1])
    held.append(made)  # a cycle through the exemplar, which the collector can free
    del made, held
    gc.collect()


def test_weights_sharing_a_slot_of_the_spelling_table_are_each_spelt_as_json() -> None:
    """The C spelling keeps recent weights' texts in a small table by the double's bits: many
    more weights than it has slots, each spelt again after others took slots, come out as
    json.dumps spells them (a slot never answers for another double)."""
    rng = random.Random(7)
    weights = [rng.uniform(0.01, 20.0) for _ in range(5_000)]
    weights += [w * (1 + 2**-52) for w in weights[:500]]  # neighbours: one bit apart
    for _ in range(2):
        rng.shuffle(weights)
        for i in range(0, len(weights), 50):
            ex = tuple((f"t{j}", w) for j, w in enumerate(weights[i : i + 50]))
            assert ft._exemplar_text(ex) == json.dumps([list(p) for p in ex],
                                                       separators=(",", ":"))


def test_the_weight_text_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ft, "_REPRS_MAX", 20)
    for i in range(100):
        ex = (("t", 1.0 + i / 1000), ("z", 0.0))
        assert ft._exemplar_text(ex) == json.dumps([list(p) for p in ex], separators=(",", ":"))
    assert len(ft._REPRS) <= 20


def test_wrong_arguments_are_refused_naming_the_function_and_argument() -> None:
    """The C functions read their arguments directly (no format string); a wrong count or
    type is still a TypeError that says which, never a crash."""
    c = ft._CSTORIES
    assert c is not None
    with pytest.raises(TypeError, match=r"prepare\(\) takes exactly 2 arguments \(1 given\)"):
        c.prepare(())
    with pytest.raises(TypeError, match=r"prepare\(\) argument 1 must be tuple, not list"):
        c.prepare([], 3.5)
    with pytest.raises(TypeError, match="must be real number"):
        c.prepare((), "3.5")
    with pytest.raises(TypeError, match=r"exemplar_text\(\) argument 3 must be dict"):
        c.exemplar_text((), ft._pair_text, [], 10)
    with pytest.raises(TypeError, match=r"exemplar_text\(\) argument 4 must be int, not float"):
        c.exemplar_text((), ft._pair_text, {}, 1.5)
    with pytest.raises(OverflowError):
        c.exemplar_text((), ft._pair_text, {}, 2**70)
    with pytest.raises(TypeError, match=r"exemplar\(\) takes exactly 1 arguments \(2 given\)"):
        c.exemplar({}, {})
    with pytest.raises(TypeError, match=r"exemplar\(\) argument 1 must be dict, not list"):
        c.exemplar([("a", 1.0)])
    with pytest.raises(TypeError, match="not supported between"):
        c.exemplar({"a": 1.0, 2: 1.0})  # keys sorted() cannot order: its error
    with pytest.raises(TypeError, match=r"terms\(\) takes exactly 16 arguments \(0 given\)"):
        c.terms()
    good: list[Any] = [[], [], None, None, [], [], 0, -1, {}, ft._word_of, ft._MONTHS,
                       ft._SPEAKS, {}, ft._ZERO, ft._YEAR, ft._NUMBER]
    assert c.terms(*good) is None
    for i, wrong in ((0, ()), (8, []), (10, set()), (12, []), (6, "0")):
        args = list(good)
        args[i] = wrong
        with pytest.raises(TypeError, match=rf"terms\(\) argument {i + 1} must be"):
            c.terms(*args)
    assert c.prepare((("abc", 2.0), ("#x", 0.0)), 3.5) == ({"abc": 2.0}, ("#x",), [], "",
                                                           ("abc",))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6), st.lists(st.sampled_from("abcdefgh"), max_size=6),
                          st.booleans()), max_size=30))
def test_postings_lists_grow_and_move_as_in_python(
        ops: list[tuple[int, list[str], bool]]) -> None:
    """A story's number last in each of its terms' lists, moved there when already in one:
    the same lists in the same order as the Python code, and none of them tracked."""
    made: dict[str, dict[int, None]] = {}
    spec: dict[str, dict[int, None]] = {}
    for num, terms, move in ops:
        weights = dict.fromkeys(terms, 1.0)
        ix._post(made, num, weights, move)
        ix._post_py(spec, num, weights, move)
    assert {t: list(ids) for t, ids in made.items()} == {t: list(ids) for t, ids in spec.items()}
    assert not any(gc.is_tracked(ids) for ids in made.values())


def test_postings_refuse_what_is_not_a_dict() -> None:
    assert ix._post is not ix._post_py
    with pytest.raises(TypeError, match=r"post\(\) argument 1 must be dict"):
        ix._post([], 1, {}, False)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="a postings list must be a dict, not list"):
        ix._post({"a": []}, 1, {"a": 1.0}, False)  # type: ignore[dict-item]
