"""``newswatch import`` given files that are not what it reads: through the real command line,
with a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import nw
from tests.cli.test_import import CONFIG, GOOD


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "config.toml").write_text(CONFIG)
    return tmp_path


@pytest.mark.parametrize(("text", "says"), [
    (json.dumps(GOOD, indent=2), "is a JSON array spread over lines, not JSON Lines (one "
                                 "object a line): convert it first (e.g. jq -c '.[]' FILE > "
                                 "NEW)"),
    # what `jq '.[]' export.json` writes: objects one after another, each over lines
    ("\n".join(json.dumps(g, indent=4) for g in GOOD),
     "is JSON objects spread over lines, not JSON Lines (one object a line): convert it first "
     "(e.g. jq -c . FILE > NEW)"),
    ("\ufeff[\r\n" + ",\r\n".join(json.dumps(g) for g in GOOD) + "\r\n]",
     "is a JSON array spread over lines"),
])
def test_a_json_document_spread_over_lines_is_named_as_such_not_line_by_line(
        workdir: Path, text: str, says: str) -> None:
    """Each of its lines was named in turn as invalid JSON ("Expecting property name enclosed
    in double quotes", "Extra data"), a hundred of them, and nothing imported."""
    (workdir / "h.jsonl").write_text(text, encoding="utf-8")
    res = nw("import", "h.jsonl", "-c", "config.toml", cwd=workdir)
    assert res.returncode == 1, res.stderr
    assert res.stderr.count("\n") == 1, res.stderr
    assert f"h.jsonl {says}" in res.stderr, res.stderr


def test_json_lines_whose_first_line_is_a_whole_array_are_read(workdir: Path) -> None:
    """Only a line that holds nothing but the bracket is the start of a spread document: a
    first line that is a whole array is one bad line, and the rest are read."""
    (workdir / "h.jsonl").write_text("[1, 2]\n" + "".join(json.dumps(g) + "\n" for g in GOOD),
                                     encoding="utf-8")
    res = nw("import", "h.jsonl", "-c", "config.toml", cwd=workdir)
    assert res.returncode == 1, res.stderr
    assert "h.jsonl:1: expected a JSON object, got a list" in res.stderr, res.stderr
    assert f"imported {len(GOOD)}" in res.stderr, res.stderr
