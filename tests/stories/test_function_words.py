"""Other languages' commonest words weigh nothing in a story's signature, as English's do.

English rates a word it never writes as rare as a name, so "στην" (in the) or "что" (that) gave
two reports of two events in one place enough shared weight to be one story. The table
(``watchers/rules/data/function_words.txt``, built by bench/build_function_words.py) holds the
words of other scripts that wordfreq rates as common as English's weightless ones; English words
keep their weights, and the labelled English set scores as before (``make eval``)."""

from __future__ import annotations

import importlib
import sys
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import REPO
from watchers.stories import StoryInput, cluster
from watchers.stories.features import _function_words, term_weight

T0 = datetime(2022, 1, 20, 9, 0, tzinfo=UTC)


def test_the_shipped_table_is_what_the_build_makes_from_the_installed_wordfreq() -> None:
    pytest.importorskip("wordfreq")
    sys.path.insert(0, str(REPO / "bench"))
    try:
        build = importlib.import_module("build_function_words").build
    finally:
        sys.path.remove(str(REPO / "bench"))
    assert build() == sorted(_function_words()), (
        "rebuild the table: python bench/build_function_words.py")


def test_other_scripts_common_words_weigh_nothing_and_english_words_keep_their_weight() -> None:
    for word in ("στην", "και", "что", "на", "та", "у", "في", "على", "של", "את"):
        assert term_weight(word) == 0.0, word
    # English's own weights: names, and words other languages also write in Latin letters
    for word, weight in (("putin", 4.37), ("nato", 4.49), ("die", 3.43), ("les", 4.4),
                         ("kyiv", 5.42)):
        assert term_weight(word) == weight, word
    # a rare word of another script still weighs as a name does
    assert term_weight("землетрясение") > 4


def stories(*titles: str) -> list[list[str]]:
    items = [StoryInput(f"a{i}", t, "", None, T0 + timedelta(minutes=10 * i), f"outlet{i}")
             for i, t in enumerate(titles)]
    return sorted(sorted(s.ids) for s in cluster(items))


@pytest.mark.parametrize(("lang", "one", "other"), [
    ("ru", "Взрыв на заводе в Казани", "Пожар на рынке в Казани"),
    ("el", "Έκρηξη σε εργοστάσιο στην Πάτρα", "Φωτιά σε αγορά στην Πάτρα"),
    ("uk", "Вибух на заводі у місті Дніпро", "Пожежа на ринку у місті Дніпро"),
])
def test_two_events_in_one_place_stay_two_stories(lang: str, one: str, other: str) -> None:
    assert stories(one, other) == [["a0"], ["a1"]], lang


def test_one_event_told_twice_is_still_one_story() -> None:
    assert stories("Взрыв на заводе в Казани, есть пострадавшие",
                   "В Казани на заводе произошел взрыв") == [["a0", "a1"]]
