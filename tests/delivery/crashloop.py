"""The kill -9 loop shared by the crash test and ``bench/soak.py``.

Each cycle drops a few new matching articles into the watched folder, starts ``newswatch run``
as a subprocess against the Discord API emulator, kills it with SIGKILL at a random point
(sometimes at a random moment, sometimes right after the emulator received its k-th message,
sometimes while Discord is slow to answer a message it already created), and checks the store
(an SQLite file, or a PostgreSQL database: see :mod:`tests.delivery.backends`). A last run
delivers whatever is left and stops cleanly. Then every alert must be at the emulator exactly
once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.bot.conftest import TOKEN, bot_config
from tests.bot.test_run_with_token import write_toml
from tests.delivery.articles import MESSAGES, drop_articles, report_numbers
from tests.delivery.backends import Backend, SqliteBackend
from tests.fakes.discord_emulator import DiscordEmulator, Fault

__all__ = ["CrashReport", "crash_loop"]


# What the Discord sink logs when a retry finds the message an earlier attempt posted (Discord
# created it, the answer never came back) instead of sending it again.
FOUND = "an earlier attempt did post this"


@dataclass
class CrashReport:
    cycles: int
    expected: int
    delivered: int  # distinct alerts that reached the emulator
    lost: int
    duplicated: int  # messages beyond the first for the same alert
    seconds: float
    deduplicated: int = 0  # resends Discord answered with the message it had (same nonce)
    found: int = 0  # resends not needed: the earlier attempt's message found in the channel
    integrity: list[str] = field(default_factory=list)  # every result that was not "ok"
    backend: str = "sqlite"
    outbox: dict[str, int] = field(default_factory=dict)  # states after the last run
    clean_exit: bool = False
    stderr: str = ""

    def summary(self) -> str:
        return (f"{self.backend}: cycles {self.cycles} · alerts expected {self.expected} · "
                f"delivered {self.delivered} · lost {self.lost} · duplicated {self.duplicated} · "
                f"resends deduplicated by nonce {self.deduplicated} · "
                f"earlier sends found by looking {self.found} · "
                f"integrity {'ok' if not self.integrity else self.integrity} · "
                f"{self.seconds:.1f} s")


async def _spawn(workdir: Path, log_file: Path, backend: Backend
                 ) -> asyncio.subprocess.Process:
    env = {**os.environ, "NEWSWATCH_TEST_TOKEN": TOKEN, **backend.env()}
    with log_file.open("ab") as err:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "-c", "config.toml", cwd=workdir, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=err)


def _reached(count: Callable[[], int], target: int) -> bool:
    return count() >= target


async def _holds(predicate: Callable[[], bool | Awaitable[bool]]) -> bool:
    value = predicate()
    return bool(await value) if inspect.isawaitable(value) else bool(value)


async def _until(predicate: Callable[[], bool | Awaitable[bool]], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await _holds(predicate):
            return True
        await asyncio.sleep(0.02)
    return await _holds(predicate)


async def crash_loop(emu: DiscordEmulator, workdir: Path, *, cycles: int, per_cycle: int = 3,
                     seed: int | None = None, say: Callable[[str], None] | None = None,
                     backend: Backend | None = None) -> CrashReport:
    """Run ``cycles`` kill -9 / restart cycles in ``workdir`` against ``emu``, the store on
    ``backend`` (default: ``nw.db`` in ``workdir``)."""
    async with backend or SqliteBackend(workdir) as store:
        return await _crash_loop(emu, workdir, cycles, per_cycle, seed, say, store)


async def _crash_loop(emu: DiscordEmulator, workdir: Path, cycles: int, per_cycle: int,
                      seed: int | None, say: Callable[[str], None] | None, backend: Backend
                      ) -> CrashReport:
    rng = random.Random(seed)
    started = time.monotonic()
    folder = workdir / "seeds"
    folder.mkdir(parents=True, exist_ok=True)
    data = bot_config(emu, workdir, rules=[{"name": "troops", "query": "troops"}])
    # A process killed before its first poll leaves its articles to the next one, and on a loaded
    # machine several in a row may be: a poll then finds more than the per-poll alert cap (25)
    # and, as it should, posts one overflow notice for the rest. This loop is about crash
    # safety, not the cap (tests/service/test_service.py tests that), so the cap is above every
    # article of the run.
    data["sources"] = [{"name": "seeds", "type": "folder", "path": "seeds", "every": "1s",
                        "max_alerts_per_poll": max(25, per_cycle * cycles)}]
    data["storage"] = backend.storage()
    write_toml(data, workdir / "config.toml")
    log_file = workdir / "stderr.log"
    channel = emu.channel("alerts").id
    report = CrashReport(cycles=cycles, expected=0, delivered=0, lost=0, duplicated=0,
                         seconds=0.0, backend=backend.name)

    def posts() -> int:
        return len(emu.requests_for(MESSAGES))

    for cycle in range(cycles):
        drop_articles(folder, "troops", range(report.expected, report.expected + per_cycle))
        report.expected += per_cycle
        how = rng.choice(["time", "time", "after-post"])
        if cycle % 4 == 3 or rng.random() < 0.2:
            # Discord creates the message but answers late: a kill now leaves an alert that
            # was delivered without the process knowing. Every fourth cycle kills right there.
            emu.inject(MESSAGES, Fault.slow(rng.uniform(0.3, 0.8), after_processing=True))
            if cycle % 4 == 3:
                how = "after-post"
        proc = await _spawn(workdir, log_file, backend)
        if how == "time":
            await asyncio.sleep(rng.uniform(0.0, 2.5))
        else:
            target = posts() + (1 if cycle % 4 == 3 else rng.randint(1, per_cycle))
            await _until(functools.partial(_reached, posts, target), 6.0)
            await asyncio.sleep(rng.uniform(0.0, 0.05))
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
        await proc.wait()
        emu.clear_faults()
        check = await backend.integrity()
        if check != "ok":
            report.integrity.append(f"cycle {cycle}: {check}")
        if say:
            say(f"cycle {cycle + 1}/{cycles}: killed ({how}); "
                f"{len(emu.messages(channel))} message(s) so far")

    # The last run: everything left must go out, then a clean stop.
    identified = len(emu.identify_payloads)
    proc = await _spawn(workdir, log_file, backend)
    # stop it only once it is up (its signal handlers are installed before it identifies)
    await _until(lambda: len(emu.identify_payloads) > identified, 30.0)
    expected = set(range(report.expected))

    def numbers() -> list[int]:
        return report_numbers(emu, channel)

    async def settled() -> bool:
        # at the emulator, and recorded as delivered (a stop before that is a restart's job)
        return (set(numbers()) >= expected
                and await backend.outbox() == {"delivered": report.expected})

    await _until(settled, 30.0 + report.expected * 0.05)
    await asyncio.sleep(0.3)  # a late duplicate would show up now
    proc.send_signal(signal.SIGINT)
    try:
        report.clean_exit = await asyncio.wait_for(proc.wait(), 30) == 0
    except TimeoutError:
        proc.kill()
        await proc.wait()
    check = await backend.integrity(stopped_cleanly=report.clean_exit)
    if check != "ok":
        report.integrity.append(f"final: {check}")

    counts = Counter(numbers())
    report.delivered = len(set(counts) & expected)
    report.lost = len(expected - set(counts))
    report.duplicated = sum(n - 1 for n in counts.values())
    nonces = Counter(r.json.get("nonce") for r in emu.requests_for(MESSAGES)
                     if r.status == 200 and isinstance(r.json, dict))
    report.deduplicated = sum(n - 1 for n in nonces.values())
    report.outbox = await backend.outbox()
    report.stderr = log_file.read_text(errors="replace") if log_file.exists() else ""
    report.found = report.stderr.count(FOUND)
    report.seconds = time.monotonic() - started
    return report
