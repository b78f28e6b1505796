"""What both stores build the same way on their own primitives.

- :class:`RuntimeModels`: the rules, sources and server routes added at run time, stored as JSON
  of their validated config models keyed by their key (``RuleConfig.key``, ``SourceConfig.key``,
  ``ServerRoute.key``), on a backend's ``_models`` / ``_put`` / ``_delete``.
- :class:`CandidateList`: :meth:`candidates` as successive :meth:`candidate_page` calls.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from watchers.config import RuleConfig, ServerRoute, SourceConfig
from watchers.models import Article
from watchers.store.base import CandidatePage
from watchers.store.sqlite._db import dump_model

__all__ = ["CANDIDATE_PAGE_MAX", "SOURCE_MODEL", "CandidateList", "M", "RuntimeModels",
           "server_route"]

log = logging.getLogger(__name__)

M = TypeVar("M", RuleConfig, SourceConfig, ServerRoute)

SOURCE_MODEL: TypeAdapter[SourceConfig] = TypeAdapter(SourceConfig)

# The most candidates one page reads.
CANDIDATE_PAGE_MAX = 2000


def _one_line(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'model'}: {e['msg']}"
                     for e in exc.errors())


def server_route(data: dict[str, Any]) -> ServerRoute:
    data.pop("origin", None)  # a route has no origin: only servers make them
    return ServerRoute.model_validate(data)


class RuntimeModels:
    """Run-time rules, sources and server routes over a backend's table primitives."""

    async def _rows(self, table: str) -> list[tuple[str, str]]:
        """(key, model JSON) of every row of ``table``, in code-point order of the key."""
        raise NotImplementedError

    async def _models(self, table: str, what: str, validate: Callable[[dict[str, Any]], M]
                      ) -> list[M]:
        """The valid models stored in ``table``, by key, with ``origin="store"``. A row that no
        longer validates (the model changed under it) is logged and skipped, never fatal: one
        bad row must not stop a start."""
        out: list[M] = []
        for key, model in await self._rows(table):
            try:
                out.append(validate({**json.loads(model), "origin": "store"}))
            except ValidationError as exc:
                log.warning("stored %s %r is not valid and was skipped: %s", what, str(key),
                            _one_line(exc))
        return out

    async def _put(self, table: str, key: str, guild_id: int | None, model: str) -> None:
        raise NotImplementedError

    async def _delete(self, table: str, key: str) -> bool:
        raise NotImplementedError

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
        return await self._models("sources", "source", SOURCE_MODEL.validate_python)

    async def put_source(self, source: SourceConfig) -> None:
        """Add or replace a run-time source (keyed by ``source.key``)."""
        await self._put("sources", source.key, source.guild_id,
                        dump_model(source, exclude={"origin"}))

    async def delete_source(self, key: str) -> bool:
        """Remove the run-time source of this key (``SourceConfig.key``); False if none."""
        return await self._delete("sources", key)

    async def list_server_routes(self) -> list[ServerRoute]:
        """The routes servers picked in Discord, as validated models."""
        return await self._models("routes", "route", server_route)

    async def put_server_route(self, route: ServerRoute) -> None:
        """Add or replace a server's route (keyed by ``route.key``)."""
        await self._put("routes", route.key, route.guild_id, dump_model(route))

    async def delete_server_route(self, key: str) -> bool:
        return await self._delete("routes", key)


class CandidateList:
    """:meth:`candidates` on a backend's :meth:`candidate_page`."""

    async def candidate_page(self, *, fts: str | None, since: datetime | None = None,
                             source: str | None = None, after: str | None = None,
                             limit: int = 200, follows: Collection[str] | None = None
                             ) -> CandidatePage:
        raise NotImplementedError

    async def candidates(self, *, fts: str | None, since: datetime | None = None,
                         source: str | None = None, limit: int = 2000,
                         follows: Collection[str] | None = None) -> list[Article]:
        """Articles that may match, newest first: those the index query ``fts`` finds (see
        :func:`watchers.rules.lookup.index_query`), or all when it is None; at most
        ``limit``."""
        out: list[Article] = []
        after: str | None = None
        while len(out) < limit:
            page = await self.candidate_page(fts=fts, since=since, source=source, after=after,
                                             limit=min(limit - len(out), CANDIDATE_PAGE_MAX),
                                             follows=follows)
            out += page.articles
            if page.next is None:
                break
            after = page.next
        return out[:limit]
