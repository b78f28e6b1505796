"""Each article alerts once: feeds that change guids, bump dates, add tracking parameters, reuse
one guid for every item, or drop and re-add items — polled three times through a real HTTP
server, the real FeedSource and a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from tests.fakes.feed_server import FeedServer, Route
from tests.fakes.sinks import RecordingSink
from tests.service._harness import deliver, rule, watch
from tests.service._harness import feed as feed_source
from watchers.sources._http import Fetcher
from watchers.store import SqliteStore

STORIES = [
    ("Troops mass near Kharkiv", "Thousands of troops moved toward Kharkiv overnight.", "kharkiv"),
    ("Talks in Geneva end", "Troops were not discussed at the Geneva talks.", "geneva"),
    ("Sanctions widen", "New sanctions on Russia; troops remain at the border.", "sanctions"),
]

Item = tuple[str, str, str, str, datetime]  # guid, link, title, text, date


def rss(items: list[Item]) -> bytes:
    out = ['<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>']
    for guid, link, title, text, date in items:
        out.append(
            f"<item><guid isPermaLink=\"false\">{escape(guid)}</guid><link>{escape(link)}</link>"
            f"<title>{escape(title)}</title><description>{escape(text)}</description>"
            f"<pubDate>{format_datetime(date)}</pubDate></item>")
    out.append("</channel></rss>")
    return "".join(out).encode()


BASE = datetime(2022, 1, 20, tzinfo=UTC)


def plain(poll: int) -> list[Item]:
    return [(f"g-{slug}", f"https://news.example/{slug}", t, x, BASE + timedelta(hours=i))
            for i, (t, x, slug) in enumerate(STORIES)]


def changing_guids(poll: int) -> list[Item]:
    return [(f"g-{slug}-v{poll}", link, t, x, d)
            for (_, link, t, x, d), (_, _, slug) in zip(plain(poll), STORIES, strict=True)]


def bumped_dates(poll: int) -> list[Item]:
    return [(g, link, t, x, d + timedelta(days=poll)) for g, link, t, x, d in plain(poll)]


def tracking_links(poll: int) -> list[Item]:
    return [(f"g{poll}-{i}", f"{link}?utm_source=rss&utm_campaign=p{poll}#top", t, x, d)
            for i, (_, link, t, x, d) in enumerate(plain(poll))]


def one_guid_for_all(poll: int) -> list[Item]:
    return [("same-guid", link, t, x, d) for _, link, t, x, d in plain(poll)]


def drop_and_readd(poll: int) -> list[Item]:
    items = plain(poll)
    return items if poll != 1 else items[1:]


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as s:
        yield s


@pytest.mark.parametrize("feed", [plain, changing_guids, bumped_dates, tracking_links,
                                  one_guid_for_all, drop_and_readd])
async def test_each_story_alerts_once_across_three_polls(
        feed: Callable[[int], list[Item]], server: FeedServer, tmp_path: Path) -> None:
    sink = RecordingSink()
    async with await SqliteStore.open(tmp_path / "nw.db") as store, \
            Fetcher(allow_private=["127.0.0.1/32"]) as fetcher:
        # backfill 3: the baseline poll alerts on all three stories, so every poll counts.
        service = watch(store, rules=[rule("troops", "troops")], fetcher=fetcher,
                        sources=[feed_source("f", server.url("/feed"), backfill=3)])
        delivery = deliver(store, sink)
        for poll in range(3):
            server.set("/feed", Route(body=rss(feed(poll))))
            report = (await service.run_once())[0]
            assert report.error is None, report.error
            await delivery.drain()
        assert sorted(a.article.title for a in sink.alerts) == sorted(t for t, _, _ in STORIES)
        assert await store.count_articles() == 3
