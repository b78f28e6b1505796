"""Acknowledgement on PostgreSQL: the invariants of :mod:`watchers.store.sqlite.acks`.

- ``acks``: at most one row per alert, the first acknowledgement wins;
- ``not_relevant``: at most one row per (alert, person);
- ``escalations``: at most one row per alert, written with its notice, never for an
  acknowledged alert. An acknowledgement and an escalation of the same alert both lock the
  alert's outbox row first, so whichever commits second sees the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from watchers.store.base import AckRecord, OutboxRow, RuleFeedback
from watchers.store.postgres._db import Pg
from watchers.store.postgres.outbox import OUTBOX_COLS, insert_notice, row_of

__all__ = ["AcksMixin"]

_OUTBOX_COLS_O = ", ".join("o." + c.strip() for c in OUTBOX_COLS.split(","))
# A rule's key (RuleConfig.key) in an outbox row's ``rules`` (a config model per rule; a bare
# name in rows from before rules were snapshotted).
_RULE_KEY = ("CASE jsonb_typeof(j.value) WHEN 'object' THEN "
             "CASE WHEN j.value->'guild_id' IS NULL OR jsonb_typeof(j.value->'guild_id') = 'null' "
             "THEN j.value->>'name' ELSE (j.value->>'guild_id') || ':' || (j.value->>'name') END "
             "ELSE j.value #>> '{}' END")


class AcksMixin:
    """The :class:`watchers.store.base.AckStore` part of :class:`PostgresStore`."""

    _db: Pg

    async def alert_row(self, alert_id: int) -> OutboxRow | None:
        """The outbox row of an alert (kind ``alert``) by id, or None."""
        rows = await self._db.fetch(
            f"SELECT {OUTBOX_COLS} FROM outbox WHERE id = $1 AND kind = 'alert'", alert_id)
        return row_of(rows[0]) if rows else None

    async def acknowledge(self, alert_id: int, user_id: int, at: datetime) -> AckRecord:
        """Record that ``user_id`` acknowledged the alert at ``at``, unless someone did first;
        returns the acknowledgement that stands (``first``: this one)."""
        async with self._db.tx() as conn:
            await conn.execute("SELECT 1 FROM outbox WHERE id = $1 FOR UPDATE", alert_id)
            inserted = await conn.fetchval(
                "INSERT INTO acks (alert_id, user_id, at) VALUES ($1, $2, $3) "
                "ON CONFLICT (alert_id) DO NOTHING RETURNING 1", alert_id, user_id, at)
            row = await conn.fetchrow("SELECT user_id, at FROM acks WHERE alert_id = $1",
                                      alert_id)
        assert row is not None
        return AckRecord(alert_id, int(row["user_id"]), row["at"], first=inserted is not None)

    async def get_ack(self, alert_id: int) -> AckRecord | None:
        rows = await self._db.fetch("SELECT user_id, at FROM acks WHERE alert_id = $1",
                                    alert_id)
        if not rows:
            return None
        return AckRecord(alert_id, int(rows[0]["user_id"]), rows[0]["at"], first=False)

    async def mark_not_relevant(self, alert_id: int, user_id: int, at: datetime) -> bool:
        """Record that ``user_id`` finds the alert not relevant; False if they said so before."""
        async with self._db.tx() as conn:
            inserted = await conn.fetchval(
                "INSERT INTO not_relevant (alert_id, user_id, at) VALUES ($1, $2, $3) "
                "ON CONFLICT (alert_id, user_id) DO NOTHING RETURNING 1", alert_id, user_id, at)
        return inserted is not None

    async def escalation_due(self, *, delivered_before: datetime, delivered_after: datetime,
                             severities: Sequence[str], limit: int = 100) -> list[OutboxRow]:
        """Posted alerts of these severities, delivered in (``delivered_after``,
        ``delivered_before``], not acknowledged and not escalated yet; oldest first."""
        if not severities:
            return []
        rows = await self._db.fetch(
            f"SELECT {_OUTBOX_COLS_O} FROM outbox o WHERE o.state = 'delivered' AND "
            "o.kind = 'alert' AND o.remote_id IS NOT NULL AND o.severity = ANY($1::text[]) AND "
            "o.updated_at <= $2 AND o.updated_at > $3 AND "
            "NOT EXISTS (SELECT 1 FROM acks k WHERE k.alert_id = o.id) AND "
            "NOT EXISTS (SELECT 1 FROM escalations e WHERE e.alert_id = o.id) "
            "ORDER BY o.id LIMIT $4",
            list(severities), delivered_before, delivered_after, limit)
        return [row_of(r) for r in rows]

    async def escalate(self, alert_id: int, route: str, text: str, at: datetime) -> int | None:
        """Queue the alert's escalation notice and remember it, in one transaction; None when
        the alert was acknowledged or escalated meanwhile. Returns the notice's id."""
        async with self._db.tx() as conn:
            await conn.execute("SELECT 1 FROM outbox WHERE id = $1 FOR UPDATE", alert_id)
            done = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM acks WHERE alert_id = $1) OR "
                "EXISTS (SELECT 1 FROM escalations WHERE alert_id = $1)", alert_id)
            if done:
                return None
            notice = await insert_notice(conn, route, text, at)
            await conn.execute(
                "INSERT INTO escalations (alert_id, notice_id, at) VALUES ($1, $2, $3)",
                alert_id, notice, at)
            return notice

    async def rule_feedback(self, *, since: datetime) -> dict[str, RuleFeedback]:
        """Per rule (by key): its alerts written since ``since`` that were posted, how many
        were acknowledged, how many someone found not relevant; not an alert whose match of
        the rule is retired (an earlier rule's of that key, see ``delete_rule``)."""
        rows = await self._db.fetch(
            f"SELECT {_RULE_KEY} AS rule, count(DISTINCT o.id), count(DISTINCT k.alert_id), "
            "count(DISTINCT n.alert_id) "
            "FROM outbox o CROSS JOIN LATERAL jsonb_array_elements(o.rules) j "
            "LEFT JOIN acks k ON k.alert_id = o.id "
            "LEFT JOIN not_relevant n ON n.alert_id = o.id "
            "WHERE o.kind = 'alert' AND o.created_at >= $1 AND o.state = 'delivered' "
            "AND NOT EXISTS (SELECT 1 FROM matches r WHERE r.article_id = o.article_id "
            f"AND r.rule = {_RULE_KEY} AND r.retired) "
            "GROUP BY 1", since)
        return {str(rule): RuleFeedback(int(a), int(k), int(n))
                for rule, a, k, n in rows if rule is not None}
