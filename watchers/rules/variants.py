"""Spelling variants: when a word in an article counts as a query word written differently.

Plain edit distance cannot separate variants from different words (kyiv/kiev scores 75 while
russia/prussia scores 92), so a fuzzy term accepts a token only for one of these reasons, tried in
order:

1. the same key (``exact``);
2. the alias table says they are one name (``alias``): a shipped table of transliterations and
   Cyrillic spellings that a config's ``[aliases]`` extends;
3. both fold to the same transliteration key (Kharkov/Kharkiv, Zelenskiy/Zelensky, Київ/Kyiv),
   scored :data:`TRANSLIT_SCORE`, unless both are common English words (gold/hold);
4. a typo: similarity (rapidfuzz ``ratio``) at or above the threshold, unless the token is itself
   a common English word (prussia is not a typo of russia, nor stalks of talks).

A plain (non-fuzzy) term uses steps 1 and 2 only.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from importlib import resources
from typing import Literal, NamedTuple

from rapidfuzz.distance import Indel

from .text import key as word_key

__all__ = [
    "COMMON_ZIPF",
    "TRANSLIT_SCORE",
    "Aliases",
    "Verdict",
    "compare",
    "is_common_word",
    "shipped_aliases",
    "similarity",
    "translit_key",
]

TRANSLIT_SCORE = 95.0
# Zipf frequency (log10 per billion words) from which a word counts as common English: "stalk"
# 3.5, "trope" 3.1, "prussia" 3.4 are above; typos are near 0 and "kharkiv" 2.9, "lugansk" 2.0.
COMMON_ZIPF = 3.0

VariantKind = Literal["exact", "alias", "fuzzy"]


class Verdict(NamedTuple):
    kind: VariantKind
    score: float


_CYRILLIC = {
    "а": "a", "б": "b", "в": "v", "г": "h", "ґ": "g", "д": "d", "е": "e", "є": "ie", "ё": "e",  # noqa: RUF001
    "ж": "zh", "з": "z", "и": "y", "і": "i", "ї": "i", "й": "i", "к": "k", "л": "l", "м": "m",  # noqa: RUF001
    "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh",  # noqa: RUF001
    "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e",
    "ю": "iu", "я": "ia",
}  # fmt: skip
_CYR_TABLE = str.maketrans(_CYRILLIC)
_DOUBLE = re.compile(r"(.)\1+")


@lru_cache(maxsize=100_000)
def translit_key(word: str) -> str:
    """Fold the letters that transliterations of Ukrainian and Russian names disagree on.

    Cyrillic is romanised, then kh/h/g, y/i/j/e and the Ukrainian -iv / Russian -ov ending are
    merged and doubled letters collapsed: Kyiv, Kiev and Київ all give ``kiv``.
    """
    w = word.translate(_CYR_TABLE)
    w = w.replace("kh", "h").replace("g", "h").replace("w", "v")
    w = w.replace("y", "i").replace("j", "i").replace("e", "i")
    if w.endswith("ov") and len(w) > 4:
        w = w[:-2] + "iv"
    return _DOUBLE.sub(r"\1", w)


def similarity(a: str, b: str) -> float:
    """rapidfuzz's ``fuzz.ratio`` (normalised Indel similarity, 0 to 100)."""
    return Indel.normalized_similarity(a, b) * 100.0


_zipf_impl: object | None = None


@lru_cache(maxsize=100_000)
def _zipf(word: str) -> float:
    global _zipf_impl
    if _zipf_impl is None:
        try:
            from wordfreq import zipf_frequency
        except ImportError:  # pragma: no cover - wordfreq is a dependency; degrade, do not crash
            _zipf_impl = False
        else:
            _zipf_impl = zipf_frequency
    if _zipf_impl is False:
        return 0.0
    return float(_zipf_impl(word, "en"))  # type: ignore[operator]


def is_common_word(word: str) -> bool:
    """Whether a (folded) word is common in English text, in its own right."""
    if not word.isascii():
        return False
    return _zipf(word) >= COMMON_ZIPF or (
        len(word) > 3 and not word.endswith("s") and _zipf(word + "s") >= COMMON_ZIPF
    )


def compare(term: str, token: str, threshold: float, aliases: Aliases | None) -> Verdict | None:
    """Whether ``token`` (a key) matches the fuzzy term ``term`` (a key) at ``threshold``."""
    if term == token:
        return Verdict("exact", 100.0)
    if aliases is not None and token in aliases.of(term):
        return Verdict("alias", 100.0)
    return _compare_fuzzy(term, token, float(threshold))


@lru_cache(maxsize=500_000)
def _compare_fuzzy(term: str, token: str, threshold: float) -> Verdict | None:
    if translit_key(term) == translit_key(token):
        if threshold <= TRANSLIT_SCORE and not (is_common_word(term) and is_common_word(token)):
            return Verdict("fuzzy", TRANSLIT_SCORE)
        return None
    score = similarity(term, token)
    if score >= threshold and not is_common_word(token):
        return Verdict("fuzzy", round(score, 2))
    return None


class Aliases:
    """Groups of keys that name the same thing; symmetric and transitive."""

    def __init__(self, table: Mapping[str, Sequence[str]] | None = None) -> None:
        self._group: dict[str, frozenset[str]] = {}
        if table:
            self.update(table)

    def update(self, table: Mapping[str, Sequence[str]]) -> None:
        for head, others in table.items():
            if isinstance(others, str):
                others = [others]
            keys = {_alias_key(head), *(_alias_key(o) for o in others)}
            merged: set[str] = set(keys)
            for k in keys:
                merged |= self._group.get(k, frozenset())
            group = frozenset(merged)
            for k in group:
                self._group[k] = group

    def of(self, key: str) -> frozenset[str]:
        """The keys in ``key``'s group, itself included; empty if it has none."""
        return self._group.get(key, frozenset())

    def groups(self) -> Iterable[frozenset[str]]:
        return set(self._group.values())

    def __len__(self) -> int:
        return len(self.groups())  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Aliases) and self._group == other._group

    def __hash__(self) -> int:
        return hash(frozenset(self._group.items()))

    def __repr__(self) -> str:
        return f"Aliases({len(self)} groups)"


def _alias_key(word: str) -> str:
    k = word_key(word.strip())
    if not k or " " in word.strip():
        raise ValueError(f"an alias must be a single word, not {word!r}")
    return k


@lru_cache(maxsize=1)
def _shipped_table() -> dict[str, list[str]]:
    text = resources.files(__package__).joinpath("data/aliases.toml").read_text("utf-8")
    table: dict[str, list[str]] = tomllib.loads(text)["aliases"]
    return table


def shipped_aliases(extra: Mapping[str, Sequence[str]] | None = None) -> Aliases:
    """The shipped alias table, extended by ``extra`` (e.g. a config's ``[aliases]``)."""
    aliases = Aliases(_shipped_table())
    if extra:
        aliases.update(extra)
    return aliases
