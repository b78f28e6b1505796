"""NEAR's pairing of occurrences (``matcher._pairs``) gives exactly what visiting every pair
gives (the reference below, the evaluator's former loop), in all three forms: every pair, the
widest ones per left occurrence (a NEAR inside another) and the occurrences in a pair (a NEAR
whose evidence alone matters); and it no longer visits every pair, so a word repeated all
through a long article is matched in a moment (the reference took minutes on one article)."""

from __future__ import annotations

import bisect
import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from watchers.models import Article
from watchers.rules import Rule, RuleSet
from watchers.rules.matcher import _BY_PLACE, match_query
from watchers.rules.matcher import _pairs as _typed_pairs

Occ = tuple[int, int, int, tuple[Any, ...]]
# The hits here are stand-ins (any tuples compare as hits do).
_pairs: Callable[..., list[Occ]] = _typed_pairs


def reference(left: list[Occ], right: list[Occ], n: int, *, widest: bool = False,
              sides: bool = False) -> list[Occ]:
    """Every pair visited: the evaluator's loop before it was made to skip them."""
    by_field: dict[int, list[Occ]] = {}
    for r in right:
        by_field.setdefault(r[0], []).append(r)
    starts = {f: [r[1] for r in rs] for f, rs in by_field.items()}
    longest = {f: max(r[2] - r[1] for r in rs) for f, rs in by_field.items()}
    out: list[Occ] = []
    paired: set[int] = set()
    numbers = {id(r): k for k, r in enumerate(right)} if sides else {}
    for lo in left:
        rank, l_pos, l_last, l_hits = lo
        rs = by_field.get(rank)
        if not rs:
            continue
        j = bisect.bisect_left(starts[rank], l_pos - n - longest[rank])
        first = last = second = None
        for r in rs[j:]:
            if r[1] > l_last + n:
                break
            gap = max(r[1] - l_last, l_pos - r[2])
            if gap > n or r[3] == l_hits:
                continue
            if widest or sides:
                if first is None:
                    first = r
                    if sides:
                        out.append(lo)
                elif second is None:
                    second = r
                if sides:
                    paired.add(numbers[id(r)])
                elif last is None or r[2] > last[2]:
                    last = r
                continue
            out.append((rank, min(l_pos, r[1]), max(l_last, r[2]), l_hits + r[3]))
        if widest:
            for r in dict.fromkeys(x for x in (first, last, second) if x is not None):
                out.append((rank, min(l_pos, r[1]), max(l_last, r[2]), l_hits + r[3]))
    if sides:
        out.extend(right[k] for k in sorted(paired))
    out.sort(key=_BY_PLACE)
    return out


def occurrences(rng: random.Random, pool: list[Occ], count: int) -> list[Occ]:
    """``count`` occurrences in order of place: drawn from ``pool`` (the same objects on
    both sides and twice on one, as a side holding the other's term has), or new ones, some
    equal to a pool one without being it."""
    out: list[Occ] = []
    for _ in range(count):
        roll = rng.random()
        if pool and roll < 0.45:
            out.append(rng.choice(pool))
        elif pool and roll < 0.55:
            o = rng.choice(pool)
            out.append((o[0], o[1], o[2], tuple(o[3])))  # equal, not the same object
        else:
            pos = rng.randrange(60)
            span = rng.choice((0, 0, 0, 1, 2, rng.randrange(40)))
            o = (rng.randrange(2), pos, pos + span, (("hit", rng.randrange(1000)),))
            pool.append(o)
            out.append(o)
    out.sort(key=_BY_PLACE)
    return out


@pytest.mark.parametrize("seed", range(12))
def test_pairs_are_what_visiting_every_pair_gives(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(300):
        pool: list[Occ] = []
        left = occurrences(rng, pool, rng.randrange(1, 25))
        right = occurrences(rng, pool, rng.randrange(1, 25))
        n = rng.choice((0, 1, 2, 3, 5, 8, 20, 100))
        for form in ({}, {"widest": True}, {"sides": True}):
            assert _pairs(left, right, n, **form) == reference(left, right, n, **form), (
                form, n, left, right)


def test_a_side_in_both_lists_is_never_its_own_partner() -> None:
    a = (1, 5, 5, (("a", 5),))
    b = (1, 9, 9, (("a", 9),))
    assert _pairs([a], [a], 10, sides=True) == []
    assert _pairs([a, b], [a, b], 10, sides=True) == [a, a, b, b]
    assert _pairs([a], [a, b], 3, widest=True) == []
    assert _pairs([a], [a, b], 4, widest=True) == [(1, 5, 9, a[3] + b[3])]


def test_a_word_repeated_through_a_long_article_is_matched_in_a_moment() -> None:
    # 60,000 words, each with 200 partners on either side, in NEARs of NEARs: visiting every
    # pair took about a minute a path; a few seconds now.
    query = "(aaaa NEAR/100 aaaa) NEAR/100 (aaaa NEAR/100 aaaa)"
    article = Article(title="x", text="aaaa " * 60000)
    began = time.monotonic()
    found = match_query(query, article)
    decided = RuleSet.from_queries({"q": query}).match_report(article, evidence=False)
    assert found is not None and found.score == 60000.0
    assert [m.score for m in decided.matches] == [found.score]
    assert time.monotonic() - began < 60  # a hang guard, not a timing


def test_a_field_named_twice_is_read_once() -> None:
    """A rule's fields naming one field twice made the Python evaluator read it twice: a NEAR
    paired an occurrence with its own copy and matched words six apart as within five, where
    the C engine (and the field read once) found nothing."""
    rule = Rule("q", "foo NEAR/5 kiev", fields=("text", "text"))
    assert rule.fields == ("text",)
    rules = RuleSet([rule, Rule("r", "/kiev/", fields=("title", "text", "title"))])
    article = Article(title="Kiev", text="kiev a b c d e foo f g h i j kiev")
    assert rules.match_naive(article) == rules.match(article)
    assert [(m.rule, m.score) for m in rules.match(article)] == [("r", 4.0)]
