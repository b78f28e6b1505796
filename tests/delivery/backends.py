"""The store a crash test's ``newswatch run`` subprocess writes to, and how the test looks into
it while (or after) that process runs: an SQLite file, or a PostgreSQL database.

Both give the ``[storage]`` table for the subprocess's config, the environment it needs, the
outbox counts (read beside the running process) and an integrity verdict after a kill:

- SQLite: ``PRAGMA integrity_check`` of the file, read with sqlite3 (a file not yet created is
  "ok", as before any process wrote it).
- PostgreSQL: the server keeps its own pages sound, so what a kill could break is ours: the
  store must open read-only (its schema whole and current, not half migrated) and for writing
  (the killed process's writer lock went with its connection); after a clean stop, no outbox row
  may be left ``sending``. A database the killed process had not yet given a schema is "ok".

The subprocess reads the PostgreSQL URL from ``NEWSWATCH_TEST_DB`` (``url = "env:…"``), so the
config file on disk names no server.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import pytest

from watchers.errors import StoreError
from watchers.store.open import open_store

__all__ = ["BACKENDS", "DB_ENV", "Backend", "PostgresBackend", "SqliteBackend", "backend_for"]

DB_ENV = "NEWSWATCH_TEST_DB"
LOCK_GRACE = 10.0  # seconds a dead writer's lock may outlive it


class Backend(Protocol):
    """Where the subprocess's store lives, and the test's view into it."""

    name: str

    @property
    def target(self) -> str | Path:
        """What :func:`watchers.store.open.open_store` opens: the file or the URL."""
        ...

    def storage(self) -> dict[str, str]:
        """The ``[storage]`` table of the subprocess's config."""
        ...

    def env(self) -> dict[str, str]:
        """Variables the subprocess needs for that table."""
        ...

    async def outbox(self) -> dict[str, int]:
        """state -> rows of the outbox ({} before the schema exists)."""
        ...

    async def outbox_by_kind(self) -> dict[tuple[str, str], int]:
        """(kind, state) -> rows of the outbox ({} before the schema exists)."""
        ...

    async def integrity(self, *, stopped_cleanly: bool = False) -> str:
        """"ok", or what is wrong with the store after a kill (``stopped_cleanly``: after a
        clean stop, when more must hold)."""
        ...

    async def __aenter__(self) -> Backend: ...

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None: ...


class SqliteBackend:
    """``nw.db`` in the working directory, read with sqlite3 (WAL lets a reader in beside the
    running process)."""

    name = "sqlite"

    def __init__(self, workdir: Path, file: str = "nw.db") -> None:
        self.file = file
        self.db = workdir / file

    @property
    def target(self) -> Path:
        return self.db

    def storage(self) -> dict[str, str]:
        return {"path": self.file}

    def env(self) -> dict[str, str]:
        return {}

    async def outbox(self) -> dict[str, int]:
        return {state: n for (_, state), n in self._grouped("state").items()}

    async def outbox_by_kind(self) -> dict[tuple[str, str], int]:
        return self._grouped("kind, state")

    def _grouped(self, columns: str) -> dict[tuple[str, str], int]:
        if not self.db.exists():
            return {}
        try:
            with contextlib.closing(sqlite3.connect(self.db, timeout=30)) as conn:
                rows = conn.execute(
                    f"SELECT {columns}, count(*) FROM outbox GROUP BY {columns}").fetchall()
        except sqlite3.OperationalError:  # not created yet
            return {}
        if columns == "state":
            return {("", str(s)): int(n) for s, n in rows}
        return {(str(k), str(s)): int(n) for k, s, n in rows}

    async def integrity(self, *, stopped_cleanly: bool = False) -> str:
        if not self.db.exists():
            return "ok"
        with contextlib.closing(sqlite3.connect(self.db, timeout=30)) as conn:
            return str(conn.execute("PRAGMA integrity_check").fetchone()[0])

    async def __aenter__(self) -> SqliteBackend:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        pass


class PostgresBackend:
    """A database on a PostgreSQL server (``url``, e.g. from the ``pg_database`` fixture); the
    outbox is read over one asyncpg connection kept for the test, outside the store."""

    name = "postgres"

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: Any = None

    @property
    def target(self) -> str:
        return self.url

    def storage(self) -> dict[str, str]:
        return {"url": f"env:{DB_ENV}"}

    def env(self) -> dict[str, str]:
        return {DB_ENV: self.url}

    async def _connection(self) -> Any:
        import asyncpg  # type: ignore[import-untyped]

        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self.url, timeout=30)
        return self._conn

    async def _has_schema(self) -> bool:
        conn = await self._connection()
        return bool(await conn.fetchval("SELECT to_regclass('outbox') IS NOT NULL"))

    async def outbox(self) -> dict[str, int]:
        return {state: n for (_, state), n in (await self._grouped("state")).items()}

    async def outbox_by_kind(self) -> dict[tuple[str, str], int]:
        return await self._grouped("kind, state")

    async def _grouped(self, columns: str) -> dict[tuple[str, str], int]:
        if not await self._has_schema():
            return {}
        conn = await self._connection()
        rows = await conn.fetch(f"SELECT {columns}, count(*) AS n FROM outbox GROUP BY {columns}")
        if columns == "state":
            return {("", str(r["state"])): int(r["n"]) for r in rows}
        return {(str(r["kind"]), str(r["state"])): int(r["n"]) for r in rows}

    async def integrity(self, *, stopped_cleanly: bool = False) -> str:
        if not await self._has_schema():
            return "ok"
        problems = []
        try:
            await (await open_store(self.url, readonly=True)).aclose()
        except StoreError as exc:
            problems.append(f"the store does not open read-only: {exc}")
        # The server ends a killed client's session (and so frees its writer lock) once it
        # reads the closed socket, a moment after the kill: wait that moment, no longer.
        deadline = time.monotonic() + LOCK_GRACE
        while True:
            try:
                await (await open_store(self.url)).aclose()
                break
            except StoreError as exc:
                if time.monotonic() > deadline or "another newswatch process" not in str(exc):
                    problems.append(f"the store does not open for writing: {exc}")
                    break
                await asyncio.sleep(0.05)
        if stopped_cleanly:
            stuck = (await self.outbox()).get("sending", 0)
            if stuck:
                problems.append(f"{stuck} outbox row(s) left 'sending' after a clean stop")
        return "; ".join(problems) or "ok"

    async def __aenter__(self) -> PostgresBackend:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


# The backends a crash test runs on: SQLite in every ``make test``; PostgreSQL marked
# ``pg_crash``, left to ``make crash-pg`` (their kill loops add over a minute to the suite).
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.pg_crash)]


def backend_for(request: pytest.FixtureRequest, workdir: Path) -> Backend:
    """The backend a ``params=BACKENDS`` fixture's ``request`` names; PostgreSQL gets a fresh
    database from the ``pg_database`` fixture (skipped, with how to enable it, when there is no
    PostgreSQL)."""
    if request.param == "postgres":
        return PostgresBackend(request.getfixturevalue("pg_database"))
    return SqliteBackend(workdir)
