"""Lookups on PostgreSQL answer exactly as a full scan, whichever way candidate pages read
the matches: walks of the date index, GIN reads, pages cut short at their cap and grown, pages
continuing a GIN read's positions, GIN reads bounded to a date window (and going on below
one that held too few). The caps are made tiny so that the small store of the
search tests (tests/search/test_search.py: its articles and query generator) takes many pages.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.search.test_search import articles, queries
from tests.store._support import assert_newest_of_all
from tests.store.test_pg_candidates import CHOICES, force, shrink
from watchers.models import Article
from watchers.rules import match_query
from watchers.rules.lookup import index_terms
from watchers.search import search
from watchers.store.postgres import PostgresStore


async def fill(store: PostgresStore) -> list[Article]:
    arts = articles()
    if await store.count_articles() == 0:
        for a in arts:
            await store.record(a, [], [], terms=index_terms(a.title, a.text))
    return arts


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(query=queries, choice=st.sampled_from(CHOICES), limit=st.sampled_from([1, 3, 8]))
async def test_lookups_on_postgresql_find_exactly_what_a_full_scan_finds(
        pg_database: str, monkeypatch: pytest.MonkeyPatch, query: str, choice: str,
        limit: int) -> None:
    shrink(monkeypatch, PAGE_CAP=2, PAGE_CAP_MAX=4, GIN_IDS=3,
           WALK_FIRST_MIN=2, WALK_FIRST_PER_ROW=1)
    force(monkeypatch, choice)
    async with await PostgresStore.open(pg_database) as store:
        arts = await fill(store)
        expected = {a.title for a in arts if match_query(query, a) is not None}
        # Tiny pages make many round trips: a budget no loaded machine runs out of.
        every = await search(store, query, limit=10_000, budget=50)
        newest = await search(store, query, limit=limit, budget=50)
    assert_newest_of_all(every, newest, expected, limit)
