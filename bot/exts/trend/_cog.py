"""The trend cog: ``/trend QUERY_OR_RULE [period]`` answers with a chart; anyone may ask.

What the user can get wrong (the period, the query's syntax) is refused privately before the
command defers, so the error never becomes the public answer. The chart is drawn in a worker
thread: matplotlib takes long enough to stall the gateway heartbeat if it ran on the loop.
"""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from typing import Any

import discord
from discord import app_commands

from bot.charts import render_trend, summary
from bot.embeds import escape, truncate
from bot.interactions import Duration, NewswatchCog, OptionError, RuleName
from watchers.config import format_duration
from watchers.errors import NewswatchError
from watchers.rules import parse

__all__ = ["MAX_PERIOD", "MIN_PERIOD", "TrendCog", "check_period"]

MIN_PERIOD = timedelta(hours=1)
# Day buckets for this long stay readable as bars, and the lookup stays within its budget.
MAX_PERIOD = timedelta(days=90)
DEFAULT_PERIOD = timedelta(days=7)
MAX_QUERY = 500  # characters, as /search allows


def check_period(period: timedelta, option: str = "period") -> timedelta:
    """``period`` if it is between :data:`MIN_PERIOD` and :data:`MAX_PERIOD`, else an
    OptionError naming ``option`` and the bounds."""
    if not MIN_PERIOD <= period <= MAX_PERIOD:
        raise OptionError(f"{option}: {format_duration(period)} is out of range; use "
                          f"{format_duration(MIN_PERIOD)} to {format_duration(MAX_PERIOD)}, "
                          "e.g. 24h, 7d or 30d")
    return period


class TrendCog(NewswatchCog):
    """Matches over time, as a chart."""

    lookup_commands = True

    @app_commands.command(name="trend")
    @app_commands.guild_only()
    @app_commands.describe(query_or_rule="a rule's name, or a query such as troops NEAR/5 border",
                           period="how far back, e.g. 24h, 7d or 30d (1h to 90d; default 7d)")
    async def trend(self, interaction: discord.Interaction[Any],
                    query_or_rule: app_commands.Transform[str, RuleName],
                    period: app_commands.Transform[timedelta, Duration("period")] | None = None
                    ) -> None:
        """Matches per hour or per day as a chart, with the usual range and the surges."""
        what = query_or_rule
        if not what:
            raise OptionError("query_or_rule: give a rule's name or a query")
        if len(what) > MAX_QUERY:
            raise OptionError(f"query_or_rule: {len(what)} characters; at most {MAX_QUERY}")
        since = check_period(period or DEFAULT_PERIOD)
        try:
            # A rule is named in any case, as the engine charts it: checked by its exact
            # names only, "/trend OR" was refused as a bad query beside the rule or.
            self.engine.rule_of(what, interaction.guild_id)
        except NewswatchError:
            parse(what)  # a QuerySyntaxError is answered privately, with its column
        await interaction.response.defer(thinking=True)
        found = await self.engine.trend(what, since=since, guild=interaction.guild_id)
        png = await asyncio.get_running_loop().run_in_executor(None, render_trend, found)
        line = f"**{escape(truncate(found.label, 200))}** · last {format_duration(since)} · " \
               f"{escape(summary(found))}"
        await interaction.followup.send(
            truncate(line, 1900), file=discord.File(io.BytesIO(png), filename="trend.png",
                                                     description=truncate(
                                                         f"Trend chart: {found.label}", 1000)))
