"""What `newswatch run` writes to its log, through the logging it sets up (secrets redacted
when a record is made): tracebacks keep their secrets out, and a store driver's "server
unreachable" stays one line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import asyncpg  # type: ignore[import-untyped]
import pytest

import watchers.store.postgres._db  # noqa: F401  (installs the one-line filter on asyncpg.pool)
from bot.logs import add_secret, install_redaction, quiet_discord_reconnects

SECRET = "SENTINEL-log-secret-" + "y" * 30


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    """Every record as `newswatch run` prints it (a plain formatter), the redaction on."""
    install_redaction()
    add_secret(SECRET)
    text = io.StringIO()
    handler = logging.StreamHandler(text)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield text
    finally:
        root.removeHandler(handler)


def test_a_traceback_quoting_a_secret_is_printed_without_it(output: io.StringIO) -> None:
    try:
        raise RuntimeError(f"could not post with {SECRET}")
    except RuntimeError:
        logging.getLogger("bot.test").error("posting failed", exc_info=True)
    printed = output.getvalue()
    assert "Traceback (most recent call last)" in printed
    assert "RuntimeError: could not post with [redacted]" in printed
    assert SECRET not in printed


def test_an_unreachable_server_in_the_drivers_pool_log_is_one_line(
        output: io.StringIO) -> None:
    """Before, the redaction turned the exception into text when the record was made, so the
    store's filter could no longer tell what it was, and every retry of asyncpg's pool printed
    a traceback."""
    try:
        raise asyncpg.CannotConnectNowError("the database system is shutting down")
    except asyncpg.CannotConnectNowError:
        logging.getLogger("asyncpg.pool").warning(
            "Failed to restore the pool connection floor; retrying", exc_info=True)
    printed = output.getvalue()
    assert printed == ("WARNING asyncpg.pool: Failed to restore the pool connection floor; "
                       "retrying: the database system is shutting down\n")


def test_a_failed_gateway_reconnect_is_one_warning_line(output: io.StringIO) -> None:
    """discord.py logs each failed reconnect with logger.exception: an ERROR and a traceback
    (a 502 for the WebSocket upgrade during a gateway incident) for a fault outside newswatch,
    in every real run's log."""
    quiet_discord_reconnects()
    quiet_discord_reconnects()  # once is enough: not two filters
    try:
        raise ConnectionResetError("Connection reset by peer")
    except OSError:
        logging.getLogger("discord.client").exception("Attempting a reconnect in %.2fs", 0.43)
    assert output.getvalue() == (
        "WARNING discord.client: Discord gateway: ConnectionResetError: Connection reset by "
        "peer; attempting a reconnect in 0.43s\n")
    assert len(logging.getLogger("discord.client").filters) == 1
