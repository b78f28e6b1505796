"""Two servers share one newswatch (the real discord.py against the emulator) and follow feeds
served on 127.0.0.1: every source command and every lookup of server B is run against what
server A made, and none of them reads or changes A's sources or shows A's articles.

- /sources add: both servers may name a source alike; a URL both follow is fetched once per
  poll however many servers follow it, each seeing its articles under its own name; a URL the
  config file already watches is refused, naming that source; a server's limit is its own.
- /sources list|remove|resume|export|import and the source autocomplete: B sees the shared
  (config) sources, marked, and its own, never A's; B's answers for A's source are those for a
  name nobody used.
- /search, /recent, /article, /story, /stats, /trend: B finds none of the articles only A's
  sources brought, and a `source:` naming A's source is refused as unknown.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.embeds import escape
from tests.bot._stories import REPORTS
from tests.bot.conftest import TOKEN, Running, bot_config, start_running
from tests.fakes.discord_emulator import DiscordEmulator, EmuMessage, Fault, default_guild
from tests.fakes.feed_server import FeedServer, Route
from tests.service.test_identity import rss
from watchers.config import parse_config
from watchers.opml import parse_opml, write_opml
from watchers.store.base import SERVER_FEED_PREFIX

A, B = 1100000000000000001, 1100000000000000501
LIMIT = 3  # sources per server, so both reaching it takes few commands
NOW = datetime.now(UTC).replace(microsecond=0)


def item(guid: str, title: str, text: str, minutes_ago: int) -> tuple[Any, ...]:
    return (guid, f"https://{guid}.example/news", title, text,
            NOW - timedelta(minutes=minutes_ago))


# What each path serves. Every item says "troops", so a rule matches it and it shows in
# /recent; each carries a word no other feed has, to tell where a result came from.
FEEDS: dict[str, list[tuple[Any, ...]]] = {
    # A's "desk": one report of the event the operator's feed also reports (one story, two
    # outlets), and one article only A has
    "/a-desk": [item("a-dw", *REPORTS["dw"], 120),
                item("a-bear", "Grizzly troops guard the Lviv zoo",
                     "A grizzly walked past troops at the gate.", 90)],
    "/b-desk": [item("b-bison", "Bison troops cross the Vistula",
                     "A bison herd stopped troops on the bridge.", 80)],
    "/both": [item("w-zebra", "Zebra troops parade in Nairobi",
                   "Zebra-striped uniforms for the troops.", 70)],
    "/operator": [item("o-npr", *REPORTS["npr"], 100)],
}
A_ONLY = len(FEEDS["/a-desk"])
B_ONLY = len(FEEDS["/b-desk"])
EMPTY = ("/a-spare", "/a-more", "/b-import", "/b-import-2")


@pytest.fixture
async def feeds() -> AsyncIterator[FeedServer]:
    async with FeedServer() as server:
        for path, items in FEEDS.items():
            server.set(path, Route(body=rss(items)))
        for path in EMPTY:
            server.set(path, Route(body=rss([])))
        yield server


@pytest.fixture
async def two() -> AsyncIterator[DiscordEmulator]:
    guilds = [default_guild(A, "Newsroom"), default_guild(B, "Other desk")]
    async with DiscordEmulator(token=TOKEN, guilds=guilds) as e, e.patch_discord():
        yield e


@pytest.fixture
async def running(two: DiscordEmulator, tmp_path: Path, feeds: FeedServer
                  ) -> AsyncIterator[Running]:
    """newswatch serving A and B, the config file sharing one feed ("operator") with both."""
    data = bot_config(two, tmp_path, fetch={"allow_private": ["127.0.0.1/32"]},
                      sources=[{"name": "operator", "type": "feed", "every": "1h",
                                "url": feeds.url("/operator")}],
                      rules=[{"name": "troops", "query": "troops"}])
    data["discord"]["guild_ids"] = [A, B]
    data["discord"]["max_sources_per_server"] = LIMIT
    (tmp_path / "seeds").mkdir()
    run = await start_running(parse_config(data, base_dir=tmp_path), two, tmp_path / "seeds")
    try:
        await two.wait_until_identified(timeout=10)
        await run.wait_for(lambda: bool(two.commands(B)))
        yield run
    finally:
        run.stop.set()
        assert await asyncio.wait_for(run.task, 15) == 0


async def ask(emu: DiscordEmulator, guild: int, name: str,
              options: dict[str, Any] | None = None, user: str = "admin") -> EmuMessage:
    handle = await emu.send_interaction(name, options, guild_id=guild, user=user)
    return await handle.final_message(timeout=15)


async def offered(emu: DiscordEmulator, guild: int, command: str, option: str, typed: str,
                  **others: str) -> list[str]:
    got = await emu.send_autocomplete(command, {**others, option: typed}, focused=option,
                                      guild_id=guild)
    return [c["value"] for c in got]


def fetches(feeds: FeedServer, path: str) -> int:
    return sum(1 for r in feeds.requests if r.path == path)


def text_of(msg: EmuMessage) -> str:
    return msg.content + json.dumps(msg.embeds, ensure_ascii=False)


async def follow(run: Running, feeds: FeedServer) -> None:
    """Each server adds a rule "watch" (troops) posting to its #alerts — the config file's
    rules never see what servers follow — then A follows desk (/a-desk) and wire (/both), B
    desk (/b-desk) and newswire (/both); returns once every feed has been polled and its
    articles stored. /both serves its items once both servers follow it: a follower's rules
    are matched against the articles a feed brings after it follows, and which of the two
    follows came before the feed's first poll was a matter of timing."""
    emu = run.emu
    feeds.set("/both", Route(body=rss([])))
    for guild in (A, B):
        alerts = next(g for g in emu.guilds if g.id == guild).channel("alerts").id
        said = await ask(emu, guild, "rules add",
                         {"name": "watch", "query": "troops", "channel": alerts})
        assert not said.ephemeral, said.content
    for guild, name, path in ((A, "desk", "/a-desk"), (B, "desk", "/b-desk"),
                              (A, "wire", "/both"), (B, "newswire", "/both")):
        said = await ask(emu, guild, "sources add", {"name": name, "url": feeds.url(path)})
        assert not said.ephemeral and f"Watching **{name}**" in said.content, said.content
    feeds.set("/both", Route(body=rss(FEEDS["/both"])))
    await run.engine.run_once()
    wanted = {"a-dw", "a-bear", "b-bison", "w-zebra", "o-npr"}

    async def stored() -> set[str]:
        found = await run.engine.search("troops", limit=50)
        return {h.article.url.split("//")[1].split(".")[0] for h in found.hits
                if h.article.url}

    for _ in range(200):
        if await stored() >= wanted:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"articles not stored in time: {await stored()}")


async def test_sources_commands_see_and_change_only_the_servers_own(
        running: Running, feeds: FeedServer) -> None:
    emu, engine = running.emu, running.engine
    await follow(running, feeds)
    assert engine.source_names(A) == ["desk", "operator", "wire"]
    assert engine.source_names(B) == ["desk", "newswire", "operator"]

    # one URL, two servers, one fetch per poll
    before = {p: fetches(feeds, p) for p in ("/both", "/a-desk", "/b-desk", "/operator")}
    assert before["/both"] >= 1
    await engine.run_once()
    assert {p: fetches(feeds, p) - n for p, n in before.items()} == {
        "/both": 1, "/a-desk": 1, "/b-desk": 1, "/operator": 1}

    # /sources list: the shared one marked (and in the footer), the server's own, not A's
    listed = {g: (await ask(emu, g, "sources list", user="member")).embeds[0] for g in (A, B)}
    for g, own, other in ((A, "wire", "newswire"), (B, "newswire", "**wire**")):
        body = listed[g]["description"]
        assert "**operator** · shared" in body and f"**{own}**" in body
        assert "**desk**" in body and "**desk** · shared" not in body
        assert other not in body
        assert listed[g]["footer"]["text"].endswith(": operator")
    # what each lists is shown escaped, as every name and URL is
    a_url, b_url = escape(feeds.url("/a-desk")), escape(feeds.url("/b-desk"))
    assert a_url in listed[A]["description"] and b_url not in listed[A]["description"]
    assert b_url in listed[B]["description"] and a_url not in listed[B]["description"]

    # autocomplete of source names: each server's own names
    for command, extra in (("sources remove", {}), ("sources resume", {}),
                           ("search", {"query": "troops"})):
        option = "source" if command == "search" else "name"
        assert await offered(emu, A, command, option, "wire", **extra) == ["wire"]
        assert await offered(emu, B, command, option, "wire", **extra) == ["newswire"]
        assert await offered(emu, B, command, option, "", **extra) == [
            "desk", "newswire", "operator"]

    # B cannot remove or resume A's source: the same answer as for a name nobody used
    for command in ("sources remove", "sources resume"):
        refused = await ask(emu, B, command, {"name": "wire"})
        nobody = await ask(emu, B, command, {"name": "nothing"})
        assert refused.ephemeral and refused.content.startswith("No source named")
        assert refused.content.replace("wire", "nothing") == nobody.content, command
    assert "wire" in engine.source_names(A)
    # nor the shared one: that is the operator's
    shared = await ask(emu, B, "sources remove", {"name": "operator"})
    assert shared.ephemeral and "operator" in shared.content
    assert "operator" in engine.source_names(B)

    # a URL the config file already watches is refused, naming the source
    again = await ask(emu, B, "sources add", {"name": "op2", "url": feeds.url("/operator")})
    assert again.ephemeral and "operator" in again.content
    assert "op2" not in engine.source_names(B)

    # the limit is per server: A reaches it, B (two sources so far) can still import
    spare = await ask(emu, A, "sources add", {"name": "spare", "url": feeds.url("/a-spare")})
    assert not spare.ephemeral
    over = await ask(emu, A, "sources add", {"name": "more", "url": feeds.url("/a-more")})
    assert over.ephemeral and str(LIMIT) in over.content, over.content
    assert engine.source_names(A) == ["desk", "operator", "spare", "wire"]

    # /sources import: into B only, up to B's limit
    opml = write_opml([("Import one", feeds.url("/b-import")),
                       ("Import two", feeds.url("/b-import-2"))])
    report = await ask(emu, B, "sources import", {"file": ("b.opml", opml)})
    (embed,) = report.embeds
    assert embed["footer"]["text"] == "2 feed(s): 1 added, 0 skipped, 1 refused"
    assert str(LIMIT) in embed["description"]
    assert engine.source_names(B) == ["desk", "import-one", "newswire", "operator"]
    assert engine.source_names(A) == ["desk", "operator", "spare", "wire"]

    # /sources export: each server's file has the shared feed and its own, never the other's
    urls = {}
    for g in (A, B):
        msg = await ask(emu, g, "sources export", user="member")
        (attachment,) = msg.attachments
        urls[g] = {(e.title, e.url) for e in parse_opml(msg.files[attachment["id"]]).entries}
    assert urls[A] == {("operator", feeds.url("/operator")), ("desk", feeds.url("/a-desk")),
                       ("wire", feeds.url("/both")), ("spare", feeds.url("/a-spare"))}
    assert urls[B] == {("operator", feeds.url("/operator")), ("desk", feeds.url("/b-desk")),
                       ("newswire", feeds.url("/both")),
                       ("import-one", feeds.url("/b-import"))}

    # B removes its "desk" and its follow of the shared URL: A's of the same name and URL stay
    for name in ("desk", "newswire"):
        removed = await ask(emu, B, "sources remove", {"name": name})
        assert not removed.ephemeral and "removed" in removed.content
    assert engine.source_names(A) == ["desk", "operator", "spare", "wire"]
    assert engine.source_names(B) == ["import-one", "operator"]
    polled = fetches(feeds, "/both")
    await engine.run_once()
    assert fetches(feeds, "/both") == polled + 1

    # routes: each server's rule made its #alerts a route of that server; B neither sees nor
    # reaches A's (by label or by key), in autocomplete, /digest now or /alerts status
    a_route, b_route = f"{A}:alerts", f"{B}:alerts"
    assert {a_route, b_route} <= set(engine.route_names())
    got = await emu.send_autocomplete("digest now", {"route": ""}, focused="route", guild_id=B)
    assert sorted(c["value"] for c in got) == ["#alerts", "alerts"]
    unknown = await ask(emu, B, "digest now", {"route": a_route})
    said = escape(f"'{a_route}'")  # the error is shown as written, escaped
    assert unknown.ephemeral and f"no route named {said}" in unknown.content
    assert str(A) not in unknown.content.replace(said, "")
    b_digest = await ask(emu, B, "digest now", {"route": "#alerts"})
    assert b_digest.ephemeral
    assert "Nothing is waiting for a digest on route **\\#alerts**" in b_digest.content
    status = await ask(emu, B, "alerts status")
    assert str(A) not in text_of(status)
    assert emu.validate_all() == []


async def test_lookups_show_a_server_only_the_articles_of_sources_it_sees(
        running: Running, feeds: FeedServer) -> None:
    emu, engine = running.emu, running.engine
    await follow(running, feeds)

    # /search: A's own article is not found from B; the shared URL's is, under B's name
    for g, sees, hidden in ((A, "grizzly", "bison"), (B, "bison", "grizzly")):
        assert sees in text_of(await ask(emu, g, "search", {"query": sees})).lower()
        assert "No results." in text_of(await ask(emu, g, "search", {"query": hidden}))
    zebra = {g: (await ask(emu, g, "search", {"query": "zebra"})).embeds[0]["description"]
             for g in (A, B)}
    assert " · wire · " in zebra[A] and " · newswire · " in zebra[B]
    # a source: naming A's source is refused from B as unknown, the same as any unknown name
    refused = await ask(emu, B, "search", {"query": "troops", "source": "wire"})
    nobody = await ask(emu, B, "search", {"query": "troops", "source": "nothing"})
    assert refused.ephemeral and "no source named 'wire'" in refused.content
    assert refused.content.replace("'wire'", "'?'") == nobody.content.replace("'nothing'", "'?'")
    own = await ask(emu, B, "search", {"query": "troops", "source": "desk"})
    assert "bison" in text_of(own).lower() and "grizzly" not in text_of(own).lower()

    # /recent: every article here matched the config file's rule; B's list has none of A's
    recent = {g: text_of(await ask(emu, g, "recent", {"limit": 25})).lower() for g in (A, B)}
    assert "grizzly" in recent[A] and "bison" not in recent[A]
    assert "bison" in recent[B] and "grizzly" not in recent[B]
    assert "zebra" in recent[A] and "zebra" in recent[B]

    # /article: an article only A's source brought is no article at all in B
    ids = {h.article.url.split("//")[1].split(".")[0]: h.article.id
           for h in (await engine.search("troops", limit=50)).hits if h.article.url}
    bear = ids["a-bear"]
    seen = await ask(emu, A, "article", {"id": bear})
    assert "grizzly" in text_of(seen).lower() and seen.embeds[0]["author"]["name"] == "desk"
    unseen = await ask(emu, B, "article", {"id": bear})
    nothing = await ask(emu, B, "article", {"id": "ffffffffffff"})
    assert unseen.ephemeral and unseen.content.startswith(f"No article with id `{bear}`: ")
    assert nothing.content.startswith("No article with id `ffffffffffff`: ")
    # the same words either way: B cannot tell A's article from none
    assert unseen.content.split(": ", 1)[1] == nothing.content.split(": ", 1)[1]
    zebra_b = await ask(emu, B, "article", {"id": ids["w-zebra"]})
    assert zebra_b.embeds[0]["author"]["name"] == "newswire"

    # /story: the story the operator's and A's reports make; B sees only the operator's article
    stories = await engine.stories_of([ids["a-dw"], ids["o-npr"], bear])
    assert stories[ids["a-dw"]].id == stories[ids["o-npr"]].id
    joint = stories[ids["o-npr"]].id
    story_a = text_of(await ask(emu, A, "story", {"id": joint}))
    assert REPORTS["dw"][0] in story_a and REPORTS["npr"][0] in story_a
    story_b = text_of(await ask(emu, B, "story", {"id": joint}))
    assert REPORTS["npr"][0] in story_b
    assert REPORTS["dw"][0] not in story_b and "a-dw.example" not in story_b
    # /article of the operator's report: A's story field counts both outlets, B's knows of no
    # other outlet (a story of one article it sees has no story field)
    npr_a = (await ask(emu, A, "article", {"id": ids["o-npr"]})).embeds[0]
    assert "2 outlets: operator, desk" in json.dumps(npr_a)
    npr_b = (await ask(emu, B, "article", {"id": ids["o-npr"]})).embeds[0]
    assert [f["name"] for f in npr_b["fields"]] == ["Rule troops"]
    assert SERVER_FEED_PREFIX not in json.dumps(npr_b)
    alone = stories[bear].id
    assert "grizzly" in text_of(await ask(emu, A, "story", {"id": alone})).lower()
    gone = await ask(emu, B, "story", {"id": alone})
    assert gone.ephemeral and gone.content == f"No story with id `{alone}`."

    # /stats: B's counts leave out what only A's source brought, and list B's sources only
    stats = {g: (await ask(emu, g, "stats", user="member")).embeds[0] for g in (A, B)}
    counts = {g: int(next(f["value"] for f in e["fields"] if f["name"] == "Articles"))
              for g, e in stats.items()}
    assert counts[A] - counts[B] == A_ONLY - B_ONLY
    names = {g: {f["name"] for f in e["fields"]} for g, e in stats.items()}
    assert {"wire (feed)", "desk (feed)", "operator (feed)"} <= names[A]
    assert "newswire (feed)" not in names[A]
    assert {"newswire (feed)", "desk (feed)", "operator (feed)"} <= names[B]
    assert "wire (feed)" not in names[B]

    # /trend: A's article counts in A's trend only
    for g, total in ((A, "1 match "), (B, "0 matches")):
        msg = await ask(emu, g, "trend", {"query_or_rule": "grizzly", "period": "1d"})
        assert total in msg.content, (g, msg.content)
    zebra_trend = await ask(emu, B, "trend", {"query_or_rule": "zebra", "period": "1d"})
    assert "1 match " in zebra_trend.content

    # /rules test: a query counts (and samples) only the articles the server sees
    tried = {g: (await ask(emu, g, "rules test", {"query": "grizzly OR bison"})).embeds[0]
             for g in (A, B)}
    samples = {g: " ".join(f["name"] + f["value"] for f in e["fields"]).lower()
               for g, e in tried.items()}
    assert tried[A]["title"] == tried[B]["title"] == "1 match(es) in the last 7 days"
    assert "grizzly" in samples[A] and "bison" not in samples[A]
    assert "bison" in samples[B] and "grizzly" not in samples[B]
    assert emu.validate_all() == []


async def test_a_servers_paused_route_is_seen_and_resumed_only_there(
        running: Running, feeds: FeedServer) -> None:
    emu, engine = running.emu, running.engine
    await follow(running, feeds)
    a_route = f"{A}:alerts"
    # Discord refuses A's channel once: A's route (its rule's picked #alerts) pauses
    emu.inject(f"POST /channels/{emu.channel('alerts').id}/messages", Fault.forbidden(50013))
    feeds.set("/a-desk", Route(body=rss([*FEEDS["/a-desk"], item(
        "a-moose", "Moose troops block the Lviv road", "A moose held up troops.", 5)])))
    await engine.run_once()
    await running.wait_for(lambda: a_route in engine.paused_routes())

    status = {g: text_of(await ask(emu, g, "alerts status")) for g in (A, B)}
    assert "route #alerts paused · 1 held" in status[A]
    assert "paused" not in status[B] and str(A) not in status[B]
    stats = {g: text_of(await ask(emu, g, "stats", user="member")) for g in (A, B)}
    assert "route #alerts paused" in stats[A] and "paused" not in stats[B]
    assert await offered(emu, A, "alerts resume", "route", "") == ["#alerts"]
    assert await offered(emu, B, "alerts resume", "route", "") == []
    # B cannot resume it, by label or by key: for B nothing is paused
    for typed in ("#alerts", a_route):
        refused = await ask(emu, B, "alerts resume", {"route": typed})
        assert refused.ephemeral and "is not paused (paused or backing off: none)" in (
            refused.content)
    assert a_route in engine.paused_routes()
    done = await ask(emu, A, "alerts resume", {"route": "#alerts"})
    assert not done.ephemeral and done.content.startswith("Route **\\#alerts** resumed; 1 held")
    await running.wait_for(lambda: any("moose" in json.dumps(m.embeds).lower()
                                       for m in emu.messages(emu.channel("alerts").id)))
    assert engine.paused_routes() == {}
    assert emu.validate_all() == []
