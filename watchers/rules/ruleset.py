"""Rules and rule sets: parse once, match many articles.

A :class:`RuleSet` is immutable; :meth:`RuleSet.with_rule` and :meth:`RuleSet.without` return a
new one. Compiling builds an index from anchor terms to rules (see :mod:`.index`) so an article
only evaluates the rules that could match it.

Each article's regexes share one time budget (``regex_budget``, default 0.1 s); the rules whose
regexes ran out of it are named by :meth:`RuleSet.match_report`. A rule set keeps no state
between calls, so one may be used from any thread.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..models import Article, Decision, Match
from .compiled import CompiledRules, compile_rules
from .index import RuleIndex
from .matcher import (
    DEFAULT_THRESHOLD,
    REGEX_BUDGET,
    Analysis,
    Evaluator,
    RegexBudget,
    RegexFields,
)
from .syntax import FIELDS, And, Near, Node, Not, Or, Phrase, Term, parse
from .text import untrack
from .variants import Aliases, load_word_tables, shipped_aliases

__all__ = ["MatchReport", "Rule", "RuleSet"]


# From this many rules a rule set is a long-lived heap of its own; see RuleSet._build_index.
FREEZE_FROM = 1000


def _has_fuzzy(node: Node) -> bool:
    if isinstance(node, Term):
        return node.kind == "fuzzy"
    if isinstance(node, Phrase):
        return any(word.kind == "fuzzy" for word in node.words)
    if isinstance(node, Near):
        return _has_fuzzy(node.left) or _has_fuzzy(node.right)
    if isinstance(node, (And, Or)):
        return any(_has_fuzzy(child) for child in node.children)
    if isinstance(node, Not):
        return _has_fuzzy(node.child)
    return False


@dataclass(frozen=True, slots=True)
class Rule:
    """A named query. ``fields`` limits unfielded terms to those fields (default title and text).

    The query is parsed on construction, so an invalid rule fails where it is made.
    """

    name: str
    query: str
    threshold: float = DEFAULT_THRESHOLD
    fields: tuple[str, ...] | None = None
    node: Node = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"a rule's name is a str, not {type(self.name).__name__}")
        if not self.name:
            raise ValueError("a rule needs a name")
        if not isinstance(self.query, str):
            raise TypeError(f"rule {self.name!r}: its query is a str, not "
                            f"{type(self.query).__name__}")
        if not isinstance(self.threshold, int | float) or isinstance(self.threshold, bool):
            raise TypeError(f"rule {self.name!r}: threshold is a number, not "
                            f"{type(self.threshold).__name__}")
        if not 50 <= self.threshold <= 100:
            # As the config's threshold and a term's ~n: below 50, nearly any word of a
            # length is "similar" to any other.
            raise ValueError(
                f"rule {self.name!r}: threshold must be 50 to 100, not {self.threshold}"
            )
        if self.fields is not None:
            if isinstance(self.fields, str):  # tuple("title") is five one-letter fields
                raise TypeError(f"rule {self.name!r}: fields is a sequence of field names, "
                                f"not a str (write ({self.fields!r},))")
            # A field named twice is the field once: read twice, a NEAR paired each occurrence
            # with its own copy (a match the C engine, reading it once, did not find).
            fields = tuple(dict.fromkeys(self.fields))
            bad = [f for f in fields if f not in FIELDS]
            if bad or not fields:
                raise ValueError(
                    f"rule {self.name!r}: fields must be among {', '.join(FIELDS)}, not {bad}"
                )
            object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "node", parse(self.query))


# Seconds of an article's slow work (regexes, sloppy phrases) for every owner together, ten
# default budgets: a hundred servers, each with a slow regex, would otherwise make each article
# cost a hundred budgets.
OWNERS_TOGETHER = 1.0


class _Budgets:
    """One article's time budgets (see :class:`RegexBudget`), one per owner of rules: a
    server's rules are keyed ``<server id>:<name>``, the others share one. A server's slow
    regexes, tried first (the keys sort so), spent the budget of every rule after them: another
    server's and the config file's regex rules never matched. All owners together spend at
    most :data:`OWNERS_TOGETHER` seconds (or one budget, if more); past that every rule's slow
    work is refused. The config file's rules are tried first (see :func:`_operator_first`), so
    the servers' together never leave them without their own budget."""

    __slots__ = ("_each", "_last", "_spent", "_total", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._each: dict[str, RegexBudget] = {}
        self._spent: RegexBudget | None = None  # the one handed out once all is spent
        self._total = 0.0  # spent by every owner, up to the last hand-out
        self._last: tuple[RegexBudget, float] | None = None  # handed out last, and its spent

    def of(self, rule: str) -> RegexBudget:
        # Kept as a running sum (a call per rule: summing every owner's each time cost
        # owners × rules an article).
        if self._last is not None:
            self._total += self._last[0].spent - self._last[1]
        if self._total >= max(OWNERS_TOGETHER, self.seconds):
            self._last = None
            if self._spent is None:
                self._spent = RegexBudget(self.seconds)
                self._spent.spent = self.seconds
            return self._spent
        head, colon, _ = rule.partition(":")
        owner = head if colon else ""
        budget = self._each.get(owner)
        if budget is None:
            budget = self._each[owner] = RegexBudget(self.seconds)
        self._last = (budget, budget.spent)
        return budget


def _operator_first(rules: Sequence[Rule]) -> list[Rule]:
    """``rules`` in the order their slow work is tried in: the config file's (names without an
    owner) first, then each server's, each in the order given. Ten servers' slow regexes,
    tried first (their keys sort first), spent the time all owners share before the operator's
    rules were tried."""
    return sorted(rules, key=_owned)


def _owned(rule: Rule) -> bool:
    return ":" in rule.name


class MatchReport(NamedTuple):
    """What :meth:`RuleSet.match_report` found on one article.

    ``over_budget`` names, in name order, the rules one of whose regexes (or phrases with slop
    or a prefix or fuzzy word) ran out of the article's time budget (their owner's: see
    :class:`_Budgets`); it counted as not matching.
    """

    matches: list[Match]
    over_budget: tuple[str, ...]


class Decided(NamedTuple):
    """What :meth:`RuleSet.decide` found on one article: each rule that matches with its score,
    in rule order, and the rules that ran out of the article's time budget (as in
    :class:`MatchReport`)."""

    decisions: list[Decision]
    over_budget: tuple[str, ...]


def _analysis_of(article: Article, analysis: Analysis | None, verb: str) -> Analysis:
    """``analysis`` when it is of ``article``, else a new one; a wrong argument is named."""
    if analysis is None:
        if not isinstance(article, Article):
            raise TypeError(f"{verb} takes an Article, not {type(article).__name__}")
        return Analysis(article)
    if analysis.article is not article:
        raise ValueError("the analysis is of another article")
    return analysis


class RuleSet:
    """A compiled, immutable set of rules with unique names.

    ``aliases`` extends the shipped alias table (``{"kyiv": ["kiev"]}``); pass an
    :class:`~watchers.rules.variants.Aliases` to replace it.

    ``regex_budget`` is the time in seconds that all regexes together may spend on one article.

    Compiling :data:`FREEZE_FROM` rules or more ends with ``gc.collect()`` and ``gc.freeze()``
    (unless the collector is off): what is alive then is exempt from later collections.
    """

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        aliases: Mapping[str, Sequence[str]] | Aliases | None = None,
        *,
        regex_budget: float = REGEX_BUDGET,
    ) -> None:
        RegexBudget(regex_budget)  # refuses a budget that is not a positive number now
        self.regex_budget = float(regex_budget)
        by_name: dict[str, Rule] = {}
        if isinstance(rules, str | Mapping):
            raise TypeError("RuleSet takes Rule objects; for {name: query} use "
                            "RuleSet.from_queries")
        for rule in rules:
            if not isinstance(rule, Rule):
                raise TypeError(f"RuleSet takes Rule objects, not {type(rule).__name__}")
            if rule.name in by_name:
                raise ValueError(f"duplicate rule name {rule.name!r}")
            by_name[rule.name] = rule
        self._rules = dict(sorted(by_name.items()))
        self._aliases = aliases if isinstance(aliases, Aliases) else shipped_aliases(aliases)
        self._compiled, self._index = self._build_index()
        self._plain_words: dict[str, bool] = {}
        # Whether some rule is a server's ("<id>:<name>"): only then have owners budgets apart.
        self._owners = any(":" in name for name in self._rules)

    def _build_index(self) -> tuple[CompiledRules | None, RuleIndex[Rule]]:
        # Word, phrase and boolean rules go to the C engine when it is built; the rest (or all,
        # without it) to the rule index and the Python evaluator. Each rule's position in name
        # order puts the two lists of matches back in order.
        rules = list(self._rules.values())
        compiled = compile_rules(rules, self._aliases)
        rest = rules if compiled is None else [rules[i] for i in compiled.rest]
        self._position = {rule.name: i for i, rule in enumerate(rules)}
        index = RuleIndex(rest, self._aliases)
        if len(self._rules) >= FREEZE_FROM and gc.isenabled():
            # Every full collection while matching would walk the whole compiled set again
            # (a fifth of matching time at 10,000 rules) only to find it alive. Collect once so
            # no garbage is kept, then move what is alive to the permanent generation, which
            # collections skip; it is still freed by reference counting when dropped. An
            # application that turned the collector off manages it itself. What judging fuzzy
            # candidates reads is loaded first (wordfreq would otherwise be imported by the
            # first article), so wordfreq's modules are frozen too.
            load_word_tables(wordfreq=any(_has_fuzzy(rule.node) for rule in rules))
            gc.collect()
            gc.freeze()
        return compiled, index

    @classmethod
    def from_queries(
        cls,
        queries: Mapping[str, str],
        threshold: float = DEFAULT_THRESHOLD,
        aliases: Mapping[str, Sequence[str]] | Aliases | None = None,
        *,
        regex_budget: float = REGEX_BUDGET,
    ) -> RuleSet:
        """Build a rule set from ``{name: query}``, all at one fuzzy threshold."""
        if not isinstance(queries, Mapping):
            raise TypeError(f"from_queries takes a mapping of name to query, not "
                            f"{type(queries).__name__}")
        rules = [Rule(name, q, threshold) for name, q in queries.items()]
        return cls(rules, aliases, regex_budget=regex_budget)

    @property
    def names(self) -> list[str]:
        return list(self._rules)

    @property
    def rules(self) -> list[Rule]:
        return list(self._rules.values())

    @property
    def aliases(self) -> Aliases:
        return self._aliases

    def __len__(self) -> int:
        return len(self._rules)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules.values())

    def __contains__(self, name: object) -> bool:
        return name in self._rules

    def __getitem__(self, name: str) -> Rule:
        return self._rules[name]

    def __repr__(self) -> str:
        return f"RuleSet({len(self)} rules)"

    def with_rule(self, rule: Rule) -> RuleSet:
        """A new rule set with ``rule`` added, or replacing the rule of the same name."""
        rules = {**self._rules, rule.name: rule}
        return RuleSet(rules.values(), self._aliases, regex_budget=self.regex_budget)

    def without(self, name: str) -> RuleSet:
        """A new rule set without the rule ``name`` (KeyError if there is none)."""
        if name not in self._rules:
            raise KeyError(name)
        rest = (r for n, r in self._rules.items() if n != name)
        return RuleSet(rest, self._aliases, regex_budget=self.regex_budget)

    def match(self, article: Article) -> list[Match]:
        """The rules that match ``article``, ordered by rule name, each with its evidence."""
        return self.match_report(article).matches

    def match_report(
        self,
        article: Article,
        *,
        regex_budget: float | None = None,
        analysis: Analysis | None = None,
        evidence: bool = True,
    ) -> MatchReport:
        """:meth:`match`, and the rules whose regexes ran out of the article's budget.

        ``regex_budget`` replaces the rule set's budget for this article. ``analysis`` (of this
        same article) lets a caller reuse the tokenising afterwards, e.g. for the lookup index.
        ``evidence=False`` decides which rules match, each with its score, and builds no
        evidence: every match's ``hits`` is empty (:meth:`evidence` builds it when it is shown).
        The rules and scores are those of ``evidence=True``.
        """
        if not evidence:
            decisions, over = self.decide(article, regex_budget=regex_budget, analysis=analysis)
            return MatchReport([d.as_match() for d in decisions], over)
        out, over = self._run(_analysis_of(article, analysis, "match"), regex_budget,
                              evidence=True)
        return MatchReport(out, over)

    def decide(
        self,
        article: Article,
        *,
        regex_budget: float | None = None,
        analysis: Analysis | None = None,
    ) -> Decided:
        """Which rules match ``article`` and how well, without evidence: what ingest and import
        store. The rules and scores are :meth:`match`'s; an alert's or ``/article``'s evidence
        is built when it is shown (:meth:`evidence`). ``regex_budget`` and ``analysis`` as in
        :meth:`match_report`."""
        out, over = self._run(_analysis_of(article, analysis, "decide"), regex_budget,
                              evidence=False)
        return Decided(out, over)

    def _run(self, analysis: Analysis, regex_budget: float | None, *, evidence: bool
             ) -> tuple[list[Any], tuple[str, ...]]:
        """The matches (with ``evidence``) or decisions (without: Decision objects) of the
        rules on ``analysis``, in rule order, and the rules over budget."""
        regex_fields = RegexFields()
        candidates, fuzzy = self._index.candidates(analysis, regex_fields)
        seconds = self.regex_budget if regex_budget is None else regex_budget
        budgets = _Budgets(seconds) if self._owners else None
        ev = Evaluator(analysis, self._aliases, fuzzy, self._plain_words, RegexBudget(seconds),
                       phrases_spend=True, regex_fields=regex_fields)
        out: list[Any] = []  # Matches with evidence, Decisions without
        position = self._position
        for rule in candidates if budgets is None else _operator_first(candidates):
            if budgets is not None:
                ev.budget = budgets.of(rule.name)
            m = (ev.match if evidence else ev.decide)(rule.name, rule.node, rule.threshold,
                                                       rule.fields)
            if m is not None:
                out.append(m)
        over = ev.over_budget
        if budgets is not None:  # back in rule order
            out.sort(key=lambda m: position[m.rule])
            over.sort(key=position.__getitem__)
        if not evidence:
            untrack(*out)  # as the engine's Decisions: two strs and a float, never in a cycle
        if self._compiled is None:
            return out, tuple(over)
        # The evaluator's matches go in among the engine's by their rules' positions.
        extra = [(position[m.rule], m) for m in out] if out else None
        engine = self._compiled.match if evidence else self._compiled.decide
        return engine(analysis, extra), tuple(over)

    def evidence(self, article: Article, names: Iterable[str]) -> list[Match]:
        """The matches of the rules ``names`` on ``article``, each with its evidence, in rule
        order: what :meth:`match` gives for them. A name the set does not hold, or a rule that
        does not match, is left out."""
        if isinstance(names, str):  # a str is an iterable of one-letter names
            raise TypeError(f"names: rule names (a list or a set), not the str {names!r}")
        wanted = set(names)
        # As match_naive, whose results match's equal.
        return self._each(article, [r for r in self._rules.values() if r.name in wanted])

    def candidates(self, article: Article) -> list[str]:
        """The rules the index would evaluate on ``article`` (a superset of those that match)."""
        analysis = Analysis(article)
        found, _ = self._index.candidates(analysis)
        if self._compiled is None:
            return [r.name for r in found]
        rules = list(self._rules.values())
        numbers = self._compiled.candidates(analysis)
        numbers += [self._position[r.name] for r in found]
        return [rules[i].name for i in sorted(numbers)]

    def match_one(self, name: str, article: Article) -> Match | None:
        """Whether the rule ``name`` matches ``article`` (KeyError if there is no such rule)."""
        rule = self._rules[name]
        ev = Evaluator(Analysis(article), self._aliases, budget=RegexBudget(self.regex_budget))
        return ev.match(rule.name, rule.node, rule.threshold, rule.fields)

    def match_naive(self, article: Article) -> list[Match]:
        """Every rule tried in turn with no index: the reference the compiled path must equal.

        Each rule gets a fresh evaluator (no cache shared between rules) over one tokenising of
        the article, which is deterministic; the article's time budgets are shared as in
        :meth:`match`.
        """
        return self._each(article, list(self._rules.values()))

    def _each(self, article: Article, rules: Sequence[Rule]) -> list[Match]:
        """``rules`` tried in turn on one tokenising of ``article``, each with a fresh
        evaluator, the article's time budgets shared."""
        if not rules:
            return []
        out = []
        analysis = Analysis(article)
        budgets = _Budgets(self.regex_budget)
        for rule in _operator_first(rules) if self._owners else rules:
            ev = Evaluator(analysis, self._aliases, budget=budgets.of(rule.name),
                           phrases_spend=True)
            m = ev.match(rule.name, rule.node, rule.threshold, rule.fields)
            if m is not None:
                out.append(m)
        if self._owners:
            order = {rule.name: i for i, rule in enumerate(rules)}
            out.sort(key=lambda m: order[m.rule])
        return out
