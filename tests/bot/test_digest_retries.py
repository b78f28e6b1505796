"""Digests retried, long and odd, against the real discord.py and the emulator.

A retry reads the digest again from the store, where its stories may have gained (or lost)
outlets: it must cut its parts between the same stories, so that the parts already posted are
found and none is shown twice or left out. A digest too long for twenty messages says how many
stories it leaves out; a story whose link is all brackets loses its link, not the digest."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import aiohttp
import discord
import pytest

from bot.embeds import MAX_DIGEST_PARTS, digest_messages
from bot.sinks import ChannelTarget, DiscordSink, WebhookTarget
from tests.bot.conftest import TOKEN
from tests.fakes.discord_emulator import DiscordEmulator, Fault, run_client
from watchers.config import RuleConfig
from watchers.delivery import Digest, DigestItem, StoryView
from watchers.errors import DeliveryError, UncertainDeliveryError
from watchers.models import Article

T0 = datetime(2022, 2, 24, 4, 0, tzinfo=UTC)
POST = "POST /channels/{channel_id}/messages"
EXECUTE = "POST /webhooks/{webhook_id}/{webhook_token}"
RULE = RuleConfig(name="troops", query="troops")


def grown_digest(grown: bool, attempt: int) -> Digest:
    """Twenty long lines; with ``grown`` the last story has four outlets, else one."""
    items = []
    for i in range(20):
        art = Article(id=f"a{i}", source="dw", url=f"https://dw.example/{i}",
                      title=f"Troops item {i:03d} " + "x" * 156, text="b",
                      published=T0 + timedelta(minutes=i))
        outlets = ("dw", "npr", "bbc", "ap") if (grown and i == 19) else ("dw",)
        story = StoryView(id=f"s{i}", headline=art.title, first_seen=T0, last_seen=T0,
                          outlets=outlets, articles=len(outlets))
        items.append(DigestItem(article=art, rules=(RULE,), story=story, newest=art.published))
    return Digest(id=9, route="alerts", nonce="n9", attempt=attempt, reason="digest",
                  items=tuple(items), since=T0, maybe_sent=attempt > 1)


def shown(emu: DiscordEmulator, channel: int) -> Counter[str]:
    return Counter(n for msg in emu.messages(channel)
                   for n in re.findall(r"item (\d{3})", msg.embeds[0]["description"]))


@pytest.mark.parametrize(("first", "retry"), [(False, True), (True, False)],
                         ids=["story grew before the retry", "story shrank before the retry"])
async def test_a_retried_digest_shows_every_story_once(first: bool, retry: bool) -> None:
    assert len(digest_messages(grown_digest(first, 1))) > 1
    async with DiscordEmulator(token=TOKEN) as emu, emu.patch_discord():
        channel = emu.channel("alerts").id
        client = discord.Client(intents=discord.Intents(guilds=True), guild_ready_timeout=0.05)
        async with run_client(client, emu, token=TOKEN), aiohttp.ClientSession() as session:
            sink = DiscordSink({"alerts": ChannelTarget(channel)}, client=client,
                               session=session, timeout=1)
            emu.inject(POST, Fault.slow(0.0), times=1)
            emu.inject(POST, Fault.server_error(500), times=50)  # part 2 is not created
            with pytest.raises(DeliveryError):
                await sink.digest(grown_digest(first, 1))
            emu.clear_faults()
            await sink.digest(grown_digest(retry, 2))
            counts = shown(emu, channel)
            assert [counts[f"{i:03d}"] for i in range(20)] == [1] * 20, counts


def long_digest(n: int, attempt: int) -> Digest:
    items = [DigestItem(article=Article(id=f"a{i}", source="dw",
                                        url=f"https://dw.example/{i}/" + "p" * 1800,
                                        title=f"Troops item {i:03d}", text="b",
                                        published=T0 + timedelta(minutes=i)),
                        rules=(RULE,), story=None) for i in range(n)]
    return Digest(id=7, route="alerts", nonce="d7", attempt=attempt, reason="digest",
                  items=tuple(items), since=T0, maybe_sent=attempt > 1)


@pytest.mark.parametrize("kind", ["webhook", "bot channel, nonces forgotten"])
async def test_a_long_digest_is_capped_and_its_retry_posts_no_part_twice(kind: str) -> None:
    parts = digest_messages(long_digest(130, 1))
    assert len(parts) == MAX_DIGEST_PARTS
    last = parts[-1]["embed"].description
    assert re.search(r"… and (\d+) more stories not shown here", last)
    listed = sum(len(re.findall(r"item \d{3}", p["embed"].description)) for p in parts)
    left = int(re.search(r"… and (\d+) more", last).group(1))  # type: ignore[union-attr]
    assert listed + left == 130
    async with DiscordEmulator(token=TOKEN) as emu, emu.patch_discord():
        hook = next(iter(emu.webhooks.values()))
        client = discord.Client(intents=discord.Intents(guilds=True), guild_ready_timeout=0.05)
        async with run_client(client, emu, token=TOKEN), aiohttp.ClientSession() as session:
            target: ChannelTarget | WebhookTarget
            if kind == "webhook":
                where, pattern = hook.channel_id, EXECUTE
                target = WebhookTarget(hook.id, hook.token)
            else:
                where, pattern = emu.channel("alerts").id, POST
                target = ChannelTarget(where)
            sink = DiscordSink({"alerts": target}, client=client, session=session, timeout=2)
            emu.inject(pattern, Fault.slow(0.0), times=15)
            emu.inject(pattern, "reset_after_receive", times=1)  # part 16's answer is lost
            with pytest.raises(UncertainDeliveryError):
                await sink.digest(long_digest(130, 1))
            if kind != "webhook":
                emu.nonce_window = 0.0  # retried after Discord forgot the nonces
            await sink.digest(long_digest(130, 2))
            footers = Counter(m.embeds[0]["footer"]["text"] for m in emu.messages(where))
            assert len(footers) == MAX_DIGEST_PARTS
            assert all(n == 1 for n in footers.values()), footers


async def test_a_story_whose_link_is_all_brackets_keeps_the_digest() -> None:
    items = [DigestItem(article=Article(id=f"a{i}", source="dw", url=f"https://dw.example/{i}",
                                        title=f"Troops {i}", text="b", published=T0),
                        rules=(RULE,), story=None) for i in range(5)]
    items.append(DigestItem(article=Article(id="h", source="x",
                                            url="https://x.example/" + "()" * 990,
                                            title="Troops (odd link)", text="b",
                                            published=T0 + timedelta(minutes=1)),
                            rules=(RULE,), story=None))
    digest = Digest(id=1, route="alerts", nonce="n1", attempt=1, reason="quiet hours",
                    items=tuple(items), since=T0)
    async with DiscordEmulator(token=TOKEN) as emu, emu.patch_discord():
        channel = emu.channel("alerts").id
        client = discord.Client(intents=discord.Intents(guilds=True), guild_ready_timeout=0.05)
        async with run_client(client, emu, token=TOKEN), aiohttp.ClientSession() as session:
            sink = DiscordSink({"alerts": ChannelTarget(channel)}, client=client,
                               session=session, timeout=5)
            await sink.digest(digest)
            text = " ".join(m.embeds[0]["description"] for m in emu.messages(channel))
            assert all(f"Troops {i}" in text for i in range(5))
            assert "**Troops \\(odd link\\)**" in text  # shown, without its link
