"""``newswatch trend`` of a query gives the bands and surges of a rule with the same matches: the
query's history before the period's lookback counts as the rule's first match does. History
imported as a user would (``newswatch import``, in process), at fixed dates in January 2022."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import cli

TODAY = datetime(2022, 1, 20, tzinfo=UTC)
UNTIL = "2022-01-20T12:00"


def _line(word: str, n: int, at: datetime) -> dict[str, str]:
    return {"id": f"{word}-{n}", "title": f"{word.capitalize()} report {n}",
            "text": f"{word} item {n} of the series", "date": at.isoformat(), "source": "wire"}


def _mornings(word: str) -> list[dict[str, str]]:
    """5 matches at 11:00 on each of the 3 days before TODAY, and 6 in TODAY's 11:00 hour."""
    eleven = [TODAY - timedelta(days=d) + timedelta(hours=11, minutes=5 * i)
              for d in (1, 2, 3) for i in range(5)]
    eleven += [TODAY + timedelta(hours=11, minutes=5 * i) for i in range(6)]
    return [_line(word, n, at) for n, at in enumerate(eleven)]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("query-history")
    # troops: one match 30 days back, long before the 15 days a trend reads; fresh: none
    lines = [_line("troops", 99, TODAY - timedelta(days=30) + timedelta(hours=11))]
    lines += _mornings("troops") + _mornings("fresh")
    (root / "history.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (root / "nw.toml").write_text(
        '[surge]\nmin_count = 3\n[storage]\npath = "nw.db"\n'
        '[[rules]]\nname = "troops"\nquery = "troops"\n'
        '[[rules]]\nname = "fresh"\nquery = "fresh"\n')
    assert cli.main(["import", str(root / "history.jsonl"), "-c", str(root / "nw.toml")]) == 0
    return root


def trend(root: Path, capsys: pytest.CaptureFixture[str], what: str, since: str = "24h"
          ) -> list[list[str]]:
    """The rows after the heading, each split: date, time, count, mean, ±, std[, SURGE]."""
    capsys.readouterr()
    assert cli.main(["trend", what, "--since", since, "--until", UNTIL,
                     "-c", str(root / "nw.toml")]) == 0
    return [row.split() for row in capsys.readouterr().out.splitlines()[2:]]


def test_a_query_with_a_long_history_has_the_rules_band_and_surges(
        history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The query was read from 15 days back only, and its first match there (three days ago)
    taken for its first ever: judged young, it got the rolling 24 hours, 0.2 ± 1.0 at 11:00,
    and a SURGE the rule "troops" (1.1 ± 2.1, the same hour over 14 days) did not chart. Now
    the two charts are the same, row for row."""
    rule = trend(history, capsys, "troops")
    (eleven,) = [r for r in rule if r[1] == "11:00"]
    assert eleven[2:] == ["6", "1.1", "±", "2.1"], eleven  # no SURGE
    query = trend(history, capsys, "troops OR troops")
    assert query == rule


def test_a_young_query_keeps_the_rolling_band_of_its_rule(
        history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A query first matched three days ago is young for both: the rolling 24 hours, and the
    same SURGE at 11:00 (the fix must not take every query for an old one)."""
    rule = trend(history, capsys, "fresh")
    (eleven,) = [r for r in rule if r[1] == "11:00"]
    assert eleven[2:] == ["6", "0.2", "±", "1.0", "SURGE"], eleven
    assert trend(history, capsys, "fresh OR fresh") == rule


def test_day_buckets_agree_too(history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Per day, the band is the rolling 14 days before each day for a rule and a query alike."""
    for word in ("troops", "fresh"):
        rows = trend(history, capsys, word, "7d")
        assert rows and trend(history, capsys, f"{word} OR {word}", "7d") == rows
