"""A write cancelled at any point (a task stopped at shutdown, a timeout) leaves the store
usable: the next write commits, and what the cancelled one wrote is either whole or absent."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest

from tests.conftest import REPO
from watchers.store import SourceState, SqliteStore, Store


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


async def test_an_open_cancelled_while_it_connects_releases_the_lock_and_its_thread(
        tmp_path: Path) -> None:
    """Opening a store cancelled while its connection is being made (Ctrl-C at start, a
    timeout) kept the process lock, so the next open in the process was refused as if another
    process held the store, and left the connection's thread behind."""
    threads = threading.active_count()
    for steps in range(4):  # cancelled at different points of the opening
        task = asyncio.ensure_future(SqliteStore.open(tmp_path / "nw.db"))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        (opened,) = await asyncio.gather(task, return_exceptions=True)
        if isinstance(opened, SqliteStore):
            await opened.aclose()  # it had opened before the cancel came
        else:
            assert isinstance(opened, asyncio.CancelledError)
        async with await SqliteStore.open(tmp_path / "nw.db") as store:
            await store.save_source_states([SourceState(f"s{steps}", polls=1)])
    for _ in range(100):
        if threading.active_count() <= threads:
            break
        await asyncio.sleep(0.01)
    assert threading.active_count() <= threads


async def test_an_open_cancelled_twice_closes_its_connection_before_it_gives_up(
        tmp_path: Path) -> None:
    """A second cancellation (a timeout, another Ctrl-C) while the first was handled stopped
    the closing of the half-made connection: the lock was released with the connection still
    being made, and its thread was left behind (or answered a closed loop on the way out)."""
    threads = threading.active_count()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for first in range(8):
            for second in range(3):
                task = asyncio.ensure_future(SqliteStore.open(tmp_path / "nw.db"))
                for _ in range(first):
                    await asyncio.sleep(0)
                task.cancel()
                for _ in range(second):
                    await asyncio.sleep(0)
                task.cancel()
                (opened,) = await asyncio.gather(task, return_exceptions=True)
                if isinstance(opened, SqliteStore):
                    await opened.aclose()
                else:
                    assert isinstance(opened, asyncio.CancelledError)
                async with await SqliteStore.open(tmp_path / "nw.db") as store:
                    await store.save_source_states([SourceState(f"s{first}{second}", polls=1)])
        await asyncio.sleep(0.1)
        gc.collect()
    # a connection nobody closed says so when it is collected
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
    for _ in range(100):
        if threading.active_count() <= threads:
            break
        await asyncio.sleep(0.01)
    assert threading.active_count() <= threads


async def test_a_bulk_load_cancelled_as_it_begins_gives_back_the_page_cache(
        tmp_path: Path) -> None:
    """An import cancelled while it set its large page cache kept that cache for the rest of
    the connection's life (64 MiB more for a process that goes on running)."""
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        async def cache() -> tuple[int, int]:
            (size,) = (await store._db.fetchall("PRAGMA cache_size"))[0]
            (pages,) = (await store._db.fetchall("PRAGMA wal_autocheckpoint"))[0]
            return int(size), int(pages)

        before = await cache()
        for steps in range(1, 30):
            async def load() -> None:
                async with store.bulk_load():
                    await asyncio.sleep(5)
            task = asyncio.ensure_future(load())
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert await cache() == before, f"cancelled after {steps} steps"


def test_ctrl_c_while_a_store_opens_ends_without_a_traceback(tmp_path: Path) -> None:
    """The connection's thread handed its result to the event loop after asyncio.run had
    closed it: "RuntimeError: Event loop is closed" from a thread on the way out."""
    script = (
        "import asyncio, sys\n"
        "from watchers.store import SqliteStore\n"
        "async def main():\n"
        "    task = asyncio.ensure_future(SqliteStore.open(sys.argv[1]))\n"
        "    await asyncio.sleep(0)\n"
        "    task.cancel()\n"
        "    await asyncio.gather(task, return_exceptions=True)\n"
        "asyncio.run(main())\n"
    )
    for _ in range(5):
        result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "nw.db")],
                                capture_output=True, text=True, timeout=60, cwd=REPO)
        assert result.returncode == 0 and result.stderr == "", result.stderr


async def test_a_large_write_cancelled_while_it_is_sent_ends_at_once_and_stores_nothing(
        store: Store) -> None:
    """Ctrl-C during an import on PostgreSQL, while a batch's rows were being sent: the
    rollback waited for the rest of a statement the server was still reading, 60 s of the
    driver's timeout twice, and then ended in "the database did not answer" instead of the
    stop. A write cancelled mid-statement now gives up its connection (the server rolls the
    transaction back as it goes), so the stop is at once and the store stays usable."""
    from tests.store._support import alert, art, match
    from watchers.rules.lookup import index_terms
    from watchers.store.base import ArticleRecord

    sentence = "Troops gathered near the border while talks went on. "
    text = sentence * 400  # about 21 KB
    for round_ in range(2):
        batch = [art(f"Batch {round_} article {i}", text + str(i)) for i in range(400)]
        # The text's words are the sentence's: its terms, tokenised from one sentence (from
        # the whole text, 4 ms an article, most of the test's time).
        records = [ArticleRecord(a, [match(a)], [alert("alerts")],
                                 index_terms(a.title, sentence + str(i)))
                   for i, a in enumerate(batch)]
        assert records[7].terms == index_terms(batch[7].title, batch[7].text)
        task = asyncio.create_task(store.record_many(records))
        await asyncio.sleep(0.05 * (round_ + 1))  # well into sending the rows
        began = asyncio.get_running_loop().time()
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=30)
        assert done, "the cancelled write did not end"
        assert asyncio.get_running_loop().time() - began < 20  # a hang guard, not a timing
        if not task.cancelled():  # it had committed before the cancel came
            assert task.exception() is None
        kept = art(f"After {round_}", "Troops again")
        stored = await store.record_many([ArticleRecord(kept, [match(kept)], [],
                                                        index_terms(kept.title, kept.text))])
        assert stored[0] is not None
        found = await store.known(batch)
        assert all(found) or not any(found)  # the batch whole or absent


async def test_a_large_write_cancelled_twice_ends_and_leaves_nothing_behind(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    """A second Ctrl-C (or a timeout on top of a stop) while the first cancellation of a
    write being sent was handled: the write still ends at once, the store takes the next
    one, and no "Task exception was never retrieved" is left for the log."""
    import gc
    import logging

    from tests.store._support import art, match
    from watchers.rules.lookup import index_terms
    from watchers.store.base import ArticleRecord

    caplog.set_level(logging.ERROR, logger="asyncio")
    sentence = "Troops gathered near the border while talks went on. "
    text = sentence * 400
    batch = [art(f"Twice {i}", text + str(i)) for i in range(400)]
    # The terms tokenised from one sentence, whose words are the text's (as above).
    records = [ArticleRecord(a, [match(a)], [], index_terms(a.title, sentence + str(i)))
               for i, a in enumerate(batch)]
    assert records[7].terms == index_terms(batch[7].title, batch[7].text)
    task = asyncio.create_task(store.record_many(records))
    await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=30)
    assert done, "the cancelled write did not end"
    kept = art("After twice", "Troops again")
    stored = await store.record_many([ArticleRecord(kept, [match(kept)], [],
                                                    index_terms(kept.title, kept.text))])
    assert stored[0] is not None
    found = await store.known(batch)
    assert all(found) or not any(found)
    await asyncio.sleep(0.2)
    gc.collect()
    await asyncio.sleep(0)
    assert "never retrieved" not in caplog.text
