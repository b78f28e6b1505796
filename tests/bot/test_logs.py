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


def test_discords_voice_warnings_are_left_out(output: io.StringIO) -> None:
    """Two warnings at every start of the bot, for voice, which newswatch never speaks."""
    quiet_discord_reconnects()
    client = logging.getLogger("discord.client")
    client.warning("PyNaCl is not installed, voice will NOT be supported")
    client.warning("davey is not installed, voice will NOT be supported")
    client.warning("Something else")
    assert output.getvalue() == "WARNING discord.client: Something else\n"


def test_discord_rate_limit_retries_are_one_line_a_minute(output: io.StringIO) -> None:
    """discord.py logs each retry of a rate-limited request, two lines for a global limit:
    about ten lines a second while Discord limits the bot, for what it handles itself."""
    from bot import logs

    http = logging.getLogger("discord.http")
    for f in [f for f in http.filters if isinstance(f, logs._RateLimitFilter)]:
        http.removeFilter(f)  # a fresh one: its memory of earlier tests' lines gone
    quiet_discord_reconnects()
    quiet_discord_reconnects()
    (limiter,) = [f for f in http.filters if isinstance(f, logs._RateLimitFilter)]
    clock = [1000.0]
    limiter.clock = lambda: clock[0]
    for second in range(5):
        clock[0] = 1000.0 + second
        for _ in range(5):
            http.warning("We are being rate limited. POST %s responded with 429. Retrying in "
                         "%.2f seconds.", "http://x/api/v10/channels/1/messages", 0.05)
            http.warning("Global rate limit has been hit. Retrying in %.2f seconds.", 0.05)
    http.warning("Something else went wrong")  # not a rate limit: as it comes
    clock[0] = 1061.0
    http.warning("Global rate limit has been hit. Retrying in %.2f seconds.", 0.05)
    assert output.getvalue().splitlines() == [
        "WARNING discord.http: We are being rate limited. POST "
        "http://x/api/v10/channels/1/messages responded with 429. Retrying in 0.05 seconds.",
        "WARNING discord.http: Global rate limit has been hit. Retrying in 0.05 seconds.",
        "WARNING discord.http: Something else went wrong",
        "WARNING discord.http: Global rate limit has been hit. Retrying in 0.05 seconds. "
        "(24 more like it in the last 60 s not shown)",
    ]


def test_a_rate_limited_webhooks_retries_are_one_line_a_minute(output: io.StringIO) -> None:
    """discord.py's webhook client logs each retry of a webhook answering 429: a line every
    fraction of a second for as long as the limit lasts, where delivery says it once."""
    from bot import logs

    hooks = logging.getLogger("discord.webhook.async_")
    for f in [f for f in hooks.filters if isinstance(f, logs._RateLimitFilter)]:
        hooks.removeFilter(f)
    quiet_discord_reconnects()
    (limiter,) = [f for f in hooks.filters if isinstance(f, logs._RateLimitFilter)]
    clock = [1000.0]
    limiter.clock = lambda: clock[0]
    for tenth in range(25):
        clock[0] = 1000.0 + tenth / 10
        hooks.warning("Webhook ID %s is rate limited. Retrying in %.2f seconds.",
                      "1234567890123456789", 0.2)
    hooks.warning("Webhook ID %s: something else", "1")  # not a rate limit: as it comes
    clock[0] = 1061.0
    hooks.warning("Webhook ID %s is rate limited. Retrying in %.2f seconds.", "123", 0.2)
    assert output.getvalue().splitlines() == [
        "WARNING discord.webhook.async_: Webhook ID 1234567890123456789 is rate limited. "
        "Retrying in 0.20 seconds.",
        "WARNING discord.webhook.async_: Webhook ID 1: something else",
        "WARNING discord.webhook.async_: Webhook ID 123 is rate limited. Retrying in 0.20 "
        "seconds. (24 more like it in the last 60 s not shown)",
    ]
