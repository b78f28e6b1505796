"""Admin: /alerts status|resume — the outbox's health and paused destinations; /digest now —
send what a route keeps for later."""

from __future__ import annotations

from discord.ext import commands

from bot.exts.admin._cog import AdminCog, DigestCog


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(AdminCog(bot))
    await bot.add_cog(DigestCog(bot))
