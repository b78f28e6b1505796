"""Lookups: /search, /recent, /article, /stats."""

from __future__ import annotations

import weakref
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.embeds import article_embed, stats_embed, truncate
from bot.exts.lookup._views import PagedResults
from bot.interactions import NewswatchCog, choices, parse_user_duration
from watchers.rules import parse

PAGE = 5


class LookupCog(NewswatchCog):
    """Read-only lookups over stored articles; anyone may use them."""

    def __init__(self, bot: commands.Bot) -> None:
        super().__init__(bot)
        self.views: weakref.WeakSet[PagedResults] = weakref.WeakSet()

    async def cog_unload(self) -> None:
        for view in list(self.views):
            view.stop()  # ends its timeout task with the bot, not after

    @app_commands.command(
        name="search",
        description="Search stored articles with the rule language.",
    )
    @app_commands.describe(query='e.g. troops NEAR/5 border, "security guarantees", kyiv~',
                           since="only articles newer than this, e.g. 24h or 7d",
                           source="only this source", limit="how many results (1-50)",
                           order="newest first (default) or best match first")
    @app_commands.choices(order=[app_commands.Choice(name="newest", value="newest"),
                                 app_commands.Choice(name="best", value="best")])
    async def search(self, interaction: discord.Interaction[Any],
                     query: app_commands.Range[str, 1, 500], since: str | None = None,
                     source: str | None = None, limit: app_commands.Range[int, 1, 50] = 20,
                     order: str = "newest") -> None:
        """Search stored articles with the rule language."""
        window = parse_user_duration(since, "since") if since else None
        parse(query)  # a bad query answers at once and privately, before deferring
        await interaction.response.defer(thinking=True)
        hits = await self.engine.search(query, since=window, source=source, limit=limit,
                                                order="best" if order == "best" else "newest")
        rows = [(h.article, h.match) for h in hits]
        title = truncate(f"Search: {query}", 200)
        view = PagedResults(title, rows, page_size=PAGE)
        self.views.add(view)
        await interaction.followup.send(embed=view.embed(), view=view if view.pages > 1 else
                                        discord.utils.MISSING)

    @search.autocomplete("source")
    async def _search_source(self, interaction: discord.Interaction[Any], current: str
                             ) -> list[app_commands.Choice[str]]:
        return choices(self.engine.service.source_names(), current)

    @app_commands.command(name="recent", description="The latest articles that fired a rule.")
    @app_commands.describe(rule="only this rule", limit="how many (1-25)")
    async def recent(self, interaction: discord.Interaction[Any], rule: str | None = None,
                     limit: app_commands.Range[int, 1, 25] = 10) -> None:
        """The latest articles that fired a rule."""
        items = await self.engine.recent(rule=rule, limit=limit)
        rows = [(a, next((m for m in ms if rule is None or m.rule == rule), None))
                for a, ms in items]
        title = f"Recent alerts for {rule}" if rule else "Recent alerts"
        view = PagedResults(title, rows, page_size=PAGE)
        self.views.add(view)
        await interaction.response.send_message(
            embed=view.embed(), view=view if view.pages > 1 else discord.utils.MISSING)

    @recent.autocomplete("rule")
    async def _recent_rule(self, interaction: discord.Interaction[Any], current: str
                           ) -> list[app_commands.Choice[str]]:
        return choices([r.name for r in self.engine.service.rules], current)

    @app_commands.command(
        name="article",
        description="One article: an excerpt and every rule that matched it, and why.",
    )
    @app_commands.describe(id="the article id shown in alerts and results")
    async def article(self, interaction: discord.Interaction[Any],
                      id: app_commands.Range[str, 4, 64]) -> None:
        """One article: an excerpt and every rule that matched it, and why."""
        found = await self.engine.article(id)
        if found is None:
            await interaction.response.send_message(f"No article with id `{id[:64]}`.",
                                                    ephemeral=True)
            return
        await interaction.response.send_message(embed=article_embed(*found))

    @app_commands.command(
        name="stats",
        description="Articles, alerts and the health of every source.",
    )
    async def stats(self, interaction: discord.Interaction[Any]) -> None:
        """Articles, alerts and the health of every source."""
        embed = stats_embed(await self.engine.stats())
        await interaction.response.send_message(embed=embed)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(LookupCog(bot))
