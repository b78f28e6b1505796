"""`newswatch run` whose gateway connection Discord ends for good mid-run (a token revoked
while running, intents or sharding refused): one line and exit 1, as for a token refused at
start; it was a traceback ending in ConnectionClosed."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from tests.bot.conftest import TOKEN, bot_config
from tests.bot.test_run_with_token import run_process, write_toml
from tests.conftest import SEEDS
from tests.fakes.discord_emulator import DiscordEmulator


@pytest.mark.parametrize(("code", "said"), [
    (4004, "Discord refused the token in $NEWSWATCH_TEST_TOKEN (authentication failed"),
    (None, "Discord refused the token in $NEWSWATCH_TEST_TOKEN (authentication failed"),
    (4011, "sharding required"),
    (4013, "invalid intents"),
    (4014, "disallowed intents"),
])
async def test_a_fatal_close_mid_run_ends_in_one_line(emu: DiscordEmulator, tmp_path: Path,
                                                      code: int | None, said: str) -> None:
    """``code`` None: the token is revoked and the connection dropped; the resume is refused,
    and so is the IDENTIFY after it (4004)."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    write_toml(bot_config(emu, tmp_path), tmp_path / "config.toml")
    env = {**os.environ, "NEWSWATCH_TEST_TOKEN": TOKEN}
    proc = await run_process(tmp_path, env)
    try:
        for _ in range(600):
            if len(emu.messages(emu.channel("alerts").id)) >= 5:
                break
            await asyncio.sleep(0.05)
        if code is None:
            emu.token = "revoked-token"
            await emu.drop_gateway(4000)
        else:
            await emu.drop_gateway(code)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = err.decode()
    assert proc.returncode == 1, text
    assert "Traceback" not in text and "ConnectionClosed" not in text, text
    lines = [line for line in text.splitlines() if said in line]
    assert len(lines) == 1 and "ERROR" in lines[0], text
    assert "undelivered alerts are kept for the next start" in lines[0]
    assert TOKEN not in text and TOKEN not in out.decode()
