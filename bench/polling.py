"""Steady-state polling cost: N local feeds polled every INTERVAL, almost all answering 304.

A feed server runs in its own process on 127.0.0.1 (its CPU is not ours); newswatch runs a real
engine (SQLite file, the guarded fetcher with conditional GET, the watch service) on those feeds
with a null sink. After every feed's first poll (the baseline), the CPU time of the newswatch
process is measured over a window of whole intervals, with how many polls came on time
(within 10% of the interval after the previous one). A bare aiohttp poller doing the same
conditional GETs gives the floor.

Run: .venv/bin/python bench/polling.py [--feeds 20000] [--every 60] [--cycles 2]
(NEWSWATCH_PURE=1 makes the fetcher use aiohttp instead of its lean httptools client;
--threads prints each thread's CPU share, --profile where the event loop's CPU time went.)
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import os
import resource
import socket
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {n}</title>
<link>http://example.org/{n}</link><description>d</description>
<item><title>Story {n}</title><link>http://example.org/{n}/1</link><guid>{n}-1</guid>
<description>Troops and talks, item {n}.</description></item></channel></rss>"""


def serve(port: int, ready: multiprocessing.synchronize.Event) -> None:
    from aiohttp import web

    async def feed(request: web.Request) -> web.StreamResponse:
        n = request.match_info["n"]
        etag = f'"v1-{n}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=FEED.format(n=n).encode(), headers={
            "ETag": etag, "Content-Type": "application/rss+xml"})

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/f/{n}.xml", feed)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def thread_cpu() -> dict[str, tuple[float, float]]:
    """Per-thread (user, system) CPU seconds, by thread name (Linux /proc only)."""
    out: dict[str, tuple[float, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path("/proc/self/task").glob("*"):
        try:
            stat = (task / "stat").read_text()
            name = (task / "comm").read_text().strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        user, system = int(fields[11]) / tick, int(fields[12]) / tick
        key = f"{name}[{task.name}]"
        out[key] = (user, system)
    return out


class NullSink:
    async def deliver(self, alert: object) -> str | None:
        return None


async def newswatch(port: int, feeds: int, every: float, cycles: int, profile: bool = False,
                    threads: bool = False) -> tuple[float, float, int]:
    from watchers.config import parse_config
    from watchers.engine import open_engine

    polls: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = parse_config({
            "storage": {"path": str(Path(tmp) / "nw.db")},
            "fetch": {"allow_private": ["127.0.0.1/32"]},
            "sources": [{"name": f"f{i}", "type": "feed", "every": every,
                         "url": f"http://127.0.0.1:{port}/f/{i}.xml"} for i in range(feeds)],
            "rules": [{"name": "troops", "query": "troops"}],
        })
        async with open_engine(cfg, default_sink=NullSink(), start=False,
                               on_report=lambda r: polls[r.source].append(time.monotonic())
                               ) as engine:
            client = engine.fetcher.client
            print(f"  HTTP client: {client} ("
                  f"{'httptools on asyncio protocols' if client == 'lean' else 'aiohttp'}"
                  f"{'; NEWSWATCH_PURE is set' if os.environ.get('NEWSWATCH_PURE') else ''})",
                  flush=True)
            await engine.start()
            started = time.monotonic()
            for _ in range(int(every * 6)):  # until every feed had its first poll
                if len(polls) >= feeds:
                    break
                await asyncio.sleep(0.5)
            baseline = time.monotonic() - started
            print(f"  first poll of all {len(polls)} feeds took {baseline:.1f} s", flush=True)
            if profile:
                import cProfile
                import pstats

                prof = cProfile.Profile(time.thread_time)  # CPU, not waits for the GIL
                prof.enable()
            t0, c0, th0 = time.monotonic(), cpu(), thread_cpu() if threads else {}
            await asyncio.sleep(every * cycles)
            t1, c1, th1 = time.monotonic(), cpu(), thread_cpu() if threads else {}
            for key, (user, system) in sorted(th1.items()):
                u0, s0 = th0.get(key, (0.0, 0.0))
                if user + system - u0 - s0 >= 0.01 * (t1 - t0):
                    print(f"  thread {key}: user {(user - u0) / (t1 - t0) * 100:.1f}%, "
                          f"system {(system - s0) / (t1 - t0) * 100:.1f}%")
            if profile:
                prof.disable()
                if os.environ.get("BENCH_PROFILE_OUT"):
                    prof.dump_stats(os.environ["BENCH_PROFILE_OUT"])
                pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    in_window = [(name, [t for t in times if t0 <= t <= t1]) for name, times in polls.items()]
    on_time = late = 0
    for name, times in in_window:
        previous = [t for t in polls[name] if t < t0]
        seq = previous[-1:] + times
        for a, b in itertools.pairwise(seq):
            if b - a <= every * 1.1:
                on_time += 1
            else:
                late += 1
    total = on_time + late
    return (c1 - c0) / (t1 - t0), on_time / total if total else 0.0, total


async def bare(port: int, feeds: int, every: float, cycles: int) -> float:
    """The floor: one aiohttp session doing the same conditional GETs on the same schedule."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        etags: dict[int, str] = {}

        async def one(i: int) -> None:
            headers = {"If-None-Match": etags[i]} if i in etags else {}
            async with session.get(f"http://127.0.0.1:{port}/f/{i}.xml", headers=headers) as r:
                await r.read()
                etags[i] = r.headers.get("ETag", "")

        async def loop(i: int, offset: float) -> None:
            await asyncio.sleep(offset)
            while True:
                await one(i)
                await asyncio.sleep(every)

        tasks = [asyncio.create_task(loop(i, every * i / feeds)) for i in range(feeds)]
        await asyncio.sleep(every + 2)
        t0, c0 = time.monotonic(), cpu()
        await asyncio.sleep(every * cycles)
        t1, c1 = time.monotonic(), cpu()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return (c1 - c0) / (t1 - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--feeds", type=int, default=20000)
    p.add_argument("--every", type=float, default=60.0)
    p.add_argument("--cycles", type=int, default=2)
    p.add_argument("--skip-bare", action="store_true")
    p.add_argument("--profile", action="store_true", help="print where newswatch's time went")
    p.add_argument("--threads", action="store_true", help="print each thread's CPU share")
    args = p.parse_args()
    port = free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(port, ready), daemon=True)
    server.start()
    ready.wait(30)
    try:
        print(f"Polling {args.feeds} local feeds every {args.every:.0f} s (mostly 304), "
              f"{args.cycles} interval(s) measured, pid {os.getpid()}")
        share, on_time, total = asyncio.run(newswatch(port, args.feeds, args.every,
                                                      args.cycles, args.profile,
                                                      args.threads))
        print(f"  newswatch: {share * 100:.1f}% of one core, {on_time * 100:.1f}% of "
              f"{total} polls on time")
        if not args.skip_bare:
            floor = asyncio.run(bare(port, args.feeds, args.every, args.cycles))
            print(f"  bare aiohttp poller: {floor * 100:.1f}% of one core")
    finally:
        server.terminate()
        server.join(10)


if __name__ == "__main__":
    main()
