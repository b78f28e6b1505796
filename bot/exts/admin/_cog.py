"""The admin cog: /alerts status|resume, for admins only."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.embeds import delivery_embed, escape, truncate
from bot.interactions import ADMIN_PERMISSIONS, NewswatchCog, PausedRoute
from bot.logs import redact


@app_commands.default_permissions(ADMIN_PERMISSIONS)
@app_commands.guild_only()
class AdminCog(NewswatchCog, commands.GroupCog, group_name="alerts",
               group_description="Alert delivery."):
    """See how alert delivery is doing and resume paused destinations."""

    admin_commands = True

    @app_commands.command(name="status")
    async def status(self, interaction: discord.Interaction[Any]) -> None:
        """Alerts by state, paused destinations, rejected alerts and alerts waiting for outlets."""
        embed = delivery_embed(await self.engine.delivery_status(), redact)
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="resume")
    @app_commands.describe(route="the paused route (its name in [channels])")
    async def resume(self, interaction: discord.Interaction[Any],
                     route: app_commands.Transform[str, PausedRoute]) -> None:
        """Resume a paused destination and send its held alerts."""
        paused = self.engine.paused_routes()
        if route not in paused:
            names = ", ".join(f"`{r}`" for r in sorted(paused)) or "none"
            await interaction.response.send_message(
                f"Route `{truncate(route, 64)}` is not paused (paused: {names}).",
                ephemeral=True)
            return
        held = await self.engine.resume_route(route)
        await interaction.response.send_message(
            f"Route **{escape(route)}** resumed; {held} held alert(s) are being sent.")
