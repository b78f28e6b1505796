"""Errors raised by the newswatch engine.

Every error the engine raises on purpose derives from one root, so a caller can catch them all::

    NewswatchError
    ├── ConfigError            a config file or value is wrong; ``issues`` lists every problem
    ├── QuerySyntaxError       a rule query does not parse; carries ``column`` (1-based)
    ├── LookupBusyError        a lookup waited too long for a turn behind others; try again
    ├── SourceError            a source could not be read (network, HTTP status, unparsable feed)
    │   ├── FetchBlockedError  a URL was refused before any connection (scheme, address, size)
    │   └── FetchQueuedError   no connection came free in time (not the source's own failure)
    ├── StoreError             the store could not do what was asked
    │   ├── StoreUnavailableError  … because it cannot be reached for now (a server restarting)
    │   └── StoreGoneError     … because its file was removed or replaced while open
    └── DeliveryError          a sink could not deliver an alert
        ├── TransientDeliveryError   try again later (rate limit, 5xx, timeout)
        │   └── UncertainDeliveryError   … but the send may have gone through (response lost)
        └── PermanentDeliveryError   do not retry as is (invalid body, no access, unknown target)
"""

from __future__ import annotations

from dataclasses import dataclass

from watchers.urls import without_credentials


class NewswatchError(Exception):
    """Root of every error the engine raises on purpose."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration: where (a key path such as ``rules[2].query``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(NewswatchError):
    """A configuration is invalid; ``issues`` names every problem with its key path."""

    def __init__(self, issues: list[ConfigIssue], *, file: str | None = None) -> None:
        self.issues = list(issues)
        self.file = file
        head = f"{file}: " if file else ""
        super().__init__(head + "; ".join(str(i) for i in self.issues))


class QuerySyntaxError(NewswatchError):
    """A query does not parse. ``column`` is 1-based and points at the offending character."""

    def __init__(self, message: str, query: str, column: int) -> None:
        self.message = message
        self.query = query
        self.column = column
        super().__init__(f"{message} at column {column}")

    def caret(self) -> str:
        """The query with a caret under the offending column, for terminals and code blocks."""
        return f"{self.query}\n{' ' * (self.column - 1)}^"


class LookupBusyError(NewswatchError):
    """A lookup (a search, a trend) waited longer than it may for the lookups' threads, which
    other lookups held: nothing is wrong with it, and the same lookup may succeed later."""


class SourceError(NewswatchError):
    """A source could not be read this time; the source is retried with backoff.

    Its text names the URL without its credentials (a private feed's ``?token=``, see
    :func:`watchers.urls.without_credentials`): it is logged, kept as the source's last error
    and shown to every server in /stats and in notices."""

    def __str__(self) -> str:
        return without_credentials(super().__str__())


class FetchBlockedError(SourceError):
    """A URL was refused before or while connecting (scheme, address range, redirect, size)."""


class FetchQueuedError(SourceError):
    """A fetch waited too long for a connection (the host's other feeds held all it may have):
    it never reached the source, so it does not count among the source's failures."""


class StoreError(NewswatchError):
    """The store could not complete an operation."""


class StoreGoneError(StoreError):
    """The SQLite database file was removed or replaced (or its folder was) while the store
    had it open: what was written to it went with that file."""


class StoreEmptyError(StoreError):
    """A database opened to be read holds no newswatch tables yet (made by hand, or by
    ``createdb``): nothing is stored in it."""


class StoreCorruptError(StoreError):
    """The database file is damaged (SQLite finds it malformed): nothing more can be read or
    written through it until it is restored from a backup or moved aside."""


class StoreUnavailableError(StoreError):
    """The store could not be reached for now: its server is restarting or the connection was
    lost, or (PostgreSQL) the writer lock is being taken back after its session ended. Nothing
    was written by the failed operation, unless it failed while committing; the same work may
    succeed later. The engine waits for the store (up to :data:`STORE_OUTAGE_LIMIT` seconds)
    instead of stopping."""


# Seconds the engine waits for an unreachable store before it stops with the last error.
STORE_OUTAGE_LIMIT = 120.0


class DeliveryError(NewswatchError):
    """A sink could not deliver an alert."""


class TransientDeliveryError(DeliveryError):
    """Delivery failed for a reason that may pass; ``retry_after`` seconds if the remote said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class UncertainDeliveryError(TransientDeliveryError):
    """The request may have reached the destination and the answer was lost (connection dropped
    or timed out after sending). Retried like any transient error, but recorded on the alert so a
    sink that cannot deduplicate by itself can check before sending again."""


class PermanentDeliveryError(DeliveryError):
    """Delivery failed and retrying the same body will fail again.

    ``pause_destination`` is true when the destination itself is unusable (no access, unknown
    channel or webhook): its alerts are held rather than rejected. ``maybe_sent``: part of the
    message went out before the failure (a digest's earlier parts), so a later try looks for
    what was posted before posting again.
    """

    def __init__(self, message: str, *, pause_destination: bool = False,
                 maybe_sent: bool = False) -> None:
        self.pause_destination = pause_destination
        self.maybe_sent = maybe_sent
        super().__init__(message)
