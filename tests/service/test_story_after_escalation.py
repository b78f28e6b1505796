"""A story whose alert was posted at once, then escalated (a rule of higher severity, below
break_through) while quiet hours or the hourly cap kept the escalation for a digest: the later
articles of the story edit the story's message as ever. Before, each was marked delivered
unsent ("shown in a digest already"), and the message never showed another outlet."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.fakes.sinks import EditingSink
from tests.service._harness import Fixed, deliver, folder, watch
from watchers.config import RouteConfig, RuleConfig
from watchers.models import Article
from watchers.schedule import ManualClock
from watchers.store import SqliteStore


async def _scenario(tmp_path: Path, cfg: RouteConfig, start: datetime,
                    escalate_at: datetime, digest_at: datetime, later_at: datetime,
                    filler: int = 0) -> tuple[EditingSink, Any]:
    clock = ManualClock(start)
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, rules=[RuleConfig(name="troops", query="troops"),
                                      RuleConfig(name="invasion", query="invasion",
                                                 severity="high"),
                                      RuleConfig(name="filler", query="weather")],
                        stories_mode=lambda r: "edit", clock=clock)
        names = ("ap", "bbc", "dw", "npr", "wx")
        sources = {n: Fixed(n, []) for n in names}
        for name, source in sources.items():
            await service.add_source(folder(name, tmp_path), source)
        sink = EditingSink()
        delivery = deliver(store, sink, routes=lambda r: cfg, clock=clock,
                           stories_mode=lambda r: "edit", known_routes=["alerts"])

        async def report(outlet: str, items: list[tuple[str, str]]) -> None:
            for source in sources.values():
                source.items = []
            sources[outlet].items = [Article(
                source=outlet, guid=f"{outlet}-{g}", url=f"https://{outlet}.example/{g}",
                title=title, text=f"{title}. Officials confirmed the reports.",
                published=clock.now()) for g, title in items]
            await service.run_once()
            await delivery.drain()

        await report("ap", [("1", "Russian troops cross the border near Kharkiv")])
        if filler:
            await report("wx", [(str(i), f"Weather bulletin number {i} for region {i*7}")
                                for i in range(filler)])
        clock.set(escalate_at)
        await report("bbc", [("1", "Russian troops cross the border near Kharkiv in "
                                   "full-scale invasion")])
        clock.set(digest_at)
        await delivery.drain()
        clock.set(later_at)
        await report("dw", [("1", "Russian troops cross the border near Kharkiv, "
                                  "invasion under way")])
        await report("npr", [("1", "Russian troops cross the border near Kharkiv as "
                                   "invasion widens")])
        rows = [(r.id, r.kind, r.state, r.reason, r.remote_id)
                for r in await store.alerts(limit=100)]
        return sink, rows


async def test_updates_after_an_escalation_kept_by_quiet_hours(tmp_path: Path) -> None:
    cfg = RouteConfig(target=1, quiet_hours="22:00-07:00", break_through="critical")
    sink, _ = await _scenario(
        tmp_path, cfg, start=datetime(2024, 5, 1, 21, 50, tzinfo=UTC),
        escalate_at=datetime(2024, 5, 1, 23, 0, tzinfo=UTC),
        digest_at=datetime(2024, 5, 2, 7, 0, tzinfo=UTC),
        later_at=datetime(2024, 5, 2, 9, 0, tzinfo=UTC))
    assert [a.article.source for a in sink.alerts] == ["ap"]  # posted before quiet hours
    # the escalation, in the morning digest
    assert [[i.article.source for i in d.items] for d in sink.digests] == [["bbc"]]
    assert [(u.message_id, u.article.source) for u in sink.updates] == [
        ("m1", "dw"), ("m1", "npr")]


async def test_updates_after_an_escalation_folded_by_the_cap(tmp_path: Path) -> None:
    cfg = RouteConfig(target=1, max_per_hour=2)
    sink, _ = await _scenario(
        tmp_path, cfg, start=datetime(2024, 5, 1, 10, 5, tzinfo=UTC),
        escalate_at=datetime(2024, 5, 1, 10, 20, tzinfo=UTC),
        digest_at=datetime(2024, 5, 1, 11, 0, tzinfo=UTC),
        later_at=datetime(2024, 5, 1, 12, 30, tzinfo=UTC), filler=1)
    assert [a.article.source for a in sink.alerts] == ["ap", "wx"]
    assert [d.reason for d in sink.digests] == ["cap"]
    assert [(u.message_id, u.article.source) for u in sink.updates] == [
        ("m1", "dw"), ("m1", "npr")]
