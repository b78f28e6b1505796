"""Number marks: what a regex such as ``/\\d+ killed/`` needs (a digit, whitespace, a word) is
kept in the places index as a mark, and every text the regex matches holds the mark its query
asks for."""

from __future__ import annotations

import json
from unittest.mock import patch

import pytest
import regex
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.conftest import corpora_or_skip
from watchers.rules import text as _text
from watchers.rules.index import number_runs
from watchers.rules.lookup import MARK, MARK_CHARS, number_marks, places_of
from watchers.rules.text import KEYS_VERSION
from watchers.store.sqlite.schema import MARKS_KEYS_VERSION

FLAGS = regex.IGNORECASE | regex.V0


def test_patterns_that_need_a_number_before_a_word_give_its_runs() -> None:
    assert number_runs(r"\d+ killed") == ["killed"]
    assert number_runs(r"\d+\s+(dead|hurt)") == ["dead", "hurt"]
    assert number_runs(r"killed \d+ people") == ["people"]
    assert number_runs(r"[0-9]+ Making") == ["making"]
    assert number_runs(r"\d+ killed|\d+ dead") == ["dead", "killed"]
    assert number_runs(r"(\d+) troops") == ["troops"]
    assert number_runs(r"\d+(?:,\d{3})* troops") == ["troops"]
    assert number_runs(r"(?:\d+|\d+\.\d+) troops") == ["troops"]
    assert number_runs(r"\d+[ \t]+troops") == ["troops"]
    assert number_runs(r"\d{2,}  +km") == ["km"]
    # the best of several: the longest shortest run
    assert number_runs(r"\d+ to \d+ people") == ["people"]


def test_patterns_a_match_may_fulfil_otherwise_give_none() -> None:
    for pattern in (r"\d+ ?killed",  # the space may be missing
                    r"\d+-year",  # no whitespace
                    r"\d*\s+troops", r"(\d*) troops", r"(?:\d+|many) troops",  # no digit
                    r"\D+ troops", r"[^\d] troops", r"\w+ troops",
                    r"\d+ (?:people )?killed",  # the word may be another
                    r"\d+ k",  # too short to narrow
                    r"\d+ \w+", r"\d+ ſtate",  # no ASCII run (ſ is an s to the engine)
                    r"killed", r"(", r"\d+ x{e<=1}"):
        assert number_runs(pattern) is None, pattern


def test_marks_are_what_follows_a_digit_and_whitespace_folded() -> None:
    assert number_marks("In 2022 Russia sent 100,000 troops; 7\u00a0MAKING 8\t\tx, 9 -- 10 ab") \
        == {MARK + w for w in ("russia", "troops", "making", "x", "ab")}
    # letters the engine reads as ASCII ones under IGNORECASE
    assert number_marks("5 \u212aillers, 3 \u0130stanbul, 4 \u017ftate") == {
        MARK + "killers", MARK + "istanbul", MARK + "state"}
    # at most MARK_CHARS letters; a run that starts with none gives nothing
    assert number_marks("12 " + "a" * 40) == {MARK + "a" * MARK_CHARS}
    assert number_marks("12 ---- and 3 \u00e9t\u00e9") == set()
    # a digit Python's data may not know yet, but the regex engine's does
    for marks in (number_marks, _pure_marks):
        assert marks("\U00010d41 garay \U0001f600 emoji") == {MARK + "garay"}


def test_every_digit_space_and_letter_the_regex_engine_reads_is_a_mark() -> None:
    # The marks are a superset only if they read the text as the installed regex engine does:
    # each character it takes for a digit, whitespace, or (case aside) an ASCII letter or
    # digit. Checked over all of Unicode, so a newer engine that reads more fails here.
    every = "".join(chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF)
    digits = regex.findall(r"\d", every, FLAGS)
    spaces = regex.findall(r"\s", every, FLAGS)
    letters = regex.findall(r"[^\x00-\x7f]", every)
    assert len(digits) > 600 and len(spaces) > 20
    for ch in digits:
        assert number_marks(f"{ch} abc") == {MARK + "abc"}, hex(ord(ch))
    for ch in spaces:
        assert MARK + "abc" in number_marks(f"5{ch}abc"), hex(ord(ch))
    alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
    like = regex.findall(f"[{alnum}]", "".join(letters), FLAGS)
    assert {"\u212a", "\u017f"} <= set(like)
    for ch in like:
        a = next(a for a in alnum if regex.fullmatch(a, ch, FLAGS))
        assert number_marks(f"5 {ch}bc") == {MARK + a + "bc"}, hex(ord(ch))


WORDS = ["killed", "Troops", "dead", "people", "km", "makings", "\u212aIlled", "\u017ftate"]
SPACES = [" ", "  ", "\t", "\n", "\u00a0", "\u2009", "\u3000", "\x1c", "\u0085"]
PIECES = st.sampled_from(
    ["1", "23", "\u0663", "\U00010d41", ",", ".", "-", "x", "a1", "(", "\u00ad", "\u00e9",
     *SPACES, *WORDS])
SHAPES = [r"\d+ {w}", r"\d+\s+{w}", r"(\d+) ({w}|{v})", r"\d\s\s*{w}", r"[0-9]+ {w}",
          r"at \d+ {w}"]


@settings(max_examples=400, deadline=None)
@given(text=st.lists(PIECES, max_size=30).map("".join),
       shape=st.sampled_from(SHAPES),
       w=st.sampled_from(["killed", "troops", "dead", "people", "km", "making", "kil", "state"]),
       v=st.sampled_from(["dead", "hurt"]),
       title=st.booleans())
def test_a_text_a_number_regex_matches_holds_the_mark_its_query_asks_for(
        text: str, shape: str, w: str, v: str, title: bool) -> None:
    pattern = shape.format(w=w, v=v)
    runs = number_runs(pattern)
    assert runs
    if regex.search(pattern, text, FLAGS) is None:
        return
    row = places_of(text, "") if title else places_of("", text)
    marks = set((row[2] if title else row[3]).split())
    # FTS5's prefix query "№run"* finds a mark that begins so
    assert any(m.startswith(MARK + r[:MARK_CHARS]) for r in runs for m in marks), (
        pattern, text, marks)


def test_the_keys_that_hold_marks_are_the_engines() -> None:
    assert KEYS_VERSION >= MARKS_KEYS_VERSION
    assert MARK + "killed" in places_of("", "Two days, 14 killed.")[3].split()


def _pure_marks(text: str) -> set[str]:
    with patch.object(_text, "digit_gaps", None):  # the path an install without C takes
        return number_marks(text)


ODD = st.sampled_from(["1", "\u0663", "\U00010d41", "\U0001d173", "\U0001f600", "\U0001ffff",
                       "\U00020000", "\ufffe", " ", "\t", "\u2028", "\x1c", "\u00a0", "K",
                       "\u0130", "\u017f", "\u212a", "a", "-", "\u00e9", "\x00"])


@pytest.mark.skipif(_text.digit_gaps is None, reason="the C extension is not built")
@settings(max_examples=500, deadline=None)
@given(text=st.lists(ODD | st.characters(), max_size=40).map("".join))
@example("\U0001f600 emoji, 5 x \U0001d173 y \U00010d41\u2028z \ufffe w \U0001ffff v")
def test_the_c_scan_finds_the_marks_of_the_pure_path(text: str) -> None:
    # A store written by one process and changed by another forgets a row by giving its
    # places again: both paths must make the same.
    assert number_marks(text) == _pure_marks(text)


@pytest.mark.skipif(_text.digit_gaps is None, reason="the C extension is not built")
def test_the_c_scan_finds_the_marks_of_the_pure_path_in_real_text() -> None:
    corpora = corpora_or_skip()
    for name in ("bbc_news_2004_2005.jsonl", "web_scraped_2026_ukraine_world.jsonl"):
        with (corpora / "articles" / name).open(encoding="utf-8") as f:
            for i, line in enumerate(f):
                if i >= 300:
                    break
                text = json.loads(line)["text"]
                assert number_marks(text) == _pure_marks(text)


def test_stored_text_is_indexed_as_it_is_read() -> None:
    # A rebuild, a copy or an upgrade indexes the stored columns; a row written before articles
    # were made readable holds what reading removes, on either backend.
    from watchers.rules.lookup import index_terms, lookup_terms

    raw, read = "Pu\u00adtin: 14\u00ad killed,\x00 en\u200bvoys", "Putin: 14 killed,  envoys"
    assert index_terms(raw) == index_terms(read) == lookup_terms(raw) == lookup_terms(read)
    assert places_of(raw, raw) == places_of(read, read)
    assert MARK + "killed" in places_of("", raw)[3].split()
