"""The shipped word-frequency table answers as wordfreq does wherever an answer decides anything.

``watchers/rules/data/zipf_en.txt`` (built by bench/build_zipf.py) spares short commands the cost
of loading wordfreq. These tests hold it to the installed wordfreq: every value in it is
wordfreq's, every plain word left out is at or below the floor, and every threshold that reads
these values sits above the floor, so a word left out decides exactly as wordfreq's value would.
"""

from __future__ import annotations

import random
import string

import pytest

from watchers.rules import variants
from watchers.rules.variants import (
    COMMON_ZIPF,
    SPLIT_MIN_ZIPF,
    ZIPF_FLOOR,
    _load_zipf_table,
    _zipf,
    compound_splits,
    is_common_word,
)
from watchers.stories import features

wordfreq = pytest.importorskip("wordfreq")


def test_every_value_in_the_table_is_wordfreqs() -> None:
    table = _load_zipf_table()
    assert len(table) > 40_000
    wrong = [(w, v) for w, v in table.items() if float(v) != wordfreq.zipf_frequency(w, "en")]
    assert not wrong[:10], "rebuild the table: python bench/build_zipf.py"
    assert all(float(v) > ZIPF_FLOOR for v in table.values())


def test_plain_words_left_out_are_at_or_below_the_floor() -> None:
    table = _load_zipf_table()
    known = [w for w in wordfreq.get_frequency_dict("en", wordlist="best")
             if w.isascii() and w.isalpha() and w.islower() and w not in table]
    sample = random.Random(3).sample(known, 5_000)
    rng = random.Random(4)
    made_up = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 12)))
               for _ in range(500)]
    for w in sample + made_up:
        if w not in table:
            assert wordfreq.zipf_frequency(w, "en") <= ZIPF_FLOOR, w
            assert _zipf(w) == 0.0


def test_other_strings_are_asked_of_wordfreq() -> None:
    for w in ["2022", "covid19", "kyiv's", "київ", "zürich", "Ukraine", "nato-led"]:
        assert _zipf(w) == wordfreq.zipf_frequency(w, "en"), w


def test_every_threshold_on_these_values_is_above_the_floor() -> None:
    # A threshold at or below the floor would tell apart words the table cannot.
    assert COMMON_ZIPF > ZIPF_FLOOR
    assert SPLIT_MIN_ZIPF > ZIPF_FLOOR
    assert features._STOP_ZIPF > ZIPF_FLOOR
    # Story weights are clamped at _MAX for every value up to _TOP - _MAX.
    assert features._TOP - features._MAX >= ZIPF_FLOOR


def test_decisions_read_from_the_table() -> None:
    assert is_common_word("stalk") and is_common_word("trope")
    assert not is_common_word("kharkiv") and not is_common_word("lugansk")
    assert compound_splits("cyberattack") == (("cyber", "attack"),)
    assert compound_splits("kyiv") == ()
    assert variants._zipf("the") == 7.73


def test_the_first_words_are_searched_in_the_text_as_the_table_answers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A short command finds its few words by a binary search of the table's sorted text, and
    only later makes it a dict; both give the same value for every word in it, the words
    around them and words before the first and after the last."""
    table = dict(_load_zipf_table())
    words = sorted(table)
    others = ["", "0", "`", "zzzzzzzz", "aaaaaaaaaa", *(w + "q" for w in words[::97]),
              *(w[:-1] for w in words[::89] if len(w) > 1)]
    monkeypatch.setattr(variants, "_zipf_table", None)
    monkeypatch.setattr(variants, "_zipf_asked", 0)
    monkeypatch.setattr(variants, "ZIPF_SEARCHES", 10**9)
    for w in [*words, *others]:
        assert variants._zipf_value(w) == table.get(w), w
    assert variants._zipf_table is None  # every answer came from the text
    monkeypatch.setattr(variants, "ZIPF_SEARCHES", len(words) + len(others) + 3)
    for w in ["the", "kharkiv", "stalk"]:
        assert variants._zipf_value(w) == table.get(w)
    assert variants._zipf_table is None
    assert variants._zipf_value("the") == "7.73"
    assert variants._zipf_table == table  # past the searches, the dict


def test_foreign_word_letters_are_wordfreqs() -> None:
    # A sample of the shipped table against the installed wordfreq: each letter in its case says
    # how common some word with that key is in that language (bench/build_foreign_words.py).
    from watchers.rules.text import key
    from watchers.rules.variants import (
        FOREIGN_LANGS,
        FOREIGN_TERM_ZIPF,
        FOREIGN_WORD_ZIPF,
        _load_foreign_words,
    )

    table = _load_foreign_words()
    assert len(table) > 50_000
    rows = random.Random(7).sample(sorted(table.items()), 100)
    rows += [(k, table[k]) for k in ("putain", "trump", "bretagne", "brittany")]
    wanted = {k for k, _ in rows}
    for lang, letter in FOREIGN_LANGS.items():
        # The highest zipf value of a word with each sampled key, among the words common
        # enough to count (a frequency from about FOREIGN_WORD_ZIPF up, read before the key).
        best: dict[str, float] = {}
        floor = 10 ** (FOREIGN_WORD_ZIPF - 9.01)
        for w, f in wordfreq.get_frequency_dict(lang, wordlist="best").items():
            if f >= floor and w.isalpha() and (k := key(w)) in wanted:
                best[k] = max(best.get(k, 0.0), wordfreq.zipf_frequency(w, lang))
        for k, letters in rows:
            z = best.get(k, 0.0)
            if letter.upper() in letters:
                assert z >= FOREIGN_TERM_ZIPF, (k, lang, z)
            elif letter in letters:
                assert FOREIGN_WORD_ZIPF <= z < FOREIGN_TERM_ZIPF, (k, lang, z)
            else:
                # Left out: not common as a term there (a key kept as a term only leaves out
                # the languages where it is a word and no more).
                assert z < FOREIGN_TERM_ZIPF, (k, lang, z)
