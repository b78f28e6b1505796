"""Live stories within a time window, and the decision whether an article joins one.

The decision: the article's rarest terms find candidate stories through posting lists (most
recently active first); each candidate is scored by its closest exemplar (weighted Dice of the
terms, over :data:`_DICE`), which must share at least :data:`_MIN_COMMON` terms, two of them in
both titles, and must not name another kind of event or another acting country; the founder's
own score must reach :data:`_FOUNDER`, so a saga cannot chain from event to event. The best
candidate scoring at least 1 (a little more beyond :data:`_NEAR`) wins; none: a new story.

Invariants:

- Every assigned article gets exactly one story id; a story's id is the id its founding article
  gives through :func:`story_id_for`, so replaying the same articles gives the same ids.
- An article joins a story only if its date lies within ``window`` of the story's span
  (``first - window <= when <= last + window``): the dates of a story's articles, sorted, are
  never more than ``window`` apart from one to the next.
- Candidate lookup is indexed: an article looks at most :data:`_POSTING_SCAN` stories per term
  for at most :data:`_LOOKUP_TERMS` of its terms and scores at most :data:`_SCORED` of them, so
  its cost does not grow with the number of live stories.
- Stories whose last article is older than ``window`` before the newest date seen are dropped,
  so memory is bounded by the stories of one window.
- ``assign`` and ``restore`` hold one lock: two threads may call them at once.
"""

from __future__ import annotations

import hashlib
import heapq
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice

from watchers.stories.features import ACTOR_MARK, EVENT_MARK, Exemplar, Signature

__all__ = ["DEFAULT_WINDOW", "StoryIndex", "same_story_score", "story_id_for"]

DEFAULT_WINDOW = timedelta(hours=48)

# Candidate search bounds (see the module invariants).
_LOOKUP_TERMS = 6
_POSTING_SCAN = 32
_SCORED = 8
# Terms lighter than this are not looked up: they would only find stories by grammar.
_INDEX_MIN = 1.0

# The decision (tuned on the even half of the labelled set; see bench/stories_eval.py).
# Weighted Dice coefficient of the two exemplars' terms (shared weight over mean weight).
_DICE = 0.33
# Beyond this gap between the article and a story's nearest article the bar is raised.
_NEAR = timedelta(hours=24)
_FAR_PENALTY = 0.1
# Every article must also be this close to the story's founder: single link over the exemplars
# alone lets a saga chain from one event to the next ("missing" → "reappears" → "video call").
_FOUNDER = 0.6
# What the same kind of event, however worded, adds to the shared weight.
_EVENT_W = 1.5
# Terms both titles name (not only their leads).
_MIN_TITLE = 2
# Terms in common (the kind of event counts as one): one or two is a topic ("Omicron",
# "Peng Shuai"), not an event.
_MIN_COMMON = 3


def story_id_for(article_id: str) -> str:
    """The id of the story an article starts: stable, short, and not the article's own id."""
    return "s" + hashlib.blake2b(article_id.encode("utf-8"), digest_size=8).hexdigest()


class _Ex:
    """One exemplar, ready to compare: weighted terms, their total, and its marks."""

    __slots__ = ("actors", "events", "title", "total", "weights")

    def __init__(self, exemplar: Exemplar) -> None:
        weights: dict[str, float] = {}
        title: list[str] = []
        events: list[str] = []
        actors: list[str] = []
        for t, w in exemplar:
            if w > 0:
                weights[t] = w
                title.append(t)
            elif w:
                weights[t] = -w
            elif t[0] == EVENT_MARK:
                events.append(t)
            elif t[0] == ACTOR_MARK:
                actors.append(t)
        self.weights = weights
        self.title = frozenset(title)
        self.total = sum(weights.values())
        self.events = frozenset(events)
        self.actors = frozenset(actors)


def _score(a: _Ex, b: _Ex) -> float:
    if len(a.weights) > len(b.weights):
        a, b = b, a
    shared = 0.0
    common = 0
    other = b.weights
    for t, w in a.weights.items():
        v = other.get(t)
        if v is not None:
            shared += w if w < v else v
            common += 1
    if a.events & b.events:
        # The same kind of event however it is worded ("plunges" / "drops") is one more
        # thing in common.
        shared += _EVENT_W
        common += 1
    if common < _MIN_COMMON:
        return 0.0
    if _MIN_TITLE and len(a.title & b.title) < _MIN_TITLE:
        # Leads share a page's furniture and a topic's vocabulary; titles name the event.
        return 0.0
    # Different kinds of event, or different acting countries: never one story.
    if a.events and b.events and not (a.events & b.events):
        return 0.0
    if a.actors and b.actors and not (a.actors & b.actors):
        return 0.0
    return 2.0 * shared / (a.total + b.total) / _DICE


def same_story_score(a: Exemplar, b: Exemplar) -> float:
    """How strongly two exemplars report one event; >= 1 means the same story."""
    return _score(_Ex(a), _Ex(b))


@dataclass
class _Story:
    sig: Signature
    exemplars: list[_Ex]
    first: datetime
    last: datetime
    outlets: set[str] = field(default_factory=set)
    size: int = 1


class StoryIndex:
    """Live stories within the window; see the module docstring for the invariants."""

    def __init__(self, window: timedelta = DEFAULT_WINDOW) -> None:
        if window <= timedelta(0):
            raise ValueError("the story window must be positive")
        self.window = window
        self._lock = threading.Lock()
        self._stories: dict[str, _Story] = {}
        # term -> story ids holding it, least recently updated first.
        self._postings: dict[str, dict[str, None]] = {}
        self._expiry: list[tuple[datetime, str]] = []
        self._newest: datetime | None = None

    def __len__(self) -> int:
        return len(self._stories)

    # ------------------------------------------------------------------ public

    def assign(self, article_id: str, sig: Signature, when: datetime, outlet: str
               ) -> tuple[str, bool]:
        """The id of the story the article joins, and True when it starts a new story."""
        if when.tzinfo is None:
            raise ValueError("'when' must be timezone-aware")
        with self._lock:
            self._advance(when)
            mine = [_Ex(ex) for ex in sig.exemplars]
            best = self._best(mine, when)
            if best is None:
                sid = story_id_for(article_id)
                if sid not in self._stories:
                    self._add(sid, sig, when, when, (outlet,), size=1, ready=mine)
                    return sid, True
                best = sid  # the same article again: it belongs where it started
            self._join(best, sig, when, outlet)
            return best, False

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
        if last_seen < first_seen:
            first_seen, last_seen = last_seen, first_seen
        with self._lock:
            self._advance(last_seen)
            if story_id in self._stories:
                self._drop(story_id)
            self._add(story_id, sig, first_seen, last_seen, outlets,
                      size=max(1, len(sig.exemplars)))

    # ------------------------------------------------------------------ internals

    def _advance(self, when: datetime) -> None:
        if self._newest is None or when > self._newest:
            self._newest = when
        horizon = self._newest - self.window
        heap = self._expiry
        while heap and heap[0][0] < horizon:
            last, sid = heapq.heappop(heap)
            st = self._stories.get(sid)
            if st is not None and st.last == last:
                self._drop(sid)

    def _best(self, mine: list[_Ex], when: datetime) -> str | None:
        if not mine:
            return None
        weights: dict[str, float] = {}
        for ex in mine:
            for t, w in ex.weights.items():
                if w > weights.get(t, 0.0):
                    weights[t] = w
        lookup = heapq.nlargest(_LOOKUP_TERMS, (t for t, w in weights.items() if w >= _INDEX_MIN),
                                key=lambda t: (weights[t], t))
        # Candidates: the stories that most of the article's rarest terms find, counted at C
        # speed; the exact score is computed for the few best only.
        found: Counter[str] = Counter()
        postings = self._postings
        for t in lookup:
            ids = postings.get(t)
            if ids:
                found.update(islice(reversed(ids), _POSTING_SCAN))
        if not found:
            return None
        best, best_score = None, 1.0
        window = self.window
        for sid, _ in found.most_common(_SCORED):
            st = self._stories[sid]
            if when < st.first - window or when > st.last + window:
                continue
            gap = st.first - when if when < st.first else max(timedelta(0), when - st.last)
            bar = 1.0 + (_FAR_PENALTY if gap > _NEAR else 0.0)
            if len(mine) == 1:
                a = mine[0]
                per = [_score(a, b) for b in st.exemplars]
            else:
                per = [max(_score(a, b) for a in mine) for b in st.exemplars]
            score = max(per)
            if score < bar or per[0] < _FOUNDER:
                continue
            if best is not None and (score, sid) <= (best_score, best):
                continue
            best, best_score = sid, score
        return best

    def _add(self, sid: str, sig: Signature, first: datetime, last: datetime,
             outlets: Sequence[str], size: int, ready: list[_Ex] | None = None) -> None:
        st = _Story(sig, ready if ready is not None else [_Ex(ex) for ex in sig.exemplars],
                    first, last,
                    {o for o in outlets if o}, size)
        self._stories[sid] = st
        for t in sig.terms():
            self._postings.setdefault(t, {})[sid] = None
        heapq.heappush(self._expiry, (last, sid))

    def _join(self, sid: str, sig: Signature, when: datetime, outlet: str) -> None:
        st = self._stories[sid]
        old = st.sig.exemplars
        st.sig = st.sig.merged(sig)
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
        ready = dict(zip(old, st.exemplars, strict=True))
        st.exemplars = [ready.get(ex) or _Ex(ex) for ex in new]
        kept = set(new)
        postings = self._postings
        dropped = [ex for ex in old if ex not in kept]
        if dropped:
            remaining = {t for e in st.exemplars for t in e.weights}
            for ex in dropped:
                for t, _ in ex:
                    if t not in remaining:
                        self._unpost(t, sid)
        for ex in new:
            if ex in ready:
                continue
            for t, w in ex:
                if w:
                    # Moved to the end: lookups scan the most recently active stories first.
                    ids = postings.setdefault(t, {})
                    ids.pop(sid, None)
                    ids[sid] = None

    def _unpost(self, term: str, sid: str) -> None:
        ids = self._postings.get(term)
        if ids is not None:
            ids.pop(sid, None)
            if not ids:
                del self._postings[term]

    def _drop(self, sid: str) -> None:
        st = self._stories.pop(sid)
        for t in st.sig.terms():
            self._unpost(t, sid)
