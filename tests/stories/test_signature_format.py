"""The persisted form of a story signature: exactly what ``json.dumps`` writes, and a round trip.

Signatures are stored with every article and read back at start-up by every worker, so the text
must not depend on how it is built (cached pieces, fast paths for floats).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchers.stories import Signature, signature
from watchers.stories import features as ft
from watchers.stories import index as ix


def _reference(sig: Signature) -> str:
    return json.dumps([[list(t) for t in ex] for ex in sig.exemplars],
                      separators=(",", ":"), ensure_ascii=False)


_terms = st.text(min_size=1, max_size=8)
_weights = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                     st.sampled_from([0.0, -0.0, 1.0, 3.5, 6.0, 1e-300, 1e300]))
_exemplars = st.lists(st.tuples(_terms, _weights), max_size=12).map(tuple)


@settings(max_examples=100, deadline=None)
@given(st.lists(_exemplars, max_size=4))
def test_dump_is_what_json_writes(exemplars: list[tuple[tuple[str, float], ...]]) -> None:
    sig = Signature(tuple(exemplars))
    text = sig.dump()
    assert text == _reference(sig)
    # The same text the second time, from the cached pieces.
    assert sig.dump() == text


def test_dump_of_odd_terms_and_values_round_trips() -> None:
    sig = Signature(((("quote\"back\\slash", 1.5), ("new\nline\x01", 0.0), ("émigré€😀", 4.25),
                      ("\u2028", 2.0)),
                     (("n", -0.0), ("x", 1e-7)), ()))
    assert sig.dump() == _reference(sig)
    assert Signature.load(sig.dump()) == sig


def test_dump_stays_exact_when_its_term_cache_turns_over(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The term cache is the Python spelling's (the C one spells plain terms directly).
    monkeypatch.setattr(ft, "_cexemplar_text", None)
    monkeypatch.setattr(ft, "_HEADS_MAX", 50)
    sig = signature("Howard Hesseman, star of 'WKRP in Cincinnati,' dies at 81")
    before = sig.dump()
    for i in range(ft._HEADS_MAX * 3):  # more distinct terms than the cache keeps
        Signature((((f"t{i}", 1.0),),)).dump()
    assert len(ft._HEADS) <= ft._HEADS_MAX
    assert sig.dump() == before == _reference(sig)


def test_an_exemplar_keeps_its_title_terms_and_marks() -> None:
    (ex,) = signature("Russia evacuates embassy in Kyiv as invasion fears grow").exemplars
    e = ix._Ex(ex)
    weighted = {t for t, w in ex if w > 0}
    assert e.title == frozenset(weighted) == frozenset(e.weights)
    assert set(e.order) == weighted
    assert [e.weights[t] for t in e.order] == sorted((e.weights[t] for t in e.order),
                                                      reverse=True)
    assert e.actors == frozenset({"russia"}) and "ukraine" in e.countries
    # Loaded from text, the same terms: one string object per term across exemplars.
    loaded = ix._Ex(Signature.load(Signature((ex,)).dump()).exemplars[0])
    assert all(a is b for a, b in zip(e.order, loaded.order, strict=True))


def test_equal_weights_of_other_spellings_do_not_share_cached_text(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # 1.0 == 1 and 0.0 == -0.0 (with equal hashes), but json spells each its own way: a cached
    # ["t",1.0] must not stand for ["t",1], nor ["z",0.0] for ["z",-0.0].
    first = Signature(((("t", 1.0), ("z", 0.0), ("w", 2.5)),))
    assert first.dump() == _reference(first)
    other = Signature(((("t", 1), ("z", -0.0), ("w", 2.5)),))
    assert other.dump() == _reference(other) == '[[["t",1],["z",-0.0],["w",2.5]]]'
    # The pair cache is the Python spelling's.
    monkeypatch.setattr(ft, "_cexemplar_text", None)
    monkeypatch.setattr(ft, "_PAIRS_MAX", 20)
    for i in range(60):  # more weighted terms than the pair cache keeps
        Signature((((f"p{i}", 1.5),),)).dump()
    assert len(ft._PAIRS) <= ft._PAIRS_MAX
    assert first.dump() == _reference(first)


@settings(max_examples=100, deadline=None)
@given(st.lists(_exemplars, max_size=4), st.lists(_exemplars, max_size=3),
       st.sampled_from(["neither", "story", "article", "both"]))
def test_a_merged_signature_dumps_what_json_writes(
        story: list[tuple[tuple[str, float], ...]], article: list[tuple[tuple[str, float], ...]],
        dumped: str) -> None:
    # A story's signature carries the text of the exemplars it dumped before into the signature
    # it grows into: the text is the same whichever side was dumped first.
    a, b = Signature(tuple(story)), Signature(tuple(article))
    if dumped in ("story", "both"):
        assert a.dump() == _reference(a)
    if dumped in ("article", "both"):
        assert b.dump() == _reference(b)
    grown = a.merged(b)
    assert grown == a.merged(Signature(tuple(article)))  # the cached text is not the value
    assert grown.dump() == _reference(grown)
    again = grown.merged(Signature(tuple(story[:1])))
    assert again.dump() == _reference(again)


def test_marks_dump_as_json_writes_them_whatever_zero_they_hold() -> None:
    made = signature("Russia evacuates embassy in Kyiv as invasion fears grow")
    assert any(w == 0.0 for t, w in made.exemplars[0])
    assert made.dump() == _reference(made)
    # The same marks with a negative zero and an int zero: not the made signature's text.
    for zero in (-0.0, 0):
        other = Signature((tuple((t, w if w else zero) for t, w in made.exemplars[0]),))
        assert other.dump() == _reference(other) != made.dump()


@settings(max_examples=100, deadline=None)
@given(st.lists(_exemplars, max_size=4), st.booleans())
def test_a_signature_made_with_its_slots_set_is_the_dataclass_one(
        exemplars: list[tuple[tuple[str, float], ...]], texts: bool) -> None:
    """Grouping makes its signatures by setting the slots directly, not through the frozen
    dataclass's ``__init__``: the same value, hash, texts and dump, and still frozen."""
    import dataclasses

    ex = tuple(exemplars)
    spelt = tuple(ft._exemplar_text(e) for e in ex) if texts else None
    made, plain = ft._signature_made(ex, spelt), Signature(ex, spelt)
    assert type(made) is Signature
    assert made == plain and made.exemplars == ex and made._texts == plain._texts
    if not any(w != w for e in ex for _, w in e):  # NaN: equal by identity only
        assert hash(made) == hash(plain)
    assert made.dump() == plain.dump() == _reference(plain)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.exemplars = ()  # type: ignore[misc]
