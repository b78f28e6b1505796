"""Spelling variants: when a word in an article counts as a query word written differently.

Plain edit distance cannot separate variants from different words (kyiv/kiev scores 75 while
russia/prussia scores 92), so a fuzzy term accepts a token only for one of these reasons, tried in
order:

1. the same key (``exact``);
2. the alias table says they are one name (``alias``): a shipped table of transliterations and
   Cyrillic spellings that a config's ``[aliases]`` extends; its ``[distinct]`` section refuses;
   a fuzzy term also takes one of the names it takes as itself declined as Slavic languages
   (and Hungarian's "in") decline names (:func:`declined`: Kijowie, Києва, Kyjeva, Putinem,
   Zelenského, Kijevben), scored :data:`TRANSLIT_SCORE`, unless the token is a word or name
   in its own right (step 4);
3. one is the other in another transliteration system (:func:`readings`): Cyrillic, and the
   English, German, Polish, French and scholarly spellings of Ukrainian and Russian names are
   each read back to one strict key (Donezk/Donetsk, Charkiw/Kharkiv, Lwów/Lviv), scored
   :data:`TRANSLIT_SCORE`, unless both are common English words (gold/hold);
4. otherwise a token that is a known word or name in its own right is refused: a common English
   word, or a rarer word, place or person name in the shipped lexicon (Kivu for kyiv, Gremlin for
   kremlin, Zielinski for zelensky, Putten for putin). Typos are not in dictionaries, save a
   rare one two swapped letters from a far commoner term (Isreal, a family name, for israel);
5. both fold to the same loose transliteration key (:func:`loose_key`: also e/i and -ov/-iv,
   Gorbatschow/Gorbachev), scored :data:`TRANSLIT_SCORE`;
6. a typo: similarity (rapidfuzz ``ratio``) at or above the threshold, for terms of at least
   :data:`MIN_TYPO_LETTERS` letters (one letter off a shorter word is mostly another word: natto,
   nano) or one swap of adjacent letters. With :data:`FOREIGN_WORD_GUARD` (off), not a word
   common in another language that writes the term too (:func:`is_foreign_word`: French
   "putain" for putin, German "Trumpf" for trump), since that language would not spell the term
   so. Its own name for the thing stays a variant: French does not write "Brittany", so its
   common "Bretagne" is not turned away.

A plain (non-fuzzy) term uses steps 1 and 2 only. Steps 3 to 6 only accept a pair that a
candidate index built on :func:`translit_key` and similarity finds (so the indexed matcher and
the naive one agree). All data is loaded once, at first use.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from importlib import resources
from typing import Final, Literal, NamedTuple

from . import text as _text
from .text import key as word_key

__all__ = [
    "COMMON_ZIPF",
    "FOREIGN_LANGS",
    "FOREIGN_TERM_ZIPF",
    "FOREIGN_WORD_GUARD",
    "FOREIGN_WORD_ZIPF",
    "LONGEST_ENDING",
    "MIN_TYPO_LETTERS",
    "TRANSLIT_SCORE",
    "Aliases",
    "Verdict",
    "compare",
    "declined",
    "is_common_word",
    "is_foreign_word",
    "is_known_word",
    "loose_key",
    "readings",
    "shipped_aliases",
    "similarity",
    "stem_key",
    "stems_of",
    "token_stems",
    "translit_key",
]

TRANSLIT_SCORE = 95.0
# Zipf frequency (log10 per billion words) from which a word counts as common English: "stalk"
# 3.5, "trope" 3.1, "prussia" 3.4 are above; typos are near 0 and "kharkiv" 2.9, "lugansk" 2.0.
COMMON_ZIPF = 3.0
# Shorter terms take typos only as a swap of two letters (kyiv/kyvi), see step 6 above.
MIN_TYPO_LETTERS = 5

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
def loose_key(word: str) -> str:
    """Fold the letters that transliterations of Ukrainian and Russian names disagree on.

    Cyrillic is romanised, then kh/h/g, y/i/j/e and the Ukrainian -iv / Russian -ov ending are
    merged and doubled letters collapsed: Kyiv, Kiev and Київ all give ``kiv``.
    """
    w = word.translate(_CYR_TABLE).replace("ł", "l").replace("'", "")
    w = w.replace("kh", "h").replace("g", "h").replace("w", "v")
    w = w.replace("y", "i").replace("j", "i").replace("e", "i")
    if w.endswith("ov") and len(w) > 4:
        w = w[:-2] + "iv"
    return _DOUBLE.sub(r"\1", w)


# The blocking key's classes, longest spelling first: every way German, Polish, French, English
# and scholarly transliteration write ch/kh/h/g (Tschernihiw, Charkiw) and the sibilants
# (Donezk, Saporischschja, Szojgu) falls into one class.
_COARSE = re.compile(r"tsch|szcz|schtsch|sch|tch|cz|sz|rz|shch|kh|ch|zh|sh|ts|tz|ou|[gcjyezw]")
_COARSE_CLASS = {
    "tsch": "h", "tch": "h", "cz": "h", "ch": "h", "kh": "h", "g": "h",
    "szcz": "s", "schtsch": "s", "shch": "s", "sch": "s", "sz": "s", "rz": "s", "zh": "s",
    "sh": "s", "ts": "s", "tz": "s", "c": "s", "z": "s",
    "ou": "u", "j": "i", "y": "i", "e": "i", "w": "v",
}  # fmt: skip


_COARSE_MULTI = re.compile(
    "|".join(a for a in _COARSE.pattern.split("|") if not a.startswith("[")))
_COARSE_SINGLE = str.maketrans({k: v for k, v in _COARSE_CLASS.items() if len(k) == 1})


def _coarse_class(m: re.Match[str]) -> str:
    return _COARSE_CLASS[m[0]]


def _first_letter(m: re.Match[str]) -> str:
    return m[1]


@lru_cache(maxsize=100_000)
def translit_key(word: str) -> str:
    """A coarse key for finding candidate variants of a word (a blocking key).

    Coarser than any spelling rule :func:`compare` applies: ch/kh/h/g and the č spellings share a
    class, as do the sibilants, and y/i/j/e. Kyiv and Kiew give ``kiv``, Donetsk and Donezk
    ``donisk``. Every pair that :func:`compare` accepts as fuzzy has equal keys, or keys or
    words at least as similar as the threshold, so an index that looks candidates up by this
    key and by similarity misses none.
    """
    # An ASCII word's key in one C pass when the extension is built (the regex substitution
    # below calls back into Python for each spelling it replaces: 1.5 µs a new word).
    if _text._translit is not None and (done := _text._translit(word)) is not None:
        return done
    return _translit_key(word)


def _translit_key(word: str) -> str:
    """:func:`translit_key` without its cache or the C extension (the specification)."""
    # (Written for speed, as every word of a lookup index may need its key: the table only
    # changes non-ASCII letters, and most words hold no doubled letter.)
    w = word if word.isascii() else word.translate(_CYR_TABLE).replace("ł", "l")
    if "'" in w:
        w = w.replace("'", "")
    # _COARSE's spellings of several letters by regex, then its single letters in one C pass:
    # the same result, since a single letter there consumes one character, as not matching
    # does, and no class a spelling becomes (h s u) is itself a letter that changes.
    w = _COARSE_MULTI.sub(_coarse_class, w).translate(_COARSE_SINGLE)
    if w.endswith("ov") and len(w) > 4:
        w = w[:-2] + "iv"
    return _DOUBLE.sub(_first_letter, w) if _DOUBLE.search(w) else w


def _findable(term: str, token: str, threshold: float) -> bool:
    """Whether a candidate index finds ``token`` for ``term`` (see :func:`translit_key`)."""
    t_term, t_token = translit_key(term), translit_key(token)
    return (
        t_term == t_token
        or similarity(t_term, t_token) >= threshold
        or similarity(term, token) >= threshold
        or sorted(term) == sorted(token)
    )


# Slack given to rapidfuzz's score_cutoff where a candidate search must find every pair that
# :func:`compare` accepts: rapidfuzz turns away a pair whose similarity is exactly the cutoff
# unless the cutoff is some 2e-8 below it (``putin`` and ``putan`` are 0.8 alike, and at a
# cutoff of 0.8 - 1e-9 rapidfuzz scored them 0). Two distinct similarities of words under 200
# letters differ by far more than this, so it adds no other pair.
CUTOFF_SLACK: Final = 1e-6


def similarity(a: str, b: str) -> float:
    """rapidfuzz's ``fuzz.ratio`` (normalised Indel similarity, 0 to 100)."""
    score = _indel_similarity
    if score is None:
        score = _load_indel()
    return score(a, b) * 100.0


_indel_similarity: Callable[[str, str], float] | None = None


def _load_indel() -> Callable[[str, str], float]:
    # rapidfuzz is loaded by the first fuzzy comparison, not by every command that parses rules.
    global _indel_similarity
    from rapidfuzz.distance import Indel

    _indel_similarity = Indel.normalized_similarity
    return _indel_similarity


# How common plain words are comes from a table shipped with the package (``data/zipf_en.txt``,
# built from wordfreq by bench/build_zipf.py): wordfreq itself takes about 0.3 s to import and
# load, which a short command like ``newswatch search`` should not pay. The table holds every
# lowercase a-z word wordfreq rates above ZIPF_FLOOR, with wordfreq's value; a plain word not in
# it is at or below the floor, where no threshold of ours falls (story weights are clamped at
# 2.5 and below), and reads as 0.0. Any other string is asked of wordfreq.
ZIPF_FLOOR = 2.5
_zipf_table: dict[str, str] | None = None
_zipf_text: str | None = None  # the table's lines, searched until enough words were asked
_zipf_asked = 0
_zipf_impl: object | None = None
# A short command asks for a handful of words (a query's terms and their splits): each is
# found by a binary search of the table's sorted text (a few µs), and only past this many is
# the table made a dict (about 20 ms: 50,000 words), which a process matching articles needs.
ZIPF_SEARCHES = 2_000


def _load_zipf_table() -> dict[str, str]:
    global _zipf_table
    if _zipf_table is None:
        # Pairs split and zipped in C: about 15 ms for the 50,000 words; values are parsed
        # when asked for (lookups are cached).
        _zipf_table = _pairs(_zipf_lines())
    return _zipf_table


def _zipf_lines() -> str:
    """The table's text without its comments: ``"word value\n"`` lines, sorted by word."""
    global _zipf_text
    if _zipf_text is None:
        _zipf_text = _table_text("data/zipf_en.txt", "ascii")
    return _zipf_text


def _pairs(text: str) -> dict[str, str]:
    """A table's ``"key value"`` lines as a dict, split and zipped in C."""
    pairs = iter(text.split())
    return dict(zip(pairs, pairs, strict=True))


def _table_text(name: str, encoding: str) -> str:
    """A shipped table's text (``name`` under this package) without its leading comments."""
    text = resources.files(__package__).joinpath(name).read_text(encoding)
    while text.startswith("#"):
        text = text.partition("\n")[2]
    return text


def _zipf_value(word: str) -> str | None:
    """The table's value of a plain a-z word, or None."""
    global _zipf_asked
    if _zipf_table is not None or _zipf_asked >= ZIPF_SEARCHES:
        return _load_zipf_table().get(word)
    _zipf_asked += 1
    return _sorted_lookup(_zipf_lines(), word)


def _sorted_lookup(text: str, word: str) -> str | None:
    """The value of ``word`` in ``text``'s ``"word value\n"`` lines sorted by word, or None:
    a binary search of the text, a few µs, where a dict would first cost tens of ms."""
    lo, hi = 0, len(text)  # lo: a line's start; the line holding the word starts in [lo, hi)
    while lo < hi:
        # The start of the line around the middle: after lo, before hi.
        mid = text.rfind("\n", lo, (lo + hi) // 2) + 1 or lo
        space = text.index(" ", mid)
        end = text.index("\n", space)
        here = text[mid:space]
        if here == word:
            return text[space + 1:end]
        if here < word:
            lo = end + 1
        else:
            hi = mid
    return None


def _wordfreq_zipf(word: str) -> float:
    global _zipf_impl
    if _zipf_impl is None:
        try:
            import wordfreq
        except ImportError:  # pragma: no cover - wordfreq is a dependency; degrade, do not crash
            _zipf_impl = False
        else:
            wordfreq.zipf_frequency("0", "en")  # loads the English word list and its dict
            # Lookups read the dict (str -> float, which the cyclic garbage collector leaves
            # alone); the list it was made from is kept in a cache of its own, 300,000 strs in
            # lists that each full collection would walk again. Let it go.
            wordfreq.get_frequency_list.cache_clear()
            _zipf_impl = wordfreq.zipf_frequency
    if _zipf_impl is False:
        return 0.0
    return float(_zipf_impl(word, "en"))  # type: ignore[operator]


@lru_cache(maxsize=100_000)
def _zipf(word: str) -> float:
    """wordfreq's zipf value of ``word`` in English, or 0.0 for a plain a-z word at or below
    :data:`ZIPF_FLOOR`."""
    if word.isascii() and word.isalpha() and word.islower():
        value = _zipf_value(word)
        return 0.0 if value is None else float(value)
    return _wordfreq_zipf(word)


def is_common_word(word: str) -> bool:
    """Whether a (folded) word is common in English text, in its own right."""
    if not word.isascii():
        return False
    return _zipf(word) >= COMMON_ZIPF or (
        len(word) > 3 and not word.endswith("s") and _zipf(word + "s") >= COMMON_ZIPF
    )


# How other languages spell the sounds of Ukrainian and Russian names, as (pattern, English)
# rewrites applied in order to a key (accents already stripped, so ž/ż/ź read as z and č/ć as c).
# Placeholders \x01 (ch as in church) and \x02 (sh) keep a later rule from rewriting an earlier
# result: German "tsch" is English "ch", and German "ch" is English "kh".
_V = "aeiouy"
_LANGUAGE_RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "de": (
        ("tsch", "\x01"), ("sch", "\x02"), ("ch", "kh"), ("w", "v"), ("z", "ts"),
        (f"^s(?=[{_V}])", "z"), (f"(?<=[{_V}])s(?=[{_V}])", "z"), ("ie", "i"), ("j", "y"),
    ),
    "pl": (
        ("szcz", "\x02\x01"), ("cz", "\x01"), ("sz", "\x02"), ("rz", "zh"), ("ch", "kh"),
        ("ie", "e"), ("c", "ts"), ("w", "v"), ("j", "y"),
    ),
    "fr": (("tch", "\x01"), ("ch", "\x02"), ("ou", "u"), ("j", "zh")),
    # Scholarly transliteration with its carons stripped (Černihiv, Donec'k, Zaporižžja).
    "sci": (("ch", "kh"), ("c(?=[^k]|$)", "\x01"), ("c", "ts"), ("j", "y")),
}  # fmt: skip
_COMPILED_RULES = tuple(
    tuple((re.compile(pat), rep) for pat, rep in rules) for rules in _LANGUAGE_RULES.values()
)
_RESTORE = str.maketrans({"\x01": "ch", "\x02": "sh"})
# Strict key: only the differences between transliteration systems, never a vowel (Seria is not
# Syria, Putten not Putin); ж/ш as zh/sh/sch share one sibilant class since German writes both
# "sch".
_STRICT = (
    ("kh", "h"), ("g", "h"), ("w", "v"), ("zh", "\x02"), ("sh", "\x02"), ("y", "i"), ("j", "i"),
)  # fmt: skip


def _strict(word: str) -> str:
    for a, b in _STRICT:
        word = word.replace(a, b)
    if word.endswith("ov") and len(word) > 4:
        word = word[:-2] + "iv"
    return _DOUBLE.sub(r"\1", word)


@lru_cache(maxsize=100_000)
def readings(word: str) -> frozenset[str]:
    """A key read as an English, German, Polish, French and scholarly spelling, each folded to
    one strict key: Donezk, Donieck and Donetsk share ``donetsk``.
    """
    base = word.translate(_CYR_TABLE).replace("ł", "l").replace("'", "")
    out = {_strict(base)}
    if not base.isascii():
        return frozenset(out)
    for rules in _COMPILED_RULES:
        w = base
        for rx, rep in rules:
            w = rx.sub(rep, w)
        out.add(_strict(w.translate(_RESTORE)))
    return frozenset(out)


@lru_cache(maxsize=100_000)
def _loose(word: str) -> frozenset[str]:
    return frozenset(loose_key(r.replace("\x02", "sh")) for r in readings(word))


_lexicon: tuple[dict[str, None], dict[str, None]] | None = None


def _load_lexicon() -> tuple[dict[str, None], dict[str, None]]:
    """(words, names) from ``data/lexicon.txt``: comment lines, words, ``[names]``, names.

    Each is a dict of its words to None rather than a set: a dict holding only strs and None
    is left out of the cyclic garbage collector, which walks a set's every member in each full
    collection (80,000 of them, again and again, in a process whose heap grows)."""
    global _lexicon
    if _lexicon is None:
        text = resources.files(__package__).joinpath("data/lexicon.txt").read_text("utf-8")
        while text.startswith("#"):
            text = text.partition("\n")[2]
        words, _, names = text.partition("\n[names]\n")
        # split() and fromkeys() run in C: about 20 ms for the shipped 80,000 keys.
        _lexicon = (dict.fromkeys(words.split()), dict.fromkeys(names.split()))
    return _lexicon


def load_word_tables(*, wordfreq: bool) -> None:
    """Load now what judging fuzzy candidates reads (the lexicon, the zipf table, the
    foreign-word table when :data:`FOREIGN_WORD_GUARD` reads it; wordfreq, its modules and its
    table too when ``wordfreq``) instead of at the first article that needs it. A large rule
    set loads them before it freezes the collector's heap (see ``RuleSet``), so wordfreq's
    modules are frozen with it rather than walked by every later full collection (the tables
    themselves the collector leaves alone)."""
    _load_lexicon()
    _load_zipf_table()
    if FOREIGN_WORD_GUARD:
        _load_foreign_words()
    if wordfreq:
        _wordfreq_zipf("0")


def is_known_word(word: str) -> bool:
    """Whether a key is a word or name in its own right: common English, or in the lexicon of
    rarer words, places and given and family names (``data/lexicon.txt``).
    """
    if is_common_word(word):
        return True
    words, names = _load_lexicon()
    return word in words or word in names


# Other languages whose common words a typo is not (step 6 of the module's doc): the largest
# European ones in Latin script wordfreq has full lists of, each a letter in
# ``data/foreign_words.txt`` (built by bench/build_foreign_words.py from these constants).
FOREIGN_LANGS: Final = {
    "de": "d", "fr": "f", "es": "e", "it": "i", "pt": "p", "nl": "n", "pl": "l", "sv": "s",
    "tr": "t",
}  # fmt: skip
# A token this common (zipf) in a language is a word of it ("macaron" in French is 2.86), when
# the term is at least FOREIGN_TERM_ZIPF there: a name that language writes as English does
# ("putin" in French text 3.13, "trump" in German 4.70). Measured on the development sets: the
# commonest term a language does not write as English is "brittany" in French, 2.99 (French
# writes "Bretagne"), and the commonest misspelling "ghandi" in Spanish, 2.58.
FOREIGN_WORD_ZIPF: Final = 3.0
FOREIGN_TERM_ZIPF: Final = 3.0
# Whether step 6 applies :func:`is_foreign_word`. On the development sets (probes 1-4) it turns
# away 16 look-alikes (Putain, Trumpf, Romagna, Macaron...) and no variant; on the fifth, the
# unseen one, it turned away 6 (Samos, Invidia, Weide ...) and one variant, French "Poutine",
# until French readings joined the spellings (ou for a Slavic u, a mute e after a name's final
# consonant: Poutine, Staline): 0.941 / 0.779 → 0.956 / 0.779 there.
FOREIGN_WORD_GUARD: Final = True
_foreign: dict[str, str] | None = None
_foreign_text: str | None = None
_foreign_asked = 0


def _foreign_letters(word: str) -> str | None:
    """``data/foreign_words.txt``'s letters for a key (upper case: common enough to be a term
    in that language), or None. Read at the first candidate that reaches the typo step, not at
    start-up, and searched as :func:`_zipf_value` searches its table: a short command asks for
    a few keys, and only past :data:`ZIPF_SEARCHES` are its 100,000 made a dict (about 25 ms)."""
    global _foreign_asked
    if _foreign is not None or _foreign_asked >= ZIPF_SEARCHES:
        return _load_foreign_words().get(word)
    _foreign_asked += 1
    return _sorted_lookup(_foreign_lines(), word)


def _foreign_lines() -> str:
    global _foreign_text
    if _foreign_text is None:
        _foreign_text = _table_text("data/foreign_words.txt", "utf-8")
    return _foreign_text


def _load_foreign_words() -> dict[str, str]:
    """The whole table as a dict, split and zipped in C."""
    global _foreign
    if _foreign is None:
        _foreign = _pairs(_foreign_lines())
    return _foreign


def is_foreign_word(term: str, token: str) -> bool:
    """Whether ``token`` is a word common in a language that writes ``term`` (both keys) too,
    so not that language's spelling of it: "putain" for putin in French, "romagna" for romania
    in Italian. A language's own name for the term's thing, where it does not write the term
    ("bretagne" for brittany in French), is not; nor is one that only spells the term's sounds
    with that language's letters ("amerika" for america in German, which writes both), or
    declines it ("putina", Polish for Putin's)."""
    as_term = _foreign_letters(term)
    if not as_term:
        return False
    as_word = _foreign_letters(token)
    if not as_word or _letters_key(term) == _letters_key(token) or _inflected(
            _letters_key(term), _letters_key(token)):
        return False
    return any(letter.isupper() and letter.lower() in as_word.lower() for letter in as_term)


# The letters European languages write one sound with, where English writes another: German and
# Dutch "Amerika", Spanish "Corea" and "Irak", Portuguese "Brasil". A language may write both its
# own name and the English one ("Bank of America" in German text), so a token only so spelt is
# the term's spelling in that language, however common.
_LETTERS = re.compile(r"ph|th|ck|qu|ou|c(?![eiy])|q|z|y")
_LETTERS_AS = {"ph": "f", "th": "t", "ck": "k", "qu": "k", "q": "k", "z": "s", "y": "i",
               "ou": "u"}  # French for a Slavic u: Poutine, Koursk, Oukraine


def _letter_as(m: re.Match[str]) -> str:
    return _LETTERS_AS.get(m[0], "k")


# Case endings (accents folded, as keys are) by which Polish declines a name its text also writes
# undeclined (Putina, Trumpa, Obamy, Waszyngtonu), and German, Dutch and Swedish make a genitive:
# common in those languages for the reason the term is. (French writes a mute e after a Russian
# name's final consonant: Poutine, Staline, Lénine.)
_CASE_ENDINGS = frozenset("a u y i e em ie owi om ach ami ow s es".split())  # noqa: SIM905
_VOWEL_ENDED = re.compile(r"[aeo]$")


def _inflected(term: str, token: str) -> bool:
    """Whether ``token`` is ``term`` declined: the term, or the term without a final a, e or o
    (Obama → Obamy), followed by one of :data:`_CASE_ENDINGS`."""
    if token.startswith(term) and token[len(term):] in _CASE_ENDINGS:
        return True
    stem = _VOWEL_ENDED.sub("", term)
    return stem != term and token.startswith(stem) and token[len(stem):] in _CASE_ENDINGS


def _letters_key(word: str) -> str:
    """``word`` with the letters of :data:`_LETTERS` read alike and doubled letters single."""
    return _DOUBLE.sub(_first_letter, _LETTERS.sub(_letter_as, word))


def _is_dictionary_word(word: str) -> bool:
    return word in _load_lexicon()[0]


_VOWELS = re.compile(r"[aeiouyj']")


def _consonants(word: str) -> str:
    return _VOWELS.sub("", word)


def compare(term: str, token: str, threshold: float, aliases: Aliases | None) -> Verdict | None:
    """Whether ``token`` (a key) matches the fuzzy term ``term`` (a key) at ``threshold``."""
    if term == token:
        return Verdict("exact", 100.0)
    if aliases is not None:
        if token in aliases.of(term):
            return Verdict("alias", 100.0)
        if token in aliases.distinct_from(term):
            return None
        if token in aliases.fuzzy_of(term):  # another language's name of a country
            return Verdict("alias", 100.0)
    if threshold <= TRANSLIT_SCORE and declined(
            token, aliases.declension_stems(term) if aliases is not None
            else stems_of((term,), known=False)):
        return Verdict("fuzzy", TRANSLIT_SCORE)
    return _compare_fuzzy(term, token, float(threshold))


# Case endings by which Slavic languages decline a name (keys, as the tokeniser folds them:
# accents off, й and ї as и and і), by the name's kind:
# - a name ending in a consonant takes them after it: Polish Kijowa, Kijowie, Kijowem,
#   Putinowi, Zagrzebiu; Czech Kyjeva, Kyjevě; Ukrainian Києва, Києві, Києвом, Путіним; Russian
#   Путина, Путиным;
# - one ending in a, in its place: Odesy, Odesie, Odesu, Одесі, Одесою, Москвы, Москвой
#   (and a locative's softened consonant: Pradze, Praze, Polsce; after a consonant, Bachmucie);
# - one declined as an adjective (Zelensky, Navalny), in place of its -y, -yi, -ий: Zelenského,
#   Zełenskiego, Зеленського, Navalnogo, Zelenskog; never a bare vowel nor -ой (Zelenska,
#   Navalna, Зеленской are his wife's).
# A name ending in another vowel is not declined here: Madura (an island) is not Maduro's.
def _endings(text: str) -> frozenset[str]:
    # As keys spell them: й as и (Москвой is "москвои").
    return frozenset(word_key(e) if e.isalpha() else e for e in text.split())


_ENDINGS_AFTER_CONSONANT: Final = _endings(
    "a u e y i em om ie iem iu owi ou ovi а у і е и ом ем ою ым им")
_ENDINGS_FOR_A: Final = _endings(
    "y i e ie u ou ach ami і и у е ю ою ею єю ой ей ы")
_ENDINGS_FOR_ADJECTIVE: Final = _endings(
    "ego iego eho emu iemu ym im ogo omu og om ого его ому ему им ым ім")
# Hungarian and Finnish suffixes, after the whole name whatever its last letter (Kijevben,
# Kijevvel, Moszkvában, Kiovassa, Kiovasta), for the names an alias table lists only.
_ENDINGS_AGGLUTINATIVE: Final = _endings(
    "ban ben bol rol tol nal nel val vel hoz hez ssa sta lla lle lta")
DECLENSION_ENDINGS: Final = (_ENDINGS_AFTER_CONSONANT | _ENDINGS_FOR_A | _ENDINGS_FOR_ADJECTIVE
                             | _ENDINGS_AGGLUTINATIVE)
LONGEST_ENDING: Final = max(map(len, DECLENSION_ENDINGS))
# A stem shorter than this, with an ending, makes other words too readily.
STEM_LETTERS: Final = 4
# Letters Ukrainian and Russian spellings of one name trade (Київ, Києва, Киев): read alike.
_STEM_TABLE = str.maketrans({"є": "е", "ё": "е", "ї": "и", "і": "и", "ы": "и", "й": "и",
                             "ь": None, "ъ": None})
_ADJECTIVE = re.compile(r"(?:sk|ck|n|ськ|ск|цьк|цк|н)(?:y|i|yi|yy|iy|ij|yj|ii|ии|ыи|и)$")
_NAME_VOWELS = re.compile(r"[aeiouyjаеиоуыэюяіїєё]+$")
_CONSONANT_END = re.compile(r"[^aeiouyаеиоуыэюяіїєё]$")
_A_END = re.compile(r"[aая]$")

Stems = Mapping[str, frozenset[str]]  # stem (read by _stem_key) -> the endings it takes


def _stem_key(stem: str) -> str:
    return stem.translate(_STEM_TABLE)


def stem_key(word: str) -> str:
    """``word`` read as stems are (see :func:`stems_of`): a token declined from a stem ``s``
    has a stem key that starts with ``s`` and is at most :data:`LONGEST_ENDING` longer (an
    ending keeps its length), which a sorted list of them finds by bisection."""
    return word if word.isascii() else word.translate(_STEM_TABLE)


def stems_of(names: Iterable[str], *, known: bool = True) -> dict[str, frozenset[str]]:
    """The stems (read by :func:`_stem_key`) that ``names`` (keys) are declined from, of
    :data:`STEM_LETTERS` letters or more, each with the endings it takes (see
    :data:`DECLENSION_ENDINGS`). Names no alias table knows (not ``known``: no place or person
    the shipped tables or a config's ``[aliases]`` list) take no ending of one letter: a given
    name and another with an a or u more are often two names (Oleksandr, Oleksandra; Adam,
    Adamu). Save the Polish genitive -y in place of a name's final a (Obamy, Kuleby): no given
    name is another with its a made y, as Oleksandra is Oleksandr's."""
    out: dict[str, frozenset[str]] = {}

    def add(stem: str, endings: frozenset[str]) -> None:
        stem = _stem_key(stem)
        if not known:
            endings = frozenset(e for e in endings if len(e) > 1 or (
                e in _UNKNOWN_A_ENDINGS and endings is _ENDINGS_FOR_A))
        if len(stem) >= STEM_LETTERS and endings:
            out[stem] = out.get(stem, frozenset()) | endings

    for name in names:
        if _ADJECTIVE.search(name):
            add(_NAME_VOWELS.sub("", name), _ENDINGS_FOR_ADJECTIVE)
        elif _A_END.search(name):
            add(name[:-1], _ENDINGS_FOR_A)
            if known and (softened := _softened(name[:-1], _A_SOFTENED)):
                add(softened, _LOCATIVE_E)
        elif _CONSONANT_END.search(name):
            add(name, _ENDINGS_AFTER_CONSONANT)
            if known and (softened := _softened(name, _CONSONANT_SOFTENED)):
                add(softened, _LOCATIVE_IE)
        if known:
            add(name, _ENDINGS_AGGLUTINATIVE)
    return out


# The consonant a Polish or Czech locative softens before its e (Praga → Pradze, Ryga → Rydze,
# Praha → Praze, Polska → Polsce; Bachmut → Bachmucie, Nowogród → Nowogrodzie), for the names
# an alias table lists.
_A_SOFTENED: Final = (("g", "dz"), ("h", "z"), ("k", "c"))
# The one-letter ending a name no table knows still takes in place of its final a (see
# :func:`stems_of`): e, i and u would make other given names (Marie, Julie; Paulu).
_UNKNOWN_A_ENDINGS: Final = frozenset({"y"})
_CONSONANT_SOFTENED: Final = (("t", "c"), ("d", "dz"))
_LOCATIVE_E: Final = frozenset({"e"})
_LOCATIVE_IE: Final = frozenset({"ie"})


def _softened(stem: str, table: tuple[tuple[str, str], ...]) -> str | None:
    for last, soft in table:
        if stem.endswith(last):
            return stem[: -len(last)] + soft
    return None


def declined(token: str, stems: Stems) -> bool:
    """Whether ``token`` (a key) is one of ``stems`` (see :func:`stems_of`) followed by an
    ending it takes, and no word or name in its own right."""
    if not stems:
        return False
    for n in range(1, min(LONGEST_ENDING, len(token) - STEM_LETTERS) + 1):
        ending = token[-n:]
        if ending in DECLENSION_ENDINGS:
            takes = stems.get(_stem_key(token[:-n]))
            if takes is not None and ending in takes:
                return not is_known_word(token) and _zipf(token) < ZIPF_FLOOR
    return False


def token_stems(token: str) -> Iterable[str]:
    """The stems ``token`` may be declined from (each ending it may have taken off, read by
    :func:`_stem_key`): what a candidate index looks a token up by."""
    for n in range(1, min(LONGEST_ENDING, len(token) - STEM_LETTERS) + 1):
        if token[-n:] in DECLENSION_ENDINGS:
            yield _stem_key(token[:-n])


@lru_cache(maxsize=500_000)
def _compare_fuzzy(term: str, token: str, threshold: float) -> Verdict | None:
    # A pair a candidate index cannot find is refused here too, so that the naive and the
    # indexed matcher agree; being cheap, the check also turns most unrelated pairs away first.
    if not _findable(term, token, threshold):
        return None
    return _judge(term, token, threshold)


def _judge(term: str, token: str, threshold: float) -> Verdict | None:
    if _has_letter(term) != _has_letter(token):
        # A number is no spelling of a name, nor a name of a number: "14,000" for w1400~.
        return None
    short = len(term) < MIN_TYPO_LETTERS
    # In a word this short, a consonant more or less makes another word (nato/natto); spellings
    # of one name differ in vowels and glides (Kyiv/Kiew/Kijów).
    if short and len(_consonants(term)) != len(_consonants(token.translate(_CYR_TABLE))):
        return None
    # The term is read as its author wrote it; the text's token in any spelling system.
    if _strict(term.translate(_CYR_TABLE).replace("ł", "l")) in readings(token):
        if threshold > TRANSLIT_SCORE or _is_dictionary_word(token):
            return None
        if is_common_word(term) and is_common_word(token):
            return None
        return Verdict("fuzzy", TRANSLIT_SCORE)
    if is_known_word(token) and not _rare_misspelt(term, token):
        return None
    if _zipf(token) >= ZIPF_FLOOR and not _misspelt(term, token):
        # A word English text uses in its own right, however rarely (Henan for china~,
        # Disraeli for israel~, Assyria for syria~, Odisha for odesa~): past the spellings
        # above, a fuzzy term takes typos and unknown spellings, not other words. A common
        # misspelling is in the word lists too ("goverment"): one edit from a far commoner
        # term, it is still taken for a typo.
        return None
    l_term, l_token = _loose(term), _loose(token)
    if not l_term.isdisjoint(l_token):
        return Verdict("fuzzy", TRANSLIT_SCORE) if threshold <= TRANSLIT_SCORE else None
    if short and not is_transposition(term, token):
        return None
    if FOREIGN_WORD_GUARD and is_foreign_word(term, token):
        return None
    score = typo_similarity(term, token, loose_key(term), loose_key(token))
    if not short:
        score = max(score, max(similarity(a, b) for a in l_term for b in l_token))
    if score >= threshold:
        return Verdict("fuzzy", round(score, 2))
    return None


def _has_letter(key: str) -> bool:
    return not key.isdigit() and any(c.isalpha() for c in key)


# How much commoner (in zipf, a factor of ten each) a term must be than a listed word one edit
# from it, for that word to be taken for its misspelling.
MISSPELT_ZIPF_GAP = 1.5


def _rare_misspelt(term: str, token: str) -> bool:
    """Whether a token that the lexicon knows but English text hardly uses (below
    :data:`ZIPF_FLOOR`) reads as a slip of a common term: "Isreal" (a family name) for Israel.
    Only two neighbouring letters swapped, the commonest slip: a rare name one letter added,
    dropped or changed is as often a place or name of its own (Putian for putin, Erlin for
    berlin, Russas for russia) as a typo."""
    return (_zipf(token) < ZIPF_FLOOR and not is_common_word(token)
            and _zipf(term) >= ZIPF_FLOOR + MISSPELT_ZIPF_GAP
            and is_transposition(term, token))


def _misspelt(term: str, token: str) -> bool:
    """Whether ``token`` reads as a misspelling of ``term``: one letter left out, added,
    changed or swapped with the next, and ``term`` far commoner."""
    if _zipf(term) - _zipf(token) < MISSPELT_ZIPF_GAP:
        return False
    if is_transposition(term, token):
        return True
    short, long = sorted((term, token), key=len)
    if len(long) - len(short) > 1:
        return False
    if len(long) == len(short):
        return sum(a != b for a, b in zip(term, token, strict=True)) == 1
    return any(long[:i] + long[i + 1:] == short for i in range(len(long)))


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
# No common English word is longer (the frequency table's longest word is 20 letters): a longer
# key is not two of them written together. Every cut of a 20,000-letter word of a query was
# tried, each half looked up, 3 s the first time it was matched.
SPLIT_MAX_LETTERS = 40
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

    if not key.isalpha() or not 2 * SPLIT_MIN_LETTERS <= len(key) <= 2 * SPLIT_MAX_LETTERS:
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
    """Groups of keys that name the same thing; symmetric and transitive.

    ``variants``: further groups that only fuzzy terms take (a country's names in other
    languages: ``iraq~`` finds "Irak", plain ``iraq`` does not), merged with the groups above
    for them (see :meth:`fuzzy_of`)."""

    def __init__(
        self,
        table: Mapping[str, Sequence[str]] | None = None,
        distinct: Mapping[str, Sequence[str]] | None = None,
        variants: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._group: dict[str, frozenset[str]] = {}
        self._distinct: dict[str, frozenset[str]] = {}
        self._variants: list[frozenset[str]] = []
        # Tables of variants added but not read yet (the shipped ones: a short command whose
        # query has no fuzzy term never reads their 30,000 names).
        self._pending: list[Callable[[], Mapping[str, Sequence[str]]]] = []
        # The same tables as text searched a word at a time, while few words have been asked
        # for (see VariantLines); None once they are read whole.
        self._lines: _LazyLines | None = None
        self._variant_of: dict[str, list[int]] | None = None  # key → its variant groups
        self._fuzzy: dict[str, frozenset[str]] = {}  # fuzzy_of's answers
        self._stems: dict[str, Stems] = {}  # declension_stems' answers
        self._refused: dict[str, frozenset[str]] = {}  # distinct_from's answers
        if table:
            self.update(table)
        if distinct:
            self.add_distinct(distinct)
        if variants:
            self.add_variants(variants)

    def add_variants(self, table: Mapping[str, Sequence[str]], *, keyed: bool = False) -> None:
        """Add groups that fuzzy terms take as one word (and plain words do not). ``keyed``:
        the table's words are match keys already (the shipped tables, built with
        :func:`~watchers.rules.text.key`), so they are not folded again."""
        self._take_pending()
        self._add_variants(table, keyed=keyed)

    def add_variants_later(self, load: Callable[[], Mapping[str, Sequence[str]]], *,
                           lines: Callable[[], VariantLines] | None = None) -> None:
        """Add the variant groups ``load()`` returns (keyed, as the shipped tables are) when
        they are first needed: by a fuzzy term, or to compare two tables. ``lines``: the same
        groups as text, one a line (:class:`VariantLines`), which the first fuzzy terms search
        instead of reading every group (only one such table at a time)."""
        self._pending.append(load)
        if lines is not None and self._lines is None and len(self._pending) == 1:
            self._lines = _LazyLines(lines)
        else:
            self._lines = None  # another table too: read them all when needed
        self._variant_of = None
        self._fuzzy = {}
        self._stems = {}

    def _take_pending(self) -> None:
        self._lines = None
        while self._pending:
            self._add_variants(self._pending.pop(0)(), keyed=True)

    def _add_variants(self, table: Mapping[str, Sequence[str]], *, keyed: bool) -> None:
        fold = (lambda w: w) if keyed else _alias_key
        for head, others in table.items():
            if isinstance(others, str):
                others = [others]
            self._variants.append(frozenset({fold(head), *map(fold, others)}))
        self._variant_of = None
        self._fuzzy = {}
        self._stems = {}

    def fuzzy_of(self, key: str) -> frozenset[str]:
        """The keys a fuzzy term ``key`` takes as itself: its group (:meth:`of`) joined with
        its variant groups, transitively; empty if it has none.

        Worked out for each key on first use: the shipped tables hold some 30,000 names, and
        joining them all would cost every process that starts tens of milliseconds."""
        fuzzy = self._fuzzy
        found = fuzzy.get(key)
        if found is not None:
            return found
        lines = self._lines
        if lines is not None and lines.searches >= LINE_SEARCHES:
            lines = None  # enough words asked for: joining every group now costs less
            self._take_pending()
        variant_of = self._variant_of
        if variant_of is None:
            if lines is None:
                self._take_pending()
            variant_of = {}
            for i, keys in enumerate(self._variants):
                for k in keys:
                    variant_of.setdefault(k, []).append(i)
            self._variant_of = variant_of
        seen = {key}
        todo = [key]
        known = key in self._group or key in variant_of
        while todo:
            k = todo.pop()
            more = set(self._group.get(k, ()))
            for i in variant_of.get(k, ()):
                more |= self._variants[i]
            if lines is not None:
                for group in lines.get().groups_with(k):
                    more |= group
                    known = True
            more -= seen
            seen |= more
            todo += more
        found = frozenset(seen) if known else frozenset()
        fuzzy[key] = found
        return found

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
        self._refused = {}

    def distinct_from(self, key: str) -> frozenset[str]:
        """Keys that fuzzy matching must never take for ``key`` (Zelenska is not Zelensky).

        The table lists a name under one spelling, but it holds for all of them: ``zelenskyy~``
        refuses Zelenska as ``zelensky~`` does, and ``zelenska~`` refuses Zelenskyy too. So the
        names kept apart from any key of ``key``'s group are refused, with their own groups."""
        answers = self._refused  # the dict in hand: an update replaces it
        found = answers.get(key)
        if found is None:
            refused: set[str] = set()
            for k in self._group.get(key, (key,)):
                for other in self._distinct.get(k, ()):
                    refused |= self._group.get(other, {other})
            found = answers[key] = frozenset(refused)
        return found

    def declension_stems(self, key: str) -> Stems:
        """The stems a fuzzy term ``key`` takes declined, with their endings (see
        :func:`declined`): of itself and of every name :meth:`fuzzy_of` gives ("known" when it
        has any: the shipped tables or a config's ``[aliases]`` list it). Worked out for each
        key on first use; an Aliases is not to change once a rule set or a vocabulary reads it
        (their candidate indexes keep what it said)."""
        stems = self._stems  # the dict in hand: an update replaces it
        found = stems.get(key)
        if found is None:
            names = self.fuzzy_of(key)
            found = stems[key] = stems_of(sorted({key, *names}), known=bool(names))
        return found

    def update(self, table: Mapping[str, Sequence[str]]) -> None:
        for head, others in table.items():
            if isinstance(others, str):
                others = [others]
            _join(self._group, {_alias_key(head), *(_alias_key(o) for o in others)})
        self._fuzzy = {}
        self._stems = {}
        self._refused = {}

    def of(self, key: str) -> frozenset[str]:
        """The keys in ``key``'s group, itself included; empty if it has none."""
        return self._group.get(key, frozenset())

    def groups(self) -> Iterable[frozenset[str]]:
        return set(self._group.values())

    def __len__(self) -> int:
        return len({id(g) for g in self._group.values()})

    def __eq__(self, other: object) -> bool:
        self._take_pending()
        if isinstance(other, Aliases):
            other._take_pending()
        return (
            isinstance(other, Aliases)
            and self._group == other._group
            and self._distinct == other._distinct
            and set(self._variants) == set(other._variants)
        )

    def __hash__(self) -> int:
        self._take_pending()
        return hash((frozenset(self._group.items()), frozenset(self._distinct.items()),
                     frozenset(self._variants)))

    def __repr__(self) -> str:
        return f"Aliases({len(self)} groups)"


def _join(groups: dict[str, frozenset[str]], keys: Iterable[str]) -> None:
    """Make ``keys`` one group in ``groups`` (key → its group), with every group one of them
    was in already: groups stay symmetric and transitive."""
    merged: set[str] = set(keys)
    for k in list(merged):
        merged |= groups.get(k, frozenset())
    group = frozenset(merged)
    for k in group:
        groups[k] = group


def _alias_key(word: str) -> str:
    k = word_key(word.strip())
    if not k or " " in word.strip():
        raise ValueError(f"an alias must be a single word, not {word!r}")
    return k


@lru_cache(maxsize=1)
def _shipped_tables() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(aliases, distinct): ``data/aliases.toml``."""
    data = resources.files(__package__).joinpath("data")
    table = tomllib.loads(data.joinpath("aliases.toml").read_text("utf-8"))
    return table["aliases"], table.get("distinct", {})


# A process's first fuzzy terms search the shipped tables' text for their words (a term and
# the names it takes: `kyiv~` 48 searches, `donbas~` one); past this many searches, about as
# long as reading and joining every group once (0.5 ms each against some 100 ms), it does that,
# and later terms look their words up in a dict. A few terms cost a fifth of the reading; many
# at most twice it, once.
LINE_SEARCHES: Final = 200

# A group's line in the shipped tables: ``"head": ["name", ...],`` (JSON) or ``"head" =
# ["name", ...]`` (TOML), as bench/build_exonyms.py writes them, one group a line.
_GROUP_LINE: Final = re.compile(r'"[^"\\\n]+"\s*[:=]\s*\[')
_QUOTED: Final = re.compile(r'"([^"\\\n]*)"')


class VariantLines:
    """Variant tables kept as their text, one group a line (the shipped ``exonyms.toml`` and
    ``cities.json``, keyed words, no escapes in them): the groups a word is in are the group
    lines holding it quoted, found with ``str.find``. A short command's fuzzy term then costs
    a millisecond rather than reading and joining 30,000 names (see :data:`LINE_SEARCHES`).
    ``tests/rules/test_city_names.py`` checks that every line of the shipped files is read
    here as the loaders read it."""

    def __init__(self, texts: Sequence[str]) -> None:
        self._texts = tuple(texts)
        self._parsed: dict[tuple[int, int], frozenset[str] | None] = {}
        self.searches = 0  # words looked for

    @staticmethod
    def group(line: str) -> frozenset[str] | None:
        """The words of a group line (its head and names), None for any other line."""
        if not _GROUP_LINE.match(line):
            return None
        return frozenset(_QUOTED.findall(line))

    def groups_with(self, key: str) -> list[frozenset[str]]:
        """Every group holding ``key``."""
        self.searches += 1
        needle = f'"{key}"'
        found: list[frozenset[str]] = []
        for t, text in enumerate(self._texts):
            at = text.find(needle)
            while at != -1:
                start = text.rfind("\n", 0, at) + 1
                end = text.find("\n", at)
                end = len(text) if end == -1 else end
                group = self._parsed.get((t, start), ...)
                if group is ...:
                    group = self._parsed[(t, start)] = self.group(text[start:end])
                if group is not None and key in group:
                    found.append(group)
                at = text.find(needle, end)
        return found


class _LazyLines:
    """A VariantLines made on first use (reading the files only for a fuzzy term)."""

    def __init__(self, make: Callable[[], VariantLines]) -> None:
        self._make = make
        self._lines: VariantLines | None = None

    @property
    def searches(self) -> int:
        return 0 if self._lines is None else self._lines.searches

    def get(self) -> VariantLines:
        if self._lines is None:
            self._lines = self._make()
        return self._lines


def _variant_files() -> tuple[str, str]:
    data = resources.files(__package__).joinpath("data")
    return (data.joinpath("exonyms.toml").read_text("utf-8"),
            data.joinpath("cities.json").read_text("utf-8"))


@lru_cache(maxsize=1)
def _shipped_lines() -> VariantLines:
    """The shipped variant tables as text (:class:`VariantLines`)."""
    return VariantLines(_variant_files())


@lru_cache(maxsize=1)
def _shipped_variants() -> dict[str, list[str]]:
    """For fuzzy terms, the countries' and cities' names in other languages,
    ``data/exonyms.toml`` and ``data/cities.json`` (built by bench/build_exonyms.py)."""
    exonyms_text, cities_text = _variant_files()
    variants: dict[str, list[str]] = {}
    exonyms = tomllib.loads(exonyms_text)["aliases"]
    cities = json.loads(cities_text)["aliases"]
    for table_of in (exonyms, cities):
        for head, others in table_of.items():
            variants.setdefault(head, []).extend(others)
    return variants


def shipped_aliases(extra: Mapping[str, Sequence[str]] | None = None) -> Aliases:
    """The shipped alias table, extended by ``extra`` (e.g. a config's ``[aliases]``).

    Tables are built once per distinct ``extra``: a caller may pass the same config on every
    call. The result is shared, so treat it as read-only.
    """
    if not extra:
        return _shipped_default()
    if not isinstance(extra, Mapping):
        raise TypeError(f"aliases: a mapping of a name to its other names, not "
                        f"{type(extra).__name__}")
    pairs = [(k, (v,) if isinstance(v, str) else tuple(v)) for k, v in extra.items()]
    for k, names in pairs:
        if not isinstance(k, str) or not all(isinstance(n, str) for n in names):
            raise TypeError(f"aliases: {k!r}: a name and its other names are str")
    sig = tuple(sorted(pairs))
    return _extended(sig)


@lru_cache(maxsize=64)
def _extended(sig: tuple[tuple[str, tuple[str, ...]], ...]) -> Aliases:
    table, distinct = _shipped_tables()
    aliases = Aliases(table, distinct)
    aliases.add_variants_later(_shipped_variants, lines=_shipped_lines)
    aliases.update(dict(sig))
    return aliases


@lru_cache(maxsize=1)
def _shipped_default() -> Aliases:
    table, distinct = _shipped_tables()
    aliases = Aliases(table, distinct)
    aliases.add_variants_later(_shipped_variants, lines=_shipped_lines)
    return aliases
