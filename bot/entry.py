"""The ``newswatch`` command's entry point (and ``python -m bot``'s): Ctrl-C while the program
is still loading ends it as Ctrl-C anywhere else does, quietly with status 130, instead of with
a traceback of whatever module was being imported."""

from __future__ import annotations


def run() -> int:
    import sys

    try:
        from bot.cli import main
    except KeyboardInterrupt:
        return 130
    status = main()
    if (runner := sys.modules.get("bot.runner")) is not None:
        runner.after_run(status)  # after a signalled stop: ends the process at once
    return status
