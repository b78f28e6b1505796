"""The ``newswatch`` command's entry point (and ``python -m bot``'s): Ctrl-C while the program
is still loading ends it as Ctrl-C anywhere else does, quietly with status 130, instead of with
a traceback of whatever module was being imported; so do a SIGTERM (kill) and a SIGHUP (a
closed terminal), which ended it by their own default action, with no word, before the
command's own handlers were installed."""

from __future__ import annotations

EXIT_INTERRUPTED = 130
# Seconds a stop that came while the program loaded may take to end it before it is ended at
# once (see run): whatever swallowed its KeyboardInterrupt or held the exit, it never hangs.
ENDED_WITHIN = 5.0


def _end_within(seconds: float) -> None:
    """End the process with 130 in ``seconds`` unless it has ended by then (a daemon timer,
    which holds nothing up)."""
    import os
    import threading

    timer = threading.Timer(seconds, os._exit, (EXIT_INTERRUPTED,))
    timer.daemon = True
    timer.start()


def run() -> int:
    import signal
    import sys

    # Loaded before a stop can come: imported by the stop's handler (for its timer) while the
    # interrupted import was loading weakref, threading failed with a circular ImportError,
    # which ended the run with a traceback and status 1.
    import threading  # noqa: F401

    # A stop while the modules load ends it quietly with 130, whatever the import was doing
    # when it came: pydantic, building a model's schema, turns the KeyboardInterrupt into its
    # own error (a traceback, status 1).
    stopped: list[int] = []

    def interrupt(signum: int, frame: object) -> None:
        first = not stopped
        stopped.append(signum)  # first: whatever follows, the run ends as stopped (130)
        if first:
            # A KeyboardInterrupt raised where a library swallows it (a callback whose errors
            # are only printed) let the program load on and run; one that landed where the
            # exit then waited for a thread kept the process alive. CI met a run that never
            # ended after a kill 50 ms into its loading: it ends within ENDED_WITHIN now.
            _end_within(ENDED_WITHIN)
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
    if stopped:  # its KeyboardInterrupt swallowed on the way: a stop all the same
        return 130
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
