"""/rules add with Discord's channel picker (the real discord.py against the emulator, two
servers): a picked text, announcement, forum or thread channel becomes a route of that server
and the rule's alerts land there (a forum: as a post); without a channel, the one the command
runs in; a channel where the bot cannot post, or another server's, is refused before anything
is stored; a picked route survives a restart; a server's rule never posts to another server's
channel. Commands sync globally when ``guild_ids`` is empty."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.bot.conftest import TOKEN, Running, bot_config, start_running
from tests.conftest import SEEDS
from tests.fakes.discord_emulator import (
    ChannelSpec,
    DiscordEmulator,
    EmuMessage,
    Fault,
    Permissions,
    default_guild,
)
from watchers.config import RouteConfig, parse_config

A, B = 1100000000000000001, 1100000000000000501
BOT_ROLE_A = A + 999  # the emulator's managed role of the bot in A
BEAR = "Bear news\nA grizzly was seen near Lviv."


def _deny(role: int, *perms: int) -> list[dict[str, Any]]:
    bits = 0
    for p in perms:
        bits |= p
    return [{"id": str(role), "type": 0, "allow": "0", "deny": str(bits)}]


@pytest.fixture
async def two() -> AsyncIterator[DiscordEmulator]:
    a, b = default_guild(A, "Newsroom"), default_guild(B, "Other desk")
    a.channels += [
        ChannelSpec(A + 20, "briefing", type=5, position=3),
        ChannelSpec(A + 21, "desk-forum", type=15, position=4),
        ChannelSpec(A + 22, "closed", position=5,
                    permission_overwrites=_deny(BOT_ROLE_A, Permissions.SEND_MESSAGES)),
        ChannelSpec(A + 23, "closed-forum", type=15, position=6,
                    permission_overwrites=_deny(BOT_ROLE_A, Permissions.CREATE_PUBLIC_THREADS,
                                                Permissions.EMBED_LINKS)),
        ChannelSpec(A + 24, "no-threads", position=7,
                    permission_overwrites=_deny(BOT_ROLE_A,
                                                Permissions.SEND_MESSAGES_IN_THREADS)),
    ]
    for ch in a.channels:
        ch.guild_id = A
    async with DiscordEmulator(token=TOKEN, guilds=[a, b]) as e, e.patch_discord():
        # a member's thread in #alerts, there before the bot connects (so it is cached)
        e.add_thread(a.channel("alerts").id, "desk chat")
        e.add_thread(a.channel("no-threads").id, "quiet thread")
        yield e


def _config(emu: DiscordEmulator, tmp_path: Path, guild_ids: list[int]) -> dict[str, Any]:
    data = bot_config(emu, tmp_path, rules=[])  # only the servers' own rules post
    data["discord"]["guild_ids"] = guild_ids
    return data


@asynccontextmanager
async def newswatch(emu: DiscordEmulator, tmp_path: Path, guild_ids: list[int]
                    ) -> AsyncIterator[Running]:
    """newswatch on a copy of the seeds (kept across restarts in ``tmp_path``)."""
    if not (tmp_path / "seeds").exists():
        shutil.copytree(SEEDS, tmp_path / "seeds")
    cfg = parse_config(_config(emu, tmp_path, guild_ids), base_dir=tmp_path)
    run = await start_running(cfg, emu, tmp_path / "seeds")
    try:
        await emu.wait_until_identified(timeout=10)
        for guild in guild_ids:
            await run.wait_for(lambda g=guild: bool(emu.commands(g)))  # type: ignore[misc]
        # the seeds are in the store: later articles are the tests' own
        for _ in range(200):
            if await run.engine.store.count_articles() >= 5:
                break
            await asyncio.sleep(0.05)
        yield run
    finally:
        run.stop.set()
        assert await asyncio.wait_for(run.task, 15) == 0


@pytest.fixture
async def running(two: DiscordEmulator, tmp_path: Path) -> AsyncIterator[Running]:
    async with newswatch(two, tmp_path, [A, B]) as run:
        yield run


async def ask(emu: DiscordEmulator, guild: int, name: str, options: dict[str, Any] | None = None,
              **kw: Any) -> EmuMessage:
    return await (await emu.send_interaction(name, options, guild_id=guild, **kw)
                  ).final_message()


def _bears(msgs: list[EmuMessage]) -> list[EmuMessage]:
    """The bear article's alerts among ``msgs`` (not the commands' answers naming the query)."""
    return [m for m in msgs if m.source != "interaction"
            and "grizzly" in (m.content + json.dumps(m.embeds)).lower()]


def _shown(msg: EmuMessage) -> str:
    """A refusal as Discord shows it (the markdown escapes removed)."""
    return msg.content.replace("\\", "")


def _ch(emu: DiscordEmulator, guild: int, name: str) -> ChannelSpec:
    return next(g for g in emu.guilds if g.id == guild).channel(name)


async def test_picked_channels_of_every_kind_get_the_alerts(running: Running) -> None:
    emu, engine = running.emu, running.engine
    thread = emu.threads(_ch(emu, A, "alerts").id)[0]
    picks: dict[str, Any] = {"text": _ch(emu, A, "ops"), "news": _ch(emu, A, "briefing"),
                             "forum": _ch(emu, A, "desk-forum"), "thread": thread.id}
    for name, channel in picks.items():
        ok = await ask(emu, A, "rules add", {"name": name, "query": "grizzly",
                                             "channel": channel})
        assert not ok.ephemeral, ok.content
        channel_id = channel if isinstance(channel, int) else channel.id
        assert f"<#{channel_id}>" in ok.content
    # no channel: the one the command runs in
    here = await ask(emu, A, "rules add", {"name": "here", "query": "grizzly"},
                     channel_id=_ch(emu, A, "general").id)
    assert not here.ephemeral and f"<#{_ch(emu, A, 'general').id}>" in here.content
    # B's rule on its own channel
    ok_b = await ask(emu, B, "rules add", {"name": "bears", "query": "grizzly",
                                           "channel": _ch(emu, B, "ops")})
    assert not ok_b.ephemeral

    routes_a = engine.server_routes(A)
    assert sorted(r.name for r in routes_a.values()) == [
        "briefing", "desk chat", "desk-forum", "general", "ops"]
    assert {r.channel_id for r in routes_a.values()} == {
        _ch(emu, A, n).id for n in ("ops", "briefing", "desk-forum", "general")} | {thread.id}
    assert [r.channel_id for r in engine.server_routes(B).values()] == [_ch(emu, B, "ops").id]
    # each rule's channel is its route's key; /rules list shows the channel's name
    rules = {v.rule.name: v.rule for v in await engine.rules(guild=A)}
    assert {rules[n].channel for n in ("text", "news", "forum", "thread", "here")} == set(routes_a)
    listed = (await ask(emu, A, "rules list")).embeds[0]["description"]
    for label in ("#ops", "#briefing", "#desk-forum", "#desk chat", "#general"):
        assert label in listed
    assert str(A) not in listed

    (running.seeds / "bear.txt").write_text(BEAR)
    forum = _ch(emu, A, "desk-forum")
    await running.wait_for(lambda: all(_bears(emu.messages(c.id)) for c in (
        _ch(emu, A, "ops"), _ch(emu, A, "briefing"), _ch(emu, A, "general"), thread,
        _ch(emu, B, "ops"))) and bool(emu.threads(forum.id)))
    await asyncio.sleep(0.3)  # nothing else is on its way
    for c in (_ch(emu, A, "ops"), _ch(emu, A, "briefing"), _ch(emu, A, "general"), thread,
              _ch(emu, B, "ops")):
        assert len(_bears(emu.messages(c.id))) == 1, c.name
    # the forum: one post named after the headline, its starter message the alert
    (post,) = emu.threads(forum.id)
    assert post.name == "Bear news"
    assert len(_bears(emu.messages(post.id))) == 1
    # nothing else got the bear: not #alerts (the config's route), not B's other channels
    for c in (_ch(emu, A, "alerts"), _ch(emu, B, "alerts"), _ch(emu, B, "general")):
        assert _bears(emu.messages(c.id)) == [], c.name
    assert emu.validate_all() == []


async def test_a_channel_the_bot_cannot_post_in_is_refused_and_nothing_stored(
        running: Running) -> None:
    emu, engine = running.emu, running.engine
    closed = await ask(emu, A, "rules add", {"name": "shut", "query": "grizzly",
                                             "channel": _ch(emu, A, "closed")})
    assert closed.ephemeral
    assert "#closed" in _shown(closed) and "Send Messages" in _shown(closed)
    assert "Embed Links" not in _shown(closed) and "View Channel" not in _shown(closed)
    forum = await ask(emu, A, "rules add", {"name": "shut", "query": "grizzly",
                                            "channel": _ch(emu, A, "closed-forum")})
    assert forum.ephemeral and "#closed-forum" in _shown(forum)
    assert "Create Public Threads" in _shown(forum) and "Embed Links" in _shown(forum)
    assert "Send Messages" not in _shown(forum)
    quiet = emu.threads(_ch(emu, A, "no-threads").id)[0]
    thread = await ask(emu, A, "rules add", {"name": "shut", "query": "grizzly",
                                             "channel": quiet.id})
    assert thread.ephemeral and "#quiet thread" in _shown(thread)
    assert "Send Messages in Threads" in _shown(thread)
    # run in a channel it cannot post in, without naming one: the same refusal
    here = await ask(emu, A, "rules add", {"name": "shut", "query": "grizzly"},
                     channel_id=_ch(emu, A, "closed").id)
    assert here.ephemeral and "#closed" in _shown(here)
    # a bad query is refused before the channel becomes a route
    bad = await ask(emu, A, "rules add", {"name": "shut", "query": "grizzly AND",
                                          "channel": _ch(emu, A, "ops")})
    assert bad.ephemeral and "column" in bad.content
    # so is a bad name (the model's, the engine's) or a bad template: the route is made with
    # the rule, not before it (a refused rule left its channel in /channels list)
    for options, says in [({"name": "bad name"}, "name"),
                          ({"name": "shut\u200d"}, "invisible"),
                          ({"name": "shut", "template": "{nope}"}, "template")]:
        refused = await ask(emu, A, "rules add", {"query": "grizzly", **options,
                                                  "channel": _ch(emu, A, "ops")})
        assert refused.ephemeral and says in _shown(refused), _shown(refused)
    assert "shut" not in engine.rule_names(A)
    assert engine.server_routes(A) == {} and engine.server_routes() == {}
    assert await engine.store.list_rules() == []
    assert emu.validate_all() == []


async def test_another_servers_channel_is_refused(running: Running) -> None:
    emu, engine = running.emu, running.engine
    theirs = _ch(emu, B, "ops")
    forged = await ask(emu, A, "rules add", {"name": "steal", "query": "grizzly",
                                             "channel": theirs}, foreign_channels=True)
    assert forged.ephemeral and "not a channel of this server" in _shown(forged)
    assert "Other desk" not in _shown(forged) and "ops" not in _shown(forged)
    assert engine.server_routes() == {} and "steal" not in engine.rule_names(A)
    # a rule of A, however it was made, never reaches B's channel
    ok = await ask(emu, A, "rules add", {"name": "mine", "query": "grizzly"})
    assert not ok.ephemeral
    (running.seeds / "bear.txt").write_text(BEAR)
    general_a = _ch(emu, A, "general")
    await running.wait_for(lambda: bool(_bears(emu.messages(general_a.id))))
    await asyncio.sleep(0.3)
    b_guild = next(g for g in emu.guilds if g.id == B)
    for c in b_guild.channels:
        assert _bears(emu.messages(c.id)) == [], c.name
    assert emu.validate_all() == []


async def test_a_picked_route_survives_a_restart(two: DiscordEmulator, tmp_path: Path) -> None:
    emu = two
    ops = _ch(emu, A, "ops")
    async with newswatch(emu, tmp_path, [A, B]) as run:
        ok = await ask(emu, A, "rules add", {"name": "bears", "query": "grizzly",
                                             "channel": ops})
        assert not ok.ephemeral
        (key,) = run.engine.server_routes(A)
    async with newswatch(emu, tmp_path, [A, B]) as again:
        assert {k: r.channel_id for k, r in again.engine.server_routes(A).items()} == {
            key: ops.id}
        (again.seeds / "bear.txt").write_text(BEAR)
        await again.wait_for(lambda: bool(_bears(emu.messages(ops.id))))
        # picking the same channel again keeps the one route
        ok = await ask(emu, A, "rules add", {"name": "more", "query": "lviv",
                                             "channel": ops})
        assert not ok.ephemeral and list(again.engine.server_routes(A)) == [key]
    assert emu.validate_all() == []


async def test_commands_sync_globally_without_guild_ids(
        two: DiscordEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    emu = two
    caplog.set_level(logging.INFO, logger="newswatch")
    async with newswatch(emu, tmp_path, []) as run:
        names = {c["name"] for c in emu.commands()}
        assert {"rules", "search", "sources"} <= names
        assert emu.commands(A) == [] and emu.commands(B) == []
        assert "globally" in caplog.text
        # every server the bot is in can use them, each with its own rules and channels
        for guild in (A, B):
            ok = await ask(emu, guild, "rules add", {"name": "bears", "query": "grizzly",
                                                     "channel": _ch(emu, guild, "ops")})
            assert not ok.ephemeral, ok.content
        assert sorted(r.key for r in await run.engine.store.list_rules()) == [
            f"{A}:bears", f"{B}:bears"]
        (run.seeds / "bear.txt").write_text(BEAR)
        await run.wait_for(lambda: all(_bears(emu.messages(_ch(emu, g, "ops").id))
                                       for g in (A, B)))
    puts = emu.requests_for("PUT /applications/{application_id}/commands")
    assert len(puts) == 1
    assert not emu.requests_for("PUT /applications/{application_id}/guilds/{guild_id}/commands")
    assert emu.validate_all() == []


async def test_a_servers_channel_takes_route_settings_from_discord(running: Running) -> None:
    emu, engine = running.emu, running.engine
    ops = _ch(emu, A, "ops")
    # checked by the config's own model; the refusal names what was wrong, nothing is stored
    bad = await ask(emu, A, "channels set", {"channel": ops, "mode": "digest"})
    assert bad.ephemeral and "digest_every" in _shown(bad)
    bad = await ask(emu, A, "channels set", {"channel": ops, "timezone": "Mars/Olympus"})
    assert bad.ephemeral and "timezone" in _shown(bad)
    # commas only name no time: refused, not taken as clearing the setting
    bad = await ask(emu, A, "channels set", {"channel": ops, "digest_at": ",,,"})
    assert bad.ephemeral and "names no time of day" in _shown(bad)
    # a thread holds no threads: each story's update asked Discord for one, refused (50024)
    thread = emu.threads(_ch(emu, A, "alerts").id)[0]
    bad = await ask(emu, A, "channels set", {"channel": thread.id, "stories": "thread"})
    assert bad.ephemeral and "a thread holds no threads of its own" in _shown(bad)
    # (a refused setting made the channel a route all the same, listed with defaults)
    assert not engine.server_routes(A)
    assert "No channel" in (await ask(emu, A, "channels list")).content
    # members may look, only admins change
    member = await ask(emu, A, "channels set", {"channel": ops, "stories": "off"},
                       user="member")
    assert member.ephemeral
    ok = await ask(emu, A, "channels set", {"channel": ops, "mode": "digest",
                                            "digest_every": "6h", "stories": "off"})
    assert not ok.ephemeral and "mode digest" in _shown(ok)
    assert "digest_every 6h" in _shown(ok)
    key = next(k for k, r in engine.server_routes(A).items() if r.channel_id == ops.id)
    route = engine.route(key)
    assert route is not None and route.mode == "digest" and route.stories == "off"
    # a schedule without the digest mode would do nothing: refused by name
    bad = await ask(emu, A, "channels set", {"channel": _ch(emu, A, "general"),
                                             "digest_at": "08:00"})
    assert bad.ephemeral and "used only with mode = 'digest'" in _shown(bad)
    assert [r.channel_id for r in engine.server_routes(A).values()] == [ops.id]
    # a mode leaves out the other mode's settings
    general = _ch(emu, A, "general")
    ok = await ask(emu, A, "channels set", {"channel": general, "mode": "digest",
                                            "digest_every": "1h"})
    assert not ok.ephemeral and "digest_every 1h" in _shown(ok)
    back = await ask(emu, A, "channels set", {"channel": general, "mode": "immediate"})
    assert not back.ephemeral and "digest_every" not in _shown(back), _shown(back)
    listed = (await ask(emu, A, "channels list")).embeds[0]["description"]
    assert "#ops" in listed and "mode digest" in listed
    # B sees none of A's channels and cannot set one of them
    nothing = await ask(emu, B, "channels list")
    assert nothing.ephemeral and "No channel" in nothing.content
    foreign = await ask(emu, B, "channels set", {"channel": ops.id, "mode": "immediate"},
                        foreign_channels=True)
    assert foreign.ephemeral and engine.route(key) == route
    # the digest route keeps the alert for its digest, as a config route would
    added = await ask(emu, A, "rules add", {"name": "bears", "query": "grizzly",
                                            "channel": ops})
    assert not added.ephemeral
    (running.seeds / "bear.txt").write_text(BEAR)
    rows = []
    for _ in range(200):
        rows = [r for r in await engine.store.alerts(kind="alert") if r.route == key]
        # written pending; delivery claims it (sending) and keeps it for the digest
        if rows and all(r.state not in ("pending", "sending") for r in rows):
            break
        await asyncio.sleep(0.05)
    assert [r.state for r in rows] == ["scheduled"]
    assert _bears(emu.messages(ops.id)) == []
    # the channel's last rule removed: what it kept still waits for its digest, and
    # /digest now still knows the channel (it refused it as 'no route named'); B does not
    removed = await ask(emu, A, "rules remove", {"name": "bears"})
    assert "removed" in _shown(removed).lower(), _shown(removed)
    choices = await emu.send_autocomplete("digest now", {"route": "#o"}, focused="route",
                                          guild_id=A)
    assert [c["value"] for c in choices] == ["#ops"]
    other = await ask(emu, B, "digest now", {"route": key})
    assert other.ephemeral and "no route named" in _shown(other)
    sent = await ask(emu, A, "digest now", {"route": "#ops"})
    assert not sent.ephemeral, sent.content
    await running.wait_for(lambda: any(
        "bear news" in (m.content + json.dumps(m.embeds)).lower()
        for m in emu.messages(ops.id) if m.source != "interaction"))
    # back to the defaults
    reset = await ask(emu, A, "channels set", {"channel": ops, "reset": True})
    assert "defaults" in reset.content and engine.route(key) == RouteConfig(target=ops.id)
    assert emu.validate_all() == []


async def test_every_label_shown_names_its_route(two: DiscordEmulator, tmp_path: Path) -> None:
    """A route is offered and shown by its label (``#name``); given back, each names its own
    route, whatever ':' it holds: two threads of one name, and one named like a route's key."""
    alerts = two.guild.channel("alerts").id
    desk = two.add_thread(alerts, "desk: day")
    twin = two.add_thread(alerts, "desk: day")
    keyish = two.add_thread(alerts, f"{A}:ops")
    async with newswatch(two, tmp_path, [A, B]) as run:
        emu, engine = run.emu, run.engine
        for i, ch in enumerate([twin, keyish, _ch(emu, A, "ops")]):
            assert not (await ask(emu, A, "rules add", {"name": f"r{i}", "query": "troops",
                                                        "channel": ch.id})).ephemeral
            assert not (await ask(emu, A, "channels set", {"channel": ch.id, "mode": "digest",
                                                           "digest_every": "1d"})).ephemeral
        assert not (await ask(emu, A, "rules add", {"name": "wombats", "query": "wombat",
                                                    "channel": desk.id})).ephemeral
        offered = [c["value"] for c in await emu.send_autocomplete(
            "digest now", {"route": ""}, focused="route", guild_id=A)]
        assert {"#desk: day", "#desk: day-2", f"#{A}:ops", "#ops"} <= set(offered), offered
        for label in offered:
            said = _shown(await ask(emu, A, "digest now", {"route": label}))
            assert "no route named" not in said and f"route **{label}**." in said, (label, said)
        # a 403 pauses the thread's route; status shows it by its label, which resumes it
        emu.inject(f"POST /channels/{desk.id}/messages", Fault.forbidden(), times=50)
        (run.seeds / "wombat.txt").write_text("Wombat news\nA wombat was seen.")
        await run.wait_for(lambda: bool(engine.paused_routes()), 30)
        emu.clear_faults()
        # the thread whose rule came last took the second name
        label = "#desk: day-2"
        assert engine.route_label(next(iter(engine.paused_routes()))) == label
        status = (await ask(emu, A, "alerts status")).embeds[0]
        assert f"route {label} paused · 1 held" in [f["name"] for f in status["fields"]]
        paused = [c["value"] for c in await emu.send_autocomplete(
            "alerts resume", {"route": ""}, focused="route", guild_id=A)]
        assert paused == [label]
        resumed = await ask(emu, A, "alerts resume", {"route": label})
        assert not resumed.ephemeral and "resumed; 1 held" in _shown(resumed), resumed.content
        assert engine.paused_routes() == {}
        await run.wait_for(lambda: any("wombat" in json.dumps(m.embeds).lower()
                                       for m in emu.messages(desk.id)))
        assert emu.validate_all() == []


_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")  # those that reorder a run of text


def _raw_bidi(msg: EmuMessage) -> list[str]:
    return _BIDI.findall(msg.content + json.dumps(msg.embeds, ensure_ascii=False))


async def test_direction_controls_are_refused_in_queries_and_never_shown_raw(
        two: DiscordEmulator, tmp_path: Path) -> None:
    """A right-to-left override makes what follows read reversed: a query holding one is
    refused by character and column, and a name or id holding one is shown with it escaped."""
    evil = two.add_thread(two.guild.channel("alerts").id, "ops\u202eevil")
    async with newswatch(two, tmp_path, [A, B]) as run:
        emu = run.emu
        refused = await ask(emu, A, "rules add", {"name": "t", "query": "troops\u202e",
                                                  "channel": evil.id})
        assert refused.ephemeral and not _raw_bidi(refused), refused.content
        assert "U+202E (RIGHT-TO-LEFT OVERRIDE)" in _shown(refused)
        assert "at column 7" in refused.content and "troops\\u202e" in refused.content
        assert not run.engine.server_routes(A), "nothing is stored for a refused rule"
        tested = await ask(emu, A, "rules test", {"query": "\u2066troops"})
        assert tested.ephemeral and "U+2066" in tested.content and "column 1" in tested.content
        seen = []
        seen.append(await ask(emu, A, "rules add", {"name": "t", "query": "troops",
                                                    "channel": evil.id}))
        assert not seen[-1].ephemeral
        seen.append(await ask(emu, A, "channels list"))
        assert "ops\\\\u202eevil" in seen[-1].embeds[0]["description"]
        offered = await emu.send_autocomplete("digest now", {"route": "ops"}, focused="route",
                                              guild_id=A)
        assert [c["name"] for c in offered] == ["#ops\\u202eevil"]
        # the value is the label as it is, and so is what the list shows typed back
        for value in (offered[0]["value"], offered[0]["name"]):
            seen.append(await ask(emu, A, "digest now", {"route": value}))
            assert "Nothing is waiting" in seen[-1].content, seen[-1].content
        seen.append(await ask(emu, A, "digest now", {"route": "nowhere"}))
        assert "known" in seen[-1].content and "u202eevil" in seen[-1].content
        seen.append(await ask(emu, A, "article", {"id": "\u202e0123456789"}))
        seen.append(await ask(emu, A, "rules list"))
        for msg in seen:
            assert not _raw_bidi(msg), (msg.content, msg.embeds)
        assert emu.validate_all() == []
