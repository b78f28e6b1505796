"""The Discord emulator fixture, shared with tests/bot."""

from tests.bot.conftest import emu  # noqa: F401  (fixture)
