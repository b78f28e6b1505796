"""PostgreSQL's own limits, met by what SQLite takes as it comes: NUL in text (an error's text
quoting what a destination or source sent), an article of more distinct words than one tsvector
holds (1 MB), and a role without rights on the tables; and URLs whose parts do not read. Each is
stored or named as on SQLite; none stops the process, and no error holds a password. A
throwaway cluster from tests/pg.py; no mocks."""

from __future__ import annotations

import logging
import random
import string
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]
import pytest

from tests.fakes.sinks import RecordingSink
from tests.pg import admin
from tests.store._support import alert, art
from watchers.config import Config, parse_config
from watchers.engine import open_engine
from watchers.errors import StoreError, TransientDeliveryError
from watchers.rules.lookup import index_terms, lookup_terms
from watchers.rules.text import KEYS_VERSION
from watchers.search import search
from watchers.store import SourceState, SqliteStore
from watchers.store.base import Registration
from watchers.store.copy import copy_store
from watchers.store.postgres import PostgresStore

# What a proxy in front of a destination may answer: its page holds a NUL byte.
NUL_ANSWER = "Discord error 502 <html>bad\x00gateway</html>"
STORED = "Discord error 502 <html>badgateway</html>"


def config(tmp_path: Path, storage: dict[str, Any]) -> Config:
    return parse_config({
        "storage": storage,
        "sources": [{"name": "in", "type": "folder", "path": "in", "settle": 0}],
        "rules": [{"name": "troops", "query": "troops OR soldiers"}],
    }, base_dir=tmp_path)


async def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


# ------------------------------------------------------------------ NUL in text


async def test_reasons_errors_and_notices_holding_nul_are_stored_without_it(
        pg_database: str) -> None:
    """PostgreSQL refused them ("invalid byte sequence for encoding UTF8: 0x00"), and the
    failed write stopped `run`; SQLite stores them."""
    async with await PostgresStore.open(pg_database) as store:
        a = art("Troops cross the border")
        await store.record(a, [], [alert("alerts"), alert("other")],
                           terms=index_terms(a.title, a.text))
        first, second = (r.id for r in await store.alerts())
        await store.mark_retry(first, at=datetime.now(UTC), reason=NUL_ANSWER)
        await store.mark_rejected(second, NUL_ANSWER)
        assert await store.pause_route("alerts", NUL_ANSWER) == 1
        await store.add_notice("ops", "source in paused: bad\x00feed")
        await store.save_source_state(SourceState(name="in", last_error="bad\x00feed"))
        assert await store.paused_routes() == {"alerts": STORED}
        by_id = {r.id: r for r in await store.alerts()}
        assert by_id[first].reason == by_id[second].reason == STORED
        assert [r.text for r in await store.alerts(kind="notice")] == ["source in paused: badfeed"]
        state = await store.source_state("in")
        assert state is not None and state.last_error == "badfeed"
        # a poll worker's release of its leased source (several processes)
        await store.register_sources({"in": Registration()})
        now = datetime.now(UTC)
        (leased,) = await store.claim_sources(owner="w1", until=now + timedelta(minutes=1),
                                              now=now, limit=1)
        assert await store.release_source(replace(leased, last_error="gone\x00again"),
                                          owner="w1")
        state = await store.source_state("in")
        assert state is not None and state.last_error == "goneagain"


async def test_a_destination_answering_with_nul_does_not_stop_delivery(
        tmp_path: Path, pg_database: str) -> None:
    """The retry's reason could not be written: the store error stopped `run` (SQLite kept
    the alert for its retry)."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("Troops move\n\nSoldiers were seen near the border.")
    sink = RecordingSink(failures=[TransientDeliveryError(NUL_ANSWER)])
    async with open_engine(config(tmp_path, {"url": pg_database}), start=False,
                           default_sink=sink) as engine:
        await engine.run_once()
        rows = await engine.store.alerts()
    assert [(r.state, r.reason) for r in rows] == [("retry", STORED)]


# ------------------------------------------------------------------ very many words


def _dump(words: int) -> str:
    """A log-like text of ``words`` distinct words: far more than one tsvector holds."""
    rnd = random.Random(7)
    return " ".join("".join(rnd.choices(string.ascii_lowercase, k=7)) for _ in range(words))


async def test_an_article_of_more_words_than_a_tsvector_holds_is_stored_and_found(
        tmp_path: Path, pg_database: str, caplog: pytest.LogCaptureFixture) -> None:
    """PostgreSQL refused its lookup terms ("string is too long for tsvector"): the poll's
    batch failed, `run` stopped, and stopped again at every start on the same file. It is
    indexed under the words that fit, and the writer says so."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "dump.txt").write_text("Troops log dump\n\naardvark " + _dump(120_000))
    (tmp_path / "in" / "b.txt").write_text("Troops move\n\nSoldiers were seen near the border.")
    sink = RecordingSink()
    caplog.set_level(logging.WARNING, "watchers.store.postgres")
    async with open_engine(config(tmp_path, {"url": pg_database}), start=False,
                           default_sink=sink) as engine:
        await engine.run_once()
        assert await engine.count_articles() == 2
        found = await search(engine.store, "aardvark")
        assert [h.article.title for h in found.hits] == ["Troops log dump"]
    assert len(sink.alerts) == 2
    assert "has more distinct words than PostgreSQL's lookup index holds for one article" \
        in caplog.text

    # A rebuild of the lookup indexes (other word keys) reads the same article again.
    await _fetch(pg_database, "UPDATE index_keys SET version = 0")
    async with await PostgresStore.open(pg_database, terms_of=lookup_terms,
                                        keys_version=KEYS_VERSION) as store:
        found = await search(store, "aardvark")
        assert [h.article.title for h in found.hits] == ["Troops log dump"]


async def test_a_copy_into_postgresql_takes_nul_and_articles_of_very_many_words(
        tmp_path: Path, pg_database: str) -> None:
    """An SQLite store holding both (SQLite takes them) could not be copied: the copy stopped
    at the first, leaving an incomplete copy."""
    source = tmp_path / "nw.db"
    async with await SqliteStore.open(source) as lite:
        big = art("Troops log dump", "aardvark " + _dump(120_000))
        await lite.record(big, [], [alert("alerts")], terms=index_terms(big.title, big.text))
        (row,) = await lite.alerts()
        await lite.mark_rejected(row.id, NUL_ANSWER)
    summary = await copy_store(str(source), pg_database, terms_of=lookup_terms,
                               keys_version=KEYS_VERSION)
    assert not summary.mismatched
    async with await PostgresStore.open(pg_database, readonly=True) as store:
        (row,) = await store.alerts()
        assert row.reason == STORED
        found = await search(store, "aardvark")
        assert [h.article.title for h in found.hits] == ["Troops log dump"]


# ------------------------------------------------------------------ URLs


async def test_a_url_whose_parts_do_not_read_is_a_store_error_without_the_password() -> None:
    """A library caller's URL (no config check read it) raised urllib's ValueError, which
    quoted a password holding '/' as the port."""
    for url, why in (
            ("postgresql://bob:s3cret/word@127.0.0.1/news", "must be percent-encoded (%2F"),
            ("postgresql://bob:s3cret@127.0.0.1:99999/news", "Port out of range"),
            ("postgresql://bob:s3cret@[::1/news", "Invalid IPv6 URL"),
            # a password starting with '/', or digits before a '?' or '#': the address was
            # cut there, its "port" read as a number, and every message named the database by
            # the pieces, the password in them
            ("postgresql://bob:/s3cret@127.0.0.1/news", "must be percent-encoded (%2F"),
            ("postgresql://bob:4711?s3cret@127.0.0.1:5432/news", "must be percent-encoded"),
            ("postgresql://bob:4711#s3cret@127.0.0.1/news", "must be percent-encoded")):
        with pytest.raises(StoreError) as info:
            await PostgresStore.open(url)
        assert "not a valid PostgreSQL URL" in str(info.value) and why in str(info.value)
        assert "s3cret" not in str(info.value) and "4711" not in str(info.value)


# ------------------------------------------------------------------ rights


async def test_a_role_without_rights_on_the_tables_is_told_so(pg_database: str,
                                                               pg_url: str) -> None:
    """It was told the database was not newswatch's (information_schema lists only the
    columns a role may use), and sent looking for the wrong problem."""
    async with await PostgresStore.open(pg_database):
        pass
    role = f"nw_test_{uuid.uuid4().hex[:12]}"
    admin(pg_url, f'CREATE ROLE "{role}" LOGIN')
    try:
        parts = urlsplit(pg_database)
        as_role = urlunsplit(parts._replace(netloc=f"{role}@{parts.netloc.rpartition('@')[2]}"))
        for readonly in (False, True):
            with pytest.raises(StoreError) as info:
                await PostgresStore.open(as_role, readonly=readonly)
            assert str(info.value).endswith(": permission denied for table schema_version"), \
                info.value
    finally:
        admin(pg_url, f'DROP ROLE "{role}"')
