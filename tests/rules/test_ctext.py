"""The C word scan (``watchers.rules._ctext``) gives exactly the FieldText of the pure path.

The regex path is the spec: every list a FieldText exposes, its key index and its folding
internals are compared between the two on generated strings heavy in the characters the word
pattern treats specially, on hand-picked cases and on the shared corpora. Skipped when the
extension is not built.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchers.rules import text as text_mod
from watchers.rules.text import FieldText

from ._corpus import REPO, corpus_articles

try:
    from watchers.rules import _ctext
except ImportError:  # pragma: no cover - depends on the install
    pytest.skip(
        "watchers.rules._ctext is not built (no C compiler at install); build it with "
        "`pip install -e .` (or `python setup.py build_ext --inplace` with setuptools >= 77)",
        allow_module_level=True,
    )


@contextmanager
def _path(scan: Any, terms: Any = None, tokens: Any = None, positions: Any = None
          ) -> Iterator[None]:
    """FieldText.of (and add_terms, and the key index) on the given path for the duration
    (None: pure), whatever NEWSWATCH_PURE chose at import; the same switches the import sets."""
    saved = text_mod._scan, text_mod._scan_terms, text_mod._tokens, text_mod._positions
    text_mod._scan, text_mod._scan_terms, text_mod._tokens = scan, terms, tokens
    text_mod._positions = positions
    try:
        yield
    finally:
        (text_mod._scan, text_mod._scan_terms, text_mod._tokens,
         text_mod._positions) = saved


def _snapshot(ft: FieldText) -> dict[str, Any]:
    return {
        "keys": ft.keys,
        "starts": ft.starts,
        "ends": ft.ends,
        "pos": list(ft.pos),
        "last": list(ft.last),
        "norms": ft.norms,
        "by_key": {k: ft.by_key[k] for k in ft.by_key},
        "by_key_order": list(ft.by_key),
        "folded": ft._folded,
        "odd": ft._odd,
        "tokens": list(ft.tokens),
    }


def _assert_same(text: str) -> None:
    with _path(_ctext.scan, _ctext.terms, _ctext.tokens, _ctext.positions):
        c = _snapshot(FieldText.of(text))
        c_terms: set[str] = set()
        text_mod.add_terms(text, c_terms)
    with _path(_ctext.scan, _ctext.terms):
        # The C word scan with the token lists expanded in Python (an extension built before
        # tokens() existed).
        c_scan = _snapshot(FieldText.of(text))
    with _path(None):
        ft = FieldText.of(text)
        pure = _snapshot(ft)
        pure_terms: set[str] = set()
        text_mod.add_terms(text, pure_terms)
    assert c == pure, text
    assert c_scan == pure, text
    # The lookup index's words, three ways: C, the pure shortcut and the tokens themselves.
    tokens = set(ft.keys) | set(ft.norms)
    from_lists: set[str] = set()
    ft.add_terms(from_lists)
    for found in (c_terms, pure_terms, from_lists):
        found.discard("")
    assert c_terms == pure_terms == from_lists == tokens, text


# Letters (accented, non-Latin, non-BMP), decimals of other scripts, a digit that is \w but not
# \d (²), Latin-1 letters and signs above 127, every joiner and a few near misses (— is not a
# joiner), combining marks and the code points either side of their block, emoji.
ALPHABET = list(
    "abzAZ_éßÆªµ½×Жж中ك٣०"  # letters, Latin-1, Cyrillic, CJK, Arabic-Indic and Devanagari digits
    "łıøđþœİש\u0640\u02bc\u02bb"  # letters folded by table, Hebrew, the tatweel, U+02BC/02BB
    "0159²"
    "'’‘`-‐‑–—"
    ".,;:!? \n\t"
    "\u0301\u0300\u036f\u02ff\u0370"
    # Hebrew points and Arabic marks, and code points beside them that are not marks
    "\u0591\u05bd\u05be\u05bf\u05c0\u05c7\u0610\u061a\u061b\u064b\u065f\u0660\u0670\u0671"
    "\U0001f600\U0001d400\U0001d7d9"  # emoji, mathematical bold A, double-struck digit one
    # Devanagari and Thai letters and marks (vowel signs, virama, tone), kana and the voicing
    # mark, Hangul, the Hebrew geresh, variation selectors, an enclosing keycap
    "मदि\u0940\u094d\u0901กุ\u0e48ハパ\u3099가장\u05f3\ufe0f\U000e0100\u20e3"
)
WORDS = [
    "U.S.A.", "100,000", "1.5", "Russia's", "cyber-attack", "rock'n'roll", "a.b.c", "_x_",
    "e\u0301lan", "Київ", "x-y.z.", "1.5.6.", "e.g.", "’s", "talks'",
    "l’Ukraine", "dell'Ucraina", "İstanbul'da", "D'Angelo", "d'Alsace-Lorraine", "Kyivʼs",
    "غَزَّة", "שָׁלוֹם",
]  # fmt: skip

chars = st.text(alphabet=st.sampled_from(ALPHABET), max_size=60)
mixed = st.lists(st.one_of(st.sampled_from(WORDS), chars), max_size=8).map("".join)


@settings(max_examples=600, deadline=None)
@given(chars)
def test_generated_characters(text: str) -> None:
    _assert_same(text)


@settings(max_examples=300, deadline=None)
@given(mixed)
def test_generated_words(text: str) -> None:
    _assert_same(text)


# Underscores beside everything the word pattern treats specially: at a word's edges they are
# no part of it, between letters or digits they join them.
UNDERSCORED = st.text(alphabet=st.sampled_from(list("aZé9²中ـ_____'-.,\u0301 ")), max_size=40)


@settings(max_examples=600, deadline=None)
@given(UNDERSCORED)
def test_generated_underscores(text: str) -> None:
    _assert_same(text)


@pytest.mark.parametrize(
    "text",
    [
        "U.S.A.",
        "the U.S. and the U.K.",
        "100,000 troops",
        "1.5 million",
        "Russia's war",
        "a cyber-attack on Russia-Ukraine talks",
        "rock'n'roll",
        "a.b.c",
        "ab.c.",
        "end of sentence.",
        "_x_",
        "_Russian Offensive Campaign_ and __NATO__ and snake_case and a__b_",
        "_U.S._ __init__.py word_-next word-_next _1,000_ 1_,000 _e\u0301_ _\u0301_",
        "e\u0301lan and Ame\u0301lie",
        "٣,٥٠٠ and ²,5",
        "x-y.z. and 1.5.6.",
        "dash— and – and -- and ''",
        "\U0001d400\U0001d401.\U0001d7d9.",
        "",
        " ",
        "...,,,",
        "frappes sur l’Ukraine, d’Israël et l'OTAN; qu’il dell’Ucraina",
        "İstanbul'da Erdoğan'ın Türkiye'nin d'Alsace-Lorraine D'Angelo don't O'Brien",
        "Wałęsa Łódź København Đoković cœur Straße Kyivʼs мʼясо",
        "هجومٌ على غَزَّة غـزة ّx ְ שָׁלוֹם עֲלֵיכֶם ٰ֑",
        "א־ב بؐب ً",
        "प्रधानमंत्री मोदी ने कहा; ข่าวกรุงเทพ; ハ\u3099リ ﾊﾞﾘ; 가자지구; ג׳נין; NATO首脳会議 2024年",
    ],
)
def test_explicit_cases(text: str) -> None:
    _assert_same(text)


def test_corpus_articles_tokenise_alike() -> None:
    # A cap per file keeps this to a few seconds while covering BBC, Reddit and scraped text.
    seen = 0
    for article in corpus_articles(limit_per_file=200):
        _assert_same(article.title)
        _assert_same(article.text)
        seen += 1
    assert seen > 0


def test_scan_folds_misses_through_the_callback_once() -> None:
    folded_calls: list[str] = []

    def fold(raw: str) -> tuple[str, str, tuple[()], bool]:
        folded_calls.append(raw)
        return (raw.lower(), raw.lower(), (), raw == "odd")

    cache = {"Kyiv": ("kyiv", "KYIV-KEY", (), False)}
    folded, keys, odd, starts, ends = _ctext.scan("Kyiv odd U.S. Kyiv", cache, fold)
    assert folded_calls == ["odd", "U.S."]
    assert keys == ["KYIV-KEY", "odd", "u.s.", "KYIV-KEY"]
    assert odd == [1]
    assert (starts, ends) == ([0, 5, 9, 14], [4, 8, 13, 18])
    assert folded[0] is cache["Kyiv"]


# Checked alike by every function (their shared word loop): (text, cache, fold) and message.
_SHARED_BAD: list[tuple[tuple[Any, ...], str]] = [
    ((b"bytes", {}, str), "text must be str, not bytes"),
    (("text", [], str), "cache must be a dict, not list"),
    (("text", {}, 3), "fold must be callable, not int"),
    (("text", {}, str), "folded word must be a tuple"),
]
# What each function takes after those three.
_MORE: dict[str, tuple[Any, ...]] = {"scan": (), "terms": (set(),), "tokens": ()}
_OWN_BAD: list[tuple[str, tuple[Any, ...], str]] = [
    ("scan", ("text", {"text": ("a", "b")}, str), "folded word must be a tuple"),
    ("scan", ("text", {}), "takes 3 arguments"),
    ("terms", ("text", {}, str, []), "out must be a set, not list"),
    ("terms", ("text", {"text": ("a", 1, (), False)}, str, set()), "key must be str"),
    ("terms", ("text", {"text": ("a", "b", [], False)}, str, set()), "parts must be a tuple"),
    ("terms", ("text", {"text": ("a", "b", (("p",),), True)}, str, set()),
     "a part must be a tuple"),
    ("terms", ("text", {}, str), "takes 4 arguments"),
    ("tokens", ("text", {"text": ("a", "b", [], True)}, str), "parts must be a tuple"),
    ("tokens", ("text", {"text": ("a", "b", (("p", "p", 0),), True)}, str),
     "a part must be a tuple"),
    ("tokens", ("text", {"text": ("a", "b", (("p", "p", "0", 1),), True)}, str), "integer"),
    ("tokens", ("text", {}), "takes 3 arguments"),
    ("positions", (("a", "b"),), "keys must be a list, not tuple"),
    ("positions", (["a", 1],), "keys must be str, not int"),
    ("positions", (["a"], ["b"]), "takes 1 argument"),
]


@pytest.mark.parametrize(
    ("function", "args", "message"),
    [(f, (*args, *more), message) for f, more in _MORE.items() for args, message in _SHARED_BAD]
    + _OWN_BAD,
)
def test_the_c_functions_refuse_bad_arguments(
        function: str, args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        getattr(_ctext, function)(*args)


def test_tokens_expands_compounds_and_drops_keyless_words() -> None:
    Fold = tuple[str, str, tuple[tuple[str, str, int, int], ...], bool]
    cache: dict[str, Fold] = {
        "Kyiv": ("kyiv", "kyiv", (), False),
        "cyber-attacks": ("cyberattacks", "cyberattack",
                          (("cyber", "cyber", 0, 5), ("attacks", "attack", 6, 13)), True),
        # Arabic tatweels: a word that folds to no key (underscores are no word at all).
        "\u0640\u0640": ("", "", (), True),
    }
    folded, odd, keys, norms, starts, ends, pos, last = _ctext.tokens(
        "Kyiv \u0640\u0640 cyber-attacks hit", cache, lambda raw: (raw, raw, (), False))
    assert [f[0] for f in folded] == ["kyiv", "", "cyberattacks", "hit"]
    assert odd == [1, 2]
    assert keys == ["kyiv", "cyberattack", "cyber", "attack", "hit"]
    assert norms == ["kyiv", "cyberattacks", "cyber", "attacks", "hit"]
    assert (starts, ends) == ([0, 8, 8, 14, 22], [4, 21, 13, 21, 25])
    # The compound shares its first part's position; the word after it comes after its last.
    assert (pos, last) == ([0, 1, 1, 2, 3], [0, 2, 1, 2, 3])
    # Without a compound, positions are the token numbers and are not built.
    plain = _ctext.tokens("Kyiv \u0640\u0640 Kyiv", cache, lambda raw: (raw, raw, (), False))
    assert plain[6:] == (None, None)


def test_terms_adds_each_keyed_word_and_its_parts() -> None:
    Fold = tuple[str, str, tuple[tuple[str, str, int, int], ...], bool]
    cache: dict[str, Fold] = {
        "Kyiv": ("kyiv", "kyiv", (), False),
        "cyber-attacks": ("cyberattacks", "cyberattack",
                          (("cyber", "cyber", 0, 5), ("attacks", "attack", 6, 13)), True),
    }
    missed: list[str] = []

    def fold(raw: str) -> Fold:
        # A word with no key: neither it nor its parts are tokens.
        missed.append(raw)
        return ("gone", "", (("part", "part", 0, 1),), True)

    out = {"already"}
    _ctext.terms("Kyiv cyber-attacks \u0640\u0640", cache, fold, out)
    assert missed == ["\u0640\u0640"]
    assert out == {"already", "kyiv", "cyberattacks", "cyberattack", "cyber", "attacks",
                   "attack"}


def test_scan_passes_on_a_folding_error() -> None:
    def fold(raw: str) -> tuple[str, str, tuple[()], bool]:
        raise ValueError(f"cannot fold {raw}")

    with pytest.raises(ValueError, match="cannot fold word"):
        _ctext.scan("word", {}, fold)


@pytest.mark.parametrize(("value", "pure"), [("1", True), ("0", False), ("", False)])
def test_newswatch_pure_selects_the_path_at_import(value: str, pure: bool) -> None:
    env = {**os.environ, "NEWSWATCH_PURE": value}
    out = subprocess.run(
        [sys.executable, "-c", "import watchers.rules.text as t; print(t._scan is None)"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert out.stdout.strip() == str(pure)


@pytest.mark.parametrize("text", [
    "a" * 1_000_000,                          # one word of a million letters
    "a_" * 500_000,                           # a word of letters joined by underscores
    "_" * 1_000_000 + "a",                    # underscores that never join
    "x-" * 300_000 + "x",                     # a compound of 300,000 parts
    "1," * 300_000 + "1",                     # a number with 300,000 separators
    "a." * 300_000,                           # a dotted acronym that never ends
    "é\u0301 " * 200_000,                     # combining marks everywhere
    "'-.,`" * 200_000,                        # joiners with no word
    "l'a-" * 50_000 + "x",                    # 50,000 elisions in one compound
    "İstanbul'da-" * 30_000 + "x",            # 30,000 Turkish suffixes in one compound
    "غَزَّة" * 100_000,                           # an Arabic word of 100,000 marked letters
], ids=["long-word", "underscored", "underscores", "compound", "number", "acronym", "marks",
        "joiners", "elisions", "suffixes", "arabic-marks"])
def test_inputs_a_thousand_times_larger_tokenise_alike(text: str) -> None:
    """Texts far past any article (the per-test timeout catches a scan that would not end)."""
    _assert_same(text)


def _grouped(keys: list[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        out.setdefault(k, []).append(i)
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "kyiv", "é", "", "\x00", "𝔘"]), max_size=600))
def test_positions_lists_each_keys_indexes_in_order(keys: list[str]) -> None:
    found = _ctext.positions(keys)
    assert found == _grouped(keys)
    assert list(found) == list(dict.fromkeys(keys))  # keys in order of first occurrence


def test_a_key_index_asked_for_many_repeated_words_lists_them_all_alike() -> None:
    # Long enough, and repeated enough, that the scans pass their share and the C listing
    # takes over part way through; every answer, before and after, is the pure one.
    words = [f"w{i % 97}" for i in range(5000)] + ["once"]
    text = " ".join(words)
    with _path(_ctext.scan, _ctext.terms, _ctext.tokens, _ctext.positions):
        ft = FieldText.of(text)
        index = ft.by_key
        expected = _grouped(ft.keys)
        asked = []
        listed_at = None
        for k in expected:
            asked.append(index[k])
            if listed_at is None and len(index._found) > len(asked):
                listed_at = len(asked)  # every key's list is known: the C listing ran
        assert listed_at is not None and listed_at < len(expected)
        assert asked == list(expected.values())
        assert index.get("absent") is None and "absent" not in index
        assert index.get("once") == [5000]
    with _path(None):
        pure = FieldText.of(text).by_key
        assert [pure[k] for k in expected] == asked


# The word table: the C module remembers (raw word, fold) pairs it has read from the cache dict,
# and must read the dict exactly as one lookup per word would, whatever happens to the dict.

_Serial = tuple[str, str, tuple[()], bool, int]
# Words of each width (ASCII, Latin-1, two-byte, four-byte), one of several code units, and
# words that are one word with joiners or dots; a text's kind is set by a non-word suffix.
_VOCAB = ["Kyiv", "talks", "a", "alpha", "café", "Київ", "中国", "\U0001d400x", "x-y", "U.S.",
          "100,000", "x_y"]
_WIDTHS = ["", " \u2019", " \U0001f600"]


class _Folder:
    """A folding cache and callback like text's: each fold is a new tuple numbered in order;
    the callback clears the cache when it holds ``limit`` words, and stores what it returns
    unless the word starts with ``a``."""

    def __init__(self, limit: int) -> None:
        self.cache: dict[str, _Serial] = {}
        self.limit = limit
        self.serial = 0

    def fold(self, raw: str) -> _Serial:
        if len(self.cache) >= self.limit:
            self.cache.clear()
        self.serial += 1
        f: _Serial = (raw.lower(), raw.lower(), (), False, self.serial)
        if not raw.startswith("a"):
            self.cache[raw] = f
        return f

    def lookup(self, raw: str) -> _Serial:
        """One dict lookup, then the callback: what each word must be folded to."""
        return self.cache.get(raw) or self.fold(raw)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(_VOCAB), max_size=12),
            st.sampled_from(_WIDTHS),
            st.sampled_from(["keep", "clear", "other dict", "replace"]),
        ),
        max_size=6,
    ),
    st.integers(min_value=1, max_value=6),
)
def test_the_word_table_reads_the_cache_as_one_lookup_per_word_would(
        calls: list[tuple[list[str], str, str]], limit: int) -> None:
    c, spec = _Folder(limit), _Folder(limit)
    for words, width, before in calls:
        if before == "clear":
            c.cache.clear()
            spec.cache.clear()
        elif before == "other dict":
            # Another cache holding other folds of the same words in between.
            other = _Folder(limit)
            _ctext.scan(" ".join(_VOCAB), other.cache, other.fold)
        elif before == "replace" and words:
            # The cache emptied and given a new fold for a word, which may leave it no smaller
            # than it was: forget() says so.
            for folder in (c, spec):
                folder.cache.clear()
                folder.serial += 1
                folder.cache[words[0]] = (words[0], "new", (), False, folder.serial)
            _ctext.forget()
        text = " ".join(words) + width
        folded, keys, _, starts, ends = _ctext.scan(text, c.cache, c.fold)
        raws = [text[s:e] for s, e in zip(starts, ends, strict=True)]
        assert raws == words, text
        expected = [spec.lookup(raw) for raw in raws]
        # Each fold is a new tuple with its own number: the same numbers are the same tuples.
        assert [f[4] for f in folded] == [f[4] for f in expected], text
        assert all(k is f[1] for f, k in zip(folded, keys, strict=True))


def _storing_fold(cache: dict[str, _Serial], calls: list[str]) -> Any:
    def fold(raw: str) -> _Serial:
        calls.append(raw)
        f = cache[raw] = (raw.lower(), raw.lower(), (), False, len(calls))
        return f
    return fold


def test_a_word_is_folded_once_in_texts_of_every_width() -> None:
    cache: dict[str, _Serial] = {}
    calls: list[str] = []
    fold = _storing_fold(cache, calls)
    texts = ["Kyiv café Київ", "Kyiv café Київ \u2019", "Kyiv café Київ \U0001f600"]
    for text in texts * 2:
        folded, _, keys, _, _, _, _, _ = _ctext.tokens(text, cache, fold)
        assert [f[0] for f in folded] == ["kyiv", "café", "київ"]
        assert all(f is cache[raw] for f, raw in zip(folded, text.split(), strict=False))
        assert all(k is f[1] for k, f in zip(keys, folded, strict=True))
    assert calls == ["Kyiv", "café", "Київ"]


def test_a_cleared_cache_is_folded_again() -> None:
    cache: dict[str, _Serial] = {}
    calls: list[str] = []
    fold = _storing_fold(cache, calls)
    before = _ctext.tokens("alpha beta", cache, fold)[0]
    cache.clear()
    after = _ctext.tokens("alpha beta", cache, fold)[0]
    assert calls == ["alpha", "beta", "alpha", "beta"]
    assert after[0] is cache["alpha"] and after[0] is not before[0]


def test_a_fold_the_cache_does_not_keep_is_asked_for_again() -> None:
    calls: list[str] = []

    def fold(raw: str) -> tuple[str, str, tuple[()], bool]:
        calls.append(raw)
        return (raw, raw, (), False)

    _ctext.tokens("Kyiv Kyiv", {}, fold)
    _ctext.tokens("Kyiv", {}, fold)
    assert calls == ["Kyiv", "Kyiv", "Kyiv"]


def test_more_words_than_the_word_table_holds_share_its_slots() -> None:
    # Far more distinct words than the table's largest size, so words crowd each other's
    # slots and push each other out; every fold is still the one the cache holds.
    cache: dict[str, _Serial] = {}
    calls: list[str] = []
    fold = _storing_fold(cache, calls)
    words = [f"w{i}" for i in range(300_000)]
    for order in (words, words[::-1], words):
        text = " ".join(order)
        folded = _ctext.scan(text, cache, fold)[0]
        assert all(f is cache[w] for f, w in zip(folded, order, strict=True))
    assert len(calls) == len(words)


def test_long_words_are_compared_whole() -> None:
    cache: dict[str, _Serial] = {}
    calls: list[str] = []
    fold = _storing_fold(cache, calls)
    long_a, long_b = "a" * 100_000 + "x", "a" * 100_000 + "y"
    wide = "\U0001d400" * 50_000
    for _ in range(2):
        folded = _ctext.scan(f"{long_a} {long_b} {wide} {long_a}", cache, fold)[0]
        assert [f[4] for f in folded] == [1, 2, 3, 1]
    assert calls == [long_a, long_b, wide]


def test_a_fold_callback_may_tokenise_with_another_cache() -> None:
    inner: dict[str, _Serial] = {}
    inner_calls: list[str] = []
    inner_fold = _storing_fold(inner, inner_calls)
    outer: dict[str, _Serial] = {}

    def fold(raw: str) -> _Serial:
        # The word table follows the inner cache for a while, then the outer one again.
        _ctext.tokens(f"inner {raw} words", inner, inner_fold)
        f = outer[raw] = (raw, raw, (), False, 0)
        return f

    text = "one two one three two"
    for _ in range(2):
        folded = _ctext.tokens(text, outer, fold)[0]
        assert all(f is outer[w] for f, w in zip(folded, text.split(), strict=True))
    assert sorted(inner) == ["inner", "one", "three", "two", "words"]


def test_text_empties_the_word_table_when_it_clears_its_cache(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_mod, "_FOLDED", {})
    monkeypatch.setattr(text_mod, "_FOLDED_LIMIT", 3)
    monkeypatch.setattr(text_mod, "_forget", _ctext.forget)
    with _path(_ctext.scan, _ctext.terms, _ctext.tokens, _ctext.positions):
        before = FieldText.of("alpha beta gamma")._folded[0]
        # Folded outside the C pass: the cache is cleared when full and refilled to the size
        # the C pass last saw, without "alpha".
        for word in ("delta", "epsilon", "zeta"):
            text_mod.key(word)
        assert sorted(text_mod._FOLDED) == ["delta", "epsilon", "zeta"]
        after = FieldText.of("alpha")._folded[0]
    assert after == before and after is not before
    assert after is text_mod._FOLDED["alpha"]


def test_token_lists_stay_out_of_the_cyclic_collector() -> None:
    """Every collection during a match would walk an article's token lists; they hold only
    strs, ints and tuples of strs, so the word scan leaves them untracked (on both C paths)."""
    import gc

    text = "Kyiv's troops, the cyber-attack and U.S. talks near Donbas " * 20
    with _path(_ctext.scan, _ctext.terms, _ctext.tokens, _ctext.positions):
        ft = FieldText.of(text)
    lists = [ft.keys, ft.norms, ft.starts, ft.ends, ft._folded, ft._odd]
    if isinstance(ft.pos, list):
        lists += [ft.pos, ft.last]
    assert not any(gc.is_tracked(x) for x in lists)
    with _path(_ctext.scan, tokens=None):
        scanned = FieldText.of(text)
    assert scanned.keys == ft.keys
    assert not gc.is_tracked(scanned._folded)


def test_untrack_leaves_containers_out_and_lets_anything_else_pass() -> None:
    """``text.untrack`` (the extension's ``untrack``) takes any objects: containers leave the
    cyclic collector, atoms and objects already untracked are left as they are, and an
    untracked container is still freed by reference counting."""
    import gc
    import weakref

    class Box:  # a tracked object that takes weak references
        pass

    words, pair, box = {"kyiv", "donbas"}, ("a", ["b"]), Box()
    assert gc.is_tracked(words) and gc.is_tracked(pair) and gc.is_tracked(box)
    _ctext.untrack(words, pair, box, "text", 3, None, words)
    assert not gc.is_tracked(words) and not gc.is_tracked(pair) and not gc.is_tracked(box)
    gone = weakref.ref(box)
    del box
    assert gone() is None
    text_mod.untrack()  # no objects: nothing to do
