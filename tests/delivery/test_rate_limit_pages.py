"""429s that discord.py does not wait out itself (a proxy's or Cloudflare's page, a JSON 429
without ``Via``, Discord's JSON without a number for ``retry_after``), on the bot's channels and
posts as on webhooks: each is a rate limit its route waits out by the answer's Retry-After, its
reason names the page briefly, and none is taken for "maybe sent" (a 429 makes nothing)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
from aiohttp import web

from bot.sinks import ChannelTarget, DiscordSink
from tests.bot.conftest import TOKEN
from tests.delivery.articles import MESSAGES, WEBHOOK, drop_articles
from tests.delivery.conftest import Start, world
from tests.fakes.discord_emulator import (
    ChannelSpec,
    DiscordEmulator,
    Fault,
    RecordedRequest,
    default_guild,
    run_client,
)
from watchers.config import RuleConfig
from watchers.delivery import Alert
from watchers.errors import TransientDeliveryError, UncertainDeliveryError
from watchers.models import Article
from watchers.rules import match_query

pytestmark = pytest.mark.timeout(60)

TITLE = "Access denied | discord.com used Cloudflare to restrict access"
# Cloudflare's "Error 1015" page (the start of it), as it answers a client it has banned
BAN_PAGE = (
    '<!DOCTYPE html>\n<!--[if lt IE 7]> <html class="no-js ie6 oldie" lang="en-US"> '
    "<![endif]-->\n<head>\n<title>" + TITLE.replace("|", "&#124;") + "</title>\n"
    '<meta charset="UTF-8" /><meta http-equiv="Content-Type" content="text/html; '
    'charset=UTF-8" /><link rel="stylesheet" id="cf_styles-css" '
    'href="/cdn-cgi/styles/cf.errors.css" />' + " " * 50 + "</head><body><h1>Error 1015</h1>"
    "<h2>You are being rate limited</h2></body></html>")

# Answers to a fault named "page:<key>": (body, content type, headers).
ANSWERS: dict[str, tuple[str, str, dict[str, str]]] = {
    "cloudflare-ban": (BAN_PAGE, "text/html", {"Retry-After": "3600"}),
    # Cloudflare's own JSON 429: no Via header, so discord.py raises it as it is
    "json-without-via": (json.dumps({"message": "You are being blocked from accessing our API "
                                     "temporarily due to exceeding our rate limits frequently.",
                                     "retry_after": 60, "global": False, "code": 0}),
                         "application/json", {"Retry-After": "60"}),
    # Discord-shaped (Via) but without a number for retry_after: discord.py fails on the body
    "retry_after-missing": (json.dumps({"message": "You are being rate limited.",
                                        "global": False, "code": 0}),
                            "application/json", {"Via": "1.1 google", "Retry-After": "60"}),
    "retry_after-string": (json.dumps({"message": "You are being rate limited.",
                                       "retry_after": "60", "global": False}),
                           "application/json", {"Via": "1.1 google", "Retry-After": "60"}),
    # JSON as Python writes it (not JSON): discord.py slept "nan seconds", a timer that broke
    # the event loop's own (timeouts never fired), and the route stayed "sending" for good
    "retry_after-nan": ('{"message": "You are being rate limited.", "retry_after": NaN, '
                        '"global": false}', "application/json",
                        {"Via": "1.1 google", "Retry-After": "60"}),
}


def page(key: str) -> Fault:
    return Fault("status", 429, name=f"page:{key}")


class _Pages(DiscordEmulator):
    """The emulator, answering a fault named ``page:<key>`` with ``ANSWERS[key]``."""

    def _fault_response(self, rec: RecordedRequest, fault: Fault) -> web.Response:
        if not fault.name.startswith("page:"):
            return super()._fault_response(rec, fault)
        body, kind, headers = ANSWERS[fault.name.removeprefix("page:")]
        rec.status, rec.response = 429, body
        # (the type exactly as Discord writes it: discord.py reads JSON by it, charset-less)
        return web.Response(status=429, body=body.encode(),
                            headers={"Content-Type": kind, **headers})


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    async with _Pages(**world()) as e, e.patch_discord():
        yield e


def asked(emu: DiscordEmulator, route: str) -> int:
    """How many sends the route's destination was asked for."""
    if route == "hook":
        return len([r for r in emu.requests_for(WEBHOOK) if r.method == "POST"])
    cid = str(emu.channel(route).id)
    return len([r for r in emu.requests_for(MESSAGES) if r.params.get("channel_id") == cid])


async def waiting(run: Any, route: str) -> Any:
    """The route's first alert once it is put back to wait (or fails the test)."""
    for _ in range(200):
        rows = sorted((r for r in await run.engine.store.alerts() if r.route == route),
                      key=lambda r: r.id)
        if rows and rows[0].state == "retry":
            return rows[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no alert of route {route} was put back to wait")


async def settled(run: Any, route: str) -> Any:
    """The route's first alert, a second after it was put back to wait: time enough for the
    route's own backoff (0.05 s to 0.4 s here) to have tried again, had it not waited."""
    await waiting(run, route)
    await asyncio.sleep(1.0)
    return await waiting(run, route)


def waits_at_least(row: Any, seconds: float) -> bool:
    return (row.next_attempt_at is not None
            and row.next_attempt_at - datetime.now(UTC) > timedelta(seconds=seconds))


async def test_a_cloudflare_ban_page_on_a_bot_channel_is_waited_out_and_named_by_its_title(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path) -> None:
    """Cloudflare's "Error 1015" page (429, Retry-After: 3600) on a bot channel: the route
    ignored its Retry-After and asked again on its own backoff (5 requests in 20 s), and
    /alerts status read "rate limited: 429 <!DOCTYPE html> ..." (300 characters of markup).
    The route now waits the hour out, asking once, and the reason names the page's title."""
    drop_articles(tmp_path / "wire", "troops", range(2))
    emu.inject(MESSAGES, page("cloudflare-ban"), times=1000)
    run = await newswatch(emu)
    row = await settled(run, "alerts")
    assert asked(emu, "alerts") == 1, "the route asked again inside the page's Retry-After"
    assert waits_at_least(row, 50 * 60), row.next_attempt_at
    assert row.reason == f"rate limited: 429 {TITLE}", row.reason
    assert await run.engine.store.count_maybe_sent() == 0
    status = await (await emu.send_interaction("alerts status")).final_message(timeout=10)
    line = next(x for x in status.text.splitlines() if x.startswith("route alerts backing off"))
    why = line.split(" · ")[0]  # (the rest: failures in a row, alerts waiting, next attempt)
    assert "Access denied" in why and "<" not in why, line


@pytest.mark.parametrize("retry_after", ["120", "date"], ids=["seconds", "http-date"])
async def test_a_proxys_html_429_on_a_bot_channel_is_waited_out_like_a_webhooks(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path, retry_after: str) -> None:
    """A proxy's HTML 429 asking for two minutes was asked again 13 times in 4 s on a bot
    channel (its Retry-After never read there), while a webhook route waited it out. Both
    routes now wait it out, written as seconds or as an HTTP date."""
    if retry_after == "date":
        retry_after = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    drop_articles(tmp_path / "wire", "troops", range(1))
    drop_articles(tmp_path / "wire", "floods", range(5, 6))
    emu.inject(MESSAGES, Fault.proxy_rate_limited(retry_after), times=1000)
    emu.inject(WEBHOOK, Fault.proxy_rate_limited(retry_after), times=1000)
    run = await newswatch(emu)
    for route in ("alerts", "hook"):
        row = await settled(run, route)
        assert asked(emu, route) == 1, f"route {route} asked again inside the Retry-After"
        assert waits_at_least(row, 60), (route, row.next_attempt_at)
        assert "rate limited" in (row.reason or "") and "<" not in (row.reason or ""), row.reason
    assert await run.engine.store.count_maybe_sent() == 0


async def test_a_json_429_without_via_is_waited_out_on_either_kind_of_route(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path) -> None:
    """Cloudflare's JSON 429 (no ``Via`` header: discord.py raises it as it is) with
    Retry-After: 60 was retried on the route's own backoff, on a bot channel and on a webhook
    alike. Both now wait the minute out."""
    drop_articles(tmp_path / "wire", "troops", range(1))
    drop_articles(tmp_path / "wire", "floods", range(5, 6))
    emu.inject(MESSAGES, page("json-without-via"), times=1000)
    emu.inject(WEBHOOK, page("json-without-via"), times=1000)
    run = await newswatch(emu)
    for route in ("alerts", "hook"):
        row = await settled(run, route)
        assert asked(emu, route) == 1, f"route {route} asked again inside the Retry-After"
        assert waits_at_least(row, 30), (route, row.next_attempt_at)
        assert "rate limited" in (row.reason or "") and "blocked" in (row.reason or "")
    assert await run.engine.store.count_maybe_sent() == 0


@pytest.mark.parametrize("key", ["retry_after-missing", "retry_after-string", "retry_after-nan"])
async def test_a_429_whose_body_does_not_read_on_a_bot_channel_is_a_limit_not_maybe_sent(
        emu: DiscordEmulator, newswatch: Start, tmp_path: Path, key: str) -> None:
    """Discord's 429 without a number for ``retry_after`` (missing, or a string) on a bot
    channel: discord.py failed on the body, and the alert was marked "maybe sent" ("unreadable
    answer from Discord: KeyError: 'retry_after'") and tried again at once, though a 429 makes
    nothing. It is now a rate limit waited out by the answer's Retry-After, nothing in doubt."""
    drop_articles(tmp_path / "wire", "troops", range(1))
    emu.inject(MESSAGES, page(key), times=1000)
    run = await newswatch(emu)
    row = await settled(run, "alerts")
    assert await run.engine.store.maybe_sent(row.id) is False, row.reason
    assert asked(emu, "alerts") == 1, "the route asked again inside the Retry-After"
    assert waits_at_least(row, 30), row.next_attempt_at
    assert row.reason == "rate limited by Discord (429 in a body that could not be read)"


FORUM = default_guild().id + 20


async def test_a_forum_posts_429_whose_body_does_not_read_is_a_limit_not_maybe_sent() -> None:
    """A forum post (no nonce) answered by a 429 without ``retry_after``: it was taken for
    "maybe sent" (an unreadable answer) and retried at once. It is now a rate limit with the
    answer's Retry-After."""
    guild = default_guild()
    guild.channels.append(ChannelSpec(FORUM, "news-forum", type=15, position=3,
                                      guild_id=guild.id))
    article = Article(id="a1", source="Reuters", url="https://reuters.example/1",
                      title="Troops cross the border", text="Troops were seen at dawn.",
                      published=datetime(2022, 2, 24, 4, 0, tzinfo=UTC))
    found = match_query("troops", article)
    assert found is not None
    alert = Alert(id=1, route="alerts", nonce="alert-nonce-1", attempt=1, article=article,
                  matches=(found,), rules=(RuleConfig(name="troops", query="troops"),))
    client = discord.Client(intents=discord.Intents(guilds=True), guild_ready_timeout=0.05,
                            max_ratelimit_timeout=30.0)
    async with (_Pages(token=TOKEN, guilds=[guild]) as emu, emu.patch_discord(),
                run_client(client, emu, token=TOKEN), aiohttp.ClientSession() as session):
        sink = DiscordSink({"alerts": ChannelTarget(FORUM)}, client=client, session=session,
                           timeout=5)
        emu.inject("POST /channels/{channel_id}/threads", page("retry_after-missing"))
        with pytest.raises(TransientDeliveryError) as refused:
            await sink.deliver(alert)
    assert not isinstance(refused.value, UncertainDeliveryError), str(refused.value)
    assert refused.value.retry_after == 60.0, str(refused.value)
    assert emu.threads(FORUM) == []
