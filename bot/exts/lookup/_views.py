"""Paging buttons and story expansion for lookup results.

The view holds its lines in memory; ◀ / ▶ edit the message in place, and the select (present
while the page shows a story of several articles) answers privately with that story, leaving
the results and their paging as they were.

Invariants:
- A view lives for ``PagedResults.TIMEOUT`` after its last click; then its buttons and select
  are disabled on the message (edited through the interaction that last changed it: the
  command's answer, or a page click), so nothing that looks clickable stays.
- Its components' custom ids carry the view's own random id (``nw:results:<id>:next``). A
  click that no live view answers (the bot restarted, or Discord delivered it after the
  timeout) is answered by :class:`ExpiredResults`, privately, instead of failing.
"""

from __future__ import annotations

import logging
import re
import secrets
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

import discord

from bot.embeds import ResultLine, outlet_count, results_embed, truncate, visible

__all__ = ["EXPIRED", "ExpiredResults", "PagedResults"]

log = logging.getLogger("newswatch")

#: Shows one story by id: its embed, or None when there is no such story (any more).
Expand = Callable[[str], Awaitable[discord.Embed | None]]

EXPIRED = "These results have expired — run /search again."
_ID = "nw:results:{view}:{part}"
_ID_PATTERN = r"nw:results:(?P<view>[0-9a-f]{12}):(?P<part>prev|next|story)"

# The views that answer clicks now, by their id (weak: a view that stopped is gone with it).
_LIVE: weakref.WeakValueDictionary[str, PagedResults] = weakref.WeakValueDictionary()


class PagedResults(discord.ui.View):
    """Result lines shown a page at a time with ◀ / ▶ buttons (only with more than one page)
    and a select that expands a story on the current page (only when the page has one)."""

    #: Seconds after the last click before the buttons are disabled (Discord lets the
    #: interaction that sent them edit the message for 15 minutes).
    TIMEOUT: ClassVar[float] = 600

    def __init__(self, title: str, rows: Sequence[ResultLine], *, page_size: int = 5,
                 timeout: float | None = None, note: str | None = None,
                 total: int | None = None, expand: Expand | None = None,
                 interaction: discord.Interaction[Any] | None = None) -> None:
        super().__init__(timeout=self.TIMEOUT if timeout is None else timeout)
        self.results_id = secrets.token_hex(6)
        for part, item in (("prev", self.previous), ("next", self.next),
                           ("story", self.expand)):
            item.custom_id = _ID.format(view=self.results_id, part=part)
        _LIVE[self.results_id] = self
        # what edits the message once the view times out: the command answered with it, then
        # each page click (None: the buttons are left as they are)
        self._editor = interaction
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
                label=truncate(visible(line.story.headline.strip()) or "(untitled)", 100),
                value=line.story.id,
                description=truncate(f"{outlet_count(line.story)} outlet(s) · "
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
        self._editor = interaction

    @discord.ui.button(label="▶", style=discord.ButtonStyle.secondary, row=0)
    async def next(self, interaction: discord.Interaction[Any],
                   button: discord.ui.Button[Any]) -> None:
        self.page = min(self.pages - 1, self.page + 1)
        self._sync()
        await interaction.response.edit_message(embed=self.embed(), view=self)
        self._editor = interaction

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

    async def on_timeout(self) -> None:
        _LIVE.pop(self.results_id, None)
        for item in self.children:
            if isinstance(item, discord.ui.Button | discord.ui.Select):
                item.disabled = True
        editor, self._editor = self._editor, None
        if editor is None:
            return
        try:  # the original response of a command, or the message a page click edited
            await editor.edit_original_response(view=self)
        except discord.HTTPException as exc:  # deleted, or its token outlived (15 minutes)
            log.info("could not disable expired result buttons: %s", exc)


class ExpiredResults(discord.ui.DynamicItem[discord.ui.Item[Any]],
                     template=re.compile(_ID_PATTERN)):
    """A click on results' buttons or select that no live view answers: told privately that
    the results expired (Discord would say only "This interaction failed")."""

    def __init__(self, view_id: str, item: discord.ui.Item[Any]) -> None:
        super().__init__(item)
        self.view_id = view_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any],
                             item: discord.ui.Item[Any], match: re.Match[str], /
                             ) -> ExpiredResults:
        return cls(match["view"], item)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        live = _LIVE.get(self.view_id)
        if live is not None and not live.is_finished():
            return  # the view answers it
        await interaction.response.send_message(EXPIRED, ephemeral=True)
