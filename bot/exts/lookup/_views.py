"""Paging buttons and story expansion for lookup results.

The view holds its lines in memory; ◀ / ▶ edit the message in place, and the select (present
while the page shows a story of several articles) answers privately with that story, leaving
the results and their paging as they were.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import discord

from bot.embeds import ResultLine, results_embed, truncate

#: Shows one story by id: its embed, or None when there is no such story (any more).
Expand = Callable[[str], Awaitable[discord.Embed | None]]


class PagedResults(discord.ui.View):
    """Result lines shown a page at a time with ◀ / ▶ buttons (only with more than one page)
    and a select that expands a story on the current page (only when the page has one)."""

    def __init__(self, title: str, rows: Sequence[ResultLine], *, page_size: int = 5,
                 timeout: float = 600, note: str | None = None, total: int | None = None,
                 expand: Expand | None = None) -> None:
        super().__init__(timeout=timeout)
        self.title = title
        self.note = note
        self.rows = list(rows)
        self.total = len(self.rows) if total is None else total
        self.page_size = page_size
        self.page = 0
        self.pages = max(1, -(-len(self.rows) // page_size))
        self._expand = expand
        if self.pages == 1:
            self.remove_item(self.previous)
            self.remove_item(self.next)
        self._sync()

    @property
    def has_items(self) -> bool:
        """Whether there is anything to click (else the message goes without the view)."""
        return bool(self.children)

    def _page_rows(self) -> list[ResultLine]:
        start = self.page * self.page_size
        return self.rows[start:start + self.page_size]

    def embed(self) -> discord.Embed:
        return results_embed(self.title, self._page_rows(), page=self.page, pages=self.pages,
                             total=self.total, note=self.note, lines=len(self.rows))

    def _sync(self) -> None:
        self.previous.disabled = self.page == 0
        self.next.disabled = self.page >= self.pages - 1
        options = [
            discord.SelectOption(
                label=truncate(line.story.headline.strip() or "(untitled)", 100),
                value=line.story.id,
                description=truncate(f"{len(line.story.outlets)} outlet(s) · "
                                     f"{line.story.articles} articles · {line.story.id}", 100))
            for line in self._page_rows() if line.expandable and line.story is not None
        ]
        self.expand.options = options
        if options and self._expand is not None:
            if self.expand not in self.children:
                self.add_item(self.expand)
        elif self.expand in self.children:
            self.remove_item(self.expand)

    @discord.ui.button(label="◀", style=discord.ButtonStyle.secondary, row=0)
    async def previous(self, interaction: discord.Interaction[Any],
                       button: discord.ui.Button[Any]) -> None:
        self.page = max(0, self.page - 1)
        self._sync()
        await interaction.response.edit_message(embed=self.embed(), view=self)

    @discord.ui.button(label="▶", style=discord.ButtonStyle.secondary, row=0)
    async def next(self, interaction: discord.Interaction[Any],
                   button: discord.ui.Button[Any]) -> None:
        self.page = min(self.pages - 1, self.page + 1)
        self._sync()
        await interaction.response.edit_message(embed=self.embed(), view=self)

    @discord.ui.select(cls=discord.ui.Select[Any], placeholder="Expand a story…", row=1,
                       options=[discord.SelectOption(label="-")])
    async def expand(self, interaction: discord.Interaction[Any],
                     select: discord.ui.Select[Any]) -> None:
        story_id = select.values[0]
        embed = await self._expand(story_id) if self._expand is not None else None
        if embed is None:
            await interaction.response.send_message("That story is no longer stored.",
                                                    ephemeral=True)
            return
        await interaction.response.send_message(embed=embed, ephemeral=True)
