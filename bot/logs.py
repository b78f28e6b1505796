"""Logging: one readable line per event on stderr, with secrets redacted everywhere.

Secrets (the bot token, webhook URLs and their tokens) are registered with :func:`add_secret` as
soon as they are read. :func:`install_redaction` makes every log record redacted when it is
created, before any handler sees it (ours, a library's, or a test's capture), message and
traceback alike; :class:`RedactingFilter` does the same for one handler.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = [
    "RedactingFilter",
    "add_secret",
    "install_redaction",
    "redact",
    "say",
    "setup_logging",
    "shown",
    "stopped_like_ctrl_c",
]

_SECRETS: set[str] = set()
# Webhook URLs carry their token in the path; redact any, known or not.
_WEBHOOK = re.compile(r"(/webhooks/\d+/)[\w-]{20,}")
# "Authorization: Bot <token>" in a dumped request
_AUTH = re.compile(r"(\bBot\s+)[\w.-]{20,}")


def shown(text: str) -> str:
    """``text`` from an article or a feed, safe to print on one terminal line: every control,
    format or line-separating character (ESC and other escape sequences, carriage returns,
    newlines, bidi overrides) becomes a space, so a title can neither drive the terminal nor
    forge a line of output. One character for one: spans computed on the text still hold."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else " " for c in text)


def json_line(value: object) -> str:
    """``value`` as one line of JSON for standard output: characters as they are where it
    writes UTF-8, else as ``\\uXXXX`` escapes (a terminal in ASCII or Latin-1 wrote what it
    could not encode as Python's ``\\xe9`` or ``\\U0001f600``, which no JSON reader takes).
    The characters other than ``\\n`` that line readers split on (U+0085, U+2028, U+2029;
    JSON escapes the other controls) are escaped too: a title holding one made two "lines"
    of one object for Python's ``splitlines`` and for JavaScript."""
    text = json.dumps(value, ensure_ascii=encoding_of(sys.stdout) not in ("utf-8", "utf8"))
    if not text.isascii():
        text = text.translate(_LINE_BREAKS)
    return text


# Characters str.splitlines breaks at that JSON leaves as they are (inside strings).
_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def encoding_of(stream: object) -> str:
    """The encoding a text stream writes, named one way ("utf-8", "latin-1"; UTF-8 when it
    names none)."""
    return (getattr(stream, "encoding", None) or "utf-8").lower().replace("_", "-")


def say(msg: str) -> None:
    """One line for the person at the terminal (not a log record): ``newswatch: …``. One line
    it is: a file name holding a line break ("a\nnewswatch: all good.jsonl"), an escape or a
    bidi override, named in a message, could forge a line of output or drive the terminal."""
    print(f"newswatch: {shown(msg)}", file=sys.stderr, flush=True)


def add_secret(value: str | None) -> None:
    """Register a value (a token, a webhook URL) that must never appear in a log line."""
    if value and len(value) >= 6:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for s in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(s, "[redacted]")
    text = _AUTH.sub(r"\1[redacted]", text)
    return _WEBHOOK.sub(r"\1[redacted]", text)


def _scrub(record: logging.LogRecord) -> None:
    message = record.getMessage()
    clean = redact(message)
    if record.exc_info and not record.exc_text:
        # Formatters print the cached text, never the exception again; the exception itself
        # stays on the record for filters that judge by its class (watchers' store shortens
        # a driver's "server unreachable" traceback to one line).
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    if clean != message or record.args:
        record.msg, record.args = clean, None


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and traceback) with secrets removed."""

    def filter(self, record: logging.LogRecord) -> bool:
        _scrub(record)
        return True


_installed = False


def install_redaction() -> None:
    """Redact every log record of this process when it is created (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        _scrub(record)
        return record

    logging.setLogRecordFactory(factory)


class _ReconnectFilter(logging.Filter):
    """discord.py logs each failed gateway reconnect with ``logger.exception``: ERROR and a
    traceback for what is always a fault outside newswatch (the gateway away, a 502 for the
    upgrade, a reset). One warning line naming the error instead; discord.py goes on
    reconnecting with its backoff, and delivery retries on its own. Its warnings that voice
    is not supported (no PyNaCl, no davey) are left out: newswatch speaks no voice."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().endswith(" is not installed, voice will NOT be supported"):
            return False  # (PyNaCl, davey) two warnings at every start of a bot with no voice
        if record.exc_info and record.getMessage().startswith("Attempting a reconnect"):
            exc = record.exc_info[1]
            why = redact(f"{type(exc).__name__}: {exc}".splitlines()[0])[:300]
            record.msg = f"Discord gateway: {why}; {record.getMessage()[0].lower()}" \
                         f"{record.getMessage()[1:]}"
            record.args = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True


class _RateLimitFilter(logging.Filter):
    """discord.py logs every retry of a rate-limited request at WARNING, two lines for a
    global limit ("We are being rate limited. POST … responded with 429. Retrying in 0.05
    seconds." and "Global rate limit has been hit …"): about ten lines a second while Discord
    limits the bot, for what it handles itself (and delivery says once when a route backs
    off). The first of each kind in :data:`EVERY` seconds is kept, saying how many like it
    were left out since."""

    EVERY = 60.0
    _KINDS = ("We are being rate limited", "Global rate limit has been hit",
              "Webhook ID")  # "Webhook ID … is rate limited. Retrying in …" (its webhooks')

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[str, float] = {}
        self._left_out: dict[str, int] = {}
        self.clock = time.monotonic

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        kind = next((k for k in self._KINDS if message.startswith(k)
                     and (k != "Webhook ID" or "is rate limited" in message)), None)
        if kind is None:
            return True
        now = self.clock()
        if now - self._last.get(kind, -self.EVERY) < self.EVERY:
            self._left_out[kind] = self._left_out.get(kind, 0) + 1
            return False
        self._last[kind] = now
        left_out = self._left_out.pop(kind, 0)
        if left_out:
            record.msg = f"{message} ({left_out} more like it in the last " \
                         f"{self.EVERY:.0f} s not shown)"
            record.args = None
        return True


def quiet_discord_reconnects() -> None:
    """Install :class:`_ReconnectFilter` on discord.py's client logger and
    :class:`_RateLimitFilter` on its HTTP and webhook loggers (idempotent): a webhook answering
    429 for minutes wrote a line at every retry."""
    for name, kind in (("discord.client", _ReconnectFilter), ("discord.http", _RateLimitFilter),
                       ("discord.webhook.async_", _RateLimitFilter)):
        logger = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in logger.filters):
            logger.addFilter(kind())


def setup_logging(level: int = logging.INFO) -> None:
    _log_to_stderr()
    quiet_discord_reconnects()
    for name in ("newswatch", "watchers", "bot"):
        logging.getLogger(name).setLevel(level)
    logging.getLogger("discord").setLevel(logging.WARNING)


def _log_to_stderr() -> None:
    install_redaction()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                                           "%H:%M:%S"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


def setup_store_logging() -> None:
    """For a command that opens a store to write (migrate, import): the store's upgrades and
    index rebuilds say how far they got (a million-article store takes minutes), everything
    else only its warnings, as before."""
    _log_to_stderr()
    logging.getLogger("watchers.store").setLevel(logging.INFO)



def second_signal(*_: object) -> None:
    """One more stop signal while stopping: the process ends at once, saying so (exit 130);
    what was being sent is claimed in the outbox and sent again at the next start."""
    say("stopping now (second signal)")
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    os._exit(130)


def end_now(status: int) -> None:
    """End a process a signal stopped, once its command has returned (everything it opened is
    closed): at once with ``status``, what the streams and logs hold written out first. The
    interpreter's own exit took a few tenths of a second more, and a second signal then met the
    system's default, which killed it without a word (exit 143); one meanwhile is the second
    signal. For the program's entry point only (a command run inside another program returns)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):
            signal.signal(sig, second_signal)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)

@contextmanager
def stopped_like_ctrl_c() -> Iterator[None]:
    """Inside the block, a stop from outside (SIGTERM: ``kill``; SIGHUP: a closed terminal)
    is taken as Ctrl-C: what the command says and keeps on Ctrl-C, it says and keeps then (they
    ended it without a word). The signal is handed to SIGINT's handler of the moment, so that
    under ``asyncio.run`` the main task is cancelled as Ctrl-C cancels it, rather than
    KeyboardInterrupt raised inside whichever task was running (which printed "Task exception
    was never retrieved" and a traceback)."""

    stopped = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopped
        stopped = True
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:  # SIGINT ignored, or left to the system: stop as Ctrl-C would by default
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGHUP)}
    # SIGINT's handler of the moment comes back too: a command may set its own inside (run's
    # last moments of stopping, see bot.runner.StopSignals).
    previous[signal.SIGINT] = signal.getsignal(signal.SIGINT)
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        # Started with SIGINT ignored (a background job of a script: `newswatch import … &`),
        # Python and asyncio.run leave it so, and a stop from outside became KeyboardInterrupt
        # raised inside whichever task ran ("Task exception was never retrieved" and a
        # traceback). Inside the block it is Ctrl-C's as usual, so that asyncio.run hands it
        # to its own handler, which cancels the main task.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if stopped:
                # Stopped from outside: what the command does after the block (saying how far
                # it got) and the process's end are the last moments of stopping, where the
                # system's default killed it without a word (exit 143); a signal is the second.
                signal.signal(sig, second_signal)
            elif handler is not None:  # (None: a handler not set from Python, left as it is)
                signal.signal(sig, handler)
