"""`newswatch run` stopped from outside, as a subprocess: SIGTERM, SIGHUP (a closed terminal)
and Ctrl-C each stop it cleanly with "stopping", with a bot token or without; one more signal
while it stops ends it at once, with a line and no traceback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.bot.conftest import TOKEN, bot_config
from tests.bot.test_run_with_token import ended, outcome, run_process, write_toml
from tests.conftest import SEEDS
from tests.fakes.discord_emulator import DiscordEmulator, Fault
from tests.fakes.feed_server import FeedServer, Route, rss


async def start(tmp_path: Path, token: bool) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if k != "NEWSWATCH_TEST_TOKEN"}
    if token:
        env["NEWSWATCH_TEST_TOKEN"] = TOKEN
    return await run_process(tmp_path, env)


async def wait_for_line(proc: asyncio.subprocess.Process, part: str) -> list[str]:
    """The lines of stderr up to the first holding ``part``."""
    assert proc.stderr is not None
    seen: list[str] = []
    while True:
        line = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode()
        assert line, "".join(seen)
        seen.append(line)
        if part in line:
            return seen


# Seconds a poll of the slow feed lasts: its fetch's whole deadline. The feed sends a byte
# every 5 s (within the 15 s a fetch may wait for the next byte), so only that deadline ends it.
SLOW_POLL = 300.0


def with_a_slow_feed(emu: DiscordEmulator, tmp_path: Path, server: FeedServer
                     ) -> dict[str, str]:
    """The seeds and a feed whose poll takes :data:`SLOW_POLL` seconds, in ``tmp_path``'s
    config.toml; the environment without a token."""
    body = rss(("g1", "Troops move"))
    assert len(body) * 5.0 > SLOW_POLL  # still sending when the deadline comes
    server.set("/slow", Route(body=body, drip=5.0))
    shutil.copytree(SEEDS, tmp_path / "seeds")
    data = bot_config(emu, tmp_path)
    data["fetch"] = {"allow_private": ["127.0.0.1/32"], "timeout": f"{SLOW_POLL:g}s"}
    data["sources"].append({"name": "slow", "type": "feed", "url": server.url("/slow")})
    write_toml(data, tmp_path / "config.toml")
    return {k: v for k, v in os.environ.items() if k != "NEWSWATCH_TEST_TOKEN"}


async def finish(proc: asyncio.subprocess.Process, seen: list[str]) -> str:
    _, err = await outcome(proc)
    return "".join(seen) + err


@pytest.mark.parametrize("token", [True, False])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
async def test_a_stop_from_outside_says_stopping_and_exits_0(
        emu: DiscordEmulator, tmp_path: Path, token: bool, sig: signal.Signals) -> None:
    """With a token SIGTERM stopped it without a word; SIGHUP's default action ended it
    (killed, no line) with a token or without."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    write_toml(bot_config(emu, tmp_path), tmp_path / "config.toml")
    proc = await start(tmp_path, token)
    seen = await wait_for_line(proc, "5 alert(s)")
    if token:
        for _ in range(600):
            if len(emu.messages(emu.channel("alerts").id)) >= 5:
                break
            await asyncio.sleep(0.05)
    proc.send_signal(sig)
    text = await finish(proc, seen)
    assert proc.returncode == 0, text
    assert "newswatch: stopping\n" in text and "Traceback" not in text, text


async def test_a_second_signal_while_stopping_ends_it_at_once(emu: DiscordEmulator,
                                                             tmp_path: Path) -> None:
    """Stopping waits for the sends in flight (here 8 s each); a second SIGTERM meanwhile ended
    it by the signal's default action, without a word."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    write_toml(bot_config(emu, tmp_path), tmp_path / "config.toml")
    emu.inject("POST /channels/*/messages", Fault.slow(8.0), times=1000)
    proc = await start(tmp_path, token=True)
    seen = await wait_for_line(proc, "5 alert(s)")
    await asyncio.sleep(0.5)  # a send under way
    proc.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.5)
    assert proc.returncode is None
    t = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    text = await finish(proc, seen)
    # A hang guard: the status and the line show the second signal ended it (a stop that
    # waits for the sends ends with 0 and neither, once the 5 s it gives them are out).
    assert time.monotonic() - t < 30, text
    assert proc.returncode == 130, text
    assert "newswatch: stopping now (second signal)" in text and "Traceback" not in text, text


async def test_a_second_signal_in_the_last_moments_of_stopping_still_says_so(
        emu: DiscordEmulator, tmp_path: Path) -> None:
    """Stopping is quick when nothing is being sent (a feed's poll that hangs is cancelled);
    a second SIGTERM a few milliseconds after the first then came when the handlers were gone
    and killed it without a word (exit 143, five times in five). Whenever it comes, it is
    the second signal: exit 130 with the line, unless the process was gone already."""
    async with FeedServer() as server:
        env = with_a_slow_feed(emu, tmp_path, server)
        for gap in (0.005, 0.02, 0.05):
            hits = len(server.hits("/slow"))
            proc = await run_process(tmp_path, env)
            seen = await wait_for_line(proc, "watching")
            for _ in range(600):  # until the slow feed is being asked
                if len(server.hits("/slow")) > hits:
                    break
                await asyncio.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(gap)
            if proc.returncode is None:
                # By its pid: asyncio's send_signal first polls the child (Popen.send_signal),
                # which reaps one that has just ended, and asyncio's own wait for it then finds
                # no child and gives 255 for its status. A signal to an ended child not yet
                # reaped is ignored, and its pid is not reused until it is reaped.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
            text = await finish(proc, seen)
            assert "Traceback" not in text, text
            if proc.returncode == 0:  # it had ended before the second signal reached it
                assert "newswatch: stopping\n" in text, text
                continue
            assert proc.returncode == 130, (gap, proc.returncode, text)
            assert "newswatch: stopping now (second signal)" in text, text


@pytest.mark.timeout(120)
async def test_a_stop_while_run_rebuilds_its_store_says_stopping_and_a_rerun_goes_on(
        tmp_path: Path) -> None:
    """A store whose lookup indexes hold older word keys is rebuilt when run opens it, which
    takes minutes for a large one. A stop then ended it with 130 and not a word; it says
    "stopping", and the next writer finishes the rebuild."""
    from tests.store.test_rekey import _old_store

    await _old_store(tmp_path / "nw.db", n=40_000)
    (tmp_path / "in").mkdir()
    write_toml({"storage": {"path": "nw.db"},
                "sources": [{"name": "in", "type": "folder", "path": "in"}],
                "rules": [{"name": "t", "query": "troops"}]}, tmp_path / "config.toml")
    env = {k: v for k, v in os.environ.items() if k != "NEWSWATCH_TEST_TOKEN"}
    proc = await run_process(tmp_path, env)
    seen = await wait_for_line(proc, "rebuilding the lookup indexes")
    proc.send_signal(signal.SIGTERM)
    text = await finish(proc, seen)
    if "rebuilt the lookup indexes" in text:  # it was done before the signal came
        pytest.skip("the rebuild ended before the stop reached it")
    assert proc.returncode == 130, text
    assert "newswatch: stopping\n" in text and "Traceback" not in text, text
    again = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "migrate", "-c", "config.toml", cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(again.communicate(), 90)
    assert again.returncode == 0, err.decode()
    assert "rebuilt the lookup indexes of 40000 articles" in err.decode(), err.decode()


@pytest.mark.timeout(120)  # the child is killed after 60 s, and the test fails saying so
@pytest.mark.parametrize("token", [True, False])
async def test_a_stop_during_run_once_says_stopping_and_ends_the_round(
        emu: DiscordEmulator, tmp_path: Path, token: bool) -> None:
    """`run --once` had no stop signals of its own: Ctrl-C was taken without a word, a second
    one did nothing, and it ended only once the round's poll was done (a feed whose poll takes
    minutes here; a folder of 30,000 files took 15 s)."""
    async with FeedServer() as server:
        env = with_a_slow_feed(emu, tmp_path, server)
        if token:
            env["NEWSWATCH_TEST_TOKEN"] = TOKEN
        proc = await run_process(tmp_path, env, "--once")
        seen: list[str] = []
        for _ in range(600):  # until the slow feed is being asked
            if server.hits("/slow"):
                break
            await asyncio.sleep(0.05)
        assert server.hits("/slow"), "the feed was never asked"
        t = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        text = await finish(proc, seen)
        assert time.monotonic() - t < SLOW_POLL / 10, text  # not the slow poll's 300 s
        assert proc.returncode == 130, text
        assert "newswatch: stopping\n" in text and "Traceback" not in text, text


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
@pytest.mark.parametrize("after", [0.05, 0.15])  # the loading takes 0.4 s and more
async def test_a_stop_while_the_program_loads_ends_it_quietly_with_130(
        tmp_path: Path, signum: int, after: float) -> None:
    """kill or a closed terminal in the first half second (modules loading, the config read)
    ended it by the signal's own default action, with no word (status 143 or 129); and a stop
    that came while pydantic built a model's schema ended in a traceback, whichever signal."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    (tmp_path / "config.toml").write_text(
        '[storage]\npath = "nw.db"\n[[sources]]\nname = "seeds"\ntype = "folder"\n'
        'path = "seeds"\n[[rules]]\nname = "t"\nquery = "troops"\n')
    proc = await start(tmp_path, token=False)
    # From the moment the program catches the signal: before that the interpreter itself is
    # still starting (no program of ours runs to catch it), which on a loaded machine takes
    # longer than the 50 ms this waited from the start.
    await catching(proc.pid, signum)
    await asyncio.sleep(after)
    proc.send_signal(signum)
    out, err = await ended(proc, 130)
    assert "Traceback" not in err + out


async def catching(pid: int, signum: int, within: float = 20.0) -> None:
    """Until process ``pid`` has a handler of its own for ``signum`` (Linux's /proc says
    which signals a process catches); at once where there is no /proc. For SIGINT, once it
    catches SIGTERM too: the interpreter catches SIGINT from its start, before the program
    runs (a Ctrl-C while Python itself still starts ends it "Fatal Python error", status 1),
    and the program sets its handlers of the three at once (bot.entry)."""
    for _ in range(int(within / 0.005)):
        if catches(pid, signum) is not False and (
                signum != signal.SIGINT or catches(pid, signal.SIGTERM) is not False):
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"the program never caught signal {signum}")


def catches(pid: int, signum: int) -> bool | None:
    """Whether process ``pid`` catches ``signum``; None where /proc cannot tell."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    caught = next((line.split()[1] for line in lines if line.startswith("SigCgt:")), None)
    return None if caught is None else bool(int(caught, 16) >> (signum - 1) & 1)
