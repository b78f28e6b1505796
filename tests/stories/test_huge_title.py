"""A huge title costs what the same words as text cost: its story signature reads its first
words (as a text's reads its lead's), and rules, the lookup index and the signature read its
first :data:`~watchers.models.MAX_MATCH_TITLE_CHARS` characters (as they read a text's first
:data:`~watchers.models.MAX_MATCH_CHARS`), while the title is stored whole."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from bot import stories_cli
from tests.stories.test_stories_cli import groups, parse, write
from watchers.importer import import_file
from watchers.models import MAX_MATCH_TITLE_CHARS, Article, matchable
from watchers.rules import Rule, RuleSet
from watchers.rules.matcher import Analysis
from watchers.rules.text import FieldText
from watchers.store import SqliteStore
from watchers.stories import StoryIndex, signature, signature_from
from watchers.stories import features as ft
from watchers.stories.features import signature_of

SEED = Path(__file__).resolve().parents[1] / "data" / "seeds" / "000_9cb11e4c8b275d7a.txt"


def words(n: int) -> list[str]:
    """``n`` distinct words of six characters: each its own stem, and a name wordfreq does not
    know (the heaviest weight there is)."""
    return [f"x{i:05d}" for i in range(n)]


HUGE = " ".join(words(100_000))  # 700,000 characters


def weighted(sig: ft.Signature) -> list[str]:
    """The signature's word terms (the event, country and subject marks left out)."""
    return [t for t in sig.terms() if t[:1].isalnum()]


def test_a_title_of_100000_words_signs_as_its_first_words() -> None:
    """Every word of a title went into its signature, each with a lookup of its rarity: a
    title of 1.5 million words took 28 s and 620 MB, the same words as text half a second.
    The signature now reads the title's first words, whichever way it is made."""
    sig = signature(HUGE)
    assert 0 < len(weighted(sig)) <= ft._TITLE_WORDS, len(weighted(sig))
    assert sig == signature(" ".join(words(ft._TITLE_WORDS)))
    # The matcher's tokens of the whole title, and of the title as rules see it, give the same.
    assert signature_of(FieldText.of(HUGE)) == sig
    assert signature_from(Analysis(matchable(Article(title=HUGE)))) == sig


def test_a_title_a_feed_gives_is_read_whole() -> None:
    """The bound leaves real titles alone: a title of prose cut at 1,000 characters, as feeds
    cut theirs, signs with every word, as before."""
    prose = " ".join(SEED.read_text(encoding="utf-8").split())[:1000]
    title = FieldText.of(prose)
    assert len(title.keys) > 150  # prose, not a headline of ten words
    every: dict[str, float] = {}
    ft._terms(title, every)  # no limit
    assert dict(signature(prose).exemplars[0]) == every


def test_rules_see_a_title_s_first_characters_and_the_stored_title_is_whole() -> None:
    """A title was matched whole, a text on its first MAX_MATCH_CHARS characters: a title
    longer than MAX_MATCH_TITLE_CHARS is now matched on its start (a prefix, so each span
    found is a span of the stored title), and one within it is matched as it is."""
    article = Article(title=HUGE, text="short")
    seen = matchable(article)
    assert seen.title == HUGE[:MAX_MATCH_TITLE_CHARS]
    assert (seen.id, seen.content_hash, seen.text) == (article.id, article.content_hash, "short")
    short = Article(title="Troops gather at the border", text="short")
    assert matchable(short) is short


async def test_an_imported_huge_title_is_stored_whole_matched_on_its_start_and_grouped(
        tmp_path: Path) -> None:
    """A line whose title was 1.5 million words took 30 s and 1.1 GB to import (matched,
    indexed and signed whole). The title is stored whole; the rules see its start only, and
    the line joins a story."""
    title = "Troops gather " + HUGE + " shares"
    history = write(tmp_path / "h.jsonl", [
        {"id": "huge", "title": title, "date": "2022-02-01T12:00:00Z", "source": "archive"}])
    rules = RuleSet([Rule(name="troops", query="troops"), Rule(name="markets", query="shares")])
    store = await SqliteStore.open(tmp_path / "nw.db")
    try:
        summary = await import_file(store, history, ruleset=rules, stories=StoryIndex())
        assert (summary.imported, summary.bad) == (1, 0)
        stories = await store.stories_of(["huge"])
    finally:
        await store.aclose()
    assert "huge" in stories
    with closing(sqlite3.connect(tmp_path / "nw.db")) as con:
        (stored,) = con.execute("SELECT title FROM articles WHERE id = 'huge'").fetchone()
        matched = sorted(r for (r,) in con.execute("SELECT rule FROM matches"))
    assert stored == title
    assert matched == ["troops"]  # "shares" is past the start rules read


def test_stories_groups_a_huge_title_as_its_first_words(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``newswatch stories`` of a huge title completes, and the line groups as its first words
    would: with the title of its first words. Its signature held every word, and it was
    grouped with a title of its later words instead."""
    first = " ".join(words(ft._TITLE_WORDS))
    later = " ".join(words(2 * ft._TITLE_WORDS)[ft._TITLE_WORDS:])
    f = write(tmp_path / "a.jsonl", [
        json.dumps({"id": "head", "title": first, "date": "2022-02-01T11:00:00Z"}),
        json.dumps({"id": "huge", "title": HUGE, "date": "2022-02-01T12:00:00Z"}),
        json.dumps({"id": "tail", "title": later, "date": "2022-02-01T13:00:00Z"})])
    assert stories_cli.run(parse(str(f), "--json")) == 0
    assert sorted(map(sorted, groups(capsys.readouterr().out))) == [["head", "huge"], ["tail"]]
