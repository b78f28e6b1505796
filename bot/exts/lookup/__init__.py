"""Lookups: /search, /recent, /article, /stats."""

from __future__ import annotations

from discord.ext import commands

from bot.exts.lookup._cog import LookupCog
from bot.exts.lookup._views import ExpiredResults


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(LookupCog(bot))
    # clicks on results whose view is gone (a restart, a timeout) still get an answer
    bot.add_dynamic_items(ExpiredResults)


async def teardown(bot: commands.Bot) -> None:
    bot.remove_dynamic_items(ExpiredResults)
