"""A Markdown file's words in underscore emphasis (``_Russian Offensive Campaign_``,
``__NATO__``), as a user meets them: ``newswatch match`` on the file, and a watched folder
through ``run`` into the store and back out through ``search``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli import nw

BRIEF = "Morning brief\n\n_Russian Offensive Campaign_ and __NATO__ and *Kyiv*\n"


def test_match_finds_a_word_in_underscores_in_a_markdown_file(tmp_path: Path) -> None:
    (tmp_path / "brief.md").write_text(BRIEF, encoding="utf-8")
    for query, word in (("russian", "Russian"), ("nato", "NATO"), ("kyiv", "Kyiv"),
                        ('"offensive campaign"', "Offensive Campaign")):
        res = nw("match", query, "brief.md", "--json", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        rows = [json.loads(line) for line in res.stdout.splitlines()]
        assert [r["path"] for r in rows] == ["brief.md"], query
        assert [h["text"] for h in rows[0]["highlights"]] == [word], query


def test_a_watched_markdown_file_alerts_and_is_found_by_search(tmp_path: Path) -> None:
    (tmp_path / "drop").mkdir()
    (tmp_path / "drop" / "brief.md").write_text(BRIEF, encoding="utf-8")
    (tmp_path / "config.toml").write_text("""
[storage]
path = "nw.db"
[[sources]]
name = "drop"
type = "folder"
path = "drop"
every = "1m"
[[rules]]
name = "russia"
query = "russian"
[[rules]]
name = "alliance"
query = "nato"
""")
    run = nw("run", "--once", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    # One alert for the article, naming both rules, each word marked inside its emphasis.
    assert run.stdout.count("▶ ") == 1, run.stdout
    assert "▶ alliance, russia" in run.stdout and "matched: nato, russian" in run.stdout
    assert "_[Russian] Offensive Campaign_ and __[NATO]__" in run.stdout
    for query, word in (("russian", "Russian"), ("nato", "NATO")):
        res = nw("search", query, "--json", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        rows = [json.loads(line) for line in res.stdout.splitlines()]
        assert [r["title"] for r in rows] == ["Morning brief"], query
        assert word in [h["text"] for h in rows[0]["highlights"]], query
