"""Ingest stores which rules matched and their scores; an alert's and /article's evidence (the
spans shown as "why") is found again when shown: a real SQLite file, the real services."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from bot.embeds import alert_message
from tests.conftest import SEEDS
from tests.fakes.sinks import RecordingSink
from tests.service._harness import Fixed, deliver, folder, rule, watch
from watchers.config import RuleConfig, parse_config
from watchers.delivery import Alert
from watchers.engine import open_engine
from watchers.models import Article
from watchers.rules import Rule, RuleSet
from watchers.store import SqliteStore

T = TypeVar("T")

ARTICLE = Article(
    id="a1", source="wire", url="https://example.org/a1",
    title="Troops near Kiev as talks stall",
    text="Soldiers and troops gathered near Kyiv. Officials in Kiew said talks would go on.")


class CountingExecutor(ThreadPoolExecutor):
    """A thread pool that counts the calls it was given."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.calls = 0

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        self.calls += 1
        return super().submit(fn, *args, **kwargs)


async def ingest_and_deliver(
        tmp_path: Path, rules: list[RuleConfig], aliases: dict[str, list[str]], threshold: int,
        *, before_delivery: list[RuleConfig] | None = None,
        executor: Executor | None = None) -> tuple[SqliteStore, list[Alert]]:
    store = await SqliteStore.open(tmp_path / "nw.db")
    sink = RecordingSink()
    service = watch(store, sources=[], rules=rules, aliases=aliases, threshold=threshold)
    await service.add_source(folder("wire", tmp_path), source=Fixed("wire", [ARTICLE]))
    report = await service.run_once()
    assert report[0].new == 1
    if before_delivery is not None:
        service.set_rules(before_delivery)
    delivery = deliver(store, sink, aliases=aliases, threshold=threshold, executor=executor)
    assert await delivery.drain() == 1
    return store, sink.alerts


async def test_the_alert_shows_the_evidence_the_store_does_not_keep(tmp_path: Path) -> None:
    rules = [rule("troops", '"troops gathered" OR soldiers'), rule("city", "kyyiv~")]
    aliases = {"kyyiv": ["kiew"]}
    threads = CountingExecutor()
    store, alerts = await ingest_and_deliver(tmp_path, rules, aliases, 80, executor=threads)
    try:
        # Found in the delivery's threads, not on the event loop (a long article takes time).
        assert threads.calls == 1
        stored = await store.matches_for("a1")
        assert {m.rule for m in stored} == {"troops", "city"}
        assert all(m.hits == () for m in stored)  # decided at ingest, no evidence kept
        # The alert's evidence is what matching the article with the same rules, aliases and
        # threshold gives, scores included.
        expected = RuleSet([Rule("troops", '"troops gathered" OR soldiers', 80),
                            Rule("city", "kyyiv~", 80)], aliases=aliases).match(ARTICLE)
        (alert,) = alerts
        assert list(alert.matches) == expected
        assert {h.text for m in alert.matches for h in m.hits} >= {"troops gathered", "Kiew",
                                                                  "Soldiers"}
        assert [m.score for m in alert.matches] == [m.score for m in stored]
    finally:
        await store.aclose()
        threads.shutdown()


async def test_a_rule_changed_before_delivery_shows_why_the_article_matched_it_then(
        tmp_path: Path) -> None:
    rules = [rule("troops", "soldiers")]
    store, alerts = await ingest_and_deliver(
        tmp_path, rules, {}, 85, before_delivery=[rule("troops", "officials")])
    try:
        (alert,) = alerts
        assert [(m.rule, [h.text for h in m.hits]) for m in alert.matches] == [
            ("troops", ["Soldiers"])]
    finally:
        await store.aclose()


async def test_article_and_recent_show_evidence_by_the_running_rules(tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    cfg = parse_config({
        "storage": {"path": "nw.db"},
        "channels": {"alerts": 1},
        "sources": [{"name": "seeds", "type": "folder", "path": "seeds", "settle": 0}],
        "rules": [{"name": "troops", "query": "troops OR soldiers"}],
    }, base_dir=tmp_path)
    async with open_engine(cfg, start=False) as engine:
        await engine.add_rule({"name": "kyiv", "query": "kyiv~"})
        await engine.run_once()
        recent = await engine.recent(limit=50)
        assert recent and all(m.hits for _, matches in recent for m in matches)
        article, matches = recent[0]
        assert all(m.hits == () for m in await engine.store.matches_for(article.id))
        found = await engine.article(article.id)
        assert found is not None
        assert found[1] == engine.watch.ruleset.evidence(article, [m.rule for m in matches])
        # A rule removed since: its match is shown by rule and score, no spans.
        fired = {m.rule for _, ms in recent for m in ms}
        assert "kyiv" in fired
        kyiv_article = next(a for a, ms in recent if any(m.rule == "kyiv" for m in ms))
        assert await engine.remove_rule("kyiv")
        found = await engine.article(kyiv_article.id)
        assert found is not None
        shown = {m.rule: m for m in found[1]}
        assert shown["kyiv"].hits == () and shown["kyiv"].score > 0


async def test_an_alert_whose_kept_rules_do_not_compile_posts_without_spans(
        tmp_path: Path) -> None:
    """Rows written by older versions keep a rule's name only, or a query that no longer
    parses: the alert still posts, with its stored rule and score."""
    store = await SqliteStore.open(tmp_path / "nw.db")
    try:
        service = watch(store, sources=[], rules=[rule("troops", "soldiers"),
                                                  rule("talks", "talks")])
        await service.add_source(folder("wire", tmp_path), source=Fixed("wire", [ARTICLE]))
        await service.run_once()
        with sqlite3.connect(tmp_path / "nw.db") as db:
            (raw,) = db.execute("SELECT rules FROM outbox").fetchone()
            kept = json.loads(raw)
            assert sorted(r["name"] for r in kept) == ["talks", "troops"]
            # One kept by name only (before schema 4), one whose query no longer parses.
            talks = next(r for r in kept if r["name"] == "talks")
            talks["query"] = "((("
            db.execute("UPDATE outbox SET rules = ?", (json.dumps(["troops", talks]),))
        sink = RecordingSink()
        assert await deliver(store, sink).drain() == 1
        (alert,) = sink.alerts
        assert [(m.rule, m.hits, m.score > 0) for m in alert.matches] == [
            ("talks", (), True), ("troops", (), True)]
        # The message says so rather than show an empty "why".
        embed = alert_message(alert)["embed"]
        why = {f.name: f.value for f in embed.fields}["Why"]
        assert why == "matched; the words that fired it could not be found again"
    finally:
        await store.aclose()


async def test_a_regex_s_evidence_is_found_with_the_delivery_s_own_time_budget(
        tmp_path: Path) -> None:
    """The rule matched at ingest: its evidence gets more regex time than ingest's budget (the
    lookup threads may be busy); a budget spent before the regex runs finds no spans, and the
    alert still posts."""
    rules = [rule("casualties", r"/\bsoldiers and troops\b/")]
    for budget, spans in ((1.0, ["Soldiers and troops"]), (0.0, [])):
        folder_path = tmp_path / str(budget)
        folder_path.mkdir()
        store = await SqliteStore.open(folder_path / "nw.db")
        try:
            service = watch(store, sources=[], rules=rules)
            await service.add_source(folder("wire", folder_path),
                                     source=Fixed("wire", [ARTICLE]))
            await service.run_once()
            sink = RecordingSink()
            delivery = deliver(store, sink, evidence_regex_budget=budget)
            assert await delivery.drain() == 1
            (alert,) = sink.alerts
            assert [h.text for m in alert.matches for h in m.hits] == spans
        finally:
            await store.aclose()
    assert deliver(store, RecordingSink()).evidence_regex_budget > service.regex_budget
