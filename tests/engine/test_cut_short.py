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


async def test_a_source_whose_cursor_is_not_strings_fails_alone(tmp_path: Path) -> None:
    """A library's source returning Poll(cursor={"last_id": 7}): its state, and with it every
    source's, failed to save at each flush (the folder source beside it kept no cursor, no
    count of polls); leaving the engine raised the bare TypeError. The poll is that source's
    failure, named; the others' states are saved."""
    from watchers.config import FolderSourceConfig
    from watchers.models import Article
    from watchers.sources.base import Poll

    (tmp_path / "drop").mkdir()
    (tmp_path / "drop" / "a.txt").write_text("Grain prices rise\n\nGrain is dearer.")

    class Counted:
        name = "mine"

        async def poll(self, cursor: object) -> Poll:
            return Poll([Article(title="Grain shipment leaves port", source="mine")],
                        cursor={"last_id": 7})  # type: ignore[dict-item]

        async def aclose(self) -> None:
            pass

    cfg = parse_config({"storage": {"path": "nw.db"},
                        "sources": [{"name": "drop", "type": "folder", "path": "drop",
                                     "settle": "0s"}],
                        "rules": [{"name": "grain", "query": "grain"}]}, base_dir=tmp_path)
    async with open_engine(cfg, start=False, default_sink=OnlyDeliver()) as engine:
        await engine.watch.add_source(FolderSourceConfig(
            name="mine", type="folder", path=str(tmp_path / "drop")), Counted())
        reports = {r.source: r for r in await engine.run_once()}
        assert reports["mine"].error is not None
        assert "cursor whose 'last_id' is a number, not a string" in reports["mine"].error
        assert reports["drop"].error is None
    async with open_engine(cfg, start=False, default_sink=OnlyDeliver()) as engine:
        states = {s.name: s for s in await engine.store.all_source_states()}
        assert states["drop"].polls == 1 and states["drop"].cursor
        assert states["mine"].failures == 1
