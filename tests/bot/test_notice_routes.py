"""The notices' routes ([discord] notices, a source's route) get what a rule's route gets, and
`check` agrees with `run` on them and on disabled rules: printed without a token, and with one
refused at start (and said by check) when [channels] has no entry for them."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bot.conftest import TOKEN
from tests.conftest import SEEDS
from tests.fakes.discord_emulator import DiscordEmulator

NOTICES = {"notices": 'notices = "ops"\n', "route": ""}
ROUTE = {"notices": "", "route": 'route = "ops"\n'}


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment(token: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN",
                                                             "NEWSWATCH_TEST_TOKEN")}
    if token:
        env["NEWSWATCH_TEST_TOKEN"] = TOKEN
    return env


async def newswatch(tmp_path: Path, token: bool, *args: str) -> tuple[int, str]:
    """``newswatch ARGS -c c.toml`` in ``tmp_path`` as a child process; its exit status and
    its output and log together (killed if it outlives 60 s: a bound against a hang)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, "-c", "c.toml", cwd=tmp_path,
        env=environment(token), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def dead_feed_config(where: str) -> str:
    """A feed on a closed port that pauses at its first failure, its notices going to the
    route ``ops`` that no rule uses and [channels] does not define (by [discord] notices or
    by the source's route)."""
    return ('[storage]\npath = "nw.db"\n[discord]\n'
            f'{NOTICES[where]}'
            '[fetch]\nallow_private = ["127.0.0.1/32"]\npause_after = 1\n'
            '[[sources]]\nname = "dead"\ntype = "feed"\n'
            f'url = "http://127.0.0.1:{closed_port()}/feed.xml"\n{ROUTE[where]}'
            '[[rules]]\nname = "t"\nquery = "troops"\n')


@pytest.mark.parametrize("where", ["notices", "route"])
async def test_a_notice_route_without_a_channels_entry_prints_without_a_token(
        tmp_path: Path, where: str) -> None:
    """The console took only the routes rules name: a source's "paused" notice for a route
    only notices use was queued and never printed, on this run or any later one (its outbox
    row pending for ever), while check said ok."""
    (tmp_path / "c.toml").write_text(dead_feed_config(where))
    status, out = await newswatch(tmp_path, False, "run", "--once")
    assert status == 0, out
    assert "notice for ops: Source 'dead' paused after 1 failures in a row" in out, out
    with sqlite3.connect(tmp_path / "nw.db") as db:
        rows = db.execute("SELECT kind, route, state FROM outbox").fetchall()
    assert rows == [("notice", "ops", "delivered")]
    status, checked = await newswatch(tmp_path, False, "check")
    assert status == 0 and checked.startswith("c.toml: ok"), checked
    assert "ops              console (no [channels] entry); stories: edit; notices go here; " \
        "no rule uses it" in checked, checked


@pytest.mark.parametrize("where", ["notices", "route"])
async def test_with_a_token_a_notice_route_without_a_channels_entry_is_refused_by_both(
        emu: DiscordEmulator, tmp_path: Path, where: str) -> None:
    """With a token, check said ok and run connected and ran (exit 0) with the notices' route
    undefined: a paused source's notice waited for ever for a destination. Both now say what
    they say of a rule's route with no [channels] entry, and run does not connect."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    (tmp_path / "c.toml").write_text(
        f'[storage]\npath = "nw.db"\n[discord]\ntoken_env = "NEWSWATCH_TEST_TOKEN"\n'
        f'api_base = "{emu.api_base}"\ngateway_url = "{emu.gateway_url}"\n{NOTICES[where]}'
        f'[[sources]]\nname = "seeds"\ntype = "folder"\npath = "seeds"\n{ROUTE[where]}')
    status, checked = await newswatch(tmp_path, True, "check")
    assert status == 2, checked
    assert checked.startswith("c.toml: valid, but run refuses to start with it here"), checked
    assert "ops              no [channels] entry (refused with a token); stories: edit; " \
        "notices go here; no rule uses it" in checked, checked
    assert ("c.toml: with $NEWSWATCH_TEST_TOKEN set, run refuses notices whose route has no "
            "[channels] entry: ops") in checked, checked
    status, out = await newswatch(tmp_path, True, "run", "--once")
    key = "discord.notices" if where == "notices" else "sources[0].route"
    assert status == 2, out
    assert (f"{key}: route 'ops' has no [channels] entry; add `ops = <channel id or webhook>` "
            "under [channels]") in out, out
    assert "Traceback" not in out and TOKEN not in out + checked
    assert not emu.identify_payloads  # refused before connecting


async def test_with_a_token_a_notice_route_with_a_channels_entry_is_taken(
        emu: DiscordEmulator, tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    (tmp_path / "c.toml").write_text(
        f'[storage]\npath = "nw.db"\n[discord]\ntoken_env = "NEWSWATCH_TEST_TOKEN"\n'
        f'api_base = "{emu.api_base}"\ngateway_url = "{emu.gateway_url}"\nnotices = "ops"\n'
        f'[channels]\nops = {emu.channel("alerts").id}\n'
        f'[[sources]]\nname = "seeds"\ntype = "folder"\npath = "seeds"\n')
    status, checked = await newswatch(tmp_path, True, "check")
    assert status == 0 and checked.startswith("c.toml: ok"), checked
    assert f"ops              channel {emu.channel('alerts').id}; stories: edit; notices go " \
        "here; no rule uses it" in checked, checked


async def test_check_and_run_agree_that_a_disabled_rule_needs_no_route(
        emu: DiscordEmulator, tmp_path: Path) -> None:
    """With a token and no [channels], a config whose only rule is disabled: check said run
    refuses it (exit 2), and run connected and ran (exit 0), skipping disabled rules. check now
    skips them too, and marks the rule disabled in its summary."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    (tmp_path / "c.toml").write_text(
        f'[storage]\npath = "nw.db"\n[discord]\ntoken_env = "NEWSWATCH_TEST_TOKEN"\n'
        f'api_base = "{emu.api_base}"\ngateway_url = "{emu.gateway_url}"\n'
        '[[sources]]\nname = "seeds"\ntype = "folder"\npath = "seeds"\n'
        '[[rules]]\nname = "troops"\nquery = "troops"\nenabled = false\n')
    status, checked = await newswatch(tmp_path, True, "check")
    assert status == 0 and checked.startswith("c.toml: ok"), checked
    assert "    troops           → alerts     medium   troops (disabled)\n" in checked, checked
    assert "    alerts           no [channels] entry; stories: edit; only disabled rules use " \
        "it\n" in checked, checked
    status, out = await newswatch(tmp_path, True, "run", "--once")
    assert status == 0, out
    assert emu.identify_payloads  # it connected and ran, as check said it would
    # An enabled one beside it: both refuse it, naming its route.
    with (tmp_path / "c.toml").open("a") as f:
        f.write('[[rules]]\nname = "kyiv"\nquery = "kyiv"\nchannel = "news"\n')
    status, checked = await newswatch(tmp_path, True, "check")
    assert status == 2 and ("run refuses rules whose route has no [channels] entry: news\n"
                            in checked), checked
    status, out = await newswatch(tmp_path, True, "run", "--once")
    assert status == 2 and "rules[1].channel: route 'news' has no [channels] entry" in out, out
    assert "rules[0]" not in out


def test_check_lists_a_disabled_rules_route_as_console_without_a_token(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('[storage]\npath = "nw.db"\n[[rules]]\nname = "a"\n'
                                     'query = "putin"\nenabled = false\n')
    done = subprocess.run([sys.executable, "-m", "bot", "check", "-c", "c.toml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, env=environment(False))
    assert done.returncode == 0, done.stderr
    assert "    a                → alerts     medium   putin (disabled)\n" in done.stdout
    assert ("    alerts           console (no [channels] entry); stories: edit; only disabled "
            "rules use it\n") in done.stdout, done.stdout
