"""newswatch with the real discord.py client against the Discord API emulator.

Every request the bot sends is recorded and validated against Discord's OpenAPI spec plus the
two limits the spec lacks (content ≤ 2000, all embed text ≤ 6000).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot import interactions
from tests.bot.conftest import Running, bot_config, running_with, start_running
from tests.conftest import SEEDS
from tests.fakes.discord_emulator import DiscordEmulator, EmuMessage, InteractionHandle
from watchers.models import Article


def embeds_of(messages: list[EmuMessage]) -> list[dict]:  # type: ignore[type-arg]
    return [e for m in messages for e in m.embeds]


async def test_seed_alerts_arrive_as_valid_embeds_and_search_finds_troops(running: Running
                                                                          ) -> None:
    emu = running.emu
    ch = running.alerts_channel
    # troops or soldiers: 000, 002, 003, 004; kyiv~: 000, 001, 004 → every seed alerts once
    await running.wait_for(lambda: len(emu.messages(ch)) >= 5)
    await asyncio.sleep(0.3)
    msgs = emu.messages(ch)
    assert len(msgs) == 5
    for m in msgs:
        (embed,) = m.embeds
        assert embed["title"] and embed["footer"]["text"].startswith("newswatch ·")
        fields = {f["name"]: f["value"] for f in embed["fields"]}
        assert set(fields) >= {"Rule", "Published", "Why"}
        assert "**" in embed.get("description", "")  # the matched terms, in bold
        assert m.pings_everyone() is False and not m.pinged_role_ids() and not m.pinged_user_ids()
        assert m.nonce
    rules_seen = {f["value"] for e in embeds_of(msgs) for f in e["fields"] if f["name"] == "Rule"}
    assert any("troops" in r for r in rules_seen) and any("kyiv" in r for r in rules_seen)
    # delivered rows record the Discord message id
    delivered = await running.engine.store.alerts(state="delivered")
    # str(): a row without an id shows as 'None' in the diff instead of breaking the sort
    assert sorted(str(r.remote_id) for r in delivered) == sorted(str(m.id) for m in msgs)

    resp = await emu.send_interaction("search", {"query": "troops"})
    msg = await resp.final_message(timeout=10)
    (embed,) = msg.embeds
    assert "troops" in embed["title"].lower()
    assert "3 result(s)" in embed["footer"]["text"]  # 000, 002, 003 say troops
    assert emu.validate_all() == []


async def test_restart_posts_nothing_twice(running: Running, tmp_path: Path) -> None:
    emu = running.emu
    await running.wait_for(lambda: len(emu.messages(running.alerts_channel)) >= 5)
    before = len(emu.all_messages())
    await running.engine.run_once()
    assert len(emu.all_messages()) == before


async def test_hostile_article_pings_nobody_and_shows_as_written(running: Running) -> None:
    emu = running.emu
    ch = running.alerts_channel
    await running.wait_for(lambda: len(emu.messages(ch)) >= 5)
    hostile = "@everyone <@&1> [x](https://evil) `code` **bold** troops"
    (running.seeds / "evil.txt").write_text(f"{hostile}\nTroops everywhere, @here <@123>.")
    await running.wait_for(lambda: len(emu.messages(ch)) >= 6)
    msg = emu.messages(ch)[-1]
    (embed,) = msg.embeds
    assert msg.pings_everyone() is False and not msg.pinged_role_ids() and not msg.pinged_user_ids()
    assert msg.allowed_mentions is not None and msg.allowed_mentions.get("parse") == []
    title = embed["title"]
    # every markup character is escaped, so Discord shows it as written
    assert "\\@everyone" in title and "\\<\\@&1\\>" in title
    assert "\\[x\\]\\(https\\:" in title and "\\`code\\`" in title and "\\*\\*bold\\*\\*" in title
    assert "\\<\\@123\\>" in embed["description"] and "\\@here" in embed["description"]
    assert emu.validate_all() == []


@pytest.mark.parametrize("running", [{"rules": [
    {"name": "troops", "query": "troops", "mention_role": 1100000000000000101}]}],
    indirect=True)
async def test_rule_role_is_the_only_mention_allowed(running: Running) -> None:
    emu = running.emu
    await running.wait_for(lambda: len(emu.messages(running.alerts_channel)) >= 3)
    for m in emu.messages(running.alerts_channel):
        assert m.content == "<@&1100000000000000101>"
        assert m.allowed_mentions is not None
        assert m.allowed_mentions["roles"] == ["1100000000000000101"] or \
            m.allowed_mentions["roles"] == [1100000000000000101]
        assert m.pings_everyone() is False


async def test_lookup_commands(running: Running) -> None:
    emu = running.emu
    await running.wait_for(lambda: len(emu.messages(running.alerts_channel)) >= 5)
    recent = await (await emu.send_interaction("recent", {"rule": "kyiv"})).final_message()
    assert "Recent alerts for kyiv" in recent.embeds[0]["title"]
    assert "3 result(s)" in recent.embeds[0]["footer"]["text"]
    # the rule named in another case: the same results, each with its "why" (it had none)
    upper = await (await emu.send_interaction("recent", {"rule": "KYIV"})).final_message()
    assert "Recent alerts for kyiv" in upper.embeds[0]["title"]
    assert "**" in recent.embeds[0]["description"]  # the words that fired, in bold
    assert upper.embeds[0]["description"] == recent.embeds[0]["description"]
    art: Article = (await running.engine.recent(rule="kyiv", limit=1))[0][0]
    detail = await (await emu.send_interaction("article", {"id": art.id})).final_message()
    names = [f["name"] for f in detail.embeds[0]["fields"]]
    assert "Rule kyiv" in names
    missing = await (await emu.send_interaction("article", {"id": "nope-nope"})).final_message()
    assert missing.ephemeral and "No article" in missing.content
    assert "first 6 or more characters" in missing.content  # how ids are found
    short = await (await emu.send_interaction("article", {"id": art.id[:5]})).final_message()
    assert short.ephemeral and "first 6 or more characters" in short.content
    prefix = await (await emu.send_interaction("article", {"id": art.id[:6]})).final_message()
    assert prefix.embeds and "Rule kyiv" in [f["name"] for f in prefix.embeds[0]["fields"]]
    # copied from a result with the backticks it is shown in, as /story takes one
    quoted = await (await emu.send_interaction("article", {"id": f"`{art.id}`"})
                    ).final_message()
    assert quoted.embeds and "Rule kyiv" in [f["name"] for f in quoted.embeds[0]["fields"]]
    stats = await (await emu.send_interaction("stats")).final_message()
    fields = {f["name"]: f["value"] for f in stats.embeds[0]["fields"]}
    assert fields["Articles"] == "5" and "delivered 5" in fields["Alerts"]
    assert any(name.startswith("seeds") for name in fields)
    rules = await (await emu.send_interaction("rules list")).final_message()
    assert "troops" in rules.embeds[0]["description"]
    sources = await (await emu.send_interaction("sources list")).final_message()
    assert "seeds" in sources.embeds[0]["description"]
    choices = await emu.send_autocomplete("recent", {"rule": "ky"}, focused="rule")
    assert [c["value"] for c in choices] == ["kyiv"]
    assert emu.validate_all() == []


async def test_search_bad_input_is_a_clear_ephemeral_error(running: Running) -> None:
    emu = running.emu
    for query, expected in [("sanctions AND", "column 14"), ('"unclosed', "column"),
                            ("(((", "column"), ("/[/", "column")]:
        msg = await (await emu.send_interaction("search", {"query": query})).final_message()
        assert msg.ephemeral and "Query error" in msg.content and expected in msg.content
    msg = await (await emu.send_interaction("search", {"query": "troops", "since": "soon"})
                 ).final_message()
    assert msg.ephemeral and "since" in msg.content
    none = await (await emu.send_interaction("search", {"query": "football"})).final_message()
    assert "0 result(s)" in none.embeds[0]["footer"]["text"]
    assert emu.validate_all() == []


async def test_search_takes_a_source_whose_articles_are_stored_but_that_no_longer_runs(
        running: Running) -> None:
    """/search shows an imported source's articles by its name, and refused that name in its
    ``source`` option as unknown (the command line took it)."""
    from watchers.rules.lookup import index_terms, places_of
    from watchers.store.base import ArticleRecord

    emu = running.emu
    await running.wait_for(lambda: len(emu.messages(running.alerts_channel)) >= 5)
    old = Article(source="BBC News", guid="bbc-1", title="Troops gather at the border",
                  text="An imported report.")
    await running.engine.store.record_many([ArticleRecord(
        old, [], [], index_terms(old.title, old.text), places=places_of(old.title, old.text))])
    msg = await (await emu.send_interaction(
        "search", {"query": "troops", "source": "BBC News"})).final_message()
    assert not msg.ephemeral, msg.content
    (embed,) = msg.embeds
    assert "1 result(s)" in embed["footer"]["text"] and "border" in embed["description"]
    refused = await (await emu.send_interaction(
        "search", {"query": "troops", "source": "BBC Newz"})).final_message()
    assert refused.ephemeral and "no source named 'BBC Newz'" in refused.content
    assert "BBC News" in refused.content and "seeds" in refused.content
    # and its autocomplete offers it, beside the running ones (it offered running ones alone)
    offered = [c["value"] for c in await emu.send_autocomplete(
        "search", {"query": "troops", "source": "b"}, focused="source")]
    assert "BBC News" in offered
    assert [c["value"] for c in await emu.send_autocomplete(
        "search", {"query": "troops", "source": "see"}, focused="source")] == ["seeds"]
    assert emu.validate_all() == []


async def test_article_opens_any_id_a_result_shows(running: Running) -> None:
    """An import keeps the file's ids (up to 1,000 bytes), which results show: /article took 4
    to 64 characters, so "t1" or a long link-shaped id could never be opened."""
    from watchers.rules.lookup import index_terms, places_of
    from watchers.store.base import ArticleRecord

    emu = running.emu
    await running.wait_for(lambda: len(emu.messages(running.alerts_channel)) >= 5)
    long_id = "https://example.org/news/2022/02/01/" + "troops-gather-at-the-border-" * 3
    for ident in ("t1", long_id):
        a = Article(id=ident, source="import", title=f"Troops gather {len(ident)}",
                    text="An imported report.")
        await running.engine.store.record_many([ArticleRecord(
            a, [], [], index_terms(a.title, a.text), places=places_of(a.title, a.text))])
        msg = await (await emu.send_interaction("article", {"id": ident})).final_message()
        assert not msg.ephemeral, msg.content
        assert f"Troops gather {len(ident)}" in msg.embeds[0]["title"]
    assert emu.validate_all() == []


async def test_a_string_option_past_its_declared_length_is_refused_before_it_runs(
        running: Running) -> None:
    """Discord's client keeps to the declared 500 characters of a query; a request made by
    hand did not, and /search ran a 10,000-character query and /rules add stored one."""
    emu = running.emu
    long = "troops " * 1500
    msg = await (await emu.send_interaction("search", {"query": long})).final_message()
    assert msg.ephemeral and f"from 1 to 500 characters, not {len(long)}" in msg.content
    before = [r.rule.name for r in await running.engine.rules()]
    msg = await (await emu.send_interaction("rules add", {"name": "longq", "query": long},
                                            user="admin")).final_message()
    assert msg.ephemeral and "500 characters" in msg.content
    assert [r.rule.name for r in await running.engine.rules()] == before
    assert emu.validate_all() == []


async def test_search_pages_with_buttons(running: Running) -> None:
    emu = running.emu
    for i in range(4):
        (running.seeds / f"extra{i}.txt").write_text(f"Extra {i}\nRussia and NATO, part {i}.")
    await running.wait_for(lambda: len(emu.messages(running.alerts_channel)) >= 5)
    await running.wait_for(lambda: running.engine.store is not None)
    for _ in range(100):
        if await running.engine.store.count_articles() >= 9:
            break
        await asyncio.sleep(0.05)
    msg = await (await emu.send_interaction("search", {"query": "russia OR nato"})
                 ).final_message()
    assert "page 1/" in msg.embeds[0]["footer"]["text"]
    next_id = msg.custom_ids[1]
    clicked = await emu.click_button(msg, next_id)
    await clicked.callback()
    edited = emu.get_message(msg.id)
    assert "page 2/" in edited.embeds[0]["footer"]["text"]
    assert emu.validate_all() == []


def _disabled(msg: EmuMessage) -> list[bool]:
    return [c.get("disabled", False) for row in msg.components for c in row["components"]]


async def test_result_buttons_are_disabled_when_they_expire_and_answer_after_a_restart(
        emu: DiscordEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.exts.lookup._views import PagedResults

    shutil.copytree(SEEDS, tmp_path / "seeds")
    for i in range(6):
        (tmp_path / "seeds" / f"extra{i}.txt").write_text(f"Extra {i}\nRussia and NATO, {i}.")
    data = bot_config(emu, tmp_path)
    async with running_with(emu, tmp_path, data, tmp_path / "seeds") as run:
        for _ in range(200):
            if await run.engine.store.count_articles() >= 11:
                break
            await asyncio.sleep(0.05)
        monkeypatch.setattr(PagedResults, "TIMEOUT", 1.0, raising=False)
        short = await (await emu.send_interaction("search", {"query": "russia OR nato"})
                       ).final_message()
        await (await emu.click_button(short, short.custom_ids[1])).callback()
        assert "page 2/" in emu.get_message(short.id).embeds[0]["footer"]["text"]
        # a second after the last click, nothing on the message looks clickable any more
        await run.wait_for(lambda: all(_disabled(emu.get_message(short.id))), 5)
        assert "page 2/" in emu.get_message(short.id).embeds[0]["footer"]["text"]
        monkeypatch.setattr(PagedResults, "TIMEOUT", 600.0)
        kept = await (await emu.send_interaction("search", {"query": "russia OR nato"})
                      ).final_message()
        assert not all(_disabled(kept))  # ▶ at least
    # a restart forgets every view: a click on the old buttons is answered, privately
    async with running_with(emu, tmp_path, data, tmp_path / "seeds"):
        clicked = await emu.click_button(emu.get_message(kept.id), kept.custom_ids[1],
                                         user="member")
        said = await clicked.final_message()
        assert said.ephemeral and "expired" in said.content and "/search" in said.content
        assert "page 1/" in emu.get_message(kept.id).embeds[0]["footer"]["text"]
    assert emu.validate_all() == []


async def test_changing_commands_refuse_non_admins(running: Running) -> None:
    emu = running.emu
    for name, options in [("rules add", {"name": "x", "query": "troops"}),
                          ("rules remove", {"name": "troops"}),
                          ("sources add", {"name": "x", "url": "https://example.org/feed"}),
                          ("mute", {"rule": "troops", "duration": "1h"}),
                          ("unmute", {"rule": "troops"})]:
        msg = await (await emu.send_interaction(name, options, user="member")).final_message()
        assert msg.ephemeral and "Manage Server" in msg.content, name
    assert [r.name for r in await running.engine.store.list_rules()] == []
    # the command definitions also carry the default permission for Discord's own check
    synced = {c["name"]: c for c in emu.commands(emu.guild.id)}
    assert synced["mute"]["default_member_permissions"] == str(1 << 5)
    assert synced["unmute"]["default_member_permissions"] == str(1 << 5)


async def test_rules_added_in_discord_fire_on_the_next_poll_and_persist(running: Running
                                                                        ) -> None:
    emu = running.emu
    ch = running.alerts_channel
    await running.wait_for(lambda: len(emu.messages(ch)) >= 5)
    bad = await (await emu.send_interaction(
        "rules add", {"name": "broken", "query": "sanctions AND"})).final_message()
    assert bad.ephemeral and "column 14" in bad.content
    ok = await (await emu.send_interaction(
        "rules add", {"name": "bears", "query": "bear~ OR grizzly", "severity": "high",
                      "channel": emu.channel("alerts")})
    ).final_message()
    assert not ok.ephemeral and "bears" in ok.content
    assert [r.name for r in await running.engine.store.list_rules()] == ["bears"]
    (running.seeds / "bear.txt").write_text("Bear news\nA grizzly was seen near Lviv.")
    await running.wait_for(lambda: any("grizzly" in json.dumps(m.embeds)
                                       for m in emu.messages(ch)))
    test = await (await emu.send_interaction("rules test", {"query": "grizzly"})).final_message()
    assert test.embeds[0]["title"].startswith("1 match")
    removed = await (await emu.send_interaction("rules remove", {"name": "bears"})
                     ).final_message()
    assert "removed" in removed.content
    cfg_rule = await (await emu.send_interaction("rules remove", {"name": "troops"})
                      ).final_message()
    assert cfg_rule.ephemeral and "config file" in cfg_rule.content
    assert emu.validate_all() == []


async def test_mute_records_but_posts_nothing_until_unmuted(running: Running) -> None:
    emu = running.emu
    ch = running.alerts_channel
    await running.wait_for(lambda: len(emu.messages(ch)) >= 5)
    # typed in another case, named as it is spelt ("Rule **TROOPS** muted" named "troops")
    muted = await (await emu.send_interaction("mute", {"rule": "TROOPS", "duration": "2h"})
                   ).final_message()
    assert muted.content.startswith("Rule **troops** muted until"), muted.content
    bad = await (await emu.send_interaction("mute", {"rule": "troops", "duration": "forever"})
                 ).final_message()
    assert bad.ephemeral and "duration" in bad.content
    (running.seeds / "muted.txt").write_text("Quiet news\nMore troops arrive.")
    await running.wait_for(lambda: running.engine.store is not None and
                           asyncio.get_event_loop() is not None)
    for _ in range(60):
        counts = await running.engine.store.alert_counts()
        if counts.get("suppressed"):
            break
        await asyncio.sleep(0.05)
    assert counts.get("suppressed") == 1
    assert len(emu.messages(ch)) == 5
    unmuted = await (await emu.send_interaction("unmute", {"rule": "troops"})).final_message()
    assert "unmuted" in unmuted.content


async def test_rules_list_gives_a_long_mutes_end_with_its_date(running: Running) -> None:
    emu = running.emu
    muted = await (await emu.send_interaction("mute", {"rule": "troops", "duration": "30d"})
                   ).final_message()
    stamp = re.search(r"<t:(\d+):f>", muted.content)
    assert stamp is not None, muted.content
    listed = (await (await emu.send_interaction("rules list")).final_message()
              ).embeds[0]["description"]
    # a time of day alone ("22:45") hides that the mute ends in a month
    assert f"muted until <t:{stamp[1]}:f>" in listed, listed
    assert emu.validate_all() == []


async def test_sources_add_refuses_blocked_urls_and_accepts_public_ones(running: Running
                                                                        ) -> None:
    emu = running.emu
    for url in ["http://127.0.0.1:9/feed", "http://169.254.169.254/latest", "ftp://x.org/f",
                "http://2130706433/", "http://[::ffff:127.0.0.1]/"]:
        msg = await (await emu.send_interaction("sources add", {"name": "x", "url": url})
                     ).final_message()
        assert msg.ephemeral, url
        assert "refused URL" in msg.content, msg.content
    assert [s.name for s in await running.engine.store.list_sources()] == []
    ok = await (await emu.send_interaction(
        "sources add", {"name": "bbc", "url": "https://feeds.bbc.example/news/rss.xml",
                        "every": "15m"})).final_message()
    assert "Watching" in ok.content
    assert [s.name for s in await running.engine.store.list_sources()] == ["bbc"]
    assert "bbc" in running.engine.source_names(emu.guild.id)
    choices = await emu.send_autocomplete("sources remove", {"name": "bb"}, focused="name")
    assert [c["value"] for c in choices] == ["bbc"]
    gone = await (await emu.send_interaction("sources remove", {"name": "bbc"})).final_message()
    assert "removed" in gone.content
    assert "bbc" not in running.engine.source_names(emu.guild.id)
    assert emu.validate_all() == []


async def test_a_paused_source_is_announced_on_the_notices_route(emu: DiscordEmulator,
                                                                 tmp_path: Path) -> None:
    from tests.bot.conftest import bot_config
    from tests.fakes.feed_server import FeedServer, Route
    from watchers.config import parse_config

    async with FeedServer() as server:
        server.set("/broken", Route(status=500, body=b"oops"))
        (tmp_path / "seeds").mkdir()
        data = bot_config(
            emu, tmp_path,
            channels={"alerts": emu.channel("alerts").id, "ops": emu.channel("ops").id},
            fetch={"allow_private": ["127.0.0.1/32"], "pause_after": 2},
            sources=[{"name": "broken", "type": "feed", "url": server.url("/broken"),
                      "every": "1m"}])
        data["discord"]["notices"] = "ops"
        run = await start_running(parse_config(data, base_dir=tmp_path), emu,
                                  tmp_path / "seeds")
        try:
            await emu.wait_until_identified(timeout=10)
            for _ in range(2):
                await run.engine.watch.run_once()
            ops = emu.channel("ops").id
            for _ in range(100):
                if emu.messages(ops):
                    break
                await asyncio.sleep(0.05)
            (notice,) = emu.messages(ops)
            assert "broken" in notice.content and "paused after 2 failures" in notice.content
            assert "oops" not in notice.content  # never echoes the body of the target
            stats = await (await emu.send_interaction("stats")).final_message()
            assert "paused" in json.dumps(stats.embeds)
        finally:
            run.stop.set()
            assert await asyncio.wait_for(run.task, 15) == 0
    assert emu.validate_all() == []


async def test_lookups_slower_than_discord_waits_are_deferred_then_answered(
        running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """/recent, /article and /rules preview find their articles' evidence before they answer;
    work past ANSWER_WITHIN (here: any) defers the interaction, privately where the answer is
    private, and the answer follows."""
    emu = running.emu
    await running.wait_for(lambda: len(emu.messages(running.alerts_channel)) >= 5)
    monkeypatch.setattr(interactions, "ANSWER_WITHIN", 0.0)
    recent = await emu.send_interaction("recent", {"rule": "kyiv"})
    shown = await recent.final_message()
    assert (await recent.callback())["type"] == 5
    assert "Recent alerts for kyiv" in shown.embeds[0]["title"]
    art: Article = (await running.engine.recent(rule="kyiv", limit=1))[0][0]
    detail = await emu.send_interaction("article", {"id": art.id})
    names = [f["name"] for f in (await detail.final_message()).embeds[0]["fields"]]
    assert (await detail.callback())["type"] == 5 and "Rule kyiv" in names
    preview = await emu.send_interaction("rules preview", {"name": "kyiv"})
    body = await preview.callback()
    assert body["type"] == 5 and body["data"]["flags"] & 64  # deferred privately
    assert (await preview.final_message()).embeds
    assert emu.validate_all() == []


async def test_slow_lookups_answer_in_time_and_their_refusals_stay_private(
        running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """Discord drops an interaction not answered within three seconds. /stats, /rules list,
    /sources list (and export), /alerts status and /story read the store before answering and
    did not defer, so on a store slow to answer the member saw "the application did not respond";
    /article deferred in public before it knew whether the id named an article, and "no
    article with id …" then filled that public message. Here the emulator holds the bot to a
    deadline (as Discord, scaled down) and the lookups are slower than it: a delay before
    each real lookup stands in for a store holding a year of history."""
    emu = running.emu
    await running.wait_for(lambda: len(emu.messages(running.alerts_channel)) >= 5)
    engine = running.engine
    art: Article = (await engine.recent(rule="kyiv", limit=1))[0][0]
    story = (await engine.stories_of([art.id]))[art.id]
    delay = 2.5

    def slowed(owner: object, name: str, when: Callable[..., bool] = lambda *a, **k: True
               ) -> None:
        real = getattr(owner, name)

        async def slow(*args: Any, **kwargs: Any) -> Any:
            if when(*args, **kwargs):
                await asyncio.sleep(delay)
            return await real(*args, **kwargs)
        monkeypatch.setattr(owner, name, slow)

    for name in ("stats", "rules", "sources", "delivery_status"):
        slowed(engine, name)
    slowed(engine.delivery, "with_evidence")  # finding an article's evidence again
    slowed(engine, "story", lambda *a, **k: k.get("limit", 50) > 1)  # listing a story
    monkeypatch.setattr(interactions, "ANSWER_WITHIN", 0.3)
    emu.answer_within = 2.0  # Discord's three seconds, scaled down; below the delay
    # two rounds of four: a member may have two lookups running at once
    rounds: list[list[tuple[str, str, dict[str, str], str]]] = [
        [("stats", "stats", {}, "admin"), ("alerts status", "alerts status", {}, "admin"),
         ("rules list", "rules list", {}, "member"),
         ("sources list", "sources list", {}, "member")],
        [("article", "article", {"id": art.id}, "admin"),
         ("story", "story", {"id": story.id}, "admin"),
         ("no article", "article", {"id": "ffffffffffff"}, "member"),
         ("no story", "story", {"id": "s" + "0" * 16}, "member")],
        [("sources export", "sources export", {}, "member")]]
    asked: dict[str, InteractionHandle] = {}
    shown: dict[str, EmuMessage] = {}
    for round_ in rounds:
        for what, command, options, user in round_:
            asked[what] = await emu.send_interaction(command, options, user=user)
        for what, *_ in round_:
            shown[what] = await asked[what].final_message(timeout=20)
    for what in ("stats", "rules list", "sources list", "alerts status", "article", "story"):
        assert (await asked[what].callback())["type"] == 5, (what, shown[what].content)  # deferred
        assert shown[what].embeds, what
    assert (await asked["alerts status"].callback())["data"]["flags"] & 64  # privately
    # (it missed the deadline: "The application did not respond")
    assert (await asked["sources export"].callback())["type"] == 5
    assert "feed" in shown["sources export"].content
    assert any(f["name"] == "Rule kyiv" for f in shown["article"].embeds[0]["fields"])
    for what, says in (("no article", "No article with id `ffffffffffff`"),
                       ("no story", "No story with id")):
        body = await asked[what].callback()
        assert body["type"] == 4 and body["data"]["flags"] & 64, (what, body)  # private
        assert shown[what].content.startswith(says), shown[what].content
    assert not any(h.expired for h in asked.values())
    assert emu.validate_all() == []


async def test_a_preview_whose_phrase_runs_out_of_time_says_so(
        running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """/rules preview matched a rule of a phrase of every window ("t* s*"~99) against a long
    article with no time limit: ten seconds of a lookup thread for 1 MB. It gets a lookup's
    time now, and says when that ran out, privately."""
    from bot.exts.rules import _cog as rules_cog

    emu = running.emu
    await running.wait_for(lambda: len(emu.messages(running.alerts_channel)) >= 5)
    (running.seeds / "long.txt").write_text("Long read on Kyiv\n\n" + "ta sa " * 170_000)

    async def stored() -> Article | None:
        found = await running.engine.search("title:long", limit=1)
        return found.hits[0].article if found.hits else None

    for _ in range(200):
        if (long_read := await stored()) is not None:
            break
        await asyncio.sleep(0.1)
    assert long_read is not None
    await running.engine.add_rule({"name": "slow", "query": '"t* s*"~99'})
    monkeypatch.setattr(rules_cog, "PREVIEW_PHRASE_SECONDS", 0.5)
    preview = await emu.send_interaction("rules preview", {"name": "slow",
                                                           "article": long_read.id})
    shown = await preview.final_message(timeout=30)
    assert shown.ephemeral
    said = re.sub(r"\\(.)", r"\1", shown.content)  # as shown: markdown escapes taken off
    assert "Rule 'slow' ran out of time (0.5 s) on this article" in said, said
    assert emu.validate_all() == []


async def test_lookups_under_way_when_the_bot_stops_are_answered_first(
        running: Running, caplog: pytest.LogCaptureFixture) -> None:
    """Stopped while a /search and a /rules test ran, the bot closed its connection under
    them: their "thinking…" stayed in public and the error handler raised again ("Session is
    closed", a task exception never retrieved). A stop now lets them answer first."""
    import logging

    caplog.set_level(logging.WARNING)
    emu = running.emu
    await running.wait_for(lambda: len(emu.messages(running.alerts_channel)) >= 5)
    handles = [await emu.send_interaction("rules test", {"query": "troops"}, user="member"),
               await emu.send_interaction("search", {"query": "kyiv~"})]
    running.stop.set()
    assert await asyncio.wait_for(running.task, 20) == 0
    for handle in handles:
        assert handle.original is None or not handle.original.loading
        assert handle.original is not None or handle.followups
    assert "Session is closed" not in caplog.text
    assert "never retrieved" not in caplog.text
    assert emu.validate_all() == []
