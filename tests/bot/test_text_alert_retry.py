"""A text-style alert's retry finds only its own earlier attempt, with the real discord.py against
the emulator.

A text-style message is found again by its content, and a template such as "{severity}:
{title}" renders two alerts alike when their headlines are (a live blog's recurring title):
the second alert's retry after a 5xx took the first one's message for its own, was marked
delivered with that message's id and never posted, and nothing was logged. Now a message the
sink posted for another alert, or one Discord made before the alert's article was seen (which
holds after a restart too), is never taken for the alert's own. Every request must be one
Discord's OpenAPI spec accepts."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import discord
import pytest

import bot.sinks
from bot.sinks import ChannelTarget, DiscordSink
from tests.bot.conftest import TOKEN, bot_config, running_with
from tests.fakes.discord_emulator import (
    ChannelSpec,
    DiscordEmulator,
    Fault,
    GuildSpec,
    default_guild,
    run_client,
)
from tests.fakes.feed_server import FeedServer, Route
from tests.service.test_identity import rss
from watchers.config import RuleConfig
from watchers.delivery import Alert
from watchers.errors import UncertainDeliveryError
from watchers.models import Article
from watchers.rules import match_query

TITLE = "Live updates: troops at the border"
SEND = "POST /channels/{channel_id}/messages"
CREATE_POST = "POST /channels/{channel_id}/threads"
FORUM = 1100000000000000001 + 20
TEXT = {"template": "{severity}: {title}", "template_style": "text"}


async def test_a_text_alert_retried_after_a_5xx_is_posted_not_taken_for_anothers_message(
        ) -> None:
    """The probe's run, end to end: article A posts; B (the same recurring title, another link
    and day) meets one 503. Before, B's retry found A's message (same text), B's row was marked
    delivered with A's message id and B was never shown. Now both are posted, each row names
    its own message (the one sent with its nonce)."""
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        (tmp / "seeds").mkdir()
        async with (DiscordEmulator(token=TOKEN) as emu, emu.patch_discord(),
                    FeedServer() as feeds):
            feeds.set("/wire", Route(body=rss([])))
            ch = emu.channel("alerts").id
            data = bot_config(
                emu, tmp, fetch={"allow_private": ["127.0.0.1/32"]},
                sources=[{"name": "wire", "type": "feed", "url": feeds.url("/wire"),
                          "every": "1h", "backfill": 5}],
                channels={"alerts": {"target": ch, "stories": "off"}},
                rules=[{"name": "live", "query": "troops", "severity": "high", **TEXT}])
            async with running_with(emu, tmp, data, tmp / "seeds") as run:
                run.engine.delivery.base_backoff = 0.2
                await run.engine.run_once()
                a = ("g1", "https://news.example/live-1", TITLE, "Day one: troops gather.",
                     now - timedelta(days=1))
                feeds.set("/wire", Route(body=rss([a])))
                await run.engine.run_once()
                await run.wait_for(lambda: len(emu.messages(ch)) == 1)
                emu.inject(SEND, Fault.server_error(503), times=1)
                b = ("g2", "https://news.example/live-2", TITLE, "Day two: troops cross.", now)
                feeds.set("/wire", Route(body=rss([a, b])))
                await run.engine.run_once()
                for _ in range(300):  # until both rows are settled (B after its backoff)
                    rows = await run.engine.store.alerts(limit=10)
                    if len(rows) == 2 and all(r.state == "delivered" for r in rows):
                        break
                    await asyncio.sleep(0.05)
                messages = {str(m.id): m for m in emu.messages(ch)}
                assert len(emu.requests_for(SEND)) == 3  # A, B's 503, B's retry
                assert sorted(r.state for r in rows) == ["delivered", "delivered"], rows
                ids = [r.remote_id for r in rows]
                assert len(set(ids)) == 2 and set(ids) == set(messages), (ids, list(messages))
                for row in rows:
                    shown = messages[str(row.remote_id)]
                    assert shown.nonce == row.nonce, (
                        f"alert {row.id} is marked delivered on message {row.remote_id}, "
                        f"which another alert posted")
                    assert shown.content == r"high: Live updates\: troops at the border"
                assert emu.validate_all() == []


def forum_guild() -> GuildSpec:
    guild = default_guild()
    guild.channels.append(ChannelSpec(FORUM, "news-forum", type=15, position=3,
                                      guild_id=guild.id))
    return guild


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    async with (DiscordEmulator(token=TOKEN, guilds=[forum_guild()]) as e,
                e.patch_discord()):
        yield e


@pytest.fixture
async def client(emu: DiscordEmulator) -> AsyncIterator[discord.Client]:
    bot_client = discord.Client(intents=discord.Intents(guilds=True), guild_ready_timeout=0.05)
    async with run_client(bot_client, emu, token=TOKEN):
        yield bot_client


def live_alert(n: int, day: int) -> Alert:
    """Alert ``n`` of the live blog's day ``day``: the recurring title, its own link."""
    art = Article(id=f"a{n}", source="wire", url=f"https://news.example/live-{day}",
                  title=TITLE, text=f"Day {day}: troops at the border.",
                  published=datetime(2024, 5, day, 8, 0, tzinfo=UTC))
    m = match_query("troops", art)
    assert m is not None
    rule = RuleConfig(name="live", query="troops", severity="high",
                      template="{severity}: {title}", template_style="text")
    return Alert(id=n, route="alerts", nonce=f"alert-nonce-{n}", attempt=1, article=art,
                 matches=(m,), rules=(rule,))


def new_sink(client: discord.Client, session: aiohttp.ClientSession, channel: int
             ) -> DiscordSink:
    return DiscordSink({"alerts": ChannelTarget(channel)}, client=client, session=session,
                       timeout=5)


@pytest.mark.parametrize("where", ["channel", "forum"])
@pytest.mark.parametrize("restarted", [False, True], ids=["same process", "after a restart"])
async def test_a_text_alerts_retry_does_not_take_another_alerts_message_of_the_same_text(
        emu: DiscordEmulator, client: discord.Client, monkeypatch: pytest.MonkeyPatch,
        where: str, restarted: bool) -> None:
    """A's message (or forum post: named after the headline, starting with the same text) is
    there; B's first attempt meets a 503 and its retry looks for an earlier attempt. Before,
    it took A's message or post for its own and B was never posted; now B is posted. After a
    restart (a new sink, which remembers nothing) it is A's message being older than B's
    article that tells them apart: CLOCK_SKEW, the allowance for a clock running ahead, is set
    to nothing here because B comes seconds after A, not hours."""
    if restarted:
        monkeypatch.setattr(bot.sinks, "CLOCK_SKEW", timedelta(0), raising=False)
    channel = FORUM if where == "forum" else emu.channel("alerts").id
    fault = CREATE_POST if where == "forum" else SEND
    async with aiohttp.ClientSession() as session:
        sink = new_sink(client, session, channel)
        first = await sink.deliver(live_alert(1, day=1))
        await asyncio.sleep(0.01)  # B's article is seen after A's message was made
        b = live_alert(2, day=2)
        if restarted:
            sink = new_sink(client, session, channel)
        emu.inject(fault, Fault.server_error(503), times=1)
        with pytest.raises(UncertainDeliveryError):
            await sink.deliver(b)
        second = await sink.deliver(replace(b, attempt=2, maybe_sent=True))
    assert first is not None and second is not None
    assert second != first, "B was marked delivered on A's message and never posted"
    if where == "forum":
        posts = {str(t.id): t for t in emu.threads(FORUM)}
        assert set(posts) == {first, second}
        assert {p.name for p in posts.values()} == {TITLE}
    else:
        shown = {str(m.id): m.nonce for m in emu.messages(channel)}
        assert shown == {first: "alert-nonce-1", second: "alert-nonce-2"}
    assert emu.validate_all() == []


async def test_a_text_alerts_own_earlier_attempt_is_still_found_after_a_restart(
        emu: DiscordEmulator, client: discord.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the check leaves alone: B's own message, made by an attempt whose answer was lost,
    is found by the retry of a restarted sink after Discord forgot its nonce (not posted
    twice), next to A's message of the same text, which is not taken for it."""
    monkeypatch.setattr(bot.sinks, "CLOCK_SKEW", timedelta(0), raising=False)
    channel = emu.channel("alerts").id
    async with aiohttp.ClientSession() as session:
        first = await new_sink(client, session, channel).deliver(live_alert(1, day=1))
        await asyncio.sleep(0.01)
        b = live_alert(2, day=2)
        emu.inject(SEND, "reset_after_receive", times=1)  # made, its answer lost
        with pytest.raises(UncertainDeliveryError):
            await new_sink(client, session, channel).deliver(b)
        emu.nonce_window = 0.0
        second = await new_sink(client, session, channel).deliver(
            replace(b, attempt=2, maybe_sent=True))
    shown = {str(m.id): m.nonce for m in emu.messages(channel)}
    assert len(shown) == 2 and shown[str(second)] == "alert-nonce-2" and second != first
    assert len(emu.requests_for(SEND)) == 2  # the retry found it and sent nothing
    assert emu.validate_all() == []
