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
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import regex

from ..errors import QuerySyntaxError
from .text import query_words

__all__ = [
    "FIELDS",
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
_SUFFIX = re.compile(r"~(\d*)")


def _describe(tok: _Tok) -> str:
    if tok.kind == "EOF":
        return "the end of the query"
    return f"'{tok.value}'"


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
        """Read ``~``, ``~N`` or ``*`` after a word or phrase."""
        q = self.query
        if self.i < len(q) and q[self.i] == "~":
            m = _SUFFIX.match(q, self.i)
            assert m is not None
            digits = m.group(1)
            self.i = m.end()
            if self.i < len(q) and not q[self.i].isspace() and q[self.i] not in "()":
                raise self.error(f"expected a number after '~' in {what}", m.start() + 1)
            if not digits:
                return "~", None
            return "~", int(digits)
        return "", None

    def _phrase(self) -> _Tok:
        q = self.query
        start = self.i
        end = q.find('"', start + 1)
        if end < 0:
            raise self.error('expected a closing " for the phrase opened', start)
        self.i = end + 1
        flag, number = self._suffix("a phrase")
        return _Tok("PHRASE", q[start + 1 : end], start + 1, number, flag)

    def _regex(self) -> _Tok:
        q = self.query
        start = self.i
        j = start + 1
        while j < len(q):
            if q[j] == "\\":
                j += 2
                continue
            if q[j] == "/":
                break
            j += 1
        if j >= len(q):
            raise self.error("expected a closing / for the regular expression opened", start)
        self.i = j + 1
        return _Tok("REGEX", q[start + 1 : j].replace("\\/", "/"), start + 1)

    def _word(self) -> _Tok:
        q = self.query
        start = self.i
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
            if arg is None or not arg.isdigit() or int(arg) < 1:
                raise self.error("expected a distance such as NEAR/5 (a whole number ≥ 1)", start)
            return _Tok("NEAR", raw, start + 1, int(arg))
        colon = raw.find(":")
        if colon > 0 and raw[:colon].isalpha():
            name = raw[:colon]
            if name.lower() not in FIELDS:
                raise self.error(
                    f"unknown field '{name}'; expected one of {', '.join(FIELDS)}", start
                )
            self.i = start + colon + 1
            if self.i >= len(q) or q[self.i].isspace() or q[self.i] == ")":
                raise self.error(f"expected a term after '{name}:'", self.i)
            return _Tok("FIELD", name.lower(), start + 1)
        # A word ends before a ~ suffix so that "kyiv~90" reads as word + similarity.
        tilde = raw.find("~")
        end = start + (tilde if tilde >= 0 else len(raw))
        word = q[start:end]
        if not word:
            raise self.error("expected a word before '~'", start)
        self.i = end
        flag, number = self._suffix(f"'{word}~'")
        if number is not None and not MIN_SIMILARITY <= number <= 100:
            raise self.error(
                f"expected a similarity from {MIN_SIMILARITY} to 100 after '~', found {number}",
                end + 1,
            )
        if word.endswith("*"):
            if flag:
                raise self.error("expected either '*' or '~' after a word, not both", end)
            body = word.rstrip("*")
            if "*" in body or "?" in body:
                raise self.error("expected '*' only at the end of a word", start + word.find("*"))
            if not body:
                raise self.error("expected letters before '*'", start)
            return _Tok("WORD", body, start + 1, None, "*")
        if "*" in word or "?" in word:
            bad = min(i for i in (word.find("*"), word.find("?")) if i >= 0)
            raise self.error("expected '*' only at the end of a word", start + bad)
        return _Tok("WORD", word, start + 1, number, flag)


# --- parser -------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.toks = _Lexer(query).tokens()
        self.i = 0

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
            raise self.error(f"expected a term after {op.value}", self.tok)

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
        left = self.primary(None)
        while self.at("NEAR"):
            op = self.advance()
            if not self.at("WORD", "PHRASE", "FIELD", "LPAREN"):
                raise self.error(f"expected a word or phrase after {op.value}", self.tok)
            right = self.primary(None)
            for side, at in ((left, op), (right, op)):
                if not _positional(side):
                    raise self.error(
                        f"expected words, phrases or an OR of them on both sides of {op.value}",
                        at,
                    )
            assert op.number is not None
            left = Near(left, right, op.number, op.column)
        return left

    def primary(self, field: str | None) -> Node:
        tok = self.tok
        if tok.kind == "FIELD":
            self.advance()
            if field is not None and field != tok.value:
                raise self.error(f"expected a term, found a second field '{tok.value}:'", tok)
            if self.at("EOF", "RPAREN", "AND", "OR", "NOT", "NEAR"):
                raise self.error(f"expected a term after '{tok.value}:'", self.tok)
            return self.primary(tok.value)
        if tok.kind == "LPAREN":
            self.advance()
            if self.at("RPAREN"):
                raise self.error("expected a term inside the parentheses", self.tok)
            if self.at("EOF"):
                raise self.error("expected a term and a closing ')'", self.tok)
            node = self.or_expr()
            if not self.at("RPAREN"):
                if self.at("EOF"):
                    raise self.error(
                        f"expected ')' to match the '(' in column {tok.column}", self.tok
                    )
                raise self.error(
                    f"expected ')' or an operator, found {_describe(self.tok)}", self.tok
                )
            self.advance()
            return _with_field(node, field, self.query) if field else node
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
            raise self.error(f"expected a word with letters or digits, found '{tok.value}'", tok)
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
            sub = _Lexer(raw)
            try:
                inner = sub._word()
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
        try:
            regex.compile(tok.value, regex.IGNORECASE | regex.V0)
        except regex.error as exc:
            raise self.error(
                f"bad regular expression ({exc}); expected a valid pattern", tok
            ) from None
        return Regex(tok.value, field, tok.column)


def _positional(node: Node) -> bool:
    if isinstance(node, Term | Phrase | Near):
        return True
    if isinstance(node, Or):
        return all(_positional(c) for c in node.children)
    return False


def _with_field(node: Node, field: str, query: str) -> Node:
    """Apply ``field:`` to every term of a group that names no field of its own."""
    if isinstance(node, Term | Phrase | Regex):
        if node.field is not None and node.field != field:
            raise QuerySyntaxError(
                f"expected terms of field '{field}', found '{node.field}:'", query, node.column
            )
        if isinstance(node, Phrase):
            words = tuple(_term_in(w, field) for w in node.words)
            return Phrase(node.text, words, node.slop, field, node.column)
        return _replace_field(node, field)
    if isinstance(node, Near):
        return Near(
            _with_field(node.left, field, query),
            _with_field(node.right, field, query),
            node.distance,
            node.column,
        )
    if isinstance(node, Not):
        return Not(_with_field(node.child, field, query), node.column)
    children = tuple(_with_field(c, field, query) for c in node.children)
    return And(children, node.column) if isinstance(node, And) else Or(children, node.column)


def _replace_field(node: Term | Regex, field: str) -> Term | Regex:
    if isinstance(node, Term):
        return _term_in(node, field)
    return Regex(node.pattern, field, node.column)


def _term_in(node: Term, field: str) -> Term:
    return Term(node.text, node.key, node.norm, node.kind, node.similarity, field, node.column)


def _check_positive(node: Node, query: str) -> None:
    """Refuse queries that any article lacking a word would match."""
    _check_or_branches(node, query)
    if not _requires_positive(node):
        raise QuerySyntaxError(
            "a query needs at least one positive term; expected a term that must appear",
            query,
            1,
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


def parse(query: str) -> Node:
    """Parse a query into its AST, or raise :class:`QuerySyntaxError` naming what was expected.

    Adjacent terms with no operator between them are combined with AND.
    """
    node = _Parser(query).parse()
    _check_positive(node, query)
    return node
