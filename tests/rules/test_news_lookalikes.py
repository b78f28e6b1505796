"""Look-alikes from real news text that a fuzzy term took for its name: other people and places
reported beside them (Yuganskneftegaz's "Yugansk" for Luhansk in the 2004 Yukos stories, the
Polish foreign minister Sikorski for Ukraine's commander Syrskyi, the frontline villages Zelene,
Pisky and Pokrovka in daily war reports, Kyiv's mayor Vitaliy Klitschko for Italy). The alias
table keeps them apart; the names' own spellings are still taken."""

from __future__ import annotations

import pytest

from watchers.models import Article
from watchers.rules import Rule, RuleSet, match_query

REFUSED = [
    ("luhansk~", "Yugansk"), ("lugansk~", "Yugansk's"), ("луганськ~", "Yugansk"),
    ("sikorski~", "Syrskyi"), ("sikorski~", "Syrsky"), ("sikorski~", "Сирський"),
    ("syrskyi~", "Sikorski"), ("syrsky~", "Sikorski"), ("syrskyi~", "Sikorsky"),
    ("syrskyi~", "Siverskyi"),
    ("zelensky~", "Zelene"), ("zelenskyy~", "Zelenyi"), ("zelensky~", "Zeleny"),
    ("peskov~", "Pisky"), ("peskov~", "Peski"),
    ("chernihiv~", "Mstyslav Chernov"),
    ("avdiivka~", "Nadiivka"), ("pokrovsk~", "Pokrovka"), ("pokrovsk~", "Pokrovske"),
    ("mykolaiv~", "Mykolaivka"),
    ("italy~", "Vitaliy Klitschko"), ("italy~", "Vitaly"), ("italy~", "Vitali"),
    ("seoul~", "Juul"), ("chennai~", "Ginni"), ("chennai~", "Henney"),
    ("shoigu~", "shochu"), ("kursk~", "Kuusk"), ("tehran~", "Tigrayans"),
    ("navalny~", "NavalNews"),
]  # fmt: skip

TAKEN = [
    ("luhansk~", "Lugansk"), ("luhansk~", "Луганськ"),
    ("sikorski~", "Sikorskiego"),
    ("syrskyi~", "Syrsky"), ("syrskyi~", "Syrskiy"), ("syrskyi~", "Сирський"),
    ("sikorski~", "Sikorskim"), ("zelenskyy~", "Zelensky"), ("zelensky~", "Zelenskiy"),
    ("peskov~", "Pieskow"), ("chernihiv~", "Chernigov"), ("avdiivka~", "Awdijiwka"),
    ("pokrovsk~", "Pokrowsk"), ("mykolaiv~", "Nikolaev"), ("italy~", "Italien"),
    ("seoul~", "Seul"), ("shoigu~", "Shoygu"), ("kursk~", "Koursk"),
    ("tehran~", "Teheran"), ("navalny~", "Navalnyy"),
]  # fmt: skip


@pytest.mark.parametrize(("query", "title"), REFUSED)
def test_a_name_reported_beside_another_is_not_taken_for_it(query: str, title: str) -> None:
    assert match_query(query, Article(title=title)) is None


@pytest.mark.parametrize(("query", "title"), TAKEN)
def test_the_names_own_spellings_are_still_taken(query: str, title: str) -> None:
    assert match_query(query, Article(title=title)) is not None


def test_a_business_story_about_yukos_does_not_alert_a_luhansk_rule() -> None:
    rules = RuleSet([Rule(name="luhansk", query="luhansk~"),
                     Rule(name="yukos", query="yukos")])
    story = Article(id="bbc", title="Yukos unit buyer faces loan claim",
                    text="The owners of embattled Russian oil giant Yukos are to ask the buyer "
                         "of its former production unit to pay back a $900m loan. Yugansk was "
                         "sold at auction in December.")
    assert [m.rule for m in rules.match(story)] == ["yukos"]
