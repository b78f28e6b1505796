"""Outbox guarantees that hold across a pause: every row claimed with the alert that paused its
route is held with it and sent once the route is resumed, whatever its kind. Through the real
watch service, delivery and SQLite file, with a sink that fails on cue."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fakes.sinks import EditingSink, RecordingSink
from tests.service._harness import Fixed, deliver, folder, watch
from watchers.config import RouteConfig, RuleConfig
from watchers.delivery import DeliveryService
from watchers.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from watchers.models import Article
from watchers.rules.lookup import index_terms
from watchers.schedule import ManualClock
from watchers.store import OutboxEntry, SqliteStore

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
RULES = [RuleConfig(name="troops", query="troops"), RuleConfig(name="quake", query="earthquake")]


def art(outlet: str, title: str, minute: int) -> Article:
    return Article(source=outlet, guid=f"{outlet}-{minute}",
                   url=f"https://{outlet}.example/{minute}", title=title,
                   text=f"{title}. Officials confirmed it on the record.",
                   published=T0 + timedelta(minutes=minute))


async def write(store: SqliteStore, *titles: str) -> None:
    for title in titles:
        a = Article(title=title, text=f"{title} near the border.", source="wire")
        assert await store.record(a, [], [OutboxEntry("alerts", (RULES[0],))],
                                  terms=index_terms(a.title, a.text)) is not None


async def retry_waits(store: SqliteStore, delivery: DeliveryService, sink: RecordingSink,
                      sent: int) -> list[float]:
    """Drain until ``sent`` alerts went through; the wait (seconds) each failed attempt was
    given before its retry, read as soon as it was set, in order."""
    waits: list[float] = []
    seen: set[tuple[int, int]] = set()
    for _ in range(2000):
        await delivery.drain()
        if len(sink.alerts) >= sent:
            return waits
        for row in await store.alerts(state="retry"):
            if row.next_attempt_at is not None and (row.id, row.attempts) not in seen \
                    and row.reason != "waiting behind an earlier alert":
                seen.add((row.id, row.attempts))
                waits.append((row.next_attempt_at - datetime.now(UTC)).total_seconds())
        await asyncio.sleep(0.005)
    raise AssertionError(f"only {len(sink.alerts)} of {sent} alert(s) sent")


async def test_a_story_update_claimed_behind_an_alert_that_pauses_is_sent_on_resume(
        tmp_path: Path) -> None:
    """The route pauses on an alert; the story update claimed after it in the same batch must
    wait with it (held), not stay "sending" where nothing claims it again until a restart."""
    clock = ManualClock(T0 + timedelta(hours=1))
    sink = EditingSink()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, rules=RULES, stories_mode=lambda r: "edit", clock=clock)
        ap, dw = Fixed("ap", []), Fixed("dw", [])
        for source in (ap, dw):
            await service.add_source(folder(source.name, tmp_path), source)
        delivery = deliver(store, sink, routes=lambda r: RouteConfig(target=1), clock=clock,
                           stories_mode=lambda r: "edit", known_routes=["alerts"])
        ap.items = [art("ap", "Russian troops cross the border near Kharkiv", 0)]
        await service.run_once()
        await delivery.drain()
        assert [a.article.source for a in sink.alerts] == ["ap"]

        # A new story's alert, then an update of the first story, waiting on one route.
        ap.items = [art("ap", "Magnitude 7.8 earthquake strikes Turkey, hundreds dead", 1)]
        await service.run_once()
        dw.items = [art("dw", "Russian troops cross border near Kharkiv, officials say", 2)]
        await service.run_once()
        rows = [r for r in await store.alerts() if r.route == "alerts"]
        assert [r.kind for r in rows] == ["alert", "alert", "update"]
        sink.failures = [PermanentDeliveryError("403 Missing Access", pause_destination=True)]
        await delivery.drain()
        assert delivery.paused_routes() == {"alerts": "403 Missing Access"}
        states = {r.kind: r.state for r in await store.alerts() if r.route == "alerts"
                  and r.id != rows[0].id}
        assert states == {"alert": "held", "update": "held"}

        assert await delivery.resume_route("alerts") == 1
        await delivery.drain()
        assert [a.article.source for a in sink.alerts] == ["ap", "ap"]
        assert [(u.article.source, u.message_id) for u in sink.updates] == [("dw", "m1")]
        assert {r.state for r in await store.alerts()} == {"delivered"}


async def test_a_surge_held_by_a_pause_is_posted_once_the_route_resumes(tmp_path: Path) -> None:
    surge = "troops: 40 matches in the last hour, about eight times as many as usual"
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        a = Article(title="Troops gather", text="Troops gather near the border.", source="wire")
        await store.record(a, [], [OutboxEntry("alerts", (RULES[0],))],
                           terms=index_terms(a.title, a.text))
        assert await store.add_surge("troops", "alerts", surge, T0) > 0
        sink = RecordingSink([PermanentDeliveryError("403 Missing Access",
                                                     pause_destination=True)])
        delivery = deliver(store, sink)
        await delivery.drain()
        assert delivery.paused_routes() == {"alerts": "403 Missing Access"}
        assert {r.kind: r.state for r in await store.alerts()} == {"alert": "held",
                                                                  "surge": "held"}
        assert await delivery.resume_route("alerts") == 1
        await delivery.drain()
        assert [x.article.title for x in sink.alerts] == ["Troops gather"]
        assert sink.notices == [("alerts", surge)]
        assert {r.state for r in await store.alerts()} == {"delivered"}


async def test_a_route_failing_again_and_again_waits_no_longer_than_the_longest_backoff(
        tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, "Troops gather")
        sink = RecordingSink([TransientDeliveryError("503 Service Unavailable")] * 8)
        delivery = deliver(store, sink, base_backoff=0.01, max_backoff=0.04)
        waits = await retry_waits(store, delivery, sink, 1)
        assert len(waits) == 8
        # the doubling stops at max_backoff (give or take its 20% jitter)
        assert max(waits) <= 0.04 * 1.2
        assert [a.attempt for a in sink.alerts] == [9]


async def test_a_delivery_ends_the_backoff_and_the_next_failure_starts_it_afresh(
        tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, "Troops gather")
        sink = RecordingSink([TransientDeliveryError("503 Service Unavailable")] * 6)
        delivery = deliver(store, sink, base_backoff=0.01, max_backoff=60)
        assert len(await retry_waits(store, delivery, sink, 1)) == 6
        await write(store, "Troops withdraw")
        sink.failures = [TransientDeliveryError("503 Service Unavailable")]
        (wait,) = await retry_waits(store, delivery, sink, 2)
        # the first failure after a success waits base_backoff (give or take 20%), not the
        # seventh doubling of it
        assert wait <= 0.01 * 1.2
        assert [a.article.title for a in sink.alerts] == ["Troops gather", "Troops withdraw"]


async def test_a_sink_that_fails_unexpectedly_keeps_the_alert_for_a_retry(tmp_path: Path) -> None:
    """A bug in a sink (any exception that is no delivery error) is no answer from the
    destination: the alert is tried again, never taken for sent."""
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, "Troops gather", "Troops withdraw")
        sink = RecordingSink([KeyError("embed")])
        delivery = deliver(store, sink)
        await retry_waits(store, delivery, sink, 2)
        assert [(a.article.title, a.attempt) for a in sink.alerts] == [
            ("Troops gather", 2), ("Troops withdraw", 2)]
        assert {r.state for r in await store.alerts()} == {"delivered"}


async def test_a_delivery_error_of_no_kind_rejects_the_alert_with_its_reason(
        tmp_path: Path) -> None:
    """A sink's DeliveryError that says neither "try again" nor "refused" settles the alert as
    rejected (its reason kept); it is not left "sending", where nothing would claim it."""
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, "Troops gather", "Troops withdraw")
        sink = RecordingSink([DeliveryError("the channel has no such thread")])
        assert await deliver(store, sink).drain() == 1
        assert [a.article.title for a in sink.alerts] == ["Troops withdraw"]
        (rejected,) = await store.alerts(state="rejected")
        assert rejected.reason == "the channel has no such thread"
        assert {r.state for r in await store.alerts()} == {"rejected", "delivered"}


async def test_a_retry_timed_by_a_clock_that_ran_ahead_holds_the_route_no_longer(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A retry written while the machine's clock ran a day ahead (set back since) held its
    route until that day: the claim stops at the first row not yet due, so every alert after
    it waited too, and nothing said why. No wait is longer than the longest backoff or
    Retry-After: at a start, such a row is due now, and said so."""
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, "Troops gather", "Troops withdraw")
        (first, _) = await store.alerts()
        await store.mark_retry(first.id, at=datetime.now(UTC) + timedelta(days=1),
                               reason="503 Service Unavailable")
        soon = datetime.now(UTC) + timedelta(minutes=30)  # a Retry-After: left as it is
        sink = RecordingSink()
        delivery = deliver(store, sink, poll_interval=0.02)
        delivery.start()
        try:
            for _ in range(500):
                if len(sink.alerts) == 2:
                    break
                await asyncio.sleep(0.01)
        finally:
            await delivery.stop()
        assert [a.article.title for a in sink.alerts] == ["Troops gather", "Troops withdraw"]
        assert "1 row(s) waiting for a retry later than any wait allows" in caplog.text
        await write(store, "Troops return")
        (third,) = await store.alerts(state="pending")
        await store.mark_retry(third.id, at=soon, reason="429")
        assert await store.clamp_retries(datetime.now(UTC) + timedelta(hours=1),
                                         datetime.now(UTC)) == 0
