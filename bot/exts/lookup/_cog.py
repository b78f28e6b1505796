"""The lookup cog: read-only questions about stored articles; anyone may ask them.

Results show one line per story (in the order of each story's first hit), so ten outlets
reporting one event take one line; articles without a story of several articles stand alone.
"""

from __future__ import annotations

import weakref
from datetime import timedelta
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.embeds import (
    CUT_SHORT,
    article_embed,
    group_results,
    stats_embed,
    story_embed,
    truncate,
)
from bot.exts.lookup._views import PagedResults
from bot.interactions import Duration, NewswatchCog, RuleName, SourceName, StoryId
from watchers.errors import NewswatchError
from watchers.models import Article, Match
from watchers.rules import parse

PAGE = 5
# More articles than one embed can list; the embed says how many it left out.
STORY_ARTICLES = 50


class LookupCog(NewswatchCog):
    """Read-only lookups over stored articles."""

    def __init__(self, bot: commands.Bot) -> None:
        super().__init__(bot)
        self.views: weakref.WeakSet[PagedResults] = weakref.WeakSet()

    async def cog_unload(self) -> None:
        for view in list(self.views):
            view.stop()  # ends its timeout task with the bot, not after

    async def _show(self, interaction: discord.Interaction[Any], title: str,
                    rows: list[tuple[Article, Match | None]], note: str | None = None) -> None:
        stories = await self.engine.stories_of([a.id for a, _ in rows])
        view = PagedResults(title, group_results(rows, stories), page_size=PAGE, note=note,
                            total=len(rows), expand=self._story_embed)
        self.views.add(view)
        paged = view if view.has_items else discord.utils.MISSING
        if interaction.response.is_done():
            await interaction.followup.send(embed=view.embed(), view=paged)
        else:
            await interaction.response.send_message(embed=view.embed(), view=paged)

    @app_commands.command(name="search")
    @app_commands.describe(query='e.g. troops NEAR/5 border, "security guarantees", kyiv~',
                           since="only articles newer than this, e.g. 24h or 7d",
                           source="only this source", limit="how many results (1-50)",
                           order="newest first (default) or best match first")
    async def search(self, interaction: discord.Interaction[Any],
                     query: app_commands.Range[str, 1, 500],
                     since: app_commands.Transform[timedelta, Duration("since")] | None = None,
                     source: app_commands.Transform[str, SourceName] | None = None,
                     limit: app_commands.Range[int, 1, 50] = 20,
                     order: Literal["newest", "best"] = "newest") -> None:
        """Search stored articles with the rule language."""
        # What the user can get wrong is checked before deferring: after it, Discord shows the
        # first answer in the public "thinking" message, so an error could not stay private.
        parse(query)
        if source is not None and source not in self.engine.source_names():
            raise NewswatchError(f"no source named {source!r}; known: "
                                 f"{', '.join(self.engine.source_names()) or 'none'}")
        await interaction.response.defer(thinking=True)
        found = await self.engine.search(query, since=since, source=source, limit=limit,
                                         order=order)
        await self._show(interaction, truncate(f"Search: {query}", 200),
                         [(h.article, h.match) for h in found.hits],
                         CUT_SHORT if found.truncated else None)

    @app_commands.command(name="recent")
    @app_commands.describe(rule="only this rule", limit="how many (1-25)")
    async def recent(self, interaction: discord.Interaction[Any],
                     rule: app_commands.Transform[str, RuleName] | None = None,
                     limit: app_commands.Range[int, 1, 25] = 10) -> None:
        """The latest articles that fired a rule."""
        items = await self.engine.recent(rule=rule, limit=limit, guild=interaction.guild_id)
        rows = [(a, next((m for m in ms if rule is None or m.rule == rule), None))
                for a, ms in items]
        await self._show(interaction, f"Recent alerts for {rule}" if rule else "Recent alerts",
                         rows)

    @app_commands.command(name="article")
    @app_commands.describe(id="the article id shown in alerts and results")
    async def article(self, interaction: discord.Interaction[Any],
                      id: app_commands.Range[str, 4, 64]) -> None:
        """One article: an excerpt and every rule that matched it, and why."""
        found = await self.engine.article(id, guild=interaction.guild_id)
        if found is None:
            await interaction.response.send_message(f"No article with id `{id[:64]}`.",
                                                    ephemeral=True)
            return
        article, matches = found
        story = (await self.engine.stories_of([article.id])).get(article.id)
        await interaction.response.send_message(
            embed=article_embed(article, matches, story=story))

    async def _story_embed(self, story_id: str) -> discord.Embed | None:
        detail = await self.engine.story(story_id, limit=STORY_ARTICLES)
        return story_embed(detail) if detail is not None else None

    @app_commands.command(name="story")
    @app_commands.describe(id="the story id shown in alerts, /article and /search")
    async def story(self, interaction: discord.Interaction[Any],
                    id: app_commands.Transform[str, StoryId]) -> None:
        """One story: its outlets, first and last report, and its articles oldest first."""
        embed = await self._story_embed(id)
        if embed is None:
            await interaction.response.send_message(f"No story with id `{id}`.", ephemeral=True)
            return
        await interaction.response.send_message(embed=embed)

    @app_commands.command(name="stats")
    async def stats(self, interaction: discord.Interaction[Any]) -> None:
        """Articles, alerts and the health of every source."""
        await interaction.response.send_message(embed=stats_embed(await self.engine.stats()))
