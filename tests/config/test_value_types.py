"""A value of the wrong type is refused with its key path and what the key takes, never
converted: TOML writes booleans and numbers unquoted, so ``enabled = "no"`` is a mistake (it
was read as false, and "yes"/"no" read silently can turn a meaning round), ``threshold = "90"``
one too (read as 90), and ``enabled = 1`` (read as true). Durations and sizes still take their
strings, and a whole number stands for a float."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.cli.test_cli import nw
from watchers.config import load_config
from watchers.errors import ConfigError

RULE = '[[rules]]\nname = "a"\nquery = "kyiv"\n'


def issues(text: str, tmp_path: Path, *, watching: bool = False) -> list[str]:
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(p, watching=watching)
    return [str(i) for i in info.value.issues]


@pytest.mark.parametrize(("text", "says"), [
    # a boolean given as a string or a number
    (RULE + 'enabled = "no"\n',
     'rules[0].enabled: expected a boolean (true or false), got the string "no"'),
    (RULE + "enabled = 1\n",
     "rules[0].enabled: expected a boolean (true or false), got the number 1"),
    (RULE + 'surge = "yes"\n',
     'rules[0].surge: expected a boolean (true or false), got the string "yes"'),
    ('[surge]\nenabled = "true"\n',
     'surge.enabled: expected a boolean (true or false), got the string "true" '
     "(write true without quotes)"),
    ('[[sources]]\nname = "s"\ntype = "feed"\nurl = "https://example.org/f"\n'
     'enabled = "false"\n',
     'sources[0].enabled: expected a boolean (true or false), got the string "false" '
     "(write false without quotes)"),
    # a whole number given as a string, a float or a boolean
    ('threshold = "90"\n',
     'threshold: expected a whole number, got the string "90" (write it without quotes: 90)'),
    (RULE + 'threshold = "90"\n',
     'rules[0].threshold: expected a whole number, got the string "90" '
     "(write it without quotes: 90)"),
    (RULE + 'mention_role = "123456789012345678"\n',
     'rules[0].mention_role: expected a whole number, got the string "123456789012345678" '
     "(write it without quotes: 123456789012345678)"),
    ('[fetch]\npause_after = 10.0\n',
     "fetch.pause_after: expected a whole number, got the number 10.0"),
    ("[surge]\ndays = true\n", "surge.days: expected a whole number, got true"),
    ('[discord]\nguild_ids = ["123"]\n',
     'discord.guild_ids[0]: expected a whole number, got the string "123" '
     "(write it without quotes: 123)"),
    # a float given as a string
    ('[surge]\nsigma = "3"\n',
     'surge.sigma: expected a number, got the string "3" (write it without quotes: 3)'),
    ('[surge]\nsigma = "2.5"\n',
     'surge.sigma: expected a number, got the string "2.5" (write it without quotes: 2.5)'),
    # a list given as a string
    ('[discord]\nguild_ids = "123"\n', 'discord.guild_ids: expected a list, got the string "123"'),
    ('[aliases]\nkyiv = "kiew"\n', 'aliases.kyiv: expected a list, got the string "kiew"'),
    ('[fetch]\nallow_private = "10.0.0.0/8"\n',
     'fetch.allow_private: expected a list, got the string "10.0.0.0/8"'),
    # a string given as something else
    (RULE + "channel = 5\n", "rules[0].channel: expected a string, got the number 5"),
    ("[channels.brief]\ntarget = 1\nmode = \"digest\"\ndigest_at = [08:00:00]\n",
     'channels.brief.digest_at[0]: expected a string, got a time of day '
     '(write it in quotes: "08:00")'),
    (RULE + "severity = 3\n",
     "rules[0].severity: expected 'info', 'low', 'medium', 'high' or 'critical', "
     "got the number 3"),
    # a key that takes a number or a string: one issue, naming both
    ("[discord]\nadmin_role = true\n",
     "discord.admin_role: expected a whole number or a string, got true"),
    ("[channels]\nalerts = true\n",
     "channels.alerts: expected a whole number or a string, got true"),
    ("[channels.alerts]\ntarget = 1.5\n",
     "channels.alerts.target: expected a whole number or a string, got the number 1.5"),
    # a table given as something else
    ('storage = "nw.db"\n', 'storage: expected a table, got the string "nw.db"'),
    # an array of tables given as a single value (a number, true or a date went through the
    # check for keys newswatch sets itself, which ended every command with a traceback)
    ("sources = 3\n", "sources: expected a list, got the number 3"),
    ("rules = true\n", "rules: expected a list, got true"),
    ("sources = 1.5\n", "sources: expected a list, got the number 1.5"),
    ("rules = 2024-01-01\n", "rules: expected a list, got a date"),
    # a size: bytes or a string with its unit, and nothing else
    ('[fetch]\nmax_bytes = "lots"\n',
     "fetch.max_bytes: 'lots' is not a size; use bytes (1048576) or e.g. '512KB', '1MB', "
     "'1MiB'"),
    # (digits of other scripts: \d took "１MiB", full-width, as 1 MiB)
    ('[fetch]\nmax_bytes = "\uff11MiB"\n',
     "fetch.max_bytes: '\uff11MiB' is not a size; use bytes (1048576) or e.g. '512KB', '1MB', "
     "'1MiB'"),
    ('[fetch]\nmax_bytes = [5]\n',
     "fetch.max_bytes: expected a size such as 5242880, '512KB' or '5MiB'"),
    # a duration given as a list ended `check` with a traceback
    ('[[sources]]\nname = "s"\ntype = "feed"\nurl = "https://example.org/f"\nevery = [5]\n',
     "sources[0].every: expected a duration such as '30s', '5m' or '1h'"),
])
def test_a_value_of_the_wrong_type_is_named_with_its_key(tmp_path: Path, text: str,
                                                         says: str) -> None:
    assert issues(text, tmp_path) == [says]


def test_every_value_of_the_wrong_type_is_reported_at_once(tmp_path: Path) -> None:
    found = issues('threshold = "90"\n[surge]\nsigma = "3"\n' + RULE
                   + 'enabled = "no"\nmention_roles = "1"\n', tmp_path)
    assert {f.split(":")[0] for f in found} == {
        "surge.sigma", "threshold", "rules[0].mention_roles", "rules[0].enabled"}


@pytest.mark.parametrize(("text", "says"), [
    # "" or a name with a space was taken, and run said there was no token "in $"
    ('[discord]\ntoken_env = ""\n', "discord.token_env: '' is not an environment variable's "
     "name"),
    ('[discord]\ntoken_env = "MY TOKEN"\n', "discord.token_env: 'MY TOKEN' is not an "
     "environment variable's name"),
    # a webhook URL run refuses (its token part holds a '/') passed check
    ('[channels]\nalerts = "https://discord.com/api/webhooks/1/abc/extra"\n',
     "channels.alerts: expected a channel id, a webhook URL"),
])
def test_what_run_would_refuse_is_refused_when_read(tmp_path: Path, text: str, says: str
                                                    ) -> None:
    (found,) = issues(text, tmp_path)
    assert found.startswith(says)


def test_every_bad_network_of_allow_private_is_named(tmp_path: Path) -> None:
    found = issues('[fetch]\nallow_private = ["nope", "10.0.0.0/8", "x/33"]\n', tmp_path)
    assert found == ["fetch.allow_private: 'nope' and 'x/33' are not IP networks such as "
                     "'10.1.2.0/24'"]


def test_a_wrong_value_hides_no_other_kind_of_problem(tmp_path: Path) -> None:
    """Duplicate source names, a missing folder and an unknown channel are found in a config
    the model refuses too (they were only checked in a valid one): each is named with the
    refused values, and nothing follows from leaving those out."""
    text = """
[fetch]
timeout = "x"
[channels]
alerts = 123456789012345678
[[sources]]
name = "x"
type = "folder"
path = "/nonexistent-folder"
[[sources]]
name = "x"
type = "folder"
path = "."
[[rules]]
name = "r"
query = 'a'
channel = "nope"
"""
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "c.toml")  # to watch with: its folders must be there
    assert sorted(str(i) for i in info.value.issues) == [
        "fetch.timeout: 'x' is not a duration; use e.g. '30s', '5m', '1h30m', '2d'",
        "rules[0].channel: unknown channel 'nope'; [channels] defines: alerts",
        "sources[0].path: no such folder: /nonexistent-folder",
        "sources[1].name: duplicate source name 'x' (first at sources[0])",
    ]


def test_a_refused_source_or_rule_hides_no_problem_of_the_others(tmp_path: Path) -> None:
    """A source of an unknown type (a value with no default to fall back on) hid every other
    source's missing folder and duplicate name: the item is left out for those checks, and
    what they say of the items after it keeps the file's numbering."""
    text = """
[[sources]]
name = "a"
type = "folder"
path = "/nonexistent-folder"
[[sources]]
name = "b"
type = "fed"
url = "https://example.org/feed"
[[sources]]
name = "a"
type = "feed"
url = "https://example.org/feed2"
[[rules]]
name = "r"
[[rules]]
name = "s"
query = "ukraine"
[[rules]]
name = "s"
query = "russia"
"""
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "c.toml")
    assert sorted(str(i) for i in info.value.issues) == [
        "rules[0].query: missing: this key is required here",
        "rules[2].name: duplicate rule name 's' (first at rules[1])",
        "sources[0].path: no such folder: /nonexistent-folder",
        "sources[1].type: unknown source type 'fed'; expected 'folder', 'feed' or 'page'",
        "sources[2].name: duplicate source name 'a' (first at sources[0])",
    ]


def test_an_item_with_two_refused_values_hides_no_problem_of_the_others(tmp_path: Path) -> None:
    """A rule with two refused values (a name with a space, an unknown severity): each
    value's trial left its rule out by the other, neither was found to need the rule left out
    whole, and every item with an error was: the source's missing folder and the duplicate of
    its name were said only once the severity was mended."""
    text = """
[[sources]]
name = "inbox"
type = "folder"
path = "no-such-folder"
enabled = "yes"
[[sources]]
name = "inbox"
type = "feed"
url = "https://example.com/rss"
[[rules]]
name = "my rule"
query = "troops"
severity = "urgent"
"""
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "c.toml")
    said = sorted(str(i) for i in info.value.issues)
    assert [s.split(":")[0] for s in said] == [
        "rules[0].name", "rules[0].severity", "sources[0].enabled", "sources[0].path",
        "sources[1].name"], said
    assert f"sources[0].path: no such folder: {tmp_path / 'no-such-folder'}" in said


def test_a_source_with_a_bad_value_keeps_its_other_problems_beside_a_refused_item(
        tmp_path: Path) -> None:
    """Beside a rule with no query (refused, with no default to fall back on), a source with
    a bad `every` was left out whole: its missing folder and the duplicate of its name were
    said only once `every` was mended. Only the items that cannot do without their refused
    value are left out; the others lose the value alone."""
    text = """
[[sources]]
name = "news"
type = "feed"
url = "https://example.com/a.xml"
every = "5x"
[[sources]]
name = "news"
type = "feed"
url = "https://example.com/b.xml"
[[sources]]
name = "docs"
type = "folder"
path = "/nonexistent-folder"
every = "5x"
[[sources]]
name = "c"
type = "fed"
url = "https://example.org/feed"
[[sources]]
name = "docs"
type = "feed"
url = "https://example.org/feed2"
[[rules]]
name = "r"
"""
    assert sorted(issues(text, tmp_path, watching=True)) == [
        "rules[0].query: missing: this key is required here",
        "sources[0].every: '5x' is not a duration; use e.g. '30s', '5m', '1h30m', '2d'",
        "sources[1].name: duplicate source name 'news' (first at sources[0])",
        "sources[2].every: '5x' is not a duration; use e.g. '30s', '5m', '1h30m', '2d'",
        "sources[2].path: no such folder: /nonexistent-folder",
        "sources[3].type: unknown source type 'fed'; expected 'folder', 'feed' or 'page'",
        "sources[4].name: duplicate source name 'docs' (first at sources[2])",
    ]


@pytest.mark.parametrize(("text", "says"), [
    # a refused [channels] entry: the rules naming it are not told it is unknown
    ('[channels]\nalerts = true\nother = 1\n' + RULE + 'channel = "alerts"\n',
     "channels.alerts: expected a whole number or a string, got true"),
    # a refused allow_private: a private feed address is not called blocked by the default
    ('[fetch]\nallow_private = ["nope"]\n[[sources]]\nname = "s"\ntype = "feed"\n'
     'url = "http://127.0.0.1:9/f"\n',
     "fetch.allow_private: 'nope' is not an IP network such as '10.1.2.0/24'"),
    # a refused rule value, and a query error: each once
    (RULE + 'severity = 3\n[[rules]]\nname = "t"\nquery = "(a"\n',
     "rules[0].severity: expected 'info', 'low', 'medium', 'high' or 'critical', "
     "got the number 3"),
])
def test_what_a_refused_value_leaves_out_is_not_reported_for_it(
        tmp_path: Path, text: str, says: str) -> None:
    found = issues(text, tmp_path)
    assert found[0] == says
    assert not any("unknown channel" in f or "blocked" in f or "private" in f.split(":")[0]
                   for f in found[1:])
    assert len(found) == len(set(found))


def test_the_forms_meant_to_be_flexible_still_load(tmp_path: Path) -> None:
    """Durations and sizes as strings or plain numbers, a whole number for a float, a channel
    as an id, a webhook URL or 'env:VAR', a role as an id or a name."""
    (tmp_path / "news").mkdir()
    p = tmp_path / "ok.toml"
    p.write_text("""
threshold = 90
[discord]
admin_role = "Moderators"
escalate_after = "20m"
escalation_role = 42
guild_ids = [123]
[fetch]
timeout = 15
probe_every = "2h"
max_bytes = "8MiB"
[stories]
window = "36h"
[surge]
enabled = true
sigma = 3
cooldown = "90m"
[channels]
alerts = 123456789012345678
hook = "https://discord.com/api/webhooks/1/abc"
secret = "env:HOOK_URL"
[channels.brief]
target = 7
mode = "digest"
digest_every = "6h"
[[sources]]
name = "news"
type = "folder"
path = "news"
every = "1m30s"
max_file_size = "2MiB"
settle = 0
enabled = false
[[sources]]
name = "wire"
type = "feed"
url = "https://example.org/feed"
every = 600
[[rules]]
name = "a"
query = "kyiv"
threshold = 95
enabled = false
surge = false
mention_role = 5
mention_roles = [6, 7]
""")
    cfg = load_config(p)
    assert cfg.threshold == 90
    assert cfg.discord.admin_role == "Moderators"
    assert cfg.discord.escalate_after == timedelta(minutes=20)
    assert cfg.fetch.timeout == timedelta(seconds=15)
    # A size is a string here as a folder's max_file_size is (the README's own example form).
    assert cfg.fetch.max_bytes == 8 * 2**20
    assert cfg.stories.window == timedelta(hours=36)
    assert cfg.surge.sigma == 3
    assert cfg.targets == {"alerts": 123456789012345678,
                           "hook": "https://discord.com/api/webhooks/1/abc",
                           "secret": "env:HOOK_URL", "brief": 7}
    folder, feed = cfg.sources
    assert folder.every == timedelta(seconds=90) and feed.every == timedelta(minutes=10)
    assert getattr(folder, "max_file_size", None) == 2 * 2**20
    assert getattr(folder, "settle", None) == timedelta(0)
    assert folder.enabled is False
    (rule,) = cfg.rules
    assert (rule.threshold, rule.enabled, rule.surge, rule.mention_roles) == (95, False, False,
                                                                              [6, 7])
    role = load_config(_written(tmp_path, '[discord]\nadmin_role = 123\n' + RULE))
    assert role.discord.admin_role == 123


def _written(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "more.toml"
    p.write_text(text)
    return p


def test_check_names_a_string_given_for_a_boolean_or_a_number(tmp_path: Path) -> None:
    """`newswatch check` took `enabled = "no"` and `threshold = "90"` and said the file was
    fine."""
    (tmp_path / "typed.toml").write_text('[storage]\npath = "nw.db"\n' + RULE
                                         + 'enabled = "no"\nthreshold = "90"\n')
    res = nw("check", "-c", "typed.toml", cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "typed.toml: 2 error(s) in the configuration" in res.stderr, res.stderr
    lines = [line.strip() for line in res.stderr.splitlines()]
    assert 'rules[0].enabled: expected a boolean (true or false), got the string "no"' in lines
    assert ('rules[0].threshold: expected a whole number, got the string "90" (write it '
            "without quotes: 90)") in lines
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "nw.db").exists()
