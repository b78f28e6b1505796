"""Acknowledgement on Discord, for real: alerts at or above ``ack_from`` carry "Acknowledge" and
"Not relevant" buttons (and milder ones none); acknowledging edits the message, records who and
when, and answers privately, once; an unacknowledged critical alert re-pings the escalation
role once after ``escalate_after`` and never after an acknowledgement; "not relevant" is counted
per rule in /rules list; the buttons work after a restart; a rule mentions exactly its roles and
users. newswatch runs in-process (the real discord.py) against the emulator with a ManualClock,
and every request is checked against Discord's OpenAPI spec."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.bot.conftest import TOKEN, Running, bot_config, on_clock, running_with
from tests.fakes.discord_emulator import DiscordEmulator, EmuMessage, default_guild
from watchers.engine import Engine
from watchers.schedule import ManualClock

START = datetime.now(UTC).replace(microsecond=0)
LATER = timedelta(minutes=16)  # past the 15 minutes an alert may wait for its acknowledgement

RULES = [
    {"name": "crit", "query": "troops", "severity": "critical"},
    {"name": "calm", "query": "weather", "severity": "medium"},
]


@asynccontextmanager
async def newswatch(emu: DiscordEmulator, tmp_path: Path, clock: ManualClock,
                    rules: list[dict[str, Any]] | None = None, **discord: Any
                    ) -> AsyncIterator[Running]:
    """newswatch reading the folder ``news`` (kept across restarts), every schedule on
    ``clock``; ``discord``: extra keys of the [discord] table."""
    folder = tmp_path / "news"
    folder.mkdir(exist_ok=True)
    data = bot_config(
        emu, tmp_path,
        # read as soon as written (no settle wait): publish() polls at once
        sources=[{"name": "news", "type": "folder", "path": "news", "every": "1h",
                  "settle": "0s"}],
        rules=rules or RULES,
    )
    data["discord"].update(discord)
    async with running_with(emu, tmp_path, data, folder, on_clock(clock)) as run:
        yield run


async def publish(run: Running, title: str, tag: str) -> EmuMessage:
    """An article appears; returns the alert message it posts."""
    before = len(run.emu.messages(run.alerts_channel))
    doc = {"title": title, "text": f"{title}. More details in the body.",
           "url": f"https://news.example/{tag}", "published": START.isoformat()}
    (run.seeds / f"{tag}.json").write_text(json.dumps(doc))
    await run.engine.run_once()
    await run.wait_for(lambda: len(run.emu.messages(run.alerts_channel)) > before)
    return run.emu.messages(run.alerts_channel)[-1]


def alert_id(msg: EmuMessage) -> int:
    (ack,) = [c for c in msg.custom_ids if c.startswith("nw:ack:")]
    return int(ack.removeprefix("nw:ack:"))


def buttons(msg: EmuMessage) -> dict[str, dict[str, Any]]:
    return {c["custom_id"]: c for row in msg.components for c in row.get("components", [])}


def escalations(run: Running) -> list[EmuMessage]:
    return [m for m in run.emu.messages(run.alerts_channel) if "Not acknowledged" in m.content]


async def later(run: Running, clock: ManualClock, by: timedelta = LATER) -> None:
    """Time passes; delivery looks at what became due (and sends it)."""
    clock.advance(by)
    await run.engine.delivery.drain()
    await asyncio.sleep(0.2)  # a second escalation would arrive meanwhile


async def test_buttons_from_ack_from_up_and_only_the_rules_mentions(emu: DiscordEmulator,
                                                                    tmp_path: Path) -> None:
    role, other_role = [r.id for r in emu.guild.roles if r.name != "@everyone"][:2]
    user = emu.member.user.id
    rules: list[dict[str, Any]] = [
        {**RULES[0], "mention_roles": [role], "mention_users": [user]},
        {**RULES[1], "mention_role": other_role},
        {"name": "loud", "query": "storm", "severity": "high"},
    ]
    async with newswatch(emu, tmp_path, ManualClock(START), rules) as run:
        critical = await publish(run, "Troops gather near the border, @everyone", "c")
        medium = await publish(run, "Weather turns cold in the north", "m")
        high = await publish(run, "Storm hits the coast", "h")

        ident = alert_id(critical)
        assert set(buttons(critical)) == {f"nw:ack:{ident}", f"nw:nr:{ident}"}
        assert buttons(critical)[f"nw:ack:{ident}"]["label"] == "Acknowledge"
        assert buttons(critical)[f"nw:nr:{ident}"]["label"] == "Not relevant"
        assert len(buttons(high)) == 2  # "high" is the default ack_from
        assert medium.components == [] and medium.custom_ids == []

        assert critical.pinged_role_ids() == {role}
        assert critical.pinged_user_ids() == {user}
        assert not critical.pings_everyone()
        assert critical.allowed_mentions is not None
        assert critical.allowed_mentions.get("parse") == []
        assert {int(r) for r in critical.allowed_mentions["roles"]} == {role}
        assert {int(u) for u in critical.allowed_mentions["users"]} == {user}
        assert medium.pinged_role_ids() == {other_role} and medium.pinged_user_ids() == set()
        assert high.pinged_role_ids() == set() and high.pinged_user_ids() == set()
        assert emu.validate_all() == []


async def test_ack_from_none_posts_no_buttons_and_escalates_nothing(emu: DiscordEmulator,
                                                                    tmp_path: Path) -> None:
    clock = ManualClock(START)
    async with newswatch(emu, tmp_path, clock, ack_from="none",
                         escalation_role=emu.guild.roles[-1].id) as run:
        critical = await publish(run, "Troops gather near the border", "c")
        assert critical.components == []
        await later(run, clock)
        assert escalations(run) == []


async def test_acknowledge_edits_records_and_answers_privately_once(emu: DiscordEmulator,
                                                                    tmp_path: Path) -> None:
    clock = ManualClock(START)
    role = emu.guild.roles[-1].id
    async with newswatch(emu, tmp_path, clock, escalation_role=role) as run:
        msg = await publish(run, "Troops gather near the border", "c")
        ident = alert_id(msg)
        posted = copy.deepcopy(msg.embeds)
        clock.advance(timedelta(minutes=3))
        member = emu.member.user.id

        click = await emu.click_button(msg, f"nw:ack:{ident}", user="member")
        assert (await click.callback())["type"] == 7  # the message itself is updated
        (private,) = await click.wait_followups(1)
        assert private.ephemeral and "You acknowledged" in private.content
        edited = emu.get_message(msg.id)
        stamp = int((START + timedelta(minutes=3)).timestamp())
        assert f"✅ Acknowledged by <@{member}> at <t:{stamp}:t>" in edited.content
        assert edited.pinged_user_ids() == set()  # naming who acknowledged pings nobody
        ack = buttons(edited)[f"nw:ack:{ident}"]
        assert ack["disabled"] is True and ack["label"] == "Acknowledged"
        assert buttons(edited)[f"nw:nr:{ident}"].get("disabled") in (None, False)
        assert edited.embeds == posted  # the alert itself is unchanged
        edits = len(edited.edits)

        record = await run.engine.store.get_ack(ident)
        assert record is not None
        assert (record.user_id, record.at) == (member, START + timedelta(minutes=3))

        # someone else clicks before their client saw the edit: told who was first
        second = await emu.click_button(edited, f"nw:ack:{ident}", user="admin", stale=True)
        assert (await second.callback())["type"] == 4
        answer = await second.final_message()
        assert answer.ephemeral and f"Already acknowledged by <@{member}>" in answer.content
        assert len(emu.get_message(msg.id).edits) == edits  # not edited again
        record = await run.engine.store.get_ack(ident)
        assert record is not None and record.user_id == member

        await later(run, clock)  # acknowledged: never escalated
        await later(run, clock)
        assert escalations(run) == []
        assert emu.validate_all() == []


async def test_an_unacknowledged_critical_alert_re_pings_the_role_once(emu: DiscordEmulator,
                                                                       tmp_path: Path) -> None:
    clock = ManualClock(START)
    role = emu.guild.roles[-1].id
    async with newswatch(emu, tmp_path, clock, escalation_role=role) as run:
        msg = await publish(run, "Troops gather near the border", "c")
        await publish(run, "Weather turns cold in the north", "m")  # medium: no escalation

        await later(run, clock, timedelta(minutes=14))
        assert escalations(run) == []  # not yet: 15 minutes

        await later(run, clock, timedelta(minutes=2))
        await run.wait_for(lambda: len(escalations(run)) == 1)
        (ping,) = escalations(run)
        link = f"https://discord.com/channels/{emu.guild.id}/{run.alerts_channel}/{msg.id}"
        assert ping.content == f"<@&{role}> ⏰ Not acknowledged after 15m: {link}"
        assert ping.pinged_role_ids() == {role}
        assert ping.pinged_user_ids() == set() and not ping.pings_everyone()

        await later(run, clock)
        await later(run, clock, timedelta(hours=3))
        assert len(escalations(run)) == 1  # once

        # acknowledging after the escalation still works, and nothing follows it
        click = await emu.click_button(msg, f"nw:ack:{alert_id(msg)}", user="member")
        assert (await click.callback())["type"] == 7
        await later(run, clock)
        assert len(escalations(run)) == 1
        assert emu.validate_all() == []


async def test_not_relevant_is_counted_per_rule_in_rules_list(emu: DiscordEmulator,
                                                              tmp_path: Path) -> None:
    clock = ManualClock(START)
    async with newswatch(emu, tmp_path, clock) as run:
        first = await publish(run, "Troops gather near the border", "c1")
        second = await publish(run, "Troops withdraw from the village", "c2")

        click = await emu.click_button(first, f"nw:nr:{alert_id(first)}", user="member")
        answer = await click.final_message()
        assert answer.ephemeral and "not relevant" in answer.content.lower()
        again = await emu.click_button(first, f"nw:nr:{alert_id(first)}", user="member")
        assert "already" in (await again.final_message()).content
        other = await emu.click_button(first, f"nw:nr:{alert_id(first)}", user="admin")
        assert (await other.final_message()).ephemeral
        ack = await emu.click_button(second, f"nw:ack:{alert_id(second)}", user="member")
        await ack.callback()

        views = {v.rule.name: v for v in await run.engine.rules()}
        crit = views["crit"]
        assert (crit.alerts_7d, crit.acks_7d, crit.not_relevant_7d) == (2, 1, 1)
        assert crit.not_relevant_share == 0.5
        assert (views["calm"].alerts_7d, views["calm"].not_relevant_7d) == (0, 0)

        listed = await (await emu.send_interaction("rules list")).final_message()
        (line,) = [ln for ln in listed.embeds[0]["description"].split("\n")
                   if ln.startswith("**crit**")]
        assert "2 alert(s), 1 acknowledged, 50% not relevant" in line
        assert emu.validate_all() == []


async def test_buttons_still_work_after_a_restart(emu: DiscordEmulator, tmp_path: Path) -> None:
    clock = ManualClock(START)
    async with newswatch(emu, tmp_path, clock) as run:
        msg = await publish(run, "Troops gather near the border", "c")
    ident = alert_id(msg)

    async with newswatch(emu, tmp_path, clock) as run:
        nr = await emu.click_button(msg, f"nw:nr:{ident}", user="admin")
        assert (await nr.final_message()).ephemeral
        click = await emu.click_button(msg, f"nw:ack:{ident}", user="member")
        assert (await click.callback())["type"] == 7
        assert "Acknowledged by" in emu.get_message(msg.id).content
        record = await run.engine.store.get_ack(ident)
        assert record is not None and record.user_id == emu.member.user.id
        assert emu.validate_all() == []


async def test_webhook_alerts_carry_no_buttons_and_are_not_escalated(emu: DiscordEmulator,
                                                                     tmp_path: Path) -> None:
    clock = ManualClock(START)
    hook = emu.add_webhook(emu.channel("ops").id)
    folder = tmp_path / "news"
    folder.mkdir()
    data = bot_config(emu, tmp_path,
                      channels={"alerts": emu.channel("alerts").id, "wire": hook.url},
                      sources=[{"name": "news", "type": "folder", "path": "news",
                                "every": "1h"}],
                      rules=[{**RULES[0], "channel": "wire"}])
    data["discord"]["escalation_role"] = emu.guild.roles[-1].id

    def tune(engine: Engine) -> None:
        engine.delivery.clock = clock

    async with running_with(emu, tmp_path, data, folder, tune) as run:
        ops = emu.channel("ops").id
        (folder / "c.json").write_text(json.dumps(
            {"title": "Troops gather near the border", "text": "Troops gather.",
             "url": "https://news.example/c", "published": START.isoformat()}))
        await run.engine.run_once()
        await run.wait_for(lambda: len(emu.messages(ops)) == 1)
        (posted,) = emu.messages(ops)
        assert posted.webhook_id == hook.id and posted.components == []
        await later(run, clock)
        assert emu.messages(ops) == [posted] and escalations(run) == []
        assert emu.validate_all() == []


async def test_a_deleted_critical_alert_reposted_by_its_story_keeps_its_buttons_and_link(
        emu: DiscordEmulator, tmp_path: Path) -> None:
    """A moderator deletes a critical alert; the story's next report posts it afresh. Before,
    the repost had no buttons (nobody could acknowledge it, so the escalation was certain)
    and the escalation linked the deleted message."""
    clock = ManualClock(START)
    role = emu.guild.roles[-1].id
    async with newswatch(emu, tmp_path, clock, escalation_role=role) as run:
        first = await publish(run, "Troops gather near the northern border", "c1")
        await emu.delete_message(run.alerts_channel, first.id)
        repost = await publish(run, "Troops gather near the northern border, officials say",
                               "c2")
        assert repost.id != first.id and not repost.pinged_role_ids()  # the story, no ping
        assert alert_id(repost) == alert_id(first)  # the story's alert, acknowledged as one
        await later(run, clock)
        await run.wait_for(lambda: len(escalations(run)) == 1)
        (ping,) = escalations(run)
        assert ping.content.endswith(f"/{run.alerts_channel}/{repost.id}")
        click = await emu.click_button(repost, f"nw:ack:{alert_id(repost)}", user="member")
        assert (await click.callback())["type"] == 7
    assert emu.validate_all() == []


async def test_a_button_naming_another_alert_is_refused_and_changes_nothing(
        emu: DiscordEmulator, tmp_path: Path) -> None:
    """A crafted click (a button of alert 1 sent from alert 2's message) acknowledged alert 1
    and wrote its "Acknowledged by" line over alert 2's message."""
    clock = ManualClock(START)
    async with newswatch(emu, tmp_path, clock) as run:
        first = await publish(run, "Troops gather near the border", "c1")
        second = await publish(run, "Troops withdraw from the village", "c2")
        ident = alert_id(first)
        for custom_id in (f"nw:ack:{ident}", f"nw:nr:{ident}"):
            click = await emu.click_button(second, custom_id, user="member", forged=True)
            answer = await click.final_message()
            assert answer.ephemeral
            assert f"This message is not alert #{ident}'s" in answer.content
        assert await run.engine.store.get_ack(ident) is None
        assert (await run.engine.store.get_ack(alert_id(second))) is None
        crit = {v.rule.name: v for v in await run.engine.rules()}["crit"]
        assert (crit.acks_7d, crit.not_relevant_7d) == (0, 0)
        assert emu.get_message(first.id).edits == [] and emu.get_message(second.id).edits == []

        # the alert's own message still acknowledges it
        click = await emu.click_button(first, f"nw:ack:{ident}", user="member")
        assert (await click.callback())["type"] == 7
        assert "Acknowledged by" in emu.get_message(first.id).content
        record = await run.engine.store.get_ack(ident)
        assert record is not None and record.user_id == emu.member.user.id
        assert emu.get_message(second.id).edits == []
        assert emu.validate_all() == []


async def test_another_servers_alert_is_refused(tmp_path: Path) -> None:
    """Server B's alert id clicked from server A (and the config file's alert from B) is
    refused privately; nothing is recorded for either alert."""
    a, b = 1100000000000000001, 1100000000000000501
    guilds = [default_guild(a, "Newsroom"), default_guild(b, "Other desk")]
    async with DiscordEmulator(token=TOKEN, guilds=guilds) as emu, emu.patch_discord():
        folder = tmp_path / "news"
        folder.mkdir()
        data = bot_config(emu, tmp_path,
                          sources=[{"name": "news", "type": "folder", "path": "news",
                                    "every": "1h", "settle": "0s"}],
                          rules=[RULES[0]])
        data["discord"]["guild_ids"] = [a, b]
        async with running_with(emu, tmp_path, data, folder, on_clock(ManualClock(START))
                                ) as run:
            await run.wait_for(lambda: bool(emu.commands(b)))
            ours, theirs = (emu.guilds[0].channel("alerts").id,
                            emu.guilds[1].channel("alerts").id)
            added = await (await emu.send_interaction(
                "rules add", {"name": "desk", "query": "troops", "severity": "critical",
                              "channel": theirs}, guild_id=b)).final_message()
            assert not added.ephemeral
            (folder / "c.json").write_text(json.dumps(
                {"title": "Troops gather near the border", "text": "Troops gather.",
                 "url": "https://news.example/c", "published": START.isoformat()}))
            await run.engine.run_once()
            await run.wait_for(lambda: bool(emu.messages(ours)) and bool(emu.messages(theirs)))
            (mine,), (other,) = emu.messages(ours), emu.messages(theirs)
            mine_id, other_id = alert_id(mine), alert_id(other)
            assert mine_id != other_id

            click = await emu.click_button(mine, f"nw:ack:{other_id}", forged=True)
            answer = await click.final_message()
            assert answer.ephemeral and f"Alert #{other_id} is not this server's" in answer.content
            click = await emu.click_button(other, f"nw:nr:{mine_id}", forged=True)
            answer = await click.final_message()
            assert answer.ephemeral and f"not alert #{mine_id}'s" in answer.content
            assert await run.engine.store.get_ack(other_id) is None
            assert await run.engine.store.get_ack(mine_id) is None
            assert emu.get_message(mine.id).edits == [] and emu.get_message(other.id).edits == []

            # each server acknowledges its own
            for msg, ident in ((mine, mine_id), (other, other_id)):
                click = await emu.click_button(msg, f"nw:ack:{ident}", user="member")
                assert (await click.callback())["type"] == 7
                assert await run.engine.store.get_ack(ident) is not None
        assert emu.validate_all() == []
