"""Every article's regexes share one time budget; a regex that runs out counts as not matching.

Budgets here are either generous (seconds, for what must match) or spent by a pattern that
backtracks for far longer than any budget, so the outcomes do not depend on the machine.
"""

from __future__ import annotations

import math

import pytest

from watchers.models import Article
from watchers.rules import MatchReport, RegexBudget, Rule, RuleSet, match_query
from watchers.rules.matcher import MAX_HITS

# (a|aa)+$ backtracks exponentially on a run of a's that ends in another letter: minutes on 60.
CATASTROPHIC = "/(a|aa)+$/"
SLOW_TEXT = "a" * 60 + "!"


def test_a_catastrophic_regex_ends_and_is_reported() -> None:
    # Rules run in name order: "a_good" before the slow one, "plain" needs no regex.
    rules = RuleSet.from_queries(
        {"bad": CATASTROPHIC, "plain": "troops", "a_good": "/troops? massed/"}, regex_budget=0.05
    )
    art = Article(title="Troops massed at the border", text=SLOW_TEXT)
    report = rules.match_report(art)
    assert isinstance(report, MatchReport)
    assert [m.rule for m in report.matches] == ["a_good", "plain"]
    assert report.over_budget == ("bad",)
    assert [m.rule for m in rules.match(art)] == ["a_good", "plain"]
    assert [m.rule for m in rules.match_naive(art)] == ["a_good", "plain"]


def test_the_budget_is_shared_by_every_rule_and_field() -> None:
    # Two slow rules: the first spends the whole budget, so the second is not even started;
    # both are reported, and neither counts as matching.
    rules = RuleSet(
        [Rule("bad1", CATASTROPHIC), Rule("bad2", "/(b|bb)+$/ OR troops")], regex_budget=0.05
    )
    art = Article(title="b" * 60 + "!", text=SLOW_TEXT)
    report = rules.match_report(art)
    assert report.matches == []
    assert report.over_budget == ("bad1", "bad2")


def test_a_rule_over_budget_still_matches_through_its_other_branches() -> None:
    rules = RuleSet.from_queries({"r": f"{CATASTROPHIC} OR troops"}, regex_budget=0.05)
    report = rules.match_report(Article(title="troops", text=SLOW_TEXT))
    assert [m.rule for m in report.matches] == ["r"]
    assert [h.kind for h in report.matches[0].hits] == ["exact"]
    assert report.over_budget == ("r",)


def test_a_normal_regex_within_a_generous_budget_matches() -> None:
    rules = RuleSet.from_queries({"n": r"/1,?00,?000 troops/"}, regex_budget=5.0)
    art = Article(title="x", text="Russia has amassed 100,000 troops. " * 200)
    report = rules.match_report(art)
    assert [m.rule for m in report.matches] == ["n"]
    # all 200 found (the score counts each), the first MAX_HITS kept as evidence
    assert report.matches[0].score == 200.0
    assert len(report.matches[0].hits) == MAX_HITS == 100
    assert report.over_budget == ()


def test_the_budget_is_per_article_not_per_rule_set() -> None:
    rules = RuleSet.from_queries({"bad": CATASTROPHIC, "n": "/troops/"}, regex_budget=0.05)
    assert rules.match_report(Article(title="x", text=SLOW_TEXT)).over_budget == ("bad",)
    fresh = rules.match_report(Article(title="troops", text="quiet"))
    assert [m.rule for m in fresh.matches] == ["n"]
    assert fresh.over_budget == ()


def test_a_call_may_override_the_rule_sets_budget() -> None:
    rules = RuleSet.from_queries({"bad": CATASTROPHIC}, regex_budget=5.0)
    report = rules.match_report(Article(title="x", text=SLOW_TEXT), regex_budget=0.05)
    assert report.over_budget == ("bad",)


def test_derived_rule_sets_keep_the_budget() -> None:
    rules = RuleSet.from_queries({"a": "x"}, regex_budget=0.25)
    assert rules.with_rule(Rule("b", "y")).regex_budget == 0.25
    assert rules.with_rule(Rule("b", "y")).without("a").regex_budget == 0.25


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
def test_a_budget_that_is_not_positive_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="regex budget"):
        RuleSet([], regex_budget=bad)
    with pytest.raises(ValueError, match="regex budget"):
        RegexBudget(bad)


def test_match_query_takes_a_budget_shared_across_calls() -> None:
    budget = RegexBudget(0.05)
    assert match_query(CATASTROPHIC, Article(title="x", text=SLOW_TEXT), budget=budget) is None
    assert budget.exhausted
    # The budget is spent: later regexes under it are not run, even easy ones.
    assert match_query("/troops/", Article(title="troops"), budget=budget) is None
    assert match_query("/troops/", Article(title="troops")) is not None


def test_match_query_without_a_budget_still_ends() -> None:
    assert match_query(CATASTROPHIC, Article(title="x", text=SLOW_TEXT)) is None


def test_each_server_has_a_budget_of_its_own() -> None:
    """A server's rules are keyed "<id>:<name>" and sort first: one server's slow regex spent
    the article's whole budget, and every other server's regex rules, and the config file's,
    never matched (each was reported over budget, blamed on its own rule)."""
    rules = RuleSet([Rule("1:slow", CATASTROPHIC), Rule("2:victim", "/troops/"),
                     Rule("config", "/troops? massed/"), Rule("1:then", "/troops/")],
                    regex_budget=0.05)
    art = Article(title="Troops massed at the border", text=SLOW_TEXT)
    report = rules.match_report(art)
    assert [m.rule for m in report.matches] == ["2:victim", "config"]
    # the slow server's own later rule pays for it
    assert report.over_budget == ("1:slow", "1:then")
    assert [m.rule for m in rules.match_naive(art)] == ["2:victim", "config"]


def test_phrases_of_prefix_words_with_slop_count_against_the_budget() -> None:
    """"t* s* o* b* a*"~99 took a quarter of a second on a 5 KB article, and fifty such rules
    of one server held every server's alerts for the length of a poll: once its owner's budget
    is spent, such a phrase is not looked for (not matching, over budget), the same phrase
    written again is looked for once, and other owners' budgets are untouched."""
    text = "Troops were seen near the border as officials said talks would resume. " * 60
    art = Article(title=SLOW_TEXT, text=text)
    # (in the text alone: a phrase is looked for once per field; each takes milliseconds, and
    # the regex after the first spends the rest of its owner's budget)
    rules = RuleSet([Rule("1:first", 'text:"t* s*"~50'), Rule("1:regex", CATASTROPHIC),
                     Rule("1:second", 'text:"o* b*"~50'), Rule("1:then", 'text:"t* s*"~50'),
                     Rule("2:other", 'text:"o* b*"~50')], regex_budget=0.5)
    report = rules.match_report(art)
    assert [m.rule for m in report.matches] == ["1:first", "1:then", "2:other"]
    assert report.over_budget == ("1:regex", "1:second")
    generous = RuleSet.from_queries({r.name: r.query for r in rules.rules
                                     if r.name != "1:regex"}, regex_budget=5.0)
    assert [m.rule for m in generous.match_report(art).matches] == [
        "1:first", "1:second", "1:then", "2:other"]


# Every window of this 1 MB article is a window of "t* s*"~99: seconds of work, far past any
# budget here, however fast the machine.
LONG_PHRASE = '"t* s*"~99'
LONG_TEXT = ("ta sa " * 170_000)[:1_000_000]


@pytest.mark.timeout(60)  # a phrase that never stops would take seconds per call here
def test_a_phrase_that_runs_out_of_time_is_stopped_as_a_regex_is() -> None:
    """"t* s*"~99 over a 1 MB article ran for seconds inside one rule's budget, counted as
    matching, and only the next rule was refused: it is stopped, counts as not matching and is
    reported over budget, as a regex that runs out; a rule that needs none still matches."""
    rules = RuleSet.from_queries({"slow": LONG_PHRASE, "then": '"t* s* t*"~99', "plain": "sa"},
                                 regex_budget=0.05)
    art = Article(title="x", text=LONG_TEXT)
    decided = rules.decide(art)
    assert [d.rule for d in decided.decisions] == ["plain"]
    assert decided.over_budget == ("slow", "then")
    report = rules.match_report(art)
    assert [m.rule for m in report.matches] == ["plain"]
    assert report.over_budget == ("slow", "then")
    assert [m.rule for m in rules.match_naive(art)] == ["plain"]


@pytest.mark.timeout(60)
def test_match_query_stops_phrases_at_a_phrase_budget_it_is_given() -> None:
    # A lookup passes the time it has left; by default a phrase has no limit (a short article).
    budget = RegexBudget(0.05)
    assert match_query(LONG_PHRASE, Article(title="x", text=LONG_TEXT),
                       phrase_budget=budget) is None
    assert budget.exhausted
    assert match_query(LONG_PHRASE, Article(title="ta sa"), phrase_budget=budget) is None
    generous = RegexBudget(5.0)
    found = match_query(LONG_PHRASE, Article(title="ta and sa"), phrase_budget=generous)
    assert found is not None and not generous.exhausted
    assert [h.text for h in found.hits] == ["ta and sa"]


def test_all_servers_together_spend_at_most_a_bounded_time_on_an_article() -> None:
    """A budget each: a hundred servers with a slow regex each would make one article cost a
    hundred budgets. Together they spend at most OWNERS_TOGETHER seconds; the rest is
    refused. The config file's rules are tried first: the servers' keys sort before its
    names, and their slow regexes spent the time together before its regex was tried."""
    from watchers.rules.ruleset import OWNERS_TOGETHER

    budget = 0.05
    owners = round(OWNERS_TOGETHER / budget) + 3
    rules = RuleSet([Rule(f"{i:03d}:slow", CATASTROPHIC) for i in range(1, owners + 1)]
                    + [Rule("config", "/troops/"), Rule("slow config", CATASTROPHIC)],
                    regex_budget=budget)
    article = Article(title="troops", text=SLOW_TEXT)
    for report in (rules.match_report(article), rules.match_report(article, evidence=False)):
        assert [m.rule for m in report.matches] == ["config"]
        # In rule order; each slow regex ran to its budget's end until the time together
        # was spent (the config file's own slow one first), the last owners' refused unstarted.
        assert report.over_budget == (*(f"{i:03d}:slow" for i in range(1, owners + 1)),
                                      "slow config")
    assert [m.rule for m in rules.match_naive(article)] == ["config"]


@pytest.mark.parametrize("budget", [0, -1, math.inf, math.nan])
def test_a_regex_budget_must_be_a_positive_finite_number(budget: float) -> None:
    """An infinite budget was taken, and the regex module read the infinite timeout as none
    left: every regex rule matched nothing ("over budget")."""
    with pytest.raises(ValueError, match="positive, finite number of seconds"):
        RuleSet.from_queries({"price": r"/\d+ usd/"}, regex_budget=budget)
    found = RuleSet.from_queries({"price": r"/\d+ usd/"}, regex_budget=1e9).match(
        Article(title="Price of wheat 2024: 250 USD", text=""))
    assert [m.rule for m in found] == ["price"]
