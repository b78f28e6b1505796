"""kill -9 at random points: after every restart each alert reaches Discord exactly once and the
SQLite file stays sound. (``make soak`` runs the same loop for 200 cycles.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.bot.conftest import TOKEN
from tests.delivery.crashloop import crash_loop
from tests.fakes.discord_emulator import DiscordEmulator

CYCLES = int(os.environ.get("NEWSWATCH_CRASH_CYCLES", "20"))


@pytest.mark.timeout(240)
async def test_kill_9_at_random_points_loses_nothing_and_doubles_nothing(
        emu: DiscordEmulator, tmp_path: Path) -> None:
    report = await crash_loop(emu, tmp_path, cycles=CYCLES, per_cycle=3)
    assert report.cycles >= 20
    assert report.integrity == []  # PRAGMA integrity_check said ok after every kill
    assert report.lost == 0 and report.duplicated == 0, report.summary()
    assert report.delivered == report.expected == 3 * CYCLES
    assert report.outbox == {"delivered": report.expected}
    assert report.clean_exit
    # some kills landed after Discord had created a message the process never heard about;
    # the restart's resend carried the same nonce and Discord returned the existing message
    assert report.deduplicated > 0, report.summary()
    assert TOKEN not in report.stderr
    at = report.stderr.find("Traceback")
    assert at < 0, report.stderr[max(0, at - 1500):at + 3000]
