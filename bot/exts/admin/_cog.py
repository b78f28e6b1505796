"""The admin cogs, for admins only: /alerts status|resume and /digest now.

A server sees and acts on the operator's routes (the config file's) and its own picked
channels, shown by label (``#name``), never on another server's: those are left out of
/alerts status and answered as routes that do not exist."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.embeds import delivery_embed, escape, truncate
from bot.interactions import (
    ADMIN_PERMISSIONS,
    NewswatchCog,
    PausedRoute,
    RouteName,
    answer,
    routes_seen,
)
from bot.logs import redact
from watchers.delivery import DeliveryStatus
from watchers.engine import Engine
from watchers.errors import NewswatchError

_V = TypeVar("_V")


async def scoped_status(engine: Engine, st: DeliveryStatus, guild: int) -> DeliveryStatus:
    """``st`` as ``guild`` may see it: only the routes it sees, by label, and the alert counts
    of those routes."""
    seen = set(routes_seen({*engine.route_names(), *st.paused, *st.held, *st.backing_off,
                            *st.scheduled, *st.next_digest,
                            *(r.route for r in (*st.rejected, *st.waiting))}, guild))
    label = engine.route_label

    def keep(d: dict[str, _V]) -> dict[str, _V]:
        return {label(k): v for k, v in d.items() if k in seen}

    waiting = [replace(r, route=label(r.route)) for r in st.waiting if r.route in seen]
    return replace(
        st, counts=(await engine.stats(guild=guild)).alerts, paused=keep(st.paused),
        held=keep(st.held), backing_off=keep(st.backing_off),
        rejected=[replace(r, route=label(r.route)) for r in st.rejected if r.route in seen],
        waiting=waiting,
        stories={k: v for k, v in st.stories.items()
                 if any(r.story_id == k for r in waiting)},
        scheduled=keep(st.scheduled), next_digest=keep(st.next_digest))


@app_commands.default_permissions(ADMIN_PERMISSIONS)
@app_commands.guild_only()
class AdminCog(NewswatchCog, commands.GroupCog, group_name="alerts",
               group_description="Alert delivery."):
    """See how alert delivery is doing and resume paused destinations."""

    admin_commands = True

    @app_commands.command(name="status")
    async def status(self, interaction: discord.Interaction[Any]) -> None:
        """Alerts by state, paused destinations, rejections, waiting alerts and digest schedules."""
        st = await self.engine.delivery_status()
        if interaction.guild_id is not None:
            st = await scoped_status(self.engine, st, interaction.guild_id)
        embed = delivery_embed(st, redact)
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="resume")
    @app_commands.describe(route="the paused route (its name in [channels])")
    async def resume(self, interaction: discord.Interaction[Any],
                     route: app_commands.Transform[str, PausedRoute]) -> None:
        """Resume a paused destination and send its held alerts."""
        paused = routes_seen(self.engine.paused_routes(), interaction.guild_id)
        if route not in paused:
            names = ", ".join(f"`{self.engine.route_label(r)}`" for r in paused) or "none"
            await interaction.response.send_message(
                truncate(f"Route `{truncate(route, 64)}` is not paused (paused: {names}).",
                         1900), ephemeral=True)
            return
        held = await self.engine.resume_route(route)
        await interaction.response.send_message(
            f"Route **{escape(self.engine.route_label(route))}** resumed; {held} held "
            "alert(s) are being sent.")


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
