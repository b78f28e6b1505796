"""Any string either parses into a tree no deeper than the limit or raises QuerySyntaxError with
a column inside the query, quickly: random unicode, and strings built from the grammar's tokens.

The deadline is generous (parsing these takes well under a millisecond); it is there so that a
parse that goes quadratic or hangs fails here rather than on a member's query.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from watchers.rules import And, Near, Node, Not, Or, QuerySyntaxError, parse
from watchers.rules.syntax import MAX_NESTING

FUZZ = settings(max_examples=300, deadline=timedelta(milliseconds=200))

TOKENS = [
    # structure and operators
    "(", ")", "((((((((", "))))))))", '"', "/", "AND", "OR", "NOT", "&&", "||", "-", "+",
    "and", "TO", "NEAR", "NEAR/", "NEAR/3", "NEAR/0", "NEAR/100", "NEAR/101", "NEAR/²", "NEAR/٣",
    "NEAR/" + "9" * 60,
    # suffixes and numbers
    "~", "~90", "~200", "~²", "~" + "9" * 60, "*", "?", "^", "^2", "^0.5", "!", "0", "5", "٥",
    "99999999999999999999",
    # fields, real and not
    ":", "title:", "text:", "url:", "x:", "foo_bar:", "a.b:", "10:30",
    # Lucene ranges and escapes
    "[", "]", "{", "}", "{1000}", "{e<=1}", "\\", "\\/", "\\g<1>", "(?R)", "(?:", "[./]",
    # words
    "a", "kyiv", "kyiv~", "troops", "U.S.", "cyber-attack", "é", "Київ", "\u0301", "\x00",
    "\ud800", "Ⅻ",
]  # fmt: skip
SEPARATORS = ["", "", " ", "  ", "\t", "\n"]

unicode_text = st.text(st.characters(exclude_categories=()), max_size=80)
grammar_text = st.lists(
    st.tuples(st.sampled_from(TOKENS), st.sampled_from(SEPARATORS)), max_size=24
).map(lambda parts: "".join(tok + sep for tok, sep in parts))
# Strings around the nesting limit, which short random lists rarely reach.
nested_text = st.tuples(
    st.integers(0, 3 * MAX_NESTING),
    st.sampled_from(["(", "(a OR ", "-(", "title:(", "a NEAR/1 "]),
    grammar_text,
    st.booleans(),
).map(lambda p: p[1] * p[0] + p[2] + (")" * p[0] if p[3] else ""))


def _depth(node: Node) -> int:
    deepest = 0
    stack: list[tuple[Node, int]] = [(node, 1)]
    while stack:
        n, d = stack.pop()
        deepest = max(deepest, d)
        if isinstance(n, And | Or):
            stack.extend((c, d + 1) for c in n.children)
        elif isinstance(n, Not):
            stack.append((n.child, d + 1))
        elif isinstance(n, Near):
            stack.extend([(n.left, d + 1), (n.right, d + 1)])
    return deepest


def _parses_or_raises_query_syntax_error(query: str) -> None:
    try:
        node = parse(query)
    except QuerySyntaxError as err:
        assert err.query == query
        assert 1 <= err.column <= len(query) + 1, (err.message, err.column)
        assert "expected" in err.message, err.message
        str(err).encode("utf-8")  # printable in a log line, a terminal or a Discord reply
        return
    assert _depth(node) <= MAX_NESTING


@FUZZ
@given(unicode_text)
def test_any_unicode_text(query: str) -> None:
    _parses_or_raises_query_syntax_error(query)


@FUZZ
@given(grammar_text)
def test_strings_of_grammar_tokens(query: str) -> None:
    _parses_or_raises_query_syntax_error(query)


@FUZZ
@given(nested_text)
def test_nesting_around_the_limit(query: str) -> None:
    _parses_or_raises_query_syntax_error(query)
