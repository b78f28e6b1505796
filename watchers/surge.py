"""Surges and trends: is a rule matching far more than usual, and its volume over time.

The statistic (pure; the same for surge alerts and for the bands of ``/trend``):

- the *current* count is the matches in the hour that ends now (``[now - 1h, now)``);
- the *baseline* is the same clock hour on each of the last ``days`` days (14 by default), so a
  rule that is always busy at 09:00 does not surge every morning. When the rule's history is
  shorter than half of that (its first match is less than ``days / 2`` days old), the baseline
  is the rolling window of the ``rolling`` hours before the current one instead;
- a surge is a current count at least ``min_count`` and above ``mean + sigma · std`` of the
  baseline counts (population standard deviation; a flat baseline of zeros has std 0, so then
  ``min_count`` alone decides). The factor shown is ``current / max(mean, 1/len(baseline))``,
  i.e. "6× usual", never a division by zero.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["Baseline", "Trend", "TrendPoint", "baseline", "floor_to", "is_surge",
           "rolling_buckets", "trend"]

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Baseline:
    """What "usual" is for a window: its mean and spread, and how it was measured."""

    mean: float
    std: float
    samples: int
    kind: str  # "same hour" | "rolling"

    def surges(self, count: int, sigma: float, min_count: int) -> bool:
        """At least ``min_count`` and above ``mean + sigma · std``."""
        return count >= min_count and count > self.mean + sigma * self.std

    def factor(self, count: int) -> float:
        return count / max(self.mean, 1.0 / max(self.samples, 1))


def _count(times: Sequence[datetime], start: datetime, end: datetime) -> int:
    """Matches in ``[start, end)``; ``times`` sorted."""
    return bisect.bisect_left(times, end) - bisect.bisect_left(times, start)


def _stats(counts: Sequence[int], kind: str) -> Baseline:
    if not counts:
        return Baseline(0.0, 0.0, 0, kind)
    mean = sum(counts) / len(counts)
    std = math.sqrt(sum((c - mean) ** 2 for c in counts) / len(counts))
    return Baseline(mean, std, len(counts), kind)


def baseline(times: Sequence[datetime], end: datetime, *, width: timedelta = HOUR,
             days: int = 14, rolling: int = 24, first: datetime | None = None) -> Baseline:
    """The baseline of the window ``[end - width, end)`` (see the module docstring). ``times``
    are the rule's match times, sorted; ``first`` its first match ever (default: the first of
    ``times``)."""
    first = first if first is not None else (times[0] if times else None)
    long_history = first is not None and end - first >= timedelta(days=days / 2)
    if width < DAY and long_history:
        counts = [_count(times, end - d * DAY - width, end - d * DAY) for d in range(1, days + 1)
                  if end - d * DAY - width >= (first or end)]
        if counts:  # none when the history is a day long (``days`` of 2): "over 0 days"
            return _stats(counts, "same hour")
    counts = [_count(times, end - (k + 1) * width, end - k * width) for k in range(1, rolling + 1)]
    return _stats(counts, "rolling")


def is_surge(times: Sequence[datetime], now: datetime, *, sigma: float = 3.0,
             min_count: int = 10, days: int = 14, first: datetime | None = None
             ) -> tuple[bool, int, Baseline]:
    """Whether the hour ending ``now`` is a surge; with its count and baseline."""
    current = _count(times, now - HOUR, now)
    base = baseline(times, now, days=days, first=first)
    return base.surges(current, sigma, min_count), current, base


@dataclass(frozen=True)
class TrendPoint:
    start: datetime
    count: int
    mean: float  # the baseline band: mean ± std
    std: float
    surge: bool


@dataclass(frozen=True)
class Trend:
    """A rule's or query's matches per bucket (hour or day) over a period, with the baseline
    band of each bucket and the buckets that were surges."""

    label: str
    bucket: timedelta
    points: list[TrendPoint]
    total: int
    truncated: bool = False  # the lookup behind it ran out of time: counts are a lower bound


def floor_to(at: datetime, bucket: timedelta) -> datetime:
    """``at`` floored to a multiple of ``bucket`` since the epoch (the start of its bucket)."""
    step = bucket.total_seconds()
    return datetime.fromtimestamp(math.floor(at.timestamp() / step) * step, at.tzinfo)


def rolling_buckets(bucket: timedelta) -> int:
    """How many buckets before one a rolling baseline counts: 14 days, or 24 shorter ones."""
    return 14 if bucket >= DAY else 24


def trend(label: str, times: Sequence[datetime], start: datetime, end: datetime, *,
          bucket: timedelta = HOUR, sigma: float = 3.0, min_count: int = 10,
          first: datetime | None = None, days: int = 14) -> Trend:
    """Buckets from ``start`` (floored to the bucket) to ``end``, each with its count of the
    matches in ``[start, end)`` (the first and last buckets may be partial: they counted
    matches before ``start`` and after ``end``), the baseline band and whether it was a
    surge by the module's statistic over ``days`` (day buckets use a rolling baseline of
    the 14 days before)."""
    points: list[TrendPoint] = []
    at = floor_to(start, bucket)
    while at < end:
        nxt = at + bucket
        count = _count(times, max(at, start), min(nxt, end))
        base = baseline(times, nxt, width=bucket, rolling=rolling_buckets(bucket),
                        days=days, first=first)
        points.append(TrendPoint(at, count, base.mean, base.std,
                                 base.surges(count, sigma, min_count)))
        at = nxt
    return Trend(label, bucket, points, sum(p.count for p in points))
