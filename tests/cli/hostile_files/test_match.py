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
