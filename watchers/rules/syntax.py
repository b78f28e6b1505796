"""The query language: a tokeniser and a recursive-descent parser that build an AST.

A subset of Lucene plus NEAR::

    troops                      a word (whole word; case, accents, hyphens, plurals folded)
    "security guarantees"       a phrase: the words in order, next to each other
    "nato expansion"~5          a sloppy phrase: all words within 5 extra positions, any order
    sanctions AND russia        both (adjacent terms without an operator are also ANDed)
    russia OR moscow            either
    talks NOT football          ``NOT x`` and ``-x`` exclude; ``+x`` marks a required term
    mobili*                     a prefix
    kyiv~   kyiv~90             fuzzy: spelling variants and typos at the rule's or the given
                                similarity (50 to 100)
    sanctions NEAR/10 russia    both within 10 words of each other, in either order
    title:putin                 a field (title, text, source, url); default: title and text
    /1,?00,?000 (troops|soldiers)/   a regular expression over the raw field text, ignoring case

Operators are uppercase (``AND``, ``OR``, ``NOT``, ``NEAR/n``) as in Lucene; lowercase ``and``
is an ordinary word. Precedence, tightest first: NEAR, NOT/``-``/``+``, AND, OR. A query must
require at least one positive term: ``-football`` alone, or ``a OR -b``, is an error, since it
would match nearly every article.

What a word matches: the same key (see :mod:`.text`), the names the alias table gives as the
same (``kyiv`` finds "Kiev" and "Київ"), and a closed compound written apart (``cyberattack``
finds "cyber attack"). A fuzzy word (``~``) also takes transliterations and typos, but not a
different common word (see :mod:`.variants`). Words inside phrases may carry ``~`` or ``*``
(``"kiev~ talks"``). A word such as ``U.S.-led`` that splits into several words is a phrase.

Invariant: :func:`parse` either returns an AST or raises :class:`QuerySyntaxError` with a 1-based
column inside the query (or just past its end), whatever the input; it never raises anything
else and its work is bounded by these limits:

- a query of at most 20,000 characters (``MAX_QUERY_LENGTH``);
- at most 64 levels of nesting (``MAX_NESTING``): parentheses, operators within operators (the
  AST depth, which keeps every recursive walk of the tree far from Python's recursion limit)
  and groups inside a regular expression;
- ``NEAR/n`` with n from 1 to 100 (``MAX_DISTANCE``) and a phrase's ``~n`` from 0 to 100
  (``MAX_SLOP``): past a hundred words, AND says the same thing;
- a fuzzy similarity ``~n`` from 50 to 100, as in the config's threshold;
- no recursion or subroutine calls in a regular expression (``(?R)?a`` exhausts memory);
- a regular expression of at most 2,500 characters once its counted repeats are expanded
  (``MAX_REGEX_SIZE``): the ``regex`` module expands them when compiling, so
  ``(?:a{1000}){1000}`` alone takes a quarter of a gigabyte, and compiling time grows faster
  than the pattern (2,500 characters of groups take tens of milliseconds).

Numbers may be written in any script's decimal digits (``NEAR/٥``), never as superscripts.

Lucene syntax that we do not support is refused rather than read as words, so that a query
pasted from elsewhere never means something other than it says: ``!x`` (use ``NOT x`` or
``-x``), boosts ``x^2`` (rules have a severity instead), ranges ``[a TO b]`` and ``{a TO b}``,
``?`` wildcards (use a ``*`` prefix or ``~`` fuzzy), and unknown fields, including names with
``_`` or ``.`` (``foo_bar:x``, ``a.b:x``). Inside quotes these characters are text, as in
Lucene, except ``?``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from ..errors import QuerySyntaxError
from ..models import visible
from .text import BIDI_CONTROLS, query_words

__all__ = [
    "FIELDS",
    "MAX_DISTANCE",
    "MAX_NESTING",
    "MAX_QUERY_LENGTH",
    "MAX_REGEX_SIZE",
    "MAX_SLOP",
    "And",
    "Near",
    "Node",
    "Not",
    "Or",
    "Phrase",
    "Regex",
    "Term",
    "parse",
]

FIELDS = ("title", "text", "source", "url")
MIN_SIMILARITY = 50
MAX_QUERY_LENGTH = 20_000
MAX_NESTING = 64
MAX_DISTANCE = 100
MAX_SLOP = 100
MAX_REGEX_SIZE = 2_500

TermKind = Literal["word", "prefix", "fuzzy"]


@dataclass(frozen=True, slots=True)
class Term:
    """A single word. ``similarity`` is set for fuzzy terms given as ``word~N``."""

    text: str  # as written, for explanations
    key: str
    norm: str
    kind: TermKind = "word"
    similarity: int | None = None  # None on a fuzzy term: the rule's threshold
    field: str | None = None
    column: int = 1


@dataclass(frozen=True, slots=True)
class Phrase:
    """Words at consecutive positions, or within ``slop`` extra positions in any order."""

    text: str
    words: tuple[Term, ...]
    slop: int = 0
    field: str | None = None
    column: int = 1


@dataclass(frozen=True, slots=True)
class Regex:
    """A regular expression searched in the raw text of a field, ignoring case."""

    pattern: str
    field: str | None = None
    column: int = 1


@dataclass(frozen=True, slots=True)
class Near:
    """Both sides within ``distance`` word positions of each other, in either order."""

    left: Node
    right: Node
    distance: int
    column: int = 1


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]
    column: int = 1


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]
    column: int = 1


@dataclass(frozen=True, slots=True)
class Not:
    child: Node
    column: int = 1


Node = Term | Phrase | Regex | Near | And | Or | Not

# --- lexer --------------------------------------------------------------------------------------

TokKind = Literal[
    "LPAREN",
    "RPAREN",
    "AND",
    "OR",
    "NOT",
    "NEAR",
    "MINUS",
    "PLUS",
    "FIELD",
    "WORD",
    "PHRASE",
    "REGEX",
    "EOF",
]


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: TokKind
    value: str
    column: int  # 1-based
    number: int | None = None  # NEAR distance, fuzzy similarity or phrase slop
    flag: str = ""  # "~" or "*" after a word or phrase


_WORD_CHARS = re.compile(r'[^\s()"]+')
_NEAR = re.compile(r"NEAR(?:/(\S*))?")
_SUFFIX = re.compile(r"~(\d*)")  # \d: decimal digits of any script, which _decimal reads
_FIELD_NAME = re.compile(r"([^\W\d][\w.]*):")  # a name that Lucene would read as a field
_BANG = re.compile(r"^!|!(?=\w)")  # Lucene's NOT: "!x", also inside "a!b"
_BOOST = re.compile(r"\^(?=\.?\d)")
_BOOST_TEXT = re.compile(r"\^\.?\d*(?:\.\d*)?")
_RANGE = re.compile(r"[\[{]")
_REPEAT = re.compile(r"\{([0-9]*)(?:,([0-9]*))?\}")
_SUBROUTINE = re.compile(r"\(\?(?:R\)|[+-]?\d+\)|&|P[>&])|\\g")


def _describe(tok: _Tok) -> str:
    if tok.kind == "EOF":
        return "the end of the query"
    return f"'{_show(tok.value)}'"


def _show(text: str, limit: int = 40) -> str:
    """Text from the query as an error message may quote it: short, and printable anywhere.

    A message may end up in a terminal, a log line or a Discord reply; a lone surrogate or a
    control character would break the first two and a 5,000-character word would swamp them all.
    """
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
        for c in text
    )


def _decimal(digits: str, cap: int) -> int:
    """The value of decimal ``digits`` (any script), or ``cap + 1`` once it exceeds ``cap``.

    Never ``int()`` on the whole string: past 4,300 digits that raises ValueError.
    """
    value = 0
    for ch in digits:
        value = value * 10 + unicodedata.decimal(ch)
        if value > cap:
            return cap + 1
    return value


def _unsupported_bang() -> str:
    return "'!' (Lucene's NOT) is not supported; expected NOT x or -x to exclude a term"


def _unsupported_boost(text: str) -> str:
    return (
        f"boosts such as '{_show(text)}' are not supported (rules have a severity instead); "
        "expected the term without it"
    )


def _unsupported_range() -> str:
    return (
        "ranges such as [a TO b] or {a TO b} are not supported; "
        "expected words joined with OR, or a regular expression /…/"
    )


def _unsupported_wildcard() -> str:
    return (
        "'?' wildcards are not supported; "
        "expected '*' at the end of a word (a prefix) or '~' after it (spelling variants)"
    )


def _unknown_field(name: str) -> str:
    return f"unknown field '{_show(name)}'; expected one of {', '.join(FIELDS)}"


def _too_deep() -> str:
    return (
        f"nesting deeper than {MAX_NESTING} levels; "
        f"expected at most {MAX_NESTING} levels of parentheses and operators within operators"
    )


class _Lexer:
    def __init__(self, query: str) -> None:
        self.query = query
        self.i = 0

    def error(self, message: str, index: int) -> QuerySyntaxError:
        return QuerySyntaxError(message, self.query, index + 1)

    def tokens(self) -> list[_Tok]:
        out: list[_Tok] = []
        q = self.query
        while True:
            while self.i < len(q) and q[self.i].isspace():
                self.i += 1
            if self.i >= len(q):
                out.append(_Tok("EOF", "", len(q) + 1))
                return out
            c = q[self.i]
            start = self.i
            if c == "(":
                out.append(_Tok("LPAREN", c, start + 1))
                self.i += 1
            elif c == ")":
                out.append(_Tok("RPAREN", c, start + 1))
                self.i += 1
            elif c == '"':
                out.append(self._phrase())
            elif c == "/":
                out.append(self._regex())
            elif c in "-+" and self.i + 1 < len(q) and not q[self.i + 1].isspace():
                out.append(_Tok("MINUS" if c == "-" else "PLUS", c, start + 1))
                self.i += 1
            else:
                out.append(self._word())

    def _suffix(self, what: str) -> tuple[str, int | None]:
        """Read ``~`` or ``~N`` after a word or phrase; N is capped at 101 (see _decimal)."""
        q = self.query
        if self.i < len(q) and q[self.i] == "~":
            m = _SUFFIX.match(q, self.i)
            assert m is not None
            digits = m.group(1)
            self.i = m.end()
            if self.i < len(q) and q[self.i] == "^":
                boost = _BOOST_TEXT.match(q, self.i)
                assert boost is not None
                raise self.error(_unsupported_boost(boost.group()), self.i)
            if self.i < len(q) and not q[self.i].isspace() and q[self.i] not in "()":
                raise self.error(f"expected a number after '~' in {what}", m.start() + 1)
            if not digits:
                return "~", None
            return "~", _decimal(digits, 100)
        return "", None

    def _phrase(self) -> _Tok:
        q = self.query
        start = self.i
        end = q.find('"', start + 1)
        if end < 0:
            raise self.error('expected a closing " for the phrase opened', start)
        self.i = end + 1
        flag, number = self._suffix("a phrase")
        if number is not None and number > MAX_SLOP:
            digits = q[end + 2 : self.i]
            raise self.error(
                f"expected at most {MAX_SLOP} extra positions after the phrase's '~', found "
                f"{_show(digits)}; for words anywhere in the text, use AND",
                end + 2,
            )
        return _Tok("PHRASE", q[start + 1 : end], start + 1, number, flag)

    def _regex(self) -> _Tok:
        """A ``/…/`` token; its value is the pattern as written, ``\\/`` still escaped."""
        q = self.query
        start = self.i
        # A '/' inside a character class ("[./]") does not close the pattern; when a class is
        # never closed, the first '/' does, and the compiler reports the unterminated class.
        j = _regex_end(q, start + 1, classes=True)
        if j >= len(q):
            j = _regex_end(q, start + 1, classes=False)
        if j >= len(q):
            raise self.error("expected a closing / for the regular expression opened", start)
        self.i = j + 1
        flags = _REGEX_FLAGS.match(q, self.i)
        if flags:
            # "/troops/i", as JavaScript or PCRE write it, was read as the regex AND a word
            # "i" (which the pronoun I then matched): its meaning changed without a word.
            raise self.error(
                f"expected a space after the regular expression's closing /, not flags "
                f"({flags.group(0)!r}): a regex already ignores case; write other flags inside "
                "it, e.g. /(?s)a.b/", self.i)
        return _Tok("REGEX", q[start + 1 : j], start + 1)

    def _word(self, top: bool = True) -> _Tok:
        """A word, operator or field name. ``top`` is false inside quotes, where Lucene's
        special characters are text (but ``?`` is still refused)."""
        q = self.query
        start = self.i
        # Fields first, reading no further than the colon: "title:title:…" must not rescan the
        # rest of the query for each of its fields.
        named = _FIELD_NAME.match(q, start)
        if named:
            name = named.group(1)
            if top and (name.isalpha() or "_" in name or "." in name):
                if name.lower() not in FIELDS:
                    raise self.error(_unknown_field(name), start)
                self.i = named.end()
                if self.i >= len(q) or q[self.i].isspace() or q[self.i] == ")":
                    raise self.error(f"expected a term after '{name}:'", self.i)
                return _Tok("FIELD", name.lower(), start + 1)
        m = _WORD_CHARS.match(q, self.i)
        assert m is not None
        raw = m.group()
        if raw in ("AND", "OR", "NOT", "&&", "||"):
            self.i = m.end()
            kind: TokKind = (
                "AND" if raw in ("AND", "&&") else "OR" if raw in ("OR", "||") else "NOT"
            )
            return _Tok(kind, raw, start + 1)
        near = _NEAR.fullmatch(raw)
        if near:
            self.i = m.end()
            arg = near.group(1)
            if arg is None or not arg.isdecimal():
                raise self.error(
                    f"expected a distance such as NEAR/5 (a whole number from 1 to "
                    f"{MAX_DISTANCE}), found '{_show(raw)}'",
                    start,
                )
            distance = _decimal(arg, MAX_DISTANCE)
            if not 1 <= distance <= MAX_DISTANCE:
                hint = "; for words anywhere in the text, use AND" if distance else ""
                raise self.error(
                    f"expected a distance such as NEAR/5 (a whole number from 1 to "
                    f"{MAX_DISTANCE}), found '{_show(raw)}'{hint}",
                    start,
                )
            return _Tok("NEAR", raw, start + 1, distance)
        # A word ends before a ~ suffix so that "kyiv~90" reads as word + similarity.
        tilde = raw.find("~")
        end = start + (tilde if tilde >= 0 else len(raw))
        word = q[start:end]
        if top:
            self._refuse_lucene(word, start)
        if "?" in word:
            raise self.error(_unsupported_wildcard(), start + word.find("?"))
        if not word:
            raise self.error("expected a word before '~'", start)
        self.i = end
        flag, number = self._suffix(f"'{_show(word)}~'")
        if number is not None and not MIN_SIMILARITY <= number <= 100:
            raise self.error(
                f"expected a similarity from {MIN_SIMILARITY} to 100 after '~', found "
                f"{_show(q[end + 1 : self.i])}",
                end + 1,
            )
        if word.endswith("*"):
            if flag:
                raise self.error("expected either '*' or '~' after a word, not both", end)
            body = word.rstrip("*")
            if "*" in body:
                raise self.error("expected '*' only at the end of a word", start + word.find("*"))
            if not body:
                raise self.error("expected letters before '*'", start)
            return _Tok("WORD", body, start + 1, None, "*")
        if "*" in word:
            raise self.error("expected '*' only at the end of a word", start + word.find("*"))
        return _Tok("WORD", word, start + 1, number, flag)

    def _refuse_lucene(self, word: str, start: int) -> None:
        """Refuse Lucene syntax that would otherwise be read as punctuation inside a word."""
        found: list[tuple[int, str]] = []
        if bang := _BANG.search(word):
            found.append((bang.start(), _unsupported_bang()))
        if boost := _BOOST.search(word):
            text = _BOOST_TEXT.match(word, boost.start())
            assert text is not None
            found.append((boost.start(), _unsupported_boost(text.group())))
        if bracket := _RANGE.search(word):
            found.append((bracket.start(), _unsupported_range()))
        if found:
            at, message = min(found)
            raise self.error(message, start + at)


# --- parser -------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.toks = _Lexer(query).tokens()
        self.i = 0
        self.depth = 0  # open parentheses, bounded so that recursion stays shallow
        # The field of the innermost "field:(…)" group: its terms take it as they are built,
        # rather than the group being rebuilt at every level (quadratic when groups nest).
        self.group_field: str | None = None

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def at(self, *kinds: TokKind) -> bool:
        return self.toks[self.i].kind in kinds

    def advance(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def error(self, message: str, tok: _Tok) -> QuerySyntaxError:
        return QuerySyntaxError(message, self.query, tok.column)

    def parse(self) -> Node:
        if self.at("EOF"):
            raise self.error("expected a term: the query is empty", self.tok)
        node = self.or_expr()
        if self.at("RPAREN"):
            raise self.error("unbalanced ')': expected a term or operator before it", self.tok)
        if not self.at("EOF"):
            raise self.error(
                f"expected an operator or the end, found {_describe(self.tok)}", self.tok
            )
        return node

    def or_expr(self) -> Node:
        first = self.tok
        children = [self.and_expr()]
        while self.at("OR"):
            op = self.advance()
            self.expect_operand(op)
            children.append(self.and_expr())
        return children[0] if len(children) == 1 else Or(tuple(children), first.column)

    def and_expr(self) -> Node:
        first = self.tok
        children = [self.unary()]
        while True:
            if self.at("AND"):
                op = self.advance()
                self.expect_operand(op)
            elif self.at("NOT"):
                pass  # "a NOT b" is "a AND NOT b", as in Lucene
            elif not self.at(
                "LPAREN",
                "MINUS",
                "PLUS",
                "FIELD",
                "WORD",
                "PHRASE",
                "REGEX",
            ):
                break
            children.append(self.unary())
        return children[0] if len(children) == 1 else And(tuple(children), first.column)

    def expect_operand(self, op: _Tok) -> None:
        if self.at("EOF", "RPAREN", "AND", "OR", "NEAR"):
            raise self.error(f"expected a term after {_show(op.value)}", self.tok)

    def unary(self) -> Node:
        tok = self.tok
        if tok.kind in ("NOT", "MINUS"):
            self.advance()
            self.expect_operand(tok)
            if self.at("NOT", "MINUS", "PLUS"):
                raise self.error(f"expected a term after {tok.value}", self.tok)
            return Not(self.unary(), tok.column)
        if tok.kind == "PLUS":
            self.advance()
            self.expect_operand(tok)
            if self.at("NOT", "MINUS", "PLUS"):
                raise self.error(f"expected a term after {tok.value}", self.tok)
            return self.unary()
        return self.near()

    def near(self) -> Node:
        left = self.primary()
        chain = 0
        while self.at("NEAR"):
            op = self.advance()
            chain += 1
            if chain > MAX_NESTING:
                raise self.error(_too_deep(), op)
            if not self.at("WORD", "PHRASE", "FIELD", "LPAREN"):
                raise self.error(f"expected a word or phrase after {_show(op.value)}", self.tok)
            right = self.primary()
            for side, at in ((left, op), (right, op)):
                if not _positional(side):
                    raise self.error(
                        "expected words, phrases or an OR of them on both sides of "
                        + _show(op.value),
                        at,
                    )
            assert op.number is not None
            left = Near(left, right, op.number, op.column)
        return left

    def primary(self) -> Node:
        tok = self.tok
        explicit: str | None = None
        # A loop, not recursion: "title:title:…:x" may repeat a field thousands of times.
        while tok.kind == "FIELD":
            self.advance()
            if explicit is not None and explicit != tok.value:
                raise self.error(f"expected a term, found a second field '{tok.value}:'", tok)
            if self.group_field is not None and self.group_field != tok.value:
                raise self.error(
                    f"expected terms of field '{self.group_field}', found '{tok.value}:'", tok
                )
            if self.at("EOF", "RPAREN", "AND", "OR", "NOT", "NEAR"):
                raise self.error(f"expected a term after '{tok.value}:'", self.tok)
            explicit = tok.value
            tok = self.tok
        field = explicit or self.group_field
        if tok.kind == "LPAREN":
            if self.depth >= MAX_NESTING:
                raise self.error(_too_deep(), tok)
            self.advance()
            if self.at("RPAREN"):
                raise self.error("expected a term inside the parentheses", self.tok)
            if self.at("EOF"):
                raise self.error("expected a term and a closing ')'", self.tok)
            self.depth += 1
            outer, self.group_field = self.group_field, field
            node = self.or_expr()
            self.depth -= 1
            self.group_field = outer
            if not self.at("RPAREN"):
                if self.at("EOF"):
                    raise self.error(
                        f"expected ')' to match the '(' in column {tok.column}", self.tok
                    )
                raise self.error(
                    f"expected ')' or an operator, found {_describe(self.tok)}", self.tok
                )
            self.advance()
            return node
        if tok.kind == "WORD":
            self.advance()
            return self.word(tok, field)
        if tok.kind == "PHRASE":
            self.advance()
            return self.phrase(tok, field)
        if tok.kind == "REGEX":
            self.advance()
            return self.regex(tok, field)
        if tok.kind == "RPAREN":
            raise self.error("unbalanced ')': expected a term before it", tok)
        if tok.kind == "EOF":
            raise self.error("expected a term at the end of the query", tok)
        raise self.error(f"expected a term, found {_describe(tok)}", tok)

    def similarity(self, tok: _Tok) -> int | None:
        if tok.number is not None and not MIN_SIMILARITY <= tok.number <= 100:
            raise self.error(
                f"expected a similarity from {MIN_SIMILARITY} to 100 after '~', found {tok.number}",
                tok,
            )
        return tok.number

    def word(self, tok: _Tok, field: str | None) -> Node:
        words = query_words(tok.value)
        if not words:
            raise self.error(
                f"expected a word with letters or digits, found '{_show(tok.value)}'", tok
            )
        if tok.flag == "*":
            if len(words) > 1:
                raise self.error("expected a single word before '*'", tok)
            k, n = words[0]
            return Term(tok.value + "*", k, n, "prefix", None, field, tok.column)
        kind: TermKind = "fuzzy" if tok.flag == "~" else "word"
        sim = self.similarity(tok) if kind == "fuzzy" else None
        text = tok.value + ("~" + (str(sim) if sim is not None else "") if kind == "fuzzy" else "")
        if len(words) == 1:
            k, n = words[0]
            return Term(text, k, n, kind, sim, field, tok.column)
        # "U.S.-led" or "9/11" split into words: they must appear as a phrase.
        terms = tuple(Term(n, k, n, kind, sim, field, tok.column) for k, n in words)
        return Phrase(text, terms, 0, field, tok.column)

    def phrase(self, tok: _Tok, field: str | None) -> Node:
        slop = tok.number if tok.flag == "~" and tok.number is not None else 0
        if tok.flag == "~" and tok.number is None:
            raise self.error("expected a number of positions after the phrase's '~'", tok)
        terms: list[Term] = []
        # Words inside a phrase may carry their own ~ or * (e.g. "kiev~ talks").
        for m in re.finditer(r"[^\s()]+", tok.value):
            col = tok.column + 1 + m.start()
            raw = m.group()
            # A pasted headline's punctuation is text: a mark between words ("war - live",
            # "Tom & Jerry", "« Zelensky »") is passed over, as phrases read across it, and a
            # question mark after a word ends it ("the end?"); each was refused.
            if not _HAS_ALNUM.search(raw):
                continue
            raw = _END_QUESTION.sub("", raw)
            sub = _Lexer(raw)
            try:
                inner = sub._word(top=False)
            except QuerySyntaxError as exc:
                raise QuerySyntaxError(exc.message, self.query, col + exc.column - 1) from None
            if sub.i != len(raw):
                raise QuerySyntaxError("expected a word inside the phrase", self.query, col)
            inner = _Tok(inner.kind, inner.value, col, inner.number, inner.flag)
            node = self.word(inner, field)
            if isinstance(node, Phrase):
                terms.extend(node.words)
            else:
                assert isinstance(node, Term)
                terms.append(node)
        if not terms:
            raise self.error("expected words inside the quotes", tok)
        text = f'"{tok.value}"' + (f"~{slop}" if slop else "")
        if len(terms) == 1:
            t = terms[0]
            return Term(
                text if t.kind == "word" else t.text,
                t.key,
                t.norm,
                t.kind,
                t.similarity,
                field,
                tok.column,
            )
        return Phrase(text, tuple(terms), slop, field, tok.column)

    def regex(self, tok: _Tok, field: str | None) -> Node:
        if not tok.value:
            raise self.error("expected a pattern between the slashes", tok)
        # The size check runs on the text as written, so its columns are the query's.
        _check_regex_size(tok.value, tok.column + 1, self.query)
        pattern = tok.value.replace("\\/", "/")
        import regex as rx  # only queries with a regex pay for loading the module

        try:
            rx.compile(pattern, rx.IGNORECASE | rx.V0)
        except (rx.error, RecursionError, OverflowError, ValueError) as exc:
            raise self.error(
                f"bad regular expression ({_show(str(exc), 80)}); expected a valid pattern", tok
            ) from None
        if _matches_only_empty(pattern):
            # Only non-empty matches count: such a pattern never matches, and a search for it
            # read every stored article until its time ran out.
            raise self.error(
                "the regular expression matches only empty text, so nothing would ever match; "
                "expected a pattern that matches some characters", tok)
        return Regex(pattern, field, tok.column)


def _matches_only_empty(pattern: str) -> bool:
    """Whether every match of ``pattern`` is empty (``/(?#note)/``, ``/^$/``, ``/\\b/``), as
    Python's own parser measures it; False where it cannot read the pattern (a construct of
    the regex module alone), which is then searched as written."""
    import re._parser as sre_parse  # type: ignore[import-not-found,unused-ignore]

    try:
        return bool(sre_parse.parse(pattern, re.IGNORECASE).getwidth()[1] == 0)
    except (re.error, RecursionError, OverflowError, ValueError, TypeError):
        return False


def _positional(node: Node) -> bool:
    if isinstance(node, Term | Phrase | Near):
        return True
    if isinstance(node, Or):
        return all(_positional(c) for c in node.children)
    return False


def _check_positive(node: Node, query: str) -> None:
    """Refuse queries that any article lacking a word would match."""
    _check_or_branches(node, query)
    if not _requires_positive(node):
        raise QuerySyntaxError(
            "a query needs at least one positive term; expected a term that must appear",
            query,
            len(query) - len(query.lstrip()) + 1,  # its first term, after any spaces
        )


def _requires_positive(node: Node) -> bool:
    if isinstance(node, Not):
        return False
    if isinstance(node, And):
        return any(_requires_positive(c) for c in node.children)
    if isinstance(node, Or):
        return all(_requires_positive(c) for c in node.children)
    return True


def _check_or_branches(node: Node, query: str) -> None:
    if isinstance(node, Or):
        for child in node.children:
            if not _requires_positive(child):
                raise QuerySyntaxError(
                    "each side of OR needs a positive term; expected a term that must appear",
                    query,
                    child.column,
                )
    if isinstance(node, And | Or):
        for child in node.children:
            _check_or_branches(child, query)
    elif isinstance(node, Not):
        _check_or_branches(node.child, query)


def _check_depth(node: Node, query: str) -> None:
    """Refuse a tree deeper than MAX_NESTING, pointing at the first node past the limit.

    Iterative, since the point is to protect the recursive walks (here, in the matcher and in
    the index) from a tree deep enough to exhaust the stack.
    """
    stack: list[tuple[Node, int]] = [(node, 1)]
    while stack:
        n, depth = stack.pop()
        if depth > MAX_NESTING:
            raise QuerySyntaxError(_too_deep(), query, n.column)
        if isinstance(n, And | Or):
            stack.extend((c, depth + 1) for c in reversed(n.children))
        elif isinstance(n, Not):
            stack.append((n.child, depth + 1))
        elif isinstance(n, Near):
            stack.append((n.right, depth + 1))
            stack.append((n.left, depth + 1))


def _check_regex_size(raw: str, column: int, query: str) -> None:
    """Refuse a pattern whose compiled form would be huge or whose groups nest too deeply.

    The ``regex`` module expands counted repeats when compiling, so ``(?:a{1000}){1000}`` costs
    a quarter of a gigabyte and one more level exhausts memory; deep groups exhaust its
    recursive compiler. This measures the pattern's length with every ``{m,n}`` applied (what
    it repeats counted ``max(m, n)`` times) without compiling. ``column`` is the query column
    of ``raw[0]``.
    """
    cap = MAX_REGEX_SIZE + 1
    # One frame per open group: [size so far, size of the last element (what a repeat repeats)].
    stack: list[list[int]] = [[0, 0]]
    start = 0

    def element(size: int) -> None:
        frame = stack[-1]
        frame[0] = min(frame[0] + size, cap)
        frame[1] = size

    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        start = i
        if (c == "(" or c == "\\") and _SUBROUTINE.match(raw, i):
            # "(?R)?a" exhausts memory on the first text it meets.
            raise QuerySyntaxError(
                "recursive patterns and subroutine calls ((?R), (?1), (?&name), \\g<name>) are "
                "not supported; expected a pattern without them",
                query,
                column + i,
            )
        if c == "\\":
            # \p{L}, \N{name}: the braces belong to the escape, not a repeat.
            if i + 2 < n and raw[i + 1] in "pPN" and raw[i + 2] == "{":
                close = raw.find("}", i + 3)
                i = n if close < 0 else close + 1
            else:
                i = min(i + 2, n)
            element(i - start)
        elif c == "[":
            i = _class_end(raw, i)
            element(i - start)
        elif c == "(":
            if raw.startswith("(?#", i):
                close = raw.find(")", i)
                i = n if close < 0 else close + 1
                continue
            if len(stack) > MAX_NESTING:
                raise QuerySyntaxError(
                    f"regular expression groups nested deeper than {MAX_NESTING} levels; "
                    f"expected at most {MAX_NESTING}",
                    query,
                    column + i,
                )
            stack.append([1, 0])
            i += 1
        elif c == ")":
            if len(stack) > 1:  # an unbalanced ')' is left to the compiler to report
                element(min(stack.pop()[0] + 1, cap))
            i += 1
        elif c == "{" and (rep := _REPEAT.match(raw, i)) and (rep.group(1) or rep.group(2)):
            count = max(_decimal(g, MAX_REGEX_SIZE) for g in rep.groups() if g)
            frame = stack[-1]
            grown = min(frame[1] * count, cap)
            frame[0] = min(frame[0] + grown - frame[1], cap)
            frame[1] = grown
            if grown > MAX_REGEX_SIZE:
                raise QuerySyntaxError(
                    f"repeat count '{_show(rep.group())}' makes the regular expression too large "
                    f"(over {MAX_REGEX_SIZE} characters once expanded); expected smaller counts",
                    query,
                    column + i,
                )
            i = rep.end()
        else:
            element(1)
            i += 1
        if stack[-1][0] > MAX_REGEX_SIZE:
            raise QuerySyntaxError(
                f"regular expression too large (over {MAX_REGEX_SIZE} characters once repeats are "
                "expanded); expected a shorter pattern",
                query,
                column - 1,
            )


# What JavaScript, PCRE or sed write straight after a pattern's closing '/': flag letters.
_REGEX_FLAGS = re.compile(r"[a-zA-Z]+(?=[\s)]|$)")


def _regex_end(q: str, j: int, *, classes: bool) -> int:
    """The index of the unescaped '/' that closes a pattern starting at ``q[j]``, or len(q)."""
    while j < len(q):
        if q[j] == "\\":
            j += 2
        elif q[j] == "/":
            return j
        elif classes and q[j] == "[":
            j = _class_end(q, j)
        else:
            j += 1
    return len(q)


def _class_end(raw: str, i: int) -> int:
    """The index just past the character class that opens at ``raw[i]``."""
    n = len(raw)
    j = i + 1
    if j < n and raw[j] == "^":
        j += 1
    if j < n and raw[j] == "]":  # a ']' first in the class is a literal
        j += 1
    while j < n:
        if raw[j] == "\\":
            j += 2
        elif raw.startswith("[:", j):
            close = raw.find(":]", j + 2)
            j = n if close < 0 else close + 2
        elif raw[j] == "]":
            return j + 1
        else:
            j += 1
    return n


def parse(query: str) -> Node:
    """Parse a query into its AST, or raise :class:`QuerySyntaxError` naming what was expected.

    Adjacent terms with no operator between them are combined with AND. Nothing else is ever
    raised, whatever the input (see the limits in the module docstring).
    """
    if len(query) > MAX_QUERY_LENGTH:
        raise QuerySyntaxError(
            f"query longer than {MAX_QUERY_LENGTH} characters; expected at most "
            f"{MAX_QUERY_LENGTH} (split it into several rules)",
            query,
            MAX_QUERY_LENGTH + 1,
        )
    if (bidi := BIDI_CONTROLS.search(query)) is not None:
        # Refused, not dropped: the query would be stored and shown as it reads reversed.
        c = bidi.group()
        raise QuerySyntaxError(
            f"U+{ord(c):04X} ({unicodedata.name(c)}) changes the direction text is shown in, "
            "so the query would read otherwise than it matches; expected the query without it",
            query,
            bidi.start() + 1,
        )
    # Dropped as an article's are (models.readable): "Pu\u00adtin", pasted from a German page,
    # was the phrase "pu tin" and found nothing. An error still names the query as written.
    read = visible(query)
    try:
        node = _Parser(read).parse()
        _check_depth(node, read)
        _check_positive(node, read)
    except QuerySyntaxError as exc:
        if read is query:
            raise
        # (a column named in the message too: "the '(' in column 11" for one in column 4)
        message = _IN_COLUMN.sub(
            lambda m: f"in column {_written_column(query, int(m[1]))}", exc.message)
        raise QuerySyntaxError(message, query, _written_column(query, exc.column)) from None
    return node


_IN_COLUMN = re.compile(r"in column (\d+)")
# Inside quotes: a letter or digit, and question marks among a word's closing punctuation.
_HAS_ALNUM = re.compile(r"[^\W_]")
_END_QUESTION = re.compile(r"\?(?=[^\w]*$)")


def _written_column(query: str, column: int) -> int:
    """The column in ``query`` of ``column`` in it without its invisible characters."""
    seen = 0
    for i, c in enumerate(query):
        if visible(c):
            seen += 1
            if seen == column:
                return i + 1
    return len(query) + column - seen
