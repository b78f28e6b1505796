"""``newswatch check`` on configuration files that use this session's keys the wrong way: every
problem is named by its key path in one run (exit status 2), and the database beside the file is
left as it was (check never opens it)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.cli.test_cli import nw

# Each key path with what its message must say; all of them are wrong in one file.
EXPECTED = {
    "channels.nosched": "a digest route needs digest_every",
    "channels.clock.digest_at": "digest time '25:00' is not a time of day",
    "channels.mars.timezone": "unknown time zone 'Mars/Base'",
    "channels.region.timezone": "unknown time zone 'Europe'",  # a folder of zones: was exit 1
    # check passed it, and every other command then ended in a traceback
    "aliases.nyc[0]": "an alias must be a single word, not 'new york'",
    # and a key the same way: check passed it, and run, search and import ended in a traceback
    "aliases.new york": "an alias must be a single word, not 'new york'",
    "channels.still.quiet_hours": "start and end at the same time",
    # were ignored without a word: the route sent its alerts at once, or kept everything
    "channels.briefing": "digest_every and digest_at are used only with mode = 'digest'",
    "channels.none.max_per_hour": "greater than or equal to 1",
    "channels.flood.max_per_hour": "less than or equal to 10000",
    # true was taken for a cap of 1
    "channels.boolean.max_per_hour": "expected a whole number, got true",
    "channels.typo.template": "unknown placeholder {titel}",
    "channels.novel.template": "the template is 10007 characters long; at most 1500",
    "surge.sigma": "greater than 0",
    "rules[0].min_sources": "greater than or equal to 1",
    "rules[1].min_sources": "less than or equal to 50",
    "rules[2].guild_id": "set by newswatch itself, not in a file",
}

BAD = """
[storage]
path = "nw.db"
[channels.nosched]
target = 1
mode = "digest"
[channels.clock]
target = 2
mode = "digest"
digest_at = ["25:00"]
[channels.briefing]
target = 35
digest_at = ["08:00"]
timezone = "Europe/Kyiv"
[channels.mars]
target = 3
timezone = "Mars/Base"
[channels.region]
target = 33
timezone = "Europe"
[channels.still]
target = 4
quiet_hours = "22:00-22:00"
[channels.none]
target = 5
max_per_hour = 0
[channels.boolean]
target = 34
max_per_hour = true
[channels.flood]
target = 6
max_per_hour = 1_000_000_000_000
[channels.typo]
target = 7
template = "{titel}"
[channels.novel]
target = 8
template = "{title}NOVEL"
[aliases]
nyc = ["new york"]
"new york" = ["gotham"]
[stories]
window = "WINDOW"
[surge]
sigma = -1
[[rules]]
name = "zero"
query = "troops"
min_sources = 0
[[rules]]
name = "crowd"
query = "troops"
min_sources = 1000
[[rules]]
name = "owned"
query = "troops"
guild_id = 42
"""


def articles(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT count(*) FROM articles").fetchone()[0])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a valid config and a database of one article, shared by the checks."""
    folder = tmp_path_factory.mktemp("store")
    good = '[storage]\npath = "nw.db"\n[[rules]]\nname = "troops"\nquery = "troops"\n'
    (folder / "config.toml").write_text(good)
    (folder / "one.jsonl").write_text(
        '{"id": "a1", "title": "Troops", "date": "2022-01-05T10:00:00Z"}\n')
    res = nw("import", "one.jsonl", cwd=folder)
    assert res.returncode == 0, res.stderr
    return folder


@pytest.mark.parametrize(("window", "reason"), [
    ("0s", "a duration must be at least 1ms"),
    ("1e9w", "'1e9w' is not a duration"),
    ("1000000000w", "1000000000w"),
])
def test_every_wrong_key_is_named_in_one_run_and_the_store_is_untouched(
        store: Path, window: str, reason: str) -> None:
    db = store / "nw.db"
    before = (articles(db), db.stat().st_mtime_ns)
    (store / "bad.toml").write_text(
        BAD.replace("WINDOW", window).replace("NOVEL", "x" * 10_000))
    res = nw("check", "-c", "bad.toml", cwd=store)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert f"{len(EXPECTED) + 1} error(s) in the configuration" in res.stderr, res.stderr
    lines = res.stderr.splitlines()
    for key, message in {**EXPECTED, "stories.window": reason}.items():
        assert any(line.strip().startswith(f"{key}: ") and message in line for line in lines), \
            (key, res.stderr)
    assert len(res.stderr) < 4000  # the 10,000-character template is not echoed back
    assert (articles(db), db.stat().st_mtime_ns) == before == (1, before[1])


def test_a_setting_its_mode_ignores_is_said_by_check_and_at_start(store: Path) -> None:
    """A digest route with quiet hours, a break-through and a cap (the design document's own
    example) loads: its quiet hours hold its digests, and the break-through and the cap, which
    do nothing there, are named."""
    (store / "digest.toml").write_text(
        '[storage]\npath = "nw.db"\n[channels.briefing]\ntarget = 35\nmode = "digest"\n'
        'digest_at = ["08:00", "18:00"]\ntimezone = "Europe/Kyiv"\n'
        'quiet_hours = "22:00-07:00"\nbreak_through = "critical"\nmax_per_hour = 20\n'
        '[[rules]]\nname = "troops"\nquery = "troops"\nchannel = "briefing"\n')
    res = nw("check", "-c", "digest.toml", cwd=store)
    assert res.returncode == 0, res.stderr
    assert ("briefing" in res.stdout and "digest 08:00, 18:00" in res.stdout
            and "quiet 22:00-07:00" in res.stdout and "breaks through" not in res.stdout
            ), res.stdout
    for key in ("max_per_hour", "break_through"):
        assert (f"digest.toml: note: channels.briefing: {key} does nothing on a digest "
                "route") in res.stderr, res.stderr
