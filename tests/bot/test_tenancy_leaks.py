"""Two servers share one newswatch: what one server's own feeds bring never shows in the
other's channels, lookups or the operator's channels (real discord.py against the emulator).

A story reported by server A's own feed, the operator's feed and server B's own feed is one
story; B sees it without A's article (not its headline, its times or its count), and A's
article changing in place updates A's messages only. A followed feed that pauses is told to
the server that follows it, by its name there, in one of its own channels; a server's
channel that becomes unusable is told to that server, never in the operator's notices."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.bot._stories import REPORTS
from tests.bot.conftest import Running, bot_config, start_running
from tests.bot.test_isolation_e2e import A, B, two  # noqa: F401 - the two servers' emulator
from tests.fakes.discord_emulator import DiscordEmulator, EmuMessage, Fault
from tests.fakes.feed_server import FeedServer, Route
from tests.service.test_identity import rss
from watchers.config import parse_config

NOW = datetime.now(UTC).replace(microsecond=0)


def item(guid: str, title: str, text: str, minutes_ago: int) -> tuple[Any, ...]:
    return (guid, f"https://{guid}.example/news", title, text,
            NOW - timedelta(minutes=minutes_ago))


@pytest.fixture
async def feeds() -> AsyncIterator[FeedServer]:
    async with FeedServer() as server:
        for path in ("/a-desk", "/b-desk", "/operator"):
            server.set(path, Route(body=rss([])))
        yield server


def two_servers(emu: DiscordEmulator, tmp_path: Path, *,
                sources: list[dict[str, Any]] | None = None,
                fetch: dict[str, Any] | None = None, **discord: Any) -> dict[str, Any]:
    """The config of a newswatch serving A and B: the config file's rule "troops" (route
    "alerts", A's #alerts), ``sources`` of its own, ``[discord]`` settings; seeds/ made."""
    data = bot_config(emu, tmp_path, fetch={"allow_private": ["127.0.0.1/32"], **(fetch or {})},
                      sources=sources or [], rules=[{"name": "troops", "query": "troops"}])
    data["discord"].update(guild_ids=[A, B], **discord)
    (tmp_path / "seeds").mkdir(exist_ok=True)
    return data


@pytest.fixture
async def running(two: DiscordEmulator, tmp_path: Path, feeds: FeedServer  # noqa: F811
                  ) -> AsyncIterator[Running]:
    data = two_servers(two, tmp_path, sources=[{"name": "operator", "type": "feed",
                                                "every": "1h", "url": feeds.url("/operator")}])
    run = await start_running(parse_config(data, base_dir=tmp_path), two, tmp_path / "seeds")
    try:
        await two.wait_until_identified(timeout=10)
        await run.wait_for(lambda: bool(two.commands(B)))
        yield run
    finally:
        run.stop.set()
        assert await asyncio.wait_for(run.task, 15) == 0


async def start_two(emu: DiscordEmulator, tmp_path: Path, data: dict[str, Any]) -> Running:
    """newswatch started on ``data`` (see :func:`two_servers`), once A has its commands."""
    run = await start_running(parse_config(data, base_dir=tmp_path), emu, tmp_path / "seeds")
    await emu.wait_until_identified(timeout=10)
    await run.wait_for(lambda: bool(emu.commands(A)))
    return run


async def stop(run: Running) -> None:
    run.stop.set()
    assert await asyncio.wait_for(run.task, 15) == 0


async def ask(emu: DiscordEmulator, guild: int, name: str,
              options: dict[str, Any] | None = None, user: str = "admin") -> EmuMessage:
    handle = await emu.send_interaction(name, options, guild_id=guild, user=user)
    return await handle.final_message(timeout=15)


def text_of(msg: EmuMessage) -> str:
    return msg.content + json.dumps(msg.embeds, ensure_ascii=False)


def alerts_of(emu: DiscordEmulator, guild: int) -> list[EmuMessage]:
    ch = next(g for g in emu.guilds if g.id == guild).channel("alerts").id
    return emu.messages(ch)


async def setup(run: Running, feeds: FeedServer) -> None:
    """A and B each: rule "watch" (troops, high => ack buttons) to its #alerts, one feed."""
    emu = run.emu
    for guild in (A, B):
        alerts = next(g for g in emu.guilds if g.id == guild).channel("alerts").id
        said = await ask(emu, guild, "rules add", {"name": "watch", "query": "troops",
                                                   "channel": alerts, "severity": "high"})
        assert not said.ephemeral, said.content
    for guild, path in ((A, "/a-desk"), (B, "/b-desk")):
        said = await ask(emu, guild, "sources add", {"name": "desk", "url": feeds.url(path)})
        assert not said.ephemeral, said.content
    await run.engine.run_once()  # baselines (empty)


SECRET = "A-ONLY SECRET: Minister Ivanenko resigns"


def operator_messages(emu: DiscordEmulator) -> list[EmuMessage]:
    """What the config file's rule (``troops``, route ``alerts``: A's #alerts) posted."""
    return [m for m in alerts_of(emu, A) if "`troops`" in text_of(m)]


async def test_a_story_with_another_servers_article_shows_it_nowhere(
        running: Running, feeds: FeedServer) -> None:
    emu, engine = running.emu, running.engine
    await setup(running, feeds)
    # A's own feed reports first, then the operator's feed, then B's own feed: one story
    feeds.set("/a-desk", Route(body=rss([item("a-dw", *REPORTS["dw"], 30)])))
    await engine.run_once()
    await running.wait_for(lambda: len(alerts_of(emu, A)) >= 1)
    feeds.set("/operator", Route(body=rss([item("o-npr", *REPORTS["npr"], 25)])))
    await engine.run_once()
    feeds.set("/b-desk", Route(body=rss([item("b-bbc", *REPORTS["bbc"], 20)])))
    await engine.run_once()
    await running.wait_for(lambda: len(alerts_of(emu, B)) >= 1)
    ids = {str(h.article.url).split("//")[1].split(".")[0]: h.article.id
           for h in (await engine.search("troops", limit=50)).hits}
    stories = await engine.stories_of([ids["a-dw"], ids["b-bbc"], ids["o-npr"]])
    assert len({s.id for s in stories.values()}) == 1, "the three reports are one story"
    sid = stories[ids["b-bbc"]].id
    a_headline = REPORTS["dw"][0]

    story_b = text_of(await ask(emu, B, "story", {"id": sid}, user="member"))
    assert a_headline not in story_b and "2 articles" in story_b
    assert REPORTS["npr"][0] in story_b  # the first article B sees heads it
    search_b = await ask(emu, B, "search", {"query": "satellite"}, user="member")
    assert search_b.components and a_headline not in json.dumps(search_b.components)
    preview = text_of(await ask(emu, B, "rules preview", {"name": "watch",
                                                          "article": ids["b-bbc"]}))
    assert not re.search(r"@[0-9a-f]{12}", preview), preview  # no feed key of A's
    assert "3 articles" not in text_of(alerts_of(emu, B)[0])
    a_story = text_of(await ask(emu, A, "story", {"id": sid}, user="member"))
    assert a_headline in a_story  # A sees its own article heading the story

    # A's article changes in place: A's messages are updated, B's and the operator's not
    feeds.set("/a-desk", Route(body=rss([item("a-dw", SECRET, REPORTS["dw"][1], 30)])))
    await engine.run_once()
    await running.wait_for(lambda: any("SECRET" in text_of(m) for m in alerts_of(emu, A)
                                       if "`watch`" in text_of(m)))
    await engine.delivery.drain()
    assert not any("SECRET" in text_of(m) for m in alerts_of(emu, B))
    assert operator_messages(emu) and not any("SECRET" in text_of(m)
                                              for m in operator_messages(emu))


async def test_a_followed_feed_that_pauses_is_told_to_its_server_only(
        two: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    # the operator's notices: A's #alerts
    data = two_servers(two, tmp_path, fetch={"pause_after": 1}, notices="alerts")
    run = await start_running(parse_config(data, base_dir=tmp_path), two, tmp_path / "seeds")
    try:
        await two.wait_until_identified(timeout=10)
        await run.wait_for(lambda: bool(two.commands(B)))
        b_alerts = next(g for g in two.guilds if g.id == B).channel("alerts").id
        said = await ask(two, B, "rules add", {"name": "watch", "query": "troops",
                                               "channel": b_alerts})
        assert not said.ephemeral, said.content
        feeds.set("/b-private", Route(body=rss([])))
        said = await ask(two, B, "sources add",
                         {"name": "tips", "url": feeds.url("/b-private") + "?key=B-SECRET"})
        assert not said.ephemeral, said.content
        await run.engine.run_once()
        feeds.set("/b-private", Route(status=500))
        await run.engine.run_once()
        await run.wait_for(lambda: any("paused" in m.content for m in two.messages(b_alerts)))
        told = [m.content for m in two.messages(b_alerts) if "paused" in m.content]
        assert len(told) == 1 and "'tips'" in told[0], told
        await run.engine.delivery.drain()
        in_a = " ".join(m.content for m in alerts_of(two, A))
        assert "B-SECRET" not in in_a and "paused" not in in_a
    finally:
        run.stop.set()
        assert await asyncio.wait_for(run.task, 15) == 0


async def test_sources_resume_polls_a_paused_feed_and_refuses_a_running_one(
        two: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    """/sources resume fetched the feed at once each time it was asked, paused or not: a
    server's admin could have a URL fetched as often as they typed it, ahead of the
    publisher's Retry-After. A running feed is now refused, saying when it is polled next."""
    data = two_servers(two, tmp_path, fetch={"pause_after": 2})
    run = await start_running(parse_config(data, base_dir=tmp_path), two, tmp_path / "seeds")

    def fetches() -> int:
        return sum(1 for r in feeds.requests if r.path == "/b-desk")

    try:
        await two.wait_until_identified(timeout=10)
        await run.wait_for(lambda: bool(two.commands(B)))
        said = await ask(two, B, "sources add", {"name": "desk", "url": feeds.url("/b-desk"),
                                                 "every": "1h"})
        assert not said.ephemeral, said.content
        await run.wait_for(lambda: fetches() >= 1)
        feeds.set("/b-desk", Route(status=429, headers={"Retry-After": "3600"}))
        await run.engine.run_once()  # rate limited: failing, not paused
        assert fetches() == 2
        for _ in range(3):
            said = await ask(two, B, "sources resume", {"name": "desk"})
            assert said.ephemeral and "'desk' is not paused" in said.content, said.content
            assert "its last poll failed and it is tried again at" in said.content
            assert " UTC" in said.content
        await asyncio.sleep(0.5)
        assert fetches() == 2  # nothing fetched ahead of the publisher's hour
        # paused (a second failure): resumed and polled now
        state = next(s.state for s in await run.engine.sources(guild=B) if s.name == "desk")
        assert state.failures == 1 and not state.paused
        feeds.set("/b-desk", Route(status=500))
        await run.engine.watch.resume_source(state.name)  # (the library's "poll it now")
        await run.engine.run_once()
        state = next(s.state for s in await run.engine.sources(guild=B) if s.name == "desk")
        assert state.paused
        feeds.set("/b-desk", Route(body=rss([])))
        said = await ask(two, B, "sources resume", {"name": "desk"})
        assert not said.ephemeral and "resumed" in said.content, said.content
        await run.wait_for(lambda: fetches() >= 4)
        state = next(s.state for s in await run.engine.sources(guild=B) if s.name == "desk")
        assert not state.paused and state.failures == 0
    finally:
        run.stop.set()
        assert await asyncio.wait_for(run.task, 15) == 0


async def test_a_servers_channel_that_pauses_is_told_to_that_server(
        two: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    data = two_servers(two, tmp_path, notices="alerts")  # the operator's: A's #alerts
    run = await start_running(parse_config(data, base_dir=tmp_path), two, tmp_path / "seeds")
    try:
        await two.wait_until_identified(timeout=10)
        await run.wait_for(lambda: bool(two.commands(B)))
        await setup(run, feeds)
        b_guild = next(g for g in two.guilds if g.id == B)
        ops = b_guild.channel("ops").id
        said = await ask(two, B, "rules add", {"name": "other", "query": "zzzunmatched",
                                               "channel": ops})
        assert not said.ephemeral, said.content
        two.inject(f"POST /channels/{b_guild.channel('alerts').id}/messages",
                   Fault.forbidden(50001), times=100)
        feeds.set("/b-desk", Route(body=rss([item("b-1", "Bison troops", "Troops.", 10)])))
        await run.engine.run_once()
        await run.wait_for(lambda: any("paused" in m.content for m in two.messages(ops)))
        told = next(m.content for m in two.messages(ops) if "paused" in m.content)
        told = told.replace("\\", "")  # markup is escaped: "\\#alerts" shows as "#alerts"
        assert "'#alerts'" in told and "/alerts resume #alerts" in told and str(B) not in told
        await run.engine.delivery.drain()
        assert not any("paused" in m.content for m in alerts_of(two, A))
    finally:
        run.stop.set()
        assert await asyncio.wait_for(run.task, 15) == 0


async def test_only_the_server_a_config_rule_posts_in_may_mute_it(running: Running) -> None:
    emu, engine = running.emu, running.engine
    # "troops" is the config file's; its route "alerts" is a channel of server A
    # in any case the engine finds it by ("/mute TROOPS" muted it from B)
    for name in ("troops", "TROOPS", "Troops"):
        refused = await ask(emu, B, "mute", {"rule": name, "duration": "7d"})
        assert refused.ephemeral and "config file's" in refused.content, (name, refused.content)
        assert not await engine.store.mutes(now=NOW)
    muted = await ask(emu, A, "mute", {"rule": "troops", "duration": "7d"})
    assert not muted.ephemeral and "muted until" in muted.content
    for name in ("troops", "TROOPS"):
        refused = await ask(emu, B, "unmute", {"rule": name})
        assert refused.ephemeral and "config file's" in refused.content, (name, refused.content)
        assert await engine.store.mutes(now=NOW)
    said = await ask(emu, A, "unmute", {"rule": "TROOPS"})
    assert not said.ephemeral and "unmuted" in said.content
    assert not await engine.store.mutes(now=NOW)
    muted = await ask(emu, A, "mute", {"rule": "troops", "duration": "7d"})
    assert not muted.ephemeral and "muted until" in muted.content
    assert await engine.store.mutes(now=NOW)
    # a server's own rule is its own
    b_alerts = next(g for g in emu.guilds if g.id == B).channel("alerts").id
    said = await ask(emu, B, "rules add", {"name": "watch", "query": "troops",
                                           "channel": b_alerts})
    assert not said.ephemeral
    mine = await ask(emu, B, "mute", {"rule": "watch", "duration": "1h"})
    assert not mine.ephemeral and "muted until" in mine.content


async def test_an_escalation_in_a_servers_channel_mentions_no_operator_role(
        two: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    from tests.bot.conftest import on_clock
    from watchers.schedule import ManualClock

    clock = ManualClock(NOW)
    a_role = next(g for g in two.guilds if g.id == A).roles[-1].id
    data = two_servers(two, tmp_path, escalation_role=a_role)  # a role of A, the operator's
    run = await start_running(parse_config(data, base_dir=tmp_path), two, tmp_path / "seeds",
                              on_clock(clock))
    try:
        await two.wait_until_identified(timeout=10)
        await run.wait_for(lambda: bool(two.commands(B)))
        b_alerts = next(g for g in two.guilds if g.id == B).channel("alerts").id
        said = await ask(two, B, "rules add", {"name": "crit", "query": "troops",
                                               "channel": b_alerts, "severity": "critical"})
        assert not said.ephemeral
        feeds.set("/b-desk", Route(body=rss([])))
        await ask(two, B, "sources add", {"name": "desk", "url": feeds.url("/b-desk")})
        await run.engine.run_once()
        feeds.set("/b-desk", Route(body=rss([item("b-x", "Troops on the bridge",
                                                  "Troops seen.", 1)])))
        await run.engine.run_once()
        await run.wait_for(lambda: len(two.messages(b_alerts)) >= 1)
        clock.advance(timedelta(minutes=16))
        await run.wait_for(lambda: any("Not acknowledged" in m.content
                                       for m in two.messages(b_alerts)))
        (esc,) = [m for m in two.messages(b_alerts) if "Not acknowledged" in m.content]
        assert str(a_role) not in esc.content and "<@&" not in esc.content
        assert not (esc.allowed_mentions or {}).get("roles")
    finally:
        run.stop.set()
        assert await asyncio.wait_for(run.task, 15) == 0


async def test_a_server_taken_out_of_guild_ids_is_kept_but_not_run(
        two: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    data = two_servers(two, tmp_path)

    async def start() -> Running:
        return await start_two(two, tmp_path, data)

    run = await start()
    await run.wait_for(lambda: bool(two.commands(B)))
    await setup(run, feeds)
    await stop(run)

    data["discord"]["guild_ids"] = [A]  # the operator stops serving B
    run = await start()
    try:
        assert not [r for r in run.engine.watch.rules if r.guild_id == B]
        assert run.engine.server_routes(B) == {}
        before = sum(1 for r in feeds.requests if r.path == "/b-desk")
        feeds.set("/b-desk", Route(body=rss([item("b-1", "Bison troops", "Troops.", 10)])))
        feeds.set("/a-desk", Route(body=rss([item("a-1", "Grizzly troops", "Troops.", 10)])))
        await run.engine.run_once()
        await run.wait_for(lambda: len(alerts_of(two, A)) >= 1)
        await run.engine.delivery.drain()
        assert alerts_of(two, B) == []
        assert sum(1 for r in feeds.requests if r.path == "/b-desk") == before
    finally:
        await stop(run)

    data["discord"]["guild_ids"] = [A, B]  # listed again: B's rules, feed and channel are back
    run = await start()
    try:
        assert [r.name for r in run.engine.watch.rules if r.guild_id == B] == ["watch"]
        await run.engine.run_once()
        await run.wait_for(lambda: len(alerts_of(two, B)) >= 1)
    finally:
        await stop(run)
