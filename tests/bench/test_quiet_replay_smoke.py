"""The quiet-channels replay (``bench/quiet_replay.py``) on a small corpus written here: the
three runs go through the real engine, DeliveryService, DiscordSink and the emulator, the cap
bites, and the report adds up — the same stories reach Discord in every mode, the capped route
never posts more alerts in an hour than its cap, the digest route posts only digests."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from tests.bench._bench import bench_module
from tests.fakes.discord_spec import spec_available

DAY = "2022-03-01"
# Four distinct stories in ten minutes (past a cap of 2), then a story whose second outlet
# reports after the first digest; one headline no rule matches; one on another day.
HEADLINES = [
    ("h1", "Biden meets state governors on pandemic response", "2022-02-27T09:00", "h.com"),
    ("c1", "Putin orders snap military drills near Baltic coast", f"{DAY}T10:01", "c.com"),
    ("d1", "Omicron cases surge in Danish hospitals as testing expands", f"{DAY}T10:03", "d.com"),
    ("e1", "Ukrainian farmers report record wheat harvest despite drought", f"{DAY}T10:05",
     "e.com"),
    ("f1", "Vaccine maker Novavax wins approval from European regulators", f"{DAY}T10:07",
     "f.com"),
    ("x1", "Biden signs sweeping infrastructure bill at White House ceremony", f"{DAY}T10:10",
     "a.com"),
    ("g1", "Local bakery wins national bread award", f"{DAY}T10:30", "g.com"),
    ("x2", "Biden signs sweeping infrastructure bill in White House ceremony", f"{DAY}T11:20",
     "b.com"),
]


def _corpus(tmp_path: Path) -> Path:
    path = tmp_path / "headlines.jsonl"
    path.write_text("".join(
        json.dumps({"id": i, "title": t, "text": "", "date": f"{d}:00+00:00",
                    "url": f"https://{dom}/{i}", "domain": dom}) + "\n"
        for i, t, d, dom in HEADLINES), encoding="utf-8")
    return path


def test_three_modes_reach_discord_with_the_same_stories(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mod = bench_module("quiet_replay")
    assert mod.main(["--corpus", str(_corpus(tmp_path)), "--cap", "2", "--json"]) == 0
    out = capsys.readouterr().out
    runs = {r["mode"]: r for r in map(json.loads, out.splitlines()[:3])}
    assert f"busiest day of the Reddit headlines 2021-22 is {DAY} (7 headlines)" in out
    assert "identical: yes" in out and "synthetic burst" not in out
    now, cap, digest = runs["immediate"], runs["cap"], runs["digest"]
    for run in runs.values():
        assert run["articles"] == 7 and run["mismatch"] == []
        assert run["stories"] == run["fired_stories"] == now["fired_stories"] > 0
        if spec_available():
            assert run["spec_problems"] == 0, run["first_problems"]
    # Immediate: one message per story, the second outlet an edit; the cap is exceeded.
    assert now["posts"] == now["alert_posts"] == now["fired_stories"]
    assert now["patches"] == now["fired"] - now["fired_stories"] > 0
    assert now["busiest_hour"] > 2 and now["hours_over_cap"] == 1
    # Capped: never more than 2 alerts in an hour; the rest came in one digest.
    assert cap["busiest_hour"] == 2 and cap["hours_over_cap"] == 0
    assert cap["digested"].get("cap", 0) >= now["busiest_hour"] - 2
    assert cap["digest_posts"] == cap["digest_rows"] == 1
    assert cap["posts"] == cap["alert_posts"] + cap["digest_posts"] < now["posts"]
    # Digest: nothing but digests, one per hour that had alerts.
    assert digest["alert_posts"] == 0 and digest["patches"] == 0
    assert digest["posts"] == digest["digest_posts"] == digest["digest_rows"] >= 1
    assert sum(digest["digested"].values()) == digest["fired"]


def test_the_busiest_day_and_a_burst(tmp_path: Path) -> None:
    mod = bench_module("quiet_replay")
    records = mod.load(_corpus(tmp_path), None)
    day, on_day = mod.busiest_day(records)
    assert day == date(2022, 3, 1) and len(on_day) == 7
    # A tie goes to the earlier day.
    tie = [*records[:1], *records[1:2]]
    assert mod.busiest_day(tie)[0] == date(2022, 2, 27)
    # A burst takes headlines of other days that mention a rule's words, into one hour.
    (extra,) = mod.burst(records, day, 1)
    assert extra.id == "burst-h1" and extra.title == records[0].title
    assert extra.when.date() == day and extra.when.hour == 10
    with pytest.raises(mod.QuietError, match="only 1 other days"):
        mod.burst(records, day, 2)


def test_a_difference_between_modes_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    mod = bench_module("quiet_replay")
    runs = [mod.Run(m, m, stories={"s1", "s2"}) for m in mod.MODES]
    assert mod.show(runs, date(2022, 3, 1), 2, 0, 5, "")
    runs[2].stories = {"s1"}
    assert not mod.show(runs, date(2022, 3, 1), 2, 0, 5, "")
    out = capsys.readouterr().out
    assert "identical: no" in out and "missing 1 ['s2']" in out
    runs[2].stories = {"s1", "s2"}
    runs[1].mismatch = ("s2 went into digest 7, which posted nothing",)
    assert not mod.show(runs, date(2022, 3, 1), 2, 0, 5, "")
    assert "which posted nothing" in capsys.readouterr().out


def test_bad_arguments_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mod = bench_module("quiet_replay")
    with pytest.raises(SystemExit, match="no corpus at"):
        mod.main(["--corpus", str(tmp_path / "absent.jsonl")])
    with pytest.raises(SystemExit):
        mod.main(["--cap", "0"])
    assert "--cap must be 1 to 10000" in capsys.readouterr().err
