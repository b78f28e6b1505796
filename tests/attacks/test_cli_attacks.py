"""``newswatch stories``, ``trend`` and ``sources import`` given what they should refuse: each ends
with one clear message naming what was wrong (exit status 2, or 1 for a store not made yet), never
a traceback, and the database they read is left as it was."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.cli.test_cli import nw
from watchers.opml import MAX_BYTES, MAX_ENTRIES

CONFIG = '[storage]\npath = "nw.db"\n[[rules]]\nname = "troops"\nquery = "troops"\n'
WHEN = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
OPML_HEAD = '<?xml version="1.0"?>\n<opml version="2.0"><head><title>t</title></head><body>\n'
OPML_TAIL = "</body></opml>\n"


def article(i: int, text: str = "", date: str | None = None) -> str:
    return json.dumps({"id": f"a{i}", "title": f"Troops dispatch {i}", "source": f"outlet{i}",
                       "text": text or f"Troops and talks, dispatch number {i}.",
                       "date": date or WHEN.isoformat()})


def outline(i: int, title: str = "") -> str:
    return (f'<outline text="{title or f"Feed {i}"}" type="rss" '
            f'xmlUrl="https://feeds.example.org/{i}.xml"/>\n')


def counts(db: Path) -> tuple[int, int, str]:
    """Articles, sources, and SQLite's own verdict on the file."""
    with closing(sqlite3.connect(db)) as conn:
        return (int(conn.execute("SELECT count(*) FROM articles").fetchone()[0]),
                int(conn.execute("SELECT count(*) FROM sources").fetchone()[0]),
                str(conn.execute("PRAGMA integrity_check").fetchone()[0]))


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("attacked")
    (folder / "config.toml").write_text(CONFIG)
    (folder / "five.jsonl").write_text("".join(article(i) + "\n" for i in range(5)))
    res = nw("import", "five.jsonl", cwd=folder)
    assert res.returncode == 0, res.stderr
    return folder


@pytest.fixture
def store(shared: Path) -> Iterator[Path]:
    """The shared folder; after the test its database must hold what it held before."""
    before = counts(shared / "nw.db")
    assert before == (5, 0, "ok")
    yield shared
    assert counts(shared / "nw.db") == before


def no_traceback(res: object) -> None:
    assert "Traceback" not in getattr(res, "stderr", ""), getattr(res, "stderr", "")


# --------------------------------------------------------------------------- stories


def test_stories_takes_a_ten_megabyte_line(store: Path) -> None:
    huge = "Troops near the border. " * 450_000
    (store / "big.jsonl").write_text(article(1, huge) + "\n" + article(2) + "\n")
    res = nw("stories", "big.jsonl", "--json", cwd=store)
    assert res.returncode == 0, res.stderr
    ids = [i for line in res.stdout.splitlines() for i in json.loads(line)["ids"]]
    assert sorted(ids) == ["a1", "a2"]


# Lines of bytes that are not UTF-8, 50 of them: the first 20 are named, then how many more.
BINARY = b"".join(bytes([0xFF, 0xFE, 0x41 + i % 26, 0x80]) * 25 + b"\n" for i in range(50))


@pytest.mark.parametrize(("content", "expected"), [
    (b"[1, 2]\n", ["bad.jsonl:1: expected a JSON object, got a list",
                   "bad.jsonl: 1 bad line; nothing clustered"]),
    (article(1, date="the day after tomorrow").encode() + b"\n",
     ["bad.jsonl:1: 'date' is not an ISO 8601 date: 'the day after tomorrow'"]),
    (BINARY, ["bad.jsonl:1: not UTF-8", "bad.jsonl:20: not UTF-8", "… and 30 more bad lines",
              "bad.jsonl: 50 bad lines; nothing clustered"]),
])
def test_stories_names_each_bad_line_and_prints_nothing(store: Path, content: bytes,
                                                        expected: list[str]) -> None:
    (store / "bad.jsonl").write_bytes(content)
    res = nw("stories", "bad.jsonl", cwd=store)
    assert res.returncode == 2, res.stderr
    no_traceback(res)
    for message in expected:
        assert message in res.stderr, res.stderr
    assert "bad.jsonl:21:" not in res.stderr
    assert res.stdout == ""


def test_stories_of_an_empty_file_and_of_a_missing_one(store: Path) -> None:
    (store / "empty.jsonl").write_text("")
    empty = nw("stories", "empty.jsonl", cwd=store)
    assert empty.returncode == 0, empty.stderr
    assert "0 stories from 0 articles" in empty.stdout
    missing = nw("stories", "nowhere.jsonl", cwd=store)
    assert missing.returncode == 2
    assert "nowhere.jsonl: no such file" in missing.stderr
    no_traceback(missing)


# --------------------------------------------------------------------------- trend


def test_trend_takes_a_query_of_the_longest_length_and_refuses_one_more(store: Path) -> None:
    longest = "troops OR " * 1999
    longest += "x" * (20_000 - len(longest))
    ok = nw("trend", longest, "--since", "3d", cwd=store)
    assert ok.returncode == 0, ok.stderr
    assert "5 matches" in ok.stderr, ok.stderr
    over = nw("trend", longest + "x", cwd=store)
    assert over.returncode == 2
    assert "query longer than 20000 characters" in over.stderr
    assert len(over.stderr) < 1000  # shown around the problem, not whole
    no_traceback(over)


@pytest.mark.parametrize(("args", "expected"), [
    (["--since", "0s"], "--since: a duration must be at least 1ms"),
    (["--since", "1000d"], "--since: 1000d is out of range; use 1h to 90d"),
    (["--until", "garbage"], "--until: 'garbage' is not an ISO 8601 date"),
])
def test_trend_names_a_bad_period(store: Path, args: list[str], expected: str) -> None:
    res = nw("trend", "troops", *args, cwd=store)
    assert res.returncode == 2
    assert expected in res.stderr, res.stderr
    assert res.stdout == ""
    no_traceback(res)


def test_trend_without_a_database_says_so_and_makes_none(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(CONFIG)
    res = nw("trend", "troops", cwd=tmp_path)
    assert res.returncode == 1
    assert f"no database at {tmp_path / 'nw.db'} yet" in res.stderr, res.stderr
    no_traceback(res)
    assert not (tmp_path / "nw.db").exists()


# --------------------------------------------------------------------------- sources import


def test_import_of_one_feed_more_than_the_cap_adds_none(store: Path) -> None:
    body = "".join(outline(i) for i in range(MAX_ENTRIES + 1))
    (store / "many.opml").write_text(OPML_HEAD + body + OPML_TAIL)
    res = nw("sources", "import", "many.opml", cwd=store)
    assert res.returncode == 2
    assert "it lists more than 1,000 feeds; import at most 1,000 at once" in res.stderr
    no_traceback(res)


def test_import_of_a_file_over_the_size_cap_is_refused_before_parsing(store: Path) -> None:
    padded = outline(0, title="x" * 6000)
    copies = MAX_BYTES // len(padded) + 10  # under the feed cap, over the size cap
    assert copies < MAX_ENTRIES
    (store / "huge.opml").write_text(OPML_HEAD + padded * copies + OPML_TAIL)
    res = nw("sources", "import", "huge.opml", cwd=store)
    assert res.returncode == 2
    assert "an OPML import takes at most 5 MiB" in res.stderr, res.stderr
    no_traceback(res)


def test_import_of_a_json_file_says_it_is_not_xml(store: Path) -> None:
    (store / "feeds.json").write_text(json.dumps({"feeds": [{"url": "https://a.example/rss"}]}))
    res = nw("sources", "import", "feeds.json", cwd=store)
    assert res.returncode == 2
    assert "feeds.json: not XML" in res.stderr, res.stderr
    no_traceback(res)
