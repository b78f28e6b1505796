"""What the extensions share: the command tree, the cog base, option transformers, the admin
check and error replies.

Invariants:
- Every slash-command error is answered in one place, :meth:`NewswatchTree.on_error`, privately
  (ephemeral). Errors the user can fix (a bad query, an unknown rule, a refused URL, a missing
  permission) are shown as written; anything else is logged with its traceback under a short
  reference (6 hex digits) and the user sees only that reference.
- With ``bot.guild_ids`` set, no interaction from another server reaches a command; no
  interaction from a DM ever does (everything newswatch shows belongs to a server, and the engine
  reads ``guild=None`` as the operator's unscoped view).
- A command that changes what newswatch does needs Manage Server, or the configured admin role —
  given by id, or by name as a role of the server the interaction comes from.
- A lookup command (a cog's ``lookup_commands``) runs only while its member has fewer than
  ``[discord] lookups_per_member`` lookups running and its server fewer than
  ``lookups_per_server``; otherwise it is refused at once, privately (:class:`TooManyLookups`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import secrets
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, ClassVar, TypeVar, cast

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.embeds import code_text, escape, truncate, visible
from watchers.config import format_duration, parse_duration
from watchers.engine import Engine
from watchers.errors import ConfigError, NewswatchError, QuerySyntaxError
from watchers.importer import MAX_ID_BYTES

log = logging.getLogger("newswatch")

__all__ = [
    "ADMIN_PERMISSIONS",
    "MAX_ID_LENGTH",
    "ONLY_IN_SERVERS",
    "Duration",
    "LookupLimits",
    "LookupSource",
    "NewswatchCog",
    "NewswatchTree",
    "NotAdmin",
    "OptionError",
    "PausedRoute",
    "RouteName",
    "RuleName",
    "SourceName",
    "StoryId",
    "TooManyLookups",
    "answer",
    "check_admin",
    "choices",
    "describe_error",
    "engine_of",
    "is_admin",
    "lookup_limits",
    "option_problem",
    "routes_seen",
]

#: Discord's default for commands that change things: hidden from members without Manage Server
#: until a server admin widens it (so the bot checks again at run time, see check_admin).
ADMIN_PERMISSIONS = discord.Permissions(manage_guild=True)
NOT_ENABLED = "newswatch is not enabled in this server."
ONLY_IN_SERVERS = "newswatch commands work only inside a server."

# The longest article id an option takes: an imported line's id may be up to 1,000 bytes (the
# import's MAX_ID_BYTES), and every id a result shows can be looked up (/article took 4 to 64
# characters: "42" or a long link-shaped id could never be opened).
MAX_ID_LENGTH = MAX_ID_BYTES


class NotAdmin(app_commands.CheckFailure):
    """The user may not run a command that changes what newswatch does."""


class OptionError(app_commands.AppCommandError):
    """An option value the user typed cannot be used; the message names the option."""


class TooManyLookups(app_commands.CheckFailure):
    """The member, or their server, has as many lookups running as it may."""


# ------------------------------------------------------------------------------ tree


class NewswatchTree(app_commands.CommandTree[Any]):
    """The one command tree: refuses other servers, answers every command error, and knows
    the commands under way (a stop lets them answer before the connection closes)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._running: set[asyncio.Task[Any]] = set()

    async def finish_commands(self, within: float) -> None:
        """Wait, ``within`` seconds at most, for the commands under way to answer: stopped
        with the bot, a lookup answered into a closed connection, its member was left with
        "thinking…" in public, and the error it met was raised again by the error handler."""
        running = [t for t in self._running if not t.done()]
        if running:
            await asyncio.wait(running, timeout=within)

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        # Runs first in the task that runs the command and answers its errors.
        if not getattr(self.client, "answers_commands", True):
            # A deliver process: Discord sends each interaction to every session of the
            # token, and the bot process answers it. Answered here too ("Something went
            # wrong": a command this process does not have), the bot's own answer was refused
            # while its change was made.
            return False
        task = asyncio.current_task()
        if task is not None and task not in self._running:
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        allowed: list[int] = getattr(self.client, "guild_ids", None) or []
        if interaction.guild_id is None:
            text = ONLY_IN_SERVERS
        elif allowed and interaction.guild_id not in allowed:
            text = NOT_ENABLED
        elif interaction.type is not discord.InteractionType.application_command or (
                problem := option_problem(interaction)) is None:
            return True
        else:
            log.info("refused /%s: %s", _command_name(interaction), problem)
            await interaction.response.send_message(truncate(escape(problem), 1900),
                                                    ephemeral=True)
            return False
        log.info("refused /%s from guild %s", _command_name(interaction), interaction.guild_id)
        if interaction.type is discord.InteractionType.autocomplete:
            await interaction.response.autocomplete([])
        else:
            await interaction.response.send_message(text, ephemeral=True)
        return False

    async def on_error(self, interaction: discord.Interaction[Any],
                       error: app_commands.AppCommandError, /) -> None:
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        text = describe_error(cause)
        if text is None:
            ref = secrets.token_hex(3)
            log.error("/%s failed (ref %s)", _command_name(interaction), ref, exc_info=cause)
            text = f"Something went wrong (ref {ref}); it has been logged."
        else:
            log.debug("/%s refused: %s", _command_name(interaction), cause)
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException as exc:  # the interaction expired or Discord is away
            log.warning("could not answer /%s: %s", _command_name(interaction), exc)
        except (RuntimeError, aiohttp.ClientError) as exc:  # the bot closed meanwhile
            log.warning("could not answer /%s: the bot was stopping (%s)",
                        _command_name(interaction), exc)


def option_problem(interaction: discord.Interaction[Any]) -> str | None:
    """What is wrong with the interaction's options against the command's own declaration (a
    number out of its range, a value none of its choices), or None. Discord's client keeps to
    the declaration; a request made by hand need not, and discord.py passes such values on: a
    limit of 0 reached the engine after /search had deferred, and the user saw "Something went
    wrong" in public."""
    command = interaction.command
    if not isinstance(command, app_commands.Command):
        return None
    for param in command.parameters:
        value = getattr(interaction.namespace, param.display_name, None)
        if value is None:
            continue
        name = param.display_name
        if param.choices and value not in [c.value for c in param.choices]:
            allowed = ", ".join(str(c.value) for c in param.choices)
            return f"{name}: one of {allowed}, not {str(value)[:60]!r}"
        if param.type is discord.AppCommandOptionType.string and isinstance(value, str):
            # Its declared length (for a string, discord.py keeps it as the bounds): a /search
            # or /rules add of 10,000 characters ran and was stored. Only a plain Range[str]:
            # a transformer (a story id, a duration) names its own limits with its value.
            if not _plain_range(command, param.name):
                continue
            low, high = param.min_value, param.max_value
            if (low is not None and len(value) < low) or (high is not None
                                                          and len(value) > high):
                bounds = (f"from {low} to {high}" if low is not None and high is not None
                          else f"at least {low}" if low is not None else f"at most {high}")
                return f"{name}: {bounds} characters, not {len(value)}"
            continue
        if param.type is discord.AppCommandOptionType.integer and (
                not isinstance(value, int) or isinstance(value, bool)):
            # (2.5 or "abc" for a whole number reached the engine after a public defer)
            return f"{name}: a whole number, not {str(value)[:60]!r}"
        if param.type is discord.AppCommandOptionType.number and (
                not isinstance(value, int | float) or isinstance(value, bool)):
            return f"{name}: a number, not {str(value)[:60]!r}"
        if param.type is discord.AppCommandOptionType.string and not isinstance(value, str):
            return f"{name}: text, not {str(value)[:60]!r}"
        if param.type not in (discord.AppCommandOptionType.integer,
                              discord.AppCommandOptionType.number):
            continue
        low, high = param.min_value, param.max_value
        if (low is not None and value < low) or (high is not None and value > high):
            shown = str(value) if len(str(value)) <= 30 else f"{str(value)[:27]}..."
            bounds = (f"from {low} to {high}" if low is not None and high is not None
                      else f"at least {low}" if low is not None else f"at most {high}")
            return f"{name}: {bounds}, not {shown}"
    return None


def _plain_range(command: app_commands.Command[Any, ..., Any], name: str) -> bool:
    """Whether the command's parameter ``name`` is a plain ``Range[str, …]`` (discord.py keeps
    the annotation on its private parameter; when it cannot be told, no)."""
    params = getattr(command, "_params", None)
    inner = params.get(name) if isinstance(params, dict) else None
    return isinstance(getattr(inner, "_annotation", None),
                      app_commands.transformers.RangeTransformer)


def _command_name(interaction: discord.Interaction[Any]) -> str:
    command = interaction.command
    return command.qualified_name if command is not None else "command"


def describe_error(error: BaseException) -> str | None:
    """What to tell the user about an error they can act on; None for anything unexpected."""
    if isinstance(error, ConfigError) and error.issues:
        # one line per problem, each naming its key: "query: … at column 14"
        return truncate("\n".join(escape(str(i)) for i in error.issues), 1900)
    if isinstance(error, QuerySyntaxError):
        # The query in a code block, its backticks as look-alikes (one column each, so the
        # caret still points at its place): three of them would close the block early.
        shown = code_text(truncate(error.query, 1800))
        caret = " " * min(error.column - 1, len(shown)) + "^"
        return (f"Query error: {escape(error.message)} at column {error.column}.\n"
                f"```\n{shown}\n{caret}\n```")
    if isinstance(error, NewswatchError | app_commands.CheckFailure | OptionError):
        return truncate(escape(str(error)), 1900)
    if isinstance(error, app_commands.TransformerError):
        return truncate(escape(f"{error.value!r} is not a valid choice here."), 1900)
    return None


# ------------------------------------------------------------------------------ cogs


def engine_of(client: discord.Client) -> Engine:
    engine = getattr(client, "newswatch", None)
    if not isinstance(engine, Engine):
        raise RuntimeError("the bot has no newswatch engine (set bot.newswatch before loading)")
    return engine


def is_admin(interaction: discord.Interaction[Any]) -> bool:
    """Manage Server, or the configured admin role: by id, or by name among the roles of the
    server the interaction comes from (a name means nothing across servers)."""
    member = interaction.user
    guild_id = interaction.guild_id
    if not isinstance(member, discord.Member) or guild_id is None:
        return False
    if member.guild_permissions.manage_guild:
        return True
    role = getattr(interaction.client, "admin_role", None)
    if role is None:
        return False
    if isinstance(role, int):
        return any(r.id == role for r in member.roles)
    return any(r.name == role and r.guild.id == guild_id for r in member.roles)


def check_admin(interaction: discord.Interaction[Any]) -> bool:
    """True, or raises the CheckFailure that tells the user why not."""
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage("This command works only inside a server.")
    if not is_admin(interaction):
        raise NotAdmin("You need Manage Server (or the newswatch admin role) for this.")
    return True


class LookupLimits:
    """Lookups running now, per member and per server, against the engine's ``[discord]
    lookups_per_member`` and ``lookups_per_server``.

    Lookups share the engine's lookup threads: one member's burst of expensive queries (eight
    /trend of a backtracking regex over 90 days, eight /search of 26 prefixes) kept every other
    server's lookups waiting behind it. A lookup past a cap is refused at once rather than
    queued, so the answer comes in a moment and says what to do. Counted on the event loop
    only: no lock needed.
    """

    def __init__(self) -> None:
        self.members: Counter[tuple[int, int]] = Counter()
        self.servers: Counter[int] = Counter()

    @contextmanager
    def hold(self, engine: Engine, guild: int | None, user: int) -> Iterator[None]:
        """One lookup's place while it runs, or TooManyLookups saying whose cap it is."""
        per_member = engine.config.discord.lookups_per_member
        per_server = engine.config.discord.lookups_per_server
        member, server = (guild or 0, user), guild or 0
        if self.members[member] >= per_member:
            raise TooManyLookups(f"You have {self.members[member]} lookups running; wait for "
                                 "one to finish.")
        if self.servers[server] >= per_server:
            raise TooManyLookups(f"This server has {self.servers[server]} lookups running; "
                                 "wait for one to finish.")
        self.members[member] += 1
        self.servers[server] += 1
        try:
            yield
        finally:
            self.members[member] -= 1
            if not self.members[member]:
                del self.members[member]
            self.servers[server] -= 1
            if not self.servers[server]:
                del self.servers[server]


# One set of counts per bot, for every cog it loads (a bot that is not a NewsBot loads the
# extensions too); the counts go with the bot.
_LIMITS: weakref.WeakKeyDictionary[discord.Client, LookupLimits] = weakref.WeakKeyDictionary()


def lookup_limits(client: discord.Client) -> LookupLimits:
    """The lookups ``client`` is running, per member and per server."""
    limits = _LIMITS.get(client)
    if limits is None:
        limits = _LIMITS[client] = LookupLimits()
    return limits


_C = TypeVar("_C", bound=Callable[..., Awaitable[Any]])


def _limited(callback: _C) -> _C:
    """``callback`` (a cog's command) run only within its member's and server's lookups."""
    @functools.wraps(callback)
    async def limited(cog: NewswatchCog, interaction: discord.Interaction[Any], /,
                      *args: Any, **kwargs: Any) -> Any:
        with lookup_limits(cog.bot).hold(cog.engine, interaction.guild_id, interaction.user.id):
            return await callback(cog, interaction, *args, **kwargs)
    return cast(_C, limited)


class NewswatchCog(commands.Cog):
    """What every newswatch cog shares: the bot, its engine, which commands need an admin and
    which are lookups.

    ``admin_commands`` names the commands (by name within the cog) that change what newswatch
    does, or is True for all of them. Those are checked at run time (server settings can widen
    who sees a command); top-level ones are also hidden by default from members without Manage
    Server and offered only inside servers. A group's own default permissions are set with
    discord.py's class decorators (Discord has no per-subcommand default).

    ``lookup_commands`` names the commands that read stored articles (or is True for all):
    each runs within its member's and its server's cap of lookups at once (see
    :class:`LookupLimits`), counted across every cog of the bot.
    """

    admin_commands: ClassVar[frozenset[str] | bool] = False
    lookup_commands: ClassVar[frozenset[str] | bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for attr in vars(cls).values():
            if isinstance(attr, app_commands.Command) and cls._is_lookup(attr.name):
                # Around the command's own callback (discord.py has no hook after a command,
                # errors included), so the place is given back however the command ends.
                attr._callback = _limited(attr._callback)
        if cls.__cog_is_app_commands_group__:
            return
        for attr in vars(cls).values():
            if isinstance(attr, app_commands.Command) and cls._needs_admin(attr.name):
                app_commands.default_permissions(ADMIN_PERMISSIONS)(attr)
                app_commands.guild_only()(attr)

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        super().__init__()

    @property
    def engine(self) -> Engine:
        return engine_of(self.bot)

    async def cog_load(self) -> None:
        if not isinstance(self.bot.tree, NewswatchTree):
            log.warning("%s: the bot's command tree is not a NewswatchTree, so errors in "
                        "newswatch commands go unanswered (create the bot with "
                        "tree_cls=NewswatchTree)", type(self).__name__)

    @classmethod
    def _needs_admin(cls, name: str) -> bool:
        admin = cls.admin_commands
        return admin if isinstance(admin, bool) else name in admin

    @classmethod
    def _is_lookup(cls, name: str) -> bool:
        lookup = cls.lookup_commands
        return lookup if isinstance(lookup, bool) else name in lookup

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        command = interaction.command
        if command is not None and self._needs_admin(command.name):
            return check_admin(interaction)
        return True


async def answer(interaction: discord.Interaction[Any], done: bool, said: str, refused: str
                 ) -> None:
    """Reply ``said`` for everyone when the command changed something; when there was nothing
    to change, ``refused`` goes only to the user who asked."""
    await interaction.response.send_message(said if done else refused, ephemeral=not done)


#: Seconds a command's work may take before its interaction is deferred: Discord drops an
#: interaction not answered within three.
ANSWER_WITHIN = 2.0
_STARTED = "newswatch.in_time.started"  # (in the interaction's extras) when in_time first ran
_T = TypeVar("_T")


async def in_time(interaction: discord.Interaction[Any], work: Awaitable[_T], *,
                  ephemeral: bool = False) -> _T:
    """``work``'s result; when it takes longer than :data:`ANSWER_WITHIN`, the interaction is
    deferred ("thinking…", private with ``ephemeral``) while it goes on, and the answer is then
    sent as a follow-up (see :func:`reply`). A quick answer (an unknown id) stays a plain
    reply, private where the command makes it so. A command that calls it twice (a quick
    look, then the slow part) has :data:`ANSWER_WITHIN` from the first call for both."""
    loop = asyncio.get_running_loop()
    started = interaction.extras.setdefault(_STARTED, loop.time())
    task = asyncio.ensure_future(work)
    try:
        left = max(0.0, ANSWER_WITHIN - (loop.time() - started))
        done, _ = await asyncio.wait({task}, timeout=left)
        if not done and not interaction.response.is_done():
            await interaction.response.defer(thinking=True, ephemeral=ephemeral)
        return await task
    finally:
        task.cancel()  # the command was cancelled meanwhile (nothing, once it is done)


async def reply(interaction: discord.Interaction[Any], **kwargs: Any) -> None:
    """Send the command's answer: as its reply, or as the follow-up of a deferred one."""
    if interaction.response.is_done():
        await interaction.followup.send(**kwargs)
    else:
        await interaction.response.send_message(**kwargs)


# ------------------------------------------------------------------------------ options


def choices(names: Iterable[str], current: str) -> list[app_commands.Choice[str]]:
    """Autocomplete choices: names containing what was typed, at most 25 (Discord's limit)."""
    typed = current.lower()
    # the name is what Discord shows: a direction control in it is shown as its escape
    return [app_commands.Choice(name=truncate(visible(n), 100), value=n) for n in sorted(names)
            if typed in n.lower()][:25]


class _Named(app_commands.Transformer[Any]):
    """A name typed as a string, with the known names offered as the user types."""

    def names(self, engine: Engine, guild: int | None) -> Iterable[str]:
        """The names to offer to someone in ``guild`` (a server sees only what it may use)."""
        raise NotImplementedError

    async def transform(self, interaction: discord.Interaction[Any], value: Any, /) -> str:
        return str(value).strip()

    # Choice is invariant in discord.py's stubs, so a string-only answer is not an override there
    async def autocomplete(  # type: ignore[override]
            self, interaction: discord.Interaction[Any], value: int | float | str, /
    ) -> list[app_commands.Choice[str]]:
        return choices(self.names(engine_of(interaction.client), interaction.guild_id),
                       str(value))


class RuleName(_Named):
    """A rule's name; offers the running rules the server sees (the global ones and its own)."""

    def names(self, engine: Engine, guild: int | None) -> Iterable[str]:
        return engine.rule_names(guild)


class SourceName(_Named):
    """A source's name; offers the sources the server sees (the shared ones and its own, by
    the names it gave them)."""

    def names(self, engine: Engine, guild: int | None) -> Iterable[str]:
        return engine.source_names(guild)


class LookupSource(SourceName):
    """A lookup's source (``/search source:``); offers the running sources the server sees and
    those whose articles are stored (an import's, a removed source's), as the command takes
    them (``Engine.source_key``)."""

    async def autocomplete(  # type: ignore[override]  # see _Named.autocomplete
            self, interaction: discord.Interaction[Any], value: int | float | str, /
    ) -> list[app_commands.Choice[str]]:
        engine = engine_of(interaction.client)
        return choices(await engine.lookup_source_names(interaction.guild_id), str(value))


def routes_seen(names: Iterable[str], guild: int | None) -> list[str]:
    """The routes among ``names`` a caller in ``guild`` may see and act on, sorted: the
    operator's (a config file route's name has no ':') and the server's own (its picked
    channels, keyed ``"<guild id>:<name>"``); never another server's."""
    if guild is None:
        return sorted(names)
    own = f"{guild}:"
    return sorted(n for n in names if ":" not in n or n.startswith(own))


class _Route(_Named):
    """A delivery route: offered by its label (``#name`` for a picked channel); a server's own
    route may be given as that label, as ``name`` (unless a config route has that name: that
    one is meant) or as its key, and comes out as its key.

    A label names one route whatever it holds (``#desk: day``, ``#123:x``): a server's route
    names are unique within it (a second channel of the same name gets ``name-2``), and no
    key or config route's name begins with '#', so a label is looked up among the labels and
    never parsed."""

    def routes(self, engine: Engine) -> Iterable[str]:
        raise NotImplementedError

    def names(self, engine: Engine, guild: int | None) -> Iterable[str]:
        return routes_seen(self.routes(engine), guild)

    async def transform(self, interaction: discord.Interaction[Any], value: Any, /) -> str:
        typed = str(value).strip()
        guild = interaction.guild_id
        if guild is None:
            return typed
        engine = engine_of(interaction.client)
        seen = set(self.names(engine, guild))
        own = f"{guild}:"
        labels = {engine.route_label(k): k for k in seen if k.startswith(own)}
        if (key := labels.get(str(value), labels.get(typed))) is not None:
            return key
        # as shown (direction controls as escapes, see bot.embeds.visible), when no label
        # is that text as written
        shown = {visible(label): k for label, k in labels.items() if visible(label) != label}
        if (key := shown.get(typed)) is not None:
            return key
        if typed not in seen and f"{own}{typed}" in seen:
            return f"{own}{typed}"  # a server route's bare name
        return typed

    async def autocomplete(  # type: ignore[override]  # see _Named.autocomplete
            self, interaction: discord.Interaction[Any], value: int | float | str, /
    ) -> list[app_commands.Choice[str]]:
        engine = engine_of(interaction.client)
        typed = str(value).lower()
        # the label is also the value: a key of a long name would pass Discord's 100
        # characters, and transform maps "#name" back to the server's key
        labels = sorted(engine.route_label(k) for k in self.names(engine, interaction.guild_id))
        return [app_commands.Choice(name=truncate(visible(label), 100), value=label)
                for label in labels if typed in label.lower() and len(label) <= 100][:25]


class PausedRoute(_Route):
    """A delivery route; offers the paused ones, and those backing off, the server sees."""

    def routes(self, engine: Engine) -> Iterable[str]:
        return engine.resumable_routes()


class RouteName(_Route):
    """A delivery route (a name in [channels], a picked channel, or a rule's channel); offers
    those the server sees."""

    def routes(self, engine: Engine) -> Iterable[str]:
        return engine.route_names()


# A story's id: "s" and 20 hex digits, or 16 for stories begun before ids carried their time
# (watchers.stories.index.story_id_for). Checked here so a mistyped id is told apart from one
# that is well formed but unknown.
_STORY_ID = re.compile(r"s[0-9a-f]{16}(?:[0-9a-f]{4})?")


class StoryId(app_commands.Transformer[Any]):
    """A story's id as alerts, /article and /search show it (``s`` and 20 hex digits, or 16
    for older stories); a malformed one is an OptionError naming it."""

    @property
    def min_value(self) -> int:
        return 1  # characters, for a string option

    @property
    def max_value(self) -> int:
        return 64

    async def transform(self, interaction: discord.Interaction[Any], value: str, /) -> str:
        return parse_story_id(value)


def unquoted(value: str) -> str:
    """An id as typed: trimmed, and without the backticks it is copied with from a result
    (shown as code); ``value`` itself when nothing else is left."""
    return value.strip().strip("`").strip() or value


def parse_story_id(value: str) -> str:
    """``value`` as a story id (trimmed, any backticks copied with it dropped, lower case), or
    an OptionError naming it."""
    wanted = unquoted(value).lower()
    if not _STORY_ID.fullmatch(wanted):
        raise OptionError(f"id: {truncate(value.strip(), 64)!r} is not a story id (one looks "
                          "like s692e8c1f0123456789ab; alerts, /article and /search show them)")
    return wanted


_SUGGESTED = ("10m", "30m", "1h", "2h", "6h", "12h", "1d", "7d")


class Duration(app_commands.Transformer[Any]):
    """A duration such as ``30m``, ``2h`` or ``1d``; ``option`` names it in errors."""

    def __init__(self, option: str) -> None:
        self.option = option

    @property
    def min_value(self) -> int:
        return 1  # characters, for a string option

    @property
    def max_value(self) -> int:
        return 20  # no sensible duration is longer

    async def transform(self, interaction: discord.Interaction[Any], value: str, /
                        ) -> timedelta:
        return parse_option_duration(value, self.option)

    async def autocomplete(  # type: ignore[override]  # see _Named.autocomplete
            self, interaction: discord.Interaction[Any], value: int | float | str, /
    ) -> list[app_commands.Choice[str]]:
        typed = str(value).strip()
        offered = [d for d in _SUGGESTED if d.startswith(typed.lower())]
        try:  # what was typed, once it names a unit ("90m"); a bare number would mean seconds
            # (as typed: "3M" lower-cased was offered as "3m", minutes, the very misreading
            # the parser refuses; "3M" is no duration, and none is offered)
            own = format_duration(parse_duration(typed)) if typed[-1:].isalpha() else None
        except ValueError:
            own = None
        if own and own not in offered:
            offered.insert(0, own)
        return [app_commands.Choice(name=d, value=d) for d in offered][:25]


def parse_option_duration(value: str, option: str) -> timedelta:
    """``value`` as a duration, or an OptionError naming ``option``."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise OptionError(f"{option}: {exc}") from None
