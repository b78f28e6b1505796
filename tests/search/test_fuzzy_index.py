"""Fuzzy lookups go through the lookup index's word list: the term expands to the stored words
it matches, so a lookup reads only the articles holding one of them and still finds exactly
what a full scan finds; the list follows every way an article is indexed."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.search.test_search import articles
from tests.store._support import breaks_after, words_indexed_as_before_17
from tests.store.test_schema import schema_of
from watchers.errors import QuerySyntaxError
from watchers.models import Article
from watchers.rules import match_query, shipped_aliases
from watchers.rules.lookup import MAX_FUZZY_WORDS, Vocabulary, index_terms
from watchers.search import Lookup, index_vocabulary, search
from watchers.store import SqliteStore
from watchers.store.sqlite.schema import _ARTICLE_TERMS_V5, SCHEMA_VERSION


async def _fill(path: Path, arts: list[Article]) -> None:
    async with await SqliteStore.open(path) as store:
        for a in arts:
            await store.record(a, [], [], terms=index_terms(a.title, a.text))


async def _looked_up(db: Path, query: str, limit: int) -> tuple[list[Article], set[str], Lookup]:
    """The corpus articles stored in ``db``, the titles a full scan matches, and the lookup."""
    arts = articles()
    await _fill(db, arts)
    expected = {a.title for a in arts if match_query(query, a) is not None}
    async with await SqliteStore.open(db) as store:
        found = await search(store, query, limit=limit)
    return arts, expected, found


@pytest.mark.parametrize("query", ["kyiv~", "sanctoins~", "kyiv~ AND talks",
                                   "minister OR zelensky~80", '"kyiv~ talks"',
                                   "troops NOT kyiv~", "talks AND NOT kiev~90"])
async def test_a_fuzzy_lookup_reads_only_articles_that_hold_a_matching_word(
        tmp_path: Path, query: str) -> None:
    arts, expected, found = await _looked_up(tmp_path / "nw.db", query, 10_000)
    assert {h.article.title for h in found} == expected
    assert not found.truncated
    if query == "kyiv~":
        assert len(expected) >= 2  # Kiev and Київ both found
    # Candidates are the articles holding a matching word, not every article.
    assert found.scanned < len(arts) // 2


async def test_words_stored_after_a_lookup_are_found_by_the_next(tmp_path: Path) -> None:
    db = tmp_path / "nw.db"
    await _fill(db, articles())
    async with await SqliteStore.open(db) as store:
        assert len(await search(store, "kharkiv~")) == 0
        late = Article(source="dw", title="Charkiw unter Beschuss", text="Die Stadt Charkiw.")
        await store.record(late, [], [], terms=index_terms(late.title, late.text))
        (hit,) = await search(store, "kharkiv~")
        assert hit.article.title == "Charkiw unter Beschuss"


async def test_a_fuzzy_term_no_stored_word_matches_reads_no_article(tmp_path: Path) -> None:
    await _fill(tmp_path / "nw.db", articles())
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        for query in ("qqxzv~", "qqxzv~ AND troops", '"qqxzv~ talks"'):
            found = await search(store, query)
            assert (len(found), found.scanned, found.truncated) == (0, 0, False), query
        # an OR with a findable branch still finds it
        assert len(await search(store, "qqxzv~ OR troops")) > 0


async def test_rows_indexed_through_the_view_list_their_words(tmp_path: Path) -> None:
    db = tmp_path / "nw.db"
    await _fill(db, [Article(source="x", title="one", text="two")])
    con = sqlite3.connect(db)
    with con:
        # An article written by a tool that indexes through the view, as older code did.
        con.execute("INSERT INTO articles (rowid, id, source, title, text, fetched_at, sort_at,"
                    " content_hash) VALUES (2, 'tool-1', 'tool', 'Kyjiw talks', 'In Kyjiw.',"
                    " '2022-01-20T10:00:00.000000Z', '2022-01-20T10:00:00.000000Z', 'h-tool-1')")
        con.execute("INSERT INTO article_terms (rowid, terms) VALUES (2, ?)",
                    ('kyjiw talk talks in odd"word back\\slash tab\there\nnewline  ',))
    words = {w for (w,) in con.execute("SELECT word FROM index_words")}
    con.close()
    assert {'odd"word', "back\\slash", "tab", "here", "newline", "kyjiw", "one", "two"} <= words
    assert "" not in words
    async with await SqliteStore.open(db) as store:
        (hit,) = await search(store, "kyiv~")
        assert hit.article.title == "Kyjiw talks"  # found through the word the view listed


def _as_version_10(db: Path) -> None:
    """The database as schema 10 left it: no word list, the view's trigger as it shipped (and
    no URL index, which came later)."""
    con = sqlite3.connect(db)
    with con:
        con.executescript("DROP TRIGGER article_terms_insert; DROP VIEW article_terms; "
                          "DROP TABLE index_words; DROP TABLE article_urls; "
                          "DROP TABLE article_urls_incomplete; DROP TABLE departed_servers; "
                          "DROP TABLE index_keys; DROP TABLE article_places; "
                          "DROP TABLE article_places_incomplete; "
                          "DROP TABLE article_places_inexact; "
                          "ALTER TABLE stories DROP COLUMN source_outlets;"
                          "ALTER TABLE matches DROP COLUMN retired;"
                          + _ARTICLE_TERMS_V5)
        words_indexed_as_before_17(con)
        con.execute("PRAGMA user_version=10")
    con.close()


@pytest.mark.parametrize("with_terms", [True, False], ids=["retokenised", "from-index"])
async def test_a_schema_10_store_lists_its_words_when_upgraded(
        tmp_path: Path, with_terms: bool, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "nw.db"
    arts = articles()
    await _fill(db, arts)
    _as_version_10(db)
    terms_of = index_terms if with_terms else None
    with caplog.at_level(logging.INFO, logger="watchers.store"):
        store = await SqliteStore.open(db, terms_of=terms_of)
    if with_terms:  # the long way says what it does and how far it got
        said = [r.getMessage() for r in caplog.records if "words" in r.getMessage()]
        assert f"{db}: listing the lookup index's words of {len(arts)} stored articles" in said[0]
        assert said[-1] == f"{db}: listed the words of {len(arts)} articles"
    async with store:
        listed = await store.index_words()
        assert listed is not None
        words, cursor = listed
        assert {"kiev", "kyiv", "troop", "sanction"} <= set(words) and cursor >= len(words)
        assert await store.index_words(after=cursor) == ([], cursor)
        found = await search(store, "kyiv~", limit=100)
    assert {h.article.title for h in found} == {
        a.title for a in arts if match_query("kyiv~", a) is not None}
    fresh = tmp_path / "fresh.db"
    await (await SqliteStore.open(fresh)).aclose()
    for path in (db, fresh):
        con = sqlite3.connect(path)
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        con.close()
    # As SQL compared past its spacing: a column a migration adds is written on its table's
    # last line.
    assert schema_of(db) == schema_of(fresh)


async def test_a_fuzzy_term_matching_hundreds_of_stored_words_still_equals_a_full_scan(
        tmp_path: Path) -> None:
    # Hundreds of one-letter typos of a name, each in its own article beside plain ones: past
    # MAX_FUZZY_WORDS the term leaves the index query open instead of asking for every word,
    # and either way the answer is the full scan's.
    name = "zelenskyy"
    letters = "abcdefghijklmnopqrstuvwxyz"
    typos = sorted({name[:i] + c + name[i + 1:] for i in range(len(name)) for c in letters}
                   | {name[:i] + c + name[i:] for i in range(len(name) + 1) for c in letters}
                   - {name})
    assert len(typos) > MAX_FUZZY_WORDS
    arts = [Article(source="x", title=f"{t} speaks", text="Address to parliament.")
            for t in typos]
    arts += [Article(source="x", title=f"Markets {i}", text="Shares fell.") for i in range(50)]
    await _fill(tmp_path / "nw.db", arts)
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        vocab = await index_vocabulary(store)
        assert vocab is not None
        accepted = vocab.matching(name, 85.0, shipped_aliases())
        assert len(accepted) > MAX_FUZZY_WORDS  # so the lookup reads newest first
        for query in (f"{name}~", f"{name}~ AND speaks", f"{name}~95"):
            expected = {a.title for a in arts if match_query(query, a) is not None}
            found = await search(store, query, limit=10_000)
            assert {h.article.title for h in found} == expected, query
            assert not found.truncated


@pytest.mark.parametrize("query", ["k" * 5000 + "yiv~", "q" * 5000 + "~", "k" * 5000 + "*",
                                   "/" + "k" * 2000 + "yiv/", "talks AND " + "z" * 5000 + "~80"])
async def test_terms_a_thousand_times_longer_than_a_word_answer_as_a_full_scan(
        tmp_path: Path, query: str) -> None:
    _, expected, found = await _looked_up(tmp_path / "nw.db", query, 100)
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        # (a regex past the size limit is refused by name, before the store is read)
        with pytest.raises(QuerySyntaxError, match="regular expression too large"):
            await search(store, "/" + "k" * 5000 + "yiv/")
    assert {h.article.title for h in found} == expected
    assert not found.truncated
    assert found.scanned <= len(expected)  # only articles holding a matching word are read


async def test_a_reader_sees_the_words_another_process_stores_after_its_first_lookup(
        tmp_path: Path) -> None:
    db = tmp_path / "nw.db"
    await _fill(db, articles())
    reader = await SqliteStore.open(db, lock=False, readonly=True)
    async with reader:
        assert len(await search(reader, "mykolaiv~")) == 0  # the reader now holds the list
        writer = await SqliteStore.open(db, lock=False)
        async with writer:
            late = Article(source="ua", title="Mykolajiw port shelled", text="At night.")
            await writer.record(late, [], [], terms=index_terms(late.title, late.text))
        (hit,) = await search(reader, "mykolaiv~")
        assert hit.article.title == "Mykolajiw port shelled"


async def test_an_upgrade_that_fails_half_way_changes_nothing_and_completes_later(
        tmp_path: Path) -> None:
    db = tmp_path / "nw.db"
    arts = articles()
    await _fill(db, arts)
    _as_version_10(db)
    with pytest.raises(ValueError, match="tokeniser broke"):
        await SqliteStore.open(db, terms_of=breaks_after(20, index_terms))
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 10
    assert con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'index_words'"
                       ).fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM articles").fetchone()[0] == len(arts)
    con.close()
    async with await SqliteStore.open(db, terms_of=index_terms) as store:
        found = await search(store, "kyiv~", limit=100)
    assert {h.article.title for h in found} == {
        a.title for a in arts if match_query("kyiv~", a) is not None}


async def test_a_query_of_thousands_of_fuzzy_terms_stops_at_its_budget_while_expanding(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Expanding each fuzzy term over the index's words came before the budget was first
    looked at: a query of 2,800 fuzzy terms (within the length limit) took 18-30 s on a
    year's store where the budget is 5. Now the expansion stops when the budget is spent and
    the lookup says it is partial."""
    db = tmp_path / "nw.db"
    await _fill(db, articles())
    expanded: list[str] = []
    real = Vocabulary.matching

    def counting(self: Vocabulary, key: str, threshold: float, aliases: Any) -> list[str]:
        expanded.append(key)
        return real(self, key, threshold, aliases)

    monkeypatch.setattr(Vocabulary, "matching", counting)
    query = " ".join(f"q{i}~" for i in range(2_800))  # within the length limit
    async with await SqliteStore.open(db) as store:
        whole = await search(store, "kyiv~ OR talks~", limit=5)
        assert not whole.truncated and expanded  # within the budget, expanded and answered
        expanded.clear()
        cut = await search(store, query, limit=5, budget=1e-9)
    assert cut.truncated and cut.hits == []
    assert len(expanded) < 2_800, "every term was expanded before the budget was looked at"


class _HeldExecutor(ThreadPoolExecutor):
    """Runs a lookup's term expansion in a thread of its own, held until ``go`` is set, and
    notes every word list two expansions worked on at the same time."""

    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.go = threading.Event()
        self.started = threading.Event()
        self.busy: list[int] = []
        self.shared: list[int] = []
        self._guard = threading.Lock()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        lists = [id(a) for a in args if isinstance(a, Vocabulary)]
        if not lists:  # not an expansion (the matching of candidates)
            return super().submit(fn, *args, **kwargs)
        vocab = lists[0]

        def held() -> Any:
            with self._guard:
                if vocab in self.busy:
                    self.shared.append(vocab)
                self.busy.append(vocab)
            self.started.set()
            self.go.wait(30)
            try:
                return fn(*args, **kwargs)
            finally:
                with self._guard:
                    self.busy.remove(vocab)
        return super().submit(held)


async def test_a_cancelled_fuzzy_lookup_leaves_the_next_its_own_word_list(
        tmp_path: Path) -> None:
    # A lookup cancelled (a timeout, Ctrl-C) while its thread expands its terms: the thread
    # goes on making the word list's keys. The next lookup sharing that list read it half made
    # (IndexError on every later fuzzy lookup of the store).
    db = tmp_path / "nw.db"
    await _fill(db, articles())
    held = _HeldExecutor()
    async with await SqliteStore.open(db) as store:
        expected = {h.article.title for h in await search(store, "kyiv~", limit=100)}
        first = asyncio.ensure_future(search(store, "kremlin~", executor=held))
        assert await asyncio.to_thread(held.started.wait, 30)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        second = asyncio.ensure_future(search(store, "kyiv~", limit=100, executor=held))
        await asyncio.sleep(0.2)  # the second expansion starts while the first still runs
        held.go.set()
        found = await asyncio.wait_for(second, 30)
        assert {h.article.title for h in found} == expected
        assert held.shared == []
        # and later lookups still work
        assert {h.article.title for h in await search(store, "kyiv~", limit=100)} == expected
    held.shutdown()


async def test_a_fuzzy_term_reads_no_article_for_a_word_it_matches_only_as_written(
        tmp_path: Path) -> None:
    # The index holds each word's key and, where it differs, the word as written: briain~
    # matches "britains" but not its key "britain", which is what the matcher compares, so
    # an article holding "Britains" is no candidate (it was, and the matcher refused it).
    arts = [Article(title=f"Two Britains {i} meet", text="", guid=f"b{i}") for i in range(30)]
    arts.append(Article(title="Briain meets the press", text="", guid="x"))
    await _fill(tmp_path / "nw.db", arts)
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        found = await search(store, "briain~", limit=10)
    assert [h.article.title for h in found] == ["Briain meets the press"]
    assert [a.title for a in arts if match_query("briain~", a) is not None] == [
        "Briain meets the press"]
    assert found.scanned == 1


def _engines_store(path: Path) -> Any:
    """The store at ``path`` opened as the engine opens it (its words, places and keys)."""
    from watchers.rules.lookup import places_of
    from watchers.rules.text import KEYS_VERSION

    return SqliteStore.open(path, terms_of=index_terms, keys_version=KEYS_VERSION,
                            places_of=places_of)


def record(a: Article) -> Any:
    """``a``'s record with its words and places, as the engine writes it."""
    from watchers.rules.lookup import places_of
    from watchers.store.base import ArticleRecord

    return ArticleRecord(a, [], [], index_terms(a.title, a.text),
                         places=places_of(a.title, a.text))


async def test_a_reader_open_across_a_rebuild_reads_the_new_word_list_whole(
        tmp_path: Path) -> None:
    # A rebuild lists the words afresh in a new table numbered from 1, with fewer rows than
    # the old one held (an article changed 30 times had listed each version's words); a
    # reader that had read the old list read on from its old rowid, and its fuzzy terms,
    # prefixes and regexes never found what was stored after the rebuild.
    path = tmp_path / "nw.db"

    def writer() -> Any:
        return _engines_store(path)

    async with await writer() as store:
        stored = await store.record_many([record(Article(
            source="s", guid=f"g{i}", title=f"Talks in Geneva {i}", text="Delegates arrive."))
            for i in range(20)])
        first = stored[0]
        assert first is not None
        for i in range(30):
            await store.record_change(first.id, Article(
                source="s", guid="g0", title="Talks in Geneva 0",
                text=f"Update uniqueword{i} noted."), [])
    with sqlite3.connect(path) as conn:  # as a copy without the engine's places leaves it
        conn.execute("INSERT INTO article_places_incomplete (gap, since) VALUES (2, 'x')")
        (before,) = conn.execute("SELECT count(*) FROM index_words").fetchone()
    async with await SqliteStore.open(path, readonly=True) as reader:
        assert [h.article.title for h in await search(reader, "geneve~", limit=1)]
        async with await writer() as store:  # rebuilds, then stores a new article
            with sqlite3.connect(path) as conn:
                (after,) = conn.execute("SELECT count(*) FROM index_words").fetchone()
            assert after < before
            await store.record_many([record(Article(
                source="s", guid="new", title="Zaporizhzhia plant shelled",
                text="IAEA inspectors report."))])
        for query in ("zaporizhia~", "zapori*", "/zaporiz+h/", "inspector~"):
            found = await search(reader, query, limit=5)
            assert [h.article.title for h in found] == ["Zaporizhzhia plant shelled"], query


@pytest.mark.parametrize("how", ["rebuilt", "changed"])
async def test_a_fuzzy_term_whose_key_is_several_words_is_found_after_a_rebuild_or_a_change(
        tmp_path: Path, how: str) -> None:
    # U+FDFA's key is four Arabic words: a rebuild and a change in place list it as its words,
    # never whole, and the fuzzy term expanded to nothing.
    path = tmp_path / "nw.db"
    prayer = Article(source="s", guid="g", title="Prayer \ufdfa peace", text="Body.")

    def writer() -> Any:
        return _engines_store(path)

    others = [Article(source="s", guid=f"o{i}", title=f"Talks {i}", text="Body.")
              for i in range(5)]
    async with await writer() as store:
        first = Article(source="s", guid="g", title="Nothing yet", text="Body.")
        (stored, *_) = await store.record_many(
            [record(prayer if how == "rebuilt" else first), *map(record, others)])
        assert stored is not None
        if how == "changed":
            await store.record_change(stored.id, prayer, [])
    if how == "rebuilt":
        with sqlite3.connect(path) as conn:
            conn.execute("INSERT INTO article_places_incomplete (gap, since) VALUES (2, 'x')")
        async with await writer():
            pass
    async with await SqliteStore.open(path, readonly=True) as store:
        for query in ("\ufdfa~", "title:\ufdfa~", "\ufdfa~ AND body"):
            assert match_query(query, prayer) is not None
            found = await search(store, query, limit=5)
            assert [h.article.title for h in found] == ["Prayer \ufdfa peace"], query


async def test_a_fuzzy_term_whose_alias_is_several_words_is_found(tmp_path: Path) -> None:
    # An alias whose key is several words (U+FDFA's) is never in the word list whole: the
    # term was narrowed to the words it found there, which missed the article.
    aliases = {"pbuh": ["\ufdfa"]}
    prayer = Article(source="s", guid="g", title="Prayer \ufdfa peace", text="Body.")
    others = [Article(source="s", guid=f"o{i}", title=f"Pbuh talks {i}", text="Body.")
              for i in range(3)]
    async with await _engines_store(tmp_path / "nw.db") as store:
        await store.record_many([record(a) for a in (prayer, *others)])
        table = shipped_aliases(aliases)
        for query in ("pbuh~", "pbuh", "title:pbuh~"):
            expected = {a.title for a in (prayer, *others)
                        if match_query(query, a, 85, table) is not None}
            assert "Prayer \ufdfa peace" in expected, query
            found = await search(store, query, limit=10, aliases=aliases)
            assert {h.article.title for h in found} == expected, query
