"""The per-poll alert cap (``max_alerts_per_poll``, 25) counts alert messages: a story's
articles on a route that tells stories are one message (the others edit it or are lines in its
thread, and ping nobody). Counted each, 25 more reports of a known story took the whole cap,
and a new story's critical alert, older in the poll, was listed as not posted; 30 reports of
one new story listed five of its own as not posted. Through the real service, delivery and
SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.fakes.sinks import EditingSink
from tests.service._harness import Fixed, deliver, folder, watch
from watchers.config import RouteConfig, RuleConfig
from watchers.models import Article
from watchers.schedule import ManualClock
from watchers.store import SqliteStore

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
TITLES = ["Russian troops cross the border near Kharkiv",
          "Russian troops cross border near Kharkiv, officials say",
          "Russian troops crossed the border near Kharkiv overnight",
          "Troops from Russia cross the border near Kharkiv",
          "Russian troops cross Ukrainian border near Kharkiv"]
RULES = [RuleConfig(name="troops", query="troops"),
         RuleConfig(name="quake", query="earthquake", severity="critical")]


def art(outlet: str, guid: str, title: str, when: datetime, text: str | None = None) -> Article:
    return Article(source=outlet, guid=guid, url=f"https://{outlet}.example/{guid}",
                   title=title, text=text or f"{title}. Officials confirmed.", published=when)


class _Pipeline:
    """Fixed sources of ``outlets``, the watch service and delivery on one SQLite file."""

    def __init__(self, store: SqliteStore, sink: EditingSink, clock: ManualClock) -> None:
        self.store, self.sink, self.clock = store, sink, clock

    async def start(self, tmp_path: Path, rules: list[RuleConfig], outlets: Iterable[str]
                    ) -> None:
        self.service = watch(self.store, rules=rules, stories_mode=lambda r: "edit",
                             clock=self.clock)
        self.sources = {name: Fixed(name, []) for name in outlets}
        for name, source in self.sources.items():
            await self.service.add_source(folder(name, tmp_path), source)
        self.delivery = deliver(self.store, self.sink, routes=lambda r: RouteConfig(target=1),
                                clock=self.clock, stories_mode=lambda r: "edit",
                                known_routes=["alerts"])

    async def poll(self, items: list[Article]) -> None:
        """One poll in which each source gives its own of ``items``, then delivery."""
        for name, source in self.sources.items():
            source.items = [a for a in items if a.source == name]
        await self.service.run_once()
        await self.delivery.drain()


@asynccontextmanager
async def pipeline(tmp_path: Path, clock: ManualClock, rules: list[RuleConfig],
                   outlets: Iterable[str]) -> AsyncIterator[_Pipeline]:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        p = _Pipeline(store, EditingSink(), clock)
        await p.start(tmp_path, rules, outlets)
        yield p


async def polls(tmp_path: Path, *batches: list[Article]) -> EditingSink:
    clock = ManualClock(T0)
    async with pipeline(tmp_path, clock, RULES, ("ap", "wire")) as p:
        for batch in batches:
            await p.poll(batch)
            clock.set(clock.now() + timedelta(minutes=30))
    return p.sink


async def test_reports_of_a_known_story_leave_a_new_storys_alert_its_place(
        tmp_path: Path) -> None:
    quake = art("wire", "q", "Magnitude 7.8 earthquake strikes Turkey, hundreds dead",
                T0 + timedelta(minutes=1))
    more = [art("wire", f"w{i}", f"{TITLES[i % 5]} - update {i}",
                T0 + timedelta(minutes=2, seconds=i), text=f"Report number {i}.")
            for i in range(25)]
    sink = await polls(tmp_path, [art("ap", "1", TITLES[0], T0)], [quake, *more])
    assert [a.article.title for a in sink.alerts] == [TITLES[0], quake.title]
    assert len(sink.updates) == 25
    assert not sink.notices


async def test_thirty_reports_of_one_new_story_are_one_alert_and_no_overflow(
        tmp_path: Path) -> None:
    items = [art("wire", f"w{i}", f"{TITLES[i % 5]} - update {i}", T0 + timedelta(seconds=i),
                 text=f"Report number {i} from correspondent {i * 7919 % 1000003}.")
             for i in range(30)]
    sink = await polls(tmp_path, items)
    assert len(sink.alerts) == 1 and len(sink.updates) == 29
    assert not sink.notices


async def test_one_sites_two_section_feeds_do_not_corroborate_each_other(
        tmp_path: Path) -> None:
    """The same article (same link, same words) in two of one site's section feeds counted as
    two outlets, and an alert waiting for ``min_sources = 2`` posted on one report."""
    url = "https://www.bbc.co.uk/news/world-europe-1234"
    async with pipeline(tmp_path, ManualClock(T0),
                        [RuleConfig(name="troops", query="troops", min_sources=2)],
                        ("bbc-world", "bbc-europe", "dw")) as p:
        for name in ("bbc-world", "bbc-europe"):
            await p.poll([Article(source=name, guid="bbc-1234", url=url, title=TITLES[0],
                                  text=f"{TITLES[0]}. Officials confirmed.", published=T0)])
        assert p.sink.alerts == []
        assert {r.state for r in await p.store.alerts()} == {"waiting"}
        # another outlet's word-for-word copy, at its own link, is one
        await p.poll([art("dw", "x", TITLES[0], T0, text=f"{TITLES[0]}. Officials confirmed.")])
    (posted,) = p.sink.alerts
    assert posted.story is not None and sorted(posted.story.outlets) == ["bbc-world", "dw"]


async def test_an_item_dated_ahead_of_the_clock_ends_no_live_story_early(
        tmp_path: Path) -> None:
    """An item dated 20 hours after it was read (a feed's wrong time zone; believed, within a
    day) moved the live stories' horizon ahead: a story still inside its 48-hour window was
    dropped, and its next report started another story and posted a second alert."""
    clock = ManualClock(T0)

    def read(outlet: str, guid: str, title: str, dated: datetime) -> Article:
        return art(outlet, guid, title, dated).model_copy(update={"fetched_at": clock.now()})

    async with pipeline(tmp_path, clock, [RuleConfig(name="troops", query="troops"),
                                          RuleConfig(name="floods", query="flooding")],
                        ("ap", "bbc", "badtz")) as p:
        await p.poll([read("ap", "1", TITLES[0], T0)])
        clock.set(T0 + timedelta(hours=30))
        await p.poll([read("badtz", "x", "Flooding closes highways across northern California",
                           T0 + timedelta(hours=50))])
        await p.poll([read("bbc", "1", TITLES[1], T0 + timedelta(hours=30))])
    assert [a.article.source for a in p.sink.alerts] == ["ap", "badtz"]
    assert [u.article.source for u in p.sink.updates] == ["bbc"]
