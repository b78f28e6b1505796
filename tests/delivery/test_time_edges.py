"""Routes that speak at their own times, at the edges: a poll that brings more than a source's
``max_alerts_per_poll`` to a digest route, through the real engine, a folder source, a SQLite
file and a clock that travels."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.sinks import RecordingSink
from watchers.config import Config, RouteConfig, parse_config
from watchers.engine import open_engine
from watchers.errors import ConfigError
from watchers.schedule import ManualClock, in_quiet_hours

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


def config(tmp_path: Path, route: dict[str, Any], per_poll: int = 5) -> Config:
    (tmp_path / "ap").mkdir(exist_ok=True)
    return parse_config({
        "storage": {"path": "nw.db"},
        "channels": {"alerts": {"target": 1, "stories": "off", **route}},
        "sources": [{"name": "ap", "type": "folder", "path": "ap", "settle": 0,
                     "max_alerts_per_poll": per_poll}],
        "rules": [{"name": "troops", "query": "troops"}],
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


def test_the_name_the_error_gives_is_the_offset_that_was_meant() -> None:
    route = RouteConfig(target=1, timezone="Etc/GMT-3", quiet_hours="22:00-07:00")
    assert in_quiet_hours(route, datetime(2024, 5, 1, 19, 0, tzinfo=UTC))  # 22:00 at UTC+3
    assert not in_quiet_hours(route, datetime(2024, 5, 1, 4, 0, tzinfo=UTC))  # 07:00 there
