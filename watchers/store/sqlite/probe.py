"""What an SQLite store file holds, read without writing and without its writer lock: the
schema version, whether it is an unfinished copy, which tables hold rows. Apart from
``watchers.store.copy`` (which probes PostgreSQL too, and loads its driver) so that
``newswatch check`` asks an SQLite file what a writer would refuse without loading asyncpg."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from watchers.errors import StoreError
from watchers.store.sqlite import schema
from watchers.store.sqlite._db import Db

__all__ = ["TABLES", "Probe", "file_size", "incomplete_error", "open_refusal", "probe",
           "start_over"]

# Every table of a store, parents before children (foreign keys): outbox rows name articles,
# acks name outbox rows. (The order in which a copy writes them.)
TABLES = ("articles", "matches", "outbox", "acks", "not_relevant", "escalations", "stories",
          "story_routes", "route_pauses", "source_state", "rules", "sources", "routes", "mutes",
          "surges", "departed_servers")


@dataclass(frozen=True)
class Probe:
    version: int  # 0: a new, empty database
    incomplete: bool  # marked as an unfinished copy
    rows: dict[str, int]  # tables that hold rows (at most 1 counted per table)


def file_size(path: str) -> int | None:
    """The file's size; None where there is no file."""
    try:
        return Path(path).stat().st_size
    except FileNotFoundError:
        return None


async def probe(path: str) -> Probe:
    """What the file at ``path`` holds (a new, empty database where there is none yet)."""
    if not file_size(path):
        return Probe(0, False, {})
    db = await Db.connect(path, lock=False, readonly=True)
    try:
        rows = await db.fetchall("SELECT (SELECT application_id FROM pragma_application_id)")
        if int(rows[0][0]) == schema.COPYING_APPLICATION_ID:
            return Probe(schema.SCHEMA_VERSION, True, {})
        version = await schema.check(db, readonly=False)
        present = {str(r[0]) for r in await db.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        held = {}
        for table in TABLES:
            if table in present and await db.fetchall(f'SELECT 1 FROM "{table}" LIMIT 1'):
                held[table] = 1
        return Probe(version, False, held)
    finally:
        await db.close()


def start_over(path: str) -> str:
    """How to start over after an incomplete copy into the file ``path``."""
    return f"delete {path} (with its -wal and -shm files, if any) and run the copy again"


def incomplete_error(path: str) -> StoreError:
    return StoreError(f"{path} holds an incomplete copy (an interrupted or failed "
                      f"`newswatch copy`); to start over, {start_over(path)}")


async def open_refusal(path: str) -> str | None:
    """Why a writer would refuse the SQLite file ``path`` once it read it (an incomplete copy,
    a schema newer than this newswatch, another program's database, a damaged one), read
    without writing; None when it would open it (also when there is no file yet, or an empty
    one). What ``newswatch check`` asks: it said "ok" for each of these, and run then
    refused."""
    if not file_size(path):
        return None
    try:
        found = await probe(path)
    except StoreError as exc:
        return str(exc)
    return str(incomplete_error(path)) if found.incomplete else None
