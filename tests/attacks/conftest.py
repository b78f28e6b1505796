"""The Discord fixtures of tests/bot, for the attacks on slash commands."""

from tests.bot.conftest import emu, running

__all__ = ["emu", "running"]
