"""Live stories within a time window, and the decision whether an article joins one.

The decision: the article's rarest title terms find candidate stories through posting lists
(most recently active first); each of the few best candidates is scored by a pair scorer, a
logistic regression over :func:`features` (weighted overlap of the titles, shared rare names,
shared and conflicting counts, the same kind of event, whether each headline's subject is named
by the other, the hours between them, ...) learnt by ``bench/stories_train.py`` (on the even
half of the labelled set and half of the fresh days) and shipped as constants. An
article joins the story whose closest exemplar it matches best, if that log-odds reaches
:data:`_JOIN` and its log-odds against the story's founder reaches :data:`_FOUNDER` (so a
saga cannot chain from event to event); none: a new story. Pairs sharing fewer than
:data:`_MIN_TITLE` title terms, naming other kinds of event, or other acting countries where
neither names the other's at all (a country named as a speaker, "Ukraine says ...", does not
act: see :mod:`.features`), are never one story.

Invariants:

- Every assigned article gets exactly one story id; a story's id is the id its founding article
  is placed under and its time give through :func:`story_id_for`, so replaying the same
  articles gives the same ids. (Polled and imported articles are placed under their id and
  content, :func:`watchers.importer.story_key`: an id alone may be another article's.)
- An article joins a story only if its date lies within ``window`` of the story's span
  (``first - window <= when <= last + window``): the dates of a story's articles, sorted, are
  never more than ``window`` apart from one to the next.
- Candidate lookup is indexed: an article looks at most :data:`_POSTING_SCAN` stories per term
  for at most :data:`_LOOKUP_TERMS` of its terms and scores at most :data:`_SCORED` of them, so
  its cost does not grow with the number of live stories.
- Stories whose last article is older than ``window`` before the newest date seen are dropped,
  so memory is bounded by the stories of one window. A live story is a few objects (its
  exemplars ready to compare, terms interned, equal mark sets shared): a window may hold
  100,000 of them. None can reach back to another or to the index (posting lists name stories
  by number), so they are left out of the cyclic collector
  (:func:`watchers.rules.text.untrack`), which would otherwise walk them, and the whole heap
  with them, again and again as stories are added.
- How an exemplar is held changes no decision: :func:`_logit` adds the same terms in the same
  order whatever the representation, so a score is the same float.
- The decision (``StoryIndex._best`` and :func:`_logit`) has a C twin (``_cstories.Scorer``,
  optional, off with ``NEWSWATCH_PURE``) that computes the same floats in the same order and so
  chooses the same story; this module is the specification.
- ``assign`` and ``restore`` hold one lock: two threads may call them at once.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from operator import itemgetter
from sys import intern
from typing import Any, cast

from watchers.rules.text import untrack
from watchers.stories.features import (
    _CSTORIES,
    ACTOR_MARK,
    COUNTRY_MARK,
    EVENT_MARK,
    MAX_EXEMPLARS,
    SUBJECT_MARK,
    Exemplar,
    Signature,
)

__all__ = [
    "DEFAULT_WINDOW",
    "FEATURES",
    "StoryIndex",
    "features",
    "same_story_score",
    "story_id_for",
]

DEFAULT_WINDOW = timedelta(hours=48)

# The C walk over an exemplar, when the extension is built (see watchers.stories.features).
_cprepare: Callable[[Exemplar, float], tuple[dict[str, float], tuple[str, ...], list[str], str,
                                             tuple[str, ...]] | None] | None = getattr(
    _CSTORIES, "prepare", None)

# Candidate search bounds (see the module invariants).
_LOOKUP_TERMS = 4
_POSTING_SCAN = 8
_SCORED = 4
_COUNT = itemgetter(1)
# Terms lighter than this are not looked up: they would only find stories by grammar.
_INDEX_MIN = 1.0

# What features() reads in term weights (see watchers.stories.features).
_NUMBER_W = 3.5
_RARE_W = 4.0
_MAX_W = 6.0

# The pair scorer: logistic regression over features(), learnt by bench/stories_train.py (which
# prints these lines) on the even half of the labelled set and the fresh set's days of
# December 2021 and February 2022; the odd half and the fresh days of January and June 2022
# are held out.
_BIAS = -6.044
_COEF: tuple[float, ...] = (2.381, 3.590, 2.042, 0.057, -0.277, -1.087, 0.868,
         0.344, 1.419, 0.000, 0.000, -0.728, -0.180, 0.878, 0.121)
# The decision, in log-odds: the article must reach _FOUNDER against the story's first
# article (no chaining from event to event) and _JOIN against its closest exemplar.
_FOUNDER = -1.0
_JOIN = 0.5
# Exemplars a story keeps: its founder and its most recent articles.
_EXEMPLARS = MAX_EXEMPLARS
# Never one story: another kind of event or another acting country (the veto), or fewer
# title terms in common than _MIN_TITLE (one shared name is a topic, not an event).
_VETO = True
# Whether an acting country the other headline names anywhere is no conflict ("U.S.
# basketball star Griner sentenced by Russian court" / "Russian court sentences Griner").
# The speaker rule alone tied with it in cross-validation on the even half (see
# bench/stories_train.py --folds).
_RELAX_ACTOR = True
_MIN_TITLE = 2
# Whether lead-only terms (negative weights, in signatures persisted by an earlier version)
# count as evidence. They do not: see watchers.stories.features.
_LEAD = False
# The log-odds of a pair that can never be one story.
_NEVER = -100.0


# Times inside the index are integer microseconds since the epoch: exact like datetimes (a
# gap's hours are the same float timedelta.total_seconds() gives: microseconds over 10**6),
# and comparing or subtracting them makes no objects.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_US_PER_S = 1_000_000


def _us(when: datetime) -> int:
    """``when`` (timezone-aware) in integer microseconds since the epoch."""
    return (when - _EPOCH) // _ONE_US


def _hours(us: int) -> float:
    """``abs(timedelta(microseconds=us).total_seconds()) / 3600.0``, to the last bit."""
    return (us if us >= 0 else -us) / _US_PER_S / 3600.0


_EMPTY: frozenset[str] = frozenset()
_SETS: dict[frozenset[str], frozenset[str]] = {}
_SETS_MAX = 20_000


def _shared(items: list[str]) -> frozenset[str]:
    """``frozenset(items)``, one object for equal sets (bounded: cleared when full)."""
    if not items:
        return _EMPTY
    fs = frozenset(items)
    got = _SETS.get(fs)
    if got is None:
        if len(_SETS) >= _SETS_MAX:
            _SETS.clear()
        got = _SETS[fs] = fs
    return got


def story_id_for(article_id: str, when: datetime | None = None) -> str:
    """The id of the story an article starts: stable, short, and not the article's own id.

    With the founding article's time (as the index always passes it): ``s``, the second it
    happened in (8 hex digits, seconds since 1970, clamped to what 8 digits hold) and 12 hex
    digits of a hash of the article's id, so ids sort by when their stories began. A store
    keeps story ids in several indexes (the stories, the articles of a story, the outbox rows
    of a story): ids that grow with time are written at the end of each, where random ids
    would dirty a page of each index per new story, anywhere in it (a commit of 500 new stories
    into a table of 100,000 wrote 2.5 times the pages). Without a time: ``s`` and 16 hex
    digits of the hash (the form of ids made before)."""
    if when is None:
        return "s" + hashlib.blake2b(article_id.encode("utf-8"), digest_size=8).hexdigest()
    if when.tzinfo is None:
        raise ValueError("'when' must be timezone-aware")
    return _story_id(article_id, _us(when))


def _story_id(article_id: str, at: int) -> str:
    """:func:`story_id_for` of an article at ``at`` (microseconds since the epoch)."""
    digest = hashlib.blake2b(article_id.encode("utf-8"), digest_size=8).hexdigest()
    seconds = at // _US_PER_S
    if seconds < 0:
        seconds = 0
    elif seconds > 0xFFFFFFFF:
        seconds = 0xFFFFFFFF
    return f"s{seconds:08x}{digest[:12]}"


# The event, actor and country sets a run of marks (subject left out) stands for: marks are
# few and repeat from headline to headline, so equal sets are one shared object (see _shared).
# Bounded, cleared when full.
_MARKSETS: dict[tuple[str, ...], tuple[frozenset[str], frozenset[str], frozenset[str]]] = {}
_MARKSETS_MAX = 20_000


def _marksets(marks: tuple[str, ...]
              ) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    events: list[str] = []
    actors: list[str] = []
    countries: list[str] = []
    for t in marks:
        if t[0] == EVENT_MARK:
            events.append(intern(t))
        elif t[0] == ACTOR_MARK:
            actors.append(intern(t[1:]))
        elif t[0] == COUNTRY_MARK:
            countries.append(intern(t[1:]))
    act = _shared(actors)
    # Signatures stored before countries were marked name their actor only.
    got = (_shared(events), act, _shared([*countries, *actors]) if countries else act)
    if len(_MARKSETS) >= _MARKSETS_MAX:
        _MARKSETS.clear()
    _MARKSETS[marks] = got
    return got


def _walk(exemplar: Exemplar
          ) -> tuple[dict[str, float], tuple[str, ...], list[str], str, tuple[str, ...]]:
    """An exemplar's weighted terms, marks, numbers, subject and terms heaviest first: what
    :class:`_Ex` keeps of it (the C twin, ``_cstories.prepare``, gives the same)."""
    weights: dict[str, float] = {}
    marks: list[str] = []
    numbers: list[str] = []
    subject = ""
    for t, w in exemplar:
        if w > 0:
            # One string per distinct term across all live stories (signatures loaded from
            # the store spell each anew): less memory, and lookups compare by identity.
            t = intern(t)
            weights[t] = w
            if w >= _NUMBER_W and t[0].isdigit():
                numbers.append(t)
        elif not w:
            if t[0] == SUBJECT_MARK:
                subject = t
            else:
                marks.append(t)
        elif _LEAD:
            weights[intern(t)] = -w
    # Title terms, heaviest first: what the other side must name to tell the same event.
    # (A stable sort on descending weight keeps ties in title order, as sorting on the
    # negated weight did.)
    title = [t for t, w in weights.items() if w > 0] if _LEAD else weights
    return (weights, tuple(marks), numbers, intern(subject[1:]) if subject else "",
            tuple(sorted(title, key=weights.__getitem__, reverse=True)))


def _post_py(postings: dict[str, dict[int, None]], num: int, terms: dict[str, float],
             move: bool) -> None:
    """Story ``num`` last in the postings list of each term (``move``: taken out first where
    it is in it already). The C twin, ``_cstories.post``, does the same."""
    for t in terms:
        ids = postings.get(t)
        if ids is None:
            postings[t] = {num: None}
        else:
            if move:
                ids.pop(num, None)
            ids[num] = None


_post: Callable[[dict[str, dict[int, None]], int, dict[str, float], bool], None] = getattr(
    _CSTORIES, "post", _post_py)


class _Ex:
    """One exemplar, ready to compare: weighted terms, their total, and its marks."""

    __slots__ = ("actors", "countries", "events", "numbers", "order", "size", "subject", "total",
                 "weights")

    def __init__(self, exemplar: Exemplar) -> None:
        # The walk in C when built (see watchers/stories/_cstories.c), which leaves what it
        # does not mirror to Python (None).
        got = _cprepare(exemplar, _NUMBER_W) if _cprepare is not None and not _LEAD else None
        weights, marks, numbers, self.subject, self.order = got or _walk(exemplar)
        sets = _MARKSETS.get(marks)
        self.events, self.actors, self.countries = sets if sets is not None else _marksets(marks)
        self.weights = weights
        self.size = len(weights)
        self.total = sum(weights.values()) or 1.0
        self.numbers = _shared(numbers) if numbers else _EMPTY

    @property
    def title(self) -> frozenset[str]:
        """The title's terms. Made when asked, not kept: one set per exemplar of every live
        story is memory the decision does not need (it counts the weighted terms both share,
        which are the title's: see :func:`_logit`)."""
        return frozenset(self.order)


# Feature names, in the order :func:`features` returns them and :data:`_COEF` weighs them.
FEATURES = (
    "dice",          # weighted Dice of all terms (lead terms at half weight)
    "containment",   # shared weight over the lighter side's total
    "shared",        # log(1 + shared weight): absolute evidence
    "title_common",  # terms both titles name (capped)
    "rare_common",   # shared terms rarer than a common name (capped)
    "top_missing",   # heaviest title term of either side the other lacks (over _MAX_W)
    "num_shared",    # a count or amount both name
    "num_conflict",  # both name counts, none the same
    "event_agree",   # the same kind of event
    "event_conflict",  # different kinds of event
    "actor_conflict",  # different acting countries
    "gap",           # log(1 + hours between the two)
    "length_ratio",  # fewer terms over more terms
    "subject_found",  # sides whose subject (first term) the other names (0-2)
    "subject_conflict",  # both subjects heavy names, neither named by the other
)


_EVENT_CONFLICT = FEATURES.index("event_conflict")
_ACTOR_CONFLICT = FEATURES.index("actor_conflict")


def _overlap(a: _Ex, b: _Ex, both: AbstractSet[str] | None = None
             ) -> tuple[float, int, float]:
    """The weight the two share (the smaller weight of each shared term), how many shared terms
    are rare, and the heaviest first term either has that the other lacks. ``both``: their
    shared terms, when the caller has them already."""
    aw, bw = a.weights, b.weights
    shared = 0.0
    rare = 0
    for t in (aw.keys() & bw.keys()) if both is None else both:
        w, v = aw[t], bw[t]
        m = w if w < v else v
        shared += m
        if m >= _RARE_W:
            rare += 1
    top = 0.0
    for t in a.order:
        if t not in bw:
            top = aw[t]
            break
    for t in b.order:
        if t not in aw:
            if bw[t] > top:
                top = bw[t]
            break
    return shared, rare, top


def features(a: _Ex, b: _Ex, gap_hours: float) -> tuple[float, ...]:
    """The pair's evidence for and against one event (see :data:`FEATURES`)."""
    aw, bw = a.weights, b.weights
    shared, rare, top = _overlap(a, b)
    ea, eb = a.events, b.events
    agree = 1.0 if ea & eb else 0.0
    na, nb = a.numbers, b.numbers
    num_shared = 1.0 if na & nb else 0.0
    la, lb = len(aw), len(bw)
    return (
        2.0 * shared / (a.total + b.total),
        shared / min(a.total, b.total),
        math.log1p(shared),
        float(min(len(a.title & b.title), 6)),
        float(min(rare, 4)),
        top / _MAX_W,
        num_shared,
        1.0 if na and nb and not num_shared else 0.0,
        agree,
        1.0 if ea and eb and not agree else 0.0,
        1.0 if _actor_conflict(a, b) else 0.0,
        math.log1p(gap_hours),
        (la / lb if la < lb else lb / la) if la and lb else 0.0,
        *_subject(a, b),
    )


def _subject(a: _Ex, b: _Ex) -> tuple[float, float]:
    sa, sb = a.subject, b.subject
    if not sa or not sb:
        return 0.0, 0.0
    found = (sa in b.weights) + (sb in a.weights)
    heavy = a.weights.get(sa, 0.0) >= _RARE_W and b.weights.get(sb, 0.0) >= _RARE_W
    return float(found), 1.0 if heavy and not found else 0.0


def _actor_conflict(a: _Ex, b: _Ex) -> bool:
    """Different acting countries, neither naming the other's actor at all."""
    aa, ba = a.actors, b.actors
    if not aa or not ba or not aa.isdisjoint(ba):
        return False
    return not _RELAX_ACTOR or (aa.isdisjoint(b.countries) and ba.isdisjoint(a.countries))


def _logit(a: _Ex, b: _Ex, gap_hours: float) -> float:
    """``_BIAS + _COEF · features(a, b, gap_hours)``, or :data:`_NEVER` for a pair that can
    never be one story; written out because it runs for every candidate of every article
    (tests check it against :func:`features`). The shared terms are found once: a title's
    terms are its weighted terms, so they serve the title test and the overlap alike."""
    aw, bw = a.weights, b.weights
    both = aw.keys() & bw.keys()
    common = len(a.title & b.title) if _LEAD else len(both)
    if common < _MIN_TITLE:
        # One shared name is a topic ("Ukraine", "Omicron"), not an event.
        return _NEVER
    ea, eb = a.events, b.events
    agree = not ea.isdisjoint(eb)
    if _VETO and ((ea and eb and not agree)
                  or (a.actors and b.actors and _actor_conflict(a, b))):
        # Another kind of event or another acting country: never one story, however many
        # names they share ("Andersson elected" / "Andersson resigns").
        return _NEVER
    shared, rare, top = _overlap(a, b, both)
    na, nb = a.numbers, b.numbers
    num_shared = not na.isdisjoint(nb)
    la, lb = a.size, b.size
    ta, tb = a.total, b.total
    c = _COEF
    z = (_BIAS + c[0] * 2.0 * shared / (ta + tb)
         + c[1] * shared / (ta if ta < tb else tb)
         + c[2] * math.log1p(shared)
         + c[3] * (common if common < 6 else 6)
         + c[4] * (rare if rare < 4 else 4)
         + c[5] * top / _MAX_W
         + c[11] * math.log1p(gap_hours)
         + c[12] * ((la / lb if la < lb else lb / la) if la and lb else 0.0))
    if num_shared:
        z += c[6]
    elif na and nb:
        z += c[7]
    if agree:
        z += c[8]
    if not _VETO:
        if ea and eb and not agree:
            z += c[9]
        if _actor_conflict(a, b):
            z += c[10]
    sa, sb = a.subject, b.subject
    if sa and sb:
        found = (sa in bw) + (sb in aw)
        if found:
            z += c[13] * found
        elif aw.get(sa, 0.0) >= _RARE_W and bw.get(sb, 0.0) >= _RARE_W:
            z += c[14]
    return z


def same_story_score(a: Exemplar, b: Exemplar, gap: timedelta = timedelta(0)) -> float:
    """How strongly two exemplars report one event: the learnt log-odds over the bar to join a
    story's founder; >= 0 means the same story."""
    return _logit(_Ex(a), _Ex(b), abs(gap.total_seconds()) / 3600.0) - _FOUNDER


@dataclass(slots=True, eq=False)  # one per live story: no per-instance dict; hashed by identity
class _Story:
    sid: str
    sig: Signature
    exemplars: list[_Ex]
    first: int  # microseconds since the epoch (see _us)
    last: int
    outlets: set[str] = field(default_factory=set)
    size: int = 1
    # The founder's weighted terms (exemplars[0].weights): what a candidate must share first.
    founder: dict[str, float] = field(default_factory=dict)
    # Its number in the index: posting lists hold numbers (ints, which the cyclic collector
    # does not track) rather than the stories themselves.
    num: int = 0


# The decision in C, when the extension is built (watchers/stories/_cstories.c): _best and
# _logit over the same slots, with the constants above read from this module's globals at each
# call (bench/stories_train.py changes them), computing the same floats in the same order and
# so choosing the same story. NotImplemented from either: something it does not mirror (int
# weights, lead terms on, ...), which the Python code below then decides. Measured on the 3,000
# corpus articles of bench/stories_ingest.py over 1,000 live stories (callgrind), assign() takes
# 84k instructions an article with it and 141k without (_best alone: 79k in Python); CPU time
# 13 µs an article instead of 22.
_SCORER: Any = None if _CSTORIES is None else getattr(_CSTORIES, "Scorer", None)
if _SCORER is not None:
    _SCORER = _SCORER(_Ex, _Story, globals())
_cbest: Callable[[_Ex, int, dict[str, dict[int, None]], dict[int, _Story], int], Any] | None = (
    None if _SCORER is None else _SCORER.best)
_clogit: Callable[[_Ex, _Ex, float], Any] | None = None if _SCORER is None else _SCORER.logit


class StoryIndex:
    """Live stories within the window; see the module docstring for the invariants."""

    def __init__(self, window: timedelta = DEFAULT_WINDOW) -> None:
        if window <= timedelta(0):
            raise ValueError("the story window must be positive")
        self.window = window
        self._window = window // _ONE_US
        self._lock = threading.Lock()
        self._stories: dict[str, _Story] = {}
        # term -> the numbers of the stories holding it, least recently updated first; a
        # number is the story's key in _numbered (a dict of ints to None is left out of the
        # cyclic collector, one of stories is not).
        self._postings: dict[str, dict[int, None]] = {}
        self._numbered: dict[int, _Story] = {}
        self._numbers = itertools.count(1)
        self._expiry: list[tuple[int, str]] = []
        self._newest: int | None = None

    def __len__(self) -> int:
        return len(self._stories)

    # ------------------------------------------------------------------ public

    def assign(self, article_id: str, sig: Signature, when: datetime, outlet: str
               ) -> tuple[str, bool]:
        """The id of the story the article joins, and True when it starts a new story."""
        sid, started, _ = self.place(article_id, sig, when, outlet)
        return sid, started

    def place(self, article_id: str, sig: Signature, when: datetime, outlet: str, *,
              dated: bool = True) -> tuple[str, bool, Signature]:
        """:meth:`assign`, and the story's signature with the article in it (what
        :meth:`story_signature` would say next), read under the same lock.

        ``dated`` False: ``when`` is not the article's own date but the time it was read (it
        has none), so a story it starts is named without a time (see :func:`story_id_for`):
        read again later (an import run again after a stop, a poll again after a crash), it
        names the story as it did, and its copies join the story it is stored in."""
        if when.tzinfo is None:
            raise ValueError("'when' must be timezone-aware")
        at = (when - _EPOCH) // _ONE_US  # _us(when), inline: once an article
        exemplars = sig.exemplars
        with self._lock:
            self._advance(at)
            # An article's signature has one exemplar (a story's several).
            mine = [_Ex(exemplars[0])] if len(exemplars) == 1 else [_Ex(ex) for ex in exemplars]
            best = self._best(mine[0], at) if mine else None
            if best is None:
                sid = _story_id(article_id, at) if dated else story_id_for(article_id)
                again = self._stories.get(sid)
                if again is None:
                    self._add(sid, sig, at, at, (outlet,), size=1, ready=mine)
                    return sid, True, sig
                best = again  # the same article again: it belongs where it started
            self._join(best, sig, at, outlet, mine)
            return best.sid, False, best.sig

    def story_signature(self, story_id: str) -> Signature | None:
        with self._lock:
            st = self._stories.get(story_id)
            return st.sig if st is not None else None

    def story_outlets(self, story_id: str) -> frozenset[str]:
        with self._lock:
            st = self._stories.get(story_id)
            return frozenset(st.outlets) if st is not None else frozenset()

    def restore(self, story_id: str, sig: Signature, first_seen: datetime,
                last_seen: datetime, outlets: Sequence[str] = ()) -> None:
        """Rebuild a live story at start-up from what the store persisted."""
        if first_seen.tzinfo is None or last_seen.tzinfo is None:
            raise ValueError("first_seen and last_seen must be timezone-aware")
        first, last = _us(first_seen), _us(last_seen)
        if last < first:
            first, last = last, first
        with self._lock:
            self._advance(last)
            if story_id in self._stories:
                self._drop(story_id)
            self._add(story_id, sig, first, last, outlets, size=max(1, len(sig.exemplars)))

    # ------------------------------------------------------------------ internals

    def _advance(self, at: int) -> None:
        newest = self._newest
        if newest is None or at > newest:
            newest = self._newest = at
        horizon = newest - self._window
        heap = self._expiry
        while heap and heap[0][0] < horizon:
            last, sid = heapq.heappop(heap)
            st = self._stories.get(sid)
            if st is not None and st.last == last:
                self._drop(sid)

    def _best(self, a: _Ex, at: int) -> _Story | None:
        if _cbest is not None:
            # The same decision in C (see _cbest), unless it leaves this one to the code below.
            got = _cbest(a, at, self._postings, self._numbered, self._window)
            if got is not NotImplemented:
                return cast("_Story | None", got)
        # The rarest terms, ties by term (descending), as the candidates were always found.
        lookup = sorted([(w, t) for t, w in a.weights.items() if w >= _INDEX_MIN],
                        reverse=True)[:_LOOKUP_TERMS]
        # Candidates: the stories that most of the article's rarest terms find, ties in the
        # order found (most recently active first, term by term); the exact score is computed
        # for the few best only.
        postings = self._postings
        seen: list[int] = []
        for _, t in lookup:
            ids = postings.get(t)
            if ids:
                seen += islice(reversed(ids), _POSTING_SCAN)
        if len(seen) <= _SCORED:
            if not seen:
                return None
            numbers: Iterable[int] = dict.fromkeys(seen)
        else:
            found = dict.fromkeys(seen, 0)
            if len(found) == len(seen):
                # Each found once (the common case): the first few found.
                numbers = seen[:_SCORED]
            else:
                for num in seen:
                    found[num] += 1
                # The same few as Counter.most_common: most terms first, ties in the order
                # found (a stable sort).
                numbers = [num for num, _ in sorted(found.items(), key=_COUNT, reverse=True)
                           [:_SCORED]]
        chosen = map(self._numbered.__getitem__, numbers)
        best: _Story | None = None
        best_score = _JOIN
        window = self._window
        terms = a.weights.keys()
        for st in chosen:
            first, last = st.first, st.last
            if at < first - window or at > last + window:
                continue
            if len(terms & st.founder.keys()) < _MIN_TITLE:
                # What _logit says first of most candidates, without its call: too few terms
                # shared with the founder (a title's terms are among the weighted ones).
                continue
            exs = st.exemplars
            founder = _logit(a, exs[0], _hours(at - first))
            if founder < _FOUNDER:
                continue
            score = founder
            if len(exs) > 1:
                gap = _hours(at - last)
                for b in exs[1:]:
                    z = _logit(a, b, gap)
                    if z > score:
                        score = z
            if score < best_score or (best is not None
                                      and (score, st.sid) <= (best_score, best.sid)):
                continue
            best, best_score = st, score
        return best

    def _add(self, sid: str, sig: Signature, first: int, last: int,
             outlets: Sequence[str], size: int, ready: list[_Ex] | None = None) -> None:
        exs = ready if ready is not None else [_Ex(ex) for ex in sig.exemplars]
        num = next(self._numbers)
        named = set(outlets)
        named.discard("")
        st = _Story(sid, sig, exs, first, last, named, size, exs[0].weights if exs else {}, num)
        untrack(st, sig, st.outlets, exs, *exs)
        self._stories[sid] = st
        self._numbered[num] = st
        postings = self._postings
        for ex in exs:
            _post(postings, num, ex.weights, False)
        heapq.heappush(self._expiry, (last, sid))

    def _join(self, st: _Story, sig: Signature, when: int, outlet: str,
              mine: list[_Ex]) -> None:
        sid = st.sid
        old = st.sig.exemplars
        st.sig = st.sig.merged(sig, _EXEMPLARS)
        untrack(st.sig)
        new = st.sig.exemplars
        st.size += 1
        if outlet:
            st.outlets.add(outlet)
        if when < st.first:
            st.first = when
        if when > st.last:
            st.last = when
            heapq.heappush(self._expiry, (when, sid))
        if new == old:
            return
        # merged() keeps the very exemplar objects it was given: which is which by identity
        # (hashing an exemplar hashes every term of it).
        was = {id(ex): e for ex, e in zip(old, st.exemplars, strict=True)}
        ready = dict(was)
        for ex, e in zip(sig.exemplars, mine, strict=True):
            ready.setdefault(id(ex), e)
        st.exemplars = [ready.get(id(ex)) or _Ex(ex) for ex in new]
        untrack(st.exemplars, *st.exemplars)
        st.founder = st.exemplars[0].weights
        kept = {id(ex) for ex in new}
        postings = self._postings
        dropped = [e for i, e in was.items() if i not in kept]
        if dropped:
            remaining = {t for e in st.exemplars for t in e.weights}
            for e in dropped:
                for t in e.weights:
                    if t not in remaining:
                        self._unpost(t, st)
        num = st.num
        for ex, e in zip(new, st.exemplars, strict=True):
            if id(ex) not in was:
                # Moved to the end: lookups scan the most recently active stories first.
                _post(postings, num, e.weights, True)

    def _unpost(self, term: str, st: _Story) -> None:
        ids = self._postings.get(term)
        if ids is not None:
            ids.pop(st.num, None)
            if not ids:
                del self._postings[term]

    def _drop(self, sid: str) -> None:
        st = self._stories.pop(sid)
        num = st.num
        del self._numbered[num]
        # _unpost of each term, inline: an import drops nearly every story it starts, each
        # of a dozen terms or more, and the call per term cost as much as the unposting.
        postings = self._postings
        exs = st.exemplars
        for t in (exs[0].weights if len(exs) == 1 else {t for e in exs for t in e.weights}):
            ids = postings.get(t)
            if ids is not None:
                ids.pop(num, None)
                if not ids:
                    del postings[t]
