"""A server that removes the bot: its rules, feeds and channels are kept but not run until it
invites the bot back (real discord.py against the emulator, both gateway events).

While it is away its feeds are not fetched (nobody there reads them), its rules match nothing
and nothing is held for it; the other server and the operator carry on. Kept across a restart,
and noticed at connect when the removal (or the invitation back) happened while newswatch was
down. Invited back, everything runs again and new articles reach its channel."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.bot.conftest import Running
from tests.bot.test_isolation_e2e import A, B, two  # noqa: F401 - the two servers' emulator
from tests.bot.test_tenancy_leaks import (  # noqa: F401 - feeds: the three feeds' server
    alerts_of,
    ask,
    feeds,
    item,
    start_two,
    stop,
    two_servers,
)
from tests.fakes.discord_emulator import DiscordEmulator, GuildSpec
from tests.fakes.feed_server import FeedServer, Route
from tests.service.test_identity import rss
from watchers.store import SqliteStore

STORY = ("Troops gather at the border", "Troops were seen near the border at dawn.")
LATER = ("Troops move closer to the border", "More troops arrived at the border by night.")


async def start(emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> Running:  # noqa: F811
    return await start_two(emu, tmp_path, two_servers(
        emu, tmp_path, sources=[{"name": "operator", "type": "feed", "every": "1h",
                                 "url": feeds.url("/operator")}]))


async def follow_and_watch(run: Running, feeds: FeedServer) -> None:  # noqa: F811
    """A and B each: rule "watch" (troops) to its #alerts, and a feed of its own."""
    emu = run.emu
    for guild, path in ((A, "/a-desk"), (B, "/b-desk")):
        alerts = next(g for g in emu.guilds if g.id == guild).channel("alerts").id
        said = await ask(emu, guild, "rules add", {"name": "watch", "query": "troops",
                                                   "channel": alerts})
        assert not said.ephemeral, said.content
        said = await ask(emu, guild, "sources add", {"name": "desk", "url": feeds.url(path)})
        assert not said.ephemeral, said.content
    await run.engine.run_once()  # baselines (empty)


def served_again(run: Running) -> bool:
    """B is back, its rule running and its feed polled again (the engine has applied it)."""
    return (B not in run.engine.departed
            and any(r.guild_id == B for r in run.engine.watch.rules)
            and any("/b-desk" in str(getattr(c, "url", ""))
                    for c in run.engine.watch.source_configs()))


async def settled_hits(feeds: FeedServer, path: str) -> int:  # noqa: F811
    """How many requests ``path`` has had, once none came for half a second (10 s at most)."""
    count = len(feeds.hits(path))
    for _ in range(20):
        await asyncio.sleep(0.5)
        if len(feeds.hits(path)) == count:
            break
        count = len(feeds.hits(path))
    return count


async def gone_while_down(emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer  # noqa: F811
                          ) -> tuple[GuildSpec, Running]:
    """A and B set up, newswatch stopped, the bot taken out of B meanwhile (no event reaches
    it), newswatch started again and B found gone at connect: (B, the new run)."""
    run = await start(emu, tmp_path, feeds)
    try:
        await follow_and_watch(run, feeds)
    finally:
        await stop(run)
    gone = next(g for g in emu.guilds if g.id == B)
    emu.guilds.remove(gone)
    run = await start(emu, tmp_path, feeds)
    try:
        await run.wait_for(lambda: B in run.engine.departed)
    except BaseException:
        await stop(run)
        raise
    return gone, run


async def test_a_server_that_removes_the_bot_is_not_run_until_it_invites_it_back(
        two: DiscordEmulator, tmp_path: Path, feeds: FeedServer,  # noqa: F811
        caplog: pytest.LogCaptureFixture) -> None:
    emu = two
    run = await start(emu, tmp_path, feeds)
    try:
        await follow_and_watch(run, feeds)
        engine = run.engine
        b_guild = next(g for g in emu.guilds if g.id == B)
        with caplog.at_level(logging.INFO, logger="watchers"):
            removed = await emu.remove_bot(B)
            await run.wait_for(lambda: B in engine.departed)
        assert any(f"server {B} removed the bot" in r.getMessage() for r in caplog.records)
        # B's feed is no longer polled; its rule no longer runs; A's and the operator's do
        b_polls = await settled_hits(feeds, "/b-desk")
        a_polls = len(feeds.hits("/a-desk"))
        for path, (guid, when) in (("/a-desk", ("a-1", 30)), ("/b-desk", ("b-1", 29)),
                                   ("/operator", ("o-1", 28))):
            feeds.set(path, Route(body=rss([item(guid, *STORY, when)])))
        await engine.run_once()
        assert len(feeds.hits("/b-desk")) == b_polls, "a departed server's feed was fetched"
        assert len(feeds.hits("/a-desk")) > a_polls
        assert all(r.guild_id != B for r in engine.watch.rules)
        await run.wait_for(lambda: len(alerts_of(emu, A)) >= 1)
        assert not emu.messages(b_guild.channel("alerts").id)
        b_routes = {r.key for r in await engine.store.list_server_routes() if r.guild_id == B}
        assert b_routes, "B's channel is kept"
        rows = await engine.store.alerts(limit=1000)
        assert not [r for r in rows if r.route in b_routes], "an alert was written for B"
    finally:
        await stop(run)

    # kept across a restart: B is still away
    run = await start(emu, tmp_path, feeds)
    try:
        assert B in run.engine.departed
        polls = len(feeds.hits("/b-desk"))
        await run.engine.run_once()
        assert len(feeds.hits("/b-desk")) == polls
        # invited back: B's feed and rule run again, and its new article reaches its channel
        await emu.add_bot(removed)
        await run.wait_for(lambda: served_again(run))
        feeds.set("/b-desk", Route(body=rss([item("b-1", *STORY, 29),
                                              item("b-2", *LATER, 5)])))
        await run.engine.run_once()
        await run.wait_for(lambda: len(feeds.hits("/b-desk")) > polls)
        await run.wait_for(lambda: len(emu.messages(b_guild.channel("alerts").id)) >= 1)
        posted = " ".join(m.content + str(m.embeds)
                          for m in emu.messages(b_guild.channel("alerts").id))
        assert "move closer to the border" in posted  # LATER, its words highlighted
    finally:
        await stop(run)


async def test_a_removal_and_a_return_while_newswatch_was_down_are_noticed_at_connect(
        two: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    emu = two
    removed, run = await gone_while_down(emu, tmp_path, feeds)
    try:
        # Polling starts before Discord is reached: a poll begun before the check at connect
        # may still be under way; none starts after it.
        polls = await settled_hits(feeds, "/b-desk")
        await run.engine.run_once()
        assert len(feeds.hits("/b-desk")) == polls
    finally:
        await stop(run)
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        assert B in await store.departed_servers()
    emu.guilds.append(removed)  # invited back while newswatch was down
    polls = len(feeds.hits("/b-desk"))
    run = await start(emu, tmp_path, feeds)
    try:
        await run.wait_for(lambda: served_again(run))
        await run.engine.run_once()  # (or the background poll of the source added back)
        await run.wait_for(lambda: len(feeds.hits("/b-desk")) > polls)
        assert any(r.guild_id == B for r in run.engine.watch.rules)
    finally:
        await stop(run)


async def test_a_server_missing_at_connect_that_comes_back_available_is_served_again(
        two: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    emu = two
    missing, run = await gone_while_down(emu, tmp_path, feeds)
    try:
        emu.guilds.append(missing)  # back from an outage: GUILD_CREATE with unavailable false
        assert await emu.dispatch("GUILD_CREATE", emu.guild_payload(missing), intent=1 << 0)
        await run.wait_for(lambda: served_again(run))
    finally:
        await stop(run)
