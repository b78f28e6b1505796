"""Web pages whose headline links hold more than the headline: a card's summary, its time
("5 minutes ago"), its comment count, a line break. Through the real engine, a local HTTP
server and a SQLite file where a poll matters; the parser alone where only the titles do."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.feed_server import FeedServer, Route
from tests.fakes.sinks import EditingSink
from tests.sources.test_page import config
from watchers.config import parse_config
from watchers.engine import open_engine
from watchers.sources.page import parse_page

# Cards as news sites write them: the whole card is the link, its headline a heading in it,
# with a summary and a time or a count that change while the story stays the same.
CARDS = """<!doctype html><html><body><main>
<a href="/2022/01/troops-mass"><h3>Russian troops mass near the Ukrainian border</h3>
<p>Satellite images show new camps</p><span>{minutes} minutes ago</span></a>
<a href="/2022/01/kyiv-talks">Kyiv talks resume as troops gather
<time datetime="2022-01-05T10:00Z">{hours} hours ago</time></a>
<a href="/2022/01/convoy"><h2>Convoy of troops seen near Belgorod</h2>
<span>{comments} comments</span></a>
</main></body></html>"""


def cards(minutes: int, hours: int, comments: int) -> Route:
    return Route(body=CARDS.format(minutes=minutes, hours=hours, comments=comments).encode(),
                 content_type="text/html; charset=utf-8")


async def test_a_card_s_changing_time_or_count_does_not_update_its_story_at_every_poll(
        tmp_path: Path) -> None:
    """The time and the count were part of the headline: every poll found it "changed", and
    edited its story's message ("updated: …"), for as long as the card was on the page."""
    sink = EditingSink()
    async with FeedServer() as server:
        server.set("/world", cards(1, 1, 0))
        cfg = parse_config(config(tmp_path, server.url("/world"), backfill=3),
                           base_dir=tmp_path)
        async with open_engine(cfg, start=False, default_sink=sink) as engine:
            await engine.run_once()
            for n in range(2, 5):
                server.set("/world", cards(n, n, n * 7))
                await engine.run_once()
    assert sink.updates == []
    # titled with the headline alone: its heading, or its text without its <time>
    assert sorted(a.article.title for a in sink.alerts) == [
        "Convoy of troops seen near Belgorod", "Kyiv talks resume as troops gather",
        "Russian troops mass near the Ukrainian border"]


def test_the_blocks_and_line_breaks_of_a_link_part_its_words() -> None:
    """A link's text was joined across its blocks and line breaks ("resumeas"), and a rule
    on either word missed the headline."""
    body = b"""<main>
    <a href="/a"><div>Kyiv talks resume</div><div>as troops gather at dawn</div></a>
    <a href="/b">Markets fall sharply<br>as shares drop in London</a>
    <a href="/c"><p>Ceasefire holds</p><p>in the north for a third day</p></a>
    <a href="/d">Bre<b>x</b>it talks <em>resume</em> in Brussels today</a>
    </main>"""
    assert [e.title for e in parse_page(body, url="https://news.example/").entries] == [
        "Kyiv talks resume as troops gather at dawn",
        "Markets fall sharply as shares drop in London",
        "Ceasefire holds in the north for a third day",
        # inline markup is no break: it sits inside words
        "Brexit talks resume in Brussels today"]


def test_a_link_whose_heading_is_too_short_for_a_headline_is_titled_with_its_whole_text(
        ) -> None:
    body = b"""<main>
    <a href="/a"><h3>Live</h3><p>Troops cross the border at dawn, officials say</p></a>
    </main>"""
    assert [e.title for e in parse_page(body, url="https://news.example/").entries] == [
        "Live Troops cross the border at dawn, officials say"]
