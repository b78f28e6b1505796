"""``newswatch stories``: through the real command line, and in-process through ``run()``."""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot import stories_cli
from tests.conftest import REPO

EXE = [sys.executable, "-m", "bot", "stories"]
FIXTURE = REPO / "tests" / "data" / "stories" / "reddit_labelled.jsonl"

ARTICLES = [
    {"id": "a", "title": "Howard Hesseman, star of 'WKRP in Cincinnati,' dies at 81",
     "text": "", "url": "https://apnews.com/1", "date": "2022-01-30T19:23:00+00:00",
     "source": "apnews.com"},
    {"id": "b", "title": "Howard Hesseman, Dr. Johnny Fever on ‘WKRP in Cincinnati,’ Dies at 81",
     "text": "", "url": None, "date": "2022-01-30T17:55:00+00:00",
     "source": "hollywoodreporter.com"},
    {"id": "c", "title": "Thousands in Ottawa protest COVID mandates, many rebuked",
     "date": "2022-01-30T14:39:00", "source": "apnews.com"},
    # The same event, but 3 days later: outside a 48h window.
    {"id": "d", "title": "Howard Hesseman, star of 'WKRP in Cincinnati,' dies at 81",
     "date": "2022-02-02T19:23:00+00:00", "source": "example.org"},
]


def write(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    stories_cli.add_parser(p.add_subparsers())
    return p.parse_args(["stories", *argv])


def groups(lines: str) -> list[set[str]]:
    return [set(json.loads(line)["ids"]) for line in lines.splitlines()]


def test_json_puts_every_id_in_exactly_one_story(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path / "a.jsonl", [*ARTICLES, ""])
    assert stories_cli.run(parse(str(f), "--json")) == 0
    out = capsys.readouterr().out
    assert sorted(map(sorted, groups(out))) == [["a", "b"], ["c"], ["d"]]
    for line in out.splitlines():
        doc = json.loads(line)
        assert set(doc) == {"story", "ids"} and doc["story"]


def test_a_byte_order_mark_at_the_start_is_read_past(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Windows tools write UTF-8 with a byte order mark: line 1 was refused as bad."""
    f = write(tmp_path / "a.jsonl", ARTICLES)
    f.write_bytes(b"\xef\xbb\xbf" + f.read_bytes())
    assert stories_cli.run(parse(str(f), "--json")) == 0
    assert sorted(map(sorted, groups(capsys.readouterr().out))) == [["a", "b"], ["c"], ["d"]]


def test_ids_come_back_exactly_as_given(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """" a1 " came back as "a1", and "a" beside "a " was refused as a repeat."""
    rows: list[object] = [
        {"id": " a1 ", "title": "Thousands in Ottawa protest", "date": "2022-01-30T14:39:00"},
        {"id": "a1", "title": "Howard Hesseman dies at 81", "date": "2022-02-02T19:23:00"}]
    f = write(tmp_path / "a.jsonl", rows)
    assert stories_cli.run(parse(str(f), "--json")) == 0
    ids = {i for line in capsys.readouterr().out.splitlines() for i in json.loads(line)["ids"]}
    assert ids == {" a1 ", "a1"}


def test_window_option_changes_what_may_join(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path / "a.jsonl", ARTICLES)
    assert stories_cli.run(parse(str(f), "--json", "--window", "5d")) == 0
    assert {"a", "b", "d"} in groups(capsys.readouterr().out)
    assert stories_cli.run(parse(str(f), "--json", "--window", "1h")) == 0
    assert {"a", "b"} not in groups(capsys.readouterr().out)


def test_readable_listing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path / "a.jsonl", ARTICLES)
    assert stories_cli.run(parse(str(f))) == 0
    out = capsys.readouterr().out
    assert "3 stories from 4 articles" in out
    # The story's headline is its first article's (by date) title; both outlets are named.
    head = out.index("Howard Hesseman, Dr. Johnny Fever")
    assert "2 articles · 2 outlets (hollywoodreporter.com, apnews.com)" in out[head:]
    assert "2022-01-30 17:55 → 2022-01-30 19:23" in out


def test_dates_are_read_as_the_import_reads_them(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import UTC, datetime, timedelta

    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    f = write(tmp_path / "a.jsonl", [
        {"id": "x1", "title": "Howard Hesseman, star of 'WKRP in Cincinnati,' dies at 81",
         "date": hour_ago, "source": "a.org"},
        # a placeholder date, not believed (as `import` takes it): the time the file is read
        {"id": "x2",
         "title": "Howard Hesseman, Dr. Johnny Fever on ‘WKRP in Cincinnati,’ Dies at 81",
         "date": "9999-12-31T23:59:59Z", "source": "b.org"},
        # second 60 (RFC 3339) is the second after 23:59:59
        {"id": "x3", "title": "Webb telescope reaches its orbit",
         "date": "2016-12-31T23:59:60Z", "source": "c.org"},
        # a year before 1000, spelt with four digits
        {"id": "x4", "title": "An old chronicle", "date": "0999-06-15T00:00:00Z"},
        # the calendar's first day, .NET's and Go's "no date": the time the file is read
        {"id": "x5", "title": "A zero time", "date": "0001-01-01T00:00:00Z"},
    ])
    assert stories_cli.run(parse(str(f), "--json")) == 0
    assert sorted(map(sorted, groups(capsys.readouterr().out))) == [
        ["x1", "x2"], ["x3"], ["x4"], ["x5"]]
    assert stories_cli.run(parse(str(f))) == 0
    out = capsys.readouterr().out
    assert "9999" not in out and "0001-01-01" not in out
    assert "2017-01-01 00:00" in out and "0999-06-15 00:00" in out


def test_a_date_ahead_of_now_is_placed_at_now_as_the_import_places_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A date within the day ahead is believed, and the import places such an article when
    it was read: here it was placed at its own date, and two reports 60 hours apart as dated
    (40 hours apart as placed) were one story in the import and two here."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    f = write(tmp_path / "a.jsonl", [
        {"id": "fa", "title": "Volcano erupts on La Palma, lava reaches the sea",
         "date": (now - timedelta(hours=40)).isoformat(), "source": "a.org"},
        {"id": "fb", "title": "La Palma volcano erupts, lava reaches the sea",
         "date": (now + timedelta(hours=20)).isoformat(), "source": "b.org"},
    ])
    assert stories_cli.run(parse(str(f), "--json")) == 0
    assert groups(capsys.readouterr().out) == [{"fa", "fb"}]


@pytest.mark.parametrize(("line", "says"), [
    ("not json", "invalid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"title": "t", "date": "2022-01-01"}', "missing 'id'"),
    ('{"id": "x", "date": "2022-01-01"}', "missing 'title'"),
    ('{"id": "x", "title": "", "date": "2022-01-01"}', "'title' is empty"),
    ('{"id": "x", "title": "t"}', "missing 'date'"),
    ('{"id": "x", "title": "t", "date": "yesterday"}', "'date' is not an ISO 8601 date"),
    # past either end of the calendar once in UTC: taken as the time the file was read
    ('{"id": "x", "title": "t", "date": "0001-01-01T00:00:00+14:00"}',
     "'date' 0001-01-01T00:00:00+14:00 is out of range once made UTC"),
    ('{"id": "x", "title": "t", "date": "9999-12-31T23:59:59-14:00"}',
     "'date' 9999-12-31T23:59:59-14:00 is out of range once made UTC"),
    # an offset no zone has: the line was put in another day's stories
    ('{"id": "x", "title": "t", "date": "2022-01-01T10:00:00-23:00"}',
     "'date' has UTC offset -23:00, which no time zone has"),
    ('{"id": "x", "title": 5, "date": "2022-01-01"}', "'title' must be a string, not a number"),
    # a number too long for int() was kept as its digits, and passed for a string
    ('{"id": "x", "title": ' + "7" * 4001 + ', "date": "2022-01-01"}',
     "'title' must be a string, not a number"),
    ('{"id": ' + "7" * 4001 + ', "title": "t", "date": "2022-01-01"}',
     "'id' must be a string, not a number"),
    # a blank headline once read
    ('{"id": "x", "title": "\\u200b\\u00ad", "date": "2022-01-01"}',
     "'title' holds only invisible characters"),
    ('{"id": "x", "title": "\\u202e\\u3164", "date": "2022-01-01"}',
     "'title' holds only invisible characters"),
    ('{"id": "x", "title": "t", "date": "2022-01-01", "source": []}', "'source' must be a"),
    ('{"id": "a", "title": "t", "date": "2022-01-01"}', "'id' 'a' repeats line 1"),
    # the last of two ids was taken, and the first was in no story
    ('{"id": "x", "id": "y", "title": "t", "date": "2022-01-01"}', "'id' appears twice"),
])
def test_bad_line_is_named_and_nothing_printed(tmp_path: Path, line: str, says: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path / "a.jsonl", [ARTICLES[0], line])
    assert stories_cli.run(parse(str(f), "--json")) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{f}:2: {says}" in captured.err


def test_bad_window_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path / "a.jsonl", ARTICLES)
    assert stories_cli.run(parse(str(f), "--window", "soon")) == 2
    assert "--window" in capsys.readouterr().err
    assert stories_cli.run(parse(str(tmp_path / "nope.jsonl"))) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "no such file" in captured.err


def test_non_utf8_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "a.jsonl"
    f.write_bytes(json.dumps(ARTICLES[0]).encode() + b"\n\xff\xfe\n")
    assert stories_cli.run(parse(str(f))) == 2
    assert f"{f}:2: not UTF-8" in capsys.readouterr().err


@pytest.mark.parametrize(("encode", "says"), [
    (lambda b: gzip.compress(b), "is gzip-compressed: decompress it first"),
    (lambda b: b.decode().encode("utf-16"), "is UTF-16 text, not UTF-8: convert it first"),
    (lambda b: b.decode().encode("utf-16-be"), "is UTF-16 text, not UTF-8: convert it first"),
    (lambda b: b.decode().encode("utf-32-le"), "is UTF-32 text, not UTF-8: convert it first"),
])
def test_a_file_that_is_not_utf8_json_lines_is_named_once(
        tmp_path: Path, encode: Callable[[bytes], bytes], says: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A gzipped or UTF-16 export was every line "not UTF-8" or "invalid JSON" in turn."""
    f = tmp_path / "a.jsonl"
    f.write_bytes(encode("".join(json.dumps(a) + "\n" for a in ARTICLES).encode()))
    assert stories_cli.run(parse(str(f), "--json")) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and f"{f} {says}" in captured.err, captured.err


def test_a_line_past_the_cap_is_named_and_not_held(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A file with no line breaks was read into memory whole as one line."""
    from watchers.importer import MAX_LINE_BYTES

    f = write(tmp_path / "a.jsonl", [ARTICLES[0]])
    with f.open("ab") as fh:
        fh.write(b'{"id": "x", "title": "' + b"a" * (MAX_LINE_BYTES + 10) + b'"}\n')
    write_more = json.dumps(ARTICLES[1]) + "\n"
    with f.open("a", encoding="utf-8") as fh:
        fh.write(write_more)
    assert stories_cli.run(parse(str(f), "--json")) == 2
    err = capsys.readouterr().err
    assert f"{f}:2: longer than {MAX_LINE_BYTES // 2**20} MiB" in err, err
    assert f"{f}: 1 bad line; nothing clustered" in err


# ----------------------------------------------------------------------------- real command


def nw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXE, *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_command_on_the_labelled_fixture() -> None:
    if not FIXTURE.is_file():
        pytest.skip(f"no labelled fixture at {FIXTURE}")
    done = nw(str(FIXTURE), "--json")
    assert done.returncode == 0, done.stderr
    ids = [i for line in done.stdout.splitlines() for i in json.loads(line)["ids"]]
    with FIXTURE.open(encoding="utf-8") as fh:
        expected = [json.loads(line)["id"] for line in fh if line.strip()]
    assert sorted(ids) == sorted(expected)
    assert len(done.stdout.splitlines()) < len(expected)  # some stories have several articles


def test_command_bad_line_exits_2(tmp_path: Path) -> None:
    f = write(tmp_path / "a.jsonl", [ARTICLES[0], '{"id": "x"}'])
    done = nw(str(f), "--json")
    assert done.returncode == 2
    assert done.stdout == ""
    assert ":2: missing 'title'" in done.stderr


def test_a_lone_surrogate_is_shown_as_a_replacement_character(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """JSON may escape half a surrogate pair; printing it failed with UnicodeEncodeError. (In
    an id it is a bad line: --json could not print the id back as given.)"""
    f = write(tmp_path / "a.jsonl", ['{"id": "s1", "title": "Putin \\ud800 x", '
                                     '"date": "2022-01-01"}'])
    assert stories_cli.run(parse(str(f))) == 0
    out = capsys.readouterr().out
    assert "1 story from 1 article " in out and "Putin \ufffd x" in out
    assert stories_cli.run(parse(str(f), "--json")) == 0
    assert '"ids": ["s1"]' in capsys.readouterr().out


def test_a_long_file_says_how_far_the_grouping_has_got(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """160,000 lines took 12-15 s with nothing said; a line every 10 s now (every report here),
    on stderr, where --json output stays clean."""
    from watchers.stories import offline

    monkeypatch.setattr(stories_cli, "_PROGRESS_SECONDS", 0.0)
    monkeypatch.setattr(offline, "PROGRESS_EVERY", 2)
    rows: list[object] = [{"id": f"a{i}", "title": "Howard Hesseman, star of WKRP, dies at 81",
                           "date": "2022-01-30T19:23:00+00:00", "source": "apnews.com"}
                          for i in range(5)]
    f = write(tmp_path / "a.jsonl", rows)
    assert stories_cli.run(parse(str(f), "--json")) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["ids"] for line in out.splitlines()] == [[f"a{i}" for i in range(5)]]
    said = [line for line in err.splitlines() if "placed in stories" in line]
    assert said[-1] == "newswatch: stories 100%: 5 of 5 articles placed in stories", err
    assert len(said) >= 2  # on the way, not only at the end


def test_a_key_the_stories_do_not_read_may_repeat_as_for_import(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The import line format: a repeated key other than the six fields is no bad line (it
    was for `stories` alone, and the same file imported whole)."""
    line = '{"id": "x9", "title": "Extra", "extra": 1, "extra": 2, "date": "2022-01-01"}'
    # an object inside the line may repeat one of the six fields' names too
    nested = ('{"id": "x8", "title": "Nested", "date": "2022-01-01", "meta": {"id": 1, "id": 2},'
              ' "tags": [{"source": "a", "source": "b"}]}')
    f = write(tmp_path / "a.jsonl", [ARTICLES[0], line, nested])
    assert stories_cli.run(parse(str(f), "--json")) == 0
    ids = [i for s in map(json.loads, capsys.readouterr().out.splitlines()) for i in s["ids"]]
    assert "x9" in ids and "x8" in ids


@pytest.mark.parametrize("date", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
async def test_a_date_past_the_calendar_in_utc_is_a_bad_line_for_import_too(
        tmp_path: Path, date: str) -> None:
    """A valid ISO 8601 date whose time in UTC is past either end of the calendar became the
    time the file was read here, and no date at all in `newswatch import`, without a word;
    every other date that cannot be one is a bad line. Both commands name it, by number."""
    from watchers.importer import import_file
    from watchers.rules import RuleSet
    from watchers.store import SqliteStore

    f = write(tmp_path / "a.jsonl", [ARTICLES[0], {"id": "y", "title": "t", "date": date}])
    done = nw(str(f))
    assert (done.returncode, done.stdout) == (2, "")
    assert f":2: 'date' {date} is out of range once made UTC" in done.stderr
    async with await SqliteStore.open(tmp_path / "nw.db") as store:
        summary = await import_file(store, f, ruleset=RuleSet([]))
    assert summary.imported == 1
    assert summary.bad_lines == ((2, f"'date' {date} is out of range once made UTC"),)
