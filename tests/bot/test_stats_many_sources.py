"""/stats with more sources (and paused routes) than one embed holds: nothing is left out
without a word. Failing sources come first, so a problem is never what is cut, and the footer
counts what the embed could not hold. The end-to-end test runs the real discord.py against the
emulator, every request checked against Discord's OpenAPI spec; the others build the embed
from engine Stats directly, to reach what a running bot only reaches slowly (long errors,
paused routes)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.embeds import LIMITS, stats_embed
from tests.bot.conftest import bot_config, running_with
from tests.bot.test_embeds import check_limits
from tests.fakes.discord_emulator import DiscordEmulator
from tests.fakes.feed_server import FeedServer, Route
from watchers.engine import SourceView, Stats
from watchers.store.base import SourceState

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def _left_out(footer: str, what: str) -> int:
    """How many ``what`` ("source", "paused route") the footer says were left out; 0 when it
    says nothing of them."""
    found = re.search(rf"and (\d+) more {what}s?\b", footer)
    return int(found.group(1)) if found else 0


async def test_stats_of_26_sources_shows_the_failing_one_past_the_20th_and_counts_the_rest(
        emu: DiscordEmulator, tmp_path: Path) -> None:
    """Before, /stats listed the first 20 sources and silently dropped the rest: a feed that
    failed, sorted after 25 folders, was nowhere in the answer and nothing said "and N
    more". Now the failing source is listed first and the footer counts the sources left
    out (26 sources and the two counts take more than Discord's 25 fields), saying none of
    them is failing."""
    sources = []
    for i in range(1, 26):
        (tmp_path / f"f{i:02d}").mkdir()
        sources.append({"name": f"src{i:02d}", "type": "folder", "path": f"f{i:02d}",
                        "every": "1h"})
    async with FeedServer() as server:
        server.set("/broken", Route(status=500, body=b"oops"))
        sources.append({"name": "zz-broken", "type": "feed", "url": server.url("/broken"),
                        "every": "1h"})
        (tmp_path / "seeds").mkdir()
        data = bot_config(emu, tmp_path, sources=sources,
                          fetch={"allow_private": ["127.0.0.1/32"]})
        async with running_with(emu, tmp_path, data, tmp_path / "seeds") as run:
            await run.engine.watch.run_once()
            await run.wait_for(lambda: bool(server.hits("/broken")))
            stats = await (await emu.send_interaction("stats")).final_message(timeout=15)
    (embed,) = stats.embeds
    names = [f["name"] for f in embed["fields"]]
    assert names[:2] == ["Articles", "Alerts"]
    assert names[2] == "zz-broken (feed)", names  # the failing source first
    broken = embed["fields"][2]["value"]
    assert "last error" in broken and "500" in broken, broken
    listed = sum(1 for n in names if n.startswith("src"))
    footer = embed.get("footer", {}).get("text", "")
    assert listed < 25 and listed + _left_out(footer, "source") == 25, (names, footer)
    assert "none failing" in footer, footer
    assert len(embed["fields"]) <= LIMITS["fields"]
    assert emu.validate_all() == []


def _source(i: int, *, failing: bool, error_len: int = 0) -> SourceView:
    state = SourceState(f"s{i}", failures=3 if failing else 0,
                        last_error=("HTTP 503 " + "y" * error_len) if failing else None,
                        last_error_at=WHEN if failing else None,
                        last_success=None if failing else WHEN)
    return SourceView(f"feed-{i:02d}", "feed", f"https://news.example/{i}",
                      timedelta(minutes=10), "config", state)


def _shown_and_footer(stats: Stats) -> tuple[list[str], str]:
    embed = stats_embed(stats)
    check_limits(embed)
    return [str(f.name) for f in embed.fields], embed.footer.text or ""


def test_paused_routes_past_the_third_are_shown_or_counted() -> None:
    """Before, /stats showed the first 3 paused routes and said nothing of the others. Now
    each is shown while fields are left, and those that are not are counted."""
    stats = Stats(articles=1, alerts={}, sources=[_source(i, failing=False) for i in range(30)],
                  paused_routes={f"route-{i}": "403 Missing Access" for i in range(6)})
    names, footer = _shown_and_footer(stats)
    routes = [n for n in names if n.startswith("route ")]
    assert routes == [f"route route-{i} paused" for i in range(6)], names
    shown = sum(1 for n in names if n.startswith("feed-"))
    assert shown + _left_out(footer, "source") == 30, (names, footer)
    assert "none failing" in footer and _left_out(footer, "paused route") == 0, footer


def test_many_failing_sources_with_long_errors_are_each_shown_or_counted_as_failing() -> None:
    """30 failing sources with long errors and 25 paused routes: more than 25 fields and
    6,000 characters hold. Before, the first 20 sources and 3 routes were taken, then
    fit_embed dropped fields from the end, and neither was said. Now every failing source
    and paused route is either a field or counted in the footer as failing or paused, the
    healthy sources come after them, and the failing sources leave room for the first
    three paused routes."""
    failing = [_source(i, failing=True, error_len=400) for i in range(30)]
    healthy = [_source(i, failing=False) for i in range(30, 35)]
    stats = Stats(articles=1, alerts={}, sources=[*healthy, *failing],
                  paused_routes={f"route-{i}": "z" * 900 for i in range(25)})
    names, footer = _shown_and_footer(stats)
    shown_failing = sum(1 for n in names if n.startswith("feed-") and int(n[5:7]) < 30)
    shown_healthy = sum(1 for n in names if n.startswith("feed-") and int(n[5:7]) >= 30)
    shown_routes = sum(1 for n in names if n.startswith("route "))
    assert shown_failing > 0 and shown_healthy == 0, names  # problems before healthy ones
    assert shown_failing + shown_healthy + _left_out(footer, "source") == 35, (names, footer)
    assert f"{30 - shown_failing} failing" in footer, footer
    assert shown_routes >= 3 and shown_routes + _left_out(footer, "paused route") == 25, \
        (names, footer)
