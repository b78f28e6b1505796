"""Stories in the store: each article joins its story in the transaction that stores it, and a
route's outbox gets one alert per story — later articles become updates, an alert of higher
severity escalates, an alert with ``min_sources`` waits for enough outlets (or ends
uncorroborated) — whatever the order of batches."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.store._support import art, match, rule
from watchers.config import FeedSourceConfig, ServerRoute
from watchers.models import Article
from watchers.rules.lookup import index_terms
from watchers.store import SqliteStore, Store
from watchers.store._shared import outlets_json, source_outlets_json
from watchers.store.base import ArticleRecord, OutboxEntry, StoryLink, story_outcome
from watchers.tenancy import feed_key

T0 = datetime(2022, 1, 20, 9, 0, tzinfo=UTC)


def entry(route: str = "alerts", *, severity: str = "medium", min_sources: int = 1,
          stories: str = "edit", suppressed: bool = False) -> OutboxEntry:
    return OutboxEntry(route, (rule(severity=severity, min_sources=min_sources),),
                       suppressed=suppressed, stories=stories, severity=severity,
                       min_sources=min_sources)


def rec(a: Article, story: str, outlet: str, *entries: OutboxEntry, minutes: int = 0,
        at: datetime | None = None) -> ArticleRecord:
    return ArticleRecord(a, [match(a)], list(entries), index_terms(a.title, a.text),
                         StoryLink(story, f"sig of {story}", outlet,
                                   at or T0 + timedelta(minutes=minutes)))


def outbox(path: Path) -> list[tuple[str, str, str, str | None, str | None]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT kind, article_id, state, story_id, escalated_from "
                            "FROM outbox ORDER BY id").fetchall()


async def test_a_story_is_written_with_its_articles_and_outlets(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        a, b, c = (art("Troops mass at border", published=T0),
                   art("Border sees troops mass", published=T0 + timedelta(minutes=30)),
                   art("Troops!", published=T0 + timedelta(minutes=10)))
        await store.record_many([rec(a, "s1", "dw", entry()),
                                 rec(b, "s1", "npr", entry(), minutes=30)])
        await store.record_many([rec(c, "s1", "dw", entry(), minutes=10)])
        story = await store.get_story("s1")
        assert story is not None
        assert story.headline == "Troops mass at border"  # the first article's title
        assert story.outlets == ("dw", "npr")  # distinct, in the order they reported
        assert story.articles == 3
        assert (story.first_seen, story.last_seen) == (T0, T0 + timedelta(minutes=30))
        assert [x.id for x in await store.story_articles("s1")] == [a.id, c.id, b.id]
        assert set(await store.stories_of([a.id, b.id, c.id])) == {a.id, b.id, c.id}
        assert (await store.live_stories(T0 + timedelta(minutes=20)))[0].id == "s1"
        assert await store.live_stories(T0 + timedelta(minutes=31)) == []
    kinds = [(k, s) for k, _, s, _, _ in outbox(tmp_path / "nw.db")]
    assert kinds == [("alert", "pending"), ("update", "pending"), ("update", "pending")]


async def test_a_newest_story_dated_year_one_leaves_the_window_readable(store: Store) -> None:
    """Go's zero time (0001-01-01) is what some feeds send for "no date". A store whose newest
    story was dated so could not count its live window back from it (an OverflowError), so the
    story index was never built at start and every poll of every source failed."""
    zero = datetime(1, 1, 1, tzinfo=UTC)
    a = art("Troops seen near the border", published=zero)
    await store.record_many([ArticleRecord(a, [match(a)], [entry()],
                                           index_terms(a.title, a.text),
                                           StoryLink("s0", "sig of s0", "blog", zero))])
    assert [s.id for s in await store.live_stories(timedelta(hours=48))] == ["s0"]
    assert [s.id for s in await store.live_stories(timedelta(hours=48), until=T0)] == ["s0"]


async def test_a_higher_severity_posts_anew_and_says_what_it_escalated_from(tmp_path: Path
                                                                            ) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await store.record_many([
            rec(art("One"), "s", "dw", entry(severity="medium")),
            rec(art("Two"), "s", "npr", entry(severity="low")),
            rec(art("Three"), "s", "bbc", entry(severity="critical")),
            rec(art("Four"), "s", "ap", entry(severity="high")),
        ])
    rows = [(k, e) for k, _, _, _, e in outbox(tmp_path / "nw.db")]
    assert rows == [("alert", None), ("update", None), ("alert", "medium"), ("update", None)]


async def test_an_alert_waits_for_enough_outlets_then_posts_once(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await store.record_many([rec(art("One"), "s", "dw", entry(min_sources=3))])
        await store.record_many([rec(art("Two"), "s", "dw", entry(min_sources=3))])  # same outlet
        assert [r[2] for r in outbox(tmp_path / "nw.db")] == ["waiting"]
        assert (await store.alert_counts()) == {"waiting": 1}
        await store.record_many([rec(art("Three"), "s", "npr", entry(min_sources=3))])
        assert [r[2] for r in outbox(tmp_path / "nw.db")] == ["waiting"]
        await store.record_many([rec(art("Four"), "s", "bbc", entry(min_sources=3))])
        # the first alert posts (it names every outlet when delivered); nothing else is written
        assert [(r[0], r[2]) for r in outbox(tmp_path / "nw.db")] == [("alert", "pending")]
        await store.record_many([rec(art("Five"), "s", "ap", entry(min_sources=3))])
        assert [(r[0], r[2]) for r in outbox(tmp_path / "nw.db")] == [
            ("alert", "pending"), ("update", "pending")]


async def test_a_rule_needing_fewer_outlets_posts_the_story_in_place_of_the_waiting_alert(
        tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await store.record_many([rec(art("One"), "s", "dw", entry(min_sources=3))])
        await store.record_many([rec(art("Two"), "s", "npr", entry(min_sources=1))])
    assert [(r[0], r[2]) for r in outbox(tmp_path / "nw.db")] == [
        ("alert", "uncorroborated"), ("alert", "pending")]


# Two servers, each following its own feed (stored under the feed's key, as the engine does).
A, B = 111, 222
A_ROUTE = f"{A}:news"
A_FEED, B_FEED = feed_key("https://a.example/feed"), feed_key("https://b.example/feed")


async def two_servers(store: Store) -> None:
    for guild, url in ((A, "https://a.example/feed"), (B, "https://b.example/feed")):
        await store.put_server_route(ServerRoute(guild_id=guild, name="news",
                                                 channel_id=guild * 10))
        await store.put_source(FeedSourceConfig(type="feed", name="wire", url=url,
                                                guild_id=guild))


def sourced(title: str, source: str) -> Article:
    return art(title).model_copy(update={"source": source})


async def states(store: Store) -> list[tuple[str, str]]:
    return [(r.route, r.state) for r in await store.alerts(kind="alert")]


async def test_another_servers_feed_does_not_release_a_servers_wait(store: Store) -> None:
    """A server's alert that waits for two outlets counts the outlets that server sees: the
    config file's sources and its own feeds. Another server's feed reporting the story
    released it, and the alert then named one outlet of the two it waited for."""
    await two_servers(store)
    one = sourced("One", A_FEED)
    await store.record_many([rec(one, "s", A_FEED, entry(A_ROUTE, min_sources=2))])
    await store.record_many([rec(sourced("Two", B_FEED), "s", B_FEED)])  # B's, no A rule
    assert await states(store) == [(A_ROUTE, "waiting")]
    # a wire copy from a feed nobody follows any more counts for no server either
    await store.add_outlet(one.id, feed_key("https://gone.example/"), T0, [A_ROUTE])
    assert await states(store) == [(A_ROUTE, "waiting")]
    await store.record_many([rec(sourced("Three", "dw"), "s", "dw")])  # every server's
    assert await states(store) == [(A_ROUTE, "pending")]


async def test_the_config_files_routes_count_no_servers_feed(store: Store) -> None:
    await two_servers(store)
    await store.record_many([rec(sourced("One", "dw"), "s", "dw", entry(min_sources=2))])
    await store.record_many([rec(sourced("Two", A_FEED), "s", A_FEED)])
    assert await states(store) == [("alerts", "waiting")]
    await store.record_many([rec(sourced("Three", "npr"), "s", "npr")])
    assert await states(store) == [("alerts", "pending")]


async def test_a_new_alert_counts_the_outlets_its_route_sees(store: Store) -> None:
    """A story three outlets reported, one of them another server's feed: an alert that needs
    three waits on A's route (A sees two of them); B's that needs two posts (B sees two)."""
    await two_servers(store)
    await store.record_many([rec(sourced("One", "dw"), "s", "dw")])
    await store.record_many([rec(sourced("Two", B_FEED), "s", B_FEED)])
    await store.record_many([rec(sourced("Three", A_FEED), "s", A_FEED,
                                 entry(A_ROUTE, min_sources=3))])
    await store.record_many([rec(sourced("Four", B_FEED), "s", B_FEED,
                                 entry(f"{B}:news", min_sources=2))])
    assert await states(store) == [(A_ROUTE, "waiting"), (f"{B}:news", "pending")]


async def test_lookups_count_the_outlets_their_reader_sees(store: Store) -> None:
    """A server's readers count the config file's sources and the feeds it follows, by their
    outlets; the operator counts every source (a followed feed by its follow's outlet)."""
    await two_servers(store)
    store.name_outlets({"bbc-world": "bbci.co.uk", "bbc-europe": "bbci.co.uk"})
    await store.record_many([rec(sourced("One", "bbc-world"), "s", "bbc-world")])
    await store.record_many([rec(sourced("Two", A_FEED), "s", A_FEED)])
    await store.record_many([rec(sourced("Three", B_FEED), "s", B_FEED)])
    await store.record_many([rec(sourced("Four", "bbc-europe"), "s", "bbc-europe")])
    await store.record_many([rec(sourced("Five", "bbc-europe"), "t", "bbc-europe")])
    assert await store.outlets_seen(["s", "t", "unknown"], guild=A) == {"s": 2, "t": 1}
    assert await store.outlets_seen(["s"], guild=B) == {"s": 2}
    assert await store.outlets_seen(["s"], guild=999) == {"s": 1}  # follows neither feed
    assert await store.outlets_seen(["s", "t"]) == {"s": 3, "t": 1}
    assert await store.outlets_seen([]) == {}


async def test_a_lowered_wait_counts_the_outlets_its_route_sees(store: Store) -> None:
    await two_servers(store)
    one = sourced("One", A_FEED)
    await store.record_many([rec(one, "s", A_FEED, entry(A_ROUTE, min_sources=3))])
    await store.record_many([rec(sourced("Two", B_FEED), "s", B_FEED)])
    (row,) = await store.alerts(kind="alert")
    assert not await store.lower_wait(row.id, 2)  # two outlets, one of them A's to see
    assert await states(store) == [(A_ROUTE, "waiting")]
    await store.record_many([rec(sourced("Three", "dw"), "s", "dw")])
    assert await states(store) == [(A_ROUTE, "pending")]


# Two feeds of one outlet (the BBC's world and Europe feeds) and another outlet, as the engine
# names their outlets to the store (see watchers.outlets).
BBC_FEEDS = {"bbc-world": "bbci.co.uk", "bbc-europe": "bbci.co.uk", "dw": "dw.com"}


async def test_two_sources_of_one_outlet_do_not_corroborate_each_other(store: Store) -> None:
    """``min_sources`` counts outlets, not sources: the BBC's two feeds reporting a story are
    one outlet, whether the second brings an article of its own or a word-for-word copy; the
    story still lists both sources, and another outlet releases the alert."""
    store.name_outlets(BBC_FEEDS)
    one = sourced("One", "bbc-world")
    await store.record_many([rec(one, "s", "bbc-world", entry(min_sources=2))])
    await store.record_many([rec(sourced("Two", "bbc-europe"), "s", "bbc-europe",
                                 entry(min_sources=2))])
    assert await states(store) == [("alerts", "waiting")]
    await store.add_outlet(one.id, "bbc-europe", T0, ["alerts"])  # known: nothing changes
    story = await store.get_story("s")
    assert story is not None and story.outlets == ("bbc-world", "bbc-europe")
    await store.record_many([rec(sourced("Three", "dw"), "s", "dw")])
    assert await states(store) == [("alerts", "pending")]


async def test_a_copy_from_another_feed_of_the_outlet_does_not_release_a_wait(
        store: Store) -> None:
    store.name_outlets(BBC_FEEDS)
    one = sourced("One", "bbc-world")
    await store.record_many([rec(one, "s", "bbc-world", entry(min_sources=2))])
    await store.add_outlet(one.id, "bbc-europe", T0, ["alerts"])
    assert await states(store) == [("alerts", "waiting")]
    await store.add_outlet(one.id, "dw", T0, ["alerts"])
    assert await states(store) == [("alerts", "pending")]


async def test_a_lowered_wait_counts_outlets_not_sources(store: Store) -> None:
    store.name_outlets(BBC_FEEDS)
    await store.record_many([rec(sourced("One", "bbc-world"), "s", "bbc-world",
                                 entry(min_sources=3))])
    await store.record_many([rec(sourced("Two", "bbc-europe"), "s", "bbc-europe")])
    (row,) = await store.alerts(kind="alert")
    assert not await store.lower_wait(row.id, 2)  # two sources, one outlet
    assert await states(store) == [("alerts", "waiting")]
    await store.record_many([rec(sourced("Three", "dw"), "s", "dw")])
    assert await states(store) == [("alerts", "pending")]


async def test_a_servers_feeds_of_one_site_are_one_outlet_with_the_config_files(
        store: Store) -> None:
    """A server's feeds count by the site of their URLs (read with the follows): its two
    BBC feeds are one outlet, and the same outlet as the config file's BBC feed."""
    store.name_outlets(BBC_FEEDS)
    await store.put_server_route(ServerRoute(guild_id=A, name="news", channel_id=A * 10))
    world = "https://feeds.bbci.co.uk/news/world/rss.xml"
    europe = "https://www.bbci.co.uk/news/world/europe/rss.xml"
    for name, url in (("world", world), ("europe", europe)):
        await store.put_source(FeedSourceConfig(type="feed", name=name, url=url, guild_id=A))
    await store.record_many([rec(sourced("One", feed_key(world)), "s", feed_key(world),
                                 entry(A_ROUTE, min_sources=2))])
    await store.record_many([rec(sourced("Two", feed_key(europe)), "s", feed_key(europe))])
    await store.record_many([rec(sourced("Three", "bbc-world"), "s", "bbc-world")])
    assert await states(store) == [(A_ROUTE, "waiting")]
    await store.record_many([rec(sourced("Four", "dw"), "s", "dw")])
    assert await states(store) == [(A_ROUTE, "pending")]


async def test_a_server_feeds_outlet_setting_is_its_outlet(store: Store) -> None:
    await store.put_server_route(ServerRoute(guild_id=A, name="news", channel_id=A * 10))
    mirror, own = "https://mirror.example/bbc.xml", "https://feeds.bbci.co.uk/news/rss.xml"
    await store.put_source(FeedSourceConfig(type="feed", name="mirror", url=mirror,
                                            outlet="bbci.co.uk", guild_id=A))
    await store.put_source(FeedSourceConfig(type="feed", name="bbc", url=own, guild_id=A))
    await store.record_many([rec(sourced("One", feed_key(mirror)), "s", feed_key(mirror),
                                 entry(A_ROUTE, min_sources=2))])
    await store.record_many([rec(sourced("Two", feed_key(own)), "s", feed_key(own))])
    assert await states(store) == [(A_ROUTE, "waiting")]


async def test_a_servers_unsent_alerts_of_a_feed_are_rejected_and_no_other(store: Store
                                                                            ) -> None:
    await two_servers(store)
    await store.record_many([
        rec(sourced("One", A_FEED), "s", A_FEED, entry(A_ROUTE, min_sources=2)),
        rec(sourced("Two", A_FEED), "t", A_FEED, entry(A_ROUTE)),
        rec(sourced("Three", "dw"), "u", "dw", entry(A_ROUTE)),
        rec(sourced("Four", B_FEED), "v", B_FEED, entry(f"{B}:news")),
    ])
    assert await store.reject_alerts_of(A_FEED, [A_ROUTE, "nowhere"], "gone") == 2
    assert await states(store) == [(A_ROUTE, "rejected"), (A_ROUTE, "rejected"),
                                   (A_ROUTE, "pending"), (f"{B}:news", "pending")]
    assert {r.reason for r in await store.alerts(kind="alert", state="rejected")} == {"gone"}
    assert await store.reject_alerts_of(A_FEED, [A_ROUTE], "gone") == 0  # settled already
    assert await store.reject_alerts_of(A_FEED, [], "gone") == 0


async def alert_rows(store: Store) -> list[tuple[str, str | None, str, str | None]]:
    """Each alert's (state, severity of its rule, its article's title, escalated from)."""
    out: list[tuple[str, str | None, str, str | None]] = []
    for r in await store.alerts(kind="alert"):
        article = await store.get_article(r.article_id or "")
        assert article is not None
        out.append((r.state, r.rules[0].severity, article.title, r.escalated_from))
    return out


async def test_a_more_severe_alert_behind_a_waiting_one_is_not_lost(store: Store) -> None:
    # a mild rule waits for three outlets; the same outlet's next article fires a critical rule
    # that needs two: it waits in its own right, in place of the mild one
    await store.record_many([rec(art("One"), "s", "dw", entry(severity="low", min_sources=3))])
    await store.record_many([rec(art("Two"), "s", "dw",
                                 entry(severity="critical", min_sources=2))])
    assert await alert_rows(store) == [("uncorroborated", "low", "One", None),
                                       ("waiting", "critical", "Two", None)]
    # a second outlet, firing the mild rule only, posts the critical alert
    await store.record_many([rec(art("Three"), "s", "npr",
                                 entry(severity="low", min_sources=3))])
    assert await alert_rows(store) == [("uncorroborated", "low", "One", None),
                                       ("pending", "critical", "Two", None)]
    assert [r.kind for r in await store.alerts()] == ["alert", "alert"]


async def test_waiting_alerts_post_one_message_a_release_each_escalating_the_last(
        store: Store) -> None:
    await store.record_many([rec(art("One"), "s", "dw", entry(severity="low", min_sources=2))])
    await store.record_many([rec(art("Two"), "s", "dw",
                                 entry(severity="critical", min_sources=3))])
    assert await alert_rows(store) == [("waiting", "low", "One", None),
                                       ("waiting", "critical", "Two", "low")]
    await store.record_many([rec(art("Three"), "s", "npr")])  # fires nothing: an outlet
    assert [r[0] for r in await alert_rows(store)] == ["pending", "waiting"]
    await store.record_many([rec(art("Four"), "s", "bbc")])
    assert await alert_rows(store) == [("pending", "low", "One", None),
                                       ("pending", "critical", "Two", "low")]


async def test_a_milder_alert_that_posts_first_leaves_a_more_severe_one_waiting(
        store: Store) -> None:
    await store.record_many([rec(art("One"), "s", "dw",
                                 entry(severity="critical", min_sources=3))])
    await store.record_many([rec(art("Two"), "s", "npr", entry(severity="low"))])
    # the mild alert posts the story; the critical one waits on, to escalate it
    assert await alert_rows(store) == [("waiting", "critical", "One", "low"),
                                       ("pending", "low", "Two", None)]
    await store.record_many([rec(art("Three"), "s", "bbc")])
    assert await alert_rows(store) == [("pending", "critical", "One", "low"),
                                       ("pending", "low", "Two", None)]


async def test_a_wait_that_outlives_the_window_ends_uncorroborated_and_is_never_held(
        tmp_path: Path) -> None:
    now = datetime.now(UTC)
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await store.record_many([rec(art("One"), "s", "dw", entry(min_sources=2), at=now)])
        await store.pause_route("alerts", "down")
        assert await store.held_counts() == {}  # waiting is not held: resume never releases it
        await store.resume_route("alerts")
        assert await store.expire_waiting(datetime.now(UTC) - timedelta(hours=1)) == 0
        assert await store.expire_waiting(datetime.now(UTC) + timedelta(seconds=1)) == 1
        # a late second outlet does not bring an uncorroborated alert back
        await store.record_many([rec(art("Two"), "s", "npr", entry(min_sources=2), at=now)])
    assert [(r[0], r[2]) for r in outbox(tmp_path / "nw.db")] == [
        ("alert", "uncorroborated"), ("alert", "pending")]


async def test_a_route_with_stories_off_alerts_per_article_and_muted_rules_stay_suppressed(
        tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await store.record_many([
            rec(art("One"), "s", "dw", entry(stories="off"), entry("ops", suppressed=True)),
            rec(art("Two"), "s", "npr", entry(stories="off"), entry("ops")),
        ])
    assert [(k, s) for k, _, s, _, _ in outbox(tmp_path / "nw.db")] == [
        ("alert", "pending"), ("alert", "suppressed"), ("alert", "pending"), ("alert", "pending")]


async def test_the_story_message_per_route_is_kept(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        assert await store.story_message("s", "alerts") is None
        await store.set_story_message("s", "alerts", "100", None)
        await store.set_story_message("s", "alerts", "100", "100")
        await store.set_story_message("s", "ops", "7", None)
        assert await store.story_message("s", "alerts") == ("100", "100")
        assert await store.story_message("s", "ops") == ("7", None)


def test_story_outcome_table() -> None:
    e = entry(severity="high", min_sources=2)
    assert story_outcome(e, 1, []) == ("alert", "waiting", None)
    assert story_outcome(e, 2, []) == ("alert", "pending", None)
    # an alert at least as severe waits for no more outlets: this article corroborates it
    assert story_outcome(e, 1, [("waiting", "high")]) == (None, "waiting", None)
    assert story_outcome(e, 1, [("waiting", "critical", 2)]) == (None, "waiting", None)
    # a milder one, or one that waits for more outlets, does not stand for it: it waits too,
    # and says it escalates from what posts before it
    assert story_outcome(e, 1, [("waiting", "low", 1)]) == ("alert", "waiting", "low")
    assert story_outcome(e, 1, [("waiting", "critical", 3)]) == ("alert", "waiting", None)
    assert story_outcome(e, 1, [("delivered", "low"), ("waiting", "critical", 3)]) == (
        "alert", "waiting", "low")
    assert story_outcome(e, 2, [("delivered", "high")]) == ("update", "pending", None)
    assert story_outcome(e, 2, [("delivered", "medium"), ("held", "low")]) == (
        "alert", "pending", "medium")


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["dw", "npr", "bbc"]),
                          st.integers(1, 3), st.sampled_from(["low", "medium", "critical"])),
                min_size=1, max_size=12),
       st.integers(1, 4))
async def test_every_article_belongs_to_one_story_and_each_route_posts_a_story_once(
        tmp_path_factory: object, plan: list[tuple[int, str, int, str]], batch: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "nw.db"
        async with await SqliteStore.open(path) as store:
            records = [rec(art(f"Event {i} of story {s}"), f"s{s}", outlet,
                           entry(severity=sev, min_sources=need), minutes=i)
                       for i, (s, outlet, need, sev) in enumerate(plan)]
            for i in range(0, len(records), batch):
                await store.record_many(records[i : i + batch])
            stories = await store.stories_of([r.article.id for r in records])
            assert {a: s.id for a, s in stories.items()} == {
                r.article.id: r.story.id for r in records if r.story}
            total = sum(s.articles for s in {s.id: s for s in stories.values()}.values())
            assert total == len(records)
        rows = outbox(path)
        for sid in {f"s{s}" for s, *_ in plan}:
            mine = [r for r in rows if r[3] == sid]
            plain = [r for r in mine if r[0] == "alert" and r[4] is None
                     and r[2] != "uncorroborated"]
            # one first alert per story and route; the rest are updates or escalations
            assert len(plain) <= 1
            if any(r[0] == "update" for r in mine):
                assert plain and plain[0][2] == "pending"
        # No rule's alert is lost: a rule that fired on a story that reached the outlets it
        # needs has the story posted on the route by an alert at least as severe.
        with sqlite3.connect(path) as conn:
            posted = conn.execute("SELECT story_id, severity FROM outbox WHERE kind = 'alert' "
                                  "AND state = 'pending'").fetchall()
        ranks = ["low", "medium", "high", "critical"]
        for s, _, need, sev in plan:
            if len({o for t, o, *_ in plan if t == s}) >= need:
                assert any(sid == f"s{s}" and ranks.index(p) >= ranks.index(sev)
                           for sid, p in posted), (s, need, sev)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(st.characters(exclude_categories=()), max_size=12), max_size=5))
@example(["a\ud800b", "\udfff"])  # lone surrogates, which the alphabet holds but seldom draws
@example(['q"uo\\te', "\x00\x1f\u2028", "Deutsche Welle", "ドイチェ・ヴェレ"])
def test_outlets_are_stored_as_json_dumps_spells_them(outlets: list[str]) -> None:
    # Control characters, quotes, backslashes, other scripts and lone surrogates included.
    assert outlets_json(outlets) == json.dumps(outlets, ensure_ascii=False,
                                               separators=(",", ":"))
    assert json.loads(outlets_json(outlets)) == outlets
    sources = {o: o[::-1] for o in outlets}
    assert source_outlets_json(sources) == json.dumps(sources, ensure_ascii=False,
                                                      separators=(",", ":"))
