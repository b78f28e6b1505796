"""The outbox rules the delivery service relies on, against a real SQLite file and a fake sink:
order within a route, pauses that outlive a restart, notices as durable outbox rows, the rules
as they were when the article matched, and the "maybe sent" mark."""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

import watchers.delivery as delivery_module
from watchers.config import RuleConfig
from watchers.delivery import Alert, DeliveryService
from watchers.errors import (
    NewswatchError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UncertainDeliveryError,
)
from watchers.models import Article
from watchers.rules.lookup import index_terms
from watchers.store import SqliteStore
from watchers.store.base import OutboxEntry

TROOPS = RuleConfig(name="troops", query="troops", severity="high", mention_role=42)


class ScriptedSink:
    """Records what it is given; raises the scripted errors first, in order."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.alerts: list[Alert] = []
        self.notices: list[tuple[str, str]] = []

    async def deliver(self, alert: Alert) -> str | None:
        if self.errors:
            raise self.errors.pop(0)
        self.alerts.append(alert)
        return f"m{alert.id}"

    async def notice(self, route: str, text: str, *, nonce: str | None = None,
                     maybe_sent: bool = False) -> str | None:
        self.notices.append((route, text))
        return None

    @property
    def titles(self) -> list[str]:
        return [a.article.title for a in self.alerts]


async def write(store: SqliteStore, route: str, *titles: str) -> None:
    for t in titles:
        art = Article(title=t, text=f"{t}: troops near the border.", source="wire")
        stored = await store.record(art, [], [OutboxEntry(route, (TROOPS,))],
                                    terms=index_terms(art.title, art.text))
        assert stored is not None


def service(store: SqliteStore, sink: ScriptedSink, **kw: object) -> DeliveryService:
    return DeliveryService(store=store, default_sink=sink, base_backoff=0.01,
                           **kw)  # type: ignore[arg-type]


async def drain_until(delivery: DeliveryService, done: object, rounds: int = 100) -> None:
    for _ in range(rounds):
        await delivery.drain()
        if done():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)


async def test_a_later_alert_never_overtakes_one_waiting_for_a_retry(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, "alerts", "a1", "a2", "a3")
        sink = ScriptedSink(TransientDeliveryError("503", retry_after=0.2))
        delivery = service(store, sink)
        assert await delivery.drain() == 0  # a1 failed; a2 and a3 wait behind it
        await write(store, "alerts", "a4")
        now = datetime.now(UTC)
        assert await store.claim_route("alerts", now=now) == []  # a4 may not jump the queue
        assert (await store.due_routes())["alerts"] is not None
        await drain_until(delivery, lambda: len(sink.alerts) == 4)
        assert sink.titles == ["a1", "a2", "a3", "a4"]
        assert sink.alerts[0].attempt == 2  # a1 went on its second try
        # each alert carries the rule as it was when the article matched
        assert all(a.rules == (TROOPS,) and a.severity == "high" for a in sink.alerts)


async def test_a_pause_outlives_a_restart_and_resuming_sends_in_order(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, "alerts", "a1", "a2")
        await write(store, "desk", "d1")
        sink = ScriptedSink(PermanentDeliveryError("403 Missing Access", pause_destination=True))
        delivery = service(store, sink, notices_route="ops")
        await drain_until(delivery, lambda: len(sink.alerts) == 1 and len(sink.notices) == 1)
        assert sink.titles == ["d1"]  # the other route went on
        assert delivery.paused_routes() == {"alerts": "403 Missing Access"}
        # the notice is an outbox row of the notices route, delivered like an alert
        ((route, text),) = sink.notices
        assert route == "ops" and "'alerts' paused" in text and "2 alert(s) held" in text
        assert await store.notice_counts() == {"delivered": 1}
    # a restart: a new service on the same file still knows the route is paused
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, "alerts", "a3")
        sink = ScriptedSink()
        delivery = service(store, sink)
        await delivery.drain()
        assert delivery.paused_routes() == {"alerts": "403 Missing Access"}
        assert sink.alerts == []
        # a3, written while paused, is held with the others
        status = await delivery.status()
        assert status.paused == {"alerts": "403 Missing Access"} and status.held == {"alerts": 3}
        assert await delivery.resume_route("alerts") == 3
        await drain_until(delivery, lambda: len(sink.alerts) == 3)
        assert sink.titles == ["a1", "a2", "a3"]
        assert await store.paused_routes() == {}
        assert await store.integrity_check() == "ok"


async def test_resuming_a_route_that_has_no_destination_now_keeps_it_held(
        tmp_path: Path) -> None:
    """A paused route taken out of the config, then resumed: the answer said its alerts were
    being sent, and they waited unsent with no route in /alerts status."""
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, "alerts", "a1", "a2")
        sink = ScriptedSink(PermanentDeliveryError("403 Missing Access", pause_destination=True))
        await drain_until(service(store, sink), lambda: len(sink.notices) == 0)
        delivery = DeliveryService(store=store, sinks={"desk": ScriptedSink()},
                                   base_backoff=0.01)
        await delivery.drain()
        with pytest.raises(NewswatchError, match="'alerts' has no destination now"):
            await delivery.resume_route("alerts")
        status = await delivery.status()
        assert status.paused == {"alerts": "403 Missing Access"} and status.held == {"alerts": 2}


async def test_an_invalid_alert_is_rejected_once_with_its_reason(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, "alerts", "a1", "a2")
        sink = ScriptedSink(PermanentDeliveryError("400 Invalid Form Body"))
        delivery = service(store, sink)
        assert await delivery.drain() == 1
        (rejected,) = await store.alerts(state="rejected")
        assert rejected.reason == "400 Invalid Form Body" and rejected.attempts == 1
        assert sink.titles == ["a2"]
        assert (await delivery.status()).rejected[-1].id == rejected.id


async def test_a_send_that_may_have_gone_through_is_marked_for_the_retry(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, "hook", "h1", "h2")
        sink = ScriptedSink(UncertainDeliveryError("connection dropped after sending"))
        delivery = service(store, sink)
        await drain_until(delivery, lambda: len(sink.alerts) == 2)
        assert [a.maybe_sent for a in sink.alerts] == [True, False]
        assert await store.count_maybe_sent() == 1


async def test_an_interrupted_claim_comes_back_maybe_sent_only_if_its_sink_was_called(
        tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, "hook", "h1", "h2")
        first, second = await store.claim_route("hook", now=datetime.now(UTC))
        # the delivery marks a row before it calls the sink; the process dies mid-send
        await store.mark_maybe_sent(first.id)
        # at the next start:
        assert await store.requeue_interrupted() == 2
        assert await store.count_maybe_sent() == 1
        sink = ScriptedSink()
        await service(store, sink).drain()
        assert [(a.id, a.maybe_sent, a.attempt) for a in sink.alerts] == [
            (first.id, True, 2), (second.id, False, 2)]
        # fixed before the first try, kept for every retry
        assert [a.nonce for a in sink.alerts] == [first.nonce, second.nonce]
        # delivered: the second row's own mark, set before its sink was called, is taken back
        assert await store.count_maybe_sent() == 1


async def test_routes_are_delivered_side_by_side(tmp_path: Path) -> None:
    """A route stuck in a slow send does not delay another route's alerts."""
    release = asyncio.Event()
    delivered: list[str] = []

    class SlowForAlerts:
        async def deliver(self, alert: Alert) -> str | None:
            if alert.route == "alerts":
                await release.wait()
            delivered.append(alert.article.title)
            return None

    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, "alerts", "a1")
        await write(store, "desk", "d1", "d2")
        sink = SlowForAlerts()
        delivery = DeliveryService(store=store, default_sink=sink, poll_interval=0.02)
        delivery.start()
        try:
            for _ in range(200):
                if len(delivered) == 2:
                    break
                await asyncio.sleep(0.01)
            assert delivered == ["d1", "d2"]
            release.set()
            for _ in range(200):
                if len(delivered) == 3:
                    break
                await asyncio.sleep(0.01)
            assert delivered == ["d1", "d2", "a1"]
        finally:
            await delivery.aclose()
        assert (await store.alert_counts()) == {"delivered": 3}


async def test_a_clean_stop_lets_the_send_in_flight_finish(tmp_path: Path) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    class Slow:
        async def deliver(self, alert: Alert) -> str | None:
            started.set()
            await release.wait()
            return "m1"

    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, "alerts", "a1", "a2", "a3")
        sink = Slow()
        delivery = DeliveryService(store=store, default_sink=sink, poll_interval=0.02)
        delivery.start()
        await asyncio.wait_for(started.wait(), 5)
        stopping = asyncio.create_task(delivery.stop(grace=5))
        await asyncio.sleep(0.05)
        release.set()
        await stopping
        # a1 finished and was recorded; a2 and a3 were never tried and wait, unmarked
        assert await store.alert_counts() == {"delivered": 1, "retry": 2}
        assert await store.count_maybe_sent() == 0


async def test_a_notice_outlives_a_restart_and_keeps_its_place(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, "ops", "o1")
        await store.add_notice("ops", "source bbc paused after 10 failures")
        await write(store, "ops", "o2")
    # the process stops before delivering anything; the next start sends all, in order
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        order: list[str] = []

        class Recording(ScriptedSink):
            async def deliver(self, alert: Alert) -> str | None:
                order.append(alert.article.title)
                return await super().deliver(alert)

            async def notice(self, route: str, text: str, *, nonce: str | None = None,
                     maybe_sent: bool = False) -> str | None:
                order.append(text)
                return await super().notice(route, text)

        sink = Recording()
        await drain_until(service(store, sink), lambda: len(order) == 3)
        assert order == ["o1", "source bbc paused after 10 failures", "o2"]
        assert await store.notice_counts() == {"delivered": 1}
        assert await store.alert_counts() == {"delivered": 2}


class HangingSink(ScriptedSink):
    """Never answers the first send (a webhook that takes minutes); the stop cannot wait."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()

    async def deliver(self, alert: Alert) -> str | None:
        self.started.set()
        await asyncio.Event().wait()
        return None


async def test_a_stop_during_a_slow_send_leaves_only_that_send_uncertain(
        tmp_path: Path) -> None:
    """Every row the route had claimed was left 'sending', so the next start took each for
    'maybe sent' (a webhook may then show it twice); only the interrupted one is."""
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, "alerts", "a1", "a2", "a3")
        sink = HangingSink()
        delivery = service(store, sink)
        delivery.start()
        await asyncio.wait_for(sink.started.wait(), 10)
        await delivery.stop(grace=0.1)
        states = {r.article_id: (r.state, r.id) for r in await store.alerts(limit=10)}
        assert sorted(s for s, _ in states.values()) == ["retry", "retry", "sending"]
        # the next start: the interrupted send alone may have gone through
        assert await store.requeue_interrupted() == 1
        assert await store.count_maybe_sent() == 1
        second = ScriptedSink()
        await drain_until(service(store, second), lambda: len(second.alerts) == 3)
        assert second.titles == ["a1", "a2", "a3"]


async def test_a_cancelled_drain_leaves_only_the_send_in_flight_uncertain(
        tmp_path: Path) -> None:
    """Not a stop but a cancellation (a timeout around ``run --once``, Ctrl-C): the rows the
    route had claimed behind the slow send stayed 'sending' and came back 'maybe sent'."""
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, "alerts", "a1", "a2", "a3")
        sink = HangingSink()
        task = asyncio.ensure_future(service(store, sink).drain())
        await asyncio.wait_for(sink.started.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        states = sorted(r.state for r in await store.alerts(limit=10))
        assert states == ["retry", "retry", "sending"]
        assert await store.requeue_interrupted() == 1
        second = ScriptedSink()
        await drain_until(service(store, second), lambda: len(second.alerts) == 3)
        assert [a.maybe_sent for a in second.alerts] == [True, False, False]


class CancellingSink(ScriptedSink):
    """Answers at once, and on its second alert cancels the task that drains: the
    cancellation arrives with the answer."""

    def __init__(self) -> None:
        super().__init__()
        self.draining: asyncio.Task[int] | None = None

    async def deliver(self, alert: Alert) -> str | None:
        got = await super().deliver(alert)
        if len(self.alerts) == 2 and self.draining is not None:
            self.draining.cancel()
        return got


async def test_a_cancellation_that_comes_with_a_sink_s_answer_stops_the_drain(
        tmp_path: Path) -> None:
    """Python 3.11's wait_for returned the answer and dropped the cancellation: the drain went
    on sending all twelve alerts before it ended as cancelled."""
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, "alerts", *(f"a{i}" for i in range(12)))
        sink = CancellingSink()
        sink.draining = task = asyncio.ensure_future(service(store, sink).drain())
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sink.titles == ["a0", "a1"]
        states = [r.state for r in await store.alerts(limit=20)]
        assert states.count("delivered") == 2 and "sending" not in states


async def test_a_loop_that_failed_is_stopped_without_saying_it_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The store failed under the delivery loop (reported once, the engine stops): stopping
    raised the same error again and logged it with a traceback, "delivery task failed while
    closing"."""
    failures: list[BaseException] = []
    store = await SqliteStore.open(tmp_path / "nw.db")
    delivery = DeliveryService(store=store, default_sink=ScriptedSink(),
                               on_fatal=failures.append)
    await store.aclose()  # the loop's first statement fails
    delivery.start()
    for _ in range(200):
        if failures:
            break
        await asyncio.sleep(0.01)
    assert failures and "is closed" in str(failures[0])
    await delivery.stop()
    assert "failed while closing" not in caplog.text


@pytest.mark.parametrize(("after", "at_most"), [
    (math.inf, 1.0), (math.nan, 1.0), (1e15, 3_600.0), (1e9, 3_600.0), (-5.0, 1.0)],
    ids=["inf", "nan", "1e15", "1e9", "negative"])
async def test_a_retry_after_out_of_all_reason_delays_the_route_within_reason(
        tmp_path: Path, after: float, at_most: float) -> None:
    """A destination (or a proxy in front of it) answering retry_after "inf", NaN or 1e15
    seconds overflowed the retry's time: delivery stopped with an OverflowError. And 1e9 parked
    the route for a day (the longest taken), across restarts, with nothing to free it."""
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, "alerts", "a1")
        sink = ScriptedSink(TransientDeliveryError("429", retry_after=after))
        delivery = service(store, sink)
        assert await delivery.drain() == 0
        (row,) = await store.alerts()
        assert row.state == "retry" and row.next_attempt_at is not None
        wait = (row.next_attempt_at - datetime.now(UTC)).total_seconds()
        assert wait <= at_most
        if at_most > 1.0:  # asked again within the hour, saying what was asked
            assert "asked to wait" in (row.reason or "") and wait > at_most - 60
        if at_most == 1.0:
            await drain_until(delivery, lambda: len(sink.alerts) == 1)
            assert sink.titles == ["a1"]


async def test_resuming_a_route_that_backs_off_tries_it_again_now(tmp_path: Path) -> None:
    """A route waiting out an hour's retry_after (a proxy's bogus one) could not be freed:
    /alerts resume answered that it was not paused, and the wait is stored across restarts."""
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, "alerts", "a1", "a2")
        sink = ScriptedSink(TransientDeliveryError("429", retry_after=3600))
        delivery = service(store, sink)
        assert await delivery.drain() == 0
        assert set(delivery.backing_off_routes()) == {"alerts"}
        assert delivery.paused_routes() == {}
        assert await delivery.drain() == 0  # still waiting
        assert await delivery.resume_route("alerts") == 0  # none was held
        assert delivery.backing_off_routes() == {}
        assert await delivery.drain() == 2
        assert sink.titles == ["a1", "a2"]


async def test_a_destination_failing_again_and_again_is_logged_at_first_then_hourly(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A destination answering 5xx for days wrote a warning at every retry (about 300 a day at
    the backoff's cap). Its first failures in a row are warnings, the fifth saying that more
    are logged once an hour; the rest are debug lines; and the log says when it delivers
    again. The alert is still retried each time and sent once."""
    caplog.set_level(logging.DEBUG, logger="watchers.delivery")
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, "alerts", "a1")
        sink = ScriptedSink(*(TransientDeliveryError("503 Service Unavailable")
                              for _ in range(12)))
        delivery = service(store, sink, max_backoff=0.02)
        await drain_until(delivery, lambda: len(sink.alerts) == 1, rounds=400)
        assert sink.titles == ["a1"]

    def said(level: int) -> list[str]:
        return [r.getMessage() for r in caplog.records
                if r.levelno == level and r.getMessage().startswith("route alerts: 503")]

    warned, quiet = said(logging.WARNING), said(logging.DEBUG)
    assert len(warned) == delivery_module.TOLD_FAILURES == 5
    assert "further failures in a row are logged once an hour" in warned[-1]
    assert len(quiet) == 7 and quiet[-1].endswith("(12 failures in a row)")
    assert [r.getMessage() for r in caplog.records if "delivers again" in r.getMessage()] == [
        "route alerts delivers again after 12 failures in a row"]


async def test_a_long_failing_destination_is_warned_of_again_each_hour(
        tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Past its first failures, a route still failing is warned of again once ``TELL_EVERY``
    has passed since the last warning (here shortened to nothing: each failure)."""
    monkeypatch.setattr(delivery_module, "TELL_EVERY", 0.0)
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await write(store, "alerts", "a1")
        sink = ScriptedSink(*(TransientDeliveryError("503") for _ in range(8)))
        delivery = service(store, sink, max_backoff=0.02)
        await drain_until(delivery, lambda: len(sink.alerts) == 1, rounds=400)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
              and r.getMessage().startswith("route alerts: 503")]
    assert len(warned) == 8 and warned[-1].endswith("(8 failures in a row)")
