"""Folding and tokenising: what counts as the same word."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchers.rules import text as text_module
from watchers.rules.text import fold_plural, key, tokenize


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("troop", "troops"),
        ("sanction", "sanctions"),
        ("country", "countries"),
        ("tax", "taxes"),
        ("church", "churches"),
        ("class", "classes"),
        ("Russia", "Russia's"),
        ("Russia", "RUSSIA\u2019S"),
        ("kyiv", "Kyiv's"),
        ("cyberattack", "cyber-attack"),
        ("cyberattack", "Cyber-Attacks"),
        ("cafe", "Café"),
        ("zelensky", "Zelénsky"),
        ("us", "U.S."),
        ("100000", "100,000"),
        ("dont", "don't"),
    ],
)
def test_same_key(a: str, b: str) -> None:
    assert key(a) == key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("new", "news"),
        ("bus", "bu"),
        ("u", "us"),
        ("i", "is"),
        ("wa", "was"),
        ("it", "its"),
        ("crisi", "crisis"),
        ("russia", "prussia"),
        ("talk", "stalks"),
        ("mean", "means"),
    ],
)
def test_different_key(a: str, b: str) -> None:
    assert key(a) != key(b)


@pytest.mark.parametrize("word", ["news", "bus", "us", "is", "was", "has", "crisis", "belarus"])
def test_non_plurals_are_kept(word: str) -> None:
    assert fold_plural(word) == word


def test_spans_point_into_the_original_text() -> None:
    text = "Zelénsky\u2019s cyber-attacks on the U.S. — 100,000 troops in Київ."
    for tok in tokenize(text):
        assert text[tok.start : tok.end]
    words = [(t.key, text[t.start : t.end]) for t in tokenize(text)]
    assert ("zelensky", "Zelénsky\u2019s") in words
    assert ("cyberattack", "cyber-attacks") in words
    assert ("attack", "attacks") in words
    assert ("us", "U.S.") in words
    assert ("100000", "100,000") in words
    assert ("киів", "Київ") in words


def test_compound_parts_take_consecutive_positions() -> None:
    toks = tokenize("the Russia-Ukraine border")
    by_key = {t.key: t for t in toks}
    assert by_key["russiaukraine"].pos == by_key["russia"].pos == 1
    assert by_key["russiaukraine"].last == by_key["ukraine"].pos == 2
    assert by_key["border"].pos == 3


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=30))
def test_ascii_words_lose_no_accent_the_general_way_would(word: str) -> None:
    """ASCII skips the decomposition (it has no accents), with the general path's result."""
    assert text_module._strip_accents(word) == text_module._strip_accents_general(word)


@pytest.mark.parametrize(
    ("word", "folded"),
    [("Zaporižžja", "zaporizzja"), ("Łódź", "łodz"), ("Straße", "strasse"),
     ("İstanbul", "istanbul"), ("Café-au-Lait", "cafe-au-lait"), ("O'Neill", "o'neill")],
)
def test_accents_are_stripped_and_case_folded(word: str, folded: str) -> None:
    assert text_module._strip_accents(word) == folded
