"""kill -9 at random points: after every restart each alert reaches Discord exactly once and the
store stays sound, on SQLite (``PRAGMA integrity_check``) and on PostgreSQL (the store opens
read-only and for writing after every kill; nothing left ``sending`` after a clean stop).
(``make soak`` runs the same loop on SQLite for 200 cycles; ``make crash-pg`` runs the
PostgreSQL variant, marked ``pg_crash``.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.bot.conftest import TOKEN
from tests.delivery.backends import Backend
from tests.delivery.crashloop import crash_loop
from tests.fakes.discord_emulator import DiscordEmulator

CYCLES = int(os.environ.get("NEWSWATCH_CRASH_CYCLES", "20"))


@pytest.mark.timeout(240)
async def test_kill_9_at_random_points_loses_nothing_and_doubles_nothing(
        emu: DiscordEmulator, tmp_path: Path, backend: Backend) -> None:
    report = await crash_loop(emu, tmp_path, cycles=CYCLES, per_cycle=3, backend=backend)
    print(report.summary())  # the figures, shown with -s or -rP
    assert report.cycles >= 20
    assert report.integrity == []  # the store was sound after every kill
    assert report.lost == 0 and report.duplicated == 0, report.summary()
    assert report.delivered == report.expected == 3 * CYCLES
    assert report.outbox == {"delivered": report.expected}
    assert report.clean_exit
    # some kills landed after Discord had created a message the process never heard about;
    # the restart found it in the channel, or its resend carried the same nonce and Discord
    # returned the existing message
    assert report.deduplicated + report.found > 0, report.summary()
    assert TOKEN not in report.stderr
    at = report.stderr.find("Traceback")
    assert at < 0, report.stderr[max(0, at - 1500):at + 3000]
