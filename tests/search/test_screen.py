"""A lookup's regexes screen the rows a store reads: a candidate that fails them is never made
into an article nor matched, and the answer is the full scan's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import bbc_records
from watchers.models import MAX_MATCH_CHARS, MAX_MATCH_TITLE_CHARS, Article, matchable
from watchers.rules import lookup as lookup_module
from watchers.rules import match_query, parse
from watchers.rules.lookup import index_terms, places_of, regex_screen
from watchers.search import search
from watchers.store import SqliteStore

BASE = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def test_the_screen_holds_the_regexes_every_match_needs() -> None:
    def tree(query: str) -> object:
        screen = regex_screen(parse(query))
        return None if screen is None else screen.tree

    both = ("title", "text")
    assert tree(r"/\d+ pause/") == ("regex", r"\d+ pause", both)
    assert tree("kyiv AND /x+/ AND title:/y/") == (
        "all", [("regex", "x+", both), ("regex", "y", ("title",))])
    assert tree("/a+/ OR text:/b+/") == (
        "any", [("regex", "a+", both), ("regex", "b+", ("text",))])
    # a match may have neither: nothing to screen with
    assert tree("/a+/ OR kyiv") is None
    assert tree("kyiv NOT /a+/") is None
    assert tree("kyiv") is None
    # the store's title and text alone are screened (a link or a source name is not read)
    assert tree("url:/kyiv/") is None
    assert tree("source:/^b/ AND /talks/") == ("regex", "talks", both)


PATTERNS = [r"\d+ (people|troops)", r"minist(er|ry)", r"\bgov[a-z]+ment\b", r"£\d+",
            r"^[A-Z]", r"kyiv|kiev", r"putin", r"(?i)PUTIN", r"a*", r"x?", r"\.$",
            r"talks?\s+(on|in)", r"[А-я]+", r"^.?$", r"ſ", r"İ"]


def screened_articles() -> list[Article]:
    arts = [Article(source="bbc", title=d["title"], text=d["text"], guid=d["id"])
            for d in bbc_records(40)]
    arts += [
        Article(title="Pu\u00adtin meets 300 troops", text="In Київ, the minis\u200bter said."),
        Article(title="Nothing", text="The Preſident spoke; İstanbul talks  in May."),
        Article(title="x" * (MAX_MATCH_TITLE_CHARS + 10) + " putin",
                text="a" * MAX_MATCH_CHARS + " 5 people"),
        Article(title="Empty text", text=""),
    ]
    return arts


def test_a_row_screen_passes_a_stored_row_exactly_when_the_matcher_matches_it() -> None:
    # Read as the matcher reads a stored article: made readable (an old row may hold a soft
    # hyphen), cut to what rules see, a non-empty span.
    for article in screened_articles():
        seen = matchable(article)
        for pattern in PATTERNS:
            for query in (f"/{pattern}/", f"title:/{pattern}/", f"text:/{pattern}/"):
                screen = regex_screen(parse(query))
                assert screen is not None
                screen.start()
                matched = match_query(query, seen) is not None
                passed = screen.passes(article.title, article.text)
                if len(article.text) < 10_000:
                    assert passed is matched, (query, article.title)
                else:  # a pattern may run out of time on a megabyte: then it passes
                    assert passed or not matched, (query, article.title[-20:])
    # what lies past the cut is not read
    giant = screened_articles()[-2]
    for query in ("/putin/", "/5 people/", "title:/putin/"):
        screen = regex_screen(parse(query))
        assert screen is not None and screen.passes(giant.title, giant.text) is False
    screen = regex_screen(parse("/putin/ AND /minister/"))
    assert screen is not None
    assert screen.passes("Pu\u00adtin", "the minis\u200bter")
    assert screen.passes("Pu\x00tin", "minister") is False  # NUL is a space to the matcher
    assert screen.passes(None, None) is False


def test_a_row_screen_lets_rows_through_once_its_time_is_spent(
        monkeypatch: pytest.MonkeyPatch) -> None:
    screen = regex_screen(parse("/putin/"))
    assert screen is not None
    screen.start()
    assert screen.passes("Biden", "no") is False
    monkeypatch.setattr(lookup_module, "SCREEN_PAGE_SECONDS", 0.0)
    assert screen.passes("Biden", "no") is True  # the matcher decides
    # a regex that runs out of its time on a row passes it too
    slow = regex_screen(parse(r"/(x+x+)+y/"))
    assert slow is not None
    monkeypatch.setattr(lookup_module, "SCREEN_PAGE_SECONDS", 10.0)
    monkeypatch.setattr(lookup_module, "SCREEN_ROW_SECONDS", 0.001)
    slow.start()
    assert slow.passes("x" * 40, "") is True
    assert slow.passes("ab", "") is False


async def _store(path: Path, articles: list[Article]) -> list[Article]:
    kept = []
    async with await SqliteStore.open(path) as store:
        for a in articles:
            got = await store.record(a, [], [], terms=index_terms(a.title, a.text),
                                     places=places_of(a.title, a.text))
            assert got is not None
            kept.append(got)
    return kept


def pauses(n: int) -> list[Article]:
    """``n`` articles about a pause, one second apart (the newest last), every fifth with a
    number before it."""
    return [Article(title=f"Story {i}", guid=f"g{i}", source="s",
                    text=f"Talks {'after a ' if i % 5 else f'after {i} '}pause in May.",
                    published=BASE + timedelta(seconds=i)) for i in range(n)]


@pytest.mark.parametrize("query", [r"/\d+ pause/", r"/\d+ pause/ AND talks",
                                   r"text:/\d+ pau/", r"/\d{1,3} p/"])
async def test_rows_the_screen_refuses_are_never_matched(tmp_path: Path, query: str) -> None:
    # The index finds every article holding "pause" (or, with no literal to narrow by, every
    # article): only those the screen passes are made into articles and matched.
    arts = await _store(tmp_path / "nw.db", pauses(60))
    expected = [a.id for a in reversed(arts) if match_query(query, a) is not None]
    assert len(expected) == 12
    async with await SqliteStore.open(tmp_path / "nw.db", readonly=True) as store:
        found = await search(store, query, limit=100)
        assert [h.article.id for h in found] == expected
        assert found.scanned == 12
        for limit in (1, 5):
            found = await search(store, query, limit=limit)
            assert [h.article.id for h in found] == expected[:limit]


@pytest.mark.parametrize("fts", ['"pause"', None])
@pytest.mark.parametrize("size", [1, 3, 7])
async def test_screened_pages_hold_every_passing_row_once_newest_first(
        tmp_path: Path, fts: str | None, size: int) -> None:
    arts = await _store(tmp_path / "nw.db", pauses(40))
    expected = [a.id for a in reversed(arts) if any(ch.isdigit() for ch in a.text)]
    seen: list[str] = []
    async with await SqliteStore.open(tmp_path / "nw.db", readonly=True) as store:
        after = None
        for _ in range(100):
            screen = regex_screen(parse(r"/\d+ pause/"))
            page = await store.candidate_page(fts=fts, after=after, limit=size, screen=screen)
            assert len(page.articles) <= size
            seen += [a.id for a in page.articles]
            if page.next is None:
                break
            after = page.next
        else:
            pytest.fail("the pages never ended")
    assert seen == expected


class _Broken:
    def start(self) -> None:
        pass

    def passes(self, title: str | None, text: str | None) -> bool:
        raise RuntimeError("screen failed")


async def test_a_screen_that_fails_lets_its_rows_through(tmp_path: Path) -> None:
    # A screen only narrows: a row it could not judge goes to the matcher.
    arts = await _store(tmp_path / "nw.db", pauses(10))
    async with await SqliteStore.open(tmp_path / "nw.db", readonly=True) as store:
        for fts in ('"pause"', None):
            page = await store.candidate_page(fts=fts, limit=50, screen=_Broken())
            assert [a.id for a in page.articles] == [a.id for a in reversed(arts)]


async def test_a_catastrophic_regex_is_screened_within_its_time(tmp_path: Path) -> None:
    # Rows on which the regex takes too long pass the screen; the matcher's budget decides.
    arts = [Article(title=f"Row {i}", text="x" * 30 + ("y" if i == 3 else "!"), guid=f"c{i}",
                    published=BASE + timedelta(seconds=i)) for i in range(6)]
    await _store(tmp_path / "nw.db", arts)
    async with await SqliteStore.open(tmp_path / "nw.db", readonly=True) as store:
        found = await asyncio.wait_for(search(store, r"/(x+x+)+y/", limit=10), 60)
    assert [h.article.title for h in found] == ["Row 3"]


class _Counting:
    """A screen that passes every row and counts the rows it was asked about."""

    def __init__(self) -> None:
        self.asked = 0

    def start(self) -> None:
        pass

    def passes(self, title: str | None, text: str | None) -> bool:
        self.asked += 1
        return True


@pytest.mark.parametrize("fts", ['"pause"', None])
async def test_a_page_screens_its_own_rows_alone(tmp_path: Path, fts: str | None) -> None:
    # With a source filter the planner reads the source's rows and sorts them; the screen
    # was a column of every one of them (tens of thousands for one page of 32).
    await _store(tmp_path / "nw.db", pauses(300))
    async with await SqliteStore.open(tmp_path / "nw.db", readonly=True) as store:
        screen = _Counting()
        page = await store.candidate_page(fts=fts, source="s", limit=5, screen=screen)
        assert len(page.articles) == 5
        assert screen.asked == 5


async def test_a_lookup_stops_once_its_screen_reads_past_its_last_match(tmp_path: Path) -> None:
    # The newest article is the one match; the screen leaves every older candidate out, so
    # the lookup never saw one older than its match and read on page after page.
    arts = [Article(title=f"Story {i}", guid=f"g{i}", source="s",
                    text="Talks after 7 pause." if i == 1999 else "Talks after a pause.",
                    published=BASE + timedelta(seconds=i)) for i in range(2000)]
    await _store(tmp_path / "nw.db", arts)
    async with await SqliteStore.open(tmp_path / "nw.db", readonly=True) as store:
        pages = 0
        read = store.candidate_page

        async def counted(**kwargs: object) -> object:
            nonlocal pages
            pages += 1
            return await read(**kwargs)  # type: ignore[arg-type]

        store.candidate_page = counted  # type: ignore[method-assign,assignment]
        for query in (r"/\d+ pause/", r"/\d+ pause/ AND talks", r"/\d pau/"):
            pages = 0
            found = await search(store, query, limit=1)
            assert [h.article.title for h in found] == ["Story 1999"]
            assert not found.truncated
            assert pages <= 2, query


async def test_many_slow_regexes_share_one_rows_time(tmp_path: Path) -> None:
    # Each regex was given the row's time: 200 catastrophic ones held the store's connection
    # four seconds a row, past the lookup's budget, which cannot stop a running statement.
    arts = [Article(title=f"Row {i} " + "a" * 25, guid=f"r{i}",
                    published=BASE + timedelta(seconds=i)) for i in range(20)]
    await _store(tmp_path / "nw.db", arts)
    letters = [chr(c) for c in range(0x100, 0x300)]
    query = " AND ".join(f"/(a|aa)+[{letters[2 * i]}{letters[2 * i + 1]}]/" for i in range(200))
    async with await SqliteStore.open(tmp_path / "nw.db", readonly=True) as store:
        found = await asyncio.wait_for(search(store, query, limit=10, budget=1.0), 4)
    assert list(found) == []
