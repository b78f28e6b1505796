"""A write cancelled at any point (a task stopped at shutdown, a timeout) leaves the store
usable: the next write commits, and what the cancelled one wrote is either whole or absent."""

from __future__ import annotations

import asyncio

from watchers.store import SourceState, Store


async def test_a_write_cancelled_while_it_begins_leaves_the_store_usable(store: Store) -> None:
    for i in range(30):
        task = asyncio.create_task(store.save_source_states([SourceState(f"gone{i}", polls=1)]))
        # let it take the connection and start its transaction, then stop it there (i > 0
        # lets it get further each time, to stop it at different points)
        for _ in range(1 + i % 3):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.save_source_states([SourceState(f"kept{i}", polls=2)])
    names = {s.name: s.polls for s in await store.all_source_states()}
    assert all(names[f"kept{i}"] == 2 for i in range(30))
    assert all(names.get(f"gone{i}", 1) == 1 for i in range(30))
