"""Lookups: /search, /recent, /article, /stats."""

from __future__ import annotations

from discord.ext import commands

from bot.exts.lookup._cog import LookupCog


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(LookupCog(bot))
