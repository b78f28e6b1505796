"""Sources: /sources list|add|remove|resume|import|export."""

from __future__ import annotations

from discord.ext import commands

from bot.exts.sources._cog import SourcesCog


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(SourcesCog(bot))
