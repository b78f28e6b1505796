"""Per-source state, and the rules, sources, server routes and mutes added at run time.

As in the SQLite store (:mod:`watchers.store.sqlite.state`): run-time rules, sources and server
routes are JSON of their validated config models (durations as seconds), keyed by their key in
``name`` (the server in ``guild_id`` too), read back through the same models; a stored row that
no longer validates is logged and skipped, never fatal.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]  # no stubs (asyncpg-stubs is not a dependency)
from pydantic import TypeAdapter, ValidationError

from watchers.config import RuleConfig, ServerRoute, SourceConfig
from watchers.store.base import SourceState
from watchers.store.postgres._db import Pg, now
from watchers.store.sqlite._db import dump_model

__all__ = ["StateMixin"]

log = logging.getLogger(__name__)
M = TypeVar("M", RuleConfig, SourceConfig, ServerRoute)

_SOURCE: TypeAdapter[SourceConfig] = TypeAdapter(SourceConfig)
_STATE_COLS = ("name, cursor, polls, last_success, last_error, last_error_at, failures, "
               "next_poll, paused, skipped")
_TABLES = frozenset({"rules", "sources", "routes"})


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


def _server_route(data: dict[str, Any]) -> ServerRoute:
    data.pop("origin", None)  # a route has no origin: only servers make them
    return ServerRoute.model_validate(data)


def _one_line(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'model'}: {e['msg']}"
                     for e in exc.errors())


class StateMixin:
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
        last = {s.name: s for s in states}
        await self._db.executemany(
            f"INSERT INTO source_state ({_STATE_COLS}) "
            "VALUES ($1, $2::jsonb, $3, $4, $5, $6, $7, $8, $9, $10) "
            "ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, polls = excluded.polls, "
            "last_success = excluded.last_success, last_error = excluded.last_error, "
            "last_error_at = excluded.last_error_at, failures = excluded.failures, "
            "next_poll = excluded.next_poll, paused = excluded.paused, "
            "skipped = excluded.skipped",
            [(s.name, json.dumps(dict(s.cursor)), s.polls, s.last_success, s.last_error,
              s.last_error_at, s.failures, s.next_poll, s.paused, s.skipped)
             for s in last.values()],
        )

    async def all_source_states(self) -> list[SourceState]:
        rows = await self._db.fetch(
            f"SELECT {_STATE_COLS} FROM source_state ORDER BY name COLLATE \"C\"")
        return [_state(r) for r in rows]

    # ------------------------------------------------------------- run-time rules and sources

    async def _models(self, table: str, what: str, validate: Callable[[dict[str, Any]], M]
                      ) -> list[M]:
        """The valid models stored in ``table``, by name; an invalid one is logged and skipped."""
        assert table in _TABLES
        out: list[M] = []
        # COLLATE "C": code point order, as SQLite's BINARY order lists them.
        for name, model in await self._db.fetch(
                f"SELECT name, model FROM {table} ORDER BY name COLLATE \"C\""):
            try:
                out.append(validate({**json.loads(model), "origin": "store"}))
            except ValidationError as exc:
                log.warning("stored %s %r is not valid and was skipped: %s", what, str(name),
                            _one_line(exc))
        return out

    async def _put(self, table: str, key: str, guild_id: int | None, model: str) -> None:
        assert table in _TABLES
        await self._db.execute(
            f"INSERT INTO {table} (name, guild_id, model, created_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (name) DO UPDATE SET guild_id = excluded.guild_id, "
            "model = excluded.model, created_at = excluded.created_at",
            key, guild_id, model, now())

    async def _delete(self, table: str, key: str) -> bool:
        assert table in _TABLES
        return await self._db.execute(f"DELETE FROM {table} WHERE name = $1", key) > 0

    async def list_rules(self) -> list[RuleConfig]:
        """Rules added at run time, by key, as validated models with ``origin="store"``."""
        return await self._models("rules", "rule", RuleConfig.model_validate)

    async def put_rule(self, rule: RuleConfig) -> None:
        """Add or replace a run-time rule (keyed by ``rule.key``)."""
        await self._put("rules", rule.key, rule.guild_id, dump_model(rule, exclude={"origin"}))

    async def delete_rule(self, key: str) -> bool:
        """Remove the run-time rule of this key (``RuleConfig.key``); False if there is none."""
        return await self._delete("rules", key)

    async def list_sources(self) -> list[SourceConfig]:
        """Sources added at run time, by key, as validated models with ``origin="store"``."""
        return await self._models("sources", "source", _SOURCE.validate_python)

    async def put_source(self, source: SourceConfig) -> None:
        """Add or replace a run-time source (keyed by ``source.key``)."""
        await self._put("sources", source.key, source.guild_id,
                        dump_model(source, exclude={"origin"}))

    async def delete_source(self, key: str) -> bool:
        """Remove the run-time source of this key (``SourceConfig.key``); False if none."""
        return await self._delete("sources", key)

    # ------------------------------------------------------------- server routes

    async def list_server_routes(self) -> list[ServerRoute]:
        """The routes servers picked in Discord, as validated models."""
        return await self._models("routes", "route", _server_route)

    async def put_server_route(self, route: ServerRoute) -> None:
        """Add or replace a server's route (keyed by ``route.key``)."""
        await self._put("routes", route.key, route.guild_id, dump_model(route))

    async def delete_server_route(self, key: str) -> bool:
        return await self._delete("routes", key)

    # ------------------------------------------------------------- mutes

    async def mute(self, rule: str, until: datetime) -> None:
        await self._db.execute(
            "INSERT INTO mutes (rule, until) VALUES ($1, $2) "
            "ON CONFLICT (rule) DO UPDATE SET until = excluded.until", rule, until)

    async def unmute(self, rule: str) -> bool:
        return await self._db.execute("DELETE FROM mutes WHERE rule = $1", rule) > 0

    async def mutes(self, *, now: datetime) -> Mapping[str, datetime]:
        rows = await self._db.fetch("SELECT rule, until FROM mutes WHERE until > $1", now)
        return {str(r): u for r, u in rows}
