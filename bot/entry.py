"""The ``newswatch`` command's entry point (and ``python -m bot``'s): Ctrl-C while the program
is still loading ends it as Ctrl-C anywhere else does, quietly with status 130, instead of with
a traceback of whatever module was being imported; so do a SIGTERM (kill) and a SIGHUP (a
closed terminal), which ended it by their own default action, with no word, before the
command's own handlers were installed."""

from __future__ import annotations

EXIT_INTERRUPTED = 130


def run() -> int:
    import signal
    import sys

    # A stop while the modules load ends it quietly with 130, whatever the import was doing
    # when it came: pydantic, building a model's schema, turns the KeyboardInterrupt into its
    # own error (a traceback, status 1).
    stopped: list[int] = []

    def interrupt(signum: int, frame: object) -> None:
        stopped.append(signum)
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)
    try:
        from bot.cli import main

        # Then SIGTERM (kill) and SIGHUP (a closed terminal) as Ctrl-C until the command
        # installs its own (run, import and copy do, and say "stopping"): by their default
        # action they ended it with no word. SIGINT's own handler back, which asyncio looks
        # for. Inside the try: a signal while they are switched (the first handler still on
        # for the others) is a stop here too.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.default_int_handler)
    except KeyboardInterrupt:
        return 130
    except BaseException:
        if stopped:
            return 130
        raise
    try:
        status = main()
    except KeyboardInterrupt:
        # Come before the command's own handling of a stop began (or after it ended).
        status = EXIT_INTERRUPTED
    # Stopped by a signal (130: Ctrl-C, kill or a closed terminal; run's clean stop says 0):
    # the process ends at once, a second signal meanwhile still the second one.
    if status == EXIT_INTERRUPTED:
        from bot.logs import end_now

        end_now(status)
    if (runner := sys.modules.get("bot.runner")) is not None:
        runner.after_run(status)
    return status
