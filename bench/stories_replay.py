"""Replay of the Reddit headlines 2021–22 through the whole pipeline to an emulated Discord:
how many messages a story costs with ``stories = "edit"`` against one per article (``"off"``).

Each run opens a real engine (``open_engine(..., start=False)``, SQLite in a temporary folder)
with broad rules on the route ``alerts``, whose destination is a webhook of the in-repo Discord
emulator (127.0.0.1, no network) served by the real ``bot.sinks.DiscordSink`` (discord.py).
Every outlet (the record's ``domain``) is a source of its own; the articles go in in date order,
a poll round per ``--poll-every`` minutes of article time: in each round every outlet that
published is polled once (``WatchService.poll_source``, the path a scheduled poll takes) and
hands over what it published in that round, then delivery drains the outbox (what
``run --once`` does). Story grouping and its window run on the articles' dates, so the replay of
eight months takes minutes, not months.

Printed per run (``edit`` then ``off``): articles replayed, stored (the store drops a headline
another outlet already ran word for word), articles that fired a rule, stories formed and
those with 2+ outlets, Discord POSTs and PATCHes, messages per multi-outlet story that fired,
articles per message, wall time, articles/s, and the emulator's spec validation of every
request. The figures are read back from the store and the emulator, never assumed, and checked
against each other: every message the emulator created is one the outbox recorded, and the
run stops with an error if any outbox row is left undelivered.

    .venv/bin/python bench/stories_replay.py [--limit N] [--poll-every 15] [--modes edit,off]
                                             [--json] [--corpus PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.sinks import discord_sinks  # noqa: E402
from tests.fakes.discord_emulator import DiscordEmulator  # noqa: E402
from tests.fakes.discord_spec import spec_available  # noqa: E402
from watchers.config import (  # noqa: E402
    Config,
    FolderSourceConfig,
    RouteConfig,
    RuleConfig,
    StoriesMode,
)
from watchers.engine import open_engine  # noqa: E402
from watchers.models import Article  # noqa: E402
from watchers.sources.base import Poll  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpora" / "articles" / "reddit_news_headlines_2021_2022.jsonl"
ROUTE = "alerts"
MODES: tuple[StoriesMode, ...] = ("edit", "thread", "off")
# Broad rules that fire often on 2021–22 news; all the same severity, so no story escalates
# and every extra message is one the story grouping failed to save.
RULES = {
    "ukraine": "ukraine OR ukrainian",
    "russia": "russia OR russian OR putin",
    "covid": "covid OR omicron OR vaccine",
    "election": "election OR vote",
    "shooting": "shooting OR gunman",
    "trump": "trump",
    "biden": "biden",
}
POST = "POST /webhooks/{webhook_id}/{webhook_token}"
PATCH = "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"


class ReplayError(Exception):
    """The replay could not run, or its figures disagree with each other."""


@dataclass(frozen=True)
class Record:
    id: str
    title: str
    text: str
    url: str | None
    when: datetime
    outlet: str


def load(path: Path, limit: int | None) -> list[Record]:
    """The corpus in date order (ties by id); the first ``limit`` of that order."""
    if not path.is_file():
        raise ReplayError(f"no corpus at {path}: the replay reads ../shared/corpora")
    out = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            try:
                rec = json.loads(line)
                when = datetime.fromisoformat(rec["date"])
                title, outlet = rec["title"].strip(), rec["domain"].strip()
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ReplayError(f"{path}:{n}: not a headline record ({exc!r})") from None
            if not title or not outlet:
                raise ReplayError(f"{path}:{n}: empty title or domain")
            if when.tzinfo is None:
                raise ReplayError(f"{path}:{n}: date {rec['date']!r} has no UTC offset")
            out.append(Record(str(rec["id"]), title, rec.get("text") or "",
                              rec.get("url") or None, when.astimezone(UTC), outlet))
    out.sort(key=lambda r: (r.when, r.id))
    return out[:limit] if limit is not None else out


class Inbox:
    """An outlet as a source: each poll hands over what was queued since the last one."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.queued: list[Article] = []

    async def poll(self, cursor: Mapping[str, str]) -> Poll:
        articles, self.queued = self.queued, []
        return Poll(articles, cursor={"replayed": str(len(articles))})

    async def aclose(self) -> None:
        return None


def rounds(records: Sequence[Record], minutes: int) -> list[dict[str, list[Record]]]:
    """The records cut into poll rounds of ``minutes`` of article time; in each round, every
    outlet's records, outlets in the order they first published in the round."""
    out: list[dict[str, list[Record]]] = []
    current: dict[str, list[Record]] = {}
    slot = None
    for rec in records:
        s = int(rec.when.timestamp()) // (minutes * 60)
        if s != slot and current:
            out.append(current)
            current = {}
        slot = s
        current.setdefault(rec.outlet, []).append(rec)
    if current:
        out.append(current)
    return out


@dataclass
class Figures:
    mode: str
    articles: int = 0
    polls: int = 0
    outlets: int = 0
    stored: int = 0
    duplicates: int = 0  # handed over but already stored (same guid, link or words)
    updated: int = 0  # stored articles whose content changed in place (story updates)
    fired: int = 0
    stories: int = 0
    multi_outlet: int = 0
    fired_stories: int = 0
    fired_multi: int = 0  # stories of 2+ outlets with at least one article that fired
    fired_articles_in_multi: int = 0
    alert_rows: int = 0
    update_rows: int = 0
    changed_rows: int = 0  # of which: a stored article changed in place ("Updated: ...")
    notice_rows: int = 0
    posts: int = 0
    patches: int = 0
    messages_multi: int = 0  # messages the multi-outlet stories that fired cost
    most_messages: int = 0  # the most messages any one story cost
    reposted: int = 0  # updates that posted a message instead of editing
    seconds: float = 0.0
    spec_problems: int | None = None  # None: the OpenAPI spec is absent, nothing validated
    first_problems: tuple[str, ...] = ()

    @property
    def per_story(self) -> float:
        return self.messages_multi / self.fired_multi if self.fired_multi else 0.0

    @property
    def articles_per_message(self) -> float:
        return self.fired / self.posts if self.posts else 0.0

    @property
    def rate(self) -> float:
        return self.articles / self.seconds if self.seconds else 0.0

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "messages_per_multi_outlet_story": round(self.per_story, 3),
                "articles_per_message": round(self.articles_per_message, 3),
                "articles_per_second": round(self.rate, 1)}


def config(mode: StoriesMode, target: str) -> Config:
    return Config(
        channels={ROUTE: RouteConfig(target=target, stories=mode)},
        rules=[RuleConfig(name=name, query=query, channel=ROUTE)
               for name, query in RULES.items()],
    )


async def replay(records: Sequence[Record], mode: StoriesMode, minutes: int, tmp: Path
                 ) -> Figures:
    fig = Figures(mode, articles=len(records))
    db = tmp / f"replay-{mode}.db"
    async with DiscordEmulator() as emu, emu.patch_discord(), aiohttp.ClientSession() as session:
        hook = emu.add_webhook(emu.channel("alerts").id, "newswatch")
        cfg = config(mode, hook.url)
        sinks = discord_sinks(cfg.targets, session=session)
        async with open_engine(cfg, sinks=sinks, start=False, store_path=str(db)) as engine:
            inboxes: dict[str, Inbox] = {}
            fig.outlets = len({r.outlet for r in records})
            for outlet in dict.fromkeys(r.outlet for r in records):
                inboxes[outlet] = Inbox(outlet)
                await engine.watch.add_source(
                    FolderSourceConfig(name=outlet, type="folder", path=outlet), inboxes[outlet])
            t0 = time.perf_counter()
            for poll_round in rounds(records, minutes):
                wrote = False
                for outlet, recs in poll_round.items():
                    # No guid: the Reddit post id is no identity the outlet gave, and its
                    # feed would carry one item per link; a link posted again with another
                    # title is that item changed in place.
                    inboxes[outlet].queued = [
                        Article(source=outlet, title=r.title, text=r.text,
                                url=r.url or f"urn:replay:{r.id}", published=r.when)
                        for r in recs]
                    report = await engine.watch.poll_source(outlet)
                    if report.error:
                        raise ReplayError(f"poll of {outlet} failed: {report.error}")
                    fig.polls += 1
                    fig.stored += report.new
                    fig.duplicates += report.seen - report.new - report.updated
                    fig.updated += report.updated
                    wrote = wrote or bool(report.alerts or report.updated)
                if wrote:
                    await engine.delivery.drain()
            await engine.delivery.drain()
            fig.seconds = time.perf_counter() - t0
        posts = [r for r in emu.requests_for(POST) if r.status == 200]
        patches = [r for r in emu.requests_for(PATCH) if r.status == 200]
        fig.posts, fig.patches = len(posts), len(patches)
        refused = [r for r in emu.requests if r.status is None or r.status >= 400]
        if refused:
            raise ReplayError(f"{len(refused)} request(s) refused by the emulator, first: "
                             f"{refused[0]!r}")
        if spec_available():
            problems = emu.validate_all()
            fig.spec_problems, fig.first_problems = len(problems), tuple(problems[:3])
        emulated = {m.id for m in emu.messages(hook.channel_id)}
    _from_store(db, fig, emulated)
    return fig


def _from_store(db: Path, fig: Figures, emulated: set[int]) -> None:
    """Stories, firing articles and messages per story, read back from the store; checked
    against what the emulator holds."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        q = con.execute
        (articles,) = q("SELECT count(*) FROM articles").fetchone()
        if articles != fig.stored:
            raise ReplayError(f"store holds {articles} articles, the polls reported {fig.stored}")
        (fig.fired,) = q("SELECT count(DISTINCT article_id) FROM matches").fetchone()
        outlets = {sid: len(json.loads(o)) for sid, o in q("SELECT id, outlets FROM stories")}
        fig.stories = len(outlets)
        fig.multi_outlet = sum(1 for n in outlets.values() if n >= 2)
        fired_by_story = Counter(sid for (sid,) in q(
            "SELECT a.story_id FROM articles a WHERE a.story_id IS NOT NULL AND EXISTS "
            "(SELECT 1 FROM matches m WHERE m.article_id = a.id)"))
        fig.fired_stories = len(fired_by_story)
        multi = {sid for sid in fired_by_story if outlets.get(sid, 0) >= 2}
        fig.fired_multi = len(multi)
        fig.fired_articles_in_multi = sum(fired_by_story[s] for s in multi)
        undelivered = q("SELECT kind, state, count(*) FROM outbox WHERE state != 'delivered' "
                        "GROUP BY kind, state").fetchall()
        if undelivered:
            raise ReplayError(f"outbox rows not delivered after the replay: {undelivered}")
        kinds = dict(q("SELECT kind, count(*) FROM outbox GROUP BY kind").fetchall())
        fig.alert_rows = kinds.get("alert", 0)
        fig.update_rows = kinds.get("update", 0)
        fig.notice_rows = kinds.get("notice", 0)
        (fig.changed_rows,) = q("SELECT count(*) FROM outbox WHERE kind = 'update' AND changed"
                                ).fetchone()
        # A story's messages are the distinct remote ids its delivered rows name: an edit names
        # the message it edited, a repost (or escalation) a new one.
        messages: dict[str, set[str]] = defaultdict(set)
        alert_ids: set[str] = set()
        for sid, kind, remote in q("SELECT story_id, kind, remote_id FROM outbox "
                                   "WHERE remote_id IS NOT NULL"):
            if sid is not None:
                messages[sid].add(remote)
            if kind == "update":
                continue
            alert_ids.add(remote)
        all_ids = {r for ids in messages.values() for r in ids} | alert_ids
        if {int(r) for r in all_ids} != emulated:
            raise ReplayError(f"the outbox names {len(all_ids)} messages, the emulator holds "
                             f"{len(emulated)}")
        fig.reposted = len(all_ids - alert_ids)
        if len(all_ids) != fig.posts:
            raise ReplayError(f"{fig.posts} POSTs created {len(all_ids)} distinct messages")
        fig.messages_multi = sum(len(messages[s]) for s in multi)
        fig.most_messages = max((len(m) for m in messages.values()), default=0)
    finally:
        con.close()


def show(figs: Sequence[Figures], limit: int | None, minutes: int) -> None:
    first = figs[0]
    print(f"== story replay: {first.articles} Reddit headlines 2021-22 in date order"
          f"{'' if limit is None else f' (--limit {limit})'}, a poll round per {minutes} min "
          f"of article time, {len(RULES)} broad rules on route {ROUTE!r}, window 48h, "
          "to the Discord emulator through a webhook")
    print(f"   {first.polls} polls of {first.outlets} outlets (one source per outlet)")
    rows: list[tuple[str, Callable[[Figures], object]]] = [
        ("articles replayed", lambda f: f.articles),
        ("  stored (new)", lambda f: f.stored),
        ("  dropped: already stored", lambda f: f.duplicates),
        ("  changed in place (updated)", lambda f: f.updated),
        ("articles that fired a rule", lambda f: f.fired),
        ("stories formed", lambda f: f.stories),
        ("  with 2+ outlets", lambda f: f.multi_outlet),
        ("stories that fired", lambda f: f.fired_stories),
        ("  with 2+ outlets", lambda f: f.fired_multi),
        ("  their firing articles", lambda f: f.fired_articles_in_multi),
        ("outbox rows: alerts", lambda f: f.alert_rows),
        ("outbox rows: updates", lambda f: f.update_rows),
        ("  of which: changed in place", lambda f: f.changed_rows),
        ("outbox rows: notices", lambda f: f.notice_rows),
        ("Discord messages posted (POST)", lambda f: f.posts),
        ("Discord edits (PATCH)", lambda f: f.patches),
        ("  updates that reposted", lambda f: f.reposted),
        ("messages per multi-outlet story", lambda f: f"{f.per_story:.3f}"),
        ("most messages for one story", lambda f: f.most_messages),
        ("firing articles per message", lambda f: f"{f.articles_per_message:.2f}"),
        ("wall time (s)", lambda f: f"{f.seconds:.1f}"),
        ("articles/s", lambda f: f"{f.rate:.0f}"),
        ("requests failing the spec", lambda f: "not checked (no spec)"
         if f.spec_problems is None else f.spec_problems),
    ]
    print(f"{'':34}" + "".join(f"{'stories = ' + f.mode:>20}" for f in figs))
    for label, get in rows:
        print(f"{label:34}" + "".join(f"{get(f)!s:>20}" for f in figs))
    for f in figs:
        for p in f.first_problems:
            print(f"   {f.mode}: {p}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=None,
                   help="replay only the first N headlines in date order (default: all)")
    p.add_argument("--poll-every", type=int, default=15, metavar="MINUTES",
                   help="minutes of article time per poll round (default 15)")
    p.add_argument("--modes", default="edit,off", help="route modes to run (default edit,off)")
    p.add_argument("--corpus", type=Path, default=CORPUS)
    p.add_argument("--json", action="store_true", help="one JSON object per run, per line")
    p.add_argument("--keep", type=Path, default=None, metavar="DIR",
                   help="keep each run's database in DIR (replay-MODE.db) to look into")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be at least 1")
    if args.poll_every < 1:
        p.error("--poll-every must be at least 1 minute")
    named = [m.strip() for m in args.modes.split(",") if m.strip()]
    modes: list[StoriesMode] = [m for m in MODES if m in named]
    bad = [m for m in named if m not in MODES]
    if bad or not modes:
        p.error(f"--modes takes edit, thread and off; not {', '.join(bad) or 'nothing'}")
    modes.sort(key=named.index)
    try:
        records = load(args.corpus, args.limit)
    except ReplayError as exc:
        raise SystemExit(str(exc)) from None
    figs = []
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        stale = [args.keep / f"replay-{m}.db" for m in modes]
        if any(db.exists() for db in stale):
            p.error(f"{args.keep} already holds a replay database; choose an empty folder")
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            where = args.keep if args.keep is not None else Path(tmp)
            try:
                figs.append(asyncio.run(replay(records, mode, args.poll_every, where)))
            except ReplayError as exc:
                raise SystemExit(f"replay with stories = {mode!r} failed: {exc}") from None
            if args.json:
                print(json.dumps(figs[-1].as_json()), flush=True)
    if not args.json:
        show(figs, args.limit, args.poll_every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
