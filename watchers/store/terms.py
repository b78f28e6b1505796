"""The lookup index: each article's word keys, and rule queries turned into FTS5 queries over
them.

FTS5's own tokeniser does not fold the way the rule engine does (plurals, apostrophes,
compounds, aliases), so the store indexes the engine's own keys and norms per article. A query
becomes an FTS5 query that finds a *superset* of the articles it matches — terms the index
cannot express (fuzzy terms, regexes, negations) drop out of an AND and make an OR
unconstrained — and the matcher then gives the exact answer.
"""

from __future__ import annotations

from watchers.rules import And, Near, Node, Not, Or, Phrase, Regex, Term
from watchers.rules.text import tokenize
from watchers.rules.variants import Aliases, compound_splits

__all__ = ["fts_query", "index_terms"]


def index_terms(*fields: str) -> str:
    """Every distinct key and norm of the fields' tokens, space-separated."""
    words: set[str] = set()
    for text in fields:
        for tok in tokenize(text):
            words.add(tok.key)
            words.add(tok.norm)
    return " ".join(sorted(w for w in words if w))


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


def fts_query(node: Node, aliases: Aliases) -> str | None:
    """An FTS5 query matching at least every article ``node`` matches; None when the index
    cannot narrow the search (every article is a candidate)."""
    if isinstance(node, Term):
        return _term(node, aliases)
    if isinstance(node, Phrase):
        words = [_term(w, aliases) for w in node.words]
        return _all([w for w in words if w is not None])
    if isinstance(node, Regex | Not):
        return None
    if isinstance(node, Near):
        sides = [fts_query(node.left, aliases), fts_query(node.right, aliases)]
        return _all([s for s in sides if s is not None])
    if isinstance(node, And):
        kids = [fts_query(c, aliases) for c in node.children]
        return _all([k for k in kids if k is not None])
    if isinstance(node, Or):
        kids = [fts_query(c, aliases) for c in node.children]
        if any(k is None for k in kids):
            return None
        return _any([k for k in kids if k is not None])
    return None
