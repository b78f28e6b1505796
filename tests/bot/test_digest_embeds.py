"""Digest messages as Discord gets them (pure rendering): why the digest came in its title,
stories grouped by rule and newest first, a linked and escaped line each, no pings, and a digest
too big for one message split between stories into parts that each fit Discord's limits."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta

import discord

from bot.embeds import LIMITS, delivery_embed, digest_line, digest_messages
from watchers.config import RuleConfig
from watchers.delivery import DeliveryStatus, Digest, DigestItem, StoryView
from watchers.models import Article

T0 = datetime(2022, 3, 26, 8, 0, tzinfo=UTC)
TROOPS = RuleConfig(name="troops", query="troops", severity="high")
KYIV = RuleConfig(name="kyiv", query="kyiv~")


def item(title: str, minutes: int, *rules: RuleConfig, outlets: tuple[str, ...] = ("dw",),
         articles: int = 1, url: str | None = None) -> DigestItem:
    when = T0 + timedelta(minutes=minutes)
    art = Article(title=title, text="body", source=outlets[0], published=when,
                  url=url or f"https://{outlets[0]}.example/{minutes}")
    story = StoryView(id=f"s{minutes:016x}", headline=title, first_seen=when, last_seen=when,
                      outlets=outlets, articles=max(articles, len(outlets)))
    rs = rules or (TROOPS,)
    return DigestItem(article=art, rules=rs, story=story, articles=articles,
                      severity=max((r.severity for r in rs), key=list(
                          ("info", "low", "medium", "high", "critical")).index), newest=when)


def digest(*items: DigestItem, reason: str = "digest", id: int = 7) -> Digest:
    return Digest(id=id, route="briefing", nonce="n" * 24, attempt=1, reason=reason,
                  items=items, since=T0)


def text_of(kwargs: dict) -> str:  # type: ignore[type-arg]
    embed = kwargs["embed"]
    assert isinstance(embed, discord.Embed)
    return embed.description or ""


def bullets(kwargs: dict) -> list[str]:  # type: ignore[type-arg]
    return [line for line in text_of(kwargs).split("\n") if line.startswith("• ")]


def test_one_message_grouped_by_rule_newest_first_with_counts_and_no_pings() -> None:
    d = digest(item("Old troops story", 5),
               item("Kyiv shelled", 30, KYIV, outlets=("dw", "npr", "bbc"), articles=4),
               item("New troops story", 50, TROOPS, KYIV))
    (msg,) = digest_messages(d)
    embed = msg["embed"]
    assert embed.title == "Digest · 3 stories · since 08:00 UTC"
    assert "content" not in msg or not msg["content"]
    assert msg["allowed_mentions"].to_dict() == {"parse": []}
    lines = text_of(msg).split("\n")
    # troops has the newest story, so its group comes first; newest first inside it
    heads = [i for i, line in enumerate(lines) if line.startswith("**`")]
    assert [lines[i] for i in heads] == ["**`troops`**", "**`kyiv`**"]
    troops = lines[heads[0] + 1: heads[1]]
    assert troops[0].startswith("• [New troops story](https://dw.example/50)")
    assert "also `kyiv`" in troops[0]  # it fired both; listed under the more severe one
    assert troops[1].startswith("• [Old troops story](https://dw.example/5)")
    (kyiv,) = [line for line in lines[heads[1]:] if line.startswith("• ")]
    assert "· 3 outlets · 4 articles ·" in kyiv
    assert "3 stories" in lines[0] and "6 articles" in lines[0]
    assert embed.footer.text == "newswatch digest 7 · route briefing"
    assert embed.colour is not None and embed.colour.value == 0xE67E22  # high


def test_the_title_says_why_for_quiet_hours_and_the_cap() -> None:
    items = (item("a", 1), item("b", 2, outlets=("dw", "npr"), articles=3))
    quiet = digest_messages(digest(*items, reason="quiet hours"))[0]["embed"]
    assert quiet.title.startswith("Quiet hours digest · 2 stories · since 08:00 UTC")
    cap = digest_messages(digest(*items, reason="cap"))[0]["embed"]
    assert cap.title == "… and 4 more on this route (past the hourly cap)"
    later = Digest(id=1, route="r", nonce="x", attempt=1, reason="digest",
                   items=(item("c", 60 * 30),), since=T0)
    assert digest_messages(later)[0]["embed"].title.endswith("since 26 Mar 08:00 UTC")


def test_article_text_cannot_ping_format_or_add_links() -> None:
    hostile = "@everyone <@&1> [x](https://evil) `code` **bold** troops"
    url = "https://ex.example/a)(b[c]"
    (msg,) = digest_messages(digest(item(hostile, 1, outlets=("<@123> news",), url=url)))
    (line,) = bullets(msg)
    assert "\\@everyone" in line and "\\<\\@&1\\>" in line and "\\[x\\]\\(https\\:" in line
    assert "\\<\\@123\\> news" in line and "\\*\\*bold\\*\\*" in line
    # exactly one masked link, its target with the link syntax percent-encoded
    assert re.findall(r"(?<!\\)\]\((\S+?)\)", line) == ["https://ex.example/a%29%28b%5Bc%5D"]


def test_a_big_digest_splits_between_stories_and_every_part_fits() -> None:
    items = [item(f"Story {i} " + "word " * 60, i, TROOPS if i % 3 else KYIV,
                  outlets=("dw", "npr"), url=f"https://dw.example/{i}/" + "p" * 150)
             for i in range(120)]
    d = digest(*items)
    parts = digest_messages(d)
    assert len(parts) > 1
    shown: list[str] = []
    for n, msg in enumerate(parts, start=1):
        embed = msg["embed"]
        assert len(embed.description) <= LIMITS["description"]
        assert len(embed) <= LIMITS["total"] and len(embed.title) <= LIMITS["title"]
        assert embed.title.endswith(f"({n}/{len(parts)})")
        assert embed.footer.text == f"newswatch digest 7 · part {n}/{len(parts)} · route briefing"
        assert msg["allowed_mentions"].to_dict() == {"parse": []}
        shown += bullets(msg)
        # a part that starts inside a group says which group it continues
        first_head = next(x for x in text_of(msg).split("\n") if x.startswith("**`"))
        if n > 1:
            assert text_of(msg).startswith(first_head)
    # every story once, whole, in order: the groups' lines newest first, nothing cut
    troops = [i for i in reversed(items) if i.rules == (TROOPS,)]
    kyiv = [i for i in reversed(items) if i.rules == (KYIV,)]
    expected = ([digest_line(i, "troops") for i in troops]
                + [digest_line(i, "kyiv") for i in kyiv])
    assert shown == expected
    assert sum("(continued)" in text_of(m) for m in parts) >= 1
    # as few parts as the limit needs: every part but the last could not take the next line
    for msg, nxt in itertools.pairwise(parts):
        assert len(text_of(msg)) + 1 + len(bullets(nxt)[0]) > LIMITS["description"] - 200


def test_no_items_no_messages() -> None:
    assert digest_messages(digest()) == []


def test_alerts_status_shows_what_each_route_keeps_and_its_next_digest() -> None:
    at = T0 + timedelta(hours=10)
    st = DeliveryStatus(counts={"scheduled": 3}, paused={}, held={}, backing_off={},
                        maybe_sent=0, rejected=[],
                        scheduled={"alerts": (3, T0), "briefing": (0, None)},
                        next_digest={"briefing": at})
    fields = {f.name: f.value for f in delivery_embed(st, lambda s: s).fields}
    t0, t1 = int(T0.timestamp()), int(at.timestamp())
    assert fields["Kept for digests"] == (
        f"`alerts` · 3 kept · next digest <t:{t0}:R> (<t:{t0}:t>)\n"
        f"`briefing` · 0 kept · next digest <t:{t1}:R> (<t:{t1}:t>)")
    quiet = DeliveryStatus(counts={}, paused={}, held={}, backing_off={}, maybe_sent=0,
                           rejected=[])
    assert "Kept for digests" not in {f.name for f in delivery_embed(quiet, str).fields}


def test_alerts_status_counts_a_kept_cap_summary_apart_from_the_alerts() -> None:
    """A route that keeps only a cap summary overnight read "0 kept · next digest 07:00":
    nothing kept, and a digest that never comes (the summary posts on its own when the
    quiet hours end). It says what is kept, and when that goes out."""
    at = T0 + timedelta(hours=10)
    st = DeliveryStatus(counts={"scheduled": 3}, paused={}, held={}, backing_off={},
                        maybe_sent=0, rejected=[],
                        scheduled={"alerts": (3, T0), "briefing": (0, at), "desk": (0, at)},
                        summaries={"alerts": 1, "briefing": 1, "desk": 2})
    fields = {f.name: f.value for f in delivery_embed(st, lambda s: s).fields}
    t0, t1 = int(T0.timestamp()), int(at.timestamp())
    assert fields["Kept for digests"] == (
        f"`alerts` · 3 kept and 1 cap summary · next digest <t:{t0}:R> (<t:{t0}:t>)\n"
        f"`briefing` · 1 cap summary kept · goes out <t:{t1}:R> (<t:{t1}:t>)\n"
        f"`desk` · 2 cap summaries kept · goes out <t:{t1}:R> (<t:{t1}:t>)")


def test_a_server_channel_route_is_named_as_its_readers_know_it_in_the_footer() -> None:
    import dataclasses

    picked = dataclasses.replace(digest(item("Troops mass", 1)),
                                 route="1100000000000000001:desk\u202eevil-\u2066x")
    (msg,) = digest_messages(picked)
    footer = msg["embed"].footer.text
    # the server's id and the raw direction controls were in it
    assert footer == "newswatch digest 7 · route #desk\\u202eevil-\\u2066x", footer
