"""The short paths of matching give exactly what the general ones give.

The compiled rule set and the naive loop share the evaluator, so comparing them (test_property)
cannot catch a short path that differs from the general one; these tests compare the two
directly: the columnar tokeniser with :func:`tokenize`, the plain-phrase lookup with the general
phrase search.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from watchers.models import Article
from watchers.rules import parse, shipped_aliases
from watchers.rules.matcher import Analysis, Evaluator
from watchers.rules.syntax import Phrase
from watchers.rules.text import FieldText, tokenize

from ._corpus import corpus_articles

PIECES = [
    "Kyiv", "kyiv", "Russia's", "cyber-attack", "cyber-attacks", "U.S.", "100,000", "1.5",
    "Russia-Ukraine", "talks", "troops", "don't", "élan", "e\u0301lan", "Київ", "x-y-z", "'s",
    "rock'n'roll", "a", "the", "new", "York", "New-York", "’", "-", "—", "talks'",
]  # fmt: skip
SEPARATORS = [" ", " ", ", ", ". ", " - ", "\n", "", "'", "-"]

texts = st.lists(st.tuples(st.sampled_from(PIECES), st.sampled_from(SEPARATORS)), max_size=40).map(
    lambda parts: "".join(w + sep for w, sep in parts)
)


def _same_as_tokenize(text: str) -> None:
    by_key: dict[str, list[int]] = {}
    expected = tokenize(text, by_key)
    ft = FieldText.of(text)
    assert list(ft.tokens) == expected
    assert [ft.tokens[i] for i in range(len(expected))] == expected
    assert ft.tokens[1:3] == expected[1:3]
    assert ft.by_key == by_key


@settings(max_examples=300, deadline=None)
@given(texts)
def test_field_text_equals_tokenize(text: str) -> None:
    _same_as_tokenize(text)
    _same_as_tokenize(text)  # again, now that every word is in the folding cache


def test_field_text_equals_tokenize_on_real_news() -> None:
    for article in corpus_articles(limit_per_file=40):
        _same_as_tokenize(article.title)
        _same_as_tokenize(article.text)


PHRASE_WORDS = ["talks", "troops", "new", "york", "the", "border", "attack", "cyber", "a"]


@settings(max_examples=300, deadline=None)
@given(texts, st.lists(st.sampled_from(PHRASE_WORDS), min_size=2, max_size=3))
def test_plain_phrase_equals_the_general_search(text: str, words: list[str]) -> None:
    node = parse('"' + " ".join(words) + '"')
    assert isinstance(node, Phrase)
    ev = Evaluator(Analysis(Article(title=text)), shipped_aliases())
    assert all(ev._is_plain(w.key) for w in node.words)
    assert ev._plain_phrase(node, "title") == ev._any_phrase(node, "title", 85)


def test_plain_phrase_finds_repeats_and_compounds() -> None:
    text = "New York talks. new-york talks, the new York"
    node = parse('"new york"')
    assert isinstance(node, Phrase)
    ev = Evaluator(Analysis(Article(title=text)), shipped_aliases())
    found = ev._plain_phrase(node, "title")
    assert [text[o[3][0][1] : o[3][0][2]] for o in found] == ["New York", "new-york", "new York"]
    assert found == ev._any_phrase(node, "title", 85)
