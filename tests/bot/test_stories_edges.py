"""Stories at their edges, the real discord.py against the emulator: an article that releases
a waiting alert and fires a rule of higher severity; a rule satisfied while another waits; a
channel at Discord's limit of active threads; later articles queued behind a refused alert; an
article that changes in place into something graver, or into other words."""

from __future__ import annotations

import asyncio
import functools
from datetime import timedelta
from pathlib import Path

import pytest

import bot.sinks
from bot.sinks import DiscordSink
from tests.bot._stories import edits, embeds_text, settle
from tests.bot.conftest import Running
from tests.bot.test_stories_e2e import (  # noqa: F401
    NOW,
    feed_of,
    feeds,
    first_alert,
    newswatch,
    report,
)
from tests.fakes.discord_emulator import DiscordEmulator, Fault
from tests.fakes.feed_server import FeedServer, Route
from tests.service.test_identity import rss

# "npr" reports "tanks"; "dw" does not. A critical rule shows "critical" in the footer.


async def rejected(run: Running) -> list[str]:
    """The reasons of the rejected alerts, once there are any (within 5 s)."""
    for _ in range(100):
        found = [r.reason or "" for r in await run.engine.store.alerts()
                 if r.state == "rejected"]
        if found:
            await asyncio.sleep(0.2)  # a post would come now
            return found
        await asyncio.sleep(0.05)
    return []


async def test_an_article_that_releases_a_waiting_alert_also_escalates(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    rules = [{"name": "troops", "query": "troops", "min_sources": 2},
             {"name": "armour", "query": "tanks", "severity": "critical"}]
    async with newswatch(emu, tmp_path, feeds, rules=rules) as run:
        channel = run.alerts_channel
        await report(run, feeds, "dw", 0)
        await asyncio.sleep(0.3)
        assert emu.messages(channel) == []  # troops waits for a second outlet
        await report(run, feeds, "npr", 20)
        await settle(run, lambda: len(emu.messages(channel)) >= 2)
        first, second = (embeds_text(m) for m in emu.messages(channel))
        assert "`troops`" in first and "critical" not in first
        assert "`armour`" in second and "critical" in second


async def test_a_rule_satisfied_while_another_waits_posts_its_own_alert(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    rules = [{"name": "troops", "query": "troops", "min_sources": 3},
             {"name": "armour", "query": "tanks", "severity": "critical"}]
    async with newswatch(emu, tmp_path, feeds, rules=rules) as run:
        channel = run.alerts_channel
        await report(run, feeds, "dw", 0)
        await asyncio.sleep(0.3)
        await report(run, feeds, "npr", 20)
        await settle(run, lambda: len(emu.messages(channel)) >= 1)
        await asyncio.sleep(0.5)
        (only,) = emu.messages(channel)
        shown = embeds_text(only)
        assert "`armour`" in shown and "critical" in shown  # npr's, not dw's troops released early
        assert "npr" in shown.lower()


async def test_a_channel_at_its_thread_limit_gets_edits(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    limit = Fault("status", 400, 160006, "Maximum number of active threads reached",
                  name="max-threads")
    channels = {"alerts": {"target": emu.channel("alerts").id, "stories": "thread"}}
    async with newswatch(emu, tmp_path, feeds, channels=channels) as run:
        first = await first_alert(run, feeds)
        emu.inject(f"POST /channels/{run.alerts_channel}/messages/{first.id}/threads", limit,
                   times=100)
        await report(run, feeds, "npr", 20)
        await settle(run, lambda: edits(emu, first.id) == 1, seconds=5)
        status = await run.engine.delivery_status()
        assert "npr" in embeds_text(emu.get_message(first.id)).lower()
        assert not status.paused and not status.rejected


async def test_updates_queued_behind_a_refused_alert_post_the_story_once(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    rules = [{"name": "troops", "query": "troops", "mention_role": 1100000000000000099}]
    async with newswatch(emu, tmp_path, feeds, rules=rules) as run:
        await run.engine.delivery.stop()  # the three reports arrive before anything is sent
        for outlet, minutes in (("dw", 0), ("npr", 20), ("bbc", 40)):
            feeds.set(f"/{outlet}", Route(body=feed_of(outlet, minutes)))
            await run.engine.watch.run_once()
    channel = emu.channel("alerts").id
    emu.inject(f"POST /channels/{channel}/messages",  # Discord refuses the story's alert
               Fault("status", 400, 50035, "Invalid Form Body", name="400"))
    async with newswatch(emu, tmp_path, feeds, rules=rules) as run:
        await settle(run, lambda: len(emu.messages(channel)) >= 1)
        (posted,) = emu.messages(channel)  # npr's posts the story; bbc's edits it
        await settle(run, lambda: edits(emu, posted.id) == 1, seconds=5)
        assert len(emu.messages(channel)) == 1 and "bbc" in embeds_text(
            emu.get_message(posted.id)).lower()


async def test_a_later_article_changed_into_something_graver_escalates(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    """npr's article updated the story's message; rewritten in place to fire a critical rule,
    it posts an escalation, as a new article firing it would (it only updated the message).
    The story's own alert article changed so is updated, not posted twice: an article alerts
    once per route."""
    rules = [{"name": "troops", "query": "troops"},
             {"name": "nuclear", "query": "nuclear", "severity": "critical"}]
    async with newswatch(emu, tmp_path, feeds, rules=rules) as run:
        channel = run.alerts_channel
        first = await first_alert(run, feeds)
        await report(run, feeds, "npr", 20)
        await settle(run, lambda: edits(emu, first.id) == 1)
        feeds.set("/npr", Route(body=rss([(
            "npr-1", "https://npr.example/troops",
            "Russian troops near Ukraine border put on nuclear alert",
            "Russian troops massing at Yelnya were put on nuclear alert, the Kremlin said.",
            NOW)])))
        assert sum(r.updated for r in await run.engine.run_once()) == 1
        await settle(run, lambda: len(emu.messages(channel)) >= 2)
        escalated = embeds_text(emu.messages(channel)[1])
        assert "`nuclear`" in escalated and "critical" in escalated


async def test_an_article_changed_in_place_shows_its_new_words_highlighted(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    async with newswatch(emu, tmp_path, feeds) as run:
        first = await first_alert(run, feeds)
        title = "Troops deployed near Ukraine border as satellite images show build-up"
        text = "The government sent more troops to the border near Yelnya, satellite images show."
        feeds.set("/dw", Route(body=rss([("dw-1", "https://dw.example/troops", title, text,
                                          NOW)])))
        await run.engine.run_once()
        await settle(run, lambda: edits(emu, first.id) == 1)
        (embed,) = emu.get_message(first.id).embeds
        assert embed["description"].replace("**", "") == text  # the old hits cut it up
        assert "**Troops**" in embed["title"] and "**troops**" in embed["description"]


async def test_a_waiting_alert_of_a_rule_muted_meanwhile_does_not_post(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    rules = [{"name": "troops", "query": "troops", "min_sources": 2}]
    async with newswatch(emu, tmp_path, feeds, rules=rules) as run:
        channel = run.alerts_channel
        await report(run, feeds, "dw", 0)
        await asyncio.sleep(0.3)
        await run.engine.mute("troops", timedelta(hours=4))
        await report(run, feeds, "npr", 20)
        (why,) = await rejected(run)
        assert "muted while it waited" in why and emu.messages(channel) == []


async def test_a_waiting_alert_of_a_rule_removed_meanwhile_does_not_post(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    async with newswatch(emu, tmp_path, feeds,
                         rules=[{"name": "troops", "query": "troops", "min_sources": 2}]) as run:
        await report(run, feeds, "dw", 0)
        await asyncio.sleep(0.3)
    async with newswatch(emu, tmp_path, feeds,
                         rules=[{"name": "football", "query": "football"}]) as run:
        await report(run, feeds, "npr", 20)
        (why,) = await rejected(run)
        assert "removed while it waited" in why and emu.messages(run.alerts_channel) == []


async def test_the_alert_of_an_article_that_reaches_a_removed_rules_wait_still_posts(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    """The second outlet's article released the alert its removed rule had left waiting, and
    its own alert (another rule's, on the same route) was left out for it, the released one
    being to name its outlet; the released one was then refused at delivery, and nothing
    posted. A wait whose rules are all removed is now ended when they are removed."""
    async with newswatch(emu, tmp_path, feeds,
                         rules=[{"name": "tanks", "query": "tanks"}]) as run:
        # DW writes of armour (the rule that waits), NPR of tanks (the rule that posts)
        await run.engine.add_rule({"name": "armour", "query": "troops AND armour",
                                   "min_sources": 2})
        await report(run, feeds, "dw", 0)
        await asyncio.sleep(0.3)
        assert emu.messages(run.alerts_channel) == []  # waits for a second outlet
        assert await run.engine.remove_rule("armour")
        (why,) = await rejected(run)
        assert "removed while it waited" in why
        await report(run, feeds, "npr", 20)
        await settle(run, lambda: len(emu.messages(run.alerts_channel)) >= 1)
        (posted,) = emu.messages(run.alerts_channel)
        assert "`tanks`" in embeds_text(posted)


async def test_the_alert_of_an_article_that_reaches_a_wait_of_a_rule_gone_between_runs_posts(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    """As above, the waiting rule taken out of the config file between two runs: the run that
    no longer names it ends the wait when it starts (it delivers; a command opening the store
    with a config of its own does not, see tests/engine/test_rule_removal.py)."""
    rules = [{"name": "tanks", "query": "tanks"},
             {"name": "armour", "query": "troops AND armour", "min_sources": 2}]
    async with newswatch(emu, tmp_path, feeds, rules=rules) as run:
        await report(run, feeds, "dw", 0)
        await asyncio.sleep(0.3)
        assert emu.messages(run.alerts_channel) == []  # waits for a second outlet
    async with newswatch(emu, tmp_path, feeds, rules=rules[:1]) as run:
        (why,) = await rejected(run)
        assert "removed while it waited" in why
        await report(run, feeds, "npr", 20)
        await settle(run, lambda: len(emu.messages(run.alerts_channel)) >= 1)
        (posted,) = emu.messages(run.alerts_channel)
        assert "`tanks`" in embeds_text(posted)


async def test_a_waiting_alert_posts_once_its_rule_needs_fewer_outlets(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    async with newswatch(emu, tmp_path, feeds,
                         rules=[{"name": "troops", "query": "troops", "min_sources": 3}]) as run:
        await report(run, feeds, "dw", 0)
        await report(run, feeds, "npr", 20)
        await asyncio.sleep(0.3)
        assert emu.messages(run.alerts_channel) == []  # two outlets of the three
    async with newswatch(emu, tmp_path, feeds,
                         rules=[{"name": "troops", "query": "troops", "min_sources": 2}]) as run:
        channel = run.alerts_channel
        await settle(run, lambda: len(emu.messages(channel)) >= 1)
        (posted,) = emu.messages(channel)
        assert "2 outlets" in embeds_text(posted)


async def test_a_waiting_alert_of_a_server_that_removed_the_bot_is_kept_not_given_up(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer) -> None:  # noqa: F811
    """Its rules are kept but not run while the bot is away: an alert of theirs that waited for
    corroboration and is released meanwhile is sent (and, the channel being out of reach, held
    until the server invites the bot back), not given up as if its rule had been removed."""
    async with newswatch(emu, tmp_path, feeds, rules=[{"name": "floods", "query": "floods"}]
                         ) as run:
        engine, guild, channel = run.engine, emu.guild.id, run.alerts_channel
        route = await engine.add_server_route(guild, channel, "alerts")
        await engine.add_rule({"name": "troops", "query": "troops", "min_sources": 2,
                               "channel": route}, guild=guild)
        await report(run, feeds, "dw", 0)
        await asyncio.sleep(0.3)
        assert emu.messages(channel) == []  # waits for a second outlet
        await engine.left(guild)  # here the emulator keeps the bot in, so the send succeeds
        await report(run, feeds, "npr", 20)
        await settle(run, lambda: len(emu.messages(channel)) >= 1)
        states = {r.state for r in await engine.store.alerts() if r.route == route}
        assert states == {"delivered"}, states


@pytest.mark.parametrize("mode", ["repost", "thread"])
async def test_a_story_post_whose_answer_was_lost_is_not_posted_twice(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """A later report posts the story afresh (its message was deleted) or a line in its
    thread; that post's answer was lost and a 5xx storm outlasted Discord's nonce window (2 s
    here, minutes there): the retry relied on the nonce and posted it a second time. It looks
    first now, as an alert's retry does."""
    monkeypatch.setattr(bot.sinks, "DiscordSink", functools.partial(DiscordSink, timeout=0.75))
    emu.nonce_window = 2.0
    channels = {"alerts": {"target": emu.channel("alerts").id,
                           "stories": "thread" if mode == "thread" else "edit"}}
    async with newswatch(emu, tmp_path, feeds, channels=channels) as run:
        run.engine.delivery.base_backoff = 0.05
        run.engine.delivery.max_backoff = 0.4
        channel = run.alerts_channel
        first = await first_alert(run, feeds)
        if mode == "thread":
            await report(run, feeds, "npr", 20)
            await settle(run, lambda: sum(len(emu.messages(t.id))
                                          for t in emu.threads(channel)) == 1)
            (thread,) = emu.threads(channel)
            target = thread.id
        else:
            await emu.delete_message(channel, first.id)
            target = channel
        posts = f"POST /channels/{target}/messages"
        emu.inject(posts, Fault.reset_after_receive(), times=1)  # created, answer lost
        emu.inject(posts, Fault.server_error(503), times=1000)  # then a storm
        feeds.set("/bbc", Route(body=feed_of("bbc", 40)))
        await run.engine.watch.run_once()
        run.engine.delivery.wake()

        def naming_bbc() -> int:
            return len([m for m in emu.messages(target)
                        if "bbc" in (m.content + embeds_text(m)).lower()])

        await settle(run, lambda: naming_bbc() == 1, seconds=10)
        await asyncio.sleep(2.5)  # the storm outlasts the nonce window
        emu.clear_faults()
        for _ in range(150):
            rows = await run.engine.store.alerts(limit=1000)
            if rows and all(r.state == "delivered" for r in rows):
                break
            await asyncio.sleep(0.1)
        assert all(r.state == "delivered" for r in await run.engine.store.alerts(limit=1000))
        await asyncio.sleep(0.3)
        assert naming_bbc() == 1
