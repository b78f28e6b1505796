"""/search results' components are disabled while the interaction that edits them still can.

The view disables its ◀ / ▶ buttons and "Expand a story…" select, once it times out, through
the interaction that last changed the message: the command's answer or a page click. Discord
honours that interaction's token for 15 minutes; here the emulator honours it for a few
seconds (``token_life``), with ``PagedResults``' constants shortened to match. newswatch runs
in-process (the real discord.py) against the emulator, watching feeds served on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.exts.lookup._views import EXPIRED, PagedResults
from tests.bot.test_story_lookups import newswatch, select_of, the_story
from tests.fakes.discord_emulator import DiscordEmulator, EmuMessage

# (Seconds enough for a loaded machine: at 4 s, a CI run beside a bench once saw the view's
# end come too late to be checked.)
LIFE = 8.0  # seconds an interaction's token works, in the emulator and for the view
MARGIN = 2.0  # PagedResults.TOKEN_MARGIN
IDLE = LIFE + 1.0  # PagedResults.TIMEOUT: longer than a token lives


def _components(msg: EmuMessage) -> list[dict[str, Any]]:
    return [c for row in msg.components for c in row["components"]]


def _all_disabled(emu: DiscordEmulator, message_id: int) -> bool:
    components = _components(emu.get_message(message_id))
    return bool(components) and all(c.get("disabled", False) for c in components)


def _refused_edits(emu: DiscordEmulator) -> list[str]:
    return [f"{r.method} {r.route} -> {r.status} {r.response}" for r in emu.requests
            if r.path.startswith("/webhooks/") and (r.status or 0) >= 400]


async def test_result_components_are_disabled_before_the_editors_token_runs_out(
        emu: DiscordEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, each use of the select (answered privately, so the command's answer stayed the
    interaction that edits the message) restarted the view's countdown: expanding stories past
    the 15 minutes of the command's token made the view time out after the token had run out;
    the edit disabling its components was refused, and the message kept a select and buttons
    that looked live but only said the results had expired. Now the view times out while its
    editor's token still works, however recent the last use of the select; and a page click,
    a fresh editor with a token of its own, keeps the results live past the command's token."""
    loop = asyncio.get_running_loop()
    async with newswatch(emu, tmp_path, others=6) as (run, _):
        # The bot's own class: each start loads its extensions afresh (discord.py's
        # load_extension), so after an earlier test's bot the class this module imported is
        # another one, and shortening it shortened nothing.
        views = sys.modules["bot.exts.lookup._views"].PagedResults
        monkeypatch.setattr(views, "TIMEOUT", IDLE)
        monkeypatch.setattr(views, "TOKEN_LIFE", LIFE, raising=False)
        monkeypatch.setattr(views, "TOKEN_MARGIN", MARGIN, raising=False)
        story = await the_story(run)
        emu.token_life = LIFE

        # One line, the story (no other event speaks of satellites): a select, no paging.
        asked = await emu.send_interaction("search", {"query": "satellite"})
        msg = await asked.final_message(timeout=10)
        select = select_of(msg)
        assert select is not None, msg.components
        expanded = 0
        while loop.time() - asked.sent_at < LIFE + 0.5 and not _all_disabled(emu, msg.id):
            said = await (await emu.select_menu(emu.get_message(msg.id), select["custom_id"],
                                                [story.id])).final_message()
            assert said.ephemeral, said
            if said.content != EXPIRED:  # (one may race the view's end)
                assert said.embeds[0]["footer"]["text"].startswith(f"story {story.id}"), said
                expanded += 1
            await asyncio.sleep(0.3)
        assert expanded >= 2, f"the select was used {expanded} time(s) while live"
        try:
            await run.wait_for(lambda: _all_disabled(emu, msg.id), IDLE + 2)
        except AssertionError:
            raise AssertionError(
                "the results' components were never disabled: "
                f"{_components(emu.get_message(msg.id))}; refused: {_refused_edits(emu)}"
            ) from None

        # Two pages; a click on ▶ before the command's token runs out gives the view a
        # fresh editor: it is still live once the command's token has run out.
        asked = await emu.send_interaction("search", {"query": "troops"})
        msg = await asked.final_message(timeout=10)
        assert "page 1/2" in msg.embeds[0]["footer"]["text"], msg.embeds[0]["footer"]
        await asyncio.sleep(max(0.0, asked.sent_at + LIFE / 2 - loop.time()))
        await (await emu.click_button(msg, msg.custom_ids[1])).callback()
        await asyncio.sleep(max(0.0, asked.sent_at + LIFE + 0.2 - loop.time()))
        page2 = emu.get_message(msg.id)
        assert "page 2/2" in page2.embeds[0]["footer"]["text"]
        assert not _all_disabled(emu, msg.id), (
            f"page 2's components were disabled with the command's token: {page2.components}")
        select = select_of(page2)
        assert select is not None, page2.components
        said = await (await emu.select_menu(page2, select["custom_id"], [story.id])
                      ).final_message()
        assert said.ephemeral and said.content != EXPIRED, said
        # and it ends through the click's token, as the first results did through the command's
        await run.wait_for(lambda: _all_disabled(emu, msg.id), IDLE + 2)
        assert "page 2/2" in emu.get_message(msg.id).embeds[0]["footer"]["text"]
    assert _refused_edits(emu) == []
    assert emu.validate_all() == []


def test_a_clock_running_ahead_of_discords_leaves_a_fresh_view_its_whole_idle_time() -> None:
    """The token's age is this machine's clock against the interaction id's time: a clock
    fifteen minutes ahead made every fresh view time out at once (timeout 0.001 s), its
    paging and select dead on arrival. An age past MOST_AGE is not believed."""
    import datetime

    import discord

    class Ahead:  # an interaction as a machine whose clock runs `skew` seconds ahead sees it
        def __init__(self, skew: float) -> None:
            self.created_at = discord.utils.utcnow() - datetime.timedelta(seconds=skew)

    for skew in (0, 300, 880, 1200, 86_400):
        view = PagedResults("t", [], interaction=Ahead(skew))  # type: ignore[arg-type]
        assert view.timeout is not None
        assert view.timeout >= min(PagedResults.TIMEOUT, PagedResults.TOKEN_LIFE
                                   - getattr(PagedResults, "MOST_AGE", 120)
                                   - PagedResults.TOKEN_MARGIN) - 1, skew
