"""Look-alike names: spelling rules, the lexicon of known words and names, and their data."""

from __future__ import annotations

from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchers.models import Article
from watchers.rules import Rule, RuleSet, match_query, variants
from watchers.rules.text import key
from watchers.rules.variants import (
    TRANSLIT_SCORE,
    compare,
    is_foreign_word,
    is_known_word,
    readings,
    shipped_aliases,
    translit_key,
)

from ._corpus import REPO, corpus_articles


def _pairs() -> list[tuple[str, str, str]]:
    rows = []
    for line in (REPO / "tests" / "data" / "eval" / "pairs.tsv").read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            term, token, label = line.split("\t")[:3]
            rows.append((term, token, label))
    return rows


@pytest.mark.parametrize(
    "words",
    [
        ["Donetsk", "Donezk", "Donieck", "Donec'k"],
        ["Kharkiv", "Charkiw", "Charków"],
        ["Zaporizhzhia", "Saporischschja", "Zaporijia"],
        ["Yushchenko", "Juschtschenko", "Juszczenko"],
    ],
)
def test_spellings_of_one_name_share_a_reading(words: list[str]) -> None:
    assert frozenset.intersection(*(readings(key(w)) for w in words)), words


def test_readings_keep_vowels_apart() -> None:
    # A vowel is not a transliteration difference: Seria is not Syria, nor Putten Putin.
    assert readings("seria").isdisjoint(readings("syria"))
    assert readings("putten").isdisjoint(readings("putin"))


def test_the_lexicon_knows_rare_words_and_names_but_not_typos() -> None:
    for word in ("kivu", "gremlin", "zielinski", "putten", "missive", "boarder"):
        assert is_known_word(word), word
    for typo in ("kremiln", "goverment", "zelesnky", "sanctoins", "donezk", "charkiw"):
        assert not is_known_word(typo), typo


@pytest.mark.parametrize(("term", "token", "taken"), [
    ("israel", "isreal", True),    # a family name, but two letters swapped in a common word
    ("putin", "putian", False),    # a city: one letter more is another name as often as a slip
    ("berlin", "erlin", False),
    ("missile", "missive", False),  # a word English uses in its own right
])
def test_a_rare_name_two_swapped_letters_from_a_common_term_is_its_typo(
        term: str, token: str, taken: bool) -> None:
    assert is_known_word(token)
    assert (compare(term, token, 85, shipped_aliases()) is not None) is taken


def test_lexicon_file_is_keys_then_names() -> None:
    text = resources.files("watchers.rules").joinpath("data/lexicon.txt").read_text("utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    words, sep, names = body.partition("\n[names]\n")
    assert sep, "lexicon.txt lacks its [names] line"
    word_list, name_list = words.split(), names.split()
    assert len(word_list) > 10_000 and len(name_list) > 10_000
    assert not set(word_list) & set(name_list)
    for k in word_list[::997] + name_list[::997]:
        assert k == key(k) and k.isalpha(), k


def test_a_known_name_is_refused_unless_an_alias_says_it_is_the_same() -> None:
    article = Article(title="Fighting near Kivu")
    assert match_query("kyiv~", article) is None
    found = match_query("kyiv~", article, aliases={"kyiv": ["kivu"]})
    assert found is not None and [h.text for h in found.hits] == ["Kivu"]


def test_other_languages_spellings_score_as_transliterations() -> None:
    # without the shipped tables (whose cities' names now list the German Donezk as an alias)
    verdict = compare("donetsk", "donezk", 85, None)
    assert verdict is not None and verdict.score == TRANSLIT_SCORE
    assert compare("donetsk", "donezk", TRANSLIT_SCORE + 1, None) is None
    assert compare("donetsk", "donezk", 100, shipped_aliases()) == ("alias", 100.0)


def test_short_terms_take_vowel_changes_and_swaps_but_no_extra_consonant() -> None:
    aliases = shipped_aliases()
    assert compare("nato", "natto", 85, aliases) is None
    assert compare("kyiv", "kiew", 85, aliases) is not None
    assert compare("kyiv", "kyvi", 85, aliases) is not None  # two letters swapped
    assert compare("kyiv", "kyiw", 85, aliases) is not None


def test_blocking_key_joins_spellings() -> None:
    assert translit_key("donezk") == translit_key("donetsk")
    assert translit_key("tschernihiw") == translit_key("chernihiv")
    assert translit_key("kiew") == translit_key("kyiv")


def test_compiled_rule_set_finds_every_pair_the_naive_loop_finds() -> None:
    # compare() only accepts pairs that the index's candidate lookup can find, so the
    # compiled matcher agrees with the naive one on every labelled pair.
    pairs = _pairs()
    terms = sorted({term for term, _, _ in pairs})
    rules = RuleSet([Rule(term, f"{term}~") for term in terms])
    for term, token, _ in pairs:
        article = Article(title=f"news {token} today")
        compiled = {m.rule for m in rules.match(article)}
        assert compiled == {m.rule for m in rules.match_naive(article)}, (term, token)


def _translit_reference(word: str) -> str:
    """translit_key as first written: one regex of every class, then doubled letters."""
    import re

    from watchers.rules import variants as v

    w = word.translate(v._CYR_TABLE).replace("ł", "l").replace("'", "")
    w = v._COARSE.sub(lambda m: v._COARSE_CLASS[m.group()], w)
    if w.endswith("ov") and len(w) > 4:
        w = w[:-2] + "iv"
    return re.sub(r"(.)\1+", r"\1", w)


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("tschzrkhouagcjyezwnv'łжчшщхцкиївє ØøßÅ")),
               max_size=14))
def test_translit_key_equals_its_reference(word: str) -> None:
    assert translit_key.__wrapped__(word) == _translit_reference(word)


ascii_words = (st.text(alphabet=st.sampled_from(list("tschzrkhouagcjyezwvnib'\n -.")),
                       max_size=20)
               | st.text(alphabet=st.characters(max_codepoint=127), max_size=200))


@settings(max_examples=3000, deadline=None)
@given(ascii_words)
def test_the_c_translit_key_of_an_ascii_word_is_the_python_paths(word: str) -> None:
    """Words over 64 letters too (the C pass's buffers are then on the heap)."""
    from watchers.rules import text as text_module

    if text_module._translit is None:
        pytest.skip("watchers.rules._ctext is not built")
    assert text_module._translit(word) == variants._translit_key(word)
    assert variants._translit_key(word) == _translit_reference(word)


def test_the_c_translit_key_leaves_other_words_to_the_python_path() -> None:
    from watchers.rules import text as text_module

    if text_module._translit is None:
        pytest.skip("watchers.rules._ctext is not built")
    assert text_module._translit("київ") is None and text_module._translit("łódź") is None
    assert translit_key("київ") == translit_key("kyiv") == "kiv"


def test_translit_key_equals_its_reference_on_corpus_words() -> None:
    from watchers.rules.lookup import index_terms

    seen = 0
    for article in corpus_articles(limit_per_file=60):
        for word in index_terms(article.title, article.text).split():
            assert translit_key.__wrapped__(word) == _translit_reference(word), word
            seen += 1
    assert seen > 1000


@pytest.mark.parametrize(("query", "token"), [
    ("putin", "Putain"), ("trump", "Trumpf"), ("romania", "Romagna"), ("macron", "Macaron"),
    ("austria", "Asturias"), ("armenia", "Armonia"), ("atlanta", "Atalanta"),
])
def test_a_common_word_of_a_language_that_writes_the_term_is_not_its_typo(
        query: str, token: str) -> None:
    # Each is within typo tolerance of the term and no English list knows it: French writes
    # "Putin" and says "putain", German writes "Trump" and says "Trumpf".
    assert is_foreign_word(key(query), key(token))
    assert variants.FOREIGN_WORD_GUARD
    assert match_query(f"{query}~", Article(title=f"News from {token} today")) is None


@pytest.mark.parametrize(("query", "token"), [
    # Taken by the typo step: these languages' own names, common there, for a thing whose
    # English name they do not write.
    ("brittany", "Bretagne"), ("parliament", "Parlament"), ("catalonia", "Catalunya"),
    ("siberia", "Sibirien"), ("mercosur", "Mercosul"),
    # Taken by the tables and the transliteration rules before the typo step is reached.
    ("kyiv", "Kiew"), ("tehran", "Teheran"), ("gorbachev", "Gorbatschow"),
    ("turkey", "Türkiye"), ("germany", "Deutschland"),
    # Plain typos stay typos.
    ("ukraine", "Ukriane"), ("venezuela", "Venezula"), ("kremlin", "Kremlim"),
    # French: a Slavic u read ou, a mute e after the name.
    ("putin", "Poutine"),
])
def test_other_languages_names_and_typos_stay_variants(query: str, token: str) -> None:
    m = match_query(f"{query}~", Article(title=f"News from {token} today"))
    assert m is not None and [key(h.text) for h in m.hits] == [key(token)]


def test_foreign_word_table_needs_the_language_to_write_the_term() -> None:
    # "bretagne" is common French, but French does not write "brittany": no guard.
    assert not is_foreign_word("brittany", "bretagne")
    # German writes "america" too, but "amerika" only spells it with German letters; Polish
    # declines the names it writes.
    assert not is_foreign_word("america", "amerika")
    assert not is_foreign_word("putin", "putina")
    assert not is_foreign_word("obama", "obamy")
    # French reads ou for a Slavic u, and writes a mute e after the name: "Poutine" is Putin
    # there, however common (it is also a dish).
    assert not is_foreign_word("putin", "poutine")
    assert not is_foreign_word("stalin", "staline")
    # Short terms and unlisted keys are never guarded.
    assert not is_foreign_word("zzqqxx", "putain")
    assert not is_foreign_word("putin", "zzqqxx")


def test_a_key_too_long_for_two_common_words_is_not_cut() -> None:
    """Every cut of a longer key was tried (3 s for a 20,000-letter word of a query); no
    common word is longer than ``SPLIT_MAX_LETTERS``, so none of those cuts could be kept."""
    import random

    from watchers.rules.variants import SPLIT_MAX_LETTERS, SPLIT_MIN_ZIPF, _zipf, compound_splits

    words = ["war", "ship", "cyber", "attack", "government", "responsibilities", "a", "the"]
    rng = random.Random(5)
    for _ in range(200):
        key = ""
        while len(key) <= 2 * SPLIT_MAX_LETTERS:
            key += rng.choice(words)
        every_cut = [i for i in range(3, len(key) - 2)
                     if min(_zipf(key[:i]), _zipf(key[i:])) >= SPLIT_MIN_ZIPF]
        assert every_cut == [] and compound_splits(key) == ()
    assert compound_splits("warship") == (("war", "ship"),)


def test_a_number_is_no_spelling_of_a_term_with_letters() -> None:
    """``w1400~`` took "14,000" (85.7) and ``x14000~`` did too: a fuzzy term with letters
    takes no bare number, and a number's fuzzy term no word."""
    from watchers.models import Article
    from watchers.rules.matcher import match_query

    article = Article(title="x", text="They counted 14,000 troops and W1400 and w1410 tanks")
    found = match_query("w1400~", article)
    assert found is not None and [h.text for h in found.hits] == ["W1400", "w1410"]
    assert match_query("x14000~", article) is None
    assert compare("w1400", "14000", 80, None) is None
    assert compare("14000", "w1400", 80, None) is None
