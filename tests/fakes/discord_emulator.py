"""A Discord API emulator (REST + gateway) that the real discord.py 2.7 client can talk to.

Everything binds to 127.0.0.1 on a free port. Nothing here mocks discord.py: the client logs in,
opens the gateway websocket, receives READY / GUILD_CREATE, syncs slash commands, answers
interactions and posts messages exactly as it would against discord.com.

Quick start
-----------
::

    async with DiscordEmulator() as emu, emu.patch_discord():
        bot = commands.Bot(command_prefix="!", intents=discord.Intents.default(),
                           guild_ready_timeout=0.05)
        async with run_client(bot, emu):          # starts the bot, waits for on_ready
            await bot.tree.sync(guild=discord.Object(emu.guild.id))
            resp = await emu.send_interaction("search", {"query": "troops"})
            msg = await resp.final_message(timeout=5)
            assert "troops" in msg.content and not msg.ephemeral
        assert emu.validate_all() == []

Public API (see the docstrings for details)
-------------------------------------------
World (configuration, plain dataclasses): :class:`UserSpec`, :class:`RoleSpec`,
:class:`ChannelSpec`, :class:`MemberSpec`, :class:`GuildSpec`, :class:`WebhookSpec`,
:func:`default_guild`, :func:`forum_tag`, :data:`Permissions` constants.

:class:`DiscordEmulator`
    ``start()`` / ``close()`` / ``async with``; ``api_base``, ``gateway_url``, ``base_url``,
    ``port``,
    ``token``, ``bot_user``, ``application_id``, ``guilds``, ``guild`` (first guild), ``admin`` and
    ``member`` (members of the first guild), ``channel(name_or_id)``, ``webhooks``,
    ``add_webhook()``, ``patch_discord()``.

    Recording: ``requests``, ``requests_for(route=..., method=..., path=...)``,
    ``last_request()``, ``clear_requests()``, ``unhandled``, ``messages(channel_id)``,
    ``all_messages()``, ``get_message(id)``, ``wait_for_message(channel_id, predicate, timeout)``,
    ``commands(guild_id)``, ``validate_all()``, ``threads(parent_id)``.

    Threads: ``add_thread(parent_id, name)`` (a thread a member started, usable as a target).

    Moderation: ``delete_message(channel_id, message_id)``, ``delete_channel(id)`` (a thread
    or a channel), as someone other than the bot would.

    Gateway: ``wait_until_identified()``, ``identify_payloads``, ``dispatch(event, data)``,
    ``request_reconnect()``, ``drop_gateway()``.

    Interactions: ``send_interaction()``, ``send_autocomplete()``, ``click_button()``,
    ``select_menu()`` -> :class:`InteractionHandle` (``callback()``, ``final_message()``,
    ``wait_followups()``, ``choices()``, ``original``, ``followups``).

    Faults: ``inject(pattern, fault, times=1)``, ``clear_faults()``, ``pending_faults``, with
    :class:`Fault` (``Fault.rate_limited()``, ``Fault.server_error()``, ``Fault.forbidden()``,
    ``Fault.not_found()``, ``Fault.invalid_form()``, ``Fault.reset_after_receive()``,
    ``Fault.slow(seconds, after_processing=False)``) or the string shortcuts listed in
    :func:`Fault.parse` (``"429"``, ``"429_global"``, ``500``, ``"403"``, ``"403_access"``,
    ``"404"``, ``"404_webhook"``, ``"400"``, ``"reset_after_receive"``, ``"slow:0.5"``).

Behaviour worth knowing: bot-authenticated routes need ``Authorization: Bot ...`` (and the
configured ``token`` if any); replies use ``Content-Type: application/json`` exactly; Discord's
own limits (2000 chars of content, 6000 of embed text, no empty messages) are always enforced
with 400 50035 / 50006; a thread started from a message (``POST .../messages/{id}/threads``,
type 11, needs CREATE_PUBLIC_THREADS) takes the message's id, can be posted to like a channel,
and a second one on the same message is refused with 400 160004; a forum channel (type 15,
``available_tags`` from :func:`forum_tag`, ``flags`` 1 << 4 to require a tag) takes no message
(400 50008) but posts (``POST /channels/{forum}/threads`` with ``message`` and at most 5 of its
``applied_tags``; a moderated tag needs MANAGE_THREADS), whose starter message takes the post's
id and lives in the post; a webhook in a forum must name the post (``thread_name``, else 400
220001), and its messages in a thread are found only with ``?thread_id=``;
``GET /guilds/{g}/threads/active`` lists every thread of the guild, and GUILD_CREATE carries
them; posted messages are echoed
as MESSAGE_CREATE on the gateway to clients that identified with the GUILD_MESSAGES intent;
the first follow-up after a "thinking" defer fills in the deferred message (as on Discord);
files uploaded with a message (multipart ``files[n]`` parts named by its ``attachments``) become
its attachments, their bytes in ``EmuMessage.files`` by attachment id, and each request's parts
are recorded in ``RecordedRequest.parts`` for ``validate_all()`` to check;
unknown routes answer 404 and are listed in ``emu.unhandled``.

Helpers: :func:`patched_discord_urls` (context manager), :func:`run_client` (async context
manager that runs a discord.py client against the emulator until on_ready and closes it cleanly).
"""

# ruff: noqa: ASYNC109 - awaitables take timeout= on purpose (test API)
from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import email.parser
import email.policy
import fnmatch
import itertools
import json
import mimetypes
import re
import secrets
import time as _time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import WSMsgType, web

__all__ = [
    "ChannelSpec",
    "DiscordEmulator",
    "EmuMessage",
    "Fault",
    "GuildSpec",
    "InteractionHandle",
    "MemberSpec",
    "Permissions",
    "RecordedRequest",
    "RoleSpec",
    "UserSpec",
    "WebhookSpec",
    "default_guild",
    "forum_tag",
    "patched_discord_urls",
    "run_client",
]

DISCORD_EPOCH_MS = 1420070400000
# Channel types a message cannot be posted to: voice, category, stage, forum, media.
_NON_TEXT_TYPES = frozenset({2, 4, 13, 15, 16})
_REQUIRE_TAG = 1 << 4  # a forum's flag: every post needs a tag
API_PREFIX = "/api/v10"
JSON_HEADERS = {"Content-Type": "application/json"}  # exactly this: discord.py compares it


# --------------------------------------------------------------------------------------------
# Permissions and snowflakes
# --------------------------------------------------------------------------------------------


class Permissions:
    """Permission bit values (https://discord.com/developers/docs/topics/permissions)."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CHANGE_NICKNAME = 1 << 26
    MANAGE_ROLES = 1 << 28
    MANAGE_WEBHOOKS = 1 << 29
    USE_APPLICATION_COMMANDS = 1 << 31
    MANAGE_THREADS = 1 << 34
    CREATE_PUBLIC_THREADS = 1 << 35
    SEND_MESSAGES_IN_THREADS = 1 << 38
    ALL = (1 << 51) - 1

    #: What @everyone gets in a freshly created guild (roughly).
    EVERYONE_DEFAULT = (
        CREATE_INSTANT_INVITE
        | ADD_REACTIONS
        | VIEW_CHANNEL
        | SEND_MESSAGES
        | EMBED_LINKS
        | ATTACH_FILES
        | READ_MESSAGE_HISTORY
        | MENTION_EVERYONE
        | USE_EXTERNAL_EMOJIS
        | CHANGE_NICKNAME
        | USE_APPLICATION_COMMANDS
        | CREATE_PUBLIC_THREADS
        | SEND_MESSAGES_IN_THREADS
    )


class _Snowflakes:
    """Monotonic snowflake generator (timestamp << 22 | worker << 17 | increment)."""

    def __init__(self, worker: int = 1) -> None:
        self._worker = worker & 0x1F
        self._counter = itertools.count()
        self._last = 0

    def __call__(self) -> int:
        ms = int(_time.time() * 1000) - DISCORD_EPOCH_MS
        value = (ms << 22) | (self._worker << 17) | (next(self._counter) & 0xFFF)
        if value <= self._last:
            value = self._last + 1
        self._last = value
        return value


def _iso(ts: float | None = None) -> str:
    moment = _dt.datetime.fromtimestamp(_time.time() if ts is None else ts, tz=_dt.UTC)
    return moment.isoformat()


# --------------------------------------------------------------------------------------------
# World configuration
# --------------------------------------------------------------------------------------------


@dataclass
class UserSpec:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False
    avatar: str | None = None

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "username": self.username,
            "global_name": self.global_name,
            "discriminator": "0",
            "avatar": self.avatar,
            "avatar_decoration_data": None,
            "banner": None,
            "accent_color": None,
            "public_flags": 0,
            "flags": 0,
            "primary_guild": None,
            "collectibles": None,
            "clan": None,
        }
        if self.bot:
            data["bot"] = True
        return data


@dataclass
class RoleSpec:
    id: int
    name: str
    permissions: int = 0
    position: int = 0
    color: int = 0
    hoist: bool = False
    managed: bool = False
    mentionable: bool = False
    bot_id: int | None = None  # managed bot role

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "description": None,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": self.color,
            "colors": {
                "primary_color": self.color, "secondary_color": None, "tertiary_color": None
            },
            "hoist": self.hoist,
            "managed": self.managed,
            "mentionable": self.mentionable,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }
        if self.bot_id is not None:
            data["tags"] = {"bot_id": str(self.bot_id)}
        return data


@dataclass
class ChannelSpec:
    id: int
    name: str
    type: int = 0  # 0 = GUILD_TEXT, 5 = GUILD_ANNOUNCEMENT, 4 = GUILD_CATEGORY, 11 = thread
    position: int = 0
    topic: str | None = None
    parent_id: int | None = None
    nsfw: bool = False
    permission_overwrites: list[dict[str, Any]] = field(default_factory=list)
    guild_id: int | None = None  # filled in by GuildSpec
    owner_id: int | None = None  # threads: who started it
    auto_archive_duration: int = 1440  # threads
    message_count: int = 0  # threads: messages posted in it
    # forum (15) and media (16) channels: the tags a post may carry (see :func:`forum_tag`)
    available_tags: list[dict[str, Any]] = field(default_factory=list)
    applied_tags: list[int] | None = None  # a forum post (thread): the tags it carries
    flags: int = 0  # a forum's 1 << 4: REQUIRE_TAG

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id) if self.guild_id is not None else None,
            "name": self.name,
            "position": self.position,
            "permission_overwrites": list(self.permission_overwrites),
            "parent_id": str(self.parent_id) if self.parent_id is not None else None,
            "flags": self.flags,
        }
        if self.type in (0, 5):
            data.update(
                topic=self.topic,
                nsfw=self.nsfw,
                last_message_id=None,
                rate_limit_per_user=0,
                default_auto_archive_duration=1440,
                default_thread_rate_limit_per_user=0,
            )
        if self.type in (15, 16):
            data.update(
                topic=self.topic,
                nsfw=self.nsfw,
                last_message_id=None,
                rate_limit_per_user=0,
                default_auto_archive_duration=1440,
                default_thread_rate_limit_per_user=0,
                available_tags=[forum_tag(int(t["id"]), t["name"], **{
                    k: v for k, v in t.items() if k not in ("id", "name")})
                    for t in self.available_tags],
                default_reaction_emoji=None,
                default_sort_order=None,
                default_forum_layout=0,
            )
        if self.applied_tags is not None:
            data["applied_tags"] = [str(t) for t in self.applied_tags]
        if self.type in (10, 11, 12):
            data.update(
                owner_id=str(self.owner_id) if self.owner_id is not None else None,
                last_message_id=None,
                rate_limit_per_user=0,
                message_count=self.message_count,
                member_count=1,
                total_message_sent=self.message_count,
                thread_metadata={
                    "archived": False, "archive_timestamp": _iso(), "locked": False,
                    "auto_archive_duration": self.auto_archive_duration,
                },
            )
        return data


def forum_tag(tag_id: int, name: str, *, moderated: bool = False,
              emoji_name: str | None = None, emoji_id: int | str | None = None
              ) -> dict[str, Any]:
    """A forum tag object, for :attr:`ChannelSpec.available_tags` of a forum channel."""
    return {"id": str(tag_id), "name": name, "moderated": moderated,
            "emoji_id": None if emoji_id is None else str(emoji_id), "emoji_name": emoji_name}


@dataclass
class MemberSpec:
    user: UserSpec
    roles: list[int] = field(default_factory=list)  # role ids, without @everyone
    nick: str | None = None
    joined_at: str = "2024-01-01T00:00:00+00:00"

    @property
    def id(self) -> int:
        return self.user.id

    def payload(self, *, with_user: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "roles": [str(r) for r in self.roles],
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
            "avatar_decoration_data": None,
        }
        if with_user:
            data["user"] = self.user.payload()
        return data


@dataclass
class GuildSpec:
    id: int
    name: str
    owner_id: int
    channels: list[ChannelSpec] = field(default_factory=list)
    # @everyone (id == guild id) is added if absent
    roles: list[RoleSpec] = field(default_factory=list)
    members: list[MemberSpec] = field(default_factory=list)  # the bot is added automatically

    def __post_init__(self) -> None:
        for ch in self.channels:
            ch.guild_id = self.id
        if not any(r.id == self.id for r in self.roles):
            self.roles.insert(0, RoleSpec(self.id, "@everyone", Permissions.EVERYONE_DEFAULT))

    @property
    def everyone(self) -> RoleSpec:
        return next(r for r in self.roles if r.id == self.id)

    def role(self, name_or_id: str | int) -> RoleSpec:
        for r in self.roles:
            if r.id == name_or_id or r.name == name_or_id:
                return r
        raise KeyError(f"no role {name_or_id!r} in guild {self.name}")

    def channel(self, name_or_id: str | int) -> ChannelSpec:
        for c in self.channels:
            if c.id == name_or_id or c.name == name_or_id:
                return c
        raise KeyError(f"no channel {name_or_id!r} in guild {self.name}")

    def get_member(self, user_id: int) -> MemberSpec | None:
        return next((m for m in self.members if m.user.id == user_id), None)

    def base_permissions(self, member: MemberSpec) -> int:
        if member.user.id == self.owner_id:
            return Permissions.ALL
        perms = self.everyone.permissions
        for r in self.roles:
            if r.id in member.roles:
                perms |= r.permissions
        if perms & Permissions.ADMINISTRATOR:
            return Permissions.ALL
        return perms

    def channel_permissions(self, member: MemberSpec, channel: ChannelSpec | None) -> int:
        perms = self.base_permissions(member)
        if perms == Permissions.ALL or channel is None:
            return perms
        allow = deny = 0
        for ow in channel.permission_overwrites:
            target = int(ow["id"])
            if ow.get("type", 0) == 0 and target == self.id:
                perms = (perms & ~int(ow.get("deny", 0))) | int(ow.get("allow", 0))
        for ow in channel.permission_overwrites:
            target = int(ow["id"])
            if ow.get("type", 0) == 0 and target != self.id and target in member.roles:
                allow |= int(ow.get("allow", 0))
                deny |= int(ow.get("deny", 0))
        perms = (perms & ~deny) | allow
        for ow in channel.permission_overwrites:
            if ow.get("type", 0) == 1 and int(ow["id"]) == member.user.id:
                perms = (perms & ~int(ow.get("deny", 0))) | int(ow.get("allow", 0))
        return perms


@dataclass
class WebhookSpec:
    id: int
    token: str
    channel_id: int
    name: str = "Captain Hook"
    guild_id: int | None = None
    avatar: str | None = None

    def payload(self, application_id: int | None = None) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": 1,
            "guild_id": str(self.guild_id) if self.guild_id is not None else None,
            "channel_id": str(self.channel_id),
            "name": self.name,
            "avatar": self.avatar,
            "token": self.token,
            "application_id": str(application_id) if application_id is not None else None,
        }

    @property
    def url(self) -> str:
        """The (discord.com) URL of the webhook, as a user would paste it."""
        return f"https://discord.com/api/webhooks/{self.id}/{self.token}"


# Default ids (stable, so tests can hard-code them if they want).
DEFAULT_BOT_ID = 1300000000000000001
DEFAULT_GUILD_ID = 1100000000000000001


def default_guild(guild_id: int = DEFAULT_GUILD_ID, name: str = "Newsroom") -> GuildSpec:
    """A guild with #general, #alerts, #ops, an "Admin" role (Manage Server) held by ``alice``,
    a plain member ``bob`` and an owner ``olivia``."""
    base = guild_id
    admin_role = RoleSpec(
        base + 100,
        "Admin",
        Permissions.MANAGE_GUILD | Permissions.MANAGE_MESSAGES | Permissions.MANAGE_WEBHOOKS,
        position=2,
        color=0xE67E22,
        hoist=True,
        mentionable=True,
    )
    reader_role = RoleSpec(base + 101, "Readers", 0, position=1, mentionable=True)
    admin = MemberSpec(UserSpec(1200000000000000001, "alice", "Alice Admin"), [admin_role.id])
    member = MemberSpec(UserSpec(1200000000000000002, "bob", "Bob Member"), [reader_role.id])
    owner = MemberSpec(UserSpec(1200000000000000003, "olivia", "Olivia Owner"), [])
    return GuildSpec(
        id=guild_id,
        name=name,
        owner_id=owner.user.id,
        channels=[
            ChannelSpec(base + 10, "general", position=0, topic="General chat"),
            ChannelSpec(base + 11, "alerts", position=1, topic="News alerts"),
            ChannelSpec(base + 12, "ops", position=2, topic="Bot operations"),
        ],
        roles=[admin_role, reader_role],
        members=[admin, member, owner],
    )


# --------------------------------------------------------------------------------------------
# Recorded requests, messages, faults
# --------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One HTTP request the emulator received."""

    method: str
    path: str  # without the /api/v10 prefix and query, e.g. "/channels/1/messages"
    full_path: str  # as received, with prefix and query
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes
    content_type: str | None
    json: Any = None  # JSON body, or the parsed payload_json of a multipart body
    form: dict[str, Any] = field(default_factory=dict)  # multipart fields (files as bytes)
    # multipart parts in order: {"name", "filename", "content_type", "size"} (see discord_spec)
    parts: list[dict[str, Any]] = field(default_factory=list)
    route: str | None = None  # path template, e.g. "/channels/{channel_id}/messages"
    params: dict[str, str] = field(default_factory=dict)  # path parameters
    time: float = field(default_factory=_time.monotonic)
    wall_time: float = field(default_factory=_time.time)
    status: int | None = None  # status answered (None: connection dropped / still running)
    fault: str | None = None  # name of the injected fault applied, if any
    response: Any = None  # JSON answered

    @property
    def body(self) -> Any:
        return self.json

    @property
    def key(self) -> str:
        return f"{self.method} {self.route or self.path}"

    def __repr__(self) -> str:
        return f"<RecordedRequest {self.method} {self.path} -> {self.status} fault={self.fault}>"


@dataclass
class EmuMessage:
    """A message that exists in the emulated Discord."""

    id: int
    channel_id: int
    guild_id: int | None
    author: dict[str, Any]
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # attachment id -> the bytes uploaded
    flags: int = 0
    allowed_mentions: dict[str, Any] | None = None
    nonce: str | int | None = None
    tts: bool = False
    type: int = 0
    webhook_id: int | None = None
    application_id: int | None = None
    interaction_id: int | None = None
    message_reference: dict[str, Any] | None = None
    source: str = "bot"  # "bot" | "webhook" | "interaction" | "followup" | "user"
    created_at: float = field(default_factory=_time.time)
    edited_at: float | None = None
    deleted: bool = False
    edits: list[dict[str, Any]] = field(default_factory=list)  # bodies of PATCHes, in order
    thread: ChannelSpec | None = None  # the thread started from this message, if any
    interaction_metadata: dict[str, Any] | None = None
    member: dict[str, Any] | None = None
    known_users: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False)

    EPHEMERAL = 1 << 6
    LOADING = 1 << 7
    SUPPRESS_EMBEDS = 1 << 2
    HAS_THREAD = 1 << 5

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & self.EPHEMERAL)

    @property
    def loading(self) -> bool:
        """A deferred ("is thinking...") response that has not been filled in yet."""
        return bool(self.flags & self.LOADING)

    @property
    def text(self) -> str:
        """Content plus all embed text, handy for ``"x" in msg.text`` assertions."""
        parts = [self.content]
        for e in self.embeds:
            parts += [e.get("title") or "", e.get("description") or ""]
            parts += [f"{f.get('name', '')} {f.get('value', '')}" for f in e.get("fields") or []]
            parts.append((e.get("footer") or {}).get("text") or "")
            parts.append((e.get("author") or {}).get("name") or "")
        return "\n".join(p for p in parts if p)

    def component(self, custom_id: str) -> dict[str, Any] | None:
        """The component (button, select) with ``custom_id`` on the message, as it is now."""
        found = [c for c in self._components() if c.get("custom_id") == custom_id]
        return found[0] if found else None

    def _components(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []

        def walk(items: list[dict[str, Any]]) -> None:
            for c in items:
                found.append(c)
                walk(c.get("components") or [])
                if isinstance(c.get("accessory"), dict):
                    walk([c["accessory"]])

        walk(self.components)
        return found

    @property
    def custom_ids(self) -> list[str]:
        """custom_ids of all components (buttons, selects) on the message."""
        return [c["custom_id"] for c in self._components() if "custom_id" in c]

    def pinged_user_ids(self) -> set[int]:
        """User ids that this message actually pings, honouring allowed_mentions."""
        ids = {int(x) for x in re.findall(r"<@!?(\d+)>", self.content)}
        am = self.allowed_mentions
        if am is None:
            return ids
        allowed = {int(x) for x in am.get("users") or []}
        if "users" in (am.get("parse") or []):
            return ids
        return ids & allowed

    def pinged_role_ids(self) -> set[int]:
        ids = {int(x) for x in re.findall(r"<@&(\d+)>", self.content)}
        am = self.allowed_mentions
        if am is None:
            return ids
        if "roles" in (am.get("parse") or []):
            return ids
        return ids & {int(x) for x in am.get("roles") or []}

    def pings_everyone(self) -> bool:
        if "@everyone" not in self.content and "@here" not in self.content:
            return False
        am = self.allowed_mentions
        return am is None or "everyone" in (am.get("parse") or [])

    def payload(self, *, gateway: bool = False) -> dict[str, Any]:
        """The Discord message object for this message."""
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "channel_id": str(self.channel_id),
            "author": dict(self.author),
            "content": self.content,
            "timestamp": _iso(self.created_at),
            "edited_timestamp": _iso(self.edited_at) if self.edited_at else None,
            "tts": self.tts,
            "mention_everyone": self.pings_everyone(),
            "mentions": [
                self.known_users.get(u) or {"id": str(u), "username": f"user{u}",
                                            "discriminator": "0", "avatar": None,
                                            "global_name": None}
                for u in sorted(self.pinged_user_ids())
            ],
            "mention_roles": [str(r) for r in sorted(self.pinged_role_ids())],
            "mention_channels": [],
            "attachments": list(self.attachments),
            "embeds": [dict(e) for e in self.embeds],
            "reactions": [],
            "pinned": False,
            "flags": self.flags,
            "components": list(self.components),
        }
        if self.nonce is not None:
            data["nonce"] = self.nonce
        if self.webhook_id is not None:
            data["webhook_id"] = str(self.webhook_id)
        if self.application_id is not None:
            data["application_id"] = str(self.application_id)
        if self.interaction_metadata is not None:
            data["interaction_metadata"] = self.interaction_metadata
        if self.message_reference is not None:
            data["message_reference"] = self.message_reference
        if self.thread is not None:
            data["thread"] = self.thread.payload()
        if gateway and self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
            if self.member is not None:
                data["member"] = self.member
        return data

    def __repr__(self) -> str:
        return (
            f"<EmuMessage id={self.id} channel={self.channel_id} source={self.source} "
            f"flags={self.flags} content={self.content[:40]!r} embeds={len(self.embeds)}>"
        )


@dataclass
class Fault:
    """An error (or misbehaviour) the emulator answers a request with instead of normal behaviour.

    Build with the classmethods or :meth:`parse` (strings / ints).
    """

    kind: str  # "status" | "reset_after_receive" | "slow"
    status: int = 0
    code: int = 0
    message: str = ""
    retry_after: float = 0.05
    is_global: bool = False
    errors: dict[str, Any] | None = None
    delay: float = 0.0
    after_processing: bool = False
    name: str = ""

    @classmethod
    def rate_limited(cls, retry_after: float = 0.05, *, is_global: bool = False) -> Fault:
        """429 with ``Via`` header and JSON ``retry_after`` (bucket, or ``global: true``)."""
        return cls(
            "status",
            429,
            0,
            "You are being rate limited.",
            retry_after=retry_after,
            is_global=is_global,
            name="429_global" if is_global else "429",
        )

    @classmethod
    def proxy_rate_limited(cls, retry_after: str) -> Fault:
        """429 from a proxy in front of Discord: an HTML page, ``Retry-After`` written as given
        (seconds, or an HTTP date)."""
        return cls("status", 429, 0, retry_after, name="429_proxy")

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        """500 / 502 / 504 (discord.py retries 500, 502, 504 and 524)."""
        texts = {
            500: "500: Internal Server Error", 502: "502: Bad Gateway", 504: "504: Gateway Timeout"
        }
        text = texts.get(status, f"{status}: Server Error")
        return cls("status", status, 0, text, name=str(status))

    @classmethod
    def forbidden(cls, code: int = 50013) -> Fault:
        """403: 50013 Missing Permissions or 50001 Missing Access."""
        texts = {50013: "Missing Permissions", 50001: "Missing Access"}
        return cls("status", 403, code, texts.get(code, "Forbidden"), name=f"403/{code}")

    @classmethod
    def not_found(cls, code: int = 10003) -> Fault:
        """404: 10003 Unknown Channel, 10015 Unknown Webhook, 10008 Unknown Message, 10062
        Unknown interaction."""
        texts = {
            10003: "Unknown Channel",
            10015: "Unknown Webhook",
            10008: "Unknown Message",
            10062: "Unknown interaction",
        }
        return cls("status", 404, code, texts.get(code, "Not Found"), name=f"404/{code}")

    @classmethod
    def invalid_form(cls, errors: dict[str, Any] | None = None) -> Fault:
        """400 50035 Invalid Form Body with an ``errors`` object."""
        errors = errors or {
            "content": {
                "_errors": [
                    {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}
                ]
            }
        }
        return cls("status", 400, 50035, "Invalid Form Body", errors=errors, name="400/50035")

    @classmethod
    def reset_after_receive(cls) -> Fault:
        """Process the request normally (e.g. create the message), then drop the connection
        without answering."""
        return cls("reset_after_receive", name="reset_after_receive")

    @classmethod
    def slow(cls, seconds: float = 1.0, *, after_processing: bool = False) -> Fault:
        """Wait ``seconds`` before answering. By default the request is processed after the
        delay; with ``after_processing=True`` it is processed at once (e.g. the message exists)
        and only the answer is late -- useful to test client-side timeouts."""
        return cls("slow", delay=seconds, after_processing=after_processing,
                   name=f"slow:{seconds}")

    @classmethod
    def parse(cls, spec: Fault | str | int) -> Fault:
        """Shortcuts: 429, "429", "429_global", 500, 502, 504, 403 (50013), "403_access" /
        50001, 404 (10003 Unknown Channel), "404_webhook" / 10015, 400 (50035),
        "reset_after_receive", "slow" (1 s), "slow:2.5"."""
        if isinstance(spec, Fault):
            return spec
        s = str(spec).strip().lower().replace("-", "_")
        table: dict[str, Callable[[], Fault]] = {
            "429": cls.rate_limited,
            "429_bucket": cls.rate_limited,
            "429_global": lambda: cls.rate_limited(is_global=True),
            "global_429": lambda: cls.rate_limited(is_global=True),
            "500": lambda: cls.server_error(500),
            "502": lambda: cls.server_error(502),
            "504": lambda: cls.server_error(504),
            "403": cls.forbidden,
            "50013": cls.forbidden,
            "403_access": lambda: cls.forbidden(50001),
            "50001": lambda: cls.forbidden(50001),
            "404": cls.not_found,
            "10003": cls.not_found,
            "404_webhook": lambda: cls.not_found(10015),
            "10015": lambda: cls.not_found(10015),
            "400": cls.invalid_form,
            "50035": cls.invalid_form,
            "reset_after_receive": cls.reset_after_receive,
            "reset": cls.reset_after_receive,
            "slow": cls.slow,
        }
        if s in table:
            return table[s]()
        if s.startswith("slow:"):
            return cls.slow(float(s.split(":", 1)[1]))
        raise ValueError(f"unknown fault {spec!r}")


@dataclass
class _Injection:
    method: str | None
    pattern: str
    fault: Fault
    remaining: int

    def matches(self, req: RecordedRequest) -> bool:
        if self.method not in (None, "*", req.method):
            return False
        pat = self.pattern
        if pat.startswith("/api/"):
            pat = re.sub(r"^/api(/v\d+)?", "", pat)
        return pat in (req.route, req.path) or fnmatch.fnmatchcase(req.path, pat)

    def __repr__(self) -> str:
        return f"<fault {self.fault.name} on {self.method or '*'} {self.pattern} x{self.remaining}>"


# --------------------------------------------------------------------------------------------
# Interactions
# --------------------------------------------------------------------------------------------


class InteractionHandle:
    """What the bot did in answer to an interaction the emulator sent.

    ``await callback()`` -> the callback body (``{"type": 4, "data": {...}}``);
    ``await final_message()`` -> the :class:`EmuMessage` the user ends up seeing;
    ``followups``, ``original``; ``await choices()`` for autocomplete.
    """

    def __init__(self, emu: DiscordEmulator, payload: dict[str, Any]) -> None:
        self._emu = emu
        self.payload = payload
        self.id = int(payload["id"])
        self.token: str = payload["token"]
        self.type: int = payload["type"]
        self.callback_body: dict[str, Any] | None = None
        self.original: EmuMessage | None = None
        self.followups: list[EmuMessage] = []
        self.source_message: EmuMessage | None = None  # for component interactions
        self._edits_before = 0  # edits of the component's message before the callback
        self._cond = asyncio.Condition()
        self.sent_at = asyncio.get_running_loop().time()
        self.expired = False  # answered too late (see DiscordEmulator.answer_within)

    @property
    def callback_type(self) -> int | None:
        return None if self.callback_body is None else self.callback_body.get("type")

    @property
    def ephemeral(self) -> bool:
        msg = self.original or (self.followups[0] if self.followups else None)
        return bool(msg and msg.ephemeral)

    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    async def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        async def waiter() -> None:
            async with self._cond:
                await self._cond.wait_for(predicate)

        try:
            await asyncio.wait_for(waiter(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"interaction {self.id}: no {what} within {timeout}s "
                f"(callback={self.callback_body!r}, followups={len(self.followups)}; "
                f"recent requests: {self._emu.requests[-5:]!r})"
            ) from None

    async def callback(self, timeout: float = 5.0) -> dict[str, Any]:
        """The body of the interaction callback (type 4/5/6/7/8/9 ...)."""
        await self._wait(lambda: self.callback_body is not None, timeout, "callback")
        assert self.callback_body is not None
        return self.callback_body

    async def choices(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        """For autocomplete interactions: the choices the bot answered (type 8)."""
        body = await self.callback(timeout)
        if body.get("type") != 8:
            raise AssertionError(f"expected an autocomplete result (type 8), got {body!r}")
        return list((body.get("data") or {}).get("choices") or [])

    async def wait_followups(self, n: int = 1, timeout: float = 5.0) -> list[EmuMessage]:
        await self._wait(lambda: len(self.followups) >= n, timeout, f"{n} follow-up(s)")
        return list(self.followups)

    async def final_message(self, timeout: float = 5.0) -> EmuMessage:
        """The message the user ends up seeing.

        - type 4 (message) / 7 (update message): the original (or updated) message, as it is now
          (including later edits of ``@original``);
        - type 5 (deferred, "thinking") : waits until ``@original`` is edited or a follow-up is
          sent (as on Discord, the first follow-up fills in the deferred message), returns it;
        - type 6 (deferred update): waits for an edit of the component's message or a follow-up.
        """
        body = await self.callback(timeout)
        t = body.get("type")
        if t in (4, 7):
            assert self.original is not None
            return self.original
        if t == 5:
            await self._wait(
                lambda: self.original is not None and not self.original.loading,
                timeout,
                "edit of the deferred response / follow-up",
            )
            assert self.original is not None
            return self.original
        if t == 6:
            def edited() -> bool:
                return self.original is not None and len(self.original.edits) > self._edits_before

            await self._wait(
                lambda: bool(self.followups) or edited(),
                timeout,
                "message edit / follow-up after deferred update",
            )
            if edited():
                assert self.original is not None
                return self.original
            return self.followups[0]
        raise AssertionError(f"interaction callback type {t} produces no message: {body!r}")

    def messages(self) -> list[EmuMessage]:
        out = [self.original] if self.original is not None else []
        out += [m for m in self.followups if m is not self.original]
        return out

    def __repr__(self) -> str:
        return f"<InteractionHandle id={self.id} type={self.type} callback={self.callback_type}>"


# --------------------------------------------------------------------------------------------
# Gateway sessions
# --------------------------------------------------------------------------------------------


@dataclass
class _Session:
    session_id: str
    intents: int = 0
    seq: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)  # dispatches, for RESUME replay
    shard: list[int] | None = None


@dataclass
class _Connection:
    ws: web.WebSocketResponse
    session: _Session | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    dead: bool = False

    @property
    def live(self) -> bool:
        return self.session is not None and not self.dead and not self.ws.closed

    async def _write(self, payload: dict[str, Any]) -> bool:
        """Send one frame (lock held by caller); a vanished peer marks the connection dead."""
        if self.dead or self.ws.closed:
            return False
        try:
            await self.ws.send_str(json.dumps(payload))
        except (ConnectionError, RuntimeError):
            self.dead = True
            return False
        return True

    async def send(self, payload: dict[str, Any]) -> bool:
        async with self.lock:
            return await self._write(payload)

    async def dispatch(self, event: str, data: Any) -> bool:
        """Sequence, buffer (for RESUME replay) and send a DISPATCH frame."""
        assert self.session is not None
        async with self.lock:
            self.session.seq += 1
            frame = {"op": 0, "t": event, "s": self.session.seq, "d": data}
            self.session.sent.append(frame)
            return await self._write(frame)


class _Reply(Exception):
    """Raised by handlers to answer with an error."""

    def __init__(self, status: int, body: Any = None, headers: Mapping[str, str] | None = None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def _error(status: int, code: int, message: str, errors: Any = None) -> _Reply:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors is not None:
        body["errors"] = errors
    return _Reply(status, body)


Handler = Callable[[RecordedRequest], Awaitable[tuple[int, Any]]]


# --------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------


class DiscordEmulator:
    """Emulated Discord REST API + gateway on 127.0.0.1.

    Parameters
    ----------
    bot_user:
        The bot's user (default: ``NewsWatch``, id 1300000000000000001).
    application_id:
        Defaults to the bot user's id (as for all modern Discord apps).
    guilds:
        Guilds the bot is in (default: ``[default_guild()]``). The bot is added as a member
        with a managed role granting ``bot_permissions``.
    webhooks:
        Webhooks that exist (id + token -> channel). A default one (``emu.webhooks[0]``) is
        created in the first text channel of the first guild when ``None``.
    token:
        When set, bot-authenticated requests and IDENTIFY must use it (else 401 / close 4004).
    validate_requests:
        When true, request bodies that Discord's OpenAPI spec rejects are answered with
        400 50035 (Discord's own limits -- 2000 chars of content, 6000 of embed text, empty
        messages -- are always enforced).
    nonce_window:
        Seconds during which ``nonce`` + ``enforce_nonce`` deduplicates message creation.

    ``answer_within`` (an attribute, None by default): seconds after an interaction is sent
    within which its first answer (the callback) must come, as Discord's three; a later one is
    refused with 404 10062 Unknown interaction, and its follow-ups with 404 10015 Unknown
    Webhook. Off unless a test sets it: on a loaded machine a test's bot can be slow for
    reasons that are not what the test is about.

    ``token_life`` (an attribute, None by default): seconds after an interaction is sent for
    which its token works, as Discord's 15 minutes; later, follow-ups and reads, edits and
    deletions of its messages through that token (``/webhooks/{application_id}/{token}/...``)
    are refused with 404 10015 Unknown Webhook. A component interaction (a click, a select)
    has a token of its own, with its own life. Off unless a test sets it.
    """

    def __init__(
        self,
        *,
        bot_user: UserSpec | None = None,
        application_id: int | None = None,
        guilds: list[GuildSpec] | None = None,
        webhooks: list[WebhookSpec] | None = None,
        token: str | None = None,
        bot_permissions: int = (
            Permissions.VIEW_CHANNEL
            | Permissions.SEND_MESSAGES
            | Permissions.EMBED_LINKS
            | Permissions.ATTACH_FILES
            | Permissions.READ_MESSAGE_HISTORY
            | Permissions.ADD_REACTIONS
            | Permissions.USE_EXTERNAL_EMOJIS
            | Permissions.MANAGE_WEBHOOKS
            | Permissions.USE_APPLICATION_COMMANDS
        ),
        validate_requests: bool = False,
        nonce_window: float = 300.0,
        heartbeat_interval_ms: int = 41250,
    ) -> None:
        self.snowflake = _Snowflakes()
        self.bot_user = bot_user or UserSpec(DEFAULT_BOT_ID, "NewsWatch", None, bot=True)
        self.bot_user.bot = True
        self.application_id = application_id or self.bot_user.id
        self.guilds: list[GuildSpec] = guilds if guilds is not None else [default_guild()]
        self.token = token
        self.validate_requests = validate_requests
        self.nonce_window = nonce_window
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.answer_within: float | None = None
        self.token_life: float | None = None

        for g in self.guilds:
            if g.get_member(self.bot_user.id) is None:
                role = RoleSpec(
                    g.id + 999,
                    self.bot_user.username,
                    bot_permissions,
                    position=max((r.position for r in g.roles), default=0) + 1,
                    managed=True,
                    bot_id=self.bot_user.id,
                )
                g.roles.append(role)
                g.members.append(MemberSpec(self.bot_user, [role.id]))

        if webhooks is None:
            first = next((c for g in self.guilds for c in g.channels if c.type in (0, 5)), None)
            webhooks = []
            if first is not None:
                webhooks.append(
                    WebhookSpec(1400000000000000001, "emulated-webhook-token", first.id,
                                "Alerts Hook", guild_id=first.guild_id)
                )
        self.webhooks: dict[int, WebhookSpec] = {}
        for w in webhooks:
            self._register_webhook(w)

        # recorded state
        self.requests: list[RecordedRequest] = []
        self.unhandled: list[RecordedRequest] = []
        self.identify_payloads: list[dict[str, Any]] = []
        self._messages: dict[int, EmuMessage] = {}
        # files users attached to slash-command options (type 11), by attachment id
        self._option_files: dict[str, bytes] = {}
        self._channel_messages: dict[int, list[EmuMessage]] = {}
        self._threads: dict[int, ChannelSpec] = {}  # thread id -> thread (type 11)
        self._nonces: dict[tuple[int, str], tuple[float, EmuMessage]] = {}
        self._commands: dict[int | None, list[dict[str, Any]]] = {}
        self._interactions: dict[str, InteractionHandle] = {}
        self._injections: list[_Injection] = []
        self._message_event = asyncio.Event()

        # gateway state
        self._sessions: dict[str, _Session] = {}
        self._connections: list[_Connection] = []
        self._identified = asyncio.Event()
        self._session_event = asyncio.Event()  # set whenever a connection becomes live

        # server
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.port: int = 0
        self._routes: list[tuple[str, list[str], str, Handler]] = []
        self._build_routes()

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> DiscordEmulator:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._handle_gateway)
        app.router.add_get("/gateway/", self._handle_gateway)
        # the CDN: not API routes, so neither recorded nor spec-checked
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}",
                           self._handle_cdn)
        app.router.add_get("/ephemeral-attachments/{channel_id}/{attachment_id}/{filename}",
                           self._handle_cdn)
        app.router.add_route("*", "/{tail:.*}", self._handle_http)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await self._site.start()
        server = self._site._server
        # a TCPSite's server is the event loop's asyncio.Server (typed as AbstractServer | None)
        assert isinstance(server, asyncio.Server) and server.sockets
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001, message=b"emulator shutting down")
        self._connections.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordEmulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        """Value for ``discord.http.Route.BASE``."""
        return f"{self.base_url}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """Value for ``DiscordWebSocket.DEFAULT_GATEWAY`` (and READY's resume_gateway_url)."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    def patch_discord(self) -> patched_discord_urls:
        """(Async) context manager pointing discord.py's REST base and gateway URL here."""
        return patched_discord_urls(self.api_base, self.gateway_url)

    # ---------------------------------------------------------------- world accessors

    @property
    def guild(self) -> GuildSpec:
        return self.guilds[0]

    @property
    def admin(self) -> MemberSpec:
        """A member of the first guild holding a role with Manage Server (``alice``)."""
        g = self.guild
        for m in g.members:
            if m.user.id not in (self.bot_user.id, g.owner_id) and (
                g.base_permissions(m) & Permissions.MANAGE_GUILD
            ):
                return m
        raise LookupError("no admin (Manage Server, not owner) in the first guild")

    @property
    def member(self) -> MemberSpec:
        """A plain member of the first guild without Manage Server (``bob``)."""
        g = self.guild
        for m in g.members:
            if m.user.id not in (self.bot_user.id, g.owner_id) and not (
                g.base_permissions(m) & Permissions.MANAGE_GUILD
            ):
                return m
        raise LookupError("no plain member in the first guild")

    def channel(self, name_or_id: str | int) -> ChannelSpec:
        for g in self.guilds:
            with contextlib.suppress(KeyError):
                return g.channel(name_or_id)
        raise KeyError(f"no channel {name_or_id!r}")

    def _find_channel(self, channel_id: int) -> tuple[GuildSpec, ChannelSpec] | None:
        for g in self.guilds:
            for c in g.channels:
                if c.id == channel_id:
                    return g, c
        thread = self._threads.get(channel_id)
        if thread is not None:
            g_ = self._find_guild(thread.guild_id or 0)
            if g_ is not None:
                return g_, thread
        return None

    def threads(self, parent_id: int | None = None) -> list[ChannelSpec]:
        """Threads that exist (oldest first), optionally only those of one parent channel.
        A thread started from a message has that message's id, as on Discord."""
        return [t for t in self._threads.values() if parent_id in (None, t.parent_id)]

    async def delete_message(self, channel_id: int, message_id: int) -> None:
        """Delete a message as a moderator would (not through the bot): later GET/PATCH/DELETE
        of it answer 404 10008. A thread started from it stays, as on Discord."""
        msg = self._messages.get(int(message_id))
        if msg is None or msg.deleted or msg.channel_id != int(channel_id):
            raise KeyError(f"no message {message_id} in channel {channel_id}")
        msg.deleted = True
        await self._gateway_message_event("MESSAGE_DELETE", msg)

    async def delete_channel(self, channel_id: int) -> None:
        """Delete a thread or a channel as a moderator would: requests to it answer 404 10003
        (THREAD_DELETE / CHANNEL_DELETE on the gateway)."""
        channel_id = int(channel_id)
        thread = self._threads.pop(channel_id, None)
        if thread is not None:
            await self.dispatch("THREAD_DELETE", {
                "id": str(thread.id), "type": thread.type, "guild_id": str(thread.guild_id),
                "parent_id": str(thread.parent_id)}, intent=1 << 0)
            return
        for g in self.guilds:
            for c in list(g.channels):
                if c.id == channel_id:
                    g.channels.remove(c)
                    await self.dispatch("CHANNEL_DELETE", c.payload(), intent=1 << 0)
                    return
        raise KeyError(f"no channel {channel_id}")

    def _find_guild(self, guild_id: int) -> GuildSpec | None:
        return next((g for g in self.guilds if g.id == guild_id), None)

    async def remove_bot(self, guild_id: int) -> GuildSpec:
        """The bot is removed from a guild (kicked, or the guild deleted): requests to its
        channels answer 404 as for any channel the bot cannot see, and the gateway says
        GUILD_DELETE with no ``unavailable`` (an outage would set it). Returns the guild, to be
        given back to :meth:`add_bot`."""
        guild = self._find_guild(int(guild_id))
        if guild is None:
            raise KeyError(f"the bot is not in guild {guild_id}")
        self.guilds.remove(guild)
        await self.dispatch("GUILD_DELETE", {"id": str(guild.id)}, intent=1 << 0)
        return guild

    async def add_bot(self, guild: GuildSpec) -> None:
        """The bot is invited to a guild (again): GUILD_CREATE without ``unavailable``, which
        is how a join differs from a guild coming back after an outage (``false``)."""
        if self._find_guild(guild.id) is not None:
            raise ValueError(f"the bot is in guild {guild.id} already")
        self.guilds.append(guild)
        payload = self.guild_payload(guild)
        payload.pop("unavailable", None)
        await self.dispatch("GUILD_CREATE", payload, intent=1 << 0)

    def _register_webhook(self, w: WebhookSpec) -> WebhookSpec:
        if w.guild_id is None:
            found = self._find_channel(w.channel_id)
            if found is not None:
                w.guild_id = found[0].id
        self.webhooks[w.id] = w
        return w

    def add_webhook(self, channel_id: int, name: str = "Captain Hook") -> WebhookSpec:
        """Create a webhook in a channel and return it (id, token, url)."""
        return self._register_webhook(
            WebhookSpec(self.snowflake(), secrets.token_urlsafe(48), channel_id, name)
        )

    # ---------------------------------------------------------------- recorded state

    def requests_for(
        self,
        route: str | None = None,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> list[RecordedRequest]:
        """Recorded requests filtered by route template (``"/channels/{channel_id}/messages"``;
        may be prefixed with a method, ``"POST /channels/{channel_id}/messages"``), method,
        and/or concrete path (fnmatch patterns allowed)."""
        if route is not None and " " in route:
            method, route = route.split(" ", 1)
        out = []
        for r in self.requests:
            if method is not None and r.method != method.upper():
                continue
            if route is not None and r.route != route:
                continue
            if path is not None and not (r.path == path or fnmatch.fnmatchcase(r.path, path)):
                continue
            out.append(r)
        return out

    def last_request(self, route: str | None = None, **kw: Any) -> RecordedRequest:
        found = self.requests_for(route, **kw) if (route or kw) else self.requests
        if not found:
            raise LookupError(f"no recorded request matching {route!r} {kw!r}")
        return found[-1]

    def clear_requests(self) -> None:
        self.requests.clear()
        self.unhandled.clear()

    def messages(self, channel_id: int, *, include_ephemeral: bool = False,
                 include_deleted: bool = False) -> list[EmuMessage]:
        """Messages in a channel, oldest first (bot posts, webhook posts, interaction
        responses; ephemeral ones only on request)."""
        return [
            m
            for m in self._channel_messages.get(channel_id, [])
            if (include_ephemeral or not m.ephemeral) and (include_deleted or not m.deleted)
        ]

    def all_messages(self) -> list[EmuMessage]:
        return sorted(self._messages.values(), key=lambda m: m.id)

    def get_message(self, message_id: int) -> EmuMessage:
        return self._messages[int(message_id)]

    async def wait_for_message(
        self,
        channel_id: int,
        predicate: Callable[[EmuMessage], bool] | None = None,
        *,
        timeout: float = 5.0,
        count: int = 1,
    ) -> EmuMessage:
        """Wait until ``count`` messages matching ``predicate`` exist in the channel; returns
        the last one of them."""
        deadline = _time.monotonic() + timeout
        while True:
            found = [m for m in self.messages(channel_id) if predicate is None or predicate(m)]
            if len(found) >= count:
                return found[count - 1]
            remaining = deadline - _time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"no matching message in channel {channel_id} within {timeout}s; "
                    f"have {self.messages(channel_id)!r}"
                )
            self._message_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._message_event.wait(), remaining)

    def commands(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        """Application commands as synced (global when ``guild_id`` is None)."""
        return [dict(c) for c in self._commands.get(guild_id, [])]

    def validate_all(self) -> list[str]:
        """Spec problems across all recorded requests to Discord API routes (see
        :mod:`tests.fakes.discord_spec`; skips the test if the spec is absent)."""
        from tests.fakes import discord_spec

        problems: list[str] = []
        for r in self.requests:
            for p in discord_spec.validate_recorded(r):
                problems.append(f"#{self.requests.index(r)} {p}")
        return problems

    # ---------------------------------------------------------------- faults

    def inject(self, pattern: str, fault: Fault | str | int, times: int = 1) -> None:
        """Answer the next ``times`` requests matching ``pattern`` with ``fault``.

        ``pattern``: ``"POST /channels/{channel_id}/messages"`` (route template), a concrete
        path (``"POST /channels/123/messages"``), an fnmatch pattern (``"/webhooks/*"``), with or
        without a method. Injections are consumed in the order they were added; afterwards
        normal behaviour resumes.
        """
        method: str | None = None
        pat = pattern.strip()
        if " " in pat:
            method, pat = pat.split(None, 1)
            method = method.upper()
        self._injections.append(_Injection(method, pat, Fault.parse(fault), times))

    def clear_faults(self) -> None:
        self._injections.clear()

    @property
    def pending_faults(self) -> list[_Injection]:
        return [i for i in self._injections if i.remaining > 0]

    def _take_fault(self, req: RecordedRequest) -> Fault | None:
        for inj in self._injections:
            if inj.remaining > 0 and inj.matches(req):
                inj.remaining -= 1
                return inj.fault
        return None

    # ---------------------------------------------------------------- HTTP plumbing

    def _route(self, method: str, template: str, handler: Handler) -> None:
        self._routes.append((method, template.strip("/").split("/"), template, handler))

    def _match(self, method: str, path: str) -> tuple[str, dict[str, str], Handler] | None:
        segments = path.strip("/").split("/")
        best: tuple[int, str, dict[str, str], Handler] | None = None
        for m, tsegs, template, handler in self._routes:
            if m != method or len(tsegs) != len(segments):
                continue
            params: dict[str, str] = {}
            literal = 0
            for t, s in zip(tsegs, segments, strict=True):
                if t.startswith("{"):
                    params[t[1:-1]] = unquote(s)
                elif t == s:
                    literal += 1
                else:
                    break
            else:
                if best is None or literal > best[0]:
                    best = (literal, template, params, handler)
        return None if best is None else best[1:]

    @staticmethod
    def _response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
        hdrs = dict(headers or {})
        if status == 204 or body is None:
            return web.Response(status=204 if body is None else status, headers=hdrs)
        hdrs["Content-Type"] = "application/json"
        return web.Response(status=status, body=json.dumps(body).encode(), headers=hdrs)

    async def _record(self, request: web.Request) -> RecordedRequest:
        raw = await request.read()
        ctype = request.headers.get("Content-Type")
        path = request.path
        if path.startswith("/api/"):
            path = re.sub(r"^/api(/v\d+)?", "", path) or "/"
        rec = RecordedRequest(
            method=request.method,
            path=path,
            full_path=request.path_qs,
            query=dict(request.query),
            headers=dict(request.headers),
            raw=raw,
            content_type=ctype,
        )
        if raw and ctype and ctype.startswith("application/json"):
            try:
                rec.json = json.loads(raw)
            except ValueError:
                rec.json = None
        elif raw and ctype and ctype.startswith("multipart/form-data"):
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw
            )
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                filename = part.get_param("filename", header="content-disposition")
                rec.parts.append({
                    "name": None if name is None else str(name),
                    "filename": None if filename is None else str(filename),
                    "content_type": part.get("Content-Type"),
                    "size": len(payload) if isinstance(payload, bytes) else 0,
                })
                if name == "payload_json":
                    # a non-multipart part decodes to its bytes
                    assert isinstance(payload, bytes), "payload_json part is not a leaf"
                    rec.json = json.loads(payload)
                    rec.form[name] = rec.json
                elif name:
                    rec.form[str(name)] = payload
        self.requests.append(rec)
        return rec

    def _check_bot_auth(self, req: RecordedRequest) -> None:
        auth = req.headers.get("Authorization", "")
        if not auth.startswith("Bot ") or (self.token is not None and auth != f"Bot {self.token}"):
            raise _error(401, 0, "401: Unauthorized")

    async def _handle_cdn(self, request: web.Request) -> web.StreamResponse:
        """Serve an uploaded file's bytes, as cdn.discordapp.com does for attachment URLs."""
        aid = request.match_info["attachment_id"]
        data = self._option_files.get(aid)
        if data is None:
            data = next((m.files[aid] for m in self._messages.values() if aid in m.files), None)
        if data is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=data, content_type="application/octet-stream")

    async def _handle_http(self, request: web.Request) -> web.StreamResponse:
        rec = await self._record(request)
        if not request.path.startswith("/api/"):
            rec.status = 404
            self.unhandled.append(rec)
            return self._response(404, {"message": "404: Not Found", "code": 0})
        matched = self._match(rec.method, rec.path)
        if matched is None:
            self.unhandled.append(rec)
            rec.status = 404
            return self._response(404, {"message": "404: Not Found", "code": 0})
        rec.route, rec.params, handler = matched

        fault = self._take_fault(rec)
        if fault is not None:
            rec.fault = fault.name
            if fault.kind == "slow" and not fault.after_processing:
                await asyncio.sleep(fault.delay)
            elif fault.kind == "status":
                return self._fault_response(rec, fault)

        try:
            if not (rec.path.startswith("/webhooks/") or rec.path.startswith("/interactions/")):
                self._check_bot_auth(rec)
            if self.validate_requests and rec.json is not None:
                self._reject_if_spec_invalid(rec)
            status, body = await handler(rec)
            headers: dict[str, str] = {}
        except _Reply as reply:
            status, body, headers = reply.status, reply.body, reply.headers

        if fault is not None and fault.kind == "slow" and fault.after_processing:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.kind == "reset_after_receive":
            # processed (message created), now drop the connection without answering
            rec.status = None
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPServiceUnavailable()  # never reaches the client
        rec.status = status
        rec.response = body
        return self._response(status, body, headers)

    def _fault_response(self, rec: RecordedRequest, fault: Fault) -> web.Response:
        rec.status = fault.status
        if fault.name == "429_proxy":
            rec.response = "<html><body>429 Too Many Requests</body></html>"
            return web.Response(status=429, text=rec.response, content_type="text/html",
                                headers={"Via": "1.1 proxy", "Retry-After": fault.message})
        if fault.status == 429:
            body = {
                "message": fault.message,
                "retry_after": fault.retry_after,
                "global": fault.is_global,
                "code": 0,
            }
            rec.response = body
            return self._response(
                429,
                body,
                {
                    "Via": "1.1 google",
                    "Retry-After": str(max(1, int(fault.retry_after + 0.999))),
                    "X-RateLimit-Scope": "global" if fault.is_global else "user",
                    **({"X-RateLimit-Global": "true"} if fault.is_global else {}),
                },
            )
        body = {"message": fault.message, "code": fault.code}
        if fault.errors is not None:
            body["errors"] = fault.errors
        rec.response = body
        return self._response(fault.status, body)

    def _reject_if_spec_invalid(self, rec: RecordedRequest) -> None:
        from tests.fakes import discord_spec

        if not discord_spec.spec_available():
            return
        problems = discord_spec.validate_recorded(rec)
        if problems:
            raise _error(400, 50035, "Invalid Form Body", {"_errors": [
                {"code": "SPEC_VALIDATION", "message": p} for p in problems
            ]})

    # ---------------------------------------------------------------- REST routes

    def _build_routes(self) -> None:
        r = self._route
        r("GET", "/users/@me", self._get_me)
        r("GET", "/users/{user_id}", self._get_user)
        r("GET", "/oauth2/applications/@me", self._get_app)
        r("GET", "/applications/@me", self._get_app)
        r("GET", "/gateway", self._get_gateway)
        r("GET", "/gateway/bot", self._get_gateway_bot)
        # commands
        r("GET", "/applications/{application_id}/commands", self._list_commands)
        r("PUT", "/applications/{application_id}/commands", self._put_commands)
        r("POST", "/applications/{application_id}/commands", self._post_command)
        r("GET", "/applications/{application_id}/guilds/{guild_id}/commands", self._list_commands)
        r("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", self._put_commands)
        r("POST", "/applications/{application_id}/guilds/{guild_id}/commands", self._post_command)
        r("DELETE", "/applications/{application_id}/commands/{command_id}", self._delete_command)
        r("DELETE", "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
          self._delete_command)
        # guilds / channels
        r("GET", "/guilds/{guild_id}", self._get_guild)
        r("GET", "/guilds/{guild_id}/channels", self._get_guild_channels)
        r("GET", "/guilds/{guild_id}/roles", self._get_guild_roles)
        r("GET", "/guilds/{guild_id}/members/{user_id}", self._get_guild_member)
        r("GET", "/guilds/{guild_id}/webhooks", self._list_guild_webhooks)
        r("GET", "/channels/{channel_id}", self._get_channel)
        r("POST", "/channels/{channel_id}/typing", self._typing)
        # messages
        r("POST", "/channels/{channel_id}/messages", self._create_message)
        r("GET", "/channels/{channel_id}/messages", self._list_messages)
        r("GET", "/channels/{channel_id}/messages/{message_id}", self._get_channel_message)
        r("PATCH", "/channels/{channel_id}/messages/{message_id}", self._edit_channel_message)
        r("DELETE", "/channels/{channel_id}/messages/{message_id}", self._delete_channel_message)
        r("POST", "/channels/{channel_id}/messages/{message_id}/threads",
          self._create_thread_from_message)
        r("POST", "/channels/{channel_id}/threads", self._create_thread)
        r("GET", "/guilds/{guild_id}/threads/active", self._active_threads)
        # webhooks
        r("GET", "/channels/{channel_id}/webhooks", self._list_channel_webhooks)
        r("POST", "/channels/{channel_id}/webhooks", self._create_webhook)
        r("GET", "/webhooks/{webhook_id}", self._get_webhook)
        r("DELETE", "/webhooks/{webhook_id}", self._delete_webhook)
        r("GET", "/webhooks/{webhook_id}/{webhook_token}", self._get_webhook_token)
        r("POST", "/webhooks/{webhook_id}/{webhook_token}", self._execute_webhook)
        r("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
          self._get_webhook_message)
        r("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
          self._edit_webhook_message)
        r("DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
          self._delete_webhook_message)
        r("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
          self._get_webhook_message)
        r("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
          self._edit_webhook_message)
        r("DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
          self._delete_webhook_message)
        # interactions
        r("POST", "/interactions/{interaction_id}/{interaction_token}/callback",
          self._interaction_callback)

    # --- identity

    def _app_payload(self) -> dict[str, Any]:
        owner = self.guild.get_member(self.guild.owner_id) if self.guilds else None
        owner_user = owner.user.payload() if owner else UserSpec(1, "owner").payload()
        return {
            "id": str(self.application_id),
            "name": self.bot_user.username,
            "icon": None,
            "description": "Emulated application",
            "summary": "",
            "type": None,
            "bot_public": False,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 0,
            "owner": owner_user,
            "team": None,
            "bot": self.bot_user.payload(),
            "rpc_origins": [],
            "tags": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": len(self.guilds),
            "integration_types_config": {"0": {}},
        }

    async def _get_me(self, req: RecordedRequest) -> tuple[int, Any]:
        data = self.bot_user.payload()
        data.update(verified=True, mfa_enabled=False, email=None, locale="en-US", bio="")
        return 200, data

    async def _get_user(self, req: RecordedRequest) -> tuple[int, Any]:
        uid = int(req.params["user_id"])
        for g in self.guilds:
            m = g.get_member(uid)
            if m is not None:
                return 200, m.user.payload()
        raise _error(404, 10013, "Unknown User")

    async def _get_app(self, req: RecordedRequest) -> tuple[int, Any]:
        return 200, self._app_payload()

    async def _get_gateway(self, req: RecordedRequest) -> tuple[int, Any]:
        return 200, {"url": self.gateway_url}

    async def _get_gateway_bot(self, req: RecordedRequest) -> tuple[int, Any]:
        return 200, {
            "url": self.gateway_url,
            "shards": 1,
            "session_start_limit": {
                "total": 1000, "remaining": 999, "reset_after": 86400000, "max_concurrency": 1
            },
        }

    # --- commands

    def _check_app(self, req: RecordedRequest) -> int | None:
        if int(req.params["application_id"]) != self.application_id:
            raise _error(403, 50001, "Missing Access")
        gid = req.params.get("guild_id")
        if gid is None:
            return None
        if self._find_guild(int(gid)) is None:
            raise _error(403, 50001, "Missing Access")
        return int(gid)

    def _command_payload(self, body: dict[str, Any], guild_id: int | None,
                         existing: dict[str, Any] | None) -> dict[str, Any]:
        cmd = dict(body)
        cmd["id"] = existing["id"] if existing else str(self.snowflake())
        cmd["application_id"] = str(self.application_id)
        cmd["version"] = str(self.snowflake())
        cmd.setdefault("type", 1)
        cmd.setdefault("description", "")
        cmd.setdefault("options", [])
        cmd.setdefault("nsfw", False)
        perms = cmd.get("default_member_permissions")
        cmd["default_member_permissions"] = None if perms is None else str(perms)
        cmd.setdefault("contexts", None)
        cmd.setdefault("integration_types", [0])
        if guild_id is not None:
            cmd["guild_id"] = str(guild_id)
        return cmd

    async def _list_commands(self, req: RecordedRequest) -> tuple[int, Any]:
        gid = self._check_app(req)
        return 200, self.commands(gid)

    async def _put_commands(self, req: RecordedRequest) -> tuple[int, Any]:
        gid = self._check_app(req)
        body = req.json or []
        if not isinstance(body, list):
            raise _error(400, 50035, "Invalid Form Body")
        old = {(c["name"], c.get("type", 1)): c for c in self._commands.get(gid, [])}
        new = [self._command_payload(c, gid, old.get((c.get("name"), c.get("type", 1))))
               for c in body]
        self._commands[gid] = new
        return 200, [dict(c) for c in new]

    async def _post_command(self, req: RecordedRequest) -> tuple[int, Any]:
        gid = self._check_app(req)
        body = req.json or {}
        cmds = self._commands.setdefault(gid, [])
        existing = next((c for c in cmds if c["name"] == body.get("name")
                         and c.get("type", 1) == body.get("type", 1)), None)
        cmd = self._command_payload(body, gid, existing)
        if existing:
            cmds[cmds.index(existing)] = cmd
            return 200, cmd
        cmds.append(cmd)
        return 201, cmd

    async def _delete_command(self, req: RecordedRequest) -> tuple[int, Any]:
        gid = self._check_app(req)
        cmds = self._commands.get(gid, [])
        for c in cmds:
            if c["id"] == req.params["command_id"]:
                cmds.remove(c)
                return 204, None
        raise _error(404, 10063, "Unknown application command")

    # --- guilds / channels

    def _guild_or_404(self, req: RecordedRequest) -> GuildSpec:
        g = self._find_guild(int(req.params["guild_id"]))
        if g is None:
            raise _error(404, 10004, "Unknown Guild")
        return g

    def _channel_or_404(self, req: RecordedRequest) -> tuple[GuildSpec, ChannelSpec]:
        try:
            found = self._find_channel(int(req.params["channel_id"]))
        except ValueError:
            found = None
        if found is None:
            raise _error(404, 10003, "Unknown Channel")
        return found

    def guild_payload(self, g: GuildSpec) -> dict[str, Any]:
        """The full GUILD_CREATE payload of a guild."""
        text = [c for c in g.channels if c.type == 0]
        return {
            "id": str(g.id),
            "name": g.name,
            "icon": None,
            "icon_hash": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "owner_id": str(g.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "widget_enabled": False,
            "verification_level": 1,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "roles": [r.payload() for r in g.roles],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": str(text[0].id) if text else None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_presences": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "vanity_url_code": None,
            "description": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "nsfw": False,
            "incidents_data": None,
            "hub_type": None,
            "latest_onboarding_question_id": None,
            "home_header": None,
            "inventory_settings": None,
            "version": 0,
            # GUILD_CREATE extras
            "joined_at": "2024-01-01T00:00:00+00:00",
            "large": False,
            "unavailable": False,
            "lazy": True,
            "member_count": len(g.members),
            "voice_states": [],
            "members": [m.payload() for m in g.members],
            "channels": [{k: v for k, v in c.payload().items() if k != "guild_id"}
                         for c in g.channels],
            "threads": [{k: v for k, v in t.payload().items() if k != "guild_id"}
                        for t in self._threads.values() if t.guild_id == g.id],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
            "activity_instances": [],
            "application_command_counts": {},
        }

    async def _get_guild(self, req: RecordedRequest) -> tuple[int, Any]:
        g = self._guild_or_404(req)
        data = self.guild_payload(g)
        for k in ("joined_at", "large", "unavailable", "lazy", "member_count", "voice_states",
                  "members", "channels", "threads", "presences", "stage_instances",
                  "guild_scheduled_events", "soundboard_sounds", "embedded_activities",
                  "activity_instances", "application_command_counts"):
            data.pop(k, None)
        return 200, data

    async def _get_guild_channels(self, req: RecordedRequest) -> tuple[int, Any]:
        return 200, [c.payload() for c in self._guild_or_404(req).channels]

    async def _get_guild_roles(self, req: RecordedRequest) -> tuple[int, Any]:
        return 200, [r.payload() for r in self._guild_or_404(req).roles]

    async def _get_guild_member(self, req: RecordedRequest) -> tuple[int, Any]:
        m = self._guild_or_404(req).get_member(int(req.params["user_id"]))
        if m is None:
            raise _error(404, 10007, "Unknown Member")
        return 200, m.payload()

    async def _get_channel(self, req: RecordedRequest) -> tuple[int, Any]:
        _, c = self._channel_or_404(req)
        return 200, c.payload()

    async def _typing(self, req: RecordedRequest) -> tuple[int, Any]:
        self._channel_or_404(req)
        return 204, None

    # --- messages

    def _bot_author(self) -> dict[str, Any]:
        return self.bot_user.payload()

    def _member_payload_for(self, guild: GuildSpec | None, user_id: int) -> dict[str, Any] | None:
        if guild is None:
            return None
        m = guild.get_member(user_id)
        return None if m is None else m.payload(with_user=False)

    @staticmethod
    def _normalise_embeds(embeds: Any) -> list[dict[str, Any]]:
        out = []
        for e in embeds or []:
            e = dict(e)
            e.setdefault("type", "rich")
            if "fields" in e:
                e["fields"] = [{"inline": False, **f} for f in e["fields"]]
            out.append(e)
        return out

    def _normalise_components(self, components: Any) -> list[dict[str, Any]]:
        counter = itertools.count(1)

        def walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
            res = []
            for c in items:
                c = dict(c)
                c.setdefault("id", next(counter))
                if "components" in c:
                    c["components"] = walk(c["components"])
                res.append(c)
            return res

        return walk(list(components or []))

    @staticmethod
    def _check_message_body(body: dict[str, Any], *, require_something: bool = True) -> None:
        errors: dict[str, Any] = {}
        content = body.get("content")
        if isinstance(content, str) and len(content) > 2000:
            errors["content"] = {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH",
                                              "message": "Must be 2000 or fewer in length."}]}
        embeds = body.get("embeds") or []
        if len(embeds) > 10:
            errors["embeds"] = {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH",
                                             "message": "Must be 10 or fewer in length."}]}
        from tests.fakes.discord_spec import MAX_EMBED_TOTAL_TEXT, _embed_text_total

        if _embed_text_total(embeds) > MAX_EMBED_TOTAL_TEXT:
            errors["embeds"] = {"_errors": [{"code": "MAX_EMBED_SIZE_EXCEEDED",
                                             "message": "Embed size exceeds maximum size of 6000"}]}
        # Discord refuses an embed field whose name or value is empty or blank (the spec
        # allows an empty string there)
        for i, embed in enumerate(embeds if isinstance(embeds, list) else []):
            fields = embed.get("fields") if isinstance(embed, dict) else None
            for j, entry in enumerate(fields if isinstance(fields, list) else []):
                for key in ("name", "value"):
                    text = entry.get(key) if isinstance(entry, dict) else None
                    if isinstance(text, str) and not text.strip():
                        errors.setdefault("embeds", {}).setdefault(str(i), {}).setdefault(
                            "fields", {}).setdefault(str(j), {})[key] = {"_errors": [
                                {"code": "BASE_TYPE_REQUIRED",
                                 "message": "This field is required"}]}
        if errors:
            raise _error(400, 50035, "Invalid Form Body", errors)
        if require_something and not any(
            body.get(k) for k in ("content", "embeds", "components", "attachments",
                                  "sticker_ids", "poll", "files")
        ):
            raise _error(400, 50006, "Cannot send an empty message")

    def _store_message(self, msg: EmuMessage) -> None:
        msg.known_users = {
            m.user.id: m.user.payload() for g in self.guilds for m in g.members
        }
        self._messages[msg.id] = msg
        self._channel_messages.setdefault(msg.channel_id, []).append(msg)
        self._message_event.set()

    def _uploads(self, channel_id: int, body: dict[str, Any], req: RecordedRequest | None,
                 keep: Mapping[str, dict[str, Any]] | None = None
                 ) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
        """The attachments a message body lists: ones already on the message (``keep``, by
        id) stay; the others are uploads, whose bytes are the request's ``files[<id>]`` part."""
        attachments: list[dict[str, Any]] = []
        files: dict[str, bytes] = {}
        for i, a in enumerate(body.get("attachments") or []):
            ref = str(a.get("id", i))
            if keep is not None and ref in keep:
                attachments.append(keep[ref])
                continue
            if req is None:
                continue
            fname = a.get("filename") or f"file{i}"
            data = req.form.get(f"files[{ref}]", b"")
            data = data if isinstance(data, bytes) else b""
            aid = str(self.snowflake())
            attachments.append({
                "id": aid, "filename": fname, "size": len(data),
                "url": f"{self.base_url}/attachments/{channel_id}/{aid}/{fname}",
                "proxy_url": f"{self.base_url}/attachments/{channel_id}/{aid}/{fname}",
                "content_type": mimetypes.guess_type(fname)[0] or "application/octet-stream",
                **({"description": a["description"]} if a.get("description") else {}),
            })
            files[aid] = data
        return attachments, files

    def _new_message(self, channel_id: int, guild_id: int | None, body: dict[str, Any],
                     req: RecordedRequest | None, **kw: Any) -> EmuMessage:
        self._check_message_body(body)
        attachments, files = self._uploads(channel_id, body, req)
        msg = EmuMessage(
            id=self.snowflake(),
            channel_id=channel_id,
            guild_id=guild_id,
            author=kw.pop("author", None) or self._bot_author(),
            content=body.get("content") or "",
            embeds=self._normalise_embeds(body.get("embeds")),
            components=self._normalise_components(body.get("components")),
            attachments=attachments,
            files=files,
            flags=int(body.get("flags") or 0),
            allowed_mentions=body.get("allowed_mentions"),
            nonce=body.get("nonce"),
            tts=bool(body.get("tts")),
            message_reference=body.get("message_reference"),
            **kw,
        )
        return msg

    async def _gateway_message_event(self, event: str, msg: EmuMessage) -> None:
        if msg.ephemeral:
            return
        data = msg.payload(gateway=True) if event != "MESSAGE_DELETE" else {
            "id": str(msg.id), "channel_id": str(msg.channel_id),
            **({"guild_id": str(msg.guild_id)} if msg.guild_id else {}),
        }
        await self.dispatch(event, data, intent=1 << 9)

    async def _create_message(self, req: RecordedRequest) -> tuple[int, Any]:
        guild, channel = self._channel_or_404(req)
        if channel.type in _NON_TEXT_TYPES:
            # a forum takes posts (POST /channels/{forum}/threads), never a message of its own
            raise _error(400, 50008, "Cannot send messages in a non-text channel")
        body = req.json or {}
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            key = (channel.id, str(nonce))
            hit = self._nonces.get(key)
            if hit is not None and _time.monotonic() - hit[0] < self.nonce_window:
                return 200, hit[1].payload()
        msg = self._new_message(
            channel.id, guild.id, body, req,
            member=self._member_payload_for(guild, self.bot_user.id), source="bot",
        )
        if nonce is not None and body.get("enforce_nonce"):
            self._nonces[(channel.id, str(nonce))] = (_time.monotonic(), msg)
        if channel.id in self._threads:
            channel.message_count += 1
        self._store_message(msg)
        await self._gateway_message_event("MESSAGE_CREATE", msg)
        return 200, msg.payload()

    async def _list_messages(self, req: RecordedRequest) -> tuple[int, Any]:
        _, channel = self._channel_or_404(req)
        limit = int(req.query.get("limit", 50))
        if not 1 <= limit <= 100:  # Discord's range
            raise _error(400, 50035, "Invalid Form Body")
        msgs = list(reversed(self.messages(channel.id)))[:limit]
        return 200, [m.payload() for m in msgs]

    def _message_or_404(self, channel_id: int, message_id: str) -> EmuMessage:
        try:
            msg = self._messages.get(int(message_id))
        except ValueError:
            msg = None
        if msg is None or msg.deleted or msg.channel_id != channel_id or msg.ephemeral:
            raise _error(404, 10008, "Unknown Message")
        return msg

    async def _get_channel_message(self, req: RecordedRequest) -> tuple[int, Any]:
        _, channel = self._channel_or_404(req)
        return 200, self._message_or_404(channel.id, req.params["message_id"]).payload()

    def _apply_edit(self, msg: EmuMessage, body: dict[str, Any],
                    req: RecordedRequest | None = None) -> None:
        self._check_message_body(body, require_something=False)
        if "content" in body:
            msg.content = body["content"] or ""
        if "embeds" in body:
            msg.embeds = self._normalise_embeds(body["embeds"])
        if "components" in body:
            msg.components = self._normalise_components(body["components"])
        if "allowed_mentions" in body:
            msg.allowed_mentions = body["allowed_mentions"]
        if "flags" in body and body["flags"] is not None:
            keep = msg.flags & (EmuMessage.EPHEMERAL | EmuMessage.LOADING)
            msg.flags = int(body["flags"]) | keep
        if "attachments" in body:
            # listed ones stay, unlisted ones go, new ids are uploads in this request
            kept = {a["id"]: a for a in msg.attachments}
            msg.attachments, uploaded = self._uploads(msg.channel_id, body, req, keep=kept)
            msg.files = {k: v for k, v in msg.files.items()
                         if any(a["id"] == k for a in msg.attachments)} | uploaded
        msg.flags &= ~EmuMessage.LOADING
        msg.edited_at = _time.time()
        msg.edits.append(dict(body))
        self._message_event.set()

    async def _edit_channel_message(self, req: RecordedRequest) -> tuple[int, Any]:
        _, channel = self._channel_or_404(req)
        msg = self._message_or_404(channel.id, req.params["message_id"])
        if msg.author.get("id") != str(self.bot_user.id) or msg.webhook_id is not None:
            raise _error(403, 50005, "Cannot edit a message authored by another user")
        self._apply_edit(msg, req.json or {}, req)
        await self._gateway_message_event("MESSAGE_UPDATE", msg)
        return 200, msg.payload()

    async def _delete_channel_message(self, req: RecordedRequest) -> tuple[int, Any]:
        _, channel = self._channel_or_404(req)
        msg = self._message_or_404(channel.id, req.params["message_id"])
        msg.deleted = True
        await self._gateway_message_event("MESSAGE_DELETE", msg)
        return 204, None

    async def _create_thread_from_message(self, req: RecordedRequest) -> tuple[int, Any]:
        guild, channel = self._channel_or_404(req)
        if channel.type not in (0, 5):
            raise _error(400, 50024, "Cannot execute action on this channel type")
        bot = guild.get_member(self.bot_user.id)
        if bot is None or not (guild.channel_permissions(bot, channel)
                               & Permissions.CREATE_PUBLIC_THREADS):
            raise _error(403, 50013, "Missing Permissions")
        msg = self._message_or_404(channel.id, req.params["message_id"])
        body = req.json if isinstance(req.json, dict) else {}
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise _error(400, 50035, "Invalid Form Body", {"name": {"_errors": [
                {"code": "BASE_TYPE_BAD_LENGTH", "message": "Must be between 1 and 100 in length."}
            ]}})
        if msg.thread is not None:
            raise _error(400, 160004, "A thread has already been created for this message")
        thread = ChannelSpec(
            msg.id, name, type=11 if channel.type == 0 else 10, parent_id=channel.id,
            guild_id=guild.id, owner_id=self.bot_user.id,
            auto_archive_duration=int(body.get("auto_archive_duration") or 1440),
        )
        self._threads[thread.id] = thread
        msg.thread = thread
        msg.flags |= EmuMessage.HAS_THREAD
        await self.dispatch("THREAD_CREATE", {**thread.payload(), "newly_created": True},
                            intent=1 << 0)
        return 201, thread.payload()

    @staticmethod
    def _thread_name_or_400(body: Mapping[str, Any]) -> str:
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise _error(400, 50035, "Invalid Form Body", {"name": {"_errors": [
                {"code": "BASE_TYPE_BAD_LENGTH", "message": "Must be between 1 and 100 in length."}
            ]}})
        return name

    async def _create_thread(self, req: RecordedRequest) -> tuple[int, Any]:
        """POST /channels/{c}/threads: a post in a forum (its starter message, ``message`` in
        the body, takes the thread's id and lives in the thread, as on Discord), or a thread
        without a message in a text channel."""
        guild, channel = self._channel_or_404(req)
        body = req.json if isinstance(req.json, dict) else {}
        bot = guild.get_member(self.bot_user.id)
        perms = guild.channel_permissions(bot, channel) if bot is not None else 0
        forum = channel.type in (15, 16)
        if not forum and channel.type not in (0, 5):
            raise _error(400, 50024, "Cannot execute action on this channel type")
        need = Permissions.SEND_MESSAGES if forum else Permissions.CREATE_PUBLIC_THREADS
        if not perms & Permissions.VIEW_CHANNEL:
            raise _error(403, 50001, "Missing Access")
        if not perms & need:
            raise _error(403, 50013, "Missing Permissions")
        name = self._thread_name_or_400(body)
        thread_id = self.snowflake()
        if not forum:
            thread = ChannelSpec(thread_id, name, type=int(body.get("type") or 11),
                                 parent_id=channel.id, guild_id=guild.id,
                                 owner_id=self.bot_user.id,
                                 auto_archive_duration=int(body.get("auto_archive_duration")
                                                           or 1440))
            self._threads[thread.id] = thread
            await self.dispatch("THREAD_CREATE", {**thread.payload(), "newly_created": True},
                                intent=1 << 0)
            return 201, thread.payload()
        message = body.get("message")
        if not isinstance(message, dict):
            raise _error(400, 50035, "Invalid Form Body", {"message": {"_errors": [
                {"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]}})
        tags = [str(t) for t in body.get("applied_tags") or []]
        known = {str(t["id"]): t for t in channel.available_tags}
        if len(tags) > 5 or any(t not in known for t in tags):
            raise _error(400, 50035, "Invalid Form Body", {"applied_tags": {"_errors": [
                {"code": "INVALID_TAG", "message": "Tags must be at most 5 of the forum's"}]}})
        if any(known[t].get("moderated") for t in tags) and not perms & Permissions.MANAGE_THREADS:
            raise _error(403, 50013, "Missing Permissions")
        if channel.flags & _REQUIRE_TAG and not tags:
            raise _error(400, 40067, "A tag is required to create a forum post in this channel")
        msg = self._new_message(thread_id, guild.id, message, req,
                                member=self._member_payload_for(guild, self.bot_user.id),
                                source="bot")
        msg.id = thread_id  # a post's starter message takes the thread's id
        thread = ChannelSpec(
            thread_id, name, type=11, parent_id=channel.id, guild_id=guild.id,
            owner_id=self.bot_user.id, applied_tags=[int(t) for t in tags],
            auto_archive_duration=int(body.get("auto_archive_duration") or 1440))
        self._threads[thread.id] = thread
        self._store_message(msg)
        await self.dispatch("THREAD_CREATE", {**thread.payload(), "newly_created": True},
                            intent=1 << 0)
        await self._gateway_message_event("MESSAGE_CREATE", msg)
        return 201, {**thread.payload(), "message": msg.payload()}

    async def _active_threads(self, req: RecordedRequest) -> tuple[int, Any]:
        g = self._guild_or_404(req)
        return 200, {"threads": [t.payload() for t in self._threads.values()
                                 if t.guild_id == g.id],
                     "members": [], "has_more": False}

    def add_thread(self, parent_id: int, name: str, *, type: int = 11,
                   owner_id: int | None = None) -> ChannelSpec:
        """A thread without a starter message in a text channel, as a member would start it
        (before the bot connects: it is then in GUILD_CREATE's ``threads``). Posting to it
        works like a channel; ``type`` 12 makes it private."""
        found = self._find_channel(int(parent_id))
        if found is None:
            raise KeyError(f"no channel {parent_id}")
        guild, parent = found
        thread = ChannelSpec(self.snowflake(), name, type=type, parent_id=parent.id,
                             guild_id=guild.id,
                             owner_id=owner_id if owner_id is not None else guild.owner_id)
        self._threads[thread.id] = thread
        return thread

    # --- webhooks

    async def _list_channel_webhooks(self, req: RecordedRequest) -> tuple[int, Any]:
        _, channel = self._channel_or_404(req)
        return 200, [w.payload() for w in self.webhooks.values() if w.channel_id == channel.id]

    async def _list_guild_webhooks(self, req: RecordedRequest) -> tuple[int, Any]:
        g = self._guild_or_404(req)
        return 200, [w.payload() for w in self.webhooks.values() if w.guild_id == g.id]

    async def _create_webhook(self, req: RecordedRequest) -> tuple[int, Any]:
        _, channel = self._channel_or_404(req)
        name = (req.json or {}).get("name") or "Captain Hook"
        w = self.add_webhook(channel.id, name)
        data = w.payload(self.application_id)
        data["user"] = self.bot_user.payload()
        return 200, data

    async def _get_webhook(self, req: RecordedRequest) -> tuple[int, Any]:
        w = self.webhooks.get(int(req.params["webhook_id"]))
        if w is None:
            raise _error(404, 10015, "Unknown Webhook")
        return 200, w.payload()

    async def _delete_webhook(self, req: RecordedRequest) -> tuple[int, Any]:
        if self.webhooks.pop(int(req.params["webhook_id"]), None) is None:
            raise _error(404, 10015, "Unknown Webhook")
        return 204, None

    def _webhook_or_error(self, req: RecordedRequest) -> WebhookSpec:
        try:
            w = self.webhooks.get(int(req.params["webhook_id"]))
        except ValueError:
            w = None
        if w is None:
            raise _error(404, 10015, "Unknown Webhook")
        if w.token != req.params["webhook_token"]:
            raise _error(401, 50027, "Invalid Webhook Token")
        return w

    def _interaction_for(self, req: RecordedRequest) -> InteractionHandle | None:
        if req.params.get("webhook_id") != str(self.application_id):
            return None
        handle = self._interactions.get(req.params["webhook_token"])
        if handle is None:
            raise _error(404, 10015, "Unknown Webhook")
        age = asyncio.get_running_loop().time() - handle.sent_at
        if self.token_life is not None and age > self.token_life:
            raise _error(404, 10015, "Unknown Webhook")  # the token ran out (token_life)
        return handle

    async def _get_webhook_token(self, req: RecordedRequest) -> tuple[int, Any]:
        w = self._webhook_or_error(req)
        data = w.payload()
        data.pop("token", None)
        return 200, data

    async def _execute_webhook(self, req: RecordedRequest) -> tuple[int, Any]:
        body = req.json or {}
        handle = self._interaction_for(req)
        if handle is not None:
            return await self._interaction_followup(handle, req, body)
        w = self._webhook_or_error(req)
        found = self._find_channel(w.channel_id)
        guild_id = found[0].id if found else w.guild_id
        author = {
            "id": str(w.id),
            "username": body.get("username") or w.name,
            "avatar": None,
            "discriminator": "0000",
            "public_flags": 0,
            "flags": 0,
            "bot": True,
            "global_name": None,
        }
        forum = found is not None and found[1].type in (15, 16)
        if forum and not body.get("thread_name"):
            raise _error(400, 220001, "Webhooks posted to forum channels must have a "
                         "thread_name or thread_id")
        thread: ChannelSpec | None = None
        if forum and found is not None:
            name = self._thread_name_or_400({"name": body.get("thread_name")})
            thread = ChannelSpec(self.snowflake(), name, type=11, parent_id=w.channel_id,
                                 guild_id=guild_id, owner_id=w.id,
                                 applied_tags=[int(t) for t in body.get("applied_tags") or []])
        msg = self._new_message(thread.id if thread else w.channel_id, guild_id, body, req,
                                author=author, webhook_id=w.id, source="webhook")
        if thread is not None:  # a forum post: its starter message takes the thread's id
            msg.id = thread.id
            self._threads[thread.id] = thread
            await self.dispatch("THREAD_CREATE", {**thread.payload(), "newly_created": True},
                                intent=1 << 0)
        self._store_message(msg)
        await self._gateway_message_event("MESSAGE_CREATE", msg)
        wait = req.query.get("wait", "false").lower() in ("1", "true")
        return (200, msg.payload()) if wait else (204, None)

    def _webhook_target(self, req: RecordedRequest) -> tuple[EmuMessage, InteractionHandle | None]:
        handle = self._interaction_for(req)
        mid = req.params.get("message_id", "@original")
        if handle is not None:
            if mid == "@original":
                if handle.original is None:
                    raise _error(404, 10008, "Unknown Message")
                return handle.original, handle
            for m in handle.messages():
                if str(m.id) == mid:
                    return m, handle
            raise _error(404, 10008, "Unknown Message")
        w = self._webhook_or_error(req)
        if mid == "@original":
            raise _error(404, 10008, "Unknown Message")
        # a message in a thread (a forum post's too) is only found with that thread's id
        where = w.channel_id
        if "thread_id" in req.query:
            tid = req.query["thread_id"]
            thread = self._threads.get(int(tid)) if tid.isdigit() else None
            if thread is None or thread.parent_id != w.channel_id:
                raise _error(404, 10003, "Unknown Channel")
            where = thread.id
        try:
            msg = self._messages.get(int(mid))
        except ValueError:
            msg = None
        if msg is None or msg.deleted or msg.webhook_id != w.id or msg.channel_id != where:
            raise _error(404, 10008, "Unknown Message")
        return msg, None

    async def _get_webhook_message(self, req: RecordedRequest) -> tuple[int, Any]:
        msg, _ = self._webhook_target(req)
        return 200, msg.payload()

    async def _edit_webhook_message(self, req: RecordedRequest) -> tuple[int, Any]:
        msg, handle = self._webhook_target(req)
        self._apply_edit(msg, req.json or {}, req)
        await self._gateway_message_event("MESSAGE_UPDATE", msg)
        if handle is not None:
            await handle._notify()
        return 200, msg.payload()

    async def _delete_webhook_message(self, req: RecordedRequest) -> tuple[int, Any]:
        msg, handle = self._webhook_target(req)
        msg.deleted = True
        await self._gateway_message_event("MESSAGE_DELETE", msg)
        if handle is not None:
            await handle._notify()
        return 204, None

    # --- interactions (bot side)

    def _interaction_message(self, handle: InteractionHandle, body: dict[str, Any],
                             *, loading: bool = False, source: str = "interaction",
                             req: RecordedRequest | None = None) -> EmuMessage:
        p = handle.payload
        channel_id = int(p["channel_id"])
        guild_id = int(p["guild_id"]) if p.get("guild_id") else None
        user = (p.get("member") or {}).get("user") or p.get("user") or {}
        is_command = handle.type == 2
        meta = {
            "id": str(handle.id),
            "type": handle.type,
            "user": user,
            "authorizing_integration_owners": p.get("authorizing_integration_owners", {}),
        }
        if is_command:
            meta["name"] = (p.get("data") or {}).get("name")
        flags = int(body.get("flags") or 0)
        if loading:
            flags |= EmuMessage.LOADING
        body = {**body, "flags": flags}
        if loading:
            msg = EmuMessage(
                id=self.snowflake(), channel_id=channel_id, guild_id=guild_id,
                author=self._bot_author(), flags=flags, source=source,
            )
        else:
            msg = self._new_message(channel_id, guild_id, body, req, source=source)
        msg.type = 20 if is_command else 0
        msg.webhook_id = self.application_id
        msg.application_id = self.application_id
        msg.interaction_id = handle.id
        msg.interaction_metadata = meta
        msg.member = self._member_payload_for(self._find_guild(guild_id or 0), self.bot_user.id)
        return msg

    async def _interaction_callback(self, req: RecordedRequest) -> tuple[int, Any]:
        handle = self._interactions.get(req.params["interaction_token"])
        if handle is None or str(handle.id) != req.params["interaction_id"]:
            raise _error(404, 10062, "Unknown interaction")
        if handle.callback_body is not None:
            raise _error(400, 40060, "Interaction has already been acknowledged.")
        late = asyncio.get_running_loop().time() - handle.sent_at
        if self.answer_within is not None and late > self.answer_within:
            handle.expired = True
            await handle._notify()
            raise _error(404, 10062, "Unknown interaction")
        body = req.json or {}
        t = body.get("type")
        data = body.get("data") or {}
        if t not in (1, 4, 5, 6, 7, 8, 9, 10, 12):
            raise _error(400, 50035, "Invalid Form Body",
                         {"type": {"_errors": [{"code": "BASE_TYPE_CHOICES",
                                                "message": f"Value must be one of ... ({t})"}]}})
        resource: dict[str, Any] = {"type": t}
        info: dict[str, Any] = {"id": str(handle.id), "type": handle.type}
        new_message: EmuMessage | None = None
        if t == 4:
            new_message = self._interaction_message(handle, data, req=req)
        elif t == 5:
            new_message = self._interaction_message(handle, data, loading=True)
        elif t in (6, 7):
            if handle.source_message is None:
                raise _error(400, 40004, "Interaction callback type not valid for this interaction")
            handle.original = handle.source_message
            handle._edits_before = len(handle.original.edits)
            if t == 7:
                self._apply_edit(handle.original, data, req)
                await self._gateway_message_event("MESSAGE_UPDATE", handle.original)
                resource["message"] = handle.original.payload()
                info["response_message_id"] = str(handle.original.id)
        elif t == 8 and handle.type != 4:
            raise _error(400, 40004, "Interaction callback type not valid for this interaction")
        if new_message is not None:
            handle.original = new_message
            self._store_message(new_message)
            await self._gateway_message_event("MESSAGE_CREATE", new_message)
            resource["message"] = new_message.payload()
            info.update(
                response_message_id=str(new_message.id),
                response_message_loading=new_message.loading,
                response_message_ephemeral=new_message.ephemeral,
            )
        handle.callback_body = body
        await handle._notify()
        if req.query.get("with_response", "").lower() in ("1", "true"):
            return 200, {"interaction": info, "resource": resource}
        return 204, None

    async def _interaction_followup(self, handle: InteractionHandle, req: RecordedRequest,
                                    body: dict[str, Any]) -> tuple[int, Any]:
        if handle.callback_body is None or handle.expired:
            raise _error(404, 10015, "Unknown Webhook")
        orig = handle.original
        if orig is not None and orig.loading and handle.callback_type == 5:
            # Discord: the first follow-up after a "thinking" defer fills in that message.
            self._apply_edit(orig, {k: v for k, v in body.items() if k != "flags"}, req)
            orig.source = "followup"
            handle.followups.append(orig)
            await self._gateway_message_event("MESSAGE_UPDATE", orig)
            await handle._notify()
            return 200, orig.payload()
        msg = self._interaction_message(handle, body, source="followup", req=req)
        self._store_message(msg)
        handle.followups.append(msg)
        await self._gateway_message_event("MESSAGE_CREATE", msg)
        await handle._notify()
        return 200, msg.payload()

    # ---------------------------------------------------------------- interactions (user side)

    def _resolve_member(self, guild: GuildSpec, user: Any) -> MemberSpec:
        if isinstance(user, MemberSpec):
            return user
        if user in (None, "admin"):
            return self.admin if guild is self.guild else self._guild_admin(guild)
        if user == "member":
            return self.member if guild is self.guild else self._guild_plain(guild)
        if isinstance(user, UserSpec):
            user = user.id
        m = guild.get_member(int(user))
        if m is None:
            raise LookupError(f"user {user!r} is not a member of guild {guild.name}")
        return m

    def _guild_admin(self, g: GuildSpec) -> MemberSpec:
        return next(m for m in g.members
                    if m.user.id != self.bot_user.id
                    and g.base_permissions(m) & Permissions.MANAGE_GUILD)

    def _guild_plain(self, g: GuildSpec) -> MemberSpec:
        return next(m for m in g.members
                    if m.user.id != self.bot_user.id
                    and not g.base_permissions(m) & Permissions.MANAGE_GUILD)

    def _interaction_base(self, itype: int, data: dict[str, Any], *, user: Any,
                          guild_id: int | None, channel_id: int | None,
                          locale: str) -> tuple[dict[str, Any], GuildSpec, ChannelSpec]:
        guild = self._find_guild(guild_id) if guild_id else self.guild
        if guild is None:
            raise LookupError(f"unknown guild {guild_id}")
        if channel_id is None:
            channel = next(c for c in guild.channels if c.type in (0, 5))
        else:
            channel = guild.channel(int(channel_id))
        member = self._resolve_member(guild, user)
        bot_member = guild.get_member(self.bot_user.id)
        assert bot_member is not None
        user_perms = guild.channel_permissions(member, channel)
        member_payload = member.payload()
        member_payload["permissions"] = str(user_perms)
        member_payload["unusual_dm_activity_until"] = None
        channel_payload = channel.payload()
        channel_payload["permissions"] = str(user_perms)
        payload = {
            "id": str(self.snowflake()),
            "application_id": str(self.application_id),
            "type": itype,
            "data": data,
            "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
            "guild_id": str(guild.id),
            "channel": channel_payload,
            "channel_id": str(channel.id),
            "member": member_payload,
            "token": "emu." + secrets.token_urlsafe(64),
            "version": 1,
            "app_permissions": str(guild.channel_permissions(bot_member, channel)),
            "locale": locale,
            "guild_locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        return payload, guild, channel

    def _find_command(self, top: str, guild_id: int) -> tuple[dict[str, Any], bool]:
        for c in self._commands.get(guild_id, []):
            if c["name"] == top and c.get("type", 1) == 1:
                return c, True
        for c in self._commands.get(None, []):
            if c["name"] == top and c.get("type", 1) == 1:
                return c, False
        synced = sorted({c["name"] for cmds in self._commands.values() for c in cmds})
        raise LookupError(f"slash command {top!r} is not synced (synced: {synced})")

    def _permissions_in(self, guild: GuildSpec, member: MemberSpec, channel: ChannelSpec
                        ) -> int:
        """A member's permissions in a channel; a thread has its parent channel's."""
        if channel.type in (10, 11, 12) and channel.parent_id is not None:
            with contextlib.suppress(KeyError):
                channel = guild.channel(channel.parent_id)
        return guild.channel_permissions(member, channel)

    def _resolved_channel(self, opt: dict[str, Any], channel_id: int, guild: GuildSpec,
                          member: MemberSpec, foreign: bool) -> dict[str, Any]:
        """A CHANNEL option's ``resolved`` entry: one of the interaction's guild's channels or
        threads, of a type the option allows, with the invoking member's permissions there
        (as Discord sends it). Discord's picker offers nothing else; ``foreign`` emulates a
        forged request naming another guild's channel (its data as that guild has it)."""
        found = self._find_channel(channel_id)
        if found is None:
            raise LookupError(f"option {opt['name']!r}: no channel {channel_id}")
        owner, ch = found
        if owner is not guild:
            if not foreign:
                raise LookupError(
                    f"option {opt['name']!r}: channel {channel_id} is in guild {owner.name}, "
                    f"not {guild.name}; Discord's picker offers only the guild's own channels "
                    "(foreign_channels=True forges one)")
            cp = ch.payload()
            cp["permissions"] = "0"
            return cp
        allowed = opt.get("channel_types")
        if allowed and ch.type not in allowed:
            raise LookupError(f"option {opt['name']!r} takes channel types {allowed}; "
                              f"#{ch.name} is type {ch.type}")
        cp = ch.payload()
        cp["permissions"] = str(self._permissions_in(guild, member, ch))
        return cp

    def _option_value(self, opt: dict[str, Any], value: Any, guild: GuildSpec,
                      resolved: dict[str, dict[str, Any]], member_of: MemberSpec,
                      foreign: bool = False) -> Any:
        t = opt["type"]
        if t == 3:
            return str(value)
        if t == 4:
            return int(value)
        if t == 10:
            return float(value) if not isinstance(value, int) else value
        if t == 5:
            return bool(value)
        if t in (6, 7, 8, 9):
            if isinstance(value, (MemberSpec, UserSpec, ChannelSpec, RoleSpec)):
                value = value.id
            vid = int(value)
            member = guild.get_member(vid)
            if t in (6, 9) and member is not None:
                resolved.setdefault("users", {})[str(vid)] = member.user.payload()
                mp = member.payload(with_user=False)
                mp["permissions"] = str(guild.base_permissions(member))
                resolved.setdefault("members", {})[str(vid)] = mp
                return str(vid)
            if t in (8, 9):
                with contextlib.suppress(KeyError):
                    resolved.setdefault("roles", {})[str(vid)] = guild.role(vid).payload()
                    return str(vid)
            if t == 7:
                resolved.setdefault("channels", {})[str(vid)] = self._resolved_channel(
                    opt, vid, guild, member_of, foreign)
                return str(vid)
            raise LookupError(f"cannot resolve {value!r} for option {opt['name']!r}")
        if t == 11:
            return self._option_attachment(opt, value, guild, resolved)
        raise NotImplementedError(f"option type {t} ({opt['name']!r}) is not emulated")

    def _option_attachment(self, opt: dict[str, Any], value: Any, guild: GuildSpec,
                           resolved: dict[str, dict[str, Any]]) -> str:
        """An ATTACHMENT option: ``value`` is ``(filename, bytes)``; the file is "uploaded" (its
        bytes served from the emulated CDN) and described in ``resolved.attachments``."""
        if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
                and isinstance(value[1], bytes)):
            raise TypeError(f"option {opt['name']!r} is an attachment: pass (filename, bytes)")
        fname, data = value
        aid = str(self.snowflake())
        url = f"{self.base_url}/ephemeral-attachments/{guild.id}/{aid}/{fname}"
        self._option_files[aid] = data
        resolved.setdefault("attachments", {})[aid] = {
            "id": aid, "filename": fname, "size": len(data), "url": url, "proxy_url": url,
            "content_type": mimetypes.guess_type(fname)[0] or "application/octet-stream",
            "ephemeral": True,
        }
        return aid

    def _build_command_data(self, name: str, options: Mapping[str, Any] | None,
                            guild: GuildSpec, *, member: MemberSpec, focused: str | None = None,
                            foreign: bool = False) -> dict[str, Any]:
        words = name.split()
        cmd, is_guild = self._find_command(words[0], guild.id)
        defs = cmd.get("options") or []
        data: dict[str, Any] = {"id": cmd["id"], "name": cmd["name"], "type": 1}
        if is_guild:
            data["guild_id"] = str(guild.id)
        container = data
        for word in words[1:]:
            sub = next((o for o in defs if o["name"] == word and o["type"] in (1, 2)), None)
            if sub is None:
                raise LookupError(f"{cmd['name']}: no subcommand (group) {word!r} in {name!r}")
            node: dict[str, Any] = {"type": sub["type"], "name": word, "options": []}
            container.setdefault("options", []).append(node)
            container = node
            defs = sub.get("options") or []
        if any(o["type"] in (1, 2) for o in defs):
            raise ValueError(f"{name!r} is a group; name a subcommand (e.g. '{name} <sub>')")
        resolved: dict[str, dict[str, Any]] = {}
        opts: list[dict[str, Any]] = []
        given = dict(options or {})
        for key, value in given.items():
            od = next((o for o in defs if o["name"] == key), None)
            if od is None:
                names = [o["name"] for o in defs]
                raise ValueError(f"/{name}: unknown option {key!r} (has {names})")
            if key == focused:
                opts.append({"type": od["type"], "name": key, "value": str(value), "focused": True})
                continue
            opts.append({"type": od["type"], "name": key,
                         "value": self._option_value(od, value, guild, resolved, member,
                                                     foreign)})
        if focused is not None:
            if focused not in given:
                od = next((o for o in defs if o["name"] == focused), None)
                if od is None:
                    raise ValueError(f"/{name}: unknown focused option {focused!r}")
                opts.append({"type": od["type"], "name": focused, "value": "", "focused": True})
        else:
            missing = [o["name"] for o in defs if o.get("required") and o["name"] not in given]
            if missing:
                raise ValueError(f"/{name}: missing required option(s) {missing}")
        container["options"] = opts
        if resolved:
            data["resolved"] = resolved
        return data

    async def _send(self, payload: dict[str, Any]) -> InteractionHandle:
        handle = InteractionHandle(self, payload)
        self._interactions[handle.token] = handle
        await self._deliver("INTERACTION_CREATE", payload)
        return handle

    async def send_interaction(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: Any = "admin",
        guild_id: int | None = None,
        channel_id: int | None = None,
        locale: str = "en-US",
        foreign_channels: bool = False,
    ) -> InteractionHandle:
        """A user runs a slash command (INTERACTION_CREATE type 2 through the gateway).

        ``name``: ``"search"`` or ``"watch add"`` / ``"admin rules list"`` for subcommands.
        ``options``: leaf option values by name (users/roles/channels may be specs or ids; they
        get ``resolved`` data; an attachment option takes ``(filename, bytes)``, served from the
        emulated CDN at the URL its ``resolved`` entry gives). A channel option takes only the
        guild's own channels and threads of the types it allows (as Discord's picker), resolved
        with the invoking member's permissions there; ``foreign_channels=True`` forges a request
        naming another guild's channel. ``user``: ``"admin"``, ``"member"``, a MemberSpec or a
        user id.
        The command must have been synced (guild commands first, then global). If the client is
        between gateway connections, delivery waits up to 5 s for it to (re)connect.
        """
        guild = self._find_guild(guild_id) if guild_id else self.guild
        if guild is None:
            raise LookupError(f"unknown guild {guild_id}")
        data = self._build_command_data(name, options, guild,
                                        member=self._resolve_member(guild, user),
                                        foreign=foreign_channels)
        payload, _, _ = self._interaction_base(2, data, user=user, guild_id=guild.id,
                                               channel_id=channel_id, locale=locale)
        return await self._send(payload)

    async def send_autocomplete(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        focused: str | None = None,
        *,
        user: Any = "admin",
        guild_id: int | None = None,
        channel_id: int | None = None,
        timeout: float = 5.0,
    ) -> list[dict[str, Any]]:
        """A user types in an autocomplete option (interaction type 4); returns the choices
        the bot answered (list of ``{"name": ..., "value": ...}``)."""
        handle = await self.autocomplete_interaction(
            name, options, focused, user=user, guild_id=guild_id, channel_id=channel_id
        )
        return await handle.choices(timeout)

    async def autocomplete_interaction(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        focused: str | None = None,
        *,
        user: Any = "admin",
        guild_id: int | None = None,
        channel_id: int | None = None,
    ) -> InteractionHandle:
        """Like :meth:`send_autocomplete` but returns the handle."""
        guild = self._find_guild(guild_id) if guild_id else self.guild
        if guild is None:
            raise LookupError(f"unknown guild {guild_id}")
        if focused is None:
            if not options:
                raise ValueError("send_autocomplete needs focused= or at least one option")
            focused = list(options)[-1]
        data = self._build_command_data(name, options, guild, focused=focused,
                                        member=self._resolve_member(guild, user))
        payload, _, _ = self._interaction_base(4, data, user=user, guild_id=guild.id,
                                               channel_id=channel_id, locale="en-US")
        return await self._send(payload)

    async def _component(self, message: EmuMessage | int, custom_id: str, component_type: int,
                         values: list[str] | None, user: Any, stale: bool = False,
                         forged: bool = False) -> InteractionHandle:
        msg = message if isinstance(message, EmuMessage) else self.get_message(int(message))
        if custom_id not in msg.custom_ids and not forged:
            raise LookupError(f"message {msg.id} has no component {custom_id!r} "
                              f"(has {msg.custom_ids})")
        # What Discord's client lets a user do: a disabled component takes no click, and a
        # select sends only values among its options, as many as it allows.
        component = msg.component(custom_id) or {}
        if component.get("disabled") and not stale:
            raise LookupError(f"component {custom_id!r} of message {msg.id} is disabled")
        if values is not None:
            offered = [o.get("value") for o in component.get("options") or []]
            lo, hi = component.get("min_values", 1), component.get("max_values", 1)
            if any(v not in offered for v in values) or not lo <= len(values) <= hi:
                raise LookupError(f"select {custom_id!r} offers {offered} ({lo} to {hi}), "
                                  f"not {values}")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = list(values)
        payload, _, _ = self._interaction_base(3, data, user=user, guild_id=msg.guild_id,
                                               channel_id=msg.channel_id, locale="en-US")
        payload["message"] = msg.payload()
        if forged and custom_id not in msg.custom_ids:
            # The message as the crafting client shows it: with one more row holding the button.
            payload["message"]["components"] = [*msg.components, {"type": 1, "components": [
                {"type": 2, "style": 2, "label": "forged", "custom_id": custom_id}]}]
        handle = InteractionHandle(self, payload)
        handle.source_message = msg
        self._interactions[handle.token] = handle
        await self._deliver("INTERACTION_CREATE", payload)
        return handle

    async def click_button(self, message: EmuMessage | int, custom_id: str, *,
                           user: Any = "admin", stale: bool = False,
                           forged: bool = False) -> InteractionHandle:
        """A user clicks a button (MESSAGE_COMPONENT, component_type 2) on a message. A disabled
        one takes no click, unless ``stale``: the user's client had not yet seen the edit that
        disabled it. ``forged``: a crafted click, a button with ``custom_id`` the message does
        not carry (a modified client, or a button copied from another message), sent as though
        the message held it; Discord's own client cannot send one."""
        return await self._component(message, custom_id, 2, None, user, stale, forged)

    async def select_menu(self, message: EmuMessage | int, custom_id: str, values: list[str],
                          *, user: Any = "admin") -> InteractionHandle:
        """A user picks values in a string select (component_type 3)."""
        return await self._component(message, custom_id, 3, values, user)

    # ---------------------------------------------------------------- gateway

    async def wait_until_identified(self, timeout: float = 5.0) -> None:
        await asyncio.wait_for(self._identified.wait(), timeout)

    def live_sessions(self) -> int:
        """How many gateway connections are identified and live (each gets every event, as
        Discord sends them to every session of a token)."""
        return sum(1 for conn in self._connections if conn.live and conn.session is not None)

    async def dispatch(self, event: str, data: Any, *, intent: int | None = None) -> int:
        """Send a DISPATCH event to every identified connection (optionally only those whose
        IDENTIFY intents include ``intent``). Returns the number of connections reached."""
        n = 0
        for conn in list(self._connections):
            if not conn.live:
                continue
            assert conn.session is not None
            if intent is not None and not conn.session.intents & intent:
                continue
            if await conn.dispatch(event, data):
                n += 1
        return n

    async def _deliver(self, event: str, data: Any, timeout: float = 5.0) -> None:
        """Dispatch to at least one live connection, waiting up to ``timeout`` for the client to
        (re)connect if it is between connections."""
        deadline = _time.monotonic() + timeout
        while not await self.dispatch(event, data):
            remaining = deadline - _time.monotonic()
            if remaining <= 0:
                raise RuntimeError(
                    f"no identified gateway connection to deliver {event} to within {timeout}s"
                )
            self._session_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._session_event.wait(), min(remaining, 0.2))

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT: discord.py reconnects to resume_gateway_url and RESUMEs."""
        self._identified.clear()
        for conn in list(self._connections):
            await conn.send({"op": 7, "d": None})

    async def drop_gateway(self, code: int = 4000) -> None:
        """Close gateway connections with ``code`` (4000 = resumable unknown error)."""
        self._identified.clear()
        for conn in list(self._connections):
            conn.dead = True
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.ws.close(code=code, message=b"emulator dropped the connection")

    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        conn = _Connection(ws)
        self._connections.append(conn)
        try:
            await conn.send({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms,
                                             "_trace": ["emulator"]}, "s": None, "t": None})
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                await self._gateway_op(conn, frame)
                if conn.dead:
                    break
        except ConnectionError:
            pass  # the client went away mid-conversation
        finally:
            conn.dead = True
            if conn in self._connections:
                self._connections.remove(conn)
        return ws

    async def _gateway_op(self, conn: _Connection, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        d = frame.get("d")
        if op == 1:
            await conn.send({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            assert isinstance(d, dict), f"IDENTIFY without a payload: {frame!r}"
            self.identify_payloads.append(d)
            if self.token is not None and d.get("token") != self.token:
                conn.dead = True
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await conn.ws.close(code=4004, message=b"Authentication failed.")
                return
            session = _Session(secrets.token_hex(16), intents=int(d.get("intents", 0)),
                               shard=d.get("shard"))
            self._sessions[session.session_id] = session
            conn.session = session
            ready: dict[str, Any] = {
                "v": 10,
                "user": {**self.bot_user.payload(), "verified": True, "mfa_enabled": False,
                         "email": None},
                "user_settings": {},
                "guilds": [{"id": str(g.id), "unavailable": True} for g in self.guilds],
                "session_id": session.session_id,
                "session_type": "normal",
                "resume_gateway_url": self.gateway_url,
                "application": {"id": str(self.application_id), "flags": 0},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "guild_join_requests": [],
                "geo_ordered_rtc_regions": ["emulated"],
                "auth": {},
                "_trace": ["emulator"],
            }
            if session.shard is not None:
                ready["shard"] = session.shard
            await conn.dispatch("READY", ready)
            for g in self.guilds:
                await conn.dispatch("GUILD_CREATE", self.guild_payload(g))
            if conn.live:
                self._identified.set()
                self._session_event.set()
        elif op == 6:
            assert isinstance(d, dict), f"RESUME without a payload: {frame!r}"
            sid = d.get("session_id")
            resumed = self._sessions.get(sid) if isinstance(sid, str) else None
            if resumed is None or (self.token is not None and d.get("token") != self.token):
                await conn.send({"op": 9, "d": False, "s": None, "t": None})
                return
            conn.session = resumed
            seq = d.get("seq") or 0
            async with conn.lock:
                for f in resumed.sent:
                    if f["s"] > seq:
                        await conn._write(f)
            await conn.dispatch("RESUMED", {"_trace": ["emulator"]})
            if conn.live:
                self._identified.set()
                self._session_event.set()
        elif op == 8:
            assert isinstance(d, dict), f"REQUEST_GUILD_MEMBERS without a payload: {frame!r}"
            gid = int(d["guild_id"])
            guild = self._find_guild(gid)
            if guild is not None and conn.session is not None:
                members = list(guild.members)
                if d.get("user_ids"):
                    wanted = {int(u) for u in d["user_ids"]}
                    members = [m for m in members if m.user.id in wanted]
                elif d.get("query"):
                    q = str(d["query"]).lower()
                    members = [m for m in members
                               if m.user.username.lower().startswith(q)
                               or (m.nick or "").lower().startswith(q)]
                if d.get("limit"):
                    members = members[: int(d["limit"])]
                await conn.dispatch("GUILD_MEMBERS_CHUNK", {
                    "guild_id": str(guild.id),
                    "members": [m.payload() for m in members],
                    "chunk_index": 0,
                    "chunk_count": 1,
                    "not_found": [],
                    **({"nonce": d["nonce"]} if d.get("nonce") else {}),
                })
        # op 3 (presence), 4 (voice state) etc.: accepted and ignored


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


class patched_discord_urls:
    """Point ``discord.http.Route.BASE`` and ``DiscordWebSocket.DEFAULT_GATEWAY`` at an
    emulator; restores both on exit. Usable with ``with`` and ``async with``."""

    def __init__(self, api_base: str, gateway_url: str) -> None:
        self.api_base = api_base
        self.gateway_url = gateway_url
        self._saved: tuple[Any, Any] | None = None

    def __enter__(self) -> None:
        import yarl
        from discord.gateway import DiscordWebSocket
        from discord.http import Route

        self._saved = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
        Route.BASE = self.api_base
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)

    def __exit__(self, *exc: object) -> None:
        from discord.gateway import DiscordWebSocket
        from discord.http import Route

        assert self._saved is not None
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._saved
        self._saved = None

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)


@contextlib.asynccontextmanager
async def run_client(client: Any, emu: DiscordEmulator, *, token: str | None = None,
                     timeout: float = 10.0) -> AsyncIterator[Any]:
    """Run a discord.py ``Client``/``Bot`` against ``emu`` until it is ready, yield it, then
    close it and wait for its task. Discord URLs must already point at the emulator
    (``emu.patch_discord()``), unless the client sets them itself."""
    task = asyncio.create_task(client.start(token or emu.token or "emulated-token"))
    ready = asyncio.create_task(client.wait_until_ready())
    try:
        done, _ = await asyncio.wait({task, ready}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # raises the start() error
            raise RuntimeError("client.start() returned before the client became ready")
        if ready not in done:
            raise TimeoutError(f"client not ready within {timeout}s; requests: {emu.requests!r}")
        yield client
    finally:
        ready.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ready
        if not client.is_closed():
            await client.close()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, timeout)  # errors after ready surface via assertions
