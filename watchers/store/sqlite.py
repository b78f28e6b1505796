"""SqliteStore: the default store, one SQLite file in WAL mode through aiosqlite.

One connection serves the process; an asyncio lock makes each transaction whole, and every write
runs as ``BEGIN IMMEDIATE`` so a second process waits (busy timeout) instead of failing half-way.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import sqlite3
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from watchers.errors import StoreError
from watchers.models import Article, Hit, Match
from watchers.store.base import (
    AlertState,
    OutboxEntry,
    OutboxRow,
    SourceState,
    StoredRule,
    StoredSource,
)
from watchers.store.terms import index_terms
from watchers.urls import normalise_link

__all__ = ["SqliteStore"]

# Each entry migrates the schema from version i to i+1; never edit one that has shipped.
MIGRATIONS: list[str] = [
    """
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
    """,
    # Delivery that survives failures: destinations paused across restarts, and a mark on
    # alerts whose send may have reached the destination without us learning the outcome.
    """
    CREATE TABLE route_pauses (
        route TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        paused_at TEXT NOT NULL
    );
    ALTER TABLE outbox ADD COLUMN maybe_sent INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX outbox_route ON outbox(route, state, id);
    """,
    # The lookup index holds the rule engine's own word keys (plurals, apostrophes, compounds
    # folded), so a query narrows candidates without missing any; see watchers.store.terms.
    # It replaces the first index over the raw text, whose tokens did not fold that way.
    # Filled for existing articles by _backfill_terms after the migration.
    """
    CREATE VIRTUAL TABLE article_terms USING fts5(
        terms, content='', tokenize="unicode61 remove_diacritics 0"
    );
    DROP TRIGGER articles_ai;
    DROP TRIGGER articles_ad;
    DROP TABLE articles_fts;
    """,
]


TERMS_MIGRATION = 2  # index in MIGRATIONS of the one that creates article_terms


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dt(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


_ARTICLE_COLS = "id, source, guid, url, title, text, published, fetched_at, content_hash"
# The same columns qualified, for queries that join articles (as ``a``) with another table.
_ARTICLE_COLS_A = ", ".join("a." + c.strip() for c in _ARTICLE_COLS.split(","))


def _article(row: Iterable[Any]) -> Article:
    id_, source, guid, url, title, text, published, fetched_at, content_hash = row
    return Article(
        id=id_,
        source=source,
        guid=guid,
        url=url,
        title=title,
        text=text,
        published=_dt(published),
        fetched_at=_dt(fetched_at),
        content_hash=content_hash,
    )


def _match(article_id: str, rule: str, score: float, hits: str) -> Match:
    return Match(
        rule=rule,
        article_id=article_id,
        score=score,
        hits=tuple(Hit.model_validate(h) for h in json.loads(hits)),
    )


_OUTBOX_COLS = (
    "id, article_id, route, rules, state, attempts, nonce, next_attempt_at, remote_id, reason, "
    "created_at"
)


def _outbox(row: Iterable[Any]) -> OutboxRow:
    id_, art, route, rules, state, attempts, nonce, nxt, remote, reason, created = row
    return OutboxRow(
        id=id_,
        article_id=art,
        route=route,
        rules=tuple(json.loads(rules)),
        state=state,
        attempts=attempts,
        nonce=nonce,
        next_attempt_at=_dt(nxt),
        remote_id=remote,
        reason=reason,
        created_at=_dt(created) or _now(),
    )


class SqliteStore:
    """The SQLite implementation of :class:`watchers.store.Store`.

    Use ``store = await SqliteStore.open(path)`` and ``await store.aclose()``, or
    ``async with await SqliteStore.open(path) as store``.
    """

    def __init__(self, db: aiosqlite.Connection, path: str) -> None:
        self._db = db
        self._lock = asyncio.Lock()
        self.path = path

    @classmethod
    async def open(cls, path: str | Path) -> SqliteStore:
        target = str(path)
        if target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        try:
            db = await aiosqlite.connect(target, isolation_level=None, timeout=30)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {target}: {exc}") from None
        store = cls(db, target)
        try:
            await store._setup()
        except BaseException:
            await db.close()
            raise
        return store

    async def __aenter__(self) -> SqliteStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._db.close()

    async def _setup(self) -> None:
        db = self._db
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA foreign_keys=ON")
            await db.execute("PRAGMA busy_timeout=30000")
            (version,) = await (await db.execute("PRAGMA user_version")).fetchone()  # type: ignore[misc]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a newswatch database: {exc}") from None
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this newswatch "
                f"({len(MIGRATIONS)}); upgrade newswatch"
            )
        for i in range(version, len(MIGRATIONS)):
            async with self._tx() as tx:
                await tx.executescript_in_tx(MIGRATIONS[i])
                if i == TERMS_MIGRATION:
                    await self._backfill_terms(tx.db)
                await tx.execute(f"PRAGMA user_version={i + 1}")

    @staticmethod
    async def _backfill_terms(db: aiosqlite.Connection) -> None:
        cur = await db.execute("SELECT rowid, title, text FROM articles")
        for rowid, title, text in await cur.fetchall():
            await db.execute("INSERT INTO article_terms (rowid, terms) VALUES (?, ?)",
                             (rowid, index_terms(title, text)))

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[_Tx]:
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield _Tx(self._db)
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            else:
                await self._db.execute("COMMIT")

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        async with self._lock:
            cur = await self._db.execute(sql, params)
            return list(await cur.fetchall())

    async def integrity_check(self) -> str:
        rows = await self._fetchall("PRAGMA integrity_check")
        return str(rows[0][0])

    # ---------------------------------------------------------------- articles

    @staticmethod
    def _identity(article: Article) -> tuple[str | None, str]:
        link = normalise_link(article.url) if article.url else None
        return link, article.content_hash

    async def _duplicate_of(self, db: aiosqlite.Connection, article: Article) -> str | None:
        link, content = self._identity(article)
        cur = await db.execute("SELECT id FROM articles WHERE content_hash = ?", (content,))
        if row := await cur.fetchone():
            return str(row[0])
        if link:
            cur = await db.execute("SELECT id FROM articles WHERE link_key = ?", (link,))
            if row := await cur.fetchone():
                return str(row[0])
        if article.guid:
            # A guid alone is trusted only when the links do not contradict it: some feeds reuse
            # one guid for every item, and those items are distinct.
            cur = await db.execute(
                "SELECT id, link_key FROM articles WHERE source = ? AND guid = ?",
                (article.source, article.guid),
            )
            for other_id, other_link in await cur.fetchall():
                if not link or not other_link or other_link == link:
                    return str(other_id)
        return None

    async def is_known(self, article: Article) -> bool:
        async with self._lock:
            return await self._duplicate_of(self._db, article) is not None

    async def record(
        self, article: Article, matches: Sequence[Match], alerts: Sequence[OutboxEntry]
    ) -> Article | None:
        """Store a new article with its matches and alerts in one transaction.

        Returns the article as stored (its id may differ when another item already holds the
        same id), or None if it is a duplicate of a stored article.
        """
        link, content = self._identity(article)
        now = _now()
        async with self._tx() as tx:
            if await self._duplicate_of(tx.db, article) is not None:
                return None
            cur = await tx.db.execute("SELECT 1 FROM articles WHERE id = ?", (article.id,))
            if await cur.fetchone():
                article = Article(**{**article.model_dump(), "id": content[:16]})
            sort_at = article.published or article.fetched_at
            cur = await tx.db.execute(
                "INSERT INTO articles (id, source, guid, url, link_key, title, text, published, "
                "fetched_at, sort_at, content_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    article.id, article.source, article.guid, article.url, link, article.title,
                    article.text, _iso(article.published), _iso(article.fetched_at),
                    _iso(sort_at), content,
                ),
            )
            await tx.execute(
                "INSERT INTO article_terms (rowid, terms) VALUES (?, ?)",
                (cur.lastrowid, index_terms(article.title, article.text)),
            )
            for m in matches:
                hits = json.dumps([h.model_dump() for h in m.hits])
                await tx.execute(
                    "INSERT OR REPLACE INTO matches (article_id, rule, score, hits, matched_at) "
                    "VALUES (?,?,?,?,?)",
                    (article.id, m.rule, m.score, hits, _iso(now)),
                )
            for a in alerts:
                await tx.execute(
                    "INSERT INTO outbox (article_id, route, rules, state, nonce, created_at, "
                    "updated_at) VALUES (?,?,?,?,?,?,?)",
                    (
                        article.id, a.route, json.dumps(list(a.rules)),
                        "suppressed" if a.suppressed else "pending",
                        secrets.token_hex(12), _iso(now), _iso(now),
                    ),
                )
        return article

    async def count_articles(self) -> int:
        rows = await self._fetchall("SELECT count(*) FROM articles")
        return int(rows[0][0])

    async def count_by_source(self) -> dict[str, int]:
        rows = await self._fetchall("SELECT source, count(*) FROM articles GROUP BY source")
        return {str(s): int(n) for s, n in rows}

    async def get_article(self, article_id: str) -> Article | None:
        rows = await self._fetchall(
            f"SELECT {_ARTICLE_COLS} FROM articles WHERE id = ? OR id LIKE ? LIMIT 2",
            (article_id, re.sub(r"[%_]", "", article_id) + "%"),
        )
        exact = [r for r in rows if r[0] == article_id]
        if exact:
            return _article(exact[0])
        return _article(rows[0]) if len(rows) == 1 and len(article_id) >= 6 else None

    async def matches_for(self, article_id: str) -> list[Match]:
        rows = await self._fetchall(
            "SELECT article_id, rule, score, hits FROM matches WHERE article_id = ? ORDER BY rule",
            (article_id,),
        )
        return [_match(*r) for r in rows]

    async def recent(
        self, *, rule: str | None = None, limit: int = 10
    ) -> list[tuple[Article, list[Match]]]:
        if rule:
            sql = (
                f"SELECT {_ARTICLE_COLS_A} "
                "FROM articles a JOIN matches m ON m.article_id = a.id WHERE m.rule = ? "
                "ORDER BY a.sort_at DESC, a.rowid DESC LIMIT ?"
            )
            params: tuple[Any, ...] = (rule, limit)
        else:
            sql = (
                f"SELECT {_ARTICLE_COLS} FROM articles WHERE id IN "
                "(SELECT DISTINCT article_id FROM matches) "
                "ORDER BY sort_at DESC, rowid DESC LIMIT ?"
            )
            params = (limit,)
        articles = [_article(r) for r in await self._fetchall(sql, params)]
        return [(a, await self.matches_for(a.id)) for a in articles]

    async def candidates(
        self,
        *,
        fts: str | None,
        since: datetime | None = None,
        source: str | None = None,
        limit: int = 2000,
    ) -> list[Article]:
        """Articles that may match: those the FTS query finds (or all, if ``fts`` is None)."""
        where: list[str] = []
        params: list[Any] = []
        cols = _ARTICLE_COLS_A
        if fts:
            sql = (
                f"SELECT {cols} FROM article_terms t JOIN articles a ON a.rowid = t.rowid "
                "WHERE article_terms MATCH ?"
            )
            params.append(fts)
        else:
            sql = f"SELECT {cols} FROM articles a WHERE 1"
        if since:
            where.append("a.sort_at >= ?")
            params.append(_iso(since))
        if source:
            where.append("a.source = ?")
            params.append(source)
        sql += "".join(f" AND {w}" for w in where) + " ORDER BY a.sort_at DESC LIMIT ?"
        params.append(limit)
        try:
            rows = await self._fetchall(sql, params)
        except sqlite3.OperationalError as exc:
            raise StoreError(f"search index rejected the query: {exc}") from None
        return [_article(r) for r in rows]

    async def rule_match_counts(self, *, since: datetime | None = None) -> dict[str, int]:
        rows = await self._fetchall(
            "SELECT rule, count(*) FROM matches WHERE matched_at >= ? GROUP BY rule",
            (_iso(since) if since else "",),
        )
        return {str(r): int(n) for r, n in rows}

    # ---------------------------------------------------------------- outbox

    async def _set_state(self, alert_id: int, state: AlertState, **cols: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in cols)
        async with self._tx() as tx:
            await tx.execute(
                f"UPDATE outbox SET state = ?, updated_at = ?{', ' + sets if sets else ''} "
                "WHERE id = ?",
                (state, _iso(_now()), *cols.values(), alert_id),
            )

    async def mark_delivered(self, alert_id: int, remote_id: str | None) -> None:
        await self._set_state(alert_id, "delivered", remote_id=remote_id, reason=None)

    async def mark_retry(self, alert_id: int, *, at: datetime, reason: str) -> None:
        await self._set_state(alert_id, "retry", next_attempt_at=_iso(at), reason=reason)

    async def mark_rejected(self, alert_id: int, reason: str) -> None:
        await self._set_state(alert_id, "rejected", reason=reason)

    async def requeue_interrupted(self) -> int:
        # A claim interrupted by a crash may have been sent already: keep that in the row so a
        # sink that cannot deduplicate (a webhook) can look before sending again.
        async with self._tx() as tx:
            cur = await tx.db.execute(
                "UPDATE outbox SET state='pending', maybe_sent=1, updated_at=? "
                "WHERE state='sending'",
                (_iso(_now()),),
            )
            return cur.rowcount

    async def claim_route(self, route: str, *, now: datetime, limit: int = 20
                          ) -> list[OutboxRow]:
        """Move the route's next alerts to ``sending``, strictly in the order they were written:
        the claim stops at the first alert that is not due yet, so a later alert never overtakes
        one that is waiting to be retried."""
        async with self._tx() as tx:
            cur = await tx.db.execute(
                f"SELECT {_OUTBOX_COLS} FROM outbox WHERE route = ? AND "
                "state IN ('pending', 'retry') ORDER BY id LIMIT ?",
                (route, limit),
            )
            rows: list[OutboxRow] = []
            for r in map(_outbox, await cur.fetchall()):
                if r.state == "retry" and r.next_attempt_at is not None and r.next_attempt_at > now:
                    break
                rows.append(r)
            for r in rows:
                await tx.execute(
                    "UPDATE outbox SET state='sending', attempts=attempts+1, updated_at=? "
                    "WHERE id=?",
                    (_iso(now), r.id),
                )
        return [
            OutboxRow(**{**r.__dict__, "state": "sending", "attempts": r.attempts + 1})
            for r in rows
        ]

    async def due_routes(self) -> dict[str, datetime | None]:
        """Routes with alerts to send: when their oldest waiting alert is due (None: now)."""
        rows = await self._fetchall(
            "SELECT o.route, o.state, o.next_attempt_at FROM outbox o JOIN "
            "(SELECT route, min(id) AS first FROM outbox WHERE state IN ('pending', 'retry') "
            "GROUP BY route) f ON o.id = f.first"
        )
        return {str(route): (_dt(nxt) if state == "retry" else None)
                for route, state, nxt in rows}

    async def mark_maybe_sent(self, alert_id: int) -> None:
        """Record that an attempt may have reached the destination (the outcome was lost)."""
        async with self._tx() as tx:
            await tx.execute("UPDATE outbox SET maybe_sent=1, updated_at=? WHERE id=?",
                             (_iso(_now()), alert_id))

    async def maybe_sent(self, alert_id: int) -> bool:
        rows = await self._fetchall("SELECT maybe_sent FROM outbox WHERE id = ?", (alert_id,))
        return bool(rows and rows[0][0])

    async def count_maybe_sent(self) -> int:
        rows = await self._fetchall("SELECT count(*) FROM outbox WHERE maybe_sent = 1")
        return int(rows[0][0])

    async def pause_route(self, route: str, reason: str) -> int:
        """Pause a destination and hold its waiting alerts, in one transaction (a crash cannot
        leave alerts held for a route that is not paused). Returns how many were held."""
        async with self._tx() as tx:
            await tx.execute(
                "INSERT OR REPLACE INTO route_pauses (route, reason, paused_at) VALUES (?,?,?)",
                (route, reason, _iso(_now())),
            )
            cur = await tx.db.execute(
                "UPDATE outbox SET state='held', reason=?, updated_at=? WHERE route=? AND "
                "state IN ('pending','retry','sending')",
                (reason, _iso(_now()), route),
            )
            return cur.rowcount

    async def resume_route(self, route: str) -> int:
        """Lift a pause; the held alerts become pending again. Returns how many."""
        async with self._tx() as tx:
            await tx.execute("DELETE FROM route_pauses WHERE route = ?", (route,))
            cur = await tx.db.execute(
                "UPDATE outbox SET state='pending', reason=NULL, updated_at=? "
                "WHERE route=? AND state='held'",
                (_iso(_now()), route),
            )
            return cur.rowcount

    async def paused_routes(self) -> dict[str, str]:
        rows = await self._fetchall("SELECT route, reason FROM route_pauses ORDER BY route")
        return {str(r): str(reason) for r, reason in rows}

    async def held_counts(self) -> dict[str, int]:
        rows = await self._fetchall(
            "SELECT route, count(*) FROM outbox WHERE state = 'held' GROUP BY route")
        return {str(r): int(n) for r, n in rows}

    async def alert_counts(self) -> dict[str, int]:
        rows = await self._fetchall("SELECT state, count(*) FROM outbox GROUP BY state")
        return {str(s): int(n) for s, n in rows}

    async def alerts(self, *, state: AlertState | None = None, limit: int = 1000
                     ) -> list[OutboxRow]:
        sql = f"SELECT {_OUTBOX_COLS} FROM outbox"
        params: list[Any] = []
        if state:
            sql += " WHERE state = ?"
            params.append(state)
        rows = await self._fetchall(sql + " ORDER BY id LIMIT ?", (*params, limit))
        return [_outbox(r) for r in rows]

    # ---------------------------------------------------------------- source state

    async def source_state(self, name: str) -> SourceState | None:
        rows = await self._fetchall(
            "SELECT name, cursor, polls, last_success, last_error, last_error_at, failures, "
            "next_poll, paused FROM source_state WHERE name = ?",
            (name,),
        )
        return self._state(rows[0]) if rows else None

    @staticmethod
    def _state(row: Sequence[Any]) -> SourceState:
        name, cursor, polls, ok, err, err_at, failures, nxt, paused = row
        return SourceState(
            name=name,
            cursor=json.loads(cursor),
            polls=polls,
            last_success=_dt(ok),
            last_error=err,
            last_error_at=_dt(err_at),
            failures=failures,
            next_poll=_dt(nxt),
            paused=bool(paused),
        )

    async def save_source_state(self, state: SourceState) -> None:
        async with self._tx() as tx:
            await tx.execute(
                "INSERT OR REPLACE INTO source_state (name, cursor, polls, last_success, "
                "last_error, last_error_at, failures, next_poll, paused) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    state.name, json.dumps(dict(state.cursor)), state.polls,
                    _iso(state.last_success), state.last_error, _iso(state.last_error_at),
                    state.failures, _iso(state.next_poll), int(state.paused),
                ),
            )

    async def all_source_states(self) -> list[SourceState]:
        rows = await self._fetchall(
            "SELECT name, cursor, polls, last_success, last_error, last_error_at, failures, "
            "next_poll, paused FROM source_state ORDER BY name"
        )
        return [self._state(r) for r in rows]

    # ---------------------------------------------------------------- run-time config

    async def list_rules(self) -> list[StoredRule]:
        rows = await self._fetchall(
            "SELECT name, query, channel, severity, mention_role, threshold, created_by "
            "FROM user_rules ORDER BY name"
        )
        return [StoredRule(*r) for r in rows]

    async def put_rule(self, rule: StoredRule) -> None:
        async with self._tx() as tx:
            await tx.execute(
                "INSERT OR REPLACE INTO user_rules (name, query, channel, severity, mention_role, "
                "threshold, created_by, created_at) VALUES (?,?,?,?,?,?,?,?)",
                (rule.name, rule.query, rule.channel, rule.severity, rule.mention_role,
                 rule.threshold, rule.created_by, _iso(_now())),
            )

    async def delete_rule(self, name: str) -> bool:
        async with self._tx() as tx:
            cur = await tx.db.execute("DELETE FROM user_rules WHERE name = ?", (name,))
            return cur.rowcount > 0

    async def list_sources(self) -> list[StoredSource]:
        rows = await self._fetchall(
            "SELECT name, url, every_seconds, created_by FROM user_sources ORDER BY name"
        )
        return [StoredSource(*r) for r in rows]

    async def put_source(self, source: StoredSource) -> None:
        async with self._tx() as tx:
            await tx.execute(
                "INSERT OR REPLACE INTO user_sources (name, url, every_seconds, created_by, "
                "created_at) VALUES (?,?,?,?,?)",
                (source.name, source.url, source.every_seconds, source.created_by, _iso(_now())),
            )

    async def delete_source(self, name: str) -> bool:
        async with self._tx() as tx:
            cur = await tx.db.execute("DELETE FROM user_sources WHERE name = ?", (name,))
            return cur.rowcount > 0

    async def mute(self, rule: str, until: datetime) -> None:
        async with self._tx() as tx:
            await tx.execute(
                "INSERT OR REPLACE INTO mutes (rule, until) VALUES (?, ?)", (rule, _iso(until))
            )

    async def unmute(self, rule: str) -> bool:
        async with self._tx() as tx:
            cur = await tx.db.execute("DELETE FROM mutes WHERE rule = ?", (rule,))
            return cur.rowcount > 0

    async def mutes(self, *, now: datetime) -> Mapping[str, datetime]:
        rows = await self._fetchall(
            "SELECT rule, until FROM mutes WHERE until > ?", (_iso(now),)
        )
        return {str(r): _dt(u) or now for r, u in rows}


class _Tx:
    """The connection inside a transaction (writes only through here)."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self.db.execute(sql, params)

    async def executescript_in_tx(self, script: str) -> None:
        # executescript() would COMMIT first; run statement by statement instead.
        for stmt in _split_sql(script):
            await self.db.execute(stmt)


def _split_sql(script: str) -> list[str]:
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
