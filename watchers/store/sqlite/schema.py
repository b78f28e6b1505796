"""The schema: created whole for a new database, migrated step by step for an existing one.

- ``FRESH`` is the current schema (version ``SCHEMA_VERSION``); a new database gets it in one
  transaction, never by replaying history.
- ``MIGRATIONS[v]`` takes a database from version ``v - 1`` to ``v``, each in its own
  transaction with the version bump, so a crash leaves a whole version. Never edit one that has
  shipped; the test suite checks that migrating a version-1 database gives exactly ``FRESH``.
- ``PRAGMA application_id`` marks the file as newswatch's: a file with another application's id,
  an unversioned file that already holds tables, or an unmarked one (as versions before 4 left
  theirs) whose version's tables are not there, is refused rather than written into.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from functools import partial

from watchers.errors import StoreEmptyError, StoreError
from watchers.store._shared import FEED_COPY_HASH, FEED_COPY_WHERE
from watchers.store.base import PAGE_MAX_SECOND, URLS_INCOMPLETE
from watchers.store.sqlite._db import Db, Tx, insert_many

__all__ = [
    "APPLICATION_ID",
    "COPYING_APPLICATION_ID",
    "FORGET_PLACES",
    "FRESH",
    "INDEX_KEY_SQL",
    "INDEX_MAX_SECOND",
    "INDEX_ROWID_BITS",
    "INDEX_ROWID_MASK",
    "INSERT_PLACES",
    "MIGRATIONS",
    "PLACES_INCOMPLETE",
    "PLACES_INEXACT",
    "SCHEMA_VERSION",
    "PlacesOf",
    "TermsOf",
    "add_index_words",
    "check",
    "index_articles",
    "index_urls",
    "keys_version",
    "rekey",
    "upgrade",
]

log = logging.getLogger(__name__)

APPLICATION_ID = int.from_bytes(b"nwsw", "big")  # "newswatch", in the file header at offset 68
# The header of a file ``newswatch copy`` is still filling (see watchers.store.copy).
COPYING_APPLICATION_ID = int.from_bytes(b"nwcp", "big")
SCHEMA_VERSION = 18

# The words under which an article is indexed for lookups, from its title and text; given by the
# caller because the store does not know the rule language (see watchers.rules.lookup).
TermsOf = Callable[[str, str], str]
# An article's columns in the places index (see ARTICLE_PLACES), from its title and text: the
# caller's too (watchers.rules.lookup.places_of).
PlacesOf = Callable[[str, str], tuple[str, str, str, str]]

# The lookup index (``article_index``) is keyed in date order, so that FTS5, which walks a
# term's documents in rowid order, yields the newest first and a lookup stops as soon as it has
# enough: the key is the article's ``sort_at`` in whole seconds (clamped to 1970..2106) times
# 2**31 plus its rowid, unique and decodable (``key & INDEX_ROWID_MASK`` is the rowid; rowids
# stop at 2**31 - 1). Writers index stored articles with :func:`index_articles`; the view
# ``article_terms``, whose trigger computes the same key row by row, stays for older code paths
# and tools that insert into it (it indexes titles and texts only: such a tool indexes the URLs
# of its articles with :func:`index_urls`).
#
# The URL index (``article_urls``, from version 12) holds the words of each article's link
# (:func:`watchers.rules.lookup.url_terms`, the matcher's own tokens of the ``url`` field, which
# writers give with each article as they give its terms) under
# the same key, so a lookup's ``url:`` terms narrow it as title and text terms do. A table of
# its own rather than marked words in ``article_index``: a contentless FTS5 row cannot be
# extended, so marked words would have meant re-indexing every stored article's text to add
# them; a second table is filled from the links alone. No per-row sizes (``columnsize=0``: they
# serve ranking only), and no word list: a link's words include its id or slug, unique to one
# article, so fuzzy ``url:`` terms are not expanded over them.
INDEX_ROWID_BITS = 31
INDEX_ROWID_MASK = (1 << INDEX_ROWID_BITS) - 1
INDEX_MAX_SECOND = PAGE_MAX_SECOND  # the same clamp as the order CandidatePage promises
INDEX_KEY_SQL = (
    f"max(0, min({INDEX_MAX_SECOND}, CAST(strftime('%s', substr(a.sort_at, 1, 19)) AS INTEGER)))"
    f" * {1 << INDEX_ROWID_BITS} + a.rowid"
)


def _keys(conn: sqlite3.Connection, rowids: Sequence[int]) -> dict[int, int]:
    """The index key of each stored article of ``rowids``."""
    found: dict[int, int] = {}
    for i in range(0, len(rowids), 500):
        chunk = rowids[i : i + 500]
        found.update(conn.execute(
            f"SELECT a.rowid, {INDEX_KEY_SQL} FROM articles a "
            f"WHERE a.rowid IN ({','.join('?' * len(chunk))})", chunk))
    return found


def _checked_key(found: Mapping[int, int], rowid: int) -> int:
    key = found.get(rowid)
    if key is None:
        raise sqlite3.IntegrityError("article_terms: no stored article has this rowid")
    if not 1 <= rowid <= INDEX_ROWID_MASK:
        raise sqlite3.IntegrityError("article_terms: article rowid out of the index key range")
    return key


def _insert_urls(conn: sqlite3.Connection, keyed: Iterable[tuple[int, str]]) -> None:
    # Articles without a link (or with none of its words) have no row: no url: term matches them.
    insert_many(conn, "INSERT INTO article_urls (rowid, terms) VALUES (?, ?)",
                sorted((key, terms) for key, terms in keyed if terms))


def index_urls(conn: sqlite3.Connection, rows: Sequence[tuple[int, str]]) -> None:
    """Index the links of stored articles in the URL index: ``(articles.rowid, url terms)``
    pairs (the caller computes the words, :func:`watchers.rules.lookup.url_terms`), as
    :func:`index_articles` does; for a writer that indexed their titles and texts through the
    ``article_terms`` view. In the caller's transaction, on the connection's thread."""
    found = _keys(conn, [r for r, _ in rows])
    _insert_urls(conn, [(_checked_key(found, r), terms) for r, terms in rows])


def index_articles(conn: sqlite3.Connection,
                   rows: Sequence[tuple[int, str] | tuple[int, str, str]
                                  | tuple[int, str, str, tuple[str, str, str, str] | None]],
                   words: AbstractSet[str] | None = None,
                   keys: Mapping[int, int] | None = None) -> None:
    """Index stored articles: ``(articles.rowid, terms)`` or ``(articles.rowid, terms, url
    terms)``, under the key and with the checks of the ``article_terms`` view, inserted straight
    into ``article_index`` in key order, and the words of their links (the caller's, as the
    terms are) into the URL index ``article_urls``, and their places (a fourth item, the
    caller's :data:`PlacesOf` columns) into the places index ``article_places``: an article
    given none is placed by its words alone (see :data:`ARTICLE_PLACES`). Into the word
    index ``article_index`` too while the places index misses articles stored before it
    (:data:`PLACES_INCOMPLETE`), which lookups then read.
    FTS5 keeps a transaction's rows in memory while their keys rise; the view's trigger made it
    write every row out on its own, about 100 µs an article. Runs on the connection's thread,
    inside the caller's transaction. The rows' words are listed in the word list (see
    :func:`add_index_words`): ``words`` when given (a caller that knows which of them are
    listed already leaves those out), else every word of the rows' terms. ``keys``: the index
    key of each of the rows' articles by rowid (:data:`INDEX_KEY_SQL`'s), when the caller read
    them already (with the rowids: one read of a batch's articles instead of two)."""
    found = _keys(conn, [row[0] for row in rows]) if keys is None else keys
    keyed = []
    links = []
    placed = []
    inexact: list[tuple[int]] = []
    for row in rows:
        key = _checked_key(found, row[0])
        keyed.append((key, row[1]))
        if len(row) > 2:
            links.append((key, row[2]))
        places = row[3] if len(row) > 3 else None
        if places is None:
            inexact.append((row[0],))
        placed.append((key, *(places or words_placed(row[1]))))
    placed.sort()
    insert_many(conn, INSERT_PLACES, placed)
    if inexact:
        conn.executemany(f"INSERT OR IGNORE INTO {PLACES_INEXACT} (article) VALUES (?)", inexact)
    if conn.execute(_GAP).fetchone() is not None:
        keyed.sort()
        insert_many(conn, "INSERT INTO article_index (rowid, terms) VALUES (?, ?)", keyed)
    _insert_urls(conn, links)
    if words is None:
        add_index_words(conn, [row[1] for row in rows])
    else:
        _list_words(conn, words)


_INSERT_PLACES = ("INSERT INTO {table} (rowid, title, text, title_more, text_more) "
                  "VALUES (?, ?, ?, ?, ?)")
# A row of the places index, and the command that forgets one (given the values it was
# written with: the index keeps no copy of them).
INSERT_PLACES = _INSERT_PLACES.format(table="article_places")
FORGET_PLACES = ("INSERT INTO article_places (article_places, rowid, title, text, title_more, "
                 "text_more) VALUES ('delete', ?, ?, ?, ?, ?)")


def words_placed(terms: str) -> tuple[str, str, str, str]:
    """The places index's row of an article known by its words alone (see ARTICLE_PLACES)."""
    return ("", "", terms, terms)


def add_index_words(conn: sqlite3.Connection, terms: Sequence[str]) -> None:
    """Record the words of index rows (space-separated terms) in ``index_words``, the list of
    every word the lookup index holds, which fuzzy lookups expand over (see
    ``ArticleStore.index_words``). In the caller's transaction, on the connection's thread:
    a word is listed exactly when an index row holding it is committed."""
    _list_words(conn, set(" ".join(terms).split()))


def _list_words(conn: sqlite3.Connection, words: AbstractSet[str]) -> None:
    # Sorted: the inserts walk the word index in order.
    listed = sorted(w for w in words if w)
    if listed:
        conn.execute("INSERT OR IGNORE INTO index_words (word) SELECT value FROM json_each(?)",
                     (json.dumps(listed, ensure_ascii=False),))


# Space-separated terms as a JSON array of words, in SQL (a trigger cannot use a recursive
# CTE to split them): backslashes and quotes escaped, whitespace that is not a space made one.
_JSON_WORDS = (
    """'["' || replace(replace(replace(replace(replace(replace({terms}, '\\', '\\\\'), """
    """'"', '\\"'), char(9), ' '), char(10), ' '), char(13), ' '), ' ', '","') || '"]'"""
)
INDEX_WORDS = "CREATE TABLE index_words (word TEXT PRIMARY KEY);"

# The view writers may insert into, as migration 5 made it (kept as it shipped) ...
_ARTICLE_TERMS_V5 = f"""
CREATE VIEW article_terms(rowid, terms) AS SELECT NULL, NULL WHERE 0;
CREATE TRIGGER article_terms_insert INSTEAD OF INSERT ON article_terms BEGIN
    SELECT RAISE(ABORT, 'article_terms: no stored article has this rowid')
        WHERE NOT EXISTS (SELECT 1 FROM articles WHERE rowid = NEW.rowid);
    SELECT RAISE(ABORT, 'article_terms: article rowid out of the index key range')
        WHERE NEW.rowid < 1 OR NEW.rowid > {INDEX_ROWID_MASK};
    INSERT INTO article_index (rowid, terms)
        SELECT {INDEX_KEY_SQL}, NEW.terms FROM articles a WHERE a.rowid = NEW.rowid;
END;
"""

# ... and as it is from migration 11: it also lists the words of each row in the word list.
ARTICLE_TERMS = _ARTICLE_TERMS_V5.replace("\nEND;", f"""
    INSERT OR IGNORE INTO index_words (word)
        SELECT value FROM json_each({_JSON_WORDS.format(terms="NEW.terms")}) WHERE value <> '';
END;""")

# The URL index (version 12), and the row that says it misses some stored article's link (see
# watchers.store.base.URLS_INCOMPLETE).
ARTICLE_URLS = f"""
CREATE VIRTUAL TABLE article_urls USING fts5(
    terms, content='', columnsize=0, tokenize="unicode61 remove_diacritics 0"
);
CREATE TABLE {URLS_INCOMPLETE} (gap INTEGER PRIMARY KEY CHECK (gap = 1), since TEXT NOT NULL);
"""
# The places index (version 17): each article's words where they stand, under the lookup
# index's key, in four columns (see watchers.rules.lookup.places_of): the keys of the title's
# tokens in order, the text's, and each field's other words (compounds, norms). Phrases and NEAR
# are answered from the positions FTS5 keeps, ``title:`` and ``text:`` terms from a field's
# columns. The tokeniser takes each key whole (every character but spaces and controls is a
# token character), so the distance FTS5 counts between two keys is the words between them.
# An article whose words a writer gave without their places (a tool writing through the view,
# a store opened without the engine's places) is placed by its words alone: no keys in order,
# every word among each field's other words. Every query of the places index stays a superset
# of what the matcher matches for it (a phrase or NEAR is also looked for as its words
# anywhere with one of them among the other words; see watchers.rules.lookup.places_query), only
# less narrow. The row of PLACES_INCOMPLETE says articles stored before schema 17 have no row
# yet: lookups then read the word index ``article_index`` (which writers keep filling until
# then), and the next open of a writer with the engine's places rebuilds the indexes (see
# rekey), after which the word index is left empty.
PLACES_INCOMPLETE = "article_places_incomplete"
PLACES_TOKENIZE = "unicode61 remove_diacritics 0 categories 'L* N* M* P* S* Co Cf Cn Cs'"
_PLACES_TABLE = f"""
CREATE VIRTUAL TABLE {{name}} USING fts5(
    title, text, title_more, text_more, content='', columnsize=0,
    tokenize="{PLACES_TOKENIZE}"
);
"""
# Its row 1 says articles stored before schema 17 have no row yet (lookups read the word index);
# row 2 that a rebuild or copy without the engine's places placed every article by its words
# (lookups read the places index, only less narrowly): either has the next writer with the
# engine's places rebuild. Row 3 says the rebuild under way cannot vouch for its rows (a chunk
# was placed by its words, or an article changed while it ran): its swap leaves row 2.
# PLACES_INEXACT lists the articles whose row is not the places of their stored title and text
# (placed by their words, or left by a change the store could not index): a change of any other
# article replaces its row in place while no row here is set (see watchers.store.sqlite.
# stories._index_change).
PLACES_INEXACT = "article_places_inexact"
# The word keys version (watchers.rules.text.KEYS_VERSION) from which a field's other words in
# the places index hold its number marks (watchers.rules.lookup.MARK): a lookup's marked query
# is read only where the index was built with it and every row is its article's places.
MARKS_KEYS_VERSION = 6
ARTICLE_PLACES = _PLACES_TABLE.format(name="article_places") + f"""
CREATE TABLE {PLACES_INCOMPLETE} (gap INTEGER PRIMARY KEY CHECK (gap IN (1, 2, 3)),
                                  since TEXT NOT NULL);
CREATE TABLE {PLACES_INEXACT} (article INTEGER PRIMARY KEY);
"""
_MARK = (f"INSERT OR IGNORE INTO {PLACES_INCOMPLETE} (gap, since) "
         "VALUES ({gap}, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))")
MARK_PLACES_GAP = _MARK.format(gap=1)
MARK_WORDS_ONLY = _MARK.format(gap=2)
MARK_REBUILD_UNSURE = _MARK.format(gap=3)
_GAP = f"SELECT 1 FROM {PLACES_INCOMPLETE} WHERE gap = 1"
# ... and the view, from version 17: an article indexed through it is placed by its words, and
# indexed in the word index while lookups read that.
ARTICLE_TERMS_17 = _ARTICLE_TERMS_V5[:_ARTICLE_TERMS_V5.index("    INSERT INTO")] + f"""\
    INSERT INTO article_places (rowid, title, text, title_more, text_more)
        SELECT {INDEX_KEY_SQL}, '', '', NEW.terms, NEW.terms FROM articles a
        WHERE a.rowid = NEW.rowid;
    INSERT INTO article_index (rowid, terms)
        SELECT {INDEX_KEY_SQL}, NEW.terms FROM articles a
        WHERE a.rowid = NEW.rowid AND EXISTS (SELECT 1 FROM {PLACES_INCOMPLETE} WHERE gap = 1);
    INSERT OR IGNORE INTO {PLACES_INEXACT} (article) VALUES (NEW.rowid);
    INSERT OR IGNORE INTO index_words (word)
        SELECT value FROM json_each({_JSON_WORDS.format(terms="NEW.terms")}) WHERE value <> '';
END;
"""

# Marks the URL index incomplete (once: later marks change nothing); the time as parameter.
MARK_URL_GAP = f"INSERT OR IGNORE INTO {URLS_INCOMPLETE} (gap, since) VALUES (1, ?)"

# Servers the bot was removed from (version 13): their rules, feeds and channels are kept but
# not run until it is back.
# The followed feeds' articles by their plain content hash (see _shared.FEED_COPY_HASH): a
# partial index over their rows alone, which the config file's sources' articles never enter.
FEED_COPIES = f"""
CREATE INDEX IF NOT EXISTS articles_feed_copies ON articles({FEED_COPY_HASH})
    WHERE {FEED_COPY_WHERE};
"""

DEPARTED = """
CREATE TABLE departed_servers (
    guild_id INTEGER PRIMARY KEY,
    since TEXT NOT NULL
);
"""

# Which word keys the lookup indexes hold (version 15): ``version``, the engine's keys version
# (watchers.rules.text.KEYS_VERSION) they were built with (0: not known; 1: the keys before
# versions were recorded); while a rebuild for another version runs, ``building`` is that
# version and ``after`` the last article rowid it indexed (see rekey).
INDEX_KEYS = """
CREATE TABLE index_keys (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    version INTEGER NOT NULL,
    building INTEGER,
    after INTEGER NOT NULL DEFAULT 0
);
"""

FRESH = """
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
    content_hash TEXT NOT NULL UNIQUE,
    story_id TEXT
);
CREATE INDEX articles_guid ON articles(source, guid);
CREATE INDEX articles_story ON articles(story_id, sort_at) WHERE story_id IS NOT NULL;
CREATE INDEX articles_link ON articles(link_key);
CREATE INDEX articles_sort ON articles(sort_at);
CREATE VIRTUAL TABLE article_index USING fts5(
    terms, content='', tokenize="unicode61 remove_diacritics 0"
);
""" + FEED_COPIES + INDEX_WORDS + ARTICLE_PLACES + ARTICLE_TERMS_17 + ARTICLE_URLS + """
CREATE TABLE matches (
    article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    rule TEXT NOT NULL,
    score REAL NOT NULL,
    hits TEXT NOT NULL,
    matched_at TEXT NOT NULL,
    retired INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (article_id, rule)
);
CREATE INDEX matches_rule ON matches(rule, matched_at);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL DEFAULT 'alert',
    article_id TEXT REFERENCES articles(id) ON DELETE CASCADE,
    route TEXT NOT NULL,
    rules TEXT NOT NULL DEFAULT '[]',
    text TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    nonce TEXT NOT NULL,
    next_attempt_at TEXT,
    remote_id TEXT,
    reason TEXT,
    maybe_sent INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    story_id TEXT,
    severity TEXT,
    min_sources INTEGER NOT NULL DEFAULT 1,
    escalated_from TEXT,
    changed INTEGER NOT NULL DEFAULT 0,
    digest_id INTEGER,
    scheduled_for TEXT,
    CHECK ((kind IN ('alert', 'update')) = (article_id IS NOT NULL))
);
CREATE UNIQUE INDEX outbox_alert_once ON outbox(article_id, route) WHERE kind = 'alert';
CREATE INDEX outbox_due ON outbox(state, next_attempt_at, id);
CREATE INDEX outbox_route ON outbox(route, state, id);
CREATE INDEX outbox_waiting ON outbox(route, id) WHERE state IN ('pending', 'retry');
CREATE INDEX outbox_story ON outbox(story_id, route) WHERE story_id IS NOT NULL;
CREATE INDEX outbox_corroborating ON outbox(created_at) WHERE state = 'waiting';
CREATE INDEX outbox_scheduled ON outbox(route, scheduled_for) WHERE state = 'scheduled';
CREATE INDEX outbox_digest ON outbox(digest_id) WHERE digest_id IS NOT NULL;
CREATE INDEX outbox_sent ON outbox(route, updated_at) WHERE state = 'delivered';
CREATE TABLE stories (
    id TEXT PRIMARY KEY,
    headline TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    updated_at TEXT,
    signature TEXT NOT NULL,
    articles INTEGER NOT NULL DEFAULT 0,
    outlets TEXT NOT NULL DEFAULT '[]',
    source_outlets TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX stories_last ON stories(last_seen);
CREATE TABLE story_routes (
    story_id TEXT NOT NULL,
    route TEXT NOT NULL,
    message_id TEXT,
    thread_id TEXT,
    PRIMARY KEY (story_id, route)
);
CREATE TABLE route_pauses (
    route TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    paused_at TEXT NOT NULL
);
""" + DEPARTED + """
CREATE TABLE source_state (
    name TEXT PRIMARY KEY,
    cursor TEXT NOT NULL DEFAULT '{}',
    polls INTEGER NOT NULL DEFAULT 0,
    last_success TEXT,
    last_error TEXT,
    last_error_at TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    next_poll TEXT,
    paused INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE rules (
    name TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    created_at TEXT NOT NULL,
    guild_id INTEGER
);
CREATE TABLE sources (
    name TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    created_at TEXT NOT NULL,
    guild_id INTEGER
);
CREATE TABLE routes (
    name TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    created_at TEXT NOT NULL,
    guild_id INTEGER
);
CREATE TABLE mutes (
    rule TEXT PRIMARY KEY,
    until TEXT NOT NULL
);
CREATE TABLE surges (
    rule TEXT PRIMARY KEY,
    last_at TEXT NOT NULL
);
CREATE INDEX outbox_alerts_created ON outbox(created_at) WHERE kind = 'alert';
CREATE TABLE acks (
    alert_id INTEGER PRIMARY KEY REFERENCES outbox(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE not_relevant (
    alert_id INTEGER NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (alert_id, user_id)
);
CREATE TABLE escalations (
    alert_id INTEGER PRIMARY KEY REFERENCES outbox(id) ON DELETE CASCADE,
    notice_id INTEGER NOT NULL,
    at TEXT NOT NULL
);
""" + INDEX_KEYS + "INSERT INTO index_keys (one, version) VALUES (1, 0);\n"


async def m2(tx: Tx, terms_of: TermsOf | None, path: str) -> None:
    """Delivery that survives failures: destinations paused across restarts, and a mark on
    alerts whose send may have reached the destination without us learning the outcome."""
    await tx.script("""
        CREATE TABLE route_pauses (
            route TEXT PRIMARY KEY,
            reason TEXT NOT NULL,
            paused_at TEXT NOT NULL
        );
        ALTER TABLE outbox ADD COLUMN maybe_sent INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX outbox_route ON outbox(route, state, id);
    """)


async def m3(tx: Tx, terms_of: TermsOf | None, path: str) -> None:
    """The lookup index holds the rule engine's own word keys (plurals, apostrophes, compounds
    folded), so a query narrows candidates without missing any. It replaces the first index over
    the raw text, whose tokens did not fold that way, and is filled for the stored articles."""
    await tx.script("""
        CREATE VIRTUAL TABLE article_terms USING fts5(
            terms, content='', tokenize="unicode61 remove_diacritics 0"
        );
        DROP TRIGGER articles_ai;
        DROP TRIGGER articles_ad;
        DROP TABLE articles_fts;
    """)
    rows = await tx.fetchall("SELECT rowid, title, text FROM articles")
    if rows and terms_of is None:
        raise StoreError(
            f"{path} was written by an older newswatch and its lookup index must be rebuilt; "
            "open it once with a command that writes (e.g. run or import) to upgrade it"
        )
    if terms_of is not None:
        await tx.executemany("INSERT INTO article_terms (rowid, terms) VALUES (?, ?)",
                             [(rowid, terms_of(title, text)) for rowid, title, text in rows])


async def m4(tx: Tx, terms_of: TermsOf | None, path: str) -> None:
    """Outbox rows carry what the sink needs (the rules as they matched, as JSON of the config
    model) and notices become outbox rows (no article, a text); the rows waiting to be sent have
    their own index, in claim order, so a claim reads only what it returns. Run-time rules and
    sources are stored as JSON of their config models, so the store never lags behind a new
    field. A source's state counts the items it could not read."""
    await tx.script("""
        CREATE TABLE outbox_v4 (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL DEFAULT 'alert' CHECK (kind IN ('alert', 'notice')),
            article_id TEXT REFERENCES articles(id) ON DELETE CASCADE,
            route TEXT NOT NULL,
            rules TEXT NOT NULL DEFAULT '[]',
            text TEXT,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            nonce TEXT NOT NULL,
            next_attempt_at TEXT,
            remote_id TEXT,
            reason TEXT,
            maybe_sent INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (article_id, route),
            CHECK ((kind = 'alert') = (article_id IS NOT NULL))
        );
        INSERT INTO outbox_v4 (id, kind, article_id, route, rules, text, state, attempts, nonce,
                               next_attempt_at, remote_id, reason, maybe_sent, created_at,
                               updated_at)
            SELECT id, 'alert', article_id, route, rules, NULL, state, attempts, nonce,
                   next_attempt_at, remote_id, reason, maybe_sent, created_at, updated_at
            FROM outbox;
        DROP TABLE outbox;
        ALTER TABLE outbox_v4 RENAME TO outbox;
        CREATE INDEX outbox_due ON outbox(state, next_attempt_at, id);
        CREATE INDEX outbox_route ON outbox(route, state, id);
        CREATE INDEX outbox_waiting ON outbox(route, id) WHERE state IN ('pending', 'retry');
        ALTER TABLE source_state ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE rules (
            name TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE sources (
            name TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
    """)
    # Legacy rows keep their legacy (name-only) rule lists; the reader understands both.
    for name, query, channel, severity, role, threshold, by, created in await tx.fetchall(
        "SELECT name, query, channel, severity, mention_role, threshold, created_by, "
        "created_at FROM user_rules"
    ):
        model = {"name": name, "query": query, "channel": channel, "severity": severity,
                 "mention_role": role, "threshold": threshold, "created_by": by}
        await tx.execute("INSERT INTO rules (name, model, created_at) VALUES (?,?,?)",
                         (name, json.dumps(model, sort_keys=True), created))
    # Every source added at run time before version 4 was a feed.
    for name, url, every_seconds, by, created in await tx.fetchall(
        "SELECT name, url, every_seconds, created_by, created_at FROM user_sources"
    ):
        model = {"type": "feed", "name": name, "url": url, "every": every_seconds,
                 "created_by": by}
        await tx.execute("INSERT INTO sources (name, model, created_at) VALUES (?,?,?)",
                         (name, json.dumps(model, sort_keys=True), created))
    await tx.script("DROP TABLE user_rules; DROP TABLE user_sources;")


async def m5(tx: Tx, terms_of: TermsOf | None, path: str) -> None:
    """The lookup index is keyed in date order (see ``INDEX_KEY_SQL``) so that a lookup reads
    the newest candidates first and stops early. The terms move from the old index as they are
    (read back through an ``fts5vocab`` table, which a contentless index allows), so no article
    is re-tokenised; ``article_terms`` becomes the view writers insert into."""
    await tx.script("""
        CREATE VIRTUAL TABLE article_index USING fts5(
            terms, content='', tokenize="unicode61 remove_diacritics 0"
        );
        CREATE VIRTUAL TABLE temp.article_terms_v4 USING fts5vocab(
            main, article_terms, instance
        );
    """)
    await tx.execute(
        f"INSERT INTO article_index (rowid, terms) SELECT {INDEX_KEY_SQL}, v.terms FROM "
        "(SELECT doc, group_concat(term, ' ') AS terms FROM temp.article_terms_v4 "
        "GROUP BY doc) v JOIN articles a ON a.rowid = v.doc"
    )
    await tx.script("DROP TABLE temp.article_terms_v4; DROP TABLE article_terms;")
    await tx.script(_ARTICLE_TERMS_V5)


async def m6(tx: Tx, terms_of: TermsOf | None, path: str) -> None:
    """Stories: an article belongs to a story (``articles.story_id``; stored articles keep none
    until they are grouped, which only new articles are), a story's outlets and signature, and
    the story's message per route. The outbox learns ``update`` rows (a later article of a story
    edits or threads under its message), alerts that wait for corroboration (``waiting`` →
    ``pending`` or ``uncorroborated``), and one alert per (article, route) becomes a partial
    unique index, since a changed article may update a story it alerted."""
    await tx.script("""
        ALTER TABLE articles ADD COLUMN story_id TEXT;
        CREATE INDEX articles_story ON articles(story_id, sort_at) WHERE story_id IS NOT NULL;
        CREATE TABLE outbox_v6 (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL DEFAULT 'alert' CHECK (kind IN ('alert', 'notice', 'update')),
            article_id TEXT REFERENCES articles(id) ON DELETE CASCADE,
            route TEXT NOT NULL,
            rules TEXT NOT NULL DEFAULT '[]',
            text TEXT,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            nonce TEXT NOT NULL,
            next_attempt_at TEXT,
            remote_id TEXT,
            reason TEXT,
            maybe_sent INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            story_id TEXT,
            severity TEXT,
            min_sources INTEGER NOT NULL DEFAULT 1,
            escalated_from TEXT,
            changed INTEGER NOT NULL DEFAULT 0,
            CHECK ((kind = 'notice') = (article_id IS NULL))
        );
        INSERT INTO outbox_v6 (id, kind, article_id, route, rules, text, state, attempts, nonce,
                               next_attempt_at, remote_id, reason, maybe_sent, created_at,
                               updated_at)
            SELECT id, kind, article_id, route, rules, text, state, attempts, nonce,
                   next_attempt_at, remote_id, reason, maybe_sent, created_at, updated_at
            FROM outbox;
        DROP TABLE outbox;
        ALTER TABLE outbox_v6 RENAME TO outbox;
        CREATE UNIQUE INDEX outbox_alert_once ON outbox(article_id, route) WHERE kind = 'alert';
        CREATE INDEX outbox_due ON outbox(state, next_attempt_at, id);
        CREATE INDEX outbox_route ON outbox(route, state, id);
        CREATE INDEX outbox_waiting ON outbox(route, id) WHERE state IN ('pending', 'retry');
        CREATE INDEX outbox_story ON outbox(story_id, route) WHERE story_id IS NOT NULL;
        CREATE INDEX outbox_corroborating ON outbox(created_at) WHERE state = 'waiting';
        CREATE TABLE stories (
            id TEXT PRIMARY KEY,
            headline TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            updated_at TEXT,
            signature TEXT NOT NULL,
            articles INTEGER NOT NULL DEFAULT 0,
            outlets TEXT NOT NULL DEFAULT '[]'
        );
        CREATE INDEX stories_last ON stories(last_seen);
        CREATE TABLE story_routes (
            story_id TEXT NOT NULL,
            route TEXT NOT NULL,
            message_id TEXT,
            thread_id TEXT,
            PRIMARY KEY (story_id, route)
        );
    """)


async def m7(tx: Tx, terms_of: TermsOf | None, path: str) -> None:
    """Quiet channels: an alert can wait ``scheduled`` for a digest (``scheduled_for``: when
    the digest that takes it is due), and is then linked to the digest row that carried it
    (``digest_id``); digests and surge alerts are outbox rows of their own kinds, so the kind
    is checked by the code rather than by a constraint that each new kind would rebuild; a
    rule's last surge alert is remembered for its cooldown."""
    await tx.script("""
        CREATE TABLE outbox_v7 (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL DEFAULT 'alert',
            article_id TEXT REFERENCES articles(id) ON DELETE CASCADE,
            route TEXT NOT NULL,
            rules TEXT NOT NULL DEFAULT '[]',
            text TEXT,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            nonce TEXT NOT NULL,
            next_attempt_at TEXT,
            remote_id TEXT,
            reason TEXT,
            maybe_sent INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            story_id TEXT,
            severity TEXT,
            min_sources INTEGER NOT NULL DEFAULT 1,
            escalated_from TEXT,
            changed INTEGER NOT NULL DEFAULT 0,
            digest_id INTEGER,
            scheduled_for TEXT,
            CHECK ((kind IN ('alert', 'update')) = (article_id IS NOT NULL))
        );
        INSERT INTO outbox_v7 (id, kind, article_id, route, rules, text, state, attempts, nonce,
                               next_attempt_at, remote_id, reason, maybe_sent, created_at,
                               updated_at, story_id, severity, min_sources, escalated_from,
                               changed)
            SELECT id, kind, article_id, route, rules, text, state, attempts, nonce,
                   next_attempt_at, remote_id, reason, maybe_sent, created_at, updated_at,
                   story_id, severity, min_sources, escalated_from, changed
            FROM outbox;
        DROP TABLE outbox;
        ALTER TABLE outbox_v7 RENAME TO outbox;
        CREATE UNIQUE INDEX outbox_alert_once ON outbox(article_id, route) WHERE kind = 'alert';
        CREATE INDEX outbox_due ON outbox(state, next_attempt_at, id);
        CREATE INDEX outbox_route ON outbox(route, state, id);
        CREATE INDEX outbox_waiting ON outbox(route, id) WHERE state IN ('pending', 'retry');
        CREATE INDEX outbox_story ON outbox(story_id, route) WHERE story_id IS NOT NULL;
        CREATE INDEX outbox_corroborating ON outbox(created_at) WHERE state = 'waiting';
        CREATE INDEX outbox_scheduled ON outbox(route, scheduled_for) WHERE state = 'scheduled';
        CREATE INDEX outbox_digest ON outbox(digest_id) WHERE digest_id IS NOT NULL;
        CREATE INDEX outbox_sent ON outbox(route, updated_at) WHERE state = 'delivered';
        CREATE TABLE surges (
            rule TEXT PRIMARY KEY,
            last_at TEXT NOT NULL
        );
    """)


async def m8(tx: Tx, terms_of: TermsOf | None, path: str) -> None:
    """Acknowledgement: who acknowledged an alert (one row per alert: the first click wins),
    who found it not relevant (once per person), and the one escalation of an unacknowledged
    alert (the notice it wrote); alerts are counted per rule over recent days by creation."""
    await tx.script("""
        CREATE INDEX outbox_alerts_created ON outbox(created_at) WHERE kind = 'alert';
        CREATE TABLE acks (
            alert_id INTEGER PRIMARY KEY REFERENCES outbox(id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL,
            at TEXT NOT NULL
        );
        CREATE TABLE not_relevant (
            alert_id INTEGER NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (alert_id, user_id)
        );
        CREATE TABLE escalations (
            alert_id INTEGER PRIMARY KEY REFERENCES outbox(id) ON DELETE CASCADE,
            notice_id INTEGER NOT NULL,
            at TEXT NOT NULL
        );
    """)


async def m9(tx: Tx, terms_of: TermsOf | None, path: str) -> None:
    """Per-server tenancy: a stored rule or source belongs to a server (``guild_id``; NULL: to
    every server, as every row before) and its ``name`` column holds its key — the name for
    NULL, ``"<guild id>:<name>"`` for a server's — so two servers can each keep one of the same
    name. Existing rows keep their name as their key: nothing changes for them."""
    await tx.script("""
        ALTER TABLE rules ADD COLUMN guild_id INTEGER;
        ALTER TABLE sources ADD COLUMN guild_id INTEGER;
    """)


async def m10(tx: Tx, terms_of: TermsOf | None, path: str) -> None:
    """Routes servers pick in Discord (a channel of theirs), keyed ``"<guild id>:<name>"``,
    stored like rules and sources."""
    await tx.script("""
        CREATE TABLE routes (
            name TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            created_at TEXT NOT NULL,
            guild_id INTEGER
        );
    """)


async def m11(tx: Tx, terms_of: TermsOf | None, path: str) -> None:
    """The list of every word the lookup index holds (``index_words``), so a fuzzy lookup asks
    the index for the words its term matches instead of reading every article; the view's
    trigger lists the words of every row inserted through it from now on.

    Filled from the stored articles' terms, computed again a chunk at a time (the index keeps
    no text of its own). Opened without ``terms_of`` (tools, tests), the list is read back from
    the index's own tokens instead, which split a word at a dot or underscore ("1.5" is "1" and
    "5"): every article stays findable by those tokens, but a fuzzy term that matches only such
    a whole word may miss it until it is stored again."""
    await tx.script(INDEX_WORDS + """
        DROP TRIGGER article_terms_insert;
        DROP VIEW article_terms;
    """)
    await tx.script(ARTICLE_TERMS)
    if terms_of is None:
        await tx.script("""
            CREATE VIRTUAL TABLE temp.index_words_v10 USING fts5vocab(main, article_index, row);
            INSERT OR IGNORE INTO index_words (word) SELECT term FROM temp.index_words_v10;
            DROP TABLE temp.index_words_v10;
        """)
        return
    (stored,) = await tx.fetchone("SELECT count(*) FROM articles")
    if stored:
        # A large store takes minutes (about 200 µs an article): say so, and how far it got.
        log.info("%s: listing the lookup index's words of %d stored articles (schema 11, for "
                 "fuzzy, prefix and regex lookups)", path, stored)
    after = done = 0
    said = time.monotonic()
    while True:
        rows = await tx.fetchall("SELECT rowid, title, text FROM articles WHERE rowid > ? "
                                 "ORDER BY rowid LIMIT 5000", (after,))
        if not rows:
            break
        after = rows[-1][0]
        terms = [terms_of(title, text) for _, title, text in rows]
        await tx.run(partial(add_index_words, terms=terms))
        done += len(rows)
        if time.monotonic() - said >= 10:
            said = time.monotonic()
            log.info("%s: listed the words of %d of %d articles", path, done, stored)
    if stored:
        log.info("%s: listed the words of %d articles", path, done)


# Links per chunk of the URL index's fill (migration 12).
URL_CHUNK = 20_000


async def m12(tx: Tx, terms_of: TermsOf | None, path: str) -> None:
    """The URL index (``article_urls``): the words of each article's link, so a lookup's
    ``url:`` terms narrow it. Filled from the stored links in key order (each FTS5 segment
    then written once), a chunk at a time, logging how far it got; in one transaction with the
    version bump, so an interrupted fill leaves version 11 and the next writer starts it over.
    A link's words are ``terms_of(link, "")``: the engine's own words of a text, which are
    what :func:`watchers.rules.lookup.url_terms` gives (the store does not know the rule
    language); a store holding links needs it, as migration 3 does."""
    await tx.script(ARTICLE_URLS)
    if await tx.fetchone("SELECT 1 FROM articles WHERE url IS NOT NULL LIMIT 1") is None:
        return
    if terms_of is None:
        # Without the engine's words the links cannot be indexed: the index is marked
        # incomplete, and url: lookups read as they did before it (see link_terms).
        log.warning("%s: upgraded without the engine's words of a text: its links are not "
                    "indexed, and url: lookups read it without narrowing", path)
        await tx.execute(MARK_URL_GAP, (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),))
        return
    (stored,) = await tx.fetchone("SELECT count(*) FROM articles")
    log.info("%s: indexing the links of %d stored articles (schema 12, for url: lookups)",
             path, stored)
    done = await tx.run(partial(_fill_urls, terms_of=terms_of, path=path, stored=stored))
    log.info("%s: indexed the links of %d articles", path, done)


async def m13(tx: Tx, terms_of: TermsOf | None, path: str) -> None:
    """The servers the bot was removed from (``departed_servers``): none yet."""
    await tx.script(DEPARTED)


async def m14(tx: Tx, terms_of: TermsOf | None, path: str) -> None:
    """The index of the followed feeds' plain content hashes (``articles_feed_copies``), by
    which a followed feed's copy of another followed feed's article is known to be one. Built
    over the stored articles once (a read of every row's source)."""
    await tx.script(FEED_COPIES)
    (copies,) = await tx.fetchone(f"SELECT count(*) FROM articles WHERE {FEED_COPY_WHERE}")
    if copies:
        log.info("%s: indexed the content of %d followed feeds' articles (schema 14)", path,
                 copies)


async def m15(tx: Tx, terms_of: TermsOf | None, path: str) -> None:
    """The keys version of the lookup indexes (``index_keys``): those of a store written before
    it are version 1, which the next open with the engine's words rebuilds (see rekey)."""
    await tx.script(INDEX_KEYS + "INSERT INTO index_keys (one, version) VALUES (1, 1);")


# Version 16: the outlet each source of a story reported as (``stories.source_outlets``, a JSON
# object: source key → outlet), which corroboration counts (see OutletCount).
SOURCE_OUTLETS = "ALTER TABLE stories ADD COLUMN source_outlets TEXT NOT NULL DEFAULT '{}';"


async def m16(tx: Tx, terms_of: TermsOf | None, path: str) -> None:
    """Each story keeps the outlet its sources reported as. The stored stories' sources keep
    none (``{}``): the store does not know the config file's outlets when it is upgraded (the
    engine tells them once it is open), so those are counted as before, by the outlets the
    running config gives their names; each source that reports in the story from now on is
    kept with its outlet. Adds a column, instant, rows unchanged."""
    await tx.script(SOURCE_OUTLETS)


async def m17(tx: Tx, terms_of: TermsOf | None, path: str) -> None:
    """The places index (``article_places``): each article's words where they stand, which
    phrases, NEAR and field terms read. Created empty; when articles are stored it is marked
    incomplete, lookups read the lookup index alone until then, and the next open of a writer
    with the engine's words rebuilds the indexes with it (see rekey), in chunks, resumable,
    beside the indexes lookups read."""
    await tx.script(ARTICLE_PLACES + "DROP TRIGGER article_terms_insert;\n"
                    "DROP VIEW article_terms;\n" + ARTICLE_TERMS_17)
    if await tx.fetchone("SELECT 1 FROM articles LIMIT 1") is not None:
        await tx.execute(MARK_PLACES_GAP)
        log.info("%s: the places index (schema 17) is filled by the next rebuild of the "
                 "lookup indexes", path)


# Version 18: a match of a run-time rule removed (or whose name a new rule took) is retired:
# kept for its article, counted for no rule (see RuntimeModels.delete_rule).
RETIRED_MATCHES = "ALTER TABLE matches ADD COLUMN retired INTEGER NOT NULL DEFAULT 0;"


async def m18(tx: Tx, terms_of: TermsOf | None, path: str) -> None:
    """Matches can be retired (``matches.retired``), so that a rule added again under a removed
    one's name does not take its matches for its own. The stored ones stay current: which of
    them an earlier rule of the same name made is not known (a rule's ``created_at`` is reset
    by every change of it, and a match's time by an import is its article's). Adds a column,
    instant, rows unchanged."""
    await tx.script(RETIRED_MATCHES)


def _fill_urls(conn: sqlite3.Connection, terms_of: TermsOf, path: str, stored: int) -> int:
    # On the connection's thread: one read in key order (SQLite sorts the keys and links),
    # the words of a chunk, one insert of the chunk.
    cur = conn.execute(f"SELECT {INDEX_KEY_SQL}, a.url FROM articles a "
                       "WHERE a.url IS NOT NULL ORDER BY 1")
    insert = "INSERT INTO article_urls (rowid, terms) VALUES (?, ?)"
    done = 0
    said = time.monotonic()
    while chunk := cur.fetchmany(URL_CHUNK):
        conn.executemany(insert, [(key, terms) for key, url in chunk
                                  if url and (terms := terms_of(url, ""))])
        done += len(chunk)
        if time.monotonic() - said >= 5:
            said = time.monotonic()
            log.info("%s: indexed the links of %d of %d articles", path, done, stored)
    return done


Migration = Callable[[Tx, "TermsOf | None", str], Awaitable[None]]
MIGRATIONS: dict[int, Migration] = {
    2: m2, 3: m3, 4: m4, 5: m5, 6: m6, 7: m7, 8: m8, 9: m9, 10: m10, 11: m11, 12: m12, 13: m13,
    14: m14, 15: m15, 16: m16, 17: m17, 18: m18,
}


async def _header(db: Db) -> tuple[int, int, int]:
    rows = await db.fetchall(
        "SELECT (SELECT application_id FROM pragma_application_id), "
        "(SELECT user_version FROM pragma_user_version), "
        "(SELECT count(*) FROM sqlite_master)"
    )
    app, version, objects = rows[0]
    return int(app), int(version), int(objects)


# The plain tables a newswatch database of each version holds, by the version that made each
# (and the one that dropped it): what an unmarked file (application id 0, as versions before 4
# left theirs) of that version must hold to be taken for newswatch's.
_TABLES_MADE: dict[str, tuple[int, int | None]] = {
    "articles": (1, None), "matches": (1, None), "outbox": (1, None),
    "source_state": (1, None), "mutes": (1, None), "user_rules": (1, 4), "user_sources": (1, 4),
    "route_pauses": (2, None), "rules": (4, None), "sources": (4, None), "stories": (6, None),
    "story_routes": (6, None), "surges": (7, None), "acks": (8, None),
    "not_relevant": (8, None), "escalations": (8, None), "routes": (10, None),
    "index_words": (11, None), "departed_servers": (13, None), "index_keys": (15, None),
}
# Every other table newswatch has made (the lookup indexes, with the tables FTS5 keeps for
# each, and what a rebuild fills beside them): not "other tables" of another program.
_OWN_TABLES = frozenset(_TABLES_MADE) | {URLS_INCOMPLETE, PLACES_INCOMPLETE, PLACES_INEXACT,
                                         "index_words_new",
                                         "outbox_v4", "outbox_v6", "outbox_v7"}
_OWN_INDEXES = ("articles_fts", "article_terms", "article_index", "article_urls",
                "article_index_new", "article_urls_new", "article_places",
                "article_places_new")


def _ours(table: str) -> bool:
    return (table in _OWN_TABLES or table.startswith("sqlite_")
            or any(table == fts or table.startswith(f"{fts}_") for fts in _OWN_INDEXES))


async def _check_unmarked(db: Db, version: int) -> None:
    """Refuse a file with no application id whose user version is one of newswatch's but
    whose tables are not that version's: another program's file (it failed as "no such table:
    articles" once newswatch had switched it to WAL, and check said ok)."""
    present = {str(r[0]) for r in await db.fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    needed = {t for t, (made, dropped) in _TABLES_MADE.items()
              if made <= version and (dropped is None or version < dropped)}
    if needed <= present:
        return
    other = sorted(t for t in present if not _ours(t))
    if other:
        raise StoreError(f"{db.path} is not a newswatch database (it holds other tables: "
                         f"{', '.join(other)})")
    raise StoreError(f"{db.path} is not a newswatch database (user version {version}, without "
                     f"newswatch's tables of that version: {', '.join(sorted(needed - present))})")


async def check(db: Db, *, readonly: bool) -> int:
    """The schema version of a database newswatch may open, or StoreError; changes nothing."""
    app, version, objects = await _header(db)
    if app == COPYING_APPLICATION_ID:
        raise StoreError(f"{db.path} holds an incomplete copy (`newswatch copy` did not finish, "
                         "or is still under way): once no copy runs, delete it and copy again")
    if app not in (0, APPLICATION_ID):
        raise StoreError(f"{db.path} is not a newswatch database (application id {app:#x})")
    if version == 0 and objects:
        raise StoreError(f"{db.path} is not a newswatch database (it holds other tables)")
    if version < 0:  # no newswatch writes one: another program's file, or a damaged header
        raise StoreError(f"{db.path} is not a newswatch database (user version {version})")
    if version > SCHEMA_VERSION and app != APPLICATION_ID:
        # Every newswatch that wrote a schema this new stamped its application id.
        raise StoreError(f"{db.path} is not a newswatch database (user version {version}, no "
                         "newswatch application id)")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{db.path} has schema version {version}, newer than this newswatch "
            f"({SCHEMA_VERSION}); upgrade newswatch"
        )
    if app == 0 and version > 0:
        await _check_unmarked(db, version)
    if readonly and version == 0:
        raise StoreEmptyError(f"{db.path} is an empty database, not a newswatch one yet")
    if readonly and version < SCHEMA_VERSION:
        raise StoreError(
            f"{db.path} has schema version {version}; open it once with a command that "
            f"writes (e.g. run) to upgrade it to {SCHEMA_VERSION}"
        )
    return version


async def upgrade(db: Db, version: int, *, terms_of: TermsOf | None) -> int:
    """Bring a database at ``version`` (0: new) to ``SCHEMA_VERSION``; the version it was at
    when the first step read it under the write lock (``version`` when there was nothing to
    do): another process may have created or upgraded it since ``version`` was read."""
    found: int | None = None
    for target in range(version + 1, SCHEMA_VERSION + 1):
        async with db.tx() as tx:
            # Read again under the write lock: another process may have moved it meanwhile.
            (current,) = await tx.fetchone("SELECT user_version FROM pragma_user_version")
            if found is None:
                found = int(current)
            if current >= target:
                continue
            if current == 0:
                await tx.script(FRESH)
                await _stamp(tx, SCHEMA_VERSION)
                return found
            await MIGRATIONS[target](tx, terms_of, db.path)
            await _stamp(tx, target)
    return version if found is None else found


async def _stamp(tx: Tx, version: int) -> None:
    await tx.execute(f"PRAGMA user_version={int(version)}")
    await tx.execute(f"PRAGMA application_id={APPLICATION_ID}")


# Articles per transaction of a rebuild of the lookup indexes (see rekey).
REKEY_CHUNK = 5_000
# The rebuild's tables, filled beside the ones lookups read and swapped in at the end.
_REKEY_DROP = """
DROP TABLE IF EXISTS article_index_new;
DROP TABLE IF EXISTS article_urls_new;
DROP TABLE IF EXISTS index_words_new;
DROP TABLE IF EXISTS article_places_new;
"""
_REKEY_NEW = _REKEY_DROP + _PLACES_TABLE.format(name="article_places_new") + f"""
DELETE FROM {PLACES_INCOMPLETE} WHERE gap = 3;
CREATE VIRTUAL TABLE article_urls_new USING fts5(
    terms, content='', columnsize=0, tokenize="unicode61 remove_diacritics 0"
);
CREATE TABLE index_words_new (word TEXT PRIMARY KEY);
"""
# The word index is left empty (lookups read the places index from then on).
_REKEY_SWAP = f"""
DROP TRIGGER article_terms_insert;
DROP VIEW article_terms;
DROP TABLE article_index;
DROP TABLE article_urls;
DROP TABLE index_words;
CREATE VIRTUAL TABLE article_index USING fts5(
    terms, content='', tokenize="unicode61 remove_diacritics 0"
);
ALTER TABLE article_urls_new RENAME TO article_urls;
ALTER TABLE index_words_new RENAME TO index_words;
DROP TABLE article_places;
ALTER TABLE article_places_new RENAME TO article_places;
DELETE FROM {URLS_INCOMPLETE};
DELETE FROM {PLACES_INCOMPLETE};
DELETE FROM {PLACES_INEXACT};
""" + ARTICLE_TERMS_17


async def keys_version(db: Db) -> tuple[int, int | None]:
    """The keys version the store's lookup indexes hold (see :data:`INDEX_KEYS`), and the one
    a rebuild under way (or stopped part-way) builds them for, if any."""
    ((version, building),) = await db.fetchall("SELECT version, building FROM index_keys")
    return int(version), None if building is None else int(building)


async def rekey(db: Db, version: int, terms_of: TermsOf, places_of: PlacesOf | None = None
                ) -> bool:
    """Rebuild the lookup indexes (the FTS index of titles and texts, the URL index, the word
    list, the places index) with the engine's words ``terms_of`` and places ``places_of`` when
    they hold another keys ``version`` than the engine's, or (given ``places_of``) when the
    places index misses the articles stored before it; whether it rebuilt. Without
    ``places_of`` the rebuilt places index places each article by its words alone (see
    :data:`ARTICLE_PLACES`), and says so (the next writer with them rebuilds); the word index
    is left empty either way.

    New tables are filled beside the ones lookups read, :data:`REKEY_CHUNK` articles per
    transaction in rowid order, each transaction recording how far it got, and swapped in by the
    transaction that finds no article left: a rebuild interrupted anywhere (kill -9 included)
    leaves the old indexes whole, and the next open goes on from the last chunk committed.
    Nothing but the indexes is written; a large store logs how far it got."""
    async with db.tx() as tx:
        current, building, after = await tx.fetchone(
            "SELECT version, building, after FROM index_keys")
        gap = await tx.fetchone(f"SELECT 1 FROM {PLACES_INCOMPLETE}")
        if current == version and building is None and (gap is None or places_of is None):
            return False
        if await tx.fetchone("SELECT 1 FROM articles LIMIT 1") is None:
            # Nothing indexed: the empty indexes hold any version's keys.
            await tx.script(_REKEY_DROP)
            await tx.execute(f"DELETE FROM {PLACES_INCOMPLETE}")
            await tx.execute("UPDATE index_keys SET version = ?, building = NULL, after = 0",
                             (version,))
            return False
        if building != version:
            await tx.script(_REKEY_NEW)
            await tx.execute("UPDATE index_keys SET building = ?, after = 0", (version,))
            after = 0
        (stored,) = await tx.fetchone("SELECT count(*) FROM articles")
        (done,) = await tx.fetchone("SELECT count(*) FROM articles WHERE rowid <= ?", (after,))
    why = (f"for the word keys of version {version} (they hold version {current})"
           if current != version else "to fill the places index")
    log.info("%s: rebuilding the lookup indexes of %d stored articles %s%s", db.path, stored,
             why, f", going on after {done}" if done else "")
    said = time.monotonic()
    while True:
        async with db.tx() as tx:
            indexed = await tx.run(partial(_rekey_chunk, after=after, terms_of=terms_of,
                                           places_of=places_of))
            if not indexed:
                unsure = await tx.fetchone(f"SELECT 1 FROM {PLACES_INCOMPLETE} WHERE gap = 3")
                await tx.script(_REKEY_SWAP)
                if places_of is None or unsure is not None:
                    await tx.execute(MARK_WORDS_ONLY)
                await tx.execute(
                    "UPDATE index_keys SET version = ?, building = NULL, after = 0", (version,))
                break
            after, n = indexed
        done += n
        if time.monotonic() - said >= 5:
            said = time.monotonic()
            log.info("%s: indexed %d of %d articles", db.path, done, stored)
    log.info("%s: rebuilt the lookup indexes of %d articles", db.path, done)
    return True


def _rekey_chunk(conn: sqlite3.Connection, after: int, terms_of: TermsOf,
                 places_of: PlacesOf | None = None) -> tuple[int, int] | None:
    """Index the next chunk of articles after rowid ``after`` into the new tables, and record
    how far it got; (its last rowid, its size), or None when none is left."""
    rows = conn.execute(f"SELECT a.rowid, {INDEX_KEY_SQL}, a.title, a.text, a.url FROM articles a "
                        "WHERE a.rowid > ? ORDER BY a.rowid LIMIT ?",
                        (after, REKEY_CHUNK)).fetchall()
    if not rows:
        return None
    keyed = [(key, title, text, terms_of(title, text)) for _, key, title, text, _ in rows]
    # (a rebuild without the engine's places places each article by its words, and says so)
    if places_of is None:
        conn.execute(MARK_REBUILD_UNSURE)
    conn.executemany(_INSERT_PLACES.format(table="article_places_new"), sorted(
        (key, *(places_of(title, text) if places_of is not None else words_placed(terms)))
        for key, title, text, terms in keyed))
    conn.executemany("INSERT INTO article_urls_new (rowid, terms) VALUES (?, ?)",
                     sorted((key, terms) for _, key, _, _, url in rows
                            if url and (terms := terms_of(url, ""))))
    words = sorted(set(" ".join(terms for *_, terms in keyed).split()))
    conn.execute("INSERT OR IGNORE INTO index_words_new (word) SELECT value FROM json_each(?)",
                 (json.dumps(words, ensure_ascii=False),))
    last = int(rows[-1][0])
    conn.execute("UPDATE index_keys SET after = ?", (last,))
    return last, len(rows)
