"""The Discord emulator works with the real discord.py client (no mocks)."""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

with warnings.catch_warnings():
    # discord.player imports audioop, deprecated in 3.11+; not ours to fix.
    warnings.filterwarnings("ignore", message=".*audioop.*", category=DeprecationWarning)
    import discord
    from discord import app_commands
    from discord.ext import commands
    from discord.http import Route

from tests.fakes import discord_emulator, discord_spec
from tests.fakes.discord_emulator import (
    DiscordEmulator,
    EmuMessage,
    Fault,
    default_guild,
    patched_discord_urls,
    run_client,
)

# --------------------------------------------------------------------------------------------
# A small bot exercising the interaction shapes the real bot uses
# --------------------------------------------------------------------------------------------

RULES = ["troops", "tariffs", "typhoon", "elections", "earthquake"]


class AckView(discord.ui.View):
    def __init__(self, clicked: asyncio.Queue[tuple[int, str]]) -> None:
        super().__init__(timeout=None)
        self.clicked = clicked

    @discord.ui.button(label="Acknowledge", style=discord.ButtonStyle.primary, custom_id="ack")
    async def ack(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await self.clicked.put((interaction.user.id, button.custom_id or ""))
        await interaction.response.edit_message(content="acknowledged", view=None)

    @discord.ui.button(label="Refresh", custom_id="refresh")
    async def refresh(
        self, interaction: discord.Interaction, button: discord.ui.Button[Any]
    ) -> None:
        await interaction.response.defer()  # type 6: deferred update of this message
        await interaction.edit_original_response(content="refreshed")

    @discord.ui.select(custom_id="topic", options=[discord.SelectOption(label=r, value=r)
                                                   for r in ("troops", "tariffs")])
    async def topic(self, interaction: discord.Interaction, select: discord.ui.Select[Any]) -> None:
        await interaction.response.send_message(f"picked {select.values}", ephemeral=True)


def build_bot() -> commands.Bot:
    bot = commands.Bot(
        command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05
    )
    bot.clicked = asyncio.Queue()  # type: ignore[attr-defined]
    bot.ready_seen = asyncio.Event()  # type: ignore[attr-defined]
    bot.resumed_seen = asyncio.Event()  # type: ignore[attr-defined]
    bot.seen_messages = []  # type: ignore[attr-defined]

    @bot.event
    async def on_ready() -> None:
        bot.ready_seen.set()  # type: ignore[attr-defined]

    @bot.event
    async def on_resumed() -> None:
        bot.resumed_seen.set()  # type: ignore[attr-defined]

    @bot.event
    async def on_message(message: discord.Message) -> None:
        bot.seen_messages.append(message)  # type: ignore[attr-defined]

    @bot.tree.command(name="search", description="Search recent news")
    @app_commands.describe(query="Words to look for", limit="How many results")
    async def search(interaction: discord.Interaction, query: str, limit: int = 3) -> None:
        await interaction.response.send_message(
            f"{limit} results for {query}",
            embed=discord.Embed(title=f"Search: {query}", description="- item one"),
        )

    @bot.tree.command(name="digest", description="Slow digest")
    async def digest(interaction: discord.Interaction, topic: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await asyncio.sleep(0.01)
        await interaction.followup.send(f"digest on {topic}", ephemeral=True)
        await interaction.followup.send("second page", ephemeral=True)

    @bot.tree.command(name="status", description="Deferred then edited")
    async def status(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        await interaction.edit_original_response(content="all feeds healthy")

    @bot.tree.command(name="whoami", description="Permissions check")
    async def whoami(interaction: discord.Interaction) -> None:
        perms = interaction.permissions
        await interaction.response.send_message(
            f"{interaction.user.name} manage_guild={perms.manage_guild}", ephemeral=True
        )

    @bot.tree.command(name="panel", description="Post a panel with a button")
    async def panel(interaction: discord.Interaction) -> None:
        await interaction.response.send_message(
            "panel", view=AckView(bot.clicked)  # type: ignore[attr-defined]
        )

    watch = app_commands.Group(name="watch", description="Watch rules")

    @watch.command(name="add", description="Add a watch rule")
    async def watch_add(
        interaction: discord.Interaction, rule: str, channel: discord.TextChannel
    ) -> None:
        await interaction.response.send_message(f"watching {rule} in #{channel.name}")

    @watch_add.autocomplete("rule")
    async def rule_autocomplete(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [
            app_commands.Choice(name=r.title(), value=r) for r in RULES if r.startswith(current)
        ]

    admin = app_commands.Group(name="admin", description="Admin tools")
    rules = app_commands.Group(name="rules", description="Rule admin", parent=admin)

    @rules.command(name="remove", description="Remove a rule")
    async def rules_remove(
        interaction: discord.Interaction, rule_id: int, notify: discord.Member
    ) -> None:
        await interaction.response.send_message(
            f"removed {rule_id!r} ({type(rule_id).__name__}), notifying {notify.name}"
        )

    bot.tree.add_command(watch)
    bot.tree.add_command(admin)
    return bot


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture
def discord_errors(caplog: pytest.LogCaptureFixture) -> Any:
    """Fail a test if discord.py logged an error (e.g. a gateway payload it could not parse,
    or an exception in a command)."""
    caplog.set_level(logging.ERROR, logger="discord")
    yield caplog
    bad = [r for r in caplog.records if r.name.startswith("discord") and r.levelno >= logging.ERROR]
    assert not bad, "discord.py logged errors:\n" + "\n".join(
        f"{r.name}: {r.getMessage()}\n{r.exc_text or ''}" for r in bad
    )


@pytest.fixture
async def emu(discord_errors: Any) -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator() as emulator, emulator.patch_discord():
        yield emulator


@pytest.fixture
async def bot(emu: DiscordEmulator) -> AsyncIterator[commands.Bot]:
    client = build_bot()
    async with run_client(client, emu):
        client.tree.copy_global_to(guild=discord.Object(emu.guild.id))
        await client.tree.sync(guild=discord.Object(emu.guild.id))
        yield client


def alerts(emu: DiscordEmulator) -> int:
    return emu.channel("alerts").id


# --------------------------------------------------------------------------------------------
# Login, gateway, sync
# --------------------------------------------------------------------------------------------


async def test_login_ready_with_guild_channels_and_roles(
    emu: DiscordEmulator, bot: commands.Bot
) -> None:
    assert bot.ready_seen.is_set()  # type: ignore[attr-defined]
    assert bot.user is not None and bot.user.id == emu.bot_user.id
    assert bot.application_id == emu.application_id
    guild = bot.get_guild(emu.guild.id)
    assert guild is not None and guild.name == "Newsroom"
    assert [c.name for c in guild.text_channels] == ["general", "alerts", "ops"]
    assert {r.name for r in guild.roles} >= {"@everyone", "Admin", "Readers", "NewsWatch"}
    assert guild.me is not None
    me_perms = guild.text_channels[1].permissions_for(guild.me)
    assert me_perms.send_messages and me_perms.embed_links and not me_perms.manage_guild
    routes = [r.key for r in emu.requests]
    assert routes[:2] == ["GET /users/@me", "GET /oauth2/applications/@me"]
    assert emu.identify_payloads and emu.identify_payloads[0]["token"] == "emulated-token"
    assert emu.unhandled == []


async def test_gateway_reconnect_resumes_via_resume_gateway_url(
    emu: DiscordEmulator, bot: commands.Bot
) -> None:
    await emu.request_reconnect()
    await asyncio.wait_for(bot.resumed_seen.wait(), 5)  # type: ignore[attr-defined]
    assert len(emu.identify_payloads) == 1  # resumed, not re-identified
    # the resumed connection still delivers events
    resp = await emu.send_interaction("search", {"query": "after resume"})
    assert "after resume" in (await resp.final_message()).content
    # a dropped connection (close 4000) is resumed too; interactions sent meanwhile wait for it
    bot.resumed_seen.clear()  # type: ignore[attr-defined]
    await emu.drop_gateway(4000)
    resp = await emu.send_interaction("search", {"query": "after drop"})
    assert "after drop" in (await resp.final_message()).content
    assert bot.resumed_seen.is_set()  # type: ignore[attr-defined]
    assert len(emu.identify_payloads) == 1


async def test_sync_commands_echoes_ids(emu: DiscordEmulator, bot: commands.Bot) -> None:
    synced = await bot.tree.sync(guild=discord.Object(emu.guild.id))
    stored = emu.commands(emu.guild.id)
    assert {c.name for c in synced} == {c["name"] for c in stored} == {
        "search", "digest", "status", "whoami", "panel", "watch", "admin"
    }
    assert {c.id for c in synced} == {int(c["id"]) for c in stored}
    fetched = await bot.tree.fetch_commands(guild=discord.Object(emu.guild.id))
    assert {c.id for c in fetched} == {c.id for c in synced}
    global_synced = await bot.tree.sync()  # global commands are separate
    assert {c["name"] for c in emu.commands()} == {c.name for c in global_synced}
    assert not {c.id for c in global_synced} & {c.id for c in synced}
    bot.tree.clear_commands(guild=None)
    assert await bot.tree.sync() == [] and emu.commands() == []
    puts = emu.requests_for("PUT /applications/{application_id}/guilds/{guild_id}/commands")
    assert len(puts) == 2
    assert emu.validate_all() == []


# --------------------------------------------------------------------------------------------
# Interactions
# --------------------------------------------------------------------------------------------


async def test_slash_command_plain_reply(emu: DiscordEmulator, bot: commands.Bot) -> None:
    resp = await emu.send_interaction("search", {"query": "troops", "limit": 5})
    msg = await resp.final_message(timeout=5)
    assert (await resp.callback())["type"] == 4
    assert msg.content == "5 results for troops"
    assert msg.embeds[0]["title"] == "Search: troops"
    assert not msg.ephemeral
    assert emu.messages(emu.channel("general").id) == [msg]
    assert emu.validate_all() == []


async def test_slash_command_deferred_ephemeral_followups(
    emu: DiscordEmulator, bot: commands.Bot
) -> None:
    resp = await emu.send_interaction("digest", {"topic": "tariffs"}, user="member")
    msg = await resp.final_message(timeout=5)
    cb = await resp.callback()
    assert cb["type"] == 5 and cb["data"]["flags"] & 64
    assert msg.content == "digest on tariffs"
    assert msg.ephemeral and resp.ephemeral
    followups = await resp.wait_followups(2)
    assert [m.content for m in followups] == ["digest on tariffs", "second page"]
    assert all(m.ephemeral for m in followups)
    # ephemeral messages are not visible in the channel
    assert emu.messages(emu.channel("general").id) == []
    assert emu.validate_all() == []


async def test_deferred_then_edit_original(emu: DiscordEmulator, bot: commands.Bot) -> None:
    resp = await emu.send_interaction("status", channel_id=alerts(emu))
    msg = await resp.final_message(timeout=5)
    assert msg.content == "all feeds healthy" and not msg.ephemeral and not msg.loading
    assert emu.requests_for("PATCH /webhooks/{webhook_id}/{webhook_token}/messages/@original")
    assert emu.messages(alerts(emu)) == [msg]


async def test_permissions_differ_for_admin_and_member(
    emu: DiscordEmulator, bot: commands.Bot
) -> None:
    admin = await (await emu.send_interaction("whoami", user="admin")).final_message()
    member = await (await emu.send_interaction("whoami", user="member")).final_message()
    assert admin.content == "alice manage_guild=True"
    assert member.content == "bob manage_guild=False"


async def test_subcommand_group_with_typed_and_resolved_options(
    emu: DiscordEmulator, bot: commands.Bot
) -> None:
    resp = await emu.send_interaction(
        "admin rules remove", {"rule_id": 42, "notify": emu.member}
    )
    msg = await resp.final_message()
    assert msg.content == "removed 42 (int), notifying bob"
    with pytest.raises(ValueError, match="missing required"):
        await emu.send_interaction("admin rules remove", {"rule_id": 1})
    with pytest.raises(LookupError, match="not synced"):
        await emu.send_interaction("nope")


async def test_autocomplete_returns_choices(emu: DiscordEmulator, bot: commands.Bot) -> None:
    choices = await emu.send_autocomplete("watch add", {"rule": "t"}, focused="rule")
    assert choices == [
        {"name": "Troops", "value": "troops"},
        {"name": "Tariffs", "value": "tariffs"},
        {"name": "Typhoon", "value": "typhoon"},
    ]
    resp = await emu.send_interaction(
        "watch add", {"rule": "troops", "channel": emu.channel("alerts")}
    )
    assert (await resp.final_message()).content == "watching troops in #alerts"
    assert emu.validate_all() == []


async def test_button_click_reaches_view_callback(
    emu: DiscordEmulator, bot: commands.Bot
) -> None:
    panel = await (await emu.send_interaction("panel")).final_message()
    assert panel.custom_ids == ["ack", "refresh", "topic"]
    refresh = await emu.click_button(panel, "refresh")
    assert (await refresh.final_message()).content == "refreshed"
    assert (await refresh.callback())["type"] == 6
    pick = await emu.select_menu(panel, "topic", ["tariffs"], user="member")
    picked = await pick.final_message()
    assert picked.content == "picked ['tariffs']" and picked.ephemeral
    # as Discord's client: only the select's own values, as many as it takes
    for values in (["sanctions"], [], ["troops", "tariffs"]):
        with pytest.raises(LookupError, match="select 'topic' offers"):
            await emu.select_menu(panel, "topic", values)
    click = await emu.click_button(panel, "ack", user="member")
    user_id, custom_id = await asyncio.wait_for(bot.clicked.get(), 5)  # type: ignore[attr-defined]
    assert (user_id, custom_id) == (emu.member.id, "ack")
    updated = await click.final_message()
    assert (await click.callback())["type"] == 7
    assert updated is panel and updated.content == "acknowledged" and updated.components == []
    assert emu.validate_all() == []


async def test_a_disabled_button_takes_no_click_unless_the_view_was_stale(
    emu: DiscordEmulator, bot: commands.Bot
) -> None:
    panel = await (await emu.send_interaction("panel")).final_message()
    panel.components[0]["components"][0]["disabled"] = True  # as an edit would leave it
    with pytest.raises(LookupError, match=r"'ack' of message .* is disabled"):
        await emu.click_button(panel, "ack")
    click = await emu.click_button(panel, "ack", stale=True)  # a client not yet updated
    assert (await click.final_message()).content == "acknowledged"


# --------------------------------------------------------------------------------------------
# Messages, webhooks, validation
# --------------------------------------------------------------------------------------------


async def test_channel_send_embed_and_allowed_mentions(
    emu: DiscordEmulator, bot: commands.Bot
) -> None:
    channel = bot.get_channel(alerts(emu))
    assert isinstance(channel, discord.TextChannel)
    bob, alice = emu.member.id, emu.admin.id
    embed = discord.Embed(title="Troops moving", description="Details", colour=0xFF0000)
    embed.add_field(name="Source", value="Reuters", inline=False).set_footer(text="newswatch")
    sent = await channel.send(
        f"<@{bob}> <@{alice}> @everyone new alert",
        embed=embed,
        allowed_mentions=discord.AllowedMentions(everyone=False, users=[discord.Object(bob)],
                                                 roles=False),
    )
    [msg] = emu.messages(alerts(emu))
    assert msg.id == sent.id
    assert msg.embeds[0]["title"] == "Troops moving"
    assert msg.embeds[0]["fields"][0] == {"name": "Source", "value": "Reuters", "inline": False}
    assert msg.allowed_mentions is not None
    assert msg.allowed_mentions["parse"] == []
    assert msg.allowed_mentions["users"] == [bob]  # ids sent as integers
    assert msg.pinged_user_ids() == {bob} and not msg.pings_everyone()
    request = emu.last_request("POST /channels/{channel_id}/messages")
    discord_spec.assert_valid(request)
    # the gateway echoed MESSAGE_CREATE and discord.py parsed it
    await asyncio.sleep(0.05)
    assert [m.id for m in bot.seen_messages] == [sent.id]  # type: ignore[attr-defined]
    assert emu.validate_all() == []


async def test_file_upload_multipart_is_recorded(emu: DiscordEmulator, bot: commands.Bot) -> None:
    channel = bot.get_channel(alerts(emu))
    assert isinstance(channel, discord.TextChannel)
    await channel.send("report", file=discord.File(io.BytesIO(b"a,b\n1,2\n"), "report.csv"))
    req = emu.last_request("POST /channels/{channel_id}/messages")
    assert req.content_type is not None and req.content_type.startswith("multipart/form-data")
    assert req.json["content"] == "report" and req.form["files[0]"] == b"a,b\n1,2\n"
    [msg] = emu.messages(alerts(emu))
    assert msg.attachments[0]["filename"] == "report.csv" and msg.attachments[0]["size"] == 8
    assert emu.validate_all() == []


async def test_invalid_bodies_are_rejected_and_flagged(
    emu: DiscordEmulator, bot: commands.Bot
) -> None:
    route = Route("POST", "/channels/{channel_id}/messages", channel_id=alerts(emu))
    with pytest.raises(discord.HTTPException) as too_long:
        await bot.http.request(route, json={"content": "x" * 2001})
    assert too_long.value.status == 400 and too_long.value.code == 50035
    problems = discord_spec.validate_recorded(emu.requests[-1])
    assert any("2001 characters" in p for p in problems)

    channel = bot.get_channel(alerts(emu))
    assert isinstance(channel, discord.TextChannel)
    big = [discord.Embed(description="d" * 3500), discord.Embed(description="e" * 2600)]
    with pytest.raises(discord.HTTPException) as too_big:
        await channel.send(embeds=big)
    assert too_big.value.code == 50035
    assert any("6100 characters of embed text" in p for p in emu.validate_all())

    # schema-only problem (Discord's spec says embed title is a string): emulator accepts
    # by default, the validator flags it
    route = Route("POST", "/channels/{channel_id}/messages", channel_id=alerts(emu))
    await bot.http.request(route, json={"embeds": [{"title": 123}]})
    with pytest.raises(AssertionError, match="embeds/0/title"):
        discord_spec.assert_valid(emu.requests[-1])
    assert len(emu.messages(alerts(emu))) == 1


def test_validator_accepts_valid_and_rejects_invalid_bodies() -> None:
    ok = {"content": "hi", "embeds": [{"title": "t"}], "allowed_mentions": {"users": [1, "2"]}}
    assert discord_spec.validate_request("POST", "/api/v10/channels/1/messages", ok) == []
    assert discord_spec.validate_request("POST", "/channels/1/messages", {"tts": "yes"})
    assert discord_spec.validate_request("POST", "/channels/1/messages", {"content": "x" * 2001})
    footer = {"embeds": [{"footer": {"text": "f" * 2048}, "fields": [
        {"name": "n" * 256, "value": "v" * 1024} for _ in range(4)]}]}
    assert any("7168 characters of embed text" in p for p in discord_spec.validate_request(
        "POST", "/webhooks/1/tok?wait=true", footer))
    cb = {"type": 4, "data": {"content": "y" * 2001}}
    assert discord_spec.validate_request("POST", "/interactions/1/t/callback", cb)
    assert discord_spec.validate_request("GET", "/no/such/route") != []
    found = discord_spec.find_operation("PATCH", "/webhooks/1/t/messages/@original")
    assert found is not None
    assert found[1]["operationId"] == "update_original_webhook_message"


async def test_webhook_execute_via_partial(emu: DiscordEmulator, bot: commands.Bot) -> None:
    hook = emu.webhooks[next(iter(emu.webhooks))]
    async with aiohttp.ClientSession() as session:
        webhook = discord.Webhook.partial(hook.id, hook.token, session=session)
        sent = await webhook.send("from webhook", username="Wire", wait=True,
                                  embed=discord.Embed(title="wire"))
        await webhook.send("no wait")  # wait=False -> 204
        edited = await webhook.edit_message(sent.id, content="edited")
        bad = discord.Webhook.partial(hook.id, "wrong-token", session=session)
        with pytest.raises(discord.HTTPException) as wrong:
            await bad.send("x", wait=True)
    assert wrong.value.status == 401 and wrong.value.code == 50027
    msgs = emu.messages(hook.channel_id)
    assert [m.content for m in msgs] == ["edited", "no wait"]
    assert msgs[0].webhook_id == hook.id and msgs[0].author["username"] == "Wire"
    assert edited.content == "edited" and sent.id == msgs[0].id
    assert emu.requests_for("POST /webhooks/{webhook_id}/{webhook_token}")[0].query["wait"] == "1"
    assert emu.validate_all() == []


async def test_nonce_with_enforce_nonce_dedupes(emu: DiscordEmulator, bot: commands.Bot) -> None:
    channel = bot.get_channel(alerts(emu))
    assert isinstance(channel, discord.TextChannel)
    first = await channel.send("alert 1", nonce="alert-1")
    again = await channel.send("alert 1 (retry)", nonce="alert-1")
    other = await channel.send("alert 2", nonce="alert-2")
    assert emu.requests_for("POST /channels/{channel_id}/messages")[0].json["enforce_nonce"]
    assert again.id == first.id and again.content == "alert 1"
    assert other.id != first.id
    assert [m.content for m in emu.messages(alerts(emu))] == ["alert 1", "alert 2"]
    # a raw request with the nonce but without enforce_nonce creates a new message
    route = Route("POST", "/channels/{channel_id}/messages", channel_id=alerts(emu))
    await bot.http.request(route, json={"content": "dup", "nonce": "alert-1"})
    assert len(emu.messages(alerts(emu))) == 3


# --------------------------------------------------------------------------------------------
# Fault injection
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["429", "429_global"])
async def test_injected_429_is_retried_and_message_arrives_once(
    emu: DiscordEmulator, bot: commands.Bot, fault: str
) -> None:
    channel = bot.get_channel(alerts(emu))
    assert isinstance(channel, discord.TextChannel)
    emu.inject("POST /channels/{channel_id}/messages", fault)
    await channel.send("rate limited once")
    posts = emu.requests_for("POST /channels/{channel_id}/messages")
    assert [p.status for p in posts] == [429, 200]
    assert posts[0].fault == fault
    assert posts[0].response["global"] is (fault == "429_global")
    assert [m.content for m in emu.messages(alerts(emu))] == ["rate limited once"]
    assert emu.pending_faults == []


async def test_injected_500_is_retried(emu: DiscordEmulator, bot: commands.Bot) -> None:
    channel = bot.get_channel(alerts(emu))
    assert isinstance(channel, discord.TextChannel)
    emu.inject(f"POST /channels/{alerts(emu)}/messages", 500)
    await channel.send("after a 500")  # discord.py sleeps 1 s before retrying
    posts = emu.requests_for(method="POST", path="/channels/*/messages")
    assert [p.status for p in posts] == [500, 200]
    assert len(emu.messages(alerts(emu))) == 1


@pytest.mark.parametrize(
    ("fault", "exc", "status", "code"),
    [
        ("403", discord.Forbidden, 403, 50013),
        (Fault.forbidden(50001), discord.Forbidden, 403, 50001),
        ("404", discord.NotFound, 404, 10003),
        ("400", discord.HTTPException, 400, 50035),
    ],
)
async def test_injected_client_errors_surface(
    emu: DiscordEmulator, bot: commands.Bot, fault: Any, exc: type[Exception], status: int,
    code: int,
) -> None:
    channel = bot.get_channel(alerts(emu))
    assert isinstance(channel, discord.TextChannel)
    emu.inject("POST /channels/{channel_id}/messages", fault)
    with pytest.raises(exc) as info:
        await channel.send("nope")
    assert isinstance(info.value, discord.HTTPException)
    assert (info.value.status, info.value.code) == (status, code)
    if code == 50035:
        assert "content" in info.value.text or "content" in str(emu.requests[-1].response)
    assert emu.messages(alerts(emu)) == []
    await channel.send("then it works")  # faults are consumed, normal behaviour resumes
    assert len(emu.messages(alerts(emu))) == 1


async def test_webhook_fault_unknown_webhook(emu: DiscordEmulator, bot: commands.Bot) -> None:
    hook = next(iter(emu.webhooks.values()))
    emu.inject("/webhooks/*", "404_webhook")
    async with aiohttp.ClientSession() as session:
        webhook = discord.Webhook.partial(hook.id, hook.token, session=session)
        with pytest.raises(discord.NotFound) as info:
            await webhook.send("x", wait=True)
        assert info.value.code == 10015
        await webhook.send("second try", wait=True)
    assert [m.content for m in emu.messages(hook.channel_id)] == ["second try"]


async def test_reset_after_receive_creates_message_but_client_errors(
    emu: DiscordEmulator, bot: commands.Bot
) -> None:
    channel = bot.get_channel(alerts(emu))
    assert isinstance(channel, discord.TextChannel)
    emu.inject("POST /channels/{channel_id}/messages", "reset_after_receive")
    with pytest.raises(aiohttp.ClientError):
        await channel.send("did it arrive?")
    assert [m.content for m in emu.messages(alerts(emu))] == ["did it arrive?"]
    post = emu.last_request("POST /channels/{channel_id}/messages")
    assert post.status is None and post.fault == "reset_after_receive"
    # with a nonce, the client can retry safely
    emu.inject("POST /channels/{channel_id}/messages", "reset_after_receive")
    with pytest.raises(aiohttp.ClientError):
        await channel.send("idempotent", nonce="n-1")
    again = await channel.send("idempotent", nonce="n-1")
    assert [m.content for m in emu.messages(alerts(emu))] == ["did it arrive?", "idempotent"]
    assert again.id == emu.messages(alerts(emu))[-1].id


async def test_slow_fault_delays_answer(emu: DiscordEmulator, bot: commands.Bot) -> None:
    channel = bot.get_channel(alerts(emu))
    assert isinstance(channel, discord.TextChannel)
    emu.inject("POST /channels/{channel_id}/messages", "slow:0.3")
    start = time.monotonic()
    await channel.send("slowly")
    assert time.monotonic() - start >= 0.3
    assert len(emu.messages(alerts(emu))) == 1
    # processed at once, answered late: a client-side timeout still leaves the message behind
    # (the answer is a minute late: the client gives up once the message exists, however long
    # a busy machine takes to get the request there)
    emu.inject("POST /channels/{channel_id}/messages", Fault.slow(60, after_processing=True))
    sending = asyncio.ensure_future(channel.send("late answer"))
    for _ in range(400):  # a hang guard of 20 s
        if len(emu.messages(alerts(emu))) == 2:
            break
        await asyncio.sleep(0.05)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(sending, 0.1)
    assert [m.content for m in emu.messages(alerts(emu))] == ["slowly", "late answer"]


async def test_validate_requests_mode_rejects_spec_invalid_bodies(discord_errors: Any) -> None:
    if not discord_spec.spec_available():
        pytest.skip(f"Discord OpenAPI spec not found at {discord_spec.SPEC_PATH}")
    async with DiscordEmulator(validate_requests=True) as emu:
        url = f"{emu.api_base}/channels/{alerts(emu)}/messages"
        headers = {"Authorization": "Bot t"}
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json={"embeds": [{"title": 5}]}, headers=headers) as r:
                assert r.status == 400
                body = await r.json()
                assert body["code"] == 50035 and "embeds/0/title" in str(body["errors"])
            async with session.post(url, json={"content": "fine"}, headers=headers) as r:
                assert r.status == 200
    assert [m.content for m in emu.messages(alerts(emu))] == ["fine"]


# --------------------------------------------------------------------------------------------
# Emulator plumbing
# --------------------------------------------------------------------------------------------


async def test_binds_loopback_and_patches_are_restored(discord_errors: Any) -> None:
    from discord.gateway import DiscordWebSocket

    before = (Route.BASE, str(DiscordWebSocket.DEFAULT_GATEWAY))
    async with DiscordEmulator() as emu:
        assert emu.api_base == f"http://127.0.0.1:{emu.port}/api/v10"
        assert emu.gateway_url == f"ws://127.0.0.1:{emu.port}/gateway"
        sockets = emu._site._server.sockets  # type: ignore[union-attr]
        assert {s.getsockname()[0] for s in sockets} == {"127.0.0.1"}
        assert all(s.family == socket.AF_INET for s in sockets)
        with patched_discord_urls(emu.api_base, emu.gateway_url):
            assert emu.api_base == Route.BASE
            assert str(DiscordWebSocket.DEFAULT_GATEWAY) == emu.gateway_url
        assert (Route.BASE, str(DiscordWebSocket.DEFAULT_GATEWAY)) == before
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{emu.api_base}/users/@me") as r:
                assert r.status == 401  # no bot token
                assert r.headers["Content-Type"] == "application/json"
            async with session.get(f"{emu.api_base}/nothing/here") as r:
                assert r.status == 404
    assert [r.path for r in emu.unhandled] == ["/nothing/here"]


async def test_wrong_token_fails_login(discord_errors: Any) -> None:
    async with DiscordEmulator(token="right") as emu, emu.patch_discord():
        client = discord.Client(intents=discord.Intents.default())
        with pytest.raises(discord.LoginFailure):
            async with run_client(client, emu, token="wrong", timeout=5):
                pass
        assert client.is_closed()


async def test_emu_message_helpers() -> None:
    msg = EmuMessage(1, 2, 3, {"id": "4"}, content="<@5> <@6> <@&7> @here",
                     allowed_mentions={"parse": [], "users": [5], "roles": []},
                     embeds=[{"title": "T", "fields": [{"name": "n", "value": "v"}]}])
    assert msg.pinged_user_ids() == {5} and msg.pinged_role_ids() == set()
    assert not msg.pings_everyone() and "n v" in msg.text
    assert Fault.parse("slow:0.5").delay == 0.5
    with pytest.raises(ValueError):
        Fault.parse("418")


# --------------------------------------------------------------------------------------------
# Threads from a message, moderator deletions
# --------------------------------------------------------------------------------------------


async def test_thread_from_a_message_takes_its_id_and_can_be_posted_to(
    emu: DiscordEmulator, bot: commands.Bot
) -> None:
    channel = bot.get_channel(alerts(emu))
    assert isinstance(channel, discord.TextChannel)
    starter = await channel.send("the story")
    thread = await starter.create_thread(name="Troops cross the border")
    assert isinstance(thread, discord.Thread)
    assert thread.id == starter.id and thread.parent_id == channel.id
    (spec,) = emu.threads(channel.id)
    assert (spec.id, spec.type, spec.name) == (starter.id, 11, "Troops cross the border")
    await thread.send("DW: also reported", nonce="line-1")
    await thread.send("DW: also reported (retry)", nonce="line-1")  # deduplicated by nonce
    assert [m.content for m in emu.messages(thread.id)] == ["DW: also reported"]
    assert [m.content for m in emu.messages(channel.id)] == ["the story"]
    assert emu.get_message(starter.id).payload()["thread"]["id"] == str(thread.id)
    # THREAD_CREATE reached the client, which now knows the thread
    for _ in range(100):
        if bot.get_channel(thread.id) is not None:
            break
        await asyncio.sleep(0.02)
    assert isinstance(bot.get_channel(thread.id), discord.Thread)
    # a second thread on the same message is refused as on Discord
    with pytest.raises(discord.HTTPException) as info:
        await starter.create_thread(name="again")
    assert (info.value.status, info.value.code) == (400, 160004)
    created = emu.requests_for("POST /channels/{channel_id}/messages/{message_id}/threads")
    assert [r.status for r in created] == [201, 400]
    assert emu.validate_all() == []


async def test_thread_creation_needs_the_permission_and_a_name(discord_errors: Any) -> None:
    guild = default_guild()
    no_threads = discord_emulator.Permissions.CREATE_PUBLIC_THREADS
    guild.channel("alerts").permission_overwrites.append(
        {"id": str(guild.id), "type": 0, "allow": "0", "deny": str(no_threads)})
    async with DiscordEmulator(guilds=[guild]) as emu, emu.patch_discord():
        client = discord.Client(intents=discord.Intents.none())
        async with run_client(client, emu):
            msg = await client.get_partial_messageable(alerts(emu)).send("x")
            with pytest.raises(discord.Forbidden) as info:
                await client.http.start_thread_with_message(alerts(emu), msg.id, name="t",
                                                            auto_archive_duration=1440)
            assert info.value.code == 50013
    async with DiscordEmulator() as emu, emu.patch_discord():
        client = discord.Client(intents=discord.Intents.none())
        async with run_client(client, emu):
            msg = await client.get_partial_messageable(alerts(emu)).send("x")
            with pytest.raises(discord.HTTPException) as bad:
                await client.http.start_thread_with_message(alerts(emu), msg.id, name="n" * 101,
                                                            auto_archive_duration=1440)
            assert (bad.value.status, bad.value.code) == (400, 50035)
            problems = emu.validate_all()
            assert len(problems) == 1 and "name" in problems[0]
            assert emu.threads() == []


async def test_moderator_deletions_answer_unknown_message_and_channel(
    emu: DiscordEmulator, bot: commands.Bot
) -> None:
    channel = bot.get_channel(alerts(emu))
    assert isinstance(channel, discord.TextChannel)
    msg = await channel.send("soon gone")
    thread = await msg.create_thread(name="t")
    await emu.delete_message(channel.id, msg.id)
    assert emu.messages(channel.id) == []
    for call in (channel.fetch_message(msg.id), msg.edit(content="edited")):
        with pytest.raises(discord.NotFound) as info:
            await call
        assert info.value.code == 10008
    await thread.send("the thread outlives its starter message")
    with pytest.raises(KeyError):
        await emu.delete_message(channel.id, msg.id)  # already gone
    await emu.delete_channel(thread.id)
    with pytest.raises(discord.NotFound) as gone:
        await thread.send("into the void")
    assert gone.value.code == 10003
    assert emu.threads() == []
    assert emu.validate_all() == []


# --------------------------------------------------------------------------------------------
# Forum channels and thread channels
# --------------------------------------------------------------------------------------------

FORUM_ID = discord_emulator.DEFAULT_GUILD_ID + 20


def forum_guild(*, require_tag: bool = False) -> discord_emulator.GuildSpec:
    guild = default_guild()
    guild.channels.append(discord_emulator.ChannelSpec(
        FORUM_ID, "news-forum", type=15, position=3, guild_id=guild.id,
        available_tags=[discord_emulator.forum_tag(FORUM_ID + 1, "Troops"),
                        discord_emulator.forum_tag(FORUM_ID + 2, "mods-only", moderated=True)],
        flags=1 << 4 if require_tag else 0))
    return guild


async def test_a_forum_post_takes_a_message_and_tags_and_its_starter_shares_its_id(
        discord_errors: Any) -> None:
    async with DiscordEmulator(guilds=[forum_guild()]) as emu, emu.patch_discord():
        client = discord.Client(intents=discord.Intents(guilds=True))
        async with run_client(client, emu):
            forum = client.get_channel(FORUM_ID)
            assert isinstance(forum, discord.ForumChannel)
            assert [t.name for t in forum.available_tags] == ["Troops", "mods-only"]
            troops = forum.get_tag(FORUM_ID + 1)
            assert troops is not None
            made = await forum.create_thread(name="Troops cross the border",
                                             embed=discord.Embed(title="the alert"),
                                             applied_tags=[troops])
            post, starter = made.thread, made.message
            assert post.id == starter.id and post.parent_id == FORUM_ID
            assert [t.id for t in post.applied_tags] == [troops.id]
            (spec,) = emu.threads(FORUM_ID)
            assert (spec.id, spec.name, spec.applied_tags) == (post.id, post.name, [troops.id])
            # the starter lives in the post, which takes replies like a channel
            assert [m.id for m in emu.messages(post.id)] == [post.id]
            fetched = await post.fetch_message(post.id)
            assert fetched.embeds[0].title == "the alert"
            await post.send("a reply", nonce="reply-1")
            active = await forum.guild.active_threads()
            assert [(t.id, t.parent_id) for t in active] == [(post.id, FORUM_ID)]
            # a forum takes no message of its own; a moderated tag needs Manage Threads
            with pytest.raises(discord.HTTPException) as info:
                await client.get_partial_messageable(FORUM_ID).send("not here")
            assert (info.value.status, info.value.code) == (400, 50008)
            moderated = forum.get_tag(FORUM_ID + 2)
            assert moderated is not None and moderated.moderated
            with pytest.raises(discord.Forbidden):
                await forum.create_thread(name="x", content="y", applied_tags=[moderated])
            assert len(emu.threads(FORUM_ID)) == 1
        assert emu.validate_all() == []
    created = emu.requests_for("POST /channels/{channel_id}/threads")
    assert created[0].query == {"use_nested_fields": "1"}  # what discord.py really sends


async def test_a_forum_requiring_tags_refuses_an_untagged_post(discord_errors: Any) -> None:
    async with DiscordEmulator(guilds=[forum_guild(require_tag=True)]) as emu, \
            emu.patch_discord():
        client = discord.Client(intents=discord.Intents(guilds=True))
        async with run_client(client, emu):
            forum = client.get_channel(FORUM_ID)
            assert isinstance(forum, discord.ForumChannel) and forum.flags.require_tag
            with pytest.raises(discord.HTTPException) as info:
                await forum.create_thread(name="untagged", content="x")
            assert (info.value.status, info.value.code) == (400, 40067)
            assert emu.threads(FORUM_ID) == []


def test_the_spec_gap_for_forum_posts_is_one_named_query_parameter() -> None:
    body = {"name": "post", "message": {"content": "x"}}
    path = "/channels/1/threads"
    assert discord_spec.validate_request("POST", f"{path}?use_nested_fields=1", body) == []
    (problem,) = discord_spec.validate_request("POST", f"{path}?use_nested_fieldz=1", body)
    assert "undeclared query parameter 'use_nested_fieldz'" in problem
    # only on that operation
    (other,) = discord_spec.validate_request("POST", "/channels/1/messages?use_nested_fields=1",
                                             {"content": "x"})
    assert "use_nested_fields" in other


async def test_a_thread_channel_is_cached_and_posted_to_like_a_channel(
        discord_errors: Any) -> None:
    async with DiscordEmulator() as emu, emu.patch_discord():
        spec = emu.add_thread(alerts(emu), "desk chat")
        client = discord.Client(intents=discord.Intents(guilds=True))
        async with run_client(client, emu):
            thread = client.get_channel(spec.id)
            assert isinstance(thread, discord.Thread) and thread.parent_id == alerts(emu)
            await thread.send("into the thread")
        assert [m.content for m in emu.messages(spec.id)] == ["into the thread"]
        assert emu.messages(alerts(emu)) == []
        assert emu.validate_all() == []


# --------------------------------------------------------------------------------------------
# Channel options, two guilds, global commands
# --------------------------------------------------------------------------------------------

OTHER = 1100000000000000501


class TextOrThread(app_commands.Transformer):
    """A channel option for text channels and threads, passed on as Discord resolved it
    (discord.py's own AppCommandChannel option also offers media channels, a type the spec's
    command options do not know)."""

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.channel

    @property
    def channel_types(self) -> list[discord.ChannelType]:
        return [discord.ChannelType.text, discord.ChannelType.public_thread]

    async def transform(self, interaction: discord.Interaction, value: Any, /) -> Any:
        return value


def where_bot() -> commands.Bot:
    """A bot whose /where echoes the channel option as discord.py received it."""
    bot = commands.Bot(command_prefix="!", intents=discord.Intents(guilds=True),
                       guild_ready_timeout=0.05)

    @bot.tree.command(name="where", description="Echo a channel option")
    async def where(interaction: discord.Interaction,
                    channel: app_commands.Transform[app_commands.AppCommandChannel,
                                                    TextOrThread]) -> None:
        perms = channel.permissions
        await interaction.response.send_message(
            f"{channel.name} guild={channel.guild_id} type={channel.type.value} "
            f"send={perms.send_messages} view={perms.view_channel} "
            f"me={interaction.guild is not None and interaction.guild.me is not None}")

    return bot


async def test_a_global_sync_reaches_every_guild_and_channel_options_stay_in_theirs(
        discord_errors: Any) -> None:
    guilds = [default_guild(), default_guild(OTHER, "Other desk")]
    guilds[0].channels.append(discord_emulator.ChannelSpec(
        guilds[0].id + 20, "closed", position=3, permission_overwrites=[{
            "id": str(guilds[0].id + 101), "type": 0, "allow": "0",
            "deny": str(discord_emulator.Permissions.SEND_MESSAGES)}]))
    async with DiscordEmulator(guilds=guilds) as emu, emu.patch_discord():
        thread = emu.add_thread(guilds[0].channel("alerts").id, "desk chat")
        bot = where_bot()
        async with run_client(bot, emu):
            await bot.tree.sync()  # global: no guild id
            assert emu.commands(guilds[0].id) == [] and emu.commands(OTHER) == []
            assert [c["name"] for c in emu.commands()] == ["where"]
            for guild, channel in ((guilds[0], "alerts"), (guilds[1], "ops")):
                spec = guild.channel(channel)
                msg = await (await emu.send_interaction(
                    "where", {"channel": spec}, guild_id=guild.id)).final_message()
                assert msg.content == (f"{channel} guild={guild.id} type=0 send=True view=True "
                                       "me=True")
            # a thread of the guild resolves too
            msg = await (await emu.send_interaction("where", {"channel": thread.id})
                         ).final_message()
            assert msg.content.startswith(f"desk chat guild={guilds[0].id} type=11 ")
            # resolved permissions are the invoking member's: bob's role may not send there
            closed = guilds[0].channel("closed")
            as_bob = await (await emu.send_interaction("where", {"channel": closed},
                                                       user="member")).final_message()
            assert "send=False view=True" in as_bob.content
            as_alice = await (await emu.send_interaction("where", {"channel": closed})
                              ).final_message()
            assert "send=True view=True" in as_alice.content
            # Discord's picker cannot offer another guild's channel ...
            with pytest.raises(LookupError, match="only the guild's own channels"):
                await emu.send_interaction("where", {"channel": guilds[1].channel("ops")})
            # ... but a forged request reaches the bot with it; discord.py files it under the
            # interaction's guild, so a bot must look the id up itself
            forged = await (await emu.send_interaction(
                "where", {"channel": guilds[1].channel("ops")}, foreign_channels=True)
            ).final_message()
            assert forged.content == (f"ops guild={guilds[0].id} type=0 send=False "
                                      "view=False me=True")
            assert bot.get_guild(guilds[0].id).get_channel_or_thread(  # type: ignore[union-attr]
                guilds[1].channel("ops").id) is None
        assert emu.validate_all() == []


async def test_a_channel_option_offers_only_the_types_it_allows(discord_errors: Any) -> None:
    guild = default_guild()
    guild.channels.append(discord_emulator.ChannelSpec(guild.id + 21, "news desk", type=4,
                                                       position=4))
    async with DiscordEmulator(guilds=[guild]) as emu, emu.patch_discord():
        bot = commands.Bot(command_prefix="!", intents=discord.Intents(guilds=True),
                           guild_ready_timeout=0.05)

        @bot.tree.command(name="text", description="A text channel")
        async def text(interaction: discord.Interaction, channel: discord.TextChannel) -> None:
            await interaction.response.send_message(channel.name)

        async with run_client(bot, emu):
            await bot.tree.sync()
            with pytest.raises(LookupError, match="takes channel types"):
                await emu.send_interaction("text", {"channel": guild.channel("news desk")})
            ok = await (await emu.send_interaction("text", {"channel": guild.channel("ops")})
                        ).final_message()
            assert ok.content == "ops"
        assert emu.validate_all() == []
