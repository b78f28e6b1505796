"""A watched folder given files whose bytes are not quite what they claim: real files in a
temporary folder, read by the real FolderSource (and by ``read_article_file``, as ``newswatch
match`` reads them)."""

from __future__ import annotations

from pathlib import Path

from tests.sources.test_folder import instant
from watchers.sources.folder import read_article_file


async def test_a_utf8_file_with_a_stray_legacy_byte_keeps_its_utf8_text(tmp_path: Path
                                                                        ) -> None:
    """One byte of a legacy encoding (a "café" pasted from an old file) made the whole file
    Windows-1252: every Cyrillic letter and curly quote of it mojibake ("Ð\\x92Ð¾Ð¹"), which
    no rule found, as a feed's was before."""
    (tmp_path / "ru.txt").write_bytes(
        "Войска пересекли границу\nТекст – «цитата», ".encode() + b"caf\xe9 au lait.")
    (tmp_path / "marked.md").write_bytes(
        b"\xef\xbb\xbf" + "Troops “cross” the border\nAt dawn, ".encode() + b"caf\xe9 shut.")
    poll = await instant(tmp_path).poll({})
    assert sorted((a.title, a.text) for a in poll.articles) == [
        ("Troops “cross” the border", "At dawn, café shut."),
        ("Войска пересекли границу", "Текст – «цитата», café au lait.")]
    assert read_article_file(tmp_path / "ru.txt").title == "Войска пересекли границу"


async def test_a_legacy_file_is_read_as_windows_1252_whatever_bytes_it_leaves_undefined(
        tmp_path: Path) -> None:
    """One byte Windows-1252 defines nothing for (0x81) made the whole file Latin-1: its curly
    quotes, dash and euro sign control characters."""
    (tmp_path / "legacy.txt").write_bytes(
        "Café story\nTroops “moved” – 5 € a day; naïve.".encode("cp1252") + b" \x81\x8d")
    (poll_article,) = (await instant(tmp_path).poll({})).articles
    assert (poll_article.title, poll_article.text) == (
        "Café story", "Troops “moved” – 5 € a day; naïve. \x81\x8d")
