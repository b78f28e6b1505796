"""ConsoleSink: alerts as readable cards in a terminal, for running without Discord.

A terminal cannot edit what it printed, so a story's later articles are compact lines printed
under the feed as they come ("↳ also reported by …"), never a second card. A digest (what a
route kept for later) is one compact block: a heading that says why, then a line per story
grouped by rule, newest first.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from bot.logs import shown
from watchers.delivery import Alert, Digest, DigestItem, StoryUpdate, StoryView, UpdateResult
from watchers.errors import TransientDeliveryError
from watchers.models import Highlight, minute_text
from watchers.snippet import Run, snippet_runs, title_runs
from watchers.store.base import severity_rank

__all__ = ["ConsoleSink", "render_card", "render_digest", "render_update"]

_SEVERITY_COLOUR = {"info": "36", "low": "34", "medium": "33", "high": "35", "critical": "31"}


def _paint(runs: Sequence[Run], ansi: bool) -> str:
    if ansi:
        return "".join(f"\x1b[1;33m{shown(r.text)}\x1b[0m" if r.hit else shown(r.text)
                       for r in runs)
    return "".join(f"[{shown(r.text)}]" if r.hit else shown(r.text) for r in runs)


def _columns(text: str) -> int:
    """The terminal columns ``text`` takes: two for a wide character (CJK, most emoji), none for
    a combining mark or a zero-width one, one for the rest."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(ch) or ch in _ZERO_WIDTH
               else 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufe0e\ufe0f")


def _wrapped(runs: Sequence[Run], ansi: bool, width: int, indent: str = "  ") -> list[str]:
    """``runs`` painted as lines of at most ``width`` visible columns, each after ``indent``,
    broken at spaces; a matched term is never broken (without colour its brackets stay whole),
    and a word longer than a line has a line of its own. The terminal wrapped a long snippet
    mid-word at its own edge, back at the first column."""
    words: list[list[Run]] = [[]]
    for run in runs:
        if run.hit:
            words[-1].append(run)
            continue
        for i, part in enumerate(run.text.split(" ")):
            if i:
                words.append([])
            if part:
                words[-1].append(Run(part))
    return _fill([(_paint(word, ansi),
                   sum(_columns(shown(r.text)) + (2 if r.hit and not ansi else 0) for r in word))
                  for word in words if word], width, indent)


def _filled(words: Sequence[str], width: int, indent: str = "  ",
            first: str | None = None) -> list[str]:
    """``words`` (each kept whole: a term may hold a space) in lines of at most ``width``
    columns after ``indent`` (the first after ``first``, if given), a word longer than a line
    on a line of its own."""
    return _fill([(word, _columns(word)) for word in map(shown, words)], width, indent, first)


def _fill(words: Sequence[tuple[str, int]], width: int, indent: str,
          first: str | None = None) -> list[str]:
    """Words as written and the columns each takes, joined by spaces into lines of at most
    ``width`` columns after ``indent`` (the first line after ``first``, if given); a word
    longer than a line has one of its own."""
    lines: list[str] = []
    line: list[str] = []
    used = 0
    lead = indent if first is None else first
    for text, columns in words:
        if line and used + 1 + columns > max(1, width - len(lead)):
            lines.append(lead + " ".join(line))
            line, used, lead = [], 0, indent
        used += columns + (1 if line else 0)
        line.append(text)
    if line:
        lines.append(lead + " ".join(line))
    return lines


def _is_standard_output(stream: object) -> bool:
    """Whether ``stream`` writes to this process's standard output (file descriptor 1)."""
    try:
        return int(stream.fileno()) == 1  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False


def render_card(alert: Alert, *, ansi: bool = False, width: int = 78) -> str:
    """One alert as a few lines of text: rule, title, source and date, snippet, link."""
    highlights: list[Highlight] = [h for m in alert.matches for h in m.highlights]
    art = alert.article
    terms = list(dict.fromkeys(t for m in alert.matches for t in m.terms))
    sev = alert.severity
    bar = "─" * width
    # The rules' names and the severity, the card's first line: as many lines as they need
    # (a route of many rules made it one line the terminal broke mid-name).
    names = [r.name for r in alert.rules]
    head = _filled(["▶", *[n + "," for n in names[:-1]], f"{names[-1]}  [{sev}]"], width,
                   first="")
    if ansi:
        head = [f"\x1b[1;{_SEVERITY_COLOUR.get(sev, '33')}m{line}\x1b[0m" for line in head]
        bar = f"\x1b[2m{bar}\x1b[0m"
    when = f"{minute_text(art.published)} UTC" if art.published else "date unknown"
    lines = [bar, *head]
    if alert.escalated_from:
        lines.append(f"  escalated: {alert.escalated_from} → {sev}")
    lines += _wrapped(title_runs(art.title, highlights), ansi, width) or ["  "]
    # Source, date and id: each part whole, on as many lines as they need.
    lines += _filled([*(art.source or "unknown source").split(" "), f"· {when}",
                      f"· id {art.id}"], width)
    lines += _filled(["matched:", *[t + "," for t in terms[:-1]], *terms[-1:]] if terms
                     else ["matched:", "(no terms)"], width)
    lines += _wrapped(snippet_runs(art.text, highlights), ansi, width)
    if art.url:
        lines.append(f"  {shown(art.url)}")
    story = _story_text(alert.story, own=art.source) if alert.story is not None else None
    if story:
        lines += _filled(["story:", *story.split(" ")], width)
    return "\n".join(lines)


def _story_text(story: StoryView, *, own: str | None = None) -> str | None:
    """"also reported by DW, NPR · 3 outlets", or None for a story of one article."""
    if len(story.outlets) <= 1 and story.articles <= 1:
        return None
    others = [o for o in story.outlets if o != own]
    parts = []
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        parts.append(f"also reported by {shown}")
    outlets = story.counted if story.counted is not None else len(story.outlets)
    if outlets > 1:
        parts.append(f"{outlets} outlets")
    if story.articles > len(story.outlets):
        parts.append(f"{story.articles} articles")
    return " · ".join(parts)


def render_update(update: StoryUpdate) -> str:
    """One line under a story's card: ``↳ updated: <title>`` for an article that changed in
    place, else ``↳ <outlet>: <title> · also reported by … · N outlets``."""
    art = update.article
    if update.changed:
        line = f"  ↳ updated: {shown(art.title)}"
    else:
        line = f"  ↳ {shown(art.source or 'unknown source')}: {shown(art.title)}"
        story = _story_text(update.story, own=update.alert.article.source)
        if story:
            line += f" · {story}"
    if art.url:
        line += f"  {shown(art.url)}"
    return line


_WHY = {"digest": "digest", "quiet hours": "quiet hours digest", "cap": "past the hourly cap"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _newest(item: DigestItem) -> datetime:
    return item.newest or item.article.published or item.article.fetched_at or _EPOCH


def render_digest(digest: Digest, *, ansi: bool = False, width: int = 78) -> str:
    """A digest as a block: "≡ digest for alerts · 3 stories · 4 articles · since …", then
    each rule (an item under its most severe rule) with its stories, newest first."""
    since = f"{minute_text(digest.since.astimezone(UTC))} UTC"
    why = _WHY.get(digest.reason, digest.reason)
    stories = f"{digest.stories} {'story' if digest.stories == 1 else 'stories'}"
    articles = f"{digest.articles} article{'' if digest.articles == 1 else 's'}"
    head = f"≡ {why} for {digest.route} · {stories} · {articles} · since {since}"
    bar = "═" * width
    if ansi:
        head, bar = f"\x1b[1m{head}\x1b[0m", f"\x1b[2m{bar}\x1b[0m"
    groups: dict[str, list[DigestItem]] = {}
    for item in sorted(digest.items, key=_newest, reverse=True):
        lead = max(item.rules, default=None, key=lambda r: severity_rank(r.severity))
        groups.setdefault(f"{lead.name} [{lead.severity}]" if lead else "other", []).append(item)
    lines = [bar, head]
    for name, items in groups.items():
        lines.append(f"  {name}")
        for item in items:
            art = item.article
            extra = []
            n_outlets = (1 if item.story is None else item.story.counted
                         if item.story.counted is not None else len(item.story.outlets))
            n_articles = max(item.story.articles if item.story is not None else 0,
                             item.articles)
            if n_outlets > 1:
                extra.append(f"{n_outlets} outlets")
            if n_articles > n_outlets:
                extra.append(f"{n_articles} articles")
            tail = "".join(f" · {x}" for x in extra)
            lines.append(f"    • {shown(art.title)} — {shown(art.source or 'unknown source')}"
                         f"{tail}")
            if art.url:
                lines.append(f"      {shown(art.url)}")
    return "\n".join(lines)


class ConsoleSink:
    """Prints each alert as a card. Every route can share one ConsoleSink."""

    def __init__(self, stream: TextIO | None = None, *, ansi: bool | None = None,
                 width: int | None = None) -> None:
        self.stream = stream or sys.stdout
        tty = self.stream.isatty()
        # Colour on a terminal, unless the user said no (https://no-color.org) or the terminal
        # cannot show it; cards as wide as the terminal, up to 78 columns (a file gets 78).
        self.ansi = (tty and not os.environ.get("NO_COLOR")
                     and os.environ.get("TERM") != "dumb") if ansi is None else ansi
        if width is None:
            width = min(78, max(20, shutil.get_terminal_size((78, 24)).columns)) if tty else 78
        self.width = width
        self.count = 0

    def _print(self, text: str) -> None:
        try:
            print(text, file=self.stream, flush=True)
        except BrokenPipeError:
            if _is_standard_output(self.stream):
                # The reader of `run --console | head` went away: the process ends as such
                # a command does, by SIGPIPE's own action (SIGPIPE is otherwise ignored, so
                # that a socket's reset is an error and not the end). What was not shown
                # waits in the outbox, which a kill leaves whole, for the next start.
                signal.signal(signal.SIGPIPE, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGPIPE)
            raise TransientDeliveryError(f"cannot write alerts to "
                                         f"{getattr(self.stream, 'name', 'the output')}: "
                                         "the reader closed it") from None
        except OSError as exc:
            # A full disk under `run > log`, a closed pipe: one line and a retry later, not a
            # traceback at every attempt.
            name = getattr(self.stream, "name", "the output")
            raise TransientDeliveryError(f"cannot write alerts to {name}: "
                                         f"{exc.strerror or exc}") from None

    async def deliver(self, alert: Alert) -> str | None:
        self._print(render_card(alert, ansi=self.ansi, width=self.width))
        self.count += 1
        return f"console-{alert.id}"

    async def update(self, update: StoryUpdate) -> UpdateResult:
        """A later article of a story already shown: one line, not a new card."""
        self._print(render_update(update))
        return UpdateResult(message_id=update.message_id, thread_id=update.thread_id)

    async def digest(self, digest: Digest) -> str | None:
        """What a route kept for later, as one block."""
        self._print(render_digest(digest, ansi=self.ansi, width=self.width))
        return f"console-digest-{digest.id}"

    async def notice(self, route: str, text: str, *, nonce: str | None = None,
                     maybe_sent: bool = False) -> str | None:
        """An operational notice (a source or destination paused) as one marked line."""
        mark = "\x1b[1;31m!\x1b[0m" if self.ansi else "!"
        self._print(f"{mark} notice for {route}: {text}")
        return None
