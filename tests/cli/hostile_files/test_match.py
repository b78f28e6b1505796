"""`newswatch match` on a folder holding a huge file: the file is skipped, not read whole,
and the folder's other documents are matched."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.hostile_files._run import no_traceback, nw

pytestmark = pytest.mark.timeout(120)


def test_match_on_a_folder_with_a_huge_file_does_not_read_it_whole(tmp_path: Path) -> None:
    """A 3 GiB (sparse) .txt in the folder: match reads every file whole into memory
    (read_article_file has no size cap). Unlimited: 4.2 GB RSS and 16 s to say "binary";
    a 200 MB text file took 30 s and 5.9 GB. Under a 2.5 GB address-space limit: MemoryError
    and a traceback, and the other documents are never matched."""
    d = tmp_path / "docs"
    d.mkdir()
    (d / "a.txt").write_text("troops massing near the border\n")
    with open(d / "huge.txt", "wb") as fh:
        fh.truncate(3 * 1024**3)
    r = nw(["match", "troops", str(d)], cwd=tmp_path, timeout=60,
           mem_limit=int(2.5 * 1024**3))
    assert r.rc is not None, "match did not finish in 60 s"
    no_traceback(r)
    assert r.rc == 0, r.text
    assert "a.txt" in r.out, r.text


def test_match_on_a_file_that_blocks_its_reader_does_not_wait(tmp_path: Path) -> None:
    """A link to /proc/kmsg (a regular file to stat, size 0, whose read waits until the kernel
    logs something) named on the command line: match waited for ever. Now it is skipped with a
    reason (empty, or unreadable to a user who may not read it), and the other file is matched."""
    d = tmp_path / "docs"
    d.mkdir()
    (d / "a.txt").write_text("troops massing near the border\n")
    (d / "kmsg.txt").symlink_to("/proc/kmsg")
    r = nw(["match", "troops", str(d / "kmsg.txt"), str(d / "a.txt")], cwd=tmp_path,
           timeout=30)
    assert r.rc is not None, "match waited on /proc/kmsg"
    no_traceback(r)
    assert r.rc == 0, r.text
    assert "skipped" in r.err and "kmsg.txt" in r.err, r.text
    assert "a.txt" in r.out, r.text


def test_an_entry_that_cannot_be_looked_at_is_named_and_the_rest_matched(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A link in the folder the system refuses to look through (``/proc/1/cwd`` for most
    users: "Permission denied" from stat) ended `match` with that error alone: every other
    file's result was lost. The refusal is the system's, so it is made here by pathlib's
    stat refusing the one entry."""
    from bot import cli

    d = tmp_path / "docs"
    d.mkdir()
    (d / "a.txt").write_text("troops massing near the border\n")
    (d / "b.txt").write_text("troops again\n")
    (d / "bad.txt").symlink_to("/proc/1/cwd")
    real_is_file = Path.is_file

    def refused(self: Path) -> bool:
        if self.name == "bad.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return real_is_file(self)

    monkeypatch.setattr(Path, "is_file", refused)
    assert cli.main(["match", "troops", str(d)]) == 0
    out, err = capsys.readouterr()
    assert "a.txt" in out and "b.txt" in out
    assert f"skipped {d / 'bad.txt'}: Permission denied" in err


def test_a_name_that_is_not_utf8_is_shown_escaped_as_json_shows_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The bad byte was shown as a space: "x\\xffy.txt" read as a file named "x y.txt", and
    the path could not be copied back."""
    import os

    from bot import cli

    d = tmp_path / "docs"
    d.mkdir()
    with open(os.fsencode(d) + b"/x\xffy.txt", "wb") as fh:
        fh.write(b"troops massing near the border\n")
    assert cli.main(["match", "troops", str(d)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"{d}/x\\xffy.txt  score ")
