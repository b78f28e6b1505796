"""What the end-to-end story tests share: one event as three outlets report it, newswatch
watching one feed per outlet served on 127.0.0.1, and the waits that tell one message edited
from a message doubled."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.bot.conftest import Running, bot_config, running_with
from tests.fakes.discord_emulator import DiscordEmulator, EmuMessage
from tests.fakes.feed_server import FeedServer, Route
from tests.service.test_identity import rss

# One event, three outlets, three wordings.
REPORTS = {
    "dw": ("Russian troops mass near Ukraine border, satellite images show",
           "New satellite images show Russian troops and armour massing near the Ukrainian "
           "border at Yelnya."),
    "npr": ("Satellite images show Russian troops massing near Ukraine's border",
            "Maxar satellite images show Russian troops and tanks gathering near Yelnya, close "
            "to Ukraine."),
    "bbc": ("Russia masses troops near Ukraine border, new satellite images show",
            "Fresh satellite images of Yelnya show Russia massing troops near the border with "
            "Ukraine."),
}


@asynccontextmanager
async def watching_feeds(emu: DiscordEmulator, tmp_path: Path, server: FeedServer,
                         feeds: Iterable[str], *, backfill: int, **overrides: Any
                         ) -> AsyncIterator[Running]:
    """newswatch polling ``server``'s ``/<name>`` for each of ``feeds`` (every hour, so only
    ``run_once`` polls), alerting on "troops" unless ``overrides`` say otherwise; the first
    poll, each feed's baseline, is done before it is yielded."""
    (tmp_path / "seeds").mkdir(exist_ok=True)
    data = bot_config(
        emu, tmp_path,
        fetch={"allow_private": ["127.0.0.1/32"]},
        sources=[{"name": f, "type": "feed", "url": server.url(f"/{f}"), "every": "1h",
                  "backfill": backfill} for f in feeds],
        rules=[{"name": "troops", "query": "troops"}],
    )
    data.update(overrides)
    async with running_with(emu, tmp_path, data, tmp_path / "seeds") as run:
        await run.engine.run_once()  # every feed's baseline (empty)
        yield run


async def settle(run: Running, predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    await run.wait_for(predicate, seconds)
    await asyncio.sleep(0.2)  # a duplicate would arrive now


def edits(emu: DiscordEmulator, message_id: int | str) -> int:
    return sum(1 for r in emu.requests if r.method == "PATCH"
               and r.path.endswith(f"/messages/{message_id}"))


def embeds_text(msg: EmuMessage) -> str:
    return json.dumps(msg.embeds)


@asynccontextmanager
async def empty_feeds(outlets: Iterable[str]) -> AsyncIterator[FeedServer]:
    """A feed server with each outlet's feed, empty until it reports."""
    async with FeedServer() as server:
        for o in outlets:
            server.set(f"/{o}", Route(body=rss([])))
        yield server
