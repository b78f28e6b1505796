"""Web pages as sources (``type = "page"``): a site's page without a feed, its headline links
taken for articles — through the real engine, a local HTTP server and a SQLite file. The first
poll is a baseline, as a feed's; a link that appears later alerts; menus, other sites, scripts
and short links are not stories; a hostile page is read in linear time."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.feed_server import FeedServer, Route
from tests.fakes.sinks import RecordingSink
from watchers.config import parse_config
from watchers.engine import open_engine
from watchers.errors import ConfigError
from watchers.sources._feedparse import FeedFormatError
from watchers.sources.page import MAX_LINKS, parse_page
from watchers.urls import normalise_link

FRONT = """<!doctype html><html><head><meta charset="utf-8"><title>World</title></head><body>
<nav><a href="/world">World news and analysis from everywhere</a></nav>
<header><a href="/subscribe">Subscribe to our newsletter today</a></header>
<main>
<article><h2><a href="/2022/01/troops-mass">Russian troops mass near the Ukrainian border</a></h2>
<p>By <a href="/staff/x">A. Writer</a></p></article>
{more}
<a href="https://ads.example.com/shoes">The best running shoes of the year, reviewed</a>
<a href="javascript:void(0)">Read the whole story and more</a>
<a href="/more">More</a>
<script>document.write('<a href="/s">Not a story written by a script</a>')</script>
</main>
<footer><a href="/privacy">About us and our privacy policy</a></footer>
</body></html>"""
LATER = ('<article><h2><a href="/2022/01/kyiv-talks">Kyiv talks resume as troops gather</a></h2>'
         "</article>")


def page(more: str = "") -> Route:
    return Route(body=FRONT.format(more=more).encode(), content_type="text/html; charset=utf-8")


def config(tmp_path: Path, url: str, **extra: Any) -> dict[str, Any]:
    return {"storage": {"path": "nw.db"}, "fetch": {"allow_private": ["127.0.0.1/32"]},
            "sources": [{"name": "world", "type": "page", "url": url, "every": "1h", **extra}],
            "rules": [{"name": "troops", "query": "troops OR kyiv"}]}


async def test_a_page_s_new_headline_links_alert_after_its_baseline(tmp_path: Path) -> None:
    sink = RecordingSink()
    async with FeedServer() as server:
        server.set("/world", page())
        cfg = parse_config(config(tmp_path, server.url("/world")), base_dir=tmp_path)
        async with open_engine(cfg, start=False, default_sink=sink) as engine:
            await engine.run_once()  # the baseline: what is there is old news
            assert sink.alerts == []
            stored = await engine.recent(limit=10)
            assert [a.title for a, _ in stored] == [
                "Russian troops mass near the Ukrainian border"]
            server.set("/world", page(LATER))
            await engine.run_once()
            (alert,) = sink.alerts
            assert alert.article.title == "Kyiv talks resume as troops gather"
            assert alert.article.url == server.url("/2022/01/kyiv-talks")
            assert alert.article.source == "world"
            await engine.run_once()  # the same page again: nothing new
            assert len(sink.alerts) == 1
            (view,) = [v for v in await engine.sources() if v.name == "world"]
            assert view.kind == "page" and view.where == server.url("/world")


async def test_backfill_lets_a_page_s_first_links_alert(tmp_path: Path) -> None:
    sink = RecordingSink()
    async with FeedServer() as server:
        server.set("/world", page(LATER))
        cfg = parse_config(config(tmp_path, server.url("/world"), backfill=5),
                           base_dir=tmp_path)
        async with open_engine(cfg, start=False, default_sink=sink) as engine:
            await engine.run_once()
    assert sorted(a.article.title for a in sink.alerts) == [
        "Kyiv talks resume as troops gather", "Russian troops mass near the Ukrainian border"]


def test_only_headline_links_of_the_page_s_own_site_are_articles() -> None:
    got = parse_page(FRONT.format(more=LATER + """
        <a href="https://www.news.example/2022/01/kyiv-talks#comments">Kyiv talks resume as
        troops <b>gather</b> &amp; wait</a>
        <a href="https://sport.news.example/final">Cup final goes to extra time</a>
        <a href="https://news.example.evil/x">A lookalike site's headline here</a>""").encode(),
        url="https://www.news.example/world")
    assert [(e.url, e.title) for e in got.entries] == [
        ("https://www.news.example/2022/01/troops-mass",
         "Russian troops mass near the Ukrainian border"),
        # one article per link, the fragment dropped; its longest text is its title
        ("https://www.news.example/2022/01/kyiv-talks",
         "Kyiv talks resume as troops gather & wait"),
        ("https://sport.news.example/final", "Cup final goes to extra time")]
    # its guid is the link as links compare (tracking parameters out); dated when found
    assert all(e.guid == normalise_link(e.url or "") and e.text == "" and e.published
               for e in got.entries)


def test_a_link_whose_text_shows_nothing_is_no_headline() -> None:
    """Zero-width spaces, soft hyphens, a braille blank or ideographic spaces: three "words"
    of fifteen characters that show nothing made an article with an invisible title."""
    blank = ["\u200b" * 6, "\u00ad" * 6, "\u2800" * 6, "\u3164" * 6]
    got = parse_page(FRONT.format(more="".join(
        f'<a href="/2022/01/blank-{i}">{w} {w} {w}</a>' for i, w in enumerate(blank))
        + '<a href="/2022/01/shown">\u200bTroops\u200b gather at\u00ad the border</a>'
    ).encode(), url="https://www.news.example/world")
    assert [e.url for e in got.entries] == ["https://www.news.example/2022/01/troops-mass",
                                           "https://www.news.example/2022/01/shown"]


def test_a_link_is_read_as_a_browser_reads_it() -> None:
    """Backslashes before the query are slashes to a browser: "https:\\evil.example\\w"
    was taken for a path on the page's own site, and the article's link was not the one
    the page shows. Tabs and line breaks inside a link are dropped."""
    got = parse_page(FRONT.format(more=(
        '<a href="https:\\\\evil.example\\w\\8">Russian troops seen near the river</a>'
        '<a href="\\2022\\01\\grain?q=a\\b">Grain deal talks resume in Istanbul</a>'
        '<a href="/2022/01/\n\tport">Port of Odesa reopens to ships</a>')).encode(),
        url="https://www.news.example/world")
    assert [e.url for e in got.entries] == [
        "https://www.news.example/2022/01/troops-mass",
        "https://www.news.example/2022/01/grain?q=a\\b",
        "https://www.news.example/2022/01/port"]


def test_the_page_s_links_to_itself_are_no_articles() -> None:
    """"Skip to the comments below" (``#comments``) was the page itself taken for an article,
    with the link text for a headline — as were its own address written out and with a
    tracking parameter."""
    got = parse_page(FRONT.format(more="""
        <a href="#comments">Skip to the comments on this page below</a>
        <a href="https://www.news.example/world?utm_source=nav">World news from everywhere</a>
        <a href="//news.example/world#top">Back to the top of the world page</a>
        <a href="/world/europe">Europe: the latest news from the region</a>""").encode(),
        url="https://news.example/world")
    assert [e.url for e in got.entries] == ["https://news.example/2022/01/troops-mass",
                                            "https://news.example/world/europe"]


def test_real_page_markup_is_read_as_a_browser_reads_it() -> None:
    def links(body: str, url: str = "https://www.news.example/") -> list[tuple[str, str]]:
        return [(e.url or "", e.title) for e in parse_page(body.encode(), url=url).entries]

    story = "/2022/01/troops-mass"
    headline = "Russian troops mass near the Ukrainian border"
    # minified script with "<" and "<!--" before the headlines: they hid every one after it
    assert links(f'<script>for(i=0;i<e.length;i++){{x="<!--"}}</script>'
                 f'<a href="{story}">{headline}</a>') == [
        (f"https://www.news.example{story}", headline)]
    # an article's own header holds its headline (a card)
    assert links(f'<header><a href="/about">About the newsroom and its staff</a></header>'
                 f'<article><header><h2><a href="{story}">{headline}</a></h2></header>'
                 "</article>") == [(f"https://www.news.example{story}", headline)]
    # XHTML with an XML declaration is a page
    assert links(f'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body>'
                 f'<a href="{story}">{headline}</a></body></html>')
    # headlines without spaces between words
    assert links('<a href="/beijing">北京发生5.1级地震</a>') == [
        ("https://www.news.example/beijing", "北京发生5.1级地震")]
    # only the page's real <base> counts, not one in a comment or a script
    assert links(f'<!-- <base href="https://elsewhere.example/"> --><a href="{story}">'
                 f"{headline}</a>") == [(f"https://www.news.example{story}", headline)]
    # the href attribute itself, not data-href or text inside another attribute
    assert links(f'<a data-href="/track?x=1" title="see href=/wrong" href="{story}">'
                 f"{headline}</a>") == [(f"https://www.news.example{story}", headline)]
    # an <a> left open ends at the next one; a link in CDATA is no link
    assert [t for _, t in links('<a href="/one">First story of the morning here<a href="/two">'
                                'Second story of the morning here</a><![CDATA[<a href="/c">'
                                "A story that is not there</a>]]>")] == [
        "First story of the morning here", "Second story of the morning here"]
    # an internationalised host, fetched as punycode, links written in Unicode
    assert links(f'<a href="https://новости.example{story}">{headline}</a>',
                 url="https://xn--b1amnebsh.example/") == [
        (f"https://новости.example{story}", headline)]
    # the top of the page is the newest: the first link is dated latest
    entries = parse_page(f'<a href="/a">{headline}</a><a href="/b">Another story of the '
                         'same morning</a>'.encode(), url="https://news.example/").entries
    assert entries[0].published is not None and entries[1].published is not None
    assert entries[0].published > entries[1].published


def test_a_byte_order_mark_is_read_and_a_base_that_is_no_web_address_is_not() -> None:
    headline = "Russian troops mass near the Ukrainian border"
    page_text = f'<html><body><a href="/story">{headline}</a></body></html>'
    for body in (page_text.encode("utf-16"), b"\xef\xbb\xbf" + page_text.encode()):
        assert [e.title for e in parse_page(body, url="https://news.example/").entries] == [
            headline]
    # a javascript: base made every link on the page none, and the page a failed poll
    hostile = f'<base href="javascript:alert(1)"><a href="/story">{headline}</a>'
    assert [e.url for e in parse_page(hostile.encode(), url="https://news.example/").entries
            ] == ["https://news.example/story"]


@pytest.mark.parametrize(("body", "says"), [
    (b"", "is not a page: the response is empty"),
    (b'<?xml version="1.0"?><rss version="2.0"><channel/></rss>', 'watch it as type = "feed"'),
    (b'{"version": "https://jsonfeed.org/version/1.1", "items": []}', 'type = "feed"'),
    (b"<div>" * 300_000, "not a page we will read"),
])
def test_what_is_no_page_is_named(body: bytes, says: str) -> None:
    with pytest.raises(FeedFormatError, match=says):
        parse_page(body, url="https://news.example/")


def test_a_hostile_page_is_read_in_linear_time_and_its_links_are_capped() -> None:
    start = time.process_time()
    for body in (b'<a href="/x">' * 240_000, b"<a href=/x>one two" * 200_000,
                 b"<nav>" * 240_000 + b'<a href="/y">Troops mass near the border</a>',
                 # no ">", an unclosed quote, comment or CDATA: each ended the page, but a
                 # regular expression tried each "<" to the page's end again (30 s for 184 KB)
                 b'<a href="/x" ' * 100_000, b'<a title="' + b"<b x " * 100_000,
                 b"<!--" + b"<a " * 100_000, b"<![CDATA[" + b"<i " * 100_000,
                 b"<script>" + b"if (a<b) {" * 100_000):
        with pytest.raises(FeedFormatError, match="no headline links"):
            parse_page(body, url="https://news.example/")
    many = "".join(f'<a href="/s{i}">Story number {i} of the day</a>' for i in range(2000))
    assert len(parse_page(many.encode(), url="https://news.example/").entries) == MAX_LINKS
    # a generous bound that catches a quadratic parse (which takes minutes here), not a timing
    assert time.process_time() - start < 60


def test_a_page_source_takes_an_http_url_and_is_configured_like_a_feed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sources\[0\]\.url: 'file:///etc/passwd' is not an"):
        parse_config(config(tmp_path, "file:///etc/passwd"), base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"expected 'folder', 'feed' or 'page'"):
        parse_config({**config(tmp_path, "https://news.example/"), "sources": [
            {"name": "w", "type": "webpage", "url": "https://news.example/"}]},
            base_dir=tmp_path)


async def test_a_first_look_that_finds_no_headline_is_no_baseline(tmp_path: Path) -> None:
    """A script's shell, a consent wall: taken for the page's first look, it recorded nothing,
    and the next poll alerted every headline of the page as new."""
    sink = RecordingSink()
    async with FeedServer() as server:
        server.set("/world", Route(body=b"<html><body><p>Please enable JavaScript</p></body>",
                                   content_type="text/html"))
        cfg = parse_config(config(tmp_path, server.url("/world"), backfill=1),
                           base_dir=tmp_path)
        async with open_engine(cfg, start=False, default_sink=sink) as engine:
            (report,) = await engine.run_once()
            assert report.error is not None and "no headline links" in report.error
            server.set("/world", page(LATER))
            await engine.run_once()  # the baseline now: backfill lets the top one alert
    assert [a.article.title for a in sink.alerts] == [
        "Russian troops mass near the Ukrainian border"]


async def test_a_page_is_not_added_at_run_time_and_says_where_it_belongs(tmp_path: Path
                                                                        ) -> None:
    (tmp_path / "seeds").mkdir()
    cfg = parse_config({"storage": {"path": "nw.db"},
                        "sources": [{"name": "s", "type": "folder", "path": "seeds"}],
                        "rules": [{"name": "t", "query": "troops"}]}, base_dir=tmp_path)
    async with open_engine(cfg, start=False) as engine:
        with pytest.raises(ConfigError, match="a folder or a web page belongs in the config"):
            await engine.add_source({"name": "p", "type": "page",
                                     "url": "https://news.example/"})
        assert "p" not in engine.source_names()


@pytest.mark.parametrize(("href", "link"), [
    # a raw "&" before a parameter whose name starts like an entity written without ";"
    ("/story?id=7&section=world&region=eu&param=1&current=2",
     "/story?id=7&section=world&region=eu&param=1&current=2"),
    ("/s?a=1&copy=2&not=3&times=4&lt=5", "/s?a=1&copy=2&not=3&times=4&lt=5"),
    ("/s?a=1&amp;b=2&#38;c=3", "/s?a=1&b=2&c=3"),  # references that are ones: decoded
    ("/s?q=&notit;", "/s?q=&notit;"),
])
def test_a_links_raw_ampersands_are_read_as_a_browser_reads_them(href: str, link: str) -> None:
    """html.unescape reads text's rules: "?id=7&section=world&region=eu" became
    "?id=7§ion=world®ion=eu", a link the site never published, and the alert linked there.
    In an attribute a named reference without its ";" is left as written when a letter, a
    digit or "=" follows it."""

    body = (f'<main><a href="{href}">A headline long enough to be a story link</a>'
            "</main>").encode()
    (entry,) = parse_page(body, url="http://news.example/").entries
    assert entry.url == "http://news.example" + link
