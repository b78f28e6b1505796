"""The ``newswatch`` command's entry point (and ``python -m bot``'s): Ctrl-C while the program
is still loading ends it as Ctrl-C anywhere else does, quietly with status 130, instead of with
a traceback of whatever module was being imported."""

from __future__ import annotations


def run() -> int:
    try:
        from bot.cli import main
    except KeyboardInterrupt:
        return 130
    return main()
