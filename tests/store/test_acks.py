"""Acknowledgement in the SQLite store: the first acknowledgement stands, "not relevant" counts
once per person, an alert is escalated at most once and never after an acknowledgement, and
feedback is counted per rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.store._support import art, match, put, rule
from watchers.store import OutboxEntry, SqliteStore
from watchers.store.base import RuleFeedback

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def posted(store: SqliteStore, title: str, *, severity: str = "critical",
                 rules: tuple[str, ...] = ("troops",), at: datetime = T0,
                 route: str = "alerts") -> int:
    """An alert written with its article and delivered at ``at``; returns its outbox id."""
    a = art(title)
    snapshots = tuple(rule(n, severity=severity) for n in rules)
    await put(store, a, [match(a, n) for n in rules],
              [OutboxEntry(route, snapshots, severity=severity)])
    (row,) = await store.claim_route(route, now=datetime.now(UTC))
    await store.mark_delivered(row.id, f"msg-{row.id}", at=at)
    return row.id


async def test_the_first_acknowledgement_stands(store: SqliteStore) -> None:
    alert = await posted(store, "Troops gather")
    assert await store.get_ack(alert) is None
    first = await store.acknowledge(alert, 11, T0 + timedelta(minutes=2))
    assert (first.user_id, first.at, first.first) == (11, T0 + timedelta(minutes=2), True)
    again = await store.acknowledge(alert, 22, T0 + timedelta(minutes=5))
    assert (again.user_id, again.at, again.first) == (11, T0 + timedelta(minutes=2), False)
    stored = await store.get_ack(alert)
    assert stored is not None and (stored.user_id, stored.at) == (11, first.at)


async def test_alert_row_is_only_for_alerts(store: SqliteStore) -> None:
    alert = await posted(store, "Troops gather")
    notice = await store.add_notice("alerts", "a notice")
    row = await store.alert_row(alert)
    assert row is not None and row.remote_id == f"msg-{alert}"
    assert await store.alert_row(notice) is None
    assert await store.alert_row(alert + 1000) is None


async def test_not_relevant_counts_once_per_person(store: SqliteStore) -> None:
    alert = await posted(store, "Troops gather")
    assert await store.mark_not_relevant(alert, 11, T0) is True
    assert await store.mark_not_relevant(alert, 11, T0 + timedelta(minutes=1)) is False
    assert await store.mark_not_relevant(alert, 22, T0) is True


async def test_escalation_due_picks_unacknowledged_critical_alerts_in_the_window(
        store: SqliteStore) -> None:
    due = await posted(store, "Troops gather", at=T0)
    acked = await posted(store, "Troops withdraw", at=T0)
    mild = await posted(store, "Troops parade", severity="high", at=T0)
    recent = await posted(store, "Troops board ships", at=T0 + timedelta(minutes=10))
    old = await posted(store, "Troops in history", at=T0 - timedelta(days=2))
    await store.acknowledge(acked, 1, T0 + timedelta(minutes=1))

    found = await store.escalation_due(delivered_before=T0 + timedelta(minutes=5),
                                       delivered_after=T0 - timedelta(days=1),
                                       severities=("critical",))
    assert [r.id for r in found] == [due]
    assert {mild, recent, old}.isdisjoint(r.id for r in found)
    assert await store.escalation_due(delivered_before=T0 + timedelta(minutes=5),
                                      delivered_after=T0 - timedelta(days=1),
                                      severities=()) == []


async def test_an_alert_is_escalated_once_and_never_after_an_acknowledgement(
        store: SqliteStore) -> None:
    alert = await posted(store, "Troops gather")
    other = await posted(store, "Troops withdraw")
    notice = await store.escalate(alert, "alerts", "⏰ Not acknowledged", T0)
    assert notice is not None
    assert await store.escalate(alert, "alerts", "⏰ Not acknowledged", T0) is None
    (row,) = await store.alerts(kind="notice")
    assert (row.id, row.route, row.text, row.state) == (notice, "alerts", "⏰ Not acknowledged",
                                                        "pending")
    async def due() -> list[int]:
        rows = await store.escalation_due(delivered_before=T0 + timedelta(hours=1),
                                          delivered_after=T0 - timedelta(hours=1),
                                          severities=("critical",))
        return [r.id for r in rows]

    assert await due() == [other]

    await store.acknowledge(other, 5, T0)
    assert await store.escalate(other, "alerts", "late", T0) is None
    assert len(await store.alerts(kind="notice")) == 1
    assert await due() == []


async def test_feedback_per_rule(store: SqliteStore) -> None:
    one = await posted(store, "Troops gather", rules=("troops", "border"))
    two = await posted(store, "Troops withdraw", rules=("troops",))
    await posted(store, "Border closes", rules=("border",))
    # written but never posted (e.g. a muted rule): not counted
    a = art("Troops suppressed")
    await put(store, a, [match(a)], [OutboxEntry("alerts", (rule(),), suppressed=True)])
    await store.acknowledge(one, 1, T0)
    await store.acknowledge(one, 2, T0)
    await store.mark_not_relevant(one, 1, T0)
    await store.mark_not_relevant(one, 2, T0)  # two people, one alert
    await store.mark_not_relevant(two, 3, T0)

    counts = await store.rule_feedback(since=datetime.now(UTC) - timedelta(days=7))
    assert counts == {"troops": RuleFeedback(2, 1, 2), "border": RuleFeedback(2, 1, 1)}
    assert await store.rule_feedback(since=datetime.now(UTC) + timedelta(minutes=1)) == {}
