"""The short way of folding a plain ASCII word gives what the general folding does."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from watchers.rules.text import _fold_general, _fold_uncached

_PLAIN = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=14)


@settings(max_examples=500, deadline=None)
@given(_PLAIN)
def test_a_plain_ascii_word_folds_as_the_general_path_folds_it(word: str) -> None:
    assert _fold_uncached(word) == _fold_general(word)


def test_words_that_exercise_every_folding_rule() -> None:
    words = ["Troops", "NEWS", "its", "Mobilisation", "mobilised", "Countries", "Crises", "buses",
             "Kyiv", "2022", "G7", "COVID19", "s", "ss", "Texas", "Iss", "analyses", "boxes"]
    for w in words:
        assert _fold_uncached(w) == _fold_general(w), w
    # Words with anything else go the general way: the short way must not claim them.
    for w in ["Russia's", "cyber-attack", "U.S.", "100,000", "café", "x_y"]:
        assert _fold_uncached(w) == _fold_general(w), w
