"""`newswatch run` as a user starts it, meeting what stands between it and Discord: it ends in
one line naming the problem, never a traceback, and never shows the token."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.bot.conftest import TOKEN
from tests.bot.test_run_with_token import ended, run_process, write_toml
from tests.conftest import SEEDS

# What Cloudflare answers in Discord's place to an address it blocks (error 1020) or bans for
# too many requests (1015): an HTML page, no JSON.
BLOCKED_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Access denied | discord.com used Cloudflare to "
    "restrict access</title></head>\n<body>\n"
    + "<div class=\"cf-error-details\">Error 1020 · Ray ID: 8f3a0c1d2e</div>\n" * 40
    + "</body></html>\n")


@pytest.fixture
async def blocked() -> AsyncIterator[tuple[str, dict[str, int]]]:
    """An address in front of Discord's API that answers every request with the page, at the
    status the test sets (``state["status"]``); yields its API base and that state."""
    state = {"status": 403}

    async def page(request: web.Request) -> web.Response:
        return web.Response(status=state["status"], text=BLOCKED_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/api/v10", state
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(("status", "extra", "said"), [
    (403, [], "HTTP 403 Forbidden: Access denied | discord.com used Cloudflare"),
    (429, ["--once"], "HTTP 429 Too Many Requests: Access denied | discord.com used Cloudflare"),
])
async def test_a_login_refused_by_a_page_in_front_of_discord_ends_in_one_line(
        tmp_path: Path, blocked: tuple[str, dict[str, int]], status: int, extra: list[str],
        said: str) -> None:
    """It ended in a traceback and the whole HTML page, 70 lines, exit 1."""
    api_base, state = blocked
    state["status"] = status
    shutil.copytree(SEEDS, tmp_path / "seeds")
    write_toml({"storage": {"path": "nw.db"}, "channels": {"alerts": 123456789012345678},
                "discord": {"token_env": "NEWSWATCH_TEST_TOKEN", "api_base": api_base},
                "sources": [{"name": "seeds", "type": "folder", "path": "seeds"}],
                "rules": [{"name": "troops", "query": "troops"}]}, tmp_path / "config.toml")
    env = {**os.environ, "NEWSWATCH_TEST_TOKEN": TOKEN}
    out, err = await ended(await run_process(tmp_path, env, *extra), 1)
    assert "Traceback" not in err and "<div" not in err, err
    (line,) = [x for x in err.splitlines() if "Discord refused the connection" in x]
    assert "ERROR" in line and said in line, err
    assert TOKEN not in err and TOKEN not in out
