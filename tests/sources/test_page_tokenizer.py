"""Where a page's tags and comments end, as the HTML tokenizer ends them (WHATWG HTML 13.2.5):
a quote opens an attribute's value only right after "=", and "<!-->" is a whole comment. A
stray quote anywhere in a tag ran on to the next quote of the page and hid every link after
it — through the real engine, a local HTTP server and a SQLite file where a poll matters."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.feed_server import FeedServer, Route
from tests.fakes.sinks import RecordingSink
from tests.sources.test_page import config
from watchers.config import parse_config
from watchers.engine import open_engine
from watchers.sources._feedparse import FeedFormatError
from watchers.sources.page import parse_page

URL = "https://news.example/"


def story(i: int) -> str:
    return f'<a href="/story/{i}">Troops gather near the border, report {i}</a>'


def read(body: str) -> list[str]:
    """The paths of the page's articles, in the page's order."""
    return [(e.url or "").removeprefix("https://news.example")
            for e in parse_page(body.encode(), url=URL).entries]


# Markup real pages carry that a browser reads without a fuss: each is one tag (or comment)
# that ends at its own ">".
STRAY = [
    '<img src="/ad.png" alt="Samsung 27" monitor">',  # an odd number of quotes
    '<div class="promo"">',  # a doubled closing quote
    "<img alt=Don't src=/x.png>",  # a quote inside an unquoted value
    "<span data-x=a\"b title='c'>",  # the same, with a quoted value after it
    '<p "class="lead">',  # a quote where a name starts
    '<a href="/about" class="x" \'>',  # a lone quote before the ">"
    "<!-->",  # an empty comment, ended abruptly
    "<!--->",
    "<!-- a comment --!>",  # ended as a browser ends it, though written wrong
]


@pytest.mark.parametrize("snippet", STRAY)
def test_a_stray_quote_in_a_tag_hides_no_link_after_it(snippet: str) -> None:
    """Any quote in a tag opened a quoted run to the next matching quote of the page (and
    "<!-->" a comment to the next "-->"): the page's links after it were read as part of that
    tag, and only those before it were found. Now the tag ends at its own ">"."""
    assert read("<main>" + story(0) + snippet + "".join(map(story, range(1, 5))) + "</main>"
                ) == [f"/story/{i}" for i in range(5)]


@pytest.mark.parametrize("snippet", STRAY)
def test_a_stray_quote_before_every_link_does_not_fail_the_page(snippet: str) -> None:
    """In a header template, before every link, it hid the whole page: each poll failed as
    "has no headline links" (a page its scripts fill in), backed off and paused the source."""
    assert read(f"<html><body>{snippet}<main>{story(1)}{story(2)}</main>") == [
        "/story/1", "/story/2"]


def test_a_quoted_value_holding_a_closing_bracket_still_ends_at_the_tag_s_own() -> None:
    """A quote right after "=" (spaces between allowed) does open a value: its ">" is part of
    it, not the tag's end."""
    got = parse_page((
        b'<a title="a > b" href=/s1>Troops gather near the border at dawn</a>'
        b"<a title = 'c > d' href='/s2'>Grain deal talks resume in Istanbul</a>"
        b'<a title=x"y href="/s3">Port of Odesa reopens to ships today</a>'
    ), url=URL)
    assert [(e.url, e.title) for e in got.entries] == [
        ("https://news.example/s1", "Troops gather near the border at dawn"),
        ("https://news.example/s2", "Grain deal talks resume in Istanbul"),
        ("https://news.example/s3", "Port of Odesa reopens to ships today")]


def test_an_empty_comment_ends_where_a_browser_ends_it() -> None:
    """"<!-->" and "<!--->" are whole comments; read as the start of one that ran to the next
    "-->", they hid the links between. A comment that is one still hides its links."""
    assert read(f"{story(1)}<!-->{story(2)}<!--->{story(3)}<!---->{story(4)}"
                f"<!-- {story(5)} -->{story(6)}<!--{story(7)}--!>{story(8)}") == [
        "/story/1", "/story/2", "/story/3", "/story/4", "/story/6", "/story/8"]


def test_a_quoted_value_or_comment_that_never_ends_still_ends_the_page() -> None:
    """The guard against a page that never closes what it opens holds: a value opened after
    "=" or a comment opened and never ended runs to the page's end, read once (5 MB here; a
    parse that read it again from each "<" would not finish). An odd count of "<a x='": each
    pair is a value ("<a x=") and a name, and the last opens a value that never closes."""
    for hostile in ("<a x='" * 100_001 + "y" * 4_400_000, "<p title=\"" + "<i x " * 100_000,
                    "<!-- " + "<a " * 100_000):
        assert read(story(1) + hostile + story(2)) == ["/story/1"]
    with pytest.raises(FeedFormatError, match="no headline links"):
        parse_page(("<a x='" * 100_001 + story(2)).encode(), url=URL)


ADS = {"bad": '<div class="ad"><img src="/ad.png" alt="Samsung 27" monitor"></div>',
       "good": '<div class="ad"><img src="/ad.png" alt="Samsung 27 inch monitor"></div>'}


def front(ad: str) -> Route:
    stories = [story(i) + (ADS[ad] if i == 2 else "") for i in range(1, 9)]
    return Route(body=("<html><body><main>" + "\n".join(stories) + "</main></body></html>"
                       ).encode(), content_type="text/html; charset=utf-8")


async def test_an_ad_with_a_stray_quote_does_not_poison_the_baseline(tmp_path: Path) -> None:
    """An 8-story page with an ad's alt="Samsung 27" monitor" after story 2: the first poll
    recorded 2 stories for its baseline, and when the ad rotated the next one alerted the 6
    others, all on the page since that first poll. Now the baseline holds all 8."""
    sink = RecordingSink()
    async with FeedServer() as server:
        server.set("/world", front("bad"))
        cfg = parse_config(config(tmp_path, server.url("/world")), base_dir=tmp_path)
        async with open_engine(cfg, start=False, default_sink=sink) as engine:
            (report,) = await engine.run_once()
            assert report.error is None
            assert len(await engine.recent(limit=20)) == 8
            server.set("/world", front("good"))
            await engine.run_once()
    assert sink.alerts == []


def test_a_quote_inside_an_unquoted_value_or_a_name_is_part_of_it() -> None:
    """An unquoted value stopped at a quote: "href=/story/don't-miss" linked to "/story/don";
    and a quote before a name was skipped, so '"href=/x"' was read as a link a browser never
    sees (its attribute is named '"href')."""
    body = (b"<main><a href=/story/don't-miss>A headline long enough to be a story link</a>"
            b'<a "href=/x">Another headline long enough to be read as a story</a></main>'
            )
    entries = parse_page(body, url="http://news.example/").entries
    assert [e.url for e in entries] == ["http://news.example/story/don't-miss"]
