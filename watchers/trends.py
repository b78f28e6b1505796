"""A rule's or a query's trend over a period, read from a store (the data behind ``/trend`` and
``newswatch trend``; the statistic is :mod:`watchers.surge`'s)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import replace
from datetime import datetime, timedelta

from watchers.config import SurgeConfig
from watchers.search import search
from watchers.store.base import Store, sort_time
from watchers.surge import Trend, trend

__all__ = ["HOURLY_UP_TO", "TREND_BUDGET", "TREND_MAX_HITS", "trend_of"]

HOURLY_UP_TO = timedelta(days=3)  # longer periods are counted per day
TREND_MAX_HITS = 200_000  # a query's trend counts at most this many matches …
TREND_BUDGET = 10.0  # … found within this many seconds (else the trend says it is partial)


async def trend_of(store: Store, what: str, *, rules: Collection[str], since: timedelta,
                   until: datetime, surge: SurgeConfig, threshold: int,
                   aliases: Mapping[str, Sequence[str]] | None = None,
                   bucket: timedelta | None = None, executor: Executor | None = None,
                   follows: Collection[str] | None = None,
                   labels: Mapping[str, str] | None = None) -> Trend:
    """Matches per hour (periods up to :data:`HOURLY_UP_TO`) or per day of the rule named
    ``what`` (when it is one of ``rules``) or of the query ``what``, counted by when the
    articles were published, from ``until - since`` to ``until``. Raises QuerySyntaxError for
    a bad query. ``follows``: a query counts only what a server sees (see
    :meth:`watchers.store.ArticleStore.candidate_page`); ``labels``: its ``source:`` terms
    name that server's feeds as it named them (see :func:`watchers.search.search`)."""
    bucket = bucket or (timedelta(hours=1) if since <= HOURLY_UP_TO else timedelta(days=1))
    start = until - since
    history = start - timedelta(days=surge.days)  # for the first buckets' bands
    truncated = False
    if what in rules:
        times = await store.rule_times(what, history)
        label = f"rule {what}"
    else:
        found = await search(store, what, since=history, limit=TREND_MAX_HITS,
                             threshold=threshold, aliases=aliases, budget=TREND_BUDGET,
                             executor=executor, follows=follows, labels=labels)
        times = sorted(sort_time(h.article) for h in found.hits)
        label, truncated = what, found.truncated
    result = trend(label, times, start, until, bucket=bucket, sigma=surge.sigma,
                   min_count=surge.min_count)
    return replace(result, truncated=truncated)
