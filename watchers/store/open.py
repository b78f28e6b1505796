"""Open the store a config names: a ``postgresql://`` (or ``postgres://``) URL is a
:class:`PostgresStore`, anything else the path of an SQLite file (:class:`SqliteStore`)."""

from __future__ import annotations

import os
from pathlib import Path

from watchers.store.base import Store
from watchers.store.sqlite import PlacesOf, SqliteStore, TermsOf

__all__ = ["is_postgres_url", "open_store", "store_exists"]


def is_postgres_url(target: str | Path) -> bool:
    """Whether ``target`` names a PostgreSQL database rather than an SQLite file."""
    return str(target).startswith(("postgresql://", "postgres://"))


def store_exists(target: str | Path) -> bool:
    """Whether there may be a database at ``target`` to read: a PostgreSQL server is asked
    when opened; an SQLite file must exist."""
    if is_postgres_url(str(target)):
        return True
    try:
        os.stat(target)
    except FileNotFoundError:
        return False
    except OSError:
        pass  # a loop of links, a file for a folder: opening it says what is wrong
    return True


async def open_store(url_or_path: str | Path, *, terms_of: TermsOf | None = None,
                     lock: bool = True, readonly: bool = False, shared: bool = False,
                     keys_version: int | None = None,
                     places_of: PlacesOf | None = None) -> Store:
    """The store at ``url_or_path``, opened (created or upgraded when writing).

    ``terms_of`` (the engine's index words of a text) is only needed to upgrade a database
    older than its lookup index (SQLite) or its URL index (both). ``lock`` and ``readonly``
    mean the same on both: hold the one-writer lock; open without writing. ``shared``
    (PostgreSQL, with ``lock=False``): hold the writer lock shared, as role processes do.
    ``keys_version`` (the engine's ``KEYS_VERSION``): a writer rebuilds lookup indexes built
    with other word keys (it needs ``terms_of``), a reader refuses them. ``places_of`` (the
    engine's places of an article): SQLite's places index (see
    :meth:`SqliteStore.open`); PostgreSQL keeps none.
    """
    target = str(url_or_path)
    if is_postgres_url(target):
        # Imported here: the driver costs a tenth of a second that SQLite users need not pay.
        from watchers.store.postgres import PostgresStore

        return await PostgresStore.open(target, lock=lock, readonly=readonly, shared=shared,
                                        terms_of=terms_of, keys_version=keys_version)
    return await SqliteStore.open(target, terms_of=terms_of, lock=lock, readonly=readonly,
                                  keys_version=keys_version, places_of=places_of)
