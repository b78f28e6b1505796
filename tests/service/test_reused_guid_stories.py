"""A feed that reuses one guid for every item: its items share an id (derived from the source
and the guid), which the store gives to the first and replaces for the others. Each item's
story is the one its content joins or starts: named after the shared id alone, every such item
was put into the first one's story, however unrelated. Through the real service and SQLite."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.service._harness import Fixed, folder, watch
from watchers.models import Article
from watchers.store import SqliteStore

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
TITLES = ["Volcano erupts in Iceland", "Central bank raises interest rates",
          "Football club wins cup final"]


@pytest.mark.parametrize("published", [None, T0], ids=["undated", "same-second"])
async def test_items_under_one_reused_guid_keep_stories_of_their_own(
        tmp_path: Path, published: datetime | None) -> None:
    items = [Article(source="wire", guid="item", url=f"https://wire.example/{n}", title=title,
                     text=f"{title}.", published=published,
                     fetched_at=T0 + timedelta(minutes=5))
             for n, title in enumerate(TITLES)]
    assert len({a.id for a in items}) == 1
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, rules=[], stories_mode=lambda route: "edit")
        await service.add_source(folder("wire", tmp_path), Fixed("wire", items[:2]))
        (first,) = await service.run_once()
        assert first.new == 2
        # a later poll brings the third: the live index holds the stories of the first two
        await service.add_source(folder("wire2", tmp_path), Fixed("wire", items[2:]))
        await service.run_once()
    with closing(sqlite3.connect(tmp_path / "nw.db")) as con:
        rows = con.execute(
            "SELECT a.title, s.id, s.outlets, "
            "(SELECT count(*) FROM articles b WHERE b.story_id = s.id) "
            "FROM articles a JOIN stories s ON s.id = a.story_id").fetchall()
    assert sorted(title for title, _, _, _ in rows) == sorted(TITLES)
    assert len({sid for _, sid, _, _ in rows}) == 3
    assert {(outlets, n) for _, _, outlets, n in rows} == {('["wire"]', 1)}
