"""Unmuting a rule whose mute has ended: it was not muted, on both backends (an SQLite file, and
a database of the session's PostgreSQL server, through the shared ``store`` fixture)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watchers.store import Store

pytestmark = pytest.mark.parametrize("store", ["sqlite", "postgres"], indirect=True)

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


async def test_unmute_of_a_mute_that_has_ended_says_it_was_not_muted(store: Store) -> None:
    """An ended mute keeps its row, and unmute counted any row: two hours after a one-hour
    mute, with mutes(now) empty, it answered True ("unmuted") and only a second call said the
    rule was not muted. Now a mute that has ended is not a mute, at its end too, as mutes(now)
    judges, and its row goes all the same."""
    await store.mute("troops", NOW + timedelta(hours=1))
    later = NOW + timedelta(hours=2)
    assert dict(await store.mutes(now=later)) == {}
    assert await store.unmute("troops", now=later) is False, "the mute had ended an hour ago"
    assert await store.unmute("troops", now=NOW) is False, "its ended row was left behind"

    await store.mute("troops", NOW + timedelta(hours=1))
    assert await store.unmute("troops", now=NOW + timedelta(hours=1)) is False  # ends then
    assert dict(await store.mutes(now=NOW)) == {}


async def test_unmute_of_a_running_mute_still_unmutes(store: Store) -> None:
    """A mute still running is unmuted (once), and a rule never muted was not muted."""
    await store.mute("troops", NOW + timedelta(hours=1))
    await store.mute("floods", NOW + timedelta(hours=1))
    assert await store.unmute("nosuch", now=NOW) is False
    assert await store.unmute("troops", now=NOW + timedelta(minutes=59)) is True
    assert await store.unmute("troops", now=NOW) is False
    assert set(await store.mutes(now=NOW)) == {"floods"}
