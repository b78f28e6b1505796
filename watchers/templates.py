"""Message templates: a rule's or route's own format for its alerts, with placeholders.

A template is text with ``{name}`` placeholders (the set is :data:`PLACEHOLDERS`); ``{{`` and
``}}`` stand for literal braces. :func:`check_template` lists every problem of a template at once
(an unknown placeholder, named with the known ones; an unbalanced brace; a mention; too long), so
the config file and ``/rules add`` refuse a bad template before it is saved.

:func:`fill` substitutes values that the caller has already made safe (escaped for markdown,
unable to ping anyone) and changes no value but to shorten it. With ``limit`` the result is
never longer than ``limit`` characters: the longest cuttable value is shortened first, and a
value that must not be cut (a link, a timestamp) is left out whole rather than broken. A
template that passes :func:`check_template` leaves at least :data:`MIN_ROOM` characters of
Discord's smallest limit (2000) for its values.

Pure: no I/O, no Discord.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Final

from watchers.models import control_pictures, reordering_shown
from watchers.snippet import grapheme_floor

__all__ = [
    "ATOMIC",
    "MAX_TEMPLATE_LENGTH",
    "MENTION_ROOM",
    "MIN_ROOM",
    "PLACEHOLDERS",
    "Placeholder",
    "TemplateError",
    "check_template",
    "cut_markup",
    "cut_value",
    "fill",
    "mention",
    "mentions_length",
    "parse_template",
    "placeholders_in",
]

# name → what it stands for (docs/discord.md, "Message templates", and error messages list these).
PLACEHOLDERS: Final[Mapping[str, str]] = {
    "title": "the article's title",
    "link": "the article's URL (http/https only; empty without one)",
    "headline": "the title as a link to the article (bold without a URL)",
    "source": "the outlet or feed that published it",
    "published": "when it was published (a Discord timestamp; 'unknown' without a date)",
    "rules": "the names of the rules that fired",
    "why": "the terms that matched, with fuzzy and alias variants",
    "snippet": "the passage around the matched terms, hits in bold",
    "outlets": "every outlet that reported the story so far",
    "story": "the story's line: other outlets, counts, when it last changed (empty alone)",
    "severity": "the alert's severity (info, low, medium, high, critical)",
    "id": "the article's id (for /article)",
}
# Values that a cut would break (half a URL or a timestamp): left out whole.
ATOMIC: Final[frozenset[str]] = frozenset({"link", "headline", "published", "id"})

# Discord's smallest message limit is 2000 characters (content); the template's own text may
# take at most this much of it so that the values always get MIN_ROOM.
MAX_TEMPLATE_LENGTH: Final = 1500
MIN_ROOM: Final = 2000 - MAX_TEMPLATE_LENGTH

# Characters of an alert's content that its mentions may take where the content holds the
# alert's text too (a text-style template): half of Discord's 2000, the other half the text's.
# It is the least room mentions ever get (an embed-style alert's content holds only them), so
# the config refuses a rule whose own mentions need more: a rule's alert then pings everyone
# it names in any style, and only several rules' mentions pooled on one alert can run out.
MENTION_ROOM: Final = 1000


def mention(id_: int, *, role: bool) -> str:
    """How a message's content spells a mention of a role or a user."""
    return f"<@&{id_}>" if role else f"<@{id_}>"


def mentions_length(roles: Collection[int], users: Collection[int]) -> int:
    """Characters the mentions of ``roles`` and ``users`` take, one space between each."""
    spelt = [len(mention(i, role=True)) for i in roles] + [len(mention(i, role=False))
                                                            for i in users]
    return sum(spelt) + max(len(spelt) - 1, 0)


_MENTION = re.compile(r"@everyone|@here|<@[!&]?\d*>?", re.IGNORECASE)
ELLIPSIS = "…"


class TemplateError(ValueError):
    """A template that cannot be used; the message lists every problem."""


@dataclass(frozen=True)
class Placeholder:
    name: str


Segment = str | Placeholder


def _known() -> str:
    return ", ".join("{" + n + "}" for n in PLACEHOLDERS)


# "{{", "}}", a placeholder, a brace left alone, or a run of plain text
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]|[^{}]+")


@functools.lru_cache(maxsize=256)  # a few templates, rendered for every alert
def _scan(text: str) -> tuple[tuple[Segment, ...], tuple[str, ...]]:
    """The template as literal text and placeholders, and the problems found on the way."""
    segments: list[Segment] = []
    problems: list[str] = []
    literal: list[str] = []
    for m in _TOKEN.finditer(text):
        token = m.group()
        if token in ("{{", "}}"):
            literal.append(token[0])
        elif m.group(1) is not None:
            name = m.group(1)
            if name not in PLACEHOLDERS:
                shown = name if len(name) <= 40 else name[:39] + ELLIPSIS
                problems.append(f"unknown placeholder {{{shown}}}; known: {_known()}")
                continue
            if literal:
                segments.append(_shown("".join(literal)))
                literal = []
            segments.append(Placeholder(name))
        elif token == "{":
            problems.append(f"unclosed '{{' at position {m.start() + 1}; write '{{{{' for a "
                            "literal brace")
            literal.append(token)
        elif token == "}":
            problems.append(f"single '}}' at position {m.start() + 1}; write '}}}}' for a "
                            "literal brace")
            literal.append(token)
        else:
            literal.append(token)
    if literal:
        segments.append(_shown("".join(literal)))
    return tuple(segments), tuple(problems)


def _shown(literal: str) -> str:
    """A template's literal text as the message shows it: a direction control (U+202E …)
    as its escape, ``\u202e``, since it would reorder what follows it, the article's title
    included; other control characters but the line break and the tab as their pictures
    (␀, ␇). Shown rather than refused: a rule stored with such a template keeps running."""
    return control_pictures(reordering_shown(literal), keep_layout=True)


def check_template(text: str) -> list[str]:
    """Every problem of ``text`` as a template (empty: usable)."""
    problems: list[str] = []
    if not text.strip():
        problems.append("the template is empty; leave it out for the standard message")
    if "\x00" in text:
        # PostgreSQL keeps no NUL in text or JSON: the rule, kept with its alerts, could not be
        # stored there (run stopped, and a copy of the store failed at its outbox).
        problems.append("the template holds a NUL character (\\u0000), which no message "
                        "needs and a PostgreSQL store cannot keep")
    if len(text) > MAX_TEMPLATE_LENGTH:
        problems.append(f"the template is {len(text)} characters long; at most "
                        f"{MAX_TEMPLATE_LENGTH} leave room for the article inside Discord's "
                        "2000-character limit")
    problems += _scan(text)[1]
    literal = "".join(s for s in _scan(text)[0] if isinstance(s, str))
    found = _MENTION.search(literal)
    if found:
        problems.append(f"the template may not mention anyone ({found.group()!r}); a rule's "
                        "mention_role is the one ping an alert may carry")
    return problems


def parse_template(text: str) -> list[Segment]:
    """The template's literal text and placeholders, in order; raises TemplateError."""
    segments, problems = _scan(text)
    if problems:
        raise TemplateError("; ".join(problems))
    return list(segments)


def placeholders_in(text: str) -> set[str]:
    """The names of the placeholders a template uses (unknown ones are ignored)."""
    return {s.name for s in _scan(text)[0] if isinstance(s, Placeholder)}


def cut_value(text: str, size: int) -> str:
    """``text`` in at most ``size`` characters, ending with an ellipsis when cut; never a
    dangling backslash (it would escape what follows) nor an odd ``**`` (bold left open), nor
    the inside of a masked link, a code span or a timestamp (a link cut after its "](" showed
    as raw markdown; a code span left open took in the text after the value), nor half of
    what shows as one character (a flag, an emoji sequence, a letter and its marks: see
    :func:`watchers.snippet.grapheme_floor`)."""
    if len(text) <= size:
        return text
    if size <= 1:
        return ""
    return cut_markup(text[: grapheme_floor(text, size - 1)]) + ELLIPSIS


def cut_markup(cut: str) -> str:
    """The head ``cut`` of a Markdown text ended where nothing is left open: before a masked
    link, a code span or a ``<t:…>`` timestamp it ends inside, without a dangling backslash or
    an odd ``**``."""
    if (opened := _open_link(cut)) is not None:
        cut = cut[:opened]
    if (stamp := cut.rfind("<t:")) > cut.rfind(">"):
        cut = cut[:stamp]
    ticks = [m.start() for m in _ESCAPE_OR_TICK.finditer(cut) if m.group() == "`"]
    if len(ticks) % 2:
        cut = cut[:ticks[-1]]
    if (len(cut) - len(cut.rstrip("\\"))) % 2:
        cut = cut[:-1]
    if _bold_marks(cut) % 2:
        at = _last_bold(cut)
        cut = cut[:at] + cut[at + 2:]
    return cut


# An escaped character (passed over) or a backtick; a masked link's middle.
_ESCAPE_OR_TICK = re.compile(r"\\.|`", re.S)
_LINK_MIDDLE = "]("


def _open_link(cut: str) -> int | None:
    """Where the masked link that ``cut`` ends inside starts (its "["), or None: a "](" with
    no ")" after it."""
    middle = cut.rfind(_LINK_MIDDLE)
    if middle < 0 or ")" in cut[middle + 2:]:
        return None
    start = cut.rfind("[", 0, middle)
    return start if start >= 0 else middle


def _bold_marks(text: str) -> int:
    return len(_BOLD.findall(text))


def _last_bold(text: str) -> int:
    return [m.end() - 2 for m in _BOLD.finditer(text)][-1]


# "**" not preceded by an escaping backslash (an even run of backslashes escapes nothing)
_BOLD = re.compile(r"(?<!\\)(?:\\\\)*\*\*")


def fill(template: str, values: Mapping[str, str], *, limit: int | None = None,
         cut: Callable[[str, int], str] = cut_value) -> str:
    """``template`` with each placeholder replaced by its value (a missing value is empty).

    With ``limit``, values are shortened until the result fits: the longest cuttable value by
    what is over (spread over its uses), atomic values (:data:`ATOMIC`) left out when cutting
    the others is not enough. ``cut(text, size)`` shortens a value to at most ``size``."""
    segments = parse_template(template)
    vals = {s.name: values.get(s.name, "") for s in segments if isinstance(s, Placeholder)}
    uses: dict[str, int] = {}
    for s in segments:
        if isinstance(s, Placeholder):
            uses[s.name] = uses.get(s.name, 0) + 1

    def render() -> str:
        return "".join(s if isinstance(s, str) else vals[s.name] for s in segments)

    out = render()
    if limit is None:
        return out
    while len(out) > limit:
        over = len(out) - limit
        cuttable = [k for k in vals if k not in ATOMIC and vals[k]]
        if cuttable:
            key = max(cuttable, key=lambda k: len(vals[k]) * uses[k])
            size = len(vals[key]) - -(-over // uses[key])  # ceil: each use gives its share
            shorter = cut(vals[key], size) if size > 0 else ""
            # a cut that did not shorten (an ellipsis in place of one character): drop it
            vals[key] = shorter if len(shorter) < len(vals[key]) else ""
        else:
            atomic = [k for k in vals if vals[k]]
            if not atomic:  # the template's own text is over the limit
                return cut_value(out, limit)
            vals[max(atomic, key=lambda k: len(vals[k]) * uses[k])] = ""
        out = render()
    return out
