"""kill -9 around the send of what quiet hours kept, with a real ``newswatch run`` process: a
poll at 23:00 (the engine in-process, its clock at 23:00) brought more than its source posts
one by one to a route in quiet hours, so its alerts and the summary of the rest were kept. The
process starts after 07:00 of that night, makes the quiet-hours digest and sends it, then the
summary; it is killed while Discord holds one of those sends, and started again. Each goes out
once, the summary after the digest, and every article of the poll is in one or the other.

Runs on SQLite and on PostgreSQL (marked ``pg_crash``, for ``make crash-pg``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.bot.conftest import TOKEN
from tests.delivery._digest_driver import (
    ROUTE,
    channel_posts,
    kill_while_held,
    newswatch,
    restart_until,
    write_config,
)
from tests.delivery.backends import Backend
from tests.delivery.test_time_edges import HEADLINES
from tests.fakes.discord_emulator import DiscordEmulator, RecordedRequest
from tests.fakes.sinks import RecordingSink
from watchers.config import parse_config
from watchers.engine import open_engine
from watchers.schedule import ManualClock

NIGHT = datetime(2024, 5, 1, 23, 0, tzinfo=UTC)
PER_POLL = 3

CASES = [
    pytest.param(False, 0, id="digest-not-yet-created"),
    pytest.param(True, 0, id="digest-created-answer-held"),
    pytest.param(False, 1, id="summary-not-yet-created"),
    pytest.param(True, 1, id="summary-created-answer-held"),
]


async def keep_a_night_poll(tmp_path: Path, backend: Backend) -> list[str]:
    """One poll at 23:00 of eight matching articles to the route, in its quiet hours, by the
    engine in-process; nothing may be posted. Returns the titles."""
    (tmp_path / "ap").mkdir()
    titles = list(HEADLINES[:8])  # each its own story: one line of the digest each
    for i, title in enumerate(titles):
        (tmp_path / "ap" / f"{i}.json").write_text(json.dumps({
            "title": title, "text": f"{title}. Reported at {i} past eleven.",
            "date": (NIGHT - timedelta(minutes=i)).isoformat()}))
    storage = ({"path": "nw.db"} if backend.name == "sqlite" else {"url": str(backend.target)})
    cfg = parse_config({
        "storage": storage,
        "channels": {ROUTE: {"target": 1, "stories": "off", "quiet_hours": "22:00-07:00"}},
        "sources": [{"name": "ap", "type": "folder", "path": "ap", "settle": 0,
                     "max_alerts_per_poll": PER_POLL}],
        "rules": [{"name": "troops", "query": "troops"}],
    }, base_dir=tmp_path)
    sink = RecordingSink()
    async with open_engine(cfg, default_sink=sink, clock=ManualClock(NIGHT),
                           start=False) as engine:
        await engine.run_once()
    assert (sink.alerts, sink.notices, sink.digests) == ([], [], []), "posted in quiet hours"
    return titles


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("after_processing", "post"), CASES)
async def test_kill_9_around_the_morning_sends_posts_the_digest_then_the_summary_once(
        emu: DiscordEmulator, tmp_path: Path, after_processing: bool, post: int,
        backend: Backend) -> None:
    titles = await keep_a_night_poll(tmp_path, backend)
    write_config(tmp_path, emu, backend.storage())
    channel = emu.channel(ROUTE).id

    def posts() -> list[RecordedRequest]:
        return channel_posts(emu, channel)

    async with newswatch(tmp_path, backend.env()) as nw:
        held = await kill_while_held(emu, nw, channel, post, after_processing)
        assert await backend.integrity() == "ok"
        # the digest and the summary's notice were written in one transaction, before either
        # send began: the kill left them unsent, not lost
        killed = await backend.outbox_by_kind()
        assert killed.get(("summary", "digested")) == 1, killed
        assert sum(n for (kind, _), n in killed.items() if kind == "digest") == 1, killed
        assert sum(n for (kind, _), n in killed.items() if kind == "notice") == 1, killed

        want = {("alert", "digested"): PER_POLL, ("digest", "delivered"): 1,
                ("summary", "digested"): 1, ("notice", "delivered"): 1}
        status = await restart_until(nw, backend.outbox_by_kind, want, held, after_processing)
    assert status == 0, nw.stderr()[-3000:]

    messages = emu.messages(channel)
    assert len(messages) == 2, [(m.content, m.embeds) for m in messages]
    digest, summary = messages
    footer = digest.embeds[0]["footer"]["text"] if digest.embeds else ""
    assert re.fullmatch(r"newswatch digest \d+ · route alerts", footer), footer
    shown = [t for t in titles if t in digest.embeds[0].get("description", "")]
    assert len(shown) == PER_POLL
    assert f"brought {len(titles) - PER_POLL} more matching article" in summary.content
    left = [t for t in titles if t in summary.content]
    assert sorted(shown + left) == sorted(titles)
    # every post went under one nonce per message, whatever the retries
    nonces = Counter(r.json["nonce"] for r in posts())
    assert len(nonces) == 2, nonces
    assert await backend.integrity(stopped_cleanly=True) == "ok"
    assert emu.validate_all() == []
    log = nw.stderr()
    assert TOKEN not in log
    at = log.find("Traceback")
    assert at < 0, log[max(0, at - 1500):at + 3000]
