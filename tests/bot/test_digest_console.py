"""A digest in the terminal: one block whose heading says why and counts, then the stories by
rule, newest first, each with its outlet counts and link."""

from __future__ import annotations

import io

import pytest

from bot.console import ConsoleSink
from tests.bot.test_digest_embeds import KYIV, TROOPS, digest, item


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
