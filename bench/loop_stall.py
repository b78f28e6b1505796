"""The longest event-loop stall while newswatch does heavy work, measured with a 10 ms ticker.

Three cases from the hardening issue, each on a real engine (SQLite file, folder source):
  1. a member's /search with a catastrophic regex over a few hundred stored articles;
  2. 50 regex rules added from chat while ordinary articles arrive;
  3. a 20 MB text file dropped into a watched folder (size cap raised to let it in).
While the loop is blocked no alert is sent and no command is answered; the target is <= 100 ms.

Run: .venv/bin/python bench/loop_stall.py   (part of `make bench`)
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from watchers.config import parse_config  # noqa: E402
from watchers.engine import Engine, open_engine  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpora" / "articles" / "bbc_news_2004_2005.jsonl"


async def ticker(stalls: list[float], stop: asyncio.Event) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.01)
        now = time.perf_counter()
        stalls.append(now - last - 0.01)
        last = now


async def measure(work: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    stalls: list[float] = []
    stop = asyncio.Event()
    tick = asyncio.create_task(ticker(stalls, stop))
    started = time.perf_counter()
    await work()
    took = time.perf_counter() - started
    stop.set()
    await tick
    return max(stalls, default=0.0), took


def texts(n: int) -> list[tuple[str, str]]:
    out = []
    if CORPUS.exists():
        with CORPUS.open(encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                out.append((d["title"], d["text"]))
                if len(out) >= n:
                    break
    while len(out) < n:
        out.append((f"Article {len(out)}", "Troops gathered near the border. " * 100))
    return out


def config(tmp: Path, **folder: object) -> dict[str, object]:
    (tmp / "in").mkdir(exist_ok=True)
    return {"storage": {"path": str(tmp / "nw.db")},
            "sources": [{"name": "in", "type": "folder", "path": str(tmp / "in"), "every": "1h",
                         "settle": "1ms", **folder}],
            "rules": [{"name": "troops", "query": "troops OR soldiers"}]}


async def fill(engine: Engine, folder: Path, n: int, tag: str) -> None:
    for i, (title, text) in enumerate(texts(n)):
        (folder / f"{tag}{i:04d}.txt").write_text(f"{title}\n{text}\n", encoding="utf-8")
    await engine.run_once()


async def case_search(tmp: Path) -> tuple[float, float]:
    cfg = parse_config(config(tmp))
    async with open_engine(cfg, start=False) as engine:
        await fill(engine, tmp / "in", 300, "s")
        return await measure(lambda: engine.search("/(a|aa)+(b|bb)+$/ OR /(\\w+\\s?)+$/",
                                                   limit=20))


async def case_regex_rules(tmp: Path) -> tuple[float, float]:
    cfg = parse_config(config(tmp))
    async with open_engine(cfg, start=False) as engine:
        for i in range(50):
            await engine.add_rule({"name": f"rx{i}", "query": f"/(\\w+\\s?)+{i}x$/"})
        folder = tmp / "in"
        return await measure(lambda: fill(engine, folder, 100, "r"))


async def case_big_file(tmp: Path) -> tuple[float, float]:
    cfg = parse_config(config(tmp, max_file_size=32 * 1024 * 1024))
    async with open_engine(cfg, start=False) as engine:
        line = "Troops and soldiers were seen near the border as talks went on. " * 16 + "\n"
        body = "A very large dispatch\n" + line * (20 * 1024 * 1024 // len(line))
        (tmp / "in" / "big.txt").write_text(body, encoding="utf-8")
        return await measure(engine.run_once)


async def main() -> None:
    print("Longest event-loop stall (10 ms ticker); target <= 100 ms")
    print(f"{'case':<44} {'stall ms':>9} {'work s':>8}")
    for label, case in [("/search, catastrophic regex, 300 articles", case_search),
                        ("50 regex rules from chat, 100 articles", case_regex_rules),
                        ("20 MB text file in a watched folder", case_big_file)]:
        with tempfile.TemporaryDirectory() as tmp:
            stall, took = await case(Path(tmp))
        print(f"{label:<44} {stall * 1000:>9.1f} {took:>8.2f}")


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    asyncio.run(main())
