"""Offline clustering of a batch of articles, as ``newswatch stories`` and the evaluation use it.

Invariant: every input article is in exactly one returned story; articles go through a fresh
:class:`~watchers.stories.index.StoryIndex` in date order (stable for equal dates), so the
result is what the live engine would have decided had they arrived in that order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from watchers.stories.features import signature
from watchers.stories.index import DEFAULT_WINDOW, StoryIndex

__all__ = ["Story", "StoryInput", "cluster"]


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


def cluster(items: Iterable[StoryInput], window: timedelta = DEFAULT_WINDOW) -> list[Story]:
    """Stories of ``items``, in the order they started; members in the order they joined."""
    ordered = sorted(items, key=lambda it: it.date)
    index = StoryIndex(window)
    members: dict[str, list[StoryInput]] = {}
    for it in ordered:
        sid, _ = index.assign(it.id, signature(it.title, it.text), it.date, it.source)
        members.setdefault(sid, []).append(it)
    out = []
    for sid, arts in members.items():
        outlets = list(dict.fromkeys(a.source for a in arts if a.source))
        out.append(Story(sid, [a.id for a in arts], arts[0].title, outlets,
                         min(a.date for a in arts), max(a.date for a in arts)))
    return out
