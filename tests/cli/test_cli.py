"""The newswatch command as a user runs it: a subprocess, real files, a real database."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, SEEDS

EXE = [sys.executable, "-m", "bot"]


def nw(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
       ) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    full_env.update(env or {})
    return subprocess.run([*EXE, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    (tmp_path / "config.toml").write_text("""
[storage]
path = "nw.db"
[[sources]]
name = "seeds"
type = "folder"
path = "seeds"
every = "1s"
[[rules]]
name = "troops"
query = "troops OR soldiers"
[[rules]]
name = "donbas"
query = "donbas~"
""")
    return tmp_path


def test_run_once_twice_alerts_only_the_first_time(workdir: Path) -> None:
    first = nw("run", "--once", cwd=workdir)
    assert first.returncode == 0, first.stderr
    assert "no Discord token in $DISCORD_TOKEN" in first.stderr
    assert first.stdout.count("▶ ") == 4  # 001 mentions neither troops nor soldiers
    assert "[Donbass]" in first.stdout and "· id " in first.stdout
    second = nw("run", "--once", cwd=workdir)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("▶ ") == 0
    assert "already holds 5 article(s)" in second.stderr


def test_run_keeps_watching_and_stops_cleanly_on_ctrl_c(workdir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    proc = subprocess.Popen([*EXE, "run"], cwd=workdir, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 20
        db = workdir / "nw.db"
        while time.monotonic() < deadline and not db.exists():
            time.sleep(0.1)
        time.sleep(1.5)
        (workdir / "seeds" / "late.txt").write_text("Late news\nMore troops arrived today.")
        time.sleep(3)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "Late news" in out
    assert out.count("▶ ") == 5


def test_check_summary_and_errors(workdir: Path) -> None:
    ok = nw("check", "-c", "config.toml", cwd=workdir)
    assert ok.returncode == 0 and "sources  1" in ok.stdout and "rules    2" in ok.stdout
    (workdir / "bad.toml").write_text("""
[storage]
paht = "x"
[[sources]]
name = "x"
type = "telegraph"
[[rules]]
name = "a"
query = "troops"
[[rules]]
name = "b"
query = "(kyiv OR"
""")
    bad = nw("check", "-c", "bad.toml", cwd=workdir)
    assert bad.returncode == 2
    assert "storage.paht: unknown key" in bad.stderr
    assert "sources[0]" in bad.stderr and "telegraph" in bad.stderr


def test_check_shows_when_each_route_speaks_and_routes_no_rule_uses(workdir: Path) -> None:
    """The summary named a route's destination only: its quiet hours, cap and digest times were
    not shown, and a [channels] entry no rule sends to was not listed."""
    (workdir / "q.toml").write_text(
        '[channels.alerts]\ntarget = 123\nquiet_hours = "22:00-07:00"\n'
        'timezone = "Europe/Kyiv"\nmax_per_hour = 20\n'
        '[channels.briefing]\ntarget = 456\nmode = "digest"\ndigest_every = "6h"\n'
        'max_per_hour = 20\n'
        '[channels.both]\ntarget = 789\nmode = "digest"\ndigest_every = "1h"\n'
        'digest_at = ["08:00"]\n'
        '[[rules]]\nname = "troops"\nquery = "troops"\nchannel = "alerts"\n')
    res = nw("check", "-c", "q.toml", cwd=workdir)
    assert res.returncode == 0, res.stderr
    assert ("alerts           channel 123; stories: edit; quiet 22:00-07:00, critical breaks "
            "through; at most 20 an hour; Europe/Kyiv") in res.stdout
    assert "briefing         channel 456; stories: edit; digest every 6h; no rule uses it" \
        in res.stdout
    # both: it posts at 08:00 and every hour ("digest 08:00" hid the hourly digests)
    assert "both             channel 789; stories: edit; digest 08:00, every 1h; no rule" \
        in res.stdout, res.stdout


def test_check_shows_the_outlets_corroboration_counts(workdir: Path) -> None:
    """A rule waiting for two outlets on a config whose feeds are all one publisher's waits
    for ever: check says which sources are one outlet, where min_sources matters."""
    feed = '[[sources]]\nname = "{}"\ntype = "feed"\nurl = "{}"\n{}'
    sources = "".join((
        feed.format("bbc-world", "https://feeds.bbci.co.uk/news/world/rss.xml", ""),
        feed.format("bbc-europe", "https://feeds.bbci.co.uk/news/world/europe/rss.xml", ""),
        feed.format("bbc-com", "https://www.bbc.com/news/rss.xml", 'outlet = "bbci.co.uk"\n'),
        feed.format("dw", "https://rss.dw.com/rdf/rss-en-world", "")))
    (workdir / "o.toml").write_text(
        sources + '[[rules]]\nname = "troops"\nquery = "troops"\nmin_sources = 2\n')
    res = nw("check", "-c", "o.toml", cwd=workdir)
    assert res.returncode == 0, res.stderr
    assert "  outlets  2 (what min_sources counts)\n" in res.stdout
    assert "    bbci.co.uk       bbc-world, bbc-europe, bbc-com\n" in res.stdout
    # Without a rule that waits, the outlets are not the summary's business.
    (workdir / "p.toml").write_text(sources + '[[rules]]\nname = "troops"\nquery = "troops"\n')
    plain = nw("check", "-c", "p.toml", cwd=workdir)
    assert plain.returncode == 0 and "  outlets  " not in plain.stdout, plain.stdout


def test_check_lists_the_outlets_without_the_feeds_credentials(workdir: Path) -> None:
    """Two feeds of one address (a local bridge) are one outlet named by the feed's address,
    path and query: the query's access key is shown redacted there, as in the sources' lines
    (the summary is pasted in reports)."""
    feed = '[[sources]]\nname = "{}"\ntype = "feed"\nurl = "{}"\n'
    (workdir / "o.toml").write_text(
        '[fetch]\nallow_private = ["127.0.0.0/8"]\n'
        + feed.format("wire", "http://127.0.0.1:1200/reuters?key=s3cr3t-access-key")
        + feed.format("wire-tls", "https://127.0.0.1:1200/reuters?key=s3cr3t-access-key")
        + '[[rules]]\nname = "troops"\nquery = "troops"\nmin_sources = 2\n')
    res = nw("check", "-c", "o.toml", cwd=workdir)
    assert res.returncode == 0, res.stderr
    assert "s3cr3t-access-key" not in res.stdout + res.stderr
    assert "    127.0.0.1:1200/reuters?key=[redacted] wire, wire-tls\n" in res.stdout


def test_check_shows_control_characters_in_the_file_as_escapes(workdir: Path) -> None:
    """Paths and names come from the file: an escape sequence in one drove the terminal (a
    window title, a colour) and a line break split a line of the summary."""
    (workdir / "ar\x1b[31mts").mkdir()
    (workdir / "esc.toml").write_text(
        '[storage]\npath = "x\\u001b]0;pwned\\u0007z.db"\n'
        '[[sources]]\nname = "f"\ntype = "folder"\npath = "ar\\u001b[31mts"\n'
        '[[rules]]\nname = "a"\nquery = "\\"troops\\u000aborder\\""\n')
    res = nw("check", "-c", "esc.toml", cwd=workdir)
    assert res.returncode == 0, res.stderr
    assert not any(c in res.stdout for c in "\x1b\x07"), res.stdout
    assert "x\\x1b]0;pwned\\x07z.db (new: run creates it)" in res.stdout
    assert res.stdout.rstrip().endswith("window 2d")
    lines = res.stdout.splitlines()
    assert any(line.endswith("ar\\x1b[31mts") for line in lines), res.stdout
    assert any(line.endswith('"troops\\nborder"') for line in lines), res.stdout


def test_check_reports_query_errors_with_key_path_and_column(workdir: Path) -> None:
    (workdir / "q.toml").write_text('[[rules]]\nname="a"\nquery="x"\n[[rules]]\nname="a"\n'
                                    'query="x"\n[[rules]]\nname="c"\nquery="sanctions AND"\n')
    res = nw("check", "-c", "q.toml", cwd=workdir)
    assert res.returncode == 2
    assert "rules[1].name: duplicate rule name 'a'" in res.stderr
    assert "rules[2].query: expected a term after AND at column 14" in res.stderr


def test_match_json_fields_and_donbass(workdir: Path) -> None:
    res = nw("match", "donbas~", "seeds", "--json", cwd=workdir)
    assert res.returncode == 0, res.stderr
    docs = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(docs) == 3
    for d in docs:
        assert set(d) == {"path", "title", "score", "highlights"}
        text = Path(workdir / d["path"]).read_text(encoding="utf-8")
        assert d["highlights"] and all(
            set(h) == {"field", "start", "end", "text"} for h in d["highlights"])
        assert any(h["text"] == "Donbass" for h in d["highlights"]) or "Donbass" not in text


@pytest.mark.parametrize("encoding", ["", "utf-8"])
def test_match_json_escapes_a_file_name_that_is_not_utf8(tmp_path: Path, encoding: str) -> None:
    """The name's raw bytes were written into the JSON line (not UTF-8, so no JSON reader
    took it), or, with PYTHONIOENCODING=utf-8, printing failed and the files after it were
    never shown."""
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / os.fsdecode(b"bad-\xff\xfe.txt")).write_text("Troops near the border\nTroops.")
    (folder / "zz-good.txt").write_text("Troops again\nTroops moved.")
    env = {"PYTHONIOENCODING": encoding} if encoding else {}
    res = subprocess.run([*EXE, "match", "troops", "drop", "--json"], cwd=tmp_path,
                         capture_output=True, env={**os.environ, **env}, timeout=60)
    assert res.returncode == 0, res.stderr
    paths = [json.loads(line.decode("utf-8"))["path"] for line in res.stdout.splitlines()]
    assert paths == ["drop/bad-\\xff\\xfe.txt", "drop/zz-good.txt"]


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_json_lines_read_as_json_whatever_the_terminal_encodes(
        tmp_path: Path, encoding: str) -> None:
    """Under an ASCII or Latin-1 standard output, `--json` wrote what it could not encode as
    Python's escapes (\\xe9, \\U0001f600), which no JSON reader takes: match, search and
    stories. JSON's own escapes now, the same characters read back."""
    title = "Café 😀 troops"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "c.txt").write_text(f"{title}\n\nTroops at the café.", encoding="utf-8")
    (tmp_path / "a.jsonl").write_text(json.dumps(
        {"id": "x1é😀", "title": title, "text": "", "url": "https://x.example/1",
         "date": "2022-02-01T10:00:00Z", "source": "s"}) + "\n", encoding="utf-8")
    (tmp_path / "nw.toml").write_text('[storage]\npath = "nw.db"\n')
    env = {**os.environ, "PYTHONIOENCODING": encoding}
    assert subprocess.run([*EXE, "import", "a.jsonl", "-c", "nw.toml"], cwd=tmp_path, env=env,
                          capture_output=True, timeout=60).returncode == 0
    for args, field, value in [
            (["match", "troops", "in", "--json"], "title", title),
            (["search", "troops", "-c", "nw.toml", "--json"], "title", title),
            (["stories", "a.jsonl", "--json"], "ids", ["x1é😀"])]:
        res = subprocess.run([*EXE, *args], cwd=tmp_path, capture_output=True, env=env,
                             timeout=60)
        assert res.returncode == 0, res.stderr
        (line,) = res.stdout.splitlines()
        assert json.loads(line.decode("ascii"))[field] == value, (args, line)


def test_json_lines_are_one_line_each_whatever_separators_a_title_holds(
        tmp_path: Path) -> None:
    """A title or an id holding U+2028, U+2029 or U+0085 (which JSON leaves as they are) was
    written raw under a UTF-8 output: Python's splitlines (and JavaScript) read two lines of
    one object, and a script's json.loads failed. Escaped now: one line an object."""
    title = "Breaking\u2028news\x85from\u2029Kyiv troops"
    (tmp_path / "a.jsonl").write_text(json.dumps(
        {"id": "x1\u2028", "title": title, "text": "", "url": "https://x.example/1",
         "date": "2022-02-01T10:00:00Z", "source": "s"}) + "\n", encoding="utf-8")
    (tmp_path / "nw.toml").write_text('[storage]\npath = "nw.db"\n')
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    assert subprocess.run([*EXE, "import", "a.jsonl", "-c", "nw.toml"], cwd=tmp_path, env=env,
                          capture_output=True, timeout=60).returncode == 0
    for args, field, value in [
            (["search", "troops", "-c", "nw.toml", "--json"], "title", title),
            (["stories", "a.jsonl", "--json"], "ids", ["x1\u2028"])]:
        res = subprocess.run([*EXE, *args], cwd=tmp_path, capture_output=True, env=env,
                             timeout=60)
        assert res.returncode == 0, res.stderr
        (line,) = res.stdout.decode("utf-8").splitlines()
        assert json.loads(line)[field] == value, (args, line)


def test_match_explain_and_bad_query(workdir: Path) -> None:
    res = nw("match", "kyiv~", "--explain", cwd=workdir)
    assert res.returncode == 0 and "Kiev" in res.stdout and "alias" in res.stdout.lower()
    bad = nw("match", "(kyiv OR", cwd=workdir)
    assert bad.returncode == 2 and "column" in bad.stderr and "^" in bad.stderr
    # the query echoed under the error: an escape sequence (here one setting the terminal's
    # title) or a direction override acted on the terminal as it was printed
    for query in ('troops "\x1b]0;pwned\x07', "\u202etroops"):
        bad = nw("match", query, cwd=workdir)
        echo, caret = bad.stderr.splitlines()[-2:]
        assert bad.returncode == 2 and "\x1b" not in echo and "\u202e" not in echo
        assert "\x07" not in bad.stderr and "\x1b" not in bad.stderr
        assert echo[caret.index("^")] == ('"' if "pwned" in query else "\ufffd")
    missing = nw("match", "kyiv", "nope/", cwd=workdir)
    assert missing.returncode == 1 and "nope/: no such file or folder" in missing.stderr
    device = nw("match", "kyiv", os.devnull, cwd=workdir)  # there, but not a document
    assert device.returncode == 1 and f"{os.devnull}: not a regular file" in device.stderr


def test_match_with_a_config_tries_the_query_as_run_does(tmp_path: Path) -> None:
    """match disagreed with run and search on the same documents: it named a document's
    source after its folder's path (source:desk found nothing that run alerted on) and knew
    nothing of the config's [aliases] and threshold. With -c it reads them as run does."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "k.txt").write_text("Kiew heute\n\nDie Lage in Kiew, troops.")
    (tmp_path / "in" / "p.txt").write_text("w Kijowie\n\nspotkanie w Kijowie, troops.")
    (tmp_path / "nw.toml").write_text(
        'threshold = 96\n[aliases]\nkyiv = ["kiew"]\n[storage]\npath = "nw.db"\n'
        '[[sources]]\nname = "desk"\ntype = "folder"\npath = "in"\n'
        '[[rules]]\nname = "a"\nquery = "troops"\n')

    def found(*args: str) -> list[str]:
        res = nw("match", *args, "--json", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        return sorted(Path(json.loads(line)["path"]).name for line in res.stdout.splitlines())

    assert found("source:desk AND troops", "in", "-c", "nw.toml") == ["k.txt", "p.txt"]
    assert found("source:desk AND troops", "in") == []  # without: the folder's own path
    assert found("kyiv", "in", "-c", "nw.toml") == ["k.txt"]  # the config's alias
    assert found("kyiv", "in") == []
    assert found("kyiv~", "in", "-c", "nw.toml") == ["k.txt"]  # Kijowie is 95, under 96
    assert found("kyiv~", "in", "-c", "nw.toml", "--threshold", "90") == ["k.txt", "p.txt"]


@pytest.mark.parametrize(("query", "cells_before"), [
    ("中国外交部 AND (", 16),        # five wide characters: two cells each
    ("cafe\u0301 AND (", 10),      # a combining accent: no cell of its own
    ("troops AND (", 12),
])
def test_the_caret_stands_under_the_column_as_the_terminal_shows_it(
        query: str, cells_before: int, capsys: pytest.CaptureFixture[str]) -> None:
    """A query error's caret was put as many cells in as characters came before the column,
    so after wide or combining characters it stood under another part of the query."""
    from bot import cli

    assert cli.main(["match", query, str(REPO / "seeds")]) == 2
    echo, caret = capsys.readouterr().err.splitlines()[-2:]
    assert echo == f"  {query}"
    assert caret == " " * (2 + cells_before) + "^"


def test_match_says_when_a_regex_ran_out_of_time(workdir: Path) -> None:
    """It said "0 matching document(s)" and nothing else: the document's regex had been cut
    short and counted as not matching."""
    (workdir / "slow.txt").write_text("Slow\n\nb" + "a" * 30 + "\n", encoding="utf-8")
    res = nw("match", "/(a|aa)*c|b/", "slow.txt", cwd=workdir)
    assert res.returncode == 0
    assert ("slow.txt: a regex or phrase ran out of time (0.1 s) and counted as not matching"
            in res.stderr)
    assert "0 matching document(s)" in res.stderr
    # a phrase of every window (slop and prefixes) over a long file: ten seconds before
    (workdir / "long.txt").write_text("Long\n\n" + ("ta sa " * 170_000))
    phrase = nw("match", '"t* s*"~99', "long.txt", cwd=workdir, timeout=60)
    assert "long.txt: a regex or phrase ran out of time (0.1 s)" in phrase.stderr, phrase.stderr
    assert "0 matching document(s)" in phrase.stderr
    quick = nw("match", "/b/", "slow.txt", cwd=workdir)
    assert "ran out of time" not in quick.stderr and "1 matching document(s)" in quick.stderr


def test_run_once_ends_with_what_its_round_left_undone(workdir: Path) -> None:
    """It ended without a word, exit 0, when every alert failed to go and a feed was down: a
    cron job saw nothing. The status stays 0; one closing line on stderr says what is left."""
    config = (workdir / "config.toml").read_text()
    (workdir / "config.toml").write_text(
        config.replace('[[sources]]', '[discord]\napi_base = "http://127.0.0.1:9/api/v10"\n'
                       '[fetch]\nallow_private = ["127.0.0.1/32"]\n[channels]\n'
                       'alerts = "env:NW_TEST_HOOK"\n[[sources]]\nname = "down"\n'
                       'type = "feed"\nurl = "http://127.0.0.1:9/rss.xml"\n[[sources]]', 1))
    hook = "https://discord.com/api/webhooks/222222222222222222/tok"
    res = nw("run", "--once", cwd=workdir, env={"NW_TEST_HOOK": hook})
    assert res.returncode == 0, res.stderr
    assert re.search(r"newswatch: round done; 4 alert\(s\) not delivered yet \(a send failed; "
                     r"the next try is due at \d\d:\d\d:\d\d UTC\); they go at the next run; "
                     r"1 source\(s\) failed: down \(see above\)\n", res.stderr), res.stderr
    assert hook not in res.stderr + res.stdout
    # a round where everything went says nothing more (a new store: the alerts left above
    # wait out their backoff)
    (workdir / "config.toml").write_text(config.replace('"nw.db"', '"clean.db"'))
    clean = nw("run", "--once", cwd=workdir)
    assert clean.returncode == 0 and "round done" not in clean.stderr, clean.stderr


def test_alerts_of_a_webhook_route_taken_out_of_the_config_wait_not_print(
        workdir: Path) -> None:
    """The terminal took every route without a sink: alerts kept for a webhook route since
    taken out of the file were printed there and marked delivered, never reaching the
    webhook. They wait, as a Discord run leaves them, until the route is back."""
    config = (workdir / "config.toml").read_text()
    (workdir / "config.toml").write_text(
        config.replace('[[sources]]', '[discord]\napi_base = "http://127.0.0.1:9/api/v10"\n'
                       '[channels]\nother = "env:NW_TEST_HOOK"\n[[sources]]', 1)
        .replace('query = "troops OR soldiers"', 'query = "troops OR soldiers"\n'
                 'channel = "other"')
        .replace('query = "donbas~"', 'query = "donbas~"\nchannel = "other"'))
    hook = "https://discord.com/api/webhooks/222222222222222222/tok"
    first = nw("run", "--once", cwd=workdir, env={"NW_TEST_HOOK": hook})
    assert first.returncode == 0, first.stderr
    with sqlite3.connect(workdir / "nw.db") as conn:
        kept = conn.execute("SELECT count(*) FROM outbox WHERE route = 'other' AND "
                            "state <> 'delivered'").fetchone()[0]
    assert kept >= 1
    (workdir / "config.toml").write_text(config)  # the route and its rule's channel gone
    second = nw("run", "--once", "--console", cwd=workdir)
    assert second.returncode == 0, second.stderr
    with sqlite3.connect(workdir / "nw.db") as conn:
        still = conn.execute("SELECT count(*) FROM outbox WHERE route = 'other' AND "
                             "state <> 'delivered'").fetchone()[0]
    assert still == kept, second.stdout


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_run_once_right_after_a_failed_send_sends_what_is_due_soon(workdir: Path) -> None:
    """A run whose alerts could not be printed (a full disk) leaves them to a retry a second or
    two later; run --once started right then found nothing due, sent nothing, and said "not
    delivered yet (see above)" with nothing above. A retry due that soon is waited for."""
    with open("/dev/full", "w") as full:
        failed = subprocess.run([*EXE, "run", "--once"], cwd=workdir, stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=60)
    assert failed.returncode == 1, failed.stderr
    assert re.search(r"4 alert\(s\) not delivered yet \(a send failed; the next try is due "
                     r"at \d\d:\d\d:\d\d UTC\)", failed.stderr), failed.stderr
    again = nw("run", "--once", cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("▶ ") == 4 and "round done" not in again.stderr, again.stderr


def test_search_after_run(workdir: Path) -> None:
    assert nw("run", "--once", cwd=workdir).returncode == 0
    res = nw("search", "troops NEAR/5 ukraine", "--json", "--limit", "10", cwd=workdir)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert rows and all({"id", "title", "score", "highlights"} <= set(r) for r in rows)
    none = nw("search", "football", cwd=workdir)
    assert none.returncode == 0 and "0 result(s)" in none.stderr
    # a bad option is exit 2, as every other command's (trend, stories, import) and argparse's
    for since in ("soon", "99999999999d"):
        bad = nw("search", "--since", since, "troops", cwd=workdir)
        assert bad.returncode == 2 and "--since" in bad.stderr and "Traceback" not in bad.stderr


def test_example_config_checks() -> None:
    res = nw("check", "-c", str(REPO / "config.example.toml"), cwd=REPO)
    assert res.returncode == 0, res.stderr


async def test_check_live_polls_each_source_and_shows_stored_health(workdir: Path) -> None:
    import asyncio

    from tests.fakes.feed_server import FeedServer, Route

    async with FeedServer() as server:
        server.set("/ok", Route(body=(
            b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
            b"<item><title>Troops</title><link>https://x.example/1</link></item>"
            b"</channel></rss>")))
        server.set("/gone", Route(status=410, body=b"gone"))
        cfg = (workdir / "config.toml").read_text() + f"""
[fetch]
allow_private = ["127.0.0.1/32"]
[[sources]]
name = "good"
type = "feed"
url = "{server.url('/ok')}"
[[sources]]
name = "gone"
type = "feed"
url = "{server.url('/gone')}"
"""
        (workdir / "live.toml").write_text(cfg)
        env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
        proc = await asyncio.create_subprocess_exec(
            *EXE, "check", "--live", "-c", "live.toml", cwd=workdir, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 1  # one source failed
    assert "seeds            ok, 5 item(s)" in text
    assert "good             ok, 1 item(s)" in text
    assert "gone             error:" in text and "410" in text


def test_output_piped_into_a_reader_that_stops_early_ends_quietly(tmp_path: Path) -> None:
    """``newswatch match … | head -1``: the reader goes away, newswatch stops as command line
    tools do (SIGPIPE), without a BrokenPipeError traceback."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    for _ in range(40):  # enough matching output to outlast the pipe's buffer
        for f in list((tmp_path / "seeds").iterdir())[:5]:
            shutil.copy(f, tmp_path / "seeds" / f"{_}-{f.name}")
    proc = subprocess.Popen([sys.executable, "-m", "bot", "match", "the", "seeds"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None and proc.stderr is not None
    with proc.stderr:
        assert proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 128 + signal.SIGPIPE)
    assert err == ""


def test_a_write_to_a_socket_whose_peer_closed_does_not_end_the_program(tmp_path: Path) -> None:
    """The command set SIGPIPE's default action (for `| head`), which also ended the whole
    process, without a word, at a write to any socket whose peer had closed it: `run` on
    PostgreSQL died at a server restart, and so would it at a Discord or webhook connection
    reset. The write must fail as an error the program handles."""
    script = (
        "import socket, sys\n"
        "from bot.cli import main\n"
        "sys.argv = ['newswatch', '--version']\n"
        "try:\n"
        "    main(None)\n"  # as the installed command starts
        "except SystemExit:\n"
        "    pass\n"
        "a, b = socket.socketpair()\n"
        "b.close()\n"
        "try:\n"
        "    a.send(b'x')\n"
        "except BrokenPipeError:\n"
        "    print('handled')\n")
    res = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert res.returncode == 0, (res.returncode, res.stderr)
    assert res.stdout.splitlines()[-1] == "handled"


def test_control_characters_in_articles_never_reach_the_terminal(tmp_path: Path) -> None:
    """A title may hold ESC sequences (set the window title, clear the screen), carriage
    returns or a newline that forges a result line: search, match, stories and the console's
    cards print each as a space."""
    hostile = "Putin \x1b]0;PWNED\x07 title \x1b[2J\r\u202egnp.exe\nzz99  2099-01-01  forged"
    (tmp_path / "config.toml").write_text('[storage]\npath = "nw.db"\n'
                                          '[[sources]]\nname = "f"\ntype = "folder"\n'
                                          'path = "f"\n[[rules]]\nname = "p"\nquery = "putin"\n')
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "e.txt").write_text(f"{hostile}\nPutin text \x1b[31m red.")
    line = {"id": "h1", "title": hostile, "text": "Putin.", "date": "2022-01-01",
            "source": "wire\x1b[2J"}
    (tmp_path / "h.jsonl").write_text(json.dumps(line) + "\n")
    outputs = [nw("run", "--once", cwd=tmp_path), nw("import", "h.jsonl", cwd=tmp_path),
               nw("search", "putin", cwd=tmp_path), nw("match", "putin", "f", cwd=tmp_path),
               nw("stories", "h.jsonl", cwd=tmp_path)]
    for res in outputs:
        assert res.returncode == 0, res.stderr
        for text in (res.stdout, res.stderr):
            assert not any(c in text for c in "\x1b\x07\r\u202e"), repr(text)
            assert not [ln for ln in text.splitlines() if ln.startswith("zz99")]
    assert "PWNED" in outputs[2].stdout  # shown as text, on its result's line


def test_a_path_the_file_system_refuses_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('[storage]\npath = "c.toml/x.db"\n')  # under a file
    (tmp_path / "ok.toml").write_text('[storage]\npath = "nw.db"\n')
    assert nw("migrate", "-c", "ok.toml", cwd=tmp_path).returncode == 0
    for args, says in [(["migrate", "-c", "c.toml"], "c.toml/x.db: Not a directory"),
                       (["copy", "--from", "nw.db", "--to", "c.toml/x.db"], "Not a directory"),
                       (["copy", "--from", "nw.db", "--to", "a" * 300], "File name too long")]:
        res = nw(*args, cwd=tmp_path)
        assert res.returncode == 1, res.stderr
        assert says in res.stderr and "Traceback" not in res.stderr
        assert len(res.stderr.splitlines()) == 1


@pytest.mark.parametrize("value", ["0", "-5", "49", "101", "10000000000000000000000"])
def test_match_threshold_out_of_range_is_refused(value: str) -> None:
    """--threshold 0 matched every document at score 0; the config takes 50 to 100."""
    res = nw("match", "zzzzqqq~", "seeds", "--threshold", value, cwd=REPO)
    assert res.returncode == 2 and "--threshold" in res.stderr and "50 to 100" in res.stderr
    assert res.stdout == ""


def test_check_says_what_run_would_meet_in_this_environment(tmp_path: Path) -> None:
    """check said ok for a webhook variable that was unset, and for rules with no destination
    while a bot token was set (which run refuses); then it warned about the variable, and exited
    0, where run refuses to start (exit 2)."""
    (tmp_path / "hook.toml").write_text('[storage]\npath = "nw.db"\n[channels]\n'
                                        'alerts = "env:NW_HOOK"\n'
                                        '[[rules]]\nname = "a"\nquery = "putin"\n')
    unset = nw("check", "-c", "hook.toml", cwd=tmp_path, env={"NW_HOOK": ""})
    assert unset.returncode == 2 and (
        "hook.toml: run refuses to start: route alerts: $NW_HOOK is not set here") in unset.stderr
    bad = nw("check", "-c", "hook.toml", cwd=tmp_path, env={"NW_HOOK": "https://example.org/x"})
    assert bad.returncode == 2 and "is not a Discord webhook URL here" in bad.stderr
    run = nw("run", "-c", "hook.toml", "--once", cwd=tmp_path, env={"NW_HOOK": ""})
    assert run.returncode == 2 and "NW_HOOK" in run.stderr, run.stderr  # as check says
    assert "example.org" not in bad.stderr + bad.stdout
    good = nw("check", "-c", "hook.toml", cwd=tmp_path, env={
        "NW_HOOK": "https://discord.com/api/webhooks/123456789012345678/" + "t" * 60})
    assert good.returncode == 0 and "warning" not in good.stderr
    (tmp_path / "bare.toml").write_text('[storage]\npath = "nw.db"\n'
                                        '[[rules]]\nname = "a"\nquery = "putin"\n')
    assert nw("check", "-c", "bare.toml", cwd=tmp_path).returncode == 0
    token = nw("check", "-c", "bare.toml", cwd=tmp_path, env={"DISCORD_TOKEN": "x" * 60})
    assert token.returncode == 2 and "run refuses rules whose route has no [channels] entry" in (
        token.stderr)
    assert "x" * 60 not in token.stderr + token.stdout
    # The summary does not say such a route prints to the console: with a token it is refused.
    assert "alerts           no [channels] entry (refused with a token)" in token.stdout
    assert "console" not in token.stdout


def test_check_says_when_run_will_make_the_database_and_its_folders(tmp_path: Path) -> None:
    """A store path naming no file yet is fine (run makes it), but a typo in it made folders in
    silence: check names what run will make."""
    for written, says in [("nw.db", "(new: run creates it)"),
                          (":memory:", "(new: run creates it)"),  # a file of that name here
                          ("data/nw.db", f"(new: run creates it and the folder {tmp_path}/data)"),
                          ("dta/2026/nw.db", "(new: run creates it and the folders from "
                                             f"{tmp_path}/dta down)")]:
        (tmp_path / "c.toml").write_text(f'[storage]\npath = "{written}"\n'
                                         '[[rules]]\nname = "a"\nquery = "putin"\n')
        done = nw("check", "-c", "c.toml", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert f"  storage  {tmp_path / written} {says}\n" in done.stdout, done.stdout
    assert not (tmp_path / "data").exists() and not (tmp_path / "dta").exists()  # nothing made
    (tmp_path / "nw.db").write_bytes(b"")
    (tmp_path / "c.toml").write_text('[storage]\npath = "nw.db"\n'
                                     '[[rules]]\nname = "a"\nquery = "putin"\n')
    done = nw("check", "-c", "c.toml", cwd=tmp_path)
    assert f"  storage  {tmp_path / 'nw.db'}\n" in done.stdout, done.stdout


def test_check_promises_no_database_under_a_file(tmp_path: Path) -> None:
    """A path through a file (``notes.txt/nw.db``) was "new: run creates it" in the summary
    beside the refusal that run cannot open it."""
    (tmp_path / "notes.txt").write_text("notes\n")
    for written in ("notes.txt/nw.db", "notes.txt/x/nw.db"):
        (tmp_path / "c.toml").write_text(f'[storage]\npath = "{written}"\n'
                                         '[[rules]]\nname = "a"\nquery = "putin"\n')
        done = nw("check", "-c", "c.toml", cwd=tmp_path)
        assert done.returncode == 2, done.stdout
        assert "run refuses to start: [storage] path:" in done.stderr
        assert "Not a directory" in done.stderr
        assert f"  storage  {tmp_path / written}\n" in done.stdout, done.stdout


def test_check_says_ok_only_when_run_would_start(tmp_path: Path) -> None:
    """It printed "ok" and then the refusal, exit 2; and it passed a token run refuses and a
    store path no command can open."""
    (tmp_path / "hook.toml").write_text('[storage]\npath = "nw.db"\n[channels]\n'
                                        'alerts = "env:NW_HOOK"\n'
                                        '[[rules]]\nname = "a"\nquery = "putin"\n')
    bad = nw("check", "-c", "hook.toml", cwd=tmp_path, env={"NW_HOOK": "not-a-webhook"})
    assert bad.returncode == 2 and "hook.toml: ok" not in bad.stdout, bad.stdout
    assert bad.stdout.startswith("hook.toml: valid, but run refuses to start with it here")
    (tmp_path / "bare.toml").write_text('[storage]\npath = "nw.db"\n[channels]\nalerts = 1\n'
                                        '[[rules]]\nname = "a"\nquery = "putin"\n')
    token = nw("check", "-c", "bare.toml", cwd=tmp_path,
               env={"DISCORD_TOKEN": "abc\ndef"})
    assert token.returncode == 2 and ("run refuses to start: $DISCORD_TOKEN holds a space, "
                                      "line break or control character") in token.stderr
    assert "abc" not in token.stdout + token.stderr
    (tmp_path / "folder").mkdir()
    (tmp_path / "notes.txt").write_text("not a database\n")
    for path, says in [("folder", "is a folder, not a database file"),
                       ("/dev/null", "is not a regular file"),
                       ("store.toml", "is the config file itself"),
                       # check said ok, run then refused it
                       ("notes.txt", "is not a newswatch database (not an SQLite file)")]:
        (tmp_path / "store.toml").write_text(f'[storage]\npath = "{path}"\n'
                                             '[[rules]]\nname = "a"\nquery = "putin"\n')
        res = nw("check", "-c", "store.toml", cwd=tmp_path)
        assert res.returncode == 2 and says in res.stderr, res.stderr
    (tmp_path / "store.toml").write_text('[storage]\npath = "new.db"\n'
                                         '[[rules]]\nname = "a"\nquery = "putin"\n')
    fine = nw("check", "-c", "store.toml", cwd=tmp_path)
    assert fine.returncode == 0 and fine.stdout.startswith("store.toml: ok\n"), fine.stderr


def test_check_reads_the_store_as_run_would_before_it_says_ok(tmp_path: Path) -> None:
    """A store of a newer schema, an incomplete copy and another program's database were "ok"
    to check (only the file's first bytes were read), and run then refused each."""
    import sqlite3
    from contextlib import closing

    from watchers.store.copy import COPYING_SQLITE_ID
    from watchers.store.sqlite.schema import SCHEMA_VERSION

    (tmp_path / "store.toml").write_text('[storage]\npath = "nw.db"\n'
                                         '[[rules]]\nname = "a"\nquery = "putin"\n')
    made = nw("migrate", "-c", "store.toml", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert nw("check", "-c", "store.toml", cwd=tmp_path).returncode == 0
    for change, says in [
        (f"PRAGMA user_version = {SCHEMA_VERSION + 1}",
         f"has schema version {SCHEMA_VERSION + 1}, newer than this newswatch"),
        (f"PRAGMA application_id = {COPYING_SQLITE_ID}", "holds an incomplete copy"),
    ]:
        shutil.copy(tmp_path / "nw.db", tmp_path / "changed.db")
        with closing(sqlite3.connect(tmp_path / "changed.db")) as conn:
            conn.execute(change)
        (tmp_path / "changed.toml").write_text('[storage]\npath = "changed.db"\n'
                                               '[[rules]]\nname = "a"\nquery = "putin"\n')
        res = nw("check", "-c", "changed.toml", cwd=tmp_path)
        assert res.returncode == 2 and "changed.toml: ok" not in res.stdout, res.stdout
        assert "run refuses to start: [storage] path: " in res.stderr and says in res.stderr, (
            res.stderr)
    with closing(sqlite3.connect(tmp_path / "other.db")) as conn:
        conn.execute("CREATE TABLE t (x)")
    (tmp_path / "other.toml").write_text('[storage]\npath = "other.db"\n'
                                         '[[rules]]\nname = "a"\nquery = "putin"\n')
    res = nw("check", "-c", "other.toml", cwd=tmp_path)
    assert res.returncode == 2 and "is not a newswatch database (it holds other tables)" in (
        res.stderr), res.stderr


def test_check_reads_the_store_url_variable_as_run_does(tmp_path: Path) -> None:
    """check said ok with $VAR unset or holding no PostgreSQL URL; run refused it (exit 2)."""
    (tmp_path / "db.toml").write_text('[storage]\nurl = "env:NW_DB"\n'
                                      '[[rules]]\nname = "a"\nquery = "x"\n')
    for value, says in [("", "storage.url: $NW_DB is not set"),
                        ("mysql://u:pw@h/x", "$NW_DB does not hold a 'postgresql://…' URL"),
                        ("postgresql://u:pw@h:99999/x", "not a valid PostgreSQL URL")]:
        res = nw("check", "-c", "db.toml", cwd=tmp_path, env={"NW_DB": value})
        assert res.returncode == 2 and says in res.stderr and "db.toml" in res.stderr
        assert "pw" not in res.stderr + res.stdout
    ok = nw("check", "-c", "db.toml", cwd=tmp_path, env={"NW_DB": "postgresql://u:pw@h/x"})
    assert ok.returncode == 0 and "PostgreSQL from $NW_DB" in ok.stdout


@pytest.mark.parametrize(("args", "said"), [
    (["search", "troops", "--since", ""], "--since: an empty value"),
    (["search", "troops", "--since="], "--since: an empty value"),
    (["check", "-c", ""], "-c: an empty value"),
    (["check", "-c="], "-c: an empty value"),
    (["match", "troops", ""], "argument 3 is empty ('')"),
    (["import", ""], "argument 2 is empty ('')"),
])
def test_an_empty_argument_is_refused_not_read_as_left_out(
        workdir: Path, args: list[str], said: str) -> None:
    """An unset shell variable: --since "" searched the default day, -c "" read config.toml,
    match troops "" searched this folder, and import "" named '.' as the file."""
    res = nw(*args, cwd=workdir)
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith(f"newswatch: {said}"), res.stderr
    assert res.stdout == ""


def test_match_over_many_files_says_how_far_it_has_got(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """30,000 files took about 11 s with nothing said until the end; after a second it shows
    how far it has got, on stderr, where the results on stdout stay as they were."""
    from bot import cli

    monkeypatch.setattr(cli, "MATCH_QUIET_S", -1.0)  # from the first file here
    monkeypatch.setattr(cli, "PROGRESS_EVERY_S", 0.0)
    for i in range(4):
        (tmp_path / f"d{i}.txt").write_text(f"Story {i}\nTroops moved." if i % 2 else
                                            f"Story {i}\nNothing here.")
    assert cli.main(["match", "troops", str(tmp_path), "--json"]) == 0
    out, err = capsys.readouterr()
    assert sorted(json.loads(line)["title"] for line in out.splitlines()) == ["Story 1",
                                                                              "Story 3"]
    said = [line for line in err.splitlines() if "documents read" in line]
    assert said[0] == "newswatch: match ?: 1 documents read, 0 matching", err
    assert said[-1] == "newswatch: match ?: 4 documents read, 1 matching", err


def test_match_takes_its_paths_after_its_options_too(workdir: Path) -> None:
    """`match troops --json seeds` was refused with the top level's usage ("unrecognized
    arguments: seeds"); only `match --json troops seeds` worked."""
    before = nw("match", "--json", "--threshold", "90", "troops", "seeds", cwd=workdir)
    after = nw("match", "troops", "--json", "--threshold", "90", "seeds", cwd=workdir)
    assert before.returncode == after.returncode == 0, after.stderr
    assert after.stdout == before.stdout and after.stdout.count("\n") == 3  # three seeds say troops
    wrong = nw("search", "troops", "extra", cwd=workdir)
    assert wrong.returncode == 2 and "unrecognized arguments: extra" in wrong.stderr
    # after "--" a name that starts with "-" is a path too
    (workdir / "-odd.txt").write_text("Troops\n\nTroops again.\n", encoding="utf-8")
    odd = nw("match", "troops", "--json", "seeds", "--", "-odd.txt", cwd=workdir)
    assert odd.returncode == 0, odd.stderr
    assert odd.stdout.count("\n") == 4 and '"path": "-odd.txt"' in odd.stdout
    unknown = nw("match", "troops", "seeds", "--nope", cwd=workdir)
    assert unknown.returncode == 2 and "unrecognized arguments: --nope" in unknown.stderr


def test_run_verbose_says_what_every_poll_and_delivery_did(workdir: Path) -> None:
    """`run -v` added nothing: no debug line was ever written."""
    first = nw("run", "--once", "-v", cwd=workdir)
    assert first.returncode == 0, first.stderr
    delivered = [line for line in first.stderr.splitlines()
                 if "DEBUG" in line and " delivered to alerts (message console-" in line]
    assert len(delivered) == 4, first.stderr
    again = nw("run", "--once", "-v", cwd=workdir)
    assert "DEBUG   newswatch: source seeds: polled, nothing new" in again.stderr, again.stderr
    quiet = nw("run", "--once", cwd=workdir)
    assert "DEBUG" not in quiet.stderr


def _pyproject_version() -> str:
    import tomllib

    with (REPO / "pyproject.toml").open("rb") as fh:
        return str(tomllib.load(fh)["project"]["version"])


def test_version_is_the_installed_distributions(tmp_path: Path) -> None:
    res = nw("--version", cwd=tmp_path)
    assert (res.returncode, res.stdout, res.stderr) == (
        0, f"newswatch {_pyproject_version()}\n", "")
    helped = nw("--help", cwd=tmp_path)
    assert "--version" in helped.stdout


def test_version_to_a_closed_standard_output_is_said_not_written(tmp_path: Path) -> None:
    res = subprocess.run(["sh", "-c", 'exec "$0" "$@" >&-', *EXE, "--version"], cwd=tmp_path,
                         stderr=subprocess.PIPE, text=True, timeout=60)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == ("newswatch: standard output is closed: the results could be "
                                  "written nowhere")


def test_version_from_a_source_tree_never_installed_is_its_pyprojects(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.metadata

    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    from bot import cli

    with pytest.raises(SystemExit) as stopped:
        cli.main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"newswatch {_pyproject_version()}\n"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
@pytest.mark.parametrize("args, code", [
    (["match", "troops", "seeds"], 1),
    (["match", "troops", "seeds", "--json"], 1),
    (["--help"], 1),
    (["--version"], 1),
    (["sources", "export", "-c", "export.toml"], 1),  # writes bytes, not text
])
def test_output_that_cannot_be_written_is_named_as_such(args: list[str], code: int,
                                                        tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    (tmp_path / "export.toml").write_text(
        '[storage]\npath = "news.db"\n[[sources]]\nname = "wire"\ntype = "feed"\n'
        'url = "https://wire.example/feed.xml"\n')
    with open("/dev/full", "w") as full:
        res = subprocess.run([*EXE, *args], cwd=tmp_path, stdout=full, stderr=subprocess.PIPE,
                             text=True, timeout=60)
    assert res.returncode == code, res.stderr
    said = [line for line in res.stderr.splitlines() if "standard output" in line]
    assert said == ["newswatch: could not write the output to standard output: "
                    "No space left on device"], res.stderr
    assert "Traceback" not in res.stderr and "Exception ignored" not in res.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_a_command_that_writes_nothing_to_full_output_says_only_its_own_error(
        tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    with open("/dev/full", "w") as full:
        res = subprocess.run([*EXE, "match", "((", "seeds"], cwd=tmp_path, stdout=full,
                             stderr=subprocess.PIPE, text=True, timeout=60)
    assert res.returncode == 2 and "query error" in res.stderr
    assert "standard output" not in res.stderr and "Traceback" not in res.stderr


def test_match_names_each_document_it_cannot_read_and_matches_the_rest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way a document given to `match` cannot be an article: each is named on stderr
    with why, and the documents after it are still read and matched."""
    from bot import cli

    monkeypatch.setattr(cli, "MATCH_MAX_BYTES", 2**20)
    (tmp_path / "a-big.txt").write_text("Big story\n" + "Troops moved. " * 80_000)
    (tmp_path / "b-binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(50))
    (tmp_path / "c-deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "d-blank.txt").write_text("  \n\n  \t\n")
    (tmp_path / "e-list.json").write_text('["Troops"]')
    (tmp_path / "f-good.txt").write_text("Good story\nTroops moved.")
    paths = [str(p) for p in sorted(tmp_path.iterdir())]
    if os.path.exists("/proc/self/status"):
        paths.append("/proc/self/status")  # says it holds 0 bytes: taken at its word
    assert cli.main(["match", "troops", *paths, "--json"]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["title"] for line in out.splitlines()] == ["Good story"]
    named = [line.split(": skipped ", 1)[1].split(": ", 1) for line in err.splitlines()
             if ": skipped " in line]
    skipped = {path.rsplit("/", 1)[-1]: why for path, why in named}
    want = {"a-big.txt": "larger than 1 MiB", "b-binary.txt": "binary, not text",
            "c-deep.json": "invalid JSON: nested too deeply", "d-blank.txt": "empty article",
            "e-list.json": "expected a JSON object with 'title' and 'text'"}
    if "/proc/self/status" in paths:
        want["status"] = "empty article (0 bytes)"
    assert skipped == want, err


def test_a_source_option_that_is_not_utf8_is_refused_by_name(workdir: Path) -> None:
    """A byte that is not UTF-8 in --source (passed on as a lone surrogate) reached the store,
    which could not encode it: a traceback on SQLite, a database error on PostgreSQL."""
    res = subprocess.run([*EXE, "search", "troops", "--source", b"sr\xffc"], cwd=workdir,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stderr
    assert res.stderr == "newswatch: --source: 'sr\\xffc' is not UTF-8 text\n"


def test_run_printing_into_a_reader_that_stops_early_ends_and_loses_nothing(
        workdir: Path) -> None:
    """`newswatch run --console | head`: once SIGPIPE stayed ignored (so that a socket's reset
    is an error, not the end of the process), the closed pipe was a delivery failure retried
    for ever, and the command never ended. It ends as SIGPIPE's action ends it; what it could
    not show is shown by the next run."""
    proc = subprocess.Popen([*EXE, "run", "--console"], cwd=workdir, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None and proc.stderr is not None
    with proc.stderr:
        assert proc.stdout.readline()
        proc.stdout.close()
        try:
            assert proc.wait(timeout=60) == -signal.SIGPIPE
        finally:
            proc.kill()
        err = proc.stderr.read().decode()
    assert "Traceback" not in err and "retrying" not in err, err
    again = nw("run", "--once", "--console", cwd=workdir)
    assert again.returncode == 0, again.stderr
    with sqlite3.connect(workdir / "nw.db") as conn:
        states = dict(conn.execute("SELECT state, count(*) FROM outbox GROUP BY state"))
    assert set(states) == {"delivered"} and states["delivered"] >= 1, states


def test_a_word_too_many_or_a_config_before_the_command_is_named_with_the_commands_usage(
        tmp_path: Path) -> None:
    """`newswatch stories f.jsonl extra` printed the top level's usage (every command but the
    one given); `newswatch -c c.toml search troops` said "invalid choice: 'c.toml'", naming the
    file as the command."""
    for args, usage in ((["stories", "f.jsonl", "extra"], "usage: newswatch stories"),
                        (["search", "troops", "extra", "-c", "c.toml"], "usage: newswatch search"),
                        (["sources", "export", "extra"], "usage: newswatch sources export")):
        res = nw(*args, cwd=tmp_path)
        assert res.returncode == 2 and usage in res.stderr, res.stderr
        assert "unrecognized arguments: extra" in res.stderr
        assert "usage: newswatch [-h]" not in res.stderr
    for first in (["-c", "c.toml"], ["--config", "c.toml"], ["--config=c.toml"]):
        res = nw(*first, "search", "troops", cwd=tmp_path)
        assert res.returncode == 2 and "invalid choice" not in res.stderr, res.stderr
        assert "-c/--config goes after the command" in res.stderr
