"""Articles with numbered titles, and reading those numbers back from alert messages — so a test
can say which alerts reached Discord, how often, and in what order."""

from __future__ import annotations

import re
from pathlib import Path

from tests.fakes.discord_emulator import DiscordEmulator, EmuMessage

__all__ = ["MESSAGES", "WEBHOOK", "drop_articles", "report_number", "report_numbers"]

# the emulator's routes that create alert messages, for inject() and requests_for()
MESSAGES = "POST /channels/{channel_id}/messages"
WEBHOOK = "POST /webhooks/{webhook_id}/{webhook_token}"


def drop_articles(folder: Path, topic: str, numbers: range) -> None:
    """One article per number about ``topic`` (a word the rules match), titled with the number.

    Each file is written aside and renamed into place, so a poll never reads half a file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    word = topic.capitalize()
    for n in numbers:
        tmp = folder / f".{n:05d}.tmp"
        tmp.write_text(f"{word} report {n:05d}\n{word} were reported again, in report {n}.\n")
        tmp.replace(folder / f"{n:05d}.txt")


def report_number(message: EmuMessage) -> int | None:
    """Which article an alert message is about (its title carries the report number)."""
    title = message.embeds[0].get("title", "") if message.embeds else ""
    found = re.search(r"\b(\d{5})\b", title)
    return int(found.group(1)) if found else None


def report_numbers(emu: DiscordEmulator, channel: str | int) -> list[int]:
    """The report numbers of the alert messages in a channel, in the order they were posted."""
    cid = emu.channel(channel).id
    return [n for m in emu.messages(cid) if (n := report_number(m)) is not None]
