"""Pure rendering: articles, alerts and lookups → discord.Embed and message parameters.

Everything here stays inside Discord's limits, escapes markdown and mentions in text that comes
from articles, and puts only http(s) URLs into embeds. A URL inside a markdown link has
``()[]<>``, backslashes and whitespace percent-encoded, so one article yields at most one masked
link whatever its URL holds. No I/O.

An alert may be shaped by its rule's or route's template (watchers.templates): the values put
into it are escaped like any article text, an ``@`` of the template's own text is escaped too,
and the rendered message is cut to Discord's limits value by value, never through a link.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

import discord

from watchers.config import RouteConfig, RuleConfig, format_duration
from watchers.delivery import (
    Alert,
    DeliveryStatus,
    Digest,
    DigestItem,
    StoryUpdate,
    StoryView,
)
from watchers.engine import RuleTest, RuleView, SourceView, Stats, StoryDetail
from watchers.models import Article, Highlight, Match, control_pictures, reordering_shown
from watchers.snippet import Run, grapheme_floor, snippet_runs, title_runs
from watchers.store.base import StoryRecord
from watchers.templates import MENTION_ROOM, cut_value, fill, mention, placeholders_in
from watchers.urls import without_credentials

log = logging.getLogger("newswatch")

__all__ = [
    "ACK_ID",
    "ACK_ID_PATTERN",
    "CUT_SHORT",
    "DEFAULT_TEXT_TEMPLATE",
    "LIMITS",
    "NOT_RELEVANT_ID",
    "NOT_RELEVANT_ID_PATTERN",
    "ResultLine",
    "ack_buttons",
    "ack_line",
    "alert_message",
    "alert_template",
    "article_embed",
    "code_text",
    "delivery_embed",
    "digest_groups",
    "digest_line",
    "digest_messages",
    "digest_title",
    "escalation_line",
    "escape",
    "fit_embed",
    "group_results",
    "masked_link",
    "outlet_count",
    "rule_test_embed",
    "rules_embed",
    "safe_url",
    "sources_embed",
    "stats_embed",
    "story_embed",
    "story_line",
    "story_message",
    "template_values",
    "thread_line",
    "thread_name",
    "truncate",
    "visible",
    "with_ack_line",
]

LIMITS = {
    "content": 2000,
    "title": 256,
    "description": 4096,
    "fields": 25,
    "field_name": 256,
    "field_value": 1024,
    "footer": 2048,
    "author": 256,
    "total": 6000,
    "thread_name": 100,
}
SEVERITY_COLOURS = {
    "info": 0x5865F2,
    "low": 0x57F287,
    "medium": 0xFEE75C,
    "high": 0xE67E22,
    "critical": 0xED4245,
}
ELLIPSIS = "…"
CUT_SHORT = "(search cut short — narrow it)"
# Characters that Discord markdown or mentions give meaning to; a backslash shows them as written.
_MARKUP = re.compile(r"([\\*_~|`>\[\]()<@#:-])")
_WS = re.compile(r"\s+")


def visible(text: str) -> str:
    """``text`` with each direction control that reorders a run of text
    (:data:`watchers.models.BIDI_REORDERING`) shown as its escape, ``\\u202e``, for text
    that takes no markdown (an autocomplete choice, a field name). Shown rather than dropped: a
    right-to-left override makes what follows it read reversed, and a name holding one would
    look like another name, or like nothing odd. The direction marks (U+200F …) are left as
    they are: right-to-left news carries them, and they reorder nothing."""
    return reordering_shown(text)


def escape(text: str) -> str:
    """Show ``text`` as written: no markdown, links, mentions or emoji codes take effect, and
    direction controls are shown as escapes (see :func:`visible`)."""
    return _MARKUP.sub(r"\\\1", _WS.sub(" ", visible(text)).strip())


def code_text(text: str) -> str:
    """Text for inline code: a backtick would end the span, so it becomes a look-alike;
    direction controls are shown as escapes (see :func:`visible`), and control characters
    (NUL, BEL, ESC, a line break …) as their pictures, ␀ ␇ ␛ ␊, one column each."""
    return control_pictures(visible(text).replace("`", "ˋ"))


def truncate(text: str, limit: int) -> str:
    """Cut at ``limit`` characters with an ellipsis, never leaving a dangling escape nor half
    of what shows as one character (a flag cut between its two letters read as another
    country's; see :func:`watchers.snippet.grapheme_floor`)."""
    if len(text) <= limit:
        return text
    end = grapheme_floor(text, limit - 1)
    # an odd number of backslashes would escape the ellipsis
    while (end - len(text[:end].rstrip("\\"))) % 2:
        end = grapheme_floor(text, end - 1)
    return text[:end] + ELLIPSIS


def _parts(url: str) -> tuple[str, str, str]:
    """An absolute URL's scheme, authority (host, port, credentials) and the rest (path,
    query, fragment, from the first ``/``, ``?`` or ``#``)."""
    scheme, _, rest = url.partition("://")
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    return scheme, rest[:cut], rest[cut:]


def _percent(c: str) -> str:
    """``c`` percent-encoded (its UTF-8 bytes)."""
    return "".join(f"%{b:02X}" for b in c.encode("utf-8", "replace"))


def _encoded(text: str, unsafe: Callable[[str], bool]) -> str:
    """``text`` with each character ``unsafe`` says so of percent-encoded."""
    return "".join(_percent(c) if unsafe(c) else c for c in text)


def safe_url(url: str | None) -> str | None:
    """The URL if it is http(s) and plausibly shaped, else None; a control or format
    character (a direction override, a zero-width space) in its path, query or fragment is
    percent-encoded, and one in its host refuses it: "invoice\u202efdp.exe" showed as
    "invoiceexe.pdf" in a bare link."""
    if not url or len(url) > 2000:
        return None
    if not re.match(r"(?i)^https?://[^\s/$.?#][^\s]*$", url):
        return None
    if url.isprintable():
        return url
    scheme, authority, tail = _parts(url)
    if not authority.isprintable():
        return None
    encoded = f"{scheme}://{authority}" + _encoded(tail, lambda c: not c.isprintable())
    return encoded if len(encoded) <= 2000 else None


# Characters that would end or restart a markdown link target; encoded in path, query, fragment.
_LINK_UNSAFE = re.compile(r"[()\[\]<>\\\s]")
# An authority keeps [ ] (IPv6 literals); one holding other link syntax is refused outright.
_BAD_AUTHORITY = re.compile(r"[()<>\\\s]")


def link_target(url: str | None) -> str | None:
    """``url`` made safe to put inside ``[text](…)``, or None if it is not an http(s) URL or
    is longer than 2,000 characters once its link syntax is encoded (a URL of brackets grows
    threefold, and one line must never outgrow a message)."""
    url = safe_url(url)
    if url is None:
        return None
    scheme, authority, tail = _parts(url)
    if _BAD_AUTHORITY.search(authority):
        return None
    target = f"{scheme}://{authority}" + _LINK_UNSAFE.sub(lambda m: _percent(m[0]), tail)
    return target if len(target) <= 2000 else None


def masked_link(text: str, url: str | None) -> str:
    """``[text](url)`` with ``text`` already escaped, or ``text`` in bold without a usable URL."""
    target = link_target(url)
    return f"[{text}]({target})" if target else f"**{text}**"


def _cut_escaped(text: str, room: int) -> str:
    """The head of escaped ``text`` that fits in ``room`` characters, ended at a space when one
    is in its last quarter, without a dangling backslash (which would escape what follows)."""
    if len(text) <= room:
        return text
    head = text[:max(room, 0)]
    space = head.rfind(" ")
    if space > room * 3 // 4:
        head = head[:space]
    trailing = len(head) - len(head.rstrip("\\"))
    if trailing % 2:
        head = head[:-1]
    return head.rstrip()


def render_runs(runs: Sequence[Run], limit: int) -> str:
    """Escaped runs with hits in bold, cut (with an ellipsis) to fit in ``limit`` characters.

    A plain run that does not fit whole is cut inside, at a space where one is near, so a long
    title keeps as much of itself as fits; a matched term is shown whole or not at all."""
    out, size = [], 0
    for run in runs:
        piece = escape(run.text) if run.text != ELLIPSIS else ELLIPSIS
        if run.text[:1].isspace():
            piece = " " + piece
        if run.text[-1:].isspace():
            piece += " "
        if run.hit:
            piece = f"**{piece.strip()}**"
        if size + len(piece) > limit - 1:
            if not run.hit and piece != ELLIPSIS:
                out.append(_cut_escaped(piece, limit - 1 - size))
            out.append(ELLIPSIS)
            break
        out.append(piece)
        size += len(piece)
    return "".join(out).strip()


def _when(dt: datetime | None, style: str = "R", missing: str = "never") -> str:
    return f"<t:{int(dt.timestamp())}:{style}>" if dt else missing


# What fit_embed leaves of a part before it cuts the next one.
_FIT_DESCRIPTION = 1024
_FIT_FOOTER = 256
_FIT_FIELD = 100


def fit_embed(embed: discord.Embed) -> discord.Embed:
    """Shrink ``embed`` until the whole of it is inside Discord's 6,000-character total, which
    Discord otherwise refuses (the user would see an error instead of the answer).

    In turn, each only as far as needed: the description down to 1,024 characters, the footer
    down to 256, the longest field values down to 100 each, then fields from the last, then the
    description and the footer to nothing. Titles, author and field names are bounded by their
    own limits already."""
    total = LIMITS["total"]

    def over() -> int:
        return len(embed) - total

    def cut_description(floor: int) -> None:
        text = embed.description
        if over() > 0 and text and len(text) > floor:
            keep = max(floor, len(text) - over())
            embed.description = truncate(text, keep) if keep > 0 else None

    def cut_footer(floor: int) -> None:
        text = embed.footer.text
        if over() > 0 and text and len(text) > floor:
            keep = max(floor, len(text) - over())
            embed.set_footer(text=truncate(text, keep) if keep > 0 else None,
                             icon_url=embed.footer.icon_url)

    cut_description(_FIT_DESCRIPTION)
    cut_footer(_FIT_FOOTER)
    while over() > 0 and embed.fields:
        at = max(range(len(embed.fields)), key=lambda i: len(embed.fields[i].value or ""))
        field = embed.fields[at]
        value = field.value or ""
        if len(value) <= _FIT_FIELD:
            break
        embed.set_field_at(at, name=field.name, inline=bool(field.inline),
                           value=truncate(value, max(_FIT_FIELD, len(value) - over())))
    while over() > 0 and embed.fields:
        embed.remove_field(len(embed.fields) - 1)
    cut_description(0)
    cut_footer(0)
    return embed


def _hits_text(matches: Iterable[Match]) -> str:
    parts: list[str] = []
    unshown = False
    for m in matches:
        unshown |= not m.hits
        for hit in m.hits:
            label = f"{escape(hit.text)}"
            if hit.kind in ("fuzzy", "alias") and hit.variant:
                label += f" ≈ {escape(hit.term)} ({hit.score:.0f})"
            if label not in parts:
                parts.append(label)
    if not parts and unshown:
        # Evidence is found when shown; a rule or alias changed since the article matched (or
        # a regex out of time) can leave none to show.
        return "matched; the words that fired it could not be found again"
    return ", ".join(parts) or "—"


# How much of the story field the list of other outlets may take before "and N more".
_OUTLETS_BUDGET = 400


def story_line(story: StoryView, *, own: str | None = None) -> str | None:
    """"Also reported by DW, NPR · 3 outlets · 4 articles · updated <time>", naming every
    outlet but ``own`` (the alert's) while they fit, then "and N more"; None while the story
    is a single article."""
    if len(story.outlets) <= 1 and story.articles <= 1 and story.updated_at is None:
        return None
    others = [o for o in story.outlets if o != own]
    parts: list[str] = []
    if others:
        parts.append("Also reported by " + _names(others, _OUTLETS_BUDGET))
    outlets = story.counted if story.counted is not None else len(story.outlets)
    if outlets > 1:
        parts.append(f"{outlets} outlets")
    if story.articles > len(story.outlets):
        parts.append(f"{story.articles} articles")
    latest = max(d for d in (story.last_seen, story.updated_at) if d is not None)
    parts.append(f"updated {_when(latest, 't')}")
    return " · ".join(parts)


def escalation_line(alert: Alert) -> str | None:
    """"Escalated: medium → critical" when this alert re-posts its story at a higher
    severity, else None."""
    if not alert.escalated_from:
        return None
    return f"Escalated: {escape(alert.escalated_from)} → {alert.severity}"


def _latest_line(article: Article, *, changed: bool) -> str:
    link = masked_link(truncate(escape(article.title) or "(untitled)", 200), article.url)
    if changed:
        return f"Updated: {link}"
    source = f" · {truncate(escape(article.source), 80)}" if article.source else ""
    return f"Newest: {link}{source}"


def alert_message(alert: Alert, *, latest: Article | None = None, changed: bool = False,
                  route: RouteConfig | None = None, reserve: int = 0,
                  warn: bool = True) -> dict[str, Any]:
    """Keyword arguments for ``Messageable.send`` / ``Webhook.send`` for one alert.

    Only the rules' configured roles (``mention_role``, ``mention_roles``) and users
    (``mention_users``) are mentioned and may ping — never @everyone or @here; article text can
    never ping anyone. They are spelt out in the content, inside the room it has for them (see
    :func:`_fit_mentions`); with ``warn`` (not a re-rendering), mentions that several rules
    pooled past it are logged once, on the alert's first attempt.
    With ``alert.story`` the embed carries the story's line (other outlets, counts, when it
    last changed) and ``latest``, the story's newest article (``changed``: an article that
    changed in place); ``alert.escalated_from`` puts a banner above the snippet.

    A template (the alert's rule's, else ``route``'s; see :func:`alert_template`) shapes the
    message: ``embed`` style fills the embed's description (title, link, colour, author and
    footer stay; the fields give way to it, but for the story's line when the template does not
    place ``{story}``), ``text`` style posts it as plain content without an embed. Every
    value is escaped, an ``@`` of the template's own text too, so only the rules' roles ping.

    ``reserve``: characters of the content the caller keeps for a line of its own above it
    (a preview's note), so that the message is rendered to fit beside it, never cut after.
    """
    art = alert.article
    chosen = alert_template(alert, route)
    text_style = chosen is not None and chosen[1] == "text"
    # A text alert's content holds its text too, and its mentions get MENTION_ROOM (half of
    # it); an embed alert's content holds only the mentions, and the acknowledgement line
    # that may be put below them (kept whole: a cut through the mentions showed "<@&1100…").
    room = MENTION_ROOM if text_style else LIMITS["content"] - _ACK_ROOM - reserve
    roles, users, left_out, short = _fit_mentions(alert.rules, room)
    if left_out and warn and alert.attempt <= 1:
        log.warning("alert %s (route %s, article %s): %d mention(s) of rule(s) %s left out, "
                    "past the %d characters its message has for mentions; the alert posts "
                    "with the rest", alert.id, alert.route, art.id, left_out,
                    ", ".join(short), room)
    content = " ".join([*(mention(r, role=True) for r in roles),
                        *(mention(u, role=False) for u in users)]) or None
    allowed = discord.AllowedMentions(
        everyone=False, replied_user=False,
        users=[discord.Object(id=u) for u in users] if users else False,
        roles=[discord.Object(id=r) for r in roles] if roles else False,
    )
    story = [line for line in (
        story_line(alert.story, own=art.source) if alert.story is not None else None,
        _latest_line(latest, changed=changed) if latest is not None else None,
    ) if line]
    if latest is not None and len("\n".join(story)) > LIMITS["field_value"]:
        # a cut would leave half a link: name the newest article without one
        story[-1] = _latest_line(latest.model_copy(update={"url": None}), changed=changed)
    banner = escalation_line(alert)
    if chosen is not None and chosen[1] == "text":
        values = template_values(alert, latest=latest, changed=changed,
                                 names={*placeholders_in(chosen[0]), "headline"})
        lead = (f"{content}\n" if content else "") + (f"**{banner}**\n" if banner else "")
        budget = LIMITS["content"] - len(lead) - reserve
        text = _render_template(chosen[0], values, budget)
        if not text.strip():  # Discord refuses an empty message: the headline, or its title
            text = values["headline"]
            if len(text) > budget:  # a link is never cut: the title alone, cut
                text = truncate(escape(art.title) or "(untitled)", budget)
        return {"content": lead + text, "embed": None, "allowed_mentions": allowed}
    highlights: list[Highlight] = [h for m in alert.matches for h in m.highlights]
    title = render_runs(title_runs(art.title, highlights), LIMITS["title"]) or "(untitled)"
    embed = discord.Embed(
        title=truncate(title, LIMITS["title"]),
        url=safe_url(art.url),
        colour=SEVERITY_COLOURS.get(alert.severity, SEVERITY_COLOURS["medium"]),
        timestamp=art.published,
    )
    embed.set_author(name=truncate(escape(art.source or "newswatch"), LIMITS["author"]))
    embed.set_footer(text=f"newswatch · {alert.severity} · article {art.id}")
    if chosen is not None:
        if story and "story" not in placeholders_in(chosen[0]):
            # as the template would show it: no link that could spell a mention
            line = template_values(alert, latest=latest, changed=changed, names={"story"})
            embed.add_field(name="Story", value=truncate(line["story"], LIMITS["field_value"]),
                            inline=False)
        lead = f"**{banner}**\n" if banner else ""
        budget = min(LIMITS["description"], LIMITS["total"] - len(embed)) - len(lead)
        values = template_values(alert, latest=latest, changed=changed,
                                 names=placeholders_in(chosen[0]))
        text = _render_template(chosen[0], values, budget)
        embed.description = (lead + text).strip() or None
        return {"content": content, "embed": fit_embed(embed), "allowed_mentions": allowed}
    description = render_runs(snippet_runs(art.text, highlights, width=600), 1500)
    if banner:
        description = f"**{banner}**" + (f"\n{description}" if description else "")
    embed.description = description or None
    rules = ", ".join(f"`{r.name}`" for r in alert.rules)
    embed.add_field(name="Rule", value=truncate(rules or "—", LIMITS["field_value"]), inline=True)
    embed.add_field(name="Published", value=_when(art.published, "f", "unknown"), inline=True)
    embed.add_field(name="Why", value=truncate(_hits_text(alert.matches), LIMITS["field_value"]),
                    inline=False)
    if story:
        embed.add_field(name="Story", value=truncate("\n".join(story), LIMITS["field_value"]),
                        inline=False)
    return {"content": content, "embed": fit_embed(embed), "allowed_mentions": allowed}


# Discord takes at most 100 ids in each list of allowed_mentions.
_MAX_MENTIONS = 100


def _fit_mentions(rules: Sequence[RuleConfig], room: int
                  ) -> tuple[list[int], list[int], int, list[str]]:
    """The roles and users of ``rules`` whose mentions fit in ``room`` characters (one space
    between each), the number left out and the names of the rules that lost some.

    Users come first, then roles, each as the rules list them, the most severe rule's first.
    A user is named to be paged (the person on call) and reaches no one else, where a role of
    many is often one of several that reach the same people; roles sorted by id first took
    all the room, and the on-call user was never pinged. The config keeps each rule's own
    mentions within the least room (MENTION_ROOM), so only several rules pooled on one alert
    can leave any out."""
    rules = sorted(rules, key=lambda r: -_severity_rank(r.severity))  # stable: ties keep order
    users = list(dict.fromkeys(u for r in rules for u in r.mention_users))
    roles = list(dict.fromkeys(
        i for r in rules for i in ([r.mention_role] if r.mention_role else []) + r.mention_roles))
    kept: dict[bool, list[int]] = {False: [], True: []}  # by "is a role"
    used = -1  # no space before the first
    for role, ids in ((False, users), (True, roles)):
        for i in ids:
            cost = 1 + len(mention(i, role=role))
            if len(kept[role]) < _MAX_MENTIONS and used + cost <= room:
                kept[role].append(i)
                used += cost
    kept_users, kept_roles = set(kept[False]), set(kept[True])
    short = [r.name for r in rules
             if any(u not in kept_users for u in r.mention_users)
             or any(i not in kept_roles for i in [*r.mention_roles, r.mention_role] if i)]
    left_out = len(users) + len(roles) - len(kept[False]) - len(kept[True])
    return kept[True], kept[False], left_out, list(dict.fromkeys(short))

# Acknowledgement buttons: the custom ids carry the alert's outbox id, so a click is understood
# by whichever process runs when it comes (the acks extension registers dynamic items that
# parse them; see bot/exts/acks).
ACK_ID = "nw:ack:{}"
NOT_RELEVANT_ID = "nw:nr:{}"
ACK_ID_PATTERN = r"nw:ack:(?P<id>[1-9][0-9]{0,17})"
NOT_RELEVANT_ID_PATTERN = r"nw:nr:(?P<id>[1-9][0-9]{0,17})"


def ack_buttons(alert_id: int, *, acknowledged: bool = False) -> discord.ui.View:
    """The "Acknowledge" and "Not relevant" buttons of an alert (Acknowledge disabled once
    someone did). The view only shapes the components: it is stopped, so discord.py does not
    keep it per message; the acks extension's dynamic items answer the clicks, also after a
    restart. Call it inside the event loop."""
    view = discord.ui.View(timeout=None)
    view.add_item(discord.ui.Button(
        label="Acknowledged" if acknowledged else "Acknowledge", emoji="✅",
        style=discord.ButtonStyle.success, custom_id=ACK_ID.format(alert_id),
        disabled=acknowledged))
    view.add_item(discord.ui.Button(
        label="Not relevant", style=discord.ButtonStyle.secondary,
        custom_id=NOT_RELEVANT_ID.format(alert_id)))
    view.stop()
    return view


def ack_line(user_id: int, at: datetime) -> str:
    """The line an acknowledged alert carries: who, and when (shown in the reader's time)."""
    return f"✅ Acknowledged by <@{int(user_id)}> at {_when(at, 't')}"


# The longest acknowledgement line and the line break before it: an embed alert's mentions
# leave it room.
_ACK_ROOM = len(ack_line(2**64 - 1, datetime(9999, 12, 31, tzinfo=UTC))) + 1


def with_ack_line(content: str | None, line: str) -> str:
    """An alert's content with the acknowledgement line below it, inside Discord's limit (the
    line is kept whole; the content gives way)."""
    if not content:
        return line
    # cut as a template's value is, where no link, code span or timestamp is left open: cut
    # through the story's "Newest: [title](url)" link, Discord showed it as raw markdown
    return f"{cut_value(content, LIMITS['content'] - len(line) - 1)}\n{line}"


# A rule or route that asks for plain text without writing a template gets this one.
DEFAULT_TEXT_TEMPLATE = "{headline} · {source} · {published}\n{snippet}\n{story}"

_SEVERITY_ORDER = list(SEVERITY_COLOURS)  # mildest first


def _severity_rank(severity: str) -> int:
    """How severe, mildest 0; an unknown severity counts as medium."""
    return _SEVERITY_ORDER.index(severity) if severity in _SEVERITY_ORDER else 2


def alert_template(alert: Alert, route: RouteConfig | None = None
                   ) -> tuple[str, Literal["embed", "text"]] | None:
    """The template an alert is shown with and its style, or None for the standard embed.

    The alert's rules come first, most severe first (the first of equals): a rule with a
    template, or with ``template_style = "text"`` (then :data:`DEFAULT_TEXT_TEMPLATE`), decides.
    Otherwise the route's settings do, the same way."""
    rules = sorted(alert.rules, key=lambda r: -_severity_rank(r.severity))
    for owner in (*rules, route):
        if owner is not None and (owner.template is not None or owner.template_style == "text"):
            return owner.template or DEFAULT_TEXT_TEMPLATE, owner.template_style
    return None


def _template_link(url: str | None) -> str:
    """A URL safe as bare text and inside ``[…](…)``: :func:`link_target` with ``@`` encoded
    too, so no URL can spell a mention; one with credentials (``user@host``) is left out."""
    target = link_target(url)
    if target is None:
        return ""
    scheme, authority, tail = _parts(target)
    if "@" in authority:
        return ""
    return f"{scheme}://{authority}" + tail.replace("@", "%40")


def template_values(alert: Alert, *, latest: Article | None = None, changed: bool = False,
                    names: Collection[str] | None = None) -> dict[str, str]:
    """The placeholders' values for an alert (only ``names``, if given: a snippet of a long
    article is not free), each escaped so that it shows as written and cannot ping, format
    across its bounds or add a link of its own (see watchers.templates)."""
    art = alert.article

    def title() -> str:
        return truncate(escape(art.title), LIMITS["title"]) or "(untitled)"

    def headline() -> str:
        link = _template_link(art.url)
        return f"[{title()}]({link})" if link else f"**{title()}**"

    def snippet() -> str:
        highlights: list[Highlight] = [h for m in alert.matches for h in m.highlights]
        return render_runs(snippet_runs(art.text, highlights, width=600), 1500)

    def outlets() -> str:
        own = art.source or None
        seen = alert.story.outlets if alert.story is not None else ((own,) if own else ())
        return _names(seen, 900) if seen else "unknown source"

    def story() -> str:
        lines = [story_line(alert.story, own=art.source) if alert.story is not None else None]
        if latest is not None:
            url = _template_link(latest.url) or None
            lines.append(_latest_line(latest.model_copy(update={"url": url}), changed=changed))
            if len("\n".join(x for x in lines if x)) > LIMITS["field_value"]:
                # a cut would leave half a link: name the newest article without one
                lines[-1] = _latest_line(latest.model_copy(update={"url": None}),
                                         changed=changed)
        return "\n".join(line for line in lines if line)

    makers: dict[str, Callable[[], str]] = {
        "title": title,
        "link": lambda: _template_link(art.url),
        "headline": headline,
        "source": lambda: truncate(escape(art.source or "unknown source"), 100),
        "published": lambda: _when(art.published, "f", "unknown"),
        "rules": lambda: ", ".join(f"`{code_text(r.name)}`" for r in alert.rules),
        "why": lambda: truncate(_hits_text(alert.matches), LIMITS["field_value"]),
        "snippet": snippet,
        "outlets": outlets,
        "story": story,
        "severity": lambda: alert.severity,
        "id": lambda: escape(art.id),
    }
    return {k: make() for k, make in makers.items() if names is None or k in names}


# an "@" after an even run of backslashes (none included) is not escaped
_BARE_AT = re.compile(r"(?<!\\)((?:\\\\)*)@")


def _render_template(template: str, values: Mapping[str, str], limit: int) -> str:
    """The template filled within ``limit`` characters, every ``@`` left unescaped (from the
    template's own text, or formed where its text meets a value) escaped."""
    reserve = 0
    for _ in range(4):
        text = _BARE_AT.sub(r"\1\\@", fill(template, values, limit=max(limit - reserve, 0)))
        if len(text) <= limit:
            return text
        reserve += len(text) - limit
    return truncate(_BARE_AT.sub(r"\1\\@", fill(template, values, limit=limit // 2)), limit)


_NO_PINGS = discord.AllowedMentions.none()


def story_message(update: StoryUpdate, *, repost: bool = False,
                  route: RouteConfig | None = None) -> dict[str, Any]:
    """The story's alert re-rendered with its current line and newest article, in the route's
    template if it has one: keyword arguments for editing the message (``repost=False``: an
    embed is replaced and the content with its role mentions is left as it was) or for posting
    it afresh after it was deleted (the embed alone). A text-style message has no embed: its
    content is the message, so it is re-rendered too. Neither pings anyone: the story is not
    new news."""
    alert = replace(update.alert, story=update.story)
    kwargs = alert_message(alert, latest=update.article, changed=update.changed, route=route,
                           warn=False)
    kwargs["allowed_mentions"] = _NO_PINGS
    acked = ack_line(*update.acknowledged) if update.acknowledged is not None else None
    if kwargs.get("embed") is None:
        # text style: the content is the message, the acknowledgement line part of it
        if acked is not None:
            kwargs["content"] = with_ack_line(kwargs.get("content"), acked)
        return kwargs
    if repost:
        kwargs["content"] = acked
    else:
        del kwargs["content"]
    return kwargs


def thread_name(headline: str) -> str:
    """A thread's name from a story's headline: one line, inside Discord's 100 characters,
    never empty. Names are plain text (no markdown), so no markdown is escaped; a direction
    control that reorders text shows as its escape (see :func:`visible`), as in the embed's
    title."""
    name = visible(_WS.sub(" ", headline).strip())
    return truncate(name, LIMITS["thread_name"]) or "Story"


def thread_line(update: StoryUpdate) -> dict[str, Any]:
    """One short line for the story's thread: the outlet and the title as a masked link
    ("updated:" for an article that changed in place); pings nobody, no link preview."""
    art = update.article
    title = escape(art.title) or "(untitled)"
    source = truncate(escape(art.source or "unknown source"), 100)

    def line(label: str) -> str:
        return f"Updated: {label} ({source})" if update.changed else f"{source}: {label}"

    # The title gives way to the link, and the link to the line's limit: cut at 2,000
    # characters, a long link lost its closing parenthesis and showed as raw markdown.
    room = LIMITS["content"] - len(line(""))
    target = link_target(art.url)
    if target is not None and room - len(target) - 4 >= 20:
        text = line(f"[{truncate(title, min(300, room - len(target) - 4))}]({target})")
    else:
        text = line(f"**{truncate(title, min(300, room - 4))}**")
    return {"content": text, "allowed_mentions": _NO_PINGS, "suppress_embeds": True}


def _names(outlets: Sequence[str], budget: int) -> str:
    """Outlets by name, escaped, while they fit in ``budget`` characters, then "and N more"."""
    named: list[str] = []
    size = 0
    for outlet in outlets:
        name = truncate(escape(outlet), 60)
        if named and size + len(name) > budget:
            break
        named.append(name)
        size += len(name) + 2
    more = len(outlets) - len(named)
    return ", ".join(named) + (f" and {more} more" if more else "")


def _plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {words or word + 's'}"


def article_embed(article: Article, matches: Sequence[Match], *, excerpt: int = 1200,
                  story: StoryRecord | None = None) -> discord.Embed:
    """An article with every rule that matched it and why (for /article); with ``story`` of
    more than one article, its outlets, timeline and id (for /story)."""
    highlights = [h for m in matches for h in m.highlights]
    embed = discord.Embed(
        title=truncate(render_runs(title_runs(article.title, highlights), LIMITS["title"])
                       or "(untitled)", LIMITS["title"]),
        url=safe_url(article.url),
        description=render_runs(snippet_runs(article.text, highlights, width=excerpt),
                                excerpt + 200) or None,
        timestamp=article.published,
        colour=SEVERITY_COLOURS["info"],
    )
    embed.set_author(name=truncate(escape(article.source or "unknown source"), LIMITS["author"]))
    shown = story is not None and story.articles > 1
    room = LIMITS["fields"] - (1 if shown else 0)
    listed = matches if len(matches) <= room else matches[: room - 1]
    for m in listed:
        embed.add_field(name=truncate(f"Rule {m.rule}", LIMITS["field_name"]),
                        value=truncate(_hits_text([m]), LIMITS["field_value"]), inline=False)
    if len(listed) < len(matches):
        rest = matches[len(listed):]
        embed.add_field(name=f"{_plural(len(rest), 'more rule')} matched",
                        value=_names([m.rule for m in rest], LIMITS["field_value"] - 60),
                        inline=False)
    if not matches:
        embed.add_field(name="Rules", value="No rule matched this article.", inline=False)
    if story is not None and shown:
        lines = [f"{_plural(outlet_count(story), 'outlet')}: {_names(story.outlets, 500)}",
                 f"{_plural(story.articles, 'article')} · first {_when(story.first_seen, 'f')}"
                 f" · last {_when(story.last_seen, 'f')}"]
        if story.updated_at is not None:
            lines.append(f"changed in place {_when(story.updated_at)}")
        lines.append(f"`/story {code_text(story.id)}` lists them")
        embed.add_field(name="Story", value=truncate("\n".join(lines), LIMITS["field_value"]),
                        inline=False)
    footer = f"article {article.id}"
    embed.set_footer(text=f"{footer} · story {story.id}" if shown and story else footer)
    return fit_embed(embed)


@dataclass(frozen=True)
class ResultLine:
    """One line of lookup results: an article standing for its story (the first of the
    story's articles in result order) or for itself when it has no story of several articles.
    ``matched``: how many of the results belong to this line."""

    article: Article
    match: Match | None
    story: StoryRecord | None = None
    matched: int = 1

    @property
    def expandable(self) -> bool:
        """A story of several articles, which /story can list."""
        return self.story is not None and self.story.articles > 1


def group_results(rows: Iterable[tuple[Article, Match | None]],
                  stories: Mapping[str, StoryRecord]) -> list[ResultLine]:
    """Results, one line per story, in the order of each story's first result; ``stories``
    maps article id → its story (absent: the article stands alone)."""
    lines: list[ResultLine] = []
    at: dict[str, int] = {}
    for art, match in rows:
        story = stories.get(art.id)
        if story is None or story.articles <= 1:
            lines.append(ResultLine(art, match, story))
        elif story.id in at:
            i = at[story.id]
            lines[i] = replace(lines[i], matched=lines[i].matched + 1)
        else:
            at[story.id] = len(lines)
            lines.append(ResultLine(art, match, story))
    return lines


def outlet_count(story: StoryRecord) -> int:
    """The story's distinct outlets as its reader counts them (two feeds of one site are one,
    as its alert's wait counts them), or its sources where they were not counted."""
    return story.counted if story.counted is not None else len(story.outlets)


def _story_suffix(line: ResultLine) -> str:
    """" · +2 outlets · 5 articles · story `s…`" for a line standing for a story (other
    outlets than the line's article's, counted as outlets: the BBC's second feed is none)."""
    story = line.story
    if story is None or not line.expandable:
        return ""
    others = (max(story.counted - 1, 0) if story.counted is not None
              else sum(1 for o in story.outlets if o != line.article.source))
    parts = [f"+{others} outlet{'s' if others != 1 else ''}" if others
             else f"+{story.articles - 1} more"]
    if others and story.articles > outlet_count(story):
        parts.append(f"{story.articles} articles")
    if line.matched > 1:
        parts.append(f"{line.matched} here")
    parts.append(f"story `{code_text(story.id)}`")
    return " · " + " · ".join(parts)


def results_embed(title: str, rows: Sequence[ResultLine | tuple[Article, Match | None]], *,
                  page: int, pages: int, total: int, note: str | None = None,
                  lines: int | None = None) -> discord.Embed:
    """A page of lookup results: one line per story or lone article with its best highlight
    (a story's line says how many other outlets and articles it has, and its id); ``total``
    counts articles, ``lines`` (when fewer) the lines they make; ``note`` (such as "search
    cut short") goes in the footer."""
    embed = discord.Embed(title=truncate(title, LIMITS["title"]), colour=SEVERITY_COLOURS["info"])
    out = []
    # Each line's share of the description: a line whose link would take more (a tracking
    # link of a thousand characters) shows its title without the link. Cut as a whole, the
    # description ended inside a link, shown as raw markdown, and the lines after it were
    # lost while the footer still counted them.
    share = (LIMITS["description"] - len(rows)) // max(len(rows), 1)
    for row in rows:
        line = row if isinstance(row, ResultLine) else ResultLine(*row)
        art, m = line.article, line.match
        when = _when(art.published, "d", "—")
        why = ""
        if m is not None:
            snippet = render_runs(snippet_runs(art.text, m.highlights, width=160), 220)
            why = f"\n> {snippet}" if snippet else ""
        rest = (f" · {escape(art.source)} · {when} · `{code_text(art.id)}`"
                f"{_story_suffix(line)}{why}")
        shown = truncate(escape(art.title), 120)
        head = masked_link(shown, art.url)
        out.append((head if len(head) + len(rest) <= share else masked_link(shown, None)) + rest)
    embed.description = truncate("\n".join(out) or "No results.", LIMITS["description"])
    footer = f"page {page + 1}/{max(pages, 1)} · {total} result(s)"
    if lines is not None and lines < total:
        footer += f" in {_plural(lines, 'line')}"
    embed.set_footer(text=f"{footer} · {note}" if note else footer)
    return fit_embed(embed)


def story_embed(detail: StoryDetail) -> discord.Embed:
    """/story: the headline, outlets, first and last report, and its articles oldest first
    (title as a link, outlet, time), then "and N more" past what the embed holds."""
    story = detail.record
    embed = discord.Embed(title=truncate(escape(story.headline) or "(untitled)", LIMITS["title"]),
                          colour=SEVERITY_COLOURS["info"])
    embed.add_field(name=_plural(outlet_count(story), "outlet"),
                    value=truncate(_names(story.outlets, 900) or "—", LIMITS["field_value"]),
                    inline=False)
    embed.add_field(name="First seen", value=_when(story.first_seen, "f"), inline=True)
    embed.add_field(name="Last seen", value=_when(story.last_seen, "f"), inline=True)
    if story.updated_at is not None:
        embed.add_field(name="Changed in place", value=_when(story.updated_at, "f"), inline=True)
    embed.set_footer(text=f"story {story.id} · {_plural(story.articles, 'article')}")
    # what the description may hold: its own limit, and what is left of the embed's total
    budget = min(LIMITS["description"], LIMITS["total"] - len(embed) - 40)
    out: list[str] = []
    size = 0
    for art in detail.articles:
        when = _when(art.published, "f", "undated")
        link = masked_link(truncate(escape(art.title) or "(untitled)", 150), art.url)
        line = f"{when} · {truncate(escape(art.source or 'unknown source'), 60)} · {link}"
        if size + len(line) + 1 > budget - 30:  # room for the "and N more" line
            break
        out.append(line)
        size += len(line) + 1
    more = story.articles - len(out)
    if more > 0:
        out.append(f"… and {more} more")
    embed.description = "\n".join(out) or "No stored articles."
    return fit_embed(embed)


def _source_failing(src: SourceView) -> bool:
    return src.state.paused or src.state.failures > 0


# Room kept for /stats's footer, which counts what the embed could not hold; within
# _FIT_FOOTER, so fit_embed never cuts it.
_STATS_FOOTER = 120
# Paused routes /stats shows ahead of failing sources.
_STATS_ROUTES_FIRST = 3


def stats_embed(s: Stats) -> discord.Embed:
    """/stats: articles, alerts, and each source's health (failing and paused sources
    first); then the paused routes.

    The first three paused routes and the failing sources are taken first, then the other
    paused routes, then the healthy sources, so a problem is what is left out last; what
    the embed cannot hold (25 fields, 6,000 characters) is counted in the footer ("… and 3
    more sources (none failing)"), never left out without a word."""
    embed = discord.Embed(title="newswatch stats", colour=SEVERITY_COLOURS["info"])
    embed.add_field(name="Articles", value=str(s.articles))
    alerts = ", ".join(f"{k} {v}" for k, v in sorted(s.alerts.items())) or "none yet"
    embed.add_field(name="Alerts", value=alerts)
    sources = sorted(s.sources, key=lambda src: not _source_failing(src))  # stable
    source_fields: list[tuple[str, str]] = []
    for src in sources:
        st = src.state
        lines = [f"last success {_when(st.last_success)} · next poll "
                 f"{_when(st.next_poll, missing='now')}"]
        if st.paused:
            lines.insert(0, f"**paused** after {st.failures} failures")
        if st.last_error:
            # Escaped, as /alerts status escapes a route's reason: an error quotes what a
            # feed's server sent (a redirect's Location, an HTTP reason), and a server could
            # put a masked link of its own into the bot's answer.
            lines.append(f"last error: {escape(truncate(st.last_error, 300))}")
        source_fields.append((truncate(f"{src.name} ({src.kind})", LIMITS["field_name"]),
                              truncate("\n".join(lines), LIMITS["field_value"])))
    route_fields = [(truncate(f"route {visible(route)} paused", LIMITS["field_name"]),
                     truncate(escape(reason), LIMITS["field_value"]))
                    for route, reason in s.paused_routes.items()]
    failing = sum(map(_source_failing, sources))
    # Which fields are shown, problems first: a field is taken while it fits in the fields
    # left and, cut to fit_embed's floor, in the total, so fit_embed only shortens values
    # and never drops a field the footer would not count. The first paused routes go
    # before the failing sources: a network outage fails every feed at once, and should
    # not push a route that stopped delivering alerts out of sight.
    first_routes = min(len(route_fields), _STATS_ROUTES_FIRST)
    order = ([("route", i) for i in range(first_routes)]
             + [("source", i) for i in range(failing)]
             + [("route", i) for i in range(first_routes, len(route_fields))]
             + [("source", i) for i in range(failing, len(source_fields))])
    room = LIMITS["total"] - len(embed) - _STATS_FOOTER
    slots = LIMITS["fields"] - len(embed.fields)
    shown: dict[str, set[int]] = {"source": set(), "route": set()}
    for kind, i in order:
        name, value = (source_fields if kind == "source" else route_fields)[i]
        need = len(name) + min(len(value), _FIT_FIELD)
        if slots == 0 or need > room:
            break
        shown[kind].add(i)
        slots -= 1
        room -= need
    for kind, fields in (("source", source_fields), ("route", route_fields)):
        for i, (name, value) in enumerate(fields):
            if i in shown[kind]:
                embed.add_field(name=name, value=value, inline=False)
    left: list[str] = []
    if rest := len(source_fields) - len(shown["source"]):
        rest_failing = sum(1 for i in range(failing) if i not in shown["source"])
        left.append(f"… and {_plural(rest, 'more source')} "
                    f"({f'{rest_failing} failing' if rest_failing else 'none failing'})")
    if rest := len(route_fields) - len(shown["route"]):
        left.append(f"… and {_plural(rest, 'more paused route')}")
    if left:
        embed.set_footer(text=" · ".join(left))
    return fit_embed(embed)


def rules_embed(views: Sequence[RuleView]) -> discord.Embed:
    """/rules list: each rule's route, severity, recent matches, its alerts of the last 7 days
    (acknowledged, share found not relevant: which rules are noisy), time-outs (a regex or
    sloppy phrase out of its time), mute,
    query."""
    lines = []
    for v in views:
        r = v.rule
        # the date with the time, as /mute says it: a mute may last days
        muted = f" · muted until {_when(v.muted_until, 'f')}" if v.muted_until else ""
        slow = f" · {v.over_budget} time-out(s) in 7d" if v.over_budget else ""
        share = v.not_relevant_share
        feedback = (f" · {v.alerts_7d} alert(s), {v.acks_7d} acknowledged, "
                    f"{share:.0%} not relevant" if share is not None else "")
        lines.append(f"**{escape(r.name)}** → `{code_text(r.channel)}` · {r.severity} · "
                     f"{v.matches_7d} in 7d{feedback}{slow}{muted}\n"
                     f"`{code_text(truncate(r.query, 200))}`")
    # Whole rules only, and those left out counted (they were cut mid-query, and the rest
    # dropped without a word): the footer names how many.
    kept: list[str] = []
    room = LIMITS["description"]
    for entry in lines:
        need = len(entry) + (1 if kept else 0)
        if need > room:
            break
        kept.append(entry)
        room -= need
    embed = discord.Embed(title=f"{len(views)} rule(s)", colour=SEVERITY_COLOURS["info"],
                          description="\n".join(kept) or "No rules.")
    if rest := len(lines) - len(kept):
        embed.set_footer(text=f"… and {_plural(rest, 'more rule')}, not shown (the list is "
                              "longer than a message holds)")
    return fit_embed(embed)


def sources_embed(views: Sequence[SourceView]) -> discord.Embed:
    """/sources list: each source's kind, schedule and health; the shared ones (the operator's,
    which every server sees) are marked, and named again in the footer. A feed URL's
    credentials (``?token=…``) are not shown: everyone may list the sources."""
    lines = []
    for v in views:
        st = v.state
        health = "paused" if st.paused else ("failing" if st.failures else
                                             ("ok" if st.last_success else "not polled yet"))
        mark = " · shared" if v.shared else ""
        # An outlet set by hand is shown: a wrong one makes min_sources count it wrong.
        outlet = f", outlet {escape(truncate(v.outlet, 64))}" if v.outlet else ""
        lines.append(f"**{escape(v.name)}**{mark} ({v.kind}, every {format_duration(v.every)},"
                     f" {health}{outlet}) {escape(truncate(without_credentials(v.where), 200))}")
    embed = discord.Embed(title=f"{len(views)} source(s)", colour=SEVERITY_COLOURS["info"],
                          description=truncate("\n".join(lines) or "No sources.",
                                               LIMITS["description"]))
    shared = [v.name for v in views if v.shared]
    if shared:
        embed.set_footer(text=truncate("Shared with every server (the operator's): "
                                       + ", ".join(shared), LIMITS["footer"]))
    return fit_embed(embed)


def rule_test_embed(result: RuleTest) -> discord.Embed:
    """/rules test: how many stored articles matched, with sample snippets."""
    cut = f"\n{CUT_SHORT}" if result.truncated else ""
    embed = discord.Embed(
        title=truncate(f"{result.count} match(es) in the last {result.window.days} days",
                       LIMITS["title"]),
        description=f"`{code_text(truncate(result.query, 500))}`{cut}",
        colour=SEVERITY_COLOURS["info"])
    for hit in result.samples:
        snippet = render_runs(snippet_runs(hit.article.text, hit.match.highlights, 200), 300)
        embed.add_field(name=truncate(escape(hit.article.title) or "(untitled)",
                                      LIMITS["field_name"]),
                        value=truncate(snippet or "—", LIMITS["field_value"]), inline=False)
    return fit_embed(embed)


def delivery_embed(st: DeliveryStatus, redact: Callable[[str], str]) -> discord.Embed:
    """/alerts status. ``redact`` removes secrets from Discord's error texts kept as reasons."""
    embed = discord.Embed(title="Alert delivery", colour=SEVERITY_COLOURS["info"])
    counts = ", ".join(f"{k} {v}" for k, v in sorted(st.counts.items())) or "none yet"
    embed.add_field(name="Alerts", value=counts, inline=False)
    for route, reason in list(st.paused.items())[:5]:
        embed.add_field(
            name=truncate(f"route {visible(route)} paused · {st.held.get(route, 0)} held",
                          LIMITS["field_name"]),
            value=truncate(escape(redact(reason)), LIMITS["field_value"]), inline=False)
    for route, when in list(st.backing_off.items())[:5]:
        why, failures, waiting = st.backing_off_why.get(route, ("", 0, 0))
        said = (f"{escape(redact(why))} · {failures} failure{'s' if failures != 1 else ''} "
                f"in a row · {waiting} alert{'s' if waiting != 1 else ''} waiting · "
                if why else "")
        embed.add_field(name=truncate(f"route {visible(route)} backing off",
                                      LIMITS["field_name"]),
                        value=truncate(f"{said}next attempt {_when(when)}",
                                       LIMITS["field_value"]), inline=False)
    if st.maybe_sent:
        embed.add_field(name="Sends whose answer was lost", inline=False,
                        value=f"{st.maybe_sent} (checked before sending again where "
                              "the bot can read the channel)")
    if st.rejected:
        lines = [f"#{r.id} → `{code_text(r.route)}`: {escape(redact(r.reason or '?'))}"
                 for r in st.rejected]
        embed.add_field(name="Recently rejected", inline=False,
                        value=truncate("\n".join(lines), LIMITS["field_value"]))
    if st.waiting:
        # The count of them all: the list holds the first 100.
        waiting = max(st.counts.get("waiting", 0), len(st.waiting))
        embed.add_field(name=f"Waiting for more outlets ({waiting})", inline=False,
                        value=_waiting_text(st))
    schedule = _schedule_text(st)
    if schedule:
        embed.add_field(name="Kept for digests", value=schedule, inline=False)
    return fit_embed(embed)


def _schedule_text(st: DeliveryStatus) -> str | None:
    """One line per route that keeps alerts or posts digests: how many alerts wait and when
    the next digest goes out ("`briefing` · 12 kept · next digest <time>"). A cap summary
    kept for the end of quiet hours is counted apart, as what it is: "`briefing` · 1 cap
    summary kept · goes out <time>" when no alert waits with it (it then posts on its own,
    no digest), "12 kept and 1 cap summary" when they go out together."""
    lines: list[str] = []
    for route in sorted({*st.scheduled, *st.next_digest, *st.summaries}):
        count, due = st.scheduled.get(route, (0, None))
        summaries = st.summaries.get(route, 0)
        said = f"{summaries} cap summar{'y' if summaries == 1 else 'ies'}"
        if count == 0 and summaries and due is not None:
            kept, when = f"{said} kept", f"goes out {_when(due, 'R')} ({_when(due, 't')})"
        else:
            kept = f"{count} kept and {said}" if summaries else f"{count} kept"
            nxt = min((d for d in (due, st.next_digest.get(route)) if d is not None),
                      default=None)
            when = (f"next digest {_when(nxt, 'R')} ({_when(nxt, 't')})" if nxt
                    else "no digest due")
        lines.append(f"`{code_text(truncate(route, 60))}` · {kept} · {when}")
    if not lines:
        return None
    shown: list[str] = []
    size = 0
    for i, line in enumerate(lines):
        if size + len(line) + 1 > LIMITS["field_value"] - 20:
            shown.append(f"… and {len(lines) - i} more")
            break
        shown.append(line)
        size += len(line) + 1
    return "\n".join(shown)


def _waiting_text(st: DeliveryStatus) -> str:
    """One line per waiting alert, oldest first, while they fit in a field: route, rules,
    the story's headline, outlets so far of those needed, and since when it waits."""
    lines: list[str] = []
    size = 0
    for i, row in enumerate(sorted(st.waiting, key=lambda r: (r.created_at, r.id))):
        story = st.stories.get((row.route, row.story_id)) if row.story_id else None
        rules = ", ".join(f"`{code_text(r.name)}`" for r in row.rules) or "—"
        headline = truncate(escape(story.headline), 120) if story else "(story not found)"
        have = (story.counted if story.counted is not None else len(story.outlets)) if story else 0
        line = (f"`{code_text(truncate(row.route, 60))}` · {rules} · {headline} · "
                f"{have}/{row.min_sources} outlets · since {_when(row.created_at)}")
        # (the list holds the first 100: what is left is counted from them all)
        rest = max(st.counts.get("waiting", 0), len(st.waiting)) - i
        if lines and size + len(line) + 1 > LIMITS["field_value"] - 20:
            lines.append(f"… and {rest} more")
            break
        lines.append(truncate(line, LIMITS["field_value"] - 20))
        size += len(line) + 1
    return truncate("\n".join(lines), LIMITS["field_value"])


# ------------------------------------------------------------------------------ digests

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _item_time(item: DigestItem) -> datetime:
    return item.newest or item.article.published or item.article.fetched_at or _EPOCH


def _lead_rule(item: DigestItem) -> RuleConfig | None:
    """The rule a digest line is listed under: its most severe one (the first of equals)."""
    if not item.rules:
        return None
    return max(item.rules, key=lambda r: _severity_rank(r.severity))


def digest_groups(digest: Digest) -> list[tuple[str, list[DigestItem]]]:
    """The digest's items grouped by rule (each under its most severe rule), newest first
    within a group, groups in the order of their newest item."""
    groups: dict[str, list[DigestItem]] = {}
    for item in sorted(digest.items, key=_item_time, reverse=True):
        lead = _lead_rule(item)
        groups.setdefault(lead.name if lead else "", []).append(item)
    return list(groups.items())


def digest_line(item: DigestItem, group: str = "") -> str:
    """One story of a digest: "• [headline](url) · DW · 3 outlets · 4 articles · 10:42", and
    the other rules that fired ("also `kyiv`"). Article text is escaped, so it cannot ping,
    format or add a second link; a line is never longer than one URL plus ~400 characters."""
    story = item.story
    outlets = (1 if story is None else story.counted if story.counted is not None
               else len(story.outlets))
    articles = max(story.articles if story is not None else 0, item.articles)
    return _digest_line(item, group, outlets, articles)


# Counts that stand for any count when a digest is split (see digest_messages): shown as
# "999+ outlets · 9999+ articles", the longest a line's counts can be.
_MOST_OUTLETS, _MOST_ARTICLES = 1000, 10000


def _count(n: int, most: int, what: str) -> str:
    return f"{most - 1}+ {what}" if n >= most else f"{n} {what}"


def _digest_line(item: DigestItem, group: str, outlets: int, articles: int) -> str:
    art = item.article
    parts = [masked_link(truncate(escape(art.title) or "(untitled)", 200), art.url)]
    if art.source:
        parts.append(truncate(escape(art.source), 60))
    if outlets > 1:
        parts.append(_count(outlets, _MOST_OUTLETS, "outlets"))
    if articles > max(outlets, 1):
        parts.append(_count(articles, _MOST_ARTICLES, "articles"))
    when = item.newest or art.published
    if when is not None:
        parts.append(_when(when, "t"))
    others = [r.name for r in item.rules if r.name != group]
    if others:
        parts.append("also " + ", ".join(f"`{code_text(truncate(n, 60))}`" for n in others[:3])
                     + (f" +{len(others) - 3}" if len(others) > 3 else ""))
    return "• " + " · ".join(parts)


def _since(digest: Digest) -> str:
    """When the digest's oldest item was kept, in the route's time zone."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(digest.timezone)
    since = digest.since.astimezone(zone)
    latest = max([since, *(_item_time(i).astimezone(zone) for i in digest.items)])
    label = "UTC" if digest.timezone == "UTC" else since.tzname() or digest.timezone
    if latest.date() == since.date():
        return since.strftime(f"%H:%M {label}")  # the same day: the time says enough
    return since.strftime(f"%d %b %H:%M {label}")


def digest_title(digest: Digest) -> str:
    """Why this message came now: "Digest · 12 stories · since 08:00 UTC", "Quiet hours
    digest · …", or "… and 37 more on this route" for alerts past the hourly cap."""
    stories = _plural(digest.stories, "story", "stories")
    if digest.reason == "cap":
        return f"… and {digest.articles} more on this route (past the hourly cap)"
    if digest.reason == "quiet hours":
        return f"Quiet hours digest · {stories} · since {_since(digest)}"
    if digest.reason == "digest":
        return f"Digest · {stories} · since {_since(digest)}"
    return f"Digest ({digest.reason}) · {stories} · since {_since(digest)}"


# The most messages one digest posts; what does not fit is counted in a last line, for
# which every part keeps room.
MAX_DIGEST_PARTS = 20
_ROOM_FOR_MORE = 80


def _route_shown(route: str) -> str:
    """A route as its readers know it: a server's channel route (``<server id>:<name>``) as
    ``#name``, its direction controls and control characters shown as such (a channel name
    is anyone's to choose); a config file's route by its name."""
    _, sep, name = route.partition(":")
    return reordering_shown(control_pictures(f"#{name}" if sep else route))


def digest_messages(digest: Digest) -> list[dict[str, Any]]:
    """Keyword arguments for each message of a digest (one, or as few as Discord's limits
    need): one embed per message whose description lists the stories grouped by rule, newest
    first, a line each. Parts split between stories, never inside a line, and a group that
    continues says so. Every message pings nobody. Each footer names the digest and the part
    ("newswatch digest 42 · part 2/3"), so an earlier send of a part can be recognised.
    No items: no messages.

    A retry of a digest is read again from the store, where its stories may have gained
    outlets meanwhile: the parts are cut as though every line's counts were their longest
    ("999+ outlets · 9999+ articles"), so every attempt cuts them between the same stories
    and part *n* of a retry is part *n* of the first try (a retry finds the parts already
    posted by their nonce or footer, which name the part). At most :data:`MAX_DIGEST_PARTS`
    messages: a longer digest ends with a line saying how many stories it leaves out."""
    groups = digest_groups(digest)
    if not groups:
        return []
    budget = LIMITS["description"] - _ROOM_FOR_MORE
    intro = (f"Kept since {_when(digest.since, 'f')} · "
             f"{_plural(digest.stories, 'story', 'stories')} · "
             f"{_plural(digest.articles, 'article')}")
    parts: list[list[str]] = []
    current = [intro]
    size = len(intro)  # of current as cut: each line at its longest
    left_out = 0
    for name, items in groups:
        label = f"**`{code_text(truncate(name, 80))}`**" if name else "**other rules**"
        in_part = started = False
        for item in items:
            if left_out:
                left_out += 1
                continue
            line = digest_line(item, name)
            longest = len(_digest_line(item, name, _MOST_OUTLETS, _MOST_ARTICLES))
            add = [line] if in_part else [*([""] if current else []), label, line]
            grow = sum(len(x) + 1 for x in add) - len(line) + longest
            if size + grow > budget and any(x.startswith("• ") for x in current):
                if len(parts) + 1 == MAX_DIGEST_PARTS:
                    left_out = 1
                    continue
                parts.append(current)
                current = []
                add = [f"{label} (continued)" if started else label, line]
                grow = sum(len(x) + 1 for x in add) - len(line) + longest - 1
                size = 0
            current += add
            size += grow
            in_part = started = True
    if left_out:
        current += ["", f"… and {_plural(left_out, 'more story', 'more stories')} not shown "
                        "here (see /recent)"]
    parts.append(current)
    title = digest_title(digest)
    colour = max((i.severity for i in digest.items), key=_severity_rank)
    out: list[dict[str, Any]] = []
    for n, lines in enumerate(parts, start=1):
        text = "\n".join(lines)
        where = f" ({n}/{len(parts)})" if len(parts) > 1 else ""
        embed = discord.Embed(title=truncate(title, LIMITS["title"] - len(where)) + where,
                              description=text,
                              colour=SEVERITY_COLOURS.get(colour, SEVERITY_COLOURS["medium"]))
        part = f" · part {n}/{len(parts)}" if len(parts) > 1 else ""
        embed.set_footer(text=truncate(f"newswatch digest {digest.id}{part} · route "
                                       f"{_route_shown(digest.route)}", LIMITS["footer"]))
        out.append({"embed": embed, "allowed_mentions": _NO_PINGS})
    return out
