"""Several processes on PostgreSQL: N local feeds (mostly 304) polled every INTERVAL by
``--workers`` ``newswatch run --role poll`` processes and delivered by one ``--role deliver``;
one worker is SIGKILLed mid-run. Figures are printed, never asserted.

What it prints:
- CPU per process (share of one core) over the measured window (after every feed's first
  poll), and the fraction of polls that came within 10% of the interval after the previous
  poll of the same feed (as bench/polling.py counts them for the single SQLite process;
  ``--sqlite`` runs that process on the same feeds for the side-by-side figure);
- the kill: the sources the killed worker held at that moment and how long until each was
  polled again (the lease expiry bounds it); polls of any feed made late by the kill;
- alerts: new matching items are added to random feeds during the run (after their baseline);
  at the end each must have exactly one outbox row (an alert, or an update of its story),
  delivered: lost and duplicated are counted.

A throwaway PostgreSQL cluster is started (PostgreSQL's initdb/pg_ctl on PATH; as root it runs
as the ``postgres`` user), or ``--pg-url`` names a server where a database may be created.
The feed server runs in a process of its own (its CPU is not newswatch's).

Run: .venv/bin/python bench/scale_pg.py [--feeds 20000] [--every 60] [--duration 300]
     [--workers 3] [--lease 30] [--sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import multiprocessing
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from polling import free_port  # noqa: E402  (the single-process bench's)

ITEM = ("<item><title>{title}</title><link>http://example.org/{guid}</link><guid>{guid}</guid>"
        "<description>{text}</description></item>")


# --------------------------------------------------------------------------- the feed server


def serve(port: int, ready: Any, slow: float, hosts: int) -> None:
    """Feeds /f/<n>.xml with an ETag (304 when unchanged), a ``slow`` share of them answering
    after 2 s; POST /bump/<n> adds a matching item; GET /stats returns every feed's request
    times (monotonic seconds)."""
    from aiohttp import web

    items: dict[int, list[str]] = {}
    versions: dict[int, int] = {}
    times: dict[int, list[float]] = {}

    def body(n: int) -> bytes:
        first = ITEM.format(title=f"Quiet news {n}", guid=f"{n}-0", text="Weather and markets.")
        return ("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Feed</title>"
                + "".join(items.get(n, [])[-5:]) + first + "</channel></rss>").encode()

    async def feed(request: web.Request) -> web.StreamResponse:
        n = int(request.match_info["n"])
        times.setdefault(n, []).append(time.monotonic())
        if n % 1000 < slow * 1000:
            await asyncio.sleep(2)
        etag = f'"v{versions.get(n, 0)}-{n}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=body(n), headers={"ETag": etag,
                                                   "Content-Type": "application/rss+xml"})

    async def bump(request: web.Request) -> web.StreamResponse:
        n = int(request.match_info["n"])
        versions[n] = versions.get(n, 0) + 1
        guid = f"{n}-{versions[n]}"
        # Words of their own, so that each item is a story of its own (not an update).
        words = " ".join(secrets.token_hex(3) for _ in range(5))
        items.setdefault(n, []).insert(0, ITEM.format(
            title=f"Troops {words}", guid=guid, text=f"Troops were seen: {words}."))
        return web.Response(text=guid)

    async def stats(request: web.Request) -> web.StreamResponse:
        return web.Response(text=json.dumps({str(k): v for k, v in times.items()}))

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/f/{n}.xml", feed)
        app.router.add_post("/bump/{n}", bump)
        app.router.add_get("/stats", stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        for h in range(hosts):  # the fetcher limits connections per host, as for real feeds
            await web.TCPSite(runner, f"127.0.0.{h + 1}", port, backlog=4096).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


# --------------------------------------------------------------------------- PostgreSQL


@contextlib.contextmanager
def cluster(given: str | None) -> Iterator[str]:
    """The URL of a server's maintenance database: ``given``, or a throwaway cluster."""
    if given:
        yield given
        return
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        sys.exit("initdb and pg_ctl are not on PATH; pass --pg-url postgresql://…")
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="newswatch-bench-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if prefix:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
    port = free_port()
    try:
        subprocess.run([*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "postgres",
                        "--no-sync", "-E", "UTF8", "--locale=C"], check=True,
                       capture_output=True)
        options = (f"-k {sock} -p {port} -c listen_addresses='' -c max_connections=200 "
                   "-c shared_buffers=256MB")
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-o", options, "-l",
                        str(base / "log"), "-w", "start"], check=True, capture_output=True)
        yield f"postgresql://postgres@/postgres?host={sock}&port={port}"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)


async def fresh_database(server: str, name: str) -> str:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


# --------------------------------------------------------------------------- processes


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (from /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_pids() -> list[int]:
    """The PostgreSQL server's processes (all of them on this machine)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    found.append(int(entry.name))
    return found


def write_config(path: Path, storage: str, port: int, feeds: int, every: float, hosts: int
                 ) -> None:
    key = "url" if storage.startswith("postgres") else "path"
    lines = [f"[storage]\n{key} = {json.dumps(storage)}",
             '[fetch]\nallow_private = ["127.0.0.0/8"]',
             '[[rules]]\nname = "troops"\nquery = "troops"']
    lines += [f'[[sources]]\nname = "f{i}"\ntype = "feed"\nevery = {every}\n'
              f'url = "http://127.0.0.{1 + i % hosts}:{port}/f/{i}.xml"' for i in range(feeds)]
    path.write_text("\n".join(lines) + "\n")


PROFILED = ("import cProfile, os, runpy, time\n"
            "profile = cProfile.Profile(time.process_time)\n"
            "profile.enable()\n"
            "try:\n"
            "    runpy.run_module('bot', run_name='__main__', alter_sys=True)\n"
            "finally:\n"
            "    profile.disable()\n"
            "    profile.dump_stats(os.environ['NEWSWATCH_PROFILE'])\n")


def start(cfg: Path, role: str, log: Path, lease: float, profile: Path | None = None
          ) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    # --profile: this worker runs under cProfile timing CPU, not the wall clock (on a busy
    # machine a descheduled send() would otherwise look costly); the file is written at a clean
    # stop.
    entry = ["-m", "bot"] if profile is None else ["-c", PROFILED]
    if profile is not None:
        env["NEWSWATCH_PROFILE"] = str(profile)
    args = [sys.executable, *entry, "run", "-c", str(cfg), "--console"]
    if role != "all":
        args += ["--role", role, "--lease", f"{lease}s"]
    with log.open("wb") as err:
        return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=err)


async def http(port: int, method: str, path: str) -> str:
    import aiohttp

    async with aiohttp.ClientSession() as s, s.request(
            method, f"http://127.0.0.1:{port}{path}") as r:
        return await r.text()


def on_time(times: dict[str, list[float]], t0: float, t1: float, every: float
            ) -> tuple[int, int]:
    """Polls in [t0, t1] that came within 10% of the interval after the previous one."""
    good = total = 0
    for seq in times.values():
        for a, b in itertools.pairwise(seq):
            if t0 <= b <= t1:
                total += 1
                good += b - a <= every * 1.1
    return good, total


# --------------------------------------------------------------------------- scenarios


async def scenario(args: argparse.Namespace, storage: str, roles: list[str], tmp: Path,
                   kill: bool) -> dict[str, Any]:
    port = free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(port, ready, args.slow, args.hosts),
                                     daemon=True)
    server.start()
    ready.wait(30)
    cfg = tmp / "newswatch.toml"
    write_config(cfg, storage, port, args.feeds, args.every, args.hosts)
    pg = storage.startswith("postgres")
    if pg:
        from watchers.store import PostgresStore

        await (await PostgresStore.open(storage)).aclose()  # the schema, before the workers
    profiled = f"poll{len(roles) - 1}" if args.profile and roles[-1] == "poll" else None
    procs = {f"{role}{i}": start(cfg, role, tmp / f"{role}{i}.log", args.lease,
                                 tmp / "poll.prof" if f"{role}{i}" == profiled else None)
             for i, role in enumerate(roles)}
    out: dict[str, Any] = {"procs": list(procs)}
    try:
        import asyncpg

        conn = await asyncpg.connect(storage) if pg else None
        started = time.monotonic()
        while True:  # every feed's first poll (the baseline) is done
            stats = json.loads(await http(port, "GET", "/stats"))
            if len(stats) >= args.feeds:
                break
            if time.monotonic() - started > args.every * 10:
                sys.exit(f"only {len(stats)} of {args.feeds} feeds were polled; see {tmp}")
            for name, p in procs.items():
                if p.poll() is not None:
                    sys.exit(f"{name} exited: {(tmp / f'{name}.log').read_text()[-2000:]}")
            await asyncio.sleep(1)
        out["baseline_s"] = time.monotonic() - started
        await asyncio.sleep(args.every)  # their second polls: steady state from here
        t0 = time.monotonic()
        cpu0 = {n: cpu_seconds(p.pid) for n, p in procs.items()}
        server0 = {pid: cpu_seconds(pid) for pid in postgres_pids()} if pg else {}
        bumps: list[str] = []
        kill_at = t0 + args.duration / 2 if kill else None
        victim = None
        end = t0 + args.duration
        while time.monotonic() < end:
            for _ in range(max(1, int(args.feeds * args.change / 60))):
                bumps.append(await http(port, "POST", f"/bump/{random.randrange(args.feeds)}"))
            if kill_at is not None and time.monotonic() >= kill_at and conn is not None:
                victim = next(n for n in procs if n.startswith("poll"))
                pid = procs[victim].pid
                for _ in range(200):  # killed in the middle of polls: holding leases
                    held = [int(r["name"][1:]) for r in await conn.fetch(
                        "SELECT name FROM source_state WHERE lease_owner LIKE $1",
                        f"%:{pid}:%")]
                    if held:
                        break
                    await asyncio.sleep(0.05)
                cpu0[victim] = float("nan")
                procs[victim].send_signal(signal.SIGKILL)
                killed = time.monotonic()
                out.update(victim=victim, held=held, killed=killed)
                kill_at = None
            await asyncio.sleep(1)
        t1 = time.monotonic()
        cpu1 = {n: cpu_seconds(p.pid) for n, p in procs.items() if p.poll() is None}
        out["cpu"] = {n: (cpu1[n] - cpu0[n]) / (t1 - t0) for n in cpu1 if cpu0[n] == cpu0[n]}
        if pg:  # backends alive at both ends (pooled connections live long)
            out["cpu"]["postgresql"] = sum(
                cpu_seconds(pid) - before for pid, before in server0.items()
                if cpu_seconds(pid) == cpu_seconds(pid)) / (t1 - t0)
        out["bumps"] = len(bumps)
        # the last changes are polled (next interval) and delivered
        await asyncio.sleep(args.every + args.lease + 5)
        times = {k: v for k, v in json.loads(await http(port, "GET", "/stats")).items()}
        out["on_time"] = on_time(times, t0, t1, args.every)
        if victim is not None:
            killed = out["killed"]
            again = [min((t for t in times[str(n)] if t > killed), default=float("inf"))
                     - killed for n in out["held"]]
            out["again"] = again
            late = [(b - a) for seq in times.values() for a, b in itertools.pairwise(seq)
                    if a <= killed < b and b - a > args.every * 1.1]
            out["late_by_kill"] = late
        if conn is not None:
            rows = await conn.fetch(
                "SELECT a.guid, count(*) AS n, bool_and(o.state = 'delivered') AS sent "
                "FROM outbox o JOIN articles a ON a.id = o.article_id "
                "WHERE o.kind IN ('alert', 'update') "
                "GROUP BY a.guid")
            alerted = {r["guid"].rsplit("/", 1)[-1]: r for r in rows}
            missing = sorted(g for g in set(bumps) if g not in alerted)
            out["lost"] = len(missing)
            if missing and os.environ.get("BENCH_DEBUG"):
                print("missing", missing[:5], "alerted", sorted(alerted)[:5])
            out["duplicated"] = sum(r["n"] - 1 for r in rows)
            out["undelivered"] = sum(1 for r in rows if not r["sent"])
            out["states"] = dict(await conn.fetch(
                "SELECT state, count(*) FROM outbox GROUP BY state"))
            await conn.close()
    finally:
        for name, p in procs.items():
            if p.poll() is not None and name != out.get("victim"):
                print(f"  {name} exited early ({p.returncode}): "
                      f"{(tmp / f'{name}.log').read_text()[-1500:]}")
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        server.terminate()
        server.join(10)
    if profiled is not None and (tmp / "poll.prof").exists():
        out["profile"] = where_time_goes(tmp / "poll.prof")
        shutil.copy(tmp / "poll.prof", CACHE_PROFILE)  # for a closer look with pstats
    return out


CACHE_PROFILE = Path("/tmp/newswatch-bench/poll-worker.prof")

# Where a poll worker's CPU goes, by the code it is in (first match of the file path wins).
AREAS = (("asyncpg (store round trips)", "asyncpg"), ("store code", "watchers/store"),
         ("HTTP client (aiohttp, yarl, multidict)", "aiohttp"), ("", "yarl"), ("", "multidict"),
         ("fetch guard and conditional GET", "watchers/sources/_http"),
         ("fetch guard and conditional GET", "watchers/sources/_guard"),
         ("feed parsing", "watchers/sources"), ("feed parsing", "feedparser"),
         ("scheduling and leases (service)", "watchers/service"),
         ("matching and stories", "watchers/rules"), ("matching and stories", "watchers/stories"),
         ("event loop and sockets", "asyncio"), ("event loop and sockets", "selectors"),
         ("event loop and sockets", "ssl"), ("event loop and sockets", "socket"),
         ("logging", "logging"))


def where_time_goes(path: Path) -> list[tuple[str, float]]:
    """The profiled worker's own time (tottime) summed by area, largest first, as shares."""
    import pstats

    stats = pstats.Stats(str(path))
    by: dict[str, float] = {}
    total = 0.0
    for (file, _line, fn), row in stats.stats.items():  # type: ignore[attr-defined]
        own = float(row[2])
        if file == "~" and ("epoll" in fn or "select" in fn):
            continue  # the event loop waiting: idle, not work
        total += own
        area = "other"
        for name, needle in AREAS:
            if needle in file:
                area = name or "HTTP client (aiohttp, yarl, multidict)"
                break
        if file == "~":
            area = ("event loop and sockets" if "socket" in fn or "_asyncio" in fn
                    else "built-ins called from the above (C)")
        by[area] = by.get(area, 0.0) + own
    return sorted(((a, t / total) for a, t in by.items()), key=lambda x: -x[1]) if total else []


def report(title: str, r: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"\n{title}")
    print(f"  first poll of all {args.feeds} feeds took {r['baseline_s']:.1f} s")
    for name, share in sorted(r["cpu"].items()):
        print(f"  {name:10} {share * 100:6.1f}% of one core")
    good, total = r["on_time"]
    print(f"  polls on time (within 10% of the interval): {good}/{total} = "
          f"{good / total * 100 if total else 0:.2f}%")
    print(f"  matching items added during the run: {r['bumps']}")
    if "again" in r:
        again = [a for a in r["again"] if a != float("inf")]
        print(f"  killed {r['victim']} holding {len(r['held'])} lease(s); polled again after: "
              + (f"median {statistics.median(again):.1f} s, max {max(again):.1f} s"
                 if again else "n/a")
              + (f"; {len(r['again']) - len(again)} never" if len(again) < len(r["again"])
                 else ""))
        late = r["late_by_kill"]
        print(f"  polls spanning the kill that came late: {len(late)}"
              + (f" (longest gap {max(late):.1f} s)" if late else ""))
    if "lost" in r:
        print(f"  alerts lost: {r['lost']}, duplicated: {r['duplicated']}, not yet delivered: "
              f"{r['undelivered']}; outbox {r['states']}")
    if r.get("profile"):
        print("  where one poll worker's CPU goes (cProfile, own time by area):")
        for area, share in r["profile"]:
            print(f"    {share * 100:5.1f}%  {area}")
        print(f"  (the profile is kept in {CACHE_PROFILE})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--feeds", type=int, default=20000)
    p.add_argument("--every", type=float, default=60.0, help="seconds between polls of a feed")
    p.add_argument("--duration", type=float, default=300.0, help="measured seconds")
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--lease", type=float, default=30.0, help="poll workers' lease, seconds")
    p.add_argument("--change", type=float, default=0.002,
                   help="share of the feeds that get a matching item per minute")
    p.add_argument("--slow", type=float, default=0.01,
                   help="share of the feeds that answer after 2 s")
    p.add_argument("--hosts", type=int, default=8,
                   help="loopback addresses the feeds are spread over (127.0.0.1 …)")
    p.add_argument("--pg-url", help="a server to create the bench database on")
    p.add_argument("--profile", action="store_true",
                   help="profile one poll worker (cProfile) and print where its time goes")
    p.add_argument("--sqlite", action="store_true",
                   help="also run one --role all process on SQLite, for comparison")
    args = p.parse_args()
    print(f"{args.feeds} local feeds every {args.every:g} s, {args.duration:g} s measured; "
          f"{args.workers} poll worker(s) + 1 deliver on PostgreSQL, lease {args.lease:g} s")
    with cluster(args.pg_url) as server, tempfile.TemporaryDirectory() as tmp:
        url = asyncio.run(fresh_database(server, "newswatch_bench"))
        roles = ["deliver"] + ["poll"] * args.workers
        pg = asyncio.run(scenario(args, url, roles, Path(tmp), kill=True))
        report("PostgreSQL, several processes", pg, args)
        if args.sqlite:
            lite = asyncio.run(scenario(args, str(Path(tmp) / "nw.db"), ["all"],
                                        Path(tmp), kill=False))
            report("SQLite, one process (--role all)", lite, args)


if __name__ == "__main__":
    main()
