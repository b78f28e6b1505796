"""What the alias table's ``[distinct]`` keeps apart holds for every spelling of the name: a
rule written ``zelenskyy~`` (the spelling Kyiv's own statements use) refuses his wife as
``zelensky~`` does, and a rule for her refuses him however either is spelt."""

from __future__ import annotations

import pytest

from watchers.models import Article
from watchers.rules import Rule, RuleSet, match_query, shipped_aliases

WIVES = ("Zelenska", "Zelenskaya", "Olena Zelenska's", "Зеленська", "Зеленская")
HUSBANDS = ("Zelensky", "Zelenskyy", "Zelenskiy", "Selenskyj", "Зеленський", "Зеленский")


def _taken(query: str, title: str) -> bool:
    return match_query(query, Article(title=title)) is not None


@pytest.mark.parametrize("query", ["zelensky~", "zelenskyy~", "zelenskiy~", "selenskyj~",
                                   "зеленський~", "зеленский~"])
def test_every_spelling_of_a_name_refuses_the_names_it_is_distinct_from(query: str) -> None:
    assert [w for w in WIVES if _taken(query, w)] == []
    # The spellings are still taken: only the distinct names are refused.
    assert [h for h in HUSBANDS if not _taken(query, h)] == []


@pytest.mark.parametrize("query", ["zelenska~", "zelenskaya~"])
def test_a_distinct_name_refuses_every_spelling_of_the_other(query: str) -> None:
    assert [h for h in HUSBANDS if _taken(query, h)] == []
    assert _taken(query, "Zelenska")


def test_navalnys_widow_and_he_are_kept_apart_in_every_spelling() -> None:
    assert not _taken("navalnyy~", "Yulia Navalnaya")
    assert not _taken("navalnyy~", "Nawalna")
    assert not _taken("navalnaya~", "Alexei Navalnyy")
    assert not _taken("navalnaya~", "Навальный")
    assert _taken("navalnyy~", "Навальный")
    assert _taken("navalnaya~", "Navalnaya")


def test_a_compiled_rule_set_keeps_them_apart_as_the_one_off_match_does() -> None:
    rules = RuleSet([Rule(name="president", query="zelenskyy~"),
                     Rule(name="first-lady", query="zelenska~")])
    wife = Article(id="w", title="Olena Zelenska opens a school in Kyiv")
    husband = Article(id="h", title="Zelenskyy meets envoys in Geneva")
    assert [m.rule for m in rules.match(wife)] == ["first-lady"]
    assert [m.rule for m in rules.match(husband)] == ["president"]


def test_a_configs_spelling_of_a_distinct_name_refuses_it_too() -> None:
    """A config's ``[aliases]`` joining a spelling to the group brings the group's refusals."""
    aliases = shipped_aliases({"zelensky": ["zelenskyj"]})
    m = match_query("zelenskyj~", Article(title="Zelenska"), aliases=aliases)
    assert m is None
    assert match_query("zelenskyj~", Article(title="Zelenskyy"), aliases=aliases) is not None
