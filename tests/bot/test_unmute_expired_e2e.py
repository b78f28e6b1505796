"""/unmute after the mute has ended, as an admin types it (the real discord.py front end against
the emulator, polling and delivery on a manual clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.bot.conftest import bot_config, on_clock, running_with
from tests.fakes.discord_emulator import DiscordEmulator
from watchers.schedule import ManualClock


async def test_unmute_after_the_mute_ended_says_the_rule_was_not_muted(
        emu: DiscordEmulator, tmp_path: Path) -> None:
    """Two hours after "/mute troops 1h", with /rules list showing no mute, /unmute answered
    "Rule **troops** unmuted." and only a second /unmute said it was not muted. Now the first
    says so; a mute still running is unmuted as before."""
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    folder = tmp_path / "news"
    folder.mkdir()
    data = bot_config(emu, tmp_path, sources=[{"name": "news", "type": "folder",
                                               "path": "news", "every": "1h"}])
    async with running_with(emu, tmp_path, data, folder, on_clock(clock)) as run:
        async def ask(name: str, **options: str) -> str:
            return (await (await emu.send_interaction(name, options)).final_message()).content

        assert (await ask("mute", rule="troops", duration="1h")).startswith(
            "Rule **troops** muted until")
        clock.advance(timedelta(hours=2))
        assert not await run.engine.store.mutes(now=clock.now())
        said = await ask("unmute", rule="troops")
        assert said == "Rule **troops** was not muted.", said

        await ask("mute", rule="troops", duration="1h")
        clock.advance(timedelta(minutes=30))
        said = await ask("unmute", rule="troops")
        assert said == "Rule **troops** unmuted.", said
