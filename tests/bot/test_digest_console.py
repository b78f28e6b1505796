"""A digest in the terminal: one block whose heading says why and counts, then the stories by
rule, newest first, each with its outlet counts and link."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.console import ConsoleSink, render_card
from tests.bot.test_digest_embeds import KYIV, TROOPS, digest, item
from tests.bot.test_story_embeds import make_alert
from watchers.config import RuleConfig
from watchers.delivery import Alert, StoryView
from watchers.models import Article
from watchers.rules import match_query


async def test_console_prints_a_digest_as_one_block() -> None:
    out = io.StringIO()
    sink = ConsoleSink(out, ansi=False)
    d = digest(item("Old troops story", 5),
               item("Kyiv shelled", 30, KYIV, outlets=("dw", "npr", "bbc"), articles=4),
               item("New troops story", 50, TROOPS, KYIV), reason="quiet hours")
    assert await sink.digest(d) == "console-digest-7"
    lines = out.getvalue().splitlines()
    assert lines[1] == ("≡ quiet hours digest for briefing · 3 stories · 6 articles · "
                        "since 2022-03-26 08:00 UTC")
    body = [x.strip() for x in lines[2:]]
    assert body == [
        "troops [high]",
        "• New troops story — dw", "https://dw.example/50",
        "• Old troops story — dw", "https://dw.example/5",
        "kyiv [medium]",
        "• Kyiv shelled — dw · 3 outlets · 4 articles", "https://dw.example/30",
    ]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("env", "colour", "width"), [
    ({}, True, 78),
    ({"NO_COLOR": "1"}, False, 78),
    ({"TERM": "dumb"}, False, 78),
    ({"COLUMNS": "30"}, True, 30),
    ({"COLUMNS": "5"}, True, 20),  # no narrower than a card's head
])
async def test_a_terminal_gets_colour_unless_refused_and_cards_as_wide_as_it(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str], colour: bool, width: int) -> None:
    """`run` coloured its cards on any terminal (NO_COLOR and TERM=dumb aside) and drew their
    rule 78 columns wide on a terminal of 20."""
    for name in ("NO_COLOR", "TERM", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = _Terminal()
    sink = ConsoleSink(out)
    await sink.digest(digest(item("Kyiv shelled", 30, KYIV)))
    text = out.getvalue()
    assert ("\x1b[" in text) is colour
    rule = text.splitlines()[0].replace("\x1b[2m", "").replace("\x1b[0m", "")
    assert rule == "═" * width


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.mark.parametrize("ansi", [False, True])
@pytest.mark.parametrize("width", [30, 50, 78])
def test_a_card_wraps_its_title_and_snippet_to_its_width(ansi: bool, width: int) -> None:
    """The snippet (about 320 characters) was one line, which the terminal wrapped mid-word at
    its own edge, back at the first column; now the title and the snippet break at spaces into
    indented lines as wide as the card, their matched terms whole."""
    text = ("Officials said on Tuesday that Russian troops had moved closer to the border "
            "overnight, while the prime minister of Ukraine met envoys in Kyiv to discuss new "
            "sanctions; troops were also seen near Kharkiv, and a spokesman called the "
            "deployment 'a serious escalation' in a statement to reporters at the ministry.")
    title = "Russian troops gather near the border as the prime minister meets envoys in Kyiv"
    art = Article(id="a1", source="Reuters", title=title, text=text,
                  url="https://reuters.example/1", published=datetime(2022, 1, 5, tzinfo=UTC))
    m = match_query('troops OR "prime minister"', art)
    assert m is not None
    rule = RuleConfig(name="troops", query="troops")
    alert = Alert(id=1, route="alerts", nonce="n", attempt=1, article=art, matches=(m,),
                  rules=(rule,))
    card = render_card(alert, ansi=ansi, width=width).splitlines()
    plain = [_ANSI.sub("", line) for line in card]
    source = next(i for i, line in enumerate(plain) if line.startswith("  Reuters"))
    after_source = next(i for i, line in enumerate(plain) if line.startswith("  matched: "))
    assert " ".join(x.strip() for x in plain[source:after_source]) == (
        "Reuters · 2022-01-05 00:00 UTC · id a1")
    matched = after_source
    # the terms that matched, each whole, as many lines as they need
    while matched + 1 < len(plain) and "," in plain[matched].split()[-1]:
        matched += 1
    terms = " ".join(x.strip() for x in plain[after_source:matched + 1])
    assert terms == 'matched: troops, "prime minister"'
    title_lines, snippet_lines = plain[2:source], plain[matched + 1:-1]
    assert len(title_lines) > 1 and len(snippet_lines) > 2
    for line in title_lines + snippet_lines + plain[source:matched + 1]:
        assert len(line) <= width and line.startswith("  ") and not line.startswith("   "), line
    # the words, in order, are those of the one line the card printed before
    words = " ".join(x.strip() for x in snippet_lines).replace("[", "").replace("]", "")
    assert words == " ".join(text.split())
    assert " ".join(x.strip() for x in title_lines).replace("[", "").replace("]", "") == title
    hits = "prime minister" if ansi else "[prime minister]"
    joined = [_ANSI.sub("", x) if not ansi else x for x in card]
    assert any(hits in line for line in joined[matched + 1:-1])  # a phrase is never broken
    if ansi:
        assert "\x1b[1;33mprime minister\x1b[0m" in "\n".join(card)
    assert plain[-1] == "  https://reuters.example/1"


@pytest.mark.parametrize("width", [24, 40])
def test_wide_characters_count_as_the_two_columns_they_take(width: int) -> None:
    """The wrapping counted characters: a line of Japanese took twice the card's width."""
    from bot.console import _columns

    text = "部隊が国境付近に移動 ロシア軍の部隊 " * 6 + "e\u0301te\u0301 café 👍🏽 troops"
    art = Article(id="a1", source="NHK", title="部隊 " * 12 + "troops", text=text,
                  url="https://nhk.example/1", published=datetime(2022, 1, 5, tzinfo=UTC))
    m = match_query("troops", art)
    assert m is not None
    alert = Alert(id=1, route="alerts", nonce="n", attempt=1, article=art, matches=(m,),
                  rules=(RuleConfig(name="troops", query="troops"),))
    card = render_card(alert, width=width).splitlines()
    body = [line for line in card[2:] if not line.startswith(("  NHK", "  · ", "  https://"))]
    assert len(body) > 4
    assert all(_columns(line) <= width for line in body), [
        (line, _columns(line)) for line in body if _columns(line) > width]
    assert _columns("部隊") == 4 and _columns("e\u0301") == 1 and _columns("ab") == 2
    words = " ".join(line.strip() for line in body)
    assert "e\u0301te\u0301 café 👍🏽 [troops]" in words


@pytest.mark.parametrize("ansi", [False, True])
@pytest.mark.parametrize("width", [20, 30, 50])
def test_a_card_wraps_its_rules_source_line_and_story_too(ansi: bool, width: int) -> None:
    """The head (every rule of the alert and the severity), the source, date and id line and
    the story line were single lines however long: the terminal broke them mid-word at its
    edge, back at the first column. On a terminal of 20 columns the date ("· 2022-01-05 14:02
    UTC", kept whole) still overflowed: a part wider than a line breaks at its spaces."""
    from bot.console import _columns

    art = Article(id="b5dcb8dcc65bb57c", source="Kyiv Independent live coverage",
                  title="Troops mass",
                  text="Troops massed near the border.", url="https://kyiv.example/1",
                  published=datetime(2022, 1, 5, 14, 2, tzinfo=UTC))
    m = match_query("troops", art)
    assert m is not None
    names = ["troops-near-kharkiv", "border-buildup", "ukraine-watch", "defence-desk"]
    rules = tuple(RuleConfig(name=n, query="troops", severity="high") for n in names)
    when = datetime(2022, 1, 5, 14, 2, tzinfo=UTC)
    story = StoryView(id="s1", headline="Troops mass", first_seen=when, last_seen=when, articles=4,
                      outlets=("Kyiv Independent live coverage", "Deutsche Welle", "NPR",
                               "Reuters"))
    alert = Alert(id=1, route="alerts", nonce="n", attempt=1, article=art, matches=(m,),
                  rules=rules, story=story)
    card = render_card(alert, ansi=ansi, width=width).splitlines()
    plain = [_ANSI.sub("", line) for line in card]
    matched = next(i for i, line in enumerate(plain) if line.startswith("  matched: "))
    source = next(i for i, line in enumerate(plain) if line.startswith("  Kyiv"))
    # (at 20 columns, a rule's name longer than a line has a line of its own)
    assert all(_columns(line) <= width for line in (plain if width > 20 else plain[source:])
               if not line.startswith("  https://")), plain
    head = " ".join(x.strip() for x in plain[1:source - 1])
    assert head == "▶ " + ", ".join(names) + "  [high]"
    assert all(x.startswith("  ") for x in plain[2:source])
    assert plain[source - 1].strip() == "Troops mass" or "[Troops] mass" in plain[source - 1]
    assert " ".join(x.strip() for x in plain[source:matched]) == (
        "Kyiv Independent live coverage · 2022-01-05 14:02 UTC · id b5dcb8dcc65bb57c")
    told = next(i for i, line in enumerate(plain) if line.startswith("  story: "))
    story_text = " ".join(x.strip() for x in plain[told:])
    assert story_text.startswith("story: ") and "Deutsche Welle" in story_text
    assert len(plain) - told > 1  # wrapped at these widths
    if ansi:
        assert all(line.startswith("\x1b[1;") for line in card[1:source - 1])


@pytest.mark.parametrize(("encoding", "newline"), [
    ("utf-8", None), ("utf-8-sig", None), ("utf-16", None), ("utf-8", "\r\n")])
async def test_a_stream_of_ones_own_gets_cards_as_print_writes_them(
        tmp_path: Path, encoding: str, newline: str | None) -> None:
    """Cards written through a file's descriptor from a thread of their own came before what
    the file's buffer held (a header written first came after the card), with a byte order
    mark per card and no newline translation. Only the process's standard output is written
    so; another stream is written through."""
    path = tmp_path / "cards.txt"
    with open(path, "w", encoding=encoding, newline=newline) as out:  # noqa: ASYNC230
        out.write("== header ==\n")
        sink = ConsoleSink(out, ansi=False)
        await sink.deliver(make_alert())
        await sink.deliver(make_alert())
        out.write("== footer ==\n")
    raw = path.read_bytes()
    text = raw.decode(encoding)
    lines = text.splitlines()
    assert lines[0].lstrip("\ufeff") == "== header ==" and lines[-1] == "== footer =="
    assert "\ufeff" not in text.lstrip("\ufeff")
    assert text.count("▶ troops") == 2
    if newline == "\r\n":
        assert raw.count(b"\n") == raw.count(b"\r\n")
