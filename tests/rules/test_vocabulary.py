"""A fuzzy term expanded over the lookup index's words gives exactly the words the matcher's
own comparison accepts, so a lookup that asks the index for them misses no article."""

from __future__ import annotations

import csv
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchers.rules import lookup as lookup_module
from watchers.rules import shipped_aliases
from watchers.rules.lookup import NOTHING, Vocabulary, index_query, index_terms, regex_runs
from watchers.rules.syntax import parse
from watchers.rules.variants import compare

from ._corpus import EVAL, corpus_articles

ALIASES = shipped_aliases()
THRESHOLDS = (85.0, 70.0, 95.0)


def _pairs() -> list[tuple[str, str]]:
    with (EVAL / "pairs.tsv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh, delimiter="\t") if r and not r[0].startswith("#")]
    return [(r[0], r[1]) for r in rows]


def _expected(vocab: Vocabulary, key: str, threshold: float) -> list[str]:
    return sorted(w for w in vocab.words if compare(key, w, threshold, ALIASES) is not None)


@pytest.fixture(scope="module")
def corpus_vocabulary() -> Vocabulary:
    """Every index word of a few hundred corpus articles, the labelled pairs' tokens folded as
    an article's would be, and the seeds' variants."""
    words: set[str] = set()
    for article in corpus_articles(limit_per_file=8):
        words.update(index_terms(article.title, article.text).split())
    for _, token in _pairs():
        words.update(index_terms(token).split())
    return Vocabulary(sorted(words))


def test_every_labelled_term_expands_to_exactly_what_compare_accepts(
        corpus_vocabulary: Vocabulary) -> None:
    terms = sorted({index_terms(term).split()[0] for term, _ in _pairs()
                    if index_terms(term)})
    assert len(terms) > 100 and len(corpus_vocabulary) > 1000
    accepted = 0
    for key in terms:
        for thr in (85.0,) if len(key) % 2 else (70.0,):
            found = corpus_vocabulary.matching(key, thr, ALIASES)
            assert found == _expected(corpus_vocabulary, key, thr), (key, thr)
            accepted += len(found)
    assert accepted > len(terms)  # the terms find their variants, not only themselves


letters = st.text(alphabet=st.sampled_from(list("kievyjhgchwozdnstaułö")), min_size=2,
                  max_size=9)


@settings(max_examples=150, deadline=None)
@given(words=st.lists(letters, max_size=40), key=letters,
       thr=st.sampled_from(THRESHOLDS))
def test_generated_words_expand_to_exactly_what_compare_accepts(
        words: list[str], key: str, thr: float) -> None:
    vocab = Vocabulary(words)
    assert vocab.matching(key, thr, ALIASES) == _expected(vocab, key, thr)


@pytest.fixture
def screened(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every vocabulary screens its words by their letter counts before rapidfuzz compares
    them (a large one's way: see watchers.rules.lookup._LetterCounts), whatever its size."""
    pytest.importorskip("numpy")
    monkeypatch.setattr(lookup_module, "_SCREEN_FROM", 0)


def test_screened_labelled_terms_expand_to_exactly_what_compare_accepts(
        corpus_vocabulary: Vocabulary, screened: None) -> None:
    """A million words (a year of news, names above all) took 0.3 s a fuzzy term to compare
    with rapidfuzz, word by word; counting letters first turns most away at once. The bound
    misses nothing the comparison would take."""
    vocab = Vocabulary(corpus_vocabulary.words)
    terms = sorted({index_terms(term).split()[0] for term, _ in _pairs()
                    if index_terms(term)})
    for key in terms:
        for thr in (85.0,) if len(key) % 2 else (70.0,):
            assert vocab.matching(key, thr, ALIASES) == _expected(vocab, key, thr), (key, thr)
    assert vocab._counted is not None  # (the screen was taken)


# Any characters: ASCII letters and digits each counted apart, the rest in one slot.
anything = st.text(alphabet=st.sampled_from(list("kievyjhgc0189ўłöкиївß́我")),
                   min_size=1, max_size=12)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # (set once: the same)
@given(first=st.lists(anything, max_size=40), later=st.lists(anything, max_size=1500),
       key=anything, thr=st.sampled_from(THRESHOLDS))
def test_screened_words_of_any_script_expand_to_exactly_what_compare_accepts(
        first: list[str], later: list[str], key: str, thr: float, screened: None) -> None:
    # Counted, then words added (fewer than are counted again: compared uncounted), then
    # counted on.
    vocab = Vocabulary(first)
    assert vocab.matching(key, thr, ALIASES) == _expected(vocab, key, thr)
    vocab.extend(later)
    assert vocab.matching(key, thr, ALIASES) == _expected(vocab, key, thr)
    assert vocab.matching(key + "a", thr, ALIASES) == _expected(vocab, key + "a", thr)


def test_extend_adds_only_new_words() -> None:
    vocab = Vocabulary(["kyiv", "kiev"])
    vocab.extend(["kiev", "kyjiw", "", "kyiv"])
    assert vocab.words == ["kyiv", "kiev", "kyjiw"]
    assert len(vocab) == 3 and "kyjiw" in vocab and "" not in vocab
    assert vocab.matching("kyiv", 85.0, ALIASES) == ["kiev", "kyiv", "kyjiw"]


@settings(max_examples=100, deadline=None)
@given(first=st.lists(letters, max_size=25), later=st.lists(st.lists(letters, max_size=10),
                                                           max_size=3),
       key=letters, thr=st.sampled_from(THRESHOLDS))
def test_an_expansion_kept_and_read_on_equals_one_made_afresh(
        first: list[str], later: list[list[str]], key: str, thr: float) -> None:
    # A term expanded once, then again after words were added (and again with another alias
    # table): each time what a vocabulary of the same words finds afresh.
    vocab = Vocabulary(first)
    assert vocab.matching(key, thr, ALIASES) == _expected(vocab, key, thr)
    for words in later:
        vocab.extend(words)
        assert vocab.matching(key, thr, ALIASES) == _expected(vocab, key, thr)
        assert vocab.matching(key, thr, ALIASES) == Vocabulary(vocab.words).matching(
            key, thr, ALIASES)
    # Another alias table is another expansion, and the first is still kept as it was.
    vocab.extend(["kyiv", "zzz"])
    assert "zzz" not in vocab.matching("kyiv", thr, ALIASES)
    assert "zzz" in vocab.matching("kyiv", thr, shipped_aliases({"kyiv": ["zzz"]}))
    assert vocab.matching("kyiv", thr, ALIASES) == _expected(vocab, "kyiv", thr)


def test_index_query_expands_fuzzy_terms_or_leaves_them_open() -> None:
    vocab = Vocabulary(["kiev", "kyiv", "talks", "troop"])

    def fuzzy(key: str, thr: float) -> list[str]:
        return vocab.matching(key, thr, ALIASES)

    assert index_query(parse("kyiv~"), ALIASES) is None  # no vocabulary: unconstrained
    assert index_query(parse("kyiv~"), ALIASES, fuzzy=fuzzy) == '("kiev" OR "kyiv")'
    assert index_query(parse("kyiv~ AND talks"), ALIASES, fuzzy=fuzzy) == (
        '(("kiev" OR "kyiv") AND "talk")')
    # A fuzzy term no index word matches: an AND with it can match nothing, an OR drops it.
    assert index_query(parse("zzqx~ AND talks"), ALIASES, fuzzy=fuzzy) == NOTHING
    assert index_query(parse("zzqx~ OR talks"), ALIASES, fuzzy=fuzzy) == '"talk"'
    assert index_query(parse("zzqx~"), ALIASES, fuzzy=fuzzy) == NOTHING
    assert index_query(parse('"zzqx~ talks"'), ALIASES, fuzzy=fuzzy) == NOTHING
    # An unknown expansion leaves the term open, as without a vocabulary.
    assert index_query(parse("kyiv~ OR talks"), ALIASES, fuzzy=lambda k, t: None) is None


def test_regex_runs_are_the_longest_ascii_run_of_each_required_literal() -> None:
    assert regex_runs("covid-?19") == [["covid"]]
    assert regex_runs("kiev|kyiv") == [["iev", "yiv"]]  # k(?:iev|yiv) as parsed
    assert regex_runs(r"\d{4} election") == [["election"]]
    # every literal a match needs, each its own set
    assert regex_runs("gold(en)? medal") == [["gold"], ["medal"]]
    assert regex_runs("ab|kyiv") is None  # a literal too short to narrow anything
    assert regex_runs(r"\w+") is None  # no literal at all
    vocab = Vocabulary(["gold", "golden", "medal", "medals", "goldsmith", "x"])

    def holding(pattern: str) -> list[list[str]] | None:
        sets = regex_runs(pattern)
        return None if sets is None else [
            [w for run in runs for w in vocab.containing(run)] for runs in sets]

    assert index_query(parse("/gold(en)? medal/"), ALIASES, regex=holding) == (
        '(("gold" OR "golden" OR "goldsmith") AND ("medal" OR "medals"))')
    assert index_query(parse("/gold(en)? trophy/"), ALIASES, regex=holding) == NOTHING
    assert index_query(parse(r"/\w+/"), ALIASES, regex=holding) is None


def test_containing_reads_words_as_a_case_insensitive_regex_does() -> None:
    vocab = Vocabulary(["kiev", "kıev", "kyiv", "preſident", "x"])
    # ı (dotless i) and ſ (long s) match i and s under IGNORECASE; NFKD already folds most.
    assert vocab.containing("kie") == ["kiev", "kıev"]
    assert vocab.containing("sid") == ["preſident"]
    assert vocab.containing("zzz") == []


def test_source_and_link_terms_leave_the_index_query_open() -> None:
    for query in ("source:bbc", "url:kyiv", "url:/kyiv/", 'source:"bbc news"', "url:kyiv~"):
        assert index_query(parse(query), ALIASES) is None, query
    assert index_query(parse("source:bbc AND troops"), ALIASES) == '"troop"'


def test_a_prefix_expands_to_the_words_it_starts_or_stays_fts5s_own() -> None:
    vocab = Vocabulary(["mobilise", "mobilised", "mobile", "mob", "gov", "zz"])
    assert vocab.starting("mobil") == ["mobile", "mobilise", "mobilised"]
    assert vocab.starting("zzz") == []
    vocab.extend(["mobility"])  # the sorted view follows what was added
    assert vocab.starting("mobili") == ["mobilise", "mobilised", "mobility"]
    q = index_query(parse("mobili*"), ALIASES, prefixed=vocab.starting)
    assert q == '("mobilise" OR "mobilised" OR "mobility")'
    assert index_query(parse("qq* AND mob"), ALIASES, prefixed=vocab.starting) == NOTHING
    assert index_query(parse("mobili*"), ALIASES) == '"mobili"*'
    many = Vocabulary(f"pre{i:04d}" for i in range(1000))
    assert index_query(parse("pre*"), ALIASES, prefixed=many.starting) == '"pre"*'


def test_a_word_exactly_at_the_threshold_is_found() -> None:
    # "putan" is exactly 0.8 like "putin": rapidfuzz turned it away at a cutoff 1e-9 below.
    vocab = Vocabulary(["putan", "putin", "bidan", "trimp", "talks"])
    assert vocab.matching("putin", 80.0, ALIASES) == ["putan", "putin"]
    for key in ("putin", "biden", "trump"):
        assert vocab.matching(key, 80.0, ALIASES) == _expected(vocab, key, 80.0)


def test_declined_names_are_found_in_the_lookup_vocabulary_as_it_grows() -> None:
    """A lookup expands ``kyiv~`` over the index's words: the names declined from it are among
    them, whether sorted into the vocabulary's stems already or added since (a few, looked
    through as they come; many, sorted in)."""
    filler = [f"word{i}" for i in range(1500)]
    vocab = Vocabulary(["kyiv", "kijowie", "kivu", *filler])
    assert vocab.matching("kyiv", 85.0, ALIASES) == _expected(vocab, "kyiv", 85.0)
    assert {"kijowie", "kyiv"} <= set(vocab.matching("kyiv", 85.0, ALIASES))
    vocab.extend(["києва", "kyjeva"])  # a few: looked through
    found = vocab.matching("kyiv", 85.0, ALIASES)
    assert {"києва", "kyjeva"} <= set(found) and "kivu" not in found
    assert found == _expected(vocab, "kyiv", 85.0)
    vocab.extend([*(f"more{i}" for i in range(2000)), "kijevben"])  # many: sorted in
    found = vocab.matching("kyiv", 85.0, ALIASES)
    assert "kijevben" in found and found == _expected(vocab, "kyiv", 85.0)


def test_containing_finds_what_reading_each_word_finds_as_the_words_grow() -> None:
    """The words are searched as one string: a run is found in every word that holds it
    (once, however often it holds it), never across two words, in words added since an
    earlier search, and in a word's screen form (İ lower-cases to two characters)."""
    from watchers.rules.index import _screen_form

    rng = random.Random(5)
    letters = "abcio0\u0131\u0130\u017f\u00e9\u0436\U00020000"
    vocab = Vocabulary()
    for _ in range(6):
        vocab.extend("".join(rng.choice(letters) for _ in range(rng.randint(1, 9)))
                     for _ in range(300))
        for run in ("abc", "cab", "io0", "sis", "iii", "ooo", "bb0", "zzz", "a0i"):
            slow = [w for w in vocab.words
                    if run in w or (not w.isascii() and run in _screen_form(w))]
            assert vocab.containing(run) == slow
    assert vocab.containing("ab") and vocab.containing("ii")
    with pytest.raises(ValueError, match="ASCII letters and digits"):
        vocab.containing("a b")


def test_a_prefix_finds_the_words_added_since_the_words_were_sorted() -> None:
    # The words are sorted again only once those added since are many; until then the later
    # ones are read one by one, and the answer is the same, in order.
    rng = random.Random(11)
    vocab = Vocabulary()
    for step in range(40):
        vocab.extend("".join(rng.choice("abcd") for _ in range(rng.randint(1, 7)))
                     for _ in range(rng.choice((3, 50, 900))))
        for prefix in ("a", "ab", "dca", "bbbb", "x"):
            expected = sorted(w for w in vocab.words if w.startswith(prefix))
            assert vocab.starting(prefix) == expected, (step, prefix)


def test_every_key_of_real_text_is_its_own_key() -> None:
    # What a fuzzy lookup relies on to leave out index words that are only written forms
    # (lookup.own_key): a key, read again as a word, is the same key. Every token of the
    # corpora (news in many languages and scripts), and odd shapes.
    from watchers.rules.lookup import own_key
    from watchers.rules.text import FieldText

    keys: set[str] = set()
    for article in corpus_articles(limit_per_file=400):
        for field in (article.title, article.text):
            keys.update(FieldText.of(field).keys)
    keys.update(FieldText.of("Putin's U.S.-backed cyber-attacks on N.A.T.O. 1,000s "
                             "Oʻzbekiston NATO首脳会議 2024年 ﷺ İstanbul ſtrasse").keys)
    assert len(keys) > 20_000
    assert [k for k in keys if not own_key(k)] == []
    assert not own_key("britains") and own_key("britain")
