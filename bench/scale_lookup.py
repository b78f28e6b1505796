"""Lookups over a 1,000,000-article store (``make scale``): figures are printed, never asserted.

What is measured: for each query kind of the language (limit 20), ``--per-kind`` distinct
queries (24 by default) drawn from the corpus the store is made of, a third from each band of
word frequency (rare: in a handful of the corpus's articles; mid; common: among the few hundred
most frequent words after the function words), every word one the store's own word list holds,
written in the kind's syntax (``a NEAR/5 b`` of two words five or fewer apart in one article,
``gover*`` the start of a word, ``sanctoins~`` a typo of one, ...). Each query is timed once,
and no query is run before its timing, so no figure is of a repeated (warm) query: the p50 and
p95 printed are over those distinct first runs. What the process has cached from other queries
(the index's word list, pages of the file another query read) stays, as in a running service.
Four disjoint sets of queries are drawn per kind, one per column:

- nw p50 / p95: newswatch's ``search``, newest first;
- best p95: the same, in best order;
- raw FTS5: raw SQLite FTS5 on the same file (the index query alone, newest first, no
  confirmation: a floor, not an equivalent);
- tantivy: tantivy over the same articles when the ``tantivy`` package is installed (its index
  is built once under ``/tmp/newswatch-bench``), on the same queries as the nw columns, built
  with its query API to do the same work: a prefix is a regex over each field's words, ``NEAR/n``
  two sloppy phrases (one per order, at most n-1 words between: the same window), a phrase a
  phrase in the title or the text. Its words are as its default tokenizer leaves them, lower
  case: no singular for a plural, no aliases, no compounds written apart, as newswatch's have,
  so a word query of tantivy's may find fewer articles (on 5,000 articles ``campaigns`` found
  34 where newswatch found 376 with "campaign"): its cells do less work there, not more. Kinds
  it has no equivalent for are "—" with the reason (its
  fuzzy term query is edit distance alone, not newswatch's transliterations, declensions and
  refusals; its regex query matches one word, not the raw text; its index has no link field);
  a tantivy query that fails is its cell's "—" with the reason printed, never the run's end.

``--repeat N`` (off by default) also runs every nw query N more times after its timing and
prints their p50 apart, labelled warm. Then the wall time of ``newswatch search`` as a
subprocess (p50 of 5) on the same store.

Results are saved by label (``--label before``/``after``) under ``/tmp/newswatch-bench``, and
every saved label is printed side by side, so one run on the old code and one on the new show
the change. The store is built once (:mod:`scale_store`) and cached.

Run from the repo root: ``python bench/scale_lookup.py [--articles N] [--label L]
[--per-kind N] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wordfreq import zipf_frequency

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import scale_store

from watchers.rules import parse, shipped_aliases
from watchers.rules.lookup import index_query, places_query
from watchers.search import search
from watchers.store import SqliteStore

LIMIT = 20
PER_KIND = 24
BANDS = ("rare", "mid", "common")
KINDS = ("word (rare)", "word (mid)", "word (common)", "phrase", "AND", "OR", "NOT", "prefix",
         "fuzzy", "field", "NEAR", "regex", "url:", "url: AND word")
# The columns' disjoint sets of queries of each kind (tantivy runs the nw ones).
SETS = ("newest", "best", "raw")
# What tantivy has no equivalent for: its cell is "—" and the reason is printed.
TANTIVY_CANNOT = {
    "fuzzy": "its fuzzy term query is edit distance alone, not newswatch's transliterations, "
             "declensions and refusals of common words",
    "regex": "its regex query matches one indexed word, not the raw text",
    "url:": "its index has no link field",
    "url: AND word": "its index has no link field",
}
# The queries run before the timed ones (see time_newswatch): never drawn.
_WARMUPS = {"warmup", "ukraine~", "ukrain*", "/ukrain/"}
# English words at least this frequent (Zipf scale: "through" 5.9, "government" 5.6) are
# function words, never drawn.
_FUNCTION_ZIPF = 5.6
_RESERVED = {"and", "or", "not", "near", "url", "title", "text"}
_WORD = re.compile(r"[a-z]+")

# A tantivy query, as data: ("words", [w]) a word in the title or the text, ("title", w),
# ("phrase", [a, b]), ("prefix", p), ("near", a, b, n), ("and"|"or"|"not", left, right).
Plan = tuple[Any, ...]


@dataclass(frozen=True)
class Query:
    text: str  # newswatch's query
    band: str  # the band of frequency its words were drawn from
    plan: Plan | None  # the same query for tantivy, None where it has none


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class _Corpus:
    """The corpus the store is recombined from, tokenised, with each word's and each adjacent
    pair's number of articles, and the store's word list to check a word is one of it."""

    def __init__(self, path: Path, rng: random.Random) -> None:
        titles, bodies, pages = scale_store._load()
        self.rng = rng
        self.docs = [_WORD.findall(t.lower()) for t in titles + bodies + pages]
        self.titles = [_WORD.findall(t.lower()) for t in titles]
        df: Counter[str] = Counter()
        pairs: Counter[tuple[str, str]] = Counter()
        for doc in self.docs:
            df.update(set(doc))
        self.title_df: Counter[str] = Counter()
        for doc in self.titles:
            self.title_df.update(set(doc))
            pairs.update(set(itertools.pairwise(doc)))
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            def known(word: str) -> bool:
                return con.execute("SELECT 1 FROM index_words WHERE word = ?",
                                   (word,)).fetchone() is not None

            ranked = _ranked(df)
            # The function words (the, then, through: no rule is written with them) and the
            # operators and field names are never drawn.
            self.skip = {w for w in ranked[:2_000] if zipf_frequency(w, "en") >= _FUNCTION_ZIPF}
            self.skip |= _RESERVED
            content = [w for w in ranked if len(w) >= 4 and w not in self.skip]
            self.bands = {
                "common": [w for w in content[:500] if known(w)],
                "mid": [w for w in content[2_000:6_000] if known(w)],
                "rare": [w for w in content if 2 <= df[w] <= 4 and len(w) >= 5][:20_000],
            }
            self.bands["rare"] = [w for w in rng.sample(self.bands["rare"],
                                                        min(3_000, len(self.bands["rare"])))
                                  if known(w)]
            self.band_of = {w: b for b, ws in self.bands.items() for w in ws}
            titled = [w for w in _ranked(self.title_df)
                      if w not in self.skip and len(w) >= 4]
            self.title_bands = {
                "common": [w for w in titled[:500] if known(w)],
                "mid": [w for w in titled[2_000:5_000] if known(w)],
                "rare": [w for w in titled if self.title_df[w] == 2][:3_000],
            }
            self.title_bands["rare"] = [w for w in self.title_bands["rare"] if known(w)]
            both = [p for p in _ranked(pairs)
                    if p[0] not in self.skip and p[1] not in self.skip
                    and min(len(p[0]), len(p[1])) >= 3]
            self.pair_bands = {
                "common": both[:400],
                "mid": both[1_500:5_000],
                "rare": [p for p in both if pairs[p] == 2][:5_000],
            }
            outlets = sorted({w for s in range(scale_store.SOURCES)
                              for w in re.findall(r"[a-z0-9]+", scale_store.host(s))}
                             - {"www", "com", "co", "uk", "net", "eu"})
            # An outlet's name is in the links of one source of about 300 (rare); a link's
            # slug holds its title's first words (mid, common), and the sections and top-level
            # domains are in many links (common): the url: kind's bands.
            self.url_bands = {
                "rare": outlets, "mid": self.title_bands["mid"],
                "common": ["com", "net", "news", "world", "business", "politics", "sport", "uk",
                           "live", *self.title_bands["common"]]}
        finally:
            con.close()

    def word(self, band: str) -> str:
        return self.rng.choice(self.bands[band])

    def doc_with(self, band: str) -> tuple[list[str], int]:
        """An article holding a word of ``band`` with at least one other content word, and
        that word's position."""
        while True:
            doc = self.rng.choice(self.docs)
            at = [i for i, w in enumerate(doc) if self.band_of.get(w) == band]
            if at and len({w for w in doc if w in self.band_of}) > 1:
                return doc, self.rng.choice(at)

    def other(self, doc: list[str], word: str, near: tuple[int, int] | None = None) -> str:
        """Another content word of ``doc`` (within the positions ``near`` when given)."""
        lo, hi = near or (0, len(doc))
        pool = [w for w in doc[max(0, lo):hi] if w in self.band_of and w != word]
        return self.rng.choice(pool) if pool else self.word("common")


def _ranked(counts: Counter[Any]) -> list[Any]:
    """The keys of ``counts``, most frequent first, ties in sorted order: the same order in
    every process. (``most_common`` leaves ties in the order they were counted, here from
    sets, whose order changes with each process's string hashing: each run drew other
    queries, and two runs' figures were two samples.)"""
    return sorted(counts, key=lambda k: (-counts[k], k))


def _typo(word: str, rng: random.Random) -> str:
    """``word`` with two inner letters swapped (sanctions -> sanctoins) or one left out."""
    i = rng.randrange(1, len(word) - 2)
    if rng.random() < 0.5 and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return word[:i] + word[i + 1:]


def _draw(kind: str, band: str, c: _Corpus) -> Query:
    rng = c.rng
    if kind.startswith("word"):
        w = c.word(kind[6:-1])
        return Query(w, band, ("words", w))
    if kind == "phrase":
        a, b = rng.choice(c.pair_bands[band])
        return Query(f'"{a} {b}"', band, ("phrase", [a, b]))
    if kind in ("AND", "NOT"):
        doc, i = c.doc_with(band)
        a, b = doc[i], c.other(doc, doc[i])
        op = kind.lower()
        return Query(f"{a} {kind} {b}", band, (op, ("words", a), ("words", b)))
    if kind == "OR":
        a, b = c.word(band), c.word(rng.choice(BANDS))
        return Query(f"{a} OR {b}", band, ("or", ("words", a), ("words", b)))
    if kind == "prefix":
        w = next(w for w in iter(lambda: c.word(band), None) if len(w) >= 6)
        p = w[:rng.randint(4, min(6, len(w) - 1))]
        return Query(f"{p}*", band, ("prefix", p))
    if kind == "fuzzy":
        w = next(w for w in iter(lambda: c.word(band), None) if len(w) >= 6)
        return Query(f"{_typo(w, rng)}~", band, None)
    if kind == "field":
        w = rng.choice(c.title_bands[band])
        return Query(f"title:{w}", band, ("title", w))
    if kind == "NEAR":
        n = rng.choice((3, 5, 10))
        doc, i = c.doc_with(band)
        a = doc[i]
        b = c.other(doc, a, (i - n, i + n + 1))
        return Query(f"{a} NEAR/{n} {b}", band, ("near", a, b, n))
    if kind == "regex":
        shape = rng.randrange(3)
        if shape == 0:
            w = c.word(band)
            return Query(f"/{w[:-1]}{w[-1]}s?/", band, None)
        if shape == 1:
            a, b = rng.choice(c.pair_bands[band])
            return Query(f"/{a},? {b}/", band, None)
        return Query(rf"/\d+ {c.word(band)}/", band, None)
    if kind == "url:":
        return Query(f"url:{rng.choice(c.url_bands[band])}", band, None)
    if kind == "url: AND word":
        return Query(f"{c.word(band)} AND url:{rng.choice(c.url_bands['rare'])}", band, None)
    raise ValueError(f"no way to draw a query of kind {kind!r}")


def draw_queries(path: Path, per_kind: int = PER_KIND, seed: int = 1
                 ) -> dict[str, dict[str, list[Query]]]:
    """Per kind, per column set (:data:`SETS`), ``per_kind`` distinct queries a third from each
    band, distinct across the sets too (so no query is timed after another column ran it)."""
    rng = random.Random(seed)
    c = _Corpus(path, rng)
    out: dict[str, dict[str, list[Query]]] = {}
    for kind in KINDS:
        seen = set(_WARMUPS)
        sets: dict[str, list[Query]] = {s: [] for s in SETS}
        bands = [BANDS[i % 3] for i in range(per_kind)]
        if kind.startswith("word"):
            bands = [kind[6:-1]] * per_kind
        for name in SETS:
            for band in bands:
                for _ in range(200):
                    q = _draw(kind, band, c)
                    if q.text not in seen:
                        break
                else:
                    raise SystemExit(f"could not draw {per_kind} distinct {kind} queries of "
                                     f"the {band} band from the corpus at {scale_store.CORPORA}")
                parse(q.text)  # a query the language refuses is the bench's bug: fail now
                seen.add(q.text)
                sets[name].append(q)
        out[kind] = sets
    return out


async def time_newswatch(path: Path, queries: dict[str, dict[str, list[Query]]], repeat: int
                         ) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    async with await SqliteStore.open(path, lock=False, readonly=True) as store:
        await search(store, "warmup", limit=LIMIT)
        # A process's first fuzzy, prefix or regex lookup reads the index's word list (and a
        # fuzzy one the word-frequency data): once per process, printed on its own.
        t = time.perf_counter()
        await search(store, "ukraine~", limit=LIMIT)
        first = time.perf_counter() - t
        print(f"  first fuzzy lookup of the process (reads the word list): {ms(first)}",
              flush=True)
        # And its first prefix lookup sorts the list (then sorts again only once many words
        # were added): once per process too.
        t = time.perf_counter()
        await search(store, "ukrain*", limit=LIMIT)
        print(f"  first prefix lookup of the process (sorts the word list): "
              f"{ms(time.perf_counter() - t)}", flush=True)
        # And its first regex joins the list into one string to search (then extends it).
        t = time.perf_counter()
        await search(store, "/ukrain/", limit=LIMIT)
        print(f"  first regex lookup of the process (joins the word list): "
              f"{ms(time.perf_counter() - t)}", flush=True)
        for kind, sets in queries.items():
            newest: list[float] = []
            best: list[float] = []
            warm: list[float] = []
            truncated = 0
            for q in sets["newest"]:
                t = time.perf_counter()
                found = await search(store, q.text, limit=LIMIT)
                newest.append(time.perf_counter() - t)
                truncated += found.truncated
                for _ in range(repeat):
                    t = time.perf_counter()
                    await search(store, q.text, limit=LIMIT)
                    warm.append(time.perf_counter() - t)
            for q in sets["best"]:
                t = time.perf_counter()
                found = await search(store, q.text, limit=LIMIT, order="best")
                best.append(time.perf_counter() - t)
                truncated += found.truncated
            out[kind] = {"p50": pct(newest, 0.5), "p95": pct(newest, 0.95),
                         "best95": pct(best, 0.95), "truncated": truncated,
                         "queries": len(newest)}
            line = (f"  {kind:<15} p50 {ms(out[kind]['p50'])}  p95 {ms(out[kind]['p95'])}  "
                    f"best p95 {ms(out[kind]['best95'])}  truncated {truncated}")
            if warm:
                out[kind]["warm50"] = pct(warm, 0.5)
                line += f"  (warm, repeated: p50 {ms(out[kind]['warm50'])})"
            print(line, flush=True)
    return out


def time_raw_fts(path: Path, queries: dict[str, dict[str, list[Query]]]
                 ) -> dict[str, float | None]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    # The lookup index: keyed by date order from schema 5 on, by insertion order before; the
    # places index, which lookups read instead once it holds every article, from schema 17.
    table = "article_index" if "article_index" in names else "article_terms"
    query_of = index_query
    if "article_places" in names and not con.execute(
            "SELECT 1 FROM article_places_incomplete WHERE gap = 1").fetchone():
        table, query_of = "article_places", places_query
    out: dict[str, float | None] = {}
    for kind, sets in queries.items():
        times: list[float] = []
        for q in sets["raw"]:
            fts = query_of(parse(q.text), shipped_aliases({}))
            if fts is None:
                continue
            t = time.perf_counter()
            con.execute(f"SELECT rowid FROM {table} WHERE {table} MATCH ? "
                        "ORDER BY rowid DESC LIMIT ?", (fts, LIMIT)).fetchall()
            times.append(time.perf_counter() - t)
        out[kind] = pct(times, 0.95) if times else None
    con.close()
    return out


FIELDS = ("title", "text")


def tantivy_query(tantivy: Any, schema: Any, plan: Plan) -> Any:
    """The tantivy query doing the work of ``plan`` (see :class:`Query`), over the title and
    the text as newswatch's words are."""
    q, occur = tantivy.Query, tantivy.Occur

    def either(make: Callable[[str], Any]) -> Any:
        return q.boolean_query([(occur.Should, make(f)) for f in FIELDS])

    op = plan[0]
    if op == "words":
        return either(lambda f: q.term_query(schema, f, plan[1]))
    if op == "title":
        return q.term_query(schema, "title", plan[1])
    if op == "phrase":
        return either(lambda f: q.phrase_query(schema, f, plan[1]))
    if op == "prefix":
        # A regex over the field's indexed words: every word that starts so, as ``p*`` takes.
        return either(lambda f: q.regex_query(schema, f, re.escape(plan[1]) + ".*"))
    if op == "near":
        # NEAR/n: both words, either order, at most n-1 words between. Tantivy's slop lets a
        # phrase's words drift apart, and reversing them costs slop too, so one phrase is
        # ordered-ish: one per order, each with n-1 words of slop, make the same window.
        _, a, b, n = plan
        return either(lambda f: q.boolean_query(
            [(occur.Should, q.phrase_query(schema, f, words, n - 1))
             for words in ([a, b], [b, a])]))
    left, right = (tantivy_query(tantivy, schema, p) for p in plan[1:])
    if op == "and":
        return q.boolean_query([(occur.Must, left), (occur.Must, right)])
    if op == "or":
        return q.boolean_query([(occur.Should, left), (occur.Should, right)])
    if op == "not":
        return q.boolean_query([(occur.Must, left), (occur.MustNot, right)])
    raise ValueError(f"no tantivy query for the plan {plan!r}")


def tantivy_index(path: Path, where: Path) -> tuple[Any, Any, Any]:
    """tantivy, the index of the store's articles at ``where`` (built once) and its schema."""
    import tantivy  # type: ignore[import-not-found]

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("title", stored=False)
    builder.add_text_field("text", stored=False)
    builder.add_date_field("date", fast=True, indexed=True)
    builder.add_integer_field("row", stored=True, fast=True)
    schema = builder.build()
    if not (where / "done").exists():
        from datetime import datetime

        started = time.perf_counter()
        where.mkdir(parents=True, exist_ok=True)
        index = tantivy.Index(schema, path=str(where))
        writer = index.writer(heap_size=500_000_000, num_threads=1)
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        for rowid, title, text, sort_at in con.execute(
                "SELECT rowid, title, text, sort_at FROM articles"):
            when = datetime.strptime(sort_at, "%Y-%m-%dT%H:%M:%S.%fZ")
            writer.add_document(tantivy.Document(title=title, text=text, date=when, row=rowid))
        writer.commit()
        writer.wait_merging_threads()
        con.close()
        (where / "done").write_text("ok")
        print(f"  tantivy index built in {time.perf_counter() - started:.0f} s")
    index = tantivy.Index(schema, path=str(where))
    index.reload()
    return tantivy, index, schema


def time_tantivy(path: Path, n: int, queries: dict[str, dict[str, list[Query]]]
                 ) -> dict[str, float | None] | str:
    """Per kind, tantivy's p95 over the nw queries (newest first); None for a kind it has no
    equivalent for, and for a kind one of whose queries failed (the reason printed once: the
    run goes on). A string when the package is missing."""
    try:
        tantivy, index, schema = tantivy_index(path, scale_store.CACHE / f"tantivy-{n}")
    except ImportError:
        return "tantivy is not installed (pip install tantivy): column left out"
    searcher = index.searcher()
    out: dict[str, float | None] = {}
    reasons: set[str] = set()
    for kind, sets in queries.items():
        if kind in TANTIVY_CANNOT:
            print(f"  tantivy {kind}: — ({TANTIVY_CANNOT[kind]})")
            out[kind] = None
            continue
        times: list[float] = []
        failed = 0
        for q in sets["newest"]:
            if q.plan is None:
                continue
            try:
                t = time.perf_counter()
                searcher.search(tantivy_query(tantivy, schema, q.plan), LIMIT,
                                order_by_field="date")
                times.append(time.perf_counter() - t)
            except (ValueError, RuntimeError) as e:
                failed += 1
                reason = f"{type(e).__name__}: {e}"
                if reason not in reasons:
                    reasons.add(reason)
                    print(f"  tantivy failed on {kind} query {q.text!r}: {reason} "
                          "(left out of its figure)", flush=True)
        # A kind's figure is over all its queries or none: a p95 of the ones that happened to
        # work would be of other work than newswatch's column.
        out[kind] = pct(times, 0.95) if times and not failed else None
    return out


def time_cli(path: Path, code: Path = scale_store.ROOT) -> dict[str, float]:
    config = scale_store.CACHE / "scale.toml"
    config.write_text(f'[storage]\npath = "{path}"\n\n[[rules]]\nname = "any"\n'
                      'query = "government"\n', encoding="utf-8")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    out: dict[str, float] = {}
    for label, argv in (("--help", ["--help"]),
                        ("search government", ["search", "government", "-c", str(config),
                                               "--limit", "20"])):
        times = []
        for _ in range(5):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "bot", *argv], check=True, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           cwd=code)
            times.append(time.perf_counter() - t)
        out[label] = statistics.median(times)
    bare = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - t)
    out["python -c pass"] = statistics.median(bare)
    return out


def ms(value: float | None) -> str:
    if value is None:
        return "      —"
    return f"{value * 1000:7.1f}" if value < 10 else f"{value:6.1f}s"


def show(results: dict[str, dict[str, Any]]) -> None:
    for label, res in results.items():
        nw = res["newswatch"]
        raw = res["raw"]
        tan = res["tantivy"]
        assert isinstance(nw, dict) and isinstance(raw, dict)
        per = res.get("per_kind")
        if per is None:  # saved before the queries were drawn: 3 queries x 3 repeats
            print(f"\n== {label}: {res['articles']:,} articles, limit {LIMIT}, times in ms "
                  "(3 queries a kind, each repeated 3 times: warm figures, not comparable)")
        else:
            print(f"\n== {label}: {res['articles']:,} articles, limit {LIMIT}, times in ms, "
                  f"{per} distinct queries a kind, each timed once")
        print(f"{'query kind':<15} | {'nw p50':>7} | {'nw p95':>7} | {'best p95':>8} | "
              f"{'raw FTS5':>8} | {'tantivy':>7} | truncated")
        for kind, row in nw.items():
            t = tan.get(kind) if isinstance(tan, dict) else None
            print(f"{kind:<15} | {ms(row['p50'])} | {ms(row['p95'])} | {ms(row['best95'])}  | "
                  f"{ms(raw.get(kind))}  | {ms(t)} | {int(row['truncated'])}")
        if isinstance(tan, str):
            print(f"({tan})")
        elif per is not None:
            print("(tantivy: p95 of the nw queries built with its query API: a prefix a regex "
                  "over the words, NEAR/n two sloppy phrases, one per order, n-1 words apart "
                  "at most; its words as written (no plural folding, aliases or compounds: "
                  "less work than newswatch's); — where it has no equivalent: "
                  + "; ".join(f"{k}: {v}" for k, v in TANTIVY_CANNOT.items() if k in nw)
                  + ", or a query failed)")
        cli = res.get("cli")
        if isinstance(cli, dict) and cli:
            print("CLI wall time, p50 of 5: " + ", ".join(
                f"{k} {v * 1000:.0f} ms" for k, v in cli.items()))


def run_tantivy(path: Path, n: int, queries: dict[str, dict[str, list[Query]]]
                ) -> dict[str, float | None] | str:
    """:func:`time_tantivy`, whose failure (building its index, say) is the column's reason,
    never the end of the run: newswatch's figures are saved whatever tantivy does."""
    try:
        return time_tantivy(path, n, queries)
    except Exception as e:  # any failure of the other engine is its column's reason
        print(f"  tantivy failed: {type(e).__name__}: {e}", flush=True)
        return f"tantivy failed ({type(e).__name__}: {e}): column left out"


def main(argv: Iterable[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--articles", type=int, default=1_000_000)
    ap.add_argument("--per-kind", type=int, default=PER_KIND,
                    help="distinct queries a kind and column, each timed once")
    ap.add_argument("--repeat", type=int, default=0,
                    help="run every nw query this many more times and print their p50 apart")
    ap.add_argument("--label", default="after")
    ap.add_argument("--no-tantivy", action="store_true")
    ap.add_argument("--no-cli", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(None if argv is None else list(argv))
    path = scale_store.build(args.articles)
    print(f"store {path} ({path.stat().st_size / 1e9:.2f} GB)")
    queries = draw_queries(path, args.per_kind)
    print(f"{args.per_kind} distinct queries a kind and column, a third rare, mid and common "
          "(the word kinds one band each), e.g.:")
    for kind, sets in queries.items():
        print(f"  {kind:<15} " + ", ".join(q.text for q in sets["newest"][:3]))
    print("newswatch lookups:")
    nw = asyncio.run(time_newswatch(path, queries, args.repeat))
    raw = time_raw_fts(path, queries)
    tan: dict[str, float | None] | str = "not run (--no-tantivy)"
    if not args.no_tantivy:
        tan = run_tantivy(path, args.articles, queries)
    cli = {} if args.no_cli else time_cli(path)
    saved = scale_store.CACHE / f"results-{args.articles}.json"
    results: dict[str, dict[str, Any]] = (
        json.loads(saved.read_text()) if saved.exists() else {})
    results[args.label] = {"articles": args.articles, "per_kind": args.per_kind,
                           "newswatch": nw, "raw": raw, "tantivy": tan, "cli": cli}
    saved.write_text(json.dumps(results, indent=1))
    show(results)


if __name__ == "__main__":
    main()
