"""The lookup index, seen from the rule language: an article's index terms, and a query turned
into an index query that finds a *superset* of the articles the query matches.

The store indexes these terms and runs these queries (SQLite FTS5 syntax: quoted words, ``*``
prefixes, AND/OR with parentheses) but knows nothing of the language that produced them.

FTS5's own tokeniser does not fold the way the matcher does (plurals, apostrophes, compounds,
aliases), so an article is indexed under the matcher's own keys and norms. Terms the index cannot
express (fuzzy terms, regexes, negations) drop out of an AND and make an OR unconstrained — never
the other way — and the matcher then gives the exact answer.
"""

from __future__ import annotations

import bisect
import re
import time
from array import array
from collections.abc import Callable, Collection, Iterable, Sequence
from itertools import compress, islice, product
from math import prod
from operator import eq, lt, not_
from typing import Any

from ..models import MAX_MATCH_CHARS, MAX_MATCH_TITLE_CHARS, readable, storable
from . import text as _text
from .matcher import DEFAULT_THRESHOLD, Analysis
from .syntax import And, Near, Node, Not, Or, Phrase, Regex, Term
from .text import FieldText, add_terms, tokenize, untrack
from .variants import (
    CUTOFF_SLACK,
    LONGEST_ENDING,
    Aliases,
    compare,
    compound_splits,
    stem_key,
    stems_of,
    translit_key,
)

__all__ = [
    "MARK",
    "NOTHING",
    "PLACE_COLUMNS",
    "FuzzyKeys",
    "Places",
    "PrefixWords",
    "RegexWords",
    "RowScreen",
    "Vocabulary",
    "analysed_index",
    "analysed_terms",
    "analysed_words",
    "fuzzy_terms",
    "index_query",
    "index_terms",
    "lookup_terms",
    "lookup_words",
    "number_marks",
    "own_key",
    "places_of",
    "places_query",
    "regex_runs",
    "regex_screen",
    "terms_text",
    "url_query",
    "url_terms",
]

# A fuzzy term's expansion: the index words a fuzzy term (key, threshold) matches, or None
# when they are not known (the term then leaves the index query unconstrained).
FuzzyKeys = Callable[[str, float], "Collection[str] | None"]
# A prefix's expansion: the index words that start with it, or None when unknown.
PrefixWords = Callable[[str], "Collection[str] | None"]
# A regex's expansion: sets of index words such that every article it matches holds one word
# of each set, or None.
RegexWords = Callable[[str], "Sequence[Collection[str]] | None"]
# The fields whose words the index holds (None: a term's default fields, title and text), and
# the field whose words the URL index holds.
_INDEXED: tuple[str | None, ...] = (None, "title", "text")
_URL: tuple[str | None, ...] = ("url",)
# A literal's letters and digits, as a word of the index holds them (a run of them in a text is
# inside one word, and folding keeps it whole).
_RUN = re.compile(r"[a-z0-9]{3,}")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
# The index query of a node that no article can match (a fuzzy term whose expansion is empty).
NOTHING = ""
# A fuzzy term that matches more index words than this leaves the query unconstrained rather
# than become a query of thousands of words.
MAX_FUZZY_WORDS = 400


def _as_read(text: str) -> str:
    """A stored title or text as an article read from the store holds it (and the matcher
    and the regex screen read it): a row written before articles were made readable may still
    hold a soft hyphen or a NUL, and its lookup indexes must be those of what is read."""
    return storable(readable(text))


def index_terms(*fields: str) -> str:
    """Every distinct key and norm of the fields' tokens (read as :func:`_as_read` reads
    them), sorted and space-separated."""
    words: set[str] = set()
    for text in fields:
        for tok in tokenize(_as_read(text)):
            words.add(tok.key)
            words.add(tok.norm)
    return " ".join(sorted(w for w in words if w))


def lookup_terms(*fields: str) -> str:
    """:func:`index_terms`, from the matcher's own word scan and folding cache (the same keys
    and norms, no token built; a test keeps the two equal)."""
    return terms_text(lookup_words(*fields))


def lookup_words(*fields: str) -> set[str]:
    """The words of :func:`lookup_terms`, as a set."""
    words: set[str] = set()
    for text in fields:
        add_terms(_as_read(text), words)
    words.discard("")
    return words


def url_terms(url: str | None) -> str:
    """The words an article's URL is indexed under (its ``url`` field's keys and norms, as
    :func:`lookup_terms` gives them), sorted and space-separated; empty without a URL."""
    return lookup_terms(url) if url else ""


def analysed_terms(analysis: Analysis) -> str:
    """The index terms of an article the matcher has already tokenised: its title and text
    fields are reused, not tokenised again."""
    return terms_text(analysed_words(analysis))


def analysed_words(analysis: Analysis) -> set[str]:
    """The words of :func:`analysed_terms`, as a set."""
    return _words((analysis.field("title"), analysis.field("text")))


def terms_text(words: Iterable[str]) -> str:
    """Index words as the index terms a store is given: sorted, space-separated."""
    return " ".join(sorted(words))


# -- the places index ---------------------------------------------------------------------------
#
# Each article's words where they stand: the keys of each field's tokens in their order (a
# phrase is those keys side by side, a NEAR those keys within a distance), and beside each field
# its other words (the keys of the tokens out of that order, compounds above all, and the norms
# that differ from a key), so that a ``title:`` term looks in the title alone. The store keeps
# them in a table of its own (SQLite FTS5 with positions); see :func:`places_query`.

#: The columns of the places index, in the order :func:`places_of` gives them.
PLACE_COLUMNS = ("title", "text", "title_more", "text_more")
# A field's columns: (words in order, other words).
_PLACE_COLS = {"title": ("title", "title_more"), "text": ("text", "text_more")}
# Phrases or NEARs of aliased words become an OR of their spellings, up to this many of them.
MAX_SPELLINGS = 16

#: An article's places: its title's keys in order, its text's, and their other words.
Places = tuple[str, str, str, str]
# Whitespace inside a key (which the order's tokeniser would part), and a run of it.
_SPACED = re.compile(r"\s")
_JOINED = re.compile(r"\s+")


# Number marks (keys version 6): a regex such as ``/\d+ killed/`` needs a digit, whitespace and
# then a word, which no word of the index says; its candidates were every article holding the
# word (tens of thousands for a common one, each read and screened). So a field's other words
# also hold, for each digit followed by whitespace, a mark: MARK and the ASCII letters and
# digits that begin the next run of text (folded as the regex screen folds, at most
# MARK_CHARS of them), and the query of such a regex asks for the prefix ``"№killed"*`` there
# (see number_runs). A mark is never a word of the word list. Rows placed by their words alone
# hold none: a store reads the marked query only when every row is placed exactly.
MARK = "\u2116"  # №
MARK_CHARS = 12
_MARK_HEAD = re.compile("[a-z0-9]+")
# A digit followed by whitespace (Python's, a superset of the regex engine's) and the run after.
_MARK_AT = re.compile(f"\\d(?=\\s+(\\S{{1,{MARK_CHARS}}}))")
# ... and a character of the second plane that Python calls unprintable (so every one it does
# not know): the regex engine's Unicode data may be newer than Python's and take for a digit a
# character Python does not know (the Garay digits, U+10D40...: all such in the second plane,
# see tests/rules/test_number_marks.py). The C scan (_ctext.digit_gaps) reads the same.
_MARK_AT_ASTRAL = re.compile(f"[\\U00010000-\\U0001ffff](?=\\s+(\\S{{1,{MARK_CHARS}}}))")


def number_marks(text: str) -> set[str]:
    """The number marks of a field's text (see :data:`MARK`): every run of text that follows
    a digit and whitespace, as MARK and its first letters and digits (folded)."""
    from .index import _screen_form

    if _text.digit_gaps is not None:
        runs = [text[j:j + MARK_CHARS] for j in _text.digit_gaps(text)]
    else:
        runs = [m.group(1) for m in _MARK_AT.finditer(text)]
        if not text.isascii() and max(text) > "\uffff":
            runs += [m.group(1) for m in _MARK_AT_ASTRAL.finditer(text)
                     if not m.group().isprintable()]
    out = set()
    for run in runs:
        head = _MARK_HEAD.match(_screen_form(run))
        if head is not None:
            out.add(MARK + head.group())
    return out


def _field_places(ft: FieldText, words: set[str] | None = None) -> tuple[str, str]:
    """A field's keys in order (one token a position: a compound's parts, not the compound),
    and its other words, space-separated; ``words``, when given, gains the field's index words
    (its keys and norms, as :func:`analysed_words` gives them).

    Every token whose key is left out of the order (a compound, or a second token at a
    position) is among the other words: a phrase or NEAR that went through it is looked for
    there (see :func:`places_query`). Leaving a token out only brings its neighbours closer."""
    keys = ft.keys
    if not keys:
        if words is not None:
            words.update(ft.norm_words())
        return "", " ".join(sorted(number_marks(ft.text)))
    more: set[str] = set()
    if ft.pos is ft.last:  # no compound: a token a position, in order
        order = keys
    else:
        pos, last = ft.pos, ft.last
        single = list(map(eq, pos, last))
        order = list(compress(keys, single))
        at = list(compress(pos, single))
        if all(map(lt, at, islice(at, 1, None))):
            more.update(compress(keys, map(not_, single)))
        else:  # a second token at a position: among the other words
            order = []
            upto = -1
            for k, p, q in zip(keys, pos, last, strict=True):
                if p == q and p > upto:
                    order.append(k)
                    upto = p
                else:
                    more.add(k)
    key_set = set(keys)
    norms = ft.norm_words()
    if words is not None:
        words |= key_set
        words |= norms
    more |= norms.difference(key_set)
    more |= number_marks(ft.text)
    if _SPACED.search("".join(order)) is not None:
        # A word whose key holds a space (a ligature such as U+FDFA spelt out) is one word to
        # the matcher: one token in the order (joined by a word joiner, which no key holds),
        # and among the other words as its key is written.
        spaced = [k for k in order if _SPACED.search(k)]
        more.update(spaced)
        order = [_JOINED.sub("\u2060", k) if _SPACED.search(k) else k for k in order]
    more.discard("")
    return " ".join(order), " ".join(sorted(more))


def _places(title: FieldText, text: FieldText) -> Places:
    t_order, t_more = _field_places(title)
    x_order, x_more = _field_places(text)
    return (t_order, x_order, t_more, x_more)


def places_of(title: str, text: str) -> Places:
    """The places index's columns of an article (see :data:`PLACE_COLUMNS`): of its title and
    text as rules see them (as read from the store, :func:`_as_read`, and cut as
    :func:`watchers.models.matchable` cuts them, so that no word
    the matcher cannot see stands in the index to rule the article out). A change to what this
    gives for some text must raise ``KEYS_VERSION`` (see there)."""
    return _places(FieldText.of(_as_read(title)[:MAX_MATCH_TITLE_CHARS]),
                   FieldText.of(_as_read(text)[:MAX_MATCH_CHARS]))


def analysed_index(analysis: Analysis) -> tuple[set[str], Places]:
    """:func:`analysed_words` and the :func:`places_of` of an article the matcher has already
    tokenised, at once (each field's norms made once for both)."""
    words: set[str] = set()
    t_order, t_more = _field_places(analysis.field("title"), words)
    x_order, x_more = _field_places(analysis.field("text"), words)
    words.discard("")
    untrack(words)
    return words, (t_order, x_order, t_more, x_more)


def _words(fields: Iterable[FieldText]) -> set[str]:
    words: set[str] = set()
    for ft in fields:
        ft.add_terms(words)
    words.discard("")
    # Strs only, and kept until the article is written (a poll's whole batch): the collector
    # need not walk it (see watchers.rules.text.untrack).
    untrack(words)
    return words


def _q(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _any(parts: list[str]) -> str:
    # A part that can match nothing adds nothing to an OR.
    parts = [p for p in parts if p != NOTHING]
    if not parts:
        return NOTHING
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def _all(parts: list[str]) -> str | None:
    if not parts:
        return None
    if NOTHING in parts:
        return NOTHING
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


def _term(term: Term, aliases: Aliases, threshold: float, fuzzy: FuzzyKeys | None,
          prefixed: PrefixWords | None = None) -> str | None:
    if not term.key:
        return None
    if term.kind == "fuzzy":
        if fuzzy is None:
            return None
        thr = float(term.similarity if term.similarity is not None else threshold)
        words = fuzzy(term.key, thr)
        if words is None or len(words) > MAX_FUZZY_WORDS:
            return None
        return _any([_q(w) for w in sorted(words)])
    if term.kind == "prefix":
        if not term.norm:
            return None
        found = prefixed(term.norm) if prefixed is not None else None
        if found is None or len(found) > MAX_FUZZY_WORDS:
            # FTS5's own prefix query: it reads every matching word's list before the first
            # answer, where an OR of the words reads them newest first and stops.
            return _q(term.norm) + "*"
        return _any([_q(w) for w in sorted(found)])
    keys = sorted({term.key} | aliases.of(term.key))
    parts = [_q(k) for k in keys]
    # A closed compound also matches when written apart: "cyberattack" ~ "cyber attack".
    parts += [f"({_q(a)} AND {_q(b)})" for a, b in compound_splits(term.key)]
    return _any(parts)


def index_query(node: Node, aliases: Aliases, threshold: float = DEFAULT_THRESHOLD,
                fuzzy: FuzzyKeys | None = None,
                regex: RegexWords | None = None,
                prefixed: PrefixWords | None = None) -> str | None:
    """An index query matching at least every article ``node`` matches; None when the index
    cannot narrow the search (every article is a candidate), :data:`NOTHING` when no article
    can match.

    ``fuzzy`` expands a fuzzy term (key, threshold) into the index words it matches,
    ``regex`` a regex into index words one of which any article it matches holds, and
    ``prefixed`` a prefix into the index words that start with it (see :class:`Vocabulary`);
    without them fuzzy terms and regexes constrain nothing and a prefix is FTS5's own.
    ``threshold`` is the similarity of fuzzy terms that give none. The index holds the words
    of titles and texts only, so a term that looks in the source or link constrains nothing
    either (the link's words are in the URL index: see :func:`url_query`).
    """
    return _index_query(node, aliases, threshold, fuzzy, regex, prefixed, _INDEXED)


def url_query(node: Node, aliases: Aliases) -> str | None:
    """The query of the URL index (the words of each article's URL, :func:`url_terms`) that
    matches at least every article ``node`` matches; None when its ``url:`` terms cannot narrow
    the search: a ``url:`` word, phrase or prefix that every match needs narrows (through AND,
    NEAR and phrases; an OR narrows when each of its operands does); any other term, a fuzzy
    ``url:`` term or regex, and a negation constrain nothing. A prefix is FTS5's own (the
    index's word list holds title and text words only)."""
    return _index_query(node, aliases, DEFAULT_THRESHOLD, None, None, None, _URL)


def _index_query(node: Node, aliases: Aliases, threshold: float, fuzzy: FuzzyKeys | None,
                 regex: RegexWords | None, prefixed: PrefixWords | None,
                 fields: tuple[str | None, ...]) -> str | None:
    """:func:`index_query` of an index holding the words of ``fields``."""
    if isinstance(node, Term | Phrase | Regex) and node.field not in fields:
        return None
    if isinstance(node, Term):
        return _term(node, aliases, threshold, fuzzy, prefixed)
    if isinstance(node, Phrase):
        words = [_term(w, aliases, threshold, fuzzy, prefixed) for w in node.words]
        return _all([w for w in words if w is not None])
    if isinstance(node, Regex):
        found = regex(node.pattern) if regex is not None else None
        if found is None:
            return None
        return _all([_any([_q(w) for w in sorted(words)]) for words in found
                     if len(words) <= MAX_FUZZY_WORDS])
    if isinstance(node, Not):
        return None
    if isinstance(node, Near):
        sides = [_index_query(node.left, aliases, threshold, fuzzy, regex, prefixed, fields),
                 _index_query(node.right, aliases, threshold, fuzzy, regex, prefixed, fields)]
        return _all([s for s in sides if s is not None])
    if isinstance(node, And):
        kids = [_index_query(c, aliases, threshold, fuzzy, regex, prefixed, fields)
                for c in node.children]
        return _all([k for k in kids if k is not None])
    if isinstance(node, Or):
        kids = [_index_query(c, aliases, threshold, fuzzy, regex, prefixed, fields)
                for c in node.children]
        if any(k is None for k in kids):
            return None
        return _any([k for k in kids if k is not None])
    return None


def places_query(node: Node, aliases: Aliases, threshold: float = DEFAULT_THRESHOLD,
                 fuzzy: FuzzyKeys | None = None,
                 regex: RegexWords | None = None,
                 prefixed: PrefixWords | None = None, *, marks: bool = False) -> str | None:
    """:func:`index_query` for the places index (:func:`places_of`): the same superset of the
    articles ``node`` matches, narrower where words' places tell more than their presence.

    A ``title:`` or ``text:`` term looks in that field's columns alone. A phrase's words in a
    row are looked for side by side in a field's keys in order, and a NEAR of two words or
    phrases as FTS5's NEAR of them there (``NEAR/n`` is at most n places apart, so at most
    n - 1 words between, which FTS5 counts; leaving a word out of the order never adds any)
    — or, since a compound stands out of the order (``cyber-attack``'s parts are in it,
    ``cyberattack`` is among the other words), as the words anywhere with one of them among
    the field's other words. A phrase word that is
    not a plain word (a prefix, a fuzzy term, a word without a key) splits the phrase: each
    side is looked for on its own, and the word as a term. An aliased word is each of its
    spellings (up to :data:`MAX_SPELLINGS` for the phrase). Everything else is
    :func:`index_query`'s.

    With ``marks``, a regex that needs a digit, whitespace and a word (:func:`number_runs`)
    also asks for the word's number mark (:data:`MARK`) among the field's other words: a
    query only for a places index whose every row is its article's places (a row placed by
    its words alone holds no marks), built with keys version 6 or later
    (``watchers.store.sqlite.schema.MARKS_KEYS_VERSION``)."""
    return _Places(aliases, threshold, fuzzy, regex, prefixed, marks).query(node)


def _colset(cols: Sequence[str]) -> str:
    return "{" + " ".join(cols) + "}"


def _spellings(word: Term, aliases: Aliases) -> list[str] | None:
    """The keys a plain phrase word is written as, or None for any other word."""
    if word.kind != "word" or not word.key:
        return None
    keys = sorted({word.key} | aliases.of(word.key))
    if any(not k or any(c.isspace() for c in k) for k in keys):
        return None
    return keys


class _Places:
    def __init__(self, aliases: Aliases, threshold: float, fuzzy: FuzzyKeys | None,
                 regex: RegexWords | None, prefixed: PrefixWords | None,
                 marks: bool = False) -> None:
        self.marks = marks
        self.aliases = aliases
        self.threshold = threshold
        self.fuzzy = fuzzy
        self.regex = regex
        self.prefixed = prefixed

    def _plain(self, node: Node) -> str | None:
        return _index_query(node, self.aliases, self.threshold, self.fuzzy, self.regex,
                            self.prefixed, _INDEXED)

    @staticmethod
    def _fields(field: str | None) -> list[tuple[str, str]]:
        return list(_PLACE_COLS.values()) if field is None else [_PLACE_COLS[field]]

    def _in(self, field: str | None, query: str | None) -> str | None:
        """``query`` (of words anywhere) in ``field``'s columns only."""
        if query is None or query == NOTHING or field is None:
            return query
        return f"{_colset(_PLACE_COLS[field])} : {query}"

    def query(self, node: Node) -> str | None:
        if isinstance(node, Term | Phrase | Regex) and node.field not in _INDEXED:
            return None
        if isinstance(node, Term):
            return self._term(node, node.field)
        if isinstance(node, Regex):
            plain = self._in(node.field, self._plain(node))
            from .index import number_runs

            runs = number_runs(node.pattern) if self.marks else None
            if runs is None:
                return plain
            more = _colset([more for _, more in self._fields(node.field)])
            marked = f"{more} : " + _any([_q(MARK + r[:MARK_CHARS]) + "*" for r in runs])
            return _all([q for q in (plain, marked) if q is not None])
        if isinstance(node, Phrase):
            return self._phrase(node)
        if isinstance(node, Near):
            return self._near(node)
        if isinstance(node, And):
            kids = [self.query(c) for c in node.children]
            found = _all([k for k in kids if k is not None])
            if found is None or found == NOTHING:
                return found
            # A negated word every match lacks: no article whose keys in order hold it
            # matches (those keys are tokens the matcher reads), so FTS5 leaves them out.
            lacking = [q for c in node.children if isinstance(c, Not)
                       and (q := self._surely(c.child)) is not None]
            if lacking:
                return f"({found} NOT {_any(lacking)})"
            return found
        if isinstance(node, Or):
            kids = [self.query(c) for c in node.children]
            if any(k is None for k in kids):
                return None
            return _any([k for k in kids if k is not None])
        return None  # Not

    def _term(self, word: Term, field: str | None) -> str | None:
        if word.kind == "word" and word.key:
            return self._in(field, self._word(word))
        return self._in(field, self._plain(word))

    def _word(self, word: Term) -> str:
        """A word (of any field): its keys, and a closed compound written apart ("cyber
        attack") as the two words side by side."""
        keys = sorted({word.key} | self.aliases.of(word.key))
        parts = [_q(k) for k in keys]
        for a, b in compound_splits(word.key):
            both = sorted({a, b})
            parts.append(f"({_colset(('title', 'text'))} : {_q(a + ' ' + b)} OR "
                         f"({_q(a)} AND {_q(b)} AND {_colset(('title_more', 'text_more'))} : "
                         f"{_any([_q(k) for k in both])}))")
        return _any(parts)

    def _surely(self, node: Node) -> str | None:
        """A query only articles ``node`` matches match (their keys in order hold one of its
        words' spellings), or None: a word, or an OR of words."""
        if isinstance(node, Term):
            keys = _spellings(node, self.aliases)
            if keys is None or node.field not in _INDEXED:
                return None
            cols = [order for order, _ in self._fields(node.field)]
            return f"{_colset(cols)} : {_any([_q(k) for k in keys])}"
        if isinstance(node, Or):
            kids = [self._surely(c) for c in node.children]
            if any(k is None for k in kids):
                return None
            return _any([k for k in kids if k is not None])
        return None

    def _phrase(self, node: Phrase) -> str | None:
        if node.slop or len(node.words) < 2:
            return _all([q for w in node.words if (q := self._term(w, node.field)) is not None])
        parts: list[str | None] = []
        run: list[tuple[Term, list[str]]] = []
        for word in [*node.words, None]:
            keys = _spellings(word, self.aliases) if word is not None else None
            if keys is not None and word is not None:
                run.append((word, keys))
                continue
            if len(run) == 1:
                parts.append(self._term(run[0][0], node.field))
            elif run:
                parts.append(self._in_order([keys for _, keys in run],
                                            [w for w, _ in run], node.field, None))
            run = []
            if word is not None:
                parts.append(self._term(word, node.field))
        return _all([p for p in parts if p is not None])

    def _in_order(self, sides: list[list[str]], words: list[Term], field: str | None,
                  near: tuple[int, int] | None) -> str | None:
        """Words side by side (``near`` None: each of ``sides`` one word's spellings) or two
        runs of them within a distance (``near``: (words of the left run, distance)), in the
        field's keys in order, or anywhere with one of them among its other words."""
        anywhere = _all([q for w in words if (q := self._term(w, field)) is not None])
        if prod(map(len, sides)) > MAX_SPELLINGS or anywhere == NOTHING:
            return anywhere
        if near is None:
            ordered = _any([_q(" ".join(c)) for c in product(*sides)])
        else:
            split, distance = near
            ordered = _any([f"NEAR({_q(' '.join(c[:split]))} {_q(' '.join(c[split:]))}, "
                            f"{distance})" for c in product(*sides)])
        fields = self._fields(field)
        order_cols = [order for order, _ in fields]
        more_cols = [more for _, more in fields]
        every = sorted({w for keys in sides for k in keys for w in k.split()})
        outside = f"{_colset(more_cols)} : {_any([_q(k) for k in every])}"
        rest = _all([p for p in (anywhere, outside) if p is not None])
        return f"({_colset(order_cols)} : {ordered} OR {rest})"

    def _near(self, node: Near) -> str | None:
        left, right = self._run(node.left), self._run(node.right)
        plain = [self.query(node.left), self.query(node.right)]
        if left is None or right is None or left[0] != right[0]:
            return _all([p for p in plain if p is not None])
        field = left[0]
        lkeys = {w for keys in left[1] for k in keys for w in k.split()}
        rkeys = {w for keys in right[1] for k in keys for w in k.split()}
        if not lkeys.isdisjoint(rkeys):
            # A word on both sides may be one token for both: FTS5's NEAR wants two.
            return _all([p for p in plain if p is not None])
        return self._in_order([*left[1], *right[1]], [*left[2], *right[2]], field,
                              (len(left[1]), node.distance - 1))

    def _run(self, side: Node) -> tuple[str | None, list[list[str]], list[Term]] | None:
        """A NEAR side as (field, each word's spellings, the words): a plain word (not a
        compound also found written apart: that is two tokens) or a phrase of plain words."""
        if isinstance(side, Term):
            keys = _spellings(side, self.aliases)
            if keys is None or side.field not in _INDEXED:
                return None
            # A closed compound written apart is two words side by side: a phrase of them.
            return side.field, [keys + [f"{a} {b}" for a, b in compound_splits(side.key)]], [side]
        if isinstance(side, Phrase) and not side.slop and side.field in _INDEXED:
            spelt = [_spellings(w, self.aliases) for w in side.words]
            if any(s is None for s in spelt):
                return None
            return side.field, [s for s in spelt if s is not None], list(side.words)
        return None


def regex_runs(pattern: str) -> list[list[str]] | None:
    """Sets of strings such that every article ``pattern`` matches in its title or text holds,
    for each set, an index word containing one of its strings; or None.

    Each set stands for literals the pattern requires one of (see
    :func:`~watchers.rules.index.required_literal_sets`; all the sets at once): each literal's
    longest run of three or more ASCII letters and digits. Such a run of a text is inside one
    word, whose index words (lower-cased, accents stripped, apostrophes and hyphens removed)
    keep it whole; :meth:`Vocabulary.containing` allows for the letters the regex engine folds
    to ASCII. A set with a literal too short to narrow anything is left out.
    """
    from .index import required_literal_sets

    found = required_literal_sets(pattern)
    if found is None:
        return None
    sets = []
    for literals in found:
        runs = [_RUN.findall(lit) for lit in literals]
        if runs and all(runs):
            sets.append(sorted({max(r, key=len) for r in runs}))
    return sets or None


# Seconds a row screen may spend on one statement's rows (a page of candidates, while the
# statement holds the store's connection), and on one row, all its regexes together: past
# them rows pass unscreened, and the matcher, with its own budget, decides.
SCREEN_PAGE_SECONDS = 0.05
SCREEN_ROW_SECONDS = 0.01


class RowScreen:
    """A test of a candidate's stored title and text that every article the lookup's query
    matches passes: its regexes that every match needs (see :func:`regex_screen`).

    A store may run it where it reads the candidates (SQLite, in the statement), so that
    those that fail are never made into articles nor matched: a regex's candidates are the
    articles holding its literals' words anywhere, and most of those may not match it
    (``/\\d+ pause/``: 8,522 candidates, none a match). A field is read as the matcher reads
    it (:func:`~watchers.models.matchable`): cut to what rules see, a span must be non-empty.
    Time-boxed: a row whose regex runs out of :data:`SCREEN_ROW_SECONDS`, and every row once
    a statement's rows took :data:`SCREEN_PAGE_SECONDS`, passes. Not thread-safe: one
    statement at a time (a store's connection runs one).
    """

    __slots__ = ("_spent", "tree")

    def __init__(self, tree: tuple[Any, ...]) -> None:
        # ("regex", pattern, fields) | ("all", [tree, ...]) | ("any", [tree, ...])
        self.tree = tree
        self._spent = 0.0

    def start(self) -> None:
        """A statement begins: its time is counted afresh."""
        self._spent = 0.0

    def passes(self, title: str | None, text: str | None) -> bool:
        left = SCREEN_PAGE_SECONDS - self._spent
        if left <= 0:
            return True
        begun = time.perf_counter()
        fields = {"title": storable(readable(title or ""))[:MAX_MATCH_TITLE_CHARS],
                  "text": storable(readable(text or ""))[:MAX_MATCH_CHARS]}
        try:
            # One deadline for the row, whatever its regexes: each was given the row's time
            # and a thousand of them held the connection for twenty seconds.
            return self._passes(self.tree, fields, begun + min(SCREEN_ROW_SECONDS, left))
        except TimeoutError:
            return True  # out of time: the matcher decides
        finally:
            self._spent += time.perf_counter() - begun

    def _passes(self, tree: tuple[Any, ...], fields: dict[str, str], deadline: float) -> bool:
        kind = tree[0]
        if kind == "all":
            return all(self._passes(t, fields, deadline) for t in tree[1])
        if kind == "any":
            return any(self._passes(t, fields, deadline) for t in tree[1])
        from .matcher import _compiled_regex

        rx = _compiled_regex(tree[1])
        for field in tree[2]:
            value = fields[field]
            if not value:
                continue
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError
            if any(m.end() > m.start() for m in rx.finditer(value, timeout=left)):
                return True
        return False


def regex_screen(node: Node) -> RowScreen | None:
    """The :class:`RowScreen` of the regexes of titles and texts that every match of ``node``
    needs (in an AND, all of its children's; an OR, when each child has one), or None when
    no such regex is needed (a negated regex, or one of a link or a source name, needs none).
    """
    tree = _screen_tree(node)
    return None if tree is None else RowScreen(tree)


def _screen_tree(node: Node) -> tuple[Any, ...] | None:
    if isinstance(node, Regex):
        if node.field is None:
            return ("regex", node.pattern, ("title", "text"))
        if node.field in ("title", "text"):
            return ("regex", node.pattern, (node.field,))
        return None
    if isinstance(node, And):
        kids = [t for t in map(_screen_tree, node.children) if t is not None]
        if not kids:
            return None
        return kids[0] if len(kids) == 1 else ("all", kids)
    if isinstance(node, Or):
        some = [_screen_tree(c) for c in node.children]
        kids = [t for t in some if t is not None]
        return ("any", kids) if len(kids) == len(some) else None
    return None


def own_key(word: str) -> bool:
    """Whether an index word may be some word's key: it is its own (a norm whose key is
    another word, ``britains`` of ``britain``, is none) or not one word alone.

    A fuzzy term is compared with the keys of an article's words, never their other norms:
    an index word that is only a norm adds articles the matcher refuses (``briain~`` took
    ``britains``, whose key ``britain`` it does not match, and read 473 articles to refuse
    them), and an article whose key the term matches holds that key among its index words.
    Keys are their own keys (every one of a year of news's 1.2 million words)."""
    keys = FieldText.of(word).keys
    return len(keys) != 1 or keys[0] == word


def fuzzy_terms(node: Node, threshold: float = DEFAULT_THRESHOLD) -> set[tuple[str, float]]:
    """Every fuzzy term of ``node`` as (key, threshold), NOT and phrases included: the keys of
    the ``fuzzy_candidates`` a matcher reads (see :func:`~watchers.rules.match_query`)."""
    from .index import _fuzzy_terms

    found: set[Any] = set()
    _fuzzy_terms(node, float(threshold), found)
    return {(t.key, t.threshold) for t in found}


# Fuzzy terms whose expansion a Vocabulary keeps (see Vocabulary.matching).
_EXPANDED_MAX = 256

# A fuzzy term's candidates in a large vocabulary are screened by counting letters before
# rapidfuzz compares them (see _LetterCounts): a year of news holds a million words and more
# (names above all), and comparing each with the term took 0.3 s a fuzzy term, a third of it
# for anagrams alone. Below this many words the comparisons are cheap and nothing is counted.
_SCREEN_FROM = 50_000
# The characters counted: a–z and 0–9 each on its own, any other in one slot.
_SLOTS = 37
_COUNT_CHUNK = 100_000  # strings counted at a time (the counting's scratch is 8 bytes a slot)


class _LetterCounts:
    """How many times each character (a–z, 0–9, any other as one) occurs in each of a list of
    strings, and their lengths, in numpy arrays: an upper bound on the longest common
    subsequence of any string with a key, so on its normalised Indel similarity (twice that
    over the two lengths), for the whole list at once. A string the bound turns away cannot
    reach the cutoff; rapidfuzz compares those it keeps. 38 bytes a string."""

    def __init__(self, np: Any) -> None:
        self.np = np
        slot = np.full(129, _SLOTS - 1, dtype=np.intp)  # code points 128 and up: "other"
        for i, c in enumerate("abcdefghijklmnopqrstuvwxyz0123456789"):
            slot[ord(c)] = i
        self.slot = slot
        # One row per character, one column per string: a character's counts are contiguous,
        # read in one pass each.
        self.counts = np.zeros((_SLOTS, 0), dtype=np.uint8)
        self.lengths = np.zeros(0, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.lengths)

    def extend(self, strings: Sequence[str]) -> None:
        np = self.np
        counts, lengths = [self.counts], [self.lengths]
        for at in range(0, len(strings), _COUNT_CHUNK):
            chunk = strings[at:at + _COUNT_CHUNK]
            sizes = np.fromiter(map(len, chunk), dtype=np.intp, count=len(chunk))
            points = np.frombuffer("".join(chunk).encode("utf-32-le"), dtype=np.uint32)
            owner = np.repeat(np.arange(len(chunk), dtype=np.intp), sizes)
            flat = np.bincount(owner * _SLOTS + self.slot[np.minimum(points, 128)],
                               minlength=len(chunk) * _SLOTS)
            counts.append(np.minimum(flat, 255).astype(np.uint8).reshape(-1, _SLOTS).T)
            lengths.append(sizes.astype(np.int32))
        self.counts = np.ascontiguousarray(np.concatenate(counts, axis=1))
        self.lengths = np.concatenate(lengths)

    def reaching(self, key: str, cutoff: float, start: int) -> Any:
        """The numbers (from ``start`` on) of the strings whose bound reaches ``cutoff``."""
        np = self.np
        wanted: dict[int, int] = {}
        for char in key:
            i = int(self.slot[min(ord(char), 128)])
            wanted[i] = wanted.get(i, 0) + 1
        lengths = self.lengths[start:]
        common = np.zeros(len(lengths), dtype=np.int32)
        each = np.empty(len(lengths), dtype=np.uint8)
        for row, n in wanted.items():
            # (a count past 255 is kept as 255: a key that long has no cutoff to reach with it)
            np.minimum(self.counts[row, start:], min(n, 255), out=each)
            common += each
        # Generous by a hair: the scorer decides at the edge.
        keep = 2.0 * common + 1e-6 >= cutoff * (lengths + len(key))
        return np.flatnonzero(keep) + start


class Vocabulary:
    """The words a lookup index holds, kept to expand a fuzzy term into the words it matches.

    :meth:`matching` gives exactly the words :func:`~watchers.rules.variants.compare` accepts
    for the term: candidates are the words rapidfuzz finds similar enough, compared as written,
    as transliteration keys (equal keys are similar) and as sorted letters (anagrams: a swap of
    two letters), plus the term's aliases, which together miss no pair ``compare`` accepts
    (the rule index finds candidate tokens for articles the same way); then ``compare``
    decides. Words are added as the index grows (:meth:`extend`); a word that left the index
    only makes a lookup read a candidate the matcher then refuses.

    Three parallel lists of strings and a set, about 250 bytes a word, and the words' stem keys
    sorted (a pointer and a number a word: the string is the word's own unless the word is
    Cyrillic): kept by a process only once it has looked a fuzzy term up.
    """

    def __init__(self, words: Iterable[str] = ()) -> None:
        self.words: list[str] = []
        self.translit: list[str] = []
        self.letters: list[str] = []
        # The words' stem keys (variants.stem_key), sorted, with their numbers: the words a
        # stem may be declined into are a range of it. Words added since it was sorted are
        # looked through as they come, until they are many.
        self._skeys: list[str] = []  # by word number (the word itself, unless Cyrillic)
        self._stems: list[str] = []
        self._stem_words: array[int] = array("q")
        self._stems_upto = 0  # the words sorted into it
        self._sorted: list[str] = []
        self._known: set[str] = set()
        # The words as one string and where each begins (see containing), made when a regex
        # first needs them.
        self._joined = ""
        self._starts: array[int] = array("q")
        # Per fuzzy term (key, threshold): the alias table it was expanded with, how many
        # words the expansion covered, and what it found. A lookup repeated (or paged on) then
        # compares only the words added since: words are only ever appended.
        self._expanded: dict[tuple[str, float], tuple[Aliases | None, int, list[str]]] = {}
        # The words' and their transliteration keys' letter counts (see _LetterCounts), made
        # when a fuzzy term first needs them in a vocabulary of _SCREEN_FROM words or more;
        # None where numpy is missing (every word is then compared).
        self._counted: tuple[_LetterCounts, _LetterCounts] | None = None
        self.extend(words)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self._known

    def extend(self, words: Iterable[str]) -> None:
        known = self._known
        for w in words:
            if not w or w in known:
                continue
            known.add(w)
            self.words.append(w)

    def _prepare(self) -> None:
        # The transliteration keys and sorted letters of words added since: made when a fuzzy
        # term first needs them (a regex or prefix lookup reads the words alone).
        done = len(self.translit)
        if done < len(self.words):
            fresh = self.words[done:]
            self.translit += map(translit_key, fresh)
            self.letters += ("".join(sorted(w)) for w in fresh)

    def _declined(self, stems: Iterable[str]) -> list[str]:
        """The words whose stem key is one of ``stems`` and an ending at most: a superset of
        the words declined from them (``compare`` decides)."""
        words, keys = self.words, self._skeys
        n = len(words)
        if len(keys) < n:
            keys += map(stem_key, words[len(keys):])
        if n - self._stems_upto > max(1000, self._stems_upto // 64):
            order = sorted(range(n), key=keys.__getitem__)
            self._stems = [keys[i] for i in order]
            self._stem_words = array("q", order)
            self._stems_upto = n
        out = []
        sorted_keys, numbers, upto = self._stems, self._stem_words, self._stems_upto
        for stem in stems:
            longest = len(stem) + LONGEST_ENDING
            i = bisect.bisect_left(sorted_keys, stem)
            while i < len(sorted_keys) and sorted_keys[i].startswith(stem):
                if len(sorted_keys[i]) <= longest:
                    out.append(words[numbers[i]])
                i += 1
            out += [words[j] for j in range(upto, n)
                    if keys[j].startswith(stem) and len(keys[j]) <= longest]
        return out

    def starting(self, prefix: str) -> list[str]:
        """The words that start with ``prefix`` (those sorted in order, then those added
        since they were sorted)."""
        words, ordered = self.words, self._sorted
        n = len(words)
        if n - len(ordered) > max(1000, len(ordered) // 64):
            # Sorted again once the words added since are many: a year of news holds a
            # million words, which took a third of a second to sort, and a running service
            # adds a few at every poll.
            ordered = self._sorted = sorted(words)
        out = []
        at = bisect.bisect_left(ordered, prefix)
        while at < len(ordered) and ordered[at].startswith(prefix):
            out.append(ordered[at])
            at += 1
        later = [w for w in words[len(ordered):] if w.startswith(prefix)]
        return sorted(out + later) if later else out

    def containing(self, run: str) -> list[str]:
        """The words that hold ``run`` (lower-case ASCII letters and digits), read as the regex
        engine reads them under IGNORECASE: a dotless or dotted i as i, a long s as s.

        The words are searched as one string (each word, and a word that is not ASCII also
        in its screen form, apart by a character no run holds) rather than one by one: a
        year of news holds a million words, which took 45 ms a run one by one."""
        if not run.isascii() or not run.isalnum():
            raise ValueError(f"a run is ASCII letters and digits, not {run!r}")
        joined, starts = self._joined_words()
        out: list[str] = []
        words = self.words
        find = joined.find
        at = find(run)
        while at >= 0:
            i = bisect.bisect_right(starts, at) - 1
            out.append(words[i])
            at = find(run, starts[i + 1]) if i + 1 < len(starts) else -1
        return out

    def _joined_words(self) -> tuple[str, array[int]]:
        """The words as one string (see :meth:`containing`) and where each begins in it,
        brought up to the words added since."""
        from .index import _screen_form

        done = len(self._starts)
        if done < len(self.words):
            parts = []
            at = len(self._joined)
            starts = self._starts
            for w in self.words[done:]:
                starts.append(at)
                # (a character past U+FFFF, which no run holds, is one that is not: the
                # string keeps two bytes a character rather than four for every word)
                form = w if w.isascii() else _ASTRAL.sub("\ufffd", f"{w}\x00{_screen_form(w)}")
                parts.append(form)
                at += len(form) + 1
            self._joined += "\n".join(parts) + "\n"
        return self._joined, self._starts

    def matching(self, key: str, threshold: float, aliases: Aliases | None) -> list[str]:
        """The words of the vocabulary that the fuzzy term ``key`` matches at ``threshold``."""
        self._prepare()
        sig = (key, threshold)
        kept = self._expanded.get(sig)
        if kept is not None and kept[0] is aliases and kept[1] == len(self.words):
            return list(kept[2])
        start = kept[1] if kept is not None and kept[0] is aliases else 0
        found = self._matching(key, threshold, aliases, start)
        if start:
            found = sorted({*kept[2], *found}) if kept is not None else found
        if len(self._expanded) >= _EXPANDED_MAX:
            self._expanded.clear()
        self._expanded[sig] = (aliases, len(self.words), found)
        return list(found)

    def _matching(self, key: str, threshold: float, aliases: Aliases | None, start: int
                  ) -> list[str]:
        """:meth:`matching` over the words from number ``start`` on."""
        from rapidfuzz import process
        from rapidfuzz.distance import Indel

        words = self.words[start:] if start else self.words
        fresh = set(words) if start else self._known
        cands: set[str] = {key} & fresh
        if aliases is not None:
            cands.update(a for a in aliases.fuzzy_of(key) if a in fresh)
        stems = (aliases.declension_stems(key) if aliases is not None
                 else stems_of((key,), known=False))
        if stems:
            cands.update(w for w in self._declined(stems) if w in fresh)
        # Slack keeps rapidfuzz from turning away a pair exactly at the threshold.
        cutoff = max(0.0, threshold / 100.0 - CUTOFF_SLACK)
        counted = self._counts() if len(self.words) - start >= _SCREEN_FROM else None
        # (sorted letters: an anagram's are the word's own, so its counts are the word's)
        for query, choices, least, screen in (
                (key, self.words, cutoff, 0), (translit_key(key), self.translit, cutoff, 1),
                ("".join(sorted(key)), self.letters, 1.0, 0)):
            numbers: list[int] | None = None
            if counted is None:
                some = choices[start:] if start else choices
            else:
                numbers = counted[screen].reaching(query, least, start).tolist()
                numbers.extend(range(max(start, len(counted[screen])), len(self.words)))
                some = [choices[i] for i in numbers]
            for _, _, i in process.extract(query, some, scorer=Indel.normalized_similarity,
                                           score_cutoff=least, limit=None):
                cands.add(self.words[numbers[i] if numbers is not None else start + i])
        return sorted(w for w in cands if compare(key, w, threshold, aliases) is not None)

    def _counts(self) -> tuple[_LetterCounts, _LetterCounts] | None:
        """The letter counts of the words and of their transliteration keys, counted on to the
        words added since when they are many (the rest are compared uncounted)."""
        if self._counted is None:
            try:
                import numpy
            except ImportError:
                return None
            self._counted = (_LetterCounts(numpy), _LetterCounts(numpy))
        words, translit = self._counted
        done = len(words)
        if len(self.words) - done > max(1000, done // 64):
            words.extend(self.words[done:])
            translit.extend(self.translit[done:])
        return self._counted
