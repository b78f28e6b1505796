"""Snippets: the part of an article that shows why a rule fired, as plain and highlighted runs.

Front ends render the runs their own way (ANSI bold in a terminal, ``**bold**`` in Discord), so
this module returns structure, not markup.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from watchers.models import Highlight

__all__ = ["Run", "grapheme_floor", "snippet_runs", "title_runs"]

_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class Run:
    """A piece of snippet text; ``hit`` marks matched terms."""

    text: str
    hit: bool = False


def _runs(text: str, spans: Sequence[tuple[int, int]], start: int, end: int) -> list[Run]:
    out: list[Run] = []
    pos = start
    for s, e in spans:
        s, e = max(s, start), min(e, end)
        if e <= s or s < pos:
            continue
        if s > pos:
            out.append(Run(_WS.sub(" ", text[pos:s])))
        out.append(Run(_WS.sub(" ", text[s:e]), hit=True))
        pos = e
    if pos < end:
        out.append(Run(_WS.sub(" ", text[pos:end])))
    return [r for r in out if r.text]


def _spans(highlights: Iterable[Highlight], field: str) -> list[tuple[int, int]]:
    """The field's highlighted spans in order, those that overlap joined into one: a phrase
    and a word inside it ("finally troops", "finally") showed only the word marked, the
    phrase's span dropped as starting before the text already shown."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted({(h.start, h.end) for h in highlights if h.field == field}):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def title_runs(title: str, highlights: Iterable[Highlight]) -> list[Run]:
    """The title with its matched spans marked."""
    return _runs(title, _spans(highlights, "title"), 0, len(title))


def snippet_runs(text: str, highlights: Iterable[Highlight], width: int = 320) -> list[Run]:
    """About ``width`` characters of ``text`` around the densest cluster of text highlights.

    Cut at word boundaries; an ellipsis run marks text left out at either end.
    """
    spans = _spans(highlights, "text")
    if not text:
        return []
    if spans:
        # Start just before the highlight whose window holds the most other highlights.
        best = max(range(len(spans)),
                   key=lambda i: sum(1 for s, _ in spans if spans[i][0] <= s < spans[i][0] + width))
        start = max(0, spans[best][0] - width // 4)
    else:
        start = 0
    end = min(len(text), start + width)
    if start > 0:
        space = text.find(" ", start)
        if 0 <= space < start + 30 and (not spans or space < spans[0][0] or space < end):
            start = space + 1
    if end < len(text):
        space = text.rfind(" ", start, end)
        if space > start + width // 2:
            end = space
    # Where no space was near, a cut at a character could fall inside what shows as one: a
    # flag (two regional indicators: cut between them, every flag after reads as another
    # country's), a letter and its marks, an emoji sequence.
    start, end = _cluster_after(text, start), _cluster_before(text, end)
    runs = _runs(text, spans, start, end)
    if runs and start > 0:
        runs.insert(0, Run("…"))
    if runs and end < len(text):
        runs.append(Run("…"))
    if runs:
        first, last = runs[0], runs[-1]
        runs[0] = Run(first.text.lstrip(), first.hit)
        runs[-1] = Run(runs[-1].text.rstrip(), last.hit) if len(runs) > 1 else runs[0]
    return [r for r in runs if r.text]


# How far a cut moves to a cluster's edge at most (a cluster is a few code points; a run of
# hundreds of marks is no text anyone reads).
_CLUSTER_SPAN = 32
_ZWJ = "\u200d"
_JOINERS = "\u200c\u200d"
# Regional indicators counted back from a cut to pair them (see _is_edge).
_FLAGS_COUNTED = 2000


def _extends(c: str) -> bool:
    """Whether ``c`` belongs to the character before it on screen: a combining mark, the
    zero-width joiner or non-joiner (Persian writes one inside words), a variation selector,
    an emoji skin tone or a tag character (or Thai's and Lao's "am" vowel, a letter by
    category that Unicode joins to its consonant)."""
    cp = ord(c)
    return (c in _JOINERS or 0xFE00 <= cp <= 0xFE0F or 0x1F3FB <= cp <= 0x1F3FF
            or 0xE0020 <= cp <= 0xE01EF or cp in (0x0E33, 0x0EB3)
            or unicodedata.category(c).startswith("M"))


def _hangul(c: str) -> str:
    """The part ``c`` plays in a Hangul syllable: "L", "V" or "T" (a leading consonant, a
    vowel or a trailing consonant jamo), "LV" or "LVT" (a precomposed syllable, without or
    with its trailing consonant), or "" (no Hangul)."""
    cp = ord(c)
    if 0x1100 <= cp <= 0x115F or 0xA960 <= cp <= 0xA97C:
        return "L"
    if 0x1160 <= cp <= 0x11A7 or 0xD7B0 <= cp <= 0xD7C6:
        return "V"
    if 0x11A8 <= cp <= 0x11FF or 0xD7CB <= cp <= 0xD7FB:
        return "T"
    if 0xAC00 <= cp <= 0xD7A3:
        return "LV" if (cp - 0xAC00) % 28 == 0 else "LVT"
    return ""


# Which Hangul parts join the one before them into one syllable on screen (Unicode's rules
# GB6-GB8): a leading consonant takes anything of a syllable after it, a vowel a vowel or a
# trailing consonant, a trailing consonant only another.
_HANGUL_JOINS = {"L": {"L", "V", "LV", "LVT"}, "V": {"V", "T"}, "LV": {"V", "T"},
                 "T": {"T"}, "LVT": {"T"}}


def _regional(c: str) -> bool:
    return "\U0001f1e6" <= c <= "\U0001f1ff"


def _is_edge(text: str, i: int) -> bool:
    """Whether a cut before ``text[i]`` leaves every character shown whole (an approximation
    of Unicode's grapheme cluster boundaries that covers marks, emoji sequences, flags and
    Hangul jamo)."""
    if i <= 0 or i >= len(text):
        return True
    c, before = text[i], text[i - 1]
    if _extends(c) or before == _ZWJ or (c == "\n" and before == "\r"):
        return False
    if c >= "\u1100" and before >= "\u1100" and (joins := _HANGUL_JOINS.get(_hangul(before))):
        return _hangul(c) not in joins
    if _regional(c) and _regional(before):
        # An even number before it: the pairs before it are whole. Counted so far at most (a
        # run of 200,000 flags was counted back whole at each of the cut's steps).
        run = 0
        while run < _FLAGS_COUNTED and i - run - 1 >= 0 and _regional(text[i - run - 1]):
            run += 1
        return run % 2 == 0
    return True


def _cluster_after(text: str, i: int) -> int:
    """``i``, or the first cluster edge after it (within :data:`_CLUSTER_SPAN`)."""
    for j in range(i, min(len(text), i + _CLUSTER_SPAN) + 1):
        if _is_edge(text, j):
            return j
    return i


def grapheme_floor(text: str, i: int) -> int:
    """The last place at or before ``i`` where ``text`` may be cut and every character shown
    stays whole: not inside a flag (a pair of regional indicators), an emoji sequence joined
    by a zero-width joiner or given a skin tone, a letter and its combining marks, a Hangul
    syllable spelt in jamo, nor between CR and LF. ``text[:grapheme_floor(text, i)]`` is never
    longer than ``i``. A cluster longer than a few dozen code points (a pile of marks no one
    reads) is cut where ``i`` falls. Cheap where ``i`` is already an edge: call it only
    where a cut happens."""
    i = max(0, min(i, len(text)))
    return _cluster_before(text, i)


def _cluster_before(text: str, i: int) -> int:
    """``i``, or the last cluster edge before it (within :data:`_CLUSTER_SPAN`)."""
    for j in range(i, max(0, i - _CLUSTER_SPAN) - 1, -1):
        if _is_edge(text, j):
            return j
    return i
