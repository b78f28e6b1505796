"""Acknowledgement in the store: who acknowledged a posted alert, who found it not relevant, and
the one escalation of an alert nobody acknowledged.

Invariants:
- ``acks`` holds at most one row per alert: the first acknowledgement wins and a later click
  reads it back (``AckRecord.first`` is false), so an acknowledgement never changes hands.
- ``not_relevant`` holds at most one row per (alert, person): a second click counts nothing.
- ``escalations`` holds at most one row per alert, written in the same transaction as the notice
  it queues, and never for an acknowledged alert: an alert is re-pinged once or not at all,
  whatever crashes or concurrent clicks happen.
- Every row belongs to an outbox row of kind ``alert`` (deleted with it).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

from watchers.store.base import AckRecord, OutboxRow, RuleFeedback
from watchers.store.sqlite._db import Db, dt, iso, now
from watchers.store.sqlite.outbox import OUTBOX_COLS, row_of

__all__ = ["AcksMixin"]

# A rule's key (RuleConfig.key) in an outbox row's ``rules`` (JSON of each RuleConfig; a name
# only in rows written before schema 4, whose rules had no server).
_RULE_NAME = ("CASE j.type WHEN 'object' THEN "
              "CASE WHEN json_extract(j.value, '$.guild_id') IS NULL "
              "THEN json_extract(j.value, '$.name') "
              "ELSE json_extract(j.value, '$.guild_id') || ':' || json_extract(j.value, '$.name') "
              "END ELSE j.value END")


class AcksMixin:
    """The :class:`watchers.store.base.AckStore` part of :class:`SqliteStore`."""

    _db: Db

    async def alert_row(self, alert_id: int) -> OutboxRow | None:
        """The outbox row of an alert (kind ``alert``) by id, or None."""
        rows = await self._db.fetchall(
            f"SELECT {OUTBOX_COLS} FROM outbox WHERE id = ? AND kind = 'alert'", (alert_id,))
        return row_of(rows[0]) if rows else None

    async def acknowledge(self, alert_id: int, user_id: int, at: datetime) -> AckRecord:
        """Record that ``user_id`` acknowledged the alert at ``at``, unless someone did first;
        returns the acknowledgement that stands (``first``: this one)."""
        async with self._db.tx() as tx:
            cur = await tx.execute(
                "INSERT INTO acks (alert_id, user_id, at) VALUES (?, ?, ?) "
                "ON CONFLICT (alert_id) DO NOTHING", (alert_id, user_id, iso(at)))
            first = cur.rowcount == 1
            by, when = await tx.fetchone("SELECT user_id, at FROM acks WHERE alert_id = ?",
                                         (alert_id,))
        return AckRecord(alert_id, int(by), dt(when) or at, first=first)

    async def get_ack(self, alert_id: int) -> AckRecord | None:
        rows = await self._db.fetchall("SELECT user_id, at FROM acks WHERE alert_id = ?",
                                       (alert_id,))
        if not rows:
            return None
        by, when = rows[0]
        return AckRecord(alert_id, int(by), dt(when) or now(), first=False)

    async def mark_not_relevant(self, alert_id: int, user_id: int, at: datetime) -> bool:
        """Record that ``user_id`` finds the alert not relevant; False if they said so before."""
        async with self._db.tx() as tx:
            cur = await tx.execute(
                "INSERT INTO not_relevant (alert_id, user_id, at) VALUES (?, ?, ?) "
                "ON CONFLICT (alert_id, user_id) DO NOTHING", (alert_id, user_id, iso(at)))
            return cur.rowcount == 1

    async def escalation_due(self, *, delivered_before: datetime, delivered_after: datetime,
                             severities: Sequence[str], limit: int = 100) -> list[OutboxRow]:
        """Posted alerts of these severities, delivered in (``delivered_after``,
        ``delivered_before``], that nobody acknowledged and that were not escalated yet; oldest
        first. The lower bound keeps alerts from before acknowledgement existed (or from long
        ago) quiet."""
        if not severities:
            return []
        marks = ", ".join("?" for _ in severities)
        rows = await self._db.fetchall(
            f"SELECT {OUTBOX_COLS} FROM outbox o WHERE o.state = 'delivered' AND "
            f"o.kind = 'alert' AND o.remote_id IS NOT NULL AND o.severity IN ({marks}) AND "
            "o.updated_at <= ? AND o.updated_at > ? AND "
            "NOT EXISTS (SELECT 1 FROM acks k WHERE k.alert_id = o.id) AND "
            "NOT EXISTS (SELECT 1 FROM escalations e WHERE e.alert_id = o.id) "
            "ORDER BY o.id LIMIT ?",
            (*severities, iso(delivered_before), iso(delivered_after), limit))
        return [row_of(r) for r in rows]

    async def escalate(self, alert_id: int, route: str, text: str, at: datetime) -> int | None:
        """Queue the alert's escalation notice on ``route`` and remember it, in one
        transaction; None (nothing written) when the alert was acknowledged or escalated
        meanwhile. Returns the notice's outbox id."""
        when = iso(at)
        async with self._db.tx() as tx:
            done = await tx.fetchone(
                "SELECT (SELECT count(*) FROM acks WHERE alert_id = ?) + "
                "(SELECT count(*) FROM escalations WHERE alert_id = ?)", (alert_id, alert_id))
            if done[0]:
                return None
            cur = await tx.execute(
                "INSERT INTO outbox (kind, article_id, route, rules, text, state, nonce, "
                "created_at, updated_at) VALUES ('notice', NULL, ?, '[]', ?, 'pending', ?, ?, ?)",
                (route, text, secrets.token_hex(12), when, when))
            notice = int(cur.lastrowid or 0)
            await tx.execute("INSERT INTO escalations (alert_id, notice_id, at) VALUES (?, ?, ?)",
                             (alert_id, notice, when))
            return notice

    async def rule_feedback(self, *, since: datetime) -> dict[str, RuleFeedback]:
        """Per rule (by key): its alerts written since ``since`` that were posted, how many of
        them were acknowledged, how many someone found not relevant. An alert whose match of
        the rule is retired (see ``delete_rule``) is an earlier rule's of that key: not
        counted."""
        rows = await self._db.fetchall(
            f"SELECT {_RULE_NAME} AS rule, count(DISTINCT o.id), count(DISTINCT k.alert_id), "
            "count(DISTINCT n.alert_id) "
            "FROM outbox o INDEXED BY outbox_alerts_created JOIN json_each(o.rules) j "
            "LEFT JOIN acks k ON k.alert_id = o.id "
            "LEFT JOIN not_relevant n ON n.alert_id = o.id "
            "WHERE o.kind = 'alert' AND o.created_at >= ? AND o.state = 'delivered' "
            "AND NOT EXISTS (SELECT 1 FROM matches r WHERE r.article_id = o.article_id "
            f"AND r.rule = {_RULE_NAME} AND r.retired = 1) "
            "GROUP BY rule", (iso(since),))
        return {str(rule): RuleFeedback(int(a), int(k), int(n))
                for rule, a, k, n in rows if rule is not None}
