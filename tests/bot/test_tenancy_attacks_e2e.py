"""Two servers share one newswatch (the real discord.py against the emulator), each following
feeds served on 127.0.0.1 under names of its own: what one server may look up, and what its
alerts show, is judged by the names it gave its feeds and shows nothing of the other server's.

- ``source:NAME`` in a query names a followed feed as the server named it, in /search,
  /rules test and /trend as in the server's rules: the lookup finds what the rule matches.
- A surge alert lists the top stories of its rule by the headlines its readers may see, never
  the headline another server's feed gave the story.
- A channel picked for a rule (or set up with /channels set) must be one the member who picks
  it may post in: the newswatch admin role does not let a member have the bot post, with a
  template of their own words, where they may not; a channel they cannot see is not named.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from tests.bot._stories import REPORTS
from tests.bot.conftest import TOKEN, Running, bot_config, running_with
from tests.bot.test_isolation_e2e import (  # noqa: F401 - the two servers' fixtures
    A_ONLY,
    A,
    B,
    ask,
    feeds,
    follow,
    running,
    text_of,
    two,
)
from tests.bot.test_isolation_e2e import item as feed_item
from tests.bot.test_tenancy_leaks import alerts_of, item, setup, two_servers
from tests.fakes.discord_emulator import (
    ChannelSpec,
    DiscordEmulator,
    EmuMessage,
    Permissions,
    default_guild,
)
from tests.fakes.feed_server import FeedServer, Route
from tests.service.test_identity import rss


async def test_source_terms_name_a_servers_feeds_as_it_named_them(
        running: Running, feeds: FeedServer) -> None:  # noqa: F811
    emu, engine = running.emu, running.engine
    await follow(running, feeds)
    # each server's "desk" is its own feed: A's brought the grizzly (and one more), B's the
    # bison
    for g, sees, hidden, count in ((A, "grizzly", "bison", A_ONLY), (B, "bison", "grizzly", 1)):
        found = text_of(await ask(emu, g, "search", {"query": "troops AND source:desk"})).lower()
        assert sees in found and hidden not in found, (g, found)
        tried = (await ask(emu, g, "rules test", {"query": "source:desk"})).embeds[0]
        assert tried["title"] == f"{count} match(es) in the last 7 days", (g, tried)
        trend = await ask(emu, g, "trend", {"query_or_rule": "source:desk", "period": "1d"})
        counted = "1 match " if count == 1 else f"{count} matches"
        assert counted in trend.content, (g, trend.content)
    # the feed both follow, by each server's name for it; the other's name finds nothing
    for g, own, other in ((A, "wire", "newswire"), (B, "newswire", "wire")):
        assert "zebra" in text_of(await ask(emu, g, "search",
                                            {"query": f"source:{own}"})).lower()
        assert "No results." in text_of(await ask(emu, g, "search",
                                                  {"query": f"zebra AND source:{other}"}))

    # what /rules test counted is what the same query as B's rule alerts on
    b_alerts = next(g for g in emu.guilds if g.id == B).channel("alerts").id
    said = await ask(emu, B, "rules add", {"name": "desk-only", "query": "source:desk",
                                           "channel": b_alerts})
    assert not said.ephemeral, said.content
    feeds.set("/b-desk", Route(body=rss([feed_item("b-elk", "Elk troops ford the Bug",
                                                   "An elk crossed with the troops.", 1)])))
    await engine.run_once()
    await running.wait_for(lambda: any("desk-only" in text_of(m) and "elk" in text_of(m).lower()
                                       for m in emu.messages(b_alerts)))
    assert emu.validate_all() == []


@pytest.fixture
async def quiet_feeds() -> AsyncIterator[FeedServer]:
    """A's and B's desks and the operator's feed, each empty until a test fills it."""
    async with FeedServer() as server:
        for path in ("/a-desk", "/b-desk", "/operator"):
            server.set(path, Route(body=rss([])))
        yield server


@pytest.fixture
async def surging(two: DiscordEmulator, tmp_path: Path, quiet_feeds: FeedServer  # noqa: F811 - two: the fixture
                  ) -> AsyncIterator[Running]:
    """newswatch serving A and B (see :func:`two_servers`), the operator's feed shared, every
    rule posting a surge alert from its first match in an hour."""
    data = two_servers(two, tmp_path, sources=[{"name": "operator", "type": "feed", "every": "1h",
                                                "url": quiet_feeds.url("/operator")}])
    data["surge"] = {"enabled": True, "min_count": 1}
    async with running_with(two, tmp_path, data, tmp_path / "seeds") as run:
        await run.wait_for(lambda: bool(two.commands(B)))
        yield run


def surges(emu: DiscordEmulator, guild: int, rule: str) -> list[str]:
    return [m.content for m in alerts_of(emu, guild)
            if m.content.startswith(f"📈 Surge — {rule}:")]


async def test_a_surge_lists_no_headline_of_another_servers_feed(
        surging: Running, quiet_feeds: FeedServer) -> None:
    emu, engine, served = surging.emu, surging.engine, quiet_feeds
    await setup(surging, served)  # each server's rule "watch" (troops) and its own feed "desk"
    # A's own feed reports first and heads the story; then the operator's feed reports it
    served.set("/a-desk", Route(body=rss([item("a-dw", *REPORTS["dw"], 30)])))
    await engine.run_once()
    served.set("/operator", Route(body=rss([item("o-npr", *REPORTS["npr"], 25)])))
    await engine.run_once()
    ids = {str(h.article.url).split("//")[1].split(".")[0]: h.article.id
           for h in (await engine.search("troops", limit=50)).hits}
    stories = await engine.stories_of([ids["a-dw"], ids["o-npr"]])
    assert stories[ids["a-dw"]].id == stories[ids["o-npr"]].id, "the two reports are one story"
    # B's rule and the config file's matched the operator's report: each surges
    await surging.wait_for(lambda: bool(surges(emu, B, "watch") and surges(emu, A, "troops")))
    a_headline, npr_headline = REPORTS["dw"][0], REPORTS["npr"][0]
    for text in (*surges(emu, B, "watch"), *surges(emu, A, "troops")):
        assert a_headline not in text, text
        assert f"• {npr_headline}" in text, text
    # A's own rule matched A's report: A's surge may name it
    (own,) = surges(emu, A, "watch")
    assert f"• {a_headline}" in own
    assert emu.validate_all() == []


def _overwrite(target: int, *, allow: int = 0, deny: int = 0) -> dict[str, str | int]:
    return {"id": str(target), "type": 0, "allow": str(allow), "deny": str(deny)}


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Running]:
    """One server with #announcements (everyone reads it; only the Admin role and the bot may
    post) and #mods (hidden from everyone but the bot); newswatch's ``admin_role`` is the
    "Readers" role, which bob holds without Manage Server."""
    guild = default_guild()
    bot_role, admins = guild.id + 999, guild.role("Admin").id
    guild.channels += [
        ChannelSpec(guild.id + 30, "announcements", position=3, permission_overwrites=[
            _overwrite(guild.id, deny=Permissions.SEND_MESSAGES),
            _overwrite(admins, allow=Permissions.SEND_MESSAGES),
            _overwrite(bot_role, allow=Permissions.SEND_MESSAGES)]),
        ChannelSpec(guild.id + 31, "mods", position=4, permission_overwrites=[
            _overwrite(guild.id, deny=Permissions.VIEW_CHANNEL),
            _overwrite(bot_role, allow=Permissions.VIEW_CHANNEL | Permissions.SEND_MESSAGES)]),
    ]
    for ch in guild.channels:
        ch.guild_id = guild.id
    async with DiscordEmulator(token=TOKEN, guilds=[guild]) as emu, emu.patch_discord():
        data = bot_config(emu, tmp_path, rules=[])
        data["discord"]["admin_role"] = "Readers"
        (tmp_path / "seeds").mkdir()
        async with running_with(emu, tmp_path, data, tmp_path / "seeds") as run:
            yield run


async def pick(emu: DiscordEmulator, command: str, options: Mapping[str, object], user: str,
               channel: int | None = None) -> EmuMessage:
    handle = await emu.send_interaction(command, options, user=user, channel_id=channel)
    return await handle.final_message(timeout=15)


async def test_a_member_cannot_have_alerts_posted_where_they_may_not_post(
        guarded: Running) -> None:
    emu, engine = guarded.emu, guarded.engine
    news, mods = emu.channel("announcements"), emu.channel("mods")
    words = "Official statement from the board: {title}"
    # bob manages newswatch (the admin role) but may not post in #announcements
    for command, options, where in (
            ("rules add", {"name": "board", "query": "troops", "channel": news.id,
                           "template": words, "template_style": "text"}, None),
            ("rules add", {"name": "board", "query": "troops"}, news.id),  # run in it
            ("channels set", {"channel": news.id, "template": words}, None)):
        refused = await pick(emu, command, options, "member", where)
        assert refused.ephemeral, (command, refused.content)
        assert "You cannot post in" in refused.content and "Send Messages" in refused.content
    # a channel bob cannot even see is refused as one of no use, and not named
    hidden = await pick(emu, "rules add", {"name": "board", "query": "troops",
                                           "channel": mods.id}, "member")
    assert hidden.ephemeral and "mods" not in hidden.content
    assert f"Channel {mods.id} is not a channel of this server" in hidden.content
    assert "board" not in engine.rule_names(emu.guild.id) and engine.server_routes() == {}

    # alice, who may post there, picks it
    ok = await pick(emu, "rules add", {"name": "board", "query": "troops", "channel": news.id},
                    "admin")
    assert not ok.ephemeral, ok.content
    assert [r.channel_id for r in engine.server_routes().values()] == [news.id]
    # and bob still may not change what is posted there
    again = await pick(emu, "channels set", {"channel": news.id, "template": words}, "member")
    assert again.ephemeral and "You cannot post in" in again.content
    (route,) = engine.server_routes().values()
    assert route.route.template is None
    assert emu.validate_all() == []
