"""Articles, their matches, and lookup candidates, on PostgreSQL.

Dedupe follows the SQLite store's rules exactly (the pure part, ``_Identities.duplicate`` and
``add``, is shared with it, and so is the link rule's SQL, ``same_link_sql``): content
fingerprint, normalised link (unless a live page's items differ by guid and title), (source,
guid) when the links agree. A batch decides under the ``articles`` advisory lock, so two writers
never both store the same article.

Lookups: an article's index terms (the rule engine's word keys) are a ``tsvector`` under the
``simple`` configuration, GIN-indexed. The index query the search layer gives is in the SQLite
FTS5 subset that :mod:`watchers.rules.lookup` writes (quoted or bare words, ``*`` prefixes,
AND / OR / NOT, parentheses); :func:`fts_to_tsquery` translates it, word for word, so both
backends find the same candidates. Candidate pages are in ``(sort_at, rowid)`` order, newest
first, with the cursor ``s<sort_at> <rowid>`` for index and scan pages alike.

A page holds at most ``PAGE_CAP`` articles on the first two pages of a lookup, then twice as many
as the last on each page that continues it (up to ``PAGE_CAP_MAX``), whatever the caller asks
for: every candidate is read whole, and lookups usually stop a few rows into their last page.
Sparse matches are read from the GIN index within a window of the date index when that is
cheaper than visiting every older match; with a ``url:`` query, from the URL index's rows, which
carry their articles' times, testing the newest candidates' titles and texts first. What a
page learnt (the density of matches it met, the further matches a GIN read found) is left for
the page that continues its cursor (:class:`Continuations`); a page without it reads afresh.
Either way the pages hold every match once, newest first (a GIN read's positions as of that
read).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs (asyncpg-stubs is not a dependency)

from watchers.errors import StoreError
from watchers.models import Article, Fired, Hit, Match, hits_json
from watchers.store._shared import (
    FEED_COPY_HASH,
    FEED_COPY_WHERE,
    CandidateList,
    ListedWords,
    article_hash,
    article_identity,
    dedupe_hashes,
    free_id,
    link_terms,
    same_link_sql,
    summaries_stored,
    unbatched_listed,
)
from watchers.store.base import (
    MIN_PREFIX,
    PREFIX_CANDIDATES,
    SERVER_FEED_PREFIX,
    URLS_INCOMPLETE,
    ArticleRecord,
    CandidatePage,
    CandidateScreen,
    CapSummary,
    only_one,
    sort_time,
)
from watchers.store.postgres._db import LOCKS, Pg, now
from watchers.store.postgres.outbox import insert_notice
from watchers.store.postgres.schema import MARK_URL_GAP, fitting_terms
from watchers.store.postgres.stories import story_batch, story_rows, write_stories
from watchers.store.sqlite._db import rules_json
from watchers.store.sqlite.articles import _Identities, prefix_successor
from watchers.store.sqlite.outbox import summary_rules

__all__ = ["ARTICLE_COLS", "ArticlesMixin", "Continuations", "article_of", "fts_to_tsquery",
           "walk_or_index"]

# A candidate page with an index query walks the date index first, WALK_FIRST_PER_ROW rows per
# row wanted (at least WALK_FIRST_MIN); what the walk found tells how dense the matches are, and
# the rest comes from walking on or from the GIN index, whichever reads less: a walked row costs
# WALK_COST times a row the GIN index finds (its tsvector is detoasted and tested; measured at
# 1,000,000 articles with bench/scale_pg_lookup.py).
WALK_FIRST_PER_ROW = 4
WALK_FIRST_MIN = 400
WALK_COST = 3.0
# The GIN read below a walk is bounded to a window of the date index expected to hold
# WINDOW_MARGIN times the matches the page still wants, when the window's rows (each WINDOW_COST
# of a match the unbounded read visits) cost less than every older match (see _window).
WINDOW_MARGIN = 3.0
WINDOW_COST = 0.3
# A posting the GIN index reads for a bitmap, in visits of a matching row (the same).
GIN_POSTING_COST = 0.1
# The most articles one candidate page returns, whatever its caller asks for (a shorter page
# keeps its cursor, as CandidatePage allows): PAGE_CAP for a lookup's first two pages, then
# twice the last for each page that continues one, up to PAGE_CAP_MAX. A lookup asks for
# pages that grow fourfold and usually stops a few rows into the last; every row on a page is
# read whole (its text detoasted, a long page decompressed) and sent, so growing from a
# smaller first page bounds that waste to about what the lookup used, for a few more round
# trips.
PAGE_CAP = 64
PAGE_CAP_MAX = 1024
# Positions of matches one GIN read keeps for the pages after its own (see Continuations).
GIN_IDS = 2000
# A page with a ``url:`` query reads the URL index's matches with their times (see
# _url_matches) when there are at most URL_IDS of them below its start (about 2 µs each); more,
# and it reads as before, walking first and then the planner joining the two indexes.
URL_IDS = 10_000
CONTINUATIONS = 64
CONTINUATION_SECONDS = 30.0
_CHUNK = 1000

ARTICLE_COLS = "id, source, guid, url, title, text, published, fetched_at, content_hash"
ARTICLE_COLS_A = ", ".join("a." + c.strip() for c in ARTICLE_COLS.split(","))

_REJECTED = "search index rejected the query"


def article_of(row: asyncpg.Record | Sequence[Any]) -> Article:
    id_, source, guid, url, title, text, published, fetched_at, content_hash = row
    return Article(id=id_, source=source, guid=guid, url=url, title=title, text=text,
                   published=published, fetched_at=fetched_at,
                   content_hash=article_hash(source, content_hash))


def _match(article_id: str, rule: str, score: float, hits: str) -> Match:
    return Match(rule=rule, article_id=article_id, score=score,
                 hits=tuple(Hit.model_validate(h) for h in json.loads(hits)))


# ------------------------------------------------------------------ the index query

_TOKEN = re.compile(r'\s*(?:(?P<quoted>"(?:[^"]|"")*")|(?P<word>[\w\u0080-\U0010ffff]+)'
                    r'|(?P<op>[()*])|(?P<bad>\S))')


def _lexeme(word: str) -> str:
    # A quoted tsquery operand: to_tsquery('simple') lowercases it and, should it hold several
    # tokens, makes them a phrase (as FTS5 does with a quoted string).
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


async def add_index_words(conn: asyncpg.Connection, terms: Sequence[str]) -> None:
    """List the words of articles' index terms in ``index_words`` (see
    :meth:`ArticlesMixin.index_words`), in the caller's transaction."""
    await list_words(conn, set(" ".join(terms).split()))


# The longest word PostgreSQL's full-text search indexes, in bytes: a longer one is left out of
# an article's tsvector (so no lookup finds it), and listed in index_words it broke the write
# (an index row of more than 2,704 bytes): one 3,000-letter word stopped run at every start.
MAX_WORD_BYTES = 2047


def listable(words: Iterable[str]) -> list[str]:
    """``words`` as index_words lists them: sorted, without the empty and those too long for
    the full-text index (see :data:`MAX_WORD_BYTES`)."""
    return sorted(w for w in words
                  if w and (len(w) * 4 <= MAX_WORD_BYTES or len(w.encode()) <= MAX_WORD_BYTES))


async def list_words(conn: asyncpg.Connection, words: Collection[str]) -> None:
    """List ``words`` in ``index_words``, in the caller's transaction. Sorted, so two writers
    listing the same new words wait for each other in one order and never deadlock."""
    listed = listable(words)
    if listed:
        await conn.execute("INSERT INTO index_words (word) SELECT unnest($1::text[]) ORDER BY 1 "
                           "ON CONFLICT DO NOTHING", listed)


class _Parser:
    """The FTS5 query subset written by :func:`watchers.rules.lookup.index_query` (and typed by
    hand), into ``to_tsquery`` syntax. FTS5's precedence: NOT binds tighter than AND (also
    implicit between terms), which binds tighter than OR."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:  # only trailing whitespace is left
                break
            pos = m.end()
            kind = m.lastgroup
            if kind is None:
                break
            value = m.group(kind)
            if kind == "bad" or (kind == "quoted" and len(value) < 2):
                raise StoreError(f"{_REJECTED}: unexpected {value!r} in {text!r}")
            if kind == "word" and value in ("AND", "OR", "NOT"):
                kind = "op"
            self.tokens.append((kind, value))
        self.at = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise StoreError(f"{_REJECTED}: {self.text!r} ends too early")
        self.at += 1
        return tok

    def parse(self) -> str:
        out = self.or_expr()
        if self.peek() is not None:
            raise StoreError(f"{_REJECTED}: unexpected {self.peek()[1]!r} in "  # type: ignore[index]
                             f"{self.text!r}")
        return out

    def or_expr(self) -> str:
        parts = [self.and_expr()]
        while self.peek() == ("op", "OR"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else "(" + " | ".join(parts) + ")"

    def and_expr(self) -> str:
        parts = [self.not_expr()]
        while (tok := self.peek()) is not None and tok != ("op", "OR") and tok != ("op", ")"):
            if tok == ("op", "AND"):
                self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else "(" + " & ".join(parts) + ")"

    def not_expr(self) -> str:
        out = self.primary()
        while self.peek() == ("op", "NOT"):
            self.take()
            out = f"({out} & !{self.primary()})"
        return out

    def primary(self) -> str:
        kind, value = self.take()
        if (kind, value) == ("op", "("):
            inner = self.or_expr()
            if self.take() != ("op", ")"):
                raise StoreError(f"{_REJECTED}: a parenthesis is not closed in {self.text!r}")
            return inner
        if kind == "quoted":
            word = value[1:-1].replace('""', '"')
        elif kind == "word":
            word = value
        else:
            raise StoreError(f"{_REJECTED}: unexpected {value!r} in {self.text!r}")
        if self.peek() == ("op", "*"):
            self.take()
            return _lexeme(word) + ":*"
        return _lexeme(word)


def _literal(text: str) -> str:
    """``text`` as an SQL string literal (an escape string: its meaning does not depend on
    ``standard_conforming_strings``)."""
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def walk_or_index(wanted: int, walked: int, found: int, rows: int) -> int:
    """How many rows to walk on for ``wanted`` more matches, having found ``found`` in the
    last ``walked`` rows, of about ``rows`` in all; 0: turn to the GIN index instead."""
    density = (found + 1) / walked  # +1: an empty walk still says "rare", not "none"
    walk = wanted / density
    # In visits of a matching row: the GIN read of every older match, or of a window of the
    # date index (its rows, and the query's whole posting lists to AND with them).
    index = density * rows
    window = WINDOW_COST * WINDOW_MARGIN * walk + GIN_POSTING_COST * index
    if walk * WALK_COST > min(index, window):
        return 0
    return max(WALK_FIRST_MIN, int(2 * walk))


def fts_to_tsquery(fts: str) -> str:
    """The ``to_tsquery('simple', …)`` text of an FTS5 index query; StoreError if it is not
    one (the same "search index rejected the query" the SQLite store gives)."""
    return _Parser(fts).parse()


# ------------------------------------------------------------------ filters


def visible_clause(follows: Collection[str], column: str, params: list[Any]) -> str:
    """What a server sees (see the SQLite store's ``visible_clause``): articles of sources
    every server sees, and those of the server feeds it follows. Appends to ``params``."""
    params.append(SERVER_FEED_PREFIX)
    clause = f"(left({column}, 1) <> ${len(params)}"
    keys = sorted(set(follows))
    if keys:
        params.append(keys)
        clause += f" OR {column} = ANY(${len(params)}::text[])"
    return clause + ")"


def _filters(since: datetime | None, source: str | None, follows: Collection[str] | None,
             params: list[Any], column: str = "source", sort: str = "sort_at",
             sources: Collection[str] | None = None) -> str:
    where = ""
    if since is not None:
        params.append(since)
        where += f" AND {sort} >= ${len(params)}"
    if source is not None:
        params.append(source)
        where += f" AND {column} = ${len(params)}"
    if sources is not None:
        params.append(sorted(set(sources)))
        where += f" AND {column} = ANY(${len(params)}::text[])"
    if follows is not None:
        where += " AND " + visible_clause(follows, column, params)
    return where


def _cursor_position(cursor: str) -> tuple[datetime, int]:
    sort_at, _, rowid = cursor[1:].partition(" ")
    if not cursor.startswith("s") or not rowid.isdigit():
        raise ValueError(f"not an articles cursor: {cursor!r}")
    try:
        return datetime.fromisoformat(sort_at), int(rowid)
    except ValueError:
        raise ValueError(f"not an articles cursor: {cursor!r}") from None


# ------------------------------------------------------------------ dedupe


async def _stored_hashes(conn: asyncpg.Connection, hashes: list[str]) -> set[str]:
    """Those of ``hashes`` some stored article has."""
    rows = await conn.fetch(
        "SELECT content_hash FROM articles WHERE content_hash = ANY($1::text[])", hashes)
    return {str(r[0]) for r in rows}


class _PgIdentities(_Identities):
    """The SQLite store's batch dedupe, loaded from PostgreSQL (arrays instead of IN lists)."""

    async def load_pg(self, conn: asyncpg.Connection, articles: Sequence[Article]) -> None:
        for i in range(0, len(articles), _CHUNK):
            chunk = articles[i:i + _CHUNK]
            self.hashes |= await _stored_hashes(
                conn, list({h for a in chunk for h in dedupe_hashes(a)}))
            chunk = self.new_content(chunk)
            links = list({link for a in chunk if (link := article_identity(a)[0])})
            if links:
                for link, source, guid, title in await conn.fetch(
                        "SELECT link_key, source, guid, title FROM articles "
                        "WHERE link_key = ANY($1::text[])", links):
                    self.link_row(link, source, guid, title)
            pairs = list({(a.source, a.guid) for a in chunk if a.guid})
            if pairs:
                for source, guid, link in await conn.fetch(
                        "SELECT a.source, a.guid, a.link_key FROM articles a JOIN "
                        "unnest($1::text[], $2::text[]) AS p(source, guid) "
                        "ON a.source = p.source AND a.guid = p.guid",
                        [p[0] for p in pairs], [p[1] for p in pairs]):
                    self.guid_row(source, guid, link)


async def _duplicate_of(conn: asyncpg.Connection, article: Article) -> str | None:
    """The id of the stored article ``article`` duplicates (the SQLite store's rules)."""
    link, _ = article_identity(article)
    found = await conn.fetchval("SELECT id FROM articles WHERE content_hash = ANY($1::text[])",
                                list(dedupe_hashes(article)))
    if found is not None:
        return str(found)
    # The first matching row by rowid in each query below. ``rowid + 0``: ordered by the
    # primary key itself, a LIMIT 1 may be planned as a walk down that key from the oldest
    # article, testing each, until the first of the link's (or guid's) rows that holds; the
    # link's (guid's) rows are found through their index and the first of them kept instead.
    if link:
        same, params = same_link_sql(article, lambda n: f"${n}")
        found = await conn.fetchval(
            f"SELECT id FROM articles WHERE link_key = $1 AND {same} ORDER BY rowid + 0 LIMIT 1",
            link, *params)
        if found is not None:
            return str(found)
    if article.guid:
        # guid_links_agree: a guid alone is trusted only when the links do not contradict it.
        found = await conn.fetchval(
            "SELECT id FROM articles WHERE source = $1 AND guid = $2 AND ($3 OR link_key IS NULL "
            "OR link_key = '' OR link_key = $4) ORDER BY rowid + 0 LIMIT 1",
            article.source, article.guid, not link, link)
        if found is not None:
            return str(found)
    return None


def new_nonce() -> str:
    return secrets.token_hex(12)


INSERT_OUTBOX = (
    "INSERT INTO outbox (kind, article_id, route, rules, state, nonce, created_at, updated_at, "
    "story_id, severity, min_sources, escalated_from) "
    "VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11, $12)")


async def _write_outbox(conn: asyncpg.Connection,
                        stored: Sequence[tuple[Article, ArticleRecord]], when: datetime,
                        names: Mapping[str, str] | None = None) -> None:
    """The stored articles' outbox rows, in article order (ids are delivery order); an article
    in a story joins it first and its rows depend on what the story has on each route, rows of
    earlier articles of the same batch included. The batch's stories are read once before the
    first article and written once each after the last (see StoryBatch). ``names``: the
    sources' outlets, which corroboration counts (see OutletNames)."""
    stories = await story_batch(conn, list(dict.fromkeys(
        rec.story.id for _, rec in stored if rec.story is not None)), names)
    plain: list[tuple[Any, ...]] = []
    for article, rec in stored:
        rules = rules_json(rec.alerts)
        if rec.story is None:
            plain += [("alert", article.id, a.route, r,
                       "suppressed" if a.suppressed else "pending", new_nonce(), when, when,
                       None, a.severity, 1, None)
                      for a, r in zip(rec.alerts, rules, strict=True)]
            continue
        if plain:
            await conn.executemany(INSERT_OUTBOX, plain)
            plain = []
        outlets = stories.join(article.title, rec.story)
        rows = await story_rows(conn, article, rec, outlets, rules, when, new_nonce,
                                stories, names)
        if rows:
            await conn.executemany(INSERT_OUTBOX, rows)
    if plain:
        await conn.executemany(INSERT_OUTBOX, plain)
    await write_stories(conn, stories)


def _cursor(sort_at: datetime, rowid: int) -> str:
    return f"s{sort_at.isoformat()} {rowid}"


@dataclass
class _Rest:
    """Positions ``(sort_at, rowid)`` of matches a GIN read found, newest first; ``whole``:
    they are every match there was below the read's edge; ``last``: the position of the last
    match on the page before them."""

    positions: list[tuple[datetime, int]]
    whole: bool
    last: tuple[datetime, int] | None = None
    # The density of matches the read met (per row), and the planner's row count: what the
    # page after these positions needs to read on from the GIN index without walking first.
    sparse: tuple[float, int] | None = None

    def split(self, n: int) -> tuple[list[tuple[datetime, int]], _Rest]:
        return self.positions[:n], _Rest(self.positions[n:], self.whole, sparse=self.sparse)


@dataclass(frozen=True)
class _Next:
    """What a page tells the page that continues it: its size cap, the density of matches
    its walk found (matches per walked row; None: no walk), the GIN read's further matches,
    and, after a GIN read, its density and row count (``sparse``: read on from the index)."""

    cap: int
    density: float | None
    rest: _Rest | None
    sparse: tuple[float, int] | None = None


@dataclass(frozen=True)
class _UrlSide:
    """A lookup's ``url:`` query (``to_tsquery`` text over the URL index), its title and text
    test (an SQL condition on ``articles``; None: there is none), its ``since`` (which the URL
    index's times answer), and whether it has other filters (sources, what a server sees),
    which only the articles' rows answer."""

    query: str
    terms: str | None
    since: datetime | None
    filtered: bool


class Continuations:
    """What a candidate page leaves for the page that continues it, by (query, filters) and
    the page's cursor: a larger size cap, the density of matches (so the next walk is sized to
    fill its page in one go), and the positions a GIN read found beyond the page, so that
    paging on reads those rows by id instead of visiting every older match again (a GIN read
    costs the same for one page as for GIN_IDS positions).

    Taken once: the page that continues a cursor removes its entry (and leaves its own).
    Bounded in entries and age; GIN positions are as of their read, so a lookup that pages on
    within CONTINUATION_SECONDS does not see an article stored meanwhile below its cursor, as
    if its pages had all been read at once. A lookup starts without a cursor and reads
    afresh; a cursor with no entry (expired, or continued already) is read afresh too."""

    def __init__(self) -> None:
        self._kept: OrderedDict[tuple[Any, ...], tuple[float, _Next]] = OrderedDict()

    def keep(self, key: tuple[Any, ...], cursor: str, after: _Next) -> None:
        self._kept[(*key, cursor)] = (time.monotonic(), after)
        self._kept.move_to_end((*key, cursor))
        while len(self._kept) > CONTINUATIONS:
            self._kept.popitem(last=False)

    def take(self, key: tuple[Any, ...], cursor: str) -> _Next | None:
        kept = self._kept.pop((*key, cursor), None)
        if kept is None or time.monotonic() - kept[0] > CONTINUATION_SECONDS:
            return None
        return kept[1]


class ArticlesMixin(CandidateList):
    """The :class:`watchers.store.ArticleStore` part of :class:`PostgresStore`."""

    _db: Pg
    _listed_words: ListedWords
    _terms_of: Callable[[str, str], str] | None
    _pages: Continuations
    _outlet_names: Mapping[str, str]  # see OutletNames

    async def stored_hashes(self, hashes: Collection[str]) -> set[str]:
        """Those of these content hashes some stored article has (one read)."""
        async with self._db.statement() as conn:
            return await _stored_hashes(conn, list(dict.fromkeys(hashes)))

    async def hash_sources(self, hashes: Collection[str]) -> dict[str, set[str]]:
        """For these content hashes, the sources that stored an article of that content (one
        read); a hash no article has is left out."""
        unique = list(dict.fromkeys(hashes))
        if not unique:
            return {}
        found: dict[str, set[str]] = {}
        for stored, source in await self._db.fetch(
                "SELECT content_hash, source FROM articles WHERE content_hash = ANY($1::text[])",
                unique):
            found.setdefault(str(stored), set()).add(str(source))
        return found

    async def followed_copies(self, hashes: Collection[str]) -> dict[str, set[str]]:
        """For these content hashes, the followed feeds (their source keys) that stored an
        article of that content (one read, through the index of the followed feeds' plain
        hashes, ``articles_feed_copies``)."""
        unique = list(dict.fromkeys(hashes))
        if not unique:
            return {}
        found: dict[str, set[str]] = {}
        for plain, source in await self._db.fetch(
                f"SELECT {FEED_COPY_HASH}, source FROM articles WHERE {FEED_COPY_WHERE} "
                f"AND {FEED_COPY_HASH} = ANY($1::text[])", unique):
            found.setdefault(str(plain), set()).add(str(source))
        return found

    async def is_known(self, article: Article) -> bool:
        return (await self.known([article]))[0]

    async def known(self, articles: Sequence[Article]) -> list[bool]:
        """For each article, whether :meth:`record_many` of the list would find it a
        duplicate: of a stored article or of an earlier one of the list."""
        seen = _PgIdentities()
        out: list[bool] = []
        for i in range(0, len(articles), _CHUNK):
            chunk = articles[i:i + _CHUNK]
            async with self._db.statement() as conn:
                await seen.load_pg(conn, chunk)
            for a in chunk:
                dup = seen.duplicate(a)
                if not dup:
                    seen.add(a)
                out.append(dup)
        return out

    async def known_versions(self, articles: Sequence[Article]
                             ) -> list[tuple[Article | None, Article | None]]:
        """For each article :meth:`known` calls a duplicate, (changed-from, copy-of); at most
        one is set: a copy shares its content with a stored article, a new version shares
        none."""
        out: list[tuple[Article | None, Article | None]] = []
        async with self._db.statement() as conn:
            for article in articles:
                hashes = list(dedupe_hashes(article))
                if await conn.fetchval("SELECT 1 FROM articles WHERE content_hash = "
                                       "ANY($1::text[])", hashes) is not None:
                    row = await conn.fetchrow(
                        f"SELECT {ARTICLE_COLS_A} FROM articles a JOIN stories s "
                        "ON s.id = a.story_id WHERE a.content_hash = ANY($1::text[]) "
                        "AND a.source <> $2 AND NOT s.outlets ? $2", hashes, article.source)
                    out.append((None, article_of(row) if row is not None else None))
                    continue
                stored = await _duplicate_of(conn, article)
                row = None
                if stored is not None:
                    row = await conn.fetchrow(
                        f"SELECT {ARTICLE_COLS} FROM articles WHERE id = $1", stored)
                out.append((article_of(row) if row is not None else None, None))
        return out

    async def record(self, article: Article, matches: Sequence[Fired],
                     alerts: Sequence[Any], *, terms: str, url_terms: str | None = None
                     ) -> Article | None:
        """Store a new article with its index terms (``url_terms``: its link's), matches and
        alerts in one transaction; the article as stored (its id may change when taken), or
        None for a duplicate."""
        (stored,) = await self.record_many([ArticleRecord(article, matches, alerts, terms,
                                                          url_terms=url_terms)])
        return stored

    async def record_many(self, records: Sequence[ArticleRecord], *,
                          at: datetime | None = None,
                          notices: Sequence[tuple[str, str]] = (),
                          summaries: Sequence[CapSummary] = ()) -> list[Article | None]:
        """:meth:`record` for each of ``records``, in order, in one transaction: all stored
        (or found duplicate) or, on an error, none. ``notices``: (route, text) of
        operational notices queued in the same transaction, after the batch's alerts;
        ``summaries``: the poll's cap summaries (``summary`` rows), after those."""
        if not records and not notices and not summaries:
            return []
        when = at or now()
        out: list[Article | None] = []
        async with self._db.tx(LOCKS["articles"]) as conn:
            seen = _PgIdentities()
            await seen.load_pg(conn, [r.article for r in records])
            ids = list({r.article.id for r in records})
            taken = {str(r[0]) for r in await conn.fetch(
                "SELECT id FROM articles WHERE id = ANY($1::text[])", ids)}
            articles: list[tuple[Any, ...]] = []
            words: set[str] = set()
            matches: list[tuple[Any, ...]] = []
            stored: list[tuple[Article, ArticleRecord]] = []
            for rec in records:
                article = rec.article
                if seen.duplicate(article):
                    out.append(None)
                    continue
                seen.add(article)
                link, content = article_identity(article)
                if article.id in taken:
                    free = await free_id(article.content_hash, taken, lambda i: conn.fetchval(
                        "SELECT 1 FROM articles WHERE id = $1", i))
                    article = Article(**{**article.model_dump(), "id": free})
                taken.add(article.id)
                articles.append((
                    article.id, article.source, article.guid, article.url, link, article.title,
                    article.text, article.published, article.fetched_at, sort_time(article),
                    content, rec.story.id if rec.story else None,
                    fitting_terms(rec.terms, f"article {article.id!r}"),
                ))
                made = when if rec.matched_at is None else rec.matched_at
                matches += [(article.id, m.rule, m.score, hits_json(m.hits), made)
                            for m in rec.matches]
                stored.append((article, rec))
                out.append(article)
            if articles:
                await conn.executemany(
                    "INSERT INTO articles (id, source, guid, url, link_key, title, text, "
                    "published, fetched_at, sort_at, content_hash, story_id, terms) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
                    "to_tsvector('simple', $13))", articles)
            if articles:
                # The URL index's rows, by the ids just stored (the rowids are the database's).
                given = [(a.id, link_terms(r, self._terms_of)) for a, r in stored]
                links = [(i, fitting_terms(t, f"the link of article {i!r}"))
                         for i, t in given if t]
                if any(t is None for _, t in given):
                    # A link whose words the writer could not give: the URL index misses it.
                    await conn.execute(MARK_URL_GAP)
                if links:
                    await conn.execute(
                        "INSERT INTO article_urls (article, sort_at, words) SELECT a.rowid, "
                        "a.sort_at, to_tsvector('simple', u.w) FROM unnest($1::text[], "
                        "$2::text[]) AS u(id, w) JOIN articles a ON a.id = u.id",
                        [i for i, _ in links], [t for _, t in links])
                # Words this store listed in a committed batch are listed for good.
                words = self._listed_words.unlisted(ListedWords.of(r for _, r in stored))
                await list_words(conn, words)
            if matches:
                await conn.executemany(
                    "INSERT INTO matches (article_id, rule, score, hits, matched_at) "
                    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (article_id, rule) DO UPDATE SET "
                    "score = excluded.score, hits = excluded.hits, "
                    "matched_at = excluded.matched_at, retired = FALSE", matches)
            await _write_outbox(conn, stored, when, self._outlet_names)
            for route, text in notices:
                await insert_notice(conn, route, text, when)
            if extra := unbatched_listed(summaries, records):
                await seen.load_pg(conn, extra)
            for summary in summaries_stored(summaries, records, out, seen.duplicate):
                await insert_notice(conn, summary.route, summary.text, when, kind="summary",
                                    rules=summary_rules(summary))
        # Committed (an error or a cancellation above leaves them unremembered).
        self._listed_words.remember(words)
        return out

    async def count_articles(self, *, follows: Collection[str] | None = None) -> int:
        params: list[Any] = []
        where = _filters(None, None, follows, params)
        return int(await self._db.fetchval(
            f"SELECT count(*) FROM articles WHERE TRUE{where}", *params))

    async def stored_sources(self, *, limit: int | None = None) -> list[str]:
        """The distinct source names of the stored articles, in code point order (``limit``:
        at most that many, the first in the database's collation order): one step down the
        (source, guid) index per name, however many articles each has. The recursion stops
        once the outer LIMIT has its rows."""
        rows = await self._db.fetch(
            "WITH RECURSIVE s(name) AS (SELECT min(source) FROM articles UNION ALL "
            "SELECT (SELECT min(source) FROM articles WHERE source > s.name) FROM s "
            "WHERE s.name IS NOT NULL) SELECT name FROM s WHERE name IS NOT NULL LIMIT $1",
            limit)
        # The database's collation may not be code point order (SQLite's): sorted here.
        return sorted(str(r[0]) for r in rows)

    async def count_by_source(self, *, follows: Collection[str] | None = None
                              ) -> dict[str, int]:
        params: list[Any] = []
        where = _filters(None, None, follows, params)
        rows = await self._db.fetch(
            f"SELECT source, count(*) FROM articles WHERE TRUE{where} GROUP BY source", *params)
        return {str(s): int(n) for s, n in rows}

    async def get_article(self, article_id: str, *,
                          visible: Callable[[Article], bool] | None = None) -> Article | None:
        """The article with this id, else the only one whose id starts with it (at least
        ``MIN_PREFIX`` characters); ``visible``: only among those it accepts (see SQLite's)."""
        rows = await self._db.fetch(
            f"SELECT {ARTICLE_COLS} FROM articles WHERE id = $1", article_id)
        if rows:
            found = article_of(rows[0])
            return found if visible is None or visible(found) else None
        if len(article_id) < MIN_PREFIX:
            return None
        for prefix in dict.fromkeys((article_id, article_id.lower())):
            upper = prefix_successor(prefix)
            if upper is None:
                continue
            # ``id`` is COLLATE "C": code point order, the order prefix_successor assumes.
            rows = await self._db.fetch(
                f"SELECT {ARTICLE_COLS} FROM articles WHERE id >= $1 AND id < $2 "
                "ORDER BY id LIMIT $3", prefix, upper,
                2 if visible is None else PREFIX_CANDIDATES)
            if rows:
                return only_one([article_of(r) for r in rows], visible)
        return None

    async def matches_for(self, article_id: str, *, retired: bool = True) -> list[Match]:
        current = "" if retired else " AND NOT retired"
        rows = await self._db.fetch(
            f"SELECT article_id, rule, score, hits FROM matches WHERE article_id = $1{current} "
            "ORDER BY rule COLLATE \"C\"", article_id)
        return [_match(*r) for r in rows]

    async def recent(
        self, *, rule: str | None = None, limit: int = 10, rules: Collection[str] | None = None,
        follows: Collection[str] | None = None,
    ) -> list[tuple[Article, list[Match]]]:
        """The newest articles that matched ``rule`` (a key) — or, without it, any rule (any of
        ``rules`` when given) — with every match of each; with ``follows``, only articles that
        server sees. A retired match is no rule's (see the SQLite store's)."""
        params: list[Any] = []
        if rules is not None and not rule:
            keys = sorted(set(rules))
            if not keys:
                return []
            params.append(keys)
            visible = _filters(None, None, follows, params)
            params.append(limit)
            sql = (f"SELECT {ARTICLE_COLS} FROM articles WHERE id IN "
                   "(SELECT article_id FROM matches WHERE rule = ANY($1::text[]) "
                   "AND NOT retired)"
                   f"{visible} ORDER BY sort_at DESC, rowid DESC LIMIT ${len(params)}")
        elif rule:
            params.append(rule)
            visible = _filters(None, None, follows, params, column="a.source")
            params.append(limit)
            sql = (f"SELECT {ARTICLE_COLS_A} FROM articles a JOIN matches m "
                   f"ON m.article_id = a.id WHERE m.rule = $1 AND NOT m.retired{visible} "
                   f"ORDER BY a.sort_at DESC, a.rowid DESC LIMIT ${len(params)}")
        else:
            visible = _filters(None, None, follows, params)
            params.append(limit)
            sql = (f"SELECT {ARTICLE_COLS} FROM articles WHERE id IN "
                   f"(SELECT article_id FROM matches){visible} "
                   f"ORDER BY sort_at DESC, rowid DESC LIMIT ${len(params)}")
        articles = [article_of(r) for r in await self._db.fetch(sql, *params)]
        return [(a, await self.matches_for(a.id, retired=rules is None)) for a in articles]

    async def candidate_page(
        self,
        *,
        fts: str | None,
        since: datetime | None = None,
        source: str | None = None,
        after: str | None = None,
        limit: int = 200,
        follows: Collection[str] | None = None,
        sources: Collection[str] | None = None,
        urls: str | None = None,
        places: str | None = None,
        marked: str | None = None,
        screen: CandidateScreen | None = None,
    ) -> CandidatePage:
        """One page of :meth:`candidates` after the cursor ``after``, newest first: the
        articles whose terms match ``fts`` and whose link's words (``article_urls``) match
        ``urls``, or all of them (down the ``articles_sort`` index) when both are None;
        ``sources``: only articles of these sources. At most ``PAGE_CAP``
        articles (see its comment), however many are asked for; a page that stops at the cap
        keeps its cursor.

        With ``fts``, the page first walks ``articles_sort`` newest first a little way, testing
        each row's terms: a common query fills the page there. Otherwise the matches the walk
        found say how dense they are, and :func:`walk_or_index` picks walking on or reading
        every older match from the GIN index and keeping the newest (cheap exactly when they
        are few). The planner cannot make that choice itself: it costs the test of a walked
        row as one operator, not the detoasting of a tsvector, so for words of under about 1%
        of the articles it walks tens of thousands of rows where the index reads a few
        thousand. A GIN read keeps the positions of the next ``GIN_IDS`` matches under the
        page's cursor, and the page that continues from it reads them rather than the index
        again (see :class:`Continuations`). With ``urls``, that read is the URL index's (see
        :meth:`_url_matches`) while it holds few enough matches. ``places`` and ``screen``
        are ignored: this store keeps no places index, and its rows are screened by the
        matcher."""
        if limit < 1:
            raise ValueError(f"a candidate page holds at least one article, not {limit}")
        params: list[Any] = []
        filters = _filters(since, source, follows, params, sources=sources)
        tsquery = fts_to_tsquery(fts) if fts else None
        if urls and await self._db.fetchval(f"SELECT EXISTS (SELECT 1 FROM {URLS_INCOMPLETE})"):
            urls = None  # the URL index misses some link: read as if it were not there
        urlquery = fts_to_tsquery(urls) if urls else None
        key = (tsquery, urlquery, filters, repr(params))
        # The query is written into the statement, not passed as a parameter: a statement run
        # again with a parameter may get the planner's generic plan, which cannot know whether
        # the query is common or rare, and walks the date index for a rare one. The link's
        # words are tested through the URL index's row of the article (``rowid`` is the outer
        # row's: article_urls has no such column).
        terms = (f"terms @@ to_tsquery('simple', {_literal(tsquery)})"
                 if tsquery is not None else None)
        tests = [terms] if terms is not None else []
        if urlquery is not None:
            tests.append("EXISTS (SELECT 1 FROM article_urls u WHERE u.article = rowid AND "
                         f"u.words @@ to_tsquery('simple', {_literal(urlquery)}))")
        match = " AND ".join(tests) if tests else None
        url = (_UrlSide(urlquery, terms, since, source is not None or sources is not None
                        or follows is not None) if urlquery is not None else None)
        told = self._pages.take(key, after) if after is not None else None
        cap = told.cap if told is not None else PAGE_CAP
        limit = min(limit, cap)
        # The second page is as large as the first (most lookups that need one need only a
        # little more), then each twice the last.
        grown = min(2 * cap, PAGE_CAP_MAX) if told is not None else cap
        if told is not None and told.rest is not None:
            ids, rest = told.rest.split(limit)
            rest.last = ids[-1]  # a kept rest is never empty
            rows = await self._by_rowid(ids)
            return self._page(key, grown, rows, limit, None, rest)
        where = filters
        start: list[Any] = []
        if after is not None:
            sort_at, rowid = _cursor_position(after)
            start = [sort_at, rowid]
            params += [sort_at, rowid]
            where += f" AND (sort_at, rowid) < (${len(params) - 1}, ${len(params)})"
        if match is None:
            params.append(limit)
            rows = await self._db.fetch(
                f"SELECT rowid, sort_at, {ARTICLE_COLS} FROM articles WHERE TRUE{where} "
                f"ORDER BY sort_at DESC, rowid DESC LIMIT ${len(params)}", *params)
            return self._page(key, grown, rows, limit, None, None)
        rows, density, gin = await self._matching_page(
            match, where, params, limit, told.density if told is not None else None,
            told.sparse if told is not None and start else None, start, url)
        return self._page(key, grown, rows, limit, density, gin)

    def _page(self, key: tuple[Any, ...], cap: int, rows: list[asyncpg.Record], limit: int,
              density: float | None, rest: _Rest | None) -> CandidatePage:
        """The page of ``rows`` (``limit`` asked for), leaving what the next page needs under
        its cursor (``cap``: that page's size cap). After a GIN read (``rest``) the cursor is
        the last position on the page, so an article deleted since the read (missing from
        ``rows``) moves nothing."""
        found = [article_of(tuple(r)[2:]) for r in rows]
        if rest is not None:
            if rest.last is None or (rest.whole and not rest.positions):
                return CandidatePage(found, None)
            cursor = _cursor(*rest.last)
        elif len(rows) < limit:
            return CandidatePage(found, None)
        else:
            cursor = _cursor(rows[-1]["sort_at"], rows[-1]["rowid"])
        self._pages.keep(key, cursor, _Next(
            cap, density, rest if rest is not None and rest.positions else None,
            rest.sparse if rest is not None else None))
        return CandidatePage(found, cursor)

    async def _by_rowid(self, ids: Sequence[tuple[datetime, int]]) -> list[asyncpg.Record]:
        if not ids:
            return []
        return await self._db.fetch(
            f"SELECT rowid, sort_at, {ARTICLE_COLS} FROM articles "
            "WHERE rowid = ANY($1::bigint[]) ORDER BY sort_at DESC, rowid DESC",
            [rowid for _, rowid in ids])

    async def _matching_page(self, match: str, where: str, params: list[Any], limit: int,
                             density: float | None, sparse: tuple[float, int] | None,
                             start: list[Any], url: _UrlSide | None = None
                             ) -> tuple[list[asyncpg.Record], float | None, _Rest | None]:
        """Up to ``limit`` newest articles ``match`` (a condition on a row) admits among those
        ``where``
        (clauses on ``params``) admits: walks of the date index while the matches are dense,
        then, if they are sparse, the GIN index below the last row walked. Returns the rows,
        the density of matches the walks found, and, after a GIN read, the positions of its
        matches the page did not hold (None: the walk filled the page or saw every article).
        ``density``: what the previous page's walks found, to size the first walk; ``sparse``:
        the density and row count the previous page's GIN read met, to read on from the GIN
        index below ``start`` (the cursor's position) without walking first.

        ``url``: the ``url:`` part of ``match``. The URL index's matches are then read, with
        their times, instead of the GIN index of ``terms`` (see :meth:`_url_matches`), and
        before any walk on a lookup's first page: while they are few enough to read whole
        (URL_IDS), that costs less than a walk, whatever the share of them the rest of the
        query keeps. Pages after a walk walk first, as without it."""
        n = len(params)
        url_many = False  # the URL index has too many matches to read them whole
        if url is not None and density is None and sparse is None:
            read = await self._url_matches(url, where, params, start, limit)
            if read is not None:
                return await self._url_page([], limit, read, (1.0, 0))
            url_many = True
        if density:
            # A margin over what the density says fills the page, so one walk usually does.
            walk = max(WALK_FIRST_MIN, min(int(1.5 * limit / density), 64 * limit))
        else:
            walk = max(WALK_FIRST_MIN, WALK_FIRST_PER_ROW * limit)
        edge: list[Any] = []  # the last row walked: (sort_at, rowid)
        out: list[asyncpg.Record] = []
        walked = 0
        rows_in_all = 0  # the planner's row count, as the last walk read it
        if sparse is not None:
            edge, rows_in_all = start, sparse[1]
        while sparse is None:
            below = f" AND (sort_at, rowid) < (${n + 1}, ${n + 2})" if edge else ""
            args = [*params, *edge] if edge else list(params)
            # The inner LIMIT keeps the walk a walk (a subquery with a LIMIT is not flattened)
            # and bounds it; the outer LIMIT stops it as soon as the page is full. Limits are
            # written in (ints), as a generic plan would guess them.
            rows = await self._db.fetch(
                f"SELECT rowid, sort_at, {ARTICLE_COLS} FROM (SELECT * FROM articles "
                f"WHERE TRUE{where}{below} ORDER BY sort_at DESC, rowid DESC "
                f"LIMIT {int(walk)}) w WHERE {match} "
                f"ORDER BY sort_at DESC, rowid DESC LIMIT {int(limit - len(out))}",
                *args, what=_REJECTED)
            out += rows
            if len(out) >= limit:
                # The walk stopped at the page's last match, short of its bound: at least this
                # dense, and a walk sized on too low a density stops early all the same.
                return out, len(out) / (walked + walk), None
            last = await self._db.fetch(
                f"SELECT sort_at, rowid, (SELECT reltuples FROM pg_class WHERE oid = "
                f"'articles'::regclass) FROM articles WHERE TRUE{where}{below} "
                f"ORDER BY sort_at DESC, rowid DESC OFFSET {int(walk - 1)} LIMIT 1", *args)
            walked += walk
            if not last:  # the walk saw every article there is
                return out, len(out) / walked, None
            edge = [last[0][0], last[0][1]]
            rows_in_all = max(0, int(last[0][2]))
            walk = walk_or_index(limit - len(out), walk, len(rows), rows_in_all)
            if walk == 0:
                break
        dens = (len(out) + 1) / walked if walked else sparse[0] if sparse else 1.0
        if url is not None and not url_many:
            read = await self._url_matches(url, where, params, edge, limit - len(out))
            if read is not None:
                return await self._url_page(out, limit, read, (dens, rows_in_all))
        # Ordering by an expression articles_sort does not provide (adding nothing to the
        # time) keeps the planner from walking again: it reads the matches from the GIN
        # index and keeps the newest (a top-N sort). The edge and the limit are written in
        # too (typed values, not text from outside): as parameters, the generic plan the
        # statement gets after a few runs walks the date index from the edge. Only positions
        # are read: finding them costs the same for a few or GIN_IDS (every older match's
        # row is visited for its time), and only those on this page are read whole.
        sort_at, rowid = edge
        gin = (f"SELECT sort_at, rowid FROM articles WHERE {match} "
               f"AND (sort_at, rowid) < ('{sort_at.isoformat()}'::timestamptz, {int(rowid)})"
               f"{where}")
        order = " ORDER BY sort_at + interval '0 s' DESC, rowid DESC LIMIT "
        found: list[asyncpg.Record] = []
        lo, window = await self._window(where, params, edge, limit - len(out), dens,
                                        rows_in_all)
        if lo is not None:
            # The matches of the window, then (should it hold too few) those older than it:
            # together the newest below the edge, as one unbounded read would find them.
            found = await self._db.fetch(
                f"{gin} AND sort_at >= '{lo.isoformat()}'::timestamptz{order}{int(GIN_IDS)}",
                *params, what=_REJECTED)
            # What the window held says how dense the matches are below the edge.
            dens = max(len(found), 1) / window
            if len(found) < limit - len(out):
                found += await self._db.fetch(
                    f"{gin} AND sort_at < '{lo.isoformat()}'::timestamptz"
                    f"{order}{int(GIN_IDS - len(found))}", *params, what=_REJECTED)
                lo = None
        else:
            found = await self._db.fetch(f"{gin}{order}{int(GIN_IDS)}", *params,
                                         what=_REJECTED)
            if len(found) < GIN_IDS:
                dens = max(len(found), 1) / max(rows_in_all, 1)
        # A window's matches are not every match below the edge (older ones are not read).
        whole = lo is None and len(found) < GIN_IDS
        ids, rest = _Rest([(r[0], r[1]) for r in found], whole,
                          sparse=(dens, rows_in_all)).split(limit - len(out))
        out += await self._by_rowid(ids)
        rest.last = ids[-1] if ids else None
        return out, None, rest

    async def _url_page(self, out: list[asyncpg.Record], limit: int,
                        read: tuple[list[tuple[datetime, int]], bool],
                        sparse: tuple[float, int]
                        ) -> tuple[list[asyncpg.Record], float | None, _Rest]:
        """:meth:`_matching_page`'s answer after a read of the URL index: the rows walked
        (``out``) and the read's first matches to ``limit``, the rest of them kept, with
        ``sparse`` for the page that reads on below them."""
        ids, rest = _Rest(read[0], read[1], sparse=sparse).split(limit - len(out))
        out = out + await self._by_rowid(ids)
        rest.last = ids[-1] if ids else None
        return out, None, rest

    async def _url_matches(self, url: _UrlSide, where: str, params: list[Any],
                           edge: list[Any], wanted: int
                           ) -> tuple[list[tuple[datetime, int]], bool] | None:
        """The positions of the ``wanted`` newest matches below ``edge`` (``[]``: all), and
        whether they are every one there is, read from the URL index; None when its query
        matches more than URL_IDS links below the edge (the caller reads the GIN index of
        ``terms`` instead).

        One statement: the URL index's matches with their times (a bitmap of its GIN index and
        a visit of each row, about 2 µs; a common word's rows are read in table order up to
        URL_IDS), counted, then newest first. Without a title and text query or a filter they
        are the matches; otherwise each one's article is tested in that order (a probe by
        rowid, about 10 µs) until the page has its matches, so a word in a fifth of the links'
        articles costs five probes a match. Reading ``terms`` first instead cost a visit of
        every article its words match (a fifth of all for "government"); the planner's join of
        the two, a visit of every link's article for its time, before the newest were kept."""
        older = (f" AND (sort_at, article) < ('{edge[0].isoformat()}'::timestamptz, "
                 f"{int(edge[1])})" if edge else "")
        if url.since is not None:
            older += f" AND sort_at >= '{url.since.isoformat()}'::timestamptz"
        newest = "SELECT sort_at, article FROM c ORDER BY sort_at DESC, article DESC"
        args: list[Any] = []
        if url.terms is not None or url.filtered:
            # A subquery run per link, in the links' order (OFFSET 0 keeps the planner from
            # joining the two otherwise), stopped by the LIMIT below once the page is full.
            test = f" AND {url.terms}" if url.terms is not None else ""
            newest = (f"SELECT a.sort_at, a.rowid FROM ({newest}) o CROSS JOIN LATERAL "
                      f"(SELECT sort_at, rowid FROM articles WHERE rowid = o.article{test}{where} "
                      "OFFSET 0) a")
            args = params
        rows = await self._db.fetch(
            "WITH c AS MATERIALIZED (SELECT sort_at, article FROM article_urls WHERE words @@ "
            f"to_tsquery('simple', {_literal(url.query)}){older} LIMIT {int(URL_IDS + 1)}) "
            "SELECT t.n, m.sort_at, m.article FROM (SELECT count(*) AS n FROM c) t "
            f"LEFT JOIN LATERAL (SELECT * FROM ({newest}) x(sort_at, article) "
            f"WHERE t.n <= {int(URL_IDS)} LIMIT {int(wanted)}) m ON TRUE "
            "ORDER BY m.sort_at DESC, m.article DESC", *args, what=_REJECTED)
        if rows[0][0] > URL_IDS:
            return None
        found = [(r[1], r[2]) for r in rows if r[2] is not None]
        return found, len(found) < wanted

    async def _window(self, where: str, params: list[Any], edge: list[Any], wanted: int,
                      density: float, rows: int) -> tuple[datetime | None, int]:
        """The oldest time of a window below ``edge`` expected to hold ``wanted`` matches
        WINDOW_MARGIN times over (at ``density``), when reading the GIN index within it is
        cheaper than reading every older match; None otherwise, or when the window would reach
        the end.

        The GIN index gives matches in no time order, so an unbounded read visits every
        older match's row for its time (a few thousand rows for a word of 1% of a million
        articles); bounded by ``sort_at``, the planner ANDs the GIN index's bitmap with the
        date index's range and visits only the window's matches. A window row costs about
        WINDOW_COST of a visited match (the range scan, and the probe that finds its end).
        Also returns the window's size in rows."""
        window = max(1, int(WINDOW_MARGIN * wanted / density))
        if window * WINDOW_COST >= density * rows:
            return None, window
        sort_at, rowid = edge
        n = len(params)
        found = await self._db.fetch(
            f"SELECT sort_at FROM articles WHERE TRUE{where} AND (sort_at, rowid) < "
            f"(${n + 1}, ${n + 2}) ORDER BY sort_at DESC, rowid DESC "
            f"OFFSET {int(window - 1)} LIMIT 1", *params, sort_at, rowid)
        return (found[0][0] if found else None), window

    async def index_words(self, *, after: int = 0) -> tuple[list[str], int] | None:
        """The words the lookup index holds listed by transactions from ``after`` on (0: all),
        and the cursor to read on from: the oldest transaction still running when this read
        was made (its words, and those of any later one, are not visible yet or are read
        again next time: a word is never missed, and re-reading one is harmless)."""
        (row,) = await self._db.fetch(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text, "
            "array(SELECT word FROM index_words WHERE xact >= $1::text::xid8)", str(after))
        return [str(w) for w in row[1]], int(row[0])

    async def rule_match_counts(self, *, since: datetime | None = None) -> dict[str, int]:
        if since is None:
            rows = await self._db.fetch(
                "SELECT rule, count(*) FROM matches WHERE NOT retired GROUP BY rule")
        else:
            rows = await self._db.fetch(
                "SELECT rule, count(*) FROM matches WHERE matched_at >= $1 AND NOT retired "
                "GROUP BY rule", since)
        return {str(r): int(n) for r, n in rows}
