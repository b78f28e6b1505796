"""Paging buttons for lookup results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import discord

from bot.embeds import results_embed
from watchers.models import Article, Match


class PagedResults(discord.ui.View):
    """Results held in memory and shown a page at a time with ◀ / ▶ buttons."""

    def __init__(self, title: str, rows: Sequence[tuple[Article, Match | None]], *,
                 page_size: int = 5, timeout: float = 600, note: str | None = None) -> None:
        super().__init__(timeout=timeout)
        self.title = title
        self.note = note
        self.rows = list(rows)
        self.page_size = page_size
        self.page = 0
        self.pages = max(1, -(-len(self.rows) // page_size))
        self._sync()

    def embed(self) -> discord.Embed:
        start = self.page * self.page_size
        return results_embed(self.title, self.rows[start:start + self.page_size], page=self.page,
                             pages=self.pages, total=len(self.rows), note=self.note)

    def _sync(self) -> None:
        self.previous.disabled = self.page == 0
        self.next.disabled = self.page >= self.pages - 1

    @discord.ui.button(label="◀", style=discord.ButtonStyle.secondary)
    async def previous(self, interaction: discord.Interaction[Any],
                       button: discord.ui.Button[Any]) -> None:
        self.page = max(0, self.page - 1)
        self._sync()
        await interaction.response.edit_message(embed=self.embed(), view=self)

    @discord.ui.button(label="▶", style=discord.ButtonStyle.secondary)
    async def next(self, interaction: discord.Interaction[Any],
                   button: discord.ui.Button[Any]) -> None:
        self.page = min(self.pages - 1, self.page + 1)
        self._sync()
        await interaction.response.edit_message(embed=self.embed(), view=self)
