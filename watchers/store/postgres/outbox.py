"""The outbox on PostgreSQL: the state machine of :mod:`watchers.store.sqlite.outbox`.

A route's rows are claimed strictly in id order under a transaction-scoped advisory lock on
the route (two deliverers never claim the same route's rows at once, so neither can overtake
the other's row waiting for a retry); the claimed rows are also locked ``FOR UPDATE`` until the
claim commits. A claim interrupted by a crash comes back ``pending``, ``maybe_sent`` if its
sink had been called (the delivery marks a row before calling it); a row's nonce is fixed
when it is written and kept for every attempt.

Several delivering processes: a claimed row records the claiming session (``claimed_by``, see
:mod:`._db`). A route whose rows another *live* session has claimed is that process's until
they are settled, so a claim elsewhere takes nothing (order is kept across processes, not only
within one); rows whose session is gone were interrupted and are put back ``pending`` (maybe
sent where their sink had been called) by the next claim of the route or by
:meth:`OutboxMixin.requeue_orphaned`.

PostgreSQL refuses NUL in text: reasons and notices (an error's text, which may quote what a
destination answered) are stored as :func:`watchers.models.storable` makes them, NUL removed.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection
from dataclasses import replace
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs (asyncpg-stubs is not a dependency)

from watchers.models import storable
from watchers.store.base import UNSENT_ALERT_SQL, AlertState, OutboxKind, OutboxRow
from watchers.store.postgres._db import SESSION_ID, Pg, now, rowcount
from watchers.store.sqlite.outbox import _rule

__all__ = ["OUTBOX_COLS", "OutboxMixin", "row_of"]

OUTBOX_COLS = (
    "id, kind, article_id, route, rules, text, state, attempts, nonce, next_attempt_at, "
    "remote_id, reason, created_at, story_id, escalated_from, changed, min_sources, digest_id, "
    "scheduled_for"
)
_KINDS = ["alert", "notice", "update", "digest", "surge", "summary"]
_WAITING = "state IN ('pending', 'retry')"
# The first waiting row of each route, read down the partial index outbox_waiting.
_DUE_ROUTES = (f"SELECT DISTINCT ON (route) route, state, next_attempt_at FROM outbox "
               f"WHERE {_WAITING} ORDER BY route, id")


# A 'sending' row whose claimer's session no longer exists (or predates claimers).
_ORPHAN = (f"(claimed_by IS NULL OR NOT EXISTS (SELECT 1 FROM pg_stat_activity a "
           f"WHERE {SESSION_ID} = outbox.claimed_by))")


def row_of(row: asyncpg.Record) -> OutboxRow:
    return OutboxRow(
        id=int(row["id"]),
        kind=row["kind"],
        article_id=row["article_id"],
        route=row["route"],
        rules=tuple(_rule(r) for r in json.loads(row["rules"])),
        text=row["text"],
        state=row["state"],
        attempts=row["attempts"],
        nonce=row["nonce"],
        next_attempt_at=row["next_attempt_at"],
        remote_id=row["remote_id"],
        reason=row["reason"],
        created_at=row["created_at"] or now(),
        story_id=row["story_id"],
        escalated_from=row["escalated_from"],
        changed=bool(row["changed"]),
        min_sources=int(row["min_sources"]),
        digest_id=row["digest_id"],
        scheduled_for=row["scheduled_for"],
    )


async def insert_notice(conn: asyncpg.Connection, route: str, text: str, at: datetime,
                        kind: str = "notice", rules: str = "[]") -> int:
    """A notice-like row (no article) queued behind what the route waits for; its id.
    ``rules``: a cap summary's, as JSON (see :class:`watchers.store.base.CapSummary`)."""
    return int(await conn.fetchval(
        "INSERT INTO outbox (kind, article_id, route, rules, text, state, nonce, created_at, "
        "updated_at) VALUES ($1, NULL, $2, $6::jsonb, $3, 'pending', $4, $5, $5) RETURNING id",
        kind, route, storable(text), secrets.token_hex(12), at, rules))


class OutboxMixin:
    """The :class:`watchers.store.OutboxStore` part of :class:`PostgresStore`."""

    _db: Pg

    async def add_notice(self, route: str, text: str) -> int:
        """Queue an operational notice for a route, behind what the route already waits for.
        Returns its id."""
        async with self._db.tx() as conn:
            return await insert_notice(conn, route, text, now())

    async def mark_delivered(self, alert_id: int, remote_id: str | None, *,
                             at: datetime | None = None,
                             clear_maybe_sent: bool = False) -> None:
        """Record a delivery; ``at`` (default now) is when, as the route's hourly cap counts
        it. ``clear_maybe_sent``: the only doubt was this attempt's own, which its answer
        settles."""
        await self._db.execute(
            "UPDATE outbox SET state = 'delivered', remote_id = $1, reason = NULL, "
            "updated_at = $2, maybe_sent = maybe_sent AND NOT $4 WHERE id = $3",
            remote_id, at or now(), alert_id, clear_maybe_sent)

    async def mark_retry(self, alert_id: int, *, at: datetime, reason: str) -> None:
        await self._db.execute(
            "UPDATE outbox SET state = 'retry', updated_at = $1, next_attempt_at = $2, "
            "reason = $3 WHERE id = $4", now(), at, storable(reason), alert_id)

    async def clamp_retries(self, latest: datetime, now: datetime) -> int:
        return await self._db.execute(
            "UPDATE outbox SET next_attempt_at = $1 WHERE state = 'retry' "
            "AND next_attempt_at > $2", now, latest)

    async def mark_rejected(self, alert_id: int, reason: str) -> None:
        await self._db.execute(
            "UPDATE outbox SET state = 'rejected', updated_at = $1, reason = $2 WHERE id = $3",
            now(), storable(reason), alert_id)

    async def reject_alerts_of(self, source: str, routes: Collection[str], reason: str) -> int:
        """See the SQLite store's."""
        names = list(dict.fromkeys(routes))
        if not names:
            return 0
        return await self._db.execute(
            "UPDATE outbox o SET state = 'rejected', reason = $1, updated_at = $2 "
            "FROM articles a WHERE a.id = o.article_id AND o.route = ANY($3::text[]) AND "
            f"o.state IN ({UNSENT_ALERT_SQL}) AND o.kind = 'alert' AND a.source = $4",
            storable(reason), now(), names, source)

    async def requeue_interrupted(self, route: str | None = None) -> int:
        """Put rows left ``sending`` by a crash back to ``pending`` (those whose sink was called
        are marked maybe sent already);
        returns how many. With ``route``: that route's rows claimed by this process, or by one
        that is gone (a delivery cut short by the database going away)."""
        if route is None:
            return await self._db.execute(
                "UPDATE outbox SET state = 'pending', updated_at = $1 "
                "WHERE state = 'sending'", now())
        me = await self._db.session_id()
        async with self._db.tx() as conn:
            await self._db.lock_route(conn, route)
            done = await conn.execute(
                "UPDATE outbox SET state = 'pending', claimed_by = NULL, "
                "updated_at = $1 WHERE route = $2 AND state = 'sending' "
                f"AND (claimed_by = $3 OR {_ORPHAN})", now(), route, me)
        return rowcount(done)

    async def requeue_orphaned(self) -> int:
        """Put back ``pending`` the rows left ``sending`` by a process that is
        gone, leaving live processes' claims alone; returns how many."""
        return await self._db.execute(
            "UPDATE outbox SET state = 'pending', claimed_by = NULL, "
            f"updated_at = $1 WHERE state = 'sending' AND {_ORPHAN}", now())

    async def claim_route(self, route: str, *, now: datetime, limit: int = 20
                          ) -> list[OutboxRow]:
        """Move the route's next rows to ``sending``, strictly in the order they were written:
        the claim stops at the first row that is not due yet."""
        me = await self._db.session_id()
        async with self._db.tx() as conn:
            await self._db.lock_route(conn, route)
            busy = await conn.fetch(
                f"SELECT id, claimed_by = $2 AS mine, {_ORPHAN} AS orphan FROM outbox "
                "WHERE route = $1 AND state = 'sending'", route, me)
            if any(not r["mine"] and not r["orphan"] for r in busy):
                return []  # another process is delivering this route
            orphans = [r["id"] for r in busy if not r["mine"] and r["orphan"]]
            if orphans:
                await conn.execute(
                    "UPDATE outbox SET state = 'pending', claimed_by = NULL, "
                    "updated_at = $1 WHERE id = ANY($2::bigint[])", now, orphans)
            found = await conn.fetch(
                f"SELECT {OUTBOX_COLS} FROM outbox WHERE route = $1 AND {_WAITING} "
                "ORDER BY id LIMIT $2 FOR UPDATE", route, limit)
            rows: list[OutboxRow] = []
            for r in map(row_of, found):
                if r.state == "retry" and r.next_attempt_at is not None and r.next_attempt_at > now:
                    break
                rows.append(r)
            if rows:
                await conn.execute(
                    "UPDATE outbox SET state = 'sending', attempts = attempts + 1, "
                    "updated_at = $1, claimed_by = $3 WHERE id = ANY($2::bigint[])",
                    now, [r.id for r in rows], me)
        return [replace(r, state="sending", attempts=r.attempts + 1) for r in rows]

    async def due_routes(self) -> dict[str, datetime | None]:
        """Routes with rows to send: when their oldest waiting row is due (None: now)."""
        rows = await self._db.fetch(_DUE_ROUTES)
        return {str(r["route"]): (r["next_attempt_at"] if r["state"] == "retry" else None)
                for r in rows}

    async def mark_maybe_sent(self, alert_id: int, maybe: bool = True) -> None:
        """Record that an attempt may reach (or may have reached) the destination: before its
        sink is called, and when its outcome was lost; ``maybe`` False takes it back."""
        await self._db.execute(
            "UPDATE outbox SET maybe_sent = $3, updated_at = $1 WHERE id = $2", now(), alert_id,
            maybe)

    async def maybe_sent(self, alert_id: int) -> bool:
        return bool(await self._db.fetchval("SELECT maybe_sent FROM outbox WHERE id = $1",
                                            alert_id))

    async def count_maybe_sent(self) -> int:
        return int(await self._db.fetchval("SELECT count(*) FROM outbox WHERE maybe_sent"))

    async def pause_route(self, route: str, reason: str) -> int:
        """Pause a destination and hold its waiting rows, in one transaction. Returns how many
        alerts were held."""
        at, reason = now(), storable(reason)
        async with self._db.tx() as conn:
            await self._db.lock_route(conn, route)
            await conn.execute(
                "INSERT INTO route_pauses (route, reason, paused_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (route) DO UPDATE SET reason = excluded.reason, "
                "paused_at = excluded.paused_at", route, reason, at)
            held = await conn.fetch(
                "UPDATE outbox SET state = 'held', reason = $1, updated_at = $2 "
                "WHERE route = $3 AND state IN ('pending', 'retry', 'sending') "
                "AND kind = ANY($4::text[]) RETURNING kind", reason, at, route, _KINDS)
            carried = await conn.fetchval(_IN_HELD_DIGESTS, route)
            return sum(1 for r in held if r["kind"] == "alert") + int(carried)

    async def resume_route(self, route: str) -> int:
        """Lift a pause, or a backoff: the held rows become pending again, and the rows waiting
        for a retry are due now. Returns how many alerts were held."""
        at = now()
        async with self._db.tx() as conn:
            await self._db.lock_route(conn, route)
            await conn.execute("DELETE FROM route_pauses WHERE route = $1", route)
            carried = await conn.fetchval(_IN_HELD_DIGESTS, route)
            await conn.execute("UPDATE outbox SET next_attempt_at = $1, updated_at = $1 "
                               "WHERE route = $2 AND state = 'retry'", at, route)
            resumed = await conn.fetch(
                "UPDATE outbox SET state = 'pending', reason = NULL, updated_at = $1 "
                "WHERE route = $2 AND state = 'held' AND kind = ANY($3::text[]) RETURNING kind",
                at, route, _KINDS)
            return sum(1 for r in resumed if r["kind"] == "alert") + int(carried)

    async def paused_routes(self) -> dict[str, str]:
        rows = await self._db.fetch(
            "SELECT route, reason FROM route_pauses ORDER BY route COLLATE \"C\"")
        return {str(r): str(reason) for r, reason in rows}

    async def held_counts(self) -> dict[str, int]:
        """Alerts held per paused route: held themselves, or carried by a held digest."""
        rows = await self._db.fetch(
            "SELECT route, count(*) FROM outbox WHERE state = 'held' AND kind = 'alert' "
            "GROUP BY route UNION ALL SELECT d.route, count(*) " + _HELD_DIGESTS
            + " GROUP BY d.route")
        out: dict[str, int] = {}
        for r, n in rows:
            out[str(r)] = out.get(str(r), 0) + int(n)
        return out

    async def _counts(self, kind: OutboxKind, routes: Collection[str] | None = None
                      ) -> dict[str, int]:
        sql = "SELECT state, count(*) FROM outbox WHERE kind = $1"
        params: list[Any] = [kind]
        if routes is not None:
            params.append(sorted(set(routes)))
            sql += " AND route = ANY($2::text[])"
        rows = await self._db.fetch(sql + " GROUP BY state", *params)
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
            params.append(after)
            where.append(f"id > ${len(params)}")
        if state:
            params.append(state)
            where.append(f"state = ${len(params)}")
        if kind:
            params.append(kind)
            where.append(f"kind = ${len(params)}")
        if routes is not None:
            params.append(sorted(set(routes)))
            where.append(f"route = ANY(${len(params)}::text[])")
        sql = f"SELECT {OUTBOX_COLS} FROM outbox"
        if where:
            sql += " WHERE " + " AND ".join(where)
        params.append(limit)
        order = "DESC " if newest else ""
        rows = await self._db.fetch(sql + f" ORDER BY id {order}LIMIT ${len(params)}", *params)
        out = [row_of(r) for r in rows]
        return out[::-1] if newest else out



# The alerts held digests carry (a digest row holds its members as digest_id): per route, and
# of one route.
_HELD_DIGESTS = ("FROM outbox d JOIN outbox m ON m.digest_id = d.id "
                 "WHERE d.state = 'held' AND d.kind = 'digest' AND m.kind = 'alert'")
_IN_HELD_DIGESTS = "SELECT count(*) " + _HELD_DIGESTS + " AND d.route = $1"
