"""Delivery under every fault the Discord API emulator can inject: each ends with exactly the
expected messages at the emulator — none lost, none doubled, in the order they were written."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import bot.sinks as bot_sinks
from bot.console import ConsoleSink
from bot.runner import _webhook_sinks
from tests.bot.conftest import TOKEN
from tests.delivery.articles import MESSAGES, WEBHOOK, drop_articles, report_numbers
from tests.delivery.conftest import HOOK_ID, HOOK_TOKEN, Start, config, world
from tests.fakes.discord_emulator import DiscordEmulator, Fault
from tests.fakes.discord_ratelimit import RateLimitedEmulator
from watchers.config import parse_config
from watchers.engine import open_engine
from watchers.store import SqliteStore

pytestmark = pytest.mark.timeout(60)


def posts_to(emu: DiscordEmulator, channel: str) -> list[dict[str, Any]]:
    cid = str(emu.channel(channel).id)
    return [r.json for r in emu.requests_for(MESSAGES)
            if r.params.get("channel_id") == cid and isinstance(r.json, dict)]


@pytest.mark.parametrize("fault", [
    pytest.param(Fault.rate_limited(0.05), id="429-bucket"),
    pytest.param(Fault.rate_limited(0.05, is_global=True), id="429-global"),
    # longer than one attempt may take: our timeout cuts discord.py's wait, we back off
    pytest.param(Fault.rate_limited(1.5), id="429-bucket-long"),
    pytest.param(Fault.rate_limited(1.5, is_global=True), id="429-global-long"),
    pytest.param(Fault.server_error(500), id="500"),
    pytest.param(Fault.server_error(502), id="502"),
    pytest.param(Fault.server_error(504), id="504"),
    pytest.param(Fault.reset_after_receive(), id="reset-after-receive"),
    pytest.param(Fault.slow(2.0, after_processing=True), id="slow-answer"),
    pytest.param(Fault.slow(2.0), id="slow-request"),
])
async def test_transient_fault_on_a_channel_ends_with_each_alert_once_in_order(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path, fault: Fault) -> None:
    drop_articles(tmp_path / "wire", "troops", range(5))
    emu.inject(MESSAGES, fault, times=2)
    run = await newswatch(emu)
    await run.wait_for(lambda: len(report_numbers(emu, "alerts")) >= 5, 20)
    await asyncio.sleep(0.3)  # a late duplicate would show up now
    assert report_numbers(emu, "alerts") == [0, 1, 2, 3, 4]
    assert not emu.pending_faults  # every injected fault was met
    faulted = [r for r in emu.requests_for(MESSAGES) if r.fault]
    assert len(faulted) == 2
    bodies = posts_to(emu, "alerts")
    # one nonce per alert, the same on every try, and Discord told to enforce it
    assert all(b.get("enforce_nonce") is True and b.get("nonce") for b in bodies)
    assert len(set(b["nonce"] for b in bodies)) == 5
    rows = await run.engine.store.alerts(state="delivered")
    assert sorted(str(r.remote_id) for r in rows if r.route == "alerts") == sorted(
        str(m.id) for m in emu.messages(emu.channel("alerts").id))
    assert emu.validate_all() == []


async def test_a_retry_after_a_lost_answer_finds_the_message_and_posts_nothing_new(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path) -> None:
    drop_articles(tmp_path / "wire", "troops", range(1))
    emu.inject(MESSAGES, Fault.reset_after_receive(), times=1)  # created, the answer lost
    run = await newswatch(emu)
    await run.wait_for(lambda: bool(report_numbers(emu, "alerts")))
    await run.wait_for(lambda: not emu.pending_faults)

    async def delivered() -> list[Any]:
        return await run.engine.store.alerts(state="delivered")

    for _ in range(100):
        if await delivered():
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    assert len(posts_to(emu, "alerts")) == 1  # looked for, not sent again
    assert report_numbers(emu, "alerts") == [0]
    (row,) = await delivered()
    (message,) = emu.messages(emu.channel("alerts").id)
    assert row.attempts == 2 and row.remote_id == str(message.id)
    looked = [r for r in emu.requests if r.method == "GET"
              and r.path == f"/channels/{emu.channel('alerts').id}/messages"]
    assert looked, [r.path for r in emu.requests]


@pytest.mark.parametrize("fault", [
    pytest.param((Fault.rate_limited(1.0), 1), id="429"),
    pytest.param((Fault.server_error(500), 4), id="500"),
])
async def test_two_routes_sharing_a_channel_each_post_their_own_alert(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path,
        fault: tuple[Fault, int]) -> None:
    """One article, two rules, two routes to one channel, the first send refused: the retry
    looked for an earlier attempt by the footer alone (article and severity), took the other
    route's message for its own and marked its alert delivered, never posted."""
    wire = tmp_path / "wire"
    wire.mkdir()
    (wire / "a.txt").write_text("Troops and soldiers report 00001\nTroops and soldiers were "
                                "seen near the border.\n")
    ch = emu.channel("alerts").id
    emu.inject(MESSAGES, fault[0], times=fault[1])
    run = await newswatch(emu, channels={"alerts": ch, "urgent": ch,
                                         "ops": emu.channel("ops").id},
                          rules=[{"name": "troops", "query": "troops", "channel": "alerts"},
                                 {"name": "soldiers", "query": "soldiers", "channel": "urgent"}])
    for _ in range(150):
        rows = await run.engine.store.alerts()
        if len(rows) == 2 and all(r.state == "delivered" for r in rows):
            break
        await asyncio.sleep(0.1)
    rows = await run.engine.store.alerts()
    assert sorted(r.state for r in rows) == ["delivered", "delivered"]
    posted = {str(m.id): [f["value"] for f in m.embeds[0]["fields"] if f["name"] == "Rule"]
              for m in emu.messages(ch)}
    assert sorted(map(str, posted.values())) == ["['`soldiers`']", "['`troops`']"]
    assert {r.route: posted[str(r.remote_id)] for r in rows} == {
        "alerts": ["`troops`"], "urgent": ["`soldiers`"]}


async def test_a_retry_after_a_lost_answer_reuses_the_nonce_and_posts_nothing_new(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path) -> None:
    """Where the bot may not read the channel's history, the nonce alone keeps a retry from
    posting twice (within Discord's window)."""
    drop_articles(tmp_path / "wire", "troops", range(1))
    # both retries ask first, and may not look
    emu.inject("GET /channels/{channel_id}/messages", Fault.forbidden(50001), times=2)
    emu.inject(MESSAGES, Fault.reset_after_receive(), times=2)
    run = await newswatch(emu)
    await run.wait_for(lambda: bool(report_numbers(emu, "alerts")))
    await run.wait_for(lambda: not emu.pending_faults)
    await run.wait_for(lambda: len(posts_to(emu, "alerts")) >= 3)
    await asyncio.sleep(0.3)
    nonces = [b["nonce"] for b in posts_to(emu, "alerts")]
    assert len(nonces) == 3 and len(set(nonces)) == 1  # three tries, one nonce
    assert report_numbers(emu, "alerts") == [0]  # Discord created it once
    (row,) = await run.engine.store.alerts(state="delivered")
    assert row.attempts == 3 and row.nonce == nonces[0]


async def test_a_destination_backing_off_does_not_hold_up_the_others(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path) -> None:
    wire = tmp_path / "wire"
    drop_articles(wire, "troops", range(0, 4))
    drop_articles(wire, "sanctions", range(10, 14))
    drop_articles(wire, "floods", range(20, 24))
    alerts_path = f"/channels/{emu.channel('alerts').id}/messages"
    emu.inject(f"POST {alerts_path}", Fault.server_error(500), times=1000)  # #alerts keeps failing
    run = await newswatch(emu)
    await run.wait_for(lambda: len(report_numbers(emu, "general")) >= 4
                       and len(report_numbers(emu, "hooks")) >= 4, 20)
    # the other destinations got everything while #alerts was still failing
    assert report_numbers(emu, "general") == [10, 11, 12, 13]
    assert report_numbers(emu, "hooks") == [20, 21, 22, 23]
    assert report_numbers(emu, "alerts") == []
    await run.wait_for(lambda: len([r for r in emu.requests_for(method="POST", path=alerts_path)
                                    if r.fault]) >= 3)
    rows = [r for r in await run.engine.store.alerts() if r.route == "alerts"]
    assert {r.state for r in rows} <= {"retry", "sending"}
    assert rows[0].attempts >= 3  # retried by us, with backoff, all the while
    status = await run.engine.delivery.status()
    assert status.paused == {}
    emu.clear_faults()
    await run.wait_for(lambda: len(report_numbers(emu, "alerts")) >= 4, 20)
    await asyncio.sleep(0.2)
    assert report_numbers(emu, "alerts") == [0, 1, 2, 3]
    assert emu.validate_all() == []


async def test_an_invalid_body_rejects_that_alert_with_the_reason_and_the_rest_go_on(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path) -> None:
    drop_articles(tmp_path / "wire", "troops", range(4))
    emu.inject(MESSAGES, Fault.invalid_form(), times=1)
    run = await newswatch(emu)
    await run.wait_for(lambda: len(report_numbers(emu, "alerts")) >= 3)
    await asyncio.sleep(0.2)
    assert report_numbers(emu, "alerts") == [1, 2, 3]
    (rejected,) = await run.engine.store.alerts(state="rejected")
    assert rejected.attempts == 1  # not retried
    assert "400" in (rejected.reason or "") and "code 50035" in (rejected.reason or "")
    assert "Must be 2000 or fewer in length" in (rejected.reason or "")
    status = await (await emu.send_interaction("alerts status")).final_message()
    assert "Recently rejected" in status.text and "50035" in status.text


@pytest.mark.parametrize(("route", "channel", "pattern", "fault"), [
    pytest.param("alerts", "alerts", MESSAGES, Fault.forbidden(50013), id="403-permissions"),
    pytest.param("alerts", "alerts", MESSAGES, Fault.forbidden(50001), id="403-access"),
    pytest.param("alerts", "alerts", MESSAGES, Fault.not_found(10003), id="404-channel"),
    pytest.param("hook", "hooks", WEBHOOK, Fault.not_found(10015), id="404-webhook"),
    # a webhook's own token refused: that destination's fault (the bot's 401 is not)
    pytest.param("hook", "hooks", WEBHOOK,
                 Fault("status", 401, 50027, "Invalid Webhook Token", name="401/50027"),
                 id="401-webhook"),
    # a thread archived or locked refuses every message: paused, not each alert rejected
    pytest.param("alerts", "alerts", MESSAGES,
                 Fault("status", 400, 50083, "Thread is archived", name="400/50083"),
                 id="400-archived-thread"),
])
async def test_an_unusable_destination_is_paused_held_announced_and_resumed(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path, route: str, channel: str,
        pattern: str, fault: Fault) -> None:
    topic = next(t for t, r in {"troops": "alerts", "floods": "hook"}.items() if r == route)
    wire = tmp_path / "wire"
    drop_articles(wire, topic, range(3))
    drop_articles(wire, "sanctions", range(10, 12))
    emu.inject(pattern, fault, times=1)
    run = await newswatch(emu)
    ops = emu.channel("ops").id
    await run.wait_for(lambda: bool(emu.messages(ops)))
    # the team is told on the notices route, once, without pinging anyone
    (notice,) = emu.messages(ops)
    assert f"'{route}' paused" in notice.content and "3 alert(s) held" in notice.content
    assert f"/alerts resume {route}" in notice.content
    assert notice.allowed_mentions is not None and notice.allowed_mentions.get("parse") == []
    # other destinations carry on
    await run.wait_for(lambda: len(report_numbers(emu, "general")) >= 2)
    assert report_numbers(emu, channel) == []
    held = await run.engine.store.alerts(state="held")
    assert len(held) == 3 and {r.route for r in held} == {route}
    # an alert written while paused waits with the others
    drop_articles(wire, topic, range(3, 4))

    async def held_count() -> int:
        return len(await run.engine.store.alerts(state="held"))

    for _ in range(100):
        if await held_count() == 4:
            break
        await asyncio.sleep(0.05)
    assert await held_count() == 4
    assert report_numbers(emu, channel) == []
    # /stats and /alerts status show it
    stats = await (await emu.send_interaction("stats", user="member")).final_message()
    assert f"route {route} paused" in stats.text
    status = await (await emu.send_interaction("alerts status")).final_message()
    assert f"route {route} paused · 4 held" in status.text
    # only admins may resume
    refused = await (await emu.send_interaction("alerts resume", {"route": route},
                                                user="member")).final_message()
    assert refused.ephemeral and "Manage Server" in refused.content
    assert report_numbers(emu, channel) == []
    done = await (await emu.send_interaction("alerts resume", {"route": route})).final_message()
    assert "4 held alert(s)" in done.content
    await run.wait_for(lambda: len(report_numbers(emu, channel)) >= 4)
    await asyncio.sleep(0.2)
    assert report_numbers(emu, channel) == [0, 1, 2, 3]
    assert run.engine.delivery.paused_routes() == {}
    assert len(emu.messages(ops)) == 1
    assert emu.validate_all() == []


async def test_the_bots_token_refused_for_a_while_is_retried_and_pauses_no_channel(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """A 401 to the bot says its token was refused (reset in the developer portal), not that
    a channel is unusable: it paused every channel it met, for good (across restarts), and
    their alerts stayed held after the token worked again."""
    run = await newswatch(emu)
    await emu.wait_until_identified(timeout=10)  # the gateway stays up; REST refuses the token
    emu.token = "revoked"
    wire = tmp_path / "wire"
    drop_articles(wire, "troops", range(3))
    drop_articles(wire, "sanctions", range(10, 12))

    def refused() -> int:
        return sum(1 for r in emu.requests if r.status == 401)

    await run.wait_for(lambda: refused() >= 3, 20)
    emu.token = TOKEN
    await run.wait_for(lambda: len(report_numbers(emu, "alerts")) >= 3
                       and len(report_numbers(emu, "general")) >= 2, 20)
    await asyncio.sleep(0.3)  # a late duplicate would show up now
    assert report_numbers(emu, "alerts") == [0, 1, 2]
    assert report_numbers(emu, "general") == [10, 11]
    assert run.engine.delivery.paused_routes() == {}
    assert await run.engine.store.paused_routes() == {}
    assert emu.messages(emu.channel("ops").id) == []  # no "paused" notice
    said = [r.getMessage() for r in caplog.records if "refused the bot's token" in r.getMessage()]
    assert said and "401: Unauthorized" in said[0] and "retrying in" in said[0]
    assert emu.validate_all() == []


async def test_a_restart_names_each_paused_route_and_lifts_a_pause_by_the_bots_token(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """A pause outlives a restart, and a start said nothing of it: a route held for good
    looked like a quiet one. Each is now logged with why, what it holds and the way out; a
    bot channel paused by the bot's own 401 (as a refused token once paused every channel)
    is resumed and its alerts sent, while a webhook refused its own token stays paused."""
    wire = tmp_path / "wire"
    drop_articles(wire, "troops", range(3))
    drop_articles(wire, "floods", range(20, 22))
    emu.inject(MESSAGES, Fault.forbidden(50013), times=1)
    emu.inject(WEBHOOK, Fault("status", 401, 50027, "Invalid Webhook Token"), times=1)
    run = await newswatch(emu)
    await run.wait_for(lambda: len(run.engine.delivery.paused_routes()) == 2, 20)
    # as a refused bot token left it before such a 401 was retried
    await run.engine.store.pause_route("alerts", "destination unusable: 401 401: Unauthorized")
    run.stop.set()
    assert await asyncio.wait_for(run.task, 15) == 0
    assert report_numbers(emu, "alerts") == [] and report_numbers(emu, "hooks") == []
    caplog.clear()

    again = await newswatch(emu)
    await again.wait_for(lambda: len(report_numbers(emu, "alerts")) >= 3, 20)
    await asyncio.sleep(0.3)
    assert report_numbers(emu, "alerts") == [0, 1, 2]
    assert report_numbers(emu, "hooks") == []
    assert set(again.engine.delivery.paused_routes()) == {"hook"}
    lines = [r.getMessage() for r in caplog.records]
    resumed = [line for line in lines if line.startswith("route alerts resumed at start")]
    assert len(resumed) == 1 and "3 held alert(s)" in resumed[0], lines
    (hook,) = [line for line in lines if line.startswith("route hook is paused")]
    assert "Invalid Webhook Token" in hook and "2 alert(s) held" in hook
    assert "/alerts resume hook" in hook
    assert not any(line.startswith("route alerts is paused") for line in lines)


async def test_a_webhook_paused_for_its_token_is_resumed_by_a_start_with_another_url(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """A webhook route whose URL held a wrong token paused (401), and the pause outlived every
    restart: in a set-up of webhooks alone nothing could resume it (/alerts resume needs the
    bot), so the route's alerts were held for good once the URL was corrected. The pause
    names the webhook it was of; a start with another URL for the route lifts it."""
    wrong = f"https://discord.com/api/webhooks/{HOOK_ID}/WRONG-{HOOK_TOKEN[6:]}"
    routes = {"alerts": emu.channel("alerts").id, "desk": emu.channel("general").id,
              "ops": emu.channel("ops").id}
    drop_articles(tmp_path / "wire", "floods", range(2))
    run = await newswatch(emu, channels={**routes, "hook": wrong})
    await run.wait_for(lambda: "hook" in run.engine.delivery.paused_routes(), 20)
    run.stop.set()
    assert await asyncio.wait_for(run.task, 15) == 0
    assert report_numbers(emu, "hooks") == []
    # the same wrong URL again: still paused
    same = await newswatch(emu, channels={**routes, "hook": wrong})
    await asyncio.sleep(0.5)
    assert "hook" in same.engine.delivery.paused_routes()
    same.stop.set()
    assert await asyncio.wait_for(same.task, 15) == 0
    caplog.clear()
    fixed = await newswatch(emu)  # the URL corrected
    await fixed.wait_for(lambda: len(report_numbers(emu, "hooks")) >= 2, 20)
    assert report_numbers(emu, "hooks") == [0, 1]
    assert "hook" not in fixed.engine.delivery.paused_routes()
    (said,) = [r.getMessage() for r in caplog.records
               if r.getMessage().startswith("route hook resumed at start")]
    # the reason it was resumed for, not the bot-token one ("no longer pauses a destination")
    assert "its webhook's URL has changed since it was paused" in said, said
    assert "no longer pauses" not in said
    # the notice of the pause named the way out a set-up of webhooks alone has
    (notice,) = [r.text for r in await fixed.engine.store.alerts(kind="notice")
                 if r.text and "'hook' paused" in r.text]
    assert notice and "its URL is corrected and newswatch started again" in notice, notice


@pytest.mark.parametrize("reason", [
    # a digest's part refused by the webhook the route had before: the mark inside the reason
    "digest part 2/4 not sent (404 Not Found (error code: 10015): Unknown Webhook [webhook "
    "abcdef]); the parts before it were",
    # the route was a bot channel when it paused, and is a webhook now
    "destination unusable: 403 (code 50013) Missing Permissions",
], ids=["a digest's pause", "a bot channel's pause"])
async def test_a_webhook_route_paused_by_another_destination_is_resumed_at_start(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path, reason: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """A pause of a webhook route lifts at a start with another URL, as its alerts' pauses
    did; a digest's pause, whose reason wraps the webhook's mark ("digest part 2/4 not sent
    (… [webhook 1a2b3c]); the parts before it were"), was not found and stayed, and so did the
    pause of a route that was a bot channel then: with webhooks alone (no /alerts resume)
    their alerts were held for good."""
    drop_articles(tmp_path / "wire", "floods", range(2))
    run = await newswatch(emu)
    await run.wait_for(lambda: len(report_numbers(emu, "hooks")) >= 2, 20)
    run.stop.set()
    assert await asyncio.wait_for(run.task, 15) == 0
    # The pause as a stop left it (written while nothing runs: a running engine holds its
    # routes' pauses in memory, and paused behind its back it delivered on when its next
    # poll came within the test's wait), and two alerts come while it stands.
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await store.pause_route("hook", reason)
    drop_articles(tmp_path / "wire", "floods", range(2, 4))
    assert report_numbers(emu, "hooks") == [0, 1]  # the later two wait
    caplog.clear()
    again = await newswatch(emu)
    await again.wait_for(lambda: len(report_numbers(emu, "hooks")) >= 4, 20)
    assert report_numbers(emu, "hooks") == [0, 1, 2, 3]
    assert "hook" not in again.engine.delivery.paused_routes()
    assert any(r.getMessage().startswith("route hook resumed at start")
               for r in caplog.records)


async def test_a_webhook_send_whose_answer_was_lost_is_found_not_sent_twice(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path) -> None:
    drop_articles(tmp_path / "wire", "floods", range(3))
    emu.inject(WEBHOOK, Fault.reset_after_receive(), times=1)
    emu.inject(WEBHOOK, Fault.slow(2.0, after_processing=True), times=1)
    run = await newswatch(emu)
    await run.wait_for(lambda: len(report_numbers(emu, "hooks")) >= 3
                       and not emu.pending_faults, 20)
    await asyncio.sleep(0.5)
    assert report_numbers(emu, "hooks") == [0, 1, 2]
    rows = [r for r in await run.engine.store.alerts() if r.route == "hook"]
    assert {r.state for r in rows} == {"delivered"}
    msgs = {str(m.id) for m in emu.messages(emu.channel("hooks").id)}
    assert {r.remote_id for r in rows} == msgs
    # the two sends whose answer was lost were recorded as such, then looked up
    assert await run.engine.store.count_maybe_sent() == 2
    assert emu.requests_for("GET /channels/{channel_id}/messages")
    assert emu.validate_all() == []


@pytest.mark.parametrize("fault", [Fault.server_error(503), Fault.slow(1.5)],
                         ids=["5xx", "no answer"])
async def test_a_webhook_sends_lookup_that_fails_for_now_is_tried_again_not_sent_twice(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        fault: Fault) -> None:
    """After a lost answer, the bot's read of the channel failed once (a 503, or no answer in
    time): the alert was sent again and showed twice, and a read that did not answer was said
    to be a wait in the webhook's rate-limit bucket. It is tried again, and found."""
    drop_articles(tmp_path / "wire", "floods", range(1))
    emu.inject(WEBHOOK, Fault.reset_after_receive(), times=1)
    hooks = emu.channel("hooks").id
    emu.inject(f"GET /channels/{hooks}/messages", fault, times=1)
    run = await newswatch(emu)
    await run.wait_for(lambda: not emu.pending_faults, 20)
    for _ in range(200):
        rows = [r for r in await run.engine.store.alerts() if r.route == "hook"]
        if rows and {r.state for r in rows} == {"delivered"}:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    assert report_numbers(emu, "hooks") == [0]
    assert {r.state for r in rows} == {"delivered"}
    said = caplog.text
    assert "could not look for an earlier send" in said and "the earlier send did go" in said
    assert "bucket" not in said and "sending again" not in said
    assert emu.validate_all() == []


async def test_a_webhook_sends_lookup_the_bots_refused_token_cannot_make_sends_again(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """After a lost answer, the bot's read of the channel refused (401: its token reset) was
    taken for the bot's own failure: the alert waited, and the webhook's route behind it, for
    as long as the token was refused, though a webhook needs none. It cannot look: it sends
    again (at least once, as a webhook without a bot does)."""
    drop_articles(tmp_path / "wire", "floods", range(2))
    emu.inject(WEBHOOK, Fault.reset_after_receive(), times=1)
    hooks = emu.channel("hooks").id
    emu.inject(f"GET /channels/{hooks}/messages",
               Fault("status", 401, 0, "401: Unauthorized", name="401"), times=10_000)
    run = await newswatch(emu)
    for _ in range(200):
        rows = [r for r in await run.engine.store.alerts() if r.route == "hook"]
        if len(rows) == 2 and {r.state for r in rows} == {"delivered"}:
            break
        await asyncio.sleep(0.05)
    assert {r.state for r in rows} == {"delivered"}, [(r.state, r.reason) for r in rows]
    assert sorted(set(report_numbers(emu, "hooks"))) == [0, 1]
    assert "cannot look for an earlier send" in caplog.text


@pytest.mark.parametrize("route", ["hook", "alerts"], ids=["webhook", "channel"])
async def test_a_notice_whose_answer_was_lost_is_found_not_posted_twice(
        emu: DiscordEmulator, newswatch: Start, route: str) -> None:
    """A notice (a source paused …) whose answer was lost is looked for before it is posted
    again, as an alert is: a webhook's send carries no nonce, and a channel's nonce is kept
    for minutes only."""
    run = await newswatch(emu)
    endpoint = WEBHOOK if route == "hook" else MESSAGES
    emu.inject(endpoint, Fault.reset_after_receive(), times=1)
    text = "Source 'wire' paused after 5 failures in a row. Last error: timeout"
    await run.engine.store.add_notice(route, text)
    run.engine.delivery.wake()
    channel = emu.channel("hooks" if route == "hook" else "alerts").id

    def posted() -> list[str]:
        return [m.content for m in emu.messages(channel) if "paused after 5" in m.content]

    await run.wait_for(lambda: bool(posted()) and not emu.pending_faults, 20)
    for _ in range(200):  # the retry settles it
        if await run.engine.store.notice_counts() == {"delivered": 1}:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    assert await run.engine.store.notice_counts() == {"delivered": 1}
    assert len(posted()) == 1, posted()
    if route == "hook":  # recorded as maybe sent, then looked for (a channel's nonce held)
        assert await run.engine.store.count_maybe_sent() == 1
        assert emu.requests_for("GET /channels/{channel_id}/messages")


async def test_a_burst_of_200_alerts_is_paced_under_the_limits(
        limited_emu: RateLimitedEmulator, newswatch: Start, tmp_path: Path) -> None:
    emu = limited_emu
    drop_articles(tmp_path / "wire", "troops", range(200))
    emu.inject(MESSAGES, Fault.reset_after_receive(), times=1)
    emu.inject(MESSAGES, Fault.server_error(502), times=1)
    run = await newswatch(emu)
    await run.wait_for(lambda: len(report_numbers(emu, "alerts")) >= 200, 50)
    await asyncio.sleep(0.3)
    numbers = report_numbers(emu, "alerts")
    assert numbers == list(range(200))  # none lost, none doubled, in order
    assert Counter(numbers).most_common(1)[0][1] == 1
    # paced by the X-RateLimit headers: the client waited for the window instead of being
    # told off by a 429
    assert emu.over_limit == 0
    assert emu.limited_requests >= 200
    assert (await run.engine.store.alert_counts()) == {"delivered": 200}


async def test_two_routes_sharing_a_channel_are_paced_together_under_its_limit(
        limited_emu: RateLimitedEmulator, newswatch: Start, tmp_path: Path) -> None:
    """Two routes' delivery loops send to one channel at once, through one rate-limit bucket
    whose way out runs as its own task (see bot.sinks): every alert once, and no request over
    the limit."""
    emu = limited_emu
    drop_articles(tmp_path / "wire", "troops", range(30))
    drop_articles(tmp_path / "wire", "soldiers", range(30, 60))
    ch = emu.channel("alerts").id
    run = await newswatch(emu, channels={"alerts": ch, "urgent": ch,
                                         "ops": emu.channel("ops").id},
                          rules=[{"name": "troops", "query": "troops", "channel": "alerts"},
                                 {"name": "soldiers", "query": "soldiers", "channel": "urgent"}])
    await run.wait_for(lambda: len(report_numbers(emu, "alerts")) >= 60, 40)
    await asyncio.sleep(0.3)
    numbers = report_numbers(emu, "alerts")
    assert sorted(numbers) == list(range(60))  # none lost, none doubled
    # each route's own alerts in the order written
    assert [n for n in numbers if n < 30] == list(range(30))
    assert [n for n in numbers if n >= 30] == list(range(30, 60))
    assert emu.over_limit == 0
    assert (await run.engine.store.alert_counts()) == {"delivered": 60}


@pytest.mark.parametrize("style", ["embed", "text"])
async def test_a_webhook_send_whose_answer_was_lost_is_found_for_either_style(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path, style: str) -> None:
    """A text-style alert has no embed footer to look for: it was posted again after a lost
    answer. Its content identifies it as well."""
    drop_articles(tmp_path / "wire", "floods", range(3))
    emu.inject(WEBHOOK, Fault.reset_after_receive(), times=1)
    run = await newswatch(emu, channels={
        "alerts": emu.channel("alerts").id, "desk": emu.channel("general").id,
        "ops": emu.channel("ops").id,
        "hook": {"target": f"https://discord.com/api/webhooks/{HOOK_ID}/{HOOK_TOKEN}",
                 "template": "{title} · {link}", "template_style": style}})
    hooks = emu.channel("hooks").id
    await run.wait_for(lambda: len(emu.messages(hooks)) >= 3 and not emu.pending_faults, 20)
    await asyncio.sleep(0.5)
    assert len(emu.messages(hooks)) == 3
    rows = [r for r in await run.engine.store.alerts() if r.route == "hook"]
    assert {r.state for r in rows} == {"delivered"}
    assert {r.remote_id for r in rows} == {str(m.id) for m in emu.messages(hooks)}


class UnreadableAnswers(DiscordEmulator):
    """Carries out the next ``bad`` message-creating POSTs under ``path`` (the message is made),
    then answers with rate-limit headers discord.py cannot read."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.bad = 0
        self.path = "/webhooks/"

    async def _handle_http(self, request: Any) -> Any:
        resp = await super()._handle_http(request)
        if request.method == "POST" and self.path in request.path and self.bad > 0:
            self.bad -= 1
            resp.headers["X-RateLimit-Remaining"] = "0"
            resp.headers["X-RateLimit-Reset-After"] = "soon"
        return resp


async def test_an_answer_discord_py_cannot_read_is_maybe_sent_not_sent_again(
        newswatch: Start, tmp_path: Path) -> None:
    """The webhook's message was made, then discord.py failed on the answer's headers
    (ValueError): the alert was posted again at every retry, without end."""
    answers = UnreadableAnswers(**world())
    async with answers as emu, emu.patch_discord():
        drop_articles(tmp_path / "wire", "floods", range(3))
        answers.bad = 2
        run = await newswatch(emu)
        await run.wait_for(lambda: len(report_numbers(emu, "hooks")) >= 3 and answers.bad == 0,
                           20)
        await asyncio.sleep(1.0)
        assert report_numbers(emu, "hooks") == [0, 1, 2]
        rows = [r for r in await run.engine.store.alerts() if r.route == "hook"]
        assert {r.state for r in rows} == {"delivered"}
        assert await run.engine.store.count_maybe_sent() >= 1


@pytest.mark.parametrize("is_global", [False, True], ids=["bucket", "global"])
async def test_a_rate_limit_longer_than_an_attempt_is_waited_out_on_that_route(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path, is_global: bool) -> None:
    """A 429 asking for 45 s: discord.py slept in it until the attempt's timeout cut the sleep,
    and the route tried again on its own shorter backoff, into the same limit. It is now raised
    with its retry_after, which the route waits out; the other routes go on."""
    drop_articles(tmp_path / "wire", "troops", range(2))
    drop_articles(tmp_path / "wire", "sanctions", range(10, 12))
    emu.inject(MESSAGES, Fault.rate_limited(45, is_global=is_global), times=1)
    run = await newswatch(emu)
    await run.wait_for(lambda: len(report_numbers(emu, "general")) >= 2, 20)
    await asyncio.sleep(1.0)
    rows = [r for r in await run.engine.store.alerts() if r.route == "alerts"]
    first = min(rows, key=lambda r: r.id)
    assert first.state == "retry" and first.next_attempt_at is not None
    assert first.next_attempt_at - datetime.now(UTC) > timedelta(seconds=35)
    assert report_numbers(emu, "alerts") == []
    limited = [r for r in emu.requests_for(MESSAGES)
               if r.params.get("channel_id") == str(emu.channel("alerts").id)]
    assert len(limited) == 1  # asked once, then waited


async def test_a_route_backing_off_says_why_in_alerts_status(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path) -> None:
    """/alerts status said only "route alerts backing off · next attempt …": a 429 of minutes
    (or a 5xx storm of hours) looked like a moment's retry. It names the last failure, how
    many came in a row and how many alerts wait on the route."""
    drop_articles(tmp_path / "wire", "troops", range(2))
    emu.inject(MESSAGES, Fault.rate_limited(45), times=1)
    run = await newswatch(emu)
    for _ in range(100):
        rows = [r for r in await run.engine.store.alerts() if r.route == "alerts"]
        if rows and min(rows, key=lambda r: r.id).state == "retry":
            break
        await asyncio.sleep(0.05)
    status = await (await emu.send_interaction("alerts status")).final_message()
    line = next(x for x in status.text.splitlines() if x.startswith("route alerts backing off"))
    assert "rate limited" in line and "1 failure in a row · 2 alerts waiting · next attempt <t:" \
        in line, line
    st = await run.engine.delivery_status()
    assert set(st.backing_off_why) == {"alerts"}


async def test_a_webhooks_long_rate_limit_is_waited_out_not_taken_for_a_lost_answer(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path) -> None:
    """A webhook's 429 asking for two minutes: discord.py's webhook client sleeps in it with
    no cap, the attempt's timeout cut the sleep, and the alert was marked "maybe sent" (no
    answer in time) and tried again on the route's short backoff, into the same limit. It is
    now a rate limit the route waits out; nothing is marked maybe sent."""
    drop_articles(tmp_path / "wire", "floods", range(1))
    emu.inject(WEBHOOK, Fault.rate_limited(120.0), times=1000)
    run = await newswatch(emu)
    await run.wait_for(lambda: any(r.fault for r in emu.requests_for(WEBHOOK)), 10)

    async def waiting() -> Any:
        rows = [r for r in await run.engine.store.alerts() if r.route == "hook"]
        return rows[0] if rows and rows[0].state == "retry" else None

    for _ in range(100):
        if (row := await waiting()) is not None:
            break
        await asyncio.sleep(0.05)
    assert row is not None, "the alert was not put back to wait"
    assert "rate limited" in (row.reason or "")
    assert row.next_attempt_at - datetime.now(UTC) > timedelta(seconds=60)
    assert await run.engine.store.count_maybe_sent() == 0
    await asyncio.sleep(1.0)
    assert len([r for r in emu.requests_for(WEBHOOK) if r.method == "POST"]) == 1


async def test_a_proxys_429_in_html_with_a_dated_retry_after_is_a_rate_limit_waited_out(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path) -> None:
    """A proxy in front of Discord answering 429 with an HTML page and a Retry-After written as
    an HTTP date: discord.py could not read the body, the alert was taken for "maybe sent" (an
    unreadable answer) and tried again a second later, into the same limit. It is a rate limit
    whose Retry-After the route waits out; nothing is marked maybe sent."""
    from email.utils import format_datetime

    drop_articles(tmp_path / "wire", "floods", range(1))
    until = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    emu.inject(WEBHOOK, Fault.proxy_rate_limited(until), times=1000)
    run = await newswatch(emu)
    await run.wait_for(lambda: any(r.fault for r in emu.requests_for(WEBHOOK)), 10)
    row = None
    for _ in range(100):
        rows = [r for r in await run.engine.store.alerts() if r.route == "hook"]
        if rows and rows[0].state == "retry":
            row = rows[0]
            break
        await asyncio.sleep(0.05)
    assert row is not None, "the alert was not put back to wait"
    assert "rate limited" in (row.reason or ""), row.reason
    assert row.next_attempt_at is not None
    assert row.next_attempt_at - datetime.now(UTC) > timedelta(seconds=60)
    assert await run.engine.store.count_maybe_sent() == 0


async def test_a_lost_answer_retried_after_discords_nonce_window_is_not_posted_twice(
        newswatch: Start, tmp_path: Path) -> None:
    """Discord keeps a message's nonce for a few minutes only (the emulator's window, shortened
    here to 2 s). An alert whose answer was lost, then held back by a 5xx storm longer than
    that, was posted a second time by its retry. A retry now looks among the channel's last
    messages first."""
    async with DiscordEmulator(**world(nonce_window=2.0)) as emu, emu.patch_discord():
        drop_articles(tmp_path / "wire", "troops", range(1))
        emu.inject(MESSAGES, Fault.reset_after_receive(), times=1)  # created, answer lost
        emu.inject(MESSAGES, Fault.server_error(503), times=1000)  # then a 5xx storm
        run = await newswatch(emu)
        await run.wait_for(lambda: len(report_numbers(emu, "alerts")) == 1, 10)
        await asyncio.sleep(2.5)  # the storm outlasts the nonce window
        emu.clear_faults()

        async def delivered() -> bool:
            rows = [r for r in await run.engine.store.alerts() if r.route == "alerts"]
            return bool(rows) and rows[0].state == "delivered"

        for _ in range(150):
            if await delivered():
                break
            await asyncio.sleep(0.1)
        assert await delivered()
        await asyncio.sleep(0.3)
        assert report_numbers(emu, "alerts") == [0]
        (row,) = [r for r in await run.engine.store.alerts() if r.route == "alerts"]
        (message,) = emu.messages(emu.channel("alerts").id)
        assert row.remote_id == str(message.id)
        run.stop.set()
        await asyncio.wait_for(run.task, 15)
        assert emu.validate_all() == []


async def test_a_digest_whose_answer_was_lost_is_not_posted_twice_after_the_nonce_window(
        newswatch: Start, tmp_path: Path) -> None:
    """As for an alert (above): a digest's retry relied on the nonce alone, and after a storm
    longer than Discord keeps it, posted the digest a second time."""
    async with DiscordEmulator(**world(nonce_window=2.0)) as emu, emu.patch_discord():
        drop_articles(tmp_path / "wire", "sanctions", range(3))
        run = await newswatch(emu, channels={
            "alerts": emu.channel("alerts").id, "ops": emu.channel("ops").id,
            "hook": emu.channel("hooks").id,
            "desk": {"target": emu.channel("general").id, "mode": "digest",
                     "digest_every": "1d"}})

        async def rows(state: str, kind: str | None = None) -> int:
            return len([r for r in await run.engine.store.alerts(limit=1000)
                        if r.route == "desk" and r.state == state
                        and (kind is None or r.kind == kind)])

        for _ in range(200):
            if await rows("scheduled") == 3:
                break
            await asyncio.sleep(0.05)
        assert await rows("scheduled") == 3
        general = emu.channel("general").id
        emu.inject(MESSAGES, Fault.reset_after_receive(), times=1)  # created, answer lost
        emu.inject(MESSAGES, Fault.server_error(503), times=1000)  # then a 5xx storm
        await run.engine.digest_now("desk")
        await run.wait_for(lambda: len(emu.messages(general)) == 1, 10)
        await asyncio.sleep(2.5)  # the storm outlasts the nonce window
        emu.clear_faults()
        for _ in range(150):
            if await rows("delivered", "digest") == 1:
                break
            await asyncio.sleep(0.1)
        assert await rows("delivered", "digest") == 1
        await asyncio.sleep(0.3)
        assert len(emu.messages(general)) == 1
        run.stop.set()
        await asyncio.wait_for(run.task, 15)
        assert emu.validate_all() == []


async def test_a_digest_paused_between_its_parts_posts_each_part_once_on_resume(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path) -> None:
    """A webhook digest whose second part found the destination gone (403) paused the route;
    on resume it was posted again from its first part, which then showed twice. The parts that
    went out are now looked for first."""
    drop_articles(tmp_path / "wire", "floods", range(120))
    run = await newswatch(emu, channels={
        "alerts": emu.channel("alerts").id, "desk": emu.channel("general").id,
        "ops": emu.channel("ops").id,
        "hook": {"target": f"https://discord.com/api/webhooks/{HOOK_ID}/{HOOK_TOKEN}",
                 "mode": "digest", "digest_every": "1d"}})

    async def scheduled() -> int:
        return len([r for r in await run.engine.store.alerts(limit=1000)
                    if r.route == "hook" and r.state == "scheduled"])

    for _ in range(200):
        if await scheduled() == 120:
            break
        await asyncio.sleep(0.05)
    assert await scheduled() == 120
    emu.inject(WEBHOOK, Fault.slow(0.0), times=1)  # the first part goes out
    emu.inject(WEBHOOK, Fault.forbidden(50013), times=1)  # then the destination refuses
    await run.engine.digest_now("hook")
    await run.wait_for(lambda: bool(run.engine.delivery.paused_routes()), 10)
    hooks = emu.channel("hooks").id
    first = [m.embeds[0]["footer"]["text"] for m in emu.messages(hooks)]
    assert len(first) == 1 and "part 1/" in first[0]
    await run.engine.delivery.resume_route("hook")
    match = re.search(r"part 1/(\d+)", first[0])
    assert match is not None
    total = int(match[1])
    await run.wait_for(lambda: len(emu.messages(hooks)) >= total, 15)
    await asyncio.sleep(0.5)
    footers = [m.embeds[0]["footer"]["text"] for m in emu.messages(hooks)]
    assert len(footers) == total == len(set(footers))


class _EmptiedBucket(DiscordEmulator):
    """Answers the first send to ``path`` (a webhook's by default; its message made) saying
    its rate-limit bucket is empty for ``reset`` seconds, longer than a send's attempt may
    take."""

    def __init__(self, reset: float | str, path: str = "/webhooks/", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reset = reset
        self.path = path
        self.left = 1

    async def _handle_http(self, request: Any) -> Any:
        response = await super()._handle_http(request)
        if request.method == "POST" and self.path in request.path and self.left:
            self.left -= 1
            response.headers["X-RateLimit-Limit"] = "5"
            response.headers["X-RateLimit-Remaining"] = "0"
            response.headers["X-RateLimit-Reset-After"] = str(self.reset)
        return response


@contextlib.asynccontextmanager
async def _three_alerts_past_an_emptied_bucket(
        newswatch: Start, tmp_path: Path, *, path: str, topic: str, channel: str, route: str,
) -> AsyncIterator[tuple[DiscordEmulator, Any, list[Any]]]:
    """Three alerts to ``channel`` (route ``route``), the first send's answer (to ``path``)
    emptying its bucket for 2 s: each posted once, in order, all delivered."""
    async with _EmptiedBucket(reset=2.0, path=path, **world()) as emu, emu.patch_discord():
        drop_articles(tmp_path / "wire", topic, range(3))
        run = await newswatch(emu)
        await run.wait_for(lambda: len(report_numbers(emu, channel)) >= 3, 20)
        await asyncio.sleep(0.5)
        assert report_numbers(emu, channel) == [0, 1, 2]
        rows = [r for r in await run.engine.store.alerts() if r.route == route]
        assert {r.state for r in rows} == {"delivered"}
        yield emu, run, rows


async def test_a_webhook_answer_that_empties_its_bucket_leaves_the_webhook_usable(
        newswatch: Start, tmp_path: Path) -> None:
    """discord.py sleeps out an emptied bucket holding the webhook's lock; the send's
    timeout cut that sleep short and the lock was never released: one alert made (and then
    sent again), every later one waiting for ever, until the process ended."""
    async with _three_alerts_past_an_emptied_bucket(
            newswatch, tmp_path, path="/webhooks/", topic="floods", channel="hooks",
            route="hook") as (emu, run, _rows):
        # the first send's answer was read, not lost: nothing was sent in doubt
        assert await run.engine.store.count_maybe_sent() == 0
        # and the next send waited out the bucket behind the lock
        posts = emu.requests_for(WEBHOOK)
        assert len(posts) == 3
        assert emu.validate_all() == []


@pytest.mark.parametrize("reset", ["1e9", "inf", "nan"])
async def test_a_webhook_answer_asking_for_a_wait_of_ages_is_waited_out_at_the_cap(
        newswatch: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, reset: str) -> None:
    """A 200 answer whose X-RateLimit-Reset-After asked for years held the webhook's lock
    that long: every later send timed out behind it, for the life of the process. The wait
    is cut to the cap (the bot client's 30 s; 1 s here), said in the log."""
    monkeypatch.setattr(bot_sinks, "WEBHOOK_BUCKET_WAIT_MAX", 1.0)
    caplog.set_level(logging.WARNING, logger="newswatch")
    async with _EmptiedBucket(reset=reset, **world()) as emu, emu.patch_discord():
        drop_articles(tmp_path / "wire", "floods", range(3))
        run = await newswatch(emu)
        await run.wait_for(lambda: len(report_numbers(emu, "hooks")) >= 3, 20)
        await asyncio.sleep(0.5)
        assert report_numbers(emu, "hooks") == [0, 1, 2]
        assert len(emu.requests_for(WEBHOOK)) == 3
        assert await run.engine.store.count_maybe_sent() == 0
    said = [r.getMessage() for r in caplog.records if "asked to wait" in r.getMessage()]
    assert len(said) == 1 and "waiting 1 s" in said[0], said


async def test_a_channel_answer_that_empties_its_bucket_is_read_and_the_channel_stays_usable(
        newswatch: Start, tmp_path: Path) -> None:
    """discord.py's bot client sleeps out an emptied bucket on the way out of the request,
    after the answer is read. The send's timeout cut that sleep short: the answer was lost
    (the alert taken as sent in doubt, the channel read back to find it), and the bucket was
    left without its reset."""
    async with _three_alerts_past_an_emptied_bucket(
            newswatch, tmp_path, path="/channels/", topic="troops", channel="alerts",
            route="alerts") as (emu, _run, rows):
        # the first send's answer was read, not lost: nothing was sent in doubt
        first = emu.messages(emu.channel("alerts").id)[0]
        assert [r.attempts for r in rows if r.remote_id == str(first.id)] == [1]
        # and the next sends waited out the bucket (their timeouts cut the wait short, so
        # they looked before sending again): each alert was posted once
        assert len(posts_to(emu, "alerts")) == 3
        assert emu.validate_all() == []


async def test_a_send_cancelled_on_its_way_out_of_its_bucket_leaves_the_bucket_usable() -> None:
    """discord.py's bucket resets itself on a request's way out, in a sleep
    (``Ratelimit._refresh``) that a send's timeout could cancel between the sleep and the
    reset: the bucket then stayed empty, and with no reset time known (answers without
    rate-limit headers) every later send to the channel waited 30 s, longer than its own
    timeout, so the route never sent again."""
    from discord.http import Ratelimit

    bucket = Ratelimit(None)

    async def send_cancelled_on_the_way_out() -> None:
        me = asyncio.current_task()
        assert me is not None
        async with bucket:
            # lands on the next turn of the loop: in the reset's sleep if the exit sleeps
            asyncio.get_running_loop().call_soon(me.cancel)

    send = asyncio.ensure_future(send_cancelled_on_the_way_out())
    await asyncio.gather(send, return_exceptions=True)
    async with asyncio.timeout(5):  # stuck, this waited 30 s
        async with bucket:
            pass
    async with asyncio.timeout(5):
        async with bucket:
            pass


class _EchoingHook(DiscordEmulator):
    """Answers webhook sends with a message whose id is text ending in the webhook's token,
    which discord.py cannot read (as a proxy rewriting bodies, or an API change, would)."""

    async def _handle_http(self, request: Any) -> Any:
        response = await super()._handle_http(request)
        if request.method == "POST" and "/webhooks/" in request.path:
            assert isinstance(response, web.Response) and isinstance(response.body, bytes)
            body = json.loads(response.body)
            body["id"] = "request " + "-" * 100 + " for " + HOOK_TOKEN
            return web.Response(status=200, body=json.dumps(body).encode(),
                                headers={"Content-Type": "application/json"})
        return response


async def test_no_part_of_a_webhook_token_reaches_a_reason_or_a_log(
        newswatch: Start, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The text of an answer discord.py could not read was cut to 240 characters before the
    secrets were taken out: a token cut in two was no longer known for one, and its first
    part reached the log and the reason /alerts status shows."""
    async with _EchoingHook(**world()) as emu, emu.patch_discord():
        drop_articles(tmp_path / "wire", "floods", range(1))
        run = await newswatch(emu)
        await run.wait_for(lambda: any("unreadable answer from the webhook" in r.getMessage()
                                       for r in caplog.records), 20)
        reasons = [r.reason or "" for r in await run.engine.store.alerts()]
    fragment = HOOK_TOKEN[:12]
    assert not [r for r in reasons if fragment in r], reasons
    assert not [r.getMessage() for r in caplog.records if fragment in r.getMessage()]


class _ProxyRefusal(DiscordEmulator):
    """Answers the first send to ``where`` as a proxy in front of Discord would refuse it:
    403 with an HTML page, no Discord error code."""

    def __init__(self, where: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.where, self.left = where, 1

    async def _handle_http(self, request: Any) -> Any:
        if request.method == "POST" and self.where in request.path and self.left:
            self.left -= 1
            return web.Response(status=403, body=b"<html>Forbidden by proxy</html>",
                                headers={"Content-Type": "text/html"})
        return await super()._handle_http(request)


@pytest.mark.parametrize(("where", "topic", "channel"), [
    ("/channels/", "troops", "alerts"), ("/webhooks/", "floods", "hooks")],
    ids=["channel", "webhook"])
async def test_a_refusal_without_discords_code_is_retried_not_a_pause(
        newswatch: Start, tmp_path: Path, where: str, topic: str, channel: str) -> None:
    """A proxy's or a firewall's 403 (an HTML page, no Discord error code) paused the route
    and held its alerts until someone resumed it by hand, as Discord's own "Missing
    Permissions" does."""
    async with _ProxyRefusal(where, **world()) as emu, emu.patch_discord():
        drop_articles(tmp_path / "wire", topic, range(2))
        run = await newswatch(emu)
        await run.wait_for(lambda: len(report_numbers(emu, channel)) >= 2, 20)
        assert report_numbers(emu, channel) == [0, 1]
        assert run.engine.delivery.paused_routes() == {}


class _NoIdAnswers(DiscordEmulator):
    """Carries out every webhook send (the message is made) but answers with a message
    without its id, which discord.py cannot read (a proxy rewriting bodies, an API change)."""

    async def _handle_http(self, request: Any) -> Any:
        response = await super()._handle_http(request)
        if request.method == "POST" and "/webhooks/" in request.path and response.status == 200:
            assert isinstance(response, web.Response) and isinstance(response.body, bytes)
            body = json.loads(response.body)
            body.pop("id", None)
            return web.Response(status=200, body=json.dumps(body).encode(),
                                headers={"Content-Type": "application/json"})
        return response


async def test_a_webhooks_answer_that_says_made_but_does_not_read_is_taken_as_posted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With webhooks only, nothing can look in the channel for an earlier send: an alert whose
    2xx answers never read (a proxy rewriting bodies) was "maybe sent" and posted again at
    every retry (52 copies in 15 s here). The webhook said it made it: it is delivered, its
    message id unknown."""
    monkeypatch.setattr(bot_sinks, "DiscordSink",
                        functools.partial(bot_sinks.DiscordSink, timeout=0.75))
    async with _NoIdAnswers(**world()) as emu, emu.patch_discord():
        drop_articles(tmp_path / "wire", "floods", range(2))
        data = config(emu)
        data["discord"].pop("notices", None)
        data["rules"] = [{"name": "floods", "query": "floods", "channel": "hook"}]
        data["channels"] = {"hook": f"https://discord.com/api/webhooks/{HOOK_ID}/{HOOK_TOKEN}"}
        cfg = parse_config(data, base_dir=tmp_path)
        async with aiohttp.ClientSession() as session, open_engine(
                cfg, sinks=_webhook_sinks(cfg, session), start=False,
                default_sink=ConsoleSink()) as engine:
            engine.delivery.base_backoff = 0.05
            engine.delivery.max_backoff = 0.2
            engine.delivery.poll_interval = 0.1
            await engine.start()
            for _ in range(200):
                rows = await engine.store.alerts()
                if len(rows) == 2 and all(r.state == "delivered" for r in rows):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # time for more copies, had there been more
            rows = await engine.store.alerts()
            in_doubt = await engine.store.count_maybe_sent()
            await engine.stop()
    assert Counter(report_numbers(emu, "hooks")) == {0: 1, 1: 1}
    assert {r.state for r in rows} == {"delivered"} and in_doubt == 0



async def before_quiet_hours(emu: DiscordEmulator, newswatch: Start, second: int, *,
                             backoff: float) -> tuple[Any, Any]:
    """newswatch with the alerts channel quiet from 22:00 to 07:00, its delivery's clock at
    21:59:``second`` and its backoff ``backoff`` seconds; (the run, the clock)."""
    from watchers.schedule import ManualClock

    clock = ManualClock(datetime(2024, 5, 1, 21, 59, second, tzinfo=UTC))
    run = await newswatch(emu, channels={
        "alerts": {"target": emu.channel("alerts").id, "quiet_hours": "22:00-07:00"},
        "desk": emu.channel("general").id, "ops": emu.channel("ops").id,
        "hook": emu.channel("hooks").id})
    run.engine.delivery.clock = clock
    run.engine.delivery.base_backoff = run.engine.delivery.max_backoff = backoff
    return run, clock


async def test_an_alert_whose_answer_was_lost_just_before_quiet_hours_shows_once(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path) -> None:
    """Discord made the message and its answer came too late; the retry fell inside quiet
    hours. The lost answer was a plain failure, so the retry was kept for the quiet-hours
    digest, which showed the alert a second time."""
    run, clock = await before_quiet_hours(emu, newswatch, 50, backoff=0.3)
    channel = emu.channel("alerts").id
    emu.inject(MESSAGES, Fault.slow(2.0, after_processing=True), times=1)  # made, answered late
    (tmp_path / "wire" / "a.txt").write_text("Troops report 00001\nTroops seen.\n")
    await run.wait_for(lambda: len(emu.messages(channel)) == 1, 15)
    store = run.engine.store
    for _ in range(200):  # the sink gave up waiting: the attempt may have posted
        if await store.count_maybe_sent() == 1:
            break
        await asyncio.sleep(0.05)
    assert await store.count_maybe_sent() == 1
    clock.set(datetime(2024, 5, 1, 22, 0, 5, tzinfo=UTC))  # the retry comes in quiet hours
    run.engine.delivery.wake()
    await counted(store, {"delivered": 1}, tries=200)
    # sent again at once, where the sink found the message it made; nothing kept
    assert await store.alert_counts(routes=["alerts"]) == {"delivered": 1}
    clock.set(datetime(2024, 5, 2, 7, 0, 5, tzinfo=UTC))
    run.engine.delivery.wake()
    await asyncio.sleep(0.5)
    assert len(emu.messages(channel)) == 1  # no digest shows it again
    assert emu.validate_all() == []


async def counted(store: Any, counts: dict[str, int], tries: int) -> None:
    """Wait (``tries`` × 50 ms at most) until the alerts route's counts are ``counts``; the
    caller asserts them after."""
    for _ in range(tries):
        if await store.alert_counts(routes=["alerts"]) == counts:
            return
        await asyncio.sleep(0.05)


async def test_a_failed_look_for_an_earlier_message_is_no_lost_send(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path) -> None:
    """Nothing was ever posted (the first try refused before Discord); the retry's look among
    the channel's messages failed. That read was taken for a lost send: the alert was counted
    maybe sent for good and posted at once inside quiet hours instead of being kept."""
    run, clock = await before_quiet_hours(emu, newswatch, 0, backoff=2.0)
    channel = emu.channel("alerts").id
    emu.inject(MESSAGES, Fault("status", 403, 0, "Forbidden", name="403/none"), times=1)
    emu.inject("GET /channels/{channel_id}/messages", Fault.server_error(500), times=1)
    drop_articles(tmp_path / "wire", "troops", range(1))
    store = run.engine.store
    await run.wait_for(lambda: not emu.pending_faults, 15)
    await asyncio.sleep(0.9)  # the second try gives up (its look failed)
    assert emu.messages(channel) == [] and await store.count_maybe_sent() == 0
    clock.set(datetime(2024, 5, 1, 22, 0, 5, tzinfo=UTC))  # the next try falls in quiet hours
    run.engine.delivery.wake()
    await counted(store, {"scheduled": 1}, tries=80)
    assert await store.alert_counts(routes=["alerts"]) == {"scheduled": 1}
    assert emu.messages(channel) == [] and await store.count_maybe_sent() == 0
