"""The Store protocol and the records it returns.

The store is the one place state lives: articles (deduplicated), the matches that fired, the alert
outbox, per-source state, and the rules, sources and mutes that users add at run time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from watchers.models import Article, Match

__all__ = [
    "AlertState",
    "OutboxEntry",
    "OutboxRow",
    "OutboxStore",
    "SourceState",
    "Store",
    "StoredRule",
    "StoredSource",
]

AlertState = Literal["pending", "sending", "delivered", "retry", "rejected", "held", "suppressed"]


@dataclass(frozen=True)
class OutboxEntry:
    """An alert to write with its article: which route, which rules fired, muted or not."""

    route: str
    rules: tuple[str, ...]
    suppressed: bool = False


@dataclass(frozen=True)
class OutboxRow:
    """One alert in the outbox: an article for one route, with its delivery state."""

    id: int
    article_id: str
    route: str
    rules: tuple[str, ...]
    state: AlertState
    attempts: int
    nonce: str
    next_attempt_at: datetime | None
    remote_id: str | None
    reason: str | None
    created_at: datetime


@dataclass(frozen=True)
class SourceState:
    """What the service remembers of a source between polls and restarts."""

    name: str
    cursor: Mapping[str, str] = field(default_factory=dict)
    polls: int = 0
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    failures: int = 0
    next_poll: datetime | None = None
    paused: bool = False


class OutboxStore(Protocol):
    """The part of the store the delivery service uses (the alert outbox)."""

    async def get_article(self, article_id: str) -> Article | None: ...
    async def matches_for(self, article_id: str) -> list[Match]: ...
    async def claim_route(self, route: str, *, now: datetime, limit: int = 20
                          ) -> list[OutboxRow]: ...
    async def due_routes(self) -> dict[str, datetime | None]: ...
    async def mark_delivered(self, alert_id: int, remote_id: str | None) -> None: ...
    async def mark_retry(self, alert_id: int, *, at: datetime, reason: str) -> None: ...
    async def mark_rejected(self, alert_id: int, reason: str) -> None: ...
    async def mark_maybe_sent(self, alert_id: int) -> None: ...
    async def maybe_sent(self, alert_id: int) -> bool: ...
    async def count_maybe_sent(self) -> int: ...
    async def pause_route(self, route: str, reason: str) -> int: ...
    async def resume_route(self, route: str) -> int: ...
    async def paused_routes(self) -> dict[str, str]: ...
    async def held_counts(self) -> dict[str, int]: ...
    async def alert_counts(self) -> dict[str, int]: ...
    async def alerts(self, *, state: AlertState | None = None, limit: int = 1000
                     ) -> list[OutboxRow]: ...
    async def requeue_interrupted(self) -> int: ...


@dataclass(frozen=True)
class StoredRule:
    """A rule added at run time (through Discord), kept in the store."""

    name: str
    query: str
    channel: str = "alerts"
    severity: str = "medium"
    mention_role: int | None = None
    threshold: int | None = None
    created_by: str | None = None


@dataclass(frozen=True)
class StoredSource:
    """A feed added at run time (through Discord), kept in the store."""

    name: str
    url: str
    every_seconds: float = 300.0
    created_by: str | None = None


class Store(OutboxStore, Protocol):
    """Persistence for the engine. Every write is one short transaction."""

    async def aclose(self) -> None: ...

    # articles and matches
    async def is_known(self, article: Article) -> bool: ...
    async def record(
        self, article: Article, matches: Sequence[Match], alerts: Sequence[OutboxEntry]
    ) -> Article | None: ...
    async def count_articles(self) -> int: ...
    async def recent(
        self, *, rule: str | None = None, limit: int = 10
    ) -> list[tuple[Article, list[Match]]]: ...
    async def candidates(
        self,
        *,
        fts: str | None,
        since: datetime | None = None,
        source: str | None = None,
        limit: int = 2000,
    ) -> list[Article]: ...

    # source state
    async def source_state(self, name: str) -> SourceState | None: ...
    async def save_source_state(self, state: SourceState) -> None: ...
    async def all_source_states(self) -> list[SourceState]: ...

    # run-time rules, sources and mutes
    async def list_rules(self) -> list[StoredRule]: ...
    async def put_rule(self, rule: StoredRule) -> None: ...
    async def delete_rule(self, name: str) -> bool: ...
    async def list_sources(self) -> list[StoredSource]: ...
    async def put_source(self, source: StoredSource) -> None: ...
    async def delete_source(self, name: str) -> bool: ...
    async def mute(self, rule: str, until: datetime) -> None: ...
    async def unmute(self, rule: str) -> bool: ...
    async def mutes(self, *, now: datetime) -> Mapping[str, datetime]: ...
