"""Evaluating a parsed query against an article and collecting the evidence.

:class:`Analysis` tokenises an article's fields once; :class:`Evaluator` walks a query's AST over
it, resolving each term to the tokens it hits. The compiled :class:`~watchers.rules.RuleSet` and
the naive reference loop (:func:`match_query`) share this code, so they can only differ in which
rules they try, never in what a rule yields.

Regular expressions, and in a rule set phrases with slop or with a prefix or fuzzy word (every
window of a long article), are the parts whose cost a rule's author controls, so they run
against a :class:`RegexBudget`: a total time for that work of every rule over one article
(:data:`REGEX_BUDGET`, 0.1 s, unless the caller passes its own; a rule set gives each owner of
rules — a server, by the ``<id>:`` of its rules' keys — a budget of its own). A regex or such a
phrase that would overrun it is stopped or not started; either counts as not matching, and the
rule is reported as over budget. A lookup bounds its phrases by its own deadline instead (see
:func:`match_query`'s ``phrase_budget``). Only a rule set whose rules overrun can differ from
the naive loop, which spends the budget on other rules first, and in which each rule finds its
regexes' spans afresh: in a rule set, a rule whose owner's budget is spent still reads the
spans another rule found for the same pattern (they cost nothing more), where the naive loop
reports it over budget.
"""

from __future__ import annotations

import bisect
import math
import operator
import re
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from itertools import islice
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from pydantic import BaseModel

from ..models import Article, Decision, Hit, HitKind, Match
from .syntax import And, Near, Node, Not, Or, Phrase, Regex, Term, parse
from .text import FieldText
from .variants import Aliases, Verdict, compare, compound_splits, shipped_aliases

if TYPE_CHECKING:
    import regex

__all__ = [
    "DEFAULT_FIELDS",
    "DEFAULT_THRESHOLD",
    "FIELD_WEIGHTS",
    "MAX_HITS",
    "REGEX_BUDGET",
    "Analysis",
    "Evaluator",
    "RegexBudget",
    "match_query",
]

DEFAULT_THRESHOLD: Final = 85
DEFAULT_FIELDS: Final = ("title", "text")
# A hit in the title says more about what an article is about than one deep in the text.
FIELD_WEIGHTS: Final = {"title": 2.0, "text": 1.0, "source": 0.5, "url": 0.5}
_FIELD_RANK: Final = {"title": 0, "text": 1, "source": 2, "url": 3}
_FIELD_WEIGHT: Final = tuple(FIELD_WEIGHTS[f] for f in _FIELD_RANK)  # by field rank
# Evidence kept per match (the score still counts every hit).
MAX_HITS: Final = 100
# Seconds that all regexes together may spend on one article (or one match_query call).
REGEX_BUDGET: Final = 0.1
_EXACT: Final = Verdict("exact", 100.0)
_ALIAS: Final = Verdict("alias", 100.0)
_KIND_RANK: Final = {"exact": 0, "prefix": 1, "alias": 2, "fuzzy": 3, "regex": 4}


class RegexBudget:
    """Time that regular expressions may spend, shared by every regex run against it.

    A rule set makes one per article; a lookup over many articles may pass one to every
    :func:`match_query` call so the whole lookup has one limit, then read :attr:`exhausted` to
    say that it was cut short. Not thread-safe: one caller at a time.
    """

    __slots__ = ("exhausted", "seconds", "spent")

    def __init__(self, seconds: float = REGEX_BUDGET) -> None:
        # (finite: the regex module takes a timeout of infinity for none left, and every regex
        # rule then matched nothing)
        if not 0 < seconds < math.inf:
            raise ValueError("a regex budget must be a positive, finite number of seconds, "
                             f"not {seconds}")
        self.seconds = float(seconds)
        self.spent = 0.0
        self.exhausted = False  # a regex was stopped or skipped for want of time

    @property
    def remaining(self) -> float:
        return self.seconds - self.spent

    def spans(
        self,
        rx: regex.Pattern[str],
        text: str,
        starts: Sequence[int] | None = None,
        pos: int = 0,
    ) -> list[tuple[int, int]] | None:
        """The non-empty match spans of ``rx`` in ``text``, or None when the budget ran out.

        ``starts``, when given, are the only places (ascending) where a match may begin: the
        pattern is tried at each of them instead of searched for, with the same result. A
        caller that knows no match begins before ``pos`` may say so, and the search starts
        there.
        """
        left = self.seconds - self.spent
        if left <= 0:
            self.exhausted = True
            return None
        if starts is not None and not starts:
            return []
        start = time.perf_counter()
        try:
            if starts is None:
                found = [
                    m.span() for m in rx.finditer(text, pos, timeout=left) if m.end() > m.start()
                ]
            else:
                found = _spans_at(rx, text, starts, start + left)
        except TimeoutError:
            # A pattern that takes this long is pathological (or the article is); it counts as
            # not matching rather than stalling every other rule.
            self.exhausted = True
            self.spent = self.seconds
            return None
        self.spent += time.perf_counter() - start
        return found


def _spans_at(
    rx: regex.Pattern[str], text: str, starts: Sequence[int], deadline: float
) -> list[tuple[int, int]]:
    """What ``rx.finditer`` finds in ``text`` (non-empty spans) when every match begins at one
    of ``starts`` (ascending); TimeoutError past ``deadline`` (a ``perf_counter`` time).

    finditer's matches are leftmost and do not overlap: the first place at or after the end of
    the last match where the pattern matches starts the next one. A match at a place is what
    the search would find there, as ``pos`` moves where matching begins, not where the text
    does (lookbehinds and ``\\b`` still see what is before it, ``^`` still means the start).
    """
    found: list[tuple[int, int]] = []
    end = 0
    match = rx.match
    clock = time.perf_counter
    # A pattern whose one attempt at a place is bounded (see _attempt_steps) is tried without
    # the regex module's timeout while the budget left holds that bound many times over: the
    # timeout reads the process's CPU clock twice per call (two system calls, costing more
    # than the attempt), and such an attempt cannot overrun by more than its bound. One that
    # ends past the deadline all the same counts as stopped by it.
    bounded = _BOUNDED.get(id(rx))
    untimed = -1.0  # seconds left above which an attempt runs untimed; never, as a rule
    overrun = False  # whether an untimed attempt ran, which may have passed the deadline
    # Such an attempt also keeps the interpreter lock (concurrent=False, the fourth argument;
    # by position, as keywords cost a tenth of the call) while its bound is short: the regex
    # module otherwise lets the lock go for each call on a str and takes it back after, which
    # beside a busy thread (the event loop, the database's) waits up to the switch interval,
    # 5 ms, for every place tried. A timed attempt, or a search, lets it go, so that a slow
    # one (a lookup's catastrophic pattern, run for seconds) never holds the other threads up.
    keep = None
    if bounded is not None and bounded[0] is rx:
        untimed = (bounded[1] + bounded[2] * len(text)) * _SECONDS_PER_STEP
        if untimed <= _KEEP_LOCK_S:
            keep = False
    for p in starts:
        if p < end:
            continue
        left = deadline - clock()
        if left <= 0:
            raise TimeoutError
        if 0 <= untimed < left:
            m = match(text, p, None, keep)
            overrun = True  # the next reading of the clock tells
        else:
            m = match(text, p, timeout=left)
        if m is not None:
            s, e = m.span()
            if e == s:
                # An empty match moves finditer on differently; none is possible when each
                # match holds a literal, but the plain search is the one to trust.
                left = deadline - clock()
                if left <= 0:
                    raise TimeoutError
                return [m.span() for m in rx.finditer(text, timeout=left) if m.end() > m.start()]
            found.append((s, e))
            end = e
    if overrun and clock() > deadline:
        raise TimeoutError
    return found


class Analysis:
    """An article's fields, tokenised on first use and kept for every rule that asks."""

    __slots__ = ("_fields", "_keys", "article")

    def __init__(self, article: Article) -> None:
        self.article = article
        self._fields: dict[str, FieldText] = {}
        self._keys: dict[tuple[str, ...], set[str]] = {}

    def field(self, name: str) -> FieldText:
        try:
            return self._fields[name]
        except KeyError:
            ft = self._fields[name] = FieldText.of(self.article.field(name))
            return ft

    def key_set(self, fields: tuple[str, ...]) -> set[str]:
        """The keys of the tokens of ``fields``, made once: the rule index and the C engine's
        fuzzy terms both read them. Shared, so no caller may change it."""
        keys = self._keys.get(fields)
        if keys is None:
            keys = self._keys[fields] = set()
            for name in fields:
                keys.update(self.field(name).keys)
        return keys

    def relabelled(self, article: Article) -> Analysis:
        """An analysis of ``article`` — this article under another source name — that shares
        the fields already tokenised except the source."""
        other = Analysis(article)
        other._fields = {k: v for k, v in self._fields.items() if k != "source"}
        return other


# Evidence while evaluating is kept in plain tuples, and a rule's Hit models are built only when
# it matches: many candidate rules fail, and building a model costs more than finding a word.
# A raw hit: (field rank, start, end, term, field, kind, score, variant).
_RawHit = tuple[int, int, int, str, str, HitKind, float, "str | None"]
# An occurrence of a positional node: (field rank, first position, last position, raw hits).
_Occ = tuple[int, int, int, tuple[_RawHit, ...]]
_BY_PLACE = itemgetter(0, 1, 2)


def _widest(occurrences: list[_Occ]) -> list[_Occ]:
    """The occurrences whose span no other one's contains (the first of equal spans), each
    with one other occurrence inside it, if there is one (an occurrence is never near itself,
    but is near one inside it), in order of place: at most two per field and first position."""
    kept: list[_Occ] = []
    inner: dict[int, _Occ] = {}  # by the number of the one kept
    for occ in sorted(occurrences, key=lambda o: (o[0], o[1], -o[2])):
        if kept and kept[-1][0] == occ[0] and kept[-1][2] >= occ[2]:
            # inside the last one kept, which starts no later and ends no sooner
            if occ[3] != kept[-1][3]:
                inner.setdefault(len(kept) - 1, occ)
            continue
        kept.append(occ)
    out = kept + list(inner.values())
    out.sort(key=_BY_PLACE)
    return out


def _pairs(left: list[_Occ], right: list[_Occ], n: int, *, widest: bool = False,
           sides: bool = False) -> list[_Occ]:
    """The pairs of ``left`` and ``right`` occurrences within ``n`` of each other, as
    :meth:`Evaluator._near` gives them (see there for ``widest`` and ``sides``)."""
    by_field: dict[int, list[_Occ]] = {}
    for r in right:
        by_field.setdefault(r[0], []).append(r)
    if sides:
        return _near_sides(left, right, by_field, n)
    starts = {f: [r[1] for r in rs] for f, rs in by_field.items()}
    longest = {f: max(r[2] - r[1] for r in rs) for f, rs in by_field.items()}
    out: list[_Occ] = []
    for lo in left:
        rank, l_pos, l_last, l_hits = lo
        rs = by_field.get(rank)
        if not rs:
            continue
        if widest:
            for r in _widest_partners(rs, starts[rank], longest[rank], lo, n):
                out.append((rank, min(l_pos, r[1]), max(l_last, r[2]), l_hits + r[3]))
            continue
        # A right occurrence near lo ends at or after l_pos - n, so it starts no earlier
        # than that minus the longest right span.
        j = bisect.bisect_left(starts[rank], l_pos - n - longest[rank])
        for r in rs[j:]:
            if r[1] > l_last + n:
                break
            if r[2] < l_pos - n or r[3] == l_hits:  # an occurrence is never near itself
                continue
            out.append((rank, min(l_pos, r[1]), max(l_last, r[2]), l_hits + r[3]))
    out.sort(key=_BY_PLACE)
    return out


def _near_sides(left: list[_Occ], right: list[_Occ], by_field: dict[int, list[_Occ]],
                n: int) -> list[_Occ]:
    """:meth:`Evaluator._near` with ``sides``: the left occurrences that have a partner on the
    right (in their order), then the right ones that have one on the left (in theirs, each
    object once), in order of place.

    ``l`` and ``r`` are a pair when ``r[1] <= l[2] + n``, ``r[2] >= l[1] - n`` and their hits
    differ: the relation is the same read from either side. Whether ``l`` has one: of the right
    occurrences that start early enough (a prefix, in order of start), does one end late
    enough with other hits? The prefix's latest end, and the latest end of those whose hits
    differ from that one's, say."""
    rights = {f: _prefix_ends(rs) for f, rs in by_field.items()}
    out = [lo for lo in left if _has_partner(lo, rights.get(lo[0]), n)]
    by_rank: dict[int, list[_Occ]] = {}
    for lo in sorted(left, key=_START):
        by_rank.setdefault(lo[0], []).append(lo)
    lefts = {f: _prefix_ends(ls) for f, ls in by_rank.items()}
    numbers = {id(r): k for k, r in enumerate(right)}
    paired = {numbers[id(r)] for r in right if _has_partner(r, lefts.get(r[0]), n)}
    out.extend(right[k] for k in sorted(paired))
    out.sort(key=_BY_PLACE)
    return out


_START: Final = itemgetter(1)
# For one field's occurrences in order of start: their starts, and per prefix of them the
# latest end, the hits of the first that ends then, and the latest end of those whose hits
# differ from these.
_Prefix = tuple[list[int], list[int], list[tuple[_RawHit, ...]], list[int]]


def _prefix_ends(occs: list[_Occ]) -> _Prefix:
    starts: list[int] = []
    best: list[int] = []
    holder: list[tuple[_RawHit, ...]] = []
    other: list[int] = []
    m1 = m2 = -(1 << 62)
    h1: tuple[_RawHit, ...] | None = None
    for o in occs:
        v, h = o[2], o[3]
        if h1 is None:
            m1, h1 = v, h
        elif v > m1:
            if h != h1:
                m2 = m1
            m1, h1 = v, h
        elif v > m2 and h != h1:
            m2 = v
        starts.append(o[1])
        best.append(m1)
        holder.append(h1)
        other.append(m2)
    return starts, best, holder, other


def _has_partner(occ: _Occ, others: _Prefix | None, n: int) -> bool:
    """Whether ``occ`` has a partner among the occurrences of its field that ``others`` sums
    up (see :func:`_prefix_ends`): one that starts at most ``n`` after ``occ`` ends and ends
    at most ``n`` before it starts, with other hits."""
    if others is None:
        return False
    starts, best, holder, other = others
    k = bisect.bisect_right(starts, occ[2] + n)
    if k == 0:
        return False
    floor = occ[1] - n
    if holder[k - 1] != occ[3]:
        return best[k - 1] >= floor
    return other[k - 1] >= floor


def _widest_partners(rs: list[_Occ], starts: list[int], longest: int, lo: _Occ, n: int
                     ) -> Iterable[_Occ]:
    """:meth:`Evaluator._near` with ``widest``, for one left occurrence ``lo``: of the right
    occurrences ``rs`` of its field (in order of start) that pair with it, the first, the one
    that ends last (the first of those) and the second, each once.

    Only three places are looked at, not every partner: those that start before ``lo``'s
    reach (``floor``) but may end inside it, then the first two that start inside it (every one
    of those ends late enough; only ``lo`` itself is not its own partner); and for the last,
    those that start within the longest span before the last partner's start (one that starts
    earlier ends before that one does)."""
    _, l_pos, l_last, l_hits = lo
    floor = l_pos - n
    j = bisect.bisect_left(starts, floor - longest)
    k = bisect.bisect_right(starts, l_last + n)
    first: _Occ | None = None
    second: _Occ | None = None
    for i in range(j, k):
        r = rs[i]
        if r[2] >= floor and r[3] != l_hits:
            if first is None:
                first = r
            else:
                second = r
                break
    if first is None:
        return ()
    p = k - 1
    while rs[p][2] < floor or rs[p][3] == l_hits:
        p -= 1  # ends at the first partner at the latest
    last: _Occ | None = None
    for i in range(max(j, bisect.bisect_left(starts, starts[p] - longest)), p + 1):
        r = rs[i]
        if r[2] >= floor and r[3] != l_hits and (last is None or r[2] > last[2]):
            last = r
    return dict.fromkeys(x for x in (first, last, second) if x is not None)


def _holds_near(node: Node) -> bool:
    if isinstance(node, Near):
        return True
    if isinstance(node, (And, Or)):
        return any(_holds_near(c) for c in node.children)
    if isinstance(node, Not):
        return _holds_near(node.child)
    return False
_BY_SIG = itemgetter(0, 1, 2, 3)
_BEFORE = operator.lt
_NONE: list[_Occ] = []  # shared empty result; never mutated
_UNSEEN: Final = object()  # a cache's answer for a key it does not hold (None is an answer)

# A term's resolution: per field, (token number, verdict) pairs in token order.
FuzzyCandidates = Mapping[tuple[str, float], Iterable[str]]


class RegexFields:
    """Where a rule index's regex screen found each of its regexes possible, field by field.

    :meth:`~.index.RuleIndex.candidates` fills it; an evaluator given it finds no match of a
    screened regex in a field where the screen found it impossible (one of the strings every
    match holds is not there) without trying it. A regex the screen did not see (one inside a
    rule anchored on a word) is tried as ever.
    """

    __slots__ = ("fields", "screened")

    def __init__(self) -> None:
        self.screened: frozenset[str] = frozenset()
        self.fields: dict[str, set[str]] = {}

    def learn(self, screened: frozenset[str], fields: dict[str, set[str]]) -> None:
        self.screened = screened
        self.fields = fields

    def impossible(self, pattern: str, field: str) -> bool:
        """Whether the screen found ``pattern`` unable to match ``field``."""
        if pattern not in self.screened:
            return False
        possible = self.fields.get(field)
        return possible is not None and pattern not in possible


class Evaluator:
    """Evaluates rules over one :class:`Analysis`, caching each term's resolution.

    ``fuzzy_candidates`` (from a compiled rule set) maps a fuzzy term's (key, threshold) to the
    article's token keys that may match it; without it every token is compared. Either way the
    verdict comes from :func:`~watchers.rules.variants.compare`.

    ``plain_words`` caches, per word key, whether it is a plain word (no alias group, no compound
    reading); a rule set passes one dict to all its evaluators, as its aliases are fixed.
    """

    def __init__(
        self,
        analysis: Analysis,
        aliases: Aliases | None,
        fuzzy_candidates: FuzzyCandidates | None = None,
        plain_words: dict[str, bool] | None = None,
        budget: RegexBudget | None = None,
        *,
        phrases_spend: bool = False,
        regex_fields: RegexFields | None = None,
        phrase_budget: RegexBudget | None = None,
    ) -> None:
        self.analysis = analysis
        self._regex_fields = regex_fields
        self.budget = RegexBudget() if budget is None else budget
        # Whether phrases with slop or a prefix or fuzzy word spend the budget too: a rule
        # set's (each owner's rules bounded), not a lookup's (bounded by its own deadline; a
        # 50 ms share would cut a legitimate phrase short on a long article).
        self._phrases_spend = phrases_spend
        # What such phrases spend otherwise: none (unbounded), or a lookup's time left.
        self._phrase_budget = phrase_budget
        # Names of the rules one of whose regexes ran out of budget, in evaluation order.
        self.over_budget: list[str] = []
        self._over = False
        self.aliases = aliases
        self.fuzzy_candidates = fuzzy_candidates
        self._plain = {} if plain_words is None else plain_words
        self._no_alias: dict[str, bool] = {}
        # Per phrase node, whether its words are found by their keys alone; by identity, as
        # hashing a node costs more than the answer, and holding the node keeps its id unique.
        self._plain_phrases: dict[int, tuple[Phrase, bool]] = {}
        self._terms: dict[tuple[str, str, str, float], list[tuple[int, Verdict | None]]] = {}
        self._occs: dict[tuple[str, str, float], list[_Occ]] = {}
        self._regex: dict[tuple[str, str], list[tuple[int, int]]] = {}
        # Phrases of any words, by their text, slop, field and threshold: the same phrase
        # written again (in one rule or another) is not looked for again.
        self._any_phrases: dict[tuple[str, int, str, float], list[_Occ]] = {}
        self._hits: dict[_RawHit, Hit] = {}
        self._words: dict[tuple[str, tuple[str, ...]], list[_RawHit] | None] = {}
        self._texts: dict[str, str] = {}  # the article's fields, by name
        self._folded: dict[str, FoldedText] = {}  # their screen forms, once asked for
        self._default_fields: Sequence[str] = DEFAULT_FIELDS

    def _fields(self, field: str | None) -> Sequence[str]:
        return self._default_fields if field is None else (field,)

    # -- terms ----------------------------------------------------------------------------------

    def resolve(self, term: Term, field: str, threshold: float) -> list[tuple[int, Verdict | None]]:
        """The tokens of ``field`` that ``term`` hits, with the verdict (None for a prefix)."""
        fuzzy = term.kind == "fuzzy"
        thr = float(term.similarity if term.similarity is not None else threshold) if fuzzy else 0.0
        sig = (term.kind, term.norm if term.kind == "prefix" else term.key, field, thr)
        found = self._terms.get(sig)
        if found is not None:
            return found
        ft = self.analysis.field(field)
        out: list[tuple[int, Verdict | None]] = []
        if term.kind == "prefix":
            prefix = term.norm
            out = [(i, None) for i, n in enumerate(ft.norms) if n.startswith(prefix)]
        elif not fuzzy:
            keys = self.aliases.of(term.key) if self.aliases is not None else frozenset()
            by_key = ft.by_key
            if not keys:
                idx = by_key.get(term.key)
                out = [(i, _EXACT) for i in idx] if idx else []
            else:
                for k in keys:
                    v = _EXACT if k == term.key else _ALIAS
                    out.extend((i, v) for i in by_key.get(k) or ())
                out.sort()
        else:
            if self.fuzzy_candidates is not None:
                cands: Iterable[str] = self.fuzzy_candidates.get((term.key, thr), ())
            else:
                cands = ft.by_key
            by_key = ft.by_key
            for k in cands:
                # Compare first: the token numbers of a key are looked up when first asked for.
                if k not in by_key:
                    continue
                verdict = compare(term.key, k, thr, self.aliases)
                if verdict is None:
                    continue
                idx = by_key[k]
                if verdict.kind == "fuzzy":
                    # A compound is matched through its parts; fuzzy on the whole would take
                    # "us-sanctions" for sanctions~ as well as its part "sanctions".
                    idx = [i for i in idx if ft.pos[i] == ft.last[i]]
                out.extend((i, verdict) for i in idx)
            out.sort()
        self._terms[sig] = out
        return out

    def _term_occs(self, term: Term, field: str, threshold: float) -> list[_Occ]:
        ck = (term.text, field, threshold)
        occs = self._occs.get(ck)
        if occs is not None:
            return occs
        if term.kind == "word" and self._unaliased(term.key):
            # The common case, kept short: most terms of most candidate rules are words in no
            # alias group, found by their key (and some also written apart, "cyber attack").
            ft = self.analysis.field(field)
            idx = ft.by_key.get(term.key)
            splits = () if self._is_plain(term.key) else compound_splits(term.key)
            occs = self._split_occs(term, field, splits) if splits else []
            if not idx and not occs:
                self._occs[ck] = _NONE
                return _NONE
            if idx:
                rank = _FIELD_RANK[field]
                label = term.text
                starts, ends, pos, last = ft.starts, ft.ends, ft.pos, ft.last
                occs += [
                    (
                        rank,
                        pos[i],
                        last[i],
                        ((rank, starts[i], ends[i], label, field, "exact", 100.0, None),),
                    )
                    for i in idx
                ]
            if splits:
                occs.sort(key=_BY_PLACE)
            self._occs[ck] = occs
            return occs
        found = self.resolve(term, field, threshold)
        splits = compound_splits(term.key) if term.kind == "word" else ()
        rank = _FIELD_RANK[field]
        label = term.text
        occs = self._split_occs(term, field, splits) if splits else []
        if not found and not occs:
            self._occs[ck] = _NONE
            return _NONE
        # The columns, not Token views: a token's norm is read only for a variant to report.
        ft = self.analysis.field(field)
        starts, ends, pos, last = ft.starts, ft.ends, ft.pos, ft.last
        for i, verdict in found:
            if verdict is None:
                raw: _RawHit = (
                    rank,
                    starts[i],
                    ends[i],
                    label,
                    field,
                    "prefix",
                    100.0,
                    ft.norms[i],
                )
            elif verdict.kind == "exact":
                raw = (rank, starts[i], ends[i], label, field, "exact", 100.0, None)
            else:
                raw = (
                    rank,
                    starts[i],
                    ends[i],
                    label,
                    field,
                    verdict.kind,
                    verdict.score,
                    ft.norms[i],
                )
            occs.append((rank, pos[i], last[i], (raw,)))
        if splits:
            occs.sort(key=_BY_PLACE)
        self._occs[ck] = occs
        return occs

    def _word_hits(self, term: Term, fields: Sequence[str]) -> list[_RawHit] | None:
        """The hits of a plain word (see :meth:`_is_plain`) in ``fields``, or None: the raw
        hits :meth:`_term_occs` holds, without its occurrences around them.

        The list is cached and shared by every rule that asks, so no caller may change it.
        """
        ck = (term.text, tuple(fields))
        cached = self._words.get(ck, _UNSEEN)
        if cached is not _UNSEEN:
            return cast("list[_RawHit] | None", cached)
        hits: list[_RawHit] = []
        key = term.key
        label = term.text
        for field in fields:
            ft = self.analysis.field(field)
            idx = ft.by_key.get(key)
            if idx:
                rank = _FIELD_RANK[field]
                starts, ends = ft.starts, ft.ends
                if len(idx) == 1:
                    # Most words occur once in a field: no comprehension to set up.
                    i = idx[0]
                    hits.append((rank, starts[i], ends[i], label, field, "exact", 100.0, None))
                else:
                    hits += [
                        (rank, starts[i], ends[i], label, field, "exact", 100.0, None)
                        for i in idx
                    ]
        found = self._words[ck] = hits or None
        return found

    def _is_plain(self, key: str) -> bool:
        """Whether a word term is found by its key alone (no alias group, no compound reading)."""
        plain = self._plain.get(key)
        if plain is None:
            plain = self._plain[key] = not compound_splits(key) and not (
                self.aliases is not None and self.aliases.of(key)
            )
        return plain

    def _unaliased(self, key: str) -> bool:
        """Whether a word is in no alias group: inside a phrase it is then found by its key
        alone (a phrase's words are matched as written; compound readings are for terms)."""
        plain = self._no_alias.get(key)
        if plain is None:
            plain = self._no_alias[key] = not (self.aliases is not None and self.aliases.of(key))
        return plain

    def _split_occs(
        self, term: Term, field: str, splits: tuple[tuple[str, str], ...]
    ) -> list[_Occ]:
        """Where a closed compound is written as two adjacent words ("cyber attack")."""
        ft = self.analysis.field(field)
        pos, last, starts, ends = ft.pos, ft.last, ft.starts, ft.ends
        rank = _FIELD_RANK[field]
        out: list[_Occ] = []
        for left, right in splits:
            li = ft.by_key.get(left)
            ri = ft.by_key.get(right)
            if not li or not ri:
                continue
            after = {pos[j]: j for j in ri}
            for i in li:
                j = after.get(last[i] + 1)
                if j is None or pos[j] != last[j]:
                    continue
                # Written apart means a space between: "cyber-attack" is the compound token's
                # hit already, and "cyber, attack" is two words.
                if not ft.text[ends[i] : starts[j]].isspace():
                    continue
                norms = ft.norms
                raw: _RawHit = (
                    rank,
                    starts[i],
                    ends[j],
                    term.text,
                    field,
                    "exact",
                    100.0,
                    f"{norms[i]} {norms[j]}",
                )
                out.append((rank, pos[i], last[j], (raw,)))
        return out

    # -- positional nodes -----------------------------------------------------------------------

    def occurrences(self, node: Node, threshold: float) -> list[_Occ]:
        """Every place a term, phrase, NEAR or OR of them occurs, in field and position order."""
        if isinstance(node, Term):
            fields = self._fields(node.field)
            if len(fields) == 1:
                return self._term_occs(node, fields[0], threshold)
            out: list[_Occ] = []
            for field in fields:
                out.extend(self._term_occs(node, field, threshold))
            return out
        if isinstance(node, Phrase):
            out = []
            for field in self._fields(node.field):
                out.extend(self._phrase(node, field, threshold))
            return out
        if isinstance(node, Near):
            return self._near(node, threshold)
        if isinstance(node, Or):
            out = []
            for child in node.children:
                out.extend(self.occurrences(child, threshold))
            out.sort(key=_BY_PLACE)
            return out
        raise TypeError(f"not a positional node: {node!r}")  # the parser prevents this

    def _phrase(self, node: Phrase, field: str, threshold: float) -> list[_Occ]:
        known = self._plain_phrases.get(id(node))
        if known is None:
            plain = node.slop == 0 and all(
                w.kind == "word" and self._unaliased(w.key) for w in node.words
            )
            known = self._plain_phrases[id(node)] = (node, plain)
        if known[1]:
            return self._plain_phrase(node, field)
        key = (node.text, node.slop, field, threshold)
        found = self._any_phrases.get(key)
        if found is not None:
            return found
        budget = self.budget if self._phrases_spend else self._phrase_budget
        if budget is None or (not node.slop and all(w.kind == "word" for w in node.words)):
            # Aliased words in a row: linear, and the compiled engine's (which has no budget)
            # where the rule qualifies.
            found = self._any_phrases[key] = self._any_phrase(node, field, threshold)
            return found
        if budget.spent >= budget.seconds:
            # "t* s* o* b* a*"~99 took a quarter of a second over a 5 KB article, and a
            # server's fifty rules of them held every server's alerts for a poll's length.
            budget.exhausted = True
            self._over = True
            return []
        self.analysis.field(field)  # tokenised once for every rule: not this phrase's cost
        start = time.perf_counter()
        try:
            found = self._any_phrase(node, field, threshold,
                                     start + budget.seconds - budget.spent)
        except TimeoutError:
            # Stopped as a regex is: every window of a 1 MB article took seconds, counted as
            # matching, and only the next rule was refused.
            budget.exhausted = True
            budget.spent = budget.seconds
            self._over = True
            return []
        budget.spent += time.perf_counter() - start
        self._any_phrases[key] = found
        return found

    def _any_phrase(self, node: Phrase, field: str, threshold: float,
                    deadline: float = float("inf")) -> list[_Occ]:
        """A phrase of any words (fuzzy, prefix, aliased) and slop; TimeoutError past
        ``deadline`` (a ``perf_counter`` time), read every :data:`_PHRASE_CHECK` steps."""
        ft = self.analysis.field(field)
        clock = time.perf_counter
        per_word: list[dict[int, list[int]]] = []  # per word: position → token numbers
        for word in node.words:
            found = self.resolve(word, field, threshold)
            if not found:
                return []
            by_pos: dict[int, list[int]] = {}
            ft_pos = ft.pos
            for i, _ in found:
                by_pos.setdefault(ft_pos[i], []).append(i)
            per_word.append(by_pos)
            if clock() > deadline:
                raise TimeoutError
        verdicts = [dict(self.resolve(w, field, threshold)) for w in node.words]
        spans: list[list[int]] = []
        if node.slop == 0:
            firsts = sorted(i for ids in per_word[0].values() for i in ids)
            for heads in _runs(firsts, deadline):
                for i0 in heads:
                    chain = [i0]
                    for by_pos in per_word[1:]:
                        nxt = by_pos.get(ft.last[chain[-1]] + 1)
                        if not nxt:
                            break
                        chain.append(nxt[0])
                    else:
                        spans.append(chain)
        else:
            spans = _sloppy(per_word, ft, len(node.words) - 1 + node.slop, deadline)
        out: list[_Occ] = []
        rank = _FIELD_RANK[field]
        for chains in _runs(spans, deadline):
            for chain in chains:
                toks = [ft.tokens[i] for i in chain]
                start = min(t.start for t in toks)
                end = max(t.end for t in toks)
                kinds: list[HitKind] = []
                scores: list[float] = []
                for w, i in enumerate(chain):
                    v = verdicts[w][i]
                    kinds.append("prefix" if v is None else v.kind)
                    scores.append(100.0 if v is None else v.score)
                kind = max(kinds, key=_KIND_RANK.__getitem__)
                variant: str | None = None
                if kind != "exact":
                    variant = " ".join(t.norm for t in sorted(toks, key=lambda t: t.start))
                raw: _RawHit = (rank, start, end, node.text, field, kind, min(scores), variant)
                out.append((rank, min(t.pos for t in toks), max(t.last for t in toks), (raw,)))
        return out

    def _plain_phrase(self, node: Phrase, field: str) -> list[_Occ]:
        """An exact phrase of words in no alias group: what :meth:`_any_phrase` finds, by
        position lookups."""
        ft = self.analysis.field(field)
        by_key = ft.by_key
        first = by_key.get(node.words[0].key)
        if not first:
            return []
        pos, last = ft.pos, ft.last
        later: list[dict[int, int]] = []  # per later word: position → its first token there
        for word in node.words[1:]:
            idx = by_key.get(word.key)
            if not idx:
                return []
            later.append({pos[i]: i for i in reversed(idx)})
        out: list[_Occ] = []
        rank = _FIELD_RANK[field]
        starts, ends = ft.starts, ft.ends
        for i0 in first:
            chain = [i0]
            cur = i0
            for at in later:
                nxt = at.get(last[cur] + 1)
                if nxt is None:
                    break
                chain.append(nxt)
                cur = nxt
            else:
                start = min(starts[i] for i in chain)
                end = max(ends[i] for i in chain)
                raw: _RawHit = (rank, start, end, node.text, field, "exact", 100.0, None)
                p0 = min(pos[i] for i in chain)
                out.append((rank, p0, max(last[i] for i in chain), (raw,)))
        return out

    def _near(self, node: Near, threshold: float, *, widest: bool = False,
              sides: bool = False) -> list[_Occ]:
        """The pairs of occurrences within the distance of each other. ``widest``: for a NEAR
        inside another, whose widest spans alone matter (see below), only each left
        occurrence's pairs with the right one that starts first and the one that ends last,
        whose spans hold every other pair's, or are as near to anything. ``sides``: for a NEAR
        whose evidence alone matters, each occurrence of either side that is in a pair, once
        (the hits of every pair, without building the pairs).

        An occurrence ``l`` and ``r`` of the same field are a pair when ``r`` starts at most
        the distance after ``l`` ends and ends at most the distance before ``l`` starts, and
        they are not the same occurrence. Neither ``widest`` nor ``sides`` visits every pair:
        a word repeated all through a long article makes hundreds of pairs per occurrence
        (``sides`` asks each side whether the other has one, ``widest`` looks only where its
        first, second and last can be), so their cost grows with the occurrences, not the
        pairs."""
        left = self._side(node.left, threshold)
        if not left:
            return []
        right = self._side(node.right, threshold)
        if not right:
            return []
        # A side holding a NEAR holds one occurrence per pair that NEAR found, and a chain of
        # them multiplied: four NEARs of a repeated word took minutes on one article. Only its
        # widest spans can matter here (a span containing another is at least as near to
        # everything), and there is at most one per field and start.
        if _holds_near(node.left):
            left = _widest(left)
        if _holds_near(node.right):
            right = _widest(right)
        return _pairs(left, right, node.distance, widest=widest, sides=sides)

    def _side(self, node: Node, threshold: float) -> list[_Occ]:
        """A NEAR side's occurrences; a NEAR's own widest pairs only (see _near)."""
        if isinstance(node, Near):
            return self._near(node, threshold, widest=True)
        return self.occurrences(node, threshold)

    # -- regex ----------------------------------------------------------------------------------

    def regex_spans(self, node: Regex, field: str) -> list[tuple[int, int]] | None:
        """Where ``node`` matches ``field``, or None if it ran out of budget (then or before)."""
        sig = (node.pattern, field)
        # Most calls are a first (a rule's own pattern): a miss raised as KeyError would cost
        # more than the rest of a call that finds no lead.
        cached = self._regex.get(sig, _UNSEEN)
        if cached is not _UNSEEN:
            return cached  # type: ignore[return-value]
        screen = self._regex_fields
        if screen is not None and screen.impossible(node.pattern, field):
            spans: list[tuple[int, int]] = []
            self._regex[sig] = spans
            return spans
        return self._spans(sig)

    def _spans(self, sig: tuple[str, str]) -> list[tuple[int, int]] | None:
        """:meth:`regex_spans` of the pattern and field ``sig``, neither cached nor found
        impossible by the screen."""
        pattern, field = sig
        text = self._text(field)
        spans: list[tuple[int, int]] | None
        if not text:
            spans = []
        else:
            plan = _REGEX_PLANS.get(pattern) or _regex_plan(pattern)
            rx, leads, word_start, _ = plan
            if leads is None:
                spans = self.budget.spans(rx, text)
            else:
                # Every match begins with one of the leads: try the pattern where they are
                # rather than have it search the whole text (a case-blind search, letter by
                # letter), or, where they are too many for that, search from the first.
                folded = self._folded_of(field, text)
                limit = lead_tries(len(text))
                starts, complete = _lead_starts(folded, leads, word_start, limit)
                budget = self.budget
                if not complete:
                    spans = budget.spans(rx, text, pos=starts[0])
                elif starts or budget.spent >= budget.seconds:
                    spans = budget.spans(rx, text, starts)
                else:
                    # What budget.spans answers where no place is left to try, without the
                    # call: most candidates' patterns have no lead in one of their fields.
                    spans = []
        if spans is not None:  # out of time is this budget's answer, not the pattern's
            self._regex[sig] = spans
        return spans

    # -- boolean --------------------------------------------------------------------------------

    def evaluate(self, node: Node, threshold: float) -> list[_RawHit] | None:
        """The evidence that makes ``node`` true, or None when it is false (NOT gives none)."""
        if isinstance(node, Term):
            fields = self._default_fields if node.field is None else (node.field,)
            if node.kind == "word" and (self._plain.get(node.key) or self._is_plain(node.key)):
                return self._word_hits(node, fields)
            hits: list[_RawHit] = []
            for field in fields:
                for occ in self._term_occs(node, field, threshold):
                    hits.extend(occ[3])
            return hits or None
        if isinstance(node, And):
            hits = []
            # Positive children first: a false one ends the evaluation before any NOT is tried.
            negated = []
            for child in node.children:
                if isinstance(child, Not):
                    negated.append(child)
                    continue
                found = self.evaluate(child, threshold)
                if found is None:
                    return None
                hits.extend(found)
            for child in negated:
                if self.evaluate(child, threshold) is None:
                    return None
            return hits
        if isinstance(node, Or):
            hits = []
            matched = False
            for child in node.children:
                found = self.evaluate(child, threshold)
                if found is not None:
                    matched = True
                    hits.extend(found)
            return hits if matched else None
        if isinstance(node, Not):
            return [] if self.evaluate(node.child, threshold) is None else None
        if isinstance(node, Regex):
            return self._regex_hits(node)
        if isinstance(node, Near):
            occs = self._near(node, threshold, sides=True)
        else:
            occs = self.occurrences(node, threshold)
        if not occs:
            return None
        return [h for o in occs for h in o[3]]

    def _regex_hits(self, node: Regex) -> list[_RawHit] | None:
        """The evidence of a regex node (see :meth:`evaluate`)."""
        hits: list[_RawHit] = []
        label = f"/{node.pattern}/"
        for field in self._default_fields if node.field is None else (node.field,):
            spans = self.regex_spans(node, field)
            if spans is None:
                self._over = True
                continue
            if spans:
                rank = _FIELD_RANK[field]
                hits += [(rank, start, end, label, field, "regex", 100.0, None)
                         for start, end in spans]
        return hits or None

    def match(
        self, name: str, node: Node, threshold: float, fields: Sequence[str] | None = None,
    ) -> Match | None:
        """The match of rule ``name`` (query ``node``) on this article, with its evidence, or
        None. ``fields`` are where terms that name no field look (default title and text)."""
        found = self._found(name, node, threshold, fields)
        if found is None:
            return None
        hits, score = self._build_hits(found)
        if type(name) is not str:
            # A caller's name is checked like any model input; everything else here is built
            # by this module with the right types.
            return Match(rule=name, article_id=self.analysis.article.id, score=score, hits=hits)
        return _trusted(
            Match,
            {"rule": name, "article_id": self.analysis.article.id, "score": score, "hits": hits},
        )

    def decide(
        self, name: str, node: Node, threshold: float, fields: Sequence[str] | None = None,
    ) -> Decision | None:
        """:meth:`match` without evidence: whether rule ``name`` matches and its score, as a
        :class:`~watchers.models.Decision` (no hit is made). ``name`` is a rule's (a str)."""
        if type(node) is Regex:
            # A rule of one regex (most regex rules) skips the dispatch of evaluate; deciding
            # it needs its spans' count per field only.
            self._default_fields = DEFAULT_FIELDS if fields is None else fields
            self._over = False
            return self._regex_decided(name, node)
        found = self._found(name, node, threshold, fields)
        if found is None:
            return None
        return Decision(name, self.analysis.article.id, self._build_hits(found, False)[1])

    def _found(self, name: str, node: Node, threshold: float,
               fields: Sequence[str] | None) -> list[_RawHit] | None:
        """The raw hits that make rule ``name`` true, or None; a rule over budget is noted."""
        self._default_fields = DEFAULT_FIELDS if fields is None else fields
        self._over = False
        found = self._regex_hits(node) if type(node) is Regex else self.evaluate(node, threshold)
        if self._over:
            self.over_budget.append(name)
        return found

    def _regex_decided(self, name: str, node: Regex) -> Decision | None:
        """What :meth:`decide` gives for a rule that is ``node`` alone: the score of its hits
        (each a regex hit of 100, weighted by field), with no hit made."""
        fields = self._default_fields if node.field is None else (node.field,)
        if len(fields) > 1 and fields is not DEFAULT_FIELDS and len(set(fields)) < len(fields):
            fields = tuple(dict.fromkeys(fields))  # a field named twice is read once (a caller's)
        # The screen's verdicts first, as regex_spans reads them: most candidates have no lead
        # in one of their fields, and asking regex_spans costs more than that answer.
        screen = self._regex_fields
        pattern = node.pattern
        possible = screen.fields if screen is not None and pattern in screen.screened else None
        score = 0.0
        matched = False
        known = self._regex
        for field in fields:
            if possible is not None:
                there = possible.get(field)
                if there is not None and pattern not in there:
                    continue
            # Past that check the screen finds the pattern possible here (impossible() is
            # false for a pattern it did not screen): regex_spans without asking it again.
            sig = (pattern, field)
            spans = known.get(sig, _UNSEEN)
            if spans is _UNSEEN:
                plan = _REGEX_PLANS.get(pattern) or _regex_plan(pattern)
                if plan[3]:
                    count = self._counted(plan, field)
                    if count is not None:
                        if count:
                            matched = True
                            score += _FIELD_WEIGHT[_FIELD_RANK[field]] * count
                        continue
                spans = self._spans(sig)
            if spans is None:
                self._over = True
            elif spans:
                matched = True
                # Exact, as _build_hits's sum rounded to 4 places: the weights are halves
                # and whole numbers.
                score += _FIELD_WEIGHT[_FIELD_RANK[field]] * len(spans)  # type: ignore[arg-type]
        if self._over:
            self.over_budget.append(name)
        if not matched:
            return None
        return Decision(name, self.analysis.article.id, score)

    def _text(self, field: str) -> str:
        """The article's ``field``, read once."""
        text = self._texts.get(field)
        if text is None:
            text = self._texts[field] = self.analysis.article.field(field)
        return text

    def _folded_of(self, field: str, text: str) -> FoldedText:
        """The screen form of ``text``, the article's ``field``, made once."""
        folded = self._folded.get(field)
        if folded is None:
            folded = self._folded[field] = folded_text(text)
        return folded

    def _counted(self, plan: _RegexPlan, field: str) -> int | None:
        """How many matches a pattern counted at its leads (see :func:`_counted_shape`) has in
        ``field``, without running it; None where the search must answer: a field with more
        than ``_COUNTED_MOST`` of its leads, ı or İ in a field where a lead has an i, or a
        budget already spent (which the search reports).

        Such a pattern matches at a lead's place exactly when the character before it is no
        word character, and its matches hold word characters only, so none holds another's
        place: the count is of the places whose character before is not one.
        """
        if self.budget.spent >= self.budget.seconds:
            return None
        text = self._text(field)
        if not text:
            return 0
        folded = self._folded_of(field, text)
        leads: tuple[bytes, ...] = plan[1]  # type: ignore[assignment]
        starts, complete = _lead_starts(folded, leads, True, lead_tries(len(text)))
        if complete:
            return _begun_words(folded, leads, starts)
        # More places than are tried one at a time: found here, as long as they are few enough
        # to stay cheaper than the budgeted search (bytes.count counts no fewer). Reading the
        # whole field is the search's work too, and is charged to the budget as the search's
        # time is: a long field cannot take more than the budget this way.
        began = time.perf_counter()
        try:
            data = folded.data
            if sum(map(data.count, leads)) > _COUNTED_MOST:
                return None
            starts = []
            find = data.find
            for lead in leads:
                found = []
                p = find(lead)
                while p >= 0:
                    found.append(p)
                    # A place inside this one follows a letter or digit of it: no word begins
                    # there.
                    p = find(lead, p + len(lead))
                starts += _word_begins(data, found)
            return _begun_words(folded, leads, starts)
        finally:
            self.budget.spent += time.perf_counter() - began

    def _hit(self, h: _RawHit) -> Hit:
        start, end = h[1], h[2]
        field = h[4]
        text = self._text(field)
        # What _trusted does, inline: a match builds a model per hit, and this is most of the
        # cost of evidence.
        hit: Hit = _new_model(Hit)
        _set_dict(
            hit,
            {
                "term": h[3],
                "field": field,
                "start": start,
                "end": end,
                "text": text[start:end],
                "kind": h[5],
                "score": float(h[6]),
                "variant": h[7],
            },
        )
        _set_fields_set(hit, set(_HIT_FIELDS))
        _set_extra(hit, None)
        _set_private(hit, None)
        self._hits[h] = hit
        return hit

    def _build_hits(self, raw: list[_RawHit], evidence: bool = True
                    ) -> tuple[tuple[Hit, ...], float]:
        """The hits sorted by field, span and term, one per (term, field, span); and their score.

        Hits are immutable, so rules that share a term share its Hit objects. The score counts
        every hit (each hit's score/100, weighted by field: title hits count double); the
        evidence kept is the first :data:`MAX_HITS` — enough to show why, and bounded, so a huge
        document does not carry (and store) hundreds of thousands of them. Without
        ``evidence``, no hit is built: the score alone, the same.
        """
        # Sorting on (field rank, start, end, term) in C and settling ties by the full order in
        # Python gives the same hits as sorting on the full order: only the first of each
        # (term, field, span) is kept, and ties are rare (one word hit by two routes).
        if len(raw) == 1:
            h = raw[0]
            if not evidence:
                return (), float(round(_FIELD_WEIGHT[h[0]] * h[6] / 100.0, 4))
            hit = self._hits.get(h)
            if hit is None:
                hit = self._hit(h)
            return (hit,), float(round(_FIELD_WEIGHT[h[0]] * h[6] / 100.0, 4))
        sigs = list(map(_BY_SIG, raw))
        ordered: list[_RawHit] | None = None
        if all(map(_BEFORE, sigs, islice(sigs, 1, None))):
            # Already in order with no two alike, as a word's hits are (no caller changes raw).
            ordered = raw
        elif len(set(sigs)) == len(sigs):
            ordered = sorted(raw, key=_BY_SIG)
        if ordered is not None:
            # No two hits of one term on one span (the common case: nothing to settle), so
            # every hit is kept in this order and each counts.
            made = self._hits
            hits = [made.get(h) or self._hit(h) for h in ordered[:MAX_HITS]] if evidence else []
            weight = _FIELD_WEIGHT
            score = sum([weight[h[0]] * h[6] / 100.0 for h in ordered])
            return tuple(hits), float(round(score, 4))
        out: list[Hit] = []
        weights: list[float] = []
        made = self._hits
        last: _RawHit | None = None
        for h in sorted(raw, key=_BY_SIG):
            # Equal spans are rare: the start tells most hits apart before a slice is made.
            if last is not None and h[1] == last[1] and h[:4] == last[:4]:
                if _hit_order(h) < _hit_order(last):
                    # A better hit of the same span takes the place of the one kept before.
                    weights[-1] = _FIELD_WEIGHT[h[0]] * h[6] / 100.0
                    if evidence and len(out) == len(weights):
                        out[-1] = self._hit(h)
                    last = h
                continue
            last = h
            weights.append(_FIELD_WEIGHT[h[0]] * h[6] / 100.0)
            if evidence and len(out) < MAX_HITS:
                hit = made.get(h)
                out.append(hit if hit is not None else self._hit(h))
        return tuple(out), float(round(sum(weights), 4))  # sum([]) is the int 0


_M = TypeVar("_M", bound=BaseModel)
_new_model = object.__new__
_HIT_FIELDS: Final = frozenset(Hit.model_fields)


def _slot_setter(name: str) -> Callable[[Any, Any], None]:
    """The setter of a model's attribute ``name`` that pydantic keeps in a slot.

    Calling the slot's descriptor directly skips the look-up through the class that
    ``object.__setattr__`` makes first: that halves the cost of building a model.
    """
    slot = _slot_descriptor(name)
    if slot is not None:
        setter: Callable[[Any, Any], None] = slot.__set__
        return setter
    set_attr = object.__setattr__
    return lambda obj, value: set_attr(obj, name, value)


def _slot_descriptor(name: str) -> Any:
    """The data descriptor of pydantic models' slot ``name`` (None if there is none); the C
    rule engine sets model slots through it too."""
    for klass in BaseModel.__mro__:
        slot = klass.__dict__.get(name)
        if slot is not None and hasattr(slot, "__set__"):
            return slot
    return None


_set_dict = _slot_setter("__dict__")
_set_fields_set = _slot_setter("__pydantic_fields_set__")
_set_extra = _slot_setter("__pydantic_extra__")
_set_private = _slot_setter("__pydantic_private__")


def _trusted(cls: type[_M], values: dict[str, Any]) -> _M:
    """A model of ``values`` that are already valid, complete and in field order, unvalidated.

    Validating costs more than finding the evidence, and a match builds a model per hit. This
    sets what ``model_construct`` sets (which, being general, is slower than validating), so the
    model equals, prints and serialises like a validated one; tests/rules check that it does.
    """
    obj = cls.__new__(cls)
    _set_dict(obj, values)
    _set_fields_set(obj, set(values))
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


# Steps (starts, windows) of a phrase of any words between readings of the clock: a reading
# costs less than one step, and 256 steps take about a millisecond.
_PHRASE_CHECK: Final = 256
_T = TypeVar("_T")


def _runs(items: Sequence[_T], deadline: float) -> Iterable[Sequence[_T]]:
    """``items`` in runs of :data:`_PHRASE_CHECK`; TimeoutError past ``deadline`` (a
    ``perf_counter`` time) before each run but the first. Most phrases take one run, given
    without a generator (which costs more than their windows)."""
    if len(items) <= _PHRASE_CHECK:
        return (items,)
    return _timed_runs(items, deadline)


def _timed_runs(items: Sequence[_T], deadline: float) -> Iterator[Sequence[_T]]:
    for lo in range(0, len(items), _PHRASE_CHECK):
        if lo and time.perf_counter() > deadline:
            raise TimeoutError
        yield items[lo:lo + _PHRASE_CHECK]


def _hit_order(h: _RawHit) -> tuple[int, int, int, str, str, float, str]:
    return (h[0], h[1], h[2], h[3], h[5], -h[6], h[7] or "")


def _sloppy(per_word: list[dict[int, list[int]]], ft: FieldText, width: int,
            deadline: float = float("inf")) -> list[list[int]]:
    """Windows where every word occurs, in any order, within ``width`` positions; TimeoutError
    past ``deadline`` (a ``perf_counter`` time), read every :data:`_PHRASE_CHECK` starts.

    For each starting position the nearest occurrence of each word at or after it is taken; a
    window counts if it spans at most ``width`` and uses distinct tokens.
    """
    positions = [sorted(by_pos) for by_pos in per_word]
    starts = sorted({p for ps in positions for p in ps})
    out: list[list[int]] = []
    seen: set[tuple[int, ...]] = set()
    for run in _runs(starts, deadline):
        for s in run:
            chain: list[int] = []
            end = s
            for w, ps in enumerate(positions):
                j = bisect.bisect_left(ps, s)
                # Take the first candidate token at that position that is not already used.
                picked = None
                while j < len(ps) and ps[j] - s <= width:
                    for i in per_word[w][ps[j]]:
                        if i not in chain:
                            picked = i
                            break
                    if picked is not None:
                        break
                    j += 1
                if picked is None:
                    break
                chain.append(picked)
                end = max(end, ft.last[picked])
            else:
                if end - s <= width:
                    sig = tuple(sorted(chain))
                    if sig not in seen:
                        seen.add(sig)
                        out.append(chain)
    return out


_REGEX_CACHE: dict[str, regex.Pattern[str]] = {}


def _compiled_regex(pattern: str) -> regex.Pattern[str]:
    rx = _REGEX_CACHE.get(pattern)
    if rx is None:
        import regex  # loaded by the first regex rule, not by every command that matches

        if len(_REGEX_CACHE) > 50_000:
            _REGEX_CACHE.clear()
        rx = _REGEX_CACHE[pattern] = regex.compile(pattern, regex.IGNORECASE | regex.V0)
    return rx


# Per pattern: the compiled pattern, the literals (screen form, see folded_text) one of which
# every match begins with (None if not known), whether a match must begin a word, and whether
# its matches are counted at those literals' places without running it (_counted_shape).
_RegexPlan = tuple["regex.Pattern[str]", "tuple[bytes, ...] | None", bool, bool]
_REGEX_PLANS: dict[str, _RegexPlan] = {}
# Trying a pattern at a place costs a regex call (with a timeout: two clock readings) where
# searching costs a case-blind scan of the text; past this many places per this many
# characters of text, searching from the first place is cheaper.
_TRIES_BASE = 4
_CHARS_PER_TRY = 1500


def lead_tries(length: int) -> int:
    """The places a pattern is tried at, at most, in a text of ``length`` characters: past
    that many of its leads it is searched for from the first instead. A scan that notes the
    leads' places (the rule index's) need keep no more than one past this many of each."""
    return _TRIES_BASE + length // _CHARS_PER_TRY


def _regex_plan(pattern: str) -> _RegexPlan:
    plan = _REGEX_PLANS.get(pattern)
    if plan is None:
        if len(_REGEX_PLANS) > 50_000:
            _REGEX_PLANS.clear()
            _BOUNDED.clear()
        leads, word_start = _leading_literals(pattern)
        rx = _compiled_regex(pattern)
        counted = word_start and _counted_shape(pattern)
        plan = _REGEX_PLANS[pattern] = (rx, leads, word_start, counted)
        if leads is not None:
            # Only a pattern tried at its leads' places is tried untimed (see _spans_at).
            steps = _attempt_steps(pattern)
            if steps is not None:
                _BOUNDED[id(rx)] = (rx, *steps)
    return plan


# Per compiled pattern (by id; each entry holds its pattern, so the id is not reused while it
# is kept): the bound of one attempt at a place, (fixed, per character of the text) steps.
_BOUNDED: dict[int, tuple[regex.Pattern[str], int, int]] = {}
# What one step of the regex module's matcher may take, generously (a step is a few ns).
_SECONDS_PER_STEP: Final = 1e-7
# An attempt bound to take no longer than this keeps the interpreter lock (see _spans_at). The
# bound is generous (an attempt at a place of a 5 KB text is bound to 5 ms and takes a
# microsecond or two); a text long enough to near it (a 100 KB word) lets the lock go.
_KEEP_LOCK_S: Final = 0.1
# Bounded repeats and alternatives multiply the paths an attempt may take; past this many the
# pattern keeps its timeout.
_MAX_PATHS: Final = 64
# Parsed items that match one character (under V0 IGNORECASE, simple case folding: exactly one).
_ONE_CHAR: Final = frozenset({"LITERAL", "NOT_LITERAL", "ANY", "IN"})


@lru_cache(maxsize=4096)
def _attempt_steps(pattern: str) -> tuple[int, int] | None:
    """A bound of the steps one attempt of ``pattern`` at a place takes, as (fixed steps, steps
    per character of the text), or None when it has none that is linear in the text.

    A backtracking attempt follows at most one path per choice of its repeats and
    alternatives, each path at most as long as the pattern's items plus the characters it
    consumes. With bounded repeats and alternatives (of fixed strings and one-character
    classes) the paths are few and short; one unbounded repeat of a one-character class
    (``\\w*``, ``\\W+``) gives up one character at a time, each time matching the rest of the
    pattern once. Two of them, nested repeats, lookarounds or backreferences can take
    polynomial or exponential time: those patterns keep the timeout. Read as
    :func:`_leading_literals` reads patterns (only those it has leads for reach here).
    """
    import re._parser as sre_parse  # type: ignore[import-not-found]

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = sre_parse.parse(pattern, re.IGNORECASE)
    except Exception:  # _leading_literals parsed it already; this is only in case
        return None
    found = _paths(list(tree), sre_parse.MAXREPEAT)
    if found is None:
        return None
    paths, items, unbounded = found
    if unbounded > 1 or paths > _MAX_PATHS:
        return None
    fixed = paths * (items + 1)
    return fixed, fixed if unbounded else 0


def _paths(items: list[Any], unbounded_max: int) -> tuple[int, int, int] | None:
    """(paths, items, unbounded repeats) of a sequence of parsed items, or None if an item is
    not one that :func:`_attempt_steps` bounds; ``unbounded_max`` is the parser's bound of a
    repeat with none."""
    paths, count, unbounded = 1, 0, 0
    for op, arg in items:
        name = str(op)
        count += 1
        if name in _ONE_CHAR or name == "AT":
            continue
        if name == "SUBPATTERN":
            inner = _paths(list(arg[-1]), unbounded_max)
        elif name == "BRANCH":
            inner = None
            total, size = 0, 0
            for branch in arg[1]:
                one = _paths(list(branch), unbounded_max)
                if one is None or one[2]:
                    break
                total += one[0]
                size += one[1]
            else:
                inner = (total, size, 0)
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, body = arg
            body = list(body)
            if high == unbounded_max:
                # Unbounded: only of one character, given up one at a time.
                if len(body) != 1 or str(body[0][0]) not in _ONE_CHAR:
                    return None
                inner = (1, 1, 1)
            else:
                # Bounded ("s?", "(s)?", "(ian|ians){0,2}"): each count from low to high, each
                # choice of the body's paths at each repetition (one for a character).
                one = _paths(body, unbounded_max)
                if one is None or one[2] or high - low >= _MAX_PATHS:
                    return None
                total = 0
                for k in range(low, high + 1):
                    total += one[0] ** k
                    if total > _MAX_PATHS:
                        return None
                inner = (total, high * one[1], 0)
        else:
            return None
        if inner is None:
            return None
        paths *= inner[0]
        count += inner[1]
        unbounded += inner[2]
        if paths > _MAX_PATHS:
            return None
    return paths, count, unbounded


def regex_leads(pattern: str) -> tuple[bytes, ...] | None:
    """The literals (screen form) one of which every match of ``pattern`` begins with, or
    None if that is not known; without compiling the pattern."""
    plan = _REGEX_PLANS.get(pattern)
    return plan[1] if plan is not None else _leading_literals(pattern)[0]


@lru_cache(maxsize=4096)
def _leading_literals(pattern: str) -> tuple[tuple[bytes, ...] | None, bool]:
    """Lower-case literals one of which every match of ``pattern`` begins with (after
    zero-width assertions), or None; and whether a match must also begin a word (``\\b``
    before a literal that starts with a word character).

    Read as :func:`~watchers.rules.index.required_literals` reads patterns (and only those it
    reads): with Python's own parser, which reads them as the ``regex`` module does.
    """
    import re._parser as sre_parse

    from .index import _PLAIN, required_literals

    if required_literals(pattern) is None:
        return None, False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = sre_parse.parse(pattern, re.IGNORECASE)
    except Exception:  # required_literals parsed it already; this is only in case
        return None, False
    items = list(tree)
    leads = _leads(items, _PLAIN)
    if not leads:
        return None, False
    boundary = False
    for op, arg in items:
        name = str(op)
        if name == "AT":
            boundary = boundary or str(arg) == "AT_BOUNDARY"
        elif name not in ("ASSERT", "ASSERT_NOT"):
            break
    # Under (?a) a letter that matches an ASCII one (K for k) is not a word character to \\b.
    ascii_words = bool(tree.state.flags & re.ASCII)
    word_start = boundary and not ascii_words and all(lead[0] in _WORD_CHARS for lead in leads)
    return tuple(lead.encode("ascii") for lead in leads), word_start


def _counted_shape(pattern: str) -> bool:
    """Whether ``pattern`` is ``\\b``, then literals of ASCII letters and digits (one of some
    alternatives, each matched exactly), then nothing but repeats of at least zero of word
    characters (``\\bsanction\\w*``, ``\\b(kyiv|kiev)``, ``\\bukrain[a-z]*``).

    Such a pattern matches wherever \\b holds before one of its literals, and a match spans
    word characters only: its matches can be counted from the literals' places alone (see
    :meth:`Evaluator._counted`), which decides a rule without running the pattern.
    """
    import re._parser as sre_parse

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = sre_parse.parse(pattern, re.IGNORECASE)
    except Exception:
        return False
    if tree.state.flags & ~(re.IGNORECASE | re.UNICODE):
        return False  # (?a), (?x) and the like: read them the long way
    items = list(tree)
    if not items or str(items[0][0]) != "AT" or str(items[0][1]) != "AT_BOUNDARY":
        return False
    tail = len(items)
    while tail > 1 and _word_repeat(items[tail - 1]):
        tail -= 1
    head = items[1:tail]
    if not head:
        return False
    if any(_scoped_flags(item) for item in head):
        return False  # (?-i:Word) matches fewer places than its literal's
    found, exact = _prefixes(head, _ALNUM)
    return exact and "" not in found


def _scoped_flags(item: Any) -> bool:
    """Whether a parsed item sets or clears flags for a group within it."""
    op, arg = item
    name = str(op)
    if name == "SUBPATTERN":
        return bool(arg[1] or arg[2]) or any(_scoped_flags(i) for i in arg[3])
    if name == "BRANCH":
        return any(_scoped_flags(i) for branch in arg[1] for i in branch)
    if name == "ATOMIC_GROUP":
        return any(_scoped_flags(i) for i in arg)
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        return any(_scoped_flags(i) for i in arg[2])
    return False


def _word_repeat(item: Any) -> bool:
    """Whether a parsed item repeats, at least zero times, a set of word characters only."""
    op, arg = item
    if str(op) not in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") or arg[0] != 0:
        return False
    inner = list(arg[2])
    if len(inner) != 1 or str(inner[0][0]) != "IN":
        return False
    for kind, value in inner[0][1]:
        kind = str(kind)
        if kind == "CATEGORY":
            if str(value) != "CATEGORY_WORD":
                return False
        elif kind == "RANGE":
            lo, hi = value
            if not all(c in _ASCII_WORD_CODES for c in range(lo, hi + 1)):
                return False
        elif kind != "LITERAL" or value not in _ASCII_WORD_CODES:
            return False
    return True


def _begun_words(folded: FoldedText, leads: tuple[bytes, ...], starts: list[int]) -> int | None:
    """How many of ``starts`` (places of ``leads`` in ``folded``, none after an ASCII word
    character) begin a word, or None when the pattern's case decides (see _counted)."""
    if not starts:
        return 0
    if folded.dotted and any(b"i" in lead for lead in leads):
        return None  # ı and İ each match one case of i: the pattern's case decides
    data = folded.data
    text = folded.text
    count = 0
    for p in starts:
        if p:
            # Any ASCII byte but "?" (which also stands for a character beyond Latin-1) is no
            # word character here; for the others the character itself is asked.
            b = data[p - 1]
            if b >= 0x80 or b == 0x3F:
                ch = text[p - 1]
                word = _IS_WORD.get(ch)
                if word is None:
                    word = _is_word(ch)
                if word:
                    continue
        count += 1
    return count


# A counted pattern whose literals occur more often than this in a field is searched for: the
# search keeps to the regex budget, counting places by hand does not.
_COUNTED_MOST = 2000

# Whether a character is a word character to the regex module (\w, and so \b), by character:
# asked for the few beyond ASCII that stand before a counted pattern's literals.
_IS_WORD: dict[str, bool] = {}


def _is_word(ch: str) -> bool:
    if len(_IS_WORD) > 4096:
        _IS_WORD.clear()
    word = _IS_WORD[ch] = _compiled_regex(r"\w").match(ch) is not None
    return word


def _leads(items: list[Any], plain: frozenset[str]) -> list[str] | None:
    """The literals (of ``plain`` characters, lower-cased) one of which every match of a
    sequence of parsed items begins with, or None when that is not known."""
    found, _ = _prefixes(items, plain)
    if "" in found:
        return None
    # A lead that begins with another is found where that one is: the shorter one will do.
    ordered = sorted(set(found))
    return [s for i, s in enumerate(ordered) if not any(s.startswith(t) for t in ordered[:i])]


# Alternatives that a pattern's leads may multiply into (kyiv|kiev)(s|n)... at most.
_MAX_LEADS: Final = 16


def _prefixes(items: list[Any], plain: frozenset[str]) -> tuple[list[str], bool]:
    """Strings one of which every match of ``items`` begins with, and whether each match is
    one of them exactly (then what follows the items may lengthen them)."""
    acc = [""]
    for op, arg in items:
        alts, exact = _item_prefixes(str(op), arg, plain)
        if len(acc) * len(alts) > _MAX_LEADS:
            return acc, False
        acc = [a + b for a in acc for b in alts]
        if not exact:
            return acc, False
    return acc, True


def _item_prefixes(name: str, arg: Any, plain: frozenset[str]) -> tuple[list[str], bool]:
    if name in _ZERO_WIDTH:
        return [""], True
    if name == "LITERAL":
        ch = chr(arg).lower()
        return ([ch], True) if ch in plain else ([""], False)
    if name == "SUBPATTERN":
        return _prefixes(list(arg[-1]), plain)
    if name == "ATOMIC_GROUP":
        return _prefixes(list(arg), plain)
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") and arg[0] >= 1:
        found, exact = _prefixes(list(arg[2]), plain)
        return found, exact and arg[0] == arg[1] == 1
    if name == "BRANCH":
        out: list[str] = []
        every = True
        for branch in arg[1]:
            found, exact = _prefixes(list(branch), plain)
            out += found
            every = every and exact
        return out, every
    return [""], False


# Parsed items that match without consuming text: anchors, \b, lookarounds.
_ZERO_WIDTH: Final = frozenset({"AT", "ASSERT", "ASSERT_NOT"})
_WORD_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
# The screen form's bytes that are word characters to any regex: ASCII letters (lower-cased),
# digits and the underscore. Any other byte may be a word character or not.
_WORD_BYTES: Final = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_")
# The characters a counted pattern's literals may hold (see _counted_shape), and the codes of
# the ASCII characters its tail may match (either case).
_ALNUM: Final = _WORD_CHARS - {"_"}
_ASCII_WORD_CODES: Final = _WORD_BYTES | frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _word_begins(data: bytes, found: Iterable[int]) -> list[int]:
    """Those of ``found`` (places in a screen form) that no ASCII word character precedes:
    where a match that must begin a word may begin."""
    return [p for p in found if not (p and data[p - 1] in _WORD_BYTES)]


def _lead_starts(
    folded: FoldedText, leads: tuple[bytes, ...], word_start: bool, limit: int
) -> tuple[list[int], bool]:
    """The places where ``leads`` occur in ``folded`` (ascending; those inside a word left out
    when a match must begin a word), and True; or, past ``limit`` places, a place before which
    none is, and False."""
    if len(leads) == 1:
        found = folded.starts(leads[0], limit)
        if len(found) > limit:
            return found[:1], False
        if word_start and found:
            found = _word_begins(folded.data, found)
        return found, True
    starts: list[int] = []
    first = -1
    data = folded.data
    for lead in leads:
        found = folded.starts(lead, limit)
        if not found:
            continue
        if first < 0 or found[0] < first:
            first = found[0]
        if len(found) > limit:
            starts = []
            limit = -1  # past the limit: the others only move the first place
            continue
        if word_start:
            starts += _word_begins(data, found)
        else:
            starts += found
    if limit < 0 or len(starts) > limit:
        return [first], False
    if len(leads) > 1:
        starts = sorted(set(starts))
    return starts, True


# Under IGNORECASE these non-ASCII letters match ASCII ones (ſ/s, ı/i, İ/i, K/k): the screen
# form maps them to those letters first. The two i's match one case each (ı matches I, not i;
# İ matches i, not I): an "i" in the screen form may be a place a pattern's i does not match.
_FOLD_SPECIALS: Final = (("\u017f", "s"), ("\u0131", "i"), ("\u0130", "i"), ("\u212a", "k"))


class FoldedText:
    """A text's screen form: the text as one byte per character, ASCII lower-cased.

    Where a lower-case ASCII literal matches the text under IGNORECASE it occurs in
    :attr:`data` (where a ``?`` stands for a character beyond Latin-1, possibly more), and where
    it occurs it matches, unless it holds an "i" and :attr:`dotted` says the text has ı or İ;
    the offsets are the text's. It also keeps where literals were found in it, by a scan of
    many literals at once (the regex screen's) or one by one.
    """

    __slots__ = ("_scans", "_starts", "data", "dotted", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.dotted = False
        if text.isascii():
            self.data = text.encode("ascii").lower()
        else:
            plain = text
            for ch, to in _FOLD_SPECIALS:
                if ch in plain:
                    plain = plain.replace(ch, to)
                    self.dotted = self.dotted or to == "i"
            # Latin-1 letters never match an ASCII one, and bytes.lower() leaves them be.
            self.data = plain.encode("latin-1", "replace").lower()
        self._starts: dict[bytes, list[int]] = {}
        self._scans: list[tuple[Mapping[bytes, int], Mapping[int, list[int]]]] = []

    def record(self, ids: Mapping[bytes, int], ends: Mapping[int, list[int]]) -> None:
        """Keep what a scan for every occurrence of each literal of ``ids`` (literal → id)
        found: ``ends``, by id, the places where those it found at all end. Read on demand,
        as most of them are never asked for."""
        for i, (scanned, _) in enumerate(self._scans):
            if scanned is ids:
                self._scans[i] = (ids, ends)
                return
        self._scans.append((ids, ends))

    def starts(self, literal: bytes, limit: int) -> list[int]:
        """The places where ``literal`` occurs (ascending), every one, or more than ``limit``
        of the first."""
        found = self._starts.get(literal)
        if found is not None:
            return found
        for ids, ends in self._scans:
            i = ids.get(literal)
            if i is not None:
                # A scan reports each literal's ends in ascending order.
                found = self._starts[literal] = list(map((-len(literal)).__add__,
                                                         ends.get(i, ())))
                return found
        found = []
        find = self.data.find
        p = find(literal)
        while p >= 0:
            found.append(p)
            if len(found) > limit:
                # Not kept: another caller may want more of them.
                return found
            p = find(literal, p + 1)
        self._starts[literal] = found
        return found


# Screen forms of the last few texts, by identity: the rule index screens an article's fields
# and its evaluator then looks for literals in the same strings. Each holds its text, so an id
# here is not reused while it is kept.
_FOLDED: dict[int, FoldedText] = {}
_FOLDED_KEPT: Final = 8


def folded_text(text: str) -> FoldedText:
    """The screen form of ``text`` (see :class:`FoldedText`), shared with the next few callers
    that ask for the same string."""
    kept = _FOLDED.get(id(text))
    if kept is not None and kept.text is text:
        return kept
    folded = FoldedText(text)
    if len(_FOLDED) >= _FOLDED_KEPT:
        _FOLDED.clear()
    _FOLDED[id(text)] = folded
    return folded


@lru_cache(maxsize=1)
def _default_aliases() -> Aliases:
    return shipped_aliases()


def match_query(
    query: str | Node,
    article: Article,
    threshold: float = DEFAULT_THRESHOLD,
    aliases: Mapping[str, Sequence[str]] | Aliases | None = None,
    *,
    name: str | None = None,
    budget: RegexBudget | None = None,
    fuzzy_candidates: FuzzyCandidates | None = None,
    phrase_budget: RegexBudget | None = None,
) -> Match | None:
    """Match one query against one article, without compiling a rule set.

    This is the reference behaviour that :class:`~watchers.rules.RuleSet` reproduces faster.
    ``aliases`` extends the shipped alias table. The match's ``rule`` is ``name`` or the query.
    ``budget`` limits the time its regexes may take (default :data:`REGEX_BUDGET` for this call);
    pass one budget to many calls to limit them all, and read its ``exhausted`` afterwards.
    ``fuzzy_candidates`` maps each fuzzy term's (key, threshold) to the words it may match
    (e.g. every word of a lookup index that it matches); every fuzzy term of the query must
    be in it. Without it every token of the article is compared.
    ``phrase_budget`` limits the time phrases with slop or a prefix or fuzzy word may take
    (by default they are not limited): one that runs out counts as not matching and marks the
    budget ``exhausted``, as a regex does. A lookup passes one of the time it has left; pass
    ``budget`` itself to have them share the regexes' time, as a rule set's do.
    """
    if (not isinstance(threshold, int | float) or isinstance(threshold, bool)
            or not 50 <= threshold <= 100):
        raise ValueError(f"threshold must be a number from 50 to 100, not {threshold!r}")
    if not isinstance(article, Article):
        # ("some text" failed deep inside with "'str' object has no attribute 'field'")
        raise TypeError(f"match_query takes an Article, not {type(article).__name__} "
                        "(Article(title=..., text=...))")
    if not isinstance(query, str | Node):
        raise TypeError(f"match_query takes a query (a str), not {type(query).__name__}")
    node = parse(query) if isinstance(query, str) else query
    if isinstance(aliases, Aliases):
        table = aliases
    else:
        table = _default_aliases() if not aliases else shipped_aliases(aliases)
    label = name if name is not None else (query if isinstance(query, str) else "")
    return Evaluator(Analysis(article), table, fuzzy_candidates, budget=budget,
                     phrase_budget=phrase_budget).match(label, node, threshold)
