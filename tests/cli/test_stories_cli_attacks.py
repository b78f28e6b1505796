"""``newswatch stories`` given files that are not what it reads (in-process through ``run()``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot import stories_cli
from tests.stories.test_stories_cli import ARTICLES, parse


def test_a_json_array_spread_over_lines_is_named_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Its lines were named one by one as invalid JSON, twenty of them and "… and more"."""
    f = tmp_path / "a.jsonl"
    f.write_text(json.dumps(ARTICLES, indent=2), encoding="utf-8")
    assert stories_cli.run(parse(str(f), "--json")) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    assert f"{f} is a JSON array spread over lines, not JSON Lines" in captured.err
