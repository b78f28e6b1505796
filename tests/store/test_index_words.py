"""The lookup index's word list, on both backends: a stored article's words are listed in the
transaction that indexes it (not when it rolls back), a reader reads on from its cursor and
misses none, and a fuzzy lookup goes through it to exactly the articles a full scan finds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.store._support import art, put, rule
from watchers.errors import StoreError
from watchers.rules import match_query
from watchers.rules.lookup import index_terms
from watchers.search import search
from watchers.store import ArticleRecord, OutboxEntry, SqliteStore


async def _words(store: SqliteStore, after: int = 0) -> tuple[set[str], int]:
    listed = await store.index_words(after=after)
    assert listed is not None
    return set(listed[0]), listed[1]


async def test_stored_words_are_listed_and_read_on_from_the_cursor(store: SqliteStore) -> None:
    assert (await _words(store))[0] == set()
    await put(store, art("Kyiv talks", "Troops near Kharkiv."))
    words, cursor = await _words(store)
    assert {"kyiv", "talk", "talks", "troop", "troops", "near", "kharkiv"} <= words
    await put(store, art("Kiew und Charkiw", "Truppen."))
    later, cursor2 = await _words(store, cursor)
    # What was listed since the cursor is read (a word read twice is harmless).
    assert {"kiew", "charkiw", "truppen"} <= later
    assert (await _words(store, 0))[0] == words | later
    assert {"kiew", "charkiw"}.isdisjoint((await _words(store, cursor2))[0])


async def test_words_are_listed_exactly_when_their_article_is_stored(store: SqliteStore) -> None:
    # Writes cancelled at different points (a shutdown, a timeout): each article and its words
    # commit together or not at all.
    names = [f"Zorya{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(24)]
    for i, name in enumerate(names):
        a = art(f"{name} reported", "Details follow.")
        task = asyncio.create_task(put(store, a))
        for _ in range(i % 6):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    words, _ = await _words(store)
    stored = {a.title for a in await store.candidates(fts=None, limit=100)}
    for name in names:
        assert (name.lower() in words) == (f"{name} reported" in stored), name
    # Stored again, the articles a cancellation kept out list their words now: the store
    # remembers only words it committed.
    for name in names:
        await put(store, art(f"{name} reported", "Details follow."))
    words, _ = await _words(store)
    assert {name.lower() for name in names} <= words


async def test_a_batch_that_fails_after_listing_its_words_lists_none(store: SqliteStore) -> None:
    doomed = art("Zaporizhzhia plant", "Inspectors arrive.")
    # An outbox row without a route fails the batch at its last statement, after its words
    # went into the word list: they go with the rollback, and the store does not remember them.
    bad_entry = OutboxEntry(None, (rule(),))  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        await store.record_many([ArticleRecord(doomed, [], [bad_entry],
                                               index_terms(doomed.title, doomed.text))])
    assert "zaporizhzhia" not in (await _words(store))[0]
    await put(store, doomed)
    assert "zaporizhzhia" in (await _words(store))[0]


@pytest.mark.parametrize("query", ["kyiv~", "kharkiv~ AND shelled", "qqxzv~"])
async def test_a_fuzzy_lookup_finds_exactly_what_a_full_scan_finds(store: SqliteStore,
                                                                   query: str) -> None:
    arts = [art("Kiev talks resume"), art("Київ under fire"), art("Kyjiw und Charkiw shelled"),
            art("Kharkov shelled again"), art("Kivu province floods"), art("Troops in Lviv")]
    arts += [art(f"Market report {i}", "Shares and bonds.") for i in range(30)]
    for a in arts:
        await put(store, a)
    expected = {a.title for a in arts if match_query(query, a) is not None}
    found = await search(store, query, limit=100)
    assert {h.article.title for h in found} == expected
    assert found.scanned <= len(expected) + 2  # the market reports are never read


async def test_the_list_is_read_in_order_and_a_word_holding_a_line_break_whole(
        tmp_path: Path) -> None:
    # The list is read as one string split at line breaks (a million words as rows took
    # seconds): a word that holds one (a tool may list any text) has it read as rows.
    import sqlite3

    path = tmp_path / "nw.db"
    async with await SqliteStore.open(path) as store:
        await put(store, art("Kyiv talks", "Troops near Kharkiv."))
        words, cursor = await store.index_words() or ([], 0)
    with sqlite3.connect(path) as conn:
        listed = [w for (w,) in conn.execute("SELECT word FROM index_words ORDER BY rowid")]
        conn.execute("INSERT INTO index_words (word) VALUES ('two\nlines'), ('zzz')")
    assert words == listed
    async with await SqliteStore.open(path, readonly=True) as store:
        later = await store.index_words(after=cursor)
        assert later is not None and later[0] == ["two\nlines", "zzz"]
        assert (await store.index_words(after=later[1])) == ([], later[1])
        whole = await store.index_words()
        assert whole is not None and whole[0] == [*listed, "two\nlines", "zzz"]
