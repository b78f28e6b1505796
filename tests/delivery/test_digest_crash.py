"""kill -9 around a digest send, with a real ``newswatch run`` process: whether Discord had not
yet created the digest's message or had created it and not yet answered, the restart posts the
digest exactly once (each part once), and it carries every alert that was waiting for it.

Runs on SQLite and on PostgreSQL (marked ``pg_crash``, for ``make crash-pg``). The store starts
with alerts ``scheduled`` for a digest that fell due while newswatch was stopped, so the first
start makes the digest at once. The emulator holds one digest POST (before or after creating the
message); the process is killed while Discord holds it, then started again without faults.
Discord deduplicates by ``nonce`` + ``enforce_nonce``, so a resend of a part with the same nonce
returns the message already there: that is what keeps the count at one.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tests.bot.conftest import TOKEN
from tests.delivery._digest_driver import (
    ROUTE,
    channel_posts,
    kill_while_held,
    newswatch,
    restart_until,
    schedule_due_alerts,
    write_config,
)
from tests.delivery.backends import Backend
from tests.delivery.crashloop import FOUND
from tests.fakes.discord_emulator import DiscordEmulator, RecordedRequest
from watchers.store.open import open_store

# Enough long headlines that the digest needs two messages, so "each part once" is tested.
ALERTS = 24

CASES = [
    pytest.param(False, 0, id="part-1-not-yet-created"),
    pytest.param(True, 0, id="part-1-created-answer-held"),
    pytest.param(False, 1, id="part-2-not-yet-created"),
    pytest.param(True, 1, id="part-2-created-answer-held"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("after_processing", "part"), CASES)
async def test_kill_9_around_a_digest_send_posts_it_once_with_every_alert(
        emu: DiscordEmulator, tmp_path: Path, after_processing: bool, part: int,
        backend: Backend) -> None:
    scheduled = await schedule_due_alerts(backend.target, ALERTS)
    write_config(tmp_path, emu, backend.storage())
    channel = emu.channel(ROUTE).id

    def posts() -> list[RecordedRequest]:
        return channel_posts(emu, channel)

    async with newswatch(tmp_path, backend.env()) as nw:
        # the premise of each case: the held part was (or was not yet) created when killed
        held = await kill_while_held(emu, nw, channel, part, after_processing)
        assert await backend.integrity() == "ok"
        # the digest was made before its send began; the kill left it unsent, not lost
        killed = await backend.outbox_by_kind()
        assert killed.get(("alert", "digested")) == ALERTS, killed
        assert sum(n for (kind, _), n in killed.items() if kind == "digest") == 1, killed

        want = {("alert", "digested"): ALERTS, ("digest", "delivered"): 1}
        status = await restart_until(nw, backend.outbox_by_kind, want, held, after_processing)
    assert status == 0, nw.stderr()[-3000:]

    messages = emu.messages(channel)
    footers = [m.embeds[0]["footer"]["text"] if m.embeds else "" for m in messages]
    twice = [f for f, n in Counter(footers).items() if n > 1]
    assert not twice, f"posted more than once: {twice}"
    parts = len(messages)
    assert parts >= 2 and parts > part, footers
    found = [re.fullmatch(r"newswatch digest (\d+) · part (\d+)/(\d+) · route alerts", f)
             for f in footers]
    assert all(found), footers
    digest_ids = {int(m.group(1)) for m in found if m}
    assert len(digest_ids) == 1, footers  # one digest
    assert sorted(int(m.group(2)) for m in found if m) == list(range(1, parts + 1)), footers
    assert {int(m.group(3)) for m in found if m} == {parts}, footers
    # every part was sent under one nonce, whatever the retries
    nonces = Counter(r.json["nonce"] for r in posts())
    assert len(nonces) == parts and all(r.json.get("enforce_nonce") for r in posts()), nonces
    # the held part (Discord created it, the answer never came) was recovered after the
    # restart: sent again under its nonce, or found among the channel's messages first
    assert sum(nonces.values()) > parts or FOUND in nw.stderr(), nw.stderr()[-3000:]
    # every waiting alert is listed, once
    text = "\n".join(m.embeds[0].get("description", "") for m in messages)
    for alert in scheduled:
        assert text.count(f"({alert.url})") == 1, (alert, text[:500])
        assert text.count(alert.title) == 1, alert

    (digest_id,) = digest_ids
    store = await open_store(backend.target, readonly=True)
    try:
        digests = await store.alerts(kind="digest")
        assert [(d.id, d.state) for d in digests] == [(digest_id, "delivered")]
        assert digests[0].remote_id == str(messages[0].id)
        alerts = await store.alerts(kind="alert")
        assert {(a.state, a.digest_id) for a in alerts} == {("digested", digest_id)}
        members = await store.digest_members(digest_id)
        assert [m.id for m in members] == [a.row_id for a in scheduled]
    finally:
        await store.aclose()
    assert await backend.integrity(stopped_cleanly=True) == "ok"
    assert emu.validate_all() == []
    log = nw.stderr()
    assert TOKEN not in log
    at = log.find("Traceback")
    assert at < 0, log[max(0, at - 1500):at + 3000]
