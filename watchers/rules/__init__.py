"""The rule engine: parse queries, compile rule sets, match articles with evidence.

::

    from watchers.rules import RuleSet, Rule, match_query, parse, explain
    rules = RuleSet.from_queries({"kyiv": "kyiv~", "troops": "troops NEAR/5 border"})
    for m in rules.match(article):            # Match objects, ordered by rule name
        print(m.rule, m.score, m.highlights)
        print("\n".join(explain(m)))          # term, field, span, kind, variant, score

- :mod:`.syntax`: the query language (Lucene subset plus NEAR) and its parser.
- :mod:`.text`: folding and tokenising (case, accents, hyphens, apostrophes, plurals).
- :mod:`.variants`: when a token is a spelling variant of a word (aliases, transliteration,
  typos, refused near misses); the alias table ships in ``data/aliases.toml``.
- :mod:`.matcher`: evaluating a query with evidence; :func:`match_query` is the one-off path
  and the reference that the compiled :class:`RuleSet` (:mod:`.ruleset`, :mod:`.index`)
  reproduces.

Pure: no I/O beyond reading the shipped alias table.
"""

from __future__ import annotations

from ..errors import QuerySyntaxError
from .explain import explain
from .matcher import DEFAULT_THRESHOLD, REGEX_BUDGET, RegexBudget, match_query
from .ruleset import Decided, MatchReport, Rule, RuleSet
from .syntax import And, Near, Node, Not, Or, Phrase, Regex, Term, parse
from .text import key, tokenize
from .variants import Aliases, compare, shipped_aliases

__all__ = [
    "DEFAULT_THRESHOLD",
    "REGEX_BUDGET",
    "Aliases",
    "And",
    "Decided",
    "MatchReport",
    "Near",
    "Node",
    "Not",
    "Or",
    "Phrase",
    "QuerySyntaxError",
    "Regex",
    "RegexBudget",
    "Rule",
    "RuleSet",
    "Term",
    "compare",
    "explain",
    "key",
    "match_query",
    "parse",
    "shipped_aliases",
    "tokenize",
]
