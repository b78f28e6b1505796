"""Quiet channels on a busy day: the busiest calendar day (UTC) of the Reddit headlines 2021–22
replayed through the whole pipeline to an emulated Discord three times — the route ``alerts``
posting every alert at once (``immediate``), capped at ``max_per_hour``, and as an hourly
digest — counting the messages each costs and checking that nothing is lost: the set of stories
that reached Discord (as an alert, or as a line of a digest) must be the same in all three.

Each run opens a real engine (SQLite in a temporary folder, ``start=False``) whose every
schedule reads one :class:`watchers.schedule.ManualClock`; the route's destination is a webhook
of the in-repo Discord emulator (127.0.0.1, no network) served by the real
``bot.sinks.DiscordSink``. Every outlet is a source of its own (see ``stories_replay.py``); the
headlines go in one at a time in date order: the clock is set to the headline's time, its outlet
is polled, delivery drains. Before that, every digest that falls due up to the headline's time
goes out at its own time (the clock stops there and delivery drains), and after the last headline
the clock moves past the last digest time, so everything is out when the run ends.

The cap must bite for the comparison to mean anything: the immediate run counts its alert
messages per clock hour, and when no hour has more than the cap, a synthetic burst is added and
all three modes run on the day plus the burst (said so in the output). The burst is real
headlines from other days that mention the rules' words, one per day, re-dated into the busiest
hour of the day.

Invariants checked, never assumed (the run fails with the reason otherwise): every outbox row
ends ``delivered`` or ``digested``; every alert message the store names exists in the emulator;
every story the store says went out in a digest is named (link or headline) by a digest message
the emulator received; no request was refused. The alerted-story sets of the three modes are
compared; the script exits 1 when they differ, when the store and Discord disagree, or when a
request breaks the Discord OpenAPI spec.

    .venv/bin/python bench/quiet_replay.py [--cap 5] [--burst auto|always|never] [--json]
                                           [--corpus PATH] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from stories_replay import (  # noqa: E402
    CORPUS,
    PATCH,
    POST,
    ROUTE,
    Inbox,
    Record,
    ReplayError,
    load,
)

from bot.sinks import discord_sinks  # noqa: E402
from tests.fakes.discord_emulator import DiscordEmulator, EmuMessage  # noqa: E402
from tests.fakes.discord_spec import spec_available  # noqa: E402
from watchers.config import Config, FolderSourceConfig, RouteConfig, RuleConfig  # noqa: E402
from watchers.engine import Engine, open_engine  # noqa: E402
from watchers.models import Article  # noqa: E402
from watchers.schedule import ManualClock  # noqa: E402

# Broad rules that fire often in 2021–22, all one severity: nothing breaks through a cap.
RULES = {
    "russia": "russia OR russian OR putin",
    "ukraine": "ukraine OR ukrainian OR kyiv~",
    "covid": "covid OR omicron OR vaccine",
    "biden": "biden",
}
# Only to pick burst headlines; which of them fire is the engine's call.
_RULE_WORDS = re.compile(
    r"\b(russian?|putin|ukrain(e|ian)|kyiv|kiev|covid|omicron|vaccines?|biden)\b", re.I)
MODES = ("immediate", "cap", "digest")
BURST_PER_CAP = 3  # a burst is this many times the cap: several hours' worth in one


class QuietError(ReplayError):
    """The replay could not run, or the store and Discord disagree."""


def schedule(mode: str, cap: int) -> dict[str, Any]:
    """The route settings of a run."""
    if mode == "immediate":
        return {"mode": "immediate"}
    if mode == "cap":
        return {"mode": "immediate", "max_per_hour": cap}
    if mode == "digest":
        return {"mode": "digest", "digest_every": timedelta(hours=1)}
    raise ValueError(f"unknown run {mode!r}; runs are {', '.join(MODES)}")


def label(mode: str, cap: int) -> str:
    return {"immediate": "immediate", "cap": f"max_per_hour = {cap}",
            "digest": "digest every 1h"}[mode]


def busiest_day(records: Sequence[Record]) -> tuple[date, list[Record]]:
    """The calendar day (UTC) with the most headlines (the earliest of a tie) and its records,
    in date order."""
    if not records:
        raise QuietError("the corpus holds no headlines")
    per_day = Counter(r.when.date() for r in records)
    day = min(per_day, key=lambda d: (-per_day[d], d))
    return day, [r for r in records if r.when.date() == day]


def burst(records: Sequence[Record], day: date, size: int) -> list[Record]:
    """``size`` headlines from other days that mention a rule's words, one per day (so they
    are distinct stories), re-dated a few minutes apart into the day's busiest hour."""
    on_day = [r for r in records if r.when.date() == day]
    hits = Counter(r.when.hour for r in on_day if _RULE_WORDS.search(f"{r.title} {r.text}"))
    hour = min(hits, key=lambda h: (-hits[h], h)) if hits else 12
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=hour)
    urls = {r.url for r in on_day}
    picked: dict[date, Record] = {}
    for r in records:
        if (len(picked) < size and r.when.date() != day and r.when.date() not in picked
                and r.url not in urls and _RULE_WORDS.search(f"{r.title} {r.text}")):
            picked[r.when.date()] = r
    if len(picked) < size:
        raise QuietError(f"only {len(picked)} other days have a headline for a burst of {size}")
    step = timedelta(minutes=50) / size
    return [replace(r, id=f"burst-{r.id}", when=start + timedelta(minutes=5) + i * step)
            for i, r in enumerate(picked.values())]


@dataclass
class Run:
    mode: str
    label: str
    articles: int = 0
    stored: int = 0
    fired: int = 0  # articles that fired a rule
    fired_stories: int = 0
    posts: int = 0  # Discord messages created (POST)
    digest_posts: int = 0  # of which digest messages
    alert_posts: int = 0  # of which alerts (and updates reposted as a message)
    other_posts: int = 0  # notices, surges
    patches: int = 0  # Discord edits (PATCH)
    digest_rows: int = 0
    digested: dict[str, int] = field(default_factory=dict)  # reason → articles carried
    absorbed: int = 0  # story updates taken as shown by an earlier digest (no message)
    hours_over_cap: int = 0  # clock hours with more alert messages than the cap
    busiest_hour: int = 0  # the most alert messages in one clock hour
    stories: set[str] = field(default_factory=set)  # stories that reached Discord
    repeated: int = 0  # stories shown in 2+ messages (alerts, digests): announced again
    seconds: float = 0.0
    spec_problems: int | None = None  # None: the OpenAPI spec is absent, nothing validated
    first_problems: tuple[str, ...] = ()
    mismatch: tuple[str, ...] = ()  # where the store and the emulator disagree

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["stories"] = len(self.stories)
        return out


def _text(m: EmuMessage) -> str:
    """Everything a reader sees of a message, markdown escapes undone."""
    parts = [m.content]
    for e in m.embeds:
        parts += [str(e.get(k) or "") for k in ("title", "description", "url")]
        parts += [f"{f.get('name', '')} {f.get('value', '')}" for f in e.get("fields") or []]
        parts.append(str((e.get("footer") or {}).get("text") or ""))
    return "\n".join(parts).replace("\\", "")


async def _catch_up(engine: Engine, clock: ManualClock, until: datetime) -> None:
    """Deliver every digest due up to ``until`` at its own time."""
    last = None
    while True:
        due = [at for _, at in (await engine.delivery_status()).scheduled.values()
               if at is not None and at <= until]
        if not due:
            return
        if min(due) == last:
            raise QuietError(f"alerts scheduled for {last} are still kept after a drain at "
                             f"{clock.now()}: no digest was made for them")
        last = min(due)
        clock.set(max(last, clock.now()))
        await engine.delivery.drain()


async def replay(records: Sequence[Record], mode: str, cap: int, tmp: Path) -> Run:
    run = Run(mode, label(mode, cap), articles=len(records))
    db = tmp / f"quiet-{mode}.db"
    clock = ManualClock(records[0].when)
    async with DiscordEmulator() as emu, emu.patch_discord(), aiohttp.ClientSession() as session:
        hook = emu.add_webhook(emu.channel("alerts").id, "newswatch")
        cfg = Config(
            channels={ROUTE: RouteConfig(target=hook.url, **schedule(mode, cap))},
            rules=[RuleConfig(name=n, query=q, channel=ROUTE) for n, q in RULES.items()])
        sinks = discord_sinks(cfg.targets, session=session)
        async with open_engine(cfg, sinks=sinks, start=False, store_path=str(db),
                               clock=clock) as engine:
            inboxes: dict[str, Inbox] = {}
            for outlet in dict.fromkeys(r.outlet for r in records):
                inboxes[outlet] = Inbox(outlet)
                await engine.watch.add_source(
                    FolderSourceConfig(name=outlet, type="folder", path=outlet), inboxes[outlet])
            t0 = time.perf_counter()
            for r in records:
                await _catch_up(engine, clock, r.when)
                clock.set(max(r.when, clock.now()))
                # No guid, as in stories_replay: the link is the item's identity.
                inboxes[r.outlet].queued = [Article(
                    source=r.outlet, title=r.title, text=r.text,
                    url=r.url or f"urn:replay:{r.id}", published=r.when)]
                report = await engine.watch.poll_source(r.outlet)
                if report.error:
                    raise QuietError(f"poll of {r.outlet} failed: {report.error}")
                run.stored += report.new
                await engine.delivery.drain()
            await _catch_up(engine, clock, datetime.max.replace(tzinfo=UTC))
            clock.set(clock.now() + timedelta(hours=1, seconds=1))
            await engine.delivery.drain()
            run.seconds = time.perf_counter() - t0
        refused = [r for r in emu.requests if r.status is None or r.status >= 400]
        if refused:
            raise QuietError(f"{len(refused)} request(s) refused by the emulator, first: "
                             f"{refused[0]!r}")
        run.posts = len([r for r in emu.requests_for(POST) if r.status == 200])
        run.patches = len([r for r in emu.requests_for(PATCH) if r.status == 200])
        if spec_available():
            problems = emu.validate_all()
            run.spec_problems, run.first_problems = len(problems), tuple(problems[:3])
        messages = {m.id: _text(m) for m in emu.messages(hook.channel_id)}
    _from_store(db, run, messages, cap)
    return run


def _from_store(db: Path, run: Run, messages: dict[int, str], cap: int) -> None:
    """What went out, read back from the store and checked against the emulator's messages:
    a story reached Discord when its alert's message exists, or when a digest that carried it
    was posted and a digest message names one of its articles."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        q = con.execute
        (run.fired,) = q("SELECT count(DISTINCT article_id) FROM matches").fetchone()
        fired = {s for (s,) in q(
            "SELECT coalesce(a.story_id, 'article:' || a.id) FROM articles a WHERE EXISTS "
            "(SELECT 1 FROM matches m WHERE m.article_id = a.id)")}
        run.fired_stories = len(fired)
        left = q("SELECT kind, state, count(*) FROM outbox WHERE state NOT IN "
                 "('delivered', 'digested') GROUP BY kind, state").fetchall()
        if left:
            raise QuietError(f"outbox rows not out after the replay: {left}")
        mismatch: list[str] = []

        # Alerts (and updates that posted anew): each names the message it created or edited.
        named: set[int] = set()
        by_alert: set[str] = set()
        shown: dict[str, set[str]] = {}  # story → the messages (or digests) that showed it
        per_hour: Counter[str] = Counter()
        for kind, story, remote, at in q(
                "SELECT kind, coalesce(story_id, 'article:' || article_id), remote_id, "
                "updated_at FROM outbox WHERE kind IN ('alert', 'update') AND state = "
                "'delivered' AND digest_id IS NULL"):
            if remote is None:
                if kind == "alert":
                    mismatch.append(f"alert of {story} delivered without a message")
                continue
            if int(remote) not in messages:
                mismatch.append(f"message {remote} of {story} is not in the channel")
                continue
            if kind == "alert":
                by_alert.add(story)
                shown.setdefault(story, set()).add(f"message {remote}")
                per_hour[at[:13]] += int(int(remote) not in named)
            named.add(int(remote))
        run.alert_posts = len(named)
        run.busiest_hour = max(per_hour.values(), default=0)
        run.hours_over_cap = sum(1 for n in per_hour.values() if n > cap)
        (run.absorbed,) = q("SELECT count(*) FROM outbox WHERE kind = 'update' AND state = "
                            "'delivered' AND remote_id IS NULL AND digest_id IS NULL").fetchone()

        # Digests: only the first message's id is kept, so every message no alert names is
        # read as a digest message and searched for the stories the digest carried.
        digest_text = "\n".join(t for i, t in messages.items() if i not in named)
        digests = q("SELECT id, remote_id FROM outbox WHERE kind = 'digest'").fetchall()
        run.digest_rows = len(digests)
        posted = {d for d, remote in digests if remote is not None}
        for d, remote in digests:
            if remote is None:
                mismatch.append(f"digest {d} delivered without a message")
            elif int(remote) not in messages:
                mismatch.append(f"digest {d}: message {remote} is not in the channel")
        run.digested = dict(q("SELECT d.text, count(*) FROM outbox m JOIN outbox d ON "
                              "d.id = m.digest_id WHERE m.kind IN ('alert', 'update') "
                              "GROUP BY d.text"))
        carried: dict[str, list[tuple[str, str]]] = {}
        for story, digest, title, url in q(
                "SELECT coalesce(m.story_id, 'article:' || m.article_id), m.digest_id, "
                "a.title, a.url FROM outbox m JOIN articles a ON a.id = m.article_id "
                "WHERE m.state = 'digested'"):
            if digest in posted:
                carried.setdefault(story, []).append((title, url or ""))
                shown.setdefault(story, set()).add(f"digest {digest}")
            else:
                mismatch.append(f"{story} went into digest {digest}, which posted nothing")
        by_digest: set[str] = set()
        for story, arts in carried.items():
            if any((url and url in digest_text) or title.replace("\\", "") in digest_text
                   for title, url in arts):
                by_digest.add(story)
            else:
                mismatch.append(f"{story} ({arts[0][0][:60]!r}) is in no digest message")
        run.stories = by_alert | by_digest
        run.repeated = sum(1 for where in shown.values() if len(where) > 1)
        run.digest_posts = len(messages) - len(named)
        (run.other_posts,) = q("SELECT count(*) FROM outbox WHERE kind IN ('notice', 'surge') "
                               "AND remote_id IS NOT NULL").fetchone()
        run.digest_posts -= run.other_posts
        if run.posts != len(messages):
            mismatch.append(f"{run.posts} POSTs but {len(messages)} messages in the channel")
        if missed := fired - run.stories:
            mismatch.append(f"{len(missed)} stories fired but never reached Discord, e.g. "
                            f"{sorted(missed)[:3]}")
        run.mismatch = tuple(mismatch)
    finally:
        con.close()


def show(runs: Sequence[Run], day: date, on_day: int, extra: int, cap: int, note: str) -> bool:
    """Print the table; True when the three sets are identical and nothing disagrees."""
    print(f"== quiet channels: the busiest day of the Reddit headlines 2021-22 is {day} "
          f"({on_day} headlines)")
    print(f"   {len(RULES)} broad rules ({'; '.join(RULES.values())}) on route {ROUTE!r}, "
          "a webhook on the Discord emulator; one poll + drain per headline on a manual clock")
    print(f"   {note}")
    if extra:
        print(f"   synthetic burst added: {extra} headlines of other days re-dated into one hour")
    rows: list[tuple[str, Callable[[Run], object]]] = [
        ("headlines replayed", lambda r: r.articles),
        ("  stored", lambda r: r.stored),
        ("  fired a rule", lambda r: r.fired),
        ("stories that fired", lambda r: r.fired_stories),
        ("messages posted (POST)", lambda r: r.posts),
        ("  alerts", lambda r: r.alert_posts),
        ("  digests", lambda r: r.digest_posts),
        ("  notices/surges", lambda r: r.other_posts),
        ("edits (PATCH)", lambda r: r.patches),
        ("digest rows", lambda r: r.digest_rows),
        ("alerts carried by digests", lambda r: sum(r.digested.values())),
        ("  of which past the cap", lambda r: r.digested.get("cap", 0)),
        ("updates shown by a digest", lambda r: r.absorbed),
        ("most alerts in one hour", lambda r: r.busiest_hour),
        (f"hours over {cap} alerts", lambda r: r.hours_over_cap),
        ("alerted stories", lambda r: len(r.stories)),
        ("  shown in 2+ messages", lambda r: r.repeated),
        ("store and Discord disagree", lambda r: len(r.mismatch)),
        ("requests failing the spec", lambda r: "no spec" if r.spec_problems is None
         else r.spec_problems),
        ("wall time (s)", lambda r: f"{r.seconds:.1f}"),
    ]
    print(f"{'':30}" + "".join(f"{r.label:>20}" for r in runs))
    for name, get in rows:
        print(f"{name:30}" + "".join(f"{get(r)!s:>20}" for r in runs))
    ok = True
    for r in runs:
        for p in r.first_problems:
            print(f"   {r.label}: spec: {p}")
        for m in r.mismatch[:10]:
            print(f"   {r.label}: {m}")
        ok = ok and not r.mismatch and not r.spec_problems
    first = runs[0].stories
    same = all(r.stories == first for r in runs)
    print(f"alerted stories: {' / '.join(str(len(r.stories)) for r in runs)}; identical: "
          f"{'yes' if same else 'no'}")
    if not same:
        for r in runs[1:]:
            lost, more = first - r.stories, r.stories - first
            if lost or more:
                print(f"   {r.label} vs {runs[0].label}: missing {len(lost)} "
                      f"{sorted(lost)[:5]}, extra {len(more)} {sorted(more)[:5]}")
    return same and ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cap", type=int, default=5, help="max_per_hour of the capped run (5)")
    p.add_argument("--burst", choices=("auto", "always", "never"), default="auto",
                   help="add a synthetic burst when no hour exceeds the cap (auto), always, "
                        "or never")
    p.add_argument("--corpus", type=Path, default=CORPUS)
    p.add_argument("--json", action="store_true", help="also one JSON object per run")
    p.add_argument("--keep", type=Path, default=None, metavar="DIR",
                   help="keep each run's database in DIR (quiet-MODE.db) to look into")
    args = p.parse_args(argv)
    if not 1 <= args.cap <= 10_000:
        p.error("--cap must be 1 to 10000")
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        if any((args.keep / f"quiet-{m}.db").exists() for m in MODES):
            p.error(f"{args.keep} already holds a replay database; choose an empty folder")
    try:
        records = load(args.corpus, None)
        day, on_day = busiest_day(records)
        with tempfile.TemporaryDirectory() as tmp:
            where = args.keep if args.keep is not None else Path(tmp)
            runs: list[Run] = []
            extra: list[Record] = []
            if args.burst != "always":
                runs.append(asyncio.run(replay(on_day, "immediate", args.cap, where)))
                busy = runs[0].hours_over_cap
                note = (f"the day alone: at most {runs[0].busiest_hour} alerts in an hour, "
                        f"{busy} hour(s) over the cap of {args.cap}")
            else:
                busy, note = 0, "burst added on request"
            if args.burst == "always" or (args.burst == "auto" and busy == 0):
                extra = burst(records, day, BURST_PER_CAP * args.cap)
                for db in where.glob("quiet-*.db*"):
                    db.unlink()
                runs = []
            replayed = sorted([*on_day, *extra], key=lambda r: (r.when, r.id))
            for mode in MODES[len(runs):]:
                runs.append(asyncio.run(replay(replayed, mode, args.cap, where)))
    except ReplayError as exc:
        raise SystemExit(f"quiet replay failed: {exc}") from None
    if args.json:
        for r in runs:
            print(json.dumps(r.as_json()), flush=True)
    return 0 if show(runs, day, len(on_day), len(extra), args.cap, note) else 1


if __name__ == "__main__":
    sys.exit(main())
