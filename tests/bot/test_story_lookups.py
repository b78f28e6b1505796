"""Stories in lookups, for real: /story lists a story's articles, /article names its story,
/search and /recent show one line per story with a select that expands it (and keeps working
with the paging buttons), /alerts status lists alerts waiting for more outlets. newswatch runs
in-process (the real discord.py) against the emulator; the feeds are served over HTTP on
127.0.0.1, so articles group into stories the way they do when watched; every request is
checked against Discord's OpenAPI spec. The renderers are also checked on their own against
Discord's limits."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import discord

from bot.embeds import LIMITS, article_embed, group_results, results_embed, story_embed
from tests.bot._stories import REPORTS, watching_feeds
from tests.bot.conftest import Running
from tests.fakes.discord_emulator import DiscordEmulator, EmuMessage
from tests.fakes.feed_server import FeedServer, Route
from tests.service.test_identity import rss
from watchers.engine import StoryDetail
from watchers.models import Article
from watchers.store.base import StoryRecord

NOW = datetime.now(UTC).replace(microsecond=0)
OUTLETS = ("dw", "npr", "bbc")

# Besides the one event the outlets report (REPORTS), events that say "troops", each its own
# line.
OTHERS = [
    ("French troops parade on the Champs-Elysees for Bastille Day",
     "Thousands of soldiers and troops marched in Paris as jets flew overhead."),
    ("German troops help clear flood damage in the Ahr valley",
     "Bundeswehr troops shovel mud from homes after record rainfall in Rhineland."),
    ("UN peacekeeping troops leave Mali after a decade",
     "The last Minusma troops departed Bamako airport on Sunday, ending the mission."),
    ("Australian troops join bushfire relief in Victoria",
     "Army reservist troops deliver water and fodder to farms cut off by the fires."),
    ("Canadian troops train Latvian recruits near Adazi",
     "Instructors and troops from Canada run winter drills at the Adazi base in Latvia."),
    ("Japanese troops rescue hikers stranded on Mount Fuji",
     "Self-Defense Force troops reached a dozen climbers caught by a snowstorm."),
]


def item(outlet: str, n: int, title: str, text: str, minutes: int) -> tuple[Any, ...]:
    return (f"{outlet}-{n}", f"https://{outlet}.example/{n}", title, text,
            NOW - timedelta(hours=3) + timedelta(minutes=minutes))


@asynccontextmanager
async def newswatch(emu: DiscordEmulator, tmp_path: Path, *, others: int = 1,
                    rules: list[dict[str, Any]] | None = None, outlets: tuple[str, ...] = OUTLETS
                    ) -> AsyncIterator[tuple[Running, FeedServer]]:
    """newswatch watching one feed per outlet (and "wire" with the other events), each feed
    empty at the first poll, then filled: the dw, npr and bbc reports (those in ``outlets``)
    and ``others`` other events, all newer than the story."""
    async with FeedServer() as server:
        for name in (*OUTLETS, "wire"):
            server.set(f"/{name}", Route(body=rss([])))
        async with watching_feeds(emu, tmp_path, server, (*OUTLETS, "wire"), backfill=10,
                                  rules=rules or [{"name": "troops", "query": "troops"}]) as run:
            for minutes, outlet in enumerate(outlets):
                server.set(f"/{outlet}", Route(body=rss([item(outlet, 1, *REPORTS[outlet],
                                                              minutes * 20)])))
                await run.engine.run_once()  # one outlet after the other, as they report
            server.set("/wire", Route(body=rss([item("wire", i, t, x, 60 + i)
                                                for i, (t, x) in enumerate(OTHERS[:others])])))
            await run.engine.run_once()
            yield run, server


async def the_story(run: Running) -> StoryRecord:
    recent = await run.engine.recent(limit=50)
    stories = await run.engine.stories_of([a.id for a, _ in recent])
    (story,) = {s.id: s for s in stories.values() if s.articles > 1}.values()
    return story


async def article_of(run: Running, outlet: str) -> Article:
    return next(a for a, _ in await run.engine.recent(limit=50) if a.source == outlet)


def fields(msg: EmuMessage) -> dict[str, str]:
    return {f["name"]: f["value"] for f in msg.embeds[0].get("fields", [])}


def select_of(msg: EmuMessage) -> dict[str, Any] | None:
    for row in msg.components:
        for c in row.get("components", []):
            if c.get("type") == 3:
                return dict(c)
    return None


async def test_story_and_article_show_the_story(emu: DiscordEmulator, tmp_path: Path) -> None:
    async with newswatch(emu, tmp_path) as (run, _):
        story = await the_story(run)
        assert story.outlets == OUTLETS and story.articles == 3

        shown = await (await emu.send_interaction("story", {"id": story.id})).final_message()
        assert not shown.ephemeral
        (embed,) = shown.embeds
        assert embed["title"] == REPORTS["dw"][0].replace("-", "\\-")  # the first report's
        assert fields(shown)["3 outlets"] == "dw, npr, bbc"
        assert {"First seen", "Last seen"} <= set(fields(shown))
        lines = embed["description"].splitlines()
        assert [line.split(" · ")[1] for line in lines] == list(OUTLETS)  # oldest first
        assert "(https://npr.example/1)" in lines[1]
        assert story.id in embed["footer"]["text"]
        # a copied id with backticks and capitals is the same id
        again = await (await emu.send_interaction("story", {"id": f" `{story.id.upper()}` "})
                       ).final_message()
        assert again.embeds[0]["title"] == embed["title"]

        dw = await article_of(run, "dw")
        detail = await (await emu.send_interaction("article", {"id": dw.id})).final_message()
        info = fields(detail)
        assert "Rule troops" in info
        assert "3 outlets: dw, npr, bbc" in info["Story"] and story.id in info["Story"]
        assert story.id in detail.embeds[0]["footer"]["text"]
        lone = await article_of(run, "wire")
        alone = await (await emu.send_interaction("article", {"id": lone.id})).final_message()
        assert "Story" not in fields(alone) and "story" not in alone.embeds[0]["footer"]["text"]
    assert emu.validate_all() == []


async def test_lookups_count_one_outlets_two_feeds_as_one_outlet(emu: DiscordEmulator,
                                                                  tmp_path: Path) -> None:
    """/story, /article and /search count a story's outlets as its alert's wait and message
    do: the BBC's world and Europe feeds (one outlet, as the config says) and DW are two
    outlets, though three sources, each still listed by name. They said "3 outlets"."""
    feeds = ("dw", "bbc-world", "bbc-europe")
    async with FeedServer() as server:
        for name in feeds:
            server.set(f"/{name}", Route(body=rss([])))
        sources = [{"name": f, "type": "feed", "url": server.url(f"/{f}"), "every": "1h",
                    "backfill": 10, **({"outlet": "BBC"} if f.startswith("bbc") else {})}
                   for f in feeds]
        async with watching_feeds(emu, tmp_path, server, feeds, backfill=10,
                                  sources=sources) as run:
            for minutes, (name, wording) in enumerate(zip(feeds, OUTLETS, strict=True)):
                server.set(f"/{name}", Route(body=rss([item(name, 1, *REPORTS[wording],
                                                            minutes * 20)])))
                await run.engine.run_once()
            story = await the_story(run)
            assert story.outlets == feeds and story.counted == 2

            shown = await (await emu.send_interaction("story", {"id": story.id})
                           ).final_message()
            # (names are markdown-escaped: "bbc\\-world")
            assert fields(shown)["2 outlets"].replace("\\", "") == "dw, bbc-world, bbc-europe"
            dw = await article_of(run, "dw")
            detail = await (await emu.send_interaction("article", {"id": dw.id})
                            ).final_message()
            assert ("2 outlets: dw, bbc-world, bbc-europe"
                    in fields(detail)["Story"].replace("\\", ""))
            msg = await (await emu.send_interaction("search", {"query": "troops"})
                         ).final_message(timeout=10)
            (line,) = msg.embeds[0]["description"].splitlines()[:1]
            # bbc-europe's report stands for the story: one other outlet, DW, and three
            # articles (two outlets: the BBC's other feed's article is not hidden)
            assert "bbc-europe.example" in line, line
            assert "+1 outlet · 3 articles ·" in line.replace("\\", ""), line
            select = select_of(msg)
            assert select is not None
            assert select["options"][0]["description"].startswith("2 outlet(s) · 3 articles")
    assert emu.validate_all() == []


async def test_story_errors_name_the_id(emu: DiscordEmulator, tmp_path: Path) -> None:
    async with newswatch(emu, tmp_path, outlets=("dw",), others=0):
        for bad in ("xyz", "s123", "s0123456789abcdeg", "0123456789abcdef0", "s" + "0" * 18,
                    "s" + "0" * 21):
            msg = await (await emu.send_interaction("story", {"id": bad})).final_message()
            assert msg.ephemeral and repr(bad) in msg.content and "not a story id" in msg.content
        for unknown in ("s" + "0" * 16, "s" + "0" * 20):  # an older story's id, and today's
            msg = await (await emu.send_interaction("story", {"id": unknown})).final_message()
            assert msg.ephemeral and f"No story with id `{unknown}`" in msg.content
    assert emu.validate_all() == []


async def test_search_and_recent_show_one_line_per_story_and_expand_it(
        emu: DiscordEmulator, tmp_path: Path) -> None:
    async with newswatch(emu, tmp_path, others=1) as (run, _):
        story = await the_story(run)
        for name, options in [("search", {"query": "troops"}), ("recent", {})]:
            msg = await (await emu.send_interaction(name, options)).final_message(timeout=10)
            (embed,) = msg.embeds
            lines = [line for line in embed["description"].splitlines()
                     if not line.startswith(">")]
            assert len(lines) == 2, lines  # the lone event, then the story (newest first)
            assert OTHERS[0][0].split()[0] in lines[0] and "story" not in lines[0]
            assert "bbc.example" in lines[1]  # the story's newest report stands for it
            assert "+2 outlets" in lines[1] and f"story `{story.id}`" in lines[1]
            assert "4 result(s) in 2 lines" in embed["footer"]["text"]
            select = select_of(msg)
            assert select is not None
            assert [o["value"] for o in select["options"]] == [story.id]
            assert not any(c.get("type") == 2 for r in msg.components
                           for c in r["components"])  # one page: no paging buttons
            expanded = await (await emu.select_menu(msg, select["custom_id"], [story.id])
                              ).final_message()
            assert expanded.ephemeral and expanded.embeds[0]["footer"]["text"].startswith(
                f"story {story.id}")
            assert emu.get_message(msg.id).embeds == msg.embeds  # the results stay as they were
    assert emu.validate_all() == []


async def test_expanding_keeps_working_with_the_paging_buttons(emu: DiscordEmulator,
                                                               tmp_path: Path) -> None:
    async with newswatch(emu, tmp_path, others=6) as (run, _):
        story = await the_story(run)
        msg = await (await emu.send_interaction("search", {"query": "troops"})
                     ).final_message(timeout=10)
        assert "page 1/2 · 9 result(s) in 7 lines" in msg.embeds[0]["footer"]["text"]
        assert select_of(msg) is None  # page 1 holds only lone events, newest first
        previous_id, next_id = msg.custom_ids[:2]
        await (await emu.click_button(msg, next_id)).callback()
        page2 = emu.get_message(msg.id)
        assert "page 2/2" in page2.embeds[0]["footer"]["text"]
        select = select_of(page2)
        assert select is not None and [o["value"] for o in select["options"]] == [story.id]
        assert "3 outlet(s)" in select["options"][0]["description"]
        expanded = await (await emu.select_menu(page2, select["custom_id"], [story.id])
                          ).final_message()
        assert expanded.ephemeral and "dw, npr, bbc" in json.dumps(expanded.embeds)
        await (await emu.click_button(page2, previous_id)).callback()
        back = emu.get_message(msg.id)
        assert "page 1/2" in back.embeds[0]["footer"]["text"] and select_of(back) is None
    assert emu.validate_all() == []


async def test_alerts_status_lists_alerts_waiting_for_outlets(emu: DiscordEmulator,
                                                              tmp_path: Path) -> None:
    rules = [{"name": "troops", "query": "troops", "min_sources": 2}]
    async with newswatch(emu, tmp_path, rules=rules, outlets=("dw",), others=0) as (run, srv):
        status = await (await emu.send_interaction("alerts status")).final_message()
        assert status.ephemeral
        waiting = fields(status)["Waiting for more outlets (1)"]
        assert "`alerts`" in waiting and "`troops`" in waiting and "1/2 outlets" in waiting
        assert "Russian troops mass near Ukraine border" in waiting.replace("\\", "")
        assert "since <t:" in waiting
        srv.set("/npr", Route(body=rss([item("npr", 1, *REPORTS["npr"], 20)])))
        await run.engine.run_once()  # a second outlet: the alert is released
        await run.wait_for(lambda: len(emu.messages(run.alerts_channel)) == 1)
        after = await (await emu.send_interaction("alerts status")).final_message()
        assert not any(k.startswith("Waiting") for k in fields(after))
    assert emu.validate_all() == []


# ------------------------------------------------------------------------------ renderers


def check_limits(embed: discord.Embed) -> None:
    assert len(embed) <= LIMITS["total"]
    assert len(embed.title or "") <= LIMITS["title"]
    assert len(embed.description or "") <= LIMITS["description"]
    assert len(embed.fields) <= LIMITS["fields"]
    for f in embed.fields:
        assert len(f.name or "") <= LIMITS["field_name"]
        assert len(f.value or "") <= LIMITS["field_value"]


def record(n: int, outlets: int, *, headline: str = "Troops mass") -> StoryRecord:
    return StoryRecord(id="s" + "ab" * 8, headline=headline, first_seen=NOW, last_seen=NOW,
                       articles=n, outlets=tuple(f"outlet-{i}" * 5 for i in range(outlets)))


def test_a_long_story_stays_inside_discord_limits_and_says_how_many_more() -> None:
    arts = [Article(title=f"Report {i} " + "x" * 200, source=f"outlet-{i % 60}",
                    url=f"https://o{i}.example/" + "p" * 300, published=NOW) for i in range(50)]
    embed = story_embed(StoryDetail(record(400, 60, headline="h" * 500), arts))
    check_limits(embed)
    assert embed.description is not None
    shown = sum(1 for line in embed.description.splitlines() if "Report" in line)
    assert 0 < shown < 50
    assert embed.description.endswith(f"… and {400 - shown} more")
    assert "and " in (embed.fields[0].value or "")  # outlets past the field's room are counted
    art = arts[0].model_copy(update={"text": "troops " * 2000})
    check_limits(article_embed(art, [], story=record(400, 60)))


def test_results_group_in_the_order_of_each_storys_first_hit() -> None:
    a, b, c, d = (Article(title=t, source=s) for t, s in
                  [("A", "dw"), ("B", "npr"), ("C", "bbc"), ("D", "dw")])
    story = record(3, 3)
    single = StoryRecord(id="s" + "cd" * 8, headline="B", first_seen=NOW, last_seen=NOW,
                         articles=1, outlets=("npr",))
    lines = group_results([(a, None), (b, None), (c, None), (d, None)],
                          {a.id: story, c.id: story, b.id: single})
    assert [(line.article.title, line.matched) for line in lines] == [("A", 2), ("B", 1),
                                                                      ("D", 1)]
    assert [line.expandable for line in lines] == [True, False, False]
    embed = results_embed("r", lines, page=0, pages=1, total=4, lines=len(lines))
    assert embed.footer.text == "page 1/1 · 4 result(s) in 3 lines"
    assert embed.description is not None
    first, second, third = embed.description.splitlines()
    assert "+3 outlets" in first and "2 here" in first and story.id in first
    assert "story" not in second and "story" not in third
