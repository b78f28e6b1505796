"""The rule engine: parse queries, compile rule sets, match articles with evidence.

::

    from watchers.rules import RuleSet, parse, match_query
    rules = RuleSet.from_queries({"kyiv": "kyiv~", "troops": "troops NEAR/5 border"})
    for m in rules.match(article):
        print(m.rule, m.highlights, m.hits)

The query language is described in :mod:`watchers.rules.syntax`; spelling variants in
:mod:`watchers.rules.variants`. Everything here is pure: no I/O beyond reading the shipped alias
table.
"""

from __future__ import annotations

from ..errors import QuerySyntaxError
from .compile import Rule, RuleSet
from .explain import explain
from .matcher import DEFAULT_THRESHOLD, match_query
from .syntax import And, Near, Node, Not, Or, Phrase, Regex, Term, parse
from .text import key, tokenize
from .variants import Aliases, compare, shipped_aliases

__all__ = [
    "DEFAULT_THRESHOLD",
    "Aliases",
    "And",
    "Near",
    "Node",
    "Not",
    "Or",
    "Phrase",
    "QuerySyntaxError",
    "Regex",
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
