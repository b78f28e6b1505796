"""Riding out a store that cannot be reached for a while (a PostgreSQL server restarting, a
dropped connection): the services wait and try again rather than stop the engine, up to a limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from watchers.errors import STORE_OUTAGE_LIMIT, StoreError, StoreUnavailableError

log = logging.getLogger(__name__)

__all__ = ["StoreOutage"]

T = TypeVar("T")


class StoreOutage:
    """How long the store has been unreachable, shared by one engine's services.

    :meth:`wait` is called with each :class:`StoreUnavailableError` and says how long to wait
    before trying again (backing off from a quarter of a second to ``most`` seconds); once the
    store has been unreachable for ``limit`` seconds it raises the last error as a plain
    :class:`StoreError`, which stops the engine. :meth:`over` is called after work that reached
    the store. The first failure and the recovery are logged once each.
    """

    def __init__(self, limit: float = STORE_OUTAGE_LIMIT, *, most: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.most = most
        self.clock = clock
        self.since: float | None = None
        self._tries = 0

    def wait(self, exc: StoreUnavailableError) -> float:
        now = self.clock()
        if self.since is None:
            self.since, self._tries = now, 0
            log.warning("%s; waiting for the store to come back (up to %.0f s)", exc, self.limit)
        elif now - self.since >= self.limit:
            raise StoreError(f"{exc} (the store was unreachable for {now - self.since:.0f} s)")
        self._tries += 1
        return float(min(0.25 * 2 ** min(self._tries - 1, 16), self.most))

    def wait_or_stop(self, exc: StoreUnavailableError,
                     stop: Callable[[BaseException], None]) -> float | None:
        """:meth:`wait`, or, once the store has been away too long, ``stop(final error)`` and
        None: what every loop that meets an unreachable store does."""
        try:
            return self.wait(exc)
        except StoreError as final:
            stop(final)
            return None

    async def retried(self, call: Callable[[], Awaitable[T]],
                      stop: Callable[[BaseException], None]) -> tuple[T] | None:
        """``(await call(),)``, called again after each wait while the store cannot be
        reached; None once it has been away too long (``stop`` was told the final error). For
        the one-off reads a service makes as it starts, which a loop does not retry."""
        while True:
            try:
                return (await call(),)
            except StoreUnavailableError as exc:
                delay = self.wait_or_stop(exc, stop)
                if delay is None:
                    return None
                await asyncio.sleep(delay)

    def over(self) -> None:
        if self.since is not None:
            log.warning("the store is reachable again after %.1f s", self.clock() - self.since)
            self.since = None
