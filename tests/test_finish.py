"""Work that must run to its end (closing a connection, releasing a lock) does, whatever
cancellations arrive meanwhile, and the cancellation is raised once it has."""

from __future__ import annotations

import asyncio

import pytest

from watchers._finish import finish


async def test_work_runs_to_its_end_through_two_cancellations() -> None:
    async def closing(done: list[str]) -> str:
        await asyncio.sleep(0.02)
        done.append("closed")
        return "closed"

    for gap in range(4):
        done: list[str] = []
        task = asyncio.ensure_future(finish(closing(done)))
        await asyncio.sleep(0)
        task.cancel()
        for _ in range(gap):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert done == ["closed"]  # ended before the cancellation came out


async def test_an_uncancelled_call_returns_the_result_and_raises_the_error() -> None:
    async def value() -> int:
        await asyncio.sleep(0)
        return 7

    async def broken() -> None:
        await asyncio.sleep(0)
        raise OSError("disk gone")

    assert await finish(value()) == 7
    with pytest.raises(OSError, match="disk gone"):
        await finish(broken())


async def test_the_work_s_own_error_goes_with_the_cancellation() -> None:
    async def broken() -> None:
        await asyncio.sleep(0.02)
        raise OSError("disk gone")

    task = asyncio.ensure_future(finish(broken()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError) as raised:
        await task
    assert isinstance(raised.value.__cause__, OSError)


async def test_work_cancelled_itself_is_a_cancellation() -> None:
    inner = asyncio.ensure_future(asyncio.sleep(10))
    task = asyncio.ensure_future(finish(inner))
    await asyncio.sleep(0)
    inner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert inner.cancelled()
