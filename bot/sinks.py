"""DiscordSink: alerts to Discord channels (through the bot) or webhooks (no gateway needed).

Maps Discord's answers onto the engine's delivery errors: 429/5xx/timeouts/dropped connections
are transient; an invalid body (400) rejects that alert; missing access or an unknown
channel/webhook (401/403/404) pauses the destination so its alerts are held, not lost.

Duplicates: a bot message carries the alert's nonce with ``enforce_nonce``, so Discord answers a
retry with the message it already created. Webhooks take no nonce: when a webhook send may have
gone through (the connection dropped or timed out after sending, or a crash interrupted it) the
alert is marked "maybe sent", and before sending it again the sink looks for it in the channel
when the bot can read it; without a bot the retry may show a duplicate (see README).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord

from bot.embeds import alert_message, truncate
from bot.logs import add_secret, redact
from watchers.delivery import Alert, Sink
from watchers.errors import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UncertainDeliveryError,
)

__all__ = [
    "ChannelTarget",
    "DiscordSink",
    "WebhookTarget",
    "discord_sinks",
    "parse_webhook_url",
    "resolve_targets",
]

log = logging.getLogger("newswatch")

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


# In a notice, the characters that could make a masked link, a mention, formatting or a quote
# out of an article's title; our own punctuation ( ) : - . stays as written.
_NOTICE_MARKUP = re.compile(r"([\\*_~|`>\[\]<@#])")


class DiscordSink:
    """Delivers alerts (and operational notices) to the Discord targets of their routes.

    ``client`` is needed for channel targets (a logged-in bot); webhook targets need only the
    aiohttp ``session``. ``timeout`` bounds one attempt, discord.py's own retries included.
    """

    def __init__(self, targets: Mapping[str, Target], *, client: discord.Client | None = None,
                 session: aiohttp.ClientSession | None = None, timeout: float = 30.0) -> None:
        self.targets = dict(targets)
        self.client = client
        self.session = session
        self.timeout = timeout
        self._hook_channels: dict[int, int] = {}

    async def deliver(self, alert: Alert) -> str | None:
        return await self._send(alert.route, alert_message(alert), nonce=alert.nonce,
                                maybe_sent=alert.maybe_sent)

    async def notice(self, route: str, text: str, *, nonce: str | None = None) -> str | None:
        """Post a plain operational notice (no mentions, markup shown as written) to the
        route's destination. ``nonce`` is the outbox row's, so a retry is not posted twice."""
        kwargs: dict[str, Any] = {
            "content": truncate(_NOTICE_MARKUP.sub(r"\\\1", redact(text)), 2000),
            "allowed_mentions": discord.AllowedMentions.none(),
        }
        return await self._send(route, kwargs, nonce=nonce or secrets.token_hex(12),
                                maybe_sent=False)

    async def _send(self, route: str, kwargs: dict[str, Any], *, nonce: str, maybe_sent: bool
                    ) -> str | None:
        target = self.targets.get(route)
        if target is None:
            raise PermanentDeliveryError(f"route {route!r} has no Discord destination",
                                         pause_destination=True)
        if isinstance(target, ChannelTarget):
            return await self._send_channel(target, kwargs, nonce)
        return await self._send_webhook(target, kwargs, maybe_sent)

    async def _send_channel(self, target: ChannelTarget, kwargs: dict[str, Any], nonce: str
                            ) -> str:
        if self.client is None:
            raise PermanentDeliveryError("channel targets need the bot connected",
                                         pause_destination=True)
        channel = self.client.get_partial_messageable(target.channel_id)
        try:
            async with asyncio.timeout(self.timeout):
                # The nonce is fixed per alert before its first try and discord.py sends it with
                # enforce_nonce, so a retry after a lost response returns the message already
                # created instead of posting a second one.
                msg = await channel.send(nonce=nonce, **kwargs)
                return str(msg.id)
        except TimeoutError:
            self._release_global_wait()
            raise TransientDeliveryError(f"no answer from Discord in {self.timeout:g}s") from None
        except discord.RateLimited as exc:
            raise TransientDeliveryError("rate limited", retry_after=exc.retry_after) from None
        except discord.HTTPException as exc:
            raise _classify(exc) from None
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise TransientDeliveryError(redact(f"network error: {exc!r}")) from None

    async def _send_webhook(self, target: WebhookTarget, kwargs: dict[str, Any],
                            maybe_sent: bool) -> str:
        if self.session is None:
            raise PermanentDeliveryError("webhook targets need an HTTP session",
                                         pause_destination=True)
        hook = discord.Webhook.partial(target.webhook_id, target.token, session=self.session)
        try:
            async with asyncio.timeout(self.timeout):
                if maybe_sent:
                    found = await self._find_sent(hook, kwargs)
                    if found is not None:
                        return found
                sent = await hook.send(wait=True, **{k: v for k, v in kwargs.items() if v})
                return str(sent.id)
        except TimeoutError:
            raise UncertainDeliveryError(
                f"no answer from the webhook in {self.timeout:g}s; it may have gone through"
            ) from None
        except discord.RateLimited as exc:
            raise TransientDeliveryError("rate limited", retry_after=exc.retry_after) from None
        except discord.HTTPException as exc:
            error = _classify(exc)
            if exc.status >= 500:
                # Discord may have created the message before failing to answer.
                raise UncertainDeliveryError(str(error)) from None
            raise error from None
        except aiohttp.ClientConnectorError as exc:
            # never connected: nothing was sent
            raise TransientDeliveryError(redact(f"network error: {exc!r}")) from None
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise UncertainDeliveryError(
                redact(f"network error after sending: {exc!r}; it may have gone through")
            ) from None

    async def _find_sent(self, hook: discord.Webhook, kwargs: dict[str, Any]) -> str | None:
        """The id of this alert's message if an earlier attempt did post it, or None (also when
        there is no way to look: then the alert is sent again and may show twice)."""
        client = self.client
        embed = kwargs.get("embed")
        marker = embed.footer.text if isinstance(embed, discord.Embed) else None
        if client is None or client.user is None or not marker:
            log.warning("webhook %s: an earlier send may have gone through and the bot cannot "
                        "look; sending again (it may show twice)", hook.id)
            return None
        try:
            channel_id = self._hook_channels.get(hook.id)
            if channel_id is None:
                channel_id = (await hook.fetch(prefer_auth=False)).channel_id
                if channel_id is None:
                    return None
                self._hook_channels[hook.id] = channel_id
            recent = await client.http.logs_from(channel_id, 50)
        except discord.HTTPException as exc:
            log.warning("webhook %s: cannot look for an earlier send (%s); sending again",
                        hook.id, redact(f"{exc.status} {exc.text}"))
            return None
        for m in recent:
            if str(m.get("webhook_id")) != str(hook.id):
                continue
            footers = [e.get("footer") for e in m.get("embeds", [])]
            if any(f is not None and f.get("text") == marker for f in footers):
                log.info("webhook %s: the earlier send did go through (message %s)",
                         hook.id, m["id"])
                return str(m["id"])
        return None

    def _release_global_wait(self) -> None:
        # discord.py clears its global rate-limit flag, sleeps retry_after, then sets it again; a
        # timeout that cancels that sleep would leave every later request waiting forever.
        http = getattr(self.client, "http", None)
        flag = getattr(http, "_global_over", None)
        if isinstance(flag, asyncio.Event) and not flag.is_set():
            flag.set()


def _classify(exc: discord.HTTPException) -> DeliveryError:
    code = f" (code {exc.code})" if exc.code else ""
    text = redact(f"{exc.status}{code} {exc.text or ''}".strip())[:300]
    if exc.status == 429:
        return TransientDeliveryError(f"rate limited: {text}")
    if exc.status >= 500:
        return TransientDeliveryError(f"Discord error {text}")
    if exc.status in (401, 403, 404):
        return PermanentDeliveryError(f"destination unusable: {text}", pause_destination=True)
    return PermanentDeliveryError(f"Discord refused the alert: {text}")


def discord_sinks(channels: Mapping[str, int | str], *, session: aiohttp.ClientSession,
                  client: discord.Client | None = None) -> dict[str, Sink]:
    """A sink for every route of ``[channels]`` this front end can serve: all of them with a
    bot client, only the webhooks without one. Unusable entries are logged, not fatal."""
    targets, problems = resolve_targets(channels)
    for p in problems:
        log.error("%s", p)
    if client is None:
        targets = {r: t for r, t in targets.items() if isinstance(t, WebhookTarget)}
    if not targets:
        return {}
    sink: Sink = DiscordSink(targets, client=client, session=session)
    return dict.fromkeys(targets, sink)
