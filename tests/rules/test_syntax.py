"""The query parser: the AST it builds and the errors it reports.

Limits and refused Lucene syntax: test_syntax_limits.py; random input: test_syntax_fuzz.py.
"""

from __future__ import annotations

import re

import pytest

from watchers.rules import And, Near, Not, Or, Phrase, QuerySyntaxError, Regex, Term, parse


def test_single_word() -> None:
    node = parse("troops")
    assert isinstance(node, Term)
    assert (node.key, node.kind, node.field) == ("troop", "word", None)


def test_precedence_not_and_or() -> None:
    node = parse("a OR b AND NOT c")
    assert isinstance(node, Or)
    left, right = node.children
    assert isinstance(left, Term) and left.key == "a"
    assert isinstance(right, And)
    assert isinstance(right.children[1], Not)


def test_implicit_and_and_parentheses() -> None:
    node = parse("sanctions (russia OR moscow)")
    assert isinstance(node, And)
    assert isinstance(node.children[1], Or)


def test_lowercase_operators_are_words() -> None:
    node = parse("war and peace")
    assert isinstance(node, And)
    assert [c.key for c in node.children if isinstance(c, Term)] == ["war", "and", "peace"]


def test_minus_plus_and_binary_not() -> None:
    for q in (
        "talks NOT football",
        "talks -football",
        "+talks -football",
        "talks AND NOT football",
    ):
        node = parse(q)
        assert isinstance(node, And), q
        assert isinstance(node.children[1], Not), q


def test_phrase_slop_fuzzy_prefix_field_regex() -> None:
    phrase = parse('"nato expansion"~5')
    assert isinstance(phrase, Phrase) and phrase.slop == 5
    assert [w.key for w in phrase.words] == ["nato", "expansion"]
    fuzzy = parse("kyiv~90")
    assert isinstance(fuzzy, Term) and fuzzy.kind == "fuzzy" and fuzzy.similarity == 90
    default = parse("kyiv~")
    assert isinstance(default, Term) and default.kind == "fuzzy" and default.similarity is None
    prefix = parse("mobili*")
    assert isinstance(prefix, Term) and prefix.kind == "prefix" and prefix.norm == "mobili"
    titled = parse("title:putin")
    assert isinstance(titled, Term) and titled.field == "title"
    rx = parse("/1,?00,?000 (troops|soldiers)/")
    assert isinstance(rx, Regex) and rx.pattern == "1,?00,?000 (troops|soldiers)"


def test_fuzzy_word_inside_phrase() -> None:
    node = parse('"kiev~ talks"')
    assert isinstance(node, Phrase)
    assert [w.kind for w in node.words] == ["fuzzy", "word"]


def test_a_colon_inside_quotes_is_text_not_a_field() -> None:
    """Quotes make their content words, as in Lucene: "breaking: kyiv talks" was refused as an
    unknown field 'breaking', a quoted link could not be written, and "title: putin" was
    refused."""
    from watchers.models import Article
    from watchers.rules import match_query

    article = Article(title="Update", text="Breaking: Kyiv talks resume. Title: Putin. "
                                           "See https://www.reuters.com today.")
    for query, words in (('"breaking: kyiv talks"', ["breaking", "kyiv", "talk"]),
                         ('"title: putin"', ["title", "putin"]),
                         ('"https://www.reuters.com"', ["http", "www", "reuter", "com"])):
        node = parse(query)
        assert isinstance(node, Phrase) and node.field is None
        assert [w.key for w in node.words] == words
        assert match_query(query, article) is not None
    node = parse('url:"https://www.reuters.com"')
    assert isinstance(node, Phrase) and node.field == "url"
    with pytest.raises(QuerySyntaxError, match="unknown field 'breaking'"):
        parse("breaking:kyiv")  # outside quotes a colon still names a field


def test_field_applies_to_group() -> None:
    node = parse("title:(putin OR kremlin)")
    assert isinstance(node, Or)
    assert all(isinstance(c, Term) and c.field == "title" for c in node.children)


def test_near_binds_terms_and_or_groups() -> None:
    node = parse('sanctions NEAR/10 (russia OR "russian federation") AND oil')
    assert isinstance(node, And)
    near = node.children[0]
    assert isinstance(near, Near) and near.distance == 10


def test_hyphenated_and_dotted_terms() -> None:
    node = parse("cyber-attack")
    assert isinstance(node, Term) and node.key == "cyberattack"
    us = parse("U.S.")
    assert isinstance(us, Term) and us.key == "us"


@pytest.mark.parametrize(
    ("query", "column", "fragment"),
    [
        ("sanctions AND", 14, "expected a term after AND"),
        ("sanctions OR", 13, "expected a term after OR"),
        ("", 1, "expected a term"),
        ("   ", 4, "expected a term"),
        ("(russia OR moscow", 18, "expected ')'"),
        ("russia)", 7, "unbalanced ')'"),
        ("()", 2, "expected a term inside"),
        ('"security guarantees', 1, 'expected a closing "'),
        ("/unclosed", 1, "expected a closing /"),
        # JavaScript's and PCRE's flags: read as a word "i" ANDed on (which "I" matched)
        ("/troops/i", 9, "expected a space after the regular expression's closing /, not "
                         "flags ('i')"),
        ("(/x/gm OR y)", 5, "not flags ('gm'): a regex already ignores case"),
        ("/(troops/", 1, "expected a valid pattern"),
        ("kyiv~200", 6, "expected a similarity"),
        ("kyiv~10", 6, "expected a similarity"),
        ("a NEAR/x b", 3, "expected a distance"),
        ("a NEAR b", 3, "expected a distance"),
        ("a NEAR/5", 9, "expected a word or phrase after NEAR/5"),
        ("a NEAR/5 (b AND c)", 3, "expected words, phrases or an OR"),
        ("-football", 1, "at least one positive term"),
        ("NOT football", 1, "at least one positive term"),
        ("  -football", 3, "at least one positive term"),
        ("\t NOT football", 3, "at least one positive term"),
        ("talks OR -football", 10, "each side of OR needs a positive term"),
        ("colour:red", 1, "unknown field"),
        ("title:", 7, "expected a term after 'title:'"),
        ("a AND OR b", 7, "expected a term after AND"),
        ("mob*ise", 4, "expected '*' only at the end"),
        ("*", 1, "expected letters before '*'"),
        ('"kiev~200 talks"', 7, "expected a similarity"),
        ("&&&", 1, "expected a word with letters or digits"),
        # Only non-empty matches count, so these never match (a search read every article).
        ("/(?#a note)/", 1, "matches only empty text"),
        ("ukraine AND /^$/", 13, "matches only empty text"),
        ("ukraine AND title:/\\b(?=kyiv)/", 19, "matches only empty text"),
    ],
)
def test_errors_say_what_was_expected_and_where(query: str, column: int, fragment: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse(query)
    err = info.value
    assert "expected" in err.message
    assert fragment in err.message
    assert err.column == column, (err.message, err.column)
    assert err.query == query
    assert str(err).endswith(f"at column {column}")


@pytest.mark.parametrize("pattern", ["a?", "x*", "(?:)|kyiv", "\\p{L}+ruble", "(?<=a)b",
                                     "(?i)KYIV"])
def test_a_regex_that_may_match_characters_is_taken(pattern: str) -> None:
    """Empty matches are possible here, but so are others (``\\p{L}``: a construct Python's
    own parser does not read, searched as written)."""
    node = parse(f"/{pattern}/")
    assert isinstance(node, Regex) and node.pattern == pattern


def test_caret_points_at_column() -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse("sanctions AND")
    assert info.value.caret().splitlines()[1] == " " * 13 + "^"


@pytest.mark.parametrize(("query", "title"), [
    ('"Is this the end?"', "Is this the end? Markets fall"),
    ('"Ukraine war - live updates"', "Ukraine war – live updates"),
    ('"Tom & Jerry"', "Tom & Jerry return"),
    ('"« Zelensky »"', "«Zelensky» speaks"),
    ('"who? me"', "Who, me?"),
    ('"end?!"', "the end!"),
])
def test_a_pasted_headlines_punctuation_inside_quotes_is_text(query: str, title: str) -> None:
    """A mark between a phrase's words, or a question mark after one, was refused ("'?'
    wildcards are not supported", "expected a word with letters or digits, found '-'"),
    though the phrase without it matched the same text: phrases read across punctuation."""
    from watchers import Article
    from watchers.rules import match_query

    parse(query)
    assert match_query(query, Article(title=title, text="")) is not None


@pytest.mark.parametrize(("query", "says"), [
    ('"wh?t"', "'?' wildcards are not supported"),  # inside a word: still a wildcard
    ('"- & »"', "expected words inside the quotes"),
    ("end?", "'?' wildcards are not supported"),  # outside quotes, as before
])
def test_punctuation_alone_or_a_question_mark_inside_a_word_is_still_refused(
        query: str, says: str) -> None:
    with pytest.raises(QuerySyntaxError, match=re.escape(says)):
        parse(query)
