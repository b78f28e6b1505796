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
    "а": "a", "б": "b", "в": "v", "г": "h", "ґ": "g", "д": "d", "е": "e", "є": "ie", "ё": "e",
    "ж": "zh", "з": "z", "и": "y", "і": "i", "ї": "i", "й": "i", "к": "k", "л": "l", "м": "m",
    "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh",
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
    if aliases is not None:
        if token in aliases.of(term):
            return Verdict("alias", 100.0)
        if token in aliases.distinct_from(term):
            return None
    return _compare_fuzzy(term, token, float(threshold))


@lru_cache(maxsize=500_000)
def _compare_fuzzy(term: str, token: str, threshold: float) -> Verdict | None:
    t_term, t_token = translit_key(term), translit_key(token)
    if t_term == t_token:
        if threshold <= TRANSLIT_SCORE and not (is_common_word(term) and is_common_word(token)):
            return Verdict("fuzzy", TRANSLIT_SCORE)
        return None
    score = typo_similarity(term, token, t_term, t_token)
    if score >= threshold and not is_common_word(token):
        return Verdict("fuzzy", round(score, 2))
    return None


def typo_similarity(term: str, token: str, t_term: str = "", t_token: str = "") -> float:
    """How alike two keys are as typos of each other (0 to 100).

    The best of: rapidfuzz ``ratio``; the same on transliteration keys (so Gorlovka is one
    letter from Horlivka, not two); and, for one swap of adjacent letters, the most common typo,
    half an edit per word length (Puitn/Putin 90) where ``ratio`` counts it as two.
    """
    score = similarity(term, token)
    if t_term or t_token:
        score = max(score, similarity(t_term, t_token))
    if len(term) == len(token) and is_transposition(term, token):
        score = max(score, 100.0 * (1.0 - 0.5 / len(term)))
    return score


def is_transposition(a: str, b: str) -> bool:
    """Whether ``b`` is ``a`` with exactly two adjacent letters swapped."""
    if len(a) != len(b) or a == b:
        return False
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    return (
        len(diff) == 2
        and diff[1] == diff[0] + 1
        and a[diff[0]] == b[diff[1]]
        and a[diff[1]] == b[diff[0]]
    )


# Both halves of a closed compound must be common English words of at least this many letters,
# so `cyberattack` finds "cyber attack" and `ceasefire` "cease fire", but `border` (bor+der) and
# `kyiv` are never split.
SPLIT_MIN_LETTERS = 3
SPLIT_MIN_ZIPF = 3.5
# Suffixes that word lists count as words ("shell"+"ing" is not two words).
_NOT_SECOND_WORD = frozenset(
    """
    ing ings ed er ers est ly ment ments ness tion tions sion able ible ful less ous ism ist ists
    ity ive ize ise ion ions ance ence ant ent ics ish ward wards ian ians ese ite ites
    """.split()  # noqa: SIM905
)


@lru_cache(maxsize=100_000)
def compound_splits(key: str) -> tuple[tuple[str, str], ...]:
    """Ways to read a word key as two common words written apart (``cyberattack``).

    The right half is plural-folded like any key, since the text's second word is.
    """
    from .text import fold_plural

    if not key.isalpha() or len(key) < 2 * SPLIT_MIN_LETTERS:
        return ()
    best: tuple[float, str, str] | None = None
    for i in range(SPLIT_MIN_LETTERS, len(key) - SPLIT_MIN_LETTERS + 1):
        left, right = key[:i], key[i:]
        if right in _NOT_SECOND_WORD:
            continue
        weakest = min(_zipf(left), _zipf(right))
        # Only the most plausible reading: warship is war+ship, not wars+hip.
        if weakest >= SPLIT_MIN_ZIPF and (best is None or weakest > best[0]):
            best = (weakest, left, right)
    return () if best is None else ((best[1], fold_plural(best[2])),)


class Aliases:
    """Groups of keys that name the same thing; symmetric and transitive."""

    def __init__(
        self,
        table: Mapping[str, Sequence[str]] | None = None,
        distinct: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._group: dict[str, frozenset[str]] = {}
        self._distinct: dict[str, frozenset[str]] = {}
        if table:
            self.update(table)
        if distinct:
            self.add_distinct(distinct)

    def add_distinct(self, table: Mapping[str, Sequence[str]]) -> None:
        """Record words that look like variants of each other but name different things."""
        for head, others in table.items():
            if isinstance(others, str):
                others = [others]
            a = _alias_key(head)
            for other in others:
                b = _alias_key(other)
                self._distinct[a] = self._distinct.get(a, frozenset()) | {b}
                self._distinct[b] = self._distinct.get(b, frozenset()) | {a}

    def distinct_from(self, key: str) -> frozenset[str]:
        """Keys that fuzzy matching must never take for ``key`` (Zelenska is not Zelensky)."""
        return self._distinct.get(key, frozenset())

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
        return len({id(g) for g in self._group.values()})

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Aliases)
            and self._group == other._group
            and self._distinct == other._distinct
        )

    def __hash__(self) -> int:
        return hash((frozenset(self._group.items()), frozenset(self._distinct.items())))

    def __repr__(self) -> str:
        return f"Aliases({len(self)} groups)"


def _alias_key(word: str) -> str:
    k = word_key(word.strip())
    if not k or " " in word.strip():
        raise ValueError(f"an alias must be a single word, not {word!r}")
    return k


@lru_cache(maxsize=1)
def _shipped_tables() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    text = resources.files(__package__).joinpath("data/aliases.toml").read_text("utf-8")
    data = tomllib.loads(text)
    return data["aliases"], data.get("distinct", {})


def shipped_aliases(extra: Mapping[str, Sequence[str]] | None = None) -> Aliases:
    """The shipped alias table, extended by ``extra`` (e.g. a config's ``[aliases]``).

    Tables are built once per distinct ``extra``: a caller may pass the same config on every
    call. The result is shared, so treat it as read-only.
    """
    if not extra:
        return _shipped_default()
    sig = tuple(sorted((k, (v,) if isinstance(v, str) else tuple(v)) for k, v in extra.items()))
    return _extended(sig)


@lru_cache(maxsize=64)
def _extended(sig: tuple[tuple[str, tuple[str, ...]], ...]) -> Aliases:
    table, distinct = _shipped_tables()
    aliases = Aliases(table, distinct)
    aliases.update(dict(sig))
    return aliases


@lru_cache(maxsize=1)
def _shipped_default() -> Aliases:
    table, distinct = _shipped_tables()
    return Aliases(table, distinct)
