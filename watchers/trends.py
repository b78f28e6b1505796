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
from watchers.surge import Trend, floor_to, rolling_buckets, trend

__all__ = ["HOURLY_UP_TO", "TREND_BUDGET", "TREND_MAX_HITS", "default_bucket", "trend_of"]

HOURLY_UP_TO = timedelta(days=3)  # longer periods are counted per day


def default_bucket(since: timedelta) -> timedelta:
    """A trend's bucket when none is asked for: an hour up to :data:`HOURLY_UP_TO`, else a
    day."""
    return timedelta(hours=1) if since <= HOURLY_UP_TO else timedelta(days=1)
TREND_MAX_HITS = 200_000  # a query's trend counts at most this many matches …
TREND_BUDGET = 10.0  # … found within this many seconds (else the trend says it is partial)


async def trend_of(store: Store, what: str, *, rules: Collection[str], since: timedelta,
                   until: datetime, surge: SurgeConfig, threshold: int,
                   aliases: Mapping[str, Sequence[str]] | None = None,
                   bucket: timedelta | None = None, executor: Executor | None = None,
                   follows: Collection[str] | None = None,
                   labels: Mapping[str, str] | None = None) -> Trend:
    """Matches per hour (periods up to :data:`HOURLY_UP_TO`) or per day of the rule named
    ``what`` (one of ``rules``, in any case when one alone has that name) or of the query
    ``what``, counted by when the articles were published, from ``until - since`` to
    ``until`` (the first and last buckets count only what falls inside), each bucket's band
    by the statistic of surge alerts (``surge.days``, the rule's or the query's first match).
    Raises QuerySyntaxError for a bad query. ``follows``: a query counts only what a server
    sees (see :meth:`watchers.store.ArticleStore.candidate_page`); ``labels``: its
    ``source:`` terms name that server's feeds as it named them (see
    :func:`watchers.search.search`)."""
    bucket = bucket or default_bucket(since)
    start = until - since
    # The first bucket's band looks back from its floored start: the same hour on each of
    # ``surge.days`` days, or the rolling buckets before it (a day read too few counted as
    # none, and a steady rule "surged" on the first days of the chart).
    history = floor_to(start, bucket) - max(timedelta(days=surge.days) + bucket,
                                            rolling_buckets(bucket) * bucket)
    truncated = False
    first = None
    if what not in rules:
        folded = [r for r in rules if r.casefold() == what.casefold()]
        if len(folded) == 1:  # "trend alpha" charted the word alpha beside the rule Alpha
            what = folded[0]
    if what in rules:
        times = await store.rule_times(what, history)
        first = await store.first_match(what)
        label = f"rule {what}"
    else:
        found = await search(store, what, since=history, limit=TREND_MAX_HITS,
                             threshold=threshold, aliases=aliases, budget=TREND_BUDGET,
                             executor=executor, follows=follows, labels=labels)
        times = sorted(sort_time(h.article) for h in found.hits)
        label, truncated = what, found.truncated
        # (A day's band is the rolling 14 days before it whatever the history: only hours
        # need to know how old the query's matches go.)
        if times and not truncated and bucket < timedelta(days=1):
            first = await _matched_before(store, what, history, len(times), threshold=threshold,
                                          aliases=aliases, executor=executor,
                                          follows=follows, labels=labels)
    result = trend(label, times, start, until, bucket=bucket, sigma=surge.sigma,
                   min_count=surge.min_count, days=surge.days, first=first)
    return replace(result, truncated=truncated)


async def _matched_before(store: Store, query: str, history: datetime, found: int, *,
                          threshold: int, aliases: Mapping[str, Sequence[str]] | None,
                          executor: Executor | None, follows: Collection[str] | None,
                          labels: Mapping[str, str] | None) -> datetime | None:
    """When ``query`` matched last before ``history``, given that it matched ``found`` times
    since; None when it never did (or the lookup ran out of time first).

    A rule's band is measured from its first match ever. A query has no stored first match,
    and the first of the matches read from ``history`` on made one with months of history
    look days old: its band was the rolling 24 hours, not the same hour of each day, and the
    query charted surges the rule with the same matches did not. Any match before
    ``history`` gives the bands the true first match gives: every window a band counts
    starts at or after ``history``. The lookup reads the index's candidates newest first, so
    it reads the ``found`` matches again and stops at the first older one; only a query that
    never matched before reads on through its older candidates, within the lookup's budget."""
    older = await search(store, query, since=None, limit=found + 1, threshold=threshold,
                         aliases=aliases, budget=TREND_BUDGET, executor=executor,
                         follows=follows, labels=labels)
    before = [t for h in older.hits if (t := sort_time(h.article)) < history]
    return max(before, default=None)
