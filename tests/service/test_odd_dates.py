"""Dates a feed may carry that no article has: before the year 1000 (``0001-01-01`` is a common
placeholder) and far in the future (``9999-12-31``). Each is stored or set aside without
stopping the source, the other sources, or the stories read at the next start."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.service._harness import Fixed, folder, watch
from watchers.models import MAX_AHEAD, Article, checked_article
from watchers.store import SqliteStore
from watchers.store.sqlite._db import dt, iso

NOW = datetime.now(UTC)


def art(source: str, guid: str, title: str, published: datetime | None) -> Article:
    return Article(source=source, guid=guid, title=title, text=f"{title}. Troops were seen.",
                   url=f"https://{source}.example/{guid}", published=published)


async def restart_and_poll(tmp_path: Path, article: Article) -> tuple[int, int]:
    """A new service on the store polls a source holding ``article``, which must be stored
    without error; returns the articles and live stories the store then holds."""
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, stories_mode=lambda route: "edit")
        await service.add_source(folder(article.source, tmp_path),
                                 Fixed(article.source, [article]))
        (report,) = await service.run_once()
        assert report.error is None and report.new == 1
        live = await store.live_stories(timedelta(hours=48), until=NOW + MAX_AHEAD)
        return await store.count_articles(), len(live)


def test_years_before_1000_are_stored_with_four_digits_and_read_back() -> None:
    for when in (datetime(999, 6, 1, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC),
                 datetime(2026, 12, 3, 4, 5, 6, 789, tzinfo=UTC)):
        text = iso(when)
        assert text is not None and len(text) == 27 and text[4] == "-"
        assert dt(text) == when
    # what earlier versions wrote for such years (strftime without padding) still reads
    assert dt("999-06-01T00:00:00.000000Z") == datetime(999, 6, 1, tzinfo=UTC)
    assert dt("1-01-01T00:00:00.000000Z") == datetime(1, 1, 1, tzinfo=UTC)


def test_a_published_date_far_ahead_of_the_fetch_is_not_believed() -> None:
    fetched = datetime(2026, 12, 3, tzinfo=UTC)
    far = datetime(9999, 12, 31, tzinfo=UTC)
    near = fetched + MAX_AHEAD  # a feed's clock a little ahead, or an embargo: kept
    # the calendar's first year is .NET's and Go's "no date": not believed either
    for published, kept in ((far, None), (fetched + MAX_AHEAD * 2, None), (near, near),
                            (datetime(1, 1, 1, tzinfo=UTC), None),
                            (datetime(2, 1, 1, tzinfo=UTC), datetime(2, 1, 1, tzinfo=UTC))):
        validated = Article(title="t", published=published, fetched_at=fetched)
        checked = checked_article(source="", guid=None, url=None, title="t", text="",
                                  published=published, fetched_at=fetched)
        assert validated.published == kept and checked.published == kept
        assert validated == checked


async def test_an_item_dated_before_1000_stops_neither_its_source_nor_the_others(
        tmp_path: Path) -> None:
    """It stopped the whole engine at every start: the date was stored as ``999-06-01…``, which
    SQLite's date functions read as NULL in the lookup index's key."""
    odd = [art("odd", "1", "Odd date troops report", datetime(999, 6, 1, tzinfo=UTC)),
           art("odd", "2", "Placeholder date troops report", datetime(1, 1, 1, tzinfo=UTC)),
           art("odd", "3", "Healthy sibling troops report", None)]
    good = [art("good", "1", "Good feed troops report", NOW - timedelta(hours=1))]
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, stories_mode=lambda route: "edit")
        await service.add_source(folder("odd", tmp_path), Fixed("odd", odd))
        await service.add_source(folder("good", tmp_path), Fixed("good", good))
        reports = await service.run_once()
        assert [r.error for r in reports] == [None, None]
        assert await store.count_articles() == 4
        stored = {a.title: a for a, _ in await store.recent(limit=10)}
        assert stored["Odd date troops report"].published == datetime(999, 6, 1, tzinfo=UTC)
        assert [a.title for a, _ in await store.recent(limit=1)] == ["Healthy sibling troops "
                                                                     "report"]
    # a restart reads every story back, and a new article still joins the store
    stored_now, _ = await restart_and_poll(tmp_path, art("late", "1", "A later report", NOW))
    assert stored_now == 5


async def test_a_copy_dated_before_1000_leaves_its_story_readable(tmp_path: Path) -> None:
    """A second outlet's word-for-word copy with such a date set the story's last report to
    ``999-06-01…``: every later poll failed reading it back."""
    first = art("first", "1", "Troops mass near the border", NOW - timedelta(hours=2))
    copy = first.model_copy(update={"source": "copy", "guid": "c1", "id": "",
                                    "url": "https://copy.example/c1",
                                    "published": datetime(999, 6, 1, tzinfo=UTC)})
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, stories_mode=lambda route: "edit")
        await service.add_source(folder("first", tmp_path), Fixed("first", [first]))
        await service.run_once()
        await service.add_source(folder("copy", tmp_path), Fixed("copy", [copy]))
        reports = await service.run_once()
        assert all(r.error is None for r in reports)
    _, live = await restart_and_poll(
        tmp_path, art("other", "1", "Something else entirely happened today", NOW))
    assert live >= 1


async def test_a_story_dated_in_the_future_leaves_the_window_to_the_others(
        tmp_path: Path) -> None:
    """Stores written before future dates were refused may hold such a story; the live window
    at start-up counts back from the newest story not past the clock."""
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, stories_mode=lambda route: "edit")
        live = [art("wire", "1", "Troops mass near Kharkiv border", NOW - timedelta(hours=1))]
        await service.add_source(folder("wire", tmp_path), Fixed("wire", live))
        await service.run_once()
        (story,) = await store.live_stories(timedelta(hours=48))
    with sqlite3.connect(tmp_path / "nw.db") as conn:  # what an earlier version could store
        conn.execute(
            "INSERT INTO stories (id, headline, first_seen, last_seen, outlets, signature) "
            "SELECT 'future', 'From the future', ?, ?, outlets, signature FROM stories",
            ("9999-12-31T00:00:00.000000Z", "9999-12-31T00:00:00.000000Z"))
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        assert [s.id for s in await store.live_stories(timedelta(hours=48))] == ["future"]
        shown = await store.live_stories(timedelta(hours=48), until=NOW + MAX_AHEAD)
        assert story.id in [s.id for s in shown]
        # the service's own start-up reads with its clock
        service = watch(store, stories_mode=lambda route: "edit")
        index = await service.story_index()
        assert index is not None and len(index) == 1
