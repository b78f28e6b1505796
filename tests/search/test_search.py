"""Lookups: the index narrows candidates, the matcher decides; the two paths always agree."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SEEDS, bbc_records
from watchers.models import Article
from watchers.rules import match_query
from watchers.rules.lookup import index_terms, places_of, url_terms
from watchers.search import search
from watchers.sources.folder import read_article_file
from watchers.store import SqliteStore

WORDS = ["troops", "troop", "kyiv", "kiev", "russia", "nato", "sanctions", "talks", "donbas",
         "cyberattack", "attack", "minister", "government", "election", "football", "bank",
         "oil", "prices", "moscow", "ukraine", "expansion", "border", "mobili*", "gov*",
         '"prime minister"', '"security guarantees"', "kyiv~", "sanctoins~", "/\\d{4}/",
         "title:troops", "text:kyiv", "title:gov*", "/ukrain(e|ian)/",
         # the index holds titles' and texts' words only; source: terms narrow the lookup to
         # the stored sources they accept
         "source:bbc", "source:seeds", "source:x", "source:bb*", "source:seed~",
         "source:/^b/", "source:reuters",
         # url: words, phrases and prefixes narrow through the URL index; fuzzy url: terms and
         # regexes do not
         "url:bbc", "url:reuters", 'url:"bbc co uk"', "url:kyiv",
         "url:київ", "url:cyberattack", "url:attack", "url:troop", "url:news*", "url:kyi*",
         "url:kyiv~", "url:/europe/", "url:world", "url:2005", "url:russia",
         # fuzzy terms of a word only a link or a source name holds (the index's word list has
         # titles' and texts' words): they found nothing
         "url:zorblx~", "url:zorblax~", "source:zorblaxnewz~",
         # regexes narrowed by the index words that hold a string they require
         "/kiev|kyiv/", "/troops?/", "title:/minist/", "/gov[a-z]+ment/",
         # regexes every match needs screen the rows the store reads
         "/\\d+ (troops|people)/", "text:/talks? (on|in)/", "/\\d{3}/",
         # phrases and fields the places index answers: compounds written apart or joined,
         # aliases, words in another field
         '"cyber attack"', '"the cyberattack"', '"russia ukraine"', 'title:"kiev talks"',
         '"troops at the border"', 'text:"prime minister"', '"the government"',
         'title:"cyber attack"', '"russia\'s troops"', '"mobili* of"']

NEAR_OK = [w for w in WORDS if "/" not in w]


def articles() -> list[Article]:
    arts = [read_article_file(p, source="seeds") for p in sorted(SEEDS.glob("*.txt"))]
    for i, d in enumerate(bbc_records(60)):
        slug = "-".join(re.findall(r"\w+", d["title"].lower())[:6])
        url = URLS[i % len(URLS)].format(id=d["id"], slug=slug) if i % 5 != 4 else None
        arts.append(Article(source="bbc", title=d["title"], text=d["text"], guid=d["id"],
                            url=url))
    arts.append(Article(source="x", title="Cyber attack on ministries", text="Russia’s troops.",
                        url="https://news.example.com/Cyber-Attacks/Russia's-troops?id=7"))
    arts.append(Article(source="x", title="Kiev talks", text="Київ said the cyber-attack ended.",
                        url="https://www.dw.com/uk/Київ-talks/a-2005%20x"))
    arts.append(Article(source="zorblaxnews", title="Troops at the border", text="Tanks too.",
                        url="https://www.zorblax.com/story/1"))
    return arts


# Links of the corpus articles (four in five have one): outlets, sections, slugs of the title.
URLS = ["https://www.bbc.co.uk/news/world-europe-{id}", "https://www.reuters.com/world/{slug}",
        "https://kyivindependent.com/{slug}/", "https://www.theguardian.com/world/2005/{slug}",
        "http://news.bbc.co.uk/2/hi/business/{id}.stm"]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("search") / "nw.db"


async def fill(db: Path) -> list[Article]:
    arts = articles()
    async with await SqliteStore.open(db) as store:
        if await store.count_articles() == 0:
            for a in arts:
                await store.record(a, [], [], terms=index_terms(a.title, a.text),
                                   url_terms=url_terms(a.url),
                                   places=places_of(a.title, a.text))
        return arts


queries = st.recursive(
    st.sampled_from(WORDS),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda t: f"({t[0]} AND {t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]} OR {t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]} NOT {t[1]})"),
        st.tuples(st.sampled_from(NEAR_OK), st.sampled_from(NEAR_OK)).map(
            lambda t: f"({t[0]} NEAR/5 {t[1]})"),
    ),
    max_leaves=4,
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(query=queries)
async def test_index_path_finds_exactly_what_a_full_scan_finds(db: Path, query: str) -> None:
    arts = await fill(db)
    expected = {a.title for a in arts if match_query(query, a) is not None}
    async with await SqliteStore.open(db) as store:
        hits = await search(store, query, limit=10_000)
    assert {h.article.title for h in hits} == expected


async def test_fuzzy_terms_of_a_link_or_a_source_find_what_a_full_scan_finds(
        tmp_path: Path) -> None:
    arts = await fill(tmp_path / "nw.db")
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        for query in ("url:zorblx~", "url:zorblax~", "source:zorblaxnewz~",
                      "source:zorblaxnews~", "troops url:zorblax~", "troops source:zorblaxnewz~",
                      '"the border" AND NOT url:zorblx~ OR url:zorblx~'):
            expected = {a.title for a in arts if match_query(query, a) is not None}
            assert expected == {"Troops at the border"}, query
            hits = await search(store, query, limit=10_000)
            assert {h.article.title for h in hits} == expected, query


async def test_search_orders_newest_or_best(tmp_path: Path) -> None:
    await fill(tmp_path / "nw.db")
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        newest = await search(store, "troops", limit=50)
        best = await search(store, "troops", limit=50, order="best")
    assert {h.article.id for h in newest} == {h.article.id for h in best}
    scores = [h.match.score for h in best]
    assert scores == sorted(scores, reverse=True)
    dated = [h.article.published for h in newest if h.article.published]
    assert dated == sorted(dated, reverse=True)


async def test_source_terms_read_only_the_sources_they_accept(tmp_path: Path) -> None:
    # 300 articles from three outlets: a source nobody stored answers without reading any
    # article; a stored one reads its own articles only, alone or beside a word; the caller's
    # own source filter and the term must agree.
    outlets = ["bbc-world", "dw", "npr"]
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        for i in range(300):
            a = Article(source=outlets[i % 3], title=f"Troops and talks {i}",
                        text=f"Story number {i} about the border.", guid=str(i),
                        published=datetime(2022, 1, 1, tzinfo=UTC) + timedelta(minutes=i))
            await store.record(a, [], [], terms=index_terms(a.title, a.text),
                                   url_terms=url_terms(a.url))
        assert await store.stored_sources() == sorted(outlets)
        assert await store.stored_sources(limit=2) == sorted(outlets)[:2]
        nobody = await search(store, "source:reuters", limit=10)
        assert (len(nobody), nobody.scanned, nobody.truncated) == (0, 0, False)
        for query in ("source:dw", "troops source:dw", "source:d*",
                      "talks -source:bbc -source:npr"):
            found = await search(store, query, limit=10)
            assert len(found) == 10, query
            assert found.scanned == 10, query
            assert {h.article.source for h in found} == {"dw"}, query
        both = await search(store, "source:bbc OR source:npr", limit=300)
        assert {h.article.source for h in both} == {"bbc-world", "npr"}
        assert len(both) == 200
        assert len(await search(store, "source:dw", source="npr", limit=10)) == 0
        assert len(await search(store, "source:dw", source="dw", limit=500)) == 100


async def test_a_source_regex_that_runs_out_of_time_reads_every_source(tmp_path: Path) -> None:
    # A catastrophic regex over the stored source names spends the narrowing's time budget:
    # the lookup then reads every source, as without narrowing, and still answers exactly.
    evil = "a" * 60 + "!"
    outlets = [evil, "dw", "aaaa"]
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        for i in range(30):
            a = Article(source=outlets[i % 3], title=f"Talks {i}", text="On the border.",
                        guid=str(i))
            await store.record(a, [], [], terms=index_terms(a.title, a.text),
                                   url_terms=url_terms(a.url))
        query = "talks source:/(a|aa)+$/"
        found = await search(store, query, limit=100)
        # The matcher gives up on the evil name too (its own budget): "aaaa" alone matches.
        assert {h.article.source for h in found} == {"aaaa"}
        assert len(found) == 10
        assert found.scanned == 30  # every source read: the narrowing gave up


async def test_more_source_names_than_are_judged_or_a_huge_source_term_answer_as_a_scan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Past the names a lookup judges it reads every source (as without narrowing); a source
    # term a thousand times longer than a name matches none of them and reads nothing. Either
    # way the answer is a full scan's.
    import watchers.search as search_mod

    outlets = [f"outlet-{i}" for i in range(6)]
    arts = [Article(source=outlets[i % 6], title=f"Talks {i}", text="On the border.",
                    guid=str(i)) for i in range(60)]
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        for a in arts:
            await store.record(a, [], [], terms=index_terms(a.title, a.text),
                                   url_terms=url_terms(a.url))
        monkeypatch.setattr(search_mod, "MAX_SOURCE_NAMES", 3)
        for query, scanned in (("talks source:outlet-2", 60),
                               ("source:" + "x" * 5000, 60),
                               ("talks source:" + "outlet" * 1000, 60)):
            found = await search(store, query, limit=100)
            expected = {a.title for a in arts if match_query(query, a) is not None}
            assert {h.article.title for h in found} == expected, query[:40]
            assert found.scanned == scanned and not found.truncated, query[:40]
        monkeypatch.setattr(search_mod, "MAX_SOURCE_NAMES", 5000)
        huge = await search(store, "source:" + "x" * 5000, limit=100)
        assert (len(huge), huge.scanned, huge.truncated) == (0, 0, False)
