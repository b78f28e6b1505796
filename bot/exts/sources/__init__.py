"""Sources: /sources list|add|remove|resume."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.embeds import escape, sources_embed
from bot.interactions import NewswatchCog, choices, parse_user_duration, require_admin
from watchers.config import format_duration


class SourcesCog(NewswatchCog, commands.GroupCog, group_name="sources",
                 group_description="News sources."):
    """List, add, remove and resume the sources being watched."""



    def _names(self, current: str) -> list[app_commands.Choice[str]]:
        return choices(self.engine.service.source_names(), current)

    @app_commands.command(name="list", description="Every source with its schedule and health.")
    async def list_(self, interaction: discord.Interaction[Any]) -> None:
        """Every source with its schedule and health."""
        embed = sources_embed(await self.engine.sources())
        await interaction.response.send_message(embed=embed)

    @app_commands.command(name="add", description="Watch a new RSS, Atom or JSON feed.")
    @app_commands.describe(name="a short name", url="the feed's http(s) URL",
                           every="how often to poll (default 10m, at least 1m)")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @require_admin()
    async def add(self, interaction: discord.Interaction[Any],
                  name: app_commands.Range[str, 1, 64], url: app_commands.Range[str, 8, 2000],
                  every: str = "10m") -> None:
        """Watch a new RSS, Atom or JSON feed."""
        view = await self.engine.add_source(
            name, url.strip(), parse_user_duration(every, "every"),
            created_by=str(interaction.user.id))
        await interaction.response.send_message(
            f"Watching **{escape(view.name)}** every {format_duration(view.every)}. "
            "The first poll records a baseline; new items alert from then on.")

    @app_commands.command(name="remove", description="Stop watching a source added in Discord.")
    @app_commands.describe(name="the source to remove")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @require_admin()
    async def remove(self, interaction: discord.Interaction[Any], name: str) -> None:
        """Stop watching a source added in Discord."""
        removed = await self.engine.remove_source(name)
        text = (f"Source **{escape(name)}** removed; its articles stay stored." if removed
                else f"No source named `{name[:64]}`.")
        await interaction.response.send_message(text, ephemeral=not removed)

    @app_commands.command(name="resume", description="Resume a paused source and poll it now.")
    @app_commands.describe(name="the source to resume")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @require_admin()
    async def resume(self, interaction: discord.Interaction[Any], name: str) -> None:
        """Resume a paused source and poll it now."""
        ok = await self.engine.resume_source(name)
        text = (f"Source **{escape(name)}** resumed." if ok
                else f"No source named `{name[:64]}` has been polled yet.")
        await interaction.response.send_message(text, ephemeral=not ok)

    @remove.autocomplete("name")
    async def _remove_name(self, interaction: discord.Interaction[Any], current: str
                           ) -> list[app_commands.Choice[str]]:
        return self._names(current)

    @resume.autocomplete("name")
    async def _resume_name(self, interaction: discord.Interaction[Any], current: str
                           ) -> list[app_commands.Choice[str]]:
        return self._names(current)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(SourcesCog(bot))
