"""Admin: /alerts status|resume — the outbox's health and paused destinations."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.embeds import delivery_embed, escape, truncate
from bot.interactions import NewswatchCog, choices, require_admin
from bot.logs import redact


class AdminCog(NewswatchCog, commands.GroupCog, group_name="alerts",
               group_description="Alert delivery."):
    """See how alert delivery is doing and resume paused destinations."""



    @app_commands.command(name="status",
                          description="Alerts by state, paused destinations and rejected alerts.")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @require_admin()
    async def status(self, interaction: discord.Interaction[Any]) -> None:
        """Alerts by state, paused destinations and rejected alerts."""
        embed = delivery_embed(await self.engine.delivery.status(), redact)
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="resume",
                          description="Resume a paused destination and send its held alerts.")
    @app_commands.describe(route="the paused route (its name in [channels])")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @require_admin()
    async def resume(self, interaction: discord.Interaction[Any], route: str) -> None:
        """Resume a paused destination and send its held alerts."""
        delivery = self.engine.delivery
        if route not in delivery.paused_routes():
            paused = ", ".join(f"`{r}`" for r in sorted(delivery.paused_routes())) or "none"
            await interaction.response.send_message(
                f"Route `{truncate(route, 64)}` is not paused (paused: {paused}).",
                ephemeral=True)
            return
        held = await delivery.resume_route(route)
        await interaction.response.send_message(
            f"Route **{escape(route)}** resumed; {held} held alert(s) are being sent.")

    @resume.autocomplete("route")
    async def _resume_route(self, interaction: discord.Interaction[Any], current: str
                            ) -> list[app_commands.Choice[str]]:
        return choices(self.engine.delivery.paused_routes(), current)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(AdminCog(bot))
