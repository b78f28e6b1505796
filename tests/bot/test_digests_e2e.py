"""Quiet channels on Discord, for real: a digest route posts one digest message at its time; quiet
hours hold alerts for one digest while a critical alert breaks through; past the hourly cap the
rest fold into "and N more on this route"; a digest whose answer is lost is retried into exactly
one message; a digest too big for one message is split between stories; /digest now and
/alerts status. newswatch runs in-process (the real discord.py) against the emulator with a
ManualClock, so the tests travel in time instead of sleeping, and every request is checked
against Discord's OpenAPI spec."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.bot.conftest import Running, bot_config, on_clock, running_with
from tests.fakes.discord_emulator import DiscordEmulator, EmuMessage
from watchers.schedule import ManualClock

HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
START = HOUR + timedelta(minutes=30)  # the clock's start: half past, inside an hour
NEXT_HOUR = HOUR + timedelta(hours=1)
POST_MESSAGE = "POST /channels/{channel_id}/messages"

# Distinct events, so each is a story of its own.
TITLES = [
    "Troops gather near Yelnya as satellite images emerge",
    "Parliament debates funding for troops after a long session",
    "Navy exercise: troops board ships in a Baltic harbour",
    "Troops withdraw from northern village, mayor says",
    "Election officials count ballots while troops keep order",
]


@asynccontextmanager
async def newswatch(emu: DiscordEmulator, tmp_path: Path, clock: ManualClock,
                    route: dict[str, Any], rules: list[dict[str, Any]] | None = None
                    ) -> AsyncIterator[Running]:
    """newswatch whose alerts route has the settings ``route``, reading a folder that starts
    empty, with every schedule on ``clock``."""
    folder = tmp_path / "news"
    folder.mkdir()
    data = bot_config(
        emu, tmp_path,
        channels={"alerts": {"target": emu.channel("alerts").id, **route}},
        # a big digest is the point here, not the per-poll flood guard
        # files are read as soon as they are written (no settle wait): publish() polls at once
        sources=[{"name": "news", "type": "folder", "path": "news", "every": "1h",
                  "max_alerts_per_poll": 100, "settle": "0s"}],
        rules=rules or [{"name": "troops", "query": "troops", "severity": "high"}],
    )
    async with running_with(emu, tmp_path, data, folder, on_clock(clock)) as run:
        yield run


async def publish(run: Running, titles: list[str], tag: str = "a") -> None:
    """Articles appear in the folder; newswatch reads them and delivers what is due."""
    for i, title in enumerate(titles):
        doc = {"title": title, "text": f"{title}. More details in the body.",
               "url": f"https://news.example/{tag}/{i}", "published": START.isoformat()}
        (run.seeds / f"{tag}-{i:03d}.json").write_text(json.dumps(doc))
    await run.engine.run_once()
    await run.engine.delivery.drain()


async def settle(run: Running, count: int) -> list[EmuMessage]:
    """Wait for ``count`` messages in the alerts channel; a duplicate would arrive meanwhile."""
    await run.engine.delivery.drain()
    await run.wait_for(lambda: len(run.emu.messages(run.alerts_channel)) >= count)
    await asyncio.sleep(0.2)
    return run.emu.messages(run.alerts_channel)


async def all_scheduled(run: Running, count: int) -> None:
    """Wait until ``count`` alerts are kept for the digest. The background poll may record some
    of the articles after publish() drained; an alert still pending when the clock moves on
    would be kept for the digest after next."""
    for _ in range(200):
        await run.engine.delivery.drain()
        if (await run.engine.store.alert_counts()).get("scheduled", 0) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not all {count} alerts were scheduled: "
                         f"{await run.engine.store.alert_counts()}")


async def delivered_digest(run: Running) -> Any:
    """The route's digest row once it is delivered (drained now and then meanwhile)."""
    for _ in range(200):
        await run.engine.delivery.drain()
        rows = await run.engine.store.alerts(kind="digest")
        if rows and rows[0].state == "delivered":
            return rows[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"the digest was not delivered: {rows!r}")


def digest_embed(msg: EmuMessage) -> dict[str, Any]:
    (embed,) = msg.embeds
    assert embed["footer"]["text"].startswith("newswatch digest ")
    return embed


def assert_quiet(msg: EmuMessage) -> None:
    assert not msg.content and msg.allowed_mentions == {"parse": []}
    assert not msg.pings_everyone() and not msg.pinged_role_ids() and not msg.pinged_user_ids()


async def test_a_digest_route_posts_one_digest_at_its_time(emu: DiscordEmulator,
                                                           tmp_path: Path) -> None:
    clock = ManualClock(START)
    async with newswatch(emu, tmp_path, clock, {"mode": "digest", "digest_every": "1h"}) as run:
        await publish(run, TITLES[:3])
        await all_scheduled(run, 3)
        await asyncio.sleep(0.2)
        assert emu.messages(run.alerts_channel) == []  # kept for the digest
        status = await (await emu.send_interaction("alerts status")).final_message()
        fields = {f["name"]: f["value"] for f in status.embeds[0]["fields"]}
        due = int(NEXT_HOUR.timestamp())
        assert fields["Kept for digests"] == (f"`alerts` · 3 kept · next digest <t:{due}:R> "
                                              f"(<t:{due}:t>)")
        clock.set(NEXT_HOUR - timedelta(seconds=1))
        await run.engine.delivery.drain()
        await asyncio.sleep(0.2)
        assert emu.messages(run.alerts_channel) == []  # not before its time
        clock.set(NEXT_HOUR)
        (msg,) = await settle(run, 1)
        embed = digest_embed(msg)
        assert embed["title"].startswith("Digest · 3 stories · since ")
        lines = [x for x in embed["description"].split("\n") if x.startswith("• ")]
        assert len(lines) == 3
        for i, title in enumerate(TITLES[:3]):
            assert sum(f"](https://news.example/a/{i})" in x for x in lines) == 1
            assert sum(title.split(",")[0].split(":")[0] in x for x in lines) == 1
        assert_quiet(msg)
        assert msg.nonce
        (row,) = await run.engine.store.alerts(kind="digest")
        assert row.state == "delivered" and row.remote_id == str(msg.id)
        assert (await run.engine.store.alert_counts()).get("digested") == 3
    assert emu.validate_all() == []


async def test_quiet_hours_hold_alerts_and_a_critical_one_breaks_through(
        emu: DiscordEmulator, tmp_path: Path) -> None:
    clock = ManualClock(START)
    h = START.hour
    route = {"quiet_hours": f"{(h - 1) % 24:02d}:00-{(h + 1) % 24:02d}:00",
             "break_through": "critical"}
    rules = [{"name": "troops", "query": "troops", "severity": "high"},
             {"name": "missiles", "query": "missiles", "severity": "critical"}]
    async with newswatch(emu, tmp_path, clock, route, rules) as run:
        await publish(run, [*TITLES[:2], "Missiles strike an airfield near the capital"])
        (urgent,) = await settle(run, 1)
        await all_scheduled(run, 2)
        (embed,) = urgent.embeds
        assert "Missiles" in embed["title"] and "critical" in embed["footer"]["text"]
        end = START.replace(minute=0) + timedelta(hours=1)
        clock.set(end - timedelta(minutes=1))
        await run.engine.delivery.drain()
        await asyncio.sleep(0.2)
        assert len(emu.messages(run.alerts_channel)) == 1  # still quiet
        clock.set(end)
        first, digest = await settle(run, 2)
        assert first.id == urgent.id
        embed = digest_embed(digest)
        assert embed["title"].startswith("Quiet hours digest · 2 stories")
        assert "Troops gather" in embed["description"] and "Parliament" in embed["description"]
        assert "Missiles" not in embed["description"]
        assert_quiet(digest)
    assert emu.validate_all() == []


async def test_past_the_cap_alerts_fold_into_and_n_more(emu: DiscordEmulator,
                                                        tmp_path: Path) -> None:
    clock = ManualClock(START)
    async with newswatch(emu, tmp_path, clock, {"max_per_hour": 2}) as run:
        await publish(run, TITLES)
        alerts = await settle(run, 2)
        await all_scheduled(run, 3)
        assert len(alerts) == 2
        posted = {m.embeds[0]["url"] for m in alerts}
        clock.set(NEXT_HOUR)
        messages = await settle(run, 3)
        assert messages[:2] == alerts and len(messages) == 3
        embed = digest_embed(messages[2])
        assert embed["title"] == "… and 3 more on this route (past the hourly cap)"
        folded = {u for u in (f"https://news.example/a/{i}" for i in range(5))
                  if f"]({u})" in embed["description"]}
        # every alert shown once: two on their own, three in the digest
        assert len(folded) == 3 and folded.isdisjoint(posted)
        assert folded | posted == {f"https://news.example/a/{i}" for i in range(5)}
        assert_quiet(messages[2])
    assert emu.validate_all() == []


async def test_a_digest_whose_answer_is_lost_posts_once(emu: DiscordEmulator,
                                                        tmp_path: Path) -> None:
    clock = ManualClock(START)
    async with newswatch(emu, tmp_path, clock, {"mode": "digest", "digest_every": "1h"}) as run:
        await publish(run, TITLES[:2])
        await all_scheduled(run, 2)
        emu.inject(POST_MESSAGE, "reset_after_receive", times=1)
        clock.set(NEXT_HOUR)
        await delivered_digest(run)  # the retry comes after a short backoff
        (msg,) = await settle(run, 1)
        posts = [r for r in emu.requests_for(POST_MESSAGE)
                 if r.params.get("channel_id") == str(run.alerts_channel)]
        # The retry looks among the channel's last messages first (as an alert's does: the
        # nonce alone lasts only minutes on Discord), finds the part posted and posts no more.
        assert len(posts) == 1 and posts[0].fault == "reset_after_receive"
        assert emu.requests_for("GET /channels/{channel_id}/messages")
        nonces = {r.body["nonce"] for r in posts}
        assert all(r.body.get("enforce_nonce") for r in posts)
        (row,) = await run.engine.store.alerts(kind="digest")
        assert row.state == "delivered" and row.remote_id == str(msg.id)
        assert row.nonce not in nonces  # the part's nonce is derived from the digest's
        assert "2 stories" in digest_embed(msg)["title"]
    assert emu.validate_all() == []


def long_titles(n: int) -> list[str]:
    rng = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = []
    for i in range(n):
        words = ["".join(rng.choice(letters) for _ in range(rng.randint(5, 9)))
                 for _ in range(24)]
        out.append(f"Troops zq{i:03d}x " + " ".join(words))
    return out


async def test_a_big_digest_is_split_between_stories(emu: DiscordEmulator,
                                                     tmp_path: Path) -> None:
    clock = ManualClock(START)
    titles = long_titles(40)
    async with newswatch(emu, tmp_path, clock, {"mode": "digest", "digest_every": "1h"}) as run:
        await publish(run, titles)
        await all_scheduled(run, len(titles))
        clock.set(NEXT_HOUR)
        row = await delivered_digest(run)
        await asyncio.sleep(0.2)
        parts = emu.messages(run.alerts_channel)
        assert len(parts) > 1 and row.remote_id == str(parts[0].id)
        text = ""
        for n, msg in enumerate(parts, start=1):
            embed = digest_embed(msg)
            assert embed["footer"]["text"].startswith(f"newswatch digest {row.id} · part "
                                                      f"{n}/{len(parts)}")
            assert len(embed["description"]) <= 4096
            assert all(x.startswith(("• ", "**`", "Kept since")) or x == ""
                       for x in embed["description"].split("\n"))
            assert_quiet(msg)
            text += embed["description"] + "\n"
        for i in range(len(titles)):  # every story once, none cut
            assert text.count(f"zq{i:03d}x") == 1
        assert len({m.nonce for m in parts}) == len(parts)
    assert emu.validate_all() == []


async def test_digest_now_sends_what_waits(emu: DiscordEmulator, tmp_path: Path) -> None:
    clock = ManualClock(START)
    route = {"mode": "digest", "digest_at": ["03:00"], "timezone": "Europe/Kyiv"}
    async with newswatch(emu, tmp_path, clock, route) as run:
        await publish(run, TITLES[:2])
        choices = await emu.send_autocomplete("digest now", {"route": "al"}, focused="route")
        assert [c["value"] for c in choices] == ["alerts"]
        refused = await (await emu.send_interaction("digest now", {"route": "alerts"},
                                                    user="member")).final_message()
        assert refused.ephemeral and "Manage Server" in refused.content
        unknown = await (await emu.send_interaction("digest now", {"route": "nope"})
                         ).final_message()
        assert unknown.ephemeral and "no route named" in unknown.content
        assert "nope" in unknown.content and "alerts" in unknown.content
        assert emu.messages(run.alerts_channel) == []
        said = await (await emu.send_interaction("digest now", {"route": "alerts"})
                      ).final_message()
        assert not said.ephemeral and "2 alert(s)" in said.content
        await delivered_digest(run)
        (msg,) = [m for m in emu.messages(run.alerts_channel) if m.embeds]
        assert digest_embed(msg)["title"].startswith("Digest · 2 stories")
        again = await (await emu.send_interaction("digest now", {"route": "alerts"})
                       ).final_message()
        assert again.ephemeral and "Nothing is waiting" in again.content
    assert emu.validate_all() == []


async def test_digest_now_asked_three_times_at_once_sends_and_says_it_once(
        emu: DiscordEmulator, tmp_path: Path) -> None:
    """Two admins clicking together: each answer counted the alerts the first had made due
    and not yet made a digest, so all three said they were sending them."""
    clock = ManualClock(START)
    route = {"mode": "digest", "digest_at": ["03:00"], "timezone": "Europe/Kyiv"}
    async with newswatch(emu, tmp_path, clock, route) as run:
        await publish(run, TITLES[:3])
        await all_scheduled(run, 3)
        asked = await asyncio.gather(*[emu.send_interaction("digest now", {"route": "alerts"})
                                       for _ in range(3)])
        said = [(await a.final_message()).content for a in asked]
        await delivered_digest(run)
        digests = [m for m in emu.messages(run.alerts_channel) if m.embeds]
    assert len(digests) == 1
    assert digest_embed(digests[0])["title"].startswith("Digest · 3 stories")
    assert sum("3 alert(s)" in s for s in said) == 1, said
    assert sum("Nothing is waiting" in s for s in said) == 2, said
    assert emu.validate_all() == []
