"""One bad item never stops a source: feeds served by a real local server, with items that
cannot be read (or must be repaired) among good ones."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tests.fakes.feed_server import FeedServer, Route
from tests.sources._support import LOOPBACK
from watchers.models import Article
from watchers.sources._feedparse import parse_feed
from watchers.sources._http import Fetcher
from watchers.sources.feed import FeedSource

# html.parser raises on a marked section it does not know: an item whose HTML holds one cannot
# be reduced to text.
UNREADABLE_HTML = "<p>Before</p><![foo[ x ]]><p>after</p>"


def storable(article: Article) -> None:
    """What SQLite needs: every text field encodes as UTF-8 and holds no NUL."""
    for value in (article.id, article.source, article.guid, article.url, article.title,
                  article.text, article.content_hash):
        if value is not None:
            value.encode("utf-8")
            assert "\x00" not in value
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE a (title TEXT, text TEXT, guid TEXT)")
    db.execute("INSERT INTO a VALUES (?, ?, ?)", (article.title, article.text, article.guid))
    db.close()


def json_feed(items: list[dict[str, Any]]) -> bytes:
    doc = {"version": "https://jsonfeed.org/version/1.1", "title": "T", "items": items}
    # ensure_ascii keeps lone surrogates as \ud800 escapes, as a producer's JSON would.
    return json.dumps(doc).encode()


def rss_feed(items: list[str]) -> bytes:
    body = "".join(f"<item>{item}</item>" for item in items)
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>http://127.0.0.1/</link><description>d</description>{body}</channel></rss>"
    ).encode()


def feed_source(server: FeedServer, fetcher: Fetcher) -> FeedSource:
    return FeedSource("wire", server.url("/feed"), fetcher=fetcher, allow_private=LOOPBACK)


async def test_json_feed_with_one_unreadable_item_returns_the_others(
    server: FeedServer, fetcher: Fetcher
) -> None:
    server.set("/feed", Route(body=json_feed([
        {"id": "good-1", "title": "Troops move", "content_text": "Troops moved north."},
        {"id": "bad-2", "title": "Broken", "content_html": UNREADABLE_HTML},
        {"id": "good-3", "title": "Talks resume", "content_text": "Talks resumed."},
    ]), content_type="application/feed+json"))
    poll = await feed_source(server, fetcher).poll({})
    assert [a.guid for a in poll.articles] == ["good-1", "good-3"]
    assert len(poll.skipped) == 1
    assert "item 2" in poll.skipped[0] and "bad-2" in poll.skipped[0]


async def test_rss_with_one_unreadable_item_returns_the_others(
    server: FeedServer, fetcher: Fetcher
) -> None:
    bad = UNREADABLE_HTML.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    server.set("/feed", Route(body=rss_feed([
        "<title>First</title><guid>g1</guid><description>One.</description>",
        f"<title>Second</title><guid>g2</guid><description>{bad}</description>",
        "<title>Third</title><guid>g3</guid><description>Three.</description>",
    ])))
    poll = await feed_source(server, fetcher).poll({})
    assert [a.title for a in poll.articles] == ["First", "Third"]
    assert len(poll.skipped) == 1 and "item 2" in poll.skipped[0] and "g2" in poll.skipped[0]


async def test_json_feed_surrogates_and_an_impossible_date_are_repaired_not_fatal(
    server: FeedServer, fetcher: Fetcher
) -> None:
    server.set("/feed", Route(body=json_feed([
        {"id": "a\ud800", "title": "Lone \udc00 surrogate", "content_text": "Body \ud800 x\u0000y"},
        {"id": "b", "title": "Year one", "content_text": "Old.",
         "date_published": "0001-01-01T00:00:00+01:00"},
        {"id": "c", "title": "Fine", "content_text": "Fine.",
         "date_published": "2022-01-24T12:00:00+02:00"},
    ]), content_type="application/feed+json"))
    poll = await feed_source(server, fetcher).poll({})
    assert poll.skipped == ()
    first, year_one, fine = poll.articles
    assert first.guid == "a\ufffd" and first.title == "Lone \ufffd surrogate"
    assert first.text == "Body \ufffd x y"  # NUL: a word break in a text
    assert year_one.title == "Year one" and year_one.published is None  # missing, not a skip
    assert fine.published is not None and fine.published.hour == 10
    for article in poll.articles:
        storable(article)


async def test_rss_character_references_to_surrogates_and_nul_do_not_lose_the_feed(
    server: FeedServer, fetcher: Fetcher
) -> None:
    server.set("/feed", Route(body=rss_feed([
        '<title>Bad &#xD800; ref</title><guid isPermaLink="false">g&#55296;1</guid>'
        "<description>a&#0;b</description>",
        "<title>Huge &#x110000; &#99999999999999999999; refs</title><guid>g2</guid>",
        "<title>Good &#x1F600;</title><guid>g3</guid><description>Fine.</description>",
    ])))
    poll = await feed_source(server, fetcher).poll({})
    assert [a.title for a in poll.articles] == [
        "Bad \ufffd ref", "Huge \ufffd \ufffd refs", "Good \U0001f600"]
    assert poll.articles[0].guid == "g\ufffd1"
    for article in poll.articles:
        storable(article)


def test_json_feed_title_is_plain_text() -> None:
    feed = parse_feed(json_feed([
        {"id": "1", "title": "Why <title> tags matter", "content_text": "x"},
        {"id": "2", "title": "R&D &notice &amp; more", "content_text": "x"},
    ]), url="https://j.example/", content_type="application/feed+json")
    assert [e.title for e in feed.entries] == ["Why <title> tags matter", "R&D &notice & more"]


def test_json_feed_content_text_is_plain_and_content_html_is_html() -> None:
    feed = parse_feed(json_feed([
        {"id": "1", "content_text": "Use <b> for bold", "title": "t"},
        {"id": "2", "content_html": "<p>Use <b>bold</b></p>", "title": "t"},
        {"id": "3", "content_html": "<p> </p>", "content_text": "The text form", "title": "t"},
    ]), url="https://j.example/", content_type="application/feed+json")
    assert [e.text for e in feed.entries] == ["Use <b> for bold", "Use bold", "The text form"]


def test_skip_notes_cannot_forge_log_lines() -> None:
    feed = parse_feed(json_feed([
        {"id": "x\nWARNING forged line", "content_html": UNREADABLE_HTML},
    ]), url="https://j.example/", content_type="application/feed+json")
    assert feed.entries == [] and len(feed.skipped) == 1
    assert "\n" not in feed.skipped[0] and "forged" in feed.skipped[0]


def test_article_text_is_made_storable_wherever_it_is_built() -> None:
    article = Article(source="s\x00", guid="g\udc80", title="a\ud83d\ude00\ud800",
                      text="x\x00y", url="https://e.example/\ud800")
    assert article.title == "a\U0001f600\ufffd"  # a split pair is joined, a lone one replaced
    # NUL is removed, but in a title or text it is a word break ("Kyiv\x00talks" was one word)
    assert (article.source, article.guid, article.text) == ("s", "g\ufffd", "x y")
    storable(article)
    assert article.id == Article(source="s", guid="g\ufffd", title="other").id
