"""``newswatch trend``'s bands are the surge alert's statistic: the same ``[surge] days``, the
rule's first match, history enough for every bucket's band; counts only inside the period;
rule names in any case. History imported as a user would (``newswatch import``, in process),
at fixed dates in January 2024."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import cli
from watchers.store import open_store
from watchers.surge import is_surge

END = datetime(2024, 1, 31, tzinfo=UTC)
UNTIL = "2024-01-31T12:00"


def _line(word: str, n: int, at: datetime) -> dict[str, str]:
    return {"id": f"{word}{n}", "title": f"{word.capitalize()} report number {n}",
            "text": f"{word} item {n} of the series", "date": at.isoformat(), "source": "wire"}


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("band")
    lines = []
    # steady: 30 matches every day for 41 days, through the day
    lines += [_line("steady", d * 30 + i, END - timedelta(days=d) + timedelta(minutes=40 * i))
              for d in range(41) for i in range(30)]
    # twomonths: 40 at 09:00 on days -30 to -15 and today, none at 09:00 the fortnight between
    lines += [_line("twomonths", d * 40 + i, END - timedelta(days=d) + timedelta(hours=9,
                                                                                  minutes=i))
              for d in [0, *range(15, 31)] for i in range(40)]
    # mornings: one match 60 days ago, then 30 at 09:00 on each of the last five days and today
    lines.append(_line("mornings", 9999, END - timedelta(days=60)))
    lines += [_line("mornings", d * 30 + i, END - timedelta(days=d) + timedelta(hours=9,
                                                                                minutes=i))
              for d in range(6) for i in range(30)]
    (root / "history.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    rules = "".join(f'[[rules]]\nname = "{name}"\nquery = "{word}"\n' for name, word in (
        ("steady", "steady"), ("twomonths", "twomonths"), ("Mornings", "mornings")))
    for name, surge in (("default", ""), ("days2", "[surge]\ndays = 2\n"),
                        ("days30", "[surge]\ndays = 30\n")):
        (root / f"{name}.toml").write_text(f'{surge}[storage]\npath = "nw.db"\n{rules}')
    assert cli.main(["import", str(root / "history.jsonl"), "-c", str(root / "default.toml")]
                    ) == 0
    return root


def trend(root: Path, capsys: pytest.CaptureFixture[str], what: str, since: str,
          until: str = UNTIL, config: str = "default") -> tuple[list[list[str]], str]:
    capsys.readouterr()
    assert cli.main(["trend", what, "--since", since, "--until", until,
                     "-c", str(root / f"{config}.toml")]) == 0
    out, err = capsys.readouterr()
    return [row.split() for row in out.splitlines()[2:]], err


def test_a_steady_rule_shows_no_surge_whatever_the_surge_days(
        history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Only ``[surge] days`` days before the period were read, and each day's band looks back
    14: the days never read counted as none, and a rule matching 30 times every day "surged"
    on the chart's first days (2.1 ± 7.7)."""
    for config in ("default", "days2"):
        rows, err = trend(history, capsys, "steady", "7d", config=config)
        assert rows and all(len(r) == 5 for r in rows)  # day, count, mean, ±, std: no SURGE
        # each whole day: 30, and its band the 30 of each of the days before
        assert [(r[1], r[2], r[4]) for r in rows[1:-1]] == [("30", "30.0", "0.0")] * (
            len(rows) - 2), rows
        assert "no surges" in err


def test_the_chart_uses_the_surge_days_the_alerts_use(
        history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With ``[surge] days = 30`` the alert's statistic sees the 09:00 of the month before
    and finds today's 40 usual; the chart counted 14 days and marked it a surge."""
    rows, _ = trend(history, capsys, "twomonths", "1d", config="days30")
    (nine,) = [r for r in rows if r[1] == "09:00"]
    assert nine[2] == "40" and nine[-1] != "SURGE", nine

    async def alert_says() -> bool:
        now = END + timedelta(hours=10)
        async with await open_store(str(history / "nw.db"), readonly=True) as store:
            times = (await store.match_times(["twomonths"], now - timedelta(days=31)))[
                "twomonths"]
            first = await store.first_match("twomonths")
        return is_surge(times, now, days=30, first=first)[0]

    assert asyncio.run(alert_says()) is False  # the two agree
    rows, _ = trend(history, capsys, "twomonths", "1d")  # 14 days: a fortnight of none
    (nine,) = [r for r in rows if r[1] == "09:00"]
    assert nine[-1] == "SURGE", nine


def test_the_band_knows_the_rules_first_match_and_its_name_in_any_case(
        history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A rule first matched two months ago and busy at 09:00 each of the last days: the
    chart took its first match as the first it had read, fell back to the rolling 24 hours
    and marked every 09:00 a surge. And "trend mornings" charted the word for the rule
    Mornings."""
    rows, err = trend(history, capsys, "mornings", "3d")
    nines = [r for r in rows if r[1] == "09:00"]
    assert len(nines) == 3 and all(r[2] == "30" and r[-1] != "SURGE" for r in nines), nines
    assert "no surges" in err
    capsys.readouterr()
    assert cli.main(["trend", "mornings", "--since", "3d", "--until", UNTIL,
                     "-c", str(history / "default.toml")]) == 0
    assert capsys.readouterr().out.startswith("rule Mornings: matches per hour")


def test_only_the_matches_inside_the_period_are_counted(
        history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The buckets ran whole from the period's floored start and past ``--until``: an hour
    to 09:00:01 counted the 29 matches of 09:01-09:29, and four days to 00:00:01 the whole
    of the last day."""
    rows, err = trend(history, capsys, "mornings", "1h", until="2024-01-31T09:00:01")
    assert sum(int(r[2]) for r in rows) == 1 and "newswatch: 1 match ·" in err, (rows, err)
    rows, err = trend(history, capsys, "mornings", "4d", until="2024-01-31T00:00:01")
    assert sum(int(r[1]) for r in rows) == 120, rows  # 27 to 30 January's 09:00
    assert "newswatch: 120 matches ·" in err, err
