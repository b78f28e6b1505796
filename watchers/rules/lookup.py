"""The lookup index, seen from the rule language: an article's index terms, and a query turned
into an index query that finds a *superset* of the articles the query matches.

The store indexes these terms and runs these queries (SQLite FTS5 syntax: quoted words, ``*``
prefixes, AND/OR with parentheses) but knows nothing of the language that produced them.

FTS5's own tokeniser does not fold the way the matcher does (plurals, apostrophes, compounds,
aliases), so an article is indexed under the matcher's own keys and norms. Terms the index cannot
express (fuzzy terms, regexes, negations) drop out of an AND and make an OR unconstrained — never
the other way — and the matcher then gives the exact answer.
"""

from __future__ import annotations

from collections.abc import Iterable

from .matcher import Analysis
from .syntax import And, Near, Node, Not, Or, Phrase, Regex, Term
from .text import FieldText, add_terms, tokenize
from .variants import Aliases, compound_splits

__all__ = ["analysed_terms", "index_query", "index_terms", "lookup_terms"]


def index_terms(*fields: str) -> str:
    """Every distinct key and norm of the fields' tokens, sorted and space-separated."""
    words: set[str] = set()
    for text in fields:
        for tok in tokenize(text):
            words.add(tok.key)
            words.add(tok.norm)
    return " ".join(sorted(w for w in words if w))


def lookup_terms(*fields: str) -> str:
    """:func:`index_terms`, from the matcher's own word scan and folding cache (the same keys
    and norms, no token built; a test keeps the two equal)."""
    words: set[str] = set()
    for text in fields:
        add_terms(text, words)
    words.discard("")
    return " ".join(sorted(words))


def analysed_terms(analysis: Analysis) -> str:
    """The index terms of an article the matcher has already tokenised: its title and text
    fields are reused, not tokenised again."""
    return _terms((analysis.field("title"), analysis.field("text")))


def _terms(fields: Iterable[FieldText]) -> str:
    words: set[str] = set()
    for ft in fields:
        ft.add_terms(words)
    words.discard("")
    return " ".join(sorted(words))


def _q(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _any(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def _all(parts: list[str]) -> str | None:
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


def _term(term: Term, aliases: Aliases) -> str | None:
    if term.kind == "fuzzy" or not term.key:
        return None
    if term.kind == "prefix":
        return _q(term.norm) + "*" if term.norm else None
    keys = sorted({term.key} | aliases.of(term.key))
    parts = [_q(k) for k in keys]
    # A closed compound also matches when written apart: "cyberattack" ~ "cyber attack".
    parts += [f"({_q(a)} AND {_q(b)})" for a, b in compound_splits(term.key)]
    return _any(parts)


def index_query(node: Node, aliases: Aliases) -> str | None:
    """An index query matching at least every article ``node`` matches; None when the index
    cannot narrow the search (every article is a candidate)."""
    if isinstance(node, Term):
        return _term(node, aliases)
    if isinstance(node, Phrase):
        words = [_term(w, aliases) for w in node.words]
        return _all([w for w in words if w is not None])
    if isinstance(node, Regex | Not):
        return None
    if isinstance(node, Near):
        sides = [index_query(node.left, aliases), index_query(node.right, aliases)]
        return _all([s for s in sides if s is not None])
    if isinstance(node, And):
        kids = [index_query(c, aliases) for c in node.children]
        return _all([k for k in kids if k is not None])
    if isinstance(node, Or):
        kids = [index_query(c, aliases) for c in node.children]
        if any(k is None for k in kids):
            return None
        return _any([k for k in kids if k is not None])
    return None
