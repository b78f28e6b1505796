"""Per-source state, and the rules, sources, server routes and mutes added at run time.

As in the SQLite store (:mod:`watchers.store.sqlite.state`): run-time rules, sources and server
routes are JSON of their validated config models (durations as seconds), keyed by their key in
``name`` (the server in ``guild_id`` too), read back through the same models; a stored row that
no longer validates is logged and skipped, never fatal.

Source leases (several poll workers, see :mod:`watchers.roles`): a source is polled by the
worker that holds its lease (``lease_owner`` until ``lease_until``). A claim takes due sources
whose lease is free or expired, oldest due first, ``FOR UPDATE SKIP LOCKED`` so concurrent
claims never wait for nor take the same row, and returns their state as stored at that moment
(another worker may just have advanced a cursor). Only ``active`` sources are claimed: workers
register the sources they run and retire the ones removed (or that none of them runs), so a
claim walks the partial index of due, active sources and needs no list of names — sending
20,000 names with every claim cost more than the polls themselves. Releasing saves the new
state and frees the lease in one statement, only while this worker still holds it: a worker
whose lease expired and was taken over does not overwrite the newer state.

Why leases on ``source_state`` rather than a task queue (procrastinate …): the state a poll
needs and the schedule are already this row; one indexed UPDATE claims and reads both, with
nothing else to run or keep in step, and an expiry is what lets a killed worker's sources go.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs (asyncpg-stubs is not a dependency)

from watchers.models import storable
from watchers.store._shared import RuntimeModels, cursor_json
from watchers.store.base import Registration, SourceState
from watchers.store.postgres._db import Pg, now, rowcount

__all__ = ["StateMixin"]

log = logging.getLogger(__name__)

_STATE_COLS = ("name, cursor, polls, last_success, last_error, last_error_at, failures, "
               "next_poll, paused, skipped")


def _cols(alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in _STATE_COLS.split(","))


_TABLES = frozenset({"rules", "sources", "routes"})
# Every statement that locks several source_state rows locks them in one order, code points
# of the name (Python's sorted() too), so two workers' statements never wait on each other in
# a cycle (PostgreSQL would abort one with "deadlock detected", which stops that worker).
_LOCK_ORDER = 'ORDER BY name COLLATE "C" FOR UPDATE'
# register_sources: the sources registered ($1…$6, one array each, see Registration) as rows
# r, compared with their stored rows s. A source's next poll is late when its state (paused,
# failing or answering) allows an earlier one; it moved when it polled something else, and is
# then due at r.first unless it already is.
_REGISTERED = ("unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[], "
               "$5::timestamptz[], $6::text[]) AS r(name, first, latest, failing, paused, "
               "polled)")
_BOUND = "(CASE WHEN s.paused THEN r.paused WHEN s.failures > 0 THEN r.failing ELSE r.latest END)"
_LATE = f"COALESCE(s.next_poll > {_BOUND}, FALSE)"
_MOVED = ("COALESCE(r.polled IS NOT NULL AND s.cursor ->> '/polled' <> r.polled "
          "AND COALESCE(s.next_poll, '-infinity') > COALESCE(r.first, '-infinity'), FALSE)")



async def _end_rule(conn: asyncpg.Connection, key: str) -> None:
    """What the rule of ``key`` leaves ends with it (see RuntimeModels.delete_rule): its mute
    and last surge are deleted, its matches retired."""
    # Only a mute there is: a delete of none still tells every process the mutes changed.
    if await conn.fetchval("SELECT 1 FROM mutes WHERE rule = $1", key) is not None:
        await conn.execute("DELETE FROM mutes WHERE rule = $1", key)
    await conn.execute("DELETE FROM surges WHERE rule = $1", key)
    await conn.execute("UPDATE matches SET retired = true WHERE rule = $1 AND NOT retired", key)


def _state(row: asyncpg.Record) -> SourceState:
    return SourceState(
        name=row["name"],
        cursor=json.loads(row["cursor"]),
        polls=row["polls"],
        last_success=row["last_success"],
        last_error=row["last_error"],
        last_error_at=row["last_error_at"],
        failures=row["failures"],
        next_poll=row["next_poll"],
        paused=row["paused"],
        skipped=row["skipped"],
    )


def _arrays(sources: Mapping[str, Registration]) -> tuple[list[Any], ...]:
    """Registered sources as the arrays of :data:`_REGISTERED`."""
    regs = list(sources.values())
    return (list(sources), [r.first for r in regs], [r.latest for r in regs],
            [r.latest_failing for r in regs], [r.latest_paused for r in regs],
            [r.polled for r in regs])


def _error(state: SourceState) -> str | None:
    # PostgreSQL refuses NUL in text, which an error's text may quote from what a source sent.
    return None if state.last_error is None else storable(state.last_error)


class StateMixin(RuntimeModels):
    """The :class:`watchers.store.StateStore` part of :class:`PostgresStore`."""

    _db: Pg

    async def source_state(self, name: str) -> SourceState | None:
        rows = await self._db.fetch(
            f"SELECT {_STATE_COLS} FROM source_state WHERE name = $1", name)
        return _state(rows[0]) if rows else None

    async def save_source_state(self, state: SourceState) -> None:
        await self.save_source_states([state])

    async def save_source_states(self, states: Sequence[SourceState]) -> None:
        """Save many sources' states in one transaction (one statement for the batch)."""
        if not states:
            return
        # The last state of a name wins, as successive replaces would leave it; an upsert of
        # one statement may not touch a row twice.
        last = {s.name: s for s in sorted(states, key=lambda st: st.name)}  # lock order
        await self._db.executemany(
            f"INSERT INTO source_state ({_STATE_COLS}) "
            "VALUES ($1, $2::jsonb, $3, $4, $5, $6, $7, $8, $9, $10) "
            # The stored cursor itself where it is unchanged: its TOAST value kept, not
            # written again (a folder of 100,000 files keeps megabytes in it; see SQLite's).
            "ON CONFLICT (name) DO UPDATE SET cursor = CASE WHEN source_state.cursor = "
            "excluded.cursor THEN source_state.cursor ELSE excluded.cursor END, "
            "polls = excluded.polls, "
            "last_success = excluded.last_success, last_error = excluded.last_error, "
            "last_error_at = excluded.last_error_at, failures = excluded.failures, "
            "next_poll = excluded.next_poll, paused = excluded.paused, "
            "skipped = excluded.skipped",
            [(s.name, cursor_json(s.cursor), s.polls, s.last_success, _error(s),
              s.last_error_at, s.failures, s.next_poll, s.paused, s.skipped)
             for s in last.values()],
        )

    # ------------------------------------------------------------- leases

    async def register_sources(self, sources: Mapping[str, Registration]) -> None:
        """Make the sources claimable (active): a row for each that has none yet, first due
        at its ``first`` (None: now); an existing row keeps its state and becomes active, its
        next poll brought forward to what the worker's settings allow now (see
        :class:`Registration`; a source whose interval was shortened from a day, or whose URL
        changed, waited out the stored day). A Retry-After or backoff within the bounds is
        kept."""
        if not sources:
            return
        # Rows are locked in name order by every multi-row statement here (see _LOCK_ORDER):
        # an ON CONFLICT DO UPDATE would lock every existing row in the order given, and a
        # worker renewing its leases meanwhile could deadlock with it. DO NOTHING locks no
        # existing row; the retired and the late ones are then updated in name order.
        # Workers register their sources again every few minutes: a plain read (no lock, no
        # wait) finds the few that need it, usually none, instead of writing every row.
        settled = {str(r[0]) for r in await self._db.fetch(
            f"SELECT s.name FROM source_state s JOIN {_REGISTERED} ON s.name = r.name "
            f"WHERE s.active AND NOT ({_MOVED}) AND NOT ({_LATE})", *_arrays(sources))}
        todo = {n: sources[n] for n in sorted(sources) if n not in settled}
        if not todo:
            return
        await self._db.execute(
            "INSERT INTO source_state (name, next_poll) "
            "SELECT * FROM unnest($1::text[], $2::timestamptz[]) ON CONFLICT (name) DO NOTHING",
            list(todo), [r.first for r in todo.values()])
        # Judged again on the rows as locked: a poll saved since the read keeps its outcome
        # (its Retry-After included) unless that too is later than the bounds.
        await self._db.execute(
            "WITH locked AS (SELECT name FROM source_state WHERE name = ANY($1::text[]) "
            f"{_LOCK_ORDER}) "
            f"UPDATE source_state s SET active = TRUE, next_poll = CASE WHEN {_MOVED} "
            f"THEN r.first WHEN {_LATE} THEN {_BOUND} ELSE s.next_poll END "
            f"FROM locked, {_REGISTERED} WHERE s.name = locked.name AND r.name = s.name "
            f"AND (NOT s.active OR {_MOVED} OR {_LATE})",
            *_arrays(todo))

    async def retire_source(self, name: str) -> None:
        """No longer claim this source (removed; its state is kept, as for health), and free
        its lease."""
        await self._db.execute(
            "UPDATE source_state SET active = FALSE, lease_owner = NULL, lease_until = NULL "
            "WHERE name = $1", name)

    async def resume_shared(self, name: str) -> bool:
        """Make a paused or backing-off source due now, in place: its cursor, poll count and
        lease stay the poller's (a poll finishing meanwhile keeps what it saved). False when
        the source has no state yet."""
        return await self._db.execute(
            "UPDATE source_state SET paused = FALSE, failures = 0, next_poll = NULL "
            "WHERE name = $1", name) > 0

    async def claim_sources(self, *, owner: str, until: datetime, now: datetime, limit: int
                            ) -> list[SourceState]:
        """Lease up to ``limit`` active sources that are due by ``now`` and not leased (or
        whose lease expired) to ``owner`` until ``until``; their states as stored, oldest
        due first."""
        if limit <= 0:
            return []
        rows = await self._db.fetch(  # one statement: atomic without BEGIN/COMMIT
            # Never polled (NULL) sorts first; the index is on this very expression, so
            # the scan stops at the first source not yet due.
            "WITH due AS (SELECT name FROM source_state WHERE active "
            "AND COALESCE(next_poll, '-infinity') <= $1 "
            "AND (lease_until IS NULL OR lease_until < $1) "
            "ORDER BY COALESCE(next_poll, '-infinity') LIMIT $2 FOR UPDATE SKIP LOCKED) "
            "UPDATE source_state s SET lease_owner = $3, lease_until = $4 FROM due "
            f"WHERE s.name = due.name RETURNING {_cols('s')}",
            now, limit, owner, until)
        found = [_state(r) for r in rows]
        found.sort(key=lambda st: (st.next_poll is not None, st.next_poll or now))
        return found

    async def release_source(self, state: SourceState, *, owner: str) -> bool:
        """Save a leased source's new state and free its lease, if ``owner`` still holds it;
        False (nothing saved) when another worker took it over."""
        return await self._db.execute(
            "UPDATE source_state SET cursor = $3::jsonb, polls = $4, last_success = $5, "
            "last_error = $6, last_error_at = $7, failures = $8, next_poll = $9, paused = $10, "
            "skipped = $11, lease_owner = NULL, lease_until = NULL "
            "WHERE name = $1 AND lease_owner = $2",
            state.name, owner, cursor_json(state.cursor), state.polls, state.last_success,
            _error(state), state.last_error_at, state.failures, state.next_poll,
            state.paused, state.skipped) > 0

    async def renew_leases(self, names: Sequence[str], *, owner: str, until: datetime) -> int:
        """Extend ``owner``'s leases of ``names`` (polls still running) to ``until``."""
        if not names:
            return 0
        return await self._db.execute(
            "WITH mine AS (SELECT name FROM source_state WHERE lease_owner = $1 "
            f"AND name = ANY($2::text[]) {_LOCK_ORDER}) "
            "UPDATE source_state s SET lease_until = $3 FROM mine WHERE s.name = mine.name",
            owner, list(names), until)

    async def release_leases(self, owner: str) -> int:
        """Free every lease ``owner`` holds (a worker stopping), states unchanged."""
        return await self._db.execute(
            f"WITH mine AS (SELECT name FROM source_state WHERE lease_owner = $1 {_LOCK_ORDER}) "
            "UPDATE source_state s SET lease_owner = NULL, lease_until = NULL FROM mine "
            "WHERE s.name = mine.name", owner)

    async def database_clock(self) -> datetime | None:
        """The server's clock at this statement (``clock_timestamp()``, not the start of a
        transaction): the workers write leases by their own clocks, compared with it."""
        when: datetime = await self._db.fetchval("SELECT clock_timestamp()")
        return when

    async def all_source_states(self) -> list[SourceState]:
        rows = await self._db.fetch(
            f"SELECT {_STATE_COLS} FROM source_state ORDER BY name COLLATE \"C\"")
        return [_state(r) for r in rows]

    # ------------------------------------------------------------- run-time rules and sources

    async def _rows(self, table: str) -> list[tuple[str, str]]:
        assert table in _TABLES
        # COLLATE "C": code point order, as SQLite's BINARY order lists them.
        rows = await self._db.fetch(
            f"SELECT name, model FROM {table} ORDER BY name COLLATE \"C\"")
        return [(str(k), str(m)) for k, m in rows]

    async def _put(self, table: str, key: str, guild_id: int | None, model: str) -> None:
        assert table in _TABLES
        upsert = (
            f"INSERT INTO {table} (name, guild_id, model, created_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (name) DO UPDATE SET guild_id = excluded.guild_id, "
            "model = excluded.model, created_at = excluded.created_at")
        if table != "rules":
            await self._db.execute(upsert, key, guild_id, model, now())
            return
        async with self._db.tx() as conn:
            if await conn.fetchval("SELECT 1 FROM rules WHERE name = $1", key) is None:
                await _end_rule(conn, key)  # a new rule (see put_rule)
            await conn.execute(upsert, key, guild_id, model, now())

    async def _delete(self, table: str, key: str) -> bool:
        assert table in _TABLES
        if table != "rules":
            return await self._db.execute(f"DELETE FROM {table} WHERE name = $1", key) > 0
        async with self._db.tx() as conn:
            removed = rowcount(await conn.execute("DELETE FROM rules WHERE name = $1", key))
            if removed:
                await _end_rule(conn, key)  # (see delete_rule)
            return removed > 0

    # ------------------------------------------------------------- mutes

    async def mute(self, rule: str, until: datetime) -> None:
        await self._db.execute(
            "INSERT INTO mutes (rule, until) VALUES ($1, $2) "
            "ON CONFLICT (rule) DO UPDATE SET until = excluded.until", rule, until)

    async def unmute(self, rule: str, *, now: datetime) -> bool:
        # A mute that has ended keeps its row (nothing removes it when it ends): the row
        # goes either way, but the rule was muted only if its mute still ran at ``now``, as
        # mutes(now) judges. Counting any row answered "unmuted" hours after a mute ended.
        async with self._db.tx() as conn:  # a write: through the writer's checks
            return bool(await conn.fetchval(
                "DELETE FROM mutes WHERE rule = $1 RETURNING until > $2", rule, now))

    async def mutes(self, *, now: datetime) -> Mapping[str, datetime]:
        rows = await self._db.fetch("SELECT rule, until FROM mutes WHERE until > $1", now)
        return {str(r): u for r, u in rows}

    # ------------------------------------------------------------- departed servers

    async def departed_servers(self) -> Mapping[int, datetime]:
        rows = await self._db.fetch("SELECT guild_id, since FROM departed_servers")
        return {int(g): t for g, t in rows}

    async def set_departed(self, guild_id: int, since: datetime | None) -> bool:
        """Record that the bot left ``guild_id`` at ``since`` (kept if already recorded), or
        with None that it is back; whether anything changed."""
        if since is None:
            return await self._db.execute(
                "DELETE FROM departed_servers WHERE guild_id = $1", guild_id) > 0
        return await self._db.execute(
            "INSERT INTO departed_servers (guild_id, since) VALUES ($1, $2) "
            "ON CONFLICT (guild_id) DO NOTHING", guild_id, since) > 0
