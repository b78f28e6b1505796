"""Stories on Discord under pressure: a burst of reports of one story, and what moderators and
Discord do to a story's message meanwhile. newswatch runs in-process (the real discord.py)
against the emulator, the feeds are served over HTTP on 127.0.0.1, and every request is
checked against Discord's OpenAPI spec."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.bot._stories import (
    REPORTS,
    edits,
    embeds_text,
    empty_feeds,
    settle,
    watching_feeds,
)
from tests.bot.conftest import Running
from tests.fakes.discord_emulator import DiscordEmulator, EmuMessage, Fault
from tests.fakes.feed_server import FeedServer, Route
from tests.service.test_identity import rss

NOW = datetime.now(UTC).replace(microsecond=0)
OUTLETS = [f"outlet{i}" for i in range(10)]
WORDINGS = list(REPORTS.values())


def feed_of(outlet: str, n: int) -> bytes:
    """``outlet``'s report of the one event, in one of three wordings (the outlet named, so no
    two are word for word the same)."""
    title, text = WORDINGS[n % len(WORDINGS)]
    return rss([(f"{outlet}-1", f"https://{outlet}.example/troops", f"{title} ({outlet})",
                 f"{text} Reported by {outlet}.", NOW + timedelta(minutes=n))])


@pytest.fixture
async def feeds() -> AsyncIterator[FeedServer]:
    async with empty_feeds(OUTLETS) as server:
        yield server


def newswatch(emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer,
              **overrides: Any) -> AbstractAsyncContextManager[Running]:
    return watching_feeds(emu, tmp_path, feeds, OUTLETS, backfill=5, **overrides)


async def first_alert(run: Running, feeds: FeedServer) -> EmuMessage:
    """outlet0 reports first; returns the one message that posts in the alerts channel."""
    feeds.set("/outlet0", Route(body=feed_of("outlet0", 0)))
    await run.engine.run_once()
    await settle(run, lambda: len(run.emu.messages(run.alerts_channel)) == 1)
    (first,) = run.emu.messages(run.alerts_channel)
    return first


async def burst(run: Running, feeds: FeedServer) -> None:
    """Every other outlet reports at once: one poll brings nine articles of the story."""
    for n, outlet in enumerate(OUTLETS[1:], 1):
        feeds.set(f"/{outlet}", Route(body=feed_of(outlet, n)))
    await run.engine.run_once()


def route_to(emu: DiscordEmulator, webhook: bool) -> dict[str, Any]:
    """The alerts channel as the route's target: its id, or a webhook of it."""
    channel = emu.channel("alerts").id
    return {"alerts": emu.add_webhook(channel).url if webhook else channel}


def edit_route(webhook: bool) -> str:
    return ("PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}" if webhook
            else "PATCH /channels/{channel_id}/messages/{message_id}")


@pytest.mark.parametrize("webhook", [False, True], ids=["bot", "webhook"])
async def test_reports_one_feed_brings_at_once_edit_the_storys_message_once(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer, webhook: bool) -> None:
    """A wire feed lists five reports of the story in one poll. Before, each was an edit of
    its own, the same but for the newest link: five edits of one message, each waiting on
    Discord's rate limit, with the route's next alerts behind them."""
    async with newswatch(emu, tmp_path, feeds, channels=route_to(emu, webhook)) as run:
        first = await first_alert(run, feeds)
        items = []
        for n in range(1, 6):
            title, text = WORDINGS[n % len(WORDINGS)]
            items.append((f"wire-{n}", f"https://outlet1.example/{n}", f"{title}, update {n}",
                          f"{text} Update number {n}.", NOW + timedelta(minutes=n)))
        feeds.set("/outlet1", Route(body=rss(items)))
        await run.engine.run_once()
        await settle(run, lambda: "6 articles" in embeds_text(emu.get_message(first.id)))
        assert edits(emu, first.id) == 1
        assert [m.id for m in emu.messages(run.alerts_channel)] == [first.id]
        updates = await run.engine.store.alerts(kind="update")
        assert len(updates) == 5 and {u.state for u in updates} == {"delivered"}
    assert emu.validate_all() == []


@pytest.mark.parametrize("webhook", [False, True], ids=["bot", "webhook"])
async def test_reports_queued_behind_a_paused_route_edit_the_storys_message_once(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer, webhook: bool) -> None:
    """Nine outlets report while the route is paused (its first edit was refused); resumed,
    the message is edited once, naming all ten, where it was edited nine times."""
    async with newswatch(emu, tmp_path, feeds, channels=route_to(emu, webhook)) as run:
        first = await first_alert(run, feeds)
        emu.inject(edit_route(webhook), Fault.forbidden(50013))
        await burst(run, feeds)
        status = await run.engine.delivery_status()
        assert set(status.paused) == {"alerts"} and edits(emu, first.id) == 1
        await run.engine.delivery.resume_route("alerts")
        # the refused edit, and one for all nine (the feeds are polled side by side, so which
        # report is the newest varies)
        await settle(run, lambda: "10 outlets" in embeds_text(emu.get_message(first.id)))
        assert edits(emu, first.id) == 2
        shown = embeds_text(emu.get_message(first.id))
        assert all(o in shown for o in OUTLETS)
        assert [m.id for m in emu.messages(run.alerts_channel)] == [first.id]
        updates = await run.engine.store.alerts(kind="update")
        assert len(updates) == 9 and {u.state for u in updates} == {"delivered"}
    assert emu.validate_all() == []


async def test_a_burst_of_reports_in_thread_mode_posts_a_line_for_each(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:
    channels = {"alerts": {"target": emu.channel("alerts").id, "stories": "thread"}}
    async with newswatch(emu, tmp_path, feeds, channels=channels) as run:
        channel = run.alerts_channel
        first = await first_alert(run, feeds)
        await burst(run, feeds)
        await settle(run, lambda: sum(len(emu.messages(t.id))
                                      for t in emu.threads(channel)) == 9)
        (thread,) = emu.threads(channel)
        lines = " ".join(m.content for m in emu.messages(thread.id))
        assert all(o in lines for o in OUTLETS[1:])
        assert edits(emu, first.id) == 0
    assert emu.validate_all() == []


async def test_a_story_posted_by_a_webhook_is_posted_afresh_once_its_route_is_the_bots(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:
    """A route moved from a webhook to the channel's id between runs (what the delivery docs
    advise where duplicates matter): the story's message is the webhook's, which the bot may
    not edit (403 50005)."""
    channel = emu.channel("alerts").id
    hook = emu.add_webhook(channel)
    async with newswatch(emu, tmp_path, feeds, channels={"alerts": hook.url}) as run:
        first = await first_alert(run, feeds)
        assert first.webhook_id == hook.id
    async with newswatch(emu, tmp_path, feeds) as run:
        feeds.set("/outlet1", Route(body=feed_of("outlet1", 1)))
        await run.engine.run_once()
        await settle(run, lambda: len(emu.messages(channel)) == 2)
        original, fresh = emu.messages(channel)
        assert original.id == first.id and fresh.webhook_id is None
        assert "outlet1" in embeds_text(fresh) and not fresh.pinged_role_ids()
        feeds.set("/outlet2", Route(body=feed_of("outlet2", 2)))
        await run.engine.run_once()
        await settle(run, lambda: edits(emu, fresh.id) == 1)
        assert "outlet2" in embeds_text(emu.get_message(fresh.id))
        assert len(emu.messages(channel)) == 2
        status = await run.engine.delivery_status()
        assert not status.paused and status.counts.get("rejected", 0) == 0
    assert emu.validate_all() == []


async def test_a_story_thread_deleted_before_a_retry_posts_the_story_afresh(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:
    """A moderator deleted the story's thread; the update that finds it gone is a retry (its
    first try failed on a 503), which looks for an earlier try's repost before posting one.
    The story's message, still there, carries the same marker: it was taken for the repost,
    and the report was shown nowhere, neither in the channel nor in a thread."""
    channels = {"alerts": {"target": emu.channel("alerts").id, "stories": "thread"}}
    async with newswatch(emu, tmp_path, feeds, channels=channels) as run:
        channel = run.alerts_channel
        first = await first_alert(run, feeds)
        feeds.set("/outlet1", Route(body=feed_of("outlet1", 1)))
        await run.engine.run_once()
        await settle(run, lambda: len(emu.threads(channel)) == 1)
        (thread,) = emu.threads(channel)
        await emu.delete_channel(thread.id)
        emu.inject(f"GET /channels/{channel}/messages/{first.id}", Fault.server_error(503))
        feeds.set("/outlet2", Route(body=feed_of("outlet2", 2)))
        await run.engine.run_once()
        await settle(run, lambda: len(emu.messages(channel)) == 2)
        original, fresh = emu.messages(channel)
        assert original.id == first.id
        assert "outlet2.example" in embeds_text(fresh) and not fresh.pinged_role_ids()
        update = (await run.engine.store.alerts(kind="update"))[-1]
        assert update.attempts == 2 and update.remote_id == str(fresh.id)
    assert emu.validate_all() == []
