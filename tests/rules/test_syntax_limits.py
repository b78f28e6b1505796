"""Malformed, oversized and Lucene-only queries: each is a QuerySyntaxError that names the
construct, says what to write instead and points at the column; valid neighbours stay valid."""

from __future__ import annotations

import pytest

from watchers.rules import And, Near, Phrase, QuerySyntaxError, Regex, Term, parse
from watchers.rules.syntax import (
    MAX_DISTANCE,
    MAX_NESTING,
    MAX_QUERY_LENGTH,
    MAX_REGEX_SIZE,
    MAX_SLOP,
)

DEEP = MAX_NESTING + 1
SUPPORTED = "expected one of title, text, source, url"


def _nth(query: str, needle: str, n: int) -> int:
    """The 1-based column of the n-th (1-based) occurrence of needle."""
    at = -1
    for _ in range(n):
        at = query.index(needle, at + 1)
    return at + 1


NEAR_CHAIN = " NEAR/1 ".join(["a"] * (DEEP + 1))
# Each "a -(b OR " adds three levels (AND, NOT, OR) and one parenthesis: the tree passes the
# limit long before the parentheses do. The 22nd repetition's AND is level 64, so its first
# child, the word "a", is the first node at level 65.
NOT_CHAIN = "a -(b OR " * 30 + "c" + ")" * 30

CASES: list[tuple[str, str, int, tuple[str, ...]]] = [
    # (id, query, column, fragments the message must contain)
    ("200 parentheses", "(" * 200 + "a" + ")" * 200, DEEP, ("nesting deeper than 64 levels",)),
    ("65 parentheses", "(" * DEEP + "a" + ")" * DEEP, DEEP, ("nesting deeper than 64 levels",)),
    ("NEAR chain", NEAR_CHAIN, _nth(NEAR_CHAIN, "NEAR", DEEP), ("nesting deeper than 64",)),
    ("deep tree", NOT_CHAIN, _nth(NOT_CHAIN, "a", 22), ("nesting deeper than 64 levels",)),
    ("superscript distance", "a NEAR/² b", 3, ("NEAR/²", "whole number from 1 to 100")),
    ("huge distance", "a NEAR/" + "9" * 5000 + " b", 3, ("from 1 to 100", "use AND")),
    ("distance 101", f"a NEAR/{MAX_DISTANCE + 1} b", 3, ("from 1 to 100", "use AND")),
    ("distance 0", "a NEAR/0 b", 3, ("whole number from 1 to 100", "'NEAR/0'")),
    ("huge similarity", "kyiv~" + "9" * 5000, 6, ("similarity from 50 to 100",)),
    ("superscript similarity", "kyiv~²", 6, ("expected a number after '~'",)),
    ("huge slop", '"a b"~' + "9" * 5000, 7, ("at most 100 extra positions", "use AND")),
    ("slop 101", f'"a b"~{MAX_SLOP + 1}', 7, ("at most 100 extra positions", "101")),
    ("long query", "a " * (MAX_QUERY_LENGTH // 2 + 1), MAX_QUERY_LENGTH + 1,
     ("longer than 20000 characters", "several rules")),
    ("regex groups", "/" + "(" * 100 + "a" + ")" * 100 + "/", DEEP + 1,
     ("regular expression groups nested deeper than 64",)),
    ("regex nested repeats", "/(?:a{1000}){1000}/", 13, ("repeat count '{1000}'", "too large")),
    ("regex huge count", "/a{" + "9" * 5000 + "}/", 3, ("repeat count", "too large")),
    ("regex count", f"/a{{{MAX_REGEX_SIZE + 1}}}/", 3, ("repeat count", "smaller counts")),
    ("regex length", "/" + "ab" * MAX_REGEX_SIZE + "/", 1, ("regular expression too large",)),
    ("regex recursion", "/(?R)?a/", 2, ("recursive patterns", "(?R)")),
    ("regex subroutine", r"/(?<x>a)\g<x>/", 9, ("subroutine calls", "\\g<name>")),
    ("regex does not compile", "/(troops/", 1, ("bad regular expression", "valid pattern")),
    ("regex unclosed class", "/[a-z/", 1, ("bad regular expression",)),
    ("bang", "!x", 1, ("'!'", "NOT x or -x")),
    ("bang after a term", "talks !football", 7, ("'!'", "NOT x or -x")),
    ("bang inside a word", "a!b", 2, ("'!'", "NOT x or -x")),
    ("lone bang", "a ! b", 3, ("'!'", "NOT x or -x")),
    ("boost", "x^2", 2, ("boosts", "'^2'", "severity")),
    ("decimal boost", "russia^0.5 oil", 7, ("boosts", "'^0.5'", "severity")),
    ("phrase boost", '"a b"^2', 6, ("boosts", "'^2'")),
    ("group boost", "(a OR b)^3", 9, ("boosts", "'^3'")),
    ("regex boost", "/a/^2", 4, ("boosts", "'^2'")),
    ("fuzzy boost", "kyiv~^2", 6, ("boosts", "'^2'")),
    ("fuzzy similarity boost", "kyiv~90^2", 8, ("boosts", "'^2'")),
    ("range", "[a TO b]", 1, ("ranges such as [a TO b]", "OR", "regular expression")),
    ("exclusive range", "{a TO b}", 1, ("{a TO b}", "not supported", "OR")),
    ("field range", "title:[2020 TO 2024]", 7, ("ranges", "not supported")),
    ("range after a term", "war [2020 TO 2024]", 5, ("ranges", "not supported")),
    ("single-char wildcard", "te?t", 3, ("'?' wildcards", "'*'", "'~'")),
    ("trailing wildcard", "what?", 5, ("'?' wildcards", "'*'", "'~'")),
    ("wildcard in a phrase", '"is it ov?r"', 10, ("'?' wildcards",)),
    ("field with underscore", "foo_bar:x", 1, ("unknown field 'foo_bar'", SUPPORTED)),
    ("field with dot", "a.b:x", 1, ("unknown field 'a.b'", SUPPORTED)),
    ("field later", "sanctions AND _x:y", 15, ("unknown field '_x'", SUPPORTED)),
    ("field in a group", "(oil OR meta.title:x)", 9, ("unknown field 'meta.title'", "title")),
    ("other field in a group", "title:(a OR text:b)", 13, ("expected terms of field 'title'",
                                                            "found 'text:'")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("query", "column", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_error_names_the_construct_and_column(
    query: str, column: int, fragments: tuple[str, ...]
) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse(query)
    err = info.value
    for fragment in fragments:
        assert fragment in err.message, (fragment, err.message)
    assert "expected" in err.message
    assert err.column == column, (err.message, err.column)
    assert err.query == query
    assert str(err).endswith(f"at column {column}")
    # The message stays short even when the query is not: no 5,000-digit echo.
    assert len(err.message) < 250


@pytest.mark.parametrize(
    "query",
    [
        "(" * MAX_NESTING + "a" + ")" * MAX_NESTING,
        " NEAR/1 ".join(["a"] * MAX_NESTING),
        "title:" * 3000 + "a",
        f"a NEAR/{MAX_DISTANCE} b",
        "a NEAR/00005 b",
        f'"a b"~{MAX_SLOP}',
        '"a b"~0',
        f"/a{{{MAX_REGEX_SIZE}}}/",
        "a " * (MAX_QUERY_LENGTH // 2),
        r"/\d{1,2}[./]\d{1,2}/",
        r"/\p{L}{3}/",
        "/(?P<n>a)(?P=n)/",
        '"a!b" OR "x^2" OR "[a TO b]" OR "foo_bar:x" OR "{c}"',
        "10:30 OR 1a:b OR a1:b OR wow! OR a^b OR a^ OR c++ OR AT&T OR U.S. OR 9/11",
        "a] OR b}",
    ],
)
def test_neighbours_of_errors_stay_valid(query: str) -> None:
    assert parse(query) is not None


def test_numbers_in_other_scripts_are_read_as_digits() -> None:
    near = parse("a NEAR/٣ b")  # Arabic-Indic three
    assert isinstance(near, Near) and near.distance == 3
    fuzzy = parse("kyiv~٩٠")
    assert isinstance(fuzzy, Term) and fuzzy.similarity == 90


def test_field_chain_keeps_the_field() -> None:
    node = parse("title:" * 3000 + "putin")
    assert isinstance(node, Term) and node.field == "title" and node.key == "putin"


def test_nested_field_groups_give_every_term_the_field() -> None:
    node = parse("title:(" * MAX_NESTING + "a " * 500 + "title:b" + ")" * MAX_NESTING)
    assert isinstance(node, And) and len(node.children) == 501
    assert all(isinstance(c, Term) and c.field == "title" for c in node.children)


def test_slash_inside_a_character_class_does_not_end_the_pattern() -> None:
    node = parse(r"/\d{1,2}[./]\d{1,2}/ AND troops")
    rx = node.children[0]  # type: ignore[union-attr]
    assert isinstance(rx, Regex) and rx.pattern == r"\d{1,2}[./]\d{1,2}"


def test_lucene_characters_inside_quotes_are_text() -> None:
    node = parse('"a!b x^2"')
    assert isinstance(node, Phrase)
    assert [w.key for w in node.words] == ["a", "b", "x", "2"]


def test_unprintable_text_is_escaped_in_messages() -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse("\ud800")
    # A lone surrogate must not make the message unprintable in a log or a terminal.
    str(info.value).encode("utf-8")
    assert "\\ud800" in info.value.message


@pytest.mark.parametrize("char", ["\u202a", "\u202e", "\u2066", "\u2069", "\u200e", "\u200f",
                                  "\u061c"])
def test_direction_controls_are_refused_by_character_and_column(char: str) -> None:
    # Anywhere: in a word, a phrase or a regex, the query would read otherwise than it is.
    for query, column in ((f"troops{char}", 7), (f'"a {char}b"', 4), (f"/x{char}/", 3)):
        with pytest.raises(QuerySyntaxError) as info:
            parse(query)
        assert info.value.column == column
        assert f"U+{ord(char):04X} (" in info.value.message
        assert char not in info.value.message
    # a zero-width non-joiner belongs inside some words: not a direction control
    parse("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645")
