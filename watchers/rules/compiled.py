"""Rules decided and evidenced in C: which rules qualify, and their programs.

A rule qualifies when every term of it is a word (found by its key, the other keys of its
alias group, and its compound reading written apart), a fuzzy term, or an exact phrase of plain
words (each found by the keys of its alias group, as ``Evaluator._any_phrase`` finds it), and
they are joined by AND, OR, NOT and NEAR (whose sides are such terms, phrases or ORs of them,
so each occurrence is one hit). Its truth and evidence then depend
only on where its keys occur in the article's token lists (and, for a fuzzy term, on which of
the article's words it accepts), which the C engine (``watchers.rules._cmatch``, optional) reads
without making a Python object per term. It gives the same matches as
:class:`~watchers.rules.matcher.Evaluator`, which is the specification: the naive loop always
runs on it, and tests compare the two. Other rules (prefixes, regexes, sloppy phrases, phrases
with a fuzzy or prefix word, a NEAR inside a NEAR's side, words with several compound readings)
stay with the Python evaluator and the rule index.

Fuzzy terms: the engine keeps each word's verdicts (none for most words) and hits the tokens of
the words some fuzzy term accepts as ``Evaluator.resolve`` does (a fuzzy verdict only on whole
words). It asks for the words it has not met: they are looked up in a fuzzy vocabulary of the
engine's fuzzy terms (the rule index's kind), each word accepted gets its verdicts from
:func:`~watchers.rules.variants.compare`, the engine learns them, and the article is matched
again with them.

``NEWSWATCH_PURE`` set (as for the C word scan) or the extension missing: every rule stays in
Python.

The engine anchors a rule on keys, at least one of which any article it matches holds: a word
on its keys (and the rarer word of its compound reading), a phrase on the keys of its rarest
word (its alias group's), an AND on its cheapest positive child, a NEAR on its cheaper side, an
OR on all its children; a rule with no such key is tried on every article. Evaluating a rule in
C costs less than a finer anchor would save.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from ..models import Decision, Hit, Match
from .index import _FuzzyTerm, _FuzzyVocabulary, _word_cost
from .matcher import (
    _FIELD_RANK,
    _FIELD_WEIGHT,
    _HIT_FIELDS,
    DEFAULT_FIELDS,
    MAX_HITS,
    Analysis,
    _slot_descriptor,
)
from .syntax import And, Near, Node, Not, Or, Phrase, Term
from .variants import Aliases, compare, compound_splits

if TYPE_CHECKING:
    from .ruleset import Rule

__all__ = ["CompiledRules", "available"]

_WORD, _PHRASE, _AND, _OR, _NOT, _FUZZY, _NEAR = 0, 1, 2, 3, 4, 5, 6
# Words whose fuzzy verdicts the engine keeps before it starts afresh.
_VERDICTS_LIMIT = 200_000
_RANK_NAMES: Final = tuple(sorted(_FIELD_RANK, key=_FIELD_RANK.__getitem__))
_NO_FIELD: Final = None
# A word's fuzzy verdicts: (term number, kind, score, whole words only) per term accepting it.
_Verdicts = tuple[tuple[int, str, float, bool], ...]

_cmatch: Any = None
if os.environ.get("NEWSWATCH_PURE", "") in ("", "0"):
    try:
        _cmatch = importlib.import_module("watchers.rules._cmatch")
    except ImportError:  # not built: every rule is evaluated in Python
        _cmatch = None


def available() -> bool:
    """Whether the C engine is built and in use."""
    return _cmatch is not None


def _descriptor(name: str) -> Any:
    slot = _slot_descriptor(name)
    if slot is None:  # pragma: no cover - every pydantic model has these slots
        raise RuntimeError(f"pydantic models have no slot {name!r}")
    return slot


class _Builder:
    """Programs, term table and anchors of the qualifying rules, built rule by rule."""

    def __init__(self, aliases: Aliases) -> None:
        self.aliases = aliases
        self.keys: dict[str, int] = {}
        self.terms: dict[tuple[int, tuple[int, ...], str, tuple[int, ...]], int] = {}
        self.splits: dict[str, tuple[tuple[str, str], ...]] = {}
        self.fuzzy: dict[_FuzzyTerm, int] = {}  # fuzzy term -> its number

    def _key(self, key: str) -> int:
        k = self.keys.get(key)
        if k is None:
            k = self.keys[key] = len(self.keys)
        return k

    def _term(
        self, kind: int, keys: Sequence[str], label: str, split: Sequence[str] = ()
    ) -> int:
        spec = (kind, tuple(map(self._key, keys)), label, tuple(map(self._key, split)))
        t = self.terms.get(spec)
        if t is None:
            t = self.terms[spec] = len(self.terms)
        return t

    def _split(self, key: str) -> tuple[tuple[str, str], ...]:
        found = self.splits.get(key)
        if found is None:
            # compound_splits gives the best reading only; a word with more stays in Python
            # (see check), as the engine holds one reading a word.
            found = self.splits[key] = compound_splits(key)
        return found

    def _phrase(self, node: Phrase) -> int:
        """The term of an exact phrase: each word's keys (its own first), and per word their
        count when some word has more than one."""
        groups = [self._word_keys(w.key) for w in node.words]
        sizes = tuple(map(len, groups)) if any(len(g) > 1 for g in groups) else ()
        spec = (_PHRASE, tuple(self._key(k) for g in groups for k in g), node.text, sizes)
        t = self.terms.get(spec)
        if t is None:
            t = self.terms[spec] = len(self.terms)
        return t

    def _word_keys(self, key: str) -> list[str]:
        """The word's key, then the other keys of its alias group (in a fixed order)."""
        return [key, *sorted(self.aliases.of(key) - {key})]

    @staticmethod
    def _mask(field: str | None, defaults: Sequence[str]) -> int:
        mask = 0
        for name in defaults if field is None else (field,):
            mask |= 1 << _FIELD_RANK[name]
        return mask

    def check(self, node: Node) -> bool:
        """Whether ``node`` qualifies (see the module docstring)."""
        if isinstance(node, Term):
            if node.kind == "fuzzy":
                return True
            return node.kind == "word" and len(self._split(node.key)) <= 1
        if isinstance(node, Phrase):
            # A phrase's word is found by the keys of its alias group, each a single token
            # (aliases are single words); compound readings are for terms only, so no word of
            # an exact phrase spans tokens the engine does not see. Sloppy phrases and phrases
            # with a prefix or fuzzy word stay in Python.
            return (
                node.slop == 0 and len(node.words) > 0 and all(w.kind == "word" for w in node.words)
            )
        if isinstance(node, (And, Or)):
            return all(self.check(c) for c in node.children)
        if isinstance(node, Not):
            return self.check(node.child)
        if isinstance(node, Near):
            # Each side's occurrences are then its hits, one each; a NEAR inside a side (whose
            # occurrences hold several) stays in Python.
            return self._positional(node.left) and self._positional(node.right)
        return False

    def _positional(self, node: Node) -> bool:
        """Whether ``node`` is a term, phrase or OR of them that qualifies."""
        if isinstance(node, Or):
            return all(self._positional(c) for c in node.children)
        return isinstance(node, (Term, Phrase)) and self.check(node)

    def _fuzzy(self, node: Term, threshold: float) -> int:
        thr = float(node.similarity if node.similarity is not None else threshold)
        term = _FuzzyTerm(node.key, thr)
        f = self.fuzzy.get(term)
        if f is None:
            f = self.fuzzy[term] = len(self.fuzzy)
        return f

    def program(self, node: Node, defaults: Sequence[str], threshold: float) -> tuple[Any, ...]:
        """``node`` as the engine's nested tuples (it must :meth:`check`)."""
        if isinstance(node, Term) and node.kind == "fuzzy":
            # Its key number is the fuzzy term's number until the keys are all known.
            spec = (_FUZZY, (self._fuzzy(node, threshold),), node.text, ())
            t = self.terms.get(spec)
            if t is None:
                t = self.terms[spec] = len(self.terms)
            return (_FUZZY, t, self._mask(node.field, defaults))
        if isinstance(node, Term):
            split = self._split(node.key)
            keys = self._word_keys(node.key)
            term = self._term(_WORD, keys, node.text, split[0] if split else ())
            return (_WORD, term, self._mask(node.field, defaults))
        if isinstance(node, Phrase):
            return (_PHRASE, self._phrase(node), self._mask(node.field, defaults))
        if isinstance(node, And):
            # Positive children first, in order, then the NOTs' inner nodes, as evaluate does.
            kids = node.children
            pos = tuple(
                self.program(c, defaults, threshold) for c in kids if not isinstance(c, Not)
            )
            neg = tuple(
                self.program(c.child, defaults, threshold) for c in kids if isinstance(c, Not)
            )
            return (_AND, pos, neg)
        if isinstance(node, Or):
            return (_OR, tuple(self.program(c, defaults, threshold) for c in node.children))
        if isinstance(node, Near):
            # NEAR is symmetric (the same pairs either way round), so the side the rule is not
            # anchored on (the costlier), which a candidate article may lack, goes first: when
            # it is false the anchored side's hits are never gathered.
            sides = (node.left, node.right)
            costs = [self.anchors(side, threshold) for side in sides]
            if costs[0] is not None and costs[1] is not None and costs[0][1] < costs[1][1]:
                sides = (node.right, node.left)
            return (
                _NEAR,
                self.program(sides[0], defaults, threshold),
                self.program(sides[1], defaults, threshold),
                node.distance,
            )
        assert isinstance(node, Not)
        return (_NOT, self.program(node.child, defaults, threshold))

    def anchors(self, node: Node, threshold: float) -> tuple[frozenset[str | int], float] | None:
        """Keys (a fuzzy term by its number) one of which any article ``node`` is true on
        holds, with their cost; or None."""
        if isinstance(node, Term) and node.kind == "fuzzy":
            return frozenset({self._fuzzy(node, threshold)}), 2.0 * _word_cost(node.key)
        if isinstance(node, Term):
            words = self._word_keys(node.key)
            cost = float(sum(map(_word_cost, words)))
            keys: set[str | int] = set(words)
            for left, right in self._split(node.key):
                rarer = min((left, right), key=lambda k: (_word_cost(k), k))
                keys.add(rarer)
                cost += _word_cost(rarer)
            return frozenset(keys), cost
        if isinstance(node, Phrase):
            # The word whose keys (its alias group's) are rarest together.
            costed = []
            for w in node.words:
                group = self._word_keys(w.key)
                costed.append((float(sum(map(_word_cost, group))), group))
            cost, group = min(costed)
            return frozenset(group), cost
        if isinstance(node, Not):
            return None
        if isinstance(node, (And, Near)):
            # Every positive child (both sides of a NEAR) is true where the node is.
            best: tuple[frozenset[str | int], float] | None = None
            for child in node.children if isinstance(node, And) else (node.left, node.right):
                if isinstance(child, Not):
                    continue
                found = self.anchors(child, threshold)
                if found is not None and (best is None or found[1] < best[1]):
                    best = found
            return best
        assert isinstance(node, Or)
        union: set[str | int] = set()
        cost = 0.0
        for child in node.children:
            found = self.anchors(child, threshold)
            if found is None:
                return None
            union |= found[0]
            cost += found[1]
        return frozenset(union), cost


class CompiledRules:
    """The qualifying rules of a rule set, in the C engine.

    ``rules`` are the rule set's rules in name order; :attr:`numbers` are the positions in it of
    those the engine holds, and :attr:`rest` those of the others.
    """

    def __init__(self, rules: Sequence[Rule], aliases: Aliases) -> None:
        b = _Builder(aliases)
        specs: list[tuple[str, int, tuple[Any, ...]]] = []
        anchor_keys: list[frozenset[str | int] | None] = []
        self.numbers: list[int] = []
        self.rest: list[int] = []
        for i, rule in enumerate(rules):
            node = rule.node
            if type(rule.name) is not str or not b.check(node):
                self.rest.append(i)
                continue
            defaults = rule.fields or DEFAULT_FIELDS
            specs.append((rule.name, i, b.program(node, defaults, rule.threshold)))
            found = b.anchors(node, rule.threshold)
            anchor_keys.append(None if found is None else found[0])
            self.numbers.append(i)
        nkeys = len(b.keys)
        always: list[int] = []
        by_key: list[list[int]] = [[] for _ in range(nkeys + len(b.fuzzy))]
        for r, keys in enumerate(anchor_keys):
            if keys is None:
                always.append(r)
                continue
            for k in keys:
                by_key[nkeys + k if isinstance(k, int) else b.keys[k]].append(r)
        # A fuzzy term's key number follows the keys.
        terms = [
            (kind, (nkeys + keys[0],) if kind == _FUZZY else keys, label, split)
            for kind, keys, label, split in sorted(b.terms, key=b.terms.__getitem__)
        ]
        models = (
            Hit,
            Match,
            _descriptor("__dict__"),
            _descriptor("__pydantic_fields_set__"),
            _descriptor("__pydantic_extra__"),
            _descriptor("__pydantic_private__"),
            _HIT_FIELDS,
            frozenset(Match.model_fields),
            _RANK_NAMES,
            tuple(float(w) for w in _FIELD_WEIGHT),
            MAX_HITS,
            "exact",
            Decision,
        )
        self.engine = _cmatch.Engine(
            list(b.keys), terms, specs, by_key, always, models, fuzzy=len(b.fuzzy)
        )
        self._aliases = aliases
        # The fuzzy terms, their numbers, and each word's verdicts (see the module docstring).
        self._fuzzy_numbers = b.fuzzy
        self._vocabulary = (
            _FuzzyVocabulary(sorted(b.fuzzy, key=lambda t: (t.key, t.threshold)), aliases)
            if b.fuzzy
            else None
        )
        mask = self.engine.rank_mask
        # Sorted, as the rule index's.
        self.fields: tuple[str, ...] = tuple(
            sorted(name for name in _RANK_NAMES if mask & (1 << _FIELD_RANK[name]))
        )

    def __len__(self) -> int:
        return len(self.numbers)

    def _fields(self, analysis: Analysis) -> tuple[Any, ...]:
        out: list[Any] = [None] * len(_RANK_NAMES)
        for name in self.fields:
            ft = analysis.field(name)
            pos = ft.pos if type(ft.pos) is list else None
            last = ft.last if type(ft.last) is list else None
            out[_FIELD_RANK[name]] = (ft.keys, ft.starts, ft.ends, pos, last, ft.text, ft.norms)
        return tuple(out)

    def _verdicts(self, words: set[str]) -> dict[str, _Verdicts]:
        """Each of ``words`` with (term number, kind, score, whether the verdict holds for whole
        words only) per fuzzy term that accepts it; the engine learns them."""
        vocabulary = self._vocabulary
        assert vocabulary is not None  # the engine asks only when it has fuzzy terms
        out: dict[str, _Verdicts] = dict.fromkeys(words, ())
        numbers, aliases = self._fuzzy_numbers, self._aliases
        # The engine keeps the answers; the vocabulary's own cache would hold them twice.
        for word, terms in vocabulary.accepted(words).items():
            made = []
            for term in terms:
                v = compare(term.key, word, term.threshold, aliases)
                if v is not None:
                    made.append((numbers[term], v.kind, float(v.score), v.kind == "fuzzy"))
            out[word] = tuple(made)
        engine = self.engine
        if engine.learned + len(out) > _VERDICTS_LIMIT:
            # Start afresh rather than track recency: the next articles refill what they use.
            engine.forget()
        engine.learn(out)
        return out

    def _ask(self, call: Any, head: tuple[Any, ...], tail: tuple[Any, ...] = ()) -> Any:
        """``call(*head, verdicts, *tail)`` of the engine, given the verdicts of the words it
        has none for until it answers; those passed along count even when another thread
        makes it forget."""
        result = call(*head, None, *tail)
        given: dict[str, _Verdicts] = {}
        while type(result) is set:
            # Each round adds words to ``given`` (those it holds are never asked for), so the
            # rounds end.
            given.update(self._verdicts(result))
            result = call(*head, given, *tail)
        return result

    def match(self, analysis: Analysis,
              extra: list[tuple[int, Match]] | None = None) -> list[Match]:
        """The engine's rules that match, in rule order, with ``extra`` among them: the
        matches of other rules as (position in the rule set, match), in that order."""
        result: list[Match] = self._ask(
            self.engine.match, (self._fields(analysis), analysis.article.id), (extra,)
        )
        return result

    def decide(self, analysis: Analysis,
               extra: list[tuple[int, Decision]] | None = None) -> list[Decision]:
        """As :meth:`match`, each rule that matches as a :class:`~watchers.models.Decision`
        (its rule and score): the evidence is not built."""
        result: list[Decision] = self._ask(
            self.engine.decide, (self._fields(analysis), analysis.article.id), (extra,)
        )
        return result

    def candidates(self, analysis: Analysis) -> list[int]:
        """The positions of the engine's rules that :meth:`match` evaluates, in order."""
        result: list[int] = self._ask(self.engine.candidates, (self._fields(analysis),))
        return result


def compile_rules(rules: Sequence[Rule], aliases: Aliases) -> CompiledRules | None:
    """The C engine for ``rules``' qualifying ones, or None when it is not available or none
    qualifies."""
    if _cmatch is None:
        return None
    compiled = CompiledRules(rules, aliases)
    return compiled if len(compiled) else None
