"""A store whose lookup indexes hold another version of the word keys rebuilds them when a
writer opens it with the engine's words: chunk by chunk, resumable after an interruption,
nothing but the indexes written; a reader refuses it until then."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from watchers.errors import StoreError
from watchers.models import Article
from watchers.rules.lookup import index_terms, url_terms
from watchers.rules.text import KEYS_VERSION
from watchers.store import SqliteStore
from watchers.store.base import ArticleRecord
from watchers.store.sqlite import schema

TEXTS = ["Les frappes sur l\u2019Ukraine", "İstanbul'da patlama", "Lech Wałęsa przemawiał",
         "Le sommet de l'OTAN", "København i dag"]
WORDS = ["ukraine", "istanbul", "walesa", "otan", "kobenhavn"]


def _old_terms(title: str, text: str) -> str:
    """Index words as keys of version 1 had them: no part at an apostrophe, no letter folded."""
    return " ".join(sorted({w.lower().replace("\u2019", "").replace("'", "")
                            for w in f"{title} {text}".split()}))


async def _old_store(path: Path, n: int = 40) -> list[Article]:
    arts = [Article(source="s", title=f"{TEXTS[i % len(TEXTS)]} {i}", text=f"body {i}",
                    url=f"https://ex.org/{i}") for i in range(n)]
    store = await SqliteStore.open(path, terms_of=_old_terms, keys_version=1)
    try:
        await store.record_many([ArticleRecord(a, [], [], _old_terms(a.title, a.text),
                                               url_terms=url_terms(a.url)) for a in arts])
    finally:
        await store.aclose()
    return arts


def _found(path: Path, word: str) -> int:
    with sqlite3.connect(path) as conn:
        (n,) = conn.execute("SELECT count(*) FROM article_places WHERE article_places MATCH ?",
                            (f'"{word}"',)).fetchone()
        return int(n)


def _state(path: Path) -> tuple[int, int | None, int]:
    with sqlite3.connect(path) as conn:
        version, building, after = conn.execute(
            "SELECT version, building, after FROM index_keys").fetchone()
        return int(version), building, int(after)


async def test_a_writer_rebuilds_indexes_of_older_keys(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "nw.db"
    arts = await _old_store(path)
    assert _state(path) == (1, None, 0)
    assert all(_found(path, w) == 0 for w in WORDS)
    with caplog.at_level(logging.INFO, logger="watchers.store"):
        store = await SqliteStore.open(path, terms_of=index_terms, keys_version=KEYS_VERSION)
    await store.aclose()
    assert any("rebuilding the lookup indexes of 40 stored articles" in r.getMessage()
               for r in caplog.records)
    assert _state(path) == (KEYS_VERSION, None, 0)
    for w in WORDS:
        assert _found(path, w) == 8, w
    with sqlite3.connect(path) as conn:
        listed = {w for (w,) in conn.execute("SELECT word FROM index_words")}
        assert set(WORDS) <= listed
        (urls,) = conn.execute("SELECT count(*) FROM article_urls WHERE article_urls MATCH "
                               "'org'").fetchone()
        assert urls == len(arts)
        (stored,) = conn.execute("SELECT count(*) FROM articles").fetchone()
        assert stored == len(arts)
    # The next open has nothing to do.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="watchers.store"):
        store = await SqliteStore.open(path, terms_of=index_terms, keys_version=KEYS_VERSION)
    await store.aclose()
    assert not any("rebuilding" in r.getMessage() for r in caplog.records)


async def test_an_interrupted_rebuild_goes_on_where_it_stopped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "nw.db"
    await _old_store(path, n=50)
    monkeypatch.setattr(schema, "REKEY_CHUNK", 10)
    calls = 0

    def failing(title: str, text: str) -> str:
        nonlocal calls
        calls += 1
        if calls > 25:  # in the third chunk (a title and a link each)
            raise RuntimeError("killed")
        return index_terms(title, text)

    with pytest.raises(RuntimeError):
        await SqliteStore.open(path, terms_of=failing, keys_version=KEYS_VERSION)
    version, building, after = _state(path)
    assert (version, building) == (1, KEYS_VERSION) and after > 0
    # The old indexes are still whole meanwhile, and nothing stored was lost.
    assert _found(path, "lukraine") == 10
    # A reader is told the rebuild is under way (it was told to run a writer, as if none had
    # begun, while run was rebuilding as it started).
    with pytest.raises(StoreError, match="are being rebuilt for this newswatch's word keys"):
        await SqliteStore.open(path, readonly=True, keys_version=KEYS_VERSION)
    counted: list[str] = []

    def counting(title: str, text: str) -> str:
        counted.append(title)
        return index_terms(title, text)

    store = await SqliteStore.open(path, terms_of=counting, keys_version=KEYS_VERSION)
    await store.aclose()
    assert _state(path) == (KEYS_VERSION, None, 0)
    assert len([t for t in counted if t]) < 50 * 2  # went on, not over from the start
    for w in WORDS:
        assert _found(path, w) == 10, w


async def test_a_reader_refuses_indexes_of_other_keys(tmp_path: Path) -> None:
    path = tmp_path / "nw.db"
    await _old_store(path, n=3)
    with pytest.raises(StoreError, match="word keys version 1"):
        await SqliteStore.open(path, readonly=True, keys_version=KEYS_VERSION)
    store = await SqliteStore.open(path, readonly=True)  # a reader that does not say: as before
    await store.aclose()


async def test_an_empty_store_takes_the_engines_version_at_once(tmp_path: Path) -> None:
    path = tmp_path / "nw.db"
    store = await SqliteStore.open(path, terms_of=index_terms, keys_version=KEYS_VERSION)
    await store.aclose()
    assert _state(path) == (KEYS_VERSION, None, 0)
    store = await SqliteStore.open(path, readonly=True, keys_version=KEYS_VERSION)
    await store.aclose()


async def test_a_schema_14_store_is_marked_as_holding_the_first_keys(tmp_path: Path) -> None:
    path = tmp_path / "nw.db"
    await _old_store(path, n=2)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE index_keys")
        conn.execute("ALTER TABLE stories DROP COLUMN source_outlets")  # schema 16
        conn.execute("ALTER TABLE matches DROP COLUMN retired")  # schema 18
        # schema 17: the places index, and the view's trigger as it was before
        conn.executescript("DROP TABLE article_places; DROP TABLE article_places_incomplete; "
                           "DROP TABLE article_places_inexact; "
                           "DROP TRIGGER article_terms_insert; DROP VIEW article_terms; "
                           + schema.ARTICLE_TERMS)
        conn.execute("PRAGMA user_version=14")
    store = await SqliteStore.open(path)
    await store.aclose()
    assert _state(path) == (1, None, 0)


async def test_a_store_written_without_a_keys_version_is_read_and_rebuilt_once(
        tmp_path: Path) -> None:
    """Version 0 (an opener that did not say which keys it wrote): a reader reads it as it is,
    the first writer that knows the engine's version rebuilds it."""
    path = tmp_path / "nw.db"
    store = await SqliteStore.open(path, terms_of=index_terms)
    try:
        a = Article(source="s", title=TEXTS[0], text="x")
        await store.record_many([ArticleRecord(a, [], [], index_terms(a.title, a.text))])
    finally:
        await store.aclose()
    assert _state(path) == (0, None, 0)
    store = await SqliteStore.open(path, readonly=True, keys_version=KEYS_VERSION)
    await store.aclose()
    store = await SqliteStore.open(path, terms_of=index_terms, keys_version=KEYS_VERSION)
    await store.aclose()
    assert _state(path) == (KEYS_VERSION, None, 0)
    assert _found(path, "ukraine") == 1
