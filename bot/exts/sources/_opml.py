"""How /sources import reports an OPML import: one embed, a summary and every entry, refused
ones first (they need action), cut to Discord's limits with a count of what did not fit."""

from __future__ import annotations

import discord

from bot.embeds import LIMITS, SEVERITY_COLOURS, escape, truncate
from watchers.opml import OpmlOutcome, OpmlReport
from watchers.urls import without_credentials

__all__ = ["MAX_ATTACHMENT_BYTES", "import_embed"]

#: The attachment is refused by its declared size before it is downloaded.
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024

_MARK = {"refused": "⛔", "skipped": "⏭️", "added": "✅"}
_ORDER = ("refused", "skipped", "added")
# Leaves room for the "… and N more" line within the description limit.
_BUDGET = LIMITS["description"] - 80


def _line(o: OpmlOutcome) -> str:
    # (a URL's credentials, a ?token=, are not shown: the answer is the channel's to read)
    what = escape(truncate(o.entry.title or without_credentials(o.entry.url), 80))
    head = f"{_MARK[o.status]} line {o.entry.line}: {what}"
    if o.status == "added":
        tail = f" → **{escape(o.name or '')}**"
        return head + tail + (f" ({escape(o.reason)})" if o.reason else "")
    return f"{head} — {escape(truncate(o.reason, 200))}"


def import_embed(filename: str, report: OpmlReport) -> discord.Embed:
    """The answer to /sources import."""
    lines: list[str] = []
    used = 0
    shown = 0
    ordered = [o for status in _ORDER for o in report.outcomes if o.status == status]
    for o in ordered:
        line = _line(o)
        if used + len(line) + 1 > _BUDGET:
            break
        lines.append(line)
        used += len(line) + 1
        shown += 1
    if shown < len(ordered):
        lines.append(f"… and {len(ordered) - shown} more")
    colour = SEVERITY_COLOURS["high" if report.refused else "low" if report.added else "info"]
    return discord.Embed(
        title=truncate(f"Imported {escape(filename)}", LIMITS["title"]),
        description="\n".join(lines),
        colour=colour,
    ).set_footer(text=report.summary())
