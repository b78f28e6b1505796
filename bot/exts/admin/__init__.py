"""Admin: /alerts status|resume — the outbox's health and paused destinations."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.embeds import escape, truncate
from bot.interactions import choices, engine_of, reply_error, require_admin
from bot.logs import redact

log = logging.getLogger("newswatch")


class AdminCog(commands.GroupCog, group_name="alerts", group_description="Alert delivery."):
    """See how alert delivery is doing and resume paused destinations."""

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        super().__init__()

    async def cog_app_command_error(self, interaction: discord.Interaction[Any],
                                    error: app_commands.AppCommandError) -> None:
        log.debug("alerts command failed", exc_info=error)
        await reply_error(interaction, error)

    @app_commands.command(name="status",
                          description="Alerts by state, paused destinations and rejected alerts.")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @require_admin()
    async def status(self, interaction: discord.Interaction[Any]) -> None:
        """Alerts by state, paused destinations and rejected alerts."""
        st = await engine_of(self.bot).delivery.status()
        embed = discord.Embed(title="Alert delivery", colour=0x5865F2)
        counts = ", ".join(f"{k} {v}" for k, v in sorted(st.counts.items())) or "none yet"
        embed.add_field(name="Alerts", value=counts, inline=False)
        for route, reason in list(st.paused.items())[:5]:
            embed.add_field(
                name=truncate(f"route {route} paused · {st.held.get(route, 0)} held", 256),
                value=truncate(escape(redact(reason)), 1024), inline=False)
        for route, when in list(st.backing_off.items())[:5]:
            embed.add_field(name=truncate(f"route {route} backing off", 256),
                            value=f"next attempt <t:{int(when.timestamp())}:R>", inline=False)
        if st.maybe_sent:
            embed.add_field(name="Sends whose answer was lost", inline=False,
                            value=f"{st.maybe_sent} (checked before sending again where "
                                  "the bot can read the channel)")
        if st.rejected:
            lines = [f"#{r.id} → `{r.route}`: {escape(redact(r.reason or '?'))}"
                     for r in st.rejected]
            embed.add_field(name="Recently rejected", inline=False,
                            value=truncate("\n".join(lines), 1024))
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="resume",
                          description="Resume a paused destination and send its held alerts.")
    @app_commands.describe(route="the paused route (its name in [channels])")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @require_admin()
    async def resume(self, interaction: discord.Interaction[Any], route: str) -> None:
        """Resume a paused destination and send its held alerts."""
        delivery = engine_of(self.bot).delivery
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
        return choices(engine_of(self.bot).delivery.paused_routes(), current)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(AdminCog(bot))
