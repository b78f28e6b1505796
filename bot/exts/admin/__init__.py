"""Admin: /alerts status|resume — the outbox's health and paused destinations."""

from __future__ import annotations

from discord.ext import commands

from bot.exts.admin._cog import AdminCog


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(AdminCog(bot))
