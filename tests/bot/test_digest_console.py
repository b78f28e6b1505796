"""A digest in the terminal: one block whose heading says why and counts, then the stories by
rule, newest first, each with its outlet counts and link."""

from __future__ import annotations

import io

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
