"""The sources cog: /sources list|export for anyone, /sources add|remove|resume|import for
admins. Import and export go through :mod:`watchers.opml`, so an imported feed meets exactly the
checks of /sources add.

Every command is scoped to the server it runs in (``interaction.guild_id``): it sees the shared
sources (the config file's, marked as such) and the server's own, by the names the server gave
them, and changes only the server's own. Another server's sources are as unknown as a name
nobody used: the answers do not tell them apart."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from datetime import timedelta
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.embeds import code_text, escape, sources_embed, truncate
from bot.exts.sources._opml import MAX_ATTACHMENT_BYTES, import_embed
from bot.interactions import Duration, NewswatchCog, SourceName, answer, in_time, reply
from watchers.config import format_duration
from watchers.errors import NewswatchError
from watchers.opml import OpmlDocument, export_opml, import_opml, parse_opml
from watchers.urls import without_credentials

# How long /sources import reads and parses its file before it defers its answer.
PARSE_BEFORE_DEFER = 1.5


async def _read_opml(file: discord.Attachment) -> OpmlDocument:
    try:
        data = await file.read()
    except discord.HTTPException as exc:
        raise NewswatchError(f"could not download {file.filename}: {exc.status}") from None
    # A 5 MiB file takes about a second to parse: off the event loop, which also serves Discord.
    return await asyncio.to_thread(parse_opml, data)


@app_commands.guild_only()
class SourcesCog(NewswatchCog, commands.GroupCog, group_name="sources",
                 group_description="News sources."):
    """List, add, remove and resume the sources being watched."""

    admin_commands = frozenset({"add", "remove", "resume", "import"})

    @app_commands.command(name="list")
    async def list_(self, interaction: discord.Interaction[Any]) -> None:
        """Every source with its schedule and health."""
        views = await in_time(interaction, self.engine.sources(guild=interaction.guild_id))
        await reply(interaction, embed=sources_embed(views))

    @app_commands.command(name="add")
    @app_commands.describe(name="a short name", url="the feed's http(s) URL",
                           every="how often to poll (default 10m, at least 1m)",
                           outlet="who publishes it, for corroboration (default: the site "
                                  "of the URL)")
    async def add(self, interaction: discord.Interaction[Any],
                  name: app_commands.Range[str, 1, 64], url: app_commands.Range[str, 8, 2000],
                  every: app_commands.Transform[timedelta, Duration("every")] = timedelta(
                      minutes=10),
                  outlet: app_commands.Range[str, 1, 64] | None = None) -> None:
        """Watch a new RSS, Atom or JSON feed."""
        model: dict[str, Any] = {"name": name, "type": "feed", "url": url.strip(),
                                 "every": every}
        if outlet is not None:
            # Where one address serves several publishers (a bridge), or one publisher several
            # sites: what a rule's min_sources counts the feed as (see docs/stories.md).
            model["outlet"] = outlet
        view = await self.engine.add_source(
            model, created_by=str(interaction.user.id), guild=interaction.guild_id)
        if view.replaced is not None:
            # The name was the server's already: say what it read before, as /rules add does.
            where, every = view.replaced
            await interaction.response.send_message(
                f"Watching **{escape(view.name)}** every {format_duration(view.every)} "
                f"(replaced `{code_text(truncate(without_credentials(where), 300))}` every "
                f"{format_duration(every)}).")
            return
        await interaction.response.send_message(
            f"Watching **{escape(view.name)}** every {format_duration(view.every)}. "
            "The first poll records a baseline; new items alert from then on.")

    @app_commands.command(name="remove")
    @app_commands.describe(name="the source to remove")
    async def remove(self, interaction: discord.Interaction[Any],
                     name: app_commands.Transform[str, SourceName]) -> None:
        """Stop watching a source added in Discord."""
        await answer(interaction, await self.engine.remove_source(
                         name, guild=interaction.guild_id),
                     f"Source **{escape(name)}** removed; its articles stay stored.",
                     f"No source named `{code_text(name[:64])}`.")

    @app_commands.command(name="resume")
    @app_commands.describe(name="the source to resume")
    async def resume(self, interaction: discord.Interaction[Any],
                     name: app_commands.Transform[str, SourceName]) -> None:
        """Resume a paused source and poll it now."""
        await answer(interaction, await self.engine.resume_source(
                         name, guild=interaction.guild_id),
                     f"Source **{escape(name)}** resumed.",
                     f"No source named `{code_text(name[:64])}` has been polled yet.")

    @app_commands.command(name="import")
    @app_commands.describe(file="an OPML file (as feed readers export it), at most 5 MiB",
                           every="how often to poll each feed (default 10m, at least 1m)")
    async def import_(self, interaction: discord.Interaction[Any], file: discord.Attachment,
                      every: app_commands.Transform[timedelta, Duration("every")] = timedelta(
                          minutes=10)) -> None:
        """Watch every feed of an OPML file; says per feed what was added, skipped, refused."""
        if file.size > MAX_ATTACHMENT_BYTES:
            raise NewswatchError(f"{file.filename} is {file.size:,} bytes; an OPML import "
                                 f"takes at most {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MiB")
        # Reading and parsing usually take a moment: what is wrong with the file is then said
        # privately, before the command defers. A file that takes longer (up to 5 MiB) is
        # finished after deferring, within the 3 s Discord allows before the first answer;
        # each feed is then validated and stored in turn, which a long list also outlasts.
        parsing = asyncio.ensure_future(_read_opml(file))
        try:
            document = await asyncio.wait_for(asyncio.shield(parsing), PARSE_BEFORE_DEFER)
        except TimeoutError:
            await interaction.response.defer(thinking=True)
            document = await parsing
        else:
            await interaction.response.defer(thinking=True)
        report = await import_opml(self.engine, document, created_by=str(interaction.user.id),
                                   every=every, guild=interaction.guild_id)
        await interaction.followup.send(embed=import_embed(file.filename, report))

    @app_commands.command(name="export")
    async def export(self, interaction: discord.Interaction[Any]) -> None:
        """Every feed this server sees, as an OPML file for a feed reader or another bot."""
        # Everyone may export: a URL's credentials (the operator's private feed's ?token=) stay
        # out of the file, as out of /sources list.
        # In Discord's time, as /sources list (a slow store missed the 3 s and the member saw
        # "The application did not respond").
        views = [dataclasses.replace(v, where=without_credentials(v.where))
                 for v in await in_time(interaction, self.engine.sources(
                     guild=interaction.guild_id))
                 if v.kind == "feed"]
        if not views:
            await reply(interaction, content="There are no feeds to export.", ephemeral=True)
            return
        await reply(interaction, content=f"{len(views)} feed(s).",
                    file=discord.File(io.BytesIO(export_opml(views)),
                                      filename="newswatch-sources.opml"))
