"""Two servers share one newswatch (the real discord.py against the emulator): each has its own
rules and mutes, both may have a rule of the same name, the config file's rules are seen by
both (marked global), and no command of server B reads or changes server A's rules, mutes or
what its rules matched — not even their names in autocomplete or in an article's matches."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.bot.conftest import TOKEN, Running, bot_config, start_running
from tests.conftest import SEEDS
from tests.fakes.discord_emulator import DiscordEmulator, EmuMessage, default_guild
from watchers.config import parse_config

A, B = 1100000000000000001, 1100000000000000501


@pytest.fixture
async def two() -> AsyncIterator[DiscordEmulator]:
    guilds = [default_guild(A, "Newsroom"), default_guild(B, "Other desk")]
    async with DiscordEmulator(token=TOKEN, guilds=guilds) as e, e.patch_discord():
        yield e


@pytest.fixture
async def running(two: DiscordEmulator, tmp_path: Path) -> AsyncIterator[Running]:
    data = bot_config(two, tmp_path)
    data["discord"]["guild_ids"] = [A, B]
    shutil.copytree(SEEDS, tmp_path / "seeds")
    run = await start_running(parse_config(data, base_dir=tmp_path), two, tmp_path / "seeds")
    try:
        await two.wait_until_identified(timeout=10)
        await run.wait_for(lambda: bool(two.commands(B)))
        yield run
    finally:
        run.stop.set()
        assert await asyncio.wait_for(run.task, 15) == 0


async def ask(emu: DiscordEmulator, guild: int, name: str,
              options: dict[str, Any] | None = None) -> EmuMessage:
    return await (await emu.send_interaction(name, options, guild_id=guild)).final_message()


def alerts_of(emu: DiscordEmulator, guild: int) -> int:
    return next(g for g in emu.guilds if g.id == guild).channel("alerts").id


async def test_two_servers_keep_their_rules_and_mutes_apart(running: Running) -> None:
    emu, engine = running.emu, running.engine
    ch = running.alerts_channel
    await running.wait_for(lambda: len(emu.messages(ch)) >= 5)
    # the same name in both servers; one more rule only A has
    # (each posting to its own server's #alerts; A's is the config's "alerts" channel too)
    for guild, query in ((A, "grizzly"), (B, "sanctions")):
        ok = await ask(emu, guild, "rules add", {"name": "watch", "query": query,
                                                 "channel": alerts_of(emu, guild)})
        assert not ok.ephemeral and "watch" in ok.content
    ok = await ask(emu, A, "rules add", {"name": "alpha", "query": "lviv",
                                         "channel": ch})
    assert not ok.ephemeral
    assert sorted(r.key for r in await engine.store.list_rules()) == [
        f"{A}:alpha", f"{A}:watch", f"{B}:watch"]

    # /rules list: each its own, both the config's, marked global
    listed = {g: (await ask(emu, g, "rules list")).embeds[0] for g in (A, B)}
    assert "grizzly" in listed[A]["description"] and "lviv" in listed[A]["description"]
    assert "sanctions" not in listed[A]["description"]
    assert "sanctions" in listed[B]["description"]
    assert "grizzly" not in listed[B]["description"] and "alpha" not in listed[B]["description"]
    for g in (A, B):
        assert "troops" in listed[g]["description"] and "kyiv" in listed[g]["description"]
        assert listed[g]["footer"]["text"].startswith("Global")
        assert "troops" in listed[g]["footer"]["text"]
        assert "watch" not in listed[g]["footer"]["text"]

    # autocomplete offers only what the server sees
    for command, option in (("rules remove", "name"), ("mute", "rule"), ("recent", "rule")):
        got = await emu.send_autocomplete(command, {option: "al"}, focused=option, guild_id=B)
        assert got == []
        got = await emu.send_autocomplete(command, {option: "al"}, focused=option, guild_id=A)
        assert [c["value"] for c in got] == ["alpha"]

    # B cannot change, mute, look up or preview A's rule: the same answer as no rule at all
    gone = await ask(emu, B, "rules remove", {"name": "alpha"})
    assert "No rule named" in gone.content
    for name, options in (("mute", {"rule": "alpha", "duration": "1h"}),
                          ("unmute", {"rule": "alpha"}),
                          ("recent", {"rule": "alpha"}),
                          ("rules preview", {"name": "alpha"})):
        refused = await ask(emu, B, name, options)
        assert refused.ephemeral and "no rule named 'alpha'" in refused.content.lower(), name
        for_nothing = await ask(emu, B, name, {**options, next(iter(options)): "nothing"})
        assert for_nothing.content.replace("nothing", "alpha") == refused.content, name
    # nor by its key
    keyed = await ask(emu, B, "mute", {"rule": f"{A}:alpha", "duration": "1h"})
    assert keyed.ephemeral and "no rule named" in keyed.content.lower()
    assert engine.rule_names(A) == ["alpha", "kyiv", "troops", "watch"]

    # a server's rule cannot shadow the config's
    shadow = await ask(emu, B, "rules add", {"name": "troops", "query": "tanks"})
    assert shadow.ephemeral and "config file" in shadow.content

    # B mutes its "watch": A's is untouched
    muted = await ask(emu, B, "mute", {"rule": "watch", "duration": "2h"})
    assert "muted until" in muted.content
    assert set(await engine.store.mutes(now=engine.delivery.clock.now())) == {f"{B}:watch"}

    # an article only A's rules match: A sees why, B sees no rule of A's
    (running.seeds / "bear.txt").write_text("Bear news\nA grizzly was seen near Lviv.")
    await running.wait_for(lambda: any("grizzly" in json.dumps(m.embeds)
                                       for m in emu.messages(ch)))
    ((art, _),) = await engine.recent(rule=f"{A}:watch", limit=1)
    seen_a = await ask(emu, A, "article", {"id": art.id})
    assert {f["name"] for f in seen_a.embeds[0]["fields"]} >= {"Rule watch", "Rule alpha"}
    seen_b = await ask(emu, B, "article", {"id": art.id})
    assert [f["name"] for f in seen_b.embeds[0]["fields"]] == ["Rules"]
    assert str(A) not in json.dumps(seen_b.embeds) and "alpha" not in json.dumps(seen_b.embeds)
    # /recent: A's newest is the bear; B's lists only what its rules (and the config's) matched
    recent_a = await ask(emu, A, "recent", {"rule": "watch"})
    assert "grizzly" in json.dumps(recent_a.embeds).lower()
    recent_b = await ask(emu, B, "recent", {"rule": "watch"})
    assert "grizzly" not in json.dumps(recent_b.embeds).lower()
    everything_b = await ask(emu, B, "recent")
    assert "grizzly" not in json.dumps(everything_b.embeds).lower()
    assert "grizzly" in json.dumps((await ask(emu, A, "recent")).embeds).lower()
    # A's preview of its own rule works; B's of its own "watch" (no match yet) says so
    preview = await ask(emu, A, "rules preview", {"name": "watch"})
    assert preview.ephemeral and "grizzly" in json.dumps(preview.embeds).lower()
    preview_b = await ask(emu, B, "rules preview", {"name": "watch"})
    assert preview_b.ephemeral and "matched no stored article" in preview_b.content

    # A removes its rule; B's of the same name stays
    removed = await ask(emu, A, "rules remove", {"name": "watch"})
    assert "removed" in removed.content
    assert engine.rule_names(B) == ["kyiv", "troops", "watch"]
    assert engine.rule_names(A) == ["alpha", "kyiv", "troops"]
    assert emu.validate_all() == []
