"""Articles, their matches, and lookup candidates.

Dedupe (``_duplicate_of``): an article is already known when a stored one has the same content
fingerprint, the same normalised link — unless both come from one source with different guids
and different titles (a live page's items share its link) — or the same (source, guid) — a guid
only when the links do not contradict it, since some feeds reuse one guid for distinct items.
Each of those is an indexed lookup, as is every query of ``get_article`` and ``matches_for``
(the per-alert path).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import secrets
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from functools import partial
from typing import Any

import aiosqlite

from watchers.models import Article, Fired, Hit, Match, hits_json
from watchers.store._shared import (
    FEED_COPY_HASH,
    FEED_COPY_WHERE,
    URLS_INCOMPLETE,
    CandidateList,
    LinkRows,
    ListedWords,
    article_hash,
    article_identity,
    dedupe_hashes,
    free_id_now,
    link_terms,
    same_link_sql,
    summaries_stored,
    unbatched_listed,
)
from watchers.store.base import (
    MIN_PREFIX,
    PREFIX_CANDIDATES,
    SERVER_FEED_PREFIX,
    ArticleRecord,
    CandidatePage,
    CandidateScreen,
    CapSummary,
    OutboxEntry,
    only_one,
    page_second,
    sort_time,
)
from watchers.store.sqlite._db import (
    Db,
    all_rows,
    batch_chunk,
    dt,
    insert_many,
    iso,
    now,
    rules_json,
    run_on,
)
from watchers.store.sqlite.outbox import INSERT_NOTICE, INSERT_SUMMARY, notice_row, summary_row
from watchers.store.sqlite.schema import (
    INDEX_KEY_SQL,
    INDEX_ROWID_BITS,
    INDEX_ROWID_MASK,
    MARK_URL_GAP,
    MARKS_KEYS_VERSION,
    PLACES_INCOMPLETE,
    PLACES_INEXACT,
    PlacesOf,
    index_articles,
)
from watchers.store.sqlite.stories import story_batch, story_rows, write_stories

__all__ = ["ArticlesMixin", "prefix_successor"]

# A page of a lookup that needs both indexes reads the URL index's keys this many at a time and
# the lookup index's keys of their span this many at a time (see _joined_keys).
URL_WINDOW = 4096
JOIN_CHUNK = 2048

# The most candidates one page reads (bounds one statement's time and memory).

ARTICLE_COLS = "id, source, guid, url, title, text, published, fetched_at, content_hash"
# The same columns qualified, for queries that join articles (as ``a``) with another table.
ARTICLE_COLS_A = ", ".join("a." + c.strip() for c in ARTICLE_COLS.split(","))


def _cursor_key(cursor: str) -> int:
    if not cursor.startswith("k") or not cursor[1:].isdigit():
        raise ValueError(f"not a lookup index cursor: {cursor!r}")
    return int(cursor[1:])


def _cursor_position(cursor: str) -> tuple[str, int]:
    sort_at, _, rowid = cursor[1:].partition(" ")
    if not cursor.startswith("s") or not rowid.isdigit():
        raise ValueError(f"not an articles cursor: {cursor!r}")
    return sort_at, int(rowid)


def _filters(since: datetime | None, source: str | None,
             follows: Collection[str] | None = None,
             sources: Collection[str] | None = None) -> tuple[str, list[Any]]:
    """The ``since``, ``source`` (one), ``sources`` (any of them) and visibility filters of a
    candidate page, as SQL ``AND`` clauses on ``articles`` and their parameters (see
    :func:`visible_clause`)."""
    where = ""
    params: list[Any] = []
    if since is not None:
        where += " AND sort_at >= ?"
        params.append(iso(since))
    if source is not None:
        where += " AND source = ?"
        params.append(source)
    if sources is not None:
        names = sorted(set(sources))
        where += f" AND source IN ({','.join('?' * len(names))})" if names else " AND 0"
        params += names
    if follows is not None:
        clause, extra = visible_clause(follows)
        where += f" AND {clause}"
        params += extra
    return where, params


def visible_clause(follows: Collection[str], column: str = "source") -> tuple[str, list[Any]]:
    """What a server sees: every article of a source all servers see, and those of the server
    feeds it follows (``follows``: their keys). A server feed's articles carry its key, which
    starts with ``SERVER_FEED_PREFIX``; no other source name may."""
    keys = sorted(set(follows))
    clause = f"(substr({column}, 1, 1) <> '{SERVER_FEED_PREFIX}'"
    if keys:
        clause += f" OR {column} IN ({','.join('?' * len(keys))})"
    return clause + ")", list(keys)


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
        content_hash=article_hash(source, content_hash),
    )


# Whether lookups read the word index (see ArticlesMixin.candidate_page).
_WORDS_READ = f"SELECT 1 FROM {PLACES_INCOMPLETE} WHERE gap = 1"
# Whether lookups read the word index (as _WORDS_READ), and whether every row of the places
# index is its article's places with number marks (built with the keys that hold them; no gap,
# no row placed by its words alone): a lookup's marked query then finds all it should.
_PLACES_STATE = (
    f"SELECT EXISTS (SELECT 1 FROM {PLACES_INCOMPLETE} WHERE gap = 1), "
    f"NOT EXISTS (SELECT 1 FROM {PLACES_INCOMPLETE}) "
    f"AND NOT EXISTS (SELECT 1 FROM {PLACES_INEXACT}) "
    f"AND coalesce((SELECT version FROM index_keys), 0) >= {MARKS_KEYS_VERSION}")
# A word list cursor (see ArticlesMixin.index_words): the schema's version above these bits,
# the last rowid read in them.
_CURSOR_BITS = 40
_CURSOR_ROWID = (1 << _CURSOR_BITS) - 1

# The screens of the statements under way (see ArticleMixin._screening), by token: SQLite calls
# nw_screen(token, title, text) for each row such a statement reads.
_SCREENS: dict[int, CandidateScreen] = {}
_SCREEN_TOKENS = itertools.count(1)


def _screen_row(token: int, title: str | None, text: str | None) -> int:
    screen = _SCREENS.get(token)
    if screen is None:
        return 1
    try:
        return 1 if screen.passes(title, text) else 0
    except Exception:  # a screen only narrows: the matcher decides a row it could not
        return 1


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


async def _duplicate_of(conn: aiosqlite.Connection, article: Article) -> str | None:
    link, _ = article_identity(article)
    hashes = dedupe_hashes(article)
    cur = await conn.execute(
        f"SELECT id FROM articles WHERE content_hash IN ({','.join('?' * len(hashes))})", hashes)
    if row := await cur.fetchone():
        return str(row[0])
    if link:
        # The first of the link's rows same_link picks (the link index holds them in rowid
        # order): a live page's link holds thousands of rows, which were all read and compared.
        same, params = same_link_sql(article, lambda n: f"?{n}")
        cur = await conn.execute(
            f"SELECT id FROM articles WHERE link_key = ?1 AND {same} ORDER BY rowid LIMIT 1",
            (link, *params))
        if row := await cur.fetchone():
            return str(row[0])
    if article.guid:
        # A guid alone is trusted only when the links do not contradict it (guid_links_agree):
        # some feeds reuse one guid for every item, and those items are distinct.
        cur = await conn.execute(
            "SELECT id FROM articles WHERE source = ?1 AND guid = ?2 AND (?3 OR link_key IS NULL "
            "OR link_key = '' OR link_key = ?4) ORDER BY rowid LIMIT 1",
            (article.source, article.guid, not link, link))
        if row := await cur.fetchone():
            return str(row[0])
    return None


# Rows per IN (...) list: far below SQLite's limit of 32,766 bound parameters.
_CHUNK = 500


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _stored_hashes(conn: sqlite3.Connection, hashes: Sequence[str]) -> set[str]:
    """Those of ``hashes`` (at most a chunk of them) some stored article has."""
    if not hashes:
        return set()
    return {str(h) for (h,) in all_rows(
        conn,
        f"SELECT content_hash FROM articles WHERE content_hash IN ({','.join('?' * len(hashes))})",
        hashes, 1)}


def _index_terms(conn: sqlite3.Connection,
                 terms: Sequence[tuple[str, str, str | None, tuple[str, str, str, str] | None]],
                 words: AbstractSet[str] | None = None) -> None:
    """Index (terms, article id, link's terms, places) of articles this transaction stored (see
    :func:`~watchers.store.sqlite.schema.index_articles`; ``words``: those of the terms the
    word list may lack)."""
    rowid_of: dict[str, int] = {}
    keys: dict[int, int] = {}
    # A batch of articles in one read (each waits for the interpreter lock; see all_rows).
    for chunk in _chunks([t[1] for t in terms], batch_chunk(conn)):
        # Each article's rowid and index key in one read (index_articles read the keys again).
        for ident, rowid, key in all_rows(
                conn, f"SELECT a.id, a.rowid, {INDEX_KEY_SQL} FROM articles a "
                f"WHERE a.id IN ({','.join('?' * len(chunk))})", chunk, 3):
            rowid_of[ident] = rowid
            keys[rowid] = key
    # An id not found indexes under rowid 0, which index_articles refuses by name.
    index_articles(conn, [(rowid_of.get(i, 0), text, link or "", places)
                          for text, i, link, places in terms], words, keys)
    if any(link is None for _, _, link, _ in terms):
        # A link whose words the writer could not give: the URL index misses it from now on.
        conn.execute(MARK_URL_GAP, (iso(now()),))




class _Identities:
    """What :func:`_duplicate_of` would find for a batch, answered from a few reads.

    ``load`` fetches every stored row that shares a content hash with an article of the batch,
    and a link or a (source, guid) with one whose content is not stored (one indexed read of
    each kind per chunk); ``duplicate`` then applies :func:`_duplicate_of`'s rules to those rows
    and to the articles ``add``-ed so far, so an article that repeats an earlier one of the same
    batch is a duplicate too. Each answer is a few lookups in what was loaded (:class:`LinkRows`
    per link, the links seen per (source, guid)), not a pass over every row of the article's
    link or guid: a live page's link holds thousands of items, and a feed that reuses one guid
    as many.
    """

    def __init__(self) -> None:
        # id(article) → (article, its article_identity): loading and judging a batch asked
        # for each article's identity three times (a link normalised, a hash looked up each
        # time). The article is kept beside it, so an id reused by another object is no hit.
        self._identities: dict[int, tuple[Article, tuple[str | None, str]]] = {}
        self.hashes: set[str] = set()
        self.by_link: dict[str, LinkRows] = {}
        # (source, guid) → the link keys of its rows ("" for a row without a link)
        self.by_guid: dict[tuple[str, str], set[str]] = {}

    def identity(self, article: Article) -> tuple[str | None, str]:
        """:func:`article_identity` of ``article``, made once."""
        got = self._identities.get(id(article))
        if got is not None and got[0] is article:
            return got[1]
        identity = article_identity(article)
        self._identities[id(article)] = (article, identity)
        return identity

    def link_row(self, link: str, source: str, guid: str | None, title: str) -> None:
        rows = self.by_link.get(link)
        if rows is None:
            rows = self.by_link[link] = LinkRows()
        rows.add(source, guid, title)

    def guid_row(self, source: str, guid: str, link: str | None) -> None:
        self.by_guid.setdefault((source, guid), set()).add(link or "")

    def new_content(self, articles: Sequence[Article]) -> list[Article]:
        """Those of ``articles`` whose content is not among the loaded hashes: only they need
        their link's and guid's rows (an unchanged item of a live page is a duplicate by its
        content, and its link's thousands of rows were read for nothing at every poll)."""
        return [a for a in articles if not self.same_content(a, self.identity(a)[1])]

    def same_content(self, article: Article, content: str) -> bool:
        """Whether ``article`` (of stored hash ``content``) has a loaded or added content: its
        own, or (a followed feed's; see dedupe_hashes) the plain one or the one marked as
        earlier versions marked any followed feed's."""
        hashes = self.hashes
        if content in hashes:
            return True
        if content == article.content_hash:  # the config file's sources': their own alone
            return False
        return any(h in hashes for h in dedupe_hashes(article))

    def load(self, conn: sqlite3.Connection, articles: Sequence[Article]) -> None:
        """Read what the batch ``articles`` needs (on the connection's thread)."""
        # A batch in one read of each kind (each waits for the interpreter lock; see
        # all_rows); the guid pairs bind two values each.
        for chunk in _chunks(articles, batch_chunk(conn, 2)):
            self.hashes |= _stored_hashes(
                conn, list({h for a in chunk for h in dedupe_hashes(a)}))
            chunk = self.new_content(chunk)
            links = list({link for a in chunk if (link := self.identity(a)[0])})
            if links:
                # Row by row: a live page's link holds thousands of rows, whose titles may be
                # long (one JSON array of them could pass SQLite's limit on a value's length).
                for link, source, guid, title in conn.execute(
                        "SELECT link_key, source, guid, title FROM articles WHERE "
                        f"link_key IN ({','.join('?' * len(links))})", links):
                    self.link_row(link, source, guid, title)
            pairs = list({(a.source, a.guid) for a in chunk if a.guid})
            if pairs:
                # A join, not ``(source, guid) IN (VALUES ...)``: SQLite plans that row-value
                # IN as a scan of every article, this as one guid-index search per pair.
                for source, guid, link in all_rows(
                        conn, "SELECT a.source, a.guid, a.link_key FROM "
                        f"(VALUES {','.join(['(?,?)'] * len(pairs))}) AS v "
                        "JOIN articles a ON a.source = v.column1 AND a.guid = v.column2",
                        [v for pair in pairs for v in pair], 3):
                    self.guid_row(source, guid, link)

    def duplicate(self, article: Article, identity: tuple[str | None, str] | None = None
                  ) -> bool:
        """Whether ``article`` (of ``identity``, :func:`article_identity`'s, when the caller has it)
        duplicates a loaded row or an article added so far."""
        link, content = identity or self.identity(article)
        if self.same_content(article, content):
            return True
        if link and (rows := self.by_link.get(link)) is not None \
                and rows.first(article) is not None:
            return True
        if article.guid and (links := self.by_guid.get((article.source, article.guid))):
            # guid_links_agree with one of them: either has no link, or the links are one.
            return not link or "" in links or link in links
        return False

    def add(self, article: Article, identity: tuple[str | None, str] | None = None) -> None:
        link, content = identity or self.identity(article)
        self.hashes.add(content)
        if link:
            self.link_row(link, article.source, article.guid, article.title)
        if article.guid:
            self.guid_row(article.source, article.guid, link)


def new_nonce() -> str:
    return secrets.token_hex(12)


INSERT_OUTBOX = (
    "INSERT INTO outbox (kind, article_id, route, rules, state, nonce, created_at, updated_at, "
    "story_id, severity, min_sources, escalated_from) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)")


def _write_outbox(conn: sqlite3.Connection, stored: Sequence[tuple[Article, ArticleRecord]],
                  when: str, stamps: Mapping[datetime | None, str | None] | None = None,
                  names: Mapping[str, str] | None = None) -> None:
    """Write the stored articles' outbox rows in article order (the outbox's ids are the
    order delivery sends them in). An article in a story joins it first, and its rows depend
    on what the story already has on each route — rows of earlier articles of the same batch
    included, so a story's rows are written as they are decided. Runs on the connection's
    thread (see :meth:`Tx.run`), inside the batch's transaction. The batch's stories are read
    once before the first article and written once each after the last (see StoryBatch).
    ``names``: the sources' outlets, which corroboration counts (see OutletNames)."""
    stories = story_batch(conn, list(dict.fromkeys(
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
            insert_many(conn, INSERT_OUTBOX, plain)
            plain = []
        outlets = stories.join(article.title, rec.story)
        if not rec.alerts and rec.story.id not in stories.waiting:
            continue  # no row of its own, and no alert of its story waits for its outlet
        rows = story_rows(conn, article, rec, outlets, rules, when, new_nonce, stories, names)
        if rows:
            insert_many(conn, INSERT_OUTBOX, rows)
    if plain:
        insert_many(conn, INSERT_OUTBOX, plain)
    write_stories(conn, stories, stamps)


def _record_batch(conn: sqlite3.Connection, records: Sequence[ArticleRecord], when: str | None,
                  notices: Sequence[tuple[str, str]],
                  summaries: Sequence[CapSummary],
                  terms_of: Callable[[str, str], str] | None, listed: ListedWords,
                  names: Mapping[str, str] | None = None,
                  places_of: PlacesOf | None = None,
                  ) -> tuple[list[Article | None], set[str]]:
    """:meth:`ArticlesMixin.record_many`'s writes, inside its transaction on the connection's
    thread: the stored article (or None) of each record, and the words offered to the word
    list (to remember once committed)."""
    out: list[Article | None] = []
    seen = _Identities()
    seen.load(conn, [r.article for r in records])
    ids = list({r.article.id for r in records})
    taken: set[str] = set()
    for chunk in _chunks(ids, batch_chunk(conn)):
        taken.update(str(i) for (i,) in all_rows(
            conn, f"SELECT id FROM articles WHERE id IN ({','.join('?' * len(chunk))})", chunk,
            1))
    articles, terms, matches = [], [], []
    words: set[str] = set()
    stored: list[tuple[Article, ArticleRecord]] = []
    # A batch's articles mostly share one fetch time (an import's, a poll's).
    stamps: dict[datetime | None, str | None] = {None: None}
    for rec in records:
        article = rec.article
        identity = seen.identity(article)
        if seen.duplicate(article, identity):
            out.append(None)
            continue
        seen.add(article, identity)
        link, content = identity
        if article.id in taken:
            free = free_id_now(article.content_hash, taken, lambda i: conn.execute(
                "SELECT 1 FROM articles WHERE id = ?", (i,)).fetchone())
            article = Article(**{**article.model_dump(), "id": free})
        taken.add(article.id)
        published, fetched = article.published, article.fetched_at
        if (p := stamps.get(published)) is None and published is not None:
            p = stamps[published] = iso(published)
        if (f := stamps.get(fetched)) is None:
            f = stamps[fetched] = iso(fetched)
        articles.append((
            article.id, article.source, article.guid, article.url, link, article.title,
            article.text, p, f, p or f, content, rec.story.id if rec.story else None,
        ))
        places = rec.places
        if places is None and places_of is not None:
            places = places_of(article.title, article.text)
        terms.append((rec.terms, article.id, link_terms(rec, terms_of), places))
        if rec.matches:
            # History's matches count at its date, mostly the article's own: spelt once.
            made = when
            matched = rec.matched_at
            if matched is not None and (made := stamps.get(matched)) is None:
                made = stamps[matched] = iso(matched)
            for m in rec.matches:
                hits = hits_json(m.hits)
                matches.append((article.id, m.rule, m.score, hits, made))
        stored.append((article, rec))
        out.append(article)
    if articles:
        insert_many(conn,
                    "INSERT INTO articles (id, source, guid, url, link_key, title, text, "
                    "published, fetched_at, sort_at, content_hash, story_id) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    articles)
        # The lookup index is keyed by the articles' rowids, assigned by the insert above.
        # Words this store listed in a committed batch are listed for good: only the others
        # are offered to the word list.
        words = listed.unlisted(ListedWords.of(r for _, r in stored))
        _index_terms(conn, terms=terms, words=words)
    if matches:
        insert_many(conn,
                    "INSERT OR REPLACE INTO matches (article_id, rule, score, hits, matched_at) "
                    "VALUES (?,?,?,?,?)", matches)
    _write_outbox(conn, stored=stored, when=when or "", stamps=stamps, names=names)
    for route, text in notices:
        conn.execute(INSERT_NOTICE, notice_row(route, text, when))
    if extra := unbatched_listed(summaries, records):
        seen.load(conn, extra)
    for summary in summaries_stored(summaries, records, out, seen.duplicate):
        conn.execute(INSERT_SUMMARY, summary_row(summary, when))
    return out, words


class ArticlesMixin(CandidateList):
    """The :class:`watchers.store.ArticleStore` part of :class:`SqliteStore`."""

    _db: Db
    _listed_words: ListedWords
    _terms_of: Callable[[str, str], str] | None
    _places_of: PlacesOf | None
    _outlet_names: Mapping[str, str]  # see OutletNames

    async def stored_hashes(self, hashes: Collection[str]) -> set[str]:
        """Those of these content hashes some stored article has (one read per 500)."""
        unique = list(dict.fromkeys(hashes))

        def read(conn: sqlite3.Connection) -> set[str]:
            found: set[str] = set()
            for chunk in _chunks(unique):
                found |= _stored_hashes(conn, chunk)
            return found

        return await self._db.read(partial(run_on, fn=read))

    async def hash_sources(self, hashes: Collection[str]) -> dict[str, set[str]]:
        """For these content hashes, the sources that stored an article of that content (one
        indexed read per 500); a hash no article has is left out."""
        unique = list(dict.fromkeys(hashes))

        async def read(conn: aiosqlite.Connection) -> dict[str, set[str]]:
            found: dict[str, set[str]] = {}
            for chunk in _chunks(unique):
                cur = await conn.execute(
                    "SELECT content_hash, source FROM articles WHERE content_hash IN "
                    f"({','.join('?' * len(chunk))})", chunk)
                for stored, source in await cur.fetchall():
                    found.setdefault(str(stored), set()).add(str(source))
            return found

        return await self._db.read(read) if unique else {}

    async def followed_copies(self, hashes: Collection[str]) -> dict[str, set[str]]:
        """For these content hashes, the followed feeds (their source keys) that stored an
        article of that content (one indexed read per 500: the index of the followed feeds'
        plain hashes, ``articles_feed_copies``)."""
        unique = list(dict.fromkeys(hashes))

        async def read(conn: aiosqlite.Connection) -> dict[str, set[str]]:
            found: dict[str, set[str]] = {}
            for chunk in _chunks(unique):
                cur = await conn.execute(
                    f"SELECT {FEED_COPY_HASH}, source FROM articles WHERE {FEED_COPY_WHERE} "
                    f"AND {FEED_COPY_HASH} IN ({','.join('?' * len(chunk))})", chunk)
                for plain, source in await cur.fetchall():
                    found.setdefault(str(plain), set()).add(str(source))
            return found

        return await self._db.read(read) if unique else {}

    async def is_known(self, article: Article) -> bool:
        return await self._db.read(lambda conn: _duplicate_of(conn, article)) is not None

    async def known(self, articles: Sequence[Article]) -> list[bool]:
        """For each article, whether :meth:`record_many` of the list would find it a
        duplicate: of a stored article (as :meth:`is_known`) or of an earlier one of the list.
        A few reads, however long the list."""

        seen = _Identities()
        out: list[bool] = []
        for chunk in _chunks(articles):
            # One read per chunk: delivery's reads get the connection in between.
            await self._db.read(partial(run_on, fn=partial(seen.load, articles=chunk)))
            for a in chunk:
                dup = seen.duplicate(a)
                if not dup:
                    seen.add(a)
                out.append(dup)
        return out

    async def known_versions(self, articles: Sequence[Article]
                             ) -> list[tuple[Article | None, Article | None]]:
        """For each article :meth:`known` calls a duplicate, (changed-from, copy-of): what
        :meth:`changed` and :meth:`copies` say of it, read in one pass. At most one is set: a
        copy shares its content with a stored article, a new version shares none."""

        async def find(conn: aiosqlite.Connection
                       ) -> list[tuple[Article | None, Article | None]]:
            out: list[tuple[Article | None, Article | None]] = []
            for article in articles:
                hashes = dedupe_hashes(article)
                marks = ",".join("?" * len(hashes))
                cur = await conn.execute(
                    f"SELECT 1 FROM articles WHERE content_hash IN ({marks})", hashes)
                if await cur.fetchone() is not None:
                    cur = await conn.execute(
                        f"SELECT {ARTICLE_COLS_A} FROM articles a JOIN stories s "
                        f"ON s.id = a.story_id WHERE a.content_hash IN ({marks}) "
                        "AND a.source != ? AND NOT EXISTS "
                        "(SELECT 1 FROM json_each(s.outlets) WHERE value = ?)",
                        (*hashes, article.source, article.source))
                    row = await cur.fetchone()
                    out.append((None, article_of(row) if row is not None else None))
                    continue
                stored = await _duplicate_of(conn, article)
                row = None
                if stored is not None:
                    cur = await conn.execute(f"SELECT {ARTICLE_COLS} FROM articles WHERE id = ?",
                                             (stored,))
                    row = await cur.fetchone()
                out.append((article_of(row) if row is not None else None, None))
            return out

        return await self._db.read(find)

    async def record(
        self,
        article: Article,
        matches: Sequence[Fired],
        alerts: Sequence[OutboxEntry],
        *,
        terms: str,
        url_terms: str | None = None,
        places: tuple[str, str, str, str] | None = None,
    ) -> Article | None:
        """Store a new article with its index terms, matches and alerts in one transaction.

        ``terms`` are the words it is found under in lookups (the caller computes them; see
        :func:`watchers.rules.lookup.index_terms`), ``url_terms`` those of its link
        (:func:`watchers.rules.lookup.url_terms`), ``places`` its words where they stand
        (:func:`watchers.rules.lookup.places_of`; see :class:`ArticleRecord`). Returns the
        article as stored (its id may differ when another item already holds the same id), or
        None if it duplicates a stored article.
        """
        (stored,) = await self.record_many([ArticleRecord(article, matches, alerts, terms,
                                                          url_terms=url_terms, places=places)])
        return stored

    async def record_many(self, records: Sequence[ArticleRecord], *,
                          at: datetime | None = None,
                          notices: Sequence[tuple[str, str]] = (),
                          summaries: Sequence[CapSummary] = ()) -> list[Article | None]:
        """:meth:`record` for each of ``records``, in order, in one transaction: all of them
        are stored (or found duplicate) or, on an error, none. An article that duplicates an
        earlier one of the same batch is a duplicate too. The caller bounds the batch (a
        transaction holds the write lock until it commits). ``notices``: (route, text) of
        operational notices queued in the same transaction, after the batch's alerts;
        ``summaries``: the poll's cap summaries (``summary`` rows), after those."""
        if not records and not notices and not summaries:
            return []
        at = at or now()  # when the matches and alerts are recorded (the service's clock)
        async with self._db.tx() as tx:
            # The whole batch in one call on the connection's thread: each hop between the
            # threads waits for the interpreter lock, up to 5 ms while another thread (an
            # import's or a poll's parsing) runs Python, and a batch took some forty of them.
            out, words = await tx.run(partial(
                _record_batch, records=records, when=iso(at), notices=notices,
                summaries=summaries, terms_of=self._terms_of, listed=self._listed_words,
                names=self._outlet_names, places_of=self._places_of))
        # Committed (an error or a cancellation above leaves them unremembered).
        self._listed_words.remember(words)
        return out

    async def count_articles(self, *, follows: Collection[str] | None = None) -> int:
        """How many articles are stored (with ``follows``: visible to that server)."""
        where, params = _filters(None, None, follows)
        rows = await self._db.fetchall(f"SELECT count(*) FROM articles WHERE 1{where}", params)
        return int(rows[0][0])

    async def stored_sources(self, *, limit: int | None = None) -> list[str]:
        """The distinct source names of the stored articles, in order (the first ``limit``):
        one step down the (source, guid) index per name, however many articles each has."""
        rows = await self._db.fetchall(
            "WITH RECURSIVE s(name) AS (SELECT min(source) FROM articles UNION ALL "
            "SELECT (SELECT min(source) FROM articles WHERE source > name) FROM s "
            "WHERE name IS NOT NULL LIMIT ?) SELECT name FROM s WHERE name IS NOT NULL",
            (-1 if limit is None else limit + 1,))
        names = [str(name) for (name,) in rows]
        return names if limit is None else names[:limit]

    async def count_by_source(self, *, follows: Collection[str] | None = None
                              ) -> dict[str, int]:
        where, params = _filters(None, None, follows)
        rows = await self._db.fetchall(
            f"SELECT source, count(*) FROM articles WHERE 1{where} GROUP BY source", params)
        return {str(s): int(n) for s, n in rows}

    async def get_article(self, article_id: str, *,
                          visible: Callable[[Article], bool] | None = None) -> Article | None:
        """The article with this id, else the only one whose id starts with it (at least
        ``MIN_PREFIX`` characters, as /article accepts). Both are lookups in the id index.
        ``visible``: only among the articles it accepts (a server's: another server's article
        with the same first characters made a prefix of its own article find nothing)."""
        rows = await self._db.fetchall(
            f"SELECT {ARTICLE_COLS} FROM articles WHERE id = ?", (article_id,))
        if rows:
            found = article_of(rows[0])
            return found if visible is None or visible(found) else None
        if len(article_id) < MIN_PREFIX:
            return None
        # Ids are lowercase hex; a pasted prefix may not be.
        for prefix in dict.fromkeys((article_id, article_id.lower())):
            upper = prefix_successor(prefix)
            if upper is None:
                continue
            rows = await self._db.fetchall(
                f"SELECT {ARTICLE_COLS} FROM articles WHERE id >= ? AND id < ? "
                "ORDER BY id LIMIT ?",
                (prefix, upper, 2 if visible is None else PREFIX_CANDIDATES),
            )
            if rows:
                return only_one([article_of(r) for r in rows], visible)
        return None

    async def matches_for(self, article_id: str, *, retired: bool = True) -> list[Match]:
        current = "" if retired else " AND retired = 0"
        rows = await self._db.fetchall(
            "SELECT article_id, rule, score, hits FROM matches WHERE article_id = ?"
            f"{current} ORDER BY rule",
            (article_id,),
        )
        return [_match(*r) for r in rows]

    async def recent(
        self, *, rule: str | None = None, limit: int = 10, rules: Collection[str] | None = None,
        follows: Collection[str] | None = None,
    ) -> list[tuple[Article, list[Match]]]:
        """The newest articles that matched ``rule`` (a key) — or, without it, any rule (any of
        ``rules`` when given: a server's lookups see only its rules' matches) — with every
        match of each; with ``follows``, only articles that server sees. A retired match
        (see ``delete_rule``) is no rule's: only "any rule" finds its article, and only
        without ``rules`` is it among an article's matches."""
        visible, vparams = _filters(None, None, follows)
        if rules is not None and not rule:
            keys = sorted(set(rules))
            if not keys:
                return []
            sql = (
                f"SELECT {ARTICLE_COLS} FROM articles WHERE id IN "
                "(SELECT DISTINCT article_id FROM matches "
                f"WHERE rule IN ({','.join('?' * len(keys))}) AND retired = 0){visible} "
                "ORDER BY sort_at DESC, rowid DESC LIMIT ?"
            )
            rows = await self._db.fetchall(sql, (*keys, *vparams, limit))
            return [(a, await self.matches_for(a.id, retired=False))
                    for a in map(article_of, rows)]
        if rule:
            visible, vparams = "", []
            if follows is not None:
                clause, vparams = visible_clause(follows, "a.source")
                visible = f" AND {clause}"
            sql = (
                f"SELECT {ARTICLE_COLS_A} "
                "FROM articles a JOIN matches m ON m.article_id = a.id WHERE m.rule = ? "
                f"AND m.retired = 0{visible} "
                "ORDER BY a.sort_at DESC, a.rowid DESC LIMIT ?"
            )
            params: tuple[Any, ...] = (rule, *vparams, limit)
        else:
            sql = (
                f"SELECT {ARTICLE_COLS} FROM articles WHERE id IN "
                f"(SELECT DISTINCT article_id FROM matches){visible} "
                "ORDER BY sort_at DESC, rowid DESC LIMIT ?"
            )
            params = (*vparams, limit)
        articles = [article_of(r) for r in await self._db.fetchall(sql, params)]
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
        """One page of :meth:`candidates`: at most ``limit`` candidates read from the index (or
        from the articles when ``fts`` and ``urls`` are None) after the cursor ``after``, newest
        first. ``sources``: only articles of these sources (the names a lookup's ``source:``
        terms accept). ``urls``: only articles the URL index query finds (both indexes are
        keyed alike, so the two are joined on the key, newest first).

        The index is keyed in date order (see :mod:`.schema`), so a page reads only its own
        ``limit`` entries of a term's document list, from the newest down, however many
        articles the term has; the articles are then read by rowid. Without an index query the
        articles are read down the ``sort_at`` index from the cursor. The index read is the
        places index, with ``places`` when given (else ``fts``, whose words it holds too), or
        the word index with ``fts`` while the places index misses articles stored before it
        (see :data:`~watchers.store.sqlite.schema.PLACES_INCOMPLETE`); ``marked`` instead of
        ``places`` when every row of the places index holds its article's number marks (see
        :data:`~watchers.store.sqlite.schema.MARKS_KEYS_VERSION`). ``screen`` runs in the
        statement that reads a page's articles: a row that fails it is left out unread."""
        if urls and await self._db.fetchall(f"SELECT 1 FROM {URLS_INCOMPLETE} LIMIT 1"):
            urls = None  # the URL index misses some link: read as if it were not there
        ((words_only, exact),) = await self._db.fetchall(_PLACES_STATE)
        # Articles stored before the places index are in the word index alone, until the
        # engine's next open rebuilds (see schema.PLACES_INCOMPLETE).
        table = "article_index" if words_only else "article_places"
        if places and not words_only:
            fts = places  # the narrower: the same words, with their places and fields
            if marked and exact:
                fts = marked  # narrower still: number marks
        with self._screening(screen) as token:
            if token is not None:
                await self._db.function("nw_screen", 3, _screen_row)
            if not (fts or urls):
                return await self._scan_page(since, source, after, limit, follows, sources,
                                             token)
            page = await self._index_page(fts or None, since, source, after, limit, follows,
                                          sources, urls or None, table, token)
            if words_only and not await self._db.fetchall(_WORDS_READ):
                # The rebuild's swap came between the two reads and emptied the word index:
                # the page read nothing there (and said it had no more). Read it again from
                # the places index, which now holds every article.
                page = await self._index_page(places or fts or None, since, source, after,
                                              limit, follows, sources, urls or None,
                                              "article_places", token)
            return page

    @contextlib.contextmanager
    def _screening(self, screen: CandidateScreen | None) -> Iterator[int | None]:
        """The token the statements of a page pass ``nw_screen`` for ``screen`` (None: none)."""
        if screen is None:
            yield None
            return
        token = next(_SCREEN_TOKENS)
        _SCREENS[token] = screen
        try:
            yield token
        finally:
            del _SCREENS[token]

    async def _index_page(self, fts: str | None, since: datetime | None, source: str | None,
                          after: str | None, limit: int,
                          follows: Collection[str] | None = None,
                          sources: Collection[str] | None = None,
                          urls: str | None = None,
                          table: str = "article_places",
                          screen: int | None = None) -> CandidatePage:
        upper = _cursor_key(after) if after is not None else None
        lower = page_second(since) << INDEX_ROWID_BITS if since is not None else None
        if fts is not None and urls is not None:
            keys = await self._joined_keys(fts, urls, upper, lower, limit, table)
        else:
            keys = await self._keys(table if fts is not None else "article_urls",
                                    fts or urls or "", upper, lower, limit)
        if not keys:
            return CandidatePage([], None)
        where, extra = _filters(since, source, follows, sources)
        by_rowid: dict[int, Article] = {}
        rowids = [k & INDEX_ROWID_MASK for k in keys]
        for at in range(0, len(rowids), 500):  # under SQLite's bound-parameter limit
            chunk = rowids[at:at + 500]
            sql = (f"SELECT rowid, {ARTICLE_COLS} FROM articles "
                   f"WHERE rowid IN ({','.join('?' * len(chunk))}){where}")
            params = [*chunk, *extra]
            if screen is not None:
                # The page's rows first, then the screen on them alone (as a filter beside
                # the others, the planner may test it on rows the page never reads).
                sql = (f"WITH page AS MATERIALIZED ({sql}) "
                       "SELECT * FROM page WHERE nw_screen(?, title, text)")
                params.append(screen)
                _SCREENS[screen].start()
            rows = await self._db.fetchall(sql, params)
            by_rowid.update((int(r[0]), article_of(r[1:])) for r in rows)
        found = [by_rowid[r] for r in rowids if r in by_rowid]
        return CandidatePage(found, f"k{keys[-1]}" if len(keys) == limit else None,
                             None if screen is None else keys[-1] >> INDEX_ROWID_BITS)

    async def _keys(self, table: str, query: str, upper: int | None, lower: int | None,
                    limit: int) -> list[int]:
        """The keys of ``table`` (an index) that ``query`` matches below ``upper`` and from
        ``lower`` on (either None: unbounded), newest first, at most ``limit``."""
        sql = f"SELECT rowid FROM {table} WHERE {table} MATCH ?"
        params: list[Any] = [query]
        if upper is not None:
            sql += " AND rowid < ?"
            params.append(upper)
        if lower is not None:
            sql += " AND rowid >= ?"
            params.append(lower)
        sql += " ORDER BY rowid DESC LIMIT ?"
        params.append(limit)
        return [int(k) for (k,) in await self._db.fetchall(
            sql, params, what="search index rejected the query")]

    async def _joined_keys(self, fts: str, urls: str, upper: int | None, lower: int | None,
                           limit: int, table: str = "article_places") -> list[int]:
        """The keys both indexes match (``fts`` the lookup index ``table``, ``urls`` the URL
        index),
        newest first, at most ``limit``: a window of the URL index's keys (URL_WINDOW of
        them, newest first) is held as a set and the lookup index's keys of the same span are
        read newest first and kept when in it, then the next window below. A join would test
        each key of one index in the other, a fresh FTS5 query each (20 to 70 µs); this reads
        each key once (about 1 µs), however the two sides' sizes compare."""
        out: list[int] = []
        while len(out) < limit:
            window = await self._keys("article_urls", urls, upper, lower, URL_WINDOW)
            if not window:
                break
            # The window spans [lo, upper): every URL key of it is in the set.
            lo = window[-1] if len(window) == URL_WINDOW else lower
            held = set(window)
            top = upper
            while len(out) < limit:
                keys = await self._keys(table, fts, top, lo, JOIN_CHUNK)
                out += [k for k in keys if k in held]
                if len(keys) < JOIN_CHUNK:
                    break
                top = keys[-1]
            if len(window) < URL_WINDOW:
                break
            upper = window[-1]
        return out[:limit]

    async def _scan_page(self, since: datetime | None, source: str | None, after: str | None,
                         limit: int, follows: Collection[str] | None = None,
                         sources: Collection[str] | None = None,
                         screen: int | None = None) -> CandidatePage:
        sql = f"SELECT rowid, {ARTICLE_COLS}, 1 FROM articles WHERE 1"
        params: list[Any] = []
        if after is not None:
            sort_at, rowid = _cursor_position(after)
            sql += " AND (sort_at, rowid) < (?, ?)"
            params += [sort_at, rowid]
        where, extra = _filters(since, source, follows, sources)
        sql += where
        params += extra
        sql += " ORDER BY sort_at DESC, rowid DESC LIMIT ?"
        params.append(limit)
        if screen is not None:
            # The screen is a column of the page's rows, not a filter: the page reads
            # ``limit`` rows whatever it passes (a filter would read on until it passed that
            # many), and its cursor is the last row read. Tested once they are sorted and cut
            # (in the sort, every row of a source: tens of thousands).
            sql = (f"WITH page AS MATERIALIZED ({sql}) "
                   "SELECT rowid, " + ", ".join(c.strip() for c in ARTICLE_COLS.split(","))
                   + ", nw_screen(?, title, text) FROM page")
            params.append(screen)
            _SCREENS[screen].start()
        rows = await self._db.fetchall(sql, params)
        found = [article_of(r[1:-1]) for r in rows if r[-1]]
        last = None
        if rows:
            last = found[-1] if found and rows[-1][-1] else article_of(rows[-1][1:-1])
        read_to = None if screen is None or last is None else page_second(sort_time(last))
        if len(rows) < limit or last is None:
            return CandidatePage(found, None, read_to)
        return CandidatePage(found, f"s{iso(sort_time(last))} {rows[-1][0]}", read_to)

    async def index_words(self, *, after: int = 0) -> tuple[list[str], int] | None:
        """The words the lookup index holds that were listed after the cursor ``after`` (0:
        all), and the cursor to read on from. Words are listed in the transaction that indexes
        them and never unlisted, but a rebuild of the lookup indexes lists them afresh, in a
        new table numbered from 1: the cursor holds the schema's version with the last rowid
        read, and one from before another schema reads every word again. (A reader open
        across a rebuild read on from its old rowid in the new list, which held fewer words:
        what was stored after it was never listed to that reader, and its fuzzy terms,
        prefixes and regexes missed those articles.)"""
        # The version first: a swap between the two reads leaves the cursor's version old,
        # and the next call reads everything.
        ((version,),) = await self._db.fetchall("PRAGMA schema_version")
        seen, last = after >> _CURSOR_BITS, after & _CURSOR_ROWID
        if after and seen != version:
            last = 0
        # One string of the words (a year of news lists a million: read as rows, 2.5 s; as one
        # string, 0.3 s), split on a character no word holds; a word that held one (a count
        # that disagrees) has the list read as rows.
        ((joined, count, top),) = await self._db.fetchall(
            "SELECT group_concat(word, char(10)), count(*), max(rowid) FROM (SELECT rowid, word "
            "FROM index_words WHERE rowid > ? ORDER BY rowid)", (last,))
        words = [] if not count else str(joined).split("\n")
        if len(words) != count:
            rows = await self._db.fetchall(
                "SELECT word FROM index_words WHERE rowid > ? AND rowid <= ? ORDER BY rowid",
                (last, top))
            words = [str(w) for (w,) in rows]
        if count:
            last = int(top)
        return words, (int(version) << _CURSOR_BITS) | last

    async def rule_match_counts(self, *, since: datetime | None = None) -> dict[str, int]:
        rows = await self._db.fetchall(
            "SELECT rule, count(*) FROM matches WHERE matched_at >= ? AND retired = 0 "
            "GROUP BY rule",
            (iso(since) if since else "",),
        )
        return {str(r): int(n) for r, n in rows}
