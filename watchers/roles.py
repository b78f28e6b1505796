"""Roles: one newswatch split across processes and machines that share a PostgreSQL store.

``newswatch run --role all|poll|deliver|bot``:

- ``all`` (the default): one process does everything, as it always has. It takes the store's
  one-writer lock, so a second ``all`` (or a role process started by mistake beside it on
  SQLite) refuses to start instead of requeueing the first one's alerts.
- ``poll``: the WatchService only — sources, matching, articles and outbox rows. Any number of
  poll workers share the sources through leases on ``source_state``
  (:class:`watchers.store.LeaseStore`): each due source is claimed by one worker, polled from
  the state stored at claim time, saved at once and released; a killed worker's leases expire
  after ``lease`` and its sources are claimed by the others.
- ``deliver``: the DeliveryService only. The outbox's NOTIFY wakes it the moment rows are
  written (its own poll of the table is a slow safety net); a route is delivered by one process
  at a time, in order, and only a dead process's half-sent rows are requeued (marked maybe
  sent, so the nonce check keeps Discord messages exactly once).
- ``bot``: slash commands only (lookups and changes); it neither polls nor delivers.

Every role process opens the store without the one-writer lock and LISTENs for changes: a
rule, source, server route, mute or pause written by any process (the bot, the CLI) reaches
every worker within moments (see :meth:`watchers.engine.Engine.reload`). Roles other than
``all`` need PostgreSQL: SQLite is one process's by design. Leases and schedules are written
by each process's own clock, so ``poll``, ``deliver`` and ``bot`` processes compare theirs with
the database server's and warn when they disagree (:mod:`watchers.skew`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, get_args

from watchers.errors import ConfigError, ConfigIssue
from watchers.store.open import is_postgres_url

__all__ = ["MIN_LEASE", "ROLES", "Role", "check_role"]

Role = Literal["all", "poll", "deliver", "bot"]
ROLES: tuple[str, ...] = get_args(Role)


# A lease is renewed every third of it while a poll runs: shorter than a second, the renewals
# would flood the database and a worker slowed for a moment would lose its sources mid-poll.
MIN_LEASE = timedelta(seconds=1)


def check_role(role: str, target: str, lease: timedelta = MIN_LEASE) -> None:
    """Refuse a role that cannot run on the store ``target`` (a URL or an SQLite path), with
    an error naming ``[storage] url``, and a lease too short to hold a source (naming it)."""
    if lease < MIN_LEASE:
        raise ConfigError([ConfigIssue(
            "lease", f"a poll worker's lease must be at least {MIN_LEASE.total_seconds():g}s, "
            f"not {lease.total_seconds():g}s (it is renewed every third of it)")])
    if role not in ROLES:
        raise ConfigError([ConfigIssue("role", f"unknown role {role!r}; expected one of "
                                       f"{', '.join(ROLES)}")])
    if role != "all" and not is_postgres_url(target):
        raise ConfigError([ConfigIssue(
            "storage.url",
            f"--role {role} shares the database with other newswatch processes, which needs "
            "PostgreSQL: set [storage] url to a postgresql://… database (or env:VAR); the "
            "SQLite file is one process's (run without --role, or --role all)")])
