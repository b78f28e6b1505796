"""Normalising and tokenising text, shared by queries and articles so both sides fold alike.

A word's *key* is what matching compares: accents stripped, case folded, apostrophes and hyphens
removed, a possessive ``'s`` dropped and an English plural folded (``Russia's`` → ``russia``,
``cyber-attacks`` → ``cyberattack``, ``troops`` → ``troop``). Its *norm* is the same without
the plural fold, which prefix terms use so that ``mobili*`` sees the word as written.

A hyphenated word yields the compound and its parts, so both ``cyberattack`` and ``attack`` find
``cyber-attack`` and ``russia`` finds ``Russia-Ukraine``. The compound shares its first part's
position; positions count words, which is what phrases and NEAR measure.

:class:`FieldText` holds a field's tokens as parallel lists (key, norm, start, end, position,
last position) plus an index from key to token numbers: matching reads those, and builds a
:class:`Token` only for the words it reports. It equals what :func:`tokenize` returns, token for
token; its lists are filled by C-level passes (split, accumulate, map over the folding cache),
its norms only when read, and its key index finds token numbers only when a rule asks (from
each key's first and last token number, and C-level list scans between them), since tokenising
is a large part of the cost of matching.

Words are found by one C pass when the optional extension ``watchers.rules._ctext`` is built
(``setup.py``), else by the pure path (``_SPLIT_RE``); both give the same FieldText for every
string, and the regex path is the spec where they could differ. The C pass finds word spans, reads
the folding cache and lays out the token lists (compounds and their parts, positions, norms):
folding itself stays here. Setting the environment variable
``NEWSWATCH_PURE`` to anything but empty or ``0`` before this module is first imported forces
the pure path (tests and benchmarks compare the two); it is read once.
"""

from __future__ import annotations

import importlib
import os
import re
import unicodedata
from collections.abc import Callable, Iterator, KeysView, Mapping, Sequence
from itertools import accumulate, compress
from operator import itemgetter
from typing import NamedTuple, overload

from ..models import BIDI_REORDERING as _BIDI_REORDERING
from ._marks import MARK_RANGES

__all__ = [
    "BIDI_CONTROLS",
    "BIDI_REORDERING",
    "KEYS_VERSION",
    "FieldText",
    "Token",
    "fold_plural",
    "key",
    "norm",
    "query_words",
    "tokenize",
    "untrack",
]

#: The characters that change the direction text is shown in (embeddings and overrides
#: U+202A-U+202E, isolates U+2066-U+2069, the marks U+200E, U+200F and U+061C): invisible, they
#: make a name or query read otherwise than it is (``\u202etroops`` shows as ``spoort``). The
#: URL guard refuses every format character; these are the ones a name, id or query has no use
#: for (a zero-width joiner or non-joiner belongs inside some words and emoji).
BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
#: Of those, the ones that reorder a whole run of text (:data:`watchers.models.BIDI_REORDERING`,
#: kept there for the modules that may not import the rule language).
BIDI_REORDERING = _BIDI_REORDERING

#: The version of the word keys: raise it with any change that alters some word's key or a
#: text's tokens, or what ``watchers.rules.lookup.places_of`` makes of a text (SQLite's places
#: index forgets a changed article's row by giving its places again, computed anew: they must be
#: what was written). Stores record the version their lookup indexes were built with and rebuild
#: them when it differs (see ``watchers.store.sqlite.schema.rekey``). 1: the keys before
#: versions were recorded; 2: elisions and Turkish suffixes part words, ł ı ø đ ð þ æ œ ħ fold
#: to ASCII, U+02BC is an apostrophe, Arabic and Hebrew vowel marks and the tatweel stay in
#: words, out of keys; 3: underscores at a word's edges are no part of it (_Russian_ → russian,
#: __NATO__ → nato); 4: U+02BB (the ʻokina of Hawaiʻi, the Uzbek Latin Oʻzbekiston) is an
#: apostrophe as U+02BC is; 5: every combining mark stays in its word (Hindi, Thai …), and only
#: accents leave keys (not vowel signs, viramas or the kana voicing marks: パリ is not バリ); Hangul
#: keys are syllables; the Hebrew geresh is an apostrophe; Persian yeh and keheh are Arabic yeh
#: and kaf; a Latin word or number written against Han, kana or Hangul (NATO首脳会議, 2024年) is a
#: part of its own; 6: a field's other words in the places index hold its number marks
#: (``watchers.rules.lookup.MARK``: what follows a digit and whitespace, for ``/\d+ killed/``);
#: 7: a stored title and text are indexed as reading gives them (a row stored before articles
#: were made readable kept a soft hyphen: "Pu\u00adtin" was the words "pu tin"), which stores a
#: version-6 writer rebuilt from the raw columns need again.
KEYS_VERSION = 7

# A word: letters and digits joined by apostrophes or hyphens, a number with separators
# (100,000, 1.5) or a dotted acronym (U.S.). Underscores join letters and digits (snake_case)
# but are no part of a word at its edges: Markdown writes emphasis with them (_Russian_,
# __NATO__), and a word must be found inside it as it is inside *Kyiv*. Texts with combining
# marks (decomposed accents) use a slower variant that keeps them inside words; most text is
# composed, so the fast one serves.
_APOS = "'\u2019\u2018`\u05f3"  # the last: the Hebrew geresh (ג׳נין is Jenin, as ג'נין)
_DASH = "\\-\u2010\u2011\u2013"
# A letter or digit: \w without the underscore.
_ALNUM = r"[^\W_]"


def _word_pattern(a: str) -> str:
    # ``a``: a character a word may hold and end with; a run of them begins with a letter or
    # digit (a mark continues a word, never starts one: an emoji's variation selector or keycap
    # before "NATO" was glued to it, and the highlight cut the emoji in two). Each look-behind
    # comes after the literal it guards: most word ends are followed by neither a dot nor a
    # comma, and the literal test fails faster than the look-behind.
    run = rf"{_ALNUM}{a}*(?:_+{_ALNUM}{a}*)*"
    return (
        rf"{run}(?:(?:[{_APOS}{_DASH}]|[.,](?<=\d[.,])(?=\d)){run})*"
        rf"(?:\.(?<=(?<!{_ALNUM}){_ALNUM}\.)(?:{_ALNUM}\.)+)?"
    )


# The marks a word may hold that are not \w: every combining mark (Unicode's category M, see
# _marks.py): accents of decomposed text, Hebrew points, Arabic vowel signs, and the vowel
# signs and viramas of Indic and Southeast Asian scripts, without which "मोदी" would be the words
# "म" and "द". They never part a word; accents leave its key (see _strip_accents_general).
# (Two classes: one of code points past U+FFFF makes a class several times slower to test on
# every character, and most text has none.)
_MARKS_BMP = "".join(f"\\u{a:04x}-\\u{b:04x}" for a, b in MARK_RANGES if b <= 0xFFFF)
_MARKS_ASTRAL = "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in MARK_RANGES if b > 0xFFFF)
_MARKS = rf"(?:[{_MARKS_BMP}]|[{_MARKS_ASTRAL}])"
_WORD_RE = re.compile(_word_pattern(_ALNUM))
_WORD_RE_MARKS = re.compile(_word_pattern(rf"(?:{_ALNUM}|{_MARKS})"))
# The same words, captured, so ``split`` returns the gaps and the words in turn.
_SPLIT_RE = re.compile("(" + _word_pattern(_ALNUM) + ")")
_SPLIT_RE_MARKS = re.compile("(" + _word_pattern(rf"(?:{_ALNUM}|{_MARKS})") + ")")
# Whether a text may hold a mark, so that its words are found by the variant that keeps them:
# a mark of the first plane, or any code point past it (a superset, as the C scan's: a text
# without marks splits alike either way, and this class is tested fast).
_COMBINING = re.compile(f"[{_MARKS_BMP}\U00010000-\U0010ffff]")
_MARK = re.compile(_MARKS)
_HYPHENS = re.compile(f"[{_DASH}]")
# Apostrophes as keys fold them: the word pattern's, U+02BC (the modifier letter apostrophe
# Ukrainian writes, "мʼясо") and U+02BB (the turned comma: Hawaiian's ʻokina, "Hawaiʻi", and
# Uzbek's, "Oʻzbekiston"), which are \w and so already inside words.
_APOS_FOLD = _APOS + "\u02bc\u02bb"
_APOSTROPHES = re.compile(f"[{_APOS_FOLD}]")
# The same characters as sets: whether a word holds one is a set operation in C, faster than
# a search (str.translate, with a dict for a table, is slower than the substitutions).
_APOS_SET = frozenset(_APOS_FOLD)
_DASH_SET = frozenset("-\u2010\u2011\u2013")  # _DASH's characters

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
    # Only a word that ends as the pattern does can match it ("$" also before a last "\n").
    if "is" not in word or not word.rstrip("\n").endswith(_ISE_ENDS):
        return word
    return _ISE.sub(r"\1iz\2", word)


_ISE_ENDS = tuple("is" + end for end in
                  ("e", "ed", "es", "ing", "ation", "ations", "er", "ers"))


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
    if text.isascii():
        # Most words that come here (hyphens, apostrophes, dots): NFKD leaves ASCII as it is,
        # none of it is a combining mark, and casefold() is lower() on it.
        return text.lower()
    return _strip_accents_general(text)


# Letters that Unicode does not decompose into a base letter and a mark, folded as their
# languages' own ASCII spellings do (Wałęsa → walesa, Łódź → lodz, København → kobenhavn,
# Kılıçdaroğlu → kilicdaroglu, cœur → coeur, Þór → thor); ß is casefold's (ss). Đ/đ (Serbian,
# Croatian, Vietnamese) is d, as diacritics are dropped there (Điện Biên → dien bien):
# "Đoković" is found by ``dokovic`` (and by ``djokovic~``), not by ``djokovic``. The Arabic
# tatweel (a stretch of the line between letters, \w) is dropped.
# Persian's yeh and keheh (ی, ک) are the Arabic yeh and kaf (ي, ك) in other shapes, and each
# language writes the same names with its own (ایران / ايران, کابل / كابل).
_LETTERS = str.maketrans({
    "ł": "l", "ı": "i", "ø": "o", "đ": "d", "ð": "d", "þ": "th", "æ": "ae", "œ": "oe",
    "ħ": "h", "ŧ": "t", "\u0640": None, "\u06cc": "\u064a", "\u06a9": "\u0643",
})

# The marks a key drops: accents. The combining marks of the scripts before U+0780 (Latin's,
# Greek's and Cyrillic's accents as decomposition leaves them, Hebrew points, Arabic and Syriac
# vowel signs) and of Arabic's extended blocks, the blocks of combining diacritics (with the
# grapheme joiner U+034F), and the variation selectors. Other scripts' marks are part of their
# letters and stay: Devanagari's vowel signs and virama, Thai's vowels and tones, the kana voicing
# marks (パ, バ and ハ are three syllables).
_ACCENT_CHARS = "".join(
    chr(cp) for cp in [*range(0x300, 0x780), *range(0x898, 0x900)]
    if unicodedata.combining(chr(cp)) or cp <= 0x36F)
_ACCENTS = re.compile(
    f"[{_ACCENT_CHARS}\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe00-\ufe0f\ufe20-\ufe2f"
    "\U000e0100-\U000e01ef]")


def _strip_accents_general(text: str) -> str:
    folded = _ACCENTS.sub("", unicodedata.normalize("NFKD", text)).casefold().translate(_LETTERS)
    # Composed again where anything is left to compose: Hangul syllables (decomposed, a prefix
    # would compare letters inside them, 가자* finding 가장), kana with their voicing marks.
    return folded if folded.isascii() else unicodedata.normalize("NFC", folded)


# Where an apostrophe parts a word in two words of its own (see _split_at): the elided forms of
# French, Italian and Catalan articles, pronouns, prepositions and conjunctions, before a word
# that starts with a vowel or h (l'Ukraine, d'Israël, qu'il, jusqu'à, dell'Ucraina, un'altra) ...
_ELIDED = frozenset(
    """
    l d j m n s t c v qu jusqu lorsqu puisqu quoiqu presqu quelqu
    dell dall nell sull all coll pell quell quest un nessun anch com dov bell sant tutt mezz
    """.split()  # noqa: SIM905
)
_ELISION_NEXT = frozenset("aeiouyh")
# ... and the Turkish case and possessive suffixes written after an apostrophe on a name
# (İstanbul'da, Erdoğan'ın, Türkiye'nin, NATO'ya, Ankara'dan), folded (ı → i, ü → u).
# English contractions end in none of them (n't, 'll, 're, 've, 'd, 'm; 's is the possessive).
_SUFFIXES = frozenset(
    """
    i u yi yu in un nin nun a e ya ye na ne da de ta te nda nde dan den tan ten ndan nden
    la le yla yle ile daki deki taki teki ndaki ndeki dir dur tir tur lar ler lari leri
    si su ca ce li lu
    """.split()  # noqa: SIM905
)


# Turkish writes a lone vowel suffix only after a consonant (after a vowel a buffer comes
# first: Ankara'ya, Türkiye'yi): after a vowel, an apostrophe and a vowel are a name's own
# (Shi'a, Hawai'i, Sana'a, Bahá'í, Vava'u), one word.
_LONE_VOWELS = frozenset("aeiu")
_VOWELS = frozenset("aeiouy")


def _split_at(piece: str) -> tuple[int, bool]:
    """Where an apostrophe in ``piece`` (a word or a hyphenated word's part) parts off a word
    findable alone, and whether that word is the tail: after an elided article or the like
    (``l’Ukraine``: the tail) or before a Turkish suffix (``İstanbul'da``: the head); -1 when
    none does (``don't``, ``O'Brien``, ``Hawai'i``)."""
    m = _APOSTROPHES.search(piece)
    if m is None:
        return -1, False
    i = m.start()
    head, tail = piece[:i], _APOSTROPHES.sub("", piece[i + 1:])
    if not head or not tail:
        return -1, False
    h, t = _strip_accents(head), _strip_accents(tail)
    if h in _ELIDED and t[:1] in _ELISION_NEXT:
        return i, True
    if len(h) >= 2 and t in _SUFFIXES and not (t in _LONE_VOWELS and h[-1] in _VOWELS):
        return i, False
    return -1, False


# A raw word folded: (norm, key, parts, odd). ``parts``: (norm, key, start, end) of each part
# within the word; ``odd``: not one plain token (a compound with parts, or no key at all).
# A plain tuple, not a named one: the folding cache holds hundreds of thousands, and the
# collector stops tracking a tuple of strings and such tuples (never an instance of a tuple
# subclass), so full collections do not walk the cache again and again.
_Folded = tuple[str, str, tuple[tuple[str, str, int, int], ...], bool]


_FOLDED: dict[str, _Folded] = {}
_FOLDED_LIMIT = 300_000

_PURE = os.environ.get("NEWSWATCH_PURE", "") not in ("", "0")
_Scan = Callable[
    [str, dict[str, _Folded], Callable[[str], _Folded]],
    tuple[list[_Folded], list[str], list[int], list[int], list[int]],
]
_Terms = Callable[[str, dict[str, _Folded], Callable[[str], _Folded], set[str]], None]
_TokenLists = tuple[
    list[_Folded], list[int], list[str], list[str], list[int], list[int],
    "list[int] | None", "list[int] | None",
]
_TokensFn = Callable[[str, dict[str, _Folded], Callable[[str], _Folded]], _TokenLists]
_scan: _Scan | None = None
_scan_terms: _Terms | None = None
_tokens: _TokensFn | None = None
_positions: Callable[[list[str]], dict[str, list[int]]] | None = None
# Empties the extension's table of folds read from _FOLDED, which must not outlive a clear.
_forget: Callable[[], None] | None = None
_untrack: Callable[..., None] | None = None
# Which (word, term) pairs of a fuzzy vocabulary reach a similarity (see _ctext.similar).
_pack_choices: Callable[[list[str]], bytes] | None = None
_similar: Callable[[list[str], bytes, float], list[tuple[int, int]]] | None = None
# variants.translit_key of an ASCII word (None for any other word).
_translit: Callable[[str], str | None] | None = None
# Many bytes literals found in one pass (see _ctext.find_literals; the regex screen's scan).
pack_literals: Callable[[list[bytes], list[bool]], bytes] | None = None
find_literals: Callable[[bytes, bytes, int], dict[int, list[int]]] | None = None
# The regex screen in one call (see _ctext.screen_literals): the patterns a text may match.
pack_screen: Callable[[int, list[list[list[int]]]], bytes] | None = None
_Screened = tuple[list[int], dict[int, list[int]]]
screen_literals: Callable[[bytes, bytes, bytes, int], _Screened] | None = None
# Where each run of whitespace after a digit ends (see _ctext.digit_gaps; the number marks).
digit_gaps: Callable[[str], list[int]] | None = None
if not _PURE:
    try:
        # By name: the import graph checks (import-linter) see no module file for an extension.
        _ctext = importlib.import_module("watchers.rules._ctext")
    except ImportError:  # not built (no compiler at install): the pure path gives the same tokens
        pass
    else:
        _scan = _ctext.scan
        # An extension built before terms() or tokens() was added still serves scan().
        _scan_terms = getattr(_ctext, "terms", None)
        _tokens = getattr(_ctext, "tokens", None)
        _positions = getattr(_ctext, "positions", None)
        _forget = getattr(_ctext, "forget", None)
        _untrack = getattr(_ctext, "untrack", None)
        _pack_choices = getattr(_ctext, "pack_choices", None)
        _similar = getattr(_ctext, "similar", None)
        _translit = getattr(_ctext, "translit", None)
        pack_literals = getattr(_ctext, "pack_literals", None)
        find_literals = getattr(_ctext, "find_literals", None)
        pack_screen = getattr(_ctext, "pack_screen", None)
        screen_literals = getattr(_ctext, "screen_literals", None)
        digit_gaps = getattr(_ctext, "digit_gaps", None)


# untrack(*objects): leave ``objects`` out of the cyclic garbage collector (with the C
# extension; without it, nothing). Only for objects that can never be part of a reference
# cycle: nothing they hold leads back to them (a set of strs, a tuple of such tuples, a list
# of untracked models). Reference counting still frees them.
#
# What for: a tracked object that outlives two young collections counts toward the next full
# collection, which walks the whole heap. A poll keeps each article's words, matches and story
# link until the poll is written, and a live story keeps its exemplars for the whole window:
# left tracked, a poll of thousands of articles set off full collections, each of which walked
# the heap, every article's word set included.
#
# It is the extension's function itself where there is one: a Python function around it cost
# a call of its own, several times an article.
def _untrack_nothing(*objects: object) -> None:
    """:data:`untrack` without the C extension: nothing is left out."""


untrack: Callable[..., None] = _untrack if _untrack is not None else _untrack_nothing


def _fold_word(raw: str) -> _Folded:
    """The folded forms of a raw word, cached: news repeats its words."""
    f = _FOLDED.get(raw)
    if f is None:
        if len(_FOLDED) >= _FOLDED_LIMIT:
            _FOLDED.clear()
            if _forget is not None:
                _forget()
        f = _FOLDED[raw] = _fold_uncached(raw)
    return f


def _fold_uncached(raw: str) -> _Folded:
    if raw.isascii() and raw.isalnum():
        # Most new words (names, numbers): no accent, apostrophe, hyphen or dot to handle, so
        # what the general path below computes is just this.
        lowered = raw.lower()
        k = fold_plural(fold_spelling(lowered))
        return (lowered, k, (), not k)
    return _fold_general(raw)


def _without_possessive(raw: str) -> str:
    """``raw`` without a possessive ``'s`` (an apostrophe of _APOS_FOLD and s) at its end, as
    the regular expression ``['’‘`ʼ]s$`` removes it: "$" also before a last line break, which
    stays."""
    end = len(raw) - 1 if raw.endswith("\n") else len(raw)
    if end >= 2 and raw[end - 1] == "s" and raw[end - 2] in _APOS_SET:
        return raw[:end - 2] + raw[end:]
    return raw


def _fold_general(raw: str) -> _Folded:
    # Offsets of the parts are computed on the raw word, so they stay valid for the original text
    # even when accent stripping changes lengths.
    base = _without_possessive(raw) if len(raw) > 2 else raw
    if base and base[-1] in _APOS:
        base = base[:-1]
    folded = _strip_accents(base)
    if "." in folded or "," in folded:
        # Acronyms and numbers: U.S. → us, 100,000 → 100000 (a decimal point is kept).
        joined = folded.replace(",", "") if folded[0].isdigit() else folded.replace(".", "")
        return (joined, joined, (), not joined)
    joined = _APOSTROPHES.sub("", _HYPHENS.sub("", folded))
    parts: list[tuple[str, str, int, int]] = []
    hyphened = not _DASH_SET.isdisjoint(base)
    # A Latin (or Cyrillic …) word or a number written against Han, kana or Hangul, as Chinese,
    # Japanese and Korean news write them (NATO首脳会議, G7サミット, 2024年の, NATO는): a part of
    # its own, as a hyphenated word's parts are, so ``nato`` finds it.
    scripts = not base.isascii() and _mixed_scripts(base)
    if hyphened or scripts or not _APOS_SET.isdisjoint(base):
        # The parts: a hyphenated word's pieces, and of a piece where an elision or a Turkish
        # suffix meets it at an apostrophe (see _split_at) the word itself, findable alone at
        # the piece's place (the article or the suffix is no word of its own: "sur ukraine"
        # is a phrase of "sur l'Ukraine", "istanbul patlama" of "İstanbul'da patlama").
        pieces: list[tuple[str, int]] = []
        pos = 0
        split = False
        for piece in _HYPHENS.split(base) if hyphened else (base,):
            cut, tail = _split_at(piece)
            if cut < 0:
                pieces.append((piece, pos))
            elif tail:
                pieces.append((piece[cut + 1:], pos + cut + 1))
                split = True
            else:
                pieces.append((piece[:cut], pos))
                split = True
            pos += len(piece) + 1
        if scripts:
            pieces = [run for piece, at in pieces for run in _script_runs(piece, at)]
        if len(pieces) > 1 or split:
            for piece, at in pieces:
                p_norm = _APOSTROPHES.sub("", _strip_accents(piece))
                if p_norm:
                    parts.append((p_norm, fold_plural(fold_spelling(p_norm)), at,
                                  at + len(piece)))
    key = fold_plural(fold_spelling(joined))
    return (joined, key, tuple(parts), bool(parts) or not key)


# Han (with its iteration marks and radicals), kana, bopomofo and Hangul: scripts written
# without spaces between words (Hangul: before its particles).
_CJK = re.compile(
    "[\u1100-\u11ff\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3038-\u303b\u3040-\u312f"
    "\u3131-\u318e\u31a0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7ff"
    "\uf900-\ufaff\uff66-\uffdc\U00020000-\U0003134f]")


def _mixed_scripts(word: str) -> bool:
    """Whether ``word`` holds both a character of :data:`_CJK` and a letter or digit of
    another script."""
    return _CJK.search(word) is not None and any(
        c.isalnum() and _CJK.match(c) is None for c in word)


def _script_runs(piece: str, at: int) -> list[tuple[str, int]]:
    """``piece`` (at ``at`` in its word) cut where Han, kana or Hangul meets a letter or digit
    of another script; a mark stays with the letter it follows, an underscore or apostrophe
    between two scripts with neither."""
    out: list[tuple[str, int]] = []
    start, end, kind = 0, 0, None
    for i, c in enumerate(piece):
        if c.isalnum():
            now = _CJK.match(c) is not None
            if kind is not None and now != kind:
                out.append((piece[start:end], at + start))
                start = i
            kind, end = now, i + 1
        elif _MARK.match(c):
            end = i + 1
    out.append((piece[start:], at + start))
    return out


def norm(word: str) -> str:
    """A word folded for comparison but keeping its plural (``Mobilised`` → ``mobilised``)."""
    # Underscores at its edges are no part of a word, as in text (an alias "_kiev_" is kiev).
    return _fold_word(word.strip("_"))[0]


def key(word: str) -> str:
    """A word's matching key (``Russia's`` → ``russia``, ``Cyber-Attacks`` → ``cyberattack``)."""
    return _fold_word(word.strip("_"))[1]


class Token(NamedTuple):
    """One word of a field: its key and norm, its span in the original text and its position."""

    key: str
    norm: str
    start: int
    end: int
    pos: int
    last: int  # position of the last part of a compound, else ``pos``


_new = tuple.__new__
_NORM: Callable[[_Folded], str] = itemgetter(0)
_KEY: Callable[[_Folded], str] = itemgetter(1)
_ODD: Callable[[_Folded], bool] = itemgetter(3)


class _Tokens(Sequence[Token]):
    """A field's tokens, each built from the parallel lists when it is read."""

    __slots__ = ("_ft",)

    def __init__(self, ft: FieldText) -> None:
        self._ft = ft

    def __len__(self) -> int:
        return len(self._ft.keys)

    @overload
    def __getitem__(self, i: int) -> Token: ...
    @overload
    def __getitem__(self, i: slice) -> list[Token]: ...
    def __getitem__(self, i: int | slice) -> Token | list[Token]:
        if isinstance(i, slice):
            return [self[j] for j in range(len(self))[i]]
        ft = self._ft
        t = (ft.keys[i], ft.norms[i], ft.starts[i], ft.ends[i], ft.pos[i], ft.last[i])
        return _new(Token, t)

    def __iter__(self) -> Iterator[Token]:
        ft = self._ft
        for t in zip(ft.keys, ft.norms, ft.starts, ft.ends, ft.pos, ft.last, strict=True):
            yield _new(Token, t)


class KeyIndex(Mapping[str, list[int]]):
    """Key → token numbers (ascending) of one field, found when first asked for.

    The key set alone (what the rule index reads) is built in C, with each key's last token
    number; its first is found (also in C) when a rule first asks. Most words of an article occur
    once, so first == last answers most lookups; a repeated word is found by C-level list scans
    between its first and last token, which never walk tokens outside that range.

    A one-query lookup asks for a handful of keys, for which building the key set costs more
    than scanning the token list: the first :data:`_PROBES` keys asked for are found by list
    scans, and the key set is built only when more are asked for (or the keys are iterated,
    as the rule index does first).

    A repeated word's scans cover the tokens between its first and last occurrence, so a field
    asked for many repeated words (a large rule set's candidates) scans much of its token list
    per word: once the scans have covered the list :data:`_SCAN_SHARE` times over, every key's
    token numbers are found in one C pass (``_ctext.positions``) when the extension has it.
    """

    __slots__ = ("_first", "_found", "_keys", "_last", "_probes", "_scans")

    def __init__(self, keys: list[str]) -> None:
        self._keys = keys
        self._last: dict[str, int] | None = None
        self._first: dict[str, int] | None = None
        self._found: dict[str, list[int]] = {}
        self._probes = 0
        self._scans = 0

    def _index(self) -> dict[str, int]:
        last = self._last
        if last is None:
            keys = self._keys
            last = self._last = dict(zip(keys, range(len(keys)), strict=True))
        return last

    def _lookup(self, k: str, stop: int) -> list[int]:
        first = self._first
        if first is None:
            n = len(self._keys)
            first = self._first = dict(zip(reversed(self._keys), range(n - 1, -1, -1), strict=True))
        i = first[k]
        if i == stop:
            found = [i]
        elif self._scans > _SCAN_SHARE * len(self._keys) and _positions is not None:
            # Every key at once (the keys asked for since keep their lists: equal values).
            every = _positions(self._keys)
            every.update(self._found)
            self._found = every
            return every[k]
        else:
            self._scans += stop - i
            index = self._keys.index
            found = [i]
            while i < stop:
                i = index(k, i + 1, stop + 1)
                found.append(i)
        self._found[k] = found
        return found

    def _probe(self, k: str) -> list[int]:
        """``k``'s token numbers by list scans (empty when it has none), remembered."""
        self._probes += 1
        index = self._keys.index
        found: list[int] = []
        i = -1
        try:
            while True:
                i = index(k, i + 1)
                found.append(i)
        except ValueError:
            pass
        self._found[k] = found
        return found

    def __getitem__(self, k: str) -> list[int]:
        found = self.get(k)
        if found is None:
            raise KeyError(k)
        return found

    def get(self, k: str, default: list[int] | None = None) -> list[int] | None:  # type: ignore[override]
        found = self._found.get(k)
        if found is not None:
            return found or default  # an empty list: a probed key the field does not hold
        last = self._last
        if last is None:
            if self._probes < _PROBES:
                return self._probe(k) or default
            last = self._index()
        stop = last.get(k)
        if stop is None:
            return default
        return self._lookup(k, stop)

    def __contains__(self, k: object) -> bool:
        if not isinstance(k, str):
            return False
        return self.get(k) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._index())

    def __len__(self) -> int:
        return len(self._index())

    def keys(self) -> KeysView[str]:
        return self._index().keys()


# Keys a KeyIndex finds by list scans before it builds its key set (see KeyIndex).
_PROBES = 8
# How many times over a KeyIndex may scan its token list for repeated keys before it lists
# every key's token numbers at once (a scan step is a pointer compare; listing a token costs
# a dict lookup and an append, several times that).
_SCAN_SHARE = 12


class FieldText:
    """A field's tokens as parallel lists, with an index from key to token numbers.

    ``norms`` are made when first read: only prefix terms and reported variants need them.
    """

    __slots__ = (
        "_by_key",
        "_folded",
        "_norms",
        "_odd",
        "ends",
        "keys",
        "last",
        "pos",
        "starts",
        "text",
    )

    def __init__(self, text: str) -> None:
        self.text = text
        self.keys: list[str] = []
        self._norms: list[str] | None = []
        self._folded: list[_Folded] = []
        self._odd: list[int] = []
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.pos: Sequence[int] = ()
        self.last: Sequence[int] = ()
        self._by_key: KeyIndex | None = None

    @property
    def by_key(self) -> KeyIndex:
        """The key index, built on first use: the lookup index's terms need only the keys."""
        index = self._by_key
        if index is None:
            index = self._by_key = KeyIndex(self.keys)
        return index

    def adjacent(self, a: str, b: str) -> bool:
        """Whether a token of key ``b`` is at the position after a token of key ``a`` ends."""
        ia = self.by_key.get(a)
        if not ia:
            return False
        ib = self.by_key.get(b)
        if not ib:
            return False
        pos, last = self.pos, self.last
        if len(ia) == 1:  # most words occur once: one position to look for
            return last[ia[0]] + 1 in map(pos.__getitem__, ib)
        after = {last[i] + 1 for i in ia}
        return not after.isdisjoint(map(pos.__getitem__, ib))

    def add_terms(self, out: set[str]) -> None:
        """Add every token's key and norm to ``out`` (see :func:`add_terms`), from the word
        lists without building the token norms."""
        out.update(self.keys)
        folded = self._folded
        out.update(map(_NORM, folded))
        for m in self._odd:
            for p in folded[m][2]:
                out.add(p[0])

    def norm_words(self) -> set[str]:
        """Every token's norm (see :meth:`add_terms`), without building the token norms."""
        folded = self._folded
        out = set(map(_NORM, folded))
        for m in self._odd:
            for p in folded[m][2]:
                out.add(p[0])
        return out

    @property
    def tokens(self) -> Sequence[Token]:
        return _Tokens(self)

    @property
    def norms(self) -> list[str]:
        norms = self._norms
        if norms is None:
            norms = self._norms = _expand_norms(self._folded, self._odd)
        return norms

    @classmethod
    def of(cls, text: str) -> FieldText:
        ft = cls(text)
        if not text:
            return ft
        if _tokens is not None:
            # One C pass makes the token lists too, compounds and norms included: expanding
            # them here moves every list's tail once per compound, which long pages feel.
            folded, odd, keys, norms, starts, ends, pos, last = _tokens(
                text, _FOLDED, _fold_word
            )
            ft._folded, ft._odd, ft._norms = folded, odd, norms
            ft.keys, ft.starts, ft.ends = keys, starts, ends
            if pos is None or last is None:
                ft.pos = ft.last = range(len(keys))
            else:
                ft.pos, ft.last = pos, last
            return ft
        if _scan is not None:
            folded, keys, odd, starts, ends = _scan(text, _FOLDED, _fold_word)
        else:
            folded, keys, odd, starts, ends = _split_fold(text)
        ft._folded, ft._odd, ft._norms = folded, odd, None
        if odd:
            keys, starts, ends, positions = _expand(keys, starts, ends, odd, folded)
            if positions is not None:
                ft.pos, ft.last = positions
            else:
                ft.pos = ft.last = range(len(keys))
        else:
            ft.pos = ft.last = range(len(keys))
        ft.keys, ft.starts, ft.ends = keys, starts, ends
        return ft


def add_terms(text: str, out: set[str]) -> None:
    """Add the key and norm of every token of ``text`` to ``out`` (and, when the text has a
    word with no key, the empty string): the set of ``FieldText.of(text)``'s keys and norms,
    found without building its lists.

    The lookup index holds exactly these words; bulk loading computes them for every article.
    """
    if not text:
        return
    if _scan_terms is not None:
        _scan_terms(text, _FOLDED, _fold_word, out)
        return
    folded, keys, odd, _, _ = _split_fold(text)
    out.update(keys)
    out.update(map(_NORM, folded))
    # A word with no key has the empty norm too (see _fold_uncached/_fold_general), so only a
    # compound's parts are left to add.
    for m in odd:
        for p in folded[m][2]:
            out.add(p[0])
            out.add(p[1])


def _split_fold(text: str) -> tuple[list[_Folded], list[str], list[int], list[int], list[int]]:
    """The pure path of the C scan: each word's fold, key, the odd word numbers and the spans."""
    marks = not text.isascii() and _COMBINING.search(text)
    pieces = (_SPLIT_RE_MARKS if marks else _SPLIT_RE).split(text)
    raws = pieces[1::2]
    # pieces alternate gap, word, gap, ...: word m runs from the end of piece 2m to the
    # end of piece 2m + 1.
    offsets = list(accumulate(map(len, pieces)))
    starts = offsets[0:-1:2]
    ends = offsets[1::2]
    try:
        folded = list(map(_FOLDED.__getitem__, raws))
    except KeyError:  # a word not seen before (or the cache was cleared)
        folded = list(map(_fold_word, raws))
    odd = list(compress(range(len(raws)), map(_ODD, folded)))
    keys = list(map(_KEY, folded))
    return folded, keys, odd, starts, ends


def _expand(
    keys: list[str], starts: list[int], ends: list[int], odd: list[int], folded: list[_Folded]
) -> tuple[list[str], list[int], list[int], tuple[list[int], list[int]] | None]:
    """Per-word lists made per-token around the few odd words: those with no key dropped, each
    compound followed by its parts. The lists are edited in place from the end, so each odd word
    costs a memory move rather than a copy of the runs of plain words around it.

    Also each token's position and last position, or None when no compound moves them from the
    token numbers: a compound takes no position of its own but shares its first part's.
    """
    for m in reversed(odd):
        f = folded[m]
        if not f[1]:
            del keys[m], starts[m], ends[m]
            continue
        start = starts[m]
        parts = f[2]
        keys[m + 1 : m + 1] = [p[1] for p in parts]
        starts[m + 1 : m + 1] = [start + p[2] for p in parts]
        ends[m + 1 : m + 1] = [start + p[3] for p in parts]
    heads: list[tuple[int, int]] = []  # (token number, parts) of each compound
    shift = 0
    for m in odd:
        f = folded[m]
        if not f[1]:
            shift -= 1
        else:
            heads.append((m + shift, len(f[2])))
            shift += len(f[2])
    if not heads:
        return keys, starts, ends, None
    pos: list[int] = []
    before = 0  # compounds before the current run of tokens
    prev = 0
    for h, _ in heads:
        # Tokens prev..h-1 each move back one position per compound before them; the compound
        # at h shares the position of its first part at h + 1.
        pos += range(prev - before, h - before)
        pos.append(h - before)
        before += 1
        prev = h + 1
    pos += range(prev - before, len(keys) - before)
    last = pos.copy()
    for h, n in heads:
        last[h] = pos[h] + n - 1
    return keys, starts, ends, (pos, last)


def _expand_norms(folded: list[_Folded], odd: list[int]) -> list[str]:
    """The norms of :func:`_expand`'s tokens."""
    norms = list(map(_NORM, folded))
    out: list[str] = []
    prev = 0
    for m in odd:
        out += norms[prev:m]
        prev = m + 1
        f = folded[m]
        if f[1]:
            out.append(f[0])
            out += [p[0] for p in f[2]]
    return out + norms[prev:]


def tokenize(text: str, by_key: dict[str, list[int]] | None = None) -> list[Token]:
    """Split text into tokens with spans into ``text`` itself; compounds also yield their parts.

    ``by_key``, if given, is filled with each key's token numbers. This loop runs for every
    word of every article, hence its shape.
    """
    out: list[Token] = []
    if not text:
        return out
    append = out.append
    pos = 0
    cached = _FOLDED.get
    rx = _WORD_RE_MARKS if _COMBINING.search(text) else _WORD_RE
    find = text.find
    end = 0
    # findall and find beat finditer's match objects. Between two matches no character can
    # start a word (else the scan would have matched there), and a word starts with one, so the
    # first occurrence of a word from the previous word's end is where it was matched.
    for raw in rx.findall(text):
        start = find(raw, end)
        end = start + len(raw)
        f = cached(raw) or _fold_word(raw)
        k = f[1]
        if not k:
            continue
        parts = f[2]
        if by_key is not None:
            slot = by_key.get(k)
            if slot is None:
                by_key[k] = [len(out)]
            else:
                slot.append(len(out))
        if not parts:
            append(_new(Token, (k, f[0], start, end, pos, pos)))
            pos += 1
            continue
        append(_new(Token, (k, f[0], start, end, pos, pos + len(parts) - 1)))
        for p_norm, p_key, p_start, p_end in parts:
            if by_key is not None:
                slot = by_key.get(p_key)
                if slot is None:
                    by_key[p_key] = [len(out)]
                else:
                    slot.append(len(out))
            append(_new(Token, (p_key, p_norm, start + p_start, start + p_end, pos, pos)))
            pos += 1
    return out


def query_words(term: str) -> list[tuple[str, str]]:
    """The (key, norm) pairs of a query term; more than one means the term is a phrase.

    A hyphenated query term stays one compound word (``cyber-attack`` → ``cyberattack``).
    """
    out: list[tuple[str, str]] = []
    for m in (_WORD_RE_MARKS if _COMBINING.search(term) else _WORD_RE).finditer(term):
        f = _fold_word(m.group())
        if f[1]:
            out.append((f[1], f[0]))
    return out
