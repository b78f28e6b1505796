"""/sources import (an OPML attachment) and /sources export (an OPML file), with the real
discord.py against the emulator. Imported feeds point at a FeedServer on 127.0.0.1 (allowed by
the config), so the running engine's polls never leave the machine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bot.conftest import Running, bot_config, running_on_seeds
from tests.fakes.discord_emulator import DiscordEmulator
from tests.fakes.feed_server import FeedServer, Route
from tests.test_opml import BILLION_LAUGHS
from watchers.opml import parse_opml, write_opml

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><guid>1</guid><title>Nothing happened</title><link>https://example.org/1</link></item>
</channel></rss>"""


@pytest.fixture
async def feeds() -> AsyncIterator[FeedServer]:
    async with FeedServer() as server:
        for path in ("/world", "/europe"):
            server.set(path, Route(body=RSS))
        yield server


@pytest.fixture
async def bot(emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer
              ) -> AsyncIterator[Running]:
    data = bot_config(emu, tmp_path, fetch={"allow_private": ["127.0.0.1/32"]})
    async with running_on_seeds(emu, tmp_path, data) as run:
        yield run


def opml(feeds: FeedServer) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>Team feeds</title></head><body>
<outline text="News">
  <outline text="World desk" type="rss" xmlUrl="{feeds.url('/world')}"/>
  <outline text="Europe desk" type="rss" xmlUrl="{feeds.url('/europe')}"/>
</outline>
<outline text="World again" type="rss" xmlUrl="{feeds.url('/world')}"/>
<outline text="Sneaky" type="rss" xmlUrl="javascript:alert(1)"/>
<outline text="Intranet" type="rss" xmlUrl="http://10.0.0.7/feed"/>
</body></opml>""".encode()


async def test_an_admin_imports_an_opml_attachment_and_sees_every_entry(
        bot: Running, feeds: FeedServer) -> None:
    emu = bot.emu
    msg = await (await emu.send_interaction(
        "sources import", {"file": ("team.opml", opml(feeds))})).final_message(timeout=15)
    assert not msg.ephemeral
    (embed,) = msg.embeds
    assert embed["footer"]["text"] == "5 feed(s): 2 added, 1 skipped, 2 refused"
    lines = embed["description"].splitlines()
    # refused first (they need action), then skipped, then added; each with its file line
    assert lines[0].startswith("⛔ line 8") and "javascript" in lines[0]
    assert lines[1].startswith("⛔ line 9") and "private address" in lines[1]
    assert lines[2].startswith("⏭️ line 7") and "same URL as line 4" in lines[2]
    assert lines[3].startswith("✅ line 4") and "world\\-desk" in lines[3]
    assert lines[4].startswith("✅ line 5") and "europe\\-desk" in lines[4]
    assert {"world-desk", "europe-desk"} <= set(bot.engine.source_names(emu.guild.id))
    stored = {s.name: s for s in await bot.engine.store.list_sources()}
    assert set(stored) == {"world-desk", "europe-desk"}
    assert stored["world-desk"].created_by == str(emu.admin.id)
    assert emu.validate_all() == []


async def test_members_cannot_import_and_hostile_files_add_nothing(
        bot: Running, feeds: FeedServer) -> None:
    emu = bot.emu
    denied = await (await emu.send_interaction(
        "sources import", {"file": ("team.opml", opml(feeds))}, user="member")).final_message()
    assert denied.ephemeral and "Manage Server" in denied.content
    for name, data, said in [("lol.opml", BILLION_LAUGHS, "declares a DTD"),
                             ("feed.opml", RSS, "root element"),
                             ("notes.txt", b"just text", "not XML")]:
        msg = await (await emu.send_interaction(
            "sources import", {"file": (name, data)})).final_message(timeout=15)
        assert said in msg.content, (name, msg.content)
        assert not msg.embeds
        assert msg.ephemeral, name  # a refusal is private, not in the channel
    # refused by its declared size, before the bot downloads it
    big = await (await emu.send_interaction(
        "sources import", {"file": ("big.opml", b" " * (5 * 1024 * 1024 + 1))})).final_message()
    assert big.ephemeral and "at most 5 MiB" in big.content
    assert await bot.engine.store.list_sources() == []
    assert emu.validate_all() == []


async def test_a_long_report_is_cut_inside_discord_limits(bot: Running) -> None:
    many = write_opml([(f"bad feed {i} " + "x" * 60, f"javascript:alert({i})")
                       for i in range(400)])
    msg = await (await bot.emu.send_interaction(
        "sources import", {"file": ("many.opml", many)})).final_message(timeout=15)
    (embed,) = msg.embeds
    assert embed["footer"]["text"] == "400 feed(s): 0 added, 0 skipped, 400 refused"
    assert len(embed["description"]) <= 4096
    shown = sum(1 for line in embed["description"].splitlines() if line.startswith("⛔"))
    assert 0 < shown < 400
    assert embed["description"].endswith(f"… and {400 - shown} more")
    assert bot.emu.validate_all() == []


async def test_anyone_exports_the_feeds_as_an_opml_file(bot: Running, feeds: FeedServer
                                                        ) -> None:
    emu = bot.emu
    empty = await (await emu.send_interaction("sources export", user="member")).final_message()
    assert empty.ephemeral and "no feeds" in empty.content  # only the seeds folder so far
    await (await emu.send_interaction(
        "sources import", {"file": ("team.opml", opml(feeds))})).final_message(timeout=15)
    msg = await (await emu.send_interaction("sources export", user="member")).final_message()
    assert not msg.ephemeral and msg.content == "2 feed(s)."
    (attachment,) = msg.attachments
    assert attachment["filename"] == "newswatch-sources.opml"
    doc = parse_opml(msg.files[attachment["id"]])
    assert [(e.title, e.url) for e in doc.entries] == [
        ("europe-desk", feeds.url("/europe")), ("world-desk", feeds.url("/world"))]
    assert emu.validate_all() == []
