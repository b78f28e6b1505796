"""`newswatch run` as a user starts it — a subprocess with a token — against the emulator; and
alert-only delivery through a webhook."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.bot.conftest import TOKEN, Running, bot_config
from tests.conftest import SEEDS
from tests.fakes.discord_emulator import DiscordEmulator
from watchers.config import parse_config


def toml_value(v: object) -> str:
    return json.dumps(v)


def write_toml(data: dict, path: Path) -> None:  # type: ignore[type-arg]
    """A small TOML writer for the shapes bot_config produces."""
    lines: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            lines += [f"{k} = {toml_value(v)}" for k, v in value.items()]
        elif isinstance(value, list):
            for item in value:
                lines.append(f"[[{key}]]")
                lines += [f"{k} = {toml_value(v)}" for k, v in item.items()]
    path.write_text("\n".join(lines) + "\n")


async def outcome(proc: asyncio.subprocess.Process, seconds: float = 60) -> tuple[str, str]:
    """The child's stdout and stderr once it ends (killed if it outlives ``seconds``: a bound
    against a hang, not a measure)."""
    try:
        out, err = await asyncio.wait_for(proc.communicate(), seconds)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return out.decode(), err.decode()


async def run_process(tmp_path: Path, env: Mapping[str, str], *extra: str
                      ) -> asyncio.subprocess.Process:
    """``newswatch run -c config.toml`` in ``tmp_path``, a child process with ``env``, its
    output piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "-c", "config.toml", *extra, cwd=tmp_path,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def ended(proc: asyncio.subprocess.Process, status: int) -> tuple[str, str]:
    """The run's output and log once it has ended on its own (within 60 s; else it is killed
    and the test fails), asserting it ended with ``status``."""
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == status, err.decode()
    return out.decode(), err.decode()


async def test_newswatch_run_with_a_token_posts_alerts_and_answers_search(
        emu: DiscordEmulator, tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    write_toml(bot_config(emu, tmp_path), tmp_path / "config.toml")
    env = {**os.environ, "NEWSWATCH_TEST_TOKEN": TOKEN}
    proc = await run_process(tmp_path, env)
    ch = emu.channel("alerts").id
    try:
        for _ in range(300):
            if len(emu.messages(ch)) >= 5 and emu.commands(emu.guild.id):
                break
            await asyncio.sleep(0.05)
        assert len(emu.messages(ch)) == 5
        resp = await emu.send_interaction("search", {"query": "troops"})
        msg = await resp.final_message(timeout=10)
        assert "3 result(s)" in msg.embeds[0]["footer"]["text"]
        assert all("troop" in d.lower() for d in [msg.embeds[0]["description"]])
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    text = err.decode()
    assert proc.returncode == 0, text
    assert "Traceback" not in text
    assert TOKEN not in text and TOKEN not in out.decode()
    assert emu.validate_all() == []


async def test_webhook_route_delivers_without_a_gateway(emu: DiscordEmulator,
                                                        tmp_path: Path) -> None:
    """Alert-only set-up: no bot token, a webhook URL from the environment."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    hook = emu.webhooks[next(iter(emu.webhooks))]
    os.environ["NEWSWATCH_TEST_HOOK"] = hook.url
    try:
        data = bot_config(emu, tmp_path, channels={"alerts": "env:NEWSWATCH_TEST_HOOK"})
        cfg = parse_config(data, base_dir=tmp_path)
        from bot.runner import run

        assert await run(cfg, once=True) == 0
    finally:
        del os.environ["NEWSWATCH_TEST_HOOK"]
    msgs = emu.messages(hook.channel_id)
    assert len(msgs) == 5 and all(m.webhook_id == hook.id for m in msgs)
    for m in msgs:
        assert m.allowed_mentions is not None and m.allowed_mentions.get("parse") == []
    assert not emu.identify_payloads  # never connected to the gateway
    assert emu.validate_all() == []
    # a second run on the same database posts nothing again
    cfg2 = parse_config(bot_config(emu, tmp_path, channels={"alerts": hook.url}),
                        base_dir=tmp_path)
    from bot.runner import run

    assert await run(cfg2, once=True) == 0
    assert len(emu.messages(hook.channel_id)) == 5


async def test_alerts_keep_flowing_while_commands_run(running: Running) -> None:
    await running.wait_for(lambda: len(running.emu.messages(running.alerts_channel)) >= 5)
    (running.seeds / "late.txt").write_text("Late\nTroops again.")
    resp = await running.emu.send_interaction("stats")
    await resp.final_message()
    await running.wait_for(lambda: len(running.emu.messages(running.alerts_channel)) >= 6)


async def test_run_says_in_one_line_when_discord_cannot_be_reached(tmp_path: Path) -> None:
    """A network outage, a DNS failure or a firewall: a line naming it and exit 1, as for a
    refused token; it was a 40-line traceback."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    shutil.copytree(SEEDS, tmp_path / "seeds")
    data = {"storage": {"path": "nw.db"}, "channels": {"alerts": 123456789012345678},
            "discord": {"token_env": "NEWSWATCH_TEST_TOKEN",
                        "api_base": f"http://127.0.0.1:{port}/api/v10"},
            "sources": [{"name": "seeds", "type": "folder", "path": "seeds"}],
            "rules": [{"name": "troops", "query": "troops"}]}
    write_toml(data, tmp_path / "config.toml")
    env = {**os.environ, "NEWSWATCH_TEST_TOKEN": TOKEN}
    for extra in ([], ["--once"]):
        proc = await run_process(tmp_path, env, *extra)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        text = err.decode()
        assert proc.returncode == 1, text
        assert "cannot reach Discord" in text and "Traceback" not in text
        assert TOKEN not in text and TOKEN not in out.decode()


@pytest.mark.parametrize("token", [True, False])
@pytest.mark.parametrize(("value", "said"), [
    (None, "[channels] hook = env:NEWSWATCH_TEST_HOOK: the variable is not set"),
    ("https://example.com/hooks?token=SECRET-ABC-123",
     "[channels] hook = env:NEWSWATCH_TEST_HOOK: the variable is not a Discord webhook URL"),
])
async def test_run_refuses_a_webhook_route_whose_variable_is_unusable(
        emu: DiscordEmulator, tmp_path: Path, token: bool, value: str | None,
        said: str) -> None:
    """Without a token the route's alerts were printed to the console and marked delivered
    (never posted once the variable was fixed); with one, its rules were refused as having no
    [channels] entry, which they have."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    write_toml(bot_config(emu, tmp_path, channels={"hook": "env:NEWSWATCH_TEST_HOOK"},
                          rules=[{"name": "t", "query": "troops", "channel": "hook"}]),
               tmp_path / "config.toml")
    env = {k: v for k, v in os.environ.items()
           if k not in ("NEWSWATCH_TEST_HOOK", "NEWSWATCH_TEST_TOKEN")}
    if value is not None:
        env["NEWSWATCH_TEST_HOOK"] = value
    if token:
        env["NEWSWATCH_TEST_TOKEN"] = TOKEN
    proc = await run_process(tmp_path, env)
    out, err = await outcome(proc, 30)
    text = err + out
    assert proc.returncode == 2, text
    assert said in text and "no [channels] entry" not in text, text
    assert "Traceback" not in text and "SECRET" not in text
    assert not emu.identify_payloads


SYNC = "PUT /applications/{application_id}/guilds/{guild_id}/commands"


@pytest.mark.parametrize(("fault", "then_synced"), [
    ("rate limit", False), ("5xx", True), ("refused", False)])
async def test_a_command_sync_discord_refuses_stops_no_alert(
        emu: DiscordEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, fault: str, then_synced: bool) -> None:
    """Discord's command endpoints are tightly rate-limited (a supervisor restarting the bot
    syncs at each start): a 429 on the sync, a 5xx or a refusal
    ended `newswatch run` (a traceback for the 429, "cannot reach Discord" for the 5xx) and
    posted nothing. Alerts flow; what failed for now is synced again later, in the
    background."""
    import logging

    import bot.client
    from tests.fakes.discord_emulator import Fault

    monkeypatch.setattr(bot.client, "COMMAND_SYNC_RETRY_S", 0.2)
    caplog.set_level(logging.INFO, logger="newswatch")
    # (a 503, which discord.py does not retry itself)
    injected = {"rate limit": Fault.rate_limited(120.0), "5xx": Fault.server_error(503),
                "refused": Fault.invalid_form()}[fault]
    emu.inject(SYNC, injected, times=1)
    shutil.copytree(SEEDS, tmp_path / "seeds")
    cfg = parse_config(bot_config(emu, tmp_path), base_dir=tmp_path)
    stop = asyncio.Event()
    from bot.client import run_discord

    task = asyncio.create_task(run_discord(cfg, TOKEN, stop=stop, guild_ready_timeout=0.05))
    ch = emu.channel("alerts").id
    try:
        for _ in range(400):
            if len(emu.messages(ch)) >= 5 or task.done():
                break
            await asyncio.sleep(0.05)
        assert not task.done(), caplog.text
        assert len(emu.messages(ch)) == 5
        if then_synced:
            for _ in range(200):
                if emu.commands(emu.guild.id):
                    break
                await asyncio.sleep(0.05)
        assert bool(emu.commands(emu.guild.id)) == then_synced
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 20) == 0
    said = {"rate limit": "Discord rate-limits it for 120 s",
            "5xx": "it is tried again", "refused": "Discord refused the slash commands"}[fault]
    assert said in caplog.text and "Traceback" not in caplog.text
    assert emu.validate_all() == []


async def test_run_says_in_one_line_when_discord_rate_limits_the_login(
        emu: DiscordEmulator, tmp_path: Path) -> None:
    """Logging in refused with a long rate limit (too many starts): a traceback ending in
    discord.RateLimited; one line now."""
    from tests.fakes.discord_emulator import Fault

    emu.inject("GET /users/@me", Fault.rate_limited(120.0), times=5)
    shutil.copytree(SEEDS, tmp_path / "seeds")
    write_toml(bot_config(emu, tmp_path), tmp_path / "config.toml")
    env = {**os.environ, "NEWSWATCH_TEST_TOKEN": TOKEN}
    out, err = await ended(await run_process(tmp_path, env), 1)
    assert "Discord rate-limits this bot for 120 s" in err and "Traceback" not in err, err
    assert TOKEN not in err and TOKEN not in out
