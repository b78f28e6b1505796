"""The 1,000,000-article benchmark store (``make scale``), built once and cached.

Articles are recombined from ``../shared/corpora/articles``: a title from any corpus (BBC, Reddit
headlines, scraped pages) with no text (a headline, as Reddit gives), half of one BBC body joined
to half of another, or a scraped page; dates spread over a year and about 300 source names, in
random order (a history import, not a live feed), each with an outlet-style link (host of its
source, section, slug of its title). Rows go in through the store's own schema and statements
(``articles``, ``article_terms`` and :func:`~watchers.store.sqlite.schema.index_urls`) with the
index terms the engine computes
(:func:`watchers.rules.lookup.index_terms`); the terms of a recombined article are the union of
its parts' terms, which is what ``index_terms`` gives for the whole because tokens never span
the paragraph break that joins the parts.

Recombined, the corpora hold the words of about 20,000 articles: 45,000 distinct words at a
million articles, where a year of real news has well over a million (the names of people,
places and firms, numbers, foreign words, misspellings: Heaps' law, K≈40 and β≈0.55 over some
4×10⁸ tokens, gives about two million). A list that short flattered every lookup that goes
through the index's word list (fuzzy terms, prefixes, regexes) and the memory it takes. So
each article also names a few people or places: two words in its title (after an em dash),
four more in its text when it has one, coined by a model of the corpora's own spelling (a
chain over letter triples) and reused as news reuses names, a Yule–Simon process: a name is
new with probability :data:`NEW_NAME` and otherwise an earlier mention's, so a few are in
thousands of articles and most in one or two. At a million articles that adds about a million
words; :data:`WORDS` = 0 builds the store without them.

The file is cached under ``/tmp/newswatch-bench/`` per schema version, so reruns are fast. When
only an older version is cached, a copy of the newest older one is upgraded by the store's own
migrations (opened once for writing) instead of being rebuilt: the same articles, the current
schema, in a fraction of the time.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import shutil
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path

from watchers.rules.lookup import index_terms, lookup_terms, places_of, url_terms
from watchers.rules.text import KEYS_VERSION
from watchers.store import SqliteStore
from watchers.store.sqlite.schema import SCHEMA_VERSION, index_articles
from watchers.urls import normalise_link

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT.parent / "shared" / "corpora" / "articles"
CACHE = Path("/tmp/newswatch-bench")
SOURCES = 300
BATCH = 50_000
# Coined names (see the module's docstring): how likely a mention is a new name, and the
# version of the scheme, part of the cached file's name (0: no names, the store before them).
NEW_NAME = 0.25
WORDS = 1


# The outlets' hosts: a few real ones (source 0 is the BBC), the rest made-up names (each in up to
# three top-level domains), so that url: words range from rare (an outlet's name) to common (a
# section, a top-level domain).
_OUTLETS = ["www.bbc.co.uk", "www.reuters.com", "apnews.com", "www.aljazeera.com",
            "www.theguardian.com", "kyivindependent.com", "www.nytimes.com", "edition.cnn.com",
            "www.dw.com", "www.france24.com", "www.euronews.com", "www.politico.eu"]
_PLACES = ["daily", "morning", "evening", "city", "valley", "coast", "north", "south", "east",
           "west"]
_TITLES = ["herald", "times", "post", "gazette", "tribune", "courier", "observer", "journal",
           "star", "record"]
_TLDS = ["com", "co.uk", "net"]
_SECTIONS = ["news", "world", "business", "politics", "sport", "news/world", "news/uk",
             "articles", "story", "live"]


def host(source: int) -> str:
    """The host name of source number ``source`` (0 ≤ source < SOURCES)."""
    if source < len(_OUTLETS):
        return _OUTLETS[source]
    k = source - len(_OUTLETS)
    place, name = _PLACES[k % 10], _TITLES[k // 10 % 10]
    return f"www.{place}{name}.{_TLDS[k // 100 % 3]}"


def article_url(source: int, title: str, i: int) -> str:
    """An outlet-style URL: host, section, a slug of the title's first words and a number."""
    slug = "-".join(re.findall(r"\w+", title.lower())[:8]) or "article"
    return f"https://{host(source)}/{_SECTIONS[i % len(_SECTIONS)]}/{slug}-{i}"


def _load() -> tuple[list[str], list[str], list[str]]:
    titles: list[str] = []
    bodies: list[str] = []
    pages: list[str] = []
    for path in sorted(CORPORA.glob("*.jsonl")):
        with path.open(encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                if d.get("title"):
                    titles.append(d["title"])
                text = d.get("text") or ""
                if path.name.startswith("bbc") and text:
                    bodies.append(text)
                elif text:
                    pages.append(text)
    return titles, bodies, pages


def _halves(text: str) -> tuple[str, str]:
    paras = [p for p in text.split("\n") if p.strip()]
    cut = max(1, len(paras) // 2)
    return "\n".join(paras[:cut]), "\n".join(paras[cut:])


class _Names:
    """Names coined in the corpora's spelling and mentioned as news mentions them (see the
    module's docstring): :meth:`mention` gives one name, new or an earlier mention's."""

    def __init__(self, words: set[str], rng: random.Random) -> None:
        self.rng = rng
        self.taken = set(words)
        follow: dict[str, dict[str, int]] = {}
        for w in words:
            if 4 <= len(w) <= 14 and w.isascii() and w.isalpha():
                chain = "^^" + w + "$"
                for i in range(len(chain) - 2):
                    nxt = follow.setdefault(chain[i:i + 2], {})
                    nxt[chain[i + 2]] = nxt.get(chain[i + 2], 0) + 1
        self.follow = {k: (list(v), list(accumulate(v.values()))) for k, v in follow.items()}
        self.mentions: list[str] = []

    def _coin(self) -> str:
        while True:
            word, pair = "", "^^"
            while len(word) <= 14:
                letters, weights = self.follow[pair]
                c = self.rng.choices(letters, cum_weights=weights)[0]
                if c == "$":
                    break
                word += c
                pair = pair[1] + c
            if 4 <= len(word) <= 14 and word not in self.taken:
                self.taken.add(word)
                return word

    def mention(self) -> str:
        if not self.mentions or self.rng.random() < NEW_NAME:
            name = self._coin()
        else:
            name = self.mentions[self.rng.randrange(len(self.mentions))]
        self.mentions.append(name)
        return name

    def line(self, k: int) -> str:
        return " ".join(self.mention().capitalize() for _ in range(k))


def store_path(n: int) -> Path:
    return CACHE / (f"{n}-v{SCHEMA_VERSION}.db" if not WORDS
                    else f"{n}-w{WORDS}-v{SCHEMA_VERSION}.db")


def _older(n: int) -> Path | None:
    """The cached store of ``n`` articles of the newest schema version before the current one."""
    found: list[tuple[int, Path]] = []
    kind = f"{n}-w{WORDS}-v" if WORDS else f"{n}-v"
    for candidate in CACHE.glob(f"{kind}*.db"):
        m = re.fullmatch(rf"{kind}(\d+)\.db", candidate.name)
        if m and int(m.group(1)) < SCHEMA_VERSION:
            found.append((int(m.group(1)), candidate))
    return max(found)[1] if found else None


def _upgrade(older: Path, path: Path) -> None:
    """``path`` as a copy of ``older`` brought to the current schema by the store's migrations.
    The copy is made under a temporary name and renamed only once upgraded, so an interrupted
    upgrade never leaves a current-version file behind."""
    started = time.perf_counter()
    tmp = path.with_suffix(".upgrading")
    for stale in CACHE.glob(tmp.name + "*"):
        stale.unlink()
    # A checkpointed store has an empty WAL; a non-empty one would hold committed rows.
    with sqlite3.connect(older) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    shutil.copyfile(older, tmp)
    copied = time.perf_counter() - started
    asyncio.run(_migrate(tmp))
    con = sqlite3.connect(tmp, isolation_level=None)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    for side in CACHE.glob(tmp.name + "-*"):  # -wal / -shm of the upgraded copy
        side.unlink()
    tmp.rename(path)
    print(f"  upgraded a copy of {older.name} to schema {SCHEMA_VERSION} in "
          f"{time.perf_counter() - started:.0f} s (copy {copied:.0f} s, migrations "
          f"{time.perf_counter() - started - copied:.0f} s): {path}")


async def _migrate(path: Path) -> None:
    # The terms the store was built with (lookup_terms equals index_terms, faster), needed to
    # upgrade a store older than the lookup index or its word list; with the engine's keys
    # version and places, the open rebuilds the indexes when an upgrade left the places index
    # to fill (schema 17), as the engine's first open would.
    await (await SqliteStore.open(path, lock=False, terms_of=lookup_terms,
                                  keys_version=KEYS_VERSION, places_of=places_of)).aclose()


def build(n: int, *, seed: int = 12) -> Path:
    """The cached store of ``n`` articles, building it first if needed (prints the time); when
    only an older schema version is cached, an upgraded copy of it."""
    path = store_path(n)
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    older = _older(n)
    if older is not None:
        _upgrade(older, path)
        return path
    tmp = path.with_suffix(".building")
    for stale in CACHE.glob(tmp.name + "*"):
        stale.unlink()
    started = time.perf_counter()
    asyncio.run(_create(tmp))
    titles, bodies, pages = _load()
    heads = [_halves(b)[0] for b in bodies]
    tails = [_halves(b)[1] for b in bodies]
    t_terms = [set(index_terms(t).split()) for t in titles]
    h_terms = [set(index_terms(t).split()) for t in heads]
    l_terms = [set(index_terms(t).split()) for t in tails]
    p_terms = [set(index_terms(t).split()) for t in pages]
    rng = random.Random(seed)
    names = None
    if WORDS:
        corpus_words = set().union(*t_terms, *h_terms, *l_terms, *p_terms)
        names = _Names(corpus_words, random.Random(seed + 1))
    start = datetime(2025, 1, 1, tzinfo=UTC)
    year = 365 * 24 * 3600
    con = sqlite3.connect(tmp, isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA journal_mode=WAL")
    fetched = "2026-01-01T00:00:00.000000Z"
    done = 0
    while done < n:
        rows = []
        terms = []
        rowid = con.execute("SELECT coalesce(max(rowid), 0) FROM articles").fetchone()[0]
        for i in range(done, min(n, done + BATCH)):
            rowid += 1
            ti = rng.randrange(len(titles))
            roll = rng.random()
            words = set(t_terms[ti])
            if roll < 0.5:
                text = ""
            elif roll < 0.97:
                a, b = rng.randrange(len(bodies)), rng.randrange(len(bodies))
                text = heads[a] + "\n\n" + tails[b]
                words |= h_terms[a] | l_terms[b]
            else:
                p = rng.randrange(len(pages))
                text = pages[p]
                words |= p_terms[p]
            title = titles[ti]
            if names is not None:
                # (the names' words, as the engine indexes them: index_terms of the added line)
                named = names.line(2)
                title = f"{title} — {named}"
                words |= set(index_terms(named).split())
                if text:
                    more = names.line(4)
                    text = f"{text}\n\n{more}."
                    words |= set(index_terms(more).split())
            when = start + timedelta(seconds=rng.randrange(year))
            iso = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            digest = hashlib.sha256(f"scale-{seed}-{i}".encode()).hexdigest()
            source = rng.randrange(SOURCES)
            url = article_url(source, titles[ti], i)
            rows.append((rowid, digest[:16], f"src-{source:03d}", f"g{i}", url,
                         normalise_link(url), title, text, iso, fetched, iso, digest))
            terms.append((rowid, " ".join(sorted(w for w in words if w)), url_terms(url),
                          places_of(title, text)))
        con.execute("BEGIN")
        con.executemany(
            "INSERT INTO articles (rowid, id, source, guid, url, link_key, title, text, "
            "published, fetched_at, sort_at, content_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            rows)
        index_articles(con, terms)
        con.execute("COMMIT")
        done += len(rows)
        print(f"\r  built {done:,}/{n:,} articles  {time.perf_counter() - started:6.0f} s",
              end="", flush=True)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("ANALYZE")
    con.close()
    tmp.rename(path)
    print(f"\n  store of {n:,} articles built in {time.perf_counter() - started:.0f} s: {path}")
    return path


async def _create(path: Path) -> None:
    # Opened empty with the engine's word keys version, which the store records as its
    # indexes' (opened without it, they were marked as of version 0, and every engine that
    # opened the built store, memory.py's and delivery_scale.py's, first rebuilt the lookup
    # indexes of its million articles).
    await (await SqliteStore.open(path, lock=False, terms_of=lookup_terms,
                                  keys_version=KEYS_VERSION)).aclose()
