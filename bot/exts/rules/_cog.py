"""The rules cogs: /rules list|test|preview for anyone, /rules add|remove, /mute and /unmute
for admins.

Every command is scoped to the server it runs in (``interaction.guild_id``): it sees and names
the rules every server shares (the config file's, marked global) and the server's own, never
another server's.

A server's rule posts to a channel picked with Discord's channel picker (default: the channel
the command runs in), which becomes a route of that server. Before anything is stored the
channel must be one of this server's, of a kind alerts can go to, and one the bot may post in;
the id is looked up in the bot's own cache of the server, never taken from the interaction's
resolved data, so a forged id of another server's channel is refused like an unknown one."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import replace
from datetime import timedelta
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.embeds import (
    LIMITS,
    alert_message,
    code_text,
    escape,
    fit_embed,
    rule_test_embed,
    rules_embed,
    truncate,
)
from bot.interactions import (
    MAX_ID_LENGTH,
    Duration,
    NewswatchCog,
    OptionError,
    RuleName,
    answer,
    in_time,
    reply,
    unquoted,
)
from watchers.config import RouteConfig, RuleConfig, Severity, format_duration, route_settings
from watchers.delivery import Alert, StoryView
from watchers.engine import Engine
from watchers.errors import NewswatchError
from watchers.models import Article, Match
from watchers.rules import RegexBudget, match_query, parse
from watchers.templates import MAX_TEMPLATE_LENGTH

# Seconds a preview's phrases of every window may take on its article (a lookup's budget).
PREVIEW_PHRASE_SECONDS = 5.0

#: What a rule may post to: Discord's picker offers only these.
POSTABLE_TYPES = (discord.ChannelType.text, discord.ChannelType.news, discord.ChannelType.forum,
                  discord.ChannelType.public_thread, discord.ChannelType.private_thread,
                  discord.ChannelType.news_thread)


class Destination(app_commands.Transformer):
    """A channel option offering the channel kinds alerts can go to; yields the picked id
    (checked against the server by :func:`postable_channel`, not trusted as resolved)."""

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.channel

    @property
    def channel_types(self) -> list[discord.ChannelType]:
        return list(POSTABLE_TYPES)

    async def transform(self, interaction: discord.Interaction[Any], value: Any, /) -> int:
        # an AppCommandChannel/AppCommandThread, or a bare Object when Discord sent no data
        return int(value.id)


Postable = discord.TextChannel | discord.ForumChannel | discord.Thread


def postable_channel(guild: discord.Guild, channel_id: int,
                     member: discord.Member | None = None) -> Postable:
    """The channel of ``guild`` a rule may post to, or NewswatchError naming what is wrong:
    not this server's channel, a kind that takes no alerts, or the permissions the bot lacks
    there (View Channel, Send Messages — in a thread, Send Messages in Threads; in a forum,
    also Create Public Threads — and Embed Links).

    With ``member`` (who picked it), it must also be a channel they may post in: managing
    newswatch (the admin role) does not let them have the bot post, with a template of their
    own words, where they may not. One they cannot see is refused as unknown, unnamed."""
    channel = guild.get_channel_or_thread(channel_id)
    theirs = _permissions(channel, member) if member is not None else None
    if channel is None or (theirs is not None and not theirs.view_channel):
        raise NewswatchError(f"Channel {channel_id} is not a channel of this server that you "
                             "and I can see; pick one of this server's channels")
    if not isinstance(channel, Postable) or channel.type not in POSTABLE_TYPES:
        raise NewswatchError(f"#{channel.name} is a {channel.type.name} channel; pick a text, "
                             "announcement, forum or thread channel")
    me = guild.me
    if me is None:
        raise NewswatchError("I cannot check my permissions in this server yet; try again in "
                             "a minute")
    perms = _permissions(channel, me)
    if perms is None:
        raise NewswatchError(f"I cannot see the channel #{channel.name} belongs to; pick "
                             "another channel")
    send = _send_permission(channel, perms)
    needed: list[tuple[bool, str]] = [(perms.view_channel, "View Channel"), send]
    if isinstance(channel, discord.ForumChannel):
        needed.append((perms.create_public_threads, "Create Public Threads"))
    if send[0]:  # without the send permission Discord denies Embed Links implicitly
        needed.append((perms.embed_links, "Embed Links"))
    missing = [name for ok, name in needed if not ok]
    if missing:
        raise NewswatchError(f"I cannot post in #{channel.name}: missing permission "
                             f"{', '.join(missing)}; grant it there or pick another channel")
    if theirs is not None and not (their_send := _send_permission(channel, theirs))[0]:
        raise NewswatchError(f"You cannot post in #{channel.name} (missing permission "
                             f"{their_send[1]}); pick a channel you may post in")
    return channel


def _permissions(channel: object, who: discord.Member) -> discord.Permissions | None:
    """``who``'s permissions in ``channel`` (None: not a channel alerts can go to, or a thread
    whose parent channel is not cached)."""
    if not isinstance(channel, Postable):
        return None
    try:
        return channel.permissions_for(who)
    except discord.ClientException:
        return None


def _send_permission(channel: Postable, perms: discord.Permissions) -> tuple[bool, str]:
    """Whether ``perms`` let one post in ``channel``, and the permission's name."""
    if isinstance(channel, discord.Thread):
        return perms.send_messages_in_threads, "Send Messages in Threads"
    return perms.send_messages, "Send Messages"


class RulesCog(NewswatchCog, commands.GroupCog, group_name="rules",
               group_description="Alert rules."):
    """List, try, add and remove alert rules."""

    admin_commands = frozenset({"add", "remove"})
    lookup_commands = frozenset({"test", "preview"})

    @app_commands.command(name="list")
    async def list_(self, interaction: discord.Interaction[Any]) -> None:
        """Every rule with its query, route and state."""
        engine = self.engine
        views = [replace(v, rule=v.rule.model_copy(
                    update={"channel": engine.route_label(v.rule.channel)}))
                 for v in await in_time(interaction, engine.rules(guild=interaction.guild_id))]
        embed = rules_embed(views)
        shared = [v.rule.name for v in views if v.is_global]
        if interaction.guild_id is not None and shared:
            # (after the count of rules left out, which it kept replacing)
            left = f"{embed.footer.text} · " if embed.footer.text else ""
            embed.set_footer(text=truncate(f"{left}Global (every server, from the config "
                                           "file): " + ", ".join(shared), LIMITS["footer"]))
        await reply(interaction, embed=fit_embed(embed))

    @app_commands.command(name="test")
    @app_commands.describe(query="a query in the rule language")
    async def test(self, interaction: discord.Interaction[Any],
                   query: app_commands.Range[str, 1, 500]) -> None:
        """How many stored articles from the last 7 days a query would match."""
        parse(query)  # a bad query answers at once, before deferring
        await interaction.response.defer(thinking=True)
        embed = rule_test_embed(await self.engine.test_rule(query, guild=interaction.guild_id))
        await interaction.followup.send(embed=embed)

    @app_commands.command(name="add")
    @app_commands.describe(name="a short name (letters, digits, . _ -)", query="the rule's query",
                           channel="where its alerts go (default: this channel)",
                           severity="how loud the alert looks",
                           template="the alert's format, e.g. '{headline} · {source}' "
                                    "(see /rules preview)",
                           template_style="embed: the format fills the embed; text: plain "
                                          "message")
    async def add(self, interaction: discord.Interaction[Any],
                  name: app_commands.Range[str, 1, 64], query: app_commands.Range[str, 1, 500],
                  channel: app_commands.Transform[int, Destination] | None = None,
                  severity: Severity = "medium",
                  template: app_commands.Range[str, 1, MAX_TEMPLATE_LENGTH] | None = None,
                  template_style: Literal["embed", "text"] = "embed") -> None:
        """Add or replace a rule; it applies from the next poll."""
        guild = interaction.guild
        if guild is None:
            raise NewswatchError("Rules post to a server's channels: run /rules add in a server")
        parse(query)  # a bad query is refused before the channel becomes a route
        picked = postable_channel(guild, channel if channel is not None
                                  else interaction.channel_id or 0, _member(interaction))
        engine = self.engine
        user = str(interaction.user.id)
        fields: dict[str, Any] = {"name": name, "query": query, "severity": severity,
                                  "template_style": template_style}
        if template is not None:
            # a slash option is one line; "\n" typed in it stands for a line break
            fields["template"] = template.replace("\\n", "\n")
        # the channel's route is made with the rule, not before: a refused rule leaves none
        rule, before = await engine.replace_rule(fields, created_by=user, guild=guild.id,
                                                 picked=(picked.id, picked.name))
        shape = (f" · {rule.template_style} template (`/rules preview {rule.name}`)"
                 if rule.template is not None or rule.template_style != "embed" else "")
        # Replacing is what /rules add does to a name in use; the reply says what went.
        was = (f" (replaced `{code_text(truncate(before.query, 200))}` → "
               f"`{code_text(engine.route_label(before.channel))}` · {before.severity})"
               if before is not None else "")
        await interaction.response.send_message(
            f"Rule **{escape(rule.name)}** → <#{picked.id}> saved{shape}: "
            f"`{code_text(truncate(rule.query, 500))}`{was}")

    @app_commands.command(name="preview")
    @app_commands.describe(name="the rule", article="a stored article's id (default: the newest "
                                                    "the rule matched)")
    async def preview(self, interaction: discord.Interaction[Any],
                      name: app_commands.Transform[str, RuleName],
                      article: app_commands.Range[str, 1, MAX_ID_LENGTH] | None = None) -> None:
        """Show the message a rule would post for a stored article (only to you)."""
        engine = self.engine
        guild = interaction.guild_id
        try:
            rule = engine.rule_of(name, guild)  # in another case too, as /mute takes it
        except NewswatchError:
            known = ", ".join(engine.rule_names(guild)[:20]) or "none"
            raise NewswatchError(f"No rule named {name[:64]!r}; rules: {known}") from None
        # The article's evidence is found for the preview (a long article takes a while): a
        # slow one is deferred, privately, rather than left past Discord's three seconds.
        art, match = await in_time(interaction, self._preview_match(rule, article, guild),
                                   ephemeral=True)
        note = ("" if match is not None else
                f"Rule **{escape(rule.name)}** does not match this article; as if it did:")
        record = (await engine.stories_of([art.id], guild=guild)).get(art.id)
        story = None if record is None else StoryView(
            id=record.id, headline=record.headline, first_seen=record.first_seen,
            last_seen=record.last_seen, outlets=record.outlets, articles=record.articles,
            updated_at=record.updated_at)
        alert = Alert(id=0, route=rule.channel, nonce="preview", attempt=0, article=art,
                      matches=(match,) if match is not None else (), rules=(rule,),
                      story=story)
        # The message is rendered with the note's room kept, as the rule would post it beside
        # it: a full message cut after the note was put above it lost the end of its last
        # link ("…[Quiet day at the market a…", a raw "[" with no link).
        kwargs = alert_message(alert, route=engine.route(rule.channel),
                               reserve=len(note) + 1 if note else 0, warn=False)
        # the preview pings nobody, whatever the rule would
        content = "\n".join(x for x in (note, kwargs["content"]) if x) or None
        embed = kwargs["embed"]
        await reply(interaction, content=content,
                    embed=embed if embed is not None else discord.utils.MISSING,
                    allowed_mentions=discord.AllowedMentions.none(), ephemeral=True)

    async def _preview_match(self, rule: RuleConfig, article: str | None, guild: int | None
                             ) -> tuple[Article, Match | None]:
        """The article a preview shows (the rule's newest when none is named) and the rule's
        match on it with its evidence (None: the rule does not match it)."""
        engine = self.engine
        if article is None:
            newest = await engine.recent(rule=rule.name, limit=1, guild=guild)
            if not newest:
                raise NewswatchError(f"Rule {rule.name!r} has matched no stored article yet; "
                                     "give an article id (see /search)")
            art, matches = newest[0]
        else:
            found = await engine.article(unquoted(article), guild=guild)
            if found is None:
                raise NewswatchError(f"No stored article with id {article[:80]!r} (see /search)")
            art, matches = found
        match = next((m for m in matches if m.rule == rule.name), None)
        if match is None:
            # In the lookup threads, not on the event loop: a long article takes seconds. Its
            # phrases of every window (slop, a prefix or fuzzy word) get a lookup's time.
            phrases = RegexBudget(PREVIEW_PHRASE_SECONDS)
            match = await asyncio.get_running_loop().run_in_executor(
                engine.lookup_executor, functools.partial(
                    match_query, rule.query, art, rule.threshold or engine.config.threshold,
                    engine.config.aliases, name=rule.name, budget=RegexBudget(),
                    phrase_budget=phrases))
            if match is None and phrases.exhausted:
                raise NewswatchError(
                    f"Rule {rule.name!r} ran out of time ({PREVIEW_PHRASE_SECONDS:g} s) on this "
                    "article: a phrase with slop or a prefix or fuzzy word looks at every "
                    "window of a long article; as a rule it counts as not matching")
        return art, match

    @app_commands.command(name="remove")
    @app_commands.describe(name="the rule to remove")
    async def remove(self, interaction: discord.Interaction[Any],
                     name: app_commands.Transform[str, RuleName]) -> None:
        """Remove a rule added in Discord."""
        shown = _rule_name(self.engine, name, interaction.guild_id)
        await answer(interaction, await self.engine.remove_rule(name, guild=interaction.guild_id),
                     f"Rule **{escape(shown)}** removed.",
                     f"No rule named `{code_text(name[:64])}`.")


class MuteCog(NewswatchCog):
    """/mute and /unmute: a muted rule records matches but posts nothing until it expires."""

    admin_commands = True

    @app_commands.command(name="mute")
    @app_commands.describe(rule="the rule to mute", duration="e.g. 30m, 2h, 1d")
    async def mute(self, interaction: discord.Interaction[Any],
                   rule: app_commands.Transform[str, RuleName],
                   duration: app_commands.Transform[timedelta, Duration("duration")]) -> None:
        """Silence a rule for a while; matches are still recorded."""
        await self._may_silence(interaction, rule)
        until = await self.engine.mute(rule, duration, guild=interaction.guild_id)
        shown = _rule_name(self.engine, rule, interaction.guild_id)
        await interaction.response.send_message(
            f"Rule **{escape(shown)}** muted until <t:{int(until.timestamp())}:f>.")

    @app_commands.command(name="unmute")
    @app_commands.describe(rule="the rule to unmute")
    async def unmute(self, interaction: discord.Interaction[Any],
                     rule: app_commands.Transform[str, RuleName]) -> None:
        """Let a muted rule post alerts again."""
        await self._may_silence(interaction, rule)
        was = await self.engine.unmute(rule, guild=interaction.guild_id)
        shown = escape(_rule_name(self.engine, rule, interaction.guild_id))
        text = (f"Rule **{shown}** unmuted." if was else f"Rule **{shown}** was not muted.")
        await interaction.response.send_message(text)


    async def _may_silence(self, interaction: discord.Interaction[Any], name: str) -> None:
        """A config file's rule is muted for every server, so only where it posts: in the
        server that holds its channel, or — when that cannot be told (a webhook) — in a
        server that holds one of the config file's channels. A server's own rule is its own."""
        guild = interaction.guild_id
        try:
            # The rule the engine acts on: "/mute TROOPS" muted the config file's troops
            # from another server, where the name as typed matched no rule here.
            rule = self.engine.rule_of(name, guild)
        except NewswatchError:
            return  # unknown: the engine says so
        if rule.guild_id is not None or guild is None:
            return  # this server's own
        config = self.engine.config
        here = _guild_of(interaction.client, config.route(rule.channel))
        if here == guild:
            return
        if here is None and guild in {
                g for n in config.channels if (g := _guild_of(interaction.client,
                                                             config.route(n))) is not None}:
            return
        raise NewswatchError(
            f"Rule {name[:64]!r} is the config file's and posts in another server's channel; "
            "it can be muted only where it posts (or left out of the config file)")


def _member(interaction: discord.Interaction[Any]) -> discord.Member | None:
    user = interaction.user
    return user if isinstance(user, discord.Member) else None


def _guild_of(client: discord.Client, route: RouteConfig | None) -> int | None:
    """The server whose channel a route posts in, when the bot can tell (a channel it sees;
    not a webhook's)."""
    target = None if route is None else route.target
    if isinstance(target, str) and target.isdigit():
        target = int(target)
    if not isinstance(target, int):
        return None
    channel = client.get_channel(target)
    guild = getattr(channel, "guild", None)
    return None if guild is None else int(guild.id)


_CLEAR = frozenset({"off", "none", "default", "-"})


def _settings_text(route: RouteConfig) -> str:
    """A route's settings that differ from the defaults, on one line ("defaults" if none)."""
    default = RouteConfig(target=route.target)
    shown = []
    for key in ("stories", "mode", "digest_every", "digest_at", "timezone", "quiet_hours",
                "break_through", "max_per_hour", "template_style", "template"):
        value = getattr(route, key)
        if value == getattr(default, key):
            continue
        if isinstance(value, timedelta):
            value = format_duration(value)
        elif isinstance(value, list):
            value = ", ".join(value)
        elif key == "template":
            value = truncate(str(value), 60)
        shown.append(f"{key} {value}")
    return escape(" · ".join(shown)) if shown else "defaults"


class ChannelsCog(NewswatchCog, commands.GroupCog, group_name="channels",
                  group_description="The channels this server's alerts go to."):
    """/channels list for anyone, /channels set for admins: a picked channel is a route of its
    server, with the settings a ``[channels.NAME]`` table has in the config file."""

    admin_commands = frozenset({"set"})

    @app_commands.command(name="list")
    async def list_(self, interaction: discord.Interaction[Any]) -> None:
        """The channels this server's rules post to, with their settings."""
        routes = self.engine.server_routes(interaction.guild_id or 0)
        if not routes:
            await interaction.response.send_message(
                "No channel of this server was picked from Discord yet; `/rules add` or "
                "`/channels set` picks one (the config file's routes are the operator's).",
                ephemeral=True)
            return
        lines = [f"**#{escape(r.name)}** <#{r.channel_id}> — {_settings_text(r.route)}"
                 for r in sorted(routes.values(), key=lambda r: r.name)]
        await interaction.response.send_message(
            embed=fit_embed(discord.Embed(title="Alert channels",
                                          description=truncate("\n".join(lines),
                                                               LIMITS["description"]))))

    @app_commands.command(name="set")
    @app_commands.describe(
        channel="the channel (default: this one)",
        stories="a story's later articles: edit its message, reply in a thread, or post anew",
        mode="immediate, or collect alerts into a digest",
        digest_every="digest mode: how often, e.g. 1h ('off' to clear)",
        digest_at="digest mode: times of day, e.g. 08:00,18:00 ('off' to clear)",
        timezone="for digest times and quiet hours, e.g. Europe/Kyiv ('off' to clear)",
        quiet_hours="e.g. 22:00-07:00: alerts below break_through wait ('off' to clear)",
        break_through="the severity that still posts during quiet hours or past the cap",
        max_per_hour="at most this many alerts an hour, the rest in a digest (0: no cap)",
        template="the alerts' format unless their rule has one ('off' to clear)",
        template_style="embed: the format fills the embed; text: plain message",
        reset="put every setting back to its default first")
    async def set_(self, interaction: discord.Interaction[Any],
                   channel: app_commands.Transform[int, Destination] | None = None,
                   stories: Literal["edit", "thread", "off"] | None = None,
                   mode: Literal["immediate", "digest"] | None = None,
                   digest_every: app_commands.Range[str, 1, 20] | None = None,
                   digest_at: app_commands.Range[str, 1, 200] | None = None,
                   timezone: app_commands.Range[str, 1, 64] | None = None,
                   quiet_hours: app_commands.Range[str, 1, 20] | None = None,
                   break_through: Severity | None = None,
                   max_per_hour: app_commands.Range[int, 0, 10_000] | None = None,
                   template: app_commands.Range[str, 1, MAX_TEMPLATE_LENGTH] | None = None,
                   template_style: Literal["embed", "text"] | None = None,
                   reset: bool = False) -> None:
        """Set how and when a channel of this server gets its alerts."""
        guild = interaction.guild
        if guild is None:
            raise NewswatchError("Channels belong to a server: run /channels set in a server")
        picked = postable_channel(guild, channel if channel is not None
                                  else interaction.channel_id or 0, _member(interaction))
        if stories == "thread" and isinstance(picked, discord.Thread):
            # Discord starts no thread inside a thread: each story's update asked for one,
            # was refused (50024) and fell back to an edit.
            raise OptionError(f"stories: <#{picked.id}> is a thread, and a thread holds no "
                              "threads of its own; choose edit (the alert's message is "
                              "edited) or off")
        engine = self.engine
        had = {r.channel_id for r in engine.server_routes(guild.id).values()}
        changes: dict[str, Any] = {}
        if reset:
            changes = dict.fromkeys(RouteConfig.model_fields.keys() - {"target"})
        texts = {"digest_every": digest_every, "quiet_hours": quiet_hours, "timezone": timezone,
                 "template": None if template is None else template.replace("\\n", "\n")}
        for name, value in texts.items():
            if value is not None:
                changes[name] = None if value.strip().lower() in _CLEAR else value.strip()
        if digest_at is not None:
            times = [t.strip() for t in digest_at.split(",") if t.strip()]
            if not times and digest_at.strip().lower() not in _CLEAR:
                raise OptionError(f"digest_at: {digest_at.strip()[:40]!r} names no time of day; "
                                  "give times such as 08:00,18:00, or 'off' to clear")
            changes["digest_at"] = [] if digest_at.strip().lower() in _CLEAR else times
        if max_per_hour is not None:
            changes["max_per_hour"] = max_per_hour or None
        for name, chosen in (("stories", stories), ("mode", mode),
                             ("break_through", break_through),
                             ("template_style", template_style)):
            if chosen is not None:
                changes[name] = chosen
        # A mode leaves out the settings it does not use (unless given with it, which is then
        # refused by name): they would do nothing. Quiet hours hold a digest route's digests.
        if mode == "immediate":
            changes.setdefault("digest_every", None)
            changes.setdefault("digest_at", [])
        elif mode == "digest":
            changes.setdefault("max_per_hour", None)
        if picked.id not in had:
            # Checked before the channel becomes a route: a refused setting left it listed.
            route_settings({}, changes, picked.id)
        key = await engine.add_server_route(guild.id, picked.id, picked.name,
                                            created_by=str(interaction.user.id))
        if not changes:
            route = engine.server_routes(guild.id)[key].route
            await interaction.response.send_message(
                f"<#{picked.id}>: {_settings_text(route)}", ephemeral=True)
            return
        updated = await engine.configure_server_route(guild.id, key, changes)
        await interaction.response.send_message(
            f"<#{picked.id}> now: {_settings_text(updated.route)}")


def _rule_name(engine: Engine, name: str, guild: int | None) -> str:
    """The rule's name as it is spelt (rules are named without case: "Rule **MINE** muted"
    named a rule called "mine"), or ``name`` as typed when no running rule has it."""
    try:
        return engine.rule_of(name, guild).name
    except NewswatchError:
        return name
