"""Secrets where newswatch shows what it reads or what failed: a private feed's key in its URL,
and a token, a webhook URL or a database password written in the config file where the name of
the variable holding it belongs. None of them reaches a listing, an error, a notice or a log
line."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bot.conftest import bot_config, running_on_seeds
from tests.bot.test_run_with_token import write_toml
from tests.cli.test_cli import nw
from tests.fakes.discord_emulator import DiscordEmulator, EmuMessage
from tests.fakes.feed_server import FeedServer, Route
from watchers.opml import parse_opml
from watchers.urls import without_credentials

# long enough to be a real key, and found by grep wherever it leaks
FEED_TOKEN = "SENTINEL-feed-token-" + "z" * 24


@pytest.fixture
async def feeds() -> AsyncIterator[FeedServer]:
    async with FeedServer() as server:
        server.set("/private", Route(status=500))
        yield server


def private_feed(feeds: FeedServer) -> dict[str, str]:
    """The operator's feed, read with a key in its query (as paid and private feeds are)."""
    return {"name": "private", "type": "feed",
            "url": feeds.url("/private") + f"?format=rss&api_key={FEED_TOKEN}"}


def everything_in(msg: EmuMessage) -> str:
    """A message's text as the user reads it (markdown escapes aside) and its files."""
    return "\n".join([msg.text.replace("\\", ""),
                      *(data.decode(errors="replace") for data in msg.files.values())])


async def test_a_private_feeds_key_is_in_no_listing_error_or_notice_any_member_sees(
        emu: DiscordEmulator, tmp_path: Path, feeds: FeedServer,
        caplog: pytest.LogCaptureFixture) -> None:
    """A config file's feed is every server's: /sources list, /stats and /sources export
    (everyone's commands) showed its URL whole, key and all, and so did its failures (the log,
    the pause notice)."""
    caplog.set_level(logging.INFO)
    data = bot_config(emu, tmp_path, fetch={"allow_private": ["127.0.0.1/32"],
                                            "pause_after": 1})
    data["discord"]["notices"] = "alerts"
    data["sources"].append(private_feed(feeds))
    async with running_on_seeds(emu, tmp_path, data) as run:
        alerts = emu.channel("alerts").id
        await run.wait_for(lambda: any("paused" in m.content for m in emu.messages(alerts)))
        shown = [m for m in emu.messages(alerts) if "paused" in m.content]
        # a server's own feed with a key of its own, from an OPML file whose entry has no title
        opml = ('<?xml version="1.0"?><opml version="2.0"><head/><body><outline type="rss" '
                f'xmlUrl="{feeds.url("/desk")}?token={FEED_TOKEN}"/></body></opml>')
        handle = await emu.send_interaction("sources import",
                                            {"file": ("desk.opml", opml.encode())})
        shown.append(await handle.final_message(timeout=15))
        for command in ("sources list", "stats", "sources export"):
            handle = await emu.send_interaction(command, user="member")
            shown.append(await handle.final_message(timeout=10))
    notice, imported, listing, stats, export = (everything_in(m) for m in shown)
    assert "added" in shown[1].embeds[0]["footer"]["text"], imported
    assert "/desk?token=[redacted]" in imported and "/desk?token=[redacted]" in listing
    assert "'private' paused" in notice and "HTTP 500" in notice
    assert "api_key=[redacted]" in listing and "format=rss" in listing
    assert "HTTP 500 server error" in stats and "api_key=[redacted]" in stats
    assert sorted(e.title for e in parse_opml(shown[-1].files[shown[-1].attachments[0]["id"]])
                  .entries) == ["127.0.0.1", "private"]
    # (aiohttp.access: the feed server's own log of the request it was sent)
    logged = [r.getMessage() for r in caplog.records if r.name != "aiohttp.access"]
    assert any("source private failed" in line for line in logged)
    leaks = [text for text in (notice, imported, listing, stats, export, *logged)
             if FEED_TOKEN in text]
    assert not leaks, leaks[:3]


async def test_check_live_names_a_failing_private_feed_without_its_key(
        tmp_path: Path, feeds: FeedServer) -> None:
    write_toml({"storage": {"path": "nw.db"}, "fetch": {"allow_private": ["127.0.0.1/32"]},
                "sources": [private_feed(feeds)],
                "rules": [{"name": "troops", "query": "troops"}]}, tmp_path / "config.toml")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "check", "-c", "config.toml", "--live", cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode() + err.decode()
    assert proc.returncode == 1, text
    assert "api_key=[redacted]" in text and "HTTP 500 server error" in text, text
    assert FEED_TOKEN not in text


DB_PASSWORD = "SENTINEL-db-password-" + "q" * 12
BOT_TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0Mw.GhIjKl.SENTINEL-bot-token-" + "w" * 20
HOOK = "https://discord.com/api/webhooks/123456789012345678/SENTINEL-hook-token-" + "v" * 30


@pytest.mark.parametrize(("setting", "said"), [
    # the secret itself where the name of the variable holding it belongs
    (f'[discord]\ntoken_env = "{BOT_TOKEN}"',
     "discord.token_env: holds what looks like the token itself (not shown)"),
    (f'[storage]\nurl = "env:postgresql://news:{DB_PASSWORD}@db.example/news"',
     "storage.url: 'env:' is followed by what looks like a URL or a token itself (not shown)"),
    (f'[channels]\nalerts = "env:{HOOK}"',
     "channels.alerts: 'env:' is followed by what looks like a URL or a token itself"),
    (f'[channels.alerts]\ntarget = "env:{HOOK}"',
     "channels.alerts.target: 'env:' is followed by what looks like a URL or a token itself"),
    # taken for a file's name, the URL made folders of its password
    (f'[storage]\npath = "env:postgresql://news:{DB_PASSWORD}@db.example/news"',
     "storage.path: a PostgreSQL URL goes in [storage] url, not path"),
])
def test_a_secret_written_where_its_variables_name_belongs_is_refused_unrepeated(
        tmp_path: Path, setting: str, said: str) -> None:
    """The error named the value whole (a 60-character cut of a token): pasted in a question
    or kept in a service's log, it gave the secret away."""
    (tmp_path / "config.toml").write_text(
        f'{setting}\n[[sources]]\nname = "seeds"\ntype = "folder"\npath = "."\n'
        '[[rules]]\nname = "troops"\nquery = "troops"\n')
    done = nw("check", "-c", "config.toml", cwd=tmp_path)
    text = done.stdout + done.stderr
    assert done.returncode == 2, text
    assert said in text, text
    for secret in (DB_PASSWORD, BOT_TOKEN, BOT_TOKEN[:40], HOOK.rsplit("/", 1)[1]):
        assert secret not in text
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # nothing made of it


def test_sources_import_lists_an_added_private_feed_without_its_key(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[storage]\npath = "nw.db"\n[[rules]]\nname = "troops"\nquery = "troops"\n')
    (tmp_path / "paid.opml").write_text(
        '<?xml version="1.0"?><opml version="2.0"><head/><body>'
        f'<outline type="rss" xmlUrl="https://feeds.example.org/wire.xml?token={FEED_TOKEN}"/>'
        "</body></opml>")
    done = nw("sources", "import", "paid.opml", "-c", "config.toml", cwd=tmp_path)
    text = done.stdout + done.stderr
    assert done.returncode == 0, text
    assert "https://feeds.example.org/wire.xml?token=[redacted]" in done.stdout, text
    assert FEED_TOKEN not in text


@pytest.mark.parametrize(("text", "shown"), [
    ("https://feeds.example/rss?token=abc123: HTTP 500 server error",
     "https://feeds.example/rss?token=[redacted]: HTTP 500 server error"),
    ("https://bob:p@ss@feeds.example/rss", "https://bob:[redacted]@feeds.example/rss"),
    ("https://feeds.example/rss?apiKey=abc&keyword=kyiv&format=rss#top",
     "https://feeds.example/rss?apiKey=[redacted]&keyword=kyiv&format=rss#top"),
    ("redirect (302) to 'https://s3.example/f?X-Amz-Credential=AK/1&X-Amz-Signature=f0' refused",
     "redirect (302) to 'https://s3.example/f?X-Amz-Credential=[redacted]"
     "&X-Amz-Signature=[redacted]' refused"),
    ("https://feeds.example/rss?accesstoken=a.b.c.",
     "https://feeds.example/rss?accesstoken=[redacted]."),
    ("https://feeds.example/rss?page=2&sort=new", "https://feeds.example/rss?page=2&sort=new"),
    # a name percent-encoded is read as the server reads it ("to%6Ben" is "token")
    ("https://feeds.example/rss?to%6Ben=ENCTOK&api%5Fkey=k: HTTP 500",
     "https://feeds.example/rss?to%6Ben=[redacted]&api%5Fkey=[redacted]: HTTP 500"),
])
def test_a_urls_credentials_are_hidden_and_the_rest_kept(text: str, shown: str) -> None:
    assert without_credentials(text) == shown
