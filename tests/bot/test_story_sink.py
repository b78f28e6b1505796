"""Story updates through the real discord.py DiscordSink against the emulator: an edit replaces
the embed and pings nobody, a thread is started once and then posted into, a deleted message or
thread makes the story post afresh, webhooks edit their own message, and failures map onto the
delivery errors. Every request must be one Discord's OpenAPI spec accepts."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import aiohttp
import discord
import pytest

from bot.sinks import ChannelTarget, DiscordSink, WebhookTarget
from tests.bot.conftest import TOKEN
from tests.fakes.discord_emulator import DiscordEmulator, EmuMessage, default_guild, run_client
from tests.fakes.discord_emulator import Permissions as P
from watchers.config import RuleConfig
from watchers.delivery import Alert, StoryUpdate, StoryView
from watchers.errors import PermanentDeliveryError, TransientDeliveryError
from watchers.models import Article
from watchers.rules import match_query

ROLE = 1100000000000000101  # "Readers" in the default guild
T0 = datetime(2022, 2, 24, 4, 0, tzinfo=UTC)
HEADLINE = "Russian troops cross the border into Ukraine near Kharkiv"

PATCH_MESSAGE = "PATCH /channels/{channel_id}/messages/{message_id}"
START_THREAD = "POST /channels/{channel_id}/messages/{message_id}/threads"


def article(n: int, source: str, title: str = HEADLINE) -> Article:
    return Article(id=f"a{n}", source=source, url=f"https://{source.lower()}.example/{n}",
                   title=title, text=f"{title}. Troops were seen moving at dawn.",
                   published=T0)


def first_alert() -> Alert:
    art = article(1, "Reuters")
    m = match_query("troops", art)
    assert m is not None
    rule = RuleConfig(name="troops", query="troops", severity="high", mention_role=ROLE)
    return Alert(id=1, route="alerts", nonce="alert-nonce-1", attempt=1, article=art,
                 matches=(m,), rules=(rule,))


def story(*outlets: str) -> StoryView:
    return StoryView(id="s1", headline=HEADLINE, first_seen=T0, last_seen=T0,
                     outlets=outlets, articles=len(outlets))


def story_update(n: int, source: str, message_id: str, *, mode: Literal["edit", "thread"],
                 outlets: tuple[str, ...], thread_id: str | None = None,
                 changed: bool = False, maybe_sent: bool = False) -> StoryUpdate:
    return StoryUpdate(id=n, route="alerts", nonce=f"update-nonce-{n}", attempt=1, mode=mode,
                       story=story(*outlets), alert=first_alert(),
                       article=article(n, source, f"{source} reports troops near Kharkiv"),
                       message_id=message_id, thread_id=thread_id, changed=changed,
                       maybe_sent=maybe_sent)


def bot_client() -> discord.Client:
    return discord.Client(intents=discord.Intents(guilds=True), guild_ready_timeout=0.05)


@dataclass
class Setup:
    emu: DiscordEmulator
    sink: DiscordSink
    channel: int


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator(token=TOKEN) as e, e.patch_discord():
        yield e


@pytest.fixture
async def bot_sink(emu: DiscordEmulator) -> AsyncIterator[Setup]:
    client = bot_client()
    async with run_client(client, emu, token=TOKEN), aiohttp.ClientSession() as session:
        channel = emu.channel("alerts").id
        yield Setup(emu, DiscordSink({"alerts": ChannelTarget(channel)}, client=client,
                                     session=session, timeout=5), channel)


@pytest.fixture
async def hook_sink(emu: DiscordEmulator) -> AsyncIterator[Setup]:
    hook = next(iter(emu.webhooks.values()))
    async with aiohttp.ClientSession() as session:
        yield Setup(emu, DiscordSink({"alerts": WebhookTarget(hook.id, hook.token)},
                                     session=session, timeout=5), hook.channel_id)


def story_field(msg: EmuMessage) -> str:
    (embed,) = msg.embeds
    (field,) = [f for f in embed.get("fields", []) if f["name"] == "Story"]
    return str(field["value"])


def pings_nobody(body: dict[str, object]) -> bool:
    mentions = body.get("allowed_mentions")
    return isinstance(mentions, dict) and not mentions.get("parse") and not mentions.get(
        "roles") and not mentions.get("users")


async def test_edit_replaces_the_embed_and_pings_nobody(bot_sink: Setup) -> None:
    emu, sink = bot_sink.emu, bot_sink.sink
    mid = await sink.deliver(first_alert())
    assert mid is not None
    (posted,) = emu.messages(bot_sink.channel)
    assert posted.pinged_role_ids() == {ROLE}
    before = posted.embeds[0]

    result = await sink.update(story_update(2, "DW", mid, mode="edit",
                                            outlets=("Reuters", "DW")))
    assert (result.message_id, result.thread_id, result.reposted) == (mid, None, False)
    result = await sink.update(story_update(3, "NPR", mid, mode="edit",
                                            outlets=("Reuters", "DW", "NPR")))
    assert result.message_id == mid and not result.reposted

    (msg,) = emu.messages(bot_sink.channel)  # still one message
    line = story_field(msg)
    assert line.startswith("Also reported by DW, NPR · 3 outlets · updated <t:")
    assert "[NPR reports troops near Kharkiv](https://npr.example/3)" in line
    assert "Reuters" not in line  # the alert's own outlet is not "also" reporting
    assert msg.embeds[0]["title"] == before["title"]
    assert msg.embeds[0]["footer"] == before["footer"]
    assert msg.content == posted.content  # the role mention stays as written …
    edits = emu.requests_for(PATCH_MESSAGE)
    assert len(edits) == 2 and all(pings_nobody(e.json) for e in edits)  # … and never pings
    assert all("content" not in e.json for e in edits)
    assert emu.validate_all() == []


async def test_an_article_changed_in_place_says_updated(bot_sink: Setup) -> None:
    emu, sink = bot_sink.emu, bot_sink.sink
    mid = await sink.deliver(first_alert())
    assert mid is not None
    await sink.update(story_update(4, "DW", mid, mode="edit", outlets=("Reuters", "DW"),
                                   changed=True))
    line = story_field(emu.messages(bot_sink.channel)[0])
    assert "Updated: [DW reports troops near Kharkiv](https://dw.example/4)" in line


async def test_thread_mode_starts_one_thread_then_posts_into_it(bot_sink: Setup) -> None:
    emu, sink = bot_sink.emu, bot_sink.sink
    mid = await sink.deliver(first_alert())
    assert mid is not None
    first = await sink.update(story_update(2, "DW", mid, mode="thread",
                                           outlets=("Reuters", "DW")))
    assert first.message_id == mid and not first.reposted and first.thread_id is not None
    second = await sink.update(story_update(3, "NPR", mid, mode="thread",
                                            outlets=("Reuters", "DW", "NPR"),
                                            thread_id=first.thread_id))
    assert second.thread_id == first.thread_id

    (thread,) = emu.threads(bot_sink.channel)
    assert str(thread.id) == first.thread_id and thread.name == HEADLINE
    lines = emu.messages(thread.id)
    assert [m.content for m in lines] == [
        "DW: [DW reports troops near Kharkiv](https://dw.example/2)",
        "NPR: [NPR reports troops near Kharkiv](https://npr.example/3)",
    ]
    assert all(not m.pinged_role_ids() and not m.pings_everyone() for m in lines)
    assert len(emu.messages(bot_sink.channel)) == 1  # no new message in the channel
    assert len(emu.requests_for(START_THREAD)) == 1
    assert emu.requests_for(PATCH_MESSAGE) == []
    assert emu.validate_all() == []


async def test_thread_retries_post_nothing_twice(bot_sink: Setup) -> None:
    emu, sink = bot_sink.emu, bot_sink.sink
    mid = await sink.deliver(first_alert())
    assert mid is not None
    # The thread is created but the answer is lost; the retry finds the same thread.
    emu.inject(START_THREAD, "reset_after_receive", times=10)
    with pytest.raises(TransientDeliveryError):
        await sink.update(story_update(2, "DW", mid, mode="thread", outlets=("Reuters", "DW")))
    emu.clear_faults()
    assert len(emu.threads(bot_sink.channel)) == 1
    again = await sink.update(story_update(2, "DW", mid, mode="thread",
                                           outlets=("Reuters", "DW"), maybe_sent=True))
    assert again.thread_id == mid  # a thread started from a message takes its id
    # The line is posted but its answer lost; the retry returns the line already there.
    emu.inject("POST /channels/{channel_id}/messages", "reset_after_receive", times=10)
    with pytest.raises(TransientDeliveryError):
        await sink.update(story_update(3, "NPR", mid, mode="thread",
                                       outlets=("Reuters", "DW", "NPR"), thread_id=mid))
    emu.clear_faults()
    await sink.update(story_update(3, "NPR", mid, mode="thread", outlets=("Reuters", "DW", "NPR"),
                                   thread_id=mid, maybe_sent=True))
    assert [m.content.split(":")[0] for m in emu.messages(int(mid))] == ["DW", "NPR"]
    assert len(emu.threads()) == 1


async def test_a_deleted_message_is_posted_afresh_without_pings(bot_sink: Setup) -> None:
    emu, sink = bot_sink.emu, bot_sink.sink
    mid = await sink.deliver(first_alert())
    assert mid is not None
    await emu.delete_message(bot_sink.channel, int(mid))
    result = await sink.update(story_update(2, "DW", mid, mode="edit",
                                            outlets=("Reuters", "DW")))
    assert result.reposted and result.thread_id is None and result.message_id != mid
    (fresh,) = emu.messages(bot_sink.channel)
    assert str(fresh.id) == result.message_id
    assert not fresh.pinged_role_ids() and not fresh.content
    assert story_field(fresh).startswith("Also reported by DW · 2 outlets")
    # the next update edits the fresh message
    later = await sink.update(story_update(3, "NPR", result.message_id, mode="edit",
                                           outlets=("Reuters", "DW", "NPR")))
    assert later.message_id == result.message_id and not later.reposted
    assert "NPR" in story_field(emu.messages(bot_sink.channel)[0])
    assert emu.validate_all() == []


async def test_a_deleted_thread_or_starter_message_reposts_the_story(bot_sink: Setup) -> None:
    emu, sink = bot_sink.emu, bot_sink.sink
    mid = await sink.deliver(first_alert())
    assert mid is not None
    started = await sink.update(story_update(2, "DW", mid, mode="thread",
                                             outlets=("Reuters", "DW")))
    assert started.thread_id is not None
    await emu.delete_channel(int(started.thread_id))
    result = await sink.update(story_update(3, "NPR", mid, mode="thread",
                                            outlets=("Reuters", "DW", "NPR"),
                                            thread_id=started.thread_id))
    assert result.reposted and result.thread_id is None and result.message_id != mid
    # a message deleted before any thread was started on it
    await emu.delete_message(bot_sink.channel, int(result.message_id))
    again = await sink.update(story_update(4, "AP", result.message_id, mode="thread",
                                           outlets=("Reuters", "DW", "NPR", "AP")))
    assert again.reposted and again.message_id not in (mid, result.message_id)
    # deleting the thread left its starter message; the story goes on in the fresh one
    original, fresh = emu.messages(bot_sink.channel)
    assert (str(original.id), str(fresh.id)) == (mid, again.message_id)
    assert "AP" in story_field(fresh) and not fresh.pinged_role_ids()
    assert emu.validate_all() == []


async def test_webhook_edits_its_own_message_and_falls_back_from_threads(hook_sink: Setup
                                                                         ) -> None:
    emu, sink = hook_sink.emu, hook_sink.sink
    mid = await sink.deliver(first_alert())
    assert mid is not None
    edit = await sink.update(story_update(2, "DW", mid, mode="edit", outlets=("Reuters", "DW")))
    thread = await sink.update(story_update(3, "NPR", mid, mode="thread",
                                            outlets=("Reuters", "DW", "NPR")))
    assert edit.message_id == thread.message_id == mid
    assert thread.thread_id is None and emu.threads() == []  # webhooks cannot start threads
    (msg,) = emu.messages(hook_sink.channel)
    assert story_field(msg).startswith("Also reported by DW, NPR · 3 outlets")
    edits = emu.requests_for(
        "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}")
    assert len(edits) == 2 and all(pings_nobody(e.json) for e in edits)
    # deleted by a moderator: posted afresh through the webhook, pinging nobody
    await emu.delete_message(hook_sink.channel, int(mid))
    fresh = await sink.update(story_update(4, "AP", mid, mode="edit",
                                           outlets=("Reuters", "DW", "NPR", "AP")))
    assert fresh.reposted and fresh.message_id != mid
    (msg,) = emu.messages(hook_sink.channel)
    assert msg.webhook_id is not None and not msg.pinged_role_ids()
    assert emu.validate_all() == []


async def test_failures_map_onto_delivery_errors(bot_sink: Setup) -> None:
    emu, sink = bot_sink.emu, bot_sink.sink
    mid = await sink.deliver(first_alert())
    assert mid is not None
    sink.timeout = 0.5  # discord.py retries a 500 after a second: the attempt times out first
    emu.inject(PATCH_MESSAGE, 500, times=10)
    with pytest.raises(TransientDeliveryError):
        await sink.update(story_update(2, "DW", mid, mode="edit", outlets=("Reuters", "DW")))
    emu.clear_faults()
    sink.timeout = 5
    emu.inject(PATCH_MESSAGE, "403_access")
    with pytest.raises(PermanentDeliveryError) as denied:
        await sink.update(story_update(2, "DW", mid, mode="edit", outlets=("Reuters", "DW")))
    assert denied.value.pause_destination
    # the channel itself gone is a destination problem, not a deleted message
    emu.inject(PATCH_MESSAGE, "404")
    with pytest.raises(PermanentDeliveryError) as unknown:
        await sink.update(story_update(2, "DW", mid, mode="edit", outlets=("Reuters", "DW")))
    assert unknown.value.pause_destination and "10003" in str(unknown.value)
    with pytest.raises(PermanentDeliveryError) as nowhere:
        await sink.update(StoryUpdate(
            id=9, route="elsewhere", nonce="n", attempt=1, mode="edit", story=story("A"),
            alert=first_alert(), article=article(9, "A"), message_id=mid))
    assert nowhere.value.pause_destination and "elsewhere" in str(nowhere.value)
    assert len(emu.messages(bot_sink.channel)) == 1  # nothing was reposted


async def test_no_permission_for_threads_edits_instead() -> None:
    guild = default_guild()
    guild.channel("alerts").permission_overwrites.append(
        {"id": str(guild.id), "type": 0, "allow": "0", "deny": str(P.CREATE_PUBLIC_THREADS)})
    async with DiscordEmulator(token=TOKEN, guilds=[guild]) as emu, emu.patch_discord():
        client = bot_client()
        async with run_client(client, emu, token=TOKEN):
            channel = emu.channel("alerts").id
            sink = DiscordSink({"alerts": ChannelTarget(channel)}, client=client, timeout=5)
            mid = await sink.deliver(first_alert())
            assert mid is not None
            result = await sink.update(story_update(2, "DW", mid, mode="thread",
                                                    outlets=("Reuters", "DW")))
            assert result.message_id == mid and result.thread_id is None
            assert emu.threads() == []
            (msg,) = emu.messages(channel)
            assert story_field(msg).startswith("Also reported by DW")
            assert [r.status for r in emu.requests_for(START_THREAD)] == [403]


def test_thread_names_fit_discord() -> None:
    from bot.embeds import thread_name

    assert thread_name(HEADLINE) == HEADLINE
    long = thread_name("word " * 60)
    assert len(long) <= 100 and long.endswith("…")
    assert thread_name(" \n\t ") == "Story"
    assert not re.search(r"\s{2,}", thread_name("a \n\n b"))


def test_a_direction_control_in_a_headline_shows_as_its_escape_in_names_and_labels() -> None:
    """A forum post's or story thread's name and /search's "expand a story" choices carried a
    right-to-left override as it came, applied (the embed's title shows its escape): the
    headline read reversed from there on."""
    from datetime import UTC, datetime

    from bot.embeds import ResultLine, thread_name
    from bot.exts.lookup._views import PagedResults
    from watchers.models import Article
    from watchers.store.base import StoryRecord

    evil = "Troops \u202eesrever ni daer\u202c near Kharkiv"
    assert thread_name(evil) == "Troops \\u202eesrever ni daer\\u202c near Kharkiv"
    now = datetime.now(UTC)
    story = StoryRecord(id="s" + "1" * 20, headline=evil, first_seen=now, last_seen=now,
                        articles=2, outlets=("dw", "npr"))
    article = Article(id="a1", source="dw", url="https://x.example/1", title=evil,
                      text="troops", published=now)

    async def expand(_: object) -> None:
        return None

    async def labels() -> list[str]:  # a view is made inside a running loop
        view = PagedResults("Search: troops", [ResultLine(article, None, story, 1)],
                            expand=expand)
        return [o.label for o in view.expand.options]

    (label,) = asyncio.run(labels())
    assert "\u202e" not in label and "\\u202e" in label
