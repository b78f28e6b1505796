"""A lookup keeps to its time budget inside one article's match too, and says when it did not
finish.

The budget here is a second, spent many times over by the one slow article (a phrase with a
prefix word and slop over 1 MB takes seconds), so the outcome does not depend on the machine.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from watchers.models import Article
from watchers.rules.lookup import index_terms, url_terms
from watchers.search import search
from watchers.store import SqliteStore

# Every window of the long article is a window of this phrase.
QUERY = '"t* s*"~99'
LONG_TEXT = ("ta sa " * 170_000)[:1_000_000]


async def record(store: SqliteStore, article: Article) -> None:
    await store.record(article, [], [], terms=index_terms(article.title, article.text),
                       url_terms=url_terms(article.url))


@pytest.mark.timeout(120)  # a match that ignored the lookup's deadline took seconds per call
async def test_a_phrase_over_a_long_article_cuts_the_lookup_short_and_says_so(
        tmp_path: Path) -> None:
    """A sloppy phrase of prefix words over a 1 MB article ran ten seconds past a 5 s budget,
    the article counted as a hit and the lookup did not say it was cut short: it stops at the
    lookup's deadline, the article is not shown, and the lookup is truncated."""
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await record(store, Article(source="long", title="Long", text=LONG_TEXT, guid="long",
                                    published=datetime(2024, 1, 2, tzinfo=UTC)))
        await record(store, Article(source="short", title="ta and sa", text="A short one.",
                                    guid="short", published=datetime(2024, 1, 1, tzinfo=UTC)))
        cut = await search(store, QUERY, source="long", budget=1.0)
        assert (len(cut), cut.truncated) == (0, True)
        # The same phrase over a short article finishes well inside the same budget.
        found = await search(store, QUERY, source="short", budget=1.0)
        assert ([h.article.title for h in found], found.truncated) == (["ta and sa"], False)


async def bait(store: SqliteStore, tail: str, title: str, text: str) -> None:
    """Store the article a regex takes seconds over ("Quadratic bait": 30,000 "b "s, then
    ``tail``), and an older one, ``title`` and ``text``."""
    await record(store, Article(source="s", title="Quadratic bait", guid="slow",
                                text="b " * 30_000 + tail,
                                published=datetime(2024, 1, 2, tzinfo=UTC)))
    await record(store, Article(source="s", title=title, text=text, guid="other",
                                published=datetime(2024, 1, 1, tzinfo=UTC)))


async def test_a_regex_out_of_time_on_an_article_says_the_lookup_may_lack_it(
        tmp_path: Path) -> None:
    """A regex that runs out of its time on an article counts as not matching there: the
    lookup left the article out and said it was complete (a rule's preview undercounted what
    the rule then alerts on). The text here takes the pattern seconds, whatever the machine."""
    query = "/[^!]*!!!|match/"
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await bait(store, " match here", "Fast one", "just a match")
        found = await search(store, query, limit=10)
        assert ([h.article.title for h in found], found.truncated) == (["Fast one"], True)
        # A pattern quick over the same text: complete.
        quick = await search(store, "/match/", limit=10)
        assert ([h.article.title for h in quick], quick.truncated) == (
            ["Quadratic bait", "Fast one"], False)


async def test_a_regex_out_of_time_where_it_changes_nothing_leaves_the_lookup_complete(
        tmp_path: Path) -> None:
    """Out of time on an article that matches through another branch of an OR, or under a
    NOT (where out of time counts as not matching, for a rule alike), a regex leaves out no
    article: the answer is complete and says so (it said the lookup ran out of time)."""
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await bait(store, " here", "Other bait", "short")
        for query in ("bait OR /[^!]*!!!|zzzq/", "bait -/[^!]*!!!|zzzq/"):
            found = await search(store, query, limit=10)
            assert ([h.article.title for h in found], found.truncated) == (
                ["Quadratic bait", "Other bait"], False), query
