"""Stray tags: one element where feedparser's handler for it does not expect it (an end tag no
start tag opened, ``<gml:pos>`` outside ``<georss:where>``) raised inside feedparser, and the
whole feed was lost, every poll, as "unexpected error: KeyError: 'where'"."""

from __future__ import annotations

import contextlib
import re

import feedparser  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchers.sources._feedparse import FeedFormatError, parse_feed

URL = "https://site.example/feed.xml"


def _namespaces() -> dict[str, str]:
    """feedparser's own prefix for each namespace it knows, with one URI for it."""
    uris: dict[str, str] = {}
    for uri, prefix in feedparser.mixin._FeedParserMixin.namespaces.items():
        if prefix and uri.startswith("http"):
            uris.setdefault(prefix.lower(), uri)
    return uris


NAMESPACES = _namespaces()
_DECLARATIONS = " ".join(f'xmlns:{p}="{uri}"' for p, uri in sorted(NAMESPACES.items()))


def _known_elements() -> list[str]:
    """Every element feedparser has a start or end handler for, as a document writes it."""
    names: set[str] = set()
    for parser in (feedparser.api.StrictFeedParser, feedparser.api.LooseFeedParser):
        for cls in parser.__mro__:
            for attr in vars(cls):
                match = re.match(r"_(?:start|end)_(.+)$", attr)
                if match:
                    names.add(match.group(1))
    tags = set()
    for name in names:
        prefix, _, rest = name.partition("_")
        tags.add(f"{prefix.lower()}:{rest}" if rest and prefix.lower() in NAMESPACES else name)
    return sorted(tags)


ELEMENTS = _known_elements()


def _rss(middle: str, *, first_text: str = "first text") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" {_DECLARATIONS}><channel>'
        "<title>T</title>"
        f"<item><title>one troops</title><link>https://e.example/1</link>"
        f"<description>{first_text}</description>{middle}</item>"
        "<item><title>two troops</title><link>https://e.example/2</link></item>"
        "</channel></rss>"
    ).encode()


def test_feedparser_knows_the_elements_this_test_is_about() -> None:
    assert {"width", "height", "gml:pos", "gml:poslist", "media:player",
            "creativecommons:license", "category"} <= set(ELEMENTS)


@pytest.mark.parametrize("where", ["item", "description", "atom"])
@pytest.mark.parametrize("tag", ELEMENTS)
def test_a_stray_end_tag_of_any_known_element_loses_no_item(tag: str, where: str) -> None:
    if where == "description":
        body = _rss("", first_text=f"text with a stray </{tag}> in it")
    else:
        body = _rss(f"</{tag}>")
    if where == "atom":
        body = body.replace(b"<item>", b"<entry>").replace(b"</item>", b"</entry>")
    parsed = parse_feed(body, url=URL, content_type=None)
    if where != "atom":  # in RSS an <entry> is no item; the point there is that nothing raises
        assert [e.title for e in parsed.entries] == ["one troops", "two troops"]


@pytest.mark.parametrize("middle", [
    "<gml:pos>50.45 30.52</gml:pos>",
    "<gml:posList>50.45 30.52 50.46 30.53</gml:posList>",
    "<gml:pos/>",
    '<gml:Point srsName="EPSG:4326"><gml:pos>1 2</gml:pos></gml:Point>',
    "</media:player>",
    "</creativeCommons:license>",
    "</width></height>",
])
def test_the_audited_stray_tags_keep_every_item(middle: str) -> None:
    parsed = parse_feed(_rss(middle), url=URL, content_type=None)
    assert [e.title for e in parsed.entries] == ["one troops", "two troops"]
    assert parsed.entries[0].text == "first text"


def test_an_item_tag_broken_into_a_category_keeps_the_items_around_it() -> None:
    body = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
            b"<item><title>one troops</title><link>https://e.example/1</link></item>"
            b"<item<category</item>s</category>"
            b"<item><title>two troops</title><link>https://e.example/2</link></item>"
            b"</channel></rss>")
    titles = [e.title for e in parse_feed(body, url=URL, content_type=None).entries]
    assert titles[0] == "one troops" and titles[-1] == "two troops"


_PIECE = st.one_of(
    st.sampled_from(ELEMENTS).map(lambda t: f"</{t}>"),
    st.sampled_from(ELEMENTS).map(lambda t: f"<{t}>"),
    st.sampled_from(ELEMENTS).map(lambda t: f"<{t}/>"),
    st.sampled_from(ELEMENTS).map(lambda t: f'<{t} href="x" term="y" srsDimension="z">5</{t}>'),
    st.sampled_from(["</item>", "<item>", "</entry>", "<entry>", "</channel>", "text", "&amp;"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(st.tuples(st.integers(0, 10_000), _PIECE), min_size=1, max_size=8),
       atom=st.booleans())
def test_random_stray_tags_never_raise_anything_but_a_feed_format_error(
        pieces: list[tuple[int, str]], atom: bool) -> None:
    body = _rss("<category>c</category>").decode()
    if atom:
        body = body.replace("<item>", "<entry>").replace("</item>", "</entry>")
    for position, piece in pieces:
        # only between tags, where an element may start or end
        gaps = [m.start() for m in re.finditer("<", body)][1:]
        at = gaps[position % len(gaps)]
        body = body[:at] + piece + body[at:]
    with contextlib.suppress(FeedFormatError):  # anything else fails the test
        parse_feed(body.encode(), url=URL, content_type=None)
