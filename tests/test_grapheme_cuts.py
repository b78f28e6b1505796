"""Cutting text to a limit never ends inside what shows as one character (a grapheme cluster):
a flag, an emoji joined by zero-width joiners, a letter and its combining marks, a Hangul
syllable spelt in jamo. Unicode's own segmentation (the ``regex`` module's ``\\X``) is the
judge of where a cluster ends."""

from __future__ import annotations

from datetime import UTC, datetime

import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.embeds import LIMITS, alert_message, thread_name, truncate
from watchers.config import RuleConfig
from watchers.delivery import Alert
from watchers.models import Article
from watchers.rules import match_query
from watchers.templates import cut_value

FLAG = "\U0001f1fa\U0001f1e6"  # Ukraine's: two regional indicators
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # man, woman, girl joined by ZWJs
E_ACUTE = "e\u0301"  # e and a combining acute accent
HAN_JAMO = "\u1112\u1161\u11ab"  # 한 spelt as leading, vowel and trailing jamo
CUTTERS = {"truncate": truncate, "cut_value": cut_value}


def edges(text: str) -> set[int]:
    """Where Unicode lets ``text`` be cut between grapheme clusters."""
    return {0} | {m.end() for m in regex.finditer(r"\X", text)}


def assert_clean_cut(text: str, cut: str, limit: int) -> None:
    assert len(cut) <= limit
    if cut == text:
        return
    assert cut.endswith("…")
    head = cut[:-1]
    assert text.startswith(head)
    if len(head) in edges(text):
        return
    # The one exception, by design: a "cluster" of dozens of marks (no text anyone reads) is
    # cut where the limit falls rather than dropped whole.
    cluster = next(m.group() for m in regex.finditer(r"\X", text) if m.end() > len(head))
    assert len(cluster) > 32, (ascii(text), ascii(cut))


def test_a_flag_is_never_cut_in_half() -> None:
    """A title cut at 256 ended "…aa🇺…", a lone regional indicator (and a flag cut between its
    letters makes every later pair read as another country's)."""
    title = "troops " + "a" * 247 + FLAG * 5
    for name, cut in CUTTERS.items():
        got = cut(title, LIMITS["title"])
        assert_clean_cut(title, got, LIMITS["title"])
        assert got == "troops " + "a" * 247 + "…", name
    name = "a" * 98 + FLAG * 3
    assert thread_name(name) == "a" * 98 + "…"  # it was "…a🇺…"
    assert thread_name("a" * 97 + FLAG * 3) == "a" * 97 + FLAG + "…"


def test_an_emoji_sequence_is_never_cut_inside() -> None:
    """A family emoji (three people joined by zero-width joiners) was cut after its first
    person."""
    text = "b" * 8 + FAMILY * 3
    for size in range(9, len(text)):
        for cut in CUTTERS.values():
            got = cut(text, size)
            assert_clean_cut(text, got, size)
            assert got[:-1].removeprefix("b" * 8) in ("", FAMILY, FAMILY * 2)
    skin = "\U0001f44b\U0001f3fd"  # a waving hand and its skin tone
    assert truncate("c" * 5 + skin * 2, 7) == "c" * 5 + "…"


def test_combining_marks_hangul_jamo_and_cjk() -> None:
    """A letter keeps its marks, a syllable spelt in jamo stays whole; CJK characters (each its
    own cluster) are cut exactly at the limit."""
    accented = "x" + E_ACUTE * 10
    assert truncate(accented, 5) == "x" + E_ACUTE + "…"
    assert cut_value(accented, 3) == "x" + "…"  # not "xe…", the accent lost
    hangul = "z" + HAN_JAMO * 5
    for size in range(2, len(hangul)):
        for cut in CUTTERS.values():
            got = cut(hangul, size)
            assert_clean_cut(hangul, got, size)
            assert len(got[:-1].removeprefix("z")) % 3 == 0
    syllable_and_tail = "\uac00\u11a8" * 4  # a precomposed syllable with a trailing jamo
    assert truncate(syllable_and_tail, 4) == "\uac00\u11a8…"
    cjk = "新闻" * 10
    assert truncate(cjk, 7) == cjk[:6] + "…"
    assert thread_name(cjk * 10) == (cjk * 10)[:99] + "…"
    assert truncate("a\r\nb", 3) == "a…"  # CR LF is one cluster


def _alert(title: str, template: str) -> Alert:
    art = Article(title=title, text="troops here", source="src", url="https://ok.example/a",
                  published=datetime(2022, 1, 24, tzinfo=UTC))
    m = match_query("troops", art)
    rule = RuleConfig(name="troops", query="troops", template=template, template_style="text")
    return Alert(id=1, route="alerts", nonce="n", attempt=1, article=art,
                 matches=(m,) if m else (), rules=(rule,))


def test_the_title_and_headline_placeholders_end_on_a_whole_flag() -> None:
    """{title} and {headline} of a title longer than 256 characters ended "…aa🇺…"; the
    standard embed's title already ended cleanly. Now they do too."""
    title = "troops " + "a" * 247 + FLAG * 5
    shown = alert_message(_alert(title, "{title}"))["content"]
    assert shown == "troops " + "a" * 247 + "…"
    headline = alert_message(_alert(title, "{headline}"))["content"]
    assert headline == "[troops " + "a" * 247 + "…](https://ok.example/a)"
    assert alert_message(_alert(title + " x", "{title}"))["embed"] is None


# Clusters and loose pieces of them, so that random text holds whole clusters, marks after
# anything, lone regional indicators and joiners in odd places.
PIECES = ["a", "Z", " ", "\\", "[", "]", "(", ")", "`", "新", "闻", "\uac00", "\uac01",
          "\u1100", "\u1161", "\u11a8", "\u0301", "\u0308", "\U0001f1fa", "\U0001f1e6",
          "\u200d", "\u200c", "\U0001f468", "\U0001f469", "\U0001f3fd", "\ufe0f", "\u20e3",
          "\u0e01", "\u0e33", "\r", "\n", FLAG, FAMILY, E_ACUTE, HAN_JAMO]
texts = st.lists(st.sampled_from(PIECES), max_size=80).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=texts, limit=st.integers(min_value=2, max_value=120))
def test_any_cut_is_a_prefix_within_the_limit_ending_on_a_cluster_edge(text: str,
                                                                       limit: int) -> None:
    """For any text and limit, truncate and cut_value return the text itself or a prefix of
    it and an ellipsis, never over the limit, the prefix ending where Unicode lets a cluster
    end (before, at code points: a lone regional indicator, half an emoji sequence)."""
    for cut in CUTTERS.values():
        assert_clean_cut(text, cut(text, limit), limit)


@settings(max_examples=150, deadline=None)
@given(text=st.lists(st.sampled_from([p for p in PIECES if not p.isspace()]),
                     min_size=90, max_size=140).map("".join))
def test_any_thread_name_is_within_discords_limit_and_ends_on_a_cluster_edge(text: str) -> None:
    """A story's thread or forum post is named after its headline, inside Discord's 100
    characters; a cut one ends on a whole cluster."""
    assert_clean_cut(text, thread_name(text), LIMITS["thread_name"])
