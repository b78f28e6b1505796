"""``python -m bot`` is ``newswatch``."""

import sys

from bot.entry import run

sys.exit(run())
