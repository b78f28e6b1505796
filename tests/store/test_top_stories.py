"""The top stories a surge alert lists (``Store.top_stories``), on both backends: each story by
the title of the earliest of its articles the rule matched, so the alert names only what the
rule's readers may see — never the headline an article of a feed they do not follow gave the
story (another server's, or a server's for the config file's rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.store._support import art, match
from watchers.models import Article
from watchers.rules.lookup import index_terms
from watchers.store import Store
from watchers.store.base import ArticleRecord, StoryLink

T0 = datetime(2022, 1, 20, 9, 0, tzinfo=UTC)


def record(a: Article, story: str, outlet: str, *, rules: tuple[str, ...], minutes: int
           ) -> ArticleRecord:
    return ArticleRecord(a, [match(a, r) for r in rules], [], index_terms(a.title, a.text),
                         StoryLink(story, f"sig of {story}", outlet,
                                   T0 + timedelta(minutes=minutes)))


async def test_a_story_is_listed_by_the_first_article_its_rule_matched(store: Store) -> None:
    # server A's feed reports first (its rule alone matches it), then the shared feed twice
    first = art("Troops mass: A's own report", published=T0)
    shared = art("Troops mass at the border", published=T0 + timedelta(minutes=5))
    later = art("Troops still massing", published=T0 + timedelta(minutes=9))
    alone = art("Troops parade", published=T0 + timedelta(minutes=7))
    await store.record_many([
        record(first, "s1", "@a-desk", rules=("A:watch",), minutes=0),
        record(shared, "s1", "operator", rules=("A:watch", "troops"), minutes=5),
        record(alone, "s2", "operator", rules=("troops",), minutes=7),
        record(later, "s1", "operator", rules=("A:watch", "troops"), minutes=9),
    ], at=T0 + timedelta(minutes=10))
    story = await store.get_story("s1")
    assert story is not None and story.headline == first.title
    since = T0 - timedelta(hours=1)
    assert await store.top_stories("troops", since) == [(shared.title, 2), (alone.title, 1)]
    assert await store.top_stories("A:watch", since) == [(first.title, 3)]
