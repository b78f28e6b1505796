"""Regex rules tried where their leads are keep the interpreter lock while they match.

The service matches in a worker thread beside the event loop's and the database's. The regex
module lets the interpreter lock go for each call on a str and takes it back after; beside a
busy thread that wait lasts up to the switch interval (5 ms by default) per call, and a rule
is tried at each place its lead occurs, so an article with a few hundred such places took
seconds. An attempt whose steps are bounded (see ``matcher._attempt_steps``) now keeps the lock;
a timed attempt or a search still lets it go, so that a slow pattern never holds the other
threads up (``tests/engine/test_lookup_isolation.py``). Here the switch interval is one second
and a thread spins beside the matcher: a matcher that handed the lock over per call would take
a minute or more; one that keeps it is done in about the switch interval (the turn the
spinning thread takes at its start).
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
from watchers.rules.matcher import _BOUNDED, _compiled_regex, _regex_plan

# Each begins with a literal and is bounded: tried at each of its thirty leads, untimed.
QUERIES = {
    "prefix": r"/\bgovern\w*/",
    "pair": r"/(troops|soldiers)\W+to/",
    "word": r"/\bborder\b/",
}
TEXT = "The government sent troops to the border. " * 30


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
        assert id(_compiled_regex(pattern)) in _BOUNDED, f"{pattern} is not bounded"
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
