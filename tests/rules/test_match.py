"""Matching semantics: what fires, and the evidence each match carries."""

from __future__ import annotations

import pytest

from watchers.models import Article, Match
from watchers.rules import (
    DEFAULT_THRESHOLD,
    QuerySyntaxError,
    Rule,
    RuleSet,
    explain,
    match_query,
)

ARTICLE = Article(
    title="Kiev talks on Donbass stall as Russia's troops mass",
    text=(
        "Russia has amassed over 100,000 troops near the Ukrainian border, officials said. "
        "Cyber-attacks hit Kyiv on Friday. Zelenskiy said new sanctoins would follow, and NATO "
        "expansion was again on the table. The football match went ahead."
    ),
)


def m(query: str, article: Article = ARTICLE, **kw: object) -> Match | None:
    return match_query(query, article, **kw)  # type: ignore[arg-type]


def assert_spans_valid(match: Match, article: Article) -> None:
    for h in match.hits:
        assert article.field(h.field)[h.start : h.end] == h.text
        assert 0 <= h.score <= 100


@pytest.mark.parametrize(
    "query",
    [
        "troops",
        "troop",
        "TROOPS",
        "russia",
        "cyberattack",
        "cyber-attack",
        "attack",
        "ukrainian",
        '"security guarantees" OR "nato expansion"',
        '"amassed troops"~3',
        '"troops amassed"~3',
        "sanctions~ AND (russia OR moscow)",
        "talks NOT cricket",
        "talks -cricket",
        "mobili* OR amass*",
        "kyiv",
        "kyiv~",
        "kyiv~90",
        "donbas~",
        "zelensky~",
        "troops NEAR/5 border",
        "border NEAR/5 troops",
        "title:talks",
        "text:ukrainian",
        "/1,?00,?000 (troops|soldiers)/",
        "/KYIV/",
        "100,000",
        "100000",
    ],
)
def test_matches(query: str) -> None:
    found = m(query)
    assert found is not None, query
    assert found.hits, query
    assert_spans_valid(found, ARTICLE)


@pytest.mark.parametrize(
    "query",
    [
        "soldiers",
        "talks NOT football",
        "talks -football",
        '"troops amassed"',
        '"amassed troops"~1',
        "troops NEAR/2 border",
        "title:ukrainian",
        "text:donbass",
        "prussia~",
        "stalks~ AND NOT talks",
        "news",
        "sanctions",
        "mobilis*",
        "/\\bsoldiers\\b/",
        "ukraine",
    ],
)
def test_does_not_match(query: str) -> None:
    assert m(query) is None, query


def test_evidence_kinds_variants_and_scores() -> None:
    found = m("kyiv~ OR sanctions~ OR amass* OR /1,?00,?000/ OR donbas")
    assert found is not None
    by_text = {h.text: h for h in found.hits}
    assert by_text["Kiev"].kind == "alias" and by_text["Kiev"].variant == "kiev"
    assert by_text["Kyiv"].kind == "exact" and by_text["Kyiv"].score == 100
    assert by_text["sanctoins"].kind == "fuzzy" and 85 <= by_text["sanctoins"].score < 100
    assert by_text["amassed"].kind == "prefix"
    assert by_text["100,000"].kind == "regex"
    assert by_text["Donbass"].kind == "alias"
    assert_spans_valid(found, ARTICLE)


def test_not_branches_give_no_evidence() -> None:
    found = m("talks NOT (football AND cricket)")
    assert found is not None
    assert {h.term for h in found.hits} == {"talks"}


def test_phrase_hit_spans_the_phrase() -> None:
    found = m('"nato expansion"')
    assert found is not None
    assert [h.text for h in found.hits] == ["NATO\nexpansion".replace("\n", " ")]


def test_fuzzy_inside_phrase() -> None:
    found = m('"kyiv~ talks"')
    assert found is not None
    (hit,) = found.hits
    assert hit.text == "Kiev talks" and hit.kind == "alias"


def test_title_hits_score_higher() -> None:
    title = m("title:talks")
    text = m("text:ukrainian")
    assert title is not None and text is not None
    assert title.score > text.score


def test_highlights_and_article_id() -> None:
    found = m("troops")
    assert found is not None
    assert found.article_id == ARTICLE.id
    assert {(h.field, h.text) for h in found.highlights} == {
        ("title", "troops"),
        ("text", "troops"),
    }


def test_user_aliases_extend_the_table() -> None:
    art = Article(title="Talks in Kyiv and Bakhmut", text="Artemovsk was renamed.")
    plain = match_query("artemovsk", art)
    assert plain is not None and {h.text for h in plain.hits} == {"Artemovsk"}
    found = match_query("artemovsk", art, aliases={"bakhmut": ["artemovsk"]})
    assert found is not None
    assert {h.text for h in found.hits} == {"Bakhmut", "Artemovsk"}


def test_threshold_applies_to_plain_tilde() -> None:
    assert m("sanctions~") is not None
    assert m("sanctions~", threshold=95) is None
    assert m("sanctions~80", threshold=99) is not None


def test_regex_cannot_hang() -> None:
    art = Article(title="x", text="a" * 40 + "!")
    assert match_query("x OR /(a+)+$/", art) is not None
    assert match_query("/(a|a)+b/", art) is None


def test_ruleset_api() -> None:
    rules = RuleSet.from_queries(
        {"troops": "troops NEAR/5 border", "kyiv": "kyiv~", "football": "cricket"}
    )
    assert rules.names == ["football", "kyiv", "troops"]
    assert len(rules) == 3
    found = rules.match(ARTICLE)
    assert [x.rule for x in found] == ["kyiv", "troops"]
    assert rules.match_one("kyiv", ARTICLE) == found[0]
    assert rules.match_one("football", ARTICLE) is None
    smaller = rules.without("kyiv")
    assert smaller.names == ["football", "troops"] and len(rules) == 3
    bigger = smaller.with_rule(Rule(name="a", query="zelensky~"))
    assert bigger.names == ["a", "football", "troops"]
    with pytest.raises(KeyError):
        rules.without("nope")
    with pytest.raises(QuerySyntaxError):
        RuleSet.from_queries({"bad": "sanctions AND"})
    with pytest.raises(ValueError, match="duplicate"):
        RuleSet([Rule("a", "x"), Rule("a", "y")])
    assert DEFAULT_THRESHOLD == 85


def test_rule_fields_limit_unfielded_terms() -> None:
    rules = RuleSet(
        [Rule("t", "troops", fields=("title",)), Rule("x", "border", fields=("title",))]
    )
    found = rules.match(ARTICLE)
    assert [x.rule for x in found] == ["t"]
    assert {h.field for h in found[0].hits} == {"title"}


def test_source_and_url_fields() -> None:
    art = Article(title="x", text="y", source="bbc-world", url="https://example.org/kyiv-news")
    assert match_query("url:kyiv", art) is not None
    assert match_query("source:bbc", art) is not None
    assert match_query("kyiv", art) is None


def test_compiled_equals_naive_on_example() -> None:
    rules = RuleSet.from_queries(
        {
            f"r{i}": q
            for i, q in enumerate(
                [
                    "troops",
                    "kyiv~",
                    '"nato expansion"',
                    "/100/",
                    "talks -football",
                    "zelensky~ NEAR/3 said",
                ]
            )
        }
    )
    assert rules.match(ARTICLE) == rules.match_naive(ARTICLE)


def test_explain_lines() -> None:
    found = m("kyiv~")
    assert found is not None
    lines = explain(found)
    assert any("alias (kiev)" in line and "title[0:4]" in line for line in lines)


def test_closed_compounds_written_apart() -> None:
    art = Article(
        title="A cyber attack, then a cease fire",
        text="The cyber-attack was a cyberattack. Cyber, attack. Cyber attacks.",
    )
    found = match_query("cyberattack", art)
    assert found is not None
    assert [h.text for h in found.hits] == [
        "cyber attack", "cyber-attack", "cyberattack", "Cyber attacks",
    ]  # fmt: skip
    assert found.hits[0].variant == "cyber attack"
    assert match_query("ceasefire", art) is not None
    assert match_query("border", Article(title="bor der")) is None
    rules = RuleSet.from_queries({"c": "cyberattack", "s": "shelling"})
    assert rules.match(art) == rules.match_naive(art)
