"""A fuzzy term takes a city's name in other languages and eras (``vienna~`` finds "Wien",
``tbilisi~`` "Tiflis", ``aleppo~`` "Halab"); a plain word still matches as written. The shipped
table (``watchers/rules/data/cities.json``, built from GeoNames' alternate names by
``bench/build_exonyms.py``) keeps no name that could mean something else."""

from __future__ import annotations

import json
import random
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from watchers.models import Article
from watchers.rules import Rule, RuleSet, match_query, shipped_aliases
from watchers.rules import variants as variants_module
from watchers.rules.lookup import index_terms
from watchers.rules.text import key
from watchers.rules.variants import (
    COMMON_ZIPF,
    Aliases,
    VariantLines,
    _join,
    _load_lexicon,
    _shipped_tables,
    _shipped_variants,
    _variant_files,
    _zipf,
    is_known_word,
)
from watchers.search import search
from watchers.store import SqliteStore

GERMAN = Article(source="dw", title="Gespräche in Wien und München",
                 text="Die Delegation reiste weiter nach Tiflis, Genf und Athen.")


def _cities() -> dict[str, list[str]]:
    text = resources.files("watchers.rules").joinpath("data/cities.json").read_text("utf-8")
    table: dict[str, list[str]] = json.loads(text)["aliases"]
    return table


@pytest.mark.parametrize(("query", "word"), [
    ("vienna~", "Wien"), ("munich~", "München"), ("tbilisi~", "Tiflis"), ("geneva~", "Genf"),
    ("vienna~ AND tbilisi~", "Tiflis"), ("athens~", "Athen")])
def test_a_fuzzy_term_takes_another_languages_name_of_its_city(query: str, word: str) -> None:
    m = match_query(query, GERMAN)
    assert m is not None and word in {h.text for h in m.hits}
    assert {h.kind for h in m.hits if h.text == word} == {"alias"}


@pytest.mark.parametrize(("term", "word"), [
    ("cologne", "Köln"), ("koln", "Cologne"), ("beijing", "Peking"), ("tehran", "Teheran"),
    ("nanjing", "Nanking"), ("seville", "Sevilla"), ("venice", "Venedig")])
def test_a_citys_english_or_former_name_joins_its_group(term: str, word: str) -> None:
    """English and former names that English text also knows (so the word lists hold them)
    are the city's when long and in use: GeoNames names the city Köln with Cologne among its
    alternates, and without it ``cologne~`` found no other name. Venice (51,000 people)
    is in since the table takes cities of 50,000 or more."""
    m = match_query(f"{term}~", Article(title=word))
    assert m is not None and {h.kind for h in m.hits} == {"alias"}


@pytest.mark.parametrize("query", ["vienna", "munich", "tbilisi", '"vienna and munich"'])
def test_a_plain_word_is_matched_as_written(query: str) -> None:
    assert match_query(query, GERMAN) is None


@pytest.mark.parametrize(("term", "word"), [
    ("seoul", "Soul"), ("lima", "Lime"), ("delhi", "Deli"), ("delhi", "delis"),
    ("ankara", "Angara"), ("dnipro", "Dnipropetrovsk"), ("london", "Londonderry"),
    ("beijing", "Pekin"), ("vienna", "Bienne")])
def test_a_name_that_means_something_else_is_not_taken(term: str, word: str) -> None:
    """A word (Soul, Lime, Deli), another place (Angara, a river; Pekin, Illinois; Bienne,
    Biel's French name) or a longer name that begins with the city's (Dnipropetrovsk names
    Dnipro's region) is not the city."""
    assert key(word) not in shipped_aliases().fuzzy_of(term)
    assert match_query(f"{term}~", Article(title=f"news from {word} today")) is None


def test_the_compiled_rule_set_finds_what_the_evaluator_finds() -> None:
    queries = ["vienna~", "munich~ AND geneva~", "tbilisi", "tbilisi~", "paris~"]
    rules = RuleSet([Rule(f"r{i}", q) for i, q in enumerate(queries)])
    compiled = {(m.rule, h.text) for m in rules.match(GERMAN) for h in m.hits}
    naive = {(f"r{i}", h.text) for i, q in enumerate(queries)
             if (m := match_query(q, GERMAN)) is not None for h in m.hits}
    assert compiled == naive
    assert ("r0", "Wien") in compiled and ("r3", "Tiflis") in compiled
    assert not any(r in ("r2", "r4") for r, _ in compiled)


async def test_a_fuzzy_lookup_finds_a_stored_article_by_another_languages_name(
        tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        english = Article(source="bbc", title="Talks in Vienna", text="Vienna talks go on.")
        for a in (GERMAN, english):
            await store.record(a, [], [], terms=index_terms(a.title, a.text))
        assert {h.article.source for h in await search(store, "vienna~")} == {"dw", "bbc"}
        assert {h.article.source for h in await search(store, "vienna")} == {"bbc"}


def test_the_table_keeps_no_name_that_could_mean_something_else() -> None:
    table = _cities()
    assert len(table) >= 3000
    seen: dict[str, str] = {}
    for head, others in table.items():
        for name in (head, *others):
            assert key(name) == name and " " not in name, name  # one word, stored as its key
            assert seen.setdefault(name, head) == head, f"{name} names two cities"
        names = {head, *others}
        for name in others:
            if name + "s" in names:  # Athen: common only as its city's own Athens
                words, people = _load_lexicon()
                assert _zipf(name) < COMMON_ZIPF and name not in words and name not in people, name
            elif is_known_word(name):
                # Only a long, not very common name English knows as the city's (Peking,
                # Cologne, Teheran: build_exonyms' NAME_MIN_LETTERS and NAME_MAX_ZIPF).
                assert len(name) >= 6 and _zipf(name) < 3.8, name
            assert not (name.startswith(head) and len(name) > len(head) + 2), name


def test_no_two_cities_or_countries_share_a_fuzzy_group() -> None:
    aliases = shipped_aliases()
    heads = set(_cities())
    for head in heads:
        assert aliases.fuzzy_of(head) & heads == {head}, head


def test_a_fuzzy_group_is_worked_out_as_the_eager_join_would() -> None:
    """fuzzy_of joins a key's groups on first use; the answer equals joining every group at
    once, on random tables whose groups overlap."""
    rng = random.Random(5)
    words = [f"w{i}" for i in range(60)]
    for _ in range(50):
        table = {rng.choice(words): rng.sample(words, rng.randint(1, 3)) for _ in range(8)}
        variants = {rng.choice(words): rng.sample(words, rng.randint(1, 3)) for _ in range(12)}
        aliases = Aliases(table)
        aliases.add_variants(variants, keyed=True)
        eager = {k: g for k, g in ((k, aliases.of(k)) for k in words) if g}
        for head, others in variants.items():
            _join(eager, {head, *others})
        for k in words:
            assert aliases.fuzzy_of(k) == eager.get(k, frozenset()), k
        aliases.update({words[0]: [words[1]]})  # a change starts the answers afresh
        assert words[1] in aliases.fuzzy_of(words[0])


def test_variant_tables_added_for_later_are_read_once_when_a_fuzzy_term_needs_them() -> None:
    calls = []

    def load() -> dict[str, list[str]]:
        calls.append(1)
        return {"wien": ["vienna", "viena"]}

    later = Aliases({"kyiv": ["kiev"]})
    later.add_variants_later(load)
    assert later.of("kyiv") == {"kyiv", "kiev"} and calls == []  # plain words: not read
    assert later.fuzzy_of("vienna") == {"wien", "vienna", "viena"} and calls == [1]
    assert later.fuzzy_of("viena") == {"wien", "vienna", "viena"} and calls == [1]
    now = Aliases({"kyiv": ["kiev"]}, variants={"wien": ["vienna", "viena"]})
    other = Aliases({"kyiv": ["kiev"]})
    other.add_variants_later(load)
    assert other == now and hash(other) == hash(now) and calls == [1, 1]
    assert shipped_aliases().fuzzy_of("munich") >= {"munchen", "monachium"}


def _eager_shipped() -> Aliases:
    """The shipped tables as every group read and joined at once (the dict path)."""
    table, distinct = _shipped_tables()
    eager = Aliases(table, distinct)
    eager.add_variants(_shipped_variants(), keyed=True)
    return eager


def test_every_line_of_the_shipped_variant_files_is_read_as_its_loader_reads_it() -> None:
    """A fuzzy term's first words are searched in the files' text, a group a line: each group
    the JSON and TOML loaders read is one line that reads as the same words, and no other line
    reads as a group (a group spread over two lines, or a name with an escape, would be
    missed by the search)."""
    exonyms_text, cities_text = _variant_files()
    for text, table in ((exonyms_text, tomllib.loads(exonyms_text)["aliases"]),
                        (cities_text, json.loads(cities_text)["aliases"])):
        groups = [g for g in map(VariantLines.group, text.splitlines()) if g is not None]
        assert groups == [frozenset({head, *others}) for head, others in table.items()]
        assert "\\" not in text


def test_searching_the_shipped_text_finds_what_joining_every_group_finds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On words of every kind the tables hold (heads, names in other scripts, names in two
    groups) and on words they do not, a term's fuzzy names found by searching the text equal
    those found by reading and joining every group; past LINE_SEARCHES searches it reads them
    all, and the answers stay the same."""
    eager = _eager_shipped()
    variants = _shipped_variants()
    words = sorted({w for head, names in variants.items() for w in (head, *names)})
    counts: dict[str, int] = {}
    for head, names in variants.items():
        for w in {head, *names}:
            counts[w] = counts.get(w, 0) + 1
    twice = [w for w, n in counts.items() if n > 1]
    rng = random.Random(11)
    sample = [*rng.sample(words, 150), *rng.sample(twice, min(40, len(twice))),
              "kyiv", "kiev", "київ", "munich", "munchen", "luhansk", "donbas", "wien",
              "georgia", "tbilisi", "zzqqxx", "the"]
    for limit in (10_000, 25):
        monkeypatch.setattr(variants_module, "LINE_SEARCHES", limit)
        table, distinct = _shipped_tables()
        lazy = Aliases(table, distinct)
        lines = VariantLines(_variant_files())

        def searched(lines: VariantLines = lines) -> VariantLines:
            return lines

        lazy.add_variants_later(_shipped_variants, lines=searched)
        for w in sample:
            assert lazy.fuzzy_of(w) == eager.fuzzy_of(w), (limit, w)
        if limit == 25:
            assert lazy._lines is None  # read whole once past the limit
        else:
            assert lazy._lines is not None and lines.searches > len(sample)
