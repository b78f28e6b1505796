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



def test_the_word_tables_fuzzy_judging_reads_are_left_out_of_the_collector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Judging a fuzzy candidate reads the lexicon (80,000 words) and wordfreq's table
    (300,000). Held in containers the collector tracks, they would be walked by every full
    collection of a process that lives for months, whatever the size of its rule set."""
    import wordfreq

    from watchers.rules import variants

    monkeypatch.setattr(variants, "_lexicon", None)
    monkeypatch.setattr(variants, "_zipf_impl", None)
    variants._zipf.cache_clear()
    rs = RuleSet([Rule("fuzzy", "kyiv~"), Rule("other", "kremlin~")])
    # Gremlin is a word in its own right: refused by the lexicon or wordfreq, read here.
    found = rs.match(Article(title="Kyiv and Kiew", text="a gremlin in the Kremlin"))
    assert [m.rule for m in found] == ["fuzzy", "other"]
    assert {h.text for m in found for h in m.hits} == {"Kyiv", "Kiew", "Kremlin"}
    assert variants._zipf("2nd") > 4  # not a plain word: asked of wordfreq itself
    assert variants._lexicon is not None and variants._zipf_impl
    assert not any(gc.is_tracked(table) for table in variants._lexicon)
    assert not gc.is_tracked(wordfreq.get_frequency_dict("en", "best"))
    assert wordfreq.get_frequency_list.cache_info().currsize == 0  # the lists it came from
    assert variants.is_known_word("gremlin") and not variants.is_known_word("kiew")


def test_a_large_fuzzy_rule_set_loads_wordfreq_before_it_freezes(
    thawed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """wordfreq's modules, loaded by the first article that asks, would be walked by every
    later full collection: a large rule set with a fuzzy term loads them first, so they are
    frozen with it; one without leaves wordfreq alone."""
    from watchers.rules import variants

    monkeypatch.setattr(variants, "_zipf_impl", None)
    # Plain a-z words (the shipped table knows them; a word with a digit is asked of wordfreq).
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = [f"zq{a}{b}{c}" for a in letters for b in letters for c in letters][:FREEZE_FROM]
    RuleSet([Rule(w, w) for w in words])
    assert variants._zipf_impl is None
    gc.unfreeze()
    RuleSet([*_rules(FREEZE_FROM - 1), Rule("fuzzy", "kyiv~")])
    assert variants._zipf_impl
    tracked = {id(o) for o in gc.get_objects()}  # the permanent generation is not listed
    assert id(variants._zipf_impl) not in tracked
