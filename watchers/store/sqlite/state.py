"""Per-source state, and the rules, sources, routes and mutes added at run time.

Run-time rules, sources and server routes are stored as JSON of their validated config models
(durations as seconds), keyed by their key in the ``name`` column (the name, or
``"<guild id>:<name>"`` for a server's; the server in ``guild_id`` too), and read back through
the same models with ``origin="store"``. A stored row that no longer validates (the model
changed under it) is logged and skipped, never fatal: one bad row must not stop a start.

The :class:`watchers.store.LeaseStore` part is trivial or refused here, by design: an SQLite
store is one process's (its process lock), so there are no workers to share sources between
(leases are refused, naming ``[storage] url``), no other process whose claims to requeue (that
process's interrupted claims are requeued at start by ``requeue_interrupted``), and nobody to
notify (the process's own services wake each other in memory).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from watchers.errors import StoreError
from watchers.models import storable
from watchers.store._shared import RuntimeModels, cursor_json
from watchers.store.base import Registration, SourceState, StoryRecord
from watchers.store.sqlite._db import Db, Tx, dt, iso, now

__all__ = ["StateMixin"]

_NO_LEASES = ("source leases (several poll workers) need a PostgreSQL store: set [storage] url "
              "to a postgresql://… database")

log = logging.getLogger(__name__)

_STATE_COLS = ("name, cursor, polls, last_success, last_error, last_error_at, failures, "
               "next_poll, paused, skipped")


async def _end_rule(tx: Tx, key: str) -> None:
    """What the rule of ``key`` leaves ends with it (see RuntimeModels.delete_rule): its mute
    and last surge are deleted, its matches retired."""
    await tx.execute("DELETE FROM mutes WHERE rule = ?", (key,))
    await tx.execute("DELETE FROM surges WHERE rule = ?", (key,))
    await tx.execute("UPDATE matches SET retired = 1 WHERE rule = ? AND retired = 0", (key,))


def _state(row: Sequence[Any]) -> SourceState:
    name, cursor, polls, ok, err, err_at, failures, nxt, paused, skipped = row
    return SourceState(
        name=name,
        cursor=json.loads(cursor),
        polls=polls,
        last_success=dt(ok),
        last_error=err,
        last_error_at=dt(err_at),
        failures=failures,
        next_poll=dt(nxt),
        paused=bool(paused),
        skipped=skipped,
    )


class StateMixin(RuntimeModels):
    """The :class:`watchers.store.StateStore` part of :class:`SqliteStore`."""

    _db: Db

    # ------------------------------------------------------------- several processes

    async def register_sources(self, sources: Mapping[str, Registration]) -> None:
        raise StoreError(_NO_LEASES)

    async def retire_source(self, name: str) -> None:
        raise StoreError(_NO_LEASES)

    async def resume_shared(self, name: str) -> bool:
        raise StoreError(_NO_LEASES)

    async def claim_sources(self, *, owner: str, until: datetime, now: datetime, limit: int
                            ) -> list[SourceState]:
        raise StoreError(_NO_LEASES)

    async def release_source(self, state: SourceState, *, owner: str) -> bool:
        raise StoreError(_NO_LEASES)

    async def renew_leases(self, names: Sequence[str], *, owner: str, until: datetime) -> int:
        raise StoreError(_NO_LEASES)

    async def release_leases(self, owner: str) -> int:
        return 0  # nothing was ever leased

    async def requeue_orphaned(self) -> int:
        return 0  # one process: no other process's claims exist

    async def listen(self, channel: str, listener: Callable[[str, str], None]) -> None:
        return None  # one process: nobody else changes anything

    async def stories_touched(self, after: datetime | None
                              ) -> tuple[list[StoryRecord], datetime]:
        return [], now()  # one process: no other process writes stories

    async def database_clock(self) -> datetime | None:
        return None  # one process: the database's clock is this machine's

    async def source_state(self, name: str) -> SourceState | None:
        rows = await self._db.fetchall(
            f"SELECT {_STATE_COLS} FROM source_state WHERE name = ?", (name,))
        return _state(rows[0]) if rows else None

    async def save_source_state(self, state: SourceState) -> None:
        await self.save_source_states([state])

    async def save_source_states(self, states: Sequence[SourceState]) -> None:
        """Save many sources' states in one transaction (the service writes behind in batches:
        20,000 feeds polled every minute would otherwise be 333 transactions a second)."""
        if not states:
            return
        rows = [
            (
                state.name, cursor_json(state.cursor), state.polls,
                iso(state.last_success),
                # an error quotes what a source sent: a byte that is not UTF-8 (a redirect's
                # Location) failed the save of every source's state, and the process
                None if state.last_error is None else storable(state.last_error),
                iso(state.last_error_at),
                state.failures, iso(state.next_poll), int(state.paused), state.skipped,
            )
            for state in {s.name: s for s in states}.values()  # a name's last state
        ]
        # One statement for the batch: one trip to the database's thread, not one a source.
        # An UPDATE, not a replace: a row whose record keeps its size is overwritten in place,
        # only the pages that differ written. A folder of 100,000 files keeps a cursor of
        # megabytes, unchanged at most polls; replaced, the whole of it was written again at
        # every poll (15 MB a poll, 42 GB a day, for a folder where nothing changed).
        async with self._db.tx() as tx:
            await tx.executemany(
                "UPDATE source_state SET cursor = ?, polls = ?, last_success = ?, "
                "last_error = ?, last_error_at = ?, failures = ?, next_poll = ?, paused = ?, "
                "skipped = ? WHERE name = ?",
                [(*row[1:], row[0]) for row in rows],
            )
            await tx.executemany(
                f"INSERT OR IGNORE INTO source_state ({_STATE_COLS}) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                rows,
            )

    async def all_source_states(self) -> list[SourceState]:
        rows = await self._db.fetchall(f"SELECT {_STATE_COLS} FROM source_state ORDER BY name")
        return [_state(r) for r in rows]

    # ------------------------------------------------------------- run-time rules and sources

    async def _rows(self, table: str) -> list[tuple[str, str]]:
        rows = await self._db.fetchall(f"SELECT name, model FROM {table} ORDER BY name")
        return [(str(k), str(m)) for k, m in rows]

    async def _put(self, table: str, key: str, guild_id: int | None, model: str) -> None:
        async with self._db.tx() as tx:
            if table == "rules" and await tx.fetchone(
                    "SELECT 1 FROM rules WHERE name = ?", (key,)) is None:
                await _end_rule(tx, key)  # a new rule (see put_rule)
            await tx.execute(
                f"INSERT OR REPLACE INTO {table} (name, guild_id, model, created_at) "
                "VALUES (?,?,?,?)",
                (key, guild_id, model, iso(now())),
            )

    async def _delete(self, table: str, key: str) -> bool:
        async with self._db.tx() as tx:
            cur = await tx.execute(f"DELETE FROM {table} WHERE name = ?", (key,))
            if table == "rules" and cur.rowcount > 0:
                await _end_rule(tx, key)  # (see delete_rule)
            return cur.rowcount > 0

    # ------------------------------------------------------------- mutes

    async def mute(self, rule: str, until: datetime) -> None:
        async with self._db.tx() as tx:
            await tx.execute(
                "INSERT OR REPLACE INTO mutes (rule, until) VALUES (?, ?)", (rule, iso(until)))

    async def unmute(self, rule: str, *, now: datetime) -> bool:
        # A mute that has ended keeps its row (nothing removes it when it ends): the row
        # goes either way, but the rule was muted only if its mute still ran at ``now``, as
        # mutes(now) judges. Counting any row answered "unmuted" hours after a mute ended.
        async with self._db.tx() as tx:
            rows = await tx.fetchall("DELETE FROM mutes WHERE rule = ? RETURNING until > ?",
                                     (rule, iso(now)))
            return any(bool(running) for (running,) in rows)

    async def mutes(self, *, now: datetime) -> Mapping[str, datetime]:
        rows = await self._db.fetchall("SELECT rule, until FROM mutes WHERE until > ?",
                                       (iso(now),))
        return {str(r): dt(u) or now for r, u in rows}

    # ------------------------------------------------------------- departed servers

    async def departed_servers(self) -> Mapping[int, datetime]:
        rows = await self._db.fetchall("SELECT guild_id, since FROM departed_servers")
        return {int(g): dt(t) or now() for g, t in rows}

    async def set_departed(self, guild_id: int, since: datetime | None) -> bool:
        """Record that the bot left ``guild_id`` at ``since`` (kept if already recorded), or
        with None that it is back; whether anything changed."""
        async with self._db.tx() as tx:
            if since is None:
                cur = await tx.execute("DELETE FROM departed_servers WHERE guild_id = ?",
                                       (guild_id,))
            else:
                cur = await tx.execute(
                    "INSERT OR IGNORE INTO departed_servers (guild_id, since) VALUES (?, ?)",
                    (guild_id, iso(since)))
            return cur.rowcount > 0
