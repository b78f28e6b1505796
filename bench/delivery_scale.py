"""How long 40 alerts take to leave the outbox on an empty store and on the 1,000,000-article
benchmark store (built once by `make scale` under /tmp/newswatch-bench): every per-alert lookup
is indexed, so the two should match.

Run: .venv/bin/python bench/delivery_scale.py
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from scale_store import build, store_path  # noqa: E402

from watchers.config import parse_config  # noqa: E402
from watchers.delivery import Alert  # noqa: E402
from watchers.engine import open_engine  # noqa: E402

ALERTS = 40


class CountingSink:
    def __init__(self) -> None:
        self.count = 0

    async def deliver(self, alert: Alert) -> str | None:
        self.count += 1
        return f"m{alert.id}"


async def drain_time(db: Path, tmp: Path) -> tuple[float, int, int]:
    folder = tmp / "in"
    folder.mkdir(exist_ok=True)
    for i in range(ALERTS):
        (folder / f"{i}.txt").write_text(f"Burst {i}\nTroops seen near the border, report {i}.\n")
    cfg = parse_config({"storage": {"path": str(db)},
                        "sources": [{"name": "burst", "type": "folder", "path": str(folder),
                                     "settle": 0, "max_alerts_per_poll": 1000}],
                        "rules": [{"name": "burst", "query": "troops NEAR/5 border"}]})
    sink = CountingSink()
    async with open_engine(cfg, default_sink=sink, start=False) as engine:
        held = await engine.count_articles()
        await engine.watch.run_once()
        started = time.perf_counter()
        await engine.delivery.drain()
        took = time.perf_counter() - started
    return took, sink.count, held


async def main() -> None:
    big = store_path(1_000_000)
    print(f"{ALERTS} alerts through the outbox to a sink that answers at once")
    with tempfile.TemporaryDirectory() as tmp:
        took, sent, held = await drain_time(Path(tmp) / "empty.db", Path(tmp))
        print(f"  empty store:      {took * 1000:7.1f} ms ({sent} sent, {held:,} articles before)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "big.db"
        shutil.copyfile(big, work)
        took, sent, held = await drain_time(work, Path(tmp))
        print(f"  1M-article store: {took * 1000:7.1f} ms ({sent} sent, {held:,} articles before)")


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    if not store_path(1_000_000).exists():
        # Before the event loop: the build runs its own.
        print("building the 1,000,000-article store first (once) …", flush=True)
        build(1_000_000)
    asyncio.run(main())
