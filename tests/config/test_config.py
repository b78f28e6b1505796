"""Config loading: every problem reported with its key path; durations; the example file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import REPO
from watchers.config import load_config, parse_config, parse_duration
from watchers.errors import ConfigError


def issues(text: str, tmp_path: Path) -> list[str]:
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(p)
    return [str(i) for i in info.value.issues]


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("5m", 300), ("1h30m", 5400), ("2d", 172800), ("500ms", 0.5), (" 10 m ", 600),
    (45, 45),
])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "5", "5x", "m5", "-3s", "0s", "1h 2", True, [5], {},
                                 "\u0967\u096bm", "\uff15m", "1\u0665s"])  # other scripts' digits
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)  # type: ignore[arg-type]


def test_example_config_is_valid() -> None:
    cfg = load_config(REPO / "config.example.toml")
    names = {r.name for r in cfg.rules}
    assert {"troops", "sanctions", "talks", "kyiv", "donbas", "luhansk", "crimea",
            "nato-expansion", "cyberattacks"} <= names
    assert any(s.type == "folder" and s.name == "seeds" for s in cfg.sources)
    assert sum(s.type == "feed" for s in cfg.sources) >= 3
    assert cfg.resolve(cfg.storage.path) == REPO / "newswatch.db"


def test_every_problem_is_reported_with_its_key_path(tmp_path: Path) -> None:
    found = issues("""
[storage]
path = "x.db"
colour = "blue"

[[sources]]
name = "a"
type = "carrier-pigeon"

[[sources]]
name = "b"
type = "feed"
url = "ftp://example.org/feed"
every = "soon"

[[rules]]
name = "ok"
query = "troops"

[[rules]]
name = "ok"
query = "kyiv"

[[rules]]
name = "broken"
query = "sanctions AND"
""", tmp_path)
    text = "\n".join(found)
    assert "storage.colour: unknown key" in text
    assert "sources[0]" in text and "carrier-pigeon" in text
    assert "sources[1].url: 'ftp://example.org/feed' is not an http(s) URL" in text
    assert "sources[1].every:" in text and "'soon' is not a duration" in text
    # beside them, in the same pass, what the file's rules say wrong (a duplicate name came
    # only once every other error was fixed)
    assert "rules[1].name: duplicate rule name 'ok' (first at rules[0])" in text
    # named by the rule's name too: a config of many rules named it by position alone
    assert "rules[2].query: expected a term after AND at column 14 (rule 'broken')" in text
    # semantic problems come once the shape is right
    found = issues("""
[[rules]]
name = "ok"
query = "troops"
[[rules]]
name = "ok"
query = "kyiv"
[[rules]]
name = "broken"
query = "sanctions AND"
""", tmp_path)
    assert any(i.startswith("rules[1].name: duplicate rule name 'ok'") for i in found)
    broken = [i for i in found if i.startswith("rules[2].query:")]
    assert broken and "expected" in broken[0] and broken[0].endswith("column 14 (rule 'broken')")


def test_unknown_channel_and_bad_channel_refs(tmp_path: Path) -> None:
    found = issues("""
[channels]
alerts = 123
ops = "http://not-a-webhook"
[[rules]]
name = "r"
query = "troops"
channel = "breaking"
""", tmp_path)
    assert any(i.startswith("rules[0].channel: unknown channel 'breaking'") for i in found)
    assert any(i.startswith("channels.ops:") for i in found)


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")
    assert any("not valid TOML" in i for i in issues("[[rules]\nname=", tmp_path))


def test_a_config_not_in_utf8_names_the_byte_and_where_it_is(tmp_path: Path) -> None:
    """It said "not UTF-8 text" alone: one Latin-1 byte in a comment of a long file was hard
    to find."""
    lines = ["[storage]", 'path = "nw.db"', *["# nothing"] * 200, "# caf\xe9 (Latin-1)"]
    (tmp_path / "c.toml").write_bytes("\n".join(lines).encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "c.toml")
    assert "not UTF-8 text: byte 0xe9 at line 203, column 6" in str(info.value)
    # past a byte order mark and a wide character, the column counts characters
    (tmp_path / "d.toml").write_bytes(b"\xef\xbb\xbf# \xe2\x80\x94 \xff")
    with pytest.raises(ConfigError, match="byte 0xff at line 1, column 5"):
        load_config(tmp_path / "d.toml")


def test_env_webhook_channel_is_accepted() -> None:
    cfg = parse_config({"channels": {"alerts": "env:HOOK", "main": 42},
                        "rules": [{"name": "troops", "query": "troops"}]})
    assert cfg.channels == {"alerts": "env:HOOK", "main": 42}


@pytest.mark.parametrize(("toml", "says"), [
    ('[storage]\npaht = "x.db"\n', "storage.paht: unknown key (did you mean 'path'?)"),
    ('[storage]\ndatabase = "x.db"\n',
     "storage.database: unknown key (expected one of: path, url)"),
    ('[[sources]]\nname = "a"\ntype = "feed"\nurll = "https://ex.org/"\n',
     "sources[0].urll: unknown key (did you mean 'url'?)"),
    ('[[sources]]\nname = "a"\ntype = "folder"\npth = "in"\n',
     "sources[0].pth: unknown key (did you mean 'path'?)"),
    ('[channels.alerts]\ntarget = "123"\nstorys = "edit"\n',
     "channels.alerts.storys: unknown key (did you mean 'stories'?)"),
    ('[[rules]]\nname = "a"\nquery = "x"\nchanel = "b"\n',
     "rules[0].chanel: unknown key (did you mean 'channel'?)"),
    ('[stories]\nwindw = "48h"\n', "stories.windw: unknown key (did you mean 'window'?)"),
    ("colour = 1\n", "colour: unknown key (expected one of: aliases, channels, discord, fetch, "
                     "rules, sources, storage, stories, surge, threshold)"),
    ('[[rules]]\nname = "a"\nquery = "x"\ncolour = "b"\n',
     "rules[0].colour: unknown key (expected one of: channel, enabled, mention_role, "
     "mention_roles, mention_users, min_sources, name, query, severity, surge, template, "
     "template_style, threshold)"),
    ('[[sources]]\nname = "a"\ntype = "feed"\nurl = "https://ex.org/"\ncolour = 1\n',
     "sources[0].colour: unknown key (expected one of: backfill, enabled, every, "
     "max_alerts_per_poll, name, outlet, route, type, url)"),
])
def test_an_unknown_key_names_the_nearest_key_or_the_keys_its_place_takes(
        toml: str, says: str, tmp_path: Path) -> None:
    assert says in issues(toml, tmp_path)


def test_a_key_a_thousand_times_too_long_is_shown_cut_in_its_error(tmp_path: Path) -> None:
    """A 200,000-character key is one short line of the error, not the whole key; every other
    key of the file is still reported."""
    found = issues("[storage]\np" + "a" * 200_000 + " = 1\ncolour = 2\n", tmp_path)
    long = [line for line in found if line.startswith("storage.paaa")]
    assert len(long) == 1 and len(long[0]) < 200 and "…: unknown key" in long[0]
    assert "storage.colour: unknown key (expected one of: path, url)" in found


@pytest.mark.parametrize(("url", "says"), [
    ("postgresql://u:pw@127.0.0.1:99999/db", "(Port out of range 0-65535)"),
    ("postgresql://u:pw@[::1/db", "(Invalid IPv6 URL)"),
    ("postgresql://u:pw@host:port/db", "not a valid PostgreSQL URL"),
    # the driver split at the first '@' and dialled the password's tail as the host, while
    # the error named the host after the last
    ("postgresql://u:pw@tail@127.0.0.1:5432/db", "holds an '@': write it as %40"),
])
def test_a_postgresql_url_that_cannot_be_read_is_named_without_its_password(
        tmp_path: Path, url: str, says: str) -> None:
    """Every command (check included) ended in a traceback reading the port."""
    # (a rule, so that the URL is the config's only problem: "nothing to watch" is one too)
    (found,) = issues(f'[storage]\nurl = "{url}"\n[[rules]]\nname = "a"\nquery = "kyiv"\n',
                      tmp_path)
    assert found.startswith("storage.url: not a valid PostgreSQL URL") and says in found
    assert "pw" not in found
    cfg = load_config(_write(tmp_path, '[storage]\nurl = "env:NW_PG"\n'), watching=False)
    with pytest.raises(ConfigError) as info:
        cfg.storage.target(Path, env={"NW_PG": url})
    (issue,) = info.value.issues
    assert str(issue).startswith("storage.url: $NW_PG: not a valid") and "pw" not in str(issue)


def test_a_feed_url_of_another_scheme_is_refused_without_its_credentials(
        tmp_path: Path) -> None:
    (found,) = issues('[[sources]]\nname = "f"\ntype = "feed"\n'
                      'url = "ftp://bob:TopSecret99@127.0.0.1/feed"\n', tmp_path)
    assert "is not an http(s) URL" in found and "TopSecret99" not in found
    assert "ftp://…@127.0.0.1/feed" in found


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "ok.toml"
    p.write_text(text)
    return p


def test_a_byte_order_mark_is_read_past_and_ids_must_be_positive(tmp_path: Path) -> None:
    """An editor's byte order mark gave 'not valid TOML (line 1, column 1)'; a channel id or
    mention_role of -5 passed check and could never post."""
    p = tmp_path / "bom.toml"
    p.write_bytes(b"\xef\xbb\xbf" + b'[storage]\npath = "nw.db"\n')
    assert load_config(p, watching=False).storage.path == "nw.db"
    found = issues('[channels]\nalerts = -5\nops = 0\n[[rules]]\nname = "a"\nquery = "x"\n'
                   'mention_role = -1\n', tmp_path)
    said = "a channel id is a positive number of at most 64 bits (a Discord id)"
    assert f"channels.alerts: {said}, not -5" in found
    assert f"channels.ops: {said}, not 0" in found
    assert any(f.startswith("rules[0].mention_role: ") for f in found)


def test_a_config_rule_name_with_an_invisible_character_is_refused(tmp_path: Path) -> None:
    """The same check as a rule added from Discord: 'kyiv' and 'kyiv' + a zero-width joiner
    would look the same in every list and in /mute's choices."""
    found = issues('[[rules]]\nname = "kyiv\\u200d"\nquery = "kyiv"\n'
                   '[[rules]]\nname = "kyiv"\nquery = "kyiv"\n', tmp_path)
    assert found == ["rules[0].name: a rule's name is letters, digits, '.', '_' or '-', with "
                     "no spaces or invisible characters"]
    # a space too, said the same way (it was "String should match pattern '^[\\w.-]+$'")
    assert issues('[[rules]]\nname = "my rule"\nquery = "kyiv"\n', tmp_path) == [
        "rules[0].name: a rule's name is letters, digits, '.', '_' or '-', with no spaces or "
        "invisible characters"]


def test_a_path_with_a_nul_character_is_refused_with_its_key(tmp_path: Path) -> None:
    """`check` took it; `run` then stopped with "ValueError: embedded null byte"."""
    with pytest.raises(ConfigError) as bad:
        parse_config({"storage": {"path": "nw\x00.db"},
                      "sources": [{"name": "f", "type": "folder", "path": "ne\x00ws"}],
                      "rules": [{"name": "t", "query": "troops"}]}, base_dir=tmp_path)
    assert sorted((i.path, i.message) for i in bad.value.issues) == [
        ("sources[0].path", "contains a NUL character (\\u0000)"),
        ("storage.path", "contains a NUL character (\\u0000)")]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run as a user with no home directory")
def test_a_tilde_path_without_a_home_directory_is_refused_with_its_key() -> None:
    """A container's user with no passwd entry and no HOME: "RuntimeError: Could not determine
    home directory" and a traceback from every command."""
    # Outside pytest's folders, which only root may enter.
    with tempfile.TemporaryDirectory(prefix="newswatch-nohome-") as folder:
        Path(folder).chmod(0o755)
        config = Path(folder) / "config.toml"
        config.write_text('[storage]\npath = "~/nw.db"\n[[rules]]\nname = "t"\n'
                          'query = "troops"\n')
        config.chmod(0o644)
        env = {k: v for k, v in os.environ.items() if k != "HOME"}
        as_nobody = ["setpriv", "--reuid=54321", "--regid=54321", "--clear-groups",
                     sys.executable]
        reach = subprocess.run([*as_nobody, "-c", "import bot"], capture_output=True,
                               env=env, cwd=REPO, timeout=60)
        if reach.returncode != 0:
            pytest.skip("the project's folder or interpreter is not readable by other users")
        r = subprocess.run([*as_nobody, "-m", "bot", "check", "-c", str(config)],
                           capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "storage.path: '~' cannot be expanded: no home directory (set HOME)" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_path_longer_than_any_system_takes_is_refused_with_its_length(tmp_path: Path) -> None:
    """`check` took a storage path of 100,000 characters; `run` and `search` then failed with
    the whole path in their message, a 100 KB line."""
    with pytest.raises(ConfigError) as bad:
        parse_config({"storage": {"path": "a" * 100_000 + ".db"},
                      "sources": [{"name": "f", "type": "folder", "path": "x/" + "b" * 300}],
                      "rules": [{"name": "t", "query": "troops"}]}, base_dir=tmp_path)
    assert sorted((i.path, i.message) for i in bad.value.issues) == [
        ("sources[0].path", "has a name of 300 characters in it; names are at most 255 bytes"),
        ("storage.path", "is 100,003 characters long; paths are at most 4,096 bytes")]
    assert len(str(bad.value)) < 400


@pytest.mark.parametrize(("path", "says"), [
    ("postgresql://bob:Secret%23x@db.example/news",
     "storage.path: a PostgreSQL URL goes in [storage] url, not path"),
    ("  POSTGRES://bob:Secret@db.example/news", "storage.path: a PostgreSQL URL goes in"),
    ("sqlite:///var/lib/bob:Secret.db",
     "storage.path: is a URL (sqlite://…); path names an SQLite"),
    ("env:DATABASE_URL", "storage.path: 'env:DATABASE_URL' names a variable: that form is "
                         "[storage] url's"),
    # a database file named three spaces was made beside the config; "" named its folder
    ("   ", "storage.path: is empty; it names the SQLite file"),
    ("", "storage.path: is empty; it names the SQLite file"),
])
def test_a_database_url_given_as_the_path_is_refused_without_its_password(
        tmp_path: Path, path: str, says: str) -> None:
    """`path = "postgresql://…"` was taken for a file name: `search` answered "no database at
    <folder>/postgresql:/user:<password>@host/news", the password shown, and `run` would have
    made folders of the URL."""
    (found,) = issues(f'[storage]\npath = "{path}"\n[[rules]]\nname = "a"\nquery = "kyiv"\n',
                      tmp_path)
    assert found.startswith(says), found
    assert "Secret" not in found
    assert not list(tmp_path.glob("*:*"))


@pytest.mark.parametrize("path", ["news:2022.db", "data/env:x", "http_cache.db", "a//b.db"])
def test_file_names_that_only_look_odd_are_still_paths(tmp_path: Path, path: str) -> None:
    cfg = load_config(_write(tmp_path, f'[storage]\npath = "{path}"\n'), watching=False)
    assert cfg.storage.path == path


@pytest.mark.parametrize(("key", "value", "says"), [
    # a traceback from the HTTP client at `run` (it will not send a URL's credentials beside
    # the bot's Authorization); `check` said ok
    ("api_base", "http://admin:Secret@127.0.0.1:9/api/v10",
     "discord.api_base: must not hold a user name or password"),
    ("gateway_url", "wss://u:Secret@gateway.example/", "discord.gateway_url: must not hold a user"),
    # `run` failed with "cannot reach Discord: nonsense/users/@me"
    ("api_base", "nonsense", "discord.api_base: must be an http:// or https:// URL with a host"),
    ("api_base", "ftp://example.org/api", "discord.api_base: must be an http:// or https://"),
    ("gateway_url", "https://example.org/gateway", "discord.gateway_url: must be a ws:// or wss://"),
    ("api_base", "http://127.0.0.1:99999/api", "discord.api_base: is not a URL"),
])
def test_discord_endpoints_are_urls_without_credentials(
        tmp_path: Path, key: str, value: str, says: str) -> None:
    (found,) = issues(f'[discord]\n{key} = "{value}"\n[[rules]]\nname = "a"\nquery = "kyiv"\n',
                      tmp_path)
    assert found.startswith(says), found
    assert "Secret" not in found


def test_the_emulators_endpoints_are_taken(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, '[discord]\napi_base = "http://127.0.0.1:8080/api/v10"\n'
                                        'gateway_url = "ws://127.0.0.1:8080/gateway"\n'),
                      watching=False)
    assert (cfg.discord.api_base, cfg.discord.gateway_url) == (
        "http://127.0.0.1:8080/api/v10", "ws://127.0.0.1:8080/gateway")


def test_a_folders_settle_is_at_most_ten_minutes(tmp_path: Path) -> None:
    """`settle = "3650d"` passed `check`, and `run --once` waited in silence: every file was
    younger than settle, and a poll that finds such a file waits settle to look again."""
    (tmp_path / "inbox").mkdir()
    (found,) = issues('[[sources]]\nname = "in"\ntype = "folder"\npath = "inbox"\n'
                      'settle = "3650d"\n[[rules]]\nname = "a"\nquery = "kyiv"\n', tmp_path)
    assert found.startswith("sources[0].settle: is at most 10m"), found
    cfg = load_config(_write(tmp_path, '[[sources]]\nname = "in"\ntype = "folder"\n'
                                       'path = "inbox"\nsettle = "10m"\n'), watching=False)
    assert cfg.sources[0].settle == timedelta(minutes=10)  # type: ignore[union-attr]


def test_a_notices_route_or_a_sources_route_must_be_a_channel(tmp_path: Path) -> None:
    """`[discord] notices` and a source's `route` were not checked as a rule's channel is: a
    misspelt one passed `check`, and the notices reached no channel."""
    (tmp_path / "inbox").mkdir()
    found = issues('[discord]\nnotices = "ops-typo"\n[channels]\nalerts = 1234\nops = 5678\n'
                   '[[sources]]\nname = "in"\ntype = "folder"\npath = "inbox"\n'
                   'route = "nosuchroute"\n[[rules]]\nname = "a"\nquery = "kyiv"\n'
                   'channel = "alerts"\n', tmp_path)
    assert found == ["discord.notices: unknown channel 'ops-typo'; [channels] defines: alerts, ops",
                     "sources[0].route: unknown channel 'nosuchroute'; [channels] defines: "
                     "alerts, ops"]


@pytest.mark.parametrize(("text", "says"), [
    # each passed `check`
    ("[discord]\nguild_ids = [123, -1]\n",
     "discord.guild_ids: -1 is not a Discord id (ids are positive numbers of at most 64 bits)"),
    ("[discord]\nadmin_role = 0\n", "discord.admin_role: 0 is not a Discord id"),
    # a role's id in quotes was taken for a name no role has: its members were refused
    ('[discord]\nadmin_role = "1100000000000000102"\n',
     "discord.admin_role: '1100000000000000102' is a role's id in quotes: write it without "
     "quotes (1100000000000000102)"),
    ('[discord]\nadmin_role = " Readers "\n',
     "discord.admin_role: ' Readers ': a role's name, without spaces at its ends"),
    ("[channels]\nalerts = 99999999999999999999\n",
     "channels.alerts: a channel id is a positive number of at most 64 bits (a Discord id), "
     "not 99999999999999999999"),
    # warned "webhook from $" and "$ is not set"
    ('[channels]\nalerts = "env:"\n', "channels.alerts: 'env:' is not 'env:VAR' with a variable"),
    ('[channels]\nalerts = "env:1BAD"\n', "channels.alerts: 'env:1BAD' is not 'env:VAR'"),
])
def test_discord_ids_and_webhook_variables_are_checked(tmp_path: Path, text: str, says: str
                                                       ) -> None:
    found = issues(text + '[[rules]]\nname = "a"\nquery = "kyiv"\n', tmp_path)
    assert found[0].startswith(says), found


def test_the_largest_discord_ids_and_a_role_name_are_taken(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, '[discord]\nguild_ids = [18446744073709551615]\n'
                                        'admin_role = "Moderators"\n[channels]\n'
                                        'alerts = 18446744073709551615\nhook = "env:HOOK_1"\n'),
                      watching=False)
    assert cfg.discord.guild_ids == [2**64 - 1] and cfg.discord.admin_role == "Moderators"


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_surge_sigma_that_is_no_number_says_so(tmp_path: Path, value: str) -> None:
    """`sigma = nan` was refused as "Input should be less than or equal to 20"."""
    (found,) = issues(f'[surge]\nsigma = {value}\n[[rules]]\nname = "a"\nquery = "kyiv"\n',
                      tmp_path)
    assert found == "surge.sigma: Input should be a finite number"


@pytest.mark.parametrize(("channels", "source", "says"), [
    ({"": 1}, "ok", "channels.: a route name may not be empty or blank"),
    ({"  ": 1}, "ok", "a route name may not be empty or blank"),
    ({"x\u202eevil": 1}, "ok", "channels.x\\u202eevil: a route name may not hold control, "
                                "line-break or direction characters"),
    ({"a\nb": 1}, "ok", "channels.a\\nb: a route name may not hold control"),
    ({"alerts": 1}, "s\u202eevil", "sources[0].name: a source name may not hold control, "
                                   "line-break or direction characters"),
    ({"alerts": 1}, "feed\nforged", "sources[0].name: a source name may not hold control"),
    ({"alerts": 1}, " ", "sources[0].name: a source name may not be blank"),
])
def test_route_and_source_names_are_shown_as_written(
        channels: dict[str, int], source: str, says: str) -> None:
    """A route or source name is in every log line and listing about it: a blank one was
    taken, a line break forged a line, and a direction override reordered the rest of it."""
    with pytest.raises(ConfigError) as caught:
        parse_config({"channels": channels,
                      "sources": [{"name": source, "type": "folder", "path": "."}],
                      "rules": [{"name": "r", "query": "x", "channel": next(iter(channels))}]})
    text = str(caught.value)
    assert says in text, text
    assert "\u202e" not in text and "\nforged" not in text and "a\nb" not in text


@pytest.mark.parametrize("channels", [{}, {"alerts": 1}])
def test_a_route_named_blank_or_unprintable_is_refused_with_or_without_channels(
        channels: dict[str, int]) -> None:
    """Without [channels], a rule's channel = "" passed check, which listed a route with no
    name, and run printed its alerts; with [channels] it was "unknown channel ''"."""
    with pytest.raises(ConfigError) as caught:
        parse_config({"channels": channels,
                      "discord": {"notices": " "},
                      "sources": [{"name": "s", "type": "folder", "path": ".", "route": ""}],
                      "rules": [{"name": "a", "query": "x", "channel": ""},
                                {"name": "b", "query": "x", "channel": "x\ny"},
                                {"name": "c", "query": "x", "channel": "alerts"}]})
    assert str(caught.value).split("; ") == [
        "rules[0].channel: a route name may not be empty or blank",
        "rules[1].channel: a route name may not hold control, line-break or direction "
        "characters (they forge or reorder what logs and /alerts status show)",
        "discord.notices: a route name may not be empty or blank",
        "sources[0].route: a route name may not be empty or blank",
    ], str(caught.value)


def test_a_route_or_source_name_with_spaces_and_letters_of_any_script_is_fine() -> None:
    cfg = parse_config({"channels": {"Лента новостей": 1, "x y": 2},
                        "sources": [{"name": "BBC World · عربي", "type": "folder",
                                     "path": "."}],
                        "rules": [{"name": "r", "query": "x", "channel": "x y"}]})
    assert set(cfg.channels) == {"Лента новостей", "x y"}


@pytest.mark.parametrize("fields", [
    {"quiet_hours": "1\uff15:00-07:00"},  # a fullwidth 5
    {"mode": "digest", "digest_at": ["0\u0668:00"]},  # an Arabic-Indic 8
])
def test_times_of_day_in_other_scripts_digits_are_refused(fields: dict[str, object]) -> None:
    from watchers.config import RouteConfig

    with pytest.raises(ValueError, match="is not a time of day"):
        RouteConfig.model_validate({"target": 1, **fields})


def test_rule_names_in_two_cases_are_one_name(tmp_path: Path) -> None:
    """"Kyiv" and "kyiv" were two rules (a forum's tags, compared without case, took them for
    one); the second is named, with the first's spelling — in a valid file and beside other
    errors alike."""
    rules = '[[rules]]\nname = "kyiv"\nquery = "kyiv"\n[[rules]]\nname = "Kyiv"\nquery = "kiev"\n'
    said = ("rules[1].name: duplicate rule name 'Kyiv' (first at rules[0] as 'kyiv'; rule names "
            "are compared without case)")
    assert issues(rules, tmp_path) == [said]
    assert said in issues('[fetch]\ntimeout = "x"\n' + rules, tmp_path)


@pytest.mark.parametrize("bad", ["news\udcffwatch", "news\x07watch"])
def test_a_postgresql_url_holding_a_byte_that_is_not_utf8_is_refused_by_name(
        tmp_path: Path, bad: str) -> None:
    """From an environment variable (which passes such a byte as a lone surrogate), `check`
    said ok, and the commands printed the driver's traceback, then named the database with a
    space where the byte was; `copy --to` the same."""
    from watchers.errors import StoreError
    from watchers.store.copy import resolve_target

    url = f"postgresql://u:secret@/{bad}?host=/tmp/sock&port=5432"
    cfg = parse_config({"storage": {"url": "env:NWDB"}}, base_dir=tmp_path, watching=False)
    with pytest.raises(ConfigError) as info:
        cfg.storage.target(cfg.resolve, env={"NWDB": url})
    said = str(info.value)
    assert "storage.url: $NWDB: not a valid PostgreSQL URL (it holds a byte that is not UTF-8" \
        in said and "secret" not in said
    with pytest.raises(StoreError, match="it holds a byte that is not UTF-8") as err:
        resolve_target("env:NWDB", what="--to", env={"NWDB": url})
    assert "secret" not in str(err.value)
