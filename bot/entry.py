"""The ``newswatch`` command's entry point (and ``python -m bot``'s): Ctrl-C while the program
is still loading ends it as Ctrl-C anywhere else does, quietly with status 130, instead of with
a traceback of whatever module was being imported."""

from __future__ import annotations

EXIT_INTERRUPTED = 130


def run() -> int:
    import sys

    try:
        from bot.cli import main
    except KeyboardInterrupt:
        return 130
    status = main()
    # Stopped by a signal (130: Ctrl-C, kill or a closed terminal; run's clean stop says 0):
    # the process ends at once, a second signal meanwhile still the second one.
    if status == EXIT_INTERRUPTED:
        from bot.logs import end_now

        end_now(status)
    if (runner := sys.modules.get("bot.runner")) is not None:
        runner.after_run(status)
    return status
