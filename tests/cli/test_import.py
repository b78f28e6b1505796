"""``newswatch import FILE.jsonl``: history goes into the store matched but never alerted, bad
lines are named by number and skipped, progress is reported, and a running newswatch keeps the
database to itself."""

from __future__ import annotations

import asyncio
import bz2
import gzip
import hashlib
import json
import lzma
import os
import re
import signal
import sqlite3
import subprocess
import time
import unicodedata
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bot import cli
from tests.cli.test_cli import EXE, nw
from watchers.importer import BadLine, ImportProgress, import_file, parse_line
from watchers.models import Article, checked_article, content_fingerprint
from watchers.rules import Rule, RuleSet
from watchers.rules.lookup import index_terms
from watchers.store import SqliteStore

CONFIG = """
[storage]
path = "nw.db"
[[rules]]
name = "troops"
query = "troops OR soldiers"
[[rules]]
name = "markets"
query = "shares"
channel = "business"
"""

GOOD = [
    {"id": "h1", "title": "Troops gather at the border", "text": "Troops gathered overnight.",
     "url": "https://ex.org/1", "date": "2022-01-05T10:00:00Z", "source": "archive"},
    {"id": "h2", "title": "Shares rise", "text": "Shares rose in London.", "date": "2022-01-06",
     "source": "archive"},
    {"id": "h3", "title": "Weather", "text": "Rain.", "source": "archive"},
]


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "config.toml").write_text(CONFIG)
    return tmp_path


def test_import_stores_matches_and_reports_bad_lines_by_number(workdir: Path) -> None:
    lines = [
        json.dumps(GOOD[0]),
        "{not json",                                              # 2
        json.dumps(GOOD[1]),
        json.dumps({"id": "x", "text": "no title here"}),         # 4
        "",                                                       # blank: skipped, not bad
        json.dumps({"title": "When?", "date": "last Tuesday"}),   # 6
        json.dumps(GOOD[2]),
        json.dumps(["a", "list"]),                                # 8
        json.dumps(GOOD[0]),                                      # a duplicate of line 1
    ]
    history = write_jsonl(workdir / "history.jsonl", lines)
    r = nw("import", str(history), "-c", "config.toml", cwd=workdir)
    assert r.returncode == 1, r.stderr  # some lines were bad
    err = r.stderr
    assert "history.jsonl:2: invalid JSON" in err
    assert "history.jsonl:4: missing 'title'" in err
    assert "history.jsonl:6: 'date' is not an ISO 8601 date: 'last Tuesday'" in err
    assert "history.jsonl:8: expected a JSON object" in err
    for good in (1, 3, 5, 7, 9):
        assert f"history.jsonl:{good}:" not in err
    assert "9 lines · imported 3 · duplicates 1 · bad 4" in err
    with closing(sqlite3.connect(workdir / "nw.db")) as con:
        assert con.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0  # no alert
        assert sorted(con.execute("SELECT article_id, rule FROM matches")) == [
            ("h1", "troops"), ("h2", "markets")]
        assert con.execute("SELECT published FROM articles WHERE id = 'h2'").fetchone()[0] \
            .startswith("2022-01-06T00:00:00")
        # history's matches count at the articles' dates, not as a burst now (surges, trends)
        assert sorted(con.execute("SELECT article_id, substr(matched_at, 1, 19) FROM matches")) \
            == [("h1", "2022-01-05T10:00:00"), ("h2", "2022-01-06T00:00:00")]
    found = nw("search", "troops", "-c", "config.toml", "--json", cwd=workdir)
    assert found.returncode == 0, found.stderr
    (hit,) = [json.loads(line) for line in found.stdout.splitlines()]
    assert hit["id"] == "h1" and hit["source"] == "archive"
    assert hit["published"].startswith("2022-01-05T10:00:00")


def test_importing_again_counts_duplicates_and_succeeds(workdir: Path) -> None:
    history = write_jsonl(workdir / "h.jsonl", [json.dumps(g) for g in GOOD])
    first = nw("import", "h.jsonl", "-c", "config.toml", cwd=workdir)
    assert first.returncode == 0, first.stderr
    assert "imported 3 · duplicates 0 · bad 0" in first.stderr
    again = nw("import", str(history), "-c", "config.toml", cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert "imported 0 · duplicates 3 · bad 0" in again.stderr


def test_a_byte_order_mark_at_the_start_is_read_past(workdir: Path) -> None:
    """Windows tools write UTF-8 with a byte order mark: line 1 was refused as bad."""
    history = write_jsonl(workdir / "h.jsonl", [json.dumps(g) for g in GOOD])
    history.write_bytes(b"\xef\xbb\xbf" + history.read_bytes())
    res = nw("import", "h.jsonl", "-c", "config.toml", cwd=workdir)
    assert res.returncode == 0, res.stderr
    assert "imported 3 · duplicates 0 · bad 0" in res.stderr


def test_a_line_whose_id_another_article_holds_is_named_not_counted_a_duplicate(
        workdir: Path) -> None:
    """Two different articles under one id: the second was counted as a duplicate and lost
    without a word. It is a bad line now, named with the article it clashes with; a true
    duplicate (the same article again) is still a duplicate."""
    lines = [json.dumps({"id": "42", "title": "Troops cross the border",
                         "text": "Tanks near Kharkiv", "date": "2022-02-24T04:00:00Z"}),
             json.dumps({"id": "42", "title": "Grain deal signed in Istanbul",
                         "text": "Black Sea exports", "date": "2022-07-22T15:00:00Z"}),
             json.dumps({"id": "42", "title": "Troops cross the border",
                         "text": "Tanks near Kharkiv", "date": "2022-02-24T04:00:00Z"})]
    write_jsonl(workdir / "h.jsonl", lines)
    res = nw("import", "h.jsonl", "-c", "config.toml", cwd=workdir)
    assert res.returncode == 1, res.stderr
    assert ("h.jsonl:2: its id is another stored article's ('Troops cross the border'), "
            "with other content: not imported") in res.stderr
    assert "3 lines · imported 1 · duplicates 1 · bad 1" in res.stderr


def test_import_refuses_while_another_process_writes(workdir: Path) -> None:
    history = write_jsonl(workdir / "h.jsonl", [json.dumps(GOOD[0])])

    async def holding() -> None:
        async with await SqliteStore.open(workdir / "nw.db"):
            r = nw("import", str(history), "-c", "config.toml", cwd=workdir)
            assert r.returncode == 1
            assert "another newswatch process" in r.stderr and "stop it first" in r.stderr
            assert "Traceback" not in r.stderr

    asyncio.run(holding())
    with closing(sqlite3.connect(workdir / "nw.db")) as con:
        assert con.execute("SELECT count(*) FROM articles").fetchone()[0] == 0


def test_import_of_a_missing_file_says_so(workdir: Path) -> None:
    r = nw("import", "nope.jsonl", "-c", "config.toml", cwd=workdir)
    assert r.returncode == 1 and "nope.jsonl: no such file" in r.stderr


@pytest.mark.parametrize("command", ["import", "stories"])
def test_a_file_name_cannot_forge_a_line_of_output(
        workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        command: str) -> None:
    """A file named "evil\\nnewswatch: all good.jsonl" was printed as is: its second half read
    as a message of its own. Escapes and bidi overrides in a name drove the terminal."""
    monkeypatch.chdir(workdir)
    name = "evil\nnewswatch: all good\x1b[2J\u202e.jsonl"
    write_jsonl(workdir / name, [json.dumps(GOOD[0]), "oops"])
    args = [command, name, *(["-c", "config.toml"] if command == "import" else [])]
    assert cli.main(args) != 0
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines and all(line.startswith(("newswatch: evil newswatch: all good", "  ",
                                          "evil newswatch: all good")) for line in lines), lines
    assert "\x1b" not in err and "\u202e" not in err
    assert cli.main([command, "missing\nnewswatch: ok.jsonl", *args[2:]]) != 0
    assert capsys.readouterr().err.splitlines() == [
        "newswatch: missing newswatch: ok.jsonl: no such file"]


@pytest.mark.parametrize("command", ["import", "stories"])
def test_a_loop_of_links_is_named_as_such_not_as_missing(
        workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        command: str) -> None:
    monkeypatch.chdir(workdir)
    (workdir / "loop1").symlink_to("loop2")
    (workdir / "loop2").symlink_to("loop1")
    assert cli.main([command, "loop1", *(["-c", "config.toml"] if command == "import"
                                         else [])]) != 0
    assert capsys.readouterr().err.splitlines() == [
        "newswatch: loop1: Too many levels of symbolic links"]


def test_progress_lines_when_stderr_is_not_a_terminal(
        workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(workdir)
    monkeypatch.setattr(cli, "PROGRESS_EVERY_S", 0.0)  # a line after every batch
    write_jsonl(workdir / "h.jsonl", [json.dumps(g) for g in GOOD])
    assert cli.main(["import", "h.jsonl", "-c", "config.toml"]) == 0
    err = capsys.readouterr().err
    progress = [line for line in err.splitlines() if line.startswith("newswatch: import ")]
    assert progress == ["newswatch: import 100%: 3 lines · imported 3 · duplicates 0 · bad 0 · "
                        + progress[0].rsplit("· ", 1)[1]]
    assert "\r" not in err  # no bar drawn into a file


async def test_progress_after_each_batch_adds_up(tmp_path: Path) -> None:
    lines = [json.dumps({**GOOD[0], "id": f"h{i}", "title": f"Troops {i}"}) for i in range(10)]
    lines[4] = "oops"
    history = write_jsonl(tmp_path / "h.jsonl", lines)
    seen: list[ImportProgress] = []
    bad: list[tuple[int, str]] = []
    ruleset = RuleSet([Rule(name="troops", query="troops")])
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        summary = await import_file(store, history, ruleset=ruleset, terms_of=index_terms,
                                    on_progress=seen.append,
                                    on_bad_line=lambda n, why: bad.append((n, why)), batch=3)
        assert await store.count_articles() == 9
        assert (await store.rule_match_counts())["troops"] == 9
    assert [p.lines for p in seen] == [3, 6, 9, 10]
    assert [p.imported for p in seen] == [3, 5, 8, 9]
    assert seen[-1].bytes_read == seen[-1].total_bytes == history.stat().st_size
    assert bad == [(5, "invalid JSON at column 1: Expecting value")]
    assert (summary.lines, summary.imported, summary.duplicates, summary.bad) == (10, 9, 0, 1)


@pytest.mark.parametrize(("line", "reason"), [
    (b'{"title": 5}', "'title' must be a non-empty string"),
    (b'{"title": "  "}', "'title' must be a non-empty string"),
    (b'{"title": ""}', "'title' is empty"),  # it said "missing"
    # stored as an empty title
    (b'{"title": "\\u200b"}', "'title' holds only invisible characters"),
    (b'{"title": "\\u00ad\\u2060 \\ufeff"}', "'title' holds only invisible characters"),
    (b'{"title": "\\u0000"}', "'title' holds only invisible characters"),
    # stored as the title, and a right-to-left override turned what was shown after it around
    (b'{"title": "\\u202e"}', "'title' holds only invisible characters"),
    (b'{"title": "\\u200e\\u2066 \\u061c"}', "'title' holds only invisible characters"),
    (b'{"title": "\\u3164\\u2800\\u034f\\ufe0f"}', "'title' holds only invisible characters"),
    (b'{"title": "\\u0001\\u007f\\udb40\\udc01"}', "'title' holds only invisible characters"),
    (b'{"title": "x", "url": 3}', "'url' must be a string, not a number"),
    # indexed whole: PostgreSQL refused the row (over 2,704 bytes) at every run of the import
    (b'{"title": "x", "id": "' + b"i" * 1001 + b'"}', "'id' is 1,001 bytes long; at most 1,000"),
    (b'{"title": "x", "id": "' + "\u0436".encode() * 501 + b'"}',
     "'id' is 1,002 bytes long; at most 1,000"),
    (b'{"title": "x", "source": "' + b"s" * 201 + b'"}',
     "'source' is 201 bytes long; at most 200"),
    # a number too long for int() was kept as its digits, and passed for a string
    (b'{"title": ' + b"7" * 4001 + b'}', "'title' must be a non-empty string"),
    (b'{"title": "x", "source": ' + b"7" * 4001 + b'}', "'source' must be a string, not a number"),
    (b'{"title": "x", "date": ' + b"7" * 4001 + b'}',
     "'date' must be an ISO 8601 string, not a number"),
    # the last of two was kept, the first lost without a word
    (b'{"id": "d2", "id": "d3", "title": "x y z"}', "'id' appears twice in the object"),
    (b'{"title": "a", "text": "b", "title": "c"}', "'title' appears twice in the object"),
    # (an object inside the line may repeat any key: not the line's fields)
    (b'{"id": "n1", "meta": {"id": 1, "id": 2}, "title": "t", "id": "n2"}',
     "'id' appears twice in the object"),
    (b'{"title": "x", "date": 20220101}', "'date' must be an ISO 8601 string, not a number"),
    (b'{"title": "x", "date": "2022-13-01"}', "'date' is not an ISO 8601 date"),
    # a leap second on the calendar's last day: past its end, not "not ISO 8601"
    (b'{"title": "x", "date": "9999-12-31T23:59:60Z"}',
     "'date' '9999-12-31T23:59:60Z' is out of range"),
    # an offset no zone has: "+15:00" was taken, and the article dated a day off
    (b'{"title": "x", "date": "2022-02-01T10:00:00+15:00"}',
     "'date' has UTC offset +15:00, which no time zone has: '2022-02-01T10:00:00+15:00'"),
    (b'{"title": "x", "date": "2022-02-01T10:00:00+14:60"}',
     "'date' has UTC offset +14:60, which no time zone has"),
    (b'{"title": "x", "date": "20220201T100000+1500"}',
     "'date' has UTC offset +15:00, which no time zone has: '20220201T100000+1500'"),
    (b'{"title": "x", "date": "2022-02-01T10-23"}',
     "'date' has UTC offset -23, which no time zone has"),
    # before the first second of the calendar in UTC: it was taken as undated, unnamed
    (b'{"title": "x", "date": "0001-01-01T00:00:00+01:00"}',
     "'date' 0001-01-01T00:00:00+01:00 is out of range once made UTC"),
    (b'\xff{"title": "x"}', "not UTF-8 (byte 1)"),
    # "a\ud800" and "a\udc00" were stored as one id ("a\ufffd"), the second renamed
    (b'{"title": "x", "id": "a\\ud800"}',
     "'id' holds a NUL or a lone surrogate ('a\\ud800'), which no stored id may"),
    (b'{"title": "x", "id": "a\\u0000b"}',
     "'id' holds a NUL or a lone surrogate ('a\\x00b'), which no stored id may"),
])
def test_bad_lines_say_what_is_wrong(line: bytes, reason: str) -> None:
    with pytest.raises(BadLine, match=re.escape(reason)):
        parse_line(line)


def test_a_field_name_found_twice_in_a_line_is_no_repeat_unless_it_is_one() -> None:
    article = parse_line('{"title": "id", "id": "title", "text": "a \\"url\\" and \\"url\\"", '
                         '"extra": {"id": 1, "name": 2}, "more": 1, "more": 2}')
    assert article is not None
    assert (article.title, article.id, article.text) == ("id", "title", 'a "url" and "url"')
    # an object inside the line may repeat a field's name: the line gives each field once
    nested = parse_line('{"id": "n1", "title": "Nested", "meta": {"id": 1, "id": 2}, '
                        '"tags": [{"source": "a", "source": "b"}]}')
    assert nested is not None and (nested.id, nested.source) == ("n1", "import")


def test_a_line_keeps_its_id_date_and_source() -> None:
    a = parse_line(b'{"id": "bbc-001", "title": " T ", "text": "x", "date": '
                   b'"2005-02-03T04:05:06+02:00", "source": "bbc", "url": "https://ex.org/a"}')
    assert a is not None
    assert (a.id, a.guid, a.title, a.source, a.url) == ("bbc-001", "bbc-001", "T", "bbc",
                                                        "https://ex.org/a")
    assert a.published is not None and a.published.isoformat() == "2005-02-03T02:05:06+00:00"
    assert parse_line(b"   \n") is None


def test_a_leap_second_is_the_second_after_and_not_a_bad_line() -> None:
    # RFC 3339 allows second 60; feeds read it as the next second, and so does the import.
    a = parse_line(b'{"id": "x", "title": "T", "date": "2016-12-31T23:59:60Z"}')
    assert a is not None and a.published == datetime(2017, 1, 1, tzinfo=UTC)
    b = parse_line(b'{"id": "y", "title": "T", "date": "2016-12-31T23:59:60.5+01:00"}')
    assert b is not None and b.published == datetime(2016, 12, 31, 23, 0, 0, 500000, tzinfo=UTC)
    with pytest.raises(BadLine, match="not an ISO 8601 date"):
        parse_line(b'{"id": "z", "title": "T", "date": "2016-12-31T23:60:00Z"}')


def test_a_year_before_1000_is_listed_with_four_digits(workdir: Path) -> None:
    f = write_jsonl(workdir / "old.jsonl", [json.dumps(
        {"id": "y1", "title": "Troops of old", "text": "", "date": "0002-01-01T00:00:00Z",
         "source": "archive"})])
    res = nw("import", str(f), cwd=workdir)
    assert res.returncode == 0, res.stderr
    res = nw("search", "troops", cwd=workdir)
    assert res.returncode == 0, res.stderr
    # strftime("%Y") spells year 2 as "2", and the columns no longer lined up
    assert res.stdout.split()[:2] == ["y1", "0002-01-01"], res.stdout


def test_posts_of_no_words_are_told_apart_by_their_characters(workdir: Path) -> None:
    """Three emoji-only items with their own ids and links imported as one and two
    duplicates: every text without a word had the fingerprint of no words."""
    f = write_jsonl(workdir / "emoji.jsonl", [json.dumps(
        {"id": f"e{i}", "title": title, "url": f"https://ex.org/e{i}", "source": "social"})
        for i, title in enumerate(["🔥 🔥", "🚀", "!!!"])] + [json.dumps(
        {"id": "e3", "title": "🔥  🔥", "url": "https://ex.org/e3", "source": "social"})])
    res = nw("import", str(f), cwd=workdir)
    assert res.returncode == 0, res.stderr
    # the last differs from the first only in its spaces: a copy
    assert "imported 3 · duplicates 1" in res.stderr, res.stderr


def test_the_fast_fingerprint_equals_the_plain_definition() -> None:
    import hashlib
    import re
    import unicodedata

    from tests.conftest import REPO
    from watchers.models import content_fingerprint

    def fingerprint(title: str, text: str) -> str:  # the definition, written plainly
        folded = unicodedata.normalize("NFKD", f"{title}\n{text}").casefold()
        folded = "".join(c for c in folded if not unicodedata.combining(c))
        words = re.findall(r"\w+", folded)
        if not words:  # known by its characters
            raw = " ".join(unicodedata.normalize("NFC", f"{title}\n{text}").split())
            return hashlib.sha256(("\x00" + raw).encode("utf-8", "surrogatepass")).hexdigest()
        return hashlib.sha256(" ".join(words).encode()).hexdigest()

    samples = [("", ""), ("🔥", ""), ("🔥 🔥", "!!"), ("Troops", "x"),
               ("Café NAÏVE", "Ǆemal ﬁnds Ⅻ e\u0301"),
               ("Straße", "İstanbul ΣΊΣΥΦΟΣ"), ("日本語", "١٢٣ x\u200bz"),
               # marks of many scripts, and several on one letter
               ("שָׁלוֹם", "مُحَمَّد हिन्दी ภาษาไทย a\u0301\u0302\u0303\u20d0 ]-^\\ \u0345")]
    corpora = REPO.parent / "shared" / "corpora" / "articles"
    for path in sorted(corpora.glob("*.jsonl")) if corpora.is_dir() else []:
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh):
                if n % 20 == 0:
                    rec = json.loads(line)
                    samples.append((rec.get("title") or "", rec.get("text") or ""))
    # texts longer than the fingerprint's chunk, cut at spaces, newlines and nowhere
    words = ["Troops", "Kyiv", "Café", "naïve", "x1", "—", "Straße", "٣", "\n"]
    samples.append(("Long", " ".join(words[i % len(words)] for i in range(400_000))))
    samples.append(("No spaces", "word\n" * 100_000))
    samples.append(("One word", "w" * 600_000))
    for title, text in samples:
        assert fingerprint(title, text) == content_fingerprint(title, text), title


_AWKWARD = ["", " ", "x", "Caf\u00e9", "e\u0301", "\x00", "\ud800", "\ud83d\ude00", "a\x00b",
            "https://ex.org/a", "  pad  ", "Pu\u00adtin", "a\u200bb\u2060c\ufeff", "\u00ad"]


@pytest.mark.parametrize("published", [
    None, datetime(2022, 1, 5, 10, tzinfo=UTC), datetime(2022, 1, 5, 10),
    datetime(2022, 1, 5, 10, tzinfo=timezone(timedelta(hours=5))),
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),  # before datetime.min in UTC
])
def test_a_checked_article_equals_the_validated_one(published: datetime | None) -> None:
    fetched = datetime(2023, 3, 1, 8, tzinfo=timezone(timedelta(hours=-3)))
    for value in _AWKWARD:
        for ident in ("", value):
            values: dict[str, Any] = {
                "source": value or "s", "guid": value or None, "url": value or None,
                "title": "T" + value, "text": value, "published": published,
                "fetched_at": fetched, "id": ident,
            }
            checked = checked_article(**values)
            validated = Article(**values)
            assert checked == validated, values
            assert checked.model_dump() == validated.model_dump()
            assert checked.model_fields_set == validated.model_fields_set
            assert repr(checked) == repr(validated)
            with pytest.raises(ValidationError):  # still frozen
                checked.title = "changed"  # type: ignore[misc]


def test_parse_line_builds_what_validation_builds() -> None:
    fetched = datetime(2023, 3, 1, 8, tzinfo=UTC)
    lines = [json.dumps(g) for g in GOOD] + [
        json.dumps({"title": " Caf\u00e9\u0000 ", "text": "\ud800 x", "url": " https://ex.org ",
                    "id": " a ", "source": "", "date": "0001-01-01T00:00:00-01:00"}),
        json.dumps({"title": "No id", "url": "https://ex.org/n", "date": "2020-02-02"}),
        json.dumps({"title": "Nothing else"}),
    ]
    for line in lines:
        doc = json.loads(line)
        got = parse_line(line, fetched_at=fetched)
        assert got is not None
        ident = (doc.get("id") or "").strip()
        expected = Article(
            source=(doc.get("source") or "").strip() or "import", guid=ident or None,
            url=(doc.get("url") or "").strip() or None, title=doc["title"].strip(),
            text=doc.get("text") or "", published=_published(doc) if "date" in doc else None,
            fetched_at=fetched, **({"id": ident} if ident else {}))
        assert got == expected, line


def _published(doc: dict[str, Any]) -> datetime:
    parsed = datetime.fromisoformat(doc["date"])
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# Characters that test the fingerprint's shortcut for text ASCII but for punctuation: curly
# quotes and dashes (punctuation), a fraction and a trademark sign (punctuation that decomposes
# into word characters), an acute accent alone (decomposes to a space and a mark), a
# zero-width space and joiner (no word, no space), ß and the ypogegrammeni (fold to letters), a
# combining mark, a ligature, letters of other scripts.
_FINGERPRINT_ALPHABET = ("ab Z9_ .,-\n\t'\"\u2019\u2018\u201c\u2014\u00a3\u2026\u00bd\u2122"
                         "\u00b4\u200b\u2060\u00df\u0345\u0301\ufb01\u00e9\u03a3\u65e5\u0663"
                         "\u00a0\u00d7")


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=_FINGERPRINT_ALPHABET, max_size=40),
       st.text(alphabet=_FINGERPRINT_ALPHABET, max_size=80))
def test_the_fingerprint_equals_the_plain_definition_on_mixed_text(title: str, text: str
                                                                   ) -> None:
    assert _plain_fingerprint(title, text) == content_fingerprint(title, text)


def _plain_fingerprint(title: str, text: str) -> str:
    folded = unicodedata.normalize("NFKD", f"{title}\n{text}").casefold()
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    words = re.findall(r"\w+", folded)
    if not words:  # no word at all: known by its characters, spaces made one
        raw = " ".join(unicodedata.normalize("NFC", f"{title}\n{text}").split())
        return hashlib.sha256(("\x00" + raw).encode("utf-8", "surrogatepass")).hexdigest()
    return hashlib.sha256(" ".join(words).encode()).hexdigest()


def three_batches(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``many.jsonl`` of 4,500 lines (three batches) in ``workdir``, the working folder; the
    import report's own progress, for a test's to call."""
    monkeypatch.chdir(workdir)
    lines = [json.dumps({"id": f"m{i}", "title": f"Troops report number {i}",
                         "text": f"Soldiers moved in sector {i}.", "date": "2022-01-05"})
             for i in range(4500)]
    write_jsonl(workdir / "many.jsonl", lines)
    return cli._ImportReport.progress


def test_an_import_stopped_midway_says_so_keeps_what_it_stored_and_finishes_when_run_again(
        workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C exited 130 with no word on what was kept or how to go on."""
    progress = three_batches(workdir, monkeypatch)

    def interrupted(self: Any, p: Any) -> None:
        progress(self, p)
        if p.lines >= 2000:  # Ctrl-C once the first batch is stored
            raise KeyboardInterrupt

    monkeypatch.setattr(cli._ImportReport, "progress", interrupted)
    assert cli.main(["import", "many.jsonl", "-c", "config.toml"]) == 130
    err = capsys.readouterr().err
    assert "many.jsonl: stopped after about 2,000 lines" in err
    assert "the same command again finishes the rest" in err and "Traceback" not in err
    with closing(sqlite3.connect(workdir / "nw.db")) as con:
        kept = con.execute("SELECT count(*) FROM articles").fetchone()[0]
    assert 2000 <= kept < 4500
    monkeypatch.setattr(cli._ImportReport, "progress", progress)
    assert cli.main(["import", "many.jsonl", "-c", "config.toml"]) == 0
    assert f"imported {4500 - kept:,} · duplicates {kept:,} · bad 0" in capsys.readouterr().err
    with closing(sqlite3.connect(workdir / "nw.db")) as con:
        assert con.execute("SELECT count(*) FROM articles").fetchone()[0] == 4500


@pytest.mark.timeout(120)
def test_three_thousand_lines_under_one_id_are_named_and_the_import_finishes(
        workdir: Path) -> None:
    """A careless export writes one id on every line: the first article is stored, every other
    line is named as clashing with it (across batches of 2,000), and nothing else stops."""
    lines = [json.dumps({"id": "same", "title": f"Story number {i} of the export",
                         "text": f"Body {i}", "date": "2022-02-24T04:00:00Z"})
             for i in range(3000)]
    write_jsonl(workdir / "h.jsonl", lines)
    res = nw("import", "h.jsonl", "-c", "config.toml", cwd=workdir)
    assert res.returncode == 1, res.stderr[-500:]
    assert "3,000 lines · imported 1 · duplicates 0 · bad 2,999" in res.stderr
    assert "h.jsonl:2: its id is another stored article's ('Story number 0" in res.stderr
    assert "only their count is shown from here on" in res.stderr  # not 2,999 lines of it
    assert nw("search", "export", "-c", "config.toml", cwd=workdir).returncode == 0


def twelve_thousand_lines() -> list[str]:
    return [json.dumps({"id": f"m{i}", "title": f"Troops report number {i}",
                        "text": f"Soldiers moved in sector {i}.", "date": "2022-01-05"})
            for i in range(12_000)]


def until_a_batch_is_stored(workdir: Path, p: subprocess.Popen[str]) -> None:
    """Wait (a minute at most) until the import ``p`` has committed a batch, or ended."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None:
        with closing(sqlite3.connect(workdir / "nw.db", timeout=10)) as conn:
            try:
                (stored,) = conn.execute("SELECT count(*) FROM articles").fetchone()
            except sqlite3.OperationalError:  # not made yet
                stored = 0
        if stored:
            return
        time.sleep(0.05)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sigint", ["default", "ignored"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_an_import_stopped_from_outside_says_what_is_kept_and_a_rerun_finishes(
        workdir: Path, sig: int, sigint: str) -> None:
    """Ctrl-C said how far the import got and that a rerun finishes it; a kill or a closed
    terminal ended it without a word (exit 143 or 129). Started with SIGINT ignored (a
    script's background job, as CI runs it), the stop became KeyboardInterrupt inside whichever
    task ran, and "Task exception was never retrieved" printed a traceback."""
    write_jsonl(workdir / "many.jsonl", twelve_thousand_lines())
    p = subprocess.Popen([*EXE, "import", "many.jsonl", "-c", "config.toml"], cwd=workdir,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
                         if sigint == "ignored" else None)
    until_a_batch_is_stored(workdir, p)
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, (p.returncode, err)
    assert "stopped after about" in err and "the same command again finishes the rest" in err
    assert "Traceback" not in err
    again = nw("import", "many.jsonl", "-c", "config.toml", cwd=workdir, timeout=90)
    assert again.returncode == 0, again.stderr
    with closing(sqlite3.connect(workdir / "nw.db")) as conn:
        assert conn.execute("SELECT count(*) FROM articles").fetchone() == (12_000,)


@pytest.mark.timeout(120)
def test_a_second_signal_while_an_import_stops_still_ends_it_with_130(workdir: Path) -> None:
    """Once the import had said how far it got and returned, the interpreter's own exit took
    a few tenths of a second, and a second SIGTERM then met the system's default: exit 143
    and no word. The process now ends at once; a second signal before that is the second
    signal (exit 130, saying so)."""
    write_jsonl(workdir / "many.jsonl", twelve_thousand_lines())
    for gap in (0.02, 0.1, 0.3):
        (workdir / "nw.db").unlink(missing_ok=True)
        p = subprocess.Popen([*EXE, "import", "many.jsonl", "-c", "config.toml"], cwd=workdir,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        until_a_batch_is_stored(workdir, p)
        p.send_signal(signal.SIGTERM)
        time.sleep(gap)
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
        assert p.returncode == 130, (gap, p.returncode, err)
        assert "Traceback" not in err


def test_a_line_imported_under_a_new_id_is_named_with_it(workdir: Path) -> None:
    """The file's id is kept so that links to it keep working; when another stored article
    holds it (other content, another link) the article was stored under a new id without a
    word. It is still imported (it is no duplicate), and the line is named with its new id."""
    first = {"id": "a1", "title": "Troops mass at border", "source": "ex",
             "text": "Russian troops massed at the border.", "url": "https://ex.com/a1",
             "date": "2022-01-20T10:00:00Z"}
    other = {"id": "a1", "title": "Grain deal signed", "source": "ex",
             "text": "Black Sea exports resume.", "url": "https://ex.com/zz",
             "date": "2022-01-21T10:00:00Z"}
    write_jsonl(workdir / "h1.jsonl", [json.dumps(first)])
    write_jsonl(workdir / "h2.jsonl", [json.dumps(other)])
    assert nw("import", "h1.jsonl", "-c", "config.toml", cwd=workdir).returncode == 0
    res = nw("import", "h2.jsonl", "-c", "config.toml", cwd=workdir)
    assert res.returncode == 0, res.stderr
    m = re.search(r"h2\.jsonl:1: its id 'a1' is another stored article's \(other content, "
                  r"another link\): imported as (\S+)", res.stderr)
    assert m is not None, res.stderr
    assert "1 line · imported 1 (1 under a new id) · duplicates 0 · bad 0" in res.stderr
    with sqlite3.connect(workdir / "nw.db") as con:
        assert con.execute("SELECT title FROM articles WHERE id = ?", (m.group(1),)
                           ).fetchone() == ("Grain deal signed",)


def test_lines_under_a_new_id_do_not_use_up_the_room_of_bad_lines(workdir: Path) -> None:
    """120 lines imported under a new id filled the 100 lines of bad lines named, and the one
    bad line after them was never named (and they were called "more bad lines")."""
    def lines(source: str, title: str) -> list[str]:
        return [json.dumps({"id": f"n{i}", "title": f"{title} {i}", "source": source,
                            "date": "2022-01-20T10:00:00Z"}) for i in range(120)]

    write_jsonl(workdir / "h1.jsonl", lines("a", "Troops mass"))
    write_jsonl(workdir / "h2.jsonl", [*lines("b", "Grain deal"), '{"id": "zz", "title": ""}'])
    assert nw("import", "h1.jsonl", "-c", "config.toml", cwd=workdir).returncode == 0
    res = nw("import", "h2.jsonl", "-c", "config.toml", cwd=workdir)
    assert res.returncode == 1
    assert re.search(r"h2\.jsonl:121: .*title", res.stderr), res.stderr[-500:]
    assert "more bad lines" not in res.stderr
    assert "more lines imported under a new id" in res.stderr
    assert len(re.findall(r"h2\.jsonl:\d+: its id", res.stderr)) == 100
    assert "imported 120 (120 under a new id) · duplicates 0 · bad 1" in res.stderr


async def test_an_overlong_line_is_named_and_read_past_without_being_held(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A line had no limit: a 200 MB line took 2 GB to import, a 1 GB line of zeros 3 GB to
    refuse. A line over MAX_LINE_BYTES (made small here) is a bad line, named with its length,
    and the lines after it are imported; a byte order mark at the start of a later line (two
    Windows exports joined) is read past; a source with the followed feeds' prefix is a bad
    line."""
    import watchers.importer

    monkeypatch.setattr(watchers.importer, "MAX_LINE_BYTES", 1000)
    lines = [json.dumps(GOOD[0]),
             json.dumps({**GOOD[1], "text": "x" * 5000}),
             "\ufeff" + json.dumps(GOOD[1]),
             json.dumps({**GOOD[2], "source": "@Reuters"})]
    history = write_jsonl(tmp_path / "h.jsonl", lines)
    bad: list[tuple[int, str]] = []
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        summary = await import_file(store, history, ruleset=RuleSet([]), terms_of=index_terms,
                                    on_bad_line=lambda n, why: bad.append((n, why)))
        assert await store.count_articles() == 2
    size = len(lines[1].encode()) + 1
    assert bad == [(2, f"longer than 0 MiB ({size:,} bytes)"),
                   (4, "'source' may not start with '@' (it marks the feeds servers follow)")]
    assert (summary.lines, summary.imported, summary.bad) == (4, 2, 2)


def test_the_store_itself_given_as_the_file_is_refused(workdir: Path) -> None:
    """`newswatch import nw.db` printed a hundred lines of noise about bad lines."""
    write_jsonl(workdir / "h.jsonl", [json.dumps(GOOD[0])])
    assert nw("import", "h.jsonl", "-c", "config.toml", cwd=workdir).returncode == 0
    res = nw("import", "nw.db", "-c", "config.toml", cwd=workdir)
    assert res.returncode == 1, res.stderr
    assert res.stderr.strip().endswith(
        "nw.db is an SQLite database (a newswatch store?), not a JSON Lines file"), res.stderr
    assert res.stderr.count("\n") == 1


def test_an_import_whose_database_is_removed_does_not_say_it_kept_anything(
        workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said "what was imported is kept" of a database that was gone."""
    progress = three_batches(workdir, monkeypatch)

    def removed(self: Any, p: Any) -> None:
        progress(self, p)
        if p.lines >= 2000:
            for suffix in ("", "-wal", "-shm"):
                (workdir / f"nw.db{suffix}").unlink(missing_ok=True)

    monkeypatch.setattr(cli._ImportReport, "progress", removed)
    assert cli.main(["import", "many.jsonl", "-c", "config.toml"]) == 1
    err = capsys.readouterr().err
    assert "was removed or replaced while newswatch was running" in err
    assert "what was imported went with that file" in err and "is kept" not in err


def test_a_damaged_database_is_named_as_such_and_no_rerun_is_promised(
        workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store whose lookup index is damaged: the import said it was corrupted and then "what
    was imported is kept, and the same command again finishes the rest", which no rerun does;
    a search said "search index rejected the query", blaming the query."""
    monkeypatch.chdir(workdir)
    write_jsonl(workdir / "h.jsonl", [json.dumps(g) for g in GOOD])
    assert cli.main(["import", "h.jsonl", "-c", "config.toml"]) == 0
    with closing(sqlite3.connect(workdir / "nw.db")) as conn:
        # one of each lookup index's own tables (a word lookup reads the places index)
        conn.execute("DROP TABLE article_index_config")
        conn.execute("DROP TABLE article_places_config")
        conn.commit()
    capsys.readouterr()
    write_jsonl(workdir / "more.jsonl", [json.dumps({**GOOD[0], "id": "h9", "title": "Troops"})])
    assert cli.main(["import", "more.jsonl", "-c", "config.toml"]) == 1
    err = capsys.readouterr().err
    assert "nw.db is corrupted" in err and "restore a backup or move it aside" in err
    assert "same command again" not in err and "is kept" not in err
    assert cli.main(["search", "troops", "-c", "config.toml"]) == 1
    err = capsys.readouterr().err
    assert "nw.db is corrupted" in err and "rejected the query" not in err


def test_an_import_stopped_by_a_full_disk_says_what_is_kept(workdir: Path) -> None:
    """A full disk ended the import with the database's error alone: no count of what was
    kept, nor that the same command finishes the rest (as after Ctrl-C). A file size limit
    stands in for the full disk."""
    import resource
    import signal
    import subprocess

    from tests.cli.test_cli import EXE

    lines = [json.dumps({**GOOD[0], "id": f"h{i}", "url": f"https://ex.org/{i}",
                         "title": f"Troops {i} gather", "text": "words " * 150})
             for i in range(6000)]
    write_jsonl(workdir / "h.jsonl", lines)
    assert nw("check", "-c", "config.toml", cwd=workdir).returncode == 0  # the store made

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (6 * 2**20, 6 * 2**20))

    res = subprocess.run([*EXE, "import", "h.jsonl", "-c", "config.toml"], cwd=workdir,
                         capture_output=True, text=True, timeout=120, preexec_fn=limit)
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert "h.jsonl: stopped after about " in res.stderr, res.stderr
    assert ("h.jsonl: what was imported is kept, and the same command again finishes the rest"
            in res.stderr)
    again = nw("import", "h.jsonl", "-c", "config.toml", cwd=workdir, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "6,000 lines · imported " in again.stderr and " · bad 0" in again.stderr


async def test_history_is_grouped_into_stories_out_of_order_and_into_a_store_in_use(
        tmp_path: Path) -> None:
    """The importer placed each article in the live story index, which drops every story
    older than its newest article's window: into a store holding today's news, or with a
    later-dated line first, history was nearly all stories of one (149,924 stories for 149,999
    articles of a shuffled year). Each import now groups in an index of its own, in date
    order, as `newswatch stories` does."""
    import shutil

    from tests.conftest import SEEDS
    from watchers.config import parse_config
    from watchers.engine import open_engine

    shutil.copytree(SEEDS, tmp_path / "seeds")
    cfg = parse_config({"storage": {"path": "nw.db"},
                        "sources": [{"name": "seeds", "type": "folder", "path": "seeds",
                                     "settle": 0}],
                        "rules": [{"name": "troops", "query": "troops"}]}, base_dir=tmp_path)
    event = "Russian troops withdraw from the Kherson region after a long siege"
    lines = [
        json.dumps({"id": "r1", "title": event, "text": event + ", Reuters reports.",
                    "source": "reuters",
                    "url": "https://reuters.example/1", "date": "2025-03-01T12:00:00Z"}),
        json.dumps({"id": "x1", "title": "Central bank leaves interest rates unchanged",
                    "text": "Rates unchanged.", "source": "ap",
                    "url": "https://ap.example/1", "date": "2025-12-01T09:00:00Z"}),
        json.dumps({"id": "b1", "title": event, "text": event + ", the BBC has learnt.",
                    "source": "bbc",
                    "url": "https://bbc.example/1", "date": "2025-03-01T10:00:00Z"}),
    ]
    history = write_jsonl(tmp_path / "h.jsonl", lines)
    async with open_engine(cfg, start=False) as engine:
        await engine.run_once()  # today's news first: a store in use
        summary = await engine.import_articles(history)
        assert (summary.imported, summary.bad) == (3, 0)
        stories = await engine.store.stories_of(["r1", "b1", "x1"])  # the file's ids kept
    assert stories["r1"].id == stories["b1"].id
    assert stories["x1"].id != stories["r1"].id
    assert set(stories["r1"].outlets) == {"reuters", "bbc"}


async def test_lines_read_in_date_order_in_short_pieces_are_read_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Grouped in date order, each line is read at its place by ``os.pread``, which may give
    fewer bytes than asked: the rest is read, and the lines are the same, in the same order,
    as the file's own reading gives them."""
    from watchers import importer
    from watchers.stories import StoryIndex

    lines = [json.dumps({"id": f"i{n}", "title": f"Title {n} " + "w" * n, "text": "caf\u00e9",
                         "date": f"2025-03-{28 - n:02d}T12:00:00Z"}) for n in range(20)]
    lines.insert(7, "not json")
    history = write_jsonl(tmp_path / "h.jsonl", lines)
    real = os.pread
    monkeypatch.setattr(os, "pread",
                        lambda fd, n, offset: real(fd, min(n, 7), offset))
    seen: list[list[tuple[int, int, bytes | int]]] = []
    prepare = importer._prepare

    def spy(chunk: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(list(chunk))
        return prepare(chunk, *args, **kwargs)

    monkeypatch.setattr(importer, "_prepare", spy)
    store = await SqliteStore.open(tmp_path / "nw.db")
    try:
        summary = await importer.import_file(store, history, ruleset=RuleSet([]),
                                             stories=StoryIndex(), batch=8)
    finally:
        await store.aclose()
    assert (summary.imported, summary.bad) == (20, 1)
    got = [(number, raw) for chunk in seen for number, _, raw in chunk]
    with history.open("rb") as fh:
        whole = {number: raw for number, _, raw in importer.json_lines(fh)}
    assert [n for n, _ in got] == [*range(21, 8, -1), 7, 8, *range(6, 0, -1)]
    assert got == [(n, whole[n]) for n, _ in got]


async def test_a_word_for_word_copy_from_another_outlet_adds_its_outlet_to_the_story(
        tmp_path: Path) -> None:
    """A line another outlet's stored article holds word for word stores nothing (a
    duplicate), but it is one more outlet reporting the story, as a polled copy is: the import
    left it out, and the story of history counted one outlet fewer than the same articles
    polled. Importing the file again adds nothing."""
    from watchers.config import parse_config
    from watchers.engine import open_engine

    cfg = parse_config({"storage": {"path": "nw.db"},
                        "rules": [{"name": "troops", "query": "troops"}]},
                       base_dir=tmp_path, watching=False)
    event = "Russian troops withdraw from the Kherson region after a long siege"
    wire = {"title": event, "text": event + ", the agency reports."}
    lines = [
        json.dumps({"id": "r1", **wire, "source": "reuters", "url": "https://reuters.example/1",
                    "date": "2025-03-01T10:00:00Z"}),
        json.dumps({"id": "y1", **wire, "source": "yahoo", "url": "https://yahoo.example/1",
                    "date": "2025-03-01T11:00:00Z"}),
        json.dumps({"id": "r2", **wire, "source": "reuters", "url": "https://reuters.example/2",
                    "date": "2025-03-01T11:30:00Z"}),
        json.dumps({"id": "x1", "title": "Central bank leaves interest rates unchanged",
                    "text": "Rates unchanged.", "source": "ap", "url": "https://ap.example/1",
                    "date": "2025-03-01T12:00:00Z"}),
    ]
    history = write_jsonl(tmp_path / "h.jsonl", lines)
    async with open_engine(cfg, start=False) as engine:
        summary = await engine.import_articles(history)
        assert (summary.imported, summary.duplicates, summary.bad) == (2, 2, 0)
        stories = await engine.store.stories_of(["r1", "x1"])
        assert stories["r1"].outlets == ("reuters", "yahoo")
        assert stories["r1"].articles == 1
        assert stories["x1"].outlets == ("ap",)
        again = await engine.import_articles(history)
        assert (again.imported, again.duplicates) == (0, 4)
        assert (await engine.store.stories_of(["r1"]))["r1"].outlets == ("reuters", "yahoo")
        assert not await engine.store.alerts(limit=10)  # an import alerts nobody


@pytest.mark.parametrize("columns", [40, 12, 0])
def test_the_bar_on_a_narrow_terminal_fits_its_width(workdir: Path, columns: int) -> None:
    """On a terminal the bar is redrawn in place; a line wider than the terminal wraps and
    every redraw leaves a line behind. The real command on a pseudo-terminal that wide: each
    redraw fits (the bar left out first, then the counts cut). A terminal that reports no
    width (0: a pty never given a size) is taken as 80 columns: every line was cut to "…"."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import termios

    from tests.cli.test_cli import EXE

    write_jsonl(workdir / "h.jsonl", [json.dumps(g) for g in GOOD])
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "DISCORD_TOKEN")}
    try:
        proc = subprocess.run([*EXE, "import", "h.jsonl", "-c", "config.toml"], cwd=workdir,
                              stderr=follower, stdout=subprocess.DEVNULL, env=env, timeout=60)
        os.close(follower)
        out = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the follower is closed: all read
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(leader)
    assert proc.returncode == 0
    text = out.decode("utf-8")
    draws = [d.split("\r\n")[0] for d in text.split("\r\x1b[K")[1:]]
    if columns == 0:
        # drawn at 80 columns, the reading first (before the first batch is counted)
        assert draws and "reading h.jsonl" in draws[0] and "100%" in draws[-1], draws
        assert all(1 < len(d) < 80 for d in draws), draws
    else:
        assert draws and draws[-1].startswith("100%")  # the bar left out
        assert all(0 < len(d) < columns for d in draws), draws
    assert "imported 3" in text  # the summary line after it is whole


@pytest.mark.parametrize("change", ["cut short", "written to", "replaced"])
def test_a_file_changed_while_it_is_imported_is_named_and_the_rest_comes_with_a_second_run(
        workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        change: str) -> None:
    """A file cut short (or written to, or replaced) while it is imported: its later lines
    were silently missing. The import says the file changed and exits 1; once the file is
    whole again, the same command imports what is missing."""
    monkeypatch.chdir(workdir)
    lines = [json.dumps({"id": f"c{i}", "title": f"Convoy report number {i}",
                         "text": f"Trucks moved in sector {i}.", "date": "2022-01-05"})
             for i in range(5000)]  # three batches
    whole = "".join(line + "\n" for line in lines)
    path = workdir / "many.jsonl"
    path.write_text(whole, encoding="utf-8")
    progress = cli._ImportReport.progress

    def changing(self: Any, p: Any) -> None:
        progress(self, p)
        if p.lines == 2000:  # once the first batch is stored
            if change == "cut short":
                with path.open("r+b") as fh:
                    fh.truncate(len(whole) // 3)
            elif change == "written to":
                with path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"id": "late", "title": "A late line"}) + "\n")
            else:
                (workdir / "new.jsonl").write_text(whole[: len(whole) // 2], encoding="utf-8")
                (workdir / "new.jsonl").replace(path)

    monkeypatch.setattr(cli._ImportReport, "progress", changing)
    assert cli.main(["import", "many.jsonl", "-c", "config.toml"]) == 1
    err = capsys.readouterr().err
    assert "many.jsonl: the file changed while it was read" in err, err
    assert "the same command again imports what is missing" in err and "Traceback" not in err
    path.write_text(whole, encoding="utf-8")
    monkeypatch.setattr(cli._ImportReport, "progress", progress)
    assert cli.main(["import", "many.jsonl", "-c", "config.toml"]) == 0
    assert "changed while" not in capsys.readouterr().err
    with closing(sqlite3.connect(workdir / "nw.db")) as con:
        ids = {i for (i,) in con.execute("SELECT id FROM articles")}
    assert {f"c{i}" for i in range(5000)} <= ids


async def test_an_import_of_a_file_that_stays_as_it_was_is_not_changed(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    write_jsonl(path, [json.dumps(g) for g in GOOD])
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        summary = await import_file(store, path, ruleset=RuleSet([]))
    assert summary.imported == len(GOOD) and not summary.changed


@pytest.mark.parametrize(("pack", "kind"), [
    (gzip.compress, "gzip"), (bz2.compress, "bzip2"), (lzma.compress, "xz")])
def test_a_compressed_history_is_named_as_such(workdir: Path, pack: Callable[[bytes], bytes],
                                               kind: str) -> None:
    """A gzipped export printed a hundred "not UTF-8 (byte 2)" lines and imported nothing."""
    (workdir / "h.jsonl.x").write_bytes(pack(json.dumps(GOOD[0]).encode() + b"\n"))
    res = nw("import", "h.jsonl.x", "-c", "config.toml", cwd=workdir)
    assert res.returncode == 1, res.stderr
    assert res.stderr.strip().endswith(
        f"h.jsonl.x is {kind}-compressed: decompress it first (JSON Lines are read as they "
        "are)"), res.stderr
    assert res.stderr.count("\n") == 1


@pytest.mark.parametrize(("encoding", "kind"), [
    ("utf-16", "UTF-16"), ("utf-16-be", "UTF-16"), ("utf-16-le", "UTF-16"),
    ("utf-32", "UTF-32"), ("utf-32-be", "UTF-32")])
def test_a_wide_encoded_history_is_named_as_such(workdir: Path, encoding: str, kind: str
                                                 ) -> None:
    """A history saved as UTF-16 (as Windows' "Unicode") was every line "not UTF-8" or
    "invalid JSON" in turn, and nothing imported."""
    (workdir / "h.jsonl").write_bytes(
        "".join(json.dumps(g) + "\n" for g in GOOD).encode(encoding))
    res = nw("import", "h.jsonl", "-c", "config.toml", cwd=workdir)
    assert res.returncode == 1, res.stderr
    assert res.stderr.strip().endswith(
        f"h.jsonl is {kind} text, not UTF-8: convert it first (e.g. iconv -f {kind} -t UTF-8 "
        "FILE > NEW)"), res.stderr
    assert res.stderr.count("\n") == 1


@pytest.mark.parametrize("rules", [[], [Rule(name="covid", query="covid OR vaccine"),
                                        Rule(name="pm", query='"prime minister"')]])
def test_a_batch_tokenises_titles_once_with_the_same_words_and_stories(rules: list[Rule]
                                                                         ) -> None:
    """A batch's title tokens serve both its lookup words and its story signature: the words
    are those of lookup_words (no rules) or of the matcher's tokens (rules), and the stories
    those `newswatch stories` finds in the same lines (signatures read from the titles)."""
    from watchers.importer import _prepare
    from watchers.rules.lookup import lookup_terms, lookup_words
    from watchers.stories import StoryIndex, StoryInput, cluster

    labelled = Path(__file__).resolve().parents[1] / "data" / "stories" / "reddit_labelled.jsonl"
    docs = [json.loads(line) for line in labelled.read_text(encoding="utf-8").splitlines()]
    docs.sort(key=lambda d: d["date"])  # the order the import reads them in
    raw = [json.dumps({k: d[k] for k in ("id", "title", "text", "url", "date", "source")
                       if d.get(k) is not None}).encode() + b"\n" for d in docs]
    chunk: list[tuple[int, int, bytes | int]] = [(n, 0, line) for n, line in
                                                 enumerate(raw, 1)]
    index = StoryIndex()
    batch = _prepare(chunk, RuleSet(rules), None, 1.0, index)
    assert not batch.bad and len(batch.records) == len(docs)
    for rec in batch.records:
        a = rec.article
        assert rec.words == lookup_words(a.title, a.text), a.id
        assert rec.terms == lookup_terms(a.title, a.text), a.id
    by_story: dict[str, set[str]] = {}
    for rec in batch.records:
        assert rec.story is not None
        by_story.setdefault(rec.story.id, set()).add(rec.article.id)
    items = [StoryInput(a.id, a.title, a.text, a.url, a.published or a.fetched_at, a.source)
             for a in (rec.article for rec in batch.records)]
    assert sorted(map(sorted, by_story.values())) == sorted(sorted(s.ids) for s in cluster(items))
    assert len(by_story) < len(docs) * 0.7  # stories of several articles were found


async def test_undated_lines_imported_again_after_a_stop_join_the_stories_they_are_in(
        tmp_path: Path) -> None:
    """An import stopped after its first batch and run again: the lines it stored are
    duplicates, read again at another time. An undated one is placed at the time it is read,
    and its story was named with that time, so the story of its copy from another outlet
    (new in the second run) was not the one it is stored in: nearly every story of the first
    run was split in two. Stories of undated lines are named without a time."""
    from watchers.config import parse_config
    from watchers.engine import open_engine

    cfg = parse_config({"storage": {"path": "nw.db"},
                        "rules": [{"name": "troops", "query": "troops"}]},
                       base_dir=tmp_path, watching=False)
    events = ["Russian troops withdraw from the Kherson region after a long siege",
              "Central bank leaves interest rates unchanged for a third month",
              "Floods force thousands from their homes in northern Italy"]
    first = [{"id": f"a{i}", "title": e, "text": e + ", outlet A reports.", "source": "a",
              "url": f"https://a.example/{i}"} for i, e in enumerate(events)]
    copies = [{"id": f"b{i}", "title": e, "text": e + ", outlet B has learnt.", "source": "b",
               "url": f"https://b.example/{i}"} for i, e in enumerate(events)]
    stopped = write_jsonl(tmp_path / "first.jsonl", [json.dumps(d) for d in first])
    whole = write_jsonl(tmp_path / "whole.jsonl", [json.dumps(d) for d in first + copies])
    async with open_engine(cfg, start=False) as engine:
        assert (await engine.import_articles(stopped)).imported == 3  # what the stop kept
        # the second run reads the same lines at least a second later (ids name the second)
        await asyncio.sleep(1.1)
        again = await engine.import_articles(whole)
        assert (again.imported, again.duplicates) == (3, 3)
        stories = await engine.store.stories_of([f"{x}{i}" for x in "ab" for i in range(3)])
    for i in range(3):
        assert stories[f"a{i}"].id == stories[f"b{i}"].id
        assert stories[f"a{i}"].outlets == ("a", "b")
    assert len({s.id for s in stories.values()}) == 3


async def test_a_failed_write_ends_the_import_once_the_parsing_ahead_of_it_stopped(
        tmp_path: Path) -> None:
    """Batches are parsed ahead of the writes (while one commits). When a write fails, the
    import ends only once the batch being parsed is done, so nothing reads the file or the
    stories after it returned, and the interpreter's switch interval (shorter during an import)
    is the one before again. A removed database makes the write fail."""
    import sys
    import threading

    from watchers.errors import StoreError
    from watchers.importer import SWITCH_INTERVAL

    lines = [json.dumps({**GOOD[0], "id": f"h{i}", "title": f"Troops {i}",
                         "url": f"https://ex.org/{i}"}) for i in range(40)]
    history = write_jsonl(tmp_path / "h.jsonl", lines)
    lock = threading.Lock()
    parsing: list[int] = [0]
    parsed: list[str] = []
    intervals: set[float] = set()

    def terms_of(title: str, text: str) -> str:  # runs as each line is parsed
        with lock:
            parsing[0] += 1
        intervals.add(sys.getswitchinterval())
        time.sleep(0.01)
        with lock:
            parsed.append(title)
            parsing[0] -= 1
        return index_terms(title, text)

    def removed(p: ImportProgress) -> None:
        for suffix in ("", "-wal", "-shm"):
            (tmp_path / f"nw.db{suffix}").unlink(missing_ok=True)

    before = sys.getswitchinterval()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        with pytest.raises(StoreError, match="removed or replaced"):
            await import_file(store, history, ruleset=RuleSet([]), terms_of=terms_of,
                              on_progress=removed, batch=4)
        assert parsing[0] == 0
        so_far = len(parsed)
        await asyncio.sleep(0.3)
        assert len(parsed) == so_far < len(lines)
    assert sys.getswitchinterval() == before
    assert intervals == {SWITCH_INTERVAL}


def test_with_no_config_file_the_store_is_made_in_the_current_folder(tmp_path: Path) -> None:
    """``-c /dev/null`` (the defaults) resolved the store's relative path against the config's
    folder: /dev/newswatch.db, made there as root."""
    write_jsonl(tmp_path / "h.jsonl", [json.dumps(GOOD[0])])
    made_in_dev = Path("/dev/newswatch.db").exists()
    try:
        res = nw("import", "h.jsonl", "-c", "/dev/null", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        assert (tmp_path / "newswatch.db").is_file()
        assert Path("/dev/newswatch.db").exists() == made_in_dev
        found = nw("search", "troops", "-c", "/dev/null", cwd=tmp_path)
        assert found.returncode == 0 and "Troops gather at the border" in found.stdout
    finally:
        if not made_in_dev:
            for end in ("", "-wal", "-shm", ".lock"):
                Path(f"/dev/newswatch.db{end}").unlink(missing_ok=True)


async def test_an_import_whose_parsing_task_is_cancelled_ends_and_does_not_wait_for_ever(
        tmp_path: Path) -> None:
    """Shutdown code that cancels every task one by one cancelled the task parsing ahead of
    the writes, and the import then waited for its next batch for ever (with the shorter
    switch interval set all the while)."""
    import sys

    lines = [json.dumps({**GOOD[0], "id": f"h{i}", "title": f"Troops {i}",
                         "url": f"https://ex.org/{i}"}) for i in range(400)]
    history = write_jsonl(tmp_path / "h.jsonl", lines)

    def slow_terms(title: str, text: str) -> str:
        time.sleep(0.002)
        return index_terms(title, text)

    before = sys.getswitchinterval()
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        task = asyncio.create_task(import_file(store, history, ruleset=RuleSet([]),
                                               terms_of=slow_terms, batch=10))
        await asyncio.sleep(0.2)
        parsing = [t for t in asyncio.all_tasks() if "produce" in repr(t.get_coro())]
        assert len(parsing) == 1 and not task.done()
        parsing[0].cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=30)
        assert parsing[0].done()
    assert sys.getswitchinterval() == before
