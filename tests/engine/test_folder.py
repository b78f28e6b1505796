"""FolderSource and the seeds convention."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import SEEDS
from watchers.errors import SourceError
from watchers.sources.folder import FolderSource, read_article_file, split_text_article


def test_date_prefix_is_metadata_not_text() -> None:
    title, text, published = split_text_article(" date 2022-01-24 Troops massed. More follows.")
    assert published == datetime(2022, 1, 24, tzinfo=UTC)
    assert "date" not in text and text.startswith("Troops massed.")
    assert title == "Troops massed."


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
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(SourceError, match=r"bad\.json: invalid JSON"):
        read_article_file(tmp_path / "bad.json")


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


async def test_missing_folder_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        await FolderSource("f", tmp_path / "nope").poll({})
