"""Durations at the edges: a config key, a CLI flag or a slash-command option of 0, of a ten
millionth of a second or of millions of days is refused with its reason, never a traceback (a
too-long span overflowed date arithmetic; a too-short one rounded to zero and spun a loop)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from watchers.config import MAX_DURATION, format_duration, parse_config, parse_duration
from watchers.errors import ConfigError


@pytest.mark.parametrize("value, reason", [
    ("0s", "at least 1ms"), ("0.0000001s", "at least 1ms"), (-3, "at least 1ms"),
    (float("nan"), "at least 1ms"), ("99999999999d", "longer than 100 years"),
    (1e300, "longer than 100 years"), ("36501d", "longer than 100 years"),
])
def test_out_of_range_durations_are_refused_with_the_reason(value: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_duration(value)  # type: ignore[arg-type]


def test_the_edges_themselves_are_accepted() -> None:
    assert parse_duration("1ms") == timedelta(milliseconds=1)
    assert parse_duration("36500d") == MAX_DURATION


def test_a_config_with_an_absurd_interval_names_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"sources": [{"name": "s", "type": "feed", "url": "https://ex.org/f",
                                   "every": "99999999999d"}]})
    assert [str(i) for i in err.value.issues] == [
        "sources[0].every: '99999999999d' is longer than 100 years"]


@pytest.mark.parametrize(("text", "shown"), [
    ("1ms", "1ms"), ("1500ms", "1500ms"), ("0.5s", "500ms"), ("90s", "90s"), ("5m", "5m"),
    ("1h30m", "90m"), ("2d", "2d"),
])
def test_a_duration_is_shown_as_it_parses_back(text: str, shown: str) -> None:
    """`check` showed `[stories] window = "1ms"` as "window 0s": a part of a second was cut."""
    value = parse_duration(text)
    assert format_duration(value) == shown
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize(("kind", "least"), [("feed", "polled at most every 0.5 s"),
                                              ("page", "polled at most every 0.5 s"),
                                              ("folder", "read at most every 0.1 s")])
def test_a_source_polled_too_often_is_refused(kind: str, least: str) -> None:
    """``every = "5ms"`` (a slip for "5m") passed check, and run asked the publisher 150
    times a second; a folder at "1ms" kept a core busy looking at five files."""
    def config(every: str) -> object:
        url = {"url": "https://example.org/feed"} if kind != "folder" else {"path": "."}
        return parse_config({"sources": [{"name": "s", "type": kind, "every": every, **url}]})

    with pytest.raises(ConfigError) as err:
        config("5ms")
    assert [str(i) for i in err.value.issues] == [
        f"sources[0].every: a {kind} is {least}, not every 0.005 s (did you mean minutes: "
        "'m'?)"]
    config("0.5s")
    config("5m")
    if kind == "folder":
        config("0.1s")


@pytest.mark.parametrize(("value", "reason"), [
    ("1h1h", "each unit once, the largest first"), ("30m1h", "each unit once, the largest first"),
    ("5s5s", "each unit once"), ("5M", "'M' is no unit here"), ("1M30s", "'M' is no unit here"),
])
def test_a_slip_in_a_duration_is_refused_not_added_up(value: str, reason: str) -> None:
    """"1h1h" was two hours, "30m1h" ninety minutes and "5M" (months, to some) five minutes."""
    with pytest.raises(ValueError, match=reason):
        parse_duration(value)


@pytest.mark.parametrize(("value", "seconds"), [
    ("1w2d", 9 * 86400), ("1d12h30m", 131400), ("5H", 18000), ("250MS", 0.25), ("1m30s", 90),
])
def test_units_largest_first_and_in_either_case_still_add_up(value: str, seconds: float) -> None:
    assert parse_duration(value) == timedelta(seconds=seconds)
