"""The places index: an article's words where they stand, and the query that reads them.

Whatever the matcher finds, the places query finds too (a superset, the matcher then decides):
phrases and NEAR across compounds, aliases, plurals, marks and odd characters, field terms;
and it finds fewer than the word-set index where the words stand apart."""

from __future__ import annotations

import os
import sqlite3

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import corpora_or_skip
from watchers.errors import QuerySyntaxError
from watchers.models import Article
from watchers.rules import match_query, shipped_aliases
from watchers.rules.lookup import (
    NOTHING,
    index_query,
    lookup_terms,
    places_of,
    places_query,
)
from watchers.rules.syntax import parse
from watchers.store.sqlite.schema import PLACES_TOKENIZE

# Written forms: compounds (hyphenated, closed, apart), aliases, plurals and possessives,
# apostrophes, underscores, Cyrillic, Devanagari (vowel signs are marks), a joiner, digits.
WORDS = ["cyber-attack", "cyberattack", "cyber", "attack", "attacks", "Russia's", "Russia",
         "Russia-Ukraine", "Ukraine", "Kyiv", "Kiev", "Київ", "troops", "troop", "the", "on",
         "prime", "minister", "ministers", "prime-minister", "a-b-c", "b", "c", "snake_case",
         "case", "मदद", "नई", "e\u200dx", "x", "2022", "Donbas", "Donbass", "don't", "dont",
         "U.S.", "us", "re-election", "election", "New-York", "York", "co-op", "coop",
         # a ligature whose key holds spaces (four words spelt out), and one of those words
         "\ufdfa", "\u0627\u0644\u0644\u0647", "a\ufe70b"]
SEPARATORS = [" ", " ", " ", ", ", ". ", " - ", " — ", "\n", " (", ") ", ": "]
QUERY_WORDS = ["cyberattack", "cyber", "attack", "attacks", "russia", "ukraine",
               "russiaukraine", "kyiv", "kiev", "київ", "troops", "troop", "the", "on", "prime",
               "minister", "primeminister", "abc", "a", "b", "c", "snake_case", "case", "मदद",
               "नई", "x", "2022", "donbas", "dont", "us", "reelection", "election", "newyork",
               "york", "coop", "co", "\u0627\u0644\u0644\u0647"]

aliases = shipped_aliases({"coop": ["cooperative"]})


def _table() -> sqlite3.Connection:
    con = sqlite3.connect(":memory:")
    con.execute("CREATE VIRTUAL TABLE p USING fts5(title, text, title_more, text_more, "
                f"content='', columnsize=0, tokenize=\"{PLACES_TOKENIZE}\")")
    con.execute("CREATE VIRTUAL TABLE w USING fts5(terms, content='', "
                "tokenize=\"unicode61 remove_diacritics 0\")")
    return con


def _found(con: sqlite3.Connection, table: str, query: str | None, every: int = 0) -> set[int]:
    if query is None:  # no narrowing: every article is a candidate
        return set(range(1, every + 1))
    if query == NOTHING:
        return set()
    return {r for (r,) in con.execute(f"SELECT rowid FROM {table} WHERE {table} MATCH ?",
                                      (query,))}


texts = st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)),
                 min_size=0, max_size=14).map(lambda ws: "".join(w + s for w, s in ws))
word_queries = st.sampled_from(QUERY_WORDS)
prefixes = st.sampled_from(["cyb*", "russ*", "minist*", "troops*", "ky*"])
phrase_words = st.one_of(word_queries, word_queries, word_queries, prefixes,
                         st.sampled_from(["kyiv~", "attak~"]))
phrases = st.lists(phrase_words, min_size=2, max_size=4).map(lambda ws: '"' + " ".join(ws) + '"')
fields = st.sampled_from(["", "", "title:", "text:"])
sides = st.one_of(word_queries, phrases.filter(lambda p: "*" not in p and "~" not in p))


@st.composite
def queries(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["phrase", "near", "field", "sloppy", "and", "not"]))
    if kind == "not":
        negated = draw(st.one_of(word_queries, st.tuples(fields, word_queries, word_queries).map(
            lambda t: f"({t[0]}{t[1]} OR {t[2]})"), phrases, prefixes))
        return f"{draw(st.one_of(word_queries, phrases))} NOT {negated}"
    if kind == "phrase":
        return draw(fields) + draw(phrases)
    if kind == "near":
        field = draw(fields)
        left, right = draw(sides), draw(sides)
        return f"{field}{left} NEAR/{draw(st.integers(1, 5))} {field}{right}"
    if kind == "field":
        return draw(st.sampled_from(["title:", "text:"])) + draw(st.one_of(word_queries, prefixes))
    if kind == "sloppy":
        return draw(phrases) + f"~{draw(st.integers(1, 3))}"
    return f"{draw(fields)}{draw(phrases)} AND {draw(word_queries)}"


def _slice(data: st.DataObject, docs: list[tuple[str, str]]) -> str:
    """Words standing together in one of ``docs`` (as written, or as a query spells them)."""
    draw = data.draw
    title, text = draw(st.sampled_from(docs))
    words = [w for w in (title + " " + text).replace("(", " ").replace(")", " ").split()
             if any(c.isalnum() for c in w)]
    if len(words) < 2:
        return draw(st.sampled_from(QUERY_WORDS))
    at = draw(st.integers(0, len(words) - 2))
    n = draw(st.integers(2, min(4, len(words) - at)))
    return " ".join(w.strip(",.:;—-") or w for w in words[at:at + n])


@settings(max_examples=int(os.environ.get("PLACES_EXAMPLES", "600")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(docs=st.lists(st.tuples(texts, texts), min_size=1, max_size=6), data=st.data())
def test_the_places_query_finds_every_article_the_matcher_matches(
        docs: list[tuple[str, str]], data: st.DataObject) -> None:
    # Half the queries are words that stand together in one of the articles.
    if data.draw(st.booleans()):
        query = data.draw(queries())
    else:
        seen = _slice(data, docs)
        field = data.draw(fields)
        form = data.draw(st.sampled_from(["phrase", "near", "split"]))
        if form == "phrase" or " " not in seen:
            query = f'{field}"{seen}"'
        else:
            first, rest = seen.split(" ", 1)
            right = f'"{rest}"' if form == "near" else rest.split(" ")[0]
            query = f"{field}{first} NEAR/{data.draw(st.integers(1, 3))} {field}{right}"
    try:
        node = parse(query)
    except QuerySyntaxError:
        return
    con = _table()
    # (as stored: the model normalises the text, e.g. drops zero-width spaces)
    articles = [Article(source="s", title=title, text=text) for title, text in docs]
    for i, article in enumerate(articles, 1):
        con.execute("INSERT INTO p (rowid, title, text, title_more, text_more) "
                    "VALUES (?, ?, ?, ?, ?)", (i, *places_of(article.title, article.text)))
    found = _found(con, "p", places_query(node, aliases), len(docs))
    for i, article in enumerate(articles, 1):
        title, text = article.title, article.text
        if match_query(node, article, aliases=aliases) is not None:
            event("matched")
            assert i in found, (query, title, text, places_query(node, aliases),
                                places_of(title, text))


def test_places_narrow_phrases_near_and_fields_where_the_word_set_cannot() -> None:
    # The same words, standing apart or in another field: the word-set index takes them all,
    # the places index only those the query can match.
    docs = [("Prime minister resigns", "The minister said the prime rate rose."),
            ("Rates", "The minister said the prime rate rose; prime minister next week."),
            ("Minister", "The prime rate rose."),
            ("Talks in Kyiv", "Troops massed far from the capital, officials said."),
            ("Talks", "Troops near Kyiv, officials said.")]
    con = _table()
    for i, (title, text) in enumerate(docs, 1):
        con.execute("INSERT INTO p (rowid, title, text, title_more, text_more) "
                    "VALUES (?, ?, ?, ?, ?)", (i, *places_of(title, text)))
        con.execute("INSERT INTO w (rowid, terms) VALUES (?, ?)", (i, lookup_terms(title, text)))
    for query, words, places in (('"prime minister"', {1, 2, 3}, {1, 2}),
                                 ('text:"prime minister"', {1, 2, 3}, {2}),
                                 ("title:minister", {1, 2, 3}, {1, 3}),
                                 ("kyiv NEAR/2 troops", {4, 5}, {5}),
                                 ("title:kyiv AND troops", {4, 5}, {4})):
        node = parse(query)
        assert _found(con, "w", index_query(node, aliases)) == words, query
        assert _found(con, "p", places_query(node, aliases)) == places, query
        expected = {i for i, (t, x) in enumerate(docs, 1)
                    if match_query(node, Article(source="s", title=t, text=x)) is not None}
        assert expected <= places, query


def test_a_key_is_one_token_of_the_places_index() -> None:
    # FTS5 counts tokens, the matcher words: a key the tokeniser split would count as two
    # (NEAR's distance) — marks, joiners, underscores and apostrophes stay inside a key.
    con = _table()
    keys = "snake_case मदद e\u200dx don't 2022 київ"
    con.execute("INSERT INTO p (rowid, title) VALUES (1, ?)", (keys,))
    con.execute("CREATE VIRTUAL TABLE v USING fts5vocab(p, 'instance')")
    tokens = [t for (t,) in con.execute("SELECT term FROM v ORDER BY offset")]
    assert tokens == keys.split()


def test_the_corpus_keys_are_each_one_token() -> None:
    corpora = corpora_or_skip()
    import json

    con = _table()
    con.execute("CREATE VIRTUAL TABLE v USING fts5vocab(p, 'instance')")
    path = corpora / "articles" / "web_scraped_2026_ukraine_world.jsonl"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f):
            if n >= 150:
                break
            d = json.loads(line)
            order = places_of(d.get("title") or "", d.get("text") or "")[1]
            con.execute("INSERT INTO p (rowid, text) VALUES (?, ?)", (n + 1, order))
            tokens = [t for (t,) in con.execute(
                "SELECT term FROM v WHERE doc = ? ORDER BY offset", (n + 1,))]
            assert tokens == order.split(), d.get("title")


@pytest.mark.parametrize("query", ["prophet NEAR/3 said", "muhammad NOT \u0627\u0644\u0644\u0647",
                                   '"\ufdfa said"', "\ufdfa NEAR/1 muhammad"])
def test_a_word_whose_key_holds_spaces_stays_one_word(query: str) -> None:
    # U+FDFA spells out as four words: to the matcher it is one word, so it neither pushes its
    # neighbours apart nor brings the four in as words of the article.
    article = Article(source="s", title="Sermon",
                      text="Prophet Muhammad \ufdfa said mercy is a virtue.")
    con = _table()
    con.execute("INSERT INTO p (rowid, title, text, title_more, text_more) "
                "VALUES (1, ?, ?, ?, ?)", places_of(article.title, article.text))
    node = parse(query)
    assert match_query(node, article, aliases=aliases) is not None
    assert 1 in _found(con, "p", places_query(node, aliases), 1)
