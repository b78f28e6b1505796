"""/rules preview shows the message the rule would post, whole: for an article the rule does not
match, the note above it takes its own room instead of the message being cut after it.
newswatch runs in-process (the real discord.py) against the emulator, and every request is
checked against Discord's OpenAPI spec."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from bot.embeds import LIMITS
from tests.bot.conftest import bot_config, running_with
from tests.fakes.discord_emulator import DiscordEmulator

QUIET = "Quiet day at the market in the old town square as traders wait for news"
LONG = " ".join(f"word{i}" for i in range(600))


async def test_a_preview_of_an_article_the_rule_does_not_match_keeps_its_link_whole(
        emu: DiscordEmulator, tmp_path: Path) -> None:
    """A text template of four snippets and the headline fills the whole message. Before, the
    preview put "does not match this article" above the full-size rendering and cut the
    result at 2,000 characters, through the headline's link: it ended "…[Quiet day at the
    market in the old town square a…", a raw "[" with no link. Now the message is rendered
    in the room the note leaves, so the link is whole, as a posted alert's is."""
    folder = tmp_path / "news"
    folder.mkdir()
    data = bot_config(
        emu, tmp_path,
        sources=[{"name": "news", "type": "folder", "path": "news", "every": "1h",
                  "settle": "0s"}],
        rules=[{"name": "alpha", "query": "troops", "mention_role": 1100000000000000101,
                "template": "{snippet}\n{snippet}\n{snippet}\n{snippet}\n{headline}",
                "template_style": "text"}])
    now = datetime.now(UTC).isoformat()
    async with running_with(emu, tmp_path, data, folder) as run:
        for tag, title, text in (("one", "Troops move", "troops " + LONG),
                                 ("two", QUIET, "calm " + LONG)):
            (folder / f"{tag}.json").write_text(json.dumps(
                {"title": title, "text": text, "url": f"https://news.example/story-{tag}",
                 "published": now}))
        await run.engine.run_once()
        await run.wait_for(lambda: len(emu.messages(run.alerts_channel)) == 1)
        (posted,) = emu.messages(run.alerts_channel)
        assert posted.content.endswith("\n[Troops move](https://news.example/story-one)")

        found = await run.engine.search("troops OR calm")
        ids = {hit.article.title: hit.article.id for hit in found.hits}
        previews = {}
        for title in ("Troops move", QUIET):
            answer = await emu.send_interaction("rules preview", {"name": "alpha",
                                                                  "article": ids[title]})
            previews[title] = (await answer.final_message()).content

        # the matched article's preview is the posted alert
        assert previews["Troops move"] == posted.content
        quiet = previews[QUIET]
        note, _, message = quiet.partition("\n")
        assert note == "Rule **alpha** does not match this article; as if it did:"
        assert len(quiet) <= LIMITS["content"]
        assert quiet.endswith(f"\n[{QUIET}](https://news.example/story-two)")
        # every link of the message is whole: no "[" is left without its "](…)"
        assert message.count("](") == 1 and not re.search(r"\[[^\]]*$", message)
        assert emu.validate_all() == []
