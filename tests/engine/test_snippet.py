"""Snippets mark every matched character: overlapping highlights (a phrase and a word inside
it, two phrases sharing a word) are joined, never dropped."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchers.models import Article, Highlight
from watchers.rules import RuleSet
from watchers.snippet import snippet_runs, title_runs


def marked(runs: list) -> list[str]:  # type: ignore[type-arg]
    return [r.text for r in runs if r.hit]


def test_a_phrase_and_a_word_inside_it_mark_the_whole_phrase() -> None:
    text = "After weeks, finally troops arrived at the border."
    rules = RuleSet.from_queries({"phrase": '"finally troops"', "word": "finally"})
    article = Article(title="Finally troops arrive", text=text)
    highlights = [h for m in rules.match(article) for h in m.highlights]
    assert marked(snippet_runs(text, highlights)) == ["finally troops"]
    assert marked(title_runs(article.title, highlights)) == ["Finally troops"]


def test_spans_that_overlap_in_part_are_joined() -> None:
    text = "the troops massed near the border today"
    hl = [Highlight(field="text", start=4, end=17, text=text[4:17]),     # troops massed
          Highlight(field="text", start=11, end=22, text=text[11:22]),   # massed near
          Highlight(field="text", start=27, end=33, text=text[27:33])]   # border
    assert marked(snippet_runs(text, hl)) == ["troops massed near", "border"]
    assert "".join(r.text for r in snippet_runs(text, hl)) == text


WORDS = st.lists(st.sampled_from(["a", "b", "ab", "bab"]), min_size=1, max_size=12).map(" ".join)


@given(text=WORDS, data=st.data())
@settings(max_examples=300, deadline=None)
def test_every_highlighted_character_is_marked(text: str, data: st.DataObject) -> None:
    spans = data.draw(st.lists(st.tuples(st.integers(0, len(text) - 1), st.integers(1, 8)),
                               max_size=5))
    hl = [Highlight(field="title", start=s, end=min(s + n, len(text)), text="")
          for s, n in spans]
    runs = title_runs(text, hl)
    assert "".join(r.text for r in runs) == text
    at, inside = 0, set[int]()
    for r in runs:
        if r.hit:
            inside.update(range(at, at + len(r.text)))
        at += len(r.text)
    for h in hl:
        assert set(range(h.start, h.end)) <= inside


@pytest.mark.parametrize(("unit", "name"), [
    ("\U0001f1fa\U0001f1e6", "a flag"),  # 🇺🇦: cut inside, 🇺🇦🇺🇦 reads 🇦🇺 (Australia)
    ("\U0001f468\u200d\U0001f469\u200d\U0001f467", "a ZWJ sequence"),
    ("\U0001f44d\U0001f3fd", "a skin tone"),
    ("क\u093f\u0902", "a Devanagari letter and its marks"),
    ("e\u0301", "a decomposed accent"),
])
def test_a_snippet_without_spaces_is_cut_between_what_shows_as_characters(
        unit: str, name: str) -> None:
    """Text with no space near the cut (Chinese, a run of emoji) was cut at any code point:
    a snippet of a text about Ukraine began inside a flag, and every flag after showed
    Australia's. Cuts at every offset of the unit are tried, at both ends."""
    many = 600 // len(unit) + 1
    for shift in range(len(unit) + 1):
        body = "据" * shift + unit * many + "：北京 " + unit * many
        found = RuleSet.from_queries({"r": "北京"}).evidence(
            Article(title="t", text=body), ["r"])[0]
        shown = "".join(r.text for r in snippet_runs(body, found.highlights, width=600 - shift))
        assert shown.startswith("…") and shown.endswith("…")
        before, after = shown[1:-1].split("：北京 ")
        for run in (before, after):
            assert run == unit * (len(run) // len(unit)) and run, (name, shift, run[:12])
