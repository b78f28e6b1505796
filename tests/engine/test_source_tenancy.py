"""Sources and routes per server at the engine: a feed two servers follow is fetched once per
poll and matched once per server's rules, each server sees its articles under its own name for
the feed, a third server sees none of them (search, recent, article, story, stats), the config
file's rules never fire on a server's feed, limits and clashes are refused with a clear error,
and follows and routes come back after a restart. Real parts: a local feed server, a SQLite
file, the engine's own services."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.embeds import delivery_embed
from tests.fakes.feed_server import FeedServer, Route, rss
from tests.fakes.sinks import RecordingSink
from tests.service.test_identity import rss as dated_rss
from watchers.config import Config, RouteConfig, parse_config
from watchers.delivery import StoryUpdate, UpdateResult
from watchers.engine import Engine, open_engine
from watchers.errors import ConfigError, FetchBlockedError, NewswatchError
from watchers.tenancy import feed_key

A, B, C = 111, 222, 333


def config(tmp_path: Path, *more: dict[str, Any], **discord: Any) -> Config:
    (tmp_path / "seeds").mkdir(exist_ok=True)
    return parse_config({
        "storage": {"path": "nw.db"},
        "discord": discord,
        "fetch": {"allow_private": ["127.0.0.1/32"]},
        "channels": {"alerts": 1},
        "sources": [{"name": "local", "type": "folder", "path": "seeds", "settle": 0}, *more],
        "rules": [{"name": "everything", "query": "story"}],
    }, base_dir=tmp_path)


@pytest.fixture
async def feeds() -> AsyncIterator[FeedServer]:
    async with FeedServer() as server:
        server.set("/wire", Route(body=rss(("g1", "Troops gather near Kharkiv"))))
        server.set("/other", Route(body=rss(("o1", "Grain ships leave Odesa"))))
        yield server


async def server_rule(engine: Engine, guild: int, name: str, query: str) -> str:
    key = await engine.add_server_route(guild, guild * 10, "news")
    await engine.add_rule({"name": name, "query": query, "channel": key}, guild=guild)
    return key


async def test_a_feed_two_servers_follow_is_fetched_once_and_matched_per_server(
        tmp_path: Path, feeds: FeedServer) -> None:
    sink = RecordingSink()
    async with open_engine(config(tmp_path), start=False, default_sink=sink) as engine:
        await engine.add_source({"name": "wire", "url": feeds.url("/wire")}, guild=A)
        await engine.add_source({"name": "kyiv-wire", "url": feeds.url("/wire")}, guild=B)
        await engine.add_source({"name": "grain", "url": feeds.url("/other")}, guild=C)
        route_a = await server_rule(engine, A, "troops", "troops")
        route_b = await server_rule(engine, B, "kharkiv", "kharkiv OR source:kyiv-wire")
        await engine.run_once()  # the baseline: recorded, no alerts
        assert len(feeds.hits("/wire")) == 1  # one fetch for two servers
        feeds.set("/wire", Route(body=rss(("g1", "Troops gather near Kharkiv"),
                                          ("g2", "More troops reach Kharkiv"))))
        await engine.run_once()
        assert len(feeds.hits("/wire")) == 2
        by_route = {a.route: a for a in sink.alerts}
        assert set(by_route) == {route_a, route_b}  # each server's rule, on its own route
        assert by_route[route_a].article.source == "wire"
        assert by_route[route_b].article.source == "kyiv-wire"
        # the config file's rule matches "story" in the text, yet never fires on their feeds
        assert not any(a.route == "alerts" for a in sink.alerts)
        # stored once, under the feed's key
        stored = (await engine.search("kharkiv")).hits
        assert {h.article.source for h in stored} == {feed_key(feeds.url("/wire"))}
        assert len(stored) == 2
        # lookups per server: its own name; C follows nothing of it and sees nothing
        for guild, label in ((A, "wire"), (B, "kyiv-wire")):
            hits = (await engine.search("kharkiv", guild=guild)).hits
            assert {h.article.source for h in hits} == {label} and len(hits) == 2
            assert {a.source for a, _ in await engine.recent(guild=guild, limit=20)} == {label}
            art = await engine.article(hits[0].article.id, guild=guild)
            assert art is not None and art[0].source == label
            assert (await engine.search("troops", source=label, guild=guild)).hits
        assert not (await engine.search("kharkiv", guild=C)).hits
        assert await engine.article(stored[0].article.id, guild=C) is None
        assert not await engine.recent(guild=C, limit=20)
        with pytest.raises(NewswatchError, match="no source named 'wire'"):
            await engine.search("troops", source="wire", guild=C)
        # another server's name for the feed never reaches B, even as a known source
        assert "wire" not in engine.source_names(B)
        assert engine.source_names(B) == ["kyiv-wire", "local"]
        # counts: what each server sees
        total = await engine.count_articles()
        stats_a, stats_c = await engine.stats(A), await engine.stats(C)
        assert stats_c.articles == total - 2 and stats_a.articles == total - 1
        assert sum(stats_a.alerts.values()) == 1 and not stats_c.alerts  # "alerts" sent none
        assert [(v.name, v.shared) for v in stats_a.sources] == [("local", True),
                                                                ("wire", False)]


async def test_a_story_shows_a_server_only_what_it_sees(tmp_path: Path,
                                                        feeds: FeedServer) -> None:
    async with open_engine(config(tmp_path), start=False) as engine:
        await engine.add_source({"name": "wire", "url": feeds.url("/wire")}, guild=A)
        await engine.run_once()
        feeds.set("/wire", Route(body=rss(("g1", "Troops gather near Kharkiv"),
                                          ("g2", "Troops gather near Kharkiv city"))))
        await engine.run_once()
        found = (await engine.search("kharkiv", guild=A)).hits
        stories = await engine.stories_of([h.article.id for h in found])
        assert stories
        story_id = next(iter(stories.values())).id
        mine = await engine.story(story_id, guild=A)
        assert mine is not None and {a.source for a in mine.articles} == {"wire"}
        assert set(mine.record.outlets) <= {"wire"}
        assert await engine.story(story_id, guild=B) is None
        ids = [h.article.id for h in found]
        assert {r.outlets for r in (await engine.stories_of(ids, guild=A)).values()} == {
            ("wire",)}
        assert await engine.stories_of(ids, guild=B) == {}
        assert {r.outlets for r in stories.values()} == {(feed_key(feeds.url("/wire")),)}


async def test_following_is_checked_and_limited(tmp_path: Path, feeds: FeedServer) -> None:
    cfg = config(tmp_path, {"name": "shared-wire", "type": "feed", "url": feeds.url("/wire")},
                 max_sources_per_server=2)
    async with open_engine(cfg, start=False) as engine:
        with pytest.raises(NewswatchError, match="already watched for every server as "
                                                 "'shared-wire'"):
            await engine.add_source({"name": "mine", "url": feeds.url("/wire")}, guild=A)
        # a variant of the operator's feed URL is that feed too: a private copy polled first
        # made the operator's own items duplicates that no config rule ever matched
        wire = feeds.url("/wire")
        for variant in (wire + "?utm_source=x", wire + "/", wire.replace("http:", "https:")):
            with pytest.raises(NewswatchError, match="already watched for every server"):
                await engine.add_source({"name": "mine", "url": variant}, guild=A)
        with pytest.raises(NewswatchError, match="'local' is shared by every server"):
            await engine.add_source({"name": "local", "url": feeds.url("/other")}, guild=A)
        # nor in another case or width: `source:LOCAL` would find the shared feed's articles
        for spelt in ("LOCAL", "Local", "ｌｏｃａｌ"):
            with pytest.raises(NewswatchError, match=r"'local' is shared by every server "
                                                     r"\(names are compared without case\)"):
                await engine.add_source({"name": spelt, "url": feeds.url("/other")}, guild=A)
        await engine.add_source({"name": "one", "url": feeds.url("/other")}, guild=A)
        with pytest.raises(NewswatchError, match="this server has a source 'one'"):
            await engine.add_source({"name": "ONE", "url": feeds.url("/x9")}, guild=A)
        with pytest.raises(NewswatchError, match="already follows that feed as 'one'"):
            await engine.add_source({"name": "two", "url": feeds.url("/other")}, guild=A)
        await engine.add_source({"name": "two", "url": feeds.url("/x2")}, guild=A)
        with pytest.raises(NewswatchError, match=r"max_sources_per_server = 2"):
            await engine.add_source({"name": "three", "url": feeds.url("/x3")}, guild=A)
        # replacing one of its own is no new source; another server has its own allowance
        await engine.add_source({"name": "two", "url": feeds.url("/x4")}, guild=A)
        await engine.add_source({"name": "one", "url": feeds.url("/x3")}, guild=B)
        with pytest.raises(FetchBlockedError, match="scheme 'ftp'"):
            await engine.add_source({"name": "bad", "url": "ftp://example.org/x"}, guild=A)
        with pytest.raises(FetchBlockedError, match="refused"):
            await engine.add_source({"name": "bad", "url": "http://10.0.0.1/feed"}, guild=A)
        # nothing of the refusals was kept: the feeds running are the follows' feeds
        running = {n for n in engine.watch.source_names() if n.startswith("@")}
        assert running == {feed_key(feeds.url(p)) for p in ("/other", "/x4", "/x3")}
        # a server cannot remove or resume a shared source, nor see another's
        with pytest.raises(NewswatchError, match="shared by every server"):
            await engine.remove_source("shared-wire", guild=A)
        with pytest.raises(NewswatchError, match="shared by every server"):
            await engine.resume_source("shared-wire", guild=A)
        assert not await engine.remove_source("two", guild=B)
        assert await engine.remove_source("two", guild=A)
        assert feed_key(feeds.url("/x4")) not in engine.watch.source_names()


async def test_the_last_follower_leaving_stops_the_feed_and_the_most_eager_sets_the_pace(
        tmp_path: Path, feeds: FeedServer) -> None:
    async with open_engine(config(tmp_path), start=False) as engine:
        key = feed_key(feeds.url("/wire"))
        await engine.add_source({"name": "w", "url": feeds.url("/wire"), "every": "30m"},
                                guild=A)
        await engine.add_source({"name": "w", "url": feeds.url("/wire"), "every": "5m"},
                                guild=B)
        polled = {c.name: c.every.total_seconds() for c in engine.watch.source_configs()}
        assert polled[key] == 300
        assert await engine.remove_source("w", guild=B)
        polled = {c.name: c.every.total_seconds() for c in engine.watch.source_configs()}
        assert polled[key] == 1800 and engine.watch.audiences[key] == ((A, "w"),)
        assert await engine.remove_source("w", guild=A)
        assert key not in engine.watch.source_names() and key not in engine.watch.audiences


async def test_follows_and_routes_come_back_after_a_restart(tmp_path: Path,
                                                            feeds: FeedServer) -> None:
    seen: list[tuple[str, RouteConfig]] = []
    async with open_engine(config(tmp_path), start=False) as engine:
        await engine.add_source({"name": "wire", "url": feeds.url("/wire")}, guild=A)
        key = await engine.add_server_route(A, 5001, "news-desk", created_by="9")
        assert key == f"{A}:news-desk"
        # the same channel again is the same route; another channel of that name is suffixed
        assert await engine.add_server_route(A, 5001, "renamed") == key
        assert await engine.add_server_route(A, 5002, "news-desk") == f"{A}:news-desk-2"
        assert await engine.add_server_route(B, 6001, "news-desk") == f"{B}:news-desk"
        engine.add_route_listener(lambda k, r: seen.append((k, r)))
        assert sorted(k for k, _ in seen) == [f"{A}:news-desk", f"{A}:news-desk-2",
                                             f"{B}:news-desk"]
        await engine.add_server_route(B, 6002, "wire-room")
        assert seen[-1] == (f"{B}:wire-room", RouteConfig(target=6002))
        await engine.add_rule({"name": "troops", "query": "troops", "channel": key}, guild=A)
        # a route of another server, or of the config file, is refused for a server's rule
        for channel in (f"{B}:news-desk", "alerts"):
            with pytest.raises(ConfigError, match="one of its own channels") as err:
                await engine.add_rule({"name": "x", "query": "troops", "channel": channel},
                                      guild=A)
            assert err.value.issues[0].path == "channel"
        assert engine.route_label(key) == "#news-desk" and engine.route_label("alerts") == "alerts"
    con = sqlite3.connect(tmp_path / "nw.db")
    try:
        assert con.execute("SELECT name, guild_id FROM sources").fetchall() == [
            (f"{A}:wire", A)]
        assert len(con.execute("SELECT name FROM routes").fetchall()) == 4
    finally:
        con.close()
    async with open_engine(config(tmp_path), start=False) as engine:
        assert feed_key(feeds.url("/wire")) in engine.watch.source_names()
        assert engine.source_names(A) == ["local", "wire"]
        assert set(engine.server_routes(A)) == {f"{A}:news-desk", f"{A}:news-desk-2"}
        assert engine.tenancy.route(key) == RouteConfig(target=5001)
        assert [v.rule.channel for v in await engine.rules(A) if not v.is_global] == [key]


async def test_a_source_name_of_the_feed_prefix_is_refused_in_the_config(tmp_path: Path
                                                                         ) -> None:
    with pytest.raises(ConfigError, match="may not start with '@'"):
        parse_config({"sources": [{"name": "@abc", "type": "feed",
                                   "url": "https://example.org/feed"}],
                      "rules": [{"name": "x", "query": "y"}]}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="may not contain ':'"):
        parse_config({"channels": {"a:b": 1}, "rules": [{"name": "x", "query": "y"}]},
                     base_dir=tmp_path)
    # "#name" is how a server's picked channel is shown, and given back, in Discord
    with pytest.raises(ConfigError, match="may not start with '#'"):
        parse_config({"channels": {"#ops": 1}, "rules": [{"name": "x", "query": "y"}]},
                     base_dir=tmp_path)


async def test_a_burst_from_a_followed_feed_is_summed_up_under_the_servers_name(
        tmp_path: Path, feeds: FeedServer) -> None:
    sink = RecordingSink()
    async with open_engine(config(tmp_path), start=False, default_sink=sink) as engine:
        await engine.add_source({"name": "wire", "url": feeds.url("/wire")}, guild=A)
        route = await server_rule(engine, A, "troops", "troops")
        await engine.run_once()
        words = str.split("harbour bakery glacier violin tractor lantern meadow copper saddle "
                          "orchard pigeon quarry tunnel walnut ferry castle pepper rocket "
                          "island canyon blanket compass dolphin ember falcon garnet hammock "
                          "igloo jasmine kettle ladder mango nectar oyster parrot quilt raven "
                          "spruce thimble umbrella velvet willow yacht zephyr anchor beacon "
                          "cactus dynamo easel fjord gondola hazel ivory jigsaw kiosk lemur "
                          "marble nutmeg opal pylon quartz rhubarb sparrow tulip urchin vortex "
                          "wombat")
        # thirty unrelated stories, each with "troops": none groups with another
        feeds.set("/wire", Route(body=rss(*(
            (f"n{i}", f"Troops {' '.join(words[2 * i:2 * i + 2])} {words[-1 - i]}")
            for i in range(30)))))
        await engine.run_once()
        # at most 25 alert messages from one poll on a route; the rest are summed up in one
        # notice naming the source as the server named it (its key is never shown)
        assert len([a for a in sink.alerts if a.route == route]) <= 25
        assert [(r, t.split(" brought")[0]) for r, t in sink.notices] == [
            (route, "Source 'wire'")]


async def test_a_servers_channel_takes_route_settings_like_a_config_route(
        tmp_path: Path, feeds: FeedServer) -> None:
    sink = RecordingSink()
    async with open_engine(config(tmp_path), start=False, default_sink=sink) as engine:
        await engine.add_source({"name": "wire", "url": feeds.url("/wire")}, guild=A)
        route = await server_rule(engine, A, "troops", "troops")
        # checked by the config's own model, errors naming the key; nothing changes
        for bad, key in (({"mode": "digest"}, "a digest route needs digest_every"),
                         ({"timezone": "Mars/Olympus"}, "timezone"),
                         ({"quiet_hours": "22-7"}, "quiet_hours"),
                         # asked for now, and it would do nothing there
                         ({"mode": "digest", "digest_every": "1h", "max_per_hour": 5},
                          "max_per_hour does nothing on a digest route"),
                         ({"template": "{nope}"}, "template"), ({"target": 5}, "target")):
            with pytest.raises(ConfigError) as err:
                await engine.configure_server_route(A, route, bad)
            assert key in str(err.value), (bad, str(err.value))
        assert engine.route(route) == RouteConfig(target=A * 10)
        with pytest.raises(NewswatchError, match="no channel of this server"):
            await engine.configure_server_route(B, route, {"mode": "immediate"})
        seen: list[RouteConfig] = []
        engine.add_route_listener(lambda k, r: seen.append(r) if k == route else None)
        updated = await engine.configure_server_route(
            A, route, {"mode": "digest", "digest_every": "2h", "stories": "off"})
        assert seen[-1] == updated.route == engine.route(route)
        assert updated.route.digest_every is not None and updated.route.stories == "off"
        await engine.run_once()
        feeds.set("/wire", Route(body=rss(("g1", "Troops gather near Kharkiv"),
                                          ("g2", "More troops reach Kharkiv"))))
        await engine.run_once()
        # a digest route keeps its alerts for the digest, as a config route does
        assert sink.alerts == []
        kept = [r for r in await engine.store.alerts(kind="alert") if r.route == route]
        assert [r.state for r in kept] == ["scheduled"]
        assert await engine.digest_now(route) == 1
        await engine.delivery.drain()
        assert len(sink.digests) == 1
        # one key back to its default; then all of them
        again = await engine.configure_server_route(A, route, {"stories": None})
        assert again.route.stories == "edit" and again.route.mode == "digest"
        reset = await engine.configure_server_route(
            A, route, dict.fromkeys(RouteConfig.model_fields.keys() - {"target"}))
        assert reset.route == RouteConfig(target=A * 10)
        await engine.configure_server_route(A, route, {"quiet_hours": "22:00-07:00",
                                                       "timezone": "Europe/Kyiv"})
    async with open_engine(config(tmp_path), start=False) as engine:
        kept_route = engine.route(route)
        assert kept_route is not None and kept_route.quiet_hours == "22:00-07:00"
        assert kept_route.timezone == "Europe/Kyiv" and kept_route.target == A * 10


def test_the_operators_routes_never_name_a_feed_a_server_follows() -> None:
    """A story line on a config file's route listed servers' private feeds by their keys
    ("Also reported by @4fb7253f64e6"): what a server follows is left out there, as it is on
    another server's routes."""
    from watchers.config import FeedSourceConfig, ServerRoute
    from watchers.tenancy import Tenancy, feed_key

    cfg = parse_config({"channels": {"desk": 123}, "rules": [
        {"name": "troops", "query": "troops", "channel": "desk"}]}, base_dir=Path("."))
    follow = FeedSourceConfig(type="feed", name="mine", url="https://a.example/feed",
                              guild_id=11)
    route = ServerRoute(guild_id=11, name="alerts", channel_id=456)
    other = ServerRoute(guild_id=22, name="alerts", channel_id=789)
    tenancy = Tenancy(cfg, routes=[route, other], follows=[follow])
    private = feed_key("https://a.example/feed")
    assert tenancy.label("desk", private) is None
    assert tenancy.label("desk", "bbc") == "bbc"  # the config file's own sources, as stored
    assert tenancy.label(route.key, private) == "mine"
    assert tenancy.label(other.key, private) is None


@asynccontextmanager
async def operator_and_a(tmp_path: Path, feeds: FeedServer, sink: RecordingSink
                         ) -> AsyncIterator[tuple[Engine, str]]:
    """An engine whose config file has the feed "desk" (rule "everything"), and server A
    following "wire" with a rule "troops" on its channel (yielded with the engine)."""
    feeds.set("/desk", Route(body=rss(("d0", "Markets open higher"))))
    desk = {"name": "desk", "type": "feed", "url": feeds.url("/desk")}
    async with open_engine(config(tmp_path, desk), start=False, default_sink=sink) as engine:
        await engine.add_source({"name": "wire", "url": feeds.url("/wire")}, guild=A)
        yield engine, await server_rule(engine, A, "troops", "troops")


class UpdatingSink(RecordingSink):
    """Keeps the story updates too: (route, the source of the article they show)."""

    def __init__(self) -> None:
        super().__init__()
        self.updates: list[tuple[str, str]] = []

    async def update(self, update: StoryUpdate) -> UpdateResult:
        self.updates.append((update.alert.route, update.article.source))
        return UpdateResult(message_id=update.message_id or "m")


async def test_a_followed_feeds_copy_updates_the_story_only_where_its_followers_read(
        tmp_path: Path, feeds: FeedServer) -> None:
    """The operator's feed brings an article first (the operator, A and B are alerted); A's
    feed then brings it word for word, one more outlet of the story. That queued an update of
    the story's message on every route that alerted it: the operator's and B's were edited to
    show nothing new (their outlets do not name A's feed), each a request to Discord."""
    sink = UpdatingSink()
    async with operator_and_a(tmp_path, feeds, sink) as (engine, route_a):
        route_b = await server_rule(engine, B, "troops", "troops")
        feeds.set("/wire", Route(body=rss(("w0", "Grain prices steady"))))
        await engine.run_once()  # the baselines: recorded, no alerts
        news = ("g2", "More troops reach Kharkiv")
        feeds.set("/desk", Route(body=rss(("d0", "Markets open higher"), news)))
        await engine.run_once()
        assert sorted(a.route for a in sink.alerts) == sorted(["alerts", route_a, route_b])
        # (at its own link: the same link is the same article, one outlet's two feeds)
        copy = ("w2", news[1])
        feeds.set("/wire", Route(body=rss(("w0", "Grain prices steady"), copy)))
        await engine.run_once()
        await engine.run_once()  # delivery of what the poll queued
        # (the update shows the story's stored article, the operator's feed's copy)
        assert sink.updates == [(route_a, "desk")]


async def test_the_operators_feed_bringing_what_a_servers_feed_stored_first_still_alerts(
        tmp_path: Path, feeds: FeedServer) -> None:
    """Dedupe was across every source: an article A's feed stored first (matched by A's rules
    only) was a duplicate when the config file's feed brought it word for word under the same
    link, so the config file's rules never saw it and the operator's channel stayed silent.
    A followed feed's copy of what the operator's feed stored first stays a duplicate."""
    sink = RecordingSink()
    async with operator_and_a(tmp_path, feeds, sink) as (engine, route_a):
        await engine.run_once()  # the baselines: recorded, no alerts
        news = ("g2", "More troops reach Kharkiv")
        feeds.set("/wire", Route(body=rss(("g1", "Troops gather near Kharkiv"), news)))
        await engine.run_once()
        assert [(a.route, a.article.source) for a in sink.alerts] == [(route_a, "wire")]
        feeds.set("/desk", Route(body=rss(("d0", "Markets open higher"), news)))
        await engine.run_once()
        operators = [a for a in sink.alerts if a.route == "alerts"]
        assert [(a.article.title, a.article.source) for a in operators] == [
            ("More troops reach Kharkiv", "desk")]
        # A's rules leave the operator's copy alone: A was told by its own feed.
        assert [a.article.source for a in sink.alerts if a.route == route_a] == ["wire"]
        # The operator sees its copy; A sees both (the config file's sources are everyone's).
        assert {h.article.source for h in (await engine.search('"more troops"')).hits} >= {
            "desk"}
        assert {h.article.source for h in (await engine.search('"more troops"', guild=A)).hits
                } == {"desk", "wire"}
        # And the other way round: the operator's feed first, then A's: one copy, one alert.
        later = ("g3", "Parliament approves the budget")
        feeds.set("/desk", Route(body=rss(("d0", "Markets open higher"), news, later)))
        await engine.run_once()
        feeds.set("/wire", Route(body=rss(("g1", "Troops gather near Kharkiv"), news, later)))
        await engine.run_once()
        hits = (await engine.search('"approves the budget"', guild=A)).hits
        assert [h.article.source for h in hits] == ["desk"]
        assert len([a for a in sink.alerts if a.article.title == later[1]
                    and a.route == "alerts"]) == 1


@pytest.mark.parametrize("stories", ["off", "edit"])
async def test_two_feeds_carrying_one_article_tell_each_server_that_follows_them_once(
        tmp_path: Path, feeds: FeedServer, stories: str) -> None:
    """A follows a feed, B another that carries the same item word for word and under the
    same link (an outlet's two section feeds), C both. B's copy was a duplicate of A's, so
    B's rules never saw the article; now each copy is stored for the servers that have not
    seen it: A and B are told once each, and C once, by the feed that brought it first."""
    sink = RecordingSink()
    async with open_engine(config(tmp_path), start=False, default_sink=sink) as engine:
        feeds.set("/mirror", Route(body=rss(("g1", "Troops gather near Kharkiv"))))
        await engine.add_source({"name": "wire", "url": feeds.url("/wire")}, guild=A)
        await engine.add_source({"name": "mirror", "url": feeds.url("/mirror")}, guild=B)
        await engine.add_source({"name": "wire", "url": feeds.url("/wire")}, guild=C)
        await engine.add_source({"name": "mirror", "url": feeds.url("/mirror")}, guild=C)
        routes = {guild: await server_rule(engine, guild, "troops", "troops")
                  for guild in (A, B, C)}
        for guild in (A, B, C):
            await engine.configure_server_route(guild, routes[guild], {"stories": stories})
        await engine.run_once()  # the baselines: no alerts
        news = rss(("g1", "Troops gather near Kharkiv"), ("g2", "More troops reach Kharkiv"))
        feeds.set("/wire", Route(body=news))
        await engine.run_once()
        feeds.set("/mirror", Route(body=news))
        await engine.run_once()
        told = sorted((a.route, a.article.source) for a in sink.alerts)
        assert told == sorted([(routes[A], "wire"), (routes[C], "wire"),
                               (routes[B], "mirror")])
        for guild, names, matched in ((A, {"wire"}, "wire"), (B, {"mirror"}, "mirror"),
                                      (C, {"wire", "mirror"}, "wire")):
            hits = (await engine.search('"more troops"', guild=guild)).hits
            assert {h.article.source for h in hits} == names
            # Each server's rule matched each article once (C's, not the later copy).
            seen = [(a.title, a.source) for a, _ in await engine.recent(
                rule="troops", guild=guild, limit=50)]
            assert len({title for title, _ in seen}) == len(seen) == 2
            assert ("More troops reach Kharkiv", matched) in seen
        # Polled again, neither feed brings anything new.
        await engine.run_once()
        assert len(sink.alerts) == 3


@pytest.mark.parametrize("stories", ["off", "edit"])
async def test_a_server_told_by_its_own_feed_is_not_told_again_by_the_operators_copy(
        tmp_path: Path, feeds: FeedServer, stories: str) -> None:
    """The operator's copy of what A's feed brought first is stored for the config file's
    rules; A's rules matched it too, so A was alerted a second time (on a route with stories
    off, or when the copy fell outside the story window) and its trend counted the article
    twice. A's rules now leave the operator's copy alone."""
    sink = RecordingSink()
    async with operator_and_a(tmp_path, feeds, sink) as (engine, route_a):
        await engine.configure_server_route(A, route_a, {"stories": stories})
        route_b = await server_rule(engine, B, "troops", "troops")  # B sees only the desk
        await engine.run_once()
        news = ("g2", "More troops reach Kharkiv")
        feeds.set("/wire", Route(body=rss(("g1", "Troops gather near Kharkiv"), news)))
        await engine.run_once()
        feeds.set("/desk", Route(body=rss(("d0", "Markets open higher"), news)))
        await engine.run_once()
        told = [(a.route, a.article.source) for a in sink.alerts]
        assert sorted(told) == sorted([(route_a, "wire"), ("alerts", "desk"),
                                       (route_b, "desk")])
        # A's rule matched its own feed's two items, not the operator's copy of one of them.
        assert sorted(a.title for a, _ in await engine.recent(rule="troops", guild=A, limit=50)
                      ) == ["More troops reach Kharkiv", "Troops gather near Kharkiv"]
        assert {a.source for a, _ in await engine.recent(rule="troops", guild=A, limit=50)
                } == {"wire"}
        assert [a.source for a, _ in await engine.recent(rule="troops", guild=B, limit=50)
                ] == ["desk"]


async def test_a_follow_cancelled_part_way_is_either_whole_or_absent(
        tmp_path: Path, feeds: FeedServer) -> None:
    """A server's follow cancelled between following, running and storing the feed: whatever
    point it stopped at, the server follows it, runs it and has it stored, or none of these."""
    async with open_engine(config(tmp_path), start=False) as engine:
        url = feeds.url("/wire")
        for steps in range(1, 12):
            for call in (lambda: engine.add_source({"name": "wire", "url": url}, guild=A),
                         lambda: engine.remove_source("wire", guild=A)):
                task = asyncio.ensure_future(call())
                for _ in range(steps):
                    await asyncio.sleep(0)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                follows = "wire" in engine.tenancy.follows_of(A)
                running = feed_key(url) in engine.source_names()
                stored = "wire" in {s.name for s in await engine.store.list_sources()}
                assert follows == running == stored, f"{steps} steps: {follows, running, stored}"
            await engine.remove_source("wire", guild=A)
        await engine.add_source({"name": "wire", "url": url}, guild=A)
        assert "wire" in engine.tenancy.follows_of(A)


async def test_the_operator_s_lookups_show_a_server_rule_s_evidence_under_that_server_s_name(
        tmp_path: Path, feeds: FeedServer) -> None:
    """Evidence is found when shown: a server's rule with a source: term matched the article
    under the server's name for the feed, and is asked again under that name when the
    operator (no server) looks the article up."""
    async with open_engine(config(tmp_path), start=False, default_sink=RecordingSink()) as engine:
        await engine.add_source({"name": "wire", "url": feeds.url("/wire")}, guild=A)
        await engine.add_source({"name": "kyiv-wire", "url": feeds.url("/wire")}, guild=B)
        await server_rule(engine, A, "mine", "source:wire AND troops")
        await server_rule(engine, B, "mine", "source:kyiv-wire AND kharkiv")
        await engine.run_once()
        feeds.set("/wire", Route(body=rss(("g1", "Troops gather near Kharkiv"),
                                          ("g2", "More troops reach Kharkiv"))))
        await engine.run_once()
        (article, matches), *_ = await engine.recent(limit=1)
        shown = {m.rule: sorted(h.text for h in m.hits) for m in matches}
        # (the word in the title and in the text, and the source under the server's name)
        assert shown == {f"{A}:mine": ["troops", "troops", "wire"],
                         f"{B}:mine": ["Kharkiv", "Kharkiv", "kyiv-wire"]}
        found = await engine.article(article.id)
        assert found is not None and {m.rule: sorted(h.text for h in m.hits)
                                      for m in found[1]} == shown


async def test_alerts_status_shows_a_waiting_story_as_the_server_sees_it(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from bot.embeds import delivery_embed
    from tests.service.test_identity import rss as dated_rss

    now = datetime.now(UTC).replace(microsecond=0)
    secret = "Russian troops mass near Ukraine border, satellite images show (B-PRIVATE-SCOOP)"
    reports = {
        "bfeed": (secret, "New satellite images show Russian troops and armour massing near "
                          "the Ukrainian border at Yelnya."),
        "dw": ("Satellite images show Russian troops massing near Ukraine's border",
               "Maxar satellite images show Russian troops and tanks gathering near Yelnya, "
               "close to Ukraine."),
    }
    async with FeedServer() as feeds:
        for name in reports:
            feeds.set(f"/{name}", Route(body=dated_rss([])))
        cfg = config(tmp_path, {"name": "dw", "type": "feed", "url": feeds.url("/dw"),
                                "every": "1h", "backfill": 5})
        async with open_engine(cfg, start=False, default_sink=RecordingSink()) as engine:
            await engine.add_source({"name": "bfeed", "url": feeds.url("/bfeed"),
                                     "backfill": 5}, guild=B)
            route = await engine.add_server_route(A, A * 10, "news")
            await engine.add_rule({"name": "troops", "query": "troops", "channel": route,
                                   "min_sources": 3}, guild=A)
            await engine.run_once()
            for minutes, name in enumerate(("bfeed", "dw")):
                title, text = reports[name]
                feeds.set(f"/{name}", Route(body=dated_rss([(
                    f"{name}-1", f"https://{name}.example/x", title, text,
                    now + timedelta(minutes=10 * minutes))])))
                await engine.run_once()
            st = await engine.delivery_status(guild=A)
            assert [r.min_sources for r in st.waiting] == [3]
            (view,) = st.stories.values()
            # B's feed reported first: its headline and its key are not A's to see
            assert view.headline == reports["dw"][0]
            assert view.outlets == ("dw",)
            shown = str(delivery_embed(st, lambda s: s).to_dict())
            assert "B-PRIVATE" not in shown and feed_key(feeds.url("/bfeed")) not in shown
            assert "1/3 outlets" in shown



# One event as four outlets report it (they group into one story): A's feed, B's feed (its
# headline marked, so that it shows wherever it leaks), and two config-file feeds.
REPORTS = {
    "afeed": ("Russian troops mass near Ukraine border, satellite images show",
              "New satellite images show Russian troops and armour massing near the "
              "Ukrainian border at Yelnya."),
    "bfeed": ("Satellite images show Russian troops massing at Ukraine border B-PRIVATE",
              "Satellite images show Russian troops and armour massing near Yelnya, "
              "close to the Ukrainian border."),
    "dw": ("Satellite images show Russian troops massing near Ukraine's border",
           "Maxar satellite images show Russian troops and tanks gathering near Yelnya, "
           "close to Ukraine."),
    "npr": ("Russian troops massing near Ukraine border seen in new satellite images",
            "Satellite images show Russian troops and armour gathering near Yelnya, near "
            "the Ukrainian border."),
}


class Reported:
    """An engine whose config file watches the feeds dw and npr, server A follows afeed as
    "ours" and server B bfeed as "theirs"; A's rule ``troops`` posts to A's route, waiting
    for ``min_sources`` outlets."""

    def __init__(self, engine: Engine, feeds: FeedServer, route: str, sink: Any) -> None:
        self.engine, self.feeds, self.route, self.sink = engine, feeds, route, sink

    async def report(self, name: str, minutes: int) -> None:
        """Outlet ``name`` reports the event ``minutes`` after the first; one poll."""
        title, text = REPORTS[name]
        self.feeds.set(f"/{name}", Route(body=dated_rss([(
            f"{name}-1", f"https://{name}.example/x", title, text,
            NOW + timedelta(minutes=minutes))])))
        await self.engine.run_once()

    async def states(self) -> list[tuple[str, int]]:
        return [(r.state, r.min_sources) for r in await self.engine.store.alerts(kind="alert")]


NOW = datetime.now(UTC).replace(microsecond=0)


@asynccontextmanager
async def reported(tmp_path: Path, min_sources: int, sink: Any = None
                   ) -> AsyncIterator[Reported]:
    sink = sink if sink is not None else RecordingSink()
    async with FeedServer() as feeds:
        for name in REPORTS:
            feeds.set(f"/{name}", Route(body=dated_rss([])))
        cfg = config(tmp_path, *({"name": n, "type": "feed", "url": feeds.url(f"/{n}"),
                                  "every": "1h", "backfill": 5} for n in ("dw", "npr")))
        async with open_engine(cfg, start=False, default_sink=sink) as engine:
            await engine.add_source({"name": "ours", "url": feeds.url("/afeed"),
                                     "backfill": 5}, guild=A)
            await engine.add_source({"name": "theirs", "url": feeds.url("/bfeed"),
                                     "backfill": 5}, guild=B)
            route = await engine.add_server_route(A, A * 10, "news")
            await engine.add_rule({"name": "troops", "query": "troops", "channel": route,
                                   "min_sources": min_sources}, guild=A)
            await engine.run_once()
            yield Reported(engine, feeds, route, sink)


async def test_another_servers_feed_does_not_corroborate_a_servers_story(tmp_path: Path) -> None:
    """A's rule waits for two outlets. B's feed reporting the story is not one A sees: the
    alert keeps waiting (it was released, naming one outlet of the two it waited for) until
    an outlet A sees reports it, and then names A's two."""
    async with reported(tmp_path, 2) as r:
        await r.report("afeed", 0)
        await r.report("bfeed", 10)
        (story,) = {s.id for s in await r.engine.store.live_stories(timedelta(days=1))}
        stored = await r.engine.store.get_story(story)
        assert stored is not None and len(stored.outlets) == 2  # A's feed and B's
        assert await r.states() == [("waiting", 2)]
        assert not any(a.route == r.route for a in r.sink.alerts)
        await r.report("dw", 20)
        (alert,) = [a for a in r.sink.alerts if a.route == r.route]
        assert alert.story is not None and set(alert.story.outlets) == {"ours", "dw"}


async def test_a_replaced_rule_needing_fewer_outlets_releases_its_wait_at_once(
        tmp_path: Path) -> None:
    async with reported(tmp_path, 3) as r:
        await r.report("afeed", 0)
        await r.report("dw", 10)
        assert await r.states() == [("waiting", 3)]
        await r.engine.replace_rule({"name": "troops", "query": "troops", "channel": r.route,
                                     "min_sources": 2}, guild=A)
        assert await r.states() == [("pending", 2)]  # not at the next restart
        await r.engine.run_once()
        assert [a.route for a in r.sink.alerts] == [r.route]


async def test_following_a_feed_that_reported_the_story_counts_it(tmp_path: Path) -> None:
    """B's feed reported the story A's alert waits on; A then follows that feed too (under
    its own name): A sees two outlets now, and the alert posts naming them."""
    async with reported(tmp_path, 2) as r:
        await r.report("dw", 0)
        await r.report("bfeed", 10)
        assert await r.states() == [("waiting", 2)]  # B's feed is not A's to count
        await r.engine.add_source({"name": "mine-too", "url": r.feeds.url("/bfeed")},
                                  guild=A)
        assert await r.states() == [("pending", 2)]
        await r.engine.run_once()
        (alert,) = r.sink.alerts
        assert alert.story is not None and set(alert.story.outlets) == {"dw", "mine-too"}


async def test_an_alert_of_a_feed_its_server_unfollowed_while_it_waited_is_not_posted(
        tmp_path: Path) -> None:
    """Nor shown under the feed's key, nor standing in for the story: A's alert on an article
    of its feed waits; A stops following the feed, and the alert is not sent (rejected,
    saying why). Two config outlets then report the story and A's rule fires on each: their
    own alert posts, naming the two — it was lost, the old alert released in its place and
    refused at delivery. A's /alerts status never showed B's headline (B's feed reported the
    story first)."""
    async with reported(tmp_path, 2) as r:
        await r.report("bfeed", 0)
        await r.report("afeed", 10)
        await r.engine.remove_source("ours", guild=A)
        assert await r.states() == [("rejected", 2)]
        (row,) = await r.engine.store.alerts(kind="alert")
        assert row.reason == "its server no longer follows the feed it came from"
        status = await r.engine.delivery_status(guild=A)
        assert status.waiting == []
        assert "B-PRIVATE" not in str(delivery_embed(status, lambda s: s).to_dict())
        await r.report("dw", 20)
        assert await r.states() == [("rejected", 2), ("waiting", 2)]  # dw: one outlet A sees
        await r.report("npr", 30)
        await r.engine.run_once()
        (alert,) = r.sink.alerts
        assert alert.article.source == "dw"
        assert alert.story is not None and set(alert.story.outlets) == {"dw", "npr"}


async def test_an_alert_of_an_unfollowed_feed_queued_by_another_process_is_refused_at_delivery(
        tmp_path: Path) -> None:
    """The store's rejection at the unfollow misses a row written after it (a poll worker of
    another process, or a poll under way): delivery refuses it, saying why, and never shows
    the feed's key."""
    from watchers.errors import PermanentDeliveryError

    sink = RecordingSink([PermanentDeliveryError("Missing Access", pause_destination=True)])
    async with reported(tmp_path, 1, sink) as r:
        await r.report("afeed", 0)  # the channel refuses it: the route pauses, the alert held
        assert await r.states() == [("held", 1)]
        # A leaves as the process that queued the row sees it: the follow gone, the row kept
        await r.engine.store.delete_source(f"{A}:ours")
        del r.engine.tenancy.follows[f"{A}:ours"]
        await r.engine.resume_route(r.route)
        await r.engine.run_once()
        assert r.sink.alerts == []
        (row,) = await r.engine.store.alerts(kind="alert")
        assert (row.state, row.reason) == (
            "rejected", "its server no longer follows the feed it came from")


class KeptUpdates(RecordingSink):
    def __init__(self) -> None:
        super().__init__()
        self.updates: list[StoryUpdate] = []

    async def update(self, update: StoryUpdate) -> UpdateResult:
        self.updates.append(update)
        return UpdateResult(message_id=update.message_id or "m")


async def test_a_story_message_of_an_unfollowed_feed_is_edited_without_its_key(
        tmp_path: Path) -> None:
    """A's message shows an article of its feed; A stops following it; a config outlet's
    report edits the message, which names the feed "unfollowed feed" (it had no other name
    left), never by its key."""
    sink = KeptUpdates()
    async with reported(tmp_path, 1, sink) as r:
        await r.report("afeed", 0)
        (alert,) = sink.alerts
        assert alert.article.source == "ours"
        await r.engine.remove_source("ours", guild=A)
        await r.report("dw", 10)
        (update,) = sink.updates
        assert update.alert.article.source == "unfollowed feed"
        assert update.story.outlets == ("dw",)
        assert feed_key(r.feeds.url("/afeed")) not in repr(update)


async def test_a_feed_unfollowed_while_its_poll_is_under_way_is_matched_by_no_rule(
        tmp_path: Path) -> None:
    """The poll's articles arrive after the last follower left: the feed then had no
    audience and its articles were matched as a config file's source is, by the config file's
    rules and by every server's (an alert of A's feed queued on B's and the operator's
    routes, where it waited for good)."""
    async with FeedServer() as feeds:
        feeds.set("/wire", Route(body=rss()))
        async with open_engine(config(tmp_path), start=False,
                               default_sink=RecordingSink()) as engine:
            await engine.add_source({"name": "wire", "url": feeds.url("/wire")}, guild=A)
            await server_rule(engine, A, "troops", "troops")
            await server_rule(engine, B, "troops", "troops")
            await engine.run_once()  # the baseline
            feeds.set("/wire", Route(body=rss(("g1", "Troops story from the wire")), delay=1.0))
            poll = asyncio.create_task(engine.run_once())
            await asyncio.sleep(0.3)  # the feed's request is under way
            assert await engine.remove_source("wire", guild=A)
            await asyncio.wait_for(poll, 10)
            assert len(feeds.hits("/wire")) == 2  # it was fetched, after A left
            assert await engine.store.alerts() == []
            (hit,) = (await engine.search("troops")).hits  # stored, matched by no rule
            assert await engine.store.matches_for(hit.article.id) == []


async def test_a_follows_backfill_lets_the_first_polls_newest_items_alert(tmp_path: Path
                                                                          ) -> None:
    """As a config file's feed's does: the follow's backfill was stored and then left out of
    the feed that polls it, so its first poll alerted nothing."""
    async with FeedServer() as feeds:
        feeds.set("/wire", Route(body=rss(("g1", "Troops gather near Kharkiv"),
                                          ("g2", "Troops reach Odesa"),
                                          ("g3", "Troops leave Kherson"))))
        sink = RecordingSink()
        async with open_engine(config(tmp_path), start=False, default_sink=sink) as engine:
            route = await server_rule(engine, A, "troops", "troops")
            await engine.add_source({"name": "wire", "url": feeds.url("/wire"), "backfill": 2},
                                    guild=A)
            await engine.add_source({"name": "same", "url": feeds.url("/wire")}, guild=B)
            await engine.run_once()
            assert [a.route for a in sink.alerts] == [route, route]  # two of the three


async def test_a_feed_followed_again_after_its_last_follower_left_starts_with_a_baseline(
        tmp_path: Path, feeds: FeedServer) -> None:
    """Its state stayed under the feed's key: the next server to follow it got no baseline,
    and everything the feed published while nobody followed it alerted that server."""
    sink = RecordingSink()
    async with open_engine(config(tmp_path), start=False, default_sink=sink) as engine:
        await engine.add_source({"name": "wire", "url": feeds.url("/wire")}, guild=A)
        await engine.run_once()  # A's baseline
        assert await engine.remove_source("wire", guild=A)
        feeds.set("/wire", Route(body=rss(("g1", "Troops gather near Kharkiv"),
                                          *((f"n{i}", f"Troops move {i}") for i in range(4)))))
        view = await engine.add_source({"name": "news", "url": feeds.url("/wire")}, guild=B)
        assert (view.state.polls, view.state.last_success) == (0, None)
        await server_rule(engine, B, "troops", "troops")
        await engine.run_once()  # B's baseline: nothing of the gap alerts
        await engine.delivery.drain()
        assert sink.alerts == []
        feeds.set("/wire", Route(body=rss(("n9", "Troops cross the river"))))
        await engine.run_once()
        await engine.delivery.drain()
        assert [a.article.title for a in sink.alerts] == ["Troops cross the river"]
