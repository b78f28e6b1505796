"""A feed item served again under the same guid and link: a rewrite with news updates the
stored article; the same item served empty (a feed's glitch) changes nothing stored."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


class Listed:
    """A source whose poll lists the same items every time."""

    def __init__(self, name: str, items: list[Article]) -> None:
        self.name = name
        self.items = items

    async def poll(self, cursor: Mapping[str, str]) -> Poll:
        return Poll(list(self.items))

    async def aclose(self) -> None:
        pass


@pytest.mark.parametrize("twin", ["guid and link", "guid", "link"])
async def test_two_items_of_one_feed_under_one_identity_do_not_replace_each_other(
        tmp_path: Path, twin: str, caplog: pytest.LogCaptureFixture) -> None:
    """One unchanged feed listing two items under one guid and link (different titles and
    text): the first poll stored the first, the second replaced it by the second ("updated"),
    the third put the first back, and so on at every poll, one of them always missing. The
    first is kept, the second named as skipped, and later polls change nothing."""
    # A link alone makes one article of items without guids (a live page's items, each with
    # a guid and title of its own, are distinct: see the test below).
    second = Article(source="wire", guid="g-1" if "guid" in twin else None,
                     url="https://wire.example/1" if "link" in twin else None,
                     title="Ports reopen after the storm", text="Ships left the harbour at dawn.",
                     published=NOW - timedelta(minutes=30))
    first = Article(source="wire", guid="g-1" if "guid" in twin else None,
                    url="https://wire.example/1" if "link" in twin else None, title=TITLE,
                    text=TEXT, published=NOW - timedelta(hours=1))
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, rules=[rule("troops", "troops OR ports")],
                        stories_mode=lambda route: "edit")
        await service.add_source(folder("wire", tmp_path), Listed("wire", [first, second]))
        reports = [(await service.run_once())[0] for _ in range(4)]
        assert [(r.new, r.updated, r.skipped) for r in reports] == [(1, 0, 1)] + [(0, 0, 1)] * 3
        ((stored, _),) = await store.recent(limit=5)
        assert (stored.title, stored.text) == (TITLE, TEXT)
        assert await store.count_articles() == 1
    # named when first left out, not at every poll of the unchanged feed
    named = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(named) == 1 and all(
        f"the same {'link' if 'link' in twin else 'guid'} as an earlier item of this poll"
        in m for m in named), named


async def test_items_of_one_feed_that_share_only_a_link_of_a_live_page_are_all_kept(
        tmp_path: Path) -> None:
    """A live page's items share the page's link, each with its own guid and title: distinct
    articles, kept (as the store keeps them)."""
    items = [Article(source="wire", guid=f"live-{i}", url="https://wire.example/live",
                     title=f"Live update {i}: troops near Kharkiv", text=f"Update {i}.",
                     published=NOW - timedelta(minutes=i)) for i in range(3)]
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, rules=[rule("troops", "troops")])
        await service.add_source(folder("wire", tmp_path), Listed("wire", items))
        (report,) = await service.run_once()
        assert (report.new, report.skipped) == (3, 0)
        (again,) = await service.run_once()
        assert (again.new, again.updated, again.skipped) == (0, 0, 0)


def test_only_one_sources_items_are_twins() -> None:
    """Another source's item under the same link is a copy, the store's to drop (it never
    replaces the stored one): left to the store, unnamed."""
    from watchers.store._shared import one_version_each

    a = Article(source="wire", url="https://wire.example/1", title=TITLE, text=TEXT)
    b = Article(source="agency", url="https://wire.example/1", title="Other", text="Other.")
    c = Article(source="wire", url="https://wire.example/1", title="Third", text="Third.")
    kept, twins = one_version_each([a, b, c])
    assert kept == [a, b]
    assert twins == ["item 'https://wire.example/1': the same link as an earlier item of this "
                     "poll, with other content (the first is kept)"]


async def test_an_item_left_out_is_named_when_it_first_is_and_again_after_a_poll_without_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A feed's item left out at every poll was named at every poll (every few minutes, all
    day), where a folder names each version of a file once."""
    first = Article(source="wire", guid="g-1", url="https://wire.example/1", title=TITLE,
                    text=TEXT, published=NOW - timedelta(hours=1))
    twin = Article(source="wire", guid="g-1", url="https://wire.example/1", title="Other",
                   text="Other text.", published=NOW - timedelta(hours=1))
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, rules=[rule("troops", "troops")])
        listed = Listed("wire", [first, twin])
        await service.add_source(folder("wire", tmp_path), listed)

        def named() -> int:
            return sum(1 for r in caplog.records if "source wire: skipped" in r.getMessage())

        for _ in range(3):
            (report,) = await service.run_once()
            assert report.skipped == 1
        assert named() == 1
        listed.items = [first]
        await service.run_once()
        listed.items = [first, twin]
        await service.run_once()
        assert named() == 2


def _twins_by_definition(articles: list[Article]) -> tuple[list[Article], list[str]]:
    """one_version_each as the store's rules say it, item against every earlier kept item
    (``same_link`` over the link's items, ``guid_links_agree`` over the guid's)."""
    from watchers.store._shared import _link_key, guid_links_agree, same_link

    kept: list[Article] = []
    twins: list[str] = []
    for article in articles:
        link = _link_key(article.url) if article.url else None
        earlier = None
        shared = "link"
        if link is not None:
            rows = [a for a in kept if a.source == article.source and a.url
                    and _link_key(a.url) == link]
            found = same_link(article, [(a.source, a.guid, a.title) for a in rows]) if rows \
                else None
            earlier = rows[found] if found is not None else None
        if earlier is None and article.guid:
            shared = "guid"
            earlier = next((a for a in kept if a.source == article.source
                            and a.guid == article.guid and guid_links_agree(
                                link, _link_key(a.url) if a.url else None)), None)
        if earlier is not None and earlier.content_hash != article.content_hash:
            ident = article.guid or article.url or article.title
            twins.append(f"item {ident[:80]!r}: the same {shared} as an earlier item of this "
                         "poll, with other content (the first is kept)")
            continue
        kept.append(article)
    return kept, twins  # (at most 12 items here: under the bound on notes)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["wire", "agency"]),
                          st.sampled_from([None, "", "g1", "g2"]),
                          st.sampled_from([None, "https://w.example/1", "https://w.example/2"]),
                          st.sampled_from(["Troops", "Ports", "Talks"]),
                          st.sampled_from(["a.", "b."])), max_size=12))
def test_a_polls_twins_are_what_the_stores_rules_say(
        items: list[tuple[str, str | None, str | None, str, str]]) -> None:
    from watchers.store._shared import one_version_each

    articles = [Article(source=src, guid=guid, url=url, title=title, text=text)
                for src, guid, url, title, text in items]
    assert one_version_each(articles) == _twins_by_definition(articles)


@pytest.mark.timeout(60)
def test_a_live_page_of_forty_thousand_items_is_sorted_out_at_once() -> None:
    """Each item was compared with every earlier one of its link: 8,000 items of a live page
    (one link, a guid and title each) took 13 s on the event loop; a 5 MiB feed holds
    40,000. Now a dict lookup an item (a generous timeout catches the quadratic form)."""
    from watchers.store._shared import one_version_each

    items = [Article(source="wire", guid=f"live-{i}", url="https://wire.example/live",
                     title=f"Update {i}", text="x") for i in range(40_000)]
    twins = [Article(source="wire", guid=f"twin-{i}", url="https://wire.example/t",
                     title="Same", text=f"version {i}") for i in range(40_000)]
    kept, named = one_version_each(items + twins)
    assert len(kept) == 40_001
    # named one by one up to a bound (40,000 log lines before), the rest in one note
    assert len(named) == 21 and named[-1] == "39,979 more items under an earlier item's identity"
    assert named[0] == ("item 'twin-1': the same link as an earlier item of this poll, with "
                        "other content (the first is kept)")


async def test_a_rewrite_alerts_a_rule_added_again_that_only_the_removed_one_had_matched(
        tmp_path: Path) -> None:
    """The removed rule's match of the stored version is not the new rule's: a rewrite it
    matches alerts for it, as for any rule the stored version did not fire (it did not)."""
    troops = rule("troops", "troops")
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        service = watch(store, rules=[troops], stories_mode=lambda route: "edit")
        served = Served("wire")
        await service.add_source(folder("wire", tmp_path), served)
        await store.put_rule(troops)
        served.item = item(TITLE, TEXT)
        (first,) = await service.run_once()
        assert first.alerts == 1
        assert await store.delete_rule("troops")
        desk = rule("troops", "troops", channel="desk")  # added again, posting elsewhere
        await store.put_rule(desk)
        service.set_rules([desk])
        served.item = item("Kremlin denies invasion plan as troops mass near Kharkiv",
                           "The Kremlin denied any plan to invade as satellite images showed "
                           "troops massing.")
        (again,) = await service.run_once()
        assert again.updated == 1
        assert [r.route for r in await store.alerts(kind="alert")] == ["alerts", "desk"]
