"""Paging buttons and story expansion for lookup results.

The view holds its lines in memory; ◀ / ▶ edit the message in place, and the select (present
while the page shows a story of several articles) answers privately with that story, leaving
the results and their paging as they were.

Invariants:
- A view lives for ``PagedResults.TIMEOUT`` after its last click; then its buttons and select
  are disabled on the message (edited through the interaction that last changed it: the
  command's answer, or a page click), so nothing that looks clickable stays.
- That interaction's token lets it edit the message for ``PagedResults.TOKEN_LIFE`` (Discord's
  15 minutes) only, so the view times out ``TOKEN_MARGIN`` before the token would at the
  latest, however recent the last click: uses of the select answer privately and leave that
  interaction as it is, and a view they kept alive longer could not disable its components.
- Its components' custom ids carry the view's own random id (``nw:results:<id>:next``). A
  click that no live view answers (the bot restarted, or Discord delivered it after the
  timeout) is answered by :class:`ExpiredResults`, privately, instead of failing.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
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
    #: Seconds an interaction's token works for edits of its message (Discord: 15 minutes).
    TOKEN_LIFE: ClassVar[float] = 900
    #: Seconds before the editor's token runs out at which the view times out at the latest,
    #: so that the edit disabling its components still reaches Discord while the token works.
    TOKEN_MARGIN: ClassVar[float] = 30
    #: The most an interaction's age (by this machine's clock against its id's time) is
    #: believed: a command answers within seconds, and a clock running ahead of Discord's
    #: made a fresh interaction look a quarter of an hour old, its view dead on arrival.
    MOST_AGE: ClassVar[float] = 120

    def __init__(self, title: str, rows: Sequence[ResultLine], *, page_size: int = 5,
                 timeout: float | None = None, note: str | None = None,
                 total: int | None = None, expand: Expand | None = None,
                 interaction: discord.Interaction[Any] | None = None) -> None:
        self._idle = self.TIMEOUT if timeout is None else timeout
        # when (time.monotonic()) the editor's token stops working; None: no editor
        self._editor_until = None if interaction is None else self._token_end(interaction)
        super().__init__(timeout=self._time_left())
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

    def _token_end(self, interaction: discord.Interaction[Any]) -> float:
        # The token's life counts from when Discord made the interaction (its id's time), not
        # from when the view got it: a command may have worked a while before answering.
        age = min(max(0.0, (discord.utils.utcnow() - interaction.created_at).total_seconds()),
                  self.MOST_AGE)
        return time.monotonic() - age + self.TOKEN_LIFE

    def _time_left(self) -> float:
        """The timeout from now: the idle time, cut so the view times out while its editor's
        token still works (a token about to run out: at once)."""
        if self._editor_until is None:
            return self._idle
        left = self._editor_until - self.TOKEN_MARGIN - time.monotonic()
        # not 0: discord.py takes a timeout of 0 as none at all, and the view would never end
        return max(0.001, min(self._idle, left))

    def _new_editor(self, interaction: discord.Interaction[Any]) -> None:
        # a page click's token is fresh: the view may live the whole idle time again
        self._editor = interaction
        self._editor_until = self._token_end(interaction)
        self.timeout = self._time_left()

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        # discord.py restarts the countdown with self.timeout right after this check and
        # before the callback; cut it to what the editor's token has left, or a use of the
        # select would keep the view past it and its components could not be disabled.
        self.timeout = self._time_left()
        return True

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
        self._new_editor(interaction)

    @discord.ui.button(label="▶", style=discord.ButtonStyle.secondary, row=0)
    async def next(self, interaction: discord.Interaction[Any],
                   button: discord.ui.Button[Any]) -> None:
        self.page = min(self.pages - 1, self.page + 1)
        self._sync()
        await interaction.response.edit_message(embed=self.embed(), view=self)
        self._new_editor(interaction)

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
