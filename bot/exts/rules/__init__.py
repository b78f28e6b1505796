"""Rules: /rules list|test|preview|add|remove, /mute, /unmute, /channels list|set."""

from __future__ import annotations

from discord.ext import commands

from bot.exts.rules._cog import ChannelsCog, MuteCog, RulesCog


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(RulesCog(bot))
    await bot.add_cog(MuteCog(bot))
    await bot.add_cog(ChannelsCog(bot))
