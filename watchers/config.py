"""Configuration: pydantic models and TOML loading with errors that name the key path.

Every problem in a file is reported at once, each with its path (``rules[2].query: …``), so a user
fixes a config in one pass rather than one error per run.
"""

from __future__ import annotations

import functools
import json
import os
import re
import stat
import tomllib
from collections.abc import Callable, Collection, Mapping
from datetime import date, datetime, time, timedelta
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from watchers.errors import ConfigError, ConfigIssue, QuerySyntaxError
from watchers.urls import url_parts_problem

__all__ = [
    "ChannelRef",
    "Config",
    "DiscordConfig",
    "FeedSourceConfig",
    "FetchConfig",
    "FolderSourceConfig",
    "PageSourceConfig",
    "RouteConfig",
    "RuleConfig",
    "Severity",
    "StorageConfig",
    "StoriesConfig",
    "SurgeConfig",
    "format_duration",
    "load_config",
    "parse_config",
    "parse_duration",
    "pydantic_issues",
    "route_settings",
    "routes_sent_to",
]

# ASCII digits only: float() reads "१५" as 15, and "१५m" is no duration anyone wrote.
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.ASCII)
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_RANKS = {unit: rank for rank, unit in enumerate(_UNITS)}  # smallest first
# Longer spans are mistakes (and overflow date arithmetic): "since 99999999d", "every 1e9w".
MAX_DURATION = timedelta(days=100 * 365)


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """Parse ``"30s"``, ``"5m"``, ``"1h30m"``, ``"2d"`` (or plain seconds) into a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        # a list or a table ended `check` with a traceback ("'list' object has no attribute
        # 'strip'")
        raise ValueError("expected a duration such as '30s', '5m' or '1h'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        written = value.strip().replace(" ", "")
        if re.search(r"\dM(?![Ss])", written, re.ASCII):
            # Months to some, minutes once lowered: "5M" was read as five minutes.
            raise ValueError(f"{value!r} is not a duration: 'M' is no unit here (minutes are "
                             "'m'; for months write days, e.g. '90d')")
        text = written.lower()
        pos, seconds, last = 0, 0.0, len(_UNITS)
        for m in _DURATION.finditer(text):
            if m.start() != pos:
                break
            rank = _RANKS[m.group(2)]
            if rank >= last:
                # "1h1h" was two hours, "30m1h" ninety minutes: a slip, not a way of writing.
                raise ValueError(f"{value!r} is not a duration: each unit once, the largest "
                                 "first, e.g. '1h30m'")
            last = rank
            seconds += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if not text or pos != len(text):
            raise ValueError(f"{value!r} is not a duration; use e.g. '30s', '5m', '1h30m', '2d'")
    if not seconds >= 0.001:  # also NaN; a shorter one would round to zero and spin
        raise ValueError("a duration must be at least 1ms")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{value!r} is longer than {MAX_DURATION.days // 365} years")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest of ``"2d"``, ``"5m"``, ``"90s"``, ``"1500ms"`` that is exact (the inverse of
    parse): a part of a second shows in milliseconds, where "1ms" was shown as "0s"."""
    ms = round(value.total_seconds() * 1000)
    if ms % 1000:
        return f"{ms}ms"
    s = ms // 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


# "30s", "5m", "1h30m", "2d" or a number of seconds, read by parse_duration before the type is
# checked. A field of it is declared Field(strict=False): strings are its own form, so the
# models' typed constructors take them too (see _Strict).
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Severity = Literal["info", "low", "medium", "high", "critical"]


class _Strict(BaseModel):
    # strict: a value is taken only as its own type. Converted, enabled = "no" read as false,
    # threshold = "90" as 90 and enabled = 1 as true; TOML writes booleans and numbers
    # unquoted, so a string or a number in their place is a mistake to name, not to guess at.
    # A whole number still stands for a float, and durations and sizes still take strings
    # ("5m", "2MiB"): their validators parse them first, and their fields say strict=False.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# The longest path and file name the usual file systems take (Linux's PATH_MAX, NAME_MAX).
_PATH_MAX: Final = 4096
_NAME_MAX: Final = 255


def usable_path(value: str) -> str:
    """``value``, or ValueError saying what makes it unusable as a path: a NUL character (the
    config was taken, then the program stopped with a traceback), or a ``~`` with no home
    directory to expand it to (a container's user with no home)."""
    if "\x00" in value:
        raise ValueError("contains a NUL character (\\u0000)")
    # A path no system takes: refused here with its length, not later with the path itself
    # in a message as long (`check` took a 100,000-character path).
    if len(value.encode("utf-8", "surrogateescape")) > _PATH_MAX:
        raise ValueError(f"is {len(value):,} characters long; paths are at most {_PATH_MAX:,} "
                         "bytes")
    longest = max(value.split("/"), key=len)
    if len(longest.encode("utf-8", "surrogateescape")) > _NAME_MAX:
        raise ValueError(f"has a name of {len(longest):,} characters in it; names are at most "
                         f"{_NAME_MAX} bytes")
    if value.startswith("~"):
        try:
            Path(value).expanduser()
        except RuntimeError:
            raise ValueError(f"{value.split('/')[0]!r} cannot be expanded: no home directory "
                             "(set HOME)") from None
    return value


# "scheme://" at the start of a value: a URL, not a file name.
_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
# A value held in the environment: "env:" and a variable's name.
_ENV_REF = re.compile(r"env:[A-Za-z_][A-Za-z0-9_]*")
# Discord ids (snowflakes) are positive numbers of at most 64 bits.
_ID_LIMIT = 2**64


def _id_problem(value: int) -> str | None:
    """Why ``value`` is no Discord id, or None: one rule for every id a config holds (a role
    past 64 bits was refused as mention_role and taken in mention_roles, mention_users and
    escalation_role, where Discord then refused the alert)."""
    if 0 < value < _ID_LIMIT:
        return None
    return f"{value} is not a Discord id (ids are positive numbers of at most 64 bits)"


def _discord_id(value: int) -> int:
    if (problem := _id_problem(value)) is not None:
        raise ValueError(problem)
    return value


# A Discord id (a snowflake); -5, 0 or a number past 64 bits is a typo, not a role or a user.
DiscordId = Annotated[int, AfterValidator(_discord_id)]


def _secret_like(value: str) -> bool:
    """Whether ``value``, written where a variable's name belongs, is what the variable was to
    hold: a URL (with a database password or a webhook's token) or a token (Discord's are three
    dot-separated parts). An error does not repeat such a value."""
    return (_URL_SCHEME.match(value) is not None
            or re.fullmatch(r"[\w-]{10,}\.[\w-]{3,}\.[\w-]{10,}", value) is not None)


def _env_ref_problem(value: str, example: str) -> str:
    """Why ``value`` (beginning "env:") is not "env:VAR"; ``example`` is a variable's name the
    key would take."""
    if _secret_like(value.removeprefix("env:").strip()):
        return (f"'env:' is followed by what looks like a URL or a token itself (not shown): "
                f"put it in an environment variable and write its name, such as 'env:{example}'")
    return f"{value!r} is not 'env:VAR' with a variable name"


class StorageConfig(_Strict):
    """Where articles, the outbox and run-time state live: an SQLite file (``path``, the
    default) or a PostgreSQL database (``url``: ``"postgresql://…"``, or ``"env:VAR"`` naming
    a variable that holds one, so a password stays out of the file)."""

    path: str = "newswatch.db"
    url: str | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        # A database URL here was taken for a file name: `search` said "no database at
        # <folder>/postgresql:/user:<password>@host/db" and `run` made folders of it. The
        # value is not repeated: it may hold a password.
        bare = value.strip()
        if not bare:
            # "   " made a database file named three spaces beside the config; "" named the
            # config's folder itself.
            raise ValueError("is empty; it names the SQLite file (e.g. \"newswatch.db\")")
        # (a URL after "env:" too: the URL itself, where its variable's name was meant)
        scheme = _URL_SCHEME.match(bare.removeprefix("env:"))
        if scheme is not None:
            if scheme[1].lower() in ("postgresql", "postgres"):
                raise ValueError("a PostgreSQL URL goes in [storage] url, not path (path names "
                                 "an SQLite file)")
            raise ValueError(f"is a URL ({scheme[1]}://…); path names an SQLite file "
                             "(e.g. \"newswatch.db\"), and [storage] url a PostgreSQL database")
        if _ENV_REF.fullmatch(bare):
            raise ValueError(f"'{bare}' names a variable: that form is [storage] url's (a "
                             "PostgreSQL URL held in the environment), not path's")
        return usable_path(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        value = value.strip()
        if value.startswith("env:"):
            if not _ENV_REF.fullmatch(value):
                raise ValueError(_env_ref_problem(value, "DATABASE_URL"))
            return value
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("expected a 'postgresql://…' URL or 'env:VAR'")
        problem = _pg_url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    def target(self, resolve: Callable[[str], Path],
               env: Mapping[str, str] | None = None) -> str:
        """The database to open: the PostgreSQL URL (read from its variable for ``env:``),
        else the SQLite file's path (``resolve`` makes it absolute). Raises ConfigError for
        an ``env:`` variable that is unset or holds no PostgreSQL URL."""
        if self.url is None:
            return str(resolve(self.path))
        if not self.url.startswith("env:"):
            return self.url
        var = self.url.removeprefix("env:")
        value = (os.environ if env is None else env).get(var, "").strip()
        if not value.startswith(("postgresql://", "postgres://")):
            why = "is not set" if not value else "does not hold a 'postgresql://…' URL"
            raise ConfigError([ConfigIssue("storage.url", f"${var} {why}")])
        problem = _pg_url_problem(value)
        if problem is not None:
            raise ConfigError([ConfigIssue("storage.url", f"${var}: {problem}")])
        return value


def _pg_url_problem(url: str) -> str | None:
    problem = url_parts_problem(url)
    if problem is None and urlsplit(url).netloc.count("@") > 1:
        # The driver splits at the first '@', this URL's readers at the last: the password's
        # tail was taken for the host, and the error named a host never dialled.
        problem = "its user or password holds an '@': write it as %40"
    return None if problem is None else f"not a valid PostgreSQL URL ({problem})"


class DiscordConfig(_Strict):
    # The environment variable that holds the bot's token: a name as a shell writes one
    # ("" or "MY TOKEN" was taken, and run said there was no token "in $").
    token_env: str = "DISCORD_TOKEN"
    guild_ids: list[int] = Field(default_factory=list)
    admin_role: int | str | None = None
    api_base: str | None = None
    gateway_url: str | None = None
    notices: str | None = None  # route that receives operational notices (paused sources …)
    # Alerts at or above this severity carry "Acknowledge" and "Not relevant" buttons ("none":
    # no buttons, and so no escalation).
    ack_from: Literal["info", "low", "medium", "high", "critical", "none"] = "high"
    # An unacknowledged critical alert re-pings escalation_role once after this long (no
    # escalation_role: no re-ping).
    escalate_after: Duration = Field(default=timedelta(minutes=15), strict=False)
    escalation_role: DiscordId | None = None
    # How many rules one server may add from Discord (the config file's are not counted).
    max_rules_per_server: int = Field(default=50, ge=0, le=10_000)
    # How many sources one server may follow from Discord (the config file's are not counted).
    max_sources_per_server: int = Field(default=50, ge=0, le=10_000)
    # Lookups (/search, /trend, /rules test …) one member, and one server, may run at once;
    # more are refused at once, so nobody's burst of expensive queries queues everyone's.
    lookups_per_member: int = Field(default=2, ge=1, le=100)
    lookups_per_server: int = Field(default=4, ge=1, le=1000)

    @field_validator("escalate_after")
    @classmethod
    def _escalate_after(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=1):
            raise ValueError("escalate_after must be at least 1m")
        return value

    @field_validator("token_env")
    @classmethod
    def _variable_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            if _secret_like(value.strip()):
                # The token itself, pasted here: not repeated.
                raise ValueError("holds what looks like the token itself (not shown): the "
                                 "token goes in an environment variable, and token_env names "
                                 "that variable, such as DISCORD_TOKEN")
            raise ValueError(f"{value[:60]!r} is not an environment variable's name (letters, "
                             "digits and '_', not starting with a digit), such as DISCORD_TOKEN")
        return value

    @field_validator("guild_ids", "admin_role")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        # -1, 0 or a number past 64 bits passed `check` as a server or a role.
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, int) and (problem := _id_problem(v)) is not None:
                raise ValueError(problem)
        if isinstance(value, str):
            if _secret_like(value.strip()):
                # The bot's token (or a webhook's URL) pasted here was repeated in the error.
                raise ValueError("holds what looks like a token or a URL (not shown): "
                                 "admin_role is a role's id or its name")
            # admin_role by name: a role's id in quotes was taken for a name no role has, and
            # its members were refused every admin command, with `check` saying ok.
            if value.strip().isdigit():
                raise ValueError(f"{value!r} is a role's id in quotes: write it without quotes "
                                 f"({value.strip()}), or give the role's name")
            if value != value.strip() or not value:
                raise ValueError(f"{value!r}: a role's name, without spaces at its ends")
        return value

    @field_validator("api_base", "gateway_url")
    @classmethod
    def _endpoint(cls, value: str | None, info: ValidationInfo) -> str | None:
        # "nonsense" passed `check` and failed at `run` ("cannot reach Discord: nonsense/…");
        # a user and password in the URL ended `run` with a traceback from the HTTP client,
        # which will not send them beside the bot's own Authorization.
        if value is None:
            return value
        schemes = ("http", "https") if info.field_name == "api_base" else ("ws", "wss")
        try:
            parts = urlsplit(value.strip())
            parts.port  # noqa: B018 - raises on a port that is no number
        except ValueError as exc:
            raise ValueError(f"is not a URL ({exc})") from None
        if parts.scheme.lower() not in schemes or not parts.hostname:
            article = "an" if schemes[0] == "http" else "a"
            raise ValueError(f"must be {article} {' or '.join(s + '://' for s in schemes)} URL "
                             "with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not hold a user name or password (the bot's token is its "
                             "credential)")
        return value.strip()


class FetchConfig(_Strict):
    allow_private: list[str] = Field(default_factory=list)
    timeout: Duration = Field(default=timedelta(seconds=20), strict=False)
    connect_timeout: Duration = Field(default=timedelta(seconds=10), strict=False)
    # how long one fetch may wait in all for a free connection to its host (a host's feeds
    # share a few): running out is "queued too long", not the source's failure
    queue_wait: Duration = Field(default=timedelta(seconds=30), strict=False)
    # the largest answer a fetch reads: bytes, or a size such as "5MiB" (as max_file_size)
    max_bytes: int = Field(default=5 * 1024 * 1024, gt=0, strict=False)
    pause_after: int = Field(default=10, ge=1)  # consecutive failures before a source pauses
    # how often a paused source is tried again
    probe_every: Duration = Field(default=timedelta(hours=1), strict=False)

    @field_validator("max_bytes", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int:
        from watchers.sources.folder import config_size

        return config_size(value, "5242880, '512KB' or '5MiB'")

    @field_validator("allow_private")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        bad = []
        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                bad.append(repr(net))
        if len(bad) == 1:
            raise ValueError(f"{bad[0]} is not an IP network such as '10.1.2.0/24'")
        if bad:  # every one named, not the first alone
            raise ValueError(f"{', '.join(bad[:-1])} and {bad[-1]} are not IP networks such as "
                             "'10.1.2.0/24'")
        return value


# Each source type's config model lives in its module (watchers/sources/<type>.py); the config
# still offers every name, so `from watchers.config import FeedSourceConfig` keeps working.
from watchers.sources import SourceConfig as SourceConfig  # noqa: E402
from watchers.sources.feed import FeedSourceConfig  # noqa: E402
from watchers.sources.folder import FolderSourceConfig  # noqa: E402
from watchers.sources.page import PageSourceConfig  # noqa: E402

TemplateStyle = Literal["embed", "text"]


def _check_template(value: str | None) -> str | None:
    from watchers.templates import check_template

    if value is not None:
        problems = check_template(value)
        if problems:
            raise ValueError("; ".join(problems))
    return value


# A message format (see watchers.templates), checked when the config is read.
Template = Annotated[str | None, AfterValidator(_check_template)]


class RuleConfig(_Strict):
    name: str = Field(min_length=1, max_length=64)
    query: str = Field(min_length=1)
    channel: str = "alerts"
    severity: Severity = "medium"
    mention_role: DiscordId | None = None
    # Who the alert mentions besides mention_role: only these roles and users are ever pinged
    # (never @everyone or @here; Discord takes at most 100 ids of each).
    mention_roles: list[int] = Field(default_factory=list, max_length=100)
    mention_users: list[int] = Field(default_factory=list, max_length=100)
    threshold: int | None = Field(default=None, ge=50, le=100)
    enabled: bool = True
    # Corroboration: the alert waits until this many distinct outlets have reported the story
    # (within [stories] window), then posts once naming them all.
    min_sources: int = Field(default=1, ge=1, le=50)
    # Surge alerts for this rule (None: the [surge] default).
    surge: bool | None = None
    # Set by the engine, never by a file: "store" for rules added at run time (Discord).
    origin: Literal["config", "store"] = "config"
    created_by: str | None = None
    # The server (Discord guild) the rule belongs to; None: the config file's, for every server.
    guild_id: int | None = Field(default=None, gt=0)
    # The alert's own format (see watchers.templates); it wins over the route's.
    template: Template = None
    template_style: TemplateStyle = "embed"

    @property
    def key(self) -> str:
        """The rule's identity inside newswatch (matches, mutes, the stored rules): its name for
        the config file's rules, ``"<guild id>:<name>"`` for a server's, so two servers can each
        have a rule of the same name. People see ``name``."""
        return self.name if self.guild_id is None else f"{self.guild_id}:{self.name}"

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        # Python's \w, not pydantic's regex engine's, which takes zero-width joiners: "kyiv\u200d"
        # would sit beside "kyiv", the same in every list. (A pattern on the field answered "my
        # rule" with "String should match pattern '^[\w.-]+$'".)
        if not re.fullmatch(r"[\w.-]+", value):
            raise ValueError("a rule's name is letters, digits, '.', '_' or '-', with no "
                             "spaces or invisible characters")
        return value

    @field_validator("query")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            # Kept with the rule's alerts, it stopped run on PostgreSQL (which keeps no NUL),
            # and a copy of the store to it; no word of a query holds one.
            raise ValueError("the query holds a NUL character (\\u0000)")
        return value

    @field_validator("mention_roles", "mention_users")
    @classmethod
    def _mention_ids(cls, value: list[int]) -> list[int]:
        for v in value:
            _discord_id(v)
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _mentions_fit(self) -> RuleConfig:
        # An alert spells its mentions out in its message's content, which has room for
        # MENTION_ROOM characters of them at the least (a text alert's text takes the rest).
        # 45 roles and a user passed here, and their alert left out 4 roles and the user,
        # with no word: a rule whose own mentions can never all fit is refused instead.
        from watchers.templates import MENTION_ROOM, mention, mentions_length

        roles = list(dict.fromkeys(
            [*([self.mention_role] if self.mention_role else []), *self.mention_roles]))
        users = self.mention_users
        need = mentions_length(roles, users)
        if need <= MENTION_ROOM:
            return self
        fit, used = 0, -1  # how many of these ids fit, the shortest first
        for size in sorted([len(mention(i, role=True)) for i in roles]
                           + [len(mention(i, role=False)) for i in users]):
            if used + 1 + size > MENTION_ROOM:
                break
            fit, used = fit + 1, used + 1 + size
        raise ValueError(
            f"rule {self.name!r} mentions {len(roles)} role(s) and {len(users)} user(s), "
            f"{need} characters spelt out in the alert, but an alert's message has room for "
            f"{MENTION_ROOM} characters of mentions: this rule may mention at most {fit} of "
            "these (mention_role, mention_roles and mention_users together); mention a role "
            "that holds the others instead")


def _alias_word(value: str) -> str:
    # the rules' own word key and words (not at import: start-up)
    from watchers.rules.text import key, query_words

    bare = value.strip()
    if not key(bare) or " " in bare:
        raise ValueError(f"an alias must be a single word, not {value!r}")
    # A text is matched by its words, as the tokenizer finds them: an alias that is no such word
    # ("kiew*", "kyiv~", "!!!") passed and never matched anything, its word in a text being
    # "kiew" or "kyiv" and its key not.
    if [k for k, _ in query_words(bare)] != [key(bare)]:
        shown = ascii(bare[:40]) if not bare[:40].isprintable() else repr(bare[:40])
        raise ValueError(f"{shown} is not a word as texts are read (letters and digits, joined "
                         "by an apostrophe or a hyphen), so it never matches: aliases are "
                         "plain words, not query syntax (no *, ~ or quotes)")
    return value


# One word of an [aliases] group, as the rule engine takes it (it refused others at start).
AliasWord = Annotated[str, AfterValidator(_alias_word)]


def _positive_channel(value: int | str) -> int | str:
    if isinstance(value, int) and not 0 < value < _ID_LIMIT:
        raise ValueError(f"a channel id is a positive number of at most 64 bits (a Discord "
                         f"id), not {value}")
    if isinstance(value, str) and value.strip().startswith("env:") and not _ENV_REF.fullmatch(
            value.strip()):
        # "env:" passed, and check then warned that "$ is not set".
        raise ValueError(_env_ref_problem(value.strip(), "ALERTS_WEBHOOK"))
    return value


ChannelRef = Annotated[int | str, AfterValidator(_positive_channel)]
StoriesMode = Literal["edit", "thread", "off"]


class ServerRoute(_Strict):
    """A route a server made by picking a channel in Discord (``/rules add channel:``).

    It belongs to that server: only its rules may name it (``RuleConfig.channel`` holds
    ``key``), so a server's alerts can only land in its own channels. It takes a route's
    default settings (``route``)."""

    guild_id: int = Field(gt=0)
    name: str = Field(min_length=1, max_length=100)
    channel_id: int = Field(gt=0)
    created_by: str | None = None
    # The route's settings as the server set them (``/channels set``; the target is always the
    # channel); None: a route's defaults.
    settings: RouteConfig | None = None

    @property
    def key(self) -> str:
        """The route's identity: ``"<guild id>:<name>"`` (a config route's name has no ':')."""
        return f"{self.guild_id}:{self.name}"

    @property
    def route(self) -> RouteConfig:
        if self.settings is not None:
            return self.settings.model_copy(update={"target": self.channel_id})
        return RouteConfig(target=self.channel_id)


_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$", re.ASCII)


def _clock_time(value: str, what: str) -> str:
    if not isinstance(value, str) or not _CLOCK.match(value.strip()):
        raise ValueError(f"{what} {value!r} is not a time of day such as '08:00'")
    return value.strip()


_OFFSET = re.compile(r"(?:UTC|GMT)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?", re.ASCII | re.I)


@functools.cache
def _zone_names() -> frozenset[str]:
    """The zone names of places (and of fixed offsets such as 'Etc/GMT-3')."""
    from zoneinfo import available_timezones

    return frozenset(available_timezones()) - {"localtime", "Factory", "posixrules"}


def _offset_hint(value: str) -> str:
    """What to write instead of an unknown zone name; for an offset ("UTC+3"), the zone that
    is that offset all year, as the Etc names spell it backwards ("Etc/GMT+3" is UTC-3, and
    quiet hours set with it ran six hours off)."""
    found = _OFFSET.fullmatch(value.strip())
    if found is None:
        return "use an IANA name such as 'Europe/Kyiv' or 'UTC'"
    sign, hours, minutes = found[1], int(found[2]), int(found[3] or 0)
    hint = ("a zone is named by its place, such as 'Europe/Kyiv' (which follows its daylight "
            "saving), not by an offset")
    if not minutes and not hours:
        hint += "; UTC itself is 'UTC'"
    elif not minutes and hours <= (14 if sign == "+" else 12):
        west = "+" if sign == "-" else "-"
        hint += f"; the zone that is UTC{sign}{hours} all year is 'Etc/GMT{west}{hours}'"
        if hours <= 12:  # (there is no 'Etc/GMT+13': only the east goes past twelve)
            hint += (f" (those names count the other way: 'Etc/GMT{sign}{hours}' is "
                     f"UTC{west}{hours})")
    return hint


class RouteConfig(_Strict):
    """A route in table form: its destination plus how and when it speaks.

    ``stories``: a later article of a story already posted on this route edits that message
    (``edit``), becomes a line in a thread on it (``thread``), or posts as an alert of its own
    (``off``). ``mode = "digest"`` collects alerts into one message posted every
    ``digest_every`` or at the ``digest_at`` times of day (in ``timezone``); ``quiet_hours``
    ("22:00-07:00") keeps alerts below ``break_through`` for a digest when they end (on a
    digest route, a digest due in them waits until they end);
    ``max_per_hour`` folds alerts past the cap into a digest when the hour rolls over. Nothing
    is ever dropped: what waits is ``scheduled``."""

    target: ChannelRef
    stories: StoriesMode = "edit"
    mode: Literal["immediate", "digest"] = "immediate"
    digest_every: Duration | None = Field(default=None, strict=False)
    digest_at: list[str] = Field(default_factory=list)
    timezone: str = "UTC"
    quiet_hours: str | None = None
    break_through: Severity = "critical"
    max_per_hour: int | None = Field(default=None, ge=1, le=10_000)
    # The format of this route's alerts unless their rule has one (see watchers.templates).
    template: Template = None
    template_style: TemplateStyle = "embed"

    @field_validator("digest_at")
    @classmethod
    def _times(cls, value: list[str]) -> list[str]:
        return sorted({_clock_time(v, "digest time") for v in value})

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe", a folder
            raise ValueError(f"unknown time zone {value!r}; " + _offset_hint(value)) from None
        if value != "UTC" and value not in _zone_names():
            # The zone database's copies of a place's zone are that place: "posix/Europe/
            # Berlin" is the same file, and "right/Europe/Berlin" (the one with leap seconds,
            # which Python reads as summer time all year from 2026: quiet hours an hour off
            # all winter) was meant as it.
            place = value.partition("/")[2]
            if value.startswith(("posix/", "right/")) and place in _zone_names():
                return place
            # A file that names no place: "posixrules" (New York), "localtime" (whatever the
            # host's zone is), "Factory".
            raise ValueError(f"{value!r} is no time zone of a place; "
                             "use an IANA name such as 'Europe/Kyiv' or 'UTC'")
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, value: str | None) -> str | None:
        if value is None:
            return None
        start, sep, end = value.partition("-")
        if not sep:
            raise ValueError(f"quiet hours {value!r} should look like '22:00-07:00'")
        start, end = _clock_time(start, "quiet hours start"), _clock_time(end, "quiet hours end")
        if start == end:
            raise ValueError(f"quiet hours {value!r} start and end at the same time")
        return f"{start}-{end}"

    @model_validator(mode="after")
    def _digest_needs_a_schedule(self) -> RouteConfig:
        if self.mode == "digest" and not self.digest_every and not self.digest_at:
            raise ValueError("a digest route needs digest_every (e.g. '1h') or digest_at "
                             "(e.g. ['08:00', '18:00'])")
        if self.digest_every is not None and self.digest_every < timedelta(minutes=1):
            raise ValueError("digest_every must be at least 1m")
        if self.mode != "digest" and (self.digest_every is not None or self.digest_at):
            raise ValueError("digest_every and digest_at are used only with mode = 'digest' "
                             "(without it this route sends its alerts at once): set the mode "
                             "too, or leave them out")
        return self

    def ignored(self) -> list[str]:
        """The settings this route has that its mode makes do nothing, as a sentence each
        (``newswatch check`` and the start-up log say them; ``/channels set`` refuses them):
        ``max_per_hour`` on a digest route, which keeps everything for its digest."""
        if self.mode == "digest" and self.max_per_hour:
            return ["max_per_hour does nothing on a digest route (everything waits for its "
                    "digest)"]
        return []


def _route_form(value: Any) -> str:
    return "route-table" if isinstance(value, dict | RouteConfig) else "route-ref"


# A route is a plain reference or a table; the tag picks the form so an error names the key
# that is wrong in the form the user wrote, not every alternative of the union.
RouteEntry = Annotated[
    Annotated[ChannelRef, Tag("route-ref")] | Annotated[RouteConfig, Tag("route-table")],
    Discriminator(_route_form),
]


class SurgeConfig(_Strict):
    """Surge alerts: a rule whose matches in the last hour reach ``min_count`` and exceed its
    baseline (the same hour over ``days`` days, or a rolling day when its history is short) by
    ``sigma`` standard deviations posts one surge alert on its route, then waits ``cooldown``.
    ``enabled`` is the default for rules that do not set ``surge``."""

    enabled: bool = False
    sigma: float = Field(default=3.0, gt=0, le=20, allow_inf_nan=False)
    min_count: int = Field(default=10, ge=1, le=100_000)
    days: int = Field(default=14, ge=2, le=90)
    cooldown: Duration = Field(default=timedelta(hours=3), strict=False)


class StoriesConfig(_Strict):
    """Grouping articles into stories: an article joins a story whose articles it matches
    within ``window``; a rule's ``min_sources`` wait ends (uncorroborated) after it."""

    window: Duration = Field(default=timedelta(hours=48), strict=False)


class Config(_Strict):
    storage: StorageConfig = StorageConfig()
    discord: DiscordConfig = DiscordConfig()
    fetch: FetchConfig = FetchConfig()
    channels: dict[str, RouteEntry] = Field(default_factory=dict)
    stories: StoriesConfig = StoriesConfig()
    surge: SurgeConfig = SurgeConfig()
    aliases: dict[AliasWord, list[AliasWord]] = Field(default_factory=dict)
    threshold: int = Field(default=85, ge=50, le=100)
    sources: list[SourceConfig] = Field(default_factory=list)
    rules: list[RuleConfig] = Field(default_factory=list)
    # Where the file was read from; relative paths in it resolve against this folder.
    base_dir: Path = Field(default=Path("."), exclude=True)

    @property
    def targets(self) -> dict[str, ChannelRef]:
        """Each route's destination (a channel id, a webhook URL or ``env:VAR``), whichever
        form the route was written in."""
        return {name: ref.target if isinstance(ref, RouteConfig) else ref
                for name, ref in self.channels.items()}

    @property
    def routes(self) -> dict[str, RouteConfig]:
        """Every route in [channels] with its settings (defaults for the short form)."""
        return {name: r for name in self.channels if (r := self.route(name)) is not None}

    def ignored_settings(self) -> list[str]:
        """What the routes set that their mode makes do nothing (``channels.NAME: ...``), for
        ``newswatch check`` and the start-up log: accepted, since a setting a mode ignores is
        no error, but said. A ``break_through`` the file writes on a digest route is one (it
        has a default, so only the file can tell it was written)."""
        out = []
        for name, route in self.routes.items():
            out += [f"channels.{name}: {why}" for why in route.ignored()]
            if route.mode == "digest" and "break_through" in route.model_fields_set:
                out.append(f"channels.{name}: break_through does nothing on a digest route "
                           "(everything waits for its digest; quiet hours hold the digest)")
        return out

    def route(self, name: str) -> RouteConfig | None:
        """A route's settings (defaults for the short form); None if it is not defined."""
        ref = self.channels.get(name)
        if ref is None or isinstance(ref, RouteConfig):
            return ref
        return RouteConfig(target=ref)

    def stories_mode(self, name: str) -> StoriesMode:
        """How the route shows stories; a route without a [channels] entry (the console)
        follows stories by editing, like the default."""
        route = self.route(name)
        return route.stories if route is not None else "edit"

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)


_KEY_SHOWN = 60  # characters of a key that an error shows


def _key_shown(key: str) -> str:
    """A key as an error's place names it: an empty one as "" (it made "aliases..[key]"), a
    URL or a token written as a key not at all (a webhook's token was shown), a long one cut."""
    if not key:
        return '""'
    if _secret_like(key.strip()):
        return "(a key that looks like a URL or a token, not shown)"
    return key if len(key) <= _KEY_SHOWN else key[: _KEY_SHOWN - 1] + "…"


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    prev: int | str | None = None
    for prev, part in zip((None, *loc), loc, strict=False):
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("folder", "feed", "page") and out.endswith("]"):
            continue  # the discriminator tag pydantic adds for tagged unions
        elif part in ("route-ref", "route-table") or (
                part in ("int", "str") and prev == "route-ref"):
            continue  # the form of a [channels] entry (see RouteEntry)
        elif part == "[key]":
            continue  # pydantic's mark of an error in a table's key: the key is the place
        else:
            name = _key_shown(str(part))  # a key of any length, shown in a line of an error
            out += f".{name}" if out else name
    return out


def _models_at(loc: tuple[int | str, ...], root: type[BaseModel] | None = None
               ) -> list[type[BaseModel]]:
    """The config models a key path (pydantic's ``loc``) leads to from ``root`` (default
    :class:`Config`): list items, dict values, unions and their tags followed (several where a
    union is not yet told apart)."""
    kinds: list[Any] = [root or Config]
    for part in loc:
        nxt: list[Any] = []
        for kind in _unwrapped(kinds):
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                field = kind.model_fields.get(str(part))
                if field is not None:
                    nxt.append(field.annotation)
            elif get_origin(kind) in (list, tuple) and isinstance(part, int):
                nxt.extend(get_args(kind)[:1])
            elif get_origin(kind) is dict and isinstance(part, str):
                nxt.extend(get_args(kind)[1:2])
        if not nxt:  # a union's tag ("feed", "route-table"): the same place, told apart
            models = [k for k in _unwrapped(kinds) if isinstance(k, type)
                      and issubclass(k, BaseModel)]
            tagged = [k for k in models if _type_tag(k) == part]
            nxt = tagged or models
        kinds = nxt
    return [k for k in _unwrapped(kinds) if isinstance(k, type) and issubclass(k, BaseModel)]


def _unwrapped(kinds: list[Any]) -> list[Any]:
    """Annotations with Annotated, unions and Optional taken apart."""
    out: list[Any] = []
    todo = list(kinds)
    while todo:
        kind = todo.pop(0)
        origin = get_origin(kind)
        if origin is Annotated:
            todo.insert(0, get_args(kind)[0])
        elif origin in (Union, UnionType):
            todo[:0] = list(get_args(kind))
        elif kind is not type(None):
            out.append(kind)
    return out


def _type_tag(model: type[BaseModel]) -> object:
    """The ``type`` a model of a tagged union takes: its default, or its one literal."""
    field = model.model_fields.get("type")
    if field is None:
        return None
    if get_origin(field.annotation) is Literal and len(get_args(field.annotation)) == 1:
        return get_args(field.annotation)[0]
    return field.default


def _unknown_key(loc: tuple[int | str, ...], root: type[BaseModel] | None = None) -> str:
    """"unknown key", with the nearest key the place takes (a misspelling) or the keys it
    takes."""
    import difflib  # local: only a config with a wrong key needs it

    known = sorted({name for model in _models_at(loc[:-1], root) for name in model.model_fields
                    if name not in INTERNAL_KEYS and name != "base_dir"})
    if not known:
        return "unknown key"
    near = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.7)
    if near:
        return f"unknown key (did you mean {near[0]!r}?)"
    if len(known) <= 16:  # a rule's keys, the most of any place
        return f"unknown key (expected one of: {', '.join(known)})"
    return "unknown key"


# What a value of the wrong type should have been, by the error's type.
_WANTED: Final = {
    "bool_type": "a boolean (true or false)",
    "int_type": "a whole number",
    "float_type": "a number",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}
# The last part pydantic adds to a key path for each member of a plain union (``int | str``),
# with the error type that member reports.
_MEMBER_TAGS: Final = {"int": "int_type", "str": "string_type", "float": "float_type",
                       "bool": "bool_type"}
_VALUE_SHOWN = 40  # characters of a string value that an error shows


def _shown(value: object) -> str:
    """A value as an error names it, in TOML's words."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if _secret_like(value.strip()):
            # A bot token pasted as mention_role or guild_ids was shown, its first 39
            # characters (most of it); a webhook's URL its id and the start of its token.
            return "a string that looks like a URL or a token (not shown)"
        text = value if len(value) <= _VALUE_SHOWN else value[: _VALUE_SHOWN - 1] + "…"
        return f"the string {json.dumps(text, ensure_ascii=False)}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime):
        return "a date and time"
    if isinstance(value, date):
        return "a date"
    if isinstance(value, time):
        return "a time of day"
    return f"a value of type {type(value).__name__}"


# How TOML writes a whole number and a number, unquoted.
_TOML_INT = re.compile(r"[+-]?\d[\d_]*")
_TOML_FLOAT = re.compile(r"[+-]?\d[\d_]*(\.\d[\d_]*)?([eE][+-]?\d+)?")


def _wrong_type(wanted: list[str], value: object) -> str:
    """``expected a whole number, got the string "90" (…)``: what a key takes and what it was
    given, and how to write it when the value only needs its quotes taken away or added."""
    said = f"expected {' or '.join(wanted)}, got {_shown(value)}"
    bare = value.strip() if isinstance(value, str) else None
    if bare is not None and wanted == [_WANTED["bool_type"]] and bare in ("true", "false"):
        return f"{said} (write {bare} without quotes)"
    if bare is not None and (
            (wanted == [_WANTED["int_type"]] and _TOML_INT.fullmatch(bare))
            or (wanted == [_WANTED["float_type"]] and _TOML_FLOAT.fullmatch(bare))):
        return f"{said} (write it without quotes: {bare})"
    if isinstance(value, time) and wanted == [_WANTED["string_type"]]:
        clock = value.strftime("%H:%M:%S" if value.second else "%H:%M")
        return f'{said} (write it in quotes: "{clock}")'
    return said


def pydantic_issues(err: ValidationError, root: type[BaseModel] | None = None
                    ) -> list[ConfigIssue]:
    """Pydantic's errors as config issues with key paths and plain messages (``root``: the
    model validated, default :class:`Config`). A value of the wrong type is one issue naming
    what the key takes, every alternative of a union in it."""
    issues: list[ConfigIssue] = []
    wrong: dict[str, tuple[int, list[str]]] = {}  # key path: its issue's index, types taken
    for e in err.errors():
        msg = e["msg"]
        wanted = _WANTED.get(e["type"])
        if wanted is not None:
            loc = tuple(e["loc"])
            if loc and _MEMBER_TAGS.get(str(loc[-1])) == e["type"]:
                loc = loc[:-1]  # one member of a union: the key is the union's
            path = _loc(loc)
            at, kinds = wrong.setdefault(path, (len(issues), []))
            if wanted not in kinds:
                kinds.append(wanted)
            issue = ConfigIssue(path, _wrong_type(kinds, e["input"]))
            if at == len(issues):
                issues.append(issue)
            else:
                issues[at] = issue
            continue
        if e["type"] == "literal_error" and not isinstance(e["input"], str):
            # `severity = 3`: one of the words it takes, and not a number
            expected = (e.get("ctx") or {}).get("expected", "")
            msg = f"expected {expected}, got {_shown(e['input'])}"
        elif e["type"] == "extra_forbidden":
            msg = _unknown_key(tuple(e["loc"]), root)
        elif e["type"] == "union_tag_invalid":
            # The input is the whole table; the tag is what was wrong, at its own key.
            tag = (e.get("ctx") or {}).get("tag", e["input"])
            issues.append(ConfigIssue(_loc((*e["loc"], "type")),
                                      f"unknown source type {tag!r}; expected 'folder', "
                                      "'feed' or 'page'"))
            continue
        elif e["type"] == "missing":
            # pydantic's "Field required" named no key of a config file
            msg = "missing: this key is required here"
        elif e["type"] == "union_tag_not_found":
            msg = "missing 'type' ('folder', 'feed' or 'page')"
        elif msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
        issues.append(ConfigIssue(_loc(tuple(e["loc"])), msg))
    return issues


# Keys of rules and sources newswatch sets itself (where a rule or source came from, who added
# it, its server): refused in a file and in what is added at run time.
INTERNAL_KEYS: Final = ("origin", "created_by", "guild_id")



def _below(limit: int) -> str:
    """A pattern of the whole numbers from 1 to ``limit - 1`` in ASCII digits, with no leading
    zero: for each digit of the largest, the numbers that agree before it and are smaller
    there, then the largest itself."""
    top = str(limit - 1)
    shorter = f"[1-9][0-9]{{0,{len(top) - 2}}}"
    alternatives = [shorter]
    for i, digit in enumerate(top):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            alternatives.append(f"{top[:i]}[{low}-{int(digit) - 1}][0-9]{{{len(top) - i - 1}}}")
    alternatives.append(top)
    return "(?:" + "|".join(alternatives) + ")"


# A Discord webhook's URL, as a route's target gives it (and as the bot's sinks post to it):
# ID and TOKEN captured. A looser pattern passed `check` with URLs `run` then refused. The id is
# a Discord id, in ASCII digits: webhook 0, one past 64 bits, and "/webhooks/١٢٣/" (Arabic-Indic
# digits, which int() reads as 123) passed, and Discord refused every post to them.
WEBHOOK_URL: Final = re.compile(
    rf"^https?://[^/]+/api/(?:v[0-9]+/)?webhooks/({_below(_ID_LIMIT)})/([\w-]+)/?$", re.ASCII)


def _duplicate_rule(name: str, first: int, first_name: str) -> str:
    """What a second rule of ``name`` is told; names are compared without case (Discord's
    forum tags and a team's eyes take "Kyiv" and "kyiv" for one rule)."""
    if first_name == name:
        return f"duplicate rule name {name!r} (first at rules[{first}])"
    return (f"duplicate rule name {name!r} (first at rules[{first}] as {first_name!r}; rule "
            "names are compared without case)")


def _semantic_issues(cfg: Config, *, watching: bool = True) -> list[ConfigIssue]:
    from watchers.rules import parse  # local: keeps config importable while rules load
    from watchers.sources.base import printable

    issues: list[ConfigIssue] = []
    seen: dict[str, int] = {}
    for i, rule in enumerate(cfg.rules):
        if (first := seen.get(rule.name.casefold())) is not None:
            issues.append(ConfigIssue(f"rules[{i}].name", _duplicate_rule(
                rule.name, first, cfg.rules[first].name)))
        seen.setdefault(rule.name.casefold(), i)
        try:
            parse(rule.query)
        except QuerySyntaxError as exc:
            issues.append(ConfigIssue(f"rules[{i}].query", _in_rule(exc, rule.name)))
    # Every route named (a rule's channel; where notices go: a misspelt one passed `check`,
    # and the notices reached no channel) is one [channels] defines, once it defines any.
    named: list[tuple[str, str | None]] = [
        (f"rules[{i}].channel", rule.channel) for i, rule in enumerate(cfg.rules)]
    named += [("discord.notices", cfg.discord.notices)]
    named += [(f"sources[{i}].route", src.route) for i, src in enumerate(cfg.sources)]
    # A blank or unprintable route name is refused wherever it is named, [channels] or not
    # (without [channels] a rule's channel="" passed, and check listed a route with no name).
    odd = {where: problem for where, route in named
           if route is not None and (problem := _odd_route_name(route))}
    issues += [ConfigIssue(where, problem) for where, problem in odd.items()]
    if cfg.channels:
        known = ", ".join("(a name that looks like a URL or a token, not shown)"
                          if _secret_like(c.strip()) else printable(c, 100)
                          for c in sorted(cfg.channels))
        issues += [ConfigIssue(where, f"unknown channel {route!r}; [channels] defines: {known}")
                   for where, route in named
                   if route is not None and route not in cfg.channels and where not in odd]
    from watchers.sources.feed import MIN_EVERY, FeedSourceConfig
    from watchers.sources.folder import MIN_LOOK, FolderSourceConfig

    # A folder too: every = "1ms" (a slip for "1m") kept a core busy looking at five files.
    issues += [ConfigIssue(f"sources[{i}].every",
                           f"a {src.type} is {'read' if is_folder else 'polled'} at most every "
                           f"{least.total_seconds():g} s, not every "
                           f"{src.every.total_seconds():g} s (did you mean minutes: 'm'?)")
               for i, src in enumerate(cfg.sources)
               if ((is_folder := isinstance(src, FolderSourceConfig))
                   or isinstance(src, FeedSourceConfig))
               and src.every < (least := MIN_LOOK if is_folder else MIN_EVERY)]
    from watchers.errors import FetchBlockedError
    from watchers.sources._guard import check_url

    if watching and not cfg.sources and not cfg.rules:
        issues.append(ConfigIssue("", "no [[sources]] and no [[rules]]: nothing to watch "
                                  "(see config.example.toml)"))
    names: dict[str, int] = {}
    for i, src in enumerate(cfg.sources):
        url = getattr(src, "url", None)
        if isinstance(url, str):
            try:
                check_url(url, cfg.fetch.allow_private)
            except FetchBlockedError as exc:
                issues.append(ConfigIssue(f"sources[{i}].url", str(exc)))
        folder = getattr(src, "path", None)
        # Only to watch: a folder not there (a share mounted late) stopped every command,
        # searches and imports included, which read and fill the store alone.
        if (watching and src.enabled and isinstance(folder, str)
                and not cfg.resolve(folder).is_dir()):
            absent = cfg.resolve(folder)
            issues.append(ConfigIssue(f"sources[{i}].path",
                                      f"not a folder: {absent}" if absent.exists()
                                      else f"no such folder: {absent}"))
        if src.name.startswith("@"):
            issues.append(ConfigIssue(f"sources[{i}].name", "a source name may not start with "
                                      "'@' (it marks the feeds servers follow from Discord)"))
        if src.name in names:
            issues.append(
                ConfigIssue(f"sources[{i}].name", f"duplicate source name {src.name!r} "
                            f"(first at sources[{names[src.name]}])")
            )
        names.setdefault(src.name, i)
    for key, entry in cfg.channels.items():
        # (a name shown in an issue's place with its invisible characters escaped; a URL or a
        # token written as the name, not at all)
        at = f"channels.{_key_shown(key) if _secret_like(key.strip()) else printable(key, 100)}"
        if _secret_like(key.strip()):
            issues.append(ConfigIssue(at, "a route's name may not be a URL or a token: name "
                                      "the route with a word and give the channel id, webhook "
                                      "URL or \"env:VAR\" as its value (alerts = \"https://…\")"))
        elif (problem := _odd_route_name(key)) is not None:
            issues.append(ConfigIssue(at, problem))
        elif ":" in key:
            issues.append(ConfigIssue(at, "a route name may not contain ':' "
                                      "(it marks the routes servers pick in Discord)"))
        elif key.startswith("#"):
            issues.append(ConfigIssue(at, "a route name may not start with "
                                      "'#' (Discord shows a server's picked channels so)"))
        ref = entry.target if isinstance(entry, RouteConfig) else entry
        where = at + (".target" if isinstance(entry, RouteConfig) else "")
        if isinstance(ref, str) and not (ref.startswith("env:") or WEBHOOK_URL.match(ref.strip())):
            issues.append(
                ConfigIssue(where, "expected a channel id, a webhook URL "
                            "(https://discord.com/api/webhooks/ID/TOKEN), or 'env:VAR' naming a "
                            "variable that holds one")
            )
    return issues


def routes_sent_to(cfg: Config) -> list[tuple[str, str]]:
    """Each route the config sends to, with the key that names it: an enabled rule's channel,
    [discord] notices, and an enabled source's route (a disabled rule or source sends
    nothing). With a bot token each needs a [channels] entry: ``newswatch run`` refuses to
    start without one, and ``newswatch check`` says so."""
    named = [(f"rules[{i}].channel", r.channel) for i, r in enumerate(cfg.rules) if r.enabled]
    if cfg.discord.notices is not None:
        named.append(("discord.notices", cfg.discord.notices))
    named += [(f"sources[{i}].route", s.route) for i, s in enumerate(cfg.sources)
              if s.enabled and s.route is not None]
    return named


def _odd_route_name(name: str) -> str | None:
    """Why ``name`` cannot name a route (blank; a control, line-break or direction
    character; a URL or a token), or None."""
    if not name.strip():
        return "a route name may not be empty or blank"
    if WEBHOOK_URL.match(name.strip()) or "/webhooks/" in name:
        # Written as a rule's channel, the webhook's URL was taken for a route's name and
        # printed whole, its token with it, by check and in errors.
        return ("is a webhook's URL (not shown), not a route's name: put the webhook under "
                "[channels] as a route (alerts = \"https://discord.com/api/webhooks/…\", or "
                "\"env:VAR\") and name that route here")
    if _secret_like(name.strip()):
        return ("looks like a URL or a token (not shown), not a route's name: a route is "
                "named under [channels], with its channel id, webhook or \"env:VAR\" as its "
                "value, and named here by that name")
    if not name.isprintable():
        return ("a route name may not hold control, line-break or direction characters (they "
                "forge or reorder what logs and /alerts status show)")
    return None


def _raw_query_issues(data: Mapping[str, Any], reported: set[str]) -> list[ConfigIssue]:
    """Query errors and duplicate names in rules the model could not validate, so a bad key
    elsewhere does not hide them: every problem is reported in one pass."""
    from watchers.rules import parse

    issues: list[ConfigIssue] = []
    rules = data.get("rules")
    if not isinstance(rules, list):
        return issues
    seen: dict[str, int] = {}
    for i, rule in enumerate(rules):
        name = rule.get("name") if isinstance(rule, dict) else None
        if isinstance(name, str) and name:
            first = seen.get(name.casefold())
            if first is not None and f"rules[{i}].name" not in reported:
                issues.append(ConfigIssue(f"rules[{i}].name", _duplicate_rule(
                    name, first, rules[first]["name"])))
            seen.setdefault(name.casefold(), i)
        query = rule.get("query") if isinstance(rule, dict) else None
        path = f"rules[{i}].query"
        if isinstance(query, str) and query and path not in reported:
            try:
                parse(query)
            except QuerySyntaxError as exc:
                issues.append(ConfigIssue(path, _in_rule(exc, name)))
    return issues


def route_settings(current: Mapping[str, Any], changes: Mapping[str, Any], target: int
                   ) -> RouteConfig:
    """A server route's settings once ``changes`` apply to ``current`` (a None value puts the
    key back to its default), validated as a ``[channels.NAME]`` table is, errors naming the
    key: what :meth:`Engine.configure_server_route` stores, and what a caller about to make a
    route for a channel checks first (a refused setting then leaves no route behind)."""
    if "target" in changes:
        raise ConfigError([ConfigIssue("target", "a channel's route always posts there")],
                          file="route")
    merged = {k: v for k, v in {**current, **changes}.items() if v is not None}
    try:
        settings = RouteConfig.model_validate({**merged, "target": target})
    except ValidationError as err:
        raise ConfigError(pydantic_issues(err, RouteConfig), file="route") from None
    if ignored := settings.ignored():
        # Asked for now, by someone who can take it back: refused rather than kept unused.
        raise ConfigError([ConfigIssue("max_per_hour", why) for why in ignored], file="route")
    return settings


def _in_rule(exc: QuerySyntaxError, name: object) -> str:
    """A query's error, with the name of the rule it is the query of: a config of many rules
    named it by position alone (``rules[37].query``)."""
    if not isinstance(name, str) or not name.strip():
        return str(exc)
    shown = name if len(name) <= 40 else name[:39] + "…"
    return f"{exc} (rule {ascii(shown) if not shown.isprintable() else repr(shown)})"


_TOO_DEEP: Final = "not a usable config: arrays or tables nested too deep"


def parse_config(data: Mapping[str, Any], *, base_dir: Path = Path("."), file: str | None = None,
                 watching: bool = True) -> Config:
    """Validate a config mapping; raise ConfigError listing every problem with its key path.

    ``watching``: the config is to watch with (``newswatch run``, ``check``), so it must name
    sources or rules. The commands that read or fill the store (search, import, trend, the
    sources' OPML, migrate, copy) need its ``[storage]`` only."""
    try:
        return _parse_config(data, base_dir=base_dir, file=file, watching=watching)
    except RecursionError:
        # What a refused value's checks do with the nested data (copying it to try the config
        # without that value, naming its place) recurses: a 1 KB file of a table nested 500
        # deep ended check, run and search with a traceback.
        raise ConfigError([ConfigIssue("", _TOO_DEEP)], file=file) from None


def _parse_config(data: Mapping[str, Any], *, base_dir: Path, file: str | None,
                  watching: bool) -> Config:
    if not isinstance(data, Mapping):
        raise ConfigError([ConfigIssue("(the configuration)", "must be a table of settings "
                                       f"(a mapping), not {type(data).__name__}")], file=file)
    internal = [ConfigIssue(f"{section}[{i}].{key}", "set by newswatch itself, not in a file")
                for section in ("rules", "sources")
                # a section that is no list is the model's to name ("expected a list")
                for i, item in enumerate(_listed(data.get(section)))
                if isinstance(item, dict)
                for key in INTERNAL_KEYS if key in item]
    try:
        cfg = Config.model_validate({**data, "base_dir": base_dir})
    except ValidationError as err:
        refused = pydantic_issues(err)
        issues = refused + _raw_query_issues(data, {i.path for i in refused})
        issues += _semantic_despite(data, base_dir, refused, {i.path for i in issues},
                                    watching=watching)
        raise ConfigError(internal + issues, file=file) from None
    issues = internal + _semantic_issues(cfg, watching=watching)
    if issues:
        raise ConfigError(issues, file=file)
    return cfg


_STEP = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


# The most refused values whose items are tried one by one (see _semantic_despite).
_TRIED_PLACES = 24


def _semantic_despite(data: Mapping[str, Any], base_dir: Path, refused: list[ConfigIssue],
                      reported: set[str], *, watching: bool) -> list[ConfigIssue]:
    """The checks a valid config gets (:func:`_semantic_issues`: duplicate source names,
    missing folders, unknown channels, refused URLs) of a config the model refused, so that a
    bad value elsewhere ("[fetch] timeout") does not hide them: run on the config with each
    ``refused`` value left out (its default), the issues at or under a place ``reported``
    already left out. When that config is still refused (a value with no default, such as a
    source's unknown ``type``), each refused item of a top-level list (``sources[1]``) is left
    out instead, and what the checks say of the items after it is numbered as in the file.
    Nothing when neither is possible (a place not found) or still refused; and not the checks
    that read what was left out (channels named, when a [channels] entry was; URLs, when
    [fetch] allow_private was; "nothing to watch", when sources or rules were)."""
    places = [i.path for i in refused]
    found = _without(data, base_dir, places, items=False)
    renumber: dict[str, list[int]] = {}
    if found is None:
        # Only the items whose refused value cannot be left out go whole: a source with a bad
        # `every` beside a rule with no query went whole too, and with it the duplicate of its
        # name and its missing folder, seen only once `every` was mended.
        # (Each trial validates the whole config: past a few dozen refused values, as a
        # generated file with one slip repeated has, the whole items go, in one trial.)
        # Tried an item at a time, not a place at a time: a rule with two refused values
        # (a name with a space, an unknown severity) went whole in each place's trial by its
        # other place, was found needing to go whole in neither, and every item went, a
        # source's missing folder and duplicate name with them.
        found = None
        groups = list(dict.fromkeys(_item_of(p) for p in places))
        if len(groups) <= _TRIED_PLACES:
            whole_items = {g for g in groups
                           if _without(data, base_dir, places,
                                       items=[q for q in places if _item_of(q) != g]) is None}
            whole = [p for p in places if _item_of(p) in whole_items]
            found = _without(data, base_dir, places, items=whole)
        if found is None:
            found = _without(data, base_dir, places, items=True)
        if found is None:
            return []
    cfg, renumber = found

    def hidden(issue: ConfigIssue) -> bool:
        at = issue.path
        if any(at == p or at.startswith((p + ".", p + "[")) or p.startswith((at + ".", at + "["))
               for p in (*places, *reported)):
            return True
        if "unknown channel" in issue.message and any(
                p.startswith(("channels", "discord")) for p in places):
            return True
        if at.endswith(".url") and any(p.startswith("fetch") for p in places):
            return True
        return at == "" and any(p.startswith(("sources", "rules")) for p in places)

    out = []
    for issue in _semantic_issues(cfg, watching=watching):
        for section, kept in renumber.items():
            def as_written(m: re.Match[str], kept: list[int] = kept) -> str:
                j = int(m[2])
                return f"{m[1]}[{kept[j] if j < len(kept) else j}]"

            where = re.compile(rf"(?<![\w.])({re.escape(section)})\[(\d+)\]")
            issue = ConfigIssue(where.sub(as_written, issue.path),
                                where.sub(as_written, issue.message))
        if not hidden(issue):
            out.append(issue)
    return out


_ITEM = re.compile(r"^[A-Za-z_]\w*\[\d+\]")


def _item_of(place: str) -> str:
    """The top-level list item a place is in ("rules[0]" of "rules[0].name"), or the place."""
    found = _ITEM.match(place)
    return found[0] if found else place


def _without(data: Mapping[str, Any], base_dir: Path, places: list[str], *,
             items: bool | Collection[str]) -> tuple[Config, dict[str, list[int]]] | None:
    """The config of ``data`` with what is at ``places`` left out, and for each top-level list
    that lost items the positions of those kept (``items``: the whole item of a top-level list
    that a place is in, where it is in one — for every place, or for those listed; else the
    very value at the place); None when a place is not found or the rest is still refused."""
    import copy

    pruned: Any = copy.deepcopy(dict(data))
    dropped: dict[str, set[int]] = {}
    for place in places:
        steps = [(m[1], m[2]) for m in _STEP.finditer(place)]
        spelt = "".join(f"[{i}]" if i else (f".{k}" if n else k)
                        for n, (k, i) in enumerate(steps))
        if not steps or spelt != place:
            return None
        if ((items is True or (not isinstance(items, bool) and place in items))
                and len(steps) >= 2 and steps[0][0] and steps[1][1]
                and isinstance(pruned.get(steps[0][0]), list)
                and int(steps[1][1]) < len(pruned[steps[0][0]])):
            dropped.setdefault(steps[0][0], set()).add(int(steps[1][1]))
            continue
        if steps[-1][1]:
            return None
        node = pruned
        for key, index in steps[:-1]:
            if index:
                if not isinstance(node, list) or int(index) >= len(node):
                    return None
                node = node[int(index)]
            elif isinstance(node, dict) and key in node:
                node = node[key]
            else:
                return None
        if not isinstance(node, dict) or steps[-1][0] not in node:
            return None
        del node[steps[-1][0]]
    kept: dict[str, list[int]] = {}
    for section, gone in dropped.items():
        kept[section] = [i for i in range(len(pruned[section])) if i not in gone]
        pruned[section] = [pruned[section][i] for i in kept[section]]
    try:
        return Config.model_validate({**pruned, "base_dir": base_dir}), kept
    except ValidationError:
        return None


def _listed(value: Any) -> list[Any]:
    """``value`` when it is a list (an array of tables), else nothing."""
    return value if isinstance(value, list) else []


# The largest config file read (a config with a thousand rules is about 200 KB).
MAX_CONFIG_BYTES = 4 * 2**20
# The most parts a dotted key or a table header may have (a config's deepest is three:
# [channels.alerts] target). tomllib builds a dotted key's tables in time and memory that grow
# with the square of its parts: a 40 KB key of 20,000 parts took 9 s and 1.6 GB before it
# failed, so such a file is refused before it is parsed.
MAX_KEY_PARTS: Final = 100
_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')"""
# A run of more parts than that anywhere in the file (inside a string too, which at worst
# refuses a value of a hundred dotted words, where no config has one), once the spaces TOML
# allows around a key's dots are taken out. It is found from the first part of a run only (no
# letter, quote or dot before it): else a long run was scanned again from each of its parts.
_DEEP_KEY = re.compile(rf"(?<![A-Za-z0-9_\"'.-]){_KEY_PART}(?:\.{_KEY_PART}){{{MAX_KEY_PARTS}}}")
# (each run of spaces matched from its start: from each of its spaces, a long run was
# scanned again)
_AROUND_DOTS = re.compile(r"(?<![ \t])[ \t]*\.[ \t]*")


def _too_deep_at(source: str) -> int | None:
    """The line of a dotted key or table header of more than MAX_KEY_PARTS parts in
    ``source``, or None (without a regular expression's pass when it has too few dots)."""
    if source.count(".") < MAX_KEY_PARTS:
        return None
    deep = _DEEP_KEY.search(_AROUND_DOTS.sub(".", source))
    return None if deep is None else deep.string.count("\n", 0, deep.start()) + 1


def load_config(path: str | Path, *, watching: bool = True) -> Config:
    """Read and validate a TOML config file (``watching``: see :func:`parse_config`)."""
    p = Path(path)
    try:
        # Without waiting: a named pipe given by mistake blocked the open until someone wrote
        # to it (and a lookup command then ignored Ctrl-C).
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            mode = os.fstat(fd).st_mode
            if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                raise ConfigError([ConfigIssue("", "a named pipe or socket, not a config "
                                                   "file")], file=str(p))
            # Read at most a byte more than a config may hold: /dev/zero or a log file given by
            # mistake is refused, not read whole.
            raw = fh.read(MAX_CONFIG_BYTES + 1)
            # Relative paths resolve against the config file's folder; a config that is no
            # file (`-c /dev/null` for the defaults, a shell's `<(...)`) has none of its own:
            # /dev held the store.
            base = p.resolve().parent if stat.S_ISREG(mode) else Path.cwd()
    except FileNotFoundError:
        raise ConfigError([ConfigIssue("", f"no such file: {p}")], file=str(p)) from None
    except OSError as exc:
        raise ConfigError([ConfigIssue("", f"cannot read: {exc.strerror}")], file=str(p)) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([ConfigIssue("", f"larger than {MAX_CONFIG_BYTES // 2**20} MiB: not a "
                                           "config file")], file=str(p))
    try:
        # "utf-8-sig": a byte order mark, which some editors write first, is not TOML but not
        # the user's mistake either.
        source = raw.decode("utf-8-sig")
        if (line := _too_deep_at(source)) is not None:
            raise ConfigError([ConfigIssue("", (
                f"{_TOO_DEEP} (a dotted key or table header of more than {MAX_KEY_PARTS} "
                f"parts at line {line})"))], file=str(p))
        data = tomllib.loads(source)
    except UnicodeDecodeError as exc:
        # Where: one Latin-1 byte in a comment of a long file was hard to find.
        text = raw.removeprefix(b"\xef\xbb\xbf")  # (where the decoder counted from)
        line = text.count(b"\n", 0, exc.start) + 1
        start = text.rfind(b"\n", 0, exc.start) + 1
        column = len(text[start:exc.start].decode("utf-8", errors="replace")) + 1
        raise ConfigError([ConfigIssue("", (
            f"not UTF-8 text: byte 0x{text[exc.start]:02x} at line {line}, column {column} "
            "(save the file as UTF-8)"))], file=str(p)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigIssue("", f"not valid TOML: {exc}")], file=str(p)) from None
    except RecursionError:  # tomllib reads nested arrays and tables recursively
        raise ConfigError([ConfigIssue("", _TOO_DEEP)], file=str(p)) from None
    return parse_config(data, base_dir=base, file=str(p), watching=watching)
