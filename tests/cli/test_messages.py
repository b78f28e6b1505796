"""What the command says when it is used the wrong way, read as a new user reads it: each
message names the problem, where it is, and what to do (a subprocess, real files)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bot.cli_config import config_path
from tests.cli.test_cli import nw
from tests.conftest import REPO, SEEDS
from watchers.errors import ConfigError


def test_a_truncated_json_line_is_named_in_a_whole_sentence(tmp_path: Path) -> None:
    """"invalid JSON at column 22: Unterminated string starting at" stopped mid-sentence."""
    (tmp_path / "u.jsonl").write_text('{"id": "x", "title": "abc')
    (tmp_path / "config.toml").write_text('[storage]\npath = "nw.db"\n')
    for command in (["stories", "u.jsonl"], ["import", "u.jsonl"]):
        res = nw(*command, cwd=tmp_path)
        assert ("u.jsonl:1: invalid JSON: Unterminated string starting at column 22"
                in res.stderr), res.stderr


def test_an_unknown_source_type_names_the_type_at_its_key(tmp_path: Path) -> None:
    """The whole table was printed as the "type", at the source's path."""
    (tmp_path / "config.toml").write_text(
        '[[sources]]\nname = "s"\ntype = "ftp"\nurl = "ftp://ex.org/"\n')
    res = nw("check", cwd=tmp_path)
    assert res.returncode == 2
    assert "sources[0].type: unknown source type 'ftp'; expected 'folder', 'feed' or 'page'" in (
        res.stderr), res.stderr
    assert "'name'" not in res.stderr


def test_no_config_file_says_which_files_were_looked_for(tmp_path: Path) -> None:
    for command in (["check"], ["search", "troops"], ["run", "--once"]):
        res = nw(*command, cwd=tmp_path)
        assert res.returncode == 2, res.stderr
        assert ("no config file here: neither config.toml nor config.example.toml (give one "
                "with -c FILE)") in res.stderr


def test_match_without_a_query_asks_for_the_query_alone(tmp_path: Path) -> None:
    """argparse listed PATH as required too, though the paths default to seeds/."""
    res = nw("match", cwd=tmp_path)
    assert res.returncode == 2
    assert "the following arguments are required: query\n" in res.stderr, res.stderr


def test_console_says_it_is_why_alerts_go_to_the_terminal(tmp_path: Path) -> None:
    """With a token in the environment, --console said there was no token."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    (tmp_path / "config.toml").write_text(
        '[storage]\npath = "nw.db"\n[[sources]]\nname = "seeds"\ntype = "folder"\n'
        'path = "seeds"\nsettle = "0s"\n[[rules]]\nname = "t"\nquery = "troops"\n')
    res = nw("run", "--console", "--once", cwd=tmp_path,
             env={"DISCORD_TOKEN": "not-a-real-token"})
    assert res.returncode == 0, res.stderr
    assert "--console: alerts go to this terminal" in res.stderr
    assert "no Discord token" not in res.stderr
    assert "not-a-real-token" not in res.stderr + res.stdout


def test_stories_reads_a_byte_order_mark_at_the_start_of_any_line(tmp_path: Path) -> None:
    """Two Windows exports joined put a byte order mark at the start of a later line: it was
    a bad line for `stories` (and `import`), "Unexpected UTF-8 BOM"."""
    import json

    line = {"id": "a", "title": "Troops mass at the border", "date": "2022-01-20T10:00:00Z"}
    (tmp_path / "s.jsonl").write_text(
        "\ufeff" + json.dumps(line) + "\n" + "\ufeff" + json.dumps({**line, "id": "b"}) + "\n",
        encoding="utf-8")
    res = nw("stories", "s.jsonl", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert sorted(i for s in map(json.loads, res.stdout.splitlines()) for i in s["ids"]) == [
        "a", "b"]


def test_stories_names_an_id_with_a_lone_surrogate_instead_of_a_repeat(tmp_path: Path) -> None:
    """Made printable, "a\\ud800" and "a\\udc00" were one id: the file was refused for a repeat
    ("'id' 'a\ufffd' repeats line 1") it does not hold."""
    (tmp_path / "s.jsonl").write_text(
        '{"id": "a\\ud800", "title": "One", "date": "2022-01-20"}\n'
        '{"id": "a\\udc00", "title": "Two", "date": "2022-01-20"}\n', encoding="utf-8")
    res = nw("stories", "s.jsonl", "--json", cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert ("s.jsonl:1: 'id' holds a NUL or a lone surrogate ('a\\ud800'), which --json "
            "could not print back as given") in res.stderr
    assert "s.jsonl:2: 'id' holds a NUL or a lone surrogate ('a\\udc00')" in res.stderr
    assert "repeats" not in res.stderr


def test_a_config_toml_that_is_no_file_is_named_not_passed_over_for_the_example(
        tmp_path: Path) -> None:
    """config.toml a link to a disk not mounted yet (or a folder, as a bind mount of a file
    missing on the host makes): every command used config.example.toml instead, its store,
    rules and feeds, without a word."""
    shutil.copy(REPO / "config.example.toml", tmp_path)
    (tmp_path / "in.jsonl").write_text('{"id": "a", "title": "Troops", "text": "troops"}\n')
    (tmp_path / "config.toml").symlink_to("/nonexistent-mount/config.toml")
    res = nw("import", "in.jsonl", cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert ("config.toml: 1 error(s) in the configuration\n  a link to "
            "'/nonexistent-mount/config.toml', which does not exist; newswatch reads "
            "config.toml here when there is one, not config.example.toml") in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "config.example.toml", "config.toml", "in.jsonl"]  # nothing stored anywhere


def test_a_config_toml_folder_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                       ) -> None:
    shutil.copy(REPO / "config.example.toml", tmp_path)
    (tmp_path / "config.toml").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"a folder, not a file; newswatch reads config\.toml"):
        config_path(None)
    # a pipe or a device is read as it is, as -c takes one
    (tmp_path / "config.toml").rmdir()
    os.mkfifo(tmp_path / "config.toml")
    assert config_path(None) == Path("config.toml")
