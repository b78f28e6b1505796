"""Quiet channels on PostgreSQL: the rules of :mod:`watchers.store.sqlite.schedule`.

:meth:`ScheduleMixin.make_digests` moves every due scheduled row of a route into one new
``digest`` row in one transaction, under the route's advisory lock, so two processes making
digests at once never carry a member twice; a cap summary kept with them is released after it
as a notice, as in SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from watchers.config import RuleConfig
from watchers.models import UNTIMED
from watchers.store.base import LIVE_ALERT_STATES, OutboxRow
from watchers.store.postgres._db import Pg, rowcount
from watchers.store.postgres.outbox import OUTBOX_COLS, insert_notice, row_of
from watchers.store.sqlite._db import surge_rules

# The alerts of a story that still speak for it on a route (see LIVE_ALERT_STATES).
_LIVE = ", ".join(f"'{state}'" for state in LIVE_ALERT_STATES)

__all__ = ["ScheduleMixin"]


class ScheduleMixin:
    """The scheduling part of :class:`PostgresStore`."""

    _db: Pg

    async def schedule(self, row_id: int, until: datetime, reason: str) -> None:
        """Keep a claimed row for the digest due at ``until``."""
        await self._db.execute(
            "UPDATE outbox SET state = 'scheduled', scheduled_for = $1, reason = $2, "
            "updated_at = $3 WHERE id = $4", until, reason, datetime.now(UTC), row_id)

    async def sent_since(self, route: str, since: datetime,
                         until: datetime | None = None) -> int:
        """Alert messages the route posted at or after ``since`` (and before ``until``)."""
        return int(await self._db.fetchval(
            "SELECT count(*) FROM outbox WHERE route = $1 AND state = 'delivered' AND "
            "updated_at >= $2 AND ($3::timestamptz IS NULL OR updated_at < $3) AND "
            "kind = 'alert' AND digest_id IS NULL", route, since, until))

    async def make_digests(self, now: datetime) -> list[int]:
        """One digest row per route and reason whose scheduled rows are due at ``now``,
        carrying them all, and after it a notice for each cap summary kept with them (see the
        SQLite store's); returns the ids of the rows written."""
        made: list[int] = []
        kept = ("route = $1 AND state = 'scheduled' AND scheduled_for <= $2 "
                "AND reason IS NOT DISTINCT FROM $3")
        async with self._db.tx() as conn:
            due = await conn.fetch(
                "SELECT route, reason, min(scheduled_for) AS first FROM outbox "
                "WHERE state = 'scheduled' AND scheduled_for <= $1 GROUP BY route, reason "
                "ORDER BY route COLLATE \"C\", first, reason COLLATE \"C\"", now)
            for route, reason, _ in due:
                await self._db.lock_route(conn, route)
                # Read again under the route's lock: another delivering process may have made
                # this digest since (an empty digest would be posted otherwise).
                if await conn.fetchval(
                        f"SELECT EXISTS (SELECT 1 FROM outbox WHERE {kept} "
                        "AND kind <> 'summary')", route, now, reason):
                    digest = await insert_notice(conn, route, reason, now, kind="digest")
                    await conn.execute(
                        "UPDATE outbox SET state = 'digested', digest_id = $4, updated_at = $2 "
                        f"WHERE {kept} AND kind <> 'summary'", route, now, reason, digest)
                    made.append(digest)
                for summary_id, text, rules in await conn.fetch(
                        f"SELECT id, text, rules::text FROM outbox WHERE {kept} "
                        "AND kind = 'summary' ORDER BY id", route, now, reason):
                    # With the summary's rules, as in SQLite.
                    notice = await insert_notice(conn, route, text or "", now, rules=rules)
                    await conn.execute(
                        "UPDATE outbox SET state = 'digested', digest_id = $1, updated_at = $2 "
                        "WHERE id = $3", notice, now, summary_id)
                    made.append(notice)
        return made

    async def reschedule(self, route: str, reason: str, until: datetime) -> int:
        """Bring what the route keeps for ``reason`` due by ``until`` where it was due later."""
        return await self._db.execute(
            "UPDATE outbox SET scheduled_for = $1 WHERE route = $2 AND state = 'scheduled' "
            "AND reason = $3 AND scheduled_for > $1", until, route, reason)

    async def digest_members(self, digest_id: int) -> list[OutboxRow]:
        """The rows a digest carries, in the order they were written."""
        rows = await self._db.fetch(
            f"SELECT {OUTBOX_COLS} FROM outbox WHERE digest_id = $1 ORDER BY id", digest_id)
        return [row_of(r) for r in rows]

    async def digest_now(self, route: str, now: datetime, *, pending: bool = False) -> int:
        """Make everything scheduled on the route due now; how many rows the digest carries
        (a cap summary kept with them is not one; ``pending``: see the SQLite store's)."""
        async with self._db.tx() as conn:
            if pending:
                await conn.execute(
                    "UPDATE outbox SET state = 'scheduled', scheduled_for = $1, "
                    "reason = 'digest', updated_at = $1 WHERE route = $2 AND kind = 'alert' "
                    "AND state IN ('pending', 'retry') AND NOT maybe_sent", now, route)
            made = rowcount(await conn.execute(
                "UPDATE outbox SET scheduled_for = $1 WHERE route = $2 AND state = 'scheduled' "
                "AND kind <> 'summary'", now, route))
            if made:
                # a cap summary follows the digest it was kept with (see the SQLite store's)
                await conn.execute(
                    "UPDATE outbox SET scheduled_for = $1 WHERE route = $2 AND "
                    "state = 'scheduled' AND kind = 'summary'", now, route)
            return made

    async def scheduled_routes(self) -> dict[str, tuple[int, datetime | None]]:
        """Per route: how many rows wait for a digest (a kept cap summary is none), and when
        the next one is due."""
        rows = await self._db.fetch(
            "SELECT route, count(*) FILTER (WHERE kind <> 'summary'), min(scheduled_for) "
            "FROM outbox WHERE state = 'scheduled' GROUP BY route")
        return {str(r): (int(n), at) for r, n, at in rows}

    async def kept_summaries(self) -> dict[str, int]:
        """Per route: how many cap summaries wait for the end of its quiet hours."""
        rows = await self._db.fetch(
            "SELECT route, count(*) FROM outbox WHERE state = 'scheduled' AND kind = 'summary' "
            "GROUP BY route")
        return {str(r): int(n) for r, n in rows}

    async def scheduled_story_row(self, story_id: str, route: str) -> OutboxRow | None:
        """The story's newest alert on the route if it waits for or went out in a digest (not
        when a newer one was posted on its own, as the SQLite store's)."""
        rows = await self._db.fetch(
            f"SELECT {OUTBOX_COLS} FROM outbox WHERE story_id = $1 AND route = $2 AND "
            f"kind = 'alert' AND state IN ({_LIVE}) ORDER BY id DESC LIMIT 1",
            story_id, route)
        if not rows:
            return None
        row = row_of(rows[0])
        return row if row.state in ("scheduled", "digested") else None

    # ------------------------------------------------------------------ surges

    async def last_surge(self, rule: str) -> datetime | None:
        value: datetime | None = await self._db.fetchval(
            "SELECT last_at FROM surges WHERE rule = $1", rule)
        return value

    async def add_surge(self, rule: str, route: str, text: str, at: datetime,
                        not_since: datetime | None = None, *,
                        model: RuleConfig | None = None) -> int:
        """Queue a surge alert on a route and start the rule's cooldown, in one transaction;
        with ``not_since``, only if the rule's last surge is older (else 0, nothing written):
        two polls (or workers) that found the same surge at once post it once; a last surge
        as far ahead of ``at`` as ``not_since`` is behind it (a clock that ran ahead) holds
        nothing. ``model``: the rule's, kept with the surge (one whose rule is muted before it
        is sent is not sent)."""
        ahead = None if not_since is None else at + (at - not_since)
        async with self._db.tx() as conn:
            taken = await conn.fetchval(
                "INSERT INTO surges (rule, last_at) VALUES ($1, $2) ON CONFLICT (rule) "
                "DO UPDATE SET last_at = excluded.last_at WHERE $3::timestamptz IS NULL "
                "OR surges.last_at < $3::timestamptz OR surges.last_at > $4::timestamptz "
                "RETURNING rule", rule, at, not_since, ahead)
            if taken is None:
                return 0  # cooling down: another poll or worker posted this surge
            return await insert_notice(conn, route, text, at, kind="surge",
                                       rules=surge_rules(model))

    async def match_times(self, rules: Sequence[str], since: datetime
                          ) -> dict[str, list[datetime]]:
        """When each rule matched (the time the match was recorded), since ``since``."""
        out: dict[str, list[datetime]] = {r: [] for r in rules}
        rows = await self._db.fetch(
            "SELECT rule, matched_at FROM matches WHERE rule = ANY($1::text[]) AND "
            "matched_at >= $2 AND NOT retired ORDER BY rule, matched_at", list(rules), since)
        for rule, at in rows:
            out[str(rule)].append(at)
        return out

    async def first_match(self, rule: str) -> datetime | None:
        value: datetime | None = await self._db.fetchval(
            "SELECT min(matched_at) FROM matches WHERE rule = $1 AND matched_at > $2 "
            "AND NOT retired", rule,
            UNTIMED)  # (an undated article of history's: no time)
        return value

    async def top_stories(self, rule: str, since: datetime, limit: int = 3
                          ) -> list[tuple[str, int]]:
        """The stories the rule matched most since ``since``, counted per story (an article
        without a story is its own), most articles first; each by the title of the earliest
        article the rule matched in it (see the SQLite store's)."""
        rows = await self._db.fetch(
            "SELECT (array_agg(a.title ORDER BY a.sort_at, a.id))[1] AS headline, "
            "count(*) AS n FROM matches m JOIN articles a ON a.id = m.article_id "
            "WHERE m.rule = $1 AND m.matched_at >= $2 AND NOT m.retired "
            "GROUP BY coalesce(a.story_id, a.id) "
            "ORDER BY n DESC, max(m.matched_at) DESC LIMIT $3", rule, since, limit)
        return [(str(h), int(n)) for h, n in rows]

    async def rule_times(self, rule: str, since: datetime) -> list[datetime]:
        """When the articles a rule matched were published (else fetched), since ``since``,
        oldest first."""
        rows = await self._db.fetch(
            "SELECT a.sort_at FROM matches m JOIN articles a ON a.id = m.article_id "
            "WHERE m.rule = $1 AND NOT m.retired AND a.sort_at >= $2 ORDER BY a.sort_at",
            rule, since)
        return [r[0] for r in rows]
