"""Stories on Discord, for real: three feeds report one event and the channel gets one message
that is then edited (or threaded); a deleted original is posted afresh; an alert that needs two
outlets waits for the second; a rule of higher severity escalates; a story spans a restart; an
edit whose answer is lost is not doubled. newswatch runs in-process (the real discord.py) against
the emulator, the feeds are served over HTTP on 127.0.0.1, and every request is checked against
Discord's OpenAPI spec."""

from __future__ import annotations

import asyncio
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
OUTLETS = list(REPORTS)


def feed_of(outlet: str, minutes: int) -> bytes:
    title, text = REPORTS[outlet]
    return rss([(f"{outlet}-1", f"https://{outlet}.example/troops", title, text,
                 NOW + timedelta(minutes=minutes))])


@pytest.fixture
async def feeds() -> AsyncIterator[FeedServer]:
    async with empty_feeds(OUTLETS) as server:
        yield server


def newswatch(emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer,
              **overrides: Any) -> AbstractAsyncContextManager[Running]:
    return watching_feeds(emu, tmp_path, feeds, OUTLETS, backfill=5, **overrides)


async def report(run: Running, feeds: FeedServer, outlet: str, minutes: int) -> None:
    """``outlet`` publishes its report; newswatch polls it and delivers what it wrote."""
    feeds.set(f"/{outlet}", Route(body=feed_of(outlet, minutes)))
    await run.engine.run_once()


async def first_alert(run: Running, feeds: FeedServer) -> EmuMessage:
    """dw reports first; returns the one message that posts in the alerts channel."""
    await report(run, feeds, "dw", 0)
    await settle(run, lambda: len(run.emu.messages(run.alerts_channel)) == 1)
    (first,) = run.emu.messages(run.alerts_channel)
    return first


async def test_one_story_from_three_feeds_is_one_message_edited_twice(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:
    async with newswatch(emu, tmp_path, feeds) as run:
        channel = run.alerts_channel
        first = await first_alert(run, feeds)
        await report(run, feeds, "npr", 20)
        await settle(run, lambda: edits(emu, first.id) == 1)
        await report(run, feeds, "bbc", 40)
        await settle(run, lambda: edits(emu, first.id) == 2)
        (only,) = emu.messages(channel)  # no second message, so nobody was pinged again
        shown = embeds_text(emu.get_message(only.id))
        assert "npr" in shown and "bbc" in shown and "3 outlets" in shown
        assert "bbc.example" in shown  # the newest report's link
        stories = await run.engine.store.stories_of(
            [a.id for a, _ in await run.engine.store.recent(limit=10)])
        assert len({s.id for s in stories.values()}) == 1
        assert next(iter(stories.values())).outlets == ("dw", "npr", "bbc")
    assert emu.validate_all() == []


async def test_thread_mode_posts_the_later_reports_in_a_thread(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:
    channels = {"alerts": {"target": emu.channel("alerts").id, "stories": "thread"}}
    async with newswatch(emu, tmp_path, feeds, channels=channels) as run:
        channel = run.alerts_channel
        await report(run, feeds, "dw", 0)
        await settle(run, lambda: len(emu.messages(channel)) == 1)
        await report(run, feeds, "npr", 20)
        await report(run, feeds, "bbc", 40)
        await settle(run, lambda: sum(len(emu.messages(t.id))
                                      for t in emu.threads(channel)) == 2)
        assert len(emu.messages(channel)) == 1
        (thread,) = emu.threads(channel)
        lines = [m.content for m in emu.messages(thread.id)]
        assert "npr" in lines[0] and "bbc" in lines[1]
    assert emu.validate_all() == []


@pytest.mark.parametrize("fault", [
    Fault("status", 400, 50083, "Thread is locked", name="locked"), Fault.forbidden(50013)],
    ids=["locked", "no-permission-in-thread"])
async def test_a_locked_story_thread_edits_the_message_instead_and_pauses_nothing(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer, fault: Fault) -> None:
    """Before, a thread a moderator locked (or Send Messages in Threads taken away) paused the
    whole channel: its other alerts were held, and /alerts resume retried the refused line
    and paused it again."""
    channels = {"alerts": {"target": emu.channel("alerts").id, "stories": "thread"}}
    async with newswatch(emu, tmp_path, feeds, channels=channels) as run:
        channel = run.alerts_channel
        first = await first_alert(run, feeds)
        await report(run, feeds, "npr", 20)
        await settle(run, lambda: sum(len(emu.messages(t.id))
                                      for t in emu.threads(channel)) == 1)
        (thread,) = emu.threads(channel)
        emu.inject(f"POST /channels/{thread.id}/messages", fault, times=100)
        await report(run, feeds, "bbc", 40)
        await settle(run, lambda: edits(emu, first.id) == 1)
        assert "bbc" in embeds_text(emu.get_message(first.id))
        status = await run.engine.delivery_status()
        assert not status.paused
        assert len(emu.messages(thread.id)) == 1  # the line before the lock
    assert emu.validate_all() == []


async def test_a_deleted_original_is_posted_afresh_and_then_edited(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:
    async with newswatch(emu, tmp_path, feeds) as run:
        channel = run.alerts_channel
        first = await first_alert(run, feeds)
        await emu.delete_message(channel, first.id)  # a moderator removed it
        await report(run, feeds, "npr", 20)
        await settle(run, lambda: len(emu.messages(channel)) == 1
                     and emu.messages(channel)[0].id != first.id)
        (fresh,) = emu.messages(channel)
        assert "npr" in embeds_text(fresh)
        await report(run, feeds, "bbc", 40)
        await settle(run, lambda: edits(emu, fresh.id) == 1)
        assert len(emu.messages(channel)) == 1
        status = await run.engine.delivery_status()
        assert status.counts.get("rejected", 0) == 0
    assert emu.validate_all() == []


def thread_route(emu: DiscordEmulator) -> dict[str, Any]:
    return {"alerts": {"target": emu.channel("alerts").id, "stories": "thread"}}


async def thread_with_a_line(run: Running, feeds: FeedServer) -> EmuMessage:
    """dw's alert, then npr's report as the first line of a thread on it; the alert."""
    first = await first_alert(run, feeds)
    await report(run, feeds, "npr", 20)
    await settle(run, lambda: sum(len(run.emu.messages(t.id))
                                  for t in run.emu.threads(run.alerts_channel)) == 1)
    return first


async def test_a_deleted_original_of_a_thread_story_is_posted_afresh(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:
    """The thread outlives its starter message: lines went on into it and the story was never
    in the channel again."""
    async with newswatch(emu, tmp_path, feeds, channels=thread_route(emu)) as run:
        channel = run.alerts_channel
        first = await thread_with_a_line(run, feeds)
        (thread,) = emu.threads(channel)
        await emu.delete_message(channel, first.id)  # a moderator removed it; the thread stays
        await report(run, feeds, "bbc", 40)
        await settle(run, lambda: len(emu.messages(channel)) == 1
                     and emu.messages(channel)[0].id != first.id)
        (fresh,) = emu.messages(channel)
        assert "bbc" in embeds_text(fresh).lower()
        assert len(emu.messages(thread.id)) == 1  # no line for bbc in the orphaned thread
        status = await run.engine.delivery_status()
        assert status.counts.get("rejected", 0) == 0 and not status.paused
    assert emu.validate_all() == []


async def test_a_thread_story_where_the_bot_may_not_read_messages_still_gets_its_lines(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:
    async with newswatch(emu, tmp_path, feeds, channels=thread_route(emu)) as run:
        channel = run.alerts_channel
        first = await thread_with_a_line(run, feeds)
        # looking for the story's message is refused (no Read Message History): the line posts
        emu.inject(f"GET /channels/{channel}/messages/{first.id}",
                   Fault("status", 403, 50013, "Missing Permissions"), times=100)
        await report(run, feeds, "bbc", 40)
        await settle(run, lambda: sum(len(emu.messages(t.id)) for t in emu.threads(channel)) == 2)
        assert [m.id for m in emu.messages(channel)] == [first.id]
        status = await run.engine.delivery_status()
        assert status.counts.get("rejected", 0) == 0 and not status.paused
    assert emu.validate_all() == []


async def test_min_sources_waits_for_a_second_outlet_then_posts_once_naming_both(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:
    rules = [{"name": "troops", "query": "troops", "min_sources": 2}]
    async with newswatch(emu, tmp_path, feeds, rules=rules) as run:
        channel = run.alerts_channel
        await report(run, feeds, "dw", 0)
        await asyncio.sleep(0.5)
        assert emu.messages(channel) == []
        status = await run.engine.delivery_status()
        assert len(status.waiting) == 1 and status.held == {}
        await report(run, feeds, "npr", 20)
        await settle(run, lambda: len(emu.messages(channel)) == 1)
        shown = embeds_text(emu.messages(channel)[0])
        assert "dw" in shown and "npr" in shown
        assert (await run.engine.delivery_status()).waiting == []
    assert emu.validate_all() == []


async def test_a_rule_of_higher_severity_escalates_with_a_new_message(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:
    rules = [{"name": "troops", "query": "troops"},
             {"name": "armour", "query": "tanks", "severity": "critical"}]
    async with newswatch(emu, tmp_path, feeds, rules=rules) as run:
        channel = run.alerts_channel
        await report(run, feeds, "dw", 0)
        await settle(run, lambda: len(emu.messages(channel)) == 1)
        await report(run, feeds, "npr", 20)  # "tanks": critical
        await settle(run, lambda: len(emu.messages(channel)) == 2)
        first, second = emu.messages(channel)
        assert "Escalated" in embeds_text(second) and "critical" in embeds_text(second)
        await report(run, feeds, "bbc", 40)  # medium again: updates the newest message
        await settle(run, lambda: edits(emu, second.id) == 1)
        assert edits(emu, first.id) == 0 and len(emu.messages(channel)) == 2
    assert emu.validate_all() == []


async def test_a_story_spans_a_restart(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:
    async with newswatch(emu, tmp_path, feeds) as run:
        await report(run, feeds, "dw", 0)
        await settle(run, lambda: len(emu.messages(run.alerts_channel)) == 1)
    (first,) = emu.messages(emu.channel("alerts").id)
    async with newswatch(emu, tmp_path, feeds) as run:
        await report(run, feeds, "npr", 20)
        await settle(run, lambda: edits(emu, first.id) == 1)
        assert len(emu.messages(run.alerts_channel)) == 1
    assert emu.validate_all() == []


async def test_an_edit_whose_answer_is_lost_or_refused_is_retried_not_doubled(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:
    async with newswatch(emu, tmp_path, feeds) as run:
        channel = run.alerts_channel
        first = await first_alert(run, feeds)
        emu.inject(f"PATCH /channels/{channel}/messages/{first.id}", "reset_after_receive")
        await report(run, feeds, "npr", 20)
        await settle(run, lambda: "npr" in embeds_text(emu.get_message(first.id)))
        emu.inject(f"PATCH /channels/{channel}/messages/{first.id}", 500)
        await report(run, feeds, "bbc", 40)
        await settle(run, lambda: "bbc" in embeds_text(emu.get_message(first.id)))
        assert len(emu.messages(channel)) == 1
        counts = (await run.engine.delivery_status()).counts
        assert counts.get("rejected", 0) == 0
    assert emu.validate_all() == []


async def test_an_article_changed_in_place_updates_its_story(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:
    async with newswatch(emu, tmp_path, feeds) as run:
        channel = run.alerts_channel
        first = await first_alert(run, feeds)
        # the same item (guid and link), a typo fixed: not material, nothing happens
        title, text = REPORTS["dw"]
        fixed = rss([("dw-1", "https://dw.example/troops", title, text.replace("armour",
                      "armor"), NOW)])
        feeds.set("/dw", Route(body=fixed))
        reports = await run.engine.run_once()
        assert sum(r.updated for r in reports) == 0
        # the same item rewritten with news: the story's message says "updated"
        news = rss([("dw-1", "https://dw.example/troops",
                     "Russian troops mass near Ukraine border; Kremlin denies invasion plan",
                     "The Kremlin denied any plan to invade as satellite images showed "
                     "troops massing near Yelnya.", NOW)])
        feeds.set("/dw", Route(body=news))
        reports = await run.engine.run_once()
        assert sum(r.updated for r in reports) == 1
        await settle(run, lambda: edits(emu, first.id) == 1)
        assert "Kremlin denies" in embeds_text(emu.get_message(first.id))
        assert len(emu.messages(channel)) == 1
        article = await run.engine.article(
            (await run.engine.store.recent(limit=1))[0][0].id)
        assert article is not None and "Kremlin" in article[0].title
    assert emu.validate_all() == []


async def test_a_crash_between_the_commit_and_the_edit_loses_nothing_and_doubles_nothing(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:
    import sqlite3

    async with newswatch(emu, tmp_path, feeds) as run:
        channel = run.alerts_channel
        await report(run, feeds, "dw", 0)
        await settle(run, lambda: len(emu.messages(channel)) == 1)
        await run.engine.delivery.stop()  # what follows is committed, never delivered
        feeds.set("/npr", Route(body=feed_of("npr", 20)))
        await run.engine.watch.run_once()
    (first,) = emu.messages(emu.channel("alerts").id)
    assert edits(emu, first.id) == 0
    # As kill -9 in the middle of the edit leaves it: claimed, outcome unknown.
    with sqlite3.connect(tmp_path / "nw.db") as conn:
        assert conn.execute("UPDATE outbox SET state = 'sending', attempts = 1 "
                            "WHERE kind = 'update' AND state = 'pending'").rowcount == 1
    async with newswatch(emu, tmp_path, feeds) as run:
        await settle(run, lambda: edits(emu, first.id) == 1)
        assert "npr" in embeds_text(emu.get_message(first.id))
        await report(run, feeds, "bbc", 40)
        await settle(run, lambda: edits(emu, first.id) == 2)
        assert len(emu.messages(run.alerts_channel)) == 1
    assert emu.validate_all() == []


async def test_a_word_for_word_copy_from_another_outlet_corroborates_the_story(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:
    rules = [{"name": "troops", "query": "troops", "min_sources": 2}]
    async with newswatch(emu, tmp_path, feeds, rules=rules) as run:
        channel = run.alerts_channel
        await report(run, feeds, "dw", 0)
        await asyncio.sleep(0.3)
        assert emu.messages(channel) == []  # waits for a second outlet
        # npr runs dw's wire copy word for word (its own guid and link)
        title, text = REPORTS["dw"]
        feeds.set("/npr", Route(body=rss([("npr-wire", "https://npr.example/wire", title,
                                            text, NOW)])))
        await run.engine.run_once()
        await settle(run, lambda: len(emu.messages(channel)) == 1)
        shown = embeds_text(emu.messages(channel)[0])
        assert "dw" in shown and "npr" in shown
        assert await run.engine.count_articles() == 1  # the copy stores nothing new
        await run.engine.run_once()  # seen again: nothing more
        await asyncio.sleep(0.3)
        assert len(emu.messages(channel)) == 1 and edits(emu, emu.messages(channel)[0].id) == 0
    assert emu.validate_all() == []


async def test_a_text_style_story_is_edited_in_its_content(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:
    channels = {"alerts": {"target": emu.channel("alerts").id,
                           "template": "{title} · {outlets}", "template_style": "text"}}
    async with newswatch(emu, tmp_path, feeds, channels=channels) as run:
        channel = run.alerts_channel
        first = await first_alert(run, feeds)
        assert first.embeds == [] and "Russian troops mass" in first.content
        await report(run, feeds, "npr", 20)
        await settle(run, lambda: edits(emu, first.id) == 1)
        edited = emu.get_message(first.id)
        assert edited.embeds == [] and "npr" in edited.content
        await emu.delete_message(channel, first.id)
        await report(run, feeds, "bbc", 40)
        await settle(run, lambda: len(emu.messages(channel)) == 1
                     and emu.messages(channel)[0].id != first.id)
        assert "bbc" in emu.messages(channel)[0].content  # reposted with its text
    assert emu.validate_all() == []


async def test_an_acknowledged_text_style_alert_keeps_its_line_through_the_storys_edits(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:
    """A text-style alert's content is re-rendered at each of its story's updates; before,
    that dropped the "Acknowledged by" line (the button stayed disabled), and a repost after
    a deletion came back with no buttons."""
    rules = [{"name": "troops", "query": "troops", "severity": "high",
              "template_style": "text"}]
    async with newswatch(emu, tmp_path, feeds, rules=rules) as run:
        channel = run.alerts_channel
        first = await first_alert(run, feeds)
        (ack,) = [c for c in first.custom_ids if c.startswith("nw:ack:")]
        click = await emu.click_button(first, ack, user="member")
        await click.callback()
        await settle(run, lambda: "Acknowledged by" in emu.get_message(first.id).content)
        await report(run, feeds, "npr", 20)
        await settle(run, lambda: edits(emu, first.id) == 1)
        edited = emu.get_message(first.id)
        assert "npr" in edited.content and "Acknowledged by" in edited.content
        await emu.delete_message(channel, first.id)
        await report(run, feeds, "bbc", 40)
        await settle(run, lambda: len(emu.messages(channel)) == 1
                     and emu.messages(channel)[0].id != first.id)
        (repost,) = emu.messages(channel)
        assert "bbc" in repost.content and "Acknowledged by" in repost.content
        assert repost.custom_ids == first.custom_ids  # its buttons, Acknowledge disabled
        acknowledge = next(c for row in repost.components for c in row["components"])
        assert acknowledge["custom_id"] == ack and acknowledge.get("disabled") is True
    assert emu.validate_all() == []
