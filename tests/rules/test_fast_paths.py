"""The short paths of matching give exactly what the general ones give.

The compiled rule set and the naive loop share the evaluator, so comparing them (test_property)
cannot catch a short path that differs from the general one; these tests compare the two
directly: the columnar tokeniser with :func:`tokenize`, the word pattern with its plain form,
the plain-phrase lookup with the general phrase search, a plain word's hits with its
occurrences, the adjacency test behind phrase anchors with the phrase search, and the evidence
built from raw hits with its first definition.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchers.models import Article, Hit, hits_json
from watchers.rules import parse, shipped_aliases
from watchers.rules.matcher import FIELD_WEIGHTS, MAX_HITS, Analysis, Evaluator, _hit_order
from watchers.rules.syntax import Phrase, Term
from watchers.rules.text import (
    _APOS,
    _DASH,
    _SPLIT_RE,
    _SPLIT_RE_MARKS,
    FieldText,
    key,
    tokenize,
)

from ._corpus import corpus_articles

PIECES = [
    "Kyiv", "kyiv", "Russia's", "cyber-attack", "cyber-attacks", "U.S.", "100,000", "1.5",
    "Russia-Ukraine", "talks", "troops", "don't", "élan", "e\u0301lan", "Київ", "x-y-z", "'s",
    "rock'n'roll", "a", "the", "new", "York", "New-York", "’", "-", "—", "talks'",
    "1", "42", "a.b", "e.g", "I", "B", "M", "_", "__", "_Kyiv_", "__NATO__", "snake_case",
]  # fmt: skip
SEPARATORS = [" ", " ", ", ", ". ", " - ", "\n", "", "'", "-", ".", ",", "."]

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


# The word pattern as first written, with each look-behind before the literal it guards; the
# tokeniser's own puts the literal first, which is faster and must split text the same way.
# ``a``: a letter or digit (or mark); underscores join them inside a word, never at its edges.
def _plain_split(a: str) -> re.Pattern[str]:
    run = rf"{a}+(?:_+{a}+)*"
    return re.compile(
        rf"({run}(?:(?:[{_APOS}{_DASH}]|(?<=\d)[.,](?=\d)){run})*"
        rf"(?:(?<=(?<![^\W_])[^\W_])\.(?:[^\W_]\.)+)?)"
    )


_PLAIN_SPLIT = _plain_split(r"[^\W_]")
_PLAIN_SPLIT_MARKS = _plain_split(r"(?:[^\W_]|[\u0300-\u036f])")


@settings(max_examples=300, deadline=None)
@given(texts)
def test_word_pattern_splits_like_its_plain_form(text: str) -> None:
    assert _SPLIT_RE.split(text) == _PLAIN_SPLIT.split(text)
    assert _SPLIT_RE_MARKS.split(text) == _PLAIN_SPLIT_MARKS.split(text)


def test_word_pattern_splits_real_news_like_its_plain_form() -> None:
    for article in corpus_articles(limit_per_file=40):
        for text in (article.title, article.text):
            assert _SPLIT_RE.split(text) == _PLAIN_SPLIT.split(text)


@settings(max_examples=200, deadline=None)
@given(texts, st.lists(st.sampled_from(PIECES), max_size=30))
def test_key_lookups_are_the_same_scanned_or_indexed(text: str, asked: list[str]) -> None:
    # The first keys asked for are found by list scans, later ones from each key's first and
    # last token (repeated ones by scans between): the same lists as a full index, in any order
    # of asking, and again when cached; absent keys answer the default either way.
    ft = FieldText.of(text)
    expected: dict[str, list[int]] = {}
    tokenize(text, expected)
    for word in asked + list(expected) + asked:
        k = key(word)
        assert ft.by_key.get(k) == expected.get(k)
        assert ft.by_key.get(k, [-1]) == expected.get(k, [-1])
        assert (k in ft.by_key) == (k in expected)
        if k in expected:
            assert ft.by_key[k] == expected[k]
        else:
            with pytest.raises(KeyError):
                ft.by_key[k]
    assert list(ft.by_key) == list(expected)
    assert len(ft.by_key) == len(expected)


PHRASE_WORDS = ["talks", "troops", "new", "york", "the", "border", "attack", "cyber", "a"]
# Words with a compound reading: not plain as terms, but a phrase matches its words as written.
COMPOUND_WORDS = ["cyberattack", "ceasefire", "cease", "fire"]


@settings(max_examples=300, deadline=None)
@given(texts, st.lists(st.sampled_from(PHRASE_WORDS + COMPOUND_WORDS), min_size=2, max_size=3))
def test_plain_phrase_equals_the_general_search(text: str, words: list[str]) -> None:
    node = parse('"' + " ".join(words) + '"')
    assert isinstance(node, Phrase)
    ev = Evaluator(Analysis(Article(title=text)), shipped_aliases())
    assert all(ev._unaliased(w.key) for w in node.words)
    assert ev._plain_phrase(node, "title") == ev._any_phrase(node, "title", 85)


def test_a_phrase_of_a_compound_word_takes_the_short_path_and_finds_it() -> None:
    text = "A cyberattack ceasefire, then a cyber-attack ceasefire and a cyber attack cease-fire"
    node = parse('"cyberattack ceasefire"')
    assert isinstance(node, Phrase)
    ev = Evaluator(Analysis(Article(title=text)), shipped_aliases())
    assert not ev._is_plain("cyberattack") and ev._unaliased("cyberattack")
    found = ev._phrase(node, "title", 85)
    assert found == ev._any_phrase(node, "title", 85)
    spans = [text[o[3][0][1] : o[3][0][2]] for o in found]
    assert spans == ["cyberattack ceasefire", "cyber-attack ceasefire"]


def test_plain_phrase_finds_repeats_and_compounds() -> None:
    text = "New York talks. new-york talks, the new York"
    node = parse('"new york"')
    assert isinstance(node, Phrase)
    ev = Evaluator(Analysis(Article(title=text)), shipped_aliases())
    found = ev._plain_phrase(node, "title")
    assert [text[o[3][0][1] : o[3][0][2]] for o in found] == ["New York", "new-york", "new York"]
    assert found == ev._any_phrase(node, "title", 85)


@settings(max_examples=300, deadline=None)
@given(texts, st.sampled_from(PHRASE_WORDS), st.sampled_from(PHRASE_WORDS))
def test_adjacent_keys_are_where_a_two_word_phrase_is(text: str, a: str, b: str) -> None:
    node = parse(f'"{a} {b}"')
    assert isinstance(node, Phrase)
    ev = Evaluator(Analysis(Article(title=text)), shipped_aliases())
    ft = ev.analysis.field("title")
    assert ft.adjacent(key(a), key(b)) == bool(ev._any_phrase(node, "title", 85))


@settings(max_examples=200, deadline=None)
@given(texts, st.sampled_from(PHRASE_WORDS))
def test_a_plain_words_hits_are_its_occurrences_hits(text: str, word: str) -> None:
    node = parse(word)
    assert isinstance(node, Term)
    art = Article(title=text, text=text[::-1] + " " + text)
    ev = Evaluator(Analysis(art), shipped_aliases())
    assert ev._is_plain(node.key)
    fields = ("title", "text")
    expected = [h for f in fields for o in ev._term_occs(node, f, 85) for h in o[3]]
    assert ev._word_hits(node, fields) == (expected or None)


# Compounds written whole, hyphenated and apart, in any order.
compound_texts = st.lists(
    st.tuples(
        st.sampled_from(
            ["cyber", "Cyber", "attack", "attacks", "cyber-attack", "cyberattack", "cease",
             "fire", "ceasefire", "talks"]
        ),
        st.sampled_from([" ", ", ", "-"]),
    ),
    max_size=12,
).map(lambda parts: "".join(w + sep for w, sep in parts))


@settings(max_examples=300, deadline=None)
@given(compound_texts, st.sampled_from(["cyberattack", "ceasefire", "attack"]))
def test_an_unaliased_words_occurrences_are_the_general_paths(text: str, word: str) -> None:
    node = parse(word)
    assert isinstance(node, Term)
    art = Article(title=text, text=text[::-1] + " " + text)
    short = Evaluator(Analysis(art), shipped_aliases())
    # The same word in an alias group of its own, with a word no text holds, takes the
    # general path (resolve, then the compound readings).
    general = Evaluator(Analysis(art), shipped_aliases({node.key: ["zzqxv"]}))
    assert short._unaliased(node.key) and not general._unaliased(node.key)
    for field in ("title", "text"):
        assert short._term_occs(node, field, 85) == general._term_occs(node, field, 85)


def _reference_hits(art: Article, raw: list[Any]) -> tuple[tuple[Hit, ...], float]:
    """Evidence as first defined: sort on the full order, keep the first of each (term, field,
    span), build every hit by validation, sum the kept hits' weights in that order."""
    kept = []
    last = None
    for h in sorted(set(raw), key=_hit_order):
        if h[:4] != last:
            kept.append(h)
            last = h[:4]
    hits = [
        Hit(
            term=h[3],
            field=h[4],
            start=h[1],
            end=h[2],
            text=art.field(h[4])[h[1] : h[2]],
            kind=h[5],
            score=h[6],
            variant=h[7],
        )
        for h in kept
    ]
    weights = [FIELD_WEIGHTS[h[4]] * h[6] / 100.0 for h in kept]
    return tuple(hits[:MAX_HITS]), float(round(sum(weights), 4))


_FIELDS = ["title", "text"]
raw_hits = st.builds(
    lambda f, s, n, term, kind, score, variant: (
        _FIELDS.index(f),
        s,
        s + n,
        term,
        f,
        kind,
        score,
        None if kind == "exact" else variant,
    ),
    st.sampled_from(_FIELDS),
    st.integers(0, 8),
    st.integers(1, 3),
    st.sampled_from(["kyiv", "kyiv~", '"a b"']),
    st.sampled_from(["exact", "alias", "fuzzy", "prefix"]),
    st.sampled_from([100.0, 91.5, 88.25, 85.0]),
    st.sampled_from(["kiev", "kyjiv"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(raw_hits, min_size=1, max_size=12))
def test_evidence_equals_its_first_definition(raw: list[Any]) -> None:
    # ties of one term on one span, in any order, keep the best hit and score as before
    art = Article(title="Kyiv and Kiev talks", text="Talks in Kyiv, then Kiev.")
    ev = Evaluator(Analysis(art), shipped_aliases())
    assert ev._build_hits(raw) == _reference_hits(art, raw)


def test_evidence_is_capped_but_the_score_counts_every_hit() -> None:
    art = Article(title="x", text="a " * (MAX_HITS + 20))
    raw: list[Any] = [
        (1, 2 * i, 2 * i + 1, "a", "text", "exact", 100.0, None) for i in range(MAX_HITS + 20)
    ]
    ev = Evaluator(Analysis(art), shipped_aliases())
    hits, score = ev._build_hits(raw)
    assert (hits, score) == _reference_hits(art, raw)
    assert len(hits) == MAX_HITS and score == MAX_HITS + 20


_strings = st.text(st.characters(codec="utf-8"), max_size=12)
hits = st.builds(
    Hit, term=_strings, field=st.sampled_from(["title", "text", "url", "source", "tïtle\n\""]),
    start=st.integers(0, 2**70), end=st.integers(0, 2**70), text=_strings,
    kind=st.sampled_from(["exact", "prefix", "alias", "fuzzy", "regex"]),
    score=st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([100.0, 0.0, -0.0]),
    variant=st.none() | _strings)


@settings(max_examples=300, deadline=None)
@given(st.lists(hits, max_size=6))
def test_hits_json_is_json_of_the_dumped_hits(found: list[Hit]) -> None:
    """What the stores keep of a match's evidence: spelt out without a dict per hit, the same
    text as the models dumped and encoded."""
    assert hits_json(found) == json.dumps([h.model_dump() for h in found])


def test_hits_json_of_matcher_built_hits_and_of_a_subclass() -> None:
    article = Article(title="Kyiv talks: Russia’s “troops” — 100,000", text="Київ talks, kyiv")
    match = Evaluator(Analysis(article), shipped_aliases()).match("r", parse("kyiv OR talk*"), 85)
    assert match is not None and len(match.hits) >= 3
    assert hits_json(match.hits) == json.dumps([h.model_dump() for h in match.hits])

    class Noted(Hit):
        note: str = "extra"

    odd = [Noted(term="a", field="text", start=0, end=1, text="a"), *match.hits]
    assert json.loads(hits_json(odd))[0]["note"] == "extra"
    assert hits_json(odd) == json.dumps([h.model_dump() for h in odd])
