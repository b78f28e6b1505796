"""Matches and hits are built without pydantic validation; they must equal validated ones."""

from __future__ import annotations

import pydantic
import pytest

from watchers.models import Article, Hit, Match
from watchers.rules import Rule, RuleSet, match_query

ARTICLE = Article(
    title="Kiev talks on Donbass stall as Russia's troops mass",
    text=(
        "Russia has amassed over 100,000 troops near the Ukrainian border. Cyber-attacks hit "
        "Kyiv on Friday. Zelenskiy said new sanctoins would follow; mobilisation continues."
    ),
)

QUERIES = [
    "troops",  # exact
    "kyiv",  # alias
    "sanctions~",  # fuzzy
    "mobili*",  # prefix
    '"russia has amassed"',  # phrase
    "troops NEAR/5 border",  # near
    "/cyber.attacks?/",  # regex
    "troops -football",  # the NOT adds no evidence
    "cyberattack OR (zelensky AND -football)",
]


def _same(built: pydantic.BaseModel, validated: pydantic.BaseModel) -> None:
    assert built == validated
    assert repr(built) == repr(validated)
    assert built.model_dump_json() == validated.model_dump_json()
    assert built.model_fields_set == validated.model_fields_set
    assert built.__pydantic_extra__ == validated.__pydantic_extra__
    assert built.__pydantic_private__ == validated.__pydantic_private__
    assert hash(built) == hash(validated)


@pytest.mark.parametrize("query", QUERIES)
def test_built_match_equals_validated(query: str) -> None:
    m = match_query(query, ARTICLE)
    assert m is not None
    assert type(m.score) is float
    _same(m, Match.model_validate(m.model_dump()))
    for hit in m.hits:
        _same(hit, Hit.model_validate(hit.model_dump()))


def test_built_models_stay_frozen() -> None:
    m = match_query("troops", ARTICLE)
    assert m is not None
    with pytest.raises(pydantic.ValidationError):
        m.score = 1.0  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        m.hits[0].start = 0  # type: ignore[misc]


def test_compiled_matches_equal_validated() -> None:
    rs = RuleSet(Rule(f"r{i}", q) for i, q in enumerate(QUERIES))
    found = rs.match(ARTICLE)
    assert len(found) == len(QUERIES)
    for m in found:
        _same(m, Match.model_validate(m.model_dump()))


def test_a_name_that_is_not_a_string_is_still_refused() -> None:
    with pytest.raises(pydantic.ValidationError):
        match_query("troops", ARTICLE, name=5)  # type: ignore[arg-type]
