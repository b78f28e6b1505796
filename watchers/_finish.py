"""Work that must run to its end once started, whatever cancellations arrive meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def finish(work: Awaitable[T]) -> T:
    """Await ``work`` to its end. A cancellation that arrives meanwhile (a timeout, Ctrl-C,
    another one while the first is handled) waits for it and is raised once it has ended; its
    own error then goes with the cancellation as its cause.

    For closing what a thread holds (a connection, a lock) and for steps that may not be left
    half done: cut short, the thread went on and answered a loop that had closed, or a lock
    was released while its connection was still in use."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():  # the work itself was cancelled
                raise
            cancelled = True
            continue
        except BaseException:
            if cancelled:
                raise asyncio.CancelledError from task.exception()
            raise
        if cancelled:
            raise asyncio.CancelledError
        return result
