"""The rules cogs: /rules list|test for anyone, /rules add|remove, /mute and /unmute for admins."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.embeds import escape, rule_test_embed, rules_embed, truncate
from bot.interactions import Duration, NewswatchCog, RuleName, answer
from watchers.config import Severity
from watchers.rules import parse


class RulesCog(NewswatchCog, commands.GroupCog, group_name="rules",
               group_description="Alert rules."):
    """List, try, add and remove alert rules."""

    admin_commands = frozenset({"add", "remove"})

    @app_commands.command(name="list")
    async def list_(self, interaction: discord.Interaction[Any]) -> None:
        """Every rule with its query, route and state."""
        await interaction.response.send_message(embed=rules_embed(await self.engine.rules()))

    @app_commands.command(name="test")
    @app_commands.describe(query="a query in the rule language")
    async def test(self, interaction: discord.Interaction[Any],
                   query: app_commands.Range[str, 1, 500]) -> None:
        """How many stored articles from the last 7 days a query would match."""
        parse(query)  # a bad query answers at once, before deferring
        await interaction.response.defer(thinking=True)
        embed = rule_test_embed(await self.engine.test_rule(query))
        await interaction.followup.send(embed=embed)

    @app_commands.command(name="add")
    @app_commands.describe(name="a short name (letters, digits, . _ -)", query="the rule's query",
                           channel="the route its alerts go to (default: alerts)",
                           severity="how loud the alert looks")
    async def add(self, interaction: discord.Interaction[Any],
                  name: app_commands.Range[str, 1, 64], query: app_commands.Range[str, 1, 500],
                  channel: str = "alerts", severity: Severity = "medium") -> None:
        """Add or replace a rule; it applies from the next poll."""
        rule = await self.engine.add_rule(
            {"name": name, "query": query, "channel": channel, "severity": severity},
            created_by=str(interaction.user.id))
        await interaction.response.send_message(
            f"Rule **{escape(rule.name)}** → `{rule.channel}` saved: "
            f"`{truncate(rule.query, 500)}`")

    @app_commands.command(name="remove")
    @app_commands.describe(name="the rule to remove")
    async def remove(self, interaction: discord.Interaction[Any],
                     name: app_commands.Transform[str, RuleName]) -> None:
        """Remove a rule added in Discord."""
        await answer(interaction, await self.engine.remove_rule(name),
                     f"Rule **{escape(name)}** removed.", f"No rule named `{name[:64]}`.")


class MuteCog(NewswatchCog):
    """/mute and /unmute: a muted rule records matches but posts nothing until it expires."""

    admin_commands = True

    @app_commands.command(name="mute")
    @app_commands.describe(rule="the rule to mute", duration="e.g. 30m, 2h, 1d")
    async def mute(self, interaction: discord.Interaction[Any],
                   rule: app_commands.Transform[str, RuleName],
                   duration: app_commands.Transform[timedelta, Duration("duration")]) -> None:
        """Silence a rule for a while; matches are still recorded."""
        until = await self.engine.mute(rule, duration)
        await interaction.response.send_message(
            f"Rule **{escape(rule)}** muted until <t:{int(until.timestamp())}:f>.")

    @app_commands.command(name="unmute")
    @app_commands.describe(rule="the rule to unmute")
    async def unmute(self, interaction: discord.Interaction[Any],
                     rule: app_commands.Transform[str, RuleName]) -> None:
        """Let a muted rule post alerts again."""
        was = await self.engine.unmute(rule)
        text = (f"Rule **{escape(rule)}** unmuted." if was
                else f"Rule **{escape(rule)}** was not muted.")
        await interaction.response.send_message(text)
