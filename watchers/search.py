"""Lookups over stored articles with the rule language (the engine behind /search and
``newswatch search``): the store narrows candidates, the matcher gives the exact answer and its
evidence.

The store hands candidates over in pages, newest first (its index is keyed in date order), and
the lookup confirms them page by page until it holds the ``limit`` newest matches — plus any
candidate of the same second as the last of them, since pages are ordered to the second only —
so a lookup reads about as many articles as it returns when the index query is tight, however
many articles match. The answer is exactly the newest matches a full scan would find.

A fuzzy term (``kyiv~``), a prefix or a regex is looked up through the words the index holds:
the store lists them (:meth:`~watchers.store.ArticleStore.index_words`, read incrementally and
kept per store object); a fuzzy term expands to those its comparison accepts, a prefix to those
it starts (up to a few hundred; FTS5's prefix query otherwise), a regex to those that hold a
string it requires, and the index is asked for any of them. A store that keeps no word list
leaves fuzzy terms and regexes unconstrained, as an index cannot narrow them otherwise.

``url:`` terms are looked up in the store's URL index (each article's link, tokenised as the
matcher reads the ``url`` field): a word, phrase or prefix every match needs narrows the
candidates like a title or text term; a fuzzy ``url:`` term or regex does not (an index of
link words holds a word or two of every article alone, its id or slug: too many to list for
expanding a term over them).

A lookup has a time budget (``budget`` seconds of its own work, matching included): when it
runs out the lookup answers with what it confirmed so far and says so (``Lookup.truncated``), so
one member's pathological query cannot hold the bot. Matching runs in an executor, never on the
event loop, in turns of at most :data:`TURN` seconds: each turn goes back to the end of the
executor's queue, so lookups running at once take turns rather than the first ones holding
every thread until their budgets run out. Time spent waiting for a turn (behind other lookups)
is not the lookup's own and does not count against its budget — a cheap query issued while
expensive ones run was cut short and told to narrow it — but a lookup waits at most ``wait``
seconds in all, then raises LookupBusyError ("busy, try again") rather than queue on.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from watchers.errors import LookupBusyError
from watchers.models import Article, Match, matchable
from watchers.rules import DEFAULT_THRESHOLD, match_query, parse, shipped_aliases
from watchers.rules.lookup import (
    NOTHING,
    FuzzyKeys,
    Vocabulary,
    fuzzy_terms,
    index_query,
    own_key,
    places_query,
    regex_runs,
    regex_screen,
    url_query,
)
from watchers.rules.matcher import RegexBudget
from watchers.rules.syntax import And, Near, Node, Not, Or, Phrase, Regex, Term
from watchers.rules.variants import Aliases
from watchers.store.base import Store, page_second, sort_time

__all__ = ["Lookup", "SearchHit", "index_vocabulary", "search"]

T = TypeVar("T")

# Seconds of its own work a lookup may take; the regex share of one article's budget.
DEFAULT_BUDGET = 5.0
REGEX_BUDGET = 0.05
# Seconds a lookup may wait, in all, for turns in the executor before it gives up as busy; and
# the longest turn it takes there before it lets the lookups queued behind it have theirs.
DEFAULT_WAIT = 10.0
TURN = 0.05
# Best order ranks the newest matches by score: this many at least (or the limit, if larger).
BEST_POOL = 60
# Candidates read per page: the first page is about what the limit needs, later ones grow.
FIRST_PAGE = 32
MAX_PAGE = 2000
# A lookup's source: terms narrow it to the stored sources they accept when there are at most
# this many names to judge, and at most this many accepted (a filter the store applies).
MAX_SOURCE_NAMES = 5000
MAX_SOURCE_FILTER = 500


# Each store's index words as last read, with the store's cursor for reading on: by store object,
# so a process that opens and closes stores does not keep their words.
_WORDS: weakref.WeakKeyDictionary[Store, tuple[int, Vocabulary]] = weakref.WeakKeyDictionary()
# One lookup at a time reads on a store's words and expands its fuzzy terms over them: a word
# list is extended in place, never while another lookup compares terms with it.
_LOCKS: weakref.WeakKeyDictionary[Store, tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = (
    weakref.WeakKeyDictionary())


def _words_lock(store: Store) -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    held = _LOCKS.get(store)
    if held is None or held[0] is not loop:
        held = _LOCKS[store] = (loop, asyncio.Lock())
    return held[1]


def _needs_words(node: Node) -> bool:
    """Whether ``node`` has a fuzzy term, a prefix or a regex: what the index's word list
    narrows (or, for a prefix, reads faster)."""
    if isinstance(node, Regex):
        return True
    if isinstance(node, Term):
        return node.kind in ("fuzzy", "prefix")
    if isinstance(node, Phrase):
        return any(w.kind in ("fuzzy", "prefix") for w in node.words)
    if isinstance(node, Near):
        return _needs_words(node.left) or _needs_words(node.right)
    if isinstance(node, Not):
        return _needs_words(node.child)
    return any(_needs_words(c) for c in getattr(node, "children", ()))


async def index_vocabulary(store: Store) -> Vocabulary | None:
    """The words ``store``'s lookup index holds, read on from where the last call stopped; None
    when the store keeps no word list. Callers hold the store's words lock."""
    try:
        cursor, vocab = _WORDS[store]
    except KeyError:
        cursor, vocab = 0, Vocabulary()
    found = await store.index_words(after=cursor)
    if found is None:
        return None
    words, cursor_now = found
    if words:
        loop = asyncio.get_running_loop()
        # Transliteration keys for a large first read take a while: off the event loop.
        await loop.run_in_executor(None, vocab.extend, words)
    _WORDS[store] = (cursor_now, vocab)
    return vocab


class _OutOfTime(Exception):
    """The lookup's budget ran out while its fuzzy terms were expanded, or while a phrase was
    looked for in one article."""


class _Turns:
    """One lookup's clock and its work in the executor: a job's wait for a thread moves the
    deadline on by as long (the budget counts the lookup's own work, not the others' ahead of
    it in the queue), and once the waits add up to ``wait`` seconds the lookup raises
    LookupBusyError — at that moment, not once its job finally starts."""

    def __init__(self, executor: Executor | None, budget: float, wait: float) -> None:
        self.executor = executor
        self.deadline = time.monotonic() + budget
        self.waited = 0.0
        self.wait = wait

    def busy(self) -> LookupBusyError:
        return LookupBusyError(f"newswatch is busy with other lookups (this one waited "
                               f"{self.waited:.0f} s for its turn); try again in a minute")

    def waited_for(self, seconds: float) -> None:
        """Count ``seconds`` spent waiting (for a thread, for a lock) as not the lookup's."""
        self.waited += seconds
        self.deadline += seconds

    async def run(self, job: Callable[..., T], *args: Any) -> T:
        """``job(*args)`` in the executor; it reads :attr:`deadline` as moved by its own
        wait."""
        queued = time.monotonic()
        lock = threading.Lock()
        claimed = False  # by the thread (the job runs) or by the lookup (it gave up): first wins

        def turn(job: Callable[..., T], *args: Any) -> tuple[bool, T | None]:
            nonlocal claimed
            with lock:
                if claimed:
                    return False, None  # given up while it queued: nothing to do
                claimed = True
                self.waited_for(time.monotonic() - queued)  # before job() reads the deadline
            return True, job(*args)

        def give_up() -> bool:
            nonlocal claimed
            with lock:
                gave_up, claimed = not claimed, True
            if gave_up:
                future.cancel()
            return gave_up

        future = asyncio.get_running_loop().run_in_executor(self.executor, turn, job, *args)
        try:
            done, _ = await asyncio.wait({future}, timeout=max(0.0, self.wait - self.waited))
        except asyncio.CancelledError:
            give_up()  # a job that runs already runs on, as it would have before
            raise
        if not done and give_up():
            self.waited_for(time.monotonic() - queued)
            raise self.busy()
        ran, value = await future
        if not ran:  # only give_up() makes a turn return without running, and it raised above
            raise self.busy()
        return value  # type: ignore[return-value]  # ran: job() returned it


def _expand(node: Node, threshold: float, vocab: Vocabulary, table: Aliases,
            turns: _Turns | None = None
            ) -> tuple[str | None, str | None, str | None, dict[tuple[str, float], list[str]]]:
    """The index query, the places query and the marked places query (see
    :func:`_marked`) of ``node`` with its fuzzy terms expanded over
    ``vocab``, and each fuzzy term's words: the only words of any stored article it can
    match, so the matcher compares those alone. Raises _OutOfTime past the lookup's deadline
    (a query of thousands of fuzzy terms takes longer than the lookup's budget to expand)."""
    deadline = float("inf") if turns is None else turns.deadline  # as moved by its wait
    words: dict[tuple[str, float], list[str]] = {}
    for t in fuzzy_terms(node, threshold):
        if time.monotonic() > deadline:
            raise _OutOfTime
        if _spaced_key(t[0], table):
            continue  # not in the word list whole: not narrowed
        words[t] = [w for w in vocab.matching(t[0], t[1], table) if own_key(w)]
    expand: FuzzyKeys = lambda key, thr: words.get((key, thr))  # noqa: E731

    held: dict[str, list[set[str]] | None] = {}

    def holding(pattern: str) -> list[set[str]] | None:
        if pattern in held:  # each query asks (a scan of every word a run)
            return held[pattern]
        sets = regex_runs(pattern)
        found = held[pattern] = (None if sets is None else
                                 [{w for run in runs for w in vocab.containing(run)}
                                  for runs in sets])
        return found

    places = places_query(node, table, threshold, expand, holding, vocab.starting)
    marked = None
    if _positive_regex(node):  # (the only nodes marks narrow: no second query otherwise)
        marked = _marked(places, places_query(node, table, threshold, expand, holding,
                                              vocab.starting, marks=True))
    return (index_query(node, table, threshold, expand, holding, vocab.starting), places,
            marked, words)


def _marked(places: str | None, marked: str | None) -> str | None:
    """The places query with number marks when it differs from the one without (a regex
    that needs a digit, whitespace and a word): a store reads it where every row of its
    places index holds its article's marks (see watchers.rules.lookup.MARK)."""
    return None if marked == places else marked


# Fields whose words the index's word list does not hold (a link's, a source name's).
_UNLISTED_FIELDS = ("url", "source")
_SPACED = re.compile(r"\s")


def _fuzzy_unlisted(node: Node, table: Aliases, field: str | None = None) -> bool:
    """Whether a fuzzy term of ``node`` reads a field of :data:`_UNLISTED_FIELDS`, or may
    match a key of several words (:func:`_spaced_key`)."""
    if isinstance(node, Term):
        return node.kind == "fuzzy" and ((node.field or field) in _UNLISTED_FIELDS
                                         or _spaced_key(node.key, table))
    if isinstance(node, Phrase):
        return any(_fuzzy_unlisted(w, table, node.field or field) for w in node.words)
    if isinstance(node, Near):
        return (_fuzzy_unlisted(node.left, table, field)
                or _fuzzy_unlisted(node.right, table, field))
    if isinstance(node, Not):
        return _fuzzy_unlisted(node.child, table, field)
    if isinstance(node, (And, Or)):
        return any(_fuzzy_unlisted(c, table, field) for c in node.children)
    return False


def _spaced_key(key: str, table: Aliases) -> bool:
    """Whether a fuzzy term's key, or one of its aliases, is several words (a ligature spelt
    out, U+FDFA's): a rebuild or a change in place lists such a key as its words, never
    whole, so the word list cannot say which stored words the term matches."""
    return any(_SPACED.search(k) is not None
               for k in (key, *table.fuzzy_of(key), *table.of(key)))


def _positive_regex(node: Node) -> bool:
    """Whether ``node`` holds a regex that is not negated: one that runs out of its time on
    an article (and counts as not matching) may then leave out an article that matches."""
    if isinstance(node, Regex):
        return True
    if isinstance(node, Not):
        return False
    if isinstance(node, Near):
        return _positive_regex(node.left) or _positive_regex(node.right)
    return any(_positive_regex(c) for c in getattr(node, "children", ()))


def _source_only(node: Node) -> bool:
    """Whether ``node``'s truth depends on an article's source name alone."""
    if isinstance(node, (Term, Phrase, Regex)):
        return node.field == "source"
    if isinstance(node, Not):
        return _source_only(node.child)
    if isinstance(node, Near):
        return _source_only(node.left) and _source_only(node.right)
    if isinstance(node, (And, Or)):
        return all(_source_only(c) for c in node.children)
    return False


def _source_parts(node: Node) -> list[Node]:
    """The parts of ``node`` that every match needs true and that read the source alone: the
    node itself, or some of the operands of a top-level AND."""
    parts = node.children if isinstance(node, And) else (node,)
    return [p for p in parts if _source_only(p)]


def _sources_accepted(parts: Sequence[Node], stored: Sequence[str], threshold: float,
                      table: Aliases, labels: Mapping[str, str] | None = None
                      ) -> list[str] | None:
    """The stored source names every one of ``parts`` accepts, as the matcher judges them on
    an article of that source (named as ``labels`` names it); None when narrowing would not
    pay (more names than :data:`MAX_SOURCE_NAMES` to judge, or more than
    :data:`MAX_SOURCE_FILTER` or all of them accepted) or a regex ran out of time before all
    were judged: the lookup then reads every source, as the matcher confirms each article
    anyway."""
    if len(stored) > MAX_SOURCE_NAMES:
        return None
    budget = RegexBudget(REGEX_BUDGET)
    out = []
    for name in stored:
        probe = Article(title="-", source=(labels or {}).get(name, name))
        if all(match_query(p, probe, threshold, table, name="query", budget=budget) is not None
               for p in parts):
            out.append(name)
        if budget.exhausted:
            return None
    if out and (len(out) > MAX_SOURCE_FILTER or len(out) == len(stored)):
        return None
    return out


@dataclass(frozen=True)
class SearchHit:
    article: Article
    match: Match


@dataclass(frozen=True)
class Lookup:
    """What a lookup found; ``truncated`` when its time budget ran out before it finished, or
    a regex ran out of its time on an article (which then counted as not matching)."""

    hits: list[SearchHit]
    truncated: bool = False
    scanned: int = 0

    def __iter__(self) -> Iterator[SearchHit]:
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)


class _Confirm:
    """Confirms candidates page by page, newest first, until ``want`` hits are certain.

    Pages are ordered to the whole second only, so once ``want`` hits are in, the candidates
    of the same second as the last of them are still read: one of them may be newer."""

    def __init__(self, match: Callable[[Article], Match | None], want: int,
                 turns: _Turns) -> None:
        self.match = match
        self.want = want
        self.turns = turns
        self.hits: list[SearchHit] = []
        self.scanned = 0
        self.cutoff: int | None = None  # the second of the want-th hit
        self.truncated = False

    def page(self, articles: Sequence[Article], start: int = 0) -> int | None:
        """Confirm a page from ``start`` for one turn (:data:`TURN` seconds at most); None
        once the answer is complete (or the time is up), else where the next turn goes on
        (``len(articles)``: the page is done)."""
        deadline = self.turns.deadline  # as moved by this turn's wait
        turn_ends = time.monotonic() + TURN
        for at in range(start, len(articles)):
            article = articles[at]
            second = page_second(sort_time(article))
            if self.cutoff is not None and second < self.cutoff:
                return None
            now = time.monotonic()
            if now > deadline:
                self.truncated = True
                return None
            if now > turn_ends:
                return at
            self.scanned += 1
            try:
                found = self.match(matchable(article))
            except _OutOfTime:  # in the middle of this article: neither a hit nor not one
                self.truncated = True
                return None
            if found is not None:
                self.hits.append(SearchHit(article, found))
                if len(self.hits) == self.want:
                    self.cutoff = second
        return len(articles)


async def search(
    store: Store,
    query: str,
    *,
    since: datetime | None = None,
    source: str | None = None,
    limit: int = 10,
    order: Literal["newest", "best"] = "newest",
    threshold: int = DEFAULT_THRESHOLD,
    aliases: Mapping[str, Sequence[str]] | None = None,
    budget: float = DEFAULT_BUDGET,
    executor: Executor | None = None,
    follows: Collection[str] | None = None,
    labels: Mapping[str, str] | None = None,
    wait: float = DEFAULT_WAIT,
) -> Lookup:
    """Stored articles that match ``query``; raises QuerySyntaxError for a bad query.

    Newest first: the ``limit`` newest matches, exactly those a full scan finds. Best order:
    the newest ``max(limit, BEST_POOL)`` matches ranked by score (ties newest first), which
    is every match when there are no more than that. ``follows``: look only at what a server
    sees (see :meth:`watchers.store.ArticleStore.candidate_page`); ``labels``: a stored
    source name → the name that server gave the feed, which its ``source:`` terms name (as
    its rules match them). ``budget``: seconds of the lookup's own work; ``wait``: seconds it
    may wait in all for the executor (and for another lookup's use of the index words) before
    it raises LookupBusyError."""
    turns = _Turns(executor, budget, wait)
    node = parse(query)  # fail fast, before touching the store
    alias_map = {k: list(v) for k, v in (aliases or {}).items()}
    table = shipped_aliases(alias_map)
    fuzzy: dict[tuple[str, float], list[str]] | None = None
    vocab = None
    if _needs_words(node):
        words_lock = _words_lock(store)
        asked = time.monotonic()
        try:
            async with asyncio.timeout(max(0.0, wait - turns.waited)):
                await words_lock.acquire()
        except TimeoutError:
            turns.waited_for(time.monotonic() - asked)
            raise turns.busy() from None
        turns.waited_for(time.monotonic() - asked)
        try:
            try:
                vocab = await index_vocabulary(store)
                if vocab is not None:
                    # Comparing a term with every index word is CPU work: off the event loop,
                    # in one turn up to the budget (the words lock lets one lookup at a time
                    # expand, so it holds one of the lookup threads at most).
                    try:
                        fts, places, marked, fuzzy = await turns.run(
                            _expand, node, float(threshold), vocab, table, turns)
                    except _OutOfTime:
                        return Lookup([], True, 0)
            except asyncio.CancelledError:
                # A cancelled lookup (a timeout, Ctrl-C) leaves its thread running on the word
                # list, extending it or making its keys: the next lookup reads a list of its own.
                _WORDS.pop(store, None)
                raise
        finally:
            words_lock.release()
    if vocab is None:
        fts = index_query(node, table)
        places = places_query(node, table)
        marked = (_marked(places, places_query(node, table, marks=True))
                  if _positive_regex(node) else None)
    if fts == NOTHING or places == NOTHING or marked == NOTHING:
        # No word the index holds matches a term every match needs.
        return Lookup([], False, 0)
    # ``url:`` terms every match needs narrow through the URL index (the words of each
    # article's link), which the store intersects with the title and text index query.
    urls = url_query(node, table)
    # ``source:`` terms every match needs narrow the lookup to the stored sources they accept
    # (a few hundred names, judged one by one), which the store filters on; the index holds
    # titles and texts only.
    sources: list[str] | None = None
    parts = _source_parts(node)
    if parts:
        # One more than can be judged says there are too many.
        stored = await store.stored_sources(limit=MAX_SOURCE_NAMES + 1)
        sources = await turns.run(_sources_accepted, parts, stored, float(threshold), table,
                                  labels)
        if sources is not None and (not sources or (source is not None
                                                    and source not in sources)):
            return Lookup([], False, 0)

    # The fuzzy terms' words are those of titles and texts (the index's word list): a fuzzy
    # term of a link or a source name matched no stored article whose word was only there.
    # Such a query compares every word of each candidate, as a full scan does.
    listed = None if _fuzzy_unlisted(node, table) else fuzzy
    # Whether a regex ran out of its time on some article the query then did not match (it
    # counts as not matching): the answer may lack that article, and says so (it said it was
    # complete). Out of time under a NOT, or where the article matched anyway, it changed
    # nothing a rule would not do alike.
    regex_over = False
    positive_regex = _positive_regex(node)

    def match(article: Article) -> Match | None:
        nonlocal regex_over
        # One query, so the reference matcher: no rule index to build (and no word-frequency
        # data to load for it), the same answer as a compiled rule set. Its phrases with slop
        # or a prefix or fuzzy word (every window of the article) may take what is left of
        # the lookup's time, and no more: one over a 1 MB article ran ten seconds past it.
        phrases = RegexBudget(max(turns.deadline - time.monotonic(), 1e-6))
        if labels and (label := labels.get(article.source)) is not None:
            # a server's feed as that server named it, as its rules see the article
            article = article.model_copy(update={"source": label})
        regexes = RegexBudget(REGEX_BUDGET)
        found = match_query(node, article, threshold, table, name="query",
                            budget=regexes, fuzzy_candidates=listed, phrase_budget=phrases)
        if phrases.exhausted:
            raise _OutOfTime
        if regexes.exhausted and found is None and positive_regex:
            regex_over = True
        return found

    # The regexes every match needs, which the store may test on the rows it reads: a
    # regex's candidates hold its literals' words, most of them perhaps nowhere near each
    # other or the rest of the pattern, and each one made into an article and matched cost
    # half a millisecond.
    screen = regex_screen(node)
    want = limit if order == "newest" else max(limit, BEST_POOL)
    confirm = _Confirm(match, max(1, want), turns)
    after: str | None = None
    size = max(FIRST_PAGE, 2 * want)
    while True:
        if time.monotonic() > turns.deadline:
            confirm.truncated = True
            break
        page = await store.candidate_page(fts=fts, since=since, source=source, after=after,
                                          limit=min(size, MAX_PAGE), follows=follows,
                                          sources=sources, urls=urls, places=places,
                                          marked=marked, screen=screen)
        articles = page.articles
        at: int | None = 0
        while at is not None and at < len(articles):
            at = await turns.run(confirm.page, articles, at)
        if at is None or page.next is None:
            break
        if (confirm.cutoff is not None and page.read_to is not None
                and page.read_to < confirm.cutoff):
            # The page read past the last match's second, though its screen left those
            # candidates out: every later one is older still.
            break
        after = page.next
        # Once the limit's matches are in, only candidates of the last one's second remain:
        # usually a few, so a small page rather than a larger one read whole for its first row.
        size = FIRST_PAGE if confirm.cutoff is not None else size * 4
    # Candidates come ordered to the second; within one, newest first by the stored time.
    hits = sorted(confirm.hits, key=lambda h: sort_time(h.article), reverse=True)
    if order == "best":
        hits.sort(key=lambda h: h.match.score, reverse=True)
    return Lookup(hits[:limit], confirm.truncated or regex_over, confirm.scanned)
