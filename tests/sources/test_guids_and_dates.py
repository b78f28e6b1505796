"""Item ids kept as written (feedparser resolved a guid such as "67890" against the feed's URL
and made it the item's link) and impossible dates read as unknown (feedparser rolled
"2024-02-30T25:61:00Z" over into 2024-03-02 02:01)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.feed_server import FeedServer, Route
from tests.fakes.sinks import RecordingSink
from watchers.config import parse_config
from watchers.engine import open_engine
from watchers.sources._feedparse import parse_feed


def _rss(item: str) -> bytes:
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
            f"<item><title>troops</title>{item}</item></channel></rss>").encode()


@pytest.mark.parametrize("url", ["http://127.0.0.1:18081/feed/x.xml",
                                 "https://mirror.example/a/b/feed.rss"])
def test_a_guid_that_is_no_url_is_kept_as_written_and_is_no_link(url: str) -> None:
    (entry,) = parse_feed(_rss("<guid>67890</guid>"), url=url, content_type=None).entries
    assert (entry.guid, entry.url) == ("67890", None)


@pytest.mark.parametrize(("item", "guid", "link"), [
    # the common cases: as before
    ("<guid>https://news.example/a/1</guid>", "https://news.example/a/1",
     "https://news.example/a/1"),
    ("<link>https://news.example/a/2</link><guid>67890</guid>", "67890",
     "https://news.example/a/2"),
    ('<guid isPermaLink="false">tag:news.example,2024:3</guid>',
     "tag:news.example,2024:3", None),
    ("<guid>urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a</guid>",
     "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a", None),
    # relative: kept as written, and no link made of it
    ("<guid>/story/4</guid>", "/story/4", None),
    ("<guid>//cdn.example/story/5</guid>", "//cdn.example/story/5", None),
    ("<link>story/6</link><guid>6</guid>", "6", "https://f.example/feeds/story/6"),
])
def test_guids_and_links(item: str, guid: str, link: str | None) -> None:
    (entry,) = parse_feed(_rss(item), url="https://f.example/feeds/main.xml",
                          content_type=None).entries
    assert (entry.guid, entry.url) == (guid, link)


def test_an_atom_id_that_is_no_url_is_kept_as_written() -> None:
    body = (b'<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><entry><id>42</id>'
            b"<title>troops</title></entry></feed>")
    (entry,) = parse_feed(body, url="https://f.example/atom.xml", content_type=None).entries
    assert (entry.guid, entry.url) == ("42", None)


def _config(url: str) -> dict[str, Any]:
    return {"storage": {"path": "nw.db"}, "fetch": {"allow_private": ["127.0.0.1/32"]},
            "sources": [{"name": "f", "type": "feed", "url": url, "every": "1h"}],
            "rules": [{"name": "troops", "query": "troops"}]}


@pytest.mark.parametrize("link", ["", "<link>{base}/story/67890</link>"])
async def test_items_stored_under_their_resolved_guid_are_not_new_after_the_upgrade(
        tmp_path: Path, link: str) -> None:
    """Stored before the fix under the guid feedparser made ("http://host/feed/67890"), an
    item read now under its guid as written ("67890") is the stored article, not a new one."""
    sink = RecordingSink()
    async with FeedServer() as server:
        base = server.url("").rstrip("/")
        item = ("<title>Troops gather at the border</title><description>Long enough text"
                "</description>" + link.format(base=base))
        old = _rss(f"{item}<guid>{base}/feed/67890</guid>").replace(b"<title>troops</title>", b"")
        new = _rss(f"{item}<guid>67890</guid>").replace(b"<title>troops</title>", b"")
        server.set("/feed/x.xml", Route(body=old))
        cfg = parse_config(_config(server.url("/feed/x.xml")), base_dir=tmp_path)
        async with open_engine(cfg, start=False, default_sink=sink) as engine:
            await engine.run_once()  # the baseline, as the old version stored it
            server.set("/feed/x.xml", Route(body=new))
            await engine.run_once()
            assert sink.alerts == []
            assert len(await engine.recent(limit=10)) == 1


def _json_feed(date: str) -> bytes:
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "J",
                       "items": [{"id": "1", "title": "troops", "date_published": date}]}
                      ).encode()


@pytest.mark.parametrize(("date", "expected"), [
    ("2024-13-45", None),
    ("-0001-01-01T00:00:00Z", None),
    ("2024-02-30", None),
    ("2024-02-30T10:00:00Z", None),
    ("2024-02-10T25:00:00Z", None),
    ("2024-02-10T10:61:00Z", None),
    ("20240230T100000Z", None),
    # real dates, also in forms fromisoformat does not read, are still read
    ("2024-02-29T10:00:00Z", datetime(2024, 2, 29, 10, tzinfo=UTC)),
    ("2024-06-30T23:59:60Z", datetime(2024, 7, 1, tzinfo=UTC)),
    ("Thu, 29 Feb 2024 10:00:00 GMT", datetime(2024, 2, 29, 10, tzinfo=UTC)),
    ("Fri, 30 Feb 2024 10:00:00 GMT", None),
])
def test_an_impossible_json_feed_date_is_unknown(date: str, expected: datetime | None) -> None:
    (entry,) = parse_feed(_json_feed(date), url="https://f.example/j", content_type=None).entries
    assert entry.published == expected


@pytest.mark.parametrize(("date", "expected"), [
    ("2024-02-30T25:61:00Z", None),
    ("2024-13-45", None),
    ("2024-02-30", None),
    ("2024-12-31T24:00:00Z", datetime(2025, 1, 1, tzinfo=UTC)),
    ("2024-02-29T10:00:00+02:00", datetime(2024, 2, 29, 8, tzinfo=UTC)),
    ("Thu, 29 Feb 2024 10:00:00 GMT", datetime(2024, 2, 29, 10, tzinfo=UTC)),
])
def test_an_impossible_rss_or_atom_date_is_unknown(date: str, expected: datetime | None) -> None:
    (entry,) = parse_feed(_rss(f"<pubDate>{date}</pubDate>"), url="https://f.example/r",
                          content_type=None).entries
    assert entry.published == expected
    atom = (f'<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><entry><id>1</id>'
            f"<title>troops</title><updated>{date}</updated></entry></feed>").encode()
    (entry,) = parse_feed(atom, url="https://f.example/a", content_type=None).entries
    assert entry.published == expected


# UTC offsets run from -12:00 to +14:00; one past ±14:00, or of 60 minutes or more, is no zone:
# feedparser read "+9999" as 99 hours 99 minutes and dated the article four days early.
NO_ZONE = ["Tue, 01 Feb 2022 10:00:00 +9999", "Tue, 01 Feb 2022 10:00:00 +1500",
           "Tue, 01 Feb 2022 10:00:00 -1401", "Tue, 01 Feb 2022 10:00:00 +0160",
           "Tue, 01 Feb 2022 10:00:00 GMT+1800", "2022-02-01T10:00:00+99:99",
           "2022-02-01T10:00:00+15:00", "2022-02-01T10:00:00+14:60",
           "2022-02-01T10:00:00.250-23:59", "2022-02-01T10:00+0160", "2022-02-01T10:00:00+16",
           # ISO 8601's basic format and a time of hours alone, which JSON Feed's reader
           # (and feedparser, for the latter) took with the offset
           "20220201T100000+1500", "20220201T1000-1800", "2022-02-01T10+15:00"]
REAL_ZONES = [("Tue, 01 Feb 2022 10:00:00 +1400", datetime(2022, 1, 31, 20, tzinfo=UTC)),
              ("Tue, 01 Feb 2022 10:00:00 -1200", datetime(2022, 2, 1, 22, tzinfo=UTC)),
              ("Tue, 01 Feb 2022 10:00:00 +0545", datetime(2022, 2, 1, 4, 15, tzinfo=UTC)),
              ("2022-02-01T10:00:00-14:00", datetime(2022, 2, 2, 0, tzinfo=UTC)),
              ("2022-02-01T10:00:00+05:30", datetime(2022, 2, 1, 4, 30, tzinfo=UTC)),
              ("2022-02-01T10+14:00", datetime(2022, 1, 31, 20, tzinfo=UTC))]


def _three_formats(date: str) -> dict[str, bytes]:
    atom = (f'<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><entry><id>1</id>'
            f"<title>troops</title><updated>{date}</updated></entry></feed>").encode()
    return {"rss": _rss(f"<pubDate>{date}</pubDate>"), "atom": atom, "json": _json_feed(date)}


@pytest.mark.parametrize("date", NO_ZONE)
def test_a_date_with_a_utc_offset_no_zone_has_is_unknown(date: str) -> None:
    for kind, body in _three_formats(date).items():
        (entry,) = parse_feed(body, url=f"https://f.example/{kind}", content_type=None).entries
        assert entry.published is None, kind


@pytest.mark.parametrize(("date", "expected"), REAL_ZONES)
def test_dates_in_the_zones_at_the_ends_of_the_world_are_read(date: str, expected: datetime
                                                              ) -> None:
    for kind, body in _three_formats(date).items():
        (entry,) = parse_feed(body, url=f"https://f.example/{kind}", content_type=None).entries
        assert entry.published == expected, kind


async def test_a_feed_item_whose_zone_is_no_zone_is_dated_when_it_was_seen(
        tmp_path: Path) -> None:
    """Served by a real feed server: the item dated "+9999" is stored undated (its alerts
    and lookups show when it was fetched), not four days in the past; its sibling keeps its
    date."""
    sink = RecordingSink()
    async with FeedServer() as server:
        server.set("/feed.xml", Route(body=_rss("<guid>0</guid>")))
        cfg = parse_config(_config(server.url("/feed.xml")), base_dir=tmp_path)
        async with open_engine(cfg, start=False, default_sink=sink) as engine:
            await engine.run_once()  # the baseline
            items = "".join(
                f"<item><title>Troops report {n}</title><guid>{n}</guid>"
                f"<pubDate>{date}</pubDate></item>"
                for n, date in ((1, "Tue, 01 Feb 2022 10:00:00 +9999"),
                                (2, "Tue, 01 Feb 2022 10:00:00 +0100")))
            server.set("/feed.xml", Route(body=(
                '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
                f"{items}</channel></rss>").encode()))
            before = datetime.now(UTC)
            await engine.run_once()
            stored = {a.title: a for a, _ in await engine.store.recent(limit=10)}
            odd, fine = stored["Troops report 1"], stored["Troops report 2"]
            assert odd.published is None
            assert odd.fetched_at is not None and odd.fetched_at >= before - timedelta(seconds=1)
            assert fine.published == datetime(2022, 2, 1, 9, tzinfo=UTC)


@pytest.mark.parametrize(("guid", "chars", "ends"), [
    ("g" * 3000, 2001, "g…"),  # ASCII: clipped to 2,000 characters, as it always was
    ("\u0436" * 2000, 1199, "\u0436…"),  # 4,000 bytes: to 2,400 bytes
    ("\U0001f4f0" * 1000, 600, "\U0001f4f0…"),
])
def test_a_long_guid_is_clipped_to_what_an_index_row_holds(guid: str, chars: int,
                                                          ends: str) -> None:
    """A guid is indexed whole with its source: 2,000 characters of Cyrillic (4,000 bytes) were
    more than PostgreSQL takes in an index row (2,704 bytes), and the poll failed each time."""
    for doc in (_rss(f"<guid isPermaLink='false'>{guid}</guid><title>t</title>"),
                json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "f",
                            "items": [{"id": guid, "title": "t"}]}).encode()):
        (entry,) = parse_feed(doc, url="https://ex.org/feed", content_type=None).entries
        assert entry.guid is not None and len(entry.guid) == chars
        assert entry.guid.endswith(ends) and len(entry.guid.encode()) <= 2_400
