"""Changes of the rules and routes cut short (a timeout, Ctrl-C) are whole or absent, as the
library's docs promise: `remove_rule` deleted the rule from the store and, cut short before
the rules were reloaded, it still ran and alerted (a second remove said there was none);
`configure_server_route` stored new settings it did not apply until the next start. And a
route a server switches to keeping alerts for later is refused when its destination cannot
post a digest (open_engine refuses such a config route: what it kept was marked delivered
and never shown). Through the real engine and SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest

from watchers.config import parse_config
from watchers.delivery import Alert
from watchers.engine import open_engine
from watchers.errors import ConfigError

GUILD = 111


class OnlyDeliver:
    """A sink that posts alerts and nothing else (no digest)."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    async def deliver(self, alert: Alert) -> str | None:
        self.alerts.append(alert)
        return None


def _config(tmp_path: Path) -> Any:
    return parse_config({"storage": {"path": "nw.db"},
                         "rules": [{"name": "base", "query": "base"}]}, base_dir=tmp_path)


async def test_a_rule_removal_cut_short_is_whole_or_absent(tmp_path: Path) -> None:
    async with open_engine(_config(tmp_path), start=False, default_sink=OnlyDeliver()) as engine:
        for attempt in range(60):
            name = f"grain{attempt}"
            await engine.add_rule({"name": name, "query": "grain"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(engine.remove_rule(name), 0.0002 * attempt)
            stored = {r.name for r in await engine.store.list_rules()}
            running = {r.name for r in engine.watch.rules}
            assert (name in stored) == (name in running), (attempt, stored, running)
            if name in stored:
                assert await engine.remove_rule(name)


async def test_a_route_change_cut_short_is_whole_or_absent(tmp_path: Path) -> None:
    async with open_engine(_config(tmp_path), start=False, default_sink=OnlyDeliver()) as engine:
        key = await engine.add_server_route(GUILD, 222, "news")
        for attempt in range(150):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(engine.configure_server_route(
                    GUILD, key, {"stories": "off" if attempt % 2 else "edit"}),
                    0.00002 * attempt)
            (stored,) = [r for r in await engine.store.list_server_routes() if r.key == key]
            running = engine.server_routes(GUILD)[key]
            assert stored.route.stories == running.route.stories, attempt


@pytest.mark.parametrize("changes", [{"mode": "digest", "digest_at": ["09:00"]},
                                     {"quiet_hours": "22:00-07:00"},
                                     {"max_per_hour": 5}])
async def test_a_route_that_would_keep_alerts_its_sink_cannot_show_is_refused(
        tmp_path: Path, changes: dict[str, Any]) -> None:
    async with open_engine(_config(tmp_path), start=False, default_sink=OnlyDeliver()) as engine:
        key = await engine.add_server_route(GUILD, 222, "news")
        with pytest.raises(ConfigError, match="cannot post digests"):
            await engine.configure_server_route(GUILD, key, changes)
        (stored,) = [r for r in await engine.store.list_server_routes() if r.key == key]
        assert stored.route.mode != "digest" and not stored.route.quiet_hours
