"""``newswatch sources import FILE.opml`` and ``newswatch sources export``: a per-entry report,
the exit statuses (0 nothing refused, 1 some refused, 2 not OPML), and export beside a running
newswatch."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from bot import cli
from tests.cli.test_cli import nw
from tests.test_opml import BILLION_LAUGHS, HOSTILE
from watchers.opml import parse_opml
from watchers.store import SqliteStore

CONFIG = """
[storage]
path = "nw.db"
[[sources]]
name = "bbc"
type = "feed"
url = "https://feeds.example.co.uk/news/rss.xml"
[[sources]]
name = "seeds"
type = "folder"
path = "seeds"
[[rules]]
name = "troops"
query = "troops"
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "config.toml").write_text(CONFIG)
    (tmp_path / "seeds").mkdir()
    (tmp_path / "hostile.opml").write_bytes(HOSTILE)
    return tmp_path


def stored(workdir: Path) -> list[str]:
    if not (workdir / "nw.db").exists():
        return []
    with closing(sqlite3.connect(workdir / "nw.db")) as con:
        return sorted(r[0] for r in con.execute("SELECT name FROM sources"))


def run(workdir: Path, *args: str) -> int:
    return cli.main(["sources", *args, "-c", str(workdir / "config.toml")])


def test_import_reports_every_entry_and_exits_1_when_some_were_refused(
        workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(workdir, "import", str(workdir / "hostile.opml")) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 13  # one per feed of the file
    assert lines[0].startswith("skipped  line 3") and "already watched as source 'bbc'" in lines[0]
    assert lines[1].startswith("added    line 4     reuters ")
    assert lines[3].startswith("added    line 6     bbc-2 ") and "name 'bbc' was taken" in lines[3]
    assert "refused  line 7     Script: refused URL: scheme 'javascript'" in out
    assert "refused  line 10    Intranet: refused URL: 10.1.2.3 is a private address" in out
    assert "13 feed(s): 2 added, 2 skipped, 9 refused" in err
    assert stored(workdir) == ["bbc-2", "reuters"]

    # again: the added ones are now skipped; the bad ones are refused again
    assert run(workdir, "import", str(workdir / "hostile.opml")) == 1
    assert "0 added, 4 skipped, 9 refused" in capsys.readouterr().err
    assert stored(workdir) == ["bbc-2", "reuters"]


def test_import_exits_0_when_nothing_was_refused(workdir: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    good = workdir / "good.opml"
    good.write_bytes(b'<opml version="2.0"><body>'
                     b'<outline text="A" xmlUrl="https://a.example/feed"/>'
                     b'<outline text="B" xmlUrl="https://feeds.example.co.uk/news/rss.xml"/>'
                     b"</body></opml>")
    assert run(workdir, "import", str(good), "--every", "30m") == 0
    assert "1 added, 1 skipped, 0 refused" in capsys.readouterr().err
    assert stored(workdir) == ["a"]

    async def every() -> timedelta:
        store = await SqliteStore.open(workdir / "nw.db", readonly=True)
        try:
            (source,) = await store.list_sources()
        finally:
            await store.aclose()
        return source.every

    assert asyncio.run(every()) == timedelta(minutes=30)


@pytest.mark.parametrize(("content", "said"), [
    (BILLION_LAUGHS, "declares a DTD"),
    (b"name,url\nx,https://x.example\n", "not XML"),
    (b'<opml version="2.0"><body/></opml>', "no feeds"),
])
def test_a_file_that_is_not_usable_opml_exits_2_and_adds_nothing(
        workdir: Path, capsys: pytest.CaptureFixture[str], content: bytes, said: str) -> None:
    bad = workdir / "bad.opml"
    bad.write_bytes(content)
    assert run(workdir, "import", str(bad)) == 2
    out, err = capsys.readouterr()
    assert out == "" and said in err and str(bad) in err
    assert stored(workdir) == []


def test_missing_file_and_bad_every_exit_2(workdir: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert run(workdir, "import", str(workdir / "nope.opml")) == 2
    assert "nope.opml: no such file" in capsys.readouterr().err
    assert run(workdir, "import", str(workdir / "hostile.opml"), "--every", "10s") == 2
    assert "at most once a minute" in capsys.readouterr().err
    assert run(workdir, "import", str(workdir / "hostile.opml"), "--every", "often") == 2
    assert stored(workdir) == []


def test_export_writes_config_and_imported_feeds_but_not_folders(
        workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(workdir, "export") == 0  # before any database exists: the file's feeds
    doc = parse_opml(capsys.readouterr().out.encode())
    assert [(e.title, e.url) for e in doc.entries] == [
        ("bbc", "https://feeds.example.co.uk/news/rss.xml")]
    run(workdir, "import", str(workdir / "hostile.opml"))
    capsys.readouterr()
    target = workdir / "out.opml"
    assert run(workdir, "export", "-o", str(target)) == 0
    assert "3 feed(s)" in capsys.readouterr().err
    assert [e.title for e in parse_opml(target.read_bytes()).entries] == [
        "bbc", "bbc-2", "reuters"]


def test_export_of_a_database_made_but_not_used_yet_writes_the_files_feeds(
        workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A database made for newswatch and not used yet (PostgreSQL's createdb, an empty SQLite
    file) was refused as "an empty database, not a newswatch one yet", where no database at
    all exported the file's feeds."""
    sqlite3.connect(workdir / "nw.db").close()  # an empty database
    assert (workdir / "nw.db").exists()
    assert run(workdir, "export") == 0, capsys.readouterr().err
    doc = parse_opml(capsys.readouterr().out.encode())
    assert [(e.title, e.url) for e in doc.entries] == [
        ("bbc", "https://feeds.example.co.uk/news/rss.xml")]


def test_export_and_import_carry_a_feeds_outlet(workdir: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A feed's configured ``outlet`` was lost on export, and an imported feed came back
    counting as the site of its URL: it goes as an ``outlet`` attribute, and back."""
    config = workdir / "config.toml"
    config.write_text(config.read_text().replace(
        'url = "https://feeds.example.co.uk/news/rss.xml"\n',
        'url = "https://feeds.example.co.uk/news/rss.xml"\noutlet = "BBC"\n'))
    assert run(workdir, "export") == 0
    exported = capsys.readouterr().out
    assert [(e.title, e.outlet) for e in parse_opml(exported.encode()).entries] == [
        ("bbc", "BBC")]
    (workdir / "mirror.opml").write_text(exported.replace(
        "feeds.example.co.uk/news", "mirror.example/bbc").replace('"bbc"', '"bbc mirror"'))
    assert run(workdir, "import", str(workdir / "mirror.opml")) == 0
    with closing(sqlite3.connect(workdir / "nw.db")) as con:
        (model,) = con.execute("SELECT model FROM sources WHERE name = 'bbc-mirror'").fetchone()
    assert '"outlet":"BBC"' in model.replace(" ", "")


def test_export_works_beside_a_running_newswatch_and_import_refuses(workdir: Path) -> None:
    async def holding() -> None:
        async with await SqliteStore.open(workdir / "nw.db"):
            exported = nw("sources", "export", "-c", "config.toml", cwd=workdir)
            assert exported.returncode == 0, exported.stderr
            assert [e.title for e in parse_opml(exported.stdout.encode()).entries] == ["bbc"]
            imported = nw("sources", "import", "hostile.opml", "-c", "config.toml", cwd=workdir)
            assert imported.returncode == 1
            assert "another newswatch process" in imported.stderr
            assert "Traceback" not in imported.stderr

    asyncio.run(holding())
    assert stored(workdir) == []


def test_export_never_overwrites_the_store_the_config_or_another_kind_of_file(
        workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(workdir, "import", str(workdir / "hostile.opml"))  # creates the store
    keep = workdir / "notes.txt"
    keep.write_text("mine")
    # any XML passed for OPML: its data was written over
    (workdir / "data.xml").write_text('<?xml version="1.0"?><data>precious</data>')
    # an OPML file (as an earlier export wrote it, or with a comment first) is replaced
    (workdir / "old.opml").write_text('<?xml version="1.0"?>\n<!-- mine -->\n<opml version="2.0">'
                                      '<head/><body/></opml>')
    assert run(workdir, "export", "-o", str(workdir / "old.opml")) == 0
    assert "reuters" in (workdir / "old.opml").read_text()
    # XML whose root is not <opml>, though "<opml" is in it: it was written over
    (workdir / "style.xsl").write_text('<?xml version="1.0"?><xsl:stylesheet version="1.0">'
                                       '<opml version="2.0"><body/></opml></xsl:stylesheet>')
    (workdir / "said.xml").write_text('<?xml version="1.0"?><!-- not <opml> --><rss/>')
    (workdir / "near.xml").write_text("<data><opmlish/></data>")
    for target in ("nw.db", "config.toml", "notes.txt", "data.xml", "style.xsl", "said.xml",
                   "near.xml"):
        before = (workdir / target).read_bytes()
        capsys.readouterr()
        assert run(workdir, "export", "-o", str(workdir / target)) == 2
        assert "not overwritten" in capsys.readouterr().err
        assert (workdir / target).read_bytes() == before
    assert run(workdir, "export", "-o", str(workdir)) == 2
    assert "is a folder" in capsys.readouterr().err
    # The system refusing the write is no mistake in the arguments: exit 1, as documented.
    assert run(workdir, "export", "-o", str(workdir / "no" / "such.opml")) == 1
    assert "cannot write" in capsys.readouterr().err
    assert stored(workdir) == ["bbc-2", "reuters"]
