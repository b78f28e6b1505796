"""Normalising and tokenising text, shared by queries and articles so both sides fold alike.

A word's *key* is what matching compares: accents stripped, case folded, apostrophes and hyphens
removed, a possessive ``'s`` dropped and an English plural folded (``Russia's`` → ``russia``,
``cyber-attacks`` → ``cyberattack``, ``troops`` → ``troop``). Its *norm* is the same without
the plural fold, which prefix terms use so that ``mobili*`` sees the word as written.

A hyphenated word yields the compound and its parts, so both ``cyberattack`` and ``attack`` find
``cyber-attack`` and ``russia`` finds ``Russia-Ukraine``. The compound shares its first part's
position; positions count words, which is what phrases and NEAR measure.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

__all__ = [
    "FieldText",
    "Token",
    "fold_plural",
    "key",
    "norm",
    "query_words",
    "tokenize",
]

# Acronyms with dots (U.S., U.K.) first, then numbers with thousands separators, then words whose
# parts are joined by apostrophes or hyphens. Combining marks count as word characters so text in
# decomposed form does not split inside a word.
_APOS = "'\u2019\u2018`"
_DASH = "\\-\u2010\u2011\u2013"
_WORD = (
    r"(?:[^\W\d_]\.){2,}"
    r"|\d+(?:[.,]\d+)+"
    rf"|(?:[^\W_]|[\u0300-\u036f])+(?:[{_APOS}{_DASH}](?:[^\W_]|[\u0300-\u036f])+)*"
)
_WORD_RE = re.compile(_WORD)
_HYPHENS = re.compile(f"[{_DASH}]")
_APOSTROPHES = re.compile(f"[{_APOS}]")
_POSSESSIVE = re.compile(f"[{_APOS}]s$")

# Words that end in s but are not plurals of a shorter word, or whose "singular" is a different
# word; folding them would make `new` find "news" or `it` find "its".
_NOT_PLURAL = frozenset(
    """
    news its his this thus plus yes does goes was has is us as bus gas bias alias atlas canvas
    chaos ethos kudos cosmos pathos always perhaps whereas series species means physics politics
    economics mathematics athletics ethics lens texas kansas arkansas illinois paris athens wales
    hamas christmas lukas marcus nicholas thomas douglas davos belarus cyprus mars venus
    """.split()  # noqa: SIM905
)
_SIBILANT_ES = re.compile(r"(?:ss|sh|ch|x|z)es$")
# British -ise/-isation spellings of common news verbs fold to -ize, so `mobilization` finds
# "mobilisation"; a list, because "rise", "wise" and "precise" must stay as they are.
_ISE = re.compile(
    r"^((?:de)?(?:mobil|organ|recogn|critic|apolog|author|emphas|real|stabil|destabil|militar|"
    r"neutral|legal|normal|privat|modern|national|central|subsid|minim|maxim|priorit|util|"
    r"sympath|symbol|summar|penal|capital|civil|industrial|global|harmon|"
    r"democrat|sanit|terror|categor|special|ideal|jeopard|memorial|polar|standard|optim|"
    r"monopol|hospital|popular|radical|revolution|colon|local|final|visual))is"
    r"(e|ed|es|ing|ation|ations|er|ers)$"
)


def fold_spelling(word: str) -> str:
    """Fold British -ise/-isation spellings of a list of stems to -ize (mobilise → mobilize)."""
    if "is" not in word:
        return word
    return _ISE.sub(r"\1iz\2", word)


def fold_plural(word: str) -> str:
    """Fold an English plural to its singular, conservatively (``troops`` → ``troop``).

    Short words, words ending in ``ss``, ``us`` or ``is`` and a list of known non-plurals are left
    alone; the point is that a query and a text fold alike, not perfect lemmatisation.
    """
    if len(word) <= 3 or not word.endswith("s") or word in _NOT_PLURAL:
        return word
    if word.endswith(("ss", "us", "is")) or not word[-2].isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if _SIBILANT_ES.search(word):
        return word[:-2]
    return word[:-1]


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


class _Folded(NamedTuple):
    norm: str
    key: str
    parts: tuple[tuple[str, str, int, int], ...]  # (norm, key, start, end) within the word


@lru_cache(maxsize=200_000)
def _fold_word(raw: str) -> _Folded:
    # Offsets of the parts are computed on the raw word, so they stay valid for the original text
    # even when accent stripping changes lengths.
    base = _POSSESSIVE.sub("", raw) if len(raw) > 2 else raw
    if base and base[-1] in _APOS:
        base = base[:-1]
    folded = _strip_accents(base)
    if "." in folded or "," in folded:
        # Acronyms and numbers: U.S. → us, 100,000 → 100000 (a decimal point is kept).
        joined = folded.replace(",", "") if folded[0].isdigit() else folded.replace(".", "")
        return _Folded(joined, joined, ())
    joined = _APOSTROPHES.sub("", _HYPHENS.sub("", folded))
    parts: list[tuple[str, str, int, int]] = []
    if _HYPHENS.search(base):
        pos = 0
        for piece in _HYPHENS.split(base):
            p_norm = _APOSTROPHES.sub("", _strip_accents(piece))
            if p_norm:
                parts.append((p_norm, fold_plural(fold_spelling(p_norm)), pos, pos + len(piece)))
            pos += len(piece) + 1
    return _Folded(joined, fold_plural(fold_spelling(joined)), tuple(parts))


def norm(word: str) -> str:
    """A word folded for comparison but keeping its plural (``Mobilised`` → ``mobilised``)."""
    return _fold_word(word).norm


def key(word: str) -> str:
    """A word's matching key (``Russia's`` → ``russia``, ``Cyber-Attacks`` → ``cyberattack``)."""
    return _fold_word(word).key


class Token(NamedTuple):
    """One word of a field: its key and norm, its span in the original text and its position."""

    key: str
    norm: str
    start: int
    end: int
    pos: int
    last: int  # position of the last part of a compound, else ``pos``


@dataclass(slots=True)
class FieldText:
    """A field's tokens with an index from key to token numbers, built once per field."""

    text: str
    tokens: list[Token]
    by_key: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, text: str) -> FieldText:
        tokens = tokenize(text)
        by_key: dict[str, list[int]] = {}
        for i, tok in enumerate(tokens):
            slot = by_key.get(tok.key)
            if slot is None:
                by_key[tok.key] = [i]
            else:
                slot.append(i)
        return cls(text, tokens, by_key)


def tokenize(text: str) -> list[Token]:
    """Split text into tokens with spans into ``text`` itself; compounds also yield their parts."""
    out: list[Token] = []
    pos = 0
    for m in _WORD_RE.finditer(text):
        f = _fold_word(m.group())
        if not f.key:
            continue
        start = m.start()
        if f.parts:
            out.append(Token(f.key, f.norm, start, m.end(), pos, pos + len(f.parts) - 1))
            for p_norm, p_key, p_start, p_end in f.parts:
                out.append(Token(p_key, p_norm, start + p_start, start + p_end, pos, pos))
                pos += 1
        else:
            out.append(Token(f.key, f.norm, start, m.end(), pos, pos))
            pos += 1
    return out


def query_words(term: str) -> list[tuple[str, str]]:
    """The (key, norm) pairs of a query term; more than one means the term is a phrase.

    A hyphenated query term stays one compound word (``cyber-attack`` → ``cyberattack``).
    """
    out: list[tuple[str, str]] = []
    for m in _WORD_RE.finditer(term):
        f = _fold_word(m.group())
        if f.key:
            out.append((f.key, f.norm))
    return out
