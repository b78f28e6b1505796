"""Lookups over stored articles with the rule language (the engine behind /search and
``newswatch search``): the store narrows candidates, the matcher gives the exact answer and its
evidence.

A lookup has a total time budget (``budget`` seconds, matching included): when it runs out the
lookup answers with what it confirmed so far and says so (``Lookup.truncated``), so one member's
pathological query cannot hold the bot. Matching runs in an executor, never on the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from watchers.models import Article, Match
from watchers.rules import DEFAULT_THRESHOLD, Rule, RuleSet, parse, shipped_aliases
from watchers.rules.lookup import index_query
from watchers.store.base import Store

__all__ = ["Lookup", "SearchHit", "search"]

# How many stored articles a lookup reads at most; newest first.
SCAN_LIMIT = 20000
# Seconds a lookup may take in all; the regex share of one article's budget.
DEFAULT_BUDGET = 5.0
REGEX_BUDGET = 0.05


@dataclass(frozen=True)
class SearchHit:
    article: Article
    match: Match


@dataclass(frozen=True)
class Lookup:
    """What a lookup found; ``truncated`` when its time budget ran out before it finished."""

    hits: list[SearchHit]
    truncated: bool = False
    scanned: int = 0

    def __iter__(self) -> Iterator[SearchHit]:
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)


def _confirm(ruleset: RuleSet, candidates: Sequence[Article], *, limit: int, stop_early: bool,
             deadline: float) -> tuple[list[SearchHit], bool, int]:
    hits: list[SearchHit] = []
    scanned = 0
    for article in candidates:
        if time.monotonic() > deadline:
            return hits, True, scanned
        scanned += 1
        report = ruleset.match_report(article, regex_budget=REGEX_BUDGET)
        if report.matches:
            hits.append(SearchHit(article, report.matches[0]))
            if stop_early and len(hits) >= limit:
                break
    return hits, False, scanned


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
    budget: float = DEFAULT_BUDGET,
    executor: Executor | None = None,
) -> Lookup:
    """Stored articles that match ``query``; raises QuerySyntaxError for a bad query."""
    started = time.monotonic()
    node = parse(query)  # fail fast, before touching the store
    alias_map = {k: list(v) for k, v in (aliases or {}).items()}
    ruleset = RuleSet([Rule(name="query", query=query, threshold=threshold)], aliases=alias_map)
    fts = index_query(node, shipped_aliases(alias_map))
    candidates = await store.candidates(fts=fts, since=since, source=source, limit=SCAN_LIMIT)
    loop = asyncio.get_running_loop()
    hits, truncated, scanned = await loop.run_in_executor(
        executor,
        lambda: _confirm(ruleset, candidates, limit=limit, stop_early=order == "newest",
                         deadline=started + budget),
    )
    if order == "best":
        hits.sort(key=lambda h: h.match.score, reverse=True)
    return Lookup(hits[:limit], truncated, scanned)
