"""The regex path: a pattern whose matches begin with known literals is tried where they are,
which must find exactly what a search of the whole text finds.

The specification is ``finditer`` over the whole field text (non-empty spans); the texts here
are hostile to the shortcut: letters that match ASCII ones under IGNORECASE (K, ſ, İ, ı),
characters beyond Latin-1, lone surrogates, overlapping occurrences of a literal, matches at
either end, patterns that can match empty and patterns whose literal is not at the start.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import regex
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from watchers.models import Article
from watchers.rules import RegexBudget, Rule, RuleSet, match_query
from watchers.rules import matcher as matcher_module
from watchers.rules.index import _PLAIN, _automaton_pack, _RegexScreen
from watchers.rules.matcher import (
    Analysis,
    Evaluator,
    FoldedText,
    _leading_literals,
    folded_text,
)
from watchers.rules.syntax import Regex

FLAGS = regex.IGNORECASE | regex.V0

# Patterns of the shapes rules use, and ones built to trip the shortcut.
PATTERNS = [
    r"\bkiev\w*",
    r"kievs? (and|or) talks",
    r"kiev\W+talks",
    r"(kyiv|kiev)\W+talks",
    r"\b(?:ki|sk)\w*",
    r"aa",
    r"aba",
    r"^ab",
    r"ab$",
    r"\Bab",
    r"\bab\b",
    r"(?<=k)ab",
    r"(?<!s)ki",
    r"ab(?=a)",
    r"(?:|x)ab",
    r"(?:ab)?",
    r"\w+ing",
    r"x?abc",
    r"(ab)+c",
    r"ski",
    r"kk",
    r"sss",
    r"\bii\w*",
    r"(?a)\bki\w*",
    r"(?-i:Ab)a",
    r"[k]i\w",
    "\u212aelvin",
    r"what\?",
    r"1,?00",
    r"a.b",
    r"s\b",
]

# Letters and marks that trip a case-blind literal search, as single characters and in runs.
ALPHABET = st.sampled_from(
    [
        *"aAbBcikKsSxX_ 1,0.?-'\n",
        *("\u212a", "\u017f", "\u0131", "\u0130", "\xdf", "\xe9", "\xc9", "\u03a3", "\u03c2"),
        *("\u2019", "\u201c", "\u4e2d", "\U0001f600", "\ud800", "\udc00"),
        *("kiev", "KIEV", "Kyiv", "talks", " and ", "ab", "aba", "abab", "aaa", "sk", "ing"),
    ]
)
TEXTS = st.lists(ALPHABET, max_size=40).map("".join)


def finditer_spans(pattern: str, text: str) -> list[tuple[int, int]]:
    """The specification: every non-empty match of a search over the whole text."""
    rx = regex.compile(pattern, FLAGS)
    return [m.span() for m in rx.finditer(text) if m.end() > m.start()]


def path_spans(
    pattern: str, text: str, *, screened: bool, try_all: bool = False
) -> list[tuple[int, int]] | None:
    """The evaluator's spans; ``try_all`` has it try the pattern at every place of its lead
    however many there are (rather than search from the first past a few)."""
    article = Article(title="t", text=text)
    tries = matcher_module._TRIES_BASE
    if try_all:
        # Before the screen too: it keeps as many places of each lead as the evaluator tries.
        matcher_module._TRIES_BASE = 10**9
    try:
        if screened:
            # The screen records where the leads are, as a rule set's index does before
            # evaluating.
            _RegexScreen([pattern]).matching_all([article.title, article.text])
        ev = Evaluator(Analysis(article), None, budget=RegexBudget(30.0))
        return ev.regex_spans(Regex(pattern=pattern), "text")
    finally:
        matcher_module._TRIES_BASE = tries


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATTERNS), TEXTS, st.booleans(), st.booleans())
@example(r"\bkiev\w*", "kiev\ud835\udfcf", False, False)
def test_spans_equal_a_search_of_the_whole_text(
    pattern: str, text: str, screened: bool, try_all: bool
) -> None:
    spans = path_spans(pattern, text, screened=screened, try_all=try_all)
    # ... of the text as the article holds it: a surrogate pair written as two code points is
    # one character there (kiev + U+1D7CF, a digit: five characters, all of \bkiev\w*)
    assert spans == finditer_spans(pattern, Article(title="t", text=text).text)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(PATTERNS), st.lists(st.sampled_from(["ab", "aba", "ki", "x", " "]), max_size=60)
)
def test_many_occurrences(pattern: str, parts: list[str]) -> None:
    # More places than are worth trying one by one: the search starts at the first.
    text = "".join(parts)
    for screened in (False, True):
        for try_all in (False, True):
            spans = path_spans(pattern, text, screened=screened, try_all=try_all)
            assert spans == finditer_spans(pattern, text)


def test_a_long_text_with_the_literal_everywhere() -> None:
    text = ("Kiev talks, KIEV\u2019s \u212aiev-talks; sKiev " * 400)[:-1]
    for pattern in PATTERNS:
        for screened in (False, True):
            for try_all in (False, True):
                spans = path_spans(pattern, text, screened=screened, try_all=try_all)
                assert spans == finditer_spans(pattern, text), pattern


@pytest.mark.parametrize(
    ("pattern", "text", "spans"),
    [
        # Overlapping places of the literal: matches do not overlap, the leftmost wins.
        ("aba", "ababa", [(0, 3)]),
        ("aba", "abababa", [(0, 3), (4, 7)]),
        ("aa", "aaaaa", [(0, 2), (2, 4)]),
        (r"ab\w*", "abab ab", [(0, 4), (5, 7)]),
        # At either end, and a literal inside a word where a match must begin one.
        (r"\bab\w*", "ab xab _ab 1ab \u2019ab \xe9ab ab", [(0, 2), (16, 18), (23, 25)]),
        ("ab$", "abab", [(2, 4)]),
        ("^ab", "abab", [(0, 2)]),
        # Letters that match ASCII ones under IGNORECASE.
        ("kis", "\u212ai\u017f KIS", [(0, 3), (4, 7)]),
    ],
)
def test_spans_at_known_places(pattern: str, text: str, spans: list[tuple[int, int]]) -> None:
    assert finditer_spans(pattern, text) == spans
    for screened in (False, True):
        for try_all in (False, True):
            assert path_spans(pattern, text, screened=screened, try_all=try_all) == spans


def test_leads_are_read_from_the_start_of_the_pattern() -> None:
    assert _leading_literals(r"\bkiev\w*") == ((b"kiev",), True)
    assert _leading_literals(r"kievs? (and|or) talks") == ((b"kiev",), False)
    assert _leading_literals(r"(kyiv|kiev)\W+talks") == ((b"kiev", b"kyiv"), False)
    assert _leading_literals(r"(?:|x)ab") == ((b"ab", b"xab"), False)
    assert _leading_literals(r"(?a)\bkiev") == ((b"kiev",), False)  # \b of ASCII words only
    # No literal every match begins with: searched for as before.
    for pattern in (r"\w+ing", r"x?abc", r"(?:ab)?", r"[ab]cd", r"(a|b|c)de", r"(?r)abc"):
        assert _leading_literals(pattern)[0] is None, pattern


def test_each_letter_that_matches_an_ascii_one_folds_to_it() -> None:
    # Every code point, surrogates included: where a plain literal character matches one under
    # IGNORECASE, the screen form holds that character there.
    every = "".join(map(chr, range(sys.maxunicode + 1)))
    data = FoldedText(every).data
    assert len(data) == len(every)
    for ch in sorted(_PLAIN):
        at = [m.start() for m in regex.compile(regex.escape(ch), FLAGS).finditer(every)]
        assert at, ch
        assert {data[i : i + 1] for i in at} == {ch.encode("ascii")}, ch


@settings(max_examples=200, deadline=None)
@given(TEXTS)
def test_the_screen_form_keeps_offsets(text: str) -> None:
    data = FoldedText(text).data
    assert len(data) == len(text)
    for i, ch in enumerate(text):
        if ch.isascii():
            assert data[i : i + 1] == ch.lower().encode("ascii")


def test_the_screen_form_is_shared_by_identity_only() -> None:
    text = "Kiev talks " * 3
    assert folded_text(text) is folded_text(text)
    other = "".join(list(text))  # equal, another object
    assert other is not text
    assert folded_text(other) is not folded_text(text)
    assert folded_text(other).data == folded_text(text).data


# A budget no test run overruns on a loaded machine: the two loops differ only past it.
QUERIES = {f"r{i:02d}": f"/{p}/" for i, p in enumerate(PATTERNS)}
RULES = RuleSet.from_queries(QUERIES, regex_budget=30.0)
PURE_RULES = RuleSet.from_queries(QUERIES, regex_budget=30.0)
PURE_RULES._index._regex._find = None  # the pure screen, whatever scan is installed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(TEXTS, TEXTS), min_size=1, max_size=3), st.booleans())
def test_rule_set_equals_the_naive_loop(articles: list[tuple[str, str]], pure: bool) -> None:
    rules = PURE_RULES if pure else RULES
    for title, text in articles:
        art = Article(title=title or "x", text=text)
        assert rules.match(art) == rules.match_naive(art)


# (a|aa)+$ backtracks exponentially on a run of a's that ends in another letter; the pattern
# begins with a literal, so it is tried where that literal is.
CATASTROPHIC = "/xx(a|aa)+$/"
SLOW_TEXT = "xx" + "a" * 60 + "!"


def test_a_catastrophic_pattern_tried_at_its_lead_ends_and_is_reported() -> None:
    leads = _leading_literals(CATASTROPHIC.strip("/"))[0]
    assert leads and all(lead.startswith(b"xx") for lead in leads)
    rules = RuleSet.from_queries(
        {"bad": CATASTROPHIC, "plain": "troops", "a_good": "/troops? massed/"}, regex_budget=0.05
    )
    art = Article(title="Troops massed", text=SLOW_TEXT)
    report = rules.match_report(art)
    assert [m.rule for m in report.matches] == ["a_good", "plain"]
    assert report.over_budget == ("bad",)
    assert report.matches == rules.match_naive(art)


def test_a_spent_budget_is_reported_even_where_the_lead_is_absent() -> None:
    budget = RegexBudget(0.05)
    assert match_query(CATASTROPHIC, Article(title="x", text=SLOW_TEXT), budget=budget) is None
    assert budget.exhausted
    # The lead is not in this text, but a spent budget runs nothing and says so.
    ev = Evaluator(Analysis(Article(title="x", text="no lead here")), None, budget=budget)
    assert ev.match("r", Regex(pattern="xx(a|aa)+$"), 85) is None
    assert ev.over_budget == ["r"]


def test_the_try_limit_scales_with_the_text(monkeypatch: pytest.MonkeyPatch) -> None:
    # Five places of a lead are tried one by one in a long text, searched from the first in a
    # short one; the spans are the same either way.
    tried: list[str] = []
    spans_at = matcher_module._spans_at

    def spy(rx: regex.Pattern[str], text: str, starts: list[int], deadline: float) -> object:
        tried.append(text)
        return spans_at(rx, text, starts, deadline)

    monkeypatch.setattr(matcher_module, "_spans_at", spy)
    short, long = "ab " * 5, "ab " * 5 + " " * 3000
    for text in (short, long):
        for pattern in (r"ab", r"\bab\w*", r"ab $", r"(?<=a)b"):
            spans = path_spans(pattern, text, screened=False)
            assert spans == finditer_spans(pattern, text)
    assert short not in tried
    assert long in tried


def test_an_article_a_thousand_times_larger_with_leads_everywhere() -> None:
    """A 5 MB article holding a regex's leads tens of thousands of times: the rule set still
    equals the naive loop (a budget no run reaches), and with a budget too small for it the
    regex rules are reported over budget while the word rules beside them still match."""
    chunk = "Kiev talks and Kyiv\u2019s talks; kyivska or kievan talks, \u212aiev talks. "
    text = chunk * (5_000_000 // len(chunk))
    article = Article(id="big", title="Kyiv talks", text=text)
    queries = {
        "lead": r"/\bkyiv\w*/",
        "branch": r"/(kyiv|kiev)\W+talks/",
        "sep": r"/talks? (and|or) kyiv/",
        "word": "talks",
    }
    roomy = RuleSet.from_queries(queries, regex_budget=3600.0)
    got = roomy.match(article)
    assert got == roomy.match_naive(article)
    assert [m.rule for m in got] == ["branch", "lead", "sep", "word"]
    tight = RuleSet.from_queries(queries, regex_budget=1e-6)
    report = tight.match_report(article)
    assert set(report.over_budget) <= {"branch", "lead", "sep"} and report.over_budget
    assert "word" in [m.rule for m in report.matches]


def test_a_pattern_only_the_regex_module_reads_is_searched_for_as_before() -> None:
    """Leads are read with Python's own parser; a pattern it refuses (``\\p{..}``, possessive
    sets of the regex module) has none and is searched for over the whole text."""
    assert matcher_module._leading_literals(r"\p{Lu}yiv\w*") == (None, False)
    rules = RuleSet.from_queries({"p": r"/\p{Lu}yiv\w*/", "q": r"/\bkyiv\p{L}*/"})
    article = Article(id="a", title="Kyivska", text="in Kyiv and kyivan, not xkyiv")
    got = rules.match(article)
    assert got == rules.match_naive(article)
    assert [m.rule for m in got] == ["p", "q"]
    assert [h.text for h in got[1].hits] == ["Kyivska", "Kyiv", "kyivan"]


def test_attempts_are_bounded_only_for_linear_patterns() -> None:
    """The rule shapes' attempts at a place take steps linear in the text at most; a pattern
    that may backtrack more (two unbounded repeats, nested repeats, lookarounds) has no bound
    and keeps the regex module's timeout."""
    steps = matcher_module._attempt_steps
    for pattern in (r"\bkiev\w*", r"kievs? (and|or) talks", r"kiev\W+talks",
                    r"(kyiv|kiev)\W+talks", r"1,?00,?000 troops", r"a.b",
                    r"kiev(s)? (and|or) talks", r"ukrain(ian|ians)?\W+troops",
                    r"(ab)?(cd)?(ef)?x", r"(a(b)?)?c"):
        assert steps(pattern) is not None, pattern
    # A bounded repeat of a group counts each of its paths at each count: (s)? is two, as s?
    # is (the group is one item more).
    grouped, plain = steps(r"kiev(s)? (and|or) talks"), steps(r"kievs? (and|or) talks")
    assert grouped is not None and plain is not None and grouped[1] == plain[1] == 0
    assert grouped[0] // 4 == plain[0] // 4 + 1  # four paths each
    # No unbounded repeat: a fixed number of steps, whatever the text.
    bounded = steps(r"kievs? (and|or) talks")
    assert bounded is not None and bounded[1] == 0
    for pattern in (r"xx(a|aa)+$", r"(ab)+c", r"\w+ing\w*", r"(?<=k)ab", r"(a|b\w*)c",
                    r"ab{2,500}", r"(a)\1", r"(?>ab)c", r"((ab)?)+c", r"(ab|cd){0,7}x",
                    r"(a\w*)?b"):
        assert steps(pattern) is None, pattern


def test_an_untimed_attempt_that_ends_past_the_deadline_counts_as_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bounded pattern is tried without the regex module's timeout; if the clock has passed
    the deadline when the attempt returns, it counts as stopped there, as with the timeout."""
    rx = matcher_module._regex_plan(r"\bkiev\w*")[0]
    assert id(rx) in matcher_module._BOUNDED
    text = "in Kiev, kievan talks"
    assert matcher_module._spans_at(rx, text, [3, 9], 1e9) == [(3, 7), (9, 15)]
    # Read before the attempt (5 s left), then after it (5 s past the deadline).
    ticks = iter([0.0, 10.0, 10.0])
    monkeypatch.setattr(time, "perf_counter", lambda: next(ticks))
    with pytest.raises(TimeoutError):
        matcher_module._spans_at(rx, text, [3], 5.0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATTERNS), TEXTS, TEXTS, st.sampled_from([None, "title", "text"]))
def test_a_rule_of_one_regex_hits_where_a_search_finds_it(
    pattern: str, title: str, text: str, field: str | None
) -> None:
    """A rule that is one regex (evaluated without the boolean dispatch) has one hit per
    non-empty match of a search of each of its fields, in field order, and no match where
    there is none; with a spent budget it is reported over budget even with no lead."""
    article = Article(title=title or "x", text=text)
    query = f"{field}:/{pattern}/" if field else f"/{pattern}/"
    got = match_query(query, article, budget=RegexBudget(30.0))
    expected = [
        (name, span)
        for name in ((field,) if field else ("title", "text"))
        for span in finditer_spans(pattern, article.field(name))
    ]
    if not expected:
        assert got is None
        return
    assert got is not None
    assert [(h.field, (h.start, h.end)) for h in got.hits] == expected
    assert {(h.term, h.kind, h.score) for h in got.hits} == {(f"/{pattern}/", "regex", 100.0)}
    spent = RegexBudget(1e-9)
    spent.spent = 1.0
    ev = Evaluator(Analysis(article), None, budget=spent)
    assert ev.match("r", Regex(pattern=pattern, field=field), 85) is None
    assert ev.over_budget == ["r"]


def test_threads_matching_regex_rules_with_one_rule_set_get_the_same_answers() -> None:
    """The regex screen scans with Hyperscan where it is installed: each thread gets scratch
    space of its own (a database's own served one scan at a time, and a second thread's scan
    raised ScratchInUseError, failing whole polls). The pure screen has nothing to share."""
    from concurrent.futures import ThreadPoolExecutor

    # (a budget no article reaches: the wall-clock one of 0.1 s can run out on a loaded
    # machine with four threads, and a regex out of time counts as not matching)
    rules = RuleSet([Rule("n", r"/\b\d{2,} (dead|killed|injured)/"), Rule("k", r"/kyiv\W+talks/"),
                     Rule("w", r"/\bwar\w*/"), Rule("t", "troops")], regex_budget=3600.0)
    words = ["troops", "near", "Kyiv", "talks", "war", "warring", "12", "dead", "killed", "and"]
    articles = [Article(title=f"t{i}", text=" ".join(words[(i + j) % len(words)]
                                                      for j in range(400)))
                for i in range(60)]

    def shown(article: Article) -> list[tuple[str, float, int]]:
        return [(m.rule, m.score, len(m.hits)) for m in rules.match(article)]

    alone = [shown(a) for a in articles]
    assert any(alone)
    for _ in range(5):
        with ThreadPoolExecutor(max_workers=4) as pool:
            assert list(pool.map(shown, articles * 4)) == alone * 4


def test_a_screened_regex_is_tried_only_in_the_fields_that_hold_its_strings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rule set's screen notes, field by field, where each regex may match: the evaluator
    tries it in no other field (deciding or with evidence), and finds what the naive loop
    finds. A regex inside a rule anchored on a word is not screened and is tried as ever."""
    tried: list[tuple[str, str]] = []
    spans = matcher_module.RegexBudget.spans

    def spy(self: RegexBudget, rx: regex.Pattern[str], text: str, *args: object) -> object:
        tried.append((rx.pattern, text))
        return spans(self, rx, text, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(matcher_module.RegexBudget, "spans", spy)
    rules = RuleSet.from_queries(
        {"alone": r"/\bkiev\w*/", "anchored": r"troops AND /\bkyi\w*/", "twice": r"/kiev\W+talks/"}
    )
    article = Article(title="Troops in Kyiv", text="Kiev talks went on; Kievan Rus")
    for evidence in (True, False):
        tried.clear()
        found = rules.match_report(article, evidence=evidence).matches
        assert [(m.rule, m.score) for m in found] == [
            (m.rule, m.score) for m in rules.match_naive(article)
        ]
        assert [m.rule for m in found] == ["alone", "anchored", "twice"]
        assert [m.score for m in found] == [2.0, 4.0, 1.0]
        # The screened patterns ran on the text only; the anchored rule's regex was not
        # screened, so it ran where the rule reads, the title as well.
        assert (r"\bkiev\w*", article.text) in tried
        assert (r"kiev\W+talks", article.text) in tried
        assert (r"\bkyi\w*", article.title) in tried
        assert not [p for p, text in tried if text == article.title and "kiev" in p]
    # The screen alone: a field that holds a pattern's strings is where it may match.
    screen = _RegexScreen([r"\bkiev\w*", r"kiev\W+talks"])
    assert screen.matching_each([article.title, article.text, ""]) == [
        set(),
        {r"\bkiev\w*", r"kiev\W+talks"},
        set(),
    ]


def test_a_rule_set_whose_regexes_need_the_wide_automaton_decides_as_the_naive_loop() -> None:
    """Thousands of regex rules of long rare words: their literals make an automaton of more
    than 32,767 states, which keeps 32-bit moves (the narrow form cannot hold it). Deciding
    through the screen in one call still gives what the naive loop gives."""
    import random
    import struct

    rng = random.Random(3)
    words = sorted({"".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=12)) for _ in range(4200)})
    queries = {f"w{i:04d}": f"/\\b{w}\\w*/" if i % 3 else f"/{w}\\W+{words[i - 1]}/"
               for i, w in enumerate(words)}
    rules = RuleSet.from_queries(queries)
    screen = rules._index._regex
    if screen._sieve is None:
        pytest.skip("the C extension's screen is not built (or NEWSWATCH_PURE is set)")
    pack = _automaton_pack([(lit, lit.encode() in screen._lead_ids) for lit in screen._scanned])
    assert pack is not None
    magic, states = struct.unpack_from("=ii", pack)
    assert magic == 0x4C495431 and states > 32_767  # "LIT1": the wide form
    for n in range(3):
        chosen = rng.sample(words, 40)
        body = " ".join(f"{w}s, {w}. {rng.choice(words)}" for w in chosen)
        article = Article(id=f"a{n}", title=f"{chosen[0].upper()} and more", text=body)
        decided = [(d.rule, d.score) for d in rules.decide(article).decisions]
        assert decided == [(m.rule, m.score) for m in rules.match_naive(article)]
        assert len(decided) > 40


# Patterns decided by counting the places of their literals (the counted shape), and the
# characters that decide whether \b holds before one: ASCII and Latin-1 ones on both sides,
# "?" (also what a character beyond Latin-1 becomes in the screen form), marks, letters and
# punctuation beyond Latin-1, and the letters that fold to ASCII ones.
COUNTED = [
    r"\bkiev\w*",
    r"\b(?:kyiv|kiev)\w*",
    r"\bki",
    r"\b(ab|abc)\w*",
    r"\bsk[a-z]*",
    r"\bab\w*?",
    "\\b\u212aiev\\w*",
    r"\bss\w*",
    r"\bii\w*",
    r"\b10\w*",
]
COUNTED_ALPHABET = st.sampled_from(
    [
        *"aAbBcikKsSxX_ 1,0.?-'\n",
        *("\xa0", "\xd7", "\xab", "\xe9", "\xc9", "\xdf", "\u0301", "\u0142", "\u4e2d", "\u0660"),
        *("\u2019", "\u201c", "\u2014", "\U0001f600", "\u203f"),
        *("\u212a", "\u017f", "\u0131", "\u0130"),
        *("kiev", "KIEV", "Kyiv", "abc", "ab", "sk", "ii", "10"),
    ]
)
COUNTED_TEXTS = st.lists(COUNTED_ALPHABET, max_size=40).map("".join)
WORD_BYTES = [bytes([c]) for c in b"abcdefghijklmnopqrstuvwxyz0123456789_"]


@contextmanager
def counted_most(most: int) -> Iterator[None]:
    """Past ``most`` of a counted pattern's literals in a field, the search answers."""
    kept = matcher_module._COUNTED_MOST
    matcher_module._COUNTED_MOST = most
    try:
        yield
    finally:
        matcher_module._COUNTED_MOST = kept


def test_the_counted_shape_is_a_word_start_literal_and_word_characters_after() -> None:
    for pattern in COUNTED:
        assert matcher_module._regex_plan(pattern)[3], pattern
    # Too short a literal to screen for: searched for, as before.
    assert not matcher_module._regex_plan(r"\bs\w*")[3]
    for pattern in [
        r"kiev\w*",  # no \b: a match may begin inside a word another has taken
        r"\bkiev\w+",  # needs a character after the literal
        r"\bkiev\w*\b",  # a condition after it
        r"\bkiev[^ ]*",  # may run past the word
        r"\bkiev[a-z-]*",
        r"\bkiev[!-~]*",
        r"\bkiev\d*",
        r"\bki.v",
        r"\bki+ev",
        r"(?a)\bkiev\w*",  # \b of ASCII word characters only
        r"\b(?-i:Kiev)\w*",  # fewer places than its literal's
        r"\bk(?-i:i)ev",
        r"\bkiev_\w*",
        "\\bk\xefev\\w*",
        r"\b(kiev|)\w*",
        r"\b\w*kiev",
    ]:
        assert not matcher_module._counted_shape(pattern), pattern


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(COUNTED),
    COUNTED_TEXTS,
    COUNTED_TEXTS,
    st.booleans(),
    st.sampled_from([3, 2000]),
)
def test_a_counted_pattern_decides_as_a_search_counts(
    pattern: str, title: str, text: str, screened: bool, most: int
) -> None:
    """Deciding a rule of one counted pattern scores what its spans from a search of each
    field would (2 a title match, 1 a text match), and nothing where there are none, without
    running the pattern unless its literals are more than ``_COUNTED_MOST`` (here 3 or the
    module's own 2,000) or a field has ı or İ where a literal has an i."""
    article = Article(title=title or "x", text=text)
    if screened:
        _RegexScreen([pattern]).matching_all([article.title, article.text])
    ev = Evaluator(Analysis(article), None, budget=RegexBudget(30.0))
    with counted_most(most):
        decided = ev.decide("r", Regex(pattern=pattern), 85)
    counts = [len(finditer_spans(pattern, article.field(f))) for f in ("title", "text")]
    if not any(counts):
        assert decided is None
    else:
        assert decided is not None
        assert decided.score == 2.0 * counts[0] + counts[1]
    assert ev.over_budget == []
    # The search ran only where a field has more of the literals than that, or has ı or İ
    # where a literal has an i (which of them a pattern's i matches is its case).
    leads = matcher_module._REGEX_PLANS[pattern][1]
    assert leads
    for field, value in (("title", article.title), ("text", article.text)):
        folded = folded_text(value)
        limit = matcher_module.lead_tries(len(value))
        many = any(
            sum(folded.data.startswith(lead, p) for p in range(len(value))) > limit
            for lead in leads
        ) and sum(folded.data.count(lead) for lead in leads) > most
        data = folded.data
        word_starts = [
            lead
            for lead in leads
            for p in range(len(data))
            if data.startswith(lead, p) and not (p and data[p - 1 : p] in WORD_BYTES)
        ]
        dotted = ("\u0131" in value or "\u0130" in value) and any(b"i" in w for w in word_starts)
        assert folded.dotted == ("\u0131" in value or "\u0130" in value)
        assert ((pattern, field) in ev._regex) == (bool(value) and (many or dotted))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(COUNTED),
    st.lists(
        st.sampled_from(
            ["kiev", "kyiv", "ab", "abc", "ii", "sk", "10", " ", "x", "\xe9", "\u2019"]
        ),
        max_size=80,
    ),
    st.sampled_from([3, 2000]),
)
def test_a_counted_pattern_with_its_literals_everywhere(
    pattern: str, parts: list[str], most: int
) -> None:
    """More places than are tried one by one: counted by hand up to ``_COUNTED_MOST`` of the
    literals, searched for past it; the score is the search's count either way."""
    text = "".join(parts)
    article = Article(title="x", text=text)
    with counted_most(most):
        ev = Evaluator(Analysis(article), None, budget=RegexBudget(30.0))
        decided = ev.decide("r", Regex(pattern=pattern, field="text"), 85)
    count = len(finditer_spans(pattern, text))
    assert (decided.score if decided else 0) == count
    leads = matcher_module._REGEX_PLANS[pattern][1]
    assert leads
    data = folded_text(text).data
    tried = matcher_module.lead_tries(len(text))
    searched = sum(data.count(lead) for lead in leads) > most and any(
        sum(data.startswith(lead, p) for p in range(len(data))) > tried for lead in leads
    )
    assert ((pattern, "text") in ev._regex) == searched


def test_counting_a_long_field_by_hand_is_charged_to_the_regex_budget() -> None:
    """Past the few places tried one by one, counting reads the whole field, as a search
    does: its time is the budget's, and the rules after it find the budget spent."""
    chunk = "Kiev talks; kievan and kyivska talks, KIEV\u2019s talks. " + "x" * 300
    text = chunk * 40  # each literal 40-80 times: past the places tried, under the hand limit
    article = Article(id="long", title="t", text=text)
    queries = {"a": r"/\bkiev\w*/", "b": r"/\bkyiv\w*/", "c": r"/\btalks\w*/"}
    for pattern in queries.values():
        assert matcher_module._regex_plan(pattern.strip("/"))[3]
    roomy = RuleSet.from_queries(queries, regex_budget=3600.0)
    decided = roomy.decide(article)
    assert decided.over_budget == ()
    assert {d.rule: d.score for d in decided.decisions} == {
        name: float(len(finditer_spans(q.strip("/"), text))) for name, q in queries.items()
    }
    budget = RegexBudget(3600.0)
    ev = Evaluator(Analysis(article), None, budget=budget)
    assert ev.decide("a", Regex(pattern=r"\bkiev\w*"), 85) is not None
    assert budget.spent > 0
    # A budget the first count uses up: that rule is decided, the next ones are over it.
    tight = RuleSet.from_queries(queries, regex_budget=1e-9)
    decided = tight.decide(article)
    assert [d.rule for d in decided.decisions] == ["a"]
    assert decided.over_budget == ("b", "c")


def test_a_counted_pattern_with_a_spent_budget_is_reported_over_it() -> None:
    spent = RegexBudget(1e-9)
    spent.spent = 1.0
    ev = Evaluator(Analysis(Article(title="Kiev", text="kiev")), None, budget=spent)
    assert ev.decide("r", Regex(pattern=r"\bkiev\w*"), 85) is None
    assert ev.over_budget == ["r"]


def test_threads_deciding_counted_patterns_before_thousands_of_other_letters_agree() -> None:
    """Four threads decide rules of counted patterns on articles whose literals follow
    thousands of different characters beyond Latin-1, word characters and not (the
    word-character table is shared, and emptied past 4,096 of them while others read it):
    every decision is a search's count, and the table stays bounded."""
    from concurrent.futures import ThreadPoolExecutor

    patterns = {"kiev": r"\bkiev\w*", "either": r"\b(?:kyiv|kiev)\w*", "talks": r"\btalks\w*"}
    rules = RuleSet([Rule(name, f"/{p}/") for name, p in patterns.items()], regex_budget=3600.0)
    # CJK ideographs are word characters, arrows and box drawings are not.
    before = [chr(c) for c in range(0x4E00, 0x4E00 + 5000)] + [
        chr(c) for c in range(0x2190, 0x2190 + 112)] + [chr(c) for c in range(0x2500, 0x2580)]
    articles = []
    for i in range(8):
        chosen = before[i * 600:(i + 1) * 600] + before[5000:]
        text = " ".join(f"{ch}{'kiev' if j % 3 else 'Kyiv'} {ch}talks"
                        for j, ch in enumerate(chosen))
        articles.append(Article(title=f"t{i}", text=text))

    def decided(article: Article) -> list[tuple[str, float]]:
        return [(d.rule, d.score) for d in rules.decide(article).decisions]

    expected = [
        [(name, float(len(finditer_spans(p, a.text))))
         for name, p in sorted(patterns.items()) if finditer_spans(p, a.text)]
        for a in articles
    ]
    assert any(expected)
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(decided, articles * 4)) == expected * 4
    assert len(matcher_module._IS_WORD) <= 4097


def test_deciding_an_article_a_thousand_times_larger_with_counted_patterns() -> None:
    """A 1 MB article holding a counted pattern's literal tens of thousands of times (past the
    hand count: searched for) and another's a few hundred times (counted): decided as the
    search counts with a budget no run reaches; with one too small, the regex rules are
    reported over it and the word rule beside them still decides."""
    chunk = "Kyiv talks; kyivska and Kyiv\u2019s talks. " + "x" * 40 + " "
    text = (chunk * (1_000_000 // len(chunk)))
    text = text.replace("x" * 40, "sanctions" + "x" * 31, 300)
    article = Article(id="big", title="Kyiv talks", text=text)
    queries = {"kyiv": r"/\bkyiv\w*/", "sanction": r"/\bsanction\w*/", "word": "talks"}
    roomy = RuleSet.from_queries(queries, regex_budget=3600.0)
    decided = roomy.decide(article)
    assert decided.over_budget == ()
    scores = {d.rule: d.score for d in decided.decisions}
    for name in ("kyiv", "sanction"):
        pattern = queries[name].strip("/")
        assert scores[name] == 2.0 * len(finditer_spans(pattern, article.title)) + len(
            finditer_spans(pattern, text))
    assert scores["sanction"] == 300.0
    assert scores == {m.rule: m.score for m in roomy.match_naive(article)}
    tight = RuleSet.from_queries(queries, regex_budget=1e-6)
    decided = tight.decide(article)
    assert decided.over_budget and set(decided.over_budget) <= {"kyiv", "sanction"}
    assert "word" in [d.rule for d in decided.decisions]
