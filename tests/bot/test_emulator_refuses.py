"""Discord's limits, held against Discord's own numbers: the rendering's limits are those of the
OpenAPI spec (not a copy the tests would follow wherever it went), and an alert that fills every
one of them is accepted by the emulator checking each request against the spec, while the same
message one character over a limit is refused there as Discord refuses it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import discord
import pytest

from bot.embeds import LIMITS, alert_message
from tests.fakes import discord_spec
from tests.fakes.discord_emulator import DiscordEmulator, run_client
from watchers.config import RuleConfig
from watchers.delivery import Alert
from watchers.models import Article
from watchers.rules import match_query


def test_the_rendering_limits_are_discords_own() -> None:
    schemas = discord_spec.load_spec()["components"]["schemas"]

    def longest(schema: str, prop: str) -> int:
        return int(schemas[schema]["properties"][prop]["maxLength"])

    assert LIMITS["title"] == longest("RichEmbed", "title")
    assert LIMITS["description"] == longest("RichEmbed", "description")
    assert LIMITS["fields"] == schemas["RichEmbed"]["properties"]["fields"]["maxItems"]
    assert LIMITS["field_name"] == longest("RichEmbedField", "name")
    assert LIMITS["field_value"] == longest("RichEmbedField", "value")
    assert LIMITS["footer"] == longest("RichEmbedFooter", "text")
    assert LIMITS["author"] == longest("RichEmbedAuthor", "name")
    assert LIMITS["thread_name"] == longest("CreateTextThreadWithMessageRequest", "name")
    # documented, not in the spec (see discord_spec)
    assert LIMITS["content"] == discord_spec.MAX_CONTENT_LENGTH == 2000
    assert LIMITS["total"] == discord_spec.MAX_EMBED_TOTAL_TEXT == 6000


def fullest_alert() -> Alert:
    """An alert whose title, source and rule list are each longer than Discord takes."""
    text = " ".join(f"troops{i} troops" for i in range(400))
    art = Article(title="Troops " * 60, text=text, source="wire " * 80,
                  url="https://wire.example/a", published=datetime(2024, 5, 1, tzinfo=UTC))
    match = match_query("troops", art)
    assert match is not None
    rules = tuple(RuleConfig(name=f"troops-watch-{i:02d}-" + "x" * 40, query="troops",
                             severity="critical") for i in range(40))
    return Alert(id=1, route="alerts", nonce="n", attempt=1, article=art, matches=(match,),
                 rules=rules)


@pytest.fixture
async def client() -> AsyncIterator[tuple[DiscordEmulator, discord.Client]]:
    if not discord_spec.spec_available():
        pytest.skip(f"Discord OpenAPI spec not found at {discord_spec.SPEC_PATH}")
    async with DiscordEmulator(validate_requests=True) as emu, emu.patch_discord():
        bot = discord.Client(intents=discord.Intents.default())
        async with run_client(bot, emu):
            yield emu, bot


async def test_an_alert_that_fills_every_limit_is_accepted(
        client: tuple[DiscordEmulator, discord.Client]) -> None:
    emu, bot = client
    channel = bot.get_channel(emu.channel("alerts").id)
    assert isinstance(channel, discord.TextChannel)
    kwargs: dict[str, Any] = alert_message(fullest_alert())
    embed = kwargs["embed"].to_dict()
    # the cases this is about: cut to their limits, not short of them
    assert len(embed["author"]["name"]) == LIMITS["author"]
    assert max(len(f["value"]) for f in embed["fields"]) == LIMITS["field_value"]
    sent = await channel.send(**kwargs)
    (posted,) = emu.messages(channel.id)
    assert posted.id == sent.id and posted.embeds[0]["title"] == embed["title"]
    assert emu.validate_all() == []


@pytest.mark.parametrize(("where", "grow"), [
    ("title", lambda e: e.__setattr__("title", "T" * (LIMITS["title"] + 1))),
    ("author", lambda e: e.set_author(name="A" * (LIMITS["author"] + 1))),
    ("fields/0/value", lambda e: e.set_field_at(0, name="Rule", value="v" * 1025)),
    ("fields", lambda e: [e.add_field(name="n", value="v") for _ in range(LIMITS["fields"])]),
])
async def test_one_character_over_a_limit_is_refused(
        client: tuple[DiscordEmulator, discord.Client], where: str, grow: Any) -> None:
    emu, bot = client
    channel = bot.get_channel(emu.channel("alerts").id)
    assert isinstance(channel, discord.TextChannel)
    kwargs: dict[str, Any] = alert_message(fullest_alert())
    grow(kwargs["embed"])
    with pytest.raises(discord.HTTPException) as refused:
        await channel.send(**kwargs)
    assert refused.value.status == 400 and refused.value.code == 50035
    assert f"embeds/0/{where}" in str(emu.requests[-1].response)
    assert emu.messages(channel.id) == []
