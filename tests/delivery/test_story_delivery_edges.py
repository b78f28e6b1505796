"""A story's updates as delivery hands them to a sink: in a burst of reports, each update that
another of its story follows is marked ``superseded`` (an edit may be skipped, the next one
shows the whole story), and only an update the route's readers will see supersedes. Through the
real watch service, delivery and SQLite file, with a sink that keeps what it was given."""

from __future__ import annotations

from collections.abc import Callable
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
          "Troops from Russia cross the border near Kharkiv"]
QUAKE = "Magnitude 7.8 earthquake strikes Turkey, hundreds dead"
RULES = [RuleConfig(name="troops", query="troops"),
         RuleConfig(name="quake", query="earthquake"),
         RuleConfig(name="armour", query="tanks", severity="critical")]


def art(outlet: str, title: str, minute: int) -> Article:
    return Article(source=outlet, guid=f"{outlet}-{minute}",
                   url=f"https://{outlet}.example/{minute}", title=title,
                   text=f"{title}. Officials confirmed it on the record.",
                   published=T0 + timedelta(minutes=minute))


async def run(tmp_path: Path, outlets: list[str], *polls: list[Article],
              label: Callable[[str, str], str | None] | None = None) -> EditingSink:
    """Each of ``polls`` polled (each outlet gives its own articles), then delivered."""
    clock = ManualClock(T0 + timedelta(hours=1))
    sink = EditingSink()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, rules=RULES, stories_mode=lambda r: "edit", clock=clock)
        sources = {name: Fixed(name, []) for name in outlets}
        for name, source in sources.items():
            await service.add_source(folder(name, tmp_path), source)
        delivery = deliver(store, sink, routes=lambda r: RouteConfig(target=1), clock=clock,
                           stories_mode=lambda r: "edit", known_routes=["alerts"],
                           source_label=label)
        for items in polls:
            for name, source in sources.items():
                source.items = [a for a in items if a.source == name]
            await service.run_once()
            await delivery.drain()
    return sink


async def test_each_update_of_a_burst_but_the_last_is_superseded(tmp_path: Path) -> None:
    outlets = ["ap", "dw", "npr", "bbc"]
    sink = await run(tmp_path, outlets, [art("ap", TITLES[0], 0)],
                     [art(o, TITLES[i], i) for i, o in enumerate(outlets[1:], 1)])
    assert [u.article.source for u in sink.updates] == ["dw", "npr", "bbc"]
    assert [u.superseded for u in sink.updates] == [True, True, False]


async def test_updates_of_separate_polls_or_stories_supersede_nothing(tmp_path: Path) -> None:
    sink = await run(tmp_path, ["ap", "dw", "npr", "wire"],
                     [art("ap", TITLES[0], 0), art("wire", QUAKE, 0)],
                     [art("dw", TITLES[1], 1)],
                     [art("npr", TITLES[2], 2), art("wire", f"{QUAKE}: rescue under way", 3)])
    assert [u.article.source for u in sink.updates] == ["dw", "npr", "wire"]
    assert not any(u.superseded for u in sink.updates)


async def test_an_update_the_readers_do_not_see_supersedes_nothing(tmp_path: Path) -> None:
    """The last report of the burst is of a feed the route's readers do not see: it updates
    nothing there, so the one before it must."""
    def label(route: str, source: str) -> str | None:
        return None if source == "hidden" else source

    sink = await run(tmp_path, ["ap", "dw", "hidden"], [art("ap", TITLES[0], 0)],
                     [art("dw", TITLES[1], 1), art("hidden", TITLES[2], 2)], label=label)
    assert [(u.article.source, u.superseded) for u in sink.updates] == [("dw", False)]


async def test_an_update_behind_an_escalation_supersedes_no_update_before_it(
        tmp_path: Path) -> None:
    """The escalation posts a message of its own, which the update after it edits: the one
    before it is still the first message's edit."""
    sink = await run(tmp_path, ["ap", "dw", "npr", "bbc"], [art("ap", TITLES[0], 0)],
                     [art("dw", TITLES[1], 1), art("npr", f"{TITLES[2]} with tanks", 2),
                      art("bbc", TITLES[3], 3)])
    assert [a.article.source for a in sink.alerts] == ["ap", "npr"]
    assert sink.alerts[1].escalated_from == "medium"
    assert [(u.article.source, u.message_id, u.superseded) for u in sink.updates] == [
        ("dw", "m1", False), ("bbc", "m2", False)]
