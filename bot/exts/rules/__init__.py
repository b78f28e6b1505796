"""Rules: /rules list|test|add|remove, /mute, /unmute."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.embeds import escape, rule_test_embed, rules_embed, truncate
from bot.interactions import NewswatchCog, choices, parse_user_duration, require_admin
from watchers.errors import NewswatchError
from watchers.rules import parse
from watchers.store import StoredRule

SEVERITIES = ["info", "low", "medium", "high", "critical"]


class RulesCog(NewswatchCog, commands.GroupCog, group_name="rules",
               group_description="Alert rules."):
    """List, try, add and remove alert rules; mute and unmute them."""



    def _rule_names(self, current: str) -> list[app_commands.Choice[str]]:
        return choices([r.name for r in self.engine.service.rules], current)

    @app_commands.command(name="list", description="Every rule with its query, route and state.")
    async def list_(self, interaction: discord.Interaction[Any]) -> None:
        """Every rule with its query, route and state."""
        embed = rules_embed(await self.engine.rules())
        await interaction.response.send_message(embed=embed)

    @app_commands.command(
        name="test",
        description="How many stored articles from the last 7 days a query would match.",
    )
    @app_commands.describe(query="a query in the rule language")
    async def test(self, interaction: discord.Interaction[Any],
                   query: app_commands.Range[str, 1, 500]) -> None:
        """How many stored articles from the last 7 days a query would match."""
        parse(query)  # a bad query answers at once, before deferring
        await interaction.response.defer(thinking=True)
        embed = rule_test_embed(await self.engine.test_rule(query))
        await interaction.followup.send(embed=embed)

    @app_commands.command(
        name="add",
        description="Add or replace a rule; it applies from the next poll.",
    )
    @app_commands.describe(name="a short name (letters, digits, . _ -)", query="the rule's query",
                           channel="the route its alerts go to (default: alerts)",
                           severity="how loud the alert looks")
    @app_commands.choices(severity=[app_commands.Choice(name=s, value=s) for s in SEVERITIES])
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @require_admin()
    async def add(self, interaction: discord.Interaction[Any],
                  name: app_commands.Range[str, 1, 64], query: app_commands.Range[str, 1, 500],
                  channel: str = "alerts", severity: str = "medium") -> None:
        """Add or replace a rule; it applies from the next poll."""
        if not all(c.isalnum() or c in "._-" for c in name):
            raise NewswatchError("a rule name uses letters, digits, '.', '_' or '-'")
        spec = await self.engine.add_rule(StoredRule(
            name=name, query=query, channel=channel, severity=severity,
            created_by=str(interaction.user.id)))
        await interaction.response.send_message(
            f"Rule **{escape(spec.name)}** → `{spec.channel}` saved: `{truncate(spec.query, 500)}`")

    @app_commands.command(name="remove", description="Remove a rule added in Discord.")
    @app_commands.describe(name="the rule to remove")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @require_admin()
    async def remove(self, interaction: discord.Interaction[Any], name: str) -> None:
        """Remove a rule added in Discord."""
        removed = await self.engine.remove_rule(name)
        text = f"Rule **{escape(name)}** removed." if removed else f"No rule named `{name[:64]}`."
        await interaction.response.send_message(text, ephemeral=not removed)

    @remove.autocomplete("name")
    async def _remove_name(self, interaction: discord.Interaction[Any], current: str
                           ) -> list[app_commands.Choice[str]]:
        return self._rule_names(current)


class MuteCog(NewswatchCog):
    """/mute and /unmute: a muted rule records matches but posts nothing until it expires."""



    @app_commands.command(
        name="mute",
        description="Silence a rule for a while; matches are still recorded.",
    )
    @app_commands.describe(rule="the rule to mute", duration="e.g. 30m, 2h, 1d")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @require_admin()
    async def mute(self, interaction: discord.Interaction[Any], rule: str,
                   duration: app_commands.Range[str, 1, 20]) -> None:
        """Silence a rule for a while; matches are still recorded."""
        until = await self.engine.mute(rule, parse_user_duration(duration, "duration"))
        await interaction.response.send_message(
            f"Rule **{escape(rule)}** muted until <t:{int(until.timestamp())}:f>.")

    @app_commands.command(name="unmute", description="Let a muted rule post alerts again.")
    @app_commands.describe(rule="the rule to unmute")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @require_admin()
    async def unmute(self, interaction: discord.Interaction[Any], rule: str) -> None:
        """Let a muted rule post alerts again."""
        was = await self.engine.unmute(rule)
        text = (f"Rule **{escape(rule)}** unmuted." if was
                else f"Rule **{escape(rule)}** was not muted.")
        await interaction.response.send_message(text)

    @mute.autocomplete("rule")
    async def _mute_rule(self, interaction: discord.Interaction[Any], current: str
                         ) -> list[app_commands.Choice[str]]:
        return choices([r.name for r in self.engine.service.rules], current)

    @unmute.autocomplete("rule")
    async def _unmute_rule(self, interaction: discord.Interaction[Any], current: str
                           ) -> list[app_commands.Choice[str]]:
        return choices([r.name for r in self.engine.service.rules], current)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(RulesCog(bot))
    await bot.add_cog(MuteCog(bot))
