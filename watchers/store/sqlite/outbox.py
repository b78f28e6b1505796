"""The outbox: alerts and notices per route, and destinations paused across restarts.

State machine of a row (alert or notice alike)::

    pending ──claim──▶ sending ──▶ delivered | rejected
       ▲                  │
       └── retry ◀────────┘ (due again at next_attempt_at)
    pending/retry/sending ──pause──▶ held ──resume──▶ pending
    suppressed (a muted rule's alert: recorded, never claimed)
    waiting ──enough outlets──▶ pending      (a rule's min_sources; never claimed, never held)
    waiting ──story window ends──▶ uncorroborated (recorded, never sent)
    sending ──route schedule──▶ scheduled ──digest due──▶ digested (carried by a digest row)

Kinds: ``alert`` (an article, or a story's first article on the route), ``update`` (a later
article of a story whose alert is on the route: delivered as an edit or a thread post of the
story's message, see ``story_routes``), ``digest`` (the scheduled rows of a route, see
``schedule.py``), ``surge`` (a rule matching far more than usual), ``notice`` and ``summary``
(the per-poll cap's summary: a notice that quiet hours keep, released after their digest).

A route's rows are claimed strictly in id order (the order they were written): a claim stops at
the first row that is not due yet, so nothing overtakes a row waiting for a retry. A claim
interrupted by a crash comes back ``pending``, ``maybe_sent`` if its sink had been called (the
delivery marks a row before calling it: see ``mark_maybe_sent``). The nonce of a row is fixed
when it is written and kept for every attempt. An alert's ``rules`` are the rules as they were
when the article matched (JSON of each :class:`RuleConfig`); rows written before schema 4 hold
only rule names and read back as ``RuleConfig.model_construct(name=n, query="")``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection, Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from watchers.config import RuleConfig
from watchers.store.base import UNSENT_ALERT_SQL, AlertState, CapSummary, OutboxKind, OutboxRow
from watchers.store.sqlite._db import Db, Tx, dt, dump_model, iso, now

__all__ = ["OutboxMixin"]

OUTBOX_COLS = (
    "id, kind, article_id, route, rules, text, state, attempts, nonce, next_attempt_at, "
    "remote_id, reason, created_at, story_id, escalated_from, changed, min_sources, digest_id, "
    "scheduled_for"
)
_RULE_FIELDS = set(RuleConfig.model_fields)

# The rows delivery still has to send; the partial index outbox_waiting holds exactly these, by
# route in claim (id) order, so neither a claim nor due_routes reads past what it needs however
# long the history of delivered rows grows.
_WAITING = "state IN ('pending', 'retry')"
# The first waiting row of each route: a skip-scan over outbox_waiting (one index probe per
# route) rather than grouping every waiting row.
_DUE_ROUTES = f"""
WITH RECURSIVE waiting(route) AS (
    SELECT min(route) FROM outbox INDEXED BY outbox_waiting WHERE {_WAITING}
    UNION ALL
    SELECT (SELECT min(route) FROM outbox INDEXED BY outbox_waiting
            WHERE {_WAITING} AND route > w.route)
    FROM waiting w WHERE w.route IS NOT NULL
)
SELECT o.route, o.state, o.next_attempt_at FROM waiting w JOIN outbox o ON o.id = (
    SELECT min(id) FROM outbox INDEXED BY outbox_waiting WHERE {_WAITING} AND route = w.route)
"""


def _rule(item: Any) -> RuleConfig:
    if isinstance(item, str):  # a row written before schema 4: the rule's name only
        return RuleConfig.model_construct(name=item, query="")
    try:
        return RuleConfig.model_validate(item)
    except ValidationError:
        # A snapshot from an older model that no longer validates still names its rule.
        return RuleConfig.model_construct(**{k: v for k, v in item.items() if k in _RULE_FIELDS})


def row_of(row: Iterable[Any]) -> OutboxRow:
    (id_, kind, art, route, rules, text, state, attempts, nonce, nxt, remote, reason, created,
     story, escalated, changed, min_sources, digest, scheduled) = row
    return OutboxRow(
        id=id_,
        kind=kind,
        article_id=art,
        route=route,
        rules=tuple(_rule(r) for r in json.loads(rules)),
        text=text,
        state=state,
        attempts=attempts,
        nonce=nonce,
        next_attempt_at=dt(nxt),
        remote_id=remote,
        reason=reason,
        created_at=dt(created) or now(),
        story_id=story,
        escalated_from=escalated,
        changed=bool(changed),
        min_sources=int(min_sources),
        digest_id=digest,
        scheduled_for=dt(scheduled),
    )


INSERT_NOTICE = ("INSERT INTO outbox (kind, article_id, route, rules, text, state, nonce, "
                 "created_at, updated_at) VALUES ('notice', NULL, ?, '[]', ?, 'pending', ?, ?, ?)")


def notice_row(route: str, text: str, at: str | None
               ) -> tuple[str, str, str, str | None, str | None]:
    """The parameters of :data:`INSERT_NOTICE`: an operational notice queued at ``at``."""
    return route, text, secrets.token_hex(12), at, at


INSERT_SUMMARY = ("INSERT INTO outbox (kind, article_id, route, rules, text, state, nonce, "
                  "created_at, updated_at) VALUES ('summary', NULL, ?, ?, ?, 'pending', ?, ?, ?)")


def summary_rules(summary: CapSummary) -> str:
    """A cap summary's rules as the outbox stores an alert's: a JSON array of the models."""
    return "[" + ", ".join(dump_model(r) for r in summary.rules) + "]"


def summary_row(summary: CapSummary, at: str | None
                ) -> tuple[str, str, str, str, str | None, str | None]:
    """The parameters of :data:`INSERT_SUMMARY`: a poll's cap summary queued at ``at``."""
    return (summary.route, summary_rules(summary), summary.text, secrets.token_hex(12), at,
            at)


class OutboxMixin:
    """The :class:`watchers.store.OutboxStore` part of :class:`SqliteStore`."""

    _db: Db

    async def add_notice(self, route: str, text: str) -> int:
        """Queue an operational notice for a route, behind what the route already waits for.
        Returns its id."""
        at = iso(now())
        async with self._db.tx() as tx:
            cur = await tx.execute(INSERT_NOTICE, notice_row(route, text, at))
            return int(cur.lastrowid or 0)

    async def _set_state(self, alert_id: int, state: AlertState, **cols: Any) -> None:
        sets = "".join(f", {k} = ?" for k in cols)
        async with self._db.tx() as tx:
            await tx.execute(
                f"UPDATE outbox SET state = ?, updated_at = ?{sets} WHERE id = ?",
                (state, iso(now()), *cols.values(), alert_id),
            )

    async def mark_delivered(self, alert_id: int, remote_id: str | None, *,
                             at: datetime | None = None,
                             clear_maybe_sent: bool = False) -> None:
        """Record a delivery; ``at`` (default now) is when, as the route's hourly cap counts
        it (the delivery service passes its clock). ``clear_maybe_sent``: the only doubt was
        this attempt's own (see :meth:`mark_maybe_sent`), which its answer settles."""
        async with self._db.tx() as tx:
            await tx.execute(
                "UPDATE outbox SET state = 'delivered', remote_id = ?, reason = NULL, "
                "updated_at = ?, maybe_sent = CASE WHEN ? THEN 0 ELSE maybe_sent END "
                "WHERE id = ?", (remote_id, iso(at or now()), clear_maybe_sent, alert_id))

    async def mark_retry(self, alert_id: int, *, at: datetime, reason: str) -> None:
        await self._set_state(alert_id, "retry", next_attempt_at=iso(at), reason=reason)

    async def clamp_retries(self, latest: datetime, now: datetime) -> int:
        async with self._db.tx() as tx:
            cur = await tx.execute(
                "UPDATE outbox SET next_attempt_at = ? WHERE state = 'retry' "
                "AND next_attempt_at > ?", (iso(now), iso(latest)))
            return cur.rowcount

    async def mark_rejected(self, alert_id: int, reason: str) -> None:
        await self._set_state(alert_id, "rejected", reason=reason)

    async def reject_alerts_of(self, source: str, routes: Collection[str], reason: str) -> int:
        """The alerts on ``routes`` of articles of ``source`` not sent yet (pending, retried,
        held, waiting for corroboration or kept for a digest) are rejected with ``reason``;
        returns how many (see :meth:`watchers.store.base.OutboxStore.reject_alerts_of`)."""
        names = list(dict.fromkeys(routes))
        if not names:
            return 0
        async with self._db.tx() as tx:
            cur = await tx.execute(
                "UPDATE outbox SET state = 'rejected', reason = ?, updated_at = ? WHERE id IN ("
                "SELECT o.id FROM outbox o INDEXED BY outbox_route JOIN articles a "
                "ON a.id = o.article_id WHERE o.route IN ("
                f"{','.join('?' * len(names))}) AND o.state IN ({UNSENT_ALERT_SQL}) "
                "AND o.kind = 'alert' AND a.source = ?)",
                (reason, iso(now()), *names, source))
            return cur.rowcount

    async def requeue_interrupted(self, route: str | None = None) -> int:
        """Put rows left ``sending`` by a crash back to ``pending``; returns how many. With
        ``route``: that route's only (a delivery cut short by the store going away)."""
        # A row that was being sent carries maybe_sent already (set before its sink was called,
        # see mark_maybe_sent); one claimed and not yet sent does not, and a digest route may
        # still keep it (all of a claim were marked, and posted at once with pings).
        async with self._db.tx() as tx:
            cur = await tx.execute(
                "UPDATE outbox SET state='pending', updated_at=? "
                "WHERE state='sending' AND (? IS NULL OR route = ?)",
                (iso(now()), route, route),
            )
            return cur.rowcount

    async def claim_route(self, route: str, *, now: datetime, limit: int = 20
                          ) -> list[OutboxRow]:
        """Move the route's next rows to ``sending``, strictly in the order they were written:
        the claim stops at the first row that is not due yet, so a later row never overtakes
        one that is waiting to be retried."""
        async with self._db.tx() as tx:
            found = await tx.fetchall(
                f"SELECT {OUTBOX_COLS} FROM outbox INDEXED BY outbox_waiting "
                f"WHERE route = ? AND {_WAITING} ORDER BY id LIMIT ?",
                (route, limit),
            )
            rows: list[OutboxRow] = []
            for r in map(row_of, found):
                if r.state == "retry" and r.next_attempt_at is not None and r.next_attempt_at > now:
                    break
                rows.append(r)
            await tx.executemany(
                "UPDATE outbox SET state='sending', attempts=attempts+1, updated_at=? WHERE id=?",
                [(iso(now), r.id) for r in rows],
            )
        return [replace(r, state="sending", attempts=r.attempts + 1) for r in rows]

    async def due_routes(self) -> dict[str, datetime | None]:
        """Routes with rows to send: when their oldest waiting row is due (None: now)."""
        rows = await self._db.fetchall(_DUE_ROUTES)
        return {str(route): (dt(nxt) if state == "retry" else None)
                for route, state, nxt in rows}

    async def mark_maybe_sent(self, alert_id: int, maybe: bool = True) -> None:
        """Record that an attempt may reach (or may have reached) the destination: before its
        sink is called, and when its outcome was lost. ``maybe`` False takes it back (the
        attempt's answer said nothing was posted)."""
        async with self._db.tx() as tx:
            await tx.execute("UPDATE outbox SET maybe_sent=?, updated_at=? WHERE id=?",
                             (1 if maybe else 0, iso(now()), alert_id))

    async def maybe_sent(self, alert_id: int) -> bool:
        rows = await self._db.fetchall("SELECT maybe_sent FROM outbox WHERE id = ?", (alert_id,))
        return bool(rows and rows[0][0])

    async def count_maybe_sent(self) -> int:
        rows = await self._db.fetchall("SELECT count(*) FROM outbox WHERE maybe_sent = 1")
        return int(rows[0][0])

    async def pause_route(self, route: str, reason: str) -> int:
        """Pause a destination and hold its waiting rows (alerts and notices), in one
        transaction (a crash cannot leave rows held for a route that is not paused). Returns
        how many alerts were held (those a held digest carries too)."""
        at = iso(now())
        async with self._db.tx() as tx:
            await tx.execute(
                "INSERT OR REPLACE INTO route_pauses (route, reason, paused_at) VALUES (?,?,?)",
                (route, reason, at),
            )
            held = 0
            for kind in ("alert", "notice", "update", "digest", "surge", "summary"):
                cur = await tx.execute(
                    "UPDATE outbox SET state='held', reason=?, updated_at=? WHERE route=? AND "
                    "state IN ('pending','retry','sending') AND kind=?",
                    (reason, at, route, kind),
                )
                held += cur.rowcount if kind == "alert" else 0
            return held + await _in_held_digests(tx, route)

    async def resume_route(self, route: str) -> int:
        """Lift a pause, or a backoff: the held rows become pending again, and the rows waiting
        for a retry are due now. Returns how many alerts were held (those a held digest
        carries too)."""
        at = iso(now())
        async with self._db.tx() as tx:
            await tx.execute("DELETE FROM route_pauses WHERE route = ?", (route,))
            carried = await _in_held_digests(tx, route)
            await tx.execute("UPDATE outbox SET next_attempt_at = ?, updated_at = ? "
                             "WHERE route = ? AND state = 'retry'", (at, at, route))
            resumed = 0
            for kind in ("alert", "notice", "update", "digest", "surge", "summary"):
                cur = await tx.execute(
                    "UPDATE outbox SET state='pending', reason=NULL, updated_at=? "
                    "WHERE route=? AND state='held' AND kind=?",
                    (at, route, kind),
                )
                resumed += cur.rowcount if kind == "alert" else 0
            return resumed + carried

    async def paused_routes(self) -> dict[str, str]:
        rows = await self._db.fetchall("SELECT route, reason FROM route_pauses ORDER BY route")
        return {str(r): str(reason) for r, reason in rows}

    async def held_counts(self) -> dict[str, int]:
        """Alerts held per paused route: held themselves, or carried by a held digest (a digest
        whose route paused part-way showed as "0 held")."""
        rows = await self._db.fetchall(
            "SELECT route, count(*) FROM outbox WHERE state = 'held' AND kind = 'alert' "
            "GROUP BY route UNION ALL " + _HELD_DIGESTS_BY_ROUTE)
        out: dict[str, int] = {}
        for r, n in rows:
            out[str(r)] = out.get(str(r), 0) + int(n)
        return out

    async def _counts(self, kind: OutboxKind, routes: Collection[str] | None = None
                      ) -> dict[str, int]:
        sql = "SELECT state, count(*) FROM outbox WHERE kind = ?"
        params: list[Any] = [kind]
        if routes is not None:
            keys = sorted(set(routes))
            sql += f" AND route IN ({','.join('?' * len(keys))})" if keys else " AND 0"
            params += keys
        rows = await self._db.fetchall(sql + " GROUP BY state", params)
        return {str(s): int(n) for s, n in rows}

    async def alert_counts(self, *, routes: Collection[str] | None = None) -> dict[str, int]:
        """Alerts (not notices) per state (with ``routes``: of those routes only)."""
        return await self._counts("alert", routes)

    async def notice_counts(self) -> dict[str, int]:
        """Notices per state."""
        return await self._counts("notice")

    async def alerts(self, *, state: AlertState | None = None, kind: OutboxKind | None = None,
                     limit: int = 1000, routes: Collection[str] | None = None,
                     newest: bool = False, after: int = 0) -> list[OutboxRow]:
        """Outbox rows in the order they were written, of one state and kind if given, and of
        ``routes`` only if given: the first ``limit`` of them, or with ``newest`` the last;
        only those written after the row ``after`` (an id) if given, to read on page by page."""
        where: list[str] = []
        params: list[Any] = []
        if after:
            where.append("id > ?")
            params.append(after)
        if state:
            where.append("state = ?")
            params.append(state)
        if kind:
            where.append("kind = ?")
            params.append(kind)
        if routes is not None:
            keys = sorted(set(routes))
            where.append(f"route IN ({','.join('?' * len(keys))})" if keys else "0")
            params += keys
        sql = f"SELECT {OUTBOX_COLS} FROM outbox"
        if where:
            sql += " WHERE " + " AND ".join(where)
        order = " ORDER BY id DESC LIMIT ?" if newest else " ORDER BY id LIMIT ?"
        rows = await self._db.fetchall(sql + order, (*params, limit))
        out = [row_of(r) for r in rows]
        return out[::-1] if newest else out


# The alerts that held digests carry (a digest row holds its members as ``digest_id``): per
# route, and of one route.
_HELD_DIGESTS = ("FROM outbox d JOIN outbox m INDEXED BY outbox_digest ON m.digest_id = d.id "
                 "WHERE d.state = 'held' AND d.kind = 'digest' AND m.kind = 'alert'")
_HELD_DIGESTS_BY_ROUTE = "SELECT d.route, count(*) " + _HELD_DIGESTS + " GROUP BY d.route"


async def _in_held_digests(tx: Tx, route: str) -> int:
    """How many alerts the route's held digests carry."""
    (n,) = await tx.fetchone("SELECT count(*) " + _HELD_DIGESTS + " AND d.route = ?", (route,))
    return int(n)
