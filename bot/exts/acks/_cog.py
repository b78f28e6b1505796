"""The acknowledgement buttons an alert carries (see bot.sinks), as dynamic items.

Invariants:
- A button's custom id carries the alert's outbox id (``nw:ack:<id>``, ``nw:nr:<id>``), and the
  items are registered with the bot when the extension loads, so a click is answered by
  whichever process runs when it comes: buttons work after a restart, and no view is kept per
  message.
- Anyone in the server who sees the alert may click (the channel's visibility is the gate);
  a click from a server the bot does not serve (``guild_ids``) or from a DM is refused, and so
  is one whose message is not the alert's posted message (its story's, once reposted) or whose
  alert is on another server's route: the custom id is the client's to send.
- "Acknowledge" is idempotent: the first click records who and when, adds a line to the message
  and disables the button; later clicks are told who acknowledged first. "Not relevant" counts
  once per person. Both answer the clicker privately; neither pings anyone.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

import discord
from discord.ext import commands

from bot.embeds import (
    ACK_ID_PATTERN,
    NOT_RELEVANT_ID_PATTERN,
    ack_buttons,
    ack_line,
    with_ack_line,
)
from bot.interactions import engine_of
from watchers.errors import NewswatchError

__all__ = ["AckButton", "AcksCog", "NotRelevantButton"]

log = logging.getLogger("newswatch")

_NO_PINGS = discord.AllowedMentions.none()
Button = discord.ui.Button[discord.ui.View]


async def _reply(interaction: discord.Interaction[Any], text: str) -> None:
    """Answer the clicker privately, whether or not the interaction was answered already."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=_NO_PINGS)
    else:
        await interaction.response.send_message(text, ephemeral=True,
                                                allowed_mentions=_NO_PINGS)


async def _allowed(interaction: discord.Interaction[Any]) -> bool:
    allowed: list[int] = getattr(interaction.client, "guild_ids", None) or []
    if interaction.guild_id is None or (allowed and interaction.guild_id not in allowed):
        await _reply(interaction, "newswatch is not enabled here.")
        return False
    return True


def _clicked_on(interaction: discord.Interaction[Any]) -> dict[str, int | None]:
    """Where a click came from, for the engine to refuse a button that names an alert other
    than its message's (a crafted custom id, or a button copied onto another message)."""
    message = interaction.message
    return {"message_id": message.id if message is not None else 0,
            "guild": interaction.guild_id}


async def _answer_errors(interaction: discord.Interaction[Any], exc: Exception, button: str
                         ) -> None:
    if isinstance(exc, NewswatchError):
        await _reply(interaction, str(exc))
        return
    ref = secrets.token_hex(3)
    log.error("button %s failed (ref %s)", button, ref, exc_info=exc)
    await _reply(interaction, f"Something went wrong (ref {ref}).")


class AckButton(discord.ui.DynamicItem[Button], template=re.compile(ACK_ID_PATTERN)):
    """"Acknowledge": records who and when, edits the alert, disables itself."""

    def __init__(self, alert_id: int) -> None:
        # The look is ack_buttons'; this item only answers clicks on it.
        super().__init__(ack_buttons(alert_id).children[0])  # type: ignore[arg-type]
        self.alert_id = alert_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> AckButton:
        return cls(int(match["id"]))

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        return await _allowed(interaction)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        try:
            await self._acknowledge(interaction)
        except Exception as exc:
            await _answer_errors(interaction, exc, self.custom_id)

    async def _acknowledge(self, interaction: discord.Interaction[Any]) -> None:
        result = await engine_of(interaction.client).acknowledge(
            self.alert_id, interaction.user.id, **_clicked_on(interaction))
        line = ack_line(result.user_id, result.at)
        if not result.first:
            await _reply(interaction, line.replace("✅ Acknowledged", "Already acknowledged", 1))
            return
        message = interaction.message
        await interaction.response.edit_message(
            content=with_ack_line(message.content if message else None, line),
            view=ack_buttons(self.alert_id, acknowledged=True), allowed_mentions=_NO_PINGS)
        await _reply(interaction, "You acknowledged this alert; nobody will be re-pinged "
                                  "about it.")


class NotRelevantButton(discord.ui.DynamicItem[Button], template=re.compile(
        NOT_RELEVANT_ID_PATTERN)):
    """"Not relevant": counted once per person, per rule in /rules list."""

    def __init__(self, alert_id: int) -> None:
        super().__init__(ack_buttons(alert_id).children[1])  # type: ignore[arg-type]
        self.alert_id = alert_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> NotRelevantButton:
        return cls(int(match["id"]))

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        return await _allowed(interaction)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        try:
            new = await engine_of(interaction.client).not_relevant(
                self.alert_id, interaction.user.id, **_clicked_on(interaction))
            await _reply(interaction, "Noted: not relevant to you. `/rules list` shows how "
                                      "often each rule's alerts are." if new else
                         "You had already marked this alert not relevant.")
        except Exception as exc:
            await _answer_errors(interaction, exc, self.custom_id)


class AcksCog(commands.Cog):
    """Registers the acknowledgement buttons' dynamic items while the extension is loaded."""

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(AckButton, NotRelevantButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(AckButton, NotRelevantButton)
