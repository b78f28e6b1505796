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
