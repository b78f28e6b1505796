"""Discord-style rate-limit buckets for the Discord API emulator.

:class:`RateLimitedEmulator` is the emulator plus per-route buckets on the routes that create
messages (``POST /channels/{id}/messages``, ``POST /webhooks/{id}/{token}``): every answer on
those routes carries the ``X-RateLimit-*`` headers Discord sends, which discord.py reads to pace
itself, and a request over the limit is answered 429 (``retry_after`` in the body, ``Via`` set)
and counted in ``over_limit``. Windows are fixed: ``limit`` requests per ``per`` seconds per
channel or webhook, like Discord's 5 per 5 s, scaled down so tests stay quick.

Kept apart from the emulator module on purpose: the emulator stays as it is when buckets are not
wanted, and this file owns only the bucket arithmetic.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.discord_emulator import JSON_HEADERS, DiscordEmulator

__all__ = ["RateLimitedEmulator"]

_LIMITED = [
    re.compile(r"^/api(?:/v\d+)?/channels/(\d+)/messages/?$"),
    re.compile(r"^/api(?:/v\d+)?/webhooks/(\d+)/[^/]+/?$"),
]


@dataclass
class _Window:
    start: float
    used: int = 0


class RateLimitedEmulator(DiscordEmulator):
    """The emulator with Discord's per-route rate-limit buckets on message creation."""

    def __init__(self, *, limit: int = 5, per: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.limit = limit
        self.per = per
        self.over_limit = 0  # requests answered 429 because the client did not wait
        self.limited_requests = 0  # requests that went through a bucket
        self._windows: dict[str, _Window] = {}

    async def _handle_http(self, request: web.Request) -> web.StreamResponse:
        key = self._bucket_key(request)
        if key is None:
            return await super()._handle_http(request)
        now = time.monotonic()
        window = self._windows.get(key)
        if window is None or now - window.start >= self.per:
            window = self._windows[key] = _Window(now)
        # rounded up to the millisecond, so a client that waits as told is never early
        reset_after = max(0.001, math.ceil((window.start + self.per - now) * 1000) / 1000)
        if window.used >= self.limit:
            self.over_limit += 1
            await request.read()
            body = {"message": "You are being rate limited.", "retry_after": reset_after,
                    "global": False, "code": 0}
            return web.Response(status=429, body=json.dumps(body).encode(), headers={
                **JSON_HEADERS, "Via": "1.1 google", **self._headers(key, 0, reset_after),
                "X-RateLimit-Scope": "user"})
        window.used += 1
        self.limited_requests += 1
        response = await super()._handle_http(request)
        # The headers describe the window as it was when the request was counted.
        for name, value in self._headers(key, self.limit - window.used, reset_after).items():
            response.headers[name] = value
        return response

    @staticmethod
    def _bucket_key(request: web.Request) -> str | None:
        if request.method != "POST":
            return None
        for pattern in _LIMITED:
            m = pattern.match(request.path)
            if m:
                return f"{pattern.pattern}:{m.group(1)}"
        return None

    def _headers(self, key: str, remaining: int, reset_after: float) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": hashlib.sha1(key.split(":")[0].encode()).hexdigest()[:16],
        }
