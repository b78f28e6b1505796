"""Slash commands of this session given what they should refuse, on the emulator with the real
discord.py: each is answered privately with a message naming the problem and inside Discord's
limits, pings nobody, and newswatch keeps its articles and keeps answering."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from tests.bot.conftest import Running
from tests.fakes.discord_emulator import EmuMessage

SEED_ARTICLES = 5
RAW_MENTION = re.compile(r"(?<!\\)@(everyone|here)|(?<!\\)<(?:\\)?[@#]")
MARKUP = "@everyone <@&123456789012345678> **bold** `tick` [x](https://evil.example) <#1>"


async def settled(run: Running) -> int:
    """The article count once the seeds are read (it changes no more after that)."""
    for _ in range(200):
        if await run.engine.count_articles() >= SEED_ARTICLES:
            break
        await asyncio.sleep(0.05)
    return await run.engine.count_articles()


def shown(msg: EmuMessage) -> str:
    """The content as the user reads it (markdown escapes aside)."""
    return msg.content.replace("\\", "")


async def attack(run: Running, command: str, options: dict[str, Any]) -> EmuMessage:
    """Send the command; the answer must be private, short, ping nobody and leave the store."""
    before = await settled(run)
    assert before == SEED_ARTICLES
    msg = await (await run.emu.send_interaction(command, options)).final_message()
    assert msg.ephemeral, msg.content
    assert 0 < len(msg.content) <= 2000
    assert "Traceback" not in msg.content
    # a mention pings unless allowed_mentions forbids it or it is escaped in the text
    parse = (msg.allowed_mentions or {}).get("parse", ["everyone", "roles", "users"])
    if "everyone" in parse or "roles" in parse:
        assert not RAW_MENTION.search(msg.content), msg.content
    assert await run.engine.count_articles() == before
    # still answering: a well-formed unknown story id gets its own answer
    unknown = "s" + "0" * 16
    after = await (await run.emu.send_interaction("story", {"id": unknown})).final_message()
    assert f"No story with id `{unknown}`" in after.content
    assert not run.task.done()
    assert run.emu.validate_all() == []
    return msg


async def test_a_story_id_of_five_thousand_characters(running: Running) -> None:
    msg = await attack(running, "story", {"id": "s" + "a" * 4999})
    assert "is not a story id" in msg.content
    assert "'s" + "a" * 20 in msg.content  # the id is shown, cut short


async def test_a_story_id_full_of_markup_and_mentions(running: Running) -> None:
    msg = await attack(running, "story", {"id": MARKUP})
    assert "is not a story id" in msg.content
    assert "@everyone" in shown(msg)  # named, not pinged (checked in attack)


async def test_a_trend_query_of_thirty_thousand_characters(running: Running) -> None:
    msg = await attack(running, "trend", {"query_or_rule": "troops OR " * 3000})
    # the value as received, trailing space trimmed
    assert "query_or_rule: 29999 characters; at most 500" in shown(msg), msg.content
    assert not msg.attachments


@pytest.mark.parametrize("route", ["nowhere", MARKUP])
async def test_digest_now_on_an_unknown_route(running: Running, route: str) -> None:
    msg = await attack(running, "digest now", {"route": route})
    assert f"no route named {route!r}; known: alerts" in shown(msg), msg.content


async def test_digest_now_on_a_route_of_five_thousand_characters(running: Running) -> None:
    msg = await attack(running, "digest now", {"route": "x" * 5000})
    assert msg.content.startswith("no route named 'xxxx"), msg.content
    assert "known: alerts" in shown(msg)  # a long name is shortened, the known routes stay


# Values outside what a command declares, which only a request made by hand sends: discord.py
# passed them on, and the engine's own refusal came after /search had deferred, as a public
# "Something went wrong".
@pytest.mark.parametrize(("command", "options", "said"), [
    ("search", {"query": "troops", "limit": 0}, "limit: from 1 to 50, not 0"),
    ("search", {"query": "troops", "limit": -1}, "limit: from 1 to 50, not -1"),
    ("search", {"query": "troops", "order": "worst"}, "order: one of newest, best, not 'worst'"),
    ("recent", {"limit": 10**20}, "limit: from 1 to 25, not 100000000000000000000"),
    ("recent", {"limit": 0}, "limit: from 1 to 25, not 0"),
])
async def test_an_option_outside_its_declared_range_is_refused_by_name(
        running: Running, command: str, options: dict[str, Any], said: str) -> None:
    msg = await attack(running, command, options)
    assert shown(msg) == said


BREAKOUT = "a` **[click me](https://evil.example)** `b"


@pytest.mark.parametrize(("command", "option"), [
    ("rules remove", "name"), ("sources remove", "name"), ("sources resume", "name"),
    ("alerts resume", "route")])
async def test_a_name_with_backticks_stays_inside_its_code_span(
        running: Running, command: str, option: str) -> None:
    """The typed name was put between backticks as it came: its own backtick closed the span
    and the bold link after it was rendered."""
    msg = await attack(running, command, {option: BREAKOUT})
    assert "`aˋ **[click me](https://evil.example)** ˋb`" in msg.content, msg.content


async def test_a_query_error_keeps_the_query_inside_its_code_block(running: Running) -> None:
    msg = await attack(running, "search",
                       {"query": "troops ``` **[click me](https://evil.example)**"})
    assert msg.content.count("```") == 2, msg.content
    block = msg.content.split("```")[1]
    assert "ˋˋˋ **[click me](https://evil.example)**" in block
    query, caret = block.strip("\n").split("\n")
    assert caret.index("^") == query.index("[")  # still under the bracket it is about


async def test_adding_a_feed_under_a_name_in_use_says_what_it_replaced(
        running: Running) -> None:
    """Adding a name the server already uses replaces that feed (how its URL or interval is
    changed); the reply said only "Watching", and the feed it dropped went unmentioned."""
    first = await (await running.emu.send_interaction(
        "sources add", {"name": "news", "url": "https://example.org/one"})).final_message()
    assert "replaced" not in first.content
    second = await (await running.emu.send_interaction(
        "sources add", {"name": "news", "url": "https://example.org/two",
                        "every": "30m"})).final_message()
    assert "every 30m (replaced `https://example.org/one` every 10m)" in second.content
    follows = list(running.engine.tenancy.follows.values())
    assert [getattr(f, "url", None) for f in follows] == ["https://example.org/two"]


async def test_rules_added_at_once_under_one_name_each_name_what_they_replaced(
        running: Running) -> None:
    """The replaced rule was read before the change: of four /rules add at once, three said
    they replaced the first one's query."""
    sent = await asyncio.gather(*[running.emu.send_interaction(
        "rules add", {"name": "dup", "query": f"troops OR x{i}"}) for i in range(4)])
    answers = [(await s.final_message(timeout=10)).content for s in sent]
    saved = [a.split("saved: `")[1].split("`")[0] for a in answers]
    replaced = [a.split("(replaced `")[1].split("`")[0] for a in answers if "(replaced" in a]
    # As one after another: one found the name free, each other replaced a different one, and
    # the last saved is the one nobody replaced.
    assert len(replaced) == 3 and len(set(replaced)) == 3, answers
    assert sorted(replaced + [q for q in saved if q not in replaced]) == sorted(saved)
    (last,) = [q for q in saved if q not in replaced]
    running_rules = [r.query for r in running.engine.watch.rules if r.name == "dup"]
    assert running_rules == [last]
