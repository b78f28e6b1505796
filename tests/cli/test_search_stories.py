"""``newswatch search`` and stories: ``--json`` keeps one object per article and names its
story (null for an article stored without one); the listing puts a story's
results together under its first. The database is built by watching real feeds over HTTP on
127.0.0.1 (the watch path groups articles into stories), then searched as a user does."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.cli.test_cli import nw
from tests.fakes.feed_server import FeedServer, Route
from tests.service.test_identity import rss
from watchers.config import load_config
from watchers.engine import open_engine

NOW = datetime.now(UTC).replace(microsecond=0)
REPORTS = {
    "dw": "Russian troops mass near Ukraine border, satellite images show",
    "npr": "Satellite images show Russian troops massing near Ukraine's border",
    "bbc": "Russia masses troops near Ukraine border, new satellite images show",
}
LEAD = "Satellite images show Russian troops and tanks massing near Yelnya, close to Ukraine."
HISTORY = {"id": "h1", "title": "Troops parade in Paris for Bastille Day",
           "text": "Soldiers and troops marched down the Champs-Elysees.",
           "date": "2021-07-14T10:00:00Z", "source": "archive"}


def config_text(server: FeedServer, outlets: dict[str, str] | None = None) -> str:
    """A feed source per outlet of REPORTS (with an ``outlet`` key where ``outlets`` gives
    one), and a rule on "troops"."""
    outlets = outlets or {}
    return ('[storage]\npath = "nw.db"\n[fetch]\nallow_private = ["127.0.0.1/32"]\n'
            + "".join(f'[[sources]]\nname = "{o}"\ntype = "feed"\nurl = "{server.url("/" + o)}"'
                      '\nevery = "1h"\nbackfill = 5\n'
                      + (f'outlet = "{outlets[o]}"\n' if o in outlets else "")
                      for o in REPORTS)
            + '[[rules]]\nname = "troops"\nquery = "troops"\n')


async def build(tmp_path: Path, outlets: dict[str, str] | None = None) -> None:
    async with FeedServer() as server:
        for outlet in REPORTS:
            server.set(f"/{outlet}", Route(body=rss([])))
        (tmp_path / "config.toml").write_text(config_text(server, outlets))
        cfg = load_config(tmp_path / "config.toml")
        async with open_engine(cfg, start=False) as engine:
            await engine.run_once()  # every feed's baseline (empty)
            for minutes, (outlet, title) in enumerate(REPORTS.items()):
                server.set(f"/{outlet}", Route(body=rss([(
                    f"{outlet}-1", f"https://{outlet}.example/1", title, LEAD,
                    NOW - timedelta(hours=2) + timedelta(minutes=20 * minutes))])))
                await engine.run_once()
            (tmp_path / "history.jsonl").write_text(json.dumps(HISTORY) + "\n")
            await engine.import_articles(tmp_path / "history.jsonl")


def test_search_json_names_each_articles_story_and_the_listing_groups_them(tmp_path: Path
                                                                           ) -> None:
    asyncio.run(build(tmp_path))
    res = nw("search", "troops", "--json", "--limit", "20", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(rows) == 4 and all("story" in r for r in rows)  # one object per article
    by_source = {r["source"]: r["story"] for r in rows}
    story = by_source["dw"]
    assert isinstance(story, str) and story.startswith("s")
    assert by_source["npr"] == by_source["bbc"] == story
    assert by_source["archive"] != story  # another event: a story of its own

    # an article stored before stories existed has none
    with closing(sqlite3.connect(tmp_path / "nw.db")) as db, db:
        db.execute("UPDATE articles SET story_id = NULL WHERE source = 'archive'")
    res = nw("search", "troops", "--json", "--limit", "20", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    by_source = {json.loads(line)["source"]: json.loads(line)["story"]
                 for line in res.stdout.splitlines()}
    assert by_source == {"archive": None, "dw": story, "npr": story, "bbc": story}

    listing = nw("search", "troops", "--limit", "20", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "4 result(s)" in listing.stderr
    lines = listing.stdout.splitlines()
    # newest first: bbc stands for the story, npr and dw follow it indented, then its summary
    assert "bbc" in lines[0] and not lines[0].startswith(" ")
    assert [line.split()[2] for line in lines[1:3]] == ["npr", "dw"]
    assert all(line.startswith("  ") for line in lines[1:3])
    assert lines[3] == f"  = story {story}: 3 outlet(s), 3 article(s): dw, npr, bbc"
    assert "archive" in lines[4] and len(lines) == 5  # a story of one article stands alone


def test_the_listing_counts_a_storys_outlets_as_its_alerts_do(tmp_path: Path) -> None:
    """The story's line counts outlets as its alert's wait and message do: npr and bbc, which
    the config says are one outlet, count once (it said "3 outlet(s)", counting sources),
    and still once after bbc is renamed in the config (it reported as the BBC)."""
    # (an outlet named unlike either source: renamed, "bbc" alone would count as "bbc")
    asyncio.run(build(tmp_path, {"npr": "British Broadcasting", "bbc": "British Broadcasting"}))
    listing = nw("search", "troops", "--limit", "20", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    (line,) = [x for x in listing.stdout.splitlines() if x.startswith("  = story")]
    assert line.endswith(": 2 outlet(s), 3 article(s): dw, npr, bbc"), line
    config = tmp_path / "config.toml"
    config.write_text(config.read_text().replace('name = "bbc"', 'name = "bbc-news"'))
    listing = nw("search", "troops", "--limit", "20", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert ": 2 outlet(s), 3 article(s): dw, npr, bbc" in listing.stdout, listing.stdout


def test_the_listing_counts_a_source_added_at_run_time_by_its_outlet(tmp_path: Path) -> None:
    """A story stored before stories kept their sources' outlets is counted by the outlets
    the sources have now: a source added at run time (`/sources add`) with an `outlet` too,
    as the running engine names it (the listing knew only the config file's, so the BBC's
    run-time feed was an outlet of its own: "3 outlet(s)")."""
    from watchers.store import SqliteStore

    same = "British Broadcasting"
    asyncio.run(build(tmp_path, {"npr": same, "bbc": same}))
    config = tmp_path / "config.toml"
    (bbc,) = [s for s in load_config(config).sources if s.name == "bbc"]
    blocks = config.read_text().split("[[sources]]")
    config.write_text("[[sources]]".join(b for b in blocks if 'name = "bbc"' not in b))

    async def move() -> None:
        store = await SqliteStore.open(tmp_path / "nw.db")
        try:
            await store.put_source(bbc)  # as /sources add keeps it
        finally:
            await store.aclose()

    asyncio.run(move())
    with closing(sqlite3.connect(tmp_path / "nw.db")) as con, con:
        con.execute("UPDATE stories SET source_outlets = '{}'")  # stored before schema 16
    listing = nw("search", "troops", "--limit", "20", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert ": 2 outlet(s), 3 article(s): dw, npr, bbc" in listing.stdout, listing.stdout
