"""The C engine for word, phrase and boolean rules (watchers.rules._cmatch).

It must give what the Python evaluator gives — the same matches, scores, hits and their order —
for every rule it takes; the naive loop (``match_naive``) always runs on the Python evaluator,
so comparing the two checks the engine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from watchers.models import Article, Hit, Match
from watchers.rules import Rule, RuleSet
from watchers.rules import compiled as compiled_module
from watchers.rules.text import key
from watchers.rules.variants import shipped_aliases

REPO = Path(__file__).resolve().parents[2]

needs_engine = pytest.mark.skipif(
    not compiled_module.available(),
    reason="the C engine watchers.rules._cmatch is not built (or NEWSWATCH_PURE is set)",
)

WORDS = [
    "kyiv", "Kiev", "Київ", "Kyiv's", "troops", "talks", "Russia", "Russia's", "sanctions",
    "border", "cyber-attack", "cyberattack", "cyber attack", "cyber  attack", "cyber,attack",
    "U.S.", "100,000", "NATO", "Donbass", "Donbas", "war", "Russia-Ukraine", "ceasefire",
    "cease fire", "cease-fire", "fire", "peace talks", "talks-peace", "Zelensky", "warship",
    "war ship", "war-ship",
]  # fmt: skip
QUERY_WORDS = [
    "kyiv", "kiev", "troops", "talks", "russia", "sanctions", "border", "cyberattack", "nato",
    "donbas", "donbass", "war", "ukraine", "ceasefire", "fire", "cease", "peace", "us",
    "warship", "ship", "attack", "Kyiv", "KYIV",
]  # fmt: skip

word = st.sampled_from(QUERY_WORDS)
# A phrase's words are matched as written: a phrase with a word of an alias group (kyiv, kiev,
# donbas ...) stays with the Python evaluator, so the phrases here use the other words.
plain = st.sampled_from([w for w in QUERY_WORDS if not shipped_aliases().of(key(w))])


@st.composite
def engine_terms(draw: st.DrawFn) -> str:
    """Terms the engine takes: words (aliased, compound), fuzzy terms, exact phrases, fielded
    ones."""
    w = draw(word)
    kind = draw(st.integers(0, 7))
    if kind == 6:
        return f"{w}~"
    if kind == 7:
        return f"{w}~{draw(st.integers(60, 100))}"
    if kind == 0:
        return f'"{draw(plain)} {draw(plain)}"'
    if kind == 1:
        return f'"{draw(plain)} {draw(plain)} {draw(plain)}"'
    if kind == 2:
        return f"{draw(st.sampled_from(['title', 'text']))}:{w}"
    if kind == 3:
        return f'{draw(st.sampled_from(["title", "text"]))}:"{draw(plain)} {draw(plain)}"'
    return w


def engine_queries() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, inner).map(lambda p: f"({p[0]} AND {p[1]})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]} OR {p[1]})"),
            st.tuples(inner, engine_terms()).map(lambda p: f"({p[0]} -{p[1]})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]} AND NOT ({p[1]}))"),
        )

    return st.recursive(engine_terms(), extend, max_leaves=6)


texts = st.lists(
    st.tuples(st.sampled_from(WORDS), st.sampled_from([" ", " ", ", ", ". ", " - ", "\n", ""])),
    max_size=40,
).map(lambda parts: "".join(w + sep for w, sep in parts))


@needs_engine
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(engine_queries(), min_size=1, max_size=8),
    st.lists(st.tuples(texts, texts), min_size=1, max_size=3),
    st.sampled_from([None, ("title",), ("text",), ("text", "title")]),
    st.sampled_from([70, 85, 95]),
)
def test_engine_equals_the_python_evaluator(
    qs: list[str], docs: list[tuple[str, str]], fields: tuple[str, ...] | None, threshold: int
) -> None:
    rules = RuleSet([Rule(f"r{i}", q, threshold, fields=fields) for i, q in enumerate(qs)])
    assert rules._compiled is not None and len(rules._compiled) == len(qs)
    for title, text in docs:
        article = Article(title=title, text=text)
        assert rules.match(article) == rules.match_naive(article)
        assert set(rules.candidates(article)) >= {m.rule for m in rules.match(article)}


@needs_engine
def test_which_rules_the_engine_takes() -> None:
    taken = [
        "kyiv", '"peace talks"', "kyiv AND NOT russia", "(a OR b) -c", "title:kyiv",
        "cyberattack", "war AND NOT (fire OR kiev)", "kyiv~", "kyiv AND russia~80",
    ]  # fmt: skip
    left = ["kyi*", "/kyiv/", "kyiv NEAR/3 talks", '"peace talks"~2', '"kiev talks"',
            '"kyiv~ talks"', "kyiv AND kyi*"]  # fmt: skip
    rules = RuleSet([Rule(f"t{i}", q) for i, q in enumerate(taken)]
                    + [Rule(f"u{i}", q) for i, q in enumerate(left)])
    assert rules._compiled is not None
    names = list(rules.names)
    assert sorted(names[i] for i in rules._compiled.numbers) == sorted(
        f"t{i}" for i in range(len(taken))
    )


@needs_engine
def test_a_match_from_the_engine_is_a_whole_model() -> None:
    rules = RuleSet([Rule("cyber", "cyberattack OR kiev", fields=("title", "text"))])
    assert rules._compiled is not None and len(rules._compiled) == 1
    article = Article(id="a1", title="Kyiv hit", text="A cyber attack on Kyiv, a cyberattack.")
    (m,) = rules.match(article)
    assert m == Match.model_validate(m.model_dump())
    assert m.model_dump_json() == Match.model_validate(m.model_dump()).model_dump_json()
    kinds = {(h.text, h.kind, h.variant) for h in m.hits}
    assert ("cyber attack", "exact", "cyber attack") in kinds
    assert ("cyberattack", "exact", None) in kinds
    assert ("Kyiv", "alias", "kyiv") in kinds
    assert m.score == 2.0 + 3.0  # one title hit (x2) and three text hits
    # Hits share one set of the fields set: a copy that changes one leaves the others alone.
    first = m.hits[0]
    changed = first.model_copy(update={"score": 50.0})
    assert changed.score == 50.0 and first.score == 100.0
    assert all(h.model_fields_set == set(Hit.model_fields) for h in m.hits)
    with pytest.raises(ValidationError):
        first.score = 1.0  # type: ignore[misc]


@needs_engine
def test_hits_are_capped_and_the_score_counts_them_all() -> None:
    text = " ".join(["war"] * 250)
    rules = RuleSet([Rule("w", "war"), Rule("p", '"war war"')])
    article = Article(title="war", text=text)
    assert rules.match(article) == rules.match_naive(article)
    by_rule = {m.rule: m for m in rules.match(article)}
    assert len(by_rule["w"].hits) == 100
    assert by_rule["w"].score == 2.0 + 250.0


@needs_engine
def test_threads_matching_with_one_rule_set_get_the_same_answers() -> None:
    queries = ["kyiv", '"peace talks"', "russia AND NOT nato", "war OR fire", "cyberattack"]
    rules = RuleSet([Rule(f"r{i}", q) for i, q in enumerate(queries)])
    articles = [
        Article(title=f"t{i}", text=" ".join(WORDS[i % len(WORDS):] + WORDS[: i % len(WORDS)]))
        for i in range(40)
    ]
    expected = [rules.match_naive(a) for a in articles]
    failures: list[str] = []

    def work() -> None:
        for _ in range(20):
            for a, want in zip(articles, expected, strict=True):
                if rules.match(a) != want:
                    failures.append(a.title)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert failures == []


@needs_engine
def test_the_engine_refuses_malformed_input_without_crashing() -> None:
    engine = RuleSet([Rule("k", "kyiv")])._compiled
    assert engine is not None
    with pytest.raises(TypeError):
        engine.engine.match((None,) * 3, "id")
    with pytest.raises(ValueError):
        engine.engine.match((None,) * 4, "id")  # the title and text are needed
    with pytest.raises(TypeError):
        engine.engine.match(((["kyiv"], [0], [4], None, None, "kyiv"),) * 4, "id")
    with pytest.raises(ValueError):
        bad = (["kyiv"], [0, 1], [4], None, None, "kyiv", ["kyiv"])
        engine.engine.match((bad, bad, None, None), "id")


def test_without_the_engine_every_rule_is_evaluated_in_python() -> None:
    code = (
        "from watchers.rules import Rule, RuleSet\n"
        "from watchers.rules import compiled\n"
        "from watchers.models import Article\n"
        "rs = RuleSet([Rule('k', 'kyiv AND \"peace talks\"')])\n"
        "a = Article(title='Kyiv', text='peace talks in Kiev')\n"
        "print(compiled.available(), rs._compiled is None, [m.score for m in rs.match(a)])\n"
    )
    env = {**os.environ, "NEWSWATCH_PURE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=120, check=True,
    ).stdout.split()
    assert out == ["False", "True", "[4.0]"]


@needs_engine
def test_fuzzy_terms_in_the_engine_hit_as_the_python_evaluator_does() -> None:
    rules = RuleSet([Rule("f", "kyiv~ OR sanctions~80"), Rule("g", "donbas~ AND NOT kharkiv~")])
    assert rules._compiled is not None and len(rules._compiled) == 2
    article = Article(
        title="Kiev and Київ",
        text="Kyiv's sanctoins, Donbass, the pro-Kyiv side, sanctions-busting and Kivu.",
    )
    assert rules.match(article) == rules.match_naive(article)
    by_rule = {m.rule: m for m in rules.match(article)}
    hits = {(h.text, h.kind) for h in by_rule["f"].hits}
    assert ("Kiev", "alias") in hits and ("sanctoins", "fuzzy") in hits
    assert ("Kivu", "fuzzy") not in hits  # another place, refused
    assert by_rule["f"].score != round(by_rule["f"].score)  # fuzzy scores below 100 count
    assert "g" in by_rule


@needs_engine
def test_an_article_a_thousand_times_larger_matches_as_the_python_evaluator_does() -> None:
    # About 5 MB: every engine rule kind over a text whose words repeat tens of thousands of
    # times (hits capped, scores counting them all), equal to the naive loop.
    chunk = " ".join(WORDS) + ". Kyiv talks; the sanctoins, Donbass cyber attack. "
    text = chunk * (5_000_000 // len(chunk))
    rules = RuleSet([
        Rule("w", "kyiv"), Rule("p", '"peace talks"'), Rule("b", "war AND NOT xylophone"),
        Rule("c", "cyberattack"), Rule("f", "sanctions~80 OR donbas~"),
    ])
    assert rules._compiled is not None and len(rules._compiled) == 5
    article = Article(title="Kyiv", text=text)
    found = rules.match(article)
    assert found == rules.match_naive(article)
    assert [m.rule for m in found] == ["b", "c", "f", "p", "w"]
    assert all(len(m.hits) == 100 for m in found)
    assert {m.rule: m.score for m in found}["w"] > 10_000
