"""The servers that removed the bot travel with `newswatch copy`, SQLite to PostgreSQL and
back, with their times."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from bot import cli
from watchers.store import PostgresStore, SqliteStore

G = 1100000000000000501
WHEN = datetime(2026, 11, 30, 12, 34, 56, tzinfo=UTC)


async def _seed(path: Path) -> None:
    async with await SqliteStore.open(path) as store:
        assert await store.set_departed(G, WHEN)
        assert await store.set_departed(7, WHEN)


def test_copy_sqlite_to_postgresql_and_back_keeps_departed_servers(
        tmp_path: Path, pg_database: str) -> None:
    src = tmp_path / "a.db"
    asyncio.run(_seed(src))
    assert cli.main(["copy", "--from", str(src), "--to", pg_database]) == 0

    async def on_pg() -> dict[int, datetime]:
        async with await PostgresStore.open(pg_database) as store:
            return dict(await store.departed_servers())
    got = asyncio.run(on_pg())
    assert got == {G: WHEN, 7: WHEN}
    back = tmp_path / "back.db"
    assert cli.main(["copy", "--from", pg_database, "--to", str(back)]) == 0

    async def on_lite() -> dict[int, datetime]:
        async with await SqliteStore.open(back) as store:
            return dict(await store.departed_servers())
    assert asyncio.run(on_lite()) == {G: WHEN, 7: WHEN}
