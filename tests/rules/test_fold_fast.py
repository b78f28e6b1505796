"""The short way of folding a plain ASCII word gives what the general folding does."""

from __future__ import annotations

import re
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from watchers.rules import text
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


# The general folding as it was written with regular expressions (the possessive, the
# apostrophes and the dashes), before str methods took their place: the specification.
_APOS_RE = re.compile(f"[{text._APOS_FOLD}]")
_DASH_RE = re.compile(f"[{text._DASH}]")
_POSSESSIVE_RE = re.compile(f"[{text._APOS_FOLD}]s$")
_ISE_RE = text._ISE


def _spelling_reference(word: str) -> str:
    return word if "is" not in word else _ISE_RE.sub(r"\1iz\2", word)


def _split_at_reference(piece: str) -> tuple[int, bool]:
    m = _APOS_RE.search(piece)
    if m is None:
        return -1, False
    i = m.start()
    head, tail = piece[:i], _APOS_RE.sub("", piece[i + 1:])
    if not head or not tail:
        return -1, False
    h, t = text._strip_accents(head), text._strip_accents(tail)
    if h in text._ELIDED and t[:1] in text._ELISION_NEXT:
        return i, True
    if len(h) >= 2 and t in text._SUFFIXES and not (
            t in text._LONE_VOWELS and h[-1] in text._VOWELS):
        return i, False
    return -1, False


def _fold_reference(raw: str) -> tuple[str, str, tuple[tuple[str, str, int, int], ...], bool]:
    def k(w: str) -> str:
        return text.fold_plural(_spelling_reference(w))

    base = _POSSESSIVE_RE.sub("", raw) if len(raw) > 2 else raw
    if base and base[-1] in text._APOS:
        base = base[:-1]
    folded = text._strip_accents(base)
    if "." in folded or "," in folded:
        joined = folded.replace(",", "") if folded[0].isdigit() else folded.replace(".", "")
        return (joined, joined, (), not joined)
    joined = _APOS_RE.sub("", _DASH_RE.sub("", folded))
    parts: list[tuple[str, str, int, int]] = []
    hyphened = _DASH_RE.search(base) is not None
    if hyphened or _APOS_RE.search(base):
        pieces: list[tuple[str, int]] = []
        pos = 0
        split = False
        for piece in _DASH_RE.split(base) if hyphened else (base,):
            cut, tail = _split_at_reference(piece)
            if cut < 0:
                pieces.append((piece, pos))
            elif tail:
                pieces.append((piece[cut + 1:], pos + cut + 1))
                split = True
            else:
                pieces.append((piece[:cut], pos))
                split = True
            pos += len(piece) + 1
        if len(pieces) > 1 or split:
            for piece, at in pieces:
                p_norm = _APOS_RE.sub("", text._strip_accents(piece))
                if p_norm:
                    parts.append((p_norm, k(p_norm), at, at + len(piece)))
    key = k(joined)
    return (joined, key, tuple(parts), bool(parts) or not key)


_JOINED = st.text(alphabet=st.sampled_from(list(
    "lLdqusiaeoIShNt's\u2019\u2018`\u02bc\u02bb-\u2010\u2011\u2013.,\n7éİıàZ")), min_size=1,
    max_size=16)
_ENGLISH = st.sampled_from(["mobilised", "organisation", "criticises", "realising",
                            "apologise", "crisis", "analysis", "Russia's", "l'Ukraine",
                            "İstanbul'da", "cyber-attacks", "Hawai'i", "jusqu'à", "re-legislate",
                            "Amanda's\n", "mobilisations\n", "x's\n", "dell'Ucraina"])


@settings(max_examples=3000, deadline=None)
@given(st.one_of(_JOINED, _ENGLISH, st.tuples(_ENGLISH, _JOINED).map("".join)))
def test_the_general_folding_is_what_its_regular_expressions_gave(word: str) -> None:
    assert _fold_general(word) == _fold_reference(word)
    assert text.fold_spelling(word) == _spelling_reference(word)
    assert text._split_at(word) == _split_at_reference(word)
