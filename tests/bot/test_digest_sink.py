"""Digests through the real discord.py DiscordSink against the emulator, webhook side: a digest
of several parts whose answer is lost part-way is retried without posting any part twice (the
sink finds the parts already posted by their footers), and it pings nobody."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import discord
import pytest

from bot.sinks import ChannelTarget, DiscordSink, WebhookTarget
from tests.bot.conftest import TOKEN
from tests.fakes.discord_emulator import DiscordEmulator, Fault, run_client
from watchers.config import RuleConfig
from watchers.delivery import Digest, DigestItem
from watchers.errors import UncertainDeliveryError
from watchers.models import Article

T0 = datetime(2022, 2, 24, 4, 0, tzinfo=UTC)
EXECUTE = "POST /webhooks/{webhook_id}/{webhook_token}"
POST_MESSAGE = "POST /channels/{channel_id}/messages"


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator(token=TOKEN) as e, e.patch_discord():
        yield e


def big_digest(n: int, *, maybe_sent: bool = False, attempt: int = 1) -> Digest:
    rule = RuleConfig(name="troops", query="troops")
    items = []
    for i in range(n):
        art = Article(id=f"a{i}", source="dw", url=f"https://dw.example/{i}/" + "x" * 100,
                      title=f"Troops item {i:03d} " + "report " * 28, text="body",
                      published=T0 + timedelta(minutes=i))
        items.append(DigestItem(article=art, rules=(rule,), story=None, newest=art.published))
    return Digest(id=9, route="alerts", nonce="digest-nonce-9", attempt=attempt,
                  reason="digest", items=tuple(items), since=T0, maybe_sent=maybe_sent)


async def test_a_webhook_digest_lost_part_way_is_not_posted_twice(emu: DiscordEmulator) -> None:
    hook = next(iter(emu.webhooks.values()))
    client = discord.Client(intents=discord.Intents(guilds=True), guild_ready_timeout=0.05)
    async with run_client(client, emu, token=TOKEN), aiohttp.ClientSession() as session:
        sink = DiscordSink({"alerts": WebhookTarget(hook.id, hook.token)}, client=client,
                           session=session, timeout=5)
        # the first part goes through; the second is created but its answer is lost
        emu.inject(EXECUTE, Fault.slow(0.0), times=1)
        emu.inject(EXECUTE, "reset_after_receive", times=1)
        with pytest.raises(UncertainDeliveryError):
            await sink.digest(big_digest(30))
        posted = emu.messages(hook.channel_id)
        assert len(posted) == 2  # a digest of 30 long lines needs more than two parts
        first = await sink.digest(big_digest(30, maybe_sent=True, attempt=2))
        after = emu.messages(hook.channel_id)
        assert first == str(posted[0].id)
        assert after[:2] == posted and len(after) > 2
        footers = [m.embeds[0]["footer"]["text"] for m in after]
        assert len(set(footers)) == len(footers)  # each part once
        assert all(f.startswith("newswatch digest 9 · part ") for f in footers)
        assert footers[-1].endswith(f"part {len(after)}/{len(after)} · route alerts")
        for m in after:
            assert not m.pings_everyone() and not m.pinged_role_ids() and m.webhook_id
        # one more retry (the answer of the last try lost too) posts nothing new
        assert await sink.digest(big_digest(30, maybe_sent=True, attempt=3)) == first
        assert emu.messages(hook.channel_id) == after
    assert emu.validate_all() == []


async def test_a_bot_digest_failing_part_way_is_uncertain_and_its_retry_posts_once(
        emu: DiscordEmulator) -> None:
    channel = emu.channel("alerts").id
    client = discord.Client(intents=discord.Intents(guilds=True), guild_ready_timeout=0.05)
    async with run_client(client, emu, token=TOKEN), aiohttp.ClientSession() as session:
        sink = DiscordSink({"alerts": ChannelTarget(channel)}, client=client, session=session,
                           timeout=5)
        emu.inject(POST_MESSAGE, Fault.slow(0.0), times=1)
        emu.inject(POST_MESSAGE, "reset_after_receive", times=1)
        # a dropped connection alone is only transient; after a posted part the digest may
        # have partly gone out, so it is recorded as maybe sent
        with pytest.raises(UncertainDeliveryError, match="part 2/"):
            await sink.digest(big_digest(30))
        assert len(emu.messages(channel)) == 2
        first = await sink.digest(big_digest(30, attempt=2))
        after = emu.messages(channel)
        assert first == str(after[0].id) and len(after) > 2
        footers = [m.embeds[0]["footer"]["text"] for m in after]
        assert len(set(footers)) == len(footers)
        posts = emu.requests_for(POST_MESSAGE)
        nonces = [r.body["nonce"] for r in posts]
        assert len(set(nonces)) == len(after)  # part i carries the same nonce on every try
        assert all(r.body.get("enforce_nonce") for r in posts)
        assert all(m.allowed_mentions == {"parse": []} for m in after)
    assert emu.validate_all() == []
