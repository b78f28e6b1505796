"""/alerts status lists the alerts waiting for more outlets that its asker's server sees: the
first 100 of every server's were read and a server's filtered from them, so one server's 150
waiting alerts hid another's one; and the heading counts them all, not the 100 listed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.embeds import delivery_embed
from tests.fakes.sinks import RecordingSink
from tests.store._support import art, match
from watchers.config import Config, RuleConfig, parse_config
from watchers.engine import open_engine
from watchers.rules.lookup import index_terms
from watchers.store.base import ArticleRecord, OutboxEntry, Store, StoryLink

A = 111


def config(tmp_path: Path) -> Config:
    (tmp_path / "seeds").mkdir(exist_ok=True)
    return parse_config({
        "storage": {"path": "nw.db"},
        "channels": {"alerts": 1},
        "sources": [{"name": "local", "type": "folder", "path": "seeds", "settle": 0}],
        "rules": [{"name": "troops", "query": "troops", "min_sources": 3}],
    }, base_dir=tmp_path)


async def waiting(store: Store, route: str, n: int, tag: str, rule_cfg: RuleConfig) -> None:
    t = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    recs = []
    for i in range(n):
        a = art(f"Troops report {tag} {i}", published=t)
        recs.append(ArticleRecord(
            a, [match(a, rule_cfg.key)], [OutboxEntry(route, (rule_cfg,), stories="edit",
                                                      min_sources=3)],
            index_terms(a.title, a.text), StoryLink(f"s-{tag}-{i}", f"sig {tag} {i}", "dw", t)))
    await store.record_many(recs)


async def test_a_servers_waiting_alerts_are_listed_whatever_other_servers_wait_for(
        tmp_path: Path) -> None:
    async with open_engine(config(tmp_path), start=False,
                           default_sink=RecordingSink()) as engine:
        route_a = await engine.add_server_route(A, A * 10, "news")
        ra = await engine.add_rule({"name": "kharkiv", "query": "kharkiv", "channel": route_a,
                                    "min_sources": 3}, guild=A)
        route_b = await engine.add_server_route(222, 2220, "news")
        rb = await engine.add_rule({"name": "kyiv", "query": "kyiv", "channel": route_b,
                                    "min_sources": 3}, guild=222)
        await waiting(engine.store, route_b, 150, "serverB", rb)
        await waiting(engine.store, route_a, 1, "serverA", ra)
        st = await engine.delivery_status()
        field = [f for f in delivery_embed(st, lambda s: s).to_dict()["fields"]
                 if f["name"].startswith("Waiting")]
        sta = await engine.delivery_status(guild=A)
        fa = [f["name"] for f in delivery_embed(sta, lambda s: s).to_dict()["fields"]]
        assert "Waiting for more outlets (1)" in fa
        assert sta.counts.get("waiting") == 1
        assert len(sta.waiting) == 1, "server A's waiting alert is not listed"
        assert field[0]["name"] == "Waiting for more outlets (151)", field[0]["name"]
        # what the list leaves out is counted from them all, not from the 100 read
        shown = field[0]["value"].splitlines()
        assert shown[-1] == f"… and {151 - (len(shown) - 1)} more", shown[-1]


async def test_a_servers_last_rejections_are_listed_whatever_other_servers_had_since(
        tmp_path: Path) -> None:
    """The last five rejected alerts of everyone's were read and a server's kept of them: one
    server's later rejections hid another's, and every /alerts status read every rejected
    row. Each server's are read for its routes, newest last."""
    async with open_engine(config(tmp_path), start=False,
                           default_sink=RecordingSink()) as engine:
        route_a = await engine.add_server_route(A, A * 10, "news")
        ra = await engine.add_rule({"name": "kharkiv", "query": "kharkiv", "channel": route_a},
                                   guild=A)
        route_b = await engine.add_server_route(222, 2220, "news")
        rb = await engine.add_rule({"name": "kyiv", "query": "kyiv", "channel": route_b},
                                   guild=222)
        t = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
        for route, rule_cfg, tag, n in ((route_a, ra, "A", 2), (route_b, rb, "B", 8)):
            recs = []
            for i in range(n):
                a = art(f"Report {tag} {i}", published=t)
                recs.append(ArticleRecord(a, [match(a, rule_cfg.key)],
                                          [OutboxEntry(route, (rule_cfg,))],
                                          index_terms(a.title, a.text)))
            await engine.store.record_many(recs)
        for row in await engine.store.alerts(state="pending"):
            await engine.store.mark_rejected(row.id, f"400 bad {row.id}")
        everyone = await engine.delivery_status()
        assert [r.route for r in everyone.rejected] == [route_b] * 5
        sta = await engine.delivery_status(guild=A)
        ids = [r.id for r in await engine.store.alerts(state="rejected", routes=[route_a])]
        assert len(ids) == 2
        assert [r.id for r in sta.rejected] == ids  # in the order written
        assert {r.route for r in sta.rejected} == {"#news"}  # by label
        stb = await engine.delivery_status(guild=222)
        b_ids = [r.id for r in await engine.store.alerts(state="rejected", routes=[route_b])]
        assert [r.id for r in stb.rejected] == b_ids[-5:]



async def test_a_story_of_more_than_a_thousand_articles_is_counted_whole_for_a_server(
        tmp_path: Path) -> None:
    """/story (which asks for its server) read a story's first 1,000 articles only: a story
    of 1,100 was "1000 articles" there and 1,100 in /search and /article."""
    async with open_engine(config(tmp_path), start=False,
                           default_sink=RecordingSink()) as engine:
        t = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
        recs = []
        for i in range(1100):
            a = art(f"Troops report {i}", published=t)
            recs.append(ArticleRecord(a, [], [], index_terms(a.title, a.text),
                                      StoryLink("s-big", f"sig {i}", "dw", t)))
        await engine.store.record_many(recs)
        whole = await engine.story("s-big")
        assert whole is not None and whole.record.articles == 1100
        seen = await engine.story("s-big", guild=A)
        assert seen is not None
        assert seen.record.articles == 1100, seen.record
