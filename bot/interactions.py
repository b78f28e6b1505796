"""Helpers the extensions share: the engine lookup, the admin check, replies for errors."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.embeds import escape, truncate
from watchers.config import parse_duration
from watchers.engine import Engine
from watchers.errors import NewswatchError, QuerySyntaxError

T = TypeVar("T")
log = logging.getLogger("newswatch")

__all__ = [
    "NewswatchCog",
    "choices",
    "engine_of",
    "is_admin",
    "parse_user_duration",
    "reply_error",
    "require_admin",
]


class NewswatchCog(commands.Cog):
    """What every newswatch cog shares: the bot, and errors answered privately to the user."""

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        super().__init__()

    @property
    def engine(self) -> Engine:
        return engine_of(self.bot)

    async def cog_app_command_error(self, interaction: discord.Interaction[Any],
                                    error: app_commands.AppCommandError) -> None:
        log.debug("/%s failed", interaction.command.qualified_name if interaction.command
                  else "command", exc_info=error)
        await reply_error(interaction, error)


def choices(names: Iterable[str], current: str) -> list[app_commands.Choice[str]]:
    """Autocomplete choices: names containing what was typed, at most 25 (Discord's limit)."""
    typed = current.lower()
    return [app_commands.Choice(name=n, value=n) for n in sorted(names) if typed in n.lower()][:25]


def engine_of(client: discord.Client) -> Engine:
    engine = getattr(client, "newswatch", None)
    if not isinstance(engine, Engine):
        raise RuntimeError("the bot has no newswatch engine (set bot.newswatch before loading)")
    return engine


def is_admin(interaction: discord.Interaction[Any]) -> bool:
    """Manage Server, or the configured admin role (by id or name)."""
    member = interaction.user
    if not isinstance(member, discord.Member):
        return False
    if member.guild_permissions.manage_guild:
        return True
    role = getattr(interaction.client, "admin_role", None)
    if role is None:
        return False
    return any(r.id == role or r.name == role for r in member.roles)


class NotAdmin(app_commands.CheckFailure):
    pass


def require_admin() -> Callable[[T], T]:
    """A runtime check on top of default_permissions(manage_guild): server settings can widen
    who sees a command, so the bot checks again."""

    def predicate(interaction: discord.Interaction[Any]) -> bool:
        if interaction.guild is None:
            raise app_commands.NoPrivateMessage("This command works only inside a server.")
        if not is_admin(interaction):
            raise NotAdmin("You need Manage Server (or the newswatch admin role) for this.")
        return True

    return app_commands.check(predicate)


def parse_user_duration(value: str, what: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise NewswatchError(f"{what}: {exc}") from None


def describe_error(error: BaseException) -> str:
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, QuerySyntaxError):
        return (f"Query error: {escape(error.message)} at column {error.column}.\n"
                f"```\n{truncate(error.caret(), 1800)}\n```")
    if isinstance(error, NewswatchError | app_commands.CheckFailure):
        return truncate(escape(str(error)), 1900)
    return "Something went wrong on our side; it has been logged."


async def reply_error(interaction: discord.Interaction[Any], error: BaseException) -> None:
    text = describe_error(error)
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.response.send_message(text, ephemeral=True)
