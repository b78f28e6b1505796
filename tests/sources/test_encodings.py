"""Encodings as feeds and pages get them wrong: a few legacy bytes in a UTF-8 document, charset
labels that name no usable encoding, and UTF-16 labels on plainly 8-bit bytes."""

from __future__ import annotations

import pytest

from tests.fakes.feed_server import FeedServer, Route
from tests.sources._support import LOOPBACK
from watchers.sources._feedparse import parse_feed, usable_charset
from watchers.sources._http import Fetcher
from watchers.sources.feed import FeedSource
from watchers.sources.page import parse_page

URL = "https://site.example/feed.xml"
TITLES = ["Війська біля Києва troops", "two troops café"]


def _mixed_rss(prolog: str = '<?xml version="1.0" encoding="utf-8"?>') -> bytes:
    """UTF-8, but for one "é" a legacy tool wrote in Windows-1252 (the byte 0xE9)."""
    return (f'{prolog}<rss version="2.0"><channel><title>T</title>'
            f"<item><title>{TITLES[0]}</title><link>http://e.example/1</link></item>"
            "<item><title>two troops caf\x00</title><link>http://e.example/2</link></item>"
            "</channel></rss>").encode().replace(b"\x00", b"\xe9")


@pytest.mark.parametrize(("prolog", "content_type"), [
    ('<?xml version="1.0" encoding="utf-8"?>', None),
    ('<?xml version="1.0" encoding="UTF-8"?>', "application/rss+xml"),
    ('<?xml version="1.0"?>', None),
    ("", None),
    ('<?xml version="1.0"?>', "application/rss+xml; charset=utf-8"),
    ('<?xml version="1.0" encoding="utf-8"?>', "text/xml"),
    ('<?xml version="1.0" encoding="windows-1252"?>', "application/xml; charset=UTF-8"),
])
def test_one_legacy_byte_in_a_utf8_feed_costs_only_that_byte(
        prolog: str, content_type: str | None) -> None:
    """feedparser read the whole document as Windows-1252 ("Ð’Ñ–Ð¹ÑÑŒÐºÐ°"), so rules on
    Cyrillic words silently missed; the stray byte is read as a JSON Feed's is."""
    parsed = parse_feed(_mixed_rss(prolog), url=URL, content_type=content_type)
    assert [e.title for e in parsed.entries] == TITLES


def test_a_legacy_document_is_still_read_in_its_encoding() -> None:
    body = ('<?xml version="1.0" encoding="windows-1251"?><rss version="2.0"><channel>'
            "<title>T</title><item><title>Війська troops</title></item></channel></rss>")
    parsed = parse_feed(body.encode("cp1251"), url=URL, content_type=None)
    assert [e.title for e in parsed.entries] == ["Війська troops"]
    # labelled UTF-8 but wholly Latin-1: read as before, byte by byte
    latin = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T' \
            "</title><item><title>Café olé</title></item></channel></rss>"
    parsed = parse_feed(latin.encode("latin-1"), url=URL, content_type=None)
    assert [e.title for e in parsed.entries] == ["Café olé"]


async def test_a_mixed_feed_through_the_source(server: FeedServer, fetcher: Fetcher) -> None:
    server.set("/mixed.xml", Route(body=_mixed_rss()))
    source = FeedSource("mixed", server.url("/mixed.xml"), fetcher=fetcher, allow_private=LOOPBACK)
    polled = await source.poll({})
    assert [a.title for a in polled.articles] == TITLES


_FEED = (b'<?xml version="1.0"%s?><rss version="2.0"><channel><title>T</title>'
         b"<item><title>one troops</title><link>http://e.example/1</link></item>"
         b"</channel></rss>")


@pytest.mark.parametrize(("declaration", "content_type"), [
    (b"", "application/rss+xml; charset=undefined"),
    (b"", "application/rss+xml; charset=idna"),
    (b"", "text/xml; charset=base64"),
    (b"", "application/rss+xml; charset=utf-16"),
    (b"", "application/rss+xml; charset=utf-32"),
    (b' encoding="undefined"', None),
    (b' encoding="utf\x00-8"', None),
    (b' encoding="\xdcTF-8"', None),
    (b' encoding="\xdcTF-8"', "text/xml; charset=bogus"),
    (b' encoding="utf-16"', None),
    (b' encoding="unicode-escape"', None),
    (b' encoding="utf-7"', None),
])
def test_an_unusable_encoding_name_is_ignored(declaration: bytes,
                                              content_type: str | None) -> None:
    """Each of these was a traceback (UnicodeError, ValueError: embedded null character,
    UnicodeDecodeError) or no feed at all (UTF-16 read from 8-bit bytes); the name is ignored
    and the document read as UTF-8."""
    parsed = parse_feed(_FEED % declaration, url=URL, content_type=content_type)
    assert [e.title for e in parsed.entries] == ["one troops"]


def test_a_utf16_feed_without_a_mark_is_still_read_as_utf16() -> None:
    body = ('<?xml version="1.0" encoding="utf-16"?><rss version="2.0"><channel><title>T'
            "</title><item><title>Війська troops</title></item></channel></rss>")
    for codec in ("utf-16-le", "utf-16-be"):
        parsed = parse_feed(body.encode(codec), url=URL, content_type=None)
        assert [e.title for e in parsed.entries] == ["Війська troops"]


_PAGE = (b"<html><head>%s</head><body><a href='/story/1'>Troops cross the border today</a>"
         b"<a href='/story/2'>Another headline about caf\xc3\xa9s</a></body></html>")


@pytest.mark.parametrize(("meta", "content_type"), [
    (b"", "text/html; charset=undefined"),
    (b"", "text/html; charset=idna"),
    (b"", "text/html; charset=utf-16"),
    (b"", "text/html; charset=UTF-32LE"),
    (b'<meta charset="undefined">', None),
    (b'<meta charset="utf-16">', None),
    (b'<meta charset="utf-16">', "text/html; charset=idna"),
    (b'<meta http-equiv="Content-Type" content="text/html; charset=idna">', None),
])
def test_a_page_with_an_unusable_charset_is_read_as_utf8(meta: bytes,
                                                         content_type: str | None) -> None:
    parsed = parse_page(_PAGE % meta, url="http://news.example.com/", content_type=content_type)
    assert [e.title for e in parsed.entries] == ["Troops cross the border today",
                                                 "Another headline about cafés"]


def test_a_page_s_usable_charset_still_wins() -> None:
    body = ("<html><head><meta charset='windows-1251'></head><body>"
            "<a href='/story/1'>Війська біля кордону сьогодні</a></body></html>").encode("cp1251")
    parsed = parse_page(body, url="http://news.example.com/", content_type="text/html; charset=x")
    assert [e.title for e in parsed.entries] == ["Війська біля кордону сьогодні"]


def test_a_page_labelled_utf8_reads_a_stray_legacy_byte_as_windows_1252() -> None:
    body = "<a href='/a'>Troops in Kyiv café today</a>".encode("latin-1")
    parsed = parse_page(body, url="http://news.example.com/", content_type="text/html")
    assert [e.title for e in parsed.entries] == ["Troops in Kyiv café today"]


@pytest.mark.parametrize(("label", "body", "expected"), [
    ("utf-8", b"x", "utf-8"),
    ("UTF8", b"x", "utf-8"),
    # as browsers read the labels (the WHATWG Encoding Standard): the larger set they name
    ("gb2312", b"x", "gb18030"),
    ("latin1", b"x", "cp1252"),
    ("iso-8859-1", b"x", "cp1252"),
    ("us-ascii", b"x", "cp1252"),
    ("shift_jis", b"x", "cp932"),
    ("x-sjis", b"x", "cp932"),
    ("euc-kr", b"x", "cp949"),
    ("windows-874", b"x", "cp874"),
    ("utf-7", b"x", None),
    ("utf-16", b"<\x00?\x00", "utf-16"),
    ("utf-16", b"\xff\xfex", "utf-16"),
    ("utf-16", b"<?xml", None),
    ("utf-32", b"<?xml", None),
    ("undefined", b"x", None),
    ("idna", b"x", None),
    ("rot13", b"x", None),
    ("cp037", b"x", None),
    ("utf\x00-8", b"x", None),
    (b"\xdcTF-8", b"x", None),
    ("", b"x", None),
    (None, b"x", None),
])
def test_usable_charset(label: str | bytes | None, body: bytes, expected: str | None) -> None:
    assert usable_charset(label, body) == expected


@pytest.mark.parametrize(("label", "title", "codec"), [
    ("iso-8859-1", "\u201cQuoted\u201d headline \u2014 with dashes", "cp1252"),
    ("us-ascii", "Caf\u00e9 owner \u201cwins\u201d big prize", "cp1252"),
    ("gb2312", "\u6731\u9555\u57fa\u4f1a\u89c1\u5916\u5bbe", "gbk"),  # 朱镕基: 镕 is GBK's
    ("shift_jis", "\u2460\u756a\u76ee\u306e\u30cb\u30e5\u30fc\u30b9", "cp932"),  # ①
    ("euc-kr", "\ub620 \uc815\ubd80 \ubc1c\ud45c \ub274\uc2a4", "cp949"),  # 똠
])
def test_a_label_is_read_as_browsers_read_it_in_pages_and_feeds(
        label: str, title: str, codec: str) -> None:
    """A page or feed labelled with a character set another extends uses the larger one's
    characters: "iso-8859-1" pages write curly quotes (C1 controls when read as Latin-1),
    "shift_jis" news writes ①. Read by Python's codec, a page's title came out broken, and a
    feed's one such character sent feedparser to Windows-1252 for the whole document."""
    page = (f'<meta charset="{label}"><main><a href="/s1">{title} today</a></main>'
            ).encode(codec)
    (entry,) = parse_page(page, url="http://news.example/").entries
    assert entry.title == f"{title} today"
    feed = (f'<?xml version="1.0" encoding="{label}"?><rss version="2.0"><channel><title>t'
            f"</title><item><title>{title}</title><link>http://news.example/1</link></item>"
            f"<item><title>Second {title}</title><link>http://news.example/2</link></item>"
            "</channel></rss>").encode(codec)
    parsed = parse_feed(feed, url="http://news.example/feed", content_type="application/xml")
    assert [e.title for e in parsed.entries] == [title, f"Second {title}"]


@pytest.mark.parametrize(("declared", "content_type"), [
    ("us-ascii", None), (None, "application/rss+xml; charset=us-ascii"),
    ("utf-8", "text/xml; charset=shift_jis"), ("utf-8", "text/xml; charset=gb2312"),
    ("utf-8", "text/xml; charset=euc-kr"), ("shift_jis", None), ("euc-jp", None),
    ("utf-8", "text/xml; charset=big5"), ("iso-8859-1", None),
])
def test_a_utf8_feed_under_a_wrong_legacy_label_stays_utf8(
        declared: str | None, content_type: str | None) -> None:
    """A server's or a tool's default label on a UTF-8 feed: read by the label's codec whatever
    the bytes, every title was mojibake ("ZÃ¼rich"). Bytes that are UTF-8 are UTF-8."""
    title = "Zürich: Großbrand — 東京 ニュース"
    decl = f' encoding="{declared}"' if declared else ""
    feed = (f'<?xml version="1.0"{decl}?><rss version="2.0"><channel><title>t</title>'
            f"<item><title>{title}</title><link>https://e.org/1</link></item>"
            "</channel></rss>").encode()
    parsed = parse_feed(feed, url="https://e.org/feed", content_type=content_type)
    assert [e.title for e in parsed.entries] == [title]
