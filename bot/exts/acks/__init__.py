"""Acknowledgement: the "Acknowledge" and "Not relevant" buttons on alerts."""

from __future__ import annotations

from discord.ext import commands

from bot.exts.acks._cog import AcksCog


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(AcksCog(bot))
