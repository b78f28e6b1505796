"""Trends: /trend draws a rule's or a query's matches over time as a PNG chart."""

from __future__ import annotations

from discord.ext import commands

from bot.exts.trend._cog import TrendCog


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(TrendCog(bot))
