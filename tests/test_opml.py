"""OPML: parsing real-world and hostile files, writing, and importing into a real engine (a real
SQLite file, the engine not started, so nothing is fetched)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from watchers.config import parse_config
from watchers.engine import Engine, open_engine
from watchers.opml import (
    MAX_BYTES,
    MAX_ENTRIES,
    MAX_FOLDERS,
    OpmlError,
    export_opml,
    import_opml,
    parse_opml,
    source_name,
    write_opml,
)

# As a feed reader exports it: OPML 1.0, folders, type/htmlUrl attributes, an entity reference.
READER_EXPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head>
    <title>Subscriptions &amp; more</title>
  </head>
  <body>
    <outline text="World" title="World">
      <outline text="Reuters World" title="Reuters World" type="rss"
               xmlUrl="https://feeds.example.org/reuters/world" htmlUrl="https://example.org/"/>
      <outline text="Europe">
        <outline text="ignored text" title="Kyiv Independent" type="rss"
                 xmlUrl="https://kyiv.example.net/rss?lang=en&amp;x=1"/>
      </outline>
    </outline>
    <outline text="BBC" type="rss" xmlUrl="  https://feeds.example.co.uk/news/rss.xml  "/>
    <outline text="Just a link" type="link" url="https://example.org/page"/>
  </body>
</opml>
"""


def test_a_reader_export_is_flattened_with_titles_lines_and_folders() -> None:
    doc = parse_opml(READER_EXPORT)
    assert doc.title == "Subscriptions & more"
    assert [(e.title, e.url, e.folders) for e in doc.entries] == [
        ("Reuters World", "https://feeds.example.org/reuters/world", ("World",)),
        ("Kyiv Independent", "https://kyiv.example.net/rss?lang=en&x=1", ("World", "Europe")),
        ("BBC", "https://feeds.example.co.uk/news/rss.xml", ()),
    ]
    lines = READER_EXPORT.decode().splitlines()
    for entry in doc.entries:  # the line is where the entry's tag starts
        assert lines[entry.line - 1].lstrip().startswith("<outline")
        assert entry.title in lines[entry.line - 1]


def test_write_then_parse_gives_the_same_feeds_with_markup_escaped() -> None:
    feeds = [("a&b", "https://x.example/?a=1&b=2"), ("quote\"s", "https://y.example/<x>"),
             ("ünï", "https://z.example/f")]
    doc = parse_opml(write_opml(feeds, title="T <&>"))
    assert doc.title == "T <&>"
    assert [(e.title, e.url) for e in doc.entries] == feeds


def test_utf16_and_latin1_documents_are_read() -> None:
    text = ('<?xml version="1.0" encoding="{enc}"?><opml version="2.0"><body>'
            '<outline text="Café" xmlUrl="https://c.example/f"/></body></opml>')
    for enc in ("UTF-16", "ISO-8859-1"):
        doc = parse_opml(text.format(enc=enc).encode(enc.lower().replace("iso-", "iso")))
        assert [e.title for e in doc.entries] == ["Café"], enc


@pytest.mark.parametrize("codec", ["utf-32", "utf-32-le", "utf-32-be"])
def test_a_utf32_document_is_read_too(codec: str) -> None:
    """The XML parser reads no UTF-32: such a file (with its byte order mark or without) was
    "not XML: not well-formed (invalid token) at line 1, column 1", naming no reason."""
    text = ('<?xml version="1.0" encoding="UTF-32"?><opml version="2.0"><body>'
            '<outline text="Київ" xmlUrl="https://k.example/f"/></body></opml>')
    doc = parse_opml(text.encode(codec))
    assert [(e.title, e.url) for e in doc.entries] == [("Київ", "https://k.example/f")]
    with pytest.raises(OpmlError, match="starts as UTF-32 but byte 8 is not UTF-32"):
        parse_opml(b"\xff\xfe\x00\x00<\x00\x00\x00\xff\xff\xff\xff")


@pytest.mark.timeout(30)
def test_a_utf32_declaration_followed_by_a_megabyte_of_spaces_is_refused_at_once() -> None:
    """Dropping the declaration's encoding ran its pattern over the whole text, which
    backtracked over the run of spaces from each of its positions: four megabytes, 2 s for
    20,000 spaces and growing with their square. Now the declaration alone is read."""
    hostile = ("<?xml" + " " * 1_000_000 + "x").encode("utf-32")
    with pytest.raises(OpmlError, match="not XML"):
        parse_opml(hostile)
    # a declaration of its usual length, spaces and all, still loses its encoding
    text = ('<?xml version="1.0"   encoding="UTF-32"  ?><opml version="2.0"><body>'
            '<outline text="Київ" xmlUrl="https://k.example/f"/></body></opml>')
    assert [e.title for e in parse_opml(text.encode("utf-32")).entries] == ["Київ"]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<opml version="2.0"><body><outline text="&lol9;" xmlUrl="https://x.example/f"/></body></opml>
"""


@pytest.mark.parametrize(("data", "said"), [
    (BILLION_LAUGHS, "declares a DTD"),
    (b'<?xml version="1.0"?><!DOCTYPE opml SYSTEM "file:///etc/passwd"><opml/>',
     "declares a DTD"),
    (b'<opml version="2.0"><body><outline text="&xxe;" xmlUrl="https://x.example/f"/>'
     b"</body></opml>", "undefined entity"),
    (b"", "empty"),
    (b"   \n", "empty"),
    (b"this is not xml", "not XML"),
    (b"\xff\xfe\x00garbage", "not XML"),
    (b'<opml version="2.0"><body><outline xmlUrl="https://x.example/f">', "not XML"),
    (b'<?xml version="1.0"?><rss version="2.0"><channel/></rss>', "<rss>, not <opml>"),
    (b'<?xml version="1.0" encoding="bogus-9"?><opml version="2.0"><body>'
     b'<outline xmlUrl="https://x.example/f" text="x"/></body></opml>',
     "unknown encoding: bogus-9"),
    (b'<opml version="2.0"><head/><body/></opml>', "no feeds"),
    (b'<opml version="2.0"><body><outline text="Folder"><outline text="no url"/></outline>'
     b"</body></opml>", "no feeds"),
])
def test_unusable_files_are_refused_whole_with_the_reason(data: bytes, said: str) -> None:
    with pytest.raises(OpmlError) as err:
        parse_opml(data)
    assert said in str(err.value)


def test_a_file_over_the_size_cap_is_refused_before_parsing() -> None:
    # Valid OPML padded past the cap: refused by size, not by content.
    head = b'<opml version="2.0"><body><outline text="a" xmlUrl="https://a.example/f"/>'
    data = head + b" " * (MAX_BYTES - len(head)) + b"</body></opml>"
    assert len(data) > MAX_BYTES
    with pytest.raises(OpmlError, match="at most 5 MiB"):
        parse_opml(data)
    assert len(parse_opml(data[:len(head)] + b"</body></opml>").entries) == 1


def test_too_many_feeds_are_refused_whole() -> None:
    def doc(n: int) -> bytes:
        body = "".join(f'<outline text="f{i}" xmlUrl="https://f.example/{i}"/>' for i in range(n))
        return f'<opml version="2.0"><body>{body}</body></opml>'.encode()

    assert len(parse_opml(doc(MAX_ENTRIES)).entries) == MAX_ENTRIES
    with pytest.raises(OpmlError, match="more than 1,000 feeds"):
        parse_opml(doc(MAX_ENTRIES + 1))


def test_deep_folder_nesting_costs_no_recursion() -> None:
    depth = 20_000
    data = ('<opml version="2.0"><body>' + '<outline text="d">' * depth
            + '<outline text="deep" xmlUrl="https://deep.example/f"/>'
            + "</outline>" * depth + "</body></opml>").encode()
    (entry,) = parse_opml(data).entries
    # the innermost folders: each feed held every folder around it, and 1,000 feeds inside
    # 100,000 nested folders (2.9 MB of OPML) took 1.9 GB
    assert entry.title == "deep" and entry.folders == ("d",) * MAX_FOLDERS


def test_many_feeds_deep_in_folders_keep_a_bounded_path_each() -> None:
    depth, feeds = 20_000, 1000
    data = ('<opml version="2.0"><body>' + '<outline text="d">' * depth
            + "".join(f'<outline text="f{i}" xmlUrl="https://deep.example/{i}"/>'
                      for i in range(feeds))
            + "</outline>" * depth + "</body></opml>").encode()
    entries = parse_opml(data).entries
    assert len(entries) == feeds
    assert sum(len(e.folders) for e in entries) == feeds * MAX_FOLDERS


def test_titles_lose_control_and_bidi_characters() -> None:
    data = ('<opml version="2.0"><body><outline text="A\u202eB&#9;C\u200b  D" '
            'xmlUrl="https://a.example/f"/></body></opml>').encode()
    assert parse_opml(data).entries[0].title == "A B C D"


@pytest.mark.parametrize(("title", "url", "name"), [
    ("Reuters World", "", "reuters-world"),
    ("Süddeutsche Zeitung — Politik!", "", "süddeutsche-zeitung-politik"),
    ("BBC News: UK", "", "bbc-news-uk"),
    ("", "https://Feeds.Example.org/rss", "feeds.example.org"),
    ("🙂🙂", "https://a.example/x", "a.example"),
    ("🙂", "", "feed"),
    ("x" * 80, "", "x" * 64),
    ("..__--", "javascript:alert(1)", "feed"),
])
def test_source_names_follow_the_source_name_rules(title: str, url: str, name: str) -> None:
    got = source_name(title, url)
    assert got == name
    assert 1 <= len(got) <= 64


# ----------------------------------------------------------------------------- import


CONFIG = {
    "storage": {"path": "nw.db"},
    "sources": [{"name": "bbc", "type": "feed", "url": "https://feeds.example.co.uk/news/rss.xml"},
                {"name": "seeds", "type": "folder", "path": "seeds"}],
    "rules": [{"name": "troops", "query": "troops"}],
}


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    (tmp_path / "seeds").mkdir()
    async with open_engine(parse_config(CONFIG, base_dir=tmp_path), start=False) as e:
        yield e


HOSTILE = b"""<?xml version="1.0"?>
<opml version="2.0"><body>
<outline text="BBC again" xmlUrl="HTTPS://FEEDS.EXAMPLE.CO.UK/news/rss.xml#top"/>
<outline text="Reuters" xmlUrl="https://feeds.example.org/reuters"/>
<outline text="Reuters mirror" xmlUrl="https://feeds.example.org/reuters"/>
<outline text="bbc" xmlUrl="https://other.example/bbc"/>
<outline text="Script" xmlUrl="javascript:alert(document.cookie)"/>
<outline text="Metadata" xmlUrl="http://169.254.169.254/latest/meta-data"/>
<outline text="Loopback" xmlUrl="http://2130706433/feed"/>
<outline text="Intranet" xmlUrl="http://10.1.2.3/feed"/>
<outline text="Local" xmlUrl="http://localhost:8080/feed"/>
<outline text="Creds" xmlUrl="https://user:pw@a.example/feed"/>
<outline text="Blank" xmlUrl="   "/>
<outline text="Ftp" xmlUrl="ftp://files.example/feed"/>
<outline text="Huge" xmlUrl="https://h.example/%s"/>
</body></opml>
""" % (b"x" * 100_000)


async def test_import_adds_skips_and_refuses_each_entry_with_its_reason(engine: Engine) -> None:
    report = await import_opml(engine, HOSTILE, created_by="u1")
    got = {o.entry.title: (o.status, o.name, o.reason) for o in report.outcomes}
    assert got["BBC again"] == ("skipped", "bbc", "already watched as source 'bbc'")
    assert got["Reuters"][:2] == ("added", "reuters")
    assert got["Reuters mirror"] == ("skipped", None, "same URL as line 4 of this file")
    assert got["bbc"] == ("added", "bbc-2", "name 'bbc' was taken")
    for title, reason in [("Script", "scheme 'javascript'"), ("Metadata", "metadata"),
                          ("Loopback", "loopback"), ("Intranet", "private address"),
                          ("Local", "local machine"), ("Creds", "credentials"),
                          ("Blank", "empty"), ("Ftp", "scheme 'ftp'"),
                          ("Huge", "100,018 characters; at most 2,000")]:
        status, name, why = got[title]
        assert status == "refused" and name is None and reason in why, (title, why)
    assert [o.entry.line for o in report.outcomes] == list(range(3, 16))
    assert report.summary() == "13 feed(s): 2 added, 2 skipped, 9 refused"
    # exactly the added ones are running and stored, with who added them
    assert engine.source_names() == ["bbc", "bbc-2", "reuters", "seeds"]
    stored = {s.name: s for s in await engine.store.list_sources()}
    assert set(stored) == {"bbc-2", "reuters"}
    assert stored["reuters"].created_by == "u1"


async def outcomes(engine: Engine, *feeds: tuple[str, str]) -> dict[str, tuple[str, str]]:
    """Each (title, url) of one OPML line imported: its title's (status, reason)."""
    doc = ('<opml version="2.0"><body>' + "".join(
        f'<outline text="{title}" xmlUrl="{url}"/>' for title, url in feeds)
        + "</body></opml>").encode()
    report = await import_opml(engine, doc, created_by="u1")
    return {o.entry.title: (o.status, o.reason) for o in report.outcomes}


async def test_a_refused_line_does_not_skip_a_good_line_of_the_same_feed(engine: Engine
                                                                        ) -> None:
    """The first line's URL, with a password, was refused; the second, the same feed without
    one, was skipped as "same URL as line 1" and never added."""
    got = await outcomes(engine, ("Creds", "https://user:pw@wire.example/feed"),
                         ("Wire", "https://wire.example/feed"),
                         ("Wire again", "https://wire.example/feed"))
    assert got["Creds"][0] == "refused" and "credentials" in got["Creds"][1]
    assert got["Wire"] == ("added", "")
    assert got["Wire again"] == ("skipped", "same URL as line 1 of this file")
    assert "wire" in engine.source_names()


async def test_a_default_port_written_out_is_the_same_url(engine: Engine) -> None:
    """https://EXAMPLE.com:443/a.xml was added beside https://example.com/a.xml."""
    got = await outcomes(engine, ("BBC port", "https://FEEDS.example.co.uk:443/news/rss.xml"),
                         ("Plain", "http://wire.example/f"),
                         ("Plain port", "http://wire.example:80/f"),
                         ("Other port", "http://wire.example:8080/f"))
    assert got["BBC port"] == ("skipped", "already watched as source 'bbc'")
    assert got["Plain"][0] == "added" and got["Other port"][0] == "added"
    assert got["Plain port"] == ("skipped", "same URL as line 1 of this file")


async def test_importing_the_same_file_twice_adds_nothing_the_second_time(engine: Engine
                                                                          ) -> None:
    first = await import_opml(engine, READER_EXPORT)
    assert [o.name for o in first.added] == ["reuters-world", "kyiv-independent"]
    assert [o.name for o in first.skipped] == ["bbc"]  # the config file's feed, same URL
    again = await import_opml(engine, READER_EXPORT)
    assert again.added == [] and again.refused == []
    assert [o.name for o in again.skipped] == ["reuters-world", "kyiv-independent", "bbc"]


async def test_an_unusable_file_adds_nothing(engine: Engine) -> None:
    with pytest.raises(OpmlError):
        await import_opml(engine, BILLION_LAUGHS)
    assert await engine.store.list_sources() == []


async def test_export_lists_feeds_only_and_imports_back_into_a_fresh_engine(
        engine: Engine, tmp_path: Path) -> None:
    await import_opml(engine, READER_EXPORT)
    data = export_opml(await engine.sources())
    doc = parse_opml(data)
    assert [(e.title, e.url) for e in doc.entries] == sorted(
        (v.name, v.where) for v in await engine.sources() if v.kind == "feed")
    assert "seeds" not in {e.title for e in doc.entries}
    other = tmp_path / "other"
    (other / "seeds").mkdir(parents=True)
    fresh = {**CONFIG, "sources": []}
    async with open_engine(parse_config(fresh, base_dir=other), start=False) as second:
        report = await import_opml(second, data)
        assert len(report.added) == len(doc.entries)
        assert sorted(second.source_names()) == sorted(e.title for e in doc.entries)
        assert export_opml(await second.sources()) == data


def test_an_outlet_is_written_as_an_attribute_and_read_back() -> None:
    data = write_opml([("bbc-europe", "https://feeds.example.co.uk/europe", "BBC & co"),
                       ("dw", "https://rss.example.de/all", None),
                       ("npr", "https://feeds.example.org/npr")])
    assert b'outlet="BBC &amp; co"' in data and data.count(b"outlet=") == 1
    doc = parse_opml(data)
    assert [(e.title, e.outlet) for e in doc.entries] == [
        ("bbc-europe", "BBC & co"), ("dw", None), ("npr", None)]


async def test_a_feeds_outlet_survives_export_and_import(engine: Engine, tmp_path: Path
                                                         ) -> None:
    """An exported and re-imported feed kept no ``outlet``: the BBC's two feeds, one outlet
    as configured, came back as two (each the site of its URL), and corroborated each
    other."""
    doc = (b'<opml version="2.0"><body>'
           b'<outline text="BBC Europe" xmlUrl="https://europe.example/rss" outlet="BBC"/>'
           b'<outline text="Reuters" xmlUrl="https://feeds.example.org/reuters"/>'
           b'</body></opml>')
    report = await import_opml(engine, doc)
    assert [o.status for o in report.outcomes] == ["added", "added"]
    outlets = {v.name: v.outlet for v in await engine.sources()}
    assert outlets["bbc-europe"] == "BBC" and outlets["reuters"] is None
    stored = {s.name: s for s in await engine.store.list_sources()}
    assert stored["bbc-europe"].outlet == "BBC"
    data = export_opml(await engine.sources())
    assert [(e.title, e.outlet) for e in parse_opml(data).entries] == [
        ("bbc", None), ("bbc-europe", "BBC"), ("reuters", None)]
    other = tmp_path / "other"
    (other / "seeds").mkdir(parents=True)
    async with open_engine(parse_config({**CONFIG, "sources": []}, base_dir=other),
                           start=False) as second:
        assert len((await import_opml(second, data)).added) == 3
        assert {v.name: v.outlet for v in await second.sources()} == {
            "bbc": None, "bbc-europe": "BBC", "reuters": None}
        assert export_opml(await second.sources()) == data


@pytest.mark.parametrize(("outlet", "said"), [
    ("", "may not be blank"),
    ("   ", "may not be blank"),
    ("B" * 65, "at most 64 characters"),
    ("B" * 65_000, "at most 64 characters"),  # a thousand times the limit: said, not echoed
    ("BBC\u202eevil", "direction"),
    ("BBC&#10;News", "line-break"),
])
async def test_a_bad_outlet_refuses_its_entry_saying_why(engine: Engine, outlet: str,
                                                        said: str) -> None:
    doc = ('<opml version="2.0"><body>'
           f'<outline text="Bad" xmlUrl="https://bad.example/rss" outlet="{outlet}"/>'
           '<outline text="Good" xmlUrl="https://good.example/rss" outlet="Good"/>'
           '</body></opml>').encode()
    report = await import_opml(engine, doc)
    bad, good = report.outcomes
    assert bad.status == "refused" and "outlet" in bad.reason and said in bad.reason, bad.reason
    assert len(bad.reason) < 500, len(bad.reason)
    assert good.status == "added"
    assert "bad" not in engine.source_names()
