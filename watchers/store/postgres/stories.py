"""Stories on PostgreSQL: the same rules as the SQLite store (:mod:`watchers.store.sqlite.stories`).

A story row is written in the transaction that stores its first article and updated by each
later one: ``first_seen`` / ``last_seen`` widen, the count grows, a new source is appended to
``outlets`` (a jsonb array, in reporting order; the outlet it reports as goes in the jsonb
object ``source_outlets``, which corroboration counts: see OutletCount) and the signature is
replaced. What a route gets
for a story's article is :func:`watchers.store.base.story_outcome`, decided against the rows the
story already has on the route; writers decide under the ``articles`` advisory lock.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs (asyncpg-stubs is not a dependency)

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
from watchers.store.postgres._db import _DRIVER_ERRORS, LOCKS, NEWSWATCH, Pg
from watchers.store.sqlite._db import rules_json

__all__ = ["StoriesMixin", "story_batch", "story_rows", "write_stories"]

STORY_COLS = "id, headline, first_seen, last_seen, articles, outlets, signature, updated_at"
STORY_COLS_S = ", ".join("s." + c.strip() for c in STORY_COLS.split(","))


def story_of(row: asyncpg.Record | Sequence[Any]) -> StoryRecord:
    id_, headline, first, last, articles, outlets, signature, updated = row
    return StoryRecord(
        id=str(id_), headline=str(headline), first_seen=first, last_seen=last,
        articles=int(articles), outlets=tuple(json.loads(outlets)), signature=str(signature),
        updated_at=updated,
    )


# One row per story of a write batch (see StoryBatch): the batch's dates widen the stored ones,
# its articles add to the count; outlets and signature are the batch's final ones.
_UPSERT_STORY = (
    "INSERT INTO stories AS s (id, headline, first_seen, last_seen, signature, articles, "
    "outlets, source_outlets) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb) "
    "ON CONFLICT (id) DO UPDATE SET first_seen = least(s.first_seen, excluded.first_seen), "
    "last_seen = greatest(s.last_seen, excluded.last_seen), signature = excluded.signature, "
    "articles = s.articles + excluded.articles, outlets = excluded.outlets, "
    "source_outlets = excluded.source_outlets")
_LIVE = list(LIVE_ALERT_STATES)
_LIVE_OR_WAITING = [*LIVE_ALERT_STATES, "waiting"]
# Why a waiting alert was not posted when another rule's alert on the route posted the story.
_SUPERSEDED = "another rule's alert posted the story on this route first"
# A story's alerts waiting for corroboration, and the release of those its outlets now let
# post (see the SQLite store's).
_WAITING = ("SELECT id, route, min_sources FROM outbox WHERE story_id = $1 AND "
            "state = 'waiting' ORDER BY id")
# (Still waiting when updated: another process may have settled one meanwhile, as the story
# window's end or a lowered wait does; the routes of those it released come back.)
_RELEASE = ("UPDATE outbox SET state = 'pending', updated_at = $2 "
            "WHERE id = ANY($1::bigint[]) AND state = 'waiting' RETURNING route")
# Each server route with the stored models of its server's follows (see OutletCount).
_ROUTE_FEEDS = ("SELECT r.name, s.model FROM routes r JOIN sources s ON s.guild_id = r.guild_id "
                "WHERE r.guild_id IS NOT NULL AND r.name = ANY($1::text[])")
# The follows of one server, or of every server (the operator's count: see outlets_seen).
_SERVER_FOLLOWS = "SELECT model FROM sources WHERE guild_id = $1 ORDER BY name"
_EVERY_FOLLOW = "SELECT model FROM sources WHERE guild_id IS NOT NULL ORDER BY name"


async def outlet_count(conn: asyncpg.Connection, outlets: Sequence[str], routes: Iterable[str],
                       names: Mapping[str, str] | None = None,
                       stored: Mapping[str, str] | None = None) -> OutletCount:
    """A story's ``outlets`` as the readers of each of ``routes`` count them, by the outlets
    its sources reported as (``stored``), else those ``names`` gives them (see OutletCount):
    the follows of the routes' servers are read only when a server's feed is among the
    outlets."""
    if not OutletCount.private(outlets):
        return OutletCount(outlets, names=names, stored=stored)
    rows = await conn.fetch(_ROUTE_FEEDS, list(dict.fromkeys(routes)))
    return OutletCount(outlets, route_feeds((str(r[0]), str(r[1])) for r in rows), names,
                       stored)


async def release(conn: asyncpg.Connection, story: str, outlets: Sequence[str],
                  when: datetime, routes: Iterable[str] = (), *, waits: bool = True,
                  names: Mapping[str, str] | None = None,
                  stored: Mapping[str, str] | None = None) -> tuple[set[str], OutletCount]:
    """Release the story's alerts that wait for corroboration and have, on their route, the
    outlets they wait for; returns the routes released on and the story's outlets as counted
    on those and on ``routes``. ``waits`` False: the story has no waiting alert. ``names``,
    ``stored``: the sources' outlets now and as they reported (see OutletCount)."""
    waiting = ([(int(r[0]), str(r[1]), int(r[2])) for r in await conn.fetch(_WAITING, story)]
               if waits else [])
    count = await outlet_count(conn, outlets, [*(r for _, r, _ in waiting), *routes], names,
                               stored)
    ready = count.releases(waiting)
    if not ready:
        return set(), count
    return {str(r[0]) for r in await conn.fetch(_RELEASE, [i for i, _ in ready], when)}, count


async def story_batch(conn: asyncpg.Connection, story_ids: Sequence[str],
                      names: Mapping[str, str] | None = None) -> StoryBatch:
    """The stored outlets of these stories (and the outlets their sources reported as), on
    which routes they have outbox rows and which of them have alerts waiting for
    corroboration: two reads for a whole write batch (see StoryBatch). ``names``: the
    sources' outlets now, which the batch's new sources are kept with (see OutletNames)."""
    if not story_ids:  # grouping off: no round trip
        return StoryBatch({}, (), names=names)
    stories = await conn.fetch(
        "SELECT id, outlets, source_outlets FROM stories WHERE id = ANY($1::text[])", story_ids)
    outlets = {str(r[0]): [str(n) for n in json.loads(r[1])] for r in stories}
    sources = {str(r[0]): sources_of(r[2]) for r in stories}
    rows = await conn.fetch(
        "SELECT story_id, route, bool_or(state = 'waiting') FROM outbox "
        "WHERE story_id = ANY($1::text[]) GROUP BY story_id, route", story_ids)
    return StoryBatch(outlets, {str(r[0]) for r in rows if r[2]},
                      {(str(r[0]), str(r[1])) for r in rows}, sources, names)


async def write_stories(conn: asyncpg.Connection, batch: StoryBatch) -> None:
    """Write a batch's stories, one upsert each (in the batch's transaction)."""
    rows = batch.rows()
    if rows:
        await conn.executemany(_UPSERT_STORY, rows)


async def story_rows(conn: asyncpg.Connection, article: Article, rec: ArticleRecord,
                     outlets: Sequence[str], rules_docs: Sequence[str], when: datetime,
                     nonce: Callable[[], str], batch: StoryBatch | None = None,
                     names: Mapping[str, str] | None = None,
                     stored: Mapping[str, str] | None = None) -> list[tuple[Any, ...]]:
    """The outbox rows of a stored article of a story, decided route by route; releases alerts
    that waited for the outlets this article brings (before the new rows: they keep their
    place ahead of them). ``outlets``: the story's distinct outlets, this article's included
    (counted per route: :class:`OutletCount`). ``batch``: the write batch's StoryBatch, which
    lets queries that could find nothing be skipped (None: none is), and learns the rows
    written. ``names``: the sources' outlets now; ``stored``: as they reported (the batch's,
    with a batch; see OutletCount)."""
    assert rec.story is not None
    story = rec.story.id
    if batch is not None:
        stored = batch.stored(story)
    released, count = await release(conn, story, outlets, when, (e.route for e in rec.alerts),
                                    waits=batch is None or story in batch.waiting, names=names,
                                    stored=stored)
    rows: list[tuple[Any, ...]] = []
    for entry, rules in zip(rec.alerts, rules_docs, strict=True):
        if (met := corroborated(entry, count.on(entry.route))) is not entry:
            entry, rules = met, rules_json([met])[0]
        kind, state, escalated = await _outcome(
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


async def _outcome(conn: asyncpg.Connection, story: str, entry: OutboxEntry, outlets: int,
                   routed: bool = True) -> tuple[str | None, str, str | None]:
    """What the route gets (see story_outcome); ``routed`` False: the story has no outbox row
    on the route, so none is read."""
    if entry.suppressed:
        return "alert", "suppressed", None
    if entry.stories == "off":
        return "alert", "pending" if outlets >= entry.min_sources else "waiting", None
    if not routed:
        return story_outcome(entry, outlets, [])
    existing = await conn.fetch(
        "SELECT id, state, severity, min_sources, escalated_from FROM outbox WHERE "
        "story_id = $1 AND route = $2 AND kind = 'alert' AND state = ANY($3::text[]) "
        "ORDER BY id", story, entry.route, _LIVE_OR_WAITING)
    kind, state, escalated = story_outcome(
        entry, outlets, [(str(r["state"]), r["severity"], int(r["min_sources"]))
                         for r in existing])
    if kind == "alert":
        superseded, escalates = waiting_changes(
            entry, state == "pending",
            [(int(r["id"]), r["severity"], int(r["min_sources"]), r["escalated_from"])
             for r in existing if r["state"] == "waiting"])
        if superseded:
            # Not posted: this article's alert posts the story on the route no later, and is
            # at least as severe (its rule's later articles update that message).
            await conn.execute("UPDATE outbox SET state = 'uncorroborated', reason = $2 "
                               "WHERE id = ANY($1::bigint[])", superseded, _SUPERSEDED)
        if escalates:
            await conn.executemany("UPDATE outbox SET escalated_from = $1 WHERE id = $2",
                                   [(sev, i) for i, sev in escalates.items()])
    return kind, state, escalated


async def _queue_update(conn: asyncpg.Connection, story: str, route: str, article_id: str,
                        at: datetime, *, changed: bool) -> int:
    """An ``update`` of the story's message on a route where it has a live alert (1), or
    nothing (0)."""
    live = await conn.fetchrow(
        "SELECT rules, severity FROM outbox WHERE story_id = $1 AND route = $2 AND "
        "kind = 'alert' AND state = ANY($3::text[]) ORDER BY id DESC LIMIT 1",
        story, route, _LIVE)
    if live is None:
        return 0
    await conn.execute(
        "INSERT INTO outbox (kind, article_id, route, rules, state, nonce, created_at, "
        "updated_at, story_id, severity, changed) "
        "VALUES ('update', $1, $2, $3, 'pending', $4, $5, $5, $6, $7, $8)",
        article_id, route, live["rules"], secrets.token_hex(12), at, story, live["severity"],
        changed)
    return 1


log = logging.getLogger(__name__)

# How long a worker waits for another to finish grouping its poll into stories (see
# story_grouping) before it groups without waiting.
GROUPING_WAIT_S = 30.0


class StoriesMixin(OutletNames):
    """The :class:`watchers.store.StoryStore` part of :class:`PostgresStore`."""

    _db: Pg

    @asynccontextmanager
    async def story_grouping(self) -> AsyncIterator[bool]:
        """Held while a poll worker groups a poll's new articles into stories and writes them:
        workers group one at a time, each after reading the stories the others wrote, so an
        event two workers' outlets report at once is one story, not one in each worker.

        A transaction-scoped advisory lock on a connection of its own, its transaction held
        open (nothing is written in it) and rolled back at the end: a pool connection keeps
        no lock past its release, whatever ends the block. Yields whether the lock is held:
        after :data:`GROUPING_WAIT_S` of waiting for another worker (one that hangs), the poll
        groups without it, as a worker did before (its stories may then split)."""
        async with self._db.statement("grouping stories") as conn:
            tr = conn.transaction()
            held = False
            try:
                await tr.start()
                await conn.execute(f"SET LOCAL lock_timeout = '{int(GROUPING_WAIT_S * 1000)}ms'")
                await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", NEWSWATCH,
                                   LOCKS["stories"])
                held = True
            except asyncpg.exceptions.LockNotAvailableError:
                log.warning("another poll worker has been grouping stories for %.0f s: "
                            "grouping this poll without waiting for it", GROUPING_WAIT_S)
            except _DRIVER_ERRORS as exc:  # the database is away: the writes will say so
                log.debug("no story grouping lock: %s", exc)
            try:
                yield held
            finally:
                with suppress(*_DRIVER_ERRORS):
                    await tr.rollback()

    async def live_stories(self, since: datetime | timedelta, *, until: datetime | None = None
                           ) -> list[StoryRecord]:
        """Stories reported at or after ``since``; a timedelta counts back from the newest
        story's last report (of those at or before ``until``, when given)."""
        if isinstance(since, timedelta):
            # Not past ``until``: a story dated in the future (stored before such dates were
            # refused) would otherwise leave every other story out of the window.
            newest = await self._db.fetchval(
                "SELECT max(last_seen) FROM stories WHERE $1::timestamptz IS NULL "
                "OR last_seen <= $1", until)
            if newest is None:
                return []
            try:
                since = newest - since
            except OverflowError:  # the newest is dated near year 1 (a placeholder date)
                since = datetime.min.replace(tzinfo=UTC)
        rows = await self._db.fetch(
            f"SELECT {STORY_COLS} FROM stories WHERE last_seen >= $1 ORDER BY last_seen", since)
        return [story_of(r) for r in rows]

    async def stories_touched(self, after: datetime | None
                              ) -> tuple[list[StoryRecord], datetime]:
        """Stories written after ``after`` (the database's clock; None: none), oldest write
        first, and the database's clock before they were read: the next call's ``after``,
        less a slack for writes that were still committing (see WatchService._sync_stories)."""
        clock = await self._db.fetchval("SELECT clock_timestamp()")
        if after is None:
            return [], clock
        rows = await self._db.fetch(
            f"SELECT {STORY_COLS} FROM stories WHERE touched_at > $1 ORDER BY touched_at",
            after)
        return [story_of(r) for r in rows], clock

    async def get_story(self, story_id: str) -> StoryRecord | None:
        rows = await self._db.fetch(f"SELECT {STORY_COLS} FROM stories WHERE id = $1", story_id)
        return story_of(rows[0]) if rows else None

    async def stories_of(self, article_ids: Sequence[str]) -> dict[str, StoryRecord]:
        """The story of each of these articles that has one, by article id."""
        rows = await self._db.fetch(
            f"SELECT a.id, {STORY_COLS_S} FROM articles a JOIN stories s ON s.id = a.story_id "
            "WHERE a.id = ANY($1::text[])", list(dict.fromkeys(article_ids)))
        return {str(r[0]): story_of(tuple(r)[1:]) for r in rows}

    async def counted_outlets(self, story_id: str, routes: Sequence[str]) -> dict[str, int]:
        """How many distinct outlets each of ``routes``' readers count among the story's
        sources: what an alert there waiting for ``min_sources`` has ({} for no such story)."""
        async with self._db.tx() as conn:
            row = await conn.fetchrow(
                "SELECT outlets, source_outlets FROM stories WHERE id = $1", story_id)
            if row is None:
                return {}
            wanted = list(dict.fromkeys(routes))
            count = await outlet_count(conn, [str(n) for n in json.loads(row[0])], wanted,
                                       self._outlet_names, sources_of(row[1]))
        return {route: count.on(route) for route in wanted}

    async def outlets_seen(self, story_ids: Sequence[str], *, guild: int | None = None
                           ) -> dict[str, int]:
        """How many distinct outlets each of these stories has as a server's readers count
        them (``guild``: the config file's sources and that server's follows, as on its
        routes), or the operator (None: every source, a followed feed by its first follow's
        outlet); by story id, for the stories stored."""
        async with self._db.tx() as conn:
            found = {str(r[0]): ([str(n) for n in json.loads(r[1])], sources_of(r[2]))
                     for r in await conn.fetch(
                         "SELECT id, outlets, source_outlets FROM stories "
                         "WHERE id = ANY($1::text[])", list(dict.fromkeys(story_ids)))}
            followed: dict[str, str] = {}
            if any(OutletCount.private(outlets) for outlets, _ in found.values()):
                rows = (await conn.fetch(_EVERY_FOLLOW) if guild is None
                        else await conn.fetch(_SERVER_FOLLOWS, guild))
                followed = follow_outlets(str(r[0]) for r in rows)
        return {sid: OutletCount(outlets, names=self._outlet_names, stored=kept)
                .seen(followed, every=guild is None)
                for sid, (outlets, kept) in found.items()}

    async def story_articles(self, story_id: str, *, limit: int = 100) -> list[Article]:
        """The story's articles, oldest first."""
        from watchers.store.postgres.articles import ARTICLE_COLS, article_of

        rows = await self._db.fetch(
            f"SELECT {ARTICLE_COLS} FROM articles WHERE story_id = $1 "
            "ORDER BY sort_at, rowid LIMIT $2", story_id, limit)
        return [article_of(r) for r in rows]

    async def story_alert(self, story_id: str, route: str) -> OutboxRow | None:
        """The story's newest delivered alert on a route (what its updates re-render)."""
        from watchers.store.postgres.outbox import OUTBOX_COLS, row_of

        rows = await self._db.fetch(
            f"SELECT {OUTBOX_COLS} FROM outbox WHERE story_id = $1 AND route = $2 AND "
            "kind = 'alert' AND state = 'delivered' ORDER BY id DESC LIMIT 1", story_id, route)
        return row_of(rows[0]) if rows else None

    async def story_message(self, story_id: str, route: str
                            ) -> tuple[str | None, str | None] | None:
        """The story's message and thread on a route, or None if it was never posted there."""
        rows = await self._db.fetch(
            "SELECT message_id, thread_id FROM story_routes WHERE story_id = $1 AND route = $2",
            story_id, route)
        return (rows[0][0], rows[0][1]) if rows else None

    async def set_story_message(self, story_id: str, route: str, message_id: str | None,
                                thread_id: str | None, *, posted_by: int | None = None
                                ) -> None:
        async with self._db.tx() as conn:
            await conn.execute(
                "INSERT INTO story_routes (story_id, route, message_id, thread_id) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (story_id, route) DO UPDATE SET "
                "message_id = excluded.message_id, thread_id = excluded.thread_id",
                story_id, route, message_id, thread_id)
            if posted_by is not None:
                await conn.execute("UPDATE outbox SET kind = 'alert' WHERE id = $1 AND "
                                   "kind = 'update'", posted_by)

    async def expire_waiting(self, before: datetime) -> int:
        """Alerts still waiting for corroboration written before ``before``, or whose story's
        last article is dated before it, become ``uncorroborated`` (see the SQLite store's).
        Returns how many."""
        return await self._db.execute(
            "UPDATE outbox SET state = 'uncorroborated', reason = 'the story window ended "
            "before enough outlets reported it', updated_at = $1 "
            "WHERE state = 'waiting' AND (created_at < $2 OR EXISTS (SELECT 1 FROM stories "
            "WHERE stories.id = outbox.story_id AND stories.last_seen < $2))",
            datetime.now(UTC), before)

    async def lower_wait(self, row_id: int, min_sources: int) -> bool:
        """A waiting alert whose rule now needs another number of outlets waits for those, and
        posts at once if its story has them already (fewer); returns whether it was
        released."""
        async with self._db.tx() as conn:
            await conn.execute(
                "UPDATE outbox SET min_sources = $2 WHERE id = $1 AND state = 'waiting' AND "
                "min_sources <> $2", row_id, min_sources)
            row = await conn.fetchrow(
                "SELECT o.route, o.min_sources, s.outlets, s.source_outlets FROM outbox o "
                "JOIN stories s ON s.id = o.story_id WHERE o.id = $1 AND o.state = 'waiting' "
                "FOR UPDATE OF o", row_id)
            if row is None:
                return False
            route, outlets = str(row[0]), json.loads(row[2])
            count = await outlet_count(conn, outlets, [route], self._outlet_names,
                                       sources_of(row[3]))
            if int(row[1]) > count.on(route):
                return False
            return bool(await conn.fetch(_RELEASE, [row_id], datetime.now(UTC)))

    async def record_change(self, stored_id: str, article: Article, routes: Sequence[str],
                            *, matches: Sequence[Fired] = (),
                            alerts: Sequence[OutboxEntry] = (),
                            rematched: bool = False) -> int:
        """A stored article whose content changed in place: keep the new title and text, mark
        its story updated, queue an ``update`` on each of ``routes`` where the story has a live
        alert; ``matches`` (all of them with ``rematched``, replacing the stored ones) and
        ``alerts`` (what the new version fires that the stored one did not: an alert where the
        story has none on the route, an escalation), as the SQLite store's. Returns how many
        rows were queued. The lookup terms stay as they were (as with the SQLite store's
        contentless index)."""
        at = datetime.now(UTC)
        async with self._db.tx(LOCKS["articles"]) as conn:
            row = await conn.fetchrow("SELECT story_id FROM articles WHERE id = $1", stored_id)
            if row is None:
                return 0
            content = stored_hash(article.source, article.content_hash)
            if await conn.fetchval("SELECT 1 FROM articles WHERE content_hash = $1",
                                   content) is not None:
                return 0
            await conn.execute(
                "UPDATE articles SET title = $1, text = $2, content_hash = $3 WHERE id = $4",
                article.title, article.text, content, stored_id)
            story = row[0]
            if story is None:
                return 0
            await conn.execute("UPDATE stories SET updated_at = $1 WHERE id = $2", at, story)
            queued = 0
            for route in dict.fromkeys(routes):
                queued += await _queue_update(conn, story, route, stored_id, at, changed=True)
            if rematched:
                await conn.execute("DELETE FROM matches WHERE article_id = $1", stored_id)
            if matches:
                await conn.executemany(
                    "INSERT INTO matches (article_id, rule, score, hits, matched_at) "
                    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (article_id, rule) DO UPDATE SET "
                    "score = excluded.score, hits = excluded.hits, "
                    "matched_at = excluded.matched_at, retired = FALSE",
                    [(stored_id, m.rule, m.score, hits_json(m.hits), at) for m in matches])
            fresh = list(alerts)
            if fresh:
                from watchers.store.postgres.articles import INSERT_OUTBOX, new_nonce

                outlets, kept = await conn.fetchrow(
                    "SELECT outlets, source_outlets FROM stories WHERE id = $1", story)
                changed = article.model_copy(update={"id": stored_id})
                rec = ArticleRecord(changed, (), fresh, "", StoryLink(story, "", "", at))
                rules = rules_json(fresh)
                rows = [r for r in await story_rows(conn, changed, rec,
                                                    json.loads(outlets or "[]") or
                                                    [article.source], rules, at, new_nonce,
                                                    names=self._outlet_names,
                                                    stored=sources_of(kept))
                        if r[0] != "update" and await conn.fetchval(
                            "SELECT 1 FROM outbox WHERE article_id = $1 AND route = $2 AND "
                            "kind = 'alert'", r[1], r[2]) is None]
                if rows:
                    await conn.executemany(INSERT_OUTBOX, rows)
                queued += len(rows)
            return queued

    async def add_outlet(self, article_id: str, outlet: str, when: datetime,
                         routes: Sequence[str]) -> int:
        """A wire copy of a stored article from another outlet: the story counts the outlet,
        waiting alerts may post, and the story's message on each of ``routes`` is updated.
        Returns how many updates were queued (0 when the story knew the outlet already)."""
        at = datetime.now(UTC)
        async with self._db.tx(LOCKS["articles"]) as conn:
            story = await conn.fetchval("SELECT story_id FROM articles WHERE id = $1",
                                        article_id)
            if story is None:
                return 0
            if await conn.fetchval("SELECT 1 FROM stories WHERE id = $1 AND outlets ? $2",
                                   story, outlet) is not None:
                return 0
            # The copy's source is kept with the outlet it reports as, as an article's is.
            named = self._outlet_names.get(outlet)
            row = await conn.fetchrow(
                "UPDATE stories SET last_seen = greatest(last_seen, $1), "
                "outlets = outlets || jsonb_build_array($2::text), "
                "source_outlets = source_outlets || $4::jsonb WHERE id = $3 "
                "RETURNING outlets, source_outlets", when, outlet, story,
                "{}" if named is None else json.dumps({outlet: named}))
            if row is None:
                return 0
            released, _ = await release(conn, story, json.loads(row[0]), at,
                                        names=self._outlet_names, stored=sources_of(row[1]))
            queued = 0
            for route in dict.fromkeys(routes):
                if route in released:
                    continue
                queued += await _queue_update(conn, story, route, article_id, at, changed=False)
            return queued

    async def count_stories(self) -> int:
        return int(await self._db.fetchval("SELECT count(*) FROM stories"))
