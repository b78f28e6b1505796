"""The sources cog: /sources list for anyone, /sources add|remove|resume for admins."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.embeds import escape, sources_embed
from bot.interactions import Duration, NewswatchCog, SourceName, answer
from watchers.config import format_duration


class SourcesCog(NewswatchCog, commands.GroupCog, group_name="sources",
                 group_description="News sources."):
    """List, add, remove and resume the sources being watched."""

    admin_commands = frozenset({"add", "remove", "resume"})

    @app_commands.command(name="list")
    async def list_(self, interaction: discord.Interaction[Any]) -> None:
        """Every source with its schedule and health."""
        await interaction.response.send_message(embed=sources_embed(await self.engine.sources()))

    @app_commands.command(name="add")
    @app_commands.describe(name="a short name", url="the feed's http(s) URL",
                           every="how often to poll (default 10m, at least 1m)")
    async def add(self, interaction: discord.Interaction[Any],
                  name: app_commands.Range[str, 1, 64], url: app_commands.Range[str, 8, 2000],
                  every: app_commands.Transform[timedelta, Duration("every")] = timedelta(
                      minutes=10)) -> None:
        """Watch a new RSS, Atom or JSON feed."""
        view = await self.engine.add_source(
            {"name": name, "type": "feed", "url": url.strip(), "every": every},
            created_by=str(interaction.user.id))
        await interaction.response.send_message(
            f"Watching **{escape(view.name)}** every {format_duration(view.every)}. "
            "The first poll records a baseline; new items alert from then on.")

    @app_commands.command(name="remove")
    @app_commands.describe(name="the source to remove")
    async def remove(self, interaction: discord.Interaction[Any],
                     name: app_commands.Transform[str, SourceName]) -> None:
        """Stop watching a source added in Discord."""
        await answer(interaction, await self.engine.remove_source(name),
                     f"Source **{escape(name)}** removed; its articles stay stored.",
                     f"No source named `{name[:64]}`.")

    @app_commands.command(name="resume")
    @app_commands.describe(name="the source to resume")
    async def resume(self, interaction: discord.Interaction[Any],
                     name: app_commands.Transform[str, SourceName]) -> None:
        """Resume a paused source and poll it now."""
        await answer(interaction, await self.engine.resume_source(name),
                     f"Source **{escape(name)}** resumed.",
                     f"No source named `{name[:64]}` has been polled yet.")
