"""Quiet channels in the store: alerts ``scheduled`` for a digest, digests as outbox rows, the
count of what a route sent in its current hour, and surges.

A scheduled row keeps its place in nothing: it waits until ``scheduled_for`` (the digest time,
the end of the quiet hours, the hour's roll-over). :meth:`ScheduleMixin.make_digests` then moves
every due scheduled row of a route into one new ``digest`` row, in one transaction: the members
become ``digested`` with the digest's id, and the digest is delivered like any outbox row (its
nonce fixed now), so a crash before, during or after leaves exactly one digest carrying each
member once. A digest due while the process was down is made at the next start.

A ``summary`` row (the per-poll cap's summary, kept by quiet hours) is no line of a digest: it
has no article, and a digest shows articles. In the same transaction it is released as a new
``notice`` row written after its digest (so it posts right after it), with the summary's text
and rules, and becomes ``digested`` with that notice's id.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from watchers.config import RuleConfig
from watchers.models import UNTIMED
from watchers.store.base import LIVE_ALERT_STATES, OutboxRow
from watchers.store.sqlite._db import Db, dt, iso, surge_rules
from watchers.store.sqlite.outbox import OUTBOX_COLS, row_of

# The alerts of a story that still speak for it on a route (see LIVE_ALERT_STATES).
_LIVE = ", ".join(f"'{state}'" for state in LIVE_ALERT_STATES)

__all__ = ["ScheduleMixin"]


class ScheduleMixin:
    """The scheduling part of :class:`SqliteStore` (see the module docstring)."""

    _db: Db

    async def schedule(self, row_id: int, until: datetime, reason: str) -> None:
        """Keep a claimed row for the digest due at ``until``."""
        at = iso(datetime.now(UTC))
        async with self._db.tx() as tx:
            await tx.execute(
                "UPDATE outbox SET state = 'scheduled', scheduled_for = ?, reason = ?, "
                "updated_at = ? WHERE id = ?", (iso(until), reason, at, row_id))

    async def sent_since(self, route: str, since: datetime,
                         until: datetime | None = None) -> int:
        """Alert messages the route posted at or after ``since`` (and before ``until``): what
        an hourly cap counts; edits, notices and digests do not count. The bound keeps a send
        stamped by a clock that ran ahead, then stepped back, out of every later hour."""
        rows = await self._db.fetchall(
            "SELECT count(*) FROM outbox INDEXED BY outbox_sent WHERE route = ? AND "
            "state = 'delivered' AND updated_at >= ? AND updated_at < ? AND kind = 'alert' "
            "AND digest_id IS NULL",
            (route, iso(since), iso(until) if until is not None else "9999"))
        return int(rows[0][0])

    async def make_digests(self, now: datetime) -> list[int]:
        """One digest row per route and reason whose scheduled rows are due at ``now``
        (what quiet hours kept and what the cap folded are two digests, each titled by its
        reason), carrying them all, and after it a notice for each cap summary kept with them
        (see the module docstring); returns the ids of the rows written."""
        made: list[int] = []
        at = iso(now)
        kept = "route = ? AND state = 'scheduled' AND scheduled_for <= ? AND reason IS ?"
        async with self._db.tx() as tx:
            due = await tx.fetchall(
                "SELECT route, reason, min(scheduled_for) AS first FROM outbox "
                "WHERE state = 'scheduled' AND scheduled_for <= ? GROUP BY route, reason "
                "ORDER BY route, first, reason", (at,))
            for route, reason, _ in due:
                (members,) = await tx.fetchone(
                    f"SELECT count(*) FROM outbox WHERE {kept} AND kind <> 'summary'",
                    (route, at, reason))
                if members:
                    cur = await tx.execute(
                        "INSERT INTO outbox (kind, route, text, state, nonce, created_at, "
                        "updated_at) VALUES ('digest', ?, ?, 'pending', ?, ?, ?)",
                        (route, reason, secrets.token_hex(12), at, at))
                    digest = int(cur.lastrowid or 0)
                    await tx.execute(
                        "UPDATE outbox SET state = 'digested', digest_id = ?, updated_at = ? "
                        f"WHERE {kept} AND kind <> 'summary'", (digest, at, route, at, reason))
                    made.append(digest)
                for (summary_id,) in await tx.fetchall(
                        f"SELECT id FROM outbox WHERE {kept} AND kind = 'summary' "
                        "ORDER BY id", (route, at, reason)):
                    # The notice keeps the summary's rules: one whose every rule is muted by
                    # then is not posted (see DeliveryService._muted_notice).
                    cur = await tx.execute(
                        "INSERT INTO outbox (kind, article_id, route, rules, text, state, nonce, "
                        "created_at, updated_at) SELECT 'notice', NULL, route, rules, "
                        "coalesce(text, ''), 'pending', ?, ?, ? FROM outbox WHERE id = ?",
                        (secrets.token_hex(12), at, at, summary_id))
                    notice = int(cur.lastrowid or 0)
                    await tx.execute(
                        "UPDATE outbox SET state = 'digested', digest_id = ?, updated_at = ? "
                        "WHERE id = ?", (notice, at, summary_id))
                    made.append(notice)
        return made

    async def reschedule(self, route: str, reason: str, until: datetime) -> int:
        """Bring what the route keeps for ``reason`` due by ``until`` where it was due later
        (the route's schedule changed); returns how many rows moved."""
        async with self._db.tx() as tx:
            cur = await tx.execute(
                "UPDATE outbox SET scheduled_for = ? WHERE route = ? AND state = 'scheduled' "
                "AND reason = ? AND scheduled_for > ?", (iso(until), route, reason, iso(until)))
            return cur.rowcount

    async def digest_members(self, digest_id: int) -> list[OutboxRow]:
        """The rows a digest carries, in the order they were written."""
        rows = await self._db.fetchall(
            f"SELECT {OUTBOX_COLS} FROM outbox INDEXED BY outbox_digest WHERE digest_id = ? "
            "ORDER BY id", (digest_id,))
        return [row_of(r) for r in rows]

    async def digest_now(self, route: str, now: datetime, *, pending: bool = False) -> int:
        """Make everything scheduled on the route due now (``/digest now``); returns how many
        rows the next digest will carry (a cap summary kept with them is released after it,
        and not counted; with none, it keeps waiting for its quiet hours' end). ``pending``:
        the route keeps every alert for its digest, so its alerts not yet claimed (behind a
        digest being sent, or a backoff), or put back unsent behind a digest that failed, join
        it too — they were left for the next digest, and the command said nothing waited."""
        async with self._db.tx() as tx:
            joined = 0
            if pending:
                cur = await tx.execute(
                    "UPDATE outbox SET state = 'scheduled', scheduled_for = ?, reason = 'digest', "
                    "updated_at = ? WHERE route = ? AND kind = 'alert' "
                    "AND state IN ('pending', 'retry') AND maybe_sent = 0",
                    (iso(now), iso(now), route))
                joined = cur.rowcount
            cur = await tx.execute(
                "UPDATE outbox SET scheduled_for = ? WHERE route = ? AND state = 'scheduled' "
                "AND kind <> 'summary'", (iso(now), route))
            made = max(cur.rowcount, joined)
            if made:
                # A cap summary follows the digest it was kept with; with no digest to send
                # it waits for its quiet hours' end ("nothing is waiting", and it posted).
                await tx.execute(
                    "UPDATE outbox SET scheduled_for = ? WHERE route = ? AND "
                    "state = 'scheduled' AND kind = 'summary'", (iso(now), route))
            return made

    async def scheduled_routes(self) -> dict[str, tuple[int, datetime | None]]:
        """Per route: how many rows wait for a digest, and when the next one is due (a cap
        summary kept for its end of quiet hours is due then, and is no row of the digest)."""
        rows = await self._db.fetchall(
            "SELECT route, sum(kind <> 'summary'), min(scheduled_for) FROM outbox "
            "WHERE state = 'scheduled' GROUP BY route")
        return {str(r): (int(n), dt(at)) for r, n, at in rows}

    async def kept_summaries(self) -> dict[str, int]:
        """Per route: how many cap summaries wait for the end of its quiet hours (routes
        keeping none are left out)."""
        rows = await self._db.fetchall(
            "SELECT route, count(*) FROM outbox WHERE state = 'scheduled' AND kind = 'summary' "
            "GROUP BY route")
        return {str(r): int(n) for r, n in rows}

    async def scheduled_story_row(self, story_id: str, route: str) -> OutboxRow | None:
        """The story's newest alert on the route if it waits for or went out in a digest (not
        when a newer one was posted on its own, as an escalation breaking through quiet hours
        is: later articles update that message)."""
        rows = await self._db.fetchall(
            f"SELECT {OUTBOX_COLS} FROM outbox INDEXED BY outbox_story WHERE story_id = ? AND "
            f"route = ? AND kind = 'alert' AND state IN ({_LIVE}) "
            "ORDER BY id DESC LIMIT 1", (story_id, route))
        if not rows:
            return None
        row = row_of(rows[0])
        return row if row.state in ("scheduled", "digested") else None

    # ------------------------------------------------------------------ surges

    async def last_surge(self, rule: str) -> datetime | None:
        rows = await self._db.fetchall("SELECT last_at FROM surges WHERE rule = ?", (rule,))
        return dt(rows[0][0]) if rows else None

    async def add_surge(self, rule: str, route: str, text: str, at: datetime,
                        not_since: datetime | None = None, *,
                        model: RuleConfig | None = None) -> int:
        """Queue a surge alert on a route and start the rule's cooldown, in one transaction;
        with ``not_since``, only if the rule's last surge is older (else 0, nothing written):
        two polls that found the same surge at once post it once. A last surge as far ahead
        of ``at`` as ``not_since`` is behind it was stamped by a clock that ran ahead, and
        holds nothing. ``model``: the rule's, kept with the surge (one whose rule is muted
        before it is sent is not sent)."""
        when = iso(at)
        async with self._db.tx() as tx:
            since = iso(not_since)
            ahead = None if not_since is None else iso(at + (at - not_since))
            cur = await tx.execute(
                "INSERT INTO surges (rule, last_at) VALUES (?, ?) ON CONFLICT (rule) "
                "DO UPDATE SET last_at = excluded.last_at WHERE ? IS NULL OR surges.last_at < ? "
                "OR surges.last_at > ?", (rule, when, since, since, ahead))
            if cur.rowcount != 1:
                return 0  # cooling down: another poll posted this surge
            cur = await tx.execute(
                "INSERT INTO outbox (kind, route, rules, text, state, nonce, created_at, "
                "updated_at) VALUES ('surge', ?, ?, ?, 'pending', ?, ?, ?)",
                (route, surge_rules(model), text, secrets.token_hex(12), when, when))
            return int(cur.lastrowid or 0)

    async def match_times(self, rules: Sequence[str], since: datetime) -> dict[str, list[datetime]]:
        """When each rule matched (the time the match was recorded), since ``since``."""
        out: dict[str, list[datetime]] = {r: [] for r in rules}
        for rule in rules:
            rows = await self._db.fetchall(
                "SELECT matched_at FROM matches INDEXED BY matches_rule WHERE rule = ? AND "
                "matched_at >= ? AND retired = 0 ORDER BY matched_at", (rule, iso(since)))
            out[rule] = [d for (m,) in rows if (d := dt(m)) is not None]
        return out

    async def first_match(self, rule: str) -> datetime | None:
        rows = await self._db.fetchall(  # (UNTIMED: an undated article of history's: none)
            "SELECT min(matched_at) FROM matches INDEXED BY matches_rule WHERE rule = ? AND "
            "matched_at > ? AND retired = 0", (rule, iso(UNTIMED)))
        return dt(rows[0][0]) if rows and rows[0][0] else None

    async def top_stories(self, rule: str, since: datetime, limit: int = 3
                          ) -> list[tuple[str, int]]:
        """The stories the rule matched most since ``since``, counted per story (an article
        without a story is its own), most articles first; each by the title of the earliest
        article the rule matched in it. Not by the story's headline: that is its first
        article's, which may be of a feed the rule's readers do not follow (another server's)."""
        rows = await self._db.fetchall(
            "SELECT title, n FROM (SELECT a.title AS title, count(*) OVER story AS n, "
            "max(m.matched_at) OVER story AS latest, row_number() OVER (PARTITION BY "
            "coalesce(a.story_id, a.id) ORDER BY a.sort_at, a.id) AS k FROM matches m "
            "JOIN articles a ON a.id = m.article_id WHERE m.rule = ? AND m.matched_at >= ? "
            "AND m.retired = 0 WINDOW story AS (PARTITION BY coalesce(a.story_id, a.id))) "
            "WHERE k = 1 ORDER BY n DESC, latest DESC LIMIT ?", (rule, iso(since), limit))
        return [(str(h), int(n)) for h, n in rows]

    async def rule_times(self, rule: str, since: datetime) -> list[datetime]:
        """When the articles a rule matched were published (else fetched), since ``since``,
        oldest first: what a trend counts."""
        rows = await self._db.fetchall(
            "SELECT a.sort_at FROM matches m JOIN articles a ON a.id = m.article_id "
            "WHERE m.rule = ? AND m.retired = 0 AND a.sort_at >= ? ORDER BY a.sort_at",
            (rule, iso(since)))
        return [d for (v,) in rows if (d := dt(v)) is not None]
