"""Rules and rule sets: parse once, match many articles.

A :class:`RuleSet` is immutable; :meth:`RuleSet.with_rule` and :meth:`RuleSet.without` return a
new one. Compiling builds an index from anchor terms to rules (see :mod:`.index`) so an article
only evaluates the rules that could match it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from ..models import Article, Match
from .index import RuleIndex
from .matcher import DEFAULT_THRESHOLD, Analysis, Evaluator
from .syntax import FIELDS, Node, parse
from .variants import Aliases, shipped_aliases

__all__ = ["Rule", "RuleSet"]

# From this many rules a rule set is a long-lived heap of its own; see RuleSet._build_index.
FREEZE_FROM = 1000


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
        if not self.name:
            raise ValueError("a rule needs a name")
        if not 0 <= self.threshold <= 100:
            raise ValueError(
                f"rule {self.name!r}: threshold must be 0 to 100, not {self.threshold}"
            )
        if self.fields is not None:
            fields = tuple(self.fields)
            bad = [f for f in fields if f not in FIELDS]
            if bad or not fields:
                raise ValueError(
                    f"rule {self.name!r}: fields must be among {', '.join(FIELDS)}, not {bad}"
                )
            object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "node", parse(self.query))


class RuleSet:
    """A compiled, immutable set of rules with unique names.

    ``aliases`` extends the shipped alias table (``{"kyiv": ["kiev"]}``); pass an
    :class:`~watchers.rules.variants.Aliases` to replace it.

    Compiling :data:`FREEZE_FROM` rules or more ends with ``gc.collect()`` and ``gc.freeze()``
    (unless the collector is off): what is alive then is exempt from later collections.
    """

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        aliases: Mapping[str, Sequence[str]] | Aliases | None = None,
    ) -> None:
        by_name: dict[str, Rule] = {}
        for rule in rules:
            if rule.name in by_name:
                raise ValueError(f"duplicate rule name {rule.name!r}")
            by_name[rule.name] = rule
        self._rules = dict(sorted(by_name.items()))
        self._aliases = aliases if isinstance(aliases, Aliases) else shipped_aliases(aliases)
        self._index = self._build_index()
        self._plain_words: dict[str, bool] = {}

    def _build_index(self) -> RuleIndex:
        index = RuleIndex(list(self._rules.values()), self._aliases)
        if len(self._rules) >= FREEZE_FROM and gc.isenabled():
            # Every full collection while matching would walk the whole compiled set again
            # (a fifth of matching time at 10,000 rules) only to find it alive. Collect once so
            # no garbage is kept, then move what is alive to the permanent generation, which
            # collections skip; it is still freed by reference counting when dropped. An
            # application that turned the collector off manages it itself.
            gc.collect()
            gc.freeze()
        return index

    @classmethod
    def from_queries(
        cls,
        queries: Mapping[str, str],
        threshold: float = DEFAULT_THRESHOLD,
        aliases: Mapping[str, Sequence[str]] | Aliases | None = None,
    ) -> RuleSet:
        """Build a rule set from ``{name: query}``, all at one fuzzy threshold."""
        return cls([Rule(name, q, threshold) for name, q in queries.items()], aliases)

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
        return RuleSet(rules.values(), self._aliases)

    def without(self, name: str) -> RuleSet:
        """A new rule set without the rule ``name`` (KeyError if there is none)."""
        if name not in self._rules:
            raise KeyError(name)
        return RuleSet((r for n, r in self._rules.items() if n != name), self._aliases)

    def match(self, article: Article) -> list[Match]:
        """The rules that match ``article``, ordered by rule name, each with its evidence."""
        analysis = Analysis(article)
        candidates, fuzzy = self._index.candidates(analysis)
        ev = Evaluator(analysis, self._aliases, fuzzy, self._plain_words)
        out = []
        for rule in candidates:
            m = ev.match(rule.name, rule.node, rule.threshold, rule.fields)
            if m is not None:
                out.append(m)
        return out

    def candidates(self, article: Article) -> list[str]:
        """The rules the index would evaluate on ``article`` (a superset of those that match)."""
        found, _ = self._index.candidates(Analysis(article))
        return [r.name for r in found]

    def match_one(self, name: str, article: Article) -> Match | None:
        """Whether the rule ``name`` matches ``article`` (KeyError if there is no such rule)."""
        rule = self._rules[name]
        ev = Evaluator(Analysis(article), self._aliases)
        return ev.match(rule.name, rule.node, rule.threshold, rule.fields)

    def match_naive(self, article: Article) -> list[Match]:
        """Every rule tried in turn with no index: the reference the compiled path must equal."""
        out = []
        for rule in self._rules.values():
            ev = Evaluator(Analysis(article), self._aliases)
            m = ev.match(rule.name, rule.node, rule.threshold, rule.fields)
            if m is not None:
                out.append(m)
        return out
