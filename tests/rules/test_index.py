"""The compiled index: anchors, regex screening, and that it only ever saves work."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import Any

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from watchers.models import Article
from watchers.rules import Rule, RuleSet, parse
from watchers.rules.index import (
    _GRAM_SCREEN_FROM,
    RuleIndex,
    _anchors,
    _automaton_finder,
    _Finder,
    _hyperscan_finder,
    _RegexScreen,
    _screen_form,
    required_literals,
)
from watchers.rules.matcher import Analysis
from watchers.rules.variants import shipped_aliases

from ._threads import run_in_threads

ALIASES = shipped_aliases()


def index_candidates(rules: RuleSet, article: Article) -> list[str]:
    """The rules the rule index proposes for ``article``: what a rule set evaluates in Python
    (every rule, without the C engine, which anchors its own rules on their keys alone)."""
    found, _ = RuleIndex(rules.rules, rules.aliases).candidates(Analysis(article))
    return [r.name for r in found]


def anchors(query: str) -> set[tuple[object, ...]] | None:
    found = _anchors(parse(query), 85, ALIASES)
    return None if found is None else set(found[0])


def test_and_anchors_on_its_rarest_positive_child() -> None:
    # an alias group pairs with the other word: 9 pairs
    assert anchors("the AND zaporizhzhia") == {
        ("pair", k, "the") for k in ALIASES.of("zaporizhzhia")}
    # too many pairs (9 × 2 > 16): the rarest child alone
    assert anchors("(the OR said) AND zaporizhzhia") == {
        ("key", k) for k in ALIASES.of("zaporizhzhia")}
    assert anchors("shelling AND (mobili* OR drones)") == {("key", "shelling")}


def test_and_and_near_of_plain_words_anchor_on_pairs() -> None:
    assert anchors("said AND shelling -the") == {("pair", "shelling", "said")}
    assert anchors("shelling AND (drones OR missiles)") == {
        ("pair", "shelling", "drone"),
        ("pair", "shelling", "missile"),
    }
    assert anchors("shelling NEAR/5 drones") == {("pair", "shelling", "drone")}
    rules = RuleSet.from_queries({"a": "shelling AND drones", "n": "shelling NEAR/3 drones"})
    assert index_candidates(rules, Article(title="Shelling", text="no such thing")) == []
    both = Article(title="Shelling", text="and drones")
    assert index_candidates(rules, both) == ["a", "n"]
    assert [m.rule for m in rules.match(both)] == ["a"]


def test_a_word_with_a_compound_reading_pairs_through_its_rarer_part() -> None:
    # cyberattack is also found written apart ("cyber attack"), which needs "cyber" too
    assert anchors("cyberattack AND shelling") == {
        ("pair", "shelling", "cyberattack"),
        ("pair", "shelling", "cyber"),
    }
    rules = RuleSet.from_queries(
        {"a": "cyberattack AND shelling", "n": "shelling NEAR/3 cyberattack"}
    )
    assert index_candidates(rules, Article(title="Shelling", text="an attack")) == []
    for text in ("a cyber attack", "a cyber-attack", "the cyberattacks", "cyber, attack"):
        art = Article(title="Shelling", text=text)
        assert index_candidates(rules, art) == ["a", "n"]
        assert rules.match(art) == rules.match_naive(art)
    near = Article(title="x", text="Shelling, then a cyber attack")
    assert [m.rule for m in rules.match(near)] == ["a", "n"]


def test_a_fuzzy_term_and_a_word_anchor_on_both() -> None:
    assert anchors("kyiv~ AND talks") == {("fuzzy_pair", "kyiv", 85.0, "talk")}
    assert anchors("talks NEAR/3 kyiv~90") == {("fuzzy_pair", "kyiv", 90.0, "talk")}
    assert anchors("kyiv~ AND sanctions~") == {("fuzzy", "kyiv", 85.0)}
    rules = RuleSet.from_queries({"a": "kyiv~ AND talks", "n": "talks NEAR/3 kyiv~90"})
    assert index_candidates(rules, Article(title="Kiev", text="no such thing")) == []
    assert index_candidates(rules, Article(title="Talks", text="in Lviv")) == []
    for art in (Article(title="Talks", text="in Kiev"), Article(title="x", text="Kyiv talks")):
        assert index_candidates(rules, art) == ["a", "n"]
        assert rules.match(art) == rules.match_naive(art)
        assert [m.rule for m in rules.match(art)] == (["a"] if art.title == "Talks" else ["a", "n"])


def test_or_anchors_on_every_child_and_not_never() -> None:
    assert anchors("troops OR soldiers") == {("key", "troop"), ("key", "soldier")}
    assert anchors("troops OR (soldiers -army)") == {("key", "troop"), ("key", "soldier")}


def test_other_anchor_kinds() -> None:
    assert anchors("mobili*") == {("prefix", "mobili")}
    assert anchors("kyiv~90") == {("fuzzy", "kyiv", 90.0)}
    assert anchors('"security guarantees"') == {("bigram", "security", "guarantee")}
    # a phrase with slop, or whose words have aliases, needs all its words: a pair of them
    assert anchors('"security guarantees"~2') == {("pair", "guarantee", "security")}
    assert anchors('"kyiv guarantees"') == {("pair", k, "guarantee") for k in ALIASES.of("kyiv")}
    assert anchors("/abc/") == {("regex", "abc")}


def test_a_phrases_words_anchor_on_their_keys_not_their_compound_readings() -> None:
    """A phrase's word is found as written (``cyberattack``, never ``cyber attack``), so its
    anchors leave the compound reading out: anchored on the reading's rarer part too, a sloppy
    phrase of a common word and a compound was tried on every article with the common word."""
    assert anchors('"cyberattack shelling"~3') == {("pair", "cyberattack", "shelling")}
    assert anchors('"cyberattack kyiv~"~3') == {("fuzzy_pair", "kyiv", 85.0, "cyberattack")}
    rules = RuleSet.from_queries({"p": '"cyberattack shelling"~3', "t": "cyberattack"})
    apart = Article(title="Cyber attack", text="after the shelling")
    assert index_candidates(rules, apart) == ["t"]
    assert [m.rule for m in rules.match(apart)] == [m.rule for m in rules.match_naive(apart)]
    whole = Article(title="News", text="A cyberattack and shelling")
    assert index_candidates(rules, whole) == ["p", "t"]
    assert [m.rule for m in rules.match(whole)] == ["p", "t"]


@pytest.mark.parametrize(
    ("pattern", "literals"),
    [
        ("1,?00,?000 (troops|soldiers)", ["soldiers", "troops"]),
        (r"\bkyiv\w*", ["kyiv"]),
        ("Putin said", ["putin said"]),
        ("foo|bar", ["bar", "foo"]),
        ("(a+)+$", None),
        (r"\d{3}", None),
        (r"(?:kyiv){e<=1}", None),  # the regex module's fuzzy matching: not screened
        (r"\p{Cyrillic}+", None),
    ],
)
def test_required_literals(pattern: str, literals: list[str] | None) -> None:
    assert required_literals(pattern) == literals


def test_a_phrase_is_a_candidate_only_where_its_words_are_adjacent() -> None:
    rules = RuleSet.from_queries({"p": '"security guarantees"'})
    apart = Article(title="Guarantees", text="Security was tight.")
    together = Article(title="x", text="Talks on security guarantees went on.")
    assert index_candidates(rules, apart) == []
    assert index_candidates(rules, together) == ["p"]


# Phrases next to, across and inside hyphenated compounds (which share positions with their
# parts), where neighbours in the token list are not always neighbours in position.
COMPOUND_TEXTS = [
    "the pro-Russian forces moved",
    "a well-known pro-Russian-backed group and pro-Russian forces",
    "pro-Russian pro-Russian forces",
    "the -- pro-Russian -- forces",
    "Russian-backed, forces",
    "the Kremlin-backed Kremlin-backed forces",
    "Kremlin-backed forces and Kremlin-backed-ish, forces",
]
COMPOUND_PHRASES = [
    '"the pro"',
    '"the prorussian"',
    '"prorussian forces"',
    '"russian forces"',
    '"pro russian"',
    '"known pro"',
    '"backed group"',
    '"wellknown prorussianbacked"',
    '"prorussian prorussian"',
    '"russian pro"',
    '"russian russian"',
    '"backed forces"',
    '"russianbacked forces"',
    '"the russian"',
    '"the kremlinbacked"',
    '"the kremlin"',
    '"kremlinbacked forces"',
    '"kremlinbacked kremlinbacked"',
    '"backed kremlinbacked"',
    '"backed kremlin"',
    '"backed forces"',
]


@pytest.mark.parametrize("text", COMPOUND_TEXTS)
def test_bigram_anchors_miss_no_phrase_around_compounds(text: str) -> None:
    queries = {f"q{i}": q for i, q in enumerate(COMPOUND_PHRASES)}
    rules = RuleSet.from_queries(queries)
    art = Article(title="x", text=text)
    assert rules.match(art) == rules.match_naive(art)
    matched = {m.rule for m in rules.match_naive(art)}
    assert matched <= set(rules.candidates(art))


def test_a_phrase_anchors_on_a_pair_of_words_with_compound_readings() -> None:
    # a phrase's words are matched as written: "cyber attack warning" is not the phrase
    assert anchors('"cyberattack warning"') == {("bigram", "cyberattack", "warning")}
    rules = RuleSet.from_queries({"p": '"cyberattack warning"'})
    for text, found in [
        ("a cyberattack warning", ["p"]),
        ("a cyber-attack warning", ["p"]),
        ("a cyber attack warning", []),
        ("a cyberattack, then a warning", []),
    ]:
        art = Article(title="x", text=text)
        assert index_candidates(rules, art) == found
        assert rules.match(art) == rules.match_naive(art)
        assert [m.rule for m in rules.match(art)] == found


def test_bigram_anchors_find_phrases_around_compounds() -> None:
    # the cases the window of a compound exists for: neighbours in position, not in the list
    rules = RuleSet.from_queries(
        {
            "a": '"the kremlin"',
            "b": '"kremlinbacked forces"',
            "c": '"kremlinbacked kremlinbacked"',
            "d": '"backed kremlin"',
        }
    )
    found = rules.match(Article(title="x", text="the Kremlin-backed Kremlin-backed forces"))
    assert [m.rule for m in found] == ["a", "b", "c", "d"]


def test_unrelated_rules_are_not_candidates() -> None:
    rules = RuleSet.from_queries(
        {"a": "troops", "b": "sanctions AND russia", "c": "talks -football", "d": "/crypto/"}
    )
    index = RuleIndex(rules.rules, rules.aliases)
    candidates, _ = index.candidates(Analysis(Article(title="Troops at the border")))
    assert [r.name for r in candidates] == ["a"]


def test_fields_outside_title_and_text_are_indexed() -> None:
    rules = RuleSet([Rule("u", "url:kyiv"), Rule("s", "source:bbc AND troops")])
    art = Article(title="Troops", text="", source="bbc", url="https://example.org/kyiv/1")
    assert [m.rule for m in rules.match(art)] == ["s", "u"]
    assert rules.match(art) == rules.match_naive(art)


def test_fuzzy_terms_inside_not_are_known_to_the_index() -> None:
    rules = RuleSet.from_queries({"r": "talks -kyiv~"})
    art = Article(title="Talks in Kiev")
    assert rules.match(art) == rules.match_naive(art) == []


def test_rebuilding_keeps_results() -> None:
    rules = RuleSet.from_queries({"a": "kyiv~", "b": "troops"})
    art = Article(title="Kiev troops")
    grown = rules.with_rule(Rule("c", "/kie./"))
    assert [m.rule for m in grown.match(art)] == ["a", "b", "c"]
    assert [m.rule for m in grown.without("a").match(art)] == ["b", "c"]


@pytest.mark.parametrize("scan", ["automaton", "hyperscan", "none"])
def test_regex_screen_with_each_scan(monkeypatch: pytest.MonkeyPatch, scan: str) -> None:
    import watchers.rules.index as index_module
    import watchers.rules.text as text_module

    if scan != "automaton":
        monkeypatch.setattr(text_module, "pack_literals", None)
    if scan != "hyperscan":
        monkeypatch.setattr(index_module, "_hyperscan_literals", lambda literals: None)
    elif index_module._hyperscan_literals([("ab", True)]) is None:
        pytest.skip("hyperscan is not installed")
    rules = RuleSet.from_queries({"a": "/troops? (massed|gathered)/", "b": "/crypto/"})
    art = Article(title="x", text="Troops massed near the border.")
    assert [m.rule for m in rules.match(art)] == ["a"]
    assert rules.match(art) == rules.match_naive(art)


def test_regex_screen_maps_special_case_folds() -> None:
    rules = RuleSet.from_queries({"a": "/strike/"})
    art = Article(title="x", text="a \u017ftrike today")  # long s matches s under IGNORECASE
    assert rules.match(art) == rules.match_naive(art)


def test_fuzzy_cache_overflow_keeps_results(monkeypatch: pytest.MonkeyPatch) -> None:
    import watchers.rules.index as index_module

    monkeypatch.setattr(index_module, "_CACHE_LIMIT", 3)
    rules = RuleSet.from_queries({"k": "kyiv~", "s": "sanctions~"})
    for text in ("Kiev and more words here", "new sanctoins on Kyiv today", "Kiev again"):
        art = Article(title=text)
        assert rules.match(art) == rules.match_naive(art)
        assert rules.match(art)


def test_fuzzy_vocabulary_shared_by_threads_starting_afresh_keeps_every_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Threads share a rule set's fuzzy vocabulary; one starting its cache afresh while another
    reads must not take away (or raise over) an answer the other has counted on."""
    import watchers.rules.index as index_module

    monkeypatch.setattr(index_module, "_CACHE_LIMIT", 4)
    vocabulary = index_module._FuzzyVocabulary(
        [index_module._FuzzyTerm("kyiv", 80.0), index_module._FuzzyTerm("sanctions", 80.0)],
        shipped_aliases(),
    )
    words = [{"kiev", "today", f"w{i}", "sanctoins"} for i in range(6)]
    expected = [
        {k: {t.key for t in ts} for k, ts in vocabulary.lookup(set(ws)).items()} for ws in words
    ]
    assert expected[0] == {"kiev": {"kyiv"}, "sanctoins": {"sanctions"}}
    wrong: list[object] = []

    def work() -> None:
        try:
            for _ in range(400):
                for ws, want in zip(words, expected, strict=True):
                    got = {k: {t.key for t in ts} for k, ts in vocabulary.lookup(set(ws)).items()}
                    if got != want:
                        wrong.append(got)
        except Exception as exc:  # any error is the failure reported below
            wrong.append(exc)

    run_in_threads(work, interval=1e-6)
    assert not wrong, wrong[:3]


# Enough literals for the pure screen to look them up by their first three letters.
_SCREEN_WORDS = [f"{a}{b}{c}" for a in "kyivt" for b in "roai" for c in "opsn"] + ["ky", "ro"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(_SCREEN_WORDS), min_size=1, max_size=40),
    st.lists(
        st.text(alphabet="kyivtroapsKYIVS \u017f\u0131-.", max_size=60), min_size=1, max_size=3
    ),
)
def test_pure_regex_screen_finds_each_literal_in_the_texts(
    words: list[str], texts: list[str]
) -> None:
    patterns = [f"{w}s? x" for w in _SCREEN_WORDS] + [f"{w}.i" for w in words]
    screen = _RegexScreen(patterns)
    assert len(screen.literals) >= _GRAM_SCREEN_FROM
    screen._find = None  # the pure path, whatever scan is installed
    joined = "\x00".join(_screen_form(t) for t in texts if t)
    expected = set(screen.unscreened)
    for lit, needing in screen.literals.items():
        if lit in joined:
            expected.update(needing)
    assert screen.matching(texts) == expected
    # a superset of the patterns that match, as screening must be
    matched = {p for p in patterns if any(regex.search(p, t, regex.IGNORECASE) for t in texts)}
    assert matched <= expected


def test_a_regex_is_a_candidate_only_where_each_required_string_is() -> None:
    rules = RuleSet.from_queries({"r": r"/kyiv\W+talks/", "s": "/(kyiv|kiev) (said|says)/"})
    assert rules.candidates(Article(title="Kyiv", text="no such thing")) == []
    # A match lies in one field: strings found in two fields make no candidate.
    assert rules.candidates(Article(title="Kyiv", text="said nothing")) == []
    assert rules.candidates(Article(title="Kyiv said", text="nothing")) == ["s"]
    apart = Article(title="Kyiv", text="More talks. Kiev said so")
    assert rules.candidates(apart) == ["s"]
    both = Article(title="Kyiv", text="Kyiv: more talks. Kiev said so")
    assert rules.candidates(both) == ["r", "s"]
    assert [m.rule for m in rules.match(both)] == ["s"]
    for article in (apart, both):
        assert rules.match(article) == rules.match_naive(article)
        decided = rules.match_report(article, evidence=False).matches
        assert [(m.rule, m.score) for m in decided] == [
            (m.rule, m.score) for m in rules.match(article)
        ]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_SCREEN_WORDS), min_size=2, max_size=6), st.data())
def test_every_required_literal_set_keeps_each_matching_pattern(
    words: list[str], data: st.DataObject
) -> None:
    # Texts of the patterns' own words, so that some of them match.
    part = st.tuples(st.sampled_from(words), st.sampled_from([" ", "s ", "-", ". ", "S\u017f "]))
    texts = data.draw(
        st.lists(
            st.lists(part, max_size=8).map(lambda ps: "".join(w.upper() + s for w, s in ps)),
            min_size=1,
            max_size=3,
        )
    )
    patterns = [f"{a}\\W+{b}" for a, b in pairwise(words)]
    patterns += [f"(?:{a}|{b})s? {b}" for a, b in pairwise(words)]
    # A set of several literals after the first: "kyo\W+(?:rip|tan)" needs "rip" or "tan".
    triples = zip(words, words[1:], words[2:], strict=False)
    patterns += [f"{a}\\W+(?:{b}|{c})" for a, b, c in triples]
    screen = _RegexScreen(patterns)
    for find, sieve in _scans(screen):  # each scan installed, and the pure path
        screen._find, screen._sieve = find, sieve
        narrowed = screen.matching_all(texts)
        assert set(narrowed) <= screen.matching(texts)
        matched = {p for p in patterns if any(regex.search(p, t, regex.IGNORECASE) for t in texts)}
        assert matched <= set(narrowed)
        joined = "\x00".join(_screen_form(t) for t in texts if t)
        for p in narrowed:
            assert all(any(lit in joined for lit in s) for s in screen.also.get(p, []))
        # Text by text: each text's screen keeps the patterns that match that text, and is
        # narrower than the texts' together.
        each = screen.matching_each(texts)
        assert set().union(*each) <= set(narrowed)
        for t, found in zip(texts, each, strict=True):
            assert {p for p in patterns if regex.search(p, t, regex.IGNORECASE)} <= found
            # Exactly the patterns with one literal of each of their sets in this text.
            form = _screen_form(t)
            assert found == {
                p for p in patterns
                if any(lit in form for lit, ps in screen.literals.items() if p in ps)
                and all(any(lit in form for lit in s) for s in screen.also.get(p, []))
            }


def _scans(screen: _RegexScreen) -> list[tuple[_Finder | None, Callable[..., Any] | None]]:
    """The screen's literal scans that are installed (the C automaton, with and without its
    screen in one call; Hyperscan), and the pure screen (None)."""
    literals = [(lit, lit.encode() in screen._lead_ids) for lit in screen._scanned]
    made = [_automaton_finder(literals), _hyperscan_finder(literals)]
    out: list[tuple[_Finder | None, Callable[..., Any] | None]] = []
    if screen._sieve is not None:
        out.append((made[0], screen._sieve))
    return out + [(f, None) for f in made if f is not None] + [(None, None)]


def _key_index_built(analysis: Analysis) -> bool:
    by_key = analysis.field("text")._by_key
    return by_key is not None and by_key._last is not None


def test_many_regex_candidates_do_not_build_the_key_index() -> None:
    """Regexes read the text, not the key index: many regex candidates leave it unbuilt,
    while as many prefix candidates (which read it) have it built at once."""
    text = " ".join(f"storm{i}ed" for i in range(8))
    article = Article(title="x", text=text)
    regexes = RuleIndex([Rule(f"r{i}", rf"/\bstorm{i}\w*/") for i in range(8)], shipped_aliases())
    analysis = Analysis(article)
    found, _ = regexes.candidates(analysis)
    assert len(found) == 8
    assert not _key_index_built(analysis)
    prefixes = RuleIndex([Rule(f"p{i}", f"storm{i}*") for i in range(8)], shipped_aliases())
    analysis = Analysis(article)
    found, _ = prefixes.candidates(analysis)
    assert len(found) == 8
    assert _key_index_built(analysis)


def test_similar_pairs_are_the_same_with_and_without_numpy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from watchers.rules import index

    queries = ["kyiv", "kiew", "donezk", "charkiw", "putin", "zelenskyy", "bakhmut", "x"]
    choices = ["kyiv", "donetsk", "kharkiv", "putin", "zelensky", "bakhmut", "odesa"]
    with_numpy = sorted(index._similar_pairs(queries, choices, 0.7))
    assert {(0, 0), (2, 1), (4, 3)} <= set(with_numpy) and (7, 0) not in with_numpy
    process, scorer, _ = index._rapidfuzz()
    monkeypatch.setattr(index, "_RAPIDFUZZ", (process, scorer, False))
    assert sorted(index._similar_pairs(queries, choices, 0.7)) == with_numpy


# A pair exactly at its term's threshold: "putan" is 0.8 like "putin" (rapidfuzz scored such a
# pair 0 at a cutoff only 1e-9 below it, so the index lost what the naive loop found).
AT_THRESHOLD = [("putin~80", "Vladimir Putan said"), ("biden~80", "Joe Bidan said"),
                ("trump~80", "Donald Trimp said")]


@pytest.mark.parametrize(("query", "text"), AT_THRESHOLD)
@pytest.mark.parametrize("path", ["c", "rapidfuzz"])
def test_a_word_exactly_at_the_threshold_is_found_as_the_naive_loop_finds_it(
    query: str, text: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from watchers.rules import text as text_module

    if path == "rapidfuzz":
        monkeypatch.setattr(text_module, "_similar", None)
    elif text_module._similar is None:
        pytest.skip("watchers.rules._ctext is not built")
    rules = RuleSet([Rule("r", query)])
    article = Article(id="a", title="", text=text)
    assert [m.rule for m in rules.match_naive(article)] == ["r"]
    assert [m.rule for m in rules.match(article)] == ["r"]
    assert index_candidates(rules, article) == ["r"]


words_of = st.text(alphabet=st.sampled_from(list("aabdeikorstuvyzłöüкиевж")), max_size=14)


@settings(max_examples=300, deadline=None)
@given(queries=st.lists(words_of, min_size=1, max_size=8),
       choices=st.lists(words_of, max_size=12),
       threshold=st.integers(min_value=50, max_value=100))
def test_the_c_similar_pairs_are_rapidfuzzs(
    queries: list[str], choices: list[str], threshold: int
) -> None:
    from watchers.rules import text as text_module
    from watchers.rules.variants import CUTOFF_SLACK

    if text_module._similar is None or text_module._pack_choices is None:
        pytest.skip("watchers.rules._ctext is not built")
    from watchers.rules import index

    cutoff = threshold / 100 - CUTOFF_SLACK
    got = text_module._similar(queries, text_module._pack_choices(choices), cutoff)
    assert len(got) == len(set(got))
    expected = set(index._similar_pairs(queries, choices, cutoff)) if choices else set()
    assert set(got) == expected


def test_the_c_similar_pairs_refuse_what_is_not_a_pack() -> None:
    from watchers.rules import text as text_module

    if text_module._similar is None or text_module._pack_choices is None:
        pytest.skip("watchers.rules._ctext is not built")
    pack = text_module._pack_choices(["kyiv", "donetsk"])
    for bad in (b"", b"\x01", pack[:20], b"\xff" * len(pack)):
        with pytest.raises(ValueError, match="not a pack of choices"):
            text_module._similar(["kyiv"], bad, 0.8)
    with pytest.raises(TypeError):
        text_module._similar([b"kyiv"], pack, 0.8)  # type: ignore[list-item]
    assert text_module._similar(["kiev"], pack, 0.7) == [(0, 0)]


def test_words_a_thousand_times_longer_are_compared_as_the_naive_loop_does() -> None:
    """A 19,000-letter fuzzy term (within the query limit) and an article word one letter from
    it: the C comparison's table would cost the product of their lengths, so words that long
    go to rapidfuzz's scorer; both halves of a mixed batch keep their numbers."""
    import random

    from watchers.rules import index
    from watchers.rules import text as text_module

    if text_module._similar is None or text_module._pack_choices is None:
        pytest.skip("watchers.rules._ctext is not built")
    rng = random.Random(1)
    term = "".join(rng.choice("abcdefghij") for _ in range(19_000))
    word = term[:9000] + "x" + term[9001:]
    rules = RuleSet([Rule("long", term + "~"), Rule("k", "kyiv~")])
    article = Article(id="a", title="Kyiw", text=f"kyiv {word} kiev")
    assert sorted(m.rule for m in rules.match(article)) == ["k", "long"]
    assert rules.match(article) == rules.match_naive(article)
    queries = ["kyiw", word, "kiev", term[:50]]
    choices = ["kyiv", term]
    pack = text_module._pack_choices(choices)
    got = index._c_similar_pairs(text_module._similar, queries, choices, pack, 0.75)
    assert sorted(got) == sorted(index._similar_pairs(queries, choices, 0.75)) == [
        (0, 0), (1, 1), (2, 0)]


lengths_apart = st.text(alphabet=st.sampled_from(list("abdeikorsty")), max_size=90)


@settings(max_examples=300, deadline=None)
@given(queries=st.lists(lengths_apart, min_size=1, max_size=6),
       choices=st.lists(lengths_apart, min_size=1, max_size=6),
       threshold=st.integers(min_value=50, max_value=100))  # what a fuzzy term may ask
def test_queries_left_out_for_their_length_could_reach_no_choice(
    queries: list[str], choices: list[str], threshold: int
) -> None:
    """The length bound only leaves out pairs rapidfuzz's scorer itself turns away."""
    from rapidfuzz import process
    from rapidfuzz.distance import Indel

    from watchers.rules import index
    from watchers.rules.variants import CUTOFF_SLACK

    cutoff = threshold / 100 - CUTOFF_SLACK
    expected = {(r, c) for r, q in enumerate(queries)
                for _, _, c in process.extract(q, choices, scorer=Indel.normalized_similarity,
                                               score_cutoff=cutoff, limit=None)}
    assert set(index._similar_pairs(queries, choices, cutoff)) == expected


def test_a_word_too_long_for_every_fuzzy_term_loads_no_batch_scorer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Words longer than the C comparison takes went to rapidfuzz's batch scorer, whose first
    import (with numpy's) stalled matching for about 0.1 s, though no fuzzy term of a few
    letters can be similar to a word of 65."""
    from watchers.rules import index
    from watchers.rules import text as text_module

    if text_module._similar is None or text_module._pack_choices is None:
        pytest.skip("watchers.rules._ctext is not built")
    monkeypatch.setattr(index, "_RAPIDFUZZ", None)
    rules = RuleSet([Rule("k", "kyiv~"), Rule("d", "donetsk~80")])
    article = Article(id="a", title="Kiev and Donezk",
                      text="a" * 65 + " hashtag" + "x" * 70 + " kyiw")
    assert sorted(m.rule for m in rules.match(article)) == ["d", "k"]
    assert rules.match(article) == rules.match_naive(article)
    assert index._RAPIDFUZZ is None
