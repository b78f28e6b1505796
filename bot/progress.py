"""Progress of long work on stderr: a bar redrawn in place on a terminal, else one line every
``every`` seconds (a log, a CI job), so neither floods a file nor leaves a terminal silent."""

from __future__ import annotations

import os
import shutil
import sys
import time

from bot.logs import say

__all__ = ["ProgressBar"]

WIDTH = 24


class ProgressBar:
    """``update`` as work goes on, ``clear`` before printing a line of one's own, ``done`` at
    the end. ``what`` names the work in the lines written to a file ("import 40%: …")."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.tty = sys.stderr.isatty()
        self.started = self.last = time.monotonic()
        self.drawn = False

    def update(self, share: float | None, counts: str, *, finished: bool, every: float) -> None:
        """Show ``share`` (0..1; None: unknown) done and ``counts``: at most ten times a second
        on a terminal (always the last time), else once every ``every`` seconds."""
        now = time.monotonic()
        shown = f"{share:4.0%}" if share is not None else "   ?"
        if self.tty:
            if now - self.last < 0.1 and not finished:
                return
            filled = int(WIDTH * share) if share is not None else 0
            bar = "#" * filled + "." * (WIDTH - filled)
            sys.stderr.write("\r\x1b[K" + fitted(f"[{bar}] {shown} {counts}", f"{shown} {counts}"))
            sys.stderr.flush()
            self.drawn = True
        elif now - self.last >= every:
            say(f"{self.what} {shown.strip()}: {counts}")
        else:
            return
        self.last = now

    def begin(self, text: str) -> None:
        """Say at once what the work is doing before its first count (reading a large file,
        opening the store): on a terminal the bar with ``text``, else nothing (a log gets its
        first line after ``every`` seconds, as before). The first bar of a 55 MB file came
        2.6 to 4.5 s after the command started, a terminal silent meanwhile."""
        if self.tty:
            sys.stderr.write("\r\x1b[K" + fitted(f"[{'.' * WIDTH}]    ? {text}", text))
            sys.stderr.flush()
            self.drawn = True

    def clear(self) -> None:
        """Take the bar off the line, so a message of one's own prints on a clean line."""
        if self.drawn:
            sys.stderr.write("\r\x1b[K")
            self.drawn = False

    def done(self) -> None:
        if self.drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.drawn = False


def fitted(line: str, short: str) -> str:
    """``line`` if it fits the terminal's width, else ``short`` (the line without its bar),
    cut to fit: a line that wraps cannot be redrawn in place, and every redraw would leave a
    line behind."""
    columns = _columns() - 1  # not the last column: a line filling it wraps on some terminals
    if len(line) <= columns:
        return line
    short = short.strip()
    return short if len(short) <= columns else short[: max(columns - 1, 0)] + "…"


def _columns() -> int:
    """The width of the terminal the bar is drawn on (stderr), else what the environment or
    stdout's terminal says, else 80."""
    try:
        columns = os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError, AttributeError):
        columns = 0
    # A terminal that reports no width (a pty never given a size says 0) is read as the
    # environment's or 80: taken at its word, every line was cut to "…".
    return columns or shutil.get_terminal_size(fallback=(80, 24)).columns or 80
