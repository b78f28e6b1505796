"""Message templates through the real discord.py against the emulator: a rule's template shapes
its alerts (plain text or the embed's description), a route's template applies through the
sink, /rules preview shows a rule's message privately, and /rules add checks a template before
saving it. Every request must be one Discord's OpenAPI spec accepts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import discord
import pytest

from bot.embeds import LIMITS, escape, truncate
from bot.sinks import ChannelTarget, DiscordSink, WebhookTarget
from tests.bot.conftest import TOKEN, Running
from tests.fakes.discord_emulator import DiscordEmulator, run_client
from watchers.config import RouteConfig, RuleConfig
from watchers.delivery import Alert
from watchers.models import Article
from watchers.rules import match_query

ROLE = 1100000000000000101  # "Readers" in the default guild

TEMPLATED = [
    {"name": "troops", "query": "troops OR soldiers", "severity": "high", "mention_role": ROLE,
     "template": "🚨 {headline} · {source}\n{why}", "template_style": "text"},
    {"name": "kyiv", "query": "kyiv~", "template": "**{severity}** · {rules}\n{snippet}"},
]


@pytest.mark.parametrize("running", [{"rules": TEMPLATED}], indirect=True)
async def test_rule_templates_shape_the_alerts_and_preview_shows_them(running: Running
                                                                      ) -> None:
    emu = running.emu
    ch = running.alerts_channel
    # troops or soldiers: seeds 000, 002, 003, 004 (text); kyiv~ alone: 001 (embed)
    await running.wait_for(lambda: len(emu.messages(ch)) >= 5)
    await asyncio.sleep(0.3)
    msgs = emu.messages(ch)
    assert len(msgs) == 5
    text = [m for m in msgs if not m.embeds]
    embedded = [m for m in msgs if m.embeds]
    assert len(text) == 4 and len(embedded) == 1
    for m in text:
        # the role first, then the headline (bold: folder articles have no URL)
        assert m.content.startswith(f"<@&{ROLE}>\n🚨 **")
        assert m.pinged_role_ids() == {ROLE} and not m.pings_everyone()
        assert not m.pinged_user_ids()
    (kyiv,) = embedded
    (embed,) = kyiv.embeds
    assert embed["description"].startswith("**medium** · `kyiv`\n")
    assert "fields" not in embed or not embed["fields"]
    assert embed["footer"]["text"].startswith("newswatch · medium · article ")

    # /rules preview: the rule's message for the newest article it matched, only to the caller
    newest = (await running.engine.recent(rule="troops", limit=1))[0][0]
    preview = await (await emu.send_interaction("rules preview", {"name": "troops"},
                                                user="member")).final_message()
    assert preview.ephemeral
    assert preview.content.startswith(f"<@&{ROLE}>\n🚨 ")
    assert newest.source in preview.content
    assert not preview.pinged_role_ids()  # a preview pings nobody
    shown_title = truncate(escape(newest.title), LIMITS["title"])
    (posted,) = [m for m in text if shown_title in m.content]
    assert preview.content == posted.content  # exactly what the rule posted

    # an article the rule did not match: rendered anyway, and said so
    other = next(a for a, _ in await running.engine.recent(rule="kyiv", limit=10)
                 if not match_query("troops OR soldiers", a))
    shown = await (await emu.send_interaction(
        "rules preview", {"name": "troops", "article": other.id})).final_message()
    assert shown.ephemeral and "does not match this article" in shown.content
    kyiv_preview = await (await emu.send_interaction(
        "rules preview", {"name": "kyiv"})).final_message()
    assert kyiv_preview.ephemeral
    assert kyiv_preview.embeds[0]["description"].startswith("**medium** · `kyiv`\n")

    unknown = await (await emu.send_interaction(
        "rules preview", {"name": "nope"})).final_message()
    assert unknown.ephemeral and "No rule named 'nope'" in unknown.content
    assert "troops" in unknown.content
    missing = await (await emu.send_interaction(
        "rules preview", {"name": "troops", "article": "no-such-id"})).final_message()
    assert missing.ephemeral and "No stored article" in missing.content
    assert emu.validate_all() == []


async def test_rules_add_checks_the_template_and_preview_of_a_rule_without_matches(
        running: Running) -> None:
    emu = running.emu
    bad = await (await emu.send_interaction("rules add", {
        "name": "typo", "query": "troops", "template": "{titel} at {link}"})).final_message()
    assert bad.ephemeral
    assert "template\\: unknown placeholder {titel}; known\\: {title}" in bad.content
    assert "typo" not in running.engine.rule_names()  # nothing saved

    ping = await (await emu.send_interaction("rules add", {
        "name": "loud", "query": "troops", "template": "@everyone {title}"})).final_message()
    assert ping.ephemeral and "may not mention anyone" in ping.content

    ok = await (await emu.send_interaction("rules add", {
        "name": "brief", "query": "troops", "template": "{title}\\n{link}",
        "template_style": "text"})).final_message()
    assert not ok.ephemeral and "text template" in ok.content
    (rule,) = [r for r in running.engine.watch.rules if r.name == "brief"]
    assert rule.template == "{title}\n{link}" and rule.template_style == "text"
    stored = {r.name: r for r in await running.engine.store.list_rules()}
    assert stored["brief"].template == "{title}\n{link}"  # it survives a restart

    # a rule that has matched no stored article (the seeds are being ingested meanwhile, so
    # its query is one no seed holds: "brief" may already have matched one)
    quiet = await (await emu.send_interaction("rules add", {
        "name": "quiet", "query": "xylophone", "template": "{title}",
        "template_style": "text"})).final_message()
    assert not quiet.ephemeral
    none_yet = await (await emu.send_interaction(
        "rules preview", {"name": "quiet"})).final_message()
    assert none_yet.ephemeral and "matched no stored article" in none_yet.content
    await running.wait_for(lambda: len(emu.messages(running.alerts_channel)) >= 5)
    art = (await running.engine.recent(rule="troops", limit=1))[0][0]
    given = await (await emu.send_interaction(
        "rules preview", {"name": "brief", "article": art.id})).final_message()
    assert given.ephemeral and not given.embeds
    assert given.content.split("\n")[0] == truncate(escape(art.title), LIMITS["title"])
    assert emu.validate_all() == []


# ------------------------------------------------------------------ a route's template


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator(token=TOKEN) as e, e.patch_discord():
        yield e


def alert(route: str, rule: RuleConfig, n: int) -> Alert:
    art = Article(id="a1", source="@everyone News", url="https://news.example/a@b",
                  title="Troops <@123> cross", text="Troops crossed at dawn, @here.")
    m = match_query(rule.query, art)
    assert m is not None
    return Alert(id=n, route=route, nonce=f"template-nonce-{n}", attempt=1, article=art,
                 matches=(m,), rules=(rule,))


async def test_a_route_template_applies_through_the_sink_unless_the_rule_has_one(
        emu: DiscordEmulator) -> None:
    hook = next(iter(emu.webhooks.values()))
    channel = emu.channel("alerts").id
    desk = RouteConfig(target=channel, template="{source}: {headline}", template_style="text")
    client = discord.Client(intents=discord.Intents(guilds=True), guild_ready_timeout=0.05)
    async with run_client(client, emu, token=TOKEN), aiohttp.ClientSession() as session:
        sink = DiscordSink({"desk": ChannelTarget(channel),
                            "hook": WebhookTarget(hook.id, hook.token)},
                           client=client, session=session, timeout=5,
                           routes={"desk": desk, "hook": desk.model_copy(
                               update={"template_style": "embed"})})
        plain = RuleConfig(name="troops", query="troops", mention_role=ROLE)
        own = RuleConfig(name="own", query="troops", template="own: {title}",
                         template_style="text")
        await sink.deliver(alert("desk", plain, 1))
        await sink.deliver(alert("desk", own, 2))
        await sink.deliver(alert("hook", plain, 3))
    first, second = emu.messages(channel)[:2]
    assert first.content == (f"<@&{ROLE}>\n\\@everyone News: [Troops \\<\\@123\\> cross]"
                             "(https://news.example/a%40b)")
    assert not first.embeds and first.pinged_role_ids() == {ROLE}
    assert not first.pings_everyone() and not first.pinged_user_ids()
    assert second.content == "own: Troops \\<\\@123\\> cross"
    hooked = emu.messages(hook.channel_id)[-1]
    (embed,) = hooked.embeds
    assert embed["description"] == ("\\@everyone News: [Troops \\<\\@123\\> cross]"
                                    "(https://news.example/a%40b)")
    assert not hooked.pings_everyone()
    assert emu.validate_all() == []
