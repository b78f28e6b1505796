"""Lookups: /search, /recent, /article, /stats."""

from __future__ import annotations

import logging
import weakref
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.embeds import article_embed, truncate
from bot.exts.lookup._views import PagedResults
from bot.interactions import choices, engine_of, parse_user_duration, reply_error
from watchers.rules import parse

log = logging.getLogger("newswatch")

PAGE = 5


class LookupCog(commands.Cog):
    """Read-only lookups over stored articles; anyone may use them."""

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        self.views: weakref.WeakSet[PagedResults] = weakref.WeakSet()

    async def cog_unload(self) -> None:
        for view in list(self.views):
            view.stop()  # ends its timeout task with the bot, not after

    async def cog_app_command_error(self, interaction: discord.Interaction[Any],
                                    error: app_commands.AppCommandError) -> None:
        log.debug("lookup command failed", exc_info=error)
        await reply_error(interaction, error)

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
        hits = await engine_of(self.bot).search(query, since=window, source=source, limit=limit,
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
        return choices(engine_of(self.bot).service.source_names(), current)

    @app_commands.command(name="recent", description="The latest articles that fired a rule.")
    @app_commands.describe(rule="only this rule", limit="how many (1-25)")
    async def recent(self, interaction: discord.Interaction[Any], rule: str | None = None,
                     limit: app_commands.Range[int, 1, 25] = 10) -> None:
        """The latest articles that fired a rule."""
        items = await engine_of(self.bot).recent(rule=rule, limit=limit)
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
        return choices([r.name for r in engine_of(self.bot).service.rules], current)

    @app_commands.command(
        name="article",
        description="One article: an excerpt and every rule that matched it, and why.",
    )
    @app_commands.describe(id="the article id shown in alerts and results")
    async def article(self, interaction: discord.Interaction[Any],
                      id: app_commands.Range[str, 4, 64]) -> None:
        """One article: an excerpt and every rule that matched it, and why."""
        found = await engine_of(self.bot).article(id)
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
        s = await engine_of(self.bot).stats()
        embed = discord.Embed(title="newswatch stats", colour=0x5865F2)
        embed.add_field(name="Articles", value=str(s.articles))
        alerts = ", ".join(f"{k} {v}" for k, v in sorted(s.alerts.items())) or "none yet"
        embed.add_field(name="Alerts", value=alerts)
        for src in s.sources[:20]:
            st = src.state
            ok = f"<t:{int(st.last_success.timestamp())}:R>" if st.last_success else "never"
            nxt = f"<t:{int(st.next_poll.timestamp())}:R>" if st.next_poll else "now"
            lines = [f"last success {ok} · next poll {nxt}"]
            if st.paused:
                lines.insert(0, f"**paused** after {st.failures} failures")
            if st.last_error:
                lines.append(f"last error: {truncate(st.last_error, 300)}")
            embed.add_field(name=truncate(f"{src.name} ({src.kind})", 256),
                            value=truncate("\n".join(lines), 1024), inline=False)
        for route, reason in list(s.paused_routes.items())[:3]:
            embed.add_field(name=f"route {route} paused", value=truncate(reason, 1024),
                            inline=False)
        await interaction.response.send_message(embed=embed)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(LookupCog(bot))
