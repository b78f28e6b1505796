"""Underscores: Markdown writes emphasis with them (``_Russian Offensive Campaign_``,
``__NATO__``), so at a word's edges they are no part of the word; between letters or digits
(``snake_case``) they join them into one word, as before."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchers.errors import QuerySyntaxError
from watchers.models import Article
from watchers.rules import RuleSet, Term, match_query, parse
from watchers.rules.lookup import lookup_words
from watchers.rules.text import FieldText, query_words

MARKDOWN = "_Russian Offensive Campaign_ and __NATO__ and *Kyiv*"


def _highlights(query: str, text: str) -> list[tuple[int, int, str]]:
    m = match_query(query, Article(title="t", text=text))
    assert m is not None, query
    return [(h.start, h.end, h.text) for h in m.highlights if h.field == "text"]


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("russian", (1, 8, "Russian")),
        ("campaign", (19, 27, "Campaign")),
        ("nato", (35, 39, "NATO")),
        ("kyiv", (47, 51, "Kyiv")),
        ('"russian offensive campaign"', (1, 27, "Russian Offensive Campaign")),
        ("_russian_", (1, 8, "Russian")),
        ("__nato__", (35, 39, "NATO")),
        ("russia*", (1, 8, "Russian")),
        ("natoo~", (35, 39, "NATO")),
    ],
)
def test_a_word_in_markdown_emphasis_is_found_and_highlighted_without_its_underscores(
        query: str, found: tuple[int, int, str]) -> None:
    assert _highlights(query, MARKDOWN) == [found]


def test_a_rule_set_alerts_on_a_word_in_underscores() -> None:
    rules = RuleSet.from_queries({"russia": "russian", "nato": "nato AND kyiv"})
    matches = rules.match(Article(title="Briefing", text=MARKDOWN))
    assert sorted(m.rule for m in matches) == ["nato", "russia"]


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("snake_case", ["snake_case"]),
        ("_snake_case_", ["snake_case"]),
        ("a__b and __a__b__", ["a__b", "and", "a__b"]),
        ("file_name.txt", ["file_name", "txt"]),
        ("__init__.py", ["init", "py"]),
        ("_U.S._ and __U.K.__", ["us", "and", "uk"]),
        ("_cyber-attacks_", ["cyberattack", "cyber", "attack"]),
        ("_Russia's_ __100,000__ _1.5_", ["russia", "100000", "1.5"]),
        ("word_-next and word-_next", ["word", "next", "and", "word", "next"]),
        ("___ _ __", []),
    ],
)
def test_underscores_join_letters_but_are_no_part_of_a_word_at_its_edges(
        text: str, keys: list[str]) -> None:
    ft = FieldText.of(text)
    assert ft.keys == keys
    for start, end in zip(ft.starts, ft.ends, strict=True):
        assert not text[start:end].startswith("_") and not text[start:end].endswith("_")


def test_an_underscore_inside_a_word_keeps_it_one_word() -> None:
    text = "the config_file setting"
    assert match_query("config_file", Article(title="t", text=text)) is not None
    assert match_query("_config_file_", Article(title="t", text=text)) is not None
    assert match_query("config", Article(title="t", text=text)) is None
    assert match_query("file", Article(title="t", text=text)) is None


def test_a_query_word_folds_its_underscores_as_text_does() -> None:
    assert query_words("_Russian_") == query_words("russian") == [("russian", "russian")]
    assert query_words("__NATO__") == [("nato", "nato")]
    assert query_words("snake_case") == [("snake_case", "snake_case")]
    fuzzy, prefix = parse("_kyiv_~"), parse("__mobili*")
    assert isinstance(fuzzy, Term) and (fuzzy.key, fuzzy.kind) == ("kyiv", "fuzzy")
    assert isinstance(prefix, Term) and (prefix.norm, prefix.kind) == ("mobili", "prefix")


@pytest.mark.parametrize("query", ["_", "___", "title:__"])
def test_a_query_word_of_underscores_alone_is_refused(query: str) -> None:
    with pytest.raises(QuerySyntaxError, match="expected a word with letters or digits"):
        parse(query)


def test_a_regex_still_reads_the_underscores_of_the_raw_text() -> None:
    assert _highlights("/_russian/", MARKDOWN) == [(0, 8, "_Russian")]
    assert match_query("/_kyiv/", Article(title="t", text=MARKDOWN)) is None


def test_the_lookup_index_holds_the_word_without_its_underscores() -> None:
    words = lookup_words("t", MARKDOWN)
    assert {"russian", "nato", "campaign", "kyiv"} <= words
    assert not any(w.startswith("_") or w.endswith("_") for w in words)


def test_a_link_and_a_source_name_in_underscores_are_found_by_the_plain_word() -> None:
    article = Article(title="t", text="x", source="_wire_",
                      url="https://example.org/__drafts__/a_b_c")
    assert match_query("source:wire", article) is not None
    assert match_query("url:drafts", article) is not None
    assert match_query("url:a_b_c", article) is not None


# Letters, digits, underscores heavy, the joiners and separators the word pattern treats
# specially, Markdown's other emphasis mark, a combining accent and a space.
_ALPHABET = list("aZé9_____*'-.,\u0301 ")
_texts = st.text(alphabet=st.sampled_from(_ALPHABET), max_size=40)


def _lists(text: str) -> tuple[object, ...]:
    ft = FieldText.of(text)
    return (ft.keys, ft.norms, ft.starts, ft.ends, list(ft.pos), list(ft.last))


@settings(max_examples=500, deadline=None)
@given(_texts, st.sampled_from(["_", "__", "*", "**"]))
def test_emphasis_marks_around_a_text_tokenise_as_spaces_do(text: str, mark: str) -> None:
    assert _lists(mark + text + mark) == _lists(" " * len(mark) + text + " " * len(mark))


def test_an_alias_word_in_underscores_is_the_plain_word() -> None:
    rules = RuleSet.from_queries({"k": "zorblax"}, aliases={"zorblax": ["_glorp_"]})
    assert [m.rule for m in rules.match(Article(title="t", text="seen in Glorp today"))] == ["k"]
    with pytest.raises(ValueError, match="an alias must be a single word, not '__'"):
        RuleSet.from_queries({"k": "zorblax"}, aliases={"zorblax": ["__"]})
