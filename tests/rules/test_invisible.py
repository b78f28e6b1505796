"""Characters that show nothing inside a word (a soft hyphen, common in German text as HTML's
&shy;; a zero-width space; a word joiner; a stray byte order mark) no longer split it, and a NUL
in a title or text is a word break rather than glue: "Pu&shy;tin" matched neither ``putin`` nor
``putin~``, and "Kyiv\\x00talks" was one word."""

from __future__ import annotations

import pytest

from watchers.errors import QuerySyntaxError
from watchers.models import Article
from watchers.rules import Rule, RuleSet
from watchers.rules.matcher import match_query
from watchers.rules.syntax import parse

RULES = RuleSet([Rule(name="putin", query="putin"), Rule(name="fuzzy", query="putin~"),
                 Rule(name="phrase", query='"security guarantees"'),
                 Rule(name="talks", query="kyiv AND talks")])


@pytest.mark.parametrize("invisible", ["\u00ad", "\u200b", "\u2060", "\ufeff"])
def test_an_invisible_character_inside_a_word_is_dropped(invisible: str) -> None:
    article = Article(title=f"Pu{invisible}tin speaks",
                      text=f"He asked for security guaran{invisible}tees.")
    assert article.title == "Putin speaks" and invisible not in article.text
    found = {m.rule for m in RULES.match(article)}
    assert {"putin", "fuzzy", "phrase"} <= found
    for m in RULES.match(article):  # the evidence is the stored text's
        assert all(article.field(h.field)[h.start:h.end] == h.text for h in m.hits)


def test_a_nul_in_a_title_or_text_separates_words() -> None:
    article = Article(title="Kyiv\x00talks", text="")
    assert article.title == "Kyiv talks"
    assert "talks" in {m.rule for m in RULES.match(article)}


def test_joiners_that_shape_words_are_kept() -> None:
    # the zero-width non-joiner is part of Persian spelling, the joiner of emoji sequences
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    article = Article(title=persian, text=family)
    assert (article.title, article.text) == (persian, family)


@pytest.mark.parametrize("invisible", ["\u00ad", "\u200b", "\u2060", "\ufeff"])
def test_a_query_reads_its_words_as_an_articles_are(invisible: str) -> None:
    # "Pu&shy;tin" pasted into a rule was the phrase "pu tin", which matched nothing.
    rules = RuleSet([Rule(name="q", query=f"Pu{invisible}tin AND guaran{invisible}tees~")])
    article = Article(title="Putin speaks", text="He asked for security guarantees.")
    assert [m.rule for m in rules.match(article)] == ["q"]
    assert match_query(f"Pu{invisible}tin", article) is not None


def test_an_error_in_such_a_query_names_it_as_written() -> None:
    query = "pu\u00adtin AND (kyiv"
    with pytest.raises(QuerySyntaxError) as err:
        parse(query)
    assert err.value.query == query
    # the column of the end, as written (the soft hyphen counted)
    assert err.value.column == len(query) + 1
    # and the column the message names: the "(" where it is written (it said 13)
    assert f"the '(' in column {query.index('(') + 1}" in err.value.message, err.value.message
    with pytest.raises(QuerySyntaxError) as err:
        parse("\u00ad\u200b\u00ad(troops")
    assert "the '(' in column 4 " in str(err.value), str(err.value)
    with pytest.raises(QuerySyntaxError) as err:
        parse("pu\u00adtin AND !x")
    assert "pu\u00adtin AND !x"[err.value.column - 1] == "!"
