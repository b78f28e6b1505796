"""Logging: one readable line per event on stderr, with secrets redacted everywhere."""

from __future__ import annotations

import logging
import re
import sys

__all__ = ["RedactingFilter", "add_secret", "redact", "setup_logging"]

_SECRETS: set[str] = set()
# Webhook URLs carry their token in the path; redact any, known or not.
_WEBHOOK = re.compile(r"(/webhooks/\d+/)[\w-]{20,}")


def add_secret(value: str | None) -> None:
    """Register a value (a token, a webhook URL) that must never appear in a log line."""
    if value and len(value) >= 6:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for s in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(s, "[redacted]")
    return _WEBHOOK.sub(r"\1[redacted]", text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and traceback) with secrets removed."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if record.exc_info:
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(formatted)
            record.exc_info = None
        if clean != message or record.args:
            record.msg, record.args = clean, None
        return True


def setup_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                                           "%H:%M:%S"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in ("newswatch", "watchers", "bot"):
        logging.getLogger(name).setLevel(level)
    logging.getLogger("discord").setLevel(logging.WARNING)
