"""Articles, their matches, and lookup candidates.

Dedupe (``_duplicate_of``): an article is already known when a stored one has the same content
fingerprint, the same normalised link — unless both come from one source with different guids
and different titles (a live page's items share its link) — or the same (source, guid) — a guid
only when the links do not contradict it, since some feeds reuse one guid for distinct items.
Each of those is an indexed lookup, as is every query of ``get_article`` and ``matches_for``
(the per-alert path).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from watchers.models import Article, Hit, Match
from watchers.store.base import OutboxEntry
from watchers.store.sqlite._db import Db, Tx, dt, dump_model, iso, now
from watchers.urls import normalise_link

__all__ = ["ArticlesMixin", "prefix_successor"]

# Shortest id prefix that get_article resolves (what /article accepts).
MIN_PREFIX = 6

ARTICLE_COLS = "id, source, guid, url, title, text, published, fetched_at, content_hash"
# The same columns qualified, for queries that join articles (as ``a``) with another table.
ARTICLE_COLS_A = ", ".join("a." + c.strip() for c in ARTICLE_COLS.split(","))


def article_of(row: Iterable[Any]) -> Article:
    id_, source, guid, url, title, text, published, fetched_at, content_hash = row
    return Article(
        id=id_,
        source=source,
        guid=guid,
        url=url,
        title=title,
        text=text,
        published=dt(published),
        fetched_at=dt(fetched_at),
        content_hash=content_hash,
    )


def _match(article_id: str, rule: str, score: float, hits: str) -> Match:
    return Match(
        rule=rule,
        article_id=article_id,
        score=score,
        hits=tuple(Hit.model_validate(h) for h in json.loads(hits)),
    )


def prefix_successor(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix`` (in SQLite's
    BINARY order, which for UTF-8 is code point order); None if there is none."""
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        nxt = last + 1
        if 0xD800 <= nxt <= 0xDFFF:  # surrogates cannot be stored; skip past them
            nxt = 0xE000
        if nxt <= 0x10FFFF:
            return "".join(chars) + chr(nxt)
    return None


def _identity(article: Article) -> tuple[str | None, str]:
    link = normalise_link(article.url) if article.url else None
    return link, article.content_hash


async def _duplicate_of(conn: aiosqlite.Connection, article: Article) -> str | None:
    link, content = _identity(article)
    cur = await conn.execute("SELECT id FROM articles WHERE content_hash = ?", (content,))
    if row := await cur.fetchone():
        return str(row[0])
    if link:
        # One link is one article unless the items say otherwise: some outlets give every item
        # of a live page or a section front the same link, each with its own guid and title.
        cur = await conn.execute(
            "SELECT id, source, guid, title FROM articles WHERE link_key = ?", (link,))
        for other_id, other_source, other_guid, other_title in await cur.fetchall():
            distinct = (article.guid and other_guid and other_source == article.source
                        and other_guid != article.guid and other_title != article.title)
            if not distinct:
                return str(other_id)
    if article.guid:
        # A guid alone is trusted only when the links do not contradict it: some feeds reuse
        # one guid for every item, and those items are distinct.
        cur = await conn.execute(
            "SELECT id, link_key FROM articles WHERE source = ? AND guid = ?",
            (article.source, article.guid),
        )
        for other_id, other_link in await cur.fetchall():
            if not link or not other_link or other_link == link:
                return str(other_id)
    return None


async def insert_alerts(tx: Tx, article_id: str, alerts: Sequence[OutboxEntry],
                        at: datetime) -> None:
    for a in alerts:
        rules = "[" + ", ".join(dump_model(r) for r in a.rules) + "]"
        await tx.execute(
            "INSERT INTO outbox (kind, article_id, route, rules, state, nonce, created_at, "
            "updated_at) VALUES ('alert',?,?,?,?,?,?,?)",
            (
                article_id, a.route, rules, "suppressed" if a.suppressed else "pending",
                secrets.token_hex(12), iso(at), iso(at),
            ),
        )


class ArticlesMixin:
    """The :class:`watchers.store.ArticleStore` part of :class:`SqliteStore`."""

    _db: Db

    async def is_known(self, article: Article) -> bool:
        return await self._db.read(lambda conn: _duplicate_of(conn, article)) is not None

    async def record(
        self,
        article: Article,
        matches: Sequence[Match],
        alerts: Sequence[OutboxEntry],
        *,
        terms: str,
    ) -> Article | None:
        """Store a new article with its index terms, matches and alerts in one transaction.

        ``terms`` are the words it is found under in lookups (the caller computes them; see
        :func:`watchers.rules.lookup.index_terms`). Returns the article as stored (its id may
        differ when another item already holds the same id), or None if it duplicates a stored
        article.
        """
        link, content = _identity(article)
        at = now()
        async with self._db.tx() as tx:
            if await _duplicate_of(tx.conn, article) is not None:
                return None
            if await tx.fetchone("SELECT 1 FROM articles WHERE id = ?", (article.id,)):
                article = Article(**{**article.model_dump(), "id": content[:16]})
            sort_at = article.published or article.fetched_at
            cur = await tx.execute(
                "INSERT INTO articles (id, source, guid, url, link_key, title, text, published, "
                "fetched_at, sort_at, content_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    article.id, article.source, article.guid, article.url, link, article.title,
                    article.text, iso(article.published), iso(article.fetched_at),
                    iso(sort_at), content,
                ),
            )
            await tx.execute("INSERT INTO article_terms (rowid, terms) VALUES (?, ?)",
                             (cur.lastrowid, terms))
            for m in matches:
                hits = json.dumps([h.model_dump() for h in m.hits])
                await tx.execute(
                    "INSERT OR REPLACE INTO matches (article_id, rule, score, hits, matched_at) "
                    "VALUES (?,?,?,?,?)",
                    (article.id, m.rule, m.score, hits, iso(at)),
                )
            await insert_alerts(tx, article.id, alerts, at)
        return article

    async def count_articles(self) -> int:
        rows = await self._db.fetchall("SELECT count(*) FROM articles")
        return int(rows[0][0])

    async def count_by_source(self) -> dict[str, int]:
        rows = await self._db.fetchall("SELECT source, count(*) FROM articles GROUP BY source")
        return {str(s): int(n) for s, n in rows}

    async def get_article(self, article_id: str) -> Article | None:
        """The article with this id, else the only one whose id starts with it (at least
        ``MIN_PREFIX`` characters, as /article accepts). Both are lookups in the id index."""
        rows = await self._db.fetchall(
            f"SELECT {ARTICLE_COLS} FROM articles WHERE id = ?", (article_id,))
        if rows:
            return article_of(rows[0])
        if len(article_id) < MIN_PREFIX:
            return None
        # Ids are lowercase hex; a pasted prefix may not be.
        for prefix in dict.fromkeys((article_id, article_id.lower())):
            upper = prefix_successor(prefix)
            if upper is None:
                continue
            rows = await self._db.fetchall(
                f"SELECT {ARTICLE_COLS} FROM articles WHERE id >= ? AND id < ? "
                "ORDER BY id LIMIT 2",
                (prefix, upper),
            )
            if rows:
                return article_of(rows[0]) if len(rows) == 1 else None
        return None

    async def matches_for(self, article_id: str) -> list[Match]:
        rows = await self._db.fetchall(
            "SELECT article_id, rule, score, hits FROM matches WHERE article_id = ? ORDER BY rule",
            (article_id,),
        )
        return [_match(*r) for r in rows]

    async def recent(
        self, *, rule: str | None = None, limit: int = 10
    ) -> list[tuple[Article, list[Match]]]:
        if rule:
            sql = (
                f"SELECT {ARTICLE_COLS_A} "
                "FROM articles a JOIN matches m ON m.article_id = a.id WHERE m.rule = ? "
                "ORDER BY a.sort_at DESC, a.rowid DESC LIMIT ?"
            )
            params: tuple[Any, ...] = (rule, limit)
        else:
            sql = (
                f"SELECT {ARTICLE_COLS} FROM articles WHERE id IN "
                "(SELECT DISTINCT article_id FROM matches) "
                "ORDER BY sort_at DESC, rowid DESC LIMIT ?"
            )
            params = (limit,)
        articles = [article_of(r) for r in await self._db.fetchall(sql, params)]
        return [(a, await self.matches_for(a.id)) for a in articles]

    async def candidates(
        self,
        *,
        fts: str | None,
        since: datetime | None = None,
        source: str | None = None,
        limit: int = 2000,
    ) -> list[Article]:
        """Articles that may match, newest first: those the index query ``fts`` finds (see
        :func:`watchers.rules.lookup.index_query`), or all when it is None."""
        where: list[str] = []
        params: list[Any] = []
        if fts:
            sql = (
                f"SELECT {ARTICLE_COLS_A} FROM article_terms t JOIN articles a "
                "ON a.rowid = t.rowid WHERE article_terms MATCH ?"
            )
            params.append(fts)
        else:
            sql = f"SELECT {ARTICLE_COLS_A} FROM articles a WHERE 1"
        if since:
            where.append("a.sort_at >= ?")
            params.append(iso(since))
        if source:
            where.append("a.source = ?")
            params.append(source)
        sql += "".join(f" AND {w}" for w in where) + " ORDER BY a.sort_at DESC LIMIT ?"
        params.append(limit)
        rows = await self._db.fetchall(sql, params, what="search index rejected the query")
        return [article_of(r) for r in rows]

    async def rule_match_counts(self, *, since: datetime | None = None) -> dict[str, int]:
        rows = await self._db.fetchall(
            "SELECT rule, count(*) FROM matches WHERE matched_at >= ? GROUP BY rule",
            (iso(since) if since else "",),
        )
        return {str(r): int(n) for r, n in rows}
