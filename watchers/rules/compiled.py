"""Rules decided and evidenced in C: which rules qualify, and their programs.

A rule qualifies when every term of it is a word (found by its key, the other keys of its
alias group, and its compound reading written apart) or an exact phrase of words in no alias
group, and they are joined by AND, OR and NOT. Its truth and evidence then depend only on where
its keys occur in the article's token lists, which the C engine (``watchers.rules._cmatch``,
optional) reads without making a Python object per term. It gives the same matches as
:class:`~watchers.rules.matcher.Evaluator`, which is the specification: the naive loop always
runs on it, and tests compare the two. Other rules (fuzzy terms, prefixes, NEAR, regexes,
sloppy phrases, phrases with an aliased word) stay with the Python evaluator and the rule index.

``NEWSWATCH_PURE`` set (as for the C word scan) or the extension missing: every rule stays in
Python.

The engine anchors a rule on keys, at least one of which any article it matches holds: a word
on its keys (and the rarer word of its compound reading), a phrase on its rarest word, an AND
on its cheapest positive child, an OR on all its children; a rule with no such key is tried on
every article. Evaluating a rule in C costs less than a finer anchor would save.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from ..models import Hit, Match
from .matcher import (
    _FIELD_RANK,
    _FIELD_WEIGHT,
    _HIT_FIELDS,
    DEFAULT_FIELDS,
    MAX_HITS,
    Analysis,
)
from .syntax import And, Node, Not, Or, Phrase, Term
from .variants import Aliases, _zipf, compound_splits

if TYPE_CHECKING:
    from .ruleset import Rule

__all__ = ["CompiledRules", "available"]

_WORD, _PHRASE, _AND, _OR, _NOT = 0, 1, 2, 3, 4
_RANK_NAMES: Final = tuple(sorted(_FIELD_RANK, key=_FIELD_RANK.__getitem__))
_NO_FIELD: Final = None

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
    """The data descriptor through which a model's slot ``name`` is set (see matcher)."""
    from pydantic import BaseModel

    for klass in BaseModel.__mro__:
        slot = klass.__dict__.get(name)
        if slot is not None and hasattr(slot, "__set__"):
            return slot
    raise RuntimeError(f"pydantic models have no slot {name!r}")  # pragma: no cover


def _cost(key: str) -> float:
    return 10.0 ** _zipf(key) if key.isascii() else 1.0


class _Builder:
    """Programs, term table and anchors of the qualifying rules, built rule by rule."""

    def __init__(self, aliases: Aliases) -> None:
        self.aliases = aliases
        self.keys: dict[str, int] = {}
        self.terms: dict[tuple[int, tuple[int, ...], str, tuple[int, ...]], int] = {}
        self.splits: dict[str, tuple[tuple[str, str], ...]] = {}

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
            found = self.splits[key] = compound_splits(key)
            if len(found) > 1:  # pragma: no cover - compound_splits gives the best reading only
                raise AssertionError(f"more than one compound reading of {key!r}")
        return found

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
            return node.kind == "word" and len(self._split(node.key)) <= 1
        if isinstance(node, Phrase):
            return (
                node.slop == 0
                and len(node.words) > 0
                and all(w.kind == "word" and not self.aliases.of(w.key) for w in node.words)
            )
        if isinstance(node, (And, Or)):
            return all(self.check(c) for c in node.children)
        if isinstance(node, Not):
            return self.check(node.child)
        return False

    def program(self, node: Node, defaults: Sequence[str]) -> tuple[Any, ...]:
        """``node`` as the engine's nested tuples (it must :meth:`check`)."""
        if isinstance(node, Term):
            split = self._split(node.key)
            keys = self._word_keys(node.key)
            term = self._term(_WORD, keys, node.text, split[0] if split else ())
            return (_WORD, term, self._mask(node.field, defaults))
        if isinstance(node, Phrase):
            keys = [w.key for w in node.words]
            return (_PHRASE, self._term(_PHRASE, keys, node.text), self._mask(node.field, defaults))
        if isinstance(node, And):
            # Positive children first, in order, then the NOTs' inner nodes, as evaluate does.
            kids = node.children
            pos = tuple(self.program(c, defaults) for c in kids if not isinstance(c, Not))
            neg = tuple(self.program(c.child, defaults) for c in kids if isinstance(c, Not))
            return (_AND, pos, neg)
        if isinstance(node, Or):
            return (_OR, tuple(self.program(c, defaults) for c in node.children))
        assert isinstance(node, Not)
        return (_NOT, self.program(node.child, defaults))

    def anchors(self, node: Node) -> tuple[frozenset[str], float] | None:
        """Keys one of which any article ``node`` is true on holds, with their cost; or None."""
        if isinstance(node, Term):
            keys = set(self._word_keys(node.key))
            cost = sum(map(_cost, keys))
            for left, right in self._split(node.key):
                rarer = min((left, right), key=lambda k: (_cost(k), k))
                keys.add(rarer)
                cost += _cost(rarer)
            return frozenset(keys), cost
        if isinstance(node, Phrase):
            rarest = min((w.key for w in node.words), key=lambda k: (_cost(k), k))
            return frozenset({rarest}), _cost(rarest)
        if isinstance(node, Not):
            return None
        if isinstance(node, And):
            best: tuple[frozenset[str], float] | None = None
            for child in node.children:
                if isinstance(child, Not):
                    continue
                found = self.anchors(child)
                if found is not None and (best is None or found[1] < best[1]):
                    best = found
            return best
        assert isinstance(node, Or)
        union: set[str] = set()
        cost = 0.0
        for child in node.children:
            found = self.anchors(child)
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
        anchor_keys: list[frozenset[str] | None] = []
        self.numbers: list[int] = []
        self.rest: list[int] = []
        for i, rule in enumerate(rules):
            node = rule.node
            if type(rule.name) is not str or not b.check(node):
                self.rest.append(i)
                continue
            defaults = rule.fields or DEFAULT_FIELDS
            specs.append((rule.name, i, b.program(node, defaults)))
            found = b.anchors(node)
            anchor_keys.append(None if found is None else found[0])
            self.numbers.append(i)
        always: list[int] = []
        by_key: list[list[int]] = [[] for _ in b.keys]
        for r, keys in enumerate(anchor_keys):
            if keys is None:
                always.append(r)
                continue
            for k in keys:
                by_key[b.keys[k]].append(r)
        terms = sorted(b.terms, key=b.terms.__getitem__)
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
        )
        self.engine = _cmatch.Engine(list(b.keys), terms, specs, by_key, always, models)
        mask = self.engine.rank_mask
        self.fields: tuple[str, ...] = tuple(
            name for name in _RANK_NAMES if mask & (1 << _FIELD_RANK[name])
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

    def match(self, analysis: Analysis) -> list[tuple[int, Match]]:
        """The engine's rules that match, as (position in the rule set, match), in order."""
        result: list[tuple[int, Match]] = self.engine.match(
            self._fields(analysis), analysis.article.id
        )
        return result

    def candidates(self, analysis: Analysis) -> list[int]:
        """The positions of the engine's rules that :meth:`match` evaluates, in order."""
        result: list[int] = self.engine.candidates(self._fields(analysis))
        return result


def compile_rules(rules: Sequence[Rule], aliases: Aliases) -> CompiledRules | None:
    """The C engine for ``rules``' qualifying ones, or None when it is not available or none
    qualifies."""
    if _cmatch is None:
        return None
    compiled = CompiledRules(rules, aliases)
    return compiled if len(compiled) else None
