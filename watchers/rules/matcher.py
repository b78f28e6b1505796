"""Evaluating a parsed query against an article and collecting the evidence.

:class:`Analysis` tokenises an article's fields once; :class:`Evaluator` walks a query's AST over
it, resolving each term to the tokens it hits. The compiled :class:`~watchers.rules.RuleSet` and
the naive reference loop (:func:`match_query`) share this code, so they can only differ in which
rules they try, never in what a rule yields.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import regex

from ..models import Article, Hit, HitKind, Match
from .syntax import And, Near, Node, Not, Or, Phrase, Regex, Term, parse
from .text import FieldText
from .variants import Aliases, Verdict, compare, shipped_aliases

__all__ = [
    "DEFAULT_FIELDS",
    "DEFAULT_THRESHOLD",
    "FIELD_WEIGHTS",
    "REGEX_TIMEOUT",
    "Analysis",
    "Evaluator",
    "match_query",
    "score_hits",
]

DEFAULT_THRESHOLD: Final = 85
DEFAULT_FIELDS: Final = ("title", "text")
# A hit in the title says more about what an article is about than one deep in the text.
FIELD_WEIGHTS: Final = {"title": 2.0, "text": 1.0, "source": 0.5, "url": 0.5}
_FIELD_RANK: Final = {"title": 0, "text": 1, "source": 2, "url": 3}
# A user's regex runs with a time limit so a pattern like (a+)+$ cannot hang matching.
REGEX_TIMEOUT: Final = 0.05
_EXACT: Final = Verdict("exact", 100.0)
_ALIAS: Final = Verdict("alias", 100.0)
_KIND_RANK: Final = {"exact": 0, "prefix": 1, "alias": 2, "fuzzy": 3, "regex": 4}


class Analysis:
    """An article's fields, tokenised on first use and kept for every rule that asks."""

    __slots__ = ("_fields", "article")

    def __init__(self, article: Article) -> None:
        self.article = article
        self._fields: dict[str, FieldText] = {}

    def field(self, name: str) -> FieldText:
        ft = self._fields.get(name)
        if ft is None:
            ft = self._fields[name] = FieldText.of(self.article.field(name))
        return ft


@dataclass(frozen=True, slots=True)
class _Occ:
    """Where a positional node (term, phrase, NEAR) occurs: a field and a span of positions."""

    field: str
    pos: int
    last: int
    hits: tuple[Hit, ...]


# A term's resolution: per field, (token number, verdict) pairs in token order.
_Resolved = dict[str, list[tuple[int, Verdict | None]]]
FuzzyCandidates = Mapping[tuple[str, float], Iterable[str]]


class Evaluator:
    """Evaluates rules over one :class:`Analysis`, caching each term's resolution.

    ``fuzzy_candidates`` (from a compiled rule set) maps a fuzzy term's (key, threshold) to the
    article's token keys that may match it; without it every token is compared. Either way the
    verdict comes from :func:`~watchers.rules.variants.compare`.
    """

    def __init__(
        self,
        analysis: Analysis,
        aliases: Aliases | None,
        fuzzy_candidates: FuzzyCandidates | None = None,
    ) -> None:
        self.analysis = analysis
        self.aliases = aliases
        self.fuzzy_candidates = fuzzy_candidates
        self._terms: dict[tuple[str, str, str, float], _Resolved] = {}
        self._regex: dict[tuple[str, str], list[tuple[int, int]]] = {}
        self._default_fields: Sequence[str] = DEFAULT_FIELDS

    def _fields(self, field: str | None) -> Sequence[str]:
        return self._default_fields if field is None else (field,)

    # -- terms ----------------------------------------------------------------------------------

    def resolve(self, term: Term, field: str, threshold: float) -> list[tuple[int, Verdict | None]]:
        """The tokens of ``field`` that ``term`` hits, with the verdict (None for a prefix)."""
        thr = float(term.similarity if term.similarity is not None else threshold)
        sig = (
            term.kind,
            term.key if term.kind != "prefix" else term.norm,
            field,
            thr if term.kind == "fuzzy" else 0.0,
        )
        found = self._terms.get(sig)
        if found is not None:
            return found[field]
        ft = self.analysis.field(field)
        out: list[tuple[int, Verdict | None]] = []
        if term.kind == "prefix":
            out = [(i, None) for i, tok in enumerate(ft.tokens) if tok.norm.startswith(term.norm)]
        elif term.kind == "word":
            keys = self.aliases.of(term.key) if self.aliases is not None else frozenset()
            for k in keys or (term.key,):
                v = _EXACT if k == term.key else _ALIAS
                out.extend((i, v) for i in ft.by_key.get(k, ()))
            out.sort()
        else:
            if self.fuzzy_candidates is not None:
                cands: Iterable[str] = self.fuzzy_candidates.get((term.key, thr), ())
            else:
                cands = ft.by_key
            for k in cands:
                idx = ft.by_key.get(k)
                if not idx:
                    continue
                verdict = compare(term.key, k, thr, self.aliases)
                if verdict is not None:
                    out.extend((i, verdict) for i in idx)
            out.sort()
        self._terms[sig] = {field: out}
        return out

    def _term_hits(self, term: Term, field: str, threshold: float, label: str) -> list[_Occ]:
        ft = self.analysis.field(field)
        occs = []
        for i, verdict in self.resolve(term, field, threshold):
            tok = ft.tokens[i]
            variant: str | None
            if verdict is None:
                kind, score, variant = "prefix", 100.0, tok.norm
            else:
                kind, score = verdict.kind, verdict.score
                variant = None if kind == "exact" else tok.norm
            hit = Hit(
                term=label,
                field=field,
                start=tok.start,
                end=tok.end,
                text=ft.text[tok.start : tok.end],
                kind=kind,
                score=score,
                variant=variant,
            )
            occs.append(_Occ(field, tok.pos, tok.last, (hit,)))
        return occs

    # -- positional nodes -----------------------------------------------------------------------

    def occurrences(self, node: Node, threshold: float) -> list[_Occ]:
        """Every place a term, phrase, NEAR or OR of them occurs, in field and position order."""
        if isinstance(node, Term):
            out: list[_Occ] = []
            for field in self._fields(node.field):
                out.extend(self._term_hits(node, field, threshold, node.text))
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
            out.sort(key=lambda o: (_FIELD_RANK[o.field], o.pos, o.last))
            return out
        raise TypeError(f"not a positional node: {node!r}")  # the parser prevents this

    def _phrase(self, node: Phrase, field: str, threshold: float) -> list[_Occ]:
        ft = self.analysis.field(field)
        per_word: list[dict[int, list[int]]] = []  # per word: position → token numbers
        for word in node.words:
            found = self.resolve(word, field, threshold)
            if not found:
                return []
            by_pos: dict[int, list[int]] = {}
            for i, _ in found:
                by_pos.setdefault(ft.tokens[i].pos, []).append(i)
            per_word.append(by_pos)
        verdicts = [dict(self.resolve(w, field, threshold)) for w in node.words]
        spans: list[list[int]] = []
        if node.slop == 0:
            for i0 in sorted(i for ids in per_word[0].values() for i in ids):
                chain = [i0]
                for by_pos in per_word[1:]:
                    nxt = by_pos.get(ft.tokens[chain[-1]].last + 1)
                    if not nxt:
                        break
                    chain.append(nxt[0])
                else:
                    spans.append(chain)
        else:
            spans = _sloppy(per_word, ft, len(node.words) - 1 + node.slop)
        out = []
        for chain in spans:
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
            hit = Hit(
                term=node.text,
                field=field,
                start=start,
                end=end,
                text=ft.text[start:end],
                kind=kind,
                score=min(scores),
                variant=variant,
            )
            out.append(_Occ(field, min(t.pos for t in toks), max(t.last for t in toks), (hit,)))
        return out

    def _near(self, node: Near, threshold: float) -> list[_Occ]:
        left = self.occurrences(node.left, threshold)
        if not left:
            return []
        right = self.occurrences(node.right, threshold)
        if not right:
            return []
        n = node.distance
        by_field: dict[str, list[_Occ]] = {}
        for r in right:
            by_field.setdefault(r.field, []).append(r)
        starts = {f: [r.pos for r in rs] for f, rs in by_field.items()}
        longest = {f: max(r.last - r.pos for r in rs) for f, rs in by_field.items()}
        out: list[_Occ] = []
        for lo in left:
            rs = by_field.get(lo.field)
            if not rs:
                continue
            # A right occurrence near lo ends at or after lo.pos - n, so it starts no earlier
            # than that minus the longest right span.
            j = bisect.bisect_left(starts[lo.field], lo.pos - n - longest[lo.field])
            for r in rs[j:]:
                if r.pos > lo.last + n:
                    break
                gap = max(r.pos - lo.last, lo.pos - r.last)
                if gap > n or r.hits == lo.hits:
                    continue
                out.append(
                    _Occ(lo.field, min(lo.pos, r.pos), max(lo.last, r.last), lo.hits + r.hits)
                )
        out.sort(key=lambda o: (_FIELD_RANK[o.field], o.pos, o.last))
        return out

    # -- regex ----------------------------------------------------------------------------------

    def regex_spans(self, node: Regex, field: str) -> list[tuple[int, int]]:
        sig = (node.pattern, field)
        spans = self._regex.get(sig)
        if spans is None:
            spans = _regex_spans(node.pattern, self.analysis.article.field(field))
            self._regex[sig] = spans
        return spans

    # -- boolean --------------------------------------------------------------------------------

    def evaluate(self, node: Node, threshold: float) -> list[Hit] | None:
        """The hits that make ``node`` true, or None when it is false (NOT gives no hits)."""
        if isinstance(node, And):
            hits: list[Hit] = []
            # Positive children first: a false one ends the evaluation before any NOT is tried.
            for child in sorted(node.children, key=lambda c: isinstance(c, Not)):
                found = self.evaluate(child, threshold)
                if found is None:
                    return None
                hits.extend(found)
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
            hits = []
            label = f"/{node.pattern}/"
            for field in self._fields(node.field):
                text = self.analysis.article.field(field)
                for start, end in self.regex_spans(node, field):
                    hits.append(
                        Hit(
                            term=label,
                            field=field,
                            start=start,
                            end=end,
                            text=text[start:end],
                            kind="regex",
                            score=100.0,
                        )
                    )
            return hits or None
        occs = self.occurrences(node, threshold)
        if not occs:
            return None
        return [h for o in occs for h in o.hits]

    def match(
        self, name: str, node: Node, threshold: float, fields: Sequence[str] | None = None
    ) -> Match | None:
        """The match of rule ``name`` (query ``node``) on this article, or None.

        ``fields`` are where terms that name no field look (default title and text).
        """
        self._default_fields = DEFAULT_FIELDS if fields is None else fields
        found = self.evaluate(node, threshold)
        if found is None:
            return None
        hits = _dedupe(found)
        return Match(
            rule=name, article_id=self.analysis.article.id, score=score_hits(hits), hits=tuple(hits)
        )


def _sloppy(per_word: list[dict[int, list[int]]], ft: FieldText, width: int) -> list[list[int]]:
    """Windows where every word occurs, in any order, within ``width`` positions.

    For each starting position the nearest occurrence of each word at or after it is taken; a
    window counts if it spans at most ``width`` and uses distinct tokens.
    """
    positions = [sorted(by_pos) for by_pos in per_word]
    starts = sorted({p for ps in positions for p in ps})
    out: list[list[int]] = []
    seen: set[tuple[int, ...]] = set()
    for s in starts:
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
            end = max(end, ft.tokens[picked].last)
        else:
            if end - s <= width:
                sig = tuple(sorted(chain))
                if sig not in seen:
                    seen.add(sig)
                    out.append(chain)
    return out


def _regex_spans(pattern: str, text: str) -> list[tuple[int, int]]:
    if not text:
        return []
    try:
        rx = _compiled_regex(pattern)
        return [m.span() for m in rx.finditer(text, timeout=REGEX_TIMEOUT) if m.end() > m.start()]
    except TimeoutError:
        # A pattern that takes this long is pathological; it counts as not matching rather than
        # stalling every other rule.
        return []


_REGEX_CACHE: dict[str, regex.Pattern[str]] = {}


def _compiled_regex(pattern: str) -> regex.Pattern[str]:
    rx = _REGEX_CACHE.get(pattern)
    if rx is None:
        if len(_REGEX_CACHE) > 50_000:
            _REGEX_CACHE.clear()
        rx = _REGEX_CACHE[pattern] = regex.compile(pattern, regex.IGNORECASE | regex.V0)
    return rx


def _dedupe(hits: list[Hit]) -> list[Hit]:
    seen: set[tuple[str, str, int, int]] = set()
    out = []
    for h in sorted(hits, key=lambda h: (_FIELD_RANK.get(h.field, 9), h.start, h.end, h.term)):
        sig = (h.term, h.field, h.start, h.end)
        if sig not in seen:
            seen.add(sig)
            out.append(h)
    return out


def score_hits(hits: Iterable[Hit]) -> float:
    """A relevance score: each hit's score/100, weighted by field (title hits count double)."""
    total = sum(FIELD_WEIGHTS.get(h.field, 0.5) * h.score / 100.0 for h in hits)
    return round(total, 4)


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
) -> Match | None:
    """Match one query against one article, without compiling a rule set.

    This is the reference behaviour that :class:`~watchers.rules.RuleSet` reproduces faster.
    ``aliases`` extends the shipped alias table. The match's ``rule`` is ``name`` or the query.
    """
    node = parse(query) if isinstance(query, str) else query
    if isinstance(aliases, Aliases):
        table = aliases
    else:
        table = _default_aliases() if not aliases else shipped_aliases(aliases)
    label = name if name is not None else (query if isinstance(query, str) else "")
    return Evaluator(Analysis(article), table).match(label, node, threshold)
