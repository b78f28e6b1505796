"""Corroboration counts outlets, not feeds, through the real engine: two feeds the config says
are one outlet (``outlet = "BBC"``), served over HTTP on 127.0.0.1, report a story and a rule
with ``min_sources = 2`` keeps waiting — whether the second feed words it its own way or copies
the first word for word — until a feed of another outlet reports it; the alert then posts once,
naming every source. On SQLite and on PostgreSQL (a throwaway cluster from tests/pg.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.embeds import delivery_embed, story_line
from tests.bot._stories import REPORTS
from tests.fakes.feed_server import FeedServer, Route
from tests.fakes.sinks import RecordingSink
from tests.service.test_identity import rss
from watchers.config import Config, parse_config
from watchers.engine import Engine, open_engine

NOW = datetime.now(UTC).replace(microsecond=0)
FEEDS = ("bbc-world", "bbc-europe", "dw")


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "postgres":
        return {"url": request.getfixturevalue("pg_database")}
    return {"path": "nw.db"}


def feed(server: FeedServer, name: str, path: str | None = None, **more: Any
         ) -> dict[str, Any]:
    """A feed source polling ``server``'s ``/<path>`` (its name's by default)."""
    return {"name": name, "type": "feed", "url": server.url(f"/{path or name}"), "every": "1h",
            **more}


def config(tmp_path: Path, storage: dict[str, str], sources: list[dict[str, Any]]) -> Config:
    """These sources, with a rule that waits for two outlets."""
    return parse_config({
        "storage": storage,
        "channels": {"alerts": 1},
        "stories": {"window": "48h"},
        "fetch": {"allow_private": ["127.0.0.1/32"]},
        "sources": sources,
        "rules": [{"name": "troops", "query": "troops", "min_sources": 2}],
    }, base_dir=tmp_path)


@asynccontextmanager
async def watching(tmp_path: Path, storage: dict[str, str], server: FeedServer,
                   outlets: tuple[str, str] = ("BBC", "bbc")
                   ) -> AsyncIterator[tuple[Engine, RecordingSink]]:
    """The engine polling the BBC's two feeds (one outlet, as the config says with
    ``outlets``) and DW's, with a rule that waits for two outlets; each feed's first poll (its
    baseline) done."""
    for name in FEEDS:
        server.set(f"/{name}", Route(body=rss([])))
    cfg = config(tmp_path, storage, [feed(server, "bbc-world", outlet=outlets[0]),
                                     feed(server, "bbc-europe", outlet=outlets[1]),
                                     feed(server, "dw")])
    sink = RecordingSink()
    async with open_engine(cfg, start=False, default_sink=sink) as engine:
        await engine.run_once()  # every feed's baseline (empty)
        yield engine, sink


def report(server: FeedServer, feed: str, wording: str, minutes: int, *,
           link: str | None = None) -> None:
    title, text = REPORTS[wording]
    server.set(f"/{feed}", Route(body=rss([(
        f"{feed}-1", link or f"https://{feed}.example/troops", title, text,
        NOW - timedelta(hours=1) + timedelta(minutes=minutes))])))


async def test_two_feeds_of_one_outlet_keep_the_alert_waiting_until_another_outlet_reports(
        tmp_path: Path, storage: dict[str, str]) -> None:
    async with FeedServer() as server, watching(tmp_path, storage, server) as (engine, sink):
        report(server, "bbc-world", "bbc", 0)
        await engine.run_once()
        assert await engine.store.alert_counts() == {"waiting": 1}
        report(server, "bbc-europe", "npr", 10)  # the BBC again, in other words
        await engine.run_once()
        assert sink.alerts == [], "the BBC's second feed corroborated the BBC"
        assert await engine.store.alert_counts() == {"waiting": 1}
        # /alerts status counts what the wait counts: one outlet of two, though two sources.
        status = await engine.delivery_status()
        (waiting,) = status.waiting
        assert waiting.story_id is not None
        view = status.stories[(waiting.route, waiting.story_id)]
        assert (len(view.outlets), view.counted) == (2, 1)
        shown = delivery_embed(status, str).to_dict()
        (field,) = [f for f in shown.get("fields", []) if "1/2 outlets" in f["value"]]
        assert "2/2" not in field["value"]
        report(server, "dw", "dw", 20)
        await engine.run_once()
        assert await engine.store.alert_counts() == {"delivered": 1}
    (posted,) = sink.alerts
    assert posted.story is not None
    assert sorted(posted.story.outlets) == sorted(FEEDS)  # every source is still named
    # ... and the message counts the outlets: three sources, two of them the BBC's.
    assert posted.story.counted == 2
    line = story_line(posted.story, own=posted.article.source) or ""
    assert "2 outlets" in line and "3 outlets" not in line, line


async def test_a_word_for_word_copy_from_the_outlets_other_feed_does_not_corroborate(
        tmp_path: Path, storage: dict[str, str]) -> None:
    async with FeedServer() as server, watching(tmp_path, storage, server) as (engine, sink):
        report(server, "bbc-world", "bbc", 0)
        await engine.run_once()
        report(server, "bbc-europe", "bbc", 0, link="https://bbc-europe.example/copy")
        await engine.run_once()
        story = (await engine.store.live_stories(timedelta(hours=48)))[0]
        assert story.outlets == ("bbc-world", "bbc-europe")  # the copy was counted in
        assert sink.alerts == [] and await engine.store.alert_counts() == {"waiting": 1}
        report(server, "dw", "bbc", 0, link="https://dw.example/copy")
        await engine.run_once()
        assert await engine.store.alert_counts() == {"delivered": 1}
    assert len(sink.alerts) == 1


# One outlet's name as two keyboards write it: composed and decomposed accents (a file edited
# on macOS), full-width letters (an East Asian input method), a host in Unicode and in ASCII.
@pytest.mark.parametrize("outlets", [
    ("Süddeutsche Zeitung", "Su\u0308ddeutsche Zeitung"),
    ("ＢＢＣ", "BBC"),
    ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
], ids=["nfc-nfd", "full-width", "idn"])
async def test_one_outlets_name_in_two_unicode_forms_is_one_outlet(
        tmp_path: Path, storage: dict[str, str], outlets: tuple[str, str]) -> None:
    async with FeedServer() as server, watching(tmp_path, storage, server, outlets) as (
            engine, sink):
        report(server, "bbc-world", "bbc", 0)
        await engine.run_once()
        report(server, "bbc-europe", "npr", 10)
        await engine.run_once()
        assert sink.alerts == [], "one outlet's two feeds corroborated each other"
        assert await engine.store.alert_counts() == {"waiting": 1}


@pytest.mark.parametrize("change", ["renamed", "removed"])
async def test_a_feed_renamed_or_removed_while_the_alert_waits_still_counts_as_the_bbc(
        tmp_path: Path, storage: dict[str, str], change: str) -> None:
    """The BBC's two feeds reported a story whose alert waits for two outlets; bbc-europe is
    then renamed bbc-eu (or taken out of the config) and newswatch restarted. The Europe feed
    was then known by no outlet and counted as one of its own: /alerts status said 2/2 and the
    BBC's next report posted the alert, which only the BBC had reported."""
    async with FeedServer() as server:
        async with watching(tmp_path, storage, server) as (engine, sink):
            report(server, "bbc-world", "bbc", 0)
            await engine.run_once()
            report(server, "bbc-europe", "npr", 10)
            await engine.run_once()
            assert await engine.store.alert_counts() == {"waiting": 1}
        sources = [feed(server, "bbc-world", outlet="BBC"), feed(server, "dw")]
        if change == "renamed":
            sources.append(feed(server, "bbc-eu", "bbc-europe", outlet="bbc"))
        async with open_engine(config(tmp_path, storage, sources), start=False,
                               default_sink=sink) as engine:
            status = await engine.delivery_status()
            (waiting,) = status.waiting
            assert waiting.story_id is not None
            assert status.stories[(waiting.route, waiting.story_id)].counted == 1
            # the BBC's world feed reports the story again, in other words
            title, text = REPORTS["dw"]
            server.set("/bbc-world", Route(body=rss([
                ("bbc-world-1", "https://bbc-world.example/troops", *REPORTS["bbc"],
                 NOW - timedelta(hours=1)),
                ("bbc-world-2", "https://bbc-world.example/troops-2", title, text,
                 NOW - timedelta(hours=1) + timedelta(minutes=20))])))
            await engine.run_once()
            story = await engine.store.get_story(waiting.story_id)
            assert story is not None and story.articles == 3  # it joined the story
            assert sink.alerts == [], "the BBC corroborated the BBC after a restart"
            assert await engine.store.alert_counts() == {"waiting": 1}
            report(server, "dw", "dw", 30)
            await engine.run_once()
            assert await engine.store.alert_counts() == {"delivered": 1}
    (posted,) = sink.alerts
    assert posted.story is not None and posted.story.counted == 2


async def test_a_folder_source_renamed_does_not_corroborate_its_own_files(
        tmp_path: Path, storage: dict[str, str]) -> None:
    """A folder source renamed in the config (same folder) reads its files again: each was a
    word-for-word copy "from another outlet" (a folder's outlet is its name), so one file
    released a wait for two outlets, and with one outlet needed every live story was updated
    ("also reported by desk-main"). The same file, under the same guid, is the same item."""
    (tmp_path / "desk").mkdir()
    (tmp_path / "desk" / "a.txt").write_text(
        "Troops gather near the border\n\nThousands of troops gathered near the border on "
        "Monday, officials said.\n")

    def config(name: str) -> Config:
        return parse_config({
            "storage": storage, "channels": {"alerts": 1},
            "sources": [{"name": name, "type": "folder", "path": "desk", "settle": "0s"}],
            "rules": [{"name": "troops", "query": "troops", "min_sources": 2}]},
            base_dir=tmp_path)

    sink = RecordingSink()
    async with open_engine(config("desk"), start=False, default_sink=sink) as engine:
        await engine.run_once()
        assert (await engine.store.alert_counts()).get("waiting") == 1
    async with open_engine(config("desk-main"), start=False, default_sink=sink) as engine:
        await engine.run_once()
        assert (await engine.store.alert_counts()).get("waiting") == 1
        assert await engine.store.count_articles() == 1
        ((article, _),) = await engine.store.recent(limit=10)
        story = (await engine.store.stories_of([article.id]))[article.id]
        assert story.outlets == ("desk",), story.outlets
    assert sink.alerts == []


async def test_two_outlets_syndicating_a_wire_story_under_its_guid_corroborate_it(
        tmp_path: Path, storage: dict[str, str]) -> None:
    """Two outlets' feeds carry a wire story word for word under the wire's own guid
    ("urn:publicid:ap.org:…"), each at its own link: two outlets reporting it. Only a folder's
    guid (the file's path and content) makes a copy the same item (see the test above)."""
    title, text = REPORTS["bbc"]
    wire = "urn:publicid:ap.org:abc123"
    async with FeedServer() as server, watching(tmp_path, storage, server) as (engine, _):
        server.set("/bbc-world", Route(body=rss([(
            wire, "https://bbc.example/troops", title, text, NOW - timedelta(hours=1))])))
        await engine.run_once()
        assert await engine.store.alert_counts() == {"waiting": 1}
        server.set("/dw", Route(body=rss([(
            wire, "https://dw.example/troops", title, text, NOW - timedelta(minutes=50))])))
        await engine.run_once()
        (story,) = await engine.store.live_stories(timedelta(hours=48))
        assert story.outlets == ("bbc-world", "dw")
        assert await engine.store.alert_counts() == {"delivered": 1}
