"""Where alerts go, as the config names them: the bot token from its variable, a channel by
number, a webhook by its URL. Kept apart from :mod:`bot.sinks` and :mod:`bot.runner`, which
post and run, so that ``newswatch check`` reads them without loading discord.py, aiohttp or the
delivery code (about 0.4 s of a command run after every edit of the config)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.logs import add_secret
from watchers.config import WEBHOOK_URL
from watchers.errors import NewswatchError

if TYPE_CHECKING:
    from watchers.config import Config

__all__ = [
    "ChannelTarget",
    "Target",
    "WebhookTarget",
    "parse_webhook_url",
    "resolve_targets",
    "token_from_env",
    "webhook_problem",
]

_WEBHOOK_URL = WEBHOOK_URL  # the config's own pattern: what `check` passes, the sink posts to


def token_from_env(cfg: Config) -> str | None:
    """The bot token from the variable the config names (never from the file). A token with
    a space or control character inside (two lines pasted, a stray tab) is refused by name:
    no token holds one, and aiohttp refused the header in a traceback."""
    value = os.environ.get(cfg.discord.token_env, "").strip()
    if any(c.isspace() or not c.isprintable() for c in value):
        raise NewswatchError(f"${cfg.discord.token_env} holds a space, line break or control "
                             "character inside the token: set it to the token alone")
    return value or None


@dataclass(frozen=True)
class ChannelTarget:
    channel_id: int


@dataclass(frozen=True)
class WebhookTarget:
    webhook_id: int
    token: str

    def __repr__(self) -> str:  # the token is a secret
        return f"WebhookTarget(webhook_id={self.webhook_id}, token=[redacted])"

    @property
    def mark(self) -> str:
        """Six hex digits of a hash of the webhook's URL, which a pause of it names: a start
        with another URL for the route (its token corrected) knows the pause was of the old
        one. Nothing of the token can be read back from it."""
        return hashlib.sha256(f"{self.webhook_id}/{self.token}".encode()).hexdigest()[:6]


Target = ChannelTarget | WebhookTarget


def webhook_problem(value: str) -> str | None:
    """Why a webhook route's URL (or its variable's value) would not post: "is not set" or "is
    not a Discord webhook URL"; None when it would. What `run` refuses and `check` reports."""
    if not value.strip():
        return "is not set"
    try:
        parse_webhook_url(value)
    except ValueError:
        return "is not a Discord webhook URL"
    return None


def parse_webhook_url(url: str) -> WebhookTarget:
    m = _WEBHOOK_URL.match(url.strip())
    if not m:
        raise ValueError("not a Discord webhook URL (https://…/api/webhooks/ID/TOKEN)")
    add_secret(url.strip())
    add_secret(m.group(2))
    return WebhookTarget(int(m.group(1)), m.group(2))


def resolve_targets(channels: Mapping[str, int | str], env: Mapping[str, str] | None = None
                    ) -> tuple[dict[str, Target], list[str]]:
    """Turn the config's [channels] into targets; returns (targets, problems)."""
    env = os.environ if env is None else env
    targets: dict[str, Target] = {}
    problems: list[str] = []
    for route, ref in channels.items():
        if isinstance(ref, int):
            targets[route] = ChannelTarget(ref)
            continue
        url = ref
        if ref.startswith("env:"):
            url = env.get(ref[4:], "")
            if not url:
                problems.append(f"channels.{route}: ${ref[4:]} is not set")
                continue
        try:
            targets[route] = parse_webhook_url(url)
        except ValueError as exc:
            problems.append(f"channels.{route}: {exc}")
    return targets, problems
