"""Helpers for store tests: articles, matches, rule snapshots, and databases as older newswatch
versions left them."""

from __future__ import annotations

import gzip
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchers.config import RuleConfig
from watchers.models import Article, Hit, Match
from watchers.rules.lookup import index_terms
from watchers.search import Lookup
from watchers.store import OutboxEntry, SqliteStore
from watchers.store.base import sort_time

DATA = Path(__file__).resolve().parents[1] / "data" / "store"


def breaks_after(calls: int, terms_of: Callable[[str, str], str]) -> Callable[[str, str], str]:
    """``terms_of`` that raises ValueError("tokeniser broke") from its call number ``calls + 1``
    on: an upgrade that fails half-way."""
    made = 0

    def words(title: str, text: str) -> str:
        nonlocal made
        made += 1
        if made > calls:
            raise ValueError("tokeniser broke")
        return terms_of(title, text)

    return words


def art(title: str, text: str = "", **kw: Any) -> Article:
    return Article(title=title, text=text or f"{title} body text", source="feed", **kw)


def match(a: Article, rule: str = "troops") -> Match:
    return Match(rule=rule, article_id=a.id, score=1.0,
                 hits=(Hit(term="troops", field="title", start=0, end=6, text=a.title[:6]),))


def rule(name: str = "troops", query: str = "troops", **kw: Any) -> RuleConfig:
    return RuleConfig(name=name, query=query, **kw)


def alert(route: str = "alerts", *rules: RuleConfig, suppressed: bool = False) -> OutboxEntry:
    return OutboxEntry(route, rules or (rule(),), suppressed=suppressed)


async def put(store: SqliteStore, a: Article, matches: list[Match] | None = None,
              alerts: list[OutboxEntry] | None = None) -> Article | None:
    """Record an article with its index terms, as the watch service does."""
    return await store.record(a, matches or [], alerts or [],
                              terms=index_terms(a.title, a.text))


def legacy_v3(tmp_path: Path) -> Path:
    """A database written by newswatch at schema version 3 (see tests/data/store/README.md)."""
    target = tmp_path / "v3.db"
    with gzip.open(DATA / "v3.db.gz") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return target


# The first schema as it shipped (version 1), verbatim: a database created then is upgraded
# through every migration, including the lookup-index backfill.
SCHEMA_V1 = """
CREATE TABLE articles (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    guid TEXT,
    url TEXT,
    link_key TEXT,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    published TEXT,
    fetched_at TEXT NOT NULL,
    sort_at TEXT NOT NULL,
    content_hash TEXT NOT NULL UNIQUE
);
CREATE INDEX articles_guid ON articles(source, guid);
CREATE INDEX articles_link ON articles(link_key);
CREATE INDEX articles_sort ON articles(sort_at);
CREATE VIRTUAL TABLE articles_fts USING fts5(
    title, text, content='articles', content_rowid='rowid',
    tokenize="unicode61 remove_diacritics 2"
);
CREATE TRIGGER articles_ai AFTER INSERT ON articles BEGIN
    INSERT INTO articles_fts(rowid, title, text) VALUES (new.rowid, new.title, new.text);
END;
CREATE TRIGGER articles_ad AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts(articles_fts, rowid, title, text)
    VALUES ('delete', old.rowid, old.title, old.text);
END;
CREATE TABLE matches (
    article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    rule TEXT NOT NULL,
    score REAL NOT NULL,
    hits TEXT NOT NULL,
    matched_at TEXT NOT NULL,
    PRIMARY KEY (article_id, rule)
);
CREATE INDEX matches_rule ON matches(rule, matched_at);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    route TEXT NOT NULL,
    rules TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    nonce TEXT NOT NULL,
    next_attempt_at TEXT,
    remote_id TEXT,
    reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (article_id, route)
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at, id);
CREATE TABLE source_state (
    name TEXT PRIMARY KEY,
    cursor TEXT NOT NULL DEFAULT '{}',
    polls INTEGER NOT NULL DEFAULT 0,
    last_success TEXT,
    last_error TEXT,
    last_error_at TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    next_poll TEXT,
    paused INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE user_rules (
    name TEXT PRIMARY KEY,
    query TEXT NOT NULL,
    channel TEXT NOT NULL,
    severity TEXT NOT NULL,
    mention_role INTEGER,
    threshold INTEGER,
    created_by TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE user_sources (
    name TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    every_seconds REAL NOT NULL,
    created_by TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE mutes (
    rule TEXT PRIMARY KEY,
    until TEXT NOT NULL
);
PRAGMA user_version=1;
"""


def legacy_v1(path: Path) -> Path:
    """A version-1 database holding one article, one alert and one run-time rule."""
    con = sqlite3.connect(path)
    try:
        con.executescript(SCHEMA_V1)
        con.execute(
            "INSERT INTO articles (id, source, title, text, fetched_at, sort_at, content_hash) "
            "VALUES ('a1', 's', 'Troops move', 'Soldiers near Kharkiv', "
            "'2022-01-01T00:00:00.000000Z', '2022-01-01T00:00:00.000000Z', 'h1')")
        con.execute(
            "INSERT INTO outbox (article_id, route, rules, state, nonce, created_at, updated_at) "
            "VALUES ('a1', 'alerts', '[\"troops\"]', 'pending', 'n1', "
            "'2022-01-01T00:00:00.000000Z', '2022-01-01T00:00:00.000000Z')")
        con.execute(
            "INSERT INTO user_rules (name, query, channel, severity, created_at) "
            "VALUES ('troops', 'troops', 'alerts', 'medium', '2022-01-01T00:00:00.000000Z')")
        con.commit()
    finally:
        con.close()
    return path


def assert_newest_of_all(every: Lookup, newest: Lookup, expected: set[str], limit: int) -> None:
    """``every`` (a lookup with room for all) holds exactly the titles ``expected``, and
    ``newest`` (one of ``limit``) the newest of them: as many as there are up to the limit, all
    matches, newest first, and none older than a match left out."""
    assert not every.truncated and not newest.truncated
    assert sorted(h.article.title for h in every) == sorted(expected)
    titles = [h.article.title for h in newest]
    assert len(titles) == min(limit, len(expected)) and set(titles) <= expected
    times = [sort_time(h.article) for h in newest]
    assert times == sorted(times, reverse=True)
    if times:
        left = [sort_time(h.article) for h in every if h.article.title not in set(titles)]
        assert all(t <= times[-1] for t in left)


def words_indexed_as_before_17(con: sqlite3.Connection) -> None:
    """Fill the word index ``article_index`` with every stored article's words, as schema 16
    and before kept them (from 17 the places index holds them and the word index stays empty
    but while a store from before is rebuilt): for tests that make an older store of a new
    one."""
    from watchers.store.sqlite.schema import INDEX_KEY_SQL

    rows = con.execute("SELECT rowid, title, text FROM articles").fetchall()
    con.executemany(f"INSERT INTO article_index (rowid, terms) SELECT {INDEX_KEY_SQL}, ? "
                    "FROM articles a WHERE a.rowid = ?",
                    [(index_terms(title, text), rowid) for rowid, title, text in rows])
