"""parse_feed details: text extraction, links, dates, encodings, DOCTYPE stripping, non-feeds."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from watchers.sources._feedparse import (
    MAX_ENTRIES,
    FeedFormatError,
    html_to_text,
    parse_feed,
    strip_doctype,
)

URL = "https://site.example/feeds/main.xml"


def rss(items: str, *, prolog: str = '<?xml version="1.0" encoding="utf-8"?>') -> bytes:
    return f'{prolog}<rss version="2.0"><channel><title>T</title>{items}</channel></rss>'.encode()


def test_html_to_text() -> None:
    html = (
        "<p>One &amp; two</p><script>var x = '<p>no</p>';</script><style>p{}</style>"
        "<ul><li>a</li><li>b&nbsp;c</li></ul>Tail<br>end &#8212; &unknown;"
    )
    assert html_to_text(html) == "One & two\n\na\n\nb c\n\nTail\nend — &unknown;"
    assert html_to_text("plain   text\n\n\n\nmore") == "plain text\n\nmore"
    assert html_to_text("") == ""


@pytest.mark.timeout(60)  # about 110 s of CPU before; about a second now
def test_few_unclosed_tags_in_a_long_text_are_read_as_text_at_once() -> None:
    """A "<" that opens no tag cost html.parser a rescan of all the text after it: 999 of them,
    each with 5,000 letters after it (under the 1,000 "<" that turned them to text at once),
    took 27 s of CPU in one feed, and a few such feeds held the threads the folders read in for
    minutes."""
    html = ("<a " + "x" * 20_000) * 999
    assert html_to_text(html) == html  # every "<a" is text
    assert html_to_text("<b>bold</b> <a href='x'>link</a> " + "y" * 100) == "bold link " + "y" * 100


@pytest.mark.timeout(60)  # minutes before; milliseconds now
@pytest.mark.parametrize("space", ["\u2003", "\u3000", "\u2028", "\u205f"])
def test_a_long_run_of_other_spaces_is_tidied_at_once(space: str) -> None:
    """Blank lines were folded by a pattern that backtracked over a run of the spaces the tidy
    leaves (em spaces, ideographic ones) from each of its positions: 80,000 em spaces, 389
    bytes gzipped, held the event loop for 18 s, and the time grew with the run's square."""
    run = space * 400_000
    feed = parse_feed(rss(f"<item><title>Troops{space * 3}move</title>"
                          f"<description>a{run}b\n\n\n\nc</description></item>"),
                      url=URL, content_type=None)
    (entry,) = feed.entries
    assert entry.title == "Troops move"
    assert entry.text == "a…"  # clipped at the text's limit, before the run's end
    assert html_to_text(f"one {run}\n \n{space}\n\ntwo") == "one\n\ntwo"


def test_strip_doctype_handles_subsets_comments_and_quotes() -> None:
    doc = (
        b'<?xml version="1.0"?>\n<!-- <rss> in a comment -->\n'
        b"<!DOCTYPE rss [ <!ENTITY a \"]>\"> <!-- ]> --> <!ENTITY b '>'> ]>\n<rss/>"
    )
    assert strip_doctype(doc) == b'<?xml version="1.0"?>\n<!-- <rss> in a comment -->\n\n<rss/>'
    assert strip_doctype(b"<rss><!DOCTYPE x></rss>") == b"<rss><!DOCTYPE x></rss>"
    assert strip_doctype(b"<!doctype rss SYSTEM 'x.dtd'><rss/>") == b"<rss/>"
    assert strip_doctype(b"<!DOCTYPE unterminated [") == b""


def test_relative_links_resolve_against_the_feed_url_and_xml_base() -> None:
    feed = parse_feed(
        rss(
            "<item><title>a</title><link>story/1</link></item>"
            "<item><title>b</title><link>/root</link></item>"
            "<item><title>c</title><link>javascript:alert(1)</link></item>"
            "<item><title>d</title><link>//cdn.example/x</link></item>"
        ),
        url=URL,
        content_type="application/rss+xml",
    )
    assert [e.url for e in feed.entries] == [
        "https://site.example/feeds/story/1",
        "https://site.example/root",
        None,
        "https://cdn.example/x",
    ]
    atom = (
        b'<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://other.example/blog/">'
        b'<entry xml:base="2022/"><title>x</title><link href="post"/><id>1</id></entry></feed>'
    )
    assert parse_feed(atom, url=URL, content_type=None).entries[0].url == (
        "https://other.example/blog/2022/post"
    )


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("Mon, 24 Jan 2022 09:30:00 +0100", datetime(2022, 1, 24, 8, 30, tzinfo=UTC)),
        ("Mon, 24 Jan 2022 09:30:00 EST", datetime(2022, 1, 24, 14, 30, tzinfo=UTC)),
        ("2022-01-24T09:30:00Z", datetime(2022, 1, 24, 9, 30, tzinfo=UTC)),
        ("24 Jan 2022", datetime(2022, 1, 24, tzinfo=UTC)),
        ("yesterday-ish", None),
        ("", None),
        # read as the year 1400 (the offset's digits): stored as 600 years old
        ("Mon, 01 Jan 0001 00:00:00 +1400", None),
        # across a year's end by the offset: the year written is one off, rightly
        ("Fri, 31 Dec 2021 23:00:00 -0500", datetime(2022, 1, 1, 4, tzinfo=UTC)),
        ("Sat, 01 Jan 2022 01:00:00 +1400", datetime(2021, 12, 31, 11, tzinfo=UTC)),
        ("Mon, 24 Jan 22 09:30:00 GMT", datetime(2022, 1, 24, 9, 30, tzinfo=UTC)),
        # a Unix time, in seconds or milliseconds: feedparser read it as a year and a day of
        # it (YYDDD), and 2024-05-01 was dated 2017-05-25
        ("1714557600", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        (" 1714557600123 ", datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)),
        ("999999999", datetime(2001, 9, 9, 1, 46, 39, tzinfo=UTC)),
        ("1714557600.5", datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        ("1714557600123456", datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_dates_are_aware_utc_or_none(date: str, expected: datetime | None) -> None:
    feed = parse_feed(
        rss(f"<item><title>x</title><pubDate>{date}</pubDate></item>"), url=URL, content_type=None
    )
    published = feed.entries[0].published
    assert published == expected
    assert published is None or published.tzinfo is UTC


def test_http_charset_and_declared_encodings_are_honoured() -> None:
    latin = rss(
        "<item><title>Caf\u00e9</title></item>",
        prolog='<?xml version="1.0" encoding="iso-8859-1"?>',
    )
    latin = latin.decode().encode("iso-8859-1")
    assert parse_feed(latin, url=URL, content_type=None).entries[0].title == "Café"
    plain = rss("<item><title>Caf\u00e9</title></item>", prolog="").decode().encode("cp1252")
    got = parse_feed(plain, url=URL, content_type="text/xml; charset=windows-1252")
    assert got.entries[0].title == "Café"
    utf16 = rss("<item><title>Caf\u00e9</title></item>", prolog="").decode().encode("utf-16")
    assert parse_feed(utf16, url=URL, content_type=None).entries[0].title == "Café"


def test_whitespace_before_the_xml_declaration_is_tolerated() -> None:
    feed = parse_feed(b"\n\n  " + rss("<item><title>x</title></item>"), url=URL, content_type=None)
    assert not feed.bozo and feed.entries[0].title == "x"


def test_entries_with_nothing_in_them_are_dropped() -> None:
    feed = parse_feed(
        rss("<item></item><item><title>kept</title></item>"), url=URL, content_type=None
    )
    assert [e.title for e in feed.entries] == ["kept"]


def test_very_long_fields_are_clipped() -> None:
    feed = parse_feed(
        rss(f"<item><title>{'t' * 5000}</title><description>{'d ' * 80000}</description></item>"),
        url=URL,
        content_type=None,
    )
    entry = feed.entries[0]
    assert len(entry.title) <= 1001 and entry.title.endswith("…")
    assert len(entry.text) <= 100_001


@pytest.mark.parametrize(
    ("body", "content_type", "kind"),
    [
        (b"", None, "empty"),
        (b"   \n\t", None, "empty"),
        (b"<!DOCTYPE html><html><body>x</body></html>", "text/html", "html"),
        (b"<!-- hi -->\n<html lang=en><p>x", None, "html"),
        (b"<HTML><HEAD><TITLE>Moved</TITLE></HEAD></HTML>", None, "html"),
        (b'{"data": [1, 2]}', "application/json", "json"),
        (b"[1, 2, 3]", None, "json"),
        (b'{"version": "https://jsonfeed.org/version/1", "items": [', None, "invalid-json"),
        (b"[" * 100_000, None, "invalid-json"),
        (b"<?xml version='1.0'?><note><to>Tove</to></note>", None, "not-a-feed"),
        (b"plain text, not markup", "text/plain", "not-a-feed"),
    ],
)
def test_non_feeds_raise_a_clear_kind(body: bytes, content_type: str | None, kind: str) -> None:
    with pytest.raises(FeedFormatError) as info:
        parse_feed(body, url=URL, content_type=content_type)
    assert info.value.kind == kind
    assert str(info.value).startswith(f"{URL} is not a feed")


def test_json_feed_fields() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1",
        "title": "J",
        "items": [
            {"id": 12, "url": "a/b", "summary": "<b>s</b>", "date_published": "2022-01-01"},
            {"id": "x", "title": "T", "content_text": "c", "date_modified": "2022-01-02T03:04:05Z"},
            "not an item",
            # stored as "(untitled)" with no text, and nothing said
            {"id": 5, "title": ["Troops"], "content_text": {"a": 1}},
            {"id": 6, "title": "Kept", "summary": 7},
            {"id": 7, "title": None, "content_text": "a text without a title"},
        ],
    }
    feed = parse_feed(json.dumps(doc).encode(), url=URL, content_type="application/feed+json")
    assert feed.format == "json1"
    first, second, third = feed.entries
    assert (third.guid, third.title, third.text) == ("7", "", "a text without a title")
    assert (first.guid, first.url, first.title, first.text) == (
        "12",
        "https://site.example/feeds/a/b",
        "",
        "s",
    )
    assert first.published == datetime(2022, 1, 1, tzinfo=UTC)
    assert second.published == datetime(2022, 1, 2, 3, 4, 5, tzinfo=UTC)
    # the item that is not an object is named, not dropped silently
    assert feed.skipped == ("item 3: is a string, not an object",
                            "item 4 (id '5'): 'title' is a list, not a string",
                            "item 5 (id '6'): 'summary' is a number, not a string")


def test_a_json_feed_item_with_an_id_too_long_for_a_number_loses_nothing() -> None:
    """One integer id of 5,000 digits (past int()'s limit) made the whole feed 'invalid JSON'."""
    long_id = "7" * 5000
    body = ('{"version": "https://jsonfeed.org/version/1.1", "items": ['
            f'{{"id": {long_id}, "title": "Long id", "url": "https://x.example/1"}}, '
            '{"id": 3, "title": "Short id", "url": "https://x.example/2"}]}').encode()
    feed = parse_feed(body, url=URL, content_type="application/feed+json")
    assert [((e.guid or "")[:5], e.title) for e in feed.entries] == [("77777", "Long id"),
                                                                    ("3", "Short id")]


@pytest.mark.parametrize(("title", "text"), [
    ("&lt;b&gt;Bold&lt;/b&gt; troops news", "Bold troops news"),  # feedparser's own retyping
    ("&lt;b&gt;Bold&lt;/b&gt; troops news &lt;script&gt;x()&lt;/script&gt;",
     "Bold troops news"),
    ("&lt;iframe src=x&gt;&lt;/iframe&gt;Troops news", "Troops news"),
    ("Troops &lt;style&gt;.a{}&lt;/style&gt;news", "Troops news"),
    ("<![CDATA[<b>Bold</b> troops <iframe></iframe>news]]>", "Bold troops news"),
    ("Troops news &lt;img src=x onerror=alert(1)&gt;", "Troops news"),
    # no tag: text as written
    ("Kyiv &lt;3 its defenders, and 2 &lt; 3", "Kyiv <3 its defenders, and 2 < 3"),
])
def test_an_rss_title_holding_a_tag_is_read_as_html(title: str, text: str) -> None:
    """feedparser calls RSS text HTML only when every tag is one it allows: a title with an
    escaped script, iframe or style kept its tags as text (a rule "script" fired on it, and
    title:"bold troops" missed it)."""
    body = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item>'
            f"<title>{title}</title><link>http://e.org/1</link></item></channel></rss>").encode()
    (entry,) = parse_feed(body, url=URL, content_type="application/rss+xml").entries
    assert entry.title == text


def test_an_atom_text_title_keeps_what_looks_like_a_tag() -> None:
    body = (b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>'
            b'<entry><title type="text">Why &lt;script&gt; tags break pages</title>'
            b'<link href="http://e.org/1"/><id>e1</id></entry></feed>')
    (entry,) = parse_feed(body, url=URL, content_type="application/atom+xml").entries
    assert entry.title == "Why <script> tags break pages"


@pytest.mark.parametrize("encode", [
    # one Windows-1252 byte in a feed labelled UTF-8 (a legacy tool wrote the title)
    lambda text: text.encode("cp1252"),
    # UTF-8 (its é kept) with a stray Windows-1252 quote pair, a mark of UTF-8 before it
    lambda text: b"\xef\xbb\xbf" + text.encode("utf-8").replace(b" owners", b" \x93owners\x94"),
    # UTF-16 with its mark, either byte order
    lambda text: text.encode("utf-16"),
    lambda text: b"\xfe\xff" + text.encode("utf-16-be"),
])
def test_a_json_feed_not_in_plain_utf8_loses_nothing(encode: Callable[[str], bytes]) -> None:
    """As its RSS twin reads: the whole feed was "invalid JSON", every item lost and a failure
    counted toward pausing the source."""
    text = ('{"version": "https://jsonfeed.org/version/1.1", "items": ['
            '{"id": "j1", "url": "https://x.example/1", "title": "Troops gather at the border"}, '
            '{"id": "j2", "url": "https://x.example/2", "title": "Caf\u00e9 owners protest"}]}')
    feed = parse_feed(encode(text), url=URL, content_type="application/feed+json; charset=utf-8")
    assert len(feed.entries) == 2 and feed.entries[0].title == "Troops gather at the border"
    assert feed.entries[1].title in ("Caf\u00e9 owners protest",
                                     "Caf\u00e9 \u201cowners\u201d protest")
    assert "\ufffd" not in feed.entries[1].title


@pytest.mark.parametrize(("encode", "content_type"), [
    # the charset of the HTTP header, as an RSS feed's is read
    (lambda t: t.encode("cp1251"), "application/json; charset=windows-1251"),
    (lambda t: t.encode("koi8-u"), "application/feed+json; charset=KOI8-U"),
    # UTF-16 without its mark, said by the header alone
    (lambda t: t.encode("utf-16-le"), "application/json; charset=utf-16le"),
    # UTF-8 labelled as another: JSON is UTF-8, and the label is the likelier mistake
    (lambda t: t.encode("utf-8"), "application/json; charset=windows-1251"),
    # UTF-16 with its mark, served as plain text (it was "no RSS, Atom or RDF root")
    (lambda t: t.encode("utf-16"), "text/plain"),
    (lambda t: t.encode("utf-32"), None),
])
def test_a_json_feed_in_another_charset_is_read_in_it(encode: Callable[[str], bytes],
                                                      content_type: str | None) -> None:
    """A JSON Feed was read as UTF-8, stray bytes as Windows-1252, whatever its header said:
    a Cyrillic feed in windows-1251 came out as "Êè¿â íîâèíè", without a word."""
    text = ('{"version": "https://jsonfeed.org/version/1.1", "items": ['
            '{"id": "k1", "url": "https://x.example/1", "title": "Київ новини",'
            ' "content_text": "Війська біля кордону"}]}')
    feed = parse_feed(encode(text), url=URL, content_type=content_type)
    (entry,) = feed.entries
    assert (entry.title, entry.text) == ("Київ новини", "Війська біля кордону")


@pytest.mark.parametrize("content_type", [
    "application/feed+json", "application/feed+json; charset=windows-1251",
    "application/json; charset=iso-8859-1"])
def test_a_json_feed_mostly_utf8_keeps_its_utf8_whatever_its_label(content_type: str) -> None:
    """One stray legacy byte made the whole feed read in the header's charset: a server's
    default "iso-8859-1" turned a Cyrillic title to "Ð\x9aÐ¸Ñ\x97Ð²". The stray byte alone is
    read as Windows-1252, as an XML feed's is."""
    text = ('{"version": "https://jsonfeed.org/version/1.1", "items": ['
            '{"id": "k1", "title": "Київ: мер — “важливо”"}, {"id": "k2", "title": "It’s here"}]}')
    body = text.encode("utf-8").replace("’".encode(), b"\x92")
    feed = parse_feed(body, url=URL, content_type=content_type)
    assert [e.title for e in feed.entries] == ["Київ: мер — “важливо”", "It’s here"]


def test_a_json_feed_labelled_latin1_is_read_as_browsers_read_it() -> None:
    body = ('{"version": "https://jsonfeed.org/version/1", "items": ['
            '{"id": "1", "title": "Caf\u00e9 \x93quoted\x94"}]}').encode("latin-1")
    feed = parse_feed(body, url=URL, content_type="application/json; charset=ISO-8859-1")
    assert feed.entries[0].title == "Café “quoted”"


@pytest.mark.parametrize(("date", "expected"), [
    ("1714557600", datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ("1714557600000", datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ("1714557600.5", datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC)),
    ("1714557600123456", datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)),
    # a number, not a string
    (1714557600, datetime(2024, 5, 1, 10, tzinfo=UTC)),
    (1714557600000, datetime(2024, 5, 1, 10, tzinfo=UTC)),
    (1714557600.5, datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC)),
    (True, None),
    # a number that is no Unix time is no date (feedparser read 4,000 nines as 9999-12-01)
    (int("9" * 4000), None), (20240501, None), (-5, None),
    ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
])
def test_a_json_feeds_date_written_as_a_unix_time_is_read_as_one(
        date: str | float, expected: datetime | None) -> None:
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": [
        {"id": "e1", "title": "Epoch item", "date_published": date}]}).encode()
    (entry,) = parse_feed(body, url=URL, content_type="application/feed+json").entries
    assert entry.published == expected


@pytest.mark.parametrize(("bom", "codec"), [(b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"),
                                            (b"\xff\xfe\x00\x00", "utf-32-le")])
@pytest.mark.parametrize("declared", ["utf-8", "iso-8859-1"])
def test_a_byte_order_mark_wins_over_the_declared_encoding(bom: bytes, codec: str,
                                                            declared: str) -> None:
    """UTF-16 with a BOM but declaring utf-8 lost the whole feed ('no RSS, Atom or RDF root')."""
    doc = (f'<?xml version="1.0" encoding="{declared}"?><rss version="2.0"><channel>'
           "<title>t</title><item><title>Київ: новини</title>"
           "<link>https://x.example/1</link></item></channel></rss>")
    feed = parse_feed(bom + doc.encode(codec), url=URL,
                      content_type="application/rss+xml; charset=utf-8")
    assert [e.title for e in feed.entries] == ["Київ: новини"]


# Documents a broken feed serves for good: each was a successful poll of no item, so the source
# never failed, never paused, and showed as healthy.
@pytest.mark.parametrize(("body", "said"), [
    (b'<?xml version="1.0"?><rss version="2.0"><channel><title>News</title><item><title>Cut',
     "is ill-formed XML in which no item could be read: "),
    (b'<rss version="2.0">\n</rss', "is ill-formed XML in which no item could be read: "),
    (json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "x",
                 "items": {"id": "1", "title": "a"}}).encode(),
     "is a JSON Feed with 'items' that is an object, not a list"),
    (json.dumps({"version": "https://jsonfeed.org/version/1", "items": None}).encode(),
     "is a JSON Feed with 'items' that is null, not a list"),
    (json.dumps({"version": "https://jsonfeed.org/version/1", "title": "x"}).encode(),
     "is a JSON Feed with no 'items'"),
])
def test_a_feed_broken_before_its_first_item_is_an_error(body: bytes, said: str) -> None:
    with pytest.raises(FeedFormatError, match=re.escape(f"https://example.org/f {said}")) as info:
        parse_feed(body, url="https://example.org/f", content_type=None)
    assert info.value.kind == "ill-formed"


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title></channel></rss>',
    # Ill-formed only by a namespace prefix it never declared: empty, not broken.
    b'<rss version="2.0"><channel><itunes:subtitle>Foo</itunes:subtitle></channel></rss>',
    json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": []}).encode(),
])
def test_an_empty_feed_is_still_read_as_empty(body: bytes) -> None:
    assert parse_feed(body, url="https://example.org/f", content_type=None).entries == []


def test_ill_formed_xml_with_items_is_still_read_loosely() -> None:
    body = (b'<rss version="2.0"><channel><item><title>One</title><link>https://e.org/1</link>'
            b'</item><item><title>Two &nbsp; broken</title></item></channel>')
    feed = parse_feed(body, url="https://example.org/f", content_type=None)
    assert feed.bozo and [e.title for e in feed.entries][:1] == ["One"]


@pytest.mark.parametrize("kind", ["json", "rss"])
def test_a_feed_is_read_to_its_first_entries_and_says_so(kind: str) -> None:
    """A JSON Feed of 140,000 items fitted in 5 MiB: each poll of it took a gigabyte and held
    every other source for half a minute. A feed is read to its first MAX_ENTRIES items (the
    newest, in a feed's order), the rest named as skipped."""
    n = MAX_ENTRIES + 1_500
    if kind == "json":
        body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "F",
                           "items": [{"id": str(i), "title": f"troops {i}"} for i in range(n)]})
    else:
        body = ('<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>'
                + "".join(f"<item><guid>{i}</guid><title>troops {i}</title></item>"
                          for i in range(n)) + "</channel></rss>")
    parsed = parse_feed(body.encode(), url="https://f.example/feed", content_type=None)
    assert [e.title for e in parsed.entries] == [f"troops {i}" for i in range(MAX_ENTRIES)]
    assert parsed.skipped == (f"items {MAX_ENTRIES + 1:,} to {n:,}: a feed is read to its "
                              f"first {MAX_ENTRIES:,} items",)


def test_an_installed_libxml2_driver_is_not_used_and_a_missing_one_not_looked_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every feed is read by expat, as the corpus tests measure it: feedparser preferred
    libxml2's SAX driver where installed (another parser for malformed feeds) and, where it was
    not, looked for it again on every document (a search of the import path)."""
    import sys
    import types

    asked: list[str] = []

    def create_parser() -> None:
        asked.append("drv_libxml2")
        raise AssertionError("libxml2's driver was used")

    driver = types.ModuleType("drv_libxml2")
    driver.create_parser = create_parser  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "drv_libxml2", driver)
    parsed = parse_feed(rss("<item><title>Troops</title><guid>g1</guid></item>"), url=URL,
                        content_type="application/rss+xml")
    assert [e.title for e in parsed.entries] == ["Troops"]
    assert asked == []

    monkeypatch.delitem(sys.modules, "drv_libxml2")
    looked: list[str] = []

    class Finder:
        def find_spec(self, name: str, path: object = None, target: object = None) -> None:
            if name == "drv_libxml2":
                looked.append(name)

    monkeypatch.setattr(sys, "meta_path", [Finder(), *sys.meta_path])
    parse_feed(rss("<item><title>Troops</title><guid>g2</guid></item>"), url=URL,
               content_type="application/rss+xml")
    assert looked == []


@pytest.mark.parametrize("date", ["Mon, 01 Jan 0001 00:00:00 GMT", "0001-01-01T00:00:00Z",
                                  "0001-12-31T23:59:59Z"])
def test_a_date_in_the_calendars_first_year_is_no_date(date: str) -> None:
    """.NET's "no date" (DateTime.MinValue) and Go's zero time: the article showed
    "0001-01-01 00:00 UTC" in its alert and sorted last in every lookup; it is undated, as
    the far-future placeholder 9999-12-31 is."""
    from watchers.models import Article

    (entry,) = parse_feed(rss(f"<item><title>Troops</title><guid>g</guid>"
                              f"<pubDate>{date}</pubDate></item>"), url=URL,
                          content_type=None).entries
    article = Article(source="wire", guid="g", title=entry.title, text="",
                      published=entry.published)
    assert article.published is None
    assert Article(source="wire", guid="h", title="t", text="",
                   published=datetime(2, 1, 1, tzinfo=UTC)).published is not None
