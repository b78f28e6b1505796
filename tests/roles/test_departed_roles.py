"""A server that removes the bot, on PostgreSQL with split roles: the deliver process and the
bot process both hear Discord; the departure and the return (with the server's channel paused
meanwhile) converge whichever hears it first, and a deliver process stopped as a notification
wakes it stops (Python 3.11's wait_for could swallow that cancellation)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.sinks import RecordingSink
from tests.roles._support import config, eventually
from watchers.engine import Engine, open_engine

GUILD = 4343


def with_sink(engine: Engine) -> RecordingSink:
    sink = RecordingSink()
    engine.add_route_listener(lambda key, _route: engine.attach_sink(key, sink))
    return sink


@pytest.mark.parametrize("first", ["deliver", "bot"])
async def test_return_resumes_the_paused_channel_whoever_hears_it_first(
        tmp_path: Path, pg_database: str, first: str) -> None:
    cfg = config(tmp_path, pg_database, rules=[{"name": "troops", "query": "troops"}],
                 sources=[])
    async with open_engine(cfg, role="bot") as bot:
        with_sink(bot)
        route = await bot.add_server_route(GUILD, 99, "alerts")
        await bot.add_rule({"name": "kyiv", "query": "kyiv", "channel": route}, guild=GUILD)
        # the deliver process hears GUILD_DELETE first
        async with open_engine(cfg, role="deliver") as deliver:
            with_sink(deliver)
            assert await deliver.left(GUILD)
            assert not await bot.left(GUILD)  # the bot process hears it too
            # the channel was found gone (404) while the server was away: paused
            await deliver.store.pause_route(route, "destination unusable: 404 Unknown Channel")
            await deliver.delivery.reload_pauses()

            async def paused_in(e: Engine) -> bool:
                return route in e.paused_routes()
            await eventually(lambda: paused_in(bot), within=20, what="bot seeing the pause")
            # a bot process restarted meanwhile (it reads pauses and departures at open)
        async with open_engine(cfg, role="deliver") as deliver:
            with_sink(deliver)
            assert GUILD in deliver.departed
            a, b = (deliver, bot) if first == "deliver" else (bot, deliver)
            await a.returned(GUILD)
            await b.returned(GUILD)

            async def resumed() -> bool:
                return (route not in deliver.paused_routes()
                        and not (await deliver.store.paused_routes()).get(route))
            await eventually(resumed, within=20, what="the paused channel resumed")
            assert GUILD not in deliver.departed and GUILD not in bot.departed
