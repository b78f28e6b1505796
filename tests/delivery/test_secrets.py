"""The bot token and webhook URLs never leak: not in a log line, an error, a stored reason, or
anything shown in Discord — even when Discord's own error messages echo them back."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

from tests.bot.conftest import TOKEN
from tests.bot.test_run_with_token import write_toml
from tests.delivery.articles import MESSAGES, WEBHOOK, drop_articles, report_numbers
from tests.delivery.conftest import HOOK_ID, HOOK_TOKEN, config
from tests.fakes.discord_emulator import DiscordEmulator, Fault

HOOK_URL = f"https://discord.com/api/webhooks/{HOOK_ID}/{HOOK_TOKEN}"


def echoing(secret: str) -> Fault:
    """A 400 whose error text quotes a secret back, as a proxy or a verbose API might."""
    return Fault.invalid_form({"content": {"_errors": [
        {"code": "ECHO", "message": f"could not post with {secret} at {HOOK_URL}"}]}})


async def test_no_secret_in_logs_errors_stored_reasons_or_discord(
        emu: DiscordEmulator, tmp_path: Path) -> None:
    wire = tmp_path / "wire"
    drop_articles(wire, "troops", range(3))
    drop_articles(wire, "floods", range(10, 12))
    data = config(emu)
    data["channels"]["hook"] = "env:NEWSWATCH_TEST_HOOK"
    write_toml(data, tmp_path / "config.toml")
    emu.inject(MESSAGES, echoing(TOKEN), times=1)  # first alert: rejected
    emu.inject(MESSAGES, Fault.reset_after_receive(), times=1)  # second: answer lost
    emu.inject(WEBHOOK, echoing(HOOK_TOKEN), times=1)  # first webhook alert: rejected
    emu.inject(WEBHOOK, Fault.not_found(10015), times=1)  # then: the webhook is gone
    env = {**os.environ, "NEWSWATCH_TEST_TOKEN": TOKEN, "NEWSWATCH_TEST_HOOK": HOOK_URL}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "-c", "config.toml", "-v", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    ops = emu.channel("ops").id
    shown: list[str] = []
    try:
        for _ in range(400):
            if len(report_numbers(emu, "alerts")) >= 2 and emu.messages(ops):
                break
            await asyncio.sleep(0.05)
        assert report_numbers(emu, "alerts") == [1, 2]
        assert "'hook' paused" in emu.messages(ops)[0].content
        for name in ("alerts status", "stats"):
            msg = await (await emu.send_interaction(name)).final_message(timeout=10)
            shown.append(msg.text)
        assert "redacted" in shown[0]  # the rejected alerts' reasons, cleaned (and escaped)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    lines = (out + err).decode(errors="replace").splitlines()
    assert any("rejected" in line for line in lines) and any("paused" in line for line in lines)
    with closing(sqlite3.connect(tmp_path / "nw.db")) as db:
        stored = [str(v) for row in db.execute(
            "SELECT reason FROM outbox UNION ALL SELECT reason FROM route_pauses") for v in row]
    assert any("[redacted]" in s for s in stored)
    posted = [m.text for m in emu.all_messages()]
    everything = lines + stored + posted + shown
    for secret in (TOKEN, HOOK_TOKEN, HOOK_URL):
        leaks = [s for s in everything if secret in s]
        assert not leaks, leaks[:3]
