"""The admin cogs, for admins only: /alerts status|resume and /digest now."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.embeds import delivery_embed, escape, truncate
from bot.interactions import ADMIN_PERMISSIONS, NewswatchCog, PausedRoute, RouteName, answer
from bot.logs import redact


@app_commands.default_permissions(ADMIN_PERMISSIONS)
@app_commands.guild_only()
class AdminCog(NewswatchCog, commands.GroupCog, group_name="alerts",
               group_description="Alert delivery."):
    """See how alert delivery is doing and resume paused destinations."""

    admin_commands = True

    @app_commands.command(name="status")
    async def status(self, interaction: discord.Interaction[Any]) -> None:
        """Alerts by state, paused destinations, rejections, waiting alerts and digest schedules."""
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


@app_commands.default_permissions(ADMIN_PERMISSIONS)
@app_commands.guild_only()
class DigestCog(NewswatchCog, commands.GroupCog, group_name="digest",
                group_description="Digests of what routes keep for later."):
    """Send a route's pending digest now instead of at its time."""

    admin_commands = True

    @app_commands.command(name="now")
    @app_commands.describe(route="the route (its name in [channels])")
    async def now(self, interaction: discord.Interaction[Any],
                  route: app_commands.Transform[str, RouteName]) -> None:
        """Send what a route keeps for a digest (schedule, quiet hours or cap) now."""
        # an unknown route raises NewswatchError, which the tree answers privately
        n = await self.engine.digest_now(route)
        await answer(interaction, n > 0,
                     f"Digest for route **{escape(route)}** is being sent: {n} alert(s).",
                     f"Nothing is waiting for a digest on route **{escape(route)}**.")
