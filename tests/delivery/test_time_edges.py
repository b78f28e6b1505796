"""Routes that speak at their own times, at the edges: a poll that brings more than a source's
``max_alerts_per_poll`` to a digest route or to a route in quiet hours, through the real engine,
a folder source, a SQLite file (or PostgreSQL) and a clock that travels."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.embeds import delivery_embed
from tests.fakes.feed_server import FeedServer, Route, rss
from tests.fakes.sinks import RecordingSink
from tests.roles._support import eventually
from watchers.config import Config, RouteConfig, parse_config
from watchers.delivery import MUTED_REASON, Alert, Digest
from watchers.engine import open_engine
from watchers.errors import ConfigError
from watchers.schedule import ManualClock, in_quiet_hours
from watchers.service import PollReport

NIGHT = datetime(2024, 5, 1, 23, 0, tzinfo=UTC)
# Twelve unrelated events (each its own story), each with troops in it.
HEADLINES = (
    "Troops mass near Kharkiv as talks stall",
    "Flood waters reach Venice museum vaults; troops fill sandbags",
    "Central bank raises rates while troops guard the mint",
    "Wildfire forces evacuation of Canadian mining town, troops help",
    "Chess champion resigns title after cheating row at troops gala",
    "Lagos port strike ends as troops leave the docks",
    "Volcano erupts near Quito; troops clear the villages",
    "Hanoi metro opens its second line with troops on parade",
    "Oslo hosts whaling summit as protesters confront troops",
    "Perth heatwave breaks records; troops deliver water",
    "Tunis elections delayed while troops patrol polling stations",
    "Dhaka garment factories reopen after troops end curfew",
)


def config(tmp_path: Path, route: dict[str, Any], per_poll: int = 5, *,
           storage: dict[str, str] | None = None,
           rules: list[dict[str, Any]] | None = None) -> Config:
    (tmp_path / "ap").mkdir(exist_ok=True)
    return parse_config({
        "storage": storage or {"path": "nw.db"},
        "channels": {"alerts": {"target": 1, "stories": "off", **route}},
        "sources": [{"name": "ap", "type": "folder", "path": "ap", "settle": 0,
                     "max_alerts_per_poll": per_poll}],
        "rules": rules or [{"name": "troops", "query": "troops"}],
    }, base_dir=tmp_path)


def drop(tmp_path: Path, n: int) -> list[str]:
    """The first ``n`` headlines, one file each."""
    for i, title in enumerate(HEADLINES[:n]):
        (tmp_path / "ap" / f"{i}.json").write_text(json.dumps({
            "title": title, "text": f"{title}. Reported at {i} past eleven.",
            "date": (NIGHT - timedelta(minutes=i)).isoformat()}))
    return list(HEADLINES[:n])


async def test_a_digest_route_gets_every_article_of_a_big_poll_in_its_digest(
        tmp_path: Path) -> None:
    """A digest route posts one digest, never a message per alert, so the poll's cap (a guard
    against a flood of messages) has nothing to guard there: it left all but five of a poll's
    twelve articles out of the morning digest, and posted a summary of them at 23:00."""
    clock = ManualClock(NIGHT)
    sink = RecordingSink()
    cfg = config(tmp_path, {"mode": "digest", "digest_at": ["08:00"]})
    async with open_engine(cfg, default_sink=sink, clock=clock, start=False) as engine:
        titles = drop(tmp_path, 12)
        await engine.run_once()
        assert sink.notices == [] and sink.alerts == []
        assert await engine.store.alert_counts() == {"scheduled": 12}
        clock.set(datetime(2024, 5, 2, 8, 0, tzinfo=UTC))
        await engine.run_once()
        (digest,) = sink.digests
        assert sorted(i.article.title for i in digest.items) == sorted(titles)
        assert sink.notices == [] and sink.alerts == []


async def test_an_immediate_route_still_gets_at_most_a_polls_cap_and_one_summary(
        tmp_path: Path) -> None:
    clock = ManualClock(NIGHT)
    sink = RecordingSink()
    async with open_engine(config(tmp_path, {}), default_sink=sink, clock=clock,
                           start=False) as engine:
        drop(tmp_path, 12)
        await engine.run_once()
        assert len(sink.alerts) == 5
        ((route, text),) = sink.notices
        assert route == "alerts" and "brought 7 more matching article(s)" in text


async def test_a_mute_lasts_as_long_as_the_engines_clock_says(tmp_path: Path) -> None:
    """A rule muted for an hour, by the clock every schedule reads: what it matched in that
    hour is recorded and never sent; once the clock has passed the hour (across a restart
    too) it alerts again. The mute was counted from the machine's time instead, and a rule
    muted "for an hour" under a clock of 2024 stayed muted until years later."""
    clock = ManualClock(NIGHT)
    sink = RecordingSink()
    cfg = config(tmp_path, {})
    async with open_engine(cfg, default_sink=sink, clock=clock, start=False) as engine:
        until = await engine.mute("troops", timedelta(hours=1))
        assert until == NIGHT + timedelta(hours=1)
        drop(tmp_path, 1)
        await engine.run_once()
        assert await engine.store.alert_counts() == {"suppressed": 1}
        assert [v.muted_until for v in await engine.rules()] == [until]
    clock.advance(timedelta(hours=2))  # stopped while the mute ran out
    async with open_engine(cfg, default_sink=sink, clock=clock, start=False) as engine:
        assert [v.muted_until for v in await engine.rules()] == [None]
        titles = drop(tmp_path, 2)
        await engine.run_once()
        assert [a.article.title for a in sink.alerts] == [titles[1]]
        assert await engine.store.alert_counts() == {"suppressed": 1, "delivered": 1}


@pytest.mark.parametrize(("written", "hint"), [
    ("UTC+3", "'Etc/GMT-3'"), ("GMT-5", "'Etc/GMT+5'"), ("utc+03:00", "'Etc/GMT-3'"),
    ("+3", "'Etc/GMT-3'"), ("UTC+5:30", "not by an offset"), ("UTC+0", "UTC itself is 'UTC'"),
])
def test_an_offset_for_a_time_zone_is_refused_with_the_name_that_means_it(
        written: str, hint: str) -> None:
    """"UTC+3" names no zone; the zone that is UTC+3 all year is "Etc/GMT-3" (those names
    count the other way), and "Etc/GMT+3", the name a user finds first, is UTC-3: its quiet
    hours would run six hours off. The error says which to write."""
    with pytest.raises(ConfigError) as caught:
        parse_config({"channels": {"alerts": {"target": 1, "timezone": written}},
                      "rules": [{"name": "troops", "query": "troops"}]})
    (issue,) = caught.value.issues
    assert issue.path == "channels.alerts.timezone"
    assert f"unknown time zone {written!r}" in issue.message and hint in issue.message


@pytest.mark.parametrize("written", ["right/Europe/Berlin", "posix/Europe/Berlin"])
def test_a_copy_of_a_places_zone_is_that_place(written: str) -> None:
    """"right/Europe/Berlin" counts leap seconds, and Python reads it as summer time all year
    from 2026: quiet hours an hour off all winter. It, and the "posix/" copy, are the place."""
    cfg = parse_config({"channels": {"alerts": {"target": 1, "timezone": written}},
                        "rules": [{"name": "troops", "query": "troops"}]})
    route = cfg.route("alerts")
    assert route is not None and route.timezone == "Europe/Berlin"


@pytest.mark.parametrize("written", ["posixrules", "localtime", "Factory"])
def test_a_zone_file_that_names_no_place_is_refused(written: str) -> None:
    """Files of the zone database that open as zones but name no place: "posixrules" is New
    York, "localtime" whatever the host's zone is. Each was taken; each is refused, naming the
    value."""
    with pytest.raises(ConfigError) as caught:
        parse_config({"channels": {"alerts": {"target": 1, "timezone": written}},
                      "rules": [{"name": "troops", "query": "troops"}]})
    (issue,) = caught.value.issues
    assert issue.path == "channels.alerts.timezone"
    assert f"{written!r} is no time zone of a place" in issue.message
    for fine in ("Europe/Berlin", "Etc/GMT-3", "UTC", "US/Eastern", "Asia/Kathmandu"):
        parse_config({"channels": {"alerts": {"target": 1, "timezone": fine}},
                      "rules": [{"name": "troops", "query": "troops"}]})


@pytest.mark.parametrize("hours", [13, 14])
def test_an_offset_past_twelve_names_no_zone_that_does_not_exist(hours: int) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"channels": {"alerts": {"target": 1, "timezone": f"UTC+{hours}"}},
                      "rules": [{"name": "troops", "query": "troops"}]})
    (issue,) = caught.value.issues
    assert f"'Etc/GMT-{hours}'" in issue.message and f"Etc/GMT+{hours}" not in issue.message


def test_the_name_the_error_gives_is_the_offset_that_was_meant() -> None:
    route = RouteConfig(target=1, timezone="Etc/GMT-3", quiet_hours="22:00-07:00")
    assert in_quiet_hours(route, datetime(2024, 5, 1, 19, 0, tzinfo=UTC))  # 22:00 at UTC+3
    assert not in_quiet_hours(route, datetime(2024, 5, 1, 4, 0, tzinfo=UTC))  # 07:00 there


# ------------------------------------------------------------ the per-poll cap in quiet hours

QUIET = {"quiet_hours": "22:00-07:00", "break_through": "critical"}
# Five more unrelated events with troops in them.
BRIDGES = (
    "Troops rebuild a river bridge in Bavaria after the storm",
    "Marathon in Nairobi rerouted as troops rehearse a parade",
    "Salmon farms in Chile inspected while troops guard the harbour",
    "Jazz festival in Montreal opens; troops band plays the finale",
    "Copper price jumps after troops seize a Zambian mine",
)
MORNING = datetime(2024, 5, 2, 7, 0, tzinfo=UTC)


class InOrder(RecordingSink):
    """A :class:`RecordingSink` that also keeps the order of what it posted: "alert",
    "notice" or "digest" each."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []

    async def deliver(self, alert: Alert) -> str | None:
        self.order.append("alert")
        return await super().deliver(alert)

    async def notice(self, route: str, text: str, *, nonce: str | None = None,
                     maybe_sent: bool = False) -> str | None:
        self.order.append("notice")
        return await super().notice(route, text, nonce=nonce, maybe_sent=maybe_sent)

    async def digest(self, digest: Digest) -> str | None:
        self.order.append("digest")
        return await super().digest(digest)


def listed(summary: str) -> list[str]:
    """The titles a cap summary lists."""
    return [line.removeprefix("• ") for line in summary.splitlines() if line.startswith("• ")]


def put(tmp_path: Path, name: str, title: str, when: datetime) -> None:
    (tmp_path / "ap" / f"{name}.json").write_text(json.dumps({
        "title": title, "text": f"{title}. Reported at {when:%H:%M}.", "date": when.isoformat()}))


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "postgres":
        return {"url": request.getfixturevalue("pg_database")}
    return {"path": "nw.db"}


async def test_a_polls_summary_in_quiet_hours_waits_for_their_digest_and_follows_it(
        tmp_path: Path, storage: dict[str, str]) -> None:
    """A poll at 23:00 brings twelve alerts to a route in quiet hours and its source posts five
    one by one: the five wait for the 07:00 digest, and so does the summary of the other seven
    (it posted at 23:00, waking the channel the quiet hours keep quiet). At 07:00, across a
    restart, the digest goes out and the summary right after it, each once."""
    clock = ManualClock(NIGHT)
    sink = InOrder()
    cfg = config(tmp_path, QUIET, storage=storage)
    async with open_engine(cfg, default_sink=sink, clock=clock, start=False) as engine:
        titles = drop(tmp_path, 12)
        await engine.run_once()
        assert sink.order == [], "posted in quiet hours"
        status = await engine.delivery_status()
        # /alerts status: the five alerts are kept, due when the quiet hours end
        assert status.scheduled == {"alerts": (5, MORNING)}
        assert await engine.store.alert_counts() == {"scheduled": 5}
        clock.set(MORNING - timedelta(minutes=1))
        await engine.run_once()
        assert sink.order == []
    clock.set(MORNING)
    async with open_engine(cfg, default_sink=sink, clock=clock, start=False) as engine:
        await engine.run_once()
        assert sink.order == ["digest", "notice"]
        (digest,) = sink.digests
        ((route, summary),) = sink.notices
        assert digest.reason == "quiet hours" and route == "alerts"
        assert "brought 7 more matching article(s)" in summary
        shown = [i.article.title for i in digest.items]
        assert len(shown) == 5 and sorted(shown + listed(summary)) == sorted(titles)
        assert (await engine.delivery_status()).scheduled == {}
        await engine.run_once()
        assert sink.order == ["digest", "notice"], "posted twice"


async def test_digest_now_in_quiet_hours_sends_the_summary_after_the_digest(
        tmp_path: Path) -> None:
    """``/digest now`` at midnight says how many alerts the digest carries (the summary is
    not one of them) and posts the digest, then the summary it kept."""
    clock = ManualClock(NIGHT)
    sink = InOrder()
    async with open_engine(config(tmp_path, QUIET), default_sink=sink, clock=clock,
                           start=False) as engine:
        drop(tmp_path, 12)
        await engine.run_once()
        assert sink.order == []
        clock.set(NIGHT + timedelta(hours=1))
        assert await engine.digest_now("alerts") == 5
        await engine.run_once()
        assert sink.order == ["digest", "notice"]
        assert len(sink.digests[0].items) == 5 and "7 more" in sink.notices[0][1]
        assert (await engine.delivery_status()).scheduled == {}


async def test_a_summary_naming_a_critical_alert_breaks_through_quiet_hours(
        tmp_path: Path) -> None:
    """What quiet hours keep waits; what breaks through does not wait behind it. A summary
    kept at 23:00 holds nothing back: at 23:30 a critical alert posts at once, and so does
    that poll's summary, which names a critical alert the cap left out. The morning digest
    carries the medium ones of both polls, then the first poll's summary."""
    clock = ManualClock(NIGHT)
    sink = InOrder()
    rules = [{"name": "troops", "query": "troops"},
             {"name": "quake", "query": "earthquake", "severity": "critical"}]
    async with open_engine(config(tmp_path, QUIET, rules=rules), default_sink=sink,
                           clock=clock, start=False) as engine:
        drop(tmp_path, 12)
        await engine.run_once()
        assert sink.order == []
        later = NIGHT + timedelta(minutes=30)
        clock.set(later)
        put(tmp_path, "q-old", "Earthquake shakes Lima at dawn", later - timedelta(minutes=9))
        for i, title in enumerate(BRIDGES):
            put(tmp_path, f"t-{i}", title, later - timedelta(minutes=8 - i))
        put(tmp_path, "q-new", "Earthquake strikes off Sendai coast", later)
        await engine.run_once()
        assert sink.order == ["alert", "notice"]
        assert [a.article.title for a in sink.alerts] == ["Earthquake strikes off Sendai coast"]
        assert listed(sink.notices[0][1]) == ["Earthquake shakes Lima at dawn", BRIDGES[0]]
        clock.set(MORNING)
        await engine.run_once()
        assert sink.order == ["alert", "notice", "digest", "notice"]
        assert len(sink.digests[0].items) == 5 + 4
        assert "brought 7 more" in sink.notices[1][1]


QUAKES = (
    "Earthquake strikes off Sendai coast",
    "Earthquake cuts power across Anchorage",
    "Earthquake damages old town of Split",
    "Earthquake felt from Quito to Guayaquil",
    "Earthquake closes schools in Izmir",
)


async def test_a_summary_kept_alone_goes_out_when_quiet_hours_end_without_a_digest(
        tmp_path: Path, storage: dict[str, str]) -> None:
    """The five alerts a poll posts are critical and break through; the two the cap left out
    are not, and neither is their summary: it waits for 07:00 and then goes out on its own,
    with no empty digest before it."""
    clock = ManualClock(NIGHT)
    sink = InOrder()
    rules = [{"name": "troops", "query": "troops"},
             {"name": "quake", "query": "earthquake", "severity": "critical"}]
    async with open_engine(config(tmp_path, QUIET, storage=storage, rules=rules),
                           default_sink=sink, clock=clock, start=False) as engine:
        for i, title in enumerate(BRIDGES[:2]):
            put(tmp_path, f"t-{i}", title, NIGHT - timedelta(minutes=20 - i))
        for i, title in enumerate(QUAKES):
            put(tmp_path, f"q-{i}", title, NIGHT - timedelta(minutes=10 - i))
        await engine.run_once()
        assert sink.order == ["alert"] * 5
        assert (await engine.delivery_status()).scheduled == {"alerts": (0, MORNING)}
        # /digest now has no digest to send: it says so, and the summary keeps waiting for
        # the morning (it follows a digest, and there is none to follow)
        clock.set(NIGHT + timedelta(hours=1))
        assert await engine.digest_now("alerts") == 0
        await engine.run_once()
        assert sink.order == ["alert"] * 5
        assert (await engine.delivery_status()).scheduled == {"alerts": (0, MORNING)}
        clock.set(MORNING)
        await engine.run_once()
        assert sink.order == ["alert"] * 5 + ["notice"] and sink.digests == []
        assert listed(sink.notices[0][1]) == list(BRIDGES[:2])
        assert await engine.store.alerts(kind="digest") == []


async def test_a_summary_of_a_rule_muted_in_the_night_is_not_posted_when_quiet_hours_end(
        tmp_path: Path, storage: dict[str, str]) -> None:
    """A poll at 23:00 brings twelve alerts of one rule to a route in quiet hours, and at
    midnight the rule is muted until noon. At 07:00 the digest drops the five alerts it kept
    (a muted rule posts nothing), and the summary of the other seven is refused as well: it
    posted on its own, listing seven titles of the muted rule."""
    clock = ManualClock(NIGHT)
    sink = InOrder()
    async with open_engine(config(tmp_path, QUIET, storage=storage), default_sink=sink,
                           clock=clock, start=False) as engine:
        drop(tmp_path, 12)
        await engine.run_once()
        clock.set(NIGHT + timedelta(hours=1))
        await engine.mute("troops", timedelta(hours=11))
        clock.set(MORNING)
        await engine.run_once()
        assert sink.order == [], sink.notices
        (summary,) = await engine.store.alerts(kind="summary")
        (notice,) = await engine.store.alerts(kind="notice")
        assert summary.digest_id == notice.id
        assert (notice.state, notice.reason) == ("rejected", MUTED_REASON)
        assert (await engine.delivery_status()).scheduled == {}


async def test_a_summary_still_posts_when_only_some_of_its_rules_are_muted(
        tmp_path: Path) -> None:
    """The cap left out an alert of each of two rules; one rule is muted in the night. The
    summary still names an alert of the other, and posts after the digest at 07:00."""
    clock = ManualClock(NIGHT)
    sink = InOrder()
    rules = [{"name": "troops", "query": "troops"}, {"name": "quake", "query": "earthquake"}]
    async with open_engine(config(tmp_path, QUIET, rules=rules), default_sink=sink,
                           clock=clock, start=False) as engine:
        put(tmp_path, "q-0", QUAKES[0], NIGHT - timedelta(minutes=20))
        put(tmp_path, "t-0", BRIDGES[0], NIGHT - timedelta(minutes=19))
        for i, title in enumerate((*BRIDGES[1:], QUAKES[1])):
            put(tmp_path, f"n-{i}", title, NIGHT - timedelta(minutes=10 - i))
        await engine.run_once()
        assert sink.order == []
        clock.set(NIGHT + timedelta(hours=1))
        await engine.mute("troops", timedelta(hours=11))
        clock.set(MORNING)
        await engine.run_once()
        assert sink.order == ["digest", "notice"]
        assert [i.article.title for i in sink.digests[0].items] == [QUAKES[1]]
        assert listed(sink.notices[0][1]) == [QUAKES[0], BRIDGES[0]]


async def test_a_poll_of_a_feed_polling_already_waits_for_it_and_one_summary_is_kept(
        tmp_path: Path, storage: dict[str, str]) -> None:
    """A poll of a feed asked for while the engine's own poll of it is under way (here
    run_once beside the running engine) both read the twelve items as new and capped them,
    and each wrote the summary of the seven left out, so the route got it twice. It now waits
    for that poll and asks with what it left (the feed's ETag: not modified). /alerts status
    counts the one summary kept apart from the five alerts, and the morning brings the digest
    and the summary once, every item in one of them."""
    clock = ManualClock(NIGHT)
    sink = InOrder()
    reports: list[PollReport] = []
    async with FeedServer() as server:
        # (backfill: the feed's first poll may alert its newest twelve); answered after a
        # second, so that the engine's poll is under way when run_once asks
        server.set("/wire", Route(body=rss(*((f"g{i}", t) for i, t in enumerate(HEADLINES))),
                                  etag='"w1"', delay=1.0))
        cfg = parse_config({
            "storage": storage,
            "fetch": {"allow_private": ["127.0.0.1/32"]},
            "channels": {"alerts": {"target": 1, "stories": "off", **QUIET}},
            "sources": [{"name": "wire", "type": "feed", "url": server.url("/wire"),
                         "every": 3600, "backfill": 12, "max_alerts_per_poll": 5}],
            "rules": [{"name": "troops", "query": "troops"}],
        }, base_dir=tmp_path)
        # started: its first poll of the feed is due at once
        async with open_engine(cfg, default_sink=sink, clock=clock,
                               on_report=reports.append) as engine:

            async def asked() -> bool:
                return len(server.hits("/wire")) == 1

            await eventually(asked, what="the engine's own poll of the feed")
            await engine.run_once()

            async def both() -> bool:
                return len(reports) == 2

            await eventually(both, what="both polls of the feed")
            first, second = server.hits("/wire")
            assert "If-None-Match" not in first.headers
            assert second.headers.get("If-None-Match") == '"w1"'  # asked after the first
            assert len(await engine.store.alerts(kind="summary")) == 1
            assert sorted(r.new for r in reports) == [0, 12]
            assert sorted(r.not_modified for r in reports) == [False, True]
            assert sorted(r.alerts for r in reports) == [0, 5 + 1]
            assert sink.order == [], "posted in quiet hours"
            status = await engine.delivery_status()
            assert status.scheduled == {"alerts": (5, MORNING)}
            assert status.summaries == {"alerts": 1}
            fields = {f.name: f.value for f in delivery_embed(status, str).fields}
            due = int(MORNING.timestamp())
            assert fields["Kept for digests"] == (
                f"`alerts` · 5 kept and 1 cap summary · next digest <t:{due}:R> (<t:{due}:t>)")
    clock.set(MORNING)
    async with open_engine(cfg, default_sink=sink, clock=clock, start=False) as engine:
        await engine.run_once()
        assert sink.order == ["digest", "notice"]
        ((_, summary),) = sink.notices
        assert "brought 7 more matching article(s)" in summary
        shown = [i.article.title for i in sink.digests[0].items]
        assert sorted(shown + listed(summary)) == sorted(HEADLINES)


async def test_a_source_removed_while_a_poll_of_it_waits_is_not_polled(
        tmp_path: Path) -> None:
    """run_once beside the running engine's poll of a feed waits for that poll; the feed is
    removed meanwhile (its poll cut short): the waiting poll polls nothing, and run_once ends
    without an error for it."""
    async with FeedServer() as server:
        server.set("/slow", Route(body=rss(("s1", "Troops gather")), delay=30.0))
        cfg = parse_config({
            "storage": {"path": "nw.db"},
            "fetch": {"allow_private": ["127.0.0.1/32"]},
            "channels": {"alerts": {"target": 1}},
            "rules": [{"name": "troops", "query": "troops"}],
        }, base_dir=tmp_path)
        async with open_engine(cfg, default_sink=RecordingSink()) as engine:
            await engine.add_source({"name": "slow", "url": server.url("/slow"),
                                     "every": 3600})

            async def asked() -> bool:
                return len(server.hits("/slow")) == 1

            await eventually(asked, what="the engine's own poll of the feed")
            waiting = asyncio.create_task(engine.run_once())
            await asyncio.sleep(0.2)
            assert not waiting.done()  # it waits for the poll under way
            assert await engine.remove_source("slow")
            reports = await asyncio.wait_for(waiting, 20)
            assert [(r.source, r.new, r.error) for r in reports] == [("slow", 0, None)]
            assert len(server.hits("/slow")) == 1  # never asked again
