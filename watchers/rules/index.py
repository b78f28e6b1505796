"""The rule index: which rules an article could match, found from the article's words.

The idea of Lucene's Monitor and Elasticsearch's percolator: each rule is indexed under *anchor*
terms, words at least one of which any matching article must contain. An AND or NEAR anchors
on its rarest positive child (by English word frequency), or on pairs of words from it and
another child when both are words (or one is a fuzzy term); an OR on all its children, a NOT
never; a phrase of words in no alias group (a phrase's words are matched as written, never by
compound readings) on its rarest pair of neighbouring words, which the article must hold at
consecutive positions, and any other phrase (sloppy, or with aliased, fuzzy or prefix words) as
an AND of its words. An article then looks up its distinct words, so the work grows with the
article and the rules it could match, not with the number of rules.
The candidates are evaluated exactly as the naive loop would, so the index can only save
time, never change a result.

Fuzzy terms are anchored through a cache from token to the fuzzy terms it matches: a token not
seen before is compared with the whole fuzzy vocabulary in one batch (``process.cdist``, plus
dictionary lookups for aliases, transliteration keys and letter swaps).

Regular expressions are screened by the literal strings they require, found for all of them in
one scan (an Aho-Corasick automaton of the C extension, or Hyperscan when only the ``hyperscan``
package is there; otherwise each literal whose first three letters occur in the text is searched
for), field by field: a regex is tried only in a field that holds one of the strings it requires
(and, when it requires several, as ``kyiv\\W+talks`` does, each of them); a regex with no such
string is tried on every article, within the article's regex budget. The one scan
also notes where the literals a pattern's matches begin with occur (each field's screen form
keeps them, see ``matcher.FoldedText``; otherwise the evaluator finds them), so the pattern is
tried there instead of searched for.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import chain, compress, pairwise
from typing import Any, Generic, Protocol, TypeVar

from . import text as _text
from .matcher import (
    _FOLD_SPECIALS,
    DEFAULT_FIELDS,
    Analysis,
    FoldedText,
    FuzzyCandidates,
    RegexFields,
    folded_text,
    lead_tries,
    regex_leads,
)
from .syntax import And, Near, Node, Not, Or, Phrase, Regex, Term
from .variants import (
    CUTOFF_SLACK,
    Aliases,
    _zipf,
    compare,
    compound_splits,
    token_stems,
    translit_key,
)

try:  # Python's own regex parser, used to find the literals a pattern requires
    import re._parser as _sre_parse  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_parse as _sre_parse
__all__ = ["IndexedRule", "RuleIndex"]


class IndexedRule(Protocol):
    """What the index reads of a rule (:class:`~watchers.rules.Rule` has it): no import cycle."""

    @property
    def node(self) -> Node: ...
    @property
    def threshold(self) -> float: ...
    @property
    def fields(self) -> tuple[str, ...] | None: ...


R = TypeVar("R", bound=IndexedRule)

# Anchors: ("key", key) | ("pair", word, word) | ("bigram", word, next word) | ("prefix", norm)
# | ("fuzzy", key, threshold) | ("fuzzy_pair", key, threshold, word) | ("regex", pattern)
Anchor = tuple[Any, ...]

_CACHE_LIMIT = 200_000
# From this many regex literals the pure screen looks them up by their first three letters.
_GRAM_SCREEN_FROM = 64
_REGEX_COST = 1e7
# Candidates up to which the evaluator finds keys by scanning the token lists (see candidates).
_PROBING_CANDIDATES = 4  # a regex rule is screened by one scan, but costs more than a rare word


def _word_cost(key: str) -> float:
    # Expected occurrences per billion words; unknown words (names, typos) count as rare.
    return 10.0 ** _zipf(key) if key.isascii() else 1.0


def _anchors(
    node: Node, threshold: float, aliases: Aliases
) -> tuple[frozenset[Anchor], float] | None:
    """The anchors of ``node`` and their cost (how often they fire), or None if it has none."""
    if isinstance(node, Term):
        if node.kind == "prefix":
            # Short prefixes fire on many words; a prefix is costed as a word that common.
            return frozenset({("prefix", node.norm)}), 1e9 / max(1, len(node.norm)) ** 2
        if node.kind == "fuzzy":
            thr = float(node.similarity if node.similarity is not None else threshold)
            return frozenset({("fuzzy", node.key, thr)}), 2.0 * _word_cost(node.key)
        keys = {node.key} | aliases.of(node.key)
        anchors: set[Anchor] = {("key", k) for k in keys}
        cost = sum(_word_cost(k) for k in keys)
        for left, right in compound_splits(node.key):
            # "cyber attack" for cyberattack: both words must be in the article.
            anchors.add(("pair", left, right))
            cost += min(_word_cost(left), _word_cost(right))
        return frozenset(anchors), cost
    if isinstance(node, Phrase):
        # A phrase's words are matched as written (compound readings are for terms), so only
        # an alias group can find one by another key; and every word must be there.
        options = [_phrase_word_anchors(w, threshold, aliases) for w in node.words]
        words = [w.key for w in node.words]
        plain = all(w.kind == "word" and w.key and not aliases.of(w.key) for w in node.words)
        if node.slop or len(words) < 2 or not plain:
            # A pair of its words where it has two (a sloppy phrase of a common word and a
            # rare one is tried only where both are), else its rarest word.
            return _all_of(options)
        found = _cheapest(options)
        if found is None:
            return found
        # Words found by their keys alone, at consecutive positions: each adjacent pair is
        # required, and the rarest pair says more than the rarest word. The cost stays that of
        # the rarest word, so a parent chooses among its children as it did before.
        pair = min(pairwise(words), key=lambda p: (min(_word_cost(p[0]), _word_cost(p[1])), p))
        return frozenset({("bigram", pair[0], pair[1])}), found[1]
    if isinstance(node, Near):
        return _all_of(
            [_anchors(node.left, threshold, aliases), _anchors(node.right, threshold, aliases)]
        )
    if isinstance(node, Regex):
        return frozenset({("regex", node.pattern)}), _REGEX_COST
    if isinstance(node, Not):
        return None
    if isinstance(node, And):
        return _all_of(
            [_anchors(c, threshold, aliases) for c in node.children if not isinstance(c, Not)]
        )
    union: set[Anchor] = set()
    cost = 0.0
    for child in node.children:
        found = _anchors(child, threshold, aliases)
        if found is None:
            return None
        union |= found[0]
        cost += found[1]
    return frozenset(union), cost


def _phrase_word_anchors(
    word: Term, threshold: float, aliases: Aliases
) -> tuple[frozenset[Anchor], float] | None:
    """The anchors of a phrase's word: a word by the keys of its alias group alone (no
    compound reading: :meth:`~.matcher.Evaluator.resolve` finds a phrase's words so)."""
    if word.kind != "word":
        return _anchors(word, threshold, aliases)
    keys = {word.key} | aliases.of(word.key)
    return frozenset(("key", k) for k in keys), sum(_word_cost(k) for k in keys)


def _cheapest(
    options: Sequence[tuple[frozenset[Anchor], float] | None],
) -> tuple[frozenset[Anchor], float] | None:
    best = None
    for opt in options:
        if opt is not None and (best is None or opt[1] < best[1]):
            best = opt
    return best


# Word pairs an AND, NEAR or phrase anchors on at most, one from each of two children (an
# alias group has up to about ten keys: 16 lets a group pair with a plain word).
_MAX_PAIRS = 16


def _all_of(
    options: Sequence[tuple[frozenset[Anchor], float] | None],
) -> tuple[frozenset[Anchor], float] | None:
    """The anchors of a node that needs every one of ``options`` (AND, NEAR).

    The cheapest option, or, when it and another option are words, pairs of a word from each
    (both must be in a matching article): fewer articles hold a pair than its rarer word. A pair
    anchor stands for its rarer word here (a word written apart, "inter net" for internet, needs
    both). A fuzzy term pairs with the words of another option the same way. The cost stays
    that of the cheapest option, so a parent chooses among its children as it did before.
    """
    best = _cheapest(options)
    if best is None:
        return best
    rest = [o for o in options if o is not None and o is not best]
    words = [o for o in rest if _words_only(o[0])]
    if _words_only(best[0]):
        if words:
            other = min(words, key=lambda o: o[1])
            if len(best[0]) * len(other[0]) > _MAX_PAIRS:
                return best
            pairs = {("pair", _word_of(a), _word_of(b)) for a in best[0] for b in other[0]}
            return frozenset(pairs), best[1]
        fuzzy = [o for o in rest if _fuzzy_only(o[0])]
        if not fuzzy or len(best[0]) > _MAX_PAIRS:
            return best
        return _fuzzy_pairs(min(fuzzy, key=lambda o: o[1])[0], best[0]), best[1]
    if _fuzzy_only(best[0]) and words:
        other = min(words, key=lambda o: o[1])
        if len(other[0]) <= _MAX_PAIRS:
            return _fuzzy_pairs(best[0], other[0]), best[1]
    return best


def _words_only(anchors: frozenset[Anchor]) -> bool:
    return all(a[0] == "key" or a[0] == "pair" for a in anchors)


def _fuzzy_only(anchors: frozenset[Anchor]) -> bool:
    return len(anchors) == 1 and next(iter(anchors))[0] == "fuzzy"


def _fuzzy_pairs(fuzzy: frozenset[Anchor], words: frozenset[Anchor]) -> frozenset[Anchor]:
    """A fuzzy term and each word: the article must hold a token the term matches and the word
    (an AND of "kyiv~" and "talks" is tried only where both are)."""
    (term,) = fuzzy
    return frozenset(("fuzzy_pair", term[1], term[2], _word_of(w)) for w in words)


def _word_of(anchor: Anchor) -> str:
    """A word that every article an anchor of words fires on holds: a pair's rarer word."""
    if anchor[0] == "key":
        return str(anchor[1])
    return str(min(anchor[1], anchor[2], key=_word_cost))


def _fields_of(node: Node, defaults: Sequence[str], out: set[str]) -> None:
    if isinstance(node, Term | Phrase | Regex):
        out.update(defaults if node.field is None else (node.field,))
    elif isinstance(node, Near):
        _fields_of(node.left, defaults, out)
        _fields_of(node.right, defaults, out)
    elif isinstance(node, Not):
        _fields_of(node.child, defaults, out)
    else:
        for c in node.children:
            _fields_of(c, defaults, out)


@dataclass(frozen=True, slots=True)
class _FuzzyTerm:
    key: str
    threshold: float


def _fuzzy_order(t: _FuzzyTerm) -> tuple[str, float]:
    return (t.key, t.threshold)


def _fuzzy_terms(node: Node, threshold: float, out: set[_FuzzyTerm]) -> None:
    if isinstance(node, Term):
        if node.kind == "fuzzy":
            thr = float(node.similarity if node.similarity is not None else threshold)
            out.add(_FuzzyTerm(node.key, thr))
    elif isinstance(node, Phrase):
        for w in node.words:
            _fuzzy_terms(w, threshold, out)
    elif isinstance(node, Near):
        _fuzzy_terms(node.left, threshold, out)
        _fuzzy_terms(node.right, threshold, out)
    elif isinstance(node, Not):
        _fuzzy_terms(node.child, threshold, out)
    elif isinstance(node, And | Or):
        for c in node.children:
            _fuzzy_terms(c, threshold, out)


class _RegexScreen:
    """Which regex rules may match a text, found with one scan for their required literals.

    Each pattern is parsed (with Python's own regex parser) for a string that every match must
    contain; the texts' screen forms (ASCII lower-cased, :class:`~.matcher.FoldedText`) are
    searched for all those strings at once (see :data:`_Finder`). A pattern with
    no such string, or one the parser does not take, is always run: it is correct, only slower,
    and each run counts against the article's regex budget. The same scan keeps, in each
    text's screen form, where the literals that matches begin with are: the evaluator tries a
    pattern there rather than search the text for it.
    """

    def __init__(self, patterns: Sequence[str]) -> None:
        self.unscreened: list[str] = []
        self.literals: dict[str, list[str]] = {}  # literal → patterns that need it
        # Per pattern, the other sets of literals it requires one of each (see
        # required_literal_sets): "kyiv\W+talks" needs "talks" as well as "kyiv".
        self.also: dict[str, list[list[str]]] = {}
        first: dict[str, list[str]] = {}  # per pattern, its first set (the literals' keys)
        for p in patterns:
            lits = required_literals(p)
            if lits is None:
                self.unscreened.append(p)
            else:
                first[p] = lits
                for lit in lits:
                    self.literals.setdefault(lit, []).append(p)
                others = [
                    s
                    for s in required_literal_sets(p) or ()
                    if s != lits and min(len(x) for x in s) >= 2
                ]
                if others:
                    self.also[p] = others
        self._ordered = sorted(self.literals)
        # The one scan looks for the literals of the other sets too; the pure screen
        # looks for them only in a text that holds one of a pattern's first set.
        scanned = set(self.literals)
        for sets in self.also.values():
            for lits in sets:
                scanned.update(lits)
        # The scan also reports every place where a pattern's leading literals are (see
        # matcher.FoldedText), so that the evaluator tries the pattern there without a search
        # of its own; a lead so common that reporting it costs more is left to the evaluator.
        leads: set[str] = set()
        for p in patterns:
            for lead in regex_leads(p) or ():
                text = lead.decode("ascii")
                if _worth_reporting(text):
                    leads.add(text)
        scanned.update(leads)
        self._scanned = sorted(scanned)
        self._lead_ids = {
            lit.encode("ascii"): i for i, lit in enumerate(self._scanned) if lit in leads
        }
        scanned_leads = [(lit, lit in leads) for lit in self._scanned]
        pack = _automaton_pack(scanned_leads)
        self._find: _Finder | None = _finder_of(pack) or _hyperscan_finder(scanned_leads)
        # For the scan's ids: per scanned literal, the patterns whose first set holds it; per
        # pattern, its other sets as sets of ids. The patterns of a literal are split in two:
        # those with no other set (found with the literal) and, with their other sets, those
        # that need each of them found too.
        number = {lit: i for i, lit in enumerate(self._scanned)}
        self._patterns_of = [tuple(self.literals.get(lit, ())) for lit in self._scanned]
        # A checked pattern's other sets as ids: the literals each alone in its set (all
        # needed), as one set, and the sets of several (one of each needed).
        checks: dict[str, tuple[frozenset[int], tuple[frozenset[int], ...]]] = {}
        for p, sets in self.also.items():
            ids = [frozenset(map(number.__getitem__, lits)) for lits in sets]
            checks[p] = (frozenset().union(*(s for s in ids if len(s) == 1)),
                         tuple(s for s in ids if len(s) > 1))
        self._alone_of = [tuple(p for p in ps if p not in checks) for ps in self._patterns_of]
        self._checked_of = [tuple((p, *checks[p]) for p in ps if p in checks)
                            for ps in self._patterns_of]
        self._checked = frozenset(i for i, c in enumerate(self._checked_of) if c)
        # The same screen in one C call per text, where the automaton is built: every set of
        # each pattern (its first set and the others) as literal ids; the call gives the
        # patterns each of whose sets it found, by number in _sieved.
        self._sieve: Callable[[bytes, int], tuple[list[int], Mapping[int, list[int]]]] | None
        self._sieve = None
        self._sieved = list(first)
        screen_literals, pack_screen = _text.screen_literals, _text.pack_screen
        if pack is not None and screen_literals is not None and pack_screen is not None:
            each_set = [[[number[lit] for lit in lits]
                         for lits in (first[p], *self.also.get(p, ()))]
                        for p in self._sieved]
            self._sieve = partial(screen_literals, pack,
                                  pack_screen(len(self._scanned), each_set))
        # Without a scan, many literals are first screened by their first three letters:
        # a text's three-letter sequences are one C-level pass, and a literal whose first three
        # are not among them is not in the text. Short literals are searched for directly.
        self._short = [lit for lit in self._ordered if len(lit) < 3]
        self._by_gram = [lit for lit in self._ordered if len(lit) >= 3]
        self._grams = [tuple(lit[:3]) for lit in self._by_gram]

    def matching(self, texts: Iterable[str]) -> set[str]:
        """Patterns that may match one of ``texts``: a superset of those that do (each
        pattern's first set of required literals screened only)."""
        return self._screen(texts, every_set=False)

    def matching_all(self, texts: Iterable[str]) -> set[str]:
        """What :meth:`matching` finds, less the patterns missing one of their other required
        literals from every text: still a superset of the patterns that match. Each pattern
        left out saves running it over the whole text."""
        return self._screen(texts, every_set=True)

    def matching_each(self, texts: Sequence[str]) -> list[set[str]]:
        """Per text, the patterns that may match it: :meth:`matching_all` of that text alone.
        A match lies in one text, so each of a pattern's required literals must be in the same
        text; their union is a subset of :meth:`matching_all` of the texts together."""
        if not self.literals:
            return [set(self.unscreened) for _ in texts]
        if self._sieve is not None:
            out = []
            sieved = self._sieved
            for t in texts:
                found = set(self.unscreened)
                if t:
                    f = folded_text(t)
                    passed, ends = self._sieve(f.data, lead_tries(len(f.data)) + 1)
                    f.record(self._lead_ids, ends)
                    found.update(map(sieved.__getitem__, passed))
                out.append(found)
            return out
        if self._find is None:
            return [self._screen((t,), every_set=True) for t in texts]
        out = []
        for t in texts:
            found = set(self.unscreened)
            if t:
                self._found(self._scan([folded_text(t)]), found, every_set=True)
            out.append(found)
        return out

    def _found(self, seen: set[int], found: set[str], *, every_set: bool) -> None:
        """Add to ``found`` the patterns whose literals the scan saw (``seen``, their ids):
        one of the first set's, and with ``every_set`` one of each other set's."""
        if not every_set:
            found.update(*map(self._patterns_of.__getitem__, seen))
            return
        found.update(*map(self._alone_of.__getitem__, seen))
        checked_of = self._checked_of
        for i in seen & self._checked:
            for p, each, one_of in checked_of[i]:
                if p in found or not seen.issuperset(each):
                    continue
                if not one_of or not any(map(seen.isdisjoint, one_of)):
                    found.add(p)

    def _screen(self, texts: Iterable[str], *, every_set: bool) -> set[str]:
        found = set(self.unscreened)
        if not self.literals:
            return found
        folded = [folded_text(t) for t in texts if t]
        if self._find is not None:
            # By the scan's literal ids, which it reports: every set of every pattern.
            self._found(self._scan(folded), found, every_set=every_set)
            return found
        present = self._present(folded)
        literals = self.literals
        also = self.also if every_set else {}
        # The pure screen found the first sets' literals only: the others are looked for in
        # the text, each once.
        text = "\x00".join(f.data.decode("latin-1") for f in folded) if also else ""
        known: dict[str, bool] = {}

        def holds(lit: str) -> bool:
            has = known.get(lit)
            if has is None:
                has = known[lit] = lit in text
            return has

        for lit in present:
            for p in literals.get(lit, ()):
                sets = also.get(p)
                if sets is None or all(any(map(holds, s)) for s in sets):
                    found.add(p)
        return found

    def _present(self, folded: list[FoldedText]) -> set[str]:
        """The literals of each pattern's first set found in one of the ``folded`` texts, by
        the pure screen."""
        # One string to search: a literal never holds NUL, so none is found across a join.
        text = "\x00".join(f.data.decode("latin-1") for f in folded)
        if len(self._ordered) < _GRAM_SCREEN_FROM:
            return {lit for lit in self._ordered if lit in text}
        grams = set(zip(text, text[1:], text[2:], strict=False))
        maybe = compress(self._by_gram, map(grams.__contains__, self._grams))
        return {lit for lit in chain(self._short, maybe) if lit in text}

    def _scan(self, folded: list[FoldedText]) -> set[int]:
        """The ids of the literals the scan finds in one of the ``folded`` texts (every
        literal of every set); the places of the leads are kept in each text."""
        seen: set[int] = set()
        find = self._find
        assert find is not None  # the callers scan only with a finder
        for f in folded:
            # A lead is reported at each place it ends (as many as a pattern is tried at, and
            # one more), any other literal once.
            ends = find(f.data, lead_tries(len(f.data)) + 1)
            seen.update(ends)
            f.record(self._lead_ids, ends)
        return seen


def _on_match(lit_id: int, start: int, end: int, flags: int,
              context: tuple[defaultdict[int, list[int]], int]) -> None:
    ends, most = context
    found = ends[lit_id]
    if len(found) < most:
        found.append(end)


# Under IGNORECASE these non-ASCII letters match ASCII ones (ſ/s, ı/i, İ/i, K/k); the screen
# lower-cases text, so they are mapped to the letters they match first (the same table as the
# evaluator's screen form, matcher.FoldedText).
_SCREEN_TABLE = str.maketrans(dict(_FOLD_SPECIALS))


def _screen_form(text: str) -> str:
    if not text.isascii() and ("\u017f" in text or "\u0131" in text or "\u0130" in text):
        text = text.translate(_SCREEN_TABLE)
    return text.lower()


# A scan of bytes for many literals at once, each with whether it is reported wherever it
# occurs rather than once: ``find(data, most)`` gives {literal number: [end, ...]} for those it
# finds (ends ascending; the first ``most`` of each). The C extension's automaton
# (_automaton_finder), else Hyperscan's; without either, the pure screen.
_Finder = Callable[[bytes, int], Mapping[int, list[int]]]


def _automaton_finder(
    literals: Sequence[tuple[str, bool]],
) -> _Finder | None:
    """A :data:`_Finder` by the C extension's automaton (``_ctext.find_literals``: one
    pass, no call into Python per occurrence, the interpreter lock held throughout); None
    without the extension or when the automaton would be too large."""
    return _finder_of(_automaton_pack(literals))


def _finder_of(pack: bytes | None) -> _Finder | None:
    """The :data:`_Finder` that scans with an automaton ``pack`` (None without one)."""
    if pack is None or _text.find_literals is None:
        return None
    return partial(_text.find_literals, pack)


def _automaton_pack(literals: Sequence[tuple[str, bool]]) -> bytes | None:
    """The C extension's automaton of ``literals`` (see :func:`_automaton_finder`); None
    without the extension, without literals or when it would be too large."""
    pack_literals = _text.pack_literals
    if not literals or pack_literals is None or _text.find_literals is None:
        return None
    try:
        return pack_literals([lit.encode() for lit, _ in literals],
                             [every for _, every in literals])
    except ValueError:  # too large to pack
        return None


def _hyperscan_finder(
    literals: Sequence[tuple[str, bool]],
) -> _Finder | None:
    """A :data:`_Finder` by Hyperscan (a Python call per occurrence); None without it."""
    db = _hyperscan_literals(literals)
    if db is None:
        return None
    # Hyperscan's scratch space, one per thread: a database's own may serve one scan at a
    # time, and threads match with one rule set at once (a service's two matching threads,
    # the lookup threads rebuilding evidence); a second scan raised ScratchInUseError.
    scratches = threading.local()

    def find(data: bytes, most: int) -> Mapping[int, list[int]]:
        scratch = getattr(scratches, "space", None)
        if scratch is None:
            scratch = scratches.space = _new_scratch(db)
        ends: defaultdict[int, list[int]] = defaultdict(list)
        db.scan(data, match_event_handler=_on_match, context=(ends, most), scratch=scratch)
        return ends

    return find


def _new_scratch(db: Any) -> Any:
    """Scratch space of its own for one thread's scans of ``db`` (a Hyperscan database)."""
    import hyperscan

    return hyperscan.Scratch(db)


def _hyperscan_literals(literals: Sequence[tuple[str, bool]]) -> Any:
    """A Hyperscan database of ``literals`` (ids by position), each with whether it is reported
    wherever it occurs rather than once; None without Hyperscan."""
    if not literals:
        return None
    try:
        import hyperscan
    except ImportError:
        return None
    db = hyperscan.Database()
    exprs = ["".join(f"\\x{b:02x}" for b in lit.encode()).encode() for lit, _ in literals]
    db.compile(
        expressions=exprs,
        ids=list(range(len(exprs))),
        elements=len(exprs),
        flags=[0 if every else hyperscan.HS_FLAG_SINGLEMATCH for _, every in literals],
    )
    return db


# Leads more common than this (zipf, as a word) are found by the evaluator when it needs them,
# which stops looking after a few: the scan would report every one (and each would be a
# Python call with Hyperscan).
_LEAD_ZIPF_MAX = 6.5


def _worth_reporting(lead: str) -> bool:
    # Only a word is looked up (in the table, never wordfreq: this is rule-set compile time).
    return len(lead) >= 3 and not (lead.isalpha() and _zipf(lead) >= _LEAD_ZIPF_MAX)


_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789 ,.:;!?'\"&%$#@/-_=+<>")


def required_literals(pattern: str) -> list[str] | None:
    """Lower-case strings at least one of which every match of ``pattern`` contains, or None.

    Only patterns that Python's ``re`` reads the same way as the ``regex`` module are screened;
    anything exotic (fuzzy ``{e<=1}``, ``\\p{..}``, POSIX classes) returns None.
    """
    if "{" in pattern and re.search(r"\{(?![\d,]*\})", pattern):
        return None
    if "[[:" in pattern or "(?V" in pattern or "(?r" in pattern:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = _sre_parse.parse(pattern, re.IGNORECASE)
    except Exception:  # re.error, or anything the private parser trips on
        return None
    found = _required(list(tree))
    if not found or min(len(x) for x in found) < 2:
        return None
    return sorted(set(found))


def required_literal_sets(pattern: str) -> list[list[str]] | None:
    """Every set of alternative lower-case strings that each match of ``pattern`` contains one
    of (all the sets hold at once, where :func:`required_literals` gives the best one), or
    None; read as :func:`required_literals` reads patterns."""
    if required_literals(pattern) is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = _sre_parse.parse(pattern, re.IGNORECASE)
    return [sorted(set(o)) for o in _options(list(tree))]


# The parsed forms of a repeat (greedy, lazy, possessive).
_REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")


def number_runs(pattern: str) -> list[str] | None:
    """Lower-case runs of ASCII letters and digits such that every match of ``pattern`` holds
    a digit, then whitespace, then one of them (case aside, as IGNORECASE reads letters); or
    None. ``/\\d+ killed/`` gives ``["killed"]``, ``/\\d+\\s+(dead|hurt)/`` both words, and
    ``/\\d+ ?killed/`` (the space may be missing) or ``/\\d+-year/`` nothing. Read as
    :func:`required_literals` reads patterns; see :func:`watchers.rules.lookup.number_marks`
    for what the lookup index keeps of a text to answer it."""
    if required_literals(pattern) is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = _sre_parse.parse(pattern, re.IGNORECASE)
    try:
        return _number_runs(list(tree))
    except RecursionError:  # groups nested past what a reading of them can follow
        return None


# Runs shorter than this narrow too little to be worth a lookup index query.
_MIN_NUMBER_RUN = 2


def _number_runs(items: list[Any]) -> list[str] | None:
    """The best set of runs (the longest shortest run, then the fewest) found in a sequence of
    parsed items, all of which every match goes through."""
    found: list[list[str]] = []
    for i, (op, arg) in enumerate(items):
        name = str(op)
        if (i + 1 < len(items) and _is_space(*items[i + 1], first=True)
                and _ends_digit(items[:i + 1])):
            j = i + 2
            while j < len(items) and _is_space(*items[j], first=False):
                j += 1
            runs = _leading_runs(items[j:])
            if runs:
                found.append(runs)
        elif (group := _group(name, arg)) is not None:
            sub = _number_runs(group)
            if sub:
                found.append(sub)
        elif name in _REPEATS and arg[0] >= 1:
            sub = _number_runs(list(arg[2]))
            if sub:
                found.append(sub)
        elif name == "BRANCH":
            branches = [_number_runs(list(b)) for b in arg[1]]
            if branches and all(branches):
                found.append(sorted({r for b in branches if b for r in b}))
    if not found:
        return None
    return max(found, key=lambda o: (min(map(len, o)), -len(o)))


def _leading_runs(items: list[Any]) -> list[str] | None:
    """The runs one of which every match of a sequence of parsed items begins with."""
    run = []
    for op, arg in items:
        if str(op) != "LITERAL":
            break
        ch = chr(arg).lower()
        if not (ch.isascii() and ch.isalnum()):
            break
        run.append(ch)
    if run:
        return ["".join(run)] if len(run) >= _MIN_NUMBER_RUN else None
    if not items:
        return None
    op, arg = items[0]
    name = str(op)
    if (group := _group(name, arg)) is not None:
        return _leading_runs(group)
    if name == "BRANCH":
        branches = [_leading_runs(list(b)) for b in arg[1]]
        if branches and all(branches):
            return sorted({r for b in branches if b for r in b})
    return None


def _group(name: str, arg: Any) -> list[Any] | None:
    """The items of a parsed group (capturing or not, atomic), None for any other item."""
    if name == "SUBPATTERN":
        return list(arg[-1])
    if name == "ATOMIC_GROUP":
        return list(arg)
    return None


def _ends_digit(items: list[Any]) -> bool:
    """Whether every match of a sequence of parsed items ends with a digit."""
    for op, arg in reversed(items):  # (a loop: a thousand optional items are no recursion)
        if _is_digit(op, arg):
            return True
        name = str(op)
        if (group := _group(name, arg)) is not None:
            return _ends_digit(group)
        if name == "BRANCH":
            return all(_ends_digit(list(b)) for b in arg[1])
        if name not in _REPEATS:
            return False
        low, high, body = arg
        if high == 0 or not _ends_digit(list(body)):
            return False
        if low >= 1:
            return True
        # repeated none at all, the match ends where the items before end
    return False


def _is_digit(op: Any, arg: Any) -> bool:
    """Whether a parsed item is one character, a digit (a repeat of one: :func:`_ends_digit`)."""
    return _one_of(op, arg, "CATEGORY_DIGIT", lambda ch: "0" <= ch <= "9")


def _is_space(op: Any, arg: Any, *, first: bool) -> bool:
    """Whether a parsed item matches nothing but whitespace (the first of a run: one
    character at least; a later one may match none)."""
    if str(op) in _REPEATS:
        low, _high, body = arg
        return (low >= 1 or not first) and len(body) == 1 and _is_space(*body[0], first=True)
    return _one_of(op, arg, "CATEGORY_SPACE", str.isspace)


def _one_of(op: Any, arg: Any, category: str, holds: Callable[[str], bool]) -> bool:
    """Whether a parsed item is one character of a kind: a literal that ``holds``, or a class
    (not negated) each of whose members does (the ``category``, literals, small ranges)."""
    name = str(op)
    if name == "LITERAL":
        return holds(chr(arg))
    if name != "IN" or not arg:
        return False
    for member, value in arg:
        kind = str(member)
        if kind == "CATEGORY":
            ok = str(value) == category
        elif kind == "LITERAL":
            ok = holds(chr(value))
        elif kind == "RANGE":
            low, high = value
            ok = high - low < 64 and all(holds(chr(c)) for c in range(low, high + 1))
        else:  # a negated class, another category
            ok = False
        if not ok:
            return False
    return True


def _required(items: list[Any]) -> list[str] | None:
    """The best set of alternative literals that a sequence of parsed items requires."""
    options = _options(items)
    if not options:
        return None
    # The best option has the longest shortest literal, then the fewest alternatives.
    return max(options, key=lambda o: (min(len(x) for x in o), -len(o)))


def _options(items: list[Any]) -> list[list[str]]:
    """The sets of alternative literals a sequence of parsed items requires, every one."""
    options: list[list[str]] = []
    run: list[str] = []

    def close_run() -> None:
        if run:
            options.append(["".join(run)])
            run.clear()

    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            ch = chr(arg).lower()
            if ch in _PLAIN:
                run.append(ch)
                continue
            close_run()
        elif name == "SUBPATTERN":
            close_run()
            sub = _required(list(arg[-1]))
            if sub:
                options.append(sub)
        elif name in _REPEATS:
            close_run()
            low, _high, body = arg
            if low >= 1:
                sub = _required(list(body))
                if sub:
                    options.append(sub)
        elif name == "ATOMIC_GROUP":
            close_run()
            sub = _required(list(arg))
            if sub:
                options.append(sub)
        elif name == "BRANCH":
            close_run()
            branches = [_required(list(b)) for b in arg[1]]
            if branches and all(branches):
                options.append([x for b in branches if b for x in b])
        else:
            # Classes, anchors, backreferences, lookarounds: nothing required, and they break a
            # run of literals.
            close_run()
    close_run()
    return options


class RuleIndex(Generic[R]):
    """Anchor index over a list of rules (in name order); see the module docstring."""

    def __init__(self, rules: Sequence[R], aliases: Aliases) -> None:
        self.rules = list(rules)
        self.aliases = aliases
        self.by_key: dict[str, list[int]] = {}
        self.by_pair: dict[str, list[tuple[str, int]]] = {}  # rarer word → (other word, rule)
        # rarer word → (word before or after it, whether it is the second, rule)
        self.by_bigram: dict[str, list[tuple[str, bool, int]]] = {}
        self.by_prefix: dict[str, list[int]] = {}
        self.by_fuzzy: dict[_FuzzyTerm, list[int]] = {}
        # fuzzy term → (word the article must also hold, rule)
        self.by_fuzzy_pair: dict[_FuzzyTerm, list[tuple[str, int]]] = {}
        self.by_regex: dict[str, list[int]] = {}
        self.always: list[int] = []
        # Rules of regexes alone, which never ask for a key's token numbers.
        self._keyless = frozenset(
            i for i, rule in enumerate(self.rules) if _regexes_only(rule.node)
        )
        fields: set[str] = set()
        for i, rule in enumerate(self.rules):
            _fields_of(rule.node, rule.fields or DEFAULT_FIELDS, fields)
            found = _anchors(rule.node, rule.threshold, aliases)
            if found is None:
                self.always.append(i)
                continue
            for anchor in found[0]:
                kind = anchor[0]
                if kind == "key":
                    self.by_key.setdefault(anchor[1], []).append(i)
                elif kind == "pair":
                    left, right = anchor[1], anchor[2]
                    rare, other = sorted((left, right), key=_word_cost)
                    self.by_pair.setdefault(rare, []).append((other, i))
                elif kind == "bigram":
                    left, right = anchor[1], anchor[2]
                    if _word_cost(left) <= _word_cost(right):
                        self.by_bigram.setdefault(left, []).append((right, False, i))
                    else:
                        self.by_bigram.setdefault(right, []).append((left, True, i))
                elif kind == "prefix":
                    self.by_prefix.setdefault(anchor[1], []).append(i)
                elif kind == "fuzzy":
                    self.by_fuzzy.setdefault(_FuzzyTerm(anchor[1], anchor[2]), []).append(i)
                elif kind == "fuzzy_pair":
                    term = _FuzzyTerm(anchor[1], anchor[2])
                    self.by_fuzzy_pair.setdefault(term, []).append((anchor[3], i))
                else:
                    self.by_regex.setdefault(anchor[1], []).append(i)
        self.fields = tuple(sorted(fields))
        self.prefix_lengths = sorted({len(p) for p in self.by_prefix})
        self._regex = _RegexScreen(sorted(self.by_regex))
        self._regex_patterns = frozenset(self.by_regex)
        # Every fuzzy term goes in the vocabulary, anchor or not: the evaluator reads a fuzzy
        # term's candidate tokens from it, inside a NOT as much as anywhere.
        fuzzy_terms: set[_FuzzyTerm] = set(self.by_fuzzy) | set(self.by_fuzzy_pair)
        for rule in self.rules:
            _fuzzy_terms(rule.node, rule.threshold, fuzzy_terms)
        self._fuzzy = _FuzzyVocabulary(sorted(fuzzy_terms, key=_fuzzy_order), aliases)

    def candidates(
        self, analysis: Analysis, regex_fields: RegexFields | None = None
    ) -> tuple[list[R], FuzzyCandidates]:
        """The rules worth evaluating on ``analysis``, and each fuzzy term's candidate tokens.

        ``regex_fields``, when given, learns per field the regexes that may match there (see
        :class:`~.matcher.RegexFields`): an evaluator given it tries no other there."""
        hit: set[int] = set(self.always)
        # The article's keys, from the token lists (a key index is built only if a rule asks);
        # none when no anchor is a word (a rule set whose word rules are all in the C engine
        # may have only regexes and prefixes here).
        wants_keys = bool(self.by_key or self.by_pair or self.by_bigram or self._fuzzy.terms)
        keys: set[str] = analysis.key_set(self.fields) if wants_keys else set()
        norms: set[str] = set()
        if self.prefix_lengths:
            for name in self.fields:
                norms.update(analysis.field(name).norms)
        # A dict view & a set walks the smaller side in C; most of an article's words anchor
        # nothing, and a large rule set has more anchors than an article has words.
        by_key = self.by_key
        hit.update(chain.from_iterable(map(by_key.__getitem__, by_key.keys() & keys)))
        if self.by_pair:
            by_pair = self.by_pair
            for k in by_pair.keys() & keys:
                for other, i in by_pair[k]:
                    if other in keys:
                        hit.add(i)
        if self.by_bigram:
            by_bigram = self.by_bigram
            fts = [analysis.field(name) for name in self.fields]
            for k in by_bigram.keys() & keys:
                for other, second, i in by_bigram[k]:
                    if other not in keys or i in hit:
                        continue
                    a, b = (other, k) if second else (k, other)
                    if any(ft.adjacent(a, b) for ft in fts):
                        hit.add(i)
        if self.prefix_lengths:
            by_prefix = self.by_prefix
            for n in norms:
                for length in self.prefix_lengths:
                    if length > len(n):
                        break
                    ids = by_prefix.get(n[:length])
                    if ids:
                        hit.update(ids)
        fuzzy: dict[tuple[str, float], list[str]] = {}
        if self._fuzzy.terms:
            by_fuzzy = self.by_fuzzy
            by_fuzzy_pair = self.by_fuzzy_pair
            for k, terms in self._fuzzy.lookup(keys).items():
                for term in terms:
                    fuzzy.setdefault((term.key, term.threshold), []).append(k)
                    ids = by_fuzzy.get(term)
                    if ids:
                        hit.update(ids)
                    pairs = by_fuzzy_pair.get(term)
                    if pairs:
                        for other, i in pairs:
                            if other in keys:
                                hit.add(i)
        if self.by_regex:
            # Field by field: a regex matches within one field, so it is a candidate only
            # where one field holds every string it requires.
            names = self.fields
            each = self._regex.matching_each([analysis.article.field(f) for f in names])
            by_regex = self.by_regex
            for found in each:
                for pattern in found:
                    hit.update(by_regex[pattern])
            if regex_fields is not None:
                regex_fields.learn(self._regex_patterns, dict(zip(names, each, strict=True)))
        keyed = hit.difference(self._keyless) if self._keyless else hit
        if len(keyed) > _PROBING_CANDIDATES:
            # Many rules will ask for many keys: build each field's key index at once rather
            # than let it scan the token list for the first few (see text.KeyIndex). Regexes
            # read the text, not the keys: their rules do not count.
            for name in self.fields:
                analysis.field(name).by_key.keys()
        return list(map(self.rules.__getitem__, sorted(hit))), fuzzy


def _regexes_only(node: Node) -> bool:
    if isinstance(node, Regex):
        return True
    if isinstance(node, (And, Or)):
        return all(_regexes_only(child) for child in node.children)
    if isinstance(node, Not):
        return _regexes_only(node.child)
    return False


class _FuzzyVocabulary:
    """Which fuzzy terms each token matches, computed once per distinct token and cached."""

    def __init__(self, terms: list[_FuzzyTerm], aliases: Aliases) -> None:
        self.terms = terms
        self.aliases = aliases
        self.cache: dict[str, tuple[_FuzzyTerm, ...]] = {}
        self.matched: dict[str, tuple[_FuzzyTerm, ...]] = {}  # the cached keys that match any
        self.by_key: dict[str, list[_FuzzyTerm]] = {}
        self.by_translit: dict[str, list[_FuzzyTerm]] = {}
        self.by_letters: dict[str, list[_FuzzyTerm]] = {}
        # The stems of the names each term takes declined (variants.declined).
        self.by_stem: dict[str, list[_FuzzyTerm]] = {}
        keys: dict[str, list[_FuzzyTerm]] = {}
        for term in terms:
            keys.setdefault(term.key, []).append(term)
            for k in {term.key} | aliases.fuzzy_of(term.key):
                self.by_key.setdefault(k, []).append(term)
            self.by_translit.setdefault(translit_key(term.key), []).append(term)
            self.by_letters.setdefault("".join(sorted(term.key)), []).append(term)
            for stem in aliases.declension_stems(term.key):
                self.by_stem.setdefault(stem, []).append(term)
        self.vocab = list(keys)
        self.vocab_terms = [keys[k] for k in self.vocab]
        self.vocab_translit = [translit_key(k) for k in self.vocab]
        # Scores at or above the lowest threshold are candidates; the slack keeps rapidfuzz
        # from turning away a pair exactly at it, which compare() accepts.
        lowest = min((t.threshold for t in terms), default=100.0)
        self.cutoff = max(0.0, lowest / 100.0 - CUTOFF_SLACK)
        # The vocabulary as the C extension's similar() reads it, packed on first use.
        self._packs: tuple[bytes, bytes] | None = None

    def lookup(self, keys: set[str]) -> dict[str, tuple[_FuzzyTerm, ...]]:
        """For each of ``keys`` that matches some fuzzy term, the terms it matches."""
        # Set operations keep the per-word work in C: most of an article's words are cached
        # already and match no fuzzy term. The cache is read and filled through the dicts
        # taken here: starting afresh replaces them (never clears them), so another thread
        # doing so meanwhile cannot take away an answer this call has counted on.
        cache, matched = self.cache, self.matched
        new = keys.difference(cache)
        if new:
            if len(cache) + len(new) > _CACHE_LIMIT:
                # Start afresh rather than track recency: the next articles refill what they use.
                cache, matched = self.cache, self.matched = {}, {}
                new = set(keys)
            self._score(sorted(new), cache, matched)
        return {k: matched[k] for k in matched.keys() & keys}

    def accepted(self, words: Iterable[str]) -> dict[str, tuple[_FuzzyTerm, ...]]:
        """What :meth:`lookup` gives for ``words``, worked out afresh and not cached: for a
        caller that keeps its own answers (the C engine keeps each word's verdicts)."""
        found: dict[str, tuple[_FuzzyTerm, ...]] = {}
        self._score(sorted(words), {}, found)
        return found

    def _score(
        self,
        new: list[str],
        cache: dict[str, tuple[_FuzzyTerm, ...]],
        matched: dict[str, tuple[_FuzzyTerm, ...]],
    ) -> None:
        # Candidates by word, made only for the words that have any (most new words have
        # none: a set for each was most of this method's own time).
        pairs: dict[str, set[_FuzzyTerm]] = {}
        translit = [translit_key(k) for k in new]
        by_key, by_translit, by_letters = self.by_key, self.by_translit, self.by_letters
        by_stem = self.by_stem
        for k, t in zip(new, translit, strict=True):
            same = by_key.get(k)
            alike = by_translit.get(t)
            anagram = by_letters.get("".join(sorted(k)))
            if same or alike or anagram:
                cand = pairs.setdefault(k, set())
                for found_terms in (same, alike, anagram):
                    if found_terms:
                        cand.update(found_terms)
            for stem in token_stems(k):
                declined = by_stem.get(stem)
                if declined:
                    pairs.setdefault(k, set()).update(declined)
        if self.vocab and self.cutoff <= 0.0:
            for k in new:
                for terms in self.vocab_terms:
                    pairs.setdefault(k, set()).update(terms)
        elif self.vocab:
            similar, packs = _text._similar, self._packs
            if similar is not None and packs is None and _text._pack_choices is not None:
                packer = _text._pack_choices
                packs = self._packs = (packer(self.vocab), packer(self.vocab_translit))
            packed: tuple[bytes | None, bytes | None] = packs or (None, None)
            for queries, choices, pack in zip((new, translit),
                                              (self.vocab, self.vocab_translit), packed,
                                              strict=True):
                found: Iterable[tuple[int, int]] = (
                    _c_similar_pairs(similar, queries, choices, pack, self.cutoff)
                    if similar is not None and pack
                    else _similar_pairs(queries, choices, self.cutoff))
                for r, c in found:
                    pairs.setdefault(new[r], set()).update(self.vocab_terms[c])
        for k in new:
            some = pairs.get(k)
            if not some:
                cache[k] = ()
                continue
            accepted = tuple(
                t for t in some if compare(t.key, k, t.threshold, self.aliases) is not None
            )
            cache[k] = accepted
            if accepted:
                matched[k] = accepted


# rapidfuzz's process module and Indel's scorer, and whether numpy is there (rapidfuzz's cdist
# returns a numpy array): imported on first use, and kept, for an import statement run on
# every call costs more than scoring a new word or two against a small vocabulary.
_RAPIDFUZZ: tuple[Any, Any, bool] | None = None


def _rapidfuzz() -> tuple[Any, Any, bool]:
    global _RAPIDFUZZ
    if _RAPIDFUZZ is None:
        from rapidfuzz import process
        from rapidfuzz.distance import Indel

        try:
            import numpy  # noqa: F401
        except ImportError:
            has_numpy = False
        else:
            has_numpy = True
        _RAPIDFUZZ = (process, Indel.normalized_similarity, has_numpy)
    return _RAPIDFUZZ


# Words up to this long are compared in C (a plain LCS table: a long pair costs the product of
# their lengths); longer ones, which a fuzzy term of that length could still be similar to,
# go to rapidfuzz's bit-parallel scorer (a 19,000-letter pair: 0.4 s there, 1.2 s in C).
_C_LONGEST = 64


def _c_similar_pairs(similar: Callable[[list[str], bytes, float], list[tuple[int, int]]],
                     queries: list[str], choices: list[str], pack: bytes, cutoff: float
                     ) -> list[tuple[int, int]]:
    """:func:`_similar_pairs` through the C extension's ``similar`` for the usual words."""
    if all(len(q) <= _C_LONGEST for q in queries):
        return similar(queries, pack, cutoff)
    short = [i for i, q in enumerate(queries) if len(q) <= _C_LONGEST]
    long = [i for i, q in enumerate(queries) if len(q) > _C_LONGEST]
    found = [(short[r], c) for r, c in similar([queries[i] for i in short], pack, cutoff)]
    found += [(long[r], c) for r, c in _similar_pairs([queries[i] for i in long], choices,
                                                      cutoff)]
    return found


def _may_reach(length: int, shortest: int, longest: int, cutoff: float) -> bool:
    """Whether a word of ``length`` may be ``cutoff`` similar (normalised Indel) to a word whose
    length lies between ``shortest`` and ``longest`` (rounded generously: the scorer decides)."""
    other = min(max(length, shortest), longest)  # the closest length there is
    total = length + other
    return total == 0 or 2 * min(length, other) / total >= cutoff - 1e-9


def _similar_pairs(
    queries: list[str], choices: list[str], cutoff: float
) -> Iterable[tuple[int, int]]:
    """Index pairs whose Indel similarity reaches ``cutoff``: one batch when numpy is there.

    A query whose length is too far from every choice's to reach the cutoff is not scored: two
    words of lengths m <= n are at most 2m / (m + n) similar (Indel needs n - m edits at
    least). With the C extension only words longer than it compares come here, hardly ever
    close enough to a fuzzy term's length: rapidfuzz's batch scorer (and numpy) is then never
    imported, which took 0.1 s in the middle of matching the first article with such a word."""
    if not choices or not queries:
        return
    shortest, longest = min(map(len, choices)), max(map(len, choices))
    kept = [r for r, q in enumerate(queries) if _may_reach(len(q), shortest, longest, cutoff)]
    if not kept:
        return
    if len(kept) < len(queries):
        for r, c in _similar_pairs([queries[r] for r in kept], choices, cutoff):
            yield kept[r], c
        return
    process, scorer, has_numpy = _rapidfuzz()
    if not has_numpy:
        for r, q in enumerate(queries):
            for _, _, c in process.extract(
                q, choices, scorer=scorer, score_cutoff=cutoff, limit=None
            ):
                yield r, c
        return
    scores = process.cdist(queries, choices, scorer=scorer, score_cutoff=cutoff, workers=1)
    rows, cols = scores.nonzero()
    yield from zip(rows.tolist(), cols.tolist(), strict=True)
