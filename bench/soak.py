"""Soak: kill -9 newswatch at random points, restart it, and count lost and duplicated alerts.

    python bench/soak.py [--cycles 200] [--per-cycle 3] [--seed N]

Runs `newswatch run` as a subprocess against the Discord API emulator (tests/fakes) in a
temporary folder; the loop itself is tests/delivery/crashloop.py, shared with the test suite.
Prints the figures; exits 1 if any alert was lost or duplicated or the database is damaged.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.bot.conftest import TOKEN
from tests.delivery.crashloop import CrashReport, crash_loop
from tests.fakes.discord_emulator import DiscordEmulator


async def soak(cycles: int, per_cycle: int, seed: int, verbose: bool) -> CrashReport:
    with tempfile.TemporaryDirectory(prefix="newswatch-soak-") as tmp:
        async with DiscordEmulator(token=TOKEN) as emu:
            return await crash_loop(
                emu, Path(tmp), cycles=cycles, per_cycle=per_cycle, seed=seed,
                say=(lambda line: print(line, flush=True)) if verbose else None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--per-cycle", type=int, default=3, help="new alerts per cycle")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per cycle")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"soak: {args.cycles} kill -9 / restart cycles, {args.per_cycle} new alert(s) each, "
          f"seed {seed}", flush=True)
    r = asyncio.run(soak(args.cycles, args.per_cycle, seed, args.verbose))
    print(f"alerts expected   {r.expected}")
    print(f"delivered         {r.delivered}")
    print(f"lost              {r.lost}")
    print(f"duplicated        {r.duplicated}")
    print(f"resends Discord deduplicated by nonce (kills after a message was created) "
          f"{r.deduplicated}")
    print(f"earlier sends found in the channel instead of sent again              {r.found}")
    print(f"integrity_check   {'ok' if not r.integrity else '; '.join(r.integrity)}")
    print(f"outbox at the end {dict(sorted(r.outbox.items()))}")
    print(f"last run stopped  {'cleanly' if r.clean_exit else 'NOT cleanly'}")
    print(f"time              {r.seconds:.1f} s ({r.seconds / max(1, r.cycles):.2f} s per cycle)")
    leaked = TOKEN in r.stderr
    if leaked:
        print("the bot token appeared in the logs")
    ok = not (r.lost or r.duplicated or r.integrity or leaked) and r.clean_exit
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
