"""The SQLite places index: filled with every article stored, read by lookups; an article a
tool wrote without its places is placed by its words (found, less narrowly); a store from
before the index is looked up through the word index until a writer with the engine's places
rebuilds, which leaves the word index empty."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from watchers.models import Article
from watchers.rules import match_query
from watchers.rules.lookup import index_terms, places_of, url_terms
from watchers.rules.text import KEYS_VERSION
from watchers.search import search
from watchers.store import SqliteStore
from watchers.store.base import ArticleRecord
from watchers.store.sqlite import schema

# Three in four hold both words of the phrase apart; one in four holds the phrase.
TITLES = ["Prime minister resigns", "Minister visits the prime site", "Rates: prime and minister",
          "The prime rate and the minister"]
QUERIES = ['"prime minister"', "title:resigns", "minister NEAR/1 prime", '"the minister"',
           "prime"]


def _articles(n: int = 40) -> list[Article]:
    return [Article(source="s", title=f"{TITLES[i % 4]} {i}", text=f"Report number {i}.",
                    url=f"https://ex.org/{i}") for i in range(n)]


def _record(a: Article, *, places: bool) -> ArticleRecord:
    return ArticleRecord(a, [], [], index_terms(a.title, a.text), url_terms=url_terms(a.url),
                         places=places_of(a.title, a.text) if places else None)


def _gaps(path: Path) -> set[int]:
    with sqlite3.connect(path) as conn:
        return {g for (g,) in conn.execute(f"SELECT gap FROM {schema.PLACES_INCOMPLETE}")}


async def _answers(store: SqliteStore, arts: list[Article]) -> dict[str, int]:
    """Each query's articles read (the answers checked against a full scan)."""
    scanned = {}
    for query in QUERIES:
        found = await search(store, query, limit=1000)
        expected = {a.title for a in arts if match_query(query, a) is not None}
        assert {h.article.title for h in found} == expected, query
        scanned[query] = found.scanned
    return scanned


async def test_an_article_without_its_places_is_found_by_its_words(tmp_path: Path) -> None:
    arts = _articles()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        await store.record_many([_record(a, places=True) for a in arts])
        placed = await _answers(store, arts)
        # A phrase reads the ten articles that hold it, not the forty with both words.
        assert placed['"prime minister"'] == 10
        assert placed["title:resigns"] == 10
        # One article written without its places (a tool that gives words alone): placed by
        # its words, it is still found, and read, as a candidate of every query of its words.
        extra = Article(source="s", title="Minister and prime returns", text="Late news.")
        await store.record_many([_record(extra, places=False)])
        assert _gaps(tmp_path / "nw.db") == set()
        unplaced = await _answers(store, [*arts, extra])
        assert unplaced['"prime minister"'] == 11 and unplaced["title:resigns"] == 10
    assert _word_index(tmp_path / "nw.db") == 0


def _word_index(path: Path) -> int:
    """Rows of the word index (read only while the places index misses older articles)."""
    with sqlite3.connect(path) as conn:
        (n,) = conn.execute("SELECT count(*) FROM article_index_docsize").fetchone()
        return int(n)


async def test_a_store_opened_with_places_of_fills_the_records_without_them(
        tmp_path: Path) -> None:
    arts = _articles(8)
    async with await SqliteStore.open(tmp_path / "nw.db", places_of=places_of) as store:
        await store.record_many([_record(a, places=False) for a in arts])
        assert (await _answers(store, arts))['"prime minister"'] == 2


async def test_an_article_indexed_through_the_view_is_placed_by_its_words(
        tmp_path: Path) -> None:
    path = tmp_path / "nw.db"
    arts = _articles(4)
    async with await SqliteStore.open(path) as store:
        await store.record_many([_record(a, places=True) for a in arts[:3]])
    with sqlite3.connect(path) as conn:
        a = arts[3]
        conn.execute("INSERT INTO articles (id, source, title, text, fetched_at, sort_at, "
                     "content_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (a.id, a.source, a.title, a.text, "2026-01-01T00:00:00.000000Z",
                      "2026-01-01T00:00:00.000000Z", a.content_hash))
        (rowid,) = conn.execute("SELECT rowid FROM articles WHERE id = ?", (a.id,)).fetchone()
        conn.execute("INSERT INTO article_terms (rowid, terms) VALUES (?, ?)",
                     (rowid, index_terms(a.title, a.text)))
    assert _gaps(path) == set() and _word_index(path) == 0
    async with await SqliteStore.open(path) as store:
        assert (await _answers(store, arts))["title:resigns"] == 1


def _as_schema_16(path: Path) -> None:
    view, trigger = schema.ARTICLE_TERMS.split("\nCREATE TRIGGER")
    with sqlite3.connect(path) as conn:
        conn.executescript("DROP TABLE article_places; DROP TABLE article_places_incomplete; "
                           "DROP TABLE article_places_inexact; "
                           "DROP TRIGGER article_terms_insert; DROP VIEW article_terms; "
                           + view + "CREATE TRIGGER" + trigger + "PRAGMA user_version=16;"
                           "ALTER TABLE matches DROP COLUMN retired;")  # (schema 18)


async def test_a_store_from_before_the_places_index_is_rebuilt_by_the_engine(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "nw.db"
    arts = _articles()
    async with await SqliteStore.open(path, terms_of=index_terms,
                                      keys_version=KEYS_VERSION) as store:
        await store.record_many([_record(a, places=True) for a in arts[:36]])
    # As schema 16 left it: no places index, the words in the word index.
    _as_schema_16(path)
    with sqlite3.connect(path) as conn:
        for a in arts[:36]:
            conn.execute(f"INSERT INTO article_index (rowid, terms) SELECT "
                         f"{schema.INDEX_KEY_SQL}, ? FROM articles a WHERE a.id = ?",
                         (index_terms(a.title, a.text), a.id))
    with caplog.at_level(logging.INFO, logger="watchers.store"):
        # Upgraded by a writer without the engine's places: marked, read through the word
        # index, which its writes keep filling.
        async with await SqliteStore.open(path) as store:
            assert _gaps(path) == {1}
            await store.record_many([_record(a, places=True) for a in arts[36:]])
            assert (await _answers(store, arts))['"prime minister"'] == 40
        async with await SqliteStore.open(path, terms_of=index_terms, keys_version=KEYS_VERSION,
                                          places_of=places_of) as store:
            assert _gaps(path) == set()
            assert (await _answers(store, arts))['"prime minister"'] == 10
    assert _word_index(path) == 0
    said = [r.getMessage() for r in caplog.records]
    assert any("the places index (schema 17) is filled by the next rebuild" in m for m in said)
    assert any("rebuilding the lookup indexes of 40 stored articles to fill the places index"
               in m for m in said)


async def test_a_lookup_across_the_swap_of_the_rebuild_reads_the_places_index(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A page chose the word index (the store waited for its rebuild), then read its keys: a
    # rebuild's swap between the two emptied the word index, and the lookup answered nothing,
    # as if complete.
    from watchers.store.sqlite.articles import ArticlesMixin

    path = tmp_path / "nw.db"
    arts = _articles(12)
    async with await SqliteStore.open(path, terms_of=index_terms,
                                      keys_version=KEYS_VERSION) as store:
        await store.record_many([_record(a, places=True) for a in arts])
    _as_schema_16(path)
    with sqlite3.connect(path) as conn:
        for a in arts:
            conn.execute(f"INSERT INTO article_index (rowid, terms) SELECT "
                         f"{schema.INDEX_KEY_SQL}, ? FROM articles a WHERE a.id = ?",
                         (index_terms(a.title, a.text), a.id))
    async with await SqliteStore.open(path) as store:  # upgraded, waiting for its rebuild
        pass
    assert _gaps(path) == {1}
    read_keys = ArticlesMixin._keys
    swapped = False

    async def keys_after_a_swap(self: ArticlesMixin, *args: object) -> list[int]:
        nonlocal swapped
        if not swapped:
            swapped = True
            async with await SqliteStore.open(path, terms_of=index_terms,
                                              keys_version=KEYS_VERSION, places_of=places_of):
                pass  # the engine's open: rebuilds and swaps
            assert _gaps(path) == set()
        return await read_keys(self, *args)  # type: ignore[arg-type]

    async with await SqliteStore.open(path, readonly=True) as reader:
        monkeypatch.setattr(ArticlesMixin, "_keys", keys_after_a_swap)
        found = await search(reader, "prime", limit=100)
    assert swapped
    expected = {a.title for a in arts if match_query("prime", a) is not None}
    assert {h.article.title for h in found} == expected and not found.truncated


async def test_a_rebuild_without_the_engines_places_places_articles_by_their_words(
        tmp_path: Path) -> None:
    path = tmp_path / "nw.db"
    arts = _articles(12)
    async with await SqliteStore.open(path, terms_of=index_terms, keys_version=1) as store:
        await store.record_many([_record(a, places=True) for a in arts])
    # Other keys, rebuilt by a writer with the engine's words but not its places: every
    # article placed by its words, and the store says so ...
    async with await SqliteStore.open(path, terms_of=index_terms,
                                      keys_version=KEYS_VERSION) as store:
        assert _gaps(path) == {2}
        assert (await _answers(store, arts))['"prime minister"'] == 12
    # ... so the next writer with them rebuilds, and lookups narrow again.
    async with await SqliteStore.open(path, terms_of=index_terms, keys_version=KEYS_VERSION,
                                      places_of=places_of) as store:
        assert _gaps(path) == set()
        assert (await _answers(store, arts))['"prime minister"'] == 3


@pytest.mark.parametrize("opened", ["places", "terms", "both"])
async def test_an_article_changed_in_place_is_looked_up_by_its_new_words(
        tmp_path: Path, opened: str) -> None:
    # A feed rewrote its item: lookups read the new title and text, not what the index was
    # told of the old ones (a phrase reworded, a word moved out of the title, one removed).
    kw: dict[str, object] = {}
    if opened in ("places", "both"):
        kw["places_of"] = places_of
    if opened in ("terms", "both"):
        kw["terms_of"] = index_terms
    async with await SqliteStore.open(tmp_path / "nw.db", **kw) as store:  # type: ignore[arg-type]
        old = Article(source="s", guid="g1", url="https://ex.org/kyiv-blast",
                      title="Explosion in Kyiv, casualties feared",
                      text="Minister prime said little.")
        other = Article(source="s", guid="g2", title="Calm in Lviv", text="Nothing to say.")
        (stored, _) = await store.record_many([_record(old, places=True),
                                               _record(other, places=True)])
        assert stored is not None
        new = Article(source="s", guid="g1", url="https://ex.org/kyiv-blast",
                      title="Explosion in Kyiv, no casualties",
                      text="The prime minister said little; officials in Lviv agreed.")
        await store.record_change(stored.id, new, [])
        for query in ("kyiv NOT feared", '"prime minister"', "title:kyiv NOT title:feared",
                      "lviv", "officials", "url:blast AND officials"):
            found = await search(store, query, limit=10)
            expected = {a.title for a in (new, other) if match_query(query, a) is not None}
            assert {h.article.title for h in found} == expected, query
            assert expected, query
        # the old words no longer find it
        assert not (await search(store, '"minister prime"', limit=10)).hits


def _rowid(path: Path, article_id: str) -> int:
    with sqlite3.connect(path) as conn:
        (rowid,) = conn.execute("SELECT rowid FROM articles WHERE id = ?",
                                (article_id,)).fetchone()
        return int(rowid)


def _holding(path: Path, word: str) -> int:
    with sqlite3.connect(path) as conn:
        (n,) = conn.execute("SELECT count(*) FROM article_places WHERE article_places MATCH ?",
                            (f'"{word}"',)).fetchone()
        return int(n)


async def test_a_live_page_changed_again_and_again_keeps_one_row(tmp_path: Path) -> None:
    # The engine's store: the row is the places of the stored text, so each change replaces
    # it where it is: the article keeps its rowid (its order among its link's copies, and the
    # cursors of lookups under way), and the index holds one row of it, however many changes.
    path = tmp_path / "nw.db"
    async with await SqliteStore.open(path, terms_of=index_terms, keys_version=KEYS_VERSION,
                                      places_of=places_of) as store:
        page = Article(source="s", guid="live", title="Live: talks in Geneva",
                       text="Update 0: delegates arrive.")
        other = Article(source="s", guid="other", title="Weather", text="Rain.")
        (stored, _) = await store.record_many([_record(page, places=True),
                                               _record(other, places=True)])
        assert stored is not None
        first = _rowid(path, stored.id)
        text = page.text
        for i in range(1, 21):
            text = f"Update {i}: marker{i} noted. " + text
            await store.record_change(
                stored.id, Article(source="s", guid="live", title=page.title, text=text), [])
        assert _rowid(path, stored.id) == first
        assert _holding(path, "delegates") == 1  # one row of it, not 21
        assert _holding(path, "marker20") == 1 and _holding(path, "marker1") == 1
        found = await search(store, '"marker7 noted"', limit=10)
        assert [h.article.id for h in found] == [stored.id]
        assert (await search(store, "rain", limit=10)).hits[0].article.id == other.id


async def test_a_change_of_an_article_placed_by_its_words_indexes_it_anew(
        tmp_path: Path) -> None:
    # Its row is not the places of its text (a tool wrote words alone): it cannot be replaced
    # in place, so the article moves to the next rowid and is indexed there.
    path = tmp_path / "nw.db"
    old = Article(source="s", guid="g", title="Minister prime said", text="Old words.")
    async with await SqliteStore.open(path, terms_of=index_terms,
                                      keys_version=KEYS_VERSION) as store:
        (stored,) = await store.record_many([_record(old, places=False)])
        assert stored is not None
    with sqlite3.connect(path) as conn:
        assert conn.execute(f"SELECT article FROM {schema.PLACES_INEXACT}").fetchall() == [(1,)]
    async with await SqliteStore.open(path, terms_of=index_terms, keys_version=KEYS_VERSION,
                                      places_of=places_of) as store:
        before = _rowid(path, stored.id)
        new = Article(source="s", guid="g", title="The prime minister said", text="New words.")
        await store.record_change(stored.id, new, [])
        assert _rowid(path, stored.id) > before
        with sqlite3.connect(path) as conn:
            listed = {r for (r,) in conn.execute(f"SELECT article FROM {schema.PLACES_INEXACT}")}
        assert listed == set()  # its new row is its places
        for query, hit in (('"prime minister"', True), ('"minister prime"', False),
                           ("title:prime NOT old", True)):
            assert bool((await search(store, query, limit=5)).hits) is hit, query


async def _stopped_rebuild(path: Path, arts: list[Article], *, places: bool,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A store of other keys whose rebuild stopped after its first chunk of 5 articles."""
    async with await SqliteStore.open(path, terms_of=index_terms, keys_version=1) as store:
        await store.record_many([_record(a, places=True) for a in arts])
    monkeypatch.setattr(schema, "REKEY_CHUNK", 5)
    chunk = schema._rekey_chunk
    calls = 0

    def one_chunk(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise ValueError("tokeniser broke")
        return chunk(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(schema, "_rekey_chunk", one_chunk)
    kw = {"places_of": places_of} if places else {}
    with pytest.raises(ValueError, match="tokeniser broke"):
        await SqliteStore.open(path, terms_of=index_terms, keys_version=KEYS_VERSION,
                               **kw)  # type: ignore[arg-type]
    monkeypatch.setattr(schema, "_rekey_chunk", chunk)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT after FROM index_keys").fetchone()[0] > 0


async def test_a_rebuild_begun_without_places_and_finished_with_them_is_not_taken_as_exact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Its first chunk was placed by words: the engine finishing it must not replace those rows
    # in place as if they were places (a contentless delete with other values corrupts).
    path = tmp_path / "nw.db"
    arts = _articles(12)
    await _stopped_rebuild(path, arts, places=False, monkeypatch=monkeypatch)
    async with await SqliteStore.open(path, terms_of=index_terms, keys_version=KEYS_VERSION,
                                      places_of=places_of) as store:
        assert _gaps(path) == {2}  # the next writer with the places rebuilds again
        first = _rowid(path, arts[0].id)
        changed = Article(source="s", guid=arts[0].guid, url=arts[0].url,
                          title="Weather in Oslo", text="Sun.")
        await store.record_change(arts[0].id, changed, [])
        assert _rowid(path, arts[0].id) > first  # indexed anew, not replaced in place
        assert [h.article.id for h in await search(store, "oslo", limit=5)] == [arts[0].id]
        await _answers(store, [changed, *arts[1:]])
    async with await SqliteStore.open(path, terms_of=index_terms, keys_version=KEYS_VERSION,
                                      places_of=places_of) as store:
        assert _gaps(path) == set()
        assert (await _answers(store, [changed, *arts[1:]]))['"prime minister"'] == 2


async def test_a_change_while_a_rebuild_is_under_way_has_the_next_writer_rebuild(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The rebuild may have indexed the article's old text already: its swap cannot vouch for
    # that row, whichever writer made the change.
    path = tmp_path / "nw.db"
    arts = _articles(12)
    await _stopped_rebuild(path, arts, places=True, monkeypatch=monkeypatch)
    changed = Article(source="s", guid=arts[0].guid, url=arts[0].url,
                      title="Weather in Oslo", text="Sun.")
    async with await SqliteStore.open(path) as store:  # a tool: neither words nor places
        await store.record_change(arts[0].id, changed, [])
    async with await SqliteStore.open(path, terms_of=index_terms, keys_version=KEYS_VERSION,
                                      places_of=places_of) as store:
        assert _gaps(path) == {2}
    async with await SqliteStore.open(path, terms_of=index_terms, keys_version=KEYS_VERSION,
                                      places_of=places_of) as store:
        assert _gaps(path) == set()
        assert [h.article.id for h in await search(store, "oslo", limit=5)] == [arts[0].id]
        await _answers(store, [changed, *arts[1:]])


async def test_a_change_by_a_writer_that_reads_no_text_has_the_next_writer_rebuild(
        tmp_path: Path) -> None:
    # A tool with neither the engine's words nor its places cannot index the new text: the
    # article kept its old row, and no later writer rebuilt it, so its new words never found
    # it (whoever opened the store next).
    path = tmp_path / "nw.db"
    arts = _articles(12)
    async with await SqliteStore.open(path, terms_of=index_terms, keys_version=KEYS_VERSION,
                                      places_of=places_of) as store:
        await store.record_many([_record(a, places=True) for a in arts])
    changed = Article(source="s", guid=arts[0].guid, url=arts[0].url,
                      title="Ceasefire in Lviv", text="Officials agreed.")
    async with await SqliteStore.open(path) as store:  # a tool: neither words nor places
        await store.record_change(arts[0].id, changed, [])
    assert _gaps(path) == {2}
    async with await SqliteStore.open(path, terms_of=index_terms, keys_version=KEYS_VERSION,
                                      places_of=places_of) as store:
        assert _gaps(path) == set()
        for query in ("lviv", "officials", "title:lviv", '"ceasefire in lviv"'):
            assert [h.article.id for h in await search(store, query, limit=5)] == [
                arts[0].id], query
        await _answers(store, [changed, *arts[1:]])


LARGE = ['"' + " ".join(["kyiv"] * 200) + '"',  # an aliased word 200 times: 6**200 spellings
         '"' + " ".join(f"w{i}" for i in range(1000)) + '"',
         " NEAR/5 ".join(["kyiv"] * 8),
         '"' + "kyiv " * 30 + '" NEAR/3 "' + "prime minister " * 30 + '"',
         " AND ".join(f'"the {w}"' for w in ["prime", "minister", "said"] * 100),
         " OR ".join(f'title:"kyiv talks {i}"' for i in range(300)),
         "kyiv NOT (" + " OR ".join(f"w{i}" for i in range(1000)) + ")",
         '"^kyiv" "near(a b)" "kyiv: talks" title:"a:b" "\u00a0kyiv\u200d talks"',
         '"prime minister" NEAR/2 "said kyiv" AND NOT title:w7']


async def test_large_and_odd_queries_read_the_places_index_as_a_full_scan_does(
        tmp_path: Path) -> None:
    # Queries a careless user or an attacker writes: thousands of words, a phrase of one
    # aliased word, FTS5's own syntax inside quotes. Each is one FTS5 query the index accepts,
    # and finds what a full scan finds.
    arts = [Article(source="s", guid=str(i), title=f"Kyiv talks {i}",
                    text="The prime minister said kyiv kyiv. " * 40 + f"w{i}") for i in range(12)]
    async with await SqliteStore.open(tmp_path / "nw.db", places_of=places_of) as store:
        await store.record_many([_record(a, places=True) for a in arts])
        for query in LARGE:
            found = await search(store, query, limit=100)
            expected = {a.title for a in arts if match_query(query, a) is not None}
            assert {h.article.title for h in found} == expected, query[:60]
            assert not found.truncated, query[:60]


async def test_words_past_what_the_matcher_reads_rule_nothing_out(tmp_path: Path) -> None:
    # A page larger than the matcher reads (its text is cut): a word past the cut is no word
    # of the article to the matcher, so the index must not rule the article out by it.
    from watchers.models import MAX_MATCH_CHARS, matchable

    big = Article(source="s", guid="big", title="Kyiv briefing",
                  text="Kyiv said little. " + "filler " * (MAX_MATCH_CHARS // 7) + "minister")
    async with await SqliteStore.open(tmp_path / "nw.db", places_of=places_of) as store:
        await store.record_many([_record(big, places=False)])
        for query in ("kyiv NOT minister", "kyiv NOT (minister OR title:x)"):
            assert match_query(query, matchable(big)) is not None  # as lookups match it
            assert [h.article.id for h in await search(store, query, limit=5)] == [big.id]
