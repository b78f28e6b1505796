"""Stories: the same event told by several outlets, kept beside the articles that make it.

A story row is written in the transaction that stores its first article and updated by each
later one (same transaction as that article): ``last_seen`` / ``first_seen`` widen, the article
count grows, a new source is appended to ``outlets`` (with the outlet it reports as in
``source_outlets``, which corroboration counts: see OutletCount), and the signature the live
index needs at start-up is replaced. A write batch decides its stories' rows in memory and
writes each story once, at the end of its transaction
(:class:`~watchers.store._shared.StoryBatch`): the same row as one upsert per article, in
fewer statements. Every article stored with a story link has
``articles.story_id`` set; an article stored before stories existed (or imported without
grouping) has none and is its own story in lookups.

``story_routes`` remembers where a story lives on each route (its message, and the thread started
on it); delivery writes it when the story's alert is delivered and when an update reposts it.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from watchers.models import Article, Fired, hits_json
from watchers.store._shared import (
    OutletCount,
    OutletNames,
    StoryBatch,
    follow_outlets,
    route_feeds,
    sources_of,
    stored_hash,
)
from watchers.store.base import (
    LIVE_ALERT_STATES,
    ArticleRecord,
    OutboxEntry,
    OutboxRow,
    StoryLink,
    StoryRecord,
    corroborated,
    story_outcome,
    waiting_changes,
)
from watchers.store.sqlite._db import (
    Db,
    Tx,
    all_rows,
    batch_chunk,
    dt,
    insert_many,
    iso,
    rules_json,
)
from watchers.store.sqlite.schema import (
    FORGET_PLACES,
    INDEX_KEY_SQL,
    INSERT_PLACES,
    MARK_REBUILD_UNSURE,
    MARK_URL_GAP,
    MARK_WORDS_ONLY,
    PLACES_INCOMPLETE,
    PLACES_INEXACT,
    add_index_words,
    index_articles,
)

__all__ = ["StoriesMixin", "story_batch", "story_rows", "write_stories"]

STORY_COLS = ("id, headline, first_seen, last_seen, articles, outlets, signature, updated_at")


def story_of(row: Iterable[Any]) -> StoryRecord:
    id_, headline, first, last, articles, outlets, signature, updated = row
    return StoryRecord(
        id=str(id_), headline=str(headline), first_seen=dt(first) or datetime.min,
        last_seen=dt(last) or datetime.min, articles=int(articles),
        outlets=tuple(json.loads(outlets)), signature=str(signature), updated_at=dt(updated),
    )


# One row per story of a write batch (see StoryBatch): the batch's dates widen the stored ones,
# its articles add to the count; outlets, their sources' outlets and signature are the batch's
# final ones. The outlets come as compact JSON text already (StoryBatch.rows), which json()
# would only parse and spell again, the same.
_UPSERT_STORY = (
    "INSERT INTO stories (id, headline, first_seen, last_seen, signature, articles, outlets, "
    "source_outlets) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
    "first_seen = min(first_seen, excluded.first_seen), "
    "last_seen = max(last_seen, excluded.last_seen), signature = excluded.signature, "
    "articles = articles + excluded.articles, outlets = excluded.outlets, "
    "source_outlets = excluded.source_outlets")
_LIVE = ",".join(repr(s) for s in LIVE_ALERT_STATES)
_LIVE_OR_WAITING = ",".join(repr(s) for s in (*LIVE_ALERT_STATES, "waiting"))
# Why a waiting alert was not posted when another rule's alert on the route posted the story.
_SUPERSEDED = "another rule's alert posted the story on this route first"
# A story's alerts waiting for corroboration, and the release of those its outlets now let
# post. A stored article, a wire copy (add_outlet) and a rule needing fewer (lower_wait)
# release them.
_WAITING = ("SELECT id, route, min_sources FROM outbox INDEXED BY outbox_story "
            "WHERE story_id = ? AND state = 'waiting'")
_RELEASE = ("UPDATE outbox SET state = 'pending', updated_at = ? "
            "WHERE id = ? AND state = 'waiting'")
# Each server route with the stored models of its server's follows (see OutletCount).
_ROUTE_FEEDS = ("SELECT r.name, s.model FROM routes r JOIN sources s ON s.guild_id = r.guild_id "
                "WHERE r.guild_id IS NOT NULL AND r.name IN ({})")
# The follows of one server, or of every server (the operator's count: see outlets_seen).
_SERVER_FOLLOWS = "SELECT model FROM sources WHERE guild_id = ? ORDER BY name"
_EVERY_FOLLOW = "SELECT model FROM sources WHERE guild_id IS NOT NULL ORDER BY name"


def outlet_count(conn: sqlite3.Connection, outlets: Sequence[str], routes: Iterable[str],
                 names: Mapping[str, str] | None = None,
                 stored: Mapping[str, str] | None = None) -> OutletCount:
    """A story's ``outlets`` as the readers of each of ``routes`` count them, by the outlets
    its sources reported as (``stored``), else those ``names`` gives them (see OutletCount):
    the follows of the routes' servers are read only when a server's feed is among the
    outlets."""
    if not OutletCount.private(outlets):
        return OutletCount(outlets, names=names, stored=stored)
    feeds: dict[str, dict[str, str]] = {}
    for sql, chunk in _route_feed_reads(routes):
        feeds.update(route_feeds(conn.execute(sql, chunk).fetchall()))
    return OutletCount(outlets, feeds, names, stored)


def _route_feed_reads(routes: Iterable[str]) -> Iterable[tuple[str, list[str]]]:
    """The statements reading the follows of ``routes``' servers (:data:`_ROUTE_FEEDS`), 500
    routes a statement (SQLite's bound on parameters), with their parameters."""
    wanted = list(dict.fromkeys(routes))
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        yield _ROUTE_FEEDS.format(",".join("?" * len(chunk))), chunk


def release(conn: sqlite3.Connection, story: str, outlets: Sequence[str], when: str | None,
            routes: Iterable[str] = (), *, waits: bool = True,
            names: Mapping[str, str] | None = None,
            stored: Mapping[str, str] | None = None) -> tuple[set[str], OutletCount]:
    """Release the story's alerts that wait for corroboration and have, on their route, the
    outlets they wait for (their order in the outbox kept); returns the routes released on
    and the story's outlets as counted on those and on ``routes`` (the routes a caller will
    decide next). ``waits`` False: the story has no waiting alert, so none is read.
    ``names``, ``stored``: the sources' outlets now and as they reported (see
    OutletCount)."""
    waiting = ([(int(i), str(r), int(n)) for i, r, n in conn.execute(_WAITING, (story,))]
               if waits else [])
    count = outlet_count(conn, outlets, [*(r for _, r, _ in waiting), *routes], names, stored)
    ready = count.releases(waiting)
    if ready:
        conn.executemany(_RELEASE, [(when, i) for i, _ in ready])
    return {route for _, route in ready}, count


def story_batch(conn: sqlite3.Connection, story_ids: Sequence[str],
                names: Mapping[str, str] | None = None) -> StoryBatch:
    """The stored outlets of these stories (and the outlets their sources reported as), on
    which routes they have outbox rows and which of them have alerts waiting for
    corroboration: a read per 500 stories, and one more per 500 of them that are stored, for
    a whole write batch (see StoryBatch). ``names``: the sources' outlets now, which the
    batch's new sources are kept with (see OutletNames).

    Only a stored story can have outbox rows: a story's rows are written in the transaction
    that writes or grows its story row, and neither is ever deleted. So the outbox is asked
    about the stored ones only; most of a poll's stories are new ones, started by its own
    articles (asking about those cost about a sixth of what grouping adds to ingest)."""
    outlets: dict[str, list[str]] = {}
    sources: dict[str, dict[str, str]] = {}
    waiting: set[str] = set()
    routed: set[tuple[str, str]] = set()
    # Each read's rows come as one (see all_rows).
    size = batch_chunk(conn)
    for i in range(0, len(story_ids), size):
        chunk = story_ids[i : i + size]
        for sid, keys, kept in all_rows(
                conn, f"SELECT id, outlets, source_outlets FROM stories "
                f"WHERE id IN ({','.join('?' * len(chunk))})", chunk, 3):
            outlets[str(sid)] = [str(n) for n in json.loads(keys)]
            sources[str(sid)] = sources_of(kept)
    stored = list(outlets)
    for i in range(0, len(stored), size):
        chunk = stored[i : i + size]
        marks = ",".join("?" * len(chunk))
        for sid, route, waits in all_rows(
                conn, "SELECT story_id, route, max(state = 'waiting') FROM outbox INDEXED BY "
                f"outbox_story WHERE story_id IN ({marks}) GROUP BY story_id, route", chunk, 3):
            routed.add((str(sid), str(route)))
            if waits:
                waiting.add(str(sid))
    return StoryBatch(outlets, waiting, routed, sources, names)


def write_stories(conn: sqlite3.Connection, batch: StoryBatch,
                  stamps: Mapping[datetime | None, str | None] | None = None) -> None:
    """Write a batch's stories, one upsert each (in the batch's transaction). ``stamps``: the
    stored form (:func:`iso`) of times the batch has already spelt, such as its articles'
    dates, which are their stories' first and last seen (spelling one costs ~10,000
    instructions)."""
    insert_many(conn, _UPSERT_STORY, batch.rows(stamps or {}, iso))


def story_rows(conn: sqlite3.Connection, article: Article, rec: ArticleRecord,
               outlets: Sequence[str], rules_docs: Sequence[str], when: str,
               nonce: Callable[[], str], batch: StoryBatch | None = None,
               names: Mapping[str, str] | None = None,
               stored: Mapping[str, str] | None = None) -> list[tuple[Any, ...]]:
    """The outbox rows of a stored article that belongs to a story, decided route by route by
    :func:`story_outcome` against what the story already has on the route; releases alerts that
    waited for the outlets this article brings. ``outlets``: the story's distinct outlets, this
    article's included (each route counts those its readers see: :class:`OutletCount`).
    ``rules_docs[i]`` is entry i's rules as JSON. ``batch``: the write batch's StoryBatch, which
    lets queries that could find nothing be skipped (None: none is), and learns the rows
    written. ``names``: the sources' outlets now; ``stored``: as they reported (the batch's,
    with a batch; see OutletCount)."""
    assert rec.story is not None
    story = rec.story.id
    if batch is not None:
        stored = batch.stored(story)
    # A waiting alert posts once enough outlets have reported (before the new rows, so it keeps
    # its place ahead of them in the route's order). The alert then names this article's
    # outlet too, so the article needs no update of its own on those routes.
    released, count = release(conn, story, outlets, when, (e.route for e in rec.alerts),
                              waits=batch is None or story in batch.waiting, names=names,
                              stored=stored)
    rows: list[tuple[Any, ...]] = []
    for entry, rules in zip(rec.alerts, rules_docs, strict=True):
        if (met := corroborated(entry, count.on(entry.route))) is not entry:
            entry, rules = met, rules_json([met])[0]
        kind, state, escalated = _outcome(
            conn, story, entry, count.on(entry.route),
            batch is None or (story, entry.route) in batch.routed)
        if kind is None:
            continue
        if kind == "update" and entry.route in released:
            continue  # the released alert names this article's outlet already
        rows.append((kind, article.id, entry.route, rules, state, nonce(), when, when, story,
                     entry.severity, entry.min_sources, escalated))
        if batch is not None:
            batch.wrote(story, entry.route, state)
    return rows


def _outcome(conn: sqlite3.Connection, story: str, entry: OutboxEntry, outlets: int,
             routed: bool = True) -> tuple[str | None, str, str | None]:
    """What the route gets (see story_outcome); ``routed`` False: the story has no outbox row
    on the route, so none is read."""
    if entry.suppressed:
        return "alert", "suppressed", None
    if entry.stories == "off":
        return "alert", "pending" if outlets >= entry.min_sources else "waiting", None
    if not routed:
        return story_outcome(entry, outlets, [])
    existing = conn.execute(
        "SELECT id, state, severity, min_sources, escalated_from FROM outbox INDEXED BY "
        "outbox_story WHERE story_id = ? AND route = ? AND kind = 'alert' AND state IN "
        f"({_LIVE_OR_WAITING})", (story, entry.route),
    ).fetchall()
    kind, state, escalated = story_outcome(
        entry, outlets, [(str(st), sev, int(need)) for _, st, sev, need, _ in existing])
    if kind == "alert":
        superseded, escalates = waiting_changes(
            entry, state == "pending",
            [(int(i), sev, int(need), since) for i, st, sev, need, since in existing
             if st == "waiting"])
        if superseded:
            # Not posted: this article's alert posts the story on the route no later, and is
            # at least as severe (its rule's later articles update that message).
            conn.executemany("UPDATE outbox SET state = 'uncorroborated', reason = ? "
                             "WHERE id = ?", [(_SUPERSEDED, i) for i in superseded])
        if escalates:
            conn.executemany("UPDATE outbox SET escalated_from = ? WHERE id = ?",
                             [(sev, i) for i, sev in escalates.items()])
    return kind, state, escalated


async def _queue_update(tx: Tx, story: str, route: str, article_id: str, at: str | None, *,
                        changed: bool) -> int:
    """An ``update`` of the story's message on a route where it has a live alert (1), or
    nothing (0)."""
    live = await tx.fetchone(
        "SELECT rules, severity FROM outbox INDEXED BY outbox_story "
        "WHERE story_id = ? AND route = ? AND kind = 'alert' AND state IN "
        f"({_LIVE}) ORDER BY id DESC LIMIT 1",
        (story, route))
    if live is None:
        return 0
    await tx.execute(
        "INSERT INTO outbox (kind, article_id, route, rules, state, nonce, created_at, "
        "updated_at, story_id, severity, changed) VALUES ('update',?,?,?,'pending',?,?,?,?,?,?)",
        (article_id, route, live[0], secrets.token_hex(12), at, at, story, live[1], int(changed)))
    return 1


def _alert_change(conn: sqlite3.Connection, *, article: Article, story: str,
                  alerts: Sequence[OutboxEntry], when: str,
                  names: Mapping[str, str] | None = None) -> int:
    """A changed article's alerts, decided by story_rows as for a new article of the story
    (which it joins again: nothing new is counted): an alert where the story has none on the
    route, an escalation where the article is not the route's alert already; no update
    (record_change queued its own)."""
    from watchers.store.sqlite.articles import INSERT_OUTBOX, new_nonce

    outlets, kept = conn.execute("SELECT outlets, source_outlets FROM stories WHERE id = ?",
                                 (story,)).fetchone()
    rec = ArticleRecord(article, (), alerts, "", StoryLink(story, "", "", datetime.now(UTC)))
    rules = rules_json(alerts)
    # An article alerts once per route (the outbox's own rule): one that was the route's alert
    # already is updated there, not posted again.
    rows = [r for r in story_rows(conn, article, rec, json.loads(outlets or "[]") or
                                  [article.source], rules, when, new_nonce, names=names,
                                  stored=sources_of(kept))
            if r[0] != "update" and conn.execute(
                "SELECT 1 FROM outbox WHERE article_id = ? AND route = ? AND kind = 'alert'",
                (r[1], r[2])).fetchone() is None]
    if rows:
        insert_many(conn, INSERT_OUTBOX, rows)
    return len(rows)


def _lower_wait(conn: sqlite3.Connection, *, row_id: int, min_sources: int,
                when: str | None, names: Mapping[str, str] | None = None) -> bool:
    """:meth:`StoriesMixin.lower_wait` on the connection's thread."""
    conn.execute("UPDATE outbox SET min_sources = ? WHERE id = ? AND state = 'waiting' AND "
                 "min_sources <> ?", (min_sources, row_id, min_sources))
    row = conn.execute(
        "SELECT o.route, o.min_sources, s.outlets, s.source_outlets FROM outbox o JOIN stories "
        "s ON s.id = o.story_id WHERE o.id = ? AND o.state = 'waiting'", (row_id,)).fetchone()
    if row is None:
        return False
    route, need, outlets = str(row[0]), int(row[1]), json.loads(row[2])
    if need > outlet_count(conn, outlets, [route], names, sources_of(row[3])).on(route):
        return False
    conn.execute(_RELEASE, (when, row_id))
    return True


class StoriesMixin(OutletNames):
    """The :class:`watchers.store.StoryStore` part of :class:`SqliteStore`."""

    _db: Db
    _terms_of: Callable[[str, str], str] | None
    _places_of: Callable[[str, str], tuple[str, str, str, str]] | None
    _keys_version: int | None

    async def live_stories(self, since: datetime | timedelta, *, until: datetime | None = None
                           ) -> list[StoryRecord]:
        """Stories reported at or after ``since`` (for the live index at start-up); a
        timedelta counts back from the newest story's last report (of those at or before
        ``until``, when given), so a store whose news is older than the window still gives the
        stories that were live when it stopped."""
        if isinstance(since, timedelta):
            # Not past ``until``: a story dated in the future (stored before such dates were
            # refused) would otherwise leave every other story out of the window.
            rows = await self._db.fetchall(
                "SELECT max(last_seen) FROM stories"
                + ("" if until is None else " WHERE last_seen <= ?"),
                () if until is None else (iso(until),))
            newest = dt(rows[0][0]) if rows and rows[0][0] else None
            if newest is None:
                return []
            try:
                since = newest - since
            except OverflowError:  # the newest is dated near year 1 (a placeholder date)
                since = datetime.min.replace(tzinfo=UTC)
        rows = await self._db.fetchall(
            f"SELECT {STORY_COLS} FROM stories WHERE last_seen >= ? ORDER BY last_seen",
            (iso(since),))
        return [story_of(r) for r in rows]

    async def get_story(self, story_id: str) -> StoryRecord | None:
        rows = await self._db.fetchall(f"SELECT {STORY_COLS} FROM stories WHERE id = ?",
                                       (story_id,))
        return story_of(rows[0]) if rows else None

    async def stories_of(self, article_ids: Sequence[str]) -> dict[str, StoryRecord]:
        """The story of each of these articles that has one, by article id."""
        out: dict[str, StoryRecord] = {}
        ids = list(dict.fromkeys(article_ids))
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            rows = await self._db.fetchall(
                f"SELECT a.id, {', '.join('s.' + c.strip() for c in STORY_COLS.split(','))} "
                f"FROM articles a JOIN stories s ON s.id = a.story_id "
                f"WHERE a.id IN ({','.join('?' * len(chunk))})", chunk)
            for r in rows:
                out[str(r[0])] = story_of(r[1:])
        return out

    async def counted_outlets(self, story_id: str, routes: Sequence[str]) -> dict[str, int]:
        """How many distinct outlets each of ``routes``' readers count among the story's
        sources: what an alert there waiting for ``min_sources`` has ({} for no such story)."""
        rows = await self._db.fetchall(
            "SELECT outlets, source_outlets FROM stories WHERE id = ?", (story_id,))
        if not rows:
            return {}
        outlets = [str(n) for n in json.loads(rows[0][0])]
        feeds: dict[str, dict[str, str]] = {}
        if OutletCount.private(outlets):
            for sql, chunk in _route_feed_reads(routes):
                feeds.update(route_feeds(await self._db.fetchall(sql, chunk)))
        count = OutletCount(outlets, feeds, self._outlet_names, sources_of(rows[0][1]))
        return {route: count.on(route) for route in dict.fromkeys(routes)}

    async def outlets_seen(self, story_ids: Sequence[str], *, guild: int | None = None
                           ) -> dict[str, int]:
        """How many distinct outlets each of these stories has as a server's readers count
        them (``guild``: the config file's sources and that server's follows, as on its
        routes), or the operator (None: every source, a followed feed by its first follow's
        outlet); by story id, for the stories stored."""
        found: dict[str, tuple[list[str], dict[str, str]]] = {}
        ids = list(dict.fromkeys(story_ids))
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for sid, keys, kept in await self._db.fetchall(
                    "SELECT id, outlets, source_outlets FROM stories "
                    f"WHERE id IN ({','.join('?' * len(chunk))})", chunk):
                found[str(sid)] = ([str(n) for n in json.loads(keys)], sources_of(kept))
        followed: dict[str, str] = {}
        if any(OutletCount.private(outlets) for outlets, _ in found.values()):
            rows = (await self._db.fetchall(_EVERY_FOLLOW) if guild is None
                    else await self._db.fetchall(_SERVER_FOLLOWS, (guild,)))
            followed = follow_outlets(str(r[0]) for r in rows)
        return {sid: OutletCount(outlets, names=self._outlet_names, stored=kept)
                .seen(followed, every=guild is None)
                for sid, (outlets, kept) in found.items()}

    async def story_articles(self, story_id: str, *, limit: int = 100) -> list[Article]:
        """The story's articles, oldest first."""
        # articles.py writes stories through this module; read its row shape late.
        from watchers.store.sqlite.articles import ARTICLE_COLS, article_of

        rows = await self._db.fetchall(
            f"SELECT {ARTICLE_COLS} FROM articles INDEXED BY articles_story "
            "WHERE story_id = ? ORDER BY sort_at, rowid LIMIT ?", (story_id, limit))
        return [article_of(r) for r in rows]

    async def story_alert(self, story_id: str, route: str) -> OutboxRow | None:
        """The story's newest delivered alert on a route (what its updates re-render)."""
        from watchers.store.sqlite.outbox import OUTBOX_COLS, row_of

        rows = await self._db.fetchall(
            f"SELECT {OUTBOX_COLS} FROM outbox INDEXED BY outbox_story WHERE story_id = ? AND "
            "route = ? AND kind = 'alert' AND state = 'delivered' ORDER BY id DESC LIMIT 1",
            (story_id, route))
        return row_of(rows[0]) if rows else None

    async def story_message(self, story_id: str, route: str
                            ) -> tuple[str | None, str | None] | None:
        """The story's message and thread on a route, or None if it was never posted there."""
        rows = await self._db.fetchall(
            "SELECT message_id, thread_id FROM story_routes WHERE story_id = ? AND route = ?",
            (story_id, route))
        return (rows[0][0], rows[0][1]) if rows else None

    async def set_story_message(self, story_id: str, route: str, message_id: str | None,
                                thread_id: str | None, *, posted_by: int | None = None
                                ) -> None:
        """Where the story's message on the route is. ``posted_by``: the update row that
        posted it as an alert (its story had no alert there to update), which then counts as
        the story's alert on the route (:meth:`story_alert`), so later updates edit it."""
        async with self._db.tx() as tx:
            await tx.execute(
                "INSERT INTO story_routes (story_id, route, message_id, thread_id) "
                "VALUES (?,?,?,?) ON CONFLICT (story_id, route) DO UPDATE SET "
                "message_id = excluded.message_id, thread_id = excluded.thread_id",
                (story_id, route, message_id, thread_id))
            if posted_by is not None:
                await tx.execute("UPDATE outbox SET kind = 'alert' WHERE id = ? AND "
                                 "kind = 'update'", (posted_by,))

    async def expire_waiting(self, before: datetime) -> int:
        """Alerts still waiting for corroboration that were written before ``before``, or whose
        story's last article is dated before it (no article can join the story any more: the
        window runs from its articles' dates), become ``uncorroborated`` (recorded, never
        sent). Returns how many."""
        async with self._db.tx() as tx:
            cur = await tx.execute(
                "UPDATE outbox SET state = 'uncorroborated', reason = 'the story window ended "
                "before enough outlets reported it', updated_at = ? "
                "WHERE state = 'waiting' AND (created_at < ? OR EXISTS (SELECT 1 FROM stories "
                "WHERE stories.id = outbox.story_id AND stories.last_seen < ?))",
                (iso(datetime.now(before.tzinfo)), iso(before), iso(before)))
            return cur.rowcount

    async def lower_wait(self, row_id: int, min_sources: int) -> bool:
        """A waiting alert whose rule now needs another number of outlets (``min_sources``)
        waits for those, and posts at once if its story has them already (fewer); returns
        whether it was released."""
        async with self._db.tx() as tx:
            return await tx.run(partial(_lower_wait, row_id=row_id, min_sources=min_sources,
                                        when=iso(datetime.now(UTC)),
                                        names=self._outlet_names))

    async def record_change(self, stored_id: str, article: Article, routes: Sequence[str],
                            *, matches: Sequence[Fired] = (),
                            alerts: Sequence[OutboxEntry] = (),
                            rematched: bool = False) -> int:
        """A stored article whose content changed in place (same guid or link, new text):
        keep the new title and text, mark its story updated, and queue an ``update`` of the
        story's message on each of ``routes`` where the story has a live alert. ``matches``:
        the new version's (with ``rematched``, all of them: they replace the stored ones,
        whose evidence points into the old text); ``alerts``: the routes of what it fires that
        the stored one did not, decided as for a new article of the story — an alert where the
        story has none yet (a placeholder item rewritten into news alerted nobody), an
        escalation where a rule of higher severity fired. Returns how many rows were queued.
        Its lookup indexes are given the new title and text (see :func:`_index_change`)."""
        at = iso(datetime.now(UTC))
        async with self._db.tx() as tx:
            row = await tx.fetchone("SELECT story_id, rowid, title, text, url FROM articles "
                                    "WHERE id = ?", (stored_id,))
            if row is None:
                return 0
            content = stored_hash(article.source, article.content_hash)
            taken = await tx.fetchone("SELECT 1 FROM articles WHERE content_hash = ?",
                                      (content,))
            if taken is not None:  # another stored article has this content already
                return 0
            await tx.execute(
                "UPDATE articles SET title = ?, text = ?, content_hash = ? WHERE id = ?",
                (article.title, article.text, content, stored_id))
            await tx.run(partial(_index_change, rowid=int(row[1]), old=(row[2], row[3]),
                                 url=row[4], article=article, places_of=self._places_of,
                                 terms_of=self._terms_of, keys=self._keys_version))
            story = row[0]
            if story is None:
                return 0
            await tx.execute("UPDATE stories SET updated_at = ? WHERE id = ?", (at, story))
            queued = 0
            for route in dict.fromkeys(routes):
                queued += await _queue_update(tx, story, route, stored_id, at, changed=True)
            if rematched:
                await tx.execute("DELETE FROM matches WHERE article_id = ?", (stored_id,))
            if matches:
                await tx.executemany(
                    "INSERT OR REPLACE INTO matches (article_id, rule, score, hits, matched_at) "
                    "VALUES (?,?,?,?,?)",
                    [(stored_id, m.rule, m.score, hits_json(m.hits), at) for m in matches])
            if alerts and at is not None:
                queued += await tx.run(partial(
                    _alert_change, article=article.model_copy(update={"id": stored_id}),
                    story=story, alerts=alerts, when=at, names=self._outlet_names))
            return queued

    async def add_outlet(self, article_id: str, outlet: str, when: datetime,
                         routes: Sequence[str]) -> int:
        """Another outlet published a stored article word for word (a wire copy): nothing new is
        stored, but the article's story counts the outlet — alerts waiting for corroboration
        may post, and the story's message on each of ``routes`` is updated. Returns how many
        updates were queued (0 when the story knew the outlet already)."""
        at = iso(datetime.now(UTC))
        async with self._db.tx() as tx:
            row = await tx.fetchone("SELECT story_id FROM articles WHERE id = ?", (article_id,))
            if row is None or row[0] is None:
                return 0
            story = str(row[0])
            known = await tx.fetchone(
                "SELECT 1 FROM stories, json_each(stories.outlets) WHERE stories.id = ? AND "
                "json_each.value = ?", (story, outlet))
            if known is not None:
                return 0
            # The copy's source is kept with the outlet it reports as, as an article's is.
            named = self._outlet_names.get(outlet)
            outlets, kept = await tx.fetchone(
                "UPDATE stories SET last_seen = max(last_seen, ?), "
                "outlets = json_insert(outlets, '$[#]', ?), "
                "source_outlets = json_patch(source_outlets, ?) WHERE id = ? "
                "RETURNING outlets, source_outlets",
                (iso(when), outlet, "{}" if named is None else json.dumps({outlet: named}),
                 story))
            released, _ = await tx.run(partial(release, story=story,
                                               outlets=json.loads(outlets), when=at,
                                               names=self._outlet_names,
                                               stored=sources_of(kept)))
            queued = 0
            for route in dict.fromkeys(routes):
                if route in released:
                    continue
                queued += await _queue_update(tx, story, route, article_id, at, changed=False)
            return queued

    async def count_stories(self) -> int:
        rows = await self._db.fetchall("SELECT count(*) FROM stories")
        return int(rows[0][0])


def _index_change(conn: sqlite3.Connection, rowid: int, old: tuple[str, str], url: str | None,
                  article: Article,
                  places_of: Callable[[str, str], tuple[str, str, str, str]] | None,
                  terms_of: Callable[[str, str], str] | None, keys: int | None) -> None:
    """Give the lookup indexes a changed article's new title and text (its stored link ``url``
    is kept).

    A contentless FTS5 row is forgotten only when told the values it was given: when the
    article's row is the places of its stored title and text (it is not listed in
    PLACES_INEXACT, no rebuild or word-only placing is pending, and the index holds the
    engine's keys), the row is replaced in place, under the same key. Otherwise the article
    takes the next rowid and is indexed anew there, its old row left to find no article (pages
    pass over it); and with neither the engine's places nor its words, it keeps its old row,
    listed as inexact, and the index is marked for the next writer with them to rebuild."""
    title, text = article.title, article.text
    if conn.execute("SELECT 1 FROM index_keys WHERE building IS NOT NULL").fetchone():
        # A rebuild under way may have indexed this article's old text already: its swap
        # cannot vouch for the rows it swaps in, and the next writer rebuilds again.
        conn.execute(MARK_REBUILD_UNSURE)
    exact = (places_of is not None and keys is not None
             and conn.execute(f"SELECT 1 FROM {PLACES_INEXACT} WHERE article = ?",
                              (rowid,)).fetchone() is None
             and conn.execute(f"SELECT 1 FROM {PLACES_INCOMPLETE}").fetchone() is None
             and conn.execute("SELECT 1 FROM index_keys WHERE version = ? AND building IS NULL",
                              (keys,)).fetchone() is not None)
    if exact and places_of is not None:
        (key,) = conn.execute(f"SELECT {INDEX_KEY_SQL} FROM articles a WHERE a.rowid = ?",
                              (rowid,)).fetchone()
        conn.execute(FORGET_PLACES, (key, *places_of(*old)))
        new = places_of(title, text)
        conn.execute(INSERT_PLACES, (key, *new))
        add_index_words(conn, [" ".join(new)])
        return
    if places_of is None and terms_of is None:
        # Nothing here can read the new text: the index keeps the old until the next writer
        # with the engine's places rebuilds, which the mark has it do (without it the article
        # was never found by its new words, whoever opened the store next).
        conn.execute(f"INSERT OR IGNORE INTO {PLACES_INEXACT} (article) VALUES (?)", (rowid,))
        conn.execute(MARK_WORDS_ONLY)
        return
    (moved,) = conn.execute("SELECT coalesce(max(rowid), 0) + 1 FROM articles").fetchone()
    conn.execute("UPDATE articles SET rowid = ? WHERE rowid = ?", (moved, rowid))
    conn.execute(f"DELETE FROM {PLACES_INEXACT} WHERE article = ?", (rowid,))
    places = places_of(title, text) if places_of is not None else None
    if terms_of is not None:
        terms = terms_of(title, text)
    else:  # the places hold every word the word index would (keys and norms)
        terms = " ".join(sorted(set(" ".join(places or ()).split())))
    link: str | None = ""
    if url:
        link = terms_of(url, "") if terms_of is not None else None
    index_articles(conn, [(moved, terms, link or "", places)])
    if link is None:
        conn.execute(MARK_URL_GAP, (iso(datetime.now(UTC)),))
