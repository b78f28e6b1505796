"""The C engine for word, phrase and boolean rules (watchers.rules._cmatch).

It must give what the Python evaluator gives — the same matches, scores, hits and their order —
for every rule it takes; the naive loop (``match_naive``) always runs on the Python evaluator,
so comparing the two checks the engine.
"""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from watchers.models import Article, Decision, Hit, Match
from watchers.rules import Rule, RuleSet
from watchers.rules import compiled as compiled_module
from watchers.rules.matcher import Analysis
from watchers.rules.text import key
from watchers.rules.variants import shipped_aliases

from ._threads import run_in_threads

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
# Words in no alias group (a phrase of them is found by its keys alone) and in one (kyiv, kiev,
# donbas ...: a phrase's word is then found by any key of its group).
plain = st.sampled_from([w for w in QUERY_WORDS if not shipped_aliases().of(key(w))])
aliased = st.sampled_from([w for w in QUERY_WORDS if shipped_aliases().of(key(w))])
phrase_word = st.one_of(plain, aliased, word)
# Alias groups besides the shipped ones, some holding compounds, so a phrase's word may be
# found by a token that spans two positions ("warship" for war, "ceasefire" for fire).
EXTRA_ALIASES = [None, {"war": ["warship", "troops"], "fire": ["ceasefire", "cyberattack"]}]


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
        return f'"{draw(phrase_word)} {draw(phrase_word)}"'
    if kind == 1:
        return f'"{draw(phrase_word)} {draw(phrase_word)} {draw(phrase_word)}"'
    if kind == 2:
        return f"{draw(st.sampled_from(['title', 'text']))}:{w}"
    if kind == 3:
        field = draw(st.sampled_from(["title", "text"]))
        return f'{field}:"{draw(phrase_word)} {draw(phrase_word)}"'
    return w


def positional() -> st.SearchStrategy[str]:
    """Terms, phrases and ORs of them: what a NEAR's sides may be in the engine."""
    return st.recursive(
        engine_terms(),
        lambda inner: st.tuples(inner, inner).map(lambda p: f"({p[0]} OR {p[1]})"),
        max_leaves=3,
    )


def near() -> st.SearchStrategy[str]:
    return st.tuples(positional(), st.integers(1, 4), positional()).map(
        lambda p: f"({p[0]} NEAR/{p[1]} {p[2]})"
    )


def engine_queries() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, inner).map(lambda p: f"({p[0]} AND {p[1]})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]} OR {p[1]})"),
            st.tuples(inner, engine_terms()).map(lambda p: f"({p[0]} -{p[1]})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]} AND NOT ({p[1]}))"),
        )

    return st.recursive(st.one_of(engine_terms(), near()), extend, max_leaves=6)


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
    st.sampled_from(EXTRA_ALIASES),
)
def test_engine_equals_the_python_evaluator(
    qs: list[str],
    docs: list[tuple[str, str]],
    fields: tuple[str, ...] | None,
    threshold: int,
    aliases: dict[str, list[str]] | None,
) -> None:
    rules = RuleSet([Rule(f"r{i}", q, threshold, fields=fields) for i, q in enumerate(qs)], aliases)
    assert rules._compiled is not None and len(rules._compiled) == len(qs)
    for title, text in docs:
        article = Article(title=title, text=text)
        assert rules.match(article) == rules.match_naive(article)
        assert set(rules.candidates(article)) >= {m.rule for m in rules.match(article)}
        # Deciding in the engine, no evidence built: the same rules and scores.
        decided = rules.match_report(article, evidence=False).matches
        assert [(m.rule, m.score, ()) for m in rules.match(article)] == [
            (m.rule, m.score, m.hits) for m in decided]
        # The engine's Decisions, made by setting their slots: equal to ones made in Python.
        decisions = rules.decide(article).decisions
        assert decisions == [Decision(m.rule, m.article_id, m.score) for m in decided]
        assert [d.as_match() for d in decisions] == decided
        assert all(type(d) is Decision and not gc.is_tracked(d) for d in decisions)


@needs_engine
def test_which_rules_the_engine_takes() -> None:
    taken = [
        "kyiv", '"peace talks"', "kyiv AND NOT russia", "(a OR b) -c", "title:kyiv",
        "cyberattack", "war AND NOT (fire OR kiev)", "kyiv~", "kyiv AND russia~80",
        '"kiev talks"', '"zaporizhzhia nuclear"', '"wants kyiv" AND NOT urged',
        'face OR intensive OR "volodymyr zelenskiy"', 'title:"talks in donbass"',
        "kyiv NEAR/3 talks", '(kyiv OR "peace talks") NEAR/2 (war OR kiev~)',
        "russia AND NOT (nato NEAR/5 title:kyiv)",
    ]  # fmt: skip
    left = ["kyi*", "/kyiv/", '"peace talks"~2', '"kiev talks"~1', '"kyiv~ talks"',
            '"kyi* talks"', "kyiv AND kyi*", "kyiv NEAR/3 kyi*", "(kyiv NEAR/3 talks) NEAR/2 war",
            '"peace talks"~1 NEAR/2 war']  # fmt: skip
    rules = RuleSet([Rule(f"t{i}", q) for i, q in enumerate(taken)]
                    + [Rule(f"u{i}", q) for i, q in enumerate(left)])
    assert rules._compiled is not None
    names = list(rules.names)
    assert sorted(names[i] for i in rules._compiled.numbers) == sorted(
        f"t{i}" for i in range(len(taken))
    )


@needs_engine
def test_the_engine_tries_its_candidates_in_rule_order_few_or_many() -> None:
    """The engine orders the rules an article makes candidates by sorting them when they are
    few beside the rule set, and by reading its marks rule by rule when they are many: either
    way the matches come in rule order, as the naive loop gives them."""
    words = [f"zq{i:03d}" for i in range(400)]
    # Rules numbered against the grain of their words, and some words in several rules.
    rules = RuleSet([Rule(f"r{i:03d}", words[(i * 7) % 400] + (f" OR {words[i // 2]}"
                                                             if i % 3 else ""))
                     for i in range(400)])
    assert rules._compiled is not None and len(rules._compiled) == 400
    order = {name: n for n, name in enumerate(rules.names)}
    for chosen in (words[390:393], words[::-1][:5], words[::2], words):  # 3 ... 400 candidates
        article = Article(title="Briefing", text=" ".join(chosen))
        got = rules.match(article)
        assert got == rules.match_naive(article)
        assert len(got) >= len(chosen)
        assert [order[m.rule] for m in got] == sorted(order[m.rule] for m in got)
        numbers = rules._compiled.candidates(Analysis(article))
        assert len(numbers) >= len(chosen) and numbers == sorted(set(numbers))


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
def test_models_are_the_same_when_their_slots_are_set_through_descriptors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The engine writes a model's slots where pydantic's members keep them; given setters that
    are not plain members, it sets each through its descriptor instead, to the same models."""

    class Through:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __get__(self, obj: object, owner: type | None = None) -> Any:
            return self.inner.__get__(obj, owner)

        def __set__(self, obj: object, value: object) -> None:
            self.inner.__set__(obj, value)

    rules = [Rule("cyber", "cyberattack OR kiev"), Rule("talks", '"peace talks" AND NOT war')]
    article = Article(id="a1", title="Kyiv hit", text="A cyber attack on Kyiv; peace talks.")
    real = compiled_module._descriptor
    monkeypatch.setattr(compiled_module, "_descriptor", lambda name: Through(real(name)))
    through = RuleSet(rules).match(article)
    monkeypatch.undo()
    direct = RuleSet(rules).match(article)
    assert [m.rule for m in direct] == ["cyber", "talks"]
    assert through == direct
    assert [m.model_dump_json() for m in through] == [m.model_dump_json() for m in direct]
    for a, b in zip(through, direct, strict=True):
        for x, y in [(a, b), *zip(a.hits, b.hits, strict=True)]:
            assert x.model_fields_set == y.model_fields_set
            assert x.__pydantic_extra__ is None and y.__pydantic_extra__ is None
            assert x.__pydantic_private__ is None and y.__pydantic_private__ is None
            assert not gc.is_tracked(x) and not gc.is_tracked(y)


@needs_engine
def test_models_from_the_engine_stay_out_of_the_cyclic_collector() -> None:
    """A large rule set makes hundreds of matches an article; none can be part of a cycle, so
    the engine leaves them (their dicts and hit tuples) untracked, and reference counting
    alone frees them: with the collector off, matching again and again holds no more memory."""
    import gc
    import tracemalloc

    rules = RuleSet([
        Rule("cyber", "cyberattack OR kiev", fields=("title", "text")),
        Rule("near", '"cyber attack" NEAR/3 kyiv'),
    ])
    article = Article(id="a1", title="Kyiv hit", text="A cyber attack on Kyiv, a cyberattack.")
    matches = rules.match(article)
    assert [m.rule for m in matches] == ["cyber", "near"]
    for m in matches:
        assert not gc.is_tracked(m) and not gc.is_tracked(m.__dict__)
        assert not gc.is_tracked(m.hits) and not any(gc.is_tracked(h) for h in m.hits)
    assert Match.model_validate(matches[0].model_dump()) == matches[0]
    assert rules._compiled is not None
    engine_matches = rules._compiled.match(Analysis(article))
    assert [m.rule for m in engine_matches] == ["cyber", "near"]
    assert not any(gc.is_tracked(m) for m in engine_matches)
    del matches, m, engine_matches
    enabled = gc.isenabled()
    gc.disable()
    tracemalloc.start()
    try:
        for _ in range(200):
            rules.match(article)
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(2000):
            rules.match(article)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        if enabled:
            gc.enable()
    assert grown < 16_384, f"{grown} bytes held after 2,000 matches"


@needs_engine
def test_hits_are_capped_and_the_score_counts_them_all() -> None:
    text = " ".join(["war"] * 250)
    rules = RuleSet([Rule("w", "war"), Rule("p", '"war war"')])
    article = Article(title="war", text=text)
    assert rules.match(article) == rules.match_naive(article)
    by_rule = {m.rule: m for m in rules.match(article)}
    assert len(by_rule["w"].hits) == 100
    assert by_rule["w"].score == 2.0 + 250.0
    decided = {m.rule: m for m in rules.match_report(article, evidence=False).matches}
    assert decided["w"].score == 2.0 + 250.0 and decided["w"].hits == ()
    assert decided["p"].score == by_rule["p"].score


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

    decided = [[Decision(m.rule, m.article_id, m.score) for m in want] for want in expected]

    def work() -> None:
        for _ in range(20):
            for a, want, verdicts in zip(articles, expected, decided, strict=True):
                if rules.match(a) != want:
                    failures.append(a.title)
                # Deciding shares the engine's scratch space and makes Decisions in C.
                if rules.decide(a).decisions != verdicts:
                    failures.append(f"{a.title} (decided)")

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


@needs_engine
@pytest.mark.parametrize("evidence", [True, False])
def test_the_python_evaluators_matches_go_in_among_the_engines_by_rule_order(
    evidence: bool,
) -> None:
    """Regex rules are evaluated in Python, the others in the engine; the engine puts the
    Python matches in among its own by each rule's place in name order, before, between and
    after its own, as one list."""
    rules = RuleSet([
        Rule("a-regex", "/kyi[v]/"),
        Rule("b-word", "kyiv"),
        Rule("c-regex", "/cyber\\w*/"),
        Rule("d-regex", "/attack/"),
        Rule("e-word", "cyberattack"),
        Rule("f-word", "nothing"),
        Rule("g-regex", "/hit/"),
        Rule("h-regex", "/missing/"),
    ])
    assert rules._compiled is not None and len(rules._compiled) == 3
    article = Article(id="a1", title="Kyiv hit", text="A cyber attack on Kyiv, a cyberattack.")
    names = ["a-regex", "b-word", "c-regex", "d-regex", "e-word", "g-regex"]
    report = rules.match_report(article, evidence=evidence)
    assert [m.rule for m in report.matches] == names
    assert report.matches == [
        m if evidence else m.model_copy(update={"hits": ()}) for m in rules.match_naive(article)
    ]


@needs_engine
def test_the_engine_refuses_extra_matches_out_of_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The matches the engine puts in among its own must come in rule order, each rule once,
    none of them the engine's: anything else is refused naming the problem, not mis-sorted."""
    rules = RuleSet([Rule("b", "kyiv"), Rule("d", "attack")])
    compiled = rules._compiled
    assert compiled is not None
    article = Article(id="a1", title="Kyiv", text="an attack")
    analysis = Analysis(article)
    made = {m.rule: m for m in rules.match(article)}
    other = made["b"].model_copy(update={"rule": "x"})
    assert [m.rule for m in compiled.match(analysis, [(-1, other), (5, other)])] == [
        "x", "b", "d", "x"]
    for extra, error, words in [
        ([(5, other), (2, other)], ValueError, "ascend"),
        ([(2, other), (2, other)], ValueError, "ascend"),
        ([(0, other)], ValueError, "the engine's"),  # "b" is rule 0
        ([(1, other)], ValueError, "the engine's"),
        ([("1", other)], TypeError, "(rule number, Match) pairs"),
        ([(1, other, 2)], TypeError, "(rule number, Match) pairs"),
        ((), TypeError, "a list"),
    ]:
        with pytest.raises(error, match=re.escape(words)):
            compiled.decide(analysis, extra)  # type: ignore[arg-type]
    # The engine's rules' numbers must ascend: they say where the caller's go.
    from watchers.rules import compiled as compiled_module

    made_with: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    engine_type = type(compiled.engine)

    def capture(*args: Any, **kwargs: Any) -> Any:
        made_with.append((args, kwargs))
        return engine_type(*args, **kwargs)

    monkeypatch.setattr(compiled_module._cmatch, "Engine", capture)
    RuleSet([Rule("b", "kyiv"), Rule("d", "attack")])
    (keys, terms, specs, *rest), kwargs = made_with[-1]
    assert [number for _, number, _ in specs] == [0, 1]
    swapped = [(name, 1 - number, program) for name, number, program in specs]
    with pytest.raises(ValueError, match="numbers must ascend"):
        engine_type(keys, terms, swapped, *rest, **kwargs)


@needs_engine
def test_the_engine_refuses_a_decision_type_it_cannot_fill(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The engine writes a Decision's three slots where they are: a type without them (a
    class with a dict, or a slot of another name, or a read-only one) is refused when the
    engine is built, naming what is wrong, never written into."""
    made_with: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    engine_type = type(RuleSet([Rule("k", "kyiv")])._compiled.engine)  # type: ignore[union-attr]

    def capture(*args: Any, **kwargs: Any) -> Any:
        made_with.append((args, kwargs))
        return engine_type(*args, **kwargs)

    monkeypatch.setattr(compiled_module._cmatch, "Engine", capture)
    RuleSet([Rule("k", "kyiv")])
    (*head, models), kwargs = made_with[-1]
    assert models[-1] is Decision

    class WithDict:
        rule = article_id = score = None

    class OtherSlots:
        __slots__ = ("article_id", "name", "score")

    class Derived(Decision):
        __slots__ = ()

    for bad, words in [(WithDict, "a class of slots"), (OtherSlots, "rule"),
                       (Derived, "rule"), (int, "a class of slots"), ("Decision", "slots")]:
        with pytest.raises(TypeError, match=words):
            engine_type(*head, (*models[:-1], bad), **kwargs)
    with pytest.raises(TypeError, match="13 items"):
        engine_type(*head, models[:-1], **kwargs)


def test_an_article_that_fires_thousands_of_rules_is_decided_as_it_is_matched() -> None:
    """A thousand times the usual matches: 3,000 word rules and 300 regex rules (evaluated in
    Python, merged in among the engine's) all firing on one long article. Deciding gives each
    rule once, in name order, with the score matching gives, and makes no evidence."""
    words = [f"w{i:04d}" for i in range(3000)]
    rules = RuleSet([*(Rule(f"r{i:04d}", w) for i, w in enumerate(words)),
                     *(Rule(f"r{i * 10:04d}x", f"/{words[i * 10]}\\b/") for i in range(300))])
    article = Article(id="big", title=" ".join(words[:50]), text=" ".join(words * 3))
    matched = rules.match(article)
    decisions = rules.decide(article).decisions
    assert len(decisions) == 3300
    assert [(d.rule, d.score) for d in decisions] == [(m.rule, m.score) for m in matched]
    assert [d.rule for d in decisions] == sorted(d.rule for d in decisions)
    assert all(type(d) is Decision and d.hits == () for d in decisions)


def test_decide_refuses_an_analysis_of_another_article() -> None:
    rules = RuleSet([Rule("k", "kyiv")])
    kyiv, other = Article(title="Kyiv", text=""), Article(title="Lviv", text="")
    with pytest.raises(ValueError, match="the analysis is of another article"):
        rules.decide(kyiv, analysis=Analysis(other))
    assert rules.decide(kyiv, analysis=Analysis(kyiv)).decisions == [
        Decision("k", kyiv.id, 2.0)]


def test_a_decision_is_a_rule_and_score_without_evidence() -> None:
    d = Decision("kyiv", "a1", 2.5)
    assert (d.rule, d.article_id, d.score, d.hits) == ("kyiv", "a1", 2.5, ())
    assert d == Decision("kyiv", "a1", 2.5) and d != Decision("kyiv", "a1", 3.0)
    assert d != Match(rule="kyiv", article_id="a1", score=2.5)  # another kind of thing
    assert hash(d) == hash(Decision("kyiv", "a1", 2.5))
    assert d.as_match() == Match(rule="kyiv", article_id="a1", score=2.5, hits=())
    assert repr(d) == "Decision(rule='kyiv', article_id='a1', score=2.5)"
    with pytest.raises(AttributeError):
        d.hits = ()  # type: ignore[misc]


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


@needs_engine
def test_phrases_with_aliased_words_hit_as_the_python_evaluator_does() -> None:
    rules = RuleSet(
        [
            Rule("p", '"kyiv talks" OR "talks in donbas"'),
            Rule("q", 'title:"war kiev" AND NOT "kiev war"'),
            Rule("c", '"fire talks"'),
        ],
        {"fire": ["ceasefire"]},
    )
    assert rules._compiled is not None and len(rules._compiled) == 3
    article = Article(
        title="Warship Київ",
        text="Kiev talks, Kyiv talks in Donbass; pro-Kiev talks. Cease-fire talks.",
    )
    assert rules.match(article) == rules.match_naive(article)
    by_rule = {m.rule: m for m in rules.match(article)}
    hits = {(h.text, h.kind, h.variant) for h in by_rule["p"].hits}
    assert ("Kiev talks", "alias", "kiev talks") in hits
    assert ("Kyiv talks", "exact", None) in hits
    assert ("talks in Donbass", "alias", "talks in donbass") in hits
    # "pro-Kiev talks": the compound's part "Kiev" starts the phrase too.
    assert [(h.text, h.kind) for h in by_rule["p"].hits].count(("Kiev talks", "alias")) == 2
    assert {(h.text, h.kind, h.variant) for h in by_rule["c"].hits} == {
        ("Cease-fire talks", "alias", "ceasefire talks"),  # the compound, an alias of fire
        ("fire talks", "exact", None),  # its part
    }
    assert "q" not in by_rule  # "war" is the compound's first part; "Київ" is not next to it


@needs_engine
def test_near_in_the_engine_pairs_occurrences_as_the_python_evaluator_does() -> None:
    rules = RuleSet([
        Rule("n", "kyiv NEAR/3 talks"),
        Rule("self", "kyiv NEAR/1 kyiv"),  # one token is never near itself
        Rule("o", '(war OR "peace talks" OR talks) NEAR/1 (talks OR ceasefire)'),
        Rule("x", "russia AND NOT (nato NEAR/3 kyiv)"),
    ])  # fmt: skip
    assert rules._compiled is not None and len(rules._compiled) == 4
    article = Article(
        title="Kyiv", text="Kiev said the talks; far away, peace talks. Russia, NATO; nothing kyiv"
    )
    assert rules.match(article) == rules.match_naive(article)
    by_rule = {m.rule: m for m in rules.match(article)}
    assert {(h.text, h.kind) for h in by_rule["n"].hits} == {("Kiev", "alias"), ("talks", "exact")}
    assert "self" not in by_rule
    # "peace talks" and its own "talks" overlap (a gap of 0 or less is near); "talks" on both
    # sides is not near itself, and the first "talks" is near nothing else.
    assert [h.text for h in by_rule["o"].hits] == ["peace talks", "talks"]
    assert "x" not in by_rule


@needs_engine
def test_aliased_phrases_and_near_over_a_large_article_match_as_the_python_evaluator_does() -> None:
    # About 1 MB: thousands of alias-found phrase hits (each with its variant) and of NEAR
    # occurrences, hits capped, scores counting them all.
    chunk = " ".join(WORDS) + ". Kiev talks; Київ troops, Kyiv's talks in Donbass war. "
    text = chunk * (1_000_000 // len(chunk))
    rules = RuleSet([
        Rule("p", '"kyiv talks" OR "talks in donbas"'), Rule("t", '"kiev troops" AND NOT nato'),
        Rule("n", "kyiv NEAR/2 (talks OR donbas~)"), Rule("m", '"peace talks" NEAR/3 zelenskyy'),
    ])  # fmt: skip
    assert rules._compiled is not None and len(rules._compiled) == 4
    article = Article(title="Kiev talks", text=text)
    found = rules.match(article)
    assert found == rules.match_naive(article)
    assert [m.rule for m in found] == ["m", "n", "p"]
    assert all(len(m.hits) == 100 for m in found)


FUZZY_RULES = [
    Rule("f", "kyiv~ OR sanctions~80"),
    Rule("g", "donbas~ AND NOT kharkiv~"),
    Rule("h", "ceasefire~85 NEAR/3 talks"),
    Rule("w", "troops"),
]
FUZZY_TEXTS = [
    "Troops at the border; no talks today.",
    "Kyiv's sanctoins, Donbass, the pro-Kyiv side, sanctions-busting and Kivu.",
    "Kharkiv and Donbas: a ceasfire in the talks, Kiev says.",
    "The sanctiions on Russia, a cease-fire and peace talks; Київ troops.",
    "Donbass troops, Kharkov talks, the ceasefires held.",
]


def fuzzy_articles(rounds: int = 1) -> list[Article]:
    return [
        Article(id=f"a{r}.{i}", title=f"Round {r} item {i}", text=f"{text} Word{r}x{i} here.")
        for r in range(rounds)
        for i, text in enumerate(FUZZY_TEXTS)
    ]


@needs_engine
def test_words_first_met_in_a_later_article_get_their_verdicts() -> None:
    rules = RuleSet(FUZZY_RULES)
    compiled = rules._compiled
    assert compiled is not None and len(compiled) == len(FUZZY_RULES)
    engine = compiled.engine
    assert engine.learned == 0
    plain, misspelt = fuzzy_articles()[:2]
    assert rules.match(plain) == rules.match_naive(plain)
    known = engine.learned
    assert known > 0
    # The engine asks for the words it has no verdicts for rather than taking them for none.
    fields = compiled._fields(Analysis(misspelt))
    unknown = engine.match(fields, misspelt.id)
    assert isinstance(unknown, set) and {key("sanctoins"), key("donbass"), key("kivu")} <= unknown
    assert key("troops") not in unknown  # met in the first article
    assert isinstance(engine.candidates(fields), set)
    found = rules.match(misspelt)
    assert found == rules.match_naive(misspelt)
    assert engine.learned > known
    hits = {(h.text, h.kind) for m in found if m.rule == "f" for h in m.hits}
    assert ("sanctoins", "fuzzy") in hits
    # Now the engine knows every word of the article: one call answers.
    assert isinstance(engine.match(fields, misspelt.id), list)
    assert rules.match(misspelt) == rules.match_naive(misspelt)


@needs_engine
def test_the_engine_refuses_malformed_verdicts() -> None:
    compiled = RuleSet(FUZZY_RULES)._compiled
    assert compiled is not None
    engine = compiled.engine
    with pytest.raises(TypeError):
        engine.learn([("kiev", ())])
    with pytest.raises(TypeError):
        engine.learn({"kiev": [(0, "fuzzy", 90.0, True)]})
    with pytest.raises(TypeError):
        engine.learn({"kiev": ((0, "fuzzy", 90.0),)})
    with pytest.raises(ValueError):
        engine.learn({"kiev": ((99, "fuzzy", 90.0, True),)})
    assert engine.learned == 0
    engine.learn({"kiev": ()})
    assert engine.learned == 1
    engine.forget()
    assert engine.learned == 0


@needs_engine
def test_a_forgetful_engine_still_gives_the_naive_loops_matches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rules = RuleSet(FUZZY_RULES)
    compiled = rules._compiled
    assert compiled is not None
    articles = fuzzy_articles(3)
    expected = [rules.match_naive(a) for a in articles]
    # A limit below an article's words: the engine forgets before nearly every article.
    monkeypatch.setattr(compiled_module, "_VERDICTS_LIMIT", 5)
    for _ in range(2):
        assert [rules.match(a) for a in articles] == expected
        assert all(
            set(rules.candidates(a)) >= {m.rule for m in want}
            for a, want in zip(articles, expected, strict=True)
        )
    # Forgotten between learning and asking again (as another thread may make it): the
    # verdicts passed along still count, and the rounds end.
    learn = compiled._verdicts
    rounds = []

    def forgetful(words: set[str]) -> dict[str, tuple[tuple[int, str, float, bool], ...]]:
        out = learn(words)
        compiled.engine.forget()
        rounds.append(len(words))
        return out

    monkeypatch.setattr(compiled, "_verdicts", forgetful)
    assert [rules.match(a) for a in articles] == expected
    assert rounds and compiled.engine.learned == 0


@needs_engine
def test_threads_matching_fuzzy_terms_with_a_forgetful_engine_get_the_same_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rules = RuleSet(FUZZY_RULES)
    articles = fuzzy_articles(8)
    expected = [rules.match_naive(a) for a in articles]
    monkeypatch.setattr(compiled_module, "_VERDICTS_LIMIT", 40)
    failures: list[str] = []

    def work() -> None:
        for _ in range(10):
            for a, want in zip(articles, expected, strict=True):
                if rules.match(a) != want:
                    failures.append(a.id)

    run_in_threads(work)
    assert failures == []
