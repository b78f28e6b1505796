"""Offline clustering of a batch of articles, as ``newswatch stories`` and the evaluation use it.

Invariant: every input article is in exactly one returned story; articles go through a fresh
:class:`~watchers.stories.index.StoryIndex` in date order (stable for equal dates), so the
result is what the live engine would have decided had they arrived in that order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from watchers.stories.features import signature
from watchers.stories.index import DEFAULT_WINDOW, StoryIndex

__all__ = ["PROGRESS_EVERY", "Story", "StoryInput", "cluster"]

PROGRESS_EVERY = 2000


@dataclass(frozen=True)
class StoryInput:
    id: str
    title: str
    text: str
    url: str | None
    date: datetime
    source: str


@dataclass(frozen=True)
class Story:
    id: str
    ids: list[str]
    headline: str
    outlets: list[str]
    first: datetime
    last: datetime


def cluster(items: Iterable[StoryInput], window: timedelta = DEFAULT_WINDOW, *,
            on_progress: Callable[[int, int], None] | None = None) -> list[Story]:
    """Stories of ``items``, in the order they started; members in the order they joined.
    ``on_progress(done, total)`` is called every :data:`PROGRESS_EVERY` articles placed and
    once at the end. TypeError or ValueError names an input that is not one: an item that is
    no :class:`StoryInput`, a date that is no timezone-aware datetime, an id given twice, a
    window that is no positive timedelta."""
    if not isinstance(window, timedelta) or window <= timedelta(0):
        raise TypeError(f"window: a positive timedelta, not {window!r}")
    items = list(items)
    seen: set[str] = set()
    for n, it in enumerate(items):
        if not isinstance(it, StoryInput):
            raise TypeError(f"item {n}: a StoryInput, not {type(it).__name__}")
        if not isinstance(it.date, datetime) or it.date.utcoffset() is None:
            raise ValueError(f"item {n} ({it.id!r}): 'date' must be a timezone-aware datetime, "
                             f"not {it.date!r}")
        if it.id in seen:
            raise ValueError(f"item {n}: the id {it.id!r} is given twice")
        seen.add(it.id)
    ordered = sorted(items, key=lambda it: it.date)
    index = StoryIndex(window)
    members: dict[str, list[StoryInput]] = {}
    total = len(ordered)
    for done, it in enumerate(ordered, 1):
        sid, _ = index.assign(it.id, signature(it.title, it.text), it.date, it.source)
        members.setdefault(sid, []).append(it)
        if on_progress is not None and (done % PROGRESS_EVERY == 0 or done == total):
            on_progress(done, total)
    out = []
    for sid, arts in members.items():
        outlets = list(dict.fromkeys(a.source for a in arts if a.source))
        out.append(Story(sid, [a.id for a in arts], arts[0].title, outlets,
                         min(a.date for a in arts), max(a.date for a in arts)))
    return out
