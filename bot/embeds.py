"""Pure rendering: articles, alerts and lookups → discord.Embed and message parameters.

Everything here stays inside Discord's limits, escapes markdown and mentions in text that comes
from articles, and puts only http(s) URLs into embeds. No I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import discord

from watchers.delivery import Alert
from watchers.models import Article, Highlight, Match
from watchers.snippet import Run, snippet_runs, title_runs

__all__ = [
    "LIMITS",
    "alert_message",
    "article_embed",
    "embed_text_length",
    "escape",
    "safe_url",
    "truncate",
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
}
SEVERITY_COLOURS = {
    "info": 0x5865F2,
    "low": 0x57F287,
    "medium": 0xFEE75C,
    "high": 0xE67E22,
    "critical": 0xED4245,
}
ELLIPSIS = "…"
# Characters that Discord markdown or mentions give meaning to; a backslash shows them as written.
_MARKUP = re.compile(r"([\\*_~|`>\[\]()<@#:-])")
_WS = re.compile(r"\s+")


def escape(text: str) -> str:
    """Show ``text`` as written: no markdown, links, mentions or emoji codes take effect."""
    return _MARKUP.sub(r"\\\1", _WS.sub(" ", text).strip())


def truncate(text: str, limit: int) -> str:
    """Cut at ``limit`` characters with an ellipsis, never leaving a dangling escape."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    trailing = len(cut) - len(cut.rstrip("\\"))
    if trailing % 2:
        cut = cut[:-1]  # an odd number of backslashes would escape the ellipsis
    return cut + ELLIPSIS


def safe_url(url: str | None) -> str | None:
    """The URL if it is http(s) and plausibly shaped, else None."""
    if not url or len(url) > 2000:
        return None
    return url if re.match(r"(?i)^https?://[^\s/$.?#][^\s]*$", url) else None


def render_runs(runs: Sequence[Run], limit: int) -> str:
    """Escaped runs with hits in bold, stopping (with an ellipsis) before ``limit`` characters."""
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
            out.append(ELLIPSIS)
            break
        out.append(piece)
        size += len(piece)
    return "".join(out).strip()


def _timestamp(dt: datetime | None) -> str:
    return f"<t:{int(dt.timestamp())}:f>" if dt else "unknown"


def embed_text_length(embed: discord.Embed) -> int:
    return len(embed)


def _fit(embed: discord.Embed) -> discord.Embed:
    """Shrink the description until the whole embed is inside the 6000-character total."""
    over = len(embed) - LIMITS["total"]
    if over > 0 and embed.description:
        embed.description = truncate(embed.description, max(1, len(embed.description) - over))
    return embed


def _hits_text(matches: Iterable[Match]) -> str:
    parts: list[str] = []
    for m in matches:
        for hit in m.hits:
            label = f"{escape(hit.text)}"
            if hit.kind in ("fuzzy", "alias") and hit.variant:
                label += f" ≈ {escape(hit.term)} ({hit.score:.0f})"
            if label not in parts:
                parts.append(label)
    return ", ".join(parts) or "—"


def alert_message(alert: Alert) -> dict[str, Any]:
    """Keyword arguments for ``Messageable.send`` / ``Webhook.send`` for one alert.

    Only the rules' configured roles may be mentioned; article text can never ping anyone.
    """
    art = alert.article
    highlights: list[Highlight] = [h for m in alert.matches for h in m.highlights]
    title = render_runs(title_runs(art.title, highlights), LIMITS["title"]) or "(untitled)"
    description = render_runs(snippet_runs(art.text, highlights, width=600), 1500)
    embed = discord.Embed(
        title=truncate(title, LIMITS["title"]),
        url=safe_url(art.url),
        description=description or None,
        colour=SEVERITY_COLOURS.get(alert.severity, SEVERITY_COLOURS["medium"]),
        timestamp=art.published,
    )
    embed.set_author(name=truncate(escape(art.source or "newswatch"), LIMITS["author"]))
    rules = ", ".join(f"`{r.name}`" for r in alert.rules)
    embed.add_field(name="Rule", value=truncate(rules or "—", LIMITS["field_value"]), inline=True)
    embed.add_field(name="Published", value=_timestamp(art.published), inline=True)
    embed.add_field(name="Why", value=truncate(_hits_text(alert.matches), LIMITS["field_value"]),
                    inline=False)
    embed.set_footer(text=f"newswatch · {alert.severity} · article {art.id}")
    roles = sorted({r.mention_role for r in alert.rules if r.mention_role})
    content = " ".join(f"<@&{r}>" for r in roles) or None
    allowed = discord.AllowedMentions(
        everyone=False, users=False, replied_user=False,
        roles=[discord.Object(id=r) for r in roles] if roles else False,
    )
    return {"content": content, "embed": _fit(embed), "allowed_mentions": allowed}


def article_embed(article: Article, matches: Sequence[Match], *, excerpt: int = 1200
                  ) -> discord.Embed:
    """An article with every rule that matched it and why (for /article)."""
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
    for m in matches[: LIMITS["fields"] - 1]:
        embed.add_field(name=truncate(f"Rule {m.rule}", LIMITS["field_name"]),
                        value=truncate(_hits_text([m]), LIMITS["field_value"]), inline=False)
    if not matches:
        embed.add_field(name="Rules", value="No rule matched this article.", inline=False)
    embed.set_footer(text=f"article {article.id}")
    return _fit(embed)


def results_embed(title: str, rows: Sequence[tuple[Article, Match | None]], *, page: int,
                  pages: int, total: int) -> discord.Embed:
    """A page of lookup results: one line per article with its best highlight."""
    embed = discord.Embed(title=truncate(title, LIMITS["title"]), colour=SEVERITY_COLOURS["info"])
    lines = []
    for art, m in rows:
        when = f"<t:{int(art.published.timestamp())}:d>" if art.published else "—"
        head = truncate(escape(art.title), 120)
        link = safe_url(art.url)
        head = f"[{head}]({link})" if link else f"**{head}**"
        why = ""
        if m is not None:
            snippet = render_runs(snippet_runs(art.text, m.highlights, width=160), 220)
            why = f"\n> {snippet}" if snippet else ""
        lines.append(f"{head} · {escape(art.source)} · {when} · `{art.id}`{why}")
    embed.description = truncate("\n".join(lines) or "No results.", LIMITS["description"])
    embed.set_footer(text=f"page {page + 1}/{max(pages, 1)} · {total} result(s)")
    return _fit(embed)
