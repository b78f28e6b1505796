"""An article that fires a rule waiting for two outlets and a milder rule needing one: the
milder rule's alert posts at once, alone, and the stricter one posts when a second outlet's
article fires it, as an escalation. The two were one alert that posted at once, with the
stricter rule's severity and its role's ping, on one outlet's word. Through the real engine,
feeds served over HTTP on 127.0.0.1; on SQLite and on PostgreSQL (a throwaway cluster)."""

from __future__ import annotations

from pathlib import Path

from tests.engine.test_outlet_corroboration import feed, report, storage  # noqa: F401
from tests.fakes.feed_server import FeedServer, Route
from tests.fakes.sinks import RecordingSink
from tests.service.test_identity import rss
from watchers.config import parse_config
from watchers.engine import open_engine


async def test_a_milder_rule_posts_alone_and_the_stricter_waits_for_its_outlets(
        tmp_path: Path, storage: dict[str, str]) -> None:  # noqa: F811
    cfg = parse_config({
        "storage": storage, "channels": {"alerts": 1}, "stories": {"window": "48h"},
        "fetch": {"allow_private": ["127.0.0.1/32"]},
        "rules": [{"name": "massing", "query": "troops AND border", "severity": "critical",
                   "min_sources": 2, "mention_role": 222222222222222222},
                  {"name": "satellite", "query": "satellite", "severity": "info"}],
        "sources": [], }, base_dir=tmp_path)
    sink = RecordingSink()
    async with FeedServer() as server:
        for name in ("dw", "bbc"):
            server.set(f"/{name}", Route(body=rss([])))
        cfg = cfg.model_copy(update={"sources": parse_config({
            "fetch": {"allow_private": ["127.0.0.1/32"]},
            "sources": [feed(server, "dw"), feed(server, "bbc")]}).sources})
        async with open_engine(cfg, start=False, default_sink=sink) as engine:
            await engine.run_once()  # the baselines
            report(server, "dw", "dw", 0)
            await engine.run_once()
            await engine.delivery.drain()
            (first,) = sink.alerts
            assert [r.name for r in first.rules] == ["satellite"]
            assert first.severity == "info"
            assert await engine.store.alert_counts() == {"delivered": 1}
            report(server, "bbc", "bbc", 10)  # a second outlet
            await engine.run_once()
            await engine.delivery.drain()
    first, second = sink.alerts
    assert sorted(r.name for r in second.rules) == ["massing", "satellite"]
    assert second.severity == "critical" and second.escalated_from == "info"
    assert second.story is not None and len(second.story.outlets) == 2
