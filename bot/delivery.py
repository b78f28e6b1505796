"""DiscordSink: alerts to Discord channels (through the bot) or webhooks (no gateway needed).

Maps Discord's answers onto the engine's delivery errors: 429/5xx/timeouts are transient; an
invalid body (400) rejects that alert; missing access or an unknown channel/webhook (403/404)
pauses the destination so its alerts are held, not lost.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
import discord

from bot.embeds import alert_message
from bot.logs import add_secret, redact
from watchers.delivery import Alert
from watchers.errors import PermanentDeliveryError, TransientDeliveryError

__all__ = ["ChannelTarget", "DiscordSink", "WebhookTarget", "parse_webhook_url", "resolve_targets"]

_WEBHOOK_URL = re.compile(r"^https?://[^/]+/api/(?:v\d+/)?webhooks/(\d+)/([\w-]+)/?$")


@dataclass(frozen=True)
class ChannelTarget:
    channel_id: int


@dataclass(frozen=True)
class WebhookTarget:
    webhook_id: int
    token: str

    def __repr__(self) -> str:  # the token is a secret
        return f"WebhookTarget(webhook_id={self.webhook_id}, token=[redacted])"


Target = ChannelTarget | WebhookTarget


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


class DiscordSink:
    """Delivers alerts to the Discord targets of their routes.

    ``client`` is needed for channel targets (a logged-in bot); webhook targets need only the
    aiohttp ``session``.
    """

    def __init__(self, targets: Mapping[str, Target], *, client: discord.Client | None = None,
                 session: aiohttp.ClientSession | None = None, timeout: float = 30.0) -> None:
        self.targets = dict(targets)
        self.client = client
        self.session = session
        self.timeout = timeout

    def handles(self, route: str) -> bool:
        target = self.targets.get(route)
        if isinstance(target, ChannelTarget):
            return self.client is not None
        return target is not None and self.session is not None

    async def deliver(self, alert: Alert) -> str | None:
        target = self.targets.get(alert.route)
        if target is None:
            raise PermanentDeliveryError(f"route {alert.route!r} has no Discord destination",
                                         pause_destination=True)
        kwargs = alert_message(alert)
        try:
            async with asyncio.timeout(self.timeout):
                if isinstance(target, ChannelTarget):
                    if self.client is None:
                        raise PermanentDeliveryError("channel targets need the bot connected",
                                                     pause_destination=True)
                    channel = self.client.get_partial_messageable(target.channel_id)
                    # The nonce is fixed per alert before its first try, so a retry after a lost
                    # response cannot create a second message (Discord enforces it).
                    msg = await channel.send(nonce=alert.nonce, **kwargs)
                    return str(msg.id)
                if self.session is None:
                    raise PermanentDeliveryError("webhook targets need an HTTP session",
                                                 pause_destination=True)
                hook = discord.Webhook.partial(target.webhook_id, target.token,
                                               session=self.session)
                # Webhooks take no nonce: a send whose response was lost may have gone through,
                # and the retry can duplicate it (the documented window).
                sent = await hook.send(wait=True, **{k: v for k, v in kwargs.items() if v})
                return str(sent.id)
        except discord.RateLimited as exc:
            raise TransientDeliveryError("rate limited", retry_after=exc.retry_after) from None
        except discord.HTTPException as exc:
            raise _classify(exc) from None
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            raise TransientDeliveryError(redact(f"network error: {exc!r}")) from None


def _classify(exc: discord.HTTPException) -> Exception:
    text = redact(f"{exc.status} {exc.text or ''}".strip())[:300]
    if exc.status == 429:
        return TransientDeliveryError(f"rate limited: {text}")
    if exc.status >= 500:
        return TransientDeliveryError(f"Discord error {text}")
    if exc.status in (401, 403, 404):
        return PermanentDeliveryError(f"destination unusable: {text}", pause_destination=True)
    return PermanentDeliveryError(f"Discord refused the alert: {text}")
