"""Routes that choose when they speak, on a real SQLite store and a clock that travels: digests
at fixed local times across a daylight-saving change, quiet hours that a critical alert breaks
through, an hourly cap that folds the rest into a digest — and nothing is ever lost or sent
twice, across restarts too."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.fakes.sinks import RecordingSink
from tests.service._harness import deliver
from tests.store._support import art, match, rule
from watchers.config import RouteConfig
from watchers.delivery import DeliveryService
from watchers.errors import UncertainDeliveryError
from watchers.rules.lookup import index_terms
from watchers.schedule import ManualClock, next_digest
from watchers.store import SqliteStore
from watchers.store.base import ArticleRecord, OutboxEntry, StoryLink

SAT = datetime(2022, 3, 26, 10, 0, tzinfo=UTC)  # Kyiv moves to summer time that night


def route(**kw: Any) -> RouteConfig:
    return RouteConfig(target=1, **kw)


async def write(store: SqliteStore, n: int, *, severity: str = "medium", tag: str = "",
                story: str | None = None, outlet: str = "dw") -> list[str]:
    ids = []
    for i in range(n):
        a = art(f"Troops report {tag}{i}", published=SAT)
        link = StoryLink(story, f"sig {story}", outlet, SAT) if story else None
        entry = OutboxEntry("alerts", (rule(severity=severity),), severity=severity,
                            stories="edit" if story else "off")
        (stored,) = await store.record_many(
            [ArticleRecord(a, [match(a)], [entry], index_terms(a.title, a.text), link)])
        assert stored is not None
        ids.append(stored.id)
    return ids


def service(store: SqliteStore, sink: RecordingSink, clock: ManualClock, cfg: RouteConfig
            ) -> DeliveryService:
    return deliver(store, sink, routes=lambda name: cfg if name == "alerts" else None,
                   clock=clock, known_routes=["alerts"])


def following(store: SqliteStore, sink: RecordingSink, cfgs: dict[str, RouteConfig],
              clock: ManualClock) -> DeliveryService:
    """Delivery of the route "alerts" whose settings are ``cfgs["alerts"]`` as it is now (a
    test changes them as the config file would)."""
    return deliver(store, sink, routes=lambda n: cfgs.get(n), clock=clock,
                   known_routes=["alerts"])


def carried(sink: RecordingSink) -> list[str]:
    return [i.article.id for d in sink.digests for i in d.items]


async def test_a_digest_goes_out_at_its_local_time_across_a_dst_change(tmp_path: Path) -> None:
    cfg = route(mode="digest", digest_at=["08:00", "18:00"], timezone="Europe/Kyiv")
    clock = ManualClock(SAT)
    sink = RecordingSink()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        ids = await write(store, 3)
        delivery = service(store, sink, clock, cfg)
        await delivery.drain()
        assert sink.alerts == [] and sink.digests == []
        status = await delivery.status()
        assert status.scheduled["alerts"][0] == 3
        # 18:00 in Kyiv on Saturday is 16:00 UTC (winter time, +2)
        assert status.scheduled["alerts"][1] == datetime(2022, 3, 26, 16, 0, tzinfo=UTC)
        clock.set(datetime(2022, 3, 26, 15, 59, tzinfo=UTC))
        await delivery.drain()
        assert sink.digests == []
        clock.set(datetime(2022, 3, 26, 16, 0, tzinfo=UTC))
        await delivery.drain()
        (digest,) = sink.digests
        assert sorted(carried(sink)) == sorted(ids) and digest.reason == "digest"
        # After the change: 08:00 on Sunday is 05:00 UTC (+3), not 06:00.
        later = await write(store, 1, tag="sunday")
        clock.set(datetime(2022, 3, 27, 1, 0, tzinfo=UTC))
        await delivery.drain()
        assert (await delivery.status()).next_digest["alerts"] == datetime(
            2022, 3, 27, 5, 0, tzinfo=UTC)
        clock.set(datetime(2022, 3, 27, 5, 0, tzinfo=UTC))
        await delivery.drain()
        assert len(sink.digests) == 2 and carried(sink)[-1] == later[0]
        assert sink.alerts == []  # a digest route never posts alerts one by one
        counts = await store.alert_counts()
        assert counts == {"digested": 4}


async def test_quiet_hours_keep_alerts_for_a_morning_digest_and_critical_breaks_through(
        tmp_path: Path) -> None:
    cfg = route(quiet_hours="22:00-07:00", break_through="critical")
    clock = ManualClock(datetime(2022, 3, 25, 23, 0, tzinfo=UTC))
    sink = RecordingSink()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        quiet = await write(store, 2, tag="night")
        urgent = await write(store, 1, severity="critical", tag="urgent")
        delivery = service(store, sink, clock, cfg)
        await delivery.drain()
        assert [a.article.id for a in sink.alerts] == urgent
        clock.set(datetime(2022, 3, 26, 6, 59, tzinfo=UTC))
        await delivery.drain()
        assert sink.digests == []
        clock.set(datetime(2022, 3, 26, 7, 0, tzinfo=UTC))
        await delivery.drain()
        (digest,) = sink.digests
        assert digest.reason == "quiet hours" and sorted(carried(sink)) == sorted(quiet)
        day = await write(store, 1, tag="day")
        await delivery.drain()
        assert sink.alerts[-1].article.id == day[0]  # after the quiet hours: at once


@pytest.mark.parametrize(("cfg", "start", "due"), [
    (route(quiet_hours="22:00-07:00"), datetime(2022, 3, 25, 23, 0, tzinfo=UTC),
     datetime(2022, 3, 26, 7, 0, tzinfo=UTC)),
    (route(mode="digest", digest_at=["18:00"]), datetime(2022, 3, 25, 9, 0, tzinfo=UTC),
     datetime(2022, 3, 25, 18, 0, tzinfo=UTC)),
])
async def test_a_rule_muted_after_its_alerts_were_kept_shows_none_of_them_in_the_digest(
        tmp_path: Path, cfg: RouteConfig, start: datetime, due: datetime) -> None:
    """A muted rule posts nothing, not even what it matched before that is still waiting
    (the docs' word): kept for a digest, its alerts were listed in it all the same."""
    clock = ManualClock(start)
    sink = RecordingSink()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, 2, tag="night")
        delivery = service(store, sink, clock, cfg)
        await delivery.drain()
        assert sink.alerts == [] and sink.digests == []  # kept
        await store.mute("troops", start + timedelta(days=2))
        clock.set(due)
        await delivery.drain()
        assert carried(sink) == [] and sink.alerts == []
        rejected = await store.alerts(kind="alert", state="rejected")
        assert [r.reason for r in rejected] == ["its rule was muted before it was sent"] * 2


async def test_past_the_hourly_cap_alerts_fold_into_a_digest_and_none_is_lost(
        tmp_path: Path) -> None:
    cfg = route(max_per_hour=2)
    clock = ManualClock(datetime(2022, 3, 26, 10, 5, tzinfo=UTC))
    sink = RecordingSink()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        ids = await write(store, 5)
        critical = await write(store, 1, severity="critical", tag="c")
        delivery = service(store, sink, clock, cfg)
        await delivery.drain()
        assert [a.article.id for a in sink.alerts] == [*ids[:2], *critical]
        clock.set(datetime(2022, 3, 26, 11, 0, tzinfo=UTC))
        await delivery.drain()
        (digest,) = sink.digests
        assert digest.reason == "cap" and carried(sink) == ids[2:]
        assert sorted([a.article.id for a in sink.alerts] + carried(sink)) == sorted(
            ids + critical)
        # the new hour starts with a fresh allowance
        more = await write(store, 2, tag="next")
        await delivery.drain()
        assert [a.article.id for a in sink.alerts][-2:] == more


async def test_alerts_past_the_cap_when_the_hour_rolls_over_into_quiet_hours_wait_for_them(
        tmp_path: Path) -> None:
    """Folded by the cap at 21:30, they went out in a cap digest at 22:00, the quiet hours'
    first minute: they now wait for the quiet hours' end, as the alerts kept by them do."""
    cfg = route(quiet_hours="22:00-07:00", max_per_hour=2)
    clock = ManualClock(datetime(2022, 3, 25, 21, 30, tzinfo=UTC))
    sink = RecordingSink()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        ids = await write(store, 5, tag="evening")
        delivery = service(store, sink, clock, cfg)
        await delivery.drain()
        assert [a.article.id for a in sink.alerts] == ids[:2]
        clock.set(datetime(2022, 3, 25, 22, 0, tzinfo=UTC))
        await delivery.drain()
        assert sink.digests == []
        clock.set(datetime(2022, 3, 26, 7, 0, tzinfo=UTC))
        await delivery.drain()
        (digest,) = sink.digests
        assert digest.reason == "quiet hours" and sorted(carried(sink)) == sorted(ids[2:])


async def test_digest_now_takes_a_digest_routes_alerts_not_yet_claimed(tmp_path: Path
                                                                         ) -> None:
    """Alerts written while a digest route backs off (its last digest met a 503) were still
    'pending': /digest now said nothing was waiting, and once the route was retried they were
    kept for the next scheduled digest, an hour later."""
    from watchers.errors import TransientDeliveryError

    cfg = route(mode="digest", digest_every="1h")
    clock = ManualClock(datetime(2022, 3, 25, 10, 30, tzinfo=UTC))
    sink = RecordingSink([TransientDeliveryError("503 Service Unavailable", retry_after=0.3)])
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        first = await write(store, 2, tag="first")
        delivery = service(store, sink, clock, cfg)
        await delivery.drain()
        assert await delivery.digest_now("alerts") == 2
        await delivery.drain()  # the digest fails: the route backs off
        later = await write(store, 3, tag="later")
        await delivery.drain()
        assert await delivery.digest_now("alerts") == 3
        await asyncio.sleep(0.4)
        await delivery.drain()
        await delivery.drain()
        assert [sorted(i.article.id for i in d.items) for d in sink.digests] == [
            sorted(first), sorted(later)]
        assert (await delivery.status()).scheduled.get("alerts") is None


@pytest.mark.parametrize("ahead", [timedelta(days=1), timedelta(days=365)])
async def test_alerts_kept_under_a_clock_that_ran_ahead_are_due_when_the_quiet_hours_end(
        tmp_path: Path, ahead: timedelta) -> None:
    """Kept by quiet hours while the clock was fast, then the clock was set back: they waited
    for the quiet hours' end as the fast clock saw it (a day or a year later)."""
    cfg = route(quiet_hours="22:00-07:00")
    real = datetime(2022, 3, 25, 23, 0, tzinfo=UTC)
    clock = ManualClock(real)
    sink = RecordingSink()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        delivery = service(store, sink, clock, cfg)
        first = await write(store, 1, tag="before")
        await delivery.drain()  # kept, under the right clock
        clock.set(real + ahead)
        early = await write(store, 2, tag="fast-clock")
        await delivery.drain()  # kept until the fast clock's 07:00
        clock.set(real)  # the clock is set back
        await delivery.drain()
        clock.set(datetime(2022, 3, 26, 7, 0, tzinfo=UTC))
        await delivery.drain()
        assert sorted(carried(sink)) == sorted(first + early)
        assert (await delivery.status()).scheduled.get("alerts") is None


async def test_a_digest_due_while_stopped_goes_out_once_at_the_next_start(tmp_path: Path
                                                                          ) -> None:
    cfg = route(mode="digest", digest_every="1h")
    clock = ManualClock(datetime(2022, 3, 26, 10, 30, tzinfo=UTC))
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        ids = await write(store, 3)
        await service(store, RecordingSink(), clock, cfg).drain()  # scheduled for 11:00
    clock.set(datetime(2022, 3, 26, 14, 0, tzinfo=UTC))  # down from 10:30 to 14:00
    sink = RecordingSink()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        first = service(store, sink, clock, cfg)
        second = service(store, sink, clock, cfg)  # two passes racing make one digest
        await asyncio.gather(first.drain(), second.drain())
        await first.drain()
        assert len(sink.digests) == 1 and sorted(carried(sink)) == sorted(ids)
        assert len(await store.alerts(kind="digest")) == 1


async def test_a_failed_digest_is_retried_and_digest_now_sends_what_waits(tmp_path: Path
                                                                          ) -> None:
    from watchers.errors import TransientDeliveryError

    cfg = route(mode="digest", digest_at=["18:00"])
    clock = ManualClock(SAT)
    sink = RecordingSink([TransientDeliveryError("Discord is down")])
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        ids = await write(store, 2)
        delivery = service(store, sink, clock, cfg)
        await delivery.drain()
        assert await delivery.digest_now("alerts") == 2
        await delivery.drain()  # the first try fails; the retry is due a moment later
        for _ in range(50):
            if sink.digests:
                break
            await asyncio.sleep(0.02)
            await delivery.drain()
        (digest,) = sink.digests
        assert sorted(carried(sink)) == sorted(ids) and digest.attempt == 2
        assert await delivery.digest_now("alerts") == 0  # nothing waits any more


async def test_a_story_is_one_line_of_its_digest_with_every_outlet(tmp_path: Path) -> None:
    cfg = route(mode="digest", digest_every="1h")
    clock = ManualClock(datetime(2022, 3, 26, 10, 30, tzinfo=UTC))
    sink = RecordingSink()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        delivery = service(store, sink, clock, cfg)
        await write(store, 1, story="s1", outlet="dw", tag="a")
        await delivery.drain()  # the story's alert waits for the digest
        await write(store, 1, story="s1", outlet="npr", tag="b")  # its update joins it
        await write(store, 1, story="s1", outlet="bbc", tag="c")
        await write(store, 1, tag="alone")
        await delivery.drain()
        clock.set(datetime(2022, 3, 26, 11, 0, tzinfo=UTC))
        await delivery.drain()
        (digest,) = sink.digests
        assert digest.stories == 2 and digest.articles == 4
        (line,) = [i for i in digest.items if i.story is not None and i.story.id == "s1"]
        assert line.story is not None and line.story.outlets == ("dw", "npr", "bbc")
        assert line.articles == 3


async def test_an_escalation_through_quiet_hours_is_the_message_later_articles_update(
        tmp_path: Path) -> None:
    """A story's medium alert waits for the quiet-hours digest; a critical article of the story
    breaks through as an escalation. Later articles were folded into the digest at night and
    dropped after it (marked delivered, nothing sent): they now update the escalated message."""
    from collections.abc import Mapping
    from datetime import timedelta

    from tests.service._harness import folder, watch
    from watchers.delivery import StoryUpdate, UpdateResult
    from watchers.models import Article
    from watchers.sources.base import Poll

    class Source:
        def __init__(self, name: str) -> None:
            self.name, self.items = name, list[Article]()

        async def poll(self, cursor: Mapping[str, str]) -> Poll:
            return Poll(self.items)

        async def aclose(self) -> None:
            pass

    class Updates(RecordingSink):
        def __init__(self) -> None:
            super().__init__()
            self.updates: list[tuple[str | None, str]] = []

        async def update(self, u: StoryUpdate) -> UpdateResult:
            self.updates.append((u.message_id, u.article.source))
            return UpdateResult(message_id=u.message_id)

    night = datetime(2022, 3, 25, 21, 0, tzinfo=UTC)  # 23:00 in Kyiv
    cfg = route(quiet_hours="22:00-07:00", timezone="Europe/Kyiv", break_through="critical")
    clock = ManualClock(night)
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, rules=[rule("troops", "troops"),
                                      rule("invasion", "invasion", severity="critical")],
                        stories_mode=lambda r: "edit", clock=clock)
        sources = {n: Source(n) for n in ("ap", "bbc", "dw", "npr")}
        for name, source in sources.items():
            await service.add_source(folder(name, tmp_path), source)
        sink = Updates()
        delivery = deliver(store, sink, routes=lambda r: cfg, clock=clock,
                           stories_mode=lambda r: "edit", known_routes=["alerts"])

        async def report(outlet: str, title: str) -> None:
            for source in sources.values():
                source.items = []
            sources[outlet].items = [Article(
                source=outlet, guid=f"{outlet}-1", url=f"https://{outlet}.example/1",
                title=title, text=f"{title}. Officials confirmed the reports.",
                published=clock.now())]
            await service.run_once()
            await delivery.drain()

        await report("ap", "Russian troops cross the border near Kharkiv")
        clock.advance(timedelta(minutes=10))
        await report("bbc", "Russian troops cross the border near Kharkiv in full-scale invasion")
        assert [(a.article.source, a.escalated_from) for a in sink.alerts] == [("bbc", "medium")]
        clock.advance(timedelta(minutes=10))
        await report("dw", "Russian troops cross the border near Kharkiv, invasion under way")
        assert sink.updates == [("m1", "dw")]
        clock.set(datetime(2022, 3, 26, 5, 0, tzinfo=UTC))  # 07:00 in Kyiv: the digest
        await delivery.drain()
        assert len(sink.digests) == 1
        clock.advance(timedelta(hours=2))
        await report("npr", "Russian troops cross the border near Kharkiv as invasion widens")
        assert sink.updates == [("m1", "dw"), ("m1", "npr")]


def test_quiet_hours_starting_in_a_skipped_hour_start_where_it_ends() -> None:
    """"00:30-01:30" on a night the clocks skip from 00:00 to 01:00: the start, shifted by
    the gap, fell on the end, and that night had no quiet hours at all. They now run from the
    gap's end; an ordinary night and an autumn night (01:00 twice) keep their hours."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from watchers.schedule import in_quiet_hours, quiet_end

    for zone, day in (("America/Havana", (2022, 3, 13)), ("America/Santiago", (2022, 9, 11))):
        cfg = route(quiet_hours="00:30-01:30", timezone=zone)
        z = ZoneInfo(zone)
        night = datetime(*day, 1, 10, tzinfo=z).astimezone(UTC)  # after the gap
        assert in_quiet_hours(cfg, night), zone
        assert quiet_end(cfg, night) == datetime(*day, 1, 30, tzinfo=z).astimezone(UTC)
        gap_end = datetime(*day, 1, 0, tzinfo=z).astimezone(UTC)
        assert not in_quiet_hours(cfg, gap_end - timedelta(seconds=1))
        assert in_quiet_hours(cfg, gap_end)
        next_day = datetime(*day, tzinfo=z).date() + timedelta(days=1)
        ordinary = datetime.combine(next_day, datetime.min.time().replace(minute=40), tzinfo=z)
        assert in_quiet_hours(cfg, ordinary.astimezone(UTC))
    # autumn in New York: 01:00-02:00 happens twice; "01:30-03:00" starts at the first 01:30
    cfg = route(quiet_hours="01:30-03:00", timezone="America/New_York")
    first = datetime(2022, 11, 6, 5, 30, tzinfo=UTC)  # 01:30 EDT
    assert in_quiet_hours(cfg, first) and not in_quiet_hours(cfg, first - timedelta(minutes=1))


class _LostAnswer(RecordingSink):
    """Discord made the message, and the answer was lost (once)."""

    lost = 1

    async def deliver(self, alert: Any) -> str | None:
        self.alerts.append(alert)
        if self.lost:
            self.lost -= 1
            raise UncertainDeliveryError("no answer from Discord in 20s")
        return f"m{len(self.alerts)}"


async def test_an_alert_maybe_sent_before_quiet_hours_is_not_kept_for_their_digest(
        tmp_path: Path) -> None:
    cfg = route(quiet_hours="22:00-07:00")
    clock = ManualClock(datetime(2024, 5, 1, 21, 59, 50, tzinfo=UTC))
    sink = _LostAnswer()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        (aid,) = await write(store, 1)
        d = service(store, sink, clock, cfg)
        await d.drain()  # sent; the answer lost: maybe sent
        clock.set(datetime(2024, 5, 1, 22, 0, 5, tzinfo=UTC))
        await asyncio.sleep(0.1)
        await d.drain()  # the retry, inside quiet hours: sent (found again), not kept
        clock.set(datetime(2024, 5, 2, 7, 0, tzinfo=UTC))
        await d.drain()
        posted = [a.article.id for a in sink.alerts]
        assert posted.count(aid) == 2 and carried(sink).count(aid) == 0


async def test_the_hourly_cap_counts_no_send_stamped_by_a_clock_that_ran_ahead(
        tmp_path: Path) -> None:
    cfg = route(max_per_hour=2)
    real = datetime(2024, 5, 1, 9, 10, tzinfo=UTC)
    clock = ManualClock(real + timedelta(days=1))  # a day fast
    sink = RecordingSink()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        d = service(store, sink, clock, cfg)
        await write(store, 2, tag="fast")
        await d.drain()
        for h in range(6):  # the clock stepped back; one alert an hour
            clock.set(real + timedelta(hours=h))
            await write(store, 1, tag=f"h{h}")
            await d.drain()
        assert len(sink.alerts) == 2 + 6 and not sink.digests


def _every(every: str, zone: str, start: datetime, n: int) -> list[str]:
    cfg = RouteConfig(target=1, mode="digest", digest_every=every, timezone=zone)
    out, at = [], start
    for _ in range(n):
        nxt = next_digest(cfg, at)
        assert nxt is not None and nxt > at
        at = nxt
        out.append(at.astimezone(ZoneInfo(zone)).strftime("%d %H:%M"))
    return out


def test_digest_every_counts_from_local_midnight_in_the_routes_time_zone() -> None:
    # "1d" in Kyiv is local midnight (it was 00:00 UTC, 03:00 there)
    assert _every("1d", "Europe/Kyiv", datetime(2024, 5, 1, 23, 58, tzinfo=UTC), 2) == [
        "03 00:00", "04 00:00"]
    # "1h" in a half-hour zone is on the local hour
    assert _every("1h", "Asia/Kolkata", datetime(2024, 5, 1, 10, 0, tzinfo=UTC), 2) == [
        "01 16:00", "01 17:00"]
    # a step that does not divide a day starts again at midnight
    assert _every("7m", "UTC", datetime(2024, 5, 1, 23, 50, tzinfo=UTC), 3) == [
        "01 23:55", "02 00:00", "02 00:07"]
    # wall-clock times across a daylight-saving change: 06:00 stays 06:00
    assert _every("6h", "Europe/Berlin", datetime(2024, 3, 30, 20, 0, tzinfo=UTC), 5) == [
        "31 00:00", "31 06:00", "31 12:00", "31 18:00", "01 00:00"]
    # whole days: local midnight every so many days
    weekly = _every("7d", "Europe/Kyiv", datetime(2024, 5, 1, tzinfo=UTC), 3)
    assert [w.endswith("00:00") for w in weekly] == [True] * 3
    assert len({int(w[:2]) % 7 for w in weekly}) == 1


async def test_kept_alerts_follow_the_routes_settings_when_they_change(tmp_path: Path) -> None:
    cfgs = {"alerts": route(mode="digest", digest_every="30d")}
    clock = ManualClock(datetime(2024, 5, 1, 9, 0, tzinfo=UTC))
    sink = RecordingSink()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        d = following(store, sink, cfgs, clock)
        old = await write(store, 3, tag="old")
        await d.drain()
        assert (await d.status()).scheduled.get("alerts", (0, None))[0] == 3
        cfgs["alerts"] = route()  # back to immediate: what it kept goes out now
        new = await write(store, 1, tag="new")
        clock.advance(timedelta(minutes=1))
        await d.drain()
        assert carried(sink) == old and [a.article.id for a in sink.alerts] == new
        assert not (await d.status()).scheduled.get("alerts")

        # quiet hours shortened, then a restart: kept until the new end, not the old one
        cfgs["alerts"] = route(quiet_hours="22:00-09:00")
        clock.set(datetime(2024, 5, 1, 23, 0, tzinfo=UTC))
        later = await write(store, 2, tag="night")
        await d.drain()
        cfgs["alerts"] = route(quiet_hours="22:00-06:00")
        restarted = following(store, sink, cfgs, clock)
        clock.set(datetime(2024, 5, 2, 6, 0, tzinfo=UTC))
        await restarted.drain()
        assert carried(sink)[-2:] == later


# The route of ../shared/DESIGN.md's configuration example, whose names other people's files
# use: it was refused ("quiet_hours and max_per_hour do nothing on a digest route").
DESIGN_BRIEFING: dict[str, Any] = {"target": 1, "stories": "edit", "mode": "digest",
                   "digest_at": ["08:00", "18:00"], "timezone": "Europe/Kyiv",
                   "quiet_hours": "22:00-07:00", "break_through": "critical",
                   "max_per_hour": 20}


def test_the_design_documents_digest_route_loads_and_says_what_it_ignores(
        tmp_path: Path) -> None:
    from watchers.config import parse_config

    cfg = parse_config({"storage": {"path": "nw.db"},
                        "channels": {"briefing": {**DESIGN_BRIEFING, "target": 5}},
                        "rules": [{"name": "troops", "query": "troops", "channel": "briefing"}]},
                       base_dir=tmp_path)
    assert cfg.route("briefing") == RouteConfig.model_validate({**DESIGN_BRIEFING, "target": 5})
    cap, through = cfg.ignored_settings()
    assert cap.startswith("channels.briefing: max_per_hour does nothing on a digest route")
    assert through.startswith("channels.briefing: break_through does nothing on a digest")
    plain = RouteConfig.model_validate({**DESIGN_BRIEFING, "max_per_hour": None})
    assert plain.ignored() == []


def test_a_digest_due_in_quiet_hours_goes_out_when_they_end() -> None:
    kyiv = ZoneInfo("Europe/Kyiv")
    cfg = route(mode="digest", digest_every="1h", quiet_hours="22:00-07:00",
                timezone="Europe/Kyiv")
    at = datetime(2022, 3, 24, 20, 30, tzinfo=kyiv)
    assert next_digest(cfg, at) == datetime(2022, 3, 24, 21, 0, tzinfo=kyiv)  # not yet quiet
    # 22:00, 23:00 ... 06:00 fall in the quiet hours: the next digest is at their end
    for hour in (21, 22, 23):
        later = datetime(2022, 3, 24, hour, 0, tzinfo=kyiv)
        assert next_digest(cfg, later) == datetime(2022, 3, 25, 7, 0, tzinfo=kyiv)
    morning = datetime(2022, 3, 25, 7, 0, tzinfo=kyiv)
    assert next_digest(cfg, morning) == datetime(2022, 3, 25, 8, 0, tzinfo=kyiv)
    # the design's times (08:00, 18:00) are outside its quiet hours: unchanged
    design = RouteConfig.model_validate(DESIGN_BRIEFING)
    assert next_digest(design, at) == datetime(2022, 3, 25, 8, 0, tzinfo=kyiv)


async def test_a_digest_route_keeps_every_alert_whatever_its_break_through(
        tmp_path: Path) -> None:
    """A break_through on a digest route does nothing (``check`` says so): a stored route
    always has one (the default), so it cannot tell a route that named it from one that did
    not, and such routes kept everything before."""
    clock = ManualClock(datetime(2022, 3, 24, 10, 0, tzinfo=UTC))
    for n, cfg in enumerate((RouteConfig.model_validate(DESIGN_BRIEFING),
                             route(mode="digest", digest_at=["18:00"]))):
        sink = RecordingSink()
        async with await SqliteStore.open(tmp_path / f"{n}.db") as store:
            await write(store, 2, tag="calm")
            await write(store, 1, severity="critical", tag="urgent")
            await service(store, sink, clock, cfg).drain()
            assert sink.alerts == [] and await store.alert_counts() == {"scheduled": 3}


async def test_alerts_a_crash_left_claimed_are_still_kept_for_the_digest(tmp_path: Path
                                                                         ) -> None:
    """A kill -9 while the delivery held a claim of a digest route's alerts: every claimed row
    came back maybe sent, and a row maybe sent is sent at once (the sink looks for it), so
    they were posted one by one, with their pings, instead of going into the digest."""
    cfg = route(mode="digest", digest_at=["18:00"])
    clock = ManualClock(SAT)
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        ids = await write(store, 3)
        assert len(await store.claim_route("alerts", now=SAT)) == 3  # claimed; then the kill
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        assert await store.requeue_interrupted() == 3
        sink = RecordingSink()
        delivery = service(store, sink, clock, cfg)
        await delivery.drain()
        assert sink.alerts == [] and await store.alert_counts() == {"scheduled": 3}
        clock.set(datetime(2022, 3, 26, 18, 0, tzinfo=ZoneInfo("UTC")))
        await delivery.drain()
        assert sorted(carried(sink)) == sorted(ids) and sink.alerts == []


async def test_a_digest_route_made_immediate_during_its_quiet_hours_keeps_them(
        tmp_path: Path) -> None:
    """A digest route (08:00) with quiet hours 22:00-07:00, made immediate at 23:30 with the
    quiet hours kept: the alerts it kept were posted at once, in the middle of the night,
    while a new one waited for 07:00. Both wait for 07:00 now."""
    cfgs = {"alerts": route(mode="digest", digest_at=["08:00"], quiet_hours="22:00-07:00")}
    clock = ManualClock(datetime(2024, 5, 1, 23, 0, tzinfo=UTC))
    sink = RecordingSink()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        d = following(store, sink, cfgs, clock)
        old = await write(store, 3, tag="old")
        await d.drain()
        assert sink.digests == [] and sink.alerts == []
        cfgs["alerts"] = route(quiet_hours="22:00-07:00")  # immediate, quiet hours kept
        clock.set(datetime(2024, 5, 1, 23, 30, tzinfo=UTC))
        new = await write(store, 1, tag="new")
        await d.drain()
        assert sink.digests == [] and sink.alerts == []
        clock.set(datetime(2024, 5, 2, 7, 0, tzinfo=UTC))
        await d.drain()
        assert sorted(carried(sink)) == sorted(old + new)


async def test_digest_now_takes_alerts_put_back_behind_a_digest_that_failed(
        tmp_path: Path) -> None:
    """Alerts claimed with a digest that then failed go back to wait behind it ("retry"):
    /digest now took only those never claimed, said nothing waited, and they waited for the
    next scheduled digest."""
    from watchers.errors import TransientDeliveryError

    cfg = route(mode="digest", digest_every="1h")
    clock = ManualClock(datetime(2022, 3, 25, 10, 30, tzinfo=UTC))
    sink = RecordingSink([TransientDeliveryError("503 Service Unavailable", retry_after=0.3)])
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        first = await write(store, 2, tag="first")
        delivery = service(store, sink, clock, cfg)
        await delivery.drain()  # kept for 11:00
        assert await delivery.digest_now("alerts") == 2  # the digest row is written
        later = await write(store, 3, tag="later")  # before the next pass
        await delivery.drain()  # the digest fails; the three are put back behind it
        assert {r.state for r in await store.alerts() if r.id > 3} == {"retry"}
        assert await delivery.digest_now("alerts") == 3
        await asyncio.sleep(0.4)  # the digest's retry_after
        await delivery.drain()
        await delivery.drain()
        assert [sorted(i.article.id for i in d.items) for d in sink.digests] == [
            sorted(first), sorted(later)]
