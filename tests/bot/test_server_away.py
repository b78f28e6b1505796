"""A server that removes the bot, at the edges, the real discord.py against the emulator: an
alert in flight when it leaves, an escalation that falls due while it is away, the config
file's channel in that server, a return first noticed by `run --once`, a feed another server
still follows, an outage (not a removal), rapid removals and returns, global commands.

Nothing is written for a server while it is away and nobody else is told about its channels;
what was queued for it is held and sent once on its return, and its channels paused meanwhile
(the config file's there too) are resumed, whichever process notices the return."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.client import run_discord
from tests.bot.conftest import TOKEN, Running, on_clock, start_running
from tests.bot.test_isolation_e2e import A, B, two  # noqa: F401 - the two servers' emulator
from tests.bot.test_server_removed import LATER, STORY, follow_and_watch
from tests.bot.test_tenancy_leaks import (  # noqa: F401 - feeds: the three feeds' server
    alerts_of,
    ask,
    feeds,
    item,
    stop,
    text_of,
    two_servers,
)
from tests.fakes.discord_emulator import DiscordEmulator, Fault, GuildSpec
from tests.fakes.feed_server import FeedServer, Route
from tests.service.test_identity import rss
from watchers.config import parse_config
from watchers.engine import Engine
from watchers.schedule import ManualClock
from watchers.store import SqliteStore
from watchers.tenancy import feed_key


@asynccontextmanager
async def serving(emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer,  # noqa: F811
                  **kw: Any) -> AsyncIterator[Running]:
    """:func:`start` for the length of a block, stopped cleanly after it."""
    run = await start(emu, tmp_path, feeds, **kw)
    try:
        yield run
    finally:
        await stop(run)


def is_back(engine: Engine) -> bool:
    """B's return is applied: not departed, and the engine done taking it back."""
    return B not in engine.departed and not engine._presence.locked()


SPECS: dict[int, Any] = {}


def guild(emu: DiscordEmulator, gid: int) -> Any:
    found = next((g for g in emu.guilds if g.id == gid), None)
    if found is None:
        return SPECS[gid]  # a guild the bot is not in now: its spec as last seen
    SPECS[gid] = found
    return found


async def start(emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer,  # noqa: F811
                discord: dict[str, Any] | None = None, **extra: Any) -> Running:
    """newswatch serving A and B with the operator's feed, notices in A's #ops, and a config
    rule ("b-troops") posting to route "b_ops", a channel of B's."""
    data = two_servers(emu, tmp_path, sources=[{"name": "operator", "type": "feed",
                                                "every": "1h", "url": feeds.url("/operator")}],
                       notices="ops", **(discord or {}))
    a, b = guild(emu, A), guild(emu, B)
    data["channels"] = {"alerts": a.channel("alerts").id, "ops": a.channel("ops").id,
                        "b_ops": b.channel("ops").id}
    # the operator's own rule posting into a channel of server B
    data["rules"] = [{"name": "troops", "query": "troops"},
                     {"name": "b-troops", "query": "troops", "channel": "b_ops"}]
    data.update(extra)
    run = await start_running(parse_config(data, base_dir=tmp_path), emu, tmp_path / "seeds")
    await emu.wait_until_identified(timeout=10)
    await run.wait_for(lambda: bool(emu.commands(A)))
    return run


async def test_alert_in_flight_at_removal_is_sent_once_on_return_and_no_notice_leaks(
        two: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    emu = two
    async with serving(emu, tmp_path, feeds) as run:
        await follow_and_watch(run, feeds)
        engine = run.engine
        b = guild(emu, B)
        b_alerts = b.channel("alerts").id
        a_ops = guild(emu, A).channel("ops").id
        # B's channel fails once (503, not retried by discord.py): the alert backs off and is
        # still pending when B removes the bot
        emu.inject(f"POST /channels/{b_alerts}/messages", Fault.server_error(503))
        feeds.set("/b-desk", Route(body=rss([item("b-1", *STORY, 29)])))
        await engine.run_once()
        await run.wait_for(lambda: any(f"/channels/{b_alerts}/messages" in r.path
                                       for r in emu.requests if r.method == "POST"))
        removed = await emu.remove_bot(B)
        await run.wait_for(lambda: B in engine.departed)
        b_route = f"{B}:alerts"
        await run.wait_for(lambda: b_route in engine.paused_routes(), 10)
        await asyncio.sleep(0.5)
        leaked = [text_of(m) for m in emu.messages(a_ops)]
        # invited back: the held alert is sent, once
        await emu.add_bot(removed)
        await run.wait_for(lambda: is_back(engine))
        await run.wait_for(lambda: len(emu.messages(b_alerts)) >= 1)
        await asyncio.sleep(1.0)
        posted = [text_of(m) for m in emu.messages(b_alerts)]
        assert len(posted) == 1, posted
        assert b_route not in engine.paused_routes()
        assert not [t for t in leaked if str(B) in t or "alerts" in t], (
            "a notice about server B's own channel reached the operator's notices channel: "
            f"{leaked}")


async def test_operators_channel_in_a_server_that_removed_the_bot_resumes_on_return(
        two: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    emu = two
    async with serving(emu, tmp_path, feeds) as run:
        engine = run.engine
        await engine.run_once()
        b = guild(emu, B)
        b_ops = b.channel("ops").id
        removed = await emu.remove_bot(B)
        await run.wait_for(lambda: B in engine.departed)
        # the operator's rule still runs (it is the operator's); its channel in B is gone
        feeds.set("/operator", Route(body=rss([item("o-1", *STORY, 20)])))
        await engine.run_once()
        await run.wait_for(lambda: "b_ops" in engine.paused_routes(), 10)
        await emu.add_bot(removed)
        await run.wait_for(lambda: is_back(engine))
        await asyncio.sleep(1.0)
        assert "b_ops" not in engine.paused_routes(), (
            "the operator's channel in the server that invited the bot back stays paused: "
            f"{engine.paused_routes()}")
        await run.wait_for(lambda: len(emu.messages(b_ops)) >= 1, 5)


async def test_no_escalation_is_written_for_a_server_that_removed_the_bot(
        two: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    emu = two
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    a, b = guild(emu, A), guild(emu, B)
    role = next(r.id for r in a.roles if r.name == "Admin")
    data = two_servers(emu, tmp_path, sources=[], notices="ops", escalation_role=role,
                       ack_from="high")
    data["channels"] = {"alerts": a.channel("alerts").id, "ops": a.channel("ops").id}
    run = await start_running(parse_config(data, base_dir=tmp_path), emu, tmp_path / "seeds",
                              on_clock(clock))
    try:
        await emu.wait_until_identified(timeout=10)
        await run.wait_for(lambda: bool(emu.commands(B)))
        engine = run.engine
        b_alerts = b.channel("alerts").id
        said = await ask(emu, B, "rules add", {"name": "watch", "query": "troops",
                                               "channel": b_alerts, "severity": "critical"})
        assert not said.ephemeral, said.content
        said = await ask(emu, B, "sources add", {"name": "desk", "url": feeds.url("/b-desk")})
        assert not said.ephemeral, said.content
        await engine.run_once()
        feeds.set("/b-desk", Route(body=rss([item("b-1", *STORY, 5)])))
        await engine.run_once()
        await run.wait_for(lambda: len(emu.messages(b_alerts)) >= 1)
        removed = await emu.remove_bot(B)
        await run.wait_for(lambda: B in engine.departed)
        before = {r.id for r in await engine.store.alerts(limit=1000)}
        clock.advance(timedelta(minutes=16))
        await engine.delivery.drain()
        await asyncio.sleep(1.0)
        await engine.delivery.drain()
        rows = [r for r in await engine.store.alerts(limit=1000) if r.id not in before]
        written = [(r.kind, r.route, r.state, (r.text or "")[:60]) for r in rows
                   if r.route.startswith(f"{B}:")]
        ops = [text_of(m)[:120] for m in emu.messages(a.channel("ops").id)]
        await emu.add_bot(removed)
        await run.wait_for(lambda: is_back(engine))
        await asyncio.sleep(1.0)
        late = [m.content for m in emu.messages(b_alerts) if "Not acknowledged" in m.content]
        assert not written, (
            f"written for B while it was away: {written}; operator's #ops got: {ops}; "
            f"posted in B on its return: {late}")
    finally:
        await stop(run)


async def _held_while_away(emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer  # noqa: F811
                           ) -> GuildSpec:
    """B's alert is pending when B removes the bot; it is held (route paused). Returns B."""
    async with serving(emu, tmp_path, feeds) as run:
        await follow_and_watch(run, feeds)
        engine = run.engine
        b_alerts = guild(emu, B).channel("alerts").id
        emu.inject(f"POST /channels/{b_alerts}/messages", Fault.server_error(503))
        feeds.set("/b-desk", Route(body=rss([item("b-1", *STORY, 29)])))
        await engine.run_once()
        await run.wait_for(lambda: any(f"/channels/{b_alerts}/messages" in r.path
                                       for r in emu.requests if r.method == "POST"))
        removed = await emu.remove_bot(B)
        await run.wait_for(lambda: B in engine.departed)
        await run.wait_for(lambda: f"{B}:alerts" in engine.paused_routes(), 10)
    return removed


async def test_return_noticed_by_run_once_resumes_the_held_channel(
        two: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    emu = two
    removed = await _held_while_away(emu, tmp_path, feeds)
    emu.guilds.append(removed)  # invited back while newswatch was down
    data = two_servers(emu, tmp_path, sources=[{"name": "operator", "type": "feed",
                                                "every": "1h", "url": feeds.url("/operator")}],
                       notices="ops")
    a, b = guild(emu, A), guild(emu, B)
    data["channels"] = {"alerts": a.channel("alerts").id, "ops": a.channel("ops").id,
                        "b_ops": b.channel("ops").id}
    data["rules"] = [{"name": "troops", "query": "troops"},
                     {"name": "b-troops", "query": "troops", "channel": "b_ops"}]
    cfg = parse_config(data, base_dir=tmp_path)
    # `newswatch run --once` (a cron job) is the first to connect after the return
    assert await asyncio.wait_for(run_discord(cfg, TOKEN, once=True,
                                              guild_ready_timeout=0.05), 30) == 0
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        departed = dict(await store.departed_servers())
        paused = dict(await store.paused_routes())
    assert B not in departed
    # then the service starts again as usual
    async with serving(emu, tmp_path, feeds) as run:
        b_alerts = b.channel("alerts").id
        await asyncio.sleep(2.0)
        assert f"{B}:alerts" not in run.engine.paused_routes(), (
            "B is back, but its channel paused while it was away stays paused for good "
            f"(store after --once: departed={departed}, paused={paused}; now "
            f"{run.engine.paused_routes()})")
        await run.wait_for(lambda: len(emu.messages(b_alerts)) >= 1, 5)


async def test_return_noticed_at_a_normal_restart_resumes_the_held_channel(
        two: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    emu = two
    removed = await _held_while_away(emu, tmp_path, feeds)
    emu.guilds.append(removed)
    async with serving(emu, tmp_path, feeds) as run:
        b_alerts = guild(emu, B).channel("alerts").id
        await run.wait_for(lambda: is_back(run.engine))
        await run.wait_for(lambda: len(emu.messages(b_alerts)) >= 1, 10)
        await asyncio.sleep(1.0)
        assert len(emu.messages(b_alerts)) == 1
        assert f"{B}:alerts" not in run.engine.paused_routes()


async def test_a_feed_both_servers_follow_keeps_running_for_the_one_still_present(
        two: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    emu = two
    feeds.set("/shared", Route(body=rss([])))
    async with serving(emu, tmp_path, feeds) as run:
        engine = run.engine
        for g in (B, A):  # B follows first: its follow is the feed's first follower
            alerts = guild(emu, g).channel("alerts").id
            said = await ask(emu, g, "rules add", {"name": "watch", "query": "troops",
                                                   "channel": alerts})
            assert not said.ephemeral, said.content
            said = await ask(emu, g, "sources add", {"name": f"wire{g % 1000}",
                                                     "url": feeds.url("/shared")})
            assert not said.ephemeral, said.content
        await engine.run_once()
        b_alerts = guild(emu, B).channel("alerts").id
        removed = await emu.remove_bot(B)
        await run.wait_for(lambda: B in engine.departed)
        key = feed_key(feeds.url("/shared"))
        assert key in {c.name for c in engine.watch.source_configs()}, "A's feed stopped"
        polls = len(feeds.hits("/shared"))
        feeds.set("/shared", Route(body=rss([item("s-1", *STORY, 10)])))
        await engine.run_once()
        assert len(feeds.hits("/shared")) > polls
        await run.wait_for(lambda: len(alerts_of(emu, A)) >= 1)
        posted = " ".join(text_of(m) for m in alerts_of(emu, A))
        assert f"wire{B % 1000}" not in posted, "B's name for the feed reached A"
        assert not emu.messages(b_alerts)
        # back: B's follow runs again, under its own name
        await emu.add_bot(removed)
        await run.wait_for(lambda: is_back(engine))
        feeds.set("/shared", Route(body=rss([item("s-1", *STORY, 10),
                                              item("s-2", *LATER, 2)])))
        await engine.run_once()
        await run.wait_for(lambda: len(emu.messages(b_alerts)) >= 1)
        posted = " ".join(text_of(m) for m in emu.messages(b_alerts))
        assert f"wire{A % 1000}" not in posted


async def test_rapid_remove_and_invite_cycles_leave_one_consistent_state(
        two: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    emu = two
    async with serving(emu, tmp_path, feeds) as run:
        engine = run.engine
        await follow_and_watch(run, feeds)
        b = guild(emu, B)
        for _ in range(6):
            removed = await emu.remove_bot(B)
            await emu.add_bot(removed)
        await asyncio.sleep(1.0)
        await run.wait_for(lambda: is_back(engine))
        assert B not in await engine.store.departed_servers()
        assert any(r.guild_id == B for r in engine.watch.rules)
        names = [c.name for c in engine.watch.source_configs()]
        key = feed_key(feeds.url("/b-desk"))
        assert names.count(key) == 1, names
        feeds.set("/b-desk", Route(body=rss([item("b-1", *STORY, 29)])))
        await engine.run_once()
        await run.wait_for(lambda: len(emu.messages(b.channel("alerts").id)) >= 1)
        await asyncio.sleep(1.0)
        assert len(emu.messages(b.channel("alerts").id)) == 1
        # and interleaved with polls, ending away
        for _ in range(4):
            removed = await emu.remove_bot(B)
            poll = asyncio.create_task(engine.run_once())
            await emu.add_bot(removed)
            await poll
        removed = await emu.remove_bot(B)
        await run.wait_for(lambda: B in engine.departed)
        await asyncio.sleep(0.5)
        assert B in await engine.store.departed_servers()
        assert all(r.guild_id != B for r in engine.watch.rules)
        assert key not in {c.name for c in engine.watch.source_configs()}


async def test_an_outage_is_not_a_removal(
        two: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    emu = two
    async with serving(emu, tmp_path, feeds) as run:
        engine = run.engine
        await follow_and_watch(run, feeds)
        assert await emu.dispatch("GUILD_DELETE", {"id": str(B), "unavailable": True},
                                  intent=1 << 0)
        await asyncio.sleep(1.0)
        assert B not in engine.departed
        assert not await engine.store.departed_servers()
        assert any(r.guild_id == B for r in engine.watch.rules)
        # back from the outage
        assert await emu.dispatch("GUILD_CREATE", emu.guild_payload(guild(emu, B)),
                                  intent=1 << 0)
        await asyncio.sleep(0.5)
        assert B not in engine.departed


async def test_restart_during_an_outage_does_not_take_the_server_for_removed(
        two: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    """At connect Discord lists a server in an outage as unavailable in READY and sends no
    GUILD_CREATE for it until it is back."""
    emu = two
    async with serving(emu, tmp_path, feeds) as run:
        await follow_and_watch(run, feeds)
    real = emu.guild_payload

    def in_outage(g):  # type: ignore[no-untyped-def]
        if g.id == B:
            return {"id": str(B), "unavailable": True}
        return real(g)

    emu.guild_payload = in_outage  # type: ignore[method-assign]
    try:
        async with serving(emu, tmp_path, feeds) as run:
            await asyncio.sleep(1.0)
            assert B not in run.engine.departed
            assert not await run.engine.store.departed_servers()
    finally:
        emu.guild_payload = real  # type: ignore[method-assign]


async def test_global_commands_remove_and_invite_back(
        two: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    emu = two
    data = two_servers(emu, tmp_path, sources=[{"name": "operator", "type": "feed",
                                                "every": "1h", "url": feeds.url("/operator")}])
    data["discord"]["guild_ids"] = []
    run: Running = await start_running(parse_config(data, base_dir=tmp_path), emu,
                                       tmp_path / "seeds")
    try:
        await emu.wait_until_identified(timeout=10)
        await run.wait_for(lambda: bool(emu.commands()))
        engine = run.engine
        await follow_and_watch(run, feeds)
        removed = await emu.remove_bot(B)
        await run.wait_for(lambda: B in engine.departed)
        assert all(r.guild_id != B for r in engine.watch.rules)
        await emu.add_bot(removed)
        await run.wait_for(lambda: is_back(engine))
        said = await ask(emu, B, "rules list")
        assert "watch" in text_of(said), text_of(said)
    finally:
        run.stop.set()
        assert await asyncio.wait_for(run.task, 15) == 0
