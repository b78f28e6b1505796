"""Compiling leaves the garbage collector as it found it, and freezes large rule sets."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from watchers.models import Article
from watchers.rules import Rule, RuleSet
from watchers.rules.ruleset import FREEZE_FROM


@pytest.fixture
def thawed() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.enable()


def _rules(n: int) -> list[Rule]:
    return [Rule(f"r{i}", f"word{i}") for i in range(n)]


def test_a_large_rule_set_is_frozen_and_gc_stays_on(thawed: None) -> None:
    rs = RuleSet(_rules(FREEZE_FROM))
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0
    assert [m.rule for m in rs.match(Article(title="word7 and word70"))] == ["r7", "r70"]


def test_a_small_rule_set_is_not_frozen(thawed: None) -> None:
    RuleSet(_rules(10))
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_gc_left_off_when_the_application_turned_it_off(thawed: None) -> None:
    gc.disable()
    RuleSet(_rules(FREEZE_FROM))
    assert not gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_a_large_fuzzy_rule_set_freezes_the_word_tables_it_reads(
    thawed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Judging a fuzzy candidate reads the lexicon and wordfreq's list. Loaded by the first
    article after the freeze, their 400,000 entries would be walked by every full collection."""
    import wordfreq

    from watchers.rules import variants

    monkeypatch.setattr(variants, "_lexicon", None)
    wordfreq.get_frequency_list.cache_clear()
    wordfreq.get_frequency_dict.cache_clear()
    rs = RuleSet([*_rules(FREEZE_FROM - 1), Rule("fuzzy", "kyiv~")])
    words, names = variants._load_lexicon()
    english = wordfreq.get_frequency_list("en", "best")  # as wordfreq asks for it
    tracked = {id(o) for o in gc.get_objects()}  # the permanent generation is not listed
    assert not {id(words), id(names), id(english), id(english[-1])} & tracked
    assert [m.rule for m in rs.match(Article(title="Kyiv and Kiew"))] == ["fuzzy"]
