"""Running one piece of work in several threads that switch as often as possible."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable


def run_in_threads(
    work: Callable[[], None], threads: int = 4, interval: float = 1e-5, timeout: float = 120
) -> None:
    """Run ``work`` in ``threads`` threads at once with the interpreter's switch interval set to
    ``interval`` (so they interleave finely), and wait for them; AssertionError if one hangs."""
    saved = sys.getswitchinterval()
    sys.setswitchinterval(interval)
    try:
        running = [threading.Thread(target=work) for _ in range(threads)]
        for t in running:
            t.start()
        for t in running:
            t.join(timeout=timeout)
    finally:
        sys.setswitchinterval(saved)
    assert not any(t.is_alive() for t in running), "a thread did not finish"
