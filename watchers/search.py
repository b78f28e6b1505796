"""Lookups over stored articles with the rule language (the engine behind /search and
``newswatch search``): the store narrows candidates, the matcher gives the exact answer and its
evidence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from watchers.models import Article, Match
from watchers.rules import DEFAULT_THRESHOLD, parse, shipped_aliases
from watchers.rules import match_query as _match_query
from watchers.store.base import Store
from watchers.store.terms import fts_query

__all__ = ["SearchHit", "search"]

# How many stored articles a lookup reads at most; newest first.
SCAN_LIMIT = 20000


@dataclass(frozen=True)
class SearchHit:
    article: Article
    match: Match


async def search(
    store: Store,
    query: str,
    *,
    since: datetime | None = None,
    source: str | None = None,
    limit: int = 10,
    order: Literal["newest", "best"] = "newest",
    threshold: int = DEFAULT_THRESHOLD,
    aliases: Mapping[str, Sequence[str]] | None = None,
) -> list[SearchHit]:
    """Stored articles that match ``query``; raises QuerySyntaxError for a bad query."""
    node = parse(query)  # fail fast, before touching the store
    alias_map = {k: list(v) for k, v in (aliases or {}).items()}
    fts = fts_query(node, shipped_aliases(alias_map))
    candidates = await store.candidates(fts=fts, since=since, source=source, limit=SCAN_LIMIT)
    hits: list[SearchHit] = []
    for article in candidates:
        m = _match_query(query, article, threshold=threshold, aliases=alias_map)
        if m is not None:
            hits.append(SearchHit(article, m))
            if order == "newest" and len(hits) >= limit:
                break
    if order == "best":
        hits.sort(key=lambda h: h.match.score, reverse=True)
    return hits[:limit]
