"""ConsoleSink: alerts as readable cards in a terminal, for running without Discord.

A terminal cannot edit what it printed, so a story's later articles are compact lines printed
under the feed as they come ("↳ also reported by …"), never a second card. A digest (what a
route kept for later) is one compact block: a heading that says why, then a line per story
grouped by rule, newest first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import select
import shutil
import signal
import sys
import threading
import unicodedata
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from bot.logs import encoding_of, shown
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
    # Source, date and id: each part whole, on as many lines as they need; one wider than a
    # line (a narrow terminal's) broken at its spaces.
    parts = [f"· {when}", f"· id {art.id}"]
    lines += _filled([*(art.source or "unknown source").split(" "), *(
        word for part in parts
        for word in (part.split(" ") if _columns(part) > width - 2 else [part]))], width)
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


#: Seconds a console writer's thread waits for more to write before it ends.
_IDLE = 1.0


class _Piece:
    """One text for the writer, and how much of it reached the stream: a write that failed
    part way (a full disk) is finished later from where it stopped, never made again whole."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.data: bytes | None = None  # the text as written, once its writing began
        self.written = 0  # bytes of ``data`` the stream took
        # Why writes of it failed, kept by standard output until it is written after all.
        self.failures: list[OSError] = []

    def retold(self, text: str) -> None:
        """Take ``text`` (the same thing rendered again) in place of a text not begun."""
        if not self.written:
            self.text, self.data = text, None

    @property
    def begun(self) -> bool:
        return self.written > 0


class _Writer:
    """Writes texts to a stream in the order given, on a thread of its own, so that a reader
    that stopped reading blocks that thread and never the event loop. The thread is started
    when there is something to write and ends a moment after all is written; it is a daemon,
    so that a write stuck for good never holds the process's exit.

    The process's standard output is written to through its descriptor, not through the
    stream's buffer: a write stuck in the buffer holds its lock, and the flush of standard
    output in a second stop signal's ending (and the process's last moments) waited for the
    stuck reader too. (What was in its buffer goes first.) Any other stream (a file a library
    user hands the sink) is written through, as print writes it: its buffer's order, its
    newlines and its encoder's one byte order mark.

    A text the descriptor took only part of (a disk that filled up under `run > log`) is
    finished before anything else is written, so that no other text lands inside it: by the
    next write of any text, or by its own retry."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._fd: int | None = None
        if stream in (sys.stdout, sys.__stdout__) and _plain_encoding(stream):
            with contextlib.suppress(AttributeError, OSError, ValueError):
                if int(stream.fileno()) == 1:
                    stream.flush()
                    self._fd = 1
        self._more = threading.Condition()
        self._jobs: deque[tuple[_Piece, concurrent.futures.Future[None]]] = deque()
        self._running = False
        self._cut: _Piece | None = None  # the text the descriptor took part of, if any

    def submit(self, piece: _Piece) -> concurrent.futures.Future[None]:
        """Queue what is left of ``piece`` (its text and a line break); the future is done
        once it is written, and a job cancelled before its turn is never written."""
        job: concurrent.futures.Future[None] = concurrent.futures.Future()
        with self._more:
            self._jobs.append((piece, job))
            self._more.notify()
            if not self._running:
                self._running = True
                threading.Thread(target=self._drain, name="newswatch-console",
                                 daemon=True).start()
        return job

    def _drain(self) -> None:
        while True:
            with self._more:
                # Kept a moment for the next card (each waits for the one before), not a
                # thread started for every one.
                if not self._more.wait_for(lambda: bool(self._jobs), timeout=_IDLE):
                    self._running = False
                    return
                piece, job = self._jobs.popleft()
            if not job.set_running_or_notify_cancel():
                continue
            try:
                self._write(piece)
            except BaseException as exc:  # handed to the one waiting, as print raised it
                job.set_exception(exc)
            else:
                job.set_result(None)

    def _write(self, piece: _Piece) -> None:
        if self._fd is None:
            print(piece.text + "\n", end="", file=self.stream, flush=True)
            return
        if self._cut is not None and self._cut is not piece:
            # The rest of a text cut short goes first: written after this one, a card's last
            # lines ran into the next card's rule.
            self._put(self._cut)
        self._put(piece)

    def _put(self, piece: _Piece) -> None:
        """Write what is left of ``piece`` to the descriptor."""
        assert self._fd is not None
        if piece.data is None:
            # As print would encode it (a terminal that is not UTF-8 gets escapes, see
            # bot.cli).
            piece.data = (piece.text + "\n").encode(
                getattr(self.stream, "encoding", None) or "utf-8",
                getattr(self.stream, "errors", None) or "strict")
        data = memoryview(piece.data)
        try:
            while piece.written < len(data):
                try:
                    piece.written += os.write(self._fd, data[piece.written:])
                except BlockingIOError:
                    # A descriptor left non-blocking by whoever shares it: wait until it takes
                    # more, rather than fail with half a card written.
                    select.select([], [self._fd], [])
        except OSError as exc:
            if piece.begun:
                self._cut = piece
            # Kept by the command's standard output, to say as it ends that what it shows
            # never arrived (bot.cli), until a later write of the same text makes it good.
            piece.failures.append(exc)
            _tell(self.stream, "write_failed", exc)
            raise
        if self._cut is piece:
            self._cut = None
        while piece.failures:
            _tell(self.stream, "write_made_good", piece.failures.pop())


def _tell(stream: TextIO, what: str, exc: OSError) -> None:
    """Tell ``stream`` (the `newswatch` command's standard output: bot.cli's _Output) that a
    write to its descriptor failed or was made good; any other stream has no such ear."""
    hear = getattr(type(stream), what, None)
    if callable(hear):
        hear(stream, exc)


def _plain_encoding(stream: TextIO) -> bool:
    """Whether what ``stream`` encodes may be written piece by piece as it is (no byte order
    mark each piece would repeat, no newline it would translate)."""
    encoding = encoding_of(stream)
    return not encoding.startswith(("utf-16", "utf-32", "utf-8-sig", "utf8-sig")) and (
        getattr(stream, "newlines", None) is None and os.linesep == "\n")


async def _answer(job: concurrent.futures.Future[None]) -> None:
    """Wait for ``job`` without blocking the loop; cancelled, the job is left to the caller."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle() -> None:
        if done.done():
            return
        if job.cancelled():
            done.cancel()
        elif (exc := job.exception()) is not None:
            done.set_exception(exc)
        else:
            done.set_result(None)

    def tell(_: object) -> None:
        # The writer's thread, or this one if the job is done already. A loop closed meanwhile
        # has nobody waiting.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle)

    job.add_done_callback(tell)
    await done


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
        self._writer = _Writer(self.stream)
        # The last try of each text whose try failed or was cut short, by the nonce of what
        # it shows (see _print).
        self._tried: dict[str, tuple[_Piece, concurrent.futures.Future[None]]] = {}

    async def _print(self, text: str, nonce: str | None = None) -> None:
        """Write ``text`` and a line break, and return once it is written: only then is what
        it shows delivered. The write is made on the sink's writer thread while the event loop
        goes on: a reader that stopped reading blocked the whole process in it, polls, webhook
        sends and the stop signals' handlers with it.

        ``nonce`` (an alert's, the same on every try) names what is written: a write cut short
        (a send timeout, a stop) that is still under way when the alert is tried again is
        waited for rather than made twice, and one that ended meanwhile counts as its try. A
        write that failed part way (a full disk) is finished by the next try from where it
        stopped, in the words it began with: made again whole, the card was in the log twice,
        the first time cut short."""
        piece, job = self._tried.pop(nonce, (None, None)) if nonce is not None else (None, None)
        if piece is None or job is None:
            piece = _Piece(text)
            job = self._writer.submit(piece)
        elif job.done() and (job.cancelled() or job.exception() is not None):
            piece.retold(text)
            job = self._writer.submit(piece)
        try:
            await _answer(job)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                # Not started: never written, and it will not be (its alert stays in the
                # outbox, not delivered). Under way: it may end later, which the next try of
                # the same alert takes as written rather than printing the card again.
                job.cancel()
            if nonce is not None:
                self._tried[nonce] = (piece, job)
            if isinstance(exc, OSError):
                raise self._refused(exc) from None
            raise

    def _refused(self, exc: OSError) -> TransientDeliveryError:
        """What a write the stream refused is to delivery: one line and a retry later, not a
        traceback at every attempt (a full disk under `run > log`, a closed pipe)."""
        name = getattr(self.stream, "name", "the output")
        if isinstance(exc, BrokenPipeError):
            if _is_standard_output(self.stream):
                # The reader of `run --console | head` went away: the process ends as such
                # a command does, by SIGPIPE's own action (SIGPIPE is otherwise ignored, so
                # that a socket's reset is an error and not the end). What was not shown
                # waits in the outbox, which a kill leaves whole, for the next start.
                signal.signal(signal.SIGPIPE, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGPIPE)
            return TransientDeliveryError(f"cannot write alerts to {name}: "
                                          "the reader closed it")
        return TransientDeliveryError(f"cannot write alerts to {name}: "
                                      f"{exc.strerror or exc}")

    async def deliver(self, alert: Alert) -> str | None:
        await self._print(render_card(alert, ansi=self.ansi, width=self.width), alert.nonce)
        self.count += 1
        return f"console-{alert.id}"

    async def update(self, update: StoryUpdate) -> UpdateResult:
        """A later article of a story already shown: one line, not a new card."""
        await self._print(render_update(update), update.nonce)
        return UpdateResult(message_id=update.message_id, thread_id=update.thread_id)

    async def digest(self, digest: Digest) -> str | None:
        """What a route kept for later, as one block."""
        await self._print(render_digest(digest, ansi=self.ansi, width=self.width), digest.nonce)
        return f"console-digest-{digest.id}"

    async def notice(self, route: str, text: str, *, nonce: str | None = None,
                     maybe_sent: bool = False) -> str | None:
        """An operational notice (a source or destination paused) as one marked line."""
        mark = "\x1b[1;31m!\x1b[0m" if self.ansi else "!"
        await self._print(f"{mark} notice for {route}: {text}", nonce)
        return None
