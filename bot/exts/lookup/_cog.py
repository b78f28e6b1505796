"""The lookup cog: read-only questions about stored articles; anyone may ask them.

Every lookup is scoped to the server it runs in (``interaction.guild_id``): it finds only
articles of the sources that server sees (the shared ones and its own), shows them by the
names the server gave its sources, and answers for another server's article or story exactly
as for one that does not exist.

Results show one line per story (in the order of each story's first hit), so ten outlets
reporting one event take one line; articles without a story of several articles stand alone.
"""

from __future__ import annotations

import functools
import weakref
from datetime import timedelta
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.embeds import (
    CUT_SHORT,
    article_embed,
    code_text,
    group_results,
    stats_embed,
    story_embed,
    truncate,
)
from bot.exts.lookup._views import PagedResults
from bot.interactions import (
    MAX_ID_LENGTH,
    Duration,
    LookupSource,
    NewswatchCog,
    RuleName,
    StoryId,
    in_time,
    reply,
    unquoted,
)
from watchers.models import Article, Match
from watchers.rules import parse
from watchers.store.base import MIN_PREFIX, StoryRecord

PAGE = 5
# More articles than one embed can list; the embed says how many it left out.
STORY_ARTICLES = 50


class LookupCog(NewswatchCog):
    """Read-only lookups over stored articles."""

    lookup_commands = True

    def __init__(self, bot: commands.Bot) -> None:
        super().__init__(bot)
        self.views: weakref.WeakSet[PagedResults] = weakref.WeakSet()

    async def cog_unload(self) -> None:
        for view in list(self.views):
            view.stop()  # ends its timeout task with the bot, not after

    async def _show(self, interaction: discord.Interaction[Any], title: str,
                    rows: list[tuple[Article, Match | None]], note: str | None = None) -> None:
        guild = interaction.guild_id
        stories = await self._stories([a.id for a, _ in rows], guild)
        # the select expands a story as the server that asked sees it, whoever clicks
        view = PagedResults(title, group_results(rows, stories), page_size=PAGE, note=note,
                            total=len(rows), interaction=interaction,
                            expand=functools.partial(self._story_embed, guild=guild))
        self.views.add(view)
        paged = view if view.has_items else discord.utils.MISSING
        await reply(interaction, embed=view.embed(), view=paged)

    async def _stories(self, article_ids: list[str], guild: int | None
                       ) -> dict[str, StoryRecord]:
        """The story of each article that has one, as ``guild`` sees it (another server's
        feed is not even hinted at: see :meth:`Engine.stories_of`)."""
        return await self.engine.stories_of(article_ids, guild=guild)

    @app_commands.command(name="search")
    @app_commands.guild_only()
    @app_commands.describe(query='e.g. troops NEAR/5 border, "security guarantees", kyiv~',
                           since="only articles newer than this, e.g. 24h or 7d",
                           source="only this source", limit="how many results (1-50)",
                           order="newest first (default) or best match first")
    async def search(self, interaction: discord.Interaction[Any],
                     query: app_commands.Range[str, 1, 500],
                     since: app_commands.Transform[timedelta, Duration("since")] | None = None,
                     source: app_commands.Transform[str, LookupSource] | None = None,
                     limit: app_commands.Range[int, 1, 50] = 20,
                     order: Literal["newest", "best"] = "newest") -> None:
        """Search stored articles with the rule language."""
        # What the user can get wrong is checked before deferring: after it, Discord shows the
        # first answer in the public "thinking" message, so an error could not stay private.
        parse(query)
        guild = interaction.guild_id
        if source is not None:
            # A running source, or one whose articles are stored (a removed one's, an
            # import's): /search shows them by that name, and refused it as unknown.
            await self.engine.source_key(source, guild=guild)
        await interaction.response.defer(thinking=True)
        found = await self.engine.search(query, since=since, source=source, limit=limit,
                                         order=order, guild=guild)
        await self._show(interaction, truncate(f"Search: {query}", 200),
                         [(h.article, h.match) for h in found.hits],
                         CUT_SHORT if found.truncated else None)

    @app_commands.command(name="recent")
    @app_commands.guild_only()
    @app_commands.describe(rule="only this rule", limit="how many (1-25)")
    async def recent(self, interaction: discord.Interaction[Any],
                     rule: app_commands.Transform[str, RuleName] | None = None,
                     limit: app_commands.Range[int, 1, 25] = 10) -> None:
        """The latest articles that fired a rule."""
        # Each article's evidence is found for the answer: a page of long articles can take
        # longer than Discord waits for a first answer.
        items = await in_time(interaction, self.engine.recent(rule=rule, limit=limit,
                                                              guild=interaction.guild_id))
        if rule is not None:  # as the engine found it: "/recent rule:WATCH" showed no "why"
            rule = self.engine.rule_of(rule, interaction.guild_id).name
        rows = [(a, next((m for m in ms if rule is None or m.rule == rule), None))
                for a, ms in items]
        await self._show(interaction, f"Recent alerts for {rule}" if rule else "Recent alerts",
                         rows)

    @app_commands.command(name="article")
    @app_commands.guild_only()
    @app_commands.describe(id="the article id shown in alerts and results")
    async def article(self, interaction: discord.Interaction[Any],
                      id: app_commands.Range[str, 1, MAX_ID_LENGTH]) -> None:
        """One article: an excerpt and every rule that matched it, and why."""
        id = unquoted(id)  # as /story takes one
        guild = interaction.guild_id
        # Whether the id names an article is known before the evidence is found (the slow
        # part), so that "no such article" stays private: once the answer is deferred in
        # public, Discord shows the first answer in that public message.
        found = await in_time(interaction, self.engine.article(id, guild=guild, evidence=False))
        if found is None:
            await reply(
                interaction,
                content=f"No article with id `{code_text(id[:64])}`: an id is found whole, or "
                f"by its first {MIN_PREFIX} or more characters when only one article's id "
                "starts with them (see /search).", ephemeral=True)
            return
        found = await in_time(interaction, self.engine.article(found[0].id, guild=guild)) or found
        article, matches = found
        story = (await self._stories([article.id], guild)).get(article.id)
        await reply(interaction, embed=article_embed(article, matches, story=story))

    async def _story_embed(self, story_id: str, *, guild: int | None) -> discord.Embed | None:
        detail = await self.engine.story(story_id, limit=STORY_ARTICLES, guild=guild)
        return story_embed(detail) if detail is not None else None

    @app_commands.command(name="story")
    @app_commands.guild_only()
    @app_commands.describe(id="the story id shown in alerts, /article and /search")
    async def story(self, interaction: discord.Interaction[Any],
                    id: app_commands.Transform[str, StoryId]) -> None:
        """One story: its outlets, first and last report, and its articles oldest first."""
        guild = interaction.guild_id
        # As for /article: whether there is such a story is known first (one article read),
        # so "no such story" stays private even when listing its articles takes long.
        if await in_time(interaction, self.engine.story(id, limit=1, guild=guild)) is None:
            await reply(interaction, content=f"No story with id `{code_text(id)}`.",
                        ephemeral=True)
            return
        embed = await in_time(interaction, self._story_embed(id, guild=guild))
        if embed is None:  # gone meanwhile (its articles expired)
            await reply(interaction, content=f"No story with id `{code_text(id)}`.",
                        ephemeral=True)
            return
        await reply(interaction, embed=embed)

    @app_commands.command(name="stats")
    @app_commands.guild_only()
    async def stats(self, interaction: discord.Interaction[Any]) -> None:
        """Articles, alerts and the health of every source."""
        stats = await in_time(interaction, self.engine.stats(guild=interaction.guild_id))
        await reply(interaction, embed=stats_embed(stats))
