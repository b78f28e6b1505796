"""Forum channels and thread channels as alert destinations, with the real discord.py against the
emulator: an alert is a forum post named after its headline and tagged after its rules, a
story's later articles are replies in the post, a deleted post is posted afresh, a post whose
answer was lost is found instead of made twice, a forum the cache does not know is learnt from
Discord's refusal, a webhook in a forum names its post, and a thread channel takes alerts like
a text channel. newswatch itself runs once end to end with a forum route fed by real feeds.
Every request must be one Discord's OpenAPI spec accepts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import aiohttp
import discord
import pytest

from bot.sinks import ChannelTarget, DiscordSink, WebhookTarget
from tests.bot._stories import REPORTS, watching_feeds
from tests.bot.conftest import TOKEN
from tests.fakes.discord_emulator import (
    ChannelSpec,
    DiscordEmulator,
    Fault,
    GuildSpec,
    default_guild,
    forum_tag,
    run_client,
)
from tests.fakes.feed_server import FeedServer, Route
from tests.service.test_identity import rss
from watchers.config import RuleConfig
from watchers.delivery import Alert, StoryUpdate, StoryView
from watchers.errors import (
    PermanentDeliveryError,
    TransientDeliveryError,
    UncertainDeliveryError,
)
from watchers.models import Article
from watchers.rules import match_query

GUILD = 1100000000000000001
ROLE = GUILD + 101  # "Readers" in the default guild
FORUM = GUILD + 20
TROOPS_TAG, KYIV_TAG, OTHER_TAG = FORUM + 1, FORUM + 2, FORUM + 3
T0 = datetime(2022, 2, 24, 4, 0, tzinfo=UTC)
HEADLINE = "Russian troops cross the border into Ukraine near Kharkiv"
CREATE_POST = "POST /channels/{channel_id}/threads"


def forum_guild(*, require_tag: bool = False) -> GuildSpec:
    guild = default_guild()
    guild.channels.append(ChannelSpec(
        FORUM, "news-forum", type=15, position=3, guild_id=guild.id, flags=16 if require_tag
        else 0, available_tags=[forum_tag(OTHER_TAG, "sports"), forum_tag(TROOPS_TAG, "TROOPS"),
                                forum_tag(KYIV_TAG, "Kyiv")]))
    return guild


def article(n: int, source: str, title: str = HEADLINE) -> Article:
    return Article(id=f"a{n}", source=source, url=f"https://{source.lower()}.example/{n}",
                   title=title, text=f"{title}. Troops were seen moving at dawn near Kyiv.",
                   published=T0)


def alert(*rule_names: str, n: int = 1) -> Alert:
    art = article(n, "Reuters")
    m = match_query("troops", art)
    assert m is not None
    rules = tuple(RuleConfig(name=name, query="troops", severity="high", mention_role=ROLE)
                  for name in rule_names)
    return Alert(id=n, route="alerts", nonce=f"alert-nonce-{n}", attempt=1, article=art,
                 matches=(m,), rules=rules)


def update(n: int, source: str, message_id: str, *, mode: Literal["edit", "thread"] = "edit",
           maybe_sent: bool = False) -> StoryUpdate:
    story = StoryView(id="s1", headline=HEADLINE, first_seen=T0, last_seen=T0,
                      outlets=("Reuters", source), articles=2)
    return StoryUpdate(id=n, route="alerts", nonce=f"update-nonce-{n}", attempt=1, mode=mode,
                       story=story, alert=alert("troops"),
                       article=article(n, source, f"{source} reports troops near Kharkiv"),
                       message_id=message_id, maybe_sent=maybe_sent)


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator(token=TOKEN, guilds=[forum_guild()]) as e, e.patch_discord():
        yield e


@pytest.fixture
async def sink(emu: DiscordEmulator) -> AsyncIterator[DiscordSink]:
    client = discord.Client(intents=discord.Intents(guilds=True), guild_ready_timeout=0.05)
    async with run_client(client, emu, token=TOKEN), aiohttp.ClientSession() as session:
        assert isinstance(client.get_channel(FORUM), discord.ForumChannel)
        yield DiscordSink({"alerts": ChannelTarget(FORUM)}, client=client, session=session,
                          timeout=5)


async def test_an_alert_is_a_forum_post_named_after_the_headline_with_its_rules_tags(
        emu: DiscordEmulator, sink: DiscordSink) -> None:
    mid = await sink.deliver(alert("troops", "kyiv", "no-such-tag"))
    assert mid is not None
    (post,) = emu.threads(FORUM)
    assert str(post.id) == mid and post.name == HEADLINE
    assert post.applied_tags == [TROOPS_TAG, KYIV_TAG]  # case-insensitive, in the rules' order
    (starter,) = emu.messages(post.id)  # the alert is the post's starter message
    assert starter.id == post.id and starter.pinged_role_ids() == {ROLE}
    assert starter.embeds[0]["footer"]["text"] == "newswatch · high · article a1"
    assert sink.alert_link("alerts", mid) is None  # no buttons: acknowledgement is off
    assert emu.requests_for("POST /channels/{channel_id}/messages") == []
    assert emu.validate_all() == []


@pytest.mark.parametrize("mode", ["edit", "thread"])
async def test_a_storys_later_articles_are_replies_in_its_post(
        emu: DiscordEmulator, sink: DiscordSink, mode: Literal["edit", "thread"]) -> None:
    mid = await sink.deliver(alert("troops"))
    assert mid is not None
    first = await sink.update(update(2, "DW", mid, mode=mode))
    again = await sink.update(update(2, "DW", mid, mode=mode))  # a retry: its nonce holds
    second = await sink.update(update(3, "NPR", mid, mode=mode))
    for result in (first, again, second):
        assert (result.message_id, result.thread_id, result.reposted) == (mid, mid, False)
    (post,) = emu.threads(FORUM)
    starter, *replies = emu.messages(post.id)
    assert [r.content for r in replies] == [
        "DW: [DW reports troops near Kharkiv](https://dw.example/2)",
        "NPR: [NPR reports troops near Kharkiv](https://npr.example/3)"]
    assert all(not r.pinged_role_ids() and not r.pinged_user_ids() for r in replies)
    assert starter.edits == []  # the alert stays as posted
    assert emu.validate_all() == []


async def test_a_deleted_post_is_posted_afresh(emu: DiscordEmulator, sink: DiscordSink) -> None:
    mid = await sink.deliver(alert("troops"))
    assert mid is not None
    await emu.delete_channel(int(mid))
    result = await sink.update(update(2, "DW", mid))
    assert result.reposted and result.thread_id is None and result.message_id != mid
    (post,) = emu.threads(FORUM)
    assert str(post.id) == result.message_id and post.applied_tags == [TROOPS_TAG]
    (starter,) = emu.messages(post.id)
    assert "DW" in str(starter.embeds) and not starter.pinged_role_ids()  # no second ping
    # the next update replies in the new post
    await sink.update(update(3, "NPR", result.message_id))
    assert len(emu.messages(post.id)) == 2
    assert emu.validate_all() == []


@pytest.mark.parametrize("fault", [
    Fault("status", 400, 50083, "Thread is locked", name="locked"), Fault.forbidden(50013)],
    ids=["locked", "no-permission-in-post"])
async def test_a_locked_post_refuses_its_update_alone(emu: DiscordEmulator, sink: DiscordSink,
                                                      fault: Fault) -> None:
    """Before, one post a moderator locked paused the whole forum route: every later alert
    was held, and resuming retried the refused reply and paused again."""
    mid = await sink.deliver(alert("troops"))
    assert mid is not None
    emu.inject(f"POST /channels/{mid}/messages", fault, times=10)
    with pytest.raises(PermanentDeliveryError, match="refuses replies") as err:
        await sink.update(update(2, "DW", mid))
    assert not err.value.pause_destination
    # the forum still takes new stories
    other = await sink.deliver(alert("troops", n=7))
    assert other is not None and other != mid and len(emu.threads(FORUM)) == 2
    assert emu.validate_all() == []


async def test_a_post_whose_answer_was_lost_is_found_not_made_twice(
        emu: DiscordEmulator, sink: DiscordSink) -> None:
    other = await sink.deliver(alert("troops", n=7))  # same headline, another article
    emu.inject(CREATE_POST, "reset_after_receive")
    with pytest.raises(UncertainDeliveryError):
        await sink.deliver(alert("troops"))
    assert len(emu.threads(FORUM)) == 2  # the post was made; its answer was lost
    made = next(t for t in emu.threads(FORUM) if str(t.id) != other)
    again = await sink.deliver(replace(alert("troops"), maybe_sent=True, attempt=2))
    assert again == str(made.id)
    assert len(emu.threads(FORUM)) == 2
    assert [r.status for r in emu.requests_for(CREATE_POST)] == [201, None]
    # with nothing found (the post was never made), the retry posts
    emu.inject(CREATE_POST, 500, times=10)  # past discord.py's own retries
    with pytest.raises(UncertainDeliveryError):
        await sink.deliver(alert("troops", n=8))
    emu.clear_faults()
    third = await sink.deliver(replace(alert("troops", n=8), maybe_sent=True, attempt=2))
    assert third is not None and len(emu.threads(FORUM)) == 3
    assert emu.validate_all() == []


async def test_a_lost_posts_retry_where_the_bot_may_not_read_the_forum_posts_again(
        emu: DiscordEmulator, sink: DiscordSink) -> None:
    """Without Read Message History (which a forum route does not need) the lookup of the
    lost post's starter message was refused (403 50001) and the refusal paused the route:
    every resume retried the lookup and paused it again, the alerts after it held. As for a
    channel, what the bot may not read is posted again (it may show twice); a lookup that
    fails for now (a 5xx) is tried again later, neither posted again nor paused."""
    emu.inject(CREATE_POST, "reset_after_receive")
    with pytest.raises(UncertainDeliveryError):
        await sink.deliver(alert("troops"))
    (post,) = emu.threads(FORUM)
    starter = f"GET /channels/{post.id}/messages/{post.id}"
    emu.inject(starter, 500, times=10)  # past discord.py's own retries
    with pytest.raises(TransientDeliveryError):  # still maybe sent: tried again later
        await sink.deliver(replace(alert("troops"), maybe_sent=True, attempt=2))
    assert len(emu.threads(FORUM)) == 1
    emu.clear_faults()
    emu.inject(starter, Fault.forbidden(50001), times=10)
    again = await sink.deliver(replace(alert("troops"), maybe_sent=True, attempt=3))
    assert again is not None and again != str(post.id) and len(emu.threads(FORUM)) == 2
    assert emu.validate_all() == []


async def test_a_reply_whose_answer_was_lost_is_found_not_made_twice(
        emu: DiscordEmulator, sink: DiscordSink) -> None:
    """Retried after Discord forgot its nonce (a backoff, an outage, a restart), a story's
    reply in its post was posted again: a story thread's line looked first, a post's not."""
    mid = await sink.deliver(alert("troops"))
    assert mid is not None
    emu.inject("POST /channels/{channel_id}/messages", "reset_after_receive")
    with pytest.raises(UncertainDeliveryError):
        await sink.update(update(2, "DW", mid))
    emu.nonce_window = 0.0
    await sink.update(replace(update(2, "DW", mid, maybe_sent=True), attempt=2))
    (post,) = emu.threads(FORUM)
    assert [m.content.split(":")[0] for m in emu.messages(post.id)[1:]] == ["DW"]
    assert emu.validate_all() == []


async def test_a_digest_part_whose_answer_was_lost_is_found_not_made_twice(
        emu: DiscordEmulator, sink: DiscordSink) -> None:
    """A digest's later parts are replies in its post: retried after Discord forgot their
    nonces, the part whose answer was lost was posted again (a channel's parts looked
    first)."""
    from collections import Counter

    from bot.embeds import digest_messages
    from watchers.delivery import Digest, DigestItem

    when = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    rule = RuleConfig(name="troops", query="troops")
    digest = Digest(id=42, route="alerts", nonce="digest-nonce-42", attempt=1,
                    reason="digest", since=when, items=tuple(
                        DigestItem(article=Article(
                            id=f"a{i}", source="wire", url=f"https://news.example/{i}",
                            published=when,
                            title=f"Troops report {i:03d}: a convoy was seen on the river road "
                                  f"before dawn, and residents of district {i} describe it"),
                                   rules=(rule,), story=None, newest=when)
                        for i in range(40)))
    parts = len(digest_messages(digest))
    assert parts >= 2  # the first makes the post, the second is a reply in it
    emu.inject("POST /channels/{channel_id}/messages", "reset_after_receive")  # part 2
    with pytest.raises(UncertainDeliveryError):
        await sink.digest(digest)
    emu.nonce_window = 0.0
    await sink.digest(replace(digest, attempt=2, maybe_sent=True))
    (post,) = emu.threads(FORUM)
    footers = Counter(m.embeds[0]["footer"]["text"] for m in emu.messages(post.id) if m.embeds)
    assert len(footers) == parts and set(footers.values()) == {1}
    assert emu.validate_all() == []


async def test_a_forum_the_cache_does_not_know_is_learnt_from_discords_refusal() -> None:
    async with DiscordEmulator(token=TOKEN) as emu, emu.patch_discord():
        client = discord.Client(intents=discord.Intents(guilds=True), guild_ready_timeout=0.05)
        async with run_client(client, emu, token=TOKEN), aiohttp.ClientSession() as session:
            # the forum appears while the bot is connected, and the bot misses its creation
            (forum,) = (c for c in forum_guild().channels if c.id == FORUM)
            emu.guild.channels.append(forum)
            assert client.get_channel(FORUM) is None
            sink = DiscordSink({"alerts": ChannelTarget(FORUM)}, client=client,
                               session=session, timeout=5)
            first = await sink.deliver(alert("troops"))
            second = await sink.deliver(alert("troops", n=2))
            # a channel that is no forum either pauses the route, saying what it is
            emu.guild.channels.append(ChannelSpec(GUILD + 30, "Lobby", type=4,
                                                  guild_id=GUILD))
            lobby = DiscordSink({"alerts": ChannelTarget(GUILD + 30)}, client=client,
                                session=session, timeout=5)
            with pytest.raises(PermanentDeliveryError, match="takes no messages") as info:
                await lobby.deliver(alert("troops", n=3))
            assert info.value.pause_destination
        assert {str(t.id) for t in emu.threads(FORUM)} == {first, second}
        refused = emu.requests_for("POST /channels/{channel_id}/messages")
        assert [(r.status, r.response["code"]) for r in refused] == [(400, 50008)] * 2
        assert len(emu.requests_for("GET /channels/{channel_id}")) == 2  # once per sink
        assert emu.validate_all() == []


async def test_a_forum_that_requires_a_tag_refuses_an_alert_without_one_clearly() -> None:
    async with DiscordEmulator(token=TOKEN, guilds=[forum_guild(require_tag=True)]) as emu, \
            emu.patch_discord():
        client = discord.Client(intents=discord.Intents(guilds=True), guild_ready_timeout=0.05)
        async with run_client(client, emu, token=TOKEN), aiohttp.ClientSession() as session:
            sink = DiscordSink({"alerts": ChannelTarget(FORUM)}, client=client,
                               session=session, timeout=5)
            with pytest.raises(PermanentDeliveryError, match=r"requires a tag.*floods"):
                await sink.deliver(alert("floods"))
            assert await sink.deliver(alert("troops")) is not None
        assert len(emu.threads(FORUM)) == 1
        assert emu.validate_all() == []


async def test_a_forum_that_requires_a_tag_takes_digests_and_notices_too() -> None:
    """A digest's post carried no tag, so such a forum refused every digest (and the alerts it
    held were never shown), and every operator notice: a digest is tagged after its items'
    rules, a notice (of no rule) with the first tag the bot may apply."""
    from watchers.delivery import Digest, DigestItem

    when = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)

    def digest(*rules: str) -> Digest:
        return Digest(id=7, route="alerts", nonce=f"digest-{'-'.join(rules)}", attempt=1,
                      reason="digest", since=when, items=tuple(
                          DigestItem(article=article(i, "Reuters"), story=None, newest=when,
                                     rules=(RuleConfig(name=name, query="troops"),))
                          for i, name in enumerate(rules)))

    async with DiscordEmulator(token=TOKEN, guilds=[forum_guild(require_tag=True)]) as emu, \
            emu.patch_discord():
        client = discord.Client(intents=discord.Intents(guilds=True), guild_ready_timeout=0.05)
        async with run_client(client, emu, token=TOKEN), aiohttp.ClientSession() as session:
            sink = DiscordSink({"alerts": ChannelTarget(FORUM)}, client=client,
                               session=session, timeout=5)
            made = await sink.digest(digest("floods", "kyiv", "troops", "kyiv"))
            note = await sink.notice("alerts", "route x paused: missing permissions")
            # a digest of rules the forum has no tag for is refused as their alerts are
            with pytest.raises(PermanentDeliveryError, match=r"requires a tag.*floods"):
                await sink.digest(digest("floods"))
        posts = {str(t.id): t for t in emu.threads(FORUM)}
        assert set(posts) == {made, note}
        assert posts[str(made)].applied_tags == [KYIV_TAG, TROOPS_TAG]
        assert posts[str(note)].applied_tags == [OTHER_TAG]
        assert emu.validate_all() == []


async def test_a_thread_channel_takes_alerts_like_a_text_channel() -> None:
    async with DiscordEmulator(token=TOKEN) as emu, emu.patch_discord():
        desk = emu.add_thread(emu.channel("alerts").id, "desk")
        client = discord.Client(intents=discord.Intents(guilds=True), guild_ready_timeout=0.05)
        async with run_client(client, emu, token=TOKEN), aiohttp.ClientSession() as session:
            assert isinstance(client.get_channel(desk.id), discord.Thread)
            sink = DiscordSink({"alerts": ChannelTarget(desk.id)}, client=client,
                               session=session, timeout=5)
            mid = await sink.deliver(alert("troops"))
            (msg,) = emu.messages(desk.id)
            assert str(msg.id) == mid and msg.pinged_role_ids() == {ROLE}
            # a thread cannot hold a thread: thread mode edits the alert instead
            result = await sink.update(update(2, "DW", str(mid), mode="thread"))
            assert (result.message_id, result.thread_id) == (mid, None)
        assert emu.messages(desk.id) == [msg] and "DW" in str(msg.embeds)
        assert emu.messages(emu.channel("alerts").id) == []
        assert emu.validate_all() == []


async def test_a_webhook_in_a_forum_names_its_post_and_edits_it() -> None:
    async with DiscordEmulator(token=TOKEN, guilds=[forum_guild()]) as emu, \
            emu.patch_discord():
        hook = emu.add_webhook(FORUM, "Forum Hook")
        target = {"alerts": WebhookTarget(hook.id, hook.token)}
        async with aiohttp.ClientSession() as session:
            sink = DiscordSink(target, session=session, timeout=5)
            mid = await sink.deliver(alert("troops"))
            assert mid is not None
            (post,) = emu.threads(FORUM)
            assert str(post.id) == mid and post.name == HEADLINE
            # a sink that has not learnt it yet (a restart) still edits the post
            fresh = DiscordSink(target, session=session, timeout=5)
            result = await fresh.update(update(2, "DW", mid))
            assert (result.message_id, result.reposted) == (mid, False)
            await sink.deliver(alert("troops", n=2))
        assert len(emu.threads(FORUM)) == 2
        assert "DW" in str(emu.get_message(int(mid)).embeds)
        executes = emu.requests_for("POST /webhooks/{webhook_id}/{webhook_token}")
        # refused once without a name, then every send names its post
        assert [r.status for r in executes] == [400, 200, 200]
        assert emu.validate_all() == []


# --- newswatch end to end, a forum route fed by real feeds

FORUM_OUTLETS = ("dw", "npr")


async def test_newswatch_posts_a_story_in_a_forum_and_replies_in_it(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    async with DiscordEmulator(token=TOKEN, guilds=[forum_guild()]) as emu, \
            emu.patch_discord(), FeedServer() as server:
        for outlet in FORUM_OUTLETS:
            server.set(f"/{outlet}", Route(body=rss([])))
        async with watching_feeds(emu, tmp_path, server, FORUM_OUTLETS, backfill=5,
                                  channels={"alerts": {"target": FORUM, "stories": "thread"}}
                                  ) as run:
            def posted(n: int) -> Callable[[], bool]:
                return lambda: sum(len(emu.messages(t.id)) for t in emu.threads(FORUM)) == n

            for i, outlet in enumerate(FORUM_OUTLETS):
                title, text = REPORTS[outlet]
                server.set(f"/{outlet}", Route(body=rss([(
                    f"{outlet}-1", f"https://{outlet}.example/troops", title, text,
                    now + timedelta(minutes=20 * i))])))
                await run.engine.run_once()
                await run.wait_for(posted(i + 1))
            await asyncio.sleep(0.2)  # a duplicate would arrive now
        (post,) = emu.threads(FORUM)
        assert post.name == REPORTS["dw"][0] and post.applied_tags == [TROOPS_TAG]
        starter, reply = emu.messages(post.id)
        assert starter.id == post.id and "dw.example" in str(starter.embeds)
        assert reply.content.startswith("npr: ") and "npr.example" in reply.content
        assert emu.validate_all() == []


async def test_a_forum_post_carries_the_acknowledgement_buttons_and_links_to_the_post(
        emu: DiscordEmulator, sink: DiscordSink) -> None:
    acking = DiscordSink(sink.targets, client=sink.client, session=sink.session, timeout=5,
                         ack_from="high")
    mid = await acking.deliver(alert("troops"))
    assert mid is not None
    (starter,) = emu.messages(int(mid))
    assert starter.custom_ids == ["nw:ack:1", "nw:nr:1"]
    assert acking.alert_link("alerts", mid) == f"https://discord.com/channels/{GUILD}/{mid}"
    assert emu.validate_all() == []
