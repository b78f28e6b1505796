"""Batched ingest (issue 12): a poll is written a few hundred articles per transaction, each
article whole (article, matches, alerts together); killed mid-poll, a restart stores what was
missing and doubles nothing; alerts keep their order and their cap across batches."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import watchers.importer as importer_module
import watchers.service as service_module
from tests.conftest import REPO
from tests.fakes.sinks import RecordingSink
from tests.service._harness import Fixed, deliver, folder, watch
from watchers.errors import StoreError
from watchers.models import Article
from watchers.rules import RuleSet
from watchers.rules import text as text_module
from watchers.rules.lookup import analysed_terms, index_terms, lookup_terms
from watchers.rules.matcher import Analysis
from watchers.store import SqliteStore
from watchers.store.open import open_store

CORPORA = REPO.parent / "shared" / "corpora" / "articles"


def items(n: int, *, source: str = "flood") -> list[Article]:
    return [Article(source=source, guid=str(i), title=f"Troops report {i:04d}", text="troops",
                    url=f"https://ex.org/{i}",
                    published=datetime(2022, 1, 1 + i // 1440, i // 60 % 24, i % 60, tzinfo=UTC))
            for i in range(n)]


async def test_a_poll_larger_than_a_batch_keeps_order_cap_and_dedupe(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_module, "INGEST_BATCH", 7)
    flood = items(40)
    # the same story again under another guid but the same link, inside the same poll
    repeat = Article(source="flood", guid="again", title="Troops report 0003", text="troops",
                     url="https://ex.org/3", published=flood[3].published)
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store)
        await service.add_source(folder("flood", tmp_path).model_copy(
            update={"max_alerts_per_poll": 12}), Fixed("flood", [*flood[::-1], repeat]))
        (report,) = await service.run_once()
        assert report.new == 40 and report.error is None
        sink = RecordingSink()
        await deliver(store, sink).drain()
        # the newest twelve, oldest first, across batch boundaries; then the summary
        assert [a.article.title for a in sink.alerts] == [
            f"Troops report {i:04d}" for i in range(28, 40)]
        ((_, summary),) = sink.notices
        assert "28 more matching article(s)" in summary
        assert (await store.rule_match_counts())["troops"] == 40
        # a second poll of the same items stores and alerts nothing
        (again,) = await service.run_once()
        assert again.new == 0 and again.alerts == 0


async def test_a_poll_cut_short_after_some_batches_still_names_every_capped_article(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The summary of the capped alerts was written after the last batch: a poll stopped
    between batches (a stop, a crash, a full disk) left the committed batches' articles
    stored, known at the next poll, and named in no message at all."""
    monkeypatch.setattr(service_module, "INGEST_BATCH", 7)
    flood = items(40)
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store)
        await service.add_source(folder("flood", tmp_path).model_copy(
            update={"max_alerts_per_poll": 12}), Fixed("flood", flood[::-1]))
        # The disk fills up as the third batch is written (a real error of the database).
        with sqlite3.connect(tmp_path / "nw.db") as db:
            db.execute("CREATE TRIGGER full BEFORE INSERT ON articles "
                       "WHEN NEW.title = 'Troops report 0014' "
                       "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
        with contextlib.suppress(StoreError):
            await service.run_once()
        assert await store.count_articles() == 14  # two batches committed
        with sqlite3.connect(tmp_path / "nw.db") as db:
            db.execute("DROP TRIGGER full")
        await service.resume_source("flood")
        (again,) = await service.run_once()
        assert again.new == 26
        sink = RecordingSink()
        await deliver(store, sink).drain()
        assert [a.article.title for a in sink.alerts] == [
            f"Troops report {i:04d}" for i in range(28, 40)]
        named = "\n".join(text for _, text in sink.notices)
        assert all(f"Troops report {i:04d}" in named for i in range(28)), named


async def test_batched_ingest_stores_what_one_by_one_stored(tmp_path: Path) -> None:
    """Dedupe between the articles of one poll is the store's, as it was article by article."""
    base = items(6, source="mixed")
    polled = [
        *base,
        base[1].model_copy(update={"guid": "other", "id": "x1"}),  # same content
        Article(source="mixed", guid="live-2", title="Another update", text="troops again",
                url=base[2].url),  # a live page: same link, own guid and title → distinct
        Article(source="mixed", guid="0", title="Rewritten", text="troops",
                url=base[0].url),  # same guid and link → the same story
    ]
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store)
        await service.add_source(folder("mixed", tmp_path), Fixed("mixed", polled))
        (report,) = await service.run_once()
        assert report.new == 7
        assert await store.count_articles() == 7
        titles = {a.title for a, _ in await store.recent(limit=20)}
        assert "Another update" in titles and "Rewritten" not in titles


@pytest.mark.skipif(text_module._untrack is None, reason="the C extension is not built")
async def test_what_a_poll_keeps_of_its_articles_stays_out_of_the_cyclic_collector(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A poll keeps each article's matches, words, signature and story link until the batch is
    written: left tracked, a poll of thousands set off full collections that walked the whole
    heap. None of them can be part of a cycle, so they are untracked; what is stored is as
    before."""
    kept: list[Any] = []
    analyse = service_module.WatchService._analyse

    def spy(self: Any, *args: Any) -> Any:
        out = analyse(self, *args)
        kept.extend(out)
        return out

    monkeypatch.setattr(service_module.WatchService, "_analyse", spy)
    signatures: list[Any] = []
    join = importer_module.join_story

    def joined(stories: Any, article: Article, sig: Any) -> Any:
        signatures.append(sig)
        return join(stories, article, sig)

    monkeypatch.setattr(service_module, "join_story", joined)
    polled = items(30)
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, stories_mode=lambda route: "edit")
        await service.add_source(folder("flood", tmp_path), Fixed("flood", polled))
        (report,) = await service.run_once()
        assert report.new == 30 and report.alerts > 0
        assert await store.count_articles() == 30
        assert await store.count_stories() == len({a.story.id for a in kept})
    assert len(kept) == 30 and len(signatures) == 30
    assert all(a.matches and a.words and a.story for a in kept)
    parts = [p for a in kept for p in (a, a.matches, a.words, a.story)]
    parts += [p for sig in signatures for p in (sig, sig.exemplars, *sig.exemplars)]
    assert not [p for p in parts if gc.is_tracked(p)]


def test_lookup_terms_are_the_index_terms() -> None:
    samples = ["", "Russia's troops", "Cyber-attacks on U.S. banks: 100,000 hit",
               "Zelenskyy visits Kyiv — café naïve Ⅻ", "l'armée d'Ukraine\u0301 et ﬁn"]
    if CORPORA.is_dir():
        for path in sorted(CORPORA.glob("*.jsonl")):
            with path.open(encoding="utf-8") as fh:
                for n, line in enumerate(fh):
                    if n % 25 == 0:
                        rec = json.loads(line)
                        samples.append(f"{rec.get('title') or ''}\n{rec.get('text') or ''}")
    rules = RuleSet.from_queries({"t": "troops OR russia~ OR /\\d+/"})
    for text in samples:
        title, _, body = text.partition("\n")
        assert lookup_terms(title, body) == index_terms(title, body), text[:80]
        # and from the tokens the matcher already made for its rules
        article = Article(title=title or "untitled", text=body)
        analysis = Analysis(article)
        rules.match_report(article, analysis=analysis)
        assert analysed_terms(analysis) == index_terms(article.title, body), text[:80]


# --------------------------------------------------------------------------- kill -9

DRIVER = """
import asyncio, sys
from pathlib import Path
from datetime import timedelta
import watchers.service as s
from watchers.config import FolderSourceConfig, RuleConfig
from watchers.rules.lookup import index_terms
from watchers.service import WatchService
from watchers.sources import SourceContext
from watchers.store import SqliteStore
from watchers.store.open import open_store
from watchers.store.postgres import PostgresStore

s.INGEST_BATCH = 50
# Paced, so the parent sees the poll half written and kills it between (or during) commits.
def paced(cls):
    record_many = cls.record_many

    async def paced_record_many(self, records, **kw):
        out = await record_many(self, records, **kw)
        await asyncio.sleep(0.03)
        return out

    cls.record_many = paced_record_many

paced(SqliteStore)
paced(PostgresStore)

async def main():
    store = await open_store(sys.argv[1], terms_of=index_terms)
    src = FolderSourceConfig(name="inbox", type="folder", path=sys.argv[2],
                             every=timedelta(seconds=1), settle=timedelta(0),
                             max_alerts_per_poll=100000)
    service = WatchService(store=store, context=SourceContext(fetcher=None, resolve=Path),
                           sources=[src], rules=[RuleConfig(name="troops", query="troops")])
    (report,) = await service.run_once()
    print("done", report.new, report.error, flush=True)
    await store.aclose()

asyncio.run(main())
"""

N = 1200

# Each stored article has its match and its alert (whole articles only); same SQL on both.
PARTIAL = ("SELECT count(*) FROM articles a WHERE NOT EXISTS (SELECT 1 FROM matches m "
           "WHERE m.article_id = a.id) OR NOT EXISTS (SELECT 1 FROM outbox o "
           "WHERE o.article_id = a.id)")
ALERT_TITLES = ("SELECT a.title FROM outbox o JOIN articles a ON a.id = o.article_id "
                "WHERE o.kind = 'alert' ORDER BY o.id")


class Db:
    """The driver's store as the test reads it beside (or after) the driver: an SQLite file
    through sqlite3, or a PostgreSQL database over one asyncpg connection."""

    def __init__(self, target: str | Path) -> None:
        self.target = target
        self._conn: Any = None

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of ``sql``; [] while the schema is not there yet."""
        if isinstance(self.target, Path):
            if not self.target.exists():
                return []
            try:
                with contextlib.closing(sqlite3.connect(self.target, timeout=30)) as con:
                    return list(con.execute(sql).fetchall())
            except sqlite3.OperationalError:  # schema not there yet
                return []
        import asyncpg  # type: ignore[import-untyped]

        if self._conn is None:
            self._conn = await asyncpg.connect(self.target, timeout=30)
        if not await self._conn.fetchval("SELECT to_regclass('outbox') IS NOT NULL"):
            return []
        return [tuple(r) for r in await self._conn.fetch(sql)]

    async def count(self) -> int:
        rows = await self.rows("SELECT count(*) FROM articles")
        return int(rows[0][0]) if rows else 0

    async def sound(self) -> str:
        """"ok", or what is wrong with the store after a kill."""
        if isinstance(self.target, Path):
            return str((await self.rows("PRAGMA integrity_check"))[0][0])
        try:  # the schema whole, and the killed writer's lock gone with its connection
            await (await open_store(self.target)).aclose()
        except StoreError as exc:
            return str(exc)
        return "ok"

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.close()


async def _run_and_kill(db: Db, inbox: Path, kill_after: int | None) -> int:
    """Run the driver; with ``kill_after``, SIGKILL it once more than that many articles are
    committed. Returns how many were committed when it ended."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", DRIVER, str(db.target), str(inbox), cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    deadline = time.monotonic() + 50
    try:
        if kill_after is not None:
            while time.monotonic() < deadline and proc.returncode is None:
                if await db.count() > kill_after:
                    proc.send_signal(signal.SIGKILL)
                    break
                await asyncio.sleep(0.005)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=55)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if kill_after is None:
        assert proc.returncode == 0, err.decode()
        assert out.decode().startswith("done"), out.decode() + err.decode()
    return await db.count()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.pg_crash)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Db]:
    """Where the driver stores: ``nw.db``, or a fresh PostgreSQL database (``make crash-pg``)."""
    target = (request.getfixturevalue("pg_database") if request.param == "postgres"
              else tmp_path / "nw.db")
    d = Db(target)
    try:
        yield d
    finally:
        await d.aclose()


@pytest.mark.timeout(120)
async def test_kill_9_mid_poll_loses_no_article_and_doubles_no_alert(
        tmp_path: Path, db: Db) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(N):
        (inbox / f"{i:05d}.txt").write_text(f"Troops report {i:05d}\nTroops moved, {i}.\n")
    stages = []
    for kill_after in (0, N // 3):
        stages.append(await _run_and_kill(db, inbox, kill_after))
        assert await db.sound() == "ok"
        assert (await db.rows(PARTIAL))[0][0] == 0
    final = await _run_and_kill(db, inbox, None)
    # the kills landed mid-poll (some batches committed, not all), and the last run completed it
    assert 0 < stages[0] < N and final == N, stages
    titles = [t for (t,) in await db.rows(ALERT_TITLES)]
    matches = (await db.rows("SELECT count(*) FROM matches"))[0][0]
    assert sorted(titles) == [f"Troops report {i:05d}" for i in range(N)]  # each alert once
    assert matches == N
