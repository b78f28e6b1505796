"""The admin cogs, for admins only: /alerts status|resume and /digest now.

A server sees and acts on the operator's routes (the config file's) and its own picked
channels, shown by label (``#name``), never on another server's: those are left out of
/alerts status and answered as routes that do not exist."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.embeds import code_text, delivery_embed, escape, truncate
from bot.interactions import (
    ADMIN_PERMISSIONS,
    NewswatchCog,
    PausedRoute,
    RouteName,
    answer,
    in_time,
    reply,
    routes_seen,
)
from bot.logs import redact
from watchers.errors import NewswatchError


@app_commands.default_permissions(ADMIN_PERMISSIONS)
@app_commands.guild_only()
class AdminCog(NewswatchCog, commands.GroupCog, group_name="alerts",
               group_description="Alert delivery."):
    """See how alert delivery is doing and resume paused destinations."""

    admin_commands = True

    @app_commands.command(name="status")
    async def status(self, interaction: discord.Interaction[Any]) -> None:
        """Alerts by state, paused destinations, rejections, waiting alerts and digest schedules."""
        st = await in_time(interaction, self.engine.delivery_status(guild=interaction.guild_id),
                           ephemeral=True)
        embed = delivery_embed(st, redact)
        await reply(interaction, embed=embed, ephemeral=True)

    @app_commands.command(name="resume")
    @app_commands.describe(route="the paused route (#channel, or its name in [channels])")
    async def resume(self, interaction: discord.Interaction[Any],
                     route: app_commands.Transform[str, PausedRoute]) -> None:
        """Resume a paused destination and send its held alerts."""
        paused = routes_seen(self.engine.resumable_routes(), interaction.guild_id)
        if route not in paused:
            names = ", ".join(f"`{code_text(self.engine.route_label(r))}`"
                              for r in paused) or "none"
            shown = code_text(truncate(route, 64))
            await interaction.response.send_message(
                truncate(f"Route `{shown}` is not paused (paused or backing off: {names}).",
                         1900),
                ephemeral=True)
            return
        was_paused = route in self.engine.paused_routes()
        held = await self.engine.resume_route(route)
        label = escape(self.engine.route_label(route))
        await interaction.response.send_message(
            f"Route **{label}** resumed; {held} held alert(s) are being sent." if was_paused
            else f"Route **{label}** is tried again now; its backoff is over.")


@app_commands.default_permissions(ADMIN_PERMISSIONS)
@app_commands.guild_only()
class DigestCog(NewswatchCog, commands.GroupCog, group_name="digest",
                group_description="Digests of what routes keep for later."):
    """Send a route's pending digest now instead of at its time."""

    admin_commands = True

    @app_commands.command(name="now")
    @app_commands.describe(route="the route (#channel, or its name in [channels])")
    async def now(self, interaction: discord.Interaction[Any],
                  route: app_commands.Transform[str, RouteName]) -> None:
        """Send what a route keeps for a digest (schedule, quiet hours or cap) now."""
        known = routes_seen(self.engine.route_names(), interaction.guild_id)
        if route not in known:
            # the tree answers it privately; another server's route is not named
            shown = route if len(route) <= 100 else route[:99] + "…"
            raise NewswatchError(truncate(
                f"no route named {shown!r}; known: "
                f"{', '.join(self.engine.route_label(r) for r in known) or 'none'}", 1800))
        n = await self.engine.digest_now(route)
        label = escape(self.engine.route_label(route))
        await answer(interaction, n > 0,
                     f"Digest for route **{label}** is being sent: {n} alert(s).",
                     f"Nothing is waiting for a digest on route **{label}**.")
