"""``newswatch import``: a line whose id another stored article holds (other content, another
link) is imported under a new id, and its story is the one its content joins or starts, never
the story of the article that holds the id."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from tests.cli.test_cli import nw

CONFIG = """
[storage]
path = "nw.db"
"""

VOLCANO = {"id": "1", "title": "Volcano erupts in Iceland", "url": "https://a.example/1",
           "source": "a"}
BANK = {"id": "1", "title": "Central bank raises interest rates", "url": "https://b.example/2",
        "source": "b"}
FOOTBALL = {"id": "1", "title": "Football club wins cup final", "url": "https://c.example/3",
            "source": "c"}


def write_jsonl(path: Path, docs: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return path


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "config.toml").write_text(CONFIG)
    return tmp_path


def stories(db: Path) -> dict[str, tuple[str, str, int]]:
    """Each stored article's title → (its story, the story's outlets, its article count)."""
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT a.title, s.id, s.outlets, "
            "(SELECT count(*) FROM articles b WHERE b.story_id = s.id) "
            "FROM articles a JOIN stories s ON s.id = a.story_id").fetchall()
    return {title: (sid, outlets, n) for title, sid, outlets, n in rows}


@pytest.mark.parametrize("date", [None, "2025-03-01T12:00:00Z"])
def test_articles_renamed_for_an_id_clash_keep_stories_of_their_own(
        workdir: Path, date: str | None) -> None:
    """The story an article starts was named after the file's id, which the store then gave
    to no article of the line: the renamed bank and football articles were put into the
    stored volcano article's story (one story, three outlets), and the first import's story
    changed. Undated, or dated in the same second, two lines of one id named one story."""
    dated = {} if date is None else {"date": date}
    write_jsonl(workdir / "base.jsonl", [{**VOLCANO, **dated}])
    write_jsonl(workdir / "two.jsonl", [{**BANK, **dated}, {**FOOTBALL, **dated}])
    assert nw("import", "base.jsonl", "-c", "config.toml", cwd=workdir).returncode == 0
    before = stories(workdir / "nw.db")
    res = nw("import", "two.jsonl", "-c", "config.toml", cwd=workdir)
    assert res.returncode == 0, res.stderr
    assert len(re.findall(r"its id '1' is another stored article's \(other content, another "
                          r"link\): imported as \S+", res.stderr)) == 2, res.stderr
    after = stories(workdir / "nw.db")
    assert after[VOLCANO["title"]] == before[VOLCANO["title"]]  # the first import's, as it was
    assert after[VOLCANO["title"]][1:] == ('["a"]', 1)
    assert after[BANK["title"]][1:] == ('["b"]', 1)
    assert after[FOOTBALL["title"]][1:] == ('["c"]', 1)
    assert len({sid for sid, _, _ in after.values()}) == 3


async def test_lines_of_one_id_in_one_file_are_grouped_by_their_content(tmp_path: Path) -> None:
    """Two lines of one file under one id: the second was placed in the first's story by its
    name whatever it says; it is placed by its content now, and a copy of its event from
    another outlet joins it, under its new id. Imported again, nothing changes."""
    from watchers.config import parse_config
    from watchers.engine import open_engine

    cfg = parse_config({"storage": {"path": "nw.db"},
                        "rules": [{"name": "troops", "query": "troops"}]},
                       base_dir=tmp_path, watching=False)
    event = "Russian troops withdraw from the Kherson region after a long siege"
    lines = [
        {**VOLCANO, "date": "2025-03-01T10:00:00Z"},
        {"id": "1", "title": event, "text": event + ", Reuters reports.", "source": "reuters",
         "url": "https://reuters.example/1", "date": "2025-03-01T10:00:00Z"},
        {"id": "b1", "title": event, "text": event + ", the BBC has learnt.", "source": "bbc",
         "url": "https://bbc.example/1", "date": "2025-03-01T11:00:00Z"},
    ]
    history = write_jsonl(tmp_path / "h.jsonl", lines)
    renamed: list[tuple[int, str, str]] = []
    async with open_engine(cfg, start=False) as engine:
        summary = await engine.import_articles(
            history, on_renamed=lambda *r: renamed.append(r))
        assert (summary.imported, summary.bad) == (3, 0)
        ((number, wanted, new_id),) = renamed
        assert (number, wanted) == (2, "1")
        got = await engine.store.stories_of(["1", new_id, "b1"])
        assert got["1"].outlets == ("a",) and got["1"].articles == 1
        assert got[new_id].id == got["b1"].id != got["1"].id
        assert set(got[new_id].outlets) == {"reuters", "bbc"}
        again = await engine.import_articles(history)
        assert (again.imported, again.duplicates) == (0, 3)
        assert await engine.store.stories_of(["1", new_id, "b1"]) == got
