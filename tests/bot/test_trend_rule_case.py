"""/trend names a rule in any case, even when the name as typed is no valid query. The real
discord.py against the emulator, every request checked against Discord's OpenAPI spec."""

from __future__ import annotations

import pytest

from tests.bot.conftest import Running

# Names that are query syntax in capitals (OR, NEAR) or as typed (a leading '-').
RULES = {"rules": [{"name": "or", "query": "troops"},
                   {"name": "near", "query": "soldiers"},
                   {"name": "-ops", "query": "kyiv~"}]}


@pytest.mark.parametrize("running", [RULES], indirect=True)
@pytest.mark.parametrize(("typed", "rule"), [("OR", "or"), ("NEAR", "near"), ("-OPS", "-ops"),
                                             ("or", "or")])
async def test_trend_of_a_rule_in_another_case_that_is_no_query_charts_the_rule(
        running: Running, typed: str, rule: str) -> None:
    """Before, /trend checked the name only against the rules' exact names and else parsed it
    as a query: "/trend OR" beside the rule or was refused privately with "Query error:
    expected a term, found 'OR' at column 1", though /mute and /recent took it. Now the rule
    is resolved in any case first, and the chart of the rule is the public answer."""
    answer = await (await running.emu.send_interaction(
        "trend", {"query_or_rule": typed, "period": "1d"})).final_message(timeout=30)
    assert not answer.ephemeral, answer.content
    assert "Query error" not in answer.content
    assert answer.content.replace("\\", "").startswith(f"**rule {rule}**"), answer.content
    assert len(answer.attachments) == 1
    assert running.emu.validate_all() == []


@pytest.mark.parametrize("running", [RULES], indirect=True)
async def test_trend_of_a_bad_query_naming_no_rule_is_still_refused(running: Running) -> None:
    """A text that names no rule in any case is still parsed as a query, and its syntax
    error is answered privately with the column."""
    answer = await (await running.emu.send_interaction(
        "trend", {"query_or_rule": "NEAR troops"})).final_message(timeout=30)
    assert answer.ephemeral and "Query error" in answer.content, answer.content
    assert "column" in answer.content and not answer.attachments
    assert running.emu.validate_all() == []
