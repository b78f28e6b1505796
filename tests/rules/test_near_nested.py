"""NEARs inside NEARs: true exactly when some occurrence of each side is within the distance of
one of the other's (an occurrence's span runs from its first word to its last; one is never near
itself), checked against every pair written out by hand; and a chain of them over a repeated word
stays cheap (it took minutes on one article when every pair of pairs was kept)."""

from __future__ import annotations

from itertools import product

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchers.models import Article
from watchers.rules import Rule, RuleSet

VOCAB = ["kyiv", "troops", "border", "talks"]

# A query as a tree: a word, ("or", a, b) or ("near", left, right, distance).
Tree = str | tuple  # type: ignore[type-arg]


def trees(depth: int) -> st.SearchStrategy[Tree]:
    leaf = st.sampled_from(VOCAB)
    if depth == 0:
        return leaf
    inner = trees(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(st.just("or"), leaf, leaf),
        st.tuples(st.just("near"), inner, inner, st.integers(1, 6)),
    )


def query(t: Tree) -> str:
    if isinstance(t, str):
        return t
    if t[0] == "or":
        return f"({t[1]} OR {t[2]})"
    return f"({query(t[1])} NEAR/{t[3]} {query(t[2])})"


def occurrences(t: Tree, words: list[str]) -> set[tuple[int, int, tuple[int, ...]]]:
    """Every (first, last, positions of its words) the tree occurs at, every pair kept. A
    pair is its left side's words then its right side's: "a NEAR a" over two a's occurs twice,
    once each way round, and so is near itself the other way round."""
    if isinstance(t, str):
        return {(i, i, (i,)) for i, w in enumerate(words) if w == t}
    if t[0] == "or":
        return occurrences(t[1], words) | occurrences(t[2], words)
    n = t[3]
    out = set()
    for (l0, l1, lh), (r0, r1, rh) in product(occurrences(t[1], words),
                                              occurrences(t[2], words)):
        if max(r0 - l1, l0 - r1) <= n and lh != rh:
            out.add((min(l0, r0), max(l1, r1), lh + rh))
    return out


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees(3), st.lists(st.sampled_from([*VOCAB, "and", "the"]), min_size=1, max_size=14))
def test_nested_near_is_true_exactly_when_a_pair_of_pairs_is_near(
        tree: Tree, words: list[str]) -> None:
    rules = RuleSet([Rule(name="r", query=query(tree))])
    article = Article(title="", text=" ".join(words))
    expected = bool(occurrences(tree, words))
    found = rules.match(article)
    assert bool(found) == expected == bool(rules.match_naive(article))
    if found:  # the evidence is words of the article that the query names
        named = set(VOCAB)
        assert all(h.text in named for h in found[0].hits)


@pytest.mark.timeout(30)
def test_a_chain_of_nears_over_a_repeated_word_stays_cheap() -> None:
    text = " ".join(["alpha"] * 700)
    for q in ("alpha NEAR/100 alpha NEAR/100 alpha NEAR/100 alpha",
              "(alpha NEAR/100 alpha) NEAR/100 (alpha NEAR/100 alpha)",
              "((alpha NEAR/100 alpha) OR beta) NEAR/100 alpha NEAR/100 alpha"):
        (m,) = RuleSet([Rule(name="r", query=q)]).match(Article(title="t", text=text))
        assert m.hits and all(h.text == "alpha" for h in m.hits)
    assert not RuleSet([Rule(name="r", query="(alpha NEAR/3 beta) NEAR/3 alpha")]).match(
        Article(title="t", text=text))


@pytest.mark.timeout(60)
def test_a_thirty_term_chain_of_ors_over_common_words_ends() -> None:
    """A careless rule: thirty NEARs of an OR of two common words, over a 700-word article
    that is nothing but them. Every pair of pairs kept, it would not end; it ends, true."""
    query = " NEAR/100 ".join(["(alpha OR beta)"] * 30)
    text = " ".join(["alpha", "beta", "gamma"] * 233)
    (m,) = RuleSet([Rule(name="r", query=query)]).match(Article(title="t", text=text))
    assert {h.text for h in m.hits} <= {"alpha", "beta"}
