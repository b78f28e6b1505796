"""A feed item served again under the same guid and link: a rewrite with news updates the
stored article; the same item served empty (a feed's glitch) changes nothing stored."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fakes.sinks import RecordingSink
from tests.service._harness import deliver, folder, rule, watch
from watchers.models import Article
from watchers.search import search
from watchers.service import materially_changed
from watchers.sources.base import Poll
from watchers.store import SqliteStore

NOW = datetime.now(UTC)
TITLE = "Russian troops mass near Kharkiv border"
TEXT = "Satellite images show troops and armour massing near Kharkiv, officials said."


class Served:
    """A source whose single item the test replaces between polls."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.item: Article | None = None

    async def poll(self, cursor: Mapping[str, str]) -> Poll:
        return Poll([self.item] if self.item is not None else [])

    async def aclose(self) -> None:
        pass


def item(title: str, text: str) -> Article:
    return Article(source="wire", guid="g-1", url="https://wire.example/1", title=title,
                   text=text, published=NOW - timedelta(hours=1))


@pytest.mark.parametrize(("title", "text"), [("", ""), ("", TEXT), (TITLE, ""), ("  ", " \n")])
async def test_an_item_served_again_empty_keeps_what_was_stored(
        tmp_path: Path, title: str, text: str) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, stories_mode=lambda route: "edit")
        served = Served("wire")
        await service.add_source(folder("wire", tmp_path), served)
        served.item = item(TITLE, TEXT)
        (first,) = await service.run_once()
        assert first.new == 1
        served.item = item(title, text)
        (again,) = await service.run_once()
        assert again.error is None and again.updated == 0 and again.new == 0
        ((stored, _),) = await store.recent(limit=5)
        assert (stored.title, stored.text) == (TITLE, TEXT)
        assert [h.article.id for h in await search(store, "kharkiv")] == [stored.id]


async def test_an_item_rewritten_with_news_still_updates(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, stories_mode=lambda route: "edit")
        served = Served("wire")
        await service.add_source(folder("wire", tmp_path), served)
        served.item = item(TITLE, TEXT)
        await service.run_once()
        served.item = item("Kremlin denies invasion plan as troops mass near Kharkiv",
                           "The Kremlin denied any plan to invade as satellite images showed "
                           "troops massing.")
        (again,) = await service.run_once()
        assert again.updated == 1
        ((stored, _),) = await store.recent(limit=5)
        assert stored.title.startswith("Kremlin denies")


async def test_two_feeds_with_one_link_and_their_own_summaries_update_nothing(
        tmp_path: Path) -> None:
    """Two section feeds of one outlet list one article with different summaries: each poll
    took the other's version for a change, flipped the stored text and posted "updated"."""
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, stories_mode=lambda route: "thread")
        world, europe = Served("world"), Served("europe")
        await service.add_source(folder("world", tmp_path), world)
        await service.add_source(folder("europe", tmp_path), europe)
        world.item = item(TITLE, TEXT).model_copy(update={"source": "world", "id": ""})
        europe.item = item(TITLE, "Officials in Brussels called an emergency meeting as "
                                  "columns were seen moving west.").model_copy(
            update={"source": "europe", "id": ""})
        texts = set()
        for _ in range(3):
            reports = await service.run_once()
            assert sum(r.updated for r in reports) == 0
            ((stored, _),) = await store.recent(limit=5)
            texts.add(stored.text)
        assert len(texts) == 1  # the first version stored stays
        assert [r.kind for r in await store.alerts()] == ["alert"]


async def test_a_placeholder_rewritten_into_news_alerts(tmp_path: Path) -> None:
    """A live-blog item first said "Breaking news: details to follow" and matched nothing;
    rewritten under the same guid it fires a rule, and alerted nobody: the new version was
    stored, never matched. Now it alerts as a new article would, once."""
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, rules=[rule("troops", "troops")],
                        stories_mode=lambda route: "edit")
        served = Served("wire")
        await service.add_source(folder("wire", tmp_path), served)
        served.item = item("Breaking news", "Details to follow.")
        (first,) = await service.run_once()
        assert first.new == 1 and first.alerts == 0
        served.item = item(TITLE, TEXT)
        (second,) = await service.run_once()
        assert second.updated == 1
        ((stored, _),) = await store.recent(limit=5)
        (alert,) = await store.alerts(kind="alert")
        assert (alert.article_id, alert.route, alert.state) == (stored.id, "alerts", "pending")
        assert [m.rule for m in await store.matches_for(stored.id)] == ["troops"]
        served.item = item(TITLE, TEXT + " Updated at noon with more on the troops.")
        await service.run_once()  # changed again: the story's message is updated, no alert
        assert len(await store.alerts(kind="alert")) == 1
        sink = RecordingSink()
        await deliver(store, sink, stories_mode=lambda route: "edit").drain()
        assert [a.article.title for a in sink.alerts] == [TITLE]


def test_losing_a_field_is_not_a_material_change() -> None:
    old = item(TITLE, TEXT)
    assert not materially_changed(old, item("", TEXT))
    assert not materially_changed(old, item(TITLE, ""))
    assert materially_changed(old, item("Another headline entirely", TEXT))
    # an item that never had text may gain some, and one without a title may gain one
    assert materially_changed(item(TITLE, ""), item(TITLE, TEXT))
    assert materially_changed(item("", TEXT), item(TITLE, TEXT))
