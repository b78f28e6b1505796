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
    "0159²"
    "'’‘`-‐‑–—"
    ".,;:!? \n\t"
    "\u0301\u0300\u036f\u02ff\u0370"
    "\U0001f600\U0001d400\U0001d7d9"  # emoji, mathematical bold A, double-struck digit one
)
WORDS = [
    "U.S.A.", "100,000", "1.5", "Russia's", "cyber-attack", "rock'n'roll", "a.b.c", "_x_",
    "e\u0301lan", "Київ", "x-y.z.", "1.5.6.", "e.g.", "’s", "talks'",
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
        "e\u0301lan and Ame\u0301lie",
        "٣,٥٠٠ and ²,5",
        "x-y.z. and 1.5.6.",
        "dash— and – and -- and ''",
        "\U0001d400\U0001d401.\U0001d7d9.",
        "",
        " ",
        "...,,,",
    ],
)
def test_explicit_cases(text: str) -> None:
    _assert_same(text)


def test_corpus_articles_tokenise_alike() -> None:
    # A cap per file keeps this to a few seconds while covering BBC, Reddit and scraped text.
    seen = 0
    for article in corpus_articles(limit_per_file=400):
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
        "__": ("", "", (), True),
    }
    folded, odd, keys, norms, starts, ends, pos, last = _ctext.tokens(
        "Kyiv __ cyber-attacks hit", cache, lambda raw: (raw, raw, (), False))
    assert [f[0] for f in folded] == ["kyiv", "", "cyberattacks", "hit"]
    assert odd == [1, 2]
    assert keys == ["kyiv", "cyberattack", "cyber", "attack", "hit"]
    assert norms == ["kyiv", "cyberattacks", "cyber", "attacks", "hit"]
    assert (starts, ends) == ([0, 8, 8, 14, 22], [4, 21, 13, 21, 25])
    # The compound shares its first part's position; the word after it comes after its last.
    assert (pos, last) == ([0, 1, 1, 2, 3], [0, 2, 1, 2, 3])
    # Without a compound, positions are the token numbers and are not built.
    plain = _ctext.tokens("Kyiv __ Kyiv", cache, lambda raw: (raw, raw, (), False))
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
    _ctext.terms("Kyiv cyber-attacks __", cache, fold, out)
    assert missed == ["__"]
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
    "x-" * 300_000 + "x",                     # a compound of 300,000 parts
    "1," * 300_000 + "1",                     # a number with 300,000 separators
    "a." * 300_000,                           # a dotted acronym that never ends
    "é\u0301 " * 200_000,                     # combining marks everywhere
    "'-.,`" * 200_000,                        # joiners with no word
], ids=["long-word", "compound", "number", "acronym", "marks", "joiners"])
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
