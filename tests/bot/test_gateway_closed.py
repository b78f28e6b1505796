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
from tests.bot.test_run_with_token import ended, run_process, write_toml
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
        out, text = await ended(proc, 1)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert "Traceback" not in text and "ConnectionClosed" not in text, text
    lines = [line for line in text.splitlines() if said in line]
    assert len(lines) == 1 and "ERROR" in lines[0], text
    assert "undelivered alerts are kept for the next start" in lines[0]
    assert TOKEN not in text and TOKEN not in out


@pytest.mark.parametrize("once", [False, True])
async def test_a_gateway_that_cannot_be_reached_ends_in_one_line(
        emu: DiscordEmulator, tmp_path: Path, once: bool) -> None:
    """Discord's REST API answers, its gateway cannot be reached (a firewall that lets one
    through, a mistyped gateway_url): discord.py read its missing connection's sequence, and
    run ended in a traceback ("'NoneType' object has no attribute 'sequence'")."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]  # nothing listens there once it is closed
    shutil.copytree(SEEDS, tmp_path / "seeds")
    data = bot_config(emu, tmp_path)
    data["discord"]["gateway_url"] = f"ws://127.0.0.1:{dead}/gateway"
    write_toml(data, tmp_path / "config.toml")
    env = {**os.environ, "NEWSWATCH_TEST_TOKEN": TOKEN}
    out, text = await ended(await run_process(tmp_path, env, *(["--once"] if once else [])),
                            1)
    assert "Traceback" not in text and "sequence" not in text, text
    (line,) = [x for x in text.splitlines() if "cannot reach Discord's gateway" in x]
    assert "ERROR" in line and f"127.0.0.1:{dead}" in line
    assert TOKEN not in text and TOKEN not in out
