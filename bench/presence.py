"""The check at connect with many servers gone (printed, never asserted).

A bot removed from every server while it was down (or started with another bot's token) meets
them all in ``Engine.present_in``: N servers with a rule each in a real SQLite store, all
taken out, then all taken back; seconds each.

    .venv/bin/python bench/presence.py [N]
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from watchers.config import RuleConfig, parse_config  # noqa: E402
from watchers.engine import open_engine  # noqa: E402


async def main(n: int) -> None:
    folder = Path(tempfile.mkdtemp())
    try:
        (folder / "seeds").mkdir()
        cfg = parse_config({"storage": {"path": "nw.db"}, "channels": {"alerts": 1},
                            "sources": [{"name": "seeds", "type": "folder", "path": "seeds"}],
                            "rules": [{"name": "troops", "query": "troops"}]}, base_dir=folder)
        async with open_engine(cfg, start=False) as engine:
            for g in range(1, n + 1):
                await engine.store.put_rule(RuleConfig(name="watch", query="troops",
                                                       channel="alerts", guild_id=g,
                                                       origin="store"))
            await engine.reload_rules()
            started = time.perf_counter()
            await engine.present_in(lambda: [])
            gone = time.perf_counter() - started
            started = time.perf_counter()
            await engine.present_in(lambda: range(1, n + 1))
            back = time.perf_counter() - started
        print(f"{n} servers: all gone {gone:.2f} s, all back {back:.2f} s")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("servers", nargs="?", type=int, default=1000,
                   help="servers gone and back (default 1000)")
    asyncio.run(main(p.parse_args().servers))
