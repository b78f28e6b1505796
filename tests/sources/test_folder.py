"""FolderSource, its config and the seeds convention."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, SEEDS
from watchers.config import FolderSourceConfig, parse_config
from watchers.errors import ConfigError, SourceError
from watchers.sources import folder as folder_module
from watchers.sources.folder import FolderSource, read_article_file, split_text_article


def test_date_prefix_is_metadata_not_text() -> None:
    title, text, published = split_text_article(" date 2022-01-24 Troops massed. More follows.")
    assert published == datetime(2022, 1, 24, tzinfo=UTC)
    assert "date" not in text and text.startswith("Troops massed.")
    assert title == "Troops massed."


def test_a_number_after_the_date_stays_text_and_a_time_of_day_is_read() -> None:
    title, text, published = split_text_article("date 2024-03-01 300 troops crossed\nat dawn.")
    assert (title, text) == ("300 troops crossed", "at dawn.")
    assert published == datetime(2024, 3, 1, tzinfo=UTC)
    assert split_text_article("date 2024-03-01 2024 was the year.")[0] == "2024 was the year."
    for prefix, when in [("date 2024-03-01T18:45:00Z", datetime(2024, 3, 1, 18, 45)),
                         ("date 2024-03-01 18:45", datetime(2024, 3, 1, 18, 45)),
                         ("DATE 2024-03-01t18:45+01:00", datetime(2024, 3, 1, 17, 45)),
                         ("date 2016-12-31T23:59:60Z", datetime(2017, 1, 1))]:
        title, text, published = split_text_article(f"{prefix} Troops\nMore.")
        assert (title, text) == ("Troops", "More."), prefix
        assert published == when.replace(tzinfo=UTC), prefix
    # not a day there is: the token stays in the text, and the article is undated
    title, _, published = split_text_article("date 2024-02-30 Troops\nMore.")
    assert (title, published) == ("date 2024-02-30 Troops", None)


def test_short_first_line_without_punctuation_is_the_title() -> None:
    title, text, _ = split_text_article("Putin Wants Guarantees\nThe Kremlin said on Monday.")
    assert title == "Putin Wants Guarantees"
    assert text == "The Kremlin said on Monday."


def test_long_first_sentence_is_cut_at_a_word_boundary() -> None:
    words = "word " * 80
    title, _, _ = split_text_article(words.strip() + ". Second sentence.")
    assert len(title) <= 161 and title.endswith("…")
    assert not title[:-1].endswith(" ") and title[:-1].split()[-1] == "word"


def test_every_seed_reads_with_a_title_and_the_dated_ones_have_dates() -> None:
    for path in sorted(SEEDS.glob("*.txt")):
        art = read_article_file(path, source="seeds")
        assert art.title and len(art.title) <= 161
        raw = path.read_text(encoding="utf-8")
        if raw.lstrip().startswith("date "):
            assert art.published is not None
            assert not art.text.lstrip().startswith("date ")


def test_json_and_markdown_articles(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({
        "title": "Kyiv talks", "text": "Body", "url": "https://example.org/a",
        "published": "2022-01-20T10:00:00Z"}))
    (tmp_path / "b.md").write_text("# Heading here\nSome body text.")
    a = read_article_file(tmp_path / "a.json")
    assert (a.title, a.url, a.published) == (
        "Kyiv talks", "https://example.org/a", datetime(2022, 1, 20, 10, tzinfo=UTC))
    b = read_article_file(tmp_path / "b.md")
    assert b.title == "Heading here" and b.text == "Some body text."
    # a leap second is the second after, as in feeds (it left the article undated)
    (tmp_path / "c.json").write_text(json.dumps({"title": "Leap", "published":
                                                 "2016-12-31T23:59:60Z"}))
    assert read_article_file(tmp_path / "c.json").published == datetime(2017, 1, 1, tzinfo=UTC)
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(SourceError, match=r"bad\.json: invalid JSON"):
        read_article_file(tmp_path / "bad.json")


def test_a_date_whose_utc_offset_no_zone_has_is_unknown(tmp_path: Path) -> None:
    """"+15:00" was taken as a zone, and the article dated a day early."""
    (tmp_path / "a.json").write_text(json.dumps({"title": "Odd zone", "published":
                                                 "2022-02-01T10:00:00+15:00"}))
    assert read_article_file(tmp_path / "a.json").published is None
    title, _, published = split_text_article("date 2022-02-01T10:00+14:60\nTroops\nBody.")
    assert published is None and title == "date 2022-02-01T10:00+14:60"  # kept as written
    (tmp_path / "b.json").write_text(json.dumps({"title": "Kiritimati", "published":
                                                 "2022-02-01T10:00:00+14:00"}))
    assert read_article_file(tmp_path / "b.json").published == datetime(2022, 1, 31, 20,
                                                                         tzinfo=UTC)


async def test_folder_notices_new_and_changed_files_only(tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_text("First story\nTroops moved.")
    src = FolderSource("f", tmp_path)
    p1 = await src.poll({})
    assert [a.title for a in p1.articles] == ["First story"]
    assert (await src.poll(p1.cursor)).articles == []
    (tmp_path / "two.txt").write_text("Second story\nTalks resumed.")
    (tmp_path / "ignored.csv").write_text("x")
    p2 = await src.poll(p1.cursor)
    assert [a.title for a in p2.articles] == ["Second story"]
    (tmp_path / "one.txt").write_text("First story\nTroops moved again, many more.")
    st = (tmp_path / "one.txt").stat()
    os.utime(tmp_path / "one.txt", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    p3 = await src.poll(p2.cursor)
    assert [a.text for a in p3.articles] == ["Troops moved again, many more."]
    assert p3.articles[0].guid != p1.articles[0].guid


@pytest.mark.parametrize("how", ["moved over it", "rewritten in place"])
async def test_a_file_replaced_by_one_of_the_same_size_and_time_is_read_again(
        tmp_path: Path, how: str) -> None:
    """The cursor knew a file by its modification time and size: another file of the same
    length given the same time (``cp -p``, ``touch -r``, an archive unpacked, then ``mv``) was
    never read, the store keeping the old text for good."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    article = inbox / "a.txt"
    article.write_text("Troops cross river\nTroops crossed the river at dawn.\n")
    os.utime(article, ns=(10**18, 10**18))
    src = FolderSource("f", inbox, settle=timedelta(0))
    p1 = await src.poll({})
    assert [a.title for a in p1.articles] == ["Troops cross river"]
    assert (await src.poll(p1.cursor)).articles == []
    if how == "moved over it":
        other = tmp_path / "new.txt"
        other.write_text("Troops cross ocean\nTroops crossed the ocean at dawn.\n")
        os.utime(other, ns=(10**18, 10**18))
        other.replace(article)
    else:
        article.write_text("Troops cross ocean\nTroops crossed the ocean at dawn.\n")
        os.utime(article, ns=(10**18, 10**18))
    assert article.stat().st_size == len("Troops cross river\nTroops crossed the river at dawn.\n")
    p2 = await src.poll(p1.cursor)
    assert [a.title for a in p2.articles] == ["Troops cross ocean"]
    assert (await src.poll(p2.cursor)).articles == []


async def test_a_cursor_of_the_earlier_form_reads_no_unchanged_file_again(tmp_path: Path
                                                                          ) -> None:
    """Cursors stored before versions held the inode and change time ("mtime_ns:size") still
    mean the file was read: an upgrade reads no folder again."""
    (tmp_path / "one.txt").write_text("First story\nTroops moved.")
    st = (tmp_path / "one.txt").stat()
    src = FolderSource("f", tmp_path, settle=timedelta(0))
    assert (await src.poll({"one.txt": f"{st.st_mtime_ns}:{st.st_size}"})).articles == []
    assert [a.title for a in (await src.poll({"one.txt": "1:2"})).articles] == ["First story"]


async def test_missing_folder_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        await FolderSource("f", tmp_path / "nope").poll({})


# ---------------------------------------------------------------------------------------------
# Watched folders are hostile ground: links out, huge or binary files, half-written files and
# names that are not text.


def write_bytes_at(path: bytes, data: bytes, *, mode: str = "wb") -> None:
    """Write to a path given as bytes (a name that is not UTF-8) or append to one."""
    with open(path, mode) as f:
        f.write(data)


def instant(path: Path, **kw: Any) -> FolderSource:
    """A folder source that reads what it finds at once (no second look)."""
    return FolderSource("drop", path, settle=timedelta(0), **kw)


async def test_symlinks_out_of_the_folder_are_not_followed(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    secret = tmp_path / "bot.env"
    secret.write_text("DISCORD_TOKEN=s3cr3t-token\n")
    (folder / "env.txt").symlink_to(secret)
    (folder / "up.txt").symlink_to(Path("..") / "bot.env")
    if os.path.exists("/proc/self/environ"):  # noqa: ASYNC240 - a test's setup
        (folder / "proc.txt").symlink_to("/proc/self/environ")
    (folder / "real.txt").write_text("Real story\nTroops moved.")
    (folder / "inside.txt").symlink_to("real.txt")
    (folder / "sub").mkdir()
    (folder / "sub" / "deep.md").symlink_to(Path("..") / "real.txt")
    poll = await instant(folder).poll({})
    assert sorted(a.guid.split("#")[0] for a in poll.articles if a.guid) == [
        "inside.txt", "real.txt", "sub/deep.md"]
    assert not any("s3cr3t" in a.text or "s3cr3t" in a.title for a in poll.articles)
    links_out = {"env.txt", "up.txt"} | ({"proc.txt"} if (folder / "proc.txt").exists() else set())
    assert {s.split("'")[1] for s in poll.skipped} == links_out
    assert all("outside the folder" in s for s in poll.skipped)
    # Each skipped version is reported once, not on every poll.
    again = await instant(folder).poll(poll.cursor)
    assert again.articles == [] and again.skipped == ()


async def test_entries_that_cannot_be_read_are_named_once_not_at_every_poll(
        tmp_path: Path) -> None:
    """A dangling link, a loop of links and a folder nested too deep to list were warned
    about at every poll (every 30 s, for ever), and counted as skipped each time."""
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "dangling.txt").symlink_to("nowhere.txt")
    (folder / "loop1.txt").symlink_to("loop2.txt")
    (folder / "loop2.txt").symlink_to("loop1.txt")
    (folder / "ok.txt").write_text("Fine\nTroops moved.")
    # Nested past the longest path the system lists (by folder handles, as no path can say).
    fd = os.open(folder, os.O_RDONLY)
    try:
        for _ in range(20):
            os.mkdir("d" * 250, dir_fd=fd)
            inner = os.open("d" * 250, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
    finally:
        os.close(fd)
    poll = await instant(folder).poll({})
    assert [a.title for a in poll.articles] == ["Fine"]
    named = sorted(s.split(":")[0] for s in poll.skipped)
    assert named[:3] == ["file 'dangling.txt'", "file 'loop1.txt'", "file 'loop2.txt'"]
    assert any(s.startswith("folder ") and "cannot list" in s for s in poll.skipped)
    again = await instant(folder).poll(poll.cursor)
    assert again.articles == [] and again.skipped == ()
    # a link mended is read
    (folder / "nowhere.txt").write_text("Mended\nTroops again.")
    mended = await instant(folder).poll(again.cursor)
    assert sorted(a.title for a in mended.articles) == ["Mended", "Mended"]  # link and file


async def test_a_file_whose_path_is_too_long_to_name_is_named_once(tmp_path: Path) -> None:
    """A file in a folder that can still be listed, but whose own path is longer than the
    system can name: its lstat failed (ENAMETOOLONG) and it was taken for one deleted since
    the listing, never read and never named. It is named once, as an unreadable file is."""
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "ok.txt").write_text("Fine\nTroops moved.")
    fd = os.open(folder, os.O_RDONLY)
    try:
        depth = (4096 - len(str(folder))) // 201  # the folder's path just under the limit
        for _ in range(depth):
            os.mkdir("e" * 200, dir_fd=fd)
            inner = os.open("e" * 200, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        made = os.open("u" * 200 + ".txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(made, b"Deep\nTroops hidden deep.")
        os.close(made)
    finally:
        os.close(fd)
    poll = await instant(folder).poll({})
    assert [a.title for a in poll.articles] == ["Fine"]
    (said,) = poll.skipped
    assert said.startswith("file 'eee") and said.endswith("cannot read (File name too long)")
    again = await instant(folder).poll(poll.cursor)
    assert again.articles == [] and again.skipped == ()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to poll as a user the folder shuts out")
def test_a_folder_that_cannot_be_listed_is_a_failing_source() -> None:
    """It counted as a good poll of nothing: no failure, no backoff, no pause, no notice; only
    a log line at every poll."""
    script = ("import asyncio, sys\n"
              "from datetime import timedelta\n"
              "from watchers.errors import SourceError\n"
              "from watchers.sources.folder import FolderSource\n"
              "from pathlib import Path\n"
              "src = FolderSource('drop', Path(sys.argv[1]), settle=timedelta(0))\n"
              "try:\n"
              "    asyncio.run(src.poll({}))\n"
              "    print('polled')\n"
              "except SourceError as exc:\n"
              "    print('failed:', exc)\n")
    with tempfile.TemporaryDirectory(prefix="newswatch-shut-") as base:
        Path(base).chmod(0o755)
        folder = Path(base) / "drop"
        folder.mkdir()
        (folder / "a.txt").write_text("Title\nTroops.")
        folder.chmod(0o000)
        as_nobody = ["setpriv", "--reuid=54321", "--regid=54321", "--clear-groups",
                     sys.executable]
        reach = subprocess.run([*as_nobody, "-c", "import watchers"], capture_output=True,
                               cwd=REPO, timeout=60)
        if reach.returncode != 0:
            pytest.skip("the project's folder or interpreter is not readable by other users")
        r = subprocess.run([*as_nobody, "-c", script, str(folder)], capture_output=True,
                           text=True, cwd=REPO, timeout=60)
        folder.chmod(0o755)
    assert r.stdout.strip() == f"failed: cannot list folder {folder}: Permission denied", (
        r.stdout + r.stderr)


async def test_oversize_file_is_skipped_without_being_read(tmp_path: Path) -> None:
    (tmp_path / "small.txt").write_text("Small story\nFits.")
    # Sparse, so it costs no disk; a source that read it would hold 64 MiB for nothing.
    (tmp_path / "huge.txt").write_bytes(b"")
    os.truncate(tmp_path / "huge.txt", 64 * 1024**2)
    (tmp_path / "edge.txt").write_bytes(b"Edge story\n" + b"x" * (1000 - 11))
    poll = await instant(tmp_path, max_file_size=1000).poll({})
    assert sorted(a.title for a in poll.articles) == ["Edge story", "Small story"]
    assert len(poll.skipped) == 1 and "'huge.txt'" in poll.skipped[0]
    assert "over the limit of 1000" in poll.skipped[0]


async def test_binary_files_are_skipped_and_legacy_text_is_read(tmp_path: Path) -> None:
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))
    (tmp_path / "noise.md").write_bytes(bytes(range(1, 32)) * 40)
    (tmp_path / "legacy.txt").write_bytes("Café story\nTroops “moved”.".encode("cp1252"))
    poll = await instant(tmp_path).poll({})
    assert [a.title for a in poll.articles] == ["Café story"]
    assert poll.articles[0].text == "Troops “moved”."
    assert sorted(s.split("'")[1] for s in poll.skipped) == ["image.txt", "noise.md"]
    assert all("binary" in s for s in poll.skipped)


async def test_a_file_written_in_two_steps_alerts_once_with_its_whole_content(
    tmp_path: Path,
) -> None:
    target = tmp_path / "story.txt"
    target.write_text("Troops spotted\nThe first half of the ")

    async def writer_finishes_between_looks(seconds: float) -> None:
        write_bytes_at(os.fsencode(target), b"report, and the second half.", mode="ab")

    # A long settle keeps the file "fresh" however slow the machine; the seam does not wait.
    src = FolderSource("drop", tmp_path, settle=timedelta(seconds=30),
                       sleep=writer_finishes_between_looks)
    first = await src.poll({})
    assert first.articles == [] and first.skipped == ()
    # The writer is done: the next poll reads the whole file (the real wait, kept short).
    second = await FolderSource("drop", tmp_path, settle=timedelta(milliseconds=20)).poll(
        first.cursor)
    assert [a.text for a in second.articles] == [
        "The first half of the report, and the second half."]


async def test_a_dropped_file_alerts_in_the_first_poll_after_settling(tmp_path: Path) -> None:
    looks: list[float] = []

    async def wait(seconds: float) -> None:
        looks.append(seconds)

    (tmp_path / "new.txt").write_text("Fresh story\nJust dropped.")
    poll = await FolderSource("drop", tmp_path, settle=timedelta(seconds=30), sleep=wait).poll({})
    assert [a.title for a in poll.articles] == ["Fresh story"]
    assert looks == [30.0]  # it was looked at twice, settle apart, within this one poll
    # A file last changed long ago needs no second look.
    old = time.time() - 3600
    os.utime(tmp_path / "new.txt", (old, old))
    looks.clear()
    poll = await FolderSource("drop", tmp_path, settle=timedelta(seconds=1), sleep=wait).poll({})
    assert [a.title for a in poll.articles] == ["Fresh story"] and looks == []


async def test_file_names_cannot_forge_log_lines(tmp_path: Path) -> None:
    (tmp_path / "a\nWARNING forged.txt").write_text("Newline name\nStill read.")
    (tmp_path / "b\nx.txt").write_bytes(b"\x00binary")
    poll = await instant(tmp_path).poll({})
    assert [a.title for a in poll.articles] == ["Newline name"]
    # What the service logs for a skipped file is one line, the newline shown as an escape.
    assert len(poll.skipped) == 1 and "'b\\nx.txt': binary" in poll.skipped[0]
    assert "\n" not in poll.skipped[0]


async def test_undecodable_names_and_surrogates_in_json_do_not_stop_the_folder(
    tmp_path: Path,
) -> None:
    try:
        os.mkdir(os.fsencode(tmp_path) + b"/dir\xff")
    except OSError:
        pytest.skip("this filesystem only takes UTF-8 names")
    for name in (b"bad\xff.txt", b"dir\xff/inner.txt"):
        write_bytes_at(os.fsencode(tmp_path) + b"/" + name, b"Hidden name\nText.")
    (tmp_path / "lone.json").write_text(
        '{"title": "Lone \\ud800 surrogate", "text": "Body\\u0000 \\udc00", '
        '"published": "0001-01-01T00:00:00+01:00"}')
    (tmp_path / "good.txt").write_text("Good story\nRead.")
    poll = await instant(tmp_path).poll({})
    assert sorted(a.title for a in poll.articles) == ["Good story", "Lone \ufffd surrogate"]
    lone = next(a for a in poll.articles if a.title.startswith("Lone"))
    assert lone.text == "Body  \ufffd" and lone.published is None  # NUL: a word break
    assert len(poll.skipped) == 2 and all("not UTF-8" in s for s in poll.skipped)
    assert all("\\udcff" in s for s in poll.skipped)  # shown as an escape
    for text in (*poll.skipped, json.dumps(dict(poll.cursor))):
        text.encode("utf-8")  # storable, and printable in a log
    # named once, as any file left out, not again at every poll
    again = await instant(tmp_path).poll(poll.cursor)
    assert again.skipped == () and again.articles == []


async def test_an_unreadable_file_is_skipped_once_until_it_changes(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "good.txt").write_text("Good story\nRead.")
    src = instant(tmp_path)
    first = await src.poll({})
    assert [a.title for a in first.articles] == ["Good story"]
    assert len(first.skipped) == 1 and "'bad.json': invalid JSON" in first.skipped[0]
    assert (await src.poll(first.cursor)).skipped == ()
    (tmp_path / "bad.json").write_text('{"title": "Fixed", "text": "Now valid."}')
    st = (tmp_path / "bad.json").stat()
    os.utime(tmp_path / "bad.json", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert [a.title for a in (await src.poll(first.cursor)).articles] == ["Fixed"]


async def test_a_file_without_read_permission_is_named_once_and_read_once_allowed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It was named at every poll (every 30 s) and the health's skipped count grew for ever.
    Permission given later changes the file's ctime only: it is read then."""
    locked = tmp_path / "locked.txt"
    locked.write_text("Locked story\nText.")
    real_open = os.open
    denied = {str(locked)}

    def guarded(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if str(path) in denied:
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", guarded)
    src = instant(tmp_path)
    first = await src.poll({})
    assert first.articles == [] and len(first.skipped) == 1
    assert "cannot read (Permission denied)" in first.skipped[0]
    second = await src.poll(first.cursor)
    assert second.skipped == () and second.articles == []
    denied.clear()
    before = locked.stat().st_ctime_ns
    while locked.stat().st_ctime_ns == before:  # a coarse clock may need a moment
        await asyncio.sleep(0.01)
        os.chmod(locked, 0o644)  # granting permission: a new ctime, same mtime and size
    third = await src.poll(second.cursor)
    assert [a.title for a in third.articles] == ["Locked story"] and third.skipped == ()


@pytest.mark.parametrize(("value", "expected"), [
    (2048, 2048), ("512KB", 512_000), ("1MiB", 1024**2), ("1.5 MB", 1_500_000), ("10b", 10)])
def test_max_file_size_accepts_bytes_and_units(
    tmp_path: Path, value: str | int, expected: int
) -> None:
    cfg = parse_config({"sources": [
        {"type": "folder", "name": "d", "path": ".", "max_file_size": value}]}, base_dir=tmp_path)
    source = cfg.sources[0]
    assert isinstance(source, FolderSourceConfig) and source.max_file_size == expected


@pytest.mark.parametrize(("entry", "message"), [
    ({"max_file_size": "1XB"}, r"sources\[0\]\.max_file_size: '1XB' is not a size"),
    ({"max_file_size": 0}, r"sources\[0\]\.max_file_size: .*between 1 byte and 1GiB"),
    ({"max_file_size": "2GiB"}, r"sources\[0\]\.max_file_size: .*between 1 byte and 1GiB"),
    ({"max_file_size": True}, r"sources\[0\]\.max_file_size: expected a size"),
    ({"settle": "soon"}, r"sources\[0\]\.settle: 'soon' is not a duration"),
])
def test_folder_config_errors_name_the_key(
    tmp_path: Path, entry: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"sources": [{"type": "folder", "name": "d", "path": ".", **entry}]},
                     base_dir=tmp_path)


@pytest.mark.parametrize("value", ["0s", "0", 0, timedelta(0)])
def test_settle_zero_reads_at_once(tmp_path: Path, value: object) -> None:
    source = parse_config({"sources": [
        {"type": "folder", "name": "d", "path": ".", "settle": value}]}, base_dir=tmp_path)
    assert isinstance(folder := source.sources[0], FolderSourceConfig)
    assert folder.settle == timedelta(0)


def test_folder_defaults(tmp_path: Path) -> None:
    source = parse_config({"sources": [{"type": "folder", "name": "d", "path": "."}]},
                          base_dir=tmp_path).sources[0]
    assert isinstance(source, FolderSourceConfig)
    assert (source.every, source.settle, source.max_file_size) == (
        timedelta(seconds=30), timedelta(seconds=1), 1024 * 1024)


@pytest.mark.parametrize(("doc", "said"), [
    ({"title": ["Troops"], "text": "troops"}, "'title' must be a string, not a list"),
    ({"title": "Troops", "text": {"a": "troops"}}, "'text' must be a string, not an object"),
    ({"title": "Troops", "content": 5}, "'content' must be a string, not a number"),
    # a number too long for int() was kept as its digits, and passed for a string
    ({"title": "Troops", "text": 7 * 10 ** 4000 + 7}, "'text' must be a string, not a number"),
])
async def test_a_json_article_whose_fields_are_not_text_is_skipped_by_name(
        tmp_path: Path, doc: dict[str, object], said: str) -> None:
    """Such a title was stored as Python spells the list ("['Troops']") and matched as that."""
    (tmp_path / "c.json").write_text(json.dumps(doc))
    (tmp_path / "good.json").write_text(json.dumps({"title": "Good", "text": "Fine."}))
    poll = await instant(tmp_path).poll({})
    assert [a.title for a in poll.articles] == ["Good"]
    assert len(poll.skipped) == 1 and f"'c.json': {said}" in poll.skipped[0], poll.skipped


def test_a_file_is_binary_exactly_when_control_bytes_are_over_a_tenth_of_its_head() -> None:
    # The verdict at and around the threshold, for every control byte but NUL (one of which
    # makes a file binary on its own) and the four that are text (tab, newline, form feed,
    # carriage return), in heads shorter and longer than the part looked at (8 KiB): a count
    # of the control bytes, one by one, gives the verdict.
    import random

    from watchers.sources.folder import decode_text

    rng = random.Random(7)
    control = [b for b in range(1, 0x20) if b not in (0x09, 0x0A, 0x0C, 0x0D)] + [0x7F]
    text_bytes = [0x09, 0x0A, 0x0C, 0x0D, *range(0x20, 0x7F)]
    sniff = 8192
    checked = {True: 0, False: 0}
    for size in (1, 9, 10, 11, 99, 100, 101, 1000, sniff - 1, sniff, sniff + 500):
        head_size = min(size, sniff)
        for controls in {0, 1, head_size // 10, head_size // 10 + 1, head_size // 2}:
            if controls > head_size:
                continue
            data = [rng.choice(text_bytes) for _ in range(size)]
            for at in rng.sample(range(head_size), controls):
                data[at] = rng.choice(control)
            raw = bytes(data)
            counted = sum(1 for b in raw[:sniff] if b in control)
            binary = counted * 10 > head_size
            assert (decode_text(raw) is None) is binary, (size, controls)
            checked[binary] += 1
    assert checked[True] > 10 and checked[False] > 10


@pytest.mark.parametrize("length", [0, 1, 4096, 65535, 65536, 65537, 300_000])
def test_a_file_is_read_whole_or_to_its_cap_whatever_size_it_said_it_had(
    tmp_path: Path, length: int
) -> None:
    # read_fd is told the size fstat gave; a file that grew or shrank since (a stale size) is
    # still read to its end or to the cap, never short of either and never past the cap.
    from watchers.sources.folder import read_fd

    data = os.urandom(length)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    for said in {0, 1, length // 2, length, length + 1, 10 * length + 7}:
        for most in {None, 1, length // 3 + 1, length, length + 1, 70_000}:
            fd = os.open(path, os.O_RDONLY)
            try:
                got = read_fd(fd, said, most)
            finally:
                os.close(fd)
            assert got == (data if most is None else data[:most]), (said, most)


class _SwappedAtLook(FolderSource):
    """A source of ``folder`` whose subfolder ``sub`` is moved to ``kept`` and replaced by a
    link to ``outside`` just before the source looks at its file ``a.txt`` (after it resolved
    the subfolder's path): the race a hostile writer of the watched folder can run."""

    def __init__(self, folder: Path, outside: Path, kept: Path) -> None:
        super().__init__("drop", folder, settle=timedelta(0))
        self.outside, self.kept = outside, kept
        self.swapped = False

    def _look(self, root: str, real_top: str, path: str, cursor: Any, scan: Any) -> None:
        if path.endswith(os.sep + "a.txt") and not self.swapped:
            os.rename(self.path / "sub", self.kept)
            (self.path / "sub").symlink_to(self.outside, target_is_directory=True)
            self.swapped = True
        super()._look(root, real_top, path, cursor, scan)


@pytest.mark.parametrize("proc", [True, False], ids=["proc", "no-proc"])
async def test_a_folder_swapped_for_a_link_out_while_it_is_scanned_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, proc: bool
) -> None:
    # The race a hostile writer of the watched folder can run: a subfolder replaced by a link
    # to a folder outside, between the look at the subfolder's path and the look at a file in
    # it. The file found there is outside the watched folder; it is not read (nor stored), and
    # is named as replaced. Where the system gives no path of an open file (no /proc), the
    # path is resolved again instead.
    if not proc:
        monkeypatch.setattr(folder_module, "_opened_path", lambda fd: None)
    folder = tmp_path / "drop"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_text("Inside story\nTroops moved.")
    (folder / "b.txt").write_text("Another story\nTalks began.")
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "a.txt").write_text("DISCORD_TOKEN=s3cr3t-token\nsecret")
    raced = _SwappedAtLook(folder, outside, tmp_path / "sub-old")
    poll = await raced.poll({})
    assert raced.swapped
    assert [a.title for a in poll.articles] == ["Another story"]
    assert not any("s3cr3t" in a.text or "s3cr3t" in a.title for a in poll.articles)
    assert len(poll.skipped) == 1 and "'sub/a.txt'" in poll.skipped[0], poll.skipped
    # Not remembered as skipped: once the link is in place the walk does not enter it.
    again = await instant(folder).poll(poll.cursor)
    assert again.articles == [] and again.skipped == ()


class _ChangedBeforeRead(FolderSource):
    """A folder source that runs ``change`` once it has looked at the files and before it
    reads them (what a writer of the folder may do at any moment)."""

    def __init__(self, path: Path, change: Any) -> None:
        super().__init__("drop", path, settle=timedelta(0), max_file_size=1000)
        self.change = change

    def _read_all(self, candidates: Any, scan: Any) -> Any:
        self.change()
        return super()._read_all(candidates, scan)


async def test_a_file_that_grows_past_the_cap_before_it_is_read_is_named_and_not_read(
    tmp_path: Path,
) -> None:
    (tmp_path / "grows.txt").write_text("Growing story\nTroops moved.")
    (tmp_path / "stays.txt").write_text("Steady story\nTalks began.")

    def grow() -> None:
        with (tmp_path / "grows.txt").open("a") as fh:
            fh.write("x" * 5000)

    poll = await _ChangedBeforeRead(tmp_path, grow).poll({})
    assert [a.title for a in poll.articles] == ["Steady story"]
    assert poll.skipped == ("file 'grows.txt': grew over the limit of 1000 bytes",)
    # Its new version is over the cap too: named once more (it changed), then no more.
    again = await instant(tmp_path, max_file_size=1000).poll(poll.cursor)
    assert again.articles == [] and len(again.skipped) == 1
    assert "over the limit of 1000" in again.skipped[0]
    third = await instant(tmp_path, max_file_size=1000).poll(again.cursor)
    assert third.articles == [] and third.skipped == ()


async def test_a_file_replaced_before_it_is_read_is_read_again_at_the_next_poll(
    tmp_path: Path,
) -> None:
    (tmp_path / "story.txt").write_text("First story\nTroops moved.")

    def replace() -> None:
        (tmp_path / "new.tmp").write_text("Second story\nTalks began.")
        os.replace(tmp_path / "new.tmp", tmp_path / "story.txt")

    poll = await _ChangedBeforeRead(tmp_path, replace).poll({})
    assert poll.articles == []
    assert poll.skipped == ("file 'story.txt': replaced while being read",)
    # Not remembered: the file in its place is read at the next poll.
    again = await instant(tmp_path).poll(poll.cursor)
    assert [a.title for a in again.articles] == ["Second story"] and again.skipped == ()


async def test_a_file_the_kernel_names_otherwise_is_read_when_its_path_leads_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kernel's path of an open file may name the watched folder otherwise than its config
    # does (a case-insensitive file system may give the case on disk): a file whose path,
    # resolved again, leads inside and to the very file opened is read all the same.
    (tmp_path / "story.txt").write_text("Kept story\nTroops moved.")
    monkeypatch.setattr(folder_module, "_opened_path",
                        lambda fd: "/ELSEWHERE/" + tmp_path.name.upper() + "/story.txt")
    poll = await instant(tmp_path).poll({})
    assert [a.title for a in poll.articles] == ["Kept story"] and poll.skipped == ()


async def test_without_proc_a_folder_swapped_back_after_the_open_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race of the test above run further, where there is no /proc: the subfolder is a
    # link out while the file is looked at and opened, and is put back just after the open.
    # Its path then leads inside again, but to another file than the one opened: not read.
    folder = tmp_path / "drop"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_text("Inside story\nTroops moved.")
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "a.txt").write_text("DISCORD_TOKEN=s3cr3t-token\nsecret")
    kept = tmp_path / "sub-kept"

    def swap_back(fd: int) -> None:  # just after the open, where the kernel would be asked
        (folder / "sub").unlink()
        os.rename(kept, folder / "sub")

    monkeypatch.setattr(folder_module, "_opened_path", swap_back)
    poll = await _SwappedAtLook(folder, outside, kept).poll({})
    assert poll.articles == [], [a.title for a in poll.articles]
    assert poll.skipped == ("file 'sub/a.txt': replaced while being read",)


@pytest.mark.parametrize("codec", ["utf-32", "utf-32-le", "utf-32-be", "utf-16", "utf-8-sig"])
def test_a_file_with_a_byte_order_mark_is_read_in_its_encoding(codec: str) -> None:
    """UTF-32's little-endian mark starts as UTF-16's: such a file was read as UTF-16, every
    letter followed by a NUL (" T r o o p s"), and no rule matched it."""
    from watchers.sources.folder import decode_text

    text = "Troops in Київ\nThe file's text, written in another encoding."
    data = text.encode(codec)
    if codec in ("utf-32-le", "utf-32-be"):
        data = ("\ufeff" + text).encode(codec)  # the mark, written by hand
    assert decode_text(data) == text
    assert decode_text(b"\xff\xfe\x00\x00\x00\xd8\x00\x00") is None  # not UTF-32 after all
