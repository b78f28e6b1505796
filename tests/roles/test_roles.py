"""Several processes on one PostgreSQL database (``run --role``): poll workers share the
sources through leases, a deliver process wakes on the outbox's NOTIFY, changes made by one
process reach the others, and SQLite refuses every role but ``all``.

Each "process" here is an engine with a store of its own (its own pool and session), so
everything between them goes through PostgreSQL; the kill test (test_kill.py) uses real
subprocesses. A throwaway cluster from tests/pg.py; feeds from a local server."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from bot.cli import main
from tests.delivery.test_time_edges import HEADLINES, listed
from tests.fakes.feed_server import FeedServer, GatedFeedServer, Route, rss
from tests.fakes.sinks import RecordingSink
from tests.roles._support import OffsetClock, TimedFeedServer, config, eventually, feed_route
from tests.store._support import alert, art, match
from watchers.config import RuleConfig
from watchers.delivery import Alert
from watchers.engine import open_engine
from watchers.errors import ConfigError, StoreError
from watchers.rules.lookup import index_terms
from watchers.service import PollReport
from watchers.store import PostgresStore
from watchers.store.base import CONFIG_CHANNEL, ArticleRecord, Registration
from watchers.store.postgres import schema

EVERY = 1.0  # seconds between polls of each feed


async def test_two_poll_workers_poll_each_feed_once_per_interval_between_them(
        tmp_path: Path, pg_database: str) -> None:
    # Each worker has room for half the feeds at once and a feed takes a moment to answer, so
    # the first worker cannot take every feed: work goes to whoever has room, and with room
    # for all one worker may rightly poll everything.
    async with TimedFeedServer() as server:
        paths = [f"/f{i}" for i in range(8)]
        for i, path in enumerate(paths):
            server.set(path, feed_route((f"g{i}", f"story {i}"), delay=0.3))
        cfg = config(tmp_path, pg_database, rules=[{"name": "all", "query": "story"}],
                     sources=[{"name": f"f{i}", "type": "feed", "url": server.url(p),
                               "every": EVERY} for i, p in enumerate(paths)])
        polls: dict[str, Counter[str]] = {"a": Counter(), "b": Counter()}

        def recorder(worker: str) -> Callable[[PollReport], None]:
            return lambda report: polls[worker].update([report.source])

        async with open_engine(cfg, role="poll", on_report=recorder("a"), max_polls=4,
                               start=False) as a, \
                open_engine(cfg, role="poll", on_report=recorder("b"), max_polls=4,
                            start=False) as b:
            assert (a.role, b.role) == ("poll", "poll")
            await a.start()
            await b.start()

            async def polled_thrice() -> bool:
                return all(len(server.times.get(p, [])) >= 3 for p in paths)

            await eventually(polled_thrice, what="three polls of every feed")
            # Both at once: a worker that stops hands the sources of its polls cut short
            # straight back, and a worker still running polls them again at once (nothing of
            # the cut poll was kept). Stopped one after the other, a feed whose request the
            # first stop cut short was asked again by the second worker a moment later.
            await asyncio.gather(a.stop(), b.stop())
        async with await PostgresStore.open(pg_database, readonly=True) as store:
            states = {s.name: s for s in await store.all_source_states()}
            # stopped workers hand their leases back
            held = await store._db.fetch("SELECT name FROM source_state WHERE lease_owner "
                                         "IS NOT NULL")
    assert held == []
    for i, path in enumerate(paths):
        times = server.times[path]
        reported = polls["a"][f"f{i}"] + polls["b"][f"f{i}"]
        # one worker at a time, each poll saved before the next claim: the stored count is
        # the number of polls the workers finished, each reported once …
        assert states[f"f{i}"].polls == reported, path
        # … and every request but one the stop cut short (at most one: one lease at a time)
        assert reported <= len(times) <= reported + 1, (path, reported, times)
        # no two requests of a feed came within its interval
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) > EVERY / 2, (path, gaps)
    # both workers took part
    assert polls["a"] and polls["b"]


async def test_a_worker_that_stops_mid_poll_hands_its_source_to_a_running_one(
        tmp_path: Path, pg_database: str) -> None:
    # Nothing of a poll cut short was kept, so the source is due as it was: the worker still
    # running asks for it at once, not after the lease (60 s) or the interval (an hour).
    async with TimedFeedServer() as server:
        server.set("/slow", feed_route(("g", "story slow"), delay=3.0))
        cfg = config(tmp_path, pg_database, rules=[{"name": "all", "query": "story"}],
                     sources=[{"name": "slow", "type": "feed", "url": server.url("/slow"),
                               "every": 3600}])
        async with open_engine(cfg, role="poll", start=False) as a, \
                open_engine(cfg, role="poll", start=False) as b:
            await b.start()

            async def asked(times: int) -> bool:
                return len(server.times.get("/slow", [])) >= times

            await eventually(lambda: asked(1), what="the first worker's request")
            await a.start()
            await b.stop()  # its request is still waiting for the answer
            await eventually(lambda: asked(2), within=20, what="the other worker's request")
            async with await PostgresStore.open(pg_database, readonly=True) as store:
                state = await store.source_state("slow")
                assert state is not None and state.polls == 0  # the cut poll saved nothing
            await a.stop()


async def test_a_source_only_another_workers_config_has_is_handed_back_not_retired(
        tmp_path: Path, pg_database: str) -> None:
    """A worker started from a config without a source (a rolling change that adds one)
    claimed it and retired it for every worker: the workers that run it stopped polling it,
    and its articles were lost, until they registered their sources again (5 minutes). It is
    handed back, due a moment later, for those that run it."""
    async with TimedFeedServer() as server:
        server.set("/f0", feed_route(("g0", "story 0")))
        server.set("/f1", feed_route(("g1", "story 1")))
        both = [{"name": f"f{i}", "type": "feed", "url": server.url(f"/f{i}"), "every": EVERY}
                for i in range(2)]
        rules = [{"name": "all", "query": "story"}]
        old = config(tmp_path, pg_database, rules=rules, sources=both[:1])
        new = config(tmp_path, pg_database, rules=rules, sources=both)
        async with open_engine(new, role="poll", start=False) as b:
            await b.start()  # registers f0 and f1
            await eventually(lambda: asyncio.sleep(0, bool(server.times.get("/f1"))),
                             what="the new worker's poll of f1")
            await b.stop()
        asked = len(server.times["/f1"])
        async with open_engine(old, role="poll", start=False) as a:
            await a.start()
            await eventually(lambda: asyncio.sleep(0, len(server.times.get("/f0", [])) >= 3),
                             what="the old worker's polls of f0")
            async with await PostgresStore.open(pg_database, readonly=True) as store:
                (f1,) = await store._db.fetch(
                    "SELECT active, lease_owner, next_poll FROM source_state WHERE name = 'f1'")
            await a.stop()
        assert len(server.times["/f1"]) == asked  # never polled by the old worker
        assert f1["active"] and f1["lease_owner"] is None
        assert f1["next_poll"] > datetime.now(UTC)  # handed back, due a moment later
        async with open_engine(new, role="poll", start=False) as b:
            await b.start()
            await eventually(lambda: asyncio.sleep(0, len(server.times["/f1"]) > asked),
                             what="the new worker's next poll of f1")
            await b.stop()


async def test_a_poll_longer_than_the_lease_keeps_its_source_from_the_other_worker(
        tmp_path: Path, pg_database: str) -> None:
    async with TimedFeedServer() as server:
        slow = 2.5  # seconds the feed takes to answer: more than the 1 s lease
        server.set("/slow", feed_route(("g", "story slow"), delay=slow))
        cfg = config(tmp_path, pg_database, rules=[{"name": "all", "query": "story"}],
                     sources=[{"name": "slow", "type": "feed", "url": server.url("/slow"),
                               "every": 0.5}])
        lease = timedelta(seconds=1)
        async with open_engine(cfg, role="poll", lease=lease), \
                open_engine(cfg, role="poll", lease=lease):

            async def polled_thrice() -> bool:
                return len(server.times.get("/slow", [])) >= 3

            await eventually(polled_thrice, within=40, what="three polls of the slow feed")
    # each poll's lease was renewed while it ran: no poll began before the previous one ended
    gaps = [b - a for a, b in itertools.pairwise(server.times["/slow"])]
    assert min(gaps) >= slow, gaps


async def test_a_feed_two_workers_poll_at_once_has_its_capped_items_summarised_once(
        tmp_path: Path, pg_database: str) -> None:
    """A worker whose clock runs an hour ahead takes a source whose lease another worker
    still holds (see watchers.skew), and both poll it at once. Dedupe kept each alert single,
    but each poll wrote the summary of the seven items past the cap: the route got it twice.
    One summary now, and each of the twelve items is either alerted or named in it."""
    async with GatedFeedServer("/wire") as server:
        server.set("/wire", Route(body=rss(*((f"g{i}", t) for i, t in enumerate(HEADLINES)))))
        cfg = config(tmp_path, pg_database, rules=[{"name": "troops", "query": "troops"}],
                     sources=[{"name": "wire", "type": "feed", "url": server.url("/wire"),
                               "every": 3600, "backfill": 12, "max_alerts_per_poll": 5}])
        reports: list[PollReport] = []
        async with open_engine(cfg, role="poll", on_report=reports.append):

            async def asked() -> bool:
                return server.waiting == 1

            await eventually(asked, what="the first worker's request")
            async with open_engine(cfg, role="poll", on_report=reports.append,
                                   clock=OffsetClock(timedelta(hours=1))):

                async def both() -> bool:
                    return len(reports) == 2

                await eventually(both, what="both workers' polls")
    assert server.released == 2  # both polls' requests, answered together
    assert sorted(r.new for r in reports) == [0, 12]
    async with await PostgresStore.open(pg_database, readonly=True) as store:
        (summary,) = await store.alerts(kind="summary")
        alerted = []
        for row in await store.alerts(kind="alert"):
            assert row.article_id is not None
            article = await store.get_article(row.article_id)
            assert article is not None
            alerted.append(article.title)
    assert summary.text is not None
    named = listed(summary.text)
    assert len(alerted) == 5 and len(named) == 7
    assert sorted(alerted + named) == sorted(HEADLINES)


async def test_a_deliver_process_wakes_on_the_notify_of_a_poll_process(
        tmp_path: Path, pg_database: str) -> None:
    (tmp_path / "in").mkdir()
    cfg = config(tmp_path, pg_database, rules=[{"name": "troops", "query": "troops"}],
                 sources=[{"name": "desk", "type": "folder", "path": "in", "settle": "0s",
                           "every": 0.2}])
    sink = RecordingSink()
    # The safety poll is far beyond the test's timeout: only the NOTIFY can wake delivery.
    async with open_engine(cfg, role="deliver", default_sink=sink, safety_poll=3600) as deliver:
        assert deliver.delivery.poll_interval == 3600

        async def looked() -> bool:  # its first look at the (empty) outbox is over
            return deliver.delivery._loaded and deliver.delivery._orphans_at is not None

        await eventually(looked, what="the deliver process's first look")
        await asyncio.sleep(0.2)  # now waiting, on the notification alone
        (tmp_path / "in" / "a.txt").write_text("Troops cross the border\n\nTroops moved.\n")
        async with open_engine(cfg, role="poll"):

            async def delivered() -> bool:
                return len(sink.alerts) == 1

            await eventually(delivered, within=30, what="delivery of the poll's alert")
    assert sink.alerts[0].article.title == "Troops cross the border"
    assert [r.name for r in sink.alerts[0].rules] == ["troops"]


async def test_rules_and_sources_changed_by_the_bot_reach_a_poll_worker(
        tmp_path: Path, pg_database: str) -> None:
    (tmp_path / "in").mkdir()
    cfg = config(tmp_path, pg_database, rules=[{"name": "troops", "query": "troops"}],
                 sources=[{"name": "desk", "type": "folder", "path": "in", "settle": "0s",
                           "every": 0.2}])
    reports: list[PollReport] = []
    async with TimedFeedServer() as server, \
            open_engine(cfg, role="poll", on_report=reports.append) as worker, \
            open_engine(cfg, role="bot") as bot:
        server.set("/wire", feed_route(("w1", "wire story")))
        assert worker.rule_names() == ["troops"]
        await bot.add_rule({"name": "kyiv", "query": "kyiv", "channel": "alerts"})
        await bot.add_source({"name": "wire", "url": server.url("/wire"), "every": "1h"})

        async def reloaded() -> bool:
            return "kyiv" in worker.rule_names() and "wire" in worker.source_names()

        await eventually(reloaded, within=20, what="the worker reloading the bot's changes")
        # the new rule matches the next article, the new source is polled by the worker
        (tmp_path / "in" / "k.txt").write_text("Kyiv talks resume\n\nIn Kyiv today.\n")

        async def matched() -> bool:
            # polled: its report, which comes once the answer is parsed and stored (the server's
            # having answered came first, and the test then looked for a report not yet made)
            found = await worker.recent(rule="kyiv")
            return bool(found) and any(r.source == "wire" for r in reports)

        await eventually(matched, within=20, what="the new rule matching, the source polled")
        assert [a.title for a, _ in await worker.recent(rule="kyiv")] == ["Kyiv talks resume"]
        assert server.times.get("/wire")  # by fetching the feed from its server
        # a removal travels the same way
        assert await bot.remove_rule("kyiv")

        async def removed() -> bool:
            return "kyiv" not in worker.rule_names()

        await eventually(removed, within=20, what="the worker dropping the removed rule")
        # the bot neither polls nor delivers
        assert not bot.watch._tasks and bot.delivery._task is None


async def test_a_server_that_removed_the_bot_stops_and_starts_in_a_poll_worker_too(
        tmp_path: Path, pg_database: str) -> None:
    """The bot process learns that a server removed it (and invited it back); the poll worker
    drops and takes back that server's rules and feeds through the store's notification."""
    guild = 4242
    cfg = config(tmp_path, pg_database, rules=[{"name": "troops", "query": "troops"}],
                 sources=[])
    async with TimedFeedServer() as server, open_engine(cfg, role="poll") as worker, \
            open_engine(cfg, role="bot") as bot:
        server.set("/desk", feed_route(("d1", "desk story")))
        route = await bot.add_server_route(guild, 99, "alerts")
        await bot.add_rule({"name": "kyiv", "query": "kyiv", "channel": route}, guild=guild)
        await bot.add_source({"name": "desk", "url": server.url("/desk"), "every": "1h"},
                             guild=guild)

        async def running(there: bool) -> bool:
            rules = any(r.guild_id == guild for r in worker.watch.rules)
            feeds = bool(worker.tenancy.follows)
            return rules == there and feeds == there

        await eventually(lambda: running(True), within=20, what="the server's rule and feed")
        assert await bot.left(guild) and not await bot.left(guild)
        await eventually(lambda: running(False), within=20,
                         what="the worker dropping a departed server's rule and feed")
        assert guild in worker.departed
        assert await bot.returned(guild)
        await eventually(lambda: running(True), within=20,
                         what="the worker taking them back when the server invites the bot")


def test_roles_other_than_all_are_refused_on_sqlite(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "newswatch.toml").write_text(
        '[storage]\npath = "nw.db"\n[[sources]]\nname = "desk"\ntype = "folder"\n'
        'path = "in"\n[[rules]]\nname = "troops"\nquery = "troops"\n')
    for role in ("poll", "deliver", "bot"):
        assert main(["run", "--role", role, "-c", str(tmp_path / "newswatch.toml")]) == 2
        err = capsys.readouterr().err
        assert f"--role {role}" in err and "[storage] url" in err and "PostgreSQL" in err
        # named as an error of the file read, as every other configuration error is
        assert err.startswith(f"newswatch: {tmp_path / 'newswatch.toml'}: 1 error(s)"), err
    assert not (tmp_path / "nw.db").exists()  # refused before anything was opened


def test_console_with_the_bot_role_is_refused_as_such(
        tmp_path: Path, pg_database: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """"--role bot --console" said the Discord token was missing, with it set."""
    monkeypatch.setenv("NW_TOKEN", "a-token")
    (tmp_path / "newswatch.toml").write_text(
        f'[storage]\nurl = "{pg_database}"\n[discord]\ntoken_env = "NW_TOKEN"\n'
        '[[rules]]\nname = "troops"\nquery = "troops"\n')
    assert main(["run", "--role", "bot", "--console", "-c",
                 str(tmp_path / "newswatch.toml")]) == 1
    err = capsys.readouterr().err
    assert "--console prints alerts, which --role bot does not deliver" in err, err
    assert "needs a Discord token" not in err and "a-token" not in err


async def test_the_engine_refuses_a_role_on_sqlite_too(tmp_path: Path) -> None:
    cfg = config(tmp_path, "postgresql://unused/db", rules=[{"name": "t", "query": "t"}],
                 sources=[])
    with pytest.raises(ConfigError, match=r"\[storage\] url"):
        async with open_engine(cfg, role="poll", store_path=str(tmp_path / "nw.db")):
            pass
    assert not (tmp_path / "nw.db").exists()


async def test_a_route_is_delivered_by_one_process_and_a_dead_ones_claims_come_back(
        pg_database: str) -> None:
    async with await PostgresStore.open(pg_database) as store:
        await store.record_many([
            ArticleRecord(a, [match(a)], [alert()], index_terms(a.title, a.text))
            for a in (art(f"Story {i}") for i in range(4))])
    first = await PostgresStore.open(pg_database, lock=False)
    second = await PostgresStore.open(pg_database, lock=False)
    try:
        now = datetime.now(UTC)
        claimed = await first.claim_route("alerts", now=now, limit=2)
        assert len(claimed) == 2
        await first.mark_maybe_sent(claimed[0].id)  # its sink was called for the first
        # another live process delivers the route: nothing to take, nothing to requeue
        assert await second.claim_route("alerts", now=now, limit=10) == []
        assert await second.requeue_orphaned() == 0
        await first.aclose()  # its session ends, as with SIGKILL
        assert await second.requeue_orphaned() == 2
        rows = await second.claim_route("alerts", now=now, limit=10)
        assert [r.id for r in rows] == sorted(r.id for r in rows)
        assert [r.attempts for r in rows] == [2, 2, 1, 1]
        # the one whose sink was called may have been sent; the other was only claimed
        assert [await second.maybe_sent(r.id) for r in rows] == [True, False, False, False]
    finally:
        await first.aclose()
        await second.aclose()


async def test_version_10_databases_migrate_and_changes_are_notified(pg_database: str) -> None:
    conn = await asyncpg.connect(pg_database)
    try:
        await conn.execute(schema._V10)
        await conn.execute("INSERT INTO schema_version (version) VALUES (10)")
        await conn.execute("INSERT INTO source_state (name) VALUES ('old')")
    finally:
        await conn.close()
    heard: list[str] = []
    async with await PostgresStore.open(pg_database, lock=False) as listener, \
            await PostgresStore.open(pg_database, lock=False) as writer:
        await listener.listen(CONFIG_CHANNEL, lambda _c, payload: heard.append(payload))
        await writer.put_rule(RuleConfig(name="r", query="x"))
        await writer.mute("r", datetime.now(UTC))

        async def both() -> bool:
            return heard == ["rules", "mutes"]

        await eventually(both, within=20, what="the rule and mute notifications")
        # a source of the old schema is claimable; a retired one is not, until registered
        claimed = await writer.claim_sources(owner="w", until=datetime.now(UTC),
                                             now=datetime.now(UTC), limit=5)
        assert [s.name for s in claimed] == ["old"]
        await writer.retire_source("old")
        assert await writer.claim_sources(owner="w", until=datetime.now(UTC),
                                          now=datetime.now(UTC), limit=5) == []
        await writer.register_sources({"old": Registration(), "new": Registration()})
        claimed = await writer.claim_sources(owner="w", until=datetime.now(UTC),
                                             now=datetime.now(UTC), limit=5)
        assert sorted(s.name for s in claimed) == ["new", "old"]
        version = (await writer._db.fetch("SELECT version FROM schema_version"))[0][0]
        assert version == schema.SCHEMA_VERSION == 20


class _SharedSink:
    """One destination that two deliver processes post to: it sees every post in order."""

    def __init__(self, log: list[tuple[str, int]], name: str) -> None:
        self.log, self.name = log, name

    async def deliver(self, alert: Alert) -> str | None:
        self.log.append((self.name, alert.id))
        await asyncio.sleep(0.01)  # a send takes a moment; the other process may try meanwhile
        return f"m{alert.id}"


async def test_two_deliver_processes_post_each_alert_once_and_in_order(
        tmp_path: Path, pg_database: str) -> None:
    cfg = config(tmp_path, pg_database, rules=[{"name": "troops", "query": "troops"}],
                 sources=[])

    async def write(first: int, n: int) -> None:
        async with await PostgresStore.open(pg_database, lock=False) as store:
            await store.record_many([
                ArticleRecord(a, [match(a)], [alert()], index_terms(a.title, a.text))
                for a in (art(f"Story {i}") for i in range(first, first + n))])

    await write(0, 30)  # waiting before either starts: both race for the route
    posted: list[tuple[str, int]] = []
    async with open_engine(cfg, role="deliver", default_sink=_SharedSink(posted, "a"),
                           safety_poll=3600), \
            open_engine(cfg, role="deliver", default_sink=_SharedSink(posted, "b"),
                        safety_poll=3600):
        await write(30, 30)  # and more while they run, announced by NOTIFY

        async def all_posted() -> bool:
            return len(posted) >= 60

        await eventually(all_posted, within=30, what="every alert posted")
        await asyncio.sleep(0.3)  # a double post, if any, would come now
    ids = [i for _, i in posted]
    assert len(ids) == 60 and len(set(ids)) == 60
    assert ids == sorted(ids)  # one route: strictly in the order written
    async with await PostgresStore.open(pg_database, readonly=True) as store:
        assert await store.alert_counts() == {"delivered": 60}


async def test_an_article_polled_by_one_worker_joins_the_story_another_worker_began(
        tmp_path: Path, pg_database: str) -> None:
    for folder in ("dw", "npr"):
        (tmp_path / folder).mkdir()
    cfg = config(tmp_path, pg_database, rules=[{"name": "troops", "query": "troops"}],
                 sources=[{"name": n, "type": "folder", "path": n, "settle": "0s",
                           "every": 0.2} for n in ("dw", "npr")])
    # the second worker's story index is built before the story exists
    async with open_engine(cfg, role="poll", start=False) as late:
        assert await late.watch.story_index() is not None
        async with open_engine(cfg, role="poll") as first:
            (tmp_path / "dw" / "a.txt").write_text(
                "Russian troops mass near Ukraine border, satellite images show\n\n"
                "New satellite images show Russian troops and armour massing near the "
                "Ukrainian border at Yelnya.\n")

            async def stored() -> bool:
                return await first.count_articles() == 1

            await eventually(stored, within=20, what="the first article stored")
        (tmp_path / "npr" / "b.txt").write_text(
            "Satellite images show Russian troops massing near Ukraine's border\n\n"
            "Maxar satellite images show Russian troops and tanks gathering near Yelnya, "
            "close to Ukraine.\n")
        report = await late.watch.poll_source("npr")
        assert report.new == 1
        found = await late.recent(limit=5)
        stories = await late.stories_of([a.id for a, _ in found])
    assert len(found) == 2 and len({s.id for s in stories.values()}) == 1


async def test_an_event_two_workers_poll_at_once_is_one_story(
        tmp_path: Path, pg_database: str) -> None:
    """Two workers polling two outlets' reports of one event at the same moment each read the
    others' stories (none yet), each started a story, and nothing merged them: an alert
    waiting for two outlets waited for ever. Workers now group their polls one at a time
    under the store's story grouping lock, each after reading what the other wrote."""
    events = [
        ("Russian troops mass near Ukraine border, satellite images show\n\nNew satellite "
         "images show Russian troops and armour massing near the Ukrainian border at Yelnya.",
         "Satellite images show Russian troops massing near Ukraine's border\n\nMaxar "
         "satellite images show Russian troops and tanks gathering near Yelnya, close to "
         "Ukraine."),
        ("Biden warns Putin of sanctions in hour-long call\n\nPresident Biden told Vladimir "
         "Putin the United States would impose severe sanctions if Russia invades Ukraine.",
         "Biden and Putin speak by phone as sanctions threat looms\n\nThe US president "
         "warned Putin of sweeping sanctions in a call lasting nearly an hour."),
        ("US orders families of embassy staff to leave Kyiv\n\nThe State Department ordered "
         "the families of American diplomats at the Kyiv embassy to leave Ukraine.",
         "State Department tells embassy families to leave Ukraine\n\nFamilies of staff at "
         "the US embassy in Kyiv were ordered to depart as tensions rise."),
    ]
    for name in ("dw", "npr"):
        (tmp_path / name).mkdir()
    cfg = config(tmp_path, pg_database,
                 rules=[{"name": "crisis", "query": "troops OR sanctions OR embassy"}],
                 sources=[{"name": n, "type": "folder", "path": n, "settle": "0s",
                           "every": 60} for n in ("dw", "npr")])
    async with open_engine(cfg, role="poll", start=False) as one, \
            open_engine(cfg, role="poll", start=False) as two:
        for engine in (one, two):
            assert await engine.watch.story_index() is not None
        for n, (dw, npr) in enumerate(events):  # each round a new event, both polls at once
            (tmp_path / "dw" / f"{n}.txt").write_text(dw + "\n")
            (tmp_path / "npr" / f"{n}.txt").write_text(npr + "\n")
            reports = await asyncio.gather(one.watch.poll_source("dw"),
                                           two.watch.poll_source("npr"))
            assert [r.new for r in reports] == [1, 1], reports
            found = await one.recent(limit=2)
            assert {a.title for a, _ in found} == {t.split("\n")[0] for t in (dw, npr)}
            stories = await one.stories_of([a.id for a, _ in found])
            assert len(stories) == 2 and len({s.id for s in stories.values()}) == 1, n
            assert sorted(next(iter(stories.values())).outlets) == ["dw", "npr"]
        assert await one.store.count_stories() == len(events)


async def test_a_worker_that_holds_the_grouping_lock_too_long_holds_no_poll_up_for_ever(
        tmp_path: Path, pg_database: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A worker stuck while it groups (here a session holding the lock) delays the others'
    polls by the grouping wait at most; they then group without it, as before, saying so.
    No lock is left behind by a poll, grouped or not."""
    from watchers.store.postgres import stories as pg_stories
    from watchers.store.postgres._db import LOCKS, NEWSWATCH

    monkeypatch.setattr(pg_stories, "GROUPING_WAIT_S", 0.5)
    (tmp_path / "dw").mkdir()
    (tmp_path / "dw" / "a.txt").write_text("Troops gather at the border\n\nTroops gathered.\n")
    cfg = config(tmp_path, pg_database, rules=[{"name": "troops", "query": "troops"}],
                 sources=[{"name": "dw", "type": "folder", "path": "dw", "settle": "0s",
                           "every": 60}])
    stuck = await asyncpg.connect(pg_database)
    try:
        await stuck.execute("SELECT pg_advisory_lock($1, $2)", NEWSWATCH, LOCKS["stories"])
        async with open_engine(cfg, role="poll", start=False) as worker:
            report = await asyncio.wait_for(worker.watch.poll_source("dw"), timeout=20)
            assert report.new == 1 and not report.error
            assert "grouping this poll without waiting for it" in caplog.text
            await stuck.execute("SELECT pg_advisory_unlock($1, $2)", NEWSWATCH,
                                LOCKS["stories"])
            (tmp_path / "dw" / "b.txt").write_text("Tanks cross the river\n\nTroops too.\n")
            report = await asyncio.wait_for(worker.watch.poll_source("dw"), timeout=20)
            assert report.new == 1
            held = await stuck.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 "
                "AND objid = $2", NEWSWATCH, LOCKS["stories"])
            assert held == 0
    finally:
        await stuck.close()


@pytest.mark.parametrize("backfill", [0, 1])
async def test_a_first_polls_backlog_is_grouped_under_the_lock_only_when_it_may_alert(
        tmp_path: Path, pg_database: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, backfill: int) -> None:
    """A feed's first poll records its backlog as history, which never alerts: it groups
    without the story grouping lock (thousands of feeds' first polls at start-up, taken one at
    a time, took twice as long). With ``backfill`` its newest items may alert, and it waits for
    the lock as every later poll does."""
    from watchers.store.postgres import stories as pg_stories
    from watchers.store.postgres._db import LOCKS, NEWSWATCH

    monkeypatch.setattr(pg_stories, "GROUPING_WAIT_S", 0.5)
    async with TimedFeedServer() as server:
        server.set("/f", feed_route(("g1", "Troops gather at the border"),
                                    ("g2", "Tanks cross the river")))
        cfg = config(tmp_path, pg_database, rules=[{"name": "troops", "query": "troops"}],
                     sources=[{"name": "f", "type": "feed", "url": server.url("/f"),
                               "every": 60, "backfill": backfill}])
        stuck = await asyncpg.connect(pg_database)
        try:
            await stuck.execute("SELECT pg_advisory_lock($1, $2)", NEWSWATCH,
                                LOCKS["stories"])
            async with open_engine(cfg, role="poll", start=False) as worker:
                report = await asyncio.wait_for(worker.watch.poll_source("f"), timeout=20)
                assert report.baseline and report.new == 2 and not report.error
                assert await worker.store.count_stories() == 2
        finally:
            await stuck.close()
    waited = "grouping this poll without waiting for it" in caplog.text
    assert waited == bool(backfill)


async def test_a_process_that_runs_the_database_alone_never_runs_beside_role_processes(
        tmp_path: Path, pg_database: str) -> None:
    cfg = config(tmp_path, pg_database, rules=[{"name": "t", "query": "t"}], sources=[])
    # role processes share the database with each other …
    async with open_engine(cfg, role="poll", start=False), \
            open_engine(cfg, role="deliver", start=False):
        # … but not with a process that takes it as its own (it would requeue their claims)
        # (the advice fits every command it stops: import, copy and migrate have no --role)
        with pytest.raises(StoreError, match=r"newswatch role processes \(pid \d+\) share .*; "
                                             r"stop them first \(newswatch run can join them "
                                             r"with --role; import, copy and migrate cannot\)"):
            async with open_engine(cfg, start=False):
                pass
    async with open_engine(cfg, start=False):
        with pytest.raises(StoreError, match=r"runs .* alone \(--role all, or an import or "
                                             r"copy\); role processes cannot share"):
            async with open_engine(cfg, role="bot", start=False):
                pass
    # once it is gone, the roles start again
    async with open_engine(cfg, role="poll", start=False):
        pass


async def test_a_worker_with_no_room_for_a_poll_is_refused_by_name(tmp_path: Path) -> None:
    # Refused before anything is opened: the database named need not exist.
    cfg = config(tmp_path, "postgresql://127.0.0.1:1/nowhere",
                 rules=[{"name": "all", "query": "story"}], sources=[])
    with pytest.raises(ValueError, match="max_polls must be at least 1, not 0"):
        async with open_engine(cfg, max_polls=0):
            pass


async def test_a_source_a_worker_takes_again_while_it_polls_it_is_not_polled_from_scratch(
        tmp_path: Path, pg_database: str) -> None:
    """A poll worker's lease on a feed lapses while it still polls it (a slow answer), and its
    own claims take the feed again. That claim waited for the poll under way, then polled
    from no state at all: as a first poll, storing the feed's new items without alerts,
    without the cursor and with no lease. It now leaves the feed to the poll under way, and
    the next poll asks with that poll's ETag and alerts what is new."""
    first = [("a1", "Troops gather at the border")]
    second = [*first, ("b1", "Troops cross the river")]
    third = [*second, ("c1", "Troops reach the capital")]
    reports: list[PollReport] = []

    def polls(k: int) -> Callable[[], Awaitable[bool]]:
        async def done() -> bool:
            return len(reports) >= k
        return done

    async with FeedServer() as server:
        server.set("/wire", Route(body=rss(*first), etag='"A"'))
        cfg = config(tmp_path, pg_database, rules=[{"name": "troops", "query": "troops"}],
                     sources=[{"name": "wire", "type": "feed", "url": server.url("/wire"),
                               "every": 3600}])
        clock = OffsetClock()
        async with open_engine(cfg, role="poll", on_report=reports.append, clock=clock):
            await eventually(polls(1), what="the feed's first poll")
            # The next poll is slow; while the feed holds it, the worker's clock passes the
            # lease it holds on the feed, so its claims find the feed free and due again.
            server.set("/wire", Route(body=rss(*second), etag='"B"', delay=3.0))
            clock.offset = timedelta(hours=2)

            async def asked() -> bool:
                return len(server.hits("/wire")) == 2

            await eventually(asked, what="the slow poll's request")
            server.set("/wire", Route(body=rss(*third), etag='"C"'))
            # past the lease (a minute) and short of the next poll the slow one sets (an hour)
            clock.offset = timedelta(hours=2, minutes=10)
            await eventually(polls(2), what="the slow poll")
            await asyncio.sleep(1.5)  # claims look every second: a second poll would start
            assert len(server.hits("/wire")) == 2 and len(reports) == 2
            clock.offset = timedelta(hours=6)  # due again by the time the slow poll set
            await eventually(polls(3), what="the next poll")
        hits = server.hits("/wire")
    assert [h.headers.get("If-None-Match") for h in hits] == [None, '"A"', '"B"']
    assert [(r.new, r.baseline) for r in reports] == [(1, True), (1, False), (1, False)]
    async with await PostgresStore.open(pg_database, readonly=True) as store:
        alerted = [await store.get_article(row.article_id)
                   for row in await store.alerts(kind="alert") if row.article_id]
    assert sorted(a.title for a in alerted if a) == [
        "Troops cross the river", "Troops reach the capital"]
