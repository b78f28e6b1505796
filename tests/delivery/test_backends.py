"""The crash tests' PostgreSQL integrity check can fail: it names a store that will not open for
writing (a writer still holds it) and an outbox row left ``sending`` after a clean stop."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.delivery.backends import PostgresBackend
from watchers.store.open import open_store


async def test_postgres_integrity_reports_a_held_store_and_a_row_left_sending(
        pg_database: str) -> None:
    async with PostgresBackend(pg_database) as backend:
        # no schema yet: as before any process wrote to it
        assert await backend.integrity() == "ok"
        assert await backend.outbox() == {}
        store = await open_store(pg_database)
        try:
            await store.add_notice("alerts", "hello")
            claimed = await store.claim_route("alerts", now=datetime.now(UTC))
            assert [r.state for r in claimed] == ["sending"]
            verdict = await backend.integrity()
            assert verdict.startswith("the store does not open for writing: "), verdict
        finally:
            await store.aclose()
        assert await backend.outbox() == {"sending": 1}
        assert await backend.outbox_by_kind() == {("notice", "sending"): 1}
        # after a kill a row may be mid-send; after a clean stop it may not
        assert await backend.integrity() == "ok"
        verdict = await backend.integrity(stopped_cleanly=True)
        assert verdict == "1 outbox row(s) left 'sending' after a clean stop", verdict
