"""A fuzzy term takes a country's name in other languages (``iraq~`` finds "Irak" in a German
wire story, ``syria~`` "Syrien"); a plain word still matches as written. The shipped table
(``watchers/rules/data/exonyms.toml``, built from ISO 3166-1's translations by
``bench/build_exonyms.py``) keeps no name that could mean something else."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pytest

from watchers.models import Article
from watchers.rules import Rule, RuleSet, match_query, shipped_aliases
from watchers.rules.lookup import index_terms
from watchers.rules.text import key
from watchers.rules.variants import _load_lexicon, is_common_word
from watchers.search import search
from watchers.store import SqliteStore

GERMAN = Article(source="dw", title="Irak und Syrien: Gespräche in Katar",
                 text="Die Regierung in Bagdad sprach mit Vertretern aus Deutschland und Ruanda.")


def _table() -> dict[str, list[str]]:
    text = resources.files("watchers.rules").joinpath("data/exonyms.toml").read_text("utf-8")
    table: dict[str, list[str]] = tomllib.loads(text)["aliases"]
    return table


@pytest.mark.parametrize(("query", "word"), [
    ("iraq~", "Irak"), ("syria~", "Syrien"), ("germany~", "Deutschland"),
    ("rwanda~", "Ruanda"), ("iraq~ AND germany~", "Irak")])
def test_a_fuzzy_term_takes_another_languages_name_of_its_country(query: str,
                                                                  word: str) -> None:
    m = match_query(query, GERMAN)
    assert m is not None and word in {h.text for h in m.hits}
    assert {h.kind for h in m.hits if h.text == word} == {"alias"}


@pytest.mark.parametrize("query", ["iraq", "syria", "germany", '"iraq and syria"'])
def test_a_plain_word_is_matched_as_written(query: str) -> None:
    assert match_query(query, GERMAN) is None


def test_the_compiled_rule_set_finds_what_the_evaluator_finds() -> None:
    queries = ["iraq~", "syria~", "germany~ AND rwanda~", "iraq", "qatar~", "lebanon~"]
    rules = RuleSet([Rule(f"r{i}", q) for i, q in enumerate(queries)])
    compiled = {(m.rule, h.text) for m in rules.match(GERMAN) for h in m.hits}
    naive = {(f"r{i}", h.text) for i, q in enumerate(queries)
             if (m := match_query(q, GERMAN)) is not None for h in m.hits}
    assert compiled == naive
    assert ("r0", "Irak") in compiled and not any(r == "r3" for r, _ in compiled)


async def test_a_fuzzy_lookup_finds_a_stored_article_by_another_languages_name(
        tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        english = Article(source="bbc", title="Talks in Iraq", text="Iraq talks go on.")
        for a in (GERMAN, english):
            await store.record(a, [], [], terms=index_terms(a.title, a.text))
        assert {h.article.source for h in await search(store, "iraq~")} == {"dw", "bbc"}
        assert {h.article.source for h in await search(store, "iraq")} == {"bbc"}


def test_the_table_keeps_no_name_that_could_mean_something_else() -> None:
    table = _table()
    lexicon_names = _load_lexicon()[1]
    assert len(table) >= 150
    seen: dict[str, str] = {}
    for head, others in table.items():
        for name in (head, *others):
            assert key(name) == name and " " not in name, name  # one word, stored as its key
            assert seen.setdefault(name, head) == head, f"{name} names two countries"
        for name in others:
            # Not common in English text, not a name in the lexicon, not a city's name; a
            # rare word the lexicon lists may be kept (Katar, a dagger; Polska).
            assert not is_common_word(name) and name not in lexicon_names, name
            assert name not in {"brasilia"}, name
    # the one-word names English uses for other things are left out: German "Island" for
    # Iceland, French "Maurice" for Mauritius, Polish "Indie" for India, Polish "Polonia" (a
    # given name), Finnish "Brasilia" (Brazil's capital)
    for head, word in (("iceland", "island"), ("mauritius", "maurice"), ("india", "indie"),
                       ("poland", "polonia"), ("brazil", "brasilia")):
        assert word not in table[head]
        assert match_query(f"{head}~", Article(title=f"the {word.title()} today")) is None


@pytest.mark.parametrize(("query", "word"), [
    ("russia~", "Russland"), ("russia~", "Rosja"), ("qatar~", "Katar"), ("poland~", "Polska"),
    ("morocco~", "Maroc"), ("cuba~", "Kuba"), ("belarus~", "Białoruś")])
def test_the_short_names_people_write_are_taken_as_well_as_the_official_ones(
        query: str, word: str) -> None:
    """ISO 3166's names are the official ones (Russische Föderation); the CLDR's are the
    short ones a wire story uses (Russland, Rosja), and a rare word of the same spelling does
    not keep a country's name out (Katar)."""
    m = match_query(query, Article(title=f"Nachrichten: {word} heute"))
    assert m is not None and {h.kind for h in m.hits} == {"alias"}


def test_no_two_countries_share_a_fuzzy_group() -> None:
    aliases = shipped_aliases()
    heads = set(_table())
    for head in heads:
        assert aliases.fuzzy_of(head) & heads == {head}, head


def test_a_config_alias_joins_the_countrys_group() -> None:
    aliases = shipped_aliases({"iraq": ["eraq"]})
    assert {"irak", "eraq", "iraq"} <= aliases.fuzzy_of("eraq")
    assert "irak" not in aliases.of("iraq")  # plain words: the shipped and config table only
