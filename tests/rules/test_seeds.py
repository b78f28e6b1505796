"""The sample seeds (Russia-Ukraine, January 2022) through real rules."""

from __future__ import annotations

from watchers.rules import RuleSet

from ._corpus import seed_articles


def test_donbas_fuzzy_finds_the_donbass_spelling() -> None:
    rules = RuleSet.from_queries({"donbas": "donbas~"})
    hits = {a.id: {h.text for m in rules.match(a) for h in m.hits} for a in seed_articles()}
    spelled_donbass = {i for i, texts in hits.items() if "Donbass" in texts}
    assert len(spelled_donbass) >= 2
    assert any("Donbas" in texts for texts in hits.values())


def test_seed_rules_fire_with_valid_spans() -> None:
    rules = RuleSet.from_queries(
        {
            "troops": 'troops OR soldiers OR "military exercise"',
            "nato": '"security guarantees" OR (nato NEAR/10 expansion)',
            "sanctions": "sanctions AND (russia OR moscow)",
            "putin": "title:putin",
            "numbers": "/1,?00,?000 (troops|soldiers)/",
        }
    )
    fired: dict[str, int] = {}
    for article in seed_articles():
        for m in rules.match(article):
            fired[m.rule] = fired.get(m.rule, 0) + 1
            for h in m.hits:
                assert article.field(h.field)[h.start : h.end] == h.text
        assert rules.match(article) == rules.match_naive(article)
    assert set(fired) == {"troops", "nato", "sanctions", "putin", "numbers"}
