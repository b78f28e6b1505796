"""Regex rules tried where their leads are keep the interpreter lock while they match.

The service matches in a worker thread beside the event loop's and the database's. The regex
module lets the interpreter lock go for each call on a str and takes it back after; beside a
busy thread that wait lasts up to the switch interval (5 ms by default) per call, and a rule
is tried at each place its lead occurs, so an article with a few hundred such places took
seconds. An attempt whose steps are bounded (see ``matcher._attempt_steps``) now keeps the lock;
a timed attempt or a search still lets it go, so that a slow pattern never holds the other
threads up (``tests/engine/test_lookup_isolation.py``).

The first test asks the matcher for its answer beside a thread spinning in Python at a
one-second switch interval, with a generous guard against a hang: handing the lock over per
call, the matcher waits a second at each place where the spinning thread wins the lock in
between (10 s to a minute in trials); keeping it, it is done in about the switch interval (the
turn the spinning thread takes at its start). Whether the spinning thread wins at a given call
depends on how soon it is woken, so the second test checks what each attempt asks of the regex
module, call by call.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from watchers.models import Article
from watchers.rules import RuleSet
from watchers.rules.matcher import (
    _BOUNDED,
    _KEEP_LOCK_S,
    _SECONDS_PER_STEP,
    _compiled_regex,
    _regex_plan,
    _spans_at,
    lead_tries,
)

# Each begins with a literal and is bounded: tried at each of its thirty leads, untimed. A
# lead in every 1,500 characters or so: with more, a pattern is searched for from the first
# (see matcher.lead_tries), and a search lets the lock go.
QUERIES = {
    "prefix": r"/\bgovern\w*/",
    "pair": r"/(troops|soldiers) to/",
    "word": r"/\bborder\b/",
}
TEXT = ("The government sent troops to the border. " + "Lorem ipsum dolor sit amet. " * 54) * 30


@contextmanager
def _a_spinning_thread(interval: float) -> Iterator[None]:
    old = sys.getswitchinterval()
    sys.setswitchinterval(interval)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    t = threading.Thread(target=spin, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(old)


def test_regex_rules_beside_a_busy_thread_do_not_wait_for_it_at_every_place() -> None:
    rules = RuleSet.from_queries(QUERIES, regex_budget=600.0)
    for query in QUERIES.values():
        pattern = query.strip("/")
        assert _regex_plan(pattern)[1], f"{pattern} has no lead"
        rx = _compiled_regex(pattern)
        assert id(rx) in _BOUNDED, f"{pattern} is not bounded"
        _, fixed, per_char = _BOUNDED[id(rx)]
        assert (fixed + per_char * len(TEXT)) * _SECONDS_PER_STEP <= _KEEP_LOCK_S
    assert lead_tries(len(TEXT)) >= 30
    article = Article(title="Troops to the border", text=TEXT)
    alone = rules.match_report(article, evidence=False).matches
    assert [m.rule for m in alone] == ["pair", "prefix", "word"]
    assert all(m.score >= 30 for m in alone)  # each found at its thirty places
    with _a_spinning_thread(1.0), ThreadPoolExecutor(1) as pool:
        began = time.monotonic()
        future = pool.submit(lambda: rules.match_report(article, evidence=False).matches)
        # A hang guard: handing the lock over at each of the ~90 places would take 90 s.
        beside = future.result(timeout=45)
        took = time.monotonic() - began
    assert [(m.rule, m.score) for m in beside] == [(m.rule, m.score) for m in alone]
    assert took < 45


class _Recording:
    """A compiled pattern (the regex module's, outside the project) that notes how each
    ``match`` asked for the interpreter lock: its fourth argument, or keyword, ``concurrent``
    (None: the module's default, which lets the lock go on a str)."""

    def __init__(self, pattern: str) -> None:
        self.rx = _compiled_regex(pattern)
        self.asked: list[object] = []

    def match(self, text: str, pos: int, endpos: int | None = None,
              concurrent: bool | None = None, timeout: float | None = None) -> object:
        self.asked.append(concurrent)
        return self.rx.match(text, pos, endpos, concurrent, timeout=timeout)


def test_only_a_bounded_attempt_asks_to_keep_the_lock() -> None:
    """The same places tried three ways: bounded and short (keeps the lock), bounded but long
    for the text (a bound past _KEEP_LOCK_S lets it go), and unbounded (timed: lets it go)."""
    text = "The government sent troops to the border. " * 3
    starts = [4, 46, 88]
    short = _Recording(r"\bgovern\w*")
    _BOUNDED[id(short)] = (short, 10, 10)  # type: ignore[assignment]
    long = _Recording(r"\bgovern\w*")
    _BOUNDED[id(long)] = (long, 10, 10 ** 8)  # type: ignore[assignment]
    timed = _Recording(r"govern(\w+\s*)+sent")
    try:
        spans = [(4, 14), (46, 56), (88, 98)]
        assert _spans_at(short, text, starts, time.perf_counter() + 60) == spans  # type: ignore[arg-type]
        assert _spans_at(long, text, starts, time.perf_counter() + 60) == spans  # type: ignore[arg-type]
        assert len(_spans_at(timed, text, starts, time.perf_counter() + 60)) == 3  # type: ignore[arg-type]
    finally:
        del _BOUNDED[id(short)], _BOUNDED[id(long)]
    assert short.asked == [False, False, False]
    assert long.asked == [None, None, None]
    assert timed.asked == [None, None, None]
