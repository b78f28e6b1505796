"""The compiled index: anchors, regex screening, and that it only ever saves work."""

from __future__ import annotations

import pytest

from watchers.models import Article
from watchers.rules import Rule, RuleSet, parse
from watchers.rules.index import RuleIndex, _anchors, required_literals
from watchers.rules.matcher import Analysis
from watchers.rules.variants import shipped_aliases

ALIASES = shipped_aliases()


def anchors(query: str) -> set[tuple[object, ...]] | None:
    found = _anchors(parse(query), 85, ALIASES)
    return None if found is None else set(found[0])


def test_and_anchors_on_its_rarest_positive_child() -> None:
    assert anchors("the AND zaporizhzhia") == {("key", k) for k in ALIASES.of("zaporizhzhia")}
    assert anchors("said AND shelling -the") == {("key", "shelling")}


def test_or_anchors_on_every_child_and_not_never() -> None:
    assert anchors("troops OR soldiers") == {("key", "troop"), ("key", "soldier")}
    assert anchors("troops OR (soldiers -army)") == {("key", "troop"), ("key", "soldier")}


def test_other_anchor_kinds() -> None:
    assert anchors("mobili*") == {("prefix", "mobili")}
    assert anchors("kyiv~90") == {("fuzzy", "kyiv", 90.0)}
    assert anchors('"security guarantees"') == {("key", "guarantee")}
    assert anchors("/abc/") == {("regex", "abc")}


@pytest.mark.parametrize(
    ("pattern", "literals"),
    [
        ("1,?00,?000 (troops|soldiers)", ["soldiers", "troops"]),
        (r"\bkyiv\w*", ["kyiv"]),
        ("Putin said", ["putin said"]),
        ("foo|bar", ["bar", "foo"]),
        ("(a+)+$", None),
        (r"\d{3}", None),
        (r"(?:kyiv){e<=1}", None),  # the regex module's fuzzy matching: not screened
        (r"\p{Cyrillic}+", None),
    ],
)
def test_required_literals(pattern: str, literals: list[str] | None) -> None:
    assert required_literals(pattern) == literals


def test_unrelated_rules_are_not_candidates() -> None:
    rules = RuleSet.from_queries(
        {"a": "troops", "b": "sanctions AND russia", "c": "talks -football", "d": "/crypto/"}
    )
    index = RuleIndex(rules.rules, rules.aliases)
    candidates, _ = index.candidates(Analysis(Article(title="Troops at the border")))
    assert [r.name for r in candidates] == ["a"]


def test_fields_outside_title_and_text_are_indexed() -> None:
    rules = RuleSet([Rule("u", "url:kyiv"), Rule("s", "source:bbc AND troops")])
    art = Article(title="Troops", text="", source="bbc", url="https://example.org/kyiv/1")
    assert [m.rule for m in rules.match(art)] == ["s", "u"]
    assert rules.match(art) == rules.match_naive(art)


def test_fuzzy_terms_inside_not_are_known_to_the_index() -> None:
    rules = RuleSet.from_queries({"r": "talks -kyiv~"})
    art = Article(title="Talks in Kiev")
    assert rules.match(art) == rules.match_naive(art) == []


def test_rebuilding_keeps_results() -> None:
    rules = RuleSet.from_queries({"a": "kyiv~", "b": "troops"})
    art = Article(title="Kiev troops")
    grown = rules.with_rule(Rule("c", "/kie./"))
    assert [m.rule for m in grown.match(art)] == ["a", "b", "c"]
    assert [m.rule for m in grown.without("a").match(art)] == ["b", "c"]


def test_regex_screen_without_hyperscan(monkeypatch: pytest.MonkeyPatch) -> None:
    import watchers.rules.index as index_module

    monkeypatch.setattr(index_module, "_hyperscan_literals", lambda literals: None)
    rules = RuleSet.from_queries({"a": "/troops? (massed|gathered)/", "b": "/crypto/"})
    art = Article(title="x", text="Troops massed near the border.")
    assert [m.rule for m in rules.match(art)] == ["a"]
    assert rules.match(art) == rules.match_naive(art)


def test_regex_screen_maps_special_case_folds() -> None:
    rules = RuleSet.from_queries({"a": "/strike/"})
    art = Article(title="x", text="a \u017ftrike today")  # long s matches s under IGNORECASE
    assert rules.match(art) == rules.match_naive(art)


def test_fuzzy_cache_overflow_keeps_results(monkeypatch: pytest.MonkeyPatch) -> None:
    import watchers.rules.index as index_module

    monkeypatch.setattr(index_module, "_CACHE_LIMIT", 3)
    rules = RuleSet.from_queries({"k": "kyiv~", "s": "sanctions~"})
    for text in ("Kiev and more words here", "new sanctoins on Kyiv today", "Kiev again"):
        art = Article(title=text)
        assert rules.match(art) == rules.match_naive(art)
        assert rules.match(art)
