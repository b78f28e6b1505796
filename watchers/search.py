"""Lookups over stored articles with the rule language (the engine behind /search and
``newswatch search``): the store narrows candidates, the matcher gives the exact answer and its
evidence.

The store hands candidates over in pages, newest first (its index is keyed in date order), and
the lookup confirms them page by page until it holds the ``limit`` newest matches — plus any
candidate of the same second as the last of them, since pages are ordered to the second only —
so a lookup reads about as many articles as it returns when the index query is tight, however
many articles match. The answer is exactly the newest matches a full scan would find.

A lookup has a total time budget (``budget`` seconds, matching included): when it runs out the
lookup answers with what it confirmed so far and says so (``Lookup.truncated``), so one member's
pathological query cannot hold the bot. Matching runs in an executor, never on the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from watchers.models import Article, Match, matchable
from watchers.rules import DEFAULT_THRESHOLD, match_query, parse, shipped_aliases
from watchers.rules.lookup import index_query
from watchers.rules.matcher import RegexBudget
from watchers.store.base import Store, page_second, sort_time

__all__ = ["Lookup", "SearchHit", "search"]

# Seconds a lookup may take in all; the regex share of one article's budget.
DEFAULT_BUDGET = 5.0
REGEX_BUDGET = 0.05
# Best order ranks the newest matches by score: this many at least (or the limit, if larger).
BEST_POOL = 60
# Candidates read per page: the first page is about what the limit needs, later ones grow.
FIRST_PAGE = 32
MAX_PAGE = 2000


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


class _Confirm:
    """Confirms candidates page by page, newest first, until ``want`` hits are certain.

    Pages are ordered to the whole second only, so once ``want`` hits are in, the candidates
    of the same second as the last of them are still read: one of them may be newer."""

    def __init__(self, match: Callable[[Article], Match | None], want: int,
                 deadline: float) -> None:
        self.match = match
        self.want = want
        self.deadline = deadline
        self.hits: list[SearchHit] = []
        self.scanned = 0
        self.cutoff: int | None = None  # the second of the want-th hit
        self.truncated = False

    def page(self, articles: Sequence[Article]) -> bool:
        """Confirm a page; True once the answer is complete (or the time is up)."""
        for article in articles:
            second = page_second(sort_time(article))
            if self.cutoff is not None and second < self.cutoff:
                return True
            if time.monotonic() > self.deadline:
                self.truncated = True
                return True
            self.scanned += 1
            found = self.match(matchable(article))
            if found is not None:
                self.hits.append(SearchHit(article, found))
                if len(self.hits) == self.want:
                    self.cutoff = second
        return False


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
    follows: Collection[str] | None = None,
) -> Lookup:
    """Stored articles that match ``query``; raises QuerySyntaxError for a bad query.

    Newest first: the ``limit`` newest matches, exactly those a full scan finds. Best order:
    the newest ``max(limit, BEST_POOL)`` matches ranked by score (ties newest first), which
    is every match when there are no more than that. ``follows``: look only at what a server
    sees (see :meth:`watchers.store.ArticleStore.candidate_page`)."""
    started = time.monotonic()
    node = parse(query)  # fail fast, before touching the store
    alias_map = {k: list(v) for k, v in (aliases or {}).items()}
    table = shipped_aliases(alias_map)
    fts = index_query(node, table)

    def match(article: Article) -> Match | None:
        # One query, so the reference matcher: no rule index to build (and no word-frequency
        # data to load for it), the same answer as a compiled rule set.
        return match_query(node, article, threshold, table, name="query",
                           budget=RegexBudget(REGEX_BUDGET))

    want = limit if order == "newest" else max(limit, BEST_POOL)
    confirm = _Confirm(match, max(1, want), started + budget)
    loop = asyncio.get_running_loop()
    after: str | None = None
    size = max(FIRST_PAGE, 2 * want)
    while True:
        if time.monotonic() > confirm.deadline:
            confirm.truncated = True
            break
        page = await store.candidate_page(fts=fts, since=since, source=source, after=after,
                                          limit=min(size, MAX_PAGE), follows=follows)
        done = await loop.run_in_executor(executor, confirm.page, page.articles)
        if done or page.next is None:
            break
        after = page.next
        size *= 4
    # Candidates come ordered to the second; within one, newest first by the stored time.
    hits = sorted(confirm.hits, key=lambda h: sort_time(h.article), reverse=True)
    if order == "best":
        hits.sort(key=lambda h: h.match.score, reverse=True)
    return Lookup(hits[:limit], confirm.truncated, confirm.scanned)
